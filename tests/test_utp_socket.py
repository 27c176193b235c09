"""The trio adapter of uTP over real loopback UDP, Python to Python: streams both ways, half-close,
close and reset, cancellation, the socket shared with another protocol's datagrams, the wire protocol
(ProtocolStream) over a uTP stream, limits, and a lossy relay that drops, reorders and duplicates."""

from __future__ import annotations

import hashlib
import socket
from typing import Any

import pytest
import trio
import trio.testing

from hypernode.utp import UTPConfig, UTPConnectionReset, UTPLimitError
from hypernode.utp.packet import ST_SYN, Packet, decode, encode
from hypernode.utp.socket import UTPStream, open_utp_socket
from hypernode.wire import ChannelOpened, MessageReceived, messages
from hypernode.wire.stream import ProtocolStream
from tests.lossy_relay import LossyRelay


def udp(**options: Any) -> Any:
    """A uTP socket on loopback that waits 0.2 s (not 1 s) for its connections when it closes: in these
    tests the peer is often gone by then."""
    return open_utp_socket("127.0.0.1", linger=0.2, **options)


def blob(n: int, seed: str) -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.shake_256(f"{seed}:{i}".encode()).digest(65536)
        i += 1
    return bytes(out[:n])


async def read_all(stream: trio.abc.ReceiveStream) -> bytes:
    out = bytearray()
    while True:
        data = await stream.receive_some()
        if not data:
            return bytes(out)
        out += data


async def exchange(client: UTPStream, server: UTPStream, up: bytes, down: bytes) -> tuple[bytes, bytes]:
    """Both directions at once: the client sends ``up``, the server ``down``, each then send_eof()s and
    reads to the end. Returns what the client and the server received."""
    got: dict[str, bytes] = {}

    async def side(stream: UTPStream, data: bytes, name: str) -> None:
        async def send() -> None:
            for i in range(0, len(data), 50_000):
                await stream.send_all(data[i:i + 50_000])
            await stream.send_eof()

        async with trio.open_nursery() as n:
            n.start_soon(send)
            got[name] = await read_all(stream)

    async with trio.open_nursery() as n:
        n.start_soon(side, client, up, "client")
        n.start_soon(side, server, down, "server")
    return got["client"], got["server"]


async def test_stream_both_ways_and_half_close():
    async with udp() as a, udp() as b:
        b.listen()
        with trio.fail_after(20):
            client = await a.connect("127.0.0.1", b.port)
            server = await b.accept()
            assert isinstance(server, trio.abc.HalfCloseableStream)
            up, down = blob(1_500_000, "up"), blob(700_000, "down")
            got_down, got_up = await exchange(client, server, up, down)
        assert got_up == up and got_down == down
        assert server.remote_address == ("127.0.0.1", a.port)
        # after send_eof, writing is an error; reading at the end gives b"" again
        with pytest.raises(trio.ClosedResourceError):
            await client.send_all(b"more")
        assert await client.receive_some() == b""
        await client.aclose()
        await server.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await client.receive_some()


async def test_accepted_stream_sends_after_the_initiator_speaks():
    async with udp() as a, udp() as b:
        b.listen()
        with trio.fail_after(10):
            client = await a.connect("127.0.0.1", b.port)
            server = await b.accept()
            await server.send_all(b"queued early")  # held until the initiator's first packet
            await trio.sleep(0.2)
            assert b.endpoint.connections and not [c for c in b.endpoint.connections.values()
                                                   if c.cur_window_packets]
            await client.send_all(b"hi")
            assert await server.receive_some() == b"hi"
            assert await client.receive_some() == b"queued early"


async def test_close_ends_the_remotes_stream_and_the_socket_waits_for_it():
    async with udp() as a, udp() as b:
        b.listen()
        with trio.fail_after(10):
            client = await a.connect("127.0.0.1", b.port)
            server = await b.accept()
            data = blob(300_000, "close")
            await client.send_all(data)
            await client.aclose()  # the queued bytes still go, then FIN
            assert await read_all(server) == data
            await server.aclose()
            while a.connections or b.connections:
                await trio.sleep(0.01)


