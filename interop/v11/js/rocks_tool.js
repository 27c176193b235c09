// A corestore 7 store on disk, for the interop tests of hypernode.core11.rocks (the RocksDB storage).
// Usage: node rocks_tool.js write|read SPEC.json (prints one JSON line), or
//        node rocks_tool.js hold DIR (prints {"event":"ready"}, closes the store when stdin ends), or
//        node rocks_tool.js tryopen DIR (prints {"event":"opened"} or {"event":"error", message, code}).
//
// write: SPEC { dir, primaryKey (hex), data (a file of random bytes the blocks are cut from),
//               cores: [ { path: [ns names], name, ops: [ { append: [sizes] } | { truncate: n } ] } ],
//               replica: { blocks: [sizes], fetch: [indexes] } }
//   makes a corestore 7 in dir with that primary key, gets each core by name in its namespace and runs
//   its ops; then a second store (a temporary directory) makes a core "replica-source" with the replica
//   blocks (the named cores are flushed to RocksDB's table and blob files first; the replica stays in
//   its write-ahead log), and the store in dir gets that core by key and downloads only the fetch blocks from it over
//   a replication stream. Output: primaryKey and, per core (the replica last, with name null), key,
//   discoveryKey, length, fork, byteLength, treeHash, signature and blocks (sha256 hex of each block
//   held, null for one not held).
// read: SPEC { dir, cores: [ { path, name } | { key } ], append: bool }
//   opens the store in dir with no primary key given (it must read the one stored), gets each core by
//   name and reports the same fields as write; then replicates each core to a fresh store and reads
//   every block there through verified proofs ("cloned": the sha256 list the clone read); then, with
//   append, appends one block "appended by js" to each and reports "appended" { length, treeHash,
//   signature }. A core given by key (hex) is only described (it may have holes).
const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
const Corestore = require('corestore')

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex')

function at (store, nsPath) {
  let s = store
  for (const n of nsPath) s = s.namespace(n)
  return s
}

async function describe (core) {
  const blocks = []
  for (let i = 0; i < core.length; i++) {
    blocks.push((await core.has(i)) ? sha(await core.get(i)) : null)
  }
  return {
    key: hex(core.key),
    discoveryKey: hex(core.discoveryKey),
    length: core.length,
    fork: core.fork,
    byteLength: core.byteLength,
    // (a sparse core's treeHash() waits for nodes from peers: none is asked of one with holes)
    treeHash: blocks.includes(null) ? null : hex(await core.treeHash()),
    signature: hex(core.state.signature),
    blocks
  }
}

function replicate (a, b) {
  const s1 = a.replicate(true)
  const s2 = b.replicate(false)
  s1.pipe(s2).pipe(s1)
  return () => {
    s1.destroy()
    s2.destroy()
  }
}

async function write (spec) {
  const data = fs.readFileSync(spec.data)
  let offset = 0
  const take = (n) => {
    const b = data.subarray(offset, offset + n)
    offset += n
    return b
  }
  const store = new Corestore(spec.dir, { primaryKey: Buffer.from(spec.primaryKey, 'hex'), unsafe: true })
  await store.ready()
  const out = { primaryKey: hex(store.primaryKey), cores: [] }
  for (const c of spec.cores) {
    const core = at(store, c.path).get({ name: c.name })
    await core.ready()
    for (const op of c.ops) {
      if (op.append) await core.append(op.append.map(take))
      else await core.truncate(op.truncate)
    }
    out.cores.push({ name: c.name, path: c.path, ...(await describe(core)) })
    await core.close()
  }
  // the named cores go to table and blob files; what follows stays in the write-ahead log
  await store.storage.db.flush()
  if (spec.replica) {
    const srcDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocks-src-'))
    try {
      const src = new Corestore(srcDir)
      const source = src.get({ name: 'replica-source' })
      await source.ready()
      await source.append(spec.replica.blocks.map(take))
      const replica = store.get({ key: source.key })
      await replica.ready()
      const stop = replicate(src, store)
      await replica.update({ wait: true })
      for (const i of spec.replica.fetch) await replica.get(i)
      stop()
      out.cores.push({ name: null, path: null, ...(await describe(replica)) })
      await replica.close()
      await src.close()
    } finally {
      fs.rmSync(srcDir, { recursive: true, force: true })
    }
  }
  await store.close()
  return out
}

async function read (spec) {
  const store = new Corestore(spec.dir)
  await store.ready()
  const out = { primaryKey: hex(store.primaryKey), cores: [] }
  for (const c of spec.cores) {
    const core = c.key ? store.get({ key: Buffer.from(c.key, 'hex') }) : at(store, c.path).get({ name: c.name })
    await core.ready()
    const info = { name: c.name || null, path: c.path || null, ...(await describe(core)) }
    if (c.key) { // a core opened by key: it may have holes, so it is neither cloned nor appended to
      out.cores.push(info)
      await core.close()
      continue
    }

    const cloneDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rocks-clone-'))
    try {
      const other = new Corestore(cloneDir)
      const clone = other.get({ key: core.key })
      await clone.ready()
      const stop = replicate(store, other)
      await clone.update({ wait: true })
      info.cloned = []
      for (let i = 0; i < clone.length; i++) info.cloned.push(sha(await clone.get(i)))
      info.clonedTreeHash = hex(await clone.treeHash())
      stop()
      await clone.close()
      await other.close()
    } finally {
      fs.rmSync(cloneDir, { recursive: true, force: true })
    }

    if (spec.append) {
      await core.append(Buffer.from('appended by js'))
      info.appended = { length: core.length, treeHash: hex(await core.treeHash()), signature: hex(core.state.signature) }
    }
    out.cores.push(info)
    await core.close()
  }
  await store.close()
  return out
}

async function hold (dir) {
  const store = new Corestore(dir)
  await store.ready()
  console.log(JSON.stringify({ event: 'ready', primaryKey: hex(store.primaryKey) }))
  process.stdin.resume()
  await new Promise((resolve) => process.stdin.on('end', resolve))
  await store.close()
  console.log(JSON.stringify({ event: 'closed' }))
}

async function tryopen (dir) {
  const store = new Corestore(dir)
  try {
    await store.ready()
    console.log(JSON.stringify({ event: 'opened' }))
  } catch (err) {
    console.log(JSON.stringify({ event: 'error', message: err.message, code: err.code || null }))
  }
  try { await store.close() } catch {}
}

// a replication that cannot verify (bad proofs from a store) stalls with nothing left for node to wait
// on: node would exit 0 having printed nothing, so say so and fail
let finished = false
process.on('beforeExit', () => {
  if (finished) return
  console.error('rocks_tool: stalled before finishing (a replication that did not verify?)')
  process.exit(2)
})

async function main () {
  const [mode, arg] = process.argv.slice(2)
  if (mode === 'hold') await hold(arg)
  else if (mode === 'tryopen') await tryopen(arg)
  else {
    const spec = JSON.parse(fs.readFileSync(arg, 'utf8'))
    const out = mode === 'write' ? await write(spec) : mode === 'read' ? await read(spec) : null
    if (out === null) throw new Error('mode is write, read, hold or tryopen')
    console.log(JSON.stringify(out))
  }
  finished = true
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
