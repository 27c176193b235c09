"""The values of @hyperswarm/dht 4.0.1's commands, carried in dht-rpc's Message.value. Field numbers as in the
JS schema. Generated from protocol/hyperswarm-dht.proto by protocol/generate.py: do not edit by hand, edit the
schema and run the script."""

from __future__ import annotations

from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field
from hypernode.protobuf import Message as _Message
from hypernode.varint import decode_varint as _dv
from hypernode.varint import encode_varint as _ev

__all__ = ['PeersInput', 'PeersOutput', 'Mutable']

_new = object.__new__


class PeersInput(_Message):
    """Input of the `peers` command (lookup, announce, unannounce)."""

    __slots__ = ('port', 'localAddress', 'unannounce')
    __match_args__ = ('port', 'localAddress', 'unannounce')

    #: the announced port; 0 or absent: the UDP port the sender used
    port: int | None
    #: 6 bytes (ipv4-peers) of the sender's LAN address
    localAddress: bytes | None
    unannounce: bool | None

    def __init__(
        self,
        *,
        port: int | None = None,
        localAddress: bytes | None = None,
        unannounce: bool | None = None,
    ) -> None:
        self.port = port
        self.localAddress = localAddress
        self.unannounce = unannounce

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.port
        if v0 is not None:
            out.append(8)
            if v0 < 128:
                if v0 < 0:
                    raise ValueError('PeersInput.port: negative value for uint32')
                out.append(v0)
            else:
                out += _ev(v0)
        v1 = self.localAddress
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('PeersInput.localAddress is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1
        v2 = self.unannounce
        if v2 is not None:
            out.append(24)
            out.append(1 if v2 else 0)

    @classmethod
    def decode(cls, buf: Buffer) -> PeersInput:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_PeersInput(buf, 0, len(buf))


class PeersOutput(_Message):
    """Output of a `peers` query."""

    __slots__ = ('peers', 'localPeers')
    __match_args__ = ('peers', 'localPeers')

    #: 6 bytes per peer
    peers: bytes | None
    #: 4 bytes per peer: the last two address bytes, then the port
    localPeers: bytes | None

    def __init__(self, *, peers: bytes | None = None, localPeers: bytes | None = None) -> None:
        self.peers = peers
        self.localPeers = localPeers

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.peers
        if v0 is not None:
            out.append(10)
            if not isinstance(v0, (bytes, bytearray, memoryview)):
                raise TypeError('PeersOutput.peers is bytes')
            n = len(v0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v0
        v1 = self.localPeers
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('PeersOutput.localPeers is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1

    @classmethod
    def decode(cls, buf: Buffer) -> PeersOutput:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_PeersOutput(buf, 0, len(buf))


class Mutable(_Message):
    """Value of the `mutable-store` command (hypersign: ed25519 over a bencode-like signable)."""

    __slots__ = ('value', 'signature', 'seq', 'salt')
    __match_args__ = ('value', 'signature', 'seq', 'salt')

    value: bytes | None
    signature: bytes | None
    seq: int | None
    salt: bytes | None

    def __init__(
        self,
        *,
        value: bytes | None = None,
        signature: bytes | None = None,
        seq: int | None = None,
        salt: bytes | None = None,
    ) -> None:
        self.value = value
        self.signature = signature
        self.seq = seq
        self.salt = salt

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        v0 = self.value
        if v0 is not None:
            out.append(10)
            if not isinstance(v0, (bytes, bytearray, memoryview)):
                raise TypeError('Mutable.value is bytes')
            n = len(v0)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v0
        v1 = self.signature
        if v1 is not None:
            out.append(18)
            if not isinstance(v1, (bytes, bytearray, memoryview)):
                raise TypeError('Mutable.signature is bytes')
            n = len(v1)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v1
        v2 = self.seq
        if v2 is not None:
            out.append(24)
            if v2 < 128:
                if v2 < 0:
                    raise ValueError('Mutable.seq: negative value for uint64')
                out.append(v2)
            else:
                out += _ev(v2)
        v3 = self.salt
        if v3 is not None:
            out.append(34)
            if not isinstance(v3, (bytes, bytearray, memoryview)):
                raise TypeError('Mutable.salt is bytes')
            n = len(v3)
            if n < 128:
                out.append(n)
            else:
                out += _ev(n)
            out += v3

    @classmethod
    def decode(cls, buf: Buffer) -> Mutable:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        if not isinstance(buf, bytes):
            buf = as_bytes(buf)
        return _decode_Mutable(buf, 0, len(buf))


def _decode_PeersInput(buf: bytes, pos: int, end: int) -> PeersInput:
    v0: int | None = None
    v1: bytes | None = None
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
            elif tag == 18:
                n = buf[pos]
                if n < 128:
                    pos += 1
                else:
                    n, pos = _dv(buf, pos)
                e = pos + n
                if e > end:
                    raise DecodeError('PeersInput.localAddress: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif tag == 24:
                x = buf[pos]
                if x < 128:
                    pos += 1
                else:
                    x, pos = _dv(buf, pos)
                v2 = x != 0
            elif (tag >> 3) in (1, 2, 3):
                raise DecodeError(f'PeersInput: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('PeersInput: truncated') from None
    if pos > end:
        raise DecodeError('PeersInput: a field runs past the end')
    obj = _new(PeersInput)
    obj.port = v0
    obj.localAddress = v1
    obj.unannounce = v2
    return obj


def _decode_PeersOutput(buf: bytes, pos: int, end: int) -> PeersOutput:
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
                    raise DecodeError('PeersOutput.peers: length past the end')
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
                    raise DecodeError('PeersOutput.localPeers: length past the end')
                v1 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2):
                raise DecodeError(f'PeersOutput: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('PeersOutput: truncated') from None
    if pos > end:
        raise DecodeError('PeersOutput: a field runs past the end')
    obj = _new(PeersOutput)
    obj.peers = v0
    obj.localPeers = v1
    return obj


def _decode_Mutable(buf: bytes, pos: int, end: int) -> Mutable:
    v0: bytes | None = None
    v1: bytes | None = None
    v2: int | None = None
    v3: bytes | None = None
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
                    raise DecodeError('Mutable.value: length past the end')
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
                    raise DecodeError('Mutable.signature: length past the end')
                v1 = buf[pos:e]
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
                    raise DecodeError('Mutable.salt: length past the end')
                v3 = buf[pos:e]
                pos = e
            elif (tag >> 3) in (1, 2, 3, 4):
                raise DecodeError(f'Mutable: wrong wire type for field {tag >> 3}')
            else:
                pos = skip_field(buf, pos, end, tag)
    except IndexError:
        raise DecodeError('Mutable: truncated') from None
    if pos > end:
        raise DecodeError('Mutable: a field runs past the end')
    obj = _new(Mutable)
    obj.value = v0
    obj.signature = v1
    obj.seq = v2
    obj.salt = v3
    return obj
