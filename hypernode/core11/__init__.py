"""The current Hypercore generation (hypercore 10 and 11), beside the hypercore 9 stack: feeds, storage,
wire, replication and the store (corestore 7). Users start at :mod:`~hypernode.core11.corestore`
(``hypernode.Corestore11``, or :func:`hypernode.stores.open_corestore` with ``generation=11``).

Bottom up: :mod:`~hypernode.core11.encoding` (the compact-encoding primitives every v11 structure is made of),
:mod:`~hypernode.core11.crypto` (leaf, parent and tree hashes, discovery key, the namespaces and
capabilities, what a key signs), :mod:`~hypernode.core11.tree` (tree nodes, the in-memory merkle tree and
one read from storage), :mod:`~hypernode.core11.manifest` (the manifest, its encoding and hash, the core key
it gives, multisig signatures), :mod:`~hypernode.core11.verifier` (signing and verifying a tree state under
a manifest), :mod:`~hypernode.core11.log` (a signed append-only log held in memory) and
:mod:`~hypernode.core11.proof` (block, hash and upgrade proofs: made as JS makes them, and verified),
:mod:`~hypernode.core11.messages` (the replication messages of a ``"hypercore/alpha"`` channel and its
handshake), :mod:`~hypernode.core11.mux` (a sans-IO protomux: channels over one message stream) and
:mod:`~hypernode.core11.secretstream` (the @hyperswarm/secret-stream every connection runs over: Noise XX
with Ed25519 keys, then libsodium secretstream frames; sans-IO, with a trio adapter) and
:mod:`~hypernode.core11.names` (corestore 7's namespaces and the key pair, manifest and key of a core got by
name from a store's primary key), :mod:`~hypernode.core11.storage` (what a core and a store keep, and the
in-memory storage), :mod:`~hypernode.core11.rocks` (all of it on disk in JS's hypercore-storage RocksDB
format), :mod:`~hypernode.core11.bitfield` (which blocks a core holds, in hypercore 11's pages)
and :mod:`~hypernode.core11.core` (the sparse, persistent core over that storage: appends, truncations,
proofs made and applied), :mod:`~hypernode.core11.replicator` (replication of many cores over one stream,
sans-IO: channels paired by discovery key, sync, upgrades, wants, requests answered and proofs applied) and
:mod:`~hypernode.core11.replicate` (its trio adapter, ``open_replication`` over a secret-stream), and
:mod:`~hypernode.core11.corestore` (the store: cores by name and by key, namespaces, on disk or in memory,
replicated over a connection).

Nothing here imports the hypercore 9 wire or replication: the two generations share only the generic
pieces (:mod:`hypernode.errors`, :mod:`hypernode.flat_tree`, :mod:`hypernode.keys`, :mod:`hypernode.tasks`,
the ed25519 helpers of :mod:`hypernode.crypto`).
"""
