"""hypercore 11's replication messages: what two peers say on a ``"hypercore/alpha"`` protomux channel.

A core replicates over a channel of :mod:`hypernode.core11.mux` whose protocol is :data:`PROTOCOL`
(``"hypercore"`` is an alias of it), whose id is the core's discovery key, and whose handshake is a
:class:`Handshake` (the capability proving the sender knows the core's key). On it, every message has a
type number (the mux carries it) and a compact-encoded body (:mod:`hypernode.core11.encoding`):

==  ==========  ==========================================================================================
 0  Sync        flags (1 canUpgrade, 2 uploading, 4 downloading, 8 hasManifest, 16 allowPush), fork,
                length, remoteLength
 1  Request     flags (1 block, 2 hash, 4 seek, 8 upgrade, 16 manifest, 32 priority), id, fork, then
                the flagged parts: block and hash (index, nodes), seek (bytes, padding), upgrade
                (start, length), priority
 2  Cancel      request id
 3  Data        flags (1 block, 2 hash, 4 seek, 8 upgrade, 16 manifest), request id, fork, then the
                flagged parts: block (index, value, nodes), hash (index, nodes), seek (bytes, nodes),
                upgrade (start, length, nodes, additionalNodes, signature), the manifest
 4  NoData      request id, then flags (1: a reason follows) and the reason (absent flags read as 0)
 5  Want        start, length, then flags (1 any) only when set
 6  Unwant      as Want
 7  Bitfield    start, then a uint32array (uint word count, the words little endian)
 8  Range       flags (1 drop, 2 length is 1), start, then length unless it is 1
 9  Extension   name (string), then the message to the end
==  ==========  ==========================================================================================

A tree node is ``uint index, uint size, fixed32 hash``; node lists are compact-encoding arrays. The
request and proof parts are :mod:`hypernode.core11.proof`'s classes (a :class:`Data` message is a
:class:`~hypernode.core11.proof.Proof` plus its request id, a seek part and a manifest:
:attr:`Data.proof`, :meth:`Data.answering`).

Decoding reads as JS does: flag bits it does not know are ignored, and bytes after a message are left
alone (later versions append fields: NoData's and Want's flags were added that way). Anything
malformed (too short, a count or number out of range, an unknown manifest version) raises
:class:`~hypernode.errors.DecodeError` and nothing else. Values that cannot be encoded raise
``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from hypernode.core11.encoding import Reader, Writer
from hypernode.core11.manifest import Manifest, read_manifest, write_manifest
from hypernode.core11.proof import (
    BlockRequest,
    DataBlock,
    DataHash,
    DataUpgrade,
    HashRequest,
    Proof,
    UpgradeRequest,
)
from hypernode.core11.tree import Node
from hypernode.errors import DecodeError

__all__ = ["PROTOCOL", "ALIASES", "NOT_AVAILABLE", "INVALID_REQUEST", "Handshake", "Message", "Sync",
           "Request", "SeekRequest", "Cancel", "Data", "DataSeek", "NoData", "Want", "Unwant", "Bitfield",
           "Range", "Extension", "ReorgHint", "MESSAGE_TYPES", "decode_message", "DecodeError"]

PROTOCOL = "hypercore/alpha"
ALIASES = ("hypercore",)

# NoData reasons, as hypercore's replicator sends them
NOT_AVAILABLE = 1
INVALID_REQUEST = 2


def _write_node(w: Writer, n: Node) -> None:
    w.uint(n.index).uint(n.size).fixed32(n.hash)


def _read_node(r: Reader) -> Node:
    return Node(r.uint(), r.uint(), r.fixed32())


def _write_nodes(w: Writer, nodes: tuple[Node, ...]) -> None:
    w.array(nodes, _write_node)


def _read_nodes(r: Reader) -> tuple[Node, ...]:
    return tuple(r.array(_read_node))


@dataclass(frozen=True)
class Handshake:
    """The handshake of a hypercore channel: the capability (``caps.replicate``, see
    :func:`~hypernode.core11.crypto.replicate_capability`) and whether the sender answers seeks."""

    capability: bytes
    seeks: bool = False

    def encode(self) -> bytes:
        return Writer().uint(1 if self.seeks else 0).fixed32(self.capability).getvalue()

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Handshake:
        r = Reader(data)
        flags = r.uint()
        return cls(capability=r.fixed32(), seeks=bool(flags & 1))


class Message:
    """A replication message; ``TYPE`` is its type number on the channel."""

    TYPE: ClassVar[int]

    def write(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def read(cls, r: Reader) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        """The message's body (the mux adds the channel and :attr:`TYPE`)."""
        w = Writer()
        self.write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> Self:
        """The message at the start of ``data`` (bytes after it are ignored, as JS ignores them)."""
        return cls.read(Reader(data))


