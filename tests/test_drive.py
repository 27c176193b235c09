"""Hyperdrive: the file API, errors with their errnos, mounts, tags, checkouts, descriptors, bad input,
and replication between two Python stores over TCP."""

from __future__ import annotations

import errno
import os

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import (
    CorruptEntry,
    DirectoryNotEmpty,
    FileNotFound,
    Hyperdrive,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    PathAlreadyExists,
    PermissionDenied,
    Stat,
)
from hypernode.drive.hyperdrive import WRITE_BLOCK_SIZE


@pytest.fixture
async def store():
    async with Corestore() as s:
        yield s


@pytest.fixture
async def drive(store):
    async with await Hyperdrive.open(store) as d:
        yield d


async def test_new_drive_header_names_content_feed(store, drive):
    header = await drive.trie.header()
    content = await drive.content_feed()
    assert header.type == "hypertrie" and header.subtype == "hyperdrive"
    assert header.metadata == content.key
    assert drive.writable and drive.version == 1 and len(drive.key) == 32
    assert drive.discovery_key == drive.metadata.discovery_key


async def test_write_and_read_files(drive):
    await drive.write_file("/hello.txt", "hello world")
    assert await drive.read_file("/hello.txt") == b"hello world"
    assert await drive.read_file("hello.txt", "utf-8") == "hello world"
    big = os.urandom(3 * WRITE_BLOCK_SIZE + 17)
    st = await drive.write_file("/dir/big.bin", big)
    assert st.size == len(big) and st.blocks == 4 and st.is_file()
    assert await drive.read_file("/dir/big.bin") == big
    # overwrite
    await drive.write_file("/hello.txt", b"second")
    assert await drive.read_file("/hello.txt") == b"second"
    # an empty file is one empty content block, as JS hyperdrive writes it
    before = (await drive.content_feed()).length
    st = await drive.write_file("/empty", b"")
    assert st.size == 0 and st.blocks == 1 and st.offset == before
    assert await drive.read_file("/empty") == b""
    assert (await drive.content_feed()).length == before + 1


async def test_read_stream_ranges(drive):
    data = bytes(range(256)) * 5000
    await drive.write_file("/f", data)
    chunks = [c async for c in drive.create_read_stream("/f")]
    assert b"".join(chunks) == data
    got = b"".join([c async for c in drive.create_read_stream("/f", start=WRITE_BLOCK_SIZE + 5, length=1000)])
    assert got == data[WRITE_BLOCK_SIZE + 5:WRITE_BLOCK_SIZE + 1005]
    got = b"".join([c async for c in drive.create_read_stream("/f", start=10, end=19)])  # end inclusive
    assert got == data[10:20]
    assert b"".join([c async for c in drive.create_read_stream("/f", start=len(data))]) == b""


async def test_write_stream(drive):
    async with drive.create_write_stream("/s.bin") as w:
        for i in range(10):
            await w.write(bytes([i]) * 1000)
    assert w.stat is not None and w.stat.size == 10_000
    assert await drive.read_file("/s.bin") == b"".join(bytes([i]) * 1000 for i in range(10))


async def test_write_stream_blocks_as_js(drive):
    # each write is its own block(s), an empty write one empty block; no write at all, no block
    content = await drive.content_feed()
    async with drive.create_write_stream("/x") as w:
        await w.write(b"")
        await w.write(b"ab")
    assert w.stat is not None and (w.stat.blocks, w.stat.size) == (2, 2)
    async with drive.create_write_stream("/y") as w:
        pass
    assert w.stat is not None and (w.stat.blocks, w.stat.size, w.stat.offset) == (0, 0, content.length)


async def test_mount_stat_bytes_as_js(drive, store):
    # JS hyperdrive writes the mount's `hypercore: false` (field 4 = 0) at the end of the Mount
    other = await Hyperdrive.open(store)
    st = await drive.mount("/m", other.key)
    assert st.encode().endswith(b"\x5a\x24\x0a\x20" + other.key + b"\x20\x00")
    assert Stat.decode(st.encode()) == st


