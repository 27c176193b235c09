"""``MultiDrive``: many hyperdrives read as one filesystem (the API of JS multi-hyperdrive 1.1.4, with
the items its README marks NOT SUPPORTED or TODO done).

Reads go to the drive holding the *latest* version of a path: :attr:`MultiDrive.compare_stats` decides
(by default: causal order from the clocks writes carry (:mod:`hypernode.multi.clock`), then the newest
ctime and mtime, then the drive key). Writes go to the *writer*, the first writable drive added; a
path deleted from another drive is hidden by a tombstone in the writer (:mod:`hypernode.multi.tombstones`).
Which drive holds what comes from the merged index (:mod:`hypernode.multi.index`), brought up to date at
the start of every call, so a call costs about the same for 5 drives or 50.

Drives JS wrote may hold entries under a file or a symlink (see :mod:`hypernode.drive.hyperdrive`):
a path that some drive holds as written is read as written (symlinks above it are not followed for
it), and ``readdir`` of a symlink lists its target's names (if a folder) and its own.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio

from hypernode.drive import paths
from hypernode.drive.content import writing_size
from hypernode.drive.errors import (
    DirectoryNotEmpty,
    FileNotFound,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    PathAlreadyExists,
    PermissionDenied,
    SymlinkLoop,
)
from hypernode.drive.stat import Stat, now_ms
from hypernode.errors import HypernodeError
from hypernode.multi import tombstones
from hypernode.multi.clock import CLOCK_KEY, VersionVector, causal_order, read_clock
from hypernode.multi.index import DriveView, MergedIndex, listing_order, parent_key
from hypernode.multi.tombstones import Tombstone
from hypernode.protobuf import DecodeError
from hypernode.replication import FeedExtension, FeedPeer, replicator_of
from hypernode.replication.extensions import OnMessage
from hypernode.replication.server import open_replication_server
from hypernode.tasks import run_cleanup

if TYPE_CHECKING:
    from hypernode.drive.hyperdrive import Hyperdrive

TAGS_PREFIX = "hypernode-multi-tags/"
MAX_SYMLINK_DEPTH = 16
EVENT_BUFFER = 1024


@dataclass(eq=False)
class MultiStat(Stat):
    """A Stat from the merged view: ``drive`` is the drive it came from; ``seq`` is where that drive's
    trie stores the entry (None when not known, e.g. an entry inside a mounted drive)."""

    drive: Hyperdrive | None = None
    seq: int | None = None


@dataclass
class DirEntry:
    """One entry of ``readdir(path, stats=True)``."""

    name: str
    stat: MultiStat

    @property
    def drive(self) -> Hyperdrive | None:
        return self.stat.drive


@dataclass
class RunResult:
    """What :meth:`MultiDrive.run_all` got from one drive: its value, or the error it raised."""

    drive: Hyperdrive
    error: BaseException | None
    value: Any


@dataclass
class MultiEvent:
    """``drive-add``, ``drive-remove``, ``update`` (a drive's version moved), ``peer-add`` and
    ``peer-remove`` (peers of the primary drive)."""

    type: str
    drive: Hyperdrive | None = None
    peer: Any = None


@dataclass
class WatchEvent:
    """A change under a watched path: the drive it happened in and that drive's new version."""

    drive: Hyperdrive
    version: int


@dataclass(eq=False)
class MultiFileDescriptor:
    """A descriptor opened through a multi-drive: it remembers the drive that holds its file."""

    fd: int
    drive: Hyperdrive
    path: str


class Subscription:
    """The events of a multi-drive (see :meth:`MultiDrive.subscribe`); ``dropped`` counts events lost
    because the subscriber fell more than :data:`EVENT_BUFFER` events behind."""

    def __init__(self, receive: trio.MemoryReceiveChannel[MultiEvent]) -> None:
        self._receive = receive
        self.dropped = 0

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> MultiEvent:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class MultiDrive:
    """Several hyperdrives as one. ``MultiDrive(primary)``; then ``await multi.add_drive(drive)``.

    Use as ``async with``: leaving closes every drive (as :meth:`close` does).
    """

    def __init__(self, primary: Hyperdrive, *, _read_only: bool = False) -> None:
        if primary is None:
            raise TypeError("a MultiDrive needs a primary drive")
        self.primary = primary
        self._index = MergedIndex()
        self._views: dict[bytes, DriveView] = {}
        self._compare: Callable[[MultiStat | None, MultiStat | None], int] | None = None
        self._read_only = _read_only
        self._subscribers: list[tuple[trio.MemorySendChannel[MultiEvent], Subscription]] = []
        self._watchers: list[_Watcher] = []
        self._fds: set[MultiFileDescriptor] = set()
        self._drives_changed = trio.Event()
        self.closed = False
        self._add_view(primary)

    # -- properties --------------------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        return self.primary.key

    @property
    def discovery_key(self) -> bytes:
        return self.primary.discovery_key

    @property
    def peers(self) -> list[FeedPeer]:
        """The peers replicating the primary drive."""
        return self.primary.peers

    @property
    def drives(self) -> list[Hyperdrive]:
        return [v.drive for v in self._index.views]

    @property
    def writer(self) -> Hyperdrive | None:
        """The first writable drive that was added (None in a checkout)."""
        if self._read_only:
            return None
        for v in self._index.views:
            if v.drive.writable:
                return v.drive
        return None

    @property
    def writable(self) -> bool:
        return self.writer is not None

    @property
    def version(self) -> VersionVector:
        """Every drive's version."""
        return VersionVector({v.key: v.drive.version for v in self._index.views})

    def __repr__(self) -> str:
        return f"<MultiDrive {self.key.hex()[:16]} drives={len(self._index.views)} writable={self.writable}>"

    # -- drives ------------------------------------------------------------------------------------

    def _add_view(self, drive: Hyperdrive) -> DriveView | None:
        if drive.key in self._views:
            return None
        view = self._index.add(drive)
        self._views[drive.key] = view
        return view

    async def add_drive(self, drive: Hyperdrive) -> None:
        """Add a drive; it is part of every call made after this returns (its entries are indexed)."""
        self._check_open()
        view = self._add_view(drive)
        if view is None:
            return
        try:
            await self._index.refresh_view(view)
        except BaseException:
            self._index.remove(view)
            del self._views[drive.key]
            raise
        for w in self._watchers:
            w.start(drive)
        self._drives_changed.set()
        self._emit(MultiEvent("drive-add", drive))

    def remove_drive(self, key: bytes | str) -> Hyperdrive | None:
        """Take a drive out of the view (it stays open); returns it, or None if it was not there."""
        key = _key_bytes(key)
        view = self._views.get(key)
        if view is None:
            return None
        if view.drive is self.primary:
            raise InvalidArgument("the primary drive cannot be removed from its MultiDrive")
        del self._views[key]
        self._index.remove(view)
        for w in self._watchers:
            w.stop(view.drive)
        self._drives_changed.set()
        self._emit(MultiEvent("drive-remove", view.drive))
        return view.drive

    def has_drive(self, key: bytes | str) -> bool:
        return _key_bytes(key) in self._views

    async def run_all(self, method: str, *args: Any, **kwargs: Any) -> list[RunResult]:
        """Call ``drive.<method>(*args, **kwargs)`` on every drive at once; one result per drive, in
        drive order, holding the value or the exception raised."""
        drives = self.drives
        results: list[RunResult | None] = [None] * len(drives)

        async def run(i: int, drive: Hyperdrive) -> None:
            try:
                value = getattr(drive, method)(*args, **kwargs)
                if hasattr(value, "__await__"):
                    value = await value
                results[i] = RunResult(drive, None, value)
            except Exception as e:  # noqa: BLE001 - handed to the caller, as JS runAll does
                results[i] = RunResult(drive, e, None)

        async with trio.open_nursery() as nursery:
            for i, d in enumerate(drives):
                nursery.start_soon(run, i, d)
        return [r for r in results if r is not None]

    # -- events ------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscription]:
        """``async with multi.subscribe() as events: async for event in events`` — :class:`MultiEvent`s
        from the moment the block is entered until it is left."""
        send, receive = trio.open_memory_channel[MultiEvent](EVENT_BUFFER)
        sub = Subscription(receive)
        entry = (send, sub)
        self._subscribers.append(entry)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._follow_drives, send, sub)
                try:
                    yield sub
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            self._subscribers.remove(entry)
            send.close()

    def _emit(self, event: MultiEvent) -> None:
        for send, sub in self._subscribers:
            _send_or_count(send, sub, event)

    async def _follow_drives(self, send: trio.MemorySendChannel[MultiEvent], sub: Subscription) -> None:
        """Turn changes of the drives' metadata feeds into ``update`` and ``peer-*`` events."""
        lengths: dict[bytes, int] = {v.key: v.drive.metadata.length for v in self._index.views}
        peers = list(self.primary.peers)
        while True:
            async with trio.open_nursery() as nursery:  # wake on the first change of any feed

                async def wake(drive: Hyperdrive, scope: trio.CancelScope = nursery.cancel_scope) -> None:
                    await replicator_of(drive.metadata).wait_for_change()  # a block, or a peer
                    scope.cancel()

                async def drives_changed(scope: trio.CancelScope = nursery.cancel_scope) -> None:
                    await self._drives_changed.wait()
                    self._drives_changed = trio.Event()
                    scope.cancel()

                for v in self._index.views:
                    nursery.start_soon(wake, v.drive)
                nursery.start_soon(drives_changed)
            for v in self._index.views:
                n = v.drive.metadata.length
                if lengths.get(v.key, n) != n:
                    _send_or_count(send, sub, MultiEvent("update", v.drive))
                lengths[v.key] = n
            now = list(self.primary.peers)
            for p in now:
                if p not in peers:
                    _send_or_count(send, sub, MultiEvent("peer-add", self.primary, p))
            for p in peers:
                if p not in now:
                    _send_or_count(send, sub, MultiEvent("peer-remove", self.primary, p))
            peers = now

    # -- resolving ---------------------------------------------------------------------------------

    @property
    def compare_stats(self) -> Callable[[MultiStat | None, MultiStat | None], int]:
        """``compare_stats(stat1, stat2)``: negative if ``stat1`` is the newer, positive if ``stat2`` is,
        0 if they are equal. Assign another function to change how conflicts resolve."""
        return self._compare or default_compare_stats

    @compare_stats.setter
    def compare_stats(self, fn: Callable[[MultiStat | None, MultiStat | None], int] | None) -> None:
        self._compare = fn
        self._index.invalidate()

    async def _refresh(self) -> None:
        self._check_open()
        await self._index.refresh()

    def _hidden(self, key: str) -> bool:
        """Whether a tombstone hides ``key`` or a folder above it."""
        index = self._index
        if not index.tombs:
            return False
        while key:
            if index.hidden(key):
                return True
            key = parent_key(key)
        return False

    async def _winner(self, key: str, path: str, *, implicit: str = "drive") -> MultiStat | None:
        """The latest entry at ``key`` across drives (not following a final symlink), or None if no
        drive has it or a tombstone hides it. A folder that exists only because entries lie under it
        gets the Stat its first holding drive gives (``implicit="drive"``), a plain folder Stat
        (``implicit="plain"``, as readdir gives one) or None (``implicit="none"``)."""
        if self._hidden(key):
            return None
        index = self._index
        redirected = index.redirected(key, include_self=False)
        if not redirected:
            cached = index.winners.get(key)
            # (a folder without entries of its own is cached as its drive stats it, not plain)
            if cached is not None and (implicit == "drive" or key in index.paths):
                return cached
        candidates: list[MultiStat] = []
        for view, node in index.entries_at(key, redirected):
            candidates.append(_multi_stat(Stat.decode(node.value or b"", path), view.drive, node.seq))
        for view in sorted(redirected, key=lambda v: v.order):
            try:
                st = await view.drive.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            candidates.append(_multi_stat(st, view.drive, None))
        if not candidates:
            holders = index.folder_holders(key, redirected)
            if not holders:
                return None
            first = min(holders, key=lambda v: v.order)
            if implicit == "none":
                return None
            if implicit == "plain":
                return _multi_stat(Stat.directory(), first.drive, None)
            st = await first.drive.lstat(path)
            winner = _multi_stat(st, first.drive, None)
        elif len(candidates) == 1:
            winner = candidates[0]
        else:
            candidates.sort(key=lambda s: self._views[s.drive.key].order)  # type: ignore[union-attr]
            candidates.sort(key=functools.cmp_to_key(self.compare_stats))
            winner = candidates[0]
        if not redirected:
            index.winners[key] = winner
        return winner

    async def _resolve(self, path: str, *, follow: bool = True) -> tuple[MultiStat, str]:
        """The winning Stat of ``path`` and the path it was found at: symlinks in the merged view are
        followed on the way (and at the end too if ``follow``)."""
        path = paths.normalize(path)
        await self._refresh()
        path = await self._realpath(path, follow_last=follow)
        st = await self._winner(paths.trie_key(path), path)
        if st is None:
            if path == "/":
                return _multi_stat(Stat.directory(), self.primary, None), path
            raise FileNotFound(path)
        if follow and st.linkname:  # a link inside a mounted drive: that drive follows it
            assert st.drive is not None
            st = _multi_stat(await st.drive.stat(path), st.drive, None)
        return st, path

    async def _realpath(self, path: str, *, follow_last: bool) -> str:
        """``path`` with the symlinks of the merged view resolved (the last component's only if
        ``follow_last``): a link's target is looked up across every drive, not only in the link's."""
        if not self._index.symlinks:
            return path
        start = path
        for _ in range(MAX_SYMLINK_DEPTH):
            parts = [p for p in path.split("/") if p]
            # a path that is there as it is (a drive JS wrote may hold entries under a symlink) is not
            # redirected by the links above it: only its last component may still be followed
            first = len(parts) - 1 if self._there(paths.trie_key(path)) else 0
            for i in range(first, len(parts) - (0 if follow_last else 1)):
                prefix = "/" + "/".join(parts[:i + 1])
                st = await self._winner(paths.trie_key(prefix), prefix)
                if st is not None and st.linkname:
                    target = paths.resolve_link(prefix, st.linkname)
                    path = paths.join(target, *parts[i + 1:])
                    break
            else:
                return path
        raise SymlinkLoop(start)

    def _there(self, key: str) -> bool:
        """Does some drive hold an entry at ``key``, or entries under it?"""
        index = self._index
        return bool(key) and (key in index.paths or bool(index.folder_holders(key, set())))

    async def resolve_latest(self, path: str) -> Hyperdrive:
        """The drive holding the latest version of ``path`` (FileNotFound if none does)."""
        st, _ = await self._resolve(path, follow=False)
        assert st.drive is not None
        return st.drive

    # -- reading -----------------------------------------------------------------------------------

    async def stat(self, path: str) -> MultiStat:
        """The latest Stat of ``path`` across drives (symlinks followed); ``stat.drive`` names its drive."""
        st, _ = await self._resolve(path)
        return st.copy()

    async def lstat(self, path: str) -> MultiStat:
        st, _ = await self._resolve(path, follow=False)
        return st.copy()

    async def access(self, path: str) -> None:
        """Raises FileNotFound unless some drive has ``path`` (and no tombstone hides it)."""
        await self._resolve(path)

    async def exists(self, path: str) -> bool:
        try:
            await self._resolve(path)
        except FileNotFoundError:
            return False
        return True

    async def readlink(self, path: str) -> str:
        st, _ = await self._resolve(path, follow=False)
        if not st.linkname:
            raise InvalidArgument(f"not a symbolic link: {path}", path)
        return st.linkname

    async def read_file(self, path: str, encoding: str | None = None) -> Any:
        """The bytes of the latest version of ``path`` (``str`` with an ``encoding``)."""
        st, path = await self._resolve(path)
        if st.is_directory() and not st.is_file():  # (a JS copy of a folder is both: read as JS does)
            raise IsADirectory(path)
        assert st.drive is not None
        data = _stored_bytes(st, path)
        if data is None:
            return await st.drive.read_file(path, encoding)
        return data.decode(encoding) if encoding and encoding != "binary" else data

    async def create_read_stream(self, path: str, *, start: int = 0, end: int | None = None,
                                 length: int | None = None) -> AsyncIterator[bytes]:
        """The latest version of ``path``, chunk by chunk (``async for chunk in ...``)."""
        st, path = await self._resolve(path)
        assert st.drive is not None
        stream = st.drive.create_read_stream(path, start=start, end=end, length=length)
        try:
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()

    async def readdir(self, path: str = "/", *, stats: bool = False) -> list[Any]:
        """The names in a folder across every drive (without those tombstones hide), in the order a
        single drive lists them. ``stats=True``: :class:`DirEntry` items (name, the winning Stat, its
        drive). A symlink to a folder lists that folder's names, and, where a drive JS wrote holds
        entries under the link itself, those too (as hyperdrive's readdir)."""
        path = paths.normalize(path)
        await self._refresh()
        literal = path
        if self._index.symlinks:
            literal = await self._realpath(path, follow_last=False)
            path = await self._realpath(path, follow_last=True)
        key = paths.trie_key(path)
        if key and self._hidden(key):
            raise FileNotFound(path)
        folders = [path]
        if literal != path:  # a symlink: its target's names if it is a folder, and its own
            target = await self._winner(key, path)
            folders = [path, literal] if target is not None and target.is_directory() else [literal]
        if len(folders) == 1:
            cached = self._index.listings.get(key) if folders[0] == path and not self._index.special else None
            names = list(cached if cached is not None else await self._names(folders[0]))
        else:
            found: set[str] = set()
            for folder in folders:
                found.update(await self._names(folder))
            names = sorted(found, key=listing_order)
        if not names:
            st = await self._winner(key, path) if key else None
            if key and st is None:
                raise FileNotFound(path)
            if st is not None and not st.is_directory() and not st.linkname:
                raise NotADirectory(path)
        if not stats:
            return names
        out = []
        if len(folders) == 1:
            only = folders[0]
            prefix = only[1:] + "/" if only != "/" else ""
            for name in names:
                st = await self._winner(prefix + name, paths.join(only, name), implicit="plain")
                if st is not None:
                    out.append(DirEntry(name, st.copy()))
            return out
        for name in names:  # the entry under the link itself first (the path as written), then the
            # target's, then a plain folder Stat for a name that is a folder by entries under it
            for folder, implicit in [(f, m) for m in ("none", "plain") for f in reversed(folders)]:
                child = paths.join(folder, name)
                st = await self._winner(paths.trie_key(child), child, implicit=implicit)
                if st is not None:
                    out.append(DirEntry(name, st.copy()))
                    break
        return out

    async def _names(self, path: str) -> list[str]:
        """The names directly under ``path`` (no symlink followed) across drives, tombstones applied."""
        key = paths.trie_key(path)
        index = self._index
        if key and self._hidden(key):
            return []
        redirected = index.redirected(key, include_self=True)
        names = index.listings.get(key) if not redirected else None
        if names is None:
            found = {n for n, _ in index.names(key, redirected)}
            for view in sorted(redirected, key=lambda v: v.order):
                try:
                    found.update(await view.drive.readdir(path))
                except (FileNotFoundError, NotADirectoryError, SymlinkLoop):
                    pass
            prefix = key + "/" if key else ""
            names = sorted((n for n in found if not index.hidden(prefix + n)), key=listing_order)
            if not redirected:
                index.listings[key] = names
        return names

    # -- writing -----------------------------------------------------------------------------------

    def _need_writer(self, path: str) -> Hyperdrive:
        self._check_open()
        writer = self.writer
        if writer is None:
            raise PermissionDenied(f"no writable drive in this MultiDrive: cannot change {path}", path)
        return writer

    async def _prepare(self, path: str, *, directory: bool) -> tuple[Hyperdrive, str, str]:
        """Checks before writing a file (or folder) at ``path``: a folder there (a file there) in any
        drive is EISDIR (ENOTDIR), a file above it ENOTDIR. Creates in the writer every folder above it
        that the writer does not hold yet (as JS multi-hyperdrive's ensureDir does, so that folders of
        other drives become the writer's own). Returns the writer, the path and its key."""
        path = paths.normalize(path)
        writer = self._need_writer(path)
        if path == "/":
            raise (PathAlreadyExists if directory else IsADirectory)(path)
        await self._refresh()
        key = paths.trie_key(path)
        st = await self._winner(key, path, implicit="plain")
        if st is not None and not st.linkname:
            if directory and not st.is_directory():
                raise NotADirectory(path)
            if not directory and st.is_directory():
                raise IsADirectory(path)
        parents = []
        parent = paths.dirname(path)
        while parent != "/":
            parents.append(parent)
            parent = paths.dirname(parent)
        missing = []
        wview = self._views[writer.key]
        for parent in parents:  # nearest first
            pkey = paths.trie_key(parent)
            pst = await self._winner(pkey, parent, implicit="plain")
            if pst is not None and not pst.is_directory() and not pst.linkname:
                raise NotADirectory(parent)
            if pkey not in wview.entries and wview not in self._index.folder_holders(pkey, set()):
                missing.append(parent)
        for parent in reversed(missing):  # as JS multi-hyperdrive: the writer gets its own folders
            try:
                await writer.mkdir(parent)
            except PathAlreadyExists:
                pass
        return writer, path, key

    def _clock(self, key: str, writer: Hyperdrive) -> bytes:
        """The versions of the other drives holding ``key``, as the writer has seen them."""
        seen = {v.key: v.version for v, _ in self._index.entries_at(key, set()) if v.drive is not writer}
        return VersionVector(seen).encode()

    async def _lift_tombstones(self, key: str) -> None:
        """After writing ``key``: tombstones hiding it or a folder above it are overwritten."""
        while key:
            if self._index.hidden(key):
                await self.set_tombstone("/" + key, False)
            key = parent_key(key)

    async def write_file(self, path: str, data: bytes | str, encoding: str = "utf-8",
                         **opts: Any) -> MultiStat:
        """Write a whole file to the writer (lifting tombstones on it); returns its Stat."""
        writer, path, key = await self._prepare(path, directory=False)
        metadata = dict(opts.pop("metadata", None) or {})
        metadata[CLOCK_KEY] = self._clock(key, writer)
        st = await writer.write_file(path, data, encoding, metadata=metadata, **opts)
        await self._lift_tombstones(key)
        return _multi_stat(st, writer, None)

    @contextlib.asynccontextmanager
    async def create_write_stream(self, path: str, **opts: Any) -> AsyncIterator[Any]:
        """``async with multi.create_write_stream(path) as w: await w.write(chunk)`` into the writer."""
        writer, path, key = await self._prepare(path, directory=False)
        metadata = dict(opts.pop("metadata", None) or {})
        metadata[CLOCK_KEY] = self._clock(key, writer)
        async with writer.create_write_stream(path, metadata=metadata, **opts) as stream:
            yield stream
        await self._lift_tombstones(key)

    async def mkdir(self, path: str, **opts: Any) -> MultiStat:
        """A folder in the writer (and the folders above it that only other drives have)."""
        writer, path, key = await self._prepare(path, directory=True)
        st = await self._winner(key, path, implicit="plain")
        if st is not None:
            raise PathAlreadyExists(path)
        result = await writer.mkdir(path, **opts)
        await self._lift_tombstones(key)
        return _multi_stat(result, writer, None)

    async def symlink(self, target: str, link_path: str) -> MultiStat:
        writer, path, key = await self._prepare(link_path, directory=False)
        if await self._winner(key, path) is not None:
            raise PathAlreadyExists(path)
        st = await writer.symlink(target, path)
        await self._lift_tombstones(key)
        return _multi_stat(st, writer, None)

    async def mount(self, path: str, key: bytes | str, **opts: Any) -> MultiStat:
        """Mount a drive at ``path`` in the writer."""
        writer, path, k = await self._prepare(path, directory=True)
        if await self._winner(k, path) is not None:
            raise PathAlreadyExists(path)
        st = await writer.mount(path, key, **opts)
        await self._lift_tombstones(k)
        return _multi_stat(st, writer, None)

    async def unmount(self, path: str) -> None:
        """Remove a mount of the writer (other drives' mounts are theirs)."""
        await self._need_writer(path).unmount(path)

    async def truncate(self, path: str, size: int = 0) -> MultiStat:
        """Cut or zero-extend a file; a file that only another drive has is first copied to the writer."""
        if size < 0:
            raise InvalidArgument("a size is not negative", path)
        writer = self._need_writer(path)
        try:
            st, path = await self._resolve(path)
        except FileNotFoundError:
            writer, path, key = await self._prepare(path, directory=False)
            result = await writer.truncate(path, size)
            await self._lift_tombstones(key)
            return _multi_stat(result, writer, None)
        if st.is_directory():
            raise IsADirectory(path)
        if st.drive is writer:
            return _multi_stat(await writer.truncate(path, size), writer, None)
        return await self._copy_file(st, path, size)

    async def _copy_file(self, st: MultiStat, path: str, size: int | None = None, *,
                         source: str | None = None) -> MultiStat:
        """Copy the file ``st`` describes (at ``source``, default ``path``) into the writer at ``path``
        (cut or zero-extended to ``size``)."""
        assert st.drive is not None
        size = st.size if size is None else size
        metadata = {k: v for k, v in st.metadata.items() if k != CLOCK_KEY}
        async with self.create_write_stream(path, metadata=metadata, mode=st.mode & 0o7777,
                                            uid=st.uid, gid=st.gid) as w:
            keep = min(size, st.size)
            if keep:
                async for chunk in st.drive.create_read_stream(source or path, length=keep):
                    await w.write(chunk)
            pad = size - keep
            while pad > 0:
                n = min(pad, 1 << 20)
                await w.write(bytes(n))
                pad -= n
        return await self.lstat(path)

    async def _own_entry(self, path: str) -> str:
        """Make sure the writer holds the winning entry of ``path`` (copying it if another drive
        does); returns the normalized path."""
        writer = self._need_writer(path)
        st, path = await self._resolve(path, follow=False)
        if st.drive is writer:
            return path
        if st.linkname:
            await writer.symlink(st.linkname, path)
        elif st.is_directory():
            await self._prepare(path, directory=True)
            with contextlib.suppress(PathAlreadyExists):
                await writer.mkdir(path)
        else:
            await self._copy_file(st, path)
        return path

    async def set_attributes(self, path: str, *, mode: int | None = None, uid: int | None = None,
                             gid: int | None = None, mtime: int | None = None) -> MultiStat:
        """chmod, chown, utimes in the merged view (see :meth:`Hyperdrive.set_attributes`): an entry
        another drive holds is first copied to the writer, which then holds the latest version."""
        path = await self._own_entry(path)
        writer = self.writer
        assert writer is not None
        st = await writer.set_attributes(path, mode=mode, uid=uid, gid=gid, mtime=mtime)
        return _multi_stat(st, writer, None)

    async def rename(self, src: str, dst: str) -> MultiStat:
        """Move ``src`` to ``dst`` in the merged view, with POSIX's rules (see
        :meth:`Hyperdrive.rename`). A file the writer holds moves within the writer (its blocks are not
        copied); a file of another drive is copied to the writer; a symlink is made anew; a folder is
        made in the writer and everything under it moved, one entry at a time (not in one step, unlike
        a single drive's rename). ``src`` is then deleted from the view as :meth:`unlink` does (a
        tombstone hides it where other drives hold it)."""
        writer = self._need_writer(src)
        st, src = await self._resolve(src, follow=False)
        dst = paths.normalize(dst)
        if src == "/" or dst == "/":
            raise InvalidArgument("the root cannot be renamed or replaced", src if src == "/" else dst)
        if src == dst:
            return st.copy()
        folder = st.is_directory() and not st.linkname
        if folder and paths.is_inside(src, dst):
            raise InvalidArgument(f"cannot move a folder into itself: {src} -> {dst}", dst)
        try:
            there: MultiStat | None = (await self._resolve(dst, follow=False))[0]
        except FileNotFoundError:
            there = None
        if there is not None:
            there_folder = there.is_directory() and not there.linkname
            if folder and not there_folder:
                raise NotADirectory(dst)
            if not folder and there_folder:
                raise IsADirectory(dst)
            if there_folder:
                await self.rmdir(dst)  # ENOTEMPTY unless empty in every drive
            else:
                await self.unlink(dst)
        if folder:
            await self.mkdir(dst, mode=st.mode & 0o7777)
            for name in await self.readdir(src):
                await self.rename(paths.join(src, name), paths.join(dst, name))
            await self.rmdir(src)
            return await self.lstat(dst)
        if st.linkname:
            await self.symlink(st.linkname, dst)
        elif st.drive is writer:
            _, dst, key = await self._prepare(dst, directory=False)
            await writer.rename(src, dst)
            await writer.set_metadata(dst, CLOCK_KEY, self._clock(key, writer))
            await self._lift_tombstones(key)
        else:
            await self._copy_file(st, dst, source=src)
        with contextlib.suppress(FileNotFoundError):  # (gone already if only the writer held it)
            await self.unlink(src)
        return await self.lstat(dst)

    async def set_metadata(self, path: str, key: str, value: bytes | str) -> MultiStat:
        path = await self._own_entry(path)
        writer = self.writer
        assert writer is not None
        return _multi_stat(await writer.set_metadata(path, key, value), writer, None)

    async def remove_metadata(self, path: str, key: str) -> MultiStat:
        path = await self._own_entry(path)
        writer = self.writer
        assert writer is not None
        return _multi_stat(await writer.remove_metadata(path, key), writer, None)

    # -- deleting ----------------------------------------------------------------------------------

    async def exists_tombstone(self, path: str) -> Hyperdrive | None:
        """The drive whose active tombstone hides ``path`` itself, or None."""
        await self._refresh()
        t = self._index.tombstone(paths.trie_key(paths.normalize(path)))
        return t[0].drive if t is not None and t[1].active else None

    async def set_tombstone(self, path: str, active: bool) -> None:
        """Write a tombstone for ``path`` into the writer: ``active`` hides the path in every drive."""
        writer = self._need_writer(path)
        key = paths.trie_key(paths.normalize(path))
        current = self._index.tombstone(key)
        timestamp = now_ms()
        if current is not None and current[1].timestamp >= timestamp:
            timestamp = current[1].timestamp + 1  # newer than the one it replaces, whatever the clocks
        await writer.trie.put(tombstones.trie_key(key), Tombstone(active, timestamp).encode(), hidden=True)

    async def unlink(self, path: str) -> None:
        """Delete a file from the merged view, whichever drives hold it: a tombstone in the writer
        hides it, and the writer's own copy is removed."""
        writer = self._need_writer(path)
        st, path = await self._resolve(path, follow=False)
        if st.is_directory() and not st.linkname:
            raise IsADirectory(path)
        await self.set_tombstone(path, True)
        key = paths.trie_key(path)
        if key in self._views[writer.key].entries:
            with contextlib.suppress(FileNotFoundError):
                await writer.unlink(path)

    async def rmdir(self, path: str) -> None:
        """Delete an empty folder (empty across every drive) from the merged view."""
        writer = self._need_writer(path)
        st, path = await self._resolve(path, follow=False)
        if not st.is_directory() or st.linkname:
            raise NotADirectory(path)
        if path == "/":
            raise InvalidArgument("the root cannot be removed", path)
        if await self.readdir(path):
            raise DirectoryNotEmpty(path)
        await self.set_tombstone(path, True)
        key = paths.trie_key(path)
        if key in self._views[writer.key].entries:
            with contextlib.suppress(FileNotFoundError, DirectoryNotEmpty):
                await writer.rmdir(path)

    # -- file descriptors --------------------------------------------------------------------------

    async def open(self, path: str, flags: str | int = "r") -> MultiFileDescriptor:
        """A descriptor on the writer (flags that write) or on the drive with the latest version."""
        from hypernode.drive.fd import parse_flags

        f = parse_flags(flags)
        if f & (os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC):
            writer, path, key = await self._prepare(path, directory=False)
            fd = await writer.open(path, flags)
            await self._lift_tombstones(key)
            desc = MultiFileDescriptor(fd, writer, path)
        else:
            st, path = await self._resolve(path)
            assert st.drive is not None
            desc = MultiFileDescriptor(await st.drive.open(path, flags), st.drive, path)
        self._fds.add(desc)
        return desc

    async def read(self, fd: MultiFileDescriptor, length: int, position: int | None = None) -> bytes:
        return await fd.drive.read(fd.fd, length, position)

    async def write(self, fd: MultiFileDescriptor, data: bytes | str, position: int | None = None) -> int:
        return await fd.drive.write(fd.fd, data, position)

    async def ftruncate(self, fd: MultiFileDescriptor, size: int = 0) -> None:
        await fd.drive.ftruncate(fd.fd, size)

    async def close(self, fd: MultiFileDescriptor | None = None) -> None:
        """``close(fd)`` closes a descriptor; ``close()`` closes every drive of the view."""
        if fd is not None:
            self._fds.discard(fd)
            await fd.drive.close(fd.fd)
            return
        if self.closed:
            return
        for desc in list(self._fds):
            with contextlib.suppress(HypernodeError, OSError):
                await desc.drive.close(desc.fd)
        self._fds.clear()
        self.closed = True
        self._index.close()
        for send, _ in list(self._subscribers):
            send.close()
        for v in list(self._index.views):
            await v.drive.close()

    async def __aenter__(self) -> MultiDrive:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await run_cleanup(self.close, exc)  # an exception of the body comes out unchanged

    def _check_open(self) -> None:
        if self.closed:
            raise HypernodeError("the MultiDrive is closed")

    # -- versions, checkouts, tags -----------------------------------------------------------------

    def checkout(self, version: VersionVector | dict[Any, int]) -> MultiDrive:
        """A read-only MultiDrive of every drive at its version in ``version`` (drives the vector does
        not name are left out; the primary must be named)."""
        vector = version if isinstance(version, VersionVector) else VersionVector(version)
        if self.primary.key not in vector:
            raise InvalidArgument("the version does not name the primary drive")
        multi = MultiDrive(self.primary.checkout(vector[self.primary.key]), _read_only=True)
        multi._compare = self._compare
        for v in self._index.views:
            if v.drive is not self.primary and v.key in vector:
                multi._add_view(v.drive.checkout(vector[v.key]))
        return multi

    async def create_tag(self, name: str, version: VersionVector | None = None) -> None:
        """Name a version of the whole view (default: the current one), stored in the writer."""
        writer = self._need_writer(name)
        vector = self.version if version is None else version
        await writer.trie.put(TAGS_PREFIX + name, vector.encode(), hidden=True)

    async def get_tagged_version(self, name: str) -> VersionVector | None:
        """A tag's version: the writer's tag of that name, else the first drive's that has one."""
        ordered = sorted(self._index.views, key=lambda v: (v.drive is not self.writer, v.order))
        for v in ordered:
            node = await v.drive.trie.get(TAGS_PREFIX + name, hidden=True)
            if node is not None:
                return _decode_tag(node.value, name)
        return None

    async def get_all_tags(self) -> dict[str, VersionVector]:
        out: dict[str, VersionVector] = {}
        ordered = sorted(self._index.views, key=lambda v: (v.drive is not self.writer, v.order))
        for v in ordered:
            async for node in v.drive.trie.iterator(TAGS_PREFIX, hidden=True):
                out.setdefault(node.key[len(TAGS_PREFIX):], _decode_tag(node.value, node.key))
        return out

    async def delete_tag(self, name: str) -> None:
        await self._need_writer(name).trie.delete(TAGS_PREFIX + name, hidden=True)

    # -- beyond the original: watch, mounts, download, replicate, extensions -----------------------

    @contextlib.asynccontextmanager
    async def watch(self, path: str = "/") -> AsyncIterator[AsyncIterator[WatchEvent]]:
        """``async with multi.watch(path) as changes: async for event in changes`` — a
        :class:`WatchEvent` for each change under ``path`` in any drive (drives added later too)."""
        path = paths.normalize(path)
        send, receive = trio.open_memory_channel[WatchEvent](math.inf)
        async with trio.open_nursery() as nursery:
            watcher = _Watcher(nursery, path, send)
            self._watchers.append(watcher)
            try:
                for d in self.drives:
                    watcher.start(d)
                yield _channel_iter(receive)
            finally:
                self._watchers.remove(watcher)
                nursery.cancel_scope.cancel()

    async def get_all_mounts(self) -> dict[str, Hyperdrive]:
        """Every mount of every drive by path (``/`` is the primary); where two drives mount different
        drives at one path, the latest entry wins."""
        out: dict[str, Hyperdrive] = {"/": self.primary}
        await self._refresh()
        offers: dict[str, list[tuple[Hyperdrive, Hyperdrive]]] = {}
        for result in await self.run_all("get_all_mounts"):
            if result.error is not None:
                raise result.error
            for where, mounted in result.value.items():
                if where != "/":
                    offers.setdefault(where, []).append((result.drive, mounted))
        for where, found in offers.items():
            st = await self._winner(paths.trie_key(where), where)
            if st is None:
                continue  # hidden by a tombstone
            out[where] = next((m for d, m in found if d is st.drive), found[0][1])
        return out

    async def download(self, path: str = "/", *, timeout: float | None = None) -> None:
        """Fetch the content of the latest version of every file under ``path`` (and no other)."""
        with trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
            st, path = await self._resolve(path, follow=False)
            if not st.is_directory():
                assert st.drive is not None
                await st.drive.download(path)
                return
            for name in await self.readdir(path):
                await self.download(paths.join(path, name))

    async def replicate(self, transport: trio.abc.Stream, *, initiator: bool, sparse: bool = False,
                        **options: Any) -> Any:
        """Replicate every drive of the view over one connection (they must share one Corestore) until
        it ends: returns the session when it ends cleanly, raises why it ended otherwise (see
        :meth:`ReplicationServer.replicate <hypernode.replication.server.ReplicationServer.replicate>`).
        ``sparse=False``: the drives that are not writable are fetched whole."""
        stores = {id(d.store): d.store for d in self.drives}
        if len(stores) != 1:
            raise InvalidArgument("the drives of this MultiDrive live in different Corestores")
        (store,) = stores.values()
        async with open_replication_server(store, sparse=sparse) as server:
            return await server.replicate(transport, initiator=initiator, **options)

    def register_extension(self, name: str, encoding: str = "binary",
                           on_message: OnMessage | None = None) -> FeedExtension:
        """An extension message on the primary drive's replication channels (see
        :meth:`Hyperdrive.register_extension <hypernode.drive.Hyperdrive.register_extension>`)."""
        return self.primary.register_extension(name, encoding, on_message)


