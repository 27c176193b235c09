"""Descriptors and write streams without a lock held between calls (hypernode/drive/content.py):
descriptors used from several tasks, concurrent writers on different files, cancellation at every
stage, write_file while a descriptor is open, appends in place, bounded memory."""

from __future__ import annotations

import errno
import random
import tracemalloc
from contextlib import asynccontextmanager

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import BadFileDescriptor, Hyperdrive
from hypernode.drive.content import content_log
from tests.stores import open_store


@pytest.fixture
async def store():
    async with Corestore() as s:
        yield s


@pytest.fixture
async def drive(store):
    async with await Hyperdrive.open(store) as d:
        yield d


def data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def in_task(fn, *args):
    """Run ``fn(*args)`` in a task of its own (a new nursery) and return its result."""
    out = []

    async def run():
        out.append(await fn(*args))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run)
    return out[0]


@asynccontextmanager
async def feed_busy(drive: Hyperdrive):
    """Another task holds the content feed's append lock (as a long append does) inside the block."""
    log = content_log(await drive.content_feed())
    release = trio.Event()

    async def hold(task_status=trio.TASK_STATUS_IGNORED):
        async with log.lock:
            task_status.started()
            await release.wait()

    async with trio.open_nursery() as nursery:
        await nursery.start(hold)
        try:
            yield
        finally:
            release.set()


async def assert_contiguous(drive: Hyperdrive, path: str, expected: bytes) -> None:
    """The file reads as ``expected``, and its blocks in the content feed hold exactly those bytes."""
    assert await drive.read_file(path) == expected
    st = await drive.stat(path)
    content = await drive.content_feed()
    assert st.size == len(expected)
    raw = b"".join([await content.get(i) for i in range(st.offset, st.offset + st.blocks)])
    assert raw == expected
    assert st.byte_offset == sum([len(await content.get(i)) for i in range(st.offset)])


async def test_open_write_close_in_three_tasks(drive):
    """A descriptor opened in one task, written in a second and closed in a third (as a FUSE mount or
    an HTTP gateway does); then the drive goes on working."""
    payload = data(1, 300_000)
    fd = await in_task(drive.open, "/f", "w")
    await in_task(drive.write, fd, payload[:100_000])
    await in_task(drive.write, fd, payload[100_000:])
    await in_task(drive.close, fd)
    await assert_contiguous(drive, "/f", payload)
    await drive.write_file("/after", b"later writes work")  # nothing left locked
    assert await drive.read_file("/after") == b"later writes work"
    fd = await in_task(drive.open, "/f", "a")
    await in_task(drive.write, fd, b"+tail")
    await in_task(drive.close, fd)
    await assert_contiguous(drive, "/f", payload + b"+tail")


async def test_concurrent_descriptors_interleaved(drive):
    """Descriptors on different files written in turns from different tasks (small and large writes),
    with whole-file writes and write streams in between: every file exact and contiguous."""
    rng = random.Random(7)
    files = {f"/d{i}.bin": bytearray() for i in range(4)}
    fds = {path: await drive.open(path, "w") for path in files}
    streams = {}
    for step in range(60):
        path = rng.choice(list(fds))
        chunk = rng.randbytes(rng.choice([1, 100, 5_000, 70_000, 600_000]))
        await in_task(drive.write, fds[path], chunk)
        files[path] += chunk
        if step % 15 == 7:
            other = f"/whole{step}"
            await drive.write_file(other, chunk)
            files[other] = bytearray(chunk)
        if step == 20:
            stream = drive.create_write_stream("/stream")
            await stream.__aenter__()
            streams["/stream"] = stream
            files["/stream"] = bytearray()
        if "/stream" in streams and step % 3 == 0:
            await streams["/stream"].write(chunk)
            files["/stream"] += chunk
    order = list(fds)
    rng.shuffle(order)
    for path in order:
        await in_task(drive.close, fds[path])
    await streams["/stream"].__aexit__(None, None, None)
    for path, expected in files.items():
        await assert_contiguous(drive, path, bytes(expected))


