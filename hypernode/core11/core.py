"""A sparse, persistent hypercore 11 core over a :class:`~hypernode.core11.storage.CoreStorage`.

:class:`Core` is what the replicator and the API work on: the core's head (fork, length, signed tree
hash), the blocks it holds (any subset: a core opened by key fills in from proofs in any order), its
merkle tree nodes and its bitfield. It is synchronous and does no I/O of its own beyond its storage.

- Tree nodes are read from storage on demand through a bounded cache (a
  :class:`~hypernode.core11.tree.CachedTree`), and bitfield pages likewise
  (:class:`~hypernode.core11.bitfield.Bitfield`); opening reads the head, the roots and one bitfield
  page or so, whatever the core's length.
- Every change is one :class:`~hypernode.core11.storage.CoreWrite` batch: an append (blocks, nodes,
  bitfield pages, head, hints), a truncation (deleted blocks, nodes and bits, head, hints), a proof applied
  (block, every node it verified, bitfield page, head if it upgraded, hints, manifest if learnt). Memory
  changes only once that batch committed, so a failure leaves the core as it was.
- :meth:`Core.apply` verifies a proof (:func:`~hypernode.core11.proof.verify_proof`) before writing
  anything; a proof that does not verify raises :class:`~hypernode.errors.VerificationError` and stores
  nothing.

As in hypercore 11: appending sets the new blocks' bits and signs the new head; a truncation deletes the
blocks past the new length, every tree node that covers one of them, and their bits, and moves the fork
on; the contiguous length (blocks held from 0 without a hole) is kept as a hint in storage, grows when a
block fills the hole at its end and falls back to a truncation's length.

A newer fork (the writer truncated) is taken as hypercore's replicator takes it: :meth:`Core.reorg_from`
verifies the new fork's signed head from an upgrade proof from length 0 and compares its roots with this
core's tree, hash proofs given to :meth:`Core.update_reorg` narrow down where the forks part, and
:meth:`Core.apply_reorg` truncates to there and takes the new head in one batch. (:meth:`Core.apply`
refuses proofs of another fork, except that an empty core takes a newer one as it is.)

An upgrade proof made from an earlier length (the answer to a request sent before another peer's upgrade
came) is verified against the tree as it was then, and taken if it ties to the tree now; one that cannot
be tied is refused with a message that says to ask again.

Not here yet: clearing blocks, seek proofs, block encryption, and hypercore's conflict check (two signed
states of one length that differ freeze a core).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from hypernode import flat_tree
from hypernode.core11.bitfield import Bitfield
from hypernode.core11.crypto import tree_hash
from hypernode.core11.manifest import Manifest, core_key, default_signer_manifest, is_compat
from hypernode.core11.proof import (
    BlockRequest,
    HashRequest,
    Proof,
    UpgradeRequest,
    VerifiedProof,
    climb_proof,
    make_proof,
    verify_proof,
)
from hypernode.core11.storage import Auth, CoreStorage, CoreWrite, Head, Hints
from hypernode.core11.tree import CachedTree, MerkleTree, Node, TreeBatch, TreeState
from hypernode.core11.verifier import Verifier
from hypernode.errors import (
    BlockNotAvailableError,
    CorruptStorageError,
    NotWritableError,
    VerificationError,
)

__all__ = ["Core", "CoreListener", "Applied", "Reorg", "ReorgWant"]


def _delete_nodes_past(w: CoreWrite, length: int) -> None:
    """Delete every tree node that covers a block at or past ``length``."""
    head = 2 * length
    w.delete_tree_node_range(head, -1)
    # and the nodes left of the head that cover a block past it: parents of its last leaf (hypercore's
    # loop stops short of node 1 when truncating to 1 block, leaving it stale; this does not)
    i = head - 2
    while i >= 0:
        if i < head and flat_tree.right_span(i) >= head:
            w.delete_tree_node_range(i, i + 1)
        if flat_tree.offset(i) == 0 and i >= head:
            break  # (every node above has a greater index: the range deleted it)
        i = flat_tree.parent(i)


@dataclass(frozen=True, slots=True)
class Applied:
    """What :meth:`Core.apply` did: whether the head moved to a longer signed length, the length now, and
    the block it stored (None for a proof without a block)."""

    upgraded: bool
    length: int
    block: int | None


@dataclass(frozen=True, slots=True)
class ReorgWant:
    """What a :class:`Reorg` asks next: the hash of a block ``start`` <= i < ``end`` with ``nodes`` levels
    above it (a ``HashRequest(2 * i, nodes)``)."""

    start: int
    end: int
    nodes: int


@dataclass(eq=False)
class Reorg:
    """A newer fork of a core, its signed head verified, being compared with the core's tree to find how
    many blocks the two share (``ancestors``). While ``want`` is not None, a hash proof for one of its
    blocks, given to :meth:`Core.update_reorg`, narrows that down; then :meth:`Core.apply_reorg` truncates
    the core to ``ancestors`` and takes the new fork's head, as hypercore's ``ReorgBatch`` does."""

    fork: int
    length: int
    roots: list[Node]
    signature: bytes | None
    manifest: Manifest | None  # learnt with it, for a core that had none
    nodes: dict[int, Node]  # every node of the new fork verified so far
    tree_fork: int  # the core's fork and length when it began: it applies only to that state
    tree_length: int
    ancestors: int = 0
    diff: Node | None = None  # the highest node known to differ from the core's
    want: ReorgWant | None = None

    @property
    def finished(self) -> bool:
        """True once ``ancestors`` is known."""
        return self.want is None

    def request(self, index: int | None = None) -> HashRequest:
        """The hash request for block ``index`` of the wanted ones (default: the first)."""
        if self.want is None:
            raise ValueError("the reorg wants nothing more")
        index = self.want.start if index is None else index
        if not self.want.start <= index < self.want.end:
            raise ValueError(f"block {index} is not one the reorg wants")
        return HashRequest(2 * index, self.want.nodes)


class CoreListener(Protocol):
    """What a :class:`Core` tells the objects added with :meth:`Core.add_listener`, synchronously, inside
    the call that changed it (a listener does no I/O and must not raise): blocks ``start`` <= i < ``end``
    were stored from a peer, or (``start`` and ``end`` None) the head moved: an append, a truncation, an
    upgrade or a reorg. That is how every live replication of a core learns of an append made through
    another (:mod:`hypernode.core11.replicate` listens)."""

    def core_changed(self, core: Core, start: int | None, end: int | None) -> None: ...


class Core:
    """A hypercore 11 core on ``storage``: resumed from what the storage holds (head, hints, bitfield),
    or empty. ``node_cache`` tree nodes and ``page_cache`` bitfield pages are kept in memory at most."""

    def __init__(self, storage: CoreStorage, *, node_cache: int = 16384, page_cache: int = 64) -> None:
        self.storage = storage
        self._listeners: list[CoreListener] = []
        auth = storage.get_auth()
        self._auth = auth
        self.key = auth.key
        self.discovery_key = auth.discovery_key
        self._where = f"hypercore 11 core {self.discovery_key.hex()[:16]}"
        if auth.manifest is not None and not is_compat(auth.key, auth.manifest) \
                and core_key(auth.manifest) != auth.key:
            raise CorruptStorageError(self._where, "its manifest does not hash to its key")
        self._verifier = self._make_verifier(auth.manifest)
        if auth.key_pair is not None and not any(
                s.public_key == auth.key_pair.public_key for s in self._verifier.manifest.signers):
            raise CorruptStorageError(self._where, "its key pair is not one of its manifest's signers")

        head = storage.get_head()
        self.signature: bytes | None = None
        roots: list[Node] = []
        fork = 0
        if head is not None:
            for index in flat_tree.full_roots(2 * head.length):
                node = storage.get_tree_node(index)
                if node is None:
                    raise CorruptStorageError(self._where, f"tree node {index}, a root of its head, "
                                                           "is missing")
                roots.append(node)
            fork = head.fork
            self.signature = head.signature
        self._tree = CachedTree(storage, roots=roots, fork=fork, cache_size=node_cache)
        if head is not None and head.length and self._tree.hash() != head.root_hash:
            raise CorruptStorageError(self._where, "its roots do not hash to its head's tree hash")
        self._bitfield = Bitfield(storage, cache_pages=page_cache)

        hint = min(storage.get_hints().contiguous_length, self.length)
        self._contiguous = self._bitfield.find_first(False, hint, self.length)
        if self._contiguous != storage.get_hints().contiguous_length:
            w = storage.write()
            w.set_hints(Hints(self._contiguous))
            w.commit()

    @classmethod
    def create(cls, storage: CoreStorage, *, node_cache: int = 16384, page_cache: int = 64) -> Core:
        """The core on ``storage`` (whose auth is set; its head may be None: a new or an empty core)."""
        return cls(storage, node_cache=node_cache, page_cache=page_cache)

    def __repr__(self) -> str:
        return (f"<Core {self.discovery_key.hex()[:16]} length={self.length} fork={self.fork} "
                f"contiguous={self.contiguous_length}{' writable' if self.writable else ''}>")

    # -- state ----------------------------------------------------------------------------------------

    def _make_verifier(self, manifest: Manifest | None) -> Verifier:
        # (a core known by key alone takes the key as a compat core's public key until a manifest comes,
        # as hypercore does)
        return Verifier(self.key, manifest if manifest is not None else default_signer_manifest(self.key))

    @property
    def manifest(self) -> Manifest | None:
        """The manifest, once known (a core opened by key alone learns it from a peer)."""
        return self._auth.manifest

    @property
    def writable(self) -> bool:
        """True if this store holds a key pair that signs for the core."""
        return self._auth.key_pair is not None

    @property
    def length(self) -> int:
        return self._tree.length

    @property
    def byte_length(self) -> int:
        return self._tree.byte_length

    @property
    def fork(self) -> int:
        return self._tree.fork

    @property
    def contiguous_length(self) -> int:
        """How many blocks are held from block 0 without a hole."""
        return self._contiguous

    @property
    def tree(self) -> CachedTree:
        """The merkle tree (its nodes read from storage on demand)."""
        return self._tree

    @property
    def bitfield(self) -> Bitfield:
        """Which blocks are held, in hypercore 11's bitfield pages."""
        return self._bitfield

    def roots(self, length: int | None = None) -> list[Node]:
        """The tree's roots at ``length`` (default: now)."""
        return list(self._tree.roots) if length is None else self._tree.roots_at(length)

    def tree_hash(self, length: int | None = None) -> bytes:
        """The tree hash at ``length`` (default: now); :class:`~hypernode.errors.MissingTreeNode` if a
        sparse core lacks a root of that length."""
        return self._tree.hash(length)

    # -- blocks ---------------------------------------------------------------------------------------

    def has(self, index: int) -> bool:
        """True if block ``index`` is held here."""
        return 0 <= index < self.length and self._bitfield.get(index)

    def has_all(self, start: int, end: int) -> bool:
        """True if every block ``start`` <= i < ``end`` is held (and ``end`` is within the length)."""
        if start >= end:
            return True
        if start < 0 or end > self.length:
            return False
        return self._bitfield.find_first(False, start, end) >= end

    def get(self, index: int) -> bytes:
        """Block ``index``; :class:`~hypernode.errors.BlockNotAvailableError` if it is not held here."""
        if not (0 <= index < self._tree.length and self._bitfield.get(index)):
            raise BlockNotAvailableError(f"block {index} is not held here (length {self.length})")
        data = self.storage.get_block(index)
        if data is None:
            raise CorruptStorageError(self._where, f"block {index} is marked held but is missing")
        return data

    def ranges(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        """The runs ``[s, e)`` of held blocks within ``start`` <= i < ``end`` (default: the length),
        read from the bitfield as the iteration goes (list it first to change the core meanwhile)."""
        end = self.length if end is None else min(end, self.length)
        return self._bitfield.runs(max(start, 0), end)

    def missing(self, start: int, end: int) -> Iterator[int]:
        """The indexes ``start`` <= i < ``end`` of blocks not held here (past the length: none are), read
        as the iteration goes like :meth:`ranges`."""
        i = max(start, 0)
        for s, e in self.ranges(i, end):
            yield from range(i, s)
            i = e
        yield from range(i, end)

    def missing_nodes(self, index: int) -> int:
        """How many levels of tree node ``index``'s path (itself first) this core lacks below the first
        node it has: the ``nodes`` of a block (``index = 2 * block``) or hash request, as hypercore's
        ``MerkleTree.missingNodes`` counts them. 0 if the node is past the length."""
        head = 2 * self.length
        if index < 0 or flat_tree.right_span(index) >= head:
            return 0
        count = 0
        i = index
        while flat_tree.right_span(i) < head and self._tree.get_node(i) is None:
            count += 1
            i = flat_tree.parent(i)
        return count

    # -- writing --------------------------------------------------------------------------------------

    def append(self, blocks: bytes | Iterable[bytes]) -> int:
        """Append one block or a batch of them as one signed state; returns the new length."""
        key_pair = self._auth.key_pair
        if key_pair is None:
            raise NotWritableError(f"{self._where} is read-only: no key pair signs for it")
        batch_blocks = [blocks] if isinstance(blocks, bytes | bytearray | memoryview) else list(blocks)
        if not batch_blocks:
            return self.length
        batch = self._tree.batch(batch_blocks)
        root_hash = batch.hash()
        signature = self._verifier.sign(root_hash, batch.length, batch.fork, key_pair)
        old = self.length
        w = self.storage.write()
        w.put_blocks(old, batch_blocks)
        w.put_tree_nodes(batch.nodes)
        pages = self._bitfield.changed_pages(old, batch.length, True)
        for index, page in pages.items():
            w.put_bitfield_page(index, page)
        contiguous = self._grown_contiguous(old, batch.length, pages)
        if contiguous != self._contiguous:
            w.set_hints(Hints(contiguous))
        w.set_head(Head(batch.fork, batch.length, root_hash, signature))
        w.commit()
        self._took(batch, signature, pages, contiguous)
        return self.length

    def truncate(self, length: int, fork: int | None = None) -> None:
        """Cut the core back to ``length`` blocks as a new signed state with fork ``fork`` (default: one
        more): the blocks past it, every tree node covering one of them and their bits are deleted."""
        key_pair = self._auth.key_pair
        if key_pair is None:
            raise NotWritableError(f"{self._where} is read-only: no key pair signs for it")
        if not 0 <= length <= self.length:
            raise ValueError(f"truncating to {length} is no truncation of a core of length {self.length}")
        prologue = self._verifier.prologue
        if prologue is not None and length < prologue.length:
            raise ValueError(f"truncating to {length} breaks the prologue of length {prologue.length}")
        batch = self._tree.truncation(length, fork)
        root_hash = batch.hash()
        signature = self._verifier.sign(root_hash, batch.length, batch.fork, key_pair)
        w = self.storage.write()
        pages, contiguous = self._cut(w, length)
        w.set_head(Head(batch.fork, batch.length, root_hash, signature))
        w.commit()
        self._took(batch, signature, pages, contiguous)

    def _grown_contiguous(self, start: int, end: int, pages: dict[int, bytes]) -> int:
        """The contiguous length once blocks ``start`` <= i < ``end`` are held (``pages``: their bits)."""
        c = self._contiguous
        if not start <= c <= end:
            return c
        return self._bitfield.find_first(False, end, max(self.length, end), overlay=pages)

    def _cut(self, w: CoreWrite, length: int) -> tuple[dict[int, bytes], int]:
        """Write into ``w`` the deletion of every block from ``length`` on, the tree nodes covering one
        and their bits (a truncation, or a reorg down to where the forks part); returns the bitfield
        pages written and the contiguous length after it."""
        w.delete_block_range(length, self.length)
        _delete_nodes_past(w, length)
        pages = self._bitfield.changed_pages(length, self.length, False)
        for index, page in pages.items():
            w.put_bitfield_page(index, page)
        contiguous = min(self._contiguous, length)
        if contiguous != self._contiguous:
            w.set_hints(Hints(contiguous))
        return pages, contiguous

    def _took(self, batch: TreeBatch, signature: bytes | None, pages: dict[int, bytes],
              contiguous: int) -> None:
        self._tree.commit(batch)
        self.signature = signature
        self._bitfield.take(pages)
        self._contiguous = contiguous
        self._tell(None, None)

    # -- listeners ------------------------------------------------------------------------------------

    def add_listener(self, listener: CoreListener) -> None:
        """Tell ``listener`` synchronously of every change (see :class:`CoreListener`)."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: CoreListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _tell(self, start: int | None, end: int | None) -> None:
        for listener in list(self._listeners):
            listener.core_changed(self, start, end)

    # -- proofs ---------------------------------------------------------------------------------------

    def proof(self, *, block: BlockRequest | None = None, hash: HashRequest | None = None,
              upgrade: UpgradeRequest | None = None) -> Proof:
        """The proof answering a request, as a JS core makes it. Raises
        :class:`~hypernode.errors.BlockNotAvailableError` for a block not held here,
        :class:`~hypernode.errors.MissingTreeNode` (one of those) when this sparse core lacks a node the
        proof needs, ``ValueError`` for a request no core of this length answers."""
        if block is not None and not self.has(block.index):
            raise BlockNotAvailableError(f"block {block.index} is not held here (length {self.length})")
        return make_proof(self._tree, self.signature, block=block, hash=hash, upgrade=upgrade,
                          get_block=self.get)

    def apply(self, proof: Proof, *, manifest: Manifest | None = None) -> Applied:
        """Verify ``proof`` (from a peer, answering this core's request), then store in one batch its
        block, every node it verified, the block's bit, the new head if it upgraded, the contiguous length
        and ``manifest`` (the peer's, for a core opened by key alone). Raises
        :class:`~hypernode.errors.VerificationError`, storing nothing, if it does not verify, is of another
        fork (a newer one goes through :meth:`reorg_from`) or upgrades from a length other than this
        core's."""
        auth = self._auth
        verifier, learnt = self._verifier_for(manifest)
        tree: TreeState = self._tree
        if proof.fork != self.fork:
            if not (self.length == 0 and proof.fork > self.fork and proof.upgrade is not None):
                raise VerificationError(f"a proof of fork {proof.fork}, this core is at fork {self.fork}: "
                                        "a newer fork goes through reorg_from (a reorg), an older one is "
                                        "stale")
            # an empty core takes a newer fork as it is: there is nothing of the old one to drop
            tree = _empty_tree(proof.fork)
        older = proof.upgrade is not None and proof.upgrade.start < self.length and tree is self._tree
        if older:
            # the answer to a request made before this core grew (another peer's upgrade came first):
            # verified against the tree as it was then, and taken if it ties to the tree as it is now
            assert proof.upgrade is not None
            try:
                tree = _TreeAt(self._tree, proof.upgrade.start)
            except BlockNotAvailableError as e:
                raise VerificationError(f"an upgrade from length {proof.upgrade.start}, whose roots this "
                                        "core lacks") from e
        elif proof.upgrade is not None and proof.upgrade.start != self.length:
            raise VerificationError(f"an upgrade from length {proof.upgrade.start}, this core has "
                                    f"{self.length} blocks")
        verified = _verify(tree, verifier, proof)
        upgraded = proof.upgrade is not None
        if older:
            upgraded = self._ties(verified)
        if upgraded and auth.manifest is None and learnt is None:
            learnt = verifier.manifest  # the compat manifest the signature verified under, as JS keeps it

        w = self.storage.write()
        index: int | None = None
        pages: dict[int, bytes] = {}
        contiguous = self._contiguous
        if proof.block is not None:
            index = proof.block.index
            w.put_block(index, proof.block.value)
            if not self._bitfield.get(index):
                pages = self._bitfield.changed_pages(index, index + 1, True)
                for p, page in pages.items():
                    w.put_bitfield_page(p, page)
                contiguous = self._grown_contiguous(index, index + 1, pages)
                if contiguous != self._contiguous:
                    w.set_hints(Hints(contiguous))
        nodes = {n.index: n for n in verified.nodes}
        # a proof repeats the nodes above a block up to what the request said was missing: those the
        # storage has already (the cache knows) are not written again
        w.put_tree_nodes([n for n in nodes.values() if not self._tree.holds(n)])
        if upgraded:
            w.set_head(Head(verified.fork, verified.length, verified.tree_hash, verified.signature))
        new_auth: Auth | None = None
        if learnt is not None:
            new_auth = dataclasses.replace(auth, manifest=learnt)
            w.set_auth(new_auth)
        w.commit()

        if new_auth is not None:
            self._auth = new_auth
            self._verifier = verifier
        if upgraded:
            self._tree.set_state(verified.roots, verified.length, verified.fork)
            self.signature = verified.signature
        self._tree.add_nodes(nodes.values())
        self._bitfield.take(pages)
        self._contiguous = contiguous
        if index is not None:
            self._tell(index, index + 1)
        elif upgraded:
            self._tell(None, None)
        return Applied(upgraded, self.length, index)

    def _ties(self, verified: VerifiedProof) -> bool:
        """For a proof verified from an older length: True if its signed state extends this core's (each
        root here is a node it proved), False if it is this core's or an older one (its roots are nodes
        here, as hypercore's ``downgrade`` checks: only its block and nodes are taken), else
        :class:`~hypernode.errors.VerificationError`."""
        if verified.length > self.length:
            proved = {n.index: n for n in verified.nodes}
            if all(proved.get(r.index) == r for r in self._tree.roots):
                return True
            raise VerificationError(f"an upgrade from an older length to {verified.length} that this core "
                                    f"cannot tie to its own {self.length} blocks: ask again")
        if all(self._same(r) for r in verified.roots):
            return False
        raise VerificationError(f"a signed length {verified.length} whose roots this core does not have "
                                "(it may lack them: ask again)")

    def _verifier_for(self, manifest: Manifest | None) -> tuple[Verifier, Manifest | None]:
        """The verifier for a proof that came with ``manifest``, and the manifest to keep if it is new."""
        if manifest is None or self._auth.manifest is not None:
            return self._verifier, None
        if not is_compat(self.key, manifest) and core_key(manifest) != self.key:
            raise VerificationError("the peer's manifest does not hash to the core's key")
        return self._make_verifier(manifest), manifest

    # -- reorgs ---------------------------------------------------------------------------------------

    def reorg_from(self, proof: Proof, *, manifest: Manifest | None = None) -> Reorg:
        """Begin taking a newer fork from ``proof``, the answer to an upgrade request from length 0 (what
        JS sends when its fork is newer): verify its signed head and compare its roots with this core's
        tree. Nothing is stored; :class:`~hypernode.errors.VerificationError` if it does not verify."""
        if proof.fork <= self.fork:
            raise VerificationError(f"a proof of fork {proof.fork} is no newer than this core's {self.fork}")
        if proof.upgrade is None or proof.upgrade.start != 0:
            raise VerificationError("a reorg begins with an upgrade proof from length 0")
        verifier, learnt = self._verifier_for(manifest)
        verified = _verify(_empty_tree(proof.fork), verifier, proof)
        if self._auth.manifest is None and learnt is None:
            learnt = verifier.manifest
        r = Reorg(proof.fork, verified.length, verified.roots, verified.signature, learnt,
                  {n.index: n for n in verified.nodes}, self.fork, self.length)
        for root in r.roots:
            if not self._same(root):
                self._diff_at(r, root)
                break
        else:  # every root of the new fork is this core's: it is a prefix of this one
            r.ancestors = r.length
        return r

    def update_reorg(self, reorg: Reorg, proof: Proof) -> bool:
        """Take the answer to ``reorg.request(...)``: check that it hashes up to the node that differs,
        and go down it to the first node that still does. True once the reorg is finished."""
        if reorg.want is None:
            return True
        if proof.fork != reorg.fork:
            raise VerificationError(f"a proof of fork {proof.fork} for a reorg to fork {reorg.fork}")
        try:
            climbed = climb_proof(proof)
        except (ValueError, IndexError, OverflowError) as e:
            raise VerificationError(f"a malformed proof: {e}") from e
        if climbed is None or climbed[0] != reorg.diff:
            raise VerificationError("the proof does not hash up to the node the reorg asked about")
        nodes = {n.index: n for n in climbed[1]}
        i = climbed[0].index
        diff: Node | None = None
        while i & 1:
            left = nodes.get(flat_tree.left_child(i))
            right = nodes.get(flat_tree.right_child(i))
            if left is None or right is None:
                break
            diff = left if not self._same(left) else right
            i = diff.index
        if diff is None:
            raise VerificationError("the proof does not go below the node the reorg asked about")
        reorg.nodes.update(nodes)
        self._diff_at(reorg, diff)
        return reorg.want is None

    def apply_reorg(self, reorg: Reorg) -> int:
        """Take a finished reorg in one batch: the blocks from ``reorg.ancestors`` on, every node covering
        one, and their bits are deleted (as a truncation), the new fork's nodes and head stored. Returns
        the blocks kept. ``ValueError`` if it is not finished or the core changed since it began."""
        if reorg.want is not None:
            raise ValueError("the reorg is not finished: it wants a hash proof still")
        if (self.fork, self.length) != (reorg.tree_fork, reorg.tree_length):
            raise ValueError("the core changed since the reorg began")
        kept = min(reorg.ancestors, self.length)
        w = self.storage.write()
        pages, contiguous = self._cut(w, kept)
        for node in reorg.nodes.values():
            w.put_tree_node(node)
        w.set_head(Head(reorg.fork, reorg.length, tree_hash(reorg.roots), reorg.signature))
        new_auth: Auth | None = None
        if reorg.manifest is not None and self._auth.manifest is None:
            new_auth = dataclasses.replace(self._auth, manifest=reorg.manifest)
            w.set_auth(new_auth)
        w.commit()

        if new_auth is not None:
            self._auth = new_auth
            self._verifier = self._make_verifier(reorg.manifest)
        self._tree.forget_past(kept)
        self._tree.set_state(reorg.roots, reorg.length, reorg.fork)
        self._tree.add_nodes(reorg.nodes.values())
        self.signature = reorg.signature
        self._bitfield.take(pages)
        self._contiguous = contiguous
        self._tell(None, None)
        return kept

    def _same(self, node: Node) -> bool:
        """True if this core has ``node`` as it is (same index, size and hash)."""
        return self._tree.get_node(node.index) == node

    def _diff_at(self, reorg: Reorg, diff: Node) -> None:
        """``diff`` is the highest node known to differ: the blocks left of it are shared; what is under
        it and held here is what to ask about next (nothing when it is a leaf or covers no block here)."""
        start = flat_tree.left_span(diff.index) // 2
        end = min(reorg.tree_length, flat_tree.right_span(diff.index) // 2 + 1)
        reorg.ancestors = start
        reorg.diff = diff
        if diff.index & 1 == 0 or end <= start:
            reorg.want = None
        else:
            reorg.want = ReorgWant(start, end, flat_tree.depth(diff.index))

    def set_manifest(self, manifest: Manifest) -> None:
        """Keep ``manifest`` for a core opened by key alone (it must hash to the key, or be a compat core's
        one signer); a no-op if the core has one already."""
        if self._auth.manifest is not None:
            return
        if not is_compat(self.key, manifest) and core_key(manifest) != self.key:
            raise VerificationError("the manifest does not hash to the core's key")
        auth = dataclasses.replace(self._auth, manifest=manifest)
        w = self.storage.write()
        w.set_auth(auth)
        w.commit()
        self._auth = auth
        self._verifier = self._make_verifier(manifest)


def _empty_tree(fork: int) -> MerkleTree:
    tree = MerkleTree()
    tree.fork = fork
    return tree


def _verify(tree: TreeState, verifier: Verifier, proof: Proof) -> VerifiedProof:
    try:
        return verify_proof(tree, verifier, proof)
    except (ValueError, IndexError, OverflowError) as e:  # (nodes at impossible indexes, say)
        raise VerificationError(f"a malformed proof: {e}") from e


class _TreeAt(TreeState):
    """A core's tree as it was at an earlier ``length`` of the same fork (its roots read then)."""

    def __init__(self, tree: CachedTree, length: int) -> None:
        super().__init__()
        self._base = tree
        self.roots = tree.roots_at(length)
        self.length = length
        self.byte_length = sum(r.size for r in self.roots)
        self.fork = tree.fork

    def get_node(self, index: int) -> Node | None:
        if flat_tree.right_span(index) >= 2 * self.length:
            return None
        return self._base.get_node(index)
