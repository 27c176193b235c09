// A real hypercore 11 core (on disk, in a fresh temporary directory) driven one JSON command a line on
// stdin, one JSON answer a line on stdout, for the sparse Core tests of hypernode.core11
// (interop/test_core11_core_interop.py). Buffers are hex.
//
//   { cmd: 'create', seed, compat }         a writable core from the key pair of seed (compat: keyed by its
//                                           public key, as a bare hypercore) -> { key, manifest }
//   { cmd: 'open', key, manifest }          a read-only core opened by key (and manifest) -> { key }
//   { cmd: 'append', blocks: [hex] }        -> { length }
//   { cmd: 'truncate', length }             -> { length, fork }
//   { cmd: 'proof', request }               core.proof(request), what its replicator sends -> { proof }
//   { cmd: 'apply', proof }                 core.applyProof(proof), hypercore's own checks (a proof of a newer
//                                           fork through core.verifyReorg/reorg first) -> { ok } | { error }
//   { cmd: 'reorgBegin', proof }            a newer fork's upgrade from 0: core.core.verifyReorg -> { want, ancestors }
//   { cmd: 'reorgUpdate', proof }           a hash proof of what it wants: batch.update -> { want, ancestors }
//   { cmd: 'reorgApply' }                   core.core.reorg(batch) -> { ok, fork, ancestors }
//   { cmd: 'missingNodes', index }          the `nodes` a request for block index carries -> { nodes }
//   { cmd: 'state' }                        -> { length, fork, byteLength, contiguousLength, treeHash,
//                                               signature, have: [0/1 per block], blocks: [hex or null] }
// Every answer also has { length }; a failed command answers { error }.
const fs = require('fs')
const os = require('os')
const path = require('path')
const readline = require('readline')
const Hypercore = require('hypercore')
const crypto = require('hypercore-crypto')
const { MerkleTree } = require('hypercore/lib/merkle-tree.js')

const { hex, buf, proofOut, proofIn } = require('./proof_json.js')

async function main () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'core11-sparse-'))
  let core = null
  let reorg = null

  async function handle (cmd) {
    switch (cmd.cmd) {
      case 'create':
        core = new Hypercore(dir, { keyPair: crypto.keyPair(buf(cmd.seed)), compat: !!cmd.compat })
        await core.ready()
        return { key: hex(core.key), manifest: hex(core.getManifest({ raw: true })) }
      case 'open':
        core = new Hypercore(dir, buf(cmd.key), { manifest: buf(cmd.manifest) })
        await core.ready()
        return { key: hex(core.key) }
      case 'append':
        await core.append(cmd.blocks.map(buf))
        return {}
      case 'truncate':
        await core.truncate(cmd.length)
        return { fork: core.fork }
      case 'proof':
        return { proof: proofOut(await core.proof(cmd.request)) }
      case 'apply': {
        const proof = proofIn(cmd.proof)
        if (proof.fork > core.fork && proof.upgrade) {
          // a newer fork goes through hypercore's reorg, as its replicator takes one (_onreorgdata);
          // then the proof applies as any other
          const batch = await core.core.verifyReorg(proof)
          if (!batch.finished) throw new Error('the reorg needs more than this proof')
          await core.core.reorg(batch)
        }
        return { ok: await core.applyProof(proof) }
      }
      case 'reorgBegin':
        // hypercore's replicator on a proof of a newer fork: core.verifyReorg, then hash proofs while the
        // batch wants some, then core.reorg
        reorg = await core.core.verifyReorg(proofIn(cmd.proof))
        return { want: reorg.want && { ...reorg.want }, ancestors: reorg.ancestors }
      case 'reorgUpdate':
        await reorg.update(proofIn(cmd.proof))
        return { want: reorg.want && { ...reorg.want }, ancestors: reorg.ancestors }
      case 'reorgApply':
        return { ok: await core.core.reorg(reorg), fork: core.fork, ancestors: reorg.ancestors }
      case 'missingNodes':
        return { nodes: await core.missingNodes(cmd.index) }
      case 'state': {
        const have = []
        const blocks = []
        for (let i = 0; i < core.length; i++) {
          const h = await core.has(i)
          have.push(h ? 1 : 0)
          blocks.push(h ? hex(await core.get(i, { wait: false })) : null)
        }
        return {
          fork: core.fork,
          byteLength: core.byteLength,
          contiguousLength: core.contiguousLength,
          // (the hash of the core's roots: core.treeHash() would wait for the last block from peers)
          treeHash: hex(MerkleTree.hash(core.state)),
          signature: hex(core.state.signature),
          have,
          blocks
        }
      }
      default:
        throw new Error('unknown command ' + cmd.cmd)
    }
  }

  const lines = readline.createInterface({ input: process.stdin })
  try {
    for await (const line of lines) {
      let out
      try {
        out = await handle(JSON.parse(line))
      } catch (err) {
        out = { error: err.code || err.message }
      }
      out.length = core ? core.length : 0
      process.stdout.write(JSON.stringify(out) + '\n')
    }
  } finally {
    if (core) await core.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
