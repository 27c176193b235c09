"""The gateway: a node's drives over HTTP (``/hyper/...``), its dashboard (``/``) and API (``/api/...``).

:class:`Gateway` answers requests on a :class:`~hypernode.node.Node`:

- ``GET|HEAD /hyper/KEY/PATH``: a file's bytes with ``Content-Type``, ``Content-Length``, ``ETag`` (the
  drive version read), ``Accept-Ranges``; ``Range`` gets 206 with ``Content-Range`` (416 for a range
  it cannot serve), ``If-None-Match`` 304. Only the blocks of the range asked are fetched from peers.
  HTML files have their ``hyper://KEY/...`` links rewritten to gateway URLs. A folder is an HTML
  listing, or JSON with ``Accept: application/json``. ``KEY+VERSION`` reads at a version,
  ``KEY1,KEY2`` the merged :class:`~hypernode.multi.MultiDrive` view, ``?watch`` streams the changes
  under the path as Server-Sent Events.
- A drive the store has no data of is fetched from peers first: when none has it within ``timeout``
  seconds (no progress), 504. A missing path is 404; a damaged entry 502.
- Every drive read here is followed (its latest version fetched as peers announce it), so reads see
  the drive as its peers have it; so are the drives mounted in it, fetched when it is first read.

When the gateway listens on a loopback address, requests must name it in ``Host`` (a page on another
site reached through DNS rebinding cannot read the node). Drive content is served sandboxed
(``Content-Security-Policy: sandbox``, no same origin): a page in a drive cannot use the API.
The HTTP layer is :mod:`hypernode.gateway.http`; parsing and page making :mod:`hypernode.gateway.routes`.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import trio

from hypernode.drive import Hyperdrive, Stat
from hypernode.errors import HypernodeError, PeerTimeoutError
from hypernode.gateway import dashboard
from hypernode.gateway.api import API
from hypernode.gateway.http import HTTPServer, Request, Response, Send, text_response
from hypernode.gateway.routes import (
    DriveRoute,
    Entry,
    HTTPError,
    PageRoute,
    content_type,
    etag,
    etag_matches,
    is_html,
    listing_html,
    listing_json,
    parse_range,
    parse_target,
    rewrite_links,
)
from hypernode.multi import MultiDrive
from hypernode.multi.clock import VersionVector
from hypernode.node import Node
from hypernode.seeds import Seeder
from hypernode.tasks import Service, open_service_nursery, opener

log = logging.getLogger(__name__)

REWRITE_LIMIT = 16 * 1024 * 1024  # HTML files up to this size have their hyper:// links rewritten
KEEPALIVE = 15.0  # seconds between comments on an idle event stream
MULTI_CACHE = 32  # merged views kept (their indexes are built once, then brought up to date)
View = Hyperdrive | MultiDrive


class Gateway(Service):
    """HTTP access to ``node``: ``async with Gateway(node, ...) as gateway`` serves on
    ``gateway.host:gateway.port`` until the block ends."""

    def __init__(self, node: Node, *, host: str = "127.0.0.1", port: int = 8080,
                 seeder: Seeder | None = None, timeout: float | None = 60.0) -> None:
        self.node = node
        self.host = host
        self.port = port
        self.seeder = seeder
        self.timeout = timeout
        self.api = API(node, seeder)
        self._nursery: trio.Nursery | None = None
        self._opening: dict[bytes, trio.Lock] = {}
        self._followed: set[bytes] = set()
        self._mounts_checked: set[bytes] = set()
        self._multis: dict[tuple[bytes, ...], MultiDrive] = {}
        self._hosts: set[str] | None = None

    @contextlib.asynccontextmanager
    async def _lifetime(self) -> AsyncIterator[None]:
        try:
            async with open_service_nursery() as nursery:
                self._nursery = nursery
                try:
                    listeners = await trio.open_tcp_listeners(self.port, host=self.host)
                except OSError as e:
                    raise OSError(e.errno, f"cannot listen on {_address(self.host, self.port)}: "
                                           f"{e.strerror or e}") from e
                self.port = listeners[0].socket.getsockname()[1]
                self._hosts = _loopback_hosts(self.host, self.port)
                await nursery.start(HTTPServer(self.handle).serve, listeners)
                yield
        finally:
            self._nursery = None

    @property
    def url(self) -> str:
        return f"http://{_address(self.host, self.port)}/"

    # -- requests ----------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        try:
            self._check_host(request)
            route = parse_target(request.target)
            if isinstance(route, PageRoute):
                if route.name == "dashboard":
                    if request.method not in ("GET", "HEAD"):
                        raise HTTPError(405, "GET the dashboard", [("allow", "GET, HEAD")])
                    return dashboard.page()
                return await self.api.handle(request, route, origin=self.url.rstrip("/"))
            return await self._drive_request(request, route)
        except HTTPError as e:
            return text_response(e.status, e.message, e.headers)

    def _check_host(self, request: Request) -> None:
        if self._hosts is not None and (request.header("host") or "").lower() not in self._hosts:
            raise HTTPError(421, "this gateway answers only to its own address in Host")

    async def _drive_request(self, request: Request, route: DriveRoute) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, f"method {request.method} not allowed on drives", [("allow", "GET, HEAD")])
        try:
            view, version = await self._view(route)  # its waits for peers say why they gave up
            async with self.node.progress_timeout(self.timeout, f"reading {route.spec[:16]}"):
                if route.watch:
                    return await self._watch(route, view)
                st = await view.stat(route.path)
                if st.is_directory() and not st.is_file():
                    return await self._listing(request, route, view, version)
                return await self._file(request, route, view, version, st)
        except (OSError, HypernodeError, trio.TooSlowError) as e:
            raise _http_error(e, route) from None

    # -- opening drives ----------------------------------------------------------------------------

    async def _open(self, key: bytes) -> Hyperdrive:
        """The node's drive of ``key``, with data: fetched from peers first if the store has none."""
        lock = self._opening.setdefault(key, trio.Lock())
        async with lock:
            drive = self.node.drives.get(key) or await self.node.open_drive(key)
            if key not in self._followed and not drive.writable:
                self._followed.add(key)
                assert self._nursery is not None
                self._nursery.start_soon(self._follow, drive)
            if not (drive.writable or drive.version > 1 or drive.metadata.has(0)):
                await self.node.sync_feed(drive.metadata, timeout=self.timeout)
            if not (drive.writable or drive.version > 1 or drive.metadata.has(0)):
                raise HTTPError(504, f"no peer sent any of drive {key.hex()}")
            if key not in self._mounts_checked:
                self._mounts_checked.add(key)
                await self._catch_up_mounts(drive)
            return drive

    async def _catch_up_mounts(self, drive: Hyperdrive) -> None:
        """The drives mounted in ``drive`` (and in them), fetched as the drive was and followed: a
        mounted replica that has no data here would read as empty (a drive gets its mounts' blocks
        only when it reads them, and the length of a mounted feed only from its peers). A mount no
        peer has within the timeout is left out (it reads as empty; logged)."""
        try:
            mounts = await drive.get_all_mounts(recursive=False)
        except (HypernodeError, OSError) as e:
            log.info("drive %s: its mounts are not followed: %s", drive.key.hex()[:16], e)
            return
        for mounted in mounts.values():
            if mounted is drive or mounted.key in self._mounts_checked:
                continue
            self._mounts_checked.add(mounted.key)
            if not mounted.writable and mounted.key not in self._followed:
                self._followed.add(mounted.key)
                assert self._nursery is not None
                self._nursery.start_soon(self._follow, mounted)
            if not (mounted.writable or mounted.version > 1 or mounted.metadata.has(0)):
                try:
                    await self.node.sync_feed(mounted.metadata, timeout=self.timeout)
                except PeerTimeoutError as e:
                    log.info("drive %s mounted in %s: %s", mounted.key.hex()[:16], drive.key.hex()[:16], e)
                    continue
            await self._catch_up_mounts(mounted)

    async def _follow(self, drive: Hyperdrive) -> None:
        """Keep the drive at its peers' latest version (its latest metadata block, as they announce it)."""
        try:
            while True:
                await drive.update()
        except (HypernodeError, OSError) as e:
            log.warning("stopped following drive %s: %s", drive.key.hex()[:16], e)
        finally:
            self._followed.discard(drive.key)

    async def _view(self, route: DriveRoute) -> tuple[View, int | VersionVector]:
        """What the route reads (a drive at a version, or a merged view), and the version it reads."""
        drives = [await self._open(k) for k in route.keys]
        if len(drives) == 1:
            drive, wanted = drives[0], route.versions[0]
            if wanted is not None and wanted > drive.version:
                raise HTTPError(404, f"drive {drive.key.hex()} has no version {wanted} here "
                                     f"(the latest known is {drive.version})")
            version = drive.version if wanted is None else wanted
            return (drive if route.watch else drive.checkout(version)), version
        multi = self._multis.get(route.keys)
        if multi is None:
            multi = MultiDrive(drives[0])
            for d in drives[1:]:
                await multi.add_drive(d)
            if route.keys not in self._multis:
                while len(self._multis) >= MULTI_CACHE:
                    self._multis.pop(next(iter(self._multis)))
                self._multis[route.keys] = multi
            multi = self._multis[route.keys]
        if route.versions[0] is None:
            return multi, multi.version
        if route.watch:
            raise HTTPError(400, "?watch follows the latest version: give no +VERSION")
        pairs = zip(route.keys, route.versions, strict=True)
        vector = VersionVector({k: v for k, v in pairs if v is not None})
        for d, v in zip(drives, route.versions, strict=True):
            if v is not None and v > d.version:
                raise HTTPError(404, f"drive {d.key.hex()} has no version {v} here (the latest known "
                                     f"is {d.version})")
        return multi.checkout(vector), vector

    # -- folders and files -------------------------------------------------------------------------

    async def _listing(self, request: Request, route: DriveRoute, view: View,
                       version: int | VersionVector) -> Response:
        entries = []
        for item in await view.readdir(route.path, stats=True):
            name, st, drive = (item.name, item.stat, item.drive) if not isinstance(item, tuple) \
                else (item[0], item[1], None)
            entries.append(Entry(name, _kind(st), st.size, st.mtime,
                                 drive.key if drive is not None and len(route.keys) > 1 else None))
        shown: Any = version if isinstance(version, int) else {k.hex(): v for k, v in version.items()}
        tag = etag(version if isinstance(version, int) else dict(version))
        headers = [("etag", tag), ("cache-control", _cache_control(route)), ("vary", "Accept"),
                   ("access-control-allow-origin", "*")]
        if etag_matches(request.header("if-none-match"), tag):
            return Response(304, headers)
        if _wants_json(request.header("accept")):
            body = listing_json(route, shown, entries)
            ctype = "application/json"
        else:
            body = listing_html(route, shown, entries)
            ctype = "text/html; charset=utf-8"
        return Response(200, [("content-type", ctype), ("content-length", str(len(body))), *headers,
                              ("x-content-type-options", "nosniff")], body)

    async def _file(self, request: Request, route: DriveRoute, view: View, version: int | VersionVector,
                    st: Stat) -> Response:
        tag = etag(version if isinstance(version, int) else dict(version))
        ctype = content_type(route.path)
        headers = [("etag", tag), ("accept-ranges", "bytes"), ("cache-control", _cache_control(route)),
                   ("x-content-type-options", "nosniff"), ("access-control-allow-origin", "*"),
                   ("content-security-policy", "sandbox allow-scripts allow-forms allow-popups "
                                               "allow-downloads")]
        if etag_matches(request.header("if-none-match"), tag):
            return Response(304, headers)
        document: bytes | None = None
        size = st.size
        if is_html(ctype) and size <= REWRITE_LIMIT:
            document = rewrite_links(await view.read_file(route.path))
            size = len(document)
        if_range = request.header("if-range")
        wanted = request.header("range") if if_range is None or if_range.strip() == tag else None
        rng = parse_range(wanted, size)
        start, end = rng if rng is not None else (0, size)
        headers = [("content-type", ctype), ("content-length", str(end - start)), *headers]
        status = 200
        if rng is not None:
            status = 206
            headers.append(("content-range", f"bytes {start}-{end - 1}/{size}"))
        if document is not None:
            return Response(status, headers, document[start:end])
        if request.method == "HEAD" or end == start:
            return Response(status, headers)
        return Response(status, headers, self._stream(view, route.path, start, end - start))

    def _stream(self, view: View, path: str, start: int, length: int) -> Any:
        timeout = self.timeout

        async def write(send: Send) -> None:
            stream = view.create_read_stream(path, start=start, length=length)
            try:
                while True:
                    # no progress for `timeout` seconds: the response ends (its head is sent)
                    with trio.fail_after(timeout) if timeout is not None else contextlib.nullcontext():
                        try:
                            chunk = await stream.__anext__()
                        except StopAsyncIteration:
                            return
                    await send(chunk)
            finally:
                await stream.aclose()  # type: ignore[attr-defined]  # (ReadStream and generators have it)

        return write

    # -- watching ----------------------------------------------------------------------------------

    async def _watch(self, route: DriveRoute, view: View) -> Response:
        if isinstance(view, Hyperdrive) and route.versions[0] is not None:
            raise HTTPError(400, "?watch follows the latest version: give no +VERSION")
        headers = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"),
                   ("x-accel-buffering", "no"), ("access-control-allow-origin", "*")]
        return Response(200, headers, self._events(route, view))

    def _events(self, route: DriveRoute, view: View) -> Any:
        async def write(send: Send) -> None:
            changes_in, changes_out = trio.open_memory_channel[dict[str, Any]](math.inf)

            async def watch() -> None:
                if isinstance(view, MultiDrive):
                    async with view.watch(route.path) as changes:
                        async for event in changes:
                            changes_in.send_nowait({"drive": event.drive.key.hex(), "version": event.version})
                else:
                    async with view.watch(route.path) as changes:
                        async for version in changes:
                            changes_in.send_nowait({"drive": view.key.hex(), "version": version})

            async with open_service_nursery() as nursery:
                nursery.start_soon(watch)
                ready = {"path": route.path, "version": _version_json(view)}
                await send(b"retry: 2000\n" + _event("ready", ready))
                while True:
                    with trio.move_on_after(KEEPALIVE) as idle:
                        change = await changes_out.receive()
                    if idle.cancelled_caught:
                        await send(b": keep-alive\n\n")
                        continue
                    await send(_event("change", {"path": route.path, **change}))

        return write


