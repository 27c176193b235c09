"""``Corestore``: many feeds in one directory, laid out as corestore@5 lays them out.

- ``master_key``: 32 random bytes, made on first use (mode 0600, written whole or not at all; one of
  the wrong size is reported as damage, never replaced: every writable feed derives from it);
- each feed in ``<dk[0:2]>/<dk[2:4]>/<dk>/`` (``dk``: the hex discovery key), holding hypercore's files;
- a writable feed made by the store has no ``secret_key`` file: its key pair is derived from the master
  key and a *name* (``get(name=...)``, ``default()``, or 32 random bytes), and the ``name`` file holds
  ``varint(len) || name``. The seed is BLAKE2b-256 of ``"9\\ncorestore" || name`` keyed with the master
  key (derive-key), so a JS corestore directory opens here with its feeds writable, and the reverse;
- ``hypernode.lock``: the store's lock (:mod:`hypernode.storelock`). ``Corestore(directory)`` takes it
  before it reads or writes anything else, and :meth:`Corestore.close` releases it: a store in use by
  another process (or another ``Corestore`` of this one) raises
  :class:`~hypernode.errors.StoreLockedError`, having touched nothing.

With no directory everything lives in memory. ``async with Corestore(...) as store`` gives the store
a nursery: :meth:`Corestore.listen` and :meth:`Corestore.connect` then replicate live over TCP (one
:class:`~hypernode.replication.session.ReplicationSession` per connection, every shared feed on it)
until the store closes. A connection that fails or misbehaves ends alone. Leaving the block ends the
connections, then closes the feeds and releases the lock; an exception raised in the block comes out
unchanged (:mod:`hypernode.tasks`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from types import TracebackType
from typing import Any

import trio

from hypernode import crypto
from hypernode.errors import CorruptStorageError, HypernodeError
from hypernode.feed import Feed
from hypernode.limits import AddressLimiter
from hypernode.storelock import StoreLock
from hypernode.tasks import cleanup, open_service_nursery
from hypernode.varint import DecodeError, decode_varint, encode_varint

log = logging.getLogger(__name__)
MASTER_KEY_FILENAME = "master_key"
_NAMESPACE = b"corestore"


def derive_seed(master_key: bytes, name: bytes, namespace: bytes = _NAMESPACE) -> bytes:
    """derive-key: BLAKE2b-256(``len(ns) "\\n" ns || name``) keyed with the master key."""
    h = hashlib.blake2b(str(len(namespace)).encode() + b"\n" + namespace, digest_size=32, key=master_key)
    h.update(name)
    return h.digest()


def _encode_name(name: bytes) -> bytes:
    return encode_varint(len(name)) + name


def _decode_name(buf: bytes) -> bytes | None:
    """The name, or None for a file that is not ``varint(len) || name`` (as derived-key-storage)."""
    try:
        n, off = decode_varint(buf, 0)
    except DecodeError:
        return None
    name = buf[off:]
    return name if len(name) == n else None


class Corestore:
    """Many feeds under one directory (or in memory), each opened once and shared."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, sparse: bool = False,
                 master_key: bytes | None = None) -> None:
        self.directory = None if directory is None else os.fspath(directory)
        self.sparse = sparse  # False: its replication sessions fetch every block of the feeds they share
        self._feeds: dict[bytes, Feed] = {}  # by discovery key
        self._names: dict[bytes, bytes] = {}  # memory mode: discovery key -> name
        self.closed = False
        self.lock: StoreLock | None = None
        if self.directory is not None:
            self.lock = StoreLock(self.directory)  # before anything in the directory is written
        try:
            if master_key is not None:
                self.master_key = master_key
            elif self.directory is None:
                self.master_key = crypto.random_bytes(32)
            else:
                self.master_key = _load_master_key(self.directory)
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise
        self.sessions: list[Any] = []  # live ReplicationSessions
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self.listeners: list[trio.SocketListener] = []
        self.limiter = AddressLimiter()  # incoming connections per remote address (TCP and uTP)

    # -- keys and paths ----------------------------------------------------------------------------

    def key_pair(self, name: bytes | str) -> crypto.KeyPair:
        """The key pair the store derives for ``name``."""
        if isinstance(name, str):
            name = name.encode()
        return crypto.key_pair(derive_seed(self.master_key, name))

    def feed_directory(self, discovery_key: bytes) -> str | None:
        if self.directory is None:
            return None
        dk = discovery_key.hex()
        return os.path.join(self.directory, dk[0:2], dk[2:4], dk)

    def exists(self, discovery_key: bytes) -> bool:
        """Is a feed with this discovery key open or stored here?"""
        if discovery_key in self._feeds:
            return True
        d = self.feed_directory(discovery_key)
        return d is not None and os.path.exists(os.path.join(d, "key"))

    # -- opening feeds -----------------------------------------------------------------------------

    async def get(self, key: bytes | None = None, *, name: bytes | str | None = None,
                  discovery_key: bytes | None = None, secret_key: bytes | None = None) -> Feed:
        """A feed of the store, opened once and shared.

        ``get()`` makes a new writable feed (a random name); ``get(name=...)`` the writable feed of
        that name; ``get(key)`` the feed of that public key (writable if the store made it);
        ``get(discovery_key=...)`` a feed already stored here.
        """
        self._check_open()
        if isinstance(name, str):
            name = name.encode()
        if key is None and discovery_key is None and name is None and secret_key is None:
            name = crypto.random_bytes(32)
        pair: crypto.KeyPair | None = None
        if name is not None:
            pair = self.key_pair(name)
            key = pair.public_key
        if key is not None:
            if len(key) != 32:
                raise ValueError("a feed key is 32 bytes")
            discovery_key = crypto.discovery_key(key)
        assert discovery_key is not None
        feed = self._feeds.get(discovery_key)
        if feed is not None and not feed.closed:
            return feed

        directory = self.feed_directory(discovery_key)
        if key is None:
            key = self._stored_key(directory)
            if key is None:
                raise HypernodeError(f"no feed with discovery key {discovery_key.hex()} in this store")
        if pair is None:
            stored_name = self._stored_name(directory, discovery_key)
            if stored_name is not None:
                candidate = self.key_pair(stored_name)
                if candidate.public_key == key:
                    pair, name = candidate, stored_name
        if secret_key is None and pair is not None:
            secret_key = pair.secret_key
        feed = await Feed.open(directory, key=key, secret_key=secret_key,
                               store_secret_key=name is None)
        if name is not None:
            self._store_name(directory, discovery_key, name)
        self._feeds[discovery_key] = feed
        for session in list(self.sessions):
            session.feed_opened(feed)
        return feed

    async def default(self) -> Feed:
        """The store's writable feed named ``default`` (as corestore's ``default()``)."""
        return await self.get(name=b"default")

    def _stored_key(self, directory: str | None) -> bytes | None:
        if directory is None:
            return None
        try:
            with open(os.path.join(directory, "key"), "rb") as f:
                key = f.read(33)
        except FileNotFoundError:
            return None
        if len(key) != 32:
            raise CorruptStorageError(os.path.join(directory, "key"), "a public key is 32 bytes")
        return key

    def _stored_name(self, directory: str | None, discovery_key: bytes) -> bytes | None:
        if directory is None:
            return self._names.get(discovery_key)
        try:
            with open(os.path.join(directory, "name"), "rb") as f:
                return _decode_name(f.read())
        except FileNotFoundError:
            return None

    def _store_name(self, directory: str | None, discovery_key: bytes, name: bytes) -> None:
        if directory is None:
            self._names[discovery_key] = name
            return
        path = os.path.join(directory, "name")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(_encode_name(name))

    # -- listing and closing -----------------------------------------------------------------------

    @property
    def feeds(self) -> list[Feed]:
        """The feeds open in this store."""
        return [f for f in self._feeds.values() if not f.closed]

    def feed_by_discovery_key(self, discovery_key: bytes) -> Feed | None:
        feed = self._feeds.get(discovery_key)
        return feed if feed is not None and not feed.closed else None

    def _check_open(self) -> None:
        if self.closed:
            raise HypernodeError("the corestore is closed")

    # -- replication -------------------------------------------------------------------------------

    async def replicate(self, transport: trio.abc.Stream, *, initiator: bool,
                        task_status: Any = trio.TASK_STATUS_IGNORED, **stream_options: Any) -> Any:
        """Replicate every shared feed over ``transport`` until the connection ends.

        Returns the finished session (its ``error`` says why it ended, if it failed). With
        ``nursery.start`` it reports the session as soon as the handshake is done.
        """
        from hypernode.replication.session import ReplicationSession
        from hypernode.wire.stream import ProtocolStream

        async with ProtocolStream(transport, initiator=initiator, **stream_options) as ps:
            session = ReplicationSession(self, ps)
            self.sessions.append(session)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(session.run)
                    try:
                        await ps.wait_handshake()
                    except Exception as e:  # noqa: BLE001 - reported through session.error
                        session.error = e
                    task_status.started(session)
            finally:
                self.sessions.remove(session)
                await ps.aclose()
        if session.error is not None:
            log.info("connection ended: %s", session.error)
        return session

    def _require_nursery(self) -> trio.Nursery:
        if self._nursery is None:
            raise HypernodeError("use the store as `async with Corestore(...) as store` to replicate")
        return self._nursery

    async def listen(self, host: str = "127.0.0.1", port: int = 0, **stream_options: Any) -> int:
        """Accept replication connections on ``host:port``; returns the port (useful with 0).
        ``stream_options`` go to each connection's ``ProtocolStream`` (a ``key_pair``, say)."""
        nursery = self._require_nursery()
        listeners = await trio.open_tcp_listeners(port, host=host)
        self.listeners.extend(listeners)

        async def handle(stream: trio.SocketStream) -> None:
            try:
                host = str(stream.socket.getpeername()[0])
            except OSError:  # gone already
                await trio.aclose_forcefully(stream)
                return
            with self.limiter.admit(host) as admitted:
                if admitted:
                    await self.replicate(stream, initiator=False, **stream_options)
                else:
                    await trio.aclose_forcefully(stream)

        nursery.start_soon(trio.serve_listeners, handle, listeners)
        return listeners[0].socket.getsockname()[1]

    async def connect(self, host: str, port: int) -> Any:
        """Connect to a peer and replicate live with it (in the background) until the store closes.

        Returns the session once the handshake is done; raises OSError if the peer is unreachable.
        """
        nursery = self._require_nursery()
        tcp = await trio.open_tcp_stream(host, port)
        return await nursery.start(_replicate_started, self, tcp)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connections, listeners and feeds, and release the store's lock (idempotent).
        Leaving ``async with`` does this after the store's tasks have ended."""
        if self.closed:
            return
        self.closed = True
        try:
            with trio.CancelScope(shield=True):
                for session in list(self.sessions):
                    await session.aclose()
                if self._nursery is not None:
                    # cancel the accept loops before closing their sockets: a loop woken by the close
                    # instead would raise ClosedResourceError out of the store's nursery
                    self._nursery.cancel_scope.cancel()
                for listener in self.listeners:
                    await listener.aclose()
            errors: list[BaseException] = []
            for feed in list(self._feeds.values()):
                try:  # every feed is closed, even when one cannot write its last bitfield page
                    await feed.close()
                except (HypernodeError, OSError) as e:
                    log.error("closing feed %s: %s", feed.key.hex()[:16], e)
                    errors.append(e)
            if errors:
                raise errors[0]
        finally:
            if self.lock is not None:
                self.lock.release()

    async def __aenter__(self) -> Corestore:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(cleanup(self.close))  # after the tasks have ended
            self._nursery = await stack.enter_async_context(open_service_nursery())
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "the store was not entered"
        try:
            return await stack.__aexit__(exc_type, exc, tb)
        finally:
            self._nursery = None


def _load_master_key(directory: str) -> bytes:
    """The store's master key; a new one (written 0600, atomically) if there is none yet. A master key
    file of the wrong size is damage, never overwritten: every writable feed derives from it."""
    path = os.path.join(directory, MASTER_KEY_FILENAME)
    try:
        with open(path, "rb") as f:
            key = f.read(33)
    except FileNotFoundError:
        key = b""
    if len(key) == 32:
        return key
    if key:
        raise CorruptStorageError(path, f"a master key is 32 bytes, found {len(key)}")
    key = crypto.random_bytes(32)  # none, or an empty file (a crash before the first write)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older tmp file keeps its mode through O_CREAT
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return key


async def _replicate_started(store: Corestore, tcp: trio.abc.Stream,
                             task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    await store.replicate(tcp, initiator=True, task_status=task_status)
