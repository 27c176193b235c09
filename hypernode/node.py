"""``Node``: a long-running hypernode — a store of drives, a listening port, and peers kept connected.

``async with Node(directory) as node`` (or :func:`open_node`) opens the
:class:`~hypernode.corestore.Corestore` in ``directory`` (its feeds laid out as corestore 5 does, plus
``hypernode.json``, the list of drives this node serves) and a replication server on it
(:func:`~hypernode.replication.server.open_replication_server`, :attr:`Node.server`), listens for
replication connections, and keeps a connection to every peer given to
:meth:`Node.add_peer`, reconnecting with exponential backoff when one drops. Every drive the node knows
is open, so it replicates live with every connected peer in both directions. Leaving the block closes
connections, drives and feeds in that order; nothing written is lost.

The store is the node's alone: opening it takes the store's lock (:mod:`hypernode.storelock`) before
anything is written, so a second node on the same directory, in this process or another, raises
:class:`~hypernode.errors.StoreLockedError`. A node that listens writes its address into the lock file,
where a reader that finds the store in use can connect to it instead.

An exception raised in the block comes out unchanged, and a failure of the node's own tasks comes out
alone (see :mod:`hypernode.tasks`). The waits on peers (:meth:`Node.wait_for_peer`,
:meth:`Node.sync_feed`, :meth:`Node.progress_timeout`) take a timeout that means "no progress": how long
to wait for a peer or for the next block, never a limit on a whole transfer. When it runs out they
raise :class:`~hypernode.errors.PeerTimeoutError` naming the cause: the peers that could not be reached
and why (the node remembers the last failure of each, :attr:`Node.peer_errors`), or that the connected
peers do not have the drive.

The ``hypernode`` command (:mod:`hypernode.cli`) is a thin layer over this class.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import random
from collections import Counter
from collections.abc import AsyncIterator, Collection, Iterable
from pathlib import Path
from typing import Any

import trio

from hypernode.corestore import Corestore
from hypernode.discovery.peering import Peering
from hypernode.drive import Hyperdrive
from hypernode.errors import HypernodeError, PeerTimeoutError, connect_reason
from hypernode.feed import Feed
from hypernode.keys import parse_hyper_url
from hypernode.replication import FeedPeer, replicator_of
from hypernode.replication.server import ReplicationServer, log_connection_end, open_replication_server
from hypernode.replication.session import ReplicationSession
from hypernode.status import DriveStatus, NodeStatus, PeerStatus
from hypernode.storage import VERIFIED_FILENAME
from hypernode.tasks import Service, cleanup, open_service_nursery, open_task_nursery, opener
from hypernode.utp.socket import transport_of
from hypernode.wire.noise import KeyPair

log = logging.getLogger(__name__)

REGISTRY = "hypernode.json"
BACKOFF_START = 0.25
BACKOFF_MAX = 30.0
CONNECT_TIMEOUT = 10.0  # seconds for a TCP connection to a peer to be made
_FAILED = "connected, but the connection failed"


def parse_peer(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a (host, port) pair; ValueError if it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a HOST:PORT peer address: {text!r}")
    return host.strip("[]"), int(port)


def parse_url(text: str) -> tuple[bytes, str | None]:
    """A drive key with an optional path: ``KEY``, ``hyper://KEY`` or ``hyper://KEY/some/path`` (``dat://``
    too) as ``(key, path)``, the key in hex or z-base-32 (:mod:`hypernode.keys`); the path is None when
    none is given (``hyper://KEY`` or ``hyper://KEY/``). ValueError if there is no key in it."""
    try:
        url = parse_hyper_url(text)
    except ValueError:
        raise ValueError(f"not a drive key (64 hex digits or 52 z-base-32 letters): {text.strip()!r}") \
            from None
    return url.key, url.path


def parse_key(text: str) -> bytes:
    """A drive key (hex or z-base-32; ``hyper://KEY`` and ``hyper://KEY/`` too); ValueError otherwise, and
    for a URL with a path (where only a key is meant)."""
    key, path = parse_url(text)
    if path is not None:
        raise ValueError(f"a drive key was expected, not a path in one: {text!r}")
    return key


class Node(Service):
    """A store of drives served on a TCP port and synced live with peers. Use as ``async with`` (or
    :func:`open_node`)."""

    def __init__(self, directory: str | os.PathLike[str] | None, *, host: str = "127.0.0.1",
                 port: int | None = 0, peers: Iterable[tuple[str, int]] = (), sparse: bool = False,
                 bootstrap: Iterable[tuple[str, int]] | None = None, local_discovery: bool = False,
                 discovery_options: dict[str, Any] | None = None) -> None:
        """``bootstrap`` (DHT nodes; ``[]``: no DHT) or ``local_discovery`` (mDNS) turn on discovery:
        every drive is then announced (when the node listens) and looked up under its discovery key,
        and the peers found are connected (see :mod:`hypernode.discovery.peering`)."""
        self.directory = None if directory is None else Path(directory)
        self.host = host
        self._listen_port = port
        self.port: int | None = None
        self._sparse = sparse
        self.store: Corestore = None  # type: ignore[assignment]  # opened (and locked) by __aenter__
        self.server: ReplicationServer = None  # type: ignore[assignment]  # opened by __aenter__
        self.drives: dict[bytes, Hyperdrive] = {}
        self._initial_peers = list(peers)
        self._peer_scopes: dict[tuple[str, int], trio.CancelScope] = {}
        self.connected: dict[tuple[str, int], ReplicationSession] = {}  # peer -> live session
        # peer -> why the last attempt to connect to it failed, or why its connection ended; cleared
        # when a connection to it is made (the waiting functions name these causes when they give up)
        self.peer_errors: dict[tuple[str, int], str] = {}
        self._nursery: trio.Nursery | None = None
        self.key_pair = KeyPair.generate()  # the Noise key of all our connections: peers dedup by it
        self._discovery_args = (None if bootstrap is None else list(bootstrap), local_discovery,
                                dict(discovery_options or {}))
        self.discovery: Peering | None = None  # while discovering

    # -- lifecycle ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        # the store takes its lock before anything in the directory is written: a store in use by
        # another process raises StoreLockedError here, having touched nothing
        try:
            async with Corestore(self.directory) as self.store, \
                    open_replication_server(self.store, sparse=self._sparse,
                                            key_pair=self.key_pair) as server, \
                    cleanup(self._close_drives), \
                    open_service_nursery() as self._nursery:  # the node's tasks end first
                self.server = server
                await self._start()
                bootstrap, local, options = self._discovery_args
                if bootstrap is None and not local:
                    yield
                    return
                async with Peering(server=server, key_pair=self.key_pair, port=self.port, host=self.host,
                                   handled=self._peer_scopes.__contains__, peer_errors=self.peer_errors,
                                   bootstrap=bootstrap, local=local, **options) as self.discovery:
                    for drive in self.drives.values():
                        self.discovery.join(drive.discovery_key)
                    yield
        finally:
            self._nursery = None
            self.discovery = None

    async def _start(self) -> None:
        for key in self.registered():
            try:
                await self.open_drive(key)
            except (HypernodeError, OSError) as e:  # one damaged drive does not stop the others
                log.error("drive %s is not served: %s", key.hex(), e)
        if self._listen_port is not None:
            try:
                self.port = await self.server.listen(self.host, self._listen_port)
            except OSError as e:  # say what could not be done, not only the errno's text
                where = _address(self.host, self._listen_port)
                raise OSError(e.errno, f"cannot listen on {where}: {e.strerror or e}") from e
            if self.store.lock is not None:  # where a read-only command finds the running node
                self.store.lock.set_address(self.host, self.port)
        for host, port in self._initial_peers:
            self.add_peer(host, port)

    async def _close_drives(self) -> None:
        for drive in list(self.drives.values()):
            with contextlib.suppress(HypernodeError, OSError):
                await drive.close()

    def _require_running(self) -> trio.Nursery:
        if self._nursery is None:
            raise HypernodeError("use the node as `async with Node(...) as node`")
        return self._nursery

    # -- drives ------------------------------------------------------------------------------------

    def registered(self) -> list[bytes]:
        """The keys of the drives this node serves (from ``hypernode.json``)."""
        if self.directory is None:
            return list(self.drives)
        try:
            data = json.loads((self.directory / REGISTRY).read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as e:
            raise HypernodeError(f"{self.directory / REGISTRY} is damaged: {e}") from None
        out = []
        for entry in data.get("drives", []):
            try:
                out.append(parse_key(entry["key"]))
            except (KeyError, TypeError, ValueError):
                raise HypernodeError(f"{self.directory / REGISTRY} lists a bad drive: {entry!r}") from None
        return out

    def _register(self, key: bytes) -> None:
        if self.directory is None:
            return
        keys = self.registered()
        if key in keys:
            return
        keys.append(key)
        path = self.directory / REGISTRY
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"drives": [{"key": k.hex()} for k in keys]}, indent=1) + "\n")
        os.replace(tmp, path)

    async def create_drive(self) -> Hyperdrive:
        """A new writable drive, served from now on."""
        self._require_running()
        drive = await Hyperdrive.open(self.store)
        self.drives[drive.key] = drive
        self._register(drive.key)
        if self.discovery is not None:
            self.discovery.join(drive.discovery_key)
        return drive

    async def open_drive(self, key: bytes | str) -> Hyperdrive:
        """The drive of ``key`` (writable if this store made it), served and synced from now on."""
        self._require_running()
        key = parse_key(key) if isinstance(key, str) else key
        drive = self.drives.get(key)
        if drive is None:
            drive = await Hyperdrive.open(self.store, key)
            self.drives[key] = drive
            self._register(key)
            if self.discovery is not None:
                self.discovery.join(drive.discovery_key)
            if drive.content is None:  # a replica without its header yet: open the content feed when
                self._require_running().start_soon(self._open_content, drive)  # it arrives, to sync it
        return drive

    async def _open_content(self, drive: Hyperdrive) -> None:
        try:
            await drive.content_feed()
        except (HypernodeError, OSError) as e:  # a full disk, say: the drive waits, the node carries on
            log.warning("drive %s: %s", drive.key.hex()[:16], e)

    async def forget_drive(self, key: bytes) -> list[str]:
        """Stop serving the drive of ``key`` and delete what this store holds of it: the files of its
        metadata and content feeds' directories (the key files, a writable drive's secret key too), and
        its line in ``hypernode.json``, ``seeds.json`` and ``shares.json``. Nothing else is touched: a
        file in those directories that is not a feed's is left there (with its directory), and drives
        mounted in it stay. Returns the paths deleted."""
        self._require_running()
        drive = self.drives.pop(key, None) or await Hyperdrive.open(self.store, key)
        feeds = [drive.metadata]
        if drive.content is None and drive.metadata.has(0):
            with contextlib.suppress(HypernodeError, OSError):  # a damaged header: the metadata only
                await drive.content_feed()
        if drive.content is not None and drive.content is not drive.metadata:
            feeds.append(drive.content)
        if self.discovery is not None:
            self.discovery.leave(drive.discovery_key)
        await drive.close()
        removed: list[str] = []
        for feed in feeds:
            await feed.close()
            removed += _remove_feed_files(self.store.feed_directory(feed.discovery_key))
        if self.directory is not None:
            self._unregister(key)
            from hypernode.seeds import remove_seed

            remove_seed(self.directory, key)
            forget_shared_drive(self.directory, key)
        return removed

    def _unregister(self, key: bytes) -> None:
        keys = self.registered()
        if key not in keys or self.directory is None:
            return
        path = self.directory / REGISTRY
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"drives": [{"key": k.hex()} for k in keys if k != key]}, indent=1) + "\n")
        os.replace(tmp, path)

    # -- status ------------------------------------------------------------------------------------

    def status(self, seeded: Collection[bytes] = ()) -> NodeStatus:
        """A snapshot of the node: every drive it serves, with its version, blocks (stored here of
        all), bytes, and peers (address, bytes and blocks up and down on that connection, over the
        drive's metadata and content feeds). Drives in ``seeded`` are marked so."""
        self._require_running()
        # every read of replication state is here, in one place
        dialed = {id(session): peer for peer, session in self.connected.items()}
        sessions = [(s, _session_address(s, dialed.get(id(s)))) for s in self.server.sessions
                    if s.remote_public_key is not None and not s.closed]
        drives = []
        for key, drive in self.drives.items():
            feeds = [f for f in (drive.metadata, drive.content) if f is not None]
            peers = []
            for session, address in sessions:
                totals = [0, 0, 0, 0]
                shared = False
                for feed in feeds:
                    fp = session.peers.get(feed.discovery_key)
                    if fp is None:
                        continue
                    shared = True
                    st = fp.stats
                    for i, n in enumerate((st.uploaded_bytes, st.downloaded_bytes, st.uploaded_blocks,
                                           st.downloaded_blocks)):
                        totals[i] += n
                if shared:
                    peers.append(PeerStatus(address, session.remote_public_key, totals[0], totals[1],
                                            totals[2], totals[3],
                                            transport=transport_of(session.stream.transport),
                                            incoming=not session.stream.conn.initiator))
            announced = [max(f.length, replicator_of(f).remote_length) for f in feeds]
            drives.append(DriveStatus(
                key=key, version=drive.version, writable=drive.writable,
                blocks=sum(announced), local_blocks=sum(f.downloaded() for f in feeds),
                bytes=sum(f.byte_length for f in feeds), seeded=key in seeded, peers=tuple(peers),
                content_known=_length_known(drive.content)))
        connections: Counter[str] = Counter()
        incoming: Counter[str] = Counter()
        for session, _ in sessions:
            way = transport_of(session.stream.transport)
            connections[way] += 1
            if not session.stream.conn.initiator:
                incoming[way] += 1
        swarm = self.discovery.swarm if self.discovery is not None else None
        return NodeStatus(directory=None if self.directory is None else str(self.directory),
                          pid=os.getpid(), running=True, host=self.host if self.port is not None else None,
                          port=self.port, connected_peers=self._connected_peers(), drives=tuple(drives),
                          utp_port=swarm.utp_port if swarm is not None else None,
                          connections=dict(connections), incoming=dict(incoming))

    # -- peers -------------------------------------------------------------------------------------

    def add_peer(self, host: str, port: int) -> None:
        """Keep a replication connection to ``host:port``, reconnecting with backoff, until the node
        closes or :meth:`remove_peer` is called."""
        nursery = self._require_running()
        if (host, port) in self._peer_scopes:
            return
        scope = trio.CancelScope()
        self._peer_scopes[(host, port)] = scope
        nursery.start_soon(self._keep_connected, host, port, scope)

    def remove_peer(self, host: str, port: int) -> None:
        scope = self._peer_scopes.pop((host, port), None)
        if scope is not None:
            scope.cancel()

    async def connect(self, host: str, port: int) -> ReplicationSession:
        """One replication connection to ``host:port`` (raises OSError if it cannot be made)."""
        return await self.server.connect(host, port)

    async def _keep_connected(self, host: str, port: int, scope: trio.CancelScope) -> None:
        delay = BACKOFF_START
        with scope:
            while True:
                try:
                    with trio.fail_after(CONNECT_TIMEOUT):
                        tcp = await trio.open_tcp_stream(host, port)
                except (OSError, trio.TooSlowError) as e:
                    self.peer_errors[(host, port)] = "timed out" if isinstance(e, trio.TooSlowError) \
                        else connect_reason(e)
                    log.info("peer %s:%d unreachable (%s); retrying in %.1fs", host, port,
                             self.peer_errors[(host, port)], delay)
                else:
                    delay = BACKOFF_START
                    try:
                        await self._replicate(tcp, (host, port))
                    except Exception as e:  # noqa: BLE001 - this connection failed: the node retries
                        self.peer_errors[(host, port)] = f"{_FAILED}: {e}"
                        log_connection_end(log, _address(host, port), e)
                    else:
                        log_connection_end(log, _address(host, port), None)
                    finally:
                        self.connected.pop((host, port), None)
                await trio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, BACKOFF_MAX)

    async def _replicate(self, tcp: trio.abc.Stream, peer: tuple[str, int]) -> None:
        """Replicate over ``tcp`` until it ends (raising why, unless it ended cleanly); the session is
        in ``connected`` from its handshake on."""
        async with open_task_nursery() as nursery:
            session = await nursery.start(functools.partial(self.server.replicate, tcp, initiator=True))
            self.connected[peer] = session
            self.peer_errors.pop(peer, None)  # the handshake is done: the peer is reached

    # -- waiting for peers -------------------------------------------------------------------------
    #
    # Every timeout here means "no progress": how long to wait for a peer, or for the next block, never
    # a limit on a whole transfer. When one runs out, PeerTimeoutError says why, naming the cause.

    async def wait_for_peer(self, feed: Feed, *, timeout: float | None = None) -> None:
        """Wait until a peer replicating ``feed`` has told us what it has (answered our first Want).

        With ``timeout``, give up after that many seconds without such a peer, raising
        :class:`~hypernode.errors.PeerTimeoutError` that says why: the peers that could not be reached
        and why (``cannot reach 127.0.0.1:9: connection refused``), that the connected peers do not
        have the feed (``no peer has drive KEY``), or that none was found."""
        try:
            await replicator_of(feed).wait_for_peer(timeout=timeout)
        except trio.TooSlowError:
            raise PeerTimeoutError(self.why_no_peer(feed, timeout)) from None

    async def sync_feed(self, feed: Feed, *, timeout: float | None = None) -> int:
        """Wait for a peer, then until every block any connected peer has announced is here; returns
        the length reached.

        ``timeout`` bounds each wait, not the whole: the wait for the first peer (as
        :meth:`wait_for_peer`), then the wait for each next block. A download of any size goes on as
        long as blocks keep arriving; if none does for ``timeout`` seconds,
        :class:`~hypernode.errors.PeerTimeoutError` says how far it got and why it stalled."""
        await self.wait_for_peer(feed, timeout=timeout)
        replicator = replicator_of(feed)
        deadline, best = math.inf, -1
        while True:
            target = max(feed.length, replicator.remote_length)
            have = feed.downloaded(0, target)
            if feed.length >= target and have == target:
                return target
            if have > best:  # progress: the clock starts again
                best = have
                deadline = trio.current_time() + timeout if timeout is not None else math.inf
            async with replicator.want(0, target):
                with trio.move_on_at(deadline) as waited:
                    await replicator.wait_for_change()
            if waited.cancelled_caught:
                raise PeerTimeoutError(
                    f"no block of {self._feed_name(feed)} arrived for {timeout:g} s ({have} of {target} "
                    f"blocks here); {self._peer_state()}")

    @contextlib.asynccontextmanager
    async def progress_timeout(self, timeout: float | None, what: str) -> AsyncIterator[None]:
        """Run the block while data keeps arriving: if ``timeout`` seconds pass with no block stored in
        any feed of the node (and no new peer opening one), the block is cancelled and
        :class:`~hypernode.errors.PeerTimeoutError` raised (``what`` says what was being done). A block
        that needs no peer never waits on one, so only a stalled transfer times out."""
        if timeout is None:
            yield
            return
        stalled = False

        async def watch(scope: trio.CancelScope) -> None:
            nonlocal stalled
            tick = min(0.25, timeout / 4)
            counts = self._block_counts()
            last = trio.current_time()
            while True:
                await trio.sleep(tick)
                now_counts = self._block_counts()
                if any(k not in counts or v > counts[k] for k, v in now_counts.items()):
                    last = trio.current_time()
                counts = now_counts
                if trio.current_time() - last >= timeout:
                    stalled = True
                    scope.cancel()
                    return

        with trio.CancelScope() as scope:
            async with open_service_nursery() as nursery:
                nursery.start_soon(watch, scope)
                yield
        if stalled:
            why = f"{what}: no data arrived for {timeout:g} s; {self._peer_state()}"
            raise PeerTimeoutError(why) from None

    def _block_counts(self) -> dict[Feed | FeedPeer, int]:
        """Blocks per feed and per feed peer (what :meth:`progress_timeout` watches grow)."""
        counts: dict[Feed | FeedPeer, int] = {}
        for feed in self.store.feeds:
            counts[feed] = feed.length
            for p in replicator_of(feed).peers:
                counts[p] = p.stats.downloaded_blocks
        return counts

    def _feed_name(self, feed: Feed) -> str:
        drive = self.drives.get(feed.key)
        if drive is not None and drive.metadata is feed:
            return f"drive {feed.key.hex()}"
        for drive in self.drives.values():
            if drive.content is feed:
                return f"the content of drive {drive.key.hex()}"
        return f"feed {feed.key.hex()}"

    def _unreachable(self) -> list[str]:
        return [f"{_address(h, p)}: {why}" if why.startswith(_FAILED)
                else f"cannot reach {_address(h, p)}: {why}" for (h, p), why in self.peer_errors.items()]

    def why_no_peer(self, feed: Feed, timeout: float | None) -> str:
        """Why no peer has answered for ``feed`` (the message of the error the waits raise)."""
        name = self._feed_name(feed)
        after = f" within {timeout:g} s" if timeout is not None else ""
        if any(p.opened for p in replicator_of(feed).peers):
            return f"the peers with {name} did not say what they have{after}"
        connected = self._connected_peers()
        if connected:
            return f"no peer has {name} ({connected} connected peer{'s' if connected > 1 else ''} asked)"
        unreachable = self._unreachable()
        if unreachable:
            more = f" (and {len(unreachable) - 3} more)" if len(unreachable) > 3 else ""
            return "; ".join(unreachable[:3]) + more
        if self.discovery is not None:
            return f"no peer found for {name}{after}"
        if self.port is not None:
            return f"no peer connected{after} to ask for {name} (none to connect to, no discovery)"
        return f"no peer to ask for {name} (none to connect to, no discovery)"

    def _peer_state(self) -> str:
        connected = self._connected_peers()
        if connected:
            return f"{connected} peer{'s' if connected > 1 else ''} connected"
        unreachable = self._unreachable()
        if unreachable:
            return "; ".join(unreachable[:3])
        return "no peer connected"

    def _connected_peers(self) -> int:
        return sum(1 for s in self.server.sessions if s.remote_public_key is not None and not s.closed)


