"""Merkle proofs of hypercore 11 (block, hash and upgrade proofs), against the pinned JS, both ways.

interop/v11/js/proof_tool.js builds a real hypercore 11.39.5 core from a seed and answers requests with
``core.proof()`` (what its replicator sends); Python's :func:`~hypernode.core11.proof.make_proof` must
give the same proofs from a :class:`~hypernode.core11.log.Log` of the same blocks, and
:func:`~hypernode.core11.proof.verify_proof` must accept JS's proofs and refuse damaged ones. The other
way, a read-only JS core applies Python's proofs with ``core.applyProof`` (hypercore's own checks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

from conftest import require_node11, run_js11
from hypernode.core11 import crypto as c11
from hypernode.core11.log import Log
from hypernode.core11.proof import (
    BlockRequest,
    DataBlock,
    DataHash,
    DataUpgrade,
    HashRequest,
    Proof,
    UpgradeRequest,
    make_proof,
    verify_proof,
)
from hypernode.core11.tree import MerkleTree, Node
from hypernode.errors import VerificationError

pytestmark = pytest.mark.interop

BATCHES = [[1024] * 5, [64 * 1024] * 2, [1024] * 6, [7, 0, 1024]]  # 16 blocks, the last batch signed
LENGTH = sum(map(len, BATCHES))


def _requests() -> list[dict[str, Any]]:
    reqs: list[dict[str, Any]] = []
    for start in (0, 1, 4, 5, 7, 8, 12, 15):
        for length in {1, LENGTH - start, min(3, LENGTH - start)}:
            reqs.append({"upgrade": {"start": start, "length": length}})
            for index in sorted({0, 3, start, start + length - 1, LENGTH - 1}):
                if index < LENGTH:
                    reqs.append({"block": {"index": index, "nodes": 0},
                                 "upgrade": {"start": start, "length": length}})
    for index in range(LENGTH):
        for nodes in (0, 1, 2, 4):
            reqs.append({"block": {"index": index, "nodes": nodes}})
    for index, nodes, start in [(1, 0, 8), (3, 1, 8), (5, 1, 12), (9, 0, 15), (7, 2, 0)]:
        reqs.append({"hash": {"index": index, "nodes": nodes},
                     "upgrade": {"start": start, "length": LENGTH - start}})
    return reqs


def _data(seed: bytes) -> bytes:
    total = sum(map(sum, BATCHES))
    out = bytearray()
    i = 0
    while len(out) < total:
        out += hashlib.blake2b(seed + i.to_bytes(8, "little"), digest_size=64).digest()
        i += 1
    return bytes(out[:total])


def _blocks(data: bytes) -> list[list[bytes]]:
    out, offset = [], 0
    for sizes in BATCHES:
        batch = []
        for n in sizes:
            batch.append(data[offset:offset + n])
            offset += n
        out.append(batch)
    return out


def _nodes_in(nodes: list[dict[str, Any]]) -> tuple[Node, ...]:
    return tuple(Node(n["index"], n["size"], bytes.fromhex(n["hash"])) for n in nodes)


def _nodes_out(nodes: tuple[Node, ...]) -> list[dict[str, Any]]:
    return [{"index": n.index, "size": n.size, "hash": n.hash.hex()} for n in nodes]


def proof_from_json(p: dict[str, Any]) -> Proof:
    b, h, u = p["block"], p["hash"], p["upgrade"]
    return Proof(
        fork=p["fork"],
        block=DataBlock(b["index"], bytes.fromhex(b["value"]), _nodes_in(b["nodes"])) if b else None,
        hash=DataHash(h["index"], _nodes_in(h["nodes"])) if h else None,
        upgrade=DataUpgrade(u["start"], u["length"], _nodes_in(u["nodes"]), _nodes_in(u["additionalNodes"]),
                            bytes.fromhex(u["signature"])) if u else None)


def proof_to_json(p: Proof) -> dict[str, Any]:
    return {
        "fork": p.fork,
        "block": p.block and {"index": p.block.index, "value": p.block.value.hex(),
                              "nodes": _nodes_out(p.block.nodes)},
        "hash": p.hash and {"index": p.hash.index, "nodes": _nodes_out(p.hash.nodes)},
        "seek": None,
        "upgrade": p.upgrade and {"start": p.upgrade.start, "length": p.upgrade.length,
                                  "nodes": _nodes_out(p.upgrade.nodes),
                                  "additionalNodes": _nodes_out(p.upgrade.additional_nodes),
                                  "signature": p.upgrade.signature.hex()},
    }


def _python_proof(log: Log, req: dict[str, Any]) -> Proof:
    return make_proof(
        log.tree, log.signature, values=log.blocks,
        block=BlockRequest(**req["block"]) if "block" in req else None,
        hash=HashRequest(**req["hash"]) if "hash" in req else None,
        upgrade=UpgradeRequest(**req["upgrade"]) if "upgrade" in req else None)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_node11()
    tmp = tmp_path_factory.mktemp("proofs")
    seed = hashlib.blake2b(b"core11 proofs", digest_size=32).digest()
    data = _data(seed)
    (tmp / "blocks.bin").write_bytes(data)
    requests = _requests()
    spec = tmp / "make.json"
    spec.write_text(json.dumps({"seed": seed.hex(), "data": str(tmp / "blocks.bin"), "batches": BATCHES,
                                "requests": requests}))
    theirs = run_js11("proof_tool.js", "make", str(spec))
    log = Log.create(c11.key_pair(seed))
    for batch in _blocks(data):
        log.append(batch)
    return {"theirs": theirs, "log": log, "requests": requests, "tmp": tmp, "seed": seed}


def test_python_makes_the_proofs_js_makes(setup: dict[str, Any]):
    log, theirs = setup["log"], setup["theirs"]
    assert theirs["key"] == log.key.hex() and theirs["manifest"] == log.encoded_manifest.hex()
    assert theirs["length"] == LENGTH
    made = 0
    for req, js_proof in zip(setup["requests"], theirs["proofs"], strict=True):
        if "error" in js_proof:
            with pytest.raises(ValueError):
                _python_proof(log, req)
            continue
        assert proof_to_json(_python_proof(log, req)) == js_proof, req
        made += 1
    assert made > 100


def _requester(log: Log, length: int) -> MerkleTree:
    """A requester that holds the first ``length`` blocks' tree (it verified them earlier)."""
    tree = MerkleTree()
    tree.commit(tree.batch(log.blocks[:length]))
    return tree


