"""Framing of the hypercore-protocol stream: ``varint(length) || varint(channel << 4 | type) || body``.

A frame of length zero is a keep-alive ping. :class:`FrameDecoder` takes bytes in any chunking and
yields ``(channel, type, body)``; a frame longer than ``max_size`` (8 MiB, as JS) or a malformed
length/header raises :class:`FrameError` before anything is buffered for it.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypernode.errors import HypernodeError
from hypernode.varint import DecodeError, encode_varint, read_varint_partial

MAX_FRAME = 8 * 1024 * 1024
EXTENSION_TYPE = 15


class ProtocolError(HypernodeError):
    """The remote broke the wire protocol; the connection is over."""


class FrameError(ProtocolError):
    pass


varint = encode_varint


def encode_frame(channel: int, type_: int, body: bytes) -> bytes:
    header = varint((channel << 4) | type_)
    return varint(len(header) + len(body)) + header + body


class FrameDecoder:
    """Incremental frame parser (bytes in, frames out)."""

    def __init__(self, max_size: int = MAX_FRAME) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, bytes] | None]:
        """Yield each complete frame as ``(channel, type, body)``, or None for a keep-alive."""
        buf = self._buf
        buf += data
        pos = 0
        n = len(buf)
        try:
            while pos < n:
                length, p = _read_varint(buf, pos, n)
                if length is None:
                    break
                if length > self.max_size:
                    raise FrameError(f"frame of {length} bytes is over the {self.max_size}-byte cap")
                if length == 0:
                    pos = p
                    yield None
                    continue
                if p + length > n:
                    break
                header, h = _read_varint(buf, p, p + length)
                if header is None:
                    raise FrameError("frame header is not a valid varint")
                body = bytes(memoryview(buf)[h:p + length])
                pos = p + length
                yield header >> 4, header & 15, body
        finally:
            del buf[:pos]

    @property
    def buffered(self) -> int:
        return len(self._buf)


def _read_varint(buf: bytearray, pos: int, end: int) -> tuple[int | None, int]:
    try:
        return read_varint_partial(buf, pos, end)
    except DecodeError:
        raise FrameError("varint too long") from None
