"""Folders on disk and drives: import a folder into a drive and keep it in sync (``hypernode share``),
and export a drive into a folder (``hypernode clone``).

Both stream file contents in chunks, so memory stays bounded whatever the file sizes.

**Import** (:func:`import_folder`, :func:`watch_folder`) compares each file's size, mtime and
permission bits with the drive entry and writes only what changed; entries gone from the folder are
removed from the drive. Symlinks are kept as drive symlinks when they point inside the folder (an
absolute target inside it becomes a drive-absolute path); symlinks pointing outside the folder, and
sockets, fifos and devices, are not shared (:attr:`Scan.outside` names the links). The executable bit
travels in the entry's mode. A folder that vanished, became unreadable, or was emptied all at once
(it had two entries or more, and now has none) is not published: :class:`FolderUnavailable` is raised
(by :func:`import_folder`; :func:`watch_folder` reports it and keeps polling, and publishes again
once the folder is back). A subfolder or file that cannot be read leaves its drive entries as they
are (:attr:`Scan.unreadable`).

**Export** (:func:`export_drive`) never deletes or overwrites what it did not write. What it writes is
recorded in a manifest beside the data, ``FOLDER/.hypernode-clone.json`` (:class:`Manifest`): the
drive's key and version, and for each path written its kind, and for a file its size, mtime, ctime,
inode and sha256 (a file whose stat differs is checked by its hash, so a folder moved or copied
elsewhere is still recognised). Before a file is written its path is marked *pending* in the manifest,
and a file is written to a temporary name and renamed into place: a clone stopped at any point (Ctrl-C,
SIGTERM, a kill) is resumed by exporting again. The rules:

- a path that is absent locally is written;
- a file the clone wrote and nobody changed since is updated when the drive changes it, and removed
  when the drive removes it;
- a file the clone wrote but that was changed here since is never removed; it is overwritten only with
  ``force`` (otherwise it is kept and named);
- a local entry the clone did not write is never removed; a regular file is overwritten only with
  ``force``; a folder, symlink or special file the clone did not write is never replaced, not even with
  ``force`` (the drive paths it blocks are named); nothing is ever written through a symlink on disk;
- folders the clone created are removed when the drive removes them and they are empty.

A drive's own conflicts are named, not hidden: a path that is a file while entries lie below it (JS
hyperdrive 10 allows both) is placed as a folder and the file is named; names that cannot be local file
names (a NUL, ``.``, ``..`` or an empty segment, written by a peer) are named. A backslash is a valid
file name here and is placed. What could not be placed raises :class:`ExportIncomplete` after
everything else is written (a drive conflict does not with ``skip_conflicts``). Symlinks are recreated
as relative links that stay inside the folder; the executable bit is restored (other permission bits
follow the umask: a peer does not choose who may write your files).

:func:`watchdog` and :func:`download_history` serve ``hypernode clone --timeout`` (a limit on how long
nothing arrives, not on the whole transfer) and ``--history``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import stat as _stat
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import trio

from hypernode.drive import Hyperdrive, ReadStream, Stat, paths
from hypernode.drive.errors import InvalidArgument
from hypernode.errors import HypernodeError
from hypernode.feed import Feed
from hypernode.replication import Want, replicator_of

log = logging.getLogger(__name__)

CHUNK = 1 << 20
MANIFEST = ".hypernode-clone.json"
TMP_SUFFIX = ".hypernode-tmp"


class FolderUnavailable(HypernodeError):
    """The shared folder vanished, cannot be read, or was emptied all at once: nothing was published."""


class CloneRefused(HypernodeError):
    """The target of a clone is not a folder the clone may write into (nothing was touched)."""


class Stalled(HypernodeError):
    """Nothing arrived for the whole timeout (see :func:`watchdog`)."""


@dataclass
class Unplaced:
    """A drive path the export did not place, and why. ``conflict``: the drive itself makes the path
    impossible here (a file and a folder at once, a name no file can have); otherwise a local entry
    the clone may not replace is in the way."""

    path: str
    why: str
    conflict: bool = False
    force_places: bool = False  # a file that ``force`` would overwrite is in the way


class ExportIncomplete(HypernodeError):
    """Some drive paths could not be placed in the folder; everything else was written."""

    def __init__(self, folder: Path, progress: Progress) -> None:
        self.folder = folder
        self.progress = progress
        self.unplaced = list(progress.unplaced)
        super().__init__(f"{len(self.unplaced)} drive path(s) not placed in {folder}: "
                         f"{few([f'{u.path} ({u.why})' for u in self.unplaced])}")


def few(names: list[str], n: int = 3) -> str:
    """``a, b, c and 4 more``: a few names for a one-line message."""
    shown = ", ".join(names[:n])
    return shown + (f" and {len(names) - n} more" if len(names) > n else "")


def shown(path: str) -> str:
    """A drive path printable on one line (NUL and control characters escaped)."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in path)


# -- import -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """What a scan of the folder saw at one relative path."""

    kind: str  # "file" | "dir" | "symlink"
    size: int = 0
    mtime_ms: int = 0
    mode: int = 0  # a file's permission bits (the executable bit travels)
    target: str = ""  # a symlink's target, as the drive stores it


