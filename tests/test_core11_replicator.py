"""hypernode.core11.replicator, sans-IO: two Replicators wired together in memory (and a hand-driven
Mux playing a remote that lies), then the trio adapter (core11.replicate) over memory and TCP streams.

Hypothesis feeds a Replicator bytes: random ones, and real transcripts with a byte changed. Only
CoreReplicationError may come out, and every block the core stored is the writer's.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypernode.core11.core import Core
from hypernode.core11.corestore import Corestore as Corestore11
from hypernode.core11.crypto import replicate_capability
from hypernode.core11.messages import (
    PROTOCOL,
    Data,
    Extension,
    Handshake,
    NoData,
    Range,
    Request,
    Sync,
    decode_message,
)
from hypernode.core11.mux import ChannelOpened, MessageReceived, Mux
from hypernode.core11.proof import BlockRequest, DataBlock, HashRequest, UpgradeRequest
from hypernode.core11.replicate import open_replication
from hypernode.core11.replicator import (
    BlockDownloaded,
    CoreAttached,
    CoreDetached,
    CoreRefused,
    CoreReplicationError,
    CoreRequested,
    Event,
    ExtensionReceived,
    RemoteSynced,
    Reorged,
    Replicator,
    Upgraded,
    _RemoteBits,
)
from tests.core11_cores import held, reader, reader_of, stored
from tests.core11_cores import writer as make_writer

HH = bytes(range(64))


def writer(seed: int = 1, count: int = 0, size: int = 16) -> Core:
    return make_writer(seed, [b"%d:" % i + bytes([i & 255]) * size for i in range(count)])


class Wire:
    """Two Replicators and what passes between them (``sent[x]``: every message x sent)."""

    def __init__(self, *, hh_a: bytes = HH, hh_b: bytes = HH, max_inflight: int = 64) -> None:
        self.a = Replicator(initiator=True, handshake_hash=hh_a, max_inflight=max_inflight)
        self.b = Replicator(initiator=False, handshake_hash=hh_b, max_inflight=max_inflight)
        self.events: dict[str, list[Event]] = {"a": [], "b": []}
        self.sent: dict[str, list[bytes]] = {"a": [], "b": []}
        self.max_inflight_seen = 0

    def pump(self, limit: int = 100000) -> int:
        """Deliver until both are quiet; returns how many messages went."""
        n = 0
        while n < limit:
            moved = False
            for name, x, y, other in (("a", self.a, self.b, "b"), ("b", self.b, self.a, "a")):
                self.events[name] += x.events()
                for m in x.data_to_send():
                    moved = True
                    n += 1
                    self.sent[name].append(m)
                    self.events[other] += y.receive(m)
                    for core in y.cores():
                        self.max_inflight_seen = max(self.max_inflight_seen, y.inflight(core))
            if not moved:
                return n
        raise AssertionError("the two replicators never went quiet")

    def of(self, name: str, kind: type) -> list[Event]:
        return [e for e in self.events[name] if isinstance(e, kind)]


def blocks_of(core: Core) -> dict[int, bytes]:
    return held(core)


# -- two replicators --------------------------------------------------------------------------------

def test_full_download_and_live_appends() -> None:
    w = writer(count=1000)
    r = reader_of(w)
    wire = Wire(max_inflight=16)
    wire.a.add_core(w)
    wire.b.add_core(r)
    wire.b.want(r, 0, None)
    wire.pump()
    assert r.length == 1000 and blocks_of(r) == blocks_of(w)
    assert [e.core for e in wire.of("a", CoreAttached)] == [w]
    assert [e.core for e in wire.of("b", CoreAttached)] == [r]
    assert len(wire.of("b", BlockDownloaded)) == 1000
    assert wire.of("b", Upgraded) == [Upgraded(r, 1000)]
    assert 0 < wire.max_inflight_seen <= 16  # bounded in flight
    # live: appends announced with core_changed arrive, with an upgrade first
    for n in (1, 5, 40):
        w.append([b"live" + bytes([i]) for i in range(n)])
        wire.a.core_changed(w)
        wire.pump()
        assert r.length == w.length and blocks_of(r) == blocks_of(w)
    assert [e.length for e in wire.of("b", Upgraded)] == [1000, 1001, 1006, 1046]


def test_an_empty_reader_takes_a_truncated_core_at_its_new_fork() -> None:
    w = writer(count=20)
    w.truncate(10)
    w.append([b"after %d" % i for i in range(5)])
    assert (w.fork, w.length) == (1, 15)
    r = reader_of(w)
    wire = Wire()
    wire.a.add_core(w)
    wire.b.add_core(r)
    wire.b.want(r)
    wire.pump()
    assert (r.fork, r.length) == (1, 15) and blocks_of(r) == blocks_of(w)


@pytest.mark.parametrize("keep", [0, 1, 31, 32, 60, 99])
@pytest.mark.parametrize("sparse", [False, True])
def test_a_reader_follows_the_writer_to_a_new_fork(keep: int, sparse: bool) -> None:
    w = writer(count=100)
    r = reader_of(w)
    wire = Wire()
    wire.a.add_core(w)
    wire.b.add_core(r)
    if sparse:
        wire.b.want(r, 20, 40)
        wire.b.want(r, 90, 95)
    else:
        wire.b.want(r)
    wire.pump()
    before = held(r)
    w.truncate(keep)
    w.append([b"new %d" % i for i in range(10)])
    wire.a.core_changed(w)
    wire.pump()
    assert (r.fork, r.length) == (1, keep + 10)
    (reorged,) = wire.of("b", Reorged)
    assert (reorged.fork, reorged.length) == (1, keep + 10)
    if sparse:
        # a sparse core finds where the forks part from the nodes it holds: at or before it; it keeps
        # what it held before that and nothing after (those ranges were downloaded: not asked again)
        assert reorged.kept <= keep
        assert held(r) == {i: v for i, v in before.items() if i < reorged.kept}
        assert all(w.get(i) == v for i, v in held(r).items())
    else:
        assert reorged.kept == keep
        assert held(r) == held(w)


def test_sparse_ranges_download_only_those_blocks() -> None:
    w = writer(count=70000, size=1)  # more than one bitfield page and want batch boundary irrelevant
    r = reader_of(w)
    wire = Wire()
    wire.a.add_core(w)
    wire.b.add_core(r)
    wire.pump()
    assert r.length == 70000 and held(r) == {}  # upgraded eagerly, no block asked for
    wire.b.want(r, 10, 20)
    wire.b.want(r, 32767, 32770)
    wire.b.want(r, 69999, 70000)
    wire.pump()
    want = [*range(10, 20), *range(32767, 32770), 69999]
    assert sorted(held(r)) == want
    assert all(held(r)[i] == w.get(i) for i in want)


def test_a_sparse_source_says_what_it_has_and_the_reader_finds_it() -> None:
    """Three peers in a chain: w (all) -> m (a few) -> r asks m for more than m has."""
    w = writer(count=300)
    m = reader_of(w)
    r = reader_of(w)
    first = Wire()
    first.a.add_core(w)
    first.b.add_core(m)
    first.b.want(m, 100, 110)
    first.pump()
    assert sorted(held(m)) == list(range(100, 110))
    second = Wire()
    second.a.add_core(m)
    second.b.add_core(r)
    second.b.want(r, 95, 115)  # m has 100..110 of it: want -> bitfield -> requests for those
    second.pump()
    assert sorted(held(r)) == list(range(100, 110))
    assert all(v == w.get(i) for i, v in held(r).items())


def test_blocks_stored_later_are_announced_to_a_remote_that_wanted_them() -> None:
    """r asks m for blocks m has not got; m gets them from w over another stream and says so
    (core_changed with the range): r then fetches them from m."""
    w = writer(count=3000)
    m = reader_of(w)
    r = reader_of(w)
    upstream, downstream = Wire(), Wire()
    upstream.a.add_core(w)
    upstream.b.add_core(m)
    upstream.pump()  # m knows the length, holds no block
    downstream.a.add_core(m)
    downstream.b.add_core(r)
    downstream.b.want(r, 100, 120)
    downstream.pump()
    assert r.length == 3000 and held(r) == {}
    upstream.b.want(m, 100, 110)
    upstream.pump()
    downstream.a.core_changed(m, 100, 110)
    downstream.pump()
    assert sorted(held(r)) == list(range(100, 110))
    # r's want covered the whole batch (2,097,152 blocks, as JS asks): 2000 is announced, not fetched
    upstream.b.want(m, 2000, 2001)
    upstream.pump()
    downstream.a.core_changed(m, 2000, 2001)
    (announced,) = downstream.a.data_to_send()
    assert announced.endswith(b"\x08" + Range(2000, 1).encode())  # (a batch of the one message)
    downstream.b.receive(announced)
    downstream.b.want(r, 2000, 2001)
    downstream.pump()
    assert sorted(held(r)) == [*range(100, 110), 2000]


def test_stored_blocks_are_not_announced_to_a_remote_that_wanted_nothing() -> None:
    w = writer(count=3000)
    m = reader_of(w)
    upstream, downstream = Wire(), Wire()
    upstream.a.add_core(w)
    upstream.b.add_core(m)
    downstream.a.add_core(m)
    downstream.b.add_core(reader_of(w))
    upstream.b.want(m, 100, 101)
    upstream.b.want(m, 2990, 2991)
    upstream.pump()
    downstream.pump()
    downstream.a.core_changed(m, 100, 101)
    assert downstream.a.data_to_send() == []
    downstream.a.core_changed(m, 2990, 2991)  # near the end: announced anyway, as JS does
    (announced,) = downstream.a.data_to_send()
    assert announced.endswith(b"\x08" + Range(2990, 1).encode())


def test_many_cores_on_one_stream_and_a_remote_open_we_do_not_have() -> None:
    ws = [writer(seed, count=20 + seed) for seed in range(1, 5)]
    rs = [reader_of(w) for w in ws[:3]]
    wire = Wire()
    for w in ws:
        wire.a.add_core(w)
    for r in rs:
        wire.b.add_core(r)
        wire.b.want(r)
    wire.pump()
    for w, r in zip(ws[:3], rs, strict=True):
        assert blocks_of(r) == blocks_of(w)
    # the fourth core: b has no such core; it is told, and adds it later: the waiting open pairs
    assert [e.discovery_key for e in wire.of("b", CoreRequested)] == [ws[3].discovery_key]
    late = reader_of(ws[3])
    wire.b.add_core(late)
    wire.b.want(late)
    wire.pump()
    assert blocks_of(late) == blocks_of(ws[3])


def test_a_provider_is_asked_for_remote_opens_and_a_store_is_one() -> None:
    """b has a Corestore as its provider: a's open of a core the store holds attaches it, one it does not
    hold is declined (a's channel closes)."""
    with Corestore11() as store:
        shared = make_writer(1, [b"x%d" % i for i in range(30)])
        unknown = make_writer(2, [b"y"])
        held_by_store = store.get(key=shared.key)
        wire = Wire()
        wire.b = Replicator(initiator=False, handshake_hash=HH, provider=store)
        wire.a.add_core(shared)
        wire.a.add_core(unknown)
        wire.pump()
        assert wire.b.cores() == [held_by_store] and wire.b.is_attached(held_by_store)
        assert wire.a.cores() == [shared]  # unknown's channel was rejected
        assert wire.of("b", CoreRequested) == []
        wire.b.want(held_by_store)
        wire.pump()
        assert blocks_of(held_by_store) == blocks_of(shared)


def test_decline_rejects_the_remote_open() -> None:
    w = writer(count=3)
    wire = Wire()
    wire.a.add_core(w)
    wire.pump()
    (requested,) = wire.of("b", CoreRequested)
    wire.b.decline(requested.discovery_key)
    wire.pump()
    assert wire.of("a", CoreAttached) == [] and wire.a.cores() == []  # its channel was rejected


def test_a_wrong_capability_closes_the_channel_and_the_stream_carries_on() -> None:
    w, other = writer(1, count=3), writer(2, count=3)
    wire = Wire(hh_a=HH, hh_b=bytes(64))  # the two sides disagree on the handshake hash
    wire.a.add_core(w)
    wire.b.add_core(reader_of(w))
    wire.pump()
    assert len(wire.of("a", CoreRefused)) + len(wire.of("b", CoreRefused)) >= 1
    assert wire.of("a", CoreAttached) == wire.of("b", CoreAttached) == []
    assert not wire.a.is_attached(w)
    wire.a.add_core(other)  # the mux and the stream still work (the capability still cannot match)
    wire.pump()


def test_extensions_pass_up_as_events_with_the_name_sent_once() -> None:
    w = writer(count=1)
    r = reader_of(w)
    wire = Wire()
    wire.a.add_core(w)
    wire.b.add_core(r)
    wire.pump()
    wire.a.send_extension(w, "hello", b"1")
    wire.a.send_extension(w, "hello", b"2")
    wire.a.send_extension(w, "other", b"3")
    wire.b.send_extension(r, "back", b"4")
    wire.pump()
    assert wire.of("b", ExtensionReceived) == [ExtensionReceived(r, "hello", b"1"),
                                               ExtensionReceived(r, "hello", b"2"),
                                               ExtensionReceived(r, "other", b"3")]
    assert wire.of("a", ExtensionReceived) == [ExtensionReceived(w, "back", b"4")]
    exts = [decode_message(9, m[2:]) for m in wire.sent["a"] if m[:2] == b"\x01\x09"]
    assert [e.name for e in exts if isinstance(e, Extension)] == ["hello", "", "other"]


def test_remove_core_detaches_it_on_both_sides() -> None:
    w = writer(count=2)
    r = reader_of(w)
    wire = Wire()
    wire.a.add_core(w)
    wire.b.add_core(r)
    wire.pump()
    wire.b.remove_core(r)
    wire.pump()
    assert wire.of("a", CoreDetached) == [CoreDetached(w)]
    assert wire.a.cores() == [] and wire.b.cores() == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "clear", "bits"]), st.integers(0, 300), st.integers(0, 64),
                          st.binary(max_size=8)), max_size=30))
