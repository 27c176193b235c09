// A utp-native 2.x peer (the uTP hyperswarm 2 runs) for hypernode's uTP interop tests and benchmark.
//   node utp_peer.js serve [SEND] [SEED]          listen on 127.0.0.1 (a random port)
//   node utp_peer.js connect PORT [SEND] [SEED]   connect to 127.0.0.1:PORT
// Each connection hashes every byte it receives and, after its first byte arrived (a server: uTP's
// acceptor may not send before the initiator) or at once (a client), sends SEND bytes of the
// deterministic stream of SEED (block i of 64 KiB: shake256(SEED + ':' + i)), then ends its side.
// Prints JSON lines: {event:'listening', port}, {event:'connected'}, {event:'sent', bytes},
// {event:'received', bytes, sha256, seconds}, {event:'close'}, {event:'error', message}.
// Datagrams on the socket that are not uTP (the DHT's, in hyperswarm) are echoed back as 'echo:' + data
// and printed as {event:'message', hex}.
'use strict'
const utp = require('utp-native')
const crypto = require('crypto')

const BLOCK = 65536

function out (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

function block (seed, i, size) {
  return crypto.createHash('shake256', { outputLength: BLOCK }).update(seed + ':' + i).digest().subarray(0, size)
}

function sendStream (sock, total, seed, done) {
  let i = 0
  let sent = 0
  function more () {
    while (sent < total) {
      const n = Math.min(BLOCK, total - sent)
      const ok = sock.write(block(seed, i++, n))
      sent += n
      if (!ok) return sock.once('drain', more)
    }
    out({ event: 'sent', bytes: sent })
    sock.end()
    if (done) done()
  }
  more()
}

function run (sock, send, seed, isServer, onreceived) {
  const hash = crypto.createHash('sha256')
  let bytes = 0
  let started = false
  let t0 = null
  sock.on('error', (err) => out({ event: 'error', message: err.message }))
  sock.on('data', (d) => {
    if (t0 === null) t0 = process.hrtime.bigint()
    bytes += d.length
    hash.update(d)
    if (isServer && !started) { started = true; sendStream(sock, send, seed) }
  })
  sock.on('end', () => {
    const seconds = t0 === null ? 0 : Number(process.hrtime.bigint() - t0) / 1e9
    out({ event: 'received', bytes, sha256: hash.digest('hex'), seconds })
    if (onreceived) onreceived()
  })
  sock.on('close', () => out({ event: 'close' }))
  if (!isServer) { started = true; sendStream(sock, send, seed) }
}

function echoMessages (socket) {
  socket.on('message', (msg, rinfo) => {
    out({ event: 'message', hex: msg.toString('hex') })
    const reply = Buffer.concat([Buffer.from('echo:'), msg])
    socket.send(reply, 0, reply.length, rinfo.port, rinfo.address)
  })
}

const [mode, ...args] = process.argv.slice(2)
if (mode === 'serve') {
  const send = Number(args[0] || 0)
  const seed = args[1] || 'js'
  const server = utp.createServer((sock) => { out({ event: 'connected' }); run(sock, send, seed, true) })
  echoMessages(server)
  server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }))
} else if (mode === 'connect') {
  const port = Number(args[0])
  const send = Number(args[1] || 0)
  const seed = args[2] || 'js'
  const socket = utp()
  socket.bind(0, '127.0.0.1', () => {
    echoMessages(socket)
    const sock = socket.connect(port, '127.0.0.1')
    sock.on('connect', () => out({ event: 'connected' }))
    sock.on('close', () => socket.close())
    run(sock, send, seed, false)
  })
} else {
  process.stderr.write('usage: node utp_peer.js serve|connect ...\n')
  process.exit(2)
}
