"""The hypercore 9 ``bitfield`` file: which blocks we have, which tree nodes we have, and an index.

The file is a 32-byte header followed by pages of 3,584 bytes. Each page holds three bit arrays side
by side: 1,024 bytes of the *data* bitfield (one bit per block), 2,048 bytes of the *tree* bitfield
(one bit per flat-tree node) and 512 bytes of the *index* (two bits per data byte, arranged as a flat
tree, saying whether a run of blocks is all-set, all-clear or mixed; JS uses it to skip ahead while
searching for missing blocks). Bits are numbered from the most significant bit of each byte.

This module keeps every page in memory (under half a byte per block) and tracks the pages that
changed, so the feed writes back only those, whole, exactly as JS hypercore does. The bookkeeping
that decides which pages exist and which bytes are touched follows hypercore 9's ``lib/bitfield.js``
with ``sparse-bitfield`` and ``memory-pager``, so that the same operations give the same bytes.
"""

from __future__ import annotations

from hypernode import flat_tree

PAGE_SIZE = 3584
DATA_PAGE = 1024
TREE_PAGE = 2048
INDEX_PAGE = PAGE_SIZE - DATA_PAGE - TREE_PAGE  # 512
_DATA_OFFSET = 0
_TREE_OFFSET = DATA_PAGE
_INDEX_OFFSET = DATA_PAGE + TREE_PAGE

_INDEX_UPDATE_MASK = (63, 207, 243, 252)
_INDEX_ITERATE_MASK = (0, 192, 240, 252)
_DATA_ITERATE_MASK = (128, 192, 224, 240, 248, 252, 254, 255)
_DATA_UPDATE_MASK = (127, 191, 223, 239, 247, 251, 253, 254)


def _quad(n: int) -> int:
    return 3 if n == 15 else 0 if n == 0 else 1


_MAP_PARENT_RIGHT = tuple((_quad(i >> 4) << 2) | _quad(i & 15) for i in range(256))
_MAP_PARENT_LEFT = tuple(v << 4 for v in _MAP_PARENT_RIGHT)


def _next_data_0_bit(i: int) -> int:
    if i == 255:
        return -1
    for bit in range(8):
        if not i & (128 >> bit):
            return bit
    return -1  # pragma: no cover


