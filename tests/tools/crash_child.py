"""A process for the crash tests, killed with SIGKILL at a random moment. It prints ``ready`` once its
store is open, then, for each operation, ``begin <op>`` before it and ``ack <op>`` after it returned:
what was acknowledged must survive the kill.

``drive DIR N``: writes (and every fourth op, overwrites) files of a drive, op numbers from N;
``tombstone DIR N``: deletes and rewrites, through a MultiDrive, files that another drive holds;
``download DIR PORT KEY``: a replica of a feed filled from 127.0.0.1:PORT, range by range.
"""

from __future__ import annotations

import hashlib
import sys

import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive
from hypernode.multi import MultiDrive
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server

TOMBSTONE_FILES = 12


def content(n: int) -> bytes:
    """Op ``n``'s file bytes: 0 to 150 KiB, and one in sixteen 512 to 700 KiB (two content blocks)."""
    seed = hashlib.sha256(n.to_bytes(8, "big")).digest()
    size = (seed[0] * 600 + seed[1]) if seed[2] % 3 else seed[3]
    if seed[4] % 16 == 0:
        size += 512 * 1024
    return (seed * (size // 32 + 1))[:size]


def drive_op(n: int) -> tuple[str, int]:
    """Op ``n`` of the drive mode: (path, content number); every fourth rewrites an earlier file."""
    if n % 4 == 3:
        return f"/d{(n - 3) % 5}/f{n - 3}", n
    return f"/d{n % 5}/f{n}", n


def tombstone_op(n: int) -> tuple[str, str]:
    """Op ``n`` of the tombstone mode: (path, "unlink" | "write")."""
    path = f"/o/f{n % TOMBSTONE_FILES}"
    return path, "unlink" if (n // TOMBSTONE_FILES) % 2 == 0 else "write"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def run_drive(directory: str, n: int) -> None:
    async with Corestore(directory) as store:
        drive = await Hyperdrive.open(store, name="crash")
        say("ready")
        while True:
            path, c = drive_op(n)
            say(f"begin {n}")
            await drive.write_file(path, content(c))
            say(f"ack {n}")
            n += 1


async def open_tombstone_view(store: Corestore) -> MultiDrive:
    writer = await Hyperdrive.open(store, name="writer")
    other = await Hyperdrive.open(store, name="other")
    multi = MultiDrive(writer)  # the writer is the first writable drive added: tombstones go there
    await multi.add_drive(other)
    return multi


async def run_tombstone(directory: str, n: int) -> None:
    async with Corestore(directory) as store:
        multi = await open_tombstone_view(store)
        say("ready")
        while True:
            path, op = tombstone_op(n)
            say(f"begin {n}")
            if op == "unlink":
                if await multi.exists(path):  # (a rewrite killed before it landed left it deleted)
                    await multi.unlink(path)
            else:
                await multi.write_file(path, content(n))
            say(f"ack {n}")
            n += 1


async def run_download(directory: str, port: int, key: bytes) -> None:
    async with Corestore(directory) as store, open_replication_server(store) as store_net:
        feed = await store.get(key)
        say("ready")
        await store_net.connect("127.0.0.1", port)
        await replicator_of(feed).update(1)
        step = 64
        start = 0
        while True:
            # ask for the first range not fully here, and acknowledge it once download() returns
            feed.flush()  # blocks the background download stored are on disk before we say so
            while start < feed.length and feed.downloaded(start, min(start + step, feed.length)) == \
                    min(start + step, feed.length) - start:
                say(f"ack {start} {min(start + step, feed.length)}")
                start += step
            if start >= feed.length:
                say("done")
                await trio.sleep_forever()
            end = min(start + step, feed.length)
            say(f"begin {start} {end}")
            await replicator_of(feed).download(start, end)
            say(f"ack {start} {end}")
            start = end


if __name__ == "__main__":
    mode, directory = sys.argv[1], sys.argv[2]
    if mode == "drive":
        trio.run(run_drive, directory, int(sys.argv[3]))
    elif mode == "tombstone":
        trio.run(run_tombstone, directory, int(sys.argv[3]))
    elif mode == "download":
        trio.run(run_download, directory, int(sys.argv[3]), bytes.fromhex(sys.argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode}")
