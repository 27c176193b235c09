"""The rest of hyperdrive 10's API against JS hyperdrive@10.21.0: copy, diff (createDiffStream),
stats, clear (hypercore's clear: storage files, Unhave on the wire, blocks fetched again), mirror and
destroy_storage, each compared with what JS does, over loopback TCP or on the same storage files."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive, MountInfo, Stat
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from hypernode.storage import VERIFIED_FILENAME
from interop.jsproc import JSProcess
from interop.test_drive_interop import FIXTURE_VERSION, TIMEOUT, diff, js_fixture, python_fixture
from tests.stores import open_store

pytestmark = pytest.mark.interop


def stat_entry(st: Stat) -> dict[str, Any]:
    return {
        "mode": st.mode, "uid": st.uid, "gid": st.gid, "size": st.size, "blocks": st.blocks,
        "offset": st.offset, "byteOffset": st.byte_offset, "mtime": st.mtime, "ctime": st.ctime,
        "linkname": st.linkname or None,
        "mount": None if st.mount is None else {"key": st.mount.key.hex(), "version": st.mount.version or 0},
        "metadata": {k: st.metadata[k].hex() for k in sorted(st.metadata)},
    }


async def python_diff(drive: Hyperdrive, other: int | None, prefix: str) -> list[dict[str, Any]]:
    out = []
    async for c in drive.diff(other, prefix):
        value: Any = None
        if isinstance(c.value, Stat):
            value = stat_entry(c.value)
        elif isinstance(c.value, MountInfo):
            value = {"key": c.value.key.hex(), "localPath": c.value.local_path,
                     "version": c.value.version or None, "remotePath": c.value.remote_path or None}
        out.append({"type": c.type, "name": c.name, "seq": c.seq, "previous": c.previous_seq,
                    "value": value})
    return out


def as_js_stats(found: dict[str, Any], path: str, is_file: bool) -> dict[str, Any]:
    items = {k: {"blocks": v.blocks, "size": v.size, "downloadedBlocks": v.downloaded_blocks}
             for k, v in found.items()}
    return {"file": items[path]} if is_file else {"folder": items}


def no_block_quirk(stats: dict[str, Any]) -> dict[str, Any]:
    """JS counts every stored block of the feed as downloaded for an entry with no block at offset 0
    (its bitfield total with end 0 means "to the end"): we count none. (Folders made first have one.)"""
    def fix(v: dict[str, Any]) -> dict[str, Any]:
        return {**v, "downloadedBlocks": 0} if v["blocks"] == 0 else v

    if "file" in stats:
        return {"file": fix(stats["file"])}
    return {"folder": {k: fix(v) for k, v in stats["folder"].items()}}


def history_ops(mount_key: str) -> list[dict[str, Any]]:
    """A history with every kind of change: puts, overwrites, deletes, a mount and its removal,
    a symlink, copies (JS's copy: a new entry pointing at the same blocks)."""
    return [
        {"op": "mkdir", "path": "/a"},
        {"op": "writeFile", "path": "/a/x", "text": "x one"},
        {"op": "writeFile", "path": "/b", "text": "bee"},
        {"op": "mount", "path": "/m", "mountKey": mount_key},
        {"op": "writeFile", "path": "/a/x", "text": "x two, longer"},
        {"op": "unlink", "path": "/b"},
        {"op": "symlink", "target": "/a/x", "path": "/l"},
        {"op": "copy", "from": "/a/x", "to": "/a/copy"},
        {"op": "copy", "from": "/l", "to": "/via-link"},
        {"op": "writeFile", "path": "/c/d/e", "text": "deep"},
        {"op": "unmount", "path": "/m"},
        {"op": "writeFile", "path": "/a/z", "text": "zed"},
        {"op": "mount", "path": "/m2", "mountKey": mount_key},
    ]


async def python_ops(drive: Hyperdrive, ops: list[dict[str, Any]]) -> None:
    for o in ops:
        kind = o["op"]
        if kind == "mkdir":
            await drive.mkdir(o["path"])
        elif kind == "writeFile":
            await drive.write_file(o["path"], o["text"])
        elif kind == "unlink":
            await drive.unlink(o["path"])
        elif kind == "symlink":
            await drive.symlink(o["target"], o["path"])
        elif kind == "mount":
            await drive.mount(o["path"], o["mountKey"])
        elif kind == "unmount":
            await drive.unmount(o["path"])
        elif kind == "copy":
            await drive.copy(o["from"], o["to"])
        else:
            raise AssertionError(kind)


DIFFS = [(None, "/"), (0, "/"), (1, "/"), (4, "/"), (6, "/"), (9, "/a"), (3, "/a"), (12, "/"), (13, "/c"),
         (15, "/")]


async def test_copy_and_diff_both_ways(js):
    """The same history written by JS and by Python: every diff (createDiffStream) between versions
    is the same on both sides, for the drive each wrote, read by the other over TCP; copies point at
    the source's blocks with the source's Stat, as JS's do."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        js_mount = (await peer.command("created", cmd="create", name="mounted"))["key"]
        js_key = (await peer.command("created", cmd="create", name="history"))["key"]
        done = await peer.command("ops-done", cmd="ops", key=js_key, ops=history_ops(js_mount))
        assert done["errors"] == [None] * len(history_ops(js_mount))
        port = (await peer.command("listening", cmd="listen"))["port"]
        replica = await Hyperdrive.open(store, js_key)
        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(TIMEOUT):
            await replica.update(done["version"])
            for other, prefix in DIFFS:
                answer = await peer.command("diff", cmd="diff", key=js_key, other=other, prefix=prefix)
                want = answer["changes"]
                got = await python_diff(replica, other, prefix)
                assert got == want, (other, prefix, got, want)
        js_copy = await replica.lstat("/a/copy")
        js_source = await replica.checkout(8).lstat("/a/x")  # /a/x as it was when copied
        assert stat_entry(js_copy) == stat_entry(js_source)
        assert await replica.read_file("/via-link") == b"x two, longer"

        # Python writes the same history, JS reads it: the same diffs
        mount = await Hyperdrive.open(store, name="mounted")
        drive = await Hyperdrive.open(store, name="history")
        await python_ops(drive, history_ops(mount.key.hex()))
        assert drive.version == done["version"]
        assert stat_entry(await drive.lstat("/a/copy")) == stat_entry(await drive.checkout(8).lstat("/a/x"))
        await peer.command("opened", cmd="open", key=drive.key.hex())
        with trio.fail_after(TIMEOUT):
            await peer.command("downloaded", cmd="download", key=drive.key.hex(), version=drive.version)
            for other, prefix in DIFFS:
                want = (await peer.command("diff", cmd="diff", key=drive.key.hex(), other=other,
                                           prefix=prefix))["changes"]
                assert await python_diff(drive, other, prefix) == want, (other, prefix)
            report = (await peer.command("report", cmd="report", key=drive.key.hex()))["report"]
        assert report["/a/copy"]["sha256"] == hashlib.sha256(b"x two, longer").hexdigest()
        kinds = {c["type"] for other, prefix in DIFFS for c in await python_diff(drive, other, prefix)}
        assert kinds == {"put", "del", "mount", "unmount"}
        assert report["/via-link"]["type"] == "file"


async def test_stats_of_sparse_replicas(js):
    """A Python drive; a JS replica and a Python replica (both sparse) read the same files: their
    stats (blocks, size, downloaded blocks) are the same, for a file, a folder, and the root."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net, \
            open_store() as replica_store, \
            open_replication_server(replica_store, sparse=True) as replica_store_net:
        await peer.wait_for("ready")
        drive = await Hyperdrive.open(store, name="main")
        await python_fixture(store, drive)
        port = await store_net.listen("127.0.0.1", 0)
        key = drive.key.hex()
        await peer.command("opened", cmd="open", key=key)
        await peer.command("connected", cmd="connect", port=port)
        replica = await Hyperdrive.open(replica_store, key)
        await replica_store_net.connect("127.0.0.1", port)
        with trio.fail_after(TIMEOUT):
            await replica.update(FIXTURE_VERSION)
            for path in ("/a/one-k.bin", "/a/b/c/deep.txt"):
                await peer.command("read", cmd="read", key=key, path=path)
                await replica.read_file(path)
            for path, opts, kwargs in [("/", None, {}), ("/a", None, {}), ("/a", {"recursive": False},
                                       {"recursive": False}), ("/a/one-k.bin", None, {}),
                                       ("/a/b/eight-m.bin", None, {})]:
                want = no_block_quirk(
                    (await peer.command("stats", cmd="stats", key=key, path=path, opts=opts))["stats"])
                st = await replica.stat(path)
                got = as_js_stats(await replica.stats(path, **kwargs), path, st.is_file())
                assert got == want, (path, opts, diff_items(got, want))
        found = await replica.stats("/a")
        assert found["/a/one-k.bin"].downloaded_blocks == 1
        assert found["/a/b/eight-m.bin"].downloaded_blocks == 0
        assert found["/a/b/eight-m.bin"].blocks == 16


async def make_js_store(js_dir: Path, ops: list[dict[str, Any]]) -> tuple[str, int]:
    async with JSProcess("drive_peer.js", str(js_dir)) as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="main"))["key"]
        done = await peer.command("ops-done", cmd="ops", key=key, ops=ops)
        assert done["errors"] == [None] * len(ops)
        await peer.proc.stdin.send_all(b'{"cmd":"exit"}\n')
        await peer.proc.wait()
    return key, done["version"]


