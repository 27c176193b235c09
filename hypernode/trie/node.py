"""One hypertrie node: the ``Node`` message of hypertrie 5 and the path a key hashes to.

A node is one block of the trie's feed: ``{key, valueBuffer, trieBuffer, seq, flags}``
(``protocol/hypertrie.proto``). Its *path* is what the trie is indexed by: one value for the hidden
bit, then for every ``/``-separated component of the key the SipHash-2-4 of the component (a 16-byte
zero key, 8 bytes out) read as 32 two-bit segments, low bits first, then a final 4 marking the end of
the key. ``trie`` holds, for each position of that path, a bucket of pointers (feed sequence numbers)
to the latest nodes whose paths branch off there; slot ``v`` of a bucket is the branch whose segment is
``v`` (``v + 5``, ``v + 10`` … hold further nodes whose component hashes collide).

The trie pointers are encoded as hypertrie 5's ``trieBuffer``: ``varint(len)``, then for every bucket
present ``varint(index) varint(bitfield) varint(seq)…`` for the slots the bitfield marks.
"""

from __future__ import annotations

from collections.abc import Callable

from nacl.bindings import crypto_shorthash_siphash24

from hypernode.errors import HypernodeError
from hypernode.messages import hypertrie as _schema
from hypernode.varint import DecodeError, decode_varint, encode_varint

NodeMessage = _schema.Node
Header = _schema.Header

HIDDEN = 1  # the internal flag bit; user flags are stored shifted left by 8
END = 4  # the path value past the end of a key
_HASH_KEY = bytes(16)
_MAX_BUCKET_SLOTS = 160  # 32 colliding hashes per slot is already far beyond what SipHash allows

# the four 2-bit segments of every byte, low bits first
_SEGMENTS = [bytes(((b >> s) & 3) for s in (0, 2, 4, 6)) for b in range(256)]


class CorruptTrieError(HypernodeError):
    """A trie block that does not decode as a hypertrie node (or header)."""


Trie = dict[int, list[int]]  # position -> bucket (0 marks an empty slot)
HashFn = Callable[[str], bytes]  # a replacement for the SipHash of components (hypertrie's `hash` option)


def normalize_key(key: str) -> str:
    """A key as the trie stores it: without its leading ``/``."""
    return key[1:] if key.startswith("/") else key


def split_key(key: str) -> list[str]:
    parts = key.split("/")
    if parts and parts[0] == "":
        parts.pop(0)
    if parts and parts[-1] == "":
        parts.pop()
    return parts


def hash_components(components: list[str]) -> bytes:
    return b"".join(crypto_shorthash_siphash24(c.encode(), _HASH_KEY) for c in components)


def terminator(i: int) -> bool:
    """Whether position ``i`` ends a component (where two different components could collide)."""
    return i > 0 and (i & 31) == 0


