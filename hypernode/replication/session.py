"""One connection replicating every feed two stores share: the glue between the wire and the feeds.

A :class:`ReplicationSession` consumes the events of a :class:`~hypernode.wire.stream.ProtocolStream`:
it opens a channel for every feed its :class:`FeedSource` has open (and for each feed the source opens
later: the source's announcements reach it through :meth:`ReplicationSession.feed_opened`), answers a
remote Open for a feed stored there by opening that feed, closes channels for feeds it does not have
(as corestore 5 does), and gives each opened channel a :class:`~hypernode.replication.peer.FeedPeer` on
the feed's :class:`~hypernode.replication.replicator.Replicator`. In full mode (``sparse=False``) it
makes the replicator of every feed it replicates that is not writable want every block.

:meth:`ReplicationSession.run` returns when the connection ends cleanly and raises why it ended
otherwise: a peer that sends a block that does not verify
(:class:`~hypernode.errors.VerificationError`) or breaks the replication protocol
(:class:`~hypernode.replication.peer.ReplicationError`), or our side failing (a full disk). The
server of the connection (:mod:`hypernode.replication.server`) logs it; the store and the other
connections carry on.

The session never sees a :class:`~hypernode.corestore.Corestore` as such: it sees a
:class:`FeedSource`, a protocol the store satisfies, so that replication does not import the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import trio

from hypernode.errors import HypernodeError
from hypernode.protobuf import Message
from hypernode.replication.peer import FeedPeer
from hypernode.replication.replicator import replicator_of
from hypernode.tasks import open_service_nursery
from hypernode.wire import (
    ChannelClosed,
    ChannelOpened,
    Event,
    ExtensionReceived,
    MessageReceived,
    RemoteOpened,
    messages,
)
from hypernode.wire.connection import Channel
from hypernode.wire.stream import ProtocolStream

if TYPE_CHECKING:
    from hypernode.feed import Feed

log = logging.getLogger(__name__)
OUTPUT_LIMIT = 1024 * 1024  # bytes of uploads queued on one connection before requests wait


class FeedsListener(Protocol):
    """What a :class:`FeedSource` tells its listeners, synchronously, as it happens (inside the
    source's call: a listener does no I/O and must not raise)."""

    def feed_opened(self, feed: Feed) -> None: ...

    def feed_closed(self, feed: Feed) -> None: ...


class FeedSource(Protocol):
    """The feeds a session replicates, as the session sees them (a
    :class:`~hypernode.corestore.Corestore` is one): the open feeds, a feed by discovery key, whether one
    is stored, opening one that is stored, and announcements of feeds opened and closed."""

    @property
    def feeds(self) -> Sequence[Feed]: ...

    def feed_by_discovery_key(self, discovery_key: bytes) -> Feed | None: ...

    def exists(self, discovery_key: bytes) -> bool: ...

    async def get(self, key: bytes | None = None, *, discovery_key: bytes | None = None) -> Feed: ...

    def add_listener(self, listener: FeedsListener) -> None: ...

    def remove_listener(self, listener: FeedsListener) -> None: ...


class ReplicationSession:
    """One connection (a :class:`~hypernode.wire.stream.ProtocolStream`) replicating the feeds of a
    :class:`FeedSource` that the remote shares. Made and run by
    :class:`~hypernode.replication.server.ReplicationServer`."""

    def __init__(self, feeds: FeedSource, stream: ProtocolStream, *, sparse: bool = False,
                 max_requests: int = 256) -> None:
        self.feeds = feeds
        self.stream = stream
        self.sparse = sparse  # False: every feed replicated that is not writable is wanted whole
        self.max_requests = max_requests
        self.peers: dict[bytes, FeedPeer] = {}
        self._uploads_waiting = trio.Event()

    @property
    def remote_public_key(self) -> bytes | None:
        """The remote's Noise static key (None until the handshake is done)."""
        return self.stream.remote_public_key

    @property
    def initiator(self) -> bool:
        """Did we open this connection?"""
        return self.stream.conn.initiator

    @property
    def closed(self) -> bool:
        return self.stream.closed

    def feed_opened(self, feed: Feed) -> None:
        """The store opened a feed: offer it on this connection too."""
        if self.stream.closed:
            return
        ch = self.stream.conn.channel(feed.discovery_key)
        if ch is not None and ch.opened:
            return
        _, events = self.stream.open_channel(feed.key)
        for ev in events:
            self._handle_sync(ev)

    async def run(self) -> None:
        """Replicate until the connection ends: returns when it ends cleanly, raises why it ended
        otherwise (the stream's failure comes out of the stream's ``async with``, which runs this)."""
        await self.stream.wait_handshake()
        for feed in self.feeds.feeds:
            self.feed_opened(feed)
        try:
            async with open_service_nursery() as nursery:
                nursery.start_soon(self._watch_timeouts)
                nursery.start_soon(self._serve_deferred)
                async for batch in self.stream.batches():
                    if any(isinstance(ev, RemoteOpened) for ev in batch):  # opening a feed may wait
                        for ev in batch:
                            if isinstance(ev, RemoteOpened):
                                await self._on_remote_open(ev.channel)
                            else:
                                self._handle_sync(ev)
                        with self.stream.held():
                            self._update_peers()
                        continue
                    with self.stream.held():  # the replies to one batch leave in one write
                        for ev in batch:
                            self._handle_sync(ev)
                        self._update_peers()
        finally:
            for peer in list(self.peers.values()):
                peer.on_close()
            self.peers.clear()

    def _update_peers(self) -> None:
        """After a batch: new requests, the bitfield written, deferred uploads woken."""
        for peer in self.peers.values():
            peer.update()
            peer.feed.flush()
            if peer.deferred:
                self._uploads_waiting.set()

    async def _on_remote_open(self, ch: Channel) -> None:
        dk = ch.discovery_key
        feed = self.feeds.feed_by_discovery_key(dk)
        if feed is None and self.feeds.exists(dk):
            try:
                feed = await self.feeds.get(discovery_key=dk)  # offers it to every session
            except (HypernodeError, OSError) as e:
                log.warning("cannot open feed %s: %s", dk.hex(), e)
                feed = None
        if feed is None:
            self.stream.close_channel(dk)
            return
        self.feed_opened(feed)

    def _handle_sync(self, ev: Event) -> None:
        if isinstance(ev, ChannelOpened):
            self._on_channel_opened(ev.channel)
        elif isinstance(ev, MessageReceived):
            peer = self.peers.get(ev.channel.discovery_key)
            if peer is not None:
                if type(ev.message) is messages.Options:
                    return
                peer.on_message(ev.message)
        elif isinstance(ev, ExtensionReceived):
            if ev.channel is not None:
                peer = self.peers.get(ev.channel.discovery_key)
                if peer is not None:
                    peer.on_extension(ev.channel.remote_extensions, ev.extension_id, ev.payload)
        elif isinstance(ev, ChannelClosed):
            peer = self.peers.pop(ev.channel.discovery_key, None)
            if peer is not None:
                peer.on_close()

    def _on_channel_opened(self, ch: Channel) -> None:
        feed = self.feeds.feed_by_discovery_key(ch.discovery_key)
        if feed is None:
            self.stream.close_channel(ch.discovery_key)
            return
        stream = self.stream
        replicator = replicator_of(feed)
        if not self.sparse and not feed.writable:
            replicator.want_all()

        def send(message: Message, ch: Channel = ch) -> None:
            stream.send(ch, message)

        def send_extension(extension_id: int, payload: bytes, ch: Channel = ch) -> None:
            stream.send_extension(ch, extension_id, payload)

        def output_room() -> int:
            return OUTPUT_LIMIT - stream.pending_output

        peer = FeedPeer(replicator, send, max_requests=self.max_requests,
                        remote_public_key=stream.remote_public_key, channel=ch,
                        send_extension=send_extension, output_room=output_room,
                        auto_update=False)  # run() calls update() after each batch
        ch.context = peer
        self.peers[ch.discovery_key] = peer
        names = replicator.extensions.names()
        if names:
            stream.send(ch, messages.Options(extensions=names))
        peer.on_open()

    async def _serve_deferred(self) -> None:
        """Requests that found the output full are answered as it drains, so that a connection never
        holds more than about OUTPUT_LIMIT bytes of uploads (many peers asking for big blocks at once
        would otherwise pile hundreds of megabytes into our send buffers)."""
        while True:
            await self._uploads_waiting.wait()
            self._uploads_waiting = trio.Event()
            while True:
                # a closed peer never serves its queue, and drain() returns at once on a closed stream
                # or an empty output: without these checks this loop spun without a checkpoint, so
                # that not even the cancellation of a closing connection could stop it
                waiting = [p for p in self.peers.values() if p.deferred and not p.closed]
                if not waiting or self.stream.closed:
                    break
                await self.stream.drain()
                await trio.lowlevel.checkpoint()
                for peer in waiting:
                    peer.serve_deferred()

    async def _watch_timeouts(self) -> None:
        while True:
            await trio.sleep(1)
            for peer in list(self.peers.values()):
                peer.check_timeouts()  # a ReplicationError ends the connection

    def feed_closed(self, feed: Feed) -> None:
        """The source closed a feed: its channel on this connection closes (its peer ends)."""
        if self.stream.closed:
            return
        for ev in self.stream.close_channel(feed.discovery_key):
            self._handle_sync(ev)

    async def aclose(self) -> None:
        """Close the connection (a clean end: :meth:`run` returns)."""
        await self.stream.aclose()
