"""The manifest of a hypercore 10/11 core: who signs it and how, its encoding, its hash and the key it gives.

A manifest lists signers (ed25519 public keys, each with a 32-byte namespace), the quorum of them a
length needs, and optionally whether signatures may patch the tree, a prologue (a tree hash and length
the core starts from, fixed in advance), linked cores and user data (versions >= 2). The core's key is
:func:`manifest_hash` of it: BLAKE2b-256 of the MANIFEST capability followed by the encoded manifest.
A "compat" core (what a bare hypercore opened with a key pair is) instead has its one signer's public
key as its key, and signs the older way (see :mod:`hypernode.core11.verifier`).

Encoding (compact-encoding): ``uint version``; for version >= 1, ``uint flags`` (1 allowPatch, 2
prologue, 4 linked, 8 userData), ``uint hash`` (0: blake2b), ``uint quorum``, the signers (``uint
signature`` (0: ed25519), ``fixed32 namespace``, ``fixed32 publicKey``), then the flagged fields in that
order. Version 0 has its own shorter forms (hypercore 10). Decoding is strict: a version past 3, an
unknown hash or signature algorithm, or truncated bytes raise :class:`~hypernode.errors.DecodeError`.

Also here: the multisig signature container (:class:`MultiSignature`) that a manifest of version >= 1
signs into, even with one signer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypernode.core11.crypto import DEFAULT_NAMESPACE, MANIFEST, hash_batch
from hypernode.core11.encoding import Reader, Writer, decode
from hypernode.core11.tree import Node
from hypernode.errors import DecodeError

__all__ = ["Signer", "Prologue", "Manifest", "encode_manifest", "decode_manifest", "manifest_hash",
           "write_manifest_fields", "read_manifest_fields",
           "core_key", "is_compat", "default_signer_manifest", "SignatureProof", "MultiSignature",
           "encode_multisignature", "decode_multisignature", "PatchV0", "SignatureProofV0",
           "MultiSignatureV0", "encode_multisignature_v0", "decode_multisignature_v0"]

_FLAG_PATCH = 1
_FLAG_PROLOGUE = 2
_FLAG_LINKED = 4
_FLAG_USER_DATA = 8
MAX_VERSION = 3


@dataclass(frozen=True)
class Signer:
    """One signer: an ed25519 public key and the namespace it signs in (version-0 manifests sign with
    the namespace in the signable)."""

    public_key: bytes
    namespace: bytes = DEFAULT_NAMESPACE
    signature: str = "ed25519"

    def __post_init__(self) -> None:
        if len(self.public_key) != 32 or len(self.namespace) != 32:
            raise ValueError("a signer's public key and namespace are 32 bytes")
        if self.signature != "ed25519":
            raise ValueError("only ed25519 signers exist")


@dataclass(frozen=True)
class Prologue:
    """The tree hash a core has at ``length``, fixed by its manifest."""

    hash: bytes
    length: int

    def __post_init__(self) -> None:
        if len(self.hash) != 32 or self.length < 0:
            raise ValueError("a prologue is a 32-byte tree hash and a length")


@dataclass(frozen=True)
class Manifest:
    """A core's manifest. ``quorum`` ``None`` means the default, a majority of the signers (as JS)."""

    signers: tuple[Signer, ...]
    version: int = 1
    quorum: int | None = None
    allow_patch: bool = False
    prologue: Prologue | None = None
    linked: tuple[bytes, ...] | None = None
    user_data: bytes | None = None
    hash: str = "blake2b"

    def __post_init__(self) -> None:
        object.__setattr__(self, "signers", tuple(self.signers))
        q = self.quorum if self.quorum is not None else (len(self.signers) >> 1) + 1 if self.signers else 0
        if not 0 <= q <= len(self.signers):
            raise ValueError("quorum must be between 0 and the number of signers")
        object.__setattr__(self, "quorum", q)
        if not 0 <= self.version <= MAX_VERSION:
            raise ValueError(f"manifest version {self.version} (0 to {MAX_VERSION})")
        if self.hash != "blake2b":
            raise ValueError("only blake2b manifests exist")
        if self.linked is not None:
            object.__setattr__(self, "linked", tuple(self.linked))
            if any(len(k) != 32 for k in self.linked):
                raise ValueError("linked keys are 32 bytes")
        if self.version < 2 and (self.linked or self.user_data is not None):
            raise ValueError("linked cores and user data need manifest version 2")

    @property
    def effective_quorum(self) -> int:
        assert self.quorum is not None
        return self.quorum


