"""Tools for the reliability tests: a served drive, an honest clone, and peers that misbehave on purpose.

Everything here is real: TCP on 127.0.0.1, the real handshake and ciphers, a real :class:`Node`. A
:class:`RawPeer` speaks the wire protocol through the sans-IO :class:`Connection`, so it can send any
frame (or any bytes) it likes; :func:`serve_corrupt` is a peer that holds a full copy of some feeds and
answers requests with blocks it damages in one of several ways.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import trio

from hypernode import crypto
from hypernode.corestore import Corestore
from hypernode.drive import Hyperdrive
from hypernode.node import Node
from hypernode.replication import FeedPeer, replicator_of
from hypernode.wire import ChannelOpened, Connection, MessageReceived, messages
from hypernode.wire.connection import MESSAGE_TYPES, ProtocolError
from hypernode.wire.frames import encode_frame
from hypernode.wire.stream import ProtocolStream

FILES = {f"/d{i % 3}/f{i:02}.bin": hashlib.sha256(str(i).encode()).digest() * (1024 * (i + 1))
         for i in range(12)}  # 12 files of 32 KiB to 384 KiB (one content block each): about 2.5 MiB


async def fill_drive(drive: Hyperdrive) -> None:
    for path, data in FILES.items():
        await drive.write_file(path, data)


async def honest_clone(port: int, key: bytes, directory: Any = None, *, timeout: float = 60) -> dict:
    """Clone the drive from ``127.0.0.1:port`` into a fresh node; returns {path: sha256} of its files."""
    async with Node(directory, port=None, peers=[("127.0.0.1", port)]) as node:
        copy = await node.open_drive(key)
        with trio.fail_after(timeout):
            await node.sync_feed(copy.metadata)
            content = await copy.content_feed()
            await node.sync_feed(content)
            return {p: hashlib.sha256(await copy.read_file(p)).hexdigest() for p in FILES}


def expected_digests() -> dict:
    return {p: hashlib.sha256(d).hexdigest() for p, d in FILES.items()}


class ClosedDuringHandshake(ConnectionError):
    pass


class RawPeer:
    """A peer that speaks the protocol by hand over TCP: any frame, any bytes, any pace."""

    def __init__(self, tcp: trio.SocketStream) -> None:
        self.tcp = tcp
        self.conn = Connection(True)
        self.events: list[Any] = []
        self.received = 0
        self.closed = False
        self.decode = True  # False: read and count what arrives, answer nothing
        self.closes = 0  # Close messages received (the connection handles them without an event)
        on_close = self.conn._on_close

        def count_close(channel_id: int, message: Any, events: list[Any]) -> None:
            self.closes += 1
            on_close(channel_id, message, events)
        self.conn._on_close = count_close  # type: ignore[method-assign]

    @classmethod
    async def connect(cls, port: int) -> RawPeer:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def handshake(self, timeout: float = 10) -> None:
        """Raises :class:`ClosedDuringHandshake` if the remote closes first (a handshake timeout of the
        node's, under load): reading on would spin, a closed connection never blocking."""
        self.conn.start()
        await self.flush()
        with trio.fail_after(timeout):
            while not self.conn.handshake_complete:
                if not await self.receive_once():
                    raise ClosedDuringHandshake("the remote closed the connection during the handshake")

    async def flush(self) -> None:
        await self.send_raw(self.conn.data_to_send())

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (before the handshake: instead of it). Once the remote has closed the
        connection this does nothing (``closed`` says so)."""
        if data and not self.closed:
            try:
                await self.tcp.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                self.closed = True

    async def send_plain(self, plaintext: bytes) -> None:
        """Bytes encrypted as frames are, but framed (or not) by the caller."""
        self.conn._plain.append(plaintext)
        self.conn._out_size += len(plaintext)
        await self.flush()

    async def send_frame(self, channel: int, type_: int, message: Any) -> None:
        body = message if isinstance(message, bytes) else message.encode()
        await self.send_plain(encode_frame(channel, type_, body))

    async def open(self, channel: int, key: bytes, *, capability: bytes | None = None) -> None:
        """Open ``channel`` for the feed of ``key``, with the right capability unless one is given."""
        assert self.conn._split is not None
        cap = capability if capability is not None else crypto.capability(key, *self.conn._split)
        open_ = messages.Open(discoveryKey=crypto.discovery_key(key), capability=cap)
        await self.send_frame(channel, 0, open_)

    async def receive_once(self) -> bool:
        """One read; False once the remote closed the connection (or reset it)."""
        if self.closed:
            return False
        try:
            data = await self.tcp.receive_some(1 << 16)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            data = b""
        if not data:
            self.closed = True
            return False
        self.received += len(data)
        if self.decode and not self.conn.closed:
            try:
                self.events += self.conn.receive_data(data)
            except ProtocolError:  # our own side of a garbage handshake: just keep reading
                pass
        await self.flush()
        return True

    async def wait_closed(self, timeout: float) -> float:
        """Read (and decode) until the remote closes; returns how long that took."""
        start = trio.current_time()
        with trio.fail_after(timeout):
            while await self.receive_once():
                pass
        return trio.current_time() - start

    def messages_of(self, name: str) -> list[Any]:
        return [e.message for e in self.events if isinstance(e, MessageReceived)
                and type(e.message).__name__ == name]

    async def aclose(self) -> None:
        await self.tcp.aclose()


def corrupt(mode: str, message: Any, forger: crypto.KeyPair) -> Any:
    """A Data message damaged in one way (other messages pass unchanged)."""
    if type(message).__name__ != "Data" or message.value is None:
        return message
    m = messages.Data(index=message.index, value=message.value, nodes=list(message.nodes),
                      signature=message.signature)
    if mode == "flipped byte":
        m.value = bytes([m.value[0] ^ 1]) + m.value[1:] if m.value else b"x"
    elif mode == "wrong proof":
        if m.nodes:
            n = m.nodes[0]
            m.nodes[0] = messages.Data.Node(index=n.index, hash=bytes(32), size=n.size)
        else:
            m.value = m.value + b"!"
    elif mode == "wrong size":
        if m.nodes:
            n = m.nodes[-1]
            m.nodes[-1] = messages.Data.Node(index=n.index, hash=n.hash, size=n.size + 1)
        else:
            m.value = m.value + b"!"
    elif mode == "zero signature":
        if m.signature is None:  # the block was verifiable without one: damage it too
            m.value = m.value + b"!"
        m.signature = bytes(64)
    elif mode == "forged signature":
        # a whole new tree for a block of our choosing, signed with another key
        value = b"forged " + m.value
        leaf = crypto.data_hash(value)
        m.value, m.nodes = value, []
        m.signature = crypto.sign(crypto.signable([_node(2 * m.index, leaf, len(value))], m.index + 1),
                                  forger.secret_key)
    elif mode == "no signature":
        m.signature = None
        m.value = m.value[:-1] + b"?" if m.value else b"?"
    elif mode == "swapped block":
        m.index = m.index + 1 if m.index % 2 == 0 else m.index - 1
    return m


def _node(index: int, hash_: bytes, size: int) -> Any:
    from hypernode.storage import Node as TreeNode

    return TreeNode(index, hash_, size)


CORRUPTIONS = ["flipped byte", "wrong proof", "wrong size", "zero signature", "forged signature",
               "no signature", "swapped block"]


async def serve_corrupt(listener: trio.SocketListener, store: Corestore, mode: str,
                        served: list[int], task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Accept one connection and replicate every feed of ``store``, damaging each block it sends."""
    task_status.started()
    forger = crypto.key_pair()
    tcp = await listener.accept()
    async with ProtocolStream(tcp, initiator=False) as ps:
        try:
            await ps.wait_handshake()
        except Exception:  # noqa: BLE001
            return
        peers: dict[bytes, FeedPeer] = {}
        channels = {}
        first: list[Any] = []
        for feed in store.feeds:
            ch, events = ps.open_channel(feed.key)
            channels[feed.discovery_key] = (ch, feed)
            first += events

        def sender(ch: Any) -> Any:
            def send(m: Any) -> None:
                if type(m).__name__ == "Data":
                    served[0] += 1
                ps.send(ch, corrupt(mode, m, forger))
            return send

        async def batches() -> Any:
            yield first
            async for batch in ps.batches():
                yield batch

        async for batch in batches():
            for ev in batch:
                if isinstance(ev, ChannelOpened) and ev.channel.discovery_key in channels:
                    ch, feed = channels[ev.channel.discovery_key]
                    peer = FeedPeer(replicator_of(feed), sender(ch))
                    peers[ch.discovery_key] = peer
                    peer.on_open()
                elif isinstance(ev, MessageReceived):
                    peer = peers.get(ev.channel.discovery_key)
                    if peer is not None:
                        peer.on_message(ev.message)


def random_message_frames(rnd: Any, count: int) -> list[bytes]:
    """Frames of every type whose bodies are random bytes or random field values."""
    out = []
    for _ in range(count):
        t = rnd.choice([*range(len(MESSAGE_TYPES)), 11, 12, 13, 14, 15])
        ch = rnd.choice([0, 1, 2, rnd.randrange(1 << 20)])
        body = os.urandom(rnd.randrange(0, 64))
        out.append(encode_frame(ch, t, body))
    return out
