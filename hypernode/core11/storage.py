"""What a hypercore 11 core and a corestore 7 store keep, and where: the storage interface and its
in-memory implementation.

A core keeps its :class:`Auth` (key, manifest, key pair), its :class:`Head` (the signed state: fork,
length, tree hash, signature), its blocks, its merkle tree nodes, its bitfield pages (4,096 bytes each,
hypercore 11's layout: bit ``i`` of the page is block ``page * 32768 + i``, little-endian words) and its
:class:`Hints`. Reads are plain methods of :class:`CoreStorage`; every change goes through one
:class:`CoreWrite` batch, taken as a whole by :meth:`CoreWrite.commit` or not at all.

A store (:class:`StoreStorage`) keeps the primary key (JS calls it the seed), the default discovery key,
the cores it holds by discovery key, and the aliases that name a core in a namespace (corestore's
``get({ name })``).

:class:`MemoryStoreStorage` keeps all of it in dicts, for tests and for ``storage=None`` stores.
hypernode.core11.rocks keeps the same things in RocksDB in the format of hypercore-storage 3 (what
corestore 7 and hypercore 11 use), so that JS and Python open each other's stores.

Everything here is synchronous: a read is a dict or RocksDB lookup, and the sans-IO replicator reads
storage while it handles a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from hypernode.core11.crypto import KeyPair
from hypernode.core11.manifest import Manifest
from hypernode.core11.tree import Node

__all__ = [
    "Auth", "Head", "Hints", "CoreStorage", "CoreWrite", "StoreStorage",
    "MemoryCoreStorage", "MemoryStoreStorage", "BITFIELD_PAGE_BYTES", "BITFIELD_PAGE_BITS",
]

BITFIELD_PAGE_BYTES = 4096
_V = TypeVar("_V")
BITFIELD_PAGE_BITS = BITFIELD_PAGE_BYTES * 8


@dataclass(frozen=True, slots=True)
class Auth:
    """Who a core is: its key and discovery key, the manifest that hashes to the key (None until
    known, for a core opened by key alone), the key pair when this store can sign, and the block
    encryption key when the core is encrypted."""

    key: bytes
    discovery_key: bytes
    manifest: Manifest | None = None
    key_pair: KeyPair | None = None
    encryption_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Head:
    """The newest signed state: ``signature`` signs (tree ``root_hash``, ``length``, ``fork``)."""

    fork: int
    length: int
    root_hash: bytes
    signature: bytes | None


@dataclass(frozen=True, slots=True)
class Hints:
    """What can be recomputed but is kept to save the work: the length of the run of blocks held
    from block 0."""

    contiguous_length: int = 0


class CoreWrite(Protocol):
    """One batch of changes to a core; nothing is visible until :meth:`commit`."""

    def set_auth(self, auth: Auth) -> None: ...
    def set_head(self, head: Head) -> None: ...
    def set_hints(self, hints: Hints) -> None: ...
    def put_block(self, index: int, data: bytes | bytearray | memoryview) -> None: ...
    def put_blocks(self, start: int, blocks: Sequence[bytes | bytearray | memoryview]) -> None:
        """Blocks ``start``, ``start + 1``, ... (as many :meth:`put_block`)."""
    def delete_block_range(self, start: int, end: int) -> None:
        """Delete blocks ``start`` <= i < ``end`` (``end`` -1: to the end)."""
    def put_tree_node(self, node: Node) -> None: ...
    def put_tree_nodes(self, nodes: Iterable[Node]) -> None:
        """As many :meth:`put_tree_node`."""
    def delete_tree_node_range(self, start: int, end: int) -> None:
        """Delete tree nodes with flat-tree index ``start`` <= i < ``end`` (``end`` -1: to the end)."""
    def put_bitfield_page(self, index: int, page: bytes) -> None: ...
    def delete_bitfield_page_range(self, start: int, end: int) -> None: ...
    def commit(self) -> None: ...


class CoreStorage(Protocol):
    """One core's storage."""

    @property
    def discovery_key(self) -> bytes: ...

    def get_auth(self) -> Auth: ...
    def get_head(self) -> Head | None: ...
    def get_hints(self) -> Hints: ...
    def get_block(self, index: int) -> bytes | None: ...
    def get_tree_node(self, index: int) -> Node | None: ...
    def get_bitfield_page(self, index: int) -> bytes | None: ...
    def bitfield_pages(self) -> Iterator[tuple[int, bytes]]:
        """Every stored bitfield page, by page index, in order."""
    def write(self) -> CoreWrite: ...


