// A JS corestore 5 / hypercore 9 node driven by JSON commands on stdin, for hypernode's replication
// interop tests. Each command is one line; each answer or event is one JSON line on stdout.
//   {cmd:'create', name}                      -> {event:'created', key}
//   {cmd:'open', key, sparse}                 -> {event:'opened', key, length}
//   {cmd:'append', key, count, size, seed}    -> {event:'appended', length}   (deterministic blocks)
//   {cmd:'append', key, hex:[...]}            -> {event:'appended', length}
//   {cmd:'get', key, index}                   -> {event:'block', index, hex}
//   {cmd:'download', key, start, end}         -> {event:'downloaded', key}
//   {cmd:'update', key, minLength}            -> {event:'updated', key, length}
//   {cmd:'info', key}                         -> {event:'info', key, length, byteLength, downloaded, sha256}
//   {cmd:'listen'}                            -> {event:'listening', port}
//   {cmd:'connect', port}                     -> {event:'connected'}
//   {cmd:'extension', key, name, encoding}   -> {event:'extension-registered'}; messages received
//                                               on it print {event:'extension', name, msg} and are
//                                               echoed back to the sender as {echo: msg} (json) or
//                                               'echo:' + msg (utf-8 / binary)
//   {cmd:'ext-send', key, name, msg|hex}     -> {event:'ext-sent'} (broadcast to the feed's peers)
//   {cmd:'exit'}
// Deterministic block i of a seed: sha256(seed + ':' + i) repeated to `size` bytes.
'use strict'
const net = require('net')
const crypto = require('crypto')
const readline = require('readline')
const Corestore = require('corestore')
const RAM = require('random-access-memory')

const store = new Corestore(process.argv[2] && process.argv[2] !== 'memory' ? process.argv[2] : RAM)
const feeds = new Map()
const exts = new Map()
const sockets = []

function out (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))

function block (seed, i, size) {
  const h = crypto.createHash('sha256').update(seed + ':' + i).digest()
  const b = Buffer.alloc(size)
  for (let o = 0; o < size; o += 32) h.copy(b, o, 0, Math.min(32, size - o))
  return b
}

function feedOf (key) {
  const f = feeds.get(key)
  if (!f) throw new Error('unknown feed ' + key)
  return f
}

function replicate (socket, initiator) {
  const stream = store.replicate(initiator, { live: true })
  socket.pipe(stream).pipe(socket)
  socket.on('error', () => {})
  stream.on('error', (err) => out({ event: 'stream-error', message: err.message }))
  sockets.push(socket)
}

async function handle (c) {
  if (c.cmd === 'create') {
    const f = store.get({ name: c.name })
    await p((cb) => f.ready(cb))
    feeds.set(f.key.toString('hex'), f)
    out({ event: 'created', key: f.key.toString('hex') })
  } else if (c.cmd === 'open') {
    const f = store.get({ key: Buffer.from(c.key, 'hex'), sparse: !!c.sparse })
    await p((cb) => f.ready(cb))
    feeds.set(c.key, f)
    out({ event: 'opened', key: c.key, length: f.length })
  } else if (c.cmd === 'append') {
    const f = feedOf(c.key)
    let blocks
    if (c.hex) blocks = c.hex.map((h) => Buffer.from(h, 'hex'))
    else {
      blocks = []
      for (let i = 0; i < c.count; i++) blocks.push(block(c.seed, f.length + i, c.size))
    }
    for (let i = 0; i < blocks.length; i += 1000) await p((cb) => f.append(blocks.slice(i, i + 1000), cb))
    out({ event: 'appended', key: c.key, length: f.length })
  } else if (c.cmd === 'get') {
    const data = await p((cb) => feedOf(c.key).get(c.index, cb))
    out({ event: 'block', index: c.index, hex: data.toString('hex') })
  } else if (c.cmd === 'download') {
    await p((cb) => feedOf(c.key).download({ start: c.start, end: c.end }, cb))
    out({ event: 'downloaded', key: c.key })
  } else if (c.cmd === 'update') {
    const f = feedOf(c.key)
    while (f.length < c.minLength) await p((cb) => f.update({ minLength: c.minLength }, cb))
    out({ event: 'updated', key: c.key, length: f.length })
  } else if (c.cmd === 'info') {
    const f = feedOf(c.key)
    const h = crypto.createHash('sha256')
    let downloaded = 0
    for (let i = 0; i < f.length; i++) {
      if (!f.has(i)) continue
      downloaded++
      h.update(await p((cb) => f.get(i, { wait: false }, cb)))
    }
    out({ event: 'info', key: c.key, length: f.length, byteLength: f.byteLength, downloaded, sha256: h.digest('hex') })
  } else if (c.cmd === 'listen') {
    const server = net.createServer((socket) => replicate(socket, false))
    server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }))
  } else if (c.cmd === 'connect') {
    const socket = net.connect(c.port, '127.0.0.1', () => { replicate(socket, true); out({ event: 'connected' }) })
  } else if (c.cmd === 'extension') {
    const f = feedOf(c.key)
    const ext = f.registerExtension(c.name, {
      encoding: c.encoding,
      onmessage (msg, peer) {
        const shown = Buffer.isBuffer(msg) ? { hex: msg.toString('hex') } : msg
        out({ event: 'extension', name: c.name, msg: shown })
        const isEcho = (msg && msg.echo) || (typeof msg === 'string' && msg.startsWith('echo:')) ||
          (Buffer.isBuffer(msg) && msg.toString().startsWith('echo:'))
        if (!isEcho) {
          ext.send(c.encoding === 'json' ? { echo: msg } : c.encoding === 'utf-8' ? 'echo:' + msg
            : Buffer.concat([Buffer.from('echo:'), msg]), peer)
        }
      }
    })
    exts.set(c.key + '/' + c.name, ext)
    out({ event: 'extension-registered' })
  } else if (c.cmd === 'ext-send') {
    const ext = exts.get(c.key + '/' + c.name)
    ext.broadcast(c.hex !== undefined ? Buffer.from(c.hex, 'hex') : c.msg)
    out({ event: 'ext-sent' })
  } else if (c.cmd === 'exit') {
    for (const s of sockets) s.destroy()
    await store.close()
    process.exit(0)
  }
}

async function main () {
  await store.ready()
  out({ event: 'ready' })
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (!line.trim()) continue
    const c = JSON.parse(line)
    handle(c).catch((err) => out({ event: 'error', cmd: c.cmd, message: err.message }))
  }
}

main().catch((err) => { process.stderr.write(err.stack + '\n'); process.exit(1) })
