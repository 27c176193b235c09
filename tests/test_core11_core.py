"""hypernode.core11.core (the sparse, persistent hypercore 11 core) and hypernode.core11.bitfield, on the
in-memory storage: appends against the in-memory Log, truncation, sparse cores filled from proofs in any
order, upgrades, damaged proofs refused with nothing stored, resuming from storage, and bounded memory.
(Against JS: interop/test_core11_core_interop.py.)"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from hypernode import flat_tree
from hypernode.core11 import crypto as c11
from hypernode.core11.bitfield import PAGE_BITS, PAGE_BYTES, Bitfield
from hypernode.core11.core import Applied, Core, Reorg
from hypernode.core11.log import Log
from hypernode.core11.manifest import core_key, decode_multisignature, default_signer_manifest
from hypernode.core11.proof import (
    BlockRequest,
    DataBlock,
    DataHash,
    HashRequest,
    Proof,
    UpgradeRequest,
    make_proof,
)
from hypernode.core11.storage import Auth, Head, MemoryCoreStorage, MemoryStoreStorage
from hypernode.core11.tree import Node
from hypernode.errors import (
    BlockNotAvailableError,
    CorruptStorageError,
    MissingTreeNode,
    NotWritableError,
    VerificationError,
)


def _key_pair(seed: bytes = b"core") -> c11.KeyPair:
    return c11.key_pair(hashlib.blake2b(seed, digest_size=32).digest())


def _writer(seed: bytes = b"core") -> tuple[Core, MemoryCoreStorage]:
    kp = _key_pair(seed)
    manifest = default_signer_manifest(kp.public_key)
    key = core_key(manifest)
    storage = MemoryStoreStorage().create_core(Auth(key, c11.discovery_key(key), manifest, kp))
    return Core.create(storage), storage


def _reader(writer: Core, *, with_manifest: bool = True) -> tuple[Core, MemoryCoreStorage]:
    """A core opened by key (and manifest) alone: nothing held."""
    auth = Auth(writer.key, writer.discovery_key, writer.manifest if with_manifest else None)
    storage = MemoryStoreStorage().create_core(auth)
    return Core.create(storage), storage


def _blocks(n: int, seed: int = 0) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(rnd.choice([0, 1, 7, 100, 1000])) for _ in range(n)]


def _snapshot(s: MemoryCoreStorage) -> tuple[Any, ...]:
    return (dict(s._blocks), dict(s._nodes), dict(s._pages), s._head, s._hints, s._auth)


def _state(core: Core) -> tuple[Any, ...]:
    return (core.length, core.byte_length, core.fork, core.signature, core.contiguous_length,
            core.roots(), list(core.ranges()), core.manifest)


def _fetch(reader: Core, writer: Core, index: int) -> Applied:
    """What a replicator does for a block: ask for the levels it lacks, apply the answer."""
    return reader.apply(writer.proof(block=BlockRequest(index, reader.missing_nodes(2 * index))))


# --- appends, reads -------------------------------------------------------------------------------------

def test_append_matches_the_log_and_reads_back():
    core, storage = _writer()
    log = Log.create(_key_pair())
    assert core.key == log.key and core.manifest == log.manifest and core.writable
    assert (core.length, core.byte_length, core.fork, core.signature) == (0, 0, 0, None)
    batches = [_blocks(5, 1), [b"one"], _blocks(30, 2), [b""]]
    for batch in batches:
        assert core.append(batch) == log.append(batch)
        assert core.tree_hash() == log.tree_hash() and core.signature == log.signature
        assert core.byte_length == log.byte_length and core.roots() == log.roots()
    assert core.append(b"single") == log.append(b"single")
    assert core.append([]) == log.length
    for i, block in enumerate(log.blocks):
        assert core.get(i) == block and core.has(i)
        assert storage.get_block(i) == block
    for length in (0, 1, 6, 7, 20, log.length):
        assert core.tree_hash(length) == log.tree_hash(length)
    assert storage.get_head() == Head(0, log.length, log.tree_hash(), log.signature)
    assert core.contiguous_length == log.length and storage.get_hints().contiguous_length == log.length
    assert list(core.ranges()) == [(0, log.length)] and list(core.missing(0, log.length)) == []
    assert list(core.missing(log.length - 1, log.length + 2)) == [log.length, log.length + 1]
    assert core.has_all(0, log.length) and not core.has_all(0, log.length + 1)
    assert not core.has(log.length) and not core.has(-1)
    with pytest.raises(BlockNotAvailableError):
        core.get(log.length)


def test_a_compat_core_signs_as_the_log_and_a_reader_by_key_alone_follows_it():
    """A core keyed by its public key (a bare JS hypercore from a key pair): no manifest stored; a reader
    knowing only the key takes the key as the signer, as hypercore does, and keeps that manifest."""
    kp = _key_pair(b"compat")
    auth = Auth(kp.public_key, c11.discovery_key(kp.public_key), None, kp)
    core = Core.create(MemoryStoreStorage().create_core(auth))
    log = Log.create(kp, compat=True)
    for batch in (_blocks(7, 20), _blocks(3, 21)):
        core.append(batch)
        log.append(batch)
        assert (core.tree_hash(), core.signature) == (log.tree_hash(), log.signature)
    reader, rstorage = _reader(core, with_manifest=False)
    reader.apply(core.proof(block=BlockRequest(4), upgrade=UpgradeRequest(0, 10)))
    assert reader.manifest == default_signer_manifest(kp.public_key) == rstorage.get_auth().manifest
    assert reader.get(4) == log.blocks[4] and reader.signature == log.signature


def test_a_core_without_key_pair_is_read_only():
    writer, _ = _writer()
    reader, storage = _reader(writer)
    assert not reader.writable
    with pytest.raises(NotWritableError):
        reader.append(b"x")
    with pytest.raises(NotWritableError):
        reader.truncate(0)
    assert _snapshot(storage)[0:3] == ({}, {}, {})


def test_proofs_of_a_core_are_the_logs():
    """Core.proof over the stored tree (nodes read on demand) gives what make_proof gives over a Log."""
    core, _ = _writer()
    log = Log.create(_key_pair())
    for batch in (_blocks(9, 3), _blocks(4, 4), _blocks(8, 5)):
        core.append(batch)
        log.append(batch)
    n = log.length
    for start in range(0, n):
        for index in (0, start, n - 1):
            for nodes in (0, 2):
                req = {"block": BlockRequest(index, nodes)}
                for extra in ({}, {"upgrade": UpgradeRequest(start, n - start)}):
                    try:
                        want = make_proof(log.tree, log.signature, values=log.blocks, **req, **extra)
                    except ValueError:
                        with pytest.raises(ValueError):
                            core.proof(**req, **extra)
                        continue
                    assert core.proof(**req, **extra) == want
    assert core.proof(hash=HashRequest(3, 1), upgrade=UpgradeRequest(4, n - 4)) == make_proof(
        log.tree, log.signature, hash=HashRequest(3, 1), upgrade=UpgradeRequest(4, n - 4))


# --- truncation -----------------------------------------------------------------------------------------

def test_truncate_drops_blocks_nodes_and_bits_and_moves_the_fork():
    core, storage = _writer()
    log = Log.create(_key_pair())
    blocks = _blocks(40, 6)
    core.append(blocks)
    log.append(blocks)
    core.truncate(13)
    log.truncate(13)
    assert (core.length, core.fork, core.byte_length) == (13, 1, log.byte_length)
    assert core.tree_hash() == log.tree_hash() and core.signature == log.signature
    assert sorted(storage._blocks) == list(range(13))
    # every node left covers only blocks below 13, and all of those are there
    assert sorted(storage._nodes) == sorted(log.tree.nodes)
    assert all(flat_tree.right_span(i) < 26 for i in storage._nodes)
    assert list(core.ranges(0, 40)) == [(0, 13)] and core.contiguous_length == 13
    assert storage.get_hints().contiguous_length == 13
    page = storage.get_bitfield_page(0)
    assert page is not None and int.from_bytes(page, "little") == (1 << 13) - 1
    with pytest.raises(BlockNotAvailableError):
        core.get(13)
    # appends after it, and a truncation to the same length with a chosen fork
    more = _blocks(5, 7)
    core.append(more)
    log.append(more)
    assert core.tree_hash() == log.tree_hash() and core.signature == log.signature
    core.truncate(18, fork=5)
    log.truncate(18, fork=5)
    assert (core.fork, core.signature) == (5, log.signature)
    core.truncate(0)
    log.truncate(0)
    assert (core.length, core.fork, core.contiguous_length, core.signature) == (0, 6, 0, log.signature)
    assert storage._blocks == {} and storage._nodes == {}
    with pytest.raises(ValueError):
        core.truncate(1)


def test_every_truncation_leaves_no_node_past_its_length():
    """Also node 1 when truncating to one block (hypercore's own loop leaves it) and the left-edge nodes
    above the new last leaf's parents (7 when 8 blocks become 5)."""
    blocks = _blocks(33, 19)
    for n in range(1, 34):
        for k in range(n + 1):
            core, storage = _writer()
            core.append(blocks[:n])
            core.truncate(k)
            assert all(flat_tree.right_span(i) < 2 * k for i in storage._nodes), (n, k)
            assert len(storage._nodes) == 2 * k - len(flat_tree.full_roots(2 * k))


# --- sparse cores ---------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.randoms(use_true_random=False), st.booleans())
def test_a_sparse_core_fills_in_from_proofs_in_any_order(n: int, rnd: random.Random, with_manifest: bool):
    writer, wstorage = _writer()
    writer.append(_blocks(n, n))
    reader, storage = _reader(writer, with_manifest=with_manifest)
    order = list(range(n))
    rnd.shuffle(order)
    first = order.pop()
    # (a core opened by key alone gets the manifest with the first proof, as a JS peer sends it)
    applied = reader.apply(writer.proof(block=BlockRequest(first), upgrade=UpgradeRequest(0, n)),
                           manifest=None if with_manifest else writer.manifest)
    assert applied == Applied(True, n, first)
    assert reader.tree_hash() == writer.tree_hash() and reader.signature == writer.signature
    assert reader.manifest == writer.manifest == storage.get_auth().manifest
    held = {first}
    for index in order:
        assert not reader.has(index)
        with pytest.raises(BlockNotAvailableError):
            reader.get(index)
        assert _fetch(reader, writer, index) == Applied(False, n, index)
        held.add(index)
        assert reader.get(index) == writer.get(index)
        want_contig = next(i for i in range(n + 1) if i not in held)
        assert reader.contiguous_length == want_contig == storage.get_hints().contiguous_length
        assert list(reader.missing(0, n)) == [i for i in range(n) if i not in held]
        assert [i for s, e in reader.ranges() for i in range(s, e)] == sorted(held)
    assert reader.contiguous_length == n and reader.has_all(0, n)
    assert storage._nodes == wstorage._nodes and storage._blocks == wstorage._blocks
    assert storage._pages == wstorage._pages and storage.get_head() == wstorage.get_head()


def test_a_sparse_core_answers_what_it_holds_and_says_what_it_lacks():
    writer, _ = _writer()
    writer.append(_blocks(16, 8))
    reader, _ = _reader(writer)
    reader.apply(writer.proof(block=BlockRequest(5), upgrade=UpgradeRequest(0, 16)))
    # it answers for the block it has, as the writer would
    assert reader.proof(block=BlockRequest(5, 2)) == writer.proof(block=BlockRequest(5, 2))
    assert reader.proof(upgrade=UpgradeRequest(0, 16)) == writer.proof(upgrade=UpgradeRequest(0, 16))
    with pytest.raises(BlockNotAvailableError):
        reader.proof(block=BlockRequest(6))
    with pytest.raises(MissingTreeNode):
        reader.proof(hash=HashRequest(2 * 12, 1))
    assert reader.missing_nodes(2 * 4) == 0  # block 4's leaf came as block 5's sibling
    assert reader.missing_nodes(2 * 6) == 1  # the parent of blocks 6 and 7 came as a node of 5's path
    assert reader.missing_nodes(2 * 12) == 3  # only the root above is held
    assert reader.missing_nodes(2 * 16) == 0  # past the length


def test_upgrades_keep_the_blocks_held_and_take_hash_proofs():
    writer, _ = _writer()
    reader, storage = _reader(writer)
    for step, batch in enumerate([_blocks(3, 9), _blocks(10, 10), _blocks(1, 11), _blocks(17, 12)]):
        start = writer.length
        writer.append(batch)
        if step % 2:
            applied = reader.apply(writer.proof(upgrade=UpgradeRequest(start, len(batch))))
            assert applied == Applied(True, writer.length, None)
        else:
            proof = writer.proof(block=BlockRequest(start), upgrade=UpgradeRequest(start, len(batch)))
            applied = reader.apply(proof)
            assert applied == Applied(True, writer.length, start)
        assert reader.tree_hash() == writer.tree_hash() and reader.byte_length == writer.byte_length
        assert storage.get_head() == Head(0, writer.length, writer.tree_hash(), writer.signature)
    assert [i for s, e in reader.ranges() for i in range(s, e)] == [0, 13]
    assert reader.contiguous_length == 1
    # a hash proof stores its nodes only
    before = dict(storage._blocks)
    assert reader.missing_nodes(2 * 20) > 0
    reader.apply(writer.proof(hash=HashRequest(2 * 20, reader.missing_nodes(2 * 20))))
    assert reader.missing_nodes(2 * 20) == 0 and storage._blocks == before
    # an upgrade from a length past the reader's is refused
    writer.append([b"x", b"y"])
    with pytest.raises(VerificationError, match="upgrade from length"):
        reader.apply(writer.proof(upgrade=UpgradeRequest(writer.length - 1, 1)))
    assert reader.length == writer.length - 2


def test_answers_to_upgrade_requests_made_before_the_core_grew():
    """Two peers asked for an upgrade from the same length; the second answer comes after the first
    took the core further: its block is taken if its roots are the core's (hypercore's downgrade), its
    head too if it is longer and proves the core's roots, else it is refused, storing nothing."""
    writer, _ = _writer()
    writer.append(_blocks(8, 22))
    reader, storage = _reader(writer)
    reader.apply(writer.proof(upgrade=UpgradeRequest(0, 8)))
    writer.append(_blocks(8, 23))  # 16 blocks: one root, 31
    late_16 = writer.proof(block=BlockRequest(9), upgrade=UpgradeRequest(8, 8))
    reader.apply(writer.proof(upgrade=UpgradeRequest(8, 8)))
    assert reader.apply(late_16) == Applied(False, 16, 9) and reader.get(9) == writer.get(9)
    writer.append(_blocks(16, 24))  # 32 blocks
    late_32 = writer.proof(block=BlockRequest(20), upgrade=UpgradeRequest(8, 24))
    assert reader.apply(late_32) == Applied(True, 32, 20)  # (its nodes prove root 31, the reader's)
    assert (reader.tree_hash(), reader.signature) == (writer.tree_hash(), writer.signature)
    # 20 blocks (roots 31, 39), and an answer from 10 to 40 that does not prove root 39: refused
    writer2, _ = _writer(b"second")
    writer2.append(_blocks(10, 25))
    reader2, storage2 = _reader(writer2)
    reader2.apply(writer2.proof(upgrade=UpgradeRequest(0, 10)))
    writer2.append(_blocks(10, 26))
    reader2.apply(writer2.proof(upgrade=UpgradeRequest(10, 10)))
    writer2.append(_blocks(20, 27))
    snap = _snapshot(storage2)
    with pytest.raises(VerificationError, match="ask again"):
        reader2.apply(writer2.proof(upgrade=UpgradeRequest(10, 30)))
    assert _snapshot(storage2) == snap and reader2.length == 20
    # a late answer of another writer's (its roots are not the reader's) is refused
    other, _ = _writer(b"other")
    other.append(_blocks(16, 28))
    with pytest.raises(VerificationError):
        reader.apply(other.proof(block=BlockRequest(3), upgrade=UpgradeRequest(8, 8)))
    assert storage.get_block(3) is None


def test_a_proof_of_another_fork_is_refused_but_an_empty_core_takes_it():
    writer, _ = _writer()
    writer.append(_blocks(8, 13))
    reader, storage = _reader(writer)
    reader.apply(writer.proof(upgrade=UpgradeRequest(0, 8)))
    writer.truncate(5)
    writer.append(b"new")
    snap = _snapshot(storage)
    with pytest.raises(VerificationError, match="reorg"):
        reader.apply(writer.proof(block=BlockRequest(1), upgrade=UpgradeRequest(0, 6)))
    assert _snapshot(storage) == snap and reader.fork == 0
    fresh, _ = _reader(writer)
    proof = writer.proof(block=BlockRequest(5), upgrade=UpgradeRequest(0, 6))
    assert fresh.apply(proof) == Applied(True, 6, 5)
    assert (fresh.fork, fresh.tree_hash(), fresh.get(5)) == (1, writer.tree_hash(), b"new")


def _reorg(reader: Core, writer: Core, rnd: random.Random) -> Reorg:
    """What a replicator does for a newer fork: an upgrade from 0, then hash proofs until it is finished."""
    reorg = reader.reorg_from(writer.proof(upgrade=UpgradeRequest(0, writer.length)))
    while reorg.want is not None:
        index = rnd.randrange(reorg.want.start, reorg.want.end)
        assert not reader.update_reorg(reorg, writer.proof(hash=reorg.request(index))) or reorg.finished
    return reorg


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60), st.data())
def test_a_reorg_keeps_the_blocks_both_forks_share(n: int, data: st.DataObject):
    writer, wstorage = _writer()
    writer.append(_blocks(n, n))
    reader, storage = _reader(writer)
    rnd = random.Random(n)
    reader.apply(writer.proof(block=BlockRequest(0), upgrade=UpgradeRequest(0, n)))
    held = data.draw(st.sets(st.integers(0, n - 1))) | {0}
    full = data.draw(st.booleans())
    for i in range(n) if full else sorted(held):
        _fetch(reader, writer, i)
    k = data.draw(st.integers(0, n))
    m = data.draw(st.integers(0 if 0 < k < n else 1, 20))  # (JS asks no reorg of an empty fork)
    writer.truncate(k)
    writer.append([b"new fork " + bytes([i]) for i in range(m)])
    reorg = _reorg(reader, writer, rnd)
    assert reorg.fork == writer.fork and reorg.length == writer.length
    if full:  # with every node of the old fork, it finds exactly where the forks part
        assert reorg.ancestors == k
    kept = reader.apply_reorg(reorg)
    assert kept == reorg.ancestors <= k
    assert (reader.fork, reader.length, reader.tree_hash(), reader.signature) == (
        writer.fork, writer.length, writer.tree_hash(), writer.signature)
    assert storage.get_head() == wstorage.get_head()
    assert all(i < kept for i in storage._blocks)
    assert all(writer.tree.get(i) == node for i, node in storage._nodes.items())
    assert list(reader.missing(0, kept)) == [i for i in range(kept) if i not in (range(n) if full else held)]
    for i in list(reader.missing(0, writer.length)):
        _fetch(reader, writer, i)
    assert (storage._blocks, storage._pages) == (wstorage._blocks, wstorage._pages)
    assert reader.contiguous_length == writer.length and _state(Core(storage)) == _state(reader)


