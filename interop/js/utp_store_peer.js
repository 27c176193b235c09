// A JS corestore 5 / hypercore 9 node replicating over utp-native 2.x (uTP), as hyperswarm 2 connects
// peers, for hypernode's replication-over-uTP interop tests.
//   node utp_store_peer.js serve COUNT SIZE SEED   a new feed of COUNT deterministic blocks, served to
//                                                  every uTP connection: {event:'listening', port, key}
//   node utp_store_peer.js clone PORT KEY COUNT    connect over uTP to 127.0.0.1:PORT, download the feed's
//                                                  first COUNT blocks: {event:'downloaded', length, sha256}
// Block i of a seed: sha256(seed + ':' + i) repeated to SIZE bytes (as store_peer.js).
'use strict'
const utp = require('utp-native')
const crypto = require('crypto')
const Corestore = require('corestore')
const RAM = require('random-access-memory')

function out (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))

function block (seed, i, size) {
  const h = crypto.createHash('sha256').update(seed + ':' + i).digest()
  const b = Buffer.alloc(size)
  for (let o = 0; o < size; o += 32) h.copy(b, o, 0, Math.min(32, size - o))
  return b
}

function replicate (store, socket, initiator) {
  const stream = store.replicate(initiator, { live: true })
  socket.pipe(stream).pipe(socket)
  socket.on('error', (err) => out({ event: 'socket-error', message: err.message }))
  stream.on('error', (err) => out({ event: 'stream-error', message: err.message }))
}

async function main () {
  const [mode, ...args] = process.argv.slice(2)
  const store = new Corestore(RAM)
  await store.ready()
  if (mode === 'serve') {
    const [count, size, seed] = [Number(args[0]), Number(args[1]), args[2]]
    const feed = store.get({ name: 'served' })
    await p((cb) => feed.ready(cb))
    const blocks = []
    for (let i = 0; i < count; i++) blocks.push(block(seed, i, size))
    for (let i = 0; i < blocks.length; i += 1000) await p((cb) => feed.append(blocks.slice(i, i + 1000), cb))
    const server = utp.createServer((socket) => replicate(store, socket, false))
    server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port, key: feed.key.toString('hex') }))
  } else if (mode === 'clone') {
    const [port, key, count] = [Number(args[0]), args[1], Number(args[2])]
    const feed = store.get({ key: Buffer.from(key, 'hex') })
    await p((cb) => feed.ready(cb))
    const socket = utp.connect(port, '127.0.0.1')
    replicate(store, socket, true)
    while (feed.length < count) await p((cb) => feed.update({ minLength: count }, cb))
    await p((cb) => feed.download({ start: 0, end: count }, cb))
    const h = crypto.createHash('sha256')
    for (let i = 0; i < count; i++) h.update(await p((cb) => feed.get(i, cb)))
    out({ event: 'downloaded', length: feed.length, sha256: h.digest('hex') })
  }
}

main().catch((err) => { out({ event: 'error', message: err.message }); process.exit(1) })
