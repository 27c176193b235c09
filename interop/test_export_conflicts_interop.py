"""``hypernode clone`` of drives JS hyperdrive 10 wrote with paths no folder can hold as they are
(issue 16, point 4): a file and a folder at one path (JS lets ``/a`` be a file while ``/a/x`` exists,
in both orders), and names with NUL, ``.`` or ``..`` segments (JS stores them as given). The export
places everything else, names each such path, and exits non-zero unless ``--skip-conflicts``.

A backslash cannot reach a key through JS (it becomes ``/``) nor through Python's path API, but a peer
may still write one: that drive is made with trie-level puts, and a backslash is a valid file name
here, so it is placed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from hypernode.drive import Stat
from hypernode.node import Node
from interop.jsproc import JSProcess
from tests.cliutil import Proc, one_line_error, run, tree

pytestmark = pytest.mark.interop

OPS = [
    {"op": "writeFile", "path": "/a/x", "text": "under a"},
    {"op": "writeFile", "path": "/a", "text": "a file, written after /a/x"},
    {"op": "writeFile", "path": "/b", "text": "a file, written before /b/y"},
    {"op": "writeFile", "path": "/b/y", "text": "under b"},
    {"op": "mkdir", "path": "/m"},
    {"op": "writeFile", "path": "/m/file", "text": "in m"},
    {"op": "writeFile", "path": "/m", "text": "a file over a folder entry"},
    {"op": "writeFile", "path": "/c/d", "text": "c/d"},
    {"op": "writeFile", "path": "/c/d/e/f", "text": "deep"},
    {"op": "writeFile", "path": "/bad\u0000name", "text": "NUL"},
    {"op": "writeFile", "path": "/dots/../escape.txt", "text": "dot-dot"},
    {"op": "writeFile", "path": "/plain.txt", "text": "plain"},
]
PLACED = {"a": "/", "a/x": b"under a", "b": "/", "b/y": b"under b", "m": "/", "m/file": b"in m",
          "c": "/", "c/d": "/", "c/d/e": "/", "c/d/e/f": b"deep", "plain.txt": b"plain"}
CONFLICT = "a file and a folder in the drive: the folder is placed"
NAMED = [f"/a ({CONFLICT})", f"/b ({CONFLICT})", "/bad\\x00name (a NUL in its name)", f"/c/d ({CONFLICT})",
         "/dots/../escape.txt (a name no file can have ('..'))", f"/m ({CONFLICT})"]


async def cli(store: Path, *args: str) -> object:
    return await trio.to_thread.run_sync(lambda: run(store, *args))


async def test_a_js_drive_with_files_over_folders_is_placed_and_its_conflicts_named(tmp_path):
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create"))["key"]
        done = await peer.command("ops-done", cmd="ops", key=key, ops=OPS)
        assert done["errors"] == [None] * len(OPS)  # JS accepted every one of them
        port = (await peer.command("listening", cmd="listen"))["port"]
        peer_arg = ["--peer", f"127.0.0.1:{port}"]

        out = await cli(tmp_path / "s1", "clone", key, str(tmp_path / "strict"), *peer_arg)
        line = one_line_error(out)
        assert "6 drive path(s) not placed" in line and "--skip-conflicts" in line, line
        assert all(name in line for name in NAMED[:3]) and "and 3 more" in line, line
        assert [f"not placed: {name}" for name in NAMED] == \
            [x for x in out.stdout.splitlines() if x.startswith("not placed")]  # every one, a line each
        assert tree(tmp_path / "strict") == PLACED  # and everything else is placed

        out = await cli(tmp_path / "s2", "clone", key, str(tmp_path / "lenient"), *peer_arg,
                        "--skip-conflicts")
        assert out.returncode == 0, out.stderr
        assert "skipped 6 drive paths that cannot be placed" in out.stdout
        assert sum(x.startswith("not placed: ") for x in out.stdout.splitlines()) == 6
        assert tree(tmp_path / "lenient") == PLACED

        await peer.command("ops-done", cmd="ops", key=key, ops=[
            {"op": "writeFile", "path": "/plain.txt", "text": "plain, second version"}])
        out = await cli(tmp_path / "s2", "clone", key, str(tmp_path / "lenient"), *peer_arg,
                        "--skip-conflicts")
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "lenient" / "plain.txt").read_text() == "plain, second version"


async def test_names_only_a_peer_can_write_are_named_or_placed(tmp_path):
    store = tmp_path / "store"
    async with Node(store, port=None) as node:
        drive = await node.create_drive()
        await drive.write_file("/ok.txt", "ok")
        content = await drive.content_feed()
        for key, data in (("back\\slash.txt", b"backslash"), ("sub/x\\y/z.txt", b"deeper"),
                          ("nul\x00.txt", b"nul"), ("dir/./dot.txt", b"dot")):
            offset, byte_offset = content.length, content.byte_length
            await content.append(data)
            st = Stat.file(offset=offset, blocks=1, byte_offset=byte_offset, size=len(data))
            await drive.trie.put(key, st.encode())
        key = drive.key.hex()
    with Proc(store, "serve") as server:
        port = server.port()
        out = run(tmp_path / "s1", "clone", key, str(tmp_path / "clone"), "--peer", f"127.0.0.1:{port}")
        line = one_line_error(out)
        assert "2 drive path(s) not placed" in line, line
        assert "/nul\\x00.txt (a NUL in its name)" in line and "/dir/./dot.txt" in line, line
        assert tree(tmp_path / "clone") == {"ok.txt": b"ok", "back\\slash.txt": b"backslash", "sub": "/",
                                            "sub/x\\y": "/", "sub/x\\y/z.txt": b"deeper"}
        assert os.path.isfile(tmp_path / "clone" / "back\\slash.txt")
