"""Faults: connections cut mid-transfer, a full disk, unreadable and damaged storage files.

Each must surface as a clear error (naming the file or the errno), never take the node down, and lose
nothing verified: a cut transfer resumes where it stopped, without downloading a verified block again.
The full disk is a real one: a small tmpfs mounted for the test (skipped, saying why, where mounting
is not permitted).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import subprocess

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.errors import CorruptStorageError, HypernodeError
from hypernode.node import Node
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from tests.hostile import expected_digests, fill_drive


class CuttingProxy:
    """A TCP proxy on 127.0.0.1 whose connections can all be cut at once (both sides closed)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.scopes: list[trio.CancelScope] = []
        self.bytes = 0
        self.connections = 0

    async def run(self, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        self.connections += 1
        with trio.CancelScope() as scope:
            self.scopes.append(scope)
            try:
                server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            except OSError:
                await client.aclose()
                return
            async with client, server, trio.open_nursery() as nursery:
                async def pipe(a: trio.SocketStream, b: trio.SocketStream) -> None:
                    try:
                        while data := await a.receive_some(1 << 16):
                            self.bytes += len(data)
                            await b.send_all(data)
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
                    nursery.cancel_scope.cancel()
                nursery.start_soon(pipe, client, server)
                nursery.start_soon(pipe, server, client)

    def cut(self) -> None:
        for scope in self.scopes:
            scope.cancel()
        self.scopes.clear()


async def test_a_cut_transfer_resumes_without_downloading_verified_blocks_again(tmp_path):
    n = 4000
    blocks = [os.urandom(4096) for _ in range(n)]  # 16 MiB
    async with Corestore(tmp_path / "server") as server, open_replication_server(server) as server_net, \
            trio.open_nursery() as nursery:
        src = await server.get(name="src")
        await src.append(blocks)
        port = await server_net.listen()
        proxy = CuttingProxy(port)
        await nursery.start(proxy.run)
        cuts = []
        async with Node(tmp_path / "client", port=None, peers=[("127.0.0.1", proxy.port)]) as client:
            feed = await client.store.get(src.key)
            with trio.fail_after(60):
                for fraction in (0.25, 0.5, 0.75):
                    while feed.downloaded() < fraction * n:
                        await feed.wait_for_change()
                    proxy.cut()
                    while client.server.sessions:
                        await trio.sleep(0.01)
                    cuts.append(feed.downloaded())
                    # what the next connection may download: only what is missing now
                    while not replicator_of(feed).peers:
                        await trio.sleep(0.01)
                    (peer,) = replicator_of(feed).peers
                    missing_at_reconnect = n - feed.downloaded()
                    if fraction == 0.75:
                        await replicator_of(feed).download(0, n)
                        # every block downloaded on the last connection was one we lacked
                        assert peer.stats.downloaded_blocks == missing_at_reconnect, (
                            peer.stats, missing_at_reconnect)
            assert [await feed.get(i) for i in range(0, n, 97)] == blocks[::97]
        nursery.cancel_scope.cancel()
    assert cuts == sorted(cuts) and cuts[0] >= n // 4
    print(f"\n3 cuts at {cuts} of {n} blocks; {proxy.connections} connections; "
          f"the last downloaded exactly the {n - cuts[-1]} missing blocks")


# -- a full disk --------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted on a folder of tmp_path (unmounted afterwards)."""
    mount = shutil.which("mount")
    where = tmp_path / "small"
    where.mkdir()
    if mount is None:
        pytest.skip("no mount command: cannot make a small filesystem for the ENOSPC test")
    proc = subprocess.run([mount, "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({proc.stderr.strip()}): "
                    f"the full-disk test needs root or CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


async def test_a_full_disk_is_a_clear_error_and_the_node_stays_up(tmp_path, small_disk, caplog):
    caplog.set_level(logging.INFO, logger="hypernode")
    ballast = small_disk / "ballast"
    ballast.write_bytes(bytes(512 * 1024))
    written: dict[str, bytes] = {}
    async with Node(small_disk / "node") as node, Node(tmp_path / "other") as other:
        drive = await node.create_drive()
        theirs = await other.create_drive()
        # the replica's files are made while there is room (how much room a new feed finds after the
        # disk fills depends on the block sizes of the store's other files: the test must not)
        replica = await node.open_drive(theirs.key)
        with pytest.raises(OSError) as info:
            for i in range(1000):
                data = hashlib.sha256(str(i).encode()).digest() * 2048  # 64 KiB
                await drive.write_file(f"/f{i}", data)
                written[f"/f{i}"] = data
        assert info.value.errno == errno.ENOSPC
        assert "small/node" in str(info.value)  # names the file it could not write
        assert len(written) > 10
        # the drive still reads, and the node still serves what it has
        assert sorted(await drive.readdir("/")) == sorted(p[1:] for p in written)
        for path, data in written.items():
            assert await drive.read_file(path) == data
        # a replica on the full disk: the download fails on its connection only (it fits in the room
        # the ballast leaves when it goes)
        for i in range(20):
            await theirs.write_file(f"/g{i}", os.urandom(16 * 1024))
        node.add_peer("127.0.0.1", other.port)
        with trio.fail_after(20):
            while not any("No space left" in r.getMessage() for r in caplog.records):
                await trio.sleep(0.05)
        assert not node.store.closed
        # space comes back: writing works again, and the replica completes
        ballast.unlink()
        for p in list(written)[:8]:
            await drive.unlink(p)
            del written[p]
        await drive.write_file("/after", b"written after the disk was full")
        written["/after"] = b"written after the disk was full"
        with trio.fail_after(30):
            await node.sync_feed(replica.metadata)
            await node.sync_feed(await replica.content_feed())
        assert sorted(await replica.readdir("/")) == sorted(f"g{i}" for i in range(20))
        node.remove_peer("127.0.0.1", other.port)
        key = drive.key
    # reopened: consistent, and every acknowledged write is there
    async with Node(small_disk / "node", port=None) as node:
        drive = node.drives[key]
        for path, data in written.items():
            assert await drive.read_file(path) == data
    print(f"\nENOSPC after {len(written)} files: {info.value}")


async def test_appends_on_a_full_disk_fail_cleanly_and_resume(small_disk):
    """Appends that meet ENOSPC raise it and leave the feed as it was; after space comes back, appends
    go on, and a reopen gives every acknowledged block."""
    ballast = small_disk / "ballast"
    ballast.write_bytes(bytes(256 * 1024))
    acked = 0
    failures = 0
    async with Corestore(small_disk / "store") as store:
        feed = await store.get(name="f")
        block = os.urandom(3000)
        for _ in range(2000):
            try:
                await feed.append([block] * 7)
                acked = feed.length
            except OSError as e:
                assert e.errno == errno.ENOSPC
                failures += 1
                assert feed.length == acked
                if failures == 3:
                    ballast.unlink()
                    break
        assert failures == 3
        for _ in range(10):
            await feed.append([block] * 7)
        acked = feed.length
        assert [await feed.get(i) for i in range(0, acked, 13)] == [block] * len(range(0, acked, 13))
    async with Corestore(small_disk / "store") as store:
        feed = await store.get(name="f")
        assert feed.length == acked
        assert [await feed.get(i) for i in range(acked)] == [block] * acked


# -- unreadable and damaged files ---------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["directory", "eio", "truncated", "missing"])
async def test_unreadable_content_is_a_clear_error_and_the_node_serves_the_rest(tmp_path, damage, caplog):
    caplog.set_level(logging.INFO, logger="hypernode")
    async with Node(tmp_path / "server") as server:
        drive = await server.create_drive()
        await fill_drive(drive)
        key = drive.key
        content_dir = drive.content.directory
    data = os.path.join(content_dir, "data")
    if damage == "directory":
        os.remove(data)
        os.mkdir(data)  # a directory where the file should be
    elif damage == "eio":
        os.remove(data)
        os.symlink("/proc/self/mem", data)  # reads at small offsets fail with EIO
    elif damage == "truncated":
        with open(data, "r+b") as f:
            f.truncate(os.path.getsize(data) // 2)
    else:
        os.remove(data)
    async with Node(tmp_path / "server", port=0) as server:
        drive = server.drives[key]
        assert len(await drive.readdir("/", recursive=True)) > 0  # the metadata is fine
        with pytest.raises((HypernodeError, OSError)) as info:
            for path in expected_digests():
                await drive.read_file(path)
        assert "data" in str(info.value), info.value  # names the file
        # a clone gets the metadata, is told the content is not here, and the node stays up
        async with Node(tmp_path / "client", port=None, peers=[("127.0.0.1", server.port)]) as client:
            copy = await client.open_drive(key)
            with trio.fail_after(10):
                await client.sync_feed(copy.metadata)
            assert sorted(await copy.readdir("/", recursive=True)) == \
                sorted(await drive.readdir("/", recursive=True))
            # the node stays up and serves its other drives
            another = await server.create_drive()
            await another.write_file("/ok", b"still serving")
            copy2 = await client.open_drive(another.key)
            with trio.fail_after(10):
                await client.sync_feed(copy2.metadata)
                await client.sync_feed(await copy2.content_feed())
            assert await copy2.read_file("/ok") == b"still serving"
        assert any("cannot upload block" in r.getMessage() for r in caplog.records)
    print(f"\n{damage}: {type(info.value).__name__}: {info.value}")


async def test_damaged_tree_or_signatures_fail_on_open_naming_the_file(tmp_path):
    for target, damage in [("tree", "truncate"), ("signatures", "zero"), ("bitfield", "header"),
                           ("key", "truncate")]:
        d = tmp_path / target
        async with Corestore(d) as store:
            feed = await store.get(name="f")
            await feed.append([b"x" * 100] * 50)
            path = os.path.join(feed.directory, target)
        with open(path, "r+b") as f:
            if damage == "truncate":
                f.truncate(os.path.getsize(path) // 2 - 7)
            elif damage == "zero":
                f.seek(32)
                f.write(bytes(os.path.getsize(path) - 32))
            else:
                f.write(b"garbage!")
        async with Corestore(d) as store:
            with pytest.raises(CorruptStorageError) as info:
                await store.get(name="f")
            assert info.value.path.endswith(target), (target, info.value)


async def test_a_node_with_one_damaged_drive_serves_the_others(tmp_path, caplog):
    async with Node(tmp_path / "n") as node:
        damaged = await node.create_drive()
        await damaged.write_file("/x", "1")
        fine = await node.create_drive()
        await fine.write_file("/y", "2")
        path = os.path.join(damaged.metadata.directory, "signatures")
    with open(path, "r+b") as f:
        f.seek(32)
        f.write(bytes(500))
    async with Node(tmp_path / "n") as node:
        assert list(node.drives) == [fine.key]
        assert any("signatures" in r.getMessage() for r in caplog.records)  # the log names the file
        with pytest.raises(CorruptStorageError):
            await node.open_drive(damaged.key)  # asked for directly: the clear error
        async with Node(None, port=None, peers=[("127.0.0.1", node.port)]) as client:
            copy = await client.open_drive(fine.key)
            with trio.fail_after(10):
                await client.sync_feed(copy.metadata)
                await client.sync_feed(await copy.content_feed())
            assert await copy.read_file("/y") == b"2"