async def test_write_stream_error_writes_no_entry(drive):
    with pytest.raises(RuntimeError):
        async with drive.create_write_stream("/broken") as w:
            await w.write(b"partial")
            raise RuntimeError("caller failed")
    assert not await drive.exists("/broken")
    await drive.write_file("/after", b"ok")  # the content lock was released
    assert await drive.read_file("/after") == b"ok"


async def test_stat_fields(drive):
    st = await drive.write_file("/a.txt", b"abc", mode=0o600, uid=7, gid=8, mtime=1234, ctime=5678,
                                metadata={"k": b"v"})
    again = await drive.stat("/a.txt")
    assert again == st
    assert (st.mode & 0o777, st.uid, st.gid, st.mtime, st.ctime, st.metadata) == \
        (0o600, 7, 8, 1234, 5678, {"k": b"v"})
    assert Stat.decode(st.encode()) == st


async def test_folders_and_readdir(drive):
    await drive.mkdir("/a")
    await drive.write_file("/a/1.txt", b"1")
    await drive.write_file("/a/b/2.txt", b"2")
    await drive.write_file("/top.txt", b"t")
    assert sorted(await drive.readdir("/")) == ["a", "top.txt"]
    assert sorted(await drive.readdir("/a")) == ["1.txt", "b"]
    assert sorted(await drive.readdir("/a", recursive=True)) == ["1.txt", "b/2.txt"]
    entries = dict(await drive.readdir("/a", stats=True))
    assert entries["1.txt"].is_file() and entries["b"].is_directory()
    assert (await drive.stat("/a")).is_directory()
    assert (await drive.stat("/a/b")).is_directory()  # a folder by having entries
    assert (await drive.stat("/")).is_directory()
    with pytest.raises(PathAlreadyExists):
        await drive.mkdir("/a")
    with pytest.raises(FileNotFound):
        await drive.readdir("/nope")
    with pytest.raises(NotADirectory):
        await drive.readdir("/top.txt")


async def test_errors_carry_errno(drive):
    await drive.write_file("/f.txt", b"x")
    await drive.mkdir("/d")
    await drive.write_file("/d/inner", b"y")
    cases = [
        (drive.read_file("/missing"), FileNotFound, errno.ENOENT),
        (drive.stat("/missing"), FileNotFound, errno.ENOENT),
        (drive.read_file("/d"), IsADirectory, errno.EISDIR),
        (drive.write_file("/d", b"z"), IsADirectory, errno.EISDIR),
        (drive.write_file("/f.txt/sub", b"z"), NotADirectory, errno.ENOTDIR),
        (drive.rmdir("/d"), DirectoryNotEmpty, errno.ENOTEMPTY),
        (drive.unlink("/missing"), FileNotFound, errno.ENOENT),
        (drive.mkdir("/f.txt"), PathAlreadyExists, errno.EEXIST),
        (drive.read_file("/../etc/passwd"), InvalidArgument, errno.EINVAL),
        (drive.write_file("/a\x00b", b""), InvalidArgument, errno.EINVAL),
    ]
    for coro, exc_type, code in cases:
        with pytest.raises(exc_type) as info:
            await coro
        assert isinstance(info.value, OSError) and info.value.errno == code, info.value
    assert await drive.read_file("/f.txt") == b"x"  # nothing else broke


async def test_unlink_and_rmdir(drive):
    await drive.write_file("/x", b"1")
    await drive.unlink("/x")
    assert not await drive.exists("/x")
    await drive.mkdir("/empty")
    await drive.rmdir("/empty")
    assert not await drive.exists("/empty")
    await drive.write_file("/d/f", b"1")
    await drive.unlink("/d/f")
    assert await drive.readdir("/") == []


