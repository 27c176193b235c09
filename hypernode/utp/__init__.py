"""uTP (the Micro Transport Protocol, BEP 29), wire-compatible with libutp as utp-native 2.x runs it for
hyperswarm 2: a sans-IO core (:mod:`~hypernode.utp.packet` the codec, :mod:`~hypernode.utp.connection`
one connection's state machine, :mod:`~hypernode.utp.congestion` LEDBAT, :mod:`~hypernode.utp.endpoint`
the connections of one UDP socket) and its trio adapter (:mod:`~hypernode.utp.socket`: a UDP socket,
shared with another protocol such as the DHT, carrying uTP streams)."""

from hypernode.utp.connection import (
    UTPConfig,
    UTPConnectionError,
    UTPConnectionRefused,
    UTPConnectionReset,
    UTPError,
    UTPLimitError,
    UTPTimeout,
)
from hypernode.utp.packet import PacketError, is_utp

__all__ = [
    "PacketError", "UTPConfig", "UTPConnectionError", "UTPConnectionRefused", "UTPConnectionReset",
    "UTPError", "UTPLimitError", "UTPTimeout", "is_utp",
]
