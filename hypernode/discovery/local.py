"""Local-network discovery as @hyperswarm/discovery 2 does it: multicast DNS on 224.0.0.251:5353.

A topic's name is ``hex(topic[:20]) + ".hyperswarm.local"``. A peer looking a topic up multicasts a
query for its ``SRV`` record (at once, then every 30 to 60 s); a peer announcing it answers each such
query, and once unasked when it joins, with an ``SRV`` record (target ``0.0.0.0``: "the address you
got this from", and its TCP port), a ``TXT`` record ``id=<32 random bytes>`` naming this topic
instance (so that a peer ignores its own answers) and an ``A`` record ``referrer.hyperswarm.local``
with the asker's address.

:class:`MDNSPacket` is the DNS message codec, sans-IO (names with compression pointers, A, TXT and SRV
records; anything else is kept as raw bytes). :class:`LocalDiscovery` is its trio adapter
(``async with LocalDiscovery(...)`` or :func:`open_local_discovery`): a UDP socket on port 5353 (shared,
SO_REUSEPORT) in the multicast group on one interface; the peers found come through
:meth:`LocalDiscovery.peers`, a bounded channel (:mod:`hypernode.discovery.found`). Packets that do not
decode, are oversized, or come too fast from one address are dropped and counted in ``stats``.

Multicast only goes where the interface lets it: the loopback interface of most machines has no
MULTICAST flag, so two peers on one machine find each other only through a real interface (or a
network namespace whose loopback has multicast turned on, as the tests do).
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import random
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import trio

from hypernode.discovery.found import Broadcast, DroppingChannel, PeerFound
from hypernode.discovery.rpc import _RateLimiter
from hypernode.tasks import Service, open_service_nursery, opener

log = logging.getLogger(__name__)

MDNS_GROUP = "224.0.0.251"
MDNS_PORT = 5353
TLD = "hyperswarm.local"
A, TXT, SRV = 1, 16, 33
IN = 1
RESPONSE_FLAG = 0x8000
AUTHORITATIVE = 0x0400
MAX_PACKET = 9000
MAX_RECORDS = 64
PEERS_BUFFER = 256  # peers found waiting for a slow reader of LocalDiscovery.peers(), at most


class MDNSError(ValueError):
    """Bytes that are not a DNS message we can read."""


@dataclass
class Record:
    name: str
    type: int
    data: Any  # A: dotted address; TXT: list of bytes; SRV: (priority, weight, port, target); else bytes
    ttl: int = 0
    klass: int = IN


@dataclass
class MDNSPacket:
    id: int = 0
    flags: int = 0
    questions: list[tuple[str, int]] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)

    @property
    def is_response(self) -> bool:
        return bool(self.flags & RESPONSE_FLAG)

    # -- encoding ----------------------------------------------------------------------------------

    def encode(self) -> bytes:
        header = (self.id, self.flags, len(self.questions), len(self.answers), 0, 0)
        out = bytearray(struct.pack(">HHHHHH", *header))
        for name, qtype in self.questions:
            out += _encode_name(name) + struct.pack(">HH", qtype, IN)
        for r in self.answers:
            if r.type == A:
                rdata = ipaddress.IPv4Address(r.data).packed
            elif r.type == TXT:
                rdata = b"".join(bytes([len(s)]) + s for s in r.data)
            elif r.type == SRV:
                priority, weight, port, target = r.data
                rdata = struct.pack(">HHH", priority, weight, port) + _encode_name(target)
            else:
                rdata = bytes(r.data)
            out += _encode_name(r.name) + struct.pack(">HHIH", r.type, r.klass, r.ttl, len(rdata)) + rdata
        return bytes(out)

    # -- decoding ----------------------------------------------------------------------------------

    @classmethod
    def decode(cls, buf: bytes) -> MDNSPacket:
        """Parse a DNS message; :class:`MDNSError` for anything malformed (authority and additional
        records are read too, as answers, as dns-packet's users see them)."""
        if len(buf) < 12:
            raise MDNSError("short header")
        pid, flags, qd, an, ns, ar = struct.unpack_from(">HHHHHH", buf, 0)
        if qd + an + ns + ar > MAX_RECORDS:
            raise MDNSError("too many records")
        pos = 12
        packet = cls(pid, flags)
        for _ in range(qd):
            name, pos = _decode_name(buf, pos)
            if pos + 4 > len(buf):
                raise MDNSError("truncated question")
            qtype, _qclass = struct.unpack_from(">HH", buf, pos)
            pos += 4
            packet.questions.append((name, qtype))
        for _ in range(an + ns + ar):
            name, pos = _decode_name(buf, pos)
            if pos + 10 > len(buf):
                raise MDNSError("truncated record")
            rtype, klass, ttl, rdlen = struct.unpack_from(">HHIH", buf, pos)
            pos += 10
            end = pos + rdlen
            if end > len(buf):
                raise MDNSError("truncated rdata")
            data: Any
            if rtype == A:
                if rdlen != 4:
                    raise MDNSError("bad A record")
                data = ".".join(str(b) for b in buf[pos:end])
            elif rtype == TXT:
                data = []
                i = pos
                while i < end:
                    n = buf[i]
                    if i + 1 + n > end:
                        raise MDNSError("bad TXT record")
                    data.append(bytes(buf[i + 1:i + 1 + n]))
                    i += 1 + n
            elif rtype == SRV:
                if rdlen < 7:
                    raise MDNSError("bad SRV record")
                priority, weight, port = struct.unpack_from(">HHH", buf, pos)
                target, _ = _decode_name(buf, pos + 6)
                data = (priority, weight, port, target)
            else:
                data = bytes(buf[pos:end])
            packet.answers.append(Record(name, rtype, data, ttl, klass & 0x7FFF))
            pos = end
        return packet


def _encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split(".") if name.strip(".") else []:
        raw = label.encode()
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\0"


def _decode_name(buf: bytes, pos: int) -> tuple[str, int]:
    labels: list[str] = []
    end = -1
    jumps = 0
    length = 0
    while True:
        if pos >= len(buf):
            raise MDNSError("truncated name")
        n = buf[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(buf):
                raise MDNSError("truncated pointer")
            jumps += 1
            if jumps > 16:
                raise MDNSError("name pointer loop")
            if end < 0:
                end = pos + 2
            pos = ((n & 0x3F) << 8) | buf[pos + 1]
            continue
        if n & 0xC0:
            raise MDNSError("bad label type")
        if pos + 1 + n > len(buf):
            raise MDNSError("truncated label")
        length += n + 1
        if length > 255:
            raise MDNSError("name too long")
        labels.append(bytes(buf[pos + 1:pos + 1 + n]).decode("utf-8", "replace"))
        pos += 1 + n
    return ".".join(labels), (end if end >= 0 else pos)


def topic_name(topic: bytes, tld: str = TLD) -> str:
    return topic[:20].hex() + "." + tld


@dataclass
class _LocalTopic:
    key: bytes
    name: str
    id: bytes
    port: int | None
    lookup: bool
    scope: trio.CancelScope | None = None


class LocalDiscovery(Service):
    """Multicast-DNS discovery of hyperswarm topics on one interface. Open it with ``async with
    LocalDiscovery(...)`` or :func:`open_local_discovery`; the peers found come through
    :meth:`peers`."""

    def __init__(self, *, interface: str = "0.0.0.0", port: int = MDNS_PORT, group: str = MDNS_GROUP,
                 interval: float = 30.0, tld: str = TLD, rate: float = 50.0, burst: float = 100.0) -> None:
        self.interface = interface
        self.port = port
        self.group = group
        self.interval = interval
        self.tld = tld
        self.stats: Counter[str] = Counter()
        self.topics: dict[str, list[_LocalTopic]] = {}  # by name
        self._limit = _RateLimiter(rate, burst)
        self._found: Broadcast[PeerFound] = Broadcast(key=lambda p: p.key)
        self._sock: socket.socket | None = None
        self._tsock: Any = None
        self._nursery: trio.Nursery | None = None

    def peers(self, maxsize: int = PEERS_BUFFER) -> DroppingChannel[PeerFound]:
        """A channel of the peers found from now on, ended when this closes (``async for peer in
        local.peers():``); at most ``maxsize`` wait, each once, the oldest dropped beyond (see
        :mod:`hypernode.discovery.found`)."""
        return self._found.listen(maxsize)

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("0.0.0.0", self.port))
            iface = socket.inet_aton(self.interface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(self.group) + iface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._found.restart()
        try:
            self._sock = sock
            self._tsock = trio.socket.from_stdlib_socket(sock)
            async with open_service_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._receiver)
                yield
        finally:  # after the tasks have ended
            self._nursery = None
            self._found.end()
            sock.close()

    # -- topics ------------------------------------------------------------------------------------

    def join(self, topic: bytes, *, port: int | None = None, lookup: bool = True) -> None:
        """Answer queries for ``topic`` with our TCP ``port`` (if given) and look it up (if ``lookup``)."""
        if self._nursery is None:
            raise RuntimeError("use LocalDiscovery as `async with`")
        self.leave(topic)
        t = _LocalTopic(topic, topic_name(topic, self.tld), b"id=" + os.urandom(32), port, lookup)
        self.topics.setdefault(t.name, []).append(t)
        if port:
            self._send(MDNSPacket(flags=RESPONSE_FLAG | AUTHORITATIVE, answers=self._answers(t)))
        if lookup:
            t.scope = trio.CancelScope()
            self._nursery.start_soon(self._query_loop, t)

    def leave(self, topic: bytes) -> None:
        name = topic_name(topic, self.tld)
        for t in self.topics.pop(name, []):
            if t.scope is not None:
                t.scope.cancel()

    def _answers(self, t: _LocalTopic) -> list[Record]:
        assert t.port
        return [Record(t.name, SRV, (0, 0, t.port, "0.0.0.0")), Record(t.name, TXT, [t.id])]

    async def _query_loop(self, t: _LocalTopic) -> None:
        assert t.scope is not None
        with t.scope:
            while True:
                self._send(MDNSPacket(questions=[(t.name, SRV)]))
                await trio.sleep(self.interval * (1 + random.random()))

    # -- I/O ---------------------------------------------------------------------------------------

    def _send(self, packet: MDNSPacket, addr: tuple[str, int] | None = None) -> None:
        assert self._sock is not None
        try:
            self._sock.sendto(packet.encode(), addr or (self.group, self.port))
            self.stats["sent"] += 1
        except OSError as e:  # no route for multicast on this interface, a full buffer
            self.stats["send_errors"] += 1
            log.debug("mdns send failed: %s", e)

    async def _receiver(self) -> None:
        while True:
            try:
                data, addr = await self._tsock.recvfrom(65536)
            except OSError:
                self.stats["socket_errors"] += 1
                continue
            self.receive(data, (addr[0], addr[1]), trio.current_time())

    def receive(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """Handle one packet from ``addr`` (answer queries for our topics, report peers found)."""
        self.stats["received"] += 1
        if len(data) > MAX_PACKET:
            self.stats["dropped_oversized"] += 1
            return
        if not self._limit.allow(addr, now):
            self.stats["dropped_rate_limited"] += 1
            return
        try:
            packet = MDNSPacket.decode(data)
        except MDNSError:
            self.stats["dropped_malformed"] += 1
            return
        if packet.is_response:
            self._on_response(packet, addr)
        else:
            self._on_query(packet, addr)

    def _on_query(self, packet: MDNSPacket, addr: tuple[str, int]) -> None:
        answers: list[Record] = []
        for name, qtype in packet.questions:
            if qtype != SRV:
                continue
            asker = _txt_id(packet, name)
            for t in self.topics.get(name, []):
                if t.port and asker != t.id:
                    answers.extend(self._answers(t))
        if answers:
            answers.append(Record("referrer." + self.tld, A, addr[0]))
            self._send(MDNSPacket(flags=RESPONSE_FLAG | AUTHORITATIVE, answers=answers))

    def _on_response(self, packet: MDNSPacket, addr: tuple[str, int]) -> None:
        for r in packet.answers:
            if r.type != SRV or r.name not in self.topics:
                continue
            _, _, port, target = r.data
            host = addr[0] if target == "0.0.0.0" else target
            if not port:
                continue
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                continue  # a host name: not resolved here
            their_id = _txt_id(packet, r.name)
            for t in list(self.topics.get(r.name, [])):
                if their_id is not None and their_id == t.id:
                    continue  # our own answer
                if not t.lookup:
                    continue
                self.stats["peers_found"] += 1
                self._found.put(PeerFound(host, port, t.key, local=True))


def _txt_id(packet: MDNSPacket, name: str) -> bytes | None:
    for r in packet.answers:
        if r.type == TXT and r.name == name and r.data:
            return bytes(r.data[0])
    return None


open_local_discovery = opener(LocalDiscovery)
