"""The trio adapters of discovery: a DHT node on a UDP socket, and a swarm of topics on top of it.

``async with DHTNode(bootstrap=[...]) as dht:`` (or :func:`open_dht_node`) binds a UDP socket and runs
an :class:`~hypernode.discovery.rpc.RPCNode` on it (with a :class:`~hypernode.discovery.dht.PeerStore`,
so it answers ``peers`` queries and holds announcements, and a
:class:`~hypernode.discovery.values.ValueStore` for the mutable and immutable values): one task reads
datagrams, one keeps time. With ``ephemeral=False`` and no bootstrap list it is a bootstrap node; with a
bootstrap list, a DHT node. A query runs to its end with :meth:`DHTNode.query` (:meth:`~DHTNode.announce`,
:meth:`~DHTNode.lookup`, :meth:`~DHTNode.unannounce`), or its answers are read as they come with
``async with dht.open_query(...) as replies: async for reply in replies:`` (:meth:`~DHTNode.open_lookup`
and :meth:`~DHTNode.open_announce` give the peers of each answer).

``async with Swarm(bootstrap=[...]) as swarm:`` (or :func:`open_swarm`) is hyperswarm 2's discovery for a
TCP service: :meth:`Swarm.join` a 32-byte topic to announce our TCP port under it and/or look it up,
again every ``refresh`` seconds (hyperswarm waits 5 to 10 minutes); :meth:`Swarm.leave` stops and
unannounces. Each peer found (by the DHT, or on the local network with ``local=True``, see
:mod:`hypernode.discovery.local`) comes once per round through :meth:`Swarm.peers`, a bounded channel
(``async for peer in swarm.peers():``, see :mod:`hypernode.discovery.found`); connecting to it, and not
twice, is the caller's job (:mod:`hypernode.discovery.peering` does it for a node).

With ``utp=True`` the swarm is hyperswarm 2's network too: a :class:`~hypernode.utp.socket.UTPSocket`
bound to the announced TCP port carries uTP and, through its
:attr:`~hypernode.utp.socket.UTPSocket.datagrams`, the DHT node's traffic (one UDP socket, so the NAT
mapping the DHT sees is where uTP and holepunches reach us; the announce then says port 0, and the DHT
records that mapped port). :meth:`Swarm.connect` races TCP and uTP to a peer, the uTP way after a
holepunch relayed by the DHT node that referred the peer (:meth:`DHTNode.holepunch`); the first to
connect wins, the others are closed.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import math
import random
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import trio

from hypernode.discovery.addresses import Peer
from hypernode.discovery.dht import PeerStore, parse_peers_output, peers_input
from hypernode.discovery.found import Broadcast, DroppingChannel, PeerFound
from hypernode.discovery.local import LocalDiscovery
from hypernode.discovery.rpc import Address, Query, QueryDone, QueryReply, RPCConfig, RPCNode
from hypernode.discovery.values import ValueStore
from hypernode.errors import connect_reason
from hypernode.tasks import Service, cleanup, open_service_nursery, opener
from hypernode.utp.connection import UTPConfig
from hypernode.utp.socket import SharedDatagrams, UTPSocket, open_utp_socket, transport_of

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BOOTSTRAP", "DHTNode", "PeerFound", "PeerReplies", "QueryReplies", "QueryResult",
           "Swarm", "open_dht_node", "open_swarm", "transport_of"]

# the bootstrap nodes @hyperswarm/dht 4 (and so hyperswarm 2) uses when given none
DEFAULT_BOOTSTRAP: list[Address] = [
    ("bootstrap1.hyperdht.org", 49737),
    ("bootstrap2.hyperdht.org", 49737),
    ("bootstrap3.hyperdht.org", 49737),
]
REFRESH = 300.0  # seconds between announces/lookups of a topic (times 1 to 2, as hyperswarm)
REPLIES_BUFFER = 1024  # answers of one query waiting for a slow reader, at most (the oldest dropped)
CONNECT_TIMEOUT = 10.0  # s a connect (TCP, holepunch and uTP raced) may take, hyperswarm 2's
PEERS_BUFFER = 256  # peers found waiting for a slow reader of Swarm.peers(), at most (the oldest dropped)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def resolve(addresses: Iterable[Address]) -> list[Address]:
    """Bootstrap addresses with their names resolved to IPv4 (those that do not resolve are left out:
    each is logged at info level, and one warning says so when none resolves, as on a machine offline)."""
    addresses = list(addresses)
    out: list[Address] = []
    failed: list[str] = []
    for host, port in addresses:
        try:
            infos = await trio.socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as e:
            log.info("bootstrap node %s:%d does not resolve: %s", host, port, e.strerror or e)
            failed.append(host)
            continue
        if infos:
            out.append((str(infos[0][4][0]), port))
    if addresses and not out:
        log.warning("no DHT bootstrap node resolves (%s): peers are found only on the local network and "
                    "through --peer", ", ".join(failed))
    return out


@dataclass
class QueryResult:
    """How a query ended: how many nodes answered, and the DHT's verdict on it (``None``, or
    ``"No nodes responded"`` / ``"No close nodes responded"``, as dht-rpc says it). The verdict is data
    about the network, not a failure of ours: nobody there yet is an ordinary outcome (the swarm then
    looks again sooner), so it is returned, not raised."""

    replies: int
    error: str | None


class QueryReplies(DroppingChannel[QueryReply]):
    """The answers to one query as they come (a channel: ``async for reply in replies``), ended when
    the query ends; :attr:`result` then says how it ended. At most ``maxsize`` answers wait for a slow
    reader, the oldest dropped beyond (:attr:`dropped`); :attr:`result` counts them all."""

    def __init__(self, query: Query, maxsize: int) -> None:
        super().__init__(maxsize)
        self.query = query
        self.count = 0

    def _reply(self, reply: QueryReply) -> None:
        self.count += 1
        self.put(reply)

    @property
    def result(self) -> QueryResult:
        """The answers so far and the DHT's verdict (final once the channel has ended)."""
        return QueryResult(self.count, self.query.error)