async def test_symlinks(drive):
    await drive.write_file("/target.txt", b"content")
    await drive.symlink("/target.txt", "/link")
    await drive.symlink("target.txt", "/rel")
    assert (await drive.lstat("/link")).is_symlink()
    assert (await drive.stat("/link")).is_file()
    assert await drive.readlink("/link") == "/target.txt"
    assert await drive.read_file("/link") == b"content"
    assert await drive.read_file("/rel") == b"content"
    await drive.symlink("/nowhere", "/dangling")
    assert not await drive.exists("/dangling")
    with pytest.raises(PathAlreadyExists):
        await drive.symlink("/x", "/link")
    await drive.symlink("/a", "/loop-b")
    await drive.symlink("/loop-b", "/a")
    with pytest.raises(InvalidArgument):
        await drive.stat("/a")


async def test_metadata(drive):
    await drive.write_file("/m", b"1")
    await drive.set_metadata("/m", "color", b"blue")
    await drive.set_metadata("/m", "n", "3")
    assert (await drive.stat("/m")).metadata == {"color": b"blue", "n": b"3"}
    await drive.remove_metadata("/m", "color")
    assert (await drive.stat("/m")).metadata == {"n": b"3"}
    assert await drive.read_file("/m") == b"1"
    with pytest.raises(FileNotFound):
        await drive.set_metadata("/none", "a", b"b")


async def test_truncate(drive):
    await drive.write_file("/t", b"0123456789")
    await drive.truncate("/t", 4)
    assert await drive.read_file("/t") == b"0123"
    await drive.truncate("/t", 6)
    assert await drive.read_file("/t") == b"0123\x00\x00"
    await drive.truncate("/t", 0)
    assert await drive.read_file("/t") == b""
    await drive.truncate("/new", 0)
    assert (await drive.stat("/new")).size == 0


async def test_file_descriptors(drive):
    await drive.write_file("/r", b"abcdefghij" * 100_000)
    fd = await drive.open("/r", "r")
    assert await drive.read(fd, 5) == b"abcde"
    assert await drive.read(fd, 5) == b"fghij"
    assert await drive.read(fd, 3, 999_998) == b"ij"
    with pytest.raises(OSError) as info:
        await drive.write(fd, b"no")
    assert info.value.errno == errno.EBADF
    await drive.close(fd)
    with pytest.raises(OSError):
        await drive.read(fd, 1)

    fd = await drive.open("/w", "w")
    for _ in range(100):
        await drive.write(fd, b"0123456789")
    assert (await drive.stat("/w")).size == 1000  # the size in progress, as hyperdrive reports it
    await drive.close(fd)
    assert await drive.read_file("/w") == b"0123456789" * 100

    fd = await drive.open("/w", "a")
    await drive.write(fd, b"END")
    await drive.close(fd)
    assert await drive.read_file("/w") == b"0123456789" * 100 + b"END"

    with pytest.raises(PathAlreadyExists):
        await drive.open("/w", "wx")
    with pytest.raises(FileNotFound):
        await drive.open("/none", "r")
    fd = await drive.open("/w", "r+")
    await drive.ftruncate(fd, 0)
    await drive.close(fd)
    assert await drive.read_file("/w") == b""


async def test_tags_and_checkout(drive):
    await drive.write_file("/v", b"one")
    v1 = drive.version  # a tag names the version before its own hidden node (as hyperdrive's tags do)
    await drive.create_tag("first")
    assert drive.version == v1 + 1
    await drive.write_file("/v", b"two")
    await drive.write_file("/w", b"new")
    assert await drive.get_tagged_version("first") == v1
    assert await drive.get_all_tags() == {"first": v1}
    old = drive.checkout(v1)
    assert await old.read_file("/v") == b"one"
    assert not await old.exists("/w")
    assert not old.writable
    with pytest.raises(PermissionDenied):
        await old.write_file("/v", b"x")
    await drive.delete_tag("first")
    assert await drive.get_tagged_version("first") is None
    assert await drive.read_file("/v") == b"two"


