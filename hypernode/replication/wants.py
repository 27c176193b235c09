"""What one feed wants from its peers, and which peer fetches which block.

A :class:`Wants` holds, for one feed: the ranges being downloaded (each a :class:`Range`, or everything
in full mode), the single blocks awaited by readers, how many waiters want the length to grow, and the
blocks already requested from some peer (so that two peers are not asked for the same block). Peers
ask it what to request next with :meth:`Wants.pick`. Pure and synchronous: no I/O, no trio, no peers
list (the :class:`~hypernode.replication.replicator.Replicator` keeps those and does the waiting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hypernode.feed import Feed

_SCAN_LIMIT = 1 << 16  # blocks examined per pick() call at most, to bound work per message


class RemoteBlocks(Protocol):
    def get(self, index: int) -> bool: ...


class Source(Protocol):
    """A peer as :meth:`Wants.pick` sees it: the blocks it has and the length it announced."""

    @property
    def remote(self) -> RemoteBlocks: ...

    @property
    def remote_length(self) -> int: ...


@dataclass(eq=False)
class Range:
    """Blocks ``[start, end)`` wanted (``end`` None: everything the peers have, live)."""

    start: int
    end: int | None
    cursor: int = 0  # every block before it is stored
    next: int = 0  # every block before it is stored or requested from some peer

    def __post_init__(self) -> None:
        self.cursor = self.next = self.start


class Wants:
    """What one feed wants (see the module docstring)."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.reserved: dict[int, Source] = {}  # block -> the peer it is requested from
        self.ranges: list[Range] = []
        self.waiting: dict[int, int] = {}  # block -> number of waiters
        self.updates = 0  # waiters for the length to grow

    # -- what we want ------------------------------------------------------------------------------

    def add_range(self, start: int, end: int | None, *, first: bool = False) -> Range:
        """A range to fetch; ``first``: ahead of the ranges there are (peers pick in this order)."""
        r = Range(start, end)
        if first:
            self.ranges.insert(0, r)
        else:
            self.ranges.append(r)
        return r

    def remove_range(self, r: Range) -> None:
        if r in self.ranges:
            self.ranges.remove(r)

    def add_block(self, index: int) -> None:
        self.waiting[index] = self.waiting.get(index, 0) + 1

    def remove_block(self, index: int) -> None:
        n = self.waiting.get(index, 0) - 1
        if n <= 0:
            self.waiting.pop(index, None)
        else:
            self.waiting[index] = n

    def add_update(self) -> None:
        self.updates += 1

    def remove_update(self) -> None:
        self.updates = max(0, self.updates - 1)

    def wanted_regions(self, size: int, known: int, limit: int = 1024) -> set[int]:
        """The regions (of ``size`` blocks) our waiters and ranges need: past ``known`` (the length
        anyone has announced) there is nothing to subscribe to yet, and no range yields more than
        ``limit`` regions at once (a range to 2**62 must not become 2**42 regions)."""
        regions = {i // size for i in self.waiting}
        for r in self.ranges:
            end = r.end if r.end is not None else max(known, r.start + 1)
            end = max(min(end, known + size), r.start + 1)
            first = r.start // size
            regions.update(range(first, min((end - 1) // size + 1, first + limit)))
        return regions

    # -- requests ----------------------------------------------------------------------------------

    def release(self, peer: Source, indexes: list[int]) -> None:
        """``peer`` will not send these blocks (answered, refused or gone): others may fetch them."""
        for i in indexes:
            if self.reserved.get(i) is peer:
                del self.reserved[i]
                if not self.feed.bitfield.get(i):
                    self._rewind(i)

    def release_all(self, peer: Source) -> None:
        for i in [i for i, p in self.reserved.items() if p is peer]:
            del self.reserved[i]
            self._rewind(i)

    def _rewind(self, i: int) -> None:
        """A request for block ``i`` was dropped: let the ranges pick it again."""
        for r in self.ranges:
            if r.start <= i < r.next:
                r.next = i

    def pick(self, peer: Source, room: int) -> list[int]:
        """Up to ``room`` blocks to request from ``peer``: ones we lack, it has and nobody fetches."""
        feed = self.feed
        has = feed.bitfield.get
        remote = peer.remote.get
        remote_length = peer.remote_length
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
        if self.updates and remote_length > feed.length:
            if take(remote_length - 1):
                return out
        for r in list(self.ranges):
            end = remote_length if r.end is None else min(r.end, remote_length)
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

    def range_done(self, r: Range) -> bool:
        """Is every block of ``r`` stored (up to the feed's length, for an open range)?"""
        end = r.end if r.end is not None else self.feed.length
        has = self.feed.bitfield.get
        while r.cursor < end and has(r.cursor):
            r.cursor += 1
        if r.cursor < end:
            return False
        # the cursor may have skipped blocks that were got out of order; check the rest is complete
        return self.feed.bitfield.total(r.start, end) == end - r.start
