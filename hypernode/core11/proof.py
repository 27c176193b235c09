"""Merkle proofs of hypercore 10/11: making them from a tree, and checking them against one.

A proof answers a request for a block (or a tree node's hash) and/or an upgrade (a longer signed length).
Its parts, as hypercore 11 sends them:

- ``block``: the block's index and value, and the sibling nodes from its leaf up to the first node the
  requester has (``nodes`` in the request: how many levels it lacks), or, with an upgrade that reaches
  the block, up to a root of the new length.
- ``hash``: the same for a tree node instead of a block (its own node comes first).
- ``upgrade``: ``start`` (the requester's length), ``length`` (how many blocks it grows by), the nodes
  that take the requester's roots to the roots at ``start + length``, ``additional_nodes`` taking those to
  the sender's own length when it has more, and the sender's signature of that length.

:func:`make_proof` builds the proof a JS core would send for a request (the same nodes in the same order);
:func:`verify_proof` rebuilds the new roots from a proof and the requester's tree state and checks the
signature with the core's verifier, raising :class:`~hypernode.errors.VerificationError` on anything
that does not fit. Both work over any :class:`~hypernode.core11.tree.TreeState`: the nodes are read with
``get``/``get_node``. :func:`climb_proof` hashes a proof's block or hash part up without a tree (what a
reorg compares, in :mod:`hypernode.core11.core`). Not here yet: seek proofs (by byte offset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypernode import flat_tree
from hypernode.core11.crypto import leaf_hash, parent_hash, tree_hash
from hypernode.core11.tree import Node, TreeState
from hypernode.core11.verifier import Verifier
from hypernode.errors import VerificationError

__all__ = ["BlockRequest", "HashRequest", "UpgradeRequest", "DataBlock", "DataHash", "DataUpgrade", "Proof",
           "make_proof", "verify_proof", "VerifiedProof", "climb_proof"]


@dataclass(frozen=True)
class BlockRequest:
    index: int
    nodes: int = 0


@dataclass(frozen=True)
class HashRequest:
    index: int
    nodes: int = 0


@dataclass(frozen=True)
class UpgradeRequest:
    start: int
    length: int


@dataclass(frozen=True)
class DataBlock:
    index: int
    value: bytes
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class DataHash:
    index: int
    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class DataUpgrade:
    start: int
    length: int
    nodes: tuple[Node, ...]
    additional_nodes: tuple[Node, ...]
    signature: bytes


@dataclass(frozen=True)
class Proof:
    fork: int
    block: DataBlock | None = None
    hash: DataHash | None = None
    upgrade: DataUpgrade | None = None


def _contains(root: int, index: int) -> bool:
    return flat_tree.left_span(root) <= index <= flat_tree.right_span(root)


def _path(tree: TreeState, start: int, root: int, include_start: bool) -> list[Node]:
    """The siblings from ``start`` up to (not including) ``root``, bottom up (and ``start`` first)."""
    out = [tree.get(start)] if include_start else []
    i = start
    while i != root:
        if flat_tree.depth(i) > 64:
            raise ValueError("no path to that root")
        out.append(tree.get(flat_tree.sibling(i)))
        i = flat_tree.parent(i)
    return out


def _connect(tree: TreeState, start: int, end: int) -> list[int]:
    """The roots of ``end`` that a tree of ``start`` blocks lacks: for a root holding the last known leaf,
    the siblings right of it up to that root; then every whole root after (all as indexes)."""
    frm, to = 2 * start, 2 * end
    out: list[int] = []
    for root in flat_tree.full_roots(to):
        if flat_tree.right_span(root) + 1 < frm:
            continue  # wholly known
        if frm and _contains(root, frm - 2) and flat_tree.right_span(root) > frm - 2:
            i = frm - 2
            while i != root:
                s = flat_tree.sibling(i)
                if s > i:
                    out.append(s)
                i = flat_tree.parent(i)
            continue
        out.append(root)
    return out


def make_proof(tree: TreeState, signature: bytes | None, *, block: BlockRequest | None = None,
               hash: HashRequest | None = None, upgrade: UpgradeRequest | None = None,
               values: list[bytes] | None = None, get_block: Callable[[int], bytes] | None = None) -> Proof:
    """The proof for a request, from a tree (a :class:`~hypernode.core11.tree.MerkleTree` or a
    :class:`~hypernode.core11.tree.CachedTree`); for ``block``, the blocks are ``values`` or what
    ``get_block(index)`` gives. Raises :class:`~hypernode.errors.MissingTreeNode` if the tree lacks a node
    the proof needs (a sparse core), ``ValueError`` for a request no tree of this length answers."""
    head = 2 * tree.length
    if head == 0:
        return Proof(fork=tree.fork)
    frm = 2 * upgrade.start if upgrade else 0
    to = frm + 2 * upgrade.length if upgrade else head
    if frm >= to or to > head:
        raise ValueError("invalid upgrade")
    want: tuple[int, bool, int, int] | None = None  # (tree index, is a block, levels lacked, last block)
    if block is not None:
        want = (2 * block.index, True, block.nodes, block.index)
    elif hash is not None:
        want = (hash.index, False, hash.nodes, flat_tree.right_span(hash.index) // 2)
    if want is not None and want[0] >= head:
        raise ValueError("the requested block is past the tree")

    node_path: list[Node] | None = None
    sub_tree = head
    if want is not None and (upgrade is None or want[3] < upgrade.start):
        sub_tree = want[0]
        for _ in range(want[2]):
            sub_tree = flat_tree.parent(sub_tree)
            if _contains(sub_tree, to):
                raise ValueError("the request's nodes reach past the tree")
        node_path = _path(tree, want[0], sub_tree, include_start=not want[1])
    elif want is not None:
        sub_tree = want[0]

    up_nodes: list[Node] = []
    additional: list[Node] = []
    if upgrade is not None:
        for index in _connect(tree, upgrade.start, upgrade.start + upgrade.length):
            if want is not None and node_path is None and _contains(index, sub_tree):
                node_path = _path(tree, want[0], index, include_start=not want[1])
            else:
                up_nodes.append(tree.get(index))
        if head > to:
            additional = [tree.get(i) for i in _connect(tree, to // 2, tree.length)]

    if want is not None and node_path is None:
        raise ValueError("the requested block is not under the upgrade's roots")
    data_block = data_hash = None
    if block is not None and node_path is not None:
        if get_block is not None:
            value = get_block(block.index)
        elif values is not None:
            value = values[block.index]
        else:
            raise ValueError("a block proof needs the blocks")
        data_block = DataBlock(block.index, value, tuple(node_path))
    elif hash is not None and node_path is not None:
        data_hash = DataHash(hash.index, tuple(node_path))
    data_upgrade = None
    if upgrade is not None:
        if signature is None:
            raise ValueError("an upgrade needs the signature of the tree's length")
        data_upgrade = DataUpgrade(upgrade.start, upgrade.length, tuple(up_nodes), tuple(additional),
                                   signature)
    return Proof(fork=tree.fork, block=data_block, hash=data_hash, upgrade=data_upgrade)


@dataclass
class VerifiedProof:
    """What a proof proved: the new state (``roots``/``length``/``fork``/``signature``, when it upgraded),
    the block's value (if any) and every node it verified."""

    length: int
    fork: int
    roots: list[Node]
    signature: bytes | None
    value: bytes | None = None
    nodes: list[Node] = field(default_factory=list)

    @property
    def tree_hash(self) -> bytes:
        return tree_hash(self.roots)


