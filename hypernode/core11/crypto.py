"""The hashes and capabilities of hypercore 10/11 (hypercore-crypto 3.x and hypercore's ``lib/caps.js``).

All hashes are BLAKE2b-256. The merkle tree's are as in hypercore 9 except that sizes and indexes are
little-endian uint64 (compact-encoding's ``uint64``), not big-endian:

- leaf: ``0x00 || uint64(len(data)) || data``
- parent: ``0x01 || uint64(left.size + right.size) || left.hash || right.hash`` (left = lower index)
- tree hash of the roots: ``0x02`` then, per root, ``hash || uint64(index) || uint64(size)``

The discovery key is BLAKE2b-256 of ``b"hypercore"`` keyed with the core's key (as before).
``namespace(name, n)`` gives n 32-byte ids: ``H(H(name) || byte(i))``. hypercore's caps are
``namespace("hypercore", 6)``: TREE, REPLICATE_INITIATOR, REPLICATE_RESPONDER, MANIFEST,
DEFAULT_NAMESPACE, DEFAULT_ENCRYPTION.

What a writer signs (:func:`tree_signable`) is ``TREE || manifest hash || tree hash || uint64(length) ||
uint64(fork)``, 112 bytes, for manifests of version 1 and up (version 0 puts the signer's namespace where
the manifest hash is); a "compat" core (its key is the signer's public key) signs
:func:`tree_signable_compat`, ``TREE || tree hash || uint64(length) || uint64(fork)`` (80 bytes; 48
without the TREE header in legacy mode).

Ed25519 is the same in both generations: :class:`KeyPair`, :func:`key_pair`, :func:`sign` and
:func:`verify` are :mod:`hypernode.crypto`'s (libsodium through pynacl).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence

from hypernode.crypto import KeyPair, TreeNode, key_pair, sign, validate_key_pair, verify

__all__ = ["KeyPair", "key_pair", "sign", "verify", "validate_key_pair", "HashedNode", "leaf_hash",
           "parent_hash", "tree_hash", "discovery_key", "namespace", "TREE", "REPLICATE_INITIATOR",
           "REPLICATE_RESPONDER", "MANIFEST", "DEFAULT_NAMESPACE", "DEFAULT_ENCRYPTION",
           "replicate_capability", "tree_signable", "tree_signable_compat", "hash_batch"]

_LEAF = b"\x00"
_PARENT = b"\x01"
_ROOT = b"\x02"
_u64 = struct.Struct("<Q")


HashedNode = TreeNode  # a merkle tree node as the hashes see it: index, size, hash (as in v9)


def hash_batch(parts: Iterable[bytes | bytearray | memoryview], key: bytes | None = None) -> bytes:
    """BLAKE2b-256 of the parts concatenated (keyed with ``key`` if given)."""
    h = hashlib.blake2b(digest_size=32, key=key or b"")
    for p in parts:
        h.update(p)
    return h.digest()


_blake2b = hashlib.blake2b
_pack_u64 = _u64.pack


def leaf_hash(data: bytes | bytearray | memoryview) -> bytes:
    """The hash of a block: a leaf of the merkle tree."""
    if len(data) <= 4096:  # (one call; a bigger block is hashed where it is rather than copied)
        return _blake2b(_LEAF + _pack_u64(len(data)) + data, digest_size=32).digest()
    h = _blake2b(_LEAF + _pack_u64(len(data)), digest_size=32)
    h.update(data)
    return h.digest()


def parent_hash(a: HashedNode, b: HashedNode) -> bytes:
    """The hash of the parent of two sibling nodes (in either order)."""
    if a.index > b.index:
        a, b = b, a
    return _blake2b(_PARENT + _pack_u64(a.size + b.size) + a.hash + b.hash, digest_size=32).digest()


def tree_hash(roots: Sequence[HashedNode]) -> bytes:
    """The hash of a tree state: its roots, in order."""
    h = hashlib.blake2b(_ROOT, digest_size=32)
    for r in roots:
        h.update(r.hash)
        h.update(_u64.pack(r.index))
        h.update(_u64.pack(r.size))
    return h.digest()


def discovery_key(key: bytes) -> bytes:
    """The discovery key of a core: what peers announce and open channels by, instead of the key."""
    if len(key) != 32:
        raise ValueError("a core key is 32 bytes")
    return hashlib.blake2b(b"hypercore", digest_size=32, key=key).digest()


def namespace(name: str | bytes, count: int | Sequence[int]) -> list[bytes]:
    """hypercore-crypto's ``namespace``: 32-byte ids ``H(H(name) || byte(i))`` for i in ``count``
    (0 .. count-1, or the given ids, each 0..255)."""
    ids = range(count) if isinstance(count, int) else count
    ns = hashlib.blake2b(name.encode() if isinstance(name, str) else name, digest_size=32).digest()
    return [hashlib.blake2b(ns + bytes((i,)), digest_size=32).digest() for i in ids]


(TREE, REPLICATE_INITIATOR, REPLICATE_RESPONDER, MANIFEST, DEFAULT_NAMESPACE,
 DEFAULT_ENCRYPTION) = namespace("hypercore", 6)


def replicate_capability(is_initiator: bool, key: bytes, handshake_hash: bytes) -> bytes:
    """The capability a peer proves it knows ``key`` with, over a secret-stream whose handshake hash is
    ``handshake_hash`` (hypercore's ``caps.replicate``)."""
    return hash_batch([REPLICATE_INITIATOR if is_initiator else REPLICATE_RESPONDER, key], key=handshake_hash)


def tree_signable(manifest_hash: bytes, tree_hash: bytes, length: int, fork: int) -> bytes:
    """The 112 bytes a signer of a manifest of version >= 1 signs (version 0: its namespace instead of
    ``manifest_hash``)."""
    if len(manifest_hash) != 32 or len(tree_hash) != 32:
        raise ValueError("hashes are 32 bytes")
    return TREE + manifest_hash + tree_hash + _u64.pack(length) + _u64.pack(fork)


def tree_signable_compat(tree_hash: bytes, length: int, fork: int, no_header: bool = False) -> bytes:
    """The bytes a compat core's key signs: 80 (48 in legacy mode, without the TREE header)."""
    if len(tree_hash) != 32:
        raise ValueError("hashes are 32 bytes")
    body = tree_hash + _u64.pack(length) + _u64.pack(fork)
    return body if no_header else TREE + body
