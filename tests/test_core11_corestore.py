"""hypernode.core11.corestore: cores by name (derived as corestore 7 derives them) and by key, shared,
namespaced, kept across reopening; the JS side of the same names is interop/test_core11_names_interop.py
and of the files interop/test_core11_rocks_interop.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from hypernode.core11.corestore import Corestore
from hypernode.core11.crypto import key_pair
from hypernode.core11.log import Log
from hypernode.core11.names import Namespace
from hypernode.errors import BlockNotAvailableError, HypernodeError, NotWritableError, VerificationError
from hypernode.keys import encode_key, hyper_url

PRIMARY = bytes(range(32))


def test_a_named_core_has_the_key_corestore_7_derives_and_is_shared() -> None:
    with Corestore(primary_key=PRIMARY) as store:
        core = store.get("main")
        assert core.key == Namespace(PRIMARY).core("main").key
        assert core.writable and core.length == 0
        assert store.get("main") is core
        core.append([b"a", b"b"])
        assert store.get(key=core.key) is core
        assert store.get(key=encode_key(core.key)) is core
        assert store.get(key=hyper_url(core.key, "/a/file")) is core
        assert store.get(key=core.key.hex()) is core
        nested = store.namespace("app").namespace("sub")
        other = nested.get("main")
        assert other.key == Namespace(PRIMARY).namespace("app").namespace("sub").core("main").key
        assert other is not core
        assert nested.get(key=core.key) is core  # keys are the same in every namespace
        assert sorted(store.discovery_keys()) == sorted([core.discovery_key, other.discovery_key])


def test_a_core_by_key_is_read_only_and_sparse_until_replicated() -> None:
    writer = Log.create(key_pair(b"\x01" * 32))
    writer.append([b"one", b"two"])
    with Corestore() as store:
        core = store.get(key=writer.key, manifest=writer.manifest)
        assert not core.writable and core.length == 0 and core.manifest == writer.manifest
        with pytest.raises(NotWritableError):
            core.append(b"x")
        with pytest.raises(BlockNotAvailableError):
            core.get(0)
        with pytest.raises(VerificationError):
            store.get(key=bytes(32), manifest=writer.manifest)


def test_get_takes_a_name_or_a_key_and_refuses_what_is_not_a_key() -> None:
    with Corestore() as store:
        for bad in ({}, {"name": "a", "key": bytes(32)}):
            with pytest.raises(ValueError, match="by name or by key"):
                store.get(**bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not a key"):
            store.get(key="hyper://not-a-key")
        with pytest.raises(ValueError):
            store.get("")
    with pytest.raises(HypernodeError, match="closed"):
        store.get("main")


def test_a_store_on_disk_keeps_its_primary_key_names_and_blocks(tmp_path: Path) -> None:
    with Corestore(tmp_path / "s") as store:
        primary = store.primary_key
        core = store.namespace("app").get("main")
        core.append([b"x" * 5000, b"y"])
        key, signature = core.key, core.signature
        reader = store.get(key=bytes(range(1, 33)))
        reader_dk = reader.discovery_key
    with Corestore(tmp_path / "s") as store:
        assert store.primary_key == primary
        again = store.namespace("app").get("main")
        assert (again.key, again.length, again.signature) == (key, 2, signature)
        assert again.writable and again.get(0) == b"x" * 5000
        again.append(b"z")
        assert reader_dk in store.discovery_keys()
        assert store.open_core(reader_dk) is not None
        assert store.open_core(bytes(32)) is None
    with pytest.raises(HypernodeError, match="another corestore"):
        Corestore(tmp_path / "s", primary_key=bytes(32))
    with Corestore(tmp_path / "s", primary_key=primary) as store:  # the same one is fine
        assert store.namespace("app").get("main").length == 3