def test_a_reorg_refuses_what_does_not_verify_and_stores_nothing_until_applied():
    writer, _ = _writer()
    writer.append(_blocks(32, 18))
    reader, storage = _reader(writer)
    reader.apply(writer.proof(upgrade=UpgradeRequest(0, 32)))
    for i in range(32):
        _fetch(reader, writer, i)
    writer.truncate(20)
    writer.append([b"other"] * 5)
    up = writer.proof(upgrade=UpgradeRequest(0, 25))
    assert up.upgrade is not None
    snap = _snapshot(storage)
    with pytest.raises(VerificationError):
        unsigned = dataclasses.replace(up.upgrade, signature=bytes(64))
        reader.reorg_from(dataclasses.replace(up, upgrade=unsigned))
    with pytest.raises(VerificationError, match="no newer"):
        reader.reorg_from(dataclasses.replace(up, fork=0))
    with pytest.raises(VerificationError, match="length 0"):
        reader.reorg_from(writer.proof(block=BlockRequest(3), upgrade=UpgradeRequest(24, 1)))
    reorg = reader.reorg_from(up)
    assert reorg.want is not None and not reorg.finished
    with pytest.raises(ValueError, match="not finished"):
        reader.apply_reorg(reorg)
    good = writer.proof(hash=reorg.request())
    assert good.hash is not None
    bad = dataclasses.replace(good, hash=dataclasses.replace(good.hash, nodes=_damage(good, 0, 5).hash.nodes))
    with pytest.raises(VerificationError, match="asked about"):
        reader.update_reorg(reorg, bad)
    with pytest.raises(ValueError):
        reorg.request(reorg.want.end)
    assert _snapshot(storage) == snap and reader.fork == 0
    while not reader.update_reorg(reorg, writer.proof(hash=reorg.request())):
        pass
    assert reorg.ancestors == 20
    # a core that changed since the reorg began does not take it
    other, _ = _reader(writer)
    assert _snapshot(storage) == snap
    assert reader.apply_reorg(reorg) == 20 and reader.tree_hash() == writer.tree_hash()
    with pytest.raises(ValueError, match="changed"):
        reader.apply_reorg(reorg)
    assert other.length == 0