@dataclass(frozen=True)
class Sync(Message):
    """What the sender has (``length`` at ``fork``), what it knows the receiver has, and its state."""

    TYPE: ClassVar[int] = 0
    fork: int
    length: int
    remote_length: int
    can_upgrade: bool = False
    uploading: bool = False
    downloading: bool = False
    has_manifest: bool = False
    allow_push: bool = False

    def write(self, w: Writer) -> None:
        flags = ((1 if self.can_upgrade else 0) | (2 if self.uploading else 0)
                 | (4 if self.downloading else 0) | (8 if self.has_manifest else 0)
                 | (16 if self.allow_push else 0))
        w.uint(flags).uint(self.fork).uint(self.length).uint(self.remote_length)

    @classmethod
    def read(cls, r: Reader) -> Self:
        flags = r.uint()
        return cls(fork=r.uint(), length=r.uint(), remote_length=r.uint(), can_upgrade=bool(flags & 1),
                   uploading=bool(flags & 2), downloading=bool(flags & 4), has_manifest=bool(flags & 8),
                   allow_push=bool(flags & 16))


@dataclass(frozen=True)
class SeekRequest:
    """A request for the block holding byte ``offset`` (JS: ``bytes``) of the core, blocks counted with
    ``padding`` bytes less each."""

    offset: int
    padding: int = 0


@dataclass(frozen=True)
class Request(Message):
    """A request (numbered ``id``) for a block, a tree node's hash, a seek and/or an upgrade, at ``fork``;
    ``manifest`` asks for the core's manifest too."""

    TYPE: ClassVar[int] = 1
    id: int
    fork: int
    block: BlockRequest | None = None
    hash: HashRequest | None = None
    seek: SeekRequest | None = None
    upgrade: UpgradeRequest | None = None
    manifest: bool = False
    priority: int = 0

    def write(self, w: Writer) -> None:
        flags = ((1 if self.block else 0) | (2 if self.hash else 0) | (4 if self.seek else 0)
                 | (8 if self.upgrade else 0) | (16 if self.manifest else 0) | (32 if self.priority else 0))
        w.uint(flags).uint(self.id).uint(self.fork)
        if self.block:
            w.uint(self.block.index).uint(self.block.nodes)
        if self.hash:
            w.uint(self.hash.index).uint(self.hash.nodes)
        if self.seek:
            w.uint(self.seek.offset).uint(self.seek.padding)
        if self.upgrade:
            w.uint(self.upgrade.start).uint(self.upgrade.length)
        if self.priority:
            w.uint(self.priority)

    @classmethod
    def read(cls, r: Reader) -> Self:
        flags = r.uint()
        id_, fork = r.uint(), r.uint()
        block = BlockRequest(r.uint(), r.uint()) if flags & 1 else None
        hash_ = HashRequest(r.uint(), r.uint()) if flags & 2 else None
        seek = SeekRequest(r.uint(), r.uint()) if flags & 4 else None
        upgrade = UpgradeRequest(r.uint(), r.uint()) if flags & 8 else None
        priority = r.uint() if flags & 32 else 0
        return cls(id=id_, fork=fork, block=block, hash=hash_, seek=seek, upgrade=upgrade,
                   manifest=bool(flags & 16), priority=priority)


