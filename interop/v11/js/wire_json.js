// JSON <-> JS values for hypercore 11's wire messages, shared by codec_tool.js and mux_tool.js.
// Buffers travel as {"$hex": "..."}, Uint32Arrays as {"$u32": [words]}; everything else as it is.
const m = require('hypercore/lib/messages.js')

// the message types of a "hypercore/alpha" channel, in hypercore's order (the index is the type number)
const TYPES = ['sync', 'request', 'cancel', 'data', 'noData', 'want', 'unwant', 'bitfield', 'range', 'extension']

function toJSON (v) {
  if (v instanceof Uint32Array) return { $u32: Array.from(v) }
  if (v instanceof Uint8Array) return { $hex: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') }
  if (Array.isArray(v)) return v.map(toJSON)
  if (v !== null && typeof v === 'object') {
    const out = {}
    for (const [k, x] of Object.entries(v)) out[k] = toJSON(x)
    return out
  }
  return v
}

function fromJSON (v) {
  if (Array.isArray(v)) return v.map(fromJSON)
  if (v !== null && typeof v === 'object') {
    if ('$hex' in v) return Buffer.from(v.$hex, 'hex')
    if ('$u32' in v) return Uint32Array.from(v.$u32)
    const out = {}
    for (const [k, x] of Object.entries(v)) out[k] = fromJSON(x)
    return out
  }
  return v
}

function encodingOf (name) {
  const enc = m.wire[name]
  if (!enc) throw new Error('no such wire encoding: ' + name)
  return enc
}

module.exports = { TYPES, toJSON, fromJSON, encodingOf, wire: m.wire }