class _Queue:
    """The proof's nodes, taken in the order the verifier expects them, plus one node proved elsewhere."""

    def __init__(self, nodes: tuple[Node, ...], extra: Node | None = None) -> None:
        self.nodes = nodes
        self.i = 0
        self.extra = extra

    def left(self) -> int:
        return len(self.nodes) - self.i + (self.extra is not None)

    def take(self, index: int) -> Node:
        if self.extra is not None and self.extra.index == index:
            node, self.extra = self.extra, None
            return node
        if self.i >= len(self.nodes):
            raise VerificationError(f"proof lacks node {index}")
        node = self.nodes[self.i]
        self.i += 1
        if node.index != index:
            raise VerificationError(f"proof has node {node.index} where node {index} belongs")
        return node


def _climb(start: Node, q: _Queue, out: list[Node]) -> Node:
    cur = start
    out.append(cur)
    while q.left():
        sib = q.take(flat_tree.sibling(cur.index))
        if flat_tree.depth(cur.index) >= 62:
            raise VerificationError("proof climbs past any tree")
        cur = Node(flat_tree.parent(cur.index), cur.size + sib.size, parent_hash(cur, sib))
        out += (sib, cur)
    return cur


def climb_proof(proof: Proof) -> tuple[Node, list[Node]] | None:
    """The node a proof's block or hash part hashes up to, and every node on the way (given or made), or
    None if it has neither; nothing is checked against a tree (the caller compares the top node with one
    it trusts). Raises :class:`VerificationError` for nodes out of place."""
    out: list[Node] = []
    if proof.block is not None:
        value = proof.block.value
        leaf = Node(2 * proof.block.index, len(value), leaf_hash(value))
        return _climb(leaf, _Queue(proof.block.nodes), out), out
    if proof.hash is not None:
        q = _Queue(proof.hash.nodes)
        return _climb(q.take(proof.hash.index), q, out), out
    return None