@dataclass
class Scan:
    """A folder as one scan saw it: ``entries`` by drive path; ``unreadable`` paths (path -> why)
    whose drive entries are left as they are; ``outside`` symlinks that point outside the folder (not
    shared)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    outside: list[str] = field(default_factory=list)

    def covers(self, path: str) -> bool:
        """Is ``path`` known to this scan (not inside, or at, an unreadable path)?"""
        return not any(paths.is_inside(u, path) for u in self.unreadable)


@dataclass
class SyncReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    scan: Scan = field(default_factory=Scan)

    def __bool__(self) -> bool:
        return bool(self.written or self.removed or self.folders)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def scan(folder: Path) -> Scan:
    """Every file, folder and symlink under ``folder`` by drive path (``/a/b``). Raises
    :class:`FolderUnavailable` if the folder itself is gone, not a folder, cannot be read, or was
    replaced while being read."""
    root = os.fspath(folder)
    try:
        before = os.stat(root)
    except FileNotFoundError:
        raise FolderUnavailable(f"{folder} is gone (moved or deleted)") from None
    except OSError as e:
        raise FolderUnavailable(f"{folder} cannot be read: {e.strerror}") from None
    if not _stat.S_ISDIR(before.st_mode):
        raise FolderUnavailable(f"{folder} is not a folder any more")
    out = Scan()
    real_root = os.path.realpath(root)
    abs_root = os.path.abspath(root)
    stack: list[tuple[str, str]] = [(root, "")]
    while stack:
        dirpath, base = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                items = list(it)
        except FileNotFoundError:
            if not base:
                raise FolderUnavailable(f"{folder} is gone (moved or deleted)") from None
            continue  # removed while we scanned: the next scan sees it gone
        except OSError as e:
            if not base:
                raise FolderUnavailable(f"{folder} cannot be read: {e.strerror}") from None
            out.unreadable[base] = e.strerror or str(e)
            continue
        for de in items:
            path = f"{base}/{de.name}"
            if not base and (de.name == MANIFEST):
                continue  # a clone's manifest is the clone's, not the folder's content
            if de.name.endswith(TMP_SUFFIX) and de.name.startswith("."):
                continue  # a file a clone is writing
            try:
                if de.is_symlink():
                    target = _link_target(os.readlink(de.path), path, real_root, abs_root)
                    if target is None:
                        out.outside.append(path)
                    else:
                        out.entries[path] = Entry("symlink", target=target)
                elif de.is_dir(follow_symlinks=False):
                    out.entries[path] = Entry("dir")
                    stack.append((de.path, path))
                elif de.is_file(follow_symlinks=False):
                    st = de.stat(follow_symlinks=False)
                    out.entries[path] = Entry("file", st.st_size, st.st_mtime_ns // 1_000_000,
                                              _stat.S_IMODE(st.st_mode) & 0o777)
            except FileNotFoundError:
                continue
            except OSError as e:
                out.unreadable[path] = e.strerror or str(e)
    try:
        after = os.stat(root)
    except OSError:
        raise FolderUnavailable(f"{folder} is gone (moved or deleted)") from None
    if _identity(after) != _identity(before):
        raise FolderUnavailable(f"{folder} was replaced while it was being read")
    return out


def _link_target(target: str, path: str, real_root: str, abs_root: str) -> str | None:
    """The drive symlink for a link at drive path ``path`` pointing at ``target`` on disk, or None if
    it points outside the folder. Relative targets stay relative; absolute ones inside the folder
    become drive-absolute."""
    if os.path.isabs(target):
        t = os.path.normpath(target)
        for root in (abs_root, real_root):
            if t == root:
                return "/"
            if t.startswith(root.rstrip(os.sep) + os.sep):
                return "/" + os.path.relpath(t, root).replace(os.sep, "/")
        return None
    depth = len([s for s in paths.dirname(path).split("/") if s])
    for seg in target.split(os.sep):
        if seg == "..":
            depth -= 1
            if depth < 0:
                return None
        elif seg not in ("", "."):
            depth += 1
    return target.replace(os.sep, "/") if "\x00" not in target else None


async def drive_entries(drive: Hyperdrive) -> dict[str, Stat]:
    """Every entry of the drive (mounts entered) by path."""
    out: dict[str, Stat] = {}
    try:
        items = await drive.readdir("/", stats=True, recursive=True)
    except FileNotFoundError:
        return out
    for name, st in items:
        out["/" + name] = st
    return out


async def import_folder(drive: Hyperdrive, folder: Path, *, known: Scan | None = None,
                        allow_empty: bool = False) -> tuple[SyncReport, Scan]:
    """Make the drive hold what ``folder`` holds. ``known`` is the previous scan (when watching): only
    the differences from it are applied; without it, every entry is compared with the drive's.
    Returns what changed and the new scan.

    Raises :class:`FolderUnavailable`, publishing nothing, when the folder is gone or unreadable, or
    holds nothing while it (or, without ``known``, the drive) held two entries or more, unless
    ``allow_empty``."""
    now = await trio.to_thread.run_sync(scan, folder)
    report = SyncReport(scan=now)
    in_drive: dict[str, Stat] = {}
    if known is None:
        in_drive = await drive_entries(drive)
        before = {p for p in in_drive if not _under_any_mount(p, in_drive)}
        changed = [p for p, e in now.entries.items() if _differs(e, in_drive.get(p))]
        gone = [p for p in before if p not in now.entries and now.covers(p)]
    else:
        before = set(known.entries)
        changed = [p for p, e in now.entries.items() if known.entries.get(p) != e]
        gone = [p for p in known.entries if p not in now.entries and now.covers(p)]
    if not now.entries and len(before) >= 2 and not allow_empty:
        raise FolderUnavailable(f"{folder} was emptied all at once ({len(before)} entries gone): not "
                                "publishing that (delete entries one at a time to publish it)")
    for path in sorted(gone, key=lambda p: -p.count("/")):  # deepest first: folders end up empty
        if await _remove(drive, path):
            report.removed.append(path)
    for path in sorted(changed, key=lambda p: (p.count("/"), p)):
        e = now.entries[path]
        old = in_drive.get(path) if known is None else None
        if known is not None:
            with contextlib.suppress(FileNotFoundError):
                old = await drive.lstat(path)
        if old is not None and _kind_of(old) != e.kind:
            await _remove_tree(drive, path)
        if e.kind == "dir":
            with contextlib.suppress(FileExistsError):
                await drive.mkdir(path)
            report.folders.append(path)
        elif e.kind == "symlink":
            with contextlib.suppress(FileNotFoundError):
                await drive.unlink(path)
            await drive.symlink(e.target, path)
            report.written.append(path)
        else:
            problem = await _write_file(drive, folder, path, e)
            if problem is not None:
                now.entries.pop(path, None)  # retried by the next scan; its drive entry stays
                if problem:  # (none if it was gone: the next scan removes it)
                    now.unreadable[path] = problem
                continue
            report.written.append(path)
    return report, now


def _kind_of(st: Stat) -> str:
    return "symlink" if st.linkname else "dir" if st.is_directory() else "file"


def _differs(e: Entry, st: Stat | None) -> bool:
    if st is None:
        return True
    if e.kind == "dir":
        return not st.is_directory() or bool(st.linkname)
    if e.kind == "symlink":
        return st.linkname != e.target
    return (not st.is_file() or bool(st.linkname) or st.size != e.size or st.mtime != e.mtime_ms
            or (st.mode & 0o777) != e.mode)


def _under_any_mount(path: str, entries: dict[str, Stat]) -> bool:
    parent = paths.dirname(path)
    while parent != "/":
        st = entries.get(parent)
        if st is not None and st.mount is not None:
            return True
        parent = paths.dirname(parent)
    return False


async def _remove(drive: Hyperdrive, path: str) -> bool:
    try:
        st = await drive.lstat(path)
    except FileNotFoundError:
        return False
    if st.is_directory() and not st.mount and not st.linkname:
        with contextlib.suppress(OSError):
            await drive.rmdir(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            await drive.unlink(path)
    return True


async def _remove_tree(drive: Hyperdrive, path: str) -> None:
    """Remove the entry at ``path`` and, if a folder, everything under it (a folder replaced by a
    file, or the reverse)."""
    st = await drive.lstat(path)
    if st.is_directory() and not st.linkname and not st.mount:
        for name in sorted(await drive.readdir(path, recursive=True), key=lambda n: -n.count("/")):
            await _remove(drive, paths.join(path, name))
    await _remove(drive, path)


async def _write_file(drive: Hyperdrive, folder: Path, path: str, e: Entry) -> str | None:
    """Write the local file at ``path`` into the drive; if it cannot be opened (gone or changed since
    the scan, unreadable), nothing is written and why is returned (empty if it is gone)."""
    full = folder / path.lstrip("/")
    try:
        f = await trio.open_file(full, "rb", opener=_open_no_follow)
    except FileNotFoundError:
        return ""
    except OSError as err:
        return err.strerror or str(err)
    async with f:
        async with drive.create_write_stream(path, mtime=e.mtime_ms, mode=e.mode or None) as w:
            while chunk := await f.read(CHUNK):
                await w.write(chunk)
    return None


def _open_no_follow(path: str, flags: int) -> int:
    """Open the regular file the scan saw: not what a symlink put in its place since points at, and
    not a fifo (which would block)."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not _stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file any more", path)
    return fd