def test_python_verifies_js_proofs(setup: dict[str, Any]):
    log, theirs = setup["log"], setup["theirs"]
    checked = 0
    for req, js_proof in zip(setup["requests"], theirs["proofs"], strict=True):
        if "error" in js_proof:
            continue
        proof = proof_from_json(js_proof)
        start = req["upgrade"]["start"] if "upgrade" in req else LENGTH
        result = verify_proof(_requester(log, start), log.verifier, proof)
        if "upgrade" in req:
            assert result.length == LENGTH and result.signature == log.signature
            assert result.roots == log.roots() and result.tree_hash == log.tree_hash()
        if "block" in req:
            assert result.value == log.blocks[req["block"]["index"]]
        checked += 1
    assert checked > 100


def _damaged(proof: Proof) -> list[Proof]:
    """Proofs that must not verify: a changed block, node, size or signature, nodes out of order, an
    extra node, another fork."""
    out = []
    rep = dataclasses.replace

    def bad(n: Node) -> Node:
        return Node(n.index, n.size, bytes([n.hash[0] ^ 1]) + n.hash[1:])
    if proof.block:
        nodes = proof.block.nodes
        out.append(rep(proof, block=rep(proof.block, value=proof.block.value + b"!")))
        if nodes:
            out.append(rep(proof, block=rep(proof.block, nodes=(bad(nodes[0]),) + nodes[1:])))
        if len(nodes) >= 2:  # (fewer nodes is a valid proof for a requester holding more of the tree)
            out.append(rep(proof, block=rep(proof.block, nodes=(nodes[1], nodes[0]) + nodes[2:])))
    if proof.upgrade:
        up = proof.upgrade
        sig = bytearray(up.signature)
        sig[20] ^= 1
        out.append(rep(proof, upgrade=rep(up, signature=bytes(sig))))
        out.append(rep(proof, fork=proof.fork + 1))
        if up.nodes:
            out.append(rep(proof, upgrade=rep(up, nodes=(bad(up.nodes[0]),) + up.nodes[1:])))
            out.append(rep(proof, upgrade=rep(up, nodes=up.nodes + up.nodes[-1:])))
        if up.additional_nodes:
            a = up.additional_nodes
            wrong_size = Node(a[0].index, a[0].size + 1, a[0].hash)
            out.append(rep(proof, upgrade=rep(up, additional_nodes=(wrong_size,) + a[1:])))
    return out


def test_python_refuses_damaged_js_proofs(setup: dict[str, Any]):
    log, theirs = setup["log"], setup["theirs"]
    refused = 0
    for req, js_proof in zip(setup["requests"], theirs["proofs"], strict=True):
        if "error" in js_proof:
            continue
        start = req["upgrade"]["start"] if "upgrade" in req else LENGTH
        for bad in _damaged(proof_from_json(js_proof)):
            with pytest.raises(VerificationError):
                verify_proof(_requester(log, start), log.verifier, bad)
            refused += 1
    assert refused > 300


def test_js_applies_python_proofs(setup: dict[str, Any], js11):
    """A read-only JS core takes Python's proofs: an upgrade to the full length with block 6, then blocks
    without upgrades; a proof with a flipped node is refused and changes nothing."""
    log, tmp = setup["log"], setup["tmp"]
    good_first = make_proof(log.tree, log.signature, values=log.blocks, block=BlockRequest(6),
                            upgrade=UpgradeRequest(0, LENGTH))
    # (nodes=4: the requester has only the root and block 6's path; the proofs climb to the root)
    later = [make_proof(log.tree, log.signature, values=log.blocks, block=BlockRequest(i, 4))
             for i in (0, 9, 15)]
    damaged = _damaged(make_proof(log.tree, log.signature, values=log.blocks, block=BlockRequest(12, 4)))[1]
    spec = tmp / "apply.json"
    spec.write_text(json.dumps({"key": log.key.hex(), "manifest": log.encoded_manifest.hex(),
                                "proofs": [proof_to_json(p) for p in [good_first, *later, damaged]]}))
    results = js11("proof_tool.js", "apply", str(spec))["results"]
    th = log.tree_hash().hex()
    assert results[:4] == [{"ok": True, "length": LENGTH, "treeHash": th}] * 4
    assert results[4] == {"error": "INVALID_CHECKSUM", "length": LENGTH, "treeHash": th}
