"""How many connections one remote address may hold open to a node at once, TCP and uTP together.

A peer that opens connection after connection (a bug, or abuse) costs each one a Noise handshake, a
session and its buffers. :class:`AddressLimiter` counts the live incoming connections per remote IP
address; past ``max_per_address`` a new one is closed at once, before its handshake, and counted in
:attr:`AddressLimiter.refused`. (hyperswarm keeps one connection per peer; a handful per address leaves
room for several peers behind one NAT.) uTP has its own limits below this one, in
:class:`~hypernode.utp.connection.UTPConfig`: connections in all, per address, half-open, and each
connection's buffers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections import Counter
from collections.abc import Iterator

__all__ = ["MAX_PER_ADDRESS", "AddressLimiter"]

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

MAX_PER_ADDRESS = 16  # live incoming connections from one IP address, TCP and uTP together


class AddressLimiter:
    """Live incoming connections per remote IP address, at most ``max_per_address``; connections from
    this machine (loopback addresses) are not capped unless ``cap_loopback``: they are the operator's own
    programs (a gateway, many local clients), and a local user has easier ways to load the node."""

    def __init__(self, max_per_address: int = MAX_PER_ADDRESS, *, cap_loopback: bool = False) -> None:
        if max_per_address < 1:
            raise ValueError("max_per_address must be at least 1")
        self.max_per_address = max_per_address
        self.cap_loopback = cap_loopback
        self.live: Counter[str] = Counter()
        self.refused = 0

    @contextlib.contextmanager
    def admit(self, host: str) -> Iterator[bool]:
        """``with limiter.admit(host) as admitted:`` True (and counted for the block) while ``host`` has
        fewer than ``max_per_address`` connections; False past it (the caller closes the connection)."""
        if self.live[host] >= self.max_per_address and (self.cap_loopback or not _is_loopback(host)):
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.warning("refused a connection from %s: %d open from there already (the limit); "
                            "%d refused so far", host, self.max_per_address, self.refused)
            yield False
            return
        self.live[host] += 1
        try:
            yield True
        finally:
            self.live[host] -= 1
            if not self.live[host]:
                del self.live[host]
