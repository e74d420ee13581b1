// Validate HAR files against the HAR 1.2 JSON Schema (har-validator, har-schema).
// Usage: node validate.cjs NODE_MODULES FILE.har...  Prints "ok FILE" or "invalid FILE: <errors as JSON>";
// exits 1 when any file is invalid.
const fs = require("fs");
const path = require("path");
const validate = require(path.join(process.argv[2], "har-validator"));

(async () => {
  let bad = 0;
  for (const file of process.argv.slice(3)) {
    try {
      await validate.har(JSON.parse(fs.readFileSync(file, "utf8")));
      console.log(`ok ${file}`);
    } catch (err) {
      bad += 1;
      console.log(`invalid ${file}: ${JSON.stringify(err.errors || String(err))}`);
    }
  }
  process.exit(bad ? 1 : 0);
})();
