"""The JSON API of a running node, served by the gateway (``/api/...``) and by the node's control
socket (:mod:`hypernode.control`):

- ``GET /api/status``: :class:`~hypernode.status.NodeStatus` as JSON (each drive with its version,
  blocks, bytes, local part, whether it is seeded, and its peers with bytes up and down);
- ``GET /api/seeds``: the seeded drives (key, when added, whether its task runs);
- ``POST /api/seeds`` with ``{"key": KEY}`` (or ``{"keys": [...]}``): seed drives from now on;
- ``DELETE /api/seeds/KEY``: stop seeding one.

Requests that change something must be ``application/json`` and, when they carry an ``Origin``, come
from the server's own origin (a page elsewhere cannot make the node seed; a form post from another site
is neither).
"""

from __future__ import annotations

import json
from typing import Any

from hypernode.gateway.http import Request, Response
from hypernode.gateway.routes import HTTPError, PageRoute
from hypernode.node import Node, parse_key
from hypernode.seeds import Seeder


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    data = (json.dumps(body, indent=1) + "\n").encode()
    return Response(status, [("content-type", "application/json"), ("content-length", str(len(data))),
                             ("cache-control", "no-store"), *(headers or [])], data)


class API:
    """The API of ``node`` (and its ``seeder``, if it seeds)."""

    def __init__(self, node: Node, seeder: Seeder | None) -> None:
        self.node = node
        self.seeder = seeder

    def status(self) -> dict[str, Any]:
        seeded = {s.key for s in self.seeder.seeds()} if self.seeder is not None else set()
        return self.node.status(seeded=seeded).to_json()

    async def handle(self, request: Request, route: PageRoute, origin: str | None) -> Response:
        """``origin``: the server's own origin (``http://host:port``), or None where a request cannot
        come from a browser (the control socket)."""
        if route.name == "status":
            _method(request, "GET", "HEAD")
            return json_response(200, self.status())
        if route.name != "seeds":
            raise HTTPError(404, "no such page")
        if route.key is None and request.method in ("GET", "HEAD"):
            return json_response(200, {"seeds": self._seeds()})
        if self.seeder is None:
            raise HTTPError(409, "this node does not seed")
        if route.key is None:
            _method(request, "POST")
            _check_write(request, origin)
            keys = _keys_of(request.body)
            added = await self.seeder.add(keys)
            return json_response(200, {"seeded": [k.hex() for k in keys], "added": [k.hex() for k in added]})
        _method(request, "DELETE")
        _check_write(request, origin)
        if not self.seeder.remove(route.key):
            raise HTTPError(404, f"drive {route.key.hex()} is not seeded")
        return json_response(200, {"unseeded": route.key.hex()})

    def _seeds(self) -> list[dict[str, Any]]:
        if self.seeder is None:
            return []
        return [{"key": s.key.hex(), "added": s.added, "running": self.seeder.seeding(s.key)}
                for s in self.seeder.seeds()]


def _method(request: Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise HTTPError(405, f"method {request.method} not allowed here", [("allow", ", ".join(allowed))])


def _check_write(request: Request, origin: str | None) -> None:
    ctype = (request.header("content-type") or "").split(";")[0].strip().lower()
    if request.method == "POST" and ctype != "application/json":
        raise HTTPError(415, "send application/json")
    sent = request.header("origin")
    if origin is not None and sent is not None and sent != origin:
        raise HTTPError(403, "a request from another origin")


def _keys_of(body: bytes) -> list[bytes]:
    try:
        data = json.loads(body)
    except ValueError:
        raise HTTPError(400, "the body is not JSON") from None
    raw = data.get("keys", [data.get("key")]) if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw or not all(isinstance(k, str) for k in raw) or len(raw) > 64:
        raise HTTPError(400, 'give {"key": KEY} or {"keys": [KEY, ...]}')
    try:
        return [parse_key(k) for k in raw]
    except ValueError as e:
        raise HTTPError(400, str(e)) from None
