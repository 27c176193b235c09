"""Feed extension messages (hypercore's registerExtension) between a Python feed and a JS feed over
a corestore replication connection, each way, with each encoding."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hypernode.corestore import Corestore
from interop.jsproc import JSProcess

pytestmark = pytest.mark.interop

CASES = [("ext-json", "json", {"n": 1, "s": "hé"}), ("ext-utf8", "utf-8", "hello ✓"),
         ("ext-binary", "binary", b"\x00\x01binary")]


async def test_feed_extensions_both_ways(js):
    async with JSProcess("store_peer.js", "memory") as peer, Corestore() as store:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="ext"))["key"]
        await peer.command("appended", cmd="append", key=key, hex=[b"x".hex()])
        for name, encoding, _ in CASES:
            await peer.command("extension-registered", cmd="extension", key=key, name=name, encoding=encoding)
        port = (await peer.command("listening", cmd="listen"))["port"]

        feed = await store.get(bytes.fromhex(key))
        got: list[tuple[str, Any]] = []
        exts = {}
        for name, encoding, _ in CASES:
            exts[name] = feed.register_extension(
                name, encoding, lambda msg, p, name=name: got.append((name, msg)))
        await store.connect("127.0.0.1", port)
        with trio.fail_after(10):
            while not feed.peers or feed.peers[0].channel.remote_extensions is None:
                await trio.sleep(0.01)  # wait for JS's Options with its extension names
            for name, _, msg in CASES:
                exts[name].send(msg, feed.peers[0])
            for name, _, msg in CASES:
                await peer.command("ext-sent", cmd="ext-send", key=key, name=name,
                                   **({"hex": msg.hex()} if isinstance(msg, bytes) else {"msg": msg}))
            while len(got) < 6:
                await trio.sleep(0.01)
        # JS received ours (and echoed them), we received JS's broadcasts
        js_got = {(e["name"], str(e["msg"])) for e in peer.events if e["event"] == "extension"}
        assert ("ext-json", str({"n": 1, "s": "hé"})) in js_got
        assert ("ext-utf8", "hello ✓") in js_got
        assert ("ext-binary", str({"hex": b"\x00\x01binary".hex()})) in js_got
        assert ("ext-json", {"echo": {"n": 1, "s": "hé"}}) in got
        assert ("ext-utf8", "echo:hello ✓") in got
        assert ("ext-binary", b"echo:\x00\x01binary") in got
        assert ("ext-json", {"n": 1, "s": "hé"}) in got
        assert ("ext-utf8", "hello ✓") in got
        assert ("ext-binary", b"\x00\x01binary") in got
