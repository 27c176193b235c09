"""Hyperdrive 10 interop with JS hyperdrive@10.21.0 / corestore@5.8.2 over loopback TCP.

The STANDARD FIXTURE of ``interop/js/drive_peer.js`` (nested folders, an empty file, 1 KiB and 8 MiB
files, a symlink, metadata, a mount of a second drive, a file overwritten and one deleted) is written
by one side and replicated to the other, and both sides build the same REPORT (every path reached by
readdir from ``/``: each lstat field, the link name, the mount, the metadata, the sha256 of each file,
the sorted readdir of each folder). The reports must be equal: JS written / Python read, Python written
/ JS read, and the two fixtures equal to each other up to keys and timestamps. Live writes cross the
open connection both ways, and a drive extension carries one message each way.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive, Stat
from hypernode.drive.stat import now_ms
from hypernode.replication.server import open_replication_server
from interop.jsproc import JSProcess
from tests.stores import open_store

pytestmark = pytest.mark.interop

FIXTURE_VERSION = 17  # the header + 16 trie nodes (see drive_peer.js)
TIMEOUT = 30


def block(seed: str, i: int, size: int) -> bytes:
    h = hashlib.sha256(f"{seed}:{i}".encode()).digest()
    return (h * (size // 32 + 1))[:size]


def fixture_bytes(size: int) -> bytes:
    return b"".join(block("fixture", i, 65536) for i in range((size + 65535) // 65536))[:size]


async def python_fixture(store: Corestore, drive: Hyperdrive, mount_key: bytes | None = None) -> bytes:
    """The standard fixture of drive_peer.js, the same operations in the same order."""
    await drive.mkdir("/a")
    await drive.mkdir("/a/b")
    await drive.mkdir("/a/b/c")
    await drive.write_file("/empty.txt", b"")
    await drive.write_file("/a/one-k.bin", fixture_bytes(1024))
    await drive.write_file("/a/b/eight-m.bin", fixture_bytes(8 * 1024 * 1024))
    await drive.write_file("/a/b/c/deep.txt", b"deep\n")
    await drive.symlink("/a/one-k.bin", "/link")
    await drive.set_metadata("/a/one-k.bin", "color", b"blue")
    await drive.set_metadata("/a/one-k.bin", "n", bytes([1, 2, 3]))
    if mount_key is None:
        inner = await Hyperdrive.open(store, name="fixture-mount")
        await inner.write_file("/inside.txt", b"inside mount\n")
        mount_key = inner.key
    await drive.mount("/mnt", mount_key)
    await drive.write_file("/over.txt", b"first")
    await drive.write_file("/over.txt", b"second version")
    await drive.write_file("/gone.txt", b"gone\n")
    await drive.unlink("/gone.txt")
    return mount_key


async def python_report(drive: Hyperdrive) -> dict[str, Any]:
    """drive_peer.js's REPORT SCHEMA, built from the Python Hyperdrive API."""
    entries: dict[str, Any] = {}

    async def visit(path: str) -> None:
        st = await drive.lstat(path)
        kind = ("symlink" if st.is_symlink() else "mount" if st.mount else
                "directory" if st.is_directory() else "file")
        entry = {
            "type": kind, "mode": st.mode, "uid": st.uid, "gid": st.gid, "size": st.size,
            "blocks": st.blocks, "offset": st.offset, "byteOffset": st.byte_offset,
            "mtime": None if path == "/" else st.mtime, "ctime": None if path == "/" else st.ctime,
            "linkname": st.linkname or None,
            "mount": None if st.mount is None else {"key": st.mount.key.hex(),
                                                    "version": st.mount.version or 0},
            "metadata": {k: st.metadata[k].hex() for k in sorted(st.metadata)},
            "sha256": hashlib.sha256(await drive.read_file(path)).hexdigest() if kind == "file" else None,
            "children": None,
        }
        entries[path] = entry
        if kind in ("directory", "mount"):
            entry["children"] = sorted(await drive.readdir(path))
            for name in entry["children"]:
                await visit(("" if path == "/" else path) + "/" + name)

    await visit("/")
    return {p: entries[p] for p in sorted(entries)}


