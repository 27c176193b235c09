"""The messages of the hypercore-protocol 8 stream (simple-hypercore-protocol 2.1.2), field numbers as in the
JS schema. Frame type ids are in the comment before each message; type 15 is an extension message (varint
extension id, then the payload), which has no schema of its own. Generated from
protocol/hypercore-protocol.proto by protocol/generate.py: do not edit by hand, edit the schema and run the
script."""

from __future__ import annotations

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['NoisePayload', 'Open', 'Options', 'Status', 'Have', 'Unhave', 'Want', 'Unwant', 'Request',
           'Cancel', 'Data', 'Close']

_new = object.__new__


class NoisePayload(_Message):
    """Inside each Noise handshake message: the nonce the sender's XSalsa20 stream uses."""

    __slots__ = ('nonce',)
    __match_args__ = ('nonce',)

    nonce: bytes

    def __init__(self, *, nonce: bytes) -> None:
        self.nonce = nonce

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.nonce
        if v0 is None:
            raise ValueError('NoisePayload.nonce is required')
        out.append(10)
        if not isinstance(v0, (bytes, bytearray, memoryview)):
            raise TypeError('NoisePayload.nonce is bytes')
        n = len(v0)
        if n < 128:
            out.append(n)
        else:
            out += _ev(n)
        out += v0

    @classmethod
    def decode(cls, buf: Buffer) -> NoisePayload:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_NoisePayload(buf, 0, len(buf))


class Open(_Message):
    """Type 0: open a channel for the feed with this discovery key."""

    __slots__ = ('discoveryKey', 'capability')
    __match_args__ = ('discoveryKey', 'capability')

    discoveryKey: bytes
    capability: bytes | None

    def __init__(self, *, discoveryKey: bytes, capability: bytes | None = None) -> None:
        self.discoveryKey = discoveryKey
        self.capability = capability

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.discoveryKey
        if v0 is None:
            raise ValueError('Open.discoveryKey is required')
        out.append(10)
        if not isinstance(v0, (bytes, bytearray, memoryview)):
            raise TypeError('Open.discoveryKey is bytes')
        n = len(v0)
        if n < 128:
            out.append(n)
        else:
            out += _ev(n)
        out += v0
        v1 = self.capability
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Open.capability is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1

    @classmethod
    def decode(cls, buf: Buffer) -> Open:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Open(buf, 0, len(buf))


class Options(_Message):
    """Type 1: extension names (sorted) and whether blocks are acknowledged."""

    __slots__ = ('extensions', 'ack')
    __match_args__ = ('extensions', 'ack')

    extensions: list[str]
    ack: bool | None

    def __init__(self, *, extensions: list[str] | None = None, ack: bool | None = None) -> None:
        self.extensions = [] if extensions is None else extensions
        self.ack = ack

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.extensions
        for x0 in v0:
            out.append(10)
            sx0 = x0.encode()
            n = len(sx0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += sx0
        v1 = self.ack
        if v1 is not None:
            out.append(16)
            out.append(1 if v1 else 0)

    @classmethod
    def decode(cls, buf: Buffer) -> Options:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Options(buf, 0, len(buf))


class Status(_Message):
    """Type 2: are we uploading / downloading (both true until said otherwise)."""

    __slots__ = ('uploading', 'downloading')
    __match_args__ = ('uploading', 'downloading')

    uploading: bool | None
    downloading: bool | None

    def __init__(self, *, uploading: bool | None = None, downloading: bool | None = None) -> None:
        self.uploading = uploading
        self.downloading = downloading

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.uploading
        if v0 is not None:
            out.append(8)
            out.append(1 if v0 else 0)
        v1 = self.downloading
        if v1 is not None:
            out.append(16)
            out.append(1 if v1 else 0)

    @classmethod
    def decode(cls, buf: Buffer) -> Status:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Status(buf, 0, len(buf))


class Have(_Message):
    """Type 3: blocks the sender has, as a range or an RLE bitfield."""

    __slots__ = ('start', 'length', 'bitfield', 'ack')
    __match_args__ = ('start', 'length', 'bitfield', 'ack')

    start: int
    length: int | None
    bitfield: bytes | None
    ack: bool | None

    def __init__(
        self,
        *,
        start: int,
        length: int | None = None,
        bitfield: bytes | None = None,
        ack: bool | None = None,
    ) -> None:
        self.start = start
        self.length = length
        self.bitfield = bitfield
        self.ack = ack

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.start
        if v0 is None:
            raise ValueError('Have.start is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Have.start: negative value for uint64')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.length
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Have.length: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)
        v2 = self.bitfield
        if v2 is not None:
            out.append(26)
            if not isinstance(v2, (bytes, bytearray, memoryview)):
                raise TypeError('Have.bitfield is bytes')
            n = len(v2)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v2
        v3 = self.ack
        if v3 is not None:
            out.append(32)
            out.append(1 if v3 else 0)

    @classmethod
    def decode(cls, buf: Buffer) -> Have:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Have(buf, 0, len(buf))


