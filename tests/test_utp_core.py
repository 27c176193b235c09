"""The sans-IO uTP core on a simulated network: the codec, the handshake, sequence numbers across their
wrap, loss recovery (selective acks, duplicate acks, timeouts), RESET, windows and backpressure,
keep-alives and timeouts, LEDBAT, and the limits against abuse. Fuzzing is in test_utp_fuzz.py."""

from __future__ import annotations

import hashlib
import random

import pytest

from hypernode.utp.congestion import MIN_WINDOW_SIZE, DelayHistory, Ledbat, wrapping_less
from hypernode.utp.connection import (
    Accepted,
    Closed,
    Connected,
    DataReceived,
    EndOfStream,
    State,
    UTPConfig,
    UTPConnectionRefused,
    UTPConnectionReset,
    UTPLimitError,
    UTPTimeout,
)
from hypernode.utp.endpoint import UTPEndpoint
from hypernode.utp.packet import (
    HEADER,
    ST_DATA,
    ST_FIN,
    ST_RESET,
    ST_STATE,
    ST_SYN,
    Packet,
    PacketError,
    decode,
    encode,
    is_utp,
)
from tests.utp_net import A, B, Net


def blob(n: int, seed: str = "x") -> bytes:
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


# -- the codec ---------------------------------------------------------------------------------------


def test_header_layout_is_bep29():
    p = Packet(ST_DATA, 0x1234, seq_nr=0xBEEF, ack_nr=0x0102, timestamp=0x01020304, timestamp_diff=0x05060708,
               window=0x090A0B0C, payload=b"hi")
    raw = encode(p)
    assert raw == bytes.fromhex("01 00 1234 01020304 05060708 090a0b0c beef 0102") + b"hi"
    assert decode(raw) == p


def test_selective_ack_and_extension_bits_round_trip():
    p = Packet(ST_STATE, 7, seq_nr=1, ack_nr=2, sack=b"\x05\x00\x00\x80", extensions=((2, b"\x00" * 8),))
    raw = encode(p)
    # type 1 first (the header's ext byte), then the bits extension, then nothing
    assert raw[1] == 1 and raw[20:22] == bytes((2, 4)) and raw[26:28] == bytes((0, 8))
    assert decode(raw) == p


@pytest.mark.parametrize("raw, why", [
    (b"\x41" + bytes(18), "shorter"),
    (bytes([0x42, 0]) + bytes(18), "version 2"),
    (bytes([0x51, 0]) + bytes(18), "type 5"),
    (bytes([0x21, 1]) + bytes(18), "extension header past the end"),
    (bytes([0x21, 1]) + bytes(18) + bytes((0, 4, 1)), "extension 1 of 4 bytes"),
    (bytes([0x21, 2]) + bytes(18) + bytes((0, 4)) + bytes(4), "extension bits of 4"),
    (bytes([0x21, 1]) + bytes(18) + bytes((1, 4)) + bytes(4) + bytes((0, 4)) + bytes(4), "two selective"),
])
def test_invalid_packets_raise_packet_error(raw, why):
    with pytest.raises(PacketError):
        decode(raw)


def test_is_utp_is_libutps_test():
    assert is_utp(encode(Packet(ST_SYN, 1)))
    assert not is_utp(b"\x41" * 19)  # too short
    assert not is_utp(bytes([0x08, 0x01]) + bytes(30))  # a protobuf message (dht-rpc starts with 0x08..)
    assert not is_utp(bytes([0x51, 0]) + bytes(18))  # type 5
    assert not is_utp(bytes([0x01, 3]) + bytes(18))  # first extension 3
    assert is_utp(bytes([0x01, 0]) + bytes(18))


def test_wrapping_compare():
    assert wrapping_less(0xFFFF, 0, 0xFFFF) and not wrapping_less(0, 0xFFFF, 0xFFFF)
    assert wrapping_less(10, 20, 0xFFFF) and not wrapping_less(20, 10, 0xFFFF)


