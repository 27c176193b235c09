"""Which generation a store is, and :func:`open_corestore`, which opens a store of either.

hypernode speaks two Hypercore generations: hypercore 9 (corestore 5, hyperdrive 10;
:class:`hypernode.corestore.Corestore`) and hypercore 11 (corestore 7;
:class:`hypernode.core11.corestore.Corestore`). Their keys look alike (32 bytes, hex or z-base-32), so
a key never says which generation it is. A store's directory does: a hypercore 11 store holds
``CORESTORE`` and ``db/`` (RocksDB), a hypercore 9 store ``master_key`` and per-core folders. Where
there is nothing to read (a new store, or one in memory) the caller says ``generation=9`` or ``11``;
hypernode never guesses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from hypernode.errors import HypernodeError

if TYPE_CHECKING:
    from hypernode.core11.corestore import Corestore as Corestore11
    from hypernode.corestore import Corestore as Corestore9

__all__ = ["Generation", "store_generation", "open_corestore"]

Generation = Literal[9, 11]


def store_generation(directory: str | os.PathLike[str]) -> Generation | None:
    """11 or 9 if ``directory`` holds a store of that generation; None if it holds nothing (missing or
    empty). A directory holding something else is refused (:class:`HypernodeError`): it is no store,
    and nothing is written into it."""
    d = Path(directory)
    if not d.exists():
        return None
    if not d.is_dir():
        raise HypernodeError(f"{d} is not a directory")
    names = {p.name for p in d.iterdir()}
    if not names:
        return None
    if "CORESTORE" in names or "db" in names:
        return 11
    if "master_key" in names or "hypernode.lock" in names:
        return 9
    raise HypernodeError(f"{d} holds files that are not a corestore's (neither hypercore 9 nor 11)")


@overload
def open_corestore(directory: str | os.PathLike[str] | None = None, *, generation: Literal[11],
                   **options: Any) -> Corestore11: ...
@overload
def open_corestore(directory: str | os.PathLike[str] | None = None, *, generation: Literal[9],
                   **options: Any) -> Corestore9: ...
@overload
def open_corestore(directory: str | os.PathLike[str], *, generation: None = None,
                   **options: Any) -> Corestore9 | Corestore11: ...
def open_corestore(directory: str | os.PathLike[str] | None = None, *, generation: Generation | None = None,
                   **options: Any) -> Corestore9 | Corestore11:
    """A store of either generation. An existing store's generation is read off its directory, and a
    ``generation`` given must agree; a new store (no directory, or a missing or empty one) needs
    ``generation``: ValueError without it. ``options`` go to that generation's ``Corestore``."""
    found = None if directory is None else store_generation(directory)
    if found is not None and generation is not None and found != generation:
        raise HypernodeError(f"{directory} holds a hypercore {found} store, not a hypercore {generation} "
                             "one")
    chosen = found or generation
    if chosen == 11:
        from hypernode.core11.corestore import Corestore as Corestore11
        return Corestore11(directory, **options)
    if chosen == 9:
        from hypernode.corestore import Corestore as Corestore9
        return Corestore9(directory, **options)
    if chosen is None:
        raise ValueError("a new store needs its generation said: generation=9 for hypercore 9 "
                         "(hyperdrive 10), generation=11 for hypercore 11 (corestore 7)")
    raise ValueError(f"no hypercore generation {chosen!r}: 9 or 11")