async def watch_folder(drive: Hyperdrive, folder: Path, *, interval: float = 1.0,
                       on_change: Callable[[SyncReport], None] | None = None,
                       on_problem: Callable[[str | None], None] | None = None,
                       known: Scan | None = None, allow_empty: bool = False) -> None:
    """Import ``folder`` now (or, given the scan ``known`` of an import just made, go on from it), then
    every ``interval`` seconds apply what changed in it, forever. ``on_change(report)`` follows every
    scan (the report is falsy when nothing changed).

    While the folder is unavailable (:class:`FolderUnavailable`) nothing is published:
    ``on_problem(message)`` is called once when that starts (logged if not given), and
    ``on_problem(None)`` when the folder is back; it is then compared with the drive afresh."""
    problem: str | None = None

    async def once(known: Scan | None) -> Scan | None:
        nonlocal problem
        try:
            report, now = await import_folder(drive, folder, known=known, allow_empty=allow_empty)
        except FolderUnavailable as e:
            if str(e) != problem:
                problem = str(e)
                if on_problem is not None:
                    on_problem(problem)
                else:
                    log.warning("%s", problem)
            return None
        if problem is not None:
            problem = None
            if on_problem is not None:
                on_problem(None)
        if on_change is not None:
            on_change(report)
        return now

    if known is None:
        known = await once(None)
    while True:
        await trio.sleep(interval)
        known = await once(known)


# -- export: the manifest ---------------------------------------------------------------------------


