"""What a mount shows: one drive, or the merged view of several, behind one interface.

:class:`View` is the part of :class:`~hypernode.drive.Hyperdrive` and
:class:`~hypernode.multi.MultiDrive` the FUSE operations need (their public APIs only), so that
:mod:`hypernode.mount.fs` does not care which it shows. :func:`view_of` picks the implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager as AsyncContextManager
from typing import Any

import trio

from hypernode.drive import Hyperdrive, Stat
from hypernode.multi import CLOCK_KEY, MultiDrive


class View:
    """A tree of files, folders and symlinks at drive paths (``/a/b``)."""

    key: bytes

    @property
    def writable(self) -> bool:
        raise NotImplementedError

    async def lstat(self, path: str) -> Stat:
        raise NotImplementedError

    async def readdir(self, path: str) -> list[tuple[str, Stat]]:
        raise NotImplementedError

    async def source(self, path: str) -> tuple[Hyperdrive, str]:
        """The drive whose content feed holds the bytes of the file at ``path``, and the path there."""
        raise NotImplementedError

    async def create(self, path: str, mode: int) -> Stat:
        raise NotImplementedError

    def write_stream(self, path: str, base: Stat | None, mode: int) -> AsyncContextManager[Any]:
        """``async with view.write_stream(path, base, mode) as w: await w.write(chunk)``: the file's
        new bytes, its entry put when the block ends (keeping ``base``'s owner and metadata)."""
        raise NotImplementedError

    async def mkdir(self, path: str, mode: int) -> Stat:
        raise NotImplementedError

    async def symlink(self, target: str, path: str) -> Stat:
        raise NotImplementedError

    async def unlink(self, path: str) -> None:
        raise NotImplementedError

    async def rmdir(self, path: str) -> None:
        raise NotImplementedError

    async def rename(self, src: str, dst: str) -> None:
        raise NotImplementedError

    async def truncate(self, path: str, size: int) -> None:
        raise NotImplementedError

    async def set_attributes(self, path: str, *, mode: int | None, uid: int | None, gid: int | None,
                             mtime: int | None) -> None:
        raise NotImplementedError

    def changes(self) -> AsyncContextManager[AsyncIterator[set[str] | None]]:
        """``async with view.changes() as changes: async for paths in changes``: the paths changed by
        each new version of any drive (None: some change whose paths are not known), from now on.
        Watching keeps the drives up to date with their peers (their new versions are fetched)."""
        raise NotImplementedError


class DriveView(View):
    """One drive."""

    def __init__(self, drive: Hyperdrive) -> None:
        self.drive = drive
        self.key = drive.key

    @property
    def writable(self) -> bool:
        return self.drive.writable

    async def lstat(self, path: str) -> Stat:
        return await self.drive.lstat(path)

    async def readdir(self, path: str) -> list[tuple[str, Stat]]:
        return list(await self.drive.readdir(path, stats=True))

    async def source(self, path: str) -> tuple[Hyperdrive, str]:
        return self.drive, path

    async def create(self, path: str, mode: int) -> Stat:
        return await self.drive.create(path, mode=mode)

    def write_stream(self, path: str, base: Stat | None, mode: int) -> AsyncContextManager[Any]:
        opts: dict[str, Any] = {"mode": mode}
        if base is not None:
            opts.update(uid=base.uid, gid=base.gid, metadata=dict(base.metadata))
        return self.drive.create_write_stream(path, **opts)

    async def mkdir(self, path: str, mode: int) -> Stat:
        return await self.drive.mkdir(path, mode=mode)

    async def symlink(self, target: str, path: str) -> Stat:
        return await self.drive.symlink(target, path)

    async def unlink(self, path: str) -> None:
        await self.drive.unlink(path)

    async def rmdir(self, path: str) -> None:
        await self.drive.rmdir(path)

    async def rename(self, src: str, dst: str) -> None:
        await self.drive.rename(src, dst)

    async def truncate(self, path: str, size: int) -> None:
        await self.drive.truncate(path, size)

    async def set_attributes(self, path: str, *, mode: int | None, uid: int | None, gid: int | None,
                             mtime: int | None) -> None:
        await self.drive.set_attributes(path, mode=mode, uid=uid, gid=gid, mtime=mtime)

    @contextlib.asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[set[str] | None]]:
        async with _watch_mounts([self.drive]) as events:
            yield events


