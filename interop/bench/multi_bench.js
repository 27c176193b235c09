// JS side of multi_bench.py: multi-hyperdrive 1.1.4 over N hyperdrive 10 drives in one corestore 5.
// Prints one JSON line: [{n, construct, firstRead, readFile, readdir, readdirChanged, digest, names}]
// (one item per N).
//   node multi_bench.js DIR|memory SPEC_JSON
// SPEC = {counts: [N, ...], files, size, deleted: [i, ...], order: [i, ...], warm: [i, ...], minSeconds,
//         minOps: {readFile, readdir, readdirChanged}}. The content is the one multi_bench.py builds:
//   path i (0 <= i < files) = /files/fIII.txt (III: i zero-padded to 3 digits), its bytes
//   sha256('multi-bench:' + i) repeated to `size` bytes, written (the same bytes) into every drive of
//   holders(i, N); the drives are written one after the other, drive 0 first; then a view over drive
//   0 (the primary) + drives 1..N-1 (added, waiting for each addDrive callback) unlinks the paths of
//   `deleted` (tombstones in drive 0, the writer). `order` lists the live paths in the order the first
//   reads go, `warm` the 1,000 reads that follow (repeated).
// Each timing is {ops, seconds}. construct: the view made and its N-1 drives added (once); firstRead:
// the first read of every path (once); the readdirs are warmed up once (untimed) first.
// readdirChanged: before each readdir (untimed) one drive writes or unlinks /files/extra.txt.
// DIR is a directory (random-access-file storage) or 'memory' (random-access-memory).
'use strict'
const crypto = require('crypto')
const Corestore = require('corestore')
const hyperdrive = require('hyperdrive')
const RAM = require('random-access-memory')
const { MultiHyperdrive } = require('multi-hyperdrive')

const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))
const now = () => Number(process.hrtime.bigint()) / 1e9

const pathOf = (i) => '/files/f' + String(i).padStart(3, '0') + '.txt'

function content (i, size) {
  const h = crypto.createHash('sha256').update('multi-bench:' + i).digest()
  const b = Buffer.alloc(size)
  for (let o = 0; o < size; o += 32) h.copy(b, o, 0, Math.min(32, size - o))
  return b
}

// the drives holding path i: i % n, and for every third path a second drive, every ninth a third
function holders (i, n) {
  const out = [i % n]
  if (i % 3 === 0 && !out.includes((i * 7 + 1) % n)) out.push((i * 7 + 1) % n)
  if (i % 9 === 0 && !out.includes((i * 13 + 2) % n)) out.push((i * 13 + 2) % n)
  return out
}

async function timed (minSeconds, minOps, op, between) {
  let ops = 0
  let seconds = 0
  const start = now()
  while (ops < minOps || (between ? seconds : now() - start) < minSeconds) {
    if (between) {
      await between(ops)
      const t = now()
      await op(ops)
      seconds += now() - t
    } else {
      await op(ops)
    }
    ops++
  }
  if (!between) seconds = now() - start
  return { ops, seconds }
}

async function runCase (dir, n, spec) {
  const store = new Corestore(dir === 'memory' ? RAM : dir + '/n' + n)
  await store.ready()
  const drives = []
  for (let d = 0; d < n; d++) {
    const drive = hyperdrive(store.namespace('bench-' + d))
    await p((cb) => drive.ready(cb))
    drives.push(drive)
  }
  for (let d = 0; d < n; d++) {
    for (let i = 0; i < spec.files; i++) {
      if (holders(i, n).includes(d)) await p((cb) => drives[d].writeFile(pathOf(i), content(i, spec.size), cb))
    }
  }
  let start = now()
  const multi = new MultiHyperdrive(drives[0])
  await new Promise((resolve) => { // the constructor's addDrive(primary) has no callback
    if (multi.hasDrive(drives[0].key)) return resolve()
    multi.on('drive-add', function onAdd () {
      if (!multi.hasDrive(drives[0].key)) return
      multi.removeListener('drive-add', onAdd)
      resolve()
    })
  })
  for (const drive of drives.slice(1)) await new Promise((resolve) => multi.addDrive(drive, resolve))
  const construct = { ops: 1, seconds: now() - start }
  for (const i of spec.deleted) await p((cb) => multi.unlink(pathOf(i), cb))

  const order = spec.order.map(pathOf)
  const warm = spec.warm.map(pathOf)
  // the first reads, and what was read: a digest over the live paths in sorted order, and the folder's names
  const read = new Map()
  start = now()
  for (const path of order) read.set(path, await p((cb) => multi.readFile(path, cb)))
  const firstRead = { ops: order.length, seconds: now() - start }
  const h = crypto.createHash('sha256')
  for (const path of [...read.keys()].sort()) {
    h.update(path + '\0')
    h.update(read.get(path))
  }
  const names = (await p((cb) => multi.readdir('/files', cb))).sort()

  const readFile = await timed(spec.minSeconds, spec.minOps.readFile, (k) => {
    return p((cb) => multi.readFile(warm[k % warm.length], cb))
  })
  const readdir = await timed(spec.minSeconds, spec.minOps.readdir, () => p((cb) => multi.readdir('/files', cb)))
  const readdirChanged = await timed(spec.minSeconds, spec.minOps.readdirChanged,
    () => p((cb) => multi.readdir('/files', cb)),
    (k) => k % 2 === 0
      ? p((cb) => drives[(k >> 1) % n].writeFile('/files/extra.txt', Buffer.from('extra ' + k), cb))
      : p((cb) => drives[(k >> 1) % n].unlink('/files/extra.txt', cb)))
  await store.close()
  return { n, construct, firstRead, readFile, readdir, readdirChanged, digest: h.digest('hex'), names }
}

async function main () {
  const [dir, specJson] = process.argv.slice(2)
  const spec = JSON.parse(specJson)
  const out = []
  for (const n of spec.counts) out.push(await runCase(dir, n, spec))
  process.stdout.write(JSON.stringify(out) + '\n')
}
main().catch((err) => { process.stderr.write(err.stack + '\n'); process.exit(1) })
