"""Hyperdrive: the file API, errors with their errnos, mounts, tags, checkouts, descriptors, bad input,
and replication between two Python stores over TCP."""

from __future__ import annotations

import errno
import os

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypernode.corestore import Corestore
from hypernode.drive import (
    ContentNotAvailable,
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
    SymlinkLoop,
)
from hypernode.drive.hyperdrive import WRITE_BLOCK_SIZE
from hypernode.drive.stat import Mount
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from hypernode.trie import CorruptTrieError, TrieNode
from hypernode.trie.node import NodeMessage as TrieNodeMessage
from hypernode.varint import encode_varint
from tests.stores import open_store


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
    for call in (drive.stat, drive.read_file, drive.readdir):  # ELOOP, as the OS says for a loop
        with pytest.raises(SymlinkLoop) as info:
            await call("/a")
        assert info.value.errno == errno.ELOOP and isinstance(info.value, OSError)
    assert not await drive.exists("/a")
    assert (await drive.lstat("/a")).linkname == "/loop-b"  # the link itself is there
    await drive.symlink("/self", "/self")
    with pytest.raises(SymlinkLoop):
        await drive.stat("/self")


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
    st = await drive.create("/created")  # an empty entry, at offset 0 as JS's create() writes it
    assert (st.size, st.blocks, st.offset, st.byte_offset) == (0, 0, 0, 0)
    assert await drive.read_file("/created") == b""
    assert await drive.create("/created") == st  # an existing entry is returned as it is


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
    async with open_store() as other_store:
        writer = await Hyperdrive.open(other_store)
        await writer.write_file("/a", b"1")
        replica = await Hyperdrive.open(store, writer.key)
        assert not replica.writable
        for coro in (replica.write_file("/a", b"2"), replica.mkdir("/d"), replica.unlink("/a"),
                     replica.symlink("/a", "/l"), replica.create_tag("t")):
            with pytest.raises(PermissionDenied) as info:
                await coro
            assert info.value.errno == errno.EPERM


async def copy_with_block(store, drive, seq, block):
    """A drive whose metadata feed holds ``drive``'s blocks but ``block`` at ``seq``: raw appends to a
    real writable feed (the content feed is shared, found from the copied header)."""
    feed = await store.get()
    for i in range(drive.metadata.length):
        await feed.append(block if i == seq else await drive.metadata.get(i))
    return await Hyperdrive.open(store, feed.key)


async def test_undecodable_trie_node_fails_only_the_calls_that_meet_it(store, drive):
    for path in ("/docs/a.txt", "/docs/b.txt", "/bad.txt", "/good.txt"):
        await drive.write_file(path, path.encode())
    seq = (await drive.trie.get("bad.txt")).seq
    damaged = await copy_with_block(store, drive, seq, b"\xff\xfe not a trie node")
    for call in (damaged.stat("/bad.txt"), damaged.read_file("/bad.txt"), damaged.readdir("/"),
                 damaged.write_file("/bad.txt", b"x"), damaged.exists("/bad.txt")):
        with pytest.raises(CorruptEntry) as info:
            await call
        assert info.value.errno == errno.EIO and isinstance(info.value.__cause__, CorruptTrieError)
    with pytest.raises(CorruptEntry):
        [c async for c in damaged.create_read_stream("/bad.txt")]
    with pytest.raises(CorruptEntry):
        async with damaged.create_write_stream("/bad.txt") as w:
            await w.write(b"x")
    # paths whose lookups do not pass through the damaged node still work, reading and writing
    for path in ("/good.txt", "/docs/a.txt", "/docs/b.txt"):
        assert await damaged.read_file(path) == path.encode()
    assert sorted(await damaged.readdir("/docs")) == ["a.txt", "b.txt"]
    await damaged.write_file("/docs/c.txt", b"new")
    await damaged.write_file("/new.txt", b"new")
    assert await damaged.read_file("/docs/c.txt") == await damaged.read_file("/new.txt") == b"new"
    with pytest.raises(CorruptEntry):  # and the damaged one still fails, the same way
        await damaged.stat("/bad.txt")


async def test_undecodable_header_is_eio(store, drive):
    await drive.write_file("/f", b"1")
    with pytest.raises(CorruptEntry) as info:
        await copy_with_block(store, drive, 0, b"\x0a\x05hyper\x12")
    assert info.value.errno == errno.EIO


