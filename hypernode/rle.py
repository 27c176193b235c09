"""bitfield-rle: the run-length encoding of bitfields in Have messages.

The encoded form is a sequence of varints. An odd varint ``v`` is a run: ``v >> 2`` bytes that are all
``0xFF`` if bit 1 is set, else all zero. An even varint ``v`` is a literal: the next ``v >> 1`` bytes
are copied as they are. Trailing zero bytes are dropped. The encoder makes the same choices as the npm
package (a run is used only where it is cheaper than keeping the bytes literal), so it gives the same
bytes.
"""

from __future__ import annotations

import re

from hypernode.errors import HypernodeError
from hypernode.varint import DecodeError, decode_varint, varint_length
from hypernode.varint import encode_varint as _varint

_RUNS = re.compile(rb"\x00+|\xff+")


class RLEError(HypernodeError, ValueError):
    """A malformed or oversized RLE bitfield."""


def encode(bits: bytes | bytearray | memoryview) -> bytes:
    bits = bytes(bits)
    n = len(bits.rstrip(b"\x00"))
    out = bytearray()
    flushed = 0  # input consumed so far

    def run(i: int, length: int, bit: int) -> None:
        nonlocal flushed
        head = i - length - flushed
        head_cost = varint_length(2 * head) + head if head else 0
        code = 4 * length + (2 if bit else 0) + 1
        if head_cost + varint_length(code) >= varint_length(2 * (i - flushed)) + i - flushed:
            return  # cheaper to leave these bytes in the literal
        if head:
            out.extend(_varint(2 * head))
            out.extend(bits[flushed:i - length])
        out.extend(_varint(code))
        flushed = i

    # the candidate runs are the maximal runs of 0x00 or 0xFF bytes, found by the regex engine (a
    # byte-at-a-time loop made a Have of 1M blocks cost milliseconds: a Want flood burnt CPU)
    for m in _RUNS.finditer(bits, 0, n):
        a, b = m.span()
        run(b, b - a, bits[a])
    if n - flushed:
        out.extend(_varint(2 * (n - flushed)))
        out.extend(bits[flushed:n])
    return bytes(out)


def decode(buf: bytes | bytearray | memoryview, max_bytes: int = 1 << 24, align: int = 1) -> bytes:
    """Decode; the result is padded with zeros to a multiple of ``align`` bytes.

    Raises :class:`RLEError` for a truncated varint, a literal running past the end, or a result over
    ``max_bytes`` (so a few bytes from the wire cannot ask for gigabytes).
    """
    buf = bytes(buf)
    out = bytearray()
    off = 0
    n = len(buf)
    while off < n:
        try:
            value, off = decode_varint(buf, off)
        except DecodeError as e:
            raise RLEError(f"bad varint in RLE bitfield: {e}") from None
        if value & 1:
            length = value >> 2
            if len(out) + length > max_bytes:
                raise RLEError("RLE bitfield too large")
            out.extend((b"\xff" if value & 2 else b"\x00") * length)
        else:
            length = value >> 1
            if off + length > n:
                raise RLEError("RLE literal runs past the end")
            if len(out) + length > max_bytes:
                raise RLEError("RLE bitfield too large")
            out.extend(buf[off:off + length])
            off += length
    if align > 1 and len(out) % align:
        out.extend(bytes(align - len(out) % align))
    return bytes(out)
