"""Protomux, sans-IO: many channels, each a protocol with its own typed messages, over one message stream.

This is the framing of npm ``protomux`` 3.x, which hypercore 11 replicates over (on a secret-stream,
which carries whole messages). A :class:`Mux` takes whole messages from the layer below
(:meth:`Mux.receive`, which returns what happened as events) and gives the messages to send
(:meth:`Mux.data_to_send`); it does no IO and keeps no time.

Every message starts with a ``uint`` channel number and a ``uint`` type (compact-encoding). Channel 0
is the control channel:

- type 1, open: ``uint`` the sender's channel number, ``string`` protocol, ``optional buffer`` id, then the
  handshake (the bytes to the end, the protocol's own encoding);
- type 2, reject: ``uint`` the channel number the rejected open had;
- type 3, close: ``uint`` the sender's channel number;
- type 0, batch: a ``uint`` channel number, then entries: a ``uint`` length and a message of that many
  bytes (its type and body) on that channel; a length of 0 is followed by the next entries' channel
  number. Control messages in a batch are on channel 0 (type and body, no channel number).

Each side numbers its own channels from 1 (reusing numbers freed by a close or reject, last freed first)
and sends with its own number; the receiver keeps the remote's numbers apart from its own. Two opens
with the same protocol and id pair up into one channel: a local :meth:`Mux.open` with the first remote
open of that protocol and id, or the reverse. A remote open that finds no local one is offered as
:class:`OpenRequested` if the protocol (and id) was :meth:`Mux.pair`-ed, to be accepted by
:meth:`Mux.open` with the same protocol and id or refused by :meth:`Mux.reject`; otherwise it is
rejected at once, as JS does. Messages that come for an offered channel wait until it is accepted.
Messages for channels closed (or never opened) are dropped, as JS drops them, and so are types the
channel does not know (that is for the protocol above to ignore).

:meth:`Mux.cork` (or ``with mux.corked():``) gathers what is sent into batches until the matching
:meth:`Mux.uncork`, byte for byte as JS does (a batch is sent once it reaches 8 MiB). A received batch
of several messages comes as :class:`BatchStarted`, its events, :class:`BatchEnded`: JS answers a batch
with a batch (it corks until the batch's messages are handled).

Limits (bad or hostile peers): a message longer than ``max_message_size``, more than ``max_channels``
remote channels (open or offered), more than ``max_buffered`` bytes waiting for channels not accepted
yet, a batch inside a batch, or an open or reject that does not fit the channels raise
:class:`~hypernode.errors.DecodeError` (its message starting "limit:" for the limits); malformed bytes
too. Nothing else leaves :meth:`Mux.receive`. Local misuse (too many local channels, sending on a closed
channel, a message too long) raises ``ValueError``. JS differs in that it has no limits (it pauses the
stream above 32 KiB waiting; :attr:`Mux.paused` says when it would), reads a batch entry that runs past
the end as the bytes left (here an error), and keeps an open the remote closed before it was accepted
(here it is withdrawn, :class:`OpenWithdrawn`, and answered with a reject so that the remote may reuse
its number).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from hypernode.core11.encoding import Reader, Writer, uint_length
from hypernode.errors import DecodeError

__all__ = ["Mux", "Channel", "Event", "OpenRequested", "OpenWithdrawn", "ChannelOpened", "ChannelClosed",
           "MessageReceived", "BatchStarted", "BatchEnded", "DecodeError", "MAX_BATCH"]

MAX_BATCH = 8 * 1024 * 1024  # a batch is sent once it holds this many bytes (as JS)
_PAUSE_BUFFERED = 32768  # JS pauses the stream when more than this waits for channels (512 + len each)

_BATCH, _OPEN, _REJECT, _CLOSE = 0, 1, 2, 3


@dataclass(eq=False)
class Channel:
    """One channel: ``protocol`` and ``id`` (``None`` for none), the numbers each side gives it
    (``local_id`` 0 once closed, ``remote_id`` 0 until the remote opened it), the remote's handshake
    once :attr:`opened`. Send with :meth:`Mux.send` (or :meth:`send`), close with :meth:`Mux.close`."""

    mux: Mux = field(repr=False)
    protocol: str
    id: bytes | None
    local_id: int = 0
    remote_id: int = 0
    handshake: bytes | None = None
    opened: bool = False
    closed: bool = False

    def send(self, type: int, body: bytes | bytearray | memoryview = b"") -> None:
        self.mux.send(self, type, body)

    def close(self) -> None:
        self.mux.close(self)


@dataclass(frozen=True)
class OpenRequested:
    """The remote opened a channel of a paired protocol that no local channel waits for: accept it with
    ``mux.open(protocol, id, handshake)``, or refuse it with ``mux.reject(remote_id)``."""

    remote_id: int
    protocol: str
    id: bytes | None
    handshake: bytes


@dataclass(frozen=True)
class OpenWithdrawn:
    """The remote closed a channel it had opened before it was accepted (the :class:`OpenRequested`
    with this ``remote_id`` is void)."""

    remote_id: int


@dataclass(frozen=True)
class ChannelOpened:
    """Both sides have opened ``channel``; ``handshake`` is the remote's (also ``channel.handshake``)."""

    channel: Channel
    handshake: bytes


