"""hypernode.core11 on its own: compact-encoding round trips and hostile input, the manifest and multisig
decoders under fuzz, the merkle tree against a tree recomputed from scratch, and the log's rules.
(Byte-for-byte agreement with JS is interop/test_core11_interop.py.)"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode import flat_tree
from hypernode.core11 import crypto as c11
from hypernode.core11.encoding import MAX_SAFE_INTEGER, Reader, Writer, decode, uint_length
from hypernode.core11.log import Log
from hypernode.core11.manifest import (
    Manifest,
    MultiSignature,
    Prologue,
    SignatureProof,
    Signer,
    decode_manifest,
    decode_multisignature,
    decode_multisignature_v0,
    encode_manifest,
    encode_multisignature,
)
from hypernode.core11.proof import (
    BlockRequest,
    DataBlock,
    DataHash,
    DataUpgrade,
    HashRequest,
    Proof,
    UpgradeRequest,
    make_proof,
    verify_proof,
)
from hypernode.core11.tree import MerkleTree, Node
from hypernode.errors import BlockNotAvailableError, DecodeError, NotWritableError, VerificationError

uints = st.integers(0, MAX_SAFE_INTEGER)


# --- compact-encoding ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "encoded"), [
    (0, "00"), (0xFC, "fc"), (0xFD, "fdfd00"), (0xFFFF, "fdffff"), (0x10000, "fe00000100"),
    (0xFFFFFFFF, "feffffffff"), (2**32, "ff0000000001000000"), (MAX_SAFE_INTEGER, "ffffffffffffff1f00"),
])
def test_uint_layout(n: int, encoded: str):
    assert Writer().uint(n).getvalue().hex() == encoded
    assert decode(Reader.uint, bytes.fromhex(encoded)) == n
    assert uint_length(n) == len(encoded) // 2


def test_uint_accepts_long_forms_and_refuses_unsafe_values():
    assert decode(Reader.uint, bytes.fromhex("fd0500")) == 5  # as JS: a longer form than needed reads
    with pytest.raises(DecodeError):
        decode(Reader.uint, bytes.fromhex("ff0000000000002000"))  # 2**53
    with pytest.raises(ValueError):
        Writer().uint(MAX_SAFE_INTEGER + 1)
    with pytest.raises(ValueError):
        Writer().uint(-1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("uint"), uints),
    st.tuples(st.just("zigzag"), st.integers(-(2**52), 2**52 - 1)),
    st.tuples(st.just("uint8"), st.integers(0, 0xFF)),
    st.tuples(st.just("uint16"), st.integers(0, 0xFFFF)),
    st.tuples(st.just("uint24"), st.integers(0, 0xFFFFFF)),
    st.tuples(st.just("uint32"), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("uint40"), st.integers(0, 2**40 - 1)),
    st.tuples(st.just("uint48"), st.integers(0, 2**48 - 1)),
    st.tuples(st.just("uint56"), uints),
    st.tuples(st.just("uint64"), uints),
    st.tuples(st.just("uint32be"), st.integers(0, 0xFFFFFFFF)),
    st.tuples(st.just("uint64be"), uints),
    st.tuples(st.just("fixed32"), st.binary(min_size=32, max_size=32)),
    st.tuples(st.just("fixed64"), st.binary(min_size=64, max_size=64)),
    st.tuples(st.just("buffer"), st.binary(max_size=300)),
    st.tuples(st.just("optional_buffer"), st.one_of(st.none(), st.binary(min_size=1, max_size=40))),
    st.tuples(st.just("string"), st.text(max_size=80)),
    st.tuples(st.just("bool"), st.booleans()),
), max_size=20))
def test_values_round_trip(values: list[tuple[str, Any]]):
    w = Writer()
    for kind, v in values:
        getattr(w, kind)(v)
    r = Reader(w.getvalue())
    assert [(kind, getattr(r, kind)()) for kind, _ in values] == values
    r.expect_end()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(uints, max_size=5), max_size=8), st.binary(max_size=50))
def test_arrays_and_frames_round_trip(lists: list[list[int]], tail: bytes):
    data = (Writer().array(lists, lambda w, xs: w.array(xs, Writer.uint))
            .frame(lambda w: w.buffer(tail)).raw(tail).getvalue())
    r = Reader(data)
    assert r.array(lambda r: r.array(Reader.uint)) == lists
    assert r.frame(Reader.buffer) == tail
    assert r.raw() == tail and r.done()


READERS = [Reader.uint, Reader.zigzag, Reader.uint16, Reader.uint24, Reader.uint32, Reader.uint40,
           Reader.uint48, Reader.uint56, Reader.uint64, Reader.uint64be, Reader.fixed32, Reader.fixed64,
           Reader.buffer, Reader.optional_buffer, Reader.string, Reader.bool,
           lambda r: r.array(Reader.string), lambda r: r.frame(Reader.uint), decode_manifest,
           decode_multisignature, decode_multisignature_v0]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.integers(0, len(READERS) - 1))
def test_malformed_input_raises_only_decode_error(data: bytes, which: int):
    read = READERS[which]
    try:
        read(data) if read in (decode_manifest, decode_multisignature, decode_multisignature_v0) \
            else decode(read, data)  # type: ignore[arg-type]
    except DecodeError:
        pass


def test_malformed_examples():
    for read, data in [(Reader.buffer, b"\x05abc"), (Reader.uint, b"\xfd\x01"), (Reader.bool, b"\x02"),
                       (Reader.string, b"\x02\xff\xfe"),
                       (lambda r: r.array(Reader.uint), b"\xfe\x01\x00\x10\x00"),
                       (lambda r: r.frame(Reader.uint), b"\x02\x01")]:
        with pytest.raises(DecodeError):
            decode(read, data)  # type: ignore[arg-type]
    with pytest.raises(DecodeError, match="left over"):
        decode(Reader.uint, b"\x01\x02")
    assert decode(Reader.uint, b"\x01\x02", exact=False) == 1


# --- manifests ----------------------------------------------------------------------------------------

keys32 = st.binary(min_size=32, max_size=32)
signers = st.builds(Signer, public_key=keys32, namespace=keys32)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    version = draw(st.integers(0, 3))
    ss = tuple(draw(st.lists(signers, min_size=0 if version else 1, max_size=4)))
    quorum = draw(st.integers(0, len(ss)))
    if version == 0:
        if len(ss) == 1 and quorum == 1:
            return Manifest(version=0, signers=ss, quorum=1)
        return Manifest(version=0, signers=ss, quorum=quorum, allow_patch=draw(st.booleans()))
    return Manifest(
        version=version, signers=ss, quorum=quorum, allow_patch=draw(st.booleans()),
        prologue=draw(st.one_of(st.none(), st.builds(Prologue, keys32, uints))),
        linked=draw(st.one_of(st.none(), st.lists(keys32, max_size=3).map(tuple))) if version >= 2 else None,
        user_data=draw(st.one_of(st.none(), st.binary(max_size=40))) if version >= 2 else None)


@settings(max_examples=300, deadline=None)
@given(manifests())
def test_manifest_round_trip(m: Manifest):
    data = encode_manifest(m)
    assert decode_manifest(data) == m
    assert encode_manifest(decode_manifest(data)) == data


@settings(max_examples=300, deadline=None)
@given(manifests(), st.integers(0, 10_000), st.integers(0, 255))
def test_damaged_manifest_raises_decode_error_or_decodes(m: Manifest, where: int, xor: int):
    data = bytearray(encode_manifest(m))
    for cut in (data[:where % (len(data) + 1)], _flip(data, where, xor)):
        try:
            decode_manifest(bytes(cut))
        except DecodeError:
            pass


def _flip(data: bytearray, where: int, xor: int) -> bytearray:
    out = bytearray(data)
    if out:
        out[where % len(out)] ^= xor
    return out


def test_manifest_rules():
    pk = bytes(32)
    with pytest.raises(ValueError):
        Manifest(signers=(Signer(pk),), version=1, user_data=b"x")  # user data needs version 2
    with pytest.raises(ValueError):
        Manifest(signers=(Signer(pk),), quorum=2)
    with pytest.raises(DecodeError, match="version"):
        decode_manifest(b"\x04\x00\x00\x00\x00")
    with pytest.raises(DecodeError, match="hash"):
        decode_manifest(b"\x01\x00\x01\x00\x00")
    assert Manifest(signers=(Signer(pk), Signer(pk), Signer(pk))).quorum == 2  # a majority by default


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(SignatureProof, st.integers(0, 5), st.binary(min_size=64, max_size=64), uints),
                max_size=4),
       st.lists(st.builds(Node, uints, uints, keys32), max_size=3))
def test_multisignature_round_trip(proofs: list[SignatureProof], patch: list[Node]):
    s = MultiSignature(tuple(proofs), tuple(patch))
    assert decode_multisignature(encode_multisignature(s)) == s


# --- the merkle tree ----------------------------------------------------------------------------------

def _reference_roots(blocks: list[bytes]) -> list[Node]:
    """The roots recomputed from the blocks alone, bottom up, without the tree's incremental merging."""
    out = []
    for root in flat_tree.full_roots(2 * len(blocks)):
        def node(i: int) -> Node:
            if i % 2 == 0:
                b = blocks[i // 2]
                return Node(i, len(b), c11.leaf_hash(b))
            left, right = node(flat_tree.left_child(i)), node(flat_tree.right_child(i))
            return Node(i, left.size + right.size, c11.parent_hash(left, right))
        out.append(node(root))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=20), max_size=40), st.data())
