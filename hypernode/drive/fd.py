"""File descriptors on a drive: ``open``/``read``/``write``/``ftruncate``/``close`` as hyperdrive 10 has
them. Reads are random access; writes go to the end of the file only (hyperdrive's content feed is
append-only): ``w`` starts the file anew, ``a`` continues it, ``r+`` replaces it with what is written.

A descriptor holds no lock between calls: it may be opened, written and closed from different tasks,
and several descriptors may write different files at once (calls made on one descriptor by several
tasks at the same moment take turns). Its bytes go through a
:class:`~hypernode.drive.content.FileWrite` (gathered into blocks of about 64 KiB, as hyperdrive's
descriptors write them), and the file's new entry is put when the descriptor is closed: until then
the file keeps the entry it had (``stat`` reports the size written so far, as hyperdrive does). A
descriptor never closed (its task cancelled, its drive closed first) changes nothing.

This module needs only the public side of a drive (:class:`DriveFiles`); it does not import
:mod:`hypernode.drive.hyperdrive`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any, Protocol

import trio

from hypernode.drive import paths
from hypernode.drive.content import FileWrite
from hypernode.drive.errors import (
    BadFileDescriptor,
    FileNotFound,
    InvalidArgument,
    IsADirectory,
    PathAlreadyExists,
    PermissionDenied,
)
from hypernode.drive.stat import Stat

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
FD_BLOCK = 64 * 1024  # hyperdrive's descriptors batch writes into chunks of this size


def parse_flags(flags: str | int) -> int:
    if isinstance(flags, int):
        return flags
    try:
        return _FLAGS[flags]
    except KeyError:
        raise InvalidArgument(f"unknown open flags {flags!r}") from None


class DriveFiles(Protocol):
    """What a descriptor needs from its drive (the public API of
    :class:`~hypernode.drive.hyperdrive.Hyperdrive`)."""

    @property
    def writable(self) -> bool: ...

    async def stat(self, path: str) -> Stat: ...

    async def create(self, path: str) -> Stat: ...

    async def truncate(self, path: str, size: int = 0) -> Stat: ...

    def create_read_stream(self, path: str, *, start: int = 0, end: int | None = None,
                           length: int | None = None) -> AsyncIterator[bytes]: ...

    async def begin_write(self, path: str, *, append_to: Stat | None = None, coalesce: int = 0,
                          track_size: bool = False, **fields: Any) -> FileWrite: ...


class FileDescriptor:
    def __init__(self, drive: DriveFiles, path: str, stat: Stat | None, readable: bool, writable: bool,
                 appending: bool) -> None:
        self.drive = drive
        self.path = path
        self.stat = stat
        self.readable = readable
        self.writable = writable
        self.appending = appending
        self.position = 0
        self._write: FileWrite | None = None
        # calls on one descriptor from several tasks at once take turns (held within a call only)
        self._turn = trio.Lock()

    @classmethod
    async def open(cls, drive: DriveFiles, path: str, flags: str | int) -> FileDescriptor:
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
        async with self._turn:
            return await self._read(length, position)

    async def _read(self, length: int, position: int | None) -> bytes:
        if not self.readable:
            raise BadFileDescriptor("file descriptor not open for reading", self.path)
        if length < 0:
            raise InvalidArgument("a length is not negative", self.path)
        pos = self.position if position is None else position
        if self._write is not None:
            raise BadFileDescriptor("cannot read while a write is in progress on this descriptor", self.path)
        chunks = [c async for c in self.drive.create_read_stream(self.path, start=pos, length=length)] \
            if length else []
        data = b"".join(chunks)
        if position is None:
            self.position += len(data)
        return data

    async def write(self, data: bytes, position: int | None = None) -> int:
        """Append ``data`` (a cancelled write appends none of it)."""
        async with self._turn:
            return await self._append(data, position)

    async def _append(self, data: bytes, position: int | None) -> int:
        if not self.writable:
            raise BadFileDescriptor("file descriptor not open for writing", self.path)
        if position is not None and position != self.position:
            raise BadFileDescriptor("random-access writes are not supported (content feeds are "
                                    "append-only)", self.path)
        if self._write is None:
            old = self.stat
            self._write = await self.drive.begin_write(
                self.path, append_to=old if self.appending else None, coalesce=FD_BLOCK, track_size=True,
                mode=(old.mode & 0o7777) if old else None, uid=old.uid if old else 0,
                gid=old.gid if old else 0, metadata=old.metadata if old else None)
        await self._write.write(data)
        self.position += len(data)
        return len(data)

    async def truncate(self, size: int) -> None:
        async with self._turn:
            await self._truncate(size)

    async def _truncate(self, size: int) -> None:
        if not self.writable:
            raise BadFileDescriptor("file descriptor is not writable", self.path)
        if self._write is not None:
            raise InvalidArgument("cannot truncate during a write on this descriptor", self.path)
        self.stat = await self.drive.truncate(self.path, size)
        self.position = min(self.position, size)

    async def close(self) -> None:
        """Put the file's new entry (if anything was written). A close that fails or is cancelled
        leaves the file as it was; the descriptor is finished either way."""
        async with self._turn:
            write, self._write = self._write, None
            if write is not None:
                self.stat = await write.commit()

    def discard(self) -> None:
        """Drop the descriptor without changing the file (what it wrote is given up)."""
        write, self._write = self._write, None
        if write is not None:
            write.discard()
