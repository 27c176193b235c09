"""hypernode: the Hypercore 9 / hypertrie 5 / hyperdrive 10 stack in Python.

Bottom up: :mod:`hypernode.crypto` and :mod:`hypernode.flat_tree` (hashes, signatures, tree index math),
:mod:`hypernode.feed` (the signed append-only log, stored as hypercore 9 stores it: see
:mod:`hypernode.storage`, :mod:`hypernode.bitfield` and :mod:`hypernode.merkle`).
"""

__version__ = "0.1.0"
