// JS side of utp_bench.py: both ends of one loopback connection in this process, utp-native 2.x (uTP)
// or net (TCP); one end writes BYTES in 64 KiB chunks and ends, the other counts them.
// Prints {seconds, bytes}: the receiver's time from its first byte to the end of the stream.
//   node utp_bench.js utp|tcp BYTES
'use strict'
const net = require('net')
const utp = require('utp-native')

const [kind, total] = [process.argv[2], Number(process.argv[3])]
const mod = kind === 'utp' ? utp : net

const server = mod.createServer((sock) => {
  let got = 0
  let t0 = null
  sock.on('data', (d) => { if (t0 === null) t0 = process.hrtime.bigint(); got += d.length })
  sock.on('end', () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    process.stdout.write(JSON.stringify({ seconds, bytes: got }) + '\n')
    process.exit(0)
  })
})
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port
  const c = kind === 'utp' ? utp.connect(port, '127.0.0.1') : net.connect(port, '127.0.0.1')
  const chunk = Buffer.alloc(65536, 7)
  let sent = 0
  function more () {
    while (sent < total) {
      const n = Math.min(chunk.length, total - sent)
      sent += n
      if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return c.once('drain', more)
    }
    c.end()
  }
  c.on('error', () => {})
  more()
})
