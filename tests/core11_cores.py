"""Real hypercore 11 cores (core11.core.Core over in-memory storage) for the replication tests: a
writer as corestore 7 makes one (a version-1 manifest of one signer), a reader by key alone (it learns
the manifest from a peer, as a JS core opened by key does), and what a core holds."""

from __future__ import annotations

from collections.abc import Iterable

from hypernode.core11.core import Core
from hypernode.core11.crypto import discovery_key, key_pair
from hypernode.core11.manifest import Manifest, core_key, default_signer_manifest
from hypernode.core11.storage import Auth, MemoryStoreStorage


def writer(seed: int, blocks: Iterable[bytes] = ()) -> Core:
    kp = key_pair(bytes([seed]) * 32)
    manifest = default_signer_manifest(kp.public_key)
    key = core_key(manifest)
    core = Core.create(MemoryStoreStorage().create_core(Auth(key, discovery_key(key), manifest, kp)))
    blocks = list(blocks)
    if blocks:
        core.append(blocks)
    return core


def reader(key: bytes, manifest: Manifest | None = None) -> Core:
    """A core known by ``key`` (and ``manifest`` when given; else it comes with the first proof)."""
    return Core.create(MemoryStoreStorage().create_core(Auth(key, discovery_key(key), manifest)))


def reader_of(core: Core) -> Core:
    return reader(core.key)


def held(core: Core) -> dict[int, bytes]:
    """Every block ``core`` holds, by index."""
    return {i: core.get(i) for s, e in core.ranges() for i in range(s, e)}


def stored(core: Core, upto: int) -> dict[int, bytes]:
    """The blocks below ``upto`` in ``core``'s storage itself (past what the core says it holds)."""
    found = {}
    for i in range(upto):
        value = core.storage.get_block(i)
        if value is not None:
            found[i] = value
    return found
