"""``hypernode clone`` (a sparse node: the current version's blocks only) against ``hypernode clone
--history`` (every block of the drive, as every clone did before): time, and the bytes the clone's store
takes on disk, for a drive of many small files and for a drive whose big file was overwritten once;
over loopback directly and through a proxy that delays each direction by ``--latency-ms``.

There is no JS side (hyperdrive 10 has no clone command): the ratio is to ``--history``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import trio

from hypernode.node import Node

HYPERNODE = str(Path(sys.executable).parent / "hypernode")
QUIET = ["--bootstrap", "none", "--no-local"]


class LatencyProxy:
    """TCP on loopback to ``target``, each chunk delivered ``delay`` seconds after it was received."""

    def __init__(self, target: int, delay: float) -> None:
        self.target, self.delay = target, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, server), (server, client)):
                q: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(a, q), daemon=True).start()
                threading.Thread(target=self._write, args=(b, q), daemon=True).start()

    def _read(self, a: socket.socket, q: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            q.put((time.monotonic() + self.delay, data))
            if not data:
                return

    def _write(self, b: socket.socket, q: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            due, data = q.get()
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                if not data:
                    b.shutdown(socket.SHUT_WR)
                    return
                b.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()


async def make_drives(store: Path, files: int, file_size: int, big: int) -> tuple[str, str]:
    async with Node(store, port=None) as node:
        small = await node.create_drive()
        for i in range(files):
            await small.write_file(f"/d{i % 20}/f{i:05}.bin", os.urandom(file_size))
        history = await node.create_drive()
        await history.write_file("/big.bin", os.urandom(big))
        await history.write_file("/big.bin", os.urandom(big))  # the first version stays in the feed
        return small.key.hex(), history.key.hex()


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def clone(root: Path, key: str, port: int, *args: str) -> tuple[float, int]:
    n = len(list(root.glob("c*")))
    store, out = root / f"c{n}", root / f"o{n}"
    start = time.monotonic()
    done = subprocess.run([HYPERNODE, "--store", str(store), "clone", key, str(out), "--peer",
                           f"127.0.0.1:{port}", "--timeout", "600", *QUIET, *args],
                          capture_output=True, text=True, timeout=1800)
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"clone failed: {done.stderr.strip()}")
    return took, disk_bytes(store)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--file-kib", type=int, default=4)
    ap.add_argument("--big-mib", type=int, default=32)
    ap.add_argument("--latency-ms", type=float, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="200 files, a 2 MiB file, 5 ms")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.files, args.big_mib, args.latency_ms = 200, 2, 5

    results = []
    with tempfile.TemporaryDirectory(prefix="hypernode-clone-bench-") as tmp:
        root = Path(tmp)
        small, history = trio.run(make_drives, root / "server", args.files, args.file_kib * 1024,
                                  args.big_mib * 1024 * 1024)
        server = subprocess.Popen([HYPERNODE, "--store", str(root / "server"), "serve", *QUIET],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proxy = None
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline().rsplit(":", 1)[1])
            proxy = LatencyProxy(port, args.latency_ms / 1000)
            print(f"hypernode clone vs clone --history ({args.files} files of {args.file_kib} KiB; "
                  f"a {args.big_mib} MiB file written twice)")
            cases = [(f"{args.files} small files, direct", small, port),
                     (f"{args.files} small files, +{args.latency_ms:g} ms each way", small, proxy.port),
                     (f"{args.big_mib} MiB file overwritten, direct", history, port),
                     (f"{args.big_mib} MiB file overwritten, +{args.latency_ms:g} ms", history, proxy.port)]
            for name, key, p in cases:
                best = []
                for flags in ((), ("--history",)):
                    runs = [clone(root, key, p, *flags) for _ in range(args.rounds)]
                    best.append(min(runs))
                (t, size), (t_full, size_full) = best
                print(f"{name:<44} {t:6.2f} s  store {size / 2**20:6.1f} MiB   --history {t_full:6.2f} s  "
                      f"store {size_full / 2**20:6.1f} MiB   time {t / t_full:.2f}x")
                results.append({"case": name, "s": t, "store_bytes": size, "history_s": t_full,
                                "history_store_bytes": size_full})
        finally:
            if proxy is not None:
                proxy.close()
            server.terminate()
            server.wait(timeout=30)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
