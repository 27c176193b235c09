"""hypernode.core11 against the pinned hypercore 11.39.5 stack (interop/v11), byte for byte, both ways.

interop/v11/js/core_tool.js runs a real hypercore 11 core on disk: made from a key pair it appends the
same blocks as a Python :class:`~hypernode.core11.log.Log` and both must give the same key, discovery
key, manifest, tree hashes at every length, roots, byte lengths, forks and signatures (ed25519 is
deterministic); made read-only from Python's key and manifest it takes each batch only with the signature
Python made, through hypercore's own verifier. interop/v11/js/kat_tool.js gives the caps, hashes,
manifest encodings and multisig containers that the Python side must reproduce.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from hypernode.core11 import crypto as c11
from hypernode.core11.log import Log
from hypernode.core11.manifest import (
    Manifest,
    MultiSignature,
    MultiSignatureV0,
    PatchV0,
    Prologue,
    SignatureProof,
    SignatureProofV0,
    Signer,
    decode_manifest,
    decode_multisignature,
    encode_manifest,
    encode_multisignature,
    encode_multisignature_v0,
    manifest_hash,
)
from hypernode.core11.tree import Node
from hypernode.core11.verifier import Verifier
from hypernode.errors import VerificationError

pytestmark = pytest.mark.interop

KIB = 1024
# 64 KiB and 1 KiB blocks in several batches, an empty block, a truncation (the fork moves on) and appends
# after it
OPS: list[dict[str, Any]] = [
    {"append": [64 * KIB] * 3},
    {"append": [KIB] * 5},
    {"append": [64 * KIB, KIB, 0, 7]},
    {"append": [KIB]},
    {"truncate": 6},
    {"append": [KIB] * 9 + [64 * KIB]},
    {"truncate": 0},
    {"append": [KIB, 64 * KIB]},
]


def _data_for(ops: list[dict[str, Any]], seed: bytes) -> bytes:
    total = sum(sum(op.get("append", [])) for op in ops)
    out = bytearray()
    counter = 0
    while len(out) < total:  # deterministic, incompressible
        out += hashlib.blake2b(seed + counter.to_bytes(8, "little"), digest_size=64).digest()
        counter += 1
    return bytes(out[:total])


def _python_run(log: Log, ops: list[dict[str, Any]], data: bytes) -> list[dict[str, Any]]:
    """The same ops on a Python log, described as core_tool.js describes its states."""
    states = []
    offset = 0
    for op in ops:
        if "append" in op:
            blocks = []
            for n in op["append"]:
                blocks.append(data[offset:offset + n])
                offset += n
            log.append(blocks)
        else:
            log.truncate(op["truncate"])
        states.append({
            "length": log.length,
            "byteLength": log.byte_length,
            "fork": log.fork,
            "treeHash": log.tree_hash().hex(),
            "signature": log.signature.hex() if log.signature else None,
            "roots": [{"index": r.index, "size": r.size, "hash": r.hash.hex()} for r in log.roots()],
            "treeHashes": [log.tree_hash(n).hex() for n in range(log.length + 1)],
        })
    return states


def _spec(tmp_path: Path, data: bytes, **spec: Any) -> Path:
    (tmp_path / "blocks.bin").write_bytes(data)
    path = tmp_path / f"spec{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps({"data": str(tmp_path / "blocks.bin"), **spec}))
    return path


@pytest.mark.parametrize("compat", [False, True], ids=["manifest-keyed", "compat"])
def test_js_core_and_python_log_match_byte_for_byte(js11, tmp_path: Path, compat: bool):
    seed = hashlib.blake2b(b"core11 interop %d" % compat, digest_size=32).digest()
    data = _data_for(OPS, seed)
    theirs = js11("core_tool.js", "write", _spec(tmp_path, data, seed=seed.hex(), compat=compat, ops=OPS))

    log = Log.create(c11.key_pair(seed), compat=compat)
    ours = _python_run(log, OPS, data)

    assert theirs["key"] == log.key.hex()
    assert theirs["discoveryKey"] == log.discovery_key.hex() == c11.discovery_key(log.key).hex()
    assert theirs["manifest"] == log.encoded_manifest.hex()
    if compat:
        assert log.key == log.key_pair.public_key  # type: ignore[union-attr]
    else:
        assert log.key == manifest_hash(log.manifest) != log.manifest.signers[0].public_key
    assert len(theirs["states"]) == len(OPS)
    for op, js_state, py_state in zip(OPS, theirs["states"], ours, strict=True):
        assert js_state == py_state, op
    # the states really differ from one another (a run that compares nothing cannot pass)
    assert len({s["signature"] for s in ours}) == len(OPS)
    assert [s["fork"] for s in ours] == [0, 0, 0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("compat", [False, True], ids=["manifest-keyed", "compat"])
def test_js_verifies_python_signatures(js11, tmp_path: Path, compat: bool):
    """A read-only JS core made from Python's key (and manifest) takes every batch and truncation with
    the signature Python made, through hypercore's verifier, and ends in Python's state."""
    seed = hashlib.blake2b(b"python signs %d" % compat, digest_size=32).digest()
    data = _data_for(OPS, seed)
    log = Log.create(c11.key_pair(seed), compat=compat)
    ours = _python_run(log, OPS, data)
    signed = [{**op, "signature": s["signature"]} for op, s in zip(OPS, ours, strict=True)]

    manifest = None if compat else log.encoded_manifest.hex()
    theirs = js11("core_tool.js", "follow",
                  _spec(tmp_path, data, key=log.key.hex(), manifest=manifest, ops=signed))
    assert theirs["key"] == log.key.hex()
    assert theirs["states"] == ours


@pytest.mark.parametrize("compat", [False, True], ids=["manifest-keyed", "compat"])
@pytest.mark.parametrize("flaw", ["flipped-bit", "other-fork", "other-key"])
def test_js_refuses_a_bad_python_signature(js11, tmp_path: Path, compat: bool, flaw: str):
    seed = hashlib.blake2b(b"bad signature", digest_size=32).digest()
    data = _data_for(OPS[:3], seed)
    log = Log.create(c11.key_pair(seed), compat=compat)
    ours = _python_run(log, OPS[:3], data)
    sig = bytearray.fromhex(ours[1]["signature"])
    if flaw == "flipped-bit":
        sig[-10 if compat else 30] ^= 0x04
    elif flaw == "other-fork":  # the right state but signed at fork 1
        sig = bytearray(log.verifier.sign(bytes.fromhex(ours[1]["treeHash"]), ours[1]["length"], 1,
                                          log.key_pair))  # type: ignore[arg-type]
    else:  # the right state signed by someone else's key
        other = Log.create(c11.key_pair(bytes(32)), compat=compat)
        sig = bytearray(Verifier(log.key, other.manifest, compat=compat).sign(
            bytes.fromhex(ours[1]["treeHash"]), ours[1]["length"], 0, other.key_pair))  # type: ignore[arg-type]
    signed = [{**op, "signature": s["signature"]} for op, s in zip(OPS[:3], ours, strict=True)]
    signed[1]["signature"] = sig.hex()
    manifest = None if compat else log.encoded_manifest.hex()
    theirs = js11("core_tool.js", "follow",
                  _spec(tmp_path, data, key=log.key.hex(), manifest=manifest, ops=signed))
    assert theirs["states"][0] == ours[0]
    assert theirs["states"][1] == {"error": "INVALID_SIGNATURE"}
    assert len(theirs["states"]) == 2


@pytest.mark.parametrize("compat", [False, True], ids=["manifest-keyed", "compat"])
def test_python_verifies_js_signatures(js11, tmp_path: Path, compat: bool):
    """A read-only Python log from JS's key and manifest takes every JS state with JS's signature, and
    refuses (nothing kept) a signature of another state."""
    seed = hashlib.blake2b(b"js signs %d" % compat, digest_size=32).digest()
    data = _data_for(OPS, seed)
    theirs = js11("core_tool.js", "write", _spec(tmp_path, data, seed=seed.hex(), compat=compat, ops=OPS))
    key = bytes.fromhex(theirs["key"])
    manifest = decode_manifest(bytes.fromhex(theirs["manifest"]))
    log = Log.open(key) if compat else Log.open(key, manifest)
    assert log.compat is compat and not log.writable

    offset = 0
    for op, state in zip(OPS, theirs["states"], strict=True):
        signature = bytes.fromhex(state["signature"])
        if "append" in op:
            blocks = [data[o:o + n] for o, n in _offsets(offset, op["append"])]
            offset += sum(op["append"])
            bad = bytearray(signature)
            bad[-1 if compat else 40] ^= 1
            with pytest.raises(VerificationError):
                log.append(blocks, signature=bytes(bad))
            with pytest.raises(VerificationError):  # the signature of this state, for fewer blocks
                log.append(blocks[:-1] or [b"x"], signature=signature)
            log.append(blocks, signature=signature)
        else:
            with pytest.raises(VerificationError):  # the same cut at the same fork is another state
                log.truncate(op["truncate"], fork=log.fork, signature=signature)
            log.truncate(op["truncate"], signature=signature)
        assert (log.length, log.byte_length, log.fork, log.tree_hash().hex()) == \
            (state["length"], state["byteLength"], state["fork"], state["treeHash"])
        assert log.signature == signature


def _offsets(start: int, sizes: list[int]) -> list[tuple[int, int]]:
    out = []
    for n in sizes:
        out.append((start, n))
        start += n
    return out


def test_known_answers_of_hypercore_11(js11):
    """Caps, hashes, namespaces, signables, manifest encodings and hashes, multisig containers and
    signatures from hypercore 11's own modules, reproduced by core11."""
    seed = os.urandom(32)
    kat = js11("kat_tool.js", seed.hex())
    pairs = [c11.key_pair(c11.hash_batch([seed, bytes((i,))])) for i in (1, 2, 3)]
    assert kat["keyPairs"] == [{"publicKey": k.public_key.hex(), "secretKey": k.secret_key.hex()}
                               for k in pairs]
    k1, k2, k3 = (p.public_key for p in pairs)

    assert kat["caps"] == {"TREE": c11.TREE.hex(), "MANIFEST": c11.MANIFEST.hex(),
                           "DEFAULT_NAMESPACE": c11.DEFAULT_NAMESPACE.hex(),
                           "DEFAULT_ENCRYPTION": c11.DEFAULT_ENCRYPTION.hex()}
    assert kat["namespace"] == [x.hex() for x in c11.namespace("some app", [0, 5, 255])]
    assert kat["replicate"] == [c11.replicate_capability(i, b"\1" * 32, b"\2" * 64).hex()
                                for i in (True, False)]
    assert kat["leaf"] == [c11.leaf_hash(b"").hex(), c11.leaf_hash(b"\1" * 70000).hex()]
    assert kat["parent"] == c11.parent_hash(Node(2, 7, b"\2" * 32), Node(0, 300, b"\1" * 32)).hex()
    assert kat["tree"] == c11.tree_hash([Node(7, 10**12, b"\1" * 32), Node(17, 3, b"\2" * 32)]).hex()
    assert kat["discoveryKey"] == c11.discovery_key(b"\x08" * 32).hex()
    th = bytes.fromhex(kat["treeHash"])
    assert kat["signable"] == c11.tree_signable(b"\1" * 32, th, 2**40 + 3, 258).hex()
    assert kat["signableCompat"] == [c11.tree_signable_compat(th, 5, 1).hex(),
                                     c11.tree_signable_compat(th, 5, 1, no_header=True).hex()]

    ours = {
        "v1_one": Manifest(signers=(Signer(k1),)),
        "v0_one": Manifest(version=0, signers=(Signer(k1, namespace=b"\7" * 32),)),
        "v0_many": Manifest(version=0, quorum=2, signers=(Signer(k1), Signer(k2))),
        "v0_prologue": Manifest(version=0, signers=(), prologue=Prologue(b"\x09" * 32, 0)),
        "v1_patch_prologue": Manifest(allow_patch=True, signers=(Signer(k1), Signer(k2), Signer(k3)),
                                      prologue=Prologue(b"\5" * 32, 300)),
        "v1_three": Manifest(signers=(Signer(k1, namespace=b"\1" * 32), Signer(k2), Signer(k3))),
        "v2_linked": Manifest(version=2, signers=(Signer(k1),), linked=(b"\3" * 32, b"\4" * 32),
                              user_data=b"user data"),
    }
    assert set(ours) == set(kat["manifests"])
    for name, m in ours.items():
        theirs = kat["manifests"][name]
        encoded = bytes.fromhex(theirs["encoded"])
        assert encode_manifest(m) == encoded, name
        assert decode_manifest(encoded) == m, name
        assert manifest_hash(m).hex() == theirs["hash"] == theirs["key"], name
        assert m.quorum == theirs["quorum"], name
        key = manifest_hash(m)
        v = Verifier(key, m)
        for st in theirs.get("prologueStates", []):
            assert v.verify(bytes.fromhex(st["hash"]), st["length"], 0, None) is st["verifies"], (name, st)
        if "signature" not in theirs:
            continue
        sig = bytes.fromhex(theirs["signature"])
        assert theirs["verifies"] is True
        assert v.verify(th, 400, 2, sig), name
        assert not v.verify(th, 400, 3, sig), name
        assert not v.verify(th, 401, 2, sig), name
        if len(m.signers) == 1:
            assert v.sign(th, 400, 2, pairs[0]).hex() == theirs["signature"], name
        else:
            proofs = tuple(
                SignatureProof(i, c11.sign(v.signable(m.signers[i], th, 400, 2), pairs[i].secret_key))
                for i in range(m.effective_quorum))
            if m.version == 0:
                ours_sig = encode_multisignature_v0(MultiSignatureV0(
                    tuple(SignatureProofV0(p.signer, p.signature) for p in proofs)))
            else:
                ours_sig = encode_multisignature(MultiSignature(proofs))
            assert ours_sig == sig, name
            # one signature short of the quorum fails
            short = (encode_multisignature(MultiSignature(proofs[:-1])) if m.version else
                     encode_multisignature_v0(MultiSignatureV0(
                         tuple(SignatureProofV0(p.signer, p.signature) for p in proofs[:-1]))))
            assert not v.verify(th, 400, 2, short)

    compat = Verifier(k1, Manifest(signers=(Signer(k1),)))
    legacy = Verifier(k1, Manifest(signers=(Signer(k1),)), legacy=True)
    assert compat.compat and compat.sign(th, 400, 2, pairs[0]).hex() == kat["compatSignature"]
    assert legacy.sign(th, 400, 2, pairs[0]).hex() == kat["legacySignature"]
    assert compat.verify(th, 400, 2, bytes.fromhex(kat["compatSignature"]))
    assert not compat.verify(th, 400, 2, bytes.fromhex(kat["legacySignature"]))

    node = Node(5, 9, b"\x08" * 32)
    ms = MultiSignature((SignatureProof(2, b"\6" * 64), SignatureProof(0, b"\7" * 64, 3)), (node,))
    assert encode_multisignature(ms).hex() == kat["multisig"]
    assert decode_multisignature(bytes.fromhex(kat["multisig"])) == ms
    ms0 = MultiSignatureV0((SignatureProofV0(1, b"\6" * 64),
                            SignatureProofV0(0, b"\7" * 64, PatchV0(4, 2, (0, 3)))), (node,))
    assert encode_multisignature_v0(ms0).hex() == kat["multisigv0"]
