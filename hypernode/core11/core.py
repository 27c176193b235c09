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

Not here yet: proofs of another fork (a reorg: :meth:`Core.apply` refuses them with a
:class:`~hypernode.errors.VerificationError` that says so, but for an empty core, which takes the newer
fork as it is), an upgrade proof made from a length other than this core's (refused the same way: the
replicator asks again), clearing blocks, seek proofs and block encryption.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hypernode import flat_tree
from hypernode.core11.bitfield import Bitfield
from hypernode.core11.manifest import Manifest, core_key, default_signer_manifest, is_compat
from hypernode.core11.proof import BlockRequest, HashRequest, Proof, UpgradeRequest, make_proof, verify_proof
from hypernode.core11.storage import Auth, CoreStorage, Head, Hints
from hypernode.core11.tree import CachedTree, MerkleTree, Node, TreeBatch, TreeState
from hypernode.core11.verifier import Verifier
from hypernode.errors import (
    BlockNotAvailableError,
    CorruptStorageError,
    NotWritableError,
    VerificationError,
)

__all__ = ["Core", "Applied"]


@dataclass(frozen=True, slots=True)
class Applied:
    """What :meth:`Core.apply` did: whether the head moved to a longer signed length, the length now, and
    the block it stored (None for a proof without a block)."""

    upgraded: bool
    length: int
    block: int | None


class Core:
    """A hypercore 11 core on ``storage``: resumed from what the storage holds (head, hints, bitfield),
    or empty. ``node_cache`` tree nodes and ``page_cache`` bitfield pages are kept in memory at most."""

    def __init__(self, storage: CoreStorage, *, node_cache: int = 16384, page_cache: int = 64) -> None:
        self.storage = storage
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
        if not self.has(index):
            raise BlockNotAvailableError(f"block {index} is not held here (length {self.length})")
        data = self.storage.get_block(index)
        if data is None:
            raise CorruptStorageError(self._where, f"block {index} is marked held but is missing")
        return data

    def ranges(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        """The runs ``[s, e)`` of held blocks within ``start`` <= i < ``end`` (default: the length)."""
        end = self.length if end is None else min(end, self.length)
        return self._bitfield.runs(max(start, 0), end)

    def missing(self, start: int, end: int) -> Iterator[int]:
        """The indexes ``start`` <= i < ``end`` of blocks not held here (past the length: none are)."""
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
        signature = self._verifier.sign(batch.hash(), batch.length, batch.fork, key_pair)
        old = self.length
        w = self.storage.write()
        for i, data in enumerate(batch_blocks):
            w.put_block(old + i, bytes(data))
        for node in batch.nodes:
            w.put_tree_node(node)
        pages = self._bitfield.changed_pages(old, batch.length, True)
        for index, page in pages.items():
            w.put_bitfield_page(index, page)
        contiguous = self._grown_contiguous(old, batch.length, pages)
        if contiguous != self._contiguous:
            w.set_hints(Hints(contiguous))
        w.set_head(Head(batch.fork, batch.length, batch.hash(), signature))
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
        signature = self._verifier.sign(batch.hash(), batch.length, batch.fork, key_pair)
        old = self.length
        w = self.storage.write()
        w.delete_block_range(length, old)
        head = 2 * length
        w.delete_tree_node_range(head, -1)
        if length:
            # the nodes left of the new head that cover a block past it (the parents of its last leaf)
            i = head - 2
            while True:
                if flat_tree.right_span(i) >= head:
                    w.delete_tree_node_range(i, i + 1)
                if flat_tree.offset(i) == 0:
                    break
                i = flat_tree.parent(i)
        pages = self._bitfield.changed_pages(length, old, False)
        for index, page in pages.items():
            w.put_bitfield_page(index, page)
        contiguous = min(self._contiguous, length)
        if contiguous != self._contiguous:
            w.set_hints(Hints(contiguous))
        w.set_head(Head(batch.fork, batch.length, batch.hash(), signature))
        w.commit()
        self._took(batch, signature, pages, contiguous)

    def _grown_contiguous(self, start: int, end: int, pages: dict[int, bytes]) -> int:
        """The contiguous length once blocks ``start`` <= i < ``end`` are held (``pages``: their bits)."""
        c = self._contiguous
        if not start <= c <= end:
            return c
        return self._bitfield.find_first(False, end, max(self.length, end), overlay=pages)

    def _took(self, batch: TreeBatch, signature: bytes | None, pages: dict[int, bytes],
              contiguous: int) -> None:
        self._tree.commit(batch)
        self.signature = signature
        self._bitfield.take(pages)
        self._contiguous = contiguous

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
        fork or upgrades from a length other than this core's."""
        auth = self._auth
        learnt: Manifest | None = None
        if manifest is not None and auth.manifest is None:
            if not is_compat(self.key, manifest) and core_key(manifest) != self.key:
                raise VerificationError("the peer's manifest does not hash to the core's key")
            learnt = manifest
        verifier = self._verifier if learnt is None else self._make_verifier(learnt)
        tree: TreeState = self._tree
        if proof.fork != self.fork:
            if not (self.length == 0 and proof.fork > self.fork and proof.upgrade is not None):
                raise VerificationError(f"a proof of fork {proof.fork}, this core is at fork {self.fork}: "
                                        "taking another fork (a reorg) is not supported yet")
            # an empty core takes a newer fork as it is: there is nothing of the old one to drop
            tree = MerkleTree()
            tree.fork = proof.fork
        if proof.upgrade is not None and proof.upgrade.start != self.length:
            raise VerificationError(f"an upgrade from length {proof.upgrade.start}, this core has "
                                    f"{self.length} blocks")
        try:
            verified = verify_proof(tree, verifier, proof)
        except (ValueError, IndexError, OverflowError) as e:  # (nodes at impossible indexes, say)
            raise VerificationError(f"a malformed proof: {e}") from e
        upgraded = proof.upgrade is not None
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
        for node in nodes.values():
            w.put_tree_node(node)
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
        return Applied(upgraded, self.length, index)

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
