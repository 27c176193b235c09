"""A small HTTP/1.1 server: h11 (the sans-IO protocol) driven over trio streams.

:class:`HTTPServer` accepts connections on trio listeners (TCP or Unix), one task per connection in
the server's nursery, and hands each request to a handler (``async (Request) -> Response``). A
response body is bytes, or a :data:`BodyWriter` (``async (send) -> None``) that streams: it runs in
the connection's task, so it may open nurseries and scopes of its own (a file read chunk by chunk, a
stream of Server-Sent Events). Keep-alive and pipelining are h11's; HEAD answers carry no body.

Limits, each answered with a 4xx and the connection closed: a request target longer than
:data:`MAX_TARGET` bytes (414), headers beyond :data:`MAX_HEAD` (431), a request body beyond
:data:`MAX_BODY` (413), anything h11 cannot parse (400), a request head not received within
:data:`HEAD_TIMEOUT` seconds (408); connections beyond :data:`MAX_CONNECTIONS` get 503. A handler
that raises gets 500 (logged), a body that fails once the head is sent ends that connection; nothing
a client sends ends the server.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

import h11
import trio

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_TARGET = 8 * 1024  # bytes of a request target
MAX_BODY = 64 * 1024  # bytes of a request body (the API takes small JSON bodies)
HEAD_TIMEOUT = 20.0  # seconds to receive a request's head once it has begun
IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may wait for its next request
SEND_TIMEOUT = 60.0  # seconds one write to a client may take (a client that stopped reading)
MAX_CONNECTIONS = 1024
RECEIVE_SIZE = 64 * 1024

Send = Callable[[bytes], Awaitable[None]]
BodyWriter = Callable[[Send], Awaitable[None]]


@dataclass
class Request:
    """A request as received: method (upper case), target (the raw path and query, ASCII), headers
    (names lower case, in order) and body."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive); repeated headers joined with ``, ``."""
        name = name.lower()
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None


