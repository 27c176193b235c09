"""Discovery: the dht-rpc and @hyperswarm/dht cores without I/O (a simulated network and clock), their
decoders under fuzzing, bad input (garbage, oversized, floods, forged tokens, silent peers), and then
real UDP and TCP on 127.0.0.1: swarms finding each other, nodes cloning drives they found, the
``hypernode`` command with ``--bootstrap``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.discovery import DHTNode, Swarm
from hypernode.discovery.addresses import (
    NodeAddress,
    decode_local_peers,
    decode_nodes,
    decode_peer,
    decode_peers,
    encode_local,
    encode_nodes,
    encode_peer,
    encode_peers,
)
from hypernode.discovery.dht import PeersInput, PeersOutput, PeerStore, parse_peers_output, peers_input
from hypernode.discovery.rpc import (
    MAX_DATAGRAM,
    QUERY,
    RESPONSE,
    UPDATE,
    Holepunch,
    Message,
    QueryDone,
    QueryReply,
    RPCConfig,
    RPCNode,
)
from hypernode.discovery.table import Node, QueryTable, RoutingTable
from hypernode.node import Node as HyperNode
from hypernode.protobuf import DecodeError

FAST = RPCConfig(attempt_timeout=0.2, final_timeout=0.4)


# -- a simulated network for the sans-IO cores -----------------------------------------------------


class Net:
    """RPCNodes at made-up addresses, datagrams delivered in order, time simulated. Datagrams to an
    address with no node are lost (a peer that never answers)."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, int], RPCNode] = {}
        self.stores: dict[tuple[str, int], PeerStore] = {}
        self.now = 0.0
        self.events: dict[tuple[str, int], list] = {}
        self.delivered = 0

    def add(self, addr: tuple[str, int], **kwargs) -> RPCNode:
        node = RPCNode(config=kwargs.pop("config", FAST), now=self.now, **kwargs)
        store = PeerStore(clock=lambda: self.now)
        store.register(node)
        self.nodes[addr] = node
        self.stores[addr] = store
        self.events[addr] = []
        return node

    def step(self) -> bool:
        moved = False
        for addr, node in list(self.nodes.items()):
            self.events[addr].extend(node.events())
            for data, to in node.datagrams():
                moved = True
                target = self.nodes.get(to)
                if target is not None:
                    self.delivered += 1
                    target.receive(data, addr, self.now)
        return moved

    def run(self, done=lambda: False, limit: float = 60.0) -> None:
        end = self.now + limit
        while self.now < end:
            while self.step():
                pass
            if done():
                return
            self.now = min(n.next_deadline() for n in self.nodes.values())
            for n in self.nodes.values():
                n.tick(self.now)
        raise AssertionError("the simulated network did not settle")

    def query_done(self, addr, q) -> QueryDone | None:
        return next((e for e in self.events[addr] if isinstance(e, QueryDone) and e.query is q), None)


def a(i: int) -> tuple[str, int]:
    return ("127.0.0.1", 20000 + i)


def network(n: int) -> Net:
    net = Net()
    net.add(a(0), ephemeral=False)
    for i in range(1, n):
        net.add(a(i), ephemeral=False, bootstrap=[a(0)])
    for i in range(1, n):
        net.nodes[a(i)].bootstrap()
    net.run(lambda: all(node.bootstrapped for addr, node in net.nodes.items() if addr != a(0)))
    return net


# -- addresses and tables --------------------------------------------------------------------------


def test_address_encodings():
    assert encode_peer("127.0.0.1", 49737) == bytes([127, 0, 0, 1, 0xC2, 0x49])
    assert decode_peer(encode_peer("10.1.2.3", 80)) == ("10.1.2.3", 80)
    assert decode_peer(b"\x01\x02\x03\x04\x00\x00") is None and decode_peer(b"abc") is None
    peers = [("1.2.3.4", 1), ("255.255.255.255", 65535)]
    assert decode_peers(encode_peers(peers)) == peers
    assert decode_peers(b"x" * 7) is None and decode_peers(encode_peer("0.0.0.0", 5)) is None
    nodes = [NodeAddress(os.urandom(32), "127.0.0.1", 9000 + i) for i in range(3)]
    assert decode_nodes(encode_nodes(nodes)) == nodes
    assert decode_nodes(encode_nodes(nodes) + b"partial") == nodes
    assert decode_nodes(os.urandom(32) + b"\x7f\0\0\1\0\0") == []  # zero port: the whole list refused
    assert decode_nodes(encode_nodes(nodes) * 100, limit=10) == (nodes * 4)[:10]
    assert decode_local_peers(encode_peer("192.168.1.9", 1), encode_local("192.168.7.8", 4000)) == [
        ("192.168.7.8", 4000)]
    with pytest.raises(ValueError):
        encode_peer("::1", 1)


