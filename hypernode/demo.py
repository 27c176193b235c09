"""``hypernode demo`` (``make demo``): two nodes on loopback share, clone and merge drives.

Node A shares a folder as a drive; node B connects to it, clones the drive into a folder (every block
verified), writes a drive of its own, and prints the merged view of both (a
:class:`~hypernode.multi.MultiDrive`); a file then added to A's folder shows up live at B. Everything
lives under one directory (a new temporary one unless given). The command is :mod:`hypernode.cli`.
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import trio

from hypernode.folder import export_drive, import_folder, watch_folder
from hypernode.multi import MultiDrive
from hypernode.node import Node


async def demo(directory: str | None, out: Callable[[str], object] = print) -> None:
    """Two nodes on loopback: one shares a folder, the other clones it, writes a file of its own, and
    prints (with ``out``) the merged listing of both drives."""
    root = Path(directory or tempfile.mkdtemp(prefix="hypernode-demo-"))
    shared = root / "shared-folder"
    (shared / "docs").mkdir(parents=True, exist_ok=True)
    (shared / "hello.txt").write_text("hello from node A\n")
    (shared / "docs" / "notes.md").write_text("# notes\nshared by node A\n")
    (shared / "data.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    out(f"demo files under {root}")

    async with Node(root / "node-a") as a, Node(root / "node-b") as b:
        out(f"node A listening on 127.0.0.1:{a.port}; node B listening on 127.0.0.1:{b.port}")
        drive_a = await a.create_drive()
        _, known = await import_folder(drive_a, shared)
        out(f"node A shares {shared} as drive {drive_a.key.hex()} (version {drive_a.version})")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(watch_folder, drive_a, shared, interval=0.2, known=known))

            assert a.port is not None  # a node listens on port 0 unless told otherwise
            b.add_peer("127.0.0.1", a.port)
            copy = await b.open_drive(drive_a.key)
            with trio.fail_after(30):
                await b.sync_feed(copy.metadata)
                progress = await export_drive(copy, root / "clone")
            out(f"node B cloned it into {root / 'clone'}: {progress.files_done} files, "
                f"{progress.bytes_done} bytes, every block verified")

            drive_b = await b.create_drive()
            await drive_b.write_file("/from-b.txt", "written by node B\n")
            await drive_b.write_file("/docs/todo.md", "- merge the drives\n")
            multi = MultiDrive(copy)
            await multi.add_drive(drive_b)
            out("node B's merged view of both drives (MultiDrive):")
            for path in ("/", "/docs"):
                for e in await multi.readdir(path, stats=True):
                    owner = "A" if e.drive is not None and e.drive.key == drive_a.key else "B"
                    size = "folder" if e.stat.is_directory() else f"{e.stat.size} bytes"
                    out(f"  {path.rstrip('/') + '/' + e.name:<18} drive {owner}  {size}")

            (shared / "live.txt").write_text("appended while node B watches\n")
            with trio.fail_after(30):
                while True:
                    await copy.update()
                    if await multi.exists("/live.txt"):
                        break
            out(f"node A changed its folder; node B sees /live.txt live: "
                f"{(await multi.read_file('/live.txt', 'utf-8')).strip()!r}")
            nursery.cancel_scope.cancel()
