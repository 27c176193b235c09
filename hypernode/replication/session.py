"""One connection replicating every feed two stores share: the glue between the wire and the feeds.

A :class:`ReplicationSession` consumes the events of a :class:`~hypernode.wire.stream.ProtocolStream`:
it opens a channel for every feed its :class:`~hypernode.corestore.Corestore` has open (and for each
feed the store opens later), answers a remote Open for a feed stored here by opening that feed, closes
channels for feeds it does not have (as corestore 5 does), and gives each opened channel a
:class:`~hypernode.replication.peer.FeedPeer` on the feed's
:class:`~hypernode.replication.replicator.Replicator`. In full mode (a store that is not ``sparse``)
it makes the replicator of every feed it replicates that is not writable want every block. A peer that
sends a block that does not verify, or breaks the replication protocol, ends the connection; the store
and its other connections carry on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from hypernode.errors import HypernodeError, VerificationError
from hypernode.protobuf import Message
from hypernode.replication.peer import FeedPeer, ReplicationError
from hypernode.replication.replicator import replicator_of
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
    from hypernode.corestore import Corestore
    from hypernode.feed import Feed

log = logging.getLogger(__name__)
OUTPUT_LIMIT = 1024 * 1024  # bytes of uploads queued on one connection before requests wait


class ReplicationSession:
    def __init__(self, store: Corestore, stream: ProtocolStream, *, max_requests: int = 256) -> None:
        self.store = store
        self.stream = stream
        self.max_requests = max_requests
        self.peers: dict[bytes, FeedPeer] = {}
        self.error: BaseException | None = None
        self._opening: set[bytes] = set()
        self._uploads_waiting = trio.Event()

    @property
    def remote_public_key(self) -> bytes | None:
        return self.stream.remote_public_key

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
        """Replicate until the connection ends; protocol errors end it, they are not raised."""
        try:
            await self.stream.wait_handshake()
        except HypernodeError as e:
            self.error = e
            return
        for feed in self.store.feeds:
            self.feed_opened(feed)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_timeouts)
            nursery.start_soon(self._serve_deferred)
            try:
                async for batch in self.stream.batches():
                    for ev in batch:
                        if isinstance(ev, RemoteOpened):
                            await self._on_remote_open(ev.channel)
                        else:
                            self._handle_sync(ev)
                    for peer in self.peers.values():
                        peer.update()
                        peer.feed.flush()
                        if peer.deferred:
                            self._uploads_waiting.set()
            except (VerificationError, ReplicationError) as e:
                self.error = e
                log.warning("dropping peer %s: %s", _hex(self.remote_public_key), e)
                await self.stream.aclose()
            except (HypernodeError, OSError) as e:
                # our side failed (a full disk, an unreadable file): this connection ends, the store
                # and its other connections carry on
                self.error = e
                log.error("connection to %s ends: %s", _hex(self.remote_public_key), e)
                await self.stream.aclose()
            except Exception as e:  # a bug met on one connection must not take the store down
                self.error = e
                log.exception("connection to %s ends on an internal error", _hex(self.remote_public_key))
                await self.stream.aclose()
            finally:
                for peer in list(self.peers.values()):
                    peer.on_close()
                self.peers.clear()
                nursery.cancel_scope.cancel()
                # the stream's failure cancels this task (it runs inside the stream's nursery): keep
                # the reason here, where the store logs it
                if self.error is None and self.stream.error is not None:
                    self.error = self.stream.error

    async def _on_remote_open(self, ch: Channel) -> None:
        dk = ch.discovery_key
        feed = self.store.feed_by_discovery_key(dk)
        if feed is None and self.store.exists(dk):
            try:
                feed = await self.store.get(discovery_key=dk)  # offers it to every session
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
        feed = self.store.feed_by_discovery_key(ch.discovery_key)
        if feed is None:
            self.stream.close_channel(ch.discovery_key)
            return
        stream = self.stream
        replicator = replicator_of(feed)
        if not self.store.sparse and not feed.writable:
            replicator.want_all()

        def send(message: Message, ch: Channel = ch) -> None:
            stream.send(ch, message)

        def send_extension(extension_id: int, payload: bytes, ch: Channel = ch) -> None:
            stream.send_extension(ch, extension_id, payload)

        def output_room() -> int:
            return OUTPUT_LIMIT - stream.conn.pending_output

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
            while any(p.deferred for p in self.peers.values()):
                await self.stream.drain()
                for peer in list(self.peers.values()):
                    peer.serve_deferred()

    async def _watch_timeouts(self) -> None:
        while True:
            await trio.sleep(1)
            for peer in list(self.peers.values()):
                try:
                    peer.check_timeouts()
                except ReplicationError as e:
                    self.error = e
                    await self.stream.aclose()
                    return

    async def aclose(self) -> None:
        await self.stream.aclose()


def _hex(b: bytes | None) -> str:
    return b.hex()[:16] if b else "?"