def test_routing_table_buckets_and_closest():
    me = bytes(32)
    table = RoutingTable(me, k=2)
    far = [bytes([0x80 | i]) + os.urandom(31) for i in range(3)]  # all in bucket 0
    assert table.add(Node(far[0], "127.0.0.1", 1, seen=1)) is None
    assert table.add(Node(far[1], "127.0.0.1", 2, seen=2)) is None
    oldest = table.add(Node(far[2], "127.0.0.1", 3, seen=3))
    assert oldest is not None and oldest.id == far[0] and len(table) == 2  # full: ping the oldest
    assert table.add(Node(far[0], "127.0.0.1", 11, seen=4)) is None  # a refresh moves it to the back
    assert table.get(far[0]).port == 11 and table.add(Node(far[2], "h", 3)).id == far[1]
    near = bytes(31) + b"\x01"
    table.add(Node(near, "127.0.0.1", 4))
    assert table.closest(bytes(32), 1)[0].id == near
    assert table.add(Node(me, "127.0.0.1", 5)) is None and table.get(me) is None
    assert table.remove(near) is not None and len(table) == 2

    q = QueryTable(me, bytes(32), k=2)
    for i, node_id in enumerate([b"\x09" + bytes(31), b"\x01" + bytes(31), b"\x05" + bytes(31)]):
        q.add_unverified(Node(node_id, "127.0.0.1", i + 1))
    assert [n.id[0] for n in q.unverified] == [1, 5]
    q.add_verified(b"\x05" + bytes(31), b"token", "127.0.0.1", 3)
    q.add_verified(b"\x07" + bytes(31), None, "127.0.0.1", 3)  # no token: not verified
    assert [n.id[0] for n in q.closest] == [5] and q.closest[0].token == b"token"


# -- the RPC and peers layers without I/O ----------------------------------------------------------


def test_queries_move_closer_and_announce_then_lookup_finds_peers():
    net = network(40)
    assert all(len(n.table) >= 5 for n in net.nodes.values())
    topic = os.urandom(32)
    announcer = net.nodes[a(7)]
    q = announcer.query("peers", topic, peers_input(port=4000), update=True)
    net.run(lambda: net.query_done(a(7), q) is not None)
    assert net.query_done(a(7), q).error is None and q.updates >= 5
    holders = [addr for addr, s in net.stores.items() if len(s)]
    assert len(holders) >= 5  # stored on the nodes closest to the topic

    looker = net.nodes[a(23)]
    q = looker.query("peers", topic, peers_input())
    net.run(lambda: net.query_done(a(23), q) is not None)
    found = set()
    for ev in net.events[a(23)]:
        if isinstance(ev, QueryReply) and ev.query is q:
            res = parse_peers_output(ev.value)
            if res:
                found.update(res.peers)
    assert found == {("127.0.0.1", 4000)}

    # the announcer's own lookup leaves its record out; after an unannounce nobody has it
    q = announcer.query("peers", topic, peers_input(port=4000))
    net.run(lambda: net.query_done(a(7), q) is not None)
    assert not any(isinstance(e, QueryReply) and e.query is q and parse_peers_output(e.value)
                   for e in net.events[a(7)])
    q = announcer.query("peers", topic, peers_input(port=4000, unannounce=True), query=False, update=True)
    net.run(lambda: net.query_done(a(7), q) is not None)
    assert sum(len(s) for s in net.stores.values()) == 0


def test_a_silent_node_is_retried_then_given_up():
    net = Net()
    node = net.add(a(1), bootstrap=[a(99)])  # nobody at a(99)
    q = node.query("peers", os.urandom(32), peers_input())
    net.run(lambda: net.query_done(a(1), q) is not None)
    assert net.query_done(a(1), q).error == "No nodes responded"
    assert node.stats["requests"] == 1 and node.stats["retries"] == 2 and node.stats["timeouts"] == 1
    assert net.now == pytest.approx(2 * FAST.attempt_timeout + FAST.final_timeout)