@dataclass
class Written:
    """What the manifest knows of one path the clone wrote."""

    kind: str  # "file" | "dir" | "symlink"
    pending: bool = False  # being written: whatever is at the path is the clone's
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    ino: int = 0
    sha256: str = ""
    target: str = ""  # a symlink's target on disk
    source: list[int] = field(default_factory=list)  # the drive entry it came from

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v or k == "kind"}


OURS, CHANGED, ABSENT = "ours", "changed", "absent"


class Manifest:
    """``FOLDER/.hypernode-clone.json``: which drive the folder is a clone of, and every path the
    clone wrote there (see the module docstring)."""

    def __init__(self, folder: Path, key: bytes, version: int = 0,
                 entries: dict[str, Written] | None = None) -> None:
        self.folder = folder
        self.key = key
        self.version = version
        self.entries: dict[str, Written] = entries or {}
        self._saved_at = 0.0
        self._save_cost = 0.0

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        """The manifest in ``folder``, None if there is none; :class:`CloneRefused` if it is damaged
        (it is checked strictly: a path that is not a plain path inside the folder, or a field of the
        wrong type, is damage, never something to act on)."""
        p = folder / MANIFEST
        try:
            data = json.loads(p.read_bytes())
            if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
                raise ValueError("no entries")
            key = bytes.fromhex(data["key"])
            version = data.get("version", 0)
            if len(key) != 32 or type(version) is not int or version < 0:
                raise ValueError("a bad key or version")
            entries = {_checked_path(path): _checked_record(rec) for path, rec in data["entries"].items()}
            return cls(folder, key, version, entries)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise CloneRefused(f"{p} is damaged ({_one_line(e)}): the clone cannot tell which files "
                               "it wrote") from None

    def save(self) -> None:
        """Write the manifest atomically (a temporary file renamed over it)."""
        t = time.monotonic()
        data = {"format": 1, "key": self.key.hex(), "version": self.version,
                "entries": {p: w.to_json() for p, w in sorted(self.entries.items())}}
        tmp = self.folder / (MANIFEST + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=0, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, self.path)
        self._saved_at = time.monotonic()
        self._save_cost = self._saved_at - t

    def save_now_and_then(self) -> None:
        """Save if the last save is a while ago (at most every second, and so that saving a big
        manifest takes a tenth of the time at most)."""
        if time.monotonic() - self._saved_at > max(1.0, 10 * self._save_cost):
            self.save()

    def state(self, path: str, lst: os.stat_result | None = None) -> str:
        """Is what is at ``path`` now what the clone wrote there (``ours``), something changed since
        (``changed``), or nothing (``absent``)? Only for paths in the manifest."""
        rec = self.entries[path]
        full = self.folder / path.lstrip("/")
        if lst is None:
            try:
                lst = os.lstat(full)
            except FileNotFoundError:
                return ABSENT
        if rec.kind == "dir":
            return OURS if _stat.S_ISDIR(lst.st_mode) else CHANGED
        if rec.kind == "symlink":
            return OURS if _stat.S_ISLNK(lst.st_mode) and os.readlink(full) == rec.target else CHANGED
        if not _stat.S_ISREG(lst.st_mode):
            return CHANGED
        if rec.pending:
            return OURS
        if (lst.st_size, lst.st_mtime_ns, lst.st_ino, lst.st_ctime_ns) == (
                rec.size, rec.mtime_ns, rec.ino, rec.ctime_ns):
            return OURS
        if lst.st_size != rec.size or _sha256_file(full) != rec.sha256:
            return CHANGED
        self._record_stat(rec, lst)  # the same bytes (a folder moved or copied): refresh the stat
        return OURS

    @staticmethod
    def _record_stat(rec: Written, lst: os.stat_result) -> None:
        rec.size, rec.mtime_ns, rec.ctime_ns, rec.ino = (lst.st_size, lst.st_mtime_ns, lst.st_ctime_ns,
                                                         lst.st_ino)


_FIELDS = {f: type(v) for f, v in asdict(Written("file")).items()}


def _checked_path(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or not all(
            seg not in ("", ".", "..") and "\x00" not in seg for seg in path[1:].split("/")):
        raise ValueError(f"not a path inside the folder: {path!r}")
    return path


def _checked_record(rec: Any) -> Written:
    if not isinstance(rec, dict) or rec.get("kind") not in ("file", "dir", "symlink"):
        raise ValueError(f"not a record: {rec!r}")
    for name, value in rec.items():
        want = _FIELDS.get(name)
        if want is None or type(value) is not want or (want is int and value < 0):
            raise ValueError(f"a bad field {name!r}")
    if not all(type(v) is int for v in rec.get("source", [])):
        raise ValueError("a bad source")
    return Written(**rec)


def _one_line(e: BaseException) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:200]


def _through_symlink(folder: Path, p: str) -> bool:
    """Does the way from ``folder`` to ``p`` pass a symlink (or something that is not a folder)?"""
    cur = folder
    for part in p.strip("/").split("/")[:-1]:
        cur = cur / part
        try:
            if not _stat.S_ISDIR(os.lstat(cur).st_mode):
                return True
        except FileNotFoundError:
            return True
    return False


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class CloneTarget:
    """Where a clone goes: its manifest (loaded, or new), whether the folder already holds this clone
    (``resumed``), and the names that were in the folder before and are not the clone's."""

    manifest: Manifest
    resumed: bool = False
    before: list[str] = field(default_factory=list)


