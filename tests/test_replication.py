"""Replication between Python stores over loopback TCP, and against deliberately bad peers."""

from __future__ import annotations

import contextlib
import random

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.errors import VerificationError
from hypernode.replication import FeedPeer, replicator_of
from hypernode.replication.server import open_replication_server
from hypernode.storage import Node
from hypernode.wire import ChannelOpened, MessageReceived, messages
from hypernode.wire.stream import ConnectionClosed, ProtocolStream


def blocks_for(n: int, size: int = 700, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    return [rnd.randbytes(size) for _ in range(n)]


async def test_full_clone_sparse_and_live(tmp_path):
    blocks = blocks_for(3000)
    async with Corestore(tmp_path / "a") as a, open_replication_server(a) as a_net, \
            Corestore(tmp_path / "b") as b, open_replication_server(b) as b_net, \
            Corestore() as c, open_replication_server(c, sparse=True) as c_net:
        src = await a.get(name="src")
        await src.append(blocks)
        port = await a_net.listen()
        full = await b.get(src.key)
        sparse = await c.get(src.key)
        await b_net.connect("127.0.0.1", port)
        await c_net.connect("127.0.0.1", port)
        with trio.fail_after(30):
            await replicator_of(full).update(3000)
            await replicator_of(full).download(0, 3000)
            assert await replicator_of(sparse).get(1500) == blocks[1500]
        assert [await full.get(i) for i in range(3000)] == blocks
        assert sparse.downloaded() == 1
        # live, both ways of waiting
        await src.append(b"new")
        with trio.fail_after(5):
            assert await replicator_of(full).update(3001) == 3001
            assert await replicator_of(full).get(3000) == b"new"
            assert await replicator_of(sparse).get(3000) == b"new"
        assert len(replicator_of(src).peers) == 2
    # what b downloaded survived the restart, verified
    async with Corestore(tmp_path / "b") as b2:
        again = await b2.get(src.key)
        assert again.length == 3001 and await again.get(2999) == blocks[2999]


async def test_get_times_out_without_peers():
    async with Corestore() as store:
        from hypernode import crypto
        feed = await store.get(crypto.key_pair().public_key)
        with pytest.raises(trio.TooSlowError):
            await replicator_of(feed).get(0, timeout=0.2)


def _corrupt(mode: str, message):
    if type(message).__name__ != "Data" or message.value is None:
        return message
    m = messages.Data(index=message.index, value=message.value, nodes=list(message.nodes),
                      signature=message.signature)
    if mode == "flipped byte":
        m.value = bytes([m.value[0] ^ 1]) + m.value[1:]
    elif mode == "wrong proof":
        n = m.nodes[0] if m.nodes else None
        if n is not None:
            m.nodes[0] = messages.Data.Node(index=n.index, hash=bytes(32), size=n.size)
        else:
            m.value = m.value[::-1]
    elif mode == "wrong signature":
        if m.signature is not None:
            m.signature = bytes(64)
        else:
            m.value = b"x" + m.value[1:]
    return m


async def _serve_bad(listener, feed, mode: str, task_status=trio.TASK_STATUS_IGNORED):
    """A peer that has the feed but corrupts every block it sends (until the victim drops it)."""
    task_status.started()
    tcp = await listener.accept()
    with contextlib.suppress(ConnectionClosed):  # dropped: a reset, or an end of stream
        await _corrupt_over(tcp, feed, mode)


async def _corrupt_over(tcp, feed, mode: str) -> None:
    async with ProtocolStream(tcp, initiator=False) as ps:
        await ps.wait_handshake()
        ch, first = ps.open_channel(feed.key)
        peer = None

        async def events():
            yield first
            async for batch in ps.batches():
                yield batch

        async for batch in events():
            for ev in batch:
                if isinstance(ev, ChannelOpened):
                    peer = FeedPeer(replicator_of(feed), lambda m: ps.send(ch, _corrupt(mode, m)))
                    peer.on_open()
                elif isinstance(ev, MessageReceived) and peer is not None:
                    peer.on_message(ev.message)


@pytest.mark.parametrize("mode", ["flipped byte", "wrong proof", "wrong signature"])
async def test_bad_peer_is_dropped_and_honest_peer_completes(tmp_path, mode):
    blocks = blocks_for(400, 1000, seed=7)
    async with Corestore() as honest, open_replication_server(honest) as honest_net, \
            Corestore(tmp_path / "victim") as victim, open_replication_server(victim) as victim_net:
        src = await honest.get(name="x")
        await src.append(blocks)
        honest_port = await honest_net.listen()
        async with Corestore() as evil_store, open_replication_server(evil_store) as evil_store_net, \
                trio.open_nursery() as nursery:
            evil_feed = await evil_store.get(src.key)  # a full copy for the bad peer to serve
            await evil_store_net.connect("127.0.0.1", honest_port)
            with trio.fail_after(20):
                await replicator_of(evil_feed).update(400)
                await replicator_of(evil_feed).download(0, 400)
            listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
            await nursery.start(_serve_bad, listener, evil_feed, mode)
            bad_port = listener.socket.getsockname()[1]

            feed = await victim.get(src.key)
            tcp = await trio.open_tcp_stream("127.0.0.1", bad_port)
            with trio.fail_after(10), pytest.raises(VerificationError):  # why the connection ended
                await victim_net.replicate(tcp, initiator=True)
            assert victim_net.sessions == []
            assert feed.downloaded() == 0  # nothing from the bad peer was stored
            await victim_net.connect("127.0.0.1", honest_port)
            with trio.fail_after(20):
                await replicator_of(feed).download(0, 400)
            assert [await feed.get(i) for i in range(400)] == blocks
            nursery.cancel_scope.cancel()


async def test_unrequested_data_is_not_stored():
    """A peer pushing blocks nobody asked for gets them refused (an Unhave), nothing stored."""
    async with Corestore() as a, Corestore() as b:
        src = await a.get()
        await src.append([b"one", b"two", b"three"])
        feed = await b.get(src.key)
        sent = []
        peer = FeedPeer(replicator_of(feed), sent.append)
        peer.on_open()
        proof = src.proof(1)
        push = messages.Data(index=1, value=b"two", signature=proof.signature,
                             nodes=[messages.Data.Node(index=n.index, hash=n.hash, size=n.size)
                                    for n in proof.nodes])
        peer.on_message(push)
        assert not feed.has(1)
        assert any(type(m).__name__ == "Unhave" and m.start == 1 for m in sent)
        assert Node  # the Node type is what proofs carry


def test_remote_bits_are_bounded_and_exact():
    from hypernode.replication.peer import RemoteBits, ReplicationError
    bits = RemoteBits(max_pages=4)
    bits.set_range(5, 70_000)
    assert not bits.get(4) and bits.get(5) and bits.get(69_999) and not bits.get(70_000)
    assert bits.last() == 69_999
    bits.set_range(10, 20, False)
    assert bits.get(9) and not bits.get(10) and not bits.get(19) and bits.get(20)
    bits.fill(1 << 17, b"\x80\x01")
    assert bits.get(1 << 17) and bits.get((1 << 17) + 15) and not bits.get((1 << 17) + 1)
    with pytest.raises(ReplicationError):
        bits.set_range(0, 1 << 40)  # would need far more than four pages


async def test_hostile_have_messages_end_only_that_peer():
    """Haves that announce absurd ranges are refused, not allocated."""
    from hypernode.replication.peer import ReplicationError
    async with Corestore() as store:
        from hypernode import crypto
        feed = await store.get(crypto.key_pair().public_key)
        peer = FeedPeer(replicator_of(feed), lambda m: None)
        peer.on_open()
        peer.on_message(messages.Have(start=0, length=5))
        with pytest.raises(ReplicationError):
            peer.on_message(messages.Have(start=1 << 39, length=1 << 39))
        with pytest.raises(ReplicationError):
            peer.on_message(messages.Have(start=3, bitfield=b"\x01"))  # not byte aligned
        with pytest.raises(ReplicationError):
            peer.on_message(messages.Have(start=0, length=8, bitfield=b"\xff\xff\xff\xff\x7f"))


async def test_uploads_wait_while_the_output_is_full():
    """Requests that arrive while the connection's output is full are answered as it drains, in
    order; a Cancel drops a waiting one; a flood of waiting requests ends the peer."""
    from hypernode.replication.peer import MAX_DEFERRED_REQUESTS, ReplicationError
    async with Corestore() as store:
        feed = await store.get()
        await feed.append([bytes([i]) * 1000 for i in range(20)])
        sent = []
        room = [2500]  # bytes the connection may still queue

        def send(m):
            sent.append(m)
            if type(m).__name__ == "Data" and m.value:
                room[0] -= len(m.value)

        peer = FeedPeer(replicator_of(feed), send)
        peer.output_room = lambda: room[0]
        peer.on_open()
        sent.clear()
        for i in range(6):
            peer.on_message(messages.Request(index=i))
        assert [m.index for m in sent if type(m).__name__ == "Data"] == [0, 1, 2]  # then the output is full
        assert [r.index for r in peer.deferred] == [3, 4, 5]
        peer.on_message(messages.Cancel(index=4))
        room[0] = 10_000  # the writer drained
        peer.serve_deferred()
        assert [m.index for m in sent if type(m).__name__ == "Data"] == [0, 1, 2, 3, 5]
        room[0] = 0
        with pytest.raises(ReplicationError, match="flood"):
            for _ in range(MAX_DEFERRED_REQUESTS + 1):
                peer.on_message(messages.Request(index=7))


async def test_a_clone_of_big_blocks_keeps_the_uploaders_buffers_small():
    """Many requests for big blocks at once: the serving connection never queues much over its limit."""
    from hypernode.replication import session as session_module
    async with Corestore() as a, open_replication_server(a) as a_net, Corestore() as b, \
            open_replication_server(b) as b_net:
        src = await a.get()
        await src.append([bytes([i]) * (512 * 1024) for i in range(48)])  # 24 MiB
        port = await a_net.listen("127.0.0.1", 0)
        copy = await b.get(src.key)
        await b_net.connect("127.0.0.1", port)
        peak = 0
        with trio.fail_after(30):
            while copy.downloaded() < 48:
                for s in a_net.sessions:
                    peak = max(peak, s.stream.conn.pending_output)
                await trio.sleep(0)
        assert peak <= session_module.OUTPUT_LIMIT + 2 * 512 * 1024, peak


async def test_a_range_to_the_end_of_time_does_not_hang_the_wants():
    """A want of blocks [0, 2**62) with a peer connected: the Wants go out at once (regions are clipped to
    what anyone announced)."""
    async with Corestore() as store:
        from hypernode import crypto
        feed = await store.get(crypto.key_pair().public_key)
        sent = []
        peer = FeedPeer(replicator_of(feed), sent.append)
        peer.on_open()
        peer.on_message(messages.Have(start=0, length=5000))
        with trio.fail_after(2):
            async with replicator_of(feed).want(0, 2**62):
                peer.send_wants()
        assert all(m.start < 2 * 1024 * 1024 for m in sent if type(m).__name__ == "Want")
