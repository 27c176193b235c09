// A corestore 7.12.5 replicating over real TCP, for interop/test_core11_replication_interop.py.
// Usage: node repl_peer.js listen|connect PORT STORAGE_DIR
//   listen: a TCP server on 127.0.0.1 (prints {"event":"listening","port"}); every connection is
//           store.replicate(false) (the responder); connect: one connection to 127.0.0.1:PORT as the
//           initiator. {"event":"connection"} when a socket is up, {"event":"streamClose"} and
//           {"event":"streamError","message"} as the replication stream ends.
// Commands on stdin, one JSON object a line; each answers one event (or {"event":"error","message"}):
//   {"cmd":"create","name","count","size","tag"}  store.get({name}), append count blocks ->
//        {"event":"created","key","discoveryKey","publicKey","length"}
//   {"cmd":"open","key"}          store.get({key}) (a reader) -> {"event":"opened","length"}
//   {"cmd":"append","key","start","count","size","tag"} -> {"event":"appended","length"}
//   {"cmd":"truncate","key","length"}  -> {"event":"truncated","length","fork"}
//   {"cmd":"download","key","start","end"}  core.download({start,end}).done() -> {"event":"downloaded"}
//   {"cmd":"downloadAll","key"}   core.download() (everything, live; not awaited) -> {"event":"downloading"}
//   {"cmd":"waitLength","key","length"}  until core.length >= length -> {"event":"length","length"}
//   {"cmd":"check","key","start","end"}  which blocks are held locally, and the sha256 of
//        (uint32be index, block) for each of them in order -> {"event":"check","held","digest","length","fork"}
//   {"cmd":"connect"}             (connect mode) dial PORT now -> {"event":"dialing"}
//   {"cmd":"tamper","mode"}  every data message sent from now on is altered: "block" flips a byte of
//        the block, "signature" of the upgrade's signature, "nodes" of the first proof node's hash
//        -> {"event":"tampering"}
// Block i of a tag is the ASCII "<tag>-<i>-" padded to size with the byte (i * 31 + 7) & 255.
const net = require('net')
const crypto = require('crypto')
const readline = require('readline')
const Corestore = require('corestore')
const Replicator = require('hypercore/lib/replicator')

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')

function block (tag, i, size) {
  const b = Buffer.alloc(size, (i * 31 + 7) & 255)
  Buffer.from(`${tag}-${i}-`).copy(b)
  return b
}

let tamper = null
const onopen = Replicator.Peer.prototype.onopen
Replicator.Peer.prototype.onopen = function (m) {
  const wire = this.wireData
  if (!wire._tamperable) {
    const send = wire.send.bind(wire)
    wire.send = (msg) => {
      if (tamper === 'block' && msg.block) {
        const v = Buffer.from(msg.block.value)
        v[0] ^= 1
        msg = { ...msg, block: { ...msg.block, value: v } }
      } else if (tamper === 'signature' && msg.upgrade && msg.upgrade.signature) {
        const s = Buffer.from(msg.upgrade.signature)
        s[5] ^= 1
        msg = { ...msg, upgrade: { ...msg.upgrade, signature: s } }
      } else if (tamper === 'nodes' && msg.block && msg.block.nodes.length) {
        const nodes = msg.block.nodes.map((n, k) => k === 0 ? { ...n, hash: Buffer.from(n.hash).fill(7, 0, 4) } : n)
        msg = { ...msg, block: { ...msg.block, nodes } }
      }
      return send(msg)
    }
    wire._tamperable = true
  }
  return onopen.call(this, m)
}

const [mode, port, dir] = process.argv.slice(2)
const store = new Corestore(dir)
const cores = new Map()

function core (key) {
  const c = cores.get(key)
  if (!c) throw new Error('no core ' + key)
  return c
}

function connect (socket, isInitiator) {
  const s = store.replicate(isInitiator)
  socket.pipe(s).pipe(socket)
  s.on('error', (err) => out({ event: 'streamError', message: err.message }))
  socket.on('error', () => {})
  s.on('close', () => { out({ event: 'streamClose' }); socket.destroy() })
  out({ event: 'connection' })
}

async function handle (cmd) {
  if (cmd.cmd === 'create') {
    const c = store.get({ name: cmd.name })
    await c.ready()
    const blocks = []
    for (let i = 0; i < cmd.count; i++) blocks.push(block(cmd.tag, i, cmd.size))
    if (blocks.length) await c.append(blocks)
    cores.set(hex(c.key), c)
    return { event: 'created', key: hex(c.key), discoveryKey: hex(c.discoveryKey), publicKey: hex(c.keyPair.publicKey), length: c.length }
  }
  if (cmd.cmd === 'open') {
    const c = store.get({ key: Buffer.from(cmd.key, 'hex') })
    await c.ready()
    cores.set(cmd.key, c)
    return { event: 'opened', length: c.length }
  }
  if (cmd.cmd === 'append') {
    const c = core(cmd.key)
    const blocks = []
    for (let i = cmd.start; i < cmd.start + cmd.count; i++) blocks.push(block(cmd.tag, i, cmd.size))
    await c.append(blocks)
    return { event: 'appended', length: c.length }
  }
  if (cmd.cmd === 'truncate') {
    const c = core(cmd.key)
    await c.truncate(cmd.length)
    return { event: 'truncated', length: c.length, fork: c.fork }
  }
  if (cmd.cmd === 'download') {
    await core(cmd.key).download({ start: cmd.start, end: cmd.end }).done()
    return { event: 'downloaded' }
  }
  if (cmd.cmd === 'downloadAll') {
    core(cmd.key).download()
    return { event: 'downloading' }
  }
  if (cmd.cmd === 'waitLength') {
    const c = core(cmd.key)
    while (c.length < cmd.length) await new Promise((resolve) => c.once('append', resolve))
    return { event: 'length', length: c.length }
  }
  if (cmd.cmd === 'check') {
    const c = core(cmd.key)
    const h = crypto.createHash('sha256')
    let held = 0
    for (let i = cmd.start; i < cmd.end; i++) {
      if (!(await c.has(i))) continue
      const b = await c.get(i, { wait: false })
      if (b === null) continue // (dropped meanwhile: a reorg under way)
      const idx = Buffer.alloc(4)
      idx.writeUInt32BE(i)
      h.update(idx)
      h.update(b)
      held++
    }
    return { event: 'check', held, digest: h.digest('hex'), length: c.length, fork: c.fork }
  }
  if (cmd.cmd === 'connect') {
    // the initiator dials 127.0.0.1:PORT (connect mode), once the cores it replicates are open
    const socket = net.connect(Number(port), '127.0.0.1')
    socket.on('connect', () => connect(socket, true))
    socket.on('error', (err) => out({ event: 'streamError', message: err.message }))
    return { event: 'dialing' }
  }
  if (cmd.cmd === 'tamper') {
    tamper = cmd.mode
    return { event: 'tampering' }
  }
  throw new Error('unknown command ' + cmd.cmd)
}

async function main () {
  await store.ready()
  // commands run one after the other, in order
  let chain = Promise.resolve()
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const cmd = JSON.parse(line)
    chain = chain.then(() => handle(cmd)).then(out, (err) => out({ event: 'error', message: err.message }))
  })
  rl.on('close', () => process.exit(0))
  if (mode === 'listen') {
    const server = net.createServer((socket) => connect(socket, false))
    server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }))
  }
}

main().catch((err) => { out({ event: 'error', message: err.message }); process.exit(1) })
