"""Running the ``hypernode`` command from trio tests: a long-running one read line by line, and a
one-shot one run to the end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio

CLI = [sys.executable, "-m", "hypernode.cli"]


class CLIProcess:
    """``async with CLIProcess(store, "serve") as p:`` then ``await p.line("listening on")``. Leaving the
    block sends SIGINT (a clean close), then kills the process if it has not exited within 10 s."""

    def __init__(self, store: Path, *args: str) -> None:
        self.args = [*CLI, "--store", str(store), *args]
        self.lines: list[str] = []
        self._buf = b""

    async def __aenter__(self) -> CLIProcess:
        self.proc = await trio.lowlevel.open_process(self.args, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE)
        return self

    async def line(self, prefix: str = "") -> str:
        """The next line of output that starts with ``prefix`` (earlier ones are kept in ``lines``)."""
        while True:
            while b"\n" not in self._buf:
                chunk = await self.proc.stdout.receive_some(65536)  # type: ignore[union-attr]
                if not chunk:
                    err = await self.proc.stderr.receive_some(65536)  # type: ignore[union-attr]
                    raise AssertionError(f"hypernode exited: {self.lines} {err.decode()}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\n", 1)
            self.lines.append(raw.decode())
            if self.lines[-1].startswith(prefix):
                return self.lines[-1]

    async def stop(self) -> int:
        """SIGINT, and the exit code once the process has closed."""
        self.proc.send_signal(2)
        with trio.fail_after(20):
            return await self.proc.wait()

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(2)
            with trio.move_on_after(10) as cs:
                cs.shield = True
                await self.proc.wait()
            if self.proc.returncode is None:
                self.proc.kill()
        with trio.CancelScope(shield=True):
            await self.proc.wait()
            for s in (self.proc.stdout, self.proc.stderr):
                if s is not None:
                    await s.aclose()


async def run_cli(store: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a ``hypernode`` command to its end (in a thread, so the trio test goes on meanwhile)."""
    return await trio.to_thread.run_sync(lambda: subprocess.run(
        [*CLI, "--store", str(store), *args], capture_output=True, text=True, timeout=timeout))
