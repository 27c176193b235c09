"""One feed replicating with one remote peer over one channel: hypercore 9's replication logic, sans-IO.

:class:`FeedPeer` takes the remote's decoded messages (Status, Have, Unhave, Want, Unwant, Request,
Cancel, Data) and sends its own through the ``send`` function it was given, which queues them on the
channel: no sockets, no trio. Block verification and storage go through the feed's synchronous core
(:meth:`Feed.put_verified`, through the feed's replicator), so a tampered block raises
:class:`~hypernode.errors.VerificationError` out of :meth:`FeedPeer.on_message`; the caller ends the
connection to that peer. What to request comes from the feed's :class:`~hypernode.replication.wants.Wants`;
the other peers of the feed, the waiting readers and the extensions are its
:class:`~hypernode.replication.replicator.Replicator`'s, which a FeedPeer reaches through the small
:class:`PeerGroup` interface.

What it does, as hypercore 9's ``lib/replicate.js`` does:
- on open it subscribes to the remote's blocks with ``Want`` messages of 1,048,576-block regions;
- it answers a ``Want`` (whose start and length are multiples of 8,192) with a ``Have`` carrying the
  run-length-encoded bitfield of that region, preceded once by a ``Have`` of the last block so the
  remote learns the length at once; after that it announces new blocks with ``Have`` messages;
- it requests blocks that the feed wants (:mod:`hypernode.replication.wants`) and the remote has, with
  the digest of the tree nodes it already has, keeping at most ``max_requests`` in flight; the digest
  also counts the nodes that the answers to its earlier requests in flight will bring (see
  :class:`InFlight`), so that the remote sends about one node per block, as JS does with its 16
  requests issued one at a time, instead of the whole uncle path each (8 nodes a block at 256 in
  flight);
- it answers each ``Request`` with a ``Data`` message carrying the block and only the tree nodes the
  remote lacks, plus the signature when the remote needs one;
- when the feed clears blocks (:meth:`Feed.clear`), it tells the remote with an ``Unhave`` (the
  replicator calls :meth:`FeedPeer.unannounce`).

Its counters are a :class:`PeerStats`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hypernode import rle
from hypernode.bitfield import TreeIndex
from hypernode.errors import CorruptStorageError, HypernodeError
from hypernode.messages import hypercore_protocol as hp
from hypernode.protobuf import Message
from hypernode.storage import Node

if TYPE_CHECKING:
    from hypernode.feed import Feed
    from hypernode.replication.wants import Wants
    from hypernode.wire.connection import Channel

log = logging.getLogger(__name__)
WANT_REGION = 1024 * 1024  # blocks per Want, as JS hypercore sends them
WANT_ALIGN = 8192  # JS answers only Wants aligned to this
MAX_INFLIGHT_WANTS = 16
MAX_REMOTE_BLOCKS = 1 << 48  # a Have beyond this is nonsense
MAX_DEFERRED_REQUESTS = 4096  # requests a peer may have waiting for our output to drain; more is a flood
# a Have's bitfield may expand to this much at most (a Want region is 128 KiB): a 7-byte RLE run claiming
# 2^40 blocks made the node allocate gigabytes
MAX_HAVE_BYTES = 4 * 1024 * 1024
MAX_REMOTE_WANTS = 4096  # Wants a peer may send on one channel (JS sends one per region); more is a flood


class ReplicationError(HypernodeError):
    """The remote broke the replication protocol (beyond sending a block that does not verify)."""


class RemoteBits:
    """The blocks a remote peer says it has: a sparse bitmap in 8 KiB pages (65,536 blocks each).

    Memory follows what the remote announces, up to ``max_pages`` pages (32 MiB): a peer announcing
    more than that is refused with :class:`ReplicationError`, never allowed to exhaust memory.
    """

    PAGE_BITS = 1 << 16
    PAGE_BYTES = PAGE_BITS // 8

    __slots__ = ("pages", "max_pages")

    def __init__(self, max_pages: int = 4096) -> None:
        self.pages: dict[int, bytearray] = {}
        self.max_pages = max_pages

    def _page(self, p: int) -> bytearray:
        page = self.pages.get(p)
        if page is None:
            if len(self.pages) >= self.max_pages:
                raise ReplicationError("the remote announced too many blocks")
            page = self.pages[p] = bytearray(self.PAGE_BYTES)
        return page

    def get(self, i: int) -> bool:
        page = self.pages.get(i >> 16)
        return page is not None and bool(page[(i & 0xFFFF) >> 3] & (128 >> (i & 7)))

    def set(self, i: int, value: bool = True) -> None:
        if value:
            self._page(i >> 16)[(i & 0xFFFF) >> 3] |= 128 >> (i & 7)
        else:
            page = self.pages.get(i >> 16)
            if page is not None:
                page[(i & 0xFFFF) >> 3] &= ~(128 >> (i & 7)) & 0xFF

    def set_range(self, start: int, end: int, value: bool = True) -> None:
        """Set (or clear) every block in ``[start, end)``, whole bytes at a time."""
        if not value:
            self._clear_range(start, end)
            return
        i = start
        while i < end and i & 7:
            self.set(i, value)
            i += 1
        fill = 0xFF if value else 0
        while i + 8 <= end:
            p = i >> 16
            page_end = min(end & ~7, (p + 1) << 16)
            if value or p in self.pages:
                page = self._page(p)
                a, b = (i & 0xFFFF) >> 3, ((page_end - 1) & 0xFFFF) // 8 + 1
                page[a:b] = bytes([fill]) * (b - a)
            i = page_end
        while i < end:
            self.set(i, value)
            i += 1

    def _clear_range(self, start: int, end: int) -> None:
        """Clear ``[start, end)`` in the pages that exist: an Unhave of 2^48 blocks must not walk
        2^32 empty pages (it froze the event loop for hours)."""
        for p in [q for q in self.pages if start < (q + 1) << 16 and q << 16 < end]:
            page = self.pages[p]
            base = p << 16
            i, hi = max(start, base), min(end, base + self.PAGE_BITS)
            while i < hi and i & 7:
                page[(i - base) >> 3] &= ~(128 >> (i & 7)) & 0xFF
                i += 1
            whole = max(i, hi & ~7)
            page[(i - base) >> 3:(whole - base) >> 3] = bytes((whole - i) >> 3)
            i = whole
            while i < hi:
                page[(i - base) >> 3] &= ~(128 >> (i & 7)) & 0xFF
                i += 1

    def fill(self, start: int, data: bytes) -> None:
        """Copy a decoded Have bitfield starting at block ``start`` (a multiple of 8)."""
        byte = start >> 3
        pos = 0
        while pos < len(data):
            p = (byte + pos) // self.PAGE_BYTES
            off = (byte + pos) % self.PAGE_BYTES
            n = min(self.PAGE_BYTES - off, len(data) - pos)
            chunk = data[pos:pos + n]
            if p in self.pages or chunk.count(0) != n:
                self._page(p)[off:off + n] = chunk
            pos += n

    def clear(self) -> None:
        self.pages = {}

    def last(self) -> int:
        """The highest block set, or -1."""
        for p in sorted(self.pages, reverse=True):
            page = self.pages[p]
            for j in range(len(page) - 1, -1, -1):
                b = page[j]
                if b:
                    return (p << 16) + 8 * j + 7 - ((b & -b).bit_length() - 1)
        return -1


class InFlight:
    """Our requests to one remote, and the tree nodes their answers will bring.

    A requester's digest tells the uploader which nodes above a block it already has, so that the
    uploader leaves them out. With many requests in flight, a digest of only the stored nodes asks for
    the whole path again for every block, although the answers on their way carry most of it. So the
    digest of a new request counts as held the nodes that an earlier request's answer brings
    (:meth:`digest`). An answer that needs such a node before it has arrived is *parked*, unverified
    and unstored, waiting on that node (the uploader may answer out of order); it is retried when the
    answer bringing the node is stored. If no earlier request brings the node any more (dropped,
    refused, answered with other nodes), or parked answers pass ``MAX_PARKED_BYTES``, the block is
    asked for again with a digest of stored nodes only (``plain``), whose answer must then verify.
    """

    __slots__ = ("seq", "requests", "expected", "parked", "parked_bytes", "waiting", "plain")

    MAX_PARKED_BYTES = 16 * 1024 * 1024

    def __init__(self) -> None:
        self.seq = 0
        # block -> (order, nodes its answer brings, asked with a digest of stored nodes only)
        self.requests: dict[int, tuple[int, list[int], bool]] = {}
        self.expected: dict[int, list[int]] = {}  # tree node -> the blocks in flight whose answers bring it
        self.parked: dict[int, hp.Data] = {}  # answers waiting for a node from an earlier answer
        self.parked_bytes = 0
        self.waiting: dict[int, list[int]] = {}  # tree node -> parked blocks waiting for it
        self.plain: set[int] = set()  # blocks to ask for again with a digest of stored nodes only

    def digest(self, tree: TreeIndex, index: int) -> tuple[int, list[int], bool]:
        """The digest for block ``index`` counting expected nodes as held, the nodes its answer will
        bring (the path below the first held ancestor, with the siblings), and whether the digest is
        of stored nodes only; computed as :meth:`TreeIndex.digest` does for stored nodes."""
        i = 2 * index
        if index in self.plain:
            self.plain.discard(index)
            return tree.digest(i), [], True
        get = tree.bits.get
        expected = self.expected
        if get(i) or i in expected:
            return 1, [], False
        digest = 0
        brings = [i]
        nxt = i ^ 2
        maximum = max(nxt + 2, tree.bits.length)
        bit = 2
        parent = (nxt | 1) & ~2
        d = 1
        while nxt + (1 << (d - 1)) - 1 < maximum or parent - (1 << d) + 1 > 0:
            if get(nxt) or nxt in expected:
                digest += bit
            brings.append(nxt)
            if get(parent) or parent in expected:
                digest += 2 * bit
                if not digest & 1:
                    digest += 1
                if digest + 1 == 4 * bit:
                    return 1, brings, False
                return digest, brings, False
            brings.append(parent)
            nxt = parent ^ (2 << d)
            parent = (nxt | (1 << d)) & ~(2 << d)
            d += 1
            bit *= 2
        return digest, [], False  # no held ancestor: the answer carries the roots and a signature

    def add(self, index: int, brings: list[int], plain: bool) -> None:
        self.seq += 1
        self.requests[index] = (self.seq, brings, plain)
        expected = self.expected
        for n in brings:
            e = expected.get(n)
            if e is None:
                expected[n] = [index]
            else:
                e.append(index)

    def forget(self, index: int) -> list[int]:
        """The request for ``index`` is answered or dropped: returns the nodes its answer was to bring
        (parked blocks waiting on them are to be looked at again)."""
        req = self.requests.pop(index, None)
        msg = self.parked.pop(index, None)
        if msg is not None and msg.value is not None:
            self.parked_bytes -= len(msg.value)
        if req is None:
            return []
        expected = self.expected
        for n in req[1]:
            e = expected[n]
            e.remove(index)
            if not e:
                del expected[n]
        return req[1]

    def earlier_brings(self, index: int, node: int) -> bool:
        """Does a request sent before the one for ``index`` bring ``node``?"""
        seq = self.requests[index][0]
        requests = self.requests
        return any(requests[j][0] < seq for j in self.expected.get(node, ()))

    def park(self, index: int, msg: hp.Data, node: int) -> None:
        if index not in self.parked:
            self.parked[index] = msg
            self.parked_bytes += len(msg.value or b"")
        w = self.waiting.get(node)
        if w is None:
            self.waiting[node] = [index]
        else:
            w.append(index)

    def waiters(self, nodes: list[int]) -> list[int]:
        """The parked blocks waiting on any of ``nodes`` (no longer waiting)."""
        out: list[int] = []
        waiting = self.waiting
        for n in nodes:
            w = waiting.pop(n, None)
            if w is not None:
                out.extend(i for i in w if i in self.parked)
        return out

    def clear(self) -> None:
        self.requests.clear()
        self.expected.clear()
        self.parked.clear()
        self.parked_bytes = 0
        self.waiting.clear()
        self.plain.clear()


def missing_node(tree: TreeIndex, index: int, nodes: list[Node], signature: bytes | None) -> int | None:
    """The first tree node that checking block ``index`` with these proof nodes (walking up as
    :meth:`Feed.put_verified` does) needs and neither the proof nor our tree has; None if there is
    none. An answer that reaches the roots with a signature is left to the feed to verify."""
    get = tree.bits.get
    top = 2 * index
    r = 0
    n = len(nodes)
    d = 0
    while True:
        if get(top):
            return None
        sib = top ^ (2 << d)
        if r < n and nodes[r].index == sib:
            r += 1
        elif not get(sib):
            return None if signature is not None else sib
        top = (top | (1 << d)) & ~(2 << d)
        d += 1


@dataclass(slots=True)
class PeerStats:
    """What one :class:`FeedPeer` has moved so far."""

    uploaded_blocks: int = 0
    uploaded_bytes: int = 0
    downloaded_blocks: int = 0
    downloaded_bytes: int = 0


class PeerGroup(Protocol):
    """What a :class:`FeedPeer` needs from its feed's replicator (which the
    :class:`~hypernode.replication.replicator.Replicator` is): the feed, its wants, the other peers,
    and where to report what the remote does."""

    @property
    def feed(self) -> Feed: ...

    @property
    def wants(self) -> Wants: ...

    @property
    def remote_length(self) -> int: ...

    def add_peer(self, peer: FeedPeer) -> None: ...

    def remove_peer(self, peer: FeedPeer) -> None: ...

    def remote_changed(self, peer: FeedPeer) -> None: ...

    def release(self, peer: FeedPeer, indexes: list[int]) -> None: ...

    def store_block(self, peer: FeedPeer, index: int, data: bytes, nodes: list[Node],
                    signature: bytes | None) -> None: ...

    def extension_received(self, peer: FeedPeer, remote_names: list[str] | None, extension_id: int,
                           payload: bytes) -> None: ...


class FeedPeer:
    """Replication state of one feed with one remote, driven by messages in, messages out.

    ``send`` queues a message on the channel; ``send_extension(id, payload)`` an extension message;
    ``output_room()`` says how many more bytes of uploads the connection may queue (requests beyond
    that wait, in order, for :meth:`serve_deferred`). With ``auto_update`` it requests more after
    every block; a session that handles messages in batches passes False and calls :meth:`update`
    once per batch, so that requests go out together.
    """

    def __init__(self, replicator: PeerGroup, send: Callable[[Message], None], *,
                 max_requests: int = 32, upload: bool = True, download: bool = True,
                 request_timeout: float = 20.0, clock: Callable[[], float] = time.monotonic,
                 remote_public_key: bytes | None = None, channel: Channel | None = None,
                 send_extension: Callable[[int, bytes], None] | None = None,
                 output_room: Callable[[], int] | None = None, auto_update: bool = True) -> None:
        self.replicator = replicator
        self.feed = replicator.feed
        self._wants = replicator.wants
        self._send = send
        self._send_extension = send_extension
        self.max_requests = max_requests
        self.uploading = upload
        self.downloading = download
        self.request_timeout = request_timeout
        self._clock = clock
        self.remote_public_key = remote_public_key
        self.channel = channel  # the wire channel, when the peer runs on one (its remote_extensions)
        self.auto_update = auto_update

        self.remote = RemoteBits()
        self.remote_length = 0
        self.remote_want = False  # the remote subscribed to our Haves
        self.remote_wants = 0  # Want messages answered on this channel
        self.remote_uploading = True
        self.remote_downloading = True
        self.remote_tree = TreeIndex()  # nodes we know the remote has, to send fewer
        self.opened = False
        self.closed = False
        self.inflight: dict[int, float] = {}  # block index -> when requested
        # when the remote last answered, or the first request went out with none in flight: a remote
        # that answers nothing for request_timeout is dropped (JS refreshes its timer on every answer)
        self._progress = 0.0
        self.requests = InFlight()  # the digests' bookkeeping for the requests in flight
        self._recheck: deque[int] = deque()  # parked blocks to look at again
        self._rechecking = False
        self._wanted_regions: set[int] = set()
        self.inflight_wants = 0  # our Wants the remote has not answered yet
        self.stats = PeerStats()
        self.output_room = output_room
        self.deferred: deque[hp.Request] = deque()

    @property
    def answered(self) -> bool:
        """Has the remote told us what it has (answered every Want we sent)?"""
        return self.opened and not self.inflight_wants

    def __repr__(self) -> str:
        who = self.remote_public_key.hex()[:8] if self.remote_public_key else "?"
        return f"<FeedPeer {who} feed={self.feed.key.hex()[:16]} remote_length={self.remote_length}>"

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_open(self) -> None:
        """Both sides opened the channel: announce our state and subscribe."""
        self.opened = True
        self.replicator.add_peer(self)
        if not self.uploading or not self.downloading:
            self._send(hp.Status(uploading=self.uploading, downloading=self.downloading))
        self.send_wants()
        self.update()

    def on_close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.deferred.clear()
        self.replicator.remove_peer(self)
        self.inflight.clear()
        self.requests.clear()

    # -- messages from the remote ------------------------------------------------------------------

    def on_message(self, msg: object) -> None:
        handler = self._handlers.get(type(msg))
        if handler is not None:
            handler(self, msg)

    def on_extension(self, remote_names: list[str] | None, extension_id: int, payload: bytes) -> None:
        """An extension message on this channel (``remote_names``: the remote's extension list)."""
        self.replicator.extension_received(self, remote_names, extension_id, payload)

    def _on_status(self, msg: hp.Status) -> None:
        if msg.uploading is not None:
            self.remote_uploading = bool(msg.uploading)
        if msg.downloading is not None:
            self.remote_downloading = bool(msg.downloading)
        if not self.remote_uploading:
            self._wants.release(self, list(self.inflight))
            self.inflight.clear()
            self.requests.clear()
            self._wanted_regions.clear()
            self.inflight_wants = 0
        self.update()

    def _on_want(self, msg: hp.Want) -> None:
        if not self.uploading:
            return
        start = msg.start
        length = msg.length if msg.length is not None else 0
        if start % WANT_ALIGN or length % WANT_ALIGN or start > MAX_REMOTE_BLOCKS:
            return
        # each Want costs us a bitfield scan (about 0.2 ms for a region of 1M blocks): honest peers
        # send one per region (again after a Status pause), so a peer sending thousands is flooding
        self.remote_wants += 1
        if self.remote_wants > MAX_REMOTE_WANTS:
            raise ReplicationError("Want flood: too many Want messages on one channel")
        feed = self.feed
        if not self.remote_want and feed.length and feed.has(feed.length - 1):
            self._send(hp.Have(start=feed.length - 1))
        self.remote_want = True
        if length == 0:
            length = max(feed.length - start, 0)
        end = min(start + length, (feed.length + 7) // 8 * 8)
        bits = feed.bitfield.data_bytes(start // 8, max(end, start) // 8) if end > start else b""
        self._send(hp.Have(start=start, length=length, bitfield=rle.encode(bits)))

    def _on_unwant(self, msg: hp.Unwant) -> None:
        pass  # JS ignores it too

    def _on_have(self, msg: hp.Have) -> None:
        start = msg.start
        length = 1 if msg.length is None else msg.length
        if start > MAX_REMOTE_BLOCKS or length > MAX_REMOTE_BLOCKS:
            raise ReplicationError("Have message out of range")
        if length == WANT_REGION and self.inflight_wants > 0 and msg.bitfield is not None:
            self.inflight_wants -= 1
        if msg.bitfield is not None:
            if start % 8:
                raise ReplicationError("Have bitfield not aligned to a byte")
            try:
                bits = rle.decode(msg.bitfield, max_bytes=min(max(length // 8 + 8, 1 << 17), MAX_HAVE_BYTES),
                                  align=4)
            except rle.RLEError as e:
                raise ReplicationError(f"bad Have bitfield: {e}") from None
            self.remote.fill(start, bits)
            last = self.remote.last()
            if last + 1 > self.remote_length:
                self.remote_length = last + 1
        else:
            self.remote.set_range(start, start + length)
            if start + length > self.remote_length:
                self.remote_length = start + length
        self.replicator.remote_changed(self)
        self.update()

    def _on_unhave(self, msg: hp.Unhave) -> None:
        start = msg.start
        length = 1 if msg.length is None else msg.length
        if start == 0 and length >= self.remote_length:
            self.remote_length = 0
            self.remote.clear()
        else:
            self.remote.set_range(start, start + min(length, MAX_REMOTE_BLOCKS), False)
        # requests for blocks the remote no longer has will not be answered: ask someone else
        gone = [i for i in self.inflight if start <= i < start + length]
        if gone:
            for i in gone:
                del self.inflight[i]
                self._forgotten(self.requests.forget(i))
            self.replicator.release(self, gone)

    def _on_request(self, msg: hp.Request) -> None:
        if not self.uploading:
            return
        if self.deferred or (self.output_room is not None and self.output_room() <= 0):
            if len(self.deferred) >= MAX_DEFERRED_REQUESTS:
                raise ReplicationError("request flood: too many requests waiting for our uploads")
            self.deferred.append(msg)
            return
        self._serve(msg)

    def serve_deferred(self) -> None:
        """Answer waiting requests while the connection's output has room (the session calls this
        when the output drains)."""
        room = self.output_room
        while self.deferred and not self.closed and (room is None or room() > 0):
            self._serve(self.deferred.popleft())

    def _serve(self, msg: hp.Request) -> None:
        index = msg.index
        feed = self.feed
        if msg.bytes:
            return  # byte seeks are not supported; JS answers them only as an optimisation
        if index >= feed.length or not feed.tree.get(2 * index):
            return  # we don't have it: say nothing, as JS does
        want_hash = bool(msg.hash)
        if not want_hash and not feed.has(index):
            return
        try:
            proof = feed.proof(index, digest=msg.nodes or 0, want_hash=want_hash,
                               remote_tree=self.remote_tree)
            value = None if want_hash else feed.read_block_sync(index, verify=False)  # the remote verifies
        except (CorruptStorageError, OSError) as e:
            # our copy cannot be read (damaged or unreadable file): tell the remote we lack the block,
            # so that it asks another peer, and keep the connection
            log.error("cannot upload block %d of %s: %s", index, feed.key.hex()[:16], e)
            self._send(hp.Unhave(start=index))
            return
        nodes = [hp.Data.Node(index=n.index, hash=n.hash, size=n.size) for n in proof.nodes]
        if value is not None:
            stats = self.stats
            stats.uploaded_blocks += 1
            stats.uploaded_bytes += len(value)
        if index + 1 > self.remote_length:
            self.remote_length = index + 1
        self._send(hp.Data(index=index, value=value, nodes=nodes, signature=proof.signature))

    def _on_cancel(self, msg: hp.Cancel) -> None:
        if self.deferred:  # a request still waiting for room is dropped; answered ones are gone
            self.deferred = deque(r for r in self.deferred if r.index != msg.index)

    def _on_data(self, msg: hp.Data) -> None:
        index = msg.index
        value = msg.value
        if index not in self.inflight or value is None:
            # unrequested push: refuse it, as JS does
            if value is not None and not self.feed.has(index):
                self._send(hp.Unhave(start=index))
            return
        if index in self.requests.parked:
            return  # a second answer to one request
        self._progress = self._clock()
        self._try(index, msg)
        if self.auto_update:
            self.update()

    def _try(self, index: int, msg: hp.Data) -> None:
        """Verify and store an answer, or park it while the node it lacks is on its way in an earlier
        answer, or ask again with a plain digest when nothing will bring that node."""
        requests = self.requests
        nodes = [Node(n.index, n.hash, n.size) for n in msg.nodes]
        req = requests.requests.get(index)
        if req is not None and not req[2]:
            node = missing_node(self.feed.tree, index, nodes, msg.signature)
            if node is not None:
                value = msg.value or b""
                if requests.earlier_brings(index, node) and (
                        index in requests.parked
                        or requests.parked_bytes + len(value) <= InFlight.MAX_PARKED_BYTES):
                    requests.park(index, msg, node)
                    return
                self._ask_again(index)
                return
        # verified and stored, or VerificationError; the replicator tells the other peers
        assert msg.value is not None
        self.replicator.store_block(self, index, msg.value, nodes, msg.signature)
        del self.inflight[index]
        self._wants.release(self, [index])
        stats = self.stats
        stats.downloaded_blocks += 1
        stats.downloaded_bytes += len(msg.value)
        self._forgotten(requests.forget(index))

    def _ask_again(self, index: int) -> None:
        """Drop the request for ``index``; the block is picked again and asked for with a plain digest."""
        del self.inflight[index]
        brought = self.requests.forget(index)
        self.requests.plain.add(index)
        self._wants.release(self, [index])
        self._forgotten(brought)

    def _forgotten(self, nodes: list[int]) -> None:
        """A request that was to bring ``nodes`` is answered or dropped: look again at the parked
        answers waiting on them."""
        if not nodes or not self.requests.waiting:
            return
        self._recheck.extend(self.requests.waiters(nodes))
        if self._rechecking:
            return  # the loop below, further up the stack, takes them (no recursion down a chain)
        self._rechecking = True
        try:
            parked = self.requests.parked
            while self._recheck:
                index = self._recheck.popleft()
                msg = parked.get(index)
                if msg is not None and not self.closed:
                    self._try(index, msg)
        finally:
            self._rechecking = False
            self._recheck.clear()

    _handlers: dict[type, Callable[[FeedPeer, Any], None]] = {
        hp.Status: _on_status, hp.Have: _on_have, hp.Unhave: _on_unhave, hp.Want: _on_want,
        hp.Unwant: _on_unwant, hp.Request: _on_request, hp.Cancel: _on_cancel, hp.Data: _on_data,
    }

    # -- our side ----------------------------------------------------------------------------------

    def announce(self, start: int, length: int) -> None:
        """Tell the remote about blocks we just got (the replicator calls this)."""
        if self.remote_want and not self.closed:
            if length == 1:
                self._send(hp.Have(start=start))
            else:
                self._send(hp.Have(start=start, length=length))

    def unannounce(self, start: int, length: int) -> None:
        """Tell the remote we no longer have blocks ``[start, start + length)`` (our feed cleared
        them), as hypercore 9 does: an Unhave, if it subscribed to our Haves."""
        if self.remote_want and not self.closed:
            self._send(hp.Unhave(start=start, length=length))

    def send_options(self, extensions: list[str]) -> None:
        """Tell the remote the names of our extensions on this channel."""
        if not self.closed:
            self._send(hp.Options(extensions=extensions))

    def send_extension(self, extension_id: int, payload: bytes) -> None:
        """An extension message to the remote (dropped if this peer runs on no channel)."""
        if self._send_extension is not None and not self.closed:
            self._send_extension(extension_id, payload)

    def send_wants(self) -> None:
        """Subscribe to the regions the feed needs (always region 0, as JS does)."""
        if not self.opened or self.closed or not self.downloading or not self.remote_uploading:
            return
        known = max(self.replicator.remote_length, self.feed.length)
        regions = self._wants.wanted_regions(WANT_REGION, known)
        regions.add(0)
        for r in sorted(regions):
            if self.inflight_wants >= MAX_INFLIGHT_WANTS:
                return
            if r in self._wanted_regions:
                continue
            self._wanted_regions.add(r)
            self.inflight_wants += 1
            self._send(hp.Want(start=r * WANT_REGION, length=WANT_REGION))

    def update(self) -> None:
        """Issue requests for blocks the feed wants and this remote has."""
        if self.closed or not self.opened or not self.downloading or not self.remote_uploading:
            return
        room = self.max_requests - len(self.inflight)
        if room <= 0:
            return
        tree = self.feed.tree
        now = self._clock()
        if not self.inflight:
            self._progress = now
        requests = self.requests
        for index in self._wants.pick(self, room):
            self.inflight[index] = now
            digest, brings, plain = requests.digest(tree, index)
            requests.add(index, brings, plain)
            self._send(hp.Request(index=index, nodes=digest))

    def check_timeouts(self) -> None:
        """Raise :class:`ReplicationError` if requests are in flight and the remote has answered none
        for longer than the timeout. Not the oldest request's age: a busy uploader serving 50 clones
        answers each one steadily but slowly, and 256 requests of 64 KiB wait longer than 20 s in its
        queue without anything being wrong (the load benchmark lost clones that way)."""
        if self.inflight and self._clock() - self._progress > self.request_timeout:
            raise ReplicationError("request timed out")

    def has_remote(self, index: int) -> bool:
        """Has the remote said it has block ``index``?"""
        return self.remote.get(index)