def test_remote_bits_follow_ranges_and_bitfields(ops: list[tuple[str, int, int, bytes]]) -> None:
    bits, model = _RemoteBits(), set()
    for op, start, length, raw in ops:
        if op == "set":
            bits.set_range(start, start + length, True)
            model |= set(range(start, start + length))
        elif op == "clear":
            bits.set_range(start, start + length, False)
            model -= set(range(start, start + length))
        else:
            bits.insert(start, raw)
            for k in range(8 * len(raw)):
                (model.add if raw[k >> 3] >> (k & 7) & 1 else model.discard)(start + k)
        assert [i for i in range(400) if bits.get(i)] == sorted(i for i in model if i < 400)
        for i in range(0, 400, 13):
            assert bits.next_set(i, 400) == min((j for j in model if i <= j < 400), default=None)
        contiguous = 0
        while contiguous in model:
            contiguous += 1
        assert bits.contiguous == contiguous


def test_remote_bits_are_bounded() -> None:
    bits = _RemoteBits(max_runs=10)
    bits.set_range(0, 2**52, True)  # one run, however long
    with pytest.raises(CoreReplicationError, match="limit"):
        bits.insert(2**52, bytes([0x55]) * 4)


# -- a remote played by hand ------------------------------------------------------------------------

class FakeRemote:
    """A Mux opening ``core``'s channel with the right capability, to send what a real peer would not."""

    def __init__(self, us: Replicator, core: Core) -> None:
        self.us = us
        self.mux = Mux()
        cap = replicate_capability(not us.initiator, core.key, us.handshake_hash)
        self.channel = self.mux.open(PROTOCOL, core.discovery_key, Handshake(cap).encode())
        self.received: list[object] = []

    def flush(self) -> list[Event]:
        events: list[Event] = []
        for m in self.mux.data_to_send():
            events += self.us.receive(m)
        for m in self.us.data_to_send():
            for ev in self.mux.receive(m):
                if isinstance(ev, MessageReceived):
                    self.received.append(decode_message(ev.type, ev.body))
                assert not isinstance(ev, ChannelOpened) or ev.channel is self.channel
        return events

    def send(self, msg: object) -> None:
        assert isinstance(msg, Sync | Request | Data | NoData | Range)
        self.channel.send(msg.TYPE, msg.encode())

    def requests(self) -> list[Request]:
        return [m for m in self.received if isinstance(m, Request)]


