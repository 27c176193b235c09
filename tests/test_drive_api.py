"""Hyperdrive 10's API beyond files and folders (copy, diff, stats, clear, mirror, destroy_storage),
Feed.clear, the JS-tree semantics of listings (a path that is a file and a folder), ELOOP, and one
timestamp per new entry. (Each is compared with JS in interop/test_drive_api_interop.py and
interop/test_drive_js_trees.py.)"""

from __future__ import annotations

import errno
import os

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import (
    FileNotFound,
    Hyperdrive,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    PathAlreadyExists,
    Stat,
    SymlinkLoop,
)
from hypernode.drive import stat as stat_module
from hypernode.errors import BlockNotAvailableError
from hypernode.feed import Feed
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from tests.stores import open_store


@pytest.fixture
async def store():
    async with Corestore() as s:
        yield s


@pytest.fixture
async def drive(store):
    async with await Hyperdrive.open(store) as d:
        yield d


async def put_raw(drive: Hyperdrive, path: str, st: Stat) -> None:
    """An entry as JS hyperdrive writes it, with no check of what is above or below it."""
    await drive.trie.put(path.lstrip("/"), st.encode())


# -- a path that is a file and a folder (JS drives) --------------------------------------------------


async def test_file_with_entries_under_it(drive):
    """As JS hyperdrive leaves it after writeFile('/a/x') then writeFile('/a'): every entry reachable,
    the file read as a file, the entries under it listed; Python's own writes stay strict."""
    await drive.write_file("/a/x", b"under")
    await drive.write_file("/a/y/z", b"deeper")
    st = await drive.write_file("/tmp", b"the file")
    await put_raw(drive, "/a", st)  # JS's writeFile('/a') checks nothing
    assert (await drive.stat("/a")).is_file() and await drive.read_file("/a") == b"the file"
    assert sorted(await drive.readdir("/a")) == ["x", "y"]
    assert sorted(await drive.readdir("/a", recursive=True)) == ["x", "y/z"]
    assert await drive.read_file("/a/x") == b"under" and await drive.exists("/a/y/z")
    with pytest.raises(NotADirectory):  # a file with nothing under it: ENOTDIR (JS: [])
        await drive.readdir("/tmp")
    with pytest.raises(FileNotFound):  # nothing there: ENOENT (JS: [])
        await drive.readdir("/missing")
    for call, path in ((drive.write_file, "/a/new"), (drive.write_file, "/a/y/new"), (drive.mkdir, "/a/d")):
        with pytest.raises(NotADirectory) as info:  # POSIX: nothing is written under a file
            await (call(path, b"x") if call == drive.write_file else call(path))
        assert info.value.filename == "/a"
    with pytest.raises(NotADirectory):
        await drive.rmdir("/a")
    await drive.unlink("/a")  # the file goes, what was under it stays (as in JS)
    assert sorted(await drive.readdir("/a")) == ["x", "y"] and (await drive.stat("/a")).is_directory()


async def test_symlink_with_entries_under_it(drive):
    """A symlink to a folder with entries of its own under it (JS allows writeFile('/l/own')): both
    listed, the link's target first, each name once."""
    await drive.write_file("/target/t1", b"1")
    await drive.write_file("/target/both", b"target's")
    await drive.symlink("/target", "/l")
    await put_raw(drive, "/l/own", await drive.write_file("/scratch", b"own"))
    await put_raw(drive, "/l/both", await drive.write_file("/scratch2", b"link's"))
    assert sorted(await drive.readdir("/l")) == ["both", "own", "t1"]
    assert await drive.read_file("/l/own") == b"own"
    with pytest.raises(PathAlreadyExists):  # a symlink where entries are
        await drive.symlink("/target", "/target2/../l".replace("/target2/..", ""))
    await drive.write_file("/dir/f", b"f")
    with pytest.raises(PathAlreadyExists):  # a folder made only by entries under it is something
        await drive.symlink("/target", "/dir")


