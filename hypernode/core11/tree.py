"""The merkle tree of a hypercore 10/11 core, held in memory: its nodes, roots, byte length and fork.

Nodes are numbered as flat-tree numbers them (block ``i`` is leaf ``2 * i``). Appending a block adds
its leaf and every parent it completes; the roots at a length are the nodes ``flat_tree.full_roots(2 *
length)``. Truncating drops the nodes that cover a block past the new length and moves the fork on, as
hypercore does (the fork is part of what is signed). Appends and truncations are built as a
:class:`TreeBatch`, which the tree takes only on :meth:`MerkleTree.commit` (after its signature
verified, say). Hashes are :mod:`hypernode.core11.crypto`'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hypernode import flat_tree
from hypernode.core11.crypto import leaf_hash, parent_hash, tree_hash
from hypernode.errors import MissingTreeNode

__all__ = ["Node", "MerkleTree", "TreeBatch"]


@dataclass(frozen=True, slots=True)
class Node:
    """A tree node: its flat-tree index, the byte size of the blocks under it, and its hash."""

    index: int
    size: int
    hash: bytes


class TreeBatch:
    """A tree state that is not the tree's yet: the head after some appends or a truncation. The tree
    takes it with :meth:`MerkleTree.commit` (after its signature verified, say) or it is dropped."""

    __slots__ = ("tree", "nodes", "roots", "length", "byte_length", "fork", "truncated_to")

    def __init__(self, tree: MerkleTree) -> None:
        self.tree = tree
        self.nodes: list[Node] = []
        self.roots = list(tree.roots)
        self.length = tree.length
        self.byte_length = tree.byte_length
        self.fork = tree.fork
        self.truncated_to: int | None = None

    def append(self, block: bytes | bytearray | memoryview) -> None:
        node = Node(2 * self.length, len(block), leaf_hash(block))
        self.nodes.append(node)
        roots = self.roots
        while roots and flat_tree.sibling(node.index) == roots[-1].index:
            left = roots.pop()
            node = Node(flat_tree.parent(node.index), left.size + node.size, parent_hash(left, node))
            self.nodes.append(node)
        roots.append(node)
        self.length += 1
        self.byte_length += len(block)

    def hash(self) -> bytes:
        return tree_hash(self.roots)


class MerkleTree:
    """Every node of a core's tree, in memory, with the state at its head (length, roots, fork)."""

    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self.roots: list[Node] = []
        self.length = 0
        self.byte_length = 0
        self.fork = 0

    def batch(self, blocks: Iterable[bytes | bytearray | memoryview] = ()) -> TreeBatch:
        """The state after appending ``blocks`` (the tree is unchanged until :meth:`commit`)."""
        b = TreeBatch(self)
        for block in blocks:
            b.append(block)
        return b

    def truncation(self, length: int, fork: int | None = None) -> TreeBatch:
        """The state cut back to ``length`` blocks, with fork ``fork`` (default: one more)."""
        b = TreeBatch(self)
        b.roots = self.roots_at(length)
        b.length = length
        b.byte_length = sum(r.size for r in b.roots)
        b.fork = self.fork + 1 if fork is None else fork
        b.truncated_to = length
        return b

    def commit(self, batch: TreeBatch) -> None:
        if batch.tree is not self:
            raise ValueError("a batch of another tree")
        if batch.truncated_to is not None:
            head = 2 * batch.truncated_to
            for index in [i for i in self.nodes if flat_tree.right_span(i) >= head]:
                del self.nodes[index]
        elif batch.fork != self.fork or len(batch.nodes) and batch.nodes[0].index != 2 * self.length:
            raise ValueError("a batch made before the tree changed")
        for n in batch.nodes:
            self.nodes[n.index] = n
        self.roots = list(batch.roots)
        self.length = batch.length
        self.byte_length = batch.byte_length
        self.fork = batch.fork

    def append(self, block: bytes | bytearray | memoryview) -> None:
        self.commit(self.batch([block]))

    def get(self, index: int) -> Node:
        try:
            return self.nodes[index]
        except KeyError:
            raise MissingTreeNode(index // 2) from None

    def roots_at(self, length: int) -> list[Node]:
        """The roots of the tree as it was at ``length`` (<= the current length)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"length {length} is past the tree's {self.length}")
        if length == self.length:
            return list(self.roots)
        return [self.get(i) for i in flat_tree.full_roots(2 * length)]

    def hash(self, length: int | None = None) -> bytes:
        """The tree hash at ``length`` (default: now)."""
        return tree_hash(self.roots if length is None else self.roots_at(length))

    def byte_length_at(self, length: int) -> int:
        return sum(r.size for r in self.roots_at(length))
