// A JS hyperswarm 2.15.3 / @hyperswarm/dht 4.0.1 peer driven by JSON commands on stdin, for hypernode's
// discovery interop tests. One command per line; each answer or event is one JSON line on stdout.
// Every socket is on 127.0.0.1.
//   {cmd:'dht', port?, bootstrap?}            -> {event:'dht', port, id}  a non-ephemeral DHT node on
//                                               127.0.0.1 (bootstrap: list of 'host:port', none: it is
//                                               a bootstrap node)
//   {cmd:'dht-announce', topic, port, bootstrap} -> {event:'dht-announced', error}  (a fresh ephemeral DHT
//                                               client announces port under topic, hex)
//   {cmd:'dht-lookup', topic, bootstrap}      -> {event:'dht-lookup', peers:[{host, port}], error}
//   {cmd:'dht-values', bootstrap}             -> {event:'dht-values', ...}  a fresh ephemeral client puts
//                                               an immutable value and a mutable one (seq 0, then 1, then
//                                               a stale seq 0) and gets them back with another client
//   {cmd:'swarm', bootstrap, tcp?}            -> {event:'swarm', port}  a hyperswarm listening (TCP and
//                                               uTP; tcp:false closes the TCP server, so that peers
//                                               reach it over uTP only); each connection replicates the corestore
//                                               (live, with a fixed Noise key pair, deduplicated by
//                                               hyperswarm's info.deduplicate as corestore-networker
//                                               does); prints {event:'connection', client, host, port,
//                                               transport: 'tcp' or 'utp'}
//   {cmd:'create', files:{path:text}}         -> {event:'created', key, discoveryKey}  a hyperdrive 10
//   {cmd:'open', key}                         -> {event:'opened', discoveryKey}
//   {cmd:'join', key, announce, lookup}       -> {event:'joined'}  (swarm.join(drive.discoveryKey), once
//                                               its first announce/lookup is done);
//                                               peers found print {event:'peer', host, port, local}
//   {cmd:'leave', key}                        -> {event:'left'}
//   {cmd:'wait-file', key, path, timeout?}    -> {event:'file', path, text} once readFile works
//   {cmd:'exit'}
// Failures answer {event:'error', cmd, message}.
//
// Multicast DNS: hyperswarm 2 always opens multicast-dns on the default interface, which is not
// loopback. Unless SWARM_MDNS=loopback (used inside a network namespace whose loopback carries
// multicast), multicast-dns is replaced by an inert stand-in, so that nothing leaves loopback.
'use strict'
const Module = require('module')
const { EventEmitter } = require('events')

const mdnsMode = process.env.SWARM_MDNS || 'off'
const realLoad = Module._load
Module._load = function (request, parent, isMain) {
  const m = realLoad.apply(this, arguments)
  if (request !== 'multicast-dns') return m
  if (mdnsMode === 'loopback') return (opts) => m({ interface: '127.0.0.1', bind: '0.0.0.0', ...(opts || {}) })
  return () => {
    const e = new EventEmitter()
    e.query = () => {}
    e.response = () => {}
    e.destroy = (cb) => { if (cb) process.nextTick(cb) }
    return e
  }
}

const readline = require('readline')
const net = require('net')
const dht = require('@hyperswarm/dht')
const hyperswarm = require('hyperswarm')
const Corestore = require('corestore')
const hyperdrive = require('hyperdrive')
const RAM = require('random-access-memory')
const HypercoreProtocol = require('hypercore-protocol')