def test_silent_nodes_in_the_table_are_dropped_and_queries_go_on():
    net = network(12)
    victims = [a(3), a(4), a(5)]
    ids = [net.nodes[v].id for v in victims]
    for v in victims:
        del net.nodes[v]  # they go silent
    topic = os.urandom(32)
    q = net.nodes[a(8)].query("peers", topic, peers_input(port=1), update=True)
    net.run(lambda: net.query_done(a(8), q) is not None)
    assert net.query_done(a(8), q).error is None
    assert all(net.nodes[a(8)].table.get(i) is None for i in ids)


def _update(target: bytes, token: bytes | None, rid: int = 7) -> bytes:
    return Message(version=1, type=UPDATE, rid=rid, command="peers", target=target, roundtripToken=token,
                   value=PeersInput(port=1234).encode()).encode()


def test_updates_need_the_token_given_to_their_host():
    node = RPCNode(ephemeral=False)
    store = PeerStore()
    store.register(node)
    topic = os.urandom(32)
    node.receive(_update(topic, None), ("127.0.0.1", 5000), 0)
    node.receive(_update(topic, os.urandom(32)), ("127.0.0.1", 5000), 0)
    assert node.stats["dropped_bad_token"] == 2 and len(store) == 0 and not node.datagrams()

    ask = Message(version=1, type=QUERY, rid=1, command="peers", target=topic, value=b"").encode()
    node.receive(ask, ("127.0.0.1", 5000), 0)
    (reply, _), = node.datagrams()
    token = Message.decode(reply).roundtripToken
    node.receive(_update(topic, token), ("127.0.0.2", 5000), 0)  # another host cannot use it
    assert node.stats["dropped_bad_token"] == 3 and len(store) == 0
    node.receive(_update(topic, token), ("127.0.0.1", 5001), 0)  # the same host, any port can
    assert len(store) == 1 and node.stats["command_update"] == 1
    node.tick(node.config.rotate_secrets + 1)  # rotated once: the previous secret still verifies
    node.receive(_update(topic, token, rid=8), ("127.0.0.1", 5001), node.config.rotate_secrets + 1)
    assert node.stats["command_update"] == 2
    node.tick(2 * node.config.rotate_secrets + 2)  # twice: it is gone
    node.receive(_update(topic, token, rid=9), ("127.0.0.1", 5001), 2 * node.config.rotate_secrets + 2)
    assert node.stats["command_update"] == 2 and node.stats["dropped_bad_token"] == 4


