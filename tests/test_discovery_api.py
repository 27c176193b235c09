"""Discovery's trio API: the bounded channels peers found come through (a slow reader never makes memory
grow), a DHT query's answers as an async iterator, the open_* functions and ``async with`` on the
objects being one thing, Peering run from explicit parts (a store, a key pair, a port) without a node,
and no import cycle inside hypernode/discovery. Real UDP and TCP on 127.0.0.1."""

from __future__ import annotations

import ast
import graphlib
import os
import socket
from pathlib import Path

import pytest
import trio
import trio.testing

from hypernode.corestore import Corestore
from hypernode.discovery import DroppingChannel, PeerFound, open_dht_node, open_swarm
from hypernode.discovery.addresses import encode_peer
from hypernode.discovery.local import LocalDiscovery, open_local_discovery
from hypernode.discovery.peering import Peering, open_peering
from hypernode.discovery.rpc import RPCConfig
from hypernode.discovery.swarm import DHTNode, QueryResult, Swarm
from hypernode.replication.server import open_replication_server
from hypernode.wire.noise import KeyPair

FAST = RPCConfig(attempt_timeout=0.2, final_timeout=0.4)
DISCOVERY = Path(__file__).resolve().parents[1] / "hypernode" / "discovery"


def _peer(port: int, topic: bytes = b"t" * 32, referrer: tuple[str, int] | None = None) -> PeerFound:
    return PeerFound("127.0.0.1", port, topic, referrer=referrer)


