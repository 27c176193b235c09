"""``hypernode mount`` with real FUSE and real processes: Python's file API and cp -r, rsync, git clone and
sqlite3 on a writable mount (checked afterwards through the Python API), EROFS on a read-only drive,
sparse reads and stat without content, live follow of a writer, and the command's errors and exit codes.
Where FUSE cannot work the tests skip (in CI they fail: CI has FUSE)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive
from tests.clitools import Running, hypernode, one_line_error
from tests.mounts import Mount, is_mounted, need_fuse

MiB = 1 << 20


@pytest.fixture(autouse=True)
def _fuse() -> None:
    need_fuse()


def create_drive(store: Path) -> str:
    out = hypernode("create", store=store)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def drive_tree(store: Path, key: str) -> dict[str, Any]:
    """Every entry of the drive, read through the Python API: path -> (kind, mode bits, bytes or link)."""

    async def read() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Corestore(store) as cs:
            drive = await Hyperdrive.open(cs, key)
            for name in await drive.readdir("/", recursive=True):
                path = "/" + name
                st = await drive.lstat(path)
                if st.linkname:
                    out[path] = ("link", st.linkname)
                elif st.is_directory():
                    out[path] = ("dir", st.mode & 0o7777)
                else:
                    out[path] = ("file", st.mode & 0o7777, await drive.read_file(path))
        return out

    return trio.run(read)


def folder_tree(root: Path) -> dict[str, Any]:
    """The same view of a local folder (folders without files inside are listed too)."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = "/" + str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", st.st_mode & 0o7777)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, p.read_bytes())
    return out


def make_source(root: Path) -> None:
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "empty-folder").mkdir()
    (root / "hello.txt").write_text("hello\n")
    (root / "docs" / "notes.md").write_text("# notes\n" * 100)
    (root / "docs" / "deep" / "data.bin").write_bytes(os.urandom(3 * MiB + 17))
    (root / "empty.txt").write_bytes(b"")
    tool = root / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    os.symlink("docs/notes.md", root / "notes-link")


