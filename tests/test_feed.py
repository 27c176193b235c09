"""Feed: append, get, proofs, verified put, and clear errors for tampered input and damaged files."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from hypernode import crypto
from hypernode.errors import (
    BlockNotAvailableError,
    CorruptStorageError,
    HypernodeError,
    NotWritableError,
    VerificationError,
)
from hypernode.feed import Feed, Proof
from hypernode.storage import Node


async def test_new_feed_append_get(tmp_path: Path):
    async with await Feed.open(tmp_path) as feed:
        assert feed.writable and feed.length == 0 and feed.byte_length == 0
        assert feed.discovery_key == crypto.discovery_key(feed.key)
        assert await feed.append(b"hello") == 0
        assert await feed.append([b"a", "str block", b""]) == 1
        assert await feed.append([]) == 4
        assert feed.length == 4
        assert feed.byte_length == 5 + 1 + 9
        assert [await feed.get(i) for i in range(4)] == [b"hello", b"a", b"str block", b""]
        assert feed.has(3) and not feed.has(4) and not feed.has(-1)
        with pytest.raises(BlockNotAvailableError):
            await feed.get(4)
        key = feed.key
    assert feed.closed
    async with await Feed.open(tmp_path) as again:
        assert again.key == key and again.writable and again.length == 4
        assert await again.get(2) == b"str block"
    async with await Feed.open(tmp_path, key=key) as same:
        assert same.length == 4
    with pytest.raises(HypernodeError, match="another hypercore"):
        await Feed.open(tmp_path, key=crypto.key_pair().public_key)


async def test_read_only_feed_refuses_appends(tmp_path: Path):
    key = crypto.key_pair().public_key
    async with await Feed.open(tmp_path, key=key) as feed:
        assert not feed.writable and feed.length == 0
        with pytest.raises(NotWritableError):
            await feed.append(b"x")
    assert sorted(os.listdir(tmp_path)) == ["bitfield", "key", "signatures", "tree"]


async def test_oversized_block_refused(tmp_path: Path):
    async with await Feed.open(tmp_path) as feed:
        with pytest.raises(ValueError):
            await feed.append(bytes(8 * 1024 * 1024 + 1))
        assert feed.length == 0


async def _pair(tmp_path: Path, n: int = 20) -> tuple[Feed, Feed, list[bytes]]:
    rnd = random.Random(n)
    blocks = [rnd.randbytes(rnd.randrange(1, 500)) for _ in range(n)]
    w = await Feed.open(tmp_path / "w")
    await w.append(blocks)
    r = await Feed.open(tmp_path / "r", key=w.key)
    return w, r, blocks


async def test_sparse_put_in_any_order(tmp_path: Path):
    w, r, blocks = await _pair(tmp_path, 33)
    order = list(range(33))
    random.Random(1).shuffle(order)
    for i in order:
        await r.put(i, blocks[i], w.proof(i, digest=r.tree.digest(2 * i)))
        assert r.has(i) and r.length == 33
    assert [await r.get(i) for i in range(33)] == blocks
    await w.close()
    await r.close()


async def test_live_growth_through_proofs(tmp_path: Path):
    """A reader follows a writer as it grows: each new block's proof carries the new signature."""
    w = await Feed.open(tmp_path / "w")
    r = await Feed.open(tmp_path / "r", key=w.key)
    for i in range(40):
        await w.append(b"block %d" % i)
        await r.put(i, await w.get(i), w.proof(i, digest=r.tree.digest(2 * i)))
        assert r.length == i + 1
    await r.close()
    r = await Feed.open(tmp_path / "r", key=w.key)
    assert r.length == 40 and await r.get(39) == b"block 39"
    await w.close()
    await r.close()


def _files(path: Path) -> dict[str, bytes]:
    return {name: (path / name).read_bytes() for name in os.listdir(path)}


@pytest.mark.parametrize("attack", ["flipped byte", "wrong node", "wrong signature", "no signature",
                                    "missing node", "extra node", "other feed's proof", "wrong index"])
