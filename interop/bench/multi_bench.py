"""The merged view of N drives: hypernode's MultiDrive vs JS multi-hyperdrive 1.1.4, in one run, as ratios.

    .venv/bin/python interop/bench/multi_bench.py [--quick] [--rounds N] [--storage memory|file]
                                                  [--json out.json]

Both sides build the same content the same way (multi_bench.js describes it): N drives (5, 10, 50) in
one corestore, in memory by default (``--storage file``: on disk in a temp dir); 310 files of 1 KiB
under ``/files`` spread across the drives, a third of them in two or three drives (conflicts, resolved
on every read); a view over drive 0 (the primary) + the N-1 others added, through which 10 of the
paths are unlinked (tombstones), so that ``/files`` has 300 entries. Timed:

- construction: the view made over drive 0 and the N-1 others added (``add_drive`` x (N-1)), once;
- first read_file: the 300 live paths in a shuffled order (the same on both sides), one after the
  other, each read for the first time through the view (once);
- warm read_file: then 1,000 random reads of those paths (the same on both sides), repeated for at
  least ``min_seconds``;
- readdir: ``/files`` (300 names), warmed up once (untimed);
- readdir after a change: before each readdir (untimed) one of the drives writes or unlinks
  ``/files/extra.txt``, so the listing is not the same as the last one (300 or 301 names).

The first reads are checked to be the same bytes on both sides. Each round runs Python then JS; the
best of ``--rounds`` is kept. Beside each figure: the ratio to JS, and the rate at N over the rate at
N=5 for each side (1.0: a call costs the same whatever the number of drives).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

INTEROP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INTEROP.parent))

from hypernode.corestore import Corestore  # noqa: E402
from hypernode.drive import Hyperdrive  # noqa: E402
from hypernode.multi import MultiDrive  # noqa: E402

FILES = 310
DELETED = [5 + 31 * k for k in range(10)]
LIVE = [i for i in range(FILES) if i not in DELETED]
SIZE = 1024
WARM_READS = 1000
FULL = {"counts": [5, 10, 50], "minSeconds": 1.0,
        "minOps": {"readFile": WARM_READS, "readdir": 5, "readdirChanged": 5}}
QUICK = {"counts": [5, 10, 50], "minSeconds": 0.0,
         "minOps": {"readFile": 100, "readdir": 2, "readdirChanged": 2}}
OPS = [("construct", "construction, add_drive x (N-1)"), ("firstRead", "read_file, first read"),
       ("readFile", "read_file, warm"), ("readdir", "readdir"), ("readdirChanged", "readdir after a change")]


def path_of(i: int) -> str:
    return f"/files/f{i:03d}.txt"


def content(i: int, size: int) -> bytes:
    h = hashlib.sha256(f"multi-bench:{i}".encode()).digest()
    return (h * (size // 32 + 1))[:size]


def holders(i: int, n: int) -> list[int]:
    """The drives holding path i (as multi_bench.js)."""
    out = [i % n]
    for every, mul, add in ((3, 7, 1), (9, 13, 2)):
        if i % every == 0 and (i * mul + add) % n not in out:
            out.append((i * mul + add) % n)
    return out


def expected(spec: dict) -> tuple[str, list[str]]:
    """The digest of the live files (path, NUL, bytes, in path order) and the sorted names of /files."""
    h = hashlib.sha256()
    for i in sorted(spec["order"], key=path_of):
        h.update(path_of(i).encode() + b"\0")
        h.update(content(i, spec["size"]))
    return h.hexdigest(), sorted(path_of(i).rsplit("/", 1)[1] for i in spec["order"])


async def timed(min_seconds: float, min_ops: int, op: Callable[[int], Awaitable[object]],
                between: Callable[[int], Awaitable[object]] | None = None) -> dict:
    ops = 0
    seconds = 0.0
    start = time.perf_counter()
    while ops < min_ops or (seconds if between else time.perf_counter() - start) < min_seconds:
        if between is not None:
            await between(ops)
            t = time.perf_counter()
            await op(ops)
            seconds += time.perf_counter() - t
        else:
            await op(ops)
        ops += 1
    if between is None:
        seconds = time.perf_counter() - start
    return {"ops": ops, "seconds": seconds}


async def py_case(directory: str | None, n: int, spec: dict) -> dict:
    async with Corestore(directory) as store:
        drives = [await Hyperdrive.open(store, name=f"bench-{d}") for d in range(n)]
        for d, drive in enumerate(drives):
            for i in range(spec["files"]):
                if d in holders(i, n):
                    await drive.write_file(path_of(i), content(i, spec["size"]))
        start = time.perf_counter()
        multi = MultiDrive(drives[0])
        for drive in drives[1:]:
            await multi.add_drive(drive)
        construct = {"ops": 1, "seconds": time.perf_counter() - start}
        for i in spec["deleted"]:
            await multi.unlink(path_of(i))

        order = [path_of(i) for i in spec["order"]]
        warm = [path_of(i) for i in spec["warm"]]
        start = time.perf_counter()
        read = {path: await multi.read_file(path) for path in order}
        first = {"ops": len(order), "seconds": time.perf_counter() - start}
        h = hashlib.sha256()
        for path in sorted(read):
            h.update(path.encode() + b"\0")
            h.update(read[path])
        names = sorted(await multi.readdir("/files"))  # (the readdir warm-up)

        async def change(k: int) -> None:
            drive = drives[(k >> 1) % n]
            if k % 2 == 0:
                await drive.write_file("/files/extra.txt", f"extra {k}".encode())
            else:
                await drive.unlink("/files/extra.txt")

        ops = spec["minOps"]
        result = {
            "n": n,
            "construct": construct,
            "firstRead": first,
            "readFile": await timed(spec["minSeconds"], ops["readFile"],
                                    lambda k: multi.read_file(warm[k % len(warm)])),
            "readdir": await timed(spec["minSeconds"], ops["readdir"], lambda k: multi.readdir("/files")),
            "readdirChanged": await timed(spec["minSeconds"], ops["readdirChanged"],
                                          lambda k: multi.readdir("/files"), change),
            "digest": h.hexdigest(),
            "names": names,
        }
    return result


def py_cases(spec: dict, storage: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        return [trio.run(py_case, None if storage == "memory" else f"{d}/n{n}", n, spec)
                for n in spec["counts"]]


def js_cases(spec: dict, storage: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run(["node", str(INTEROP / "bench" / "multi_bench.js"),
                              "memory" if storage == "memory" else d, json.dumps(spec)],
                             cwd=INTEROP, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"multi_bench.js failed:\n{out.stderr}")
    return json.loads(out.stdout)


def rate(t: dict) -> float:
    return t["ops"] / t["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--storage", choices=["memory", "file"], default="memory")
    ap.add_argument("--json")
    args = ap.parse_args()
    order = list(LIVE)
    random.Random(6).shuffle(order)
    pick = random.Random(7)
    warm = [pick.choice(order) for _ in range(WARM_READS)]
    spec = dict(QUICK if args.quick else FULL, files=FILES, size=SIZE, deleted=DELETED, order=order,
                warm=warm)
    rounds = 1 if args.quick else args.rounds
    digest, names = expected(spec)

    best: dict[str, list[dict]] = {"py": [], "js": []}
    for _ in range(rounds):
        results = {"py": py_cases(spec, args.storage), "js": js_cases(spec, args.storage)}
        for side, cases in results.items():
            for case in cases:
                if case["digest"] != digest or case["names"] != names:
                    raise SystemExit(f"{side}, N={case['n']}: the view read other bytes or names "
                                     "than were written")
            if not best[side]:
                best[side] = cases
            else:
                best[side] = [{k: max(a[k], b[k], key=rate) if k in dict(OPS) else a[k] for k in a}
                              for a, b in zip(best[side], cases, strict=True)]

    first_n = spec["counts"][0]
    print(f"{'op (' + args.storage + ', 300 entries)':34} {'N':>3} {'python':>13} {'JS':>13} "
          f"{'py/JS':>7} {'py N/N=' + str(first_n):>10} {'JS N/N=' + str(first_n):>10}")
    rows = []
    for op, label in OPS:
        base = js_base = None
        for py, js in zip(best["py"], best["js"], strict=True):
            p, j = rate(py[op]), rate(js[op])
            base = base or p
            js_base = js_base or j
            row = {"op": label, "storage": args.storage, "drives": py["n"], "python_ops_s": p, "js_ops_s": j,
                   "ratio_vs_js": p / j, "python_rate_vs_first": p / base, "js_rate_vs_first": j / js_base,
                   "python_ops": py[op]["ops"], "js_ops": js[op]["ops"]}
            rows.append(row)
            if op == "construct":  # one op: its time
                figures = f"{1e3 / p:10,.1f} ms {1e3 / j:10,.1f} ms"
            else:
                figures = f"{p:9,.0f} op/s {j:8,.0f} op/s"
            print(f"{label:34} {py['n']:3} {figures} {row['ratio_vs_js']:6.2f}x "
                  f"{row['python_rate_vs_first']:9.2f}x {row['js_rate_vs_first']:9.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
