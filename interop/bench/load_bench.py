"""Load: one server and many concurrent ``hypernode clone`` processes on loopback.

    .venv/bin/python interop/bench/load_bench.py [--clients 50] [--files 200] [--mib 16] [--quick]
                                                 [--server py|js|both] [--json F]

A drive of ``--files`` files totalling ``--mib`` MiB is written into a store; a server serves it, and
``--clients`` ``hypernode clone KEY DIR --peer 127.0.0.1:PORT`` processes start at once, each with its
own store. The server is ``hypernode serve`` and, beside it in the same run, JS hyperdrive 10 on corestore
5 (interop/js/drive_peer.js) opening the same store directory (the formats are the same) and serving
every connection: the same clients, the same bytes, so its peak RSS is the figure to compare with (hyperdrive
10 has no clone command, so the clients are hypernode's in both). Printed for each server: the total time
until the last clone exits, each clone's time (min / median / max), the server's peak RSS (VmHWM) and its
ratio to JS's, and whether every clone holds exactly the files written (sha256 of each file compared).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
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
from interop.bench.replication_bench import INTEROP, JSNode, peak_rss_mb  # noqa: E402

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


def start_py_server(store: Path) -> tuple[subprocess.Popen, int]:
    server = subprocess.Popen([*CLI, "--store", str(store), "serve"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert server.stdout is not None
    line = server.stdout.readline()
    if not line.startswith("listening on"):
        server.kill()
        raise SystemExit(f"serve did not start: {line}{server.stderr.read()}")  # type: ignore[union-attr]
    return server, int(line.rsplit(":", 1)[1])


def start_js_server(store: Path, key: str, a_file: str) -> tuple[JSNode, int]:
    node = JSNode(str(store), str(INTEROP / "js" / "drive_peer.js"))
    node.cmd("opened", cmd="open", key=key)
    node.cmd("read", cmd="read", key=key, path="/" + a_file)  # the content feed open too
    return node, int(node.cmd("listening", cmd="listen")["port"])


def run_clients(root: Path, tag: str, key: str, port: int, clients: int, server_pid: int,
                sums: dict[str, str]) -> dict:
    start = time.monotonic()
    procs = []
    for n in range(clients):
        cmd = [*CLI, "--store", str(root / f"{tag}-c{n}"), "clone", key, str(root / f"{tag}-out{n}"),
               "--peer", f"127.0.0.1:{port}", "--timeout", "600"]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append((p, time.monotonic()))
    times, failures = [], []
    for p, began in procs:
        _, err = p.communicate(timeout=1200)
        times.append(time.monotonic() - began)
        if p.returncode != 0:
            failures.append(err.strip().splitlines()[-1] if err.strip() else f"exit {p.returncode}")
    total = time.monotonic() - start
    rss = peak_rss_mb(server_pid)
    identical = sum(tree_sums(root / f"{tag}-out{n}") == sums for n in range(clients))
    for n in range(clients):  # the next server's clients find the disk as this one found it
        shutil.rmtree(root / f"{tag}-c{n}", ignore_errors=True)
        shutil.rmtree(root / f"{tag}-out{n}", ignore_errors=True)
    return {"total_s": total, "clone_s": {"min": min(times), "median": statistics.median(times),
                                          "max": max(times)},
            "server_peak_rss_mb": rss, "identical": identical, "failures": failures}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--mib", type=float, default=16)
    ap.add_argument("--quick", action="store_true", help="5 clients, 20 files, 2 MiB")
    ap.add_argument("--server", choices=("py", "js", "both"), default="both")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.files, args.mib = 5, 20, 2

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="hypernode-load-") as tmp:
        root = Path(tmp)
        key, sums = trio.run(make_drive, root / "server", args.files, int(args.mib * 1024 * 1024))
        servers = ["py", "js"] if args.server == "both" else [args.server]
        for which in servers:
            if which == "py":
                server, port = start_py_server(root / "server")
                try:
                    results["py"] = run_clients(root, "py", key, port, args.clients, server.pid, sums)
                finally:
                    server.terminate()
                    server.wait(timeout=30)
            else:
                node, port = start_js_server(root / "server", key, next(iter(sums)))
                try:
                    results["js"] = run_clients(root, "js", key, port, args.clients, node.proc.pid, sums)
                finally:
                    node.close()

    print(f"{args.clients} clients cloning {args.files} files / {args.mib:g} MiB from one server")
    for which, r in results.items():
        name = "hypernode serve" if which == "py" else "JS hyperdrive"
        ratio = ""
        if which == "py" and "js" in results:
            ratio = f" ({r['server_peak_rss_mb'] / results['js']['server_peak_rss_mb']:.2f}x JS)"
        c = r["clone_s"]
        print(f"{name:15} total {r['total_s']:.1f} s; per clone min {c['min']:.1f} s, "
              f"median {c['median']:.1f} s, max {c['max']:.1f} s; "
              f"{args.clients * args.mib / r['total_s']:.1f} MiB/s served; "
              f"server peak RSS {r['server_peak_rss_mb']:.0f} MB{ratio}; "
              f"identical clones {r['identical']}/{args.clients}"
              + (f"; failures: {r['failures'][:3]}" if r["failures"] else ""))
    if args.json:
        Path(args.json).write_text(json.dumps({"clients": args.clients, "files": args.files, "mib": args.mib,
                                               **results}, indent=1))
    if any(r["identical"] != args.clients for r in results.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
