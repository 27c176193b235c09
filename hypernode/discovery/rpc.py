"""dht-rpc 4.9.6, sans-IO: the UDP request/response layer of @hyperswarm/dht and its Kademlia queries.

:class:`RPCNode` owns everything but the socket and the clock. Feed it datagrams with
:meth:`RPCNode.receive` and the time with :meth:`RPCNode.tick` (call it again by
:meth:`RPCNode.next_deadline`); take what it wants sent from :meth:`RPCNode.datagrams` and what
happened from :meth:`RPCNode.events`. It answers ``_ping``, ``_find_node`` and ``_holepunch`` itself (and
asks for holepunches: :meth:`RPCNode.holepunch`) and the commands registered with
:meth:`RPCNode.register_command` (the ``peers`` command of :mod:`hypernode.discovery.dht`, for one);
:meth:`RPCNode.query` runs a query as dht-rpc's ``QueryStream`` does: ask the ``k`` closest nodes known
(or the bootstrap nodes), move closer through the ``closerNodes`` of each answer, then (for an update)
send the update, with the round-trip token each node gave, to the ``k`` closest that answered.

The wire (``protocol/dht-rpc.proto``) and the rules are dht-rpc's: 16-bit request ids, up to three
tries per request, a round-trip token that is BLAKE2b-256 of a secret (rotated every five minutes, the
previous one still accepted) and the asker's IP address, ``version: 1``, no ``id`` when ephemeral.

Input from the network is never trusted: oversized, undecodable or out-of-spec datagrams, floods from
one address (a token bucket per address and per host), answers to nothing we asked, answers from the
wrong address, updates whose token does not verify: each is dropped and counted in :attr:`RPCNode.stats`.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hypernode.discovery.addresses import (
    ID_LENGTH,
    NodeAddress,
    Peer,
    decode_nodes,
    decode_peer,
    encode_nodes,
    encode_peer,
    is_ipv4,
)
from hypernode.discovery.table import K, Node, QueryTable, RoutingTable
from hypernode.messages.dht_rpc import Holepunch, Message
from hypernode.protobuf import DecodeError

QUERY, UPDATE, RESPONSE = 1, 2, 3
VERSION = 1
MAX_DATAGRAM = 4096  # the largest dht-rpc message is ~2 KB (a mutable value and 20 closer nodes)
Address = tuple[str, int]


@dataclass
class RPCConfig:
    """Timings and limits; the defaults are dht-rpc's (tests shorten the timings)."""

    k: int = K
    concurrency: int = 16  # requests in flight per query (dht-rpc's concurrency)
    max_inflight: int = 256  # requests in flight in all, beyond that they wait
    attempt_timeout: float = 1.5  # seconds before a request is sent again
    tries: int = 3
    final_timeout: float = 3.0  # seconds after the last try before the request fails
    maintenance_interval: float = 5.0  # dht-rpc's tick: ping some nodes every 8, re-bootstrap every 64
    rotate_secrets: float = 300.0
    rate: float = 100.0  # datagrams per second accepted from one address (host, port)
    burst: float = 200.0
    host_rate: float = 2000.0  # ... and from one host, all ports together
    host_burst: float = 4000.0
    seen_relay_for: float = 900.0  # holepunches are relayed only to addresses heard from this recently


@dataclass
class IncomingRequest:
    """A query or (token-verified) update of a registered command, handed to its handler."""

    type: int  # QUERY or UPDATE
    command: str
    target: bytes
    value: bytes | None
    host: str
    port: int


# A command handler returns (value, None) or (value, error message); raising DecodeError drops the
# request (the input did not decode), as dht-rpc does.
Handler = Callable[[IncomingRequest], tuple[bytes | None, str | None]]


@dataclass
class QueryReply:
    """One answer to a query (or, in its update phase, to an update)."""

    query: Query
    node_id: bytes | None
    host: str
    port: int
    to: Peer | None  # our address as the answering node saw it
    value: bytes | None
    error: str | None
    update: bool


@dataclass
class QueryDone:
    query: Query
    error: str | None  # "No nodes responded", "No close nodes responded", or None


Event = QueryReply | QueryDone

