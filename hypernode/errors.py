"""The exception types hypernode raises; every layer's errors derive from :class:`HypernodeError`. Also
:func:`connect_reason`: why a connection could not be made, in the words error messages use."""

from __future__ import annotations

import errno
import os


class HypernodeError(Exception):
    """Base class of every error hypernode raises on purpose."""


class VerificationError(HypernodeError):
    """Data, a proof or a signature did not verify against the feed's key; nothing was stored."""


class DecodeError(HypernodeError, ValueError):
    """Bytes that are not a valid encoding of a message or varint (from the wire or from disk)."""


class CorruptStorageError(HypernodeError, OSError):
    """A storage file is truncated, corrupted or unreadable. The message names the file. It is an
    ``OSError`` with errno EIO (``filename`` is the file), so ``except OSError`` catches it too."""

    def __init__(self, path: str, problem: str) -> None:
        OSError.__init__(self, errno.EIO, problem, path)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.path, self.problem))


class NotWritableError(HypernodeError):
    """An append or write to a feed we hold no secret key for."""


class BlockNotAvailableError(HypernodeError):
    """The block is not stored locally (and could not be fetched)."""


class MissingTreeNode(BlockNotAvailableError):
    """A walk of the merkle tree met a node not stored here; fetching block ``block`` (whose proof
    carries that node) lets it go on."""

    def __init__(self, block: int) -> None:
        super().__init__(f"a tree node is not stored here (block {block}'s proof brings it)")
        self.block = block


class StoreLockedError(HypernodeError):
    """Another process has the store open (it holds the store's lock, see :mod:`hypernode.storelock`).
    ``pid`` is that process (None if it has not written it yet); ``address`` the ``(host, port)`` it
    serves replication on, if it listens."""

    def __init__(self, directory: str, pid: int | None, address: tuple[str, int] | None = None) -> None:
        self.directory = directory
        self.pid = pid
        self.address = address
        who = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(f"store {directory} is in use by another process ({who})")

    def __reduce__(self) -> tuple[type, tuple[str, int | None, tuple[str, int] | None]]:
        return (type(self), (self.directory, self.pid, self.address))


class StoreRefusedError(HypernodeError):
    """A directory was not opened as a store because of what it holds: files that are not a store of
    the kind asked for, or a store that says it was copied or moved (``reason`` says which). Nothing in
    it was written, moved or deleted."""

    def __init__(self, directory: str, reason: str) -> None:
        self.directory = directory
        self.reason = reason
        super().__init__(f"not opening {directory} as a store: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.directory, self.reason))


class UnsupportedStoreError(HypernodeError):
    """A store (or a core in it) uses a feature of the JS storage that hypernode does not support; it
    was not opened, so nothing in it was changed."""

    def __init__(self, directory: str, reason: str) -> None:
        self.directory = directory
        self.reason = reason
        super().__init__(f"store {directory}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.directory, self.reason))


class PeerTimeoutError(HypernodeError, TimeoutError):
    """Waiting on peers made no progress for the whole timeout: no peer came that has the feed, or no
    block arrived. The message says why, naming the cause (the peers that could not be reached and
    why, or that the connected peers do not have it). A ``TimeoutError`` too."""

    def __init__(self, message: str) -> None:
        TimeoutError.__init__(self, message)

    def __str__(self) -> str:
        return str(self.args[0])


def connect_reason(error: BaseException) -> str:
    """Why a TCP connection could not be made (``error``: the OSError raised), as a short lower-case
    phrase: ``connection refused``, ``no route to host``, ``name or service not known``. (trio's
    ``open_tcp_stream`` raises a generic OSError whose cause holds the error of each attempt.)"""
    candidates: list[BaseException] = [error]
    cause = error.__cause__ or error.__context__
    if isinstance(cause, BaseExceptionGroup):
        candidates = [*cause.exceptions, error]
    for e in candidates:
        if isinstance(e, OSError) and e.errno is not None:
            text = (os.strerror(e.errno) if e.errno > 0 else e.strerror) or ""
            if text:
                return text[0].lower() + text[1:]
    return str(error) or type(error).__name__