async def test_undecodable_stats_fail_only_their_entry(drive):
    await drive.write_file("/dir/good", b"fine")
    await drive.trie.put("dir/bad-stat", b"\xff\xff\xff")  # a valid trie node, its value no Stat
    await drive.trie.put("dir/no-mode", Stat.file().encode()[2:])  # the required mode missing
    bad_mount = Stat.directory(mount=Mount(b"short key")).encode()
    await drive.trie.put("dir/bad-mount", bad_mount)
    for path in ("/dir/bad-stat", "/dir/no-mode", "/dir/bad-mount"):
        for call in (drive.stat(path), drive.read_file(path), drive.set_metadata(path, "k", b"v"),
                     drive.write_file(path, b"over")):
            with pytest.raises(CorruptEntry) as info:
                await call
            assert info.value.errno == errno.EIO and info.value.filename == path
    # the names are listed; their Stats are not made up
    assert sorted(await drive.readdir("/dir")) == ["bad-mount", "bad-stat", "good", "no-mode"]
    with pytest.raises(CorruptEntry):
        await drive.readdir("/dir", stats=True)
    assert await drive.read_file("/dir/good") == b"fine"
    assert (await drive.stat("/dir")).is_directory()
    await drive.unlink("/dir/bad-stat")  # a damaged entry can be removed, then written anew
    await drive.write_file("/dir/bad-stat", b"replaced")
    assert await drive.read_file("/dir/bad-stat") == b"replaced"


async def test_keys_no_path_can_name(drive):
    """Keys a peer could write (JS hyperdrive stores ``..`` as given): they are never listed, and
    asking for such a path is EINVAL; the rest of the drive is unaffected."""
    await drive.write_file("/ok.txt", b"ok")
    st = (await drive.write_file("/payload", b"evil")).encode()
    for key in ("evil/../../etc/passwd", "nul\x00name", "dot/./x", "back\\slash", "twice//slash"):
        await drive.trie.put(key, st)
    assert sorted(await drive.readdir("/")) == ["dot", "evil", "ok.txt", "payload", "twice"]
    assert await drive.readdir("/evil") == [] and await drive.readdir("/dot") == []
    assert await drive.readdir("/twice") == []
    assert sorted(await drive.readdir("/", recursive=True)) == ["ok.txt", "payload"]
    for path in ("/evil/../../etc/passwd", "/nul\x00name", "/evil/.."):
        with pytest.raises(InvalidArgument) as info:
            await drive.read_file(path)
        assert info.value.errno == errno.EINVAL
    assert await drive.read_file("/ok.txt") == b"ok"


async def test_content_pointers_past_the_content_feed(drive):
    await drive.write_file("/good", b"fine")
    content = await drive.content_feed()
    await drive.trie.put("past-end", Stat.file(offset=10_000, blocks=3, size=30).encode())
    await drive.trie.put("overlong", Stat.file(offset=content.length - 1, blocks=2, size=8).encode())
    await drive.trie.put("too-big", Stat.file(offset=content.length - 1, blocks=1, size=5000).encode())
    for path in ("/past-end", "/overlong", "/too-big"):
        with pytest.raises(CorruptEntry) as info:
            await drive.read_file(path)
        assert info.value.errno == errno.EIO
        fd = await drive.open(path, "r")
        with pytest.raises(CorruptEntry):
            await drive.read(fd, 100)
        await drive.close(fd)
    assert (await drive.stat("/past-end")).size == 30  # stat itself is fine: the pointer is not read
    assert await drive.read_file("/good") == b"fine"
    await drive.write_file("/after", b"still writable")
    assert await drive.read_file("/after") == b"still writable"


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    head = encode_varint(number << 3 | wire)
    if wire == 0:
        return head + encode_varint(payload)  # type: ignore[arg-type]
    if wire == 2:
        return head + encode_varint(len(payload)) + payload  # type: ignore[arg-type]
    return head + payload  # type: ignore[operator]


