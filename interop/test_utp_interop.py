"""uTP against utp-native 2.5.3 (libutp, as hyperswarm 2 runs it) over loopback UDP, both ways: the
packet format of a real JS SYN, byte streams of 4 MiB checked by hash in both directions at once, the socket
shared with another protocol's datagrams, the hypercore wire protocol (Noise handshake, a replicated
feed) over uTP with JS corestore, and a lossy relay (drops, reorders, duplicates) between Python and
JS."""

from __future__ import annotations

import functools
import hashlib
import socket
from typing import Any

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from hypernode.utp.packet import ST_SYN, decode, is_utp
from hypernode.utp.socket import UTPStream, open_utp_socket
from interop.jsproc import JSProcess
from tests.lossy_relay import LossyRelay

pytestmark = pytest.mark.interop

SIZE = 4 * 1024 * 1024  # each way, at once


def udp(**options: Any) -> Any:
    """A uTP socket on loopback that waits 0.2 s (not 1 s) for its connections when it closes: in these
    tests the peer is often gone by then."""
    return open_utp_socket("127.0.0.1", linger=0.2, **options)


def stream_bytes(seed: str, total: int) -> bytes:
    """utp_peer.js's deterministic stream: block i of 64 KiB is shake256(seed + ':' + i)."""
    out = []
    i = 0
    while total > 0:
        n = min(65536, total)
        out.append(hashlib.shake_256(f"{seed}:{i}".encode()).digest(65536)[:n])
        total -= n
        i += 1
    return b"".join(out)


