"""@hyperswarm/secret-stream 6 (the encrypted stream every hypercore 11 connection runs over), sans-IO,
and a thin trio adapter (:func:`open_secret_stream`).

This module owns the stream's handshake and framing; nothing above it (protomux, replication) is here.

What goes over the wire (read from @hyperswarm/secret-stream 6.9.2, noise-handshake and noise-curve-ed):

- Every message, handshake or not, is ``uint24 little-endian length || bytes``.
- A Noise XX handshake, ``Noise_XX_Ed25519_ChaChaPoly_BLAKE2b``, with an empty prologue and empty
  payloads (three messages of 32, 96 and 64 bytes). The static and ephemeral keys are Ed25519 key pairs;
  a DH is the remote's Edwards point times the local clamped scalar (the first half of SHA-512 of the
  secret key's seed, clamped), ``crypto_scalarmult_ed25519_noclamp``, which refuses small-order and
  non-canonical points. The hash is BLAKE2b-512, HKDF is HMAC-BLAKE2b, the cipher ChaCha20-Poly1305
  (IETF) with a nonce of four zero bytes and the little-endian counter.
- After the handshake each side sends a header message of 56 bytes: a 32-byte stream id,
  ``BLAKE2b-256(key=handshake hash, NS_INITIATOR or NS_RESPONDER)`` (namespace
  ``hyperswarm/secret-stream``), then the 24-byte header of its libsodium secretstream
  (``crypto_secretstream_xchacha20poly1305``) keyed by the first 32 bytes of its Noise transport key.
  The remote's id must be the one its role gives.
- Then each message is one secretstream push with TAG_MESSAGE (``len(plain) + 17`` bytes: the encrypted
  tag, the ciphertext, the 16-byte MAC), so at most 2**24 - 1 - 17 bytes of plaintext per message.
  libsodium itself rekeys (on a REKEY tag, and when its 32-bit counter wraps); JS never sends other tags,
  and ignores the tag it receives, as we do.
- Keep-alive is an empty message. JS sends none unless ``setKeepAlive(ms)`` is called (hyperdht's
  ``connectionKeepAlive`` option does it for its connections), and then it also drops every empty message
  it receives (otherwise an empty message is delivered as one); ``setTimeout(ms)`` destroys a stream that
  received no bytes for that long. Here ``filter_empty=True`` drops empty messages, and the adapter has
  ``keep_alive`` and ``timeout`` seconds that do the same as JS.
- Not here: the unordered UDP messages JS boxes with ``crypto_secretbox`` over a UDX stream
  (``send``/``trySend``), a precomputed handshake passed in (as hyperdht does after its IK handshake),
  and handshake patterns other than XX.

JS's secret-stream accepts a ``remotePublicKey`` option with XX but does not check it; here
``remote_public_key`` is checked as soon as the remote's static key is known (the initiator checks
before it sends its own static key).

Every malformed, oversized, truncated or tampered input raises :class:`SecretStreamError`, and nothing
is passed on that libsodium did not authenticate.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import nacl.exceptions
import trio
from nacl import bindings as sodium

from hypernode.core11.crypto import namespace
from hypernode.errors import HypernodeError
from hypernode.tasks import open_service_nursery

PROTOCOL_NAME = b"Noise_XX_Ed25519_ChaChaPoly_BLAKE2b"
HASHLEN = 64
ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES  # 17: the tag byte and the MAC
HEADERBYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES  # 24
ID_HEADER_BYTES = 32 + HEADERBYTES
MAX_FRAME = 2**24 - 1  # what a uint24 length can say
MAX_MESSAGE = MAX_FRAME - ABYTES  # the largest plaintext one message carries
MAX_HANDSHAKE_MESSAGE = 4096  # the real ones are 32, 96 and 64 bytes (payloads are empty)
NS_INITIATOR, NS_RESPONDER, NS_SEND = namespace("hyperswarm/secret-stream", 3)


class SecretStreamError(HypernodeError):
    """The secret-stream failed: the remote sent bytes that are not a valid handshake or frame, a
    message that did not authenticate, a key we did not expect, or the connection ended or timed out."""


@dataclass(frozen=True)
class KeyPair:
    """An Ed25519 key pair as sodium keeps it: the 32-byte public key and the 64-byte secret key
    (seed || public key)."""

    public_key: bytes
    secret_key: bytes

    @classmethod
    def generate(cls, seed: bytes | None = None) -> KeyPair:
        """A new key pair, from a 32-byte ``seed`` if given (the same seed gives JS's key pair)."""
        if seed is None:
            pk, sk = sodium.crypto_sign_keypair()
        else:
            if len(seed) != 32:
                raise ValueError("a key pair seed is 32 bytes")
            pk, sk = sodium.crypto_sign_seed_keypair(seed)
        return cls(pk, sk)


@dataclass(frozen=True)
class HandshakeComplete:
    """The handshake finished: who the remote is and the handshake hash (what capabilities bind to)."""

    remote_public_key: bytes
    handshake_hash: bytes


@dataclass(frozen=True)
class Message:
    """One message the remote sent, authenticated."""

    data: bytes


Event = HandshakeComplete | Message


# --- Noise XX with Ed25519 keys ------------------------------------------------------------------------

def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2b).digest()


