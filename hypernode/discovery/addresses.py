"""Compact address encodings of dht-rpc and @hyperswarm/dht (the npm ``ipv4-peers`` layouts).

- a peer: 4 IPv4 bytes + a big-endian 16-bit port (6 bytes);
- a node: its 32-byte id, then a peer (38 bytes), as in ``closerNodes``;
- a local peer: the last two IPv4 bytes + the port (4 bytes); the first two come from the asker's own
  ``localAddress``.

Decoders take untrusted bytes: they return ``None`` (or skip an entry, where JS does) instead of
raising, and never read past the end.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

ID_LENGTH = 32
PEER_LENGTH = 6
NODE_LENGTH = ID_LENGTH + PEER_LENGTH


class Peer(NamedTuple):
    host: str
    port: int


class NodeAddress(NamedTuple):
    id: bytes
    host: str
    port: int


def is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def encode_peer(host: str, port: int) -> bytes:
    """6 bytes; ValueError for a host that is not a dotted IPv4 address or a port out of range."""
    if not 0 <= port < 65536:
        raise ValueError(f"port out of range: {port}")
    return ipaddress.IPv4Address(host).packed + struct.pack(">H", port)


def decode_peer(buf: bytes | None) -> Peer | None:
    """The first peer of ``buf`` (as dht-rpc's ``decodePeer``), or None."""
    if not buf or len(buf) < PEER_LENGTH:
        return None
    port = (buf[4] << 8) | buf[5]
    if port == 0:
        return None
    return Peer(f"{buf[0]}.{buf[1]}.{buf[2]}.{buf[3]}", port)


def encode_peers(peers: list[tuple[str, int]]) -> bytes:
    return b"".join(encode_peer(h, p) for h, p in peers)


def decode_peers(buf: bytes | None) -> list[Peer] | None:
    """All peers of a ``peers`` record list, or None if it is malformed (a length not a multiple of 6,
    a zero port or a 0.0.0.0 address), as @hyperswarm/dht's ``ipv4.decodeAll``."""
    if buf is None:
        return None
    if len(buf) % PEER_LENGTH:
        return None
    out = []
    for i in range(0, len(buf), PEER_LENGTH):
        host = f"{buf[i]}.{buf[i + 1]}.{buf[i + 2]}.{buf[i + 3]}"
        port = (buf[i + 4] << 8) | buf[i + 5]
        if port == 0 or host == "0.0.0.0":
            return None
        out.append(Peer(host, port))
    return out


def encode_nodes(nodes: list[NodeAddress]) -> bytes:
    return b"".join(n.id + encode_peer(n.host, n.port) for n in nodes)


def decode_nodes(buf: bytes | None, limit: int = 64) -> list[NodeAddress]:
    """The nodes of a ``closerNodes`` field (at most ``limit``); [] if any entry is malformed (as JS,
    whose decoder throws on a zero port and then yields nothing). A trailing partial entry is
    ignored."""
    if not buf:
        return []
    out = []
    for i in range(0, min(len(buf) // NODE_LENGTH, limit) * NODE_LENGTH, NODE_LENGTH):
        port = (buf[i + 36] << 8) | buf[i + 37]
        if port == 0:
            return []
        host = f"{buf[i + 32]}.{buf[i + 33]}.{buf[i + 34]}.{buf[i + 35]}"
        out.append(NodeAddress(bytes(buf[i:i + 32]), host, port))
    return out


def encode_local(host: str, port: int) -> bytes:
    """A local peer record: the last two address bytes and the port."""
    return encode_peer(host, port)[2:]


def decode_local_peers(prefix: bytes, buf: bytes | None) -> list[Peer] | None:
    """Local peers (4 bytes each) completed with the first two bytes of ``prefix`` (the asker's
    ``localAddress``), or None if malformed."""
    if buf is None or len(prefix) < 2:
        return None
    if len(buf) % 4:
        return None
    out = []
    for i in range(0, len(buf), 4):
        port = (buf[i + 2] << 8) | buf[i + 3]
        if not port:
            return None
        out.append(Peer(f"{prefix[0]}.{prefix[1]}.{buf[i]}.{buf[i + 1]}", port))
    return out
