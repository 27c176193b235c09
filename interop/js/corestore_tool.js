// Drives JS corestore 5 for hypernode's interop tests.
//   node corestore_tool.js write DIR N     default() feed and a random-name feed, N blocks each
//   node corestore_tool.js read DIR KEYHEX prints {writable, length, blocks} of that feed
'use strict'
const Corestore = require('corestore')

const [cmd, dir, arg] = process.argv.slice(2)
const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))

async function main () {
  const store = new Corestore(dir)
  await store.ready()
  if (cmd === 'write') {
    const n = Number(arg)
    const a = store.default()
    const b = store.get()
    await p((cb) => a.ready(cb))
    await p((cb) => b.ready(cb))
    const blocks = []
    for (let i = 0; i < n; i++) blocks.push(Buffer.from('block ' + i))
    await p((cb) => a.append(blocks, cb))
    await p((cb) => b.append(blocks.map((x) => Buffer.concat([x, Buffer.from('!')])), cb))
    process.stdout.write(JSON.stringify({ default: a.key.toString('hex'), other: b.key.toString('hex') }) + '\n')
  } else if (cmd === 'read') {
    const feed = store.get({ key: Buffer.from(arg, 'hex') })
    await p((cb) => feed.ready(cb))
    const blocks = []
    for (let i = 0; i < feed.length; i++) blocks.push((await p((cb) => feed.get(i, cb))).toString())
    process.stdout.write(JSON.stringify({ writable: feed.writable, length: feed.length, blocks }) + '\n')
    if (feed.writable) await p((cb) => feed.append(Buffer.from('js was here'), cb))
  }
  await p((cb) => store.close(cb))
}

main().catch((err) => { process.stderr.write(err.stack + '\n'); process.exit(1) })
