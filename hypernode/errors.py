"""The exception types hypernode raises; every layer's errors derive from :class:`HypernodeError`."""

from __future__ import annotations


class HypernodeError(Exception):
    """Base class of every error hypernode raises on purpose."""


class VerificationError(HypernodeError):
    """Data, a proof or a signature did not verify against the feed's key; nothing was stored."""


class CorruptStorageError(HypernodeError):
    """A storage file is truncated or corrupted. The message names the file."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class NotWritableError(HypernodeError):
    """An append or write to a feed we hold no secret key for."""


class BlockNotAvailableError(HypernodeError):
    """The block is not stored locally (and could not be fetched)."""
