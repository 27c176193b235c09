"""The @hyperswarm/dht 4.0.1 layer over dht-rpc: the ``peers`` command, sans-IO.

Serving: :class:`PeerStore` keeps the announcements a DHT node received, as @hyperswarm/dht's
record-cache does: per topic, the ``ip:port`` (6 bytes) of each announcer, and per topic and LAN
prefix (the first two bytes of the announcer's ``localAddress``) its local record (4 bytes); records
expire ``max_age`` after their last announcement (12 minutes), at most ``max_size`` in all (the oldest
go first) and ``max_per_topic`` per topic. :meth:`PeerStore.register` installs the ``peers`` command on
an :class:`~hypernode.discovery.rpc.RPCNode`: a query returns up to 128 records (32 local ones first)
other than the asker's own; an update (its round-trip token checked by the RPC layer) adds or, with
``unannounce``, removes the sender's record, at the port it gave or else its UDP port.

Asking: :func:`peers_input` builds the value of an announce, lookup or unannounce, and
:func:`parse_peers_output` reads an answer (``None`` for a malformed one).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from hypernode.discovery.addresses import Peer, decode_local_peers, decode_peers, encode_peer, is_ipv4
from hypernode.discovery.rpc import QUERY, IncomingRequest, RPCNode
from hypernode.messages.hyperswarm_dht import PeersInput, PeersOutput
from hypernode.protobuf import DecodeError

MAX_AGE = 12 * 60.0
MAX_SIZE = 65536
MAX_PER_TOPIC = 4096
MAX_REPLY = 128
MAX_LOCAL_REPLY = 32


class PeerStore:
    """The announcements a DHT node holds, and the ``peers`` command that serves them."""

    def __init__(self, *, max_age: float = MAX_AGE, max_size: int = MAX_SIZE,
                 max_per_topic: int = MAX_PER_TOPIC, clock: Callable[[], float] | None = None) -> None:
        self.max_age = max_age
        self.max_size = max_size
        self.max_per_topic = max_per_topic
        self._clock = clock
        self._topics: dict[str, OrderedDict[bytes, float]] = {}
        self._age: OrderedDict[tuple[str, bytes], float] = OrderedDict()  # oldest first, in all topics
        self.announces = 0
        self.lookups = 0

    def __len__(self) -> int:
        return len(self._age)

    def register(self, rpc: RPCNode) -> None:
        if self._clock is None:
            self._clock = lambda: rpc._now
        rpc.register_command("peers", query=self.handle, update=self.handle)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else 0.0

    # -- records -----------------------------------------------------------------------------------

    def add(self, name: str, record: bytes) -> None:
        now = self._now()
        self.expire(now)
        records = self._topics.setdefault(name, OrderedDict())
        records[record] = now
        records.move_to_end(record)
        self._age[(name, record)] = now
        self._age.move_to_end((name, record))
        if len(records) > self.max_per_topic:
            self.remove(name, next(iter(records)))
        while len(self._age) > self.max_size:
            (old_name, old_record), _ = next(iter(self._age.items()))
            self.remove(old_name, old_record)

    def remove(self, name: str, record: bytes) -> None:
        records = self._topics.get(name)
        if records is None or record not in records:
            return
        del records[record]
        if not records:
            del self._topics[name]
        self._age.pop((name, record), None)

    def get(self, name: str, n: int) -> list[bytes]:
        """Up to ``n`` records of ``name``, the most recently announced first."""
        self.expire(self._now())
        records = self._topics.get(name)
        if not records or n <= 0:
            return []
        out = []
        for record in reversed(records):
            out.append(record)
            if len(out) == n:
                break
        return out

    def expire(self, now: float) -> None:
        while self._age:
            (name, record), at = next(iter(self._age.items()))
            if now - at <= self.max_age:
                break
            self.remove(name, record)

    # -- the command -------------------------------------------------------------------------------

    def handle(self, req: IncomingRequest) -> tuple[bytes | None, str | None]:
        value = PeersInput.decode(req.value or b"")  # DecodeError: the RPC layer drops the request
        port = value.port or req.port
        if not 0 < port < 65536 or not is_ipv4(req.host):
            return None, "Invalid port"
        remote_record = encode_peer(req.host, port)
        remote_name = req.target.hex()
        local = value.localAddress
        if local is not None and len(local) != 6:
            local = None
        local_name = f"{remote_name}@local.{local[:2].hex()}" if local else None
        local_suffix = local[2:] if local else b""

        if req.type == QUERY:
            self.lookups += 1
            local_peers: list[bytes] = []
            if local_name:
                local_peers = [r for r in self.get(local_name, MAX_LOCAL_REPLY + 1) if r != local_suffix]
                local_peers = local_peers[:MAX_LOCAL_REPLY]
            room = MAX_REPLY - len(local_peers)
            remote = [r for r in self.get(remote_name, room + 1) if r != remote_record][:room]
            out = PeersOutput(peers=b"".join(remote) or None, localPeers=b"".join(local_peers) or None)
            return out.encode(), None
        if value.unannounce:
            self.remove(remote_name, remote_record)
            if local_name:
                self.remove(local_name, local_suffix)
        else:
            self.announces += 1
            self.add(remote_name, remote_record)
            if local_name:
                self.add(local_name, local_suffix)
        return None, None


# -- asking ----------------------------------------------------------------------------------------


def peers_input(*, port: int | None = None, local_address: tuple[str, int] | None = None,
                unannounce: bool = False) -> bytes:
    """The value of an announce (``port``: the TCP port peers should connect to; 0 or None: our UDP
    port), a lookup (the ``port`` lets the node leave our own record out) or an unannounce."""
    return PeersInput(port=port or None,
                      localAddress=encode_peer(*local_address) if local_address else None,
                      unannounce=True if unannounce else None).encode()


@dataclass
class PeersFound:
    peers: list[Peer]
    local_peers: list[Peer]


def parse_peers_output(value: bytes | None,
                       local_address: tuple[str, int] | None = None) -> PeersFound | None:
    """The peers of an answer to a ``peers`` query; None if it has none or does not decode. A
    malformed ``peers`` list counts as empty (as @hyperswarm/dht's ``mapPeers``)."""
    if not value:
        return None
    try:
        out = PeersOutput.decode(value)
    except DecodeError:
        return None
    if out.peers is None and out.localPeers is None:
        return None
    peers = decode_peers(out.peers) or []
    local: list[Peer] = []
    if local_address is not None and out.localPeers is not None:
        local = decode_local_peers(encode_peer(*local_address), out.localPeers) or []
    return PeersFound(peers, local)