async def test_write_file_while_a_descriptor_is_open(drive):
    """write_file does not wait for an open descriptor (it used to, until the descriptor closed)."""
    fd = await drive.open("/slow", "w")
    await drive.write(fd, data(2, 200_000))  # appended: the descriptor's run is the feed's tail
    with trio.fail_after(5):
        await drive.write_file("/quick", b"not blocked")
    assert await drive.read_file("/quick") == b"not blocked"
    await drive.write(fd, data(3, 200_000))  # now staged: another write came in between
    assert (await drive.stat("/slow")).size == 400_000  # the size so far, as hyperdrive reports
    assert await drive.read_file("/slow") == b""  # the file changes when the descriptor closes
    await drive.close(fd)
    await assert_contiguous(drive, "/slow", data(2, 200_000) + data(3, 200_000))
    await assert_contiguous(drive, "/quick", b"not blocked")


async def test_two_write_streams_interleaved_in_one_task(drive):
    """Two write streams open at once in one task (it deadlocked: the second waited for the lock
    the first held until it closed)."""
    with trio.fail_after(5):
        async with drive.create_write_stream("/s1") as s1, drive.create_write_stream("/s2") as s2:
            for i in range(5):
                await s1.write(b"one%d" % i)
                await s2.write(b"two%d" % i)
    await assert_contiguous(drive, "/s1", b"".join(b"one%d" % i for i in range(5)))
    await assert_contiguous(drive, "/s2", b"".join(b"two%d" % i for i in range(5)))


async def test_append_continues_in_place_at_the_tail(drive):
    await drive.write_file("/log", b"first line\n")
    before = await drive.stat("/log")
    fd = await drive.open("/log", "a")
    await drive.write(fd, b"x" * 70_000)
    await drive.close(fd)
    after = await drive.stat("/log")
    assert after.offset == before.offset  # the file's blocks were continued, not copied
    await assert_contiguous(drive, "/log", b"first line\n" + b"x" * 70_000)

    await drive.write_file("/other", b"in between")
    fd = await drive.open("/log", "a")
    await drive.write(fd, b"more\n")
    await drive.close(fd)
    moved = await drive.stat("/log")
    assert moved.offset > after.offset  # not at the tail any more: copied, then continued
    await assert_contiguous(drive, "/log", b"first line\n" + b"x" * 70_000 + b"more\n")


async def test_cancelled_write_adds_nothing_and_the_descriptor_goes_on(drive):
    """A write cancelled while it waits (here: for the content feed, busy with another append) adds
    none of its bytes; the descriptor and the drive go on working."""
    await drive.write_file("/f", b"old version")
    fd = await drive.open("/f", "w")
    await drive.write(fd, b"a" * 70_000)  # flushed
    async with feed_busy(drive):  # another writer is appending
        with trio.move_on_after(0.05) as scope:
            await drive.write(fd, b"b" * 70_000)  # waits for the feed, and is cancelled
        assert scope.cancelled_caught
    await drive.write(fd, b"c" * 10)
    assert (await drive.stat("/f")).size == 70_010
    await drive.close(fd)
    await assert_contiguous(drive, "/f", b"a" * 70_000 + b"c" * 10)
    await drive.write_file("/g", b"still usable")
    assert await drive.read_file("/g") == b"still usable"


async def test_cancelled_close_leaves_the_old_version(drive):
    """A close cancelled before the entry is put leaves the file as it was; the descriptor is gone;
    nothing stays locked."""
    await drive.write_file("/f", b"old version")
    fd = await drive.open("/f", "r+")  # replaces the file with what is written, at close
    await drive.write(fd, data(4, 100_000))
    await drive.write_file("/between", b"x")  # the descriptor's run is no longer the tail
    async with feed_busy(drive):
        with trio.move_on_after(0.05) as scope:
            await drive.close(fd)
        assert scope.cancelled_caught
    assert await drive.read_file("/f") == b"old version"
    with pytest.raises(BadFileDescriptor) as info:
        await drive.write(fd, b"more")
    assert info.value.errno == errno.EBADF
    await drive.write_file("/g", b"usable")
    fd = await drive.open("/f", "a")
    await drive.write(fd, b" and more")
    await drive.close(fd)
    await assert_contiguous(drive, "/f", b"old version and more")