# -- the handshake -----------------------------------------------------------------------------------


def test_handshake_ids_and_sequence_numbers():
    net = Net()
    c, s = net.connect()
    syn = net.sent[0][1]
    synack = net.sent[1][1]
    assert syn.type == ST_SYN and syn.connection_id == c.recv_id and c.send_id == (c.recv_id + 1) & 0xFFFF
    assert s.recv_id == (syn.connection_id + 1) & 0xFFFF and s.send_id == syn.connection_id
    assert synack.type == ST_STATE and synack.connection_id == s.send_id and synack.ack_nr == syn.seq_nr
    # the SYN-ACK takes no sequence number: the acceptor's first data packet carries it
    assert synack.seq_nr == s.seq_nr and c.ack_nr == (synack.seq_nr - 1) & 0xFFFF
    assert c.state is State.CONNECTED and any(isinstance(e, Connected) for e in net.events["a"])
    # the acceptor is connected only once the initiator's first data packet arrives; until then its
    # writes wait (libutp would send nothing either)
    assert s.state is State.SYN_RECV
    assert s.write(b"early", net.us) == 5
    net.pump()
    assert not [p for d, p in net.sent if d == "ba" and p.type == ST_DATA]
    c.write(b"hello", net.us)
    net.pump()
    assert s.state is State.CONNECTED and s.read() == b"hello" and c.read() == b"early"
    first = [p for d, p in net.sent if d == "ba" and p.type == ST_DATA][0]
    assert first.seq_nr == synack.seq_nr


def test_lost_syn_and_lost_syn_ack_are_recovered():
    net = Net(UTPConfig(connect_timeout=0.5))
    dropped = {"syn": 0, "synack": 0}

    def drop(p: Packet, direction: str) -> bool:
        if p.type == ST_SYN and dropped["syn"] == 0:
            dropped["syn"] += 1
            return True
        if direction == "ba" and p.type == ST_STATE and dropped["synack"] == 0:
            dropped["synack"] += 1
            return True
        return False

    net.drop = drop
    c = net.a.connect(B, net.now)
    net.advance(3.0)
    assert c.state is State.CONNECTED
    syns = [p for d, p in net.sent if p.type == ST_SYN]
    assert len(syns) == 3  # the first lost, the second's answer lost, the third answered (again)
    assert net.b.stats["duplicate_syn"] == 1


def test_syn_unanswered_times_out_after_libutps_three_tries():
    net = Net()
    net.drop = lambda p, d: True
    c = net.a.connect(B, net.now)
    net.advance(20.9, step=0.1)
    assert c.state is State.SYN_SENT
    net.advance(0.3, step=0.1)  # SYN at 0, 3 and 9 s; given up at 21 s
    assert c.state is State.CLOSED
    closed = [e for e in net.events["a"] if isinstance(e, Closed)]
    assert isinstance(closed[0].error, UTPTimeout)
    assert len([p for _, p in net.sent if p.type == ST_SYN]) == 3
    assert not net.a.connections


def test_syn_to_a_socket_not_accepting_is_dropped_silently():
    net = Net()
    net.b.accepting = False
    c = net.a.connect(B, net.now)
    net.pump()
    assert c.state is State.SYN_SENT and not net.b.connections
    assert [d for d, _ in net.sent] == ["ab"] and net.b.stats["syn_refused"] == 1


# -- data ----------------------------------------------------------------------------------------------


def test_transfer_both_ways_with_fin():
    net = Net()
    c, s = net.connect()
    up, down = blob(300_000, "up"), blob(200_000, "down")
    assert net.transfer(c, s, up) == up
    assert net.transfer(s, c, down) == down
    assert any(isinstance(e, EndOfStream) for e in net.events["a"])
    sizes = {len(p.payload) for d, p in net.sent if p.type == ST_DATA}
    assert max(sizes) == 1402 - 20  # libutp's packet: its MTU guess less the header