def _hkdf2(chaining_key: bytes, material: bytes) -> tuple[bytes, bytes]:
    prk = _hmac(chaining_key, material)
    first = _hmac(prk, b"\x01")
    return first, _hmac(prk, first + b"\x02")


def _dh(local: KeyPair, remote_public: bytes) -> bytes:
    digest = bytearray(hashlib.sha512(local.secret_key[:32]).digest()[:32])
    digest[0] &= 248
    digest[31] &= 127
    digest[31] |= 64
    try:
        return sodium.crypto_scalarmult_ed25519_noclamp(bytes(digest), remote_public)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise SecretStreamError("the remote's handshake key is not a usable Ed25519 point") from None


class _NoiseXX:
    """The three messages of the XX pattern; payloads are sent empty and ignored when received."""

    def __init__(self, initiator: bool, static: KeyPair) -> None:
        self.initiator = initiator
        self.static = static
        self.ephemeral: KeyPair | None = None
        self.remote_ephemeral = b""
        self.remote_static: bytes | None = None
        self.h = PROTOCOL_NAME.ljust(HASHLEN, b"\x00")  # the name fits in a hash: it is the hash
        self.ck = self.h
        self.key: bytes | None = None
        self.nonce = 0
        self._mix_hash(b"")  # the prologue
        self.step = 0  # messages done
        self.tx = self.rx = b""

    def _mix_hash(self, data: bytes) -> None:
        self.h = hashlib.blake2b(self.h + data).digest()

    def _mix_key(self, dh: bytes) -> None:
        self.ck, temp = _hkdf2(self.ck, dh)
        self.key = temp[:32]
        self.nonce = 0

    def _nonce(self) -> bytes:
        return b"\x00" * 4 + self.nonce.to_bytes(8, "little")

    def _encrypt_and_hash(self, plain: bytes) -> bytes:
        if self.key is None:
            out = plain
        else:
            out = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plain, self.h, self._nonce(), self.key)
            self.nonce += 1
        self._mix_hash(out)
        return out

    def _decrypt_and_hash(self, cipher: bytes) -> bytes:
        if self.key is None:
            plain = cipher
        else:
            try:
                plain = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(cipher, self.h, self._nonce(),
                                                                         self.key)
            except nacl.exceptions.CryptoError:
                raise SecretStreamError("a handshake message did not authenticate") from None
            self.nonce += 1
        self._mix_hash(cipher)
        return plain

    @property
    def complete(self) -> bool:
        return self.step == 3

    def _ours_to_send(self) -> bool:
        return (self.step % 2 == 0) == self.initiator

    def write(self) -> bytes:
        assert self._ours_to_send() and not self.complete
        out = bytearray()
        if self.step < 2:  # e
            self.ephemeral = KeyPair.generate()
            self._mix_hash(self.ephemeral.public_key)
            out += self.ephemeral.public_key
        assert self.ephemeral is not None
        if self.step == 1:  # ee, s, es (responder)
            self._mix_key(_dh(self.ephemeral, self.remote_ephemeral))
            out += self._encrypt_and_hash(self.static.public_key)
            self._mix_key(_dh(self.static, self.remote_ephemeral))
        elif self.step == 2:  # s, se (initiator)
            out += self._encrypt_and_hash(self.static.public_key)
            self._mix_key(_dh(self.static, self.remote_ephemeral))
        out += self._encrypt_and_hash(b"")
        self._advance()
        return bytes(out)

    def read(self, message: bytes) -> bytes | None:
        """Take the remote's message; returns the remote's static key when this message brought it."""
        assert not self._ours_to_send() and not self.complete
        pos = 0
        brought = None

        short = f"handshake message {self.step + 1} is too short ({len(message)} bytes)"

        def take(n: int) -> bytes:
            nonlocal pos
            if len(message) < pos + n:
                raise SecretStreamError(short)
            pos += n
            return message[pos - n:pos]

        if self.step < 2:  # e
            self.remote_ephemeral = take(32)
            self._mix_hash(self.remote_ephemeral)
        if self.step == 1:  # ee, s, es (we are the initiator)
            assert self.ephemeral is not None
            self._mix_key(_dh(self.ephemeral, self.remote_ephemeral))
            brought = self.remote_static = self._decrypt_and_hash(take(32 + 16))
            self._mix_key(_dh(self.ephemeral, self.remote_static))
        elif self.step == 2:  # s, se (we are the responder)
            assert self.ephemeral is not None
            brought = self.remote_static = self._decrypt_and_hash(take(32 + 16))
            self._mix_key(_dh(self.ephemeral, self.remote_static))
        if self.key is not None and len(message) - pos < 16:
            raise SecretStreamError(short)
        self._decrypt_and_hash(message[pos:])  # the payload: empty from JS, ignored
        self._advance()
        return brought

    def _advance(self) -> None:
        self.step += 1
        if self.complete:
            first, second = _hkdf2(self.ck, b"")
            self.tx, self.rx = (first[:32], second[:32]) if self.initiator else (second[:32], first[:32])


