"""The wire protocol: handshake and channels between two Python ends, and hostile input of every
kind ending only the connection it arrived on, with ProtocolError (never anything else)."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode import crypto
from hypernode.wire import (
    ChannelClosed,
    ChannelOpened,
    Connection,
    ExtensionReceived,
    MessageReceived,
    ProtocolError,
    RemoteOpened,
    messages,
)
from hypernode.wire.cipher import XSalsa20Stream
from hypernode.wire.frames import MAX_FRAME, FrameDecoder, encode_frame, varint
from hypernode.wire.stream import ConnectionClosed, ProtocolStream


def pump(a: Connection, b: Connection) -> tuple[list, list]:
    ea: list = []
    eb: list = []
    for _ in range(20):
        da, db = a.data_to_send(), b.data_to_send()
        if not da and not db:
            break
        if da:
            eb += b.receive_data(da)
        if db:
            ea += a.receive_data(db)
    return ea, eb


def inject(conn: Connection, plaintext: bytes) -> None:
    """Make ``conn`` send these bytes as if they were frames (they get encrypted like any frame)."""
    conn._plain.append(plaintext)
    conn._out_size += len(plaintext)


def connected() -> tuple[Connection, Connection]:
    a, b = Connection(True), Connection(False)
    a.start()
    b.start()
    pump(a, b)
    assert a.handshake_complete and b.handshake_complete
    assert a.remote_public_key == b.public_key and b.remote_public_key == a.public_key
    return a, b


def test_xsalsa20_stream_is_continuous():
    key, nonce = os.urandom(32), os.urandom(24)
    data = os.urandom(1000)
    whole = XSalsa20Stream(key, nonce).update(data)
    s = XSalsa20Stream(key, nonce)
    parts = b"".join(s.update(data[i:j]) for i, j in [(0, 1), (1, 63), (63, 64), (64, 200), (200, 1000)])
    assert parts == whole
    assert XSalsa20Stream(key, nonce).update(whole) == data


def test_xsalsa20_stream_in_chunks_matches_one_call_of_libsodium():
    """update() XORs big buffers a chunk at a time: the result is libsodium's over the whole stream,
    from any starting position (here 37 bytes in, then 300 KiB: ten chunks, none aligned)."""
    import ctypes

    from hypernode.wire import cipher

    key, nonce = os.urandom(32), os.urandom(24)
    data = os.urandom(37 + 300 * 1024 + 5)
    ref = bytearray(data)
    c_ref = (ctypes.c_char * len(ref)).from_buffer(ref)
    assert cipher._xor_ic(c_ref, c_ref, len(ref), nonce, 0, key) == 0
    del c_ref
    s = XSalsa20Stream(key, nonce)
    assert bytes(s.update(data[:37])) + bytes(s.update(data[37:])) == bytes(ref)


def test_frame_decoder_any_chunking():
    frames = [encode_frame(1, 3, b"abc"), b"\x00", encode_frame(0, 15, b"x" * 300)]
    blob = b"".join(frames)
    dec = FrameDecoder()
    got = []
    for i in range(len(blob)):
        got += list(dec.feed(blob[i:i + 1]))
    assert got == [(1, 3, b"abc"), None, (0, 15, b"x" * 300)]


def test_oversized_frame_refused_before_buffering():
    dec = FrameDecoder()
    with pytest.raises(ProtocolError, match="cap"):
        list(dec.feed(varint(MAX_FRAME + 1)))
    assert dec.buffered < 16


def test_channels_messages_and_capabilities():
    a, b = connected()
    key = crypto.key_pair().public_key
    ch, ev = a.open_channel(key)
    assert ev == []
    _, eb = pump(a, b)
    assert [type(e) for e in eb] == [RemoteOpened]
    chb, ev = b.open_channel(key)
    assert [type(e) for e in ev] == [ChannelOpened]
    ea, _ = pump(a, b)
    assert [type(e) for e in ea] == [ChannelOpened]
    a.send(ch, messages.Request(index=3, nodes=9))
    _, eb = pump(a, b)
    assert eb == [MessageReceived(chb, messages.Request(index=3, nodes=9))]
    a.send_extension(ch, 2, b"payload")
    _, eb = pump(a, b)
    assert isinstance(eb[0], ExtensionReceived) and eb[0].payload == b"payload" and eb[0].extension_id == 2
    a.close_channel(ch.discovery_key)
    _, eb = pump(a, b)
    assert [type(e) for e in eb] == [ChannelClosed]


def test_open_for_a_feed_we_do_not_have_is_refused_politely():
    a, b = connected()
    a.open_channel(crypto.key_pair().public_key)
    _, eb = pump(a, b)
    (ev,) = eb
    assert isinstance(ev, RemoteOpened)
    b.close_channel(ev.channel.discovery_key)  # what a store does for an unknown feed
    ea, _ = pump(a, b)
    assert [type(e) for e in ea] == [ChannelClosed]
    assert not a.closed and not b.closed


def test_bad_capability_on_a_channel_we_opened_ends_the_connection():
    a, b = connected()
    key = crypto.key_pair().public_key
    a.open_channel(key)
    forged = messages.Open(discoveryKey=crypto.discovery_key(key), capability=bytes(32))
    b._send_frame(5, 0, forged)  # b does not know the key: it cannot make the capability
    with pytest.raises(ProtocolError, match="capability"):
        pump(a, b)


def test_bad_capability_on_a_remote_channel_closes_just_that_channel():
    a, b = connected()
    key = crypto.key_pair().public_key
    forged = messages.Open(discoveryKey=crypto.discovery_key(key), capability=os.urandom(32))
    a._send_frame(1, 0, forged)
    pump(a, b)
    ch, ev = b.open_channel(key)
    assert [type(e) for e in ev] == [ChannelClosed]
    assert not b.closed


@pytest.mark.parametrize("frame", [
    encode_frame(1, 12, b""),  # unknown type
    encode_frame(1, 9, b"\xff\xff"),  # malformed Data
    encode_frame(0, 0, messages.Open(discoveryKey=bytes(32)).encode()),  # Open on channel 0
    encode_frame(1, 0, messages.Open(discoveryKey=b"short").encode()),
    b"\xff" * 12,  # length varint that never ends
    varint(MAX_FRAME + 1),
])
def test_malformed_frames_end_the_connection(frame):
    a, b = connected()
    inject(b, frame)
    with pytest.raises(ProtocolError):
        pump(a, b)
    assert a.closed


@pytest.mark.parametrize("garbage", [b"\x00", b"\x05hello", b"\xff" * 40, os.urandom(300),
                                     b"\x40" + b"z" * 64])
def test_garbage_handshake_is_refused(garbage):
    conn = Connection(False)
    with pytest.raises(ProtocolError):
        conn.receive_data(garbage)
        conn.receive_data(os.urandom(4000))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_handshake_bytes(data):
    conn = Connection(bool(len(data) % 2))
    try:
        conn.receive_data(data)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_fuzz_frames_after_the_handshake(chunks):
    """Arbitrary decrypted bytes after a real handshake: only ProtocolError can come out."""
    a, b = connected()
    for chunk in chunks:
        inject(b, chunk)
        try:
            pump(a, b)
        except ProtocolError:
            return


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 15), st.binary(max_size=80)), max_size=8))
def test_fuzz_well_framed_messages(frames):
    """Valid frames with arbitrary channel, type and body."""
    a, b = connected()
    a.open_channel(crypto.key_pair().public_key)
    for ch, t, body in frames:
        inject(b, encode_frame(ch, t, body))
    try:
        pump(a, b)
    except ProtocolError:
        pass


async def test_stream_over_memory_pair_and_extensions():
    left, right = trio.testing.memory_stream_pair()
    got = []
    async with ProtocolStream(left, initiator=True) as a, ProtocolStream(right, initiator=False) as b:
        ext_a = a.register_extension("chat", "json", lambda m, peer: got.append(("a", m)))
        b.register_extension("chat", "json", lambda m, peer: got.append(("b", m)))
        b.register_extension("other", "utf-8")
        await a.wait_handshake()
        await b.wait_handshake()
        ext_a.send({"hi": 1}, a)
        with trio.fail_after(5):
            while not got:
                await trio.sleep(0.01)
        assert got == [("b", {"hi": 1})]


async def test_silent_peer_times_out():
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(10), pytest.raises(ProtocolError, match="handshake"):  # raised, never stored
        async with ProtocolStream(left, initiator=True, timeout=0.5) as a:
            # the other end never answers the handshake
            async for _ in a:
                pass
    await right.aclose()


class Freezable(trio.abc.Stream):
    """A transport that stops reading and writing (the socket staying open) once ``frozen``."""

    def __init__(self, inner: trio.abc.Stream) -> None:
        self.inner = inner
        self.frozen = False

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.frozen:
            await trio.sleep_forever()
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self.frozen:
            await trio.sleep_forever()
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_peer_that_never_reads_is_dropped():
    """Python sends a lot to a peer that completed the handshake and then stopped reading: the
    connection ends, and why is raised out of the stream's ``async with``."""
    a_sock, b_sock = trio.testing.lockstep_stream_pair()
    b_side = Freezable(b_sock)
    with trio.fail_after(10), pytest.raises(ConnectionClosed, match="does not read|silent"):
        async with ProtocolStream(a_sock, initiator=True, timeout=1.0, keep_alive=0.2) as a, \
                ProtocolStream(b_side, initiator=False, timeout=None) as b:
            await a.wait_handshake()
            await b.wait_handshake()
            ch, _ = a.open_channel(crypto.key_pair().public_key)
            b_side.frozen = True  # b stops reading and writing, the socket stays open
            for _ in range(200):
                a.conn._send_frame(ch.local_id, 9, messages.Data(index=1, value=bytes(60000)))
            a._flush()
            async for _ in a:
                pass