@dataclass(frozen=True)
class Cancel(Message):
    """The sender no longer wants the answer to its request ``request``."""

    TYPE: ClassVar[int] = 2
    request: int

    def write(self, w: Writer) -> None:
        w.uint(self.request)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.uint())


@dataclass(frozen=True)
class DataSeek:
    """The answer to a seek: the byte offset and the nodes that locate it."""

    offset: int
    nodes: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Data(Message):
    """The answer to request ``request``: a proof at ``fork`` (its block, hash and upgrade parts are
    :mod:`~hypernode.core11.proof`'s), a seek answer, and the manifest when it was asked for."""

    TYPE: ClassVar[int] = 3
    request: int
    fork: int
    block: DataBlock | None = None
    hash: DataHash | None = None
    seek: DataSeek | None = None
    upgrade: DataUpgrade | None = None
    manifest: Manifest | None = None

    @property
    def proof(self) -> Proof:
        """The message's proof, for :func:`~hypernode.core11.proof.verify_proof`."""
        return Proof(fork=self.fork, block=self.block, hash=self.hash, upgrade=self.upgrade)

    @classmethod
    def answering(cls, request: int, proof: Proof, *, seek: DataSeek | None = None,
                  manifest: Manifest | None = None) -> Data:
        """The Data message carrying ``proof`` in answer to request number ``request``."""
        return cls(request=request, fork=proof.fork, block=proof.block, hash=proof.hash, seek=seek,
                   upgrade=proof.upgrade, manifest=manifest)

    def write(self, w: Writer) -> None:
        flags = ((1 if self.block else 0) | (2 if self.hash else 0) | (4 if self.seek else 0)
                 | (8 if self.upgrade else 0) | (16 if self.manifest else 0))
        w.uint(flags).uint(self.request).uint(self.fork)
        if self.block:
            w.uint(self.block.index).buffer(self.block.value)
            _write_nodes(w, self.block.nodes)
        if self.hash:
            w.uint(self.hash.index)
            _write_nodes(w, self.hash.nodes)
        if self.seek:
            w.uint(self.seek.offset)
            _write_nodes(w, self.seek.nodes)
        if self.upgrade:
            u = self.upgrade
            w.uint(u.start).uint(u.length)
            _write_nodes(w, u.nodes)
            _write_nodes(w, u.additional_nodes)
            w.optional_buffer(u.signature)
        if self.manifest:
            write_manifest(w, self.manifest)

    @classmethod
    def read(cls, r: Reader) -> Self:
        flags = r.uint()
        request, fork = r.uint(), r.uint()
        block = DataBlock(r.uint(), r.buffer(), _read_nodes(r)) if flags & 1 else None
        hash_ = DataHash(r.uint(), _read_nodes(r)) if flags & 2 else None
        seek = DataSeek(r.uint(), _read_nodes(r)) if flags & 4 else None
        upgrade = None
        if flags & 8:
            start, length = r.uint(), r.uint()
            nodes, additional = _read_nodes(r), _read_nodes(r)
            # JS reads an empty signature as null; the proof classes hold bytes (empty: none)
            upgrade = DataUpgrade(start, length, nodes, additional, r.optional_buffer() or b"")
        manifest = read_manifest(r) if flags & 16 else None
        return cls(request=request, fork=fork, block=block, hash=hash_, seek=seek, upgrade=upgrade,
                   manifest=manifest)


@dataclass(frozen=True)
class NoData(Message):
    """The sender cannot answer request ``request`` (``reason``: :data:`NOT_AVAILABLE`,
    :data:`INVALID_REQUEST`, or 0 for none given)."""

    TYPE: ClassVar[int] = 4
    request: int
    reason: int = 0

    def write(self, w: Writer) -> None:
        w.uint(self.request).uint(1 if self.reason else 0)
        if self.reason:
            w.uint(self.reason)

    @classmethod
    def read(cls, r: Reader) -> Self:
        request = r.uint()
        flags = r.uint() if not r.done() else 0
        return cls(request=request, reason=r.uint() if flags & 1 else 0)


