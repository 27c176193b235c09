"""A simulated network for the sans-IO uTP core: two endpoints, a clock, and hooks to drop or hold
datagrams. No sockets, no trio: the tests drive time."""

from __future__ import annotations

import random
from collections.abc import Callable

from hypernode.utp.connection import Event, UTPConfig, UTPConnection
from hypernode.utp.endpoint import UTPEndpoint
from hypernode.utp.packet import Packet, decode, is_utp

A = ("10.0.0.1", 4000)
B = ("10.0.0.2", 5000)


class Net:
    def __init__(self, a: UTPConfig | None = None, b: UTPConfig | None = None, *, seed: int = 0,
                 rng_a: random.Random | None = None, rng_b: random.Random | None = None) -> None:
        self.a = UTPEndpoint(a, rng=rng_a or random.Random(seed))
        self.b = UTPEndpoint(b, rng=rng_b or random.Random(seed + 1))
        self.b.accepting = True
        self.now = 1000.0
        self.drop: Callable[[Packet, str], bool] = lambda p, direction: False
        self.sent: list[tuple[str, Packet]] = []  # every datagram put on the wire, decoded
        self.events: dict[str, list[Event]] = {"a": [], "b": []}
        self.rng = random.Random(seed + 2)
        self.loss = 0.0

    @property
    def us(self) -> int:
        return int(self.now * 1_000_000)

    def pump(self, rounds: int = 100_000) -> int:
        """Deliver datagrams both ways until none is left (1 ms a round); returns how many moved."""
        moved = 0
        for _ in range(rounds):
            any_moved = False
            for src, dst, addr, direction in ((self.a, self.b, A, "ab"), (self.b, self.a, B, "ba")):
                for data, _to in src.datagrams():
                    any_moved = True
                    moved += 1
                    assert is_utp(data)
                    p = decode(data)
                    self.sent.append((direction, p))
                    if self.drop(p, direction) or (self.loss and self.rng.random() < self.loss):
                        continue
                    dst.receive(data, addr, self.now)
                dst.issue_deferred_acks(self.now)
            self.collect()
            if not any_moved:
                break
            self.now += 0.001
        return moved

    def collect(self) -> None:
        self.events["a"].extend(self.a.events())
        self.events["b"].extend(self.b.events())

    def advance(self, seconds: float, step: float = 0.01) -> None:
        """Let time pass: timers run, datagrams flow."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(self.now + step, end)
            self.a.tick(self.now)
            self.b.tick(self.now)
            self.pump()

    def connect(self) -> tuple[UTPConnection, UTPConnection]:
        c = self.a.connect(B, self.now)
        self.pump()
        accepted = [e.connection for e in self.events["b"] if type(e).__name__ == "Accepted"]
        assert accepted, self.events
        return c, accepted[-1]

    def transfer(self, src: UTPConnection, dst: UTPConnection, data: bytes, *, limit: float = 600.0,
                 chunk: int = 65536) -> bytes:
        """Write ``data`` on ``src`` (then FIN) and read ``dst`` until its end of stream."""
        got = bytearray()
        off = 0
        start = self.now
        fin = False
        while not dst.eof or dst.recv_buf:
            if off < len(data):
                off += src.write(data[off:off + chunk], self.us)
            elif not fin:
                src.shutdown(self.us)
                fin = True
            self.pump()
            got += dst.read(None, self.us)
            self.now += 0.005
            self.a.tick(self.now)
            self.b.tick(self.now)
            assert self.now - start < limit, f"stalled: {len(got)} of {len(data)}"
            assert not dst.closed or dst.eof, "closed before the end"
        return bytes(got)
