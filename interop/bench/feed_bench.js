// JS side of feed_bench.py: times hypercore 9 appends and gets. Prints one JSON line of results.
//   node feed_bench.js STORAGE(file|memory) DIR CASES_JSON
'use strict'
const hypercore = require('hypercore')
const RAM = require('random-access-memory')

const [storage, dir, casesJson] = process.argv.slice(2)
const cases = JSON.parse(casesJson)
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))

async function run (c, i) {
  const feed = hypercore(storage === 'memory' ? RAM : dir + '/js-' + i)
  await p((cb) => feed.ready(cb))
  const block = Buffer.alloc(c.size, 7)
  const t0 = process.hrtime.bigint()
  if (c.batch > 1) {
    for (let done = 0; done < c.count; done += c.batch) {
      const n = Math.min(c.batch, c.count - done)
      await p((cb) => feed.append(new Array(n).fill(block), cb))
    }
  } else {
    for (let k = 0; k < c.count; k++) await p((cb) => feed.append(block, cb))
  }
  const t1 = process.hrtime.bigint()
  for (let k = 0; k < c.count; k++) await p((cb) => feed.get(k, cb))
  const t2 = process.hrtime.bigint()
  await p((cb) => feed.close(cb))
  return { append: Number(t1 - t0) / 1e9, get: Number(t2 - t1) / 1e9 }
}

async function main () {
  const out = []
  for (let i = 0; i < cases.length; i++) out.push(await run(cases[i], i))
  process.stdout.write(JSON.stringify(out) + '\n')
}
main().catch((err) => { process.stderr.write(err.stack + '\n'); process.exit(1) })
