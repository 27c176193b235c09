// A JS hypercore-protocol 8 peer for hypernode's wire interop tests.
//   node wire_peer.js listen|connect PORT KEYHEX
// Prints one JSON line per event on stdout: {event: 'listening', port}, {event: 'handshake', remotePublicKey},
// {event: 'open'}, {event: <message type>, msg}, {event: 'extension', name, msg}, {event: 'close'}.
// Once the channel is open on both sides it sends one message of every type, then one extension
// message per encoding, on the stream (names ext-binary, ext-json, ext-utf8); it echoes every
// extension message it receives back on the same extension, as {echo: message}.
'use strict'
const net = require('net')
const Protocol = require('hypercore-protocol')

const [mode, portArg, keyHex] = process.argv.slice(2)
const key = Buffer.from(keyHex, 'hex')

function out (obj) {
  process.stdout.write(JSON.stringify(obj, (k, v) => (v && v.type === 'Buffer') ? { hex: Buffer.from(v.data).toString('hex') } : v) + '\n')
}

function run (socket, initiator) {
  const stream = new Protocol(initiator, { timeout: 20000 })
  const exts = {}
  for (const [name, encoding] of [['ext-binary', 'binary'], ['ext-json', 'json'], ['ext-utf8', 'utf-8']]) {
    exts[name] = stream.registerExtension(name, {
      encoding,
      onmessage (msg) {
        out({ event: 'extension', name, msg: Buffer.isBuffer(msg) ? { hex: msg.toString('hex') } : msg })
        if (!(msg && msg.echo) && !(Buffer.isBuffer(msg) && msg.toString().startsWith('echo:'))) {
          exts[name].send(encoding === 'json' ? { echo: msg } : encoding === 'utf-8' ? 'echo:' + msg : Buffer.concat([Buffer.from('echo:'), msg]))
        }
      }
    })
  }
  stream.on('handshake', () => out({ event: 'handshake', remotePublicKey: stream.remotePublicKey.toString('hex') }))
  const handlers = {}
  for (const t of ['options', 'status', 'have', 'unhave', 'want', 'unwant', 'request', 'cancel', 'data']) {
    handlers['on' + t] = (msg) => out({ event: t, msg })
  }
  handlers.onclose = () => out({ event: 'channel-close' })
  handlers.onopen = () => {
    out({ event: 'open' })
    ch.options({ extensions: ['a', 'b'], ack: true })
    ch.status({ uploading: false, downloading: true })
    ch.have({ start: 10, length: 20, bitfield: Buffer.from([1, 2, 3]) })
    ch.unhave({ start: 5, length: 2 })
    ch.want({ start: 0, length: 1048576 })
    ch.unwant({ start: 8192, length: 8192 })
    ch.request({ index: 42, bytes: 0, hash: true, nodes: 7 })
    ch.cancel({ index: 42, hash: true })
    ch.data({ index: 42, value: Buffer.from('hello from js'), nodes: [{ index: 84, hash: Buffer.alloc(32, 9), size: 13 }], signature: Buffer.alloc(64, 8) })
    exts['ext-binary'].send(Buffer.from('bin from js'))
    exts['ext-json'].send({ from: 'js', n: 1 })
    exts['ext-utf8'].send('utf8 from js ✓')
  }
  const ch = stream.open(key, handlers)
  stream.on('error', (err) => out({ event: 'error', message: err.message }))
  stream.on('close', () => { out({ event: 'close' }); process.exit(0) })
  socket.pipe(stream).pipe(socket)
  socket.on('error', () => {})
}

if (mode === 'listen') {
  const server = net.createServer((socket) => { server.close(); run(socket, false) })
  server.listen(Number(portArg), '127.0.0.1', () => out({ event: 'listening', port: server.address().port }))
} else {
  const socket = net.connect(Number(portArg), '127.0.0.1', () => run(socket, true))
}
