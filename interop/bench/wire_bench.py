"""Raw encrypted stream throughput: hypernode ⇄ hypernode against JS hypercore-protocol ⇄ JS, in one run.

    .venv/bin/python interop/bench/wire_bench.py [--quick] [--rounds N] [--json out.json]

Each side is one process holding both ends of a loopback TCP connection (Noise handshake, then
XSalsa20): one end sends stream extension messages of 64 KiB or 1 KiB, the other receives them all.
Time runs from the first send to the last message received. Best of ``--rounds``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import trio

INTEROP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INTEROP.parent))

from hypernode.wire.stream import ProtocolStream  # noqa: E402

CASES = [("64 KiB frames", 65536, 4096), ("1 KiB frames", 1024, 100_000)]


async def py_run(size: int, count: int) -> float:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    done = trio.Event()
    state = {"got": 0, "bytes": 0}

    def on_message(m: bytes, peer: object) -> None:
        state["got"] += 1
        state["bytes"] += len(m)
        if state["got"] == count:
            done.set()

    async with trio.open_nursery() as nursery:
        accepted: list = []

        async def accept() -> None:
            accepted.append(await listeners[0].accept())

        nursery.start_soon(accept)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        while not accepted:
            await trio.sleep(0.001)
        async with ProtocolStream(client, initiator=True, timeout=None) as a, \
                ProtocolStream(accepted[0], initiator=False, timeout=None) as b:
            b.register_extension("bench", "binary", on_message)
            ext = a.register_extension("bench", "binary")
            await a.wait_handshake()
            await b.wait_handshake()
            await trio.sleep(0.05)
            buf = b"\x01" * size
            start = time.perf_counter()
            for i in range(count):
                ext.send(buf, a)
                if i % 16 == 15:
                    await a.drain()
            await done.wait()
            elapsed = time.perf_counter() - start
        await listeners[0].aclose()
        nursery.cancel_scope.cancel()
    return elapsed


def js_run(size: int, count: int) -> float:
    out = subprocess.run(["node", str(INTEROP / "bench" / "wire_bench.js"), str(size), str(count)],
                         cwd=INTEROP, capture_output=True, text=True, check=True, timeout=600)
    return float(json.loads(out.stdout)["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = []
    print(f"{'case':16} {'python MB/s':>12} {'JS MB/s':>10} {'py msgs/s':>11} {'JS msgs/s':>11} {'py/JS':>7}")
    for name, size, count in CASES:
        if args.quick:
            count = max(count // 100, 20)
        py = min(trio.run(py_run, size, count) for _ in range(1 if args.quick else args.rounds))
        js = min(js_run(size, count) for _ in range(1 if args.quick else args.rounds))
        mb = size * count / 1e6
        row = {"case": name, "python_mb_s": mb / py, "js_mb_s": mb / js, "python_msgs_s": count / py,
               "js_msgs_s": count / js, "ratio": js / py}
        rows.append(row)
        print(f"{name:16} {row['python_mb_s']:12.1f} {row['js_mb_s']:10.1f} {row['python_msgs_s']:11.0f} "
              f"{row['js_msgs_s']:11.0f} {row['ratio']:6.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
