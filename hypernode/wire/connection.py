"""The hypercore-protocol 8 connection as a sans-IO state machine (bytes in, events and bytes out).

Feed it what the socket received with :meth:`Connection.receive_data`, which returns :class:`Event`
objects; send what :meth:`Connection.data_to_send` returns. No sockets, no trio, no clocks here: the
trio adapter (:mod:`hypernode.wire.stream`) owns those.

Protocol facts (simple-hypercore-protocol 2.1.2, hypercore-protocol 8.0.7):
- a Noise XX handshake (:mod:`hypernode.wire.noise`), then XSalsa20 on every byte each way;
- frames ``varint(len) || varint(channel << 4 | type) || protobuf`` (:mod:`hypernode.wire.frames`);
  types 0-10 are Open, Options, Status, Have, Unhave, Want, Unwant, Request, Cancel, Data, Close;
  type 15 an extension message ``varint(id) || payload``; an empty frame is a keep-alive;
- a channel is opened by each side with ``Open{discoveryKey, capability}`` on a channel id of its own
  choosing (from 1; channel 0 carries stream-level Options and extensions). The capability is a keyed
  BLAKE2b of the feed key with the handshake split, so only a peer that knows the key can open it.
  A remote Open with a bad capability on a channel we opened ends the connection, as in JS; when the
  remote opened first and we open afterwards, a bad capability closes just that channel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hypernode import crypto
from hypernode.messages import hypercore_protocol as messages
from hypernode.protobuf import Message
from hypernode.varint import DecodeError, decode_varint, encode_varint
from hypernode.wire.cipher import XSalsa20Stream
from hypernode.wire.extensions import Extensions
from hypernode.wire.frames import EXTENSION_TYPE, MAX_FRAME, FrameDecoder, ProtocolError, varint
from hypernode.wire.noise import Handshake, KeyPair

MESSAGE_TYPES: list[type[Message]] = [messages.Open, messages.Options, messages.Status, messages.Have,
                             messages.Unhave, messages.Want, messages.Unwant, messages.Request,
                             messages.Cancel, messages.Data, messages.Close]
TYPE_IDS: dict[type, int] = {cls: i for i, cls in enumerate(MESSAGE_TYPES)}
OPEN, OPTIONS, CLOSE = 0, 1, 10
MAX_CHANNELS = 4096  # a remote opening more than this many channels at once is refused


# -- events ----------------------------------------------------------------------------------------


class Event:
    """Base class of what :meth:`Connection.receive_data` returns."""


@dataclass
class HandshakeComplete(Event):
    remote_public_key: bytes


@dataclass
class RemoteOpened(Event):
    """The remote opened a channel for a discovery key we have not opened: open it or close it."""

    channel: Channel


@dataclass
class ChannelOpened(Event):
    """Both sides opened the channel and the remote's capability verified."""

    channel: Channel


@dataclass
class MessageReceived(Event):
    channel: Channel
    message: Any


@dataclass
class ExtensionReceived(Event):
    """An extension message; ``channel`` is None for a stream-level extension (channel 0)."""

    channel: Channel | None
    extension_id: int
    payload: bytes


@dataclass
class StreamOptions(Event):
    """The remote's stream-level Options (its stream extension names)."""

    extensions: list[str]


@dataclass
class ChannelClosed(Event):
    channel: Channel


@dataclass
class Ping(Event):
    """A keep-alive arrived (useful only to reset a timeout)."""


# -- channels --------------------------------------------------------------------------------------


@dataclass(eq=False)
class Channel:
    discovery_key: bytes
    key: bytes | None = None
    local_id: int = -1
    remote_id: int = -1
    remote_capability: bytes | None = None
    remote_extensions: list[str] | None = None
    remote_ack: bool = False
    context: Any = field(default=None, repr=False)  # whatever the layer above attaches

    @property
    def opened(self) -> bool:
        return self.local_id > -1

    @property
    def remote_opened(self) -> bool:
        return self.remote_id > -1


# -- the connection --------------------------------------------------------------------------------


