// Check Mermaid diagrams with Mermaid's own parser (mermaid.parse: validates the syntax, renders nothing).
//
// Usage: node check.mjs --mermaid DIR < DIAGRAMS.json
//
//   DIR            a directory whose node_modules holds mermaid (the tests install the version pinned in
//                  package.json beside this file)
//   DIAGRAMS.json  a JSON list of {name, text}: text is the body of one ```mermaid block
//
// Prints one JSON line per diagram, in input order: {name, ok: true, type, config, messages, notes}
// (type: Mermaid's diagram type, e.g. "sequence"; config: what the diagram's own directives or front matter
// set, {} when none; for a sequence diagram, messages: the arrows Mermaid read, as [from, to] pairs, and
// notes: how many notes) or {name, ok: false, error} (Mermaid's message). A diagram that parses but is longer
// than Mermaid's default maxTextSize (50,000 characters) also gets too_long: {chars, max}: a page using
// the default configuration shows "Maximum text size in diagram exceeded" instead of it.
// No DOM is needed: parsing runs the diagram's grammar only (DOMPurify, used when rendering, leaves text
// unchanged without one).
// Exit status: 0 when every diagram parses, 1 when one does not, 2 bad usage or input.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { mermaid: { type: 'string' } } });
if (!args.mermaid) {
  process.stderr.write('usage: node check.mjs --mermaid DIR < DIAGRAMS.json\n');
  process.exit(2);
}
let diagrams;
try {
  diagrams = JSON.parse(readFileSync(0, 'utf8'));
  if (!Array.isArray(diagrams) || !diagrams.every((d) => typeof d?.name === 'string' && typeof d?.text === 'string')) {
    throw new Error('expected a JSON list of {name, text} strings');
  }
} catch (err) {
  process.stderr.write(`check.mjs: bad input on stdin: ${err.message}\n`);
  process.exit(2);
}

const entry = createRequire(path.join(path.resolve(args.mermaid), 'package.json')).resolve('mermaid');
const { default: mermaid } = await import(pathToFileURL(entry).href);

const max = mermaid.mermaidAPI.getConfig().maxTextSize;

let failed = 0;
for (const { name, text } of diagrams) {
  try {
    const { diagramType, config } = await mermaid.parse(text);
    const tooLong = text.length > max ? { too_long: { chars: text.length, max } } : {};
    const parsed = {};
    if (diagramType === 'sequence') {
      const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
      const all = diagram.db.getMessages();
      parsed.messages = all.filter((m) => m.from !== undefined && m.placement === undefined).map((m) => [m.from, m.to]);
      parsed.notes = all.filter((m) => m.placement !== undefined).length;
      mermaid.mermaidAPI.reset(); // a directive in one diagram must not carry over to the next
    }
    console.log(JSON.stringify({ name, ok: true, type: diagramType, config: config ?? {}, ...parsed, ...tooLong }));
  } catch (err) {
    failed += 1;
    console.log(JSON.stringify({ name, ok: false, error: String(err?.message ?? err) }));
  }
}
process.exitCode = failed ? 1 : 0; // not process.exit(): stdout is flushed first