def test_a_manifest_that_is_not_the_keys_is_refused():
    writer, _ = _writer()
    writer.append(b"a")
    reader, storage = _reader(writer, with_manifest=False)
    other = default_signer_manifest(_key_pair(b"other").public_key)
    with pytest.raises(VerificationError, match="manifest"):
        reader.apply(writer.proof(upgrade=UpgradeRequest(0, 1)), manifest=other)
    with pytest.raises(VerificationError, match="manifest"):
        reader.set_manifest(other)
    assert reader.manifest is None and storage.get_auth().manifest is None
    assert writer.manifest is not None
    reader.set_manifest(writer.manifest)
    assert reader.manifest == writer.manifest == storage.get_auth().manifest


class _Replication(RuleBasedStateMachine):
    """A writer that appends and truncates, a sparse reader that follows it in any order (upgrades,
    blocks, reorgs) and is reopened from its storage now and then: whenever both are on one fork, what the
    reader holds is the writer's."""

    def __init__(self) -> None:
        super().__init__()
        self.writer, _ = _writer(b"machine")
        self.reader, self.storage = _reader(self.writer)
        self.appended = 0
        self.late: list[Proof] = []

    @rule(n=st.integers(1, 12))
    def append(self, n: int) -> None:
        self.writer.append([b"%d" % (self.appended + i) for i in range(n)])
        self.appended += n

    @rule(data=st.data())
    def truncate(self, data: st.DataObject) -> None:
        self.writer.truncate(data.draw(st.integers(0, self.writer.length)))

    @precondition(lambda self: self.writer.fork == self.reader.fork
                  and self.writer.length > self.reader.length)
    @rule(data=st.data())
    def upgrade(self, data: st.DataObject) -> None:
        w, r = self.writer, self.reader
        block = data.draw(st.none() | st.integers(r.length, w.length - 1))
        proof = w.proof(block=None if block is None else BlockRequest(block),
                        upgrade=UpgradeRequest(r.length, w.length - r.length))
        assert r.apply(proof) == Applied(True, w.length, block)

    @precondition(lambda self: self.writer.fork == self.reader.fork
                  and self.writer.length > self.reader.length)
    @rule(data=st.data())
    def ask(self, data: st.DataObject) -> None:
        """A request whose answer comes late, after other rules ran."""
        w, r = self.writer, self.reader
        block = data.draw(st.none() | st.integers(r.length, w.length - 1))
        self.late.append(w.proof(block=None if block is None else BlockRequest(block),
                                 upgrade=UpgradeRequest(r.length, w.length - r.length)))

    @precondition(lambda self: self.late)
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        proof = self.late.pop(data.draw(st.integers(0, len(self.late) - 1)))
        snap, state = _snapshot(self.storage), _state(self.reader)
        try:
            self.reader.apply(proof)
        except VerificationError:  # another fork, from past the length, or not tied to the core's roots
            assert _snapshot(self.storage) == snap and _state(self.reader) == state

    @precondition(lambda self: self.writer.fork == self.reader.fork
                  and not self.reader.has_all(0, self.reader.length))
    @rule(data=st.data())
    def fetch(self, data: st.DataObject) -> None:
        missing = list(self.reader.missing(0, self.reader.length))
        _fetch(self.reader, self.writer, data.draw(st.sampled_from(missing)))

    @precondition(lambda self: self.writer.fork > self.reader.fork and self.writer.length > 0)
    @rule(seed=st.integers(0, 99))
    def reorg(self, seed: int) -> None:
        w, r = self.writer, self.reader
        before = {i for s, e in r.ranges() for i in range(s, e)}
        kept = r.apply_reorg(_reorg(r, w, random.Random(seed)))
        assert [i for s, e in r.ranges() for i in range(s, e)] == sorted(i for i in before if i < kept)
        assert (r.fork, r.length, r.tree_hash()) == (w.fork, w.length, w.tree_hash())

    @rule()
    def reopen(self) -> None:
        again = Core(self.storage)
        assert _state(again) == _state(self.reader)
        self.reader = again

    @invariant()
    def holds_the_writers(self) -> None:
        w, r = self.writer, self.reader
        held = [i for s, e in r.ranges() for i in range(s, e)]
        assert r.contiguous_length == next(i for i in range(r.length + 1) if i not in held)
        assert sorted(self.storage._blocks) == held
        if w.fork == r.fork:
            assert r.length <= w.length and r.tree_hash() == w.tree_hash(r.length)
            assert all(self.storage._blocks[i] == w.get(i) for i in held)
            assert all(w.tree.get(i) == node for i, node in self.storage._nodes.items())


