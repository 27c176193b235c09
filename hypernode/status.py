"""What a node reports about itself: typed, read-only snapshots, and their JSON form.

:meth:`Node.status() <hypernode.node.Node.status>` makes a :class:`NodeStatus`: each drive the node
serves (key, version, blocks and bytes, how much of it is stored here) with its peers (address, bytes
and blocks sent and received on that connection, and how it is carried: TCP, uTP or holepunched uTP),
and whether the node is reachable and how (:attr:`NodeStatus.reachable`). ``hypernode status`` prints
it, the gateway's dashboard and ``/api/status`` show it, and :func:`NodeStatus.from_json` reads it
back from a running node's control endpoint (:mod:`hypernode.control`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PeerStatus:
    """One connected peer of a drive: the totals on that connection over the drive's feeds."""

    address: str
    public_key: bytes | None = None
    uploaded_bytes: int = 0
    downloaded_bytes: int = 0
    uploaded_blocks: int = 0
    downloaded_blocks: int = 0
    transport: str = "tcp"  # "tcp", "utp" or "holepunched" (uTP through a NAT)
    incoming: bool = False  # the peer connected to us

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "public_key": self.public_key.hex() if self.public_key else None,
                "uploaded_bytes": self.uploaded_bytes, "downloaded_bytes": self.downloaded_bytes,
                "uploaded_blocks": self.uploaded_blocks, "downloaded_blocks": self.downloaded_blocks,
                "transport": self.transport, "incoming": self.incoming}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PeerStatus:
        pk = data.get("public_key")
        return cls(address=str(data["address"]), public_key=bytes.fromhex(pk) if pk else None,
                   uploaded_bytes=int(data["uploaded_bytes"]),
                   downloaded_bytes=int(data["downloaded_bytes"]),
                   uploaded_blocks=int(data["uploaded_blocks"]),
                   downloaded_blocks=int(data["downloaded_blocks"]),
                   transport=str(data.get("transport", "tcp")), incoming=bool(data.get("incoming", False)))


@dataclass(frozen=True)
class DriveStatus:
    """A drive of the node: its version, its metadata and content feeds' blocks and bytes (``blocks``:
    as many as the feeds hold here or their peers announce; ``bytes``: as long as the feeds are known
    to be here; ``local_blocks``: stored here), whether it is seeded, and its peers. A replica whose
    content feed is not known yet (``content_known``) counts its metadata only, and is not complete."""

    key: bytes
    version: int
    writable: bool
    blocks: int
    local_blocks: int
    bytes: int
    seeded: bool = False
    peers: tuple[PeerStatus, ...] = ()
    content_known: bool = True

    @property
    def local(self) -> float:
        """The part of the drive's blocks stored here, 0.0 to 1.0: 1.0 for a writable drive with no
        blocks, 0.0 for a replica that has none yet, and below 1.0 while its content feed is unknown."""
        if not self.blocks:
            return 1.0 if self.writable else 0.0
        part = self.local_blocks / self.blocks
        return part if self.writable or self.content_known else min(part, 0.999)

    @property
    def uploaded_bytes(self) -> int:
        return sum(p.uploaded_bytes for p in self.peers)

    @property
    def downloaded_bytes(self) -> int:
        return sum(p.downloaded_bytes for p in self.peers)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key.hex(), "version": self.version, "writable": self.writable,
                "blocks": self.blocks, "local_blocks": self.local_blocks, "bytes": self.bytes,
                "local": round(self.local, 6), "seeded": self.seeded, "content_known": self.content_known,
                "uploaded_bytes": self.uploaded_bytes, "downloaded_bytes": self.downloaded_bytes,
                "peers": [p.to_json() for p in self.peers]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DriveStatus:
        return cls(key=bytes.fromhex(data["key"]), version=int(data["version"]),
                   writable=bool(data["writable"]), blocks=int(data["blocks"]),
                   local_blocks=int(data["local_blocks"]), bytes=int(data["bytes"]),
                   seeded=bool(data.get("seeded", False)),
                   content_known=bool(data.get("content_known", True)),
                   peers=tuple(PeerStatus.from_json(p) for p in data.get("peers", [])))


@dataclass(frozen=True)
class NodeStatus:
    """The node: its process, where it listens for replication (None: it does not), how many peers
    are connected, and its drives. ``running`` is False for a status read from a store no node has
    open (then there are no peers)."""

    directory: str | None
    pid: int
    running: bool
    host: str | None = None
    port: int | None = None
    connected_peers: int = 0
    drives: tuple[DriveStatus, ...] = field(default_factory=tuple)
    utp_port: int | None = None  # where uTP (and the DHT) listen: the TCP port, unless it was taken
    connections: dict[str, int] = field(default_factory=dict)  # live connections by transport
    incoming: dict[str, int] = field(default_factory=dict)  # ... of them, those the peer made

    @property
    def reachable(self) -> str:
        """How peers have reached us, the best way seen: ``"tcp"`` (a peer connected to our TCP port),
        ``"utp"`` (to our uTP port, no holepunch needed), ``"holepunched"`` (only through a NAT, by a
        holepunch), ``"unknown"`` (listening, but no peer has connected to us yet), or
        ``"not listening"``."""
        if not self.running or self.port is None:
            return "not listening"
        for way in ("tcp", "utp"):
            if self.incoming.get(way):
                return way
        if self.connections.get("holepunched"):
            return "holepunched"
        return "unknown"

    def to_json(self) -> dict[str, Any]:
        return {"directory": self.directory, "pid": self.pid, "running": self.running, "host": self.host,
                "port": self.port, "connected_peers": self.connected_peers, "utp_port": self.utp_port,
                "reachable": self.reachable, "connections": dict(self.connections),
                "incoming": dict(self.incoming), "drives": [d.to_json() for d in self.drives]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeStatus:
        """The status a node sent (ValueError, KeyError or TypeError if it is not one)."""
        return cls(directory=data.get("directory"), pid=int(data["pid"]), running=bool(data["running"]),
                   host=data.get("host"), port=None if data.get("port") is None else int(data["port"]),
                   connected_peers=int(data.get("connected_peers", 0)),
                   utp_port=None if data.get("utp_port") is None else int(data["utp_port"]),
                   connections={str(k): int(v) for k, v in dict(data.get("connections", {})).items()},
                   incoming={str(k): int(v) for k, v in dict(data.get("incoming", {})).items()},
                   drives=tuple(DriveStatus.from_json(d) for d in data["drives"]))
