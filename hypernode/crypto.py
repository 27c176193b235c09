"""Hashes, signatures and keys of hypercore-crypto 2.x.

BLAKE2b-256 with the type prefixes of the merkle tree (0 leaf, 1 parent, 2 root), ed25519 key pairs in
libsodium's 64-byte secret-key layout (seed followed by public key), the discovery key and the channel
capability of hypercore-protocol. hashlib provides BLAKE2b and libsodium (through pynacl) ed25519.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Sequence
from typing import NamedTuple, Protocol

import nacl.bindings
import nacl.exceptions

PUBLIC_KEY_BYTES = 32
SECRET_KEY_BYTES = 64
SIGNATURE_BYTES = 64

_LEAF = b"\x00"
_PARENT = b"\x01"
_ROOT = b"\x02"
_HYPERCORE = b"hypercore"
_HYPERCORE_CAP = b"hypercore capability"
_u64 = struct.Struct(">Q")


class KeyPair(NamedTuple):
    public_key: bytes
    secret_key: bytes


class TreeNode(Protocol):
    """Anything with the three fields of a merkle tree node (read-only: a NamedTuple fits)."""

    @property
    def index(self) -> int: ...

    @property
    def hash(self) -> bytes: ...

    @property
    def size(self) -> int: ...


def key_pair(seed: bytes | None = None) -> KeyPair:
    """A new ed25519 key pair, random or from a 32-byte seed (as ``crypto_sign_seed_keypair``)."""
    if seed is None:
        seed = os.urandom(32)
    if len(seed) != 32:
        raise ValueError("an ed25519 seed is 32 bytes")
    public_key, secret_key = nacl.bindings.crypto_sign_seed_keypair(seed)
    return KeyPair(public_key, secret_key)


def validate_key_pair(public_key: bytes, secret_key: bytes) -> bool:
    """True when ``secret_key`` is the libsodium secret key of ``public_key``."""
    return len(secret_key) == SECRET_KEY_BYTES and secret_key[32:] == public_key and \
        nacl.bindings.crypto_sign_seed_keypair(secret_key[:32])[0] == public_key


def sign(message: bytes, secret_key: bytes) -> bytes:
    """A detached 64-byte ed25519 signature."""
    return nacl.bindings.crypto_sign(message, secret_key)[:SIGNATURE_BYTES]


def verify(message: bytes, signature: bytes, public_key: bytes) -> bool:
    """True if ``signature`` is ``public_key``'s signature of ``message``."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def data_hash(data: bytes | memoryview) -> bytes:
    """The leaf hash of a block: BLAKE2b-256(0x00 || uint64be(len) || data)."""
    h = hashlib.blake2b(_LEAF, digest_size=32)
    h.update(_u64.pack(len(data)))
    h.update(data)
    return h.digest()


def parent_hash(a: TreeNode, b: TreeNode) -> bytes:
    """The hash of the parent of two sibling nodes (in either order)."""
    if a.index > b.index:
        a, b = b, a
    return parent_hash_raw(a.hash, b.hash, a.size + b.size)


def parent_hash_raw(left_hash: bytes, right_hash: bytes, size: int) -> bytes:
    """BLAKE2b-256(0x01 || uint64be(size) || left || right)."""
    return hashlib.blake2b(_PARENT + _u64.pack(size) + left_hash + right_hash, digest_size=32).digest()


def tree_hash(roots: Sequence[TreeNode]) -> bytes:
    """The hash of a list of roots: BLAKE2b-256(0x02 || (hash || uint64be(index) || uint64be(size))*)."""
    h = hashlib.blake2b(_ROOT, digest_size=32)
    for r in roots:
        h.update(r.hash)
        h.update(_u64.pack(r.index))
        h.update(_u64.pack(r.size))
    return h.digest()


def signable(roots: Sequence[TreeNode], length: int) -> bytes:
    """What a hypercore 9 writer signs: the tree hash of the roots followed by uint64be(length)."""
    return tree_hash(roots) + _u64.pack(length)


def discovery_key(public_key: bytes) -> bytes:
    """BLAKE2b-256 of ``b"hypercore"`` keyed with the feed's public key."""
    return hashlib.blake2b(_HYPERCORE, digest_size=32, key=public_key).digest()


def capability(key: bytes, split_tx: bytes, split_rx: bytes) -> bytes:
    """The capability a peer sends in its Open message for ``key`` (hypercore-crypto ``capability``)."""
    h = hashlib.blake2b(_HYPERCORE_CAP, digest_size=32, key=split_rx[:32])
    h.update(split_tx[:32])
    h.update(key)
    return h.digest()


def remote_capability(key: bytes, split_tx: bytes, split_rx: bytes) -> bytes:
    """The capability we expect from the remote for ``key`` (hypercore-crypto ``remoteCapability``)."""
    return capability(key, split_rx, split_tx)


def random_bytes(n: int) -> bytes:
    return os.urandom(n)
