"""Replication with JS hypercore@9.12.0 / corestore@5.8.2 over loopback TCP, both ways: full clones
of 10,000 blocks with identical bytes, sparse fetches, live appends either way within a second, and
several feeds on one connection."""

from __future__ import annotations

import hashlib

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from interop.jsproc import JSProcess

pytestmark = pytest.mark.interop


def block(seed: str, i: int, size: int) -> bytes:
    h = hashlib.sha256(f"{seed}:{i}".encode()).digest()
    return (h * (size // 32 + 1))[:size]


def digest(blocks: list[bytes]) -> str:
    h = hashlib.sha256()
    for b in blocks:
        h.update(b)
    return h.hexdigest()


async def test_js_to_python_full_clone_then_live(js):
    async with JSProcess("store_peer.js", "memory") as peer, Corestore() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="feed"))["key"]
        await peer.command("appended", cmd="append", key=key, count=10_000, size=1000, seed="a")
        port = (await peer.command("listening", cmd="listen"))["port"]

        feed = await store.get(bytes.fromhex(key))
        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(60):
            await replicator_of(feed).update(10_000)
            await replicator_of(feed).download(0, 10_000)
        assert feed.length == 10_000 and feed.downloaded() == 10_000
        got = [await feed.get(i) for i in range(10_000)]
        assert digest(got) == digest([block("a", i, 1000) for i in range(10_000)])

        # live: JS appends after the connection is up; it reaches Python within a second
        start = trio.current_time()
        await peer.command("appended", cmd="append", key=key, hex=[b"live from js".hex()])
        with trio.fail_after(5):
            assert await replicator_of(feed).get(10_000) == b"live from js"
        assert trio.current_time() - start < 1.0


async def test_python_to_js_full_clone_then_live(js):
    async with JSProcess("store_peer.js", "memory") as peer, Corestore() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        feed = await store.get()
        blocks = [block("b", i, 1000) for i in range(10_000)]
        for i in range(0, 10_000, 1000):
            await feed.append(blocks[i:i + 1000])
        port = await store_net.listen()
        key = feed.key.hex()
        await peer.command("opened", cmd="open", key=key)
        await peer.command("connected", cmd="connect", port=port)
        with trio.fail_after(60):
            await peer.command("updated", cmd="update", key=key, minLength=10_000)
            await peer.command("downloaded", cmd="download", key=key, start=0, end=10_000)
        info = await peer.command("info", cmd="info", key=key)
        assert info["length"] == 10_000 and info["downloaded"] == 10_000
        assert info["byteLength"] == 10_000_000
        assert info["sha256"] == digest(blocks)

        start = trio.current_time()
        await feed.append(b"live from python")
        with trio.fail_after(5):
            got = await peer.command("block", cmd="get", key=key, index=10_000)
        assert bytes.fromhex(got["hex"]) == b"live from python"
        assert trio.current_time() - start < 1.0


async def test_sparse_fetch_from_the_middle(js):
    async with JSProcess("store_peer.js", "memory") as peer, Corestore() as store, \
            open_replication_server(store, sparse=True) as store_net:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="big"))["key"]
        await peer.command("appended", cmd="append", key=key, count=5000, size=512, seed="c")
        port = (await peer.command("listening", cmd="listen"))["port"]
        feed = await store.get(bytes.fromhex(key))
        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(20):
            for i in (2500, 2501, 4999, 17):
                assert await replicator_of(feed).get(i) == block("c", i, 512)
        assert feed.length == 5000
        assert feed.downloaded() == 4  # nothing else was fetched
        # and a JS sparse peer fetches single blocks from a Python feed
        mine = await store.get(name="mine")
        await mine.append([block("d", i, 100) for i in range(3000)])
        await peer.command("opened", cmd="open", key=mine.key.hex(), sparse=True)
        with trio.fail_after(20):
            got = await peer.command("block", cmd="get", key=mine.key.hex(), index=1234)
        assert bytes.fromhex(got["hex"]) == block("d", 1234, 100)
        info = await peer.command("info", cmd="info", key=mine.key.hex())
        assert info["length"] == 3000 and info["downloaded"] == 1


async def test_several_feeds_on_one_connection(js):
    async with JSProcess("store_peer.js", "memory") as peer, Corestore() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        js_keys = []
        for n in range(3):
            key = (await peer.command("created", cmd="create", name=f"f{n}"))["key"]
            await peer.command("appended", cmd="append", key=key, count=200 + n, size=300, seed=f"s{n}")
            js_keys.append(key)
        py_feeds = []
        for n in range(2):
            f = await store.get(name=f"p{n}")
            await f.append([block(f"p{n}", i, 64) for i in range(50 + n)])
            py_feeds.append(f)
        for f in py_feeds:
            await peer.command("opened", cmd="open", key=f.key.hex())
        port = (await peer.command("listening", cmd="listen"))["port"]
        feeds = [await store.get(bytes.fromhex(k)) for k in js_keys]
        session = await store_net.connect("127.0.0.1", port)
        with trio.fail_after(30):
            for n, f in enumerate(feeds):
                await replicator_of(f).update(200 + n)
                await replicator_of(f).download(0, 200 + n)
                assert digest([await f.get(i) for i in range(f.length)]) == \
                    digest([block(f"s{n}", i, 300) for i in range(200 + n)])
            for n, f in enumerate(py_feeds):
                await peer.command("downloaded", cmd="download", key=f.key.hex(), start=0, end=50 + n)
        assert len(store_net.sessions) == 1 and store_net.sessions[0] is session
        assert len(session.peers) == 5  # five feeds, one connection
        for f in feeds + py_feeds:
            assert len(replicator_of(f).peers) == 1
