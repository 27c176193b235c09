"""MultiDrive: the cases of multi-hyperdrive 1.1.4's test.js, ported, and the points beyond it
(versions, checkouts, tags, causal conflicts, folder/file conflicts, copy-on-truncate, watch, events,
mounts, download)."""

from __future__ import annotations

import errno
import functools

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive, PermissionDenied
from hypernode.multi import CLOCK_KEY, MultiDrive, VersionVector
from hypernode.replication.server import ReplicationServer, open_replication_server
from tests.stores import open_store


@pytest.fixture
async def store():
    async with Corestore() as s:
        yield s


async def replica_of(net_a: ReplicationServer, drive: Hyperdrive, net_b: ReplicationServer) -> Hyperdrive:
    """A read-only copy of ``drive`` in the store ``net_b`` serves, filled by replication over loopback
    TCP (from the store ``net_a`` serves)."""
    port = await net_a.listen("127.0.0.1", 0)
    copy = await Hyperdrive.open(net_b.feeds, drive.key)
    await net_b.connect("127.0.0.1", port)
    with trio.fail_after(10):
        while copy.version < drive.version:
            await copy.update()
        await copy.content_feed()
    return copy


# -- test.js, ported --------------------------------------------------------------------------------


async def test_read_from_primary_drive(store):
    drive = await Hyperdrive.open(store)
    multi = MultiDrive(drive)
    await drive.write_file("example.txt", "Hello World!")
    assert await multi.read_file("example.txt", "utf-8") == "Hello World!"
    assert await multi.readdir("/") == ["example.txt"]
    entries = await multi.readdir("/", stats=True)
    assert len(entries) == 1
    assert entries[0].name == "example.txt" and entries[0].stat.is_file() and entries[0].drive is drive


async def test_add_remove_drive_events(store):
    drive, drive2 = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(drive)
    async with multi.subscribe() as events:
        await multi.add_drive(drive2)
        assert multi.has_drive(drive2.key) and multi.drives == [drive, drive2]
        assert multi.remove_drive(drive2.key) is drive2
        assert not multi.has_drive(drive2.key.hex())
        with trio.fail_after(2):
            added, removed = await events.__anext__(), await events.__anext__()
    assert (added.type, added.drive) == ("drive-add", drive2)
    assert (removed.type, removed.drive) == ("drive-remove", drive2)
    assert multi.remove_drive(drive2.key) is None


async def test_write_to_primary_through_multi(store):
    drive = await Hyperdrive.open(store)
    multi = MultiDrive(drive)
    await multi.write_file("/example1.txt", "Hello world!")
    await multi.write_file("/example2.txt", "Hello, world?")
    # the order hyperdrive's trie lists them in (test.js expects the same order from JS)
    assert await multi.readdir("/") == ["example2.txt", "example1.txt"] == await drive.readdir("/")


async def test_read_from_multiple_non_conflicting_drives(store):
    async with open_store() as other:
        drive1, drive2 = await Hyperdrive.open(store), await Hyperdrive.open(other)
        multi = MultiDrive(drive1)
        await multi.add_drive(drive2)
        await drive1.write_file("example.txt", "Hello World!")
        await drive2.write_file("example2.txt", "Hello World!")
        assert await multi.read_file("example2.txt", "utf-8") == "Hello World!"
        assert sorted(await multi.readdir("/")) == ["example.txt", "example2.txt"]


async def test_read_from_multiple_drives_with_conflicting_files(store):
    drive1, drive2 = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(drive1)
    await multi.add_drive(drive2)
    await drive1.write_file("example.txt", "Old")
    await drive2.write_file("example.txt", "New", ctime=(await drive1.stat("example.txt")).ctime + 1000)
    assert await multi.read_file("example.txt", "utf-8") == "New"
    assert await multi.readdir("/") == ["example.txt"]
    assert (await multi.stat("example.txt")).drive is drive2