@pytest.mark.parametrize("start", [0xFFF0, 0xFFFF, 0xFF80])
def test_sequence_numbers_wrap(start):
    class Fixed(random.Random):
        def getrandbits(self, k: int) -> int:  # the initial sequence numbers
            return start & ((1 << k) - 1)

        def randrange(self, *args: object, **kw: object) -> int:  # the connection id
            return 7

    net = Net(rng_a=Fixed(1), rng_b=Fixed(2))
    c, s = net.connect()
    data = blob(200 * 1382, f"wrap{start}")
    assert net.transfer(c, s, data) == data
    assert net.transfer(s, c, data[::-1]) == data[::-1]
    for direction in ("ab", "ba"):  # each side's numbers crossed the wrap
        seqs = {p.seq_nr for d, p in net.sent if d == direction and p.type in (ST_SYN, ST_DATA, ST_FIN)}
        assert 0xFFFF in seqs and 0 in seqs


def test_selective_ack_recovers_a_lost_packet_without_timeout():
    net = Net()
    c, s = net.connect()
    lost: list[int] = []

    def drop(p: Packet, direction: str) -> bool:
        if direction == "ab" and p.type == ST_DATA and not lost and len(p.payload) == 1382 \
                and len([1 for d, q in net.sent if d == "ab" and q.type == ST_DATA]) == 6:
            lost.append(p.seq_nr)
            return True
        return False

    net.drop = drop
    # grow the window first so that several packets fly at once
    data = blob(2_000_000, "sack")
    assert net.transfer(c, s, data) == data
    assert lost
    sacks = [p for d, p in net.sent if d == "ba" and p.sack is not None]
    assert sacks, "the receiver acked the packets after the hole selectively"
    assert c.stats["fast_retransmits"] >= 1 and c.stats["timeouts"] == 0


def test_a_lost_retransmission_is_sent_again_without_waiting_for_the_timeout():
    net = Net()
    c, s = net.connect()
    target: list[int] = []
    seen = {"n": 0}

    def drop(p: Packet, direction: str) -> bool:
        if direction != "ab" or p.type != ST_DATA:
            return False
        seen["n"] += 1
        if not target and seen["n"] == 400:  # once the window is wide
            target.append(p.seq_nr)
        if target and p.seq_nr == target[0] and len([1 for d, q in net.sent if d == "ab"
                                                     and q.type == ST_DATA and q.seq_nr == target[0]]) <= 2:
            return True  # the packet and its first retransmission are lost
        return False

    net.drop = drop
    data = blob(3_000_000, "rack")
    assert net.transfer(c, s, data, chunk=1 << 20) == data
    assert target and len([1 for d, q in net.sent if d == "ab" and q.seq_nr == target[0]
                           and q.type == ST_DATA]) == 3
    assert c.stats["timeouts"] == 0  # libutp would wait for its timeout here
    # the receiver reported packets past the 32 a libutp selective ack covers
    assert max(len(p.sack) for d, p in net.sent if d == "ba" and p.sack is not None) > 4


def test_random_loss_both_ways():
    net = Net(seed=3)
    c, s = net.connect()
    net.loss = 0.05
    data = blob(500_000, "loss")
    assert net.transfer(c, s, data) == data
    assert net.transfer(s, c, data) == data


