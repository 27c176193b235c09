"""hypernode: the Hypercore 9 / hypertrie 5 / hyperdrive 10 stack in Python.

Bottom up: :mod:`hypernode.crypto` and :mod:`hypernode.flat_tree` (hashes, signatures, tree index math),
:mod:`hypernode.feed` (the signed append-only log, stored as hypercore 9 stores it: see
:mod:`hypernode.storage` and :mod:`hypernode.bitfield`), :mod:`hypernode.protobuf` (the message codec
built from the schemas in ``protocol/``), :mod:`hypernode.wire` (the Noise-encrypted wire protocol,
sans-IO, and its trio adapter), :mod:`hypernode.replication` and :mod:`hypernode.corestore` (feeds synced
over one connection), :mod:`hypernode.trie` (hypertrie 5), :mod:`hypernode.drive` (hyperdrive 10),
:mod:`hypernode.multi` (many drives as one), :mod:`hypernode.node` with :mod:`hypernode.folder` and
:mod:`hypernode.cli` (the node and the ``hypernode`` command), :mod:`hypernode.discovery` (hyperswarm 2:
the DHT and local-network discovery). Across them: :mod:`hypernode.errors` (what is raised),
:mod:`hypernode.tasks` (how an object running tasks lets errors out of its ``async with``) and
:mod:`hypernode.storelock` (one process per store).
"""

from importlib.metadata import PackageNotFoundError, version

from hypernode.errors import (
    CorruptStorageError,
    HypernodeError,
    PeerTimeoutError,
    StoreLockedError,
    VerificationError,
)
from hypernode.feed import Feed, Proof

__all__ = ["Feed", "Proof", "HypernodeError", "CorruptStorageError", "VerificationError",
           "StoreLockedError", "PeerTimeoutError"]
try:
    __version__ = version("hypernode")  # pyproject.toml is the one place the version is written
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"
