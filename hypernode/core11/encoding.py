"""compact-encoding, the byte format of every hypercore 10/11 structure (manifests, signatures, messages).

:class:`Writer` appends values to a growing buffer and :class:`Reader` takes them off the front of one,
with the same layouts as the npm ``compact-encoding`` package (3.x):

- ``uint``: one byte up to 0xfc; else a marker byte 0xfd, 0xfe or 0xff followed by the value as a
  little-endian uint16, uint32 or uint64. Like JS, the reader accepts a longer form than needed, and
  values stop at 2**53 - 1 (JavaScript's safe integers) both ways.
- ``int`` (:meth:`Writer.zigzag`, :meth:`Reader.zigzag`): zig-zag (0, -1, 1, -2, ...) then ``uint``.
- ``uint8`` ... ``uint64``: fixed-width little endian (``uint32be``/``uint64be`` big endian).
- ``fixed(n)`` (``fixed32``, ``fixed64``): exactly n bytes, no length.
- ``buffer``: ``uint`` length then the bytes (``optional_buffer``: length 0 reads as ``None``).
- ``string``: a ``buffer`` of UTF-8.
- ``bool``: one byte, 0 or 1.
- ``array``: ``uint`` count (at most 0x100000, as JS) then the items.
- ``frame``: a ``uint`` byte length, then one value that must end exactly there.

Malformed input (too short, a count or value out of range, bad UTF-8, a bool that is neither 0 nor 1)
raises :class:`~hypernode.errors.DecodeError` and nothing else; JS is laxer on the last two (it
replaces bad UTF-8 and reads any byte but 1 as false), which no JS encoder produces. Values that cannot
be encoded raise ``ValueError``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import TypeVar

from hypernode.errors import DecodeError

__all__ = ["Reader", "Writer", "DecodeError", "MAX_SAFE_INTEGER", "MAX_ARRAY_LENGTH", "encode", "decode",
           "uint_length"]

T = TypeVar("T")

MAX_SAFE_INTEGER = 2**53 - 1
MAX_ARRAY_LENGTH = 0x100000
_MIN_SAFE_INT = -(2**52)
_MAX_SAFE_INT = 2**52 - 1

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_U32BE = struct.Struct(">I")
_U64BE = struct.Struct(">Q")


def _check_uint(n: int, limit: int = MAX_SAFE_INTEGER) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 0 or n > limit:
        raise ValueError(f"uint out of range: {n!r} (0 to {limit})")
    return n


def uint_length(n: int) -> int:
    """How many bytes ``uint`` takes for ``n``."""
    return 1 if n <= 0xFC else 3 if n <= 0xFFFF else 5 if n <= 0xFFFFFFFF else 9


class Writer:
    """Appends compact-encoded values; :meth:`getvalue` gives the bytes. Every method returns ``self``."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    def raw(self, data: bytes | bytearray | memoryview) -> Writer:
        """Bytes as they are (no length)."""
        self._buf += data
        return self

    def uint(self, n: int) -> Writer:
        _check_uint(n)
        if n <= 0xFC:
            self._buf.append(n)
        elif n <= 0xFFFF:
            self._buf.append(0xFD)
            self._buf += _U16.pack(n)
        elif n <= 0xFFFFFFFF:
            self._buf.append(0xFE)
            self._buf += _U32.pack(n)
        else:
            self._buf.append(0xFF)
            self._buf += _U64.pack(n)
        return self

    def zigzag(self, n: int) -> Writer:
        """compact-encoding's ``int``: zig-zag, then ``uint``."""
        if not isinstance(n, int) or isinstance(n, bool) or not _MIN_SAFE_INT <= n <= _MAX_SAFE_INT:
            raise ValueError(f"int out of range: {n!r}")
        return self.uint(-2 * n - 1 if n < 0 else 2 * n)

    def uint8(self, n: int) -> Writer:
        self._buf.append(_check_uint(n, 0xFF))
        return self

    def uint16(self, n: int) -> Writer:
        self._buf += _U16.pack(_check_uint(n, 0xFFFF))
        return self

    def uint24(self, n: int) -> Writer:
        self._buf += _check_uint(n, 0xFFFFFF).to_bytes(3, "little")
        return self

    def uint32(self, n: int) -> Writer:
        self._buf += _U32.pack(_check_uint(n, 0xFFFFFFFF))
        return self

    def uint40(self, n: int) -> Writer:
        self._buf += _check_uint(n, 2**40 - 1).to_bytes(5, "little")
        return self

    def uint48(self, n: int) -> Writer:
        self._buf += _check_uint(n, 2**48 - 1).to_bytes(6, "little")
        return self

    def uint56(self, n: int) -> Writer:
        self._buf += _check_uint(n).to_bytes(7, "little")
        return self

    def uint64(self, n: int) -> Writer:
        self._buf += _U64.pack(_check_uint(n))
        return self

    def uint32be(self, n: int) -> Writer:
        self._buf += _U32BE.pack(_check_uint(n, 0xFFFFFFFF))
        return self

    def uint64be(self, n: int) -> Writer:
        self._buf += _U64BE.pack(_check_uint(n))
        return self

    def fixed(self, data: bytes | bytearray | memoryview, n: int) -> Writer:
        if len(data) != n:
            raise ValueError(f"expected {n} bytes, got {len(data)}")
        self._buf += data
        return self

    def fixed32(self, data: bytes | bytearray | memoryview) -> Writer:
        return self.fixed(data, 32)

    def fixed64(self, data: bytes | bytearray | memoryview) -> Writer:
        return self.fixed(data, 64)

    def buffer(self, data: bytes | bytearray | memoryview) -> Writer:
        self.uint(len(data))
        self._buf += data
        return self

    def optional_buffer(self, data: bytes | bytearray | memoryview | None) -> Writer:
        """``None`` (and an empty buffer, as in JS) is written as length 0."""
        return self.buffer(data or b"")

    def string(self, s: str) -> Writer:
        return self.buffer(s.encode("utf-8"))

    def bool(self, b: bool) -> Writer:
        self._buf.append(1 if b else 0)
        return self

    def array(self, items: Iterable[T], write: Callable[[Writer, T], object]) -> Writer:
        """A count, then ``write(self, item)`` for each item."""
        items = list(items)
        if len(items) > MAX_ARRAY_LENGTH:
            raise ValueError(f"array of {len(items)} items (at most {MAX_ARRAY_LENGTH})")
        self.uint(len(items))
        for item in items:
            write(self, item)
        return self

    def frame(self, write: Callable[[Writer], object]) -> Writer:
        """``write`` into a sub-writer, then its byte length and its bytes."""
        inner = Writer()
        write(inner)
        return self.buffer(inner._buf)


