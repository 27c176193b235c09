"""Feed extension messages (hypercore's registerExtension) between a Python feed and a JS feed over
a corestore replication connection, each way, with each encoding; the messages received are read as
the extension's async iterator."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.replication import replicator_of
from hypernode.replication.server import open_replication_server
from interop.jsproc import JSProcess

pytestmark = pytest.mark.interop

CASES = [("ext-json", "json", {"n": 1, "s": "hé"}), ("ext-utf8", "utf-8", "hello ✓"),
         ("ext-binary", "binary", b"\x00\x01binary")]


async def test_feed_extensions_both_ways(js):
    async with JSProcess("store_peer.js", "memory") as peer, Corestore() as store, \
            open_replication_server(store) as store_net:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="ext"))["key"]
        await peer.command("appended", cmd="append", key=key, hex=[b"x".hex()])
        for name, encoding, _ in CASES:
            await peer.command("extension-registered", cmd="extension", key=key, name=name, encoding=encoding)
        port = (await peer.command("listening", cmd="listen"))["port"]

        feed = await store.get(bytes.fromhex(key))
        replicator = replicator_of(feed)
        got: list[tuple[str, Any]] = []
        exts = {name: replicator.register_extension(name, encoding) for name, encoding, _ in CASES}

        async def receive(name: str) -> None:
            async for msg, p in exts[name]:
                assert p is replicator.peers[0]
                got.append((name, msg))
                if sum(n == name for n, _ in got) == 2:  # JS's echo of ours and its own broadcast
                    return

        await store_net.connect("127.0.0.1", port)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for name in exts:
                    nursery.start_soon(receive, name)
                while not replicator.peers or replicator.peers[0].channel.remote_extensions is None:
                    await trio.sleep(0.01)  # wait for JS's Options with its extension names
                for name, _, msg in CASES:
                    exts[name].send(msg, replicator.peers[0])
                for name, _, msg in CASES:
                    await peer.command("ext-sent", cmd="ext-send", key=key, name=name,
                                       **({"hex": msg.hex()} if isinstance(msg, bytes) else {"msg": msg}))
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
