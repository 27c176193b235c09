"""Timeouts mean "no progress": ``Node.sync_feed``, ``Node.wait_for_peer`` and the ls/cat/stat commands wait
``timeout`` seconds for a peer or for the next block, never for a whole transfer. A peer slowed down by
a throttling proxy (its data trickles for several times the timeout) is waited for to the end; one that
stops sending is given up after the timeout, with an error that says so. When no peer comes, the error
names the cause."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator

import pytest
import trio

from hypernode.errors import PeerTimeoutError
from hypernode.node import Node
from hypernode.replication import replicator_of
from tests.clitools import HYPERNODE

FILE_SIZE = 1024 * 1024
BLOCK = 32 * 1024
RATE = 384 * 1024  # bytes per second the proxy lets through from the server: the file takes ~2.7 s
TIMEOUT = 1.0


@contextlib.asynccontextmanager
async def throttled_proxy(target: int, *, rate: int = RATE, stall_after: int | None = None
                          ) -> AsyncIterator[int]:
    """A TCP proxy to 127.0.0.1:``target`` passing the server's bytes at ``rate`` bytes/s, in slices
    every 20 ms (so blocks keep arriving), and none at all after ``stall_after`` bytes (the connection
    stays open: a stalled peer). Yields its port."""
    async def pipe(src: trio.SocketStream, dst: trio.SocketStream, throttle: bool) -> None:
        sent = 0
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while True:
                size = max(1, int(rate * 0.02)) if throttle else 65536
                data = await src.receive_some(size)
                if not data:
                    return
                if throttle and stall_after is not None and sent + len(data) > stall_after:
                    await trio.sleep_forever()
                await dst.send_all(data)
                sent += len(data)
                if throttle:
                    await trio.sleep(0.02)

    async def handle(client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream("127.0.0.1", target)
        async with client, server, trio.open_nursery() as nursery:
            nursery.start_soon(pipe, client, server, False)
            await pipe(server, client, True)
            nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, handle, 0)
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def server_with_a_big_file() -> AsyncIterator[tuple[Node, bytes, bytes]]:
    data = os.urandom(FILE_SIZE)
    async with Node(None) as server:
        drive = await server.create_drive()
        async with drive.create_write_stream("/big.bin") as w:  # 32 blocks: progress comes in steps
            for i in range(0, FILE_SIZE, BLOCK):
                await w.write(data[i:i + BLOCK])
        yield server, drive.key, data


# (results are checked after the nodes have closed: an assertion failing inside one must not be lost)


async def test_sync_feed_waits_as_long_as_blocks_keep_coming():
    async with server_with_a_big_file() as (server, key, data), throttled_proxy(server.port) as port:
        async with Node(None, port=None, peers=[("127.0.0.1", port)]) as client:
            copy = await client.open_drive(key)
            start = trio.current_time()
            with trio.fail_after(60):
                await client.sync_feed(copy.metadata, timeout=TIMEOUT)
                await client.sync_feed(await copy.content_feed(timeout=TIMEOUT), timeout=TIMEOUT)
            took = trio.current_time() - start
            got = await copy.read_file("/big.bin")
    assert took > 2 * TIMEOUT  # longer than the timeout: it only bounds each wait
    assert got == data


async def test_sync_feed_gives_up_on_a_stalled_peer_and_says_so():
    async with server_with_a_big_file() as (server, key, data), \
            throttled_proxy(server.port, stall_after=FILE_SIZE // 3) as port:
        async with Node(None, port=None, peers=[("127.0.0.1", port)]) as client:
            copy = await client.open_drive(key)
            await client.sync_feed(copy.metadata, timeout=10)
            content = await copy.content_feed(timeout=10)
            with trio.fail_after(30), pytest.raises(PeerTimeoutError) as info:
                await client.sync_feed(content, timeout=TIMEOUT)
    message = str(info.value)
    assert message.startswith(f"no block of the content of drive {key.hex()} arrived for 1 s (")
    assert message.endswith(f" of {content.length} blocks here); 1 peer connected")
    assert isinstance(info.value, TimeoutError)  # `except TimeoutError` catches it too


async def test_wait_for_peer_names_the_cause():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    key = os.urandom(32)
    async with Node(None, port=None, peers=[("127.0.0.1", dead)]) as node:
        drive = await node.open_drive(key)
        with pytest.raises(PeerTimeoutError) as unreachable:
            await node.wait_for_peer(drive.metadata, timeout=0.5)
        errors = dict(node.peer_errors)
    assert str(unreachable.value) == f"cannot reach 127.0.0.1:{dead}: connection refused"
    assert errors == {("127.0.0.1", dead): "connection refused"}
    async with Node(None) as other, Node(None, port=None, peers=[("127.0.0.1", other.port)]) as node:
        drive = await node.open_drive(key)
        with pytest.raises(PeerTimeoutError) as lacking:
            await node.wait_for_peer(drive.metadata, timeout=1)
    assert str(lacking.value) == f"no peer has drive {key.hex()} (1 connected peer asked)"
    async with Node(None, port=None) as node:
        drive = await node.open_drive(key)
        with pytest.raises(PeerTimeoutError) as nobody:
            await node.wait_for_peer(drive.metadata, timeout=0.1)
    assert str(nobody.value) == f"no peer to ask for drive {key.hex()} (none to connect to, no discovery)"


async def test_wait_for_peer_waits_for_a_peer_that_comes_late():
    async with Node(None) as server:
        drive = await server.create_drive()
        await drive.write_file("/a", b"a")
        async with Node(None, port=None) as client:
            copy = await client.open_drive(drive.key)

            async def connect_later() -> None:
                await trio.sleep(0.3)
                client.add_peer("127.0.0.1", server.port)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(connect_later)
                await client.wait_for_peer(copy.metadata, timeout=10)
            answered = [p.remote_length for p in replicator_of(copy.metadata).peers]
    assert answered == [2]


async def cat(store: str, key: bytes, port: int, timeout: float = TIMEOUT
              ) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process([HYPERNODE, "--store", store, "cat", key.hex(), "/big.bin", "--peer",
                                   f"127.0.0.1:{port}", "--timeout", f"{timeout:g}"],
                                  capture_stdout=True, capture_stderr=True, check=False)


async def test_cat_with_a_slow_peer_takes_longer_than_the_timeout(tmp_path):
    async with server_with_a_big_file() as (server, key, data), throttled_proxy(server.port) as port:
        start = trio.current_time()
        out = await cat(str(tmp_path / "reader"), key, port)
        took = trio.current_time() - start
    assert out.returncode == 0, out.stderr
    assert out.stdout == data and took > 2 * TIMEOUT


async def test_cat_from_a_stalled_peer_fails_after_the_timeout(tmp_path):
    async with server_with_a_big_file() as (server, key, data), \
            throttled_proxy(server.port, stall_after=FILE_SIZE // 3) as port:
        # 3 s: a loaded machine can take over 1 s to connect and open the drive, which is then the
        # (right) "no peer has drive" failure instead of the stall this test is about
        out = await cat(str(tmp_path / "reader"), key, port, timeout=3)
    assert out.returncode == 1
    assert out.stderr.decode() == (f"hypernode: reading drive {key.hex()}: no data arrived for 3 s; "
                                   f"1 peer connected\n")
    assert 0 < len(out.stdout) < FILE_SIZE  # what came is out; the rest did not


async def test_peers_found_by_discovery_that_cannot_be_reached_are_named():
    from hypernode.crypto import discovery_key
    from hypernode.discovery.rpc import RPCConfig
    from hypernode.discovery.swarm import DHTNode

    fast = RPCConfig(attempt_timeout=0.2, final_timeout=0.4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    key = os.urandom(32)
    with trio.fail_after(30):
        async with DHTNode(host="127.0.0.1", ephemeral=False, config=fast) as boot, \
                DHTNode(host="127.0.0.1", bootstrap=[boot.address], config=fast) as announcer:
            await announcer.wait_bootstrapped()
            await announcer.announce(discovery_key(key), dead)  # a peer that has since gone away
            opts = {"config": fast, "refresh": 0.2}
            async with Node(None, port=None, bootstrap=[boot.address], discovery_options=opts) as node:
                drive = await node.open_drive(key)
                with pytest.raises(PeerTimeoutError) as info:
                    await node.wait_for_peer(drive.metadata, timeout=2)
    # each way tried, and why it failed: TCP refused, no answer to the holepunch the DHT node relayed
    assert str(info.value) == (
        f"cannot reach 127.0.0.1:{dead}: TCP: connection refused; holepunch: no answer through "
        f"{boot.address[0]}:{boot.address[1]} (the peer is gone, or a symmetric NAT on either side stops "
        "holepunches)")