_Replication.TestCase.settings = settings(max_examples=80, stateful_step_count=40, deadline=None)
test_a_sparse_core_follows_a_writer_through_appends_truncations_and_reopens = _Replication.TestCase


# --- damaged proofs -------------------------------------------------------------------------------------

def _flip(b: bytes, at: int) -> bytes:
    at %= max(len(b), 1)
    return b[:at] + bytes([b[at] ^ 1]) + b[at + 1:] if b else b"\x01"


def _damage(proof: Proof, how: int, at: int) -> Proof:
    """Damages that always break a proof (a changed value, hash, size or signature; a wrong fork)."""
    rep = dataclasses.replace

    def bad(nodes: tuple[Node, ...]) -> tuple[Node, ...]:
        n = nodes[at % len(nodes)]
        changed = Node(n.index, n.size + 1, n.hash) if how % 2 else Node(n.index, n.size, _flip(n.hash, at))
        return tuple(changed if m is n else m for m in nodes)
    parts: list[Proof] = []
    if proof.block is not None:
        parts.append(rep(proof, block=rep(proof.block, value=_flip(proof.block.value, at))))
        if proof.block.nodes:
            parts.append(rep(proof, block=rep(proof.block, nodes=bad(proof.block.nodes))))
    if proof.hash is not None:
        parts.append(rep(proof, hash=rep(proof.hash, nodes=bad(proof.hash.nodes))))
    if proof.upgrade is not None:
        up = proof.upgrade
        # (a byte of the ed25519 signature in its multisig container: the container's patch count may
        # change without effect when the manifest allows no patches, in JS too)
        ed = decode_multisignature(up.signature).proofs[0].signature
        o = up.signature.index(ed) + at % 64
        parts.append(rep(proof, upgrade=rep(up, signature=_flip(up.signature, o))))
        parts.append(rep(proof, fork=proof.fork + 1 + at % 3))
        if up.nodes:
            parts.append(rep(proof, upgrade=rep(up, nodes=bad(up.nodes))))
        if up.additional_nodes:
            parts.append(rep(proof, upgrade=rep(up, additional_nodes=bad(up.additional_nodes))))
    return parts[how % len(parts)]