class Reader:
    """Reads compact-encoded values from the front of ``data``; :attr:`pos` is the next byte to read."""

    __slots__ = ("_data", "pos", "end")

    def __init__(self, data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None) -> None:
        self._data = memoryview(data).cast("B")
        self.pos = start
        self.end = len(self._data) if end is None else end
        if not 0 <= self.pos <= self.end <= len(self._data):
            raise ValueError("bad reader bounds")

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def done(self) -> bool:
        return self.pos >= self.end

    def expect_end(self, what: str = "value") -> None:
        """Raise :class:`DecodeError` if bytes are left after the value."""
        if self.pos != self.end:
            raise DecodeError(f"{self.end - self.pos} bytes left over after the {what}")

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.end - self.pos < n:
            raise DecodeError(f"out of bounds: need {n} bytes, {self.end - self.pos} left")
        view = self._data[self.pos:self.pos + n]
        self.pos += n
        return view

    def raw(self, n: int | None = None) -> bytes:
        """The next ``n`` bytes (all the rest with ``None``)."""
        return bytes(self._take(self.end - self.pos if n is None else n))

    def uint8(self) -> int:
        if self.pos >= self.end:
            raise DecodeError("out of bounds: need 1 byte, 0 left")
        b = self._data[self.pos]
        self.pos += 1
        return b

    def uint16(self) -> int:
        return int(_U16.unpack(self._take(2))[0])

    def uint24(self) -> int:
        return int.from_bytes(self._take(3), "little")

    def uint32(self) -> int:
        return int(_U32.unpack(self._take(4))[0])

    def uint40(self) -> int:
        return int.from_bytes(self._take(5), "little")

    def uint48(self) -> int:
        return int.from_bytes(self._take(6), "little")

    def uint56(self) -> int:
        return _safe(int.from_bytes(self._take(7), "little"))

    def uint64(self) -> int:
        return _safe(int(_U64.unpack(self._take(8))[0]))

    def uint32be(self) -> int:
        return int(_U32BE.unpack(self._take(4))[0])

    def uint64be(self) -> int:
        return _safe(int(_U64BE.unpack(self._take(8))[0]))

    def uint(self) -> int:
        a = self.uint8()
        if a <= 0xFC:
            return a
        if a == 0xFD:
            return self.uint16()
        if a == 0xFE:
            return self.uint32()
        return self.uint64()

    def zigzag(self) -> int:
        """compact-encoding's ``int``."""
        n = self.uint()
        return -((n + 1) >> 1) if n & 1 else n >> 1

    def fixed(self, n: int) -> bytes:
        return bytes(self._take(n))

    def fixed32(self) -> bytes:
        return bytes(self._take(32))

    def fixed64(self) -> bytes:
        return bytes(self._take(64))

    def buffer(self) -> bytes:
        return bytes(self._take(self.uint()))

    def optional_buffer(self) -> bytes | None:
        n = self.uint()
        return bytes(self._take(n)) if n else None

    def string(self) -> str:
        data = self._take(self.uint())
        try:
            return str(data, "utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"string is not UTF-8: {e.reason}") from None

    def bool(self) -> bool:
        b = self.uint8()
        if b > 1:
            raise DecodeError(f"bool byte is {b}, not 0 or 1")
        return b == 1

    def array(self, read: Callable[[Reader], T]) -> list[T]:
        n = self.uint()
        if n > MAX_ARRAY_LENGTH:
            raise DecodeError(f"array of {n} items (at most {MAX_ARRAY_LENGTH})")
        return [read(self) for _ in range(n)]

    def frame(self, read: Callable[[Reader], T]) -> T:
        n = self.uint()
        if self.end - self.pos < n:
            raise DecodeError(f"out of bounds: frame of {n} bytes, {self.end - self.pos} left")
        inner = Reader(self._data, self.pos, self.pos + n)
        value = read(inner)
        inner.expect_end("framed value")
        self.pos += n
        return value


def _safe(n: int) -> int:
    if n > MAX_SAFE_INTEGER:
        raise DecodeError(f"uint {n} above 2**53 - 1")
    return n


def encode(write: Callable[[Writer, T], object], value: T) -> bytes:
    """The bytes of ``value`` as ``write`` lays it out."""
    w = Writer()
    write(w, value)
    return w.getvalue()


def decode(read: Callable[[Reader], T], data: bytes | bytearray | memoryview, *, exact: bool = True) -> T:
    """One value read from ``data``; with ``exact`` (the default) no bytes may be left over (JS's
    ``c.decode`` ignores them: pass ``exact=False`` for that)."""
    r = Reader(data)
    value = read(r)
    if exact:
        r.expect_end()
    return value
