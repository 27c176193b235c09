"""What discovery finds, and how it hands it over: :class:`PeerFound`, and :class:`DroppingChannel`, the
bounded receive channel that peers found (and a DHT query's answers) come through.

Discovery learns things from datagrams (a DHT answer, a multicast-DNS response) that arrive whether or
not anyone reads them, so its producers cannot wait for a slow consumer: they :meth:`~DroppingChannel.put`
without blocking, and the channel bounds what waits. At most ``maxsize`` items wait; an item whose
``key`` equals a waiting item's takes that item's place instead of queueing twice (a peer found again
before the consumer got to it); past ``maxsize`` the oldest waiting item is dropped and counted in
:attr:`~DroppingChannel.dropped`. Peers found are hints that the next lookup repeats, so losing the
oldest of a burst nobody reads is harmless, and memory stays bounded whatever the consumer does.

The consumer side is a :class:`trio.abc.ReceiveChannel`: ``async for item in channel`` until the
producer ends it (:meth:`~DroppingChannel.end`: the object that made it closed; the items still
waiting are received first), ``async with channel`` / :meth:`~DroppingChannel.aclose` to stop listening.
:class:`Broadcast` gives each listener a channel of its own (``swarm.peers()``): a listener that stops
reading fills only its own, and one that is dropped without being closed is forgotten with it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from itertools import count
from typing import Generic, TypeVar
from weakref import WeakSet

import trio

__all__ = ["Broadcast", "DroppingChannel", "PeerFound"]

Address = tuple[str, int]
T = TypeVar("T")


@dataclass(frozen=True)
class PeerFound:
    """A peer found for a topic: connect to ``host:port`` over TCP."""

    host: str
    port: int
    topic: bytes = field(repr=False)
    local: bool = False  # found on the local network (mDNS)
    referrer: Address | None = None  # the DHT node that told us

    @property
    def key(self) -> tuple[str, int, bytes]:
        """The same peer for the same topic has the same key (a waiting one is not queued twice)."""
        return (self.host, self.port, self.topic)


class DroppingChannel(trio.abc.ReceiveChannel[T], Generic[T]):
    """A receive channel whose producer never waits: at most ``maxsize`` items wait, one per ``key``
    (without ``key``: every item is distinct), the oldest dropped beyond that (see the module's
    docstring). Several tasks may receive from it at once; each item goes to one of them."""

    def __init__(self, maxsize: int, key: Callable[[T], Hashable] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.dropped = 0  # items dropped because the channel was full
        self._key = key
        self._serial = count()
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lot = trio.lowlevel.ParkingLot()
        self._ended = False
        self._closed = False

    def __len__(self) -> int:
        """How many items wait."""
        return len(self._items)

    # -- the producer's side -----------------------------------------------------------------------

    def put(self, item: T) -> None:
        """Hand ``item`` over, never waiting (ignored once the channel is closed or ended)."""
        if self._closed or self._ended:
            return
        key = self._key(item) if self._key is not None else next(self._serial)
        if key not in self._items and len(self._items) >= self.maxsize:
            self._items.popitem(last=False)
            self.dropped += 1
        self._items[key] = item  # a waiting item of the same key keeps its place, with the newer value
        self._lot.unpark()

    def end(self) -> None:
        """No more items: receivers get what still waits, then :class:`trio.EndOfChannel`."""
        self._ended = True
        self._lot.unpark_all()

    @property
    def ended(self) -> bool:
        return self._ended

    # -- the consumer's side -----------------------------------------------------------------------

    def receive_nowait(self) -> T:
        """The oldest waiting item; :class:`trio.WouldBlock` if none waits (and the channel has not
        ended)."""
        if self._closed:
            raise trio.ClosedResourceError("this channel was closed")
        if self._items:
            return self._items.popitem(last=False)[1]
        if self._ended:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    async def receive(self) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            try:
                item = self.receive_nowait()
            except trio.WouldBlock:
                await self._lot.park()
                continue
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item

    def close(self) -> None:
        """Stop listening: waiting items are discarded, later ones ignored, receivers woken with
        :class:`trio.ClosedResourceError`."""
        self._closed = True
        self._items.clear()
        self._lot.unpark_all()

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()


class Broadcast(Generic[T]):
    """Every item put, to every listener's own :class:`DroppingChannel`. Listeners are held weakly: a
    channel nobody holds any more is forgotten. :meth:`end` ends every channel (the producer closed);
    a channel asked for after that is ended at once, until :meth:`restart` (the producer reopened)."""

    def __init__(self, key: Callable[[T], Hashable] | None = None) -> None:
        self._key = key
        self._channels: WeakSet[DroppingChannel[T]] = WeakSet()
        self._ended = False

    def listen(self, maxsize: int) -> DroppingChannel[T]:
        channel = DroppingChannel(maxsize, self._key)
        if self._ended:
            channel.end()
        else:
            self._channels.add(channel)
        return channel

    def put(self, item: T) -> None:
        for channel in list(self._channels):
            if channel.closed:
                self._channels.discard(channel)
            else:
                channel.put(item)

    def end(self) -> None:
        self._ended = True
        channels, self._channels = list(self._channels), WeakSet()
        for channel in channels:
            channel.end()

    def restart(self) -> None:
        self._ended = False