open_node = opener(Node)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _length_known(content: Feed | None) -> bool:
    """Is the length of a drive's content feed known here: it has blocks, or a peer sharing it has
    said what it has? (Opened from the metadata's header, an empty content feed may only not have
    heard yet: its drive is not complete until it has.)"""
    if content is None:
        return False
    return content.writable or content.length > 0 or any(p.answered for p in replicator_of(content).peers)


def _session_address(session: ReplicationSession, dialed: tuple[str, int] | None) -> str:
    """Where a connection goes: the address we dialed, or the remote end of the socket it accepted."""
    if dialed is not None:
        return _address(*dialed)
    transport = getattr(session.stream, "transport", None)
    remote = getattr(transport, "remote_address", None)  # a uTP stream
    if isinstance(remote, tuple):
        return _address(str(remote[0]), int(remote[1]))
    sock = getattr(transport, "socket", None)
    try:
        name = sock.getpeername() if sock is not None else None
    except OSError:
        name = None
    return _address(str(name[0]), int(name[1])) if isinstance(name, tuple) else "?"


# the files a feed directory holds (storage.py's six and its verified record, corestore's name): what
# forget_drive deletes
_FEED_FILES = ("key", "secret_key", "data", "tree", "signatures", "bitfield", "name", VERIFIED_FILENAME)