def feed_block(seed: str, i: int, size: int) -> bytes:
    h = hashlib.sha256(f"{seed}:{i}".encode()).digest()
    return (h * (size // 32 + 1))[:size]


async def send_and_receive(stream: UTPStream, data: bytes) -> bytes:
    """Send ``data`` then FIN while reading everything the remote sends until its FIN."""
    got = bytearray()

    async def send() -> None:
        for i in range(0, len(data), 65536):
            await stream.send_all(data[i:i + 65536])
        await stream.send_eof()

    async with trio.open_nursery() as n:
        n.start_soon(send)
        while True:
            chunk = await stream.receive_some()
            if not chunk:
                break
            got += chunk
    return bytes(got)


async def test_a_js_syn_is_a_bep29_packet(js):
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    raw.bind(("127.0.0.1", 0))
    raw.setblocking(False)
    try:
        async with JSProcess("utp_peer.js", "connect", str(raw.getsockname()[1]), "0") as peer:
            with trio.fail_after(10):
                await trio.lowlevel.wait_readable(raw)
            data, _ = raw.recvfrom(2048)
            assert peer.proc is not None
    finally:
        raw.close()
    assert is_utp(data) and len(data) == 20  # a bare header: no extension, no payload
    syn = decode(data)
    assert syn.type == ST_SYN and syn.ack_nr == 0 and syn.sack is None
    assert syn.window == 1024 * 1024  # utp-native never reports its read buffer: libutp's 1 MiB
    assert syn.timestamp != 0 and syn.timestamp_diff == 0


async def test_python_client_js_server_both_ways(js):
    up, down = stream_bytes("py", SIZE), stream_bytes("js", SIZE)
    async with JSProcess("utp_peer.js", "serve", str(SIZE), "js") as peer, \
            udp() as utp:
        port = (await peer.wait_for("listening"))["port"]
        with trio.fail_after(30):
            stream = await utp.connect("127.0.0.1", port)
            got = await send_and_receive(stream, up)
            received = await peer.wait_for("received")
        await stream.aclose()
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(down).hexdigest()
        assert received["bytes"] == SIZE and received["sha256"] == hashlib.sha256(up).hexdigest()
        with trio.fail_after(10):
            await peer.wait_for("close")  # the JS side saw a clean end of both directions


async def test_js_client_python_server_both_ways(js):
    up, down = stream_bytes("js", SIZE), stream_bytes("py", SIZE)
    async with udp() as utp:
        utp.listen()
        async with JSProcess("utp_peer.js", "connect", str(utp.port), str(SIZE), "js") as peer:
            with trio.fail_after(30):
                stream = await utp.accept()
                got = await send_and_receive(stream, down)
                received = await peer.wait_for("received")
            await stream.aclose()
            assert hashlib.sha256(got).hexdigest() == hashlib.sha256(up).hexdigest()
            assert received["bytes"] == SIZE and received["sha256"] == hashlib.sha256(down).hexdigest()
            with trio.fail_after(10):
                await peer.wait_for("close")


async def test_the_socket_is_shared_with_other_datagrams_as_utp_native_does(js):
    async with JSProcess("utp_peer.js", "serve", "1000", "js") as peer, udp() as utp:
        port = (await peer.wait_for("listening"))["port"]
        with trio.fail_after(20):
            stream = await utp.connect("127.0.0.1", port)
            await stream.send_all(b"first")
            dht = b"\x08\x00\x12\x04ping"  # shaped like a dht-rpc message (protobuf, not uTP)
            utp.datagrams.sendto(dht, ("127.0.0.1", port))
            data, addr = await utp.datagrams.recvfrom()
            assert data == b"echo:" + dht and addr == ("127.0.0.1", port)
            assert (await peer.wait_for("message"))["hex"] == dht.hex()
            got = await send_and_receive(stream, b"")
        assert got == stream_bytes("js", 1000)
        assert (await peer.wait_for("received"))["bytes"] == 5


async def test_replication_over_utp_python_clones_js(js):
    count, size = 2000, 1000
    async with JSProcess("utp_store_peer.js", "serve", str(count), str(size), "a") as peer, \
            udp() as utp, Corestore() as store, open_replication_server(store) as server:
        ready = await peer.wait_for("listening")
        feed = await store.get(bytes.fromhex(ready["key"]))
        async with trio.open_nursery() as n:
            with trio.fail_after(60):
                stream = await utp.connect("127.0.0.1", ready["port"])
                session = await n.start(functools.partial(server.replicate, stream, initiator=True))
                assert session.remote_public_key is not None  # the Noise handshake went through
                await replicator_of(feed).update(count)
                await replicator_of(feed).download(0, count)
            got = [await feed.get(i) for i in range(count)]
            n.cancel_scope.cancel()
        assert got == [feed_block("a", i, size) for i in range(count)]


async def test_replication_over_utp_js_clones_python(js):
    count, size = 2000, 1000
    async with udp() as utp, Corestore() as store, open_replication_server(store) as server:
        feed = await store.get()
        blocks = [feed_block("b", i, size) for i in range(count)]
        await feed.append(blocks)
        utp.listen()
        async with trio.open_nursery() as n, \
                JSProcess("utp_store_peer.js", "clone", str(utp.port), feed.key.hex(), str(count)) as peer:
            with trio.fail_after(60):
                stream = await utp.accept()
                n.start_soon(functools.partial(server.replicate, stream, initiator=False))
                done = await peer.wait_for("downloaded")
            n.cancel_scope.cancel()
        assert done["length"] == count
        assert done["sha256"] == hashlib.sha256(b"".join(blocks)).hexdigest()


LOSSY = {"loss": 0.03, "reorder": 0.03, "duplicate": 0.03, "spare": 2}


async def test_lossy_link_python_client_js_server(js):
    size = 384 * 1024
    up, down = stream_bytes("lp", size), stream_bytes("lj", size)
    async with JSProcess("utp_peer.js", "serve", str(size), "lj") as peer, \
            udp() as utp:
        port = (await peer.wait_for("listening"))["port"]
        async with LossyRelay(("127.0.0.1", port), seed=5, **LOSSY) as relay:
            with trio.fail_after(40):
                stream = await utp.connect("127.0.0.1", relay.port)
                got = await send_and_receive(stream, up)
                received = await peer.wait_for("received")
            await stream.aclose()
        assert got == down
        assert received["sha256"] == hashlib.sha256(up).hexdigest()
        assert relay.stats["dropped"] > 5 and relay.stats["delayed"] > 5 and relay.stats["duplicated"] > 3


async def test_lossy_link_js_client_python_server(js):
    size = 384 * 1024
    up, down = stream_bytes("lj2", size), stream_bytes("lp2", size)
    async with udp() as utp:
        utp.listen()
        async with LossyRelay(("127.0.0.1", utp.port), seed=6, **LOSSY) as relay, \
                JSProcess("utp_peer.js", "connect", str(relay.port), str(size), "lj2") as peer:
            with trio.fail_after(40):
                stream = await utp.accept()
                got = await send_and_receive(stream, down)
                received = await peer.wait_for("received")
            await stream.aclose()
        assert got == up
        assert received["sha256"] == hashlib.sha256(down).hexdigest()
        assert relay.stats["dropped"] > 5 and relay.stats["delayed"] > 5 and relay.stats["duplicated"] > 3