@dataclass(frozen=True)
class _Span(Message):
    start: int
    length: int
    any: bool = False

    def write(self, w: Writer) -> None:
        w.uint(self.start).uint(self.length)
        if self.any:
            w.uint(1)

    @classmethod
    def read(cls, r: Reader) -> Self:
        start, length = r.uint(), r.uint()
        flags = r.uint() if not r.done() else 0
        return cls(start=start, length=length, any=bool(flags & 1))


@dataclass(frozen=True)
class Want(_Span):
    """The sender wants to hear what the receiver has of blocks ``start`` to ``start + length``
    (``any``: one of them is enough)."""

    TYPE: ClassVar[int] = 5


@dataclass(frozen=True)
class Unwant(_Span):
    """The sender no longer wants that range."""

    TYPE: ClassVar[int] = 6


@dataclass(frozen=True)
class Bitfield(Message):
    """Which of the blocks from ``start`` the sender has: ``bitfield`` is the raw little-endian uint32
    words JS sends, so block ``start + i`` is bit ``i % 8`` of byte ``i // 8`` (see :meth:`has`)."""

    TYPE: ClassVar[int] = 7
    start: int
    bitfield: bytes

    def has(self, i: int) -> bool:
        """Whether block ``start + i`` is set."""
        return 0 <= i < 8 * len(self.bitfield) and bool(self.bitfield[i >> 3] >> (i & 7) & 1)

    def write(self, w: Writer) -> None:
        if len(self.bitfield) % 4:
            raise ValueError("a bitfield is whole uint32 words (a multiple of 4 bytes)")
        w.uint(self.start).uint(len(self.bitfield) // 4).raw(self.bitfield)

    @classmethod
    def read(cls, r: Reader) -> Self:
        start = r.uint()
        words = r.uint()
        if words > r.remaining // 4:
            raise DecodeError(f"out of bounds: bitfield of {words} words, {r.remaining} bytes left")
        return cls(start=start, bitfield=r.raw(4 * words))


@dataclass(frozen=True)
class Range(Message):
    """The sender has (or, with ``drop``, no longer has) blocks ``start`` to ``start + length``."""

    TYPE: ClassVar[int] = 8
    start: int
    length: int
    drop: bool = False

    def write(self, w: Writer) -> None:
        w.uint((1 if self.drop else 0) | (2 if self.length == 1 else 0)).uint(self.start)
        if self.length != 1:
            w.uint(self.length)

    @classmethod
    def read(cls, r: Reader) -> Self:
        flags = r.uint()
        start = r.uint()
        return cls(start=start, length=1 if flags & 2 else r.uint(), drop=bool(flags & 1))


@dataclass(frozen=True)
class Extension(Message):
    """A message of extension ``name`` (hypercore sends ``""`` for "the same name as last time")."""

    TYPE: ClassVar[int] = 9
    name: str
    message: bytes

    def write(self, w: Writer) -> None:
        w.string(self.name).raw(self.message)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(name=r.string(), message=r.raw())


@dataclass(frozen=True)
class ReorgHint:
    """hypercore's ``wire.reorgHint`` (from, to, ancestors): defined beside the messages but sent on no
    channel type by hypercore 11.39."""

    from_: int
    to: int
    ancestors: int

    def encode(self) -> bytes:
        return Writer().uint(self.from_).uint(self.to).uint(self.ancestors).getvalue()

    @classmethod
    def decode(cls, data: bytes | bytearray | memoryview) -> ReorgHint:
        r = Reader(data)
        return cls(r.uint(), r.uint(), r.uint())


MESSAGE_TYPES: dict[int, type[Message]] = {
    cls.TYPE: cls for cls in (Sync, Request, Cancel, Data, NoData, Want, Unwant, Bitfield, Range, Extension)
}


def decode_message(message_type: int, body: bytes | bytearray | memoryview) -> Message | None:
    """The message of type number ``message_type`` in ``body``; ``None`` for a type hypercore 11 does not
    define (JS ignores those: a later version may add types)."""
    cls = MESSAGE_TYPES.get(message_type)
    return None if cls is None else cls.decode(body)
