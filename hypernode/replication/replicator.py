"""``Replicator``: everything about one feed that involves peers, one per open feed.

:func:`replicator_of` gives a feed's replicator (made on first use, gone when the feed closes). It
holds the feed's :class:`~hypernode.replication.wants.Wants`, its connected
:class:`~hypernode.replication.peer.FeedPeer` objects (one per channel, added by the replication
sessions), its extension messages (:mod:`hypernode.replication.extensions`), and the reads that wait for
peers: :meth:`Replicator.get`, :meth:`~Replicator.update`, :meth:`~Replicator.download`,
:meth:`~Replicator.seek` fetch what the feed lacks, and ``async with replicator.want(start, end):``
keeps blocks wanted for as long as the block runs.

It listens to its feed synchronously (a :class:`~hypernode.feed.FeedListener`: the feed's only
synchronous hook), so that an append is announced to the peers with a ``Have`` at once and a stored block
wakes the readers waiting for it; every other wait is a trio event (:meth:`Replicator.wait_for_change`).
"""

from __future__ import annotations

import contextlib
import weakref
from types import TracebackType
from typing import TYPE_CHECKING

import trio

from hypernode.errors import BlockNotAvailableError, HypernodeError, MissingTreeNode
from hypernode.feed import Feed
from hypernode.replication.extensions import FeedExtension, FeedExtensions, OnMessage
from hypernode.replication.wants import Range, Wants
from hypernode.storage import Node

if TYPE_CHECKING:
    from hypernode.replication.peer import FeedPeer

# feed -> a weak reference to its replicator. The feed keeps its replicator alive (it is one of its
# listeners) and the replicator its feed, so an entry holds neither: closing the feed drops the entry,
# and a feed dropped without being closed takes its replicator with it.
_replicators: weakref.WeakKeyDictionary[Feed, weakref.ref[Replicator]] = weakref.WeakKeyDictionary()


def replicator_of(feed: Feed) -> Replicator:
    """The :class:`Replicator` of ``feed`` (the same object for as long as the feed is open). A closed
    feed has none: :class:`~hypernode.errors.HypernodeError`."""
    ref = _replicators.get(feed)
    found = ref() if ref is not None else None
    if found is None:
        found = Replicator(feed)
        _replicators[feed] = weakref.ref(found)
    return found


class Want:
    """Blocks wanted from the peers while it is held: ``async with replicator.want(start, end):``
    (what :meth:`Replicator.want` and :meth:`Replicator.want_update` return). :meth:`close` lets go
    of it outside a block (idempotent)."""

    def __init__(self, replicator: Replicator, start: int, end: int | None, *, update: bool = False,
                 first: bool = False) -> None:
        self._replicator = replicator
        self._range: Range | None = None
        self._update = update
        wants = replicator.wants
        if update:
            wants.add_update()
        else:
            self._range = wants.add_range(start, end, first=first)
        self._open = True
        replicator._kick()

    @property
    def start(self) -> int:
        return self._range.start if self._range is not None else 0

    @property
    def end(self) -> int | None:
        return self._range.end if self._range is not None else None

    def done(self) -> bool:
        """Is every block of the range stored (up to the feed's length, for an open-ended range)?"""
        return self._range is not None and self._replicator.wants.range_done(self._range)

    @property
    def first_missing(self) -> int:
        """Every block of the range before this one is stored (as of the last :meth:`done`)."""
        return self._range.cursor if self._range is not None else 0

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        wants = self._replicator.wants
        if self._range is not None:
            wants.remove_range(self._range)
        if self._update:
            wants.remove_update()

    async def __aenter__(self) -> Want:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        what = "update" if self._update else f"{self.start}..{self.end}"
        return f"<Want {what}{'' if self._open else ' closed'}>"


