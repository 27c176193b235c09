"""MultiDrive interop with JS multi-hyperdrive 1.1.4 (over hyperdrive 10 / corestore 5) on loopback TCP.

Tombstones cross implementations: a path deleted through JS multi-hyperdrive (a hidden
``.tombstones/<path>`` node in the JS writer drive) disappears from Python's MultiDrive view once that
drive replicates, a path deleted through Python's MultiDrive disappears from the JS view, and writing the
path again in either implementation lifts the tombstone in both views. Then three writers (two Python
nodes, one JS node, every drive replicated to every node) write their own files, write two paths
concurrently and two more one after the other on two nodes, and delete through tombstones; the three
views end up with the same tree, the same bytes and the same winning drive for every path.

One difference is by design: JS checks only a path's own tombstone, so its readdir of a removed folder
still lists the folder's names (minus their own tombstones), where Python's view has no such folder.

``interop/js/multi_peer.js`` works around four bugs of multi-hyperdrive 1.1.4 (described at its top):
the constructor's unawaited addDrive, existsTombstone's ``lastTime`` that never moves (which lets
whichever drive answers last decide between two tombstones of one path), rmdir's callback handling, and
``mkdir(path, cb)`` losing its callback.
"""

from __future__ import annotations

import errno
from typing import Any

import pytest
import trio

from hypernode.drive import Hyperdrive
from hypernode.multi import CLOCK_KEY, MultiDrive, VersionVector
from hypernode.replication import replicator_of
from hypernode.replication.server import ReplicationServer, open_replication_server
from interop.jsproc import JSProcess
from tests.stores import open_store

pytestmark = pytest.mark.interop

TIMEOUT = 20


async def caught_up(drive: Hyperdrive, version: int) -> None:
    """Wait until a replica is at ``version`` with every metadata block up to it stored here."""
    with trio.fail_after(TIMEOUT):
        await drive.update(version)
        await replicator_of(drive.metadata).download(0, version)
        await drive.content_feed()


async def js_caught_up(peer: JSProcess, *drives: Hyperdrive) -> None:
    """Wait until the JS node has each of ``drives`` at its current version."""
    want = {d.key.hex(): d.version for d in drives}
    with trio.fail_after(TIMEOUT):
        got = await peer.command("versions", cmd="wait-versions", versions=want, timeout=TIMEOUT)
    for key, version in want.items():
        assert got["versions"][key] >= version


async def js_readdir(peer: JSProcess, path: str = "/") -> list[str] | str:
    ev = await peer.command("readdir", cmd="readdir", path=path)
    return ev["names"] if ev["error"] is None else ev["error"]


async def js_read(peer: JSProcess, path: str) -> bytes | str:
    ev = await peer.command("file", cmd="readFile", path=path)
    return bytes.fromhex(ev["hex"]) if ev["error"] is None else ev["error"]


async def js_tombstone(peer: JSProcess, path: str) -> str | None:
    return (await peer.command("tombstone", cmd="tombstone", path=path))["drive"]


async def py_read(multi: MultiDrive, path: str) -> bytes | str:
    try:
        data: bytes = await multi.read_file(path)
    except FileNotFoundError:
        return "ENOENT"
    return data


async def py_tree(multi: MultiDrive) -> dict[str, Any]:
    """multi_peer.js's ``tree`` from a Python MultiDrive: every path readdir reaches from ``/``, its
    type, the drive its winning entry comes from, and the bytes of files."""
    out: dict[str, Any] = {}

    async def visit(path: str) -> None:
        for name in sorted(await multi.readdir(path)):
            child = ("" if path == "/" else path) + "/" + name
            st = await multi.stat(child)
            assert st.drive is not None
            entry: dict[str, Any] = {"type": "directory" if st.is_directory() else "file",
                                     "drive": st.drive.key.hex()}
            out[child] = entry
            if st.is_directory():
                await visit(child)
            else:
                entry["hex"] = (await multi.read_file(child)).hex()

    await visit("/")
    return {p: out[p] for p in sorted(out)}


