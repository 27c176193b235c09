"""Hypertrie behaviour beyond byte compatibility (interop/test_trie_interop.py covers that): diff agrees
with a brute-force comparison of listings, also under hash collisions; conditional puts and deletes;
watch; history; checkouts are read-only."""

from __future__ import annotations

import random

import pytest
import trio

from hypernode.feed import Feed
from hypernode.trie import Hypertrie
from hypernode.trie.node import split_key


def tiny_hash(key: str) -> bytes:
    """One byte per component: collisions everywhere."""
    return b"".join(bytes([len(c) % 3]) + bytes(7) for c in split_key(key))


async def random_trie(seed: int, hash_fn=None, n: int = 120) -> Hypertrie:
    rng = random.Random(seed)
    trie = await Hypertrie.open(await Feed.open(None), hash_fn=hash_fn)
    names = ["a", "bb", "ccc", "d", "ee", "fff", "x y", "é"]
    keys = ["/".join(rng.choice(names) for _ in range(rng.randint(1, 3))) for _ in range(40)]
    for _ in range(n):
        r = rng.random()
        key, hidden = rng.choice(keys), rng.random() < 0.1
        if r < 0.6:
            await trie.put(key, rng.randbytes(4), hidden=hidden)
        elif r < 0.85:
            await trie.delete(key, hidden=hidden)
        else:
            await trie.batch([{"type": rng.choice(["put", "del"]), "key": rng.choice(keys), "value": b"b"}
                              for _ in range(rng.randint(1, 4))])
    return trie


async def listing(trie: Hypertrie, hidden: bool = False) -> dict[str, int]:
    return {n.key: n.seq for n in await trie.list("", hidden=hidden)}


@pytest.mark.parametrize("hash_fn", [None, tiny_hash], ids=["siphash", "colliding"])
async def test_diff_agrees_with_listings(hash_fn):
    for seed in range(6):
        trie = await random_trie(seed, hash_fn)
        rng = random.Random(seed)
        pairs = [(rng.randint(0, trie.version), rng.randint(0, trie.version)) for _ in range(12)]
        # against the empty trie, both ways: every entry is on one side only (as when a view indexes a
        # drive from scratch)
        pairs += [(1, trie.version), (trie.version, 1), (1, trie.version // 2)]  # (version 1: empty)
        for a, b in pairs:
            left, right = trie.checkout(a) if a else trie, trie.checkout(b)
            for hidden in (False, True):
                la, lb = await listing(left, hidden), await listing(right, hidden)
                want = {k for k in la.keys() | lb.keys() if la.get(k) != lb.get(k)}
                got = [d async for d in left.diff(right, hidden=hidden)]
                assert {d.key for d in got} == want, (seed, a, b, hidden)
                for d in got:
                    assert (d.left.seq if d.left else None) == la.get(d.key)
                    assert (d.right.seq if d.right else None) == lb.get(d.key)


async def test_conditional_put_and_delete():
    trie = await Hypertrie.open(await Feed.open(None))
    assert await trie.put("k", b"1", condition=lambda old, new: old is None) is not None
    assert await trie.put("k", b"2", condition=lambda old, new: old is None) is None
    assert (await trie.get("k")).value == b"1"

    async def async_yes(old, new):
        await trio.sleep(0)
        return old is not None and old.value == b"1"

    assert await trie.put("k", b"3", condition=async_yes) is not None
    assert await trie.delete("k", condition=lambda node: node.value == b"nope") is None
    assert (await trie.delete("k", condition=lambda node: node.value == b"3")).value == b"3"
    assert await trie.get("k") is None
    # closest: the condition sees the nearest node when the key is absent
    await trie.put("dir/file", b"f")
    seen = []
    await trie.put("dir/other", b"o", closest=True, condition=lambda old, new: seen.append(old) or True)
    assert seen[0] is not None and seen[0].key == "dir/file"


async def test_watch_history_and_checkouts():
    trie = await Hypertrie.open(await Feed.open(None))
    await trie.put("a/1", b"x")
    async with trie.watch("a") as changes:
        await trie.put("b/1", b"elsewhere")
        await trie.put("a/2", b"y")
        with trio.fail_after(2):
            assert await changes.__anext__() == trie.version
        await trie.delete("a/1")
        with trio.fail_after(2):
            assert await changes.__anext__() == trie.version
    assert [n.key for n in [n async for n in trie.history()]] == ["a/1", "b/1", "a/2", "a/2"]
    assert [n.key async for n in trie.history(reverse=True, gte=3)] == ["a/2", "a/2"]
    old = trie.checkout(2)
    assert (await old.get("a/1")).value == b"x" and await old.get("a/2") is None
    with pytest.raises(PermissionError):
        await old.put("z", b"z")
    assert old.version == 2 and trie.snapshot().version == trie.version


async def test_values_and_flags_are_checked():
    trie = await Hypertrie.open(await Feed.open(None))
    with pytest.raises(TypeError):
        await trie.put("k", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await trie.put("k", b"v", flags=-1)
    with pytest.raises(ValueError):
        await trie.batch([{"type": "rename", "key": "k"}])
    node = await trie.put("k", b"v", flags=7)
    assert node.flags == 7 and (await trie.get("k")).flags == 7
