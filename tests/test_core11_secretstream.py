"""hypernode.core11.secretstream between two Python ends: the sans-IO state machine (both roles, keys,
handshake hash, messages before and after the handshake), the trio adapter over memory streams and TCP,
refused keys, keep-alive and timeouts, and fuzzing: garbage, truncated and bit-flipped handshakes and
frames end with SecretStreamError and nothing unauthenticated is ever passed on. The same code against
JS is interop/test_core11_secretstream_interop.py."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypernode.core11.secretstream import (
    MAX_MESSAGE,
    HandshakeComplete,
    KeyPair,
    Message,
    SecretStream,
    SecretStreamError,
    open_secret_stream,
    stream_id,
)
from hypernode.errors import HypernodeError

SCALE = int(os.environ.get("HYPERNODE_FUZZ_SCALE", "1"))
A_KEYS = KeyPair.generate(b"\x01" * 32)
B_KEYS = KeyPair.generate(b"\x02" * 32)
MESSAGES = [b"", b"x", b"hello world", os.urandom(64 * 1024), b""] + [bytes([i]) * i for i in range(50)]


def pump(a: SecretStream, b: SecretStream, corrupt: Callable[[bytes], bytes] = lambda d: d,
         rounds: int = 6) -> tuple[list[object], list[object]]:
    """Move bytes both ways until quiet; what a sends passes through ``corrupt``."""
    got_a: list[object] = []
    got_b: list[object] = []
    for _ in range(rounds):
        got_b += b.receive_data(corrupt(a.data_to_send()))
        got_a += a.receive_data(b.data_to_send())
    return got_a, got_b


def messages(events: list[object]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, Message)]


def test_handshake_and_messages_both_ways() -> None:
    a = SecretStream(True, A_KEYS, remote_public_key=B_KEYS.public_key)
    b = SecretStream(False, B_KEYS, remote_public_key=A_KEYS.public_key)
    assert b.data_to_send() == b""  # the responder waits for the initiator
    for m in MESSAGES[:3]:
        a.send(m)  # before the handshake: they leave after our header
    got_a, got_b = pump(a, b)
    assert isinstance(got_a[0], HandshakeComplete) and isinstance(got_b[0], HandshakeComplete)
    assert got_a[0].remote_public_key == B_KEYS.public_key and got_b[0].remote_public_key == A_KEYS.public_key
    assert got_a[0].handshake_hash == got_b[0].handshake_hash == a.handshake_hash == b.handshake_hash
    assert len(a.handshake_hash or b"") == 64
    assert messages(got_b) == MESSAGES[:3]
    for m in MESSAGES:
        a.send(m)
        b.send(m[::-1])
    got_a, got_b = pump(a, b)
    assert messages(got_b) == MESSAGES and messages(got_a) == [m[::-1] for m in MESSAGES]
    a.receive_eof()  # at a frame boundary after the header: a clean end
    b.receive_eof()


def test_wire_layout() -> None:
    """uint24 LE lengths; handshake messages of 32, 96 and 64 bytes; a 56-byte header starting with the
    stream id of the sender's role; a message is 17 bytes longer than its plaintext."""
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS)
    first = a.data_to_send()
    assert first[:3] == (32).to_bytes(3, "little") and len(first) == 35
    b.receive_data(first)
    second = b.data_to_send()
    assert second[:3] == (96).to_bytes(3, "little") and len(second) == 99  # no header yet from b
    a.receive_data(second)
    third = a.data_to_send()
    assert third[:3] == (64).to_bytes(3, "little") and third[67:70] == (56).to_bytes(3, "little")
    assert a.handshake_hash is not None and third[70:102] == stream_id(a.handshake_hash, True)
    b.receive_data(third)
    header = b.data_to_send()
    assert len(header) == 59 and header[3:35] == stream_id(a.handshake_hash, False)
    a.receive_data(header)
    a.send(b"abc")
    frame = a.data_to_send()
    assert frame[:3] == (20).to_bytes(3, "little") and len(frame) == 23
    assert messages(b.receive_data(frame)) == [b"abc"]


@pytest.mark.parametrize("wrong_side", ["initiator", "responder"])
def test_an_unexpected_remote_key_is_refused(wrong_side: str) -> None:
    other = KeyPair.generate(b"\x03" * 32).public_key
    a = SecretStream(True, A_KEYS, remote_public_key=other if wrong_side == "initiator" else None)
    b = SecretStream(False, B_KEYS, remote_public_key=other if wrong_side == "responder" else None)
    with pytest.raises(SecretStreamError, match="not the expected"):
        pump(a, b)
    if wrong_side == "initiator":  # refused before the initiator revealed its own key
        assert a.data_to_send() == b"" and not a.handshake_complete


