"""``hypernode mount`` of drives JS hyperdrive 10 serves (interop/js/drive_peer.js, over loopback TCP): every
path of JS's standard fixture (folders, files of 0 B to 8 MiB, a symlink, a mounted drive, metadata)
reads through FUSE as JS reports it (kind, mode bits, size, times, bytes, symlink target, listing);
and the merged view of a JS drive and a Python drive: JS's paths as JS reports them, the Python drive's
own, a conflict resolved as MultiDrive resolves it, writes landing in the Python drive."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive
from hypernode.multi import MultiDrive
from interop.jsproc import JSProcess
from tests.mounts import Mount, need_fuse

pytestmark = pytest.mark.interop


@pytest.fixture(autouse=True)
def _fuse() -> None:
    need_fuse()


async def js_fixture(peer: JSProcess) -> tuple[str, dict[str, Any], int]:
    await peer.wait_for("ready")
    key = (await peer.command("created", cmd="create", name="mounted"))["key"]
    await peer.command("fixture-done", cmd="fixture", key=key)
    report = (await peer.command("report", cmd="report", key=key))["report"]
    port = (await peer.command("listening", cmd="listen"))["port"]
    return key, report, port


def check_as_js(mp: Path, path: str, entry: dict[str, Any]) -> None:
    """The mounted path answers what JS reported for it."""
    where = Path(str(mp) + path) if path != "/" else mp
    st = os.lstat(where)
    kind = entry["type"]
    if kind == "symlink":
        assert stat.S_ISLNK(st.st_mode), path
        target = entry["linkname"]
        assert os.readlink(where) == (str(mp) + target if target.startswith("/") else target), path
        return
    assert st.st_mode & 0o7777 == entry["mode"] & 0o7777, path
    if entry["mtime"] is not None:
        times = (st.st_mtime_ns // 1_000_000, st.st_ctime_ns // 1_000_000)
        assert times == (entry["mtime"], entry["ctime"]), path
    if kind in ("directory", "mount"):
        assert stat.S_ISDIR(st.st_mode), path
        assert sorted(os.listdir(where)) == entry["children"], path
    else:
        assert stat.S_ISREG(st.st_mode) and st.st_size == entry["size"], path
        assert hashlib.sha256(where.read_bytes()).hexdigest() == entry["sha256"], path


async def test_mount_a_js_drive(js: Any, tmp_path: Path) -> None:
    mp = tmp_path / "mnt"
    async with JSProcess("drive_peer.js", "memory") as peer:
        key, report, port = await js_fixture(peer)
        with Mount(tmp_path / "store", key, mp, "--peer", f"127.0.0.1:{port}") as m:
            assert "(read-only)" in m.line
            for path, entry in report.items():
                check_as_js(mp, path, entry)
            # the symlink leads where JS's does, inside the drive
            assert (mp / "link").read_bytes() == (mp / "a" / "one-k.bin").read_bytes()
            with pytest.raises(OSError) as info:
                (mp / "a" / "new.txt").write_text("no")
            assert info.value.errno == errno.EROFS
            # a byte range read in place
            with open(mp / "a" / "b" / "eight-m.bin", "rb") as f:
                f.seek(3 * 512 * 1024 + 100)
                chunk = f.read(1000)
            whole = (mp / "a" / "b" / "eight-m.bin").read_bytes()
            assert chunk == whole[3 * 512 * 1024 + 100:3 * 512 * 1024 + 1100]


async def test_mount_the_merged_view_of_a_js_drive_and_a_python_drive(js: Any, tmp_path: Path) -> None:
    store, mp = tmp_path / "store", tmp_path / "mnt"
    async with JSProcess("drive_peer.js", "memory") as peer:
        js_key, report, port = await js_fixture(peer)
        async with Corestore(store) as cs:  # the Python drive, written later than JS's fixture
            mine = await Hyperdrive.open(cs)
            await mine.write_file("/over.txt", "python's version")
            await mine.write_file("/a/from-python.txt", "mine")
            await mine.symlink("a/from-python.txt", "/py-link")
            py_key = mine.key.hex()
        with Mount(store, f"{js_key},{py_key}", mp, "--peer", f"127.0.0.1:{port}") as m:
            assert "(writable)" in m.line and "merged view of 2 drives" in m.line
            ours = {"/", "/a", "/over.txt"}  # the paths the Python drive changes in the view
            for path, entry in report.items():
                if path not in ours:
                    check_as_js(mp, path, entry)
            assert sorted(os.listdir(mp)) == sorted([*report["/"]["children"], "py-link"])
            assert sorted(os.listdir(mp / "a")) == sorted([*report["/a"]["children"], "from-python.txt"])
            # the conflict: both drives hold /over.txt; the later (Python's) wins, as MultiDrive says
            assert (mp / "over.txt").read_text() == "python's version"
            assert os.readlink(mp / "py-link") == "a/from-python.txt"
            assert (mp / "py-link").read_text() == "mine"
            # writes go to the Python drive (the writer); deleting JS's file hides it in the view
            (mp / "written.txt").write_text("through the mount")
            os.unlink(mp / "a" / "one-k.bin")
            assert "one-k.bin" not in os.listdir(mp / "a")
        js_after = (await peer.command("report", cmd="report", key=js_key))["report"]
        assert "/written.txt" not in js_after and "/a/one-k.bin" in js_after

    async with Corestore(store) as cs:
        mine = await Hyperdrive.open(cs, py_key)
        assert await mine.read_file("/written.txt") == b"through the mount"
        theirs = await Hyperdrive.open(cs, js_key)
        multi = MultiDrive(theirs)
        await multi.add_drive(mine)
        assert await multi.exists_tombstone("/a/one-k.bin") is mine
        assert not await multi.exists("/a/one-k.bin")
        with trio.fail_after(5):
            assert await multi.read_file("/over.txt") == b"python's version"


def test_mount_benchmark_runs() -> None:
    """interop/bench/mount_bench.py runs (small sizes) and prints its figures (no timing asserted)."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent / "bench" / "mount_bench.py"
    out = subprocess.run([sys.executable, str(bench), "--size-mib", "4", "--files", "50", "--runs", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "cat mount, cold" in out.stdout and "ls -R 50 files, cold" in out.stdout, out.stdout
