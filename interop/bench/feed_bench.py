"""Feed append and get throughput: hypernode vs JS hypercore 9, in one run, as ratios.

    .venv/bin/python interop/bench/feed_bench.py [--quick] [--rounds N] [--json out.json]

Python writes to files (a temp dir); JS runs the same cases on files (random-access-file, the same
kind of storage) and on memory (random-access-memory, as REFERENCE.md's figures). Each case runs
``--rounds`` times, Python and JS interleaved, and the best time of each is kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

INTEROP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INTEROP.parent))

from hypernode.feed import Feed  # noqa: E402

FULL = [
    {"name": "64 KiB, one batch", "size": 65536, "count": 1024, "batch": 1024},
    {"name": "64 KiB, one by one", "size": 65536, "count": 1024, "batch": 1},
    {"name": "1 KiB, batches of 1,000", "size": 1024, "count": 100_000, "batch": 1000},
    {"name": "1 KiB, one by one", "size": 1024, "count": 20_000, "batch": 1},
]
QUICK = [dict(c, count=max(c["count"] // 50, 10), batch=min(c["batch"], max(c["count"] // 50, 10)))
         for c in FULL]


async def py_case(case: dict, directory: str) -> dict:
    block = bytes([7]) * case["size"]
    async with await Feed.open(directory) as feed:
        t0 = time.perf_counter()
        if case["batch"] > 1:
            for done in range(0, case["count"], case["batch"]):
                await feed.append([block] * min(case["batch"], case["count"] - done))
        else:
            for _ in range(case["count"]):
                await feed.append(block)
        t1 = time.perf_counter()
        for i in range(case["count"]):
            await feed.get(i)
        t2 = time.perf_counter()
    return {"append": t1 - t0, "get": t2 - t1}


def js_cases(cases: list[dict], storage: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        script = str(INTEROP / "bench" / "feed_bench.js")
        out = subprocess.run(["node", script, storage, d, json.dumps(cases)],
                             cwd=INTEROP, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    cases = QUICK if args.quick else FULL
    rounds = 1 if args.quick else args.rounds
    best: dict[str, list[dict]] = {"py": [], "js-file": [], "js-memory": []}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            py = [trio.run(py_case, c, f"{d}/py-{i}") for i, c in enumerate(cases)]
        results = {"py": py, "js-file": js_cases(cases, "file"), "js-memory": js_cases(cases, "memory")}
        for k, v in results.items():
            if not best[k]:
                best[k] = v
            else:
                best[k] = [{op: min(a[op], b[op]) for op in a} for a, b in zip(best[k], v, strict=True)]
    rows = []
    print(f"{'case':28} {'op':6} {'python MB/s':>12} {'JS file MB/s':>13} {'JS mem MB/s':>12} "
          f"{'py/JS file':>10} {'py/JS mem':>10}")
    for i, c in enumerate(cases):
        mb = c["size"] * c["count"] / 1e6
        for op in ("append", "get"):
            py, jf, jm = best["py"][i][op], best["js-file"][i][op], best["js-memory"][i][op]
            row = {"case": c["name"], "op": op, "blocks": c["count"], "python_mb_s": mb / py,
                   "js_file_mb_s": mb / jf, "js_memory_mb_s": mb / jm,
                   "ratio_vs_js_file": jf / py, "ratio_vs_js_memory": jm / py,
                   "python_blocks_s": c["count"] / py}
            rows.append(row)
            print(f"{c['name']:28} {op:6} {row['python_mb_s']:12.1f} {row['js_file_mb_s']:13.1f} "
                  f"{row['js_memory_mb_s']:12.1f} {row['ratio_vs_js_file']:9.2f}x "
                  f"{row['ratio_vs_js_memory']:9.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
