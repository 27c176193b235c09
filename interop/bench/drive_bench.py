"""Hyperdrive throughput: hypernode's Hyperdrive vs JS hyperdrive 10.21.0 (corestore 5.8.2), one run.

    .venv/bin/python interop/bench/drive_bench.py [--quick] [--rounds N] [--json out.json]

Cases, on the same content in both languages (see drive_py.py):
  - write_file of one 64 MiB file, then read_file of it (MB/s), and read_file of it again after closing
    and reopening the store (hypernode hashes the blocks a feed did not store itself in this session
    on every read; JS hypercore never re-hashes stored blocks);
  - 1,000 write_file of 1 KiB files into one folder, then read_file of each (files/s);
  - clone of a drive holding the 64 MiB file + the 1,000 small files, from a writer process to a
    reader process over loopback TCP: Python→Python and JS→JS, and the mixed pairs JS→Python and
    Python→JS. The reader opens the drive by key, connects, waits for the writer's version, downloads
    the whole trie and then every file (``download('/')``); the time runs from connect to then. It then
    checks every content block is local and reads every file back: the paths, byte count and a sha256
    over them must match what was written, or the run fails.

Storage: Python uses hypernode's Corestore on files in a temp dir; JS uses corestore on
random-access-file in a temp dir (the "JS file" column, the one the ratios are for), and on
random-access-memory ("JS mem", as REFERENCE.md's figures). Every case runs in fresh processes,
``--rounds`` times, Python and JS interleaved, and the best time of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

INTEROP = Path(__file__).resolve().parent.parent
PY = sys.executable
DRIVE_PY = str(INTEROP / "bench" / "drive_py.py")
DRIVE_JS = str(INTEROP / "bench" / "drive_bench.js")
sys.path.insert(0, str(INTEROP / "bench"))

from drive_py import expected_digest  # noqa: E402

FULL = {"bigSize": 64 * 1024 * 1024, "smallCount": 1000, "smallSize": 1024}
QUICK = {"bigSize": 1024 * 1024, "smallCount": 20, "smallSize": 1024}
TIMEOUT = 600  # seconds for one process before the run is declared failed


def command(lang: str, *args: str) -> list[str]:
    return [PY, DRIVE_PY, *args] if lang == "py" else ["node", DRIVE_JS, *args]


def run_json(cmd: list[str]) -> dict:
    """Run one role and return the last JSON line it prints (its stderr is shown if it fails; set
    DRIVE_BENCH_DEBUG=1 to have the readers print their stages there)."""
    proc = subprocess.Popen(cmd, cwd=INTEROP, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        raise RuntimeError(f"{' '.join(cmd[:3])} did not finish in {TIMEOUT} s: {stderr}") from None
    if proc.returncode != 0 or not stdout.strip():
        raise RuntimeError(f"{' '.join(cmd[:3])} failed (exit {proc.returncode}): {stderr}")
    return json.loads(stdout.splitlines()[-1])


def local(lang: str, storage: str, spec: dict) -> dict:
    with tempfile.TemporaryDirectory() as d:
        return run_json(command(lang, "local", storage if storage == "memory" else os.path.join(d, "s"),
                                json.dumps(spec)))


def clone(writer: str, reader: str, spec: dict, expected: tuple[int, int, str]) -> float:
    with tempfile.TemporaryDirectory() as d:
        server = subprocess.Popen(command(writer, "serve", os.path.join(d, "w"), json.dumps(spec)),
                                  cwd=INTEROP, stdout=subprocess.PIPE, text=True)
        killer = threading.Timer(TIMEOUT, server.kill)
        killer.start()
        try:
            assert server.stdout is not None
            line = server.stdout.readline()
            if not line:
                raise RuntimeError(f"the {writer} writer exited")
            info = json.loads(line)
            got = run_json(command(reader, "clone", os.path.join(d, "r"), info["key"], str(info["port"]),
                                   str(info["version"])))
        finally:
            killer.cancel()
            server.kill()
            server.wait()
    if (got["files"], got["bytes"], got["sha256"]) != expected:
        raise RuntimeError(f"{writer}→{reader}: the reader has {got['files']} files, {got['bytes']} bytes, "
                           f"sha256 {got['sha256']}; expected {expected}")
    if got["contentLocal"] != got["contentBlocks"]:
        raise RuntimeError(f"{writer}→{reader}: {got['contentLocal']} of {got['contentBlocks']} content "
                           f"blocks local")
    return float(got["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    spec = QUICK if args.quick else FULL
    rounds = 1 if args.quick else args.rounds
    expected = expected_digest(spec)

    runs = {"py": ("py", "file"), "js-file": ("js", "file"), "js-memory": ("js", "memory")}
    pairs = [("py", "py"), ("js", "js"), ("js", "py"), ("py", "js")]
    best: dict[str, dict[str, float]] = {}
    clones: dict[tuple[str, str], float] = {}
    for _ in range(rounds):
        for name, (lang, storage) in runs.items():
            result = local(lang, storage, spec)
            best[name] = {k: v if v is None else min(v, best.get(name, result)[k]) for k, v in result.items()}
        for pair in pairs:
            seconds = clone(*pair, spec, expected)
            clones[pair] = min(seconds, clones.get(pair, seconds))

    big_mb = spec["bigSize"] / 1e6
    n = spec["smallCount"]
    big = f"{spec['bigSize'] / 2**20:g} MiB"
    small = f"{n:,} × {spec['smallSize'] / 1024:g} KiB"
    rows = []
    print(f"{'case':44} {'python (files)':>17} {'JS (files)':>17} {'JS (memory)':>17} "
          f"{'py/JS files':>11} {'py/JS mem':>10}")
    for case, op, amount, unit in [(f"write_file {big}", "bigWrite", big_mb, "MB/s"),
                                   (f"read_file {big}", "bigRead", big_mb, "MB/s"),
                                   (f"read_file {big}, store reopened", "bigReadReopened", big_mb, "MB/s"),
                                   (f"write_file {small}", "smallWrite", n, "files/s"),
                                   (f"read_file {small}", "smallRead", n, "files/s")]:
        py, jf, jm = best["py"][op], best["js-file"][op], best["js-memory"][op]
        row = {"case": case, "unit": unit, "python": amount / py, "js_file": amount / jf,
               "js_memory": amount / jm if jm else None, "python_s": py, "js_file_s": jf, "js_memory_s": jm,
               "ratio_vs_js_file": jf / py, "ratio_vs_js_memory": jm / py if jm else None}
        rows.append(row)
        digits = 0 if unit == "files/s" else 1
        cells = ["-" if row[k] is None else f"{row[k]:.{digits}f} {unit}"
                 for k in ("python", "js_file", "js_memory")]
        mem_ratio = "-" if jm is None else f"{row['ratio_vs_js_memory']:.2f}x"
        print(f"{case:44} {cells[0]:>17} {cells[1]:>17} {cells[2]:>17} {row['ratio_vs_js_file']:10.2f}x "
              f"{mem_ratio:>10}")
    what = f"{big} + {n:,} files"
    base = clones[("js", "js")]
    for (w, r), label in [(("py", "py"), "py→py"), (("js", "py"), "js→py"), (("py", "js"), "py→js")]:
        seconds = clones[(w, r)]
        row = {"case": f"clone {what} {label}, vs js→js", "unit": "s", "python_s": seconds, "js_file_s": base,
               "mb_s": expected[1] / 1e6 / seconds, "js_mb_s": expected[1] / 1e6 / base,
               "ratio_vs_js_file": base / seconds}
        rows.append(row)
        cells = [f"{seconds:.2f} s", f"{base:.2f} s", "-"]
        print(f"{row['case']:44} {cells[0]:>17} {cells[1]:>17} {cells[2]:>17} "
              f"{row['ratio_vs_js_file']:10.2f}x {'-':>10}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
