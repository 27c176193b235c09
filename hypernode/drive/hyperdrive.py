"""``Hyperdrive``: a filesystem on two feeds, read and written as JS hyperdrive 10 does.

The *metadata* feed holds a hypertrie (:mod:`hypernode.trie`) whose header names the *content* feed
and whose entries map paths to :class:`~hypernode.drive.stat.Stat` values; a file's bytes are the
blocks ``[offset, offset + blocks)`` of the content feed, written in blocks of at most 512 KiB.

Mounts follow mountable-hypertrie 2.8: a mount point is an entry flagged ``MOUNT`` holding a directory
Stat with a ``mount`` field, next to a hidden record ``mounts/<path>`` (the ``Mount`` message of
``protocol/mountable-hypertrie.proto``: key, local path, version). A path under a mount point resolves
inside the mounted drive, which lives in the same :class:`~hypernode.corestore.Corestore` and so
replicates over the same connections. Tags are hidden keys ``hyperdrive-tags/<name>`` holding a varint
version. File descriptors are in :mod:`hypernode.drive.fd`.

Every method is async and raises the :mod:`hypernode.drive.errors` OSErrors (ENOENT, EEXIST, ENOTDIR,
EISDIR, ENOTEMPTY, EPERM for writes we cannot make, EINVAL for bad paths, EIO for entries that do not
decode or point past their content feed). A bad entry fails the call that met it, nothing else.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio

from hypernode.drive import paths
from hypernode.drive.errors import (
    ContentNotAvailable,
    CorruptEntry,
    DirectoryNotEmpty,
    FileNotFound,
    InvalidArgument,
    IsADirectory,
    NotADirectory,
    PathAlreadyExists,
    PermissionDenied,
)
from hypernode.drive.stat import Mount, Stat, now_ms
from hypernode.errors import HypernodeError
from hypernode.feed import Feed
from hypernode.messages import mountable_hypertrie as _mount_schema
from hypernode.trie import CorruptTrieError, Hypertrie, TrieNode
from hypernode.varint import DecodeError, decode_varint, encode_varint

if TYPE_CHECKING:
    from hypernode.corestore import Corestore
    from hypernode.drive.fd import FileDescriptor

WRITE_BLOCK_SIZE = 512 * 1024  # hyperdrive's write streams cut content into blocks of this size
MOUNT_FLAG = 1  # user flag of mount entries and their hidden records (mountable-hypertrie)
MOUNT_PREFIX = "mounts"
TAGS_PREFIX = "hyperdrive-tags/"
SUBTYPE = "hyperdrive"
MAX_SYMLINK_DEPTH = 16
READ_AHEAD_BLOCKS = 64  # blocks a read stream asks peers for ahead of where it reads
DOWNLOAD_WINDOW_BLOCKS = 16384  # blocks download() asks for at once (8 GiB of full blocks)


class _InsideMount(Exception):
    """Raised from a put condition: the path lies under a mount point (the write goes there)."""


class _DriveOrFd:
    """``Hyperdrive.open(store, key)`` opens a drive; ``drive.open(path, flags)`` a file descriptor."""

    def __get__(self, obj: Any, cls: type) -> Any:
        if obj is None:
            return cls._open_drive
        return obj._open_fd


class Hyperdrive:
    """A hyperdrive 10. Open with :meth:`Hyperdrive.open`; use as ``async with``.

    ``Hyperdrive.open(store, key=None)`` opens a drive; on a drive, ``drive.open(path, flags)`` opens
    a file descriptor (as in hyperdrive, where both are called ``open``).
    """

    open = _DriveOrFd()

    def __init__(self, store: Corestore, metadata: Feed, trie: Hypertrie, *, content: Feed | None = None,
                 checkout_of: Hyperdrive | None = None) -> None:
        self.store = store
        self.metadata = metadata
        self.trie = trie
        self._content = content
        self._content_lock = trio.Lock() if checkout_of is None else checkout_of._content_lock
        self._checkout_of = checkout_of
        self._mounts: dict[tuple[bytes, int | None], Hyperdrive] = {}
        self._fds: dict[int, FileDescriptor] = {}
        self._next_fd = 20
        self.writing_sizes: dict[str, int] = {}  # paths with an open writable fd -> bytes written
        self.closed = False

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    async def _open_drive(cls, store: Corestore, key: bytes | str | None = None, *,
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
    def peers(self) -> list[Any]:
        return self.metadata.peers

    def register_extension(self, name: str, encoding: str = "binary",
                           on_message: Callable[[Any, Any], None] | None = None) -> Any:
        """An extension message on the metadata feed's channels (as hyperdrive's registerExtension)."""
        return self.metadata.register_extension(name, encoding, on_message)

    def __repr__(self) -> str:
        return f"<Hyperdrive {self.key.hex()[:16]} version={self.version} writable={self.writable}>"

    async def update(self, min_version: int | None = None, *, timeout: float | None = None) -> int:
        """Wait until a peer brings a newer version (or at least ``min_version``); returns the version."""
        await self.metadata.update(min_version, timeout=timeout)
        return self.version

    def checkout(self, version: int) -> Hyperdrive:
        """A read-only view of the drive as it was at ``version``."""
        return Hyperdrive(self.store, self.metadata, self.trie.checkout(version), content=self._content,
                          checkout_of=self)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def close(self, fd: int | None = None) -> None:
        """``close(fd)`` closes a file descriptor; ``close()`` the drive: its descriptors are finished,
        and its feeds stay with the store (which closes them)."""
        if fd is not None:
            await self.close_fd(fd)
            return
        if self.closed:
            return
        for fd in list(self._fds):
            with contextlib.suppress(HypernodeError, OSError):
                await self.close_fd(fd)
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

    # -- resolving paths and mounts -----------------------------------------------------------------

    async def _mount_drive(self, key: bytes, version: int | None) -> Hyperdrive:
        drive = self._mounts.get((key, version))
        if drive is None:
            drive = await Hyperdrive._open_drive(self.store, key)
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
        try:
            info = _mount_schema.Mount.decode(record.value or b"")
        except DecodeError as e:
            raise CorruptEntry(f"the mount record of {mount_path} does not decode: {e}", path) from None
        if len(info.key) != 32:
            raise CorruptEntry(f"the mount record of {mount_path} has a bad key", path)
        drive = await self._mount_drive(info.key, info.version)
        inner = path[len(mount_path):] if mount_path != "/" else path
        if info.remotePath:
            inner = paths.join(info.remotePath, inner)
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
        st = Stat.decode(node.value or b"", path)
        if path in self.writing_sizes:
            st.size = self.writing_sizes[path]
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
        return (await self._lstat_located(path))[0]

    async def stat(self, path: str) -> Stat:
        """The entry at ``path``, following symlinks."""
        return (await self._stat_located(path))[0]

    async def _stat_located(self, path: str) -> tuple[Stat, Hyperdrive, str]:
        path = paths.normalize(path)
        for _ in range(MAX_SYMLINK_DEPTH):
            st, drive, inner = await self._lstat_located(path)
            if not st.linkname:
                return st, drive, inner
            path = paths.resolve_link(path, st.linkname)
        raise InvalidArgument(f"too many levels of symbolic links: {path}", path)

    async def access(self, path: str) -> None:
        """Raises :class:`FileNotFound` unless ``path`` exists (following symlinks)."""
        await self.stat(path)

    async def exists(self, path: str) -> bool:
        try:
            await self.stat(path)
        except FileNotFoundError:
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
        if st.is_directory() and not (st.mount and st.mount.hypercore):
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
        if not content.writable and not (content.peers or self.store.sessions) and \
                content.downloaded(st.offset, min(end, content.length)) < st.blocks:
            raise ContentNotAvailable(f"{path}: its content is not stored here and no peer is connected",
                                      path)
        return st, content

    def create_read_stream(self, path: str, *, start: int = 0, end: int | None = None,
                           length: int | None = None) -> ReadStream:
        """An async iterator of the file's bytes in chunks (one per content block). ``start`` is a byte
        offset; ``end`` is inclusive, as in hyperdrive; ``length`` caps the bytes read."""
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
        """Where a write to ``path`` goes (following mounts), checking it can be made there."""
        path = paths.normalize(path)
        if path == "/":
            raise IsADirectory(path)
        self._check_writable(path)
        drive, inner, node = await self._locate(path)
        if drive is not self:
            drive._check_writable(path)
        if node is not None and not allow_dir:
            st = drive._decode(node, inner)
            if st.is_directory():
                raise IsADirectory(path)
        elif node is None and not allow_dir:
            under = await drive.trie.get(paths.trie_key(inner), prefix=True)
            if under is not None and under.key != paths.trie_key(inner):
                raise IsADirectory(path)
        parent = paths.dirname(inner)
        if parent != "/":
            pnode = await drive.trie.get(paths.trie_key(parent))
            if pnode is not None and not Stat.decode(pnode.value or b"", parent).is_directory():
                raise NotADirectory(paths.dirname(path))
        return drive, inner, node

    async def _put_stat(self, inner: str, st: Stat, *, flags: int = 0, condition: Any = None) -> None:
        await self.trie.put(paths.trie_key(inner), st.encode(), flags=flags, condition=condition)

    async def write_file(self, path: str, data: bytes | str, encoding: str = "utf-8", *,
                         mode: int | None = None, uid: int = 0, gid: int = 0, mtime: int | None = None,
                         ctime: int | None = None, metadata: dict[str, bytes] | None = None) -> Stat:
        """Write a whole file (replacing it); returns its new Stat."""
        if isinstance(data, str):
            data = data.encode(encoding)
        data = bytes(data)
        drive, inner, _ = await self._prepare_write(path)
        # as hyperdrive's write stream: the data cut in blocks of 512 KiB, and an empty file is one
        # empty block (hypercore appends every chunk written, even an empty one)
        blocks = [data[i:i + WRITE_BLOCK_SIZE] for i in range(0, len(data), WRITE_BLOCK_SIZE)] or [b""]
        return await drive._write_blocks(inner, blocks, mode=mode, uid=uid, gid=gid, mtime=mtime,
                                         ctime=ctime, metadata=metadata)

    async def _write_blocks(self, inner: str, blocks: list[bytes], **opts: Any) -> Stat:
        content = await self.content_feed()
        async with self._content_lock:
            offset, byte_offset = content.length, content.byte_length
            if blocks:
                await content.append(blocks)
            st = self._new_file_stat(offset, byte_offset, content, **opts)
            await self._put_stat(inner, st)
        return st

    def _new_file_stat(self, offset: int, byte_offset: int, content: Feed, *, mode: int | None = None,
                       uid: int = 0, gid: int = 0, mtime: int | None = None, ctime: int | None = None,
                       metadata: dict[str, bytes] | None = None) -> Stat:
        t = now_ms()
        return Stat.file(mode=mode, uid=uid, gid=gid, offset=offset, byte_offset=byte_offset,
                         size=content.byte_length - byte_offset, blocks=content.length - offset,
                         mtime=mtime or t, ctime=ctime or t, metadata=dict(metadata or {}))

    def create_write_stream(self, path: str, **opts: Any) -> WriteStream:
        """``async with drive.create_write_stream(path) as w: await w.write(chunk)``: the file's bytes,
        appended to the content feed as they come (each write cut into blocks of at most 512 KiB), and
        its entry written when the stream closes without error."""
        return WriteStream(self, path, opts)

    async def create(self, path: str, **opts: Any) -> Stat:
        """An empty file at ``path`` unless an entry is already there (returned then)."""
        drive, inner, node = await self._prepare_write(path)
        if node is not None:
            return drive._decode(node, inner)
        content = await drive.content_feed()
        # no content: JS's create() leaves offset and byteOffset at 0 (not the content feed's end)
        st = drive._new_file_stat(content.length, content.byte_length, content, **opts)
        st = st.copy(offset=0, byte_offset=0)
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
        """A symbolic link at ``link_path`` naming ``target`` (stored as given, resolved on stat)."""
        if "\x00" in target:
            raise InvalidArgument("a symlink target cannot contain NUL", link_path)
        link_path = paths.normalize(link_path)
        drive, inner, node = await self._prepare_write(link_path, allow_dir=True)
        if node is not None:
            raise PathAlreadyExists(link_path)
        st = Stat.symlink(linkname=target.replace("\\", "/"))
        await drive._put_stat(inner, st)
        return st

    async def _update_entry(self, path: str, change: Callable[[Stat], None]) -> Stat:
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
        async with drive._content_lock:
            offset, byte_offset = content.length, content.byte_length
            batch: list[bytes] = []
            async for chunk in drive.create_read_stream(inner, length=keep) if keep else _nothing():
                batch.append(chunk)
                if len(batch) >= 16:
                    await content.append(batch)
                    batch = []
            pad = size - keep
            while pad > 0:
                n = min(pad, WRITE_BLOCK_SIZE)
                batch.append(bytes(n))
                pad -= n
                if len(batch) >= 16:
                    await content.append(batch)
                    batch = []
            if batch:
                await content.append(batch)
            new = drive._new_file_stat(offset, byte_offset, content, mode=st.mode & 0o7777, uid=st.uid,
                                       gid=st.gid, metadata=st.metadata)
            await drive._put_stat(inner, new, flags=node.flags)
        return new

    # -- removing ----------------------------------------------------------------------------------

    async def _delete(self, path: str, inner: str, drive: Hyperdrive) -> None:
        deleted = await drive.trie.delete(paths.trie_key(inner))
        if deleted is None:
            raise FileNotFound(path)

    async def unlink(self, path: str) -> None:
        """Remove a file or symlink entry."""
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
        """Remove an empty folder."""
        path = paths.normalize(path)
        self._check_writable(path)
        if await self.readdir(path):
            raise DirectoryNotEmpty(path)
        drive, inner, node = await self._locate(path)
        if node is None:
            raise FileNotFound(path)
        drive._check_writable(path)
        st = drive._decode(node, inner)
        if not st.is_directory() or st.mount is not None:
            raise NotADirectory(path)
        await self._delete(path, inner, drive)

    # -- folders -----------------------------------------------------------------------------------

    async def readdir(self, path: str = "/", *, stats: bool = False, recursive: bool = False
                      ) -> list[Any]:
        """The names in a folder (with ``stats=True``, ``(name, Stat)`` pairs; an entry that is only a
        folder by having entries under it gets a folder Stat). ``recursive`` lists every path below,
        relative to the folder. ENOENT for a folder that does not exist, ENOTDIR for a file.

        A name no path can address (``..``, ``.``, an empty segment, NUL or ``\\`` in a key a peer
        wrote) is left out. Without ``stats``, an entry whose Stat does not decode is still listed."""
        out: list[Any] = []
        async for name, node, node_path in self._entries(path, recursive):
            out.append((name, self._entry_stat(node, node_path)) if stats else name)
        return out

    async def iterdir(self, path: str = "/", *, recursive: bool = False) -> AsyncIterator[tuple[str, Stat]]:
        """The ``(name, Stat)`` entries of :meth:`readdir` one at a time (an entry whose Stat does
        not decode raises :class:`CorruptEntry` when it is reached)."""
        try:
            async for name, node, node_path in self._entries(path, recursive):
                yield name, self._entry_stat(node, node_path)
        except CorruptTrieError as e:
            raise _damaged(e, (None, path)) from e

    @staticmethod
    def _entry_stat(node: TrieNode | None, node_path: str) -> Stat:
        return Stat.directory() if node is None else Stat.decode(node.value or b"", node_path)

    async def _entries(self, path: str, recursive: bool) -> AsyncIterator[tuple[str, TrieNode | None, str]]:
        path = paths.normalize(path)
        st, _, _ = await self._stat_located(path) if path != "/" else (Stat.directory(), self, path)
        if not st.is_directory():
            raise NotADirectory(path)
        lst = await self.lstat(path) if path != "/" else st
        if lst.linkname:
            path = await self._resolve_links(path)
        seen: set[str] = set()
        async for rel, node, node_path in self._walk(path, recursive):
            if rel in seen:
                continue
            seen.add(rel)
            yield rel, node, node_path

    async def _resolve_links(self, path: str) -> str:
        for _ in range(MAX_SYMLINK_DEPTH):
            st = await self.lstat(path)
            if not st.linkname:
                return path
            path = paths.resolve_link(path, st.linkname)
        raise InvalidArgument(f"too many levels of symbolic links: {path}", path)

    async def _walk(self, path: str, recursive: bool, prefix: str = ""
                    ) -> AsyncIterator[tuple[str, TrieNode | None, str]]:
        """``(name, node, its path)`` under the folder ``path``; node None for a folder that is one by
        having entries under it (non-recursive listings)."""
        drive, inner = await self._locate_folder(path)
        base = paths.trie_key(inner)
        async for node in drive.trie.iterator(base, recursive=recursive):
            node_path = "/" + node.key
            rel = paths.relative(inner, node_path)
            if not rel:
                continue
            parts = rel.split("/")
            if not all(_addressable(seg) for seg in (parts if recursive else parts[:1])):
                continue
            name = prefix + (rel if recursive else parts[0])
            if not recursive and len(parts) > 1:
                yield name, None, node_path
                continue
            yield name, node, node_path
            if recursive and node.flags == MOUNT_FLAG:
                async for sub in self._walk(paths.join(path, rel), True, name + "/"):
                    yield sub

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
        remote = self.metadata.downloads.remote_length()
        if remote > self.metadata.length:
            await self.metadata.update(remote)

    async def _download_file(self, st: Stat) -> None:
        if st.is_directory() or st.linkname or not st.blocks:
            return
        content = await self.content_feed()
        end = st.offset + st.blocks
        for start in range(st.offset, end, DOWNLOAD_WINDOW_BLOCKS):  # bounded ranges, as above
            await content.download(start, min(end, start + DOWNLOAD_WINDOW_BLOCKS))

    @contextlib.asynccontextmanager
    async def watch(self, path: str = "/") -> AsyncIterator[Any]:
        """``async with drive.watch(path) as changes: async for _ in changes`` — once per change."""
        async with self.trie.watch(paths.trie_key(paths.normalize(path))) as changes:
            yield changes

    # -- file descriptors --------------------------------------------------------------------------

    async def _open_fd(self, path: str, flags: str | int = "r") -> int:
        """A file descriptor (``r``, ``r+``, ``w``, ``w+``, ``wx``, ``a``, ``a+``, or ``os.O_*`` flags)."""
        from hypernode.drive.fd import FileDescriptor

        desc = await FileDescriptor.open(self, path, flags)
        fd = self._next_fd
        self._next_fd += 2
        self._fds[fd] = desc
        return fd

    def _fd(self, fd: int) -> FileDescriptor:
        from hypernode.drive.errors import BadFileDescriptor

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
        desc = self._fd(fd)
        del self._fds[fd]
        await desc.close()


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
              "write_file", "create", "mkdir", "symlink", "set_metadata", "remove_metadata", "truncate",
              "unlink", "rmdir", "readdir", "mount", "unmount", "get_all_mounts", "create_tag",
              "get_tagged_version", "get_all_tags", "delete_tag", "download", "_open_fd", "read", "write",
              "ftruncate", "close_fd"):
    setattr(Hyperdrive, _name, _trie_errors_as_eio(getattr(Hyperdrive, _name)))
Hyperdrive._open_drive = classmethod(_trie_errors_as_eio(Hyperdrive._open_drive.__func__))  # type: ignore


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover


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
        if self.start:
            first, skip = await feed.seek(st.offset, end, self.start)
        want, want_end = None, first
        try:
            for i in range(first, end):
                if feed.has(i):
                    block = feed.read_block_sync(i)
                else:
                    if i >= want_end:  # ask peers for the blocks ahead, a window at a time (a Stat
                        # from a peer may claim any number of blocks)
                        if want is not None:
                            feed.downloads.unwant_range(want)
                        want_end = min(end, i + READ_AHEAD_BLOCKS)
                        want = feed.downloads.want_range(i, want_end)
                    block = await feed.get(i)
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
                feed.downloads.unwant_range(want)
        if remaining > 0:
            raise CorruptEntry(f"{self.path}: its content blocks hold fewer bytes than its size", self.path)


class WriteStream:
    """The bytes of a file as they are written (see :meth:`Hyperdrive.create_write_stream`)."""

    def __init__(self, drive: Hyperdrive, path: str, opts: dict[str, Any]) -> None:
        self.drive = drive
        self.path = path
        self.opts = opts
        self.bytes_written = 0
        self.stat: Stat | None = None
        self._target: Hyperdrive | None = None
        self._inner = ""
        self._content: Feed | None = None
        self._offset = self._byte_offset = 0
        self._lock_cm: Any = None

    async def __aenter__(self) -> WriteStream:
        try:
            drive, inner, _ = await self.drive._prepare_write(self.path)
        except CorruptTrieError as e:
            raise _damaged(e, (None, self.path)) from e
        self._target, self._inner = drive, inner
        self._content = await drive.content_feed()
        await drive._content_lock.acquire()
        self._offset, self._byte_offset = self._content.length, self._content.byte_length
        return self

    async def write(self, data: bytes | str) -> int:
        if self._content is None:
            raise HypernodeError("use the write stream as `async with`")
        if isinstance(data, str):
            data = data.encode()
        # every write is appended, an empty one as an empty block (as hypercore's write stream does)
        await self._content.append([bytes(data[i:i + WRITE_BLOCK_SIZE])
                                    for i in range(0, len(data), WRITE_BLOCK_SIZE)] or [b""])
        self.bytes_written += len(data)
        return len(data)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._target is not None and self._content is not None
        try:
            if exc is None:
                with trio.CancelScope(shield=True):
                    self.stat = self._target._new_file_stat(self._offset, self._byte_offset, self._content,
                                                            **self.opts)
                    await self._target._put_stat(self._inner, self.stat)
        finally:
            self._target._content_lock.release()