def test_bad_datagrams_are_dropped_and_counted():
    node = RPCNode(ephemeral=False)
    PeerStore().register(node)
    peer = ("127.0.0.1", 6000)
    node.receive(b"\xff" * 40, peer, 0)
    node.receive(b"", peer, 0)  # no type, no rid
    node.receive(b"\x08\x01" * (MAX_DATAGRAM // 2 + 1), peer, 0)
    node.receive(Message(type=QUERY, rid=1, id=b"short", version=1, command="_ping").encode(), peer, 0)
    node.receive(Message(type=9, rid=1).encode(), peer, 0)
    node.receive(Message(type=QUERY, rid=1, command="_find_node", target=b"x").encode(), peer, 0)
    node.receive(Message(type=QUERY, rid=1, command="peers").encode(), peer, 0)  # no target
    node.receive(Message(type=RESPONSE, rid=5, version=1).encode(), peer, 0)  # we asked nothing
    node.receive(Message(type=QUERY, rid=1, command="_holepunch", value=b"\xff").encode(), peer, 0)
    node.receive(Message(type=QUERY, rid=1, command="peers", target=os.urandom(32),
                         value=b"\x0a\xff").encode(), peer, 0)  # a value that does not decode
    node.receive(b"\x08\x01\x10\x01", ("127.0.0.1", 0), 0)
    s = node.stats
    assert s["dropped_oversized"] == 1 and s["dropped_unexpected_response"] == 1 and s["dropped_no_port"] == 1
    assert s["dropped_malformed"] == 8
    assert not node.datagrams() and len(node.table) == 0

    # an answer from another address than the one asked is not taken as the answer
    done = []
    node.ping(("127.0.0.1", 7000), done.append)
    (req, _), = node.datagrams()
    rid = Message.decode(req).rid
    node.receive(Message(type=RESPONSE, rid=rid, version=1).encode(), ("127.0.0.1", 7001), 0)
    assert not done and node.stats["dropped_unexpected_response"] == 2
    node.receive(Message(type=RESPONSE, rid=rid, version=1, value=encode_peer("127.0.0.1", 7000)).encode(),
                 ("127.0.0.1", 7000), 0)
    assert len(done) == 1 and done[0] is not None


def test_a_flood_from_one_address_is_rate_limited_and_others_are_served():
    node = RPCNode(ephemeral=False, config=RPCConfig(rate=100, burst=200))
    ping = Message(version=1, type=QUERY, rid=1, command="_ping").encode()
    for i in range(10_000):
        node.receive(ping, ("127.0.0.1", 6000), i * 0.0001)  # 10,000 in one second
    answered = len(node.datagrams())
    assert 200 <= answered <= 320 and node.stats["dropped_rate_limited"] == 10_000 - answered
    node.receive(ping, ("127.0.0.1", 6001), 1.0)
    assert len(node.datagrams()) == 1
    node.receive(ping, ("127.0.0.1", 6000), 3.0)  # the flooder is served again once it slows down
    assert len(node.datagrams()) == 1


def test_holepunches_are_relayed_only_to_peers_that_talk_to_us():
    node = RPCNode(ephemeral=False)
    a_, b_ = ("127.0.0.1", 6000), ("127.0.0.1", 6001)
    punch = Message(version=1, type=QUERY, rid=3, command="_holepunch",
                    value=Holepunch(to=encode_peer(*b_)).encode()).encode()
    node.receive(punch, a_, 0)
    assert not node.datagrams() and node.stats["holepunch_refused"] == 1
    node.receive(Message(version=1, type=QUERY, rid=1, command="_ping").encode(), b_, 0)
    node.datagrams()
    node.receive(punch, a_, 1)
    (data, to), = node.datagrams()
    relayed = Message.decode(data)
    assert to == b_ and Holepunch.decode(relayed.value).from_ == encode_peer(*a_)
    # the punched peer answers the origin directly
    other = RPCNode()
    other.receive(data, ("127.0.0.1", 4000), 1)
    (answer, to), = other.datagrams()
    assert to == a_ and Message.decode(answer).type == RESPONSE


def test_peer_store_limits_expiry_and_local_records():
    now = [0.0]
    store = PeerStore(max_age=60, max_size=10, max_per_topic=4, clock=lambda: now[0])
    topic = os.urandom(32)
    from hypernode.discovery.rpc import IncomingRequest

    def ask(type: int, host: str, port: int, value: bytes, target: bytes = topic):
        return store.handle(IncomingRequest(type, "peers", target, value, host, port))

    for i in range(6):
        assert ask(UPDATE, "10.0.0.1", 1000 + i, b"") == (None, None)  # port: the UDP port
    assert len(store) == 4  # max_per_topic: the oldest went
    out = PeersOutput.decode(ask(QUERY, "10.0.0.9", 1, b"")[0])
    assert decode_peers(out.peers) == [("10.0.0.1", 1000 + i) for i in (5, 4, 3, 2)]
    out = PeersOutput.decode(ask(QUERY, "10.0.0.1", 1, peers_input(port=1005))[0])
    assert ("10.0.0.1", 1005) not in decode_peers(out.peers)  # the asker's own record is left out
    assert ask(UPDATE, "10.0.0.1", 0, b"")[1] == "Invalid port"
    for _ in range(10):
        ask(UPDATE, "10.0.0.2", 2000, b"", target=os.urandom(32))
    assert len(store) == 10  # max_size
    now[0] = 61
    assert store.get(topic.hex(), 10) == [] and len(store) == 0  # expired

    lan = peers_input(port=3000, local_address=("192.168.1.20", 3000))
    ask(UPDATE, "1.2.3.4", 9, lan)
    out = PeersOutput.decode(ask(QUERY, "5.6.7.8", 9, peers_input(local_address=("192.168.1.30", 1)))[0])
    assert decode_peers(out.peers) == [("1.2.3.4", 3000)]
    assert decode_local_peers(b"\xc0\xa8", out.localPeers) == [("192.168.1.20", 3000)]
    found = parse_peers_output(out.encode(), ("192.168.1.30", 1))
    assert found.peers == [("1.2.3.4", 3000)] and found.local_peers == [("192.168.1.20", 3000)]
    ask(UPDATE, "1.2.3.4", 9, peers_input(port=3000, local_address=("192.168.1.20", 3000), unannounce=True))
    assert len(store) == 0
    with pytest.raises(DecodeError):
        ask(QUERY, "1.2.3.4", 9, b"\x0a\x05")


def test_value_store_checks_hashes_signatures_and_seqs():
    import hashlib

    from nacl.signing import SigningKey

    from hypernode.discovery.rpc import IncomingRequest
    from hypernode.discovery.values import Mutable, ValueStore, signable

    store = ValueStore(max_values=3)

    def req(kind: int, target: bytes, value: bytes | None) -> IncomingRequest:
        return IncomingRequest(kind, "x", target, value, "127.0.0.1", 1)

    value = b"hello"
    key = hashlib.blake2b(value, digest_size=32).digest()
    assert store.immutable(req(UPDATE, os.urandom(32), value)) == (None, "ERR_INVALID_INPUT")
    assert store.immutable(req(UPDATE, key, value)) == (None, None)
    assert store.immutable(req(QUERY, key, None)) == (value, None)
    big = os.urandom(1001)
    assert store.immutable(req(UPDATE, hashlib.blake2b(big, digest_size=32).digest(), big))[1]

    sk = SigningKey.generate()
    pk = bytes(sk.verify_key)
    assert signable(b"v", 2, b"salt") == b"4:salt4:salt3:seqi2e1:v1:v"

    def put(v: bytes, seq: int, sig: bytes | None = None, salt: bytes | None = None):
        sig = sig if sig is not None else sk.sign(signable(v, seq, salt)).signature
        return store.mutable(req(UPDATE, pk, Mutable(value=v, signature=sig, seq=seq, salt=salt).encode()))

    assert put(b"one", 1) == (None, None)
    assert put(b"forged", 2, sig=bytes(64)) == (None, "ERR_INVALID_INPUT")
    proof, err = put(b"other", 1)
    assert err == "ERR_INVALID_SEQ" and Mutable.decode(proof).value == b"one"
    assert put(b"zero", 0)[1] == "ERR_SEQ_MUST_EXCEED_CURRENT"
    assert put(b"two", 2) == (None, None)
    got, _ = store.mutable(req(QUERY, pk, Mutable(seq=2).encode()))
    assert Mutable.decode(got).value == b"two"
    assert store.mutable(req(QUERY, pk, Mutable(seq=3).encode())) == (None, None)
    assert put(b"salted", 0, salt=b"s" * 16) == (None, None) and len(store) == 3
    assert put(b"x", 0, salt=b"s" * 65)[1] == "ERR_INVALID_INPUT"
    with pytest.raises(DecodeError):
        store.mutable(req(UPDATE, pk, b"\x0a\x09"))


# -- fuzzing every decoder -------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_receive_arbitrary_bytes(data):
    node = RPCNode(ephemeral=False)
    PeerStore().register(node)
    node.receive(data, ("127.0.0.1", 5000), 0.0)
    node.tick(10.0)
    assert sum(v for k, v in node.stats.items() if k.startswith("dropped")) <= 1


_messages = st.builds(
    Message, type=st.sampled_from([1, 2, 3, 4]), rid=st.integers(0, 70000),
    version=st.one_of(st.none(), st.integers(0, 3)),
    id=st.one_of(st.none(), st.binary(min_size=31, max_size=33)),
    target=st.one_of(st.none(), st.binary(min_size=32, max_size=32), st.binary(max_size=40)),
    closerNodes=st.one_of(st.none(), st.binary(max_size=400)),
    roundtripToken=st.one_of(st.none(), st.binary(max_size=40)),
    command=st.one_of(st.none(), st.sampled_from(["_ping", "_find_node", "_holepunch", "peers", "x"])),
    value=st.one_of(st.none(), st.binary(max_size=120)), to=st.one_of(st.none(), st.binary(max_size=8)))


@settings(max_examples=400, deadline=None)
@given(st.lists(_messages, max_size=5))
def test_fuzz_receive_structured_messages(messages):
    node = RPCNode(ephemeral=False, bootstrap=[("127.0.0.1", 5001)])
    PeerStore().register(node)
    q = node.query("peers", bytes(32), peers_input(), update=True)
    for msg in messages:
        node.receive(msg.encode(), ("127.0.0.1", 5001), 0.1)
    for t in (1, 2, 5, 10):
        node.tick(t)
    node.events()
    assert q.done


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=8))
def test_fuzz_address_and_peers_decoders(data, prefix):
    decode_peer(data)
    decode_peers(data)
    decode_nodes(data)
    decode_local_peers(prefix, data)
    parse_peers_output(data, ("10.0.0.1", 1))
    for cls in (PeersInput, PeersOutput, Holepunch, Message):
        try:
            cls.decode(data)
        except DecodeError:
            pass


