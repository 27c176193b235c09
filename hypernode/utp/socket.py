"""The trio adapter of uTP: a UDP socket carrying uTP connections as trio streams, and sharing the
socket with another protocol, as utp-native does for hyperswarm 2 (the DHT and uTP on one port).

``async with open_utp_socket("0.0.0.0", port) as utp:`` binds an IPv4 UDP socket and runs, in a nursery
of its own, a reader (each datagram goes to the :class:`~hypernode.utp.endpoint.UTPEndpoint`, or, if it
is not uTP, to :attr:`UTPSocket.datagrams`), a timer (retransmissions, keep-alives, timeouts) and a
writer (for datagrams the kernel's buffer could not take at once). Then:

- ``stream = await utp.connect(host, port)``: a :class:`UTPStream` (a ``trio.abc.HalfCloseableStream``)
  once the remote acked our SYN; :class:`~hypernode.utp.connection.UTPConnectionRefused` or
  :class:`~hypernode.utp.connection.UTPTimeout` (both ``OSError``) if not.
- ``utp.listen()`` accepts connections; ``await utp.accept()`` (or :meth:`UTPSocket.listener` with
  ``trio.serve_listeners``) yields each as a stream. The initiator speaks first: an accepted stream's
  writes are sent once the remote's first data arrives (libutp's rule).
- ``utp.datagrams`` is the other protocol's side: ``await recvfrom()`` gives the datagrams that are not
  uTP (a bounded queue: past it they are dropped and counted), ``sendto(data, address)`` sends one.

A stream's ``receive_some`` returns b"" at the remote's FIN and raises ``trio.BrokenResourceError``
(its ``__cause__`` the :class:`~hypernode.utp.connection.UTPConnectionError`) when the connection is
reset or times out; ``send_eof`` sends FIN; ``aclose`` closes both directions (queued bytes still go
out, then FIN). Leaving the ``async with`` closes every stream; when the block ended normally it waits up
to ``linger`` seconds for them to finish (their FINs acked), then resets what is left and closes the
socket. An exception raised in the body comes out unchanged (see :mod:`hypernode.tasks`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket as stdsocket
from collections import deque
from collections.abc import AsyncIterator

import trio

from hypernode.tasks import open_service_nursery
from hypernode.utp.connection import (
    Accepted,
    Address,
    Closed,
    State,
    UTPConfig,
    UTPConnection,
    UTPConnectionError,
)
from hypernode.utp.endpoint import UTPEndpoint

__all__ = ["SharedDatagrams", "UTPListener", "UTPSocket", "UTPStream", "open_utp_socket", "transport_of"]

log = logging.getLogger(__name__)

READ_BATCH = 512  # datagrams read before acks are sent and events handed out
MAX_DATAGRAM = 65536
TICK = 0.05  # s: the timers' granularity while connections exist (libutp checks every 500 ms)
BACKLOG_LIMIT = 4096  # datagrams waiting for the kernel's send buffer; past it they are dropped
SOCKET_BUFFER = 4 * 1024 * 1024  # asked of the kernel for SO_RCVBUF/SO_SNDBUF (it may grant less)


def _now_us() -> int:
    return int(trio.current_time() * 1_000_000)


class SharedDatagrams:
    """The other protocol's side of a shared UDP socket (the DHT's, in hyperswarm 2): the datagrams that
    are not uTP, and a way to send its own."""

    def __init__(self, utp: UTPSocket, *, max_bytes: int = 1024 * 1024, max_datagrams: int = 1024) -> None:
        self._utp = utp
        self._queue: deque[tuple[bytes, Address]] = deque()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_datagrams = max_datagrams
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self.dropped = 0  # arrived while the queue was full
        self.send_errors = 0

    @property
    def local_address(self) -> Address:
        return self._utp.address

    def sendto(self, data: bytes, address: Address) -> None:
        """Send one datagram now; if the kernel cannot take it, it is dropped (and counted), as UDP."""
        if self._closed:
            raise trio.ClosedResourceError("the UDP socket is closed")
        try:
            self._utp._sock.sendto(data, address)
        except OSError as e:
            self.send_errors += 1
            log.debug("sendto %s failed: %s", address, e)

    async def recvfrom(self) -> tuple[bytes, Address]:
        """The next datagram that is not uTP, and where it came from."""
        while not self._queue:
            if self._closed:
                raise trio.ClosedResourceError("the UDP socket is closed")
            await self._lot.park()
        data, address = self._queue.popleft()
        self._bytes -= len(data)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data, address

    def __aiter__(self) -> AsyncIterator[tuple[bytes, Address]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[tuple[bytes, Address]]:
        while True:
            try:
                yield await self.recvfrom()
            except trio.ClosedResourceError:
                return

    def _put(self, data: bytes, address: Address) -> None:
        if len(self._queue) >= self._max_datagrams or self._bytes + len(data) > self._max_bytes:
            self.dropped += 1
            return
        self._queue.append((data, address))
        self._bytes += len(data)
        self._lot.unpark_all()

    def _close(self) -> None:
        self._closed = True
        self._lot.unpark_all()


class UTPStream(trio.abc.HalfCloseableStream):
    """One uTP connection as a trio stream."""

    def __init__(self, utp: UTPSocket, conn: UTPConnection) -> None:
        self.socket = utp
        self.connection = conn
        self.remote_address: Address = conn.address
        self.holepunched = False  # through a NAT by a DHT holepunch (set by whoever knows it)
        self._lot = trio.lowlevel.ParkingLot()
        self._error: UTPConnectionError | None = None
        self._closed = False  # by us
        self._sending = False
        self._receiving = False
        conn.userdata = self

    def __repr__(self) -> str:
        return f"<UTPStream {self.remote_address[0]}:{self.remote_address[1]} {self.connection.state.value}>"

    def _wake(self) -> None:
        self._lot.unpark_all()

    def _broken(self) -> trio.BrokenResourceError:
        if self._error is not None:
            err = trio.BrokenResourceError(str(self._error))
            err.__cause__ = self._error
            return err
        return trio.BrokenResourceError("the uTP connection is closed")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            view = memoryview(data)
            off = 0
            while True:
                conn = self.connection
                if self._closed:
                    raise trio.ClosedResourceError("the stream is closed")
                if conn.state is State.CLOSED:
                    raise self._broken()
                if conn.fin_requested:
                    raise trio.ClosedResourceError("send_eof was called on this stream")
                if off >= len(view):
                    break
                n = conn.write(view[off:], _now_us())
                off += n
                self.socket._flush()
                if off < len(view):
                    await self._lot.park()
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            while not self._closed and self.connection.state is not State.CLOSED and \
                    not self.connection.fin_requested and self.connection.send_room == 0:
                await self._lot.park()
            await trio.lowlevel.checkpoint()
        finally:
            self._sending = False

    async def send_eof(self) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        if self.connection.state is not State.CLOSED:
            self.connection.shutdown(_now_us())
            self.socket._flush()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            while True:
                conn = self.connection
                if self._closed:
                    raise trio.ClosedResourceError("the stream is closed")
                if conn.recv_buf:
                    data = conn.read(max_bytes, _now_us())
                    self.socket._flush()
                    break
                if self._error is not None:
                    raise self._broken()
                if conn.got_fin_reached or conn.state is State.CLOSED:
                    data = b""
                    break
                await self._lot.park()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        finally:
            self._receiving = False

    async def aclose(self) -> None:
        self._close()
        await trio.lowlevel.checkpoint()

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.connection.state is not State.CLOSED:
            self.connection.close(_now_us())
            self.socket._flush()
        self._wake()

    async def wait_connected(self) -> None:
        """Wait for the handshake (an outgoing connection: its SYN acked); raises what ended it."""
        while self.connection.state is State.SYN_SENT:
            await self._lot.park()
        if self.connection.state is State.CLOSED:
            raise self._error or UTPConnectionError(errno.ECONNABORTED, "uTP connection closed")


class UTPListener(trio.abc.Listener[UTPStream]):
    """The accepting side of a :class:`UTPSocket` (for ``trio.serve_listeners``)."""

    def __init__(self, utp: UTPSocket) -> None:
        self.socket = utp

    async def accept(self) -> UTPStream:
        return await self.socket.accept()

    async def aclose(self) -> None:
        self.socket.stop_listening()
        await trio.lowlevel.checkpoint()


class UTPSocket:
    """A UDP socket running uTP (see the module's docstring). Made by :func:`open_utp_socket`."""

    def __init__(self, sock: stdsocket.socket, config: UTPConfig, *, accept_backlog: int = 128) -> None:
        self._sock = sock
        self.endpoint = UTPEndpoint(config)
        self.config = config
        host, port = sock.getsockname()[:2]
        self.address: Address = (host, port)
        self.datagrams = SharedDatagrams(self)
        self.stats: dict[str, int] = {"socket_errors": 0, "send_dropped": 0, "send_errors": 0}
        self._streams: set[UTPStream] = set()
        self._accept_queue: deque[UTPStream] = deque()
        self._accept_backlog = accept_backlog
        self._accept_lot = trio.lowlevel.ParkingLot()
        self._backlog: deque[tuple[bytes, Address]] = deque()
        self._backlog_event = trio.Event()
        self._timer_wake = trio.Event()
        self._closed = False
        self._listening = False

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def listening(self) -> bool:
        return self._listening

    # -- connections -------------------------------------------------------------------------------

    async def connect(self, host: str, port: int) -> UTPStream:
        """A stream to ``host:port`` once the handshake is done (the SYN is sent again after 3 and 6 s
        and given up 12 s later, as libutp: wrap in ``trio.fail_after`` for less)."""
        if self._closed:
            raise trio.ClosedResourceError("the uTP socket is closed")
        address = await _resolve(host, port)
        conn = self.endpoint.connect(address, trio.current_time())
        stream = UTPStream(self, conn)
        self._streams.add(stream)
        self._flush()
        self._timer_wake.set()
        try:
            await stream.wait_connected()
        except BaseException:
            stream._close()
            raise
        return stream

    def listen(self, backlog: int | None = None) -> None:
        """Accept incoming connections (``backlog``: accepted streams not yet taken by :meth:`accept`;
        while it is full, SYNs are dropped as libutp's firewall does, and the remote tries again)."""
        if backlog is not None:
            self._accept_backlog = backlog
        self._listening = True
        self._refresh_accepting()

    def stop_listening(self) -> None:
        self._listening = False
        self._refresh_accepting()
        self._accept_lot.unpark_all()

    def _refresh_accepting(self) -> None:
        self.endpoint.accepting = self._listening and not self._closed and \
            len(self._accept_queue) < self._accept_backlog

    def listener(self) -> UTPListener:
        """Start listening; the listener to hand to ``trio.serve_listeners``."""
        self.listen()
        return UTPListener(self)

    async def accept(self) -> UTPStream:
        """The next incoming connection (call :meth:`listen` first)."""
        while not self._accept_queue:
            if self._closed or not self._listening:
                raise trio.ClosedResourceError("the uTP socket is not listening")
            await self._accept_lot.park()
        stream = self._accept_queue.popleft()
        self._refresh_accepting()
        await trio.lowlevel.cancel_shielded_checkpoint()
        return stream

    @property
    def connections(self) -> int:
        return len(self.endpoint.connections)

    # -- I/O ---------------------------------------------------------------------------------------

    def _flush(self) -> None:
        """Send what the endpoint queued and hand its events to the streams."""
        endpoint = self.endpoint
        out = endpoint.datagrams()
        if out:
            sock = self._sock
            backlog = self._backlog
            for i, (data, address) in enumerate(out):
                if backlog:
                    self._queue_datagrams(out[i:])
                    break
                try:
                    sock.sendto(data, address)
                except BlockingIOError:
                    self._queue_datagrams(out[i:])
                    break
                except OSError as e:  # unreachable: the connection's timers will notice
                    self.stats["send_errors"] += 1
                    log.debug("sendto %s failed: %s", address, e)
        events = endpoint.events()
        for ev in events:
            conn = ev.connection
            stream = conn.userdata
            if isinstance(ev, Accepted):
                self._on_accepted(conn)
                continue
            if not isinstance(stream, UTPStream):
                continue
            if isinstance(ev, Closed):
                stream._error = ev.error
                self._streams.discard(stream)
            stream._wake()
        if endpoint._out:  # an accepted connection reset: the socket stopped listening
            self._flush()

    def _on_accepted(self, conn: UTPConnection) -> None:
        if self._closed or not self._listening:
            conn.abort(_now_us())
            return
        stream = UTPStream(self, conn)
        self._streams.add(stream)
        self._accept_queue.append(stream)
        self._refresh_accepting()
        self._accept_lot.unpark()
        self._timer_wake.set()

    def _queue_datagrams(self, datagrams: list[tuple[bytes, Address]]) -> None:
        room = BACKLOG_LIMIT - len(self._backlog)
        if room < len(datagrams):
            self.stats["send_dropped"] += len(datagrams) - max(room, 0)
            datagrams = datagrams[:max(room, 0)]
        self._backlog.extend(datagrams)
        self._backlog_event.set()

    async def _reader(self) -> None:
        sock = self._sock
        endpoint = self.endpoint
        datagrams = self.datagrams
        recvfrom = sock.recvfrom
        while True:
            await trio.lowlevel.wait_readable(sock)
            now = trio.current_time()
            for _ in range(READ_BATCH):
                try:
                    data, address = recvfrom(MAX_DATAGRAM)
                except BlockingIOError:
                    break
                except OSError:  # an ICMP error from an earlier send
                    self.stats["socket_errors"] += 1
                    continue
                address = (address[0], address[1])
                if not endpoint.receive(data, address, now):
                    datagrams._put(data, address)
            endpoint.issue_deferred_acks(now)
            self._flush()

    async def _timer(self) -> None:
        while True:
            if self.endpoint.connections or self.endpoint._lingering:
                now = trio.current_time()
                deadline = min(self.endpoint.next_deadline(), now + TICK)
                with trio.move_on_at(deadline):
                    await self._timer_wake.wait()
            else:
                await self._timer_wake.wait()
            self._timer_wake = trio.Event()
            self.endpoint.tick(trio.current_time())
            self._flush()

    async def _writer(self) -> None:
        sock = self._sock
        backlog = self._backlog
        while True:
            await self._backlog_event.wait()
            self._backlog_event = trio.Event()
            while backlog:
                data, address = backlog[0]
                try:
                    sock.sendto(data, address)
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(sock)
                    continue
                except OSError as e:
                    self.stats["send_errors"] += 1
                    log.debug("sendto %s failed: %s", address, e)
                backlog.popleft()

    # -- the end -----------------------------------------------------------------------------------

    async def _linger(self, seconds: float) -> None:
        """Close every stream and wait (at most ``seconds``) for their connections to finish."""
        self.stop_listening()
        for stream in list(self._streams) + list(self._accept_queue):
            stream._close()
        with trio.move_on_after(seconds):
            while self.endpoint.connections or self._backlog:
                await trio.sleep(0.01)

    def _abort_all(self) -> None:
        now_us = _now_us()
        self._listening = False
        self.endpoint.accepting = False
        for conn in list(self.endpoint.connections.values()):
            conn.abort(now_us)
        self._closed = True
        for stream in list(self._streams) + list(self._accept_queue):
            stream._closed = True
            stream._wake()
        self._accept_queue.clear()
        self._accept_lot.unpark_all()
        self.datagrams._close()
        with contextlib.suppress(OSError):
            for data, address in self.endpoint.datagrams():  # the resets, best effort
                self._sock.sendto(data, address)
        self.endpoint.events()


@contextlib.asynccontextmanager
async def open_utp_socket(host: str = "0.0.0.0", port: int = 0, *, config: UTPConfig | None = None,
                          linger: float = 1.0, accept_backlog: int = 128) -> AsyncIterator[UTPSocket]:
    """A uTP socket bound to ``host:port`` (IPv4, as utp-native) for the duration of the block."""
    sock = stdsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    try:
        for opt in (stdsocket.SO_RCVBUF, stdsocket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(stdsocket.SOL_SOCKET, opt, SOCKET_BUFFER)
        sock.bind((host, port))
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port} (UDP): {e.strerror or e}") from e
    except BaseException:
        sock.close()
        raise
    utp = UTPSocket(sock, config or UTPConfig(), accept_backlog=accept_backlog)
    try:
        async with open_service_nursery() as nursery:
            nursery.start_soon(utp._reader)
            nursery.start_soon(utp._timer)
            nursery.start_soon(utp._writer)
            try:
                yield utp
            except BaseException:
                utp._abort_all()
                raise
            with trio.CancelScope(shield=True):
                await utp._linger(linger)
            utp._abort_all()
    finally:
        utp._closed = True
        utp.datagrams._close()
        sock.close()


async def _resolve(host: str, port: int) -> Address:
    try:
        stdsocket.inet_aton(host)
        if host.count(".") == 3:
            return (host, port)
    except OSError:
        pass
    try:
        infos = await trio.socket.getaddrinfo(host, port, stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    except OSError as e:
        raise OSError(e.errno, f"cannot resolve {host}: {e.strerror or e}") from e
    if not infos:
        raise OSError(errno.EADDRNOTAVAIL, f"{host} has no IPv4 address")
    return (str(infos[0][4][0]), port)


def transport_of(stream: trio.abc.Stream) -> str:
    """How a connection is carried: ``"utp"``, ``"holepunched"`` (uTP through a NAT, by a DHT holepunch
    asked for or answered), or ``"tcp"`` (any other stream)."""
    if isinstance(stream, UTPStream):
        return "holepunched" if stream.holepunched else "utp"
    return "tcp"
