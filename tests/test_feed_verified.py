"""The verified record: after a clean close a feed reopens with its blocks trusted (read without hashing);
a crash, or any write to its files by another program, leaves them hashed on every read again.

Whether a read hashed a block is seen from what it returns: a byte changed in the data file while the
feed is open (by another writer, behind the Feed's back) comes back as it is from a trusted block, and
raises :class:`CorruptStorageError` from one that is hashed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.corestore import Corestore
from hypernode.errors import CorruptStorageError
from hypernode.feed import Feed
from hypernode.storage import HEADER_SIZE, NODE_SIZE, VERIFIED_FILENAME, _trusted_from

WRITER = Path(__file__).parent / "tools" / "feed_writer.py"
BLOCKS = [bytes([65 + i]) * (1000 + i) for i in range(6)]
# longer than the coarsest timestamp tick of a Linux file system clock (a jiffy at HZ=100): a write
# from outside within one tick of hypernode's own last write can keep the ctime (see storage.py)
TICK = 0.02


def flip(path: Path, offset: int, *, keep_mtime: bool = False) -> None:
    """Change one byte of ``path`` in place, as another program would (same size and inode); with
    ``keep_mtime``, put its times back afterwards as ``touch -r`` or ``rsync -t`` would."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert os.stat(path).st_mtime_ns == st.st_mtime_ns and os.stat(path).st_size == st.st_size


def record(directory: Path) -> dict | None:
    path = directory / VERIFIED_FILENAME
    return json.loads(path.read_text()) if path.exists() else None


async def written(directory: Path) -> None:
    async with await Feed.open(directory) as feed:
        await feed.append(BLOCKS)
    time.sleep(TICK)


async def test_a_clean_close_leaves_the_blocks_trusted(tmp_path: Path):
    await written(tmp_path)
    assert record(tmp_path) == {"format": "hypernode-verified 1", "length": 6, "trusted_from": 0,
                                "stamps": record(tmp_path)["stamps"]}
    async with await Feed.open(tmp_path) as feed:
        assert record(tmp_path) is None  # taken when the feed opens: a crash from here on leaves none
        flip(tmp_path / "data", 10)  # block 0, behind the open feed's back
        assert (await feed.get(0))[10] != BLOCKS[0][10]  # trusted: read as it is, not hashed
        assert feed.read_range_sync(0, 2)[10] != BLOCKS[0][10]
    # the close saw the data file changed by someone else since its own last write: no record
    assert record(tmp_path) is None
    async with await Feed.open(tmp_path) as feed:
        with pytest.raises(CorruptStorageError, match="block 0 does not match"):
            await feed.get(0)
        assert await feed.get(1) == BLOCKS[1]


async def test_a_change_from_outside_while_open_is_seen_even_after_more_writes_of_ours(tmp_path: Path):
    await written(tmp_path)
    async with await Feed.open(tmp_path) as feed:
        await feed.append(b"one more")
        flip(tmp_path / "data", 10)  # block 0, behind the open feed's back
        await feed.append([b"and", b"more"])  # our next writes to the data file come after it
        await feed.append(b"again")
    assert record(tmp_path) is None
    async with await Feed.open(tmp_path) as feed:
        with pytest.raises(CorruptStorageError, match="block 0"):
            await feed.get(0)


@pytest.mark.parametrize("file", ["data", "tree"])
async def test_a_file_changed_between_opens_is_checked_even_with_its_mtime_put_back(tmp_path: Path,
                                                                                    file: str):
    await written(tmp_path)
    assert record(tmp_path) is not None
    offset = 10 + len(BLOCKS[0]) + len(BLOCKS[1]) if file == "data" else HEADER_SIZE + NODE_SIZE * 4
    flip(tmp_path / file, offset, keep_mtime=True)  # block 2 or its leaf in the tree (node 4)
    async with await Feed.open(tmp_path) as feed:
        with pytest.raises(CorruptStorageError, match="block 2 does not match"):
            await feed.get(2)
        with pytest.raises(CorruptStorageError, match="block 2 does not match"):
            feed.read_range_sync(0, 6)
        assert await feed.get(3) == BLOCKS[3]


async def test_blocks_appended_after_open_are_trusted_and_older_ones_are_not_without_a_record(
        tmp_path: Path):
    await written(tmp_path)
    (tmp_path / VERIFIED_FILENAME).write_text("not a record\n")  # garbage: ignored, and removed
    async with await Feed.open(tmp_path) as feed:
        assert record(tmp_path) is None
        await feed.append([b"g" * 100])
        flip(tmp_path / "data", 10)  # block 0, stored before open, not trusted
        flip(tmp_path / "data", sum(map(len, BLOCKS)) + 10)  # block 6, appended by this Feed
        with pytest.raises(CorruptStorageError, match="block 0"):
            await feed.get(0)
        assert await feed.get(6) != b"g" * 100  # this Feed hashed it as it wrote it


