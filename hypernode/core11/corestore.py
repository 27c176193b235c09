"""``Corestore`` for hypercore 11: many cores in one store, named as corestore 7 names them.

A store holds one secret primary key and the cores it made or was asked for. ``get(name=...)`` derives
a writable core from the primary key and the namespace (:mod:`hypernode.core11.names`: the same name
gives the same key as in JS); ``get(key=...)`` opens a core by its key (hex, z-base-32 or a
``hyper://`` URL), read-only unless this store made it, sparse: it holds what replication brings.
``namespace(name)`` is the same store seen in a nested namespace. Every open core is shared: two
``get`` of one core give one :class:`~hypernode.core11.core.Core`.

On disk (``Corestore(directory)``) the store is hypercore-storage 3's RocksDB, what corestore 7 writes
(:mod:`hypernode.core11.rocks`), so a JS corestore 7 opens a store made here and the reverse, and one
process at a time writes it (a second opener gets :class:`~hypernode.errors.StoreLockedError`). With no
directory everything lives in memory.

:func:`hypernode.stores.open_corestore` is the entry point for either generation: hypercore 9 and
hypercore 11 keys look alike (32 bytes), so where a store's generation cannot be read off its directory
the caller says which (``generation=9`` or ``11``).

The store runs no tasks: :meth:`Corestore.replicate` replicates its cores over one connection, inside
the caller's ``async with`` (:mod:`hypernode.core11.replicate`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import trio

from hypernode.core11.core import Core
from hypernode.core11.crypto import discovery_key as make_discovery_key
from hypernode.core11.manifest import Manifest, core_key, is_compat
from hypernode.core11.names import ROOT_NAMESPACE, Namespace
from hypernode.core11.replicate import Replication, open_replication
from hypernode.core11.secretstream import SecretStreamConnection
from hypernode.core11.storage import Auth, MemoryStoreStorage, StoreStorage
from hypernode.errors import HypernodeError, VerificationError
from hypernode.keys import decode_key, parse_hyper_url

__all__ = ["Corestore"]


class Corestore:
    """A hypercore 11 store (corestore 7's layout and names). Close it (or ``with``/``async with``)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 primary_key: bytes | None = None, manifest_version: int = 1) -> None:
        """``primary_key`` is for tests and migrations (JS asks for ``unsafe: true``): a store that
        already has another one refuses to open (:class:`HypernodeError`)."""
        self.directory = None if directory is None else Path(directory)
        self.storage: StoreStorage
        if self.directory is None:
            self.storage = MemoryStoreStorage()
        else:
            from hypernode.core11.rocks import RocksStoreStorage
            self.storage = RocksStoreStorage(self.directory)
        try:
            stored = self.storage.get_primary_key()
            if stored is None:
                stored = primary_key if primary_key is not None else os.urandom(32)
                self.storage.set_primary_key(stored)
            elif primary_key is not None and primary_key != stored:
                raise HypernodeError(f"another corestore is stored in {self.directory} (its primary key "
                                     "is not the one given)")
        except BaseException:
            self.storage.close()
            raise
        self._root = Namespace(stored, ROOT_NAMESPACE, manifest_version)
        self._namespace = self._root
        self._shared = _Shared()  # open cores and whether the store is closed: one for every view
        self._cores = self._shared.cores

    # -- naming ------------------------------------------------------------------------------------

    @property
    def primary_key(self) -> bytes:
        return self._root.primary_key

    @property
    def namespace_id(self) -> bytes:
        return self._namespace.id

    def namespace(self, name: str | bytes) -> Corestore:
        """This store seen from the namespace ``name`` nested in this view's (shares cores and storage)."""
        view = object.__new__(Corestore)
        view.__dict__.update(self.__dict__)
        view._namespace = self._namespace.namespace(name)
        return view

    # -- cores -------------------------------------------------------------------------------------

    def get(self, name: str | None = None, *, key: bytes | str | None = None,
            manifest: Manifest | None = None) -> Core:
        """The core named ``name`` in this namespace (made if new; writable), or the core with ``key``
        (bytes, hex, z-base-32 or ``hyper://KEY``; made empty if new, read-only unless this store
        holds its key pair). ``manifest``, with a key, is the core's manifest if known."""
        self._check_open()
        if (name is None) == (key is None):
            raise ValueError("get a core by name or by key (one of them)")
        if name is not None:
            named = self._namespace.core(name)
            dk = self.storage.get_alias(self._namespace.id, name) or named.discovery_key
            auth = Auth(named.key, named.discovery_key, named.manifest, named.key_pair)
            alias: tuple[bytes, str] | None = (self._namespace.id, name)
        else:
            assert key is not None
            raw = parse_hyper_url(key).key if isinstance(key, str) else decode_key(key)
            if manifest is not None and not is_compat(raw, manifest) and core_key(manifest) != raw:
                raise VerificationError("the manifest does not hash to the key")
            dk = make_discovery_key(raw)
            auth = Auth(raw, dk, manifest)
            alias = None
        core = self._cores.get(dk)
        if core is not None:
            return core
        storage = self.storage.open_core(dk)
        if storage is None:
            storage = self.storage.create_core(auth, alias=alias)
        elif name is not None and (stored := storage.get_auth()).key_pair is None and stored.key == auth.key:
            # a core this store got by key first (from a peer, say) and now by its name: the name gives
            # the key pair that signs for it
            w = storage.write()
            w.set_auth(dataclasses.replace(stored, manifest=auth.manifest, key_pair=auth.key_pair))
            w.commit()
        core = Core(storage)
        if manifest is not None and core.manifest is None:
            core.set_manifest(manifest)
        self._cores[dk] = core
        return core

    def open_core(self, discovery_key: bytes) -> Core | None:
        """The core with ``discovery_key`` if this store holds it (open or on disk), else None: what
        replication asks when a peer opens a channel for a core (the store is a
        :class:`~hypernode.core11.replicator.CoreProvider`)."""
        self._check_open()
        core = self._cores.get(discovery_key)
        if core is not None:
            return core
        storage = self.storage.open_core(discovery_key)
        if storage is None:
            return None
        core = self._cores[discovery_key] = Core(storage)
        return core

    @asynccontextmanager
    async def replicate(self, stream: trio.abc.Stream | SecretStreamConnection, *, initiator: bool,
                        **options: Any) -> AsyncIterator[Replication]:
        """Replicate this store with the peer at the other end of ``stream`` (a trio stream: the
        secret-stream handshake runs first; or a connection already open), as JS's
        ``store.replicate(stream)``: every core open now is offered, one the remote opens is attached
        if this store holds it, and ``options`` go to
        :func:`~hypernode.core11.replicate.open_replication`. In the block, ``await
        repl.download(core)`` and the rest of :class:`~hypernode.core11.replicate.Replication`."""
        self._check_open()
        async with open_replication(stream, initiator=initiator, cores=self.cores, provider=self,
                                    **options) as repl:
            yield repl

    def discovery_keys(self) -> list[bytes]:
        """Every core this store holds, open or not."""
        return list(self.storage.discovery_keys())

    @property
    def cores(self) -> list[Core]:
        """The cores open now."""
        return list(self._cores.values())

    # -- lifetime ----------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._shared.closed

    def _check_open(self) -> None:
        if self._shared.closed:
            raise HypernodeError("the corestore is closed")

    def close(self) -> None:
        """Close the store, every namespace view of it with it."""
        if self._shared.closed:
            return
        self._shared.closed = True
        self._cores.clear()
        self.storage.close()

    def __enter__(self) -> Corestore:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Corestore:
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()


class _Shared:
    """What every namespace view of one store shares besides its storage."""

    def __init__(self) -> None:
        self.cores: dict[bytes, Core] = {}  # the open cores, by discovery key
        self.closed = False