class Connection:
    """One hypercore-protocol connection, initiator or responder."""

    def __init__(self, initiator: bool, *, key_pair: KeyPair | None = None,
                 max_frame: int = MAX_FRAME) -> None:
        self.initiator = initiator
        self.key_pair = key_pair or KeyPair.generate()
        self.nonce = os.urandom(24)
        self._handshake: Handshake | None = Handshake(initiator, self.key_pair, self.nonce)
        self._frames = FrameDecoder(max_frame)
        self._out: list[bytes | memoryview] = []  # handshake bytes, sent as they are
        self._plain: list[bytes | bytearray] = []  # frames, encrypted together when taken by data_to_send
        self._out_size = 0
        self._pending: list[tuple[int, int, Any]] = []  # frames queued until the handshake is done
        self._tx: XSalsa20Stream | None = None
        self._rx: XSalsa20Stream | None = None
        self._split: tuple[bytes, bytes] | None = None
        self.remote_public_key: bytes | None = None
        self.handshake_hash: bytes | None = None
        self.closed = False
        self._started = False
        self._channels: dict[bytes, Channel] = {}
        self._local: list[Channel | None] = [None]
        self._remote: dict[int, Channel] = {}
        self.extensions = Extensions(on_change=self._stream_extensions_changed)
        self._sent_extension_names: list[str] | None = None
        self._sent_extension_changes = -1
        self.remote_extensions: list[str] | None = None
        self.bytes_received = 0
        self.bytes_sent = 0

    # -- bytes in and out --------------------------------------------------------------------------

    @property
    def public_key(self) -> bytes:
        return self.key_pair.public_key

    @property
    def handshake_complete(self) -> bool:
        return self._split is not None

    def start(self) -> None:
        """Begin: the initiator's first handshake message goes into the outgoing buffer."""
        if self._started:
            return
        self._started = True
        assert self._handshake is not None
        first = self._handshake.start()
        if first:
            self._queue(first)

    def data_to_send(self) -> bytes:
        """Everything queued for the remote (encrypted), emptying the queue."""
        if not self._out_size:
            return b""
        parts = self._out
        if self._plain:
            assert self._tx is not None
            plain = b"".join(self._plain) if len(self._plain) > 1 else self._plain[0]
            parts = [*parts, self._tx.update(plain)]
            self._plain = []
        data = b"".join(parts) if len(parts) > 1 else bytes(parts[0])
        self._out = []
        self._out_size = 0
        self.bytes_sent += len(data)
        return data

    @property
    def pending_output(self) -> int:
        return self._out_size

    def _queue(self, data: bytes) -> None:
        self._out.append(data)
        self._out_size += len(data)

    def receive_data(self, data: bytes | bytearray) -> list[Event]:
        """Process bytes from the remote. Raises :class:`ProtocolError` when the remote breaks the
        protocol; the connection is then unusable and should be closed."""
        if self.closed:
            raise ProtocolError("the connection is closed")
        self.start()
        self.bytes_received += len(data)
        events: list[Event] = []
        try:
            if self._handshake is not None:
                reply = self._handshake.receive(data)
                if reply:
                    self._queue(reply)
                result = self._handshake.result
                if result is None:
                    return events
                overflow = self._handshake.overflow
                self._handshake = None
                self._split = (result.tx_key, result.rx_key)
                self._tx = XSalsa20Stream(result.tx_key, self.nonce)
                self._rx = XSalsa20Stream(result.rx_key, result.remote_nonce)
                self.remote_public_key = result.remote_public_key
                self.handshake_hash = result.handshake_hash
                events.append(HandshakeComplete(result.remote_public_key))
                pending, self._pending = self._pending, []
                for channel_id, type_, message in pending:
                    self._send_frame(channel_id, type_, message)
                data = overflow
                if not data:
                    return events
            assert self._rx is not None
            plain = self._rx.update(data)
            for frame in self._frames.feed(plain):
                if frame is None:
                    events.append(Ping())
                    continue
                self._on_frame(frame[0], frame[1], frame[2], events)
        except ProtocolError:
            self.closed = True
            raise
        return events

    # -- sending -----------------------------------------------------------------------------------

    def _send_frame(self, channel_id: int, type_: int, message: Any) -> None:
        if self.closed:
            return
        if self._split is None:
            self._pending.append((channel_id, type_, message))
            return
        if type_ == OPEN and message.capability is None and isinstance(message, _OpenWithKey):
            message = messages.Open(discoveryKey=message.discoveryKey,
                                    capability=crypto.capability(message.key, *self._split))
        if isinstance(message, (bytes, bytearray)):
            body: bytes | bytearray = message
        else:
            body = bytearray()
            message.encode_into(body)
        header = varint((channel_id << 4) | type_)
        prefix = varint(len(header) + len(body)) + header
        self._plain.append(prefix)
        self._plain.append(body)
        self._out_size += len(prefix) + len(body)

    def send(self, channel: Channel, message: Any) -> None:
        """Send a message (Options ... Data) on a channel we opened."""
        if channel.local_id < 0:
            return
        type_ = TYPE_IDS.get(type(message))
        if type_ is None or type_ in (OPEN, CLOSE):
            raise TypeError(f"cannot send {type(message).__name__} with send()")
        self._send_frame(channel.local_id, type_, message)

    def send_extension(self, channel: Channel | None, extension_id: int, payload: bytes) -> None:
        """Send an extension message on a channel, or at stream level when ``channel`` is None."""
        if channel is None:
            self._send_stream_options_if_changed()
            self._send_frame(0, EXTENSION_TYPE, encode_varint(extension_id) + bytes(payload))
        elif channel.local_id > -1:
            self._send_frame(channel.local_id, EXTENSION_TYPE, encode_varint(extension_id) + bytes(payload))

    def ping(self) -> None:
        """Queue a keep-alive (an empty frame)."""
        if self._split is not None and self._tx is not None and not self.closed:
            self._plain.append(b"\x00")
            self._out_size += 1

    def _stream_extensions_changed(self) -> None:
        if self._split is not None:
            self._send_stream_options_if_changed()

    def _send_stream_options_if_changed(self) -> None:
        if self._sent_extension_changes == self.extensions.changes:
            return
        self._sent_extension_changes = self.extensions.changes
        names = self.extensions.names()
        if names != self._sent_extension_names:
            self._sent_extension_names = names
            self._send_frame(0, OPTIONS, messages.Options(extensions=names))

    # -- channels ----------------------------------------------------------------------------------

    @property
    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def channel(self, discovery_key: bytes) -> Channel | None:
        return self._channels.get(discovery_key)

    def open_channel(self, key: bytes) -> tuple[Channel, list[Event]]:
        """Open a channel for the feed with this public key.

        Returns the channel and any events that follow at once (:class:`ChannelOpened` if the remote
        had already opened it, or :class:`ChannelClosed` if its capability does not verify).
        """
        dk = crypto.discovery_key(key)
        ch = self._channels.get(dk)
        if ch is None:
            ch = self._channels[dk] = Channel(dk)
        events: list[Event] = []
        if ch.key is None:
            ch.key = key
            ch.local_id = self._alloc_local()
            self._local[ch.local_id] = ch
            self._send_frame(ch.local_id, OPEN, _OpenWithKey(dk, key))
            if ch.remote_opened:
                if self._verified(ch):
                    events.append(ChannelOpened(ch))
                else:
                    events.append(self._close(ch))
        return ch, events

    def close_channel(self, discovery_key: bytes) -> list[Event]:
        """Close our side of a channel (or refuse one the remote opened)."""
        ch = self._channels.get(discovery_key)
        if ch is not None and ch.local_id > -1:
            return [self._close(ch)]
        self._send_frame(self._alloc_local(), CLOSE, messages.Close(discoveryKey=discovery_key))
        if ch is not None:
            self._forget(ch)
        return []

    def _close(self, ch: Channel) -> ChannelClosed:
        if ch.local_id > -1:
            local_id = ch.local_id
            self._local[local_id] = None
            ch.local_id = -1
            self._send_frame(local_id, CLOSE, messages.Close())
        self._forget(ch)
        return ChannelClosed(ch)

    def _forget(self, ch: Channel) -> None:
        if ch.remote_id > -1 and self._remote.get(ch.remote_id) is ch:
            del self._remote[ch.remote_id]
        if self._channels.get(ch.discovery_key) is ch:
            del self._channels[ch.discovery_key]

    def _alloc_local(self) -> int:
        for i in range(1, len(self._local)):
            if self._local[i] is None:
                return i
        self._local.append(None)
        return len(self._local) - 1

    def _verified(self, ch: Channel) -> bool:
        if ch.key is None or ch.remote_capability is None or self._split is None:
            return False
        return ch.remote_capability == crypto.remote_capability(ch.key, *self._split)

    # -- incoming frames ---------------------------------------------------------------------------

    def _on_frame(self, channel_id: int, type_: int, body: bytes, events: list[Event]) -> None:
        if type_ == EXTENSION_TYPE:
            try:
                ext_id, off = decode_varint(body, 0)
            except DecodeError:
                raise ProtocolError("malformed extension message") from None
            ch = self._remote.get(channel_id) if channel_id else None
            if channel_id and ch is None:
                return
            events.append(ExtensionReceived(ch, ext_id, body[off:]))
            return
        if type_ >= len(MESSAGE_TYPES):
            raise ProtocolError(f"unknown message type {type_}")
        try:
            message = MESSAGE_TYPES[type_].decode(body)
        except DecodeError as e:
            raise ProtocolError(f"malformed {MESSAGE_TYPES[type_].__name__} message: {e}") from None

        if isinstance(message, messages.Open):
            self._on_open(channel_id, message, events)
            return
        if isinstance(message, messages.Close):
            self._on_close(channel_id, message, events)
            return
        ch = self._remote.get(channel_id)
        if ch is None:
            if isinstance(message, messages.Options) and channel_id == 0:
                self.remote_extensions = list(message.extensions)
                events.append(StreamOptions(list(message.extensions)))
            return  # a message for a channel that is not open: ignored, as JS does
        if isinstance(message, messages.Options):
            ch.remote_extensions = list(message.extensions)
            ch.remote_ack = bool(message.ack)
        events.append(MessageReceived(ch, message))

    def _on_open(self, channel_id: int, message: messages.Open, events: list[Event]) -> None:
        dk = message.discoveryKey
        if len(dk) != 32:
            raise ProtocolError("Open with a discovery key that is not 32 bytes")
        if channel_id == 0:
            raise ProtocolError("Open on channel 0")
        if channel_id in self._remote:
            raise ProtocolError(f"channel {channel_id} opened twice")
        ch = self._channels.get(dk)
        if ch is None:
            if len(self._channels) >= MAX_CHANNELS:
                raise ProtocolError(f"the remote opened more than {MAX_CHANNELS} channels")
            ch = self._channels[dk] = Channel(dk)
        elif ch.remote_opened:
            raise ProtocolError("the remote opened the same feed twice")
        ch.remote_capability = message.capability
        ch.remote_id = channel_id
        self._remote[channel_id] = ch
        if ch.local_id == -1:
            events.append(RemoteOpened(ch))
            return
        if not self._verified(ch):
            raise ProtocolError("invalid remote channel capability")
        events.append(ChannelOpened(ch))

    def _on_close(self, channel_id: int, message: messages.Close, events: list[Event]) -> None:
        ch = self._remote.get(channel_id)
        if ch is not None:
            del self._remote[channel_id]
            ch.remote_id = -1
        elif message.discoveryKey is not None:
            ch = self._channels.get(message.discoveryKey)
        if ch is None:
            return
        if ch.local_id > -1:
            self._local[ch.local_id] = None
            self._send_frame(ch.local_id, CLOSE, messages.Close())
            ch.local_id = -1
        self._forget(ch)
        events.append(ChannelClosed(ch))

    def close(self) -> list[Event]:
        """End the connection: every open channel is reported closed."""
        events: list[Event] = [ChannelClosed(ch) for ch in self._channels.values()]
        self._channels.clear()
        self._remote.clear()
        self._local = [None]
        self.closed = True
        return events


class _OpenWithKey:
    """An Open whose capability is computed when it is sent (after the handshake)."""

    __slots__ = ("discoveryKey", "key", "capability")

    def __init__(self, discovery_key: bytes, key: bytes) -> None:
        self.discoveryKey = discovery_key
        self.key = key
        self.capability = None


__all__ = ["Connection", "Channel", "Event", "HandshakeComplete", "RemoteOpened", "ChannelOpened",
           "MessageReceived", "ExtensionReceived", "StreamOptions", "ChannelClosed", "Ping",
           "ProtocolError", "messages", "MESSAGE_TYPES"]
