// A JS multi-hyperdrive 1.1.4 node (over hyperdrive 10 / corestore 5) driven by JSON commands on stdin,
// for hypernode's MultiDrive interop tests. One command a line; each answer or event is one JSON line on
// stdout. argv[2] is a storage directory or 'memory'. Every drive lives in one corestore, so one TCP
// connection replicates all of them (and their content feeds) both ways.
//
//   {cmd:'create', name?}                 -> {event:'created', key}  (a new writable drive)
//   {cmd:'open', key}                     -> {event:'opened', key, version, writable}  (a replica: sparse,
//                                           hyperdrive's default; blocks are fetched when read)
//   {cmd:'listen'}                        -> {event:'listening', port}
//   {cmd:'connect', port}                 -> {event:'connected'}
//   {cmd:'versions'}                      -> {event:'versions', versions: {key: version}}  (every drive)
//   {cmd:'wait-versions', versions: {key: version}, timeout?}
//                                         -> {event:'versions', versions}  once each drive's metadata feed
//                                           is at least that long (drives are opened if needed)
//   {cmd:'multi', id?, keys: [key, ...]}  -> {event:'multi', id, drives: [key, ...], writer}  a
//                                           multi-hyperdrive view over the drives, keys[0] the primary;
//                                           answered once every drive is in multi.drives
//   {cmd:'writeFile', id?, path, text|hex}-> {event:'written', path, drive, version}  (drive: the writer)
//   {cmd:'mkdir', id?, path}              -> {event:'made', path, drive, version}
//   {cmd:'unlink', id?, path}             -> {event:'unlinked', path, drive, version}
//   {cmd:'rmdir', id?, path}              -> {event:'removed', path, error, drive, version}  (error: null,
//                                           or the code it failed with, e.g. 'ENOTEMPTY')
//   {cmd:'readdir', id?, path}            -> {event:'readdir', path, names (sorted), error}
//   {cmd:'readFile', id?, path}           -> {event:'file', path, hex, error}
//   {cmd:'stat', id?, path}               -> {event:'stat', path, error, stat: {type, drive, size, mtime,
//                                           ctime, metadata: {name: hex}}}  (times in milliseconds)
//   {cmd:'tombstone', id?, path}          -> {event:'tombstone', path, drive}  (existsTombstone: the drive
//                                           whose active tombstone hides the path, or null)
//   {cmd:'tree', id?}                     -> {event:'tree', tree: {path: {type, drive, hex?}}}: every path
//                                           reached by readdir from '/', files with their bytes (readFile)
//   {cmd:'exit'}
// `id` names a view ('m' if not given). Reads and rmdir answer with `error` (the error code, e.g.
// 'ENOENT') instead of failing; other failures answer {event:'error', cmd, message} and the process
// keeps running. Views answer with the keys of drives in `drive` fields; stat and tree name the drive
// multi-hyperdrive resolved the path to.
//
// What this script does around bugs of multi-hyperdrive 1.1.4 (each seen failing here without it):
// - the constructor adds the primary without waiting for it, and addDrive only calls back once the
//   drive is ready: 'multi' waits for each addDrive callback (and for the primary to be in `sources`)
//   before answering, so no call sees a partial list of drives;
// - existsTombstone compares each tombstone's time with a `lastTime` that is never updated, so with
//   tombstones for one path in two drives, whichever drive answers last decides: the view used here
//   overrides it to let the newest timestamp decide (on a tie, the drive added later), as was meant;
// - rmdir reads `err.code` of the writer's rmdir even when it succeeded (a TypeError on a null err)
//   and calls back twice on ENOTEMPTY: the view overrides it with what it means (ENOTEMPTY from the
//   writer fails once; otherwise an active tombstone is written, even if the writer has no such folder);
// - mkdir(path, cb) re-calls itself as mkdir(path, null, cb) where cb is still undefined (it means
//   opts): 'mkdir' always passes an opts object.
'use strict'
const net = require('net')
const crypto = require('crypto')
const readline = require('readline')
const { join } = require('path').posix
const Corestore = require('corestore')
const hyperdrive = require('hyperdrive')
const RAM = require('random-access-memory')
const { MultiHyperdrive } = require('multi-hyperdrive')
const { Tombstone } = require('multi-hyperdrive/messages')

const store = new Corestore(process.argv[2] && process.argv[2] !== 'memory' ? process.argv[2] : RAM)
const drives = new Map()
const views = new Map()
const sockets = []

function out (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))
const hex = (b) => b.toString('hex')