def test_python_file_api_on_a_writable_mount(tmp_path: Path) -> None:
    store, mp = tmp_path / "store", tmp_path / "mnt"
    key = create_drive(store)
    with Mount(store, key, mp):
        # open/write/read/seek
        with open(mp / "a.txt", "w") as f:
            f.write("hello world")
        assert (mp / "a.txt").read_text() == "hello world"
        with open(mp / "a.txt", "r+b") as f:  # a write in place, in the middle
            f.seek(6)
            f.write(b"WORLD")
            f.seek(0)
            assert f.read() == b"hello WORLD"
        with open(mp / "a.txt", "ab") as f:
            f.write(b"!")
        assert (mp / "a.txt").read_bytes() == b"hello WORLD!"
        # truncate, both ways
        os.truncate(mp / "a.txt", 5)
        assert (mp / "a.txt").read_bytes() == b"hello"
        with open(mp / "a.txt", "r+b") as f:
            f.truncate(8)
        assert (mp / "a.txt").read_bytes() == b"hello\0\0\0"
        # folders, listdir, stat, inode numbers stable for a path
        os.mkdir(mp / "d")
        os.makedirs(mp / "d" / "e" / "f")
        (mp / "d" / "e" / "f" / "x.bin").write_bytes(os.urandom(MiB))
        assert sorted(os.listdir(mp)) == ["a.txt", "d"] and os.listdir(mp / "d" / "e") == ["f"]
        ino = os.stat(mp / "a.txt").st_ino
        assert os.stat(mp / "a.txt").st_ino == ino and os.lstat(mp / "d").st_ino != ino
        assert stat.S_ISDIR(os.stat(mp / "d").st_mode) and os.stat(mp / "a.txt").st_size == 8
        # modes and times
        os.chmod(mp / "a.txt", 0o755)
        assert os.stat(mp / "a.txt").st_mode == stat.S_IFREG | 0o755 and os.access(mp / "a.txt", os.X_OK)
        os.utime(mp / "a.txt", ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
        assert os.stat(mp / "a.txt").st_mtime == 1_600_000_000
        # rename (a file onto another, a folder), unlink, rmdir
        (mp / "b.txt").write_text("bee")
        os.rename(mp / "a.txt", mp / "b.txt")
        assert not (mp / "a.txt").exists() and (mp / "b.txt").read_bytes() == b"hello\0\0\0"
        assert os.stat(mp / "b.txt").st_ino == ino  # the number moved with the file
        os.rename(mp / "d" / "e", mp / "moved")
        assert os.listdir(mp / "moved" / "f") == ["x.bin"] and os.listdir(mp / "d") == []
        os.rmdir(mp / "d")
        with pytest.raises(OSError) as info:
            os.rmdir(mp / "moved")
        assert info.value.errno == errno.ENOTEMPTY
        (mp / "gone.txt").write_text("gone")
        os.unlink(mp / "gone.txt")
        assert not (mp / "gone.txt").exists()
        # symlinks: relative as written; absolute ones are drive paths, shown under the mountpoint
        os.symlink("b.txt", mp / "rel-link")
        os.symlink(str(mp / "moved" / "f" / "x.bin"), mp / "abs-link")
        assert os.readlink(mp / "rel-link") == "b.txt"
        assert os.readlink(mp / "abs-link") == str(mp / "moved" / "f" / "x.bin")
        assert (mp / "rel-link").read_bytes() == b"hello\0\0\0"
        assert stat.S_ISLNK(os.lstat(mp / "abs-link").st_mode)
        with pytest.raises(OSError) as info:  # no hard links in a drive
            os.link(mp / "b.txt", mp / "hard")
        assert info.value.errno == errno.EPERM
        x = (mp / "moved" / "f" / "x.bin").read_bytes()
    tree = drive_tree(store, key)
    assert tree["/b.txt"] == ("file", 0o755, b"hello\0\0\0")
    assert tree["/moved/f/x.bin"] == ("file", 0o644, x)
    assert tree["/rel-link"] == ("link", "b.txt") and tree["/abs-link"] == ("link", "/moved/f/x.bin")
    assert set(tree) == {"/b.txt", "/moved", "/moved/f", "/moved/f/x.bin", "/rel-link", "/abs-link"}

    async def mtime() -> int:
        async with Corestore(store) as cs:
            return (await (await Hyperdrive.open(cs, key)).stat("/b.txt")).mtime

    assert trio.run(mtime) == 1_600_000_000_000


def test_cp_rsync_git_and_sqlite_on_a_writable_mount(tmp_path: Path) -> None:
    store, mp, src = tmp_path / "store", tmp_path / "mnt", tmp_path / "src"
    make_source(src)
    repo = tmp_path / "repo"  # a git repository to clone into the mount
    shutil.copytree(src, repo, symlinks=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "one"]):
        subprocess.run([*git, *args], cwd=repo, check=True)
    (repo / "hello.txt").write_text("hello again\n")
    subprocess.run([*git, "commit", "-qam", "two"], cwd=repo, check=True)
    key = create_drive(store)
    with Mount(store, key, mp):
        subprocess.run(["cp", "-r", str(src), str(mp / "cp")], check=True)
        out = subprocess.run(["rsync", "-a", f"{src}/", str(mp / "rsync")], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        again = subprocess.run(["rsync", "-a", "--itemize-changes", f"{src}/", str(mp / "rsync")],
                               capture_output=True, text=True)
        assert again.returncode == 0 and again.stdout == "", again.stdout  # sizes and times kept
        out = subprocess.run(["git", "clone", "-q", f"file://{repo}", str(mp / "clone")], capture_output=True,
                             text=True)
        assert out.returncode == 0, out.stderr
        fsck = subprocess.run(["git", "fsck", "--strict"], cwd=mp / "clone", capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stderr
        log = subprocess.run(["git", "log", "--format=%s"], cwd=mp / "clone", capture_output=True, text=True)
        assert log.stdout.split() == ["two", "one"]
        status = subprocess.run(["git", "status", "--porcelain"], cwd=mp / "clone", capture_output=True,
                                text=True)
        assert status.returncode == 0 and status.stdout == ""
        # sqlite: a database written in place, transaction after transaction
        db = sqlite3.connect(mp / "data.db")
        db.execute("create table t (i integer primary key, v text)")
        for i in range(20):
            with db:
                db.executemany("insert into t (v) values (?)", [(f"row {i}-{j}" * 10,) for j in range(50)])
        with db:
            db.execute("update t set v = 'changed' where i % 7 = 0")
        db.close()
        db = sqlite3.connect(mp / "data.db")
        assert db.execute("select count(*), sum(v = 'changed') from t").fetchone() == (1000, 142)
        assert db.execute("pragma integrity_check").fetchone() == ("ok",)
        db.close()
        assert not (mp / "data.db-journal").exists()
    expected = folder_tree(src)
    tree = drive_tree(store, key)
    for name in ("cp", "rsync"):
        got = {p[len(name) + 1:]: v for p, v in tree.items() if p.startswith(f"/{name}/")}
        want = {p: v for p, v in expected.items()}
        if name == "cp":  # cp -r makes its files with the umask's modes: compare the bytes
            got = {p: v[:1] + v[2:] for p, v in got.items()}
            want = {p: v[:1] + v[2:] for p, v in want.items()}
        assert got == want, name
    cloned = {p[len("/clone"):]: v for p, v in tree.items() if p.startswith("/clone/") and
              not p.startswith("/clone/.git")}
    in_repo = {p: v for p, v in folder_tree(repo).items() if not p.startswith("/.git") and
               p != "/empty-folder"}  # (git keeps no empty folder)
    assert cloned == in_repo
    db_file = tmp_path / "copy.db"
    db_file.write_bytes(tree["/data.db"][2])
    db = sqlite3.connect(db_file)
    assert db.execute("select count(*), sum(v = 'changed') from t").fetchone() == (1000, 142)
    db.close()


def test_read_only_drive_sparse_reads_live_follow_and_erofs(tmp_path: Path) -> None:
    """A drive another process writes (``hypernode share``): stat and ls fetch no content, a read
    fetches the blocks holding its range, writes get EROFS, and new or changed files show live."""
    folder, mp = tmp_path / "shared", tmp_path / "mnt"
    folder.mkdir()
    big = os.urandom(8 * 512 * 1024)  # 8 content blocks
    (folder / "big.bin").write_bytes(big)
    (folder / "small.txt").write_text("small\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "tool").write_text("#!/bin/sh\n")
    (folder / "sub" / "tool").chmod(0o755)
    with Running("share", str(folder), "--interval", "0.2", "--bootstrap", "none", "--no-local",
                 store=tmp_path / "writer") as share:
        key = share.wait_for("sharing").split()[3]
        port = share.port()
        store = tmp_path / "reader"
        with Mount(store, key, mp, "--peer", f"127.0.0.1:{port}") as m:
            assert "(read-only)" in m.line
            listing = subprocess.run(["ls", "-lR", str(mp)], capture_output=True, text=True, check=True)
            assert "big.bin" in listing.stdout and "tool" in listing.stdout
            assert os.stat(mp / "big.bin").st_size == len(big)
            assert os.stat(mp / "sub" / "tool").st_mode == stat.S_IFREG | 0o755
            for op in (lambda: open(mp / "new.txt", "w"), lambda: open(mp / "small.txt", "a"),
                       lambda: os.mkdir(mp / "d"), lambda: os.unlink(mp / "small.txt"),
                       lambda: os.chmod(mp / "small.txt", 0o600), lambda: os.symlink("x", mp / "l")):
                with pytest.raises(OSError) as info:
                    op()
                assert info.value.errno == errno.EROFS
        assert content_blocks(store, key) == 0  # ls -lR and stat fetched no file content
        with Mount(store, key, mp, "--peer", f"127.0.0.1:{port}"):
            with open(mp / "big.bin", "rb") as f:
                assert f.read(4096) == big[:4096]
            assert (mp / "small.txt").read_text() == "small\n"
            # live: a new file, and a changed one, show without remounting
            (folder / "later.txt").write_text("arrived later\n")
            deadline = time.monotonic() + 20
            while "later.txt" not in os.listdir(mp):
                assert time.monotonic() < deadline, os.listdir(mp)
                time.sleep(0.05)
            assert (mp / "later.txt").read_text() == "arrived later\n"
            (folder / "small.txt").write_text("small, then bigger\n")
            while (mp / "small.txt").read_text() != "small, then bigger\n":
                assert time.monotonic() < deadline
                time.sleep(0.05)
        blocks = content_blocks(store, key)
        # block 0 of big.bin (the kernel reads ahead at most 256 KiB, in the first 512 KiB block),
        # later.txt and both versions of small.txt
        assert blocks == 4, blocks


def content_blocks(store: Path, key: str) -> int:
    async def count() -> int:
        async with Corestore(store) as cs:
            drive = await Hyperdrive.open(cs, key)
            content = await drive.content_feed()
            return content.downloaded(0, content.length)

    return trio.run(count)


def test_signals_and_unmount_from_outside(tmp_path: Path) -> None:
    store, mp = tmp_path / "store", tmp_path / "mnt"
    key = create_drive(store)
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        with Mount(store, key, mp) as m:
            assert is_mounted(mp)
            f = open(mp / f"open-{sig}.txt", "w")  # a file still open and written when the mount ends
            f.write("kept")
            f.flush()
            assert m.stop(sig)[0] == code
            assert not is_mounted(mp)
            with contextlib.suppress(OSError):  # (its mount is gone)
                f.close()
    with Mount(store, key, mp) as m:
        assert m.run is not None
        subprocess.run(["fusermount3", "-u", str(mp)], check=True)
        assert m.run.p.wait(timeout=20) == 0
        assert m.run.wait_for("unmounted")
    tree = drive_tree(store, key)
    assert tree[f"/open-{int(signal.SIGINT)}.txt"][2] == b"kept"


def test_command_errors(tmp_path: Path) -> None:
    store = tmp_path / "store"
    key = create_drive(store)
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    for where, says in ((tmp_path / "missing", "does not exist"), (tmp_path / "file", "not a folder"),
                        (tmp_path / "full", "not empty")):
        out = hypernode("mount", key, where, store=store)
        assert out.returncode == 1 and says in one_line_error(out), out.stderr
    mp = tmp_path / "mnt"
    with Mount(store, key, mp):
        out = hypernode("mount", key, mp, store=tmp_path / "other")
        assert out.returncode == 1 and "busy" in one_line_error(out)
        mp2 = tmp_path / "mnt2"
        mp2.mkdir()
        out = hypernode("mount", key, mp2, store=store)  # the store is in use by the first mount
        assert out.returncode == 1 and "in use by another process" in one_line_error(out)
    out = hypernode("mount", "ab" * 32, mp, "--bootstrap", "none", "--no-local", store=store)
    assert out.returncode == 1 and "has no data here" in one_line_error(out)
    out = hypernode("mount", "nonsense", mp, store=store)
    assert out.returncode == 2


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare to hide FUSE in a mount namespace")
@pytest.mark.parametrize("hide, says", [("mount -t tmpfs none /dev", "no FUSE device"),
                                        ("mount --bind /dev/null /usr/bin/fusermount3",
                                         "fusermount3 is not installed")])
def test_fuse_missing(tmp_path: Path, hide: str, says: str) -> None:
    """In a mount namespace where /dev/fuse (or fusermount3) is hidden: one line, exit 1."""
    store, mp = tmp_path / "store", tmp_path / "mnt"
    key = create_drive(store)
    mp.mkdir()
    from tests.clitools import HYPERNODE

    script = f"{hide} && exec {HYPERNODE} --store {store} mount {key} {mp}"
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1 and says in one_line_error(out), out.stderr


def test_local_files_read_at_any_offset(tmp_path: Path) -> None:
    """A file whose blocks are all here is read a chunk of whole blocks at a time, the next read ahead:
    reads at any offset and of any size (O_DIRECT: each one reaches the mount as it is made), in
    order, backwards, across block and chunk boundaries, and two descriptors of one file interleaved,
    give the file's bytes; so does a plain sequential read of a file of JS-sized (64 KiB) blocks."""
    import random

    store, mp = tmp_path / "store", tmp_path / "mnt"
    odd = os.urandom(5 * MiB + 12345)  # blocks of 100,000 bytes: boundaries never on a page
    js_sized = os.urandom(3 * MiB + 7)

    async def fill() -> str:
        async with Corestore(store) as cs:
            drive = await Hyperdrive.open(cs)
            async with drive.create_write_stream("/odd.bin") as w:
                for i in range(0, len(odd), 100_000):
                    await w.write(odd[i:i + 100_000])
            async with drive.create_write_stream("/js.bin") as w:
                for i in range(0, len(js_sized), 64 * 1024):
                    await w.write(js_sized[i:i + 64 * 1024])
            return drive.key.hex()

    key = trio.run(fill)
    rng = random.Random(3)
    with Mount(store, key, mp):
        assert (mp / "js.bin").read_bytes() == js_sized
        try:
            fd = os.open(mp / "odd.bin", os.O_RDONLY | os.O_DIRECT)
        except OSError as e:
            pytest.skip(f"O_DIRECT on this FUSE: {e}")
        fd2 = os.open(mp / "odd.bin", os.O_RDONLY | os.O_DIRECT)
        try:
            ranges = [(0, 4096), (4096, 300_000), (300_000 + 4096, 5)]  # sequential, odd sizes
            ranges += [(rng.randrange(len(odd)), rng.choice([1, 4096, 65536, 200_000, 3 * MiB]))
                       for _ in range(40)]
            ranges += [(off, 150_000) for off in range(len(odd) - 150_000, 0, -1_100_000)]  # backwards
            ranges += [(len(odd) - 10, 4096), (len(odd), 4096), (len(odd) + MiB, 10)]  # the end, past it
            for i, (off, size) in enumerate(ranges):
                got = os.pread(fd if i % 3 else fd2, size, off)
                assert got == odd[off:off + size], (off, size)
        finally:
            os.close(fd)
            os.close(fd2)
        assert (mp / "odd.bin").read_bytes() == odd


def test_a_block_changed_on_disk_reads_as_eio_through_the_mount(tmp_path: Path) -> None:
    """After a clean close the mount trusts the blocks (the verified record, see hypernode.storage); a
    byte of the content feed's data file changed since by another program, even with the file's mtime
    put back, makes the record void: the blocks are hashed as they are read, and the one that does not
    match fails the read with EIO (the chunk holding it: see LocalReader) while the rest of the drive
    reads."""
    store, mp = tmp_path / "store", tmp_path / "mnt"
    first, second = os.urandom(MiB + 5), os.urandom(2 * MiB)

    async def fill() -> tuple[str, Path]:
        async with Corestore(store) as cs:
            drive = await Hyperdrive.open(cs)
            await drive.write_file("/first.bin", first)
            await drive.write_file("/second.bin", second)
            content = await drive.content_feed()
            return drive.key.hex(), Path(content.directory or "")

    key, content_dir = trio.run(fill)
    assert (content_dir / "hypernode-verified").exists()
    time.sleep(0.02)  # past the file system's timestamp tick (see hypernode/storage.py)
    data = content_dir / "data"
    before = os.stat(data)
    with open(data, "r+b") as f:
        f.seek(len(first) + MiB + 3)  # inside the second file's third block
        b = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([b[0] ^ 1]))
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    with Mount(store, key, mp):
        assert (mp / "first.bin").read_bytes() == first
        with pytest.raises(OSError) as e:
            (mp / "second.bin").read_bytes()
        assert e.value.errno == errno.EIO
        assert sorted(os.listdir(mp)) == ["first.bin", "second.bin"]  # the mount goes on


def test_direct_io_reads_the_same_bytes_and_refuses_only_shared_mmap(tmp_path: Path) -> None:
    """``mount --direct-io``: files opened read-only bypass the page cache. They read the same bytes
    (whole, and at odd offsets), a private mmap works, a shared one fails with ENODEV; without the
    flag a shared mmap works (so the default keeps what SQLite's WAL and other mmap users need)."""
    import mmap

    store = tmp_path / "store"
    data = os.urandom(3 * MiB + 4321)

    async def fill() -> str:
        async with Corestore(store) as cs:
            drive = await Hyperdrive.open(cs)
            await drive.write_file("/big.bin", data)
            return drive.key.hex()

    key = trio.run(fill)

    def shared_map(path: Path) -> bytes:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) as m:
            return m[:4096]

    with Mount(store, key, tmp_path / "plain"):
        assert shared_map(tmp_path / "plain" / "big.bin") == data[:4096]
    with Mount(store, key, tmp_path / "direct", "--direct-io") as m:
        path = m.mountpoint / "big.bin"
        assert os.stat(path).st_blksize == 4 * MiB
        assert path.read_bytes() == data
        with open(path, "rb") as f:
            for off, size in [(1, 100), (MiB - 3, 70_000), (len(data) - 5, 100)]:
                f.seek(off)
                assert f.read(size) == data[off:off + size]
            with mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as priv:
                assert priv[MiB:MiB + 10] == data[MiB:MiB + 10]
        with pytest.raises(OSError) as e:
            shared_map(path)
        assert e.value.errno == errno.ENODEV
