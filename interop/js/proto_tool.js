// Cross-checks hypernode's protobuf codec with the JS stack's own compiled schemas.
//   node proto_tool.js CASES.json   CASES: [{module, message, hex} or {module, message, fields}]
// A case with hex: decode it with the JS codec, re-encode it, print {hex, json} (json: the decoded
// object with buffers as {hex}), or {error} when JS refuses the bytes. A case with fields (an object,
// buffers as {hex}): encode it with the JS codec and print {hex}, or {error}.
'use strict'
const fs = require('fs')
const modules = {
  'hypercore-protocol': require('simple-hypercore-protocol/messages.js'),
  hypertrie: require('hypertrie/lib/messages.js'),
  'mountable-hypertrie': require('mountable-hypertrie/lib/messages.js'),
  hyperdrive: require('hyperdrive-schemas/lib/messages.js'),
  'multi-hyperdrive': require('multi-hyperdrive/messages.js'),
  'dht-rpc': require('dht-rpc/lib/messages.js'),
  'hyperswarm-dht': require('@hyperswarm/dht/messages.js')
}

function plain (v) {
  if (Buffer.isBuffer(v)) return { hex: v.toString('hex') }
  if (Array.isArray(v)) return v.map(plain)
  if (v && typeof v === 'object') {
    const out = {}
    for (const k of Object.keys(v)) out[k] = plain(v[k])
    return out
  }
  return v
}

function revive (v) {
  if (Array.isArray(v)) return v.map(revive)
  if (v && typeof v === 'object') {
    const keys = Object.keys(v)
    if (keys.length === 1 && keys[0] === 'hex' && typeof v.hex === 'string') return Buffer.from(v.hex, 'hex')
    const out = {}
    for (const k of keys) out[k] = revive(v[k])
    return out
  }
  return v
}

const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const out = cases.map(({ module, message, hex, fields }) => {
  const codec = message.split('.').reduce((o, k) => o[k], modules[module])
  if (fields !== undefined) {
    try {
      return { hex: codec.encode(revive(fields)).toString('hex') }
    } catch (err) {
      return { error: err.message }
    }
  }
  try {
    const obj = codec.decode(Buffer.from(hex, 'hex'))
    return { hex: codec.encode(obj).toString('hex'), json: plain(obj) }
  } catch (err) {
    return { error: err.message }
  }
})
process.stdout.write(JSON.stringify(out) + '\n')
