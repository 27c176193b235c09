"""The uTP side of one UDP socket, sans-IO: many :class:`~hypernode.utp.connection.UTPConnection`\\ s,
found by (remote address, connection id), as libutp's context does.

:meth:`UTPEndpoint.receive` takes every datagram the socket reads and returns False for those that are
not uTP (:func:`~hypernode.utp.packet.is_utp`), which the caller hands to the protocol sharing the socket
(the DHT); a uTP datagram that does not decode is dropped and counted. It routes packets to their
connection, answers a SYN with a new connection when :attr:`UTPEndpoint.accepting` (within the limits:
connections in all, per remote address, and half-open ones; over them a SYN is dropped unanswered, so
a flood of spoofed SYNs costs nothing but the count), answers a packet for no connection with a RESET
(once per packet, at most :attr:`UTPConfig.reset_memory` remembered, as libutp), and hands a RESET to
its connection.

Out of it come the datagrams to send (:meth:`UTPEndpoint.datagrams`) and the events
(:meth:`UTPEndpoint.events`). Time is given to each call (seconds, any monotonic clock); acks are
deferred until :meth:`UTPEndpoint.issue_deferred_acks` (after a batch of datagrams is read, as libutp),
and :meth:`UTPEndpoint.tick` runs the timers at :meth:`UTPEndpoint.next_deadline`.
"""

from __future__ import annotations

import random
from collections import Counter

from hypernode.utp.connection import (
    MASK,
    Accepted,
    Address,
    Event,
    State,
    UTPConfig,
    UTPConnection,
    UTPLimitError,
)
from hypernode.utp.packet import HEADER, ST_RESET, ST_SYN, Packet, PacketError, decode, is_utp

__all__ = ["UTPEndpoint"]

RESET_MEMORY_TIME = 10_000  # ms a RESET sent for a packet is not sent again for the same packet
LINGER = 2_000  # ms a connection closed by both sides still answers the remote's repeated FIN or data


