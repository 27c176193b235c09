"""Folders on disk and drives: import a folder into a drive and keep it in sync (``hypernode share``),
and export a drive into a folder (``hypernode clone``).

Both stream file contents in chunks, so memory stays bounded whatever the file sizes. An import
compares each file's size and mtime with the drive entry and writes only what changed; files and folders
gone from the folder are removed from the drive. An export writes each file to a temporary name and
renames it into place, and never writes through a symlink on disk: a drive's symlinks are recreated only
when their targets stay inside the folder, and no file is written below one.
"""

from __future__ import annotations

import contextlib
import os
import stat as _stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from hypernode.drive import Hyperdrive, Stat, paths

CHUNK = 1 << 20


@dataclass
class Entry:
    """What a scan of the folder saw at one relative path."""

    kind: str  # "file" | "dir"
    size: int = 0
    mtime_ms: int = 0


@dataclass
class SyncReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.written or self.removed or self.folders)


def scan(folder: Path) -> dict[str, Entry]:
    """Every file and folder under ``folder`` by drive path (``/a/b``); symlinks and special files are
    skipped (a share publishes the folder's own contents)."""
    out: dict[str, Entry] = {}
    root = str(folder)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        base = "" if rel_dir == "." else "/" + rel_dir.replace(os.sep, "/")
        keep = []
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if os.path.islink(full):
                continue
            keep.append(d)
            out[f"{base}/{d}"] = Entry("dir")
        dirnames[:] = keep
        for name in filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
            except FileNotFoundError:
                continue
            if not _stat.S_ISREG(st.st_mode):
                continue
            out[f"{base}/{name}"] = Entry("file", st.st_size, st.st_mtime_ns // 1_000_000)
    return out


async def drive_entries(drive: Hyperdrive) -> dict[str, Stat]:
    """Every entry of the drive (mounts not entered) by path."""
    out: dict[str, Stat] = {}
    try:
        items = await drive.readdir("/", stats=True, recursive=True)
    except FileNotFoundError:
        return out
    for name, st in items:
        out["/" + name] = st
    return out


async def import_folder(drive: Hyperdrive, folder: Path, *, known: dict[str, Entry] | None = None
                        ) -> tuple[SyncReport, dict[str, Entry]]:
    """Make the drive hold what ``folder`` holds. ``known`` is the previous scan (when watching): only
    the differences from it are applied; without it, every file is compared with its drive entry.
    Returns what changed and the new scan."""
    now = await trio.to_thread.run_sync(scan, folder)
    report = SyncReport()
    if known is None:
        in_drive = await drive_entries(drive)
        changed = [p for p, e in now.items() if _differs(e, in_drive.get(p))]
        gone = [p for p in in_drive if p not in now and not _under_any_mount(p, in_drive)]
    else:
        changed = [p for p, e in now.items() if known.get(p) != e]
        gone = [p for p in known if p not in now]
    for path in sorted(changed, key=lambda p: p.count("/")):
        e = now[path]
        if e.kind == "dir":
            with contextlib.suppress(FileExistsError):
                await drive.mkdir(path)
            report.folders.append(path)
        else:
            await _write_file(drive, folder, path, e)
            report.written.append(path)
    for path in sorted(gone, key=lambda p: -p.count("/")):  # deepest first: folders end up empty
        try:
            st = await drive.lstat(path)
        except FileNotFoundError:
            continue
        if st.is_directory() and not st.mount:
            with contextlib.suppress(FileNotFoundError, OSError):
                await drive.rmdir(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                await drive.unlink(path)
        report.removed.append(path)
    return report, now


def _differs(e: Entry, st: Stat | None) -> bool:
    if st is None:
        return True
    if e.kind == "dir":
        return not st.is_directory()
    return not st.is_file() or st.size != e.size or st.mtime != e.mtime_ms


def _under_any_mount(path: str, entries: dict[str, Stat]) -> bool:
    parent = paths.dirname(path)
    while parent != "/":
        st = entries.get(parent)
        if st is not None and st.mount is not None:
            return True
        parent = paths.dirname(parent)
    return False


async def _write_file(drive: Hyperdrive, folder: Path, path: str, e: Entry) -> None:
    full = folder / path.lstrip("/")
    f = await trio.open_file(full, "rb")
    async with f:
        async with drive.create_write_stream(path, mtime=e.mtime_ms) as w:
            while chunk := await f.read(CHUNK):
                await w.write(chunk)


async def watch_folder(drive: Hyperdrive, folder: Path, *, interval: float = 1.0,
                       on_change: Callable[[SyncReport], None] | None = None,
                       known: dict[str, Entry] | None = None) -> None:
    """Import ``folder`` now (or, given the scan ``known`` of an import just made, go on from it), then
    every ``interval`` seconds apply what changed in it, forever."""
    if known is None:
        report, known = await import_folder(drive, folder)
        if on_change is not None and report:
            on_change(report)
    while True:
        await trio.sleep(interval)
        report, known = await import_folder(drive, folder, known=known)
        if on_change is not None and report:
            on_change(report)


# -- export -----------------------------------------------------------------------------------------


@dataclass
class Progress:
    """How far an export has got (what ``hypernode clone`` prints)."""

    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.bytes_done / elapsed if elapsed > 0 else 0.0


async def export_drive(drive: Hyperdrive, folder: Path, *, progress: Progress | None = None,
                       on_progress: Callable[[Progress], None] | None = None,
                       delete_extra: bool = False) -> Progress:
    """Write every file, folder and (safe) symlink of the drive under ``folder``; files already there
    with the same size and mtime are kept. ``delete_extra`` removes local files the drive lacks."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = await drive_entries(drive)
    progress = progress or Progress()
    files = {p: st for p, st in entries.items() if st.is_file() and not st.linkname}
    progress.files_total = len(files)
    progress.bytes_total = sum(st.size for st in files.values())
    for path, st in sorted(entries.items()):
        if st.is_directory() and not st.linkname:
            target = _local(folder, path)
            if target is not None:
                target.mkdir(parents=True, exist_ok=True)
    for path, st in sorted(files.items()):
        target = _local(folder, path)
        if target is not None and not _same(target, st):
            await _export_file(drive, path, st, target, progress, on_progress)
        else:
            progress.bytes_done += st.size
        progress.files_done += 1
        if on_progress is not None:
            on_progress(progress)
    for path, st in sorted(entries.items()):
        if st.linkname:
            _export_link(folder, path, st.linkname)
    if delete_extra:
        local = await trio.to_thread.run_sync(scan, folder)
        for path in sorted(local, key=lambda p: -p.count("/")):
            if path not in entries:
                target = folder / path.lstrip("/")
                with contextlib.suppress(OSError):
                    target.rmdir() if local[path].kind == "dir" else target.unlink()
    return progress


def _local(folder: Path, path: str) -> Path | None:
    """Where a drive path goes under ``folder``; None if an existing part of the way is a symlink."""
    rel = path.lstrip("/")
    cur = folder
    for part in rel.split("/")[:-1]:
        cur = cur / part
        if cur.is_symlink():
            return None
    return folder / rel


def _same(target: Path, st: Stat) -> bool:
    try:
        local = target.lstat()
    except FileNotFoundError:
        return False
    return (_stat.S_ISREG(local.st_mode) and local.st_size == st.size
            and local.st_mtime_ns // 1_000_000 == st.mtime)


async def _export_file(drive: Hyperdrive, path: str, st: Stat, target: Path, progress: Progress,
                       on_progress: Callable[[Progress], None] | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.hypernode-tmp")
    f = await trio.open_file(tmp, "wb")
    try:
        async with f:
            last = time.monotonic()
            async for chunk in drive.create_read_stream(path):
                await f.write(chunk)
                progress.bytes_done += len(chunk)
                if on_progress is not None and time.monotonic() - last > 0.2:
                    last = time.monotonic()
                    on_progress(progress)
        os.utime(tmp, ns=(st.mtime * 1_000_000, st.mtime * 1_000_000))
        if target.is_symlink() or target.is_dir():
            raise IsADirectoryError(f"{target} is in the way")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _export_link(folder: Path, path: str, linkname: str) -> None:
    target = _local(folder, path)
    if target is None:
        return
    resolved = paths.resolve_link(path, linkname)  # lexical, never above the drive's root
    rel = os.path.relpath(folder / resolved.lstrip("/"), target.parent)
    with contextlib.suppress(FileNotFoundError):
        if target.is_symlink() or target.is_file():
            target.unlink()
    with contextlib.suppress(FileExistsError):
        os.symlink(rel, target)
