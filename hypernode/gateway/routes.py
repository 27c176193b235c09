"""The gateway's request parsing and page making, sans-IO: pure functions of strings and bytes.

- :func:`parse_target` turns a request target into a route: the dashboard (``/``), the API
  (``/api/...``), or a drive read, ``/hyper/KEYS/PATH[?watch]`` where ``KEYS`` is ``KEY``,
  ``KEY+VERSION`` (a checkout), or ``KEY1,KEY2,...`` (the merged MultiDrive view; each may carry
  ``+VERSION``, all or none). Paths are refused (:class:`HTTPError` 400), never normalised, when they
  hold ``.`` or ``..`` segments, encoded slashes or backslashes (``%2F``, ``%5C``), NUL (raw or
  ``%00``), a backslash, bytes that are not UTF-8 once decoded, or anything but printable ASCII.
- :func:`parse_range` reads a ``Range`` header against a size (one ``bytes=`` range; 416 otherwise).
- :func:`content_type`, :func:`etag`, :func:`rewrite_links` (``hyper://KEY`` in HTML becomes a
  gateway URL), and the folder listings (:func:`listing_html`, :func:`listing_json`).
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_to_bytes

MAX_KEYS = 16  # drives in one merged view
MAX_VERSION = 2**53  # as JS numbers go


class HTTPError(Exception):
    """A request the gateway answers with ``status`` and a one-line ``message``."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = list(headers)


@dataclass(frozen=True)
class DriveRoute:
    """A read of a drive or of a merged view: ``keys`` with their ``versions`` (None: the latest),
    the drive ``path`` (absolute, no trailing slash but for ``/``), whether the URL ended in a slash,
    and whether changes are to be streamed (``?watch``). ``spec`` is the keys part as written in URLs
    (lower-case hex), for links."""

    keys: tuple[bytes, ...]
    versions: tuple[int | None, ...]
    path: str
    slash: bool = False
    watch: bool = False

    @property
    def spec(self) -> str:
        pairs = zip(self.keys, self.versions, strict=True)
        return ",".join(k.hex() + ("" if v is None else f"+{v}") for k, v in pairs)

    def url(self, path: str, folder: bool = False) -> str:
        """The gateway URL of ``path`` in the same view."""
        quoted = quote(path, safe="/!$&'()*+,;=:@-._~")
        if folder and not quoted.endswith("/"):
            quoted += "/"
        return f"/hyper/{self.spec}{quoted}"


@dataclass(frozen=True)
class PageRoute:
    """A page of the gateway itself: ``dashboard`` (``/``), ``status`` (``/api/status``), ``seeds``
    (``/api/seeds``, or ``/api/seeds/KEY`` with ``key``)."""

    name: str
    key: bytes | None = None


Route = DriveRoute | PageRoute

_ALLOWED = re.compile(r"[!-~]*")  # printable ASCII, no space


def parse_target(target: str) -> Route:
    """The route of a request target (origin form: ``/path?query``). HTTPError 400 for a target that
    is refused, 404 for one that names nothing here."""
    if not target.startswith("/") or not _ALLOWED.fullmatch(target):
        raise HTTPError(400, "bad request target")
    raw_path, _, query = target.partition("?")
    if "\\" in raw_path:
        raise HTTPError(400, "a backslash in the path")
    segments = [_decode_segment(s) for s in raw_path.split("/")[1:]]
    if segments in ([""], []):
        return PageRoute("dashboard")
    if segments[0] == "api":
        rest = [s for s in segments[1:]]
        if rest == ["status"]:
            return PageRoute("status")
        if rest == ["seeds"]:
            return PageRoute("seeds")
        if len(rest) == 2 and rest[0] == "seeds":
            return PageRoute("seeds", _key(rest[1]))
        raise HTTPError(404, "no such page")
    if segments[0] != "hyper" or len(segments) < 2 or not segments[1]:
        raise HTTPError(404, "no such page (drives are at /hyper/KEY/PATH)")
    keys, versions = _parse_spec(segments[1])
    inner = segments[2:]
    slash = bool(inner) and inner[-1] == ""
    names = [s for s in inner if s]
    path = "/" + "/".join(names)
    watch = any(p.partition("=")[0] == "watch" for p in query.split("&") if p)
    return DriveRoute(keys, versions, path, slash, watch)


def _decode_segment(segment: str) -> str:
    if "\x00" in segment:
        raise HTTPError(400, "NUL in the path")
    lowered = segment.lower()
    if "%2f" in lowered or "%5c" in lowered:
        raise HTTPError(400, "an encoded slash in the path")
    try:
        decoded = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, "a path that is not UTF-8") from None
    if "\x00" in decoded:
        raise HTTPError(400, "NUL in the path")
    if decoded in (".", ".."):
        raise HTTPError(400, "'.' and '..' are not allowed in a path")
    return decoded


