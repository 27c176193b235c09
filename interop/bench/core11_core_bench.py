"""The hypercore 11 Core: appends, reads, a sparse fill from proofs and reopening a big core, beside JS.

    .venv/bin/python interop/bench/core11_core_bench.py [--storage rocks|memory|both] [--quick] [--rounds N]
        [--case NAME] [--json out.json]

Python runs as a user runs it: a :class:`~hypernode.core11.corestore.Corestore` in a temp dir (RocksDB,
:mod:`hypernode.core11.rocks`, the default and the fair comparison) or in memory (``Corestore()``,
``--storage memory``; ``both`` prints the two side by side); JS hypercore 11.39.5
(interop/v11/js/core_bench.js) always on its own storage, RocksDB in a temp dir. Each round runs Python's
cases and then JS's, and the best of the rounds is kept for each. Cases: appends of 64 KiB and 1 KiB blocks,
batched and one by one; a get of every block of a core written, closed and reopened; a core opened by key
filled with every block from a writer's proofs in random order (proof made + applied, as a replicator does
on both ends; each core in its own store); reopening a core of many 8-byte blocks (to ready), then on it
10,000 random gets, each with the block's proof, and a get of every block in order. Figures: blocks/s
(reopen: ms) and the ratio, Python's rate over JS's. For the reopened core the bench says what Python holds:
the Core's own memory (tracemalloc) after the open and after the random reads, and the process's resident
memory (RSS, RocksDB's caches included) as the in-order read goes, which must not grow with the core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

INTEROP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INTEROP.parent))

from hypernode import flat_tree  # noqa: E402
from hypernode.core11.core import Core  # noqa: E402
from hypernode.core11.corestore import Corestore  # noqa: E402
from hypernode.core11.proof import BlockRequest, UpgradeRequest  # noqa: E402

KIB = 1024
MIB = 1024 * 1024
READS = 10_000
FULL: list[dict[str, Any]] = [
    {"kind": "append", "name": "append 64 KiB, batches of 100", "size": 65536, "count": 4000, "batch": 100},
    {"kind": "append", "name": "append 64 KiB, one by one", "size": 65536, "count": 2000, "batch": 1},
    {"kind": "append", "name": "append 1 KiB, batches of 1,000", "size": KIB, "count": 100_000,
     "batch": 1000},
    {"kind": "append", "name": "append 1 KiB, one by one", "size": 1024, "count": 20_000, "batch": 1},
    {"kind": "get", "name": "get every block, 64 KiB (reopened)", "size": 65536, "count": 4000},
    {"kind": "get", "name": "get every block, 1 KiB (reopened)", "size": KIB, "count": 100_000},
    {"kind": "fill", "name": "sparse fill from proofs, 1 KiB", "size": 1024, "count": 20_000},
    {"kind": "open", "name": "reopen a core of {count:,} blocks", "count": 1_000_000, "reads": READS},
]
QUICK: list[dict[str, Any]] = [
    dict(c, count=max(c["count"] // 100, 20), batch=min(c.get("batch", 1), max(c["count"] // 100, 20)),
         reads=100)
    for c in FULL]


@contextmanager
def _store(storage: str, name: str = "store") -> Iterator[Corestore]:
    """A new store as a user makes one: in a temp dir on RocksDB, or in memory."""
    if storage == "memory":
        with Corestore() as store:
            yield store
        return
    d = tempfile.mkdtemp(prefix=f"core11-bench-{name}-")
    try:
        with Corestore(d) as store:
            yield store
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _rss() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def py_append(c: dict[str, Any], storage: str) -> dict[str, Any]:
    with _store(storage) as store:
        core = store.get("bench")
        block = bytes([7]) * c["size"]
        t0 = time.perf_counter()
        for done in range(0, c["count"], c["batch"]):
            core.append(block if c["batch"] == 1 else [block] * min(c["batch"], c["count"] - done))
        return {"seconds": time.perf_counter() - t0}


def py_get(c: dict[str, Any], storage: str) -> dict[str, Any]:
    n, size = c["count"], c["size"]
    if storage == "memory":
        with Corestore() as store:
            core = store.get("bench")
            _append_all(core, bytes([7]) * size, n)
            return {"seconds": _get_all(core, n, size)}
    d = tempfile.mkdtemp(prefix="core11-bench-get-")
    try:
        with Corestore(d) as store:
            _append_all(store.get("bench"), bytes([7]) * size, n)
        with Corestore(d) as store:
            return {"seconds": _get_all(store.get("bench"), n, size)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _append_all(core: Core, block: bytes, n: int) -> None:
    for done in range(0, n, 1000):
        core.append([block] * min(1000, n - done))


def _get_all(core: Core, n: int, size: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        if len(core.get(i)) != size:
            raise AssertionError(f"block {i} reads back wrong")
    return time.perf_counter() - t0


def py_fill(c: dict[str, Any], storage: str) -> dict[str, Any]:
    with _store(storage, "writer") as wstore, _store(storage, "reader") as rstore:
        writer = wstore.get("bench")
        _append_all(writer, bytes([7]) * c["size"], c["count"])
        reader = rstore.get(key=writer.key, manifest=writer.manifest)
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


def _random_reads(core: Core, n: int, reads: int) -> float:
    rnd = random.Random(2)
    roots = flat_tree.full_roots(2 * n)
    t0 = time.perf_counter()
    for _ in range(reads):
        i = rnd.randrange(n)
        core.get(i)
        root = next(r for r in roots if flat_tree.right_span(r) >= 2 * i)
        core.proof(block=BlockRequest(i, flat_tree.depth(root)))
    return time.perf_counter() - t0


def py_open(c: dict[str, Any], storage: str) -> dict[str, Any]:
    n = c["count"]
    d = None if storage == "memory" else tempfile.mkdtemp(prefix="core11-bench-open-")
    try:
        first = Corestore(d)
        writer = first.get("bench")
        for done in range(0, n, 10_000):
            writer.append([i.to_bytes(8, "little") for i in range(done, min(n, done + 10_000))])
        if d is None:
            # an in-memory store cannot be closed and opened again: a new Core on the same storage
            def reopen() -> tuple[Corestore | None, Core]:
                return None, Core(writer.storage)
        else:
            first.close()

            def reopen() -> tuple[Corestore | None, Core]:
                store = Corestore(d)
                return store, store.get("bench")
        t0 = time.perf_counter()
        store, core = reopen()
        seconds = time.perf_counter() - t0
        random_seconds = _random_reads(core, n, c["reads"])
        rss0 = _rss()
        rss: list[int] = []
        marks = {n // 10, n // 2, n}
        t0 = time.perf_counter()
        for i in range(n):
            if int.from_bytes(core.get(i), "little") != i:
                raise AssertionError(f"block {i} reads back wrong")
            if i + 1 in marks:
                rss.append(_rss() - rss0)
        inorder_seconds = time.perf_counter() - t0
        if store is not None:
            store.close()
        del store, core
        # what the reopened Core itself holds (Python objects), apart from RocksDB's own caches
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        store, core = reopen()
        after_open = tracemalloc.get_traced_memory()[0] - base
        _random_reads(core, n, c["reads"])
        after_reads = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        out = {"seconds": seconds, "random_seconds": random_seconds, "inorder_seconds": inorder_seconds,
               "open_bytes": after_open, "read_bytes": after_reads, "roots": len(core.roots()),
               "node_cache": core.tree.cached, "rss_growth": rss}
        if store is not None:
            store.close()
        first.close()
        return out
    finally:
        if d is not None:
            shutil.rmtree(d, ignore_errors=True)


def js_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(["node", str(INTEROP / "v11" / "js" / "core_bench.js"), d, json.dumps(cases)],
                             cwd=INTEROP / "v11", capture_output=True, text=True, check=True)
    result: list[dict[str, Any]] = json.loads(out.stdout)
    return result


def _best(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """The faster of two runs of a case, figure by figure."""
    if a is None:
        return b
    out = dict(a)
    for k in ("seconds", "random_seconds", "inorder_seconds"):
        if k in b and b[k] < a[k]:
            out[k] = b[k]
    return out


def _rate(count: int, r: dict[str, Any] | None, key: str = "seconds") -> str:
    return "" if r is None else f"{count / r[key]:11,.0f} bl/s"


def _ratio(py: dict[str, Any] | None, js: dict[str, Any], key: str = "seconds") -> str:
    return "" if py is None else f"{js[key] / py[key]:6.2f}x"


def _open_note(k: int, c: dict[str, Any], *runs: dict[str, Any] | None) -> str:
    """What the Python side of the reopen case holds in memory (row ``k`` of the case)."""
    notes = []
    for s, r in zip(("rocks", "memory"), runs, strict=True):
        if r is None:
            continue
        if k == 0:
            notes.append(f"{s}: the Core holds {r['open_bytes'] / KIB:.0f} KiB after the open, "
                         f"{r['read_bytes'] / KIB:.0f} KiB after {c['reads']:,} random reads and proofs "
                         f"({r['roots']} roots, {r['node_cache']} nodes cached)")
        elif k == 2:
            growth = ", ".join(f"{g / MIB:+.1f}" for g in r["rss_growth"])
            notes.append(f"{s}: RSS {growth} MiB after 10%, 50%, 100%")
    return f"({'; '.join(notes)})" if notes else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--storage", choices=("rocks", "memory", "both"), default="rocks",
                    help="Python's storage: RocksDB in a temp dir (default, as JS), memory, or both")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--case", action="append", default=[],
                    help="run only the cases whose name holds this (repeatable)")
    ap.add_argument("--json")
    args = ap.parse_args()
    cases = [c for c in (QUICK if args.quick else FULL)
             if not args.case or any(w in c["name"] for w in args.case)]
    rounds = 1 if args.quick else args.rounds
    storages = ["rocks", "memory"] if args.storage == "both" else [args.storage]
    run = {"append": py_append, "get": py_get, "fill": py_fill, "open": py_open}
    best: dict[str, list[dict[str, Any] | None]] = {s: [None] * len(cases) for s in [*storages, "js"]}
    for _ in range(rounds):
        for s in storages:
            best[s] = [_best(b, run[c["kind"]](c, s)) for b, c in zip(best[s], cases, strict=True)]
        best["js"] = [_best(b, r) for b, r in zip(best["js"], js_cases(cases), strict=True)]
    rocks = best.get("rocks", [None] * len(cases))
    memory = best.get("memory", [None] * len(cases))
    both = args.storage == "both"
    head = f"{'case':40} {'python (' + storages[0] + ')':>16}"
    if both:
        head += f" {'python (memory)':>16}"
    print(f"{head} {'js (RocksDB)':>16} {'ratio':>7}" + (f" {'memory':>7}" if both else ""))
    rows = []
    for i, c in enumerate(cases):
        name = c["name"].format(count=c["count"])
        p, m, j = (rocks[i] or memory[i]), (memory[i] if both else None), best["js"][i]
        assert p is not None and j is not None
        lines: list[tuple[str, str, str, str, str, str]] = []
        if c["kind"] == "open":
            n = c["count"]
            lines.append((name, f"{p['seconds'] * 1000:13.2f} ms",
                          "" if m is None else f"{m['seconds'] * 1000:13.2f} ms",
                          f"{j['seconds'] * 1000:13.2f} ms", _ratio(p, j), _ratio(m, j)))
            lines.append((f"  then {c['reads']:,} random gets + proofs",
                          _rate(c["reads"], p, "random_seconds"), _rate(c["reads"], m, "random_seconds"),
                          _rate(c["reads"], j, "random_seconds"),
                          _ratio(p, j, "random_seconds"), _ratio(m, j, "random_seconds")))
            lines.append((f"  then get of all {n:,} in order", _rate(n, p, "inorder_seconds"),
                          _rate(n, m, "inorder_seconds"), _rate(n, j, "inorder_seconds"),
                          _ratio(p, j, "inorder_seconds"), _ratio(m, j, "inorder_seconds")))
        else:
            lines.append((name, _rate(c["count"], p), _rate(c["count"], m), _rate(c["count"], j),
                           _ratio(p, j), _ratio(m, j)))
        for k, (label, py_s, mem_s, js_s, ratio, mem_ratio) in enumerate(lines):
            row = f"{label:40} {py_s:>16}" + (f" {mem_s:>16}" if both else "")
            row += f" {js_s:>16} {ratio:>7}" + (f" {mem_ratio:>7}" if both else "")
            if c["kind"] == "open":
                row += " " + _open_note(k, c, rocks[i], memory[i])
            print(row)
        rows.append({"case": name, "python": p, "python_memory": m, "js": j})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if not (INTEROP / "v11" / "node_modules" / "hypercore").is_dir():
        sys.exit("core11_core_bench: interop/v11/node_modules is missing "
                 "(run make interop/node_modules/.installed)")
    main()
