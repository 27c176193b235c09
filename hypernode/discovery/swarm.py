"""The trio adapters of discovery: a DHT node on a UDP socket, and a swarm of topics on top of it.

``async with DHTNode(bootstrap=[...]) as dht:`` binds a UDP socket and runs an
:class:`~hypernode.discovery.rpc.RPCNode` on it (with a :class:`~hypernode.discovery.dht.PeerStore`, so
it answers ``peers`` queries and holds announcements, and a
:class:`~hypernode.discovery.values.ValueStore` for the mutable and immutable values): one task reads
datagrams, one keeps time. With
``ephemeral=False`` and no bootstrap list it is a bootstrap node; with a bootstrap list, a DHT node.

``async with Swarm(bootstrap=[...], on_peer=...) as swarm:`` is hyperswarm 2's discovery for a TCP
service: :meth:`Swarm.join` a 32-byte topic to announce our TCP port under it and/or look it up, again
every ``refresh`` seconds (hyperswarm waits 5 to 10 minutes); :meth:`Swarm.leave` stops and
unannounces. Each peer found (by the DHT, or on the local network with ``local=True``, see
:mod:`hypernode.discovery.local`) is handed to ``on_peer`` once per round; connecting to it, and not
twice, is the caller's job (:class:`hypernode.node.Node` does it).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import random
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import trio

from hypernode.discovery.addresses import Peer
from hypernode.discovery.dht import PeerStore, parse_peers_output, peers_input
from hypernode.discovery.rpc import Address, Query, QueryDone, QueryReply, RPCConfig, RPCNode
from hypernode.discovery.values import ValueStore
from hypernode.tasks import cleanup, open_service_nursery

log = logging.getLogger(__name__)

# the bootstrap nodes @hyperswarm/dht 4 (and so hyperswarm 2) uses when given none
DEFAULT_BOOTSTRAP: list[Address] = [
    ("bootstrap1.hyperdht.org", 49737),
    ("bootstrap2.hyperdht.org", 49737),
    ("bootstrap3.hyperdht.org", 49737),
]
REFRESH = 300.0  # seconds between announces/lookups of a topic (times 1 to 2, as hyperswarm)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def resolve(addresses: Iterable[Address]) -> list[Address]:
    """Bootstrap addresses with their names resolved to IPv4 (those that do not resolve are left out)."""
    out: list[Address] = []
    for host, port in addresses:
        try:
            infos = await trio.socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as e:
            log.warning("bootstrap node %s:%d does not resolve: %s", host, port, e)
            continue
        if infos:
            out.append((str(infos[0][4][0]), port))
    return out


@dataclass
class QueryResult:
    replies: int
    error: str | None


class DHTNode:
    """An :class:`RPCNode` on a UDP socket. Use as ``async with``."""

    def __init__(self, *, host: str | None = None, port: int = 0, bootstrap: Iterable[Address] = (),
                 ephemeral: bool = True, config: RPCConfig | None = None, id: bytes | None = None,
                 store: PeerStore | None = None) -> None:
        self._bootstrap_names = list(bootstrap)
        self.host = host if host is not None else (
            "127.0.0.1" if self._bootstrap_names and all(is_loopback(h) for h, _ in self._bootstrap_names)
            else "0.0.0.0")
        self._port = port
        self.rpc = RPCNode(id=id, ephemeral=ephemeral, config=config)
        self.store = store or PeerStore()
        self.store.register(self.rpc)
        self.values = ValueStore()
        self.values.register(self.rpc)
        self.port: int | None = None
        self.send_errors = 0
        self._sock: socket.socket | None = None
        self._tsock: Any = None
        self._waiters: dict[Query, tuple[trio.Event, Callable[[QueryReply], None] | None]] = {}
        self._bootstrapped = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def id(self) -> bytes:
        return self.rpc.id

    @property
    def stats(self) -> Any:
        return self.rpc.stats

    @property
    def address(self) -> Address:
        assert self.port is not None
        return ("127.0.0.1" if self.host == "0.0.0.0" else self.host, self.port)

    async def __aenter__(self) -> DHTNode:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self._port))
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            where = f"{self.host}:{self._port} (UDP)"
            raise OSError(e.errno, f"cannot listen on {where}: {e.strerror or e}") from e
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._tsock = trio.socket.from_stdlib_socket(sock)
        self.port = sock.getsockname()[1]
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self._close_socket)  # after the tasks have ended
            self.rpc.bootstrap_nodes = await resolve(self._bootstrap_names)
            self.rpc.tick(trio.current_time())
            self._nursery = await stack.enter_async_context(open_service_nursery())
            self._nursery.start_soon(self._receiver)
            self._nursery.start_soon(self._timer)
            self._nursery.start_soon(self._bootstrap)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "the DHT node was not entered"
        return await stack.__aexit__(exc_type, exc, tb)

    def _close_socket(self) -> None:
        self._nursery = None
        if self._sock is not None:
            self._sock.close()

    # -- I/O ---------------------------------------------------------------------------------------

    def _flush(self) -> None:
        assert self._sock is not None
        for data, addr in self.rpc.datagrams():
            try:
                self._sock.sendto(data, addr)
            except OSError as e:  # a full buffer, an unreachable address: the request will time out
                self.send_errors += 1
                log.debug("sendto %s failed: %s", addr, e)
        for ev in self.rpc.events():
            waiter = self._waiters.get(ev.query)
            if waiter is None:
                continue
            if isinstance(ev, QueryReply):
                if waiter[1] is not None:
                    waiter[1](ev)
            elif isinstance(ev, QueryDone):
                waiter[0].set()
        if self.rpc.bootstrapped:
            self._bootstrapped.set()

    async def _receiver(self) -> None:
        while True:
            try:
                data, addr = await self._tsock.recvfrom(65536)
            except OSError:  # an ICMP error from an earlier send
                self.rpc.stats["socket_errors"] += 1
                continue
            self.rpc.receive(data, (addr[0], addr[1]), trio.current_time())
            self._flush()

    async def _timer(self) -> None:
        granularity = min(0.25, self.rpc.config.attempt_timeout / 2)
        while True:
            now = trio.current_time()
            await trio.sleep_until(min(self.rpc.next_deadline(), now + granularity))
            self.rpc.tick(trio.current_time())
            self._flush()

    async def _bootstrap(self) -> None:
        if not self.rpc.bootstrap_nodes:
            self._bootstrapped.set()
            return
        self.rpc.bootstrap()
        self._flush()

    async def wait_bootstrapped(self) -> None:
        """Wait until the first bootstrap (a lookup of our own id) has ended."""
        await self._bootstrapped.wait()

    # -- queries -----------------------------------------------------------------------------------

    async def query(self, command: str, target: bytes, value: bytes | None = None, *, query: bool = True,
                    update: bool = False,
                    on_reply: Callable[[QueryReply], None] | None = None) -> QueryResult:
        """Run a query to its end, ``on_reply`` called with each answer."""
        done = trio.Event()
        q = self.rpc.query(command, target, value, query=query, update=update)
        replies = 0

        def count(ev: QueryReply) -> None:
            nonlocal replies
            replies += 1
            if on_reply is not None:
                on_reply(ev)

        self._waiters[q] = (done, count)
        try:
            if q.done:
                done.set()
            self._flush()
            await done.wait()
        finally:
            self._waiters.pop(q, None)
            self.rpc.cancel(q)
        return QueryResult(replies, q.error)

    async def announce(self, topic: bytes, port: int | None = None,
                       on_peers: Callable[[list[Peer], QueryReply], None] | None = None) -> QueryResult:
        return await self.query("peers", topic, peers_input(port=port), update=True,
                                on_reply=_peers_reply(on_peers))

    async def lookup(self, topic: bytes, port: int | None = None,
                     on_peers: Callable[[list[Peer], QueryReply], None] | None = None) -> QueryResult:
        return await self.query("peers", topic, peers_input(port=port), on_reply=_peers_reply(on_peers))

    async def unannounce(self, topic: bytes, port: int | None = None) -> QueryResult:
        return await self.query("peers", topic, peers_input(port=port, unannounce=True), query=False,
                                update=True)


def _peers_reply(on_peers: Callable[[list[Peer], QueryReply], None] | None) -> Callable[[QueryReply], None]:
    def handle(ev: QueryReply) -> None:
        if on_peers is None or ev.error is not None:
            return
        found = parse_peers_output(ev.value)
        if found is not None and found.peers:
            on_peers(found.peers, ev)

    return handle


@dataclass(frozen=True)
class PeerFound:
    """A peer found for a topic: connect to ``host:port`` over TCP."""

    host: str
    port: int
    topic: bytes = field(repr=False)
    local: bool = False  # found on the local network (mDNS)
    referrer: Address | None = None  # the DHT node that told us


@dataclass
class _Topic:
    key: bytes
    announce: bool
    lookup: bool
    scope: trio.CancelScope
    rounds: int = 0
    changed: trio.Event = field(default_factory=trio.Event)


class Swarm:
    """Topics joined on the DHT (and the local network); peers found go to ``on_peer``."""

    def __init__(self, *, bootstrap: Iterable[Address] | None = None, port: int | None = None,
                 host: str | None = None, dht_port: int = 0, ephemeral: bool = True,
                 on_peer: Callable[[PeerFound], None] | None = None, refresh: float = REFRESH,
                 config: RPCConfig | None = None, local: bool = False,
                 local_options: dict[str, Any] | None = None, dht: bool = True) -> None:
        self.announce_port = port
        self.on_peer = on_peer
        self.refresh = refresh
        self.dht: DHTNode | None = None
        if dht:
            self.dht = DHTNode(host=host, port=dht_port, ephemeral=ephemeral, config=config,
                               bootstrap=DEFAULT_BOOTSTRAP if bootstrap is None else bootstrap)
        self.local: Any = None
        if local:
            from hypernode.discovery.local import LocalDiscovery

            self.local = LocalDiscovery(on_peer=self._found_local, **(local_options or {}))
        self.topics: dict[bytes, _Topic] = {}
        self._leaving: set[bytes] = set()
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Swarm:
        async with contextlib.AsyncExitStack() as stack:
            if self.dht is not None:
                await stack.enter_async_context(self.dht)
            if self.local is not None:
                await stack.enter_async_context(self.local)
            self._nursery = await stack.enter_async_context(open_service_nursery())
            await stack.enter_async_context(cleanup(self._unannounce_all))  # before the tasks end
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "the swarm was not entered"
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        finally:
            self._nursery = None

    async def _unannounce_all(self) -> None:
        """Unannounce what we announced: quickly (2 s at most), best effort."""
        with trio.move_on_after(2):
            async with trio.open_nursery() as nursery:
                for t in list(self.topics.values()):
                    t.scope.cancel()
                    if t.announce and self.dht is not None and t.rounds:
                        nursery.start_soon(self.dht.unannounce, t.key, self.announce_port)

    def _require(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("use the swarm as `async with Swarm(...) as swarm`")
        return self._nursery

    def join(self, topic: bytes, *, announce: bool = False, lookup: bool = True) -> None:
        """Announce our port under ``topic`` and/or look up its peers, now and every ``refresh`` s."""
        if len(topic) != 32:
            raise ValueError("a topic is 32 bytes")
        if not announce and not lookup:
            raise ValueError("join needs announce, lookup or both")
        if announce and not self.announce_port:
            raise ValueError("announcing needs the swarm's TCP port (Swarm(port=...))")
        nursery = self._require()
        old = self.topics.pop(topic, None)
        if old is not None:
            old.scope.cancel()
        t = _Topic(topic, announce, lookup, trio.CancelScope())
        self.topics[topic] = t
        nursery.start_soon(self._topic_loop, t)
        if self.local is not None:
            self.local.join(topic, port=self.announce_port if announce else None, lookup=lookup)

    def leave(self, topic: bytes) -> None:
        """Stop announcing and looking up ``topic``; an announced topic is unannounced."""
        t = self.topics.pop(topic, None)
        if t is None:
            return
        t.scope.cancel()
        if self.local is not None:
            self.local.leave(topic)
        if t.announce and self.dht is not None and t.rounds:
            self._require().start_soon(self._unannounce, topic)

    async def _unannounce(self, topic: bytes) -> None:
        assert self.dht is not None
        with trio.move_on_after(10):
            await self.dht.unannounce(topic, self.announce_port)

    async def flush(self) -> None:
        """Wait until every joined topic has finished one round of announcing/looking up."""
        for t in list(self.topics.values()):
            while not t.rounds and self.topics.get(t.key) is t:
                await t.changed.wait()

    def _self_address(self, host: str, port: int) -> bool:
        return port == self.announce_port and (is_loopback(host) or host in self._own_hosts)

    @property
    def _own_hosts(self) -> set[str]:
        return {self.dht.host} if self.dht is not None else set()

    async def _topic_loop(self, t: _Topic) -> None:
        with t.scope:
            if self.dht is None:
                await trio.sleep_forever()
            await self.dht.wait_bootstrapped()
            retry = 1.0
            while True:
                seen: set[tuple[str, int]] = set()

                def found(peers: list[Peer], ev: QueryReply, seen: set[tuple[str, int]] = seen) -> None:
                    if not t.lookup:
                        return
                    for p in peers:
                        if (p.host, p.port) in seen or self._self_address(p.host, p.port):
                            continue
                        seen.add((p.host, p.port))
                        self._emit(PeerFound(p.host, p.port, t.key, referrer=(ev.host, ev.port)))

                if t.announce:
                    res = await self.dht.announce(t.key, self.announce_port, found)
                else:
                    res = await self.dht.lookup(t.key, self.announce_port, found)
                if res.error:
                    log.info("topic %s: %s", t.key.hex()[:16], res.error)
                t.rounds += 1
                t.changed.set()
                t.changed = trio.Event()
                delay = self.refresh * (1 + random.random()) if math.isfinite(self.refresh) else math.inf
                if res.error == "No nodes responded":  # the DHT is out of reach: try again sooner
                    delay, retry = min(delay, retry), min(retry * 2, 60.0)
                else:
                    retry = 1.0
                await trio.sleep(delay)

    def _found_local(self, peer: PeerFound) -> None:
        t = self.topics.get(peer.topic)
        if t is None or not t.lookup or self._self_address(peer.host, peer.port):
            return
        self._emit(peer)

    def _emit(self, peer: PeerFound) -> None:
        if self.on_peer is not None:
            self.on_peer(peer)
