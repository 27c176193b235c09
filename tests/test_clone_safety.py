"""``hypernode clone`` never deletes or overwrites what it did not write (issue 15, point 3): the real
command in a subprocess, over loopback TCP, and the bytes left on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cliutil import (
    HYPERNODE,
    Proc,
    SlowProxy,
    fill,
    one_line_error,
    put,
    run,
    start_share,
    tree,
    wait_until,
)

DRIVE = {"a.txt": "alpha", "Documents/shared.md": "# shared", "sub/b.txt": "beta"}


def clone(store: Path, key: str, folder: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return run(store, "clone", key, str(folder), "--peer", f"127.0.0.1:{port}", *args)


def test_a_non_empty_folder_needs_force_and_is_otherwise_untouched(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, DRIVE)
    target = tmp_path / "target"
    fill(target, {"mine.txt": "my own file", "a.txt": "my a.txt"})
    before = tree(target)
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share:
        out = clone(tmp_path / "store-b", key, target, port)
        line = one_line_error(out)
        assert "is not empty" in line and "--force" in line and "mine.txt" in line
        assert tree(target) == before
        assert not (tmp_path / "store-b").exists()  # refused before the store was even opened

        out = clone(tmp_path / "store-b", key, target, port, "--force")
        assert out.returncode == 0, out.stderr
        assert "kept 2 entries that were in" in out.stdout and "mine.txt" in out.stdout
        assert (target / "mine.txt").read_text() == "my own file"
        assert (target / "a.txt").read_text() == "alpha"  # same-named: overwritten, as --force says
        assert (target / "Documents" / "shared.md").read_text() == "# shared"

        # a folder holding this clone is no longer "not empty" for it: the same command updates it
        out = clone(tmp_path / "store-b", key, target, port)
        assert out.returncode == 0, out.stderr
        assert "continuing the clone" in out.stdout
        # but another drive may not go there without --force
        other = run(tmp_path / "store-c", "create").stdout.strip()
        line = one_line_error(clone(tmp_path / "store-b", other, target, port))
        assert f"holds a clone of drive {key}" in line


def test_live_force_clone_into_a_home_folder_keeps_what_it_did_not_write(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, DRIVE)
    home = tmp_path / "home"
    fill(home, {".bashrc": "export PS1='$ '\n", "Documents/notes.txt": "my notes",
                ".config/app.ini": "[app]\n"})
    mine = tree(home)
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share, Proc(tmp_path / "store-b", "clone", key, str(home), "--peer", f"127.0.0.1:{port}",
                     "--live", "--force") as live:
        live.wait_for("cloned")
        assert any(line.startswith("kept 3 entries") and ".bashrc" in line for line in live.lines)
        assert (home / "Documents" / "shared.md").read_text() == "# shared"
        assert (home / "sub" / "b.txt").read_text() == "beta"
        # the drive drops everything: the clone removes what it wrote, and only that
        for rel in DRIVE:
            (shared / rel).unlink()
        (shared / "sub").rmdir()
        (shared / "Documents").rmdir()
        put(shared / "new.txt", "new")
        wait_until(lambda: (home / "new.txt").exists() and not (home / "a.txt").exists()
                   and not (home / "sub").exists(), what=f"the live clone to follow: {live.lines}")
        live.drain(1.0)  # several scans of the share: nothing else may go
        assert tree(home) == {**mine, "new.txt": b"new"}
        assert live.p.poll() is None


def test_same_named_and_changed_files_are_overwritten_only_with_force(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, DRIVE)
    target = tmp_path / "target"
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share:
        assert clone(tmp_path / "store-b", key, target, port).returncode == 0
        # here: a file of the user's where the drive gets a new file, and a file the clone wrote, edited
        (target / "new.txt").write_text("the user's new.txt")
        (target / "a.txt").write_text("alpha, edited here")
        put(shared / "new.txt", "the drive's new.txt")
        put(shared / "a.txt", "alpha, edited in the drive")
        share.settle()
        out = clone(tmp_path / "store-b", key, target, port)
        line = one_line_error(out)
        assert "2 drive path(s) not placed" in line and "--force" in line
        assert "/a.txt (changed here since the clone wrote it)" in line
        assert "/new.txt (a local file the clone did not write is in the way)" in line
        assert (target / "new.txt").read_text() == "the user's new.txt"
        assert (target / "a.txt").read_text() == "alpha, edited here"

        # a folder or symlink of the user's is never replaced, not even with --force
        os.symlink("a.txt", target / "link-of-mine")
        put(shared / "link-of-mine", "the drive's file")
        share.settle()
        out = clone(tmp_path / "store-b", key, target, port, "--force")
        line = one_line_error(out)
        assert "/link-of-mine (a local symlink is in the way)" in line
        assert os.readlink(target / "link-of-mine") == "a.txt"
        assert (target / "new.txt").read_text() == "the drive's new.txt"
        assert (target / "a.txt").read_text() == "alpha, edited in the drive"

        # a file the clone wrote and the user changed is not deleted when the drive deletes it
        (shared / "link-of-mine").unlink()
        share.settle()
        assert clone(tmp_path / "store-b", key, target, port).returncode == 0
        (target / "sub" / "b.txt").write_text("beta, edited here")
        (shared / "sub" / "b.txt").unlink()
        (shared / "Documents" / "shared.md").unlink()
        share.settle()
        out = clone(tmp_path / "store-b", key, target, port)
        assert out.returncode == 0, out.stderr
        assert "kept 1 entries the drive removed: /sub/b.txt (changed here since the clone wrote it)" \
            in out.stdout
        assert (target / "sub" / "b.txt").read_text() == "beta, edited here"
        assert not (target / "Documents" / "shared.md").exists()  # the clone's, unchanged: removed
        assert (target / "Documents").is_dir()  # still a folder in the drive


def test_live_updates_do_not_replace_a_file_changed_here(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, DRIVE)
    target = tmp_path / "target"
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share, Proc(tmp_path / "store-b", "clone", key, str(target), "--peer", f"127.0.0.1:{port}",
                     "--live") as live:
        live.wait_for("cloned")
        (target / "a.txt").write_text("alpha, mine now")
        put(shared / "a.txt", "alpha, second version")
        put(shared / "sub" / "b.txt", "beta, second version")
        line = live.wait_for("hypernode: 1 drive path(s) not placed", stream="err")
        assert "/a.txt (changed here since the clone wrote it)" in line
        wait_until(lambda: (target / "sub" / "b.txt").read_text() == "beta, second version")
        assert (target / "a.txt").read_text() == "alpha, mine now"
        (shared / "a.txt").unlink()
        live.wait_for("kept 1 entries the drive removed: /a.txt")
        assert (target / "a.txt").read_text() == "alpha, mine now"
        assert live.p.poll() is None


def test_empty_paths_are_errors(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    key = "ab" * 32
    for args in (["--store", str(tmp_path / "s"), "clone", key, ""],
                 ["--store", "", "clone", key, str(tmp_path / "x")],
                 ["--store", str(tmp_path / "s"), "share", ""],
                 ["--store", "", "create"]):
        out = subprocess.run([HYPERNODE, *args], capture_output=True, text=True, cwd=cwd, timeout=60)
        assert out.returncode == 2, (args, out.stderr)
        assert "an empty path" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert list(cwd.iterdir()) == []


def test_a_killed_clone_resumes_without_force(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, {f"f{i}.bin": os.urandom(300_000) for i in range(8)})
    target = tmp_path / "target"
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share, SlowProxy(port, rate=600_000) as proxy:
        p = subprocess.Popen([HYPERNODE, "--store", str(tmp_path / "store-b"), "clone", key, str(target),
                              "--peer", f"127.0.0.1:{proxy.port}"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: len(list(target.glob("f*.bin"))) >= 2, what="two files of the clone")
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait()
        written = len(list(target.glob("f*.bin")))
        assert written < 8, "the clone ended before it was killed: slow the proxy down"
        manifest = json.loads((target / ".hypernode-clone.json").read_text())
        assert manifest["key"] == key
        out = clone(tmp_path / "store-b", key, target, port)
        assert out.returncode == 0, out.stderr
        assert "continuing the clone" in out.stdout
    assert tree(target) == tree(shared)


def test_the_manifest_records_what_the_clone_wrote(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, DRIVE)
    target = tmp_path / "target"
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share:
        assert clone(tmp_path / "store-b", key, target, port).returncode == 0
    manifest = json.loads((target / ".hypernode-clone.json").read_text())
    assert manifest["key"] == key and manifest["version"] > 1
    entries = manifest["entries"]
    assert {p for p, e in entries.items() if e["kind"] == "file"} == {"/" + p for p in DRIVE}
    assert {p for p, e in entries.items() if e["kind"] == "dir"} == {"/Documents", "/sub"}
    a = entries["/a.txt"]
    st = (target / "a.txt").stat()
    assert (a["size"], a["mtime_ns"], a["ino"]) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert not any(e.get("pending") for e in entries.values())


async def test_entries_that_change_kind_are_followed_and_the_users_are_kept(tmp_path):
    """The export itself (folder.export_drive): the drive turns a file into a folder, a folder into a
    file, a symlink into a file and a file into a symlink; the clone follows each one on its own entries,
    and keeps a folder it made in which the user put a file."""
    from hypernode.corestore import Corestore
    from hypernode.drive import Hyperdrive
    from hypernode.folder import ExportIncomplete, export_drive

    target = tmp_path / "clone"
    async with Corestore() as store:
        drive = await Hyperdrive.open(store)
        await drive.write_file("/x", "x, a file")
        await drive.write_file("/d/f", "f, in folder d")
        await drive.write_file("/u/f", "f, in folder u")
        await drive.write_file("/target.txt", "target")
        await drive.symlink("/target.txt", "/l")
        await drive.write_file("/m", "m, a file")
        await export_drive(drive, target)
        assert os.readlink(target / "l") == "target.txt"
        (target / "u" / "mine.txt").write_text("the user's, in the clone's folder u")

        await drive.unlink("/x")
        await drive.write_file("/x/in", "in x, now a folder")
        await drive.unlink("/d/f")
        await drive.write_file("/d", "d, now a file")
        await drive.unlink("/u/f")
        await drive.write_file("/u", "u, now a file")
        await drive.unlink("/l")
        await drive.write_file("/l", "l, now a file")
        await drive.unlink("/m")
        await drive.symlink("/target.txt", "/m")
        with pytest.raises(ExportIncomplete) as e:
            await export_drive(drive, target)
        unplaced = [(u.path, u.why) for u in e.value.unplaced]
        assert unplaced == [("/u", "a local folder is in the way (not empty)")]
        assert tree(target) == {"x": "/", "x/in": b"in x, now a folder", "d": b"d, now a file",
                                "u": "/", "u/mine.txt": b"the user's, in the clone's folder u",
                                "target.txt": b"target", "l": b"l, now a file", "m": "-> target.txt"}


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                               max_size=4), max_leaves=12)
records = st.dictionaries(st.sampled_from(["kind", "pending", "size", "mtime_ns", "sha256", "source", "x"]),
                          json_values | st.sampled_from(["file", "dir", "symlink"]), max_size=4)
manifests = st.fixed_dictionaries({
    "key": st.sampled_from(["ab" * 32, "zz", 5]), "version": json_values,
    "entries": st.dictionaries(st.sampled_from(["/a", "/../up", "a", "/x/./y", "/n\x00", "/", "/ok/b"])
                               | st.text(max_size=6), records, max_size=3)})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64), json_values.map(json.dumps).map(str.encode),
                 manifests.map(json.dumps).map(str.encode)))
def test_a_damaged_manifest_is_refused_never_acted_on(data):
    """Whatever a manifest holds, loading it gives a manifest of plain paths inside the folder and
    well-typed records, or CloneRefused: nothing else (a path with '..' is never one to act on)."""
    from hypernode.folder import CloneRefused, Manifest

    with tempfile.TemporaryDirectory() as d:
        (Path(d) / ".hypernode-clone.json").write_bytes(data)
        try:
            m = Manifest.load(Path(d))
        except CloneRefused as e:
            assert "is damaged" in str(e) and len(str(e).splitlines()) == 1
            return
        assert m is not None and len(m.key) == 32
        for path, rec in m.entries.items():
            assert path.startswith("/") and ".." not in path.split("/") and "\x00" not in path
            assert rec.kind in ("file", "dir", "symlink") and isinstance(rec.pending, bool)
            assert all(isinstance(v, int) and v >= 0 for v in (rec.size, rec.mtime_ns, rec.ino))


def test_a_crafted_manifest_cannot_make_the_clone_delete_outside_the_folder(tmp_path):
    """A folder handed over with a manifest naming a file outside it (the file's real hash inside):
    the clone refuses the manifest, without --force it touches nothing, and with --force it starts a
    manifest of its own; the file outside stays."""
    import hashlib

    shared = tmp_path / "shared"
    fill(shared, DRIVE)
    victim = tmp_path / "victim.txt"
    victim.write_text("do not delete me")
    target = tmp_path / "target"
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share:
        st = victim.stat()
        record = {"kind": "file", "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
                  "ino": st.st_ino, "sha256": hashlib.sha256(victim.read_bytes()).hexdigest()}
        target.mkdir()
        (target / ".hypernode-clone.json").write_text(json.dumps(
            {"key": key, "version": 1, "entries": {"/../victim.txt": record}}))
        line = one_line_error(clone(tmp_path / "store-b", key, target, port))
        assert "is damaged" in line
        out = clone(tmp_path / "store-b", key, target, port, "--force")
        assert out.returncode == 0, out.stderr
        assert victim.read_text() == "do not delete me"
        # a symlink put where the clone's folder was: what the clone wrote is not removed through it
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        os.rename(target / "sub", elsewhere / "sub")
        os.symlink(elsewhere / "sub", target / "sub")
        (shared / "sub" / "b.txt").unlink()
        (shared / "sub").rmdir()
        share.settle()
        out = clone(tmp_path / "store-b", key, target, port)
        assert out.returncode == 0, out.stderr
        assert (elsewhere / "sub" / "b.txt").read_text() == "beta"
        assert os.readlink(target / "sub") == str(elsewhere / "sub")
