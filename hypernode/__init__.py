"""hypernode: the Hypercore 9 / hypertrie 5 / hyperdrive 10 stack in Python.

The public API is importable from here (``from hypernode import Feed, Corestore, Hyperdrive``): the
main classes and every error type. The names are loaded when first used, so ``import hypernode`` alone
imports none of the subpackages (nor trio).

Bottom up: :mod:`hypernode.crypto` and :mod:`hypernode.flat_tree` (hashes, signatures, tree index math),
:mod:`hypernode.feed` (the signed append-only log, stored as hypercore 9 stores it: see
:mod:`hypernode.storage` and :mod:`hypernode.bitfield`; it knows nothing of peers),
:mod:`hypernode.varint`, :mod:`hypernode.messages` (message classes generated from the schemas in
``protocol/``, on the runtime in :mod:`hypernode.protobuf`), :mod:`hypernode.wire` (the Noise-encrypted
wire protocol, sans-IO, and its trio adapter), :mod:`hypernode.replication` (everything about a feed that
involves peers: its ``Replicator``; one connection syncing many feeds; the server that serves a store
over the network), :mod:`hypernode.corestore` (many feeds in one directory: storage and naming, no
network), :mod:`hypernode.trie` (hypertrie 5), :mod:`hypernode.drive` (hyperdrive 10),
:mod:`hypernode.multi` (many drives as one), :mod:`hypernode.node` with :mod:`hypernode.folder` and
:mod:`hypernode.cli` (the node and the ``hypernode`` command), :mod:`hypernode.discovery` (hyperswarm 2:
the DHT and local-network discovery), :mod:`hypernode.utp` (uTP, as utp-native). Beside them:
:mod:`hypernode.core11`, the hypercore 11 generation (its store is ``Corestore11``),
:mod:`hypernode.stores` (which generation a store is) and :mod:`hypernode.keys` (hex and z-base-32
keys, ``hyper://`` URLs). Across them:
:mod:`hypernode.errors` (what is raised), :mod:`hypernode.tasks` (how an object running tasks lets errors
out of its ``async with``) and :mod:`hypernode.storelock` (one process per store). The picture:
``docs/ARCHITECTURE.md``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("hypernode")  # pyproject.toml is the one place the version is written
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0+unknown"

# name -> the module it is loaded from
_EXPORTS = {
    # the main classes
    "Feed": "hypernode.feed",
    "Proof": "hypernode.feed",
    "Corestore": "hypernode.corestore",
    "Replicator": "hypernode.replication",
    "replicator_of": "hypernode.replication",
    "ReplicationServer": "hypernode.replication.server",
    "open_replication_server": "hypernode.replication.server",
    "Hyperdrive": "hypernode.drive",
    "Stat": "hypernode.drive",
    "MultiDrive": "hypernode.multi",
    "Node": "hypernode.node",
    "open_node": "hypernode.node",
    "Swarm": "hypernode.discovery",
    "DHTNode": "hypernode.discovery",
    # errors: everything hypernode raises on purpose derives from HypernodeError
    "HypernodeError": "hypernode.errors",
    "VerificationError": "hypernode.errors",
    "DecodeError": "hypernode.errors",
    "CorruptStorageError": "hypernode.errors",
    "NotWritableError": "hypernode.errors",
    "BlockNotAvailableError": "hypernode.errors",
    "MissingTreeNode": "hypernode.errors",
    "StoreLockedError": "hypernode.errors",
    "StoreRefusedError": "hypernode.errors",
    "UnsupportedStoreError": "hypernode.errors",
    "PeerTimeoutError": "hypernode.errors",
    "RLEError": "hypernode.rle",
    "ProtocolError": "hypernode.wire.frames",
    "FrameError": "hypernode.wire.frames",
    "HandshakeError": "hypernode.wire.noise",
    "ConnectionClosed": "hypernode.wire.stream",
    "ReplicationError": "hypernode.replication.peer",
    "CorruptTrieError": "hypernode.trie.node",
    "MDNSError": "hypernode.discovery.local",
    # uTP's (hypernode.utp): its connection errors are OSErrors (ConnectionError), as TCP's are
    "UTPError": "hypernode.utp.connection",
    "UTPLimitError": "hypernode.utp.connection",
    "UTPConnectionError": "hypernode.utp.connection",
    "UTPConnectionRefused": "hypernode.utp.connection",
    "UTPConnectionReset": "hypernode.utp.connection",
    "UTPTimeout": "hypernode.utp.connection",
    "PacketError": "hypernode.utp.packet",
    # a drive's errors are OSError subclasses with hyperdrive's errnos
    "DriveError": "hypernode.drive.errors",
    "FileNotFound": "hypernode.drive.errors",
    "PathAlreadyExists": "hypernode.drive.errors",
    "NotADirectory": "hypernode.drive.errors",
    "IsADirectory": "hypernode.drive.errors",
    "DirectoryNotEmpty": "hypernode.drive.errors",
    "PermissionDenied": "hypernode.drive.errors",
    "BadFileDescriptor": "hypernode.drive.errors",
    "InvalidArgument": "hypernode.drive.errors",
    "CorruptEntry": "hypernode.drive.errors",
    "ContentNotAvailable": "hypernode.drive.errors",
    "SymlinkLoop": "hypernode.drive.errors",
    "CrossDevice": "hypernode.drive.errors",
    # mounting drives through FUSE
    "MountError": "hypernode.mount",
    # sharing and cloning folders
    "FolderUnavailable": "hypernode.folder",
    "CloneRefused": "hypernode.folder",
    "ExportIncomplete": "hypernode.folder",
    "Stalled": "hypernode.folder",
    # the gateway and a running node's control socket
    "HTTPError": "hypernode.gateway.routes",
    "ControlError": "hypernode.control",
    # the current generation (hypernode.core11), and choosing a generation
    "Corestore11": "hypernode.core11.corestore:Corestore",  # module:name where the names differ
    "Core": "hypernode.core11.core",
    "open_corestore": "hypernode.stores",
    "store_generation": "hypernode.stores",
    "parse_hyper_url": "hypernode.keys",
    "hyper_url": "hypernode.keys",
    "SecretStreamError": "hypernode.core11.secretstream",
    "CoreReplicationError": "hypernode.core11.replicator",
}

__all__ = [
    "Feed", "Proof", "Corestore", "Replicator", "replicator_of", "ReplicationServer",
    "open_replication_server", "Hyperdrive", "Stat", "MultiDrive", "Node", "open_node", "Swarm", "DHTNode",
    "HypernodeError", "VerificationError", "DecodeError", "CorruptStorageError", "NotWritableError",
    "BlockNotAvailableError", "MissingTreeNode", "StoreLockedError", "StoreRefusedError",
    "UnsupportedStoreError", "PeerTimeoutError", "RLEError",
    "ProtocolError",
    "FrameError", "HandshakeError", "ConnectionClosed",
    "ReplicationError", "CorruptTrieError", "MDNSError", "DriveError", "FileNotFound", "PathAlreadyExists",
    "NotADirectory", "IsADirectory", "DirectoryNotEmpty", "PermissionDenied", "BadFileDescriptor",
    "InvalidArgument", "CorruptEntry", "ContentNotAvailable", "SymlinkLoop", "FolderUnavailable",
    "CloneRefused", "ExportIncomplete", "Stalled", "CrossDevice", "MountError", "HTTPError", "ControlError",
    "UTPError", "UTPLimitError", "UTPConnectionError", "UTPConnectionRefused", "UTPConnectionReset",
    "UTPTimeout", "PacketError",
    "Corestore11", "Core", "open_corestore", "store_generation", "parse_hyper_url", "hyper_url",
    "SecretStreamError", "CoreReplicationError",
]

if TYPE_CHECKING:
    from hypernode.control import ControlError
    from hypernode.core11.core import Core
    from hypernode.core11.corestore import Corestore as Corestore11
    from hypernode.core11.replicator import CoreReplicationError
    from hypernode.core11.secretstream import SecretStreamError
    from hypernode.corestore import Corestore
    from hypernode.discovery import DHTNode, Swarm
    from hypernode.discovery.local import MDNSError
    from hypernode.drive import Hyperdrive, Stat
    from hypernode.drive.errors import (
        BadFileDescriptor,
        ContentNotAvailable,
        CorruptEntry,
        CrossDevice,
        DirectoryNotEmpty,
        DriveError,
        FileNotFound,
        InvalidArgument,
        IsADirectory,
        NotADirectory,
        PathAlreadyExists,
        PermissionDenied,
        SymlinkLoop,
    )
    from hypernode.errors import (
        BlockNotAvailableError,
        CorruptStorageError,
        DecodeError,
        HypernodeError,
        MissingTreeNode,
        NotWritableError,
        PeerTimeoutError,
        StoreLockedError,
        StoreRefusedError,
        UnsupportedStoreError,
        VerificationError,
    )
    from hypernode.feed import Feed, Proof
    from hypernode.folder import CloneRefused, ExportIncomplete, FolderUnavailable, Stalled
    from hypernode.gateway.routes import HTTPError
    from hypernode.keys import hyper_url, parse_hyper_url
    from hypernode.mount import MountError
    from hypernode.multi import MultiDrive
    from hypernode.node import Node, open_node
    from hypernode.replication import Replicator, replicator_of
    from hypernode.replication.peer import ReplicationError
    from hypernode.replication.server import ReplicationServer, open_replication_server
    from hypernode.rle import RLEError
    from hypernode.stores import open_corestore, store_generation
    from hypernode.trie.node import CorruptTrieError
    from hypernode.utp.connection import (
        UTPConnectionError,
        UTPConnectionRefused,
        UTPConnectionReset,
        UTPError,
        UTPLimitError,
        UTPTimeout,
    )
    from hypernode.utp.packet import PacketError
    from hypernode.wire.frames import FrameError, ProtocolError
    from hypernode.wire.noise import HandshakeError
    from hypernode.wire.stream import ConnectionClosed


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hypernode' has no attribute {name!r}")
    module, _, attribute = module.partition(":")
    value = getattr(importlib.import_module(module), attribute or name)
    globals()[name] = value  # the next lookup finds it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
