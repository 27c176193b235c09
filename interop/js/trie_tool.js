// Runs scenarios of hypertrie 5.1.3 operations and prints what JS wrote and answered, for hypernode's
// trie interop test (interop/test_trie_interop.py).
//   node trie_tool.js SCENARIOS.json
// SCENARIOS: [{hash: 'siphash' | 'collide', ops: [op], queries: [query]}]
//   op:    {type: 'put', key, hex|null, hidden?, flags?} | {type: 'del', key, hidden?}
//          | {type: 'batch', ops: [{type: 'put'|'del', key, hex?, hidden?, flags?}]}
//   query: {get: key, version?, hidden?, prefix?, closest?}
//          | {list: prefix, version?, recursive?, reverse?, gt?, hidden?}
//          | {diff: [leftVersion, rightVersion], prefix?, hidden?}
// 'collide' replaces the SipHash of each component by 8 bytes: [byteLength(component) % 3, 0 x 7], so
// that components of equal length modulo 3 collide.
// Prints one JSON line: [{blocks: [hex], results: [answer]}] where a node is [key, seq, hex value|null,
// flags], a diff entry is [key, leftSeq|0, rightSeq|0], and a query that made hypertrie throw is {error}.
'use strict'
const fs = require('fs')
const hypertrie = require('hypertrie')
const RAM = require('random-access-memory')

const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))

// hypertrie's iterator throws from a callback when it meets the empty reset node that a batch leaves
// behind (a batch that deletes the last key and then puts another points at it); such a query answers
// {error} instead of ending the process.
let failQuery = null
process.on('uncaughtException', (err) => {
  if (!failQuery) throw err
  failQuery(err)
})

function guarded (fn) {
  return new Promise((resolve, reject) => {
    failQuery = reject
    fn().then(resolve, reject)
  }).then(v => { failQuery = null; return v }, err => { failQuery = null; return { error: String(err.message || err) } })
}

function collide (key) {
  const parts = key.split('/').filter((x, i, a) => !((i === 0 || i === a.length - 1) && x === ''))
  const buf = Buffer.alloc(8 * parts.length)
  parts.forEach((part, i) => { buf[i * 8] = Buffer.byteLength(part) % 3 })
  return buf
}

function value (op) {
  return op.hex === null || op.hex === undefined ? null : Buffer.from(op.hex, 'hex')
}

function nodeOut (n) {
  return n ? [n.key, n.seq, n.value ? n.value.toString('hex') : null, n.flags] : null
}

async function scenario (sc) {
  const db = hypertrie(RAM, { hash: sc.hash === 'collide' ? collide : undefined })
  await p(cb => db.ready(cb))
  for (const op of sc.ops) {
    if (op.type === 'put') {
      await p(cb => db.put(op.key, value(op), { hidden: !!op.hidden, flags: op.flags || 0 }, cb))
    } else if (op.type === 'del') {
      await p(cb => db.del(op.key, { hidden: !!op.hidden }, cb))
    } else {
      const ops = op.ops.map(o => ({ type: o.type, key: o.key, value: value(o), hidden: !!o.hidden, flags: o.flags || 0 }))
      await p(cb => db.batch(ops, cb))
    }
  }
  const results = []
  for (const q of sc.queries) results.push(await guarded(() => query(db, q)))
  const blocks = []
  for (let i = 0; i < db.feed.length; i++) blocks.push((await p(cb => db.feed.get(i, cb))).toString('hex'))
  return { blocks, results }
}

async function query (db, q) {
  {
    const at = q.version ? db.checkout(q.version) : db
    if (q.get !== undefined) {
      const n = await p(cb => at.get(q.get, { hidden: !!q.hidden, prefix: !!q.prefix, closest: !!q.closest }, cb))
      return nodeOut(n)
    } else if (q.list !== undefined) {
      const nodes = await p(cb => at.list(q.list, { recursive: q.recursive !== false, reverse: !!q.reverse, gt: !!q.gt, hidden: !!q.hidden }, cb))
      return nodes.map(nodeOut)
    } else {
      const left = q.diff[0] ? db.checkout(q.diff[0]) : db
      const it = left.diff(q.diff[1], q.prefix || '', { hidden: !!q.hidden })
      const out = []
      for (;;) {
        const d = await p(cb => it.next(cb))
        if (!d) break
        out.push([d.key, d.left ? d.left.seq : 0, d.right ? d.right.seq : 0])
      }
      return out
    }
  }
}

async function main () {
  const scenarios = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  const out = []
  for (const sc of scenarios) out.push(await scenario(sc))
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(err => { process.stderr.write(String(err.stack || err) + '\n'); process.exit(1) })
