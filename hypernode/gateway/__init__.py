"""HTTP access to a running node: drives on the web, a dashboard, and the node's JSON API.

- :mod:`hypernode.gateway.http`: a small HTTP/1.1 server, h11 (sans-IO) over trio, with its limits;
- :mod:`hypernode.gateway.routes`: request targets, ranges, content types, listings, link rewriting
  (pure functions);
- :mod:`hypernode.gateway.app`: :class:`Gateway` (``async with open_gateway(node) as gw``), which
  reads drives for ``/hyper/KEY/PATH``;
- :mod:`hypernode.gateway.api`: ``/api/status`` and ``/api/seeds``, also served on the node's control
  socket (:mod:`hypernode.control`);
- :mod:`hypernode.gateway.dashboard`: the page at ``/``.

``hypernode gateway`` runs one (see :mod:`hypernode.cli`).
"""

from hypernode.gateway.app import Gateway, open_gateway
from hypernode.gateway.http import HTTPServer, Request, Response

__all__ = ["Gateway", "HTTPServer", "Request", "Response", "open_gateway"]
