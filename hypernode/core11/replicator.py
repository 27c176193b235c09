"""hypercore 11 replication, sans-IO: every core two peers share, over the protomux of one stream.

A :class:`Replicator` is the replication state of one secret-stream connection (like h11, it does no IO
and keeps no time). It takes each whole message the secret-stream delivers (:meth:`Replicator.receive`,
which returns what happened as :data:`Event` s) and gives the messages to send
(:meth:`Replicator.data_to_send`). It owns, for every core on the stream, one ``"hypercore/alpha"``
channel (id: the core's discovery key) and the state of the remote peer on it:

- the channel handshake carries the capability hypercore computes from the stream's handshake hash and
  the core's key (:func:`~hypernode.core11.crypto.replicate_capability`); a channel whose remote
  capability is wrong is closed (:class:`CoreRefused`), the stream carries on;
- ``sync`` says each side's fork and length (and whether it can prove an upgrade to the other's
  length); a remote that is longer is asked for an upgrade (eagerly, as JS's ``eagerUpgrade``), which
  is how live appends arrive: the remote appends, syncs its new length, we upgrade and fetch;
- ``range`` and ``bitfield`` say which blocks the remote has, ``want`` asks for that (answered from the
  core's blocks as JS answers it, in the same 2,097,152-block batches; remembered, so that blocks stored
  later are announced to a remote that wanted them), ``unwant`` forgets a want;
- ``request`` is answered with ``data`` (a proof from :meth:`Core.proof`) or ``noData``; ``data`` is
  checked against the request it answers and applied with :meth:`Core.apply`, which verifies it before
  anything is stored; ``cancel`` needs nothing (answers go out at once);
- ``extension`` messages come up as :class:`ExtensionReceived` (a name of ``""`` meaning the last
  one, as hypercore sends it).

What to download is said with :meth:`Replicator.want` (a range, or from a block to the end of the core
for ever: full and live replication); requests in flight are bounded (``max_inflight`` per core).
Cores are paired by discovery key as corestore pairs them: :meth:`Replicator.add_core` opens the
channel (or accepts the remote's open of it), and a remote open of a discovery key we did not add is
given to the ``provider`` (a :class:`CoreProvider`, such as a store: ``open_core(discovery_key)``),
whose core is added, or declined when it has none; without a provider it is reported as
:class:`CoreRequested` and left waiting, as JS leaves it, for the owner to add or
:meth:`Replicator.decline`. :meth:`Replicator.core_changed` tells the peer
what changed locally (an append, blocks stored through another connection).

A remote that breaks the protocol (malformed bytes, an answer that does not match its request, a proof
that does not verify, more than 64 invalid requests) makes :meth:`Replicator.receive` raise
:class:`CoreReplicationError`: the connection ends, nothing unverified was stored, the node stays up.
A remote at a newer fork (it truncated) is followed as JS follows it: its signed head from an upgrade
proof from 0, hash proofs down to where the forks part (:meth:`Core.reorg_from`, ``update_reorg``,
``apply_reorg``), then :class:`Reorged`. Not here: pushes (``allowPush``), seeks, and announcing sparse
blocks on our own (:meth:`Replicator.core_changed` says which were stored elsewhere).

:mod:`hypernode.core11.replicate` runs a :class:`Replicator` over a trio stream.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from hypernode.core11.core import Reorg
from hypernode.core11.crypto import replicate_capability
from hypernode.core11.manifest import Manifest, is_compat
from hypernode.core11.messages import (
    ALIASES,
    INVALID_REQUEST,
    NOT_AVAILABLE,
    PROTOCOL,
    Bitfield,
    Cancel,
    Data,
    Extension,
    Handshake,
    Message,
    NoData,
    Range,
    Request,
    Sync,
    Unwant,
    Want,
    decode_message,
)
from hypernode.core11.mux import (
    Channel,
    ChannelClosed,
    ChannelOpened,
    MessageReceived,
    Mux,
    OpenRequested,
    OpenWithdrawn,
)
from hypernode.core11.proof import BlockRequest, HashRequest, Proof, UpgradeRequest
from hypernode.errors import BlockNotAvailableError, DecodeError, HypernodeError, VerificationError

__all__ = ["Replicator", "CoreReplicationError", "ReplicaCore", "CoreProvider", "Applied", "Event",
           "CoreAttached", "CoreDetached", "CoreRefused", "CoreRequested", "RemoteSynced", "BlockDownloaded",
           "Upgraded", "Reorged", "ExtensionReceived", "WANT_BATCH", "MAX_INVALID_REQUESTS"]

WANT_BATCH = 65536 * 4 * 8  # blocks a want covers, as JS's compat mode (2,097,152)
MAX_INVALID_REQUESTS = 64  # as JS: past this many, the remote is broken
_BITFIELD_CHUNK = 32768  # blocks per bitfield message we send (one page of hypercore 11's bitfield)
_MAX_REMOTE_BITFIELD = 1 << 53  # a remote bitfield or range past this block is nonsense
_MAX_REMOTE_WANTS = 512  # as JS: past this many wants, the remote is taken to want everything
_LAST_BLOCKS = 256  # blocks this near the end are announced whether wanted or not (as JS)


class CoreReplicationError(HypernodeError):
    """The remote broke the hypercore 11 replication protocol (the connection must end)."""


class Applied(Protocol):
    """What :meth:`ReplicaCore.apply` tells: whether the core grew, its length, the block stored."""

    @property
    def upgraded(self) -> bool: ...
    @property
    def length(self) -> int: ...
    @property
    def block(self) -> int | None: ...


class ReplicaCore(Protocol):
    """What replication needs of a core (:class:`hypernode.core11.core.Core` is one)."""

    @property
    def key(self) -> bytes: ...
    @property
    def discovery_key(self) -> bytes: ...
    @property
    def manifest(self) -> Manifest | None: ...
    @property
    def length(self) -> int: ...
    @property
    def fork(self) -> int: ...
    @property
    def contiguous_length(self) -> int: ...
    def has(self, index: int) -> bool: ...
    def has_all(self, start: int, end: int) -> bool: ...
    def ranges(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]: ...
    def proof(self, *, block: BlockRequest | None = None, hash: HashRequest | None = None,
              upgrade: UpgradeRequest | None = None) -> Proof: ...
    def missing_nodes(self, index: int) -> int: ...
    def reorg_from(self, proof: Proof, *, manifest: Manifest | None = None) -> Reorg: ...
    def update_reorg(self, reorg: Reorg, proof: Proof) -> bool: ...
    def apply_reorg(self, reorg: Reorg) -> int: ...
    def apply(self, proof: Proof, *, manifest: Manifest | None = None) -> Applied: ...


class CoreProvider(Protocol):
    """Where a remote's open of a core not added yet is looked up (a store: corestore's "attach the core
    if the store has it"): the core with that discovery key, opened, or None when there is none."""

    def open_core(self, discovery_key: bytes) -> ReplicaCore | None: ...


