// A JS hyperdrive 10 / corestore 5 node driven by JSON commands on stdin, for hypernode's drive interop
// tests. Each command is one line; each answer or event is one JSON line on stdout. argv[2] is a storage
// directory or 'memory'. All drives live in one corestore, so one connection replicates every drive,
// its content feed and its mounts.
//   {cmd:'create', name?}                     -> {event:'created', key, contentKey}  (new writable drive in
//                                               namespace `name`, a random one if not given)
//   {cmd:'open', key}                         -> {event:'opened', key, version, writable}  (hyperdrive's
//                                               default: sparse metadata and content)
//   {cmd:'fixture', key, mountKey?}           -> {event:'fixture-done', version, mountKey}  (THE STANDARD
//                                               FIXTURE below, into a writable drive)
//   {cmd:'write', key, path, text|hex}        -> {event:'written', version}
//   {cmd:'ops', key, ops: [op, ...]}          -> {event:'ops-done', version, errors}  (each op in turn;
//                                               errors[i] is the error code op i failed with, or null)
//       op = {op:'mkdir', path} | {op:'writeFile', path, text|hex} | {op:'symlink', target, path} |
//            {op:'unlink', path} | {op:'rmdir', path} | {op:'create', path} |
//            {op:'setMetadata', path, name, hex} |
//            {op:'mount', path, mountKey} | {op:'unmount', path} | {op:'copy', from, to}
//   {cmd:'report', key}                       -> {event:'report', report}  (REPORT SCHEMA below)
//   {cmd:'listen'}                            -> {event:'listening', port}
//   {cmd:'connect', port}                     -> {event:'connected'}
//   {cmd:'download', key, version?}           -> {event:'downloaded', key, version}  (waits until the
//                                               metadata reaches `version` if given, else until the peers
//                                               have nothing newer, then until every block of the drive's
//                                               metadata and content feeds and of every mount's is local)
//   {cmd:'wait-file', key, path, timeout?}    -> {event:'file', path, sha256} once readFile(path) works
//                                               (polled; {event:'error'} after `timeout` seconds, default 30)
//   {cmd:'extension', key, name, encoding}   -> {event:'extension-registered'}; messages received
//                                               on it print {event:'extension', name, msg} and are
//                                               echoed back to the sender as {echo: msg} (json) or
//                                               'echo:' + msg (utf-8 / binary)  (drive.registerExtension,
//                                               i.e. on the metadata feed's channels)
//   {cmd:'ext-send', key, name, msg|hex}     -> {event:'ext-sent'} (broadcast to the drive's peers)
//   {cmd:'diff', key, other?, prefix?}        -> {event:'diff', changes: [{type, name, seq, previous, value}]}
//                                               (createDiffStream(other, prefix), in its order; seq and
//                                               previous.seq null where JS leaves them undefined; value:
//                                               STAT (as in REPORT) for put, {key, localPath, version,
//                                               remotePath} for mount, null otherwise)
//   {cmd:'stats', key, path, opts?}           -> {event:'stats', stats}  ({file: FILESTATS} or {folder:
//                                               {path: FILESTATS}}, FILESTATS = {blocks, size,
//                                               downloadedBlocks})
//   {cmd:'read', key, path}                   -> {event:'read', sha256}  (readFile, fetching what is missing)
//   {cmd:'clear', key, path}                  -> {event:'cleared'}
//   {cmd:'feeds', key}                        -> {event:'feeds', feeds: [{mount, role, key, length,
//                                               downloaded, remote}]} for the metadata and content feeds
//                                               of the drive and its mounts (getAllMounts); remote: blocks
//                                               of [0, length) some peer says it has (its remoteBitfield)
//   {cmd:'mirror', key}                       -> {event:'mirroring'}  (drive.mirror())
//   {cmd:'destroy', key}                      -> {event:'destroyed'}  (drive.destroyStorage())
//   {cmd:'exit'}
// Failures answer {event:'error', cmd, message}; the process keeps running.
//
// THE STANDARD FIXTURE, in this order, one call each (the order fixes every version, offset and
// byteOffset; writeFile splits content into blocks of 512 KiB):
//    1. mkdir /a                                                  (each mkdir is one trie node)
//    2. mkdir /a/b
//    3. mkdir /a/b/c
//    4. writeFile /empty.txt        ''                (size 0, but JS appends one empty block: blocks 1)
//    5. writeFile /a/one-k.bin      fixtureBytes(1024)                  (1 block)
//    6. writeFile /a/b/eight-m.bin  fixtureBytes(8 MiB = 8388608)       (16 blocks of 512 KiB)
//    7. writeFile /a/b/c/deep.txt   'deep\n'
//    8. symlink('/a/one-k.bin', '/link')                                 (/link -> /a/one-k.bin)
//    9. setMetadata('/a/one-k.bin', 'color', Buffer.from('blue'))
//   10. setMetadata('/a/one-k.bin', 'n', Buffer.from([1, 2, 3]))
//   11. mount('/mnt', mountKey)           (two trie nodes: the hidden mount record and the stat)
//       If no mountKey is given, a second drive is first created in the same corestore (namespace
//       'fixture-mount') and writeFile /inside.txt 'inside mount\n' is done in it (its version: 2).
//   12. writeFile /over.txt 'first'
//   13. writeFile /over.txt 'second version'
//   14. writeFile /gone.txt 'gone\n'
//   15. unlink /gone.txt
// fixtureBytes(size) = the first `size` bytes of block('fixture', 0, 65536) + block('fixture', 1, 65536)
// + ..., where block(seed, i, size) = sha256(seed + ':' + i) repeated to `size` bytes (as in
// store_peer.js). So /a/one-k.bin is block('fixture', 0, 1024), the first KiB of /a/b/eight-m.bin.
// A fresh fixture leaves the drive at version 17 (the header + 16 trie nodes), its content feed at 22
// blocks / 8389661 bytes; content offsets: /empty.txt 0, /a/one-k.bin 1, /a/b/eight-m.bin 2 (byteOffset
// 1024), /a/b/c/deep.txt 18, /mnt 19 (a mount records the content position too), /over.txt 20.
//
// REPORT SCHEMA: {[absolute path]: entry} for '/' and every path reached from it by readdir, recursing
// into directories and mounts (readdir of a mount point lists the mounted drive), not following
// symlinks. Paths are '/'-joined ('/a/b', '/mnt/inside.txt'); the object's keys are sorted. entry =
//   {
//     type: 'file' | 'directory' | 'symlink' | 'mount',  // from lstat: symlink if isSymbolicLink(),
//                                                        // else mount if stat.mount, else directory if
//                                                        // isDirectory(), else file
//     mode, uid, gid, size, blocks, offset, byteOffset,   // numbers, as lstat gives them
//     mtime, ctime,      // milliseconds (numbers); null for '/', which has no entry and gets "now" from JS
//     linkname,          // string for symlinks, else null
//     mount,             // {key: hex, version: number (0 when not pinned)} for mounts, else null
//     metadata,          // {name: hex of the value}, keys sorted; {} when none
//     sha256,            // hex sha256 of readFile(path) for files, else null
//     children           // sorted readdir(path) names for directories and mounts, else null
//   }
// Note '/' and directories without an entry of their own are stat'ed by hyperdrive itself (a
// directory Stat); '/' gets mode 0o40755 (16877) and zeros.
'use strict'
const net = require('net')
const crypto = require('crypto')
const readline = require('readline')
const Corestore = require('corestore')
const hyperdrive = require('hyperdrive')
const RAM = require('random-access-memory')

