"""Python side of drive_bench.py: hypernode's Hyperdrive on its Corestore, one role per process.

    drive_py.py local DIR|memory SPEC_JSON  -> {bigWrite, bigRead, bigReadReopened, smallWrite, smallRead}
                                               seconds (bigReadReopened: null on memory)
    drive_py.py serve DIR SPEC_JSON         -> {key, port, version}, then serves until killed
    drive_py.py clone DIR KEY PORT VERSION  -> {seconds, files, bytes, sha256, contentBlocks, contentLocal}

SPEC = {bigSize, smallCount, smallSize}; the content is the same as drive_bench.js writes:
``/big.bin`` (chunk i of 64 KiB = sha256('drive-bench:' + i) repeated) and ``/small/NNNN.bin``
(sha256('small:' + n) repeated to smallSize bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from hypernode.corestore import Corestore  # noqa: E402
from hypernode.drive import Hyperdrive  # noqa: E402
from hypernode.replication import replicator_of  # noqa: E402
from hypernode.replication.server import open_replication_server  # noqa: E402


def repeat(seed: str, size: int) -> bytes:
    h = hashlib.sha256(seed.encode()).digest()
    return (h * (size // 32 + 1))[:size]


def big_file(size: int) -> bytes:
    return b"".join(repeat(f"drive-bench:{i}", 65536) for i in range(0, (size + 65535) // 65536))[:size]


def small_path(n: int) -> str:
    return f"/small/{n:04d}.bin"


def small_file(n: int, size: int) -> bytes:
    return repeat(f"small:{n}", size)


def expected_digest(spec: dict) -> tuple[int, int, str]:
    """(files, bytes, sha256) of the drive's content, as a reader's ``clone`` reports it."""
    files = {"/big.bin": big_file(spec["bigSize"])}
    files.update({small_path(n): small_file(n, spec["smallSize"]) for n in range(spec["smallCount"])})
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode() + b"\0")
        h.update(files[path])
    return len(files), sum(map(len, files.values())), h.hexdigest()


def debug(stage: str, t0: float) -> None:
    if os.environ.get("DRIVE_BENCH_DEBUG"):
        print(f"{stage} {time.perf_counter() - t0:.3f}", file=sys.stderr, flush=True)


def open_store(directory: str) -> Corestore:
    return Corestore(None if directory == "memory" else directory)


async def local(directory: str, spec: dict) -> dict:
    big = big_file(spec["bigSize"])
    smalls = [small_file(n, spec["smallSize"]) for n in range(spec["smallCount"])]
    async with open_store(directory) as store:
        a = await Hyperdrive.open(store, name="big")
        t = time.perf_counter()
        await a.write_file("/big.bin", big)
        big_write = time.perf_counter() - t
        t = time.perf_counter()
        back = await a.read_file("/big.bin")
        big_read = time.perf_counter() - t
        assert back == big, "/big.bin read back differs"

        b = await Hyperdrive.open(store, name="small")
        t = time.perf_counter()
        for n, data in enumerate(smalls):
            await b.write_file(small_path(n), data)
        small_write = time.perf_counter() - t
        t = time.perf_counter()
        for n in range(len(smalls)):
            assert len(await b.read_file(small_path(n))) == spec["smallSize"], small_path(n)
        small_read = time.perf_counter() - t
        key = a.key
    reopened = None
    if directory != "memory":  # blocks stored before the feed was opened are hashed on every read
        async with open_store(directory) as store:
            a = await Hyperdrive.open(store, key)
            t = time.perf_counter()
            back = await a.read_file("/big.bin")
            reopened = time.perf_counter() - t
            assert back == big, "/big.bin read back differs after reopening"
    return {"bigWrite": big_write, "bigRead": big_read, "bigReadReopened": reopened,
            "smallWrite": small_write, "smallRead": small_read}


async def serve(directory: str, spec: dict) -> None:
    async with open_store(directory) as store, open_replication_server(store) as store_net:
        drive = await Hyperdrive.open(store, name="bench")
        await drive.write_file("/big.bin", big_file(spec["bigSize"]))
        for n in range(spec["smallCount"]):
            await drive.write_file(small_path(n), small_file(n, spec["smallSize"]))
        port = await store_net.listen("127.0.0.1", 0)
        print(json.dumps({"key": drive.key.hex(), "port": port, "version": drive.version}), flush=True)
        await trio.sleep_forever()


async def clone(directory: str, key: str, port: int, version: int) -> None:
    async with open_store(directory) as store, \
            open_replication_server(store) as store_net:  # full replication (the Corestore default)
        drive = await Hyperdrive.open(store, key)
        t0 = time.perf_counter()
        await store_net.connect("127.0.0.1", port)
        await drive.update(version)
        debug("version", t0)
        # the whole trie, as the JS reader does
        await replicator_of(drive.metadata).download(0, drive.metadata.length)
        debug("metadata local", t0)
        await drive.download("/")
        debug("downloaded", t0)
        seconds = time.perf_counter() - t0

        content = await drive.content_feed()
        content_local = content.downloaded()
        paths = sorted(["/" + n for n in await drive.readdir("/") if n != "small"]
                       + ["/small/" + n for n in await drive.readdir("/small")])
        h = hashlib.sha256()
        total = 0
        for path in paths:
            data = await drive.read_file(path)
            h.update(path.encode() + b"\0")
            h.update(data)
            total += len(data)
        print(json.dumps({"seconds": seconds, "files": len(paths), "bytes": total, "sha256": h.hexdigest(),
                          "contentBlocks": content.length, "contentLocal": content_local}), flush=True)


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    if role == "local":
        print(json.dumps(trio.run(local, args[0], json.loads(args[1]))), flush=True)
    elif role == "serve":
        trio.run(serve, args[0], json.loads(args[1]))
    elif role == "clone":
        trio.run(clone, args[0], args[1], int(args[2]), int(args[3]))
    else:
        raise SystemExit(f"unknown role {role}")