def test_tree_roots_match_a_tree_built_from_scratch(blocks: list[bytes], data: st.DataObject):
    tree = MerkleTree()
    tree.commit(tree.batch(blocks))
    assert tree.roots == _reference_roots(blocks)
    assert tree.byte_length == sum(map(len, blocks))
    n = data.draw(st.integers(0, len(blocks)))
    assert tree.roots_at(n) == _reference_roots(blocks[:n])
    assert tree.hash(n) == c11.tree_hash(_reference_roots(blocks[:n]))
    tree.commit(tree.truncation(n))
    assert tree.fork == 1 and tree.roots == _reference_roots(blocks[:n])
    assert all(flat_tree.right_span(i) < 2 * n for i in tree.nodes)
    tree.commit(tree.batch([b"again"]))
    assert tree.roots == _reference_roots(blocks[:n] + [b"again"])


def test_a_stale_batch_is_refused():
    tree = MerkleTree()
    early = tree.batch([b"a"])
    tree.commit(tree.batch([b"b"]))
    with pytest.raises(ValueError):
        tree.commit(early)


# --- the log ------------------------------------------------------------------------------------------

def test_log_rules():
    kp = c11.key_pair(hashlib.blake2b(b"log rules", digest_size=32).digest())
    log = Log.create(kp)
    assert log.writable and not log.compat and log.length == 0 and log.signature is None
    assert log.append([b"one", b"two"]) == 2 and log.append(b"three") == 3
    assert [log.get(i) for i in range(3)] == [b"one", b"two", b"three"]
    with pytest.raises(BlockNotAvailableError):
        log.get(3)
    assert log.verify(log.tree_hash(), 3, 0, log.signature)
    assert not log.verify(log.tree_hash(2), 3, 0, log.signature)

    reader = Log.open(log.key, log.manifest)
    with pytest.raises(NotWritableError):
        reader.append(b"one")
    with pytest.raises(VerificationError):
        reader.append([b"one", b"two", b"three"], signature=b"\0" * 68)
    assert reader.length == 0 and reader.blocks == [] and reader.tree.nodes == {}
    reader.append([b"one", b"two", b"three"], signature=log.signature)
    assert reader.tree_hash() == log.tree_hash()

    log.truncate(1)
    assert (log.length, log.fork, log.blocks) == (1, 1, [b"one"])
    with pytest.raises(ValueError):
        log.truncate(2)
    with pytest.raises(VerificationError):
        Log.open(bytes(32), log.manifest)  # the manifest hashes to another key
    with pytest.raises(ValueError):
        Log(log.key, log.manifest, key_pair=c11.key_pair(bytes(32)))
    compat = Log.create(kp, compat=True)
    assert compat.key == kp.public_key and compat.compat


