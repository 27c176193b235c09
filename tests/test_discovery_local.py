"""Local-network discovery: the multicast-DNS codec (records, name compression, malformed packets,
fuzzing), bad input to :class:`LocalDiscovery`, and real multicast between peers inside a network
namespace of their own (``unshare -n``, loopback given multicast there: the machine's own loopback has
no MULTICAST flag, and no packet may leave loopback), run by tests/tools/mdns_netns.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.discovery.local import (
    AUTHORITATIVE,
    RESPONSE_FLAG,
    SRV,
    TXT,
    A,
    LocalDiscovery,
    MDNSError,
    MDNSPacket,
    Record,
    topic_name,
)

SCRIPT = Path(__file__).resolve().parent / "tools" / "mdns_netns.py"


def test_packets_round_trip():
    topic = bytes(range(32))
    name = topic_name(topic)
    assert name == topic[:20].hex() + ".hyperswarm.local"
    query = MDNSPacket(questions=[(name, SRV)])
    assert MDNSPacket.decode(query.encode()) == query and not query.is_response
    answer = MDNSPacket(flags=RESPONSE_FLAG | AUTHORITATIVE, answers=[
        Record(name, SRV, (0, 0, 4242, "0.0.0.0")), Record(name, TXT, [b"id=" + bytes(32)]),
        Record("referrer.hyperswarm.local", A, "127.0.0.1"), Record(name, 99, b"\x01\x02")])
    decoded = MDNSPacket.decode(answer.encode())
    assert decoded == answer and decoded.is_response


def test_compressed_names_and_malformed_packets():
    # a response whose SRV name and target point back into the question (as DNS servers write them)
    head = bytes.fromhex("000084000001000100000000")
    question = b"\x03abc\x05local\x00" + b"\x00\x21\x00\x01"
    srv = (b"\xc0\x0c" + bytes.fromhex("0021000100000078") + b"\x00\x08" + bytes.fromhex("000000011f90")
           + b"\xc0\x10")
    packet = MDNSPacket.decode(head + question + srv)
    assert packet.questions == [("abc.local", SRV)]
    assert packet.answers[0].name == "abc.local" and packet.answers[0].data == (0, 1, 8080, "local")
    bad = [b"", b"\0" * 11, head + b"\x03ab", head + b"\xc0\x0c" + b"\0\x21\0\x01",  # pointer to itself
           head[:4] + b"\xff\xff" + head[6:], head + b"\x40abc\x00\x00\x21\x00\x01",
           bytes.fromhex("000084000000000100000000") + b"\x00" + bytes.fromhex("0001000100000000")
           + b"\x00\x05\x01\x02\x03\x04\x05"]
    for b in bad:
        with pytest.raises(MDNSError):
            MDNSPacket.decode(b)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_decode(data):
    try:
        MDNSPacket.decode(data)
    except MDNSError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_receive_responses_without_a_socket(data):
    # responses are only read (nothing is sent), so receive() runs without a socket
    ld = LocalDiscovery()
    ld.receive(bytes.fromhex("00008400") + data, ("127.0.0.1", 5353), 0.0)
    assert ld.stats["received"] == 1


def test_bad_input_is_dropped_and_counted():
    ld = LocalDiscovery(rate=10, burst=10)
    found = ld.peers()  # listening needs no socket: receive() is fed by hand here
    topic = os.urandom(32)
    from hypernode.discovery.local import _LocalTopic

    name = topic_name(topic)
    ld.topics[name] = [_LocalTopic(topic, name, b"id=mine", None, True)]
    ld.receive(b"\0" * 10_000, ("127.0.0.1", 5353), 0)
    ld.receive(b"\xff" * 20, ("127.0.0.1", 5353), 0)
    answer = MDNSPacket(flags=RESPONSE_FLAG, answers=[Record(name, SRV, (0, 0, 9000, "0.0.0.0"))]).encode()
    mine = MDNSPacket(flags=RESPONSE_FLAG, answers=[Record(name, SRV, (0, 0, 9001, "0.0.0.0")),
                                                    Record(name, TXT, [b"id=mine"])]).encode()
    ld.receive(mine, ("127.0.0.1", 5353), 0)  # our own answer: ignored
    ld.receive(answer, ("127.0.0.9", 5353), 0)
    peer = found.receive_nowait()
    assert (peer.host, peer.port, peer.local) == ("127.0.0.9", 9000, True) and len(found) == 0
    for _ in range(100):
        ld.receive(answer, ("127.0.0.9", 5353), 0)
    assert ld.stats["dropped_oversized"] == 1 and ld.stats["dropped_malformed"] == 1
    assert ld.stats["dropped_rate_limited"] >= 90 and ld.stats["peers_found"] <= 10
    assert len(found) == 1  # the same peer found again while one waits: queued once


def _netns_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def run_in_netns(*args: str) -> dict:
    if not _netns_available():  # multicast must not leave loopback: without a namespace, no test
        pytest.skip("no network namespaces here (`unshare -n` needs root, and iproute2's `ip`)")
    proc = subprocess.run(["unshare", "-n", sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_multicast_discovery_in_a_network_namespace():
    result = run_in_netns()
    assert result["python_peers"]["found"] == [["127.0.0.1", 7000]] and result["python_peers"]["local"]
    assert result["python_nodes"]["text"] == "found on the LAN"
