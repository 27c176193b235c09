// The JS side of interop/bench/core11_core_bench.py: hypercore 11.39.5 on its own storage (RocksDB in a
// temporary directory, as hypercore 11 always keeps cores).
// Usage: node core_bench.js DIR CASES.json; prints one JSON line, a result per case:
//   { kind: 'append', size, count, batch }  -> { seconds }  (the appends alone)
//   { kind: 'fill', size, count }           -> { seconds }  (a core opened by key takes every block from
//                                               a writer's proofs in random order: proof + applyProof)
//   { kind: 'get', size, count }            -> { seconds }  (a core of count blocks written, closed, reopened:
//                                               get of every block in order)
//   { kind: 'open', count, reads }          -> { seconds, random_seconds, inorder_seconds }  (reopening a core of
//                                               count 8-byte blocks, to ready; then reads random get + proof
//                                               of the block, then a get of every block in order)
const fs = require('fs')
const path = require('path')
const Hypercore = require('hypercore')
const flat = require('flat-tree')

async function append (dir, c) {
  const core = new Hypercore(dir)
  await core.ready()
  const block = Buffer.alloc(c.size, 7)
  const t0 = process.hrtime.bigint()
  for (let done = 0; done < c.count; done += c.batch) {
    const n = Math.min(c.batch, c.count - done)
    await core.append(c.batch === 1 ? block : new Array(n).fill(block))
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  await core.close()
  return { seconds }
}

function shuffled (n, seed) {
  const out = Array.from({ length: n }, (_, i) => i)
  let x = seed
  for (let i = n - 1; i > 0; i--) {
    x = (x * 1103515245 + 12345) % 2147483648
    const j = x % (i + 1)
    const t = out[i]
    out[i] = out[j]
    out[j] = t
  }
  return out
}

async function fill (dir, c) {
  const writer = new Hypercore(path.join(dir, 'w'))
  await writer.ready()
  const block = Buffer.alloc(c.size, 7)
  for (let done = 0; done < c.count; done += 1000) {
    await writer.append(new Array(Math.min(1000, c.count - done)).fill(block))
  }
  const reader = new Hypercore(path.join(dir, 'r'), writer.key, { manifest: writer.manifest })
  await reader.ready()
  const t0 = process.hrtime.bigint()
  const order = shuffled(c.count, 1)
  const first = order.pop()
  await reader.applyProof(await writer.proof({ block: { index: first, nodes: 0 }, upgrade: { start: 0, length: c.count } }))
  for (const index of order) {
    const nodes = await reader.missingNodes(index)
    const ok = await reader.applyProof(await writer.proof({ block: { index, nodes } }))
    if (!ok) throw new Error('proof of block ' + index + ' not applied')
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (reader.contiguousLength !== c.count) throw new Error('not filled')
  await writer.close()
  await reader.close()
  return { seconds }
}

async function get (dir, c) {
  const core = new Hypercore(dir)
  await core.ready()
  const block = Buffer.alloc(c.size, 7)
  for (let done = 0; done < c.count; done += 1000) {
    await core.append(new Array(Math.min(1000, c.count - done)).fill(block))
  }
  await core.close()
  const again = new Hypercore(dir)
  await again.ready()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < c.count; i++) {
    const b = await again.get(i)
    if (b.length !== c.size) throw new Error('block ' + i + ' is ' + b.length + ' bytes')
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  await again.close()
  return { seconds }
}

async function open (dir, c) {
  const core = new Hypercore(dir)
  await core.ready()
  for (let done = 0; done < c.count; done += 10000) {
    const n = Math.min(10000, c.count - done)
    const blocks = []
    for (let i = 0; i < n; i++) {
      const b = Buffer.alloc(8)
      b.writeUInt32LE(done + i)
      blocks.push(b)
    }
    await core.append(blocks)
  }
  await core.close()
  const t0 = process.hrtime.bigint()
  const again = new Hypercore(dir)
  await again.ready()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  if (again.length !== c.count) throw new Error('reopened at another length')
  const roots = flat.fullRoots(2 * c.count)
  let x = 2
  const t1 = process.hrtime.bigint()
  for (let k = 0; k < c.reads; k++) {
    x = (x * 1103515245 + 12345) % 2147483648
    const i = x % c.count
    await again.get(i)
    const root = roots.find((r) => flat.rightSpan(r) >= 2 * i)
    await again.proof({ block: { index: i, nodes: flat.depth(root) } })
  }
  const randomSeconds = Number(process.hrtime.bigint() - t1) / 1e9
  const t2 = process.hrtime.bigint()
  for (let i = 0; i < c.count; i++) {
    const b = await again.get(i)
    if (b.readUInt32LE(0) !== i) throw new Error('block ' + i + ' reads back wrong')
  }
  const inorderSeconds = Number(process.hrtime.bigint() - t2) / 1e9
  await again.close()
  return { seconds, random_seconds: randomSeconds, inorder_seconds: inorderSeconds }
}

async function main () {
  const [dir, casesJson] = process.argv.slice(2)
  const cases = JSON.parse(casesJson)
  const out = []
  for (let i = 0; i < cases.length; i++) {
    const d = path.join(dir, 'case-' + i)
    fs.mkdirSync(d, { recursive: true })
    const c = cases[i]
    out.push(await { append, get, fill, open }[c.kind](d, c))
  }
  console.log(JSON.stringify(out))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
