"""How ``hypernode clone`` transfers: only the current version's blocks unless ``--history`` (issue 15,
point 8); ``--timeout`` limits waiting for the next block, not the whole clone (point 5); Ctrl-C and
SIGTERM end the progress line, say how to resume, and leave a clone the same command finishes
(point 1). The real command in a subprocess, over loopback TCP (through a slowing proxy where a test
needs a slow peer)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive
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

BLOCK = 512 * 1024  # share writes files in blocks of 512 KiB


def clone(store: Path, key: str, folder: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return run(store, "clone", key, str(folder), "--peer", f"127.0.0.1:{port}", *args)


async def content_blocks(store: Path, key: str) -> tuple[int, int]:
    """(blocks stored, length) of the content feed of drive ``key`` in ``store``."""
    async with Corestore(store) as s:
        drive = await Hyperdrive.open(s, bytes.fromhex(key))
        content = await drive.content_feed()
        return content.downloaded(), content.length


def store_bytes(store: Path) -> int:
    """What the store takes on disk (as du counts: a data file's holes take nothing)."""
    return sum(p.stat().st_blocks * 512 for p in store.rglob("*") if p.is_file())


async def test_a_clone_fetches_only_the_current_version_unless_history(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, {"big.bin": os.urandom(3 * BLOCK), "small.txt": "small"})
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share:
        put(shared / "big.bin", os.urandom(3 * BLOCK))  # the old version stays in the feed
        share.wait_for("synced: 1 written")

        out = clone(tmp_path / "store-b", key, tmp_path / "current", port)
        assert out.returncode == 0, out.stderr
        assert tree(tmp_path / "current") == tree(shared)
        stored, length = await content_blocks(tmp_path / "store-b", key)
        assert (stored, length) == (4, 7)  # the new big.bin and small.txt, of 3 + 3 + 1 blocks
        assert store_bytes(tmp_path / "store-b") < 4 * BLOCK

        out = clone(tmp_path / "store-c", key, tmp_path / "history", port, "--history")
        assert out.returncode == 0, out.stderr
        assert await content_blocks(tmp_path / "store-c", key) == (7, 7)
        assert store_bytes(tmp_path / "store-c") > 6 * BLOCK

        # following live fetches what each new version needs, nothing older
        with Proc(tmp_path / "store-d", "clone", key, str(tmp_path / "live"), "--peer",
                  f"127.0.0.1:{port}", "--live") as live:
            live.wait_for("cloned")
            new = os.urandom(3 * BLOCK)
            put(shared / "big.bin", new)
            wait_until(lambda: (tmp_path / "live" / "big.bin").read_bytes() == new,
                       what=f"the live clone to follow: {live.lines}")
        assert await content_blocks(tmp_path / "store-d", key) == (7, 10)


def test_timeout_is_how_long_nothing_arrives_not_the_whole_clone(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, {f"f{i:02}.bin": os.urandom(100_000) for i in range(20)})
    share, key, port = start_share(tmp_path / "store-a", shared)
    with share:
        with SlowProxy(port, rate=800_000) as slow:  # 2 MB: about 2.5 s, a block every 0.13 s
            started = time.monotonic()
            out = clone(tmp_path / "store-b", key, tmp_path / "slow", slow.port, "--timeout", "1")
            took = time.monotonic() - started
        assert out.returncode == 0, out.stderr
        assert took > 2, f"the proxy did not slow the clone down ({took:.1f} s)"
        assert tree(tmp_path / "slow") == tree(shared)

        with SlowProxy(port, stall_after=600_000) as stalled:  # the peer stops sending mid-clone
            started = time.monotonic()
            out = clone(tmp_path / "store-c", key, tmp_path / "stalled", stalled.port, "--timeout", "1")
            took = time.monotonic() - started
        line = one_line_error(out)
        assert "no data arrived for 1 s" in line and "resumes" in line, line
        assert took < 30
        files = list((tmp_path / "stalled").glob("f*.bin"))
        assert 0 < len(files) < 20
        out = clone(tmp_path / "store-c", key, tmp_path / "stalled", port)  # resumed, as it says
        assert out.returncode == 0, out.stderr
        assert tree(tmp_path / "stalled") == tree(shared)


def _interrupt_on_a_terminal(store: Path, key: str, folder: Path, port: int, sig: int) -> tuple[int, str]:
    """Run the clone with its stdout and stderr on a pseudo-terminal, send ``sig`` once the bar shows
    two files done, and return the exit code and all it wrote (CRLF made LF)."""
    main, sub = pty.openpty()
    p = subprocess.Popen([HYPERNODE, "--store", str(store), "clone", key, str(folder), "--peer",
                          f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL, stdout=sub, stderr=sub)
    os.close(sub)
    data = b""
    sent = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: every writer of the terminal has closed it
                    break
                if not chunk:
                    break
                data += chunk
            if not sent and len(list(folder.glob("f*.bin"))) >= 2 and b"files" in data:
                p.send_signal(sig)
                sent = True
    finally:
        os.close(main)
        if p.poll() is None and time.monotonic() >= deadline:
            p.kill()
    assert sent, f"the clone ended before it was interrupted: {data!r}"
    return p.wait(timeout=20), data.decode(errors="replace").replace("\r\n", "\n")


def _interrupted_cleanly(text: str) -> None:
    assert "\r[" in text, text  # a bar was drawn
    assert "Traceback" not in text
    for line in text.split("\n"):  # every message starts a line of its own: none glued to the bar
        for word in ("interrupted", "hypernode:"):
            if word in line:
                assert line.startswith(word), f"{line!r} in {text!r}"
    assert "interrupted after" in text and "the same command resumes" in text


def test_ctrl_c_on_a_terminal_ends_the_bar_and_the_same_command_resumes(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, {f"f{i:02}.bin": os.urandom(100_000) for i in range(20)})
    share, key, port = start_share(tmp_path / "store-a", shared)
    target = tmp_path / "clone"
    with share, SlowProxy(port, rate=300_000) as slow:
        code, text = _interrupt_on_a_terminal(tmp_path / "store-b", key, target, slow.port, signal.SIGINT)
        _interrupted_cleanly(text)
        assert code == 130, text
        assert len(list(target.glob("f*.bin"))) < 20
        assert not list(target.glob(".*.hypernode-tmp"))
        out = clone(tmp_path / "store-b", key, target, port)
        assert out.returncode == 0, out.stderr
        assert "continuing the clone" in out.stdout
    assert tree(target) == tree(shared)


def test_sigterm_without_a_terminal_ends_cleanly_and_the_same_command_resumes(tmp_path):
    shared = tmp_path / "shared"
    fill(shared, {f"f{i:02}.bin": os.urandom(100_000) for i in range(20)})
    share, key, port = start_share(tmp_path / "store-a", shared)
    target = tmp_path / "clone"
    with share, SlowProxy(port, rate=300_000) as slow:
        p = Proc(tmp_path / "store-b", "clone", key, str(target), "--peer", f"127.0.0.1:{slow.port}")
        with p:
            p.wait_for("progress:")
            p.p.send_signal(signal.SIGTERM)
            p.wait_for("interrupted after")
            assert p.p.wait(timeout=20) == 143
            p.drain(0.5)
        assert not any(line.startswith("cloned") for line in p.lines)
        assert "Traceback" not in "\n".join(p.errors)
        assert not list(target.glob(".*.hypernode-tmp"))
        out = clone(tmp_path / "store-b", key, target, port)
        assert out.returncode == 0, out.stderr
    assert tree(target) == tree(shared)