class _Watcher:
    """One :meth:`MultiDrive.watch`: a task per drive, each in its own cancel scope."""

    def __init__(self, nursery: trio.Nursery, path: str, send: trio.MemorySendChannel[WatchEvent]) -> None:
        self.nursery = nursery
        self.path = path
        self.send = send
        self.scopes: dict[int, trio.CancelScope] = {}

    def start(self, drive: Hyperdrive) -> None:
        scope = trio.CancelScope()
        self.scopes[id(drive)] = scope

        async def run() -> None:
            with scope:
                async with drive.watch(self.path) as changes:
                    async for version in changes:
                        self.send.send_nowait(WatchEvent(drive, version))

        self.nursery.start_soon(run)

    def stop(self, drive: Hyperdrive) -> None:
        scope = self.scopes.pop(id(drive), None)
        if scope is not None:
            scope.cancel()


async def _channel_iter(receive: trio.MemoryReceiveChannel[WatchEvent]) -> AsyncIterator[WatchEvent]:
    async for event in receive:
        yield event


def _send_or_count(send: trio.MemorySendChannel[MultiEvent], sub: Subscription, event: MultiEvent) -> None:
    try:
        send.send_nowait(event)
    except trio.WouldBlock:
        sub.dropped += 1
    except (trio.ClosedResourceError, trio.BrokenResourceError):
        pass