async def test_recursive_listing_enters_links_only_when_asked_and_never_loops(drive):
    await drive.write_file("/d/f", b"f")
    await drive.write_file("/d/sub/g", b"g")
    await drive.symlink("/d", "/l")  # a link to a folder
    await drive.symlink("/", "/d/sub/up")  # a link back to the root: a loop for a link-follower
    await drive.symlink("/nowhere", "/dangling")
    # (a recursive listing lists entries: /d and /d/sub have none of their own)
    assert sorted(await drive.readdir("/", recursive=True)) == ["d/f", "d/sub/g", "d/sub/up", "dangling", "l"]
    followed = await drive.readdir("/", recursive=True, follow_links=True)
    assert sorted(followed) == ["d/f", "d/sub/g", "d/sub/up",  # /dangling: left out, as JS does
                                "l", "l/f", "l/sub/g", "l/sub/up"]  # /d/sub/up -> / not entered
    with trio.fail_after(5):
        assert sorted(await drive.readdir("/l", recursive=True, follow_links=True)) == \
            ["f", "sub/g", "sub/up"]


async def test_symlink_loops_are_eloop(drive):
    await drive.symlink("/b", "/a")
    await drive.symlink("/a", "/b")
    for call in (drive.stat, drive.read_file, drive.readdir, drive.stats, drive.access):
        with pytest.raises(SymlinkLoop) as info:
            await call("/a")
        assert info.value.errno == errno.ELOOP
    assert not await drive.exists("/a")
    assert sorted(await drive.readdir("/")) == ["a", "b"]
    assert sorted(await drive.readdir("/", recursive=True, follow_links=True)) == ["a", "b"]


def test_drive_modules_import_one_way():
    """errors, paths, stat <- content <- fd <- hyperdrive: no module imports one above it, not even for
    type checking (fd.py needs only the drive's public API, as a Protocol)."""
    import ast
    from pathlib import Path

    import hypernode.drive

    order = ["errors", "paths", "stat", "content", "fd", "hyperdrive"]
    folder = Path(hypernode.drive.__file__).parent
    for rank, name in enumerate(order):
        froms = [n for n in ast.walk(ast.parse((folder / f"{name}.py").read_text()))
                 if isinstance(n, ast.ImportFrom) and n.module]
        imported = {n.module for n in froms} | {f"hypernode.drive.{a.name}" for n in froms
                                                if n.module == "hypernode.drive" for a in n.names}
        above = {f"hypernode.drive.{m}" for m in order[rank + 1:]} | {"hypernode.multi"}
        assert not imported & above, (name, imported & above)


# -- one timestamp -----------------------------------------------------------------------------------


async def test_a_new_entry_has_one_timestamp(drive, monkeypatch):
    """ctime == mtime for every new entry, even when the clock moves between two readings (it moved
    1 ms between the two readings Stat made, and the interop test that checks it failed)."""
    t = [1_700_000_000.0]

    def ticking() -> float:
        t[0] += 0.001
        return t[0]

    monkeypatch.setattr(stat_module.time, "time", ticking)
    entries = [Stat(), Stat.file(), Stat.directory(), Stat.symlink(linkname="/x"),
               await drive.mkdir("/d"), await drive.symlink("/d", "/l"), await drive.write_file("/f", b"f"),
               await drive.create("/c")]
    for st in entries:
        assert st.ctime == st.mtime, st
    assert Stat(mtime=5, ctime=7).ctime == 7  # given times are kept


# -- copy ----------------------------------------------------------------------------------------------


