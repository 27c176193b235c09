"""A lossy UDP relay for tests: a client sends to the relay's port, the relay forwards to the target (from
its own port, so the target answers the relay) and the target's answers back to the client, dropping,
delaying (so that later datagrams overtake: reordering) and duplicating a fraction of them, as a seeded
random generator decides.

``async with LossyRelay(("127.0.0.1", port), loss=0.05, reorder=0.05, duplicate=0.02) as relay:`` then
connect to ``("127.0.0.1", relay.port)``. ``spare`` datagrams at the start of each direction pass intact
(libutp never sends its SYN-ACK again, so a JS acceptor whose SYN-ACK is lost never connects);
``drop_if(data, direction, index)`` drops chosen datagrams (direction "up" is client to target).
"""

from __future__ import annotations

import contextlib
import random
import socket
from collections import Counter
from collections.abc import Callable
from types import TracebackType

import trio

Address = tuple[str, int]


class LossyRelay:
    def __init__(self, target: Address, *, loss: float = 0.0, reorder: float = 0.0, duplicate: float = 0.0,
                 delay: tuple[float, float] = (0.001, 0.02), seed: int = 0, spare: int = 0,
                 drop_if: Callable[[bytes, str, int], bool] | None = None) -> None:
        self.target = target
        self.loss = loss
        self.reorder = reorder
        self.duplicate = duplicate
        self.delay = delay
        self.spare = spare
        self.drop_if = drop_if
        self.rng = random.Random(seed)
        self.stats: Counter[str] = Counter()
        self.client: Address | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self._counts: Counter[str] = Counter()
        self._nursery: trio.Nursery | None = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> LossyRelay:
        self._nursery = await self._stack.enter_async_context(trio.open_nursery())
        self._nursery.start_soon(self._run)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        try:
            return await self._stack.__aexit__(exc_type, exc, tb)
        finally:
            self._sock.close()

    def _send(self, data: bytes, to: Address) -> None:
        try:
            self._sock.sendto(data, to)
        except OSError:
            self.stats["send_errors"] += 1

    async def _later(self, data: bytes, to: Address, delay: float) -> None:
        await trio.sleep(delay)
        self._send(data, to)

    async def _run(self) -> None:
        assert self._nursery is not None
        while True:
            await trio.lowlevel.wait_readable(self._sock)
            while True:
                try:
                    data, addr = self._sock.recvfrom(65536)
                except BlockingIOError:
                    break
                except OSError:
                    continue
                addr = (addr[0], addr[1])
                if addr == self.target:
                    direction, to = "down", self.client
                else:
                    self.client = addr
                    direction, to = "up", self.target
                if to is None:
                    continue
                index = self._counts[direction]
                self._counts[direction] += 1
                self.stats[f"{direction}_packets"] += 1
                if self.drop_if is not None and self.drop_if(data, direction, index):
                    self.stats["dropped"] += 1
                    continue
                spared = index < self.spare
                if not spared and self.rng.random() < self.loss:
                    self.stats["dropped"] += 1
                    continue
                copies = 2 if not spared and self.rng.random() < self.duplicate else 1
                self.stats["duplicated"] += copies - 1
                for _ in range(copies):
                    if not spared and self.rng.random() < self.reorder:
                        self.stats["delayed"] += 1
                        self._nursery.start_soon(self._later, data, to, self.rng.uniform(*self.delay))
                    else:
                        self._send(data, to)