async def test_a_feed_killed_while_open_leaves_no_record_and_a_full_read_restores_trust(tmp_path: Path):
    await written(tmp_path)
    assert record(tmp_path) is not None
    proc = subprocess.Popen([sys.executable, str(WRITER), str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip().isdigit(), proc.stderr.read() if proc.stderr else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert record(tmp_path) is None

    async with await Feed.open(tmp_path) as feed:  # every block stored before the crash is hashed
        length = feed.length
        assert length > len(BLOCKS)
        flip(tmp_path / "data", 10)
        with pytest.raises(CorruptStorageError, match="block 0"):
            await feed.get(0)
        flip(tmp_path / "data", 10)  # put back (still a write from outside: no record at close)
        assert await feed.get(0) == BLOCKS[0]
    assert record(tmp_path) is None
    time.sleep(TICK)
    async with await Feed.open(tmp_path) as feed:
        assert feed.read_range_sync(0, length)[:len(BLOCKS[0])] == BLOCKS[0]  # verifies every block
    assert record(tmp_path)["trusted_from"] == 0
    async with await Feed.open(tmp_path) as feed:
        flip(tmp_path / "data", 10)
        assert (await feed.get(0))[10] != BLOCKS[0][10]  # trusted again


async def test_reading_every_block_in_any_order_restores_trust(tmp_path: Path):
    await written(tmp_path)
    (tmp_path / VERIFIED_FILENAME).unlink()  # as a crash leaves it
    async with await Feed.open(tmp_path) as feed:
        for i in (4, 5):
            assert await feed.get(i) == BLOCKS[i]
        assert feed.read_range_sync(2, 4) == b"".join(BLOCKS[2:4])
        await feed.get(0)  # not next to the run verified so far
    time.sleep(TICK)
    assert record(tmp_path)["trusted_from"] == 2  # block 1 was never read: 0 is not joined yet
    async with await Feed.open(tmp_path) as feed:
        flip(tmp_path / "data", 10)
        with pytest.raises(CorruptStorageError, match="block 0"):
            await feed.get(0)  # not trusted
        flip(tmp_path / "data", 10)
    time.sleep(TICK)
    async with await Feed.open(tmp_path) as feed:
        for i in range(6):
            assert await feed.get(i) == BLOCKS[i]
    time.sleep(TICK)
    assert record(tmp_path)["trusted_from"] == 0


async def test_sparse_replica_keeps_its_record(tmp_path: Path):
    async with await Feed.open(tmp_path / "w") as w:
        await w.append(BLOCKS)
        async with await Feed.open(tmp_path / "r", key=w.key) as r:
            for i in (4, 1):
                await r.put(i, BLOCKS[i], w.proof(i, digest=r.tree.digest(2 * i)))
    time.sleep(TICK)
    assert record(tmp_path / "r")["trusted_from"] == 0
    async with await Feed.open(tmp_path / "r", key=w.key) as r:
        assert r.has(1) and r.has(4) and not r.has(2)
        await r.clear(4)  # cut from the end of the data file: the record is still ours at close
    time.sleep(TICK)
    assert record(tmp_path / "r") is not None
    async with await Feed.open(tmp_path / "r", key=w.key) as r:
        assert not r.has(4) and await r.get(1) == BLOCKS[1]
        flip(tmp_path / "r" / "data", len(BLOCKS[0]) + 10)
        assert (await r.get(1))[10] != BLOCKS[1][10]  # trusted


async def test_no_record_without_blocks_or_in_memory(tmp_path: Path):
    async with await Feed.open(tmp_path / "empty") as feed:
        assert feed.length == 0
    assert sorted(os.listdir(tmp_path / "empty")) == ["bitfield", "key", "secret_key", "signatures", "tree"]
    async with Corestore(None) as store:
        feed = await store.get()
        await feed.append(BLOCKS)
        assert feed.directory is None
    async with Corestore(tmp_path / "store") as store:
        feed = await store.get()
        await feed.append(BLOCKS)
        directory = Path(feed.directory or "")
    await feed.destroy_storage()  # (closed already: the record goes with the blocks)
    assert not (directory / VERIFIED_FILENAME).exists()


STAMPS = {"data": (6015, 11, 1_700_000_000_000_000_001, 1_700_000_000_000_000_000),
          "tree": (552, 12, 1_700_000_000_000_000_002, 1_700_000_000_000_000_002), "bitfield": None}
RECORDED = {k: v and list(v) for k, v in STAMPS.items()}  # as JSON gives them back
_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                  max_size=5), max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()),
       record=st.fixed_dictionaries({"format": st.just("hypernode-verified 1") | st.text(max_size=4),
                                     "length": st.integers(-2, 8), "trusted_from": _json | st.integers(-2, 9),
                                     "stamps": st.just(RECORDED) | _json}))
def test_a_record_that_is_not_whole_and_matching_is_never_trusted(raw: bytes, record: dict) -> None:
    """The record is read from disk: any bytes give a trusted index only for a whole record of this
    length whose stamps are the files' (never an exception, never an index outside the feed)."""
    assert _trusted_from(raw, 6, STAMPS) in (None, *range(7))
    assert _trusted_from(b"[" * 4000, 6, STAMPS) is None  # deeper than json's recursion limit
    got = _trusted_from(json.dumps(record).encode(), 6, STAMPS)
    whole = (record["format"] == "hypernode-verified 1" and type(record["length"]) is int
             and record["length"] == 6
             and record["stamps"] == RECORDED
             and type(record["trusted_from"]) is int and 0 <= record["trusted_from"] <= 6)
    assert got == (record["trusted_from"] if whole else None)
