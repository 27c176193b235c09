"""The hypercore 11 Core: appends, a sparse fill from proofs and reopening a big core, beside JS hypercore 11.

    .venv/bin/python interop/bench/core11_core_bench.py [--quick] [--rounds N] [--json out.json]

Python's :class:`~hypernode.core11.core.Core` runs on the in-memory storage (``MemoryStoreStorage``); JS
hypercore 11.39.5 (interop/v11/js/core_bench.js) on its own, RocksDB in a temp dir, which is the only
storage it has. The ratios (Python's rate over JS's) flatter Python by that difference until the Core runs
on hypernode.core11.rocks. Cases: appends of 1 KiB and 64 KiB blocks, batched and one by one; a core
opened by key filled with every block from a writer's proofs in random order (proof made + applied, as a
replicator does on both ends); reopening a core of many 8-byte blocks (to ready), with what the reopened
Python Core holds in memory (tracemalloc) after the open and after 10,000 random reads and proofs, and how
many tree nodes it read.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

INTEROP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INTEROP.parent))

from hypernode import flat_tree  # noqa: E402
from hypernode.core11 import crypto as c11  # noqa: E402
from hypernode.core11.core import Core  # noqa: E402
from hypernode.core11.manifest import core_key, default_signer_manifest  # noqa: E402
from hypernode.core11.proof import BlockRequest, UpgradeRequest  # noqa: E402
from hypernode.core11.storage import Auth, MemoryStoreStorage  # noqa: E402

KIB = 1024
FULL: list[dict[str, Any]] = [
    {"kind": "append", "name": "append 64 KiB, batches of 100", "size": 65536, "count": 4000, "batch": 100},
    {"kind": "append", "name": "append 64 KiB, one by one", "size": 65536, "count": 2000, "batch": 1},
    {"kind": "append", "name": "append 1 KiB, batches of 1,000", "size": KIB, "count": 100_000,
     "batch": 1000},
    {"kind": "append", "name": "append 1 KiB, one by one", "size": 1024, "count": 20_000, "batch": 1},
    {"kind": "fill", "name": "sparse fill from proofs, 1 KiB", "size": 1024, "count": 20_000},
    {"kind": "open", "name": "reopen a core of {count:,} blocks", "count": 1_000_000},
]
QUICK: list[dict[str, Any]] = [
    dict(c, count=max(c["count"] // 100, 20), batch=min(c.get("batch", 1), max(c["count"] // 100, 20)))
    for c in FULL]


def _writer(seed: bytes = b"bench") -> Core:
    kp = c11.key_pair(seed.ljust(32, b"\0"))
    manifest = default_signer_manifest(kp.public_key)
    key = core_key(manifest)
    return Core.create(MemoryStoreStorage().create_core(Auth(key, c11.discovery_key(key), manifest, kp)))


def py_append(c: dict[str, Any]) -> dict[str, Any]:
    core = _writer()
    block = bytes([7]) * c["size"]
    t0 = time.perf_counter()
    for done in range(0, c["count"], c["batch"]):
        core.append(block if c["batch"] == 1 else [block] * min(c["batch"], c["count"] - done))
    return {"seconds": time.perf_counter() - t0}


def py_fill(c: dict[str, Any]) -> dict[str, Any]:
    writer = _writer()
    block = bytes([7]) * c["size"]
    for done in range(0, c["count"], 1000):
        writer.append([block] * min(1000, c["count"] - done))
    auth = Auth(writer.key, writer.discovery_key, writer.manifest)
    reader = Core.create(MemoryStoreStorage().create_core(auth))
    order = list(range(c["count"]))
    random.Random(1).shuffle(order)
    t0 = time.perf_counter()
    first = order.pop()
    reader.apply(writer.proof(block=BlockRequest(first), upgrade=UpgradeRequest(0, c["count"])))
    for index in order:
        reader.apply(writer.proof(block=BlockRequest(index, reader.missing_nodes(2 * index))))
    seconds = time.perf_counter() - t0
    assert reader.contiguous_length == c["count"]
    return {"seconds": seconds}


def py_open(c: dict[str, Any]) -> dict[str, Any]:
    n = c["count"]
    writer = _writer()
    for done in range(0, n, 10_000):
        writer.append([i.to_bytes(8, "little") for i in range(done, min(n, done + 10_000))])
    storage = writer.storage
    del writer
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    core = Core(storage)
    seconds = time.perf_counter() - t0
    after_open = tracemalloc.get_traced_memory()[0] - base
    rnd = random.Random(2)
    roots = flat_tree.full_roots(2 * n)
    for _ in range(10_000):
        i = rnd.randrange(n)
        core.get(i)
        root = next(r for r in roots if flat_tree.right_span(r) >= 2 * i)
        core.proof(block=BlockRequest(i, flat_tree.depth(root)))
    after_reads = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    return {"seconds": seconds, "open_bytes": after_open, "read_bytes": after_reads, "roots": len(roots),
            "node_cache": core.tree.cached, "stored_nodes": len(storage._nodes)}  # type: ignore[attr-defined]


def js_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(["node", str(INTEROP / "v11" / "js" / "core_bench.js"), d, json.dumps(cases)],
                             cwd=INTEROP / "v11", capture_output=True, text=True, check=True)
    result: list[dict[str, Any]] = json.loads(out.stdout)
    return result


def _faster(best: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not best:
        return new
    return [min(a, b, key=lambda r: float(r["seconds"])) for a, b in zip(best, new, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    cases = QUICK if args.quick else FULL
    rounds = 1 if args.quick else args.rounds
    run = {"append": py_append, "fill": py_fill, "open": py_open}
    best_py: list[dict[str, Any]] = []
    best_js: list[dict[str, Any]] = []
    for _ in range(rounds):
        py = [run[c["kind"]](c) for c in cases]
        js = js_cases(cases)
        best_py = _faster(best_py, py)
        best_js = _faster(best_js, js)
    print(f"{'case':40} {'python':>16} {'js (RocksDB)':>16} {'ratio':>7}")
    rows = []
    for c, p, j in zip(cases, best_py, best_js, strict=True):
        c = dict(c, name=c["name"].format(count=c["count"]))
        if c["kind"] == "open":
            ratio = j["seconds"] / p["seconds"]
            print(f"{c['name']:40} {p['seconds'] * 1000:13.2f} ms {j['seconds'] * 1000:13.2f} ms "
                  f"{ratio:6.2f}x (Python Core: {p['open_bytes'] / KIB:.0f} KiB after open, "
                  f"{p['read_bytes'] / KIB:.0f} KiB after 10,000 random reads and proofs; "
                  f"{p['roots']} roots, {p['node_cache']} of {p['stored_nodes']} nodes cached)")
        else:
            py_rate, js_rate = c["count"] / p["seconds"], c["count"] / j["seconds"]
            ratio = py_rate / js_rate
            print(f"{c['name']:40} {py_rate:11,.0f} bl/s {js_rate:11,.0f} bl/s {ratio:6.2f}x")
        rows.append({"case": c["name"], "python": p, "js": j, "ratio": ratio})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if not (INTEROP / "v11" / "node_modules" / "hypercore").is_dir():
        sys.exit("core11_core_bench: interop/v11/node_modules is missing "
                 "(run make interop/node_modules/.installed)")
    main()