async def test_write_files_needs_a_writer(store):
    async with open_store() as other, open_replication_server(store) as store_net, \
            open_replication_server(other) as other_net:
        drive1 = await Hyperdrive.open(store)
        drive2 = await replica_of(store_net, drive1, other_net)
        multi = MultiDrive(drive2)
        assert not multi.writable and multi.writer is None
        with pytest.raises(PermissionDenied) as e:
            await multi.write_file("/example.txt", "Hello World")
        assert e.value.errno == errno.EPERM
        drive3 = await Hyperdrive.open(other)
        await multi.add_drive(drive3)
        assert multi.writer is drive3
        await multi.write_file("/example.txt", "Hello World")
        assert await drive3.read_file("/example.txt") == b"Hello World"


async def test_delete_other_peers_files_and_directories(store):
    async with open_store() as other, open_replication_server(store) as store_net, \
            open_replication_server(other) as other_net:
        drive1 = await Hyperdrive.open(store)
        await drive1.write_file("/example.txt", "Hello World")
        await drive1.mkdir("/folder")
        clone = await replica_of(store_net, drive1, other_net)
        drive2 = await Hyperdrive.open(other)
        multi = MultiDrive(clone)
        await multi.add_drive(drive2)
        assert sorted(await multi.readdir("/")) == ["example.txt", "folder"]
        await multi.unlink("/example.txt")
        await multi.rmdir("/folder")
        assert await multi.readdir("/") == []
        assert not await multi.exists("/example.txt")
        assert await multi.exists_tombstone("/example.txt") is drive2
        await multi.write_file("/example.txt", "Hello World Again")
        assert await multi.readdir("/") == ["example.txt"]
        assert await multi.read_file("/example.txt") == b"Hello World Again"
        assert await multi.exists_tombstone("/example.txt") is None


async def test_readdir_after_setting_a_tombstone(store):
    drive = await Hyperdrive.open(store)
    await drive.write_file("/example.txt", "Hello World")
    multi = MultiDrive(drive)
    await multi.set_tombstone("/example.txt", True)
    assert await multi.readdir("/") == []
    await multi.set_tombstone("/example.txt", False)
    assert await multi.readdir("/") == ["example.txt"]


async def test_combine_results_from_readdir(store):
    """test.js's skipped case: readdir merges folders of every drive, stats naming their drives."""
    d1, d2, d3 = [await Hyperdrive.open(store) for _ in range(3)]
    multi = MultiDrive(d1)
    for d in (d2, d3):
        await multi.add_drive(d)
    await d1.write_file("/docs/a.txt", "a")
    await d2.write_file("/docs/b.txt", "b")
    await d3.write_file("/docs/sub/c.txt", "c")
    await d3.write_file("/docs/a.txt", "a3", ctime=(await d1.stat("/docs/a.txt")).ctime + 10)
    entries = {e.name: e for e in await multi.readdir("/docs", stats=True)}
    assert set(entries) == {"a.txt", "b.txt", "sub"}
    assert entries["a.txt"].drive is d3 and entries["b.txt"].drive is d2
    assert entries["sub"].stat.is_directory()


# -- the API around it -------------------------------------------------------------------------------


async def test_properties_and_run_all(store):
    primary = await Hyperdrive.open(store)
    multi = MultiDrive(primary)
    assert multi.key == primary.key and multi.discovery_key == primary.discovery_key
    assert multi.primary is primary and multi.peers == [] and multi.writable
    await primary.write_file("/x", "1")
    other = await Hyperdrive.open(store)
    await multi.add_drive(other)
    results = await multi.run_all("read_file", "/x")
    assert [(r.drive, r.value) for r in results] == [(primary, b"1"), (other, None)]
    assert results[0].error is None and isinstance(results[1].error, FileNotFoundError)
    assert await multi.resolve_latest("/x") is primary
    with pytest.raises(FileNotFoundError):
        await multi.resolve_latest("/nope")


