"""What FUSE through pyfuse3 allows on this machine, for ``mount_bench.py``: a file system of nothing but
files answered from memory (no store, no drive), each read once by ``cat``; the best time, as JSON.

``--direct-io`` opens the files with FOPEN_DIRECT_IO: the kernel copies each answer straight into the
reader's buffer instead of its page cache (no warm reads then, and no shared ``mmap`` without
FUSE_DIRECT_IO_ALLOW_MMAP, which libfuse 3.14 cannot ask for), with ``st_blksize`` 4 MiB so that ``cat``
asks 4 MiB at a time. Run in its own process: pyfuse3 holds one FUSE session per process.
"""

from __future__ import annotations

import argparse
import errno
import json
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pyfuse3
import trio

MiB = 1 << 20


class MemoryFS(pyfuse3.Operations):
    def __init__(self, size: int, direct_io: bool) -> None:
        super().__init__()
        self.size = size
        self.direct_io = direct_io
        self.data = memoryview(bytes(range(256)) * (size // 256))

    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = inode
        e.attr_timeout = e.entry_timeout = 60
        if inode == pyfuse3.ROOT_INODE:
            e.st_mode = stat.S_IFDIR | 0o755
        else:
            e.st_mode = stat.S_IFREG | 0o444
            e.st_size = self.size
            e.st_blksize = 4 * MiB if self.direct_io else 128 * 1024
        return e

    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        if not name.startswith(b"f") or not name[1:].isdigit():
            raise pyfuse3.FUSEError(errno.ENOENT)
        return await self.getattr(pyfuse3.ROOT_INODE + 1 + int(name[1:]))

    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        return pyfuse3.FileInfo(fh=inode, direct_io=self.direct_io)

    async def read(self, fh: int, off: int, size: int) -> memoryview:
        return self.data[off:off + size]


async def run(size: int, runs: int, direct_io: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="fuse-ceiling-") as tmp:
        pyfuse3.init(MemoryFS(size, direct_io), tmp, {"fsname=fuse-ceiling", "ro"})
        best = float("inf")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pyfuse3.main)
                for r in range(runs):
                    t = time.perf_counter()
                    await trio.run_process(["cat", str(Path(tmp) / f"f{r}")], stdout=subprocess.DEVNULL)
                    best = min(best, time.perf_counter() - t)
                nursery.cancel_scope.cancel()
        finally:
            pyfuse3.close(unmount=True)
        return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--direct-io", action="store_true")
    args = ap.parse_args()
    print(json.dumps({"seconds": trio.run(run, args.size_mib * MiB, args.runs, args.direct_io)}))


if __name__ == "__main__":
    main()