def _key(text: str) -> bytes:
    if len(text) != 64:
        raise HTTPError(400, f"not a drive key (64 hex digits): {text[:80]!r}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise HTTPError(400, f"not a drive key (64 hex digits): {text[:80]!r}") from None


def _parse_spec(spec: str) -> tuple[tuple[bytes, ...], tuple[int | None, ...]]:
    parts = spec.split(",")
    if len(parts) > MAX_KEYS:
        raise HTTPError(400, f"at most {MAX_KEYS} drives in one view")
    keys: list[bytes] = []
    versions: list[int | None] = []
    for part in parts:
        key_text, plus, version_text = part.partition("+")
        key = _key(key_text)
        if key in keys:
            raise HTTPError(400, "a drive named twice in one view")
        version: int | None = None
        if plus:
            if not version_text.isdigit() or not version_text.isascii() or len(version_text) > 16 \
                    or int(version_text) > MAX_VERSION:
                raise HTTPError(400, f"not a version: {version_text[:20]!r}")
            version = int(version_text)
        keys.append(key)
        versions.append(version)
    if len(keys) > 1 and any(v is None for v in versions) and any(v is not None for v in versions):
        raise HTTPError(400, "give a version to every drive of the view, or to none")
    return tuple(keys), tuple(versions)


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` a ``Range`` header asks of a body of ``size`` bytes, or None
    for the whole body (no header, or a unit other than bytes, which is ignored). HTTPError 416 (with
    ``Content-Range: bytes */size``) for a range that is malformed, not satisfiable, or more than
    one range."""
    if value is None:
        return None
    unit, eq, spec = value.strip().partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    unsatisfiable = HTTPError(416, "range not satisfiable", [("content-range", f"bytes */{size}")])
    spec = spec.strip()
    if "," in spec:
        raise unsatisfiable
    first, dash, last = spec.partition("-")
    first, last = first.strip(), last.strip()
    numbers = all(not p or (p.isascii() and p.isdigit() and len(p) <= 20) for p in (first, last))
    if not dash or not (first or last) or not numbers:
        raise unsatisfiable
    if not first:  # a suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - n), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if start >= size or (last and int(last) < start):
        raise unsatisfiable
    return start, end


def content_type(path: str) -> str:
    """The media type of a file by its name (``application/octet-stream`` when unknown); text types
    say UTF-8."""
    guessed, encoding = mimetypes.guess_type(path, strict=False)
    if guessed is None or encoding is not None:  # (a .gz's type is the archive, not its content)
        return f"application/{_ENCODINGS.get(encoding, 'octet-stream') if encoding else 'octet-stream'}"
    if guessed.startswith("text/") or guessed in ("application/javascript", "application/json"):
        return f"{guessed}; charset=utf-8"
    return guessed


_ENCODINGS = {"gzip": "gzip", "bzip2": "x-bzip2", "xz": "x-xz", "br": "x-brotli", "compress": "x-compress"}


def is_html(media_type: str) -> bool:
    return media_type.split(";")[0].strip() in ("text/html", "application/xhtml+xml")


def etag(version: int | dict[bytes, int]) -> str:
    """The ETag of a response read at a drive ``version``, or at a merged view's version vector."""
    if isinstance(version, int):
        return f'"{version}"'
    return '"' + "-".join(f"{k.hex()[:16]}.{v}" for k, v in sorted(version.items())) + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """Does an ``If-None-Match`` header name ``tag`` (or ``*``)?"""
    if if_none_match is None:
        return False
    candidates = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in candidates or tag in candidates


_HYPER_LINK = re.compile(rb"hyper://([0-9a-fA-F]{64}(?:\+[0-9]{1,16})?)(?=[/\"'\s<>?#)]|$)")


def rewrite_links(document: bytes) -> bytes:
    """``hyper://KEY[+VERSION]/PATH`` links in an HTML document as gateway URLs (``/hyper/KEY/PATH``)."""
    return _HYPER_LINK.sub(lambda m: b"/hyper/" + m.group(1).lower(), document)


@dataclass(frozen=True)
class Entry:
    """One name of a folder listing."""

    name: str
    kind: str  # file, directory, symlink, mount
    size: int
    mtime: int
    drive: bytes | None = None


def listing_json(route: DriveRoute, version: Any, entries: Sequence[Entry]) -> bytes:
    """A folder as JSON: its path, the version read, and each entry (name, type, size, mtime in ms,
    the drive it is from in a merged view, and its gateway URL)."""
    body = {
        "path": route.path,
        "version": version,
        "entries": [{"name": e.name, "type": e.kind, "size": e.size, "mtime": e.mtime,
                     **({"drive": e.drive.hex()} if e.drive is not None else {}),
                     "url": route.url(_join(route.path, e.name), e.kind in ("directory", "mount"))}
                    for e in entries],
    }
    return (json.dumps(body, indent=1) + "\n").encode()


def listing_html(route: DriveRoute, version: Any, entries: Sequence[Entry]) -> bytes:
    """A folder as an HTML page: a link per entry, with its kind and size."""
    title = html.escape(f"{route.path} in {route.spec[:16]}…")
    rows = []
    if route.path != "/":
        parent = route.path.rsplit("/", 1)[0] or "/"
        rows.append(f'<tr><td><a href="{html.escape(route.url(parent, True))}">../</a></td><td></td>'
                    "<td></td></tr>")
    for e in entries:
        folder = e.kind in ("directory", "mount")
        href = html.escape(route.url(_join(route.path, e.name), folder))
        shown = html.escape(e.name + ("/" if folder else ""))
        size = "" if folder else str(e.size)
        rows.append(f'<tr><td><a href="{href}">{shown}</a></td><td>{e.kind}</td>'
                    f'<td class="n">{size}</td></tr>')
    version_text = html.escape(json.dumps(version))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em}}td{{padding:2px 12px}}.n{{text-align:right}}</style>
</head><body>
<h1>{html.escape(route.path)}</h1>
<p>drive <code>{html.escape(route.spec)}</code>, version {version_text} · <a href="/">dashboard</a></p>
<table>
<tr><th>name</th><th>type</th><th>size</th></tr>
{chr(10).join(rows)}
</table>
</body></html>
"""
    return page.encode()


def _join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name
