"""The merged index of a multi-drive: every drive's entries and tombstones, kept current by trie diffs.

Each drive has a :class:`DriveView`: the trie version it was indexed at, its entries (trie key ->
node) and its tombstones. Before every call the multi-drive compares each drive's version with its
view's (an integer compare per drive) and applies the trie diff between the two versions
(:meth:`Hypertrie.diff`), so the cost of keeping up is the size of the change, not of the drives.

Across views the index keeps what calls ask for: the drives holding each path, each folder's names
(with the drives that hold something under them, so folders that exist only because entries lie
under them are known), and the tombstones of each path. Winners of conflicts are cached until a change
touches them; a folder's listing, once made, is kept in order as names come, go, or are hidden. Paths
at or under a drive's mount point are not in its trie; for those the caller asks that drive itself
(:meth:`MergedIndex.redirected`).
"""

from __future__ import annotations

import bisect
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

    @property
    def key(self) -> bytes:
        return self.drive.key


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
        self._next_order = 0

    # -- views -------------------------------------------------------------------------------------

    def add(self, drive: Hyperdrive) -> DriveView:
        view = DriveView(drive, self._next_order)
        self._next_order += 1
        self.views.append(view)
        return view

    def remove(self, view: DriveView) -> None:
        self.views.remove(view)
        for key in list(view.entries):
            self._set_entry(view, key, None)
        for key in list(view.tombstones):
            self._set_tombstone(view, key, None)

    # -- keeping up --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Bring every view up to its drive's version (only drives whose version moved cost anything)."""
        # one comparison per drive, on every call: the trie's version (what ``drive.version`` returns)
        stale = [v for v in self.views if v.drive.trie.version != v.version]
        for view in stale:
            await self.refresh_view(view)

    async def refresh_view(self, view: DriveView) -> None:
        async with view.lock:
            target = _indexable_version(view.drive)
            if target == view.version or view not in self.views:
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