@pytest.mark.parametrize("min_rto, gaps_expected, count", [
    (0.25, [0.25, 0.5, 1, 2, 4, 8], 6),  # ours
    (1.0, [1, 2, 4, 8], 4),  # libutp's: four resends, dead at the fifth expiry (31 s)
])
def test_retransmission_timeout_doubles_then_the_connection_dies(min_rto, gaps_expected, count):
    net = Net(UTPConfig(min_rto=min_rto))
    c, s = net.connect()
    c.write(b"x", net.us)
    net.pump()
    net.drop = lambda p, d: True
    c.write(b"y" * 5000, net.us)
    times = []
    seen = len(net.sent)
    for _ in range(4000):
        net.advance(0.05, step=0.05)
        new = [p for d, p in net.sent[seen:] if d == "ab" and p.type == ST_DATA]
        seen = len(net.sent)
        if new:
            times.append(net.now)
        if c.closed:
            break
    assert c.closed
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # the timeout (its least, 0.25 s, on this fast path) doubles at each expiry; after the fourth, the
    # first that finds no progress for 30 s ends the connection (libutp: 1 + 2 + 4 + 8 + 16 s)
    assert gaps == pytest.approx(gaps_expected, abs=0.06), gaps
    assert net.now - times[-1] == pytest.approx(16, abs=0.06)
    assert c.retransmit_count == count
    closed = [e for e in net.events["a"] if isinstance(e, Closed)]
    assert isinstance(closed[-1].error, UTPTimeout)


def test_duplicate_acks_resend_the_oldest_packet():
    net = Net()
    c, s = net.connect()
    c.write(b"a" * 1382 * 3, net.us)  # three packets in flight
    out = net.a.datagrams()
    assert len(out) == 1 or len(out) == 3
    net.a._out.extend(out)
    # three bare acks of the packet before the oldest: the oldest is taken for lost
    oldest = (c.seq_nr - c.cur_window_packets) & 0xFFFF
    before = c.stats["fast_retransmits"]
    for _ in range(3):
        dup = Packet(ST_STATE, c.recv_id, seq_nr=s.seq_nr, ack_nr=(oldest - 1) & 0xFFFF, window=1 << 20)
        net.a.receive(encode(dup), B, net.now)
    assert c.stats["fast_retransmits"] == before + 1
    resent = [decode(d) for d, _ in net.a.datagrams()]
    assert any(p.seq_nr == oldest and p.type == ST_DATA for p in resent)


# -- closing -----------------------------------------------------------------------------------------


def test_close_after_both_fins_leaves_no_reset():
    net = Net()
    c, s = net.connect()
    assert net.transfer(c, s, b"hello") == b"hello"
    s.close(net.us)
    net.pump()
    c.close(net.us)
    net.advance(3.0)
    assert c.closed and s.closed and not net.a.connections and not net.b.connections
    assert not [p for _, p in net.sent if p.type == ST_RESET]
    for side in "ab":
        assert all(e.error is None for e in net.events[side] if isinstance(e, Closed))


def test_packet_for_an_unknown_connection_gets_one_reset():
    net = Net()
    stray = encode(Packet(ST_DATA, 999, seq_nr=5, ack_nr=1, payload=b"?"))
    net.b.receive(stray, A, net.now)
    net.b.receive(stray, A, net.now)  # the same packet again: no second reset (libutp's rst_info)
    out = [decode(d) for d, _ in net.b.datagrams()]
    assert len(out) == 1 and out[0].type == ST_RESET and out[0].connection_id == 999 and out[0].ack_nr == 5


def test_reset_ends_the_connection_with_an_error():
    net = Net()
    c, s = net.connect()
    s.abort(net.us)
    net.pump()
    closed = [e for e in net.events["a"] if isinstance(e, Closed)]
    assert c.closed and isinstance(closed[0].error, UTPConnectionReset)


def test_reset_answering_a_syn_is_refused():
    net = Net()
    c = net.a.connect(B, net.now)
    syn = decode(net.a.datagrams()[0][0])
    rst = Packet(ST_RESET, syn.connection_id, seq_nr=1, ack_nr=syn.seq_nr)
    net.a.receive(encode(rst), B, net.now)
    closed = [e for e in net.a.events() if isinstance(e, Closed)]
    assert c.closed and isinstance(closed[0].error, UTPConnectionRefused)


def test_reset_from_another_address_is_ignored():
    net = Net()
    c, s = net.connect()
    rst = Packet(ST_RESET, c.recv_id, seq_nr=1, ack_nr=c.ack_nr)
    net.a.receive(encode(rst), ("10.9.9.9", 5000), net.now)
    assert c.state is State.CONNECTED


