"""One uTP connection, sans-IO: the state machine of libutp (BEP 29) that utp-native 2.x runs.

It owns, for one connection: the handshake (an initiator's SYN, acked by a STATE whose sequence number
the acceptor's first data packet will carry; the acceptor becomes connected on the initiator's first
data packet, so the initiator speaks first, as in libutp), sequence and ack numbers (16 bits, wrapping),
the send queue (bytes the application wrote, cut into packets of the path's size as the windows allow,
the last short one held back while packets are in flight: Nagle, as libutp), the packets in flight and
their retransmission (a timeout from the round-trip estimate, doubling on each expiry, at least four
expiries and 30 s without progress and the connection is dead; fast retransmit when a selective ack
shows three later packets arrived, or after three duplicate acks), the receive side (in-order bytes
buffered for the application, out-of-order ones held up to 1024 packets ahead, selective acks of them),
the receive window we advertise (the room left in our receive buffer: backpressure) and the one the
remote advertises, keep-alives, FIN in both directions and RESET. The congestion window is
:class:`~hypernode.utp.congestion.Ledbat`'s.

Where it departs from libutp, the wire does not show it: the least retransmission timeout is 0.25 s
(libutp: 1 s); a retransmission lost again is resent once packets sent after it are acked (libutp waits
for the timeout); our selective acks cover every packet held, not only the next 32 (BEP 29 allows it and
libutp reads any length); a duplicate SYN is answered again (libutp ignores it, so a lost SYN-ACK failed
the connection); a connection closed by both sides lingers 2 s to ack a repeated FIN instead of
resetting it; data after the remote's FIN is ignored; and accepted connections that never send, and
remotes silent for 90 s, time out.

Time comes in as the ``now_us`` (microseconds) given to each call; the packets go out through the
:class:`~hypernode.utp.endpoint.UTPEndpoint` the connection belongs to, with the events
(:class:`Connected`, :class:`DataReceived`, ...), which the trio adapter turns into stream operations.
"""

from __future__ import annotations

import enum
import errno
from collections import Counter, deque
from dataclasses import dataclass
from typing import Protocol

from hypernode.errors import HypernodeError
from hypernode.utp.congestion import Ledbat, wrapping_less
from hypernode.utp.packet import HEADER, ST_DATA, ST_FIN, ST_RESET, ST_STATE, ST_SYN, Packet

__all__ = [
    "Accepted", "Closed", "Connected", "DataReceived", "EndOfStream", "Event", "State", "UTPConfig",
    "UTPConnection", "UTPConnectionError", "UTPConnectionRefused", "UTPConnectionReset", "UTPError",
    "UTPLimitError", "UTPTimeout", "Writable",
]

Address = tuple[str, int]

MASK = 0xFFFF
M32 = 0xFFFFFFFF
REORDER_BUFFER_MAX_SIZE = 1024  # packets ahead of the next expected one that we keep
OUTGOING_BUFFER_MAX_SIZE = 1024  # packets in flight, at most (one is kept for the FIN)
DUPLICATE_ACKS_BEFORE_RESEND = 3
ACK_NR_ALLOWED_WINDOW = DUPLICATE_ACKS_BEFORE_RESEND
MAX_EACK = 128
PACKET_SIZE = 1435  # the window libutp grants a remote that advertised 0, after 15 s
ZERO_WINDOW_PROBE = 15_000  # ms
INF = float("inf")

# libutp's guess of the path: an Ethernet MTU less the headers of the tunnels a packet may cross
UDP_IPV4_MTU = 1500 - 20 - 8 - 24 - 8 - 2 - 36  # 1402
UDP_IPV6_MTU = 1280 - 40 - 8  # Teredo's
HEADER_SIZE = HEADER.size


class UTPError(HypernodeError):
    """Base of uTP's errors."""


class UTPLimitError(UTPError):
    """Too many uTP connections (on the socket, or to one remote address)."""


class UTPConnectionError(UTPError, ConnectionError):
    """A uTP connection failed (an ``OSError``, as a TCP connection's failure is)."""


class UTPConnectionRefused(UTPConnectionError, ConnectionRefusedError):
    pass


class UTPConnectionReset(UTPConnectionError, ConnectionResetError):
    pass


class UTPTimeout(UTPConnectionError, TimeoutError):
    pass


class State(enum.Enum):
    SYN_SENT = "syn-sent"  # our SYN is out, no answer yet
    SYN_RECV = "syn-recv"  # we acked their SYN; connected on their first data packet
    CONNECTED = "connected"
    CLOSED = "closed"  # gone from the endpoint; see Closed.error


