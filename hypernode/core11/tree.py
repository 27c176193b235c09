"""The merkle tree of a hypercore 10/11 core: its nodes, roots, byte length and fork.

Nodes are numbered as flat-tree numbers them (block ``i`` is leaf ``2 * i``). Appending a block adds
its leaf and every parent it completes; the roots at a length are the nodes ``flat_tree.full_roots(2 *
length)``. Truncating drops the nodes that cover a block past the new length and moves the fork on, as
hypercore does (the fork is part of what is signed). Appends and truncations are built as a
:class:`TreeBatch`, which the tree takes only on :meth:`MerkleTree.commit` (after its signature
verified, say). Hashes are :mod:`hypernode.core11.crypto`'s.

Two trees share the same state and methods (:class:`TreeState`): :class:`MerkleTree` holds every node in
a dict (what :class:`~hypernode.core11.log.Log` uses), and :class:`CachedTree` reads nodes on demand from
a :class:`NodeSource` (a core's storage) through a bounded LRU cache, holding only its roots, so a tree
of millions of blocks opens by reading its roots and stays in bounded memory. Proofs
(:mod:`hypernode.core11.proof`) are made and verified over either.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hypernode import flat_tree
from hypernode.core11.crypto import leaf_hash, parent_hash, tree_hash
from hypernode.errors import MissingTreeNode

__all__ = ["Node", "TreeState", "MerkleTree", "CachedTree", "NodeSource", "TreeBatch"]


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

    def __init__(self, tree: TreeState) -> None:
        self.tree = tree
        self.nodes: list[Node] = []
        self.roots = list(tree.roots)
        self.length = tree.length
        self.byte_length = tree.byte_length
        self.fork = tree.fork
        self.truncated_to: int | None = None

    def append(self, block: bytes | bytearray | memoryview) -> None:
        size = len(block)
        index = 2 * self.length
        node = Node(index, size, leaf_hash(block))
        nodes = self.nodes
        nodes.append(node)
        roots = self.roots
        depth = 0
        # each root it completes is its left sibling (flat_tree.sibling and .parent at a known depth)
        while roots and index ^ (2 << depth) == roots[-1].index:
            left = roots.pop()
            index = (index | (1 << depth)) & ~(2 << depth)
            depth += 1
            size += left.size
            node = Node(index, size, parent_hash(left, node))
            nodes.append(node)
        roots.append(node)
        self.length += 1
        self.byte_length += len(block)

    def hash(self) -> bytes:
        return tree_hash(self.roots)


class TreeState:
    """A tree's state at its head (length, roots, byte length, fork) and what can be read of its nodes;
    subclasses say where the nodes are (:meth:`get_node`)."""

    def __init__(self) -> None:
        self.roots: list[Node] = []
        self.length = 0
        self.byte_length = 0
        self.fork = 0

    def get_node(self, index: int) -> Node | None:
        """The node at flat-tree ``index`` if the tree has it, else None."""
        raise NotImplementedError

    def get(self, index: int) -> Node:
        """The node at flat-tree ``index``; :class:`MissingTreeNode` if the tree lacks it."""
        node = self.get_node(index)
        if node is None:
            raise MissingTreeNode(index // 2)
        return node

    def batch(self, blocks: Iterable[bytes | bytearray | memoryview] = ()) -> TreeBatch:
        """The state after appending ``blocks`` (the tree is unchanged until committed)."""
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

    def _check_batch(self, batch: TreeBatch) -> None:
        if batch.tree is not self:
            raise ValueError("a batch of another tree")
        if batch.truncated_to is None and (
                batch.fork != self.fork or len(batch.nodes) and batch.nodes[0].index != 2 * self.length):
            raise ValueError("a batch made before the tree changed")

    def _take_state(self, batch: TreeBatch) -> None:
        self.roots = list(batch.roots)
        self.length = batch.length
        self.byte_length = batch.byte_length
        self.fork = batch.fork


class MerkleTree(TreeState):
    """Every node of a core's tree, in memory, with the state at its head (length, roots, fork)."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes: dict[int, Node] = {}

    def get_node(self, index: int) -> Node | None:
        return self.nodes.get(index)

    def commit(self, batch: TreeBatch) -> None:
        """Take ``batch``'s state and nodes (a truncation drops every node past its length)."""
        self._check_batch(batch)
        if batch.truncated_to is not None:
            head = 2 * batch.truncated_to
            for index in [i for i in self.nodes if flat_tree.right_span(i) >= head]:
                del self.nodes[index]
        for n in batch.nodes:
            self.nodes[n.index] = n
        self._take_state(batch)

    def append(self, block: bytes | bytearray | memoryview) -> None:
        self.commit(self.batch([block]))


