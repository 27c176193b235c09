"""The trio adapter: runs a sans-IO :class:`~hypernode.wire.connection.Connection` over a trio stream.

``async with ProtocolStream(tcp_stream, initiator=True) as ps:`` (or :func:`open_protocol_stream`)
starts, in a nursery of its own, a reader (bytes in, events out through ``async for event in ps``), a
writer (drains what the connection queued; a single task, so frames keep their order) and a
keep-alive. A consumer answering a batch of events wraps its replies in ``with ps.held():`` so that
they leave in one write, from its own task when the socket takes them at once (one task switch fewer
per round trip); the writer sends whatever the socket did not take, after it, in order.

How the connection ends decides what comes out of the ``async with``:

- we close it (:meth:`ProtocolStream.aclose`, or leaving the block): the events end, nothing is raised;
- the remote closes it cleanly (end of stream after the handshake): the events end, nothing is raised;
- it fails: the remote breaks the protocol (:class:`~hypernode.wire.connection.ProtocolError`), does
  not finish the handshake within ``handshake_timeout`` of the start (however it trickles bytes),
  closes it during the handshake, resets it, stays silent longer than ``timeout`` (keep-alives count),
  or does not read what we send for that long (:class:`ConnectionClosed`): the body is cancelled and
  that error is raised out of the ``async with`` (the reason is never stored on the object).

An exception raised in the body comes out unchanged (see :mod:`hypernode.tasks`); leaving the block
closes the transport and cancels the tasks.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import trio

from hypernode.errors import HypernodeError
from hypernode.tasks import Service, cleanup, open_service_nursery, opener
from hypernode.wire.connection import (
    Channel,
    Connection,
    Event,
    ExtensionReceived,
    HandshakeComplete,
    ProtocolError,
)
from hypernode.wire.extensions import Extension
from hypernode.wire.noise import KeyPair

READ_SIZE = 256 * 1024
HIGH_WATER = 4 * 1024 * 1024  # stop reading while this much output waits for the remote to read it


class ConnectionClosed(HypernodeError):
    pass


class ProtocolStream(Service):
    """One Hypercore protocol connection over a trio stream (see the module's docstring)."""

    def __init__(self, transport: trio.abc.Stream, *, initiator: bool, key_pair: KeyPair | None = None,
                 timeout: float | None = 20.0, keep_alive: float | None = None,
                 handshake_timeout: float | None = None) -> None:
        self.transport = transport
        self.conn = Connection(initiator, key_pair=key_pair)
        self.timeout = timeout
        self.keep_alive = keep_alive if keep_alive is not None else (timeout / 2 if timeout else None)
        self.handshake_timeout = handshake_timeout if handshake_timeout is not None else timeout
        self.closed = False
        self._nursery: trio.Nursery | None = None
        self._wake_writer = trio.Event()
        self._drained = trio.Event()
        self._handshake_done = trio.Event()
        # events travel in batches: everything one read produced, so that the consumer can handle a
        # batch without yielding and the writer then sends all the replies at once
        self._send_events, self._recv_events = trio.open_memory_channel[list[Event]](math.inf)
        self._last_received = trio.current_time() if _in_trio() else 0.0
        self._started_at = self._last_received
        self._paused = False
        # replies held back while the consumer handles a batch (:meth:`held`), then handed to the socket
        # from the consumer's task; what the socket did not take waits here for the writer
        self._hold = 0
        self._leftover = b""
        self._writing = False  # the writer is inside send_all
        self._socket = transport.socket if type(transport) is trio.SocketStream else None

    # -- lifecycle ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        try:
            async with open_service_nursery() as nursery:
                self._nursery = nursery
                async with cleanup(self.aclose):  # closes the transport, then the tasks end
                    self._last_received = self._started_at = trio.current_time()
                    self.conn.start()
                    self._flush()
                    nursery.start_soon(self._reader)
                    nursery.start_soon(self._writer)
                    nursery.start_soon(self._watchdog)
                    yield
        finally:
            self._nursery = None

    async def aclose(self) -> None:
        """Close the connection (idempotent)."""
        if not self.closed:
            self.closed = True
            closing = self.conn.close()
            if closing:
                with contextlib.suppress(trio.ClosedResourceError):  # the remote ended them already
                    self._send_events.send_nowait(closing)
            self._send_events.close()
            self._handshake_done.set()
            with trio.CancelScope(shield=True):
                await self.transport.aclose()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    def _end_events(self) -> None:
        """The remote ended the connection cleanly: the events end (the consumer's loop finishes)."""
        self._send_events.close()
        self._handshake_done.set()

    # -- events ------------------------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        async for batch in self._recv_events:
            for ev in batch:
                yield ev

    async def batches(self) -> AsyncIterator[list[Event]]:
        """The events in the batches they arrived in (one per read from the transport)."""
        async for batch in self._recv_events:
            yield batch

    async def wait_handshake(self) -> bytes:
        """Wait for the handshake; returns the remote's static public key. (A failure of the handshake
        is raised out of the ``async with``; this raises only if the connection was closed first.)"""
        await self._handshake_done.wait()
        if self.conn.remote_public_key is None:
            raise ConnectionClosed("the connection closed during the handshake")
        return self.conn.remote_public_key

    @property
    def remote_public_key(self) -> bytes | None:
        return self.conn.remote_public_key

    @property
    def public_key(self) -> bytes:
        return self.conn.public_key

    # -- sending -----------------------------------------------------------------------------------

    @property
    def pending_output(self) -> int:
        """Bytes queued for the remote and not yet handed to the transport."""
        return self.conn.pending_output + len(self._leftover)

    def _flush(self) -> None:
        if self.conn.pending_output and not self._hold:
            self._wake_writer.set()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold what is sent in this block, then send it all at once, from this task if the socket
        takes it at once (the consumer of a batch of events wraps its replies in this: one write per
        batch, and no wait for the writer task to be scheduled before the remote gets them)."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1
            if not self._hold:
                self._send_now()

    def _send_now(self) -> None:
        if not self.conn.pending_output or self.closed:
            return
        # a TCP socket's descriptor, asked each time: -1 once the socket is closed (a number kept from
        # before could by then name another file)
        fd = self._socket.fileno() if self._socket is not None else -1
        if fd < 0 or self._writing or self._leftover or not self.conn.handshake_complete:
            self._wake_writer.set()
            return
        data = self.conn.data_to_send()
        try:
            sent = os.write(fd, data)
        except OSError:  # it would block (the writer waits for room), or it failed (the writer's own send
            sent = 0     # meets the error and reports it)
        if sent < len(data):
            self._leftover = data[sent:]
            self._wake_writer.set()
        else:
            self._drained.set()

    def open_channel(self, key: bytes) -> tuple[Channel, list[Event]]:
        ch, events = self.conn.open_channel(key)
        self._flush()
        return ch, events

    def close_channel(self, discovery_key: bytes) -> list[Event]:
        events = self.conn.close_channel(discovery_key)
        self._flush()
        return events

    def send(self, channel: Channel, message: Any) -> None:
        self.conn.send(channel, message)
        self._flush()

    def send_extension(self, channel: Channel | None, extension_id: int, payload: bytes) -> None:
        self.conn.send_extension(channel, extension_id, payload)
        self._flush()

    def register_extension(self, name: str, encoding: str = "binary",
                           on_message: Callable[[Any, Any], None] | None = None) -> Extension:
        """A stream-level extension; ``on_message(message, stream)``; ``send(message, stream)``."""
        ext = self.conn.extensions
        ext.sender = lambda e, peer, data: peer.send_extension(None, e.id, data)
        ext.peers = lambda: [self]
        return ext.register(name, encoding, on_message)

    async def drain(self) -> None:
        """Wait until everything queued so far has been handed to the transport."""
        while self.pending_output and not self.closed:
            if self._drained.is_set():  # one event for every waiter: a new one for each would leave
                self._drained = trio.Event()  # the earlier waiters on events nobody sets
            self._wake_writer.set()
            await self._drained.wait()

    # -- tasks -------------------------------------------------------------------------------------

    async def _reader(self) -> None:
        """Bytes in, events out. Returns when the remote ends the connection cleanly; raises why the
        connection failed otherwise."""
        try:
            while True:
                if self.pending_output > HIGH_WATER:
                    self._paused = True  # we stop reading until the remote reads what we sent
                    await self.drain()
                    self._paused = False
                try:
                    data = await self.transport.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
                    if self.closed:  # our own close: the reader ends quietly
                        return
                    raise ConnectionClosed(f"connection lost: {e}") from None
                if not data:
                    if not self.conn.handshake_complete:
                        raise ConnectionClosed("the remote closed the connection during the handshake")
                    self._end_events()  # a clean end
                    return
                if self.closed:  # closed by us while this read was on its way
                    return
                self._last_received = trio.current_time()
                try:
                    events = self.conn.receive_data(data)
                except ProtocolError:
                    raise
                except Exception as e:  # a decoder bug must end this connection only, never the node
                    raise ProtocolError(f"could not process the remote's data: {e!r}") from e
                for ev in events:
                    if isinstance(ev, HandshakeComplete):
                        self._handshake_done.set()
                    elif isinstance(ev, ExtensionReceived) and ev.channel is None:
                        self.conn.extensions.dispatch(self.conn.remote_extensions, ev.extension_id,
                                                      ev.payload, self)
                if events:
                    self._send_events.send_nowait(events)
                self._flush()
        except trio.ClosedResourceError:
            if not self.closed:  # our own close ends the reader quietly
                raise ConnectionClosed("closed") from None

    async def _writer(self) -> None:
        try:
            while True:
                await self._wake_writer.wait()
                self._wake_writer = trio.Event()
                if self._hold:
                    continue  # held: the end of the block sends it (see held())
                data = self.conn.data_to_send()
                if self._leftover:
                    data, self._leftover = self._leftover + data, b""
                if data:
                    deadline = self.timeout if self.timeout else math.inf
                    self._writing = True
                    try:
                        with trio.move_on_after(deadline) as scope:
                            await self.transport.send_all(data)
                    finally:
                        self._writing = False
                    if scope.cancelled_caught:
                        raise ConnectionClosed("the remote does not read what we send")
                if not self.pending_output:
                    self._drained.set()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as e:
            if not self.closed:
                raise ConnectionClosed(f"connection lost: {e}") from None

    async def _watchdog(self) -> None:
        tick = min(x for x in (self.keep_alive, self.timeout, self.handshake_timeout, 1.0) if x)
        last_ping = trio.current_time()
        while True:
            await trio.sleep(tick)
            now = trio.current_time()
            if not self.conn.handshake_complete:
                # counted from the start, not from the last byte: a peer trickling a byte at a time
                # must not hold a half-open handshake forever
                if self.handshake_timeout and now - self._started_at > self.handshake_timeout:
                    raise ProtocolError("handshake timed out")
                continue
            if self.timeout and now - self._last_received > self.timeout:
                raise ConnectionClosed("the remote does not read what we send" if self._paused
                                       else "ETIMEDOUT: the remote has been silent too long")
            if self.keep_alive and now - last_ping >= self.keep_alive:
                last_ping = now
                self.conn.ping()
                self._flush()


open_protocol_stream = opener(ProtocolStream)


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