const store = new Corestore(process.argv[2] && process.argv[2] !== 'memory' ? process.argv[2] : RAM)
const drives = new Map()
const exts = new Map()
const sockets = []

function out (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const hex = (b) => b.toString('hex')
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex')

function block (seed, i, size) {
  const h = crypto.createHash('sha256').update(seed + ':' + i).digest()
  const b = Buffer.alloc(size)
  for (let o = 0; o < size; o += 32) h.copy(b, o, 0, Math.min(32, size - o))
  return b
}

function fixtureBytes (size) {
  const parts = []
  for (let i = 0; i * 65536 < size; i++) parts.push(block('fixture', i, 65536))
  return Buffer.concat(parts).subarray(0, size)
}

function driveOf (key) {
  const d = drives.get(key)
  if (!d) throw new Error('unknown drive ' + key)
  return d
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
  await p((cb) => drive.ready(cb))
  if (!drives.has(key)) drives.set(key, drive)
  return drives.get(key)
}

async function contentKey (drive) {
  return hex((await p((cb) => drive.getContent(cb))).key)
}

async function fixture (drive, mountKey) {
  const w = (path, data) => p((cb) => drive.writeFile(path, data, cb))
  await p((cb) => drive.mkdir('/a', cb))
  await p((cb) => drive.mkdir('/a/b', cb))
  await p((cb) => drive.mkdir('/a/b/c', cb))
  await w('/empty.txt', Buffer.alloc(0))
  await w('/a/one-k.bin', fixtureBytes(1024))
  await w('/a/b/eight-m.bin', fixtureBytes(8 * 1024 * 1024))
  await w('/a/b/c/deep.txt', Buffer.from('deep\n'))
  await p((cb) => drive.symlink('/a/one-k.bin', '/link', cb))
  await p((cb) => drive.setMetadata('/a/one-k.bin', 'color', Buffer.from('blue'), cb))
  await p((cb) => drive.setMetadata('/a/one-k.bin', 'n', Buffer.from([1, 2, 3]), cb))
  if (!mountKey) {
    const inner = await newDrive('fixture-mount')
    await p((cb) => inner.writeFile('/inside.txt', Buffer.from('inside mount\n'), cb))
    mountKey = hex(inner.key)
  }
  await p((cb) => drive.mount('/mnt', Buffer.from(mountKey, 'hex'), cb))
  await w('/over.txt', Buffer.from('first'))
  await w('/over.txt', Buffer.from('second version'))
  await w('/gone.txt', Buffer.from('gone\n'))
  await p((cb) => drive.unlink('/gone.txt', cb))
  return mountKey
}

async function runOps (drive, ops) {
  const errors = []
  for (const o of ops) {
    const data = () => o.hex !== undefined ? Buffer.from(o.hex, 'hex') : Buffer.from(o.text)
    try {
      if (o.op === 'mkdir') await p((cb) => drive.mkdir(o.path, cb))
      else if (o.op === 'writeFile') await p((cb) => drive.writeFile(o.path, data(), cb))
      else if (o.op === 'symlink') await p((cb) => drive.symlink(o.target, o.path, cb))
      else if (o.op === 'unlink') await p((cb) => drive.unlink(o.path, cb))
      else if (o.op === 'rmdir') await p((cb) => drive.rmdir(o.path, cb))
      else if (o.op === 'create') await p((cb) => drive.create(o.path, cb))
      else if (o.op === 'setMetadata') await p((cb) => drive.setMetadata(o.path, o.name, Buffer.from(o.hex, 'hex'), cb))
      else if (o.op === 'mount') await p((cb) => drive.mount(o.path, Buffer.from(o.mountKey, 'hex'), cb))
      else if (o.op === 'unmount') await p((cb) => drive.unmount(o.path, cb))
      else if (o.op === 'copy') await p((cb) => drive.copy(o.from, o.to, cb))
      else throw new Error('unknown op ' + o.op)
      errors.push(null)
    } catch (err) {
      errors.push(err.code || err.message)
    }
  }
  return errors
}

function statEntry (st) {
  const metadata = {}
  for (const name of Object.keys(st.metadata || {}).sort()) metadata[name] = hex(st.metadata[name])
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    blocks: st.blocks,
    offset: st.offset,
    byteOffset: st.byteOffset,
    mtime: st.mtime.getTime(),
    ctime: st.ctime.getTime(),
    linkname: st.linkname || null,
    mount: st.mount ? { key: hex(st.mount.key), version: st.mount.version || 0 } : null,
    metadata
  }
}