def _stored_bytes(st: MultiStat, path: str) -> bytes | None:
    """The bytes of a file whose winning entry the index holds (``seq`` known), read straight from its
    drive's content feed when every block is stored here: its trie need not be walked again for an
    entry already in hand. None when the drive must read it itself (an entry from a mounted drive, a
    mount, a file with a descriptor open for writing, a content feed not open yet or blocks not here,
    blocks holding fewer bytes than the size): the drive then waits, follows or reports the error."""
    drive = st.drive
    if st.seq is None or drive is None or st.mount is not None or st.linkname or drive.closed:
        return None
    content = drive.content  # set once the drive's header was read; None: the drive finds it
    if content is None or content.closed:
        return None
    if writing_size(content, paths.trie_key(path)) is not None:
        return None
    start, end = st.offset, st.offset + st.blocks
    if end > content.length or content.downloaded(start, end) != st.blocks:
        return None
    data = content.read_block_sync(start) if st.blocks == 1 else content.read_range_sync(start, end)
    if len(data) < st.size:
        return None
    return data if len(data) == st.size else data[:st.size]


def _multi_stat(st: Stat, drive: Hyperdrive | None, seq: int | None) -> MultiStat:
    return MultiStat(mode=st.mode, uid=st.uid, gid=st.gid, size=st.size, blocks=st.blocks, offset=st.offset,
                     byte_offset=st.byte_offset, mtime=st.mtime, ctime=st.ctime, linkname=st.linkname,
                     mount=st.mount, metadata=dict(st.metadata), drive=drive, seq=seq)


