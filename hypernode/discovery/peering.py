"""Peering: the peers a :class:`~hypernode.discovery.swarm.Swarm` finds, connected to a replication server.

:class:`Peering` runs the swarm for a :class:`hypernode.node.Node`: each drive's discovery key is joined
(announced when the node listens, looked up always), and each peer found (read from the swarm's
:meth:`~hypernode.discovery.swarm.Swarm.peers` channel by a task of its own) is connected by
:meth:`~hypernode.discovery.swarm.Swarm.connect` (TCP and holepunched uTP raced) and replicated through
the node's :class:`~hypernode.replication.server.ReplicationServer`, as hyperswarm 2 does for
hyperdrive. With ``utp`` (the default) the swarm runs uTP on the node's port and, when the node
listens, the uTP connections made to us are replicated too, each remote address within the
``limiter``'s cap (the server's, shared with its TCP listener: :mod:`hypernode.limits`); one the DHT
relayed a holepunch for just before is marked holepunched. One peer, one connection:

- by address: a peer already connected, being connected, or given to the node with ``--peer`` is not
  dialled again; neither is our own address;
- by Noise public key (the node uses one key pair for all its connections): when two connections end
  up joining the same two nodes (each found the other), the one initiated by the node with the smaller
  key survives, hyperswarm's rule, so both sides agree without talking. The node with the larger key
  closes its own outgoing connection; a sweep repeats the check, since the two handshakes may end in
  either order.

A peer that cannot be reached is retried after ``retry_delays`` (hyperswarm: 1, 5, 15 s) and then
forgotten until the next lookup finds it again; why it could not be reached is kept in
:attr:`Peering.peer_errors` (the node's, which names it when a wait for a peer gives up).

What Peering needs of the node is explicit: the replication ``server`` (its live ``sessions``, and
``replicate`` over a new connection), the node's Noise ``key_pair`` (the server's by default) and
listening ``port``/``host``, and ``handled``, a predicate for the addresses the node connects to itself
(``--peer``). Peering never sets anything on a session: the connections it closed as duplicates are in
a set of its own.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import trio

from hypernode.discovery.found import DroppingChannel, PeerFound
from hypernode.discovery.swarm import Swarm
from hypernode.errors import connect_reason
from hypernode.limits import AddressLimiter
from hypernode.replication.server import ReplicationServer, log_connection_end
from hypernode.replication.session import ReplicationSession
from hypernode.tasks import Service, open_service_nursery, open_task_nursery, opener
from hypernode.utp.socket import UTPSocket, UTPStream
from hypernode.wire.noise import KeyPair

log = logging.getLogger(__name__)

__all__ = ["Peering", "open_peering"]

Address = tuple[str, int]


def _nothing_handled(address: Address) -> bool:
    return False


class Peering(Service):
    """A swarm whose peers found are connected and replicated. Open it with ``async with
    Peering(...)`` or :func:`open_peering`."""

    def __init__(self, *, server: ReplicationServer, key_pair: KeyPair | None = None,
                 port: int | None = None, host: str = "127.0.0.1",
                 handled: Callable[[Address], bool] = _nothing_handled,
                 peer_errors: dict[Address, str] | None = None,
                 bootstrap: Iterable[Address] | None, local: bool = False,
                 retry_delays: tuple[float, ...] = (1.0, 5.0, 15.0), dedup_interval: float = 1.0,
                 utp: bool = True, limiter: AddressLimiter | None = None, **swarm_options: Any) -> None:
        key_pair = key_pair or server.key_pair
        if key_pair is None:
            raise TypeError("Peering needs a key_pair= (or a server with one): peers dedup by it")
        self.server = server
        self.key_pair = key_pair
        self.port = port  # ours: announced, and never dialled
        self.host = host
        self._handled = handled
        # found peer -> why the last attempt to connect to it failed, or why its connection ended;
        # cleared once a connection to it is made
        self.peer_errors: dict[Address, str] = {} if peer_errors is None else peer_errors
        self.retry_delays = retry_delays
        self.dedup_interval = dedup_interval
        use_dht = bootstrap is None or bool(list(bootstrap))
        self.swarm = Swarm(bootstrap=None if bootstrap is None else list(bootstrap), port=port,
                           local=local, dht=use_dht, utp=utp, **swarm_options)
        # incoming connections per remote address, TCP and uTP together (shared with the TCP listener)
        self.limiter: AddressLimiter = limiter or server.limiter
        # address -> live session (None while connecting)
        self.dialling: dict[Address, ReplicationSession | None] = {}
        self.duplicates_closed = 0
        self._duplicate_of: dict[Address, bytes] = {}  # address -> key we are connected to already
        # our sessions closed by the rule, until they end
        self._closed_as_duplicates: set[ReplicationSession] = set()
        self._nursery: trio.Nursery | None = None

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        async with self.swarm:
            found = self.swarm.peers()
            try:
                async with open_service_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._sweep)
                    nursery.start_soon(self._dial_found, found)
                    if self.swarm.utp is not None and self.port is not None:
                        self.swarm.utp.listen()
                        nursery.start_soon(self._accept_utp, self.swarm.utp)
                    yield
            finally:
                self._nursery = None
                found.close()

    def join(self, discovery_key: bytes) -> None:
        """Announce (if the node listens) and look up the drive of this discovery key."""
        self.swarm.join(discovery_key, announce=self.port is not None, lookup=True)

    def leave(self, discovery_key: bytes) -> None:
        self.swarm.leave(discovery_key)

    # -- connecting --------------------------------------------------------------------------------

    async def _dial_found(self, found: DroppingChannel[PeerFound]) -> None:
        async for peer in found:
            self._found(peer)

    def _found(self, peer: PeerFound) -> None:
        addr = (peer.host, peer.port)
        if addr in self.dialling or self._handled(addr) or self._nursery is None:
            return
        key = self._duplicate_of.get(addr)
        if key is not None:
            if any(s.remote_public_key == key and not s.closed for s in self.server.sessions):
                return  # that peer is connected already (it dialled us)
            del self._duplicate_of[addr]
        if self.port is not None and peer.port == self.port and peer.host in (
                self.host, "127.0.0.1", "0.0.0.0"):
            return
        self.dialling[addr] = None
        self._nursery.start_soon(self._connect, addr, peer.referrer)

    async def _connect(self, addr: Address, referrer: Address | None = None) -> None:
        failures = 0
        try:
            while failures <= len(self.retry_delays):
                try:
                    tcp = await self.swarm.connect(*addr, referrer=referrer)
                except OSError as e:
                    # named when a wait gives up: each way tried, and why it failed
                    self.peer_errors[addr] = str(e).split(": ", 1)[-1] if str(e) else connect_reason(e)
                    log.info("found peer %s:%d unreachable: %s", *addr, self.peer_errors[addr])
                    failures += 1
                else:
                    failures = 0
                    session: ReplicationSession | None = None
                    error: Exception | None = None
                    try:
                        async with open_task_nursery() as nursery:
                            session = await nursery.start(functools.partial(
                                self.server.replicate, tcp, initiator=True, key_pair=self.key_pair))
                            self.dialling[addr] = session
                            self.peer_errors.pop(addr, None)
                            self._dedup()
                    except Exception as e:  # noqa: BLE001 - this connection failed: retried
                        error = e
                    self.dialling[addr] = None
                    if session is not None and session in self._closed_as_duplicates:
                        self._closed_as_duplicates.discard(session)
                        if session.remote_public_key is not None:
                            self._duplicate_of[addr] = session.remote_public_key
                            if len(self._duplicate_of) > 4096:
                                self._duplicate_of.pop(next(iter(self._duplicate_of)))
                        return
                    log_connection_end(log, f"found peer {addr[0]}:{addr[1]}", error)
                    failures += 1
                if failures and failures <= len(self.retry_delays):
                    await trio.sleep(self.retry_delays[failures - 1])
        finally:
            self.dialling.pop(addr, None)

    async def _accept_utp(self, utp: UTPSocket) -> None:
        """Replicate over each uTP connection made to us (within the per-address limit)."""
        assert self._nursery is not None
        while True:
            try:
                stream = await utp.accept()
            except trio.ClosedResourceError:
                return
            punched = self.swarm.dht.rpc.punched if self.swarm.dht is not None else {}
            at = punched.get(stream.remote_address)
            stream.holepunched = at is not None and trio.current_time() - at < 30
            self._nursery.start_soon(self._serve_utp, stream)

    async def _serve_utp(self, stream: UTPStream) -> None:
        async with stream:
            with self.limiter.admit(stream.remote_address[0]) as admitted:
                if not admitted:
                    return
                error: Exception | None = None
                try:
                    await self.server.replicate(stream, initiator=False, key_pair=self.key_pair)
                except Exception as e:  # noqa: BLE001 - one connection's failure ends it alone
                    error = e
                host, port = stream.remote_address[:2]
                log_connection_end(log, f"uTP peer {host}:{port}", error)

    # -- one connection per peer -------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await trio.sleep(self.dedup_interval)
            self._dedup()

    def _dedup(self) -> None:
        """Close our outgoing found-peer connections that hyperswarm's rule makes the duplicates."""
        ours = self.key_pair.public_key
        sessions = [s for s in self.server.sessions if s.remote_public_key is not None and not s.closed]
        for addr, session in list(self.dialling.items()):
            if session is None or session.closed:
                continue
            remote = session.remote_public_key
            if remote is None:
                continue
            if remote == ours:
                self._close(session, "connected to ourselves")
                continue
            for other in sessions:
                if other is session or other.remote_public_key != remote:
                    continue
                incoming = not other.initiator
                older = sessions.index(other) < sessions.index(session)
                if (incoming and ours > remote) or (not incoming and older):
                    self._close(session, f"duplicate of another connection to {addr[0]}:{addr[1]}")
                    break

    def _close(self, session: ReplicationSession, why: str) -> None:
        log.info("closing connection: %s", why)
        self._closed_as_duplicates.add(session)
        self.duplicates_closed += 1
        assert self._nursery is not None
        self._nursery.start_soon(session.aclose)


open_peering = opener(Peering)
