"""``Hyperdrive``: a filesystem on two feeds, read and written as JS hyperdrive 10 does.

The *metadata* feed holds a hypertrie (:mod:`hypernode.trie`) whose header names the *content* feed
and whose entries map paths to :class:`~hypernode.drive.stat.Stat` values; a file's bytes are the
blocks ``[offset, offset + blocks)`` of the content feed, written in blocks of at most 512 KiB
(:mod:`hypernode.drive.content` keeps each file's blocks contiguous without a lock held between calls).

Mounts follow mountable-hypertrie 2.8: a mount point is an entry flagged ``MOUNT`` holding a directory
Stat with a ``mount`` field, next to a hidden record ``mounts/<path>`` (the ``Mount`` message of
``protocol/mountable-hypertrie.proto``: key, local path, version). A path under a mount point resolves
inside the mounted drive, which lives in the same :class:`~hypernode.corestore.Corestore` and so
replicates over the same connections. Tags are hidden keys ``hyperdrive-tags/<name>`` holding a varint
version. File descriptors are in :mod:`hypernode.drive.fd`.

Every method is async and raises the :mod:`hypernode.drive.errors` OSErrors (ENOENT, EEXIST, ENOTDIR,
EISDIR, ENOTEMPTY, EPERM for writes we cannot make, EINVAL for bad paths, ELOOP for symlink loops, EIO
for entries that do not decode or point past their content feed). A bad entry fails the call that met
it, nothing else.

Reading drives JS wrote
-----------------------
JS hyperdrive 10 checks nothing above the path it writes: ``writeFile('/a')`` succeeds while ``/a/x``
exists, ``writeFile('/a/x')`` while ``/a`` is a file or a symlink, and ``unlink('/a')`` leaves ``/a/x``
in place. So a path can be a file (or a symlink) *and* a folder, and real JS drives hold such trees.
Reads answer as JS does, so that every entry JS can reach is reachable here, with the same answers:

- ``lstat(p)``: the entry at ``p`` if there is one (a file stays a file even with entries under it);
  else, if entries lie under ``p``, a folder Stat made from the first of them (its times, sizes and
  metadata, as JS does; JS also keeps that entry's ``linkname`` and ``mount``, so that its ``stat`` of
  such a folder follows a link found *below* it: we drop both, so a folder is never taken for a link or
  a mount); else ENOENT. ``stat(p)`` is ``lstat`` with symlinks followed (at the last component only,
  as JS: a symlink in the middle of a path is not followed).
- ``readdir(p)`` lists every name directly under ``p``: the entries under it, whatever ``p`` itself
  is (a file with entries under it lists them); if ``p`` is a symlink to a folder, that folder's names
  too (first, as JS). Each name once. ``stats=True`` gives each name's entry, or a plain folder Stat
  for a name that is a folder only by having entries under it. ``recursive=True`` lists every entry
  below (entries, not folders without an entry of their own), mounts entered; ``follow_links=True``
  also enters symlinks to folders met on the way, listing the target's entries under the link's path,
  as JS's recursive readdir does (then, as JS, a link whose target does not exist is left out; unlike
  JS, a link is not entered when that would list a folder inside itself, where JS loops forever, and
  links met inside a link's target are listed under the link's path where JS uses their own).
  Where JS answers ``[]`` we raise: ENOENT for a path with no entry and nothing under it, ENOTDIR for
  a file (or a link to one) with nothing under it; the names are the same (none).
- ``read_file(p)``: the file at ``p`` (symlinks followed), even with entries under it. For a folder we
  raise EISDIR where JS gives ENOENT (a folder without entry) or empty bytes (a folder entry).
- ``exists(p)``: ``stat`` succeeds (a symlink loop is False; JS spins forever on one).

Python's own writes stay POSIX-strict: a file cannot be written where a folder is (EISDIR) or under a
file or symlink (ENOTDIR, checked for every folder above the path), a folder not where an entry is
and a symlink not where anything is (EEXIST; ``mkdir`` of a folder that exists only by entries under
it gives it an entry), and ``rmdir`` of a file is ENOTDIR.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, overload

import trio

from hypernode.drive import paths
from hypernode.drive.content import (
    WRITE_BLOCK_SIZE,
    FileWrite,
    Span,
    content_log,
    cut,
    file_stat,
    writing_size,
)
from hypernode.drive.errors import (
    BadFileDescriptor,
    ContentNotAvailable,
    CorruptEntry,
    CrossDevice,
    DirectoryNotEmpty,
    FileNotFound,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    PathAlreadyExists,
    PermissionDenied,
    SymlinkLoop,
)
from hypernode.drive.fd import FileDescriptor
from hypernode.drive.stat import IFREG, Mount, Stat, now_ms
from hypernode.errors import HypernodeError
from hypernode.feed import Feed
from hypernode.messages import mountable_hypertrie as _mount_schema
from hypernode.replication import FeedExtension, FeedPeer, Want, replicator_of
from hypernode.replication.extensions import OnMessage
from hypernode.replication.server import sessions_of
from hypernode.trie import CorruptTrieError, Hypertrie, TrieNode
from hypernode.varint import DecodeError, decode_varint, encode_varint

if TYPE_CHECKING:
    from hypernode.corestore import Corestore

__all__ = ["Hyperdrive", "ReadStream", "WriteStream", "DriveChange", "FileStats", "MountInfo",
           "WRITE_BLOCK_SIZE"]

MOUNT_FLAG = 1  # user flag of mount entries and their hidden records (mountable-hypertrie)
MOUNT_PREFIX = "mounts"
TAGS_PREFIX = "hyperdrive-tags/"
SUBTYPE = "hyperdrive"
MAX_SYMLINK_DEPTH = 16
READ_AHEAD_BLOCKS = 64  # blocks a read stream asks peers for ahead of where it reads
DOWNLOAD_WINDOW_BLOCKS = 16384  # blocks download() asks for at once (8 GiB of full blocks)


@dataclass(frozen=True)
class MountInfo:
    """A mount record (mountable-hypertrie's ``Mount`` message): what :meth:`Hyperdrive.diff` gives
    as the value of a ``mount`` or ``unmount`` change, as JS's ``createDiffStream`` does."""

    key: bytes
    local_path: str
    version: int | None = None
    remote_path: str | None = None
    hash: bytes | None = None


@dataclass(frozen=True)
class DriveChange:
    """One change between two versions of a drive (an item of JS's ``createDiffStream``).

    ``type`` is ``put``, ``del``, ``mount`` or ``unmount``; ``name`` the trie key (no leading
    ``/``, as JS gives it); ``seq`` where the entry is in this version (None for ``del`` and, as in JS,
    for mounts); ``previous_seq`` where it was in the other version (None if it was not there or was a
    mount); ``value`` the new Stat (``put``) or the mount record (``mount``), None for removals."""

    type: str
    name: str
    seq: int | None
    previous_seq: int | None
    value: Stat | MountInfo | None

    @property
    def path(self) -> str:
        return "/" + self.name


@dataclass(frozen=True)
class FileStats:
    """A file's blocks, bytes and blocks stored here (an item of JS's ``stats``)."""

    blocks: int
    size: int
    downloaded_blocks: int


class _OpenDrive(Protocol):
    def __call__(self, store: Corestore, key: bytes | str | None = None, *,
                 name: bytes | str | None = None) -> Coroutine[Any, Any, Hyperdrive]: ...


class _OpenFile(Protocol):
    def __call__(self, path: str, flags: str | int = "r") -> Coroutine[Any, Any, int]: ...


class _Open:
    """``Hyperdrive.open(store, key)`` opens a drive; ``drive.open(path, flags)`` a file descriptor
    (hyperdrive calls both ``open``). Typed by the overloads of ``__get__``: on the class it is
    :meth:`Hyperdrive.open_drive`, on a drive :meth:`Hyperdrive.open_file`."""

    @overload
    def __get__(self, obj: None, owner: type[Hyperdrive]) -> _OpenDrive: ...

    @overload
    def __get__(self, obj: Hyperdrive, owner: type[Hyperdrive] | None = None) -> _OpenFile: ...

    def __get__(self, obj: Hyperdrive | None, owner: type[Hyperdrive] | None = None
                ) -> _OpenDrive | _OpenFile:
        if obj is None:
            assert owner is not None
            return owner.open_drive
        return obj.open_file


class Hyperdrive:
    """A hyperdrive 10. Open with :meth:`Hyperdrive.open`; use as ``async with``.

    ``Hyperdrive.open(store, key=None)`` opens a drive (also :meth:`open_drive`); on a drive,
    ``drive.open(path, flags)`` opens a file descriptor (also :meth:`open_file`), as in hyperdrive,
    where both are called ``open``.
    """

    open = _Open()

    def __init__(self, store: Corestore, metadata: Feed, trie: Hypertrie, *, content: Feed | None = None,
                 checkout_of: Hyperdrive | None = None) -> None:
        self.store = store
        self.metadata = metadata
        self.trie = trie
        self._content = content
        self._checkout_of = checkout_of
        self._mounts: dict[tuple[bytes, int | None], Hyperdrive] = {}
        self._fds: dict[int, FileDescriptor] = {}
        self._next_fd = 20
        self.closed = False

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    async def open_drive(cls, store: Corestore, key: bytes | str | None = None, *,
                         name: bytes | str | None = None) -> Hyperdrive:
        """A new writable drive (``key=None``; ``name`` picks its key pair, random by default), or the
        drive of ``key`` (hex or bytes): writable if this store made it, else a replica filled by
        replication. A replica's content feed is found from its first metadata block, when it arrives.
        """
        if isinstance(key, str):
            try:
                key = bytes.fromhex(key)
            except ValueError:
                raise InvalidArgument(f"not a drive key: {key!r}") from None
        if key is not None and len(key) != 32:
            raise InvalidArgument("a drive key is 32 bytes")
        try:
            metadata = await store.get(key) if key is not None else await store.get(name=name)
            content = None
            if metadata.writable and metadata.length == 0:
                content = await store.get(name=metadata.key.hex() + "-content")
                trie = await Hypertrie.open(metadata, metadata=content.key, subtype=SUBTYPE)
            else:
                trie = await Hypertrie.open(metadata)
            drive = cls(store, metadata, trie, content=content)
            if content is None and metadata.has(0):
                await drive.content_feed()
        except CorruptTrieError as e:
            raise _damaged(e, (None, None)) from e
        return drive

    async def content_feed(self, *, timeout: float | None = None) -> Feed:
        """The content feed, named by the header block (waits for it on a fresh replica)."""
        if self._content is None:
            with trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
                header = await self.trie.header()
            if header.type != "hypertrie" or header.metadata is None or len(header.metadata) != 32:
                raise CorruptEntry(f"the header of drive {self.key.hex()} names no content feed")
            if self._content is None:
                self._content = await self.store.get(header.metadata)
        return self._content

    # -- properties --------------------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        return self.metadata.key

    @property
    def discovery_key(self) -> bytes:
        return self.metadata.discovery_key

    @property
    def version(self) -> int:
        """The trie's version: the metadata feed's length (or the checkout's)."""
        return self.trie.version

    @property
    def writable(self) -> bool:
        return self.metadata.writable and self._checkout_of is None

    @property
    def is_checkout(self) -> bool:
        """Is this a read-only view of an older version (:meth:`checkout`)?"""
        return self._checkout_of is not None

    @property
    def content(self) -> Feed | None:
        """The content feed if it is known yet (see :meth:`content_feed`, which waits for it)."""
        return self._content

    @property
    def peers(self) -> list[FeedPeer]:
        """The peers replicating the metadata feed (one per connection)."""
        return replicator_of(self.metadata).peers

    def register_extension(self, name: str, encoding: str = "binary",
                           on_message: OnMessage | None = None) -> FeedExtension:
        """An extension message on the metadata feed's channels (as hyperdrive's registerExtension):
        ``send(message, peer)``, ``broadcast(message)``, and the messages received as ``async for
        message, peer in extension`` or, given, ``on_message(message, peer)`` for each."""
        return replicator_of(self.metadata).register_extension(name, encoding, on_message)

    def __repr__(self) -> str:
        return f"<Hyperdrive {self.key.hex()[:16]} version={self.version} writable={self.writable}>"

    async def update(self, min_version: int | None = None, *, timeout: float | None = None) -> int:
        """Wait until a peer brings a newer version (or at least ``min_version``); returns the version."""
        await replicator_of(self.metadata).update(min_version, timeout=timeout)
        return self.version

    def checkout(self, version: int) -> Hyperdrive:
        """A read-only view of the drive as it was at ``version``."""
        return Hyperdrive(self.store, self.metadata, self.trie.checkout(version), content=self._content,
                          checkout_of=self)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def close(self, fd: int | None = None) -> None:
        """``close(fd)`` closes a file descriptor; ``close()`` the drive: descriptors still open are
        dropped (what they wrote is given up: a file changes when its descriptor is closed), and its
        feeds stay with the store (which closes them)."""
        if fd is not None:
            await self.close_fd(fd)
            return
        if self.closed:
            return
        for desc in self._fds.values():
            desc.discard()
        self._fds.clear()
        self.closed = True

    async def __aenter__(self) -> Hyperdrive:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _check_writable(self, path: str) -> None:
        if self.closed:
            raise HypernodeError("the drive is closed")
        if not self.writable:
            raise PermissionDenied(f"drive {self.key.hex()[:16]} is not writable: cannot change {path}",
                                   path)

    async def destroy_storage(self) -> None:
        """Delete what this drive stores (its metadata and content feeds: their data, tree, bitfield
        and signatures files; the key files stay, as with JS's ``destroyStorage`` on a corestore) and
        close it. Reopened, the drive is empty."""
        if self._checkout_of is not None:
            raise InvalidArgument("a checkout stores nothing of its own: destroy the drive itself")
        content = self._content
        if content is None and self.metadata.has(0):
            content = await self.content_feed()
        await self.close()
        await self.metadata.destroy_storage()
        if content is not None:
            await content.destroy_storage()

    # -- resolving paths and mounts -----------------------------------------------------------------

    async def _mount_drive(self, key: bytes, version: int | None) -> Hyperdrive:
        drive = self._mounts.get((key, version))
        if drive is None:
            drive = await Hyperdrive.open_drive(self.store, key)
            if version:
                drive = drive.checkout(version)
            self._mounts[(key, version)] = drive
        return drive

    async def _mount_record(self, path: str) -> tuple[Hyperdrive, str] | None:
        """If ``path`` lies at or under a mount point of this drive: the mounted drive and the path
        inside it (the hidden ``mounts/`` record closest to the path, as mountable-hypertrie looks)."""
        key = paths.trie_key(path)
        node = await self.trie.get(f"{MOUNT_PREFIX}/{key}" if key else MOUNT_PREFIX, hidden=True,
                                   closest=True)
        if node is None or node.flags != MOUNT_FLAG or not node.key.startswith(MOUNT_PREFIX + "/"):
            return None
        mount_path = "/" + node.key[len(MOUNT_PREFIX) + 1:]
        if not paths.is_inside(mount_path, path):
            return None
        return await self._enter_mount(node, mount_path, path)

    async def _enter_mount(self, record: TrieNode, mount_path: str, path: str) -> tuple[Hyperdrive, str]:
        info = _mount_info(record, mount_path, path)
        drive = await self._mount_drive(info.key, info.version)
        inner = path[len(mount_path):] if mount_path != "/" else path
        if info.remote_path:
            inner = paths.join(info.remote_path, inner)
        return drive, paths.normalize(inner)

    async def _locate(self, path: str) -> tuple[Hyperdrive, str, TrieNode | None]:
        """The drive holding ``path`` (following mounts), the path inside it, and its entry (or None)."""
        drive = self
        for _ in range(64):
            key = paths.trie_key(path)
            node = await drive.trie.get(key, closest=True) if key else None
            if node is not None and node.key == key:
                return drive, path, node
            if node is not None and node.flags == MOUNT_FLAG and paths.is_inside("/" + node.key, path):
                found = await drive._mount_record(path)
                if found is None:
                    return drive, path, None
                drive, path = found
                continue
            return drive, path, None
        raise InvalidArgument("mounts nested too deeply", path)

    async def _locate_folder(self, path: str) -> tuple[Hyperdrive, str]:
        """The drive whose trie holds the entries under the folder ``path`` (following mounts)."""
        drive = self
        for _ in range(64):
            found = await drive._mount_record(path) if path != "/" else None
            if found is None:
                return drive, path
            drive, path = found
        raise InvalidArgument("mounts nested too deeply", path)

    # -- stat --------------------------------------------------------------------------------------

    def _decode(self, node: TrieNode, path: str) -> Stat:
        return Stat.decode(node.value or b"", path)

    def _shown(self, st: Stat, inner: str) -> Stat:
        """``st`` as ``stat`` answers it: while a descriptor writes the file, with the size written so
        far (as hyperdrive reports it; reads still read the file's entry)."""
        if self._checkout_of is None:
            size = writing_size(self._content, paths.trie_key(inner))
            if size is not None:
                st.size = size
        return st

    async def _lstat_located(self, path: str) -> tuple[Stat, Hyperdrive, str]:
        path = paths.normalize(path)
        drive, inner, node = await self._locate(path)
        if node is not None:
            return drive._decode(node, inner), drive, inner
        if inner == "/":
            return Stat.directory(), drive, inner
        # no entry: a folder that exists because entries lie under it (stat as hyperdrive does: the
        # first entry found under it, with a folder's mode)
        folder_drive, folder = await drive._locate_folder(inner)
        first = None
        async for n in folder_drive.trie.iterator(paths.trie_key(folder)):
            first = n
            break
        if first is None:
            raise FileNotFound(path)
        child = Stat.decode(first.value or b"", "/" + first.key)
        return child.copy(mode=Stat.directory().mode, linkname=None, mount=None), folder_drive, folder

    async def lstat(self, path: str) -> Stat:
        """The entry at ``path`` itself (a symlink is not followed)."""
        st, drive, inner = await self._lstat_located(path)
        return drive._shown(st, inner)

    async def stat(self, path: str) -> Stat:
        """The entry at ``path``, following symlinks (ELOOP for a loop)."""
        st, drive, inner = await self._stat_located(path)
        return drive._shown(st, inner)

    async def _stat_located(self, path: str) -> tuple[Stat, Hyperdrive, str]:
        st, drive, inner, _ = await self._follow(path)
        return st, drive, inner

    async def _follow(self, path: str) -> tuple[Stat, Hyperdrive, str, str]:
        """The Stat at ``path`` with symlinks followed, its drive and inner path, and the path it was
        found at."""
        path = paths.normalize(path)
        start = path
        for _ in range(MAX_SYMLINK_DEPTH):
            st, drive, inner = await self._lstat_located(path)
            if not st.linkname:
                return st, drive, inner, path
            path = paths.resolve_link(path, st.linkname)
        raise SymlinkLoop(start)

    async def access(self, path: str) -> None:
        """Raises :class:`FileNotFound` unless ``path`` exists (following symlinks)."""
        await self.stat(path)

    async def exists(self, path: str) -> bool:
        """Does ``path`` exist, symlinks followed? (False for a symlink loop.)"""
        try:
            await self.stat(path)
        except (FileNotFoundError, SymlinkLoop):
            return False
        return True

    async def readlink(self, path: str) -> str:
        st = await self.lstat(path)
        if not st.linkname:
            raise InvalidArgument(f"not a symbolic link: {path}", path)
        return st.linkname

    # -- reading files -----------------------------------------------------------------------------

    async def _file_range(self, path: str) -> tuple[Stat, Feed]:
        st, drive, _ = await self._stat_located(path)
        if st.is_directory() and not st.is_file():  # (a JS copy of a folder is both: read as JS does)
            raise IsADirectory(paths.normalize(path))
        if st.mount is not None and st.mount.hypercore:
            feed = await self.store.get(st.mount.key)
            return st.copy(offset=0, blocks=feed.length, byte_offset=0, size=feed.byte_length), feed
        content = await drive.content_feed()
        end = st.offset + st.blocks
        # Only a writable content feed is known to be complete. A replica's may still be catching up
        # (its peer's channel opening, its Have on the way): its missing blocks are waited for, as JS
        # does, rather than calling the entry corrupt; but with no peer at all there is no one to wait
        # for: no connection, not even one being set up (JS would wait forever).
        if end > content.length and content.writable:
            raise CorruptEntry(f"{path} points past the end of its content feed "
                               f"(blocks {st.offset}..{end}, feed length {content.length})", path)
        if not content.writable and not (replicator_of(content).peers or sessions_of(self.store)) and \
                content.downloaded(st.offset, min(end, content.length)) < st.blocks:
            raise ContentNotAvailable(f"{path}: its content is not stored here and no peer is connected",
                                      path)
        return st, content

    async def local_content(self, path: str) -> tuple[Stat, Feed] | None:
        """The Stat of the file at ``path`` (symlinks and mounts followed) and the feed holding its
        blocks, when every one of them is stored here and no descriptor is writing it: its bytes are
        then blocks ``[st.offset, st.offset + st.blocks)`` of that feed (``st.byte_offset`` is where
        they start in it), read without waiting on any peer (:meth:`Feed.read_range_sync`). None
        when some block is not here."""
        st, feed = await self._file_range(path)
        end = st.offset + st.blocks
        if end > feed.length or feed.downloaded(st.offset, end) != st.blocks:
            return None
        _, _, inner = await self._stat_located(path)
        if writing_size(feed, paths.trie_key(inner)) is not None:
            return None
        return st, feed

    def create_read_stream(self, path: str, *, start: int = 0, end: int | None = None,
                           length: int | None = None) -> ReadStream:
        """An async iterator of the file's bytes in chunks (one per content block). ``start`` is a byte
        offset; ``end`` is inclusive, as in hyperdrive; ``length`` caps the bytes read.

        On a replica, blocks not stored here are fetched: a stream to the end of the file asks for a
        window of blocks ahead of where it reads; a stream of a byte range (``end`` or ``length``
        given) asks only for the blocks that hold the range. To find the block where ``start`` lies,
        the sizes of the file's blocks before it are needed: those not known here are fetched
        (hypercore 9's tree has no way here yet to ask a peer for sizes alone)."""
        return ReadStream(self, path, start, end, length)

    async def read_file(self, path: str, encoding: str | None = None) -> Any:
        """The file's bytes (``str`` if an ``encoding`` is given)."""
        st, feed = await self._file_range(path)
        end = st.offset + st.blocks
        if st.blocks > 1 and end <= feed.length and feed.downloaded(st.offset, end) == st.blocks:
            data = feed.read_range_sync(st.offset, end)  # all here: one verified pread, no join
            if len(data) < st.size:
                raise CorruptEntry(f"{path}: its content blocks hold fewer bytes than its size", path)
            data = data if len(data) == st.size else data[:st.size]
        else:
            chunks = [c async for c in ReadStream(self, path, 0, None, None, resolved=(st, feed))]
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return data.decode(encoding) if encoding and encoding != "binary" else data

    # -- writing files -----------------------------------------------------------------------------

    async def _prepare_write(self, path: str, *, allow_dir: bool = False) -> tuple[Hyperdrive, str,
                                                                                    TrieNode | None]:
        """Where a write to ``path`` goes (following mounts), checking it can be made there: a file
        where a folder is is EISDIR (unless ``allow_dir``), anything under a file or symlink ENOTDIR."""
        path = paths.normalize(path)
        if path == "/":
            raise IsADirectory(path)
        self._check_writable(path)
        drive, inner, node = await self._locate(path)
        if drive is not self:
            drive._check_writable(path)
        key = paths.trie_key(inner)
        if node is not None and not allow_dir:
            st = drive._decode(node, inner)
            if st.is_directory():
                raise IsADirectory(path)
        elif node is None and not allow_dir:
            under = await drive.trie.get(key, prefix=True)
            if under is not None and under.key != key:
                raise IsADirectory(path)
        parent, outer = paths.dirname(inner), paths.dirname(path)
        while parent != "/":  # every folder above: a JS drive may hold a file there with entries under
            pnode = await drive.trie.get(paths.trie_key(parent))
            if pnode is not None and not Stat.decode(pnode.value or b"", parent).is_directory():
                raise NotADirectory(outer)
            parent, outer = paths.dirname(parent), paths.dirname(outer)
        return drive, inner, node

    async def _put_stat(self, inner: str, st: Stat, *, flags: int = 0, condition: Any = None) -> None:
        await self.trie.put(paths.trie_key(inner), st.encode(), flags=flags, condition=condition)

    async def write_file(self, path: str, data: bytes | str, encoding: str = "utf-8", *,
                         mode: int | None = None, uid: int = 0, gid: int = 0, mtime: int | None = None,
                         ctime: int | None = None, metadata: dict[str, bytes] | None = None) -> Stat:
        """Write a whole file (replacing it); returns its new Stat."""
        if isinstance(data, str):
            data = data.encode(encoding)
        drive, inner, _ = await self._prepare_write(path)
        content = await drive.content_feed()
        # as hyperdrive's write stream: the data cut in blocks of 512 KiB, and an empty file is one
        # empty block (hypercore appends every chunk written, even an empty one)
        extent = await content_log(content).append(cut(data) or [b""])
        st = file_stat(extent, mode=mode, uid=uid, gid=gid, mtime=mtime, ctime=ctime, metadata=metadata)
        await drive._put_stat(inner, st)
        return st

    async def begin_write(self, path: str, *, append_to: Stat | None = None, coalesce: int = 0,
                          track_size: bool = False, flags: int = 0, **fields: Any) -> FileWrite:
        """Start writing the file at ``path`` (what write streams and descriptors write through):
        ``await w.write(data)`` as often as needed, then ``await w.commit()`` puts the file's entry, or
        ``w.discard()`` leaves the file as it was. ``append_to``: the Stat of the file to continue
        (its bytes come first). ``fields``: the new Stat's mode, uid, gid, mtime, ctime, metadata. No
        lock is held between calls (see :mod:`hypernode.drive.content`)."""
        drive, inner, _ = await self._prepare_write(path)
        content = await drive.content_feed()
        prefix = None
        if append_to is not None and append_to.size:
            end = append_to.offset + append_to.blocks
            whole = end == content.length and append_to.byte_offset + append_to.size == content.byte_length
            prefix = Span(append_to.offset, end, append_to.size, whole)
        return FileWrite(content_log(content), drive.trie, paths.trie_key(inner), prefix=prefix,
                         coalesce=coalesce, fields=fields, flags=flags, track_size=track_size)

    def create_write_stream(self, path: str, **opts: Any) -> WriteStream:
        """``async with drive.create_write_stream(path) as w: await w.write(chunk)``: the file's bytes,
        appended to the content feed as they come (each write cut into blocks of at most 512 KiB), and
        its entry written when the stream closes without error. ``opts``: the Stat's mode, uid, gid,
        mtime, ctime, metadata."""
        return WriteStream(self, path, opts)

    async def create(self, path: str, **opts: Any) -> Stat:
        """An empty file at ``path`` unless an entry is already there (returned then)."""
        drive, inner, node = await self._prepare_write(path)
        if node is not None:
            return drive._decode(node, inner)
        # no content: JS's create() leaves offset and byteOffset at 0 (not the content feed's end)
        st = Stat.file(**opts)
        await drive._put_stat(inner, st)
        return st

    async def mkdir(self, path: str, *, mode: int | None = None, uid: int = 0, gid: int = 0) -> Stat:
        """A folder entry at ``path``; EEXIST if any entry is there."""
        path = paths.normalize(path)
        if path == "/":
            raise PathAlreadyExists(path)
        drive, inner, node = await self._prepare_write(path, allow_dir=True)
        if node is not None:
            raise PathAlreadyExists(path)
        content = await drive.content_feed()
        st = Stat.directory(mode=mode, uid=uid, gid=gid, offset=content.length,
                            byte_offset=content.byte_length)

        def if_absent(existing: TrieNode | None, new: TrieNode) -> bool:
            if existing is not None:
                raise PathAlreadyExists(path)
            return True

        await drive._put_stat(inner, st, condition=if_absent)
        return st

    async def symlink(self, target: str, link_path: str) -> Stat:
        """A symbolic link at ``link_path`` naming ``target`` (stored as given, resolved on stat);
        EEXIST if anything is at ``link_path`` (an entry, or entries under it)."""
        if "\x00" in target:
            raise InvalidArgument("a symlink target cannot contain NUL", link_path)
        link_path = paths.normalize(link_path)
        drive, inner, node = await self._prepare_write(link_path, allow_dir=True)
        if node is not None or await drive.trie.get(paths.trie_key(inner), prefix=True) is not None:
            raise PathAlreadyExists(link_path)
        st = Stat.symlink(linkname=target.replace("\\", "/"))
        await drive._put_stat(inner, st)
        return st

    async def copy(self, src: str, dst: str) -> Stat:
        """A new file at ``dst`` with the content and Stat of the file at ``src`` (symlinks followed),
        as hyperdrive's ``copy``: in the same drive the new entry points at the same content blocks
        (nothing is copied but the entry); across a mount the bytes are copied. EISDIR for a folder at
        ``src`` or ``dst``; EEXIST if ``dst`` exists (JS then silently keeps what is there)."""
        st, src_drive, src_inner = await self._stat_located(src)
        if st.is_directory():
            raise IsADirectory(paths.normalize(src))
        drive, inner, node = await self._prepare_write(dst)
        if node is not None:
            raise PathAlreadyExists(paths.normalize(dst))
        if drive.metadata is src_drive.metadata or (st.mount is not None and st.mount.hypercore):
            new = st.copy(mode=st.mode | IFREG)  # as JS's Stat.file(stat)
            await drive._put_stat(inner, new)
            return new
        write = await self.begin_write(dst, mode=st.mode & 0o7777, uid=st.uid, gid=st.gid,
                                       mtime=st.mtime, ctime=st.ctime, metadata=st.metadata)
        try:
            async for chunk in src_drive.create_read_stream(src_inner):
                await write.write(chunk)
            return await write.commit()
        finally:
            write.discard()

    async def _update_entry(self, path: str, change: Callable[[Stat], object]) -> Stat:
        path = paths.normalize(path)
        self._check_writable(path)
        drive, inner, node = await self._locate(path)
        if node is None:
            raise FileNotFound(path)
        drive._check_writable(path)
        st = Stat.decode(node.value or b"", path)
        change(st)
        await drive._put_stat(inner, st, flags=node.flags)
        return st

    async def set_attributes(self, path: str, *, mode: int | None = None, uid: int | None = None,
                             gid: int | None = None, mtime: int | None = None) -> Stat:
        """Change an entry's permission bits (``mode & 0o7777``; its kind stays), owner or mtime
        (milliseconds), as chmod, chown and utimes do; its ctime becomes now, as POSIX's does. The rest
        of the Stat (content, metadata) is kept. Returns the new Stat."""

        def change(st: Stat) -> None:
            if mode is not None:
                st.mode = (st.mode & ~0o7777) | (mode & 0o7777)
            if uid is not None:
                st.uid = uid
            if gid is not None:
                st.gid = gid
            if mtime is not None:
                st.mtime = mtime
            st.ctime = now_ms()

        return await self._update_entry(path, change)

    async def rename(self, src: str, dst: str) -> Stat:
        """Move the entry at ``src`` to ``dst`` in one step (one trie batch: the move is whole or not
        at all), as POSIX rename: a file or symlink keeps its Stat (its content blocks are not
        copied; its ctime becomes now) and replaces a file or symlink at ``dst``; a folder moves with
        every entry under it and may replace an empty folder. EISDIR for a file onto a folder, ENOTDIR
        for a folder onto a file, ENOTEMPTY for a folder onto a folder with entries, EINVAL for a
        folder into itself, EXDEV between two drives (across a mount point) or for a folder holding
        mounts (move those with mount/unmount). Returns the Stat now at ``dst``."""
        src, dst = paths.normalize(src), paths.normalize(dst)
        if src == "/" or dst == "/":
            raise InvalidArgument("the root cannot be renamed or replaced", src if src == "/" else dst)
        self._check_writable(src)
        st = await self.lstat(src)
        if src == dst:
            return st
        folder = st.is_directory() and not st.linkname
        if folder and paths.is_inside(src, dst):
            raise InvalidArgument(f"cannot move a folder into itself: {src} -> {dst}", dst)
        sdrive, sinner, snode = await self._locate(src)
        ddrive, dinner, dnode = await self._prepare_write(dst, allow_dir=True)
        if sdrive.metadata is not ddrive.metadata or (snode is not None and snode.flags == MOUNT_FLAG):
            raise CrossDevice(f"cannot move {src} to {dst}: not within one drive (a mount is in the way)",
                              src)
        sdrive._check_writable(src)
        try:
            there: Stat | None = await self.lstat(dst)
        except FileNotFoundError:
            there = None
        if there is not None:
            there_folder = there.is_directory() and not there.linkname
            if folder and not there_folder:
                raise NotADirectory(dst)
            if not folder and there_folder:
                raise IsADirectory(dst)
            if there_folder and await self._has_entries(dst):
                raise DirectoryNotEmpty(dst)
            if dnode is not None and dnode.flags == MOUNT_FLAG:
                raise CrossDevice(f"cannot replace the mount at {dst}", dst)
        skey, dkey = paths.trie_key(sinner), paths.trie_key(dinner)
        ops: list[dict[str, Any]] = []
        dels: list[dict[str, Any]] = []
        if not folder:
            assert snode is not None  # a file or symlink has an entry
            moved = st.copy(ctime=now_ms())
            ops.append({"type": "put", "key": dkey, "value": moved.encode(), "flags": snode.flags})
            dels.append({"type": "del", "key": skey})
        else:
            moved = st
            nodes = [snode] if snode is not None else []
            nodes += [n async for n in sdrive.trie.iterator(skey)]
            for n in nodes:
                if n.flags == MOUNT_FLAG:
                    raise CrossDevice(f"cannot move {src}: it holds the mount /{n.key}", src)
                ops.append({"type": "put", "key": dkey + n.key[len(skey):], "value": n.value,
                            "flags": n.flags})
                dels.append({"type": "del", "key": n.key})
        await sdrive.trie.batch(ops + dels)
        return moved

    async def set_metadata(self, path: str, key: str, value: bytes | str) -> Stat:
        """Set one metadata field of an entry (kept in its Stat's ``metadata`` map)."""
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return await self._update_entry(path, lambda st: st.metadata.__setitem__(key, raw))

    async def remove_metadata(self, path: str, key: str) -> Stat:
        return await self._update_entry(path, lambda st: st.metadata.pop(key, None))

    async def truncate(self, path: str, size: int = 0) -> Stat:
        """Cut or zero-extend a file to ``size`` bytes (a missing file is created)."""
        if size < 0:
            raise InvalidArgument("a size is not negative", path)
        drive, inner, node = await self._prepare_write(path)
        if node is None:
            return await self.create(path)
        st = drive._decode(node, inner)
        if st.size == size:
            return st
        content = await drive.content_feed()
        keep = min(size, st.size)
        prefix = Span(st.offset, st.offset + st.blocks, keep, False) if keep else None
        extent = await content_log(content).append_file(prefix, size - keep)
        new = file_stat(extent, mode=st.mode & 0o7777, uid=st.uid, gid=st.gid, metadata=st.metadata)
        await drive._put_stat(inner, new, flags=node.flags)
        return new

    # -- removing ----------------------------------------------------------------------------------

    async def _delete(self, path: str, inner: str, drive: Hyperdrive) -> None:
        deleted = await drive.trie.delete(paths.trie_key(inner))
        if deleted is None:
            raise FileNotFound(path)

    async def unlink(self, path: str) -> None:
        """Remove a file or symlink entry (entries under it, on a drive JS wrote, stay)."""
        path = paths.normalize(path)
        self._check_writable(path)
        drive, inner, node = await self._locate(path)
        if node is None:
            if await self.exists(path):
                raise IsADirectory(path)
            raise FileNotFound(path)
        drive._check_writable(path)
        try:
            st: Stat | None = drive._decode(node, inner)
        except CorruptEntry:
            st = None  # an entry whose Stat does not decode can still be removed (as in JS)
        if st is not None and st.is_directory():
            raise IsADirectory(path)
        await self._delete(path, inner, drive)

    async def rmdir(self, path: str) -> None:
        """Remove an empty folder (ENOTDIR for a file or symlink, ENOTEMPTY for a folder with entries)."""
        path = paths.normalize(path)
        self._check_writable(path)
        drive, inner, node = await self._locate(path)
        if node is not None:
            st = drive._decode(node, inner)
            if not st.is_directory() or st.mount is not None:
                raise NotADirectory(path)
        if await self._has_entries(path):
            raise DirectoryNotEmpty(path)
        if node is None:
            raise FileNotFound(path)
        drive._check_writable(path)
        await self._delete(path, inner, drive)

    async def _has_entries(self, path: str) -> bool:
        async for _ in self._walk(path, False, False, top=False):
            return True
        return False

    # -- folders -----------------------------------------------------------------------------------

    async def readdir(self, path: str = "/", *, stats: bool = False, recursive: bool = False,
                      follow_links: bool = False) -> list[Any]:
        """The names under ``path`` (with ``stats=True``, ``(name, Stat)`` pairs; a name that is a
        folder only by having entries under it gets a plain folder Stat). ``recursive`` lists every
        entry below, relative to ``path``, mounts entered; ``follow_links`` also enters symlinks to
        folders (as JS's recursive readdir). See the module docstring for drives JS wrote (a path may
        be a file and a folder). ENOENT for a path with nothing at or under it, ENOTDIR for a file
        with nothing under it.

        A name no path can address (``..``, ``.``, an empty segment, NUL or ``\\`` in a key a peer
        wrote) is left out. Without ``stats``, an entry whose Stat does not decode is still listed."""
        out: list[Any] = []
        async for item in self._entries(path, recursive, follow_links):
            out.append((item.name, self._entry_stat(item.node, item.path)) if stats else item.name)
        return out

    async def iterdir(self, path: str = "/", *, recursive: bool = False, follow_links: bool = False
                      ) -> AsyncIterator[tuple[str, Stat]]:
        """The ``(name, Stat)`` entries of :meth:`readdir` one at a time (an entry whose Stat does
        not decode raises :class:`CorruptEntry` when it is reached)."""
        try:
            async for item in self._entries(path, recursive, follow_links):
                yield item.name, self._entry_stat(item.node, item.path)
        except CorruptTrieError as e:
            raise _damaged(e, (None, path)) from e

    @staticmethod
    def _entry_stat(node: TrieNode | None, node_path: str) -> Stat:
        return Stat.directory() if node is None else Stat.decode(node.value or b"", node_path)

    async def _entries(self, path: str, recursive: bool, follow: bool) -> AsyncIterator[_Listed]:
        """:meth:`_walk`, each name once (the first met, as JS's stats for a name it lists twice)."""
        path = paths.normalize(path)
        seen: set[str] = set()
        async for item in self._walk(path, recursive, follow):
            if item.name in seen:
                continue
            seen.add(item.name)
            yield item
        if not seen and path != "/":
            # nothing listed: POSIX's answer for what the path is (JS answers [])
            if not (await self.stat(path)).is_directory():
                raise NotADirectory(path)

    async def _folder_target(self, path: str, node: TrieNode) -> tuple[str | None, bool]:
        """If the entry ``node`` at ``path`` is a symlink: the folder it leads to (None if it leads to
        no folder), and whether its target exists. ``(None, True)`` for anything else."""
        try:
            st = Stat.decode(node.value or b"", path)
        except CorruptEntry:
            return None, True
        if not st.linkname:
            return None, True
        try:
            target, _, _, found_at = await self._follow(paths.resolve_link(path, st.linkname))
        except FileNotFoundError:
            return None, False
        except SymlinkLoop:
            return None, True
        return (found_at if target.is_directory() else None), True

    async def _walk(self, path: str, recursive: bool, follow: bool, *, shown: str | None = None,
                    prefix: str = "", top: bool = True, mounts: bool = True, chain: tuple[str, ...] = ()
                    ) -> AsyncIterator[_Listed]:
        """What is under the folder ``path`` (as JS's stat iterator walks it), names prefixed with
        ``prefix``, paths shown under ``shown`` (a link's path, when ``path`` is its target). A name
        that is a folder only by having entries under it (non-recursive listings) comes with node None
        and the path of the entry under it that was met. ``top``: ``path`` is what the caller asked
        for (its own entry, if a symlink to a folder, lists that folder too, as in JS). ``mounts``:
        enter mounts in recursive listings. ``chain``: the folders being listed on the way here (a
        link back into one of them is listed, not entered)."""
        shown = path if shown is None else shown
        drive, inner = await self._locate_folder(path)
        base = paths.trie_key(inner)
        chain = (*chain, path)
        async for node in drive.trie.iterator(base, recursive=recursive):
            rel = paths.relative(inner, "/" + node.key)
            if not rel:
                if top:  # the listed path's own entry: a symlink to a folder lists that folder (JS)
                    target, _ = await self._folder_target(path, node)
                    if target is not None and not _loops(target, path, chain[:-1]):
                        async for sub in self._walk(target, recursive, follow, shown=shown, prefix=prefix,
                                                    top=False, mounts=mounts, chain=chain):
                            yield sub
                continue
            parts = rel.split("/")
            if not all(_addressable(seg) for seg in (parts if recursive else parts[:1])):
                continue
            name = prefix + (rel if recursive else parts[0])
            at = _under(shown, rel)  # (for a folder's entry met below it, ``at`` names that entry)
            if not recursive:
                yield _Listed(name, None if len(parts) > 1 else node, at, drive)
                continue
            real = _under(path, rel)
            if node.flags == MOUNT_FLAG:
                yield _Listed(name, node, at, drive)
                if mounts:
                    async for sub in self._walk(real, True, follow, shown=at, prefix=name + "/", top=False,
                                                mounts=mounts, chain=chain):
                        yield sub
                continue
            if follow:
                target, exists = await self._folder_target(real, node)
                if not exists:
                    continue  # as JS: a link to nothing is left out of a link-following listing
                yield _Listed(name, node, at, drive)
                if target is not None and not _loops(target, real, chain):
                    async for sub in self._walk(target, True, follow, shown=at, prefix=name + "/", top=False,
                                                mounts=mounts, chain=chain):
                        yield sub
                continue
            yield _Listed(name, node, at, drive)

    # -- changes, sizes, local blocks ----------------------------------------------------------------

    async def diff(self, other: int | Hyperdrive | None = None, prefix: str = "/"
                   ) -> AsyncIterator[DriveChange]:
        """The changes from version ``other`` (a version or a checkout; default the empty drive) to
        this one, under ``prefix``, in the order of JS's ``createDiffStream``."""
        version = other.version if isinstance(other, Hyperdrive) else (other or 0)
        prefix = paths.normalize(prefix)
        if prefix != "/" and await self._mount_record(prefix) is not None:
            raise InvalidArgument(f"{prefix} is inside a mount: diff the mounted drive itself", prefix)
        try:
            async for d in self.trie.diff(version, paths.trie_key(prefix)):
                yield await self._change(d.key, d.left, d.right)
        except CorruptTrieError as e:
            raise _damaged(e, (None, prefix)) from e

    async def _change(self, key: str, left: TrieNode | None, right: TrieNode | None) -> DriveChange:
        left_mount = left is not None and left.flags == MOUNT_FLAG
        right_mount = right is not None and right.flags == MOUNT_FLAG
        seq = left.seq if left is not None and not left_mount else None
        previous = right.seq if right is not None and not right_mount else None
        if left is None:
            kind = "unmount" if right_mount else "del"
            value: Stat | MountInfo | None = None
        elif left_mount:
            kind = "mount"
            value = await self._mount_info_at(key, self.version)
        else:
            kind = "put"
            value = Stat.decode(left.value or b"", "/" + key)
        return DriveChange(kind, key, seq, previous, value)

    async def _mount_info_at(self, key: str, version: int) -> MountInfo:
        trie = self.trie if version == self.version else self.trie.checkout(version)
        record = await trie.get(f"{MOUNT_PREFIX}/{key}", hidden=True)
        if record is None:
            raise CorruptEntry(f"the mount at /{key} has no mount record", "/" + key)
        return _mount_info(record, "/" + key, "/" + key)

    async def stats(self, path: str = "/", *, recursive: bool = True, follow_links: bool = False
                    ) -> dict[str, FileStats]:
        """Blocks, bytes and blocks stored here, per path, as JS's ``stats``: for a file, its own (one
        item); for a folder, its own entry's and every entry's below it (``recursive=False``: of each
        name directly under it, keyed, for a name that is a folder by entries under it, by the path of
        the entry under it the listing met, as JS), each symlink followed to what it names (links to
        nothing left out). The defaults are JS's ``stats(path)``; ``follow_links=True`` is JS's
        ``{recursive: true}`` (links to folders entered), ``recursive=False`` its ``{recursive:
        false}``. An entry without blocks counts none stored (JS counts every block of the feed for
        one at offset 0)."""
        path = paths.normalize(path)
        st, drive, _ = await self._stat_located(path)
        if st.is_file() or not st.is_directory():  # (a JS copy of a folder is both: a file, as in JS)
            return {path: await drive._file_stats(st)}
        out: dict[str, FileStats] = {}
        walked = [path] + [item.path async for item in self._walk(path, recursive, follow_links)]
        own = await self._locate(path)
        for at in walked if own[2] is not None else walked[1:]:
            try:
                entry, entry_drive, _ = await self._stat_located(at)
            except (FileNotFoundError, SymlinkLoop, InvalidArgument):
                continue
            out[at] = await entry_drive._file_stats(entry)
        return out

    async def _file_stats(self, st: Stat) -> FileStats:
        if st.mount is not None and st.mount.hypercore:
            feed = await self.store.get(st.mount.key)
            return FileStats(feed.length, feed.byte_length, feed.downloaded(0, feed.length))
        if not st.blocks:
            return FileStats(st.blocks, st.size, 0)
        content = await self.content_feed()
        return FileStats(st.blocks, st.size, content.downloaded(st.offset, st.offset + st.blocks))

    async def clear(self, path: str = "/", *, follow_links: bool = False) -> None:
        """Drop the locally stored blocks of the file at ``path``, or of every file under the folder
        ``path`` (not in mounts; through symlinks to folders with ``follow_links``, as JS's ``clear``).
        Peers are told (Unhave); a later read fetches the blocks again from a peer that has them."""
        st, drive, _ = await self._stat_located(path)
        if not st.is_directory():
            await drive._clear_file(st)
            return
        async for item in self._walk(paths.normalize(path), True, follow_links, mounts=False):
            if item.node is None or item.node.flags == MOUNT_FLAG:
                continue
            try:
                entry = Stat.decode(item.node.value or b"", item.path)
            except CorruptEntry:
                continue
            await item.drive._clear_file(entry)

    async def _clear_file(self, st: Stat) -> None:
        if st.mount is not None or st.is_directory() or st.linkname or not st.blocks:
            return
        content = await self.content_feed()
        await content.clear(st.offset, st.offset + st.blocks)

    @contextlib.asynccontextmanager
    async def mirror(self) -> AsyncIterator[None]:
        """``async with drive.mirror():`` downloads every block of this drive and of every drive
        mounted in it (their metadata and content feeds, mounts added later too), and keeps
        downloading new blocks as they are written, until the block is left: JS's ``mirror()``, whose
        returned function stops it."""
        wants: dict[Feed, Want] = {}

        def want(feed: Feed | None) -> None:
            if feed is not None and not feed.closed and feed not in wants:
                wants[feed] = replicator_of(feed).want(0, None)

        async def follow() -> None:
            drives = [self]
            while True:
                # each metadata feed's change count, taken before it is looked at: a block arriving
                # while the mounts are read or a content feed opens wakes the wait below at once
                marks = {d.metadata: d.metadata.changes for d in drives}
                if self.metadata.has(0) or self._content is not None:
                    drives = list((await self.get_all_mounts()).values())
                for d in drives:
                    marks.setdefault(d.metadata, d.metadata.changes)
                    want(d.metadata)
                    if d.content is None and d.metadata.has(0):
                        await d.content_feed()
                    want(d.content)
                await _any_change(marks)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow)
                try:
                    yield
                finally:
                    nursery.cancel_scope.cancel()
        finally:
            for w in wants.values():
                w.close()

    # -- mounts ------------------------------------------------------------------------------------

    async def mount(self, path: str, key: bytes | str, *, version: int | None = None,
                    hash: bytes | None = None, hypercore: bool = False, uid: int = 0, gid: int = 0) -> Stat:
        """Mount the drive of ``key`` (or, with ``hypercore=True``, a bare feed) at ``path``."""
        if isinstance(key, str):
            try:
                key = bytes.fromhex(key)
            except ValueError:
                raise InvalidArgument(f"not a key: {key!r}") from None
        if len(key) != 32:
            raise InvalidArgument("a mount key is 32 bytes")
        path = paths.normalize(path)
        drive, inner, node = await self._prepare_write(path, allow_dir=True)
        if node is not None:
            raise PathAlreadyExists(path)
        content = await drive.content_feed()
        info = Mount(key, version, hash, hypercore)
        if hypercore:
            feed = await self.store.get(key)
            st = Stat.file(uid=uid, gid=gid, mount=info, size=feed.byte_length, blocks=feed.length,
                           offset=content.length, byte_offset=content.byte_length)
            await drive._put_stat(inner, st)
            return st
        st = Stat.directory(uid=uid, gid=gid, mount=info, offset=content.length,
                            byte_offset=content.byte_length)
        k = paths.trie_key(inner)
        record = _mount_schema.Mount(key=key, localPath=k, version=version)
        await drive.trie.batch([
            {"type": "put", "key": f"{MOUNT_PREFIX}/{k}", "value": record.encode(), "hidden": True,
             "flags": MOUNT_FLAG},
            {"type": "put", "key": k, "value": st.encode(), "flags": MOUNT_FLAG},
        ])
        await drive._mount_drive(key, version)
        return st

    async def unmount(self, path: str) -> None:
        path = paths.normalize(path)
        self._check_writable(path)
        parent_drive, parent_inner = await self._locate_folder(paths.dirname(path))
        inner = paths.join(parent_inner, paths.basename(path))
        node = await parent_drive.trie.get(paths.trie_key(inner))
        if node is None:
            raise FileNotFound(path)
        st = Stat.decode(node.value or b"", path)
        if st.mount is None:
            raise InvalidArgument(f"not a mount: {path}", path)
        parent_drive._check_writable(path)
        k = paths.trie_key(inner)
        if st.mount.hypercore:
            await parent_drive.trie.delete(k)
            return
        await parent_drive.trie.batch([
            {"type": "del", "key": f"{MOUNT_PREFIX}/{k}", "hidden": True},
            {"type": "del", "key": k},
        ])

    async def get_all_mounts(self, *, recursive: bool = True) -> dict[str, Hyperdrive]:
        """Every drive mounted in this one by path (``/`` is this drive)."""
        out: dict[str, Hyperdrive] = {"/": self}
        await self._collect_mounts("/", out, recursive, depth=0)
        return out

    async def _collect_mounts(self, at: str, out: dict[str, Hyperdrive], recursive: bool, depth: int) -> None:
        if depth > 16:
            return
        async for record in self.trie.iterator(MOUNT_PREFIX, hidden=True):
            if record.flags != MOUNT_FLAG:
                continue
            local = "/" + record.key[len(MOUNT_PREFIX) + 1:]
            drive, _ = await self._enter_mount(record, local, local)
            where = paths.join(at, local)
            out[where] = drive
            if recursive:
                await drive._collect_mounts(where, out, recursive, depth + 1)

    # -- tags --------------------------------------------------------------------------------------

    async def create_tag(self, name: str, version: int | None = None) -> None:
        """Name a version (default: the current one)."""
        self._check_writable(name)
        v = self.version if version is None else version
        await self.trie.put(TAGS_PREFIX + name, encode_varint(v), hidden=True)

    async def get_tagged_version(self, name: str) -> int | None:
        node = await self.trie.get(TAGS_PREFIX + name, hidden=True)
        return None if node is None else _tag_version(node)

    async def get_all_tags(self) -> dict[str, int]:
        out = {}
        async for node in self.trie.iterator(TAGS_PREFIX, hidden=True):
            out[node.key[len(TAGS_PREFIX):]] = _tag_version(node)
        return out

    async def delete_tag(self, name: str) -> None:
        self._check_writable(name)
        await self.trie.delete(TAGS_PREFIX + name, hidden=True)

    # -- replication helpers -----------------------------------------------------------------------

    async def download(self, path: str = "/", *, timeout: float | None = None) -> None:
        """Wait until every file under ``path`` (in mounted drives too) is stored locally."""
        with trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
            st, drive, inner = await self._stat_located(path)
            if not st.is_directory():
                await drive._download_file(st)
                return
            async for _, entry_st, owner in self._walk_owned(paths.normalize(path)):
                await owner._download_file(entry_st)

    async def _walk_owned(self, path: str) -> AsyncIterator[tuple[str, Stat, Hyperdrive]]:
        drive, inner = await self._locate_folder(path)
        if drive is not self:
            await drive._catch_up()
        async for node in drive.trie.iterator(paths.trie_key(inner)):
            st = Stat.decode(node.value or b"", "/" + node.key)
            if node.flags == MOUNT_FLAG and st.mount is not None and not st.mount.hypercore:
                async for sub in self._walk_owned(paths.join(path, paths.relative(inner, "/" + node.key))):
                    yield sub
            else:
                yield node.key, st, drive

    async def _catch_up(self) -> None:
        """On a replica (a mounted drive met during a download): wait for its header, then for the
        length its peers announce, so that the download sees the drive as they have it."""
        if self.metadata.writable or self._checkout_of is not None:
            return
        await self.content_feed()
        replicator = replicator_of(self.metadata)
        remote = replicator.remote_length
        if remote > self.metadata.length:
            await replicator.update(remote)

    async def _download_file(self, st: Stat) -> None:
        if st.is_directory() or st.linkname or not st.blocks:
            return
        content = await self.content_feed()
        end = st.offset + st.blocks
        for start in range(st.offset, end, DOWNLOAD_WINDOW_BLOCKS):  # bounded ranges, as above
            await replicator_of(content).download(start, min(end, start + DOWNLOAD_WINDOW_BLOCKS))

    @contextlib.asynccontextmanager
    async def watch(self, path: str = "/") -> AsyncIterator[Any]:
        """``async with drive.watch(path) as changes: async for _ in changes`` — once per change."""
        async with self.trie.watch(paths.trie_key(paths.normalize(path))) as changes:
            yield changes

    # -- file descriptors --------------------------------------------------------------------------

    async def open_file(self, path: str, flags: str | int = "r") -> int:
        """A file descriptor (``r``, ``r+``, ``w``, ``w+``, ``wx``, ``a``, ``a+``, or ``os.O_*`` flags)
        (``drive.open(path, flags)`` is the same). It may be used from any task; see
        :mod:`hypernode.drive.fd`."""
        if self.closed:
            raise HypernodeError("the drive is closed")
        desc = await FileDescriptor.open(self, path, flags)
        fd = self._next_fd
        self._next_fd += 2
        self._fds[fd] = desc
        return fd

    def _fd(self, fd: int) -> FileDescriptor:
        desc = self._fds.get(fd)
        if desc is None:
            raise BadFileDescriptor(f"bad file descriptor: {fd}")
        return desc

    async def read(self, fd: int, length: int, position: int | None = None) -> bytes:
        """Up to ``length`` bytes from ``position`` (default: where the last read ended)."""
        return await self._fd(fd).read(length, position)

    async def write(self, fd: int, data: bytes | str, position: int | None = None) -> int:
        """Append ``data`` at the descriptor's position; returns the bytes written."""
        return await self._fd(fd).write(data.encode() if isinstance(data, str) else data, position)

    async def ftruncate(self, fd: int, size: int = 0) -> None:
        await self._fd(fd).truncate(size)

    async def close_fd(self, fd: int) -> None:
        """Close a descriptor: the file's new entry is put (a close that fails or is cancelled leaves
        the file as it was; the descriptor is gone either way)."""
        desc = self._fd(fd)
        del self._fds[fd]
        await desc.close()


