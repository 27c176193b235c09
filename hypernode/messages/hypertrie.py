"""hypertrie 5.1.3: the header block (DEP-0007) and the trie node stored in every later block of the metadata
feed, plus the messages of its extension for remote gets and iterators. Generated from
protocol/hypertrie.proto by protocol/generate.py: do not edit by hand, edit the schema and run the script."""

from __future__ import annotations

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['Header', 'Node', 'Extension']

_new = object.__new__


class Header(_Message):
    """The Header message."""

    __slots__ = ('type', 'metadata', 'subtype')
    __match_args__ = ('type', 'metadata', 'subtype')

    type: str
    metadata: bytes | None
    subtype: str | None

    def __init__(self, *, type: str, metadata: bytes | None = None, subtype: str | None = None) -> None:
        self.type = type
        self.metadata = metadata
        self.subtype = subtype

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.type
        if v0 is None:
            raise ValueError('Header.type is required')
        out.append(10)
        sv0 = v0.encode()
        n = len(sv0)
        if n < 128:
            out.append(n)
        else:
            out += _ev(n)
        out += sv0
        v1 = self.metadata
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Header.metadata is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1
        v2 = self.subtype
        if v2 is not None:
            out.append(26)
            sv2 = v2.encode()
            n = len(sv2)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += sv2

    @classmethod
    def decode(cls, buf: Buffer) -> Header:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Header(buf, 0, len(buf))


class Node(_Message):
    """The Node message."""

    __slots__ = ('key', 'valueBuffer', 'trieBuffer', 'seq', 'flags')
    __match_args__ = ('key', 'valueBuffer', 'trieBuffer', 'seq', 'flags')

    key: str
    valueBuffer: bytes | None
    trieBuffer: bytes | None
    seq: int | None
    flags: int | None

    def __init__(
        self,
        *,
        key: str,
        valueBuffer: bytes | None = None,
        trieBuffer: bytes | None = None,
        seq: int | None = None,
        flags: int | None = None,
    ) -> None:
        self.key = key
        self.valueBuffer = valueBuffer
        self.trieBuffer = trieBuffer
        self.seq = seq
        self.flags = flags

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.key
        if v0 is None:
            raise ValueError('Node.key is required')
        out.append(10)
        sv0 = v0.encode()
        n = len(sv0)
        if n < 128:
            out.append(n)
        else:
            out += _ev(n)
        out += sv0
        v1 = self.valueBuffer
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Node.valueBuffer is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1
        v2 = self.trieBuffer
        if v2 is not None:
            out.append(26)
            if not isinstance(v2, (bytes, bytearray, memoryview)):
                raise TypeError('Node.trieBuffer is bytes')
            n = len(v2)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v2
        v3 = self.seq
        if v3 is not None:
            out.append(32)
            if v3 < 128:
                if v3 < 0:
                    raise ValueError('Node.seq: negative value for uint64')
                out.append(v3)
            else:
                out += _ev(v3)
        v4 = self.flags
        if v4 is not None:
            out.append(40)
            if v4 < 128:
                if v4 < 0:
                    raise ValueError('Node.flags: negative value for uint64')
                out.append(v4)
            else:
                out += _ev(v4)

    @classmethod
    def decode(cls, buf: Buffer) -> Node:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Node(buf, 0, len(buf))


