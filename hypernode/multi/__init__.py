"""The multi-drive view: many hyperdrives read as one filesystem (JS multi-hyperdrive 1.1.4's API).

- :mod:`hypernode.multi.multidrive` — :class:`MultiDrive`, the API;
- :mod:`hypernode.multi.index` — the merged index that keeps every call's cost independent of the
  number of drives;
- :mod:`hypernode.multi.tombstones` — how deletions of other drives' paths are recorded;
- :mod:`hypernode.multi.clock` — version vectors: the view's version, tags, and causal conflict order.
"""

from hypernode.multi.clock import CLOCK_KEY, VersionVector
from hypernode.multi.multidrive import (
    DirEntry,
    MultiDrive,
    MultiEvent,
    MultiFileDescriptor,
    MultiStat,
    RunResult,
    Subscription,
    WatchEvent,
    default_compare_stats,
)
from hypernode.multi.tombstones import Tombstone

__all__ = [
    "CLOCK_KEY", "DirEntry", "MultiDrive", "MultiEvent", "MultiFileDescriptor", "MultiStat", "RunResult",
    "Subscription", "Tombstone", "VersionVector", "WatchEvent", "default_compare_stats",
]
