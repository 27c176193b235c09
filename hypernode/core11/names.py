"""Corestore 7's names: the key pair, manifest, key and discovery key of a core a store gets by name.

A corestore 7 holds one secret 32-byte *primary key*. A core it gets by ``name`` in a namespace
(``store.namespace("a").namespace("b").get({ name })``) is derived from it, with no randomness:

- a namespace is a 32-byte id. The store's default one is 32 zero bytes (not hypercore's
  DEFAULT_NAMESPACE capability); ``namespace(name)`` gives ``BLAKE2b-256(parent id || name)``;
- the core's seed is ``BLAKE2b-256(CORESTORE || namespace id || name)`` keyed with the primary key,
  where ``CORESTORE`` is hypercore-crypto's ``namespace("corestore", 1)[0]``, and its ed25519 key pair
  is ``crypto_sign_seed_keypair(seed)``;
- its manifest has that one signer (quorum 1, the default signer namespace) and the store's manifest
  version (1 unless the store was made with another); its key is the manifest's hash
  (:func:`~hypernode.core11.manifest.manifest_hash`, never the compat public key) and its discovery key
  is :func:`~hypernode.core11.crypto.discovery_key` of that.

Names are UTF-8 (a ``str`` here, as JS encodes a string); namespace names and key-pair names may also
be raw bytes, as JS takes a Buffer. JS replaces a lone UTF-16 surrogate with U+FFFD when it encodes;
Python refuses one (``ValueError``) rather than derive a key JS would not. As in JS, ``get`` needs a
non-empty name (:meth:`Namespace.core` refuses ``""``), while an empty namespace name and an empty
key-pair name (``store.createKeyPair("")``) are allowed. A JS ``store.session()`` (unlike
``store.namespace(...)``) is back in the default namespace.

This module owns that derivation only: no storage of the primary key or of the name -> core aliases.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from hypernode.core11.crypto import KeyPair, discovery_key, key_pair, namespace
from hypernode.core11.manifest import Manifest, default_signer_manifest, manifest_hash

__all__ = ["CORESTORE", "ROOT_NAMESPACE", "namespace_id", "derive_seed", "derive_key_pair", "Namespace",
           "NamedCore"]

CORESTORE = namespace("corestore", 1)[0]
ROOT_NAMESPACE = bytes(32)  # a store's default namespace


def _name_bytes(name: str | bytes) -> bytes:
    if isinstance(name, str):
        try:
            return name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError("a name is valid Unicode (no lone surrogates)") from e
    if isinstance(name, (bytes, bytearray, memoryview)):
        return bytes(name)
    raise TypeError("a name is a str or bytes")


def _check32(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)) or len(value) != 32:
        raise ValueError(f"{what} is 32 bytes")
    return bytes(value)


def namespace_id(parent: bytes, name: str | bytes) -> bytes:
    """The id of namespace ``name`` inside the namespace ``parent`` (corestore's ``namespace()``)."""
    return hashlib.blake2b(_check32(parent, "a namespace id") + _name_bytes(name), digest_size=32).digest()


def derive_seed(primary_key: bytes, ns: bytes, name: str | bytes) -> bytes:
    """The 32-byte ed25519 seed of core ``name`` in namespace ``ns`` of the store with ``primary_key``."""
    h = hashlib.blake2b(digest_size=32, key=_check32(primary_key, "a primary key"))
    h.update(CORESTORE)
    h.update(_check32(ns, "a namespace id"))
    h.update(_name_bytes(name))
    return h.digest()


def derive_key_pair(primary_key: bytes, ns: bytes, name: str | bytes) -> KeyPair:
    """The key pair corestore's ``createKeyPair(name, ns)`` gives."""
    return key_pair(derive_seed(primary_key, ns, name))


@dataclass(frozen=True)
class NamedCore:
    """What a store knows of a core it gets by name before opening it."""

    name: str
    key_pair: KeyPair = field(repr=False)
    manifest: Manifest
    key: bytes
    discovery_key: bytes


@dataclass(frozen=True)
class Namespace:
    """A store's view in one namespace, like a corestore 7 session: ``Namespace(primary_key)`` is the
    default namespace, ``.namespace(name)`` a nested one (chain it), ``.core(name)`` a named core.

    ``id`` is the raw 32-byte namespace (what JS passes as ``{ namespace }`` to ``store.session``);
    ``manifest_version`` is the store's ``manifestVersion``. The primary key is secret: not in the repr.
    """

    primary_key: bytes = field(repr=False)
    id: bytes = ROOT_NAMESPACE
    manifest_version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "primary_key", _check32(self.primary_key, "a primary key"))
        object.__setattr__(self, "id", _check32(self.id, "a namespace id"))
        if self.manifest_version < 1:  # JS: `opts.manifestVersion || 1`, so 0 means 1 there
            raise ValueError("corestore 7 makes manifests of version 1 or more")

    def namespace(self, name: str | bytes) -> Namespace:
        """The namespace ``name`` inside this one."""
        return Namespace(self.primary_key, namespace_id(self.id, name), self.manifest_version)

    def key_pair(self, name: str | bytes) -> KeyPair:
        """The key pair of ``name`` here (``store.createKeyPair(name)``; any name, even empty)."""
        return derive_key_pair(self.primary_key, self.id, name)

    def core(self, name: str) -> NamedCore:
        """The key pair, manifest, key and discovery key of ``get({ name })`` here."""
        if not isinstance(name, str):
            raise TypeError("a core's name is a str")
        if not name:
            raise ValueError("a core's name is not empty (JS cannot get a core by the name '')")
        kp = self.key_pair(name)
        manifest = default_signer_manifest(kp.public_key, version=self.manifest_version)
        key = manifest_hash(manifest)
        return NamedCore(name, kp, manifest, key, discovery_key(key))