class Unhave(_Message):
    """Type 4: blocks the sender no longer has."""

    __slots__ = ('start', 'length')
    __match_args__ = ('start', 'length')

    start: int
    length: int | None

    def __init__(self, *, start: int, length: int | None = None) -> None:
        self.start = start
        self.length = length

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.start
        if v0 is None:
            raise ValueError('Unhave.start is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Unhave.start: negative value for uint64')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.length
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Unhave.length: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)

    @classmethod
    def decode(cls, buf: Buffer) -> Unhave:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Unhave(buf, 0, len(buf))


class Want(_Message):
    """Type 5: subscribe to Have messages for a range."""

    __slots__ = ('start', 'length')
    __match_args__ = ('start', 'length')

    start: int
    length: int | None

    def __init__(self, *, start: int, length: int | None = None) -> None:
        self.start = start
        self.length = length

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.start
        if v0 is None:
            raise ValueError('Want.start is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Want.start: negative value for uint64')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.length
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Want.length: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)

    @classmethod
    def decode(cls, buf: Buffer) -> Want:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Want(buf, 0, len(buf))


class Unwant(_Message):
    """Type 6: unsubscribe."""

    __slots__ = ('start', 'length')
    __match_args__ = ('start', 'length')

    start: int
    length: int | None

    def __init__(self, *, start: int, length: int | None = None) -> None:
        self.start = start
        self.length = length

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.start
        if v0 is None:
            raise ValueError('Unwant.start is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Unwant.start: negative value for uint64')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.length
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Unwant.length: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)

    @classmethod
    def decode(cls, buf: Buffer) -> Unwant:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Unwant(buf, 0, len(buf))


class Request(_Message):
    """Type 7: ask for a block (nodes: the digest of the tree nodes the requester has)."""

    __slots__ = ('index', 'bytes', 'hash', 'nodes')
    __match_args__ = ('index', 'bytes', 'hash', 'nodes')

    index: int
    bytes: int | None
    hash: bool | None
    nodes: int | None

    def __init__(
        self,
        *,
        index: int,
        bytes: int | None = None,
        hash: bool | None = None,
        nodes: int | None = None,
    ) -> None:
        self.index = index
        self.bytes = bytes
        self.hash = hash
        self.nodes = nodes

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.index
        if v0 is None:
            raise ValueError('Request.index is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Request.index: negative value for uint64')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.bytes
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Request.bytes: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)
        v2 = self.hash
        if v2 is not None:
            out.append(24)
            out.append(1 if v2 else 0)
        v3 = self.nodes
        if v3 is not None:
            out.append(32)
            if v3 < 128:
                if v3 < 0:
                    raise ValueError('Request.nodes: negative value for uint64')
                out.append(v3)
            else:
                out += _ev(v3)

    @classmethod
    def decode(cls, buf: Buffer) -> Request:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Request(buf, 0, len(buf))