async def test_leaving_the_socket_with_an_error_resets_the_remote():
    async with udp() as b:
        b.listen()

        class Boom(Exception):
            pass

        with pytest.raises(Boom):
            async with udp() as a:
                client = await a.connect("127.0.0.1", b.port)
                await client.send_all(b"x")
                server = await b.accept()
                assert await server.receive_some() == b"x"
                raise Boom
        with trio.fail_after(5), pytest.raises(trio.BrokenResourceError) as info:
            await server.receive_some()
        assert isinstance(info.value.__cause__, UTPConnectionReset)


async def test_connect_to_nothing_is_cancellable_and_leaves_nothing_behind():
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))  # a bound UDP port that never answers
    try:
        async with udp() as a:
            with trio.move_on_after(0.3) as scope:
                await a.connect("127.0.0.1", dead.getsockname()[1])
            assert scope.cancelled_caught
            assert a.connections == 0
    finally:
        dead.close()


async def test_cancelled_receive_and_send_leave_the_stream_usable():
    async with udp() as a, udp(config=UTPConfig(
            receive_buffer=32 * 1024)) as b:
        b.listen()
        with trio.fail_after(10):
            client = await a.connect("127.0.0.1", b.port)
            await client.send_all(b"1")
            server = await b.accept()
            assert await server.receive_some() == b"1"
            with trio.move_on_after(0.1):
                await server.receive_some()  # nothing comes
            # the server does not read: the client's send blocks on the full windows and queue
            with trio.move_on_after(0.5) as scope:
                await client.send_all(blob(2_000_000, "block"))
            assert scope.cancelled_caught
            await client.send_all(b"!")  # the stream still works after the cancelled send
            await client.send_eof()
            got = await read_all(server)
            assert got.endswith(b"!") and len(got) > 32 * 1024


async def test_concurrent_receives_are_an_error():
    async with udp() as a, udp() as b:
        b.listen()
        client = await a.connect("127.0.0.1", b.port)
        async with trio.open_nursery() as n:
            n.start_soon(client.receive_some)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await client.receive_some()
            n.cancel_scope.cancel()


async def test_other_datagrams_share_the_socket():
    async with udp() as a, udp() as b:
        b.listen()
        client = await a.connect("127.0.0.1", b.port)
        await client.send_all(b"utp")
        server = await b.accept()
        dht = b"\x08\x01" + b"a dht-rpc message"  # protobuf: not uTP by libutp's test
        a.datagrams.sendto(dht, ("127.0.0.1", b.port))
        with trio.fail_after(5):
            data, addr = await b.datagrams.recvfrom()
        assert data == dht and addr == ("127.0.0.1", a.port)
        b.datagrams.sendto(b"reply", addr)
        with trio.fail_after(5):
            assert await a.datagrams.recvfrom() == (b"reply", ("127.0.0.1", b.port))
        assert await server.receive_some() == b"utp"  # uTP was not disturbed
        # a uTP-looking datagram never reaches the other protocol
        a.datagrams.sendto(encode(Packet(2, 12345, seq_nr=1)), ("127.0.0.1", b.port))
        a.datagrams.sendto(b"\x08after", ("127.0.0.1", b.port))
        with trio.fail_after(5):
            assert (await b.datagrams.recvfrom())[0] == b"\x08after"


async def test_protocol_stream_runs_over_utp():
    key = bytes(range(32))
    async with udp() as a, udp() as b:
        b.listen()
        with trio.fail_after(20):
            client = await a.connect("127.0.0.1", b.port)
            async with ProtocolStream(client, initiator=True) as pa:
                server = await b.accept()
                async with ProtocolStream(server, initiator=False) as pb:
                    assert await pa.wait_handshake() == pb.public_key
                    assert await pb.wait_handshake() == pa.public_key
                    ch_a, _ = pa.open_channel(key)
                    ch_b, _ = pb.open_channel(key)
                    value = blob(300_000, "block")
                    async for ev in pa:
                        if isinstance(ev, ChannelOpened):
                            pa.send(ch_a, messages.Data(index=3, value=value))
                            break
                    async for ev in pb:
                        if isinstance(ev, MessageReceived) and isinstance(ev.message, messages.Data):
                            assert ev.message.index == 3 and ev.message.value == value
                            break


