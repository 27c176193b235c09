"""The gateway (hypernode/gateway/) as a client sees it, over real loopback HTTP: files with their
headers, ranges, HEAD, folders, versions, merged views, watching, link rewriting, and what it refuses
(path traversal, oversized heads, other hosts, bad bodies). Requests are made by the standard
library's http.client (a client that is not ours) or, for malformed ones, written byte by byte; a
hypothesis test throws junk at a live server, which keeps answering."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypernode.gateway import Gateway
from hypernode.node import Node
from hypernode.storecmds import node_services

BIG = bytes(range(256)) * 5000  # 1.28 MB: three 512 KiB content blocks


@contextlib.asynccontextmanager
async def running_gateway(tmp_path: Any, *, timeout: float | None = 5.0, seeds: bool = False,
                          ) -> AsyncIterator[tuple[Node, Gateway]]:
    async with Node(tmp_path / "store", port=0, sparse=True) as node:
        async with contextlib.AsyncExitStack() as stack:
            seeder = await stack.enter_async_context(node_services(node)) if seeds else None
            gw = await stack.enter_async_context(Gateway(node, port=0, timeout=timeout, seeder=seeder))
            yield node, gw


def fetch(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None,
          body: bytes | None = None, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


async def get(port: int, path: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    return await trio.to_thread.run_sync(lambda: fetch(port, path, **kw))


def raw(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """Send ``data`` as is; what comes back until the server closes (or 5 s pass)."""
    with socket.create_connection((host, port), timeout=5) as s:
        with contextlib.suppress(OSError):
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # nothing more: the server answers what it got, then closes
        out = b""
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                out += chunk
        return out


async def a_drive(node: Node) -> Any:
    drive = await node.create_drive()
    await drive.write_file("/big.bin", BIG)
    await drive.write_file("/docs/a b.txt", "hello")
    await drive.write_file("/index.html", f'<a href="hyper://{drive.key.hex()}/docs/a b.txt">a</a>')
    await drive.mkdir("/empty")
    return drive


async def test_files_ranges_head_and_missing(tmp_path):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        k = drive.key.hex()
        status, h, body = await get(gw.port, f"/hyper/{k}/big.bin")
        assert status == 200 and body == BIG
        assert h["content-length"] == str(len(BIG)) and h["content-type"] == "application/octet-stream"
        assert h["etag"] == f'"{drive.version}"' and h["accept-ranges"] == "bytes"

        status, h, body = await get(gw.port, f"/hyper/{k}/big.bin", headers={"Range": "bytes=600000-600009"})
        assert status == 206 and body == BIG[600000:600010]
        assert h["content-range"] == f"bytes 600000-600009/{len(BIG)}" and h["content-length"] == "10"
        status, h, body = await get(gw.port, f"/hyper/{k}/big.bin", headers={"Range": "bytes=-5"})
        assert status == 206 and body == BIG[-5:]
        for bad in ("bytes=2000000-", "bytes=9-1", "bytes=x", "bytes=0-1,4-5"):
            status, h, _ = await get(gw.port, f"/hyper/{k}/big.bin", headers={"Range": bad})
            assert status == 416 and h["content-range"] == f"bytes */{len(BIG)}", bad
        status, h, _ = await get(gw.port, f"/hyper/{k}/big.bin", headers={"Range": "bytes=0-0",
                                                                         "If-Range": '"1"'})
        assert status == 200  # another version's range: the whole file

        status, h, body = await get(gw.port, f"/hyper/{k}/big.bin", method="HEAD")
        assert status == 200 and body == b"" and h["content-length"] == str(len(BIG))
        status, h, _ = await get(gw.port, f"/hyper/{k}/big.bin", headers={"If-None-Match": h["etag"]})
        assert status == 304

        status, _, body = await get(gw.port, f"/hyper/{k}/docs/a%20b.txt")
        assert status == 200 and body == b"hello"
        for missing in ("/nope", "/docs/nope.txt", "/big.bin/under"):
            status, h, body = await get(gw.port, f"/hyper/{k}{missing}")
            assert status == 404 and h["content-type"].startswith("text/plain"), (missing, body)


async def test_folders_as_html_and_json(tmp_path):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        k = drive.key.hex()
        status, h, body = await get(gw.port, f"/hyper/{k}/", headers={"Accept": "application/json"})
        assert status == 200 and h["content-type"] == "application/json"
        listing = json.loads(body)
        assert listing["version"] == drive.version
        assert {e["name"]: e["type"] for e in listing["entries"]} == {
            "big.bin": "file", "docs": "directory", "index.html": "file", "empty": "directory"}
        assert {e["name"]: e["url"] for e in listing["entries"]}["docs"] == f"/hyper/{k}/docs/"
        status, h, body = await get(gw.port, f"/hyper/{k}/docs")
        assert status == 200 and h["content-type"].startswith("text/html")
        assert f'href="/hyper/{k}/docs/a%20b.txt"'.encode() in body and b"a b.txt" in body
        status, _, body = await get(gw.port, f"/hyper/{k}/empty", headers={"Accept": "application/json"})
        assert json.loads(body)["entries"] == []


async def test_html_links_are_rewritten(tmp_path):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        k = drive.key.hex()
        status, h, body = await get(gw.port, f"/hyper/{k}/index.html")
        assert status == 200 and body == f'<a href="/hyper/{k}/docs/a b.txt">a</a>'.encode()
        assert h["content-length"] == str(len(body)) and h["content-type"] == "text/html; charset=utf-8"
        assert "sandbox" in h["content-security-policy"]  # a page in a drive cannot use the API


async def test_versions_and_merged_views(tmp_path):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        k = drive.key.hex()
        before = drive.version
        await drive.write_file("/docs/a b.txt", "changed")
        status, h, body = await get(gw.port, f"/hyper/{k}+{before}/docs/a%20b.txt")
        assert status == 200 and body == b"hello" and h["etag"] == f'"{before}"'
        assert "immutable" in h["cache-control"]
        status, _, body = await get(gw.port, f"/hyper/{k}/docs/a%20b.txt")
        assert body == b"changed"
        status, _, _ = await get(gw.port, f"/hyper/{k}+{drive.version + 5}/")
        assert status == 404

        other = await node.create_drive()
        await other.write_file("/only-other.txt", "other")
        await other.write_file("/docs/b.txt", "b")
        o = other.key.hex()
        status, _, body = await get(gw.port, f"/hyper/{k},{o}/docs", headers={"Accept": "application/json"})
        names = {e["name"]: e.get("drive") for e in json.loads(body)["entries"]}
        assert names == {"a b.txt": k, "b.txt": o}
        status, _, body = await get(gw.port, f"/hyper/{k},{o}/only-other.txt")
        assert status == 200 and body == b"other"
        status, _, body = await get(gw.port, f"/hyper/{k}+{before},{o}+{other.version}/docs/a%20b.txt")
        assert status == 200 and body == b"hello"


async def test_watch_streams_changes(tmp_path):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        k = drive.key.hex()
        async with await trio.open_tcp_stream("127.0.0.1", gw.port) as s:
            head = f"GET /hyper/{k}/docs?watch HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n\r\n"
            await s.send_all(head.encode())
            seen = b""
            with trio.fail_after(10):
                while b"event: ready" not in seen:
                    seen += await s.receive_some(4096)
                assert b"200 OK" in seen and b"text/event-stream" in seen
                await drive.write_file("/elsewhere.txt", "not under /docs")
                await drive.write_file("/docs/new.txt", "new")
                while b"event: change" not in seen:
                    seen += await s.receive_some(4096)
        change = seen.split(b"event: change\n", 1)[1].split(b"\n", 1)[0]
        assert json.loads(change.removeprefix(b"data: ")) == {"path": "/docs", "drive": k,
                                                              "version": drive.version}


@pytest.mark.parametrize("target", [
    "/hyper/{k}/../../etc/passwd", "/hyper/{k}/docs/%2e%2e/%2e%2e/x", "/hyper/{k}/docs%2fa%20b.txt",
    "/hyper/{k}/docs%5ca", "/hyper/{k}/a%00", "/hyper/{k}/docs/..",
])
async def test_traversal_is_refused(tmp_path, target):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        request = f"GET {target.format(k=drive.key.hex())} HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\n\r\n"
        answer = await trio.to_thread.run_sync(raw, gw.port, request.encode())
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]


async def test_oversized_heads_and_bad_requests_get_4xx(tmp_path):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        k = drive.key.hex()
        host = f"Host: 127.0.0.1:{gw.port}\r\n"
        cases = {
            b"414": f"GET /hyper/{k}/{'a' * 20000} HTTP/1.1\r\n{host}\r\n".encode(),
            b"431": f"GET / HTTP/1.1\r\n{host}X-Big: {'b' * 20000}\r\n\r\n".encode(),
            b"431 ": f"GET / HTTP/1.1\r\n{host}".encode() + b"".join(b"X-%d: y\r\n" % i for i in range(3000))
            + b"\r\n",
            b"400": b"NOT HTTP AT ALL\r\n\r\n",
            b"400 ": f"GET /hyper/{k}/caf\xc3\xa9 HTTP/1.1\r\n{host}\r\n".encode("latin-1"),
            b"413": f"POST /api/seeds HTTP/1.1\r\n{host}Content-Type: application/json\r\n"
                    f"Content-Length: 100000\r\n\r\n{'x' * 100000}".encode(),
            b"421": b"GET / HTTP/1.1\r\nHost: evil.example:80\r\n\r\n",
            b"405": f"PUT /hyper/{k}/x HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n".encode(),
        }
        for status, request in cases.items():
            answer = await trio.to_thread.run_sync(raw, gw.port, request)
            assert answer.startswith(b"HTTP/1.1 " + status.strip() + b" "), (status, answer[:100])
        status, _, _ = await get(gw.port, f"/hyper/{k}/big.bin", method="HEAD")
        assert status == 200  # still serving


async def test_only_the_configured_host_is_bound(tmp_path):
    async with running_gateway(tmp_path) as (_, gw):
        assert gw.host == "127.0.0.1"
        with pytest.raises(ConnectionRefusedError):
            await trio.to_thread.run_sync(lambda: socket.create_connection(("127.0.0.2", gw.port), timeout=5))
        status, _, body = await get(gw.port, "/")
        assert status == 200 and b"<title>hypernode</title>" in body


async def test_a_key_no_peer_has_is_504_after_the_timeout(tmp_path):
    async with running_gateway(tmp_path, timeout=0.5) as (_, gw):
        started = trio.current_time()
        status, _, body = await get(gw.port, "/hyper/" + "ef" * 32 + "/x.txt")
        assert status == 504 and b"no peer" in body, body
        assert trio.current_time() - started < 10
        status, _, body = await get(gw.port, "/")
        assert status == 200


async def test_the_api_and_its_guards(tmp_path):
    async with running_gateway(tmp_path, seeds=True) as (node, gw):
        drive = await a_drive(node)
        status, _, body = await get(gw.port, "/api/status")
        st = json.loads(body)
        assert status == 200 and st["running"] and [d["key"] for d in st["drives"]] == [drive.key.hex()]
        seed = json.dumps({"key": "12" * 32}).encode()
        status, _, _ = await get(gw.port, "/api/seeds", method="POST", body=seed,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 415  # what a form on another site can send
        status, _, _ = await get(gw.port, "/api/seeds", method="POST", body=seed,
                                 headers={"Content-Type": "application/json", "Origin": "http://evil.example"})
        assert status == 403
        status, _, body = await get(gw.port, "/api/seeds", method="POST", body=b"{",
                                    headers={"Content-Type": "application/json"})
        assert status == 400
        status, _, body = await get(gw.port, "/api/seeds", method="POST", body=seed,
                                    headers={"Content-Type": "application/json",
                                             "Origin": f"http://127.0.0.1:{gw.port}"})
        assert status == 200 and json.loads(body)["added"] == ["12" * 32]
        status, _, body = await get(gw.port, "/api/seeds")
        assert [s["key"] for s in json.loads(body)["seeds"]] == ["12" * 32]
        status, _, _ = await get(gw.port, "/api/seeds/" + "12" * 32, method="DELETE")
        assert status == 200
        assert json.loads((await get(gw.port, "/api/seeds"))[2])["seeds"] == []


# -- fuzzing a live server ---------------------------------------------------------------------------

JUNK = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda m, t, h: m + b" " + t + b" HTTP/1.1\r\n" + h + b"\r\n\r\n",
              st.sampled_from([b"GET", b"HEAD", b"POST", b"DELETE", b"G\x00T", b""]),
              st.one_of(st.binary(max_size=80), st.sampled_from([b"/", b"/hyper/", b"/api/status", b"*"])),
              st.binary(max_size=120)),
)


async def test_fuzz_requests_never_take_the_server_down(tmp_path):
    async with running_gateway(tmp_path) as (node, gw):
        drive = await a_drive(node)
        k = drive.key.hex().encode()
        host = b"Host: 127.0.0.1:%d\r\n" % gw.port

        @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
        @given(JUNK, st.sampled_from([b"", b"/hyper/" + k + b"/big.bin", b"/hyper/" + k + b"/docs/"]),
               st.binary(max_size=40))
        def junk(data: bytes, target: bytes, range_value: bytes) -> None:
            answer = raw(gw.port, data)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 "), answer[:60]
            if target:
                request = b"GET " + target + b" HTTP/1.1\r\n" + host + b"Range: " + range_value + b"\r\n\r\n"
                answer = raw(gw.port, request)
                assert answer == b"" or answer[9:12] in (b"200", b"206", b"400", b"416"), answer[:60]

        await trio.to_thread.run_sync(junk)
        status, _, body = await get(gw.port, f"/hyper/{k.decode()}/big.bin")
        assert status == 200 and body == BIG