@dataclass(frozen=True)
class ChannelClosed:
    """The remote closed ``channel`` (``rejected``: it refused our open instead)."""

    channel: Channel
    rejected: bool = False


@dataclass(frozen=True)
class MessageReceived:
    """A message of type ``type`` on ``channel``; ``body`` is its bytes (the protocol's encoding)."""

    channel: Channel
    type: int
    body: bytes


@dataclass(frozen=True)
class BatchStarted:
    """The events up to :class:`BatchEnded` came in one batch of ``count`` messages."""

    count: int


@dataclass(frozen=True)
class BatchEnded:
    """The end of a batch's events."""


Event = (OpenRequested | OpenWithdrawn | ChannelOpened | ChannelClosed | MessageReceived | BatchStarted
         | BatchEnded)


def _key(protocol: str, id: bytes | None) -> tuple[str, bytes]:
    return (protocol, id or b"")


@dataclass(eq=False)
class _Info:
    """What is known of one protocol and id (and its aliases): open channels, local opens the remote has
    not answered (their local numbers), remote opens not accepted yet (their remote numbers)."""

    keys: list[tuple[str, bytes]]
    opened: int = 0
    outgoing: list[int] = field(default_factory=list)
    incoming: list[int] = field(default_factory=list)


@dataclass(eq=False)
class _Remote:
    """A channel number the remote uses: offered (``channel`` None, messages waiting in ``pending``) or
    paired with a local channel."""

    info: _Info
    protocol: str
    id: bytes | None
    handshake: bytes
    channel: Channel | None = None
    pending: list[tuple[int, bytes]] = field(default_factory=list)


def _control(type: int, number: int) -> bytes:
    return Writer().uint(0).uint(type).uint(number).getvalue()