def stream_id(handshake_hash: bytes, initiator: bool) -> bytes:
    """The 32-byte id the initiator's (or responder's) header message starts with."""
    ns = NS_INITIATOR if initiator else NS_RESPONDER
    return hashlib.blake2b(ns, digest_size=32, key=handshake_hash).digest()


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(3, "little") + body


# --- the stream ----------------------------------------------------------------------------------------

class SecretStream:
    """One end of a secret-stream (see the module's docstring).

    ``receive_data(bytes)`` returns the :class:`Event` objects those bytes complete (a
    :class:`HandshakeComplete` first, then :class:`Message` objects); ``data_to_send()`` returns the
    bytes to write (the initiator has its first handshake message there from the start). ``send(data)``
    may be called at any time: messages sent before the handshake completes leave right after our
    header. ``receive_eof()`` says the transport ended: an error unless the handshake completed and no
    frame was cut short.
    """

    def __init__(self, initiator: bool, key_pair: KeyPair | None = None, *,
                 remote_public_key: bytes | None = None, filter_empty: bool = False,
                 max_message: int = MAX_MESSAGE) -> None:
        if max_message > MAX_MESSAGE or max_message < 0:
            raise ValueError(f"max_message is at most {MAX_MESSAGE}")
        if key_pair is not None and (len(key_pair.public_key) != 32 or len(key_pair.secret_key) != 64):
            raise ValueError("an Ed25519 key pair is a 32-byte public key and a 64-byte secret key")
        if remote_public_key is not None and len(remote_public_key) != 32:
            raise ValueError("a remote public key is 32 bytes")
        self.initiator = initiator
        self.key_pair = key_pair if key_pair is not None else KeyPair.generate()
        self.expected_remote_key = remote_public_key
        self.filter_empty = filter_empty
        self.max_message = max_message
        self.remote_public_key: bytes | None = None
        self.handshake_hash: bytes | None = None
        self._noise: _NoiseXX | None = _NoiseXX(initiator, self.key_pair)
        self._push: sodium.crypto_secretstream_xchacha20poly1305_state | None = None
        self._pull: sodium.crypto_secretstream_xchacha20poly1305_state | None = None
        self._rx_key = b""
        self._buf = bytearray()
        self._out = bytearray()
        self._waiting: list[bytes] = []  # sent before our header could go
        self._failed = False
        if initiator:
            self._out += _frame(self._noise.write())

    @property
    def public_key(self) -> bytes:
        return self.key_pair.public_key

    @property
    def handshake_complete(self) -> bool:
        return self.handshake_hash is not None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Queue one message (``data_to_send`` has it once the handshake is done)."""
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"a message is at most {MAX_MESSAGE} bytes, not {len(data)}")
        if self._failed:
            raise SecretStreamError("the stream failed")
        if self._push is None:
            self._waiting.append(bytes(data))
            return
        self._out += _frame(sodium.crypto_secretstream_xchacha20poly1305_push(self._push, bytes(data)))

    def send_keep_alive(self) -> None:
        """An empty message: what JS sends to keep a connection alive."""
        self.send(b"")

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        if self._failed:
            raise SecretStreamError("the stream failed")
        try:
            return self._receive(data)
        except SecretStreamError:
            self._failed = True
            raise

    def receive_eof(self) -> None:
        """The transport ended; raises unless that is a clean end."""
        if self._failed:
            raise SecretStreamError("the stream failed")
        if not self.handshake_complete:
            raise SecretStreamError("the connection ended during the secret-stream handshake")
        if self._pull is None:
            raise SecretStreamError("the connection ended before the remote's header message")
        if self._buf:
            raise SecretStreamError(f"the connection ended inside a message ({len(self._buf)} bytes of it)")

    def _receive(self, data: bytes | bytearray | memoryview) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while len(self._buf) >= 3:
            length = int.from_bytes(self._buf[:3], "little")
            limit = MAX_HANDSHAKE_MESSAGE if self._noise is not None else (
                ID_HEADER_BYTES if self._pull is None else self.max_message + ABYTES)
            if length > limit:
                raise SecretStreamError(f"a message of {length} bytes (at most {limit} here)")
            if len(self._buf) < 3 + length:
                break
            body = bytes(self._buf[3:3 + length])
            del self._buf[:3 + length]
            if self._noise is not None:
                event = self._handshake_message(body)
                if event is not None:
                    events.append(event)
            elif self._pull is None:
                self._header_message(body)
            else:
                if length < ABYTES:
                    raise SecretStreamError(f"a message of {length} bytes is shorter than its MAC")
                try:
                    plain, _tag = sodium.crypto_secretstream_xchacha20poly1305_pull(self._pull, body)
                except (nacl.exceptions.CryptoError, ValueError):
                    raise SecretStreamError("a message did not authenticate") from None
                if plain or not self.filter_empty:
                    events.append(Message(plain))
        return events

    def _handshake_message(self, body: bytes) -> HandshakeComplete | None:
        noise = self._noise
        assert noise is not None
        remote_static = noise.read(body)
        if remote_static is not None and self.expected_remote_key is not None \
                and not hmac.compare_digest(remote_static, self.expected_remote_key):
            raise SecretStreamError(f"the remote's key is {remote_static.hex()}, "
                                    f"not the expected {self.expected_remote_key.hex()}")
        if not noise.complete:
            self._out += _frame(noise.write())
        if not noise.complete:
            return None
        assert noise.remote_static is not None
        self._noise = None
        self.remote_public_key = noise.remote_static
        self.handshake_hash = noise.h
        self._rx_key = noise.rx
        self._push = sodium.crypto_secretstream_xchacha20poly1305_state()
        header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._push, noise.tx)
        self._out += _frame(stream_id(noise.h, self.initiator) + header)
        waiting, self._waiting = self._waiting, []
        for data in waiting:
            self.send(data)
        return HandshakeComplete(noise.remote_static, noise.h)

    def _header_message(self, body: bytes) -> None:
        assert self.handshake_hash is not None
        if len(body) != ID_HEADER_BYTES:
            raise SecretStreamError(f"a header message of {len(body)} bytes, not {ID_HEADER_BYTES}")
        if not hmac.compare_digest(body[:32], stream_id(self.handshake_hash, not self.initiator)):
            raise SecretStreamError("the remote's header message has the wrong stream id")
        self._pull = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._pull, body[32:], self._rx_key)


# --- the trio adapter ----------------------------------------------------------------------------------

READ_SIZE = 256 * 1024


class SecretStreamConnection:
    """An open secret-stream over a trio stream: ``await send(data)``, ``async for data in conn``.

    Iteration ends when the remote ends the connection cleanly; it raises :class:`SecretStreamError`
    when the remote breaks the protocol, resets the connection, or sends nothing for ``timeout``
    seconds while we wait for a message (the silence is measured inside :meth:`receive`). One task
    iterates; any task may send."""

    def __init__(self, transport: trio.abc.Stream, stream: SecretStream, pending: list[bytes],
                 timeout: float | None) -> None:
        self.transport = transport
        self.stream = stream
        self._pending = deque(pending)
        self._timeout = math.inf if timeout is None else timeout
        self._send_lock = trio.StrictFIFOLock()
        self._ended = False
        self.last_send = trio.current_time()

    @property
    def remote_public_key(self) -> bytes:
        assert self.stream.remote_public_key is not None
        return self.stream.remote_public_key

    @property
    def handshake_hash(self) -> bytes:
        assert self.stream.handshake_hash is not None
        return self.stream.handshake_hash

    @property
    def public_key(self) -> bytes:
        return self.stream.public_key

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        async with self._send_lock:
            self.stream.send(data)
            await self._flush()

    async def _flush(self) -> None:
        out = self.stream.data_to_send()
        if out:
            try:
                await self.transport.send_all(out)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
                raise SecretStreamError(f"the connection was lost: {e!r}") from None
            self.last_send = trio.current_time()

    async def receive(self) -> bytes | None:
        """The next message, or None once the remote ended the connection cleanly."""
        while not self._pending:
            if self._ended:
                return None
            data = await _receive_some(self.transport, self._timeout)
            if not data:
                self._ended = True
                self.stream.receive_eof()
                return None
            for event in self.stream.receive_data(data):
                if isinstance(event, Message):
                    self._pending.append(event.data)
        return self._pending.popleft()

    def receive_nowait(self) -> bytes | None:
        """The next message if it has arrived already (read with an earlier one), else None; no IO."""
        return self._pending.popleft() if self._pending else None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[bytes]:
        while (message := await self.receive()) is not None:
            yield message


async def _receive_some(transport: trio.abc.Stream, timeout: float) -> bytes:
    with trio.move_on_after(timeout) as scope:
        try:
            return bytes(await transport.receive_some(READ_SIZE))
        except trio.BrokenResourceError as e:
            raise SecretStreamError(f"the connection was lost: {e!r}") from None
    assert scope.cancelled_caught
    raise SecretStreamError(f"the remote sent nothing for {timeout:g} s")


@asynccontextmanager
async def open_secret_stream(transport: trio.abc.Stream, *, initiator: bool, key_pair: KeyPair | None = None,
                             remote_public_key: bytes | None = None, handshake_timeout: float | None = 10.0,
                             timeout: float | None = None, keep_alive: float | None = None
                             ) -> AsyncIterator[SecretStreamConnection]:
    """Run the handshake over ``transport`` and give the open :class:`SecretStreamConnection`.

    Raises :class:`SecretStreamError` if the handshake fails, the remote's key is not
    ``remote_public_key`` (when given), or it takes longer than ``handshake_timeout`` seconds.
    ``keep_alive`` (seconds) sends an empty message whenever we sent nothing for that long and drops the
    empty messages received, as JS's ``setKeepAlive``; ``timeout`` ends a connection silent that long.
    Leaving the block closes the transport."""
    stream = SecretStream(initiator, key_pair, remote_public_key=remote_public_key,
                          filter_empty=keep_alive is not None)
    try:
        pending: list[bytes] = []
        with trio.move_on_after(math.inf if handshake_timeout is None else handshake_timeout) as scope:
            out = stream.data_to_send()
            if out:
                await _send(transport, out)
            while not stream.handshake_complete:
                data = await _receive_some(transport, math.inf)
                if not data:
                    stream.receive_eof()
                for event in stream.receive_data(data):
                    if isinstance(event, Message):
                        pending.append(event.data)
                out = stream.data_to_send()
                if out:
                    await _send(transport, out)
        if scope.cancelled_caught:
            raise SecretStreamError(f"the secret-stream handshake took longer than {handshake_timeout:g} s")
        conn = SecretStreamConnection(transport, stream, pending, timeout)
        async with open_service_nursery() as nursery:
            if keep_alive is not None:
                nursery.start_soon(_keep_alive, conn, keep_alive)
            yield conn
    finally:
        with trio.CancelScope(shield=True):
            await transport.aclose()


async def _send(transport: trio.abc.Stream, data: bytes) -> None:
    try:
        await transport.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as e:
        raise SecretStreamError(f"the connection was lost: {e!r}") from None


async def _keep_alive(conn: SecretStreamConnection, interval: float) -> None:
    while True:
        await trio.sleep_until(conn.last_send + interval)
        if trio.current_time() >= conn.last_send + interval:
            await conn.send(b"")