class NodeSource(Protocol):
    """Where a :class:`CachedTree` reads nodes (a :class:`~hypernode.core11.storage.CoreStorage` is one)."""

    def get_tree_node(self, index: int) -> Node | None: ...


class CachedTree(TreeState):
    """A tree whose nodes stay in ``source`` and are read on demand, the last ``cache_size`` of them kept
    in an LRU cache; only the roots are held. Whoever writes the source tells the tree what changed:
    :meth:`commit` after a batch of nodes or a truncation was stored, :meth:`add_nodes` after nodes
    were stored without a change of head."""

    def __init__(self, source: NodeSource, *, roots: Sequence[Node] = (), fork: int = 0,
                 cache_size: int = 16384) -> None:
        super().__init__()
        if cache_size < 1:
            raise ValueError("the cache holds at least one node")
        self.source = source
        self.cache_size = cache_size
        self._cache: OrderedDict[int, Node] = OrderedDict()
        self.reads = 0  # nodes read from the source (cache misses), for whoever measures
        length = flat_tree.right_span(roots[-1].index) // 2 + 1 if roots else 0
        self.set_state(roots, length, fork)

    def get_node(self, index: int) -> Node | None:
        # (flat_tree.right_span, inline: index + 2 ** depth - 1, depth its trailing one bits)
        if index + (~index & (index + 1)) - 1 >= 2 * self.length:
            return None
        cached = self._cache.get(index)
        if cached is not None:
            self._cache.move_to_end(index)
            return cached
        for r in self.roots:
            if r.index == index:
                return r
        self.reads += 1
        node = self.source.get_tree_node(index)
        if node is not None:
            self._remember(node)
        return node

    def _remember(self, node: Node) -> None:
        self._cache[node.index] = node
        self._cache.move_to_end(node.index)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def holds(self, node: Node) -> bool:
        """True if ``node`` is one the source has already (known from the cache or the roots: no read)."""
        return self._cache.get(node.index) == node or node in self.roots

    @property
    def cached(self) -> int:
        """How many nodes the cache holds now."""
        return len(self._cache)

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        """Nodes just stored in the source (kept in the cache, the newest last)."""
        cache = self._cache
        for n in nodes:
            if n.index in cache:
                cache.move_to_end(n.index)
            cache[n.index] = n
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    def commit(self, batch: TreeBatch) -> None:
        """Take ``batch``'s state once its nodes are in the source (a truncation forgets every cached
        node past its length)."""
        self._check_batch(batch)
        if batch.truncated_to is not None:
            self.forget_past(batch.truncated_to)
        self.add_nodes(batch.nodes)
        self._take_state(batch)

    def forget_past(self, length: int) -> None:
        """Drop every cached node that covers a block at or past ``length`` (deleted from the source)."""
        head = 2 * length
        for index in [i for i in self._cache if flat_tree.right_span(i) >= head]:
            del self._cache[index]

    def set_state(self, roots: Sequence[Node], length: int, fork: int) -> None:
        """Take a verified new head (an upgrade from a proof), its nodes already in the source."""
        if [r.index for r in roots] != flat_tree.full_roots(2 * length):
            raise ValueError(f"these nodes are not the roots of length {length}")
        self.roots = list(roots)
        self.length = length
        self.byte_length = sum(r.size for r in roots)
        self.fork = fork