def _drain(channel: DroppingChannel) -> list:
    out = []
    while True:
        try:
            out.append(channel.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


# -- the channel -----------------------------------------------------------------------------------


def test_a_full_channel_drops_the_oldest_and_counts_them():
    channel: DroppingChannel[PeerFound] = DroppingChannel(8, key=lambda p: p.key)
    for port in range(1000, 2000):  # nobody reads: a thousand puts, eight kept
        channel.put(_peer(port))
    assert len(channel) == 8 and channel.dropped == 992
    assert [p.port for p in _drain(channel)] == list(range(1992, 2000))  # the newest, oldest first


def test_a_peer_found_again_while_it_waits_is_queued_once_with_the_newer_value():
    channel: DroppingChannel[PeerFound] = DroppingChannel(8, key=lambda p: p.key)
    channel.put(_peer(1, referrer=("10.0.0.1", 1)))
    channel.put(_peer(2))
    for _ in range(100):
        channel.put(_peer(1, referrer=("10.0.0.2", 2)))
    channel.put(_peer(1, topic=b"u" * 32))  # another topic: another peer found
    waiting = _drain(channel)
    assert [(p.port, p.topic[:1]) for p in waiting] == [(1, b"t"), (2, b"t"), (1, b"u")]
    assert waiting[0].referrer == ("10.0.0.2", 2) and channel.dropped == 0
    without_key: DroppingChannel[int] = DroppingChannel(4)  # no key: every item counts
    for _ in range(3):
        without_key.put(7)
    assert _drain(without_key) == [7, 7, 7]


async def test_the_channel_as_an_async_iterator_ends_after_what_waits():
    channel: DroppingChannel[int] = DroppingChannel(16)
    got = []

    async def read() -> None:
        async for item in channel:
            got.append(item)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()  # the reader waits
        channel.put(1)
        await trio.testing.wait_all_tasks_blocked()
        assert got == [1]
        channel.put(2)
        channel.put(3)
        channel.end()  # what waits is still read, then the loop ends
        channel.put(4)  # ignored after the end
    assert got == [1, 2, 3]
    with pytest.raises(trio.EndOfChannel):
        await channel.receive()


async def test_a_closed_channel_wakes_its_reader_and_ignores_later_items():
    channel: DroppingChannel[int] = DroppingChannel(16)
    channel.put(1)
    async with trio.open_nursery() as nursery:
        async def read_twice() -> None:
            await channel.receive()
            with pytest.raises(trio.ClosedResourceError):
                await channel.receive()

        nursery.start_soon(read_twice)
        await trio.testing.wait_all_tasks_blocked()
        await channel.aclose()
    channel.put(2)
    assert len(channel) == 0
    with pytest.raises(ValueError):
        DroppingChannel(0)


# -- the swarm's peers -----------------------------------------------------------------------------


async def test_a_slow_reader_of_the_swarm_keeps_at_most_maxsize_and_each_peer_once():
    """A hundred peers announced, a lookup every 0.1 s: an unread channel of 16 holds 16, an unread
    channel of the default size holds each peer once however many rounds found it again, and a reader
    that keeps up gets all of them."""
    topic = os.urandom(32)
    with trio.fail_after(30):
        async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot:
            for port in range(7400, 7500):
                boot.store.add(topic.hex(), encode_peer("127.0.0.1", port))
            async with open_swarm(bootstrap=[boot.address], config=FAST, refresh=0.1) as swarm:
                small = swarm.peers(maxsize=16)
                unread = swarm.peers()
                read: list[PeerFound] = []
                async with swarm.peers() as reading, trio.open_nursery() as nursery:
                    async def reader() -> None:
                        async for peer in reading:
                            read.append(peer)

                    nursery.start_soon(reader)
                    swarm.join(topic)
                    while swarm.topics[topic].rounds < 4:
                        await trio.sleep(0.05)
                        assert len(small) <= 16 and len(unread) <= 100
                    nursery.cancel_scope.cancel()
                assert len(small) == 16 and small.dropped >= 84
                assert len(unread) == 100 and unread.dropped == 0
                assert {p.port for p in _drain(unread)} == set(range(7400, 7500))
                assert {p.port for p in read} == set(range(7400, 7500)) and len(read) > 100  # each round
    assert swarm.peers().ended  # a closed swarm's channel ends at once


async def test_each_listener_of_a_swarm_gets_every_peer_and_a_dropped_listener_is_forgotten():
    topic = os.urandom(32)
    with trio.fail_after(20):
        async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot:
            boot.store.add(topic.hex(), encode_peer("127.0.0.1", 7600))
            async with Swarm(bootstrap=[boot.address], config=FAST) as swarm:
                first, second = swarm.peers(), swarm.peers()
                swarm.peers()  # nobody holds this one
                assert len(swarm._found._channels) == 2
                swarm.join(topic)
                await swarm.flush()
                assert [p.port for p in _drain(first)] == [7600] == [p.port for p in _drain(second)]
                await second.aclose()  # this listener stops
                swarm.join(topic)  # a new round
                while swarm.topics[topic].rounds < 1:
                    await trio.sleep(0.05)
                await swarm.flush()
                assert len(swarm._found._channels) == 1


# -- DHT queries as async iterators ----------------------------------------------------------------


async def test_a_lookup_gives_its_answers_peers_as_they_come_and_a_result():
    topic = os.urandom(32)
    with trio.fail_after(20):
        async with open_dht_node(host="127.0.0.1", ephemeral=False, config=FAST) as boot, \
                open_dht_node(host="127.0.0.1", bootstrap=[boot.address], config=FAST) as a, \
                open_dht_node(host="127.0.0.1", bootstrap=[boot.address], config=FAST) as b:
            await a.wait_bootstrapped()
            await b.wait_bootstrapped()
            announced = []
            async with a.open_announce(topic, 7700) as replies:
                async for peers, _reply in replies:  # nobody announced before: no peers yet
                    announced.append(peers)
            assert announced == [] and replies.result.replies >= 1 and replies.result.error is None
            assert await a.announce(topic, 7701) == QueryResult(replies.result.replies, None)
            found = []
            async with b.open_lookup(topic) as replies:
                async for peers, reply in replies:
                    found.append(({(p.host, p.port) for p in peers}, reply.host, reply.port))
            assert found == [({("127.0.0.1", 7700), ("127.0.0.1", 7701)}, "127.0.0.1", boot.port)]
            assert replies.result == QueryResult(1, None)
            async with b.open_query("peers", topic) as raw:  # any command, each answer as it came
                answers = [reply async for reply in raw]
            assert [(r.host, r.port, r.error is None) for r in answers] == [("127.0.0.1", boot.port, True)]
            # leaving early stops the query
            async with b.open_lookup(topic) as replies:
                pass
            assert replies.replies.query.done and replies.replies.ended


async def test_nobody_answering_is_a_result_not_an_exception():
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    dead.bind(("127.0.0.1", 0))
    with dead, trio.fail_after(20):
        async with DHTNode(host="127.0.0.1", bootstrap=[dead.getsockname()], config=FAST) as dht:
            async with dht.open_lookup(os.urandom(32)) as replies:
                assert [p async for p in replies] == []
            assert replies.result == QueryResult(0, "No nodes responded")
    with pytest.raises(RuntimeError, match="async with"):  # a query needs the node open
        async with DHTNode().open_query("peers", bytes(32)):
            pass


# -- the open_* functions and the adapter ----------------------------------------------------------


async def test_open_functions_and_async_with_give_the_same_objects():
    with trio.fail_after(20):
        async with open_dht_node(host="127.0.0.1", ephemeral=False) as boot:
            assert type(boot) is DHTNode and boot.port is not None
            async with open_swarm(bootstrap=[boot.address], host="127.0.0.1") as swarm:
                assert type(swarm) is Swarm and swarm.dht is not None and swarm.dht.port is not None
            async with open_local_discovery(port=0) as local:
                assert type(local) is LocalDiscovery and local._sock is not None
            assert local._sock is not None and local._sock.fileno() == -1  # closed on the way out
        assert boot._sock is not None and boot._sock.fileno() == -1


async def test_an_object_is_open_once_at_a_time():
    dht = DHTNode(host="127.0.0.1")
    async with dht:
        with pytest.raises(RuntimeError, match="open already"):
            async with dht:
                pass
        assert dht._nursery is not None  # still open
    with pytest.raises(RuntimeError, match="not open"):
        await dht.__aexit__(None, None, None)


async def test_a_port_in_use_is_raised_by_the_open_function_as_by_the_class():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        for opening in (open_dht_node, DHTNode):
            with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port} \\(UDP\\)"):
                async with opening(host="127.0.0.1", port=port):
                    pass