def _remove_feed_files(directory: str | None) -> list[str]:
    """Delete a feed directory's own files, then the directory and its two parent levels (``ab/cd``)
    where they are left empty; anything else in them stays."""
    if directory is None:
        return []
    removed = []
    for name in _FEED_FILES:
        path = os.path.join(directory, name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    parent = directory
    for _ in range(3):  # the feed's directory, then cd/, then ab/ (never the store itself)
        try:
            os.rmdir(parent)
        except OSError:  # not empty (or gone): stop here
            break
        parent = os.path.dirname(parent)
    return removed


# -- folders shared from a store (``hypernode share``) ----------------------------------------------
#
# ``STORE/shares.json`` maps each folder shared from the store (its resolved absolute path) to the key
# of the drive that shares it, so that sharing a folder again reuses its drive. A file of its own, so
# that the drive registry (``hypernode.json``) keeps its format.

SHARES = "shares.json"


def _shares(directory: Path) -> dict[str, str]:
    path = directory / SHARES
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise HypernodeError(f"{path} is damaged: {e}") from None
    folders = data.get("folders") if isinstance(data, dict) else None
    if not isinstance(folders, dict):
        raise HypernodeError(f"{path} is damaged: no 'folders' map")
    return folders


def shared_folder_key(directory: str | os.PathLike[str] | None, folder: str | os.PathLike[str]
                      ) -> bytes | None:
    """The key of the drive that shared ``folder`` from the store in ``directory``, or None."""
    if directory is None:
        return None
    key = _shares(Path(directory)).get(str(Path(folder).resolve()))
    if key is None:
        return None
    try:
        return parse_key(key)
    except ValueError:
        raise HypernodeError(f"{Path(directory) / SHARES} lists a bad key for {folder}") from None


def forget_shared_drive(directory: str | os.PathLike[str] | None, key: bytes) -> None:
    """Drop every folder that the drive of ``key`` shared from the list (the drive is forgotten)."""
    if directory is None:
        return
    directory = Path(directory)
    folders = _shares(directory)
    kept = {name: k for name, k in folders.items() if k != key.hex()}
    if len(kept) == len(folders):
        return
    path = directory / SHARES
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"folders": kept}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def remember_shared_folder(directory: str | os.PathLike[str] | None, folder: str | os.PathLike[str],
                           key: bytes) -> None:
    """Record that the drive of ``key`` shares ``folder`` (written atomically)."""
    if directory is None:
        return
    directory = Path(directory)
    folders = _shares(directory)
    name = str(Path(folder).resolve())
    if folders.get(name) == key.hex():
        return
    folders[name] = key.hex()
    path = directory / SHARES
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"folders": folders}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
