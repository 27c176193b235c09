"""Hypothesis on the decoders the other test files do not fuzz yet, and on what consumes them.

Already fuzzed elsewhere: frames and the handshake (test_wire), every message of our own and the JS
schemas (test_protobuf), bitfield-rle decode (test_rle), trie nodes and Stat (test_drive), DHT datagrams,
addresses and mDNS packets (test_discovery, test_discovery_local). Here: the DHT schemas message by
message and the ``peers`` command's input and output, tombstones, version vectors, the RLE encoder
against the reference byte loop, well-typed replication messages with hostile values against a real
feed, a bitfield file of arbitrary bytes, and the wire decoder under the atheris harness for a bounded
time (``HYPERNODE_ATHERIS_SECONDS``; skipped, saying so, where atheris is not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypernode import rle
from hypernode.bitfield import PAGE_SIZE, Bitfield
from hypernode.discovery.dht import PeerStore, parse_peers_output
from hypernode.discovery.rpc import QUERY, UPDATE, IncomingRequest
from hypernode.errors import CorruptStorageError, VerificationError
from hypernode.feed import Feed
from hypernode.messages import dht_rpc, hyperswarm_dht
from hypernode.multi.clock import VersionVector, read_clock
from hypernode.multi.tombstones import Tombstone
from hypernode.protobuf import DecodeError
from hypernode.replication import FeedPeer, ReplicationError, replicator_of
from hypernode.wire import messages
from tests.proto_samples import message_classes

FUZZ_DIR = Path(__file__).parent / "fuzz"
SCALE = int(os.environ.get("HYPERNODE_FUZZ_SCALE", "1"))  # examples per test: the report runs more


# -- DHT messages, one by one, and the peers command --------------------------------------------------


@pytest.mark.parametrize("cls", message_classes(dht_rpc) + message_classes(hyperswarm_dht),
                         ids=lambda c: c.__qualname__)
@settings(max_examples=150 * SCALE, deadline=None)
@given(data=st.binary(max_size=200))
def test_dht_messages_raise_only_decode_error(cls, data):
    try:
        msg = cls.decode(data)
    except DecodeError:
        return
    assert cls.decode(msg.encode()).encode() == msg.encode()


@settings(max_examples=300 * SCALE, deadline=None)
@given(value=st.one_of(st.none(), st.binary(max_size=120)), kind=st.sampled_from([QUERY, UPDATE]),
       host=st.sampled_from(["127.0.0.1", "10.1.2.3", "::1", "not a host"]), port=st.integers(-1, 70000),
       target=st.binary(min_size=32, max_size=32))
def test_peers_command_takes_any_value(value, kind, host, port, target):
    store = PeerStore()
    req = IncomingRequest(kind, "peers", target, value, host, port)
    try:
        out, error = store.handle(req)
    except DecodeError:
        return  # the RPC layer drops the request
    assert out is None or parse_peers_output(out) is not None or out == b""
    assert len(store) <= 2


@settings(max_examples=300 * SCALE, deadline=None)
@given(st.binary(max_size=200))
def test_peers_output_parses_or_is_none(data):
    found = parse_peers_output(data)
    assert found is None or isinstance(found.peers, list)


# -- multi-drive values -------------------------------------------------------------------------------


@settings(max_examples=300 * SCALE, deadline=None)
@given(st.binary(max_size=100))
def test_tombstone_decode_never_raises(data):
    t = Tombstone.decode(data)
    assert t is None or isinstance(t.active, bool) and t.timestamp >= 0


@settings(max_examples=300 * SCALE, deadline=None)
@given(st.binary(max_size=300))
def test_version_vector_decode_raises_only_decode_error(data):
    try:
        v = VersionVector.decode(data)
    except DecodeError:
        assert read_clock({"hypernode-clock": data}) is None
        return
    assert all(len(k) == 32 and n >= 0 for k, n in v.items())
    assert VersionVector.decode(v.encode()) == v
    assert read_clock({"hypernode-clock": data}) == v


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.dictionaries(st.binary(min_size=32, max_size=32), st.integers(0, 2**63), max_size=6))
def test_version_vectors_round_trip(d):
    v = VersionVector(d)
    assert VersionVector.decode(v.encode()) == v


# -- the RLE encoder ----------------------------------------------------------------------------------


def _reference_encode(bits: bytes) -> bytes:
    """The byte-at-a-time encoder the regex one replaced (itself checked against the npm package)."""
    from hypernode.varint import encode_varint, varint_length
    n = len(bits)
    while n and not bits[n - 1]:
        n -= 1
    out = bytearray()
    flushed = 0

    def run(i: int, length: int, bit: int) -> None:
        nonlocal flushed
        head = i - length - flushed
        head_cost = varint_length(2 * head) + head if head else 0
        code = 4 * length + (2 if bit else 0) + 1
        if head_cost + varint_length(code) >= varint_length(2 * (i - flushed)) + i - flushed:
            return
        if head:
            out.extend(encode_varint(2 * head))
            out.extend(bits[flushed:i - length])
        out.extend(encode_varint(code))
        flushed = i

    length = 0
    current = 0
    for i in range(n):
        b = bits[i]
        if b == current:
            length += 1
            continue
        if length:
            run(i, length, current)
        if b == 0 or b == 255:
            current = b
            length = 1
        else:
            length = 0
    if length:
        run(n, length, current)
    if n - flushed:
        out.extend(encode_varint(2 * (n - flushed)))
        out.extend(bits[flushed:n])
    return bytes(out)


_bitfields = st.lists(st.one_of(st.sampled_from([b"\x00", b"\xff"]).flatmap(
    lambda b: st.integers(1, 300).map(lambda n: b * n)), st.binary(min_size=1, max_size=20)),
    max_size=12).map(b"".join)


@settings(max_examples=500 * SCALE, deadline=None)
@given(_bitfields)
def test_rle_encoder_gives_the_reference_bytes(bits):
    assert rle.encode(bits) == _reference_encode(bits)
    assert rle.decode(rle.encode(bits)).rstrip(b"\x00") == bits.rstrip(b"\x00")


# -- replication messages with hostile values against a real feed -------------------------------------

_u = st.one_of(st.integers(0, 20), st.integers(0, 2**64 - 1), st.sampled_from([2**20, 2**48, 2**63]))
_node = st.builds(messages.Data.Node, index=_u, hash=st.binary(max_size=40), size=_u)
_replication_messages = st.one_of(
    st.builds(messages.Status, uploading=st.one_of(st.none(), st.booleans()),
              downloading=st.one_of(st.none(), st.booleans())),
    st.builds(messages.Have, start=_u, length=st.one_of(st.none(), _u),
              bitfield=st.one_of(st.none(), st.binary(max_size=30))),
    st.builds(messages.Unhave, start=_u, length=st.one_of(st.none(), _u)),
    st.builds(messages.Want, start=_u, length=st.one_of(st.none(), _u)),
    st.builds(messages.Unwant, start=_u, length=st.one_of(st.none(), _u)),
    st.builds(messages.Request, index=_u, bytes=st.one_of(st.none(), _u),
              hash=st.one_of(st.none(), st.booleans()), nodes=st.one_of(st.none(), _u)),
    st.builds(messages.Cancel, index=_u),
    st.builds(messages.Data, index=_u, value=st.one_of(st.none(), st.binary(max_size=40)),
              nodes=st.lists(_node, max_size=4), signature=st.one_of(st.none(), st.binary(max_size=70))),
)


@settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_replication_messages, max_size=12), st.booleans())
def test_replication_messages_with_any_values(msgs, writer):
    """Well-formed messages with hostile field values: only ReplicationError or VerificationError
    come out, and the feed stores nothing that does not verify."""
    async def main() -> None:
        src = await Feed.open(None)
        await src.append([b"block %d" % i for i in range(20)])
        feed = src if writer else await Feed.open(None, key=src.key)
        sent = []
        peer = FeedPeer(replicator_of(feed), sent.append)
        peer.on_open()
        if not writer:  # some real requests in flight, so that Data messages get to verification
            peer.on_message(messages.Have(start=0, length=20))
        for m in msgs:
            try:
                peer.on_message(m)
                peer.check_timeouts()
            except (ReplicationError, VerificationError):
                break
        peer.on_close()
        for i in range(feed.length):
            if feed.has(i):
                assert await feed.get(i) == b"block %d" % i
        assert all(type(m).__name__ in ("Want", "Have", "Request", "Data", "Unhave", "Status") for m in sent)
    trio.run(main)


# -- the bitfield file --------------------------------------------------------------------------------


@settings(max_examples=150 * SCALE, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2 * PAGE_SIZE - 1), st.binary(min_size=1, max_size=16)),
                max_size=6))
def test_a_bitfield_file_of_any_bytes_opens_consistent_or_fails_naming_the_file(tmp_path_factory, edits):
    """A feed whose bitfield file was overwritten anywhere: it opens with every block it claims
    verifying, or raises CorruptStorageError naming a file, never anything else."""
    directory = tmp_path_factory.mktemp("bf")

    async def main() -> None:
        async with await Feed.open(directory) as feed:
            await feed.append([b"x%d" % i for i in range(70)])
        path = directory / "bitfield"
        raw = bytearray(path.read_bytes())
        for offset, data in edits:
            pos = 32 + offset
            raw[pos:pos + len(data)] = data
        path.write_bytes(bytes(raw))
        try:
            feed = await Feed.open(directory)
        except CorruptStorageError as e:
            assert e.path.startswith(str(directory))
            return
        try:
            assert feed.length <= 70
            for i in range(feed.length):
                if feed.has(i):
                    try:
                        assert await feed.get(i) == b"x%d" % i
                    except CorruptStorageError:
                        pass  # a bit set for a block whose tree node is blank: named, not silent
        finally:
            await feed.close()
    trio.run(main)
    Bitfield(bytes(PAGE_SIZE))  # an all-zero page loads as an empty feed


# -- the atheris harness ------------------------------------------------------------------------------


def test_atheris_wire_harness_runs_for_a_bounded_time(tmp_path):
    """tests/fuzz/fuzz_wire.py under atheris (coverage-guided) for HYPERNODE_ATHERIS_SECONDS (8 s in CI):
    any exception other than ProtocolError from the wire decoder is a crash that fails this test."""
    pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[test]')")
    seconds = int(os.environ.get("HYPERNODE_ATHERIS_SECONDS", "8"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    subprocess.run([sys.executable, str(FUZZ_DIR / "fuzz_wire.py"), "--seeds", str(corpus)], check=True,
                   timeout=60)
    proc = subprocess.run([sys.executable, str(FUZZ_DIR / "fuzz_wire.py"), f"-max_total_time={seconds}",
                           "-max_len=4096", "-rss_limit_mb=2048", str(corpus)],
                          capture_output=True, text=True, timeout=seconds + 120, cwd=tmp_path)
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, tail
    runs = [line for line in proc.stderr.splitlines() if "Done" in line and "runs" in line]
    assert runs, tail
    print(f"\natheris: {runs[-1].strip()}")