def attached(core: Core, length: int) -> tuple[Replicator, FakeRemote]:
    us = Replicator(initiator=True, handshake_hash=HH)
    us.add_core(core)
    remote = FakeRemote(us, core)
    remote.flush()
    remote.send(Sync(fork=0, length=length, remote_length=0, can_upgrade=True, uploading=True))
    remote.send(Range(0, length))
    remote.flush()
    return us, remote


def test_a_block_that_does_not_verify_ends_the_connection_and_is_not_stored() -> None:
    w = writer(count=8)
    r = reader(w.key, w.manifest)
    us, remote = attached(r, 8)
    (up,) = remote.requests()
    assert up.upgrade == UpgradeRequest(0, 8)
    remote.send(Data.answering(up.id, w.proof(upgrade=up.upgrade)))
    remote.flush()
    us.want(r, 0, 1)
    remote.flush()
    req = remote.requests()[-1]
    assert req.block is not None and req.block.index == 0
    good = w.proof(block=req.block)
    assert good.block is not None
    bad = DataBlock(0, b"X" + good.block.value[1:], good.block.nodes)
    remote.send(Data(request=req.id, fork=0, block=bad))
    with pytest.raises(CoreReplicationError, match="does not verify"):
        remote.flush()
    assert held(r) == {} and stored(r, 8) == {}