_indexes = st.integers(0, 2**16)
_nodes = st.lists(st.builds(Node, _indexes, st.integers(0, 2**20), st.binary(min_size=32, max_size=32)),
                  max_size=6)


def _mangle(proof: Proof, data: st.DataObject) -> Proof:
    """Any change hypothesis picks: nodes dropped, added, swapped or made up, indexes moved."""
    rep = dataclasses.replace

    def nodes(ns: tuple[Node, ...]) -> tuple[Node, ...]:
        choice = data.draw(st.integers(0, 3))
        lst = list(ns)
        if choice == 0 and lst:
            del lst[data.draw(st.integers(0, len(lst) - 1))]
        elif choice == 1:
            lst.insert(data.draw(st.integers(0, len(lst))), data.draw(_nodes.filter(bool))[0])
        elif choice == 2 and len(lst) >= 2:
            i = data.draw(st.integers(0, len(lst) - 2))
            lst[i], lst[i + 1] = lst[i + 1], lst[i]
        else:
            lst = data.draw(_nodes)
        return tuple(lst)
    what = data.draw(st.sampled_from(["block", "hash", "upgrade", "additional", "index", "start", "length"]))
    if what == "block" and proof.block:
        return rep(proof, block=rep(proof.block, nodes=nodes(proof.block.nodes)))
    if what == "hash":
        return rep(proof, hash=DataHash(data.draw(_indexes), nodes(proof.hash.nodes if proof.hash else ())))
    if what == "index" and proof.block:
        return rep(proof, block=rep(proof.block, index=data.draw(_indexes)))
    if proof.upgrade is not None:
        up = proof.upgrade
        if what == "upgrade":
            return rep(proof, upgrade=rep(up, nodes=nodes(up.nodes)))
        if what == "additional":
            return rep(proof, upgrade=rep(up, additional_nodes=nodes(up.additional_nodes)))
        if what == "start":
            return rep(proof, upgrade=rep(up, start=data.draw(_indexes)))
        return rep(proof, upgrade=rep(up, length=data.draw(_indexes)))
    return rep(proof, block=DataBlock(data.draw(_indexes), b"x", tuple(data.draw(_nodes))))