def prepare_clone_folder(folder: Path, key: bytes, *, force: bool = False) -> CloneTarget:
    """Check that a clone of ``key`` may go into ``folder``, touching nothing: the folder is absent,
    empty, or holds this clone already (a manifest of the same drive: an interrupted or earlier
    clone, resumed or updated); otherwise ``force`` is needed. Raises :class:`CloneRefused`."""
    if not os.fspath(folder):
        raise CloneRefused("the folder to clone into is an empty path")
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return CloneTarget(Manifest(folder, key))
    if not _stat.S_ISDIR(st.st_mode):
        raise CloneRefused(f"{folder} is not a folder")
    names = sorted(n for n in os.listdir(folder) if n != MANIFEST)
    try:
        manifest = Manifest.load(folder)
    except CloneRefused:
        if not force:
            raise
        manifest = None
    if manifest is not None and manifest.key == key:
        before = [n for n in names if "/" + n not in manifest.entries
                  and not (n.startswith(".") and n.endswith(TMP_SUFFIX))]
        return CloneTarget(manifest, resumed=True, before=before)
    if not force:
        if manifest is not None:
            raise CloneRefused(f"{folder} holds a clone of drive {manifest.key.hex()}: clone into "
                               "another folder, or give --force (that clone's files are then kept "
                               "as they are)")
        if names:
            raise CloneRefused(f"{folder} is not empty ({len(names)} entries: {few(names)}): give "
                               "--force to clone into it anyway (same-named files are overwritten; "
                               "nothing else is changed or deleted)")
    return CloneTarget(Manifest(folder, key), before=names)


# -- export -----------------------------------------------------------------------------------------


@dataclass
class Progress:
    """How far an export has got, and what it did (what ``hypernode clone`` prints)."""

    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    bytes_done: int = 0
    started: float = field(default_factory=time.monotonic)
    written: list[str] = field(default_factory=list)  # paths written (files, symlinks, folders)
    removed: list[str] = field(default_factory=list)  # paths the drive removed and the clone did too
    kept: list[tuple[str, str]] = field(default_factory=list)  # local paths left as they were, and why
    unplaced: list[Unplaced] = field(default_factory=list)  # drive paths not placed

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.bytes_done / elapsed if elapsed > 0 else 0.0


@dataclass
class _Item:
    path: str
    st: Stat
    raw: tuple[Stat, Hyperdrive] | None = None  # read through the trie: no path can address it

    @property
    def kind(self) -> str:
        if self.st.linkname:
            return "symlink"
        if self.st.is_directory() and not (self.st.mount is not None and self.st.mount.hypercore):
            return "dir"
        return "file"


async def _listing(drive: Hyperdrive, progress: Progress) -> dict[str, _Item]:
    """Every entry of the drive by path (mounts entered), and in ``progress.unplaced`` the names the
    drive holds that no local file can have."""
    items = {p: _Item(p, st) for p, st in (await drive_entries(drive)).items()}
    # names readdir cannot give (a peer may write any key): look at the raw keys of each trie
    mounts = await drive.get_all_mounts()
    for at, owner in mounts.items():
        async for node in owner.trie.iterator("", recursive=True):
            path = at.rstrip("/") + "/" + node.key
            segs = node.key.split("/")
            if all(s not in ("", ".", "..") and "\x00" not in s and "\\" not in s for s in segs):
                continue
            bad = next((s for s in segs if s in ("", ".", "..") or "\x00" in s
                        or ("\\" in s and os.sep == "\\")), None)
            if bad is not None:
                why = "a NUL in its name" if "\x00" in bad else f"a name no file can have ({bad!r})"
                progress.unplaced.append(Unplaced(shown(path), why, conflict=True))
                continue
            try:
                st = Stat.decode(node.value or b"", path)
            except OSError as e:
                progress.unplaced.append(Unplaced(shown(path), f"its entry is damaged: {e}", True))
                continue
            items[path] = _Item(path, st, raw=(st, owner))
    return items


async def export_drive(drive: Hyperdrive, folder: Path, *, force: bool = False,
                       skip_conflicts: bool = False, manifest: Manifest | None = None,
                       progress: Progress | None = None,
                       on_progress: Callable[[Progress], None] | None = None,
                       on_data: Callable[[], None] | None = None) -> Progress:
    """Write every file, folder and symlink of the drive under ``folder`` by the rules of the module
    docstring, recording what it writes in the folder's manifest (``manifest``, or the one in the
    folder if it is a clone of this drive, or a new one), and remove what the clone wrote earlier that
    the drive no longer has. ``force`` overwrites regular files the clone did not write or that were
    changed since. ``on_data`` is called for every chunk of data stored (see :func:`watchdog`).

    Returns the :class:`Progress`; raises :class:`ExportIncomplete` if some drive path was not placed
    (a drive conflict does not count with ``skip_conflicts``), after placing everything else."""
    folder.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        with contextlib.suppress(CloneRefused):
            manifest = Manifest.load(folder)
        if manifest is None or manifest.key != drive.key:
            manifest = Manifest(folder, drive.key)
    if not manifest.entries:
        manifest.save()  # before anything is written: a re-run knows the folder is this clone's
    progress = progress or Progress()
    try:
        await _export(drive, folder, manifest, force, progress, on_progress, on_data or (lambda: None))
    except BaseException:
        with contextlib.suppress(OSError):
            manifest.save()  # also when interrupted: what was written so far is recorded
        raise
    manifest.save()
    if any(not u.conflict or not skip_conflicts for u in progress.unplaced):
        raise ExportIncomplete(folder, progress)
    return progress


