"""The Noise XX handshake of hypercore-protocol 8 (``Noise_XX_25519_ChaChaPoly_BLAKE2b``), sans-IO.

Each of the three handshake messages is sent as ``varint(length) || noise message`` and carries, as its
payload, a ``NoisePayload { nonce }`` protobuf with the sender's 24-byte XSalsa20 nonce. When the
handshake completes, the split gives the transport keys (the initiator sends with the first one) and
the remote's static public key is known. The noiseprotocol package does the cryptography.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from noise.connection import Keypair, NoiseConnection

from hypernode.messages.hypercore_protocol import NoisePayload
from hypernode.varint import DecodeError, read_varint_partial
from hypernode.varint import encode_varint as _varint
from hypernode.wire.frames import ProtocolError

PROTOCOL_NAME = b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
MAX_HANDSHAKE_MESSAGE = 4096


class HandshakeError(ProtocolError):
    pass


@dataclass
class KeyPair:
    """A Curve25519 static key pair for the handshake."""

    public_key: bytes
    secret_key: bytes

    @classmethod
    def generate(cls, seed: bytes | None = None) -> KeyPair:
        from nacl.bindings import crypto_scalarmult_base

        secret = seed if seed is not None else os.urandom(32)
        if len(secret) != 32:
            raise ValueError("a Curve25519 secret key is 32 bytes")
        return cls(crypto_scalarmult_base(secret), secret)


@dataclass
class HandshakeResult:
    tx_key: bytes
    rx_key: bytes
    remote_public_key: bytes
    remote_nonce: bytes
    handshake_hash: bytes


class Handshake:
    """Drive the handshake: :meth:`start`, then :meth:`receive` until :attr:`result` is set.

    Both return the bytes to send. Bytes after the last handshake message are left in
    :attr:`overflow` for the transport.
    """

    def __init__(self, initiator: bool, key_pair: KeyPair, nonce: bytes) -> None:
        self.initiator = initiator
        self.key_pair = key_pair
        self.nonce = nonce
        self._payload = NoisePayload(nonce=nonce).encode()
        self._noise = NoiseConnection.from_name(PROTOCOL_NAME)
        if initiator:
            self._noise.set_as_initiator()
        else:
            self._noise.set_as_responder()
        self._noise.set_keypair_from_private_bytes(Keypair.STATIC, key_pair.secret_key)
        self._noise.start_handshake()
        self._buf = bytearray()
        self._remote_static: bytes | None = None
        self._remote_payload: bytes | None = None
        self.result: HandshakeResult | None = None
        self.overflow = b""

    def start(self) -> bytes:
        """The first message, for the initiator (the responder has nothing to send yet)."""
        return self._write() if self.initiator else b""

    def _write(self) -> bytes:
        try:
            msg = bytes(self._noise.write_message(self._payload))
        except Exception as e:  # a remote key that is a low-order point fails the DH: ValueError
            raise HandshakeError(f"Noise handshake failed: {e}") from None
        out = _varint(len(msg)) + msg
        self._maybe_finish()
        return out

    def receive(self, data: bytes | bytearray) -> bytes:
        if self.result is not None:
            raise HandshakeError("handshake already complete")
        self._buf += data
        out = bytearray()
        while self.result is None:
            length, pos = _read_varint(self._buf)
            if length is None:
                if len(self._buf) > 10:
                    raise HandshakeError("garbage instead of a handshake message")
                break
            if length > MAX_HANDSHAKE_MESSAGE or length == 0:
                raise HandshakeError(f"handshake message of {length} bytes")
            if len(self._buf) < pos + length:
                break
            msg = bytes(self._buf[pos:pos + length])
            del self._buf[:pos + length]
            hs = self._noise.noise_protocol.handshake_state  # keep it: finishing deletes it
            try:
                payload = bytes(self._noise.read_message(msg))
            except Exception as e:  # noiseprotocol raises several unrelated types
                raise HandshakeError(f"Noise handshake failed: {e}") from None
            if payload:
                self._remote_payload = payload
            rs = getattr(hs, "rs", None)
            if rs is not None and hasattr(rs, "public_bytes"):
                self._remote_static = rs.public_bytes
            if not self._maybe_finish():
                out += self._write()
        return bytes(out)

    def _maybe_finish(self) -> bool:
        if not self._noise.handshake_finished:
            return False
        if self.result is not None:
            return True
        if self._remote_payload is None:
            raise HandshakeError("the remote did not include a handshake payload")
        try:
            nonce = NoisePayload.decode(self._remote_payload).nonce
        except DecodeError:
            raise HandshakeError("could not parse the remote's handshake payload") from None
        if len(nonce) != 24:
            raise HandshakeError("the remote's nonce is not 24 bytes")
        if self._remote_static is None:
            raise HandshakeError("no remote static key")
        proto = self._noise.noise_protocol
        self.result = HandshakeResult(
            tx_key=bytes(proto.cipher_state_encrypt.k),
            rx_key=bytes(proto.cipher_state_decrypt.k),
            remote_public_key=self._remote_static,
            remote_nonce=nonce,
            handshake_hash=bytes(proto.handshake_hash),
        )
        self.overflow = bytes(self._buf)
        self._buf = bytearray()
        return True


def _read_varint(buf: bytearray) -> tuple[int | None, int]:
    try:
        return read_varint_partial(buf, 0, len(buf), max_bytes=4)
    except DecodeError:
        raise HandshakeError("handshake length varint too long") from None
