"""The sparse hypercore 11 :class:`~hypernode.core11.core.Core` against the pinned JS hypercore 11.39.5,
both ways.

interop/v11/js/core_sparse_tool.js drives a real JS core on disk, one JSON command a line. JS to Python: a
JS writer answers requests for blocks in random order (and for upgrades as it grows, after a truncation
moved its fork on) with ``core.proof()``, what its replicator sends; a Python Core opened by key alone
applies them and ends with the same tree hash, signature, blocks and contiguous length, and refuses a
damaged one storing nothing; when the writer truncates and appends other blocks, the core follows it to
the new fork with JS's proofs (a reorg) keeping the blocks the forks share. Python to JS: a Python Core
writer (and a sparse Python Core filled from it) answer a JS core opened by key, which asks with its own
``missingNodes`` and takes every proof through ``core.applyProof`` (hypercore's own checks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import require_node11
from hypernode.core11 import crypto as c11
from hypernode.core11.core import Applied, Core
from hypernode.core11.manifest import core_key, decode_manifest, default_signer_manifest, encode_manifest
from hypernode.core11.proof import BlockRequest, HashRequest, UpgradeRequest
from hypernode.core11.storage import Auth, MemoryCoreStorage, MemoryStoreStorage
from hypernode.errors import VerificationError
from interop.test_core11_proof_interop import proof_from_json, proof_to_json

pytestmark = pytest.mark.interop

TOOL = Path(__file__).resolve().parent / "v11" / "js" / "core_sparse_tool.js"


class JSCore:
    """core_sparse_tool.js in a subprocess: one JSON command a line, one answer a line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", str(TOOL)], cwd=TOOL.parent.parent, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def __call__(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"core_sparse_tool.js exited (code {self.proc.poll()})"
        answer: dict[str, Any] = json.loads(line)
        assert "error" not in answer, (cmd, answer)
        return answer

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def jscore() -> Any:
    require_node11()
    js = JSCore()
    try:
        yield js
    finally:
        js.close()


def _blocks(rnd: random.Random, n: int) -> list[bytes]:
    return [rnd.randbytes(rnd.choice([0, 1, 31, 1024, 5000])) for _ in range(n)]


def _js_request(block: BlockRequest | None = None, upgrade: UpgradeRequest | None = None,
                hash: HashRequest | None = None) -> dict[str, Any]:
    return {"block": block and dataclasses.asdict(block), "hash": hash and dataclasses.asdict(hash),
            "seek": None, "upgrade": upgrade and dataclasses.asdict(upgrade)}


def _core_state(core: Core) -> dict[str, Any]:
    return {"fork": core.fork, "byteLength": core.byte_length, "contiguousLength": core.contiguous_length,
            "treeHash": core.tree_hash().hex(), "signature": core.signature and core.signature.hex(),
            "have": [int(core.has(i)) for i in range(core.length)],
            "blocks": [core.get(i).hex() if core.has(i) else None for i in range(core.length)],
            "length": core.length}


def _snapshot(s: MemoryCoreStorage) -> tuple[Any, ...]:
    return (dict(s._blocks), dict(s._nodes), dict(s._pages), s._head, s._hints, s._auth)


def test_a_python_sparse_core_takes_js_proofs_in_random_order(jscore: JSCore):
    rnd = random.Random(11)
    seed = hashlib.blake2b(b"core11 sparse js writer", digest_size=32).digest()
    made = jscore("create", seed=seed.hex())
    key, manifest = bytes.fromhex(made["key"]), decode_manifest(bytes.fromhex(made["manifest"]))
    for n in (9, 20, 11):
        jscore("append", blocks=[b.hex() for b in _blocks(rnd, n)])
    assert jscore("truncate", length=30)["fork"] == 1  # the writer's fork moved on before we came
    jscore("append", blocks=[b.hex() for b in _blocks(rnd, 10)])

    storage = MemoryStoreStorage().create_core(Auth(key, c11.discovery_key(key)))
    core = Core.create(storage)  # by key alone: the manifest comes with the first proof
    first = rnd.randrange(40)
    req = _js_request(BlockRequest(first), UpgradeRequest(0, 40))
    proof = proof_from_json(jscore("proof", request=req)["proof"])
    assert core.apply(proof, manifest=manifest) == Applied(True, 40, first)
    assert (core.fork, core.manifest) == (1, manifest)

    order = [i for i in range(40) if i != first]
    rnd.shuffle(order)
    for step, index in enumerate(order):
        if step == 15:  # the writer grows: an upgrade with a block of the new part
            jscore("append", blocks=[b.hex() for b in _blocks(rnd, 7)])
            req = _js_request(BlockRequest(44), UpgradeRequest(core.length, 7))
            assert core.apply(proof_from_json(jscore("proof", request=req)["proof"])) == Applied(True, 47, 44)
            order += [40, 41, 42, 43, 45, 46]  # (the loop goes on over these)
        if step == 20:  # a damaged proof: refused, nothing stored
            req = _js_request(BlockRequest(index, core.missing_nodes(2 * index)))
            good = proof_from_json(jscore("proof", request=req)["proof"])
            assert good.block is not None
            bad_block = dataclasses.replace(good.block, value=good.block.value + b"!")
            bad = dataclasses.replace(good, block=bad_block)
            snap = _snapshot(storage)
            with pytest.raises(VerificationError):
                core.apply(bad)
            assert _snapshot(storage) == snap and not core.has(index)
        req = _js_request(BlockRequest(index, core.missing_nodes(2 * index)))
        applied = core.apply(proof_from_json(jscore("proof", request=req)["proof"]))
        assert applied == Applied(False, 40 if step < 15 else 47, index)

    theirs = jscore("state")
    assert _core_state(core) == theirs and core.contiguous_length == 47
    # the core resumes from its storage as it was
    assert _core_state(Core(storage)) == theirs