def test_an_answer_for_another_block_ends_the_connection() -> None:
    w = writer(count=8)
    r = reader(w.key, w.manifest)
    us, remote = attached(r, 8)
    (up,) = remote.requests()
    remote.send(Data.answering(up.id, w.proof(upgrade=up.upgrade)))
    remote.flush()
    us.want(r, 3, 4)
    remote.flush()
    req = remote.requests()[-1]
    remote.send(Data.answering(req.id, w.proof(block=BlockRequest(5, 3))))
    with pytest.raises(CoreReplicationError, match="block 3 with block 5"):
        remote.flush()
    assert held(r) == {} and stored(r, 8) == {}


def test_unsolicited_data_and_nodata_are_ignored() -> None:
    w = writer(count=8)
    r = reader(w.key, w.manifest)
    us, remote = attached(r, 8)
    (up,) = remote.requests()
    remote.send(Data.answering(999, w.proof(upgrade=up.upgrade)))  # no such request
    remote.send(NoData(12345))
    remote.flush()
    assert r.length == 0
    remote.send(NoData(up.id))  # the upgrade cannot be had from this remote: not asked again
    remote.flush()
    assert [q for q in remote.requests() if q.upgrade] == [up]


def test_requests_we_cannot_answer_get_nodata_and_too_many_invalid_ones_end_it() -> None:
    w = writer(count=4)
    us, remote = attached(w, 0)
    remote.send(Request(id=1, fork=0, block=BlockRequest(2, 0)))
    remote.send(Request(id=2, fork=0, block=BlockRequest(9, 0)))  # past the core
    remote.send(Request(id=3, fork=1, block=BlockRequest(0, 0)))  # another fork
    remote.flush()
    answers = [m for m in remote.received if isinstance(m, Data | NoData)]
    assert isinstance(answers[0], Data) and answers[0].block is not None and answers[0].block.index == 2
    assert answers[1:] == [NoData(2, 1), NoData(3, 1)]
    with pytest.raises(CoreReplicationError, match="invalid requests"):
        for i in range(100):
            remote.send(Request(id=10 + i, fork=0, upgrade=UpgradeRequest(0, 50)))  # past the length
            remote.flush()