class Extension(_Message):
    """The Extension message."""

    __slots__ = ('cache', 'iterator', 'get')
    __match_args__ = ('cache', 'iterator', 'get')

    class Get(_Message):
        """The Get message."""

        __slots__ = ('head', 'key')
        __match_args__ = ('head', 'key')

        head: int | None
        key: str | None

        def __init__(self, *, head: int | None = None, key: str | None = None) -> None:
            self.head = head
            self.key = key

        def encode_into(self, out: bytearray) -> None:
            """Append the encoding to ``out``."""
            v0 = self.head
            if v0 is not None:
                out.append(8)
                if v0 < 128:
                    if v0 < 0:
                        raise ValueError('Extension.Get.head: negative value for uint64')
                    out.append(v0)
                else:
                    out += _ev(v0)
            v1 = self.key
            if v1 is not None:
                out.append(18)
                sv1 = v1.encode()
                n = len(sv1)
                if n < 128:
                    out.append(n)
                else:
                    out += _ev(n)
                out += sv1

        @classmethod
        def decode(cls, buf: Buffer) -> Extension.Get:
            """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
            if not isinstance(buf, bytes):
                buf = as_bytes(buf)
            return _decode_Extension_Get(buf, 0, len(buf))

    class Iterator(_Message):
        """The Iterator message."""

        __slots__ = ('head', 'key', 'flags', 'checkpoint')
        __match_args__ = ('head', 'key', 'flags', 'checkpoint')

        head: int | None
        key: str | None
        flags: int | None
        checkpoint: bytes | None

        def __init__(
            self,
            *,
            head: int | None = None,
            key: str | None = None,
            flags: int | None = None,
            checkpoint: bytes | None = None,
        ) -> None:
            self.head = head
            self.key = key
            self.flags = flags
            self.checkpoint = checkpoint

        def encode_into(self, out: bytearray) -> None:
            """Append the encoding to ``out``."""
            v0 = self.head
            if v0 is not None:
                out.append(8)
                if v0 < 128:
                    if v0 < 0:
                        raise ValueError('Extension.Iterator.head: negative value for uint64')
                    out.append(v0)
                else:
                    out += _ev(v0)
            v1 = self.key
            if v1 is not None:
                out.append(18)
                sv1 = v1.encode()
                n = len(sv1)
                if n < 128:
                    out.append(n)
                else:
                    out += _ev(n)
                out += sv1
            v2 = self.flags
            if v2 is not None:
                out.append(24)
                if v2 < 128:
                    if v2 < 0:
                        raise ValueError('Extension.Iterator.flags: negative value for uint64')
                    out.append(v2)
                else:
                    out += _ev(v2)
            v3 = self.checkpoint
            if v3 is not None:
                out.append(34)
                if not isinstance(v3, (bytes, bytearray, memoryview)):
                    raise TypeError('Extension.Iterator.checkpoint is bytes')
                n = len(v3)
                if n < 128:
                    out.append(n)
                else:
                    out += _ev(n)
                out += v3

        @classmethod
        def decode(cls, buf: Buffer) -> Extension.Iterator:
            """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
            if not isinstance(buf, bytes):
                buf = as_bytes(buf)
            return _decode_Extension_Iterator(buf, 0, len(buf))

    class Cache(_Message):
        """The Cache message."""

        __slots__ = ('start', 'end', 'blocks')
        __match_args__ = ('start', 'end', 'blocks')

        start: int
        end: int
        blocks: list[int]

        def __init__(self, *, start: int, end: int, blocks: list[int] | None = None) -> None:
            self.start = start
            self.end = end
            self.blocks = [] if blocks is None else blocks

        def encode_into(self, out: bytearray) -> None:
            """Append the encoding to ``out``."""
            v0 = self.start
            if v0 is None:
                raise ValueError('Extension.Cache.start is required')
            out.append(8)
            if v0 < 128:
                if v0 < 0:
                    raise ValueError('Extension.Cache.start: negative value for uint64')
                out.append(v0)
            else:
                out += _ev(v0)
            v1 = self.end
            if v1 is None:
                raise ValueError('Extension.Cache.end is required')
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Extension.Cache.end: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)
            v2 = self.blocks
            if v2:
                p2 = bytearray()
                for x2 in v2:
                    if x2 < 128:
                        if x2 < 0:
                            raise ValueError('Extension.Cache.blocks: negative value for uint64')
                        p2.append(x2)
                    else:
                        p2 += _ev(x2)
                out.append(26)
                n = len(p2)
                if n < 128:
                    out.append(n)
                else:
                    out += _ev(n)
                out += p2

        @classmethod
        def decode(cls, buf: Buffer) -> Extension.Cache:
            """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
            if not isinstance(buf, bytes):
                buf = as_bytes(buf)
            return _decode_Extension_Cache(buf, 0, len(buf))

    cache: Extension.Cache | None
    iterator: Extension.Iterator | None
    get: Extension.Get | None

    def __init__(
        self,
        *,
        cache: Extension.Cache | None = None,
        iterator: Extension.Iterator | None = None,
        get: Extension.Get | None = None,
    ) -> None:
        self.cache = cache
        self.iterator = iterator
        self.get = get

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.cache
        if v0 is not None:
            out.append(10)
            bv0 = bytearray()
            v0.encode_into(bv0)
            n = len(bv0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += bv0
        v1 = self.iterator
        if v1 is not None:
            out.append(18)
            bv1 = bytearray()
            v1.encode_into(bv1)
            n = len(bv1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += bv1
        v2 = self.get
        if v2 is not None:
            out.append(26)
            bv2 = bytearray()
            v2.encode_into(bv2)
            n = len(bv2)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += bv2

    @classmethod
    def decode(cls, buf: Buffer) -> Extension:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Extension(buf, 0, len(buf))


def _decode_Header(buf: bytes, pos: int, end: int) -> Header:
    v0: str | None = None
    v1: bytes | None = None
    v2: str | None = None
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
                    raise DecodeError('Header.type: length past the end')
                try:
                    v0 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Header.type: invalid UTF-8') from None
                pos = e
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Header.metadata: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Header.subtype: length past the end')
                try:
                    v2 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Header.subtype: invalid UTF-8') from None
                pos = e
            elif (tag >> 3) in (1, 2, 3):
                raise DecodeError(f'Header: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Header: truncated') from None
    if pos > end:
        raise DecodeError('Header: a field runs past the end')
    if v0 is None:
        raise DecodeError('Header.type is required but missing')
    obj = _new(Header)
    obj.type = v0
    obj.metadata = v1
    obj.subtype = v2
    return obj


def _decode_Node(buf: bytes, pos: int, end: int) -> Node:
    v0: str | None = None
    v1: bytes | None = None
    v2: bytes | None = None
    v3: int | None = None
    v4: int | None = None
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
                    raise DecodeError('Node.key: length past the end')
                try:
                    v0 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Node.key: invalid UTF-8') from None
                pos = e
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Node.valueBuffer: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Node.trieBuffer: length past the end')
                v2 = buf[pos:e]
                pos = e
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
            elif (tag >> 3) in (1, 2, 3, 4, 5):
                raise DecodeError(f'Node: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Node: truncated') from None
    if pos > end:
        raise DecodeError('Node: a field runs past the end')
    if v0 is None:
        raise DecodeError('Node.key is required but missing')
    obj = _new(Node)
    obj.key = v0
    obj.valueBuffer = v1
    obj.trieBuffer = v2
    obj.seq = v3
    obj.flags = v4
    return obj


def _decode_Extension(buf: bytes, pos: int, end: int) -> Extension:
    v0: Extension.Cache | None = None
    v1: Extension.Iterator | None = None
    v2: Extension.Get | None = None
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
                    raise DecodeError('Extension.cache: length past the end')
                v0 = _decode_Extension_Cache(buf, pos, e)
                pos = e
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Extension.iterator: length past the end')
                v1 = _decode_Extension_Iterator(buf, pos, e)
                pos = e
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Extension.get: length past the end')
                v2 = _decode_Extension_Get(buf, pos, e)
                pos = e
            elif (tag >> 3) in (1, 2, 3):
                raise DecodeError(f'Extension: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Extension: truncated') from None
    if pos > end:
        raise DecodeError('Extension: a field runs past the end')
    obj = _new(Extension)
    obj.cache = v0
    obj.iterator = v1
    obj.get = v2
    return obj


def _decode_Extension_Get(buf: bytes, pos: int, end: int) -> Extension.Get:
    v0: int | None = None
    v1: str | None = None
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
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Extension.Get.key: length past the end')
                try:
                    v1 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Extension.Get.key: invalid UTF-8') from None
                pos = e
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Extension.Get: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Extension.Get: truncated') from None
    if pos > end:
        raise DecodeError('Extension.Get: a field runs past the end')
    obj = _new(Extension.Get)
    obj.head = v0
    obj.key = v1
    return obj


def _decode_Extension_Iterator(buf: bytes, pos: int, end: int) -> Extension.Iterator:
    v0: int | None = None
    v1: str | None = None
    v2: int | None = None
    v3: bytes | None = None
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
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Extension.Iterator.key: length past the end')
                try:
                    v1 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Extension.Iterator.key: invalid UTF-8') from None
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
                    raise DecodeError('Extension.Iterator.checkpoint: length past the end')
                v3 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2, 3, 4):
                raise DecodeError(f'Extension.Iterator: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Extension.Iterator: truncated') from None
    if pos > end:
        raise DecodeError('Extension.Iterator: a field runs past the end')
    obj = _new(Extension.Iterator)
    obj.head = v0
    obj.key = v1
    obj.flags = v2
    obj.checkpoint = v3
    return obj


def _decode_Extension_Cache(buf: bytes, pos: int, end: int) -> Extension.Cache:
    v0: int | None = None
    v1: int | None = None
    v2: list[int] = []
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
                v2.append(x)
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Extension.Cache.blocks: length past the end')
                while pos < e:
                    x = buf[pos]
                    if x < 128:
                        pos += 1
                    else:
                        x, pos = _dv(buf, pos)
                    v2.append(x)
                if pos != e:
                    raise DecodeError('Extension.Cache.blocks: packed value runs past its field')
            elif (tag >> 3) in (1, 2, 3):
                raise DecodeError(f'Extension.Cache: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Extension.Cache: truncated') from None
    if pos > end:
        raise DecodeError('Extension.Cache: a field runs past the end')
    if v0 is None:
        raise DecodeError('Extension.Cache.start is required but missing')
    if v1 is None:
        raise DecodeError('Extension.Cache.end is required but missing')
    obj = _new(Extension.Cache)
    obj.start = v0
    obj.end = v1
    obj.blocks = v2
    return obj
