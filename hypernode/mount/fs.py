"""The FUSE file system: pyfuse3 operations on a :class:`~hypernode.mount.view.View`.

Inodes: a number per path, given when the kernel first meets the path and kept while the path exists
during the mount (a rename moves the numbers of everything under it; a removed path loses its number,
so that a new file there is a new inode to the kernel).

Reading: a file not being written is read from its drive, a byte range at a time (what the kernel
asks, 128-256 KiB): only the content blocks holding that range are fetched from peers. A file whose
blocks are all here when it is opened is read by a :class:`LocalReader`: a chunk of whole blocks at
a time, read on a worker thread, each request a slice of it, sequential requests going on from the
last chunk. Blocks the content feed trusts (stored by this process, or covered by the verified record
of its last clean close: :mod:`hypernode.feed`) are read as they are; others are hashed and checked as
the chunk is read, and a block that does not match fails the read (EIO). The kernel keeps what it read
in its page cache while the file's entry stays the same (a new version of the file, from a peer or
through the mount, starts afresh). The page cache costs the cold read (FUSE fills a page per 4 KiB
answered; measured in ``interop/bench/mount_bench.py``), but a shared ``mmap`` of a file and warm reads
need it. ``direct_io`` (``hypernode mount --direct-io``) trades both for first reads about twice as
fast: files opened read-only then bypass the page cache, and readers are shown a 4 MiB block size.

Writing: a drive's content is append-only (a file is one run of blocks in the content feed) and
programs write in place (sqlite rewrites pages, rsync and git write then rename). So a file opened for
writing is *staged*: its bytes are copied into a temporary file (in the store's ``staging`` folder,
unlinked, so nothing is left behind) at the first write or truncation, written there in place, and
written back as the file's new version (appended to the content feed, one new entry) when the
program flushes (``close``), calls ``fsync``, or releases its last descriptor. Costs: the first write
copies the whole file (fetching blocks not stored here); each write-back appends the whole file to the
content feed (a 10 MiB database committed 100 times adds 1 GiB to the drive's history); reads and
writes between write-backs run at local disk speed. A file opened only for reading, or for writing but
never written, costs nothing. A file deleted while open is not written back.

Attributes come from the drive's Stat: mode (kind and permission bits), size, mtime and ctime
(milliseconds), symlink targets. A symlink's mode shows as 0777, as on every Linux file system (its
bits mean nothing; JS stores 0644), and its size is its target's length. The owner shown is the user
running the mount (a drive's uid/gid mean nothing on another machine; chown stores them). A symlink
whose target is absolute in the drive (``/a/b``) reads as that path under the mountpoint, so that
following it stays in the drive; a symlink made through the mount to a path under the mountpoint is
stored as the drive path. The root has no entry in a drive: its attributes are fixed, and changing
them is a no-op.

Changes from peers: every new version of a drive is diffed, and the kernel is told to forget what it
cached of the paths that changed (attributes, names, pages).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import stat as statmod
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import pyfuse3
import trio

from hypernode.drive import PermissionDenied, Stat
from hypernode.drive.content import WRITE_BLOCK_SIZE
from hypernode.drive.errors import CorruptEntry
from hypernode.errors import BlockNotAvailableError, MissingTreeNode
from hypernode.feed import Feed
from hypernode.mount.view import View

log = logging.getLogger("hypernode.mount")

ROOT = pyfuse3.ROOT_INODE
CACHE_SECONDS = 1.0  # how long the kernel may keep attributes and names without asking again
COPY_CHUNK = 1 << 20
DIRECT_IO_BLKSIZE = 4 << 20  # the block size shown with direct_io: readers ask this much at a time
CHUNK_BYTES = 2 << 20  # a local file is read (and verified) at least this much at a time

T = TypeVar("T")
P = ParamSpec("P")


def _fuse_errors(fn: Callable[Concatenate[FS, P], Awaitable[T]]
                 ) -> Callable[Concatenate[FS, P], Coroutine[Any, Any, T]]:
    """Every failure of an operation becomes an errno for the kernel (an exception escaping a pyfuse3
    handler would end the mount): a drive's OSError its errno, a write to a drive we cannot write
    EROFS, a read that saw no block for ``timeout`` seconds EIO, anything else EIO, logged."""

    @functools.wraps(fn)
    async def wrapper(self: FS, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except PermissionDenied as e:
            log.debug("%s: %s", fn.__name__, e)
            raise pyfuse3.FUSEError(errno.EROFS) from None
        except OSError as e:
            if e.errno in (None, 0, errno.EIO, errno.ENODATA):
                log.warning("%s failed: %s", fn.__name__, e)
            raise pyfuse3.FUSEError(e.errno or errno.EIO) from None
        except trio.TooSlowError:
            log.warning("%s: no block arrived from the peers for %g s: EIO", fn.__name__, self.timeout)
            raise pyfuse3.FUSEError(errno.EIO) from None
        except Exception as e:  # noqa: BLE001 - the mount goes on; the program sees EIO
            log.warning("%s failed: %s: %s", fn.__name__, type(e).__name__, e,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


class Inodes:
    """Inode numbers of paths (see the module docstring)."""

    def __init__(self) -> None:
        self._paths: dict[int, str] = {ROOT: "/"}
        self._inos: dict[str, int] = {"/": ROOT}
        self._next = ROOT + 1

    def of(self, path: str) -> int:
        ino = self._inos.get(path)
        if ino is None:
            ino = self._inos[path] = self._next
            self._paths[ino] = path
            self._next += 1
        return ino

    def known(self, path: str) -> int | None:
        return self._inos.get(path)

    def path(self, ino: int) -> str:
        try:
            return self._paths[ino]
        except KeyError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None

    def removed(self, path: str) -> None:
        ino = self._inos.pop(path, None)
        if ino is not None:
            del self._paths[ino]

    def moved(self, src: str, dst: str) -> None:
        """``src`` (and everything under it) is now at ``dst``; what was at ``dst`` is gone."""
        for p in [p for p in self._inos if _inside(dst, p)]:
            self.removed(p)
        for p in [p for p in self._inos if _inside(src, p)]:
            ino = self._inos.pop(p)
            new = dst + p[len(src):]
            self._inos[new] = ino
            self._paths[ino] = new


@dataclass(eq=False)
class OpenFile:
    """A file some descriptors have open (one per inode): its staged bytes once it is written."""

    path: str
    base: Stat | None  # the entry when staging began (mode, owner, metadata carried over)
    handles: int = 0
    staged: Any = None  # a temporary file holding every byte of the file, once staged
    dirty: bool = False  # staged bytes not written back yet
    unlinked: bool = False  # removed (or replaced) while open: never written back
    mtime_ns: int = 0
    lock: trio.Lock = field(default_factory=trio.Lock)

    @property
    def size(self) -> int:
        assert self.staged is not None
        return os.fstat(self.staged.fileno()).st_size


@dataclass(eq=False)
class LocalReader:
    """Reads of a file whose blocks are all stored here (one per handle): whole blocks are read (and
    verified, those the feed does not trust) a chunk at a time (at least :data:`CHUNK_BYTES`: one read
    of the data file, hashed on two threads) on a worker thread, so that the event loop serves other
    requests meanwhile, and the
    kernel's requests are answered with slices of the chunk (no copy). A request that starts where the
    chunk ends goes on with the next blocks; one elsewhere finds its block in the feed's tree (no walk
    from the start of the file)."""

    feed: Feed
    st: Stat  # the entry opened (its blocks are read even if a newer version comes meanwhile)
    start: int = 0  # the file offset of data[0]
    next_block: int = 0  # the block after the chunk
    data: memoryview = field(default_factory=lambda: memoryview(b""))

    async def read(self, off: int, size: int) -> bytes | memoryview:
        size = min(size, self.st.size - off)
        parts: list[memoryview] = []
        while size > 0:
            rel = off - self.start
            if not 0 <= rel < len(self.data):
                await self._load(off)
                rel = off - self.start
            piece = self.data[rel:rel + size]
            if not piece:
                raise CorruptEntry(f"{self.st.size - off} bytes missing: the file's content blocks hold "
                                   "fewer bytes than its size")
            parts.append(piece)
            off += len(piece)
            size -= len(piece)
        if not parts:
            return b""
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _load(self, off: int) -> None:
        """Make the chunk holding the file's byte ``off`` the current one."""
        st, feed = self.st, self.feed
        end = st.offset + st.blocks
        if off == self.start + len(self.data) and st.offset < self.next_block < end:
            first, skip = self.next_block, 0  # sequential: the blocks after the last chunk
        else:
            first, skip = await self._find(off)
        last, total = first, 0
        while last < end and (last == first or total < CHUNK_BYTES):
            total += feed.block_size(last)
            last += 1
        # verified (see Feed.read_range_sync); not abandoned if cancelled, so the store stays open until
        # the thread is done
        data = await trio.to_thread.run_sync(feed.read_range_sync, first, last)
        self.data = memoryview(data)
        self.start = off - skip
        self.next_block = last

    async def _find(self, off: int) -> tuple[int, int]:
        """The block holding the file's byte ``off`` and the offset inside it."""
        st, feed = self.st, self.feed
        end = st.offset + st.blocks
        try:
            found = feed.find_byte(st.byte_offset + off)
        except MissingTreeNode:
            found = None
        if found is not None and st.offset <= found[0] < end:
            return found
        return await feed.seek(st.offset, end, off)  # (the block sizes one by one)