# -- fuzz -------------------------------------------------------------------------------------------

def _transcript(*, truncate: bool) -> tuple[Core, dict[int, bytes], dict[int, bytes], list[bytes]]:
    """What a writer sends a reader downloading all 40 blocks (then, with ``truncate``, following it to
    a new fork: 25 kept, 10 new); with the blocks of each fork."""
    w = writer(count=40, size=64)
    wire = Wire(max_inflight=4)
    r = reader_of(w)
    wire.a.add_core(w)
    wire.b.add_core(r)
    wire.b.want(r, 0, None)
    wire.pump()
    old = blocks_of(w)
    if truncate:
        w.truncate(25)
        w.append([b"new %d" % i for i in range(10)])
        wire.a.core_changed(w)
        wire.pump()
        assert wire.of("b", Reorged)
    assert blocks_of(r) == blocks_of(w)
    return w, old, blocks_of(w), wire.sent["a"]


_TRANSCRIPTS = {truncate: _transcript(truncate=truncate) for truncate in (False, True)}
_W = _TRANSCRIPTS[False][0]
_A_SENT = _TRANSCRIPTS[False][3]


def _replay(messages: Iterable[bytes], truncate: bool = False) -> Core:
    """b's side of a transcript again, given (altered) messages from a; returns b's core. Whatever came,
    b holds blocks of one fork only, each the writer's."""
    w, old, new, _ = _TRANSCRIPTS[truncate]
    r = reader_of(w)
    b = Replicator(initiator=False, handshake_hash=HH, max_inflight=4)
    b.add_core(r)
    b.want(r, 0, None)
    try:
        for m in messages:
            b.receive(m)
            b.data_to_send()
    except CoreReplicationError:
        pass
    blocks = new if r.fork == 1 else old
    for i, value in stored(r, 40).items():
        assert value == blocks[i]  # nothing unverified stored
    assert (r.fork, r.length) in ((0, 0), (0, 40), (1, 35))
    return r


