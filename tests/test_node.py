"""Node: drives persist in its store and are served on start, peers are reconnected with backoff, and one
node serves many concurrent clones (the CI-sized version of the load benchmark)."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest
import trio

from hypernode.folder import export_drive
from hypernode.node import Node, parse_key, parse_peer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parsing():
    assert parse_peer("127.0.0.1:80") == ("127.0.0.1", 80)
    assert parse_peer("[::1]:8080") == ("::1", 8080)
    for bad in ("nohost", ":80", "h:0", "h:99999", "h:x"):
        with pytest.raises(ValueError):
            parse_peer(bad)
    key = os.urandom(32)
    assert parse_key(key.hex()) == key == parse_key(f"hyper://{key.hex()}/")
    with pytest.raises(ValueError):
        parse_key("abcd")


async def test_drives_persist_and_are_served_after_restart(tmp_path):
    async with Node(tmp_path / "a") as a:
        drive = await a.create_drive()
        await drive.write_file("/kept.txt", "kept")
        key = drive.key
    async with Node(tmp_path / "a") as a, Node(tmp_path / "b", port=None) as b:
        assert list(a.drives) == [key] and a.drives[key].writable
        b.add_peer("127.0.0.1", a.port)
        copy = await b.open_drive(key)
        with trio.fail_after(10):
            await b.sync_feed(copy.metadata)
            assert await copy.read_file("/kept.txt") == b"kept"
        # live, both directions of a connection: a writes, b sees it
        await a.drives[key].write_file("/later.txt", "later")
        with trio.fail_after(10):
            while not await copy.exists("/later.txt"):
                await copy.update()


async def test_reconnects_with_backoff_when_a_peer_comes_and_goes(tmp_path):
    port = free_port()
    async with Node(tmp_path / "b", port=None) as b:
        b.add_peer("127.0.0.1", port)  # nobody there yet: b keeps trying
        await trio.sleep(0.3)
        assert not b.connected
        async with Node(tmp_path / "a", port=port) as a:
            drive = await a.create_drive()
            await drive.write_file("/one", "1")
            copy = await b.open_drive(drive.key)
            with trio.fail_after(15):
                await b.sync_feed(copy.metadata)
            assert b.connected
            key = drive.key
        # a is gone; it comes back on the same port with a new file
        with trio.fail_after(5):
            while b.connected:
                await trio.sleep(0.05)
        async with Node(tmp_path / "a", port=port) as a:
            await a.drives[key].write_file("/two", "2")
            with trio.fail_after(30):
                while not await copy.exists("/two"):
                    await copy.update()
            assert await copy.read_file("/two") == b"2"
        b.remove_peer("127.0.0.1", port)


async def test_ten_concurrent_clones_of_a_16_mib_drive(tmp_path):
    """The load scenario at CI size: one node, 10 clients cloning 200 files / 16 MiB at once."""
    rng = os.urandom
    async with Node(tmp_path / "server") as server:
        drive = await server.create_drive()
        expected = {}
        for i in range(200):
            data = rng(16 * 1024 * 1024 // 200)
            expected[f"f{i:03}.bin"] = hashlib.sha256(data).hexdigest()
            await drive.write_file(f"/d{i % 10}/f{i:03}.bin", data)

        results: list[dict[str, str]] = []

        async def client(n: int) -> None:
            async with Node(tmp_path / f"client{n}", port=None, peers=[("127.0.0.1", server.port)]) as node:
                copy = await node.open_drive(drive.key)
                await node.sync_feed(copy.metadata)
                await copy.content_feed()
                out = tmp_path / f"out{n}"
                await export_drive(copy, out)
                results.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                for p in out.rglob("*.bin")})

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for n in range(10):
                    nursery.start_soon(client, n)
    assert len(results) == 10 and all(r == expected for r in results)
