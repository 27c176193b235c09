"""The ``hypernode`` command with a JS node (hyperdrive 10.21.0 + corestore 5.8.2, interop/js/drive_peer.js)
over loopback TCP: ``hypernode serve`` syncs drives both ways with it, a JS ``registerExtension`` message
reaches ``hypernode ext listen``, and ``hypernode ext send`` reaches the JS peer."""

from __future__ import annotations

import hashlib

import pytest
import trio

from hypernode.node import Node
from interop.cliproc import CLIProcess, run_cli
from interop.jsproc import JSProcess

pytestmark = pytest.mark.interop

TIMEOUT = 30


async def test_serve_syncs_drives_both_ways_with_a_js_node(js, tmp_path):
    store = tmp_path / "store"
    data = hashlib.sha256(b"x").digest() * 40_000  # 1.28 MB: three content blocks
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        js_key = (await peer.command("created", cmd="create", name="js-side"))["key"]
        await peer.command("written", cmd="write", key=js_key, path="/from-js.txt", text="written in JS")
        port = (await peer.command("listening", cmd="listen"))["port"]
        async with Node(store, port=None) as node:  # the store holds a Python drive and knows JS's
            mine = await node.create_drive()
            await mine.write_file("/from-python.bin", data)
            await node.open_drive(js_key)
            py_key = mine.key.hex()
        await peer.command("opened", cmd="open", key=py_key)

        async with CLIProcess(store, "serve", "--peer", f"127.0.0.1:{port}") as serve:
            serve_port = (await serve.line("listening on")).rsplit(":", 1)[1]
            with trio.fail_after(TIMEOUT):
                got = await peer.command("file", cmd="wait-file", key=py_key, path="/from-python.bin",
                                         timeout=TIMEOUT)
                assert got["sha256"] == hashlib.sha256(data).hexdigest()  # Python -> JS
                # live, with the connection open: JS writes, the serving node receives it (a third
                # process reads it from the serving node)
                written = await peer.command("written", cmd="write", key=js_key, path="/live.txt",
                                             text="live from JS")
                while True:
                    out = await run_cli(tmp_path / "reader", "cat", js_key, "/live.txt",
                                    "--peer", f"127.0.0.1:{serve_port}", "--timeout", "5")
                    if out.stdout == "live from JS":
                        break
                    await trio.sleep(0.2)
            assert await serve.stop() == 130  # 128 + SIGINT, after a clean close
        # everything the node received is in its store, readable with no peer at all
        out = await run_cli(store, "cat", js_key, "/live.txt")
        assert out.returncode == 0 and out.stdout == "live from JS", out.stderr
        out = await run_cli(store, "cat", js_key, "/from-js.txt")
        assert out.stdout == "written in JS"
        out = await run_cli(store, "stat", js_key, "/live.txt")
        assert '"size": 12' in out.stdout and written["version"] >= 3


async def test_extension_messages_between_the_command_and_js(js, tmp_path):
    async with JSProcess("drive_peer.js", "memory") as peer:
        await peer.wait_for("ready")
        key = (await peer.command("created", cmd="create", name="ext"))["key"]
        await peer.command("extension-registered", cmd="extension", key=key, name="chat", encoding="utf-8")
        port = (await peer.command("listening", cmd="listen"))["port"]

        # hypernode ext listen <- a JS registerExtension message
        async with CLIProcess(tmp_path / "listener", "ext", "listen", key, "chat",
                              "--peer", f"127.0.0.1:{port}") as listener:
            await listener.line("waiting for")
            with trio.fail_after(TIMEOUT):
                while True:  # until the listener's channel is open, JS's broadcast reaches nobody
                    await peer.command("ext-sent", cmd="ext-send", key=key, name="chat", msg="hello from JS")
                    with trio.move_on_after(0.5):
                        line = await listener.line("")
                        break
            assert line.endswith(": hello from JS")
            assert await listener.stop() == 130

        # hypernode ext send -> the JS peer
        out = await run_cli(tmp_path / "sender", "ext", "send", key, "chat", "hello from hypernode",
                        "--peer", f"127.0.0.1:{port}", "--timeout", "20")
        assert out.returncode == 0, out.stderr
        with trio.fail_after(TIMEOUT):
            await peer.collect_until(lambda events: any(
                e["event"] == "extension" and e["msg"] == "hello from hypernode" for e in events))