@pytest.mark.parametrize("truncate", [False, True])
def test_the_transcripts_replay(truncate: bool) -> None:
    assert blocks_of(_replay(_TRANSCRIPTS[truncate][3], truncate)) == _TRANSCRIPTS[truncate][2]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_fuzz_a_changed_byte_in_a_real_transcript(data: st.DataObject, truncate: bool) -> None:
    sent = _TRANSCRIPTS[truncate][3]
    k = data.draw(st.integers(0, len(sent) - 1))
    m = bytearray(sent[k])
    pos = data.draw(st.integers(0, len(m) - 1))
    m[pos] ^= data.draw(st.integers(1, 255))
    _replay([*sent[:k], bytes(m), *sent[k + 1:]], truncate)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8), st.integers(0, 12), st.booleans())
def test_fuzz_random_messages_in_a_real_transcript(junk: list[bytes], at: int, truncate: bool) -> None:
    sent = _TRANSCRIPTS[truncate][3]
    _replay([*sent[:at], *junk, *sent[at:]], truncate)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.binary(max_size=120)), max_size=10))
def test_fuzz_messages_on_an_open_channel(messages: list[tuple[int, bytes]]) -> None:
    r = reader_of(_W)
    us = Replicator(initiator=True, handshake_hash=HH)
    us.add_core(r)
    us.want(r)
    remote = FakeRemote(us, r)
    remote.flush()
    try:
        for type, body in messages:
            remote.channel.send(type, body)
            remote.flush()
    except CoreReplicationError:
        pass
    assert stored(r, _W.length) == {} and r.length == 0