async function diffOf (drive, other, prefix) {
  const changes = []
  const stream = drive.createDiffStream(other, prefix || '/')
  for await (const c of stream) {
    let value = null
    if (c.type === 'put') value = statEntry(c.value)
    else if (c.type === 'mount') {
      value = { key: hex(c.value.key), localPath: c.value.localPath, version: c.value.version || null,
        remotePath: c.value.remotePath || null }
    }
    changes.push({ type: c.type, name: c.name, seq: c.seq === undefined ? null : c.seq,
      previous: c.previous ? (c.previous.seq === undefined ? null : c.previous.seq) : null, value })
  }
  return changes
}

async function statsOf (drive, path, opts) {
  const fileStats = (s) => ({ blocks: s.blocks, size: s.size, downloadedBlocks: s.downloadedBlocks })
  const s = await p((cb) => opts ? drive.stats(path, opts, cb) : drive.stats(path, cb))
  if (!(s instanceof Map)) return { file: fileStats(s) }
  const folder = {}
  for (const [k, v] of s) folder[k] = fileStats(v)
  return { folder }
}

async function feedsOf (drive) {
  const out = []
  const mounts = await p((cb) => drive.getAllMounts({ content: true }, cb))
  for (const [mount, { metadata, content }] of mounts) {
    for (const [role, feed] of [['metadata', metadata], ['content', content]]) {
      if (!feed) continue
      let remote = 0
      for (let i = 0; i < feed.length; i++) {
        if (feed.peers.some((peer) => peer.remoteBitfield && peer.remoteBitfield.get(i))) remote++
      }
      out.push({ mount, role, key: hex(feed.key), length: feed.length,
        downloaded: feed.downloaded(0, feed.length), remote })
    }
  }
  return out
}

