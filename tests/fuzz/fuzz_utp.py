"""An atheris (libFuzzer, coverage-guided) harness for uTP's decoder and state machine.

Each input picks a target with its first byte:
0. one datagram into :func:`~hypernode.utp.packet.decode` (only PacketError may come out);
1. datagrams (lengths and contents from the input) into an endpoint that listens, from one of three
   addresses, with time moving as the input says;
2. the same against an endpoint holding an established connection with data in flight, the packets'
   connection id, sequence and ack numbers set near the connection's own so that they reach its state
   machine.
Nothing may come out of the endpoint, and its buffers stay within their limits: anything else is a crash.

Run: ``python tests/fuzz/fuzz_utp.py -max_total_time=600 CORPUS_DIR`` (libFuzzer flags), or
``python tests/fuzz/fuzz_utp.py --seeds CORPUS_DIR`` to write the seed inputs.
"""

from __future__ import annotations

import os
import random
import struct
import sys

import atheris

with atheris.instrument_imports(include=["hypernode"]):
    from hypernode.utp.connection import UTPConfig, UTPConnection
    from hypernode.utp.endpoint import UTPEndpoint
    from hypernode.utp.packet import HEADER, Packet, PacketError, decode, encode

CONFIG = UTPConfig(receive_buffer=64 * 1024, receive_slack=8 * 1024, send_queue=32 * 1024, max_half_open=4,
                   max_connections=8, max_connections_per_address=4, reset_memory=64)
A = ("10.0.0.1", 4000)
B = ("10.0.0.2", 5000)


def established() -> tuple[UTPEndpoint, UTPConnection]:
    """B's end of a connection from A, with data in flight both ways."""
    a = UTPEndpoint(CONFIG, rng=random.Random(1))
    b = UTPEndpoint(CONFIG, rng=random.Random(2))
    b.accepting = True
    now = 10.0
    c = a.connect(B, now)

    def pump() -> None:
        for _ in range(20):
            moved = False
            for src, dst, addr in ((a, b, A), (b, a, B)):
                for data, _ in src.datagrams():
                    moved = True
                    dst.receive(data, addr, now)
                dst.issue_deferred_acks(now)
            if not moved:
                return

    pump()
    s = next(iter(b.connections.values()))
    c.write(b"x" * 3000, int(now * 1e6))
    pump()
    s.write(b"y" * 20_000, int(now * 1e6))
    b.datagrams()  # lost: in flight
    a.events()
    b.events()
    return b, s


def check(ep: UTPEndpoint) -> None:
    assert len(ep.connections) <= CONFIG.max_connections
    assert len(ep._resets) <= CONFIG.reset_memory
    for conn in ep.connections.values():
        assert len(conn.recv_buf) <= CONFIG.receive_buffer + CONFIG.receive_slack
        assert conn.reorder_bytes <= CONFIG.receive_buffer and len(conn.reorder) < 1024
        assert len(conn.send_queue) <= CONFIG.send_queue and len(conn.outbuf) <= 1024
        assert conn.cur_window >= 0


def TestOneInput(data: bytes) -> None:
    if not data:
        return
    mode, body = data[0] % 3, data[1:]
    if mode == 0:
        try:
            decode(body)
        except PacketError:
            pass
        return
    fdp = atheris.FuzzedDataProvider(body)
    now = 10.0
    if mode == 1:
        ep = UTPEndpoint(CONFIG, rng=random.Random(0))
        ep.accepting = True
        conn = None
    else:
        ep, conn = established()
    while fdp.remaining_bytes():
        now += fdp.ConsumeIntInRange(0, 3000) / 1000
        who = fdp.ConsumeIntInRange(0, 2)
        address = (A, B, ("10.9.9.9", 9))[who]
        datagram = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 1500))
        if conn is not None and len(datagram) >= HEADER.size and fdp.ConsumeBool():
            # aim it at the connection: its id, and numbers near its own
            first, ext, _, ts, diff, wnd, seq, ack = HEADER.unpack_from(datagram)
            seq = (conn.ack_nr + (seq % 64) - 8) & 0xFFFF
            ack = (conn.seq_nr + (ack % 64) - 40) & 0xFFFF
            datagram = HEADER.pack((first & 0xF0) | 1, ext % 3, conn.recv_id, ts, diff, wnd, seq, ack) + \
                datagram[HEADER.size:]
            address = A
        ep.receive(datagram, address, now)
        ep.issue_deferred_acks(now)
        if fdp.ConsumeIntInRange(0, 7) == 0:
            ep.tick(now)
        ep.datagrams()
        ep.events()
        check(ep)


def write_seeds(directory: str) -> None:
    seeds = [
        b"\x00" + encode(Packet(4, 77, seq_nr=5)),
        b"\x00" + encode(Packet(2, 77, seq_nr=5, ack_nr=4, sack=b"\x05\x00\x00\x80")),
        b"\x00" + encode(Packet(0, 77, seq_nr=5, ack_nr=4, extensions=((2, bytes(8)),), payload=b"data")),
    ]
    body = b""
    for i, p in enumerate([Packet(4, 77, seq_nr=100), Packet(0, 78, seq_nr=101, ack_nr=0, payload=b"hi"),
                           Packet(1, 78, seq_nr=102, ack_nr=0), Packet(3, 78, seq_nr=1, ack_nr=2)]):
        raw = encode(p)
        body += struct.pack(">H", 10) + bytes([0]) + struct.pack(">H", len(raw)) + raw + bytes([i % 8])
    seeds.append(b"\x01" + body)
    seeds.append(b"\x02" + body)
    os.makedirs(directory, exist_ok=True)
    for i, seed in enumerate(seeds):
        with open(os.path.join(directory, f"seed{i:02}"), "wb") as f:
            f.write(seed)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        write_seeds(sys.argv[2])
    else:
        atheris.Setup(sys.argv, TestOneInput)
        atheris.Fuzz()