class PatchedMulti extends MultiHyperdrive {
  existsTombstone (name, cb) {
    const casket = join('.tombstones', name)
    this._runAllDBs('get', [casket, { hidden: true }], (err, results) => {
      if (err) return cb(err)
      const order = this.drives
      let best = null
      for (const { value: node, drive } of results) {
        if (!node || !node.value) continue
        let tomb
        try {
          tomb = Tombstone.decode(node.value)
        } catch (e) {
          continue
        }
        const at = order.indexOf(drive)
        const time = tomb.timestamp || 0
        if (!best || time > best.time || (time === best.time && at > best.at)) best = { time, at, tomb, drive }
      }
      cb(null, best && best.tomb.active ? best.drive : null)
    })
  }

  rmdir (name, cb) {
    this.writerOrPrimary.rmdir(name, (err) => {
      if (err && err.code === 'ENOTEMPTY') return cb(err)
      this.setTombstone(name, true, cb)
    })
  }
}

async function newDrive (name) {
  const drive = hyperdrive(store.namespace(name || hex(crypto.randomBytes(16))))
  drive.on('error', (err) => out({ event: 'drive-error', message: err.message }))
  await p((cb) => drive.ready(cb))
  const key = hex(drive.key)
  if (!drives.has(key)) drives.set(key, drive)
  return drives.get(key)
}

async function openDrive (key) {
  if (drives.has(key)) return drives.get(key)
  const drive = hyperdrive(store, Buffer.from(key, 'hex'))
  drive.on('error', (err) => out({ event: 'drive-error', message: err.message }))
  drives.set(key, drive)
  await p((cb) => drive.ready(cb))
  return drive
}

function viewOf (id) {
  const v = views.get(id || 'm')
  if (!v) throw new Error('unknown view ' + (id || 'm'))
  return v
}

async function makeView (id, keys) {
  const all = []
  for (const key of keys) all.push(await openDrive(key))
  const multi = new PatchedMulti(all[0])
  // the constructor's addDrive(primary) has no callback: wait for the primary to be in the list
  await new Promise((resolve) => {
    if (multi.hasDrive(all[0].key)) return resolve()
    const onAdd = () => {
      if (!multi.hasDrive(all[0].key)) return
      multi.removeListener('drive-add', onAdd)
      resolve()
    }
    multi.on('drive-add', onAdd)
  })
  for (const drive of all.slice(1)) await new Promise((resolve) => multi.addDrive(drive, resolve))
  views.set(id, multi)
  return multi
}

function versions () {
  const v = {}
  for (const [key, drive] of drives) v[key] = drive.version
  return v
}

async function waitVersions (wanted) {
  for (const [key, version] of Object.entries(wanted)) {
    const drive = await openDrive(key)
    while (drive.metadata.length < version) {
      await p((cb) => drive.metadata.update({ minLength: version, ifAvailable: false }, cb))
    }
  }
}

function typeOf (st) {
  return st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : 'file'
}

function statJSON (st) {
  const metadata = {}
  for (const name of Object.keys(st.metadata || {}).sort()) metadata[name] = hex(st.metadata[name])
  return {
    type: typeOf(st),
    drive: st.drive ? hex(st.drive.key) : null,
    size: st.size,
    mtime: st.mtime.getTime(),
    ctime: st.ctime.getTime(),
    metadata
  }
}