class PeerReplies:
    """The peers in the answers to a ``peers`` query, as they come: ``async for peers, reply in ...``
    (answers without peers, or with an error, are skipped); :attr:`result` as :class:`QueryReplies`."""

    def __init__(self, replies: QueryReplies) -> None:
        self.replies = replies

    def __aiter__(self) -> PeerReplies:
        return self

    async def __anext__(self) -> tuple[list[Peer], QueryReply]:
        async for reply in self.replies:
            if reply.error is not None:
                continue
            found = parse_peers_output(reply.value)
            if found is not None and found.peers:
                return found.peers, reply
        raise StopAsyncIteration

    @property
    def result(self) -> QueryResult:
        return self.replies.result


class DHTNode(Service):
    """An :class:`RPCNode` on a UDP socket. Open it with ``async with DHTNode(...)`` or
    :func:`open_dht_node`."""

    def __init__(self, *, host: str | None = None, port: int = 0, bootstrap: Iterable[Address] = (),
                 ephemeral: bool = True, config: RPCConfig | None = None, id: bytes | None = None,
                 store: PeerStore | None = None, datagrams: SharedDatagrams | None = None) -> None:
        """``datagrams``: run on a UDP socket shared with uTP (its
        :attr:`~hypernode.utp.socket.UTPSocket.datagrams`) instead of binding one."""
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
        self.datagrams = datagrams  # set before the node is entered (the swarm does, for uTP)
        self._waiters: dict[Query, QueryReplies] = {}
        self._bootstrapped = trio.Event()
        self._nursery: trio.Nursery | None = None

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

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        if self.datagrams is not None:
            self.port = self.datagrams.local_address[1]
            async with self._running(self._shared_receiver):
                yield
            return
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
        try:
            self._sock = sock
            self._tsock = trio.socket.from_stdlib_socket(sock)
            self.port = sock.getsockname()[1]
            async with self._running(self._receiver):
                yield
        finally:  # after the tasks have ended
            sock.close()

    @contextlib.asynccontextmanager
    async def _running(self, receiver: Any) -> AsyncIterator[None]:
        try:
            self.rpc.bootstrap_nodes = await resolve(self._bootstrap_names)
            self.rpc.tick(trio.current_time())
            async with open_service_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(receiver)
                nursery.start_soon(self._timer)
                nursery.start_soon(self._bootstrap)
                yield
        finally:
            self._nursery = None

    # -- I/O ---------------------------------------------------------------------------------------

    def _flush(self) -> None:
        for data, addr in self.rpc.datagrams():
            if self.datagrams is not None:
                self.datagrams.sendto(data, addr)
                continue
            assert self._sock is not None
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
                waiter._reply(ev)
            elif isinstance(ev, QueryDone):
                waiter.end()
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

    async def _shared_receiver(self) -> None:
        assert self.datagrams is not None
        async for data, addr in self.datagrams:
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

    async def holepunch(self, peer: Address, referrer: Address) -> bool:
        """Ask ``referrer`` (the DHT node that told us of ``peer``) to relay a holepunch to it (see
        :meth:`RPCNode.holepunch`); True once the peer answered us, False if it never did (the dht-rpc
        tries, about 6 s)."""
        if self._nursery is None:
            raise RuntimeError("use the DHT node as `async with DHTNode(...) as dht`")
        answered: list[bool] = []
        done = trio.Event()

        def on_answer(msg: Any) -> None:
            answered.append(msg is not None)
            done.set()

        self.rpc.holepunch(peer, referrer, on_answer)
        self._flush()
        await done.wait()
        return answered[0]

    # -- queries -----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open_query(self, command: str, target: bytes, value: bytes | None = None, *,
                         query: bool = True, update: bool = False,
                         maxsize: int = REPLIES_BUFFER) -> AsyncIterator[QueryReplies]:
        """Start a query; its answers come through the :class:`QueryReplies` channel given, which ends
        with the query. Leaving the block stops the query if it still runs."""
        if self._nursery is None:
            raise RuntimeError("use the DHT node as `async with DHTNode(...) as dht`")
        q = self.rpc.query(command, target, value, query=query, update=update)
        replies = QueryReplies(q, maxsize)
        self._waiters[q] = replies
        try:
            if q.done:
                replies.end()
            self._flush()
            yield replies
        finally:
            self._waiters.pop(q, None)
            self.rpc.cancel(q)
            replies.end()

    @contextlib.asynccontextmanager
    async def open_announce(self, topic: bytes, port: int | None = None, *,
                            maxsize: int = REPLIES_BUFFER) -> AsyncIterator[PeerReplies]:
        """Announce ``port`` (None: our UDP port) under ``topic``; the peers the nodes on the way know
        come through the :class:`PeerReplies` given."""
        async with self.open_query("peers", topic, peers_input(port=port), update=True,
                                   maxsize=maxsize) as replies:
            yield PeerReplies(replies)

    @contextlib.asynccontextmanager
    async def open_lookup(self, topic: bytes, port: int | None = None, *,
                          maxsize: int = REPLIES_BUFFER) -> AsyncIterator[PeerReplies]:
        """Look ``topic`` up (``port``: ours, left out of the answers); the peers found come through
        the :class:`PeerReplies` given."""
        async with self.open_query("peers", topic, peers_input(port=port), maxsize=maxsize) as replies:
            yield PeerReplies(replies)

    async def query(self, command: str, target: bytes, value: bytes | None = None, *, query: bool = True,
                    update: bool = False) -> QueryResult:
        """Run a query to its end (its answers: :meth:`open_query`)."""
        async with self.open_query(command, target, value, query=query, update=update) as replies:
            async for _ in replies:
                pass
        return replies.result

    async def announce(self, topic: bytes, port: int | None = None) -> QueryResult:
        """Announce ``port`` under ``topic``, to the end (the peers on the way: :meth:`open_announce`)."""
        return await self.query("peers", topic, peers_input(port=port), update=True)

    async def lookup(self, topic: bytes, port: int | None = None) -> QueryResult:
        """Look ``topic`` up, to the end (the peers found: :meth:`open_lookup`)."""
        return await self.query("peers", topic, peers_input(port=port))

    async def unannounce(self, topic: bytes, port: int | None = None) -> QueryResult:
        return await self.query("peers", topic, peers_input(port=port, unannounce=True), query=False,
                                update=True)