# --- proofs (their agreement with JS: interop/test_core11_proof_interop.py) ----------------------------

_WRITER = Log.create(c11.key_pair(bytes(range(32))))
_WRITER.append([bytes([i]) * (i % 5) for i in range(23)])


def _requester(length: int) -> MerkleTree:
    tree = MerkleTree()
    tree.commit(tree.batch(_WRITER.blocks[:length]))
    return tree


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 22), st.integers(1, 23), st.integers(0, 22), st.integers(0, 5), st.booleans())
def test_proofs_round_trip(start: int, length: int, index: int, nodes: int, as_hash: bool):
    length = min(length, 23 - start)
    up = UpgradeRequest(start, length) if length > 0 else None
    req: dict[str, Any] = ({"hash": HashRequest(2 * index, nodes)} if as_hash
                           else {"block": BlockRequest(index, nodes)})
    try:
        proof = make_proof(_WRITER.tree, _WRITER.signature, values=_WRITER.blocks, upgrade=up, **req)
    except ValueError:
        return  # a request JS refuses too (the block past the upgrade, or nodes past the tree)
    result = verify_proof(_requester(start if up else 23), _WRITER.verifier, proof)
    if up:
        assert (result.length, result.roots, result.signature) == (23, _WRITER.roots(), _WRITER.signature)
    if not as_hash:
        assert result.value == _WRITER.blocks[index]


hashes_st = st.sampled_from([bytes(32), b"\1" * 32])
nodes_st = st.lists(st.builds(Node, st.integers(0, 80), st.integers(0, 50), hashes_st), max_size=8).map(tuple)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 23), st.integers(0, 3),
       st.one_of(st.none(), st.builds(DataBlock, st.integers(0, 40), st.binary(max_size=5), nodes_st)),
       st.one_of(st.none(), st.builds(DataHash, st.integers(0, 80), nodes_st)),
       st.one_of(st.none(), st.builds(DataUpgrade, st.integers(0, 30), st.integers(0, 30), nodes_st, nodes_st,
                                      st.binary(max_size=70))))
def test_hostile_proofs_raise_verification_error(have: int, fork: int, block: DataBlock | None,
                                                 hash: DataHash | None, upgrade: DataUpgrade | None):
    try:
        result = verify_proof(_requester(have), _WRITER.verifier, Proof(fork, block, hash, upgrade))
    except VerificationError:
        return
    # nothing false verifies: only what the writer has (a made-up proof may guess a real block)
    assert block is None or block.value == _WRITER.blocks[block.index]
    assert upgrade is None or result.roots == _WRITER.roots()
