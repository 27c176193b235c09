"""hypernode.core11.corestore: cores by name (derived as corestore 7 derives them) and by key, shared,
namespaced, kept across reopening; the JS side of the same names is interop/test_core11_names_interop.py
and of the files interop/test_core11_rocks_interop.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing

from hypernode.core11.corestore import Corestore
from hypernode.core11.crypto import key_pair
from hypernode.core11.log import Log
from hypernode.core11.names import Namespace
from hypernode.core11.replicate import Replication
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


@asynccontextmanager
async def connected(a: Corestore, b: Corestore) -> AsyncIterator[Replication]:
    """Store ``a`` (responder) replicating with ``b`` (initiator) over an in-memory stream: b's side."""
    left, right = trio.testing.memory_stream_pair()

    async def serve() -> None:
        async with a.replicate(left, initiator=False):
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with b.replicate(right, initiator=True) as repl:
            yield repl
        nursery.cancel_scope.cancel()


async def test_an_append_reaches_a_live_replica_without_being_told() -> None:
    """``core.append`` alone: the replication learns of it from the core (Core.add_listener)."""
    with Corestore() as alice, Corestore() as bob:
        core = alice.get("log")
        core.append(b"0")
        copy = bob.get(key=core.key)
        async with connected(alice, bob) as repl:
            await repl.want(copy)  # everything, live
            with trio.fail_after(10):
                for n in range(1, 40):
                    core.append([b"%d" % n])
                    await repl.wait_length(copy, n + 1)
                while not copy.has_all(0, 40):
                    await trio.sleep(0.01)
        assert [copy.get(i) for i in range(40)] == [b"%d" % i for i in range(40)]


async def test_blocks_a_store_gets_from_one_peer_are_announced_to_another() -> None:
    """bob downloads from alice while carol, connected to bob only, wants the same blocks: they reach
    carol as bob stores them (carol's request waits for them)."""
    with Corestore() as alice, Corestore() as bob, Corestore() as carol:
        core = alice.get("data")
        core.append([b"block %d" % i for i in range(30)])
        bobs = bob.get(key=core.key)
        carols = carol.get(key=core.key)
        async with connected(bob, carol) as to_carol:
            with trio.fail_after(10):
                await to_carol.wait_synced(carols)
            async with trio.open_nursery() as waiting:
                waiting.start_soon(to_carol.download, carols, 10, 20)
                await trio.sleep(0.05)
                assert not carols.has(10)  # bob has nothing yet
                async with connected(alice, bob) as to_alice:
                    with trio.fail_after(10):
                        await to_alice.download(bobs, 0, 30)
                with trio.fail_after(10):
                    while not carols.has_all(10, 20):
                        await trio.sleep(0.01)
        assert [carols.get(i) for i in range(10, 20)] == [b"block %d" % i for i in range(10, 20)]


def test_closing_a_store_closes_its_namespace_views() -> None:
    store = Corestore()
    view = store.namespace("app")
    store.close()
    assert view.closed
    with pytest.raises(HypernodeError, match="closed"):
        view.get("main")


def test_a_core_got_by_key_first_is_writable_once_got_by_its_name(tmp_path: Path) -> None:
    key = Namespace(PRIMARY).namespace("app").core("main").key
    with Corestore(tmp_path / "s", primary_key=PRIMARY) as store:
        by_key = store.get(key=key)
        assert not by_key.writable
    with Corestore(tmp_path / "s") as store:
        core = store.namespace("app").get("main")
        assert core.key == key and core.writable
        core.append(b"signed by the name's key pair")
    with Corestore(tmp_path / "s") as store:
        again = store.get(key=key)
        assert again.writable and again.get(0) == b"signed by the name's key pair"
