// Merkle proofs of a hypercore 11 core (on disk, in a fresh temporary directory), for the proof tests of
// hypernode.core11. Usage: node proof_tool.js make|apply SPEC.json; prints one JSON line.
//
// make:  SPEC { seed (hex), data (file of the blocks back to back), batches: [[sizes...], ...],
//               requests: [{ block?: {index, nodes}, hash?: {index, nodes}, upgrade?: {start, length} }] }
//        -> { key, manifest, length, fork, proofs: [proof as core.proof() gives it, buffers as hex] }
// apply: SPEC { key, manifest (hex), proofs: [...] }: a read-only core applies each proof in turn
//        (core.applyProof, hypercore's own verification) -> { results: [{ ok | error, length, treeHash }] }
const fs = require('fs')
const os = require('os')
const path = require('path')
const Hypercore = require('hypercore')
const crypto = require('hypercore-crypto')
const { MerkleTree } = require('hypercore/lib/merkle-tree.js')

const { hex, buf, proofOut, proofIn } = require('./proof_json.js')

async function main () {
  const [mode, specPath] = process.argv.slice(2)
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'core11-proof-'))
  let core = null
  const out = {}
  try {
    if (mode === 'make') {
      const data = fs.readFileSync(spec.data)
      core = new Hypercore(dir, { keyPair: crypto.keyPair(buf(spec.seed)), compat: false })
      await core.ready()
      let offset = 0
      for (const sizes of spec.batches) {
        await core.append(sizes.map((n) => data.subarray(offset, (offset += n))))
      }
      out.key = hex(core.key)
      out.manifest = hex(core.getManifest({ raw: true }))
      out.length = core.length
      out.fork = core.fork
      out.proofs = []
      for (const req of spec.requests) {
        try {
          out.proofs.push(proofOut(await core.proof(req)))
        } catch (err) {
          out.proofs.push({ error: err.code || err.message })
        }
      }
    } else if (mode === 'apply') {
      core = new Hypercore(dir, buf(spec.key), { manifest: buf(spec.manifest) })
      await core.ready()
      out.results = []
      for (const p of spec.proofs) {
        let r
        try {
          r = { ok: await core.applyProof(proofIn(p)) }
        } catch (err) {
          r = { error: err.code || err.message }
        }
        r.length = core.length
        // (the tree hash of the core's roots: core.treeHash() would wait for the last block from peers)
        r.treeHash = hex(MerkleTree.hash(core.state))
        out.results.push(r)
      }
    } else {
      throw new Error('mode is make or apply')
    }
  } finally {
    if (core) await core.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(out))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
