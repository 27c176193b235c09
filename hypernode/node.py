"""``Node``: a long-running hypernode — a store of drives, a listening port, and peers kept connected.

``async with Node(directory) as node`` opens the :class:`~hypernode.corestore.Corestore` in
``directory`` (its feeds laid out as corestore 5 does, plus ``hypernode.json``, the list of drives this
node serves), listens for replication connections, and keeps a connection to every peer given to
:meth:`Node.add_peer`, reconnecting with exponential backoff when one drops. Every drive the node knows
is open, so it replicates live with every connected peer in both directions. Leaving the block closes
connections, drives and feeds in that order; nothing written is lost.

The ``hypernode`` command (:mod:`hypernode.cli`) is a thin layer over this class.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import random
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive
from hypernode.errors import HypernodeError
from hypernode.feed import Feed
from hypernode.wire.noise import KeyPair

log = logging.getLogger(__name__)

REGISTRY = "hypernode.json"
BACKOFF_START = 0.25
BACKOFF_MAX = 30.0


def parse_peer(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a (host, port) pair; ValueError if it is not one."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a HOST:PORT peer address: {text!r}")
    return host.strip("[]"), int(port)


def parse_key(text: str) -> bytes:
    """A 64-hex-digit drive key (``hyper://`` prefix allowed); ValueError otherwise."""
    text = text.strip()
    for prefix in ("hyper://", "dat://"):
        if text.startswith(prefix):
            text = text[len(prefix):].rstrip("/")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"not a drive key (64 hex digits): {text!r}")
    return key


class Node:
    """A store of drives served on a TCP port and synced live with peers. Use as ``async with``."""

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
        self.store = Corestore(self.directory, sparse=sparse)
        self.drives: dict[bytes, Hyperdrive] = {}
        self._initial_peers = list(peers)
        self._peer_scopes: dict[tuple[str, int], trio.CancelScope] = {}
        self.connected: dict[tuple[str, int], Any] = {}  # peer -> live session
        self._nursery: trio.Nursery | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self.key_pair = KeyPair.generate()  # the Noise key of all our connections: peers dedup by it
        self._discovery_args = (None if bootstrap is None else list(bootstrap), local_discovery,
                                dict(discovery_options or {}))
        self.discovery: Any = None  # a hypernode.discovery.peering.Peering while discovering

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Node:
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        try:
            await stack.enter_async_context(self.store)
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            stack.push_async_callback(self._close_drives)
            stack.callback(self._nursery.cancel_scope.cancel)
            for key in self.registered():
                try:
                    await self.open_drive(key)
                except (HypernodeError, OSError) as e:  # one damaged drive does not stop the others
                    log.error("drive %s is not served: %s", key.hex(), e)
            if self._listen_port is not None:
                self.port = await self.store.listen(self.host, self._listen_port, key_pair=self.key_pair)
            for host, port in self._initial_peers:
                self.add_peer(host, port)
            bootstrap, local, options = self._discovery_args
            if bootstrap is not None or local:
                from hypernode.discovery.peering import Peering

                self.discovery = await stack.enter_async_context(
                    Peering(self, bootstrap=bootstrap, local=local, **options))
                for key in self.drives:
                    self.discovery.join(self.drives[key].discovery_key)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None
        return await stack.__aexit__(exc_type, exc, tb)

    async def _close_drives(self) -> None:
        with trio.CancelScope(shield=True):  # finish open descriptors even when cancelled
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
            if drive._content is None:  # a replica without its header yet: open the content feed when
                self._require_running().start_soon(self._open_content, drive)  # it arrives, to sync it
        return drive

    async def _open_content(self, drive: Hyperdrive) -> None:
        try:
            await drive.content_feed()
        except HypernodeError as e:
            log.warning("drive %s: %s", drive.key.hex()[:16], e)

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

    async def connect(self, host: str, port: int) -> Any:
        """One replication connection to ``host:port`` (raises OSError if it cannot be made)."""
        return await self.store.connect(host, port)

    async def _keep_connected(self, host: str, port: int, scope: trio.CancelScope) -> None:
        delay = BACKOFF_START
        with scope:
            while True:
                try:
                    tcp = await trio.open_tcp_stream(host, port)
                except OSError as e:
                    log.info("peer %s:%d unreachable (%s); retrying in %.1fs", host, port, e, delay)
                else:
                    delay = BACKOFF_START
                    try:
                        session = await self._replicate(tcp, (host, port))
                    finally:
                        self.connected.pop((host, port), None)
                    log.info("connection to %s:%d ended: %s", host, port,
                             getattr(session, "error", None) or "closed")
                await trio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, BACKOFF_MAX)

    async def _replicate(self, tcp: trio.abc.Stream, peer: tuple[str, int]) -> Any:
        """Replicate over ``tcp`` until it ends; the session is in ``connected`` from its handshake on."""
        async with trio.open_nursery() as nursery:
            session = await nursery.start(
                functools.partial(self.store.replicate, tcp, initiator=True, key_pair=self.key_pair))
            self.connected[peer] = session
        return session

    # -- waiting for peers -------------------------------------------------------------------------

    async def wait_for_peer(self, feed: Feed, *, timeout: float | None = None) -> None:
        """Wait until a peer replicating ``feed`` has told us what it has (answered our first Want)."""
        with trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
            while not any(p.opened and not p.inflight_wants for p in feed.peers):
                await feed.wait_for_change()

    async def sync_feed(self, feed: Feed, *, timeout: float | None = None) -> int:
        """Wait for a peer, then until every block any connected peer has announced is here; returns
        the length reached."""
        with trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
            await self.wait_for_peer(feed)
            while True:
                target = max([feed.length, *(p.remote_length for p in feed.peers)])
                if feed.length >= target and feed.downloaded(0, target) == target:
                    return target
                r = feed.downloads.want_range(0, target)
                try:
                    await feed.wait_for_change()
                finally:
                    feed.downloads.unwant_range(r)


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
