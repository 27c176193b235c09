"""The gateway reading drives a JS hyperdrive 10 peer serves (interop/js/drive_peer.js) over loopback:
the standard fixture's files, symlinks and folders; a byte range fetches only the content blocks that
hold it (counted in the content feed); a key the peer lacks is 504 after --timeout; and the real
``hypernode gateway`` command follows the JS drive live (a change streamed as a Server-Sent Event)."""

from __future__ import annotations

import http.client
import json

import pytest
import trio

from hypernode.gateway import Gateway
from hypernode.node import Node
from interop.cliproc import CLI, CLIProcess
from interop.jsproc import JSProcess
from interop.test_drive_interop import fixture_bytes
from tests.clitools import HYPERNODE

pytestmark = pytest.mark.interop

TIMEOUT = 30
BLOCK = 512 * 1024  # JS writeFile's blocks
EIGHT_M = "/a/b/eight-m.bin"  # content blocks 2..17 of the fixture


def fetch(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


async def get(port: int, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return await trio.to_thread.run_sync(lambda: fetch(port, path, {k.replace("_", "-"): v
                                                                    for k, v in headers.items()}))


async def test_the_gateway_reads_a_js_drive_and_fetches_only_a_ranges_blocks(js, tmp_path):
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="gw"))["key"]
        version = (await peer.command("fixture-done", cmd="fixture", key=key))["version"]
        port = (await peer.command("listening", cmd="listen"))["port"]
        async with Node(tmp_path / "store", port=None, sparse=True, peers=[("127.0.0.1", port)]) as node, \
                Gateway(node, port=0, timeout=TIMEOUT) as gw:
            with trio.fail_after(TIMEOUT):
                # a range in the middle of the 8 MiB file: one content block fetched, no other
                start = 5 * BLOCK + 1000
                url = f"/hyper/{key}{EIGHT_M}"
                status, h, body = await get(gw.port, url, Range=f"bytes={start}-{start + 99}")
                assert status == 206 and body == fixture_bytes(8 << 20)[start:start + 100]
                assert h["etag"] == f'"{version}"'
                content = node.drives[bytes.fromhex(key)].content
                assert content is not None and content.length == 22
                assert content.downloaded() == 1 and content.has(2 + 5)
                # across a block boundary: the two blocks that hold it
                start = 9 * BLOCK - 10
                status, _, body = await get(gw.port, url, Range=f"bytes={start}-{start + 19}")
                assert status == 206 and body == fixture_bytes(8 << 20)[start:start + 20]
                assert content.downloaded() == 3 and content.has(2 + 8) and content.has(2 + 9)
                # the suffix: the last block only
                status, _, body = await get(gw.port, f"/hyper/{key}{EIGHT_M}", Range="bytes=-7")
                assert body == fixture_bytes(8 << 20)[-7:] and content.downloaded() == 4

                status, h, body = await get(gw.port, f"/hyper/{key}{EIGHT_M}")
                assert status == 200 and body == fixture_bytes(8 << 20)
                assert h["content-length"] == str(8 << 20)
                status, _, body = await get(gw.port, f"/hyper/{key}/link")  # a symlink, followed
                assert status == 200 and body == fixture_bytes(1024)
                status, _, body = await get(gw.port, f"/hyper/{key}/", accept="application/json")
                entries = {e["name"]: e["type"] for e in json.loads(body)["entries"]}
                assert entries == {"a": "directory", "empty.txt": "file", "link": "symlink", "mnt": "mount",
                                   "over.txt": "file"}
                status, _, body = await get(gw.port, f"/hyper/{key}/mnt/inside.txt")  # in the mount
                assert status == 200 and body == b"inside mount\n", body
                status, _, body = await get(gw.port, f"/hyper/{key}/over.txt")
                assert body == b"second version"
                status, _, body = await get(gw.port, f"/hyper/{key}+{version - 3}/over.txt")
                assert status == 200 and body == b"first"  # read at a version
                status, _, _ = await get(gw.port, f"/hyper/{key}/gone.txt")
                assert status == 404


async def test_a_key_the_peer_lacks_is_504_after_the_timeout(js, tmp_path):
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        port = (await peer.command("listening", cmd="listen"))["port"]
        async with Node(tmp_path / "store", port=None, sparse=True, peers=[("127.0.0.1", port)]) as node, \
                Gateway(node, port=0, timeout=1) as gw:
            with trio.fail_after(TIMEOUT):
                while not node.connected:
                    await trio.sleep(0.05)
                started = trio.current_time()
                status, _, body = await get(gw.port, "/hyper/" + "77" * 32 + "/index.html")
                assert status == 504 and b"no peer has drive " + b"77" * 32 in body, body
                assert 0.9 < trio.current_time() - started < 10


async def test_the_gateway_command_follows_a_js_drive_live(js, tmp_path):
    """``hypernode gateway`` (the console script) with --peer: a file of the JS drive, then a change
    JS makes arrives on a ?watch stream and in the next read."""
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="live"))["key"]
        await peer.command("written", cmd="write", key=key, path="/hello.txt", text="hello from JS")
        port = (await peer.command("listening", cmd="listen"))["port"]
        gateway = CLIProcess(tmp_path / "store", "gateway", "--port", "0", "--peer", f"127.0.0.1:{port}",
                             "--timeout", "20")
        gateway.args[:len(CLI)] = [HYPERNODE]  # the installed console script, as a user runs it
        async with gateway:
            http_port = int((await gateway.line("gateway on")).rstrip("/").rsplit(":", 1)[1])
            with trio.fail_after(TIMEOUT):
                status, _, body = await get(http_port, f"/hyper/{key}/hello.txt")
                assert status == 200 and body == b"hello from JS", body
                async with await trio.open_tcp_stream("127.0.0.1", http_port) as s:
                    head = f"GET /hyper/{key}/?watch HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\n\r\n"
                    await s.send_all(head.encode())
                    seen = b""
                    while b"event: ready" not in seen:
                        seen += await s.receive_some(4096)
                    await peer.command("written", cmd="write", key=key, path="/hello.txt",
                                       text="changed in JS")
                    while b"event: change" not in seen:
                        seen += await s.receive_some(4096)
                status, _, body = await get(http_port, f"/hyper/{key}/hello.txt")
                assert body == b"changed in JS"
            assert await gateway.stop() == 130
