"""The network side of replication: a store's feeds served and fetched over TCP connections.

``async with open_replication_server(store) as server:`` serves a
:class:`~hypernode.replication.session.FeedSource` (a :class:`~hypernode.corestore.Corestore`):

- ``port = await server.listen(host, port)`` accepts connections (``port=0``: any free port);
- ``session = await server.connect(host, port)`` dials one, replicating in the background;
- ``await server.replicate(stream, initiator=...)`` replicates over a connection made elsewhere (a
  uTP stream, a test's memory stream) in the calling task, until it ends;
- ``server.sessions``: the live connections, one
  :class:`~hypernode.replication.session.ReplicationSession` each, every shared feed on it.

Each connection is a :class:`~hypernode.wire.stream.ProtocolStream` (the Noise handshake with the
server's ``key_pair``, one for all its connections, or a new one per connection) carrying a session.
:meth:`ReplicationServer.replicate` returns when the connection ends cleanly (either side closed it)
and raises why it ended otherwise. The connections the server runs itself (accepted by ``listen``,
dialled by ``connect``) end alone: their failure is logged (:func:`log_connection_end`), the server
and the other connections carry on.

The server listens to the store's announcements: a feed the store opens is offered on every live
connection, a feed that closes leaves them. Full mode (``sparse=False``, the default) is a
replication policy living here: every feed replicated that is not writable is wanted whole; a sparse
server fetches only what is read (see :meth:`~hypernode.replication.replicator.Replicator.want_all`).

Leaving the block closes the connections and the listeners (the store stays open: it is the
caller's). :func:`sessions_of` gives the live sessions of every server open on a store (a drive asks
whether any peer could still answer).
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import trio

from hypernode.errors import HypernodeError, VerificationError
from hypernode.limits import AddressLimiter
from hypernode.replication.peer import ReplicationError
from hypernode.replication.session import FeedSource, ReplicationSession
from hypernode.tasks import cleanup, open_service_nursery
from hypernode.wire.frames import ProtocolError
from hypernode.wire.noise import KeyPair
from hypernode.wire.stream import ConnectionClosed, ProtocolStream

if TYPE_CHECKING:
    from hypernode.feed import Feed

log = logging.getLogger(__name__)

__all__ = ["ReplicationServer", "open_replication_server", "sessions_of", "log_connection_end"]

# the servers open on each source (for sessions_of), dropped with the source
_servers: weakref.WeakKeyDictionary[Any, list[ReplicationServer]] = weakref.WeakKeyDictionary()


def sessions_of(feeds: FeedSource) -> list[ReplicationSession]:
    """The live sessions of every replication server open on ``feeds``."""
    return [s for server in _servers.get(feeds, ()) for s in server.sessions]


def log_connection_end(logger: logging.Logger, who: str, error: BaseException | None) -> None:
    """Log why a connection to ``who`` ended, at the level its cause deserves: a clean end or a
    connection lost at info, a misbehaving peer at warning, a failure of our side (a full disk) at
    error, anything else (a bug) with its traceback."""
    if error is None:
        logger.info("connection to %s ended", who)
    elif isinstance(error, VerificationError | ReplicationError):
        logger.warning("connection to %s ended, the peer dropped: %s", who, error)
    elif isinstance(error, ConnectionClosed | ProtocolError):
        logger.info("connection to %s ended: %s", who, error)
    elif isinstance(error, HypernodeError | OSError):
        logger.error("connection to %s ended on our side: %s", who, error)
    else:
        logger.error("connection to %s ended on an internal error: %r", who, error, exc_info=error)


class _Started:
    """A ``task_status`` that remembers whether ``started`` was called."""

    def __init__(self, task_status: trio.TaskStatus[Any]) -> None:
        self.task_status = task_status
        self.done = False

    def started(self, value: Any = None) -> None:
        self.done = True
        self.task_status.started(value)


class ReplicationServer:
    """Replication connections serving one :class:`FeedSource`. Open it with
    :func:`open_replication_server` (see the module's docstring)."""

    def __init__(self, feeds: FeedSource, nursery: trio.Nursery, *, sparse: bool = False,
                 key_pair: KeyPair | None = None, **stream_options: Any) -> None:
        self.feeds = feeds
        self.sparse = sparse
        self.key_pair = key_pair
        self.stream_options = stream_options
        self.sessions: list[ReplicationSession] = []
        self.listeners: list[trio.SocketListener] = []
        # incoming connections per remote address, TCP (here) and uTP (Peering's) together
        self.limiter = AddressLimiter()
        self._nursery = nursery
        self.closed = False

    # -- the store's announcements -------------------------------------------------------------------

    def feed_opened(self, feed: Feed) -> None:
        for session in list(self.sessions):
            session.feed_opened(feed)

    def feed_closed(self, feed: Feed) -> None:
        for session in list(self.sessions):
            session.feed_closed(feed)

    # -- connections ---------------------------------------------------------------------------------

    async def replicate(self, transport: trio.abc.Stream, *, initiator: bool,
                        task_status: trio.TaskStatus[ReplicationSession] = trio.TASK_STATUS_IGNORED,
                        **stream_options: Any) -> ReplicationSession:
        """Replicate every shared feed over ``transport`` until the connection ends.

        Returns the finished session when it ends cleanly; raises why it ended otherwise (a peer that
        breaks the protocol or sends data that does not verify, a lost connection, a failure of our
        side). With ``nursery.start`` it reports the session as soon as the handshake is done (a
        failed handshake is raised by ``start``). ``stream_options`` go to the connection's
        :class:`~hypernode.wire.stream.ProtocolStream` (``timeout``, ``key_pair``...)."""
        if self.closed:
            raise HypernodeError("the replication server is closed")
        options = {"key_pair": self.key_pair, **self.stream_options, **stream_options}
        async with ProtocolStream(transport, initiator=initiator, **options) as stream:
            session = ReplicationSession(self.feeds, stream, sparse=self.sparse)
            self.sessions.append(session)
            try:
                await stream.wait_handshake()
                task_status.started(session)
                await session.run()
            finally:
                self.sessions.remove(session)
        return session

    async def _serve(self, transport: trio.abc.Stream, initiator: bool,
                     task_status: trio.TaskStatus[ReplicationSession] = trio.TASK_STATUS_IGNORED,
                     **stream_options: Any) -> None:
        """:meth:`replicate` for a connection the server runs: a failure after the handshake is logged
        (before it, it is raised to whoever waits for the handshake)."""
        started = _Started(task_status)
        who = _peer_name(transport)
        try:
            await self.replicate(transport, initiator=initiator, task_status=started,
                                 **stream_options)
        except Exception as e:  # noqa: BLE001 - one connection's failure ends it alone
            if not started.done and initiator:
                raise
            log_connection_end(log, who, e)
        else:
            log_connection_end(log, who, None)

    async def listen(self, host: str = "127.0.0.1", port: int = 0, **stream_options: Any) -> int:
        """Accept replication connections on ``host:port`` until the server closes; returns the port
        (useful with 0). ``stream_options`` go to each connection's ``ProtocolStream``."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.listeners.extend(listeners)

        async def handle(stream: trio.SocketStream) -> None:
            try:
                remote = str(stream.socket.getpeername()[0])
            except OSError:  # gone already
                await trio.aclose_forcefully(stream)
                return
            with self.limiter.admit(remote) as admitted:
                if admitted:
                    await self._serve(stream, False, **stream_options)
                else:
                    await trio.aclose_forcefully(stream)

        self._nursery.start_soon(trio.serve_listeners, handle, listeners)
        port_: int = listeners[0].socket.getsockname()[1]
        return port_

    async def connect(self, host: str, port: int, **stream_options: Any) -> ReplicationSession:
        """Connect to a peer and replicate live with it in the background until the server closes (a
        failure of the connection is logged then). Returns the session once the handshake is done;
        raises OSError if the peer is unreachable, and why the handshake failed if it did."""
        tcp = await trio.open_tcp_stream(host, port)
        session: ReplicationSession = await self._nursery.start(
            _call_serve, self, tcp, stream_options)
        return session

    async def aclose(self) -> None:
        """Close the connections and the listeners (idempotent; leaving the block does it)."""
        if self.closed:
            return
        self.closed = True
        with trio.CancelScope(shield=True):
            for session in list(self.sessions):
                await session.aclose()
            # cancel the accept loops before closing their sockets: a loop woken by the close instead
            # would raise ClosedResourceError out of the server's nursery
            self._nursery.cancel_scope.cancel()
            for listener in self.listeners:
                await listener.aclose()


async def _call_serve(server: ReplicationServer, transport: trio.abc.Stream, options: dict[str, Any],
                      task_status: trio.TaskStatus[ReplicationSession] = trio.TASK_STATUS_IGNORED) -> None:
    await server._serve(transport, True, task_status, **options)


@contextlib.asynccontextmanager
async def open_replication_server(feeds: FeedSource, *, sparse: bool = False, key_pair: KeyPair | None = None,
                                  **stream_options: Any) -> AsyncIterator[ReplicationServer]:
    """Serve ``feeds`` (a Corestore) over the network while the block runs (see the module's
    docstring). ``sparse=False``: every feed replicated that is not writable is fetched whole;
    ``key_pair``: the Noise key pair of every connection (a new one each when None);
    ``stream_options``: for each connection's ``ProtocolStream`` (``timeout``...)."""
    async with open_service_nursery() as nursery:
        server = ReplicationServer(feeds, nursery, sparse=sparse, key_pair=key_pair, **stream_options)
        async with cleanup(server.aclose):
            feeds.add_listener(server)
            _servers.setdefault(feeds, []).append(server)
            try:
                yield server
            finally:
                feeds.remove_listener(server)
                servers = _servers.get(feeds)
                if servers is not None and server in servers:
                    servers.remove(server)


def _peer_name(transport: trio.abc.Stream) -> str:
    sock = getattr(transport, "socket", None)
    try:
        name = sock.getpeername() if sock is not None else None
    except OSError:
        name = None
    if isinstance(name, tuple):
        host, port = str(name[0]), int(name[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return "a peer"