async def test_task_cancelled_mid_write_never_closes(tmp_path):
    """The task writing a descriptor is cancelled in the middle of its writes and never closes it:
    the drive goes on, other descriptors work, and when the drive closes the abandoned descriptor
    is dropped (the file keeps its old version, also after reopening from disk)."""
    async with open_store(tmp_path / "store") as store:
        drive = await Hyperdrive.open(store, name="d")
        await drive.write_file("/f", b"old version")
        fd = await drive.open("/f", "a")

        async def writer():
            for i in range(1000):
                await drive.write(fd, data(i, 30_000))
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            for _ in range(20):
                await trio.sleep(0)
            other = await drive.open("/other", "w")
            await drive.write(other, b"meanwhile")
            await drive.close(other)
            nursery.cancel_scope.cancel()
        assert await drive.read_file("/other") == b"meanwhile"
        assert await drive.read_file("/f") == b"old version"
        await drive.write_file("/g", b"usable")
        await drive.close()
        assert await drive.read_file("/f") == b"old version"
    async with open_store(tmp_path / "store") as store:
        drive = await Hyperdrive.open(store, name="d")
        assert await drive.read_file("/f") == b"old version"
        assert await drive.read_file("/g") == b"usable"


async def test_descriptor_writes_from_many_tasks_at_once(drive):
    """Several tasks each writing their own descriptor at the same time (really concurrent: every
    write yields), then closing from the parent."""
    expected = {f"/t{i}": b"".join(data(100 * i + k, 20_000 + k) for k in range(8)) for i in range(6)}
    fds = {path: await drive.open(path, "w") for path in expected}

    async def write_all(path):
        i = int(path[2:])
        for k in range(8):
            await drive.write(fds[path], data(100 * i + k, 20_000 + k))
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        for path in expected:
            nursery.start_soon(write_all, path)
    for path in expected:
        await drive.close(fds[path])
    for path, want in expected.items():
        await assert_contiguous(drive, path, want)


async def test_staged_writes_keep_memory_bounded(tmp_path):
    """A descriptor that lost the feed's tail stages its bytes on disk: writing 32 MiB through it
    keeps well under that in memory (tracemalloc's peak), and the file is exact."""
    async with open_store(tmp_path / "store") as store:
        drive = await Hyperdrive.open(store)
        fd = await drive.open("/big", "w")
        await drive.write(fd, b"s" * 70_000)
        await drive.write_file("/between", b"x")  # from now on the descriptor stages
        chunk = data(5, 64 * 1024)
        tracemalloc.start()
        try:
            for _ in range(512):
                await drive.write(fd, chunk)
            await drive.close(fd)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 16 * 1024 * 1024, peak
        st = await drive.stat("/big")
        assert st.size == 70_000 + 512 * len(chunk)
        content = await drive.content_feed()
        assert await content.get(st.offset) == b"s" * 70_000
        assert await content.get(st.offset + st.blocks - 1) == chunk


async def test_one_descriptor_written_by_several_tasks_at_once(drive):
    """Writes on one descriptor from several tasks at the same moment take turns: every write lands
    once, whole (they raced on the descriptor's buffer and position)."""
    fd = await drive.open("/shared", "w")
    chunks = [bytes([65 + i]) * 50_000 for i in range(8)]

    async def write(chunk):
        await drive.write(fd, chunk)

    async with trio.open_nursery() as nursery:
        for chunk in chunks:
            nursery.start_soon(write, chunk)
    await drive.close(fd)
    got = await drive.read_file("/shared")
    assert len(got) == 8 * 50_000
    assert sorted(got[i:i + 50_000] for i in range(0, len(got), 50_000)) == chunks