def feed_files(store_dir: Path) -> dict[str, bytes]:
    """Every file of a corestore directory by its path inside it (the master key, our store lock and
    our feeds' verified records, which JS has no counterpart of, left out)."""
    out = {}
    for root, _, files in os.walk(store_dir):
        for name in files:
            full = Path(root) / name
            rel = str(full.relative_to(store_dir))
            if rel not in ("master_key", "hypernode.lock") and name != VERIFIED_FILENAME:
                out[rel] = full.read_bytes()
    return out


CLEAR_OPS = [
    {"op": "writeFile", "path": "/first.bin", "hex": (b"1" * 700_000).hex()},  # 2 blocks
    {"op": "writeFile", "path": "/dir/middle.bin", "hex": (b"2" * 1_200_000).hex()},  # 3 blocks
    {"op": "writeFile", "path": "/dir/small.txt", "text": "small"},
    {"op": "writeFile", "path": "/last.bin", "hex": (b"3" * 600_000).hex()},  # 2 blocks, at the end
]


async def test_clear_writes_the_storage_js_writes(js, tmp_path):
    """JS writes a drive into a directory; two copies of it: JS clears files in one, Python the
    same files in the other: every file of the two stores is then byte-for-byte the same (the
    bitfield with its index, the data file cut where a cleared range reaches its end)."""
    js_dir, py_dir = tmp_path / "js", tmp_path / "py"
    key, _ = await make_js_store(js_dir, CLEAR_OPS)
    shutil.copytree(js_dir, py_dir)
    to_clear = ["/dir/middle.bin", "/last.bin", "/dir"]
    async with JSProcess("drive_peer.js", str(js_dir)) as peer:
        await peer.wait_for("ready")
        await peer.command("opened", cmd="open", key=key)
        for path in to_clear:
            await peer.command("cleared", cmd="clear", key=key, path=path)
        await peer.proc.stdin.send_all(b'{"cmd":"exit"}\n')
        await peer.proc.wait()
    async with Corestore(py_dir) as store:
        drive = await Hyperdrive.open(store, key)
        content = await drive.content_feed()
        before = content.downloaded()
        for path in to_clear:
            await drive.clear(path)
        assert content.downloaded() == before - 6  # middle's 3, last's 2, small's 1
        stats = await drive.stats("/")
        assert stats["/first.bin"].downloaded_blocks == 2 and stats["/last.bin"].downloaded_blocks == 0
    js_files, py_files = feed_files(js_dir), feed_files(py_dir)
    assert sorted(js_files) == sorted(py_files)
    for name in js_files:
        assert js_files[name] == py_files[name], name
    assert any(len(v) < 700_000 + 1_200_000 + 600_000 for k, v in js_files.items() if k.endswith("/data"))