async def test_parent_folders_of_other_drives_are_created_in_the_writer(store):
    async with open_store() as other, open_replication_server(store) as store_net, \
            open_replication_server(other) as other_net:
        remote = await Hyperdrive.open(store)
        await remote.mkdir("/shared")
        await remote.write_file("/shared/deep/x.txt", "x")
        replica = await replica_of(store_net, remote, other_net)
        writer = await Hyperdrive.open(other)
        multi = MultiDrive(replica)
        await multi.add_drive(writer)
        await multi.write_file("/shared/deep/mine.txt", "mine")
        assert (await writer.stat("/shared")).is_directory()
        assert (await writer.stat("/shared/deep")).is_directory()
        assert sorted(await multi.readdir("/shared/deep")) == ["mine.txt", "x.txt"]
        await multi.mkdir("/shared/deep/newdir")
        assert (await writer.stat("/shared/deep/newdir")).is_directory()
        with pytest.raises(FileExistsError):
            await multi.mkdir("/shared/deep/newdir")


async def test_file_and_folder_conflicts_are_refused(store):
    a, b = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(b)  # b is the writer
    await multi.add_drive(a)
    await a.write_file("/dir/inner.txt", "x")
    await a.write_file("/file.txt", "y")
    with pytest.raises(IsADirectoryError):
        await multi.write_file("/dir", "not a folder")
    with pytest.raises(NotADirectoryError):
        await multi.mkdir("/file.txt")
    with pytest.raises(NotADirectoryError):
        await multi.write_file("/file.txt/below", "z")
    with pytest.raises(NotADirectoryError):
        await multi.readdir("/file.txt")
    with pytest.raises(IsADirectoryError):
        await multi.read_file("/dir")
    assert await b.readdir("/") == []  # nothing half-written


async def test_truncate_copies_another_drives_file_into_the_writer(store):
    a, w = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(w)
    await multi.add_drive(a)
    await a.write_file("/t.bin", bytes(range(200)), metadata={"color": b"red"})
    st = await multi.truncate("/t.bin", 50)
    assert st.drive is w and st.size == 50 and st.metadata["color"] == b"red"
    assert await w.read_file("/t.bin") == bytes(range(50))
    assert await multi.read_file("/t.bin") == bytes(range(50))
    await multi.truncate("/t.bin", 60)
    assert await multi.read_file("/t.bin") == bytes(range(50)) + bytes(10)
    assert await a.read_file("/t.bin") == bytes(range(200))  # the other drive is untouched
    await multi.truncate("/new.bin", 3)
    assert await multi.read_file("/new.bin") == b""  # as hyperdrive: truncate creates a missing file


async def test_causal_order_beats_wall_clocks(store):
    a, b = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi_b = MultiDrive(b)
    await multi_b.add_drive(a)
    # a writes with a clock far in the future...
    await a.write_file("/doc.txt", "from a", ctime=10**13, mtime=10**13)
    assert await multi_b.read_file("/doc.txt") == b"from a"
    # ...b, having seen a's version, writes after it: b's write is newer although its ctime is older
    st = await multi_b.write_file("/doc.txt", "from b")
    clock = VersionVector.decode((await b.stat("/doc.txt")).metadata[CLOCK_KEY])
    assert clock[a.key] == a.version and st.ctime < 10**13
    assert await multi_b.read_file("/doc.txt") == b"from b"
    # a view from a's side (a second MultiDrive over the same drives) agrees
    multi_a = MultiDrive(a)
    await multi_a.add_drive(b)
    assert await multi_a.read_file("/doc.txt") == b"from b"
    # concurrent writes (neither saw the other) fall back to the newest ctime
    await a.write_file("/c.txt", "a", ctime=2000)
    await b.write_file("/c.txt", "b", ctime=1000)
    assert await multi_b.read_file("/c.txt") == b"a"


async def test_compare_stats_is_replaceable(store):
    a, b = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(a)
    await multi.add_drive(b)
    await a.write_file("/f", "a", ctime=1)
    await b.write_file("/f", "b", ctime=2)
    assert await multi.read_file("/f") == b"b"
    multi.compare_stats = lambda s1, s2: (s1.ctime > s2.ctime) - (s1.ctime < s2.ctime)  # oldest wins
    assert await multi.read_file("/f") == b"a"


