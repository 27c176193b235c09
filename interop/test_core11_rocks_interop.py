"""hypernode.core11.rocks against the pinned corestore 7.12.5 / hypercore-storage 3.3.2 (interop/v11), on
real files, both ways.

JS writes, Python reads: interop/v11/js/rocks_tool.js makes a corestore 7 with a known primary key, named
cores in nested namespaces with appends of mixed sizes (some over 4 KiB, so RocksDB puts them in blob
files; these cores are flushed to table files, the rest stays in the write-ahead log), one truncated, and
a core opened by key that downloaded only some blocks from another store (its bitfield has holes).
:class:`~hypernode.core11.rocks.RocksStoreStorage` must find the same primary key, aliases that resolve to
the discovery keys :mod:`hypernode.core11.names` derives, heads whose signatures verify, tree nodes that
hash up to the head's roots, blocks that hash to their leaves and bitfield pages that mark exactly the
blocks JS holds.

Python writes, JS reads: Python makes a store with :class:`~hypernode.core11.log.Log` (tree nodes and
signatures) and names from :mod:`hypernode.core11.names`; corestore 7 opens it with no primary key given,
finds ours, gets each core by name with our key and length, reads every block, replicates each core to a
fresh store (which verifies every block's proof against our tree nodes and signature) and appends one
block, which Python then reads back with a good signature.

The sparse :class:`~hypernode.core11.core.Core` on this storage: a named writer and a core opened by key
that took two blocks' proofs from it resume from disk as they were, and corestore 7 reads both.

And a store is held by one process at a time: JS refuses a store Python holds, Python refuses one JS
holds (StoreLockedError).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import INTEROP
from hypernode import flat_tree
from hypernode.core11.core import Core
from hypernode.core11.crypto import leaf_hash, parent_hash, tree_hash
from hypernode.core11.log import Log
from hypernode.core11.names import Namespace
from hypernode.core11.proof import BlockRequest, UpgradeRequest
from hypernode.core11.rocks import RocksCoreStorage, RocksStoreStorage
from hypernode.core11.storage import BITFIELD_PAGE_BYTES, Auth, Head, Hints
from hypernode.core11.tree import Node
from hypernode.core11.verifier import Verifier
from hypernode.errors import StoreLockedError

pytestmark = pytest.mark.interop

PRIMARY = bytes(range(32))
TOOL = str(INTEROP / "v11" / "js" / "rocks_tool.js")

JS_CORES: list[dict[str, Any]] = [
    {"path": [], "name": "main", "ops": [{"append": [10, 5000, 300]}, {"append": [70000]}]},
    {"path": ["app", "sub"], "name": "cut", "ops": [{"append": [1, 2, 3, 4, 5, 6, 7]}, {"truncate": 3},
                                                     {"append": [9000, 20]}]},
    {"path": ["app"], "name": "é naïve", "ops": [{"append": [4096, 4095, 4097]}]},
]
REPLICA = {"blocks": [100, 200, 5000, 300, 400, 500, 600], "fetch": [1, 4, 5]}


def _ns(path: list[str]) -> Namespace:
    ns = Namespace(PRIMARY)
    for p in path:
        ns = ns.namespace(p)
    return ns


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _held(core: RocksCoreStorage) -> set[int]:
    held = set()
    for page_index, page in core.bitfield_pages():
        assert len(page) == BITFIELD_PAGE_BYTES
        for byte_index, byte in enumerate(page):
            for bit in range(8):
                if byte >> bit & 1:
                    held.add(page_index * BITFIELD_PAGE_BYTES * 8 + byte_index * 8 + bit)
    return held


def _check_core(core: RocksCoreStorage) -> tuple[Head, list[bytes | None]]:
    """The head verifies against the roots in storage; every held block hashes to its leaf and its leaf
    hashes up to a root through stored nodes. Returns the head and the blocks (None: not held)."""
    auth = core.get_auth()
    head = core.get_head()
    assert head is not None and auth.manifest is not None
    roots = [core.get_tree_node(i) for i in flat_tree.full_roots(2 * head.length)]
    assert all(r is not None for r in roots)
    root_nodes = [r for r in roots if r is not None]
    assert tree_hash(root_nodes) == head.root_hash
    assert Verifier(auth.key, auth.manifest).verify(head.root_hash, head.length, head.fork, head.signature)
    by_index = {r.index: r for r in root_nodes}
    held = _held(core)
    assert all(i < head.length for i in held)
    blocks: list[bytes | None] = []
    for i in range(head.length):
        block = core.get_block(i)
        assert (block is not None) == (i in held), f"block {i}: stored or in the bitfield, not both"
        blocks.append(block)
        if block is None:
            continue
        node = core.get_tree_node(2 * i)
        assert node is not None and node.hash == leaf_hash(block) and node.size == len(block)
        while node.index not in by_index:
            sibling = core.get_tree_node(flat_tree.sibling(node.index))
            assert sibling is not None, f"block {i}: node {flat_tree.sibling(node.index)} missing"
            parent = Node(flat_tree.parent(node.index), node.size + sibling.size, parent_hash(node, sibling))
            stored = core.get_tree_node(parent.index)
            assert stored is None or stored == parent
            node = parent
        assert by_index[node.index] == node
    assert core.get_hints().contiguous_length == next((i for i, b in enumerate(blocks) if b is None),
                                                     head.length)
    return head, blocks


def test_python_reads_a_store_js_wrote(js11: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(os.urandom(300_000))
    spec = {"dir": str(tmp_path / "store"), "primaryKey": PRIMARY.hex(), "data": str(data),
            "cores": JS_CORES, "replica": REPLICA}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    theirs = js11("rocks_tool.js", "write", tmp_path / "spec.json")
    assert theirs["primaryKey"] == PRIMARY.hex()
    db_files = os.listdir(tmp_path / "store" / "db")
    assert any(f.endswith(".blob") for f in db_files) and any(f.endswith(".sst") for f in db_files)

    with RocksStoreStorage(tmp_path / "store") as store:
        assert store.get_primary_key() == PRIMARY
        assert {dk.hex() for dk in store.discovery_keys()} == {c["discoveryKey"] for c in theirs["cores"]}
        assert store.get_default_discovery_key() == bytes.fromhex(theirs["cores"][0]["discoveryKey"])
        for c in theirs["cores"]:
            dk = bytes.fromhex(c["discoveryKey"])
            core = store.open_core(dk)
            assert core is not None
            auth = core.get_auth()
            assert auth.key.hex() == c["key"] and auth.discovery_key == dk
            if c["name"] is not None:
                ns = _ns(c["path"])
                named = ns.core(c["name"])
                assert store.get_alias(ns.id, c["name"]) == named.discovery_key == dk
                assert auth.key == named.key and auth.manifest == named.manifest
                assert auth.key_pair == named.key_pair
            else:  # the core opened by key: no key pair, its manifest came from the replica
                assert auth.key_pair is None
            head, blocks = _check_core(core)
            assert (head.length, head.fork) == (c["length"], c["fork"])
            assert head.signature is not None and head.signature.hex() == c["signature"]
            if c["treeHash"] is not None:
                assert head.root_hash.hex() == c["treeHash"]
            assert [_sha(b) if b is not None else None for b in blocks] == c["blocks"]
        replica = theirs["cores"][-1]
        assert [i for i, b in enumerate(replica["blocks"]) if b] == REPLICA["fetch"]
        cut = theirs["cores"][1]
        assert (cut["length"], cut["fork"]) == (5, 1)


def _page(held: range) -> bytes:
    page = bytearray(BITFIELD_PAGE_BYTES)
    for i in held:
        page[i >> 3] |= 1 << (i & 7)
    return bytes(page)


def _write_core(store: RocksStoreStorage, ns: Namespace, name: str, ops: list[Any]) -> Log:
    """A named core built with Log, each op one CoreWrite batch (truncations through delete ranges)."""
    named = ns.core(name)
    core = store.create_core(Auth(named.key, named.discovery_key, named.manifest, named.key_pair),
                             alias=(ns.id, name))
    log = Log.create(named.key_pair)
    assert log.key == named.key
    for op in ops:
        w = core.write()
        if isinstance(op, list):
            start = log.length
            log.append(op)
            for i, block in enumerate(op):
                w.put_block(start + i, block)
        else:
            before = set(log.tree.nodes)
            log.truncate(op)
            w.delete_block_range(op, -1)
            for index in before - set(log.tree.nodes):
                w.delete_tree_node_range(index, index + 1)
            w.delete_bitfield_page_range(0, -1)
        for node in log.tree.nodes.values():
            w.put_tree_node(node)
        w.put_bitfield_page(0, _page(range(log.length)))
        w.set_head(Head(log.fork, log.length, log.tree_hash(), log.signature))
        w.set_hints(Hints(log.length))
        w.commit()
    return log


def test_js_reads_a_store_python_wrote(js11: Any, tmp_path: Path) -> None:
    r = os.urandom
    cores = [([], "main", [[r(10), r(5000), r(70000)], [r(3)]]),
             (["app"], "second", [[r(1), r(2), r(3), r(4), r(5)], 2, [r(9000)]]),
             (["app", "deeper"], "naïve ☃", [[r(4096)]])]
    logs = []
    with RocksStoreStorage(tmp_path / "store") as store:
        store.set_primary_key(PRIMARY)
        for path, name, ops in cores:
            logs.append(_write_core(store, _ns(path), name, ops))
    assert sorted(os.listdir(tmp_path / "store")) == ["CORESTORE", "db"]

    spec = {"dir": str(tmp_path / "store"), "cores": [{"path": p, "name": n} for p, n, _ in cores],
            "append": True}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    theirs = js11("rocks_tool.js", "read", tmp_path / "spec.json")
    assert theirs["primaryKey"] == PRIMARY.hex()
    for log, c in zip(logs, theirs["cores"], strict=True):
        ours = [_sha(b) for b in log.blocks]
        assert c["key"] == log.key.hex() and c["length"] == log.length and c["fork"] == log.fork
        assert c["treeHash"] == log.tree_hash().hex() and c["signature"] == log.signature.hex()
        assert c["blocks"] == ours
        assert c["cloned"] == ours and c["clonedTreeHash"] == log.tree_hash().hex()
        assert c["appended"]["length"] == log.length + 1

    with RocksStoreStorage(tmp_path / "store") as store:
        for log, c in zip(logs, theirs["cores"], strict=True):
            core = store.open_core(log.discovery_key)
            assert core is not None
            head, blocks = _check_core(core)
            assert head.length == log.length + 1
            assert blocks[:-1] == log.blocks and blocks[-1] == b"appended by js"
            assert head.root_hash.hex() == c["appended"]["treeHash"]
            assert head.signature is not None and head.signature.hex() == c["appended"]["signature"]
            log.append(b"appended by js")
            assert log.tree_hash() == head.root_hash


def test_one_process_at_a_time_python_and_js(tmp_path: Path, js11: Any) -> None:
    directory = tmp_path / "store"
    with RocksStoreStorage(directory) as store:
        store.set_primary_key(PRIMARY)
        proc = subprocess.run(["node", TOOL, "tryopen", str(directory)], cwd=INTEROP / "v11",
                              capture_output=True, text=True, timeout=60)
        ev = json.loads(proc.stdout.strip().splitlines()[-1])
        assert ev["event"] == "error" and "lock" in ev["message"].lower(), ev
        assert store.get_primary_key() == PRIMARY

    holder = subprocess.Popen(["node", TOOL, "hold", str(directory)], cwd=INTEROP / "v11",
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        ready = json.loads(holder.stdout.readline())
        assert ready == {"event": "ready", "primaryKey": PRIMARY.hex()}
        with pytest.raises(StoreLockedError):
            RocksStoreStorage(directory)
        holder.stdin.close()
        assert json.loads(holder.stdout.readline()) == {"event": "closed"}
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    with RocksStoreStorage(directory) as store:
        assert store.get_primary_key() == PRIMARY


def test_js_reads_cores_the_python_core_kept_in_rocks(js11: Any, tmp_path: Path) -> None:
    """hypernode.core11.core.Core over RocksStoreStorage: a named writer (appends, a truncation, more
    appends) and, in another store, a core opened by key that took two blocks' proofs from it. Both
    resume from disk as they were, and corestore 7 reads both: the writer's blocks (cloned through
    verified replication, then appended to), the sparse core's two blocks and signed head."""
    r = os.urandom
    ns = _ns(["app"])
    named = ns.core("core")
    with RocksStoreStorage(tmp_path / "a") as a, RocksStoreStorage(tmp_path / "b") as b:
        a.set_primary_key(PRIMARY)
        b.set_primary_key(bytes(32))
        writer = Core.create(a.create_core(Auth(named.key, named.discovery_key, named.manifest,
                                                named.key_pair), alias=(ns.id, "core")))
        writer.append([r(10), r(70_000), r(5000), r(1)])
        writer.truncate(2)
        writer.append([r(3), r(4097), r(20)])
        reader = Core.create(b.create_core(Auth(named.key, named.discovery_key, named.manifest)))
        reader.apply(writer.proof(block=BlockRequest(1, 0), upgrade=UpgradeRequest(0, writer.length)))
        reader.apply(writer.proof(block=BlockRequest(4, reader.missing_nodes(8))))
        written = [writer.get(i) for i in range(writer.length)]
        state = (writer.length, writer.fork, writer.tree_hash(), writer.signature)
        assert (reader.length, reader.fork, reader.tree_hash(), reader.signature) == state
    with RocksStoreStorage(tmp_path / "a") as a, RocksStoreStorage(tmp_path / "b") as b:
        for store, held in ((a, list(range(5))), (b, [1, 4])):
            storage = store.open_core(named.discovery_key)
            assert storage is not None
            core = Core.create(storage)
            assert (core.length, core.fork, core.tree_hash(), core.signature) == state
            assert [i for i in range(core.length) if core.has(i)] == held
            assert all(core.get(i) == written[i] for i in held)
            _, blocks = _check_core(storage)
            assert [i for i, b in enumerate(blocks) if b is not None] == held

    spec_a = {"dir": str(tmp_path / "a"), "cores": [{"path": ["app"], "name": "core"}], "append": True}
    spec_b = {"dir": str(tmp_path / "b"), "cores": [{"key": named.key.hex()}]}
    (tmp_path / "a.json").write_text(json.dumps(spec_a))
    (tmp_path / "b.json").write_text(json.dumps(spec_b))
    ours = [_sha(b) for b in written]
    for spec, held in (("a.json", range(5)), ("b.json", [1, 4])):
        theirs = js11("rocks_tool.js", "read", tmp_path / spec)
        (c,) = theirs["cores"]
        assert (c["key"], c["length"], c["fork"]) == (named.key.hex(), state[0], state[1])
        assert c["signature"] == state[3].hex()
        assert c["blocks"] == [ours[i] if i in held else None for i in range(5)]
        if spec == "a.json":
            assert theirs["primaryKey"] == PRIMARY.hex()
            assert c["cloned"] == ours and c["treeHash"] == state[2].hex()
            assert c["appended"]["length"] == 6
