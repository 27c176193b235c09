"""hypercore 11's replication messages (core11.messages) and the sans-IO protomux (core11.mux), on their own:
round trips of every message, fuzzed decoders and mux (garbage raises DecodeError and nothing else), two
Python muxes talking (pairing, offers, batches, closes, rejects, number reuse) and the limits.
Byte-for-byte agreement with JS is interop/test_core11_mux_interop.py's."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypernode.core11.messages import (
    MESSAGE_TYPES,
    PROTOCOL,
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
    Sync,
    Unwant,
    Want,
    decode_message,
)
from hypernode.core11.mux import (
    MAX_BATCH,
    BatchEnded,
    BatchStarted,
    Channel,
    ChannelClosed,
    ChannelOpened,
    MessageReceived,
    Mux,
    OpenRequested,
    OpenWithdrawn,
)
from hypernode.core11.proof import DataBlock, Proof
from hypernode.core11.tree import Node
from hypernode.errors import DecodeError
from tests.core11_wire_samples import random_message

DECODERS = [*MESSAGE_TYPES.values(), Handshake, ReorgHint]
DK = bytes(range(32))


@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False))
def test_every_message_round_trips(rng: random.Random):
    m = random_message(rng)
    data = m.encode()
    assert type(m).decode(data) == m
    if not isinstance(m, Extension | NoData | Want | Unwant):  # (those read to the end)
        assert type(m).decode(data + b"\x01\x02") == m  # bytes after a message are left alone, as JS
    if isinstance(m, Message):
        assert decode_message(m.TYPE, data) == m


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(DECODERS), st.binary(max_size=200))
def test_decoders_raise_only_decode_error_on_garbage(cls: type, data: bytes):
    try:
        cls.decode(data)
    except DecodeError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False), st.data())
def test_decoders_raise_only_decode_error_on_damaged_messages(rng: random.Random, data: st.DataObject):
    m = random_message(rng)
    raw = bytearray(m.encode())
    cut = data.draw(st.integers(0, len(raw)))
    for _ in range(data.draw(st.integers(0, 4))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    for sample in (bytes(raw), bytes(raw[:cut])):
        try:
            type(m).decode(sample)
        except DecodeError:
            pass


def test_message_details():
    assert decode_message(10, b"anything") is None  # a type hypercore 11 does not define: ignored
    assert Range(7, 1).encode() == bytes([2, 7]) and Range(7, 3, drop=True).encode() == bytes([1, 7, 3])
    assert NoData(5).encode() == bytes([5, 0]) and NoData.decode(bytes([5])) == NoData(5)
    assert Want(1, 2).encode() == bytes([1, 2]) and Want(1, 2, any=True).encode() == bytes([1, 2, 1])
    assert Sync(1, 2, 3, can_upgrade=True, allow_push=True).encode() == bytes([17, 1, 2, 3])
    bits = Bitfield(0, bytes([0b101, 0, 0, 0x80]))
    assert [i for i in range(40) if bits.has(i)] == [0, 2, 31]
    with pytest.raises(ValueError):
        Bitfield(0, b"abc").encode()
    with pytest.raises(DecodeError):
        Bitfield.decode(bytes([0, 0xFE, 0xFF, 0xFF, 0xFF, 0x0F]))  # a count far past the bytes
    proof = Proof(fork=2, block=DataBlock(3, b"x", (Node(6, 1, b"\x01" * 32),)))
    data = Data.answering(9, proof, seek=DataSeek(100))
    assert data.proof == proof and Data.decode(data.encode()) == data
    assert Request.decode(Request(1, 0, priority=0).encode()).priority == 0
    assert Extension.decode(Extension("chat", b"hi").encode()) == Extension("chat", b"hi")
    with pytest.raises(DecodeError):
        Extension.decode(b"\x02\xff\xfe")  # a name that is not UTF-8
    assert Cancel.decode(Cancel(2**53 - 1).encode()) == Cancel(2**53 - 1)


# -- two muxes ------------------------------------------------------------------------------------------

def _pump(a: Mux, b: Mux) -> tuple[list[object], list[object]]:
    """Deliver what each has to send to the other until both are quiet; the events each saw."""
    seen_a: list[object] = []
    seen_b: list[object] = []
    while True:
        out_a, out_b = a.data_to_send(), b.data_to_send()
        if not out_a and not out_b:
            return seen_a, seen_b
        for m in out_a:
            seen_b += b.receive(m)
        for m in out_b:
            seen_a += a.receive(m)


def test_opens_pair_and_messages_flow_both_ways():
    a, b = Mux(), Mux()
    ca = a.open(PROTOCOL, DK, b"hs-a")
    cb = b.open(PROTOCOL, DK, b"hs-b")  # both open at once: each pairs with the other's open
    seen_a, seen_b = _pump(a, b)
    assert seen_a == [ChannelOpened(ca, b"hs-b")] and seen_b == [ChannelOpened(cb, b"hs-a")]
    assert ca.opened and cb.opened and a.opened(PROTOCOL, DK)
    ca.send(Sync.TYPE, Sync(0, 4, 0).encode())
    cb.send(Want.TYPE, Want(0, 4).encode())
    seen_a, seen_b = _pump(a, b)
    assert seen_b == [MessageReceived(cb, 0, Sync(0, 4, 0).encode())]
    assert seen_a == [MessageReceived(ca, 5, Want(0, 4).encode())]
    a.close(ca)
    seen_a, seen_b = _pump(a, b)
    assert seen_b == [ChannelClosed(cb)] and cb.closed and a.is_idle() and b.is_idle()
    with pytest.raises(ValueError):
        ca.send(0, b"")
    a.close(ca)  # closing again does nothing
    assert a.data_to_send() == []


def test_offers_wait_for_an_answer_and_keep_their_messages():
    a, b = Mux(), Mux()
    b.pair(PROTOCOL, DK)
    ca = a.open(PROTOCOL, DK, b"hs")
    ca.send(Sync.TYPE, b"early")
    _, seen_b = _pump(a, b)
    assert seen_b == [OpenRequested(1, PROTOCOL, DK, b"hs")]
    assert b.buffered == 512 + 5 and not b.paused
    cb = b.open(PROTOCOL, DK, b"hs-b")  # accepting: the message that waited comes with the open
    assert b.events() == [ChannelOpened(cb, b"hs"), MessageReceived(cb, 0, b"early")] and b.buffered == 0
    # an id that was not paired is rejected at once
    other = a.open(PROTOCOL, b"\x07" * 32)
    seen_a, _ = _pump(a, b)
    assert ChannelClosed(other, rejected=True) in seen_a and other.closed
    # an explicit reject, and an offer withdrawn by a close before it was answered
    b.pair(PROTOCOL)
    x = a.open(PROTOCOL, b"\x08" * 32)
    y = a.open(PROTOCOL, b"\x09" * 32)
    y_number = y.local_id
    _, seen_b = _pump(a, b)
    offers = [e for e in seen_b if isinstance(e, OpenRequested)]
    assert [o.id for o in offers] == [b"\x08" * 32, b"\x09" * 32]
    b.reject(offers[0].remote_id)
    a.close(y)
    seen_a, seen_b = _pump(a, b)
    assert seen_a == [ChannelClosed(x, rejected=True)] and seen_b == [OpenWithdrawn(offers[1].remote_id)]
    b.reject(offers[1].remote_id)  # withdrawn (and rejected then, freeing y's number): nothing to do
    assert b.data_to_send() == []
    assert a.open(PROTOCOL, b"\x0a" * 32).local_id == y_number
    assert [c.id for c in a] == [DK, b"\x0a" * 32]  # the first channel and the last one are open


def test_numbers_are_reused_last_freed_first():
    a, b = Mux(), Mux()
    chans = [a.open(PROTOCOL, bytes([i]) * 32) for i in range(3)]
    for i in range(3):
        b.open(PROTOCOL, bytes([i]) * 32)
    _pump(a, b)
    a.close(chans[0])
    a.close(chans[2])
    _pump(a, b)
    assert [a.open(PROTOCOL, bytes([i]) * 32).local_id for i in (5, 6, 7)] == [3, 1, 4]


def test_batches_are_unpacked_and_sent_like_js():
    a, b = Mux(), Mux()
    ca = a.open(PROTOCOL, DK)
    cb = b.open(PROTOCOL, DK)
    _pump(a, b)
    with a.corked():
        with a.corked():  # nested corks send once, at the outer uncork
            ca.send(1, b"one")
        assert a.data_to_send() == [] and a.cork_depth == 1
        ca.send(2, b"two")
    out = a.data_to_send()
    assert out == [bytes([0, 0, 1, 4, 1]) + b"one" + bytes([4, 2]) + b"two"]
    assert b.receive(out[0]) == [BatchStarted(2), MessageReceived(cb, 1, b"one"),
                                 MessageReceived(cb, 2, b"two"), BatchEnded()]
    with pytest.raises(ValueError):
        a.uncork()
    # a batch is sent once it holds 8 MiB (JS's rule): four 3 MiB messages make two batches
    big = b"\x00" * (3 << 20)
    with a.corked():
        for _ in range(4):
            ca.send(3, big)
    out = a.data_to_send()
    assert len(out) == 2 and len(out[0]) > MAX_BATCH
    events = [e for m in out for e in b.receive(m)]
    assert sum(isinstance(e, MessageReceived) and len(e.body) == len(big) for e in events) == 4


def test_limits_and_protocol_errors():
    a = Mux(max_channels=2)
    a.pair(PROTOCOL)

    def open_msg(n: int, id: bytes = DK) -> bytes:
        m = Mux()
        for i in range(n):
            m.open("x", bytes([i]))
        m.data_to_send()
        m.open(PROTOCOL, id)
        return m.data_to_send()[0]

    a.receive(open_msg(0, b"\x01"))
    a.receive(open_msg(1, b"\x02"))
    with pytest.raises(DecodeError, match="^limit: "):
        a.receive(open_msg(2, b"\x03"))
    with pytest.raises(DecodeError):
        Mux().receive(open_msg(3))  # numbers grow by one
    m = Mux()
    m.pair(PROTOCOL)
    m.receive(open_msg(0, b"\x01"))
    with pytest.raises(DecodeError):
        m.receive(open_msg(0, b"\x02"))  # number 1 is in use
    with pytest.raises(DecodeError):
        Mux().receive(bytes([0, 1, 0, 0, 0]))  # an open of channel 0
    with pytest.raises(DecodeError):
        Mux().receive(bytes([0, 2, 5]))  # a reject of a channel never opened
    with pytest.raises(DecodeError):
        Mux().receive(bytes([0, 0, 0, 3, 0, 0, 0]))  # a batch inside a batch
    with pytest.raises(DecodeError):
        Mux().receive(bytes([0, 0, 1, 9, 1]))  # an entry past the end
    with pytest.raises(DecodeError, match="^limit: "):
        Mux(max_message_size=10).receive(bytes(11))
    assert Mux().receive(b"") == [] and Mux().receive(bytes([7, 1, 2])) == []  # ignored, as JS
    assert Mux().receive(bytes([0, 9, 1])) == []  # an unknown control type, ignored
    # bytes waiting for an offer not answered
    b = Mux(max_buffered=3000)
    b.pair(PROTOCOL)
    b.receive(open_msg(0))
    b.receive(bytes([1, 0]) + b"x" * 1000)
    with pytest.raises(DecodeError, match="^limit: "):
        b.receive(bytes([1, 0]) + b"x" * 2000)
    # local misuse
    c = Mux(max_channels=1, max_message_size=100)
    ch = c.open(PROTOCOL, DK)
    with pytest.raises(ValueError):
        c.open(PROTOCOL, b"\x05")
    with pytest.raises(ValueError):
        ch.send(0, b"x" * 200)
    d = Mux()
    d.open(PROTOCOL, DK)
    with pytest.raises(ValueError):
        d.open(PROTOCOL, DK)  # unique
    d.open(PROTOCOL, DK, unique=False)


def _traffic() -> list[bytes]:
    """A conversation's messages from one side: opens, messages, a batch, a reject, closes."""
    a, b = Mux(), Mux()
    b.pair(PROTOCOL)
    out: list[bytes] = []
    ca = a.open(PROTOCOL, DK, b"hs")
    out += a.data_to_send()
    b.receive(out[-1])
    b.open(PROTOCOL, DK, b"hs2")
    for m in b.data_to_send():
        a.receive(m)
    ca.send(0, Sync(0, 1, 0).encode())
    with a.corked():
        ca.send(3, Data(1, 0).encode())
        a.open("other", b"\x01")
        ca.send(8, Range(0, 1).encode())
    a.close(ca)
    out += a.data_to_send()
    out += [bytes([0, 2, 1]), bytes([0, 3, 1])]
    return out