async def test_versions_checkouts_and_tags(store):
    a, b = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(a)
    await multi.add_drive(b)
    await a.write_file("/v.txt", "one")
    await b.write_file("/w.txt", "w")
    v1 = multi.version
    assert v1 == {a.key: a.version, b.key: b.version}
    await multi.create_tag("first")
    await multi.write_file("/v.txt", "two")
    await b.unlink("/w.txt")
    assert await multi.get_tagged_version("first") == v1
    assert await multi.get_all_tags() == {"first": v1}
    old = multi.checkout(await multi.get_tagged_version("first"))
    assert not old.writable
    assert await old.read_file("/v.txt") == b"one" and await old.read_file("/w.txt") == b"w"
    assert sorted(await old.readdir("/")) == ["v.txt", "w.txt"]
    with pytest.raises(PermissionDenied):
        await old.write_file("/v.txt", "x")
    assert await multi.read_file("/v.txt") == b"two" and await multi.readdir("/") == ["v.txt"]
    await multi.delete_tag("first")
    assert await multi.get_tagged_version("first") is None
    assert VersionVector.decode(v1.encode()) == v1


async def test_watch_and_update_events(store):
    a, b = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(a)
    seen = []
    async with multi.subscribe() as events, multi.watch("/docs") as changes:
        await a.write_file("/docs/1", "1")
        with trio.fail_after(5):
            seen.append(await changes.__anext__())
            event = await events.__anext__()
        assert event.type == "update" and event.drive is a
        await multi.add_drive(b)  # drives added later are watched too
        await b.write_file("/elsewhere", "x")  # not under /docs
        await b.write_file("/docs/2", "2")
        with trio.fail_after(5):
            seen.append(await changes.__anext__())
    assert [(e.drive, e.version) for e in seen] == [(a, a.version), (b, b.version)]


async def test_descriptors_remember_their_drive(store):
    a, w = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(w)
    await multi.add_drive(a)
    await a.write_file("/r.txt", "read me")
    fd = await multi.open("/r.txt")
    assert fd.drive is a
    assert await multi.read(fd, 4) == b"read" and await multi.read(fd, 10, 5) == b"me"
    await multi.close(fd)
    wfd = await multi.open("/new.txt", "w")
    assert wfd.drive is w
    await multi.write(wfd, b"written")
    await multi.close(wfd)
    assert await multi.read_file("/new.txt") == b"written"
    async with multi.create_write_stream("/s.txt") as stream:
        await stream.write(b"stream")
    assert b"".join([c async for c in multi.create_read_stream("/s.txt", start=1)]) == b"tream"


async def test_symlinks_metadata_and_access(store):
    a, w = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(w)
    await multi.add_drive(a)
    await a.write_file("/target.txt", "t")
    await multi.symlink("/target.txt", "/link")
    assert await multi.readlink("/link") == "/target.txt"
    assert (await multi.lstat("/link")).is_symlink() and (await multi.stat("/link")).is_file()
    # the link is in w, its target in a: the merged view follows it across drives
    assert await multi.read_file("/link") == b"t" and (await multi.stat("/link")).drive is a
    await a.write_file("/dir/in.txt", "in")
    await multi.symlink("/dir", "/dirlink")
    assert await multi.readdir("/dirlink") == ["in.txt"]
    assert await multi.read_file("/dirlink/in.txt") == b"in"
    await multi.access("/link")
    with pytest.raises(FileNotFoundError):
        await multi.access("/missing")
    st = await multi.set_metadata("/target.txt", "k", b"v")  # a's file: copied to the writer first
    assert st.drive is w and (await multi.stat("/target.txt")).metadata["k"] == b"v"
    await multi.remove_metadata("/target.txt", "k")
    assert "k" not in (await multi.stat("/target.txt")).metadata