async def test_copy(store, drive):
    st = await drive.write_file("/src.txt", b"source bytes", metadata={"k": b"v"}, mode=0o600)
    await drive.symlink("/src.txt", "/link")
    copied = await drive.copy("/src.txt", "/dst.txt")
    content = await drive.content_feed()
    length = content.length
    assert (copied.offset, copied.blocks, copied.size, copied.mtime, copied.ctime, copied.metadata,
            copied.mode) == (st.offset, st.blocks, st.size, st.mtime, st.ctime, st.metadata, st.mode)
    assert await drive.read_file("/dst.txt") == b"source bytes"
    assert (await drive.copy("/link", "/via-link.txt")).linkname is None  # the link is followed
    assert content.length == length  # nothing copied but the entries
    with pytest.raises(PathAlreadyExists):
        await drive.copy("/src.txt", "/dst.txt")
    await drive.mkdir("/folder")
    with pytest.raises(IsADirectory):
        await drive.copy("/folder", "/f2")
    with pytest.raises(IsADirectory):
        await drive.copy("/src.txt", "/folder")
    with pytest.raises(FileNotFound):
        await drive.copy("/none", "/x")

    other = await Hyperdrive.open(store)
    await drive.mount("/m", other.key)
    into = await drive.copy("/src.txt", "/m/in-mount.txt")  # another drive: the bytes are copied
    assert await other.read_file("/in-mount.txt") == b"source bytes"
    assert (into.mtime, into.metadata, into.mode) == (st.mtime, st.metadata, st.mode)
    assert await drive.copy("/m/in-mount.txt", "/back.txt") is not None
    assert await drive.read_file("/back.txt") == b"source bytes"


# -- diff ----------------------------------------------------------------------------------------------


async def test_diff(store, drive):
    await drive.write_file("/a", b"1")
    v = drive.version
    await drive.write_file("/a", b"2")
    await drive.write_file("/b/c", b"3")
    await drive.unlink("/a")
    other = await Hyperdrive.open(store)
    await drive.mount("/m", other.key)
    changes = [c async for c in drive.diff(v)]
    assert sorted((c.type, c.path) for c in changes) == [("del", "/a"), ("mount", "/m"), ("put", "/b/c")]
    mount = next(c for c in changes if c.type == "mount")
    assert mount.value.key == other.key and mount.seq is None  # as JS: no seq for a mount
    put = next(c for c in changes if c.type == "put")
    assert isinstance(put.value, Stat) and put.value.size == 1 and put.previous_seq is None
    assert [c.path async for c in drive.diff(v, "/b")] == ["/b/c"]
    assert [c.type async for c in drive.checkout(v).diff(v)] == []
    assert [c.path async for c in drive.diff(drive.checkout(v))] == [c.path for c in changes]
    with pytest.raises(InvalidArgument):
        async for _ in drive.diff(None, "/m/inside"):
            pass


# -- stats, clear, Feed.clear ----------------------------------------------------------------------------


async def test_feed_clear(tmp_path):
    """Feed.clear drops blocks (the length, tree and signatures stay): the data file is cut only where
    the cleared range reaches its end (random-access-file's del), and the bitfield says so on disk."""
    directory = tmp_path / "feed"
    async with await Feed.open(directory) as feed:
        await feed.append([bytes([i]) * 1000 for i in range(10)])
        await feed.clear(3, 5)  # in the middle: the bytes stay in the file
        assert [feed.has(i) for i in range(10)] == [True] * 3 + [False] * 2 + [True] * 5
        assert os.path.getsize(directory / "data") == 10_000
        await feed.clear(8, 10)  # at the end: the file is cut
        assert os.path.getsize(directory / "data") == 8000
        await feed.clear(9)  # already gone: nothing to do
        assert feed.length == 10 and feed.downloaded() == 6
        with pytest.raises(BlockNotAvailableError):
            await feed.get(3)
        source = feed.proof(4)  # the tree stays: proofs still work
        assert source.index == 4
    async with await Feed.open(directory) as feed:  # as stored
        assert feed.length == 10 and [feed.has(i) for i in range(10)] == \
            [True] * 3 + [False] * 2 + [True] * 3 + [False] * 2
        assert await feed.get(7) == bytes([7]) * 1000


