"""A running node's control socket: where commands on a store in use ask the node that has it.

A store is used by one process at a time (:mod:`hypernode.storelock`). While ``serve``, ``share`` or
``gateway`` runs, it answers the JSON API of :mod:`hypernode.gateway.api` (``GET /api/status``,
``GET|POST /api/seeds``, ``DELETE /api/seeds/KEY``) over HTTP on a Unix socket, ``hypernode.sock`` in
the store (or, where that path is too long for a Unix socket, in a private temporary directory), made
with mode 0600: only the store's owner can connect. Its path is in the store's lock file
(``control``), so ``hypernode status``, ``seed``, ``unseed``, ``seeds`` and ``drives`` on a store in
use read it there and ask (:func:`control_request`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import h11
import trio

from hypernode.errors import HypernodeError
from hypernode.gateway.api import API
from hypernode.gateway.http import HTTPServer, Request, Response, text_response
from hypernode.gateway.routes import HTTPError, PageRoute, parse_target
from hypernode.node import Node
from hypernode.seeds import Seeder
from hypernode.storelock import lock_info
from hypernode.tasks import open_service_nursery

SOCKET_NAME = "hypernode.sock"
MAX_SOCKET_PATH = 100  # bytes (sun_path holds 108 with its NUL; some systems fewer)
MAX_ANSWER = 16 * 1024 * 1024


class ControlError(HypernodeError):
    """The node that has a store could not be asked (it has no control socket, or did not answer)."""


@contextlib.asynccontextmanager
async def serve_control(node: Node, seeder: Seeder | None) -> AsyncIterator[str | None]:
    """Answer the API on the node's control socket while the block runs; yields the socket's path
    (None for a node without a store directory)."""
    if node.directory is None or node.store.lock is None:
        yield None
        return
    path, private_dir = _socket_path(str(node.directory))
    api = API(node, seeder)

    async def handle(request: Request) -> Response:
        try:
            route = parse_target(request.target)
            if not isinstance(route, PageRoute) or route.name == "dashboard":
                raise HTTPError(404, "the control socket answers /api/status and /api/seeds")
            return await api.handle(request, route, origin=None)
        except HTTPError as e:
            return text_response(e.status, e.message, e.headers)

    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        _remove_stale(path)
        old = os.umask(0o177)  # the socket is made 0600: only the store's owner may connect
        try:
            await sock.bind(path)
        finally:
            os.umask(old)
        sock.listen(64)
    except BaseException:
        sock.close()
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)
        raise
    lock = node.store.lock
    try:
        async with open_service_nursery() as nursery:
            await nursery.start(HTTPServer(handle).serve, [trio.SocketListener(sock)])
            lock.set_control(path)
            try:
                yield path
            finally:
                lock.set_control(None)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if private_dir:
            shutil.rmtree(private_dir, ignore_errors=True)


def _socket_path(directory: str) -> tuple[str, str | None]:
    path = os.path.join(os.path.abspath(directory), SOCKET_NAME)
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path, None
    private = tempfile.mkdtemp(prefix="hypernode-")  # mode 0700
    return os.path.join(private, SOCKET_NAME), private


def _remove_stale(path: str) -> None:
    """A socket left at ``path`` by a node of this store that was killed (we hold the store's lock, so
    no process serves on it) is removed; anything else there is left alone, and binding fails."""
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


async def control_request(directory: str, method: str, target: str, body: Any = None, *,
                          timeout: float = 30.0) -> tuple[int, Any]:
    """Ask the node that has the store in ``directory``: an HTTP request on its control socket.
    Returns the status and the answer (JSON decoded, or the text of an error). Raises
    :class:`ControlError` if the node has no control socket or does not answer."""
    path = lock_info(directory).get("control")
    if not isinstance(path, str):
        raise ControlError("it does not answer control requests (it is not serve, share or gateway)")
    data = b"" if body is None else json.dumps(body).encode()
    headers = [("host", "localhost"), ("content-length", str(len(data))), ("connection", "close")]
    if body is not None:
        headers.append(("content-type", "application/json"))
    try:
        with trio.fail_after(timeout):
            stream = await trio.open_unix_socket(path)
            async with stream:
                conn = h11.Connection(h11.CLIENT)
                out = conn.send(h11.Request(method=method, target=target, headers=headers))
                out += conn.send(h11.Data(data=data)) if data else b""
                out += conn.send(h11.EndOfMessage())
                await stream.send_all(out)
                status, answer = 0, bytearray()
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await stream.receive_some(65536))
                    elif isinstance(event, h11.Response):
                        status = event.status_code
                    elif isinstance(event, h11.Data):
                        answer += event.data
                        if len(answer) > MAX_ANSWER:
                            raise ControlError("its answer is too long")
                    elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                        break
    except (OSError, trio.BrokenResourceError, h11.ProtocolError) as e:
        raise ControlError(f"its control socket {path} does not answer: {e}") from None
    except trio.TooSlowError:
        raise ControlError(f"its control socket {path} did not answer within {timeout:g} s") from None
    if 200 <= status < 300:
        try:
            return status, json.loads(answer)
        except ValueError:
            raise ControlError("its answer is not JSON") from None
    return status, bytes(answer).decode("utf-8", "replace").strip()
