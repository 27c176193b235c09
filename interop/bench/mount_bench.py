"""``hypernode mount`` (FUSE): a sequential read of a local 64 MiB file through the mount, beside ``cat`` of
the same bytes from a plain folder (target: at least 0.3x), and ``ls -R`` of a drive of 1,000 files
(target: under 0.5 s).

The store is written and closed cleanly before the mount starts, so every feed leaves its verified
record (``hypernode-verified``, see :mod:`hypernode.storage`): the mount's process finds the files as
hypernode left them and reads the blocks without hashing them again. The first read through the mount
("cold") passes every byte through the Python process (the kernel asks 256 KiB at a time and fills its
page cache with the answers); later reads of the unchanged file ("warm") come from the kernel's page
cache, which the mount keeps for a file whose entry has not changed. ``cat`` of the plain file is warm
(the page cache) too. Beside them, hypernode's own read of such a file without FUSE
(``create_read_stream`` in this process, on a store just opened): what a cold read through the mount
could approach, once with the verified record (as the mount reads) and once without it (as after a
crash, or after another program wrote the store: every block is hashed, BLAKE2b). Each figure is the
best of ``--runs``; cold reads use a new file each run.

Last, FUSE alone (``fuse_ceiling.py``): ``cat`` of a file that a pyfuse3 file system answers from memory,
through the page cache as the mount does (the ceiling of a cold read through the mount), and with
``direct_io``, as ``hypernode mount --direct-io`` does (see :mod:`hypernode.mount.fs`). pyfuse3 answers on one
thread, and the kernel fills a page-cache page for every 4 KiB answered: on the 2-core VMs here that
ceiling is about 1.1-1.5 GB/s, 0.15-0.2x of ``cat`` of a plain file.

There is no JS side (hyperdrive 10's FUSE lived in hyperdrive-daemon, which targets older drives).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive
from hypernode.storage import VERIFIED_FILENAME

HYPERNODE = str(Path(sys.executable).parent / "hypernode")
MiB = 1 << 20


async def fill(store: Path, size: int, runs: int, files: int) -> str:
    async with Corestore(store) as cs:
        drive = await Hyperdrive.open(cs)
        block = os.urandom(MiB)
        for r in range(runs + 1):
            async with drive.create_write_stream(f"/big-{r}.bin") as w:
                for _ in range(size // MiB):
                    await w.write(block)
        for i in range(files):
            await drive.write_file(f"/tree/d{i % 10:02d}/f{i:04d}.txt", f"file {i}\n")
        return drive.key.hex()


async def drive_read(store: Path, key: str, path: str, runs: int, *, hashing: bool = False) -> float:
    """The best time of reading ``path`` through the Python API (a store opened afresh each run);
    ``hashing``: with the content feed's verified record removed first, so that every block is hashed."""
    best = float("inf")
    async with Corestore(store) as cs:
        content = await (await Hyperdrive.open(cs, key)).content_feed()
        record = Path(content.directory or "") / VERIFIED_FILENAME
    for _ in range(runs):
        if hashing:
            record.unlink(missing_ok=True)
        async with Corestore(store) as cs:
            drive = await Hyperdrive.open(cs, key)
            t = time.perf_counter()
            async for _chunk in drive.create_read_stream(path):
                pass
            best = min(best, time.perf_counter() - t)
    if hashing:  # a read of every block of the content feed restores its record, for the mount
        async with Corestore(store) as cs:
            content = await (await Hyperdrive.open(cs, key)).content_feed()
            content.read_range_sync(0, content.length)
    return best


def ceiling(size_mib: int, runs: int, direct_io: bool) -> float:
    """The best time of ``cat`` of a file from a FUSE file system answering from memory
    (``fuse_ceiling.py``, in its own process)."""
    cmd = [sys.executable, str(Path(__file__).with_name("fuse_ceiling.py")), "--size-mib", str(size_mib),
           "--runs", str(runs)] + (["--direct-io"] if direct_io else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120).stdout
    return float(json.loads(out)["seconds"])


