"""Version vectors: what a multi-drive's ``version`` is, and how it orders concurrent writes.

A :class:`VersionVector` maps drive keys to versions (trie versions, i.e. metadata feed lengths). It is
encoded with the ``VersionVector`` message of ``protocol/hypernode-multi.proto``:

- the multi-drive's ``version`` is the vector of every drive's version; ``checkout`` and tags use it;
- every file a multi-drive writes carries, in its Stat metadata under :data:`CLOCK_KEY`, the versions of
  the *other* drives that held the same path when it was written. An entry of drive A stored at trie
  seq ``s`` has been *seen* by a write whose clock gives A a version above ``s``: that write is newer,
  whatever the wall clocks say (:func:`causal_order`). JS peers see the clock as ordinary metadata.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from hypernode.messages.hypernode_multi import VersionVector as _Vector
from hypernode.protobuf import DecodeError

CLOCK_KEY = "hypernode-clock"


class VersionVector(Mapping[bytes, int]):
    """An immutable mapping of 32-byte drive keys to versions."""

    __slots__ = ("_v",)

    def __init__(self, versions: Mapping[bytes, int] | None = None) -> None:
        self._v: dict[bytes, int] = {}
        for key, version in (versions or {}).items():
            key = bytes.fromhex(key) if isinstance(key, str) else bytes(key)
            if len(key) != 32 or version < 0:
                raise ValueError("a version vector maps 32-byte keys to non-negative versions")
            self._v[key] = int(version)

    def __getitem__(self, key: bytes) -> int:
        return self._v[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._v)

    def __len__(self) -> int:
        return len(self._v)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k.hex()[:8]}: {v}" for k, v in self._v.items())
        return f"VersionVector({{{inner}}})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self.items()) == dict(other.items())

    def __hash__(self) -> int:
        return hash(frozenset(self._v.items()))

    def to_hex(self) -> dict[str, int]:
        return {k.hex(): v for k, v in self._v.items()}

    def encode(self) -> bytes:
        return _Vector(entries=[_Vector.Entry(key=k, version=v) for k, v in sorted(self._v.items())]).encode()

    @classmethod
    def decode(cls, buf: bytes) -> VersionVector:
        """Raises :class:`~hypernode.protobuf.DecodeError` for bytes that are not a vector."""
        msg = _Vector.decode(buf)
        out = cls.__new__(cls)
        out._v = {}
        for e in msg.entries:
            if len(e.key) != 32:
                raise DecodeError("a version vector key is 32 bytes")
            out._v[e.key] = e.version
        return out


def read_clock(metadata: Mapping[str, bytes]) -> VersionVector | None:
    """The clock in an entry's metadata, or None (no clock, or one that does not decode)."""
    raw = metadata.get(CLOCK_KEY)
    if raw is None:
        return None
    try:
        return VersionVector.decode(raw)
    except DecodeError:
        return None


def causal_order(key1: bytes, seq1: int | None, clock1: VersionVector | None,
                 key2: bytes, seq2: int | None, clock2: VersionVector | None) -> int:
    """-1 if entry 1 has seen entry 2 (entry 1 is newer), 1 for the reverse, 0 if neither has (they
    are concurrent, or we cannot tell). ``seqN`` is where drive ``keyN`` stores entry N."""
    if key1 == key2:
        return 0
    if clock1 is not None and seq2 is not None and clock1.get(key2, 0) > seq2:
        return -1
    if clock2 is not None and seq1 is not None and clock2.get(key1, 0) > seq1:
        return 1
    return 0
