"""The uTP packet codec (BEP 29, version 1, as libutp and so utp-native 2.x write it): the 20-byte
header, the extension chain (selective ack, extension bits) and the payload.

Header, all big-endian: ``type << 4 | version`` (1 byte), the first extension's type (1), connection
id (2), timestamp in microseconds (4), timestamp difference in microseconds (4), receive window in
bytes (4), sequence number (2), ack number (2). Each extension is ``next type`` (1), ``length`` (1) and
``length`` bytes; a selective ack (type 1) is a bitmask whose bit ``i`` (least significant first in
each byte) says that packet ``ack_nr + 2 + i`` arrived.

:func:`is_utp` is how a shared UDP socket tells uTP from other datagrams (libutp's own test: at least
a header's length, version 1, a known type, a first extension below 3). :func:`decode` raises
:class:`PacketError` and nothing else on bytes that are not a valid packet.
"""

from __future__ import annotations

import struct

from hypernode.errors import DecodeError

__all__ = [
    "HEADER",
    "ST_DATA", "ST_FIN", "ST_RESET", "ST_STATE", "ST_SYN",
    "TYPE_NAMES",
    "Packet",
    "PacketError",
    "decode",
    "encode",
    "is_utp",
]

ST_DATA = 0  # data
ST_FIN = 1  # the last packet of one direction
ST_STATE = 2  # an ack, no data (takes no sequence number)
ST_RESET = 3  # the connection is gone
ST_SYN = 4  # open a connection
TYPE_NAMES = ("DATA", "FIN", "STATE", "RESET", "SYN")
VERSION = 1

EXT_SACK = 1
EXT_BITS = 2

HEADER = struct.Struct(">BBHIIIHH")
HEADER_SIZE = HEADER.size  # 20


class PacketError(DecodeError):
    """A datagram that looks like uTP but is not a valid packet."""


class Packet:
    """One uTP packet. ``sack`` is the selective-ack bitmask (None when absent); ``extensions`` any
    other extension carried, as ``(type, bytes)``, kept so that a packet re-encodes as it came."""

    __slots__ = ("type", "connection_id", "timestamp", "timestamp_diff", "window", "seq_nr", "ack_nr",
                 "sack", "extensions", "payload")

    def __init__(self, type: int, connection_id: int, *, seq_nr: int = 0, ack_nr: int = 0,
                 timestamp: int = 0, timestamp_diff: int = 0, window: int = 0, sack: bytes | None = None,
                 extensions: tuple[tuple[int, bytes], ...] = (), payload: bytes = b"") -> None:
        self.type = type
        self.connection_id = connection_id
        self.timestamp = timestamp
        self.timestamp_diff = timestamp_diff
        self.window = window
        self.seq_nr = seq_nr
        self.ack_nr = ack_nr
        self.sack = sack
        self.extensions = extensions
        self.payload = payload

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Packet):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        name = TYPE_NAMES[self.type] if 0 <= self.type < len(TYPE_NAMES) else str(self.type)
        extra = f" sack={self.sack.hex()}" if self.sack is not None else ""
        return (f"<{name} id={self.connection_id} seq={self.seq_nr} ack={self.ack_nr} wnd={self.window}"
                f"{extra} len={len(self.payload)}>")


def is_utp(datagram: bytes | bytearray | memoryview) -> bool:
    """Whether a datagram on a shared socket belongs to uTP (libutp's test, so both ends route alike)."""
    if len(datagram) < HEADER_SIZE:
        return False
    first = datagram[0]
    return first & 0x0F == VERSION and first >> 4 <= ST_SYN and datagram[1] < 3


def decode(datagram: bytes | bytearray | memoryview) -> Packet:
    """The packet in ``datagram``; :class:`PacketError` if it is not one."""
    data = bytes(datagram)
    if len(data) < HEADER_SIZE:
        raise PacketError(f"uTP packet of {len(data)} bytes, shorter than a header")
    first, ext, conn_id, ts, ts_diff, wnd, seq_nr, ack_nr = HEADER.unpack_from(data)
    if first & 0x0F != VERSION:
        raise PacketError(f"uTP version {first & 0x0F} (only 1 exists)")
    ptype = first >> 4
    if ptype > ST_SYN:
        raise PacketError(f"uTP packet type {ptype} does not exist")
    sack: bytes | None = None
    others: list[tuple[int, bytes]] = []
    pos = HEADER_SIZE
    while ext:
        if pos + 2 > len(data):
            raise PacketError("uTP extension header past the end of the packet")
        next_ext, length = data[pos], data[pos + 1]
        pos += 2
        if pos + length > len(data):
            raise PacketError(f"uTP extension {ext} of {length} bytes past the end of the packet")
        body = data[pos:pos + length]
        pos += length
        if ext == EXT_SACK:
            if sack is not None:
                raise PacketError("two selective acks in one uTP packet")
            if length == 0:
                raise PacketError("empty selective ack")
            sack = body
        else:
            if ext == EXT_BITS and length != 8:
                raise PacketError(f"uTP extension bits of {length} bytes (8 expected)")
            others.append((ext, body))
        ext = next_ext
    return Packet(ptype, conn_id, seq_nr=seq_nr, ack_nr=ack_nr, timestamp=ts, timestamp_diff=ts_diff,
                  window=wnd, sack=sack, extensions=tuple(others), payload=data[pos:])


def encode(p: Packet) -> bytes:
    """The bytes of a packet (the inverse of :func:`decode`)."""
    exts: list[tuple[int, bytes]] = []
    if p.sack is not None:
        exts.append((EXT_SACK, p.sack))
    exts.extend(p.extensions)
    first_ext = exts[0][0] if exts else 0
    out = [HEADER.pack((p.type << 4) | VERSION, first_ext, p.connection_id & 0xFFFF, p.timestamp & 0xFFFFFFFF,
                       p.timestamp_diff & 0xFFFFFFFF, p.window & 0xFFFFFFFF, p.seq_nr & 0xFFFF,
                       p.ack_nr & 0xFFFF)]
    for i, (_, body) in enumerate(exts):
        if len(body) > 255:
            raise ValueError("a uTP extension holds at most 255 bytes")
        next_ext = exts[i + 1][0] if i + 1 < len(exts) else 0
        out.append(bytes((next_ext, len(body))))
        out.append(body)
    out.append(p.payload)
    return b"".join(out)
