"""Replication of hypercore 9 feeds with remote peers (everything about a feed that involves peers).

- :mod:`~hypernode.replication.replicator`: :class:`Replicator`, one per open feed, found with
  :func:`replicator_of`: its peers, what it wants (``async with replicator.want(start, end):``), the
  reads that wait for peers (``get``, ``update``, ``download``, ``seek``), its extension messages;
- :mod:`~hypernode.replication.wants`: what one feed wants and which peer fetches which block (pure);
- :mod:`~hypernode.replication.peer`: :class:`FeedPeer`, one feed with one remote over one channel
  (sans-IO: messages in, messages out);
- :mod:`~hypernode.replication.extensions`: extension messages on a feed's channels;
- :mod:`~hypernode.replication.session`: one connection replicating every feed two stores share (it
  sees the store as a :class:`~hypernode.replication.session.FeedSource`);
- :mod:`~hypernode.replication.server`: the network side, ``open_replication_server(store)``: listening,
  connecting, replicating over any stream, full or sparse.
"""

from hypernode.replication.extensions import FeedExtension
from hypernode.replication.peer import FeedPeer, PeerStats, ReplicationError
from hypernode.replication.replicator import Replicator, Want, replicator_of

__all__ = ["Replicator", "Want", "replicator_of", "FeedPeer", "PeerStats", "ReplicationError",
           "FeedExtension"]
