// A hypercore 11 core on disk (a fresh temporary directory), driven by a JSON spec, for the interop tests
// of hypernode.core11. Usage: node core_tool.js write|follow SPEC.json; prints one JSON line.
//
// SPEC: { "data": path of a file holding every appended block back to back,
//         "ops": [ { "append": [sizes...] } | { "truncate": length }, ... ], plus
//   write:  "seed" (hex, 32 bytes: the key pair), "compat" (true: a bare hypercore keyed by the public
//           key; false: keyed by its manifest's hash, as corestore 7 makes cores)
//   follow: "key" (hex), "manifest" (hex of the encoded manifest, or null for a compat key), and a
//           "signature" (hex) in every op: the core is read-only and takes each op only with a signature
//           its verifier accepts (append(blocks, { signature }) / truncate(length, { signature })) }
//
// Output: key, discoveryKey, manifest (hex), and per op the state after it: length, byteLength, fork,
// treeHash, signature, roots [{index, size, hash}], and treeHashes (the tree hash at every length up to
// it); in follow mode an op whose signature is refused gives { "error": code } and stops the run.
const fs = require('fs')
const os = require('os')
const path = require('path')
const Hypercore = require('hypercore')
const crypto = require('hypercore-crypto')
const { MerkleTree } = require('hypercore/lib/merkle-tree.js')

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)

async function main () {
  const [mode, specPath] = process.argv.slice(2)
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'))
  const data = fs.readFileSync(spec.data)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'core11-'))
  let core
  if (mode === 'write') {
    const keyPair = crypto.keyPair(Buffer.from(spec.seed, 'hex'))
    core = new Hypercore(dir, { keyPair, compat: !!spec.compat })
  } else if (mode === 'follow') {
    const opts = spec.manifest ? { manifest: Buffer.from(spec.manifest, 'hex') } : {}
    core = new Hypercore(dir, Buffer.from(spec.key, 'hex'), opts)
  } else {
    throw new Error('mode is write or follow')
  }
  await core.ready()
  const out = { key: hex(core.key), discoveryKey: hex(core.discoveryKey), states: [] }
  let offset = 0
  try {
    for (const op of spec.ops) {
      const signature = op.signature ? Buffer.from(op.signature, 'hex') : null
      try {
        if (op.append) {
          const blocks = op.append.map((n) => data.subarray(offset, (offset += n)))
          await core.append(blocks, signature ? { signature } : {})
        } else {
          await core.truncate(op.truncate, signature ? { signature } : {})
        }
      } catch (err) {
        out.states.push({ error: err.code || err.message })
        break
      }
      const treeHashes = []
      for (let n = 0; n <= core.length; n++) treeHashes.push(hex(await core.treeHash(n)))
      const roots = await MerkleTree.getRoots(core.state, core.length)
      out.states.push({
        length: core.length,
        byteLength: core.byteLength,
        fork: core.fork,
        treeHash: hex(await core.treeHash()),
        signature: hex(core.state.signature),
        roots: roots.map((r) => ({ index: r.index, size: r.size, hash: hex(r.hash) })),
        treeHashes
      })
    }
    out.manifest = hex(core.getManifest({ raw: true }))
  } finally {
    await core.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(out))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