class Replicator:
    """The peers, wants, extensions and waiting reads of one feed (get it with :func:`replicator_of`)."""

    def __init__(self, feed: Feed) -> None:
        feed.add_listener(self)  # raises on a closed feed
        self.feed = feed
        self.wants = Wants(feed)
        self._peers: list[FeedPeer] = []
        self._changed = trio.Event()
        self._source: FeedPeer | None = None  # the peer whose block is being stored
        self._full: Want | None = None
        self.extensions = FeedExtensions(peers=lambda: list(self._peers), on_change=self._extensions_changed)

    def __repr__(self) -> str:
        return f"<Replicator {self.feed.key.hex()[:16]} peers={len(self._peers)}>"

    # -- the public view ---------------------------------------------------------------------------

    @property
    def peers(self) -> list[FeedPeer]:
        """The remote peers this feed replicates with (one :class:`FeedPeer` per channel)."""
        return list(self._peers)

    @property
    def remote_length(self) -> int:
        """The longest length a connected peer has announced (0 with none)."""
        return max((p.remote_length for p in self._peers), default=0)

    async def wait_for_change(self) -> None:
        """Return after the next change: a block stored or appended, a peer added or gone, a peer
        telling what it has, the feed closing."""
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _check_open(self) -> None:
        if self.feed.closed:
            raise HypernodeError("the feed is closed")

    # -- reading through the peers -----------------------------------------------------------------

    async def get(self, index: int, *, timeout: float | None = None) -> bytes:
        """The bytes of block ``index``: local, or fetched from the connected peers (verified before
        it is stored). Waits until a peer sends it, for at most ``timeout`` seconds without it
        (:class:`trio.TooSlowError`), forever while ``timeout`` is None. A block no peer can have (a
        negative index, or past the end of a writable feed) raises :class:`BlockNotAvailableError`."""
        feed = self.feed
        if feed.has(index):
            return await feed.get(index)
        self._check_open()
        if index < 0 or (feed.writable and index >= feed.length):
            raise BlockNotAvailableError(f"block {index} is not stored locally (length {feed.length})")
        self.wants.add_block(index)
        try:
            self._kick()
            with _fail_after(timeout):
                while not feed.has(index):
                    self._check_open()
                    await self._changed.wait()
        finally:
            self.wants.remove_block(index)
        return await feed.get(index)

    async def update(self, min_length: int | None = None, *, timeout: float | None = None) -> int:
        """Wait until the feed is longer than now (or at least ``min_length``); returns the length."""
        feed = self.feed
        self._check_open()
        target = feed.length + 1 if min_length is None else min_length
        if feed.length >= target:
            return feed.length
        async with self.want_update():
            with _fail_after(timeout):
                while feed.length < target:
                    self._check_open()
                    await self._changed.wait()
        return feed.length

    async def download(self, start: int = 0, end: int | None = None, *,
                       timeout: float | None = None) -> None:
        """Fetch blocks ``[start, end)`` (``end`` defaults to the current length) and wait until all
        of them are stored locally, and on disk."""
        feed = self.feed
        self._check_open()
        end = feed.length if end is None else end
        if end <= start or feed.downloaded(start, end) == end - start:
            return
        async with self.want(start, end) as want:
            with _fail_after(timeout):
                while not want.done():
                    self._check_open()
                    await self._changed.wait()
        feed.flush()  # when download() returns, the range is on disk (bitfield included)

    async def seek(self, start: int, end: int, offset: int, *, timeout: float | None = None,
                   byte_offset: int | None = None, byte_length: int | None = None) -> tuple[int, int]:
        """The block of ``[start, end)`` holding byte ``offset`` (counted from the first byte of block
        ``start``) and the offset inside it, as :meth:`Feed.seek <hypernode.feed.Feed.seek>`, fetching
        what it needs (each fetch waits at most ``timeout`` seconds).

        With ``byte_offset``, the feed's byte offset of block ``start`` (a hyperdrive Stat's
        ``byteOffset``; JS's ``seek`` takes the same sum), the block is found from the tree's roots down
        (:meth:`Feed.find_byte <hypernode.feed.Feed.find_byte>`), fetching one block under each subtree
        whose nodes are not here (its proof brings them). With ``byte_length`` too (the bytes of
        ``[start, end)``, a file's size), the block the byte would be in were those blocks of even size
        is fetched first when its leaf is not here (a sparse replica may not even know the feed's
        length yet): a seek into a file of even blocks fetches the block it lands on and no other.
        Without ``byte_offset``, or when the walk cannot place the byte in ``[start, end)``, block sizes
        come from the leaves one by one from ``start`` (a block whose leaf is not here is fetched)."""
        feed = self.feed
        if byte_offset is not None and offset > 0:
            if byte_length and end > start:
                guess = start + min(end - start - 1, offset * (end - start) // byte_length)
                if not feed.has_leaf(guess):
                    await self.get(guess, timeout=timeout)
            fetched: set[int] = set()
            while True:
                try:
                    found = feed.find_byte(byte_offset + offset)
                except MissingTreeNode as missing:
                    if missing.block in fetched:  # its proof did not bring the node: scan instead
                        found = None
                    else:
                        fetched.add(missing.block)
                        await self.get(missing.block, timeout=timeout)
                        continue
                break
            if found is not None and start <= found[0] < end:
                return found
        for i in range(start, end):
            try:
                size = feed.block_size(i)
            except BlockNotAvailableError:
                size = len(await self.get(i, timeout=timeout))
            if offset < size:
                return i, offset
            offset -= size
        return end, 0

    # -- wanting -----------------------------------------------------------------------------------

    def want(self, start: int, end: int | None) -> Want:
        """Keep blocks ``[start, end)`` wanted from the peers (``end`` None: every block, live) while
        the returned :class:`Want` is held: ``async with replicator.want(0, 100):``."""
        self._check_open()
        return Want(self, start, end)

    def want_update(self) -> Want:
        """Ask the peers for the newest length while held: ``async with replicator.want_update():``."""
        self._check_open()
        return Want(self, 0, None, update=True)

    def want_all(self) -> None:
        """Want every block, now and later, for as long as the feed is open (full, non-sparse
        replication; the sessions of a replication server that is not sparse ask it of every feed
        they replicate that is not writable). Idempotent."""
        if self._full is None:
            self._check_open()
            self._full = Want(self, 0, None, first=True)  # ahead of the wants made before

    async def wait_for_peer(self, *, timeout: float | None = None) -> FeedPeer:
        """Wait until a peer has told us what it has (answered our first Wants); returns it.
        :class:`trio.TooSlowError` after ``timeout`` seconds without one."""
        with _fail_after(timeout):
            while True:
                self._check_open()
                for peer in self._peers:
                    if peer.answered:
                        return peer
                await self._changed.wait()

    def _kick(self) -> None:
        """Something more is wanted: every peer subscribes and requests what it can."""
        for p in list(self._peers):
            p.send_wants()
            p.update()

    # -- extensions --------------------------------------------------------------------------------

    def register_extension(self, name: str, encoding: str = "binary", on_message: OnMessage | None = None
                           ) -> FeedExtension:
        """An extension message on this feed's channels (hypercore's ``registerExtension``): the
        returned object's ``send(message, peer)`` and ``broadcast(message)`` send; the messages
        received are read with ``async for message, peer in extension``, or go to
        ``on_message(message, peer)`` if given."""
        self._check_open()
        return self.extensions.register(name, encoding, on_message)

    def _extensions_changed(self) -> None:
        names = self.extensions.names()
        for peer in self._peers:
            peer.send_options(names)

    # -- what the peers report (the PeerGroup interface of FeedPeer) -------------------------------

    def add_peer(self, peer: FeedPeer) -> None:
        if peer not in self._peers:
            self._peers.append(peer)
            self._notify()

    def remove_peer(self, peer: FeedPeer) -> None:
        if peer in self._peers:
            self._peers.remove(peer)
        self.wants.release_all(peer)
        for other in self._peers:
            other.update()
        self._notify()

    def remote_changed(self, peer: FeedPeer) -> None:
        self._notify()

    def release(self, peer: FeedPeer, indexes: list[int]) -> None:
        """``peer`` will not send these blocks after all: the peers may ask for them again."""
        self.wants.release(peer, indexes)
        for other in list(self._peers):
            other.update()

    def store_block(self, peer: FeedPeer, index: int, data: bytes, nodes: list[Node],
                    signature: bytes | None) -> None:
        """Verify and store a block ``peer`` sent (raises VerificationError); the other peers hear of
        it (:meth:`block_stored`)."""
        self._source = peer
        try:
            self.feed.put_verified(index, data, nodes, signature)
        finally:
            self._source = None

    def extension_received(self, peer: FeedPeer, remote_names: list[str] | None, extension_id: int,
                           payload: bytes) -> None:
        self.extensions.dispatch(remote_names, extension_id, payload, peer)

    # -- what the feed reports (FeedListener) ------------------------------------------------------

    def blocks_appended(self, start: int, count: int) -> None:
        for p in self._peers:
            p.announce(start, count)
            p.update()
        self._notify()

    def block_stored(self, index: int) -> None:
        source = self._source
        for p in self._peers:
            if p is not source:
                p.announce(index, 1)
        self._notify()

    def blocks_cleared(self, start: int, end: int) -> None:
        for p in self._peers:
            p.unannounce(start, end - start)
        self._notify()

    def feed_closed(self) -> None:
        ref = _replicators.get(self.feed)
        if ref is not None and ref() is self:
            del _replicators[self.feed]
        self.extensions.close()
        self._notify()


def _fail_after(timeout: float | None) -> contextlib.AbstractContextManager[object]:
    return trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext()


__all__ = ["Replicator", "Want", "replicator_of"]
