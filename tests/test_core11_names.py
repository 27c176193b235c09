"""hypernode.core11.names: corestore 7's derivation is deterministic, separates names and namespaces,
gives keys a Log made from the key pair agrees with, and matches values a real corestore 7 gave.

The byte-for-byte comparison with a live JS corestore is interop/test_core11_names_interop.py; the
known answers here were printed by interop/v11/js/names_tool.js (corestore 7.12.5) so that this file
runs without node.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.core11.crypto import discovery_key, namespace
from hypernode.core11.log import Log
from hypernode.core11.manifest import encode_manifest, manifest_hash
from hypernode.core11.names import CORESTORE, ROOT_NAMESPACE, Namespace, derive_key_pair, namespace_id

PK = b"\x01" * 32

names = st.text(max_size=12)  # any unicode a Python str holds as valid UTF-8 (hypothesis: no lone surrogates)
ns_names = st.one_of(names, st.binary(max_size=12))
paths = st.lists(ns_names, max_size=3)
primary_keys = st.binary(min_size=32, max_size=32)


def _at(pk: bytes, path: list[str | bytes], manifest_version: int = 1) -> Namespace:
    ns = Namespace(pk, manifest_version=manifest_version)
    for p in path:
        ns = ns.namespace(p)
    return ns


def test_known_answers_from_corestore_7():
    main = Namespace(PK).core("main")
    assert main.key_pair.public_key.hex() == \
        "6dd77239453719db547e19aecca34cdc49cbd4818484fffdda10dc742c49c21e"
    assert main.key.hex() == "985119e145d521e0b7b6c7c9016eb1e7ee5d303ff44f2dda253e8aa7b0a93dee"
    assert main.discovery_key.hex() == "dfb7edbcebe8af9646f824a14f005e29df628e7b91e613bb3fbdc689a57666d4"
    nested = Namespace(PK).namespace("a").namespace("").core("é😀")
    assert nested.key.hex() == "b09d112c6383170d877ff432a0e7fbd4cff0db76913fa30fe86a8deba0f4be65"
    assert Namespace(PK).key_pair("").public_key.hex() == \
        "cebc9ee340af73120e9aa7c12e909c1f5a707feedea8bc75669d9792a12e0f3f"
    assert Namespace(PK).namespace(b"\x00\xff").key_pair(b"\x01\x02").public_key.hex() == \
        "0841b1c5881a36c1c2558c9d2131b0b4de54ee7bd65927a923849ed309967ff3"


def test_the_layout():
    """The constants and hashes as the module docstring states them."""
    assert CORESTORE == namespace("corestore", 1)[0] and ROOT_NAMESPACE == bytes(32)
    assert namespace_id(ROOT_NAMESPACE, "app") == hashlib.blake2b(bytes(32) + b"app", digest_size=32).digest()
    seed = hashlib.blake2b(CORESTORE + bytes(32) + "ü".encode(), digest_size=32, key=PK).digest()
    from hypernode.core11.crypto import key_pair
    assert derive_key_pair(PK, ROOT_NAMESPACE, "ü") == key_pair(seed)


@settings(max_examples=150, deadline=None)
@given(primary_keys, paths, names.filter(bool))
def test_deterministic_and_log_agrees(pk: bytes, path: list[str | bytes], name: str):
    core = _at(pk, path).core(name)
    assert _at(pk, list(path)).core(name) == core  # fresh objects, same everything
    assert core.key == manifest_hash(core.manifest) and core.discovery_key == discovery_key(core.key)
    assert core.manifest.signers[0].public_key == core.key_pair.public_key
    log = Log.create(core.key_pair)
    assert log.key == core.key and log.discovery_key == core.discovery_key
    assert encode_manifest(log.manifest) == encode_manifest(core.manifest)
    log.append([name.encode()])  # the derived secret key signs for the derived key
    assert Log.open(core.key, core.manifest).verify(log.tree_hash(), 1, 0, log.signature)


@settings(max_examples=60, deadline=None)
@given(primary_keys, st.lists(st.tuples(paths, names.filter(bool)), min_size=2, max_size=12))
def test_different_names_and_namespaces_never_collide(pk: bytes, sample: list[tuple[list[str | bytes], str]]):
    # two paths are the same namespace only if equal as bytes ("a" and b"a" are one name)
    canon = {(tuple(p.encode() if isinstance(p, str) else p for p in path), name) for path, name in sample}
    cores = [_at(pk, list(path)).core(name) for path, name in canon]  # bytes path items: same namespaces
    assert len({c.key_pair.public_key for c in cores}) == len(canon)
    assert len({c.key for c in cores}) == len(canon)
    assert len({c.discovery_key for c in cores}) == len(canon)


@settings(max_examples=60, deadline=None)
@given(primary_keys, primary_keys, paths, names.filter(bool))
def test_the_primary_key_separates_stores(a: bytes, b: bytes, path: list[str | bytes], name: str):
    if a != b:
        assert _at(a, path).core(name).key != _at(b, path).core(name).key


@settings(max_examples=60, deadline=None)
@given(primary_keys, paths, names.filter(bool))
def test_manifest_version_changes_the_key_not_the_key_pair(pk: bytes, path: list[str | bytes], name: str):
    v1, v2 = _at(pk, path).core(name), _at(pk, path, manifest_version=2).core(name)
    assert v1.key_pair == v2.key_pair and v1.key != v2.key
    assert Log.create(v2.key_pair, manifest_version=2).key == v2.key


def test_nesting_is_not_concatenation():
    root = Namespace(PK)
    assert root.namespace("ab").id != root.namespace("a").namespace("b").id
    assert root.namespace("").id != root.id and root.namespace("").namespace("").id != root.namespace("").id
    assert root.namespace("a").core("b").key != root.core("ab").key
    assert root.namespace("é").id == root.namespace("é".encode()).id  # a str is its UTF-8 bytes


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        Namespace(b"\x01" * 31)
    with pytest.raises(ValueError):
        Namespace(PK, id=b"\x00" * 33)
    with pytest.raises(ValueError):
        Namespace(PK, manifest_version=0)
    with pytest.raises(ValueError):
        Namespace(PK).core("")  # JS get({ name: '' }) cannot derive a core
    with pytest.raises(ValueError):
        Namespace(PK).core("\ud800")  # a lone surrogate: JS would hash U+FFFD instead
    with pytest.raises(ValueError):
        Namespace(PK).namespace("x\udfff")
    with pytest.raises(TypeError):
        Namespace(PK).core(b"main")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Namespace(PK).namespace(5)  # type: ignore[arg-type]


def test_the_primary_key_stays_out_of_reprs():
    ns = Namespace(PK).namespace("app")
    core = ns.core("main")
    for text in (repr(ns), repr(core)):
        assert PK.hex() not in text and repr(PK) not in text and "primary_key" not in text
        assert core.key_pair.secret_key.hex() not in text and "secret" not in text