_BOOTSTRAPPING, _MOVING_CLOSER, _UPDATING, _FINALIZED = range(4)


@dataclass(eq=False)
class Query:
    command: str
    target: bytes
    value: bytes | None
    query: bool
    update: bool
    table: QueryTable
    concurrency: int
    status: int = _BOOTSTRAPPING
    inflight: int = 0
    responses: int = 0
    errors: int = 0
    updates: int = 0
    error: str | None = None
    internal: bool = False  # bootstrap and maintenance queries: no events

    @property
    def done(self) -> bool:
        return self.status == _FINALIZED


@dataclass(eq=False)
class _Request:
    rid: int
    type: int
    message: Any  # encoded into buffer once its rid is chosen
    buffer: bytes
    addr: Address
    node_id: bytes | None  # the id we expect to answer, if we know it
    owner: Query | Callable[[Message | None], None]
    deadline: float
    tries: int = 1
    referrer: Address | None = None  # a holepunch: each try is also relayed through this node


@dataclass
class _Bucket:
    tokens: float
    at: float


class _RateLimiter:
    """Token buckets by key, the least recently used forgotten past ``size``."""

    def __init__(self, rate: float, burst: float, size: int = 4096) -> None:
        self.rate, self.burst, self.size = rate, burst, size
        self._buckets: OrderedDict[Any, _Bucket] = OrderedDict()

    def allow(self, key: Any, now: float) -> bool:
        b = self._buckets.get(key)
        if b is None:
            b = _Bucket(self.burst, now)
            self._buckets[key] = b
            if len(self._buckets) > self.size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            b.tokens = min(self.burst, b.tokens + (now - b.at) * self.rate)
            b.at = now
        if b.tokens < 1:
            return False
        b.tokens -= 1
        return True