TRAFFIC = _traffic()


def test_the_fuzzed_traffic_is_valid_as_it_is():
    mux = Mux()
    mux.pair(PROTOCOL)
    kinds = []
    for m in TRAFFIC[:-2]:
        for e in mux.receive(m):
            kinds.append(type(e).__name__)
            if isinstance(e, OpenRequested):
                mux.open(e.protocol, e.id)
                kinds += [type(e).__name__ for e in mux.events()]
    assert kinds == ["OpenRequested", "ChannelOpened", "MessageReceived", "BatchStarted", "MessageReceived",
                     "MessageReceived", "BatchEnded", "ChannelClosed"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mux_raises_only_decode_error_on_damaged_or_random_messages(data: st.DataObject):
    mux = Mux(max_channels=8, max_buffered=1 << 16)
    mux.pair(PROTOCOL)
    messages = [bytearray(m) for m in TRAFFIC]
    for m in messages:
        for _ in range(data.draw(st.integers(0, 2))):
            if m:
                m[data.draw(st.integers(0, len(m) - 1))] = data.draw(st.integers(0, 255))
    messages += [bytearray(data.draw(st.binary(max_size=40))) for _ in range(data.draw(st.integers(0, 3)))]
    try:
        for m in messages:
            for event in mux.receive(bytes(m)):
                if isinstance(event, OpenRequested) and data.draw(st.booleans()):
                    mux.open(event.protocol, event.id, b"", unique=False)
                    mux.events()
                elif isinstance(event, OpenRequested):
                    mux.reject(event.remote_id)
    except DecodeError:
        pass
    assert sum(1 for _ in mux) <= 8 * 2
    assert mux.buffered <= 1 << 16


def test_channel_is_the_events_channel():
    a, b = Mux(), Mux()
    ca = a.open(PROTOCOL, DK)
    b.open(PROTOCOL, DK)
    seen_a, _ = _pump(a, b)
    assert isinstance(seen_a[0], ChannelOpened) and seen_a[0].channel is ca
    assert isinstance(ca, Channel) and ca.remote_id == 1 and ca.local_id == 1
