"""The ``hypernode`` command, run as users run it (separate processes, real TCP on loopback): the demo,
create/share/serve/clone, the merged ls/cat/stat view, extension messages, one-line errors, and a
clean close on SIGINT/SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "hypernode.cli"]


def run(store: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--store", str(store), *args], capture_output=True, text=True,
                          timeout=timeout)


class Proc:
    """A long-running hypernode command, read line by line."""

    def __init__(self, store: Path, *args: str) -> None:
        self.p = subprocess.Popen([*CLI, "--store", str(store), *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []

    def wait_for(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        assert self.p.stdout is not None
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if not line:
                raise AssertionError(f"exited ({self.p.wait()}): {self.p.stderr.read()}")  # type: ignore[union-attr]
            self.lines.append(line.rstrip("\n"))
            if line.startswith(prefix):
                return line.rstrip("\n")
        raise AssertionError(f"no line starting with {prefix!r} in {self.lines}")

    def port(self) -> int:
        return int(self.wait_for("listening on").rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        self.p.send_signal(sig)
        try:
            _, err = self.p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise
        return self.p.returncode, err


def test_demo_runs(tmp_path):
    out = subprocess.run([*CLI, "demo", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "node B cloned it" in out.stdout and "3 files" in out.stdout
    assert "merged view of both drives" in out.stdout
    assert "/from-b.txt" in out.stdout and "/docs/notes.md" in out.stdout and "/docs/todo.md" in out.stdout
    assert "sees /live.txt live" in out.stdout
    assert (tmp_path / "clone" / "docs" / "notes.md").read_text() == "# notes\nshared by node A\n"


def test_share_then_clone_then_follow_changes(tmp_path):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.bin").write_bytes(os.urandom(700_000))
    (folder / "empty-dir").mkdir()
    share = Proc(tmp_path / "store-a", "share", str(folder), "--interval", "0.2")
    try:
        key = share.wait_for("sharing").split()[-1]
        port = share.port()
        share.wait_for("synced")
        clone_dir = tmp_path / "clone"
        out = run(tmp_path / "store-b", "clone", key, str(clone_dir), "--peer", f"127.0.0.1:{port}")
        assert out.returncode == 0, out.stderr
        assert "cloned" in out.stdout and "progress" in out.stdout or "cloned" in out.stdout
        assert (clone_dir / "a.txt").read_text() == "alpha"
        assert (clone_dir / "sub" / "b.bin").read_bytes() == (folder / "sub" / "b.bin").read_bytes()
        assert (clone_dir / "empty-dir").is_dir()

        # the share follows the folder: add, modify, delete
        live = Proc(tmp_path / "store-c", "clone", key, str(tmp_path / "live"), "--peer",
                    f"127.0.0.1:{port}", "--live")
        try:
            live.wait_for("cloned")
            (folder / "new.txt").write_text("new")
            (folder / "a.txt").write_text("alpha, changed")
            (folder / "sub" / "b.bin").unlink()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                live_dir = tmp_path / "live"
                if ((live_dir / "new.txt").exists() and not (live_dir / "sub" / "b.bin").exists()
                        and (live_dir / "a.txt").read_text() == "alpha, changed"):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError(f"the live clone did not follow: {live.lines}")
        finally:
            live.stop()
    finally:
        code, err = share.stop()
    assert code == 130 and "Traceback" not in err  # 128 + SIGINT, after a clean close


def test_serve_and_merged_ls_cat_stat(tmp_path):
    store = tmp_path / "store"
    keys = [run(store, "create").stdout.strip() for _ in range(2)]
    assert all(len(k) == 64 for k in keys)
    # fill both drives through the Python API of the same store, then serve it
    import trio

    from hypernode.node import Node

    async def fill() -> None:
        async with Node(store, port=None) as node:
            a, b = node.drives[bytes.fromhex(keys[0])], node.drives[bytes.fromhex(keys[1])]
            await a.write_file("/readme.md", "from a", ctime=1000)
            await b.write_file("/readme.md", "from b", ctime=2000)
            await b.write_file("/only-b/x.txt", "x")

    trio.run(fill)
    server = Proc(store, "serve")
    try:
        port = server.port()
        served = [server.wait_for("serving"), server.wait_for("serving")]
        assert {line.split()[1] for line in served} == set(keys)
        peer = ["--peer", f"127.0.0.1:{port}"]
        other = tmp_path / "reader"
        both = ",".join(keys)
        out = run(other, "ls", both, "/", *peer)
        assert out.returncode == 0, out.stderr
        assert sorted(out.stdout.split()) == ["only-b/", "readme.md"]
        out = run(other, "cat", both, "/readme.md", *peer)
        assert out.stdout == "from b"
        out = run(other, "stat", both, "/readme.md", *peer)
        info = json.loads(out.stdout)
        assert info["drive"] == keys[1] and info["type"] == "file" and info["size"] == 6
        out = run(other, "ls", keys[0], "/", "-l", *peer)
        assert out.stdout.split()[-1] == "readme.md" and keys[0][:8] in out.stdout
    finally:
        code, err = server.stop(signal.SIGTERM)
    assert code == 143, err  # 128 + SIGTERM


def test_extension_messages_between_two_nodes(tmp_path):
    store = tmp_path / "a"
    key = run(store, "create").stdout.strip()
    listener = Proc(store, "ext", "listen", key, "chat", "--port", "0")
    try:
        port = listener.port()
        listener.wait_for("waiting for")
        out = run(tmp_path / "b", "ext", "send", key, "chat", "hello over the wire",
                  "--peer", f"127.0.0.1:{port}", "--timeout", "20")
        assert out.returncode == 0, out.stderr
        assert "sent to 1 peer" in out.stdout
        line = listener.wait_for("", timeout=20)
        assert line.endswith(": hello over the wire")
    finally:
        listener.stop()


def test_errors_are_one_line(tmp_path):
    def check(out: subprocess.CompletedProcess[str], needle: str) -> None:
        assert out.returncode != 0
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert needle in out.stderr, out.stderr

    check(run(tmp_path, "clone", "not-a-key", str(tmp_path / "x")), "not a drive key")
    check(run(tmp_path, "nonsense"), "invalid choice")
    check(run(tmp_path, "clone", "ab" * 32, str(tmp_path / "x"), "--peer", "nohostport"), "HOST:PORT")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    check(run(tmp_path, "clone", "ab" * 32, str(tmp_path / "x"), "--peer", f"127.0.0.1:{dead}",
              "--timeout", "2"), f"cannot reach 127.0.0.1:{dead}: connection refused")
    key = run(tmp_path, "create").stdout.strip()
    check(run(tmp_path, "cat", key, "/missing.txt"), "No such file")
    check(run(tmp_path, "ls", "cd" * 32, "/"), "has no data here")
    check(run(tmp_path, "share", str(tmp_path / "no-such-folder")), "not a folder")
    with socket.socket() as s:  # a port in use
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        check(run(tmp_path, "serve", "--port", str(busy)), "in use")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_close_cleanly_and_lose_nothing(tmp_path, sig):
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(20):
        (folder / f"f{i}.txt").write_text(f"file {i}")
    share = Proc(tmp_path / "store", "share", str(folder))
    key = share.wait_for("sharing").split()[-1]
    share.wait_for("synced")
    code, err = share.stop(sig)
    assert code == 128 + sig and "Traceback" not in err, err
    out = run(tmp_path / "store", "ls", key, "/")
    assert sorted(out.stdout.split()) == sorted(f"f{i}.txt" for i in range(20))
    assert run(tmp_path / "store", "cat", key, "/f7.txt").stdout == "file 7"