async function report (drive) {
  const entries = {}
  async function visit (path) {
    const st = await p((cb) => drive.lstat(path, cb))
    const type = st.isSymbolicLink() ? 'symlink' : st.mount ? 'mount' : st.isDirectory() ? 'directory' : 'file'
    const metadata = {}
    for (const name of Object.keys(st.metadata || {}).sort()) metadata[name] = hex(st.metadata[name])
    const entry = {
      type,
      mode: st.mode,
      uid: st.uid,
      gid: st.gid,
      size: st.size,
      blocks: st.blocks,
      offset: st.offset,
      byteOffset: st.byteOffset,
      mtime: path === '/' ? null : st.mtime.getTime(),
      ctime: path === '/' ? null : st.ctime.getTime(),
      linkname: st.linkname || null,
      mount: st.mount ? { key: hex(st.mount.key), version: st.mount.version || 0 } : null,
      metadata,
      sha256: type === 'file' ? sha256(await p((cb) => drive.readFile(path, cb))) : null,
      children: null
    }
    entries[path] = entry
    if (type === 'directory' || type === 'mount') {
      entry.children = (await p((cb) => drive.readdir(path, cb))).sort()
      for (const name of entry.children) await visit(path === '/' ? '/' + name : path + '/' + name)
    }
  }
  await visit('/')
  const sorted = {}
  for (const path of Object.keys(entries).sort()) sorted[path] = entries[path]
  return sorted
}

// update() with ifAvailable: resolves when the peers have answered; "no update" is not an error here
async function updateIfAvailable (feed) {
  try {
    await p((cb) => feed.update({ ifAvailable: true, hash: false }, cb))
  } catch (err) {}
}

async function downloadFeed (feed) {
  if (!feed.writable) await updateIfAvailable(feed)
  const local = () => p((cb) => feed.downloaded(0, feed.length, cb))
  // hypercore 9's download() of a range that is already local never calls back: ask only for missing
  if (feed.length && await local() < feed.length) {
    await p((cb) => feed.download({ start: 0, end: feed.length }, cb))
  }
  const have = await local()
  if (have !== feed.length) throw new Error(`feed ${hex(feed.key)}: ${have} of ${feed.length} blocks local`)
}

async function downloadAll (drive, version) {
  const meta = drive.metadata
  if (version) while (meta.length < version) await p((cb) => meta.update({ minLength: version }, cb))
  const done = new Set()
  for (;;) {
    await downloadFeed(meta)
    done.add(meta)
    const content = await p((cb) => drive.getContent(cb))
    await downloadFeed(content)
    done.add(content)
    // mounts (and mounts inside mounts): download until a pass finds no new feed
    const mounts = await p((cb) => drive.getAllMounts({ content: true }, cb))
    let fresh = false
    for (const { metadata, content } of mounts.values()) {
      for (const feed of [metadata, content]) {
        if (!feed || done.has(feed)) continue
        await downloadFeed(feed)
        done.add(feed)
        fresh = true
      }
    }
    if (!fresh) break
  }
  return drive.version
}