@pytest.mark.parametrize("prefilled", [False, True])
async def test_tampered_blocks_are_refused_and_nothing_is_stored(tmp_path: Path, attack: str,
                                                                 prefilled: bool):
    """Fresh reader: the proof ends in a signature. Prefilled: it ends at nodes the reader trusts."""
    w, r, blocks = await _pair(tmp_path, 20)
    if prefilled:
        await r.put(0, blocks[0], w.proof(0))
    before = _files(tmp_path / "r")
    i = 13
    data = blocks[i]
    proof = w.proof(i, digest=r.tree.digest(2 * i))
    assert (proof.signature is None) == prefilled and len(proof.nodes) >= 1
    if prefilled and attack in ("wrong signature", "no signature", "extra node"):
        pytest.skip("the proof ends at trusted nodes: no signature, and trailing nodes go unused")
    if attack == "flipped byte":
        data = bytes([data[0] ^ 1]) + data[1:]
    elif attack == "wrong node":
        n = proof.nodes[-1]
        proof.nodes[-1] = Node(n.index, bytes(32), n.size)
    elif attack == "wrong signature" and not prefilled:
        proof.signature = bytes([proof.signature[0] ^ 1]) + proof.signature[1:]
    elif attack == "no signature" and not prefilled:
        proof.signature = None
    elif attack == "missing node":
        del proof.nodes[0]
    elif attack == "extra node":
        proof.nodes.append(Node(99, bytes(32), 5))
    elif attack == "other feed's proof":
        other = await Feed.open(tmp_path / "o")
        await other.append(blocks[::-1])
        proof = other.proof(i, digest=r.tree.digest(2 * i))
        await other.close()
    elif attack == "wrong index":
        data = blocks[i + 1]
    with pytest.raises(VerificationError):
        await r.put(i, data, proof)
    assert not r.has(i)
    assert _files(tmp_path / "r") == before
    # the honest block still goes in afterwards
    await r.put(i, blocks[i], w.proof(i, digest=r.tree.digest(2 * i)))
    assert await r.get(i) == blocks[i]
    await w.close()
    await r.close()


async def test_forged_length_with_foreign_signature_is_refused(tmp_path: Path):
    """A proof that claims a longer feed, signed by someone else, is refused."""
    w, r, blocks = await _pair(tmp_path, 8)
    mallory = crypto.key_pair()
    leaf = Node(2 * 8, crypto.data_hash(b"evil"), 4)
    roots = [w.roots()[0], leaf]
    sig = crypto.sign(crypto.signable(roots, 9), mallory.secret_key)
    with pytest.raises(VerificationError):
        await r.put(8, b"evil", Proof(8, [roots[0]], sig))
    assert r.length == 0
    await w.close()
    await r.close()


async def _written(tmp_path: Path) -> tuple[bytes, list[bytes]]:
    blocks = [bytes([i]) * (100 + i) for i in range(10)]
    async with await Feed.open(tmp_path) as feed:
        await feed.append(blocks)
        return feed.key, blocks


async def test_corrupted_data_names_the_file(tmp_path: Path):
    _, blocks = await _written(tmp_path)
    raw = bytearray((tmp_path / "data").read_bytes())
    raw[150] ^= 0xFF  # inside block 1
    (tmp_path / "data").write_bytes(raw)
    async with await Feed.open(tmp_path) as feed:
        assert await feed.get(0) == blocks[0]
        with pytest.raises(CorruptStorageError, match="data"):
            await feed.get(1)


async def test_read_range_sync(tmp_path: Path):
    blocks = [bytes([i]) * (300_000 + i) for i in range(8)]
    async with await Feed.open(tmp_path) as feed:
        await feed.append(blocks)
        assert feed.read_range_sync(2, 6) == b"".join(blocks[2:6])
        assert feed.read_range_sync(3, 3) == b""
        with pytest.raises(BlockNotAvailableError):
            feed.read_range_sync(6, 9)
    raw = bytearray((tmp_path / "data").read_bytes())
    raw[sum(map(len, blocks[:5])) + 7] ^= 1  # inside block 5
    (tmp_path / "data").write_bytes(raw)
    async with await Feed.open(tmp_path) as feed:  # stored before open: every block is checked
        assert feed.read_range_sync(0, 5) == b"".join(blocks[:5])
        with pytest.raises(CorruptStorageError, match="block 5"):
            feed.read_range_sync(1, 8)
    async with await Feed.open(tmp_path / "r", key=feed.key) as replica:
        with pytest.raises(BlockNotAvailableError):
            replica.read_range_sync(0, 1)


