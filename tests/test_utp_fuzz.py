"""Fuzzing the uTP core with hypothesis: the decoder on arbitrary bytes, and random packets (some aimed
at the connection, with numbers near its own, some not), time and application calls against a
connection in each state. Nothing but :class:`PacketError` may come out of the decoder, nothing at all
out of the endpoint, and the buffers stay within their limits."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypernode.utp.connection import (
    OUTGOING_BUFFER_MAX_SIZE,
    REORDER_BUFFER_MAX_SIZE,
    UTPConfig,
    UTPConnection,
)
from hypernode.utp.endpoint import UTPEndpoint
from hypernode.utp.packet import Packet, PacketError, decode, encode, is_utp
from tests.utp_net import B, Net

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MACHINE = settings(FUZZ, max_examples=60)
CONFIG = UTPConfig(receive_buffer=64 * 1024, receive_slack=8 * 1024, send_queue=32 * 1024, max_connections=16,
                   max_connections_per_address=8, max_half_open=4)


@FUZZ
@given(st.binary(max_size=200))
def test_decoder_raises_only_packet_error(raw):
    try:
        p = decode(raw)
    except PacketError:
        return
    assert is_utp(raw) or raw[0] & 0x0F == 1
    assert decode(encode(p)) == p


@FUZZ
@given(st.binary(min_size=20, max_size=120).map(lambda b: bytes([(b[0] & 0x40) | 0x01, b[1] % 4]) + b[2:]))
def test_decoder_on_headers_that_look_like_utp(raw):
    try:
        p = decode(raw)
    except PacketError:
        return
    assert encode(p)[:20] == raw[:20] or raw[1] != 0  # an unchanged header when no extension moved


@FUZZ
@given(st.lists(st.tuples(st.binary(max_size=80), st.integers(0, 3)), max_size=40))
def test_endpoint_takes_any_datagram(datagrams):
    ep = UTPEndpoint(CONFIG, rng=random.Random(0))
    ep.accepting = True
    for data, who in datagrams:
        ep.receive(data, (f"10.0.0.{who}", 1000 + who), 1.0)
        ep.tick(2.0)
    assert len(ep.connections) <= CONFIG.max_half_open


def _states() -> dict[str, Callable[[Net], UTPConnection]]:
    def syn_sent(net: Net) -> UTPConnection:
        return net.a.connect(B, net.now)

    def syn_recv(net: Net) -> UTPConnection:
        net.a.connect(B, net.now)
        net.pump()
        return next(iter(net.b.connections.values()))

    def connected(net: Net) -> UTPConnection:
        c, s = net.connect()
        c.write(b"hi", net.us)
        net.pump()
        return s

    def in_flight(net: Net) -> UTPConnection:
        c, s = net.connect()
        c.write(b"x" * 20_000, net.us)
        net.pump()
        net.drop = lambda p, d: True
        c.write(b"y" * 20_000, net.us)
        net.pump()
        return c

    def fin_sent(net: Net) -> UTPConnection:
        c, s = net.connect()
        c.write(b"bye", net.us)
        c.shutdown(net.us)
        net.pump()
        return c

    def fin_received(net: Net) -> UTPConnection:
        c, s = net.connect()
        c.write(b"bye", net.us)
        c.shutdown(net.us)
        net.pump()
        return s

    def closing(net: Net) -> UTPConnection:
        c, s = net.connect()
        c.write(b"a" * 5000, net.us)
        net.drop = lambda p, d: True
        c.close(net.us)
        net.pump()
        return c

    states = (syn_sent, syn_recv, connected, in_flight, fin_sent, fin_received, closing)
    return {f.__name__: f for f in states}


STATES = _states()

packet_spec = st.fixed_dictionaries({
    "type": st.integers(0, 4),
    "id": st.sampled_from(["recv", "send", "random"]),
    "rand_id": st.integers(0, 0xFFFF),
    "seq": st.one_of(st.integers(-40, 1100), st.integers(0, 0xFFFF).map(lambda x: ("abs", x))),
    "ack": st.one_of(st.integers(-40, 40), st.integers(0, 0xFFFF).map(lambda x: ("abs", x))),
    "window": st.one_of(st.just(0), st.integers(0, 0xFFFFFFFF)),
    "ts": st.integers(0, 0xFFFFFFFF),
    "ts_diff": st.one_of(st.just(0), st.integers(0, 0xFFFFFFFF)),
    "sack": st.one_of(st.none(), st.binary(min_size=1, max_size=8)),
    "payload": st.one_of(st.just(0), st.integers(0, 1500)),
    "from": st.sampled_from(["peer", "peer", "other"]),
})
action = st.one_of(
    packet_spec.map(lambda p: ("packet", p)),
    st.floats(0, 40).map(lambda t: ("time", t)),
    st.integers(0, 70_000).map(lambda n: ("write", n)),
    st.sampled_from([("read", 0), ("shutdown", 0), ("close", 0), ("abort", 0)]),
)


def _num(spec: int | tuple[str, int], base: int) -> int:
    if isinstance(spec, tuple):
        return spec[1]
    return (base + spec) & 0xFFFF


def _check(net: Net, conn: UTPConnection) -> None:
    cfg = conn.config
    assert len(conn.outbuf) <= OUTGOING_BUFFER_MAX_SIZE
    assert 0 <= conn.cur_window_packets <= OUTGOING_BUFFER_MAX_SIZE
    assert len(conn.reorder) < REORDER_BUFFER_MAX_SIZE
    assert 0 <= conn.reorder_bytes <= cfg.receive_buffer
    assert len(conn.recv_buf) <= cfg.receive_buffer + cfg.receive_slack
    assert len(conn.send_queue) <= cfg.send_queue
    assert conn.cur_window >= 0
    assert conn.cur_window <= sum(len(p.payload) for p in conn.outbuf.values())
    for ep in (net.a, net.b):
        assert len(ep.connections) <= cfg.max_connections
        assert len(ep._resets) <= cfg.reset_memory


def _fuzz(state: str, actions: list[tuple[str, object]]) -> None:
    net = Net(CONFIG, CONFIG, seed=7)
    conn = STATES[state](net)
    ep = conn.endpoint
    peer_addr = conn.address
    net.drop = lambda p, d: True  # from here on, only the fuzzer's packets reach the connection
    for kind, arg in actions:
        if kind == "packet":
            assert isinstance(arg, dict)
            cid = {"recv": conn.recv_id, "send": conn.send_id, "random": arg["rand_id"]}[arg["id"]]
            p = Packet(arg["type"], cid, seq_nr=_num(arg["seq"], conn.ack_nr),
                       ack_nr=_num(arg["ack"], conn.seq_nr), timestamp=arg["ts"],
                       timestamp_diff=arg["ts_diff"], window=arg["window"], sack=arg["sack"],
                       payload=b"p" * arg["payload"])
            src = peer_addr if arg["from"] == "peer" else ("10.9.9.9", 9)
            assert ep.receive(encode(p), src, net.now) is True
            ep.issue_deferred_acks(net.now)
        elif kind == "time":
            assert isinstance(arg, float)
            net.now += arg
            ep.tick(net.now)
        elif kind == "write":
            assert isinstance(arg, int)
            if not conn.closed and not conn.fin_requested:
                conn.write(b"w" * arg, net.us)
        elif kind == "read":
            conn.read(None, net.us)
        elif kind == "shutdown":
            conn.shutdown(net.us)
        elif kind == "close":
            conn.close(net.us)
        elif kind == "abort":
            conn.abort(net.us)
        ep.datagrams()
        ep.events()
        _check(net, conn)


for _name in STATES:
    def _make(name: str) -> Callable[..., None]:
        @MACHINE
        @given(st.lists(action, max_size=30))
        def test(actions: list[tuple[str, object]]) -> None:
            _fuzz(name, actions)
        test.__name__ = f"test_state_machine_fuzz_{name}"
        return test

    globals()[f"test_state_machine_fuzz_{_name}"] = _make(_name)


def test_atheris_utp_harness_runs_for_a_bounded_time(tmp_path):
    """tests/fuzz/fuzz_utp.py under atheris (coverage-guided) for HYPERNODE_ATHERIS_SECONDS (4 s here):
    an exception from the endpoint, or a buffer past its limit, is a crash that fails this test."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[test]')")
    seconds = max(1, int(os.environ.get("HYPERNODE_ATHERIS_SECONDS", "8")) // 2)
    corpus = tmp_path / "corpus"
    harness = Path(__file__).resolve().parent / "fuzz" / "fuzz_utp.py"
    subprocess.run([sys.executable, str(harness), "--seeds", str(corpus)], check=True, timeout=60)
    proc = subprocess.run([sys.executable, str(harness), f"-max_total_time={seconds}", "-max_len=4096",
                           "-rss_limit_mb=2048", str(corpus)], capture_output=True, text=True,
                          timeout=seconds + 120, cwd=tmp_path)
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    assert [line for line in proc.stderr.splitlines() if "Done" in line and "runs" in line], tail
