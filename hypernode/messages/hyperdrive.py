"""hyperdrive-schemas 2.0.0, as hyperdrive 10.21.0 uses them: the Index (header metadata naming the content
feed), the Stat stored as the value of every file, folder and symlink entry, and a Mount. Generated from
protocol/hyperdrive.proto by protocol/generate.py: do not edit by hand, edit the schema and run the script."""

from __future__ import annotations

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['Index', 'Mount', 'Stat']

_new = object.__new__


class Index(_Message):
    """The Index message."""

    __slots__ = ('type', 'content')
    __match_args__ = ('type', 'content')

    type: str
    content: bytes | None

    def __init__(self, *, type: str, content: bytes | None = None) -> None:
        self.type = type
        self.content = content

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.type
        if v0 is None:
            raise ValueError('Index.type is required')
        out.append(10)
        sv0 = v0.encode()
        n = len(sv0)
        if n < 128:
            out.append(n)
        else:
            out += _ev(n)
        out += sv0
        v1 = self.content
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Index.content is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1

    @classmethod
    def decode(cls, buf: Buffer) -> Index:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Index(buf, 0, len(buf))


class Mount(_Message):
    """The Mount message."""

    __slots__ = ('key', 'version', 'hash', 'hypercore')
    __match_args__ = ('key', 'version', 'hash', 'hypercore')

    key: bytes
    version: int | None
    hash: bytes | None
    hypercore: bool | None

    def __init__(
        self,
        *,
        key: bytes,
        version: int | None = None,
        hash: bytes | None = None,
        hypercore: bool | None = None,
    ) -> None:
        self.key = key
        self.version = version
        self.hash = hash
        self.hypercore = hypercore

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
        v1 = self.version
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Mount.version: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)
        v2 = self.hash
        if v2 is not None:
            out.append(26)
            if not isinstance(v2, (bytes, bytearray, memoryview)):
                raise TypeError('Mount.hash is bytes')
            n = len(v2)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v2
        v3 = self.hypercore
        if v3 is not None:
            out.append(32)
            out.append(1 if v3 else 0)

    @classmethod
    def decode(cls, buf: Buffer) -> Mount:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Mount(buf, 0, len(buf))


class Stat(_Message):
    """The Stat message."""

    __slots__ = ('mode', 'uid', 'gid', 'size', 'blocks', 'offset', 'byteOffset', 'mtime', 'ctime',
                 'linkname', 'mount', 'metadata')
    __match_args__ = ('mode', 'uid', 'gid', 'size', 'blocks', 'offset', 'byteOffset', 'mtime', 'ctime',
                      'linkname', 'mount', 'metadata')

    mode: int
    uid: int | None
    gid: int | None
    size: int | None
    blocks: int | None
    offset: int | None
    byteOffset: int | None
    mtime: int | None
    ctime: int | None
    linkname: str | None
    mount: Mount | None
    metadata: dict[str, bytes]

    def __init__(
        self,
        *,
        mode: int,
        uid: int | None = None,
        gid: int | None = None,
        size: int | None = None,
        blocks: int | None = None,
        offset: int | None = None,
        byteOffset: int | None = None,
        mtime: int | None = None,
        ctime: int | None = None,
        linkname: str | None = None,
        mount: Mount | None = None,
        metadata: dict[str, bytes] | None = None,
    ) -> None:
        self.mode = mode
        self.uid = uid
        self.gid = gid
        self.size = size
        self.blocks = blocks
        self.offset = offset
        self.byteOffset = byteOffset
        self.mtime = mtime
        self.ctime = ctime
        self.linkname = linkname
        self.mount = mount
        self.metadata = {} if metadata is None else metadata

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.mode
        if v0 is None:
            raise ValueError('Stat.mode is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Stat.mode: negative value for uint32')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.uid
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Stat.uid: negative value for uint32')
                out.append(v1)
            else:
                out += _ev(v1)
        v2 = self.gid
        if v2 is not None:
            out.append(24)
            if v2 < 128:
                if v2 < 0:
                    raise ValueError('Stat.gid: negative value for uint32')
                out.append(v2)
            else:
                out += _ev(v2)
        v3 = self.size
        if v3 is not None:
            out.append(32)
            if v3 < 128:
                if v3 < 0:
                    raise ValueError('Stat.size: negative value for uint64')
                out.append(v3)
            else:
                out += _ev(v3)
        v4 = self.blocks
        if v4 is not None:
            out.append(40)
            if v4 < 128:
                if v4 < 0:
                    raise ValueError('Stat.blocks: negative value for uint64')
                out.append(v4)
            else:
                out += _ev(v4)
        v5 = self.offset
        if v5 is not None:
            out.append(48)
            if v5 < 128:
                if v5 < 0:
                    raise ValueError('Stat.offset: negative value for uint64')
                out.append(v5)
            else:
                out += _ev(v5)
        v6 = self.byteOffset
        if v6 is not None:
            out.append(56)
            if v6 < 128:
                if v6 < 0:
                    raise ValueError('Stat.byteOffset: negative value for uint64')
                out.append(v6)
            else:
                out += _ev(v6)
        v7 = self.mtime
        if v7 is not None:
            out.append(64)
            if v7 < 128:
                if v7 < 0:
                    raise ValueError('Stat.mtime: negative value for uint64')
                out.append(v7)
            else:
                out += _ev(v7)
        v8 = self.ctime
        if v8 is not None:
            out.append(72)
            if v8 < 128:
                if v8 < 0:
                    raise ValueError('Stat.ctime: negative value for uint64')
                out.append(v8)
            else:
                out += _ev(v8)
        v9 = self.linkname
        if v9 is not None:
            out.append(82)
            sv9 = v9.encode()
            n = len(sv9)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += sv9
        v10 = self.mount
        if v10 is not None:
            out.append(90)
            bv10 = bytearray()
            v10.encode_into(bv10)
            n = len(bv10)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += bv10
        v11 = self.metadata
        for k11, x11 in v11.items():
            e11 = bytearray()
            e11.append(10)
            sk11 = k11.encode()
            n = len(sk11)
            if n < 128:
                e11.append(n)
            else:
                e11 += _ev(n)
            e11 += sk11
            if x11 is not None:
                e11.append(18)
                if not isinstance(x11, (bytes, bytearray, memoryview)):
                    raise TypeError('Stat.metadata value is bytes')
                n = len(x11)
                if n < 128:
                    e11.append(n)
                else:
                    e11 += _ev(n)
                e11 += x11
            out.append(98)
            n = len(e11)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += e11

    @classmethod
    def decode(cls, buf: Buffer) -> Stat:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Stat(buf, 0, len(buf))