def default_signer_manifest(public_key: bytes, version: int = 1) -> Manifest:
    """The manifest of a core with one signer, as hypercore and corestore 7 make for a key pair."""
    return Manifest(signers=(Signer(public_key),), version=version, quorum=1)


def _write_signer(w: Writer, s: Signer) -> None:
    w.uint(0).fixed32(s.namespace).fixed32(s.public_key)


def _read_signer(r: Reader) -> Signer:
    algo = r.uint()
    if algo != 0:
        raise DecodeError(f"unknown signature algorithm {algo}")
    namespace = r.fixed32()
    return Signer(public_key=r.fixed32(), namespace=namespace)


def _read_hash(r: Reader) -> str:
    algo = r.uint()
    if algo != 0:
        raise DecodeError(f"unknown hash algorithm {algo}")
    return "blake2b"


def write_manifest(w: Writer, m: Manifest) -> None:
    q = m.effective_quorum
    w.uint(m.version)
    if m.version == 0:
        w.uint(0)  # blake2b
        if m.prologue is not None and not m.signers:
            w.uint(0).fixed32(m.prologue.hash)
        elif q == 1 and len(m.signers) == 1 and not m.allow_patch:
            w.uint(1)
            _write_signer(w, m.signers[0])
        else:
            w.uint(2).uint(1 if m.allow_patch else 0).uint(q).array(m.signers, _write_signer)
        return
    write_manifest_fields(w, m)


def write_manifest_fields(w: Writer, m: Manifest) -> None:
    """What follows the version in a version-1+ manifest (corestore 7's storage writes every manifest,
    version 0 too, this way)."""
    flags = ((_FLAG_PATCH if m.allow_patch else 0)
             | (_FLAG_PROLOGUE if m.prologue is not None else 0)
             | (_FLAG_LINKED if m.linked is not None else 0)
             | (_FLAG_USER_DATA if m.user_data is not None else 0))
    w.uint(flags).uint(0).uint(m.effective_quorum).array(m.signers, _write_signer)
    if m.prologue is not None:
        w.fixed32(m.prologue.hash).uint(m.prologue.length)
    if m.linked is not None:
        w.array(m.linked, Writer.fixed32)
    if m.user_data is not None:
        w.buffer(m.user_data)


def read_manifest_fields(r: Reader, version: int) -> Manifest:
    """A manifest of ``version`` laid out as version 1+ lays it out (see :func:`write_manifest_fields`)."""
    flags = r.uint()
    _read_hash(r)
    quorum = r.uint()
    signers = tuple(r.array(_read_signer))
    prologue = Prologue(r.fixed32(), r.uint()) if flags & _FLAG_PROLOGUE else None
    linked = tuple(r.array(Reader.fixed32)) if flags & _FLAG_LINKED else None
    user_data = r.buffer() if flags & _FLAG_USER_DATA else None
    return Manifest(signers=signers, version=version, quorum=quorum, allow_patch=bool(flags & _FLAG_PATCH),
                    prologue=prologue, linked=linked, user_data=user_data)


def read_manifest(r: Reader) -> Manifest:
    version = r.uint()
    if version > MAX_VERSION:
        raise DecodeError(f"unknown manifest version {version}")
    try:
        if version == 0:
            _read_hash(r)
            kind = r.uint()
            if kind == 0:
                return Manifest(signers=(), version=0, quorum=0, prologue=Prologue(r.fixed32(), 0))
            if kind == 1:
                return Manifest(signers=(_read_signer(r),), version=0, quorum=1)
            if kind != 2:
                raise DecodeError(f"unknown version-0 manifest type {kind}")
            flags = r.uint()
            quorum = r.uint()
            return Manifest(signers=tuple(r.array(_read_signer)), version=0, quorum=quorum,
                            allow_patch=bool(flags & 1))
        return read_manifest_fields(r, version)
    except ValueError as e:
        if isinstance(e, DecodeError):
            raise
        raise DecodeError(f"invalid manifest: {e}") from None