async def test_mounts_merged_and_download(store):
    a = await Hyperdrive.open(store)
    inner = await Hyperdrive.open(store)
    await inner.write_file("/in.txt", "inside")
    await a.mount("/mnt", inner.key)
    await a.write_file("/big.bin", b"x" * 100_000)
    w = await Hyperdrive.open(store)
    multi = MultiDrive(w)
    await multi.add_drive(a)
    assert sorted(await multi.readdir("/")) == ["big.bin", "mnt"]
    assert await multi.readdir("/mnt") == ["in.txt"]
    assert await multi.read_file("/mnt/in.txt") == b"inside"
    mounts = await multi.get_all_mounts()
    assert set(mounts) == {"/", "/mnt"} and mounts["/mnt"].key == inner.key
    # a sparse replica downloads only what the view needs
    async with open_store() as sparse, open_replication_server(sparse, sparse=True) as sparse_net, \
            open_replication_server(store) as store_net:
        port = await store_net.listen("127.0.0.1", 0)
        ra = await Hyperdrive.open(sparse, a.key)
        await sparse_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            while ra.version < a.version:
                await ra.update()
        view = MultiDrive(ra)
        content = await ra.content_feed(timeout=10)
        assert content.downloaded() == 0
        await view.download("/", timeout=10)
        assert await view.read_file("/big.bin") == b"x" * 100_000
        assert content.downloaded() == content.length


async def test_a_drive_is_indexed_when_add_drive_returns(store):
    """The JS constructor adds drives asynchronously: a readdir right after can miss them. Not here."""
    drives = [await Hyperdrive.open(store) for _ in range(5)]
    for i, d in enumerate(drives):
        await d.write_file(f"/f{i}", str(i))
    multi = MultiDrive(drives[0])
    for d in drives[1:]:
        await multi.add_drive(d)
        assert f"f{drives.index(d)}" in await multi.readdir("/")
    assert sorted(await multi.readdir("/")) == [f"f{i}" for i in range(5)]


async def test_index_follows_changes_made_outside_the_view(store):
    a, b = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(a)
    await multi.add_drive(b)
    for i in range(50):
        await (a if i % 2 else b).write_file(f"/d/{i}.txt", str(i))
    assert len(await multi.readdir("/d")) == 50
    await a.unlink("/d/1.txt")
    await b.write_file("/d/1.txt", "b now")
    await b.unlink("/d/2.txt")
    assert len(await multi.readdir("/d")) == 49
    assert await multi.read_file("/d/1.txt") == b"b now"
    for i in [0, *range(3, 50)]:
        await (a if i % 2 else b).unlink(f"/d/{i}.txt")
    assert await multi.readdir("/d") == ["1.txt"]
    await b.unlink("/d/1.txt")
    with pytest.raises(FileNotFoundError):
        await multi.readdir("/d")


async def test_read_file_reads_what_the_drive_reads(store):
    """read_file takes the bytes of an indexed entry straight from the content feed; whatever it cannot
    (files being written, blocks not here) the drive reads, so both always agree."""
    a, w = await Hyperdrive.open(store), await Hyperdrive.open(store)
    multi = MultiDrive(w)
    await multi.add_drive(a)
    big = bytes(range(256)) * 1000  # several content blocks
    await a.write_file("/big.bin", big)
    await a.write_file("/empty", b"")
    await a.write_file("/both.txt", "a's")
    await multi.write_file("/both.txt", "w's, newer")  # in w, with a clock that has seen a's
    assert await multi.read_file("/big.bin") == big == await a.read_file("/big.bin")
    assert await multi.read_file("/empty") == b""
    assert await multi.read_file("/both.txt", "utf-8") == "w's, newer"
    fd = await a.open("/open.txt", "w")  # an entry whose size the drive knows better than its trie
    await a.write(fd, b"partly")
    assert await _outcome(multi.read_file("/open.txt")) == await _outcome(a.read_file("/open.txt"))
    await a.close(fd)
    assert await multi.read_file("/open.txt") == b"partly"
    # a sparse replica: the blocks are not here, the drive fetches them
    async with open_store() as sparse, open_replication_server(sparse, sparse=True) as sparse_net, \
            open_replication_server(store) as store_net:
        port = await store_net.listen("127.0.0.1", 0)
        ra = await Hyperdrive.open(sparse, a.key)
        await sparse_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            while ra.version < a.version:
                await ra.update()
            view = MultiDrive(ra)
            assert (await ra.content_feed()).downloaded() == 0
            assert await view.read_file("/big.bin") == big