# -- events -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CoreAttached:
    """Both sides opened ``core``'s channel and the remote proved it knows the key."""

    core: ReplicaCore


@dataclass(frozen=True)
class CoreDetached:
    """``core``'s channel closed (the remote closed or rejected it, or we did)."""

    core: ReplicaCore


@dataclass(frozen=True)
class CoreRefused:
    """The remote opened ``core``'s channel with a wrong capability: the channel was closed."""

    core: ReplicaCore
    reason: str


@dataclass(frozen=True)
class CoreRequested:
    """The remote opened a channel for a core we did not add (and there is no provider): add it
    (:meth:`Replicator.add_core`) if the store has it, or :meth:`Replicator.decline` it; until then it
    waits, as JS leaves it."""

    discovery_key: bytes


@dataclass(frozen=True)
class RemoteSynced:
    """The remote said it has ``length`` blocks of ``core`` at ``fork``."""

    core: ReplicaCore
    length: int
    fork: int


@dataclass(frozen=True)
class BlockDownloaded:
    """Block ``index`` of ``core`` arrived, verified, and is stored."""

    core: ReplicaCore
    index: int


@dataclass(frozen=True)
class Upgraded:
    """``core`` grew to ``length`` blocks (a verified, signed upgrade is stored)."""

    core: ReplicaCore
    length: int


@dataclass(frozen=True)
class Reorged:
    """``core`` followed the remote to a newer fork (it had truncated): the first ``kept`` blocks were
    the same on both forks and are kept, the rest dropped; the core is now at ``fork`` with ``length``."""

    core: ReplicaCore
    fork: int
    length: int
    kept: int


@dataclass(frozen=True)
class ExtensionReceived:
    """An extension message ``name`` for ``core`` from the remote."""

    core: ReplicaCore
    name: str
    message: bytes


Event = (CoreAttached | CoreDetached | CoreRefused | CoreRequested | RemoteSynced | BlockDownloaded | Upgraded
         | Reorged | ExtensionReceived)


# -- what the remote has ------------------------------------------------------------------------------

