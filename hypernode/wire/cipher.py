"""XSalsa20 stream encryption of the wire after the handshake (simple-hypercore-protocol's ``xor.js``).

Each direction XORs every byte with one continuous XSalsa20 key stream: key = the first 32 bytes of
that direction's Noise split key, nonce = the sender's 24-byte handshake-payload nonce. libsodium's
``crypto_stream_xsalsa20_xor_ic`` (from the copy pynacl bundles, through ctypes since pynacl does not
expose it) does the work; this class keeps the position so that messages can be any length.
"""

from __future__ import annotations

import ctypes

import nacl._sodium

_lib = ctypes.CDLL(nacl._sodium.__file__)
_xor_ic = _lib.crypto_stream_xsalsa20_xor_ic
_xor_ic.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulonglong, ctypes.c_char_p,
                    ctypes.c_uint64, ctypes.c_char_p]
_xor_ic.restype = ctypes.c_int

_BLOCK = 64
_CHUNK = 32 * 1024  # bytes XORed per call (a multiple of _BLOCK)


class XSalsa20Stream:
    """One direction's key stream; :meth:`update` XORs the next bytes of it into ``data``."""

    __slots__ = ("_key", "_nonce", "_pos")

    def __init__(self, key: bytes, nonce: bytes) -> None:
        if len(key) < 32 or len(nonce) != 24:
            raise ValueError("XSalsa20 takes a 32-byte key and a 24-byte nonce")
        self._key = bytes(key[:32])
        self._nonce = bytes(nonce)
        self._pos = 0

    def update(self, data: bytes | bytearray | memoryview) -> memoryview:
        """XOR ``data`` with the next bytes of the key stream (a view of a new buffer)."""
        n = len(data)
        if not n:
            return memoryview(b"")
        skip = self._pos % _BLOCK
        block = self._pos // _BLOCK
        total = skip + n
        buf = bytearray(total)
        # the buffer's address through a one-byte view of it: an array type of ``total`` bytes
        # (``c_char * total``) is a new ctypes type for each new length, about 10 µs to make
        c_buf = ctypes.c_char.from_buffer(buf)
        address = ctypes.addressof(c_buf)
        src = memoryview(data)
        # a chunk at a time, copied then XORed while it is in the cache: one pass over a buffer of a
        # megabyte and more ran at under half the speed (cache misses on both passes)
        start = 0
        while start < total:
            end = min(start + _CHUNK, total)
            buf[max(start, skip):end] = src[max(start - skip, 0):end - skip]
            if _xor_ic(address + start, address + start, end - start, self._nonce,
                       block + start // _BLOCK, self._key) != 0:  # pragma: no cover
                raise RuntimeError("crypto_stream_xsalsa20_xor_ic failed")
            start = end
        del c_buf
        self._pos += n
        return memoryview(buf)[skip:]
