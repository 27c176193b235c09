// How the hypercore 11 stack writes and reads keys, for hypernode.keys's tests.
// Usage: node ids_tool.js HEX [HEX...] ; prints one JSON line: for each input, z32 of the bytes, and
// for 32-byte inputs hypercore-id-encoding's encode and what its decode gives for the z32, hex and
// upper-case hex spellings (null where decode throws).
const b4a = require('b4a')
const z32 = require('z32')
const id = require('hypercore-id-encoding')

const tryDecode = (s) => {
  try {
    return b4a.toString(id.decode(s), 'hex')
  } catch {
    return null
  }
}

const out = process.argv.slice(2).map((h) => {
  const buf = b4a.from(h, 'hex')
  const r = { hex: h, z32: z32.encode(buf) }
  if (buf.byteLength === 32) {
    r.id = id.encode(buf)
    r.decoded = [tryDecode(r.id), tryDecode(h), tryDecode(h.toUpperCase())]
  }
  return r
})
// spellings that are not keys
const bad = ['', 'zz', 'y'.repeat(51), 'y'.repeat(53), '0'.repeat(63), 'g'.repeat(64), 'l'.repeat(52), 'hyper://' + 'y'.repeat(52)]
console.log(JSON.stringify({ out, bad: bad.map((s) => [s, tryDecode(s)]) }))
