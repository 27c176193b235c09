"""Seeding: the drives a store keeps complete and online, and the task that keeps them so.

``STORE/seeds.json`` lists the seeded drives (``hypernode seed KEY``, ``unseed KEY``, ``seeds``), each
with the time it was added. The file is written atomically (a temporary file renamed over it), and only
by the process that holds the store's lock (:mod:`hypernode.storelock`): a command on a store in use
asks the running node instead (:mod:`hypernode.control`).

:class:`Seeder` runs inside a :class:`~hypernode.node.Node`: for every seeded drive it opens the drive
(so the node serves it and announces it, when it discovers peers), downloads every block of it and of
every drive mounted in it, and keeps following it live (:meth:`Hyperdrive.mirror
<hypernode.drive.Hyperdrive.mirror>`). Seeds added or removed while it runs start or stop at once;
after a restart every seeded drive is seeded again. A drive that cannot be opened (a damaged store) is
logged and left out; the others go on.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import trio

from hypernode.errors import HypernodeError

if TYPE_CHECKING:
    from hypernode.drive import Hyperdrive

log = logging.getLogger(__name__)

SEEDS = "seeds.json"


@dataclass(frozen=True)
class Seed:
    """A seeded drive: its key and when it was seeded (seconds since the epoch)."""

    key: bytes
    added: float


def _path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / SEEDS


def read_seeds(directory: str | os.PathLike[str] | None) -> list[Seed]:
    """The seeds listed in the store in ``directory``, in the order they were added (none for a store
    kept in memory). A damaged file raises :class:`~hypernode.errors.HypernodeError` naming it."""
    if directory is None:
        return []
    path = _path(directory)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise HypernodeError(f"{path} is damaged: {e}") from None
    entries = data.get("seeds") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise HypernodeError(f"{path} is damaged: no 'seeds' list")
    seeds = []
    for entry in entries:
        try:
            key = bytes.fromhex(entry["key"])
            added = float(entry.get("added", 0))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise HypernodeError(f"{path} lists a bad seed: {entry!r}") from None
        if len(key) != 32:
            raise HypernodeError(f"{path} lists a bad seed: {entry!r}")
        seeds.append(Seed(key, added))
    return seeds


def _write(directory: str | os.PathLike[str], seeds: list[Seed]) -> None:
    path = _path(directory)
    tmp = path.with_suffix(".tmp")
    body = {"seeds": [{"key": s.key.hex(), "added": round(s.added, 3)} for s in seeds]}
    tmp.write_text(json.dumps(body, indent=1) + "\n")
    os.replace(tmp, path)


def add_seeds(directory: str | os.PathLike[str] | None, keys: list[bytes]) -> list[bytes]:
    """Add ``keys`` to the list (those not in it yet, in order); returns the ones added. The caller
    holds the store's lock."""
    seeds = read_seeds(directory)
    known = {s.key for s in seeds}
    added = []
    for key in keys:
        if key not in known:
            known.add(key)
            seeds.append(Seed(key, time.time()))
            added.append(key)
    if added and directory is not None:
        _write(directory, seeds)
    return added


def remove_seed(directory: str | os.PathLike[str] | None, key: bytes) -> bool:
    """Take ``key`` off the list; False if it was not on it. The caller holds the store's lock."""
    seeds = read_seeds(directory)
    kept = [s for s in seeds if s.key != key]
    if len(kept) == len(seeds):
        return False
    if directory is not None:
        _write(directory, kept)
    return True


class DriveHost(Protocol):
    """What a :class:`Seeder` needs of the node it runs in (:class:`hypernode.node.Node` is one):
    its store's folder, and opening a drive to serve it."""

    @property
    def directory(self) -> Path | None: ...

    async def open_drive(self, key: bytes | str) -> Hyperdrive: ...


class Seeder:
    """Keeps every seeded drive of a running node downloaded and followed (see the module docstring).

    ``await nursery.start(seeder.run)`` starts it; :meth:`add` and :meth:`remove` change the list
    (the file too) while it runs."""

    def __init__(self, node: DriveHost) -> None:
        self.node = node
        self._scopes: dict[bytes, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None
        self._memory: list[Seed] = []  # the list of a node kept in memory

    def seeds(self) -> list[Seed]:
        """The seeds, as listed in the store."""
        return read_seeds(self.node.directory) if self.node.directory is not None else list(self._memory)

    def seeding(self, key: bytes) -> bool:
        """Is the drive of ``key`` being seeded now (its task running)?"""
        return key in self._scopes

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Seed every listed drive until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                for seed in self.seeds():
                    self._start(seed.key)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def add(self, keys: list[bytes]) -> list[bytes]:
        """Seed ``keys`` from now on (and after restarts); returns the ones that were not seeded yet."""
        if self.node.directory is None:
            known = {s.key for s in self._memory}
            added = [k for k in dict.fromkeys(keys) if k not in known]
            self._memory += [Seed(k, time.time()) for k in added]
        else:
            added = add_seeds(self.node.directory, keys)
        for key in keys:
            self._start(key)
        return added

    def remove(self, key: bytes) -> bool:
        """Stop seeding ``key`` (the node still serves what it has); False if it was not seeded."""
        if self.node.directory is None:
            before = len(self._memory)
            self._memory = [s for s in self._memory if s.key != key]
            removed = len(self._memory) != before
        else:
            removed = remove_seed(self.node.directory, key)
        scope = self._scopes.pop(key, None)
        if scope is not None:
            scope.cancel()
        return removed

    def _start(self, key: bytes) -> None:
        if key in self._scopes:
            return
        if self._nursery is None:
            raise HypernodeError("the seeder is not running")
        scope = trio.CancelScope()
        self._scopes[key] = scope
        self._nursery.start_soon(self._seed, key, scope)

    async def _seed(self, key: bytes, scope: trio.CancelScope) -> None:
        try:
            with scope:
                drive = await self.node.open_drive(key)  # served, and announced when discovering
                async with drive.mirror():  # every block, mounts too, live
                    await trio.sleep_forever()
        except (HypernodeError, OSError) as e:  # one drive failing does not stop the others
            log.error("drive %s is not seeded: %s", key.hex(), e)
        finally:
            if self._scopes.get(key) is scope:
                del self._scopes[key]