# -- Peering from explicit parts -------------------------------------------------------------------


async def test_peering_runs_from_a_store_a_key_pair_and_a_port_without_a_node():
    """Two stores, each with its Peering: the one that listens announces, the other finds it and
    connects with its key pair; a third, told that address is handled already, finds it and does not
    dial; a peer that cannot be reached is named in the peer_errors given."""
    topic = os.urandom(32)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    opts = {"config": FAST, "refresh": 0.2, "dedup_interval": 0.1, "connect_timeout": 3.0}
    with trio.fail_after(30):
        async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot, \
                Corestore() as a, open_replication_server(a) as a_net, Corestore() as b, \
                open_replication_server(b) as b_net, Corestore() as c, open_replication_server(c) as c_net:
            boot.store.add(topic.hex(), encode_peer("127.0.0.1", dead))  # gone since
            bootstrap = [boot.address]
            ka, kb, kc = KeyPair.generate(), KeyPair.generate(), KeyPair.generate()
            port = await a_net.listen(key_pair=ka)
            errors: dict[tuple[str, int], str] = {}
            async with open_peering(server=a_net, key_pair=ka, port=port, bootstrap=bootstrap,
                                    **opts) as pa, \
                    Peering(server=b_net, key_pair=kb, port=None, bootstrap=bootstrap, peer_errors=errors,
                            **opts) as pb, \
                    Peering(server=c_net, key_pair=kc, port=None, bootstrap=bootstrap,
                            handled=lambda addr: addr == ("127.0.0.1", port), **opts) as pc:
                pa.join(topic)
                await pa.swarm.flush()
                seen_by_c = pc.swarm.peers()
                pb.join(topic)
                pc.join(topic)
                while not any(s.remote_public_key == kb.public_key for s in a_net.sessions):
                    await trio.sleep(0.05)
                assert [s.remote_public_key for s in b_net.sessions] == [ka.public_key]
                while ("127.0.0.1", port) not in {(p.host, p.port) for p in _drain(seen_by_c)}:
                    await trio.sleep(0.05)
                await trio.testing.wait_all_tasks_blocked()  # pc has read it too
                assert ("127.0.0.1", port) not in pc.dialling and c_net.sessions == []
                while ("127.0.0.1", dead) not in errors:
                    await trio.sleep(0.05)
                # each way tried, and why it failed: TCP refused, then the holepunch and uTP gave up
                assert errors[("127.0.0.1", dead)].startswith("TCP: connection refused;")
                assert "holepunch: no answer through" in errors[("127.0.0.1", dead)]
                assert pb.peer_errors is errors and ("127.0.0.1", port) not in errors


async def test_peering_needs_its_parts():
    with pytest.raises(TypeError, match="server"):
        Peering(bootstrap=[])  # type: ignore[call-arg]
    async with Corestore() as store, open_replication_server(store) as server:  # no key pair
        with pytest.raises(TypeError, match="key_pair="):
            Peering(server=server, bootstrap=[])


# -- structure -------------------------------------------------------------------------------------


def _discovery_imports(path: Path) -> set[str]:
    """The hypernode.discovery modules ``path`` imports, at module and function level (imports under
    ``if TYPE_CHECKING:`` left out)."""
    tree = ast.parse(path.read_text())
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.startswith("hypernode.discovery"):
                out.add(name)
    return out


def test_no_import_cycle_inside_discovery():
    modules = {("hypernode.discovery" if p.stem == "__init__" else f"hypernode.discovery.{p.stem}"): p
               for p in DISCOVERY.glob("*.py")}
    graph = {m: {i for i in _discovery_imports(p) if i in modules and i != m} for m, p in modules.items()}
    assert "hypernode.discovery.rpc" in graph["hypernode.discovery.swarm"]  # the walk sees imports
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")
