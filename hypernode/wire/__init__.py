"""The hypercore-protocol 8 wire protocol: Noise handshake, XSalsa20, frames, channels, extensions.

:mod:`~hypernode.wire.connection` is the sans-IO state machine; :mod:`~hypernode.wire.stream` runs it
over a trio stream. :mod:`~hypernode.wire.noise` (handshake), :mod:`~hypernode.wire.cipher` (XSalsa20),
:mod:`~hypernode.wire.frames` (framing) and :mod:`~hypernode.wire.extensions` are its parts.
"""

from hypernode.wire.connection import (
    Channel,
    ChannelClosed,
    ChannelOpened,
    Connection,
    Event,
    ExtensionReceived,
    HandshakeComplete,
    MessageReceived,
    Ping,
    RemoteOpened,
    StreamOptions,
    messages,
)
from hypernode.wire.frames import ProtocolError
from hypernode.wire.noise import HandshakeError, KeyPair

__all__ = ["Connection", "Channel", "Event", "HandshakeComplete", "RemoteOpened", "ChannelOpened",
           "MessageReceived", "ExtensionReceived", "StreamOptions", "ChannelClosed", "Ping",
           "ProtocolError", "HandshakeError", "KeyPair", "messages"]