class RPCNode:
    """A dht-rpc node without I/O. ``ephemeral`` nodes leave their id out of what they send, so that
    nobody adds them to a routing table (hyperswarm peers); the others serve the DHT."""

    def __init__(self, *, id: bytes | None = None, ephemeral: bool = True, bootstrap: Iterable[Address] = (),
                 config: RPCConfig | None = None, now: float = 0.0) -> None:
        self.id = id or os.urandom(ID_LENGTH)
        if len(self.id) != ID_LENGTH:
            raise ValueError("a node id is 32 bytes")
        self.ephemeral = ephemeral
        self.config = config or RPCConfig()
        self.bootstrap_nodes: list[Address] = list(bootstrap)
        self.table = RoutingTable(self.id, self.config.k)
        self.stats: Counter[str] = Counter()
        self.bootstrapped = False
        self._commands: dict[str, tuple[Handler | None, Handler | None]] = {}
        self._requests: dict[int, _Request] = {}
        self._pending: list[_Request] = []
        self._rid = int.from_bytes(os.urandom(2), "big")
        self._secrets = [os.urandom(32), os.urandom(32)]
        self._next_rotate = now + self.config.rotate_secrets
        self._next_maintenance = now + self.config.maintenance_interval
        self._ticks = 0
        self._out: list[tuple[bytes, Address]] = []
        self._events: list[Event] = []
        self._queries: set[Query] = set()
        self._addr_limit = _RateLimiter(self.config.rate, self.config.burst)
        self._host_limit = _RateLimiter(self.config.host_rate, self.config.host_burst)
        self._heard: OrderedDict[Address, float] = OrderedDict()  # addresses heard from, for relaying
        # peers whose holepunch a referrer relayed to us, and when (their connection that follows came
        # through our NAT by that punch)
        self.punched: OrderedDict[Address, float] = OrderedDict()
        self._now = now

    # -- output ------------------------------------------------------------------------------------

    def datagrams(self) -> list[tuple[bytes, Address]]:
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_deadline(self) -> float:
        """When :meth:`tick` must be called next, at the latest."""
        t = min(self._next_rotate, self._next_maintenance)
        for req in self._requests.values():
            t = min(t, req.deadline)
        return t

    @property
    def wire_id(self) -> bytes | None:
        """The id we put in messages: none while ephemeral."""
        return None if self.ephemeral else self.id

    # -- commands ----------------------------------------------------------------------------------

    def register_command(self, name: str, *, query: Handler | None = None,
                         update: Handler | None = None) -> None:
        self._commands[name] = (query, update)

    # -- input -------------------------------------------------------------------------------------

    def receive(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one datagram from ``addr``; anything wrong with it is dropped and counted."""
        self._now = now
        self.stats["received"] += 1
        host, port = addr[0], addr[1]
        if not port:
            self.stats["dropped_no_port"] += 1
            return
        if len(data) > MAX_DATAGRAM:
            self.stats["dropped_oversized"] += 1
            return
        if not self._addr_limit.allow((host, port), now) or not self._host_limit.allow(host, now):
            self.stats["dropped_rate_limited"] += 1
            return
        try:
            msg = Message.decode(data)
        except DecodeError:
            self.stats["dropped_malformed"] += 1
            return
        if msg.id is not None and len(msg.id) != ID_LENGTH:
            self.stats["dropped_malformed"] += 1
            return
        if msg.id is not None and not (msg.version or 0) >= VERSION:
            msg.id = None  # an older node: treat it as ephemeral, as dht-rpc does
        addr = (host, port)
        if msg.type == RESPONSE:
            self._on_response(msg, addr, now)
        elif msg.type == QUERY:
            self._on_request(QUERY, msg, addr, now)
        elif msg.type == UPDATE:
            token = msg.roundtripToken
            if not token or token not in (self._token(host, 0), self._token(host, 1)):
                self.stats["dropped_bad_token"] += 1
                return
            self._on_request(UPDATE, msg, addr, now)
        else:
            self.stats["dropped_malformed"] += 1

    def tick(self, now: float) -> None:
        """Retry or fail requests whose time is up, rotate the token secret, keep the table fresh."""
        self._now = now
        for req in [r for r in self._requests.values() if r.deadline <= now]:
            if req.tries < self.config.tries:
                req.tries += 1
                req.deadline = now + (self.config.attempt_timeout if req.tries < self.config.tries
                                      else self.config.final_timeout)
                self._send(req.buffer, req.addr)
                self._punch_through(req)
                self.stats["retries"] += 1
            else:
                self.stats["timeouts"] += 1
                self._finish(req, None, now)
        if now >= self._next_rotate:
            self._secrets = [os.urandom(32), self._secrets[0]]
            self._next_rotate = now + self.config.rotate_secrets
        if now >= self._next_maintenance:
            self._next_maintenance = now + self.config.maintenance_interval
            self._ticks += 1
            if self._ticks % 8 == 0:
                self._ping_some(now)
            if self._ticks % 64 == 0 and len(self.table) < 20:
                self.bootstrap()

    # -- queries -----------------------------------------------------------------------------------

    def query(self, command: str, target: bytes, value: bytes | None = None, *, query: bool = True,
              update: bool = False) -> Query:
        """Start a query (``query``: ask every node on the way; ``update``: then update the closest).
        Its answers and its end come as :class:`QueryReply` and :class:`QueryDone` events."""
        if len(target) != ID_LENGTH:
            raise ValueError("a target is 32 bytes")
        q = Query(command, target, value, query or not update, update,
                  QueryTable(self.id, target, self.config.k), self.config.concurrency)
        self._queries.add(q)
        self._step(q)
        return q

    def bootstrap(self) -> Query:
        """Look up our own id, filling the routing table (done when the node starts)."""
        q = self.query("_find_node", self.id)
        q.internal = True
        return q

    def cancel(self, q: Query) -> None:
        """Stop a query: no more events for it; answers still on the way are ignored."""
        if q.status != _FINALIZED:
            q.status = _FINALIZED
            self._queries.discard(q)

    def ping(self, addr: Address, callback: Callable[[Message | None], None],
             node_id: bytes | None = None) -> None:
        """Ping ``addr``; ``callback`` gets the response, or None once every try timed out."""
        self._request(QUERY, "_ping", None, node_id, addr, callback, node_id=node_id)

    def holepunch(self, peer: Address, referrer: Address, callback: Callable[[Message | None], None]) -> None:
        """Open the way to ``peer`` (behind a NAT) as dht-rpc 4 does: a ``_holepunch`` query goes to it
        directly (opening our NAT towards it) and, with the same request id, to ``referrer``, the DHT
        node that told us of it, which relays it to the peer with our address as it sees it; the peer
        answers us (opening its NAT towards us). ``callback`` gets the answer, or None once every try
        timed out (a symmetric NAT on either side, or a referrer that does not relay)."""
        self._request(QUERY, "_holepunch", None, None, peer, callback, referrer=referrer)

    # -- requests and responses --------------------------------------------------------------------

    def _send(self, buffer: bytes, addr: Address) -> None:
        self._out.append((buffer, addr))
        self.stats["sent"] += 1

    def _free_rid(self) -> int:
        for _ in range(65536):
            rid = self._rid
            self._rid = (self._rid + 1) & 0xFFFF
            if rid not in self._requests:
                return rid
        raise RuntimeError("65536 requests in flight")  # pragma: no cover - max_inflight is far less

    def _request(self, type: int, command: str, target: bytes | None, value: bytes | None, addr: Address,
                 owner: Query | Callable[[Message | None], None], *, node_id: bytes | None = None,
                 token: bytes | None = None, referrer: Address | None = None) -> None:
        msg = Message(version=VERSION, type=type, rid=0, to=encode_peer(*addr) if is_ipv4(addr[0]) else None,
                      id=self.wire_id, target=target, command=command, value=value, roundtripToken=token)
        req = _Request(0, type, msg, b"", addr, node_id, owner, 0.0, referrer=referrer)
        if len(self._requests) >= self.config.max_inflight:
            self._pending.append(req)
            return
        self._start(req)

    def _start(self, req: _Request) -> None:
        req.rid = req.message.rid = self._free_rid()
        req.buffer = req.message.encode()
        c = self.config
        req.deadline = self._now + (c.attempt_timeout if c.tries > 1 else c.final_timeout)
        self._requests[req.rid] = req
        self.stats["requests"] += 1
        self._send(req.buffer, req.addr)
        self._punch_through(req)

    def _punch_through(self, req: _Request) -> None:
        """Ask the referrer of a holepunch request to relay it (the request's id, the peer in ``to``)."""
        if req.referrer is None or not is_ipv4(req.addr[0]):
            return
        punch = Message(version=VERSION, type=QUERY, rid=req.rid,
                        to=encode_peer(*req.referrer) if is_ipv4(req.referrer[0]) else None,
                        id=self.wire_id, command="_holepunch",
                        value=Holepunch(to=encode_peer(*req.addr)).encode())
        self.stats["holepunch_asked"] += 1
        self._send(punch.encode(), req.referrer)

    def _finish(self, req: _Request, msg: Any, now: float) -> None:
        del self._requests[req.rid]
        while self._pending and len(self._requests) < self.config.max_inflight:
            self._start(self._pending.pop(0))
        if msg is not None and req.node_id is not None and msg.id != req.node_id:
            self.stats["bad_id"] += 1  # that address now answers with another id: forget the old one
            self.table.remove(req.node_id)
        if isinstance(req.owner, Query):
            self._on_query_answer(req.owner, req, msg)
        else:
            req.owner(msg)

    def _on_response(self, msg: Any, addr: Address, now: float) -> None:
        req = self._requests.get(msg.rid)
        if req is None or req.addr != addr:
            self.stats["dropped_unexpected_response"] += 1
            return
        self._heard_from(addr, now)
        if msg.id is not None:
            self._add_node(msg.id, addr, now, token=msg.roundtripToken, to=msg.to)
        self._finish(req, msg, now)

    def _token(self, host: str, i: int) -> bytes:
        return hashlib.blake2b(self._secrets[i] + host.encode(), digest_size=32).digest()

    def _respond(self, request: Any, addr: Address, *, value: bytes | None = None,
                 closer: bytes | None = None, error: str | None = None) -> None:
        msg = Message(version=VERSION, type=RESPONSE, rid=request.rid,
                      to=encode_peer(*addr) if is_ipv4(addr[0]) else None, id=self.wire_id,
                      closerNodes=closer, value=value, error=error,
                      roundtripToken=None if error is not None else self._token(addr[0], 0))
        self._send(msg.encode(), addr)

    def _closer(self, target: bytes) -> bytes:
        nodes = [NodeAddress(n.id, n.host, n.port) for n in self.table.closest(target, 20) if is_ipv4(n.host)]
        return encode_nodes(nodes)

    def _heard_from(self, addr: Address, now: float) -> None:
        self._heard[addr] = now
        self._heard.move_to_end(addr)
        while len(self._heard) > 65536:
            self._heard.popitem(last=False)

    def _on_request(self, type: int, msg: Any, addr: Address, now: float) -> None:
        self._heard_from(addr, now)
        if msg.id is not None:
            self._add_node(msg.id, addr, now, to=msg.to)
        command = msg.command
        if command == "_ping":
            if msg.value and msg.value != self.id:
                return
            self._respond(msg, addr, value=encode_peer(*addr) if is_ipv4(addr[0]) else None)
        elif command == "_find_node":
            if msg.target is None or len(msg.target) != ID_LENGTH:
                self.stats["dropped_malformed"] += 1
                return
            self._respond(msg, addr, closer=self._closer(msg.target))
        elif command == "_holepunch":
            self._on_holepunch(msg, addr, now)
        else:
            self._on_command(type, msg, addr)

    def _on_holepunch(self, msg: Any, addr: Address, now: float) -> None:
        try:
            hp = Holepunch.decode(msg.value or b"")
        except DecodeError:
            self.stats["dropped_malformed"] += 1
            return
        if hp.to is not None:
            peer = decode_peer(hp.to)
            if peer is None:
                return
            to = (peer.host, peer.port)
            if to == addr:
                return
            heard = self._heard.get(to)
            if heard is None or now - heard > self.config.seen_relay_for:
                self.stats["holepunch_refused"] += 1  # only to peers that talk to us: no reflection
                return
            msg.version = VERSION
            msg.id = self.wire_id
            msg.to = encode_peer(*to)
            msg.value = Holepunch(from_=encode_peer(*addr)).encode() if is_ipv4(addr[0]) else None
            self.stats["holepunch_relayed"] += 1
            self._send(msg.encode(), to)
            return
        origin = decode_peer(hp.from_) if hp.from_ is not None else None
        # relayed (from), or straight from the peer: it is about to connect to us through our NAT
        puncher = (origin.host, origin.port) if origin else addr
        self.punched[puncher] = now
        self.punched.move_to_end(puncher)
        while len(self.punched) > 1024:
            self.punched.popitem(last=False)
        self.stats["holepunch_answered"] += 1
        self._respond(msg, puncher)

    def _on_command(self, type: int, msg: Any, addr: Address) -> None:
        if not msg.target:
            self.stats["dropped_malformed"] += 1
            return
        handlers = self._commands.get(msg.command or "")
        closer = self._closer(msg.target) if len(msg.target) == ID_LENGTH else b""
        if handlers is None:
            self._respond(msg, addr, closer=closer, error="Unsupported command")
            return
        handler = handlers[0] if type == QUERY else handlers[1]
        if handler is None:
            if type == QUERY:
                self._respond(msg, addr, closer=closer)
            else:
                self._respond(msg, addr, closer=closer, error="Update not supported")
            return
        req = IncomingRequest(type, msg.command, msg.target, msg.value, addr[0], addr[1])
        try:
            value, error = handler(req)
        except DecodeError:
            self.stats["dropped_malformed"] += 1
            return
        self.stats[f"command_{'query' if type == QUERY else 'update'}"] += 1
        self._respond(msg, addr, value=value, closer=closer, error=error)

    # -- the routing table -------------------------------------------------------------------------

    def _add_node(self, node_id: bytes, addr: Address, now: float, *, token: bytes | None = None,
                  to: bytes | None = None) -> None:
        if node_id == self.id or not is_ipv4(addr[0]):
            return
        node = Node(node_id, addr[0], addr[1], token=token, to=to, seen=now)
        oldest = self.table.add(node)
        if oldest is not None and now - oldest.seen > self.config.maintenance_interval:
            # a full bucket: if its oldest node is gone, the newcomer takes its place
            def replaced(res: Any, oldest: Node = oldest, node: Node = node) -> None:
                if res is None:
                    self.table.remove(oldest.id)
                    self.table.add(node)

            oldest.seen = now  # one ping at a time
            self.ping(oldest.address, replaced, node_id=oldest.id)

    def _ping_some(self, now: float) -> None:
        if not len(self.table):
            if self.bootstrap_nodes:
                self.bootstrap()
            return
        count = 3 if len(self._queries) > 2 else 5
        for node in self.table.oldest(count):
            if now - node.seen < self.config.maintenance_interval:
                continue

            def checked(res: Any, node: Node = node) -> None:
                if res is None:
                    self.table.remove(node.id)

            self.ping(node.address, checked, node_id=node.id)

    # -- the query state machine (dht-rpc's QueryStream) -------------------------------------------

    def _step(self, q: Query) -> None:
        if q.status == _BOOTSTRAPPING:
            known = self.table.closest(q.target, q.table.k)
            for n in known:
                q.table.add_unverified(Node(n.id, n.host, n.port))
            if len(known) < len(self.bootstrap_nodes):
                for addr in self.bootstrap_nodes:
                    self._query_send(q, Node(b"", addr[0], addr[1]), force=True, update=False)
            q.status = _MOVING_CLOSER
        if q.status == _MOVING_CLOSER:
            if self._send_all(q, q.table.unverified, update=False) or q.inflight:
                return
            if q.update:
                for n in q.table.closest:
                    n.queried = False
                q.status = _UPDATING
            else:
                self._finalize(q)
                return
        if q.status == _UPDATING:
            if self._send_all(q, q.table.closest, update=True) or q.inflight:
                return
            self._finalize(q)

    def _send_all(self, q: Query, nodes: list[Node], *, update: bool) -> int:
        free = max(0, q.concurrency - len(self._requests))
        if not free and not q.inflight:
            free = 1
        sent = 0
        for node in list(nodes):
            if sent >= free:
                break
            if self._query_send(q, node, force=False, update=update):
                sent += 1
        return sent

    def _query_send(self, q: Query, node: Node, *, force: bool, update: bool) -> bool:
        if not force:
            if node.queried:
                return False
            node.queried = True
        q.inflight += 1
        node_id = node.id or None
        if update:
            if not node.token:
                q.inflight -= 1
                q.errors += 1
                return True
            self._request(UPDATE, q.command, q.target, q.value, node.address, q, node_id=node_id,
                          token=node.token)
        elif q.query:
            self._request(QUERY, q.command, q.target, q.value, node.address, q, node_id=node_id)
        else:
            self._request(QUERY, "_find_node", q.target, None, node.address, q, node_id=node_id)
        return True

    def _on_query_answer(self, q: Query, req: _Request, msg: Any) -> None:
        q.inflight -= 1
        if msg is None and req.node_id is not None:
            self.table.remove(req.node_id)  # every try failed
        if q.status == _FINALIZED:
            return
        if msg is None:
            q.errors += 1
            self._step(q)
            return
        q.responses += 1
        host, port = req.addr
        q.table.add_verified(msg.id, msg.roundtripToken, host, port)
        if q.status == _MOVING_CLOSER:
            for n in decode_nodes(msg.closerNodes):
                q.table.add_unverified(Node(n.id, n.host, n.port, referrer=req.addr))
        elif q.status == _UPDATING:
            q.updates += 1
        report = not q.internal and (q.query or q.status == _UPDATING)
        if report or (msg.error is not None and not q.internal):
            to = decode_peer(msg.to) if msg.to is not None and len(msg.to) == 6 else None
            self._events.append(QueryReply(q, msg.id, host, port, to, msg.value, msg.error,
                                           req.type == UPDATE))
        self._step(q)

    def _finalize(self, q: Query) -> None:
        status = q.status
        q.status = _FINALIZED
        self._queries.discard(q)
        if not q.responses:
            q.error = "No nodes responded"
        elif status == _UPDATING and not q.updates:
            q.error = "No close nodes responded"
        if q.internal:
            if q.command == "_find_node" and q.target == self.id:
                self.bootstrapped = True
            return
        self._events.append(QueryDone(q, q.error))