def _sparse_pair(n: int, have: list[int]) -> tuple[Core, Core, MemoryCoreStorage]:
    writer, _ = _writer(b"damage")
    writer.append(_blocks(n, 99))
    reader, storage = _reader(writer)
    if have:  # (the upgrade takes the reader to the writer's length when it has its nodes, or to n - 3)
        reader.apply(writer.proof(block=BlockRequest(have[0]), upgrade=UpgradeRequest(0, n - 3)))
        for i in have[1:]:
            if i < n - 3:
                _fetch(reader, writer, i)
    return writer, reader, storage


@settings(max_examples=150, deadline=None)
@given(st.integers(4, 40), st.data())
def test_damaged_proofs_are_refused_and_nothing_is_stored(n: int, data: st.DataObject):
    have = data.draw(st.lists(st.integers(0, n - 4), max_size=4, unique=True))
    writer, reader, storage = _sparse_pair(n, have)
    index = data.draw(st.integers(0, n - 1))
    upgrade = UpgradeRequest(reader.length, n - reader.length)
    request = data.draw(st.sampled_from(["block", "block+upgrade", "upgrade", "hash+upgrade"]))
    if reader.length == n or request == "block" and index < reader.length:
        proof = writer.proof(block=BlockRequest(index, reader.missing_nodes(2 * index)))
    elif request == "hash+upgrade":
        proof = writer.proof(hash=HashRequest(2 * index), upgrade=upgrade)
    elif request == "upgrade":
        proof = writer.proof(upgrade=upgrade)
    else:
        proof = writer.proof(block=BlockRequest(index), upgrade=upgrade)
    snap, state = _snapshot(storage), _state(reader)
    bad = _damage(proof, data.draw(st.integers(0, 10)), data.draw(st.integers(0, 2**16)))
    with pytest.raises(VerificationError):
        reader.apply(bad)
    assert _snapshot(storage) == snap and _state(reader) == state
    # the undamaged proof still applies
    reader.apply(proof)
    assert reader.tree_hash() == writer.tree_hash()