async function tree (multi) {
  const entries = {}
  async function visit (path) {
    const names = (await p((cb) => multi.readdir(path, cb))).sort()
    for (const name of names) {
      const child = path === '/' ? '/' + name : path + '/' + name
      const st = await p((cb) => multi.stat(child, cb))
      const entry = { type: typeOf(st), drive: hex(st.drive.key) }
      entries[child] = entry
      if (entry.type === 'directory') await visit(child)
      else entry.hex = hex(await p((cb) => multi.readFile(child, cb)))
    }
  }
  await visit('/')
  const sorted = {}
  for (const path of Object.keys(entries).sort()) sorted[path] = entries[path]
  return sorted
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
    const drive = await newDrive(c.name)
    out({ event: 'created', key: hex(drive.key) })
  } else if (c.cmd === 'open') {
    const drive = await openDrive(c.key)
    out({ event: 'opened', key: c.key, version: drive.version, writable: drive.writable })
  } else if (c.cmd === 'listen') {
    const server = net.createServer((socket) => replicate(socket, false))
    server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }))
  } else if (c.cmd === 'connect') {
    const socket = net.connect(c.port, '127.0.0.1', () => { replicate(socket, true); out({ event: 'connected' }) })
    socket.on('error', (err) => out({ event: 'error', cmd: c.cmd, message: err.message }))
  } else if (c.cmd === 'versions') {
    out({ event: 'versions', versions: versions() })
  } else if (c.cmd === 'wait-versions') {
    const timeout = (c.timeout || 30) * 1000
    let timer
    await Promise.race([
      waitVersions(c.versions),
      new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error('timeout')), timeout) })
    ]).finally(() => clearTimeout(timer))
    out({ event: 'versions', versions: versions() })
  } else if (c.cmd === 'multi') {
    const id = c.id || 'm'
    const multi = await makeView(id, c.keys)
    out({ event: 'multi', id, drives: multi.drives.map((d) => hex(d.key)), writer: multi.writer ? hex(multi.writer.key) : null })
  } else if (c.cmd === 'writeFile') {
    const multi = viewOf(c.id)
    const data = c.hex !== undefined ? Buffer.from(c.hex, 'hex') : Buffer.from(c.text)
    await p((cb) => multi.writeFile(c.path, data, cb))
    out({ event: 'written', path: c.path, drive: hex(multi.writer.key), version: multi.writer.version })
  } else if (c.cmd === 'mkdir') {
    const multi = viewOf(c.id)
    await p((cb) => multi.mkdir(c.path, {}, cb)) // mkdir(path, cb) recurses with cb undefined
    out({ event: 'made', path: c.path, drive: hex(multi.writer.key), version: multi.writer.version })
  } else if (c.cmd === 'unlink') {
    const multi = viewOf(c.id)
    await p((cb) => multi.unlink(c.path, cb))
    out({ event: 'unlinked', path: c.path, drive: hex(multi.writer.key), version: multi.writer.version })
  } else if (c.cmd === 'rmdir') {
    const multi = viewOf(c.id)
    let error = null
    try {
      await p((cb) => multi.rmdir(c.path, cb))
    } catch (err) {
      error = err.code || err.message
    }
    out({ event: 'removed', path: c.path, error, drive: hex(multi.writer.key), version: multi.writer.version })
  } else if (c.cmd === 'readdir') {
    const multi = viewOf(c.id)
    try {
      const names = await p((cb) => multi.readdir(c.path, cb))
      out({ event: 'readdir', path: c.path, names: names.sort(), error: null })
    } catch (err) {
      out({ event: 'readdir', path: c.path, names: null, error: err.code || err.message })
    }
  } else if (c.cmd === 'readFile') {
    const multi = viewOf(c.id)
    try {
      const data = await p((cb) => multi.readFile(c.path, cb))
      out({ event: 'file', path: c.path, hex: hex(data), error: null })
    } catch (err) {
      out({ event: 'file', path: c.path, hex: null, error: err.code || err.message })
    }
  } else if (c.cmd === 'stat') {
    const multi = viewOf(c.id)
    try {
      const st = await p((cb) => multi.stat(c.path, cb))
      out({ event: 'stat', path: c.path, stat: statJSON(st), error: null })
    } catch (err) {
      out({ event: 'stat', path: c.path, stat: null, error: err.code || err.message })
    }
  } else if (c.cmd === 'tombstone') {
    const drive = await p((cb) => viewOf(c.id).existsTombstone(c.path, cb))
    out({ event: 'tombstone', path: c.path, drive: drive ? hex(drive.key) : null })
  } else if (c.cmd === 'tree') {
    out({ event: 'tree', tree: await tree(viewOf(c.id)) })
  } else if (c.cmd === 'exit') {
    for (const s of sockets) s.destroy()
    await store.close()
    process.exit(0)
  } else {
    throw new Error('unknown command ' + c.cmd)
  }
}

async function main () {
  await store.ready()
  out({ event: 'ready' })
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    if (!line.trim()) continue
    let c
    try {
      c = JSON.parse(line)
    } catch (err) {
      out({ event: 'error', message: 'bad JSON: ' + err.message })
      continue
    }
    handle(c).catch((err) => out({ event: 'error', cmd: c.cmd, message: err.message }))
  }
}

process.on('uncaughtException', (err) => out({ event: 'error', message: 'uncaught: ' + err.message }))
process.on('unhandledRejection', (err) => out({ event: 'error', message: 'unhandled: ' + (err && err.message) }))

main().catch((err) => { process.stderr.write(err.stack + '\n'); process.exit(1) })
