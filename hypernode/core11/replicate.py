"""hypercore 11 replication over a trio stream: the thin adapter around the sans-IO
:class:`~hypernode.core11.replicator.Replicator`.

``async with open_replication(stream, initiator=True, cores=[core]) as repl:`` runs the secret-stream
handshake (:func:`~hypernode.core11.secretstream.open_secret_stream`, or takes a connection already open),
then one task reading the remote's messages into the sans-IO :class:`Replicator` and sending what it
answers, and one sending what local changes make it say, in a service nursery (:mod:`hypernode.tasks`):
a remote that breaks the protocol ends the block with
:class:`~hypernode.core11.replicator.CoreReplicationError` (or the secret-stream's error), raised out of
the ``async with``; nothing unverified is stored and the rest of the node carries on.

In the block, :class:`Replication` adds cores (:meth:`Replication.add_core`), downloads
(:meth:`Replication.download` waits for a range, :meth:`Replication.want` asks without waiting; with
no end it follows the core as it grows: live), waits for a length (:meth:`Replication.wait_length`),
and sends extension messages. Local changes reach the remote on their own: the replication listens to
each attached :class:`~hypernode.core11.core.Core` (``Core.add_listener``), so an append, a truncation,
or blocks stored through another connection are announced as JS announces them (not the blocks this
stream itself brought). :meth:`Replication.core_changed` says the same for a core that cannot be
listened to. What happens comes out of :meth:`Replication.subscribe` as the replicator's events. A remote
open of a core we did not add is given to the ``provider`` (a
:class:`~hypernode.core11.replicator.CoreProvider`, such as a
:class:`~hypernode.core11.corestore.Corestore`: ``open_core(discovery_key)``), whose core is added, or
declined when it has none; without a provider it comes as a ``CoreRequested`` event, to
:meth:`Replication.add_core` or :meth:`Replication.decline`.

Waits raise :class:`CoreReplicationError` if the connection ends first; time limits are the caller's
(``trio.fail_after``): a remote that has not got a block never sends it, as in JS.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Protocol

import trio

from hypernode.core11.replicator import (
    CoreAttached,
    CoreDetached,
    CoreProvider,
    CoreReplicationError,
    Event,
    RemoteSynced,
    ReplicaCore,
    Replicator,
)
from hypernode.core11.secretstream import KeyPair, SecretStreamConnection, open_secret_stream
from hypernode.tasks import open_service_nursery

__all__ = ["open_replication", "Replication", "CoreProvider", "CoreReplicationError"]

_COALESCE = 16384  # bytes of received messages answered in one batch at most


class Replication:
    """One stream's replication, while :func:`open_replication`'s block runs (see the module docstring)."""

    def __init__(self, conn: SecretStreamConnection, replicator: Replicator) -> None:
        self.conn = conn
        self.replicator = replicator
        self._send_lock = trio.StrictFIFOLock()
        self._changed = trio.Event()
        self._ended = False
        self._subscribers: list[trio.MemorySendChannel[Event]] = []
        self._synced: set[bytes] = set()  # discovery keys of the cores the remote synced
        # local changes (an append, blocks another connection stored) reach the remote on their own: the
        # attached cores tell _watch (Core.add_listener), and _announce sends what the replicator made
        self._watch = _Watch(self)
        self._watched: dict[bytes, ReplicaCore] = {}
        self._receiving = False  # True while this stream's own messages are applied (no echo of them)
        self._local = trio.Event()

    @property
    def initiator(self) -> bool:
        return self.replicator.initiator

    @property
    def remote_public_key(self) -> bytes:
        return self.conn.remote_public_key

    # -- actions ------------------------------------------------------------------------------------

    async def add_core(self, core: ReplicaCore) -> None:
        """Replicate ``core`` on this stream (open its channel)."""
        self.replicator.add_core(core)
        await self._after_change()

    async def remove_core(self, core: ReplicaCore) -> None:
        self.replicator.remove_core(core)
        await self._after_change()

    async def want(self, core: ReplicaCore, start: int = 0, end: int | None = None) -> None:
        """Download ``start`` to ``end`` (None: every block, those appended later too) in the background."""
        self.replicator.want(core, start, end)
        await self._after_change()

    async def download(self, core: ReplicaCore, start: int = 0, end: int | None = None) -> None:
        """Download blocks ``start`` to ``end`` and return once they are all stored. ``end`` None: up to
        the length the remote has once it said so (the channel must attach first)."""
        if end is None:
            await self.wait_synced(core)
            end = max(self.replicator.remote_length(core), core.length)
        self.replicator.want(core, start, end)
        await self._after_change()
        try:
            await self._wait(lambda: core.has_all(start, end), f"blocks {start}..{end} of the core")
        finally:
            if self.replicator.is_attached(core):
                self.replicator.unwant(core, start, end)

    async def wait_length(self, core: ReplicaCore, length: int) -> None:
        """Wait until ``core`` has at least ``length`` blocks (a verified upgrade got it there)."""
        await self._wait(lambda: core.length >= length, f"the core to reach length {length}")

    async def wait_attached(self, core: ReplicaCore) -> None:
        """Wait until the remote opened ``core``'s channel too."""
        await self._wait(lambda: self.replicator.is_attached(core), "the core's channel to open")

    async def wait_synced(self, core: ReplicaCore) -> None:
        """Wait until the remote said (in a sync) what it has of ``core``."""
        await self._wait(lambda: core.discovery_key in self._synced, "the remote's sync")

    async def core_changed(self, core: ReplicaCore, start: int | None = None, end: int | None = None) -> None:
        """Tell the remote what changed in ``core`` (an attached Core tells the replication itself; this is
        for a core that has no ``add_listener``): ``start`` to ``end`` are blocks stored meanwhile."""
        self.replicator.core_changed(core, start, end)
        await self._after_change()

    async def send_extension(self, core: ReplicaCore, name: str, message: bytes) -> None:
        self.replicator.send_extension(core, name, message)
        await self._flush()

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[trio.MemoryReceiveChannel[Event]]:
        """The replicator's events from now on, while the block runs (unbounded: read them)."""
        send, receive = trio.open_memory_channel[Event](math.inf)
        self._subscribers.append(send)
        try:
            yield receive
        finally:
            # no longer published to before either end closes (closing is not a checkpoint here)
            if send in self._subscribers:  # (dropped already if its owner closed it)
                self._subscribers.remove(send)
            send.close()
            receive.close()

    # -- running -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        async for message in self.conn:
            # small messages that came together (JS sends each request alone) are answered together, in
            # one batch; a large one is answered at once (its answers are what the remote waits for)
            taken = len(message)
            self._receiving = True
            try:
                with self.replicator.mux.corked():
                    events = self.replicator.receive(message)
                    while taken < _COALESCE and (more := self.conn.receive_nowait()) is not None:
                        taken += len(more)
                        events += self.replicator.receive(more)
            finally:
                self._receiving = False
            await self._flush()
            for event in events:
                if isinstance(event, RemoteSynced):
                    self._synced.add(event.core.discovery_key)
                elif isinstance(event, CoreDetached):
                    self._synced.discard(event.core.discovery_key)
                self._publish(event)
            if events:
                self._wake()
        self._ended = True
        self._wake()

    async def decline(self, discovery_key: bytes) -> None:
        """Refuse the remote's open of a core (a :class:`CoreRequested`, when there is no provider)."""
        self.replicator.decline(discovery_key)
        await self._flush()

    async def _flush(self) -> None:
        async with self._send_lock:
            for message in self.replicator.data_to_send():
                await self.conn.send(message)

    async def _after_change(self) -> None:
        await self._flush()
        self._wake()
        for event in self.replicator.events():  # those of an add_core that accepted a waiting open
            self._publish(event)

    def _publish(self, event: Event) -> None:
        if isinstance(event, CoreAttached):
            self._listen_to(event.core)
        elif isinstance(event, CoreDetached):
            self._stop_listening(event.core)
        for send in list(self._subscribers):
            try:
                send.send_nowait(event)
            except trio.BrokenResourceError:  # the subscriber closed its end itself
                self._subscribers.remove(send)

    def _listen_to(self, core: ReplicaCore) -> None:
        add = getattr(core, "add_listener", None)  # a Core has it; a stand-in core need not
        if add is not None and core.discovery_key not in self._watched:
            self._watched[core.discovery_key] = core
            add(self._watch)

    def _stop_listening(self, core: ReplicaCore) -> None:
        watched = self._watched.pop(core.discovery_key, None)
        if watched is not None:
            watched.remove_listener(self._watch)  # type: ignore[attr-defined]

    def _local_change(self, core: ReplicaCore, start: int | None, end: int | None) -> None:
        if self._receiving or self._ended:
            return  # this stream's own data (the replicator knows), or nobody left to tell
        self.replicator.core_changed(core, start, end)
        self._local.set()

    async def _announce(self) -> None:
        """Send what local changes made the replicator say (see :class:`_Watch`)."""
        while True:
            await self._local.wait()
            self._local = trio.Event()
            await self._after_change()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _wait(self, done: _Check, what: str) -> None:
        while not done():
            if self._ended:
                raise CoreReplicationError(f"the connection ended before {what}")
            await self._changed.wait()