def test_a_python_core_by_key_alone_follows_a_compat_js_writer(jscore: JSCore):
    """A bare JS hypercore keyed by its public key: the Python core, knowing nothing but the key, takes
    the key as the signer (as hypercore does) and keeps that manifest."""
    rnd = random.Random(15)
    seed = hashlib.blake2b(b"core11 sparse js compat", digest_size=32).digest()
    made = jscore("create", seed=seed.hex(), compat=True)
    key = bytes.fromhex(made["key"])
    assert key == c11.key_pair(seed).public_key
    jscore("append", blocks=[b.hex() for b in _blocks(rnd, 12)])
    storage = MemoryStoreStorage().create_core(Auth(key, c11.discovery_key(key)))
    core = Core.create(storage)
    req = _js_request(BlockRequest(7), UpgradeRequest(0, 12))
    assert core.apply(proof_from_json(jscore("proof", request=req)["proof"])) == Applied(True, 12, 7)
    assert core.manifest == default_signer_manifest(key) == storage.get_auth().manifest
    for index in list(core.missing(0, 12)):
        req = _js_request(BlockRequest(index, core.missing_nodes(2 * index)))
        core.apply(proof_from_json(jscore("proof", request=req)["proof"]))
    assert _core_state(core) == jscore("state")


def test_a_python_core_follows_a_js_writer_to_a_new_fork(jscore: JSCore):
    """The JS writer truncates and appends other blocks (fork 1) after a Python core took all it had: the
    core finds where the forks part with JS's proofs (an upgrade from 0, then hash proofs, as hypercore's
    replicator asks them), keeps the blocks before it and ends with JS's blocks."""
    rnd = random.Random(13)
    seed = hashlib.blake2b(b"core11 sparse js reorg", digest_size=32).digest()
    made = jscore("create", seed=seed.hex())
    key, manifest = bytes.fromhex(made["key"]), decode_manifest(bytes.fromhex(made["manifest"]))
    jscore("append", blocks=[b.hex() for b in _blocks(rnd, 45)])
    storage = MemoryStoreStorage().create_core(Auth(key, c11.discovery_key(key), manifest))
    core = Core.create(storage)
    core.apply(proof_from_json(jscore("proof", request=_js_request(upgrade=UpgradeRequest(0, 45)))["proof"]))
    for index in range(45):
        req = _js_request(BlockRequest(index, core.missing_nodes(2 * index)))
        core.apply(proof_from_json(jscore("proof", request=req)["proof"]))
    assert jscore("truncate", length=29)["fork"] == 1
    jscore("append", blocks=[b.hex() for b in _blocks(rnd, 9)])

    up = proof_from_json(jscore("proof", request=_js_request(upgrade=UpgradeRequest(0, 38)))["proof"])
    with pytest.raises(VerificationError, match="reorg"):
        core.apply(up)
    reorg = core.reorg_from(up)
    asked = 0
    while reorg.want is not None:
        hash_req = reorg.request(rnd.randrange(reorg.want.start, reorg.want.end))
        answer = jscore("proof", request=_js_request(hash=hash_req))["proof"]
        core.update_reorg(reorg, proof_from_json(answer))
        asked += 1
    assert reorg.ancestors == 29 and asked >= 1
    assert core.apply_reorg(reorg) == 29
    assert list(core.ranges()) == [(0, 29)] and (core.fork, core.length) == (1, 38)
    for index in list(core.missing(0, 38)):
        req = _js_request(BlockRequest(index, core.missing_nodes(2 * index)))
        core.apply(proof_from_json(jscore("proof", request=req)["proof"]))
    theirs = jscore("state")
    assert _core_state(core) == theirs and _core_state(Core(storage)) == theirs


