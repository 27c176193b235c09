// A small command-line driver of JS hypercore 9 for hypernode's interop tests and benchmarks.
//   node feed_tool.js write DIR SPEC.json      SPEC: {seed?: hex, batches: [[hex block, ...], ...]}
//   node feed_tool.js read DIR KEYHEX          prints {length, byteLength, blocks: [hex | null]}
//   node feed_tool.js sparse SRC DST KEYHEX I,J,...  replicates blocks I,J,... from SRC into a new sparse DST
//   node feed_tool.js kat                      prints known answers of hypercore-crypto and flat-tree
'use strict'
const fs = require('fs')
const hypercore = require('hypercore')
const crypto = require('hypercore-crypto')
const flat = require('flat-tree')

const [cmd, ...args] = process.argv.slice(2)

function done (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function fail (err) {
  process.stderr.write(String(err && err.stack ? err.stack : err) + '\n')
  process.exit(1)
}

function openFeed (dir, key, opts) {
  return new Promise((resolve, reject) => {
    const feed = hypercore(dir, key, opts)
    feed.ready((err) => err ? reject(err) : resolve(feed))
  })
}

const p = (fn) => new Promise((resolve, reject) => fn((err, v) => err ? reject(err) : resolve(v)))

async function write (dir, specPath) {
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'))
  let opts = {}
  let key = null
  if (spec.seed) {
    const kp = crypto.keyPair(Buffer.from(spec.seed, 'hex'))
    key = kp.publicKey
    opts = { secretKey: kp.secretKey }
  }
  const feed = await openFeed(dir, key, opts)
  for (const batch of spec.batches) {
    await p((cb) => feed.append(batch.map((h) => Buffer.from(h, 'hex')), cb))
  }
  await p((cb) => feed.close(cb))
  done({ key: feed.key.toString('hex'), length: feed.length, byteLength: feed.byteLength })
}

async function read (dir, keyHex) {
  const feed = await openFeed(dir, Buffer.from(keyHex, 'hex'), { createIfMissing: false })
  const blocks = []
  for (let i = 0; i < feed.length; i++) {
    if (!feed.has(i)) { blocks.push(null); continue }
    blocks.push((await p((cb) => feed.get(i, { wait: false }, cb))).toString('hex'))
  }
  const out = { length: feed.length, byteLength: feed.byteLength, writable: feed.writable, blocks }
  await p((cb) => feed.close(cb))
  done(out)
}

async function sparse (src, dst, keyHex, list) {
  const key = Buffer.from(keyHex, 'hex')
  const a = await openFeed(src, key)
  const b = await openFeed(dst, key, { sparse: true })
  const s1 = a.replicate(true, { live: true })
  const s2 = b.replicate(false, { live: true })
  s1.pipe(s2).pipe(s1)
  await p((cb) => b.update({ ifAvailable: true, minLength: a.length }, cb))
  for (const i of list) await p((cb) => b.get(i, cb))
  const out = { length: b.length, have: list.filter((i) => b.has(i)) }
  s1.destroy()
  s2.destroy()
  await p((cb) => a.close(cb))
  await p((cb) => b.close(cb))
  done(out)
}

function kat () {
  const kp = crypto.keyPair(Buffer.alloc(32, 7))
  const leafA = { index: 0, hash: crypto.data(Buffer.from('hello')), size: 5 }
  const leafB = { index: 2, hash: crypto.data(Buffer.from('world!')), size: 6 }
  const parent = { index: 1, hash: crypto.parent(leafA, leafB), size: 11 }
  const leafC = { index: 4, hash: crypto.data(Buffer.alloc(0)), size: 0 }
  const roots = [parent, leafC]
  const msg = crypto.signable(roots, 3)
  const split = { tx: Buffer.alloc(64, 0xaa), rx: Buffer.alloc(64, 0x55) }
  const idx = [0, 1, 2, 3, 5, 6, 7, 10, 13, 15, 22, 31, 100, 1023]
  done({
    seed: Buffer.alloc(32, 7).toString('hex'),
    publicKey: kp.publicKey.toString('hex'),
    secretKey: kp.secretKey.toString('hex'),
    dataHello: leafA.hash.toString('hex'),
    dataEmpty: leafC.hash.toString('hex'),
    parent: parent.hash.toString('hex'),
    tree: crypto.tree(roots).toString('hex'),
    signable: msg.toString('hex'),
    signature: crypto.sign(msg, kp.secretKey).toString('hex'),
    discoveryKey: crypto.discoveryKey(kp.publicKey).toString('hex'),
    capability: crypto.capability(kp.publicKey, split).toString('hex'),
    remoteCapability: crypto.remoteCapability(kp.publicKey, split).toString('hex'),
    flat: idx.map((i) => ({
      i,
      depth: flat.depth(i),
      offset: flat.offset(i),
      parent: flat.parent(i),
      sibling: flat.sibling(i),
      leftSpan: flat.leftSpan(i),
      rightSpan: flat.rightSpan(i),
      leftChild: flat.leftChild(i),
      rightChild: flat.rightChild(i),
      fullRoots: (i & 1) ? null : flat.fullRoots(i)
    }))
  })
}

const commands = {
  write: () => write(args[0], args[1]),
  read: () => read(args[0], args[1]),
  sparse: () => sparse(args[0], args[1], args[2], args[3].split(',').map(Number)),
  kat: async () => kat()
}

if (!commands[cmd]) fail('unknown command ' + cmd)
commands[cmd]().catch(fail)