class _Watch:
    """A :class:`~hypernode.core11.core.CoreListener` for a replication's attached cores: an append, a
    truncation or blocks stored through another connection become the replicator's sync and announcements,
    sent by the replication's own task."""

    def __init__(self, repl: Replication) -> None:
        self._repl = repl

    def core_changed(self, core: ReplicaCore, start: int | None, end: int | None) -> None:
        self._repl._local_change(core, start, end)


class _Check(Protocol):
    def __call__(self) -> bool: ...


@asynccontextmanager
async def open_replication(stream: trio.abc.Stream | SecretStreamConnection, *, initiator: bool,
                           key_pair: KeyPair | None = None, remote_public_key: bytes | None = None,
                           cores: Iterable[ReplicaCore] = (), provider: CoreProvider | None = None,
                           max_inflight: int = 64, keep_alive: float | None = 5.0,
                           timeout: float | None = None) -> AsyncIterator[Replication]:
    """Replicate ``cores`` (and those added later) with the peer at the other end of ``stream``.

    ``stream`` is a trio stream (the secret-stream handshake runs on it first, as ``initiator`` or
    responder, with ``key_pair``; ``remote_public_key`` is the key the remote must have) or a
    :class:`SecretStreamConnection` already open. ``keep_alive`` is JS's 5 s (hypercore sets it on every
    replication stream); ``timeout`` ends a connection silent that long. Leaving the block closes it."""
    if isinstance(stream, SecretStreamConnection):
        async with _replicating(stream, cores, provider, max_inflight) as repl:
            yield repl
        return
    async with open_secret_stream(stream, initiator=initiator, key_pair=key_pair,
                                  remote_public_key=remote_public_key, keep_alive=keep_alive,
                                  timeout=timeout) as conn:
        async with _replicating(conn, cores, provider, max_inflight) as repl:
            yield repl


@asynccontextmanager
async def _replicating(conn: SecretStreamConnection, cores: Iterable[ReplicaCore],
                       provider: CoreProvider | None, max_inflight: int) -> AsyncIterator[Replication]:
    replicator = Replicator(initiator=conn.stream.initiator, handshake_hash=conn.handshake_hash,
                            max_inflight=max_inflight, provider=provider)
    async with open_service_nursery() as nursery:
        repl = Replication(conn, replicator)
        for core in cores:
            replicator.add_core(core)
        try:
            await repl._after_change()  # sends the opens; attaches (listens to) nothing yet
            nursery.start_soon(repl._run)
            nursery.start_soon(repl._announce)
            yield repl
        finally:
            for core in list(repl._watched.values()):
                repl._stop_listening(core)