async def _outcome(read):
    try:
        return await read
    except OSError as e:
        return type(e)


async def test_cached_listings_follow_every_change(store):
    """Listings are kept up to date in place (not made again): after each of many random changes in
    the drives and through the view, readdir answers as a new view over the same drives does."""
    import random

    rng = random.Random(5)
    drives = [await Hyperdrive.open(store) for _ in range(3)]
    multi = MultiDrive(drives[0])
    for d in drives[1:]:
        await multi.add_drive(d)
    names = [f"n{i}" for i in range(12)]
    for step in range(150):
        name = rng.choice(names)
        path = f"/d/{name}" if rng.random() < 0.8 else f"/d/sub/{name}"
        what = rng.randrange(4)
        drive = rng.choice(drives)
        if what == 0:
            await drive.write_file(path, str(step))
        elif what == 1:
            if await drive.exists(path):
                await drive.unlink(path)
        elif what == 2:
            if await multi.exists(path):
                await multi.unlink(path)  # a tombstone in the writer
        else:
            await multi.write_file(path, str(step))  # lifts a tombstone
        fresh = MultiDrive(drives[0])
        for d in drives[1:]:
            await fresh.add_drive(d)
        for folder in ("/", "/d", "/d/sub"):
            got, want = await _outcome(multi.readdir(folder)), await _outcome(fresh.readdir(folder))
            assert got == want, (step, folder)


async def test_replicate_every_drive_over_one_connection(store):
    """MultiDrive.replicate: one connection carries every drive of the view (and their content)."""
    import trio.testing

    a, b = await Hyperdrive.open(store), await Hyperdrive.open(store)
    await a.write_file("/a.txt", "from a")
    await b.write_file("/b.txt", "from b")
    multi = MultiDrive(a)
    await multi.add_drive(b)
    async with open_store() as other, open_replication_server(other) as other_net:
        ra, rb = await Hyperdrive.open(other, a.key), await Hyperdrive.open(other, b.key)
        left, right = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(multi.replicate, left, initiator=True))
            nursery.start_soon(functools.partial(other_net.replicate, right, initiator=False))
            with trio.fail_after(10):
                while ra.version < a.version or rb.version < b.version:
                    await trio.sleep(0.01)
                view = MultiDrive(ra)
                await view.add_drive(rb)
                assert sorted(await view.readdir("/")) == ["a.txt", "b.txt"]
                assert await view.read_file("/b.txt") == b"from b"
            nursery.cancel_scope.cancel()
    async with open_store() as elsewhere:
        stranger = await Hyperdrive.open(elsewhere)
        await multi.add_drive(stranger)
        with pytest.raises(OSError, match="different Corestores"):
            await multi.replicate(trio.testing.memory_stream_pair()[0], initiator=True)