@settings(max_examples=300, deadline=None)
@given(st.integers(4, 40), st.data())
def test_mangled_proofs_either_verify_right_or_store_nothing(n: int, data: st.DataObject):
    have = data.draw(st.lists(st.integers(0, n - 4), max_size=3, unique=True))
    writer, reader, storage = _sparse_pair(n, have)
    index = data.draw(st.integers(0, n - 1))
    upgrade = UpgradeRequest(reader.length, n - reader.length)
    with_upgrade = reader.length < n and (data.draw(st.booleans()) or index >= reader.length)
    nodes = 0 if with_upgrade else reader.missing_nodes(2 * index)
    proof = writer.proof(block=BlockRequest(index, nodes),
                         upgrade=upgrade if with_upgrade else None)
    mangled = _mangle(proof, data)
    snap, state = _snapshot(storage), _state(reader)
    try:
        reader.apply(mangled)
    except VerificationError:
        assert _snapshot(storage) == snap and _state(reader) == state
        return
    # it verified: then everything stored is the writer's (a proof may carry less than was asked)
    for i, node in storage._nodes.items():
        assert writer.tree.get(i) == node
    for i, block in storage._blocks.items():
        assert writer.get(i) == block
    assert reader.tree_hash() == writer.tree_hash(reader.length)


# --- resuming -------------------------------------------------------------------------------------------

def test_a_core_resumes_from_its_storage():
    writer, wstorage = _writer()
    writer.append(_blocks(50, 14))
    writer.truncate(41)
    writer.append(_blocks(3, 15))
    again = Core(wstorage)
    assert _state(again) == _state(writer) and again.tree_hash() == writer.tree_hash()
    assert [again.get(i) for i in range(again.length)] == [writer.get(i) for i in range(writer.length)]
    assert again.append(b"more") == 45 and again.tree_hash(44) == writer.tree_hash()

    reader, storage = _reader(writer, with_manifest=False)
    reader.apply(writer.proof(block=BlockRequest(40), upgrade=UpgradeRequest(0, writer.length)),
                 manifest=writer.manifest)
    for i in (3, 0, 1, 2, 30, 31):
        _fetch(reader, writer, i)
    resumed = Core(storage)
    assert _state(resumed) == _state(reader)
    assert (resumed.contiguous_length, list(resumed.ranges())) == (4, [(0, 4), (30, 32), (40, 41)])
    assert resumed.manifest == writer.manifest
    _fetch(resumed, writer, 4)
    assert resumed.contiguous_length == 5 and storage.get_hints().contiguous_length == 5


def test_a_stale_contiguous_hint_is_recomputed_on_open():
    writer, storage = _writer()
    writer.append(_blocks(10, 16))
    w = storage.write()
    from hypernode.core11.storage import Hints
    w.set_hints(Hints(3))
    w.commit()
    assert Core(storage).contiguous_length == 10 and storage.get_hints().contiguous_length == 10