# protobuf-shaped bytes: fields of every number and wire type the schemas use, nested messages
_varints = st.one_of(st.integers(0, 300), st.sampled_from([2**31, 2**32, 2**53, 2**63, 2**64 - 1]))
_fields = st.recursive(
    st.one_of(st.tuples(st.integers(1, 13), st.just(0), _varints).map(lambda t: _field(*t)),
              st.tuples(st.integers(1, 13), st.just(2), st.binary(max_size=40)).map(lambda t: _field(*t)),
              st.tuples(st.integers(1, 13), st.sampled_from([1, 5]), st.binary(min_size=8, max_size=8))
              .map(lambda t: _field(t[0], t[1], t[2][:4] if t[1] == 5 else t[2]))),
    lambda inner: st.tuples(st.integers(1, 13), st.lists(inner, max_size=4))
    .map(lambda t: _field(t[0], 2, b"".join(t[1]))),
    max_leaves=12)
# valid Stats and trie nodes (odd values included), then maybe damaged: cut, a byte changed, bytes added
_stats = st.builds(
    lambda mode, ids, nums, link, mount, meta: Stat(
        mode=mode, uid=ids[0], gid=ids[1], size=nums[0], blocks=nums[1], offset=nums[2],
        byte_offset=nums[3], mtime=nums[4], ctime=nums[5], linkname=link, mount=mount,
        metadata=meta).encode(),
    st.one_of(st.sampled_from([0o100644, 0o40755, 0o120644, 0]), _varints),
    st.tuples(_varints, _varints), st.tuples(*[_varints] * 6), st.none() | st.text(max_size=10),
    st.none() | st.builds(Mount, st.binary(min_size=32, max_size=32), st.none() | _varints,
                          st.none() | st.binary(max_size=4), st.booleans()),
    st.dictionaries(st.text(max_size=5), st.binary(max_size=5), max_size=3))
_trie_buffers = st.one_of(
    st.binary(max_size=30),
    st.lists(_varints, max_size=12).map(lambda xs: b"".join(encode_varint(x) for x in xs)))
_nodes = st.builds(
    lambda key, value, trie, seq, flags: TrieNodeMessage(
        key=key, valueBuffer=value, trieBuffer=trie, seq=seq, flags=flags).encode(),
    st.text(max_size=20), st.none() | st.binary(max_size=20), st.none() | _trie_buffers, _varints,
    st.none() | _varints)


@st.composite
def _damaged(draw, valid):
    block = draw(valid)
    how = draw(st.sampled_from(["keep", "cut", "flip", "insert"]))
    if how == "keep" or not block:
        return block
    i = draw(st.integers(0, len(block) - 1))
    if how == "cut":
        return block[:i]
    if how == "flip":
        return block[:i] + bytes([block[i] ^ draw(st.integers(1, 255))]) + block[i + 1:]
    return block[:i] + draw(st.binary(min_size=1, max_size=6)) + block[i:]


_raw = st.one_of(st.binary(max_size=120), st.lists(_fields, max_size=8).map(b"".join))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=_raw | _damaged(_nodes))
def test_trie_node_decoder_raises_only_corrupt_trie_error(block):
    try:
        node = TrieNode.decode(block, 7)
    except CorruptTrieError:
        return
    assert node.seq == 7 and isinstance(node.key, str)
    node.path(0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=_raw | _damaged(_stats))
def test_stat_decoder_raises_only_corrupt_entry(block):
    try:
        st = Stat.decode(block, "/p")
    except CorruptEntry as e:
        assert e.errno == errno.EIO and e.filename == "/p"
        return
    st.is_file(), st.is_directory(), st.is_symlink()
    assert Stat.decode(st.encode()) == st  # what decodes can be written back


async def test_reopen_from_disk(tmp_path):
    async with open_store(tmp_path) as store:
        drive = await Hyperdrive.open(store)
        await drive.write_file("/persist", b"on disk")
        key = drive.key
    async with open_store(tmp_path) as store:
        drive = await Hyperdrive.open(store, key)
        assert drive.writable
        assert await drive.read_file("/persist") == b"on disk"
        await drive.write_file("/more", b"still writable")
        assert sorted(await drive.readdir("/")) == ["more", "persist"]


async def test_replication_between_python_stores():
    async with open_store() as a, open_replication_server(a) as a_net, open_store() as b, \
            open_replication_server(b) as b_net:
        src = await Hyperdrive.open(a)
        await src.write_file("/doc.txt", b"shared")
        await src.write_file("/dir/big", os.urandom(2 * WRITE_BLOCK_SIZE))
        port = await a_net.listen("127.0.0.1", 0)
        replica = await Hyperdrive.open(b, src.key)
        await b_net.connect("127.0.0.1", port)
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