async def test_truncated_data_names_the_file(tmp_path: Path):
    await _written(tmp_path)
    os.truncate(tmp_path / "data", 500)
    async with await Feed.open(tmp_path) as feed:
        with pytest.raises(CorruptStorageError, match="data.*truncated"):
            await feed.get(9)
        with pytest.raises(OSError) as e:  # callers that catch OSError for EIO catch it too
            await feed.get(9)
        assert e.value.errno == errno.EIO and e.value.filename == str(tmp_path / "data")


async def test_corrupted_tree_root_is_caught_on_open(tmp_path: Path):
    await _written(tmp_path)
    raw = bytearray((tmp_path / "tree").read_bytes())
    raw[32 + 40 * 7 + 3] ^= 1  # node 7 is the root of the first 8 blocks
    (tmp_path / "tree").write_bytes(raw)
    with pytest.raises(CorruptStorageError, match="signatures|tree"):
        await Feed.open(tmp_path)


async def test_truncated_tree_names_the_file(tmp_path: Path):
    await _written(tmp_path)
    os.truncate(tmp_path / "tree", 32 + 40 * 5)
    with pytest.raises(CorruptStorageError, match="tree"):
        await Feed.open(tmp_path)


async def test_corrupted_signature_names_the_file(tmp_path: Path):
    await _written(tmp_path)
    raw = bytearray((tmp_path / "signatures").read_bytes())
    raw[32 + 64 * 9 + 10] ^= 1
    (tmp_path / "signatures").write_bytes(raw)
    with pytest.raises(CorruptStorageError, match="signatures"):
        await Feed.open(tmp_path)


async def test_bad_headers_and_keys_name_the_file(tmp_path: Path):
    await _written(tmp_path)
    (tmp_path / "key").write_bytes(b"short")
    with pytest.raises(CorruptStorageError, match="key"):
        await Feed.open(tmp_path)
    await _written(tmp_path / "b")
    (tmp_path / "b" / "bitfield").write_bytes(b"garbage" * 10)
    with pytest.raises(CorruptStorageError, match="bitfield"):
        await Feed.open(tmp_path / "b")
    await _written(tmp_path / "c")
    raw = bytearray((tmp_path / "c" / "secret_key").read_bytes())
    raw[3] ^= 1
    (tmp_path / "c" / "secret_key").write_bytes(raw)
    with pytest.raises(CorruptStorageError, match="secret_key"):
        await Feed.open(tmp_path / "c")


async def test_corrupted_leaf_hash_is_caught_on_get(tmp_path: Path):
    await _written(tmp_path)
    raw = bytearray((tmp_path / "tree").read_bytes())
    raw[32 + 40 * 4 + 3] ^= 1  # leaf of block 2
    (tmp_path / "tree").write_bytes(raw)
    async with await Feed.open(tmp_path) as feed:
        with pytest.raises(CorruptStorageError):
            await feed.get(2)
        assert await feed.get(3)


async def test_unused_proof_nodes_are_not_stored(tmp_path: Path):
    w, r, blocks = await _pair(tmp_path, 20)
    await r.put(0, blocks[0], w.proof(0))
    proof = w.proof(13, digest=r.tree.digest(26))
    junk = Node(99, bytes(range(32)), 5)
    proof.nodes.append(junk)
    await r.put(13, blocks[13], proof)
    assert not r.tree.get(99)
    tree = (tmp_path / "r" / "tree").read_bytes()
    assert bytes(range(32)) not in tree
    await w.close()
    await r.close()


async def test_a_change_made_before_waiting_is_not_missed(tmp_path):
    """``wait_for_change(since)`` returns at once when the feed changed after ``since`` was read (a
    waiter that looks at the feed, awaits something else, then waits, would otherwise sleep through
    a block that arrived meanwhile: Hyperdrive.mirror did, about one run in six)."""
    import trio

    feed = await Feed.open(tmp_path)
    since = feed.changes
    await feed.append(b"appended before the wait")
    with trio.fail_after(1):
        await feed.wait_for_change(since)
    since = feed.changes
    with trio.move_on_after(0.05) as scope:  # nothing since: it waits
        await feed.wait_for_change(since)
    assert scope.cancelled_caught
    await feed.close()