async def start(peer: JSProcess, net: ReplicationServer, name: str) -> tuple[str, Hyperdrive]:
    """A writable JS drive, and its replica in the store ``net`` serves, connected to the JS node."""
    await peer.wait_for("ready")
    key = (await peer.command("created", cmd="create", name=name))["key"]
    port = (await peer.command("listening", cmd="listen"))["port"]
    replica = await Hyperdrive.open(net.feeds, key)
    await net.connect("127.0.0.1", port)
    return key, replica


async def test_js_tombstones_hide_python_files_and_writes_lift_them(js):
    """JS multi-hyperdrive deletes files and a folder that live in a Python drive; Python's view hides
    them once the JS drive replicates. Writing a path again lifts its tombstone in both views, whether
    JS writes it (its own tombstone made inactive) or Python does (a newer inactive one in its drive)."""
    async with JSProcess("multi_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        mine = await Hyperdrive.open(store, name="py")
        multi = MultiDrive(mine)
        await multi.write_file("/doc.txt", "python doc")
        await multi.write_file("/notes/todo.txt", "python todo")
        await multi.write_file("/keep.txt", "kept")
        jkey, jdrive = await start(peer, store_net, "js")
        await peer.command("opened", cmd="open", key=mine.key.hex())
        await js_caught_up(peer, mine)
        view = await peer.command("multi", cmd="multi", keys=[jkey, mine.key.hex()])
        assert view["drives"] == [jkey, mine.key.hex()] and view["writer"] == jkey
        await multi.add_drive(jdrive)
        assert await js_readdir(peer) == sorted(await multi.readdir("/")) == ["doc.txt", "keep.txt", "notes"]
        assert await js_read(peer, "/doc.txt") == b"python doc"

        # JS deletes /doc.txt, /notes/todo.txt and the then empty /notes: tombstones in the JS drive
        await peer.command("unlinked", cmd="unlink", path="/doc.txt")
        done = await peer.command("unlinked", cmd="unlink", path="/notes/todo.txt")
        assert await js_readdir(peer, "/notes") == []
        await caught_up(jdrive, done["version"])
        assert await multi.readdir("/notes") == []  # the folder stays, its only file hidden
        done = await peer.command("removed", cmd="rmdir", path="/notes")
        assert done["error"] is None
        assert await js_readdir(peer) == ["keep.txt"]
        assert await js_read(peer, "/doc.txt") == "ENOENT"
        await caught_up(jdrive, done["version"])
        assert await multi.readdir("/") == ["keep.txt"]
        assert await py_read(multi, "/doc.txt") == "ENOENT"
        assert not await multi.exists("/notes") and not await multi.exists("/notes/todo.txt")
        assert await multi.exists_tombstone("/doc.txt") is jdrive
        assert await multi.exists_tombstone("/notes") is jdrive
        assert await mine.read_file("/doc.txt") == b"python doc"  # only hidden: Python's drive keeps it
        assert await jdrive.readdir("/") == []  # tombstones are hidden trie keys

        # JS writes /doc.txt again: its tombstone turns inactive and its newer copy wins in both views
        done = await peer.command("written", cmd="writeFile", path="/doc.txt", text="js rewrite")
        assert await js_tombstone(peer, "/doc.txt") is None
        assert await js_read(peer, "/doc.txt") == b"js rewrite"
        await caught_up(jdrive, done["version"])
        assert await multi.exists_tombstone("/doc.txt") is None
        assert await multi.read_file("/doc.txt") == b"js rewrite"
        assert (await multi.stat("/doc.txt")).drive is jdrive

        # Python writes /notes/todo.txt again: newer inactive tombstones (for it and /notes) in Python's
        # drive outweigh the JS drive's active ones, in both views
        await multi.write_file("/notes/todo.txt", "python again")
        assert await multi.exists_tombstone("/notes") is None
        await js_caught_up(peer, mine)
        assert await js_tombstone(peer, "/notes") is None
        assert await js_tombstone(peer, "/notes/todo.txt") is None
        assert await js_read(peer, "/notes/todo.txt") == b"python again"
        assert await js_readdir(peer) == sorted(await multi.readdir("/")) == ["doc.txt", "keep.txt", "notes"]
        assert await js_readdir(peer, "/notes") == await multi.readdir("/notes") == ["todo.txt"]
        js_tree = (await peer.command("tree", cmd="tree"))["tree"]
        assert js_tree == await py_tree(multi)


async def test_python_tombstones_hide_js_files_and_writes_lift_them(js):
    """Python's MultiDrive unlinks files and removes folders that live in a JS drive; JS
    multi-hyperdrive's view hides them once Python's drive replicates. Writing again lifts the
    tombstones: Python rewriting a file, JS writing into a removed folder."""
    async with JSProcess("multi_peer.js", "memory") as peer, open_store() as store, \
            open_replication_server(store) as store_net:
        mine = await Hyperdrive.open(store, name="py")
        await mine.write_file("/py.txt", b"python's")
        jkey, jdrive = await start(peer, store_net, "js")
        await peer.command("opened", cmd="open", key=mine.key.hex())
        await peer.command("multi", cmd="multi", keys=[jkey, mine.key.hex()])
        await peer.command("written", cmd="writeFile", path="/js.txt", text="js file")
        await peer.command("written", cmd="writeFile", path="/jsdir/inner.txt", text="inner")
        await peer.command("written", cmd="writeFile", path="/ünï/çødé ✓.txt", text="ütf-8")
        done = await peer.command("made", cmd="mkdir", path="/emptydir")
        await caught_up(jdrive, done["version"])
        multi = MultiDrive(mine)
        await multi.add_drive(jdrive)
        assert sorted(await multi.readdir("/")) == ["emptydir", "js.txt", "jsdir", "py.txt", "ünï"]

        await multi.unlink("/js.txt")
        await multi.unlink("/ünï/çødé ✓.txt")
        await multi.unlink("/jsdir/inner.txt")
        await multi.rmdir("/jsdir")
        await multi.rmdir("/emptydir")
        assert sorted(await multi.readdir("/")) == ["py.txt", "ünï"]
        await js_caught_up(peer, mine)
        assert await js_readdir(peer) == ["py.txt", "ünï"]
        assert await js_readdir(peer, "/ünï") == await multi.readdir("/ünï") == []
        assert await js_read(peer, "/js.txt") == "ENOENT"
        assert (await peer.command("stat", cmd="stat", path="/emptydir"))["error"] == "ENOENT"
        for path in ("/js.txt", "/jsdir/inner.txt", "/jsdir", "/emptydir", "/ünï/çødé ✓.txt"):
            assert await js_tombstone(peer, path) == mine.key.hex(), path
        # JS lists a removed folder's own names minus their tombstones; Python hides the folder
        assert await js_readdir(peer, "/jsdir") == []
        with pytest.raises(FileNotFoundError):
            await multi.readdir("/jsdir")
        assert await jdrive.read_file("/js.txt") == b"js file"  # only hidden: the JS drive keeps it

        # Python writes /js.txt again: JS reads Python's copy
        await multi.write_file("/js.txt", "python rewrite")
        await js_caught_up(peer, mine)
        assert await js_tombstone(peer, "/js.txt") is None
        assert await js_read(peer, "/js.txt") == b"python rewrite"
        st = (await peer.command("stat", cmd="stat", path="/js.txt"))["stat"]
        assert st["drive"] == mine.key.hex()
        # JS reads the clock Python keeps in the Stat metadata: the JS drive's version it had seen
        clock = VersionVector.decode(bytes.fromhex(st["metadata"][CLOCK_KEY]))
        assert clock == {jdrive.key: jdrive.version}

        # JS writes into /emptydir: its newer inactive tombstone outweighs Python's active one
        done = await peer.command("written", cmd="writeFile", path="/emptydir/new.txt", text="new")
        assert await js_tombstone(peer, "/emptydir") is None
        assert await js_readdir(peer, "/emptydir") == ["new.txt"]
        await caught_up(jdrive, done["version"])
        assert await multi.exists_tombstone("/emptydir") is None
        assert await multi.readdir("/emptydir") == ["new.txt"]
        assert await multi.read_file("/emptydir/new.txt") == b"new"
        everything = ["emptydir", "js.txt", "py.txt", "ünï"]
        assert sorted(await multi.readdir("/")) == await js_readdir(peer) == everything
        js_tree = (await peer.command("tree", cmd="tree"))["tree"]
        assert js_tree == await py_tree(multi)


async def test_three_writers_agree(js):
    """Two Python nodes and one JS node, each with its own writable drive and a view of the three
    drives. Offline first, each writes its own files, and two paths are written concurrently on two
    nodes 50 ms apart (Python then Python, Python then JS: the later ctime wins in both rules, as
    neither write has seen the other). Then every drive replicates to every node over a full mesh of TCP
    connections, two paths are written again after their first version was seen (the later write wins:
    JS by ctime, Python by its clock and ctime) and files are deleted through tombstones from a Python
    and the JS node. The three views end up the same: names, bytes and the drive each entry comes from."""
    async with JSProcess("multi_peer.js", "memory") as peer, open_store() as store_a, \
            open_replication_server(store_a) as store_a_net, open_store() as store_b, \
            open_replication_server(store_b) as store_b_net:
        await peer.wait_for("ready")
        jkey = (await peer.command("created", cmd="create", name="js"))["key"]
        a, b = await Hyperdrive.open(store_a, name="a"), await Hyperdrive.open(store_b, name="b")
        a_js, b_js = await Hyperdrive.open(store_a, jkey), await Hyperdrive.open(store_b, jkey)
        a_b, b_a = await Hyperdrive.open(store_a, b.key), await Hyperdrive.open(store_b, a.key)
        keys = {"a": a.key.hex(), "b": b.key.hex(), "js": jkey}

        # each node's view: its own drive first (the primary and writer), then the others
        multi_a, multi_b = MultiDrive(a), MultiDrive(b)
        for m, others in ((multi_a, (a_js, a_b)), (multi_b, (b_js, b_a))):
            for d in others:
                await m.add_drive(d)
        view = await peer.command("multi", cmd="multi", keys=[jkey, keys["a"], keys["b"]])
        assert view["drives"] == [jkey, keys["a"], keys["b"]] and view["writer"] == jkey

        # 1. not connected yet: own files, and two concurrent writes of one path each, 50 ms apart
        await multi_a.write_file("/docs/a.txt", "from a")
        await multi_a.write_file("/conflict.txt", "a's version")
        await multi_a.write_file("/concurrent.txt", "a's concurrent")
        await multi_b.write_file("/concurrent-js.txt", "b's concurrent")
        await trio.sleep(0.05)
        await multi_b.write_file("/concurrent.txt", "b's concurrent")
        await peer.command("written", cmd="writeFile", path="/concurrent-js.txt", text="js's concurrent")
        await multi_b.write_file("/docs/b.txt", "from b")
        await multi_b.write_file("/b-only.txt", "b's own")
        await peer.command("written", cmd="writeFile", path="/docs/js.txt", text="from js")
        await peer.command("written", cmd="writeFile", path="/js-only.txt", text="js's own")
        await peer.command("written", cmd="writeFile", path="/conflict2.txt", text="js's version")
        assert (await multi_b.stat("/concurrent.txt")).metadata[CLOCK_KEY] == VersionVector().encode()

        port_js = (await peer.command("listening", cmd="listen"))["port"]
        port_a = await store_a_net.listen("127.0.0.1", 0)
        await store_a_net.connect("127.0.0.1", port_js)
        await store_b_net.connect("127.0.0.1", port_js)
        await store_b_net.connect("127.0.0.1", port_a)
        await everyone_caught_up(peer, a, b, a_js, b_js, a_b, b_a)

        # 2. the second writes of two paths, each after seeing the first; deletions through tombstones
        await peer.command("written", cmd="writeFile", path="/conflict.txt", text="js's version")
        await multi_b.write_file("/conflict2.txt", "b's version")
        await multi_b.unlink("/js-only.txt")  # a file of the JS drive, hidden by B's tombstone
        await peer.command("unlinked", cmd="unlink", path="/b-only.txt")  # B's file, JS's tombstone
        await multi_a.unlink("/docs/a.txt")  # A's own file: deleted and tombstoned
        # a folder with files in it is not removed, in either implementation
        assert (await peer.command("removed", cmd="rmdir", path="/docs"))["error"] == "ENOTEMPTY"
        with pytest.raises(OSError) as e:
            await multi_b.rmdir("/docs")
        assert e.value.errno == errno.ENOTEMPTY
        await everyone_caught_up(peer, a, b, a_js, b_js, a_b, b_a)

        expected = {
            "/concurrent-js.txt": ("js", "js's concurrent"),
            "/concurrent.txt": ("b", "b's concurrent"),
            "/conflict.txt": ("js", "js's version"),
            "/conflict2.txt": ("b", "b's version"),
            "/docs": None,
            "/docs/b.txt": ("b", "from b"),
            "/docs/js.txt": ("js", "from js"),
        }
        js_tree = (await peer.command("tree", cmd="tree"))["tree"]
        tree_a, tree_b = await py_tree(multi_a), await py_tree(multi_b)
        assert sorted(js_tree) == sorted(expected)
        for path, want in expected.items():
            if want is None:
                assert js_tree[path]["type"] == "directory"
            else:
                drive, text = want
                assert js_tree[path] == {"type": "file", "drive": keys[drive], "hex": text.encode().hex()}
        assert tree_a == js_tree
        assert tree_b == js_tree

        # JS reads Python's entries with their clocks: B's /conflict2.txt had seen the JS drive's copy
        st = (await peer.command("stat", cmd="stat", path="/conflict2.txt"))["stat"]
        clock = VersionVector.decode(bytes.fromhex(st["metadata"][CLOCK_KEY]))
        seq = (await b_js.trie.get("conflict2.txt")).seq  # type: ignore[union-attr]
        assert clock[bytes.fromhex(jkey)] > seq
        assert await multi_a.exists_tombstone("/js-only.txt") is a_b
        assert await multi_b.exists_tombstone("/js-only.txt") is b
        assert await multi_a.exists_tombstone("/b-only.txt") is a_js
        assert await multi_b.exists_tombstone("/b-only.txt") is b_js
        assert await js_tombstone(peer, "/js-only.txt") == keys["b"]
        assert await js_tombstone(peer, "/b-only.txt") == jkey
        assert await js_tombstone(peer, "/docs/a.txt") == keys["a"]


async def everyone_caught_up(peer: JSProcess, a: Hyperdrive, b: Hyperdrive, a_js: Hyperdrive,
                             b_js: Hyperdrive, a_b: Hyperdrive, b_a: Hyperdrive) -> None:
    """Every node has every drive at its writer's current version."""
    jkey = a_js.key.hex()
    versions = (await peer.command("versions", cmd="versions"))["versions"]
    await js_caught_up(peer, a, b)
    await caught_up(a_js, versions[jkey])
    await caught_up(b_js, versions[jkey])
    await caught_up(a_b, b.version)
    await caught_up(b_a, a.version)