# -- real sockets on 127.0.0.1 ---------------------------------------------------------------------


async def _collect(channel, into: list) -> None:
    async for peer in channel:
        into.append(peer)


async def _dht_network(stack, n: int):
    from contextlib import AsyncExitStack  # noqa: F401 - the stack is the caller's

    boot = await stack.enter_async_context(DHTNode(host="127.0.0.1", ephemeral=False, config=FAST))
    nodes = [await stack.enter_async_context(DHTNode(bootstrap=[boot.address], ephemeral=False, config=FAST))
             for _ in range(n)]
    for node in nodes:
        await node.wait_bootstrapped()
    return boot, nodes


async def test_swarms_find_each_other_over_udp_and_leave_unannounces():
    from contextlib import AsyncExitStack

    with trio.fail_after(30):
        async with AsyncExitStack() as stack:
            boot, nodes = await _dht_network(stack, 15)
            bootstrap = [boot.address, nodes[3].address]
            topic = os.urandom(32)
            seen: dict[int, list] = {i: [] for i in range(3)}
            swarms = [await stack.enter_async_context(
                Swarm(bootstrap=bootstrap, port=7000 + i, config=FAST, refresh=0.3)) for i in range(3)]
            collectors = await stack.enter_async_context(trio.open_nursery())
            stack.callback(collectors.cancel_scope.cancel)
            for i, s in enumerate(swarms):
                collectors.start_soon(_collect, s.peers(), seen[i])
                s.join(topic, announce=True, lookup=True)
            while not all({(p.host, p.port) for p in seen[i]} >= {("127.0.0.1", 7000 + j) for j in range(3)
                                                                   if j != i} for i in range(3)):
                await trio.sleep(0.05)
            assert all(p.port != 7000 + i for i in range(3) for p in seen[i])  # never ourselves
            swarms[0].leave(topic)
            # the unannounce reaches the nodes in its own time (longer under load): look until it has
            # (the test's fail_after bounds the wait), the others staying found each time
            while True:
                async with Swarm(bootstrap=bootstrap, config=FAST) as probe:
                    found = probe.peers()
                    probe.join(topic)
                    await probe.flush()
                # the channel ended with the swarm; what it holds is still read
                ports = {p.port for p in [p async for p in found]}
                assert ports >= {7001, 7002}
                if ports == {7001, 7002}:
                    break
                await trio.sleep(0.2)