class _Listed(NamedTuple):
    """One item of a listing: its name (relative to the listed folder), its trie node (None for a
    folder that is one by having entries under it), the path it is shown at, the drive holding it."""

    name: str
    node: TrieNode | None
    path: str
    drive: Hyperdrive


def _damaged(e: CorruptTrieError, args: tuple[Any, ...]) -> CorruptEntry:
    path = next((a for a in args[1:2] if isinstance(a, str)), None)
    return CorruptEntry(f"the drive's trie is damaged: {e}", path)


def _trie_errors_as_eio(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A trie node that does not decode fails the call that met it with EIO (CorruptEntry), as a Stat
    that does not decode does: every drive error is an OSError."""

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except CorruptTrieError as e:
            raise _damaged(e, args) from e

    return wrapper


for _name in ("content_feed", "update", "lstat", "stat", "access", "exists", "readlink", "read_file",
              "write_file", "begin_write", "create", "mkdir", "symlink", "copy", "set_metadata",
              "set_attributes", "rename", "remove_metadata", "truncate", "unlink", "rmdir", "readdir",
              "stats", "clear", "mount",
              "unmount", "get_all_mounts", "create_tag", "get_tagged_version", "get_all_tags",
              "delete_tag", "download", "destroy_storage", "open_file", "read", "write", "ftruncate",
              "close_fd"):
    setattr(Hyperdrive, _name, _trie_errors_as_eio(getattr(Hyperdrive, _name)))


async def _any_change(marks: dict[Feed, int]) -> None:
    """Return when any of the feeds has changed (appended, stored or cleared a block, or closed)
    since its :attr:`~hypernode.feed.Feed.changes` count was ``marks[feed]``."""
    if any(feed.changes != since for feed, since in marks.items()):
        return
    async with trio.open_nursery() as nursery:

        async def wake(feed: Feed, since: int) -> None:
            await feed.wait_for_change(since)
            nursery.cancel_scope.cancel()

        for feed, since in marks.items():
            nursery.start_soon(wake, feed, since)


def _loops(target: str, at: str, chain: tuple[str, ...]) -> bool:
    """Would listing the folder ``target`` (reached through a link at ``at``) list a folder being
    listed (``chain``) or the link itself again?"""
    return len(chain) > MAX_SYMLINK_DEPTH or paths.is_inside(target, at) or \
        any(paths.is_inside(target, folder) for folder in chain)


def _mount_info(record: TrieNode, mount_path: str, path: str) -> MountInfo:
    try:
        info = _mount_schema.Mount.decode(record.value or b"")
    except DecodeError as e:
        raise CorruptEntry(f"the mount record of {mount_path} does not decode: {e}", path) from None
    if len(info.key) != 32:
        raise CorruptEntry(f"the mount record of {mount_path} has a bad key", path)
    return MountInfo(info.key, info.localPath or "", info.version, info.remotePath, info.hash)


def _under(folder: str, rel: str) -> str:
    return ("" if folder == "/" else folder) + "/" + rel


def _addressable(segment: str) -> bool:
    """Can a path name this segment of a key? (Not when a peer wrote ``..``, ``.``, NUL, ...)"""
    return segment not in ("", ".", "..") and "\x00" not in segment and "\\" not in segment


def _tag_version(node: TrieNode) -> int:
    try:
        v, _ = decode_varint(node.value or b"", 0)
    except DecodeError:
        raise CorruptEntry(f"tag {node.key} does not hold a version") from None
    return v


class ReadStream:
    """The bytes of a file, chunk by chunk (see :meth:`Hyperdrive.create_read_stream`)."""

    def __init__(self, drive: Hyperdrive, path: str, start: int, end: int | None, length: int | None, *,
                 resolved: tuple[Stat, Feed] | None = None) -> None:
        if start < 0 or (length is not None and length < 0):
            raise InvalidArgument("start and length are not negative", path)
        self.drive = drive
        self.path = path
        self.start = start
        self.length = (end - start + 1) if end is not None else length
        self._resolved = resolved  # the file's Stat and content feed, when the caller has found them
        self._gen: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> ReadStream:
        return self

    async def __anext__(self) -> bytes:
        if self._gen is None:
            self._gen = self._chunks()
        try:
            return await self._gen.__anext__()
        except CorruptTrieError as e:
            raise _damaged(e, (None, self.path)) from e

    async def aclose(self) -> None:
        if self._gen is not None:
            await self._gen.aclose()  # type: ignore[attr-defined]

    async def _chunks(self) -> AsyncIterator[bytes]:
        st, feed = self._resolved or await self.drive._file_range(self.path)
        remaining = st.size - self.start if self.length is None else min(self.length, st.size - self.start)
        if remaining <= 0:
            return
        first, end = st.offset, st.offset + st.blocks
        skip = 0
        replicator = replicator_of(feed)
        if self.start:
            first, skip = await replicator.seek(st.offset, end, self.start, byte_offset=st.byte_offset,
                                                byte_length=st.size)
        wanted_end = end  # a part of the file: peers are asked for its blocks only, not those after
        if self.start + remaining < st.size:
            last, _ = await replicator.seek(st.offset, end, self.start + remaining - 1,
                                            byte_offset=st.byte_offset, byte_length=st.size)
            wanted_end = min(end, last + 1)
        want: Want | None = None
        want_end = first
        try:
            for i in range(first, end):
                if feed.has(i):
                    block = feed.read_block_sync(i)
                else:
                    if i >= want_end:  # ask peers for the blocks ahead, a window at a time (a Stat
                        # from a peer may claim any number of blocks)
                        if want is not None:
                            want.close()
                        want_end = min(max(wanted_end, i + 1), i + READ_AHEAD_BLOCKS)
                        want = replicator.want(i, want_end)
                    block = await replicator.get(i)
                if skip:
                    block = block[skip:]
                    skip = 0
                if len(block) >= remaining:
                    yield block[:remaining]
                    return
                remaining -= len(block)
                yield block
        finally:
            if want is not None:
                want.close()
        if remaining > 0:
            raise CorruptEntry(f"{self.path}: its content blocks hold fewer bytes than its size", self.path)


class WriteStream:
    """The bytes of a file as they are written (see :meth:`Hyperdrive.create_write_stream`): each write
    appended as it comes (in blocks of at most 512 KiB, an empty write as an empty block, as JS's write
    streams), the file's entry put when the ``async with`` block ends without error. No lock is held
    between writes: other writes to the drive go on meanwhile."""

    def __init__(self, drive: Hyperdrive, path: str, opts: dict[str, Any]) -> None:
        self.drive = drive
        self.path = path
        self.opts = opts
        self.bytes_written = 0
        self.stat: Stat | None = None
        self._write: FileWrite | None = None

    async def __aenter__(self) -> WriteStream:
        self._write = await self.drive.begin_write(self.path, **self.opts)
        return self

    async def write(self, data: bytes | str) -> int:
        if self._write is None:
            raise HypernodeError("use the write stream as `async with`")
        if isinstance(data, str):
            data = data.encode()
        await self._write.write(data)
        self.bytes_written += len(data)
        return len(data)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        write, self._write = self._write, None
        assert write is not None
        if exc is None:
            try:
                self.stat = await write.commit()
            except CorruptTrieError as e:
                raise _damaged(e, (None, self.path)) from e
        else:
            write.discard()
