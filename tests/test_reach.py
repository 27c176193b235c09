"""Reachability: the dht-rpc 4 holepunch (sans-IO, through a simulated NAT), Swarm.connect racing TCP and
uTP on loopback, and the limits on incoming connections per remote address (TCP and uTP together)."""

from __future__ import annotations

import socket

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.discovery import DHTNode, Swarm
from hypernode.discovery.peering import Peering
from hypernode.discovery.rpc import RPCConfig, RPCNode
from hypernode.limits import AddressLimiter
from hypernode.replication.server import open_replication_server
from hypernode.utp.socket import open_utp_socket, transport_of
from hypernode.wire.noise import KeyPair

FAST = RPCConfig(attempt_timeout=0.2, final_timeout=0.4)
Address = tuple[str, int]


class NattedNet:
    """RPCNodes at made-up addresses, time simulated; a node in ``natted`` receives only from addresses
    it has sent to (a NAT's mapping), everything else is dropped there."""

    def __init__(self, natted: set[Address]) -> None:
        self.nodes: dict[Address, RPCNode] = {}
        self.natted = natted
        self.sent_to: dict[Address, set[Address]] = {}
        self.dropped = 0
        self.now = 0.0

    def add(self, addr: Address, **kwargs: object) -> RPCNode:
        node = RPCNode(config=FAST, now=self.now, **kwargs)  # type: ignore[arg-type]
        self.nodes[addr] = node
        self.sent_to[addr] = set()
        return node

    def settle(self, done, limit: float = 30.0) -> None:
        end = self.now + limit
        while self.now < end:
            moved = True
            while moved:
                moved = False
                for addr, node in list(self.nodes.items()):
                    for data, to in node.datagrams():
                        moved = True
                        self.sent_to[addr].add(to)
                        target = self.nodes.get(to)
                        if target is None:
                            continue
                        if to in self.natted and addr not in self.sent_to[to]:
                            self.dropped += 1
                            continue
                        target.receive(data, addr, self.now)
            if done():
                return
            self.now = min(n.next_deadline() for n in self.nodes.values())
            for n in self.nodes.values():
                n.tick(self.now)
        raise AssertionError("did not settle")


def test_a_holepunch_relayed_by_the_referrer_opens_the_nat():
    R, A, B = ("10.0.0.1", 49737), ("10.0.0.2", 4000), ("10.0.0.3", 5000)
    net = NattedNet(natted={B})
    net.add(R, ephemeral=False)
    a, b = net.add(A), net.add(B)
    pinged: list[object] = []
    b.ping(R, pinged.append)  # B talks to R (its announce, in life): R may relay to it, R's answers get in
    net.settle(lambda: bool(pinged))
    answers: list[object] = []
    a.holepunch(B, R, answers.append)
    net.settle(lambda: bool(answers))
    assert answers[0] is not None  # B answered A: its NAT now lets A in
    assert net.dropped >= 1  # A's direct packet, before B had sent anything to A
    assert net.nodes[R].stats["holepunch_relayed"] >= 1 and a.stats["holepunch_asked"] >= 1
    assert A in b.punched and b.stats["holepunch_answered"] >= 1


def test_a_holepunch_through_a_referrer_that_does_not_know_the_peer_gives_up():
    R, A, B = ("10.0.0.1", 49737), ("10.0.0.2", 4000), ("10.0.0.3", 5000)
    net = NattedNet(natted={B})
    net.add(R, ephemeral=False)
    a = net.add(A)
    net.add(B)  # never talked to R: R refuses to relay (no reflection through it)
    answers: list[object] = []
    a.holepunch(B, R, answers.append)
    net.settle(lambda: bool(answers))
    assert answers == [None]
    assert a.stats["holepunch_asked"] == FAST.tries  # the punch is asked again with each try
    assert net.nodes[R].stats["holepunch_refused"] == FAST.tries


# -- Swarm.connect ---------------------------------------------------------------------------------


async def _echo(stream: trio.abc.Stream) -> None:
    async with stream:
        data = await stream.receive_some()
        if data:
            await stream.send_all(data)


async def test_connect_races_tcp_and_utp_and_keeps_one():
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, _echo, listeners)
        async with open_utp_socket("127.0.0.1", port) as server, Swarm(dht=False, utp=True) as swarm:
            server.listen()
            accepted: list[trio.abc.Stream] = []

            async def serve_utp() -> None:
                while True:
                    try:
                        stream = await server.accept()
                    except trio.ClosedResourceError:  # the socket closes
                        return
                    accepted.append(stream)
                    nursery.start_soon(_echo, stream)

            nursery.start_soon(serve_utp)
            with trio.fail_after(5):
                stream = await swarm.connect("127.0.0.1", port)
                async with stream:
                    await stream.send_all(b"hello")
                    assert await stream.receive_some() == b"hello"
            assert transport_of(stream) in ("tcp", "utp")
            # the loser was closed: no uTP connection is left open but the winner's
            with trio.fail_after(5):
                while swarm.utp is not None and swarm.utp.connections > 0:
                    await trio.sleep(0.05)
        nursery.cancel_scope.cancel()


