// JS side of drive_bench.py: hyperdrive 10.21.0 on corestore 5.8.2. One role per process; each prints
// JSON lines on stdout.
//   node drive_bench.js local DIR|memory SPEC_JSON  -> {bigWrite, bigRead, bigReadReopened, smallWrite,
//                                                      smallRead} seconds (bigReadReopened: null on memory)
//   node drive_bench.js serve DIR SPEC_JSON         -> {key, port, version} once the drive is written and
//                                                      the store listens on 127.0.0.1; serves until killed
//   node drive_bench.js clone DIR KEY PORT VERSION  -> {seconds, files, bytes, sha256, contentBlocks,
//                                                      contentLocal}
// SPEC = {bigSize, smallCount, smallSize}. The content is the same as drive_py.py writes:
//   /big.bin          chunk i (64 KiB) = sha256('drive-bench:' + i) repeated, cut to bigSize bytes
//   /small/NNNN.bin   sha256('small:' + n) repeated to smallSize bytes (NNNN: n zero-padded to 4 digits)
// DIR is a directory (random-access-file storage) or 'memory' (random-access-memory).
'use strict'
const net = require('net')
const crypto = require('crypto')
const Corestore = require('corestore')
const hyperdrive = require('hyperdrive')
const RAM = require('random-access-memory')

const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))
const now = () => Number(process.hrtime.bigint()) / 1e9
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

function repeat (seed, size) {
  const h = crypto.createHash('sha256').update(seed).digest()
  const b = Buffer.alloc(size)
  for (let o = 0; o < size; o += 32) h.copy(b, o, 0, Math.min(32, size - o))
  return b
}

function bigFile (size) {
  const parts = []
  for (let i = 0; i * 65536 < size; i++) parts.push(repeat('drive-bench:' + i, 65536))
  return Buffer.concat(parts).subarray(0, size)
}

const smallPath = (n) => '/small/' + String(n).padStart(4, '0') + '.bin'
const smallFile = (n, size) => repeat('small:' + n, size)

function openStore (dir) {
  return new Corestore(dir === 'memory' ? RAM : dir)
}

async function newDrive (store, name) {
  const drive = hyperdrive(store.namespace(name))
  await p((cb) => drive.ready(cb))
  return drive
}

async function local (dir, spec) {
  const store = openStore(dir)
  await store.ready()
  const big = bigFile(spec.bigSize)
  const smalls = []
  for (let n = 0; n < spec.smallCount; n++) smalls.push(smallFile(n, spec.smallSize))

  const a = await newDrive(store, 'big')
  let t = now()
  await p((cb) => a.writeFile('/big.bin', big, cb))
  const bigWrite = now() - t
  t = now()
  const back = await p((cb) => a.readFile('/big.bin', cb))
  const bigRead = now() - t
  if (!back.equals(big)) throw new Error('/big.bin read back differs')

  const b = await newDrive(store, 'small')
  t = now()
  for (let n = 0; n < smalls.length; n++) await p((cb) => b.writeFile(smallPath(n), smalls[n], cb))
  const smallWrite = now() - t
  t = now()
  for (let n = 0; n < smalls.length; n++) {
    const data = await p((cb) => b.readFile(smallPath(n), cb))
    if (data.length !== spec.smallSize) throw new Error(smallPath(n) + ' read back differs')
  }
  const smallRead = now() - t
  const key = a.key
  await store.close()
  let bigReadReopened = null
  if (dir !== 'memory') {
    const again = openStore(dir)
    await again.ready()
    const c = hyperdrive(again, key)
    await p((cb) => c.ready(cb))
    t = now()
    const back = await p((cb) => c.readFile('/big.bin', cb))
    bigReadReopened = now() - t
    if (!back.equals(big)) throw new Error('/big.bin read back differs after reopening')
    await again.close()
  }
  out({ bigWrite, bigRead, bigReadReopened, smallWrite, smallRead })
}

async function serve (dir, spec) {
  const store = openStore(dir)
  await store.ready()
  const drive = await newDrive(store, 'bench')
  await p((cb) => drive.writeFile('/big.bin', bigFile(spec.bigSize), cb))
  for (let n = 0; n < spec.smallCount; n++) {
    await p((cb) => drive.writeFile(smallPath(n), smallFile(n, spec.smallSize), cb))
  }
  const server = net.createServer((socket) => {
    const stream = store.replicate(false, { live: true })
    socket.pipe(stream).pipe(socket)
    socket.on('error', () => {})
    stream.on('error', () => {})
  })
  server.listen(0, '127.0.0.1', () => {
    out({ key: drive.key.toString('hex'), port: server.address().port, version: drive.version })
  })
}

async function clone (dir, key, port, version) {
  const store = openStore(dir)
  await store.ready()
  // full replication of both feeds, as hypernode's Corestore does by default
  const drive = hyperdrive(store, Buffer.from(key, 'hex'), { sparse: false, sparseMetadata: false })
  await p((cb) => drive.ready(cb))
  const t0 = now()
  const socket = net.connect(port, '127.0.0.1')
  const stream = store.replicate(true, { live: true })
  socket.pipe(stream).pipe(socket)
  socket.on('error', () => {})
  stream.on('error', () => {})
  const dbg = (m) => process.env.DRIVE_BENCH_DEBUG && process.stderr.write(m + ' ' + (now() - t0).toFixed(3) + '\n')
  while (drive.metadata.length < version) await p((cb) => drive.metadata.update({ minLength: version }, cb))
  dbg('version')
  // the whole trie, then every file's blocks, one file after another, as hypernode's download('/') does.
  // (hyperdrive's own download('/') can never call back: its _walk records a file's range after asking
  // for it, so a range that is already local is reported done before it is recorded, and stays pending;
  // seen in most runs with 1,000 files)
  await p((cb) => drive.metadata.download({ start: 0, end: drive.metadata.length }, cb))
  dbg('metadata local')
  const entries = await p((cb) => drive.readdir('/', { recursive: true, includeStats: true }, cb))
  const content = await p((cb) => drive.getContent(cb))
  for (const { stat } of entries) {
    if (!stat.blocks || stat.mount || stat.isDirectory()) continue
    await p((cb) => content.download({ start: stat.offset, end: stat.offset + stat.blocks }, cb))
  }
  dbg('downloaded')
  const seconds = now() - t0

  // verify: every block of the content feed is local, and every file reads back (the digest is checked
  // by drive_bench.py against the content it expects)
  const contentLocal = await p((cb) => content.downloaded(0, content.length, cb))
  const paths = (await p((cb) => drive.readdir('/', cb))).filter((n) => n !== 'small').map((n) => '/' + n)
  for (const n of (await p((cb) => drive.readdir('/small', cb)))) paths.push('/small/' + n)
  paths.sort()
  const h = crypto.createHash('sha256')
  let bytes = 0
  for (const path of paths) {
    const data = await p((cb) => drive.readFile(path, cb))
    h.update(path + '\0')
    h.update(data)
    bytes += data.length
  }
  out({ seconds, files: paths.length, bytes, sha256: h.digest('hex'), contentBlocks: content.length, contentLocal })
  socket.destroy()
  process.exit(0)
}

async function main () {
  const [role, ...args] = process.argv.slice(2)
  if (role === 'local') await local(args[0], JSON.parse(args[1]))
  else if (role === 'serve') await serve(args[0], JSON.parse(args[1]))
  else if (role === 'clone') await clone(args[0], args[1], Number(args[2]), Number(args[3]))
  else throw new Error('unknown role ' + role)
}
main().catch((err) => { process.stderr.write(err.stack + '\n'); process.exit(1) })
