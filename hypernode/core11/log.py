"""A hypercore 11 core held in memory: its blocks, merkle tree, manifest, key, fork and signature.

:meth:`Log.create` makes a writable core from a key pair, keyed as corestore 7 keys it (the hash of a
version-1 manifest with that one signer) or, with ``compat=True``, as a bare JS hypercore made from a key
pair (the public key is the key). :meth:`Log.open` makes a read-only one from a key (and manifest): it
takes blocks only with a signature that verifies, as a JS core does for ``append(blocks, {signature})``.
Every append or truncation is one signed state: nothing is kept of a batch whose signature fails.

No storage, no peers and no proofs: this is the model the storage and wire layers of later steps build
on, and what the interop tests compare with JS byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable

from hypernode.core11.crypto import KeyPair, discovery_key
from hypernode.core11.manifest import Manifest, core_key, default_signer_manifest, encode_manifest
from hypernode.core11.tree import MerkleTree, Node, TreeBatch
from hypernode.core11.verifier import Verifier
from hypernode.errors import BlockNotAvailableError, NotWritableError, VerificationError

__all__ = ["Log"]


class Log:
    """An append-only signed log of blocks, in memory. Use :meth:`create` or :meth:`open`."""

    def __init__(self, key: bytes, manifest: Manifest, *, key_pair: KeyPair | None = None,
                 compat: bool | None = None, legacy: bool = False) -> None:
        self.key = key
        self.manifest = manifest
        self.discovery_key = discovery_key(key)
        self.verifier = Verifier(key, manifest, compat=compat, legacy=legacy)
        if not self.verifier.compat and core_key(manifest) != key:
            raise VerificationError("the manifest does not hash to the key")
        if key_pair is not None and not any(s.public_key == key_pair.public_key for s in manifest.signers):
            raise ValueError("the key pair is not one of the manifest's signers")
        self.key_pair = key_pair
        self.tree = MerkleTree()
        self.blocks: list[bytes] = []
        self.signature: bytes | None = None

    @classmethod
    def create(cls, key_pair: KeyPair, *, compat: bool = False, manifest_version: int = 1) -> Log:
        """A new writable core signed by ``key_pair``."""
        manifest = default_signer_manifest(key_pair.public_key, version=manifest_version)
        return cls(core_key(manifest, compat=compat), manifest, key_pair=key_pair, compat=compat)

    @classmethod
    def open(cls, key: bytes, manifest: Manifest | None = None) -> Log:
        """A read-only core; without a manifest, ``key`` is taken as a compat core's public key."""
        if manifest is None:
            manifest = default_signer_manifest(key)
        return cls(key, manifest)

    @property
    def compat(self) -> bool:
        return self.verifier.compat

    @property
    def encoded_manifest(self) -> bytes:
        return encode_manifest(self.manifest)

    @property
    def writable(self) -> bool:
        return self.key_pair is not None

    @property
    def length(self) -> int:
        return self.tree.length

    @property
    def byte_length(self) -> int:
        return self.tree.byte_length

    @property
    def fork(self) -> int:
        return self.tree.fork

    def roots(self, length: int | None = None) -> list[Node]:
        return list(self.tree.roots) if length is None else self.tree.roots_at(length)

    def tree_hash(self, length: int | None = None) -> bytes:
        return self.tree.hash(length)

    def get(self, index: int) -> bytes:
        if not 0 <= index < len(self.blocks):
            raise BlockNotAvailableError(f"block {index} is past the core's length {len(self.blocks)}")
        return self.blocks[index]

    def append(self, blocks: bytes | Iterable[bytes], *, signature: bytes | None = None) -> int:
        """Append one block or a batch as one signed state; returns the new length. A read-only core
        needs the ``signature`` of the new state (:class:`VerificationError` if it does not verify)."""
        batch_blocks = [blocks] if isinstance(blocks, bytes | bytearray | memoryview) else list(blocks)
        batch = self.tree.batch(batch_blocks)
        self._sign_and_commit(batch, signature)
        self.blocks.extend(bytes(b) for b in batch_blocks)
        return self.length

    def truncate(self, length: int, *, fork: int | None = None, signature: bytes | None = None) -> None:
        """Cut the core back to ``length`` blocks; the fork moves on (to ``fork``, default one more)."""
        if length > self.length:
            raise ValueError(f"truncating to {length} is no truncation of a core of length {self.length}")
        self._sign_and_commit(self.tree.truncation(length, fork), signature)
        del self.blocks[length:]

    def verify(self, tree_hash: bytes, length: int, fork: int, signature: bytes | None) -> bool:
        """True if ``signature`` signs that state of this core."""
        return self.verifier.verify(tree_hash, length, fork, signature)

    def _sign_and_commit(self, batch: TreeBatch, signature: bytes | None) -> None:
        tree_hash = batch.hash()
        if signature is not None:
            if not self.verifier.verify(tree_hash, batch.length, batch.fork, signature):
                raise VerificationError(f"the signature of length {batch.length} does not verify")
        elif self.key_pair is not None:
            signature = self.verifier.sign(tree_hash, batch.length, batch.fork, self.key_pair)
        else:
            raise NotWritableError("this core is read-only: a new length needs its signature")
        self.tree.commit(batch)
        self.signature = signature