def shape(report: dict[str, Any]) -> dict[str, Any]:
    """A report without what differs between two writers of the same fixture: keys and times."""
    out = {}
    for path, entry in report.items():
        e = dict(entry)
        for t in ("mtime", "ctime"):
            e[t] = e[t] is not None
        if e["mount"] is not None:
            e["mount"] = {**e["mount"], "key": "<key>"}
        out[path] = e
    return out


def check_times(report: dict[str, Any], start_ms: int, end_ms: int) -> None:
    for path, entry in report.items():
        if path != "/":
            assert start_ms <= entry["mtime"] <= end_ms and entry["ctime"] == entry["mtime"], (path, entry)


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[Any]:
    """What differs between two reports (for readable assertion messages)."""
    out: list[Any] = []
    for path in sorted(set(a) | set(b)):
        if path not in a or path not in b:
            out.append((path, "only in " + ("first" if path in a else "second")))
            continue
        for k in a[path]:
            if a[path][k] != b[path].get(k):
                out.append((path, k, a[path][k], b[path].get(k)))
    return out


def edge_ops(mount_key: str) -> list[dict[str, Any]]:
    """Cases the standard fixture leaves out, as drive_peer.js ``ops``."""
    return [
        {"op": "writeFile", "path": "/imp/x/y.txt", "text": "y"},  # /imp, /imp/x: folders without entries
        {"op": "writeFile", "path": "/imp/x/z.txt", "text": "zz"},
        {"op": "mkdir", "path": "/emptydir"},
        {"op": "setMetadata", "path": "/emptydir", "name": "tag", "hex": b"folder".hex()},
        {"op": "symlink", "target": "y.txt", "path": "/imp/x/rel"},  # relative link
        {"op": "symlink", "target": "/imp", "path": "/dirlink"},  # a link to a folder
        {"op": "symlink", "target": "/nowhere", "path": "/dangling"},
        {"op": "writeFile", "path": "/block-exact.bin", "hex": fixture_bytes(512 * 1024).hex()},
        {"op": "writeFile", "path": "/block-plus.bin", "hex": fixture_bytes(512 * 1024 + 1).hex()},
        {"op": "writeFile", "path": "/ünï/çødé ✓.txt", "text": "ütf-8 ✓"},
        {"op": "create", "path": "/created.txt"},  # an empty entry without a content block
        {"op": "mkdir", "path": "/tmpdir"},
        {"op": "rmdir", "path": "/tmpdir"},
        {"op": "symlink", "target": "/block-exact.bin", "path": "/l2"},
        {"op": "unlink", "path": "/l2"},
        {"op": "symlink", "target": "/imp", "path": "/onlylink/l"},  # the only entry of its folder
        {"op": "mount", "path": "/onlymount/m", "mountKey": mount_key},  # a mount in a folder without entry
        {"op": "writeFile", "path": "/onlymount/m/from-parent.txt", "text": "written through the mount"},
    ]


async def python_ops(drive: Hyperdrive, ops: list[dict[str, Any]]) -> None:
    for o in ops:
        kind, path = o["op"], o["path"]
        if kind == "mkdir":
            await drive.mkdir(path)
        elif kind == "writeFile":
            await drive.write_file(path, bytes.fromhex(o["hex"]) if "hex" in o else o["text"].encode())
        elif kind == "symlink":
            await drive.symlink(o["target"], path)
        elif kind == "unlink":
            await drive.unlink(path)
        elif kind == "rmdir":
            await drive.rmdir(path)
        elif kind == "create":
            await drive.create(path)
        elif kind == "setMetadata":
            await drive.set_metadata(path, o["name"], bytes.fromhex(o["hex"]))
        elif kind == "mount":
            await drive.mount(path, bytes.fromhex(o["mountKey"]))
        else:
            raise AssertionError(kind)


