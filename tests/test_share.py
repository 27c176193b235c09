"""``hypernode share``: a folder that vanishes, becomes unreadable or is emptied all at once is not
published (issue 15, point 4); symlinks and the executable bit are kept, and sharing a folder again
reuses its drive (point 7). The real command in a subprocess, over loopback TCP."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cliutil import Proc, fill, put, run, start_share, tree, wait_until

FILES = {"a.txt": "alpha", "b.txt": "beta", "sub/c.txt": "gamma"}


def clone(store: Path, key: str, folder: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return run(store, "clone", key, str(folder), "--peer", f"127.0.0.1:{port}", *args)


def follow(store: Path, key: str, folder: Path, port: int) -> Proc:
    live = Proc(store, "clone", key, str(folder), "--peer", f"127.0.0.1:{port}", "--live")
    live.wait_for("cloned")
    return live


def test_a_folder_moved_away_is_not_published_and_the_last_version_is_served(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, FILES)
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share, follow(tmp_path / "store-b", key, tmp_path / "live", port) as live:
        shutil.move(shared, tmp_path / "moved-away")
        line = share.wait_for("hypernode: ", stream="err")
        assert line.startswith(f"hypernode: {shared} is gone (moved or deleted)")
        assert "serving version" in line and "until it is back" in line
        live.drain(1.5)  # several scans of the share
        assert not any(line.startswith("updated") for line in live.lines), live.lines
        assert tree(tmp_path / "live") == tree(tmp_path / "moved-away")
        # still served: a new peer clones the last version
        out = clone(tmp_path / "store-c", key, tmp_path / "late", port)
        assert out.returncode == 0, out.stderr
        assert tree(tmp_path / "late") == tree(tmp_path / "moved-away")
        assert share.p.poll() is None and len(share.errors) == 1, share.errors
        # back again: publishing resumes, from what the folder holds now
        shutil.move(tmp_path / "moved-away", shared)
        put(shared / "d.txt", "delta")
        share.wait_for(f"{shared} is back")
        wait_until(lambda: (tmp_path / "live" / "d.txt").exists(), what=f"d.txt: {live.lines}")
        assert tree(tmp_path / "live") == tree(shared)


def test_a_folder_emptied_all_at_once_is_not_published_but_single_deletions_are(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, {f"data/{rel}": data for rel, data in FILES.items()})
    share, key, port = start_share(tmp_path / "store-a", shared)
    live_dir = tmp_path / "live"
    with share, follow(tmp_path / "store-b", key, live_dir, port) as live:
        (shared / "data" / "b.txt").unlink()  # one file: a normal change
        wait_until(lambda: not (live_dir / "data" / "b.txt").exists(), what="b.txt removed")
        os.rename(shared / "data", tmp_path / "data")  # everything at once, the folder kept
        line = share.wait_for("hypernode: ", stream="err")
        assert "was emptied all at once (4 entries gone)" in line, line
        live.drain(1.5)
        assert (live_dir / "data" / "a.txt").read_text() == "alpha"
        assert (live_dir / "data" / "sub" / "c.txt").read_text() == "gamma"
        put(shared / "e.txt", "epsilon")  # a folder with content again: published
        share.wait_for(f"{shared} is back")
        wait_until(lambda: (live_dir / "e.txt").exists() and not (live_dir / "data").exists(),
                   what=f"e.txt: {live.lines}")


def test_a_folder_replaced_by_a_file_is_not_published(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, FILES)
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share, follow(tmp_path / "store-b", key, tmp_path / "live", port) as live:
        os.rename(shared, tmp_path / "away")
        shared.write_text("not a folder")
        line = share.wait_for("hypernode: ", stream="err")
        if "is gone" in line:  # a scan between the two steps
            line = share.wait_for("hypernode: ", stream="err")
        assert f"{shared} is not a folder any more" in line
        live.drain(1.0)
        assert tree(tmp_path / "live") == {k: v.encode() for k, v in FILES.items()} | {"sub": "/"}


def _modes_apply() -> bool:
    """Does a folder of mode 0 refuse us? (Not for root with CAP_DAC_OVERRIDE.)"""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0)
        try:
            os.listdir(d)
        except PermissionError:
            return True
        finally:
            os.chmod(d, 0o700)
    return False


@pytest.mark.skipif(not _modes_apply(), reason="we read every folder whatever its mode (root)")
def test_an_unreadable_folder_is_not_published(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, FILES)
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share, follow(tmp_path / "store-b", key, tmp_path / "live", port) as live:
        (shared / "sub").chmod(0)
        line = share.wait_for("hypernode: could not read 1 entries", stream="err")
        assert "/sub (Permission denied)" in line
        shared.chmod(0)
        try:
            line = share.wait_for("hypernode: ", stream="err")
            assert f"{shared} cannot be read" in line
            live.drain(1.0)
        finally:
            shared.chmod(0o755)
            (shared / "sub").chmod(0o755)
        assert tree(tmp_path / "live") == tree(shared)


def test_symlinks_and_the_executable_bit_travel(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, {"run.sh": "#!/bin/sh\necho hi\n", "data.txt": "data", "sub/x.txt": "x"})
    (shared / "run.sh").chmod(0o755)
    (shared / "data.txt").chmod(0o644)
    os.symlink("data.txt", shared / "rel-link")
    os.symlink("sub", shared / "dir-link")
    os.symlink("../data.txt", shared / "sub" / "up-link")
    os.symlink(str(shared / "sub" / "x.txt"), shared / "abs-inside")  # absolute, inside the folder
    os.symlink("no-such-file", shared / "dangling")
    (tmp_path / "secret.txt").write_text("outside the folder")
    os.symlink(str(tmp_path / "secret.txt"), shared / "abs-outside")
    os.symlink("../secret.txt", shared / "rel-outside")
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share:
        line = share.wait_for("hypernode: not shared: 2 symlink(s) pointing outside", stream="err")
        assert "/abs-outside" in line and "/rel-outside" in line
        target = tmp_path / "clone"
        with follow(tmp_path / "store-b", key, target, port) as live:
            assert os.readlink(target / "rel-link") == "data.txt"
            assert os.readlink(target / "dir-link") == "sub"
            assert os.readlink(target / "sub" / "up-link") == "../data.txt"
            assert os.readlink(target / "abs-inside") == "sub/x.txt"  # made relative: stays inside
            assert os.readlink(target / "dangling") == "no-such-file"
            assert (target / "sub" / "up-link").read_text() == "data"
            assert not os.path.lexists(target / "abs-outside")
            assert not os.path.lexists(target / "rel-outside")
            assert os.stat(target / "run.sh").st_mode & stat.S_IXUSR
            assert not os.stat(target / "data.txt").st_mode & 0o111
            # a change of the executable bit alone is published, and followed
            (shared / "data.txt").chmod(0o755)
            wait_until(lambda: os.stat(target / "data.txt").st_mode & stat.S_IXUSR,
                       what=f"the executable bit of data.txt: {live.lines}")
            # a symlink changed to point elsewhere
            (shared / "rel-link").unlink()
            os.symlink("run.sh", shared / "rel-link")
            wait_until(lambda: os.readlink(target / "rel-link") == "run.sh", what="rel-link changed")
            assert (target / "data.txt").read_text() == "data"


def test_sharing_a_folder_again_reuses_its_drive(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    fill(shared, {**FILES, ".hypernode-clone.json": "{}"})  # a clone's manifest is not shared
    store = tmp_path / "store"
    share, key, _ = start_share(store, shared)
    with share:
        pass
    assert share.p.returncode is not None
    put(shared / "d.txt", "delta")
    again = Proc(store, "share", str(shared), "--interval", "0.2")
    with again:
        line = again.wait_for("sharing")
        assert re.search(r" as ([0-9a-f]{64})", line).group(1) == key  # type: ignore[union-attr]
        assert "(the drive that shared it before)" in line
        again.wait_for("synced: 1 written, 0 removed")  # only the change is written
    # the same folder named another way is the same folder; another folder gets a drive of its own
    monkeypatch.chdir(tmp_path)
    with Proc(store, "share", "shared/", "--interval", "0.2") as same:
        assert key in same.wait_for("sharing")
    other = tmp_path / "other"
    fill(other, {"o.txt": "o"})
    with Proc(store, "share", str(other)) as third:
        assert key not in third.wait_for("sharing")
    assert sorted(run(store, "ls", key, "/").stdout.split()) == ["a.txt", "b.txt", "d.txt", "sub/"]
