"""The Feed as a pure log and its Replicator (hypernode.replication.replicator): local-only reads on the
feed, the synchronous listener hook, one replicator per open feed (gone when it closes), wants held by
``async with``, waits that end when the feed closes, and extension messages as an async iterator."""

from __future__ import annotations

import gc
import weakref

import pytest
import trio
import trio.testing

from hypernode import crypto
from hypernode.corestore import Corestore
from hypernode.errors import BlockNotAvailableError, HypernodeError
from hypernode.feed import Feed
from hypernode.replication import FeedPeer, Replicator, replicator_of
from hypernode.replication import extensions as extensions_module
from hypernode.replication import replicator as replicator_module
from hypernode.replication.server import open_replication_server
from hypernode.wire import messages


class Recorder:
    """A FeedListener that writes down what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def blocks_appended(self, start: int, count: int) -> None:
        self.calls.append(("appended", start, count))

    def block_stored(self, index: int) -> None:
        self.calls.append(("stored", index))

    def blocks_cleared(self, start: int, end: int) -> None:
        self.calls.append(("cleared", start, end))

    def feed_closed(self) -> None:
        self.calls.append(("closed",))


async def test_the_feed_reads_local_blocks_only():
    src = await Feed.open(None)
    await src.append([b"a" * 10, b"b" * 20, b"c" * 30] + [b"d"] * 5)
    copy = await Feed.open(None, key=src.key)
    await copy.put(1, b"b" * 20, src.proof(1))
    assert await copy.get(1) == b"b" * 20
    with pytest.raises(BlockNotAvailableError):
        await copy.get(0)
    assert copy.block_size(1) == 20
    with pytest.raises(BlockNotAvailableError):
        copy.block_size(2)  # no leaf for it here
    assert await src.seek(0, 3, 35) == (2, 5) and await src.seek(0, 3, 60) == (3, 0)
    with pytest.raises(BlockNotAvailableError):
        await copy.seek(1, 3, 25)  # block 2's size is not known here
    for name in ("downloads", "extensions", "peers", "register_extension", "update", "download"):
        assert not hasattr(copy, name), name


async def test_listeners_hear_appends_stored_blocks_clears_and_the_close():
    src = await Feed.open(None)
    copy = await Feed.open(None, key=src.key)
    heard, copied = Recorder(), Recorder()
    src.add_listener(heard)
    copy.add_listener(copied)
    await src.append([b"x", b"y", b"z"])
    await src.append(b"w")
    await copy.put(2, b"z", src.proof(2))
    await copy.put(2, b"z", src.proof(2))  # stored already: nothing new
    await src.clear(1, 3)
    await src.clear(1, 3)  # nothing left to clear
    await src.close()
    await copy.close()
    assert heard.calls == [("appended", 0, 3), ("appended", 3, 1), ("cleared", 1, 3), ("closed",)]
    assert copied.calls == [("stored", 2), ("closed",)]
    with pytest.raises(HypernodeError):
        src.add_listener(Recorder())  # a closed feed takes none


async def test_one_replicator_per_open_feed_gone_when_it_closes():
    feed = await Feed.open(None)
    rep = replicator_of(feed)
    assert replicator_of(feed) is rep and isinstance(rep, Replicator)
    assert feed in replicator_module._replicators
    await feed.close()
    assert feed not in replicator_module._replicators  # no entry kept for a closed feed
    with pytest.raises(HypernodeError, match="closed"):
        replicator_of(feed)


async def test_a_feed_dropped_without_closing_takes_its_replicator_along():
    feed = await Feed.open(None)
    rep = weakref.ref(replicator_of(feed))
    del feed
    gc.collect()
    assert rep() is None
    assert len(replicator_module._replicators) == len(list(replicator_module._replicators.keys()))


async def test_wants_are_held_by_async_with_and_let_go_on_error():
    feed = await Feed.open(None, key=crypto.key_pair().public_key)
    rep = replicator_of(feed)
    with pytest.raises(RuntimeError):
        async with rep.want(0, 10) as want:
            assert rep.wants.ranges and rep.wants.ranges[0].start == 0 and not want.done()
            async with rep.want_update():
                assert rep.wants.updates == 1
            assert rep.wants.updates == 0
            raise RuntimeError("the body failed")
    assert rep.wants.ranges == []
    want = rep.want(5, 6)
    want.close()
    want.close()  # idempotent
    assert rep.wants.ranges == []
    await feed.close()


async def test_waits_end_when_the_feed_closes():
    feed = await Feed.open(None, key=crypto.key_pair().public_key)
    rep = replicator_of(feed)
    failures: list[BaseException] = []

    async def wait(call) -> None:
        try:
            await call()
        except HypernodeError as e:
            failures.append(e)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait, lambda: rep.get(3))
            nursery.start_soon(wait, lambda: rep.update(1))
            nursery.start_soon(wait, lambda: rep.download(0, 1))
            nursery.start_soon(wait, rep.wait_for_peer)
            await trio.testing.wait_all_tasks_blocked()
            assert rep.wants.waiting == {3: 1} and rep.wants.updates == 1
            await feed.close()
    assert len(failures) == 4 and all("closed" in str(e) for e in failures)


async def test_a_blocks_put_by_the_user_is_announced_to_the_peers_as_in_js():
    """hypercore 9 announces every block it stores (``_announce`` in ``_writeDone``), put or fetched;
    a block fetched from a peer is announced to the others only."""
    src = await Feed.open(None)
    await src.append([b"a", b"b"])
    copy = await Feed.open(None, key=src.key)
    sent_one: list[object] = []
    sent_two: list[object] = []
    one = FeedPeer(replicator_of(copy), sent_one.append)
    two = FeedPeer(replicator_of(copy), sent_two.append)
    for peer in (one, two):
        peer.on_open()
        peer.on_message(messages.Want(start=0, length=1024 * 1024))  # subscribed to our Haves
    sent_one.clear()
    sent_two.clear()
    await copy.put(0, b"a", src.proof(0))
    assert [(type(m).__name__, m.start) for m in sent_one] == [("Have", 0)]
    assert [(type(m).__name__, m.start) for m in sent_two] == [("Have", 0)]
    # block 1 from peer one: the Have goes to peer two only
    one.on_message(messages.Have(start=0, length=2))
    async with replicator_of(copy).want(1, 2):
        request = [m for m in sent_one if type(m).__name__ == "Request"]
        assert [m.index for m in request] == [1]
        proof = src.proof(1, digest=request[0].nodes)
        sent_one.clear()
        sent_two.clear()
        one.on_message(messages.Data(index=1, value=b"b", signature=proof.signature,
                                     nodes=[messages.Data.Node(index=n.index, hash=n.hash, size=n.size)
                                            for n in proof.nodes]))
    assert copy.has(1)
    assert not [m for m in sent_one if type(m).__name__ == "Have"]
    assert [(type(m).__name__, m.start) for m in sent_two] == [("Have", 1)]
    assert one.stats.downloaded_blocks == 1 and one.stats.downloaded_bytes == 1


async def test_extension_messages_as_an_async_iterator():
    async with Corestore() as a, open_replication_server(a) as a_net, Corestore() as b, \
            open_replication_server(b) as b_net:
        feed = await a.get()
        await feed.append(b"x")
        port = await a_net.listen("127.0.0.1", 0)
        copy = await b.get(feed.key)
        sender = replicator_of(feed).register_extension("chat", "json")
        inbox = replicator_of(copy).register_extension("chat", "json")
        heard: list[object] = []
        other = replicator_of(copy).register_extension("other", "utf-8",
                                                       lambda message, peer: heard.append(message))
        await b_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            await replicator_of(copy).get(0)
            peers = replicator_of(feed).peers
            while not peers or peers[0].channel.remote_extensions is None:
                await trio.sleep(0.01)
                peers = replicator_of(feed).peers
            for n in range(3):
                sender.broadcast({"n": n})
            got = []
            async for message, peer in inbox:
                assert peer is replicator_of(copy).peers[0]
                got.append(message)
                if len(got) == 3:
                    break
            assert got == [{"n": 0}, {"n": 1}, {"n": 2}]
            marker = replicator_of(feed).register_extension("other", "utf-8")
            marker.send("to the callback", peers[0])
            while not heard:
                await trio.sleep(0.01)
            assert heard == ["to the callback"]

            # a reader that falls behind keeps the oldest MAX_QUEUED messages, never more
            for n in range(extensions_module.MAX_QUEUED + 50):
                sender.broadcast({"n": n})
            marker.send("after them", peers[0])  # one channel: it arrives after every one of them
            while len(heard) < 2:
                await trio.sleep(0.01)
            other.destroy()
        await copy.close()  # the iteration ends with the feed
        rest = [message async for message, _ in inbox]
        assert rest == [{"n": n} for n in range(extensions_module.MAX_QUEUED)]


async def test_seek_fetches_the_blocks_whose_sizes_are_not_known():
    async with Corestore() as a, open_replication_server(a) as a_net, Corestore() as b, \
            open_replication_server(b, sparse=True) as b_net:
        feed = await a.get()
        await feed.append([b"a" * 10, b"b" * 20, b"c" * 30, b"d" * 40])
        port = await a_net.listen("127.0.0.1", 0)
        copy = await b.get(feed.key)
        await b_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            assert await replicator_of(copy).seek(0, 4, 35) == (2, 5)
            assert await replicator_of(copy).seek(1, 4, 95) == (4, 0)
        assert await copy.seek(0, 4, 35) == (2, 5)  # the sizes are known here now


async def test_full_mode_fetches_every_block_unasked_and_sparse_mode_nothing():
    """``Corestore(sparse=False)`` (the default): its sessions make every replicated feed that is not
    writable want everything, live; a sparse store fetches only what is asked for."""
    async with Corestore() as a, open_replication_server(a) as a_net, Corestore() as full, \
            open_replication_server(full) as full_net, Corestore() as sparse, \
            open_replication_server(sparse, sparse=True) as sparse_net:
        feed = await a.get()
        await feed.append([b"%d" % i for i in range(100)])
        port = await a_net.listen("127.0.0.1", 0)
        full_copy = await full.get(feed.key)
        sparse_copy = await sparse.get(feed.key)
        await full_net.connect("127.0.0.1", port)
        await sparse_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            while full_copy.downloaded() < 100:
                await full_copy.wait_for_change()
            await feed.append(b"live")
            while full_copy.downloaded() < 101:
                await full_copy.wait_for_change()
            await replicator_of(sparse_copy).wait_for_peer()
        assert sparse_copy.downloaded() == 0
        assert len(replicator_of(full_copy).wants.ranges) == 1  # once, however many sessions
        assert replicator_of(feed).wants.ranges == []  # a writable feed wants nothing


async def test_the_store_announces_feeds_and_the_server_offers_them_on_live_connections():
    """Corestore announces the feeds it opens and the ones that close (StoreListener); the replication
    server offers a feed opened after the connection was made on it, and a feed that closes leaves
    every connection (its channel closes, the remote's peer goes)."""

    class Heard:
        def __init__(self) -> None:
            self.events: list[tuple[str, bytes]] = []

        def feed_opened(self, feed: Feed) -> None:
            self.events.append(("opened", feed.key))

        def feed_closed(self, feed: Feed) -> None:
            self.events.append(("closed", feed.key))

    async with Corestore() as a, Corestore() as b, open_replication_server(a) as net_a, \
            open_replication_server(b, sparse=True) as net_b:
        heard = Heard()
        a.add_listener(heard)
        port = await net_a.listen("127.0.0.1", 0)
        session = await net_b.connect("127.0.0.1", port)
        assert session.initiator and not session.closed and net_b.sessions == [session]
        feed = await a.get()  # opened after the connection was made
        await feed.append(b"late")
        copy = await b.get(feed.key)
        with trio.fail_after(10):
            assert await replicator_of(copy).get(0) == b"late"
        await feed.close()
        assert heard.events == [("opened", feed.key), ("closed", feed.key)]
        with trio.fail_after(10):
            while replicator_of(copy).peers:  # the remote closed the channel of the feed it closed
                await trio.sleep(0.01)
        assert not session.closed  # the connection carries on
