"""The lock that gives a store to one process at a time.

A store directory holds a file ``hypernode.lock``. Opening the store (``Corestore(directory)``) opens
that file and takes an exclusive ``flock`` on it without waiting, before it creates or writes anything
else in the directory; holding the lock it writes one JSON line into the file: its ``pid``, and, once a
:class:`~hypernode.node.Node` listens, the ``host`` and ``port`` it serves replication on (so that a
read-only command can read the store through the running node), and the ``control`` socket where it
answers status and seeding requests (:mod:`hypernode.control`). A second opener, in another process or
in the same one (``flock`` locks belong to an open file, not to a process), gets
:class:`~hypernode.errors.StoreLockedError` naming that pid and has written nothing: it only opened and
read the lock file. The kernel releases the lock when its holder closes the file or dies, SIGKILL
included, so a lock file left behind by a killed process never blocks; what it says is then stale and
is overwritten by the next holder. Closing the store empties the file but leaves it in place (removing
it would let two processes lock two different files of the same name).

How this relates to JS: corestore 5's default storage opens each feed's ``bitfield`` file with
random-access-file's ``lock`` option, which calls fd-lock, ``flock(fd, LOCK_EX | LOCK_NB)``, and fails
the open with ``ELOCKED`` if another process holds it. That is the same kind of lock, but per feed and
taken when the feed is opened; ours is one lock for the whole store, taken before anything in it is
touched, on a file JS does not use. hypernode does not lock the bitfield files, so the lock keeps a
second hypernode process out of a store, not a JS process (do not open one store from both at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from typing import Any

from hypernode.errors import StoreLockedError

LOCK_FILENAME = "hypernode.lock"


def _read(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        data = json.loads(raw.decode()) if raw.strip() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _info_error(directory: str, info: dict[str, Any]) -> StoreLockedError:
    pid = info.get("pid")
    host, port = info.get("host"), info.get("port")
    address = (host, port) if isinstance(host, str) and isinstance(port, int) and 0 < port < 65536 else None
    return StoreLockedError(directory, pid if isinstance(pid, int) else None, address)


def lock_info(directory: str) -> dict[str, Any]:
    """What the lock file of the store in ``directory`` says (``pid``, ``host``, ``port``, ``control``;
    empty if nothing, or if it cannot be read). It may be stale: only a failed attempt to take the lock
    shows that a process holds it."""
    try:
        fd = os.open(os.path.join(directory, LOCK_FILENAME), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        return _read(fd)
    finally:
        os.close(fd)


class StoreLock:
    """The exclusive lock of a store directory, held from construction until :meth:`release`."""

    def __init__(self, directory: str) -> None:
        """Take the lock, or raise :class:`StoreLockedError` (having written nothing). The directory
        is made if it does not exist."""
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.path = os.path.join(directory, LOCK_FILENAME)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(fd)
            os.close(fd)
            raise _info_error(directory, info) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._info: dict[str, Any] = {"pid": os.getpid()}
        try:
            self._write()
        except BaseException:
            self.release()
            raise

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def _write(self) -> None:
        data = (json.dumps(self._info) + "\n").encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def set_address(self, host: str, port: int) -> None:
        """Say where the process holding the store serves replication (a second opener's
        :class:`StoreLockedError` gives it as ``address``)."""
        if self.held:
            self._info.update(host=host, port=port)
            self._write()

    def set_control(self, path: str | None) -> None:
        """Say where the process holding the store answers control requests (a Unix socket, see
        :mod:`hypernode.control`); None: it no longer does."""
        if self.held:
            if path is None:
                self._info.pop("control", None)
            else:
                self._info["control"] = path
            self._write()

    def release(self) -> None:
        """Empty the lock file and release the lock (idempotent)."""
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the file releases the flock

    def __del__(self) -> None:  # a store dropped without close() must not keep its directory locked
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)