@dataclass(eq=False)
class Handle:
    ino: int
    file: OpenFile
    writable: bool
    local: LocalReader | None = None  # for a file whose every block is stored here
    turn: trio.Lock = field(default_factory=trio.Lock)  # reads of one handle take turns


class FS(pyfuse3.Operations):
    """The operations of one mount."""

    def __init__(self, view: View, mountpoint: Path, *, staging: Path | None = None,
                 timeout: float | None = 60.0, direct_io: bool = False) -> None:
        super().__init__()
        self.view = view
        self.mountpoint = str(mountpoint)
        self.staging = staging
        self.timeout = timeout
        self.direct_io = direct_io  # read-only opens bypass the page cache (see mount())
        self.inodes = Inodes()
        self.files: dict[int, OpenFile] = {}  # ino -> open file
        self.handles: dict[int, Handle] = {}
        self.dirs: dict[int, list[tuple[bytes, Stat]]] = {}
        self._dir_paths: dict[int, str] = {}
        self._next_fh = 1
        self._seen: dict[int, tuple[int, int, int, int]] = {}  # ino -> content identity at last open
        self.uid, self.gid = os.getuid(), os.getgid()
        self.started_ms = int(time.time() * 1000)
        self.written_back = 0

    # -- helpers -----------------------------------------------------------------------------------

    def _path(self, parent: int, name: bytes) -> str:
        base = self.inodes.path(parent)
        try:
            text = name.decode()
        except UnicodeDecodeError:
            raise pyfuse3.FUSEError(errno.EINVAL) from None
        if "\\" in text or "/" in text:
            raise pyfuse3.FUSEError(errno.EINVAL)  # a drive path reads '\\' as a separator
        return ("" if base == "/" else base) + "/" + text

    def _fh(self) -> int:
        fh = self._next_fh
        self._next_fh += 1
        return fh

    def _check_writable(self) -> None:
        if not self.view.writable:
            raise pyfuse3.FUSEError(errno.EROFS)

    async def _lstat(self, path: str) -> Stat:
        if path == "/":
            return Stat.directory(mtime=self.started_ms, ctime=self.started_ms)
        return await self.view.lstat(path)

    def _shown_link(self, target: str) -> str:
        return self.mountpoint + target if target.startswith("/") else target

    def attrs(self, ino: int, st: Stat) -> pyfuse3.EntryAttributes:
        e = pyfuse3.EntryAttributes()
        e.st_ino = ino
        e.generation = 0
        e.entry_timeout = CACHE_SECONDS
        e.attr_timeout = CACHE_SECONDS
        perms = st.mode & 0o7777
        size = st.size
        if st.linkname:
            kind, perms = statmod.S_IFLNK, 0o777  # as on every Linux file system (JS stores 0o644)
            size = len(self._shown_link(st.linkname).encode())
        elif st.is_directory() and not st.is_file():
            kind = statmod.S_IFDIR
            size = 0
        else:
            kind = statmod.S_IFREG
        mtime_ns = st.mtime * 1_000_000
        f = self.files.get(ino)
        if f is not None and f.staged is not None:
            size = f.size
            mtime_ns = f.mtime_ns or mtime_ns
        e.st_mode = kind | perms
        e.st_nlink = 1
        e.st_uid = self.uid
        e.st_gid = self.gid
        e.st_rdev = 0
        e.st_size = size
        e.st_blksize = DIRECT_IO_BLKSIZE if self.direct_io else 128 * 1024  # (cat reads this much at once)
        e.st_blocks = (size + 511) // 512
        e.st_atime_ns = mtime_ns
        e.st_mtime_ns = mtime_ns
        e.st_ctime_ns = st.ctime * 1_000_000
        return e

    async def _entry(self, path: str) -> pyfuse3.EntryAttributes:
        ino = self.inodes.of(path)
        return self.attrs(ino, await self._lstat(path))

    # -- names and attributes ----------------------------------------------------------------------

    @_fuse_errors
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        path = self._path(parent_inode, name)
        try:
            st = await self._lstat(path)
        except FileNotFoundError:
            raise pyfuse3.FUSEError(errno.ENOENT) from None
        return self.attrs(self.inodes.of(path), st)

    @_fuse_errors
    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        path = self.inodes.path(inode)
        f = self.files.get(inode)
        if f is not None and f.unlinked:
            assert f.base is not None
            return self.attrs(inode, f.base)
        return self.attrs(inode, await self._lstat(path))

    @_fuse_errors
    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: Any) -> pyfuse3.EntryAttributes:
        path = self.inodes.path(inode)
        changes = fields.update_size or fields.update_mode or fields.update_uid or fields.update_gid or \
            fields.update_mtime
        if changes:
            self._check_writable()
        f = self.files.get(inode)
        if fields.update_size:
            if f is not None:
                async with f.lock:
                    await self._stage(f, empty=attr.st_size == 0)
                    f.staged.truncate(attr.st_size)
                    f.dirty = True
                    f.mtime_ns = time.time_ns()
            else:
                await self.view.truncate(path, attr.st_size)
                self._seen.pop(inode, None)
        if fields.update_mode or fields.update_uid or fields.update_gid or fields.update_mtime:
            if f is not None and f.dirty:
                await self._write_back(f)  # then the entry the attributes go on is the file's latest
            if path != "/":  # the root has no entry: its attributes are fixed
                mtime = attr.st_mtime_ns // 1_000_000 if fields.update_mtime else None
                mode = attr.st_mode if fields.update_mode else None
                uid = attr.st_uid if fields.update_uid else None
                gid = attr.st_gid if fields.update_gid else None
                try:
                    await self.view.set_attributes(path, mode=mode, uid=uid, gid=gid, mtime=mtime)
                except FileNotFoundError:
                    st = await self._lstat(path)  # a folder made only by entries under it: give it one
                    if not st.is_directory():
                        raise
                    await self.view.mkdir(path, mode=(mode if mode is not None else st.mode) & 0o7777)
                    await self.view.set_attributes(path, mode=mode, uid=uid, gid=gid, mtime=mtime)
                if f is not None and f.staged is not None and mtime is not None:
                    f.mtime_ns = attr.st_mtime_ns
        if f is not None and f.unlinked:
            return await self.getattr(inode)
        return self.attrs(inode, await self._lstat(path))

    @_fuse_errors
    async def readlink(self, inode: int, ctx: Any = None) -> bytes:
        st = await self._lstat(self.inodes.path(inode))
        if not st.linkname:
            raise pyfuse3.FUSEError(errno.EINVAL)
        return self._shown_link(st.linkname).encode()

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        pass  # numbers stay with their paths for the whole mount

    async def statfs(self, ctx: Any = None) -> pyfuse3.StatvfsData:
        s = pyfuse3.StatvfsData()
        try:
            v = os.statvfs(self.staging or tempfile.gettempdir())
        except OSError:
            return s
        s.f_bsize, s.f_frsize = v.f_bsize, v.f_frsize
        s.f_blocks, s.f_bfree, s.f_bavail = v.f_blocks, v.f_bfree, v.f_bavail
        s.f_files, s.f_ffree, s.f_favail = v.f_files, v.f_ffree, v.f_favail
        s.f_namemax = 255
        return s

    # -- folders -----------------------------------------------------------------------------------

    @_fuse_errors
    async def opendir(self, inode: int, ctx: Any) -> int:
        path = self.inodes.path(inode)
        entries = await self.view.readdir(path)
        prefix = "" if path == "/" else path
        for i, (name, st) in enumerate(entries):
            if st.is_directory() and not st.linkname:
                # a listing gives a plain folder Stat for a name it met entries under first: the
                # folder's own entry (its mode and times), if it has one, is what the kernel caches
                with contextlib.suppress(FileNotFoundError):
                    entries[i] = (name, await self.view.lstat(f"{prefix}/{name}"))
        fh = self._fh()
        self.dirs[fh] = [(name.encode(), st) for name, st in entries]
        self._dir_paths[fh] = path
        return fh

    @_fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        entries = self.dirs.get(fh)
        if entries is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        path = self._dir_paths[fh]
        for i in range(start_id, len(entries)):
            name, st = entries[i]
            child = ("" if path == "/" else path) + "/" + name.decode()
            if not pyfuse3.readdir_reply(token, name, self.attrs(self.inodes.of(child), st), i + 1):
                break

    async def releasedir(self, fh: int) -> None:
        self.dirs.pop(fh, None)
        self._dir_paths.pop(fh, None)

    @_fuse_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        self._check_writable()
        path = self._path(parent_inode, name)
        await self.view.mkdir(path, mode & 0o7777)
        return await self._entry(path)

    @_fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self._check_writable()
        path = self._path(parent_inode, name)
        await self.view.rmdir(path)
        self.inodes.removed(path)

    # -- links, removal, renames -------------------------------------------------------------------

    @_fuse_errors
    async def symlink(self, parent_inode: int, name: bytes, target: bytes, ctx: Any
                      ) -> pyfuse3.EntryAttributes:
        self._check_writable()
        path = self._path(parent_inode, name)
        text = os.fsdecode(target)
        if text == self.mountpoint or text.startswith(self.mountpoint + "/"):
            text = text[len(self.mountpoint):] or "/"  # a path in the mount: stored as the drive path
        await self.view.symlink(text, path)
        return await self._entry(path)

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any
                   ) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EPERM)  # a drive has no hard links (git then renames)

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any
                    ) -> pyfuse3.EntryAttributes:
        raise pyfuse3.FUSEError(errno.EPERM)  # no device files, fifos or sockets in a drive

    @_fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self._check_writable()
        path = self._path(parent_inode, name)
        ino = self.inodes.known(path)
        f = self.files.get(ino) if ino is not None else None
        if f is not None and f.base is None:
            f.base = await self._lstat(path)
        await self.view.unlink(path)
        if f is not None:
            f.unlinked = True
        self.inodes.removed(path)

    @_fuse_errors
    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: Any) -> None:
        self._check_writable()
        src = self._path(parent_inode_old, name_old)
        dst = self._path(parent_inode_new, name_new)
        if flags & pyfuse3.RENAME_EXCHANGE:
            raise pyfuse3.FUSEError(errno.EINVAL)
        if flags & pyfuse3.RENAME_NOREPLACE:
            try:
                await self._lstat(dst)
            except FileNotFoundError:
                pass
            else:
                raise pyfuse3.FUSEError(errno.EEXIST)
        for f in list(self.files.values()):  # staged bytes go in first, so the moved entry has them
            if f.dirty and _inside(src, f.path):
                await self._write_back(f)
        await self.view.rename(src, dst)
        replaced = self.inodes.known(dst)
        if replaced is not None and replaced in self.files and src != dst:
            self.files[replaced].unlinked = True
        for f in self.files.values():
            if not f.unlinked and _inside(src, f.path):
                f.path = dst + f.path[len(src):]
        self.inodes.moved(src, dst)

    # -- files -------------------------------------------------------------------------------------

    def _open_file(self, ino: int, path: str, base: Stat | None) -> OpenFile:
        f = self.files.get(ino)
        if f is None:
            f = self.files[ino] = OpenFile(path, base)
        return f

    def _keep_cache(self, ino: int, st: Stat) -> bool:
        """May the kernel keep the pages it cached of this file? Only if its content is the same as at
        the last open."""
        identity = (st.offset, st.blocks, st.size, st.byte_offset)
        same = self._seen.get(ino) == identity
        self._seen[ino] = identity
        return same

    @_fuse_errors
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        path = self.inodes.path(inode)
        writing = (flags & os.O_ACCMODE) != os.O_RDONLY or bool(flags & os.O_TRUNC)
        if writing:
            self._check_writable()
        f = self.files.get(inode)
        st = f.base if f is not None and f.unlinked and f.base is not None else await self._lstat(path)
        if st.is_directory() and not st.is_file():
            raise pyfuse3.FUSEError(errno.EISDIR)
        f = self._open_file(inode, path, st)
        f.handles += 1
        try:
            if flags & os.O_TRUNC and writing:
                async with f.lock:
                    await self._stage(f, empty=True)
                    if f.size:
                        f.staged.truncate(0)
                    f.dirty = True
                    f.mtime_ns = time.time_ns()
        except BaseException:
            await self._release_file(inode, f)
            raise
        fh = self._fh()
        h = self.handles[fh] = Handle(inode, f, writing)
        if st.size and not st.linkname:
            with contextlib.suppress(OSError):
                drive, source = await self.view.source(path)
                found = await drive.local_content(source)
                if found is not None:
                    h.local = LocalReader(found[1], found[0])
        if self.direct_io and not writing and f.staged is None:
            return pyfuse3.FileInfo(fh=fh, direct_io=True)
        keep = f.staged is None and self._keep_cache(inode, st)
        if f.staged is not None:
            self._seen.pop(inode, None)
        return pyfuse3.FileInfo(fh=fh, keep_cache=keep)

    @_fuse_errors
    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
                     ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        self._check_writable()
        path = self._path(parent_inode, name)
        st = await self.view.create(path, mode & 0o7777)
        ino = self.inodes.of(path)
        f = self._open_file(ino, path, st)
        f.handles += 1
        async with f.lock:
            await self._stage(f, empty=True)
        fh = self._fh()
        self.handles[fh] = Handle(ino, f, True)
        self._seen.pop(ino, None)
        return pyfuse3.FileInfo(fh=fh, keep_cache=False), self.attrs(ino, st)

    def _handle(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        return h

    @_fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        h = self._handle(fh)
        f = h.file
        if f.staged is not None:
            return os.pread(f.staged.fileno(), size, off)
        if h.local is not None:  # all here: chunks of whole blocks, read on from the last one
            async with h.turn:
                if f.staged is not None:
                    return os.pread(f.staged.fileno(), size, off)
                try:
                    return await h.local.read(off, size)  # type: ignore[return-value]
                except BlockNotAvailableError:
                    h.local = None  # blocks cleared since the open: read as from a replica
        # a range of a file not all here: only the blocks holding it are fetched
        with trio.fail_after(self.timeout) if self.timeout else contextlib.nullcontext():
            drive, path = await self.view.source(f.path)
            chunks = [c async for c in drive.create_read_stream(path, start=off, length=size)]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @_fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self._handle(fh)
        if not h.writable:
            raise pyfuse3.FUSEError(errno.EBADF)
        f = h.file
        async with f.lock:
            await self._stage(f)
            n = os.pwrite(f.staged.fileno(), buf, off)
            f.dirty = True
            f.mtime_ns = time.time_ns()
        return n

    @_fuse_errors
    async def flush(self, fh: int) -> None:
        h = self._handle(fh)
        if h.file.dirty:
            await self._write_back(h.file)

    @_fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        h = self._handle(fh)
        if h.file.dirty:
            await self._write_back(h.file)

    @_fuse_errors
    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is not None:
            await self._release_file(h.ino, h.file)

    async def _release_file(self, ino: int, f: OpenFile) -> None:
        f.handles -= 1
        if f.handles > 0:
            return
        try:
            if f.dirty:
                await self._write_back(f)
        finally:
            if f.handles <= 0:
                if self.files.get(ino) is f:
                    del self.files[ino]
                if f.staged is not None:
                    f.staged.close()
                    f.staged = None

    async def _stage(self, f: OpenFile, *, empty: bool = False) -> None:
        """Give ``f`` its temporary file holding the file's bytes (none if ``empty``); called with
        ``f.lock`` held."""
        if f.staged is not None:
            return
        staged = tempfile.TemporaryFile(dir=self.staging)
        try:
            if not empty and f.base is not None and f.base.size:
                with trio.fail_after(self.timeout) if self.timeout else contextlib.nullcontext():
                    drive, path = await self.view.source(f.path)
                    async for chunk in drive.create_read_stream(path):
                        staged.write(chunk)
                staged.flush()
        except BaseException:
            staged.close()
            raise
        f.staged = staged

    async def _write_back(self, f: OpenFile) -> None:
        """The staged bytes become the file's new version (appended to the content feed, one entry)."""
        async with f.lock:
            if not f.dirty or f.staged is None:
                return
            if f.unlinked:
                f.dirty = False
                return
            mode = (f.base.mode & 0o7777) if f.base is not None else 0o644
            fd = f.staged.fileno()
            with trio.CancelScope(shield=True):  # a write-back started is finished
                async with self.view.write_stream(f.path, f.base, mode) as w:
                    pos = 0
                    while True:
                        chunk = os.pread(fd, WRITE_BLOCK_SIZE, pos)
                        if not chunk:
                            break
                        await w.write(chunk)
                        pos += len(chunk)
                f.dirty = False
                f.base = await self.view.lstat(f.path)
            self.written_back += 1

    async def write_back_all(self) -> int:
        """Write back every file still open and written (at the end of a mount); returns how many."""
        n = 0
        for f in list(self.files.values()):
            if f.dirty and not f.unlinked:
                try:
                    await self._write_back(f)
                    n += 1
                except (OSError, pyfuse3.FUSEError) as e:
                    log.error("could not write back %s: %s", f.path, e)
        return n

    # -- following the drives ----------------------------------------------------------------------

    async def follow(self) -> None:
        """Tell the kernel to forget what it cached of each path a new version changes."""
        async with self.view.changes() as changes:
            async for paths in changes:
                await self._invalidate(paths)

    async def _invalidate(self, paths: set[str] | None) -> None:
        targets: list[tuple[str, int | None]]
        if paths is None:
            targets = [(p, ino) for p, ino in list(self.inodes._inos.items()) if p != "/"]
        else:
            targets = [(p, self.inodes.known(p)) for p in paths]
        for path, ino in targets:
            parent = self.inodes.known(_parent(path))
            if parent is not None:
                pyfuse3.invalidate_entry_async(parent, _name(path).encode(), ignore_enoent=True)
            if ino is not None and ino not in self.files:
                self._seen.pop(ino, None)
                try:
                    await trio.to_thread.run_sync(pyfuse3.invalidate_inode, ino, abandon_on_cancel=True)
                except OSError:
                    pass  # the kernel had nothing of it


def _inside(base: str, path: str) -> bool:
    return path == base or path.startswith(base + "/")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _name(path: str) -> str:
    return path.rsplit("/", 1)[1]