_big = st.integers(0, 2**53 - 1)
_small = st.integers(0, 70)
_requests = st.builds(
    Request, id=st.integers(0, 2**32), fork=st.integers(0, 2),
    block=st.none() | st.builds(BlockRequest, st.integers(0, 50) | _big, _small),
    hash=st.none() | st.builds(HashRequest, st.integers(0, 100) | _big, _small),
    upgrade=st.none() | st.builds(UpgradeRequest, st.integers(0, 50) | _big, st.integers(0, 50) | _big),
    manifest=st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(_requests, min_size=1, max_size=10, unique_by=lambda r: r.id))
def test_fuzz_requests_to_a_writer_are_answered_or_refused(requests: list[Request]) -> None:
    """Any request gets Data (a proof that verifies for the right reader) or NoData, and nothing else
    leaves the writer (CoreReplicationError only past the invalid-request limit)."""
    us, remote = attached(_W, 0)
    for req in requests:
        remote.send(req)
    remote.flush()
    answers = {m.request: m for m in remote.received if isinstance(m, Data | NoData)}
    assert set(answers) == {r.id for r in requests}
    for req in requests:
        answer = answers[req.id]
        if isinstance(answer, Data) and answer.upgrade is not None and req.upgrade is not None \
                and req.upgrade.start == 0 and not req.hash:
            r = reader(_W.key, _W.manifest)
            assert r.apply(answer.proof).length == _W.length  # what we sent verifies


# -- the trio adapter ---------------------------------------------------------------------------------

async def test_adapter_download_live_and_extensions_over_memory_streams() -> None:
    w = writer(count=200, size=100)
    r = reader_of(w)
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        ready = trio.Event()
        done = trio.Event()

        async def serve() -> None:
            async with open_replication(right, initiator=False, cores=[w]) as repl:
                ready.set()
                await done.wait()
                for n in range(3):
                    w.append(b"more %d" % n)
                    await repl.core_changed(w)
                    await trio.sleep(0.01)
                await repl.send_extension(w, "ping", b"hi")
                await trio.sleep_forever()

        nursery.start_soon(serve)
        async with open_replication(left, initiator=True, cores=[r]) as repl:
            with trio.fail_after(20):
                await repl.download(r, 10, 20)
                assert sorted(held(r)) == list(range(10, 20))
                await repl.download(r)
                assert blocks_of(r) == blocks_of(w)
                async with repl.subscribe() as events:
                    await repl.want(r)
                    done.set()
                    await repl.wait_length(r, 203)
                    async for ev in events:
                        if isinstance(ev, ExtensionReceived):
                            assert (ev.name, ev.message) == ("ping", b"hi")
                            break
                await repl.download(r, 0, 203)
                assert blocks_of(r) == blocks_of(w)
        nursery.cancel_scope.cancel()


async def test_adapter_a_cancelled_download_leaves_another_of_the_same_range_waiting() -> None:
    """Two downloads of a block the remote has not got; one is cancelled; the remote gets the block and
    says so (core_changed with its range): the other completes."""
    w = writer(count=20)
    m = reader(w.key, w.manifest)  # the remote: knows the length, holds no block
    m.apply(w.proof(upgrade=UpgradeRequest(0, 20)))
    r = reader_of(w)
    left, right = trio.testing.memory_stream_pair()
    got = trio.Event()
    async with trio.open_nursery() as nursery:
        async def serve() -> None:
            async with open_replication(right, initiator=False, cores=[m]) as repl:
                await repl.wait_attached(m)
                await got.wait()
                m.apply(w.proof(block=BlockRequest(5, m.missing_nodes(10))))
                await repl.core_changed(m, 5, 6)
                await trio.sleep_forever()

        nursery.start_soon(serve)
        async with open_replication(left, initiator=True, cores=[r]) as repl:
            done = trio.Event()

            async def second() -> None:
                await repl.download(r, 5, 6)
                done.set()

            with trio.move_on_after(0.3):
                nursery.start_soon(second)
                await repl.download(r, 5, 6)
            assert not done.is_set()
            got.set()
            with trio.fail_after(20):
                await done.wait()
            assert held(r) == {5: w.get(5)}
        nursery.cancel_scope.cancel()


