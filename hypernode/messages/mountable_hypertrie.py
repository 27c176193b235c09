"""mountable-hypertrie 2.8.0: a mount recorded in a trie node's value. Generated from
protocol/mountable-hypertrie.proto by protocol/generate.py: do not edit by hand, edit the schema and run the
script."""

from __future__ import annotations

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['Mount']

_new = object.__new__


class Mount(_Message):
    """The Mount message."""

    __slots__ = ('key', 'localPath', 'version', 'remotePath', 'hash')
    __match_args__ = ('key', 'localPath', 'version', 'remotePath', 'hash')

    key: bytes
    localPath: str
    version: int | None
    remotePath: str | None
    hash: bytes | None

    def __init__(
        self,
        *,
        key: bytes,
        localPath: str,
        version: int | None = None,
        remotePath: str | None = None,
        hash: bytes | None = None,
    ) -> None:
        self.key = key
        self.localPath = localPath
        self.version = version
        self.remotePath = remotePath
        self.hash = hash

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.key
        if v0 is None:
            raise ValueError('Mount.key is required')
        out.append(10)
        if not isinstance(v0, (bytes, bytearray, memoryview)):
            raise TypeError('Mount.key is bytes')
        n = len(v0)
        if n < 128:
            out.append(n)
        else:
            out += _ev(n)
        out += v0
        v1 = self.localPath
        if v1 is None:
            raise ValueError('Mount.localPath is required')
        out.append(18)
        sv1 = v1.encode()
        n = len(sv1)
        if n < 128:
            out.append(n)
        else:
            out += _ev(n)
        out += sv1
        v2 = self.version
        if v2 is not None:
            out.append(24)
            if v2 < 128:
                if v2 < 0:
                    raise ValueError('Mount.version: negative value for uint64')
                out.append(v2)
            else:
                out += _ev(v2)
        v3 = self.remotePath
        if v3 is not None:
            out.append(34)
            sv3 = v3.encode()
            n = len(sv3)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += sv3
        v4 = self.hash
        if v4 is not None:
            out.append(42)
            if not isinstance(v4, (bytes, bytearray, memoryview)):
                raise TypeError('Mount.hash is bytes')
            n = len(v4)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v4

    @classmethod
    def decode(cls, buf: Buffer) -> Mount:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Mount(buf, 0, len(buf))


def _decode_Mount(buf: bytes, pos: int, end: int) -> Mount:
    v0: bytes | None = None
    v1: str | None = None
    v2: int | None = None
    v3: str | None = None
    v4: bytes | None = None
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
                    raise DecodeError('Mount.key: length past the end')
                v0 = buf[pos:e]
                pos = e
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Mount.localPath: length past the end')
                try:
                    v1 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Mount.localPath: invalid UTF-8') from None
                pos = e
            elif tag == 24:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v2 = x
            elif tag == 34:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Mount.remotePath: length past the end')
                try:
                    v3 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Mount.remotePath: invalid UTF-8') from None
                pos = e
            elif tag == 42:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Mount.hash: length past the end')
                v4 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2, 3, 4, 5):
                raise DecodeError(f'Mount: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Mount: truncated') from None
    if pos > end:
        raise DecodeError('Mount: a field runs past the end')
    if v0 is None:
        raise DecodeError('Mount.key is required but missing')
    if v1 is None:
        raise DecodeError('Mount.localPath is required but missing')
    obj = _new(Mount)
    obj.key = v0
    obj.localPath = v1
    obj.version = v2
    obj.remotePath = v3
    obj.hash = v4
    return obj
