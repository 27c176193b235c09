"""Requests in flight: digests that count the nodes on their way (replication.peer.InFlight), and the
request timeout; driven sans-IO: the test plays the uploader, answering each Request with the proof its
digest asks for, in any order."""

from __future__ import annotations

import random

import pytest

from hypernode.bitfield import TreeIndex
from hypernode.errors import VerificationError
from hypernode.feed import Feed
from hypernode.replication import FeedPeer, replicator_of
from hypernode.replication.peer import ReplicationError
from hypernode.wire import messages


def _data(src: Feed, request: messages.Request, remote_tree: TreeIndex) -> messages.Data:
    proof = src.proof(request.index, digest=request.nodes or 0, remote_tree=remote_tree)
    nodes = [messages.Data.Node(index=n.index, hash=n.hash, size=n.size) for n in proof.nodes]
    return messages.Data(index=request.index, value=src.read_block_sync(request.index),
                         signature=proof.signature, nodes=nodes)


def _requests(sent: list[object]) -> list[messages.Request]:
    out = [m for m in sent if type(m) is messages.Request]
    sent.clear()
    return out


async def _pair(count: int) -> tuple[Feed, Feed, FeedPeer, list[object]]:
    src = await Feed.open(None)
    await src.append([i.to_bytes(4, "big") * 8 for i in range(count)])
    copy = await Feed.open(None, key=src.key)
    sent: list[object] = []
    peer = FeedPeer(replicator_of(copy), sent.append, max_requests=64)
    peer.on_open()
    peer.on_message(messages.Have(start=0, length=count))
    return src, copy, peer, sent


@pytest.mark.parametrize("order", ["in order", "shuffled"])
async def test_answers_in_any_order_verify_with_about_one_node_a_block(order):
    """512 blocks, 64 requests in flight, the answers delivered in order or shuffled: every block is
    stored, and the proofs carry about one node a block (a digest of stored nodes only asked for
    the whole path each time: 5 to 6 a block here)."""
    count = 512
    src, copy, peer, sent = await _pair(count)
    rnd = random.Random(7)
    remote_tree = TreeIndex()  # the uploader's record of what we said we have, as JS keeps it
    nodes = 0
    async with replicator_of(copy).want(0, count):
        pending: list[messages.Data] = []
        while not copy.downloaded() == count:
            pending += [_data(src, r, remote_tree) for r in _requests(sent)]
            assert pending, "no request and no answer in flight"
            if order == "shuffled":
                rnd.shuffle(pending)
            batch, pending = pending[:16], pending[16:]
            for d in batch:
                nodes += len(d.nodes)
                peer.on_message(d)
                assert peer.requests.parked_bytes <= peer.requests.MAX_PARKED_BYTES
    assert all(copy.has(i) for i in range(count))
    # every block where it belongs (the feed's offset hint follows block after block; shuffled
    # reads take the slow path)
    shuffled = list(range(count))
    rnd.shuffle(shuffled)
    for i in list(range(count)) + shuffled:
        assert copy.read_block_sync(i) == src.read_block_sync(i)
    assert nodes / count < 2.0, nodes / count
    assert not peer.inflight and not peer.requests.parked and not peer.requests.expected


async def _first_block(src: Feed, copy: Feed, peer: FeedPeer, sent: list[object]) -> None:
    """Block 0 with its proof: the copy then holds the root of the 8 blocks."""
    async with replicator_of(copy).want(0, 1):
        [request] = _requests(sent)
        peer.on_message(_data(src, request, TreeIndex()))
    assert copy.has(0)


async def test_an_answer_waiting_for_a_dropped_request_is_asked_for_again():
    """Block 5's digest counts on block 4's answer bringing its leaf; block 4 is never answered (the
    uploader says it lost it): block 5's answer stays parked, not stored, until that Unhave; then it
    is asked for again with a digest of stored nodes only, and that answer verifies."""
    src, copy, peer, sent = await _pair(8)
    await _first_block(src, copy, peer, sent)
    remote_tree = TreeIndex()
    async with replicator_of(copy).want(4, 6):
        first = _requests(sent)
        assert [r.index for r in first] == [4, 5]
        assert first[1].nodes == 1  # "I have your leaf": it is on its way in block 4's answer
        five = _data(src, first[1], remote_tree)
        assert not five.nodes
        peer.on_message(five)
        assert not copy.has(5) and 5 in peer.requests.parked  # unverified: held, not stored
        peer.on_message(messages.Unhave(start=4))
        again = _requests(sent)
        assert [r.index for r in again] == [5] and again[0].nodes != 1
        peer.on_message(_data(src, again[0], TreeIndex()))
        assert copy.has(5) and not copy.has(4)
        assert not peer.requests.parked and not peer.requests.expected


async def test_a_plain_digest_answered_without_its_nodes_is_refused():
    """After the fallback, an uploader that again leaves out the nodes is lying: VerificationError,
    nothing stored."""
    src, copy, peer, sent = await _pair(8)
    await _first_block(src, copy, peer, sent)
    async with replicator_of(copy).want(4, 6):
        first = _requests(sent)
        short = _data(src, first[1], TreeIndex())
        assert not short.nodes
        peer.on_message(short)
        peer.on_message(messages.Unhave(start=4))
        again = _requests(sent)
        assert [r.index for r in again] == [5]
        with pytest.raises(VerificationError):
            peer.on_message(short)
        assert not copy.has(5)


async def test_a_slow_uploader_that_keeps_answering_does_not_time_out():
    """The request timeout counts from the last answer (as JS refreshes its timer), not from the
    oldest request: an uploader answering one block every 15 s keeps the connection although its
    last requests wait minutes in its queue; 21 s of silence with requests in flight ends it."""
    now = [0.0]
    src = await Feed.open(None)
    await src.append([b"block %d" % i for i in range(64)])
    copy = await Feed.open(None, key=src.key)
    sent: list[object] = []
    peer = FeedPeer(replicator_of(copy), sent.append, max_requests=16, request_timeout=20.0,
                    clock=lambda: now[0])
    peer.on_open()
    peer.on_message(messages.Have(start=0, length=64))
    remote_tree = TreeIndex()
    async with replicator_of(copy).want(0, 64):
        queue = _requests(sent)
        for _ in range(8):
            now[0] += 15.0
            peer.check_timeouts()
            peer.on_message(_data(src, queue.pop(0), remote_tree))
            queue += _requests(sent)
        assert now[0] - min(peer.inflight.values()) > 20.0  # the oldest request waited 2 minutes
        peer.check_timeouts()
        now[0] += 21.0
        with pytest.raises(ReplicationError, match="timed out"):
            peer.check_timeouts()