def js_quirks(report: dict[str, Any]) -> dict[str, Any]:
    """The JS report of the edge scenario with two quirks of hyperdrive 10 undone, after checking them.

    A folder without an entry of its own is stat'ed from the first entry under it with a folder's mode,
    and JS keeps that entry's ``linkname`` and ``mount``: the folder of a lone symlink reports the
    link's target (so JS's ``stat`` of the folder follows it), the folder of a lone mount reports the
    mount. We give such a folder no link name and no mount, so a folder is never mistaken for them.
    """
    report = {p: dict(e) for p, e in report.items()}
    assert report["/onlylink"]["linkname"] == "/imp" and report["/onlylink"]["type"] == "directory"
    report["/onlylink"]["linkname"] = None
    assert report["/onlymount"]["type"] == "mount" and report["/onlymount"]["mount"] is not None
    report["/onlymount"].update(type="directory", mount=None)
    return report


async def assert_same_blocks(js_drive: Hyperdrive, py_drive: Hyperdrive) -> None:
    """The metadata feeds of the two fixtures hold the same trie nodes, byte for byte, but for the
    times in each Stat and the keys (of the content feed in the header, of the mounted drive)."""
    js_header, py_header = await js_drive.trie.header(), await py_drive.trie.header()
    assert (js_header.type, js_header.subtype) == (py_header.type, py_header.subtype) == \
        ("hypertrie", "hyperdrive")
    assert js_header.metadata == (await js_drive.content_feed()).key
    assert js_drive.version == py_drive.version
    js_mount = (await js_drive.lstat("/mnt")).mount
    py_mount = (await py_drive.lstat("/mnt")).mount
    assert js_mount is not None and py_mount is not None
    for seq in range(1, js_drive.version):
        a, b = await js_drive.trie.get_by_seq(seq), await py_drive.trie.get_by_seq(seq)
        assert a is not None and b is not None
        assert a.encode() == await js_drive.metadata.get(seq)  # decoding JS's node loses nothing
        assert (a.key, a.stored_flags, a.trie) == (b.key, b.stored_flags, b.trie), seq
        assert a.value is not None and b.value is not None
        if a.hidden:  # the mount record
            assert a.value.replace(js_mount.key, py_mount.key) == b.value
            continue
        st = Stat.decode(a.value)
        assert st.encode() == a.value, seq  # our Stat encoder writes JS's bytes
        mine = Stat.decode(b.value)
        st.mtime, st.ctime = mine.mtime, mine.ctime
        if st.mount is not None:
            st.mount.key = py_mount.key
        assert st.encode() == b.value, (seq, a.key)


async def js_fixture(peer: JSProcess) -> tuple[str, str]:
    key = (await peer.command("created", cmd="create", name="main"))["key"]
    done = await peer.command("fixture-done", cmd="fixture", key=key)
    assert done["version"] == FIXTURE_VERSION
    return key, done["mountKey"]


async def test_js_written_drive_replicates_to_python(js):
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        key, mount_key = await js_fixture(peer)
        js_report = (await peer.command("report", cmd="report", key=key))["report"]
        port = (await peer.command("listening", cmd="listen"))["port"]

        drive = await Hyperdrive.open(store, key)
        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(TIMEOUT):
            await drive.update(FIXTURE_VERSION)
            await drive.download("/")
        assert drive.version == FIXTURE_VERSION and not drive.writable
        mine = await python_report(drive)
        assert mine == js_report, diff(js_report, mine)
        assert js_report["/mnt"]["mount"]["key"] == mount_key
        # every byte local: the 8 MiB file's content blocks were all replicated
        content = await drive.content_feed()
        assert content.downloaded() == content.length == 22 and content.byte_length == 8_389_661

        # the same fixture written by Python: the same trie nodes and Stat bytes
        mine_drive = await Hyperdrive.open(store, name="mine")
        await python_fixture(store, mine_drive)
        await assert_same_blocks(drive, mine_drive)
        mine_content = await mine_drive.content_feed()
        assert (mine_content.length, mine_content.byte_length) == (content.length, content.byte_length)
        for i in range(content.length):
            assert await mine_content.get(i) == await content.get(i)


