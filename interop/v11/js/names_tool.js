// A corestore 7 in a fresh temporary directory, for the interop tests of hypernode.core11.names.
// Usage: node names_tool.js SPEC.json; prints one JSON line.
//
// SPEC: { "primaryKey": hex (32 bytes) or null (the store picks one and keeps it in its storage),
//         "manifestVersion": number or null (the store's option),
//         "cores": [ { "path": [ ns, ... ], "name": string, "session": bool } ],
//         "keyPairs": [ { "path": [ ns, ... ], "name": ns } ] }
// where ns is { "str": string } or { "hex": bytes }: a name given to store.namespace() (a Buffer for
// hex); "session": true takes store.session() of the innermost namespace before get().
// Each core gets one block, "block:" + its name, appended.
//
// Output: primaryKey (store.primaryKey, as the store read it back), reopened (the primary key a second
// Corestore on the same directory, given none, reads from storage), and per core publicKey, key,
// discoveryKey, manifest (its encoding), signature (after the append) and the discovery key the
// reopened store gives the same name, or { error } when get() refuses it; per key pair its publicKey
// (store.createKeyPair(name) in that namespace).
const fs = require('fs')
const os = require('os')
const path = require('path')
const Corestore = require('corestore')

const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const nsName = (n) => (n.hex !== undefined ? Buffer.from(n.hex, 'hex') : n.str)

function at (store, nsPath) {
  let s = store
  for (const n of nsPath) s = s.namespace(nsName(n))
  return s
}

async function main () {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'names11-'))
  const opts = {}
  if (spec.primaryKey) Object.assign(opts, { primaryKey: Buffer.from(spec.primaryKey, 'hex'), unsafe: true })
  if (spec.manifestVersion) opts.manifestVersion = spec.manifestVersion
  const out = { primaryKey: null, reopened: null, cores: [], keyPairs: [] }
  try {
    const store = new Corestore(dir, opts)
    await store.ready()
    out.primaryKey = hex(store.primaryKey)
    for (const c of spec.cores) {
      let s = at(store, c.path)
      if (c.session) s = s.session()
      try {
        const core = s.get({ name: c.name })
        await core.ready()
        await core.append(Buffer.from('block:' + c.name))
        out.cores.push({
          publicKey: hex(core.keyPair.publicKey),
          key: hex(core.key),
          discoveryKey: hex(core.discoveryKey),
          manifest: hex(core.getManifest({ raw: true })),
          signature: hex(core.state.signature)
        })
        await core.close()
      } catch (err) {
        out.cores.push({ error: err.code || err.message })
      }
    }
    for (const k of spec.keyPairs) {
      const kp = await at(store, k.path).createKeyPair(nsName(k.name))
      out.keyPairs.push({ publicKey: hex(kp.publicKey) })
    }
    await store.close()

    const again = new Corestore(dir, spec.manifestVersion ? { manifestVersion: spec.manifestVersion } : {})
    await again.ready()
    out.reopened = hex(again.primaryKey)
    for (const [i, c] of spec.cores.entries()) {
      if (out.cores[i].error) continue
      let s = at(again, c.path)
      if (c.session) s = s.session()
      const core = s.get({ name: c.name })
      await core.ready()
      out.cores[i].reopenedDiscoveryKey = hex(core.discoveryKey)
      out.cores[i].reopenedLength = core.length
      await core.close()
    }
    await again.close()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  console.log(JSON.stringify(out))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