async def test_clear_tells_peers_and_blocks_come_back(js):
    """Python clears a file with a JS replica connected: JS learns (Unhave) that the blocks are gone.
    JS clears a file with a Python replica connected: Python learns it. A Python replica that clears
    a file it downloaded fetches it again from JS on the next read."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net, \
            open_store() as replica_store, \
            open_replication_server(replica_store, sparse=True) as replica_store_net:
        await peer.wait_for("ready")
        drive = await Hyperdrive.open(store, name="main")
        await python_fixture(store, drive)
        port = await store_net.listen("127.0.0.1", 0)
        key = drive.key.hex()
        await peer.command("opened", cmd="open", key=key)
        await peer.command("connected", cmd="connect", port=port)

        async def js_content() -> tuple[int, int]:
            """Blocks JS lacks, and of those, the ones it knows we have (JS's remote bitfield keeps
            only blocks it does not have itself)."""
            feeds = (await peer.command("feeds", cmd="feeds", key=key))["feeds"]
            f = next(f for f in feeds if f["mount"] == "/" and f["role"] == "content")
            return f["length"] - f["downloaded"], f["remote"]

        with trio.fail_after(TIMEOUT):
            await peer.command("read", cmd="read", key=key, path="/over.txt")  # opens the content feed
            while (state := await js_content())[0] != state[1] or state[0] != 21:  # it knows all we have
                await trio.sleep(0.05)
            await drive.clear("/a/b/eight-m.bin")  # 16 blocks
            while await js_content() != (21, 5):
                await trio.sleep(0.05)
        content = await drive.content_feed()
        assert content.downloaded() == 6

        # the other way: a JS writer clears, a Python replica's peer learns it
        js_key, _ = await js_fixture(peer)
        js_port = (await peer.command("listening", cmd="listen"))["port"]
        replica = await Hyperdrive.open(replica_store, js_key)
        await replica_store_net.connect("127.0.0.1", js_port)
        with trio.fail_after(TIMEOUT):
            await replica.update(FIXTURE_VERSION)
            data = await replica.read_file("/a/b/eight-m.bin")
            replica_content = await replica.content_feed()
            st = await replica.stat("/a/b/eight-m.bin")
            blocks = range(st.offset, st.offset + st.blocks)
            peers = replicator_of(replica_content).peers
            while not peers or not all(peers[0].has_remote(i) for i in blocks):
                await trio.sleep(0.05)
                peers = replicator_of(replica_content).peers
            await peer.command("cleared", cmd="clear", key=js_key, path="/a/one-k.bin")
            one_k = (await replica.stat("/a/one-k.bin")).offset
            while peers[0].has_remote(one_k):
                await trio.sleep(0.05)

            # the replica clears what it downloaded, and reads it again from JS
            await replica.clear("/a/b/eight-m.bin")
            assert replica_content.downloaded(st.offset, st.offset + st.blocks) == 0
            assert (await replica.stats("/a/b/eight-m.bin"))["/a/b/eight-m.bin"].downloaded_blocks == 0
            assert await replica.read_file("/a/b/eight-m.bin") == data
            assert replica_content.downloaded(st.offset, st.offset + st.blocks) == 16


async def test_mirror_both_ways(js):
    """mirror() downloads every feed of a drive and of its mounts, and what is written later: a
    Python replica mirroring a JS drive, and a JS replica mirroring a Python drive."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net, \
            open_store() as replica_store, \
            open_replication_server(replica_store, sparse=True) as replica_store_net:
        await peer.wait_for("ready")
        js_key, _ = await js_fixture(peer)
        port = (await peer.command("listening", cmd="listen"))["port"]
        replica = await Hyperdrive.open(replica_store, js_key)
        await replica_store_net.connect("127.0.0.1", port)

        async def complete(d: Hyperdrive, content_length: int) -> bool:
            mounts = await d.get_all_mounts()
            feeds = [f for m in mounts.values() for f in (m.metadata, m.content) if f is not None]
            return len(feeds) == 4 and all(f.downloaded() == f.length for f in feeds) and \
                (await d.content_feed()).length == content_length

        with trio.fail_after(TIMEOUT):
            async with replica.mirror():
                while replica.version < FIXTURE_VERSION or not await complete(replica, 22):
                    await trio.sleep(0.05)
                written = await peer.command("written", cmd="write", key=js_key, path="/later.bin",
                                             hex=(b"L" * 600_000).hex())
                while replica.version < written["version"] or not await complete(replica, 24):
                    await trio.sleep(0.05)
            # left: new blocks are no longer fetched (JS announces one; nothing asks for it)
            content = await replica.content_feed()
            await peer.command("written", cmd="write", key=js_key, path="/not-mirrored.bin", text="n")
            while replicator_of(content).remote_length < 25:
                await trio.sleep(0.05)
            await trio.sleep(0.3)
            assert content.downloaded() == 24

        # JS mirrors a Python drive with a mount
        drive = await Hyperdrive.open(store, name="main")
        await python_fixture(store, drive)
        my_port = await store_net.listen("127.0.0.1", 0)
        key = drive.key.hex()
        await peer.command("opened", cmd="open", key=key)
        await peer.command("connected", cmd="connect", port=my_port)
        await peer.command("mirroring", cmd="mirror", key=key)
        with trio.fail_after(TIMEOUT):
            while True:
                feeds = (await peer.command("feeds", cmd="feeds", key=key))["feeds"]
                if len(feeds) == 4 and all(f["downloaded"] == f["length"] > 0 for f in feeds) and \
                        sum(f["length"] for f in feeds if f["role"] == "content") == 23:
                    break
                await trio.sleep(0.1)