class Mux:
    """The sans-IO protomux of one stream (see the module docstring)."""

    def __init__(self, *, max_channels: int = 65536, max_buffered: int = 8 * 1024 * 1024,
                 max_message_size: int = 16 * 1024 * 1024) -> None:
        self.max_channels = max_channels
        self.max_buffered = max_buffered
        self.max_message_size = max_message_size
        self._local: list[Channel | None] = []
        self._free: list[int] = []  # local numbers - 1 free for reuse (last freed first)
        self._remote: list[_Remote | None] = []
        self._remote_count = 0
        self._infos: dict[tuple[str, bytes], _Info] = {}
        self._pairs: set[tuple[str, bytes]] = set()
        self._events: list[Event] = []
        self._out: list[bytes] = []
        self._corked = 0
        self._batch: list[tuple[int, bytes]] = []
        self._batch_end = 0
        self._buffered = 0
        self._in_batch = False

    # -- what the layer above sees --------------------------------------------------------------------

    def __iter__(self) -> Iterator[Channel]:
        """The open channels."""
        return (c for c in self._local if c is not None)

    @property
    def cork_depth(self) -> int:
        """How many :meth:`cork` calls wait for their :meth:`uncork` (0: messages go out one by one)."""
        return self._corked

    @property
    def buffered(self) -> int:
        """Bytes waiting for channels not accepted yet (counted as JS counts them: 512 + length each)."""
        return self._buffered

    @property
    def paused(self) -> bool:
        """Whether JS would have paused reading here (more than 32 KiB waits for channels)."""
        return self._buffered > _PAUSE_BUFFERED

    def is_idle(self) -> bool:
        """No local channel number is in use."""
        return len(self._local) == len(self._free)

    def opened(self, protocol: str, id: bytes | None = None) -> bool:
        """Whether a local channel of that protocol and id is open."""
        info = self._infos.get(_key(protocol, id))
        return info is not None and info.opened > 0

    def pair(self, protocol: str, id: bytes | None = None) -> None:
        """Offer remote opens of ``protocol`` with ``id`` (``None``: any id) as :class:`OpenRequested`
        instead of rejecting them."""
        self._pairs.add(_key(protocol, id))

    def unpair(self, protocol: str, id: bytes | None = None) -> None:
        self._pairs.discard(_key(protocol, id))

    def data_to_send(self) -> list[bytes]:
        """The messages to send, in order, each whole (the layer below frames them); taken once."""
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        """The events not taken yet (those of an :meth:`open` that accepted a remote's): taken once."""
        out, self._events = self._events, []
        return out

    # -- actions ------------------------------------------------------------------------------------

    def open(self, protocol: str, id: bytes | None = None, handshake: bytes | bytearray | memoryview = b"", *,
             aliases: tuple[str, ...] = (), unique: bool = True) -> Channel:
        """Open a channel and send its open with ``handshake`` (the protocol's encoding). If the remote
        opened the same protocol and id first, this accepts it: :class:`ChannelOpened` and the messages
        that waited for it are in :meth:`events`. ``aliases`` are other protocol names remote opens may
        use for it; with ``unique``, a second open channel of that protocol and id is a ``ValueError``."""
        id = bytes(id) if id else None
        if len(self._local) - len(self._free) >= self.max_channels:
            raise ValueError(f"too many local channels (at most {self.max_channels})")
        info = self._info(protocol, id, aliases)
        if unique and info.opened > 0:
            raise ValueError(f"a channel of {protocol!r} with that id is open already")
        channel = Channel(self, protocol, id)
        remote: _Remote | None = None
        while info.incoming:
            remote_id = info.incoming.pop(0)
            remote = self._remote[remote_id - 1]
            if remote is not None and remote.channel is None:
                channel.remote_id = remote_id
                remote.channel = channel
                break
            remote = None
        number = self._free.pop() if self._free else len(self._local)
        if number == len(self._local):
            self._local.append(None)
        self._local[number] = channel
        channel.local_id = number + 1
        info.opened += 1
        if channel.remote_id == 0:
            info.outgoing.append(channel.local_id)
        body = Writer().uint(0).uint(_OPEN).uint(channel.local_id).string(protocol).optional_buffer(id)
        self._write_control(body.raw(handshake).getvalue())
        if remote is not None:
            self._opened(channel, remote)
        return channel

    def reject(self, remote_id: int) -> None:
        """Refuse the remote's open numbered ``remote_id`` (from an :class:`OpenRequested`); nothing
        happens if it no longer waits (withdrawn, say, later in the same batch)."""
        remote = self._remote[remote_id - 1] if 0 < remote_id <= len(self._remote) else None
        if remote is None or remote.channel is not None:
            return
        if remote_id in remote.info.incoming:
            remote.info.incoming.remove(remote_id)
        self._drop_remote(remote_id)
        self._gc(remote.info)
        self._write_control(_control(_REJECT, remote_id))

    def close(self, channel: Channel) -> None:
        """Close ``channel`` and tell the remote (closing a closed channel does nothing)."""
        if channel.closed:
            return
        self._write_control(_control(_CLOSE, channel.local_id))
        self._close(channel)

    def send(self, channel: Channel, type: int, body: bytes | bytearray | memoryview = b"") -> None:
        """Send a message of type ``type`` (the protocol's number) on ``channel``."""
        if channel.closed or channel.mux is not self:
            raise ValueError("the channel is closed")
        entry = Writer().uint(type).raw(body).getvalue()
        if uint_length(channel.local_id) + len(entry) > self.max_message_size:
            raise ValueError(f"a message of {len(entry)} bytes (at most {self.max_message_size})")
        if self._corked:
            self._push_batch(channel.local_id, entry)
        else:
            self._out.append(Writer().uint(channel.local_id).raw(entry).getvalue())

    def cork(self) -> None:
        """Gather what is sent into batches until the matching :meth:`uncork`."""
        self._corked += 1
        if self._corked == 1:
            self._batch, self._batch_end = [], 1

    def uncork(self) -> None:
        if self._corked == 0:
            raise ValueError("uncork without cork")
        self._corked -= 1
        if self._corked == 0:
            self._send_batch()

    @contextmanager
    def corked(self) -> Iterator[None]:
        """``with mux.corked():`` sends what the block sends in batches."""
        self.cork()
        try:
            yield
        finally:
            self.uncork()

    # -- receiving ----------------------------------------------------------------------------------

    def receive(self, message: bytes | bytearray | memoryview) -> list[Event]:
        """Take one whole message from the remote; returns the events not taken yet, this message's
        last. Raises :class:`~hypernode.errors.DecodeError` (the connection should end) and nothing else."""
        if len(message) > self.max_message_size:
            raise DecodeError(f"limit: a message of {len(message)} bytes (at most {self.max_message_size})")
        if len(message):  # JS ignores empty messages
            r = Reader(message)
            self._decode(r.uint(), r)
        return self.events()

    def _decode(self, channel: int, r: Reader) -> None:
        type = r.uint()
        if channel == 0:
            self._on_control(type, r)
            return
        remote = self._remote[channel - 1] if channel <= len(self._remote) else None
        if remote is None:
            return  # a closed channel (messages may still be on their way), as JS
        body = r.raw()
        if remote.channel is None:
            self._buffered += 512 + len(body)
            if self._buffered > self.max_buffered:
                raise DecodeError(f"limit: more than {self.max_buffered} bytes wait for unaccepted channels")
            remote.pending.append((type, body))
        else:
            self._events.append(MessageReceived(remote.channel, type, body))

    def _on_control(self, type: int, r: Reader) -> None:
        if type == _BATCH:
            if self._in_batch:
                raise DecodeError("a batch inside a batch")
            self._on_batch(r)
        elif type == _OPEN:
            self._on_open(r)
        elif type == _REJECT:
            self._on_reject(r.uint())
        elif type == _CLOSE:
            self._on_close(r.uint())
        # other control types are ignored, as JS

    def _on_batch(self, r: Reader) -> None:
        channel = r.uint()
        entries: list[tuple[int, bytes]] = []  # (channel, type and body) of each message
        while not r.done():
            n = r.uint()
            if n == 0:
                channel = r.uint()
                continue
            if n > r.remaining:
                raise DecodeError(f"a batch entry of {n} bytes, {r.remaining} left")
            entries.append((channel, r.raw(n)))
        several = len(entries) > 1
        if several:
            self._events.append(BatchStarted(len(entries)))
        self._in_batch = True
        try:
            for channel, entry in entries:
                self._decode(channel, Reader(entry))
        finally:
            self._in_batch = False
        if several:
            self._events.append(BatchEnded())

    def _on_open(self, r: Reader) -> None:
        remote_id = r.uint()
        protocol = r.string()
        id = r.optional_buffer()
        handshake = r.raw()
        if remote_id == 0:
            raise DecodeError("the remote opened channel 0")
        if remote_id == len(self._remote) + 1:  # the remote may grow its numbers by one
            self._remote.append(None)
        if remote_id > len(self._remote) or self._remote[remote_id - 1] is not None:
            raise DecodeError(f"the remote opened channel {remote_id}, which is not free")
        if self._remote_count >= self.max_channels:
            raise DecodeError(f"limit: the remote opened more than {self.max_channels} channels")
        info = self._info(protocol, id)
        if info.outgoing:
            local_id = info.outgoing.pop(0)
            channel = self._local[local_id - 1]
            if channel is None:  # we closed it before the remote answered: its number is free now
                self._free.append(local_id - 1)
                self._gc(info)
                return
            remote = _Remote(info, protocol, id, handshake, channel)
            self._set_remote(remote_id, remote)
            channel.remote_id = remote_id
            self._opened(channel, remote)
            return
        self._set_remote(remote_id, _Remote(info, protocol, id, handshake))
        if _key(protocol, id) in self._pairs or _key(protocol, None) in self._pairs:
            info.incoming.append(remote_id)
            self._events.append(OpenRequested(remote_id, protocol, id, handshake))
        else:  # nobody wants it: rejected at once, as JS does
            self._drop_remote(remote_id)
            self._gc(info)
            self._write_control(_control(_REJECT, remote_id))

    def _on_reject(self, local_id: int) -> None:
        for info in self._infos.values():
            if local_id in info.outgoing:
                info.outgoing.remove(local_id)
                channel = self._local[local_id - 1]
                self._free.append(local_id - 1)
                if channel is not None:
                    self._local[local_id - 1] = None
                    channel.local_id = 0
                    channel.closed = True
                    info.opened -= 1
                    self._events.append(ChannelClosed(channel, rejected=True))
                self._gc(info)
                return
        raise DecodeError(f"the remote rejected channel {local_id}, which we did not open")

    def _on_close(self, remote_id: int) -> None:
        remote = self._remote[remote_id - 1] if 0 < remote_id <= len(self._remote) else None
        if remote is None:
            return
        if remote.channel is None:
            if remote_id in remote.info.incoming:
                remote.info.incoming.remove(remote_id)
            self._drop_remote(remote_id)
            self._gc(remote.info)
            self._events.append(OpenWithdrawn(remote_id))
            # a reject lets the remote reuse its number (JS keeps a number it closed unanswered until
            # the other side answers it)
            self._write_control(_control(_REJECT, remote_id))
            return
        channel = remote.channel
        self._close(channel)
        self._events.append(ChannelClosed(channel))

    # -- bookkeeping ----------------------------------------------------------------------------------

    def _info(self, protocol: str, id: bytes | None, aliases: tuple[str, ...] = ()) -> _Info:
        key = _key(protocol, id)
        info = self._infos.get(key)
        if info is None:
            info = _Info([key] + [_key(a, id) for a in aliases])
            for k in info.keys:
                self._infos[k] = info
        return info

    def _gc(self, info: _Info) -> None:
        if info.opened == 0 and not info.outgoing and not info.incoming:
            for k in info.keys:
                if self._infos.get(k) is info:
                    del self._infos[k]

    def _set_remote(self, remote_id: int, remote: _Remote) -> None:
        self._remote[remote_id - 1] = remote
        self._remote_count += 1

    def _drop_remote(self, remote_id: int) -> None:
        remote = self._remote[remote_id - 1]
        if remote is not None:
            self._buffered -= sum(512 + len(body) for _, body in remote.pending)
            self._remote[remote_id - 1] = None
            self._remote_count -= 1

    def _opened(self, channel: Channel, remote: _Remote) -> None:
        channel.handshake = remote.handshake
        channel.opened = True
        self._events.append(ChannelOpened(channel, remote.handshake))
        pending, remote.pending = remote.pending, []
        for type, body in pending:
            self._buffered -= 512 + len(body)
            self._events.append(MessageReceived(channel, type, body))

    def _close(self, channel: Channel) -> None:
        channel.closed = True
        info = self._infos.get(_key(channel.protocol, channel.id))
        if channel.remote_id > 0:
            self._drop_remote(channel.remote_id)
            channel.remote_id = 0
            self._free.append(channel.local_id - 1)  # the remote knows it: free now
        self._local[channel.local_id - 1] = None
        channel.local_id = 0
        if info is not None:
            info.opened -= 1
            self._gc(info)

    # -- sending --------------------------------------------------------------------------------------

    def _write_control(self, message: bytes) -> None:
        """A control message (it starts with channel 0): batched when corked."""
        if self._corked:
            self._push_batch(0, message[1:])
        else:
            self._out.append(message)

    def _push_batch(self, local_id: int, entry: bytes) -> None:
        size = uint_length(len(entry)) + len(entry)
        if self._batch_end >= MAX_BATCH or (self._batch and self._batch_end + size > self.max_message_size):
            self._send_batch()
            self._batch, self._batch_end = [], 1
        if not self._batch or self._batch[-1][0] != local_id:
            self._batch_end += 1 + uint_length(local_id)
        self._batch_end += size
        self._batch.append((local_id, entry))

    def _send_batch(self) -> None:
        if not self._batch:
            return
        prev = self._batch[0][0]
        w = Writer().uint(0).uint(_BATCH).uint(prev)
        for local_id, entry in self._batch:
            if local_id != prev:
                w.uint(0).uint(local_id)
                prev = local_id
            w.buffer(entry)
        self._out.append(w.getvalue())
        self._batch = []