_NEXT_DATA_0_BIT = tuple(_next_data_0_bit(i) for i in range(256))
_NEXT_INDEX_0_BIT = tuple(-1 if i == 255 else _NEXT_DATA_0_BIT[i] // 2 for i in range(256))
_TOTAL_1_BITS = tuple(bin(i).count("1") for i in range(256))


class Pages:
    """Fixed-size pages addressed by number, allocated on first write (memory-pager semantics)."""

    __slots__ = ("pages", "length", "dirty")

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}
        self.length = 0  # highest allocated page + 1 (JS pager.length)
        self.dirty: set[int] = set()

    def load(self, blob: bytes) -> None:
        """Fill from the bitfield file's contents after its header."""
        n = -(-len(blob) // PAGE_SIZE)
        for i in range(n):
            chunk = blob[i * PAGE_SIZE:(i + 1) * PAGE_SIZE]
            if chunk.count(0) != len(chunk):
                self.pages[i] = bytearray(chunk.ljust(PAGE_SIZE, b"\x00"))
        self.length = max(self.length, n)

    def get(self, i: int) -> bytearray:
        page = self.pages.get(i)
        if page is None:
            page = self.pages[i] = bytearray(PAGE_SIZE)
            if i >= self.length:
                self.length = i + 1
        return page

    def take_dirty(self) -> list[tuple[int, bytes]]:
        """The changed pages as ``(file offset after the header, bytes)``, clearing the marks."""
        out = [(i * PAGE_SIZE, bytes(self.pages[i])) for i in sorted(self.dirty)]
        self.dirty.clear()
        return out


class _View:
    """One of the three bit arrays inside the shared pages (sparse-bitfield semantics)."""

    __slots__ = ("_pages", "page_size", "offset", "byte_length", "_shift")

    def __init__(self, pages: Pages, page_size: int, offset: int) -> None:
        self._pages = pages
        self.page_size = page_size
        self.offset = offset
        self.byte_length = pages.length * page_size
        self._shift = page_size.bit_length() - 1

    @property
    def length(self) -> int:
        return self.byte_length * 8

    def get_byte(self, i: int) -> int:
        page = self._pages.pages.get(i >> self._shift)
        return page[self.offset + (i & (self.page_size - 1))] if page is not None else 0

    def set_byte(self, i: int, b: int) -> bool:
        j = i >> self._shift
        page = self._pages.get(j)
        o = self.offset + (i & (self.page_size - 1))
        if page[o] == b:
            return False
        page[o] = b
        if i >= self.byte_length:
            self.byte_length = i + 1
        self._pages.dirty.add(j)
        return True

    def get(self, i: int) -> bool:
        page = self._pages.pages.get(i >> (self._shift + 3))
        if page is None:
            return False
        return bool(page[self.offset + ((i >> 3) & (self.page_size - 1))] & (128 >> (i & 7)))

    def set(self, i: int, value: bool) -> bool:
        j = i >> 3
        b = self.get_byte(j)
        bit = 128 >> (i & 7)
        return self.set_byte(j, (b | bit) if value else (b & (255 ^ bit)))


class TreeIndex:
    """Which flat-tree nodes are stored, with the queries of hypercore 9's ``lib/tree-index.js``."""

    __slots__ = ("bits",)

    def __init__(self, bits: _View | None = None) -> None:
        self.bits: _View = bits if bits is not None else _View(Pages(), TREE_PAGE, 0)

    def get(self, i: int) -> bool:
        return self.bits.get(i)

    def set(self, i: int) -> bool:
        bits = self.bits
        if bits.get(i):
            return False
        bits.set(i, True)
        get = bits.get
        d = flat_tree.depth(i)
        while get(i ^ (2 << d)):  # the sibling: their parent is complete too
            i = (i | (1 << d)) & ~(2 << d)
            d += 1
            if get(i):
                break
            bits.set(i, True)
        return True

    def blocks(self) -> int:
        """The number of blocks the stored tree proves (the feed's length)."""
        top = 0
        nxt = 0
        maximum = self.bits.length
        while flat_tree.right_span(nxt) < maximum:
            nxt = flat_tree.parent(nxt)
            if self.get(nxt):
                top = nxt
        return (self.verified_by(top) if self.get(top) else 0) // 2

    def verified_by(self, i: int, nodes: list[int] | None = None) -> int:
        """The leaf index just past the last block that the roots covering ``i`` sign for."""
        if not self.get(i):
            return 0
        depth = flat_tree.depth(i)
        top = i
        parent = flat_tree.parent(top, depth)
        depth += 1
        while self.get(parent) and self.get(flat_tree.sibling(top)):
            top = parent
            parent = flat_tree.parent(top, depth)
            depth += 1
        depth -= 1
        while depth:
            top = flat_tree.left_child(flat_tree.index(depth, flat_tree.offset(top, depth) + 1), depth)
            depth -= 1
            while not self.get(top) and depth:
                top = flat_tree.left_child(top, depth)
                depth -= 1
            if nodes is not None and self.get(top):
                nodes.append(top)
        return top + 2 if self.get(top) else top

    def digest(self, i: int) -> int:
        """What a requester tells the uploader about the nodes above ``i`` that it already has."""
        get = self.bits.get
        if get(i):
            return 1
        digest = 0
        d = flat_tree.depth(i)  # flat-tree math inlined: this runs for every request
        nxt = i ^ (2 << d)
        maximum = max(nxt + 2, self.bits.length)
        bit = 2
        parent = (nxt | (1 << d)) & ~(2 << d)
        d += 1  # the parent's depth
        while nxt + (1 << (d - 1)) - 1 < maximum or parent - (1 << d) + 1 > 0:
            if get(nxt):
                digest += bit
            if get(parent):
                digest += 2 * bit
                if not digest & 1:
                    digest += 1
                if digest + 1 == 4 * bit:
                    return 1
                return digest
            nxt = parent ^ (2 << d)
            parent = (nxt | (1 << d)) & ~(2 << d)
            d += 1
            bit *= 2
        return digest

    def proof(self, i: int, digest: int = 0, want_hash: bool = False,
              remote: TreeIndex | None = None) -> tuple[list[int], int] | None:
        """The tree nodes a peer needs to verify node ``i``, and the length its roots sign for.

        Returns ``(node indices, verified_by)`` (``verified_by`` is 0 when no signature is needed) or
        None if we don't have node ``i``. ``digest`` is the requester's digest of what it has.
        """
        if not self.get(i):
            return None
        nodes: list[int] = []
        remote_tree = remote if remote is not None else TreeIndex()
        if want_hash:
            nodes.append(i)
        if digest == 1:
            return nodes, 0
        nxt = i
        has_root = digest & 1
        digest >>= 1
        while digest:
            if digest == 1 and has_root:
                if self.get(nxt):
                    remote_tree.set(nxt)
                sib = flat_tree.sibling(nxt)
                if sib < nxt:
                    nxt = sib
                for r in flat_tree.full_roots(flat_tree.right_span(nxt) + 2):
                    if self.get(r):
                        remote_tree.set(r)
                break
            sib = flat_tree.sibling(nxt)
            if digest & 1 and self.get(sib):
                remote_tree.set(sib)
            nxt = flat_tree.parent(nxt)
            digest >>= 1

        nxt = i
        while not remote_tree.get(nxt):
            sib = flat_tree.sibling(nxt)
            if not self.get(sib):
                verified_by = self.verified_by(nxt)
                for r in flat_tree.full_roots(verified_by):
                    if r != nxt and not remote_tree.get(r):
                        nodes.append(r)
                return nodes, verified_by
            if not remote_tree.get(sib):
                nodes.append(sib)
            nxt = flat_tree.parent(nxt)
        return nodes, 0

    def truncate(self, length: int) -> None:
        """Forget every node that is not part of the tree of the first ``length // 2`` blocks."""
        current = 2 * self.blocks()
        for i in range(length, current):
            self.bits.set(i, False)
        for root in flat_tree.full_roots(length):
            p = flat_tree.parent(root)
            while p < length:
                self.bits.set(p, False)
                p = flat_tree.parent(p)


class Bitfield:
    """The whole bitfield file: data bits with their index, and the tree bits (as a :class:`TreeIndex`)."""

    __slots__ = ("pages", "data", "tree_bits", "index", "tree", "length", "_ite")

    def __init__(self, blob: bytes = b"") -> None:
        self.pages = Pages()
        if blob:
            self.pages.load(blob)
        self.data = _View(self.pages, DATA_PAGE, _DATA_OFFSET)
        self.tree_bits = _View(self.pages, TREE_PAGE, _TREE_OFFSET)
        self.index = _View(self.pages, INDEX_PAGE, _INDEX_OFFSET)
        self.tree = TreeIndex(self.tree_bits)
        self.length = self.data.length
        self._ite = flat_tree.Iterator(0)

    def get(self, i: int) -> bool:
        return self.data.get(i)

    def set(self, i: int, value: bool) -> bool:
        o = i & 7
        j = i >> 3
        b = self.data.get_byte(j)
        v = (b | (128 >> o)) if value else (b & _DATA_UPDATE_MASK[o])
        if not self.data.set_byte(j, v):
            return False
        self.length = self.data.length
        self._set_index(j, v)
        return True

    def total(self, start: int = 0, end: int | None = None) -> int:
        """How many blocks in ``[start, end)`` we have."""
        if start < 0:
            start = 0
        if end is None:
            end = self.data.length
        if end <= start:
            return 0
        if end > self.data.length:
            self._expand(end)
        get = self.data.get_byte
        pos, last = start >> 3, end >> 3
        o, e = start & 7, end & 7
        left_mask = 255 - (_DATA_ITERATE_MASK[o - 1] if o else 0)
        right_mask = _DATA_ITERATE_MASK[e - 1] if e else 0
        if pos == last:
            return _TOTAL_1_BITS[get(pos) & left_mask & right_mask]
        total = _TOTAL_1_BITS[get(pos) & left_mask]
        for k in range(pos + 1, last):
            total += _TOTAL_1_BITS[get(k)]
        total += _TOTAL_1_BITS[get(last) & right_mask]
        return total

    def data_bytes(self, start_byte: int, end_byte: int) -> bytes:
        """The raw data bitfield bytes in ``[start_byte, end_byte)`` (for Have messages)."""
        out = bytearray()
        pages = self.pages.pages
        k = start_byte
        while k < end_byte:  # a page's slice at a time: a Want for 1M blocks reads 128 KiB
            p, o = divmod(k, DATA_PAGE)
            n = min(DATA_PAGE - o, end_byte - k)
            page = pages.get(p)
            out += page[_DATA_OFFSET + o:_DATA_OFFSET + o + n] if page is not None else bytes(n)
            k += n
        return bytes(out)

    def next_missing(self, start: int, end: int) -> int:
        """The first block in ``[start, end)`` we don't have, or -1."""
        get = self.data.get_byte
        i = start
        while i < end:
            b = get(i >> 3)
            if b == 255 and not i & 7:
                i += 8
                continue
            if not b & (128 >> (i & 7)):
                return i
            i += 1
        return -1

    def _set_index(self, i: int, value: int) -> None:
        o = i & 3
        i >>= 2
        index = self.index
        ite = self._ite
        start = 2 * i
        byte = (index.get_byte(start) & _INDEX_UPDATE_MASK[o]) | (_index_value(value) >> (2 * o))
        length = index.byte_length * 8
        max_length = self.pages.length * INDEX_PAGE
        ite.seek(start)
        while ite.index < max_length and index.set_byte(ite.index, byte):
            if ite.is_left():
                byte = _MAP_PARENT_LEFT[byte] | _MAP_PARENT_RIGHT[index.get_byte(ite.sibling())]
            else:
                byte = _MAP_PARENT_RIGHT[byte] | _MAP_PARENT_LEFT[index.get_byte(ite.sibling())]
            ite.parent()
        if length != index.byte_length * 8:
            self._expand(length)

    def _expand(self, length: int) -> None:
        index = self.index
        ite = self._ite
        for root in flat_tree.full_roots(2 * length):
            ite.seek(root)
            byte = index.get_byte(ite.index)
            while True:
                if ite.is_left():
                    byte = _MAP_PARENT_LEFT[byte] | _MAP_PARENT_RIGHT[index.get_byte(ite.sibling())]
                else:
                    byte = _MAP_PARENT_RIGHT[byte] | _MAP_PARENT_LEFT[index.get_byte(ite.sibling())]
                p = ite.parent()
                if 8 * p >= index.byte_length * 8 or not index.set_byte(p, byte):
                    break


def _index_value(n: int) -> int:
    return 192 if n == 255 else 0 if n == 0 else 64


def header(kind: int, block_size: int, name: str | None) -> bytes:
    """The 32-byte header of the tree, signatures and bitfield files."""
    buf = bytearray(32)
    buf[0:3] = b"\x05\x02\x57"
    buf[3] = kind
    buf[4] = 0
    buf[5:7] = block_size.to_bytes(2, "big")
    if name:
        buf[7] = len(name)
        buf[8:8 + len(name)] = name.encode()
    return bytes(buf)
