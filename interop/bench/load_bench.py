"""Load: one ``hypernode serve`` and many concurrent ``hypernode clone`` processes on loopback.

    .venv/bin/python interop/bench/load_bench.py [--clients 50] [--files 200] [--mib 16] [--quick] [--json F]

A drive of ``--files`` files totalling ``--mib`` MiB is written into a store, ``hypernode serve`` serves
it, and ``--clients`` ``hypernode clone KEY DIR --peer 127.0.0.1:PORT`` processes start at once, each
with its own store. Printed: the total time until the last clone exits, each clone's time (min / median /
max), the server's peak RSS (VmHWM), and whether every clone holds exactly the files written (sha256 of
each file compared). There is no JS side: hyperdrive 10 has no clone command to compare with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from hypernode.node import Node  # noqa: E402
from interop.bench.replication_bench import peak_rss_mb  # noqa: E402

CLI = [sys.executable, "-m", "hypernode.cli"]
# loopback only: the nodes find each other through --peer, not the public DHT or the local network
os.environ["HYPERNODE_BOOTSTRAP"] = ""
os.environ["HYPERNODE_LOCAL_DISCOVERY"] = "0"


async def make_drive(store: Path, files: int, total: int) -> tuple[str, dict[str, str]]:
    sums = {}
    async with Node(store, port=None) as node:
        drive = await node.create_drive()
        size = total // files
        for i in range(files):
            data = os.urandom(size)
            path = f"d{i % 10}/f{i:04}.bin"
            sums[path] = hashlib.sha256(data).hexdigest()
            await drive.write_file("/" + path, data)
        return drive.key.hex(), sums


def tree_sums(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and p.name != ".hypernode-clone.json"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--mib", type=float, default=16)
    ap.add_argument("--quick", action="store_true", help="5 clients, 20 files, 2 MiB")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.files, args.mib = 5, 20, 2

    with tempfile.TemporaryDirectory(prefix="hypernode-load-") as tmp:
        root = Path(tmp)
        key, sums = trio.run(make_drive, root / "server", args.files, int(args.mib * 1024 * 1024))
        server = subprocess.Popen([*CLI, "--store", str(root / "server"), "serve"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line.startswith("listening on"):
                raise SystemExit(f"serve did not start: {line}{server.stderr.read()}")  # type: ignore[union-attr]
            port = int(line.rsplit(":", 1)[1])
            start = time.monotonic()
            clients = []
            for n in range(args.clients):
                cmd = [*CLI, "--store", str(root / f"c{n}"), "clone", key, str(root / f"out{n}"),
                       "--peer", f"127.0.0.1:{port}", "--timeout", "600"]
                p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                clients.append((p, time.monotonic()))
            times, failures = [], []
            for p, began in clients:
                _, err = p.communicate(timeout=1200)
                times.append(time.monotonic() - began)
                if p.returncode != 0:
                    failures.append(err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
            total = time.monotonic() - start
            rss = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        identical = sum(tree_sums(root / f"out{n}") == sums for n in range(args.clients))

    print(f"{args.clients} clients cloning {args.files} files / {args.mib:g} MiB from one hypernode serve")
    print(f"total {total:.1f} s; per clone min {min(times):.1f} s, median {statistics.median(times):.1f} s, "
          f"max {max(times):.1f} s; {args.clients * args.mib / total:.1f} MiB/s served")
    print(f"server peak RSS {rss:.0f} MB; identical clones {identical}/{args.clients}"
          + (f"; failures: {failures[:3]}" if failures else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "clients": args.clients, "files": args.files, "mib": args.mib, "total_s": total,
            "clone_s": {"min": min(times), "median": statistics.median(times), "max": max(times)},
            "server_peak_rss_mb": rss, "identical": identical, "failures": failures}, indent=1))
    if identical != args.clients:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
