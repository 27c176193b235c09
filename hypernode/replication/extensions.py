"""Extension messages on one feed's channels (hypercore's ``registerExtension``).

A :class:`FeedExtension` is registered on a feed's :class:`~hypernode.replication.replicator.Replicator`
by name, with an encoding (``binary``, ``utf-8``, ``json``: :mod:`hypernode.wire.extensions` keeps the
names, ids and payload encodings). Messages received are read as an async iterator, ``async for
message, peer in extension:``, or, where JS parity asks for it (hyperdrive's ``registerExtension`` takes
an ``onmessage``), handed to an ``on_message(message, peer)`` callback given at registration instead.
The iterator form buffers at most :data:`MAX_QUEUED` messages: a reader that falls behind loses the
newest, as a peer sending faster than we read must not grow our memory (JS has no backpressure on
extension messages either). The iteration ends when the extension is destroyed or its feed closes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from hypernode.wire.extensions import Extension, Extensions

if TYPE_CHECKING:
    from hypernode.replication.peer import FeedPeer

log = logging.getLogger(__name__)
MAX_QUEUED = 256  # messages an extension read as an async iterator keeps for its reader

OnMessage = Callable[[Any, "FeedPeer"], None]


class FeedExtension:
    """One registered extension: ``send(message, peer)``, ``broadcast(message)``, and the messages
    received, ``async for message, peer in extension`` (unless an ``on_message`` callback takes them)."""

    def __init__(self, registry: FeedExtensions, name: str, encoding: str, on_message: OnMessage | None
                 ) -> None:
        self._registry = registry
        self.on_message = on_message
        send, receive = trio.open_memory_channel[tuple[Any, "FeedPeer"]](MAX_QUEUED)
        self._inbox, self._outbox = send, receive
        self._wire: Extension = registry._wire.register(name, encoding, self._received)

    @property
    def name(self) -> str:
        return self._wire.name

    @property
    def encoding(self) -> str:
        return self._wire.encoding

    def send(self, message: Any, peer: FeedPeer) -> None:
        """Send ``message`` to one peer of the feed."""
        self._wire.send(message, peer)

    def broadcast(self, message: Any) -> None:
        """Send ``message`` to every peer of the feed."""
        self._wire.broadcast(message)

    def destroy(self) -> None:
        """Unregister: no more messages are received (the iteration ends) or sent."""
        self._wire.destroy()
        self._registry._removed(self)
        self._inbox.close()

    def _received(self, message: Any, peer: FeedPeer) -> None:
        if self.on_message is not None:
            self.on_message(message, peer)
            return
        try:
            self._inbox.send_nowait((message, peer))
        except trio.WouldBlock:
            log.debug("extension %s: reader behind, a message dropped", self.name)
        except trio.ClosedResourceError:
            pass

    def __aiter__(self) -> FeedExtension:
        return self

    async def __anext__(self) -> tuple[Any, FeedPeer]:
        try:
            return await self._outbox.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        return f"<FeedExtension {self.name!r} {self.encoding}>"


class FeedExtensions:
    """The extensions of one feed. ``peers()`` lists the peers a broadcast goes to; ``on_change()``
    runs when the set of names changes (the replicator then sends new Options to every peer)."""

    def __init__(self, peers: Callable[[], list[FeedPeer]], on_change: Callable[[], None]) -> None:
        self._wire = Extensions(sender=_send, peers=peers, on_change=on_change)
        self._by_name: dict[str, FeedExtension] = {}

    def register(self, name: str, encoding: str = "binary", on_message: OnMessage | None = None
                 ) -> FeedExtension:
        ext = FeedExtension(self, name, encoding, on_message)
        self._by_name[name] = ext
        return ext

    def _removed(self, ext: FeedExtension) -> None:
        if self._by_name.get(ext.name) is ext:
            del self._by_name[ext.name]

    def names(self) -> list[str]:
        return self._wire.names()

    def __len__(self) -> int:
        return len(self._wire)

    def dispatch(self, remote_names: list[str] | None, extension_id: int, payload: bytes,
                 peer: FeedPeer) -> None:
        """Deliver a message received from ``peer`` under the remote's ``extension_id``."""
        self._wire.dispatch(remote_names, extension_id, payload, peer)

    def close(self) -> None:
        """The feed closed: every extension's iteration ends."""
        for ext in self._by_name.values():
            ext._inbox.close()


def _send(ext: Extension, peer: Any, payload: bytes) -> None:
    peer.send_extension(ext.id, payload)
