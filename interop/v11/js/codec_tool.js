// hypercore 11's own encodings of its wire messages (hypercore/lib/messages.js), for
// interop/test_core11_mux_interop.py. Usage: node codec_tool.js SPEC.json; prints one JSON line.
// SPEC { encode: [{ type, value }], decode: [{ type, hex }] }, type a wire encoding name (sync, request,
// ..., handshake, reorgHint) -> { encoded: [hex | { error }], decoded: [value | { error }] }
// (values as wire_json.js writes them; a decode reads as protomux does: bytes left over are ignored)
const fs = require('fs')
const c = require('compact-encoding')
const { toJSON, fromJSON, encodingOf } = require('./wire_json.js')

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const out = { encoded: [], decoded: [] }
for (const { type, value } of spec.encode || []) {
  try {
    out.encoded.push(Buffer.from(c.encode(encodingOf(type), fromJSON(value))).toString('hex'))
  } catch (err) {
    out.encoded.push({ error: err.message })
  }
}
for (const { type, hex } of spec.decode || []) {
  try {
    const buffer = Buffer.from(hex, 'hex')
    out.decoded.push(toJSON(encodingOf(type).decode({ buffer, start: 0, end: buffer.byteLength })))
  } catch (err) {
    out.decoded.push({ error: err.message })
  }
}
process.stdout.write(JSON.stringify(out) + '\n')
