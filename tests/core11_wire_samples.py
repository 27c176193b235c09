"""Random values of hypercore 11's wire messages (hypernode.core11.messages), for the round-trip, fuzz and
JS interop tests: every message type with every optional part and flag, numbers at the compact-encoding
size boundaries. ``random_message(rng)`` draws one from a :class:`random.Random` (hypothesis drives it
with ``st.randoms()``; the interop test with a seeded one)."""

from __future__ import annotations

import random

from hypernode.core11.manifest import Manifest, Prologue, Signer
from hypernode.core11.messages import (
    Bitfield,
    Cancel,
    Data,
    DataSeek,
    Extension,
    Handshake,
    Message,
    NoData,
    Range,
    ReorgHint,
    Request,
    SeekRequest,
    Sync,
    Unwant,
    Want,
)
from hypernode.core11.proof import BlockRequest, DataBlock, DataHash, DataUpgrade, HashRequest, UpgradeRequest
from hypernode.core11.tree import Node

_EDGES = [0, 1, 2, 0xFC, 0xFD, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x100000000, 2**53 - 1]


def uint(rng: random.Random) -> int:
    k = rng.random()
    if k < 0.4:
        return rng.choice(_EDGES)
    if k < 0.8:
        return rng.randrange(300)
    return rng.randrange(2**53)


def blob(rng: random.Random, n: int | None = None) -> bytes:
    return rng.randbytes(rng.choice([0, 1, 5, 32, 300]) if n is None else n)


def _nodes(rng: random.Random) -> tuple[Node, ...]:
    return tuple(Node(uint(rng), uint(rng), blob(rng, 32)) for _ in range(rng.choice([0, 0, 1, 3])))


def _maybe(rng: random.Random) -> bool:
    return rng.random() < 0.5


def manifest(rng: random.Random) -> Manifest:
    version = rng.choice([0, 1, 1, 2, 3])
    signers = tuple(Signer(blob(rng, 32), blob(rng, 32)) for _ in range(rng.choice([0, 1, 1, 2, 3])))
    if version == 0:
        kind = rng.choice([0, 1, 2])
        if kind == 0:
            return Manifest(signers=(), version=0, quorum=0, prologue=Prologue(blob(rng, 32), 0))
        if kind == 1:
            return Manifest(signers=(Signer(blob(rng, 32), blob(rng, 32)),), version=0, quorum=1)
        return Manifest(signers=signers, version=0, quorum=rng.randint(0, len(signers)), allow_patch=True)
    late = version >= 2
    prologue = Prologue(blob(rng, 32), uint(rng)) if _maybe(rng) else None
    linked = tuple(blob(rng, 32) for _ in range(rng.randint(0, 2))) if late and _maybe(rng) else None
    return Manifest(signers=signers, version=version, quorum=rng.randint(0, len(signers)),
                    allow_patch=_maybe(rng), prologue=prologue, linked=linked,
                    user_data=blob(rng) if late and _maybe(rng) else None)


def random_message(rng: random.Random) -> Message | Handshake | ReorgHint:
    kind = rng.randrange(12)
    if kind == 0:
        return Sync(uint(rng), uint(rng), uint(rng), *(_maybe(rng) for _ in range(5)))
    if kind == 1:
        return Request(
            uint(rng), uint(rng),
            block=BlockRequest(uint(rng), uint(rng)) if _maybe(rng) else None,
            hash=HashRequest(uint(rng), uint(rng)) if _maybe(rng) else None,
            seek=SeekRequest(uint(rng), uint(rng)) if _maybe(rng) else None,
            upgrade=UpgradeRequest(uint(rng), uint(rng)) if _maybe(rng) else None,
            manifest=_maybe(rng), priority=uint(rng) if _maybe(rng) else 0)
    if kind == 2:
        return Cancel(uint(rng))
    if kind == 3:
        return Data(
            uint(rng), uint(rng),
            block=DataBlock(uint(rng), blob(rng), _nodes(rng)) if _maybe(rng) else None,
            hash=DataHash(uint(rng), _nodes(rng)) if _maybe(rng) else None,
            seek=DataSeek(uint(rng), _nodes(rng)) if _maybe(rng) else None,
            upgrade=DataUpgrade(uint(rng), uint(rng), _nodes(rng), _nodes(rng),
                                rng.choice([b"", blob(rng, 64)])) if _maybe(rng) else None,
            manifest=manifest(rng) if _maybe(rng) else None)
    if kind == 4:
        return NoData(uint(rng), rng.choice([0, 1, 2, uint(rng)]))
    if kind in (5, 6):
        return (Want if kind == 5 else Unwant)(uint(rng), uint(rng), _maybe(rng))
    if kind == 7:
        return Bitfield(uint(rng), blob(rng, 4 * rng.choice([0, 1, 3, 64])))
    if kind == 8:
        return Range(uint(rng), rng.choice([1, 1, uint(rng)]), _maybe(rng))
    if kind == 9:
        return Extension(rng.choice(["", "chat", "é✓"]), blob(rng))
    if kind == 10:
        return Handshake(blob(rng, 32), _maybe(rng))
    return ReorgHint(uint(rng), uint(rng), uint(rng))
