"""Running a JS script from interop/js as a trio subprocess that prints JSON lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import trio

INTEROP = Path(__file__).resolve().parent


class JSProcess:
    """``async with JSProcess("script.js", *args) as js:`` then ``await js.next_event()``."""

    def __init__(self, script: str, *args: str) -> None:
        self.args = ["node", str(INTEROP / "js" / script), *map(str, args)]
        self.events: list[dict[str, Any]] = []
        self._buf = b""
        self.proc: trio.Process | None = None

    async def __aenter__(self) -> JSProcess:
        self.proc = await trio.lowlevel.open_process(self.args, cwd=INTEROP, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE, stdin=subprocess.PIPE)
        return self

    async def command(self, answer: str, **cmd: Any) -> dict[str, Any]:
        """Send a JSON command on stdin and wait for the event named ``answer``."""
        assert self.proc is not None and self.proc.stdin is not None
        await self.proc.stdin.send_all(json.dumps(cmd).encode() + b"\n")
        while True:
            ev = await self.next_event()
            if ev is None:
                raise AssertionError(f"JS exited during {cmd}: {self.events[-5:]}")
            if ev.get("event") == "error":
                raise AssertionError(f"JS failed {cmd}: {ev}")
            if ev.get("event") == answer:
                return ev

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
        with trio.CancelScope(shield=True):
            await self.proc.wait()
            if self.proc.stdin:
                await self.proc.stdin.aclose()
            if self.proc.stdout:
                await self.proc.stdout.aclose()
            if self.proc.stderr:
                await self.proc.stderr.aclose()

    async def next_event(self) -> dict[str, Any] | None:
        assert self.proc is not None and self.proc.stdout is not None
        while b"\n" not in self._buf:
            chunk = await self.proc.stdout.receive_some(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        ev = json.loads(line)
        self.events.append(ev)
        return ev

    async def wait_for(self, name: str) -> dict[str, Any]:
        while True:
            ev = await self.next_event()
            if ev is None:
                err = b""
                if self.proc and self.proc.stderr:
                    err = await self.proc.stderr.receive_some(65536)
                raise AssertionError(f"JS exited before {name!r}: {self.events} {err.decode()}")
            if ev.get("event") == name:
                return ev

    async def collect_until(self, done: Any) -> None:
        while not done(self.events):
            if await self.next_event() is None:
                raise AssertionError(f"JS exited early: {self.events}")