async def _export(drive: Hyperdrive, folder: Path, manifest: Manifest, force: bool, progress: Progress,
                  on_progress: Callable[[Progress], None] | None, on_data: Callable[[], None]) -> None:
    items = await _listing(drive, progress)
    if "/" + MANIFEST in items:
        progress.unplaced.append(Unplaced("/" + MANIFEST, "the name of the clone's manifest", True))
        del items["/" + MANIFEST]
    # every folder the entries need; a file or symlink where a folder is needed is a drive conflict
    needed: set[str] = {p for p, it in items.items() if it.kind == "dir"}
    for p in items:
        parent = paths.dirname(p)
        while parent != "/" and parent not in needed:
            needed.add(parent)
            parent = paths.dirname(parent)
    for p in sorted(needed):
        it = items.get(p)
        if it is not None and it.kind != "dir":
            progress.unplaced.append(Unplaced(shown(p), "a file and a folder in the drive: the folder is "
                                              "placed", conflict=True))
            del items[p]
    files = {p: it for p, it in items.items() if it.kind == "file"}
    links = {p: it for p, it in items.items() if it.kind == "symlink"}
    progress.files_total = len(files)
    progress.bytes_total = sum(it.st.size for it in files.values())

    # 1. what the clone wrote earlier that the drive no longer has (first: a folder the drive turned
    # into a file is emptied before the file is written)
    _remove_gone(folder, manifest, set(items) | needed, progress)

    blocked: list[str] = []  # local paths where the drive's entries cannot go (nothing below either)

    def is_blocked(p: str) -> bool:
        return any(paths.is_inside(b, p) for b in blocked)

    def lstat(p: str) -> os.stat_result | None:
        try:
            return os.lstat(folder / p.lstrip("/"))
        except FileNotFoundError:
            return None

    def refuse(p: str, why: str, force_places: bool = False) -> bool:
        progress.kept.append((p, why))
        progress.unplaced.append(Unplaced(shown(p), why, force_places=force_places))
        blocked.append(p)
        return False

    def placeable(p: str, it: _Item, lst: os.stat_result | None) -> bool:
        """May the clone write the drive's entry at ``p``? If so, clears the clone's own entry of
        another kind there, and marks ``p`` pending in the manifest (unless a file the clone did not
        write is overwritten: that one is recorded once written)."""
        if lst is not None:
            rec = manifest.entries.get(p)
            mode = lst.st_mode
            if rec is not None:
                if manifest.state(p, lst) != OURS and not (
                        force and (_stat.S_ISREG(mode) or _stat.S_ISLNK(mode) and rec.kind == "symlink")):
                    return refuse(p, "changed here since the clone wrote it", not force and (
                        _stat.S_ISREG(mode) or _stat.S_ISLNK(mode) and rec.kind == "symlink"))
            elif _stat.S_ISDIR(mode):
                return refuse(p, "a local folder is in the way")
            elif _stat.S_ISLNK(mode):
                return refuse(p, "a local symlink is in the way")
            elif not _stat.S_ISREG(mode):
                return refuse(p, "a local special file is in the way")
            elif not force:
                return refuse(p, "a local file the clone did not write is in the way", True)
            full = folder / p.lstrip("/")
            if _stat.S_ISDIR(mode):  # the clone's own folder, now a file or symlink in the drive
                try:
                    full.rmdir()
                except OSError:
                    return refuse(p, "a local folder is in the way (not empty)")
            elif it.kind == "symlink" or not _stat.S_ISREG(mode):
                full.unlink()  # (a file is replaced by the rename of the new one)
            if rec is None:
                return True
        manifest.entries[p] = Written(it.kind, pending=True)
        return True

    # 2. folders, shallowest first
    for p in sorted(needed, key=lambda p: (p.count("/"), p)):
        if is_blocked(p):
            continue
        lst = lstat(p)
        if lst is not None and _stat.S_ISDIR(lst.st_mode):
            continue
        if lst is not None:
            rec = manifest.entries.get(p)
            if rec is None or rec.kind == "dir" or manifest.state(p, lst) != OURS:
                refuse(p, "a local symlink is in the way" if _stat.S_ISLNK(lst.st_mode)
                       else "a local file is where the drive has a folder")
                continue
            (folder / p.lstrip("/")).unlink()  # the clone's own file, now a folder in the drive
        if not _make_dir(folder, p, progress):
            blocked.append(p)
            continue
        manifest.entries[p] = Written("dir")
        progress.written.append(p)

    # 3. which files and symlinks to write: marked pending in the manifest before any is written
    todo: list[_Item] = []
    for p, it in sorted(files.items()):
        if is_blocked(paths.dirname(p)):
            progress.unplaced.append(Unplaced(shown(p), "a local entry is in the way of its folder"))
            continue
        lst = lstat(p)
        if lst is not None and _up_to_date(folder, manifest, p, it.st, lst):
            progress.files_done += 1
            progress.bytes_done += it.st.size
        elif placeable(p, it, lst):
            todo.append(it)
    link_todo: list[tuple[_Item, str]] = []
    for p, it in sorted(links.items()):
        if is_blocked(paths.dirname(p)):
            progress.unplaced.append(Unplaced(shown(p), "a local entry is in the way of its folder"))
            continue
        try:
            resolved = paths.resolve_link(p, it.st.linkname or "")
        except InvalidArgument:
            progress.unplaced.append(Unplaced(shown(p), "its symlink target is not a valid path", True))
            continue
        target = folder / p.lstrip("/")
        rel = os.path.relpath(folder / resolved.lstrip("/"), target.parent)
        lst = lstat(p)
        rec = manifest.entries.get(p)
        if lst is not None and rec is not None and rec.kind == "symlink" and rec.target == rel \
                and manifest.state(p, lst) == OURS:
            continue
        if placeable(p, it, lst):
            link_todo.append((it, rel))
    manifest.save()

    # 4. write the files, asking peers for the blocks of the next ones meanwhile
    mounts = [p for p, it in items.items() if it.st.mount is not None and not it.st.mount.hypercore]
    with _Prefetch(drive, todo, mounts) as prefetch:
        for i, it in enumerate(todo):
            await prefetch.ahead_of(i)
            target = folder / it.path.lstrip("/")
            try:
                rec = await _export_file(drive, it, target, progress, on_progress, on_data)
            except OSError as e:
                if e.errno not in _BAD_NAME:
                    raise
                manifest.entries.pop(it.path, None)
                progress.unplaced.append(Unplaced(shown(it.path), f"not a valid file name here "
                                                  f"({e.strerror})", conflict=True))
                continue
            finally:
                prefetch.done(i)
            rec.source = _source(it.st)
            manifest.entries[it.path] = rec
            progress.written.append(it.path)
            progress.files_done += 1
            if on_progress is not None:
                on_progress(progress)
            manifest.save_now_and_then()

    # 5. the symlinks
    for it, rel in link_todo:
        target = folder / it.path.lstrip("/")
        with contextlib.suppress(FileNotFoundError):
            if target.is_symlink() and it.path in manifest.entries:
                target.unlink()  # the clone's own symlink, pointing elsewhere now
        try:
            os.symlink(rel, target)
        except OSError as e:
            if e.errno == errno.EEXIST:
                refuse(it.path, "a local entry appeared while the clone ran")
                manifest.entries.pop(it.path, None)
                continue
            if e.errno not in _BAD_NAME:
                raise
            manifest.entries.pop(it.path, None)
            progress.unplaced.append(Unplaced(shown(it.path), f"not a valid file name here ({e.strerror})",
                                              True))
            continue
        manifest.entries[it.path] = Written("symlink", target=rel)
        progress.written.append(it.path)
    manifest.version = drive.version