class _Roots:
    """The requester's roots growing into the sender's as an upgrade's nodes arrive."""

    def __init__(self, tree: TreeState, out: list[Node]) -> None:
        self.roots = list(tree.roots)
        self.length = tree.length
        self.out = out
        self.added: list[Node] = []  # every node the upgrade gave or made

    def add(self, node: Node) -> None:
        """Append a root whose subtree starts right after the current ones; merge with its siblings."""
        if flat_tree.left_span(node.index) != 2 * self.length:
            raise VerificationError(f"proof node {node.index} does not follow the tree")
        self.length += (flat_tree.right_span(node.index) - flat_tree.left_span(node.index)) // 2 + 1
        self.roots.append(node)
        self.out.append(node)
        self.added.append(node)
        while len(self.roots) > 1 and flat_tree.sibling(self.roots[-1].index) == self.roots[-2].index:
            b, a = self.roots.pop(), self.roots.pop()
            parent = Node(flat_tree.parent(a.index), a.size + b.size, parent_hash(a, b))
            self.roots.append(parent)
            self.out.append(parent)
            self.added.append(parent)


def verify_proof(tree: TreeState, verifier: Verifier, proof: Proof) -> VerifiedProof:
    """Check ``proof`` against the requester's ``tree`` (its roots and nodes) and ``verifier``; raises
    :class:`VerificationError` unless every node hashes up to a root that is either signed (the
    upgrade's signature) or one the tree already has."""
    out: list[Node] = []
    block_root: Node | None = None
    value: bytes | None = None
    if proof.block is not None:
        value = proof.block.value
        leaf = Node(2 * proof.block.index, len(value), leaf_hash(value))
        block_root = _climb(leaf, _Queue(proof.block.nodes), out)
    elif proof.hash is not None:
        q = _Queue(proof.hash.nodes)
        block_root = _climb(q.take(proof.hash.index), q, out)

    if proof.fork != tree.fork:
        raise VerificationError(f"a proof of fork {proof.fork}, the tree is at fork {tree.fork}")
    up = proof.upgrade
    if up is None:
        if block_root is None:
            raise VerificationError("an empty proof")
        known = tree.get_node(block_root.index)
        if known is None or known.hash != block_root.hash or known.size != block_root.size:
            raise VerificationError(f"proof's node {block_root.index} is not the tree's")
        return VerifiedProof(tree.length, tree.fork, list(tree.roots), None, value, out)

    if up.start != tree.length:
        raise VerificationError(f"upgrade from {up.start}, but the tree has {tree.length} blocks")
    if up.length <= 0:
        raise VerificationError("an upgrade of no blocks")
    q = _Queue(up.nodes, block_root)
    grown = _Roots(tree, out)
    targets = flat_tree.full_roots(2 * (up.start + up.length))
    kept = 0
    for root in targets:
        if kept < len(tree.roots) and tree.roots[kept].index == root:
            kept += 1
            continue
        if kept < len(tree.roots):
            # the requester's remaining roots lie under this one: add the right siblings completing it
            kept = len(tree.roots)
            while grown.roots[-1].index != root:
                i = grown.roots[-1].index
                if flat_tree.depth(i) >= flat_tree.depth(root) or not _contains(root, i):
                    raise VerificationError("upgrade nodes do not complete a root")
                grown.add(q.take(flat_tree.sibling(i)))
            continue
        grown.add(q.take(root))
    if [r.index for r in grown.roots] != targets:
        raise VerificationError("upgrade nodes do not give the roots of the new length")
    if q.i != len(q.nodes):
        raise VerificationError("upgrade has nodes left over")

    for node in up.additional_nodes:
        grown.add(node)
    if [r.index for r in grown.roots] != flat_tree.full_roots(2 * grown.length):
        raise VerificationError("additional nodes do not give roots of a length")
    if not verifier.verify(tree_hash(grown.roots), grown.length, proof.fork, up.signature):
        raise VerificationError(f"the signature of length {grown.length} does not verify")
    if q.extra is not None:
        # the block's path did not meet the upgrade's: it must end at a node the requester has, or one
        # the signed upgrade just proved (a JS requester only takes the first)
        known = tree.get_node(q.extra.index) or {n.index: n for n in grown.added}.get(q.extra.index)
        if known is None or known.hash != q.extra.hash or known.size != q.extra.size:
            raise VerificationError(f"proof's node {q.extra.index} is not the tree's")
    return VerifiedProof(grown.length, proof.fork, grown.roots, up.signature, value, out)