async def test_adapter_a_subscriber_that_closed_its_channel_is_dropped() -> None:
    """Events published to a subscription whose channel is closed (by its owner, or being left) must not
    fail the replication (they raised BrokenResourceError out of the reader task)."""
    w = writer(count=50)
    r = reader_of(w)
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        async def serve() -> None:
            async with open_replication(right, initiator=False, cores=[w]):
                await trio.sleep_forever()

        nursery.start_soon(serve)
        async with open_replication(left, initiator=True, cores=[r]) as repl:
            with trio.fail_after(20):
                async with repl.subscribe() as closed, repl.subscribe() as events:
                    closed.close()
                    await repl.download(r, 0, 50)
                    assert isinstance(await events.receive(), CoreAttached | BlockDownloaded | Upgraded
                                      | RemoteSynced)
        assert blocks_of(r) == blocks_of(w)
        nursery.cancel_scope.cancel()


async def test_adapter_a_lying_peer_ends_the_block_with_the_error() -> None:
    w = writer(count=5)
    r = reader_of(w)
    left, right = trio.testing.memory_stream_pair()

    async def liar() -> None:
        # a secret-stream peer speaking the replication by hand: it answers the upgrade with a forged one
        from hypernode.core11.secretstream import open_secret_stream
        async with open_secret_stream(right, initiator=False) as conn:
            us_cap = replicate_capability(False, w.key, conn.handshake_hash)
            mux = Mux()
            ch = mux.open(PROTOCOL, w.discovery_key, Handshake(us_cap).encode())
            ch.send(0, Sync(fork=0, length=5, remote_length=0, can_upgrade=True, uploading=True).encode())
            for m in mux.data_to_send():
                await conn.send(m)
            async for message in conn:
                for ev in mux.receive(message):
                    if isinstance(ev, MessageReceived) and ev.type == Request.TYPE:
                        req = Request.decode(ev.body)
                        proof = w.proof(upgrade=req.upgrade)
                        assert proof.upgrade is not None
                        forged = Data.answering(req.id, proof)
                        forged = Data(request=forged.request, fork=0, upgrade=type(proof.upgrade)(
                            proof.upgrade.start, proof.upgrade.length, proof.upgrade.nodes,
                            proof.upgrade.additional_nodes, bytes(64)))
                        ch.send(Data.TYPE, forged.encode())
                for m in mux.data_to_send():
                    await conn.send(m)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(liar)
        with pytest.raises(CoreReplicationError, match="does not verify"):
            async with open_replication(left, initiator=True, cores=[r]) as repl:
                with trio.fail_after(20):
                    await repl.download(r)
        nursery.cancel_scope.cancel()
    assert r.length == 0 and stored(r, 5) == {}


async def test_adapter_waits_raise_when_the_connection_ends() -> None:
    w = writer(count=5)
    r = reader_of(w)
    left, right = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        async def serve() -> None:
            async with open_replication(right, initiator=False, cores=[]):
                await trio.sleep(0.1)  # has not the core; leaves: the connection ends

        nursery.start_soon(serve)
        async with open_replication(left, initiator=True, cores=[r]) as repl:
            with trio.fail_after(20), pytest.raises(CoreReplicationError, match="connection ended"):
                await repl.wait_length(r, 5)


async def test_adapter_over_tcp_many_cores() -> None:
    ws = [writer(seed, count=50, size=1000) for seed in range(1, 4)]
    rs = [reader_of(w) for w in ws]
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def serve(stream: trio.SocketStream) -> None:
        async with open_replication(stream, initiator=False, cores=ws):
            await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, serve, listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with open_replication(stream, initiator=True, cores=rs) as repl:
            with trio.fail_after(20):
                for r in rs:
                    await repl.download(r)
        for w, r in zip(ws, rs, strict=True):
            assert blocks_of(r) == blocks_of(w)
        nursery.cancel_scope.cancel()



