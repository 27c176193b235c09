"""Peering: the peers a :class:`~hypernode.discovery.swarm.Swarm` finds, connected to a node's store.

:class:`Peering` runs the swarm for a :class:`hypernode.node.Node`: each drive's discovery key is joined
(announced when the node listens, looked up always), and each peer found is connected over TCP and
replicated through the node's :class:`~hypernode.corestore.Corestore`, as hyperswarm 2 does for
hyperdrive. One peer, one connection:

- by address: a peer already connected, being connected, or given to the node with ``--peer`` is not
  dialled again; neither is our own address;
- by Noise public key (the node uses one key pair for all its connections): when two connections end
  up joining the same two nodes (each found the other), the one initiated by the node with the smaller
  key survives, hyperswarm's rule, so both sides agree without talking. The node with the larger key
  closes its own outgoing connection; a sweep repeats the check, since the two handshakes may end in
  either order.

A peer that cannot be reached is retried after ``retry_delays`` (hyperswarm: 1, 5, 15 s) and then
forgotten until the next lookup finds it again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio

from hypernode.discovery.swarm import PeerFound, Swarm
from hypernode.errors import connect_reason
from hypernode.tasks import open_service_nursery

if TYPE_CHECKING:
    from hypernode.node import Node

log = logging.getLogger(__name__)


class Peering:
    def __init__(self, node: Node, *, bootstrap: Iterable[tuple[str, int]] | None, local: bool = False,
                 retry_delays: tuple[float, ...] = (1.0, 5.0, 15.0), dedup_interval: float = 1.0,
                 **swarm_options: Any) -> None:
        self.node = node
        self.retry_delays = retry_delays
        self.dedup_interval = dedup_interval
        use_dht = bootstrap is None or bool(list(bootstrap))
        self.swarm = Swarm(bootstrap=None if bootstrap is None else list(bootstrap), port=node.port,
                           on_peer=self._found, local=local, dht=use_dht, **swarm_options)
        self.dialling: dict[tuple[str, int], Any] = {}  # address -> live session (None while connecting)
        self.duplicates_closed = 0
        self._duplicate_of: dict[tuple[str, int], bytes] = {}  # address -> key we are connected to already
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Peering:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.swarm)
            self._nursery = await stack.enter_async_context(open_service_nursery())
            self._nursery.start_soon(self._sweep)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "the peering was not entered"
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        finally:
            self._nursery = None

    def join(self, discovery_key: bytes) -> None:
        """Announce (if the node listens) and look up the drive of this discovery key."""
        self.swarm.join(discovery_key, announce=self.node.port is not None, lookup=True)

    def leave(self, discovery_key: bytes) -> None:
        self.swarm.leave(discovery_key)

    # -- connecting --------------------------------------------------------------------------------

    def _found(self, peer: PeerFound) -> None:
        addr = (peer.host, peer.port)
        if addr in self.dialling or addr in self.node._peer_scopes or self._nursery is None:
            return
        key = self._duplicate_of.get(addr)
        if key is not None:
            if any(s.remote_public_key == key and not s.stream.closed for s in self.node.store.sessions):
                return  # that peer is connected already (it dialled us)
            del self._duplicate_of[addr]
        if self.node.port is not None and peer.port == self.node.port and peer.host in (
                self.node.host, "127.0.0.1", "0.0.0.0"):
            return
        self.dialling[addr] = None
        self._nursery.start_soon(self._connect, addr)

    async def _connect(self, addr: tuple[str, int]) -> None:
        failures = 0
        try:
            while failures <= len(self.retry_delays):
                try:
                    with trio.fail_after(10):
                        tcp = await trio.open_tcp_stream(*addr)
                except (OSError, trio.TooSlowError) as e:
                    # named when a wait gives up
                    self.node.peer_errors[addr] = "timed out" if isinstance(e, trio.TooSlowError) \
                        else connect_reason(e)
                    log.info("found peer %s:%d unreachable: %s", *addr, e)
                    failures += 1
                else:
                    failures = 0
                    async with trio.open_nursery() as nursery:
                        session = await nursery.start(self._replicate, tcp)
                        self.dialling[addr] = session
                        if session.error is None:
                            self.node.peer_errors.pop(addr, None)
                        self._dedup()
                    self.dialling[addr] = None
                    if getattr(session, "duplicate", False):
                        if session.remote_public_key is not None:
                            self._duplicate_of[addr] = session.remote_public_key
                            if len(self._duplicate_of) > 4096:
                                self._duplicate_of.pop(next(iter(self._duplicate_of)))
                        return
                    log.info("connection to found peer %s:%d ended: %s", *addr,
                             getattr(session, "error", None) or "closed")
                    failures += 1
                if failures and failures <= len(self.retry_delays):
                    await trio.sleep(self.retry_delays[failures - 1])
        finally:
            self.dialling.pop(addr, None)

    async def _replicate(self, tcp: trio.abc.Stream, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await self.node.store.replicate(tcp, initiator=True, key_pair=self.node.key_pair,
                                        task_status=task_status)

    # -- one connection per peer -------------------------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await trio.sleep(self.dedup_interval)
            self._dedup()

    def _dedup(self) -> None:
        """Close our outgoing found-peer connections that hyperswarm's rule makes the duplicates."""
        ours = self.node.key_pair.public_key
        sessions = [s for s in self.node.store.sessions if s.remote_public_key is not None
                    and not s.stream.closed]
        for addr, session in list(self.dialling.items()):
            if session is None or session.stream.closed:
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
                incoming = not other.stream.conn.initiator
                older = sessions.index(other) < sessions.index(session)
                if (incoming and ours > remote) or (not incoming and older):
                    self._close(session, f"duplicate of another connection to {addr[0]}:{addr[1]}")
                    break

    def _close(self, session: Any, why: str) -> None:
        log.info("closing connection: %s", why)
        session.duplicate = True
        self.duplicates_closed += 1
        assert self._nursery is not None
        self._nursery.start_soon(session.aclose)
