// hypercore 11 proofs as JSON and back (buffers as hex), shared by proof_tool.js and core_sparse_tool.js.
const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const buf = (h) => (h === null || h === undefined ? null : Buffer.from(h, 'hex'))
const nodesOut = (nodes) => nodes.map((n) => ({ index: n.index, size: n.size, hash: hex(n.hash) }))
const nodesIn = (nodes) => nodes.map((n) => ({ index: n.index, size: n.size, hash: buf(n.hash) }))

// a proof as core.proof() gives it (what the replicator sends), as JSON
function proofOut (p) {
  return {
    fork: p.fork,
    block: p.block && { index: p.block.index, value: hex(p.block.value), nodes: nodesOut(p.block.nodes) },
    hash: p.hash && { index: p.hash.index, nodes: nodesOut(p.hash.nodes) },
    seek: p.seek && { bytes: p.seek.bytes, nodes: nodesOut(p.seek.nodes) },
    upgrade: p.upgrade && {
      start: p.upgrade.start,
      length: p.upgrade.length,
      nodes: nodesOut(p.upgrade.nodes),
      additionalNodes: nodesOut(p.upgrade.additionalNodes),
      signature: hex(p.upgrade.signature)
    }
  }
}

// a JSON proof as core.applyProof() takes it
function proofIn (p) {
  return {
    fork: p.fork,
    block: p.block && { index: p.block.index, value: buf(p.block.value), nodes: nodesIn(p.block.nodes) },
    hash: p.hash && { index: p.hash.index, nodes: nodesIn(p.hash.nodes) },
    seek: null,
    upgrade: p.upgrade && {
      start: p.upgrade.start,
      length: p.upgrade.length,
      nodes: nodesIn(p.upgrade.nodes),
      additionalNodes: nodesIn(p.upgrade.additionalNodes),
      signature: buf(p.upgrade.signature)
    },
    manifest: null
  }
}

module.exports = { hex, buf, nodesOut, nodesIn, proofOut, proofIn }
