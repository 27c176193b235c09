"""Kademlia tables of dht-rpc: the routing table of known nodes and the per-query table of candidates.

:class:`RoutingTable` keeps at most ``k`` nodes per bucket, a bucket being the length of the common
prefix of a node's id with ours (the buckets the npm ``k-bucket`` ends up with along our own id). A
full bucket refuses newcomers and names its least recently seen node, which the caller pings and drops
if it is gone, making room.

:class:`QueryTable` follows dht-rpc's ``query-table.js``: the ``k`` closest nodes heard of but not yet
answered (``unverified``) and the ``k`` closest that answered with a round-trip token (``closest``),
each list sorted by XOR distance to the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

K = 20


def distance(a: bytes, b: bytes) -> int:
    return int.from_bytes(a, "big") ^ int.from_bytes(b, "big")


@dataclass(eq=False)
class Node:
    """A node of the routing table (or a query's candidate)."""

    id: bytes
    host: str
    port: int
    token: bytes | None = None  # the round-trip token it gave us (for updates)
    to: bytes | None = None  # our address as it saw it
    seen: float = 0.0  # when it last answered or asked us something
    referrer: tuple[str, int] | None = None
    queried: bool = False
    dist: int = field(default=0, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)


class RoutingTable:
    def __init__(self, local_id: bytes, k: int = K) -> None:
        self.id = local_id
        self.k = k
        self._local = int.from_bytes(local_id, "big")
        self._bits = len(local_id) * 8
        self.buckets: list[dict[bytes, Node]] = [{} for _ in range(self._bits + 1)]
        self._count = 0

    def _bucket(self, node_id: bytes) -> dict[bytes, Node]:
        d = self._local ^ int.from_bytes(node_id, "big")
        return self.buckets[self._bits - d.bit_length()]

    def __len__(self) -> int:
        return self._count

    def __iter__(self):  # type: ignore[no-untyped-def]
        for b in self.buckets:
            yield from b.values()

    def get(self, node_id: bytes) -> Node | None:
        return self._bucket(node_id).get(node_id)

    def add(self, node: Node) -> Node | None:
        """Add or refresh ``node``. Returns None if it is in the table now, else the least recently
        seen node of its full bucket (the one to ping before replacing it)."""
        if node.id == self.id:
            return None
        bucket = self._bucket(node.id)
        old = bucket.get(node.id)
        if old is not None:
            old.host, old.port, old.seen = node.host, node.port, max(old.seen, node.seen)
            if node.token is not None:
                old.token = node.token
            if node.to is not None:
                old.to = node.to
            bucket[node.id] = bucket.pop(node.id)  # most recently seen last
            return None
        if len(bucket) >= self.k:
            return next(iter(bucket.values()))
        bucket[node.id] = node
        self._count += 1
        return None

    def remove(self, node_id: bytes) -> Node | None:
        bucket = self._bucket(node_id)
        node = bucket.pop(node_id, None)
        if node is not None:
            self._count -= 1
        return node

    def closest(self, target: bytes, n: int = K) -> list[Node]:
        t = int.from_bytes(target, "big")
        return sorted(self, key=lambda node: t ^ int.from_bytes(node.id, "big"))[:n]

    def oldest(self, n: int) -> list[Node]:
        return sorted(self, key=lambda node: node.seen)[:n]


class QueryTable:
    def __init__(self, local_id: bytes, target: bytes, k: int = K) -> None:
        self.id = local_id
        self.target = target
        self._target = int.from_bytes(target, "big")
        self.k = k
        self.closest: list[Node] = []
        self.unverified: list[Node] = []

    def _dist(self, node_id: bytes) -> int:
        return self._target ^ int.from_bytes(node_id, "big")

    def add_unverified(self, node: Node) -> None:
        if node.id == self.id:
            return
        node.dist = self._dist(node.id)
        self._insert(node, self.unverified)

    def add_verified(self, node_id: bytes | None, token: bytes | None, host: str, port: int) -> None:
        if not node_id or not token or node_id == self.id:
            return
        prev = next((n for n in self.unverified if n.id == node_id), None)
        if prev is None:
            prev = Node(node_id, host, port, dist=self._dist(node_id))
        prev.token = token
        self._insert(prev, self.closest)

    def _insert(self, node: Node, lst: list[Node]) -> None:
        if len(lst) >= self.k and node.dist >= lst[-1].dist:
            return
        if any(n.id == node.id for n in lst):
            return
        if len(lst) >= self.k:
            lst.pop()
        i = len(lst)
        while i and lst[i - 1].dist > node.dist:
            i -= 1
        lst.insert(i, node)