def encode_manifest(m: Manifest) -> bytes:
    w = Writer()
    write_manifest(w, m)
    return w.getvalue()


def decode_manifest(data: bytes | bytearray | memoryview) -> Manifest:
    """A whole manifest (no bytes may be left over)."""
    return decode(read_manifest, data)


def manifest_hash(m: Manifest) -> bytes:
    """BLAKE2b-256 of the MANIFEST capability and the encoded manifest: the key of a non-compat core."""
    return hash_batch([MANIFEST, encode_manifest(m)])


def core_key(m: Manifest, compat: bool = False) -> bytes:
    """The key of the core ``m`` describes: its hash, or (``compat``) its one signer's public key."""
    if compat:
        if len(m.signers) != 1:
            raise ValueError("a compat core has exactly one signer")
        return m.signers[0].public_key
    return manifest_hash(m)


def is_compat(key: bytes, m: Manifest | None) -> bool:
    """True when ``key`` is the public key of ``m``'s one signer (a core that signs the compat way)."""
    return m is not None and len(m.signers) == 1 and key == m.signers[0].public_key


# --- the multisig container (manifest version >= 1) -------------------------------------------------

@dataclass(frozen=True)
class SignatureProof:
    """One signer's signature; ``patch`` is how many blocks past the signed length it patches (0: none)."""

    signer: int
    signature: bytes
    patch: int = 0


@dataclass(frozen=True)
class MultiSignature:
    proofs: tuple[SignatureProof, ...]
    patch: tuple[Node, ...] = ()


def _write_node(w: Writer, n: Node) -> None:
    w.uint(n.index).uint(n.size).fixed32(n.hash)


def _read_node(r: Reader) -> Node:
    return Node(index=r.uint(), size=r.uint(), hash=r.fixed32())


def _write_proof(w: Writer, p: SignatureProof) -> None:
    w.uint(p.signer).fixed64(p.signature).uint(p.patch)


def _read_proof(r: Reader) -> SignatureProof:
    return SignatureProof(signer=r.uint(), signature=r.fixed64(), patch=r.uint())


def encode_multisignature(s: MultiSignature) -> bytes:
    return Writer().array(s.proofs, _write_proof).array(s.patch, _write_node).getvalue()


def decode_multisignature(data: bytes | bytearray | memoryview) -> MultiSignature:
    """A multisig signature. Like JS, bytes after it are ignored (it is never embedded in more)."""
    def read(r: Reader) -> MultiSignature:
        return MultiSignature(proofs=tuple(r.array(_read_proof)), patch=tuple(r.array(_read_node)))
    return decode(read, data, exact=False)


# version 0 (hypercore 10's multisig): each proof carries its own patch description

@dataclass(frozen=True)
class PatchV0:
    start: int
    length: int
    nodes: tuple[int, ...]


@dataclass(frozen=True)
class SignatureProofV0:
    signer: int
    signature: bytes
    patch: PatchV0 | None = None


@dataclass(frozen=True)
class MultiSignatureV0:
    proofs: tuple[SignatureProofV0, ...]
    patch: tuple[Node, ...] = ()


def _write_proof_v0(w: Writer, p: SignatureProofV0) -> None:
    w.uint(1 if p.patch is not None else 0).uint(p.signer).fixed64(p.signature)
    if p.patch is not None:
        w.uint(p.patch.start).uint(p.patch.length).array(p.patch.nodes, Writer.uint)


def _read_proof_v0(r: Reader) -> SignatureProofV0:
    flags = r.uint()
    signer = r.uint()
    signature = r.fixed64()
    patch = PatchV0(r.uint(), r.uint(), tuple(r.array(Reader.uint))) if flags & 1 else None
    return SignatureProofV0(signer=signer, signature=signature, patch=patch)


def encode_multisignature_v0(s: MultiSignatureV0) -> bytes:
    return Writer().array(s.proofs, _write_proof_v0).array(s.patch, _write_node).getvalue()


def decode_multisignature_v0(data: bytes | bytearray | memoryview) -> MultiSignatureV0:
    def read(r: Reader) -> MultiSignatureV0:
        return MultiSignatureV0(proofs=tuple(r.array(_read_proof_v0)), patch=tuple(r.array(_read_node)))
    return decode(read, data, exact=False)
