"""Flat-tree index math: a binary tree laid out in a flat array, as the npm package flat-tree numbers it.

Leaves (blocks) sit at even indices (block ``i`` at ``2 * i``); a node at depth ``d`` and offset ``o``
sits at ``(2 * o + 1) * 2 ** d - 1``.
"""

from __future__ import annotations


def index(depth: int, offset: int) -> int:
    return (((offset << 1) | 1) << depth) - 1


def depth(i: int) -> int:
    """Number of trailing one bits of ``i``."""
    return (~i & (i + 1)).bit_length() - 1


def offset(i: int, d: int | None = None) -> int:
    if d is None:
        d = depth(i)
    return i >> (d + 1)


def sibling(i: int, d: int | None = None) -> int:
    if d is None:
        d = depth(i)
    return i ^ (2 << d)


def parent(i: int, d: int | None = None) -> int:
    if d is None:
        d = depth(i)
    return (i | (1 << d)) & ~(2 << d)


def left_child(i: int, d: int | None = None) -> int:
    """The left child, or -1 for a leaf."""
    if d is None:
        d = depth(i)
    return -1 if d == 0 else i - (1 << (d - 1))


def right_child(i: int, d: int | None = None) -> int:
    if d is None:
        d = depth(i)
    return -1 if d == 0 else i + (1 << (d - 1))


def left_span(i: int, d: int | None = None) -> int:
    if d is None:
        d = depth(i)
    return i - (1 << d) + 1


def right_span(i: int, d: int | None = None) -> int:
    if d is None:
        d = depth(i)
    return i + (1 << d) - 1


def count(i: int, d: int | None = None) -> int:
    """Number of nodes in the subtree rooted at ``i``."""
    if d is None:
        d = depth(i)
    return (2 << d) - 1


def full_roots(i: int) -> list[int]:
    """The roots of the complete subtrees that cover every leaf before leaf index ``i`` (``i`` even)."""
    if i & 1:
        raise ValueError("full_roots takes a depth-0 index")
    n = i >> 1
    result: list[int] = []
    off = 0
    while n:
        factor = 1 << (n.bit_length() - 1)
        result.append(off + factor - 1)
        off += 2 * factor
        n -= factor
    return result


class Iterator:
    """A cursor moving through the tree, as flat-tree's iterator (used by the bitfield index)."""

    __slots__ = ("index", "offset", "factor")

    def __init__(self, i: int = 0) -> None:
        self.index = 0
        self.offset = 0
        self.factor = 2
        self.seek(i)

    def seek(self, i: int) -> int:
        self.index = i
        if i & 1:
            d = depth(i)
            self.offset = offset(i, d)
            self.factor = 2 << d
        else:
            self.offset = i >> 1
            self.factor = 2
        return i

    def is_left(self) -> bool:
        return (self.offset & 1) == 0

    def is_right(self) -> bool:
        return not self.is_left()

    def prev(self) -> int:
        if not self.offset:
            return self.index
        self.offset -= 1
        self.index -= self.factor
        return self.index

    def next(self) -> int:
        self.offset += 1
        self.index += self.factor
        return self.index

    def sibling(self) -> int:
        return self.prev() if self.is_right() else self.next()

    def parent(self) -> int:
        if self.offset & 1:
            self.index -= self.factor >> 1
            self.offset = (self.offset - 1) >> 1
        else:
            self.index += self.factor >> 1
            self.offset >>= 1
        self.factor *= 2
        return self.index

    def left_span(self) -> int:
        self.index = self.index - (self.factor >> 1) + 1
        self.offset = self.index >> 1
        self.factor = 2
        return self.index

    def right_span(self) -> int:
        self.index = self.index + (self.factor >> 1) - 1
        self.offset = self.index >> 1
        self.factor = 2
        return self.index

    def left_child(self) -> int:
        if self.factor == 2:
            return self.index
        self.factor >>= 1
        self.index -= self.factor >> 1
        self.offset *= 2
        return self.index

    def right_child(self) -> int:
        if self.factor == 2:
            return self.index
        self.factor >>= 1
        self.index += self.factor >> 1
        self.offset = 2 * self.offset + 1
        return self.index