async function waitFile (drive, path, timeout) {
  const deadline = Date.now() + timeout * 1000
  let last = null
  while (Date.now() < deadline) {
    const attempt = (async () => {
      if (!drive.metadata.writable) await updateIfAvailable(drive.metadata)
      return p((cb) => drive.readFile(path, cb))
    })()
    const left = deadline - Date.now()
    try {
      const data = await Promise.race([attempt, sleep(left).then(() => { throw new Error('timeout') })])
      return sha256(data)
    } catch (err) {
      last = err
      attempt.catch(() => {})
    }
    await sleep(100)
  }
  throw new Error(`timeout waiting for ${path}: ${last && last.message}`)
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
    out({ event: 'created', key: hex(drive.key), contentKey: await contentKey(drive) })
  } else if (c.cmd === 'open') {
    const drive = await openDrive(c.key)
    out({ event: 'opened', key: c.key, version: drive.version, writable: drive.writable })
  } else if (c.cmd === 'fixture') {
    const drive = driveOf(c.key)
    const mountKey = await fixture(drive, c.mountKey)
    out({ event: 'fixture-done', version: drive.version, mountKey })
  } else if (c.cmd === 'write') {
    const drive = driveOf(c.key)
    const data = c.hex !== undefined ? Buffer.from(c.hex, 'hex') : Buffer.from(c.text)
    await p((cb) => drive.writeFile(c.path, data, cb))
    out({ event: 'written', version: drive.version })
  } else if (c.cmd === 'ops') {
    const drive = driveOf(c.key)
    const errors = await runOps(drive, c.ops)
    out({ event: 'ops-done', version: drive.version, errors })
  } else if (c.cmd === 'report') {
    out({ event: 'report', report: await report(driveOf(c.key)) })
  } else if (c.cmd === 'listen') {
    const server = net.createServer((socket) => replicate(socket, false))
    server.listen(0, '127.0.0.1', () => out({ event: 'listening', port: server.address().port }))
  } else if (c.cmd === 'connect') {
    const socket = net.connect(c.port, '127.0.0.1', () => { replicate(socket, true); out({ event: 'connected' }) })
    socket.on('error', (err) => out({ event: 'error', cmd: c.cmd, message: err.message }))
  } else if (c.cmd === 'download') {
    const version = await downloadAll(driveOf(c.key), c.version)
    out({ event: 'downloaded', key: c.key, version })
  } else if (c.cmd === 'wait-file') {
    const sum = await waitFile(driveOf(c.key), c.path, c.timeout || 30)
    out({ event: 'file', path: c.path, sha256: sum })
  } else if (c.cmd === 'extension') {
    const drive = driveOf(c.key)
    const ext = drive.registerExtension(c.name, {
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
    if (!ext) throw new Error('unknown extension ' + c.name)
    ext.broadcast(c.hex !== undefined ? Buffer.from(c.hex, 'hex') : c.msg)
    out({ event: 'ext-sent' })
  } else if (c.cmd === 'diff') {
    out({ event: 'diff', changes: await diffOf(driveOf(c.key), c.other, c.prefix) })
  } else if (c.cmd === 'stats') {
    out({ event: 'stats', stats: await statsOf(driveOf(c.key), c.path, c.opts) })
  } else if (c.cmd === 'read') {
    out({ event: 'read', sha256: sha256(await p((cb) => driveOf(c.key).readFile(c.path, cb))) })
  } else if (c.cmd === 'clear') {
    await p((cb) => driveOf(c.key).clear(c.path, cb))
    out({ event: 'cleared' })
  } else if (c.cmd === 'feeds') {
    out({ event: 'feeds', feeds: await feedsOf(driveOf(c.key)) })
  } else if (c.cmd === 'mirror') {
    driveOf(c.key).mirror()
    out({ event: 'mirroring' })
  } else if (c.cmd === 'destroy') {
    const drive = driveOf(c.key)
    await p((cb) => drive.destroyStorage(cb))
    drives.delete(c.key)
    out({ event: 'destroyed' })
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
