"""Unsigned LEB128 varints, as protocol buffers and every length prefix of the Hypercore stack use them.

:func:`encode_varint` and :func:`decode_varint` for whole buffers (a negative number is encoded as its
64-bit two's complement, ten bytes, as protobuf's ``int64``), :func:`varint_length` for sizes, and
:func:`read_varint_partial` for incremental parsers (frames, the Noise handshake) that may hold only the
first bytes of a varint. Malformed input raises :class:`~hypernode.errors.DecodeError`.
"""

from __future__ import annotations

from hypernode.errors import DecodeError

__all__ = ["encode_varint", "decode_varint", "varint_length", "read_varint_partial", "DecodeError"]

_ONE_BYTE = [bytes((i,)) for i in range(128)]


def encode_varint(n: int) -> bytes:
    """The varint of ``n`` (0 <= n < 2**64; a negative ``n`` as its 64-bit two's complement)."""
    if n < 128:
        if n >= 0:
            return _ONE_BYTE[n]
        n += 1 << 64
        if n < 0:
            raise ValueError("varint below -2**63")
    elif n < 0x4000:  # the common lengths and indexes, without the loop
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    elif n < 0x200000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    elif n < 0x10000000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, ((n >> 14) & 0x7F) | 0x80, n >> 21))
    elif n >> 64:
        raise ValueError("varint over 64 bits")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_length(n: int) -> int:
    """How many bytes :func:`encode_varint` writes for ``n``."""
    if n < 0:
        return 10
    return max(1, (n.bit_length() + 6) // 7)


def decode_varint(buf: bytes | bytearray | memoryview, offset: int) -> tuple[int, int]:
    """``(value, offset after it)``; :class:`DecodeError` if truncated, longer than 10 bytes or over 64
    bits."""
    try:
        b = buf[offset]
    except IndexError:
        raise DecodeError("truncated varint") from None
    if b < 0x80:
        return b, offset + 1
    value = b & 0x7F
    shift = 7
    offset += 1
    while True:
        try:
            b = buf[offset]
        except IndexError:
            raise DecodeError("truncated varint") from None
        offset += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if value >> 64:
                raise DecodeError("varint overflows 64 bits")
            return value, offset
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes")


def read_varint_partial(buf: bytes | bytearray, pos: int, end: int,
                        max_bytes: int = 9) -> tuple[int | None, int]:
    """For incremental parsers: ``(value, offset after it)``, or ``(None, pos)`` if the varint is not
    complete before ``end``; :class:`DecodeError` if it runs past ``max_bytes`` bytes."""
    value = 0
    shift = 0
    i = pos
    while i < end:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if i - pos >= max_bytes:
            raise DecodeError("varint too long")
    return None, pos
