"""Replication throughput over loopback TCP: Python→Python, JS→Python, Python→JS and JS→JS in one run.

    .venv/bin/python interop/bench/replication_bench.py [--quick] [--rounds N] [--json out.json]
    .venv/bin/python interop/bench/replication_bench.py --rss-gib 1   # peak RSS cloning a 1 GiB feed

Sender and receiver are separate processes, each with its feeds in files in a temp dir (hypernode's
Corestore, or JS corestore 5 on random-access-file), or, for the "mem" cases, both in memory
(hypernode's ``Corestore(None)``, JS corestore 5 on random-access-memory): 1,024 blocks of 64 KiB and
20,000 of 1 KiB. The on-disk figures flatter us (JS's random-access-file is slow); the in-memory ones
compare the replication code itself. The receiver opens the feed by key, connects, and the time runs
until every block is stored and verified. Printed: MB/s, blocks/s, the ratio to JS→JS, and the
receiver's peak RSS (VmHWM). ``--storage memory`` (or ``file``) runs only those cases.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

INTEROP = Path(__file__).resolve().parent.parent
PY = sys.executable
REPL_PY = str(INTEROP / "bench" / "repl_py.py")
STORE_PEER = str(INTEROP / "js" / "store_peer.js")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class JSNode:
    """A JS peer script of interop/js driven by JSON lines (store_peer.js unless ``script``)."""

    def __init__(self, directory: str, script: str = STORE_PEER) -> None:
        self.proc = subprocess.Popen(["node", script, directory], cwd=INTEROP, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.wait("ready")

    def wait(self, event: str) -> dict:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("JS node exited")
            ev = json.loads(line)
            if ev.get("event") == "error":
                raise RuntimeError(ev)
            if ev.get("event") == event:
                return ev

    def cmd(self, answer: str, **c: object) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(c) + "\n")
        self.proc.stdin.flush()
        return self.wait(answer)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def js_block_seed() -> str:
    return "bench"


def serve_py(directory: str, count: int, size: int) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([PY, REPL_PY, "serve", directory, str(count), str(size)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    return proc, info["key"], info["port"]


def serve_js(directory: str, count: int, size: int) -> tuple[JSNode, str, int]:
    node = JSNode(directory)
    key = node.cmd("created", cmd="create", name="bench")["key"]
    node.cmd("appended", cmd="append", key=key, count=count, size=size, seed=js_block_seed())
    port = node.cmd("listening", cmd="listen")["port"]
    return node, key, port


TIMEOUT = 600  # seconds for one clone before the run is declared failed


def clone_py(directory: str, key: str, port: int, count: int) -> tuple[float, float]:
    proc = subprocess.Popen([PY, REPL_PY, "clone", directory, key, str(port), str(count)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    killer = threading.Timer(TIMEOUT, proc.kill)
    killer.start()
    try:
        line = proc.stdout.readline()
        rss = peak_rss_mb(proc.pid)
        proc.wait()
    finally:
        killer.cancel()
    if not line:
        raise RuntimeError(f"the Python clone did not finish in {TIMEOUT} s")
    return float(json.loads(line)["seconds"]), rss


def clone_js(directory: str, key: str, port: int, count: int) -> tuple[float, float]:
    node = JSNode(directory)
    killer = threading.Timer(TIMEOUT, node.proc.kill)
    killer.start()
    try:
        node.cmd("opened", cmd="open", key=key)
        start = time.perf_counter()
        node.cmd("connected", cmd="connect", port=port)
        node.cmd("updated", cmd="update", key=key, minLength=count)
        node.cmd("downloaded", cmd="download", key=key, start=0, end=count)
        seconds = time.perf_counter() - start
        return seconds, peak_rss_mb(node.proc.pid)
    finally:
        killer.cancel()
        node.close()


def run_pair(sender: str, receiver: str, count: int, size: int, memory: bool = False) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as d:
        sdir = "memory" if memory else os.path.join(d, "s")
        rdir = "memory" if memory else os.path.join(d, "r")
        if sender == "py":
            sproc, key, port = serve_py(sdir, count, size)
        else:
            snode, key, port = serve_js(sdir, count, size)
        try:
            clone = clone_py if receiver == "py" else clone_js
            return clone(rdir, key, port, count)
        finally:
            if sender == "py":
                sproc.kill()
                sproc.wait()
            else:
                snode.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--storage", choices=("file", "memory", "both"), default="both")
    ap.add_argument("--rss-gib", type=float, help="only measure the peak RSS of cloning a feed this big")
    args = ap.parse_args()
    if args.rss_gib:
        count = int(args.rss_gib * 1024**3 / 65536)
        for receiver in ("py", "js"):
            seconds, rss = run_pair("py", receiver, count, 65536)
            print(f"clone of {args.rss_gib} GiB (64 KiB blocks) py→{receiver}: {seconds:.1f} s, "
                  f"{count * 65536 / 1e6 / seconds:.1f} MB/s, receiver peak RSS {rss:.0f} MB")
        return
    cases = [("64 KiB blocks", 65536, 4096, False), ("1 KiB blocks", 1024, 100_000, False),
             ("64 KiB mem", 65536, 1024, True), ("1 KiB mem", 1024, 20_000, True)]
    if args.storage != "both":
        cases = [c for c in cases if c[3] == (args.storage == "memory")]
    pairs = [("py", "py"), ("js", "py"), ("py", "js"), ("js", "js")]
    rows = []
    print(f"{'case':14} {'pair':7} {'MB/s':>8} {'blocks/s':>9} {'vs JS→JS':>9} {'recv RSS MB':>12}")
    for name, size, count, memory in cases:
        if args.quick:
            count //= 50
        results = {}
        for pair in pairs:
            best = None
            for _ in range(1 if args.quick else args.rounds):
                seconds, rss = run_pair(pair[0], pair[1], count, size, memory)
                if best is None or seconds < best[0]:
                    best = (seconds, rss)
            results[pair] = best
        base = results[("js", "js")][0]
        for pair, (seconds, rss) in results.items():
            row = {"case": name, "pair": f"{pair[0]}→{pair[1]}", "mb_s": size * count / 1e6 / seconds,
                   "blocks_s": count / seconds, "ratio_vs_js_js": base / seconds, "receiver_rss_mb": rss}
            rows.append(row)
            print(f"{name:14} {row['pair']:7} {row['mb_s']:8.1f} {row['blocks_s']:9.0f} "
                  f"{row['ratio_vs_js_js']:8.2f}x {rss:12.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