class StoreStorage(Protocol):
    """A store's storage: the cores it holds and what names them."""

    def get_primary_key(self) -> bytes | None: ...
    def set_primary_key(self, primary_key: bytes) -> None: ...
    def get_default_discovery_key(self) -> bytes | None: ...
    def set_default_discovery_key(self, discovery_key: bytes) -> None: ...
    def get_alias(self, namespace: bytes, name: str) -> bytes | None:
        """The discovery key of the core named ``name`` in ``namespace``, if this store made one."""
    def has_core(self, discovery_key: bytes) -> bool: ...
    def create_core(self, auth: Auth, *, alias: tuple[bytes, str] | None = None) -> CoreStorage:
        """A new core's storage (its auth written), named by ``alias`` (namespace, name) if given;
        an existing core's storage if the store has that discovery key already."""
    def open_core(self, discovery_key: bytes) -> CoreStorage | None: ...
    def discovery_keys(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


def _delete_range(table: dict[int, _V], start: int, end: int) -> None:
    for k in [k for k in table if k >= start and (end == -1 or k < end)]:
        del table[k]


class _MemoryWrite:
    """A batch of changes to a :class:`MemoryCoreStorage`, each kept as a step run on commit."""

    def __init__(self, core: MemoryCoreStorage) -> None:
        self._core = core
        self._steps: list[Callable[[MemoryCoreStorage], None]] = []

    def set_auth(self, auth: Auth) -> None:
        self._steps.append(lambda c: setattr(c, "_auth", auth))

    def set_head(self, head: Head) -> None:
        self._steps.append(lambda c: setattr(c, "_head", head))

    def set_hints(self, hints: Hints) -> None:
        self._steps.append(lambda c: setattr(c, "_hints", hints))

    def put_block(self, index: int, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        self._steps.append(lambda c: c._blocks.__setitem__(index, data))

    def put_blocks(self, start: int, blocks: Sequence[bytes | bytearray | memoryview]) -> None:
        for i, data in enumerate(blocks, start):
            self.put_block(i, data)

    def delete_block_range(self, start: int, end: int) -> None:
        self._steps.append(lambda c: _delete_range(c._blocks, start, end))

    def put_tree_node(self, node: Node) -> None:
        self._steps.append(lambda c: c._nodes.__setitem__(node.index, node))

    def put_tree_nodes(self, nodes: Iterable[Node]) -> None:
        for node in nodes:
            self.put_tree_node(node)

    def delete_tree_node_range(self, start: int, end: int) -> None:
        self._steps.append(lambda c: _delete_range(c._nodes, start, end))

    def put_bitfield_page(self, index: int, page: bytes) -> None:
        if len(page) != BITFIELD_PAGE_BYTES:
            raise ValueError(f"a bitfield page is {BITFIELD_PAGE_BYTES} bytes, not {len(page)}")
        page = bytes(page)
        self._steps.append(lambda c: c._pages.__setitem__(index, page))

    def delete_bitfield_page_range(self, start: int, end: int) -> None:
        self._steps.append(lambda c: _delete_range(c._pages, start, end))

    def commit(self) -> None:
        for step in self._steps:
            step(self._core)
        self._steps.clear()


@dataclass(eq=False)
class MemoryCoreStorage:
    """A core's storage in memory."""

    _auth: Auth
    _head: Head | None = None
    _hints: Hints = field(default_factory=Hints)
    _blocks: dict[int, bytes] = field(default_factory=dict)
    _nodes: dict[int, Node] = field(default_factory=dict)
    _pages: dict[int, bytes] = field(default_factory=dict)

    @property
    def discovery_key(self) -> bytes:
        return self._auth.discovery_key

    def get_auth(self) -> Auth:
        return self._auth

    def get_head(self) -> Head | None:
        return self._head

    def get_hints(self) -> Hints:
        return self._hints

    def get_block(self, index: int) -> bytes | None:
        return self._blocks.get(index)

    def get_tree_node(self, index: int) -> Node | None:
        return self._nodes.get(index)

    def get_bitfield_page(self, index: int) -> bytes | None:
        return self._pages.get(index)

    def bitfield_pages(self) -> Iterator[tuple[int, bytes]]:
        for index in sorted(self._pages):
            yield index, self._pages[index]

    def write(self) -> _MemoryWrite:
        return _MemoryWrite(self)


class MemoryStoreStorage:
    """A store's storage in memory."""

    def __init__(self) -> None:
        self._primary_key: bytes | None = None
        self._default_discovery_key: bytes | None = None
        self._cores: dict[bytes, MemoryCoreStorage] = {}
        self._aliases: dict[tuple[bytes, str], bytes] = {}

    def get_primary_key(self) -> bytes | None:
        return self._primary_key

    def set_primary_key(self, primary_key: bytes) -> None:
        self._primary_key = bytes(primary_key)

    def get_default_discovery_key(self) -> bytes | None:
        return self._default_discovery_key

    def set_default_discovery_key(self, discovery_key: bytes) -> None:
        self._default_discovery_key = bytes(discovery_key)

    def get_alias(self, namespace: bytes, name: str) -> bytes | None:
        return self._aliases.get((bytes(namespace), name))

    def has_core(self, discovery_key: bytes) -> bool:
        return bytes(discovery_key) in self._cores

    def create_core(self, auth: Auth, *, alias: tuple[bytes, str] | None = None) -> MemoryCoreStorage:
        core = self._cores.get(auth.discovery_key)
        if core is None:
            core = self._cores[auth.discovery_key] = MemoryCoreStorage(auth)
        if alias is not None:
            self._aliases[(bytes(alias[0]), alias[1])] = auth.discovery_key
        return core

    def open_core(self, discovery_key: bytes) -> MemoryCoreStorage | None:
        return self._cores.get(bytes(discovery_key))

    def discovery_keys(self) -> Iterator[bytes]:
        yield from list(self._cores)

    def close(self) -> None:
        pass