def test_oversized_and_undersized_frames() -> None:
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS)
    with pytest.raises(SecretStreamError, match="at most 4096"):
        b.receive_data((5000).to_bytes(3, "little"))
    with pytest.raises(SecretStreamError):  # failed for good
        b.receive_data(b"")
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS, max_message=100)
    pump(a, b)
    with pytest.raises(SecretStreamError, match="shorter than its MAC"):
        b.receive_data((16).to_bytes(3, "little") + bytes(16))
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS, max_message=100)
    pump(a, b)
    a.send(bytes(101))
    with pytest.raises(SecretStreamError, match="at most 117"):
        pump(a, b)
    with pytest.raises(ValueError):
        a.send(bytes(MAX_MESSAGE + 1))


def test_eof_during_the_handshake_or_inside_a_frame() -> None:
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS)
    b.receive_data(a.data_to_send())
    with pytest.raises(SecretStreamError, match="during the secret-stream handshake"):
        b.receive_eof()
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS)
    pump(a, b)
    a.send(b"hello")
    b.receive_data(a.data_to_send()[:-1])
    with pytest.raises(SecretStreamError, match="inside a message"):
        b.receive_eof()


def test_filter_empty_drops_keep_alives() -> None:
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS, filter_empty=True)
    pump(a, b)
    a.send_keep_alive()
    a.send(b"x")
    a.send(b"")
    assert messages(pump(a, b)[1]) == [b"x"]


# --- fuzzing -------------------------------------------------------------------------------------------

def _transcript_run(flip_at: int | None, cut_at: int | None) -> tuple[list[bytes], SecretStreamError | None]:
    """A full exchange where the initiator's bytes get one bit flipped at ``flip_at`` or are cut at
    ``cut_at``; returns the messages b received and the error, if any (the eof is delivered at the end)."""
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS)
    for m in MESSAGES[:4]:
        a.send(m)
    position = 0

    def corrupt(data: bytes) -> bytes:
        nonlocal position
        start, position = position, position + len(data)
        out = bytearray(data)
        if flip_at is not None and start <= flip_at // 8 < position:
            out[flip_at // 8 - start] ^= 1 << (flip_at % 8)
        if cut_at is not None:
            out = out[:max(0, cut_at - start)]
        return bytes(out)

    got: list[object] = []
    try:
        for _ in range(6):
            got += b.receive_data(corrupt(a.data_to_send()))
            a.receive_data(b.data_to_send())
        b.receive_eof()
    except SecretStreamError as e:
        return messages(got), e
    return messages(got), None


TRANSCRIPT = 35 + 67 + 59 + sum(3 + 17 + len(m) for m in MESSAGES[:4])


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.integers(0, TRANSCRIPT * 8 - 1))
def test_fuzz_any_flipped_bit_ends_the_stream_and_nothing_forged_is_passed_on(bit: int) -> None:
    got, error = _transcript_run(bit, None)
    assert error is not None
    assert got == MESSAGES[:len(got)]  # only what was really sent, in order, before the damage


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.integers(0, TRANSCRIPT - 1))
def test_fuzz_a_truncated_stream_ends_with_the_error_or_a_clean_prefix(cut: int) -> None:
    got, error = _transcript_run(None, cut)
    assert got == MESSAGES[:len(got)]
    assert error is not None or len(got) < 4  # only a cut at a frame boundary after the header ends cleanly


@settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(st.binary(max_size=200), max_size=5), st.integers(0, 3))
def test_fuzz_garbage_raises_only_the_error_class(initiator: bool, chunks: list[bytes], honest: int) -> None:
    """Garbage after 0-3 honest steps of the handshake, to either role."""
    a, b = SecretStream(True, A_KEYS), SecretStream(False, B_KEYS)
    target = a if initiator else b
    try:
        for _ in range(honest):
            b.receive_data(a.data_to_send())
            a.receive_data(b.data_to_send())
        for chunk in chunks:
            events = target.receive_data(chunk)
            assert all(isinstance(e, HandshakeComplete) for e in events)  # garbage never authenticates
        target.receive_eof()
    except SecretStreamError:
        pass
    except HypernodeError as e:  # pragma: no cover - the assertion says which
        raise AssertionError(f"not SecretStreamError: {e!r}") from e


# --- the trio adapter ----------------------------------------------------------------------------------