class _RemoteBits:
    """Which blocks the remote said it has: sorted, disjoint, non-touching runs ``[start, end)``. At most
    ``max_runs`` of them (a remote describing more is past any core: the connection ends)."""

    def __init__(self, max_runs: int = 1 << 20) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.max_runs = max_runs

    @property
    def contiguous(self) -> int:
        return self.ends[0] if self.starts and self.starts[0] == 0 else 0

    def get(self, i: int) -> bool:
        k = bisect_right(self.starts, i) - 1
        return k >= 0 and i < self.ends[k]

    def set_range(self, start: int, end: int, value: bool) -> None:
        if start >= end:
            return
        # the runs touching [start, end): from the last starting at or before start ...
        lo = bisect_left(self.ends, start)  # first run ending at or after start
        hi = bisect_right(self.starts, end)  # runs before hi start at or before end
        if value:
            if lo < hi:
                start = min(start, self.starts[lo])
                end = max(end, self.ends[hi - 1])
            self.starts[lo:hi] = [start]
            self.ends[lo:hi] = [end]
        else:
            keep_s: list[int] = []
            keep_e: list[int] = []
            for k in range(lo, hi):
                if self.starts[k] < start:
                    keep_s.append(self.starts[k])
                    keep_e.append(start)
                if self.ends[k] > end:
                    keep_s.append(end)
                    keep_e.append(self.ends[k])
            self.starts[lo:hi] = keep_s
            self.ends[lo:hi] = keep_e
        if len(self.starts) > self.max_runs:
            raise CoreReplicationError(f"limit: the remote described over {self.max_runs} runs of blocks")

    def insert(self, start: int, bits: bytes) -> None:
        """Take a bitfield message: bit ``i`` of ``bits`` is block ``start + i`` (the truth for them)."""
        self.set_range(start, start + 8 * len(bits), False)
        run: int | None = None
        for j, byte in enumerate(bits):
            if byte == 0xFF:
                if run is None:
                    run = start + 8 * j
                continue
            if byte == 0 and run is None:
                continue
            for b in range(8):
                i = start + 8 * j + b
                if byte >> b & 1:
                    if run is None:
                        run = i
                elif run is not None:
                    self.set_range(run, i, True)
                    run = None
        if run is not None:
            self.set_range(run, start + 8 * len(bits), True)

    def next_set(self, i: int, end: int) -> int | None:
        """The first block at or after ``i`` (before ``end``) the remote has."""
        k = bisect_right(self.starts, i) - 1
        if k >= 0 and i < self.ends[k]:
            return i
        if k + 1 < len(self.starts) and self.starts[k + 1] < end:
            return self.starts[k + 1]
        return None


# -- per core ------------------------------------------------------------------------------------------

@dataclass(eq=False)
class _Want:
    start: int
    end: int | None  # None: to the end of the core, for ever
    cursor: int = 0  # blocks before it are held
    scan: int = 0  # where the next scan for requests resumes


@dataclass(eq=False)
class _Request:
    id: int
    peer: _Peer
    block: int | None = None
    upgrade: bool = False
    reorg: bool = False  # an upgrade from 0 or a hash at the remote's newer fork (a reorg)


@dataclass(eq=False)
class _Peer:
    """One core on this stream: its channel and what we know of the remote's copy of it."""

    core: ReplicaCore
    channel: Channel
    attached: bool = False
    synced: bool = False
    remote_fork: int = 0
    remote_length: int = 0
    remote_can_upgrade: bool = False
    remote_uploading: bool = True
    remote_downloading: bool = True
    remote_has_manifest: bool = False
    length_acked: int = 0
    bits: _RemoteBits = field(default_factory=_RemoteBits)
    wants: list[_Want] = field(default_factory=list)
    wanted_batches: set[int] = field(default_factory=set)  # want batches sent to the remote
    inflight: dict[int, _Request] = field(default_factory=dict)
    inflight_blocks: set[int] = field(default_factory=set)
    upgrading: _Request | None = None
    reorg: Reorg | None = None  # a newer fork of the remote's being compared with ours
    reorging: _Request | None = None
    no_upgrade_at: tuple[int, int] | None = None  # (our length, remote length) the remote could not upgrade
    sent_state: tuple[int, int, int, bool] | None = None  # (fork, length, remote_length, can_upgrade)
    announced: int = 0  # the contiguous length we told the remote we have
    announced_fork: int = 0
    remote_wants: set[tuple[int, int]] = field(default_factory=set)  # (start, length) the remote wants
    remote_wants_all: bool = False
    invalid_requests: int = 0
    last_extension_sent: str = ""
    last_extension_received: str = ""


def _compat(core: ReplicaCore) -> bool:
    return is_compat(core.key, core.manifest)


