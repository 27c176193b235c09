"""hypercore 11 replication throughput over loopback TCP: Python→Python, JS→Python, Python→JS, JS→JS.

    .venv/bin/python interop/bench/core11_replication_bench.py [--quick] [--rounds N] [--json out.json]
                                                              [--storage rocks|memory]

Each case is two processes: a sender holding one core of N blocks and a receiver that opens it by key,
connects and downloads every block (the time runs from the download's start until every block is
verified and stored). Python runs as a user would: a :class:`~hypernode.core11.corestore.Corestore` in a
temporary directory (RocksDB, as JS) replicating with ``store.replicate``; ``--storage memory`` keeps
Python's stores in memory instead. JS is a corestore 7.12.5 in a temporary directory
(interop/v11/js/repl_peer.js). Cases: 20,000 blocks of 1 KiB
(blocks/s) and 1,024 blocks of 64 KiB (MB/s), with the ratio to JS→JS; ``--rounds N``: best of N.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from hypernode.core11.core import Core  # noqa: E402
from hypernode.core11.corestore import Corestore  # noqa: E402
from interop.jsproc import JSProcess  # noqa: E402

REPL_PEER = ROOT / "interop" / "v11" / "js" / "repl_peer.js"


def block(i: int, size: int) -> bytes:
    prefix = f"b-{i}-".encode()
    return (prefix + bytes([(i * 31 + 7) & 255]) * size)[:size]


class JS(JSProcess):
    def __init__(self, *args: str) -> None:
        super().__init__("repl_peer.js", *args)
        self.args[1] = str(REPL_PEER)

    async def do(self, cmd: str, answer: str, **args: Any) -> dict[str, Any]:
        with trio.fail_after(600):
            return await self.command(answer, cmd=cmd, **args)


STORAGE = "rocks"  # or "memory" (--storage)


def open_store(tmp: Path, name: str) -> Corestore:
    return Corestore(tmp / name if STORAGE == "rocks" else None)


def written(store: Corestore, count: int, size: int) -> Core:
    core = store.get("bench")
    for start in range(0, count, 1000):
        core.append([block(i, size) for i in range(start, min(count, start + 1000))])
    return core


async def serve_py(count: int, size: int, tmp: Path) -> None:
    """The Python sender in its own process: prints the port and key, serves until killed."""
    store = open_store(tmp, "py-send")
    core = written(store, count, size)
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")

    async def serve(stream: trio.SocketStream) -> None:
        async with store.replicate(stream, initiator=False):
            await trio.sleep_forever()

    print(json.dumps({"port": listeners[0].socket.getsockname()[1], "key": core.key.hex()}), flush=True)
    await trio.serve_listeners(serve, listeners)


async def py_receives(port: int, key: bytes, count: int, tmp: Path) -> float:
    with open_store(tmp, "py-recv") as store:
        core = store.get(key=key)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with store.replicate(stream, initiator=True) as repl:
            t0 = time.perf_counter()
            await repl.download(core, 0, count)
            elapsed = time.perf_counter() - t0
        assert core.has_all(0, count)
    return elapsed


async def case_py_py(count: int, size: int, tmp: Path) -> float:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(count), str(size), str(tmp),
                             STORAGE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        info = json.loads(await trio.to_thread.run_sync(proc.stdout.readline))
        return await py_receives(info["port"], bytes.fromhex(info["key"]), count, tmp)
    finally:
        proc.kill()
        proc.wait()


async def case_js_py(count: int, size: int, tmp: Path) -> float:
    async with JS("listen", "0", str(tmp / "js-send")) as js:
        port = (await js.wait_for("listening"))["port"]
        created = await js.do("create", "created", name="bench", count=count, size=size, tag="b")
        return await py_receives(int(port), bytes.fromhex(created["key"]), count, tmp)


async def js_receives(port: int, key: str, count: int, tmp: Path) -> float:
    async with JS("connect", str(port), str(tmp / "js-recv")) as js:
        await js.do("open", "opened", key=key)
        await js.do("connect", "dialing")
        t0 = time.perf_counter()
        await js.do("download", "downloaded", key=key, start=0, end=count)
        return time.perf_counter() - t0


async def case_py_js(count: int, size: int, tmp: Path) -> float:
    with open_store(tmp, "py-send") as store:
        core = written(store, count, size)
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]

        async def serve(stream: trio.SocketStream) -> None:
            async with store.replicate(stream, initiator=False):
                await trio.sleep_forever()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, serve, listeners)
            elapsed = await js_receives(port, core.key.hex(), count, tmp)
            nursery.cancel_scope.cancel()
    return elapsed


async def case_js_js(count: int, size: int, tmp: Path) -> float:
    async with JS("listen", "0", str(tmp / "js-send")) as js:
        port = (await js.wait_for("listening"))["port"]
        created = await js.do("create", "created", name="bench", count=count, size=size, tag="b")
        return await js_receives(int(port), created["key"], count, tmp)


async def main(quick: bool, rounds: int, out: str | None) -> None:
    sizes = [(1024, 2000 if quick else 20000), (65536, 128 if quick else 1024)]
    rows: list[dict[str, Any]] = []
    print(f"{'case':<10} {'blocks':>7} {'size':>6} {'seconds':>8} {'blocks/s':>9} {'MB/s':>7}  vs JS→JS "
          f"(Python's stores: {STORAGE}; JS's: on disk)")
    for size, count in sizes:
        results: dict[str, float] = {}
        for name in ("JS→JS", "Py→Py", "JS→Py", "Py→JS"):
            times = []
            for _ in range(rounds):
                with tempfile.TemporaryDirectory() as d:
                    tmp = Path(d)
                    if name == "Py→Py":
                        times.append(await case_py_py(count, size, tmp))
                    elif name == "JS→Py":
                        times.append(await case_js_py(count, size, tmp))
                    elif name == "Py→JS":
                        times.append(await case_py_js(count, size, tmp))
                    else:
                        times.append(await case_js_js(count, size, tmp))
            t = min(times)
            results[name] = t
            ratio = results["JS→JS"] / t
            row = {"case": name, "blocks": count, "size": size, "seconds": t, "blocks_per_s": count / t,
                   "mb_per_s": count * size / t / 1e6, "ratio": ratio}
            rows.append(row)
            mb = count * size / t / 1e6
            print(f"{name:<10} {count:>7} {size:>6} {t:>8.2f} {count / t:>9.0f} {mb:>7.1f}  {ratio:.2f}x",
                  flush=True)
    if out:
        Path(out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--serve":
        STORAGE = sys.argv[5]
        trio.run(serve_py, int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (a smoke run)")
    parser.add_argument("--rounds", type=int, default=1, help="best of N runs of each case")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--storage", choices=["rocks", "memory"], default="rocks",
                        help="where Python's stores keep their cores (JS's are always on disk)")
    args = parser.parse_args()
    STORAGE = args.storage
    trio.run(main, args.quick, args.rounds, args.json)
