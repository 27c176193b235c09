"""``Feed``: a signed append-only log (a hypercore 9 feed) in a directory, stored as JS hypercore stores it.

Every block is a leaf of a merkle tree (:mod:`hypernode.flat_tree` numbering, hashes of
:mod:`hypernode.crypto`); after each append the writer signs the hash of the tree's roots together with
the new length. A reader holding only the public key verifies any block through a :class:`Proof`: the
tree nodes it lacks plus that signature. :meth:`Feed.put` verifies before it writes anything.

Write order (what makes a SIGKILL at any moment safe): data, tree nodes and signature first, the bitfield
last. On open the length comes from the bitfield, and the signature over that length's roots is checked,
so a feed reopens at the last length whose append completed, with every block verifying.

:meth:`Feed.clear` drops stored blocks as hypercore 9's ``clear`` does (data bits cleared, the tree
kept, the data file cut only where the range reaches its end); a cleared block is fetched again like any
missing one. :meth:`Feed.destroy_storage` deletes the stored blocks.

Reads verify: a block read from disk is hashed and checked against its leaf in the tree, unless it is
*trusted*: stored by this Feed object (hashed as it was appended, or verified before it was put), or
covered by the verified record the feed left when it last closed cleanly, whose stamps show that no
other program has written the files since (:mod:`hypernode.storage`). So after a clean close a feed
reopens with its blocks trusted and reads them at the speed of the disk; after a crash, or once
anything else has written the files, every block stored before the open is hashed on each read until
a read has verified it (a read that checks the blocks up to the trusted ones extends the trust down
to where it began), and a block that does not match raises :class:`CorruptStorageError`. A clean close
records what is trusted then; a feed whose files changed under it while open records nothing.

A Feed knows nothing of peers: fetching missing blocks, waiting for them, wants and extension messages
are replication's (:func:`hypernode.replication.replicator_of` gives a feed's
:class:`~hypernode.replication.Replicator`). What happens to the log is told in two ways: ``await
feed.wait_for_change()`` for async waiters, and synchronous :class:`FeedListener` calls, the only
synchronous hook, for the sans-IO replication core, which must answer an append with Haves at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

import trio

from hypernode import crypto, flat_tree
from hypernode.bitfield import PAGE_SIZE, Bitfield, TreeIndex
from hypernode.errors import (
    BlockNotAvailableError,
    CorruptStorageError,
    HypernodeError,
    MissingTreeNode,
    NotWritableError,
    VerificationError,
)
from hypernode.storage import Node, Storage

MAX_BLOCK_SIZE = 8 * 1024 * 1024  # the replication stream refuses larger frames; JS refuses such appends


@dataclass
class Proof:
    """What a verifier needs for one block: the tree nodes it lacks and, if needed, the signature."""

    index: int
    nodes: list[Node] = field(default_factory=list)
    signature: bytes | None = None


class FeedListener(Protocol):
    """What a :class:`Feed` tells the objects added with :meth:`Feed.add_listener`, synchronously, as it
    happens (inside the feed's call: a listener does no I/O and must not raise). The only synchronous
    hook of a Feed, for the sans-IO replication core; everything else waits with
    :meth:`Feed.wait_for_change`."""

    def blocks_appended(self, start: int, count: int) -> None:
        """Blocks ``[start, start + count)`` were appended (by this writer)."""

    def block_stored(self, index: int) -> None:
        """Block ``index`` was verified and stored (:meth:`Feed.put_verified`)."""

    def blocks_cleared(self, start: int, end: int) -> None:
        """Stored blocks of ``[start, end)`` were dropped (:meth:`Feed.clear`)."""

    def feed_closed(self) -> None:
        """The feed closed (the last call a listener gets)."""


class Feed:
    """A hypercore 9 feed. Open with :meth:`Feed.open`; use as ``async with``."""

    def __init__(self, storage: Storage, key: bytes, secret_key: bytes | None, bitfield: Bitfield,
                 length: int, roots: list[Node]) -> None:
        self._storage = storage
        self.key = key
        self.secret_key = secret_key
        self.discovery_key = crypto.discovery_key(key)
        self.bitfield = bitfield
        self.tree = bitfield.tree
        self.length = length
        # Blocks from this index on are trusted: read without hashing them (see the module docstring).
        # The length at open, or less (the verified record of the last clean close, or reads that
        # verified the blocks below it); blocks stored by this Feed object are all past it, or were
        # verified as they were put. Blocks below it are hashed on every read.
        self._trusted_from = length
        # the run of blocks below it that reads verified last, ``[start, end)``: when it reaches the
        # trusted blocks, they begin at its start (so a whole read after a crash restores the trust)
        self._verified_run = (length, length)
        self._roots = roots
        self.byte_length = sum(r.size for r in roots)
        # (block, its byte offset in data): the block after the last one placed, for the next read or
        # put of it (replication moves block after block); a block's offset never changes (the log is
        # append-only), except for blocks an append that failed had added (it resets the hint)
        self._offset_hint = (-1, 0)
        self.closed = False
        self._lock = trio.Lock()
        self._changed = trio.Event()
        # counts appends, stored blocks, clears and the close: ``wait_for_change(since=feed.changes)``
        # cannot miss a change made between reading it and waiting
        self.changes = 0
        self._listeners: list[FeedListener] = []

    # -- opening and closing -----------------------------------------------------------------------

    @classmethod
    async def open(cls, directory: str | os.PathLike[str] | None, key: bytes | None = None,
                   secret_key: bytes | None = None, *, store_secret_key: bool = True) -> Feed:
        """Open the feed stored in ``directory``, or create one.

        With no ``key``: the feed that is there, or a new writable feed (fresh key pair) in an empty
        directory. With ``key``: that feed, read-only unless ``secret_key`` is given or stored; it fails
        if the directory holds a different feed. ``directory=None`` keeps the feed in memory.
        ``store_secret_key=False`` keeps a given secret key out of the directory (Corestore derives it).
        """
        return cls._open_sync(None if directory is None else os.fspath(directory), key, secret_key,
                              store_secret_key)

    @classmethod
    def _open_sync(cls, directory: str | None, key: bytes | None, secret_key: bytes | None,
                   store_secret_key: bool = True) -> Feed:
        storage = Storage(directory)
        try:
            stored_key = storage.read_key()
            stored_secret = storage.read_secret_key()
            if key is not None:
                if len(key) != 32:
                    raise ValueError("a feed key is 32 bytes")
                if stored_key is not None and stored_key != key:
                    raise HypernodeError(f"{directory}: another hypercore is stored here")
            generated = False
            if key is None and stored_key is None:
                pair = crypto.key_pair()
                key, secret_key = pair.public_key, pair.secret_key
                generated = True
            key = key if key is not None else stored_key
            assert key is not None
            if secret_key is None:
                secret_key = stored_secret
            if secret_key is not None and not crypto.validate_key_pair(key, secret_key):
                if secret_key is stored_secret:
                    raise CorruptStorageError(storage.secret_key.path, "secret key does not match the key")
                raise ValueError("secret_key does not belong to key")

            bitfield = Bitfield(b"" if generated else storage.read_bitfield())
            length = bitfield.tree.blocks()
            trusted = storage.take_verified_record(length)  # (and removed: a crash leaves none)
            roots = cls._load_roots(storage, key, length)
            storage.write_headers()
            storage.start_stamps()
            if stored_key != key:
                storage.key.write(0, key)
            if secret_key is not None and stored_secret != secret_key and store_secret_key:
                storage.secret_key.write(0, secret_key)
        except BaseException:
            storage.close()
            raise
        feed = cls(storage, key, secret_key, bitfield, length, roots)
        if trusted is not None:
            feed._trusted_from = trusted
        return feed

    @staticmethod
    def _load_roots(storage: Storage, key: bytes, length: int) -> list[Node]:
        """The roots of the tree at ``length``, checked against the stored signature."""
        if length == 0:
            return []
        roots = [storage.get_node(i) for i in flat_tree.full_roots(2 * length)]
        signature = storage.get_signature(length - 1)
        if signature is None:
            raise CorruptStorageError(storage.signatures.path, f"no signature for length {length}")
        if not crypto.verify(crypto.signable(roots, length), signature, key):
            raise CorruptStorageError(
                storage.signatures.path,
                f"the signature for length {length} does not verify against the tree roots "
                f"(signatures or tree file corrupted)")
        return roots

    async def close(self) -> None:
        if not self.closed:
            try:
                self.flush()
                self._storage.write_verified_record(self.length, self._trusted_from)
            finally:  # a failed last write (a full disk) still closes the files
                self.closed = True
                self._storage.close()
                self.changes += 1
                self._changed.set()
                listeners, self._listeners = self._listeners, []
                for listener in listeners:
                    listener.feed_closed()

    async def __aenter__(self) -> Feed:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- properties --------------------------------------------------------------------------------

    @property
    def writable(self) -> bool:
        return self.secret_key is not None

    @property
    def directory(self) -> str | None:
        return self._storage.directory

    def has(self, index: int) -> bool:
        """True if block ``index`` is stored locally."""
        return 0 <= index < self.length and self.bitfield.get(index)

    def downloaded(self, start: int = 0, end: int | None = None) -> int:
        """How many blocks of ``[start, end)`` are stored locally."""
        return self.bitfield.total(start, self.length if end is None else end)

    def __repr__(self) -> str:
        return f"<Feed {self.key.hex()[:16]} length={self.length} writable={self.writable}>"

    # -- events ------------------------------------------------------------------------------------

    def add_listener(self, listener: FeedListener) -> None:
        """Call ``listener`` synchronously on every append, stored block, clear, and on close (see
        :class:`FeedListener`). A closed feed takes no listener."""
        self._check_open()
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: FeedListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        self.changes += 1
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for_change(self, since: int | None = None) -> None:
        """Return after the next append, stored block, clear, or close; with ``since`` (a value of
        :attr:`changes` read earlier), at once if there was one since then."""
        if since is not None and self.changes != since:
            return
        await self._changed.wait()

    def _check_open(self) -> None:
        if self.closed:
            raise HypernodeError("the feed is closed")

    # -- writing -----------------------------------------------------------------------------------

    async def append(self, blocks: bytes | str | Iterable[bytes | str]) -> int:
        """Append one block or a list of blocks; returns the index of the first one."""
        if isinstance(blocks, (bytes, bytearray, memoryview, str)):
            batch = [_as_bytes(blocks)]
        else:
            batch = [_as_bytes(b) for b in blocks]
        async with self._lock:
            self._check_open()
            if not self.writable:
                raise NotWritableError("this feed is not writable (no secret key)")
            for b in batch:
                if len(b) > MAX_BLOCK_SIZE:
                    raise ValueError("a block must be at most 8 MiB")
            start = self.length
            if batch:
                self._append_batch(batch)
                self._notify()
                for listener in self._listeners:
                    listener.blocks_appended(start, len(batch))
            return start

    def _append_batch(self, batch: list[bytes]) -> None:
        start = self.length
        n = len(batch)
        roots = list(self._roots)
        first_slot = 2 * start
        slots: list[Node | None] = [None] * (2 * n - 1)
        outside: list[Node] = []
        size = 0
        hashes = _leaf_hashes(batch)
        for k, block in enumerate(batch):
            node = Node(2 * (start + k), hashes[k], len(block))
            size += len(block)
            slots[node.index - first_slot] = node
            while roots and roots[-1].index == flat_tree.sibling(node.index):
                left = roots.pop()
                node = Node(flat_tree.parent(node.index), crypto.parent_hash_raw(left.hash, node.hash,
                                                                                   left.size + node.size),
                            left.size + node.size)
                if first_slot <= node.index < first_slot + len(slots):
                    slots[node.index - first_slot] = node
                else:
                    outside.append(node)
            roots.append(node)
        new_length = start + n
        signature = crypto.sign(crypto.signable(roots, new_length), self.secret_key or b"")

        st = self._storage
        st.write_data_vector(self.byte_length, batch)
        for node in outside:
            st.put_node(node)
        st.put_node_range(first_slot, slots)
        st.put_signature(new_length - 1, signature)
        for k in range(n):
            self.bitfield.set(start + k, True)
            self.tree.set(2 * (start + k))
        pages = self.bitfield.pages.take_dirty()
        try:
            st.write_bitfield_pages(pages)
        except BaseException:
            # the append failed (a full disk): forget its bits, and rewrite the pages on the next
            # write, so that memory and disk agree on a length whose blocks are all stored
            for k in range(n):
                self.bitfield.set(start + k, False)
            self.tree.truncate(2 * start)
            self._offset_hint = (-1, 0)
            self.bitfield.pages.dirty.update(offset // PAGE_SIZE for offset, _ in pages)
            raise

        self._roots = roots
        self.length = new_length
        self.byte_length += size

    # -- clearing local blocks ---------------------------------------------------------------------

    async def clear(self, start: int, end: int | None = None) -> None:
        """Drop the locally stored blocks ``[start, end)`` (``end`` defaults to ``start + 1``), as
        hypercore 9's ``clear``: their data bits are cleared (the tree nodes stay, so the feed's length
        and proofs do not change), the listeners are told (replication tells the peers with an
        Unhave), and the data file is cut where the range reaches its end (random-access-file deletes
        nothing in the middle). The replicator's ``get`` fetches them again from a peer.

        The bitfield is written before the data is cut, so a crash in between leaves blocks missing
        whose bytes are still there, never blocks claimed whose bytes are gone. The files end as JS's.
        """
        end = start + 1 if end is None else end
        if start < 0 or end < start:
            raise ValueError(f"bad range to clear: {start}..{end}")
        async with self._lock:
            self._check_open()
            modified = False
            for i in range(start, min(end, max(self.length, self.bitfield.length))):
                if self.bitfield.set(i, False):
                    modified = True
            if not modified:
                return
            for listener in self._listeners:
                listener.blocks_cleared(start, end)
            self.flush()
            try:
                first = self._data_offset(start, {})[0] if start < self.length else self.byte_length
                last = self.byte_length if end >= self.length else self._data_offset(end, {})[0]
            except CorruptStorageError:
                pass  # a sparse copy lacking the nodes that place the range: its bytes stay (as in JS)
            else:
                self._storage.delete_data(first, last - first)
            self._notify()

    async def destroy_storage(self) -> None:
        """Close the feed and delete its stored blocks: the ``data``, ``tree``, ``bitfield`` and
        ``signatures`` files (the key files stay, as with JS hypercore's ``destroyStorage`` in a
        corestore). Opened again, the feed is empty."""
        await self.close()
        self._storage.destroy()

    # -- reading -----------------------------------------------------------------------------------

    async def get(self, index: int) -> bytes:
        """The bytes of block ``index``, verified against the stored tree unless trusted (stored by this
        Feed, which hashed or verified it as it stored it, or covered by the verified record of the
        last clean close: see the module docstring).

        Local blocks only: a block not stored here raises :class:`BlockNotAvailableError` (the
        replicator's ``get`` waits for peers to send it: :func:`hypernode.replication.replicator_of`).
        """
        self._check_open()
        if not self.has(index):
            raise BlockNotAvailableError(f"block {index} is not stored locally (length {self.length})")
        return self._read_block(index)

    def read_block_sync(self, index: int, verify: bool = True) -> bytes:
        """The bytes of a block we have (the replication core's synchronous read). Uploads skip the
        hash check: the receiving peer verifies every block against the signed tree anyway."""
        return self._read_block(index, verify)

    def read_range_sync(self, start: int, end: int) -> bytes:
        """The bytes of blocks ``[start, end)``, all stored locally, in one read of the data file (for
        a whole file of a drive: no copy per block, no join). Verified as :meth:`get` verifies (blocks
        not trusted are hashed, big ranges on two threads). A missing block raises
        :class:`BlockNotAvailableError`."""
        self._check_open()
        if start < 0 or end > self.length or start > end:
            raise BlockNotAvailableError(f"blocks {start}..{end} are not in the feed (length {self.length})")
        if self.downloaded(start, end) != end - start:
            raise BlockNotAvailableError(f"blocks {start}..{end} are not all stored locally")
        if start == end:
            return b""
        offset, _ = self._data_offset(start, {})
        leaves = [self._storage.get_node(2 * i) for i in range(start, end)]
        data = self._storage.read_data(offset, sum(leaf.size for leaf in leaves))
        trusted_from = self._trusted_from
        checked = min(end, trusted_from) - start  # blocks not trusted
        if checked > 0:
            view = memoryview(data)
            parts, pos = [], 0
            for leaf in leaves[:checked]:
                parts.append(view[pos:pos + leaf.size])
                pos += leaf.size
            for k, h in enumerate(_leaf_hashes(parts)):
                if h != leaves[k].hash:
                    raise CorruptStorageError(self._storage.data.path,
                                              f"block {start + k} does not match its hash in the tree")
            self._verified(start, start + checked)
        return data

    def has_leaf(self, index: int) -> bool:
        """Is the leaf of block ``index`` (its hash and size) stored here? (It may be without the
        block itself: a proof brings the leaves of a block's siblings.)"""
        return 0 <= index and self.tree.get(2 * index)

    def block_size(self, index: int) -> int:
        """The size of block ``index`` in bytes, from its leaf in the tree (known for every stored
        block); :class:`BlockNotAvailableError` when the leaf is not known here."""
        if index < 0 or not self.tree.get(2 * index):
            raise BlockNotAvailableError(f"the size of block {index} is not known here")
        return self._storage.get_node(2 * index).size

    async def seek(self, start: int, end: int, offset: int) -> tuple[int, int]:
        """The block of ``[start, end)`` holding byte ``offset`` (counted from the first byte of block
        ``start``), and the offset inside it; ``(end, 0)`` when ``offset`` is past the range.

        Block sizes come from the tree's leaves, which must be known here: a missing one raises
        :class:`BlockNotAvailableError` (the replicator's ``seek`` fetches it)."""
        self._check_open()
        for i in range(start, end):
            size = self.block_size(i)
            if offset < size:
                return i, offset
            offset -= size
        return end, 0

    def find_byte(self, target: int) -> tuple[int, int] | None:
        """The block holding the feed's byte ``target`` and the offset inside it, found from the
        tree's roots down through the nodes stored here, as JS hypercore seeks; None when ``target``
        is past the feed's bytes or the tree lacks a node a fetch would not bring (the caller then
        scans the leaves). Where a child node is not stored, :class:`MissingTreeNode` names a block
        under it whose proof brings it: the one the byte would be in were the subtree's blocks of even
        size (the replicator's ``seek`` fetches it and asks again)."""
        self._check_open()
        index = -1
        for root in self._roots:
            if target < root.size:
                index = root.index
                break
            target -= root.size
        if index < 0:
            return None
        tree, get_node = self.tree, self._storage.get_node
        while index & 1:  # a parent: go down to the child whose bytes hold the target
            if not tree.get(index):
                return None
            left = flat_tree.left_child(index)
            if not tree.get(left):
                first = flat_tree.left_span(index) // 2
                blocks = flat_tree.right_span(index) // 2 + 1 - first
                size = get_node(index).size
                raise MissingTreeNode(first + min(blocks - 1, target * blocks // size if size else 0))
            child = get_node(left)
            if target < child.size:
                index = left
            else:
                target -= child.size
                index = flat_tree.right_child(index)
        return index // 2, target

    def _read_block(self, index: int, verify: bool = True) -> bytes:
        offset, leaf = self._data_offset(index, {})
        data = self._storage.read_data(offset, leaf.size)
        if verify and index < self._trusted_from:
            if crypto.data_hash(data) != leaf.hash:
                raise CorruptStorageError(self._storage.data.path,
                                          f"block {index} does not match its hash in the tree")
            self._verified(index, index + 1)
        return data

    def _verified(self, start: int, end: int) -> None:
        """Blocks ``[start, end)`` were read and matched their hashes: join them to the verified run,
        and trust the blocks from the run's start when it reaches the trusted ones. (Called from the
        mount's worker threads too: the run is replaced whole, and a lost update only trusts less.)"""
        run_start, run_end = self._verified_run
        if start <= run_end and end >= run_start:
            start, end = min(start, run_start), max(end, run_end)
        self._verified_run = (start, end)
        if start < self._trusted_from <= end:
            self._trusted_from = start

    def _data_offset(self, index: int, known: dict[int, Node]) -> tuple[int, Node]:
        """Byte offset of block ``index`` in ``data`` and its leaf node (``known`` nodes first)."""
        get = self._storage.get_node
        leaf = known.get(2 * index) or get(2 * index)
        hint, offset = self._offset_hint
        if hint != index:
            offset = 0
            for r in flat_tree.full_roots(2 * index):
                offset += (known.get(r) or get(r)).size
        self._offset_hint = (index + 1, offset + leaf.size)
        return offset, leaf

    def roots(self) -> list[Node]:
        return list(self._roots)

    def signature(self, length: int | None = None) -> bytes | None:
        """The stored signature for ``length`` (default: the current length)."""
        length = self.length if length is None else length
        return self._storage.get_signature(length - 1) if length > 0 else None

    # -- proofs ------------------------------------------------------------------------------------

    def proof(self, index: int, digest: int = 0, want_hash: bool = False,
              remote_tree: TreeIndex | None = None) -> Proof:
        """The proof of block ``index`` for a verifier whose tree is described by ``digest``.

        ``remote_tree`` (kept per peer by replication) records the nodes already sent to that peer,
        which are then left out.
        """
        self._check_open()
        if not self.tree.get(2 * index):
            raise BlockNotAvailableError(f"no tree node for block {index}")
        found = self.tree.proof(2 * index, digest, want_hash, remote_tree)
        assert found is not None
        indices, verified_by = found
        nodes = [self._storage.get_node(i) for i in indices]
        signature = None
        if verified_by:
            signature = self._storage.get_signature(verified_by // 2 - 1)
            if signature is None:
                raise CorruptStorageError(self._storage.signatures.path,
                                          f"no signature for length {verified_by // 2}")
        return Proof(index, nodes, signature)

    async def put(self, index: int, data: bytes, proof: Proof | Sequence[Node],
                  signature: bytes | None = None) -> None:
        """Store block ``index`` received from a peer, after verifying it against the feed's key.

        Raises :class:`VerificationError` (and stores nothing) if the data, the proof or the
        signature does not verify.
        """
        if isinstance(proof, Proof):
            nodes, signature = proof.nodes, proof.signature
        else:
            nodes = list(proof)
        data = _as_bytes(data)
        if index < 0:
            raise VerificationError("negative block index")
        if len(data) > MAX_BLOCK_SIZE:
            raise VerificationError("block larger than 8 MiB")
        async with self._lock:
            self.put_verified(index, data, list(nodes), signature)
            self.flush()

    def flush(self) -> None:
        """Write the bitfield pages that changed (after the blocks and nodes they describe). A page
        that could not be written stays marked, for the next flush."""
        if self.bitfield.pages.dirty and not self.closed:
            pages = self.bitfield.pages.take_dirty()
            try:
                self._storage.write_bitfield_pages(pages)
            except BaseException:
                self.bitfield.pages.dirty.update(offset // PAGE_SIZE for offset, _ in pages)
                raise

    def put_verified(self, index: int, data: bytes, nodes: list[Node], signature: bytes | None) -> None:
        """The synchronous core of :meth:`put`, used by replication: verify, then store.

        The bitfield is not written here: the caller calls :meth:`flush` after a batch of blocks, so
        the bitfield still reaches the disk after the data it describes.
        """
        self._check_open()
        if self.bitfield.get(index):
            return
        if len(data) > MAX_BLOCK_SIZE:
            raise VerificationError("block larger than 8 MiB")
        self._put(index, data, nodes, signature)
        self._notify()
        for listener in self._listeners:
            listener.block_stored(index)

    def _put(self, index: int, data: bytes, remote: list[Node], signature: bytes | None) -> None:
        tree = self.tree
        has = tree.bits.get
        st = self._storage
        get_node = st.get_node
        parent_hash = crypto.parent_hash
        top = Node(2 * index, crypto.data_hash(data), len(data))
        visited: list[Node] = []
        r = 0
        n_remote = len(remote)
        new_roots: list[Node] | None = None
        new_length = 0
        d = 0  # the depth of top (flat-tree math inlined: this runs for every block received)
        while True:
            i = top.index
            if has(i):
                stored = get_node(i)
                if stored.hash != top.hash or stored.size != top.size:
                    raise VerificationError(f"block {index} does not match the feed's tree")
                break
            sib = i ^ (2 << d)
            if r < n_remote and remote[r].index == sib:
                node = remote[r]
                r += 1
                if len(node.hash) != 32 or node.size < 0:
                    raise VerificationError("malformed tree node in proof")
                visited.append(node)
            elif has(sib):
                node = get_node(sib)
            else:
                new_roots, new_length, extra = self._verify_roots(top, remote[r:], signature)
                visited.extend(extra)
                break
            visited.append(top)
            top = Node((i | (1 << d)) & ~(2 << d), parent_hash(top, node), top.size + node.size)
            d += 1

        # verified: now write, data first, bitfield last
        known = {n.index: n for n in visited}
        try:
            offset, _ = self._data_offset(index, known)
        except CorruptStorageError:
            raise VerificationError(f"the proof lacks the nodes that place block {index}") from None
        st.write_data(offset, data)
        for n in visited:
            if not has(n.index):
                st.put_node(n)
        if new_roots is not None and signature is not None:
            st.put_signature(new_length - 1, signature)
        tree_set = tree.set
        for n in visited:
            tree_set(n.index)
        tree_set(2 * index)
        self.bitfield.set(index, True)
        if new_roots is not None and new_length > self.length:
            self.length = new_length
            self._roots = new_roots
            self.byte_length = sum(n.size for n in new_roots)

    def _verify_roots(self, top: Node, remote: list[Node], signature: bytes | None
                      ) -> tuple[list[Node], int, list[Node]]:
        last = remote[-1].index if remote else top.index
        verified_by = max(flat_tree.right_span(top.index), flat_tree.right_span(last)) + 2
        length = verified_by // 2
        roots: list[Node] = []
        extra: list[Node] = []
        r = 0
        for i in flat_tree.full_roots(verified_by):
            if i == top.index:
                roots.append(top)
                extra.append(top)
            elif r < len(remote) and remote[r].index == i:
                _check_node(remote[r])
                roots.append(remote[r])
                extra.append(remote[r])
                r += 1
            elif self.tree.get(i):
                roots.append(self._storage.get_node(i))
            else:
                raise VerificationError("the proof lacks tree roots needed to verify the block")
        if r != len(remote):
            raise VerificationError("the proof has nodes that are not part of the block's path")
        if signature is None:
            raise VerificationError("the proof has no signature")
        if not crypto.verify(crypto.signable(roots, length), signature, self.key):
            raise VerificationError("the signature does not verify against the feed's key")
        return roots, length, extra


_PARALLEL_HASH_BYTES = 1 << 20
_hash_pool: ThreadPoolExecutor | None = None


def _leaf_hashes(batch: Sequence[bytes | memoryview]) -> list[bytes]:
    """The leaf hashes of a batch; big batches hash on two threads (hashlib releases the GIL)."""
    global _hash_pool
    total = sum(len(b) for b in batch)
    if len(batch) < 4 or total < _PARALLEL_HASH_BYTES:
        return [crypto.data_hash(b) for b in batch]
    if _hash_pool is None:
        _hash_pool = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1),
                                        thread_name_prefix="hypernode-hash")
    half = len(batch) // 2
    first = _hash_pool.submit(lambda: [crypto.data_hash(b) for b in batch[:half]])
    rest = [crypto.data_hash(b) for b in batch[half:]]
    return first.result() + rest


def _check_node(node: Node) -> None:
    if len(node.hash) != 32 or node.size < 0 or node.index < 0:
        raise VerificationError("malformed tree node in proof")


def _as_bytes(b: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(b, str):
        return b.encode()
    if isinstance(b, bytes):
        return b
    if isinstance(b, (bytearray, memoryview)):
        return bytes(b)
    raise TypeError(f"a block is bytes or str, not {type(b).__name__}")
