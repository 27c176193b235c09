"""Running ``hypernode mount`` in tests: skip where FUSE cannot work (fail in CI, which has it), and a
mount that is always taken away at the end, even when its process was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.clitools import Running


def need_fuse() -> None:
    """Skip the test, with the reason, where FUSE cannot work; in CI (CI=true) fail instead."""
    from hypernode.mount import MountError, check_fuse

    try:
        check_fuse()
    except MountError as e:
        if os.environ.get("CI"):
            pytest.fail(f"FUSE must work in CI: {e}")
        pytest.skip(f"FUSE cannot work here: {e}")


def is_mounted(path: Path) -> bool:
    target = os.path.abspath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == target for line in f)


class Mount:
    """``with Mount(store, "KEY", mountpoint, "--peer", ...) as m:`` runs ``hypernode mount`` until
    the block ends (SIGINT; ``m.stop()`` to see the exit code), waiting for its "mounted" line."""

    def __init__(self, store: Path, keys: str, mountpoint: Path, *args: str) -> None:
        self.mountpoint = mountpoint
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.cmd = ("mount", keys, str(mountpoint), "--bootstrap", "none", "--no-local", "--timeout", "5",
                    *args)
        self.store = store
        self.run: Running | None = None

    def __enter__(self) -> Mount:
        self.run = Running(*self.cmd, store=self.store)
        try:
            self.line = self.run.wait_for("mounted", timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        assert self.run is not None
        code, err = self.run.stop(sig)
        return code, err

    def __exit__(self, *exc: object) -> None:
        try:
            if self.run is not None and self.run.p.poll() is None:
                self.run.stop()
        finally:
            if self.run is not None and self.run.p.poll() is None:
                self.run.p.kill()
                self.run.p.wait()
            for _ in range(50):  # a killed mount leaves a dead one behind: take it away
                if not is_mounted(self.mountpoint):
                    break
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True)
                time.sleep(0.1)
