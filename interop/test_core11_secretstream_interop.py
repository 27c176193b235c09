"""hypernode.core11.secretstream against the pinned @hyperswarm/secret-stream 6.9.2 (interop/v11), over real
loopback TCP, both ways.

interop/v11/js/secretstream_tool.js runs one JS end (a NoiseSecretStream over a net socket) and reports, as
JSON lines, its handshake (its key, the remote's key, the handshake hash) and every message it receives
(length, sha256, bytes when short). Each test checks that both sides name the same two keys and the same
handshake hash, and that messages both ways (empty, small, 64 KiB, many in a row) arrive byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from hypernode.core11.secretstream import (
    KeyPair,
    SecretStreamConnection,
    SecretStreamError,
    open_secret_stream,
)

pytestmark = pytest.mark.interop

TOOL = Path(__file__).resolve().parent / "v11" / "js" / "secretstream_tool.js"
JS_SEED = bytes(range(32))
PY_SEED = bytes(range(100, 132))
SIZES = [0, 1, 5, 64 * 1024, 1000, 0, 3] + [100 + i for i in range(200)]


def pattern(n: int) -> bytes:
    """What the JS tool sends for a size: byte i is (i * 7 + n) & 255."""
    return bytes((i * 7 + n) & 255 for i in range(n))


class JSEnd:
    def __init__(self, proc: trio.Process) -> None:
        self.proc = proc
        self._buf = b""

    async def event(self, timeout: float = 20) -> dict[str, Any]:
        assert self.proc.stdout is not None
        with trio.fail_after(timeout):
            while b"\n" not in self._buf:
                chunk = await self.proc.stdout.receive_some(65536)
                if not chunk:
                    raise AssertionError("the JS secret-stream tool exited")
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        ev: dict[str, Any] = json.loads(line)
        return ev

    async def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        await self.proc.stdin.send_all(json.dumps(cmd).encode() + b"\n")


@asynccontextmanager
async def js_end(*args: str) -> AsyncIterator[JSEnd]:
    proc = await trio.lowlevel.open_process(["node", str(TOOL), *args], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE)
    try:
        yield JSEnd(proc)
    finally:
        proc.kill()
        with trio.CancelScope(shield=True):
            await proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    await pipe.aclose()


async def exchange(conn: SecretStreamConnection, js: JSEnd) -> None:
    """Both ways, then Python ends its side and JS sees the end."""
    handshake = await js.event()
    assert handshake["event"] == "handshake", handshake
    js_key, py_key = KeyPair.generate(JS_SEED).public_key.hex(), KeyPair.generate(PY_SEED).public_key.hex()
    assert handshake["publicKey"] == conn.remote_public_key.hex() == js_key
    assert handshake["remotePublicKey"] == conn.public_key.hex() == py_key
    assert handshake["handshakeHash"] == conn.handshake_hash.hex()

    # Python -> JS
    ours = [b"", b"hello", bytes(range(256)) * 256, b""]
    ours += [i.to_bytes(4, "little") * (i % 9) for i in range(300)]
    for m in ours:
        await conn.send(m)
    for m in ours:
        ev = await js.event()
        assert ev["event"] == "message", ev
        assert ev["len"] == len(m) and ev["sha256"] == hashlib.sha256(m).hexdigest()
        if len(m) <= 64:
            assert ev["hex"] == m.hex()

    # JS -> Python
    await js.command(send=["", "00ff", "ab" * 40])
    await js.command(sendSizes=SIZES)
    expected = [b"", b"\x00\xff", b"\xab" * 40] + [pattern(n) for n in SIZES]
    with trio.fail_after(20):
        for m in expected:
            assert await conn.receive() == m
    assert (await js.event())["event"] == "sent"
    assert (await js.event())["event"] == "sent"

    # JS ends its side: our iteration ends cleanly
    await js.command(end=True)
    with trio.fail_after(20):
        assert [m async for m in conn] == []


async def test_python_initiator_js_responder() -> None:
    async with js_end("listen", JS_SEED.hex()) as js:
        port = (await js.event())["port"]
        transport = await trio.open_tcp_stream("127.0.0.1", port)
        expected = KeyPair.generate(JS_SEED).public_key
        async with open_secret_stream(transport, initiator=True, key_pair=KeyPair.generate(PY_SEED),
                                      remote_public_key=expected) as conn:
            await exchange(conn, js)


async def test_js_initiator_python_responder() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with listeners[0], js_end("connect", JS_SEED.hex(), str(port)) as js:
        transport = await listeners[0].accept()
        async with open_secret_stream(transport, initiator=False, key_pair=KeyPair.generate(PY_SEED)) as conn:
            await exchange(conn, js)


async def test_python_refuses_a_js_key_it_did_not_expect() -> None:
    async with js_end("listen", JS_SEED.hex()) as js:
        port = (await js.event())["port"]
        transport = await trio.open_tcp_stream("127.0.0.1", port)
        with pytest.raises(SecretStreamError, match="not the expected"):
            async with open_secret_stream(transport, initiator=True, key_pair=KeyPair.generate(PY_SEED),
                                          remote_public_key=KeyPair.generate(PY_SEED).public_key):
                pass
        # the initiator refuses before its third message: JS never completes the handshake
        ev = await js.event()
        assert ev["event"] in ("error", "close"), ev