def _decode_Index(buf: bytes, pos: int, end: int) -> Index:
    v0: str | None = None
    v1: bytes | None = None
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
                    raise DecodeError('Index.type: length past the end')
                try:
                    v0 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Index.type: invalid UTF-8') from None
                pos = e
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Index.content: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Index: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Index: truncated') from None
    if pos > end:
        raise DecodeError('Index: a field runs past the end')
    if v0 is None:
        raise DecodeError('Index.type is required but missing')
    obj = _new(Index)
    obj.type = v0
    obj.content = v1
    return obj


def _decode_Mount(buf: bytes, pos: int, end: int) -> Mount:
    v0: bytes | None = None
    v1: int | None = None
    v2: bytes | None = None
    v3: bool | None = None
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
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Mount.hash: length past the end')
                v2 = buf[pos:e]
                pos = e
            elif tag == 32:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v3 = x != 0
            elif (tag >> 3) in (1, 2, 3, 4):
                raise DecodeError(f'Mount: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Mount: truncated') from None
    if pos > end:
        raise DecodeError('Mount: a field runs past the end')
    if v0 is None:
        raise DecodeError('Mount.key is required but missing')
    obj = _new(Mount)
    obj.key = v0
    obj.version = v1
    obj.hash = v2
    obj.hypercore = v3
    return obj


def _decode_Stat(buf: bytes, pos: int, end: int) -> Stat:
    v0: int | None = None
    v1: int | None = None
    v2: int | None = None
    v3: int | None = None
    v4: int | None = None
    v5: int | None = None
    v6: int | None = None
    v7: int | None = None
    v8: int | None = None
    v9: str | None = None
    v10: Mount | None = None
    v11: dict[str, bytes] = {}
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
                v0 = x
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif tag == 24:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v2 = x
            elif tag == 32:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v3 = x
            elif tag == 40:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v4 = x
            elif tag == 48:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v5 = x
            elif tag == 56:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v6 = x
            elif tag == 64:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v7 = x
            elif tag == 72:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v8 = x
            elif tag == 82:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Stat.linkname: length past the end')
                try:
                    v9 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Stat.linkname: invalid UTF-8') from None
                pos = e
            elif tag == 90:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Stat.mount: length past the end')
                v10 = _decode_Mount(buf, pos, e)
                pos = e
            elif tag == 98:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Stat.metadata: length past the end')
                mk11, mv11 = _decode_Stat_metadata_entry(buf, pos, e)
                v11[mk11] = mv11
                pos = e
            elif (tag >> 3) in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12):
                raise DecodeError(f'Stat: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Stat: truncated') from None
    if pos > end:
        raise DecodeError('Stat: a field runs past the end')
    if v0 is None:
        raise DecodeError('Stat.mode is required but missing')
    obj = _new(Stat)
    obj.mode = v0
    obj.uid = v1
    obj.gid = v2
    obj.size = v3
    obj.blocks = v4
    obj.offset = v5
    obj.byteOffset = v6
    obj.mtime = v7
    obj.ctime = v8
    obj.linkname = v9
    obj.mount = v10
    obj.metadata = v11
    return obj


def _decode_Stat_metadata_entry(buf: bytes, pos: int, end: int) -> tuple[str, bytes]:
    v0: str | None = None
    v1: bytes | None = None
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
                    raise DecodeError('Stat.metadata.key: length past the end')
                try:
                    v0 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Stat.metadata.key: invalid UTF-8') from None
                pos = e
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Stat.metadata.value: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Stat.metadata: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Stat.metadata: truncated') from None
    if pos > end:
        raise DecodeError('Stat.metadata: a field runs past the end')
    return ('' if v0 is None else v0), (b'' if v1 is None else v1)