def _python_writer(rnd: random.Random) -> Core:
    kp = c11.key_pair(hashlib.blake2b(b"core11 sparse py writer", digest_size=32).digest())
    manifest = default_signer_manifest(kp.public_key)
    key = core_key(manifest)
    core = Core.create(MemoryStoreStorage().create_core(Auth(key, c11.discovery_key(key), manifest, kp)))
    for n in (13, 1, 30):
        core.append(_blocks(rnd, n))
    core.truncate(33)
    core.append(_blocks(rnd, 6))
    return core


def test_a_js_core_takes_python_proofs_in_random_order(jscore: JSCore):
    rnd = random.Random(12)
    writer = _python_writer(rnd)
    assert writer.manifest is not None
    jscore("open", key=writer.key.hex(), manifest=encode_manifest(writer.manifest).hex())
    # a sparse Python core filled from the writer answers for half the blocks
    auth = Auth(writer.key, writer.discovery_key, writer.manifest)
    sparse = Core.create(MemoryStoreStorage().create_core(auth))
    n = writer.length
    first = rnd.randrange(n)
    proof = writer.proof(block=BlockRequest(first), upgrade=UpgradeRequest(0, n))
    assert jscore("apply", proof=proof_to_json(proof)) == {"ok": True, "length": n}
    sparse.apply(proof)
    order = [i for i in range(n) if i != first]
    rnd.shuffle(order)
    for index in order[: n // 2]:
        sparse.apply(writer.proof(block=BlockRequest(index, sparse.missing_nodes(2 * index))))
    for step, index in enumerate(order):
        if step == 10:  # the writer grows: JS takes the upgrade with a block of the new part
            writer.append(_blocks(rnd, 5))
            proof = writer.proof(block=BlockRequest(n + 2), upgrade=UpgradeRequest(n, 5))
            assert jscore("apply", proof=proof_to_json(proof)) == {"ok": True, "length": n + 5}
            order += [n, n + 1, n + 3, n + 4]
        source = sparse if sparse.has(index) else writer
        nodes = jscore("missingNodes", index=index)["nodes"]
        proof = source.proof(block=BlockRequest(index, nodes))
        assert jscore("apply", proof=proof_to_json(proof)) == {"ok": True, "length": writer.length}, index
    theirs = jscore("state")
    assert theirs == _core_state(writer) and theirs["contiguousLength"] == writer.length


def test_a_js_core_follows_a_python_writer_to_a_new_fork(jscore: JSCore):
    """The other way: JS's own reorg (verifyReorg, batch.update with hash proofs, reorg) over Python's
    proofs after the Python writer truncated and appended other blocks, to the same blocks."""
    rnd = random.Random(14)
    writer = _python_writer(rnd)
    assert writer.manifest is not None
    jscore("open", key=writer.key.hex(), manifest=encode_manifest(writer.manifest).hex())
    n = writer.length
    assert jscore("apply", proof=proof_to_json(writer.proof(upgrade=UpgradeRequest(0, n))))["ok"]
    for index in range(n):
        nodes = jscore("missingNodes", index=index)["nodes"]
        jscore("apply", proof=proof_to_json(writer.proof(block=BlockRequest(index, nodes))))
    writer.truncate(17)
    writer.append(_blocks(rnd, 30))
    state = jscore("reorgBegin", proof=proof_to_json(writer.proof(upgrade=UpgradeRequest(0, writer.length))))
    asked = 0
    while state["want"] is not None:
        want = state["want"]
        index = rnd.randrange(want["start"], want["end"])
        proof = writer.proof(hash=HashRequest(2 * index, want["nodes"]))
        state = jscore("reorgUpdate", proof=proof_to_json(proof))
        asked += 1
    assert state["ancestors"] == 17 and asked >= 1
    assert jscore("reorgApply") == {"ok": True, "fork": writer.fork, "ancestors": 17, "length": writer.length}
    for index in range(17, writer.length):
        nodes = jscore("missingNodes", index=index)["nodes"]
        assert jscore("apply", proof=proof_to_json(writer.proof(block=BlockRequest(index, nodes))))["ok"]
    assert jscore("state") == _core_state(writer)
