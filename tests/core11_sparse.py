"""A sparse hypercore 11 core held in memory, for the replication tests until core11.core lands:
MerkleTree nodes as proofs bring them, blocks by index, proof.py's make_proof/verify_proof."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hypernode.core11.crypto import KeyPair, discovery_key, key_pair
from hypernode.core11.manifest import Manifest, core_key, default_signer_manifest
from hypernode.core11.proof import BlockRequest, HashRequest, Proof, UpgradeRequest, make_proof, verify_proof
from hypernode.core11.tree import MerkleTree
from hypernode.core11.verifier import Verifier
from hypernode.errors import BlockNotAvailableError


@dataclass(frozen=True)
class Applied:
    upgraded: bool
    length: int
    block: int | None


class _Values:
    def __init__(self, blocks: dict[int, bytes]) -> None:
        self.blocks = blocks

    def __getitem__(self, i: int) -> bytes:
        try:
            return self.blocks[i]
        except KeyError:
            raise BlockNotAvailableError(f"block {i}") from None


class SparseCore:
    def __init__(self, key: bytes, manifest: Manifest, key_pair: KeyPair | None = None) -> None:
        self.key = key
        self.manifest: Manifest | None = manifest
        self.discovery_key = discovery_key(key)
        self.verifier = Verifier(key, manifest)
        self.key_pair = key_pair
        self.tree = MerkleTree()
        self.blocks: dict[int, bytes] = {}
        self.signature: bytes | None = None
        self.stored = 0  # blocks stored by apply

    @classmethod
    def create(cls, seed: bytes = b"\x01" * 32) -> SparseCore:
        kp = key_pair(seed)
        m = default_signer_manifest(kp.public_key)
        return cls(core_key(m), m, kp)

    def reader(self) -> SparseCore:
        assert self.manifest is not None
        return SparseCore(self.key, self.manifest)

    @property
    def length(self) -> int:
        return self.tree.length

    @property
    def fork(self) -> int:
        return self.tree.fork

    @property
    def contiguous_length(self) -> int:
        i = 0
        while i in self.blocks:
            i += 1
        return i

    def has(self, index: int) -> bool:
        return index in self.blocks

    def has_all(self, start: int, end: int) -> bool:
        return all(i in self.blocks for i in range(start, end))

    def get(self, index: int) -> bytes:
        return _Values(self.blocks)[index]

    def ranges(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
        end = self.length if end is None else end
        i = start
        while i < end:
            if i in self.blocks:
                j = i
                while j < end and j in self.blocks:
                    j += 1
                yield (i, j)
                i = j
            else:
                i += 1

    def append(self, blocks: bytes | Iterable[bytes]) -> int:
        assert self.key_pair is not None
        bs = [blocks] if isinstance(blocks, bytes) else list(blocks)
        start = self.length
        batch = self.tree.batch(bs)
        self.signature = self.verifier.sign(batch.hash(), batch.length, batch.fork, self.key_pair)
        self.tree.commit(batch)
        for k, b in enumerate(bs):
            self.blocks[start + k] = b
        return self.length

    def proof(self, *, block: BlockRequest | None = None, hash: HashRequest | None = None,
              upgrade: UpgradeRequest | None = None) -> Proof:
        if block is not None and block.index not in self.blocks:
            raise BlockNotAvailableError(f"block {block.index}")
        return make_proof(self.tree, self.signature, block=block, hash=hash, upgrade=upgrade,
                          values=_Values(self.blocks))  # type: ignore[arg-type]

    def apply(self, proof: Proof) -> Applied:
        vp = verify_proof(self.tree, self.verifier, proof)
        for n in vp.nodes:
            self.tree.nodes[n.index] = n
        upgraded = proof.upgrade is not None
        if upgraded:
            self.tree.roots = list(vp.roots)
            self.tree.length = vp.length
            self.tree.byte_length = sum(r.size for r in vp.roots)
            self.signature = vp.signature
        idx = None
        if proof.block is not None and vp.value is not None:
            self.blocks[proof.block.index] = vp.value
            idx = proof.block.index
            self.stored += 1
        return Applied(upgraded, self.length, idx)