# -- windows and backpressure ------------------------------------------------------------------------


def test_receiver_that_does_not_read_stops_the_sender():
    cfg = UTPConfig(receive_buffer=64 * 1024)
    net = Net(b=cfg)
    c, s = net.connect()
    data = blob(400_000, "bp")
    off = 0
    for _ in range(400):
        off += c.write(data[off:off + 65536], net.us)
        net.advance(0.02, step=0.02)
    assert len(s.recv_buf) <= cfg.receive_buffer + cfg.receive_slack
    assert s.recv_buf and off < len(data)  # the sender waits: its queue is full
    last_ack = [p for d, p in net.sent if d == "ba" and p.type == ST_STATE][-1]
    assert last_ack.window < 1382
    # reading opens the window at once and the rest flows
    got = bytearray(s.read(None, net.us))
    c_remaining = data[off:]
    while off < len(data) or len(got) < len(data):
        off += c.write(data[off:off + 65536], net.us)
        net.advance(0.01, step=0.01)
        got += s.read(None, net.us)
    assert bytes(got) == data
    del c_remaining


def test_sender_ignoring_our_window_cannot_grow_our_buffers():
    cfg = UTPConfig(receive_buffer=32 * 1024, receive_slack=4096)
    net = Net(b=cfg)
    c, s = net.connect()
    c.write(b"go", net.us)
    net.pump()
    seq = (c.seq_nr) & 0xFFFF
    # in order past the buffer, and far ahead out of order: both bounded
    for i in range(200):
        p = Packet(ST_DATA, s.recv_id, seq_nr=(seq + i) & 0xFFFF, ack_nr=(s.seq_nr - 1) & 0xFFFF,
                   payload=b"z" * 1000)
        net.b.receive(encode(p), A, net.now)
        q = Packet(ST_DATA, s.recv_id, seq_nr=(seq + 500 + i) & 0xFFFF, ack_nr=(s.seq_nr - 1) & 0xFFFF,
                   payload=b"w" * 1000)
        net.b.receive(encode(q), A, net.now)
    assert len(s.recv_buf) <= cfg.receive_buffer + cfg.receive_slack + 2  # "go" read? not yet: + 2
    assert s.reorder_bytes <= cfg.receive_buffer
    assert s.stats["dropped_full"] > 0


def test_zero_window_is_probed_after_15_seconds():
    net = Net()
    c, s = net.connect()
    c.write(b"a", net.us)
    net.pump()
    zero = Packet(ST_STATE, c.recv_id, seq_nr=s.seq_nr, ack_nr=(c.seq_nr - 1) & 0xFFFF, window=0)
    net.a.receive(encode(zero), B, net.now)
    c.write(b"b" * 5000, net.us)
    sent_before = len([1 for d, p in net.sent if d == "ab" and p.type == ST_DATA])
    net.drop = lambda p, d: d == "ba"  # their acks are lost, so the window stays 0 for us
    net.advance(14.0, step=0.5)
    assert len([1 for d, p in net.sent if d == "ab" and p.type == ST_DATA]) == sent_before
    net.advance(1.5, step=0.5)
    assert len([1 for d, p in net.sent if d == "ab" and p.type == ST_DATA]) > sent_before


# -- time --------------------------------------------------------------------------------------------


def test_keepalive_acks_the_packet_before_the_last():
    net = Net(UTPConfig(idle_timeout=None), UTPConfig(idle_timeout=None))
    c, s = net.connect()
    c.write(b"x", net.us)
    net.pump()
    n = len(net.sent)
    net.advance(30.0, step=1.0)
    keepalives = [p for d, p in net.sent[n:] if d == "ab" and p.type == ST_STATE]
    assert keepalives and keepalives[0].ack_nr == (c.ack_nr - 1) & 0xFFFF
    assert c.state is State.CONNECTED and s.state is State.CONNECTED