_BAD_NAME = (errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ)
PREFETCH_FILES = 128  # files ahead of the one being written whose blocks are asked for
PREFETCH_BLOCKS = 64  # blocks of each (a file's read stream asks for the rest as it goes)


class _Prefetch:
    """Asks the peers for the first blocks of the next :data:`PREFETCH_FILES` files while one is
    written, so that a clone of many small files is not one round trip per file (a sparse node fetches
    nothing it is not asked for). Files inside mounted drives are left to their read streams."""

    def __init__(self, drive: Hyperdrive, todo: list[_Item], mounts: list[str]) -> None:
        self.drive = drive
        self.todo = todo
        self.mounts = mounts
        self.wanted: dict[int, Want] = {}
        self.next = 0

    def __enter__(self) -> _Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        for i in list(self.wanted):
            self.done(i)

    async def ahead_of(self, i: int) -> None:
        """Before file ``i`` is written: when fewer than half the window lies ahead, ask for the
        next files' blocks, in as few ranges as they are contiguous."""
        if self.next - i >= PREFETCH_FILES // 2:
            return
        ranges: list[tuple[Feed, int, int, int]] = []  # feed, start, end, the last file in it
        while self.next < min(len(self.todo), i + PREFETCH_FILES):
            it = self.todo[self.next]
            feed = await self._feed(it)
            if feed is not None and it.st.blocks and not it.st.mount:
                start, end = it.st.offset, it.st.offset + min(it.st.blocks, PREFETCH_BLOCKS)
                if ranges and ranges[-1][0] is feed and ranges[-1][2] == start:
                    ranges[-1] = (feed, ranges[-1][1], end, self.next)
                else:
                    ranges.append((feed, start, end, self.next))
            self.next += 1
        for feed, start, end, last in ranges:
            if feed.downloaded(start, end) < end - start:
                self.wanted[last] = replicator_of(feed).want(start, end)

    async def _feed(self, it: _Item) -> Feed | None:
        if it.raw is not None:
            return await it.raw[1].content_feed()
        if any(paths.is_inside(m, it.path) for m in self.mounts):
            return None
        return await self.drive.content_feed()

    def done(self, i: int) -> None:
        """File ``i`` is written (or given up): the range that ends with it is not wanted any more."""
        wanted = self.wanted.pop(i, None)
        if wanted is not None:
            wanted.close()


def _up_to_date(folder: Path, manifest: Manifest, p: str, st: Stat, lst: os.stat_result) -> bool:
    """Does the file at ``p`` hold the drive entry ``st`` already (nothing to write)?"""
    if not _stat.S_ISREG(lst.st_mode):
        return False
    rec = manifest.entries.get(p)
    if rec is None:
        return _same(lst, st)  # the same file is here already (and stays the user's)
    if rec.pending:
        if not _same(lst, st):
            return False
        manifest._record_stat(rec, lst)  # written before an interruption, not recorded yet
        rec.kind, rec.pending, rec.source = "file", False, _source(st)
        rec.sha256 = _sha256_file(folder / p.lstrip("/"))
        return True
    return rec.source == _source(st) and manifest.state(p, lst) == OURS  # written from this very entry