class MultiView(View):
    """The merged view of several drives (writes go to its writer, the first writable drive)."""

    def __init__(self, multi: MultiDrive) -> None:
        self.multi = multi
        self.key = multi.key

    @property
    def writable(self) -> bool:
        return self.multi.writable

    async def lstat(self, path: str) -> Stat:
        return await self.multi.lstat(path)

    async def readdir(self, path: str) -> list[tuple[str, Stat]]:
        return [(e.name, e.stat) for e in await self.multi.readdir(path, stats=True)]

    async def source(self, path: str) -> tuple[Hyperdrive, str]:
        return await self.multi.resolve_latest(path), path

    async def create(self, path: str, mode: int) -> Stat:
        async with self.multi.create_write_stream(path, mode=mode):
            pass  # an empty file, with no content block
        return await self.multi.lstat(path)

    def write_stream(self, path: str, base: Stat | None, mode: int) -> AsyncContextManager[Any]:
        opts: dict[str, Any] = {"mode": mode}
        if base is not None:
            opts.update(uid=base.uid, gid=base.gid,
                        metadata={k: v for k, v in base.metadata.items() if k != CLOCK_KEY})
        return self.multi.create_write_stream(path, **opts)

    async def mkdir(self, path: str, mode: int) -> Stat:
        return await self.multi.mkdir(path, mode=mode)

    async def symlink(self, target: str, path: str) -> Stat:
        return await self.multi.symlink(target, path)

    async def unlink(self, path: str) -> None:
        await self.multi.unlink(path)

    async def rmdir(self, path: str) -> None:
        await self.multi.rmdir(path)

    async def rename(self, src: str, dst: str) -> None:
        await self.multi.rename(src, dst)

    async def truncate(self, path: str, size: int) -> None:
        await self.multi.truncate(path, size)

    async def set_attributes(self, path: str, *, mode: int | None, uid: int | None, gid: int | None,
                             mtime: int | None) -> None:
        await self.multi.set_attributes(path, mode=mode, uid=uid, gid=gid, mtime=mtime)

    @contextlib.asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[set[str] | None]]:
        # (a tombstone is a hidden entry: a version that only writes one lists no path: None)
        async with _watch_mounts(self.multi.drives) as events:
            yield events


@contextlib.asynccontextmanager
async def _watch_mounts(drives: list[Hyperdrive]) -> AsyncIterator[AsyncIterator[set[str] | None]]:
    """The paths each new version of ``drives`` or of a drive mounted in them changes (shown under
    the mount's path). Each is watched, which keeps it up to date with its peers; mounts made later
    are watched from when the version that made them is seen."""
    send, receive = trio.open_memory_channel[set[str] | None](64)
    watched: set[tuple[bytes, str]] = set()

    async with trio.open_nursery() as nursery:

        async def watch(drive: Hyperdrive, at: str, top: bool) -> None:
            version = drive.version
            async with drive.watch("/") as changes:
                async for _ in changes:
                    now = drive.version
                    changed = {d.path async for d in drive.diff(version)} if now > version else set()
                    version = now
                    shown = {(at + p if at != "/" else p) for p in changed}
                    if top:
                        await find_mounts(drive)
                    await send.send(shown or None)

        async def find_mounts(drive: Hyperdrive) -> None:
            try:
                mounts = await drive.get_all_mounts()
            except OSError:
                return
            for at, mounted in mounts.items():
                if at != "/" and (mounted.key, at) not in watched:
                    watched.add((mounted.key, at))
                    nursery.start_soon(watch, mounted, at, False)

        for d in drives:
            nursery.start_soon(watch, d, "/", True)
            await find_mounts(d)

        async def events() -> AsyncIterator[set[str] | None]:
            async for item in receive:
                yield item

        try:
            yield events()
        finally:
            nursery.cancel_scope.cancel()


def view_of(drives: Hyperdrive | MultiDrive) -> View:
    return MultiView(drives) if isinstance(drives, MultiDrive) else DriveView(drives)
