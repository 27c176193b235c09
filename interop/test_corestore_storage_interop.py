"""Corestore directories are shared with JS corestore 5: layout, master key, derived (named) key pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypernode import crypto
from hypernode.corestore import Corestore
from hypernode.errors import CorruptStorageError
from hypernode.storage import VERIFIED_FILENAME

pytestmark = pytest.mark.interop


async def test_js_corestore_opens_in_python(js, tmp_path: Path):
    keys = js("corestore_tool.js", "write", str(tmp_path), "25")
    async with Corestore(tmp_path) as store:
        default = await store.default()
        assert default.key.hex() == keys["default"]
        assert default.writable and default.length == 25
        assert await default.get(7) == b"block 7"
        other = await store.get(bytes.fromhex(keys["other"]))
        assert other.writable, "a feed with a random name is writable through its stored name"
        assert await other.get(24) == b"block 24!"
        await other.append(b"python was here")
        dk = crypto.discovery_key(other.key).hex()
        assert (tmp_path / dk[:2] / dk[2:4] / dk / "name").exists()
        assert not (tmp_path / dk[:2] / dk[2:4] / dk / "secret_key").exists()
    out = js("corestore_tool.js", "read", str(tmp_path), keys["other"])
    assert out["writable"] is True and out["length"] == 26
    assert out["blocks"][-1] == "python was here"


async def test_python_corestore_opens_in_js(js, tmp_path: Path):
    async with Corestore(tmp_path) as store:
        default = await store.default()
        await default.append([b"one", b"two"])
        named = await store.get(name="photos")
        await named.append(b"cat.jpg")
        random_feed = await store.get()
        await random_feed.append(b"r")
        keys = [default.key, named.key, random_feed.key]
    dirs = [tmp_path / dk[:2] / dk[2:4] / dk for dk in (crypto.discovery_key(k).hex() for k in keys)]
    assert all((d / VERIFIED_FILENAME).exists() for d in dirs)  # our verified records: JS ignores them
    for key, blocks in zip(keys, [["one", "two"], ["cat.jpg"], ["r"]], strict=True):
        out = js("corestore_tool.js", "read", str(tmp_path), key.hex())
        assert out == {"writable": True, "length": len(blocks), "blocks": blocks}
    async with Corestore(tmp_path) as store:
        again = await store.get(keys[2])
        assert again.writable and again.length == 2 and await again.get(1) == b"js was here"
        # JS wrote the feed since our record: its blocks are hashed on reads again (a byte changed
        # behind the open feed's back is caught, where a trusted block would be read as it is)
        data = dirs[2] / "data"
        raw = bytearray(data.read_bytes())
        raw[0] ^= 1
        with open(data, "r+b") as f:
            f.write(raw[:1])
        with pytest.raises(CorruptStorageError, match="block 0"):
            await again.get(0)


async def test_memory_store(tmp_path: Path):
    async with Corestore() as store:
        feed = await store.get()
        await feed.append([b"a", b"b"])
        assert (await store.get(feed.key)) is feed
        assert await feed.get(1) == b"b"
        ro = await store.get(crypto.key_pair().public_key)
        assert not ro.writable and ro.length == 0
    assert not list(tmp_path.iterdir())