def test_storage_whose_roots_are_missing_or_wrong_is_refused():
    writer, storage = _writer()
    writer.append(_blocks(6, 17))
    w = storage.write()
    w.delete_tree_node_range(9, 10)  # the parent of blocks 4 and 5: a root of length 6
    w.commit()
    with pytest.raises(CorruptStorageError, match="root"):
        Core(storage)
    writer, storage = _writer()
    writer.append(_blocks(6, 17))
    head = storage.get_head()
    assert head is not None
    w = storage.write()
    w.set_head(dataclasses.replace(head, root_hash=bytes(32)))
    w.commit()
    with pytest.raises(CorruptStorageError, match="hash"):
        Core(storage)


# --- bounded memory -------------------------------------------------------------------------------------

class _CountingStorage:
    """A core's storage that counts the tree nodes and bitfield pages read from it."""

    def __init__(self, inner: MemoryCoreStorage) -> None:
        self.inner = inner
        self.node_reads = 0
        self.page_reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def get_tree_node(self, index: int) -> Node | None:
        self.node_reads += 1
        return self.inner.get_tree_node(index)

    def get_bitfield_page(self, index: int) -> bytes | None:
        self.page_reads += 1
        return self.inner.get_bitfield_page(index)


def test_a_big_core_opens_by_its_roots_and_keeps_its_cache_bounded():
    n = 200_000
    writer, storage = _writer(b"big")
    for start in range(0, n, 20_000):
        writer.append([i.to_bytes(4, "little") for i in range(start, start + 20_000)])
    assert len(storage._nodes) == 2 * n - 1 - (len(flat_tree.full_roots(2 * n)) - 1)
    counting = _CountingStorage(storage)
    core = Core(counting, node_cache=1000, page_cache=2)  # type: ignore[arg-type]
    assert counting.node_reads == len(flat_tree.full_roots(2 * n)) <= 18
    assert counting.page_reads <= 1 and core.contiguous_length == n
    assert core.tree_hash() == writer.tree_hash()
    rnd = random.Random(1)
    for _ in range(300):
        i = rnd.randrange(n)
        assert core.get(i) == i.to_bytes(4, "little")
        root = next(r for r in flat_tree.full_roots(2 * n) if flat_tree.right_span(r) >= 2 * i)
        levels = min(10, flat_tree.depth(root))
        proof = core.proof(block=BlockRequest(i, levels))
        assert proof.block is not None and len(proof.block.nodes) == levels
    assert core.tree.cached <= 1000 and core.bitfield.cached <= 2
    assert counting.node_reads < 300 * 18 + 18


# --- the bitfield ---------------------------------------------------------------------------------------

class _Pages:
    def __init__(self) -> None:
        self.pages: dict[int, bytes] = {}

    def get_bitfield_page(self, index: int) -> bytes | None:
        return self.pages.get(index)


def test_bitfield_pages_have_hypercore_11s_layout():
    """Bit i of a page is byte i // 8, mask 1 << (i % 8): JS's little-endian uint32 words as bytes."""
    source = _Pages()
    bits = Bitfield(source)
    pages = bits.changed_pages(3, 4, True)
    pages = bits.changed_pages(PAGE_BITS + 9, PAGE_BITS + 17, True, pages)
    assert sorted(pages) == [0, 1] and all(len(p) == PAGE_BYTES for p in pages.values())
    assert pages[0][:1] == b"\x08" and pages[1][1:3] == b"\xfe\x01" and pages[1].count(0) == PAGE_BYTES - 2
    assert not bits.get(3)  # not taken yet
    source.pages.update(pages)
    bits.take(pages)
    assert bits.get(3) and bits.get(PAGE_BITS + 16) and not bits.get(PAGE_BITS + 17)
    assert list(bits.runs(0, 3 * PAGE_BITS)) == [(3, 4), (PAGE_BITS + 9, PAGE_BITS + 17)]


_span = 3 * PAGE_BITS


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, _span), st.integers(0, 300), st.booleans()), max_size=12),
       st.lists(st.tuples(st.integers(0, _span), st.integers(0, _span)), max_size=8), st.integers(1, 3))
def test_bitfield_agrees_with_a_set(changes: list[tuple[int, int, bool]], queries: list[tuple[int, int]],
                                    cache: int):
    source = _Pages()
    bits = Bitfield(source, cache_pages=cache)
    held: set[int] = set()
    for start, length, value in changes:
        end = start + (length if length < 200 else PAGE_BITS + length)  # some ranges cross a page
        pages = bits.changed_pages(start, end, value)
        source.pages.update(pages)
        bits.take(pages)
        held = held | set(range(start, end)) if value else held - set(range(start, end))
        assert bits.cached <= cache
    for a, b in queries:
        lo, hi = min(a, b), max(a, b)
        assert bits.find_first(True, lo, hi) == min([i for i in held if lo <= i < hi], default=hi)
        assert bits.find_first(False, lo, hi) == next((i for i in range(lo, hi) if i not in held), hi)
        in_runs = [i for s, e in bits.runs(lo, hi) for i in range(s, e)]
        assert in_runs == sorted(i for i in held if lo <= i < hi)
    for i in list(held)[:50]:
        assert bits.get(i)