open_dht_node = opener(DHTNode)


@dataclass
class _Topic:
    key: bytes
    announce: bool
    lookup: bool
    scope: trio.CancelScope
    rounds: int = 0
    changed: trio.Event = field(default_factory=trio.Event)


class Swarm(Service):
    """Topics joined on the DHT (and the local network); the peers found come through :meth:`peers`.
    Open it with ``async with Swarm(...)`` or :func:`open_swarm`."""

    def __init__(self, *, bootstrap: Iterable[Address] | None = None, port: int | None = None,
                 host: str | None = None, dht_port: int = 0, ephemeral: bool = True,
                 refresh: float = REFRESH, config: RPCConfig | None = None, local: bool = False,
                 local_options: dict[str, Any] | None = None, dht: bool = True, utp: bool = False,
                 utp_config: UTPConfig | None = None, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.announce_port = port
        self.refresh = refresh
        self.dht: DHTNode | None = None
        if dht:
            self.dht = DHTNode(host=host, port=dht_port, ephemeral=ephemeral, config=config,
                               bootstrap=DEFAULT_BOOTSTRAP if bootstrap is None else bootstrap)
        self._utp_wanted = utp
        self._utp_config = utp_config
        self._utp_host = host if host is not None else (self.dht.host if self.dht is not None else "0.0.0.0")
        self.utp: UTPSocket | None = None  # while open with utp=True: the UDP socket of uTP and the DHT
        self.connect_timeout = connect_timeout
        self.local: LocalDiscovery | None = None
        if local:
            self.local = LocalDiscovery(**(local_options or {}))
        self.topics: dict[bytes, _Topic] = {}
        self._found: Broadcast[PeerFound] = Broadcast(key=lambda p: p.key)
        self._nursery: trio.Nursery | None = None

    def peers(self, maxsize: int = PEERS_BUFFER) -> DroppingChannel[PeerFound]:
        """A channel of the peers found from now on, ended when the swarm closes::

            async with swarm.peers() as found:  # or: found = swarm.peers()
                swarm.join(topic)
                async for peer in found: ...

        Each listener has its own; at most ``maxsize`` peers wait in it, each (host, port, topic) once,
        the oldest dropped beyond that (:mod:`hypernode.discovery.found`): a reader that falls behind
        misses the oldest hints, it never makes memory grow."""
        return self._found.listen(maxsize)

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        self._found.restart()
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self._utp_wanted:
                    self.utp = await self._open_utp(stack)
                    if self.dht is not None:
                        self.dht.datagrams = self.utp.datagrams
                    await stack.enter_async_context(cleanup(self._forget_utp))
                if self.dht is not None:
                    await stack.enter_async_context(self.dht)
                local_found: DroppingChannel[PeerFound] | None = None
                if self.local is not None:
                    await stack.enter_async_context(self.local)
                    local_found = self.local.peers()
                self._nursery = await stack.enter_async_context(open_service_nursery())
                await stack.enter_async_context(cleanup(self._unannounce_all))  # before the tasks end
                if local_found is not None:
                    self._nursery.start_soon(self._relay_local, local_found)
                yield
        finally:
            self._nursery = None
            self._found.end()

    async def _open_utp(self, stack: contextlib.AsyncExitStack) -> UTPSocket:
        """uTP on our TCP port, as hyperswarm 2 (or on any port, with a warning, when that UDP port is
        taken: then the TCP port is announced, and uTP serves only the connections we make)."""
        port = self.announce_port or 0
        try:
            return await stack.enter_async_context(
                open_utp_socket(self._utp_host, port, config=self._utp_config, linger=0.5))
        except OSError as e:
            if not port:
                raise
            log.warning("uTP cannot share TCP port %d (%s): it runs on another UDP port, which peers "
                        "behind NAT cannot be told of", port, e.strerror or e)
        return await stack.enter_async_context(
            open_utp_socket(self._utp_host, 0, config=self._utp_config, linger=0.5))

    async def _forget_utp(self) -> None:
        if self.dht is not None:
            self.dht.datagrams = None
        await trio.lowlevel.checkpoint()

    @property
    def _record_port(self) -> int | None:
        """The port we announce: none (the DHT node takes our UDP port as it sees it, the mapping of our
        NAT, which is where uTP and holepunches reach us) when uTP shares the TCP port, as hyperswarm 2
        announces; else the TCP port."""
        if self.utp is not None and self.announce_port and self.utp.port == self.announce_port:
            return None
        return self.announce_port

    @property
    def utp_port(self) -> int | None:
        return self.utp.port if self.utp is not None else None

    async def connect(self, host: str, port: int, *, referrer: Address | None = None,
                      timeout: float | None = None) -> trio.abc.Stream:
        """A stream to a peer, as hyperswarm 2's ``connect``: TCP and (with uTP) a uTP connection are
        tried at once, the uTP one after a holepunch relayed by ``referrer`` (the DHT node that told us
        of the peer) when there is one; the first to connect wins and the others are closed. Raises
        OSError naming why each way failed, at once when all have, or after ``timeout`` (the swarm's
        ``connect_timeout``, hyperswarm's 10 s). As in hyperswarm, a holepunch that gets no answer (about
        6 s: a symmetric NAT on either side, or a referrer that does not relay) ends the uTP way.
        :func:`~hypernode.utp.socket.transport_of` says which way won."""
        timeout = self.connect_timeout if timeout is None else timeout
        winner: list[trio.abc.Stream] = []
        why: dict[str, str] = {}

        async def attempt(name: str, opening: Any, nursery: trio.Nursery) -> None:
            try:
                stream = await opening()
            except (OSError, trio.TooSlowError) as e:
                why.setdefault(name, connect_reason(e) if isinstance(e, OSError) else "timed out")
                return
            if winner:
                await trio.aclose_forcefully(stream)
                return
            winner.append(stream)
            nursery.cancel_scope.cancel()

        async def tcp() -> trio.abc.Stream:
            return await trio.open_tcp_stream(host, port)

        async def utp() -> trio.abc.Stream:
            assert self.utp is not None
            punched = False
            if referrer is not None and self.dht is not None and self.dht._nursery is not None:
                punched = await self.dht.holepunch((host, port), referrer)
                if not punched:  # hyperswarm 2 gives the uTP way up then
                    raise OSError(f"no answer through {referrer[0]}:{referrer[1]}")
            stream = await self.utp.connect(host, port)
            stream.holepunched = punched
            return stream

        with trio.move_on_after(timeout) as timer:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(attempt, "TCP", tcp, nursery)
                if self.utp is not None:
                    nursery.start_soon(attempt, "holepunch" if referrer else "uTP", utp, nursery)
        if winner:
            return winner[0]
        if timer.cancelled_caught:
            why.setdefault("TCP", "timed out")
            if self.utp is not None and "holepunch" not in why:
                why.setdefault("uTP", "timed out")
        reasons = "; ".join(f"{k}: {v}" for k, v in why.items())
        if referrer is not None and "holepunch" in why:
            reasons += " (the peer is gone, or a symmetric NAT on either side stops holepunches)"
        raise OSError(errno.ETIMEDOUT if timer.cancelled_caught else errno.ECONNREFUSED,
                      f"cannot connect to {host}:{port}: {reasons}")

    async def _unannounce_all(self) -> None:
        """Unannounce what we announced: quickly (2 s at most), best effort."""
        with trio.move_on_after(2):
            async with trio.open_nursery() as nursery:
                for t in list(self.topics.values()):
                    t.scope.cancel()
                    if t.announce and self.dht is not None and t.rounds:
                        nursery.start_soon(self.dht.unannounce, t.key, self._record_port)

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
            await self.dht.unannounce(topic, self._record_port)

    async def flush(self) -> None:
        """Wait until every joined topic has finished one round of announcing/looking up."""
        for t in list(self.topics.values()):
            while not t.rounds and self.topics.get(t.key) is t:
                await t.changed.wait()

    def _self_address(self, host: str, port: int) -> bool:
        return port in (self.announce_port, self.utp_port) and (is_loopback(host) or host in self._own_hosts)

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
                opening = self.dht.open_announce if t.announce else self.dht.open_lookup
                async with opening(t.key, self._record_port) as replies:
                    async for peers, reply in replies:
                        if not t.lookup:
                            continue
                        for p in peers:
                            if (p.host, p.port) in seen or self._self_address(p.host, p.port):
                                continue
                            seen.add((p.host, p.port))
                            referrer = (reply.host, reply.port)
                            self._found.put(PeerFound(p.host, p.port, t.key, referrer=referrer))
                res = replies.result
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

    async def _relay_local(self, found: DroppingChannel[PeerFound]) -> None:
        """The peers the local network discovery finds, for the topics we look up."""
        async for peer in found:
            t = self.topics.get(peer.topic)
            if t is None or not t.lookup or self._self_address(peer.host, peer.port):
                continue
            self._found.put(peer)


open_swarm = opener(Swarm)

