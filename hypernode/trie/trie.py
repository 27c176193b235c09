"""``Hypertrie``: the key/value trie of hypertrie 5 on a feed, written byte for byte as JS writes it.

Block 0 of the feed is a ``Header`` (type ``hypertrie``, a ``metadata`` blob, a ``subtype``); every later
block is one :class:`~hypernode.trie.node.TrieNode`. The newest block is the *head*: its trie pointers
reach every live key, so a read walks from the head along the key's path (:mod:`hypernode.trie.node`),
jumping to the node a bucket names wherever the path branches off. A write walks the same way and
copies into the new node every bucket it passes, pointing at the branches it leaves; a delete re-writes
the *closest* other node (the nearest branch) with the deleted node's pointers left out, or writes an
empty reset node when nothing else is left. Every choice mirrors hypertrie 5.1.3 (``lib/put.js``,
``lib/get.js``, ``lib/del.js``, ``lib/iterator.js``, ``lib/diff.js``), including bucket slot order and
the collision slots, so that Python and JS append identical blocks for the same operations.

Reading works on any replica: a node that is not stored locally is fetched from peers by the feed's
replicator (:func:`hypernode.replication.replicator_of`). Decoded nodes are cached per feed (shared
with checkouts, kept beside the feed in a weak mapping, never on it); writes to one feed are serialized
by one lock, however many :class:`Hypertrie` objects share it.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from hypernode.protobuf import DecodeError
from hypernode.replication import replicator_of
from hypernode.trie.node import (
    END,
    HIDDEN,
    CorruptTrieError,
    HashFn,
    Header,
    TrieNode,
    terminator,
)

if TYPE_CHECKING:
    from hypernode.feed import Feed

CACHE_SIZE = 32768  # decoded nodes kept per feed (hypertrie's default cache size)
# The iterator visits, at every position, the branches in this order: the node that ends here
# first, then path values 0..3 (hypertrie pushes [3, 2, 1, 0, 4] onto a stack).
_ORDER = (3, 2, 1, 0, END)
_REVERSE_ORDER = (END, 0, 1, 2, 3)

Condition = Callable[[TrieNode | None, TrieNode], bool | Awaitable[bool]]


class _FeedState:
    """What every Hypertrie on one feed shares: the node cache and the write lock."""

    __slots__ = ("cache", "lock", "hash_fn", "header")

    def __init__(self, hash_fn: HashFn | None) -> None:
        self.cache: dict[int, TrieNode | None] = {}
        self.lock = trio.Lock()
        self.hash_fn = hash_fn
        self.header: Any = None


_states: weakref.WeakKeyDictionary[Feed, _FeedState] = weakref.WeakKeyDictionary()


def _state_of(feed: Feed, hash_fn: HashFn | None) -> _FeedState:
    state = _states.get(feed)
    if state is None:
        state = _states[feed] = _FeedState(hash_fn)
    return state


@dataclass
class DiffEntry:
    """One key that differs between two versions: its node on each side (None where it is absent)."""

    key: str
    left: TrieNode | None
    right: TrieNode | None


class _Batch:
    """Nodes appended by one batch, visible to the later operations of the same batch."""

    def __init__(self, offset: int, head: TrieNode | None) -> None:
        self.offset = offset
        self.head = head
        self.nodes: list[TrieNode] = []

    def get(self, seq: int) -> TrieNode | None:
        if seq < self.offset:
            return None
        i = seq - self.offset
        return self.nodes[i] if i < len(self.nodes) else None

    def append(self, node: TrieNode) -> None:
        node.seq = self.offset + len(self.nodes)
        self.nodes.append(node)
        self.head = node


class Hypertrie:
    """A hypertrie 5 on ``feed``. Open with :meth:`Hypertrie.open` (it writes the header of a new trie).

    Keys are strings of ``/``-separated components (a leading ``/`` is dropped); values are bytes.
    ``hidden`` keys live in a separate namespace (hyperdrive keeps mounts and tags there). Flags are a
    small integer stored with each node (hyperdrive marks mount points with flag 1).
    """

    def __init__(self, feed: Feed, state: _FeedState, checkout: int = 0) -> None:
        self.feed = feed
        self._state = state
        self._checkout = checkout

    @classmethod
    async def open(cls, feed: Feed, *, metadata: bytes | None = None, subtype: str | None = None,
                   hash_fn: HashFn | None = None) -> Hypertrie:
        """The trie on ``feed``; a writable feed that is still empty first gets its header block
        (``metadata`` and ``subtype`` go there: hyperdrive stores its content feed's key)."""
        state = _state_of(feed, hash_fn)
        trie = cls(feed, state)
        if feed.writable and feed.length == 0:
            async with state.lock:
                if feed.length == 0:
                    await feed.append(Header(type="hypertrie", metadata=metadata, subtype=subtype).encode())
        return trie

    # -- versions ----------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The feed length this trie reads at (a checkout's fixed version, or the feed's length)."""
        return self._checkout or self.feed.length

    @property
    def key(self) -> bytes:
        return self.feed.key

    @property
    def discovery_key(self) -> bytes:
        return self.feed.discovery_key

    @property
    def writable(self) -> bool:
        return self.feed.writable and not self._checkout

    def checkout(self, version: int) -> Hypertrie:
        """A read-only view at ``version`` (a feed length; 0 and 1 are the empty trie)."""
        if version < 0:
            raise ValueError("a version is not negative")
        return Hypertrie(self.feed, self._state, max(version, 1))

    def snapshot(self) -> Hypertrie:
        return self.checkout(self.version)

    async def header(self) -> Any:
        """The decoded header block (waits for it on a replica that does not have it yet)."""
        if self._state.header is None:
            block = await replicator_of(self.feed).get(0)
            try:
                header = Header.decode(block)
            except DecodeError as e:
                raise CorruptTrieError(f"the header block does not decode: {e}") from None
            self._state.header = header
        return self._state.header

    # -- reading nodes -----------------------------------------------------------------------------

    async def get_by_seq(self, seq: int) -> TrieNode | None:
        """The node stored in block ``seq`` (None for the header and for the empty reset node)."""
        if seq < 1:
            return None
        cache = self._state.cache
        if seq in cache:
            return cache[seq]
        feed = self.feed
        block = feed.read_block_sync(seq) if feed.has(seq) else await replicator_of(feed).get(seq)
        node: TrieNode | None = TrieNode.decode(block, seq, self._state.hash_fn)
        if node.key == "" and node.value is None:  # type: ignore[union-attr]
            node = None
        if len(cache) >= CACHE_SIZE:
            for k in list(cache)[: CACHE_SIZE // 4]:
                del cache[k]
        cache[seq] = node
        return node

    async def _node(self, seq: int, batch: _Batch | None) -> TrieNode | None:
        if batch is not None:
            node = batch.get(seq)
            if node is not None:
                return node
        return await self.get_by_seq(seq)

    def head_seq(self) -> int:
        if self._checkout:
            return self._checkout - 1
        n = self.feed.length
        return n - 1 if n >= 2 else 0

    async def head(self) -> TrieNode | None:
        """The newest node (the root every read starts from), or None for an empty trie."""
        seq = self.head_seq()
        return await self.get_by_seq(seq) if seq else None

    def _query(self, key: str, hidden: bool, flags: int = 0) -> TrieNode:
        return TrieNode(key, stored_flags=(flags << 8) | (HIDDEN if hidden else 0),
                        hash_fn=self._state.hash_fn)

    # -- get ---------------------------------------------------------------------------------------

    async def get(self, key: str, *, hidden: bool = False, closest: bool = False, prefix: bool = False
                  ) -> TrieNode | None:
        """The node of ``key``, or None. ``prefix=True``: the newest node at or under ``key``;
        ``closest=True``: where the key is absent, the node the walk ended on (nearest branch)."""
        node = self._query(key, hidden)
        return await self._get(node, node.length - 1 if prefix else node.length, closest, await self.head())

    async def _get(self, node: TrieNode, length: int, closest: bool, head: TrieNode | None
                   ) -> TrieNode | None:
        i = 0
        while head is not None:
            d = _divergence(node, head, i, length, collisions=True)
            if d >= length:
                return head
            val = node.path(d)
            bucket = head.trie.get(d)
            if terminator(d):
                head = await self._non_colliding(bucket, val, node, d, None)
                if head is None:
                    return None
            else:
                seq = bucket[val] if bucket is not None and val < len(bucket) else 0
                if not seq:
                    return head if closest else None
                head = await self.get_by_seq(seq)
            i = d + 1
        return None

    async def _non_colliding(self, bucket: list[int] | None, val: int, node: TrieNode, i: int,
                             batch: _Batch | None) -> TrieNode | None:
        """Of the nodes in slots ``val, val + 5, …`` of ``bucket``: the last whose component at the
        terminator ``i`` is the same as ``node``'s (the others are hash collisions)."""
        found = None
        if bucket is not None:
            for j in range(val, len(bucket), 5):
                seq = bucket[j]
                if not seq:
                    break
                n = await self._node(seq, batch)
                if n is not None and not n.collides(node, i):
                    found = n
        return found

    # -- put ---------------------------------------------------------------------------------------

    async def put(self, key: str, value: bytes | None, *, hidden: bool = False, flags: int = 0,
                  condition: Condition | None = None, closest: bool = False) -> TrieNode | None:
        """Write ``key``. ``condition(existing, new)`` (sync or async; ``existing`` is the current node
        of the key, or with ``closest=True`` the nearest node) decides whether the write happens;
        it returns the written node, or None when the condition said no."""
        self._check_writable()
        async with self._state.lock:
            node = self._new_node(key, value, hidden, flags)
            head = await self.head()
            found = await self._update(node, head, 0, None)
            if condition is not None:
                existing = found if closest else (found if found is not None and found.key == node.key
                                                  else None)
                proceed = condition(existing, node)
                if inspect.isawaitable(proceed):
                    proceed = await proceed
                if not proceed:
                    return None
            await self._append([node])
            return node

    def _new_node(self, key: str, value: bytes | None, hidden: bool, flags: int) -> TrieNode:
        if flags < 0 or flags >= 1 << 45:
            raise ValueError("flags are a small non-negative integer")
        if value is not None and not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError("a trie value is bytes")
        return TrieNode(key, None if value is None else bytes(value),
                        stored_flags=(flags << 8) | (HIDDEN if hidden else 0), hash_fn=self._state.hash_fn)

    async def _append(self, nodes: list[TrieNode]) -> None:
        first = self.feed.length
        for k, n in enumerate(nodes):
            n.seq = first + k
        await self.feed.append([n.encode() for n in nodes])
        cache = self._state.cache
        for n in nodes:
            cache[n.seq] = n if (n.key or n.value is not None) else None

    def _check_writable(self) -> None:
        if self._checkout:
            raise PermissionError("a checkout of a trie is read-only")
        if not self.feed.writable:
            raise PermissionError("this trie's feed is not writable")

    async def _update(self, node: TrieNode, head: TrieNode | None, i: int, batch: _Batch | None,
                      delete: int = 0) -> TrieNode | None:
        """Fill ``node.trie`` by walking from ``head`` (lib/put.js); leaves out pointers to ``delete``.
        Returns the node the walk ended on (the existing node of the key, or the closest one)."""
        length = node.length
        while head is not None:
            d = _divergence(node, head, i, length, collisions=True)
            # copy the buckets of every position where the paths still agree
            for p in sorted(k for k in head.trie if i <= k < d):
                await self._copy_bucket(node, head.trie[p], p, batch, delete)
            if d >= length:
                return head
            val = node.path(d)
            bucket = head.trie.get(d)
            head_val = head.path(d)
            if terminator(d):
                if head.seq != delete:
                    node.push(d, head_val, head.seq)
                if bucket is not None:
                    await self._copy_bucket(node, bucket, d, batch, delete)
                head = await self._non_colliding(bucket, val, node, d, batch)
                if head is None:
                    return None
            else:
                if bucket is not None:
                    await self._copy_bucket(node, bucket, d, batch, delete)
                if head.seq != delete:
                    node.push(d, head_val, head.seq)
                seq = bucket[val] if bucket is not None and val < len(bucket) else 0
                if not seq:
                    return head
                head = await self._node(seq, batch)
                if head is None:
                    return None
            i = d + 1
        return None

    async def _copy_bucket(self, node: TrieNode, bucket: list[int], i: int, batch: _Batch | None,
                           delete: int) -> None:
        val = node.path(i)
        if not terminator(i):
            for j, seq in enumerate(bucket):
                if seq and j != val and seq != delete:
                    node.push(i, j, seq)
            return
        for j, seq in enumerate(bucket):
            if not seq or seq == delete:
                continue
            if j % 5 != val % 5:  # another hash: another component, so it always "collides"
                node.push(i, j, seq)
                continue
            other = await self._node(seq, batch)
            if other is not None and other.collides(node, i):
                node.push(i, j, seq)

    # -- delete ------------------------------------------------------------------------------------

    async def delete(self, key: str, *, hidden: bool = False,
                     condition: Callable[[TrieNode], bool | Awaitable[bool]] | None = None
                     ) -> TrieNode | None:
        """Remove ``key``; returns the removed node, or None if the key was not there (or the
        ``condition(existing)`` said no)."""
        self._check_writable()
        async with self._state.lock:
            head = await self.head()
            found = await self._delete(key, hidden, head, None)
            if found is None:
                return None
            target, replacement = found
            if condition is not None:
                proceed = condition(target)
                if inspect.isawaitable(proceed):
                    proceed = await proceed
                if not proceed:
                    return None
            await self._update(replacement, head, 0, None, delete=target.seq)
            await self._append([replacement])
            return target

    async def _delete(self, key: str, hidden: bool, head: TrieNode | None, batch: _Batch | None
                      ) -> tuple[TrieNode, TrieNode] | None:
        """lib/del.js: the node of ``key`` and the node that replaces the head without it (the closest
        other node re-written, or the empty reset node). The caller fills the replacement's trie."""
        node = self._query(key, hidden)
        length = node.length
        closest = 0
        i = 0
        while head is not None:
            d = _divergence(node, head, i, length, collisions=False)
            for p in sorted(k for k in head.trie if i <= k < d):
                c = _first_other(head.trie[p], node.path(p))
                if c:
                    closest = c
            if d >= length:
                break
            bucket = head.trie.get(d)
            val = node.path(d)
            seq = bucket[val] if bucket is not None and val < len(bucket) else 0
            if not seq:
                return None
            closest = head.seq
            head = await self._node(seq, batch)
            i = d + 1
        if head is None or head.key != node.key:
            return None
        near = await self._node(closest, batch) if closest else None
        hash_fn = self._state.hash_fn
        if near is not None:  # re-written with its user flags and hidden bit, as lib/del.js does
            flags = (near.flags << 8) | (near.stored_flags & HIDDEN)
            replacement = TrieNode(near.key, near.value, stored_flags=flags, hash_fn=hash_fn)
        else:
            replacement = TrieNode("", None, stored_flags=head.stored_flags & HIDDEN, hash_fn=hash_fn)
        return head, replacement

    # -- batch -------------------------------------------------------------------------------------

    async def batch(self, ops: Iterable[Mapping[str, Any]]) -> list[TrieNode]:
        """Several puts and deletes (``{"type": "put"|"del", "key", "value", "hidden", "flags"}``)
        appended together; each sees the ones before it. Returns the nodes written."""
        self._check_writable()
        ops = list(ops)
        async with self._state.lock:
            b = _Batch(self.feed.length, await self.head())
            for op in ops:
                kind = op.get("type", "put")
                hidden = bool(op.get("hidden", False))
                if kind == "del":
                    found = await self._delete(op["key"], hidden, b.head, b)
                    if found is None:
                        continue
                    target, node = found
                    await self._update(node, b.head, 0, b, delete=target.seq)
                elif kind == "put":
                    node = self._new_node(op["key"], op.get("value"), hidden, int(op.get("flags", 0) or 0))
                    await self._update(node, b.head, 0, b)
                else:
                    raise ValueError(f"unknown batch operation {kind!r}")
                b.append(node)
            if b.nodes:
                await self._append(b.nodes)
            return b.nodes

    # -- iterating ---------------------------------------------------------------------------------

    def iterator(self, prefix: str = "", *, recursive: bool = True, reverse: bool = False, gt: bool = False,
                 hidden: bool = False) -> AsyncIterator[TrieNode]:
        """Every node under ``prefix`` (lib/iterator.js order). ``recursive=False`` gives one node per
        name directly under the prefix (the name's own node, or the newest node below it);
        ``gt=True`` leaves out the prefix's own node."""
        return self._iterate(prefix, recursive, reverse, gt, hidden)

    async def _iterate(self, prefix: str, recursive: bool, reverse: bool, gt: bool, hidden: bool
                       ) -> AsyncIterator[TrieNode]:
        query = self._query(prefix, hidden)
        start = query.length - 1
        first = await self._get(query, start, False, await self.head())
        if first is None:
            return
        end = 1 << 62 if recursive else start + 32
        order = _REVERSE_ORDER if reverse else _ORDER
        stack: list[list[Any]] = [[start, first]]
        while stack:
            top = stack.pop()
            i, n = top
            stop = n.length if n.length < end else end
            if i >= stop:
                yield n
                continue
            trie = n.trie
            if i not in trie and not (gt and i == start):
                # nothing branches off here: jump to the next position that has a bucket
                nxt = stop
                for k in trie:
                    if i < k < nxt:
                        nxt = k
                top[0] = nxt
                stack.append(top)
                continue
            top[0] = i + 1
            bucket = trie.get(i) or []
            own = n.path(i)
            for val in order:
                if val == END and gt and i == start:
                    continue
                before = len(stack)
                if own == val:
                    stack.append(top)
                for j in range(val, len(bucket), 5):
                    seq = bucket[j]
                    if seq:
                        child = await self.get_by_seq(seq)
                        if child is not None:
                            stack.append([i + 1, child])
                if len(stack) - before > 1:
                    stack[before:] = sorted(stack[before:], key=lambda t: t[1].key, reverse=True)

    async def list(self, prefix: str = "", **opts: Any) -> list[TrieNode]:
        return [n async for n in self.iterator(prefix, **opts)]

    async def history(self, *, gte: int = 1, lte: int | None = None, reverse: bool = False
                      ) -> AsyncIterator[TrieNode]:
        """Every node in feed order (newest first with ``reverse``), from ``gte`` to ``lte``."""
        last = self.head_seq() if lte is None else min(lte, self.head_seq())
        seqs = range(last, gte - 1, -1) if reverse else range(gte, last + 1)
        for seq in seqs:
            node = await self.get_by_seq(seq)
            if node is not None:
                yield node

    # -- diff --------------------------------------------------------------------------------------

    def diff(self, other: int | Hypertrie | None = None, prefix: str = "", *, hidden: bool = False
             ) -> AsyncIterator[DiffEntry]:
        """The keys whose nodes differ between this trie (``left``) and ``other`` (``right``: another
        checkout, or a version number; default the empty trie), under ``prefix``."""
        right = other if isinstance(other, Hypertrie) else self.checkout(other or 0)
        if right.feed is not self.feed:
            raise ValueError("a diff compares two versions of the same trie")
        return _diff(self, right, prefix, hidden)

    # -- watching ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch(self, prefix: str = "") -> AsyncIterator[Watch]:
        """``async with trie.watch(prefix) as changes: async for _ in changes: …``: one event each
        time the newest node under ``prefix`` changes (a put or delete there, local or replicated)."""
        w = Watch(self, prefix)
        await w._prime()
        async with replicator_of(self.feed).want_update():
            yield w


class Watch:
    """The changes under one prefix (see :meth:`Hypertrie.watch`)."""

    def __init__(self, trie: Hypertrie, prefix: str) -> None:
        self.trie = trie
        self.prefix = prefix
        self._seq = 0
        self._length = 0

    async def _prime(self) -> None:
        self._length = self.trie.feed.length
        self._seq = await self._current()

    async def _current(self) -> int:
        node = await self.trie.get(self.prefix, prefix=True)
        return node.seq if node is not None else 0

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> int:
        """Waits for the next change; returns the trie's version after it."""
        feed = self.trie.feed
        while True:
            if feed.length == self._length:
                await feed.wait_for_change()
                continue
            self._length = feed.length
            seq = await self._current()
            if seq != self._seq:
                self._seq = seq
                return self._length


def _divergence(a: TrieNode, b: TrieNode, i: int, limit: int, *, collisions: bool) -> int:
    """The first position in ``[i, limit)`` where the paths of ``a`` and ``b`` differ (or, with
    ``collisions``, a terminator where their components differ despite equal hashes); ``limit`` if none."""
    pa, pb = a._path, b._path
    la, lb = len(pa), len(pb)
    d = limit
    # compare the stored parts directly (past its length a path is END, which a stored position never is
    # except at its last position)
    n = min(limit, la, lb)
    if i < n:
        sa, sb = pa[i:n], pb[i:n]
        if sa != sb:
            x = int.from_bytes(sa, "big") ^ int.from_bytes(sb, "big")
            d = n - (x.bit_length() + 7) // 8
    if d == limit and n < limit:
        for p in range(max(i, n), limit):
            if a.path(p) != b.path(p):
                d = p
                break
    if collisions and d > i:
        # a terminator before the divergence where the hashes agree but the components do not
        t = max(32, (i + 31) // 32 * 32)
        while t < d:
            if a.collides(b, t):
                return t
            t += 32
    return d


def _first_other(bucket: list[int], val: int) -> int:
    for j, seq in enumerate(bucket):
        if j != val and seq:
            return seq
    return 0


async def _diff(left_trie: Hypertrie, right_trie: Hypertrie, prefix: str, hidden: bool
                ) -> AsyncIterator[DiffEntry]:
    """lib/diff.js: walk both tries together, skipping every subtree whose node both sides share."""
    q = left_trie._query(prefix, hidden)
    length = q.length - 1
    left = await left_trie._get(q, length, False, await left_trie.head())
    right = await right_trie._get(q, length, False, await right_trie.head())
    get_left, get_right = left_trie.get_by_seq, right_trie.get_by_seq
    stack: list[list[Any]] = [[length, left, right]]
    while stack:
        i, left, right = stack.pop()
        if _seq(left) == _seq(right):
            continue
        if left is not None and right is not None:
            # where neither node has a bucket and their paths agree, each position would only move the
            # same pair on by one: jump to the next bucket, difference or colliding terminator
            limit = min(left.length, right.length)
            if i < limit:
                nxt = min([k for k in left.trie if i <= k < limit]
                          + [k for k in right.trie if i <= k < limit], default=limit)
                if nxt > i:
                    i = _divergence(left, right, i, nxt, collisions=True)
        elif left is not None or right is not None:
            # one side only (a subtree the other trie lacks, e.g. every entry when diffing against the
            # empty trie): until its next bucket, each position would only move that node on by one
            node = left if left is not None else right
            end = node.length  # type: ignore[union-attr]
            if i < end:
                i = min([k for k in node.trie if i <= k < end], default=end)  # type: ignore[union-attr]
        done_left = left is not None and i >= left.length
        done_right = right is not None and i >= right.length
        if done_left and done_right:
            yield DiffEntry(left.key, left, right)  # type: ignore[union-attr]
            continue
        left_val = left.path(i) if left is not None else 5
        right_val = right.path(i) if right is not None else 6
        left_bucket = (left.trie.get(i) if left is not None else None) or []
        right_bucket = (right.trie.get(i) if right is not None else None) or []
        for j in range(5):
            left_seq = left.seq if left is not None and left_val == j else 0
            right_seq = right.seq if right is not None and right_val == j else 0
            start = len(stack)
            left_len = right_len = len(stack)
            if left_seq != right_seq:
                if not done_left and left_seq and _not_in_bucket(j, left_seq, right_bucket):
                    _slot(stack, left_len, i + 1)[1] = left
                    left_len += 1
                if not done_right and right_seq and _not_in_bucket(j, right_seq, left_bucket):
                    _slot(stack, right_len, i + 1)[2] = right
                    right_len += 1
            if not done_left:
                for v in range(j, len(left_bucket), 5):
                    seq = left_bucket[v]
                    if not seq:
                        break
                    if seq != right_seq and _not_in_bucket(j, seq, right_bucket):
                        _slot(stack, left_len, i + 1)[1] = await get_left(seq)
                        left_len += 1
            if not done_right:
                for v in range(j, len(right_bucket), 5):
                    seq = right_bucket[v]
                    if not seq:
                        break
                    if seq != left_seq and _not_in_bucket(j, seq, left_bucket):
                        _slot(stack, right_len, i + 1)[2] = await get_right(seq)
                        right_len += 1
            if terminator(i) and len(stack) > start:
                _split_collisions(stack, start, len(stack), i)
        if done_left:
            yield DiffEntry(left.key, left, None)  # type: ignore[union-attr]
        elif done_right:
            yield DiffEntry(right.key, None, right)  # type: ignore[union-attr]


def _seq(node: TrieNode | None) -> int:
    return node.seq if node is not None else 0


def _not_in_bucket(val: int, seq: int, bucket: list[int]) -> bool:
    return all(bucket[v] != seq for v in range(val, len(bucket), 5))


def _slot(stack: list[list[Any]], at: int, i: int) -> list[Any]:
    if len(stack) == at:
        stack.append([i, None, None])
    return stack[at]


def _split_collisions(stack: list[list[Any]], start: int, end: int, i: int) -> None:
    """Entries ``start..end`` were pushed at the terminator ``i``: their nodes share the hash of a whole
    component. Pair each left node with a right node whose component really is the same, and give
    every node left without a partner an entry of its own (hash collisions; lib/diff.js's
    ``_maybeCollides``, which compares at the wrong position, cannot tell them apart)."""
    entries = stack[start:end]
    lefts = [e[1] for e in entries if e[1] is not None]
    rights = [e[2] for e in entries if e[2] is not None]
    paired: list[list[Any]] = []
    for left in lefts:
        match = next((r for r in rights if not left.collides(r, i)), None)
        if match is not None:
            rights.remove(match)
        paired.append([i + 1, left, match])
    paired.extend([i + 1, None, r] for r in rights)
    stack[start:end] = paired
