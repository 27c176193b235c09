"""Feed storage interop with JS hypercore 9.12.0 on random-access-file, both directions.

Node runs in a subprocess (interop/js/feed_tool.js) on the same directories Python reads and writes.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from hypernode import crypto
from hypernode.feed import Feed

pytestmark = pytest.mark.interop
FILES = ("key", "secret_key", "data", "tree", "signatures", "bitfield")


def _batches(seed: int, count: int) -> list[list[bytes]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        out.append([rnd.randbytes(rnd.choice([0, 1, 7, 100, 1024, 5000]))
                    for _ in range(rnd.choice([1, 1, 2, 3, 17]))])
    return out


def test_crypto_vectors_still_match_js(js, vectors):
    assert js("feed_tool.js", "kat") == vectors("hypercore_crypto.json")


@pytest.mark.parametrize("count", [1, 5, 60, 700, -20])
async def test_same_appends_give_identical_files(js, tmp_path: Path, count: int):
    """Python and JS, given the same key pair and appends, write byte-identical feed directories.

    (count -20: twenty batches of 1,000 tiny blocks, crossing bitfield pages at 8,192 blocks.)
    """
    seed = bytes(range(32))
    if count > 0:
        batches = _batches(count, count)
    else:
        batches = [[bytes([i % 251, k % 7]) for k in range(1000)] for i in range(-count)]
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"seed": seed.hex(), "batches": [[b.hex() for b in bt] for bt in batches]}))
    js("feed_tool.js", "write", str(tmp_path / "js"), str(spec))

    pair = crypto.key_pair(seed)
    async with await Feed.open(tmp_path / "py", key=pair.public_key, secret_key=pair.secret_key) as feed:
        for bt in batches:
            await feed.append(bt)
    for name in FILES:
        a = (tmp_path / "js" / name).read_bytes()
        b = (tmp_path / "py" / name).read_bytes()
        assert a == b, f"{name} differs: js {len(a)} bytes, python {len(b)} bytes"


async def test_js_feed_opens_in_python(js, tmp_path: Path):
    batches = _batches(7, 40)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"batches": [[b.hex() for b in bt] for bt in batches]}))
    info = js("feed_tool.js", "write", str(tmp_path / "f"), str(spec))
    blocks = [b for bt in batches for b in bt]
    async with await Feed.open(tmp_path / "f") as feed:
        assert feed.key.hex() == info["key"]
        assert feed.writable
        assert feed.length == len(blocks) == info["length"]
        assert feed.byte_length == info["byteLength"]
        for i, b in enumerate(blocks):
            assert await feed.get(i) == b
        # keep appending to the JS-made feed, then JS reads all of it
        await feed.append([b"more", b"and more"])
        blocks += [b"more", b"and more"]
        key = feed.key
        for i in range(feed.length):
            p = feed.proof(i)
            assert crypto.verify(crypto.signable(feed.roots(), feed.length), feed.signature(), key)
            assert p.signature is not None
    out = js("feed_tool.js", "read", str(tmp_path / "f"), key.hex())
    assert out["length"] == len(blocks)
    assert out["blocks"] == [b.hex() for b in blocks]


async def test_python_feed_opens_in_js(js, tmp_path: Path):
    rnd = random.Random(3)
    blocks = [rnd.randbytes(rnd.randrange(0, 3000)) for _ in range(300)]
    async with await Feed.open(tmp_path / "f") as feed:
        await feed.append(blocks[:100])
        for b in blocks[100:]:
            await feed.append(b)
        key = feed.key
    out = js("feed_tool.js", "read", str(tmp_path / "f"), key.hex())
    assert out["writable"] is True
    assert out["length"] == 300
    assert out["byteLength"] == sum(map(len, blocks))
    assert out["blocks"] == [b.hex() for b in blocks]


async def test_python_sparse_feed_opens_in_js(js, tmp_path: Path):
    rnd = random.Random(4)
    blocks = [rnd.randbytes(rnd.randrange(1, 2000)) for _ in range(50)]
    async with await Feed.open(tmp_path / "w") as writer:
        await writer.append(blocks)
        key = writer.key
        async with await Feed.open(tmp_path / "r", key=key) as reader:
            assert not reader.writable
            for i in (37, 3, 49, 20, 21):
                await reader.put(i, blocks[i], writer.proof(i, digest=reader.tree.digest(2 * i)))
            assert reader.length == 50
    out = js("feed_tool.js", "read", str(tmp_path / "r"), key.hex())
    assert out["writable"] is False
    assert out["length"] == 50
    expected = [blocks[i].hex() if i in (3, 20, 21, 37, 49) else None for i in range(50)]
    assert out["blocks"] == expected


async def test_js_sparse_feed_opens_in_python(js, tmp_path: Path):
    rnd = random.Random(5)
    blocks = [rnd.randbytes(rnd.randrange(1, 2000)) for _ in range(64)]
    async with await Feed.open(tmp_path / "w") as writer:
        await writer.append(blocks)
        key = writer.key
    out = js("feed_tool.js", "sparse", str(tmp_path / "w"), str(tmp_path / "r"), key.hex(), "9,40,63,0")
    assert sorted(out["have"]) == [0, 9, 40, 63]
    async with await Feed.open(tmp_path / "r", key=key) as reader:
        assert not reader.writable
        assert reader.length == 64
        for i in range(64):
            assert reader.has(i) == (i in (0, 9, 40, 63))
        for i in (0, 9, 40, 63):
            assert await reader.get(i) == blocks[i]
        # and the sparse JS feed keeps filling from Python proofs
        async with await Feed.open(tmp_path / "w") as writer:
            for i in (10, 11, 62):
                await reader.put(i, blocks[i], writer.proof(i, digest=reader.tree.digest(2 * i)))
        assert [i for i in range(64) if reader.has(i)] == [0, 9, 10, 11, 40, 62, 63]
    assert os.path.exists(tmp_path / "r" / "bitfield")
