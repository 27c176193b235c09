"""What a feed wants from its peers, and which peer fetches which block.

Each feed has one :class:`Downloads`: the ranges being downloaded (``Feed.download``, or everything in
full mode), the single blocks awaited by ``Feed.get``, whether ``Feed.update`` waits for the length to
grow, and the set of blocks already requested from some peer, so that two peers are not asked for the
same block. Peers (:class:`~hypernode.replication.peer.FeedPeer`) ask it what to request next with
:meth:`pick`. No I/O and no trio here: waiting is done by the feed, which wakes on every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypernode.feed import Feed
    from hypernode.replication.peer import FeedPeer

_SCAN_LIMIT = 1 << 16  # blocks examined per pick() call at most, to bound work per message


@dataclass
class Range:
    start: int
    end: int | None  # None: open-ended (everything the peers have, live)
    cursor: int = 0  # every block before it is stored
    next: int = 0  # every block before it is stored or requested from some peer

    def __post_init__(self) -> None:
        self.cursor = self.next = self.start


class Downloads:
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.peers: list[FeedPeer] = []
        self.reserved: dict[int, FeedPeer] = {}
        self.ranges: list[Range] = []
        self.waiting: dict[int, int] = {}  # block -> number of waiters
        self.updates = 0  # waiters for the length to grow

    # -- peers -------------------------------------------------------------------------------------

    def add_peer(self, peer: FeedPeer) -> None:
        if peer not in self.peers:
            self.peers.append(peer)
            self.feed._notify()

    def remove_peer(self, peer: FeedPeer) -> None:
        if peer in self.peers:
            self.peers.remove(peer)
        for i in [i for i, p in self.reserved.items() if p is peer]:
            del self.reserved[i]
            self._rewind(i)
        for other in self.peers:
            other.update()
        self.feed._notify()

    def release(self, peer: FeedPeer, indexes: list[int]) -> None:
        for i in indexes:
            if self.reserved.get(i) is peer:
                del self.reserved[i]
                if not self.feed.bitfield.get(i):
                    self._rewind(i)

    def _rewind(self, i: int) -> None:
        """A request for block ``i`` was dropped: let the ranges pick it again."""
        for r in self.ranges:
            if r.start <= i < r.next:
                r.next = i

    def remote_update(self, peer: FeedPeer) -> None:
        self.feed._notify()

    def remote_length(self) -> int:
        return max((p.remote_length for p in self.peers), default=0)

    # -- what we want ------------------------------------------------------------------------------

    def want_range(self, start: int, end: int | None) -> Range:
        r = Range(start, end)
        self.ranges.append(r)
        self._kick()
        return r

    def unwant_range(self, r: Range) -> None:
        if r in self.ranges:
            self.ranges.remove(r)

    def want_block(self, index: int) -> None:
        self.waiting[index] = self.waiting.get(index, 0) + 1
        self._kick()

    def unwant_block(self, index: int) -> None:
        n = self.waiting.get(index, 0) - 1
        if n <= 0:
            self.waiting.pop(index, None)
        else:
            self.waiting[index] = n

    def want_update(self) -> None:
        self.updates += 1
        self._kick()

    def unwant_update(self) -> None:
        self.updates = max(0, self.updates - 1)

    def wanted_regions(self, size: int, limit: int = 1024) -> set[int]:
        """The regions (of ``size`` blocks) our waiters and ranges need: past the length anyone has
        announced there is nothing to subscribe to yet, and no range yields more than ``limit``
        regions at once (a range to 2**62 must not become 2**42 regions)."""
        known = max(self.remote_length(), self.feed.length)
        regions = {i // size for i in self.waiting}
        for r in self.ranges:
            end = r.end if r.end is not None else max(known, r.start + 1)
            end = max(min(end, known + size), r.start + 1)
            first = r.start // size
            regions.update(range(first, min((end - 1) // size + 1, first + limit)))
        return regions

    def _kick(self) -> None:
        for p in list(self.peers):
            p.send_wants()
            p.update()

    # -- choosing requests -------------------------------------------------------------------------

    def pick(self, peer: FeedPeer, room: int) -> list[int]:
        """Up to ``room`` blocks to request from ``peer``: ones we lack, it has and nobody fetches."""
        feed = self.feed
        has = feed.bitfield.get
        remote = peer.remote.get
        reserved = self.reserved
        out: list[int] = []

        def take(i: int) -> bool:
            if i in reserved or has(i) or not remote(i):
                return False
            reserved[i] = peer
            out.append(i)
            return len(out) >= room

        for i in list(self.waiting):
            if take(i):
                return out
        if self.updates and peer.remote_length > feed.length:
            if take(peer.remote_length - 1):
                return out
        for r in list(self.ranges):
            end = peer.remote_length if r.end is None else min(r.end, peer.remote_length)
            while r.cursor < end and has(r.cursor):
                r.cursor += 1
            if r.next < r.cursor:
                r.next = r.cursor
            i = r.next
            limit = i + _SCAN_LIMIT
            advance = True  # move r.next over blocks that are stored or requested
            while i < end and i < limit:
                if i in reserved or has(i):
                    if advance:
                        r.next = i + 1
                    i += 1
                    continue
                if not remote(i):
                    advance = False  # another peer may have it: keep it for them
                    i += 1
                    continue
                reserved[i] = peer
                out.append(i)
                if advance:
                    r.next = i + 1
                if len(out) >= room:
                    return out
                i += 1
        return out

    # -- progress ----------------------------------------------------------------------------------

    def downloaded(self, index: int, source: FeedPeer | None) -> None:
        """A verified block arrived: tell the other peers and wake the waiters."""
        for p in self.peers:
            if p is not source:
                p.announce(index, 1)
        self.feed._notify()

    def appended(self, start: int, length: int) -> None:
        for p in self.peers:
            p.announce(start, length)
            p.update()

    def range_done(self, r: Range) -> bool:
        end = r.end if r.end is not None else self.feed.length
        has = self.feed.bitfield.get
        while r.cursor < end and has(r.cursor):
            r.cursor += 1
        if r.cursor < end:
            return False
        # the cursor may have skipped blocks that were got out of order; check the rest is complete
        return self.feed.bitfield.total(r.start, end) == end - r.start