async def test_destroy_storage_as_js(js, tmp_path):
    """destroy_storage removes what JS's destroyStorage removes (data, tree, bitfield and signatures
    of the metadata and content feeds; the key files stay), and the drive reopens empty and
    writable, on either side."""
    js_dir, py_dir = tmp_path / "js", tmp_path / "py"
    async with JSProcess("drive_peer.js", str(js_dir)) as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="gone"))["key"]
        await peer.command("ops-done", cmd="ops", key=key, ops=CLEAR_OPS)
        await peer.command("destroyed", cmd="destroy", key=key)
        await peer.proc.stdin.send_all(b'{"cmd":"exit"}\n')
        await peer.proc.wait()
    async with Corestore(py_dir) as store:
        drive = await Hyperdrive.open(store, name="gone")
        for o in CLEAR_OPS:
            await drive.write_file(o["path"], bytes.fromhex(o["hex"]) if "hex" in o else o["text"])
        py_key = drive.key.hex()
        await drive.destroy_storage()
        assert drive.closed

    def shape(store_dir: Path) -> list[tuple[int, str]]:
        return sorted((rel.count("/"), rel.rsplit("/", 1)[-1]) for rel in feed_files(store_dir))

    assert shape(js_dir) == shape(py_dir)
    assert not any(rel.endswith(("/data", "/tree", "/bitfield", "/signatures")) for rel in feed_files(js_dir))
    for store_dir, k in ((js_dir, key), (py_dir, py_key)):
        async with Corestore(store_dir) as store:
            drive = await Hyperdrive.open(store, k)
            assert drive.writable and drive.version == 1 and await drive.readdir("/") == []
            await drive.write_file("/again.txt", "a new start")
            assert await drive.read_file("/again.txt") == b"a new start"
    async with JSProcess("drive_peer.js", str(py_dir)) as peer:
        await peer.wait_for("ready")
        await peer.command("opened", cmd="open", key=py_key)
        report = (await peer.command("report", cmd="report", key=py_key))["report"]
        assert sorted(report) == ["/", "/again.txt"], diff(report, {})


def diff_items(got: dict[str, Any], want: dict[str, Any]) -> list[Any]:
    a, b = got.get("folder", got), want.get("folder", want)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
