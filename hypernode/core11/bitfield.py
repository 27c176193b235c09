"""Which blocks a hypercore 11 core holds: its bitfield, in hypercore 11's pages, read on demand.

Block ``i`` is bit ``i % 32768`` of page ``i // 32768``; a page is 4,096 bytes, bit ``b`` in byte
``b // 8`` at ``1 << (b % 8)`` (JS's little-endian 32-bit words laid out as bytes), the layout of
hypercore 11's ``lib/bitfield.js`` and of the pages hypercore-storage keeps. A page the storage lacks
is all zero.

:class:`Bitfield` reads pages from a :class:`PageSource` (a core's storage) and keeps the last few in an
LRU cache, so a core of any length holds a bounded part of its bitfield in memory. Changes are made in
two steps, as a core writes: :meth:`Bitfield.changed_pages` gives the new contents of the pages a range
touches (the bitfield itself unchanged), the core puts them in its storage batch, and after that batch
commits :meth:`Bitfield.take` makes them the bitfield's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Bitfield", "PageSource", "PAGE_BYTES", "PAGE_BITS"]

PAGE_BYTES = 4096
PAGE_BITS = PAGE_BYTES * 8
_ALL = (1 << PAGE_BITS) - 1
_ZERO = bytes(PAGE_BYTES)


class PageSource(Protocol):
    """Where a :class:`Bitfield` reads its pages (a :class:`~hypernode.core11.storage.CoreStorage` is one)."""

    def get_bitfield_page(self, index: int) -> bytes | None: ...


def _fill(page: bytearray, start: int, end: int, value: bool) -> None:
    """Set bits ``start`` <= b < ``end`` of ``page`` to ``value``."""
    while start < end and start & 7:
        _set_bit(page, start, value)
        start += 1
    while end > start and end & 7:
        end -= 1
        _set_bit(page, end, value)
    if start < end:
        page[start >> 3:end >> 3] = (b"\xff" if value else b"\x00") * ((end - start) >> 3)


def _set_bit(page: bytearray, bit: int, value: bool) -> None:
    if value:
        page[bit >> 3] |= 1 << (bit & 7)
    else:
        page[bit >> 3] &= ~(1 << (bit & 7)) & 0xFF


class Bitfield:
    """A core's bitfield over ``source``, ``cache_pages`` pages kept in memory at most."""

    def __init__(self, source: PageSource, *, cache_pages: int = 64) -> None:
        if cache_pages < 1:
            raise ValueError("the cache holds at least one page")
        self.source = source
        self.cache_pages = cache_pages
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self.reads = 0  # pages read from the source (cache misses), for whoever measures
        # the page read last (a read in order asks for one page 32,768 times running), kept up to date
        # by _remember and forget
        self._last_index = -1
        self._last_page = _ZERO

    def page(self, index: int) -> bytes:
        """Page ``index`` (4,096 bytes; zeros if the storage has none)."""
        if index == self._last_index:
            return self._last_page
        page = self._cache.get(index)
        if page is not None:
            self._cache.move_to_end(index)
            self._last_index, self._last_page = index, page
            return page
        self.reads += 1
        stored = self.source.get_bitfield_page(index)
        page = _ZERO if stored is None else bytes(stored)
        if len(page) != PAGE_BYTES:
            raise ValueError(f"bitfield page {index} is {len(page)} bytes, not {PAGE_BYTES}")
        self._remember(index, page)
        return page

    def _remember(self, index: int, page: bytes) -> None:
        self._last_index, self._last_page = index, page
        self._cache[index] = page
        self._cache.move_to_end(index)
        if len(self._cache) > self.cache_pages:
            self._cache.popitem(last=False)

    @property
    def cached(self) -> int:
        """How many pages the cache holds now."""
        return len(self._cache)

    def get(self, index: int) -> bool:
        """True if block ``index`` is held."""
        if index < 0:
            return False
        bit = index % PAGE_BITS
        return bool(self.page(index // PAGE_BITS)[bit >> 3] >> (bit & 7) & 1)

    def changed_pages(self, start: int, end: int, value: bool,
                      pages: dict[int, bytes] | None = None) -> dict[int, bytes]:
        """The pages with blocks ``start`` <= i < ``end`` set to ``value``, by page index (the bitfield
        is unchanged until :meth:`take`). ``pages`` are changes not taken yet, to build on; the result
        holds them too."""
        out = dict(pages or {})
        i = start
        while i < end:
            p = i // PAGE_BITS
            stop = min(end, (p + 1) * PAGE_BITS)
            page = bytearray(out[p] if p in out else self.page(p))
            _fill(page, i - p * PAGE_BITS, stop - p * PAGE_BITS, value)
            out[p] = bytes(page)
            i = stop
        return out

    def take(self, pages: dict[int, bytes]) -> None:
        """Make ``pages`` (from :meth:`changed_pages`, now stored) the bitfield's."""
        for index, page in pages.items():
            self._remember(index, page)

    def forget(self) -> None:
        """Drop the cache (the storage changed under it)."""
        self._cache.clear()
        self._last_index, self._last_page = -1, _ZERO

    def find_first(self, value: bool, start: int, end: int, *,
                   overlay: dict[int, bytes] | None = None) -> int:
        """The first index ``i`` in ``start`` <= i < ``end`` whose bit is ``value``; ``end`` if none.
        ``overlay``: pages from :meth:`changed_pages` to read instead of the bitfield's."""
        i = max(start, 0)
        while i < end:
            p = i // PAGE_BITS
            base = p * PAGE_BITS
            page = overlay[p] if overlay and p in overlay else self.page(p)
            if page is _ZERO or page == _ZERO:
                if not value:
                    return i
                i = base + PAGE_BITS
                continue
            bits = int.from_bytes(page, "little")
            if not value:
                bits ^= _ALL
            bits >>= i - base
            if bits:
                return min(end, i + ((bits & -bits).bit_length() - 1))
            i = base + PAGE_BITS
        return end

    def runs(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The runs ``[s, e)`` of set bits within ``start`` <= i < ``end``, in order."""
        i = start
        while i < end:
            s = self.find_first(True, i, end)
            if s >= end:
                return
            e = self.find_first(False, s, end)
            yield s, e
            i = e
