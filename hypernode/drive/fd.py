"""File descriptors on a drive: ``open``/``read``/``write``/``ftruncate``/``close`` as hyperdrive 10 has
them. Reads are random access; writes go to the end of the file only (hyperdrive's content feed is
append-only): ``w`` starts the file anew, ``a`` continues it. A descriptor open for writing holds its
content feed's write lock until it closes, when the file's new entry is written.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hypernode.drive import paths
from hypernode.drive.errors import (
    BadFileDescriptor,
    FileNotFound,
    InvalidArgument,
    IsADirectory,
    PathAlreadyExists,
    PermissionDenied,
)
from hypernode.drive.stat import Stat

if TYPE_CHECKING:
    from hypernode.drive.hyperdrive import Hyperdrive
    from hypernode.feed import Feed

_FLAGS = {
    "r": os.O_RDONLY, "rs": os.O_RDONLY, "sr": os.O_RDONLY,
    "r+": os.O_RDWR, "rs+": os.O_RDWR, "sr+": os.O_RDWR,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "wx": os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL,
    "xw": os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_EXCL,
    "w+": os.O_RDWR | os.O_CREAT | os.O_TRUNC, "wx+": os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_EXCL,
    "xw+": os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_EXCL,
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "ax": os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL,
    "xa": os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL,
    "a+": os.O_RDWR | os.O_CREAT | os.O_APPEND, "ax+": os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_EXCL,
    "xa+": os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_EXCL,
}
_BUFFER = 64 * 1024


def parse_flags(flags: str | int) -> int:
    if isinstance(flags, int):
        return flags
    try:
        return _FLAGS[flags]
    except KeyError:
        raise InvalidArgument(f"unknown open flags {flags!r}") from None


class FileDescriptor:
    def __init__(self, drive: Hyperdrive, path: str, stat: Stat | None, readable: bool, writable: bool,
                 appending: bool) -> None:
        self.drive = drive
        self.path = path
        self.stat = stat
        self.readable = readable
        self.writable = writable
        self.appending = appending
        self.position = 0
        self._writing: tuple[Hyperdrive, str, Feed, int, int] | None = None
        self._buffer = bytearray()
        self._written = 0

    @classmethod
    async def open(cls, drive: Hyperdrive, path: str, flags: str | int) -> FileDescriptor:
        path = paths.normalize(path)
        f = parse_flags(flags)
        acc = f & os.O_ACCMODE
        writable = acc in (os.O_WRONLY, os.O_RDWR)
        readable = acc in (os.O_RDONLY, os.O_RDWR)
        appending, truncating = bool(f & os.O_APPEND), bool(f & os.O_TRUNC)
        creating, exclusive = bool(f & os.O_CREAT), bool(f & os.O_EXCL)
        try:
            st: Stat | None = await drive.stat(path)
        except FileNotFound:
            st = None
        if st is not None and exclusive:
            raise PathAlreadyExists(path)
        if st is None and not (writable and creating):
            raise FileNotFound(path)
        if st is not None and st.is_directory():
            raise IsADirectory(path)
        if writable and not drive.writable:
            raise PermissionDenied(f"cannot open {path} for writing: the drive is not writable", path)
        desc = cls(drive, path, st, readable, writable, appending)
        if writable:
            if truncating or st is None:
                desc.stat = await drive.create(path) if st is None else await drive.truncate(path, 0)
            if appending:
                desc.position = desc.stat.size if desc.stat else 0
        return desc

    async def read(self, length: int, position: int | None = None) -> bytes:
        if not self.readable:
            raise BadFileDescriptor("file descriptor not open for reading", self.path)
        if length < 0:
            raise InvalidArgument("a length is not negative", self.path)
        pos = self.position if position is None else position
        if self._writing is not None:
            raise BadFileDescriptor("cannot read while a write is in progress on this descriptor", self.path)
        chunks = [c async for c in self.drive.create_read_stream(self.path, start=pos, length=length)] \
            if length else []
        data = b"".join(chunks)
        if position is None:
            self.position += len(data)
        return data

    async def write(self, data: bytes, position: int | None = None) -> int:
        if not self.writable:
            raise BadFileDescriptor("file descriptor not open for writing", self.path)
        if position is not None and position != self.position:
            raise BadFileDescriptor("random-access writes are not supported (content feeds are "
                                    "append-only)", self.path)
        if self._writing is None:
            await self._start_writing()
        self._buffer += data
        self.position += len(data)
        self._written += len(data)
        self.drive.writing_sizes[self.path] = self._written
        if len(self._buffer) >= _BUFFER:
            await self._flush()
        return len(data)

    async def _start_writing(self) -> None:
        drive, inner, _ = await self.drive._prepare_write(self.path)
        content = await drive.content_feed()
        await drive._content_lock.acquire()
        try:
            offset, byte_offset = content.length, content.byte_length
            self._writing = (drive, inner, content, offset, byte_offset)
            if self.appending and self.stat is not None and self.stat.size:
                # the file's existing bytes first: a file's blocks are contiguous in the content feed
                batch: list[bytes] = []
                async for chunk in drive.create_read_stream(inner):
                    batch.append(chunk)
                    if len(batch) >= 16:
                        await content.append(batch)
                        batch = []
                if batch:
                    await content.append(batch)
                self._written = self.stat.size
        except BaseException:
            self._writing = None
            drive._content_lock.release()
            raise

    async def _flush(self) -> None:
        if self._buffer and self._writing is not None:
            await self._writing[2].append(bytes(self._buffer))
            self._buffer.clear()

    async def truncate(self, size: int) -> None:
        if not self.writable:
            raise BadFileDescriptor("file descriptor is not writable", self.path)
        if self._writing is not None:
            raise InvalidArgument("cannot truncate during a write on this descriptor", self.path)
        self.stat = await self.drive.truncate(self.path, size)
        self.position = min(self.position, size)

    async def close(self) -> None:
        if self._writing is None:
            return
        drive, inner, content, offset, byte_offset = self._writing
        try:
            await self._flush()
            old = self.stat
            st = drive._new_file_stat(offset, byte_offset, content,
                                      mode=(old.mode & 0o7777) if old else None,
                                      uid=old.uid if old else 0, gid=old.gid if old else 0,
                                      metadata=old.metadata if old else None)
            await drive._put_stat(inner, st)
            self.stat = st
        finally:
            self._writing = None
            self.drive.writing_sizes.pop(self.path, None)
            drive._content_lock.release()