def test_silent_remote_times_out():
    net = Net(UTPConfig(idle_timeout=5.0))
    c, s = net.connect()
    c.write(b"x", net.us)
    net.pump()
    net.drop = lambda p, d: d == "ba"
    net.advance(6.0, step=0.5)
    assert c.closed
    assert isinstance([e for e in net.events["a"] if isinstance(e, Closed)][0].error, UTPTimeout)


def test_half_open_connection_is_dropped():
    net = Net(b=UTPConfig(handshake_timeout=2.0))
    net.a.connect(B, net.now)
    net.drop = lambda p, d: d == "ab" and p.type != ST_SYN  # their data never comes
    net.pump()
    assert len(net.b.connections) == 1 and net.b._half_open == 1
    net.advance(2.5, step=0.1)
    assert not net.b.connections and net.b._half_open == 0


# -- LEDBAT ------------------------------------------------------------------------------------------


def test_ledbat_grows_below_target_and_shrinks_above():
    lb = Ledbat(1382, 1 << 20, now_ms=0)
    lb.slow_start = False
    lb.max_window = 100_000
    for i in range(50):  # base delay 1 ms, no queuing
        lb.ours.add_sample(1000, i)
        lb.last_maxed_out_window = i
        lb.on_ack(10_000, 50_000, i)
    grown = lb.max_window
    assert grown > 100_000
    for i in range(50, 100):  # 300 ms of queuing delay: three times the target
        lb.ours.add_sample(301_000, i)
        lb.last_maxed_out_window = i
        lb.on_ack(10_000, 1_000_000, i)
    assert lb.max_window < grown


def test_ledbat_loss_halves_at_most_every_100_ms_and_timeout_restarts():
    lb = Ledbat(1382, 1 << 20, now_ms=1000)
    lb.max_window = 80_000
    lb.on_loss(1000)
    assert lb.max_window == 40_000 and not lb.slow_start
    lb.on_loss(1050)
    assert lb.max_window == 40_000
    lb.on_loss(1100)
    assert lb.max_window == 20_000
    lb.on_timeout(idle=False)
    assert lb.max_window == 1382 and lb.slow_start
    lb.max_window = 9000
    lb.on_timeout(idle=True)
    assert lb.max_window == 6000
    lb.max_window = MIN_WINDOW_SIZE
    lb.on_loss(5000)
    assert lb.max_window == MIN_WINDOW_SIZE


def test_delay_history_removes_the_clock_offset():
    h = DelayHistory(0)
    for i, sample in enumerate([5_000_000, 5_000_300, 5_000_100, 5_000_050]):
        h.add_sample(sample, i)
    assert h.base == 5_000_000 and h.value() == 50
    h2 = DelayHistory(0)
    h2.add_sample(0xFFFFFF00, 0)  # the clocks wrap: 0x100 after it is 0x200 later
    h2.add_sample(0x00000100, 1)
    h2.add_sample(0x00000100, 2)
    h2.add_sample(0x00000100, 3)
    assert h2.base == 0xFFFFFF00 and h2.value() == 0x200


def test_window_grows_from_one_packet_on_a_fast_path():
    net = Net()
    c, s = net.connect()
    assert c.cc.max_window == 1382
    data = blob(3_000_000, "ss")
    assert net.transfer(c, s, data, chunk=1 << 20) == data  # the window, not the writer, limits
    # (one ack per round trip here, and libutp's slow start adds a packet per ack)
    assert c.cc.max_window > 50 * 1382


# -- limits ------------------------------------------------------------------------------------------


