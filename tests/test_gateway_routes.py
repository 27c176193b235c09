"""The gateway's request parsing, sans-IO (hypernode/gateway/routes.py): targets, ranges, links, and
hypothesis fuzzing of each (anything may come in: the answer is a route or an HTTPError, never another
exception, and a route never holds a path that climbs out of its drive)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.gateway.routes import (
    DriveRoute,
    HTTPError,
    PageRoute,
    content_type,
    etag,
    etag_matches,
    parse_range,
    parse_target,
    rewrite_links,
)

K1 = "ab" * 32
K2 = "cd" * 32


def test_drive_targets():
    r = parse_target(f"/hyper/{K1}/docs/a%20b.txt")
    assert isinstance(r, DriveRoute)
    assert r.keys == (bytes.fromhex(K1),) and r.versions == (None,) and r.path == "/docs/a b.txt"
    assert not r.slash and not r.watch
    assert parse_target(f"/hyper/{K1}").path == "/"
    assert parse_target(f"/hyper/{K1}/").path == "/"
    r = parse_target(f"/hyper/{K1}+7/x/?watch")
    assert r.versions == (7,) and r.path == "/x" and r.slash and r.watch
    r = parse_target(f"/hyper/{K1},{K2}/x")
    assert r.keys == (bytes.fromhex(K1), bytes.fromhex(K2)) and r.spec == f"{K1},{K2}"
    assert parse_target(f"/hyper/{K1.upper()}/x").keys == (bytes.fromhex(K1),)
    assert r.url("/a b/c", folder=True) == f"/hyper/{K1},{K2}/a%20b/c/"


def test_pages():
    assert parse_target("/") == PageRoute("dashboard")
    assert parse_target("/api/status") == PageRoute("status")
    assert parse_target("/api/seeds") == PageRoute("seeds")
    assert parse_target(f"/api/seeds/{K1}") == PageRoute("seeds", bytes.fromhex(K1))
    for target in ("/api/nope", "/favicon.ico", "/hyper/", "/hyper"):
        with pytest.raises(HTTPError) as e:
            parse_target(target)
        assert e.value.status == 404


@pytest.mark.parametrize("target", [
    f"/hyper/{K1}/../etc/passwd", f"/hyper/{K1}/a/%2e%2e/b", f"/hyper/{K1}/a/..", f"/hyper/{K1}/./a",
    f"/hyper/{K1}/a%2Fb", f"/hyper/{K1}/a%2fb", f"/hyper/{K1}/a%5cb", f"/hyper/{K1}/a\\b",
    f"/hyper/{K1}/a%00b", f"/hyper/{K1}/a\x00b", f"/hyper/{K1}/%ff%fe", f"/hyper/{K1}/a b",
    f"/hyper/{K1}/caf\u00e9", "hyper/x", "", "*", f"/hyper/{K1[:-1]}/x", f"/hyper/{K1}+x/",
    f"/hyper/{K1}+-1/", f"/hyper/{K1},{K1}/", f"/hyper/{K1}+1,{K2}/", "/hyper/zz/",
    f"/hyper/{K1}+{'9' * 30}/",
])
def test_refused_targets(target):
    with pytest.raises(HTTPError) as e:
        parse_target(target)
    assert e.value.status == 400


def test_ranges():
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 100)
    assert parse_range("bytes=90-1000", 100) == (90, 100)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=-1000", 100) == (0, 100)
    assert parse_range("items=0-1", 100) is None  # another unit is ignored
    for bad in ("bytes=100-", "bytes=5-4", "bytes=-0", "bytes=a-b", "bytes=0-1,5-6", "bytes=", "bytes=-",
                "bytes=1", "bytes= 1 - x", "bytes=0x1-2", "bytes=\u0661-2"):
        with pytest.raises(HTTPError) as e:
            parse_range(bad, 100)
        assert e.value.status == 416 and ("content-range", "bytes */100") in e.value.headers
    with pytest.raises(HTTPError):
        parse_range("bytes=0-0", 0)  # nothing to serve in an empty body


def test_content_types_and_etags():
    assert content_type("/a/index.html") == "text/html; charset=utf-8"
    assert content_type("/a.png") == "image/png"
    assert content_type("/noext") == "application/octet-stream"
    assert content_type("/a.tar.gz") == "application/gzip"
    assert etag(7) == '"7"'
    assert etag_matches('"3", "7"', '"7"') and etag_matches("*", '"1"') and etag_matches('W/"7"', '"7"')
    assert not etag_matches('"71"', '"7"') and not etag_matches(None, '"7"')


def test_links_are_rewritten():
    doc = (f'<a href="hyper://{K1}/a/b.html">x</a> <img src="hyper://{K2.upper()}+3/i.png">'
           f' hyper://{K1} hyper://{K1}x hyper://short/').encode()
    out = rewrite_links(doc)
    assert f'href="/hyper/{K1}/a/b.html"'.encode() in out
    assert f'src="/hyper/{K2}+3/i.png"'.encode() in out
    assert f" /hyper/{K1} ".encode() in out
    assert f"hyper://{K1}x".encode() in out and b"hyper://short/" in out  # not keys: left alone


# -- fuzzing ----------------------------------------------------------------------------------------

SEGMENT = st.one_of(
    st.sampled_from(["..", ".", "", "%2e%2e", "%2E.", "%2f", "%5C", "%00", "\\", "a", "b.txt", K1, f"{K1}+3",
                     f"{K1},{K2}", "hyper", "api", "status", "seeds", "%", "%zz", "%c3%a9", "%ff"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e), max_size=12),
    st.text(max_size=6),
)


def _check_route(target: str) -> None:
    try:
        route = parse_target(target)
    except HTTPError as e:
        assert 400 <= e.status < 500
        return
    if isinstance(route, DriveRoute):
        names = route.path.split("/")[1:]
        assert route.path.startswith("/")
        assert not any(n in (".", "..") for n in names), route
        assert "\x00" not in route.path and "\\" not in route.path
        assert all(len(k) == 32 for k in route.keys)
        assert len(route.keys) == len(route.versions)


@settings(max_examples=400, deadline=None)
@given(st.lists(SEGMENT, max_size=8), st.sampled_from(["", "?watch", "?x=1&watch", "?", "?watch=&a"]))
def test_fuzz_targets(segments, query):
    _check_route("/" + "/".join(segments) + query)
    _check_route("/hyper/" + "/".join(segments) + query)
    _check_route(f"/hyper/{K1}/" + "/".join(segments) + query)


def _check_range(header: str, size: int) -> None:
    try:
        got = parse_range(header, size)
    except HTTPError as e:
        assert e.status == 416
        return
    if got is not None:
        start, end = got
        assert 0 <= start < end <= size


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.integers(0, 2**40))
def test_fuzz_ranges(header, size):
    _check_range(header, size)


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"bytes=[0-9]{0,4}-[0-9]{0,4}", fullmatch=True), st.integers(0, 5000))
def test_fuzz_byte_ranges(header, size):
    _check_range(header, size)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_link_rewriting(doc):
    out = rewrite_links(doc + b"hyper://" + K1.encode() + b"/x")
    assert out.endswith(b"/hyper/" + K1.encode() + b"/x")