async def test_a_node_survives_floods_garbage_and_dead_bootstrap_nodes():
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    dead.bind(("127.0.0.1", 0))
    with dead, trio.fail_after(30):
        async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot, \
                DHTNode(host="127.0.0.1", ephemeral=False, config=FAST,
                        bootstrap=[dead.getsockname(), boot.address]) as node:
            await node.wait_bootstrapped()
            flooder = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            await flooder.bind(("127.0.0.1", 0))
            ping = Message(version=1, type=QUERY, rid=1, command="_ping").encode()
            for i in range(3000):
                data = ping if i % 3 == 0 else (os.urandom(i % 200) if i % 3 == 1 else b"\0" * 9000)
                await flooder.sendto(data, node.address)
            flooder.close()
            await trio.sleep(0.3)
            stats = node.stats
            assert stats["dropped_oversized"] == 1000  # every third datagram
            assert stats["dropped_rate_limited"] > 1000  # of the other 2000, most went over the limit
            assert stats["dropped_malformed"] > 0
            # it still works for everyone else
            topic = os.urandom(32)
            async with Swarm(bootstrap=[node.address], port=7100, config=FAST) as s1:
                s1.join(topic, announce=True, lookup=False)
                await s1.flush()
                async with Swarm(bootstrap=[node.address], config=FAST) as s2:
                    found = s2.peers()
                    s2.join(topic)
                    await s2.flush()
                assert [(p.host, p.port) async for p in found] == [("127.0.0.1", 7100)]


