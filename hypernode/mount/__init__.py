"""Drives as folders: a drive, or the merged view of several, mounted through FUSE (pyfuse3).

This package owns the mount: checking that FUSE can work here and that the mountpoint is usable
(:func:`check_fuse`, :func:`check_mountpoint`, each raising :class:`MountError` with a one-line
reason), mounting a :class:`~hypernode.drive.Hyperdrive` or :class:`~hypernode.multi.MultiDrive` and
serving it until cancelled, then unmounting (:func:`mount`). How files, folders, symlinks, reads,
writes and changes from peers behave is in :mod:`hypernode.mount.fs`; :mod:`hypernode.mount.view`
puts one drive and a merged view behind one interface.

FUSE needs pyfuse3 (``pip install 'hypernode[mount]'``; it builds against Debian's ``libfuse3-dev``),
the ``fuse3`` package (``fusermount3``) and the device ``/dev/fuse``. pyfuse3 is imported only when a
mount starts, so the rest of hypernode works without it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from hypernode.errors import HypernodeError

if TYPE_CHECKING:
    from hypernode.drive import Hyperdrive
    from hypernode.multi import MultiDrive

__all__ = ["MountError", "check_fuse", "check_mountpoint", "mount", "FUSE_DEVICE"]

log = logging.getLogger("hypernode.mount")

FUSE_DEVICE = "/dev/fuse"
FUSERMOUNT = "fusermount3"
_FUSE_MAJOR, _FUSE_MINOR = 10, 229


class MountError(HypernodeError):
    """FUSE cannot work here, or the mountpoint cannot be used: one line saying why."""


def check_fuse() -> None:
    """Raise :class:`MountError` unless FUSE can work here: pyfuse3 importable, ``/dev/fuse`` a FUSE
    device this user can open, ``fusermount3`` installed."""
    try:
        import pyfuse3  # noqa: F401
    except ImportError as e:
        raise MountError(f"mounting needs pyfuse3, which is not installed ({e}): pip install "
                         "'hypernode[mount]' (it needs Debian's libfuse3-dev and fuse3)") from None
    try:
        st = os.stat(FUSE_DEVICE)
    except OSError:
        raise MountError(f"no FUSE device here ({FUSE_DEVICE} is missing): load the fuse module "
                         "(modprobe fuse), or in a container give it the device") from None
    if not stat.S_ISCHR(st.st_mode) or (os.major(st.st_rdev), os.minor(st.st_rdev)) != (_FUSE_MAJOR,
                                                                                       _FUSE_MINOR):
        raise MountError(f"{FUSE_DEVICE} is not the FUSE device")
    try:
        os.close(os.open(FUSE_DEVICE, os.O_RDWR))
    except OSError as e:
        raise MountError(f"cannot open {FUSE_DEVICE}: {e.strerror}") from None
    if fusermount() is None:
        raise MountError(f"{FUSERMOUNT} is not installed (Debian's fuse3 package)")


def fusermount() -> str | None:
    """The ``fusermount3`` program, or None."""
    found = shutil.which(FUSERMOUNT)
    if found is None:
        candidate = Path("/usr/bin") / FUSERMOUNT
        if os.access(candidate, os.X_OK) and candidate.is_file():
            found = str(candidate)
    return found


def check_mountpoint(path: str | os.PathLike[str]) -> Path:
    """The mountpoint as an absolute path, if it is an empty folder nothing is mounted on; else
    :class:`MountError` saying what is wrong (missing, not a folder, a mount already there or a dead
    one left by a killed mount, not empty)."""
    p = Path(os.path.abspath(path))
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise MountError(f"mountpoint {p} does not exist (make an empty folder there)") from None
    except OSError as e:
        if e.errno == errno.ENOTCONN:
            raise MountError(f"mountpoint {p} is busy: a mount whose process ended is still there "
                             f"(unmount it: {FUSERMOUNT} -u {p})") from None
        raise MountError(f"cannot use mountpoint {p}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise MountError(f"mountpoint {p} is not a folder")
    if os.path.ismount(p):
        raise MountError(f"mountpoint {p} is busy: something is mounted there already")
    try:
        with os.scandir(p) as entries:
            if next(entries, None) is not None:
                raise MountError(f"mountpoint {p} is not empty (a mount would hide what is there)")
    except OSError as e:
        raise MountError(f"cannot use mountpoint {p}: {e.strerror}") from None
    return p


async def mount(drives: Hyperdrive | MultiDrive, mountpoint: str | os.PathLike[str], *,
                staging: str | os.PathLike[str] | None = None, timeout: float | None = 60.0,
                on_mounted: Callable[[], None] | None = None, direct_io: bool = False) -> int:
    """Mount ``drives`` (a drive, or a MultiDrive) at ``mountpoint`` and serve it until cancelled,
    or until it is unmounted from outside (``fusermount3 -u``); then unmount, and write back the
    files still open with bytes written (their number is returned). ``staging``: where written files
    are staged (default: the temp folder). ``timeout``: a read that sees no block arrive for that
    long fails with EIO (None: waits forever). ``on_mounted`` is called once the mount is in place.
    ``direct_io``: files opened read-only bypass the kernel's page cache (FOPEN_DIRECT_IO): the first
    read of a big file goes about twice as fast, but no read is served from the cache, and a shared
    ``mmap`` of such a file fails with ENODEV (private mappings, so running programs, still work).

    A read-only drive (or a MultiDrive without a writable drive) is mounted read-only: writes get
    EROFS. One mount per process (pyfuse3 holds one FUSE session)."""
    check_fuse()
    import pyfuse3

    from hypernode.mount.fs import FS
    from hypernode.mount.view import view_of

    where = check_mountpoint(mountpoint)
    view = view_of(drives)
    if staging is not None:
        Path(staging).mkdir(parents=True, exist_ok=True)
    fs = FS(view, where, staging=Path(staging) if staging is not None else None, timeout=timeout,
            direct_io=direct_io)
    options = {"fsname=hypernode", "subtype=hypernode", "default_permissions"}
    if not view.writable:
        options.add("ro")
    _init(pyfuse3, fs, where, options)
    mounted = True
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fs.follow)
            if on_mounted is not None:
                on_mounted()
            await pyfuse3.main()
            mounted = False  # main() returns when the kernel ends the session: unmounted from outside
            nursery.cancel_scope.cancel()
    finally:
        pyfuse3.close(unmount=mounted)
        with trio.CancelScope(shield=True):
            written = await fs.write_back_all()
    return written


def _init(pyfuse3: object, fs: object, where: Path, options: set[str]) -> None:
    """``pyfuse3.init``, with what libfuse prints on stderr when it fails turned into one line."""
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        try:
            os.dup2(captured.fileno(), 2)
            try:
                pyfuse3.init(fs, str(where), options)  # type: ignore[attr-defined]
                failure = None
            except RuntimeError as e:
                failure = str(e)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode(errors="replace")
        said = [line.strip() for line in text.splitlines() if line.strip()]
    if failure is not None:
        why = said[0] if said else failure
        if "fuse_session_mount" in failure:  # (a session was made: free it; none if its making failed)
            with contextlib.suppress(Exception):
                pyfuse3.close(unmount=False)  # type: ignore[attr-defined]
        raise MountError(f"cannot mount at {where}: {why}")