class UTPEndpoint:
    def __init__(self, config: UTPConfig | None = None, *, rng: random.Random | None = None) -> None:
        self.config = config or UTPConfig()
        self.accepting = False  # SYNs open connections only when True (utp-native's firewall, off)
        self.rng = rng or random.SystemRandom()
        self.connections: dict[tuple[Address, int], UTPConnection] = {}  # by (address, receive id)
        self.stats: Counter[str] = Counter()
        self._per_host: Counter[str] = Counter()
        self._half_open = 0
        self._out: list[tuple[bytes, Address]] = []
        self._events: list[Event] = []
        self._ack_due: list[UTPConnection] = []
        self._resets: dict[tuple[Address, int, int], int] = {}  # (address, id, seq) -> when (ms)
        self._lingering: dict[tuple[Address, int], tuple[UTPConnection, int]] = {}  # -> (conn, until ms)

    # -- input -------------------------------------------------------------------------------------

    def receive(self, datagram: bytes, address: Address, now: float) -> bool:
        """Handle one datagram from ``address``; False if it is not uTP (it belongs to the protocol
        sharing the socket)."""
        if not is_utp(datagram):
            return False
        self.stats["packets"] += 1
        try:
            p = decode(datagram)
        except PacketError:
            self.stats["malformed"] += 1
            return True
        now_us = int(now * 1_000_000)
        cid = p.connection_id
        if p.type == ST_RESET:
            conn = self._reset_target(address, cid)
            if conn is not None:
                conn._on_reset()
            return True
        if p.type != ST_SYN:
            conn = self.connections.get((address, cid))
            if conn is not None:
                conn._receive(p, now_us)
                return True
            lingering = self._lingering.get((address, cid))
            if lingering is not None:
                lingering[0]._receive_closed(p, now_us)
                return True
            self._send_reset(address, cid, p.seq_nr, now_us)
            return True
        self._on_syn(p, address, now_us)
        return True

    def _reset_target(self, address: Address, cid: int) -> UTPConnection | None:
        # the id on a RESET is our receive id, or our send id (one off it either way)
        conn = self.connections.get((address, cid))
        if conn is not None:
            return conn
        for other in ((cid + 1) & MASK, (cid - 1) & MASK):
            conn = self.connections.get((address, other))
            if conn is not None and conn.send_id == cid:
                return conn
        return None

    def _on_syn(self, p: Packet, address: Address, now_us: int) -> None:
        cid = p.connection_id
        existing = self.connections.get((address, (cid + 1) & MASK))
        if existing is not None:
            if existing.state is State.SYN_RECV and existing.ack_nr == p.seq_nr:
                existing._send_ack(now_us)  # our SYN-ACK was lost: the same SYN came again
            self.stats["duplicate_syn"] += 1
            return
        if not self.accepting:
            self.stats["syn_refused"] += 1
            return
        cfg = self.config
        if len(self.connections) >= cfg.max_connections or self._half_open >= cfg.max_half_open or \
                self._per_host[address[0]] >= cfg.max_connections_per_address:
            self.stats["syn_over_limit"] += 1
            return
        conn = UTPConnection(self, address, recv_id=cid + 1, send_id=cid, seq_nr=self.rng.getrandbits(16),
                             state=State.SYN_RECV, now_us=now_us)
        conn._on_syn(p)
        self._add(conn)
        conn.half_open = True
        self._half_open += 1
        conn._send_ack(now_us)
        self._events.append(Accepted(conn))

    def _send_reset(self, address: Address, cid: int, seq: int, now_us: int) -> None:
        now_ms = now_us // 1000
        key = (address, cid, seq)
        if key in self._resets:
            self._resets[key] = now_ms
            return
        if len(self._resets) >= self.config.reset_memory:
            self._expire_resets(now_ms)
            if len(self._resets) >= self.config.reset_memory:
                self.stats["resets_suppressed"] += 1
                return
        self._resets[key] = now_ms
        self.stats["resets_sent"] += 1
        self._out.append((HEADER.pack((ST_RESET << 4) | 1, 0, cid, 0, 0, 0, self.rng.getrandbits(16), seq),
                          address))

    def _expire_resets(self, now_ms: int) -> None:
        old = [k for k, t in self._resets.items() if now_ms - t >= RESET_MEMORY_TIME]
        for k in old:
            del self._resets[k]

    # -- connections -------------------------------------------------------------------------------

    def connect(self, address: Address, now: float) -> UTPConnection:
        """Open a connection to ``address`` (its SYN is among the datagrams); :class:`Connected` or
        :class:`Closed` follows. Raises :class:`UTPLimitError` past the connection limits."""
        cfg = self.config
        if len(self.connections) >= cfg.max_connections:
            raise UTPLimitError(f"{len(self.connections)} uTP connections already (the limit)")
        if self._per_host[address[0]] >= cfg.max_connections_per_address:
            raise UTPLimitError(f"{cfg.max_connections_per_address} uTP connections to {address[0]} already")
        now_us = int(now * 1_000_000)
        while True:
            # 0xffff would make libutp's acceptor (id + 1, unmasked) miss our packets
            seed = self.rng.randrange(0xFFFF)
            if (address, seed) not in self.connections and (address, seed) not in self._lingering:
                break
        conn = UTPConnection(self, address, recv_id=seed, send_id=seed + 1, seq_nr=self.rng.getrandbits(16),
                             state=State.SYN_SENT, now_us=now_us)
        self._add(conn)
        conn._start_connect(now_us)
        return conn

    def _add(self, conn: UTPConnection) -> None:
        self.connections[(conn.address, conn.recv_id)] = conn
        self._per_host[conn.address[0]] += 1

    # -- what a connection asks of its endpoint (connection.ConnectionHost) ------------------------------

    def send_datagram(self, datagram: bytes, address: Address) -> None:
        self._out.append((datagram, address))

    def ack_due(self, conn: UTPConnection) -> None:
        self._ack_due.append(conn)

    def emit(self, event: Event) -> None:
        self._events.append(event)

    def remove(self, conn: UTPConnection, *, linger: bool, now_ms: int) -> None:
        key = (conn.address, conn.recv_id)
        if self.connections.get(key) is conn:
            del self.connections[key]
            if linger and len(self._lingering) < self.config.max_connections:
                self._lingering[key] = (conn, now_ms + LINGER)
            host = conn.address[0]
            self._per_host[host] -= 1
            if self._per_host[host] <= 0:
                del self._per_host[host]
            self.established(conn)

    def established(self, conn: UTPConnection) -> None:
        if conn.half_open:
            conn.half_open = False
            self._half_open -= 1

    # -- time and output ---------------------------------------------------------------------------

    def issue_deferred_acks(self, now: float) -> None:
        """Send the acks owed (call after a batch of :meth:`receive`)."""
        if not self._ack_due:
            return
        now_us = int(now * 1_000_000)
        due, self._ack_due = self._ack_due, []
        for conn in due:
            if conn.ack_due and conn.state is not State.CLOSED:
                conn._send_ack(now_us)

    def tick(self, now: float) -> None:
        """Run the timers that are due (retransmission, keep-alive, timeouts)."""
        now_us = int(now * 1_000_000)
        for conn in list(self.connections.values()):
            conn._tick(now_us)
        if self._resets:
            self._expire_resets(now_us // 1000)
        if self._lingering:
            now_ms = now_us // 1000
            for key in [k for k, (_, until) in self._lingering.items() if until <= now_ms]:
                del self._lingering[key]
        self.issue_deferred_acks(now)

    def next_deadline(self) -> float:
        """When :meth:`tick` should run next (seconds, the clock of ``now``); inf if never."""
        d = min((c._deadline_ms() for c in self.connections.values()), default=float("inf"))
        if self._lingering:
            d = min(d, min(until for _, until in self._lingering.values()))
        return d / 1000

    def datagrams(self) -> list[tuple[bytes, Address]]:
        """The datagrams to send, in order (taken: each is returned once)."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        """What happened since the last call (taken: each event is returned once)."""
        ev, self._events = self._events, []
        return ev
