"""Running the real ``hypernode`` console script (installed in the venv, next to ``sys.executable``) as a
user runs it: one-shot commands to their end, and long-running ones read line by line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HYPERNODE = str(Path(sys.executable).with_name("hypernode"))  # not resolved: the venv's bin/, not python's


def hypernode(*args: str | os.PathLike[str], store: Path | None = None, timeout: float = 60,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``hypernode [--store STORE] ARGS...`` run to its end."""
    cmd = [HYPERNODE, *(["--store", str(store)] if store is not None else []), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=None if env is None else {**os.environ, **env})


def one_line_error(out: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command wrote on stderr (asserting there is exactly one, no traceback,
    and nothing on stdout)."""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout == "", out.stdout
    return lines[0]


class Running:
    """A long-running ``hypernode`` command, its stdout read line by line."""

    def __init__(self, *args: str | os.PathLike[str], store: Path | None = None) -> None:
        cmd = [HYPERNODE, *(["--store", str(store)] if store is not None else []), *map(str, args)]
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        """Send ``sig``; the exit code and stderr once it has exited."""
        self.p.send_signal(sig)
        try:
            _, err = self.p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.communicate()
            raise
        return self.p.returncode, err

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate()
