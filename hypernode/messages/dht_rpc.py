"""The UDP messages of dht-rpc 4.9.6 (the RPC layer under @hyperswarm/dht 4), field numbers as in the JS
schema. One message per datagram. The JS schema declares TYPE at top level; here it is nested in Message,
which changes nothing on the wire (an enum is a varint). Generated from protocol/dht-rpc.proto by
protocol/generate.py: do not edit by hand, edit the schema and run the script."""

from __future__ import annotations

from enum import IntEnum

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['Holepunch', 'Message']

_new = object.__new__


class Holepunch(_Message):
    """Value of a `_holepunch` query: relay to `to`, or (relayed) a punch `from` that peer."""

    __slots__ = ('from_', 'to')
    __match_args__ = ('from_', 'to')

    #: ipv4-peers: 4 address bytes + 2 port bytes, big-endian
    from_: bytes | None
    to: bytes | None

    def __init__(self, *, from_: bytes | None = None, to: bytes | None = None) -> None:
        self.from_ = from_
        self.to = to

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.from_
        if v0 is not None:
            out.append(18)
            if not isinstance(v0, (bytes, bytearray, memoryview)):
                raise TypeError('Holepunch.from is bytes')
            n = len(v0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v0
        v1 = self.to
        if v1 is not None:
            out.append(26)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Holepunch.to is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1

    @classmethod
    def decode(cls, buf: Buffer) -> Holepunch:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Holepunch(buf, 0, len(buf))


class Message(_Message):
    """The Message message."""

    __slots__ = ('version', 'type', 'rid', 'to', 'id', 'target', 'closerNodes', 'roundtripToken', 'command',
                 'error', 'value')
    __match_args__ = ('version', 'type', 'rid', 'to', 'id', 'target', 'closerNodes', 'roundtripToken',
                      'command', 'error', 'value')

    class TYPE(IntEnum):
        """The values of the TYPE enum."""

        QUERY = 1
        #: needs the roundtripToken the receiver gave the sender in a response
        UPDATE = 2
        RESPONSE = 3

    #: 1; a message without it (or older) is treated as ephemeral
    version: int | None
    type: int
    #: request id, 0..65535, echoed in the response
    rid: int
    #: the receiver's address as the sender sees it (ipv4-peers, 6 bytes)
    to: bytes | None
    #: the sender's 32-byte node id; absent when it is ephemeral
    id: bytes | None
    #: the 32-byte key a query is about
    target: bytes | None
    #: ipv4-peers with 32-byte ids: 38 bytes per node
    closerNodes: bytes | None
    roundtripToken: bytes | None
    #: _ping, _find_node, _holepunch, or a command (peers, ...)
    command: str | None
    error: str | None
    #: the command's input (queries, updates) or output (responses)
    value: bytes | None

    def __init__(
        self,
        *,
        version: int | None = None,
        type: int,
        rid: int,
        to: bytes | None = None,
        id: bytes | None = None,
        target: bytes | None = None,
        closerNodes: bytes | None = None,
        roundtripToken: bytes | None = None,
        command: str | None = None,
        error: str | None = None,
        value: bytes | None = None,
    ) -> None:
        self.version = version
        self.type = type
        self.rid = rid
        self.to = to
        self.id = id
        self.target = target
        self.closerNodes = closerNodes
        self.roundtripToken = roundtripToken
        self.command = command
        self.error = error
        self.value = value

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.version
        if v0 is not None:
            out.append(88)
            if v0 < 128:
                if v0 < 0:
                    raise ValueError('Message.version: negative value for uint64')
                out.append(v0)
            else:
                out += _ev(v0)
        v1 = self.type
        if v1 is None:
            raise ValueError('Message.type is required')
        out.append(8)
        if v1 < 128:
            if v1 < 0:
                raise ValueError('Message.type: negative value for TYPE')
            out.append(v1)
        else:
            out += _ev(v1)
        v2 = self.rid
        if v2 is None:
            raise ValueError('Message.rid is required')
        out.append(16)
        if v2 < 128:
            if v2 < 0:
                raise ValueError('Message.rid: negative value for uint64')
            out.append(v2)
        else:
            out += _ev(v2)
        v3 = self.to
        if v3 is not None:
            out.append(82)
            if not isinstance(v3, (bytes, bytearray, memoryview)):
                raise TypeError('Message.to is bytes')
            n = len(v3)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v3
        v4 = self.id
        if v4 is not None:
            out.append(26)
            if not isinstance(v4, (bytes, bytearray, memoryview)):
                raise TypeError('Message.id is bytes')
            n = len(v4)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v4
        v5 = self.target
        if v5 is not None:
            out.append(34)
            if not isinstance(v5, (bytes, bytearray, memoryview)):
                raise TypeError('Message.target is bytes')
            n = len(v5)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v5
        v6 = self.closerNodes
        if v6 is not None:
            out.append(42)
            if not isinstance(v6, (bytes, bytearray, memoryview)):
                raise TypeError('Message.closerNodes is bytes')
            n = len(v6)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v6
        v7 = self.roundtripToken
        if v7 is not None:
            out.append(50)
            if not isinstance(v7, (bytes, bytearray, memoryview)):
                raise TypeError('Message.roundtripToken is bytes')
            n = len(v7)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v7
        v8 = self.command
        if v8 is not None:
            out.append(58)
            sv8 = v8.encode()
            n = len(sv8)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += sv8
        v9 = self.error
        if v9 is not None:
            out.append(66)
            sv9 = v9.encode()
            n = len(sv9)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += sv9
        v10 = self.value
        if v10 is not None:
            out.append(74)
            if not isinstance(v10, (bytes, bytearray, memoryview)):
                raise TypeError('Message.value is bytes')
            n = len(v10)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v10

    @classmethod
    def decode(cls, buf: Buffer) -> Message:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Message(buf, 0, len(buf))


def _decode_Holepunch(buf: bytes, pos: int, end: int) -> Holepunch:
    v0: bytes | None = None
    v1: bytes | None = None
    try:
        while pos < end:
            tag = buf[pos]
            if tag < 128:
                pos += 1
            else:
                tag, pos = _dv(buf, pos)
            if tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Holepunch.from: length past the end')
                v0 = buf[pos:e]
                pos = e
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Holepunch.to: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (2, 3):
                raise DecodeError(f'Holepunch: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Holepunch: truncated') from None
    if pos > end:
        raise DecodeError('Holepunch: a field runs past the end')
    obj = _new(Holepunch)
    obj.from_ = v0
    obj.to = v1
    return obj


def _decode_Message(buf: bytes, pos: int, end: int) -> Message:
    v0: int | None = None
    v1: int | None = None
    v2: int | None = None
    v3: bytes | None = None
    v4: bytes | None = None
    v5: bytes | None = None
    v6: bytes | None = None
    v7: bytes | None = None
    v8: str | None = None
    v9: str | None = None
    v10: bytes | None = None
    try:
        while pos < end:
            tag = buf[pos]
            if tag < 128:
                pos += 1
            else:
                tag, pos = _dv(buf, pos)
            if tag == 88:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v0 = x
            elif tag == 8:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v1 = x
            elif tag == 16:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v2 = x
            elif tag == 82:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.to: length past the end')
                v3 = buf[pos:e]
                pos = e
            elif tag == 26:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.id: length past the end')
                v4 = buf[pos:e]
                pos = e
            elif tag == 34:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.target: length past the end')
                v5 = buf[pos:e]
                pos = e
            elif tag == 42:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.closerNodes: length past the end')
                v6 = buf[pos:e]
                pos = e
            elif tag == 50:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.roundtripToken: length past the end')
                v7 = buf[pos:e]
                pos = e
            elif tag == 58:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.command: length past the end')
                try:
                    v8 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Message.command: invalid UTF-8') from None
                pos = e
            elif tag == 66:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.error: length past the end')
                try:
                    v9 = buf[pos:e].decode()
                except UnicodeDecodeError:
                    raise DecodeError('Message.error: invalid UTF-8') from None
                pos = e
            elif tag == 74:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('Message.value: length past the end')
                v10 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11):
                raise DecodeError(f'Message: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Message: truncated') from None
    if pos > end:
        raise DecodeError('Message: a field runs past the end')
    if v1 is None:
        raise DecodeError('Message.type is required but missing')
    if v2 is None:
        raise DecodeError('Message.rid is required but missing')
    obj = _new(Message)
    obj.version = v0
    obj.type = v1
    obj.rid = v2
    obj.to = v3
    obj.id = v4
    obj.target = v5
    obj.closerNodes = v6
    obj.roundtripToken = v7
    obj.command = v8
    obj.error = v9
    obj.value = v10
    return obj
