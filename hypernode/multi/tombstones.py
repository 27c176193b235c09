"""Tombstones: how a multi-drive hides a path that another drive still holds (multi-hyperdrive 1.1.4).

A tombstone is the hidden trie key ``.tombstones/<path>`` (no leading slash; the root's is
``.tombstones``) in the writer's drive, holding the ``Tombstone`` message of
``protocol/multi-hyperdrive.proto``: ``active`` (the path is deleted) and ``timestamp`` (milliseconds).
Deleting writes an active one; writing the path again writes an inactive one over it.

Several drives may hold a tombstone for one path: the newest timestamp decides (on a tie, the drive
added later). JS multi-hyperdrive means the same but, by a slip in its loop, lets whichever drive
answers last decide; with one writer per path, as in every test of the JS original, both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypernode.messages.multi_hyperdrive import Tombstone as _Tombstone
from hypernode.protobuf import DecodeError

PREFIX = ".tombstones"


@dataclass(frozen=True)
class Tombstone:
    active: bool
    timestamp: int

    def encode(self) -> bytes:
        return _Tombstone(active=self.active, timestamp=self.timestamp).encode()

    @classmethod
    def decode(cls, value: bytes | None) -> Tombstone | None:
        """The tombstone in a trie value; None for an empty or undecodable one (JS skips those too)."""
        if not value:
            return None
        try:
            msg = _Tombstone.decode(value)
        except DecodeError:
            return None
        return cls(bool(msg.active), msg.timestamp or 0)


def trie_key(key: str) -> str:
    """The hidden trie key of the tombstone of a path's trie key (``a/b`` -> ``.tombstones/a/b``)."""
    return f"{PREFIX}/{key}" if key else PREFIX


def path_key(tombstone_key: str) -> str | None:
    """The path trie key a tombstone key stands for, or None if it is not one."""
    if tombstone_key == PREFIX:
        return ""
    if tombstone_key.startswith(PREFIX + "/"):
        return tombstone_key[len(PREFIX) + 1:]
    return None
