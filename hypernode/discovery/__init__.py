"""Finding peers by topic, as hyperswarm 2 does: the @hyperswarm/dht DHT and local-network discovery.

- :mod:`~hypernode.discovery.addresses`: the compact address encodings;
- :mod:`~hypernode.discovery.table`: the routing table and query tables;
- :mod:`~hypernode.discovery.rpc`: dht-rpc, sans-IO;
- :mod:`~hypernode.discovery.dht`: the ``peers`` command (announce, lookup, unannounce), sans-IO;
- :mod:`~hypernode.discovery.values`: the mutable and immutable value commands, sans-IO;
- :mod:`~hypernode.discovery.found`: what is found (:class:`PeerFound`) and the bounded channels it
  comes through;
- :mod:`~hypernode.discovery.local`: multicast-DNS discovery on the local network;
- :mod:`~hypernode.discovery.swarm`: the trio adapters (:class:`DHTNode`, :class:`Swarm`);
- :mod:`~hypernode.discovery.peering`: the peers a swarm finds, connected and replicated for a node.

Each object that runs tasks while open (``DHTNode``, ``Swarm``, ``LocalDiscovery``, ``Peering``) is opened
by ``async with`` on it or by its ``open_*`` function (:func:`open_dht_node`, :func:`open_swarm`, ...),
under the error rules of :mod:`hypernode.tasks`.
"""

from hypernode.discovery.found import DroppingChannel, PeerFound
from hypernode.discovery.swarm import DEFAULT_BOOTSTRAP, DHTNode, Swarm, open_dht_node, open_swarm

__all__ = ["DEFAULT_BOOTSTRAP", "DHTNode", "DroppingChannel", "PeerFound", "Swarm", "open_dht_node",
           "open_swarm"]