@dataclass(frozen=True)
class UTPConfig:
    """Limits and timings. The defaults are libutp's where libutp has one (marked), else ours."""

    send_window: int = 1024 * 1024  # bytes in flight at most (libutp's UTP_SNDBUF)
    send_queue: int = 256 * 1024  # bytes written by the application, not yet in a packet
    receive_buffer: int = 1024 * 1024  # bytes received, not yet read (libutp's UTP_RCVBUF): our window
    target_delay: float = 0.100  # s, LEDBAT's target queuing delay (libutp)
    connect_timeout: float = 3.0  # s before the first SYN is sent again (libutp; doubles each time)
    # s, the least retransmission timeout: libutp's is 1 s; a lost window then stalls the connection for
    # a second (a JS receiver's socket buffer overflows when a Python sender outruns it: Python -> JS
    # went from 7.5 to 17.5 MB/s with 0.25 s), and libutp acks within 20 ms, so 0.25 s is still safe
    min_rto: float = 0.25
    max_retransmits: int = 4  # expiries of the retransmission timer in a row that end a connection (libutp)
    dead_after: float = 30.0  # s without progress before those expiries end it (about libutp's 1+2+4+8+16)
    syn_retransmits: int = 2  # the same for a SYN (libutp)
    keepalive: float = 29.0  # s without sending before a keep-alive (libutp)
    idle_timeout: float | None = 90.0  # s without hearing from the remote (ours: libutp has none)
    handshake_timeout: float = 10.0  # s an accepted connection waits for the first data packet (ours)
    max_connections: int = 1024  # per endpoint (libutp refuses SYNs past 3000)
    max_connections_per_address: int = 64  # per remote IP address
    max_half_open: int = 256  # accepted connections still waiting for their first data packet
    reset_memory: int = 1000  # (address, id, seq) of RESETs sent and not repeated for 10 s (libutp)
    receive_slack: int = 64 * 1024  # bytes a remote may overrun our window by before packets are dropped

    def packet_size(self, address: Address) -> int:
        """Payload bytes per packet towards ``address`` (libutp: the path MTU guess less the header)."""
        mtu = UDP_IPV6_MTU if ":" in address[0] else UDP_IPV4_MTU
        return mtu - HEADER_SIZE


# -- events ------------------------------------------------------------------------------------------


class Event:
    __slots__ = ("connection",)

    def __init__(self, connection: UTPConnection) -> None:
        self.connection = connection

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.connection!r})"


class Accepted(Event):
    """A remote opened a connection to us (it is in SYN_RECV: data can be queued, it goes out once the
    remote's first data packet arrives)."""


class Connected(Event):
    """Our connection is established (the initiator got the SYN's ack; the acceptor the first data)."""


class DataReceived(Event):
    """Bytes are waiting in :meth:`UTPConnection.read` (once until they are read)."""


class EndOfStream(Event):
    """The remote sent FIN and everything before it arrived: :attr:`UTPConnection.eof` after the
    buffered bytes are read."""


class Writable(Event):
    """The send queue has room again after a write that did not fit."""


class Closed(Event):
    """The connection is gone: closed by both sides (``error`` None), reset, or timed out."""

    __slots__ = ("error",)

    def __init__(self, connection: UTPConnection, error: UTPConnectionError | None) -> None:
        super().__init__(connection)
        self.error = error


class ConnectionHost(Protocol):
    """What a connection needs of the endpoint that owns it (:class:`~hypernode.utp.endpoint.UTPEndpoint`
    is the one): its settings and counters, and where the connection puts what it produces."""

    config: UTPConfig
    stats: Counter[str]

    def send_datagram(self, datagram: bytes, address: Address) -> None:
        """Queue a packet for the socket."""

    def ack_due(self, conn: UTPConnection) -> None:
        """``conn`` owes its remote an ack (sent at the end of the endpoint's step)."""

    def emit(self, event: Event) -> None:
        """Hand an event to the endpoint's user."""

    def established(self, conn: UTPConnection) -> None:
        """An accepted connection completed its handshake."""

    def remove(self, conn: UTPConnection, *, linger: bool, now_ms: int) -> None:
        """``conn`` ended: forget it (``linger``: keep acking a repeated FIN for a while)."""


class _Out:
    """A packet we sent (or will send again): its type, sequence number and payload."""

    __slots__ = ("type", "seq", "payload", "transmissions", "need_resend", "time_sent")

    def __init__(self, type: int, seq: int, payload: bytes) -> None:
        self.type = type
        self.seq = seq
        self.payload = payload
        self.transmissions = 0
        self.need_resend = False
        self.time_sent = 0