async def test_stats_and_clear(store, drive):
    await drive.write_file("/big.bin", os.urandom(1_200_000))  # 3 blocks
    await drive.write_file("/dir/small.txt", b"small")
    await drive.mkdir("/dir/empty")
    stats = await drive.stats("/")
    assert stats["/big.bin"].blocks == 3 and stats["/big.bin"].downloaded_blocks == 3
    assert stats["/dir/small.txt"].size == 5 and stats["/dir/empty"].blocks == 0
    assert set(await drive.stats("/dir", recursive=False)) == {"/dir/small.txt", "/dir/empty"}
    assert list(await drive.stats("/big.bin")) == ["/big.bin"]
    await drive.clear("/dir")
    assert (await drive.stats("/dir/small.txt"))["/dir/small.txt"].downloaded_blocks == 0
    assert (await drive.stats("/big.bin"))["/big.bin"].downloaded_blocks == 3
    await drive.clear("/big.bin")
    assert (await drive.content_feed()).downloaded() == 0


async def test_cleared_blocks_come_back_from_a_peer():
    """A replica clears a file it downloaded and reads it again: fetched from the writer. The writer
    clears a file: the replica's peer learns it (Unhave) and no longer counts on it."""
    async with open_store() as a, open_replication_server(a) as a_net, open_store() as b, \
            open_replication_server(b, sparse=True) as b_net:
        drive = await Hyperdrive.open(a)
        data = os.urandom(1_100_000)
        await drive.write_file("/f", data)
        await drive.write_file("/g", b"g")
        port = await a_net.listen("127.0.0.1", 0)
        replica = await Hyperdrive.open(b, drive.key)
        await b_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            await replica.update(drive.version)
            assert await replica.read_file("/f") == data
            content = await replica.content_feed()
            await replica.clear("/f")
            assert content.downloaded() == 0
            assert await replica.read_file("/f") == data
            assert content.downloaded() == 3
            peers = replicator_of(content).peers
            while not peers or not peers[0].has_remote(3):
                await trio.sleep(0.01)
                peers = replicator_of(content).peers
            await drive.clear("/g")  # block 3
            while peers[0].has_remote(3):
                await trio.sleep(0.01)
            assert peers[0].has_remote(0)


# -- mirror, destroy_storage ------------------------------------------------------------------------------


async def test_mirror_follows_mounts_and_new_writes():
    async with open_store() as a, open_replication_server(a) as a_net, open_store() as b, \
            open_replication_server(b, sparse=True) as b_net:
        drive = await Hyperdrive.open(a)
        inner = await Hyperdrive.open(a)
        await inner.write_file("/in.txt", b"inside")
        await drive.write_file("/f", b"f")
        await drive.mount("/m", inner.key)
        port = await a_net.listen("127.0.0.1", 0)
        replica = await Hyperdrive.open(b, drive.key)
        await b_net.connect("127.0.0.1", port)

        def feeds_of(d: Hyperdrive) -> list[Feed]:
            return [f for f in (d.metadata, d.content) if f is not None]

        async def complete() -> bool:
            mounts = await replica.get_all_mounts()
            feeds = [f for m in mounts.values() for f in feeds_of(m)]
            return len(feeds) == 4 and all(f.length and f.downloaded() == f.length for f in feeds)

        with trio.fail_after(10):
            async with replica.mirror():
                while not await complete():
                    await trio.sleep(0.01)
                await inner.write_file("/later.txt", b"later")  # in the mounted drive
                mounted = (await replica.get_all_mounts())["/m"]
                while mounted.version < inner.version or not await complete():
                    await trio.sleep(0.01)
            for feed in feeds_of(replica) + feeds_of(mounted):
                assert not replicator_of(feed).wants.ranges  # nothing asked for any more