@dataclass
class Response:
    """A response: status, headers, and a body (bytes, or a writer that streams it). Give
    ``content-length`` for a streamed body whose size is known; without it, HTTP/1.1 clients get it
    chunked."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | BodyWriter = b""


Handler = Callable[[Request], Awaitable[Response]]


def text_response(status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
    """A plain-text response of one line (errors; a long message is cut)."""
    line = message.replace("\n", " ").strip()
    body = ((line if len(line) <= 500 else line[:500] + "...") + "\n").encode()
    return Response(status, [("content-type", "text/plain; charset=utf-8"),
                             ("content-length", str(len(body))), *headers], body)


class _ClientError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HTTPServer:
    """Serves ``handler`` on listeners: ``await nursery.start(server.serve, listeners)``."""

    def __init__(self, handler: Handler, *, server_name: str = "hypernode") -> None:
        self.handler = handler
        self.server_name = server_name
        self._limiter = trio.CapacityLimiter(MAX_CONNECTIONS)

    async def serve(self, listeners: list[trio.abc.Listener[trio.abc.Stream]], *,
                    task_status: trio.TaskStatus[list[trio.abc.Listener[trio.abc.Stream]]]
                    = trio.TASK_STATUS_IGNORED) -> None:
        """Accept connections until cancelled (``nursery.start`` returns when they are accepted)."""
        await trio.serve_listeners(self._connection, listeners, handler_nursery=None,
                                   task_status=task_status)

    async def _connection(self, stream: trio.abc.Stream) -> None:
        try:
            async with stream:
                try:
                    self._limiter.acquire_on_behalf_of_nowait(stream)
                except trio.WouldBlock:
                    conn = h11.Connection(h11.SERVER)
                    await self._send_error(conn, stream, 503, "too many connections")
                    return
                try:
                    await self._serve_connection(stream)
                finally:
                    self._limiter.release_on_behalf_of(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError):
            pass  # the client went away, or stopped reading: its connection ends, quietly
        except Exception:  # a bug met on one connection must not take the server down
            log.exception("HTTP connection ended on an internal error")

    async def _serve_connection(self, stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        while True:
            try:
                request = await self._read_request(conn, stream)
            except _ClientError as e:
                await self._send_error(conn, stream, e.status, str(e))
                return
            if request is None:
                return
            response = await self._respond(request)
            if not await self._send_response(conn, stream, request, response):
                return
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _read_request(self, conn: h11.Connection, stream: trio.abc.Stream) -> Request | None:
        """The next request, or None when the client closed the connection between requests."""
        line_ended = False  # has the request line ended (to tell 414 from 431)
        deadline = trio.current_time() + IDLE_TIMEOUT
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as e:
                status = e.error_status_hint
                if status == 431 and not line_ended:
                    raise _ClientError(414, "request line too long") from None
                raise _ClientError(status, f"bad request: {e}") from None
            if event is h11.NEED_DATA:
                with trio.move_on_at(deadline) as waited:
                    data = await stream.receive_some(RECEIVE_SIZE)
                if waited.cancelled_caught:
                    if head is None and not conn.trailing_data[0] and not line_ended:
                        return None  # an idle kept-alive connection: close it quietly
                    raise _ClientError(408, "request not received in time")
                if data and deadline - trio.current_time() > HEAD_TIMEOUT and head is None:
                    deadline = trio.current_time() + HEAD_TIMEOUT  # a request has begun
                if b"\n" in data:
                    line_ended = True
                conn.receive_data(bytes(data))
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                head = event
                if head.http_version < b"1.0":
                    raise _ClientError(505, "HTTP version not supported")
                # (h11 bounds a head that arrives in parts; one that came whole is measured here)
                if len(head.target) > MAX_TARGET:
                    raise _ClientError(414, "request line too long")
                if sum(len(k) + len(v) + 4 for k, v in head.headers) > MAX_HEAD:
                    raise _ClientError(431, "request headers too large")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY:
                    raise _ClientError(413, "request body too large")
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                try:
                    target = head.target.decode("ascii")
                except UnicodeDecodeError:
                    raise _ClientError(400, "bad request: a target that is not ASCII") from None
                headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in head.headers]
                return Request(head.method.decode("ascii", "replace").upper(), target, headers, bytes(body))

    async def _respond(self, request: Request) -> Response:
        try:
            return await self.handler(request)
        except Exception:
            log.exception("%s %s failed", request.method, request.target)
            return text_response(500, "internal error (see the server's log)")

    def _headers(self, response: Response, close: bool) -> list[tuple[str, str]]:
        headers = [(k.lower(), v) for k, v in response.headers]
        names = {k for k, _ in headers}
        headers.append(("server", self.server_name))
        if "date" not in names:
            headers.append(("date", formatdate(usegmt=True)))
        if close:
            headers.append(("connection", "close"))
        return headers

    async def _send_response(self, conn: h11.Connection, stream: trio.abc.Stream, request: Request,
                             response: Response) -> bool:
        """Send the response; False if the connection must end (the body failed midway)."""
        close = conn.their_state is h11.MUST_CLOSE
        reason = _reason(response.status)
        await _send(stream, conn.send(h11.Response(status_code=response.status, reason=reason,
                                                   headers=self._headers(response, close))))
        body = response.body
        if request.method != "HEAD":
            if isinstance(body, bytes | bytearray | memoryview):
                if body:
                    await _send_data(conn, stream, bytes(body))
            else:
                async def send(chunk: bytes) -> None:
                    if chunk:
                        await _send_data(conn, stream, chunk)

                try:
                    await body(send)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return False
                except Exception as e:  # the head is sent: all we can do is end the connection
                    log.info("%s %s: the response ended early: %s", request.method, request.target, e)
                    return False
        try:
            await _send(stream, conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as e:  # a body shorter than its content-length
            log.info("%s %s: %s", request.method, request.target, e)
            return False
        return True

    async def _send_error(self, conn: h11.Connection, stream: trio.abc.Stream, status: int,
                          message: str) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        response = text_response(status, message)
        try:
            await _send(stream, conn.send(h11.Response(status_code=status, reason=_reason(status),
                                                       headers=self._headers(response, True))))
            assert isinstance(response.body, bytes)
            await _send(stream, conn.send(h11.Data(data=response.body)))
            await _send(stream, conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


async def _send(stream: trio.abc.Stream, data: bytes | None) -> None:
    if data:
        with trio.fail_after(SEND_TIMEOUT):
            await stream.send_all(data)


async def _send_data(conn: h11.Connection, stream: trio.abc.Stream, chunk: bytes) -> None:
    """One chunk of a body, without copying it into h11's framing (``send_with_data_passthrough``)."""
    pieces = conn.send_with_data_passthrough(h11.Data(data=chunk))
    if pieces is None:
        return
    if len(pieces) > 1 and sum(len(p) for p in pieces) < RECEIVE_SIZE:
        await _send(stream, b"".join(pieces))  # a small chunked frame: one write
        return
    for piece in pieces:
        await _send(stream, bytes(piece) if not isinstance(piece, bytes) else piece)
