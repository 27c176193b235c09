// Operation sequences run by JS hyperdrive 10 into a corestore directory, then JS's answer to every
// read of every given path, for hypernode to compare with its own answers on the same directory
// (interop/test_drive_js_trees.py).
//
//   node drive_tree.js STORE_DIR SCENARIOS_FILE
//
// SCENARIOS_FILE holds JSON: [{name, ops: [op, ...], paths: [path, ...]}, ...]. Each scenario gets a
// new drive (corestore namespace `name`); its ops run in turn (op as in drive_peer.js:
// {op:'writeFile', path, hex} | {op:'mkdir', path} | {op:'unlink', path} | {op:'rmdir', path} |
// {op:'symlink', target, path} | {op:'copy', from, to}), each error kept, none stopping the rest.
// Then, for each path: ANSWERS below. The store is closed before the one line of JSON is printed:
//   [{name, key, version, errors: [code or null per op], answers: {path: ANSWERS}}, ...]
// ANSWERS = {
//   entry,                  // does the trie hold a node at exactly this path (db.get)
//   lstat, stat,            // STAT or {err: code}
//   readdir,                // names as readdir gives them (unsorted, duplicates kept) or {err}
//   readdirStats,           // [{name, implicit, stat: STAT}]: implicit when the name is a folder only
//                           //   by having entries under it (JS then gives a fresh Stat.directory())
//   readdirRecursive,       // names, {recursive: true}
//   readdirRecursiveStats,  // [{name, stat}], {recursive: true, includeStats: true}
//   readFile,               // {sha256} or {err}
//   exists,                 // bool
//   stats, statsFlat,       // drive.stats(path) (JS's default: every entry below, links not entered),
//   statsFollow             //   with {recursive: false}, with {recursive: true} (links entered):
//                           //   {file: FILESTATS} | {folder: {path: FILESTATS}} | {err}
// }
// STAT = {mode, uid, gid, size, blocks, offset, byteOffset, mtime, ctime, linkname, mount, metadata}
// FILESTATS = {blocks, size, downloadedBlocks}
// A scenario must not hold symlink loops: JS's stat spins forever on one.
'use strict'
const fs = require('fs')
const crypto = require('crypto')
const Corestore = require('corestore')
const hyperdrive = require('hyperdrive')

const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))
const hex = (b) => b.toString('hex')
const code = (err) => err.code || err.message

function statOf (st) {
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

async function attempt (fn) {
  try {
    return await fn()
  } catch (err) {
    return { err: code(err) }
  }
}

async function runOp (drive, o) {
  if (o.op === 'writeFile') await p((cb) => drive.writeFile(o.path, Buffer.from(o.hex, 'hex'), cb))
  else if (o.op === 'mkdir') await p((cb) => drive.mkdir(o.path, cb))
  else if (o.op === 'unlink') await p((cb) => drive.unlink(o.path, cb))
  else if (o.op === 'rmdir') await p((cb) => drive.rmdir(o.path, cb))
  else if (o.op === 'symlink') await p((cb) => drive.symlink(o.target, o.path, cb))
  else if (o.op === 'copy') await p((cb) => drive.copy(o.from, o.to, cb))
  else throw new Error('unknown op ' + o.op)
}

function fileStats (s) {
  return { blocks: s.blocks, size: s.size, downloadedBlocks: s.downloadedBlocks }
}

async function answers (drive, path) {
  const node = await p((cb) => drive.db.get(path, cb))
  const out = { entry: !!node }
  out.lstat = await attempt(async () => statOf(await p((cb) => drive.lstat(path, cb))))
  out.stat = await attempt(async () => statOf(await p((cb) => drive.stat(path, cb))))
  out.readdir = await attempt(() => p((cb) => drive.readdir(path, cb)))
  out.readdirStats = await attempt(async () => {
    const items = await p((cb) => drive.readdir(path, { includeStats: true }, cb))
    return items.map((e) => {
      const rel = path === e.path ? e.path : require('path').posix.relative(path, e.path)
      const implicit = rel.split('/').length > 1
      const st = statOf(e.stat)
      if (implicit) { st.mtime = null; st.ctime = null }
      return { name: e.name, implicit, stat: st }
    })
  })
  out.readdirRecursive = await attempt(() => p((cb) => drive.readdir(path, { recursive: true }, cb)))
  out.readdirRecursiveStats = await attempt(async () => {
    const items = await p((cb) => drive.readdir(path, { recursive: true, includeStats: true }, cb))
    return items.map((e) => ({ name: e.name, stat: statOf(e.stat) }))
  })
  out.readFile = await attempt(async () => {
    const data = await p((cb) => drive.readFile(path, cb))
    return { sha256: crypto.createHash('sha256').update(data).digest('hex') }
  })
  out.exists = await new Promise((resolve) => drive.exists(path, resolve))
  for (const [name, opts] of [['stats', null], ['statsFlat', { recursive: false }], ['statsFollow', { recursive: true }]]) {
    out[name] = await attempt(async () => {
      const s = await p((cb) => opts ? drive.stats(path, opts, cb) : drive.stats(path, cb))
      if (!(s instanceof Map)) return { file: fileStats(s) }
      const folder = {}
      for (const [k, v] of s) folder[k] = fileStats(v)
      return { folder }
    })
  }
  return out
}

async function main () {
  const store = new Corestore(process.argv[2])
  await store.ready()
  const scenarios = JSON.parse(fs.readFileSync(process.argv[3], 'utf-8'))
  const results = []
  for (const sc of scenarios) {
    const drive = hyperdrive(store.namespace(sc.name))
    await p((cb) => drive.ready(cb))
    const errors = []
    for (const o of sc.ops) {
      try {
        await runOp(drive, o)
        errors.push(null)
      } catch (err) {
        errors.push(code(err))
      }
    }
    const result = { name: sc.name, key: hex(drive.key), version: drive.version, errors, answers: {} }
    for (const path of sc.paths) result.answers[path] = await answers(drive, path)
    results.push(result)
  }
  await store.close()
  process.stdout.write(JSON.stringify(results) + '\n')
}

main().catch((err) => { process.stderr.write(err.stack + '\n'); process.exit(1) })
