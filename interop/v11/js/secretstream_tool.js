// One @hyperswarm/secret-stream 6.9.2 end over real TCP, for interop/test_core11_secretstream_interop.py.
// Usage: node secretstream_tool.js listen|connect SEEDHEX [PORT]
//   listen: a TCP server on 127.0.0.1 (prints {"event":"listening","port"}), the responder of the first
//           connection; connect: the initiator, to 127.0.0.1:PORT.
// Prints JSON lines: {"event":"handshake","publicKey","remotePublicKey","handshakeHash"} (hex), then
// {"event":"message","len","sha256"} per message received (and "hex" for messages up to 64 bytes),
// {"event":"end"} when the remote ended, {"event":"error","message"} on a failure.
// Commands on stdin, one JSON object a line: {"send":[hex, ...]} sends each message (answers
// {"event":"sent","count"}), {"sendSizes":[n, ...]} sends messages of those sizes whose byte i is
// (i * 7 + n) & 255, {"end":true} ends our side.
const net = require('net')
const crypto = require('crypto')
const readline = require('readline')
const NoiseSecretStream = require('@hyperswarm/secret-stream')

const hex = (b) => Buffer.from(b).toString('hex')
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

function pattern (n) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + n) & 255
  return b
}

function run (socket, isInitiator, keyPair) {
  const s = new NoiseSecretStream(isInitiator, socket, { keyPair })
  s.on('handshake', () => out({
    event: 'handshake',
    publicKey: hex(s.publicKey),
    remotePublicKey: hex(s.remotePublicKey),
    handshakeHash: hex(s.handshakeHash)
  }))
  s.on('data', (m) => {
    const ev = { event: 'message', len: m.byteLength, sha256: crypto.createHash('sha256').update(m).digest('hex') }
    if (m.byteLength <= 64) ev.hex = hex(m)
    out(ev)
  })
  s.on('end', () => out({ event: 'end' }))
  s.on('error', (err) => out({ event: 'error', message: err.message }))
  s.on('close', () => out({ event: 'close' }))
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const cmd = JSON.parse(line)
    if (cmd.send) {
      for (const h of cmd.send) s.write(Buffer.from(h, 'hex'))
      out({ event: 'sent', count: cmd.send.length })
    } else if (cmd.sendSizes) {
      for (const n of cmd.sendSizes) s.write(pattern(n))
      out({ event: 'sent', count: cmd.sendSizes.length })
    } else if (cmd.end) {
      s.end()
      out({ event: 'ended' })
    }
  })
}

const [mode, seed, port] = process.argv.slice(2)
const keyPair = NoiseSecretStream.keyPair(Buffer.from(seed, 'hex'))
if (mode === 'listen') {
  const server = net.createServer((socket) => {
    server.close()
    run(socket, false, keyPair)
  })
  server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }))
} else {
  const socket = net.connect(Number(port), '127.0.0.1')
  run(socket, true, keyPair)
}