@contextlib.contextmanager
def mounted(cmd: list[str]) -> Iterator[None]:
    """Run ``hypernode mount`` (``cmd``) while the block runs: from its "mounted" line to SIGINT."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("mounted"):
            err = proc.stderr.read() if proc.stderr else ""
            raise SystemExit(f"{' '.join(cmd[3:])} failed: {line}{err}")
        yield
    finally:
        proc.send_signal(2)
        proc.wait(timeout=30)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="mount-bench-") as tmp:
        root = Path(tmp)
        store, mp, plain = root / "store", root / "mnt", root / "plain.bin"
        key = trio.run(fill, store, size, args.runs, args.files)
        data = os.urandom(MiB) * (size // MiB)
        plain.write_bytes(data)
        del data
        own = trio.run(drive_read, store, key, f"/big-{args.runs}.bin", args.runs)
        own_hashing = trio.run(functools.partial(drive_read, hashing=True), store, key,
                               f"/big-{args.runs}.bin", args.runs)
        mp.mkdir()
        cmd = [HYPERNODE, "--store", str(store), "mount", key, str(mp), "--bootstrap", "none", "--no-local"]
        with mounted(cmd):
            ls_cold = timed(["ls", "-R", str(mp / "tree")])
            ls_warm = min(timed(["ls", "-R", str(mp / "tree")]) for _ in range(args.runs))
            ls_long = min(timed(["ls", "-lR", str(mp / "tree")]) for _ in range(args.runs))
            cold = min(timed(["cat", str(mp / f"big-{r}.bin")]) for r in range(args.runs))
            warm = min(timed(["cat", str(mp / "big-0.bin")]) for _ in range(args.runs))
            timed(["cat", str(plain)])
            base = min(timed(["cat", str(plain)]) for _ in range(args.runs))
        with mounted([*cmd, "--direct-io"]):  # the same store mounted again: no page cache
            direct = min(timed(["cat", str(mp / f"big-{r}.bin")]) for r in range(args.runs))
        fuse = {mode: ceiling(args.size_mib, args.runs, mode == "direct_io")
                for mode in ("page cache", "direct_io")}
        mb = size / 1e6
        print(f"mount bench: {args.size_mib} MiB file, {args.files} files (best of {args.runs})")
        print(f"  cat plain folder      {mb / base:8.0f} MB/s")
        print(f"  drive's own read      {mb / own:8.0f} MB/s   {base / own:5.2f}x  "
              "(create_read_stream; blocks trusted by the verified record)")
        print(f"  drive's own, hashing  {mb / own_hashing:8.0f} MB/s   {base / own_hashing:5.2f}x  "
              "(no verified record: every block hashed)")
        print(f"  cat mount, cold       {mb / cold:8.0f} MB/s   {base / cold:5.2f}x  (target >= 0.3x; "
              f"{own / cold:.2f}x the drive's own read)")
        print(f"  cat mount, warm       {mb / warm:8.0f} MB/s   {base / warm:5.2f}x")
        print(f"  cat mount --direct-io {mb / direct:8.0f} MB/s   {base / direct:5.2f}x  "
              "(every read, first or not: no page cache, no shared mmap)")
        for mode, seconds in fuse.items():
            print(f"  FUSE alone, {mode:10s} {mb / seconds:8.0f} MB/s   {base / seconds:5.2f}x  (pyfuse3 "
                  f"answering from memory{': no warm reads, no shared mmap' if mode == 'direct_io' else ''})")
        print(f"  ls -R {args.files} files, cold  {ls_cold:6.3f} s  (target < 0.5 s)")
        print(f"  ls -R {args.files} files, warm  {ls_warm:6.3f} s")
        print(f"  ls -lR {args.files} files      {ls_long:6.3f} s")


if __name__ == "__main__":
    main()
