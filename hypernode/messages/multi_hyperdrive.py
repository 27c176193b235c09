"""multi-hyperdrive 1.1.4: the value of the hidden trie key ".tombstones/<path>" that hides a path of another
drive in the merged view. `timestamp` holds Date.now() in milliseconds, which is over 2^32: JS's codec writes
and reads uint32 as a whole varint, unclipped, and so does hypernode (hypernode/messages/). Generated from
protocol/multi-hyperdrive.proto by protocol/generate.py: do not edit by hand, edit the schema and run the
script."""

from __future__ import annotations

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['Tombstone']

_new = object.__new__


class Tombstone(_Message):
    """The Tombstone message."""

    __slots__ = ('active', 'timestamp')
    __match_args__ = ('active', 'timestamp')

    active: bool
    timestamp: int | None

    def __init__(self, *, active: bool, timestamp: int | None = None) -> None:
        self.active = active
        self.timestamp = timestamp

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.active
        if v0 is None:
            raise ValueError('Tombstone.active is required')
        out.append(8)
        out.append(1 if v0 else 0)
        v1 = self.timestamp
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Tombstone.timestamp: negative value for uint32')
                out.append(v1)
            else:
                out += _ev(v1)

    @classmethod
    def decode(cls, buf: Buffer) -> Tombstone:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Tombstone(buf, 0, len(buf))


def _decode_Tombstone(buf: bytes, pos: int, end: int) -> Tombstone:
    v0: bool | None = None
    v1: int | None = None
    try:
        while pos < end:
            tag = buf[pos]
            if tag < 128:
                pos += 1
            else:
                tag, pos = _dv(buf, pos)
            if tag == 8:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v0 = x != 0
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Tombstone: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Tombstone: truncated') from None
    if pos > end:
        raise DecodeError('Tombstone: a field runs past the end')
    if v0 is None:
        raise DecodeError('Tombstone.active is required but missing')
    obj = _new(Tombstone)
    obj.active = v0
    obj.timestamp = v1
    return obj