async def test_mounts(store, drive):
    other = await Hyperdrive.open(store)
    await other.write_file("/inside.txt", b"inside")
    await other.mkdir("/sub")
    await other.write_file("/sub/deep", b"deep")
    st = await drive.mount("/mnt", other.key)
    assert st.mount is not None and st.mount.key == other.key and st.is_directory()
    assert await drive.read_file("/mnt/inside.txt") == b"inside"
    assert sorted(await drive.readdir("/mnt")) == ["inside.txt", "sub"]
    assert sorted(await drive.readdir("/")) == ["mnt"]
    assert await drive.read_file("/mnt/sub/deep") == b"deep"
    # writes under the mount point land in the mounted drive
    await drive.write_file("/mnt/from-parent", b"p")
    assert await other.read_file("/from-parent") == b"p"
    mounts = await drive.get_all_mounts()
    assert set(mounts) == {"/", "/mnt"} and mounts["/mnt"].key == other.key
    assert sorted(await drive.readdir("/", recursive=True)) == \
        ["mnt", "mnt/from-parent", "mnt/inside.txt", "mnt/sub", "mnt/sub/deep"]
    with pytest.raises(PathAlreadyExists):
        await drive.mount("/mnt", other.key)
    await drive.unmount("/mnt")
    assert not await drive.exists("/mnt/inside.txt")
    assert await drive.readdir("/") == []


async def test_read_only_drive_refuses_writes(store):
    async with Corestore() as other_store:
        writer = await Hyperdrive.open(other_store)
        await writer.write_file("/a", b"1")
        replica = await Hyperdrive.open(store, writer.key)
        assert not replica.writable
        for coro in (replica.write_file("/a", b"2"), replica.mkdir("/d"), replica.unlink("/a"),
                     replica.symlink("/a", "/l"), replica.create_tag("t")):
            with pytest.raises(PermissionDenied) as info:
                await coro
            assert info.value.errno == errno.EPERM


async def test_corrupt_entries_fail_only_their_call(drive):
    await drive.write_file("/good", b"fine")
    await drive.trie.put("bad-stat", b"\xff\xff\xff")
    await drive.trie.put("past-end", Stat.file(offset=10_000, blocks=3, size=30).encode())
    with pytest.raises(CorruptEntry):
        await drive.stat("/bad-stat")
    with pytest.raises(CorruptEntry):
        await drive.read_file("/past-end")
    assert await drive.read_file("/good") == b"fine"


async def test_reopen_from_disk(tmp_path):
    async with Corestore(tmp_path) as store:
        drive = await Hyperdrive.open(store)
        await drive.write_file("/persist", b"on disk")
        key = drive.key
    async with Corestore(tmp_path) as store:
        drive = await Hyperdrive.open(store, key)
        assert drive.writable
        assert await drive.read_file("/persist") == b"on disk"
        await drive.write_file("/more", b"still writable")
        assert sorted(await drive.readdir("/")) == ["more", "persist"]


async def test_replication_between_python_stores():
    async with Corestore() as a, Corestore() as b:
        src = await Hyperdrive.open(a)
        await src.write_file("/doc.txt", b"shared")
        await src.write_file("/dir/big", os.urandom(2 * WRITE_BLOCK_SIZE))
        port = await a.listen("127.0.0.1", 0)
        replica = await Hyperdrive.open(b, src.key)
        await b.connect("127.0.0.1", port)
        with trio.fail_after(20):
            await replica.update(src.version)
            await replica.download("/")
        assert await replica.read_file("/doc.txt") == b"shared"
        assert await replica.read_file("/dir/big") == await src.read_file("/dir/big")
        # live: a later write reaches the replica
        await src.write_file("/later.txt", b"live")
        with trio.fail_after(10):
            await replica.update(src.version)
        assert await replica.read_file("/later.txt") == b"live"