async def test_the_remote_closing_after_the_handshake_ends_the_events_cleanly():
    """A clean end (the remote closes after the handshake): the iteration ends, nothing is raised.
    A close during the handshake is a failure, raised."""
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(10):
        async with ProtocolStream(left, initiator=True) as a:
            async with ProtocolStream(right, initiator=False) as b:
                await b.wait_handshake()
                await a.wait_handshake()
            async for _ in a:  # b closed: the events end
                pass
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(10), pytest.raises(ConnectionClosed, match="during the handshake"):
        async with ProtocolStream(left, initiator=True):
            await right.send_stream.aclose()  # the remote ends its side before answering
            await trio.sleep_forever()


async def test_drain_returns_for_every_waiter():
    """Two tasks wait in drain() while the transport is stalled (the session's deferred uploads and
    the reader's back-pressure both do): both return once the output is sent."""
    left, right = trio.testing.memory_stream_pair()
    gate = trio.Event()
    gate.set()

    pump = left.send_stream.send_all_hook  # moves the bytes to the other end

    async def stall() -> None:
        await gate.wait()
        if pump is not None:
            await pump()

    left.send_stream.send_all_hook = stall
    async with ProtocolStream(left, initiator=True) as a, ProtocolStream(right, initiator=False) as b:
        await a.wait_handshake()
        await b.wait_handshake()
        ch, _ = a.open_channel(crypto.key_pair().public_key)
        await trio.sleep(0.05)
        gate = trio.Event()
        a.send(ch, messages.Data(index=0, value=bytes(1000)))  # the writer takes it and stalls
        await trio.sleep(0.05)
        a.send(ch, messages.Data(index=1, value=bytes(1000)))
        done: list[int] = []

        async def drainer(n: int) -> None:
            await a.drain()
            done.append(n)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drainer, 1)
            await trio.sleep(0.05)
            nursery.start_soon(drainer, 2)
            await trio.sleep(0.05)
            gate.set()
            with trio.fail_after(5):
                while len(done) < 2:
                    await trio.sleep(0.01)
        assert sorted(done) == [1, 2] and a.conn.pending_output == 0


