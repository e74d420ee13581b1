// Reference decoding by @aeternity/aepp-calldata for tests/test_codec_oracle.py.
// Usage: node oracle.mjs <install dir>  (reads JSON requests on stdin, writes one JSON answer)
// Request: {"contracts": [cb_code...], "calls": [{code, call_data}], "results": [{code, function, return_value, return_type}],
//           "values": [cb_value...]} (any key may be absent)
import {pathToFileURL} from 'node:url'
import {join} from 'node:path'
import {readFileSync} from 'node:fs'

const lib = await import(pathToFileURL(join(process.argv[2], 'node_modules/@aeternity/aepp-calldata/src/main.js')))
const {BytecodeContractCallEncoder, ContractEncoder, ContractByteArrayEncoder} = lib

// JavaScript values as plain JSON, tagged where JSON has no form (BigInt, bytes, Map)
function plain(v) {
    if (typeof v === 'bigint') return {$bigint: v.toString()}
    if (v instanceof Uint8Array) return {$bytes: Buffer.from(v).toString('hex')}
    if (v instanceof Map) return {$map: [...v.entries()].map(([k, x]) => [plain(k), plain(x)])}
    if (Array.isArray(v)) return v.map(plain)
    if (v === undefined) return {$undefined: true}
    if (v !== null && typeof v === 'object') {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
    }
    return v
}

function attempt(f) {
    try { return {ok: plain(f())} } catch (e) { return {error: String(e && e.message || e)} }
}

const req = JSON.parse(readFileSync(0, 'utf8'))
const encoders = new Map()
const encoder = code => {
    if (!encoders.has(code)) encoders.set(code, new BytecodeContractCallEncoder(code))
    return encoders.get(code)
}
const contractEncoder = new ContractEncoder()
const byteArrayEncoder = new ContractByteArrayEncoder()
const out = {
    values: (req.values || []).map(v => attempt(() => byteArrayEncoder.decode(v))),
    contracts: (req.contracts || []).map(code => attempt(() => {
        const {functions} = contractEncoder.decode(code).bytecode
        return functions.map(f => ({id: f.id, name: f.name, attributes: f.attributes,
            args: f.args.valueTypes.map(t => t.name), returns: f.returnType.name,
            instructions: f.instructions.reduce((n, block) => n + block.length, 0)}))
    })),
    calls: (req.calls || []).map(c => attempt(() => encoder(c.code).decodeCall(c.call_data))),
    results: (req.results || []).map(r => attempt(() => encoder(r.code).decodeResult(r.function, r.return_value, r.return_type))),
}
process.stdout.write(JSON.stringify(out))