class Replicator:
    """The replication of the cores of one stream (see the module docstring).

    ``initiator`` and ``handshake_hash`` are the secret-stream's (they make the capabilities)."""

    def __init__(self, *, initiator: bool, handshake_hash: bytes, max_inflight: int = 64,
                 provider: CoreProvider | None = None, mux: Mux | None = None) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.initiator = initiator
        self.handshake_hash = handshake_hash
        self.max_inflight = max_inflight
        self.provider = provider
        self.mux = mux if mux is not None else Mux()
        self.mux.pair(PROTOCOL, None)
        for alias in ALIASES:
            self.mux.pair(alias, None)
        self._peers: dict[bytes, _Peer] = {}
        self._by_channel: dict[int, _Peer] = {}  # id(channel) -> peer
        self._requested: dict[bytes, int] = {}  # discovery key -> remote channel number waiting for us
        self._requests: dict[int, _Request] = {}
        self._next_id = 1
        self._events: list[Event] = []

    # -- what the owner sees ----------------------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """The messages to send, in order, each whole (the secret-stream frames them); taken once."""
        return self.mux.data_to_send()

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def cores(self) -> list[ReplicaCore]:
        """The cores added to this stream."""
        return [p.core for p in self._peers.values()]

    def is_attached(self, core: ReplicaCore) -> bool:
        """Whether the remote has opened ``core``'s channel too (and proved it knows the key)."""
        peer = self._peers.get(core.discovery_key)
        return peer is not None and peer.attached and peer.core is core

    def remote_length(self, core: ReplicaCore) -> int:
        """The length the remote last said it has of ``core`` (0 before it said)."""
        peer = self._peers.get(core.discovery_key)
        return peer.remote_length if peer is not None else 0

    def inflight(self, core: ReplicaCore) -> int:
        peer = self._peers.get(core.discovery_key)
        return len(peer.inflight) if peer is not None else 0

    # -- actions ----------------------------------------------------------------------------------------

    def add_core(self, core: ReplicaCore) -> None:
        """Replicate ``core`` on this stream: open its channel (accepting the remote's open if it came
        first). Adding a core twice does nothing."""
        dk = core.discovery_key
        if dk in self._peers:
            return
        self._requested.pop(dk, None)
        capability = replicate_capability(self.initiator, core.key, self.handshake_hash)
        with self.mux.corked():
            channel = self.mux.open(PROTOCOL, dk, Handshake(capability).encode(), aliases=ALIASES)
            peer = _Peer(core, channel)
            self._peers[dk] = peer
            self._by_channel[id(channel)] = peer
            self._handle_mux_events(self.mux.events())

    def remove_core(self, core: ReplicaCore) -> None:
        """Stop replicating ``core`` here: its channel closes."""
        peer = self._peers.get(core.discovery_key)
        if peer is None:
            return
        self.mux.close(peer.channel)
        self._drop(peer)

    def decline(self, discovery_key: bytes) -> None:
        """Refuse the remote's open of a core we do not have (from :class:`CoreRequested`)."""
        remote_id = self._requested.pop(discovery_key, None)
        if remote_id is not None:
            self.mux.reject(remote_id)

    def want(self, core: ReplicaCore, start: int = 0, end: int | None = None) -> None:
        """Download blocks ``start`` to ``end`` of ``core`` from the remote (``end`` None: every block
        from ``start``, those appended later too). ``core`` must have been added."""
        peer = self._peer(core)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"not a range: {start}..{end}")
        peer.wants.append(_Want(start, end, start, start))
        if peer.attached:
            with self.mux.corked():
                self._send_wants(peer)
                self._update(peer)

    def unwant(self, core: ReplicaCore, start: int = 0, end: int | None = None) -> None:
        """Withdraw one :meth:`want` of that range (requests in flight are let be)."""
        peer = self._peer(core)
        for w in peer.wants:
            if (w.start, w.end) == (start, end):
                peer.wants.remove(w)
                return

    def core_changed(self, core: ReplicaCore, start: int | None = None, end: int | None = None) -> None:
        """Tell the remote what changed in ``core`` here (appended, truncated, grown or blocks stored
        through another connection): its new length, and the blocks ``start`` to ``end`` when given
        (announced if the remote wants them or they are near the end, as JS announces them)."""
        peer = self._peers.get(core.discovery_key)
        if peer is None or not peer.attached:
            return
        with self.mux.corked():
            self._send_sync(peer)
            self._announce(peer)
            if start is not None and end is not None:
                self._have(peer, start, end)
            self._update(peer)

    def send_extension(self, core: ReplicaCore, name: str, message: bytes) -> None:
        """Send an extension message ``name`` for ``core`` (once its channel is attached)."""
        peer = self._peer(core)
        if not peer.attached:
            raise ValueError("the core's channel is not open on both sides yet")
        self._send(peer, Extension("" if name == peer.last_extension_sent else name, message))
        peer.last_extension_sent = name

    def close(self) -> None:
        """Close every channel (the stream may end after what :meth:`data_to_send` gives)."""
        for peer in list(self._peers.values()):
            self.remove_core(peer.core)

    # -- receiving --------------------------------------------------------------------------------------

    def receive(self, message: bytes | bytearray | memoryview) -> list[Event]:
        """Take one whole message from the remote; returns what happened. Raises
        :class:`CoreReplicationError` when the remote broke the protocol (and nothing else)."""
        try:
            mux_events = self.mux.receive(message)
        except DecodeError as e:
            raise CoreReplicationError(f"a malformed message from the remote: {e}") from e
        with self.mux.corked():
            self._handle_mux_events(mux_events)
        return self.events()

    def _handle_mux_events(self, mux_events: Iterable[object]) -> None:
        for event in mux_events:
            if isinstance(event, OpenRequested):
                if event.id is None or len(event.id) != 32:
                    self.mux.reject(event.remote_id)
                elif event.id not in self._peers:
                    self._requested[event.id] = event.remote_id
                    if self.provider is None:
                        self._events.append(CoreRequested(event.id))
                        continue
                    core = self.provider.open_core(event.id)
                    if core is None or core.discovery_key != event.id:
                        self.decline(event.id)
                    else:
                        self.add_core(core)
            elif isinstance(event, OpenWithdrawn):
                for dk, remote_id in list(self._requested.items()):
                    if remote_id == event.remote_id:
                        del self._requested[dk]
            elif isinstance(event, ChannelOpened):
                peer = self._by_channel.get(id(event.channel))
                if peer is not None:
                    self._on_open(peer, event.handshake)
            elif isinstance(event, ChannelClosed):
                peer = self._by_channel.get(id(event.channel))
                if peer is not None:
                    self._drop(peer)
            elif isinstance(event, MessageReceived):
                peer = self._by_channel.get(id(event.channel))
                if peer is not None and peer.attached:
                    self._on_message(peer, event.type, event.body)

    def _on_open(self, peer: _Peer, handshake: bytes) -> None:
        try:
            remote = Handshake.decode(handshake)
        except DecodeError as e:
            raise CoreReplicationError(f"a malformed channel handshake: {e}") from e
        expected = replicate_capability(not self.initiator, peer.core.key, self.handshake_hash)
        if remote.capability != expected:
            self.mux.close(peer.channel)
            self._drop(peer, detached=False)
            self._events.append(CoreRefused(peer.core, "the remote sent an invalid replication capability"))
            return
        peer.attached = True
        self._send_sync(peer)
        self._announce(peer)
        self._send_wants(peer)
        self._events.append(CoreAttached(peer.core))
        self._update(peer)

    def _drop(self, peer: _Peer, *, detached: bool = True) -> None:
        if self._peers.get(peer.core.discovery_key) is peer:
            del self._peers[peer.core.discovery_key]
        self._by_channel.pop(id(peer.channel), None)
        for rid in peer.inflight:
            self._requests.pop(rid, None)
        peer.inflight.clear()
        peer.inflight_blocks.clear()
        peer.upgrading = None
        if detached and peer.attached:
            self._events.append(CoreDetached(peer.core))
        peer.attached = False

    def _on_message(self, peer: _Peer, type: int, body: bytes) -> None:
        try:
            msg = decode_message(type, body)
        except DecodeError as e:
            raise CoreReplicationError(f"a malformed message of type {type}: {e}") from e
        if isinstance(msg, Sync):
            self._on_sync(peer, msg)
        elif isinstance(msg, Request):
            self._on_request(peer, msg)
        elif isinstance(msg, Data):
            self._on_data(peer, msg)
        elif isinstance(msg, NoData):
            self._on_no_data(peer, msg)
        elif isinstance(msg, Want):
            self._on_want(peer, msg)
        elif isinstance(msg, Unwant):
            peer.remote_wants.discard((msg.start, msg.length))
        elif isinstance(msg, Range):
            self._on_range(peer, msg)
        elif isinstance(msg, Bitfield):
            self._on_bitfield(peer, msg)
        elif isinstance(msg, Extension):
            name = msg.name or peer.last_extension_received
            peer.last_extension_received = name
            self._events.append(ExtensionReceived(peer.core, name, msg.message))
        # Cancel: answers go out as requests come, nothing waits to be cancelled

    # -- sync -------------------------------------------------------------------------------------------

    def _can_upgrade(self, peer: _Peer) -> bool:
        core = peer.core
        if peer.remote_fork != core.fork:
            return False
        return peer.remote_length == 0 or peer.remote_length < core.length

    def _send_sync(self, peer: _Peer, *, force: bool = False) -> None:
        core = peer.core
        remote_length = peer.remote_length if core.fork == peer.remote_fork else 0
        can_upgrade = self._can_upgrade(peer)
        state = (core.fork, core.length, remote_length, can_upgrade)
        if state == peer.sent_state and not force:
            return
        peer.sent_state = state
        self._send(peer, Sync(fork=core.fork, length=core.length, remote_length=remote_length,
                              can_upgrade=can_upgrade, uploading=True, downloading=True,
                              has_manifest=core.manifest is not None and not _compat(core)))

    def _on_sync(self, peer: _Peer, msg: Sync) -> None:
        core = peer.core
        peer.synced = True
        peer.remote_fork = msg.fork
        peer.remote_length = msg.length
        peer.remote_can_upgrade = msg.can_upgrade
        peer.remote_uploading = msg.uploading
        peer.remote_downloading = msg.downloading
        peer.remote_has_manifest = msg.has_manifest
        peer.length_acked = msg.remote_length if msg.fork == core.fork else 0
        self._events.append(RemoteSynced(core, msg.length, msg.fork))
        if core.fork == msg.fork and core.length > msg.length:
            self._send_sync(peer, force=True)
        else:
            self._send_sync(peer)
        self._update(peer)

    # -- what we have ------------------------------------------------------------------------------------

    def _announce(self, peer: _Peer) -> None:
        core = peer.core
        if core.fork != peer.announced_fork:  # truncated: what we announced before no longer holds
            peer.announced_fork = core.fork
            peer.announced = 0
        contig = min(core.length, core.contiguous_length)
        if contig > peer.announced:
            peer.announced = contig
            self._send(peer, Range(start=0, length=contig))

    def _have(self, peer: _Peer, start: int, end: int) -> None:
        """Announce the blocks held in ``start..end`` past the contiguous run, if the remote wants them."""
        core = peer.core
        start = max(start, peer.announced)
        end = min(end, core.length)
        if start >= end:
            return
        if start + _LAST_BLOCKS < core.length and not self._remote_wants(peer, start, end):
            return
        for s, e in core.ranges(start, end):
            self._send(peer, Range(start=s, length=e - s))

    def _remote_wants(self, peer: _Peer, start: int, end: int) -> bool:
        return peer.remote_wants_all or any(s < end and start < s + n for s, n in peer.remote_wants)

    def _on_want(self, peer: _Peer, msg: Want) -> None:
        core = peer.core
        if msg.length > WANT_BATCH:
            return  # JS ignores such a want
        if len(peer.remote_wants) >= _MAX_REMOTE_WANTS:
            peer.remote_wants_all = True
        else:
            peer.remote_wants.add((msg.start, msg.length))
        length_now = core.length
        contig = min(length_now, core.contiguous_length)
        if msg.start >= length_now:
            return
        if msg.start + msg.length < contig or length_now == contig or (msg.any and msg.start < contig):
            if contig > 0:
                self._send(peer, Range(start=0, length=contig))
            return
        end = min(msg.start + msg.length, length_now)
        if msg.any:
            for s, _e in core.ranges(msg.start, end):
                self._send(peer, Range(start=s, length=1))
                break
            return
        start = msg.start - msg.start % 32
        while start < end:
            chunk_end = min(end, start - start % _BITFIELD_CHUNK + _BITFIELD_CHUNK)
            n = chunk_end - start
            mask = 0
            for s, e in core.ranges(start, chunk_end):
                mask |= ((1 << (e - s)) - 1) << (s - start)
            if mask:
                self._send(peer, Bitfield(start=start, bitfield=mask.to_bytes((n + 31) // 32 * 4, "little")))
            start = chunk_end

    def _on_range(self, peer: _Peer, msg: Range) -> None:
        if msg.start + msg.length > _MAX_REMOTE_BITFIELD:
            raise CoreReplicationError(f"a range of blocks {msg.start}..{msg.start + msg.length}")
        peer.bits.set_range(msg.start, msg.start + msg.length, not msg.drop)
        if not msg.drop:
            self._rescan(peer)
            self._update(peer)

    def _on_bitfield(self, peer: _Peer, msg: Bitfield) -> None:
        if msg.start + 8 * len(msg.bitfield) > _MAX_REMOTE_BITFIELD:
            raise CoreReplicationError(f"a bitfield of blocks from {msg.start}")
        peer.bits.insert(msg.start, msg.bitfield)
        self._rescan(peer)
        self._update(peer)

    # -- answering requests ------------------------------------------------------------------------------

    def _on_request(self, peer: _Peer, msg: Request) -> None:
        core = peer.core
        manifest = core.manifest if msg.manifest and not _compat(core) else None
        available = msg.fork == core.fork and (msg.block is None or core.has(msg.block.index))
        if available and (msg.block or msg.hash or msg.upgrade):
            try:
                proof = core.proof(block=msg.block, hash=msg.hash, upgrade=msg.upgrade)
            except BlockNotAvailableError:
                proof = None
            except (ValueError, VerificationError):
                peer.invalid_requests += 1
                if peer.invalid_requests > MAX_INVALID_REQUESTS:
                    raise CoreReplicationError(
                        f"the remote sent more than {MAX_INVALID_REQUESTS} invalid requests") from None
                self._send(peer, NoData(msg.id, INVALID_REQUEST))
                return
            if proof is not None:
                self._send(peer, Data.answering(msg.id, proof, manifest=manifest))
                return
        if manifest is not None:
            self._send(peer, Data(request=msg.id, fork=core.fork, manifest=manifest))
            return
        self._send(peer, NoData(msg.id, NOT_AVAILABLE))

    # -- downloading -------------------------------------------------------------------------------------

    def _send_wants(self, peer: _Peer) -> None:
        """Ask the remote which blocks it has, in JS's batches, for what we want past its contiguous run
        (limited to the batches up to the remote's length and what we wanted: bounded)."""
        for w in peer.wants:
            end = w.end if w.end is not None else max(peer.remote_length, peer.core.length, w.start + 1)
            first = w.start // WANT_BATCH
            last = (end - 1) // WANT_BATCH
            for b in range(first, min(last, first + 16) + 1):
                if (b + 1) * WANT_BATCH <= peer.bits.contiguous or b in peer.wanted_batches:
                    continue
                peer.wanted_batches.add(b)
                self._send(peer, Want(start=b * WANT_BATCH, length=WANT_BATCH))

    def _rescan(self, peer: _Peer) -> None:
        for w in peer.wants:
            w.scan = w.cursor

    def _update(self, peer: _Peer) -> None:
        """Send the requests we can: an upgrade if the remote is longer, then wanted blocks."""
        if not peer.attached or not peer.remote_uploading:
            return
        core = peer.core
        if core.length > 0 and peer.remote_fork > core.fork:
            self._update_reorg(peer)
            return
        # an empty core takes a newer fork as it is: asked from 0 at the remote's fork, as JS asks for a
        # fork proof (whatever the remote's canUpgrade, which is about its own fork)
        newer_fork = core.length == 0 and peer.remote_fork > core.fork
        upgradable = newer_fork or (peer.remote_fork == core.fork and peer.remote_can_upgrade)
        if (peer.upgrading is None and upgradable
                and peer.remote_length > core.length and peer.length_acked == core.length
                and peer.no_upgrade_at != (core.length, peer.remote_length)
                and len(peer.inflight) < self.max_inflight):
            req = self._new_request(peer, upgrade=True)
            peer.upgrading = req
            self._send(peer, Request(id=req.id, fork=peer.remote_fork,
                                     upgrade=UpgradeRequest(core.length, peer.remote_length - core.length),
                                     manifest=core.manifest is None and peer.remote_has_manifest))
        if peer.remote_fork != core.fork:
            return
        done: list[_Want] = []
        for w in peer.wants:
            if len(peer.inflight) >= self.max_inflight:
                break
            end = min(core.length, w.end) if w.end is not None else core.length
            while w.cursor < end and core.has(w.cursor):
                w.cursor += 1
            if w.end is not None and w.cursor >= w.end:
                done.append(w)
                continue
            i = max(w.scan, w.cursor)
            while i < end and len(peer.inflight) < self.max_inflight:
                nxt = peer.bits.next_set(i, end)
                if nxt is None:
                    i = end
                    break
                i = nxt
                if i not in peer.inflight_blocks and not core.has(i):
                    self._request_block(peer, i)
                i += 1
            w.scan = i
        if done:
            peer.wants = [w for w in peer.wants if w not in done]

    def _update_reorg(self, peer: _Peer) -> None:
        """The remote is at a newer fork (it truncated): find where the forks part, as JS does: an
        upgrade from 0 at its fork (its signed head), then hash proofs down to the first block that
        differs; then the core drops what follows and takes the new head."""
        core = peer.core
        if peer.reorging is not None or peer.remote_length == 0 or len(peer.inflight) >= self.max_inflight:
            return
        reorg = peer.reorg
        if reorg is None or reorg.fork != peer.remote_fork or (reorg.tree_fork, reorg.tree_length) != (
                core.fork, core.length):
            peer.reorg = None
            req = self._new_request(peer, reorg=True)
            peer.reorging = req
            self._send(peer, Request(id=req.id, fork=peer.remote_fork,
                                     upgrade=UpgradeRequest(0, peer.remote_length),
                                     manifest=core.manifest is None))
            return
        if reorg.want is None:
            return
        index = peer.bits.next_set(reorg.want.start, reorg.want.end)
        if index is None:
            return  # wait until the remote says it has one of them
        req = self._new_request(peer, reorg=True)
        peer.reorging = req
        self._send(peer, Request(id=req.id, fork=reorg.fork, hash=reorg.request(index)))

    def _on_reorg_data(self, peer: _Peer, msg: Data) -> None:
        core = peer.core
        try:
            if peer.reorg is None or peer.reorg.fork != msg.fork:
                if msg.upgrade is None:
                    raise CoreReplicationError("the remote answered a fork proof request without an upgrade")
                peer.reorg = core.reorg_from(msg.proof, manifest=msg.manifest)
            else:
                core.update_reorg(peer.reorg, msg.proof)
        except VerificationError as e:
            raise CoreReplicationError(f"the remote sent a fork proof that does not verify: {e}") from e
        reorg = peer.reorg
        if reorg.want is None:
            peer.reorg = None
            try:
                kept = core.apply_reorg(reorg)
            except ValueError:
                return self._update(peer)  # the core changed meanwhile: begin again
            for w in peer.wants:
                w.cursor = w.scan = max(w.start, min(w.cursor, kept))
            peer.inflight_blocks.clear()
            self._events.append(Reorged(core, core.fork, core.length, kept))
            self._send_sync(peer)
            self._announce(peer)
        self._update(peer)

    def _new_request(self, peer: _Peer, *, block: int | None = None, upgrade: bool = False,
                     reorg: bool = False) -> _Request:
        req = _Request(self._next_id, peer, block, upgrade, reorg)
        self._next_id += 1
        self._requests[req.id] = req
        peer.inflight[req.id] = req
        return req

    def _request_block(self, peer: _Peer, index: int) -> None:
        req = self._new_request(peer, block=index)
        peer.inflight_blocks.add(index)
        self._send(peer, Request(id=req.id, fork=peer.core.fork,
                                 block=BlockRequest(index, peer.core.missing_nodes(2 * index))))

    def _finish(self, peer: _Peer, req: _Request) -> None:
        peer.inflight.pop(req.id, None)
        self._requests.pop(req.id, None)
        if req.block is not None:
            peer.inflight_blocks.discard(req.block)
        if peer.upgrading is req:
            peer.upgrading = None
        if peer.reorging is req:
            peer.reorging = None

    def _on_data(self, peer: _Peer, msg: Data) -> None:
        req = self._requests.get(msg.request)
        if req is None or req.peer is not peer:
            return  # not asked for (or cancelled): JS drops unsolicited data too
        self._finish(peer, req)
        core = peer.core
        if req.reorg and msg.fork == peer.remote_fork and msg.fork > core.fork:
            self._on_reorg_data(peer, msg)
            return
        if msg.fork != core.fork and not (core.length == 0 and msg.fork > core.fork and msg.upgrade):
            self._on_unanswered(peer, req)  # another fork: reorgs are not followed here
            return
        if req.block is not None and (msg.block is None or msg.block.index != req.block):
            raise CoreReplicationError(
                f"the remote answered a request for block {req.block} with "
                f"{'block ' + str(msg.block.index) if msg.block else 'no block'}")
        if req.upgrade and msg.upgrade is None:
            if msg.manifest is not None:  # a manifest alone: the remote cannot upgrade us now
                self._on_unanswered(peer, req)
                return
            raise CoreReplicationError("the remote answered an upgrade request without an upgrade")
        before = core.length
        try:
            applied = core.apply(msg.proof, manifest=msg.manifest if core.manifest is None else None)
        except VerificationError as e:
            raise CoreReplicationError(f"the remote sent data that does not verify: {e}") from e
        if applied.block is not None:
            self._events.append(BlockDownloaded(core, applied.block))
        if applied.upgraded and core.length > before:
            self._events.append(Upgraded(core, core.length))
            self._send_sync(peer)
        self._announce(peer)
        self._update(peer)

    def _on_no_data(self, peer: _Peer, msg: NoData) -> None:
        req = self._requests.get(msg.request)
        if req is None or req.peer is not peer:
            return
        self._finish(peer, req)
        self._on_unanswered(peer, req)

    def _on_unanswered(self, peer: _Peer, req: _Request) -> None:
        if req.reorg:
            return  # asked again when the remote syncs or says what it has
        if req.block is not None:
            peer.bits.set_range(req.block, req.block + 1, False)  # not from this remote, until it says
        if req.upgrade:
            peer.no_upgrade_at = (peer.core.length, peer.remote_length)
        self._update(peer)

    def cancel_all(self, core: ReplicaCore) -> None:
        """Cancel every request in flight for ``core`` (their answers are dropped)."""
        peer = self._peer(core)
        for req in list(peer.inflight.values()):
            self._finish(peer, req)
            self._send(peer, Cancel(req.id))

    # -- helpers ------------------------------------------------------------------------------------------

    def _peer(self, core: ReplicaCore) -> _Peer:
        peer = self._peers.get(core.discovery_key)
        if peer is None or peer.core is not core:
            raise ValueError("the core is not replicated on this stream (add_core it first)")
        return peer

    def _send(self, peer: _Peer, msg: Message) -> None:
        if not peer.channel.closed:
            peer.channel.send(msg.TYPE, msg.encode())