async def _tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listeners[0].accept()
    await listeners[0].aclose()
    return client, server


async def test_replies_held_for_a_batch_leave_together_and_in_order_over_tcp():
    """What is sent inside ``held()`` stays queued until the block ends, then goes to the socket from
    the sending task; what the socket does not take at once (a reader slower than us, megabytes
    queued) the writer sends after it, and the remote gets every message, in order."""
    client, server = await _tcp_pair()
    key = crypto.key_pair().public_key
    with trio.fail_after(20):
        async with ProtocolStream(client, initiator=True) as a, ProtocolStream(server, initiator=False) as b:
            await a.wait_handshake()
            await b.wait_handshake()
            ch, _ = a.open_channel(key)
            b.open_channel(key)
            got: list[int] = []

            async def collect() -> None:
                async for ev in b:
                    msg = getattr(ev, "message", None)
                    if isinstance(msg, messages.Data):
                        got.append(msg.index)

            async def until(n: int) -> None:
                while len(got) < n:
                    await trio.sleep(0.01)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(collect)
                with a.held():
                    a.send(ch, messages.Data(index=0, value=b"x"))
                    assert a.pending_output > 0  # held: not handed to the socket yet
                    await trio.sleep(0.3)  # (nothing in a held block waits in practice; here the writer
                    assert got == []       # could run, and must not send what is held)
                assert a.pending_output == 0  # the socket took it at the end of the block
                await until(1)
                assert got == [0]
                with a.held():  # 16 MiB: more than loopback's socket buffers take in one write
                    for i in range(1, 257):
                        a.send(ch, messages.Data(index=i, value=bytes(64 * 1024)))
                await until(257)
                assert got == list(range(257))
                nursery.cancel_scope.cancel()
            await a.drain()
            assert a.pending_output == 0