async def test_destroy_storage(tmp_path):
    async with open_store(tmp_path / "s") as store:
        drive = await Hyperdrive.open(store, name="d")
        await drive.write_file("/f", b"gone soon")
        fd = await drive.open("/g", "w")
        await drive.write(fd, b"never committed")
        dirs = [drive.metadata.directory, (await drive.content_feed()).directory]
        await drive.destroy_storage()
        assert drive.closed
        for d in dirs:
            assert sorted(os.listdir(d)) == ["key", "name"]
    async with open_store(tmp_path / "s") as store:
        drive = await Hyperdrive.open(store, name="d")
        assert drive.version == 1 and await drive.readdir("/") == [] and drive.writable
        with pytest.raises(InvalidArgument):
            await drive.checkout(1).destroy_storage()


async def test_rename_moves_entries_in_one_step():
    async with Corestore() as store:
        drive = await Hyperdrive.open(store)
        await drive.write_file("/a.txt", b"alpha", mode=0o755)
        before = await drive.stat("/a.txt")
        version = drive.version
        moved = await drive.rename("/a.txt", "/b.txt")
        assert drive.version == version + 2  # one batch: a put and a delete
        assert not await drive.exists("/a.txt") and await drive.read_file("/b.txt") == b"alpha"
        st = await drive.stat("/b.txt")
        assert (st.offset, st.blocks, st.size, st.mode) == (before.offset, before.blocks, 5, before.mode)
        assert moved.ctime >= before.ctime
        # replaces a file; a folder with everything under it; a folder may replace an empty folder
        await drive.write_file("/c.txt", b"gamma")
        await drive.rename("/b.txt", "/c.txt")
        assert await drive.read_file("/c.txt") == b"alpha" and not await drive.exists("/b.txt")
        await drive.write_file("/d/e/f.txt", b"deep")
        await drive.symlink("../c.txt", "/d/link")
        await drive.mkdir("/empty")
        await drive.rename("/d", "/empty")
        assert sorted(await drive.readdir("/empty", recursive=True)) == ["e/f.txt", "link"]
        assert await drive.read_file("/empty/e/f.txt") == b"deep"
        assert await drive.readlink("/empty/link") == "../c.txt"
        assert not await drive.exists("/d")
        # the errors of POSIX's rename
        await drive.write_file("/x/y.txt", b"y")
        for src, dst, err in [("/c.txt", "/x", errno.EISDIR), ("/x", "/c.txt", errno.ENOTDIR),
                              ("/empty", "/x", errno.ENOTEMPTY), ("/x", "/x/inside", errno.EINVAL),
                              ("/nothing", "/z", errno.ENOENT)]:
            with pytest.raises(OSError) as info:
                await drive.rename(src, dst)
            assert info.value.errno == err, (src, dst)
        other = await Hyperdrive.open(store)
        await drive.mount("/m", other.key)
        with pytest.raises(OSError) as info:
            await drive.rename("/c.txt", "/m/c.txt")
        assert info.value.errno == errno.EXDEV


async def test_set_attributes():
    async with Corestore() as store:
        drive = await Hyperdrive.open(store)
        await drive.write_file("/f", b"data")
        await drive.set_metadata("/f", "k", b"v")
        st = await drive.set_attributes("/f", mode=0o100755, mtime=1000)
        assert st.mode == 0o100755 and st.is_file() and st.mtime == 1000
        st = await drive.stat("/f")
        assert (st.mode, st.mtime, st.metadata, await drive.read_file("/f")) == (0o100755, 1000, {"k": b"v"},
                                                                                   b"data")
        st = await drive.set_attributes("/f", mode=0o600, uid=7, gid=8)
        assert (st.mode, st.uid, st.gid, st.mtime) == (0o100600, 7, 8, 1000)
        await drive.mkdir("/dir")
        assert (await drive.set_attributes("/dir", mode=0o700)).mode == 0o40700
        with pytest.raises(FileNotFoundError):
            await drive.set_attributes("/none", mode=0o600)
