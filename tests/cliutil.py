"""Running the real ``hypernode`` console script from tests: one-shot commands, long-running ones read
line by line, and a TCP proxy on loopback that slows or stalls what a peer sends."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HYPERNODE = str(Path(sys.executable).parent / "hypernode")


def run(store: Path | str, *args: str, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    """``hypernode --store STORE ARGS...`` to its end."""
    return subprocess.run([HYPERNODE, "--store", str(store), *args], capture_output=True, text=True,
                          timeout=timeout, **kw)


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one ``hypernode: ...`` line on stderr (returned)."""
    assert out.returncode != 0, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hypernode: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


class Proc:
    """A long-running ``hypernode`` command; its stdout and stderr lines are collected by threads."""

    def __init__(self, store: Path | str, *args: str) -> None:
        self.p = subprocess.Popen([HYPERNODE, "--store", str(store), *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._seen = {"out": 0, "err": 0}  # lines of each stream wait_for has looked at
        self._q: queue.Queue[tuple[str, str | None]] = queue.Queue()
        for name, stream in (("out", self.p.stdout), ("err", self.p.stderr)):
            threading.Thread(target=self._pump, args=(name, stream), daemon=True).start()

    def _pump(self, name: str, stream: Any) -> None:
        for line in stream:
            self._q.put((name, line.rstrip("\n")))
        self._q.put((name, None))

    def _next(self, deadline: float) -> tuple[str, str | None]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise queue.Empty
        name, line = self._q.get(timeout=left)
        if line is not None:
            (self.lines if name == "out" else self.errors).append(line)
        return name, line

    def wait_for(self, prefix: str, timeout: float = 30, stream: str = "out") -> str:
        """The next line of ``stream`` (``out`` or ``err``) that starts with ``prefix``: lines after the
        one the last call on that stream returned, already collected or still to come."""
        deadline = time.monotonic() + timeout
        lines = self.lines if stream == "out" else self.errors
        closed = 0
        try:
            while True:
                while self._seen[stream] < len(lines):
                    line = lines[self._seen[stream]]
                    self._seen[stream] += 1
                    if line.startswith(prefix):
                        return line
                name, line = self._next(deadline)
                if line is None:
                    closed += 1
                    if closed == 2 and self._seen[stream] == len(lines):
                        raise AssertionError(f"exited ({self.p.wait()}) before {prefix!r}: "
                                             f"{self.lines} {self.errors}")
        except queue.Empty:
            raise AssertionError(f"no {stream} line starting with {prefix!r}: {self.lines} "
                                 f"{self.errors}") from None

    def settle(self, prefix: str = "synced", quiet: float = 1.0, timeout: float = 30) -> str:
        """The last of the lines starting with ``prefix`` that come until none has come for ``quiet``
        seconds (a share publishing changes made in one go over more than one scan)."""
        line = self.wait_for(prefix, timeout)
        while True:
            try:
                line = self.wait_for(prefix, quiet)
            except AssertionError:
                return line

    def port(self) -> int:
        return int(self.wait_for("listening on").rsplit(":", 1)[1])

    def drain(self, seconds: float) -> None:
        """Collect what comes in the next ``seconds``."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._next(deadline)
        except queue.Empty:
            pass

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise

    def __enter__(self) -> Proc:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def start_share(store: Path, folder: Path, *args: str) -> tuple[Proc, str, int]:
    """``hypernode share FOLDER`` (scanning every 0.2 s), once its first import is published: the
    process, the drive key and the port."""
    share = Proc(store, "share", str(folder), "--interval", "0.2", *args)
    key = re.search(r" as ([0-9a-f]{64})", share.wait_for("sharing")).group(1)  # type: ignore[union-attr]
    port = share.port()
    share.wait_for("synced")
    return share, key, port


def wait_until(cond: Any, timeout: float = 20, what: str = "") -> None:
    """Wait until ``cond()`` holds; a file it looks at may be missing meanwhile (a live clone replaces
    entries as the share publishes them: a symlink changed by unlink + symlink can be caught between
    the two), which counts as not yet."""
    deadline = time.monotonic() + timeout

    def holds() -> Any:
        try:
            return cond()
        except FileNotFoundError:
            return False

    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {what}")
        time.sleep(0.05)


class SlowProxy:
    """A TCP proxy on loopback to ``127.0.0.1:target``: what the target sends goes on at ``rate``
    bytes a second (None: at once), and after ``stall_after`` bytes in all, no more (the connections
    stay open). What the client sends goes through at once."""

    def __init__(self, target: int, *, rate: float | None = None, stall_after: int | None = None) -> None:
        self.target = target
        self.rate = rate
        self.stall_after = stall_after
        self.sent = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            self._socks += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, throttled: bool) -> None:
        due = time.monotonic()  # when what was sent so far may have left, at ``rate`` (no bursts)
        try:
            while True:
                data = src.recv(16384 if throttled else 65536)
                if not data:
                    break
                if throttled:
                    with self._lock:
                        if self.stall_after is not None:
                            room = max(0, self.stall_after - self.sent)
                            data = data[:room]
                        self.sent += len(data)
                    if not data:
                        while not self._closed:
                            time.sleep(0.1)  # stalled: hold the connection, send nothing
                        return
                    if self.rate:
                        due = max(due, time.monotonic()) + len(data) / self.rate
                        time.sleep(max(0.0, due - time.monotonic()))  # (the clock moves between two reads)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._socks:
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> SlowProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def put(path: Path, data: bytes | str) -> None:
    """Write a file in one step (a temporary file renamed over it), so that a share scanning meanwhile
    sees the old content or the new, never a part."""
    fd, tmp = tempfile.mkstemp()
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, 0o644)
    try:
        os.replace(tmp, path)
    except OSError:  # another filesystem: copy it
        shutil.copyfile(tmp, path)
        os.unlink(tmp)


def fill(folder: Path, files: dict[str, bytes | str]) -> None:
    """Write ``files`` (relative path -> content) under ``folder``."""
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            p.write_text(data)
        else:
            p.write_bytes(data)


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every file (bytes), symlink (``-> target``) and folder (``/``) under ``folder`` by relative path,
    the clone's manifest left out."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = str(full.relative_to(folder))
            if rel == ".hypernode-clone.json":
                continue
            if full.is_symlink():
                out[rel] = "-> " + os.readlink(full)
            elif full.is_dir():
                out[rel] = "/"
            else:
                out[rel] = full.read_bytes()
    return out
