"""The merged index of a multi-drive: every drive's entries and tombstones, kept current by trie diffs.

Each drive has a :class:`DriveView`: the trie version it was indexed at, its entries (trie key ->
node) and its tombstones. The index listens to every drive's metadata feed (a
:class:`~hypernode.feed.FeedListener`: a block appended here or received from a peer, or blocks
cleared, is all that can move a drive's version) and keeps the set of views those events made stale.
Before every call the multi-drive brings the stale views (usually none: one test of an empty set,
whatever the number of drives) up to their drive's version by applying the trie diff between the two
versions (:meth:`Hypertrie.diff`), so the cost of keeping up is the size of the change, not of the
drives.

Across views the index keeps what calls ask for: the drives holding each path, each folder's names
(with the drives that hold something under them, so folders that exist only because entries lie
under them are known), and the tombstones of each path. Winners of conflicts are cached until a change
touches them; a folder's listing, once made, is kept in order as names come, go, or are hidden. Paths
at or under a drive's mount point are not in its trie; for those the caller asks that drive itself
(:meth:`MergedIndex.redirected`).
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import trio
from nacl.bindings import crypto_shorthash_siphash24

from hypernode.drive.errors import CorruptEntry
from hypernode.drive.stat import Stat
from hypernode.multi import tombstones
from hypernode.multi.tombstones import Tombstone
from hypernode.trie.node import TrieNode

if TYPE_CHECKING:
    from hypernode.drive.hyperdrive import Hyperdrive

MOUNT_FLAG = 1


@dataclass(eq=False)
class DriveView:
    """One drive as the index has seen it."""

    drive: Hyperdrive
    order: int
    version: int = 0
    entries: dict[str, TrieNode] = field(default_factory=dict)
    tombstones: dict[str, tuple[Tombstone, int]] = field(default_factory=dict)
    special: set[str] = field(default_factory=set)  # keys of its mount points
    links: set[str] = field(default_factory=set)  # keys of its symlinks
    lock: trio.Lock = field(default_factory=trio.Lock)
    changes: int = 0  # events of its metadata feed so far (see _FeedWatch)
    watch: _FeedWatch | None = None

    @property
    def key(self) -> bytes:
        return self.drive.key


class _FeedWatch:
    """Marks a view stale when its drive's metadata feed changes: a feed listener, called synchronously
    inside the feed's call (it only counts and records; no I/O). It holds the index weakly, so that a
    view nobody closed does not keep its index alive through the feed."""

    __slots__ = ("_index", "view")

    def __init__(self, index: MergedIndex, view: DriveView) -> None:
        self._index = weakref.ref(index)
        self.view = view

    def _changed(self) -> None:
        self.view.changes += 1
        index = self._index()
        if index is not None:
            index.stale[self.view] = None

    def blocks_appended(self, start: int, count: int) -> None:
        self._changed()

    def block_stored(self, index: int) -> None:
        self._changed()

    def blocks_cleared(self, start: int, end: int) -> None:
        self._changed()

    def feed_closed(self) -> None:
        pass  # a closed feed's length does not move any more


@lru_cache(maxsize=1 << 16)
def listing_order(name: str) -> tuple[bytes, str]:
    """Where a name falls in a drive's readdir: hypertrie iterates a folder's names in the order of the
    2-bit segments (low bits first) of their SipHash; ``(segments, name)`` sorts the same way."""
    h = crypto_shorthash_siphash24(name.encode(), bytes(16))
    return bytes(((b >> s) & 3) for b in h for s in (0, 2, 4, 6)), name


def parent_key(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


class MergedIndex:
    def __init__(self) -> None:
        self.views: list[DriveView] = []
        self.paths: dict[str, dict[DriveView, TrieNode]] = {}
        self.children: dict[str, dict[str, dict[DriveView, int]]] = {}
        self.special: dict[str, set[DriveView]] = {}
        self.symlinks = 0  # symlink entries across views: path resolution is needed only when there are some
        self.tombs: dict[str, dict[DriveView, tuple[Tombstone, int]]] = {}
        self.winners: dict[str, Any] = {}
        self.listings: dict[str, list[str]] = {}
        # views whose drive may have moved since they were indexed (a dict: refreshed in order)
        self.stale: dict[DriveView, None] = {}
        self._next_order = 0

    # -- views -------------------------------------------------------------------------------------

    def add(self, drive: Hyperdrive) -> DriveView:
        view = DriveView(drive, self._next_order)
        self._next_order += 1
        self.views.append(view)
        self.stale[view] = None
        feed = drive.metadata
        if not drive.is_checkout and not feed.closed:  # a checkout's version never moves
            view.watch = _FeedWatch(self, view)
            feed.add_listener(view.watch)
        return view

    def remove(self, view: DriveView) -> None:
        self.views.remove(view)
        self.stale.pop(view, None)
        _unwatch(view)
        for key in list(view.entries):
            self._set_entry(view, key, None)
        for key in list(view.tombstones):
            self._set_tombstone(view, key, None)

    def close(self) -> None:
        """Stop listening to the drives' feeds."""
        for view in self.views:
            _unwatch(view)

    # -- keeping up --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Bring every stale view up to its drive's version: nothing to do (one test) unless a drive's
        metadata feed changed since the last call."""
        if not self.stale:
            return
        for view in list(self.stale):
            await self.refresh_view(view)

    async def refresh_view(self, view: DriveView) -> None:
        async with view.lock:
            seen = view.changes  # (before the version is read: a change after it leaves the view stale)
            target = _indexable_version(view.drive)
            if view not in self.views:
                return
            if target == view.version:
                self._fresh(view, seen)
                return
            trie = view.drive.trie
            new = trie.checkout(target)
            old = view.version if view.version <= target else 0
            if old != view.version:  # went backwards (a checkout swapped in): start over
                for key in list(view.entries):
                    self._set_entry(view, key, None)
                for key in list(view.tombstones):
                    self._set_tombstone(view, key, None)
            try:
                async for d in new.diff(old):
                    if d.key:
                        self._set_entry(view, d.key, d.left)
                async for d in new.diff(old, tombstones.PREFIX, hidden=True):
                    path = tombstones.path_key(d.key)
                    if path is not None:
                        left = d.left
                        tomb = Tombstone.decode(left.value) if left is not None else None
                        found = (tomb, left.seq) if tomb is not None and left is not None else None
                        self._set_tombstone(view, path, found)
            except Exception as e:
                # the changes applied so far are re-applied (idempotently) by the next refresh
                raise CorruptEntry(f"drive {view.key.hex()[:16]}: cannot index version {target}: {e}") from e
            view.version = target
            self._fresh(view, seen)

    def _fresh(self, view: DriveView, seen: int) -> None:
        """``view`` is indexed at its drive's version as of its ``seen``-th change: not stale, unless
        its feed changed since (or it has no feed listener, so that only a look tells)."""
        if view.changes == seen and (view.watch is not None or view.drive.is_checkout):
            self.stale.pop(view, None)

    def _set_entry(self, view: DriveView, key: str, node: TrieNode | None) -> None:
        old = view.entries.get(key)
        if node is None:
            if old is None:
                return
            del view.entries[key]
            holders = self.paths[key]
            del holders[view]
            if not holders:
                del self.paths[key]
            self._count(view, key, -1)
        else:
            view.entries[key] = node
            self.paths.setdefault(key, {})[view] = node
            if old is None:
                self._count(view, key, 1)
        special, link = _kind(node)
        if link and key not in view.links:
            view.links.add(key)
            self.symlinks += 1
        elif not link and key in view.links:
            view.links.discard(key)
            self.symlinks -= 1
        if special and key not in view.special:
            view.special.add(key)
            self.special.setdefault(key, set()).add(view)
        elif not special and key in view.special:
            view.special.discard(key)
            s = self.special[key]
            s.discard(view)
            if not s:
                del self.special[key]
        self.winners.pop(key, None)

    def _count(self, view: DriveView, key: str, delta: int) -> None:
        parts = key.split("/")
        folder = ""
        for name in parts:
            names = self.children.setdefault(folder, {})
            holders = names.setdefault(name, {})
            n = holders.get(view, 0) + delta
            if n > 0:
                holders[view] = n
            else:
                holders.pop(view, None)
                if not holders:
                    del names[name]
                    if not names:
                        del self.children[folder]
            if delta > 0 and n == 1 and len(holders) == 1:
                self._relist(folder, name)  # a name appeared
            elif not holders:
                self._relist(folder, name)  # a name went away
            # a folder's winner may be implicit (no entry of its own): its holders changed
            sub = f"{folder}/{name}" if folder else name
            self.winners.pop(sub, None)
            folder = sub

    def _set_tombstone(self, view: DriveView, key: str, tomb: tuple[Tombstone, int] | None) -> None:
        if tomb is None:
            if view.tombstones.pop(key, None) is None:
                return
            holders = self.tombs[key]
            del holders[view]
            if not holders:
                del self.tombs[key]
        else:
            view.tombstones[key] = tomb
            self.tombs.setdefault(key, {})[view] = tomb
        self.winners.pop(key, None)
        folder = parent_key(key)
        self._relist(folder, key[len(folder) + 1:] if folder else key)

    def _relist(self, folder: str, name: str) -> None:
        """Bring a cached listing of ``folder`` up to date for ``name`` (which appeared, went away, or
        was hidden or shown by a tombstone): one insertion or removal, not a new listing."""
        names = self.listings.get(folder)
        if names is None:
            return
        order = listing_order(name)
        i = bisect.bisect_left(names, order, key=listing_order)
        there = i < len(names) and names[i] == name
        held = folder in self.children and name in self.children[folder]
        listed = held and not self.hidden(f"{folder}/{name}" if folder else name)
        if listed and not there:
            names.insert(i, name)
        elif there and not listed:
            del names[i]

    def invalidate(self) -> None:
        self.winners.clear()
        self.listings.clear()

    # -- reading -----------------------------------------------------------------------------------

    def tombstone(self, key: str) -> tuple[DriveView, Tombstone, int] | None:
        """The deciding tombstone of a path: the newest (ties: the drive added last)."""
        holders = self.tombs.get(key)
        if not holders:
            return None
        view, (tomb, seq) = max(holders.items(), key=lambda kv: (kv[1][0].timestamp, kv[0].order))
        return view, tomb, seq

    def hidden(self, key: str) -> bool:
        t = self.tombstone(key)
        return t is not None and t[1].active

    def redirected(self, key: str, include_self: bool) -> set[DriveView]:
        """Views in which ``key`` lies under a mount point (or is one, with ``include_self``): their
        tries do not hold what is there, so the caller asks those drives directly."""
        if not self.special:
            return set()
        out: set[DriveView] = set()
        parts = key.split("/") if key else []
        stop = len(parts) + 1 if include_self else len(parts)
        for i in range(1, stop):
            s = self.special.get("/".join(parts[:i]))
            if s:
                out |= s
        return out

    def entries_at(self, key: str, skip: set[DriveView]) -> Iterable[tuple[DriveView, TrieNode]]:
        holders = self.paths.get(key)
        if not holders:
            return ()
        if not skip:
            return holders.items()
        return [(v, n) for v, n in holders.items() if v not in skip]

    def folder_holders(self, key: str, skip: set[DriveView]) -> list[DriveView]:
        """Views that hold entries under ``key`` (so that it is a folder there)."""
        if not key:
            return [v for v in self.views if v not in skip]
        names = self.children.get(parent_key(key))
        holders = names.get(key.rsplit("/", 1)[-1]) if names else None
        if not holders:
            return []
        return [v for v in holders if v.entries.get(key) is None and v not in skip]

    def names(self, key: str, skip: set[DriveView]) -> list[tuple[str, list[DriveView]]]:
        """The names under folder ``key`` with the views holding each (views in ``skip`` left out)."""
        names = self.children.get(key)
        if not names:
            return []
        out = []
        for name, holders in names.items():
            views = [v for v in holders if v not in skip] if skip else list(holders)
            if views:
                out.append((name, views))
        return out


def _kind(node: TrieNode | None) -> tuple[bool, bool]:
    """(is a mount point, is a symlink)."""
    if node is None:
        return False, False
    if node.flags == MOUNT_FLAG:
        return True, False
    try:
        return False, Stat.decode(node.value or b"").is_symlink()
    except CorruptEntry:
        return False, False


def _unwatch(view: DriveView) -> None:
    if view.watch is not None:
        view.drive.metadata.remove_listener(view.watch)
        view.watch = None


def _indexable_version(drive: Hyperdrive) -> int:
    """The drive's version, or on a replica still receiving its newest blocks, the newest version whose
    head block is here (so that indexing does not wait on a peer that may never send it)."""
    version = drive.version
    feed = drive.metadata
    if version <= 1 or drive.is_checkout or feed.has(version - 1):
        return version
    for seq in range(version - 2, 0, -1):
        if feed.has(seq):
            return seq + 1
    return 1
