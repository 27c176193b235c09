"""Finding peers by topic, as hyperswarm 2 does: the @hyperswarm/dht DHT and local-network discovery.

- :mod:`~hypernode.discovery.addresses`: the compact address encodings;
- :mod:`~hypernode.discovery.table`: the routing table and query tables;
- :mod:`~hypernode.discovery.rpc`: dht-rpc, sans-IO;
- :mod:`~hypernode.discovery.dht`: the ``peers`` command (announce, lookup, unannounce), sans-IO;
- :mod:`~hypernode.discovery.local`: multicast-DNS discovery on the local network;
- :mod:`~hypernode.discovery.swarm`: the trio adapters (:class:`DHTNode`, :class:`Swarm`).
"""

from hypernode.discovery.swarm import DEFAULT_BOOTSTRAP, DHTNode, PeerFound, Swarm

__all__ = ["DEFAULT_BOOTSTRAP", "DHTNode", "PeerFound", "Swarm"]
