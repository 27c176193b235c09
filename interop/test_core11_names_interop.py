"""hypernode.core11.names against the pinned corestore 7.12.5 (interop/v11), byte for byte.

interop/v11/js/names_tool.js makes a real corestore 7 in a temporary directory (with a primary key we
give it, or one it picks and keeps in its storage), gets cores by name in the default namespace, in
nested namespaces (unicode names, empty namespace names, Buffer namespace names) and through
``session()``, appends one block to each, and reports each core's public key, key, discovery key,
encoded manifest and signature, plus ``createKeyPair`` results. Python derives the same from the same
primary key and must match byte for byte; a :class:`~hypernode.core11.log.Log` made from the derived key
pair must have JS's key and make JS's signature for the same block. A second corestore on the same
directory, given no key, reads the primary key back from storage and gets the same cores by name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hypernode.core11.log import Log
from hypernode.core11.manifest import encode_manifest
from hypernode.core11.names import Namespace

pytestmark = pytest.mark.interop

PRIMARY = bytes(range(32))

# (namespace path, name, session): a path item is a str, or bytes (a Buffer in JS)
CORES: list[tuple[list[str | bytes], str, bool]] = [
    ([], "main", False),
    ([], "another core", False),
    ([], "é", False),
    ([], "日本語の名前 😀", False),
    (["app"], "main", False),
    (["app", "sub"], "main", False),
    (["app", "sub", "deeper"], "main", False),
    (["sub"], "main", False),  # not app/sub
    ([""], "main", False),  # the empty namespace name: H(zeros) is not the default namespace
    (["", ""], "main", False),
    (["app", ""], "main", False),
    (["Ωmega", "κλειδί"], "naïve café", False),
    ([b"\x00\xff\x10"], "main", False),
    (["app"], "via a session", True),  # store.namespace('app').session(): back in the default namespace
    ([], "\ufffdx", False),  # what JS makes of the lone surrogate of the next line
]


def _path_json(path: list[str | bytes]) -> list[dict[str, str]]:
    return [{"hex": p.hex()} if isinstance(p, bytes) else {"str": p} for p in path]


Cores = list[tuple[list[str | bytes], str, bool]]


def _run(js11: Any, tmp_path: Path, primary_key: bytes | None, cores: Cores,
         key_pairs: Sequence[tuple[list[str | bytes], str | bytes]] = (), manifest_version: int | None = None,
         ) -> dict[str, Any]:
    spec = {
        "primaryKey": primary_key.hex() if primary_key else None,
        "manifestVersion": manifest_version,
        "cores": [{"path": _path_json(p), "name": n, "session": s} for p, n, s in cores],
        "keyPairs": [{"path": _path_json(p), "name": _path_json([n])[0]} for p, n in key_pairs],
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))  # ensure_ascii: lone surrogates reach JS as they are
    result: dict[str, Any] = js11("names_tool.js", spec_path)
    return result


def _ours(primary_key: bytes, path: list[str | bytes], name: str, session: bool,
          manifest_version: int = 1) -> Namespace:
    ns = Namespace(primary_key, manifest_version=manifest_version)
    for p in path:
        ns = ns.namespace(p)
    if session:
        ns = Namespace(primary_key, manifest_version=manifest_version)
    return ns


def _check_core(theirs: dict[str, Any], ns: Namespace, name: str) -> None:
    core = ns.core(name)
    assert theirs["publicKey"] == core.key_pair.public_key.hex()
    assert theirs["manifest"] == encode_manifest(core.manifest).hex()
    assert theirs["key"] == core.key.hex()
    assert theirs["discoveryKey"] == core.discovery_key.hex()
    assert theirs["reopenedDiscoveryKey"] == core.discovery_key.hex() and theirs["reopenedLength"] == 1
    log = Log.create(core.key_pair, manifest_version=ns.manifest_version)
    assert log.key == core.key and log.discovery_key == core.discovery_key
    log.append([b"block:" + name.encode()])
    assert log.signature is not None and theirs["signature"] == log.signature.hex()


def test_named_cores_match_js(js11, tmp_path: Path):
    theirs = _run(js11, tmp_path, PRIMARY, CORES)
    assert theirs["primaryKey"] == PRIMARY.hex() and theirs["reopened"] == PRIMARY.hex()
    assert len(theirs["cores"]) == len(CORES)
    for got, (path, name, session) in zip(theirs["cores"], CORES, strict=True):
        _check_core(got, _ours(PRIMARY, path, name, session), name)
    assert len({c["key"] for c in theirs["cores"]}) == len(CORES)
    session = theirs["cores"][CORES.index((["app"], "via a session", True))]
    assert session["key"] == Namespace(PRIMARY).core("via a session").key.hex()
    assert session["key"] != Namespace(PRIMARY).namespace("app").core("via a session").key.hex()


def test_store_picked_primary_key_and_manifest_version_2(js11, tmp_path: Path):
    """A store given no key picks one and keeps it; Python derives its cores from the key it exposes."""
    cores: list[tuple[list[str | bytes], str, bool]] = [([], "main", False), (["a", "b"], "ü", False)]
    theirs = _run(js11, tmp_path, None, cores, manifest_version=2)
    primary = bytes.fromhex(theirs["primaryKey"])
    assert len(primary) == 32 and primary != PRIMARY and theirs["reopened"] == theirs["primaryKey"]
    for got, (path, name, session) in zip(theirs["cores"], cores, strict=True):
        _check_core(got, _ours(primary, path, name, session, manifest_version=2), name)
        assert got["manifest"].startswith("02")


def test_key_pairs_and_edge_names_match_js(js11, tmp_path: Path):
    """createKeyPair takes any name (empty, bytes); get() refuses the empty name; JS turns a lone
    surrogate into U+FFFD, which Python refuses rather than guess."""
    key_pairs: list[tuple[list[str | bytes], str | bytes]] = [
        ([], ""), ([], "main"), (["app"], ""), ([b"\x01"], b"\x00\x01\xfe"), (["", "x"], "ß"),
    ]
    cores: list[tuple[list[str | bytes], str, bool]] = [([], "", False), ([], "\ud800x", False)]
    theirs = _run(js11, tmp_path, PRIMARY, cores, key_pairs)
    for got, (path, name) in zip(theirs["keyPairs"], key_pairs, strict=True):
        ns = _ours(PRIMARY, path, "", False)
        assert got["publicKey"] == ns.key_pair(name).public_key.hex()
    assert theirs["keyPairs"][1]["publicKey"] == Namespace(PRIMARY).core("main").key_pair.public_key.hex()

    assert "error" in theirs["cores"][0]
    with pytest.raises(ValueError):
        Namespace(PRIMARY).core("")

    lone = theirs["cores"][1]
    _check_core(lone, Namespace(PRIMARY), "\ufffdx")
    with pytest.raises(ValueError):
        Namespace(PRIMARY).core("\ud800x")