class TrieNode:
    """A decoded (or about to be written) trie node. ``flags`` are the user's (stored >> 8)."""

    __slots__ = ("key", "value", "seq", "stored_flags", "trie", "key_split", "hash", "length", "_path")

    def __init__(self, key: str, value: bytes | None = None, *, seq: int = 0, stored_flags: int = 0,
                 trie: Trie | None = None, hash_fn: HashFn | None = None) -> None:
        self.key = normalize_key(key)
        self.value = value
        self.seq = seq
        self.stored_flags = stored_flags
        self.trie: Trie = trie if trie is not None else {}
        self.key_split = split_key(self.key)
        self.hash = hash_components(self.key_split) if hash_fn is None else hash_fn(self.key)
        self.length = len(self.hash) * 4 + 2
        self._path = (bytes([stored_flags & HIDDEN])
                      + b"".join([_SEGMENTS[b] for b in self.hash]) + bytes([END]))

    @property
    def hidden(self) -> bool:
        return bool(self.stored_flags & HIDDEN)

    @property
    def flags(self) -> int:
        return self.stored_flags >> 8

    def path(self, i: int) -> int:
        """The path value at position ``i`` (0/1 for the hidden bit, 0–3 per segment, 4 past the end)."""
        return self._path[i] if i < self.length else END

    def collides(self, other: TrieNode, i: int) -> bool:
        """At a terminator ``i``: whether ``other`` differs from this node in the component ending there."""
        if not i:
            return False
        if i == self.length - 1:
            return self.key != other.key
        j = (i - 1) >> 5
        a = self.key_split[j] if j < len(self.key_split) else None
        b = other.key_split[j] if j < len(other.key_split) else None
        return a != b

    def push(self, i: int, val: int, seq: int) -> None:
        """Point slot ``val`` of bucket ``i`` at ``seq`` (the next free collision slot if taken)."""
        val %= 5
        bucket = self.trie.get(i)
        if bucket is None:
            bucket = self.trie[i] = []
        while val < len(bucket) and bucket[val]:
            val += 5
        if seq in bucket:
            return
        if val >= len(bucket):
            bucket.extend([0] * (val + 1 - len(bucket)))
        bucket[val] = seq

    def encode(self) -> bytes:
        out = bytearray()
        key = self.key.encode()
        out += b"\x0a" + encode_varint(len(key)) + key
        if self.value is not None:
            out += b"\x12" + encode_varint(len(self.value)) + self.value
        trie = encode_trie(self.trie)
        out += b"\x1a" + encode_varint(len(trie)) + trie
        out += b"\x20" + encode_varint(self.seq)
        out += b"\x28" + encode_varint(self.stored_flags)
        return bytes(out)

    @classmethod
    def decode(cls, block: bytes, seq: int, hash_fn: HashFn | None = None) -> TrieNode:
        """The node stored at ``seq`` (its own ``seq`` field is not trusted: the position is)."""
        try:
            msg = NodeMessage.decode(block)
            trie = decode_trie(msg.trieBuffer) if msg.trieBuffer else {}
        except (DecodeError, UnicodeDecodeError) as e:
            raise CorruptTrieError(f"trie block {seq} does not decode: {e}") from None
        flags = msg.flags or 0
        if flags >= 1 << 53:
            raise CorruptTrieError(f"trie block {seq} has out-of-range flags")
        try:
            return cls(msg.key, msg.valueBuffer, seq=seq, stored_flags=flags, trie=trie, hash_fn=hash_fn)
        except UnicodeEncodeError:
            raise CorruptTrieError(f"trie block {seq} has a key that is not valid UTF-8") from None

    def __repr__(self) -> str:
        return f"<TrieNode {self.seq} {self.key!r}{' hidden' if self.hidden else ''}>"


def encode_trie(trie: Trie) -> bytes:
    length = max(trie) + 1 if trie else 0
    out = bytearray(encode_varint(length))
    for i in sorted(trie):
        bucket = trie[i]
        bitfield = 0
        for j, seq in enumerate(bucket):
            if seq:
                bitfield |= 1 << j
        out += encode_varint(i)
        out += encode_varint(bitfield)
        for seq in bucket:
            if seq:
                out += encode_varint(seq)
    return bytes(out)


def decode_trie(buf: bytes) -> Trie:
    trie: Trie = {}
    _, pos = decode_varint(buf, 0)
    end = len(buf)
    while pos < end:
        i, pos = decode_varint(buf, pos)
        bitfield, pos = decode_varint(buf, pos)
        if bitfield.bit_length() > _MAX_BUCKET_SLOTS or i > 1 << 20:
            raise DecodeError("trie bucket out of range")
        bucket = [0] * bitfield.bit_length()
        j = 0
        while bitfield:
            if bitfield & 1:
                bucket[j], pos = decode_varint(buf, pos)
            bitfield >>= 1
            j += 1
        if pos > end:
            raise DecodeError("trie pointers run past the end")
        trie[i] = bucket
    return trie
