// JS side of wire_bench.py: two hypercore-protocol 8 streams over loopback TCP in one process; one
// sends COUNT extension messages of SIZE bytes, the other counts them. Prints {seconds, bytes}.
//   node wire_bench.js SIZE COUNT
'use strict'
const net = require('net')
const Protocol = require('hypercore-protocol')

const size = Number(process.argv[2])
const count = Number(process.argv[3])

const server = net.createServer((socket) => {
  const b = new Protocol(false, { timeout: 0 })
  let got = 0
  let bytes = 0
  let t0 = null
  b.registerExtension('bench', {
    onmessage (m) {
      if (t0 === null) t0 = process.hrtime.bigint()
      got++
      bytes += m.length
      if (got === count) {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9
        process.stdout.write(JSON.stringify({ seconds, bytes }) + '\n')
        process.exit(0)
      }
    }
  })
  socket.pipe(b).pipe(socket)
})
let start = null
server.listen(0, '127.0.0.1', () => {
  const socket = net.connect(server.address().port, '127.0.0.1', () => {
    const a = new Protocol(true, { timeout: 0 })
    const ext = a.registerExtension('bench', {})
    socket.pipe(a).pipe(socket)
    a.on('handshake', async () => {
      // give the Options with the extension names a head start, as Python does
      await new Promise((resolve) => setTimeout(resolve, 50))
      const buf = Buffer.alloc(size, 1)
      start = process.hrtime.bigint()
      for (let i = 0; i < count; i++) {
        ext.send(buf)
        if (i % 16 === 15) await new Promise((resolve) => setImmediate(resolve))
        if (socket.writableLength > 8 * 1024 * 1024) await new Promise((resolve) => socket.once('drain', resolve))
      }
    })
  })
})