async def _both_ways(left: trio.abc.Stream, right: trio.abc.Stream) -> None:
    async def responder(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with open_secret_stream(right, initiator=False, key_pair=B_KEYS) as conn:
            assert conn.remote_public_key == A_KEYS.public_key
            async for m in conn:
                await conn.send(m[::-1])
                if m == b"bye":
                    break

    async with trio.open_nursery() as nursery:
        nursery.start_soon(responder)
        async with open_secret_stream(left, initiator=True, key_pair=A_KEYS,
                                      remote_public_key=B_KEYS.public_key) as conn:
            assert conn.public_key == A_KEYS.public_key
            for m in [*MESSAGES, b"bye"]:
                await conn.send(m)
            got = [await conn.receive() for _ in range(len(MESSAGES) + 1)]
            assert got == [m[::-1] for m in [*MESSAGES, b"bye"]]
            assert await conn.receive() is None  # the responder left its block: a clean end


async def test_adapter_over_memory_streams() -> None:
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(10):
        await _both_ways(left, right)


async def test_adapter_receive_nowait_gives_what_came_with_an_earlier_read() -> None:
    left, right = trio.testing.memory_stream_pair()
    sent = trio.Event()
    async with trio.open_nursery() as nursery:
        async def sender() -> None:
            async with open_secret_stream(right, initiator=False) as conn:
                for m in (b"one", b"two", b"three"):
                    conn.stream.send(m)  # framed now, written below in one piece
                await conn.transport.send_all(conn.stream.data_to_send())
                sent.set()
                await trio.sleep_forever()

        nursery.start_soon(sender)
        async with open_secret_stream(left, initiator=True) as conn:
            with trio.fail_after(10):
                await sent.wait()
                assert await conn.receive() == b"one"
            assert conn.receive_nowait() == b"two"  # read with the first, no IO
            assert conn.receive_nowait() == b"three"
            assert conn.receive_nowait() is None
        nursery.cancel_scope.cancel()


async def test_adapter_over_tcp() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0]:
        left = await trio.open_tcp_stream("127.0.0.1", port)
        right = await listeners[0].accept()
        with trio.fail_after(10):
            await _both_ways(left, right)


async def test_adapter_refuses_a_wrong_key_and_a_silent_remote(
        autojump_clock: trio.testing.MockClock) -> None:
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            async def responder() -> None:
                with pytest.raises(SecretStreamError):
                    async with open_secret_stream(right, initiator=False, key_pair=B_KEYS):
                        pass
            nursery.start_soon(responder)
            with pytest.raises(SecretStreamError, match="not the expected"):
                async with open_secret_stream(left, initiator=True, key_pair=A_KEYS,
                                              remote_public_key=A_KEYS.public_key):
                    pass
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(10), pytest.raises(SecretStreamError, match="handshake took longer"):
        async with open_secret_stream(left, initiator=True, handshake_timeout=5):
            pass


async def test_keep_alive_keeps_a_quiet_connection_open_and_timeout_ends_a_silent_one(
        autojump_clock: trio.testing.MockClock) -> None:
    """On trio's virtual clock (memory streams, no real I/O), so that load cannot change the timings."""
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(100):
        async with trio.open_nursery() as nursery:
            async def quiet_peer(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                async with open_secret_stream(right, initiator=False, keep_alive=1) as conn:
                    task_status.started()
                    await trio.sleep(60)  # sends only keep-alives meanwhile
                    await conn.send(b"late")
                    await trio.sleep_forever()
            nursery.start_soon(quiet_peer)
            async with open_secret_stream(left, initiator=True, timeout=5, keep_alive=1) as conn:
                assert await conn.receive() == b"late"  # keep-alives were dropped, and counted as traffic
            nursery.cancel_scope.cancel()
    left, right = trio.testing.memory_stream_pair()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            async def silent_peer() -> None:
                async with open_secret_stream(right, initiator=False):
                    await trio.sleep_forever()
            nursery.start_soon(silent_peer)
            with pytest.raises(SecretStreamError, match="sent nothing"):
                async with open_secret_stream(left, initiator=True, timeout=5) as conn:
                    await conn.receive()
            nursery.cancel_scope.cancel()


def test_bad_key_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        SecretStream(True, KeyPair(A_KEYS.public_key, A_KEYS.secret_key[:32]))
    with pytest.raises(ValueError):
        SecretStream(True, A_KEYS, remote_public_key=b"\x00" * 31)
    with pytest.raises(ValueError):
        KeyPair.generate(b"short")
    assert KeyPair.generate(b"\x01" * 32) == A_KEYS  # the same seed, the same key pair