async def test_replica_content_with_no_peer_to_ask():
    async with open_store() as a, open_replication_server(a) as a_net, open_store() as b, \
            open_replication_server(b, sparse=True) as b_net:
        src = await Hyperdrive.open(a)
        await src.write_file("/f", b"only on the writer")
        port = await a_net.listen("127.0.0.1", 0)
        replica = await Hyperdrive.open(b, src.key)
        session = await b_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            await replica.update(src.version)
            assert (await replica.stat("/f")).size == 18  # the metadata came; no content block asked
            content = await replica.content_feed()
            while not replicator_of(content).peers:
                await trio.sleep(0.01)
            await session.aclose()
            while b_net.sessions:
                await trio.sleep(0.01)
        assert content.downloaded() == 0
        with pytest.raises(ContentNotAvailable) as info:  # no one to ask: an error, not a wait forever
            await replica.read_file("/f")
        assert info.value.errno == errno.ENODATA and isinstance(info.value, OSError)
        await b_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            assert await replica.read_file("/f") == b"only on the writer"  # a peer again: fetched


async def test_replica_reads_entries_claiming_absurd_block_counts():
    """A peer's Stat may claim 2**62 blocks: reads ask for a window of blocks at a time, so the real
    bytes come back, and a pointer where nothing exists waits (for the caller's timeout), as in JS,
    without asking for (or counting) 2**62 blocks."""
    async with open_store() as a, open_replication_server(a) as a_net, open_store() as b, \
            open_replication_server(b, sparse=True) as b_net:
        src = await Hyperdrive.open(a)
        await src.write_file("/ok", b"fine")
        await src.trie.put("huge", Stat.file(offset=0, blocks=2**62, size=4).encode())
        await src.trie.put("nowhere", Stat.file(offset=2**62, blocks=2**62, size=4).encode())
        port = await a_net.listen("127.0.0.1", 0)
        replica = await Hyperdrive.open(b, src.key)
        await b_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            await replica.update(src.version)
            assert await replica.read_file("/huge") == b"fine"
            with trio.move_on_after(0.3) as waited:
                await replica.read_file("/nowhere")
            assert waited.cancelled_caught
            assert await replica.read_file("/ok") == b"fine"
        with pytest.raises(CorruptEntry):  # on the writer, whose content feed is complete: EIO at once
            await src.read_file("/nowhere")


async def test_replica_range_read_fetches_only_the_blocks_of_the_range():
    """A stream of a byte range asks peers for the blocks holding it and no more (a stream to the end
    of the file reads ahead); the blocks before the range are fetched only to learn their sizes."""
    async with open_store() as a, open_replication_server(a) as a_net, open_store() as b, \
            open_replication_server(b, sparse=True) as b_net:
        src = await Hyperdrive.open(a)
        data = os.urandom(8 * WRITE_BLOCK_SIZE)
        await src.write_file("/big", data)
        port = await a_net.listen("127.0.0.1", 0)
        replica = await Hyperdrive.open(b, src.key)
        await b_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            await replica.update(src.version)
            content = await replica.content_feed()
            got = b"".join([c async for c in replica.create_read_stream("/big", start=10, length=100)])
            assert got == data[10:110]
            await trio.sleep(0.2)  # (time for any block asked beyond the range to arrive)
            assert content.downloaded() == 1
            start = WRITE_BLOCK_SIZE - 50  # across the first two blocks
            got = b"".join([c async for c in replica.create_read_stream("/big", start=start, length=100)])
            assert got == data[start:start + 100]
            await trio.sleep(0.2)
            assert content.downloaded() == 2 and content.has(0) and content.has(1)


async def test_a_content_feed_no_one_uses_is_freed_with_its_content_log():
    """The registry of ContentLogs (one per content feed, drive/content.py) holds them weakly: a
    content feed dropped by everyone is freed with its log. (The log referenced its feed, the key of
    the weak registry, so neither was ever freed: every drive a long-running node opened stayed.)"""
    import gc
    import weakref

    from hypernode.drive import content as content_module

    async with Corestore() as store:
        drive = await Hyperdrive.open(store)
        await drive.write_file("/f", b"x")
        feed_ref = weakref.ref(await drive.content_feed())
        assert feed_ref() in content_module._logs
        await drive.close()
    del drive, store
    gc.collect()
    assert feed_ref() is None