async def test_python_written_drive_replicates_to_js(js):
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        start = now_ms()
        drive = await Hyperdrive.open(store, name="main")
        mount_key = await python_fixture(store, drive)
        assert drive.version == FIXTURE_VERSION
        mine = await python_report(drive)
        check_times(mine, start, now_ms())
        port = await store_net.listen("127.0.0.1", 0)

        key = drive.key.hex()
        await peer.command("opened", cmd="open", key=key)
        await peer.command("connected", cmd="connect", port=port)
        with trio.fail_after(TIMEOUT):
            got = await peer.command("downloaded", cmd="download", key=key, version=FIXTURE_VERSION)
        assert got["version"] == FIXTURE_VERSION
        js_report = (await peer.command("report", cmd="report", key=key))["report"]
        assert js_report == mine, diff(mine, js_report)
        assert mine["/mnt"]["mount"]["key"] == mount_key.hex()

        # and the Python-written fixture has the shape of the JS-written one
        js_key, _ = await js_fixture(peer)
        js_own = (await peer.command("report", cmd="report", key=js_key))["report"]
        assert shape(mine) == shape(js_own), diff(shape(js_own), shape(mine))


async def test_edge_cases_both_ways(js):
    """Folders without entries, relative and dangling links, a link to a folder, block boundaries,
    non-ASCII names, rmdir, unlink of a link, a mount inside a folder without entry and a write through
    it: JS-written read by Python, Python-written read by JS, the same reports either way."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        # JS writes the scenario, Python reads it
        js_mount = (await peer.command("created", cmd="create", name="edge-mount"))["key"]
        await peer.command("ops-done", cmd="ops", key=js_mount,
                           ops=[{"op": "writeFile", "path": "/in.txt", "text": "in"}])
        js_key = (await peer.command("created", cmd="create", name="edge"))["key"]
        done = await peer.command("ops-done", cmd="ops", key=js_key, ops=edge_ops(js_mount))
        assert done["errors"] == [None] * len(edge_ops(js_mount))
        js_report = (await peer.command("report", cmd="report", key=js_key))["report"]
        port = (await peer.command("listening", cmd="listen"))["port"]
        replica = await Hyperdrive.open(store, js_key)
        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(TIMEOUT):
            await replica.update(done["version"])
            await replica.download("/")
        mine = await python_report(replica)
        assert mine == js_quirks(js_report), diff(js_quirks(js_report), mine)

        # Python writes the same scenario, JS reads it
        mount = await Hyperdrive.open(store, name="edge-mount")
        await mount.write_file("/in.txt", b"in")
        drive = await Hyperdrive.open(store, name="edge")
        await python_ops(drive, edge_ops(mount.key.hex()))
        assert drive.version == done["version"]
        py_report = await python_report(drive)
        assert shape(py_report) == shape(mine), diff(shape(mine), shape(py_report))
        await peer.command("opened", cmd="open", key=drive.key.hex())
        with trio.fail_after(TIMEOUT):
            await peer.command("downloaded", cmd="download", key=drive.key.hex(), version=drive.version)
        js_view = (await peer.command("report", cmd="report", key=drive.key.hex()))["report"]
        assert js_quirks(js_view) == py_report, diff(py_report, js_quirks(js_view))


async def test_live_writes_both_ways(js):
    """With the connection open: a file JS writes shows in a Python watch and read, a file Python
    writes is read by JS, and both reports of the grown drives still agree."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        js_key = (await peer.command("created", cmd="create", name="live"))["key"]
        await peer.command("written", cmd="write", key=js_key, path="/first.txt", text="before")
        port = (await peer.command("listening", cmd="listen"))["port"]
        mine = await Hyperdrive.open(store, name="mine")
        await mine.write_file("/mine.txt", b"python's")
        await peer.command("opened", cmd="open", key=mine.key.hex())

        replica = await Hyperdrive.open(store, js_key)
        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(TIMEOUT):
            await replica.update(2)
            assert await replica.read_file("/first.txt") == b"before"
            async with replica.watch("/live") as changes:  # pushed to us: no update() asked for it
                written = await peer.command("written", cmd="write", key=js_key, path="/live/from-js.txt",
                                             text="written by JS while connected")
                version = await changes.__anext__()
                assert version == written["version"] == replica.version == 3
            assert await replica.read_file("/live/from-js.txt") == b"written by JS while connected"

            data = fixture_bytes(600_000)  # two content blocks
            await mine.write_file("/live/from-python.bin", data)
            got = await peer.command("file", cmd="wait-file", key=mine.key.hex(),
                                     path="/live/from-python.bin", timeout=TIMEOUT)
            assert got["sha256"] == hashlib.sha256(data).hexdigest()

            await replica.download("/")
            await peer.command("downloaded", cmd="download", key=mine.key.hex(), version=mine.version)
        for drive in (replica, mine):
            js_report = (await peer.command("report", cmd="report", key=drive.key.hex()))["report"]
            py_report = await python_report(drive)
            assert py_report == js_report, diff(js_report, py_report)


