"""Gateway benchmark: ``curl`` of a 64 MiB file through ``hypernode gateway`` (MB/s) beside hypernode's
own ``read_file`` of it from the same store (target: the gateway at 0.5x or better), then 100 concurrent
small GETs (1 KiB files), repeated: requests a second and p99 latency.

    .venv/bin/python interop/bench/gateway_bench.py [--mib 64] [--rounds 10]

Both reads verify every block against the tree (the store was written by another process, so each
block is hashed as it is read). The gateway runs as the real console script in its own process; the
small GETs come from one trio process holding 100 connections at once (each request on a fresh
connection, as independent browsers would).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from hypernode.node import Node

HYPERNODE = str(Path(sys.executable).with_name("hypernode"))


async def make_store(store: Path, mib: int) -> str:
    async with Node(store, port=None) as node:
        drive = await node.create_drive()
        async with drive.create_write_stream("/big.bin") as w:
            for _ in range(mib):
                await w.write(os.urandom(1 << 20))
        for i in range(100):
            await drive.write_file(f"/small/{i}.txt", os.urandom(1024))
        return drive.key.hex()


async def own_read(store: Path, key: str, runs: int) -> float:
    best = 0.0
    for _ in range(runs):
        async with Node(store, port=None) as node:  # a fresh open: blocks verified as they are read
            drive = await node.open_drive(key)
            t = time.perf_counter()
            data = await drive.read_file("/big.bin")
            best = max(best, len(data) / (time.perf_counter() - t) / 1e6)
    return best


def curl(url: str) -> float:
    command = ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]) / 1e6


async def small_gets(port: int, key: str, rounds: int, concurrency: int = 100) -> tuple[float, float, int]:
    latencies: list[float] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        t = time.perf_counter()
        try:
            async with await trio.open_tcp_stream("127.0.0.1", port) as s:
                await s.send_all(f"GET /hyper/{key}/small/{i}.txt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                                 f"Connection: close\r\n\r\n".encode())
                data = b""
                while chunk := await s.receive_some(65536):
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200 ") or len(data) < 1024:
                errors += 1
        except OSError:
            errors += 1
        latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    for _ in range(rounds):
        async with trio.open_nursery() as nursery:
            for i in range(concurrency):
                nursery.start_soon(one, i)
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, p99 * 1000, errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        store = Path(tmp) / "store"
        key = trio.run(make_store, store, args.mib)
        own = trio.run(own_read, store, key, args.runs)
        command = [HYPERNODE, "--store", str(store), "gateway", "--port", "0", "--bootstrap", "none",
                   "--no-local"]
        gw = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert gw.stdout is not None
            url = gw.stdout.readline().split(" ", 2)[2].strip()
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            speeds = [curl(f"{url}hyper/{key}/big.bin") for _ in range(args.runs)]
            rps, p99, errors = trio.run(small_gets, port, key, args.rounds)
        finally:
            gw.terminate()
            gw.wait(timeout=20)
    best = max(speeds)
    runs = ", ".join(f"{s:.0f}" for s in speeds)
    print(f"gateway: curl of a {args.mib} MiB file {best:.0f} MB/s (runs {runs}); read_file {own:.0f} MB/s; "
          f"ratio {best / own:.2f}x (target >= 0.5x)")
    print(f"gateway: {args.rounds} x 100 concurrent GETs of 1 KiB files: {rps:.0f} requests/s, "
          f"p99 {p99:.1f} ms, {errors} errors")


if __name__ == "__main__":
    main()
