"""Signing and verifying a hypercore 10/11 tree state (tree hash, length, fork) under a core's manifest.

Three ways, as hypercore's ``lib/verifier.js`` chooses them:

- compat (the key is the one signer's public key; a bare hypercore made from a key pair): a raw
  64-byte signature of :func:`~hypernode.core11.crypto.tree_signable_compat`.
- manifest version 0 (hypercore 10): one signer without patches signs raw, with its namespace in the
  signable; more signers sign into a version-0 multisig container.
- manifest version >= 1 (hypercore 11, corestore 7): each signer signs
  :func:`~hypernode.core11.crypto.tree_signable` with the manifest hash (the key) in it, and the
  signature is always a :class:`~hypernode.core11.manifest.MultiSignature`, even for one signer.

A manifest with a prologue accepts, up to the prologue's length, only that length with that tree hash.
Signatures that patch the tree (manifests with ``allow_patch``) are not verified yet: they fail.
"""

from __future__ import annotations

from hypernode.core11.crypto import KeyPair, sign, tree_signable, tree_signable_compat, verify
from hypernode.core11.manifest import (
    Manifest,
    MultiSignature,
    SignatureProof,
    Signer,
    decode_multisignature,
    decode_multisignature_v0,
    encode_multisignature,
    is_compat,
)
from hypernode.errors import DecodeError

__all__ = ["Verifier"]


class Verifier:
    """Signs and verifies the tree states of the core whose key is ``key`` and manifest ``manifest``."""

    def __init__(self, key: bytes, manifest: Manifest, *, compat: bool | None = None,
                 legacy: bool = False) -> None:
        self.key = key
        self.manifest = manifest
        self.compat = is_compat(key, manifest) if compat is None else compat
        self.legacy = legacy
        self.version = 0 if self.compat else manifest.version
        self.quorum = 1 if self.compat else manifest.effective_quorum
        self.allow_patch = not self.compat and manifest.allow_patch
        self.prologue = None if self.compat else manifest.prologue

    def signable(self, signer: Signer, tree_hash: bytes, length: int, fork: int) -> bytes:
        """What ``signer`` signs for this state."""
        if self.compat:
            return tree_signable_compat(tree_hash, length, fork, no_header=self.legacy)
        return tree_signable(signer.namespace if self.version == 0 else self.key, tree_hash, length, fork)

    def sign(self, tree_hash: bytes, length: int, fork: int, key_pair: KeyPair) -> bytes:
        """The signature ``key_pair`` (one of the signers) gives this state, as hypercore would store it."""
        for i, s in enumerate(self.manifest.signers):
            if s.public_key == key_pair.public_key:
                signature = sign(self.signable(s, tree_hash, length, fork), key_pair.secret_key)
                if len(self.manifest.signers) != 1 or self.version == 0:
                    return signature
                return encode_multisignature(MultiSignature(proofs=(SignatureProof(i, signature),)))
        raise ValueError("this key pair is not one of the manifest's signers")

    def verify(self, tree_hash: bytes, length: int, fork: int, signature: bytes | None) -> bool:
        """True if ``signature`` (or, within a prologue, the state itself) proves this state."""
        if self.version == 0:
            if not signature:
                return False
            if self.compat or (not self.allow_patch and len(self.manifest.signers) == 1):
                s = self.manifest.signers[0]
                return verify(self.signable(s, tree_hash, length, fork), signature, s.public_key)
            return self._verify_multi(tree_hash, length, fork, signature)
        if self.prologue is not None and length <= self.prologue.length:
            return length == self.prologue.length and tree_hash == self.prologue.hash
        return self._verify_multi(tree_hash, length, fork, signature)

    def _verify_multi(self, tree_hash: bytes, length: int, fork: int, signature: bytes | None) -> bool:
        if not signature or self.quorum == 0:
            return False
        try:
            if self.version >= 1:
                proofs = [(p.signer, p.signature, p.patch != 0)
                          for p in decode_multisignature(signature).proofs]
            else:
                proofs = [(p.signer, p.signature, p.patch is not None)
                          for p in decode_multisignature_v0(signature).proofs]
        except DecodeError:
            return False
        if len(proofs) < self.quorum:
            return False
        tried: set[int] = set()
        for signer, sig, patched in proofs[:self.quorum]:
            if patched and self.allow_patch:
                return False  # patched signatures: not supported yet
            if signer >= len(self.manifest.signers) or signer in tried:
                return False
            tried.add(signer)
            s = self.manifest.signers[signer]
            if not verify(self.signable(s, tree_hash, length, fork), sig, s.public_key):
                return False
        return True