function out (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

const store = new Corestore(RAM)
const keyPair = HypercoreProtocol.keyPair()
const drives = new Map()
let swarm = null
let dhtNode = null

function driveOf (key) {
  const d = drives.get(key)
  if (!d) throw new Error('unknown drive ' + key)
  return d
}

function startSwarm (bootstrap, tcp) {
  return new Promise((resolve, reject) => {
    swarm = hyperswarm({ bootstrap, preferredPort: 0, queue: { requeue: [200, 500, 1000] } })
    swarm.on('connection', (socket, info) => {
      const peer = info.peer || {}
      out({ event: 'connection', client: info.client, host: peer.host || socket.remoteAddress, port: peer.port || socket.remotePort, transport: socket instanceof net.Socket ? 'tcp' : 'utp' })
      const stream = store.replicate(info.client, { live: true, keyPair })
      stream.on('handshake', () => {
        if (info.deduplicate(stream.publicKey, stream.remotePublicKey)) out({ event: 'duplicate' })
      })
      socket.on('error', () => {})
      stream.on('error', () => {})
      socket.pipe(stream).pipe(socket)
    })
    swarm.on('peer', (peer) => out({ event: 'peer', host: peer.host, port: peer.port, local: !!peer.local }))
    swarm.listen(0, (err) => {
      if (err) return reject(err)
      const address = swarm.address()
      if (tcp === false) { // uTP only: TCP refused, as through a NAT (hyperswarm still reads the address)
        swarm.network.tcp.close()
        swarm.network.tcp.address = () => address
      }
      resolve(address.port)
    })
  })
}

function collect (stream) {
  return new Promise((resolve) => {
    const peers = []
    let error = null
    stream.on('data', (data) => { for (const p of (data.peers || [])) peers.push({ host: p.host, port: p.port }) })
    stream.on('error', (err) => { error = err.message })
    stream.on('close', () => resolve({ peers, error }))
    stream.on('end', () => resolve({ peers, error }))
  })
}

async function waitFile (drive, path, timeout) {
  const deadline = Date.now() + (timeout || 30) * 1000
  while (true) {
    try {
      const text = await new Promise((resolve, reject) =>
        drive.readFile(path, 'utf-8', (err, t) => err ? reject(err) : resolve(t)))
      return text
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}

async function handle (c) {
  if (c.cmd === 'dht') {
    dhtNode = dht({ bootstrap: c.bootstrap || false, ephemeral: false })
    await new Promise((resolve) => dhtNode.listen(c.port || 0, '127.0.0.1', resolve))
    out({ event: 'dht', port: dhtNode.address().port, id: dhtNode.id.toString('hex') })
  } else if (c.cmd === 'dht-announce' || c.cmd === 'dht-lookup') {
    const client = dht({ bootstrap: c.bootstrap, ephemeral: true })
    await new Promise((resolve) => client.listen(0, '127.0.0.1', resolve))
    await new Promise((resolve) => client.ready(resolve))
    const topic = Buffer.from(c.topic, 'hex')
    if (c.cmd === 'dht-announce') {
      const res = await collect(client.announce(topic, { port: c.port }))
      out({ event: 'dht-announced', error: res.error })
      if (!c.keep) client.destroy()
    } else {
      const res = await collect(client.lookup(topic))
      client.destroy()
      out({ event: 'dht-lookup', peers: res.peers, error: res.error })
    }
  } else if (c.cmd === 'dht-values') {
    const client = () => new Promise((resolve) => {
      const d = dht({ bootstrap: c.bootstrap, ephemeral: true })
      d.listen(0, '127.0.0.1', () => d.ready(() => resolve(d)))
    })
    const a = await client()
    const b = await client()
    const p = (fn) => new Promise((resolve) => fn((err, ...res) => resolve({ err: err ? err.message : null, res })))
    const value = Buffer.from('an immutable value')
    const put = await p((cb) => a.immutable.put(value, cb))
    const got = await p((cb) => b.immutable.get(put.res[0], cb))
    const keypair = a.mutable.keypair()
    const m0 = await p((cb) => a.mutable.put(Buffer.from('v0'), { keypair, seq: 0 }, cb))
    const m1 = await p((cb) => a.mutable.put(Buffer.from('v1'), { keypair, seq: 1 }, cb))
    const stale = await p((cb) => a.mutable.put(Buffer.from('old'), { keypair, seq: 0 }, cb))
    const mget = await p((cb) => b.mutable.get(keypair.publicKey, { seq: 0 }, cb))
    a.destroy()
    b.destroy()
    out({
      event: 'dht-values',
      immutablePut: put.err,
      immutable: got.res[0] ? got.res[0].toString() : null,
      mutablePuts: [m0.err, m1.err, stale.err],
      mutable: mget.res[0] && mget.res[0].value ? mget.res[0].value.toString() : null,
      mutableSeq: mget.res[0] ? mget.res[0].seq : null
    })
  } else if (c.cmd === 'swarm') {
    const port = await startSwarm(c.bootstrap, c.tcp)
    out({ event: 'swarm', port })
  } else if (c.cmd === 'create') {
    const drive = hyperdrive(store, null)
    await new Promise((resolve, reject) => drive.ready((err) => err ? reject(err) : resolve()))
    for (const [path, text] of Object.entries(c.files || {})) {
      await new Promise((resolve, reject) => drive.writeFile(path, text, (err) => err ? reject(err) : resolve()))
    }
    drives.set(drive.key.toString('hex'), drive)
    out({ event: 'created', key: drive.key.toString('hex'), discoveryKey: drive.discoveryKey.toString('hex') })
  } else if (c.cmd === 'open') {
    const drive = hyperdrive(store, Buffer.from(c.key, 'hex'))
    await new Promise((resolve, reject) => drive.ready((err) => err ? reject(err) : resolve()))
    drives.set(c.key, drive)
    out({ event: 'opened', discoveryKey: drive.discoveryKey.toString('hex') })
  } else if (c.cmd === 'join') {
    const drive = driveOf(c.key)
    swarm.join(drive.discoveryKey, { announce: !!c.announce, lookup: c.lookup !== false }, () => out({ event: 'joined' }))
  } else if (c.cmd === 'leave') {
    const drive = driveOf(c.key)
    await new Promise((resolve) => swarm.leave(drive.discoveryKey, resolve))
    out({ event: 'left' })
  } else if (c.cmd === 'wait-file') {
    const text = await waitFile(driveOf(c.key), c.path, c.timeout)
    out({ event: 'file', path: c.path, text })
  } else if (c.cmd === 'exit') {
    process.exit(0)
  } else {
    throw new Error('unknown command ' + c.cmd)
  }
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  let c
  try {
    c = JSON.parse(line)
  } catch (err) {
    out({ event: 'error', cmd: null, message: 'bad JSON' })
    return
  }
  handle(c).catch((err) => out({ event: 'error', cmd: c.cmd, message: err.message }))
})
rl.on('close', () => process.exit(0))
process.on('uncaughtException', (err) => out({ event: 'error', cmd: null, message: 'uncaught: ' + err.message }))