async def test_drive_extension_messages_both_ways(js):
    """hyperdrive's registerExtension (on the metadata feed's channels): one message each way."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="ext"))["key"]
        await peer.command("extension-registered", cmd="extension", key=key, name="drive-chat",
                           encoding="json")
        port = (await peer.command("listening", cmd="listen"))["port"]
        drive = await Hyperdrive.open(store, key)
        got: list[Any] = []
        ext = drive.register_extension("drive-chat", "json", lambda msg, peer: got.append(msg))
        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            while not drive.peers or drive.peers[0].channel.remote_extensions is None:
                await trio.sleep(0.01)  # JS's Options with its extension names
            ext.send({"from": "python"}, drive.peers[0])
            await peer.command("ext-sent", cmd="ext-send", key=key, name="drive-chat", msg={"from": "js"})
            while len(got) < 2:
                await trio.sleep(0.01)
            await peer.collect_until(lambda events: any(
                e["event"] == "extension" and e["msg"] == {"from": "python"} for e in events))
        assert {"from": "js"} in got and {"echo": {"from": "python"}} in got  # JS got ours, echoed it


async def test_interleaved_descriptors_read_by_js(js):
    """Descriptors on different files written in turns (from different tasks), with whole-file writes,
    a write stream and an append in between: JS hyperdrive reads every file as Python does."""
    async with JSProcess("drive_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        drive = await Hyperdrive.open(store, name="fds")
        rng = random.Random(3)
        await drive.write_file("/appended.txt", b"start\n")
        fds = {f"/fd{i}.bin": await drive.open(f"/fd{i}.bin", "w") for i in range(3)}
        fds["/appended.txt"] = await drive.open("/appended.txt", "a")
        async with drive.create_write_stream("/stream.bin") as stream:
            for step in range(40):
                path = rng.choice(sorted(fds))
                chunk = rng.randbytes(rng.choice([10, 3_000, 80_000, 700_000]))
                async with trio.open_nursery() as nursery:  # each write from a task of its own
                    nursery.start_soon(drive.write, fds[path], chunk)
                if step % 10 == 3:
                    await drive.write_file(f"/whole{step}.bin", chunk)
                if step % 4 == 0:
                    await stream.write(chunk[:5000])
        for fd in fds.values():
            await drive.close(fd)
        mine = await python_report(drive)
        port = await store_net.listen("127.0.0.1", 0)
        key = drive.key.hex()
        await peer.command("opened", cmd="open", key=key)
        await peer.command("connected", cmd="connect", port=port)
        with trio.fail_after(TIMEOUT):
            await peer.command("downloaded", cmd="download", key=key, version=drive.version)
        js_report = (await peer.command("report", cmd="report", key=key))["report"]
        assert js_report == mine, diff(mine, js_report)
        assert len([p for p in mine if p.startswith("/fd")]) == 3