class Cancel(_Message):
    """Type 8: withdraw a request."""

    __slots__ = ('index', 'bytes', 'hash')
    __match_args__ = ('index', 'bytes', 'hash')

    index: int
    bytes: int | None
    hash: bool | None

    def __init__(self, *, index: int, bytes: int | None = None, hash: bool | None = None) -> None:
        self.index = index
        self.bytes = bytes
        self.hash = hash

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.index
        if v0 is None:
            raise ValueError('Cancel.index is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Cancel.index: negative value for uint64')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.bytes
        if v1 is not None:
            out.append(16)
            if v1 < 128:
                if v1 < 0:
                    raise ValueError('Cancel.bytes: negative value for uint64')
                out.append(v1)
            else:
                out += _ev(v1)
        v2 = self.hash
        if v2 is not None:
            out.append(24)
            out.append(1 if v2 else 0)

    @classmethod
    def decode(cls, buf: Buffer) -> Cancel:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Cancel(buf, 0, len(buf))


class Data(_Message):
    """Type 9: a block with the merkle nodes that prove it and, when needed, the signature."""

    __slots__ = ('index', 'value', 'nodes', 'signature')
    __match_args__ = ('index', 'value', 'nodes', 'signature')

    class Node(_Message):
        """The Node message."""

        __slots__ = ('index', 'hash', 'size')
        __match_args__ = ('index', 'hash', 'size')

        index: int
        hash: bytes
        size: int

        def __init__(self, *, index: int, hash: bytes, size: int) -> None:
            self.index = index
            self.hash = hash
            self.size = size

        def encode_into(self, out: bytearray) -> None:
            """Append the encoding to ``out``."""
            v0 = self.index
            if v0 is None:
                raise ValueError('Data.Node.index is required')
            out.append(8)
            if v0 < 128:
                if v0 < 0:
                    raise ValueError('Data.Node.index: negative value for uint64')
                out.append(v0)
            else:
                out += _ev(v0)
            v1 = self.hash
            if v1 is None:
                raise ValueError('Data.Node.hash is required')
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Data.Node.hash is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1
            v2 = self.size
            if v2 is None:
                raise ValueError('Data.Node.size is required')
            out.append(24)
            if v2 < 128:
                if v2 < 0:
                    raise ValueError('Data.Node.size: negative value for uint64')
                out.append(v2)
            else:
                out += _ev(v2)

        @classmethod
        def decode(cls, buf: Buffer) -> Data.Node:
            """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
            if not isinstance(buf, bytes):
                buf = as_bytes(buf)
            return _decode_Data_Node(buf, 0, len(buf))

    index: int
    value: bytes | None
    nodes: list[Data.Node]
    signature: bytes | None

    def __init__(
        self,
        *,
        index: int,
        value: bytes | None = None,
        nodes: list[Data.Node] | None = None,
        signature: bytes | None = None,
    ) -> None:
        self.index = index
        self.value = value
        self.nodes = [] if nodes is None else nodes
        self.signature = signature

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.index
        if v0 is None:
            raise ValueError('Data.index is required')
        out.append(8)
        if v0 < 128:
            if v0 < 0:
                raise ValueError('Data.index: negative value for uint64')
            out.append(v0)
        else:
            out += _ev(v0)
        v1 = self.value
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Data.value is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1
        v2 = self.nodes
        for x2 in v2:
            out.append(26)
            bx2 = bytearray()
            x2.encode_into(bx2)
            n = len(bx2)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += bx2
        v3 = self.signature
        if v3 is not None:
            out.append(34)
            if not isinstance(v3, (bytes, bytearray, memoryview)):
                raise TypeError('Data.signature is bytes')
            n = len(v3)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v3

    @classmethod
    def decode(cls, buf: Buffer) -> Data:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Data(buf, 0, len(buf))


class Close(_Message):
    """Type 10: close a channel (discoveryKey only when no Open was sent on it)."""

    __slots__ = ('discoveryKey',)
    __match_args__ = ('discoveryKey',)

    discoveryKey: bytes | None

    def __init__(self, *, discoveryKey: bytes | None = None) -> None:
        self.discoveryKey = discoveryKey

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.discoveryKey
        if v0 is not None:
            out.append(10)
            if not isinstance(v0, (bytes, bytearray, memoryview)):
                raise TypeError('Close.discoveryKey is bytes')
            n = len(v0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v0

    @classmethod
    def decode(cls, buf: Buffer) -> Close:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Close(buf, 0, len(buf))


def _decode_NoisePayload(buf: bytes, pos: int, end: int) -> NoisePayload:
    v0: bytes | None = None
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
                    raise DecodeError('NoisePayload.nonce: length past the end')
                v0 = buf[pos:e]
                pos = e
            elif (tag >> 3) == 1:
                raise DecodeError(f'NoisePayload: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('NoisePayload: truncated') from None
    if pos > end:
        raise DecodeError('NoisePayload: a field runs past the end')
    if v0 is None:
        raise DecodeError('NoisePayload.nonce is required but missing')
    obj = _new(NoisePayload)
    obj.nonce = v0
    return obj


def _decode_Open(buf: bytes, pos: int, end: int) -> Open:
    v0: bytes | None = None
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
                    raise DecodeError('Open.discoveryKey: length past the end')
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
                    raise DecodeError('Open.capability: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Open: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Open: truncated') from None
    if pos > end:
        raise DecodeError('Open: a field runs past the end')
    if v0 is None:
        raise DecodeError('Open.discoveryKey is required but missing')
    obj = _new(Open)
    obj.discoveryKey = v0
    obj.capability = v1
    return obj


def _decode_Options(buf: bytes, pos: int, end: int) -> Options:
    v0: list[str] = []
    v1: bool | None = None
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
                    raise DecodeError('Options.extensions: length past the end')
                try:
                    v0.append(buf[pos:e].decode())
                except UnicodeDecodeError:
                    raise DecodeError('Options.extensions: invalid UTF-8') from None
                pos = e
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x != 0
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Options: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Options: truncated') from None
    if pos > end:
        raise DecodeError('Options: a field runs past the end')
    obj = _new(Options)
    obj.extensions = v0
    obj.ack = v1
    return obj


def _decode_Status(buf: bytes, pos: int, end: int) -> Status:
    v0: bool | None = None
    v1: bool | None = None
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
                v1 = x != 0
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Status: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Status: truncated') from None
    if pos > end:
        raise DecodeError('Status: a field runs past the end')
    obj = _new(Status)
    obj.uploading = v0
    obj.downloading = v1
    return obj


def _decode_Have(buf: bytes, pos: int, end: int) -> Have:
    v0: int | None = None
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
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Have.bitfield: length past the end')
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
                raise DecodeError(f'Have: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Have: truncated') from None
    if pos > end:
        raise DecodeError('Have: a field runs past the end')
    if v0 is None:
        raise DecodeError('Have.start is required but missing')
    if v1 is None:
        v1 = 1
    obj = _new(Have)
    obj.start = v0
    obj.length = v1
    obj.bitfield = v2
    obj.ack = v3
    return obj


def _decode_Unhave(buf: bytes, pos: int, end: int) -> Unhave:
    v0: int | None = None
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
                v0 = x
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Unhave: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Unhave: truncated') from None
    if pos > end:
        raise DecodeError('Unhave: a field runs past the end')
    if v0 is None:
        raise DecodeError('Unhave.start is required but missing')
    if v1 is None:
        v1 = 1
    obj = _new(Unhave)
    obj.start = v0
    obj.length = v1
    return obj


def _decode_Want(buf: bytes, pos: int, end: int) -> Want:
    v0: int | None = None
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
                v0 = x
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Want: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Want: truncated') from None
    if pos > end:
        raise DecodeError('Want: a field runs past the end')
    if v0 is None:
        raise DecodeError('Want.start is required but missing')
    obj = _new(Want)
    obj.start = v0
    obj.length = v1
    return obj


def _decode_Unwant(buf: bytes, pos: int, end: int) -> Unwant:
    v0: int | None = None
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
                v0 = x
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'Unwant: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Unwant: truncated') from None
    if pos > end:
        raise DecodeError('Unwant: a field runs past the end')
    if v0 is None:
        raise DecodeError('Unwant.start is required but missing')
    obj = _new(Unwant)
    obj.start = v0
    obj.length = v1
    return obj


def _decode_Request(buf: bytes, pos: int, end: int) -> Request:
    v0: int | None = None
    v1: int | None = None
    v2: bool | None = None
    v3: int | None = None
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
                v2 = x != 0
            elif tag == 32:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v3 = x
            elif (tag >> 3) in (1, 2, 3, 4):
                raise DecodeError(f'Request: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Request: truncated') from None
    if pos > end:
        raise DecodeError('Request: a field runs past the end')
    if v0 is None:
        raise DecodeError('Request.index is required but missing')
    obj = _new(Request)
    obj.index = v0
    obj.bytes = v1
    obj.hash = v2
    obj.nodes = v3
    return obj


def _decode_Cancel(buf: bytes, pos: int, end: int) -> Cancel:
    v0: int | None = None
    v1: int | None = None
    v2: bool | None = None
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
                v2 = x != 0
            elif (tag >> 3) in (1, 2, 3):
                raise DecodeError(f'Cancel: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Cancel: truncated') from None
    if pos > end:
        raise DecodeError('Cancel: a field runs past the end')
    if v0 is None:
        raise DecodeError('Cancel.index is required but missing')
    obj = _new(Cancel)
    obj.index = v0
    obj.bytes = v1
    obj.hash = v2
    return obj


def _decode_Data(buf: bytes, pos: int, end: int) -> Data:
    v0: int | None = None
    v1: bytes | None = None
    v2: list[Data.Node] = []
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
                    raise DecodeError('Data.value: length past the end')
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
                    raise DecodeError('Data.nodes: length past the end')
                v2.append(_decode_Data_Node(buf, pos, e))
                pos = e
            elif tag == 34:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Data.signature: length past the end')
                v3 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2, 3, 4):
                raise DecodeError(f'Data: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Data: truncated') from None
    if pos > end:
        raise DecodeError('Data: a field runs past the end')
    if v0 is None:
        raise DecodeError('Data.index is required but missing')
    obj = _new(Data)
    obj.index = v0
    obj.value = v1
    obj.nodes = v2
    obj.signature = v3
    return obj


def _decode_Data_Node(buf: bytes, pos: int, end: int) -> Data.Node:
    v0: int | None = None
    v1: bytes | None = None
    v2: int | None = None
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
                    raise DecodeError('Data.Node.hash: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif tag == 24:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v2 = x
            elif (tag >> 3) in (1, 2, 3):
                raise DecodeError(f'Data.Node: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Data.Node: truncated') from None
    if pos > end:
        raise DecodeError('Data.Node: a field runs past the end')
    if v0 is None:
        raise DecodeError('Data.Node.index is required but missing')
    if v1 is None:
        raise DecodeError('Data.Node.hash is required but missing')
    if v2 is None:
        raise DecodeError('Data.Node.size is required but missing')
    obj = _new(Data.Node)
    obj.index = v0
    obj.hash = v1
    obj.size = v2
    return obj


def _decode_Close(buf: bytes, pos: int, end: int) -> Close:
    v0: bytes | None = None
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
                    raise DecodeError('Close.discoveryKey: length past the end')
                v0 = buf[pos:e]
                pos = e
            elif (tag >> 3) == 1:
                raise DecodeError(f'Close: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Close: truncated') from None
    if pos > end:
        raise DecodeError('Close: a field runs past the end')
    obj = _new(Close)
    obj.discoveryKey = v0
    return obj