def test_syn_flood_is_bounded():
    cfg = UTPConfig(max_half_open=20, max_connections=50, max_connections_per_address=10)
    ep = UTPEndpoint(cfg, rng=random.Random(0))
    ep.accepting = True
    now = 1.0
    for i in range(500):  # spoofed SYNs from many addresses and ports
        syn = Packet(ST_SYN, i, seq_nr=i)
        ep.receive(encode(syn), (f"10.1.{i % 50}.{i % 7}", 1000 + i), now)
    assert len(ep.connections) == 20 and ep._half_open == 20
    assert ep.stats["syn_over_limit"] == 480
    assert len(ep.datagrams()) == 20  # one SYN-ACK each; nothing for the dropped ones
    # from one address: its own cap first
    ep2 = UTPEndpoint(cfg, rng=random.Random(0))
    ep2.accepting = True
    for i in range(30):
        ep2.receive(encode(Packet(ST_SYN, i, seq_nr=i)), ("10.2.0.1", 2000 + i), now)
    assert len(ep2.connections) == 10
    # half-open ones expire, and the room is back
    ep.tick(now + cfg.handshake_timeout + 1)
    assert not ep.connections and ep._half_open == 0


def test_connect_limits():
    cfg = UTPConfig(max_connections=3, max_connections_per_address=2)
    ep = UTPEndpoint(cfg, rng=random.Random(0))
    ep.connect(("10.0.0.9", 1), 1.0)
    ep.connect(("10.0.0.9", 2), 1.0)
    with pytest.raises(UTPLimitError):
        ep.connect(("10.0.0.9", 3), 1.0)
    ep.connect(("10.0.0.8", 1), 1.0)
    with pytest.raises(UTPLimitError):
        ep.connect(("10.0.0.7", 1), 1.0)


def test_reset_memory_is_bounded():
    cfg = UTPConfig(reset_memory=100)
    ep = UTPEndpoint(cfg, rng=random.Random(0))
    for i in range(1000):
        ep.receive(encode(Packet(ST_DATA, i, seq_nr=i)), ("10.3.0.1", 1000 + i), 1.0)
    assert len(ep._resets) == 100 and ep.stats["resets_sent"] == 100
    assert ep.stats["resets_suppressed"] == 900
    ep.tick(12.0)
    assert not ep._resets


def test_malformed_utp_is_dropped_and_counted_other_datagrams_are_not_ours():
    ep = UTPEndpoint(rng=random.Random(0))
    bad = bytes([0x21, 1]) + bytes(18) + bytes((0, 200))
    assert ep.receive(bad, A, 1.0) is True and ep.stats["malformed"] == 1
    assert ep.receive(b"\x08\x01dht message", A, 1.0) is False
    assert not ep.datagrams()


def test_send_queue_is_bounded():
    cfg = UTPConfig(send_queue=10_000)
    net = Net(cfg)
    c, s = net.connect()
    net.drop = lambda p, d: True
    total = 0
    for _ in range(100):
        total += c.write(b"q" * 4096, net.us)
    assert len(c.send_queue) <= cfg.send_queue
    assert c.unsent <= cfg.send_queue + cfg.send_window


def test_header_is_twenty_bytes():
    assert HEADER.size == 20


def test_data_received_is_announced_once_until_read():
    net = Net()
    c, s = net.connect()
    for _ in range(5):
        c.write(b"m" * 100, net.us)
        net.pump()
    announced = [e for e in net.events["b"] if isinstance(e, DataReceived)]
    assert len(announced) == 1
    assert s.read() == b"m" * 500
    c.write(b"n", net.us)
    net.pump()
    assert len([e for e in net.events["b"] if isinstance(e, DataReceived)]) == 2
    assert [type(e) for e in net.events["b"]][:1] == [Accepted]


def test_fin_with_data_after_it_is_ignored():
    net = Net()
    c, s = net.connect()
    c.write(b"abc", net.us)
    c.shutdown(net.us)
    net.pump()
    assert s.read() == b"abc" and s.eof
    late = Packet(ST_DATA, s.recv_id, seq_nr=(s.ack_nr + 1) & 0xFFFF, ack_nr=(s.seq_nr - 1) & 0xFFFF,
                  payload=b"late")
    net.b.receive(encode(late), A, net.now)
    assert s.read() == b"" and s.eof
    fin_again = [p for d, p in net.sent if p.type == ST_FIN]
    assert len(fin_again) == 1