def default_compare_stats(stat1: MultiStat | None, stat2: MultiStat | None) -> int:
    """The default conflict rule: an entry whose clock shows it has seen the other is newer; for
    concurrent entries the newest ctime, then the newest mtime, then the greater drive key wins."""
    if stat1 is None or stat2 is None:
        return 0 if stat1 is stat2 else (-1 if stat1 is not None else 1)
    k1 = stat1.drive.key if stat1.drive is not None else b""
    k2 = stat2.drive.key if stat2.drive is not None else b""
    order = causal_order(k1, stat1.seq, read_clock(stat1.metadata), k2, stat2.seq, read_clock(stat2.metadata))
    if order:
        return order
    if stat1.ctime != stat2.ctime:
        return -1 if stat1.ctime > stat2.ctime else 1
    if stat1.mtime != stat2.mtime:
        return -1 if stat1.mtime > stat2.mtime else 1
    if k1 != k2:
        return -1 if k1 > k2 else 1
    return 0


def _decode_tag(value: bytes | None, name: str) -> VersionVector:
    try:
        return VersionVector.decode(value or b"")
    except DecodeError:
        raise InvalidArgument(f"tag {name} does not hold a version vector") from None


def _key_bytes(key: bytes | str) -> bytes:
    if isinstance(key, str):
        try:
            return bytes.fromhex(key)
        except ValueError:
            raise InvalidArgument(f"not a drive key: {key!r}") from None
    return bytes(key)