class UTPConnection:
    """A uTP connection of a :class:`~hypernode.utp.endpoint.UTPEndpoint` (which creates it)."""

    def __init__(self, endpoint: ConnectionHost, address: Address, *, recv_id: int, send_id: int, seq_nr: int,
                 state: State, now_us: int) -> None:
        cfg = endpoint.config
        now_ms = now_us // 1000
        self.endpoint = endpoint
        self.config = cfg
        self.address = address
        self.recv_id = recv_id & MASK  # the id on the packets we receive
        self.send_id = send_id & MASK  # the id on the packets we send
        self.state = state
        self.initiator = state is State.SYN_SENT
        self.half_open = False  # an accepted connection counted among the endpoint's half-open ones
        self.userdata: object = None  # the adapter's object for this connection
        self.packet_size = cfg.packet_size(address)
        self.seq_nr = seq_nr & MASK  # the next packet's sequence number
        self.ack_nr = 0  # every packet up to this one has arrived
        self.cur_window_packets = 0  # packets in the send buffer: seq_nr - cur_window_packets is the oldest
        self.cur_window = 0  # payload bytes in flight (not counting those marked for resending)
        self.outbuf: dict[int, _Out] = {}
        self.resend: deque[int] = deque()  # sequence numbers marked for resending by a timeout
        self.reorder: dict[int, bytes] = {}  # out-of-order payloads by sequence number
        self.reorder_bytes = 0
        self.recv_buf = bytearray()
        self.send_queue = bytearray()
        self.max_window_user = 255 * PACKET_SIZE  # the remote's receive window
        self.zerowindow_time = 0
        self.rtt = 0  # ms
        self.rtt_var = 800
        self.rto = max(int(cfg.connect_timeout * 1000), 1)
        self.min_rto = int(cfg.min_rto * 1000)
        self.retransmit_timeout = 0
        self.rto_timeout = 0  # ms; 0: not armed
        self.retransmit_count = 0
        self.stalled_since = 0  # ms: the first expiry of the current run of timeouts
        self.duplicate_ack = 0
        self.fast_resend_seq_nr = self.seq_nr
        self.fast_timeout = False
        self.timeout_seq_nr = 0
        self.eof_pkt = 0
        self.got_fin = False
        self.got_fin_reached = False
        self.fin_requested = False
        self.fin_sent = False
        self.fin_sent_acked = False
        self.read_shutdown = False
        self.close_requested = False
        self.created = now_ms
        self.last_got_packet = now_ms
        self.last_sent_packet = now_ms
        self.last_rcv_win = 0
        self.ack_due = False
        self.extension_bits = b"\x00" * 8
        self.cc = Ledbat(self.packet_size, cfg.send_window, now_ms, int(cfg.target_delay * 1_000_000))
        self.stats = {"packets_in": 0, "packets_out": 0, "retransmits": 0, "fast_retransmits": 0,
                      "duplicates": 0, "dropped_full": 0, "timeouts": 0}
        self._data_notified = False
        self._want_writable = False

    def __repr__(self) -> str:
        return f"<UTPConnection {self.address[0]}:{self.address[1]} id={self.recv_id} {self.state.value}>"

    # -- the application's side --------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.state is State.CONNECTED

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    @property
    def eof(self) -> bool:
        """The remote's FIN was reached and every byte before it has been read."""
        return self.got_fin_reached and not self.recv_buf

    @property
    def send_room(self) -> int:
        """Bytes :meth:`write` would take now."""
        if self.state is State.CLOSED or self.fin_requested:
            return 0
        return max(0, self.config.send_queue - len(self.send_queue))

    @property
    def unsent(self) -> int:
        """Bytes written and not yet acked (queued, or in packets in flight)."""
        return len(self.send_queue) + sum(len(p.payload) for p in self.outbuf.values())

    def write(self, data: bytes | bytearray | memoryview, now_us: int) -> int:
        """Queue as much of ``data`` as the send queue takes; returns how much (0: wait for
        :class:`Writable`). The bytes go out as the windows allow."""
        if self.state is State.CLOSED:
            raise UTPError("write on a closed uTP connection")
        if self.fin_requested:
            raise UTPError("write after shutdown")
        room = self.config.send_queue - len(self.send_queue)
        n = min(room, len(data))
        if n <= 0:
            self._want_writable = True
            return 0
        self.send_queue += data[:n]
        if n < len(data):
            self._want_writable = True
        self._flush(now_us)
        return n

    def read(self, max_bytes: int | None = None, now_us: int | None = None) -> bytes:
        """The bytes received in order so far (at most ``max_bytes``). Reading opens our receive window;
        with ``now_us``, a window that was closed is advertised open at once."""
        buf = self.recv_buf
        if max_bytes is None or max_bytes >= len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:max_bytes])
            del buf[:max_bytes]
        self._data_notified = False
        if data and self.state is State.CONNECTED:
            window = self._rcv_window()
            if window > self.last_rcv_win:
                if self.last_rcv_win < self.packet_size and now_us is not None:
                    self._send_ack(now_us)  # the remote is waiting for the window to open
                elif window - self.last_rcv_win >= self.config.receive_buffer // 4:
                    self._schedule_ack()
        return data

    def shutdown(self, now_us: int) -> None:
        """No more writes: a FIN follows the queued bytes (the remote reads end of stream)."""
        if self.state is State.CLOSED or self.fin_requested:
            return
        self.fin_requested = True
        self._want_writable = False
        self._flush(now_us)

    def close(self, now_us: int) -> None:
        """Close both directions: bytes still queued are sent, then a FIN; data that arrives meanwhile is
        acked and dropped. The connection is gone once the FIN is acked (or it times out). A connection
        not yet established is dropped at once, as libutp does."""
        if self.state is State.CLOSED:
            return
        self.read_shutdown = True
        self.close_requested = True
        self.recv_buf.clear()
        if self.state is not State.CONNECTED:
            self._destroy(None)
            return
        if self.fin_sent_acked:
            self._destroy(None, now_us)
            return
        self.fin_requested = True
        self._flush(now_us)

    def abort(self, now_us: int) -> None:
        """Drop the connection at once, telling the remote with a RESET."""
        if self.state is State.CLOSED:
            return
        if self.state is not State.SYN_SENT:
            self._send_raw(ST_RESET, self.seq_nr, self.ack_nr, b"", now_us, timestamps=False)
        self.close_requested = True
        self._destroy(None)

    # -- receiving ---------------------------------------------------------------------------------

    def _on_syn(self, p: Packet) -> None:
        """The acceptor's share of the SYN (libutp processes only its header and extensions)."""
        for ext, body in p.extensions:
            if ext == 2:
                self.extension_bits = body
        self.ack_nr = p.seq_nr

    def _on_reset(self) -> None:
        if self.state is State.CLOSED:
            return
        if self.close_requested:
            self._destroy(None)
        elif self.state is State.SYN_SENT:
            self._destroy(UTPConnectionRefused(errno.ECONNREFUSED,
                                               f"uTP connection to {self._where()} refused"))
        else:
            self._destroy(UTPConnectionReset(errno.ECONNRESET, f"uTP connection reset by {self._where()}"))

    def _where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    def _receive(self, p: Packet, now_us: int) -> None:
        """A non-SYN, non-RESET packet for this connection (libutp's utp_process_incoming)."""
        if self.state is State.CLOSED:
            return
        self.stats["packets_in"] += 1
        now_ms = now_us // 1000
        pk_seq = p.seq_nr
        pk_ack = p.ack_nr
        ptype = p.type
        # an ack of a packet we never sent, or far behind the ones in flight: spoofed or confused
        last = (self.seq_nr - 1) & MASK
        curr_window = self.cur_window_packets + ACK_NR_ALLOWED_WINDOW
        if wrapping_less(last, pk_ack, MASK) or wrapping_less(pk_ack, (last - curr_window) & MASK, MASK):
            self.endpoint.stats["invalid_ack"] += 1
            return
        if self.state is State.SYN_SENT:
            self.ack_nr = (pk_seq - 1) & MASK  # their first data packet will carry the SYN-ACK's number
        self.last_got_packet = now_ms

        seqnr = (pk_seq - self.ack_nr - 1) & MASK  # 0: the next packet we expect
        if seqnr >= REORDER_BUFFER_MAX_SIZE:
            if seqnr >= 0x10000 - REORDER_BUFFER_MAX_SIZE and ptype != ST_STATE:
                self.stats["duplicates"] += 1
                self._schedule_ack()  # an old packet again: our ack was lost
            return

        # the acks
        oldest = (self.seq_nr - self.cur_window_packets) & MASK
        acks = (pk_ack - ((oldest - 1) & MASK)) & MASK
        if acks > self.cur_window_packets:
            acks = 0
        if self.cur_window_packets > 0:
            if pk_ack == ((oldest - 1) & MASK) and ptype == ST_STATE:
                self.duplicate_ack += 1
                if self.duplicate_ack == DUPLICATE_ACKS_BEFORE_RESEND and p.sack is None:
                    self._resend_oldest(now_us)
            else:
                self.duplicate_ack = 0

        acked_bytes = 0
        min_rtt: float = INF
        outbuf = self.outbuf
        for i in range(acks):
            pkt = outbuf.get((oldest + i) & MASK)
            if pkt is None or pkt.transmissions == 0:
                continue
            acked_bytes += len(pkt.payload)
            sample = now_us - pkt.time_sent if pkt.time_sent < now_us else 50_000
            if sample < min_rtt:
                min_rtt = sample
        if p.sack is not None:
            sacked, sack_rtt = self._selective_ack_bytes((pk_ack + 2) & MASK, p.sack, now_us)
            acked_bytes += sacked
            min_rtt = min(min_rtt, sack_rtt)

        actual_delay = self.cc.on_packet(p.timestamp, p.timestamp_diff, now_us, now_ms)
        if min_rtt != INF:
            self.cc.clamp_to_rtt(int(min_rtt))
            if actual_delay != 0 and acked_bytes >= 1:
                self.cc.on_ack(acked_bytes, int(min_rtt), now_ms)

        self.max_window_user = p.window
        if p.window == 0:
            self.zerowindow_time = now_ms + ZERO_WINDOW_PROBE
        if (ptype == ST_DATA or ptype == ST_FIN) and self.state is State.SYN_RECV:
            self.state = State.CONNECTED  # the initiator's first data: the acceptor may send now
            self.endpoint.established(self)
            self._event(Connected(self))
        if ptype == ST_STATE and self.state is State.SYN_SENT:
            self.state = State.CONNECTED
            self._event(Connected(self))
        elif self.fin_sent and self.cur_window_packets == acks:
            self.fin_sent_acked = True  # everything we sent, our FIN included, is acked
        if wrapping_less(self.fast_resend_seq_nr, (pk_ack + 1) & MASK, MASK):
            self.fast_resend_seq_nr = (pk_ack + 1) & MASK
        for _ in range(acks):
            if self._ack_packet((self.seq_nr - self.cur_window_packets) & MASK, now_us) == 2:
                break
            self.cur_window_packets -= 1
        # packets a selective ack already acked may follow: the oldest still waiting decides
        while self.cur_window_packets > 0 and (self.seq_nr - self.cur_window_packets) & MASK not in outbuf:
            self.cur_window_packets -= 1

        if self.fast_timeout:
            # after a timeout, resend the oldest packet once more as soon as an ack comes
            oldest = (self.seq_nr - self.cur_window_packets) & MASK
            if oldest != self.fast_resend_seq_nr:
                self.fast_timeout = False
            else:
                pkt = outbuf.get(oldest)
                if pkt is not None and pkt.transmissions > 0:
                    self.fast_resend_seq_nr = (self.fast_resend_seq_nr + 1) & MASK
                    self.stats["fast_retransmits"] += 1
                    self._send_packet(pkt, now_us)

        if p.sack is not None:
            self._selective_ack((pk_ack + 2) & MASK, p.sack, now_us)

        if self.fin_sent_acked and self.close_requested:
            self._destroy(None, now_us)
            return
        self._flush(now_us)

        if ptype == ST_STATE or self.state is not State.CONNECTED or self.got_fin_reached:
            return  # (libutp would still deliver a packet right after the FIN: not a stream's behaviour)
        if ptype == ST_FIN and not self.got_fin:
            self.got_fin = True
            self.eof_pkt = pk_seq

        payload = p.payload
        if seqnr == 0:
            if payload and not self.read_shutdown:
                limit = self.config.receive_buffer + self.config.receive_slack
                if len(self.recv_buf) + len(payload) > limit:
                    self.stats["dropped_full"] += 1  # it ignores our window: not acked, resent later
                    return
                self._deliver(payload)
            self.ack_nr = (self.ack_nr + 1) & MASK
            while True:
                if not self.got_fin_reached and self.got_fin and self.eof_pkt == self.ack_nr:
                    self.got_fin_reached = True
                    self.rto_timeout = now_ms + min(self.rto * 3, 60)
                    self._event(EndOfStream(self))
                    self._send_ack(now_us)
                    self.reorder.clear()  # packets past the FIN are meaningless
                    self.reorder_bytes = 0
                if not self.reorder:
                    break
                nxt = (self.ack_nr + 1) & MASK
                held = self.reorder.pop(nxt, None)
                if held is None:
                    break
                self.reorder_bytes -= len(held)
                if held and not self.read_shutdown:
                    self._deliver(held)
                self.ack_nr = nxt
            self._schedule_ack()
        else:
            if self.got_fin and wrapping_less(self.eof_pkt, pk_seq, MASK):
                return  # past the end of the stream
            if pk_seq in self.reorder:
                self.stats["duplicates"] += 1
                return
            if self.reorder_bytes + len(payload) > self.config.receive_buffer:
                self.stats["dropped_full"] += 1
                return
            self.reorder[pk_seq] = payload
            self.reorder_bytes += len(payload)
            self._schedule_ack()

    def _receive_closed(self, p: Packet, now_us: int) -> None:
        """A packet for this connection shortly after we closed it gracefully: the remote's FIN or data
        (dropped, as after a close) is acked rather than answered with a RESET, so that a connection the
        remote is closing too ends cleanly on its side."""
        if p.type == ST_FIN or p.type == ST_DATA:
            if p.seq_nr == (self.ack_nr + 1) & MASK:
                self.ack_nr = p.seq_nr
            self._send_raw(ST_STATE, self.seq_nr, self.ack_nr, b"", now_us)

    def _deliver(self, payload: bytes) -> None:
        self.recv_buf += payload
        if not self._data_notified:
            self._data_notified = True
            self._event(DataReceived(self))

    def _ack_packet(self, seq: int, now_us: int) -> int:
        """0: ``seq`` is acked now; 1: it was acked already (or never existed); 2: it was never sent."""
        pkt = self.outbuf.get(seq)
        if pkt is None:
            return 1
        if pkt.transmissions == 0:
            return 2
        del self.outbuf[seq]
        if pkt.transmissions == 1:  # a packet sent once measures the round trip
            ertt = (now_us - pkt.time_sent) // 1000
            if self.rtt == 0:
                self.rtt = ertt
                self.rtt_var = ertt // 2
            else:
                delta = self.rtt - ertt
                self.rtt_var = self.rtt_var + int((abs(delta) - self.rtt_var) / 4)
                self.rtt = self.rtt - self.rtt // 8 + ertt // 8
            self.rto = max(self.rtt + self.rtt_var * 4, self.min_rto)
        self.retransmit_timeout = self.rto
        self.rto_timeout = now_us // 1000 + self.rto
        if not pkt.need_resend:
            self.cur_window -= len(pkt.payload)
        self.retransmit_count = 0
        return 0

    def _in_flight_range(self, v: int) -> bool:
        """``v`` is in flight and is not the oldest packet (libutp's test for selective-ack bits)."""
        return ((self.seq_nr - v - 1) & MASK) < ((self.cur_window_packets - 1) & MASK)

    def _selective_ack_bytes(self, base: int, mask: bytes, now_us: int) -> tuple[int, float]:
        if self.cur_window_packets == 0:
            return 0, INF
        acked = 0
        min_rtt: float = INF
        for bits in range(len(mask) * 8 - 1, -1, -1):
            if not mask[bits >> 3] & (1 << (bits & 7)):
                continue
            v = (base + bits) & MASK
            if not self._in_flight_range(v):
                continue
            pkt = self.outbuf.get(v)
            if pkt is None or pkt.transmissions == 0:
                continue
            acked += len(pkt.payload)
            min_rtt = min(min_rtt, now_us - pkt.time_sent if pkt.time_sent < now_us else 50_000)
        return acked, min_rtt

    def _selective_ack(self, base: int, mask: bytes, now_us: int) -> None:
        """Ack the packets a selective ack names; resend (at most 4) those with 3 acked ones after them."""
        if self.cur_window_packets == 0:
            return
        count = 0
        resends: list[int] = []
        # the latest send time among the packets this ack reports: a hole whose retransmission went out
        # before it was lost again (libutp resends a packet early only once, then waits for the timeout)
        newest_sacked = 0
        reorder_us = max(self.rtt * 250, 2000)
        for bits in range(len(mask) * 8 - 1, -2, -1):  # from the newest down to base - 1
            v = (base + bits) & MASK
            if not self._in_flight_range(v):
                continue
            bit_set = bits >= 0 and bool(mask[bits >> 3] & (1 << (bits & 7)))
            if bit_set:
                count += 1
            pkt = self.outbuf.get(v)
            if pkt is None or pkt.transmissions == 0:
                continue
            if bit_set:
                if pkt.time_sent > newest_sacked:
                    newest_sacked = pkt.time_sent
                self._ack_packet(v, now_us)
                continue
            if count >= DUPLICATE_ACKS_BEFORE_RESEND and (
                    ((v - self.fast_resend_seq_nr) & MASK) <= OUTGOING_BUFFER_MAX_SIZE or
                    (pkt.transmissions > 1 and newest_sacked > pkt.time_sent + reorder_us)):
                if len(resends) >= MAX_EACK - 2:
                    del resends[:MAX_EACK // 2]
                resends.append(v)
        if count >= DUPLICATE_ACKS_BEFORE_RESEND:
            oldest = self.outbuf.get((base - 1) & MASK)
            if ((base - 1 - self.fast_resend_seq_nr) & MASK) <= OUTGOING_BUFFER_MAX_SIZE or (
                    oldest is not None and oldest.transmissions > 1 and
                    newest_sacked > oldest.time_sent + reorder_us):
                resends.append((base - 1) & MASK)
        back_off = False
        sent = 0
        while resends:
            v = resends.pop()
            pkt = self.outbuf.get(v)
            if pkt is None:
                continue
            back_off = True
            self.stats["fast_retransmits"] += 1
            self._send_packet(pkt, now_us)
            if wrapping_less(self.fast_resend_seq_nr, (v + 1) & MASK, MASK):
                self.fast_resend_seq_nr = (v + 1) & MASK
            sent += 1
            if sent >= 4:
                break
        if back_off:
            self.cc.on_loss(now_us // 1000)
        self.duplicate_ack = count

    def _resend_oldest(self, now_us: int) -> None:
        """Three duplicate acks without a selective ack: the oldest packet is lost (libutp leaves this as
        a TODO; on the wire it is an ordinary retransmission)."""
        seq = (self.seq_nr - self.cur_window_packets) & MASK
        pkt = self.outbuf.get(seq)
        if pkt is None or pkt.transmissions == 0 or wrapping_less(seq, self.fast_resend_seq_nr, MASK):
            return
        self.stats["fast_retransmits"] += 1
        self._send_packet(pkt, now_us)
        self.fast_resend_seq_nr = (seq + 1) & MASK
        self.cc.on_loss(now_us // 1000)

    # -- sending -----------------------------------------------------------------------------------

    def _rcv_window(self) -> int:
        return max(0, self.config.receive_buffer - len(self.recv_buf))

    def _is_full(self, nbytes: int, now_us: int) -> bool:
        if nbytes > self.packet_size:
            nbytes = self.packet_size
        max_send = min(self.cc.max_window, self.config.send_window, self.max_window_user)
        if self.cur_window_packets >= OUTGOING_BUFFER_MAX_SIZE - 1 or self.cur_window + nbytes > max_send:
            self.cc.last_maxed_out_window = now_us // 1000
            return True
        return False

    def _flush(self, now_us: int) -> None:
        """Send what the windows allow: packets a timeout marked for resending, then new packets from
        the send queue (a short one only when nothing is in flight), then the FIN."""
        if self.state is not State.CONNECTED:
            return
        resend = self.resend
        while resend:
            pkt = self.outbuf.get(resend[0])
            if pkt is None or not pkt.need_resend:
                resend.popleft()
                continue
            if self._is_full(self.packet_size, now_us):
                return
            resend.popleft()
            self.stats["retransmits"] += 1
            self._send_packet(pkt, now_us)
        queue = self.send_queue
        size = self.packet_size
        while queue:
            n = min(len(queue), size)
            if n < size and self.cur_window_packets > 0:
                break  # Nagle: the short tail waits for the packets in flight
            if self._is_full(n, now_us):
                break
            payload = bytes(queue[:n])
            del queue[:n]
            self._send_packet(self._new_packet(ST_DATA, payload, now_us), now_us)
        if self._want_writable and len(queue) <= self.config.send_queue // 2 and not self.fin_requested:
            self._want_writable = False
            self._event(Writable(self))
        if self.fin_requested and not self.fin_sent and not queue and self.cur_window_packets == 0 \
                and not self._is_full(size, now_us):
            self.fin_sent = True
            self._send_packet(self._new_packet(ST_FIN, b"", now_us), now_us)

    def _new_packet(self, ptype: int, payload: bytes, now_us: int) -> _Out:
        if self.cur_window_packets == 0:  # the first packet in flight arms the retransmission timer
            self.retransmit_timeout = self.rto
            self.rto_timeout = now_us // 1000 + self.rto
        pkt = _Out(ptype, self.seq_nr, payload)
        self.outbuf[self.seq_nr] = pkt
        self.seq_nr = (self.seq_nr + 1) & MASK
        self.cur_window_packets += 1
        return pkt

    def _send_packet(self, pkt: _Out, now_us: int) -> None:
        if pkt.transmissions == 0 or pkt.need_resend:
            self.cur_window += len(pkt.payload)
        pkt.need_resend = False
        pkt.transmissions += 1
        pkt.time_sent = now_us
        self._send_raw(pkt.type, pkt.seq, self.ack_nr, pkt.payload, now_us)

    def _send_raw(self, ptype: int, seq: int, ack: int, payload: bytes, now_us: int, *,
                  sack: bytes | None = None, timestamps: bool = True) -> None:
        window = self._rcv_window() if ptype != ST_RESET else 0
        self.last_rcv_win = window
        conn_id = self.recv_id if ptype == ST_SYN else self.send_id
        ts = now_us & M32 if timestamps else 0
        diff = self.cc.reply_micro if timestamps else 0
        ext = 1 if sack is not None else 0
        header = HEADER.pack((ptype << 4) | 1, ext, conn_id, ts, diff, window, seq, ack)
        if sack is not None:
            header += bytes((0, len(sack))) + sack
        self.endpoint.send_datagram(header + payload if payload else header, self.address)
        self.stats["packets_out"] += 1
        self.last_sent_packet = now_us // 1000
        self.ack_due = False  # any packet carries our ack

    def _schedule_ack(self) -> None:
        if not self.ack_due:
            self.ack_due = True
            self.endpoint.ack_due(self)

    def _send_ack(self, now_us: int) -> None:
        sack = None
        if self.reorder and not self.got_fin_reached:
            # bit i: packet ack_nr + 2 + i arrived. libutp sends 4 bytes (32 packets); we cover every
            # packet held (up to 1024, in multiples of 4 bytes as BEP 29 asks; libutp reads any length),
            # so that the sender sees a hole's retransmission lost in a wide window
            m = 0
            top = 0
            base = self.ack_nr + 2
            for seq in self.reorder:
                off = (seq - base) & MASK
                if off < REORDER_BUFFER_MAX_SIZE:
                    m |= 1 << off
                    if off > top:
                        top = off
            sack = m.to_bytes((top // 32 + 1) * 4, "little")
        self._send_raw(ST_STATE, self.seq_nr, self.ack_nr, b"", now_us, sack=sack)

    def _start_connect(self, now_us: int) -> None:
        self.retransmit_timeout = self.rto
        self.rto_timeout = now_us // 1000 + self.rto
        pkt = _Out(ST_SYN, self.seq_nr, b"")
        self.outbuf[self.seq_nr] = pkt
        self.seq_nr = (self.seq_nr + 1) & MASK
        self.cur_window_packets = 1
        self._send_packet(pkt, now_us)

    # -- time --------------------------------------------------------------------------------------

    def _tick(self, now_us: int) -> None:
        """libutp's check_timeouts: retransmission, the zero-window probe, keep-alive, and our own
        idle and half-open timeouts."""
        if self.state is State.CLOSED:
            return
        now_ms = now_us // 1000
        self._flush(now_us)
        if self.state is State.SYN_RECV and now_ms - self.created >= self.config.handshake_timeout * 1000:
            self._destroy(UTPTimeout(errno.ETIMEDOUT, f"uTP connection from {self._where()} never sent data"))
            return
        idle = self.config.idle_timeout
        if idle is not None and now_ms - self.last_got_packet >= idle * 1000:
            self._destroy(UTPTimeout(errno.ETIMEDOUT,
                                     f"uTP connection to {self._where()}: silent for {idle:g} s"))
            return
        if self.max_window_user == 0 and now_ms >= self.zerowindow_time:
            self.max_window_user = PACKET_SIZE
        if 0 < self.rto_timeout <= now_ms:
            self.stats["timeouts"] += 1
            if self.state is State.SYN_RECV:
                self._destroy(UTPTimeout(errno.ETIMEDOUT, f"uTP connection from {self._where()} timed out"))
                return
            syn = self.state is State.SYN_SENT
            limit = self.config.syn_retransmits if syn else self.config.max_retransmits
            if self.retransmit_count == 0:
                self.stalled_since = now_ms
            if self.retransmit_count >= limit and (
                    syn or now_ms - self.stalled_since >= self.config.dead_after * 1000):
                what = "connecting to" if self.state is State.SYN_SENT else "connection to"
                self._destroy(None if self.close_requested else
                              UTPTimeout(errno.ETIMEDOUT, f"uTP {what} {self._where()} timed out"))
                return
            self.retransmit_timeout *= 2
            self.rto_timeout = now_ms + self.retransmit_timeout
            self.duplicate_ack = 0
            self.cc.on_timeout(idle=self.cur_window_packets == 0)
            # every packet in flight is taken for lost
            oldest = (self.seq_nr - self.cur_window_packets) & MASK
            self.resend.clear()
            for i in range(self.cur_window_packets):
                pkt = self.outbuf.get((oldest + i) & MASK)
                if pkt is None or pkt.transmissions == 0:
                    continue
                if not pkt.need_resend:
                    pkt.need_resend = True
                    self.cur_window -= len(pkt.payload)
                self.resend.append(pkt.seq)
            if self.cur_window_packets > 0:
                self.retransmit_count += 1
                self.fast_timeout = True
                self.timeout_seq_nr = self.seq_nr
                pkt = self.outbuf.get(oldest)
                if pkt is not None:
                    self.stats["retransmits"] += 1
                    self._send_packet(pkt, now_us)
        self._flush(now_us)
        if self.state is State.CONNECTED and not self.fin_sent and \
                now_ms - self.last_sent_packet >= self.config.keepalive * 1000:
            # a keep-alive is an ack of the packet before the last one received: the remote answers nothing
            self._send_raw(ST_STATE, self.seq_nr, (self.ack_nr - 1) & MASK, b"", now_us)

    def _deadline_ms(self) -> float:
        """When :meth:`_tick` has something to do (ms), or inf."""
        if self.state is State.CLOSED:
            return INF
        d: float = INF
        if self.rto_timeout > 0:
            d = self.rto_timeout
        if self.max_window_user == 0:
            d = min(d, self.zerowindow_time)
        if self.state is State.CONNECTED and not self.fin_sent:
            d = min(d, self.last_sent_packet + self.config.keepalive * 1000)
        if self.config.idle_timeout is not None:
            d = min(d, self.last_got_packet + self.config.idle_timeout * 1000)
        if self.state is State.SYN_RECV:
            d = min(d, self.created + self.config.handshake_timeout * 1000)
        return d

    # -- the end -----------------------------------------------------------------------------------

    def _event(self, event: Event) -> None:
        self.endpoint.emit(event)

    def _destroy(self, error: UTPConnectionError | None, now_us: int | None = None) -> None:
        if self.state is State.CLOSED:
            return
        graceful = error is None and self.fin_sent_acked
        self.state = State.CLOSED
        self.ack_due = False
        self.outbuf.clear()
        self.cur_window = 0
        self.cur_window_packets = 0
        self.resend.clear()
        self.reorder.clear()
        self.reorder_bytes = 0
        self.send_queue.clear()
        if error is not None:
            self.recv_buf.clear()
        self.endpoint.remove(self, linger=graceful and now_us is not None,
                              now_ms=(now_us or 0) // 1000)
        self._event(Closed(self, error))
