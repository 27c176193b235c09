// Known answers of the hypercore 11 stack for hypernode.core11's tests: the caps, hashes, namespaces,
// manifest encodings and hashes, multisig containers, and signatures made by hypercore's own Verifier.
// Usage: node kat_tool.js SEED_HEX; prints one JSON line (every buffer as hex).
const b4a = require('b4a')
const c = require('compact-encoding')
const crypto = require('hypercore-crypto')
const Hypercore = require('hypercore')
const caps = require('hypercore/lib/caps.js')
const Verifier = require('hypercore/lib/verifier.js')
const multisig = require('hypercore/lib/multisig.js')

const hex = (b) => b4a.toString(b, 'hex')
const seed = b4a.from(process.argv[2], 'hex')
const kp = (i) => crypto.keyPair(crypto.hash([seed, b4a.from([i])]))
const [k1, k2, k3] = [kp(1), kp(2), kp(3)]
const bytes = (i, n) => b4a.alloc(n, i)

// a tree state as Verifier's signers see it (what MerkleTreeBatch gives them)
const state = (treeHash, length, fork) => ({
  length,
  fork,
  hash: () => treeHash,
  signable: (ctx) => caps.treeSignable(ctx, treeHash, length, fork),
  signableCompat: (noHeader) => caps.treeSignableCompat(treeHash, length, fork, noHeader)
})

const manifests = {
  v1_one: { signers: [{ publicKey: k1.publicKey }] },
  v0_one: { version: 0, signers: [{ publicKey: k1.publicKey, namespace: bytes(7, 32) }] },
  v0_many: { version: 0, quorum: 2, signers: [{ publicKey: k1.publicKey }, { publicKey: k2.publicKey }] },
  v0_prologue: { version: 0, signers: [], prologue: { hash: bytes(9, 32), length: 0 } },
  v1_patch_prologue: {
    version: 1,
    allowPatch: true,
    signers: [{ publicKey: k1.publicKey }, { publicKey: k2.publicKey }, { publicKey: k3.publicKey }],
    prologue: { hash: bytes(5, 32), length: 300 }
  },
  v1_three: {
    signers: [
      { publicKey: k1.publicKey, namespace: bytes(1, 32) },
      { publicKey: k2.publicKey },
      { publicKey: k3.publicKey }
    ]
  },
  v2_linked: {
    version: 2,
    signers: [{ publicKey: k1.publicKey }],
    linked: [bytes(3, 32), bytes(4, 32)],
    userData: b4a.from('user data')
  }
}

const treeHash = crypto.hash(b4a.from('some tree'))
const out = {
  keyPairs: [k1, k2, k3].map((k) => ({ publicKey: hex(k.publicKey), secretKey: hex(k.secretKey) })),
  caps: {
    TREE: hex(crypto.namespace('hypercore', 6)[0]),
    MANIFEST: hex(caps.MANIFEST),
    DEFAULT_NAMESPACE: hex(caps.DEFAULT_NAMESPACE),
    DEFAULT_ENCRYPTION: hex(caps.DEFAULT_ENCRYPTION)
  },
  namespace: crypto.namespace('some app', [0, 5, 255]).map(hex),
  replicate: [hex(caps.replicate(true, bytes(1, 32), bytes(2, 64))), hex(caps.replicate(false, bytes(1, 32), bytes(2, 64)))],
  leaf: [hex(crypto.data(b4a.alloc(0))), hex(crypto.data(bytes(1, 70000)))],
  parent: hex(crypto.parent({ index: 2, size: 7, hash: bytes(2, 32) }, { index: 0, size: 300, hash: bytes(1, 32) })),
  tree: hex(crypto.tree([{ index: 7, size: 1e12, hash: bytes(1, 32) }, { index: 17, size: 3, hash: bytes(2, 32) }])),
  discoveryKey: hex(crypto.discoveryKey(bytes(8, 32))),
  signable: hex(caps.treeSignable(bytes(1, 32), treeHash, 2 ** 40 + 3, 258)),
  signableCompat: [hex(caps.treeSignableCompat(treeHash, 5, 1, false)), hex(caps.treeSignableCompat(treeHash, 5, 1, true))],
  treeHash: hex(treeHash),
  manifests: {}
}

for (const [name, inp] of Object.entries(manifests)) {
  const m = Verifier.createManifest(inp)
  const key = Hypercore.key(m)
  const v = new Verifier(key, m)
  const s = state(treeHash, 400, 2)
  const entry = {
    encoded: hex(Verifier.encodeManifest(m)),
    hash: hex(Verifier.manifestHash(m)),
    key: hex(key),
    quorum: m.quorum
  }
  if (m.signers.length === 1) entry.signature = hex(v.sign(s, k1))
  if (m.signers.length > 1) {
    // the first `quorum` signers sign, each on its own, and the signatures are assembled
    const inputs = []
    for (let i = 0; i < m.quorum; i++) {
      const sig = new Verifier(key, m).signers[i].sign(s, [k1, k2, k3][i])
      inputs.push({ signer: i, signature: sig, patch: 0, nodes: null })
    }
    entry.signature = hex(v.assemble(inputs))
  }
  if (m.prologue === null || m.signers.length) entry.verifies = v.verify(s, b4a.from(entry.signature, 'hex'))
  if (m.prologue !== null) {
    // what verifies without a signature: states at or below the prologue's length
    const p = m.prologue
    entry.prologueStates = [
      [p.length, p.hash], [p.length, treeHash], [p.length + 1, p.hash], [Math.max(p.length - 1, 0), p.hash]
    ].map(([length, hash]) => ({ length, hash: hex(hash), verifies: v.verify(state(hash, length, 0), null) }))
  }
  out.manifests[name] = entry
}

// the compat way: a bare hypercore keyed by its public key (and legacy: without the TREE header)
for (const legacy of [false, true]) {
  const m = Verifier.defaultSignerManifest(k1.publicKey)
  const v = new Verifier(k1.publicKey, m, { legacy })
  out[legacy ? 'legacySignature' : 'compatSignature'] = hex(v.sign(state(treeHash, 400, 2), k1))
}

out.multisig = hex(multisig.assemble([
  { signer: 2, signature: bytes(6, 64), patch: 0, nodes: null },
  { signer: 0, signature: bytes(7, 64), patch: 3, nodes: [{ index: 5, size: 9, hash: bytes(8, 32) }] }
]))
out.multisigv0 = hex(c.encode(require('hypercore/lib/messages.js').multiSignaturev0, {
  proofs: [
    { signer: 1, signature: bytes(6, 64), patch: null },
    { signer: 0, signature: bytes(7, 64), patch: { start: 4, length: 2, nodes: [0, 3] } }
  ],
  patch: [{ index: 5, size: 9, hash: bytes(8, 32) }]
}))

console.log(JSON.stringify(out))