async def test_a_swarm_tries_again_soon_while_the_dht_is_out_of_reach():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nobody there yet
    topic = os.urandom(32)
    with trio.fail_after(20):
        async with Swarm(bootstrap=[("127.0.0.1", port)], config=FAST) as looker:
            found = looker.peers()
            looker.join(topic)
            await looker.flush()  # a round that reached nobody
            assert len(found) == 0
            async with DHTNode(host="127.0.0.1", port=port, ephemeral=False, config=FAST) as boot, \
                    Swarm(bootstrap=[boot.address], port=7300, config=FAST) as announcer:
                announcer.join(topic, announce=True, lookup=False)
                await announcer.flush()
                peer = await found.receive()  # well before the 5-minute refresh
            assert (peer.host, peer.port) == ("127.0.0.1", 7300)


async def test_nodes_clone_a_drive_they_found_with_one_connection_between_them(tmp_path):
    opts = {"config": FAST, "refresh": 0.2, "dedup_interval": 0.1}
    with trio.fail_after(30):
        async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot:
            bs = [boot.address]
            async with HyperNode(tmp_path / "a", bootstrap=bs, discovery_options=opts) as a_, \
                    HyperNode(tmp_path / "b", bootstrap=bs, discovery_options=opts) as b_:
                drive = await a_.create_drive()
                await drive.write_file("/found.txt", "found on the DHT")
                copy = await b_.open_drive(drive.key)
                await b_.sync_feed(copy.metadata)
                assert await copy.read_file("/found.txt", "utf-8") == "found on the DHT"
                # both announce and look up, so each dials the other: one connection must remain
                await trio.sleep(1.5)
                live = [s for s in a_.server.sessions if not s.closed]
                assert len(live) == 1 and len([s for s in b_.server.sessions if not s.closed]) == 1
                # the status says how: TCP or uTP (both raced on loopback), one connection each side
                sa, sb = a_.status(), b_.status()
                assert sum(sa.connections.values()) == 1 and sum(sb.connections.values()) == 1
                assert set(sa.connections) <= {"tcp", "utp"} and sa.connections == sb.connections
                assert sa.utp_port == a_.port and sb.utp_port == b_.port  # uTP on the TCP port
                assert sum(sa.incoming.values()) + sum(sb.incoming.values()) == 1
                peer = sa.drives[0].peers[0]
                assert peer.transport in sa.connections and peer.incoming == bool(sa.incoming)
                assert sa.reachable in {"tcp", "utp"} or sb.reachable in {"tcp", "utp"}
                await drive.write_file("/later.txt", "still in sync")
                with trio.fail_after(10):
                    while not await copy.exists("/later.txt"):
                        await copy.update()


CLI = [sys.executable, "-m", "hypernode.cli"]


def _read_until(proc: subprocess.Popen, prefix: str) -> str:
    while True:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"exited: {proc.wait()} {proc.stderr.read()}")
        if line.startswith(prefix):
            return line.strip()


def test_command_dht_share_and_clone_without_peers(tmp_path: Path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha\n")
    procs = []
    try:
        dht = subprocess.Popen([*CLI, "dht", "--port", "0", "--bootstrap", "none"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        procs.append(dht)
        line = _read_until(dht, "dht node listening on")
        port = int(line.split()[4].split(":")[1])
        assert "bootstrap node" in line
        share = subprocess.Popen([*CLI, "--store", str(tmp_path / "s"), "share", str(folder), "--bootstrap",
                                  f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        procs.append(share)
        key = _read_until(share, "sharing").split()[-1]
        _read_until(share, "synced")
        out = subprocess.run([*CLI, "--store", str(tmp_path / "c"), "clone", key, str(tmp_path / "clone"),
                              "--bootstrap", f"127.0.0.1:{port}", "--timeout", "20"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "clone" / "a.txt").read_text() == "alpha\n"
        # nobody has this drive: clone gives up after --timeout with a one-line error
        out = subprocess.run([*CLI, "--store", str(tmp_path / "d"), "clone", "ab" * 32, str(tmp_path / "x"),
                              "--bootstrap", f"127.0.0.1:{port}", "--timeout", "1"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and out.stderr.strip() == (
            f"hypernode: no peer found for drive {'ab' * 32} within 1 s")
    finally:
        for p in procs:
            p.send_signal(2)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for f in (p.stdout, p.stderr):
                f.close()
        assert all(p.returncode == 130 for p in procs), [p.returncode for p in procs]  # SIGINT: 130