async def test_connect_falls_back_to_utp_when_tcp_is_refused():
    async with trio.open_nursery() as nursery:
        async with open_utp_socket("127.0.0.1", 0) as server, Swarm(dht=False, utp=True) as swarm:
            server.listen()

            async def serve() -> None:
                await _echo(await server.accept())

            nursery.start_soon(serve)
            stream = await swarm.connect("127.0.0.1", server.port)  # nothing listens there for TCP
            async with stream:
                assert transport_of(stream) == "utp"
                await stream.send_all(b"over uTP")
                assert await stream.receive_some() == b"over uTP"


async def test_connect_to_nothing_says_why_each_way_failed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    async with Swarm(dht=False, utp=True) as swarm:
        with trio.fail_after(10):
            with pytest.raises(OSError, match=r"cannot connect to 127.0.0.1:\d+: TCP: connection refused; "
                                              r"uTP: timed out"):
                await swarm.connect("127.0.0.1", dead, timeout=1.0)
    async with Swarm(dht=False) as tcp_only:  # no uTP: only TCP is tried, and fails at once
        with trio.fail_after(2), pytest.raises(OSError, match="TCP: connection refused$"):
            await tcp_only.connect("127.0.0.1", dead)


# -- limits ----------------------------------------------------------------------------------------


def test_address_limiter_counts_live_connections_per_host():
    limiter = AddressLimiter(2)
    with limiter.admit("10.0.0.1") as one, limiter.admit("10.0.0.1") as two:
        with limiter.admit("10.0.0.1") as three, limiter.admit("10.0.0.2") as other:
            assert (one, two, three, other) == (True, True, False, True)
        assert limiter.live["10.0.0.1"] == 2 and limiter.refused == 1
        with limiter.admit("127.0.0.1"), limiter.admit("127.0.0.1"), limiter.admit("127.0.0.1") as local:
            assert local  # this machine's own programs are not capped ...
        limiter.cap_loopback = True
        with limiter.admit("127.0.0.1"), limiter.admit("127.0.0.1"), limiter.admit("127.0.0.1") as local:
            assert not local  # ... unless asked
    assert not limiter.live  # all ended
    with pytest.raises(ValueError):
        AddressLimiter(0)


async def _closed_by_remote(stream: trio.abc.Stream) -> bool:
    """True once the remote closed the stream without a word (within 5 s)."""
    with trio.move_on_after(5):
        try:
            return await stream.receive_some() == b""
        except trio.BrokenResourceError:
            return True
    return False


async def test_connections_per_address_are_capped_tcp_and_utp_together():
    async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot, Corestore() as store, \
            open_replication_server(store) as server:
        server.limiter.max_per_address = 3
        server.limiter.cap_loopback = True  # everything here comes from 127.0.0.1
        kp = KeyPair.generate()
        port = await server.listen("127.0.0.1", 0, key_pair=kp)
        async with Peering(server=server, key_pair=kp, port=port, bootstrap=[boot.address], config=FAST) as p:
            assert p.limiter is server.limiter and p.swarm.utp is not None and p.swarm.utp.port == port
            held: list[trio.abc.Stream] = []
            try:
                for _ in range(2):  # two TCP connections that never speak: each holds its place
                    held.append(await trio.open_tcp_stream("127.0.0.1", port))
                async with open_utp_socket("127.0.0.1", 0) as client:
                    held.append(await client.connect("127.0.0.1", port))  # the third, over uTP
                    # an accepted uTP stream starts with the first data: the first byte of a frame (its
                    # length, 64), so that the handshake goes on waiting for the rest
                    await held[-1].send_all(b"\x40")
                    with trio.fail_after(5):
                        while sum(server.limiter.live.values()) < 3:
                            await trio.sleep(0.02)
                    # the fourth, over either transport, is closed at once
                    extra_tcp = await trio.open_tcp_stream("127.0.0.1", port)
                    assert await _closed_by_remote(extra_tcp)
                    extra_utp = await client.connect("127.0.0.1", port)
                    await extra_utp.send_all(b"\x40")
                    assert await _closed_by_remote(extra_utp)
                    assert server.limiter.refused == 2
                    await extra_tcp.aclose()
                    await extra_utp.aclose()
                    for s in held:
                        await s.aclose()
                    held.clear()
                    # their places are free again
                    with trio.fail_after(5):
                        while server.limiter.live:
                            await trio.sleep(0.02)
                    again = await trio.open_tcp_stream("127.0.0.1", port)
                    with trio.move_on_after(0.5):
                        assert await again.receive_some() != b""  # the handshake, not a close
                    await again.aclose()
            finally:
                for s in held:
                    await s.aclose()