# -- helpers ---------------------------------------------------------------------------------------


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def _version_json(view: View) -> Any:
    if isinstance(view, MultiDrive):
        return {k.hex(): v for k, v in view.version.items()}
    return view.version


def _kind(st: Stat) -> str:
    if st.linkname:
        return "symlink"
    if st.mount is not None and not st.mount.hypercore:
        return "mount"
    return "directory" if st.is_directory() and not st.is_file() else "file"


def _wants_json(accept: str | None) -> bool:
    if not accept:
        return False
    types = [t.split(";")[0].strip().lower() for t in accept.split(",")]
    if "application/json" not in types:
        return False
    return "text/html" not in types or types.index("application/json") < types.index("text/html")


def _cache_control(route: DriveRoute) -> str:
    if all(v is not None for v in route.versions):  # a version never changes
        return "public, max-age=31536000, immutable"
    return "no-cache"


def _http_error(e: BaseException, route: DriveRoute) -> HTTPError:
    """The answer to a read that failed with ``e``."""
    if isinstance(e, HTTPError):
        return e
    if isinstance(e, PeerTimeoutError | trio.TooSlowError):
        why = str(e) or "no peer answered in time"
        return HTTPError(504, why)
    from hypernode.drive.errors import ContentNotAvailable, CorruptEntry

    if isinstance(e, ContentNotAvailable):
        return HTTPError(504, str(e))
    if isinstance(e, CorruptEntry):
        return HTTPError(502, f"a damaged entry: {e}")
    if isinstance(e, OSError) and e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
        what = "a symlink loop at" if e.errno == errno.ELOOP else "not found:"
        return HTTPError(404, f"{what} {route.path}")
    if isinstance(e, OSError) and e.errno == errno.EINVAL:
        return HTTPError(400, f"{route.path}: {e.strerror or e}")
    if isinstance(e, OSError) and e.errno == errno.EISDIR:
        return HTTPError(404, f"a folder: {route.path}")
    return HTTPError(502, f"cannot read {route.path}: {e}")


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback_hosts(host: str, port: int) -> set[str] | None:
    """The ``Host`` values a gateway bound to a loopback address answers to (None: any)."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return None
    names = {host, "localhost", "127.0.0.1", "[::1]", f"[{host}]"}
    out = {f"{n}:{port}" for n in names}
    if port == 80:
        out |= names
    return {h.lower() for h in out}


open_gateway = opener(Gateway)
