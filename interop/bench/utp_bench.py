"""uTP throughput on loopback: hypernode ⇄ hypernode, hypernode ⇄ utp-native 2.x both ways, against
utp-native ⇄ utp-native, and TCP beside it (trio ⇄ trio, net ⇄ net).

    .venv/bin/python interop/bench/utp_bench.py [--quick] [--mib N] [--rounds N] [--json out.json]

One end writes ``--mib`` MiB (64; 4 with --quick) in 64 KiB writes and ends its stream, the other reads
to the end; the time is the receiver's, from its first byte to the end of the stream. The two-sided
Python and JS runs ("pair") hold both ends in one process, as a node on one machine would not: compare
them with each other. Python ⇄ JS runs one end in each process. Best of ``--rounds``.
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

from hypernode.utp.socket import UTPStream, open_utp_socket  # noqa: E402
from interop.jsproc import JSProcess  # noqa: E402

CHUNK = 65536


async def _send(stream: trio.abc.SendStream, total: int) -> None:
    buf = b"\x07" * CHUNK
    sent = 0
    while sent < total:
        n = min(CHUNK, total - sent)
        await stream.send_all(buf if n == CHUNK else buf[:n])
        sent += n


async def _receive(stream: trio.abc.ReceiveStream) -> tuple[int, float]:
    got = 0
    start = None
    while True:
        data = await stream.receive_some()
        if not data:
            break
        if start is None:
            start = time.perf_counter()
        got += len(data)
    assert start is not None
    return got, time.perf_counter() - start


async def py_utp_pair(total: int) -> float:
    async with open_utp_socket("127.0.0.1") as a, open_utp_socket("127.0.0.1") as b:
        b.listen()
        result: list[tuple[int, float]] = []

        async def receiver() -> None:
            stream = await b.accept()
            result.append(await _receive(stream))
            await stream.aclose()

        async with trio.open_nursery() as n:
            n.start_soon(receiver)
            client = await a.connect("127.0.0.1", b.port)
            await _send(client, total)
            await client.aclose()
    got, seconds = result[0]
    assert got == total, (got, total)
    return seconds


async def py_tcp_pair(total: int) -> float:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    result: list[tuple[int, float]] = []

    async def receiver() -> None:
        stream = await listeners[0].accept()
        result.append(await _receive(stream))
        await stream.aclose()

    async with trio.open_nursery() as n:
        n.start_soon(receiver)
        client = await trio.open_tcp_stream("127.0.0.1", port)
        await _send(client, total)
        await client.aclose()
    await listeners[0].aclose()
    got, seconds = result[0]
    assert got == total
    return seconds


async def py_to_js(total: int) -> float:
    async with JSProcess("utp_peer.js", "serve", "0") as peer, open_utp_socket("127.0.0.1") as utp:
        port = (await peer.wait_for("listening"))["port"]
        stream: UTPStream = await utp.connect("127.0.0.1", port)

        async def drain() -> None:  # the JS server ends its (empty) side after our first byte
            while await stream.receive_some():
                pass

        async with trio.open_nursery() as n:
            n.start_soon(drain)
            await _send(stream, total)
            await stream.send_eof()
        received = await peer.wait_for("received")
        await stream.aclose()
    assert received["bytes"] == total, received
    return float(received["seconds"])


async def js_to_py(total: int) -> float:
    async with open_utp_socket("127.0.0.1") as utp:
        utp.listen()
        async with JSProcess("utp_peer.js", "connect", str(utp.port), str(total)):
            stream = await utp.accept()
            await stream.send_eof()  # nothing to send back
            got, seconds = await _receive(stream)
            await stream.aclose()
    assert got == total, (got, total)
    return seconds


def js_pair(kind: str, total: int) -> float:
    out = subprocess.run(["node", str(INTEROP / "bench" / "utp_bench.js"), kind, str(total)], cwd=INTEROP,
                         capture_output=True, text=True, check=True, timeout=900)
    result = json.loads(out.stdout)
    assert result["bytes"] == total
    return float(result["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--mib", type=int)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    mib = args.mib or (4 if args.quick else 64)
    total = mib * 1024 * 1024
    rounds = 1 if args.quick else args.rounds

    def best(run: object) -> float:
        assert callable(run)
        return min(float(run()) for _ in range(rounds))

    js_utp = best(lambda: js_pair("utp", total))
    js_tcp = best(lambda: js_pair("tcp", total * 4))  # TCP is fast: more bytes for a readable time
    cases = [
        ("uTP JS -> JS (pair)", js_utp, js_utp, total),
        ("uTP Py -> Py (pair)", best(lambda: trio.run(py_utp_pair, total)), js_utp, total),
        ("uTP Py -> JS", best(lambda: trio.run(py_to_js, total)), js_utp, total),
        ("uTP JS -> Py", best(lambda: trio.run(js_to_py, total)), js_utp, total),
        ("TCP JS -> JS (pair)", js_tcp, js_tcp, total * 4),
        ("TCP Py -> Py (pair)", best(lambda: trio.run(py_tcp_pair, total * 4)), js_tcp, total * 4),
    ]
    print(f"{'case':22} {'MB/s':>9} {'vs JS':>7}   ({mib} MiB; TCP {mib * 4} MiB)")
    rows = []
    for name, seconds, ref, nbytes in cases:
        rate = nbytes / 1e6 / seconds
        ratio = ref / seconds  # the same bytes: a rate's ratio
        rows.append({"case": name, "mb_s": rate, "ratio_to_js": ratio, "bytes": nbytes})
        print(f"{name:22} {rate:9.1f} {ratio:6.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
