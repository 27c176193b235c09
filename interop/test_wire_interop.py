"""The wire protocol against JS hypercore-protocol@8.0.7 over loopback TCP, Python as initiator and
as responder: handshake, a channel for a shared key, every message type both ways with its fields,
and a stream extension message each way with each encoding (binary, json, utf-8)."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hypernode import crypto
from hypernode.wire import ChannelOpened, MessageReceived, messages
from hypernode.wire.stream import ProtocolStream
from interop.jsproc import JSProcess

pytestmark = pytest.mark.interop

M = messages
PY_MESSAGES = [
    M.Options(extensions=["x", "y"], ack=False),
    M.Status(uploading=True, downloading=False),
    M.Have(start=1, length=2, bitfield=b"\x07"),
    M.Unhave(start=3),
    M.Want(start=8192, length=8192),
    M.Unwant(start=0, length=1048576),
    M.Request(index=5, nodes=3),
    M.Cancel(index=5),
    M.Data(index=5, value=b"hello from python", nodes=[M.Data.Node(index=10, hash=b"\x01" * 32, size=17)],
           signature=b"\x02" * 64),
]
JS_EXPECTED = {
    "Options": M.Options(extensions=["a", "b"], ack=True),
    "Status": M.Status(uploading=False, downloading=True),
    "Have": M.Have(start=10, length=20, bitfield=bytes([1, 2, 3])),
    "Unhave": M.Unhave(start=5, length=2),
    "Want": M.Want(start=0, length=1048576),
    "Unwant": M.Unwant(start=8192, length=8192),
    "Request": M.Request(index=42, bytes=0, hash=True, nodes=7),
    "Cancel": M.Cancel(index=42, hash=True),
    "Data": M.Data(index=42, value=b"hello from js",
                   nodes=[M.Data.Node(index=84, hash=b"\x09" * 32, size=13)], signature=b"\x08" * 64),
}


def _js_value(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"hex"}:
        return bytes.fromhex(v["hex"])
    if isinstance(v, dict):
        return {k: _js_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_js_value(x) for x in v]
    return v


async def _python_side(ps: ProtocolStream, key: bytes, js: JSProcess, delay_open: float = 0) -> None:
    received: dict[str, Any] = {}
    ext_got: list[tuple[str, Any]] = []

    def on(name: str):
        def handler(message: Any, peer: Any) -> None:
            ext_got.append((name, message))
        return handler

    bin_ext = ps.register_extension("ext-binary", "binary", on("ext-binary"))
    json_ext = ps.register_extension("ext-json", "json", on("ext-json"))
    utf_ext = ps.register_extension("ext-utf8", "utf-8", on("ext-utf8"))
    remote_key = await ps.wait_handshake()
    assert len(remote_key) == 32
    if delay_open:
        await trio.sleep(delay_open)  # the remote's Open arrives first: open_channel reports ChannelOpened

    def handle(ev: Any) -> bool:
        if isinstance(ev, ChannelOpened):
            for m in PY_MESSAGES:
                ps.send(ch, m)
            bin_ext.send(b"bin from python", ps)
            json_ext.send({"from": "python", "list": [1, 2]}, ps)
            utf_ext.send("utf8 from python ✓", ps)
        elif isinstance(ev, MessageReceived):
            received[type(ev.message).__name__] = ev.message
        return len(received) == 9 and len(ext_got) >= 6

    # the events that follow open_channel at once (ChannelOpened when JS's Open came first) are not
    # in the stream's events: ignoring them made this test hang whenever JS's Open won the race
    ch, first = ps.open_channel(key)
    with trio.fail_after(15):
        done = any([handle(ev) for ev in first])
        if not done:
            async for ev in ps:
                if handle(ev):
                    break
    # every JS message arrived with its fields intact
    for name, expected in JS_EXPECTED.items():
        got = received[name]
        for field in type(expected).__slots__:
            want = getattr(expected, field)
            if want is not None and want != []:
                assert getattr(got, field) == want, (name, field)
    assert ("ext-binary", b"bin from js") in ext_got
    assert ("ext-json", {"from": "js", "n": 1}) in ext_got
    assert ("ext-utf8", "utf8 from js ✓") in ext_got
    assert ("ext-binary", b"echo:bin from python") in ext_got
    assert ("ext-json", {"echo": {"from": "python", "list": [1, 2]}}) in ext_got
    assert ("ext-utf8", "echo:utf8 from python ✓") in ext_got

    # and every Python message arrived in JS with its fields intact
    def js_has_all(events: list[dict[str, Any]]) -> bool:
        return len({e["event"] for e in events} & {"options", "status", "have", "unhave", "want", "unwant",
                                                   "request", "cancel", "data"}) == 9 and \
            sum(1 for e in events if e["event"] == "extension") >= 3
    with trio.move_on_after(15):
        await js.collect_until(js_has_all)
    assert js_has_all(js.events), [(e["event"], e.get("name"), e.get("msg")) for e in js.events]
    by_type = {e["event"]: _js_value(e.get("msg")) for e in js.events}
    for m in PY_MESSAGES:
        got = by_type[type(m).__name__.lower()]
        for field in type(m).__slots__:
            v = getattr(m, field)
            if v is None or v == []:
                continue
            if field == "nodes" and isinstance(v, list):
                assert [(n["index"], n["hash"], n["size"]) for n in got["nodes"]] == \
                    [(n.index, n.hash, n.size) for n in v]
            else:
                assert got[field] == v, (type(m).__name__, field)
    exts = [(e["name"], _js_value(e["msg"])) for e in js.events if e["event"] == "extension"]
    assert ("ext-binary", b"bin from python") in exts
    assert ("ext-json", {"from": "python", "list": [1, 2]}) in exts
    assert ("ext-utf8", "utf8 from python ✓") in exts
    handshake = next(e for e in js.events if e["event"] == "handshake")
    assert handshake["remotePublicKey"] == ps.public_key.hex()


@pytest.mark.parametrize("delay_open", [0, 0.3])
async def test_python_initiator_js_responder(js, delay_open):
    key = crypto.key_pair().public_key
    async with JSProcess("wire_peer.js", "listen", "0", key.hex()) as proc:
        port = (await proc.wait_for("listening"))["port"]
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        async with ProtocolStream(tcp, initiator=True) as ps:
            await _python_side(ps, key, proc, delay_open)


@pytest.mark.parametrize("delay_open", [0, 0.3])
async def test_js_initiator_python_responder(js, delay_open):
    key = crypto.key_pair().public_key
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with JSProcess("wire_peer.js", "connect", str(port), key.hex()) as proc:
        tcp = await listeners[0].accept()
        await listeners[0].aclose()
        async with ProtocolStream(tcp, initiator=False) as ps:
            await _python_side(ps, key, proc, delay_open)
