"""The exception types hypernode raises; every layer's errors derive from :class:`HypernodeError`."""

from __future__ import annotations

import errno


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
