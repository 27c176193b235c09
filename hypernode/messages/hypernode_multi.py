"""hypernode's own records for the multi-drive view (hypernode/multi/): a vector of drive versions. Stored in
an entry's Stat metadata under "hypernode-clock" (the versions of the other drives holding that path that its
writer had seen), and in the hidden trie key "hypernode-multi-tags/<name>" (a tag of the multi-drive version).
JS hyperdrive reads such entries as ordinary metadata. Generated from protocol/hypernode-multi.proto by
protocol/generate.py: do not edit by hand, edit the schema and run the script."""

from __future__ import annotations

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['VersionVector']

_new = object.__new__


class VersionVector(_Message):
    """The VersionVector message."""

    __slots__ = ('entries',)
    __match_args__ = ('entries',)

    class Entry(_Message):
        """The Entry message."""

        __slots__ = ('key', 'version')
        __match_args__ = ('key', 'version')

        key: bytes
        version: int

        def __init__(self, *, key: bytes, version: int) -> None:
            self.key = key
            self.version = version

        def encode_into(self, out: bytearray) -> None:
            """Append the encoding to ``out``."""
            v0 = self.key
            if v0 is None:
                raise ValueError('VersionVector.Entry.key is required')
            out.append(10)
            if not isinstance(v0, (bytes, bytearray, memoryview)):
                raise TypeError('VersionVector.Entry.key is bytes')
            n = len(v0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v0
            v1 = self.version
            if v1 is None:
                raise ValueError('VersionVector.Entry.version is required')
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('VersionVector.Entry.version: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)

        @classmethod
        def decode(cls, buf: Buffer) -> VersionVector.Entry:
            """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
            if not isinstance(buf, bytes):
                buf = as_bytes(buf)
            return _decode_VersionVector_Entry(buf, 0, len(buf))

    entries: list[VersionVector.Entry]

    def __init__(self, *, entries: list[VersionVector.Entry] | None = None) -> None:
        self.entries = [] if entries is None else entries

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.entries
        for x0 in v0:
            out.append(10)
            bx0 = bytearray()
            x0.encode_into(bx0)
            n = len(bx0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += bx0

    @classmethod
    def decode(cls, buf: Buffer) -> VersionVector:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_VersionVector(buf, 0, len(buf))


def _decode_VersionVector(buf: bytes, pos: int, end: int) -> VersionVector:
    v0: list[VersionVector.Entry] = []
    try:
        while pos < end:
            tag = buf[pos]
            if tag < 128:
                pos += 1
            else:
                tag, pos = _dv(buf, pos)
            if tag == 10:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('VersionVector.entries: length past the end')
                v0.append(_decode_VersionVector_Entry(buf, pos, e))
                pos = e
            elif (tag >> 3) == 1:
                raise DecodeError(f'VersionVector: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('VersionVector: truncated') from None
    if pos > end:
        raise DecodeError('VersionVector: a field runs past the end')
    obj = _new(VersionVector)
    obj.entries = v0
    return obj


def _decode_VersionVector_Entry(buf: bytes, pos: int, end: int) -> VersionVector.Entry:
    v0: bytes | None = None
    v1: int | None = None
    try:
        while pos < end:
            tag = buf[pos]
            if tag < 128:
                pos += 1
            else:
                tag, pos = _dv(buf, pos)
            if tag == 10:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('VersionVector.Entry.key: length past the end')
                v0 = buf[pos:e]
                pos = e
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'VersionVector.Entry: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('VersionVector.Entry: truncated') from None
    if pos > end:
        raise DecodeError('VersionVector.Entry: a field runs past the end')
    if v0 is None:
        raise DecodeError('VersionVector.Entry.key is required but missing')
    if v1 is None:
        raise DecodeError('VersionVector.Entry.version is required but missing')
    obj = _new(VersionVector.Entry)
    obj.key = v0
    obj.version = v1
    return obj