async def test_connection_limits_and_full_accept_backlog():
    cfg = UTPConfig(max_connections_per_address=2, connect_timeout=0.3)
    async with udp(config=cfg) as a, \
            udp(accept_backlog=1) as b:
        b.listen()
        with trio.fail_after(10):
            c1 = await a.connect("127.0.0.1", b.port)
            # the backlog holds one stream: the next SYN is dropped until it is taken, then tried again
            async with trio.open_nursery() as n:
                second: list[UTPStream] = []

                async def connect_second() -> None:
                    second.append(await a.connect("127.0.0.1", b.port))

                n.start_soon(connect_second)
                while b.endpoint.stats["syn_refused"] < 1:  # its SYN came and was dropped
                    await trio.sleep(0.01)
                assert not second
                with pytest.raises(UTPLimitError):  # two to one address already (one connecting)
                    await a.connect("127.0.0.1", b.port)
                await c1.send_all(b"y")
                server = await b.accept()
                assert await server.receive_some() == b"y"
            c2 = second[0]
            await c2.send_all(b"z")
            assert await (await b.accept()).receive_some() == b"z"


async def test_syn_flood_is_bounded_over_udp():
    cfg = UTPConfig(max_half_open=8)
    async with udp(config=cfg) as b:
        b.listen(backlog=1000)
        flood = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        await flood.bind(("127.0.0.1", 0))
        try:
            with trio.fail_after(10):
                for i in range(300):  # spoofed SYNs, in bursts the socket buffers take
                    await flood.sendto(encode(Packet(ST_SYN, i, seq_nr=i)), ("127.0.0.1", b.port))
                    if i % 50 == 49:
                        while b.endpoint.stats["packets"] < i + 1:
                            await trio.sleep(0.01)
                answers = [decode(await flood.recv(100)) for _ in range(8)]
            assert b.connections == 8 and b.endpoint.stats["syn_over_limit"] == 292
            assert all(p.type == 2 for p in answers)  # a SYN-ACK each, nothing for the rest
            with trio.move_on_after(0.2):
                await flood.recv(100)
                raise AssertionError("a dropped SYN was answered")
        finally:
            flood.close()


@pytest.mark.parametrize("seed", [3, 4])
async def test_lossy_reordering_duplicating_link(seed):
    async with udp() as a, udp() as b:
        b.listen()
        async with LossyRelay(("127.0.0.1", b.port), loss=0.03, reorder=0.03, duplicate=0.03, seed=seed,
                              spare=1) as relay:
            with trio.fail_after(25):
                client = await a.connect("127.0.0.1", relay.port)
                await client.send_all(b"S")
                server = await b.accept()
                assert await server.receive_some(1) == b"S"
                up, down = blob(256_000, f"lu{seed}"), blob(256_000, f"ld{seed}")
                got_down, got_up = await exchange(client, server, up, down)
            assert got_up == up and got_down == down
            stats = relay.stats
            assert stats["dropped"] > 5 and stats["delayed"] > 5 and stats["duplicated"] > 3


async def test_lost_handshake_packets_over_udp():
    drops = {("up", 0), ("down", 0)}  # the first SYN, and the first answer to the second SYN

    def drop_if(data: bytes, direction: str, index: int) -> bool:
        return (direction, index) in drops

    async with udp(config=UTPConfig(connect_timeout=0.3)) as a, \
            udp() as b:
        b.listen()
        async with LossyRelay(("127.0.0.1", b.port), drop_if=drop_if) as relay:
            with trio.fail_after(10):
                client = await a.connect("127.0.0.1", relay.port)
                await client.send_all(b"made it")
                server = await b.accept()
                assert await server.receive_some() == b"made it"
        assert relay.stats["dropped"] == 2