async def test_rename_across_drives(store):
    """A file of another drive moves by a copy into the writer (and a tombstone hides it where it
    was); the writer's own file moves within the writer; folders move entry by entry; a renamed
    file wins over another drive's file at the destination."""
    async with open_store() as other, open_replication_server(store) as store_net, \
            open_replication_server(other) as other_net:
        theirs = await Hyperdrive.open(store)
        await theirs.write_file("/theirs.txt", "from them")
        await theirs.write_file("/dir/inner.txt", "inner")
        await theirs.write_file("/taken.txt", "their old copy")
        clone = await replica_of(store_net, theirs, other_net)
        mine = await Hyperdrive.open(other)
        multi = MultiDrive(clone)
        await multi.add_drive(mine)
        await multi.rename("/theirs.txt", "/moved.txt")
        assert await multi.read_file("/moved.txt") == b"from them"
        assert not await multi.exists("/theirs.txt") and await multi.exists_tombstone("/theirs.txt") is mine
        await multi.write_file("/mine.txt", "my file", mode=0o755)
        blocks = (await mine.stat("/mine.txt")).offset
        await multi.rename("/mine.txt", "/taken.txt")  # replaces their file in the view
        st = await multi.stat("/taken.txt")
        assert st.drive is mine and st.offset == blocks and st.mode & 0o777 == 0o755  # not copied
        assert await multi.read_file("/taken.txt") == b"my file" and not await multi.exists("/mine.txt")
        await multi.rename("/dir", "/dir2")
        assert await multi.readdir("/dir2") == ["inner.txt"] and not await multi.exists("/dir")
        assert await multi.read_file("/dir2/inner.txt") == b"inner"
        assert sorted(await multi.readdir("/")) == ["dir2", "moved.txt", "taken.txt"]
        with pytest.raises(IsADirectoryError):
            await multi.rename("/moved.txt", "/dir2")
        st = await multi.set_attributes("/moved.txt", mode=0o700, mtime=5000)
        assert (st.mode & 0o7777, st.mtime, st.drive) == (0o700, 5000, mine)
        assert (await multi.stat("/moved.txt")).mode & 0o7777 == 0o700


async def test_warm_reads_see_every_change_of_any_drive(store):
    """The view checks no drive on a warm call: each drive's feed tells it what changed. A write to any
    drive after a warm read is seen by the next read, a tombstone another drive adds hides the file,
    and a drive's writer replicating live from elsewhere is followed."""
    drives = [await Hyperdrive.open(store) for _ in range(8)]
    for i, d in enumerate(drives):
        await d.write_file(f"/f{i}.txt", f"file {i}")
    multi = MultiDrive(drives[0])
    for d in drives[1:]:
        await multi.add_drive(d)
    for _ in range(2):  # warm
        for i in range(8):
            assert await multi.read_file(f"/f{i}.txt") == f"file {i}".encode()
    for k in (3, 7, 0):
        await drives[k].write_file(f"/f{k}.txt", f"file {k}, again")  # straight into drive k
        assert await multi.read_file(f"/f{k}.txt") == f"file {k}, again".encode()
        await drives[k].write_file(f"/new{k}.txt", "new")
        assert await multi.read_file(f"/new{k}.txt") == b"new"
        assert f"new{k}.txt" in await multi.readdir("/")
    assert (await multi.stat("/f3.txt")).drive is drives[3]
    # a tombstone in drive 5 (the writer of another view over the same drives) hides /f2.txt here
    other = MultiDrive(drives[5])
    for d in drives:
        await other.add_drive(d)
    await other.unlink("/f2.txt")
    assert await multi.exists_tombstone("/f2.txt") is drives[5]
    with pytest.raises(FileNotFoundError):
        await multi.read_file("/f2.txt")
    assert "f2.txt" not in await multi.readdir("/")
    # ... and writing the path again through that view lifts it
    await other.write_file("/f2.txt", "back")
    assert await multi.read_file("/f2.txt") == b"back"
    # a replica, following its writer live: each new version is read as soon as its blocks are here
    async with open_store() as elsewhere, open_replication_server(elsewhere) as elsewhere_net, \
            open_replication_server(store) as store_net:
        origin = await Hyperdrive.open(elsewhere)
        await origin.write_file("/live.txt", "v0")
        copy = await replica_of(elsewhere_net, origin, store_net)
        await multi.add_drive(copy)
        assert await multi.read_file("/live.txt") == b"v0"
        for v in range(1, 4):
            await origin.write_file("/live.txt", f"v{v}")
            with trio.fail_after(10):
                while await multi.read_file("/live.txt") != f"v{v}".encode():
                    await trio.sleep(0.01)
        await origin.write_file("/f4.txt", "the replica's, newest")
        with trio.fail_after(10):
            while await multi.read_file("/f4.txt") != b"the replica's, newest":
                await trio.sleep(0.01)
    await other.close()