def _remove_gone(folder: Path, manifest: Manifest, present: set[str], progress: Progress) -> None:
    """Remove what the clone wrote that the drive no longer has, if unchanged since; what was changed
    is kept (and is the user's from now on)."""
    for p in sorted([p for p in manifest.entries if p not in present], key=lambda p: -p.count("/")):
        rec = manifest.entries[p]
        state = ABSENT if _through_symlink(folder, p) else manifest.state(p)
        del manifest.entries[p]
        full = folder / p.lstrip("/")
        if state == ABSENT:
            continue  # (gone, or no longer where the clone wrote it: never removed through a symlink)
        if rec.kind == "dir":
            with contextlib.suppress(OSError):
                full.rmdir()  # only when empty: what else is there is kept
                progress.removed.append(p)
        elif state == OURS and not rec.pending:
            full.unlink()
            progress.removed.append(p)
        else:
            progress.kept.append((p, "left by an interrupted clone" if rec.pending
                                  else "changed here since the clone wrote it"))


def _make_dir(folder: Path, p: str, progress: Progress) -> bool:
    try:
        (folder / p.lstrip("/")).mkdir()
    except FileExistsError:
        return True
    except OSError as e:
        if e.errno not in _BAD_NAME:
            raise
        progress.unplaced.append(Unplaced(shown(p), f"not a valid folder name here ({e.strerror})", True))
        return False
    return True


def _source(st: Stat) -> list[int]:
    """What identifies the drive entry a file was written from."""
    return [st.offset, st.blocks, st.size, st.mtime, st.mode & 0o777]


def _same(local: os.stat_result, st: Stat) -> bool:
    return local.st_size == st.size and local.st_mtime_ns // 1_000_000 == st.mtime


async def _export_file(drive: Hyperdrive, it: _Item, target: Path, progress: Progress,
                       on_progress: Callable[[Progress], None] | None,
                       on_data: Callable[[], None]) -> Written:
    """Write one file: to a temporary name, then renamed into place. Returns its manifest record."""
    tmp = target.with_name(f".{target.name}{TMP_SUFFIX}")
    st = it.st
    if it.raw is not None:
        owner = it.raw[1]
        stream = ReadStream(owner, it.path, 0, None, None, resolved=(st, await owner.content_feed()))
    else:
        stream = drive.create_read_stream(it.path)
    h = hashlib.sha256()
    f = await trio.open_file(tmp, "wb")
    done_before = progress.bytes_done
    try:
        async with f:
            last = time.monotonic()
            async for chunk in stream:
                await f.write(chunk)
                h.update(chunk)
                progress.bytes_done += len(chunk)
                on_data()
                if on_progress is not None and time.monotonic() - last > 0.2:
                    last = time.monotonic()
                    on_progress(progress)
        os.utime(tmp, ns=(st.mtime * 1_000_000, st.mtime * 1_000_000))
        if st.mode & 0o111:
            mode = _stat.S_IMODE(os.stat(tmp).st_mode)
            os.chmod(tmp, mode | (mode & 0o444) >> 2)  # executable where readable
        if target.is_symlink() or target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder or symlink is in the way", str(target))
        os.replace(tmp, target)
    except BaseException:
        progress.bytes_done = done_before
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    rec = Written("file", sha256=h.hexdigest())
    Manifest._record_stat(rec, os.lstat(target))
    return rec


# -- clone helpers: no-progress timeouts, history ---------------------------------------------------


@contextlib.contextmanager
def watchdog(timeout: float | None, what: str = "") -> Iterator[Callable[[], None]]:
    """``with watchdog(10, "downloading") as kick:`` cancels the block, raising :class:`Stalled`, when
    ``timeout`` seconds pass without a call to ``kick()`` (made for each block or chunk that arrives):
    a limit on waiting, not on the whole transfer. ``None`` or 0: no limit."""
    with trio.CancelScope() as scope:
        def kick() -> None:
            if timeout:
                scope.deadline = trio.current_time() + timeout

        kick()
        yield kick
    if scope.cancelled_caught:
        raise Stalled(f"no data arrived for {timeout:g} s{' ' + what if what else ''} (the same command "
                      "resumes; --timeout waits longer)")


async def download_history(drive: Hyperdrive, on_data: Callable[[], None] | None = None) -> None:
    """Fetch every block of the drive's metadata and content feeds (not only the current version's),
    calling ``on_data`` whenever blocks arrive."""
    for feed in (drive.metadata, await drive.content_feed()):
        await _download_feed(feed, on_data or (lambda: None))


async def _download_feed(feed: Feed, on_data: Callable[[], None]) -> None:
    end = feed.length
    if feed.downloaded(0, end) == end:
        return
    async with replicator_of(feed).want(0, end) as want:
        seen = -1
        while not want.done():
            # progress: the blocks stored at and after the first missing one (a bounded count)
            first = want.first_missing
            now = first * 2 + feed.downloaded(first, min(end, first + 4096))
            if now != seen:
                seen = now
                on_data()
            await feed.wait_for_change()
    feed.flush()
