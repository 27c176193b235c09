"""hypercore-crypto 2.x known answers (tests/vectors/hypercore_crypto.json was printed by the JS code:
`node interop/js/feed_tool.js kat`; interop/test_feed_interop.py checks it still matches)."""

from __future__ import annotations

from typing import NamedTuple

from hypernode import crypto


class N(NamedTuple):
    index: int
    hash: bytes
    size: int


def test_key_pair_from_seed(vectors):
    v = vectors("hypercore_crypto.json")
    pair = crypto.key_pair(bytes.fromhex(v["seed"]))
    assert pair.public_key.hex() == v["publicKey"]
    assert pair.secret_key.hex() == v["secretKey"]
    assert crypto.validate_key_pair(pair.public_key, pair.secret_key)
    other = crypto.key_pair()
    assert not crypto.validate_key_pair(other.public_key, pair.secret_key)


def test_hashes(vectors):
    v = vectors("hypercore_crypto.json")
    a = N(0, crypto.data_hash(b"hello"), 5)
    b = N(2, crypto.data_hash(b"world!"), 6)
    assert a.hash.hex() == v["dataHello"]
    assert crypto.data_hash(b"").hex() == v["dataEmpty"]
    p = N(1, crypto.parent_hash(a, b), 11)
    assert p.hash.hex() == v["parent"]
    assert crypto.parent_hash(b, a) == p.hash  # order of arguments does not matter
    c = N(4, crypto.data_hash(b""), 0)
    assert crypto.tree_hash([p, c]).hex() == v["tree"]
    assert crypto.signable([p, c], 3).hex() == v["signable"]


def test_sign_verify(vectors):
    v = vectors("hypercore_crypto.json")
    sk = bytes.fromhex(v["secretKey"])
    pk = bytes.fromhex(v["publicKey"])
    msg = bytes.fromhex(v["signable"])
    sig = crypto.sign(msg, sk)
    assert sig.hex() == v["signature"]
    assert crypto.verify(msg, sig, pk)
    assert not crypto.verify(msg + b"x", sig, pk)
    bad = bytearray(sig)
    bad[5] ^= 1
    assert not crypto.verify(msg, bytes(bad), pk)
    assert not crypto.verify(msg, sig[:63], pk)
    assert not crypto.verify(msg, sig, pk[:31])


def test_discovery_key_and_capability(vectors):
    v = vectors("hypercore_crypto.json")
    pk = bytes.fromhex(v["publicKey"])
    assert crypto.discovery_key(pk).hex() == v["discoveryKey"]
    tx, rx = b"\xaa" * 64, b"\x55" * 64
    assert crypto.capability(pk, tx, rx).hex() == v["capability"]
    assert crypto.remote_capability(pk, tx, rx).hex() == v["remoteCapability"]
    # what one side sends is what the other side expects
    assert crypto.capability(pk, tx, rx) == crypto.remote_capability(pk, rx, tx)
