"""hypernode.core11.corestore.Corestore as a user runs it: a store on disk, replicated with a JS
corestore 7.12.5 over real loopback TCP (JS as initiator and as responder), closed, reopened, and
opened by JS itself.

interop/v11/js/repl_peer.js is the JS peer (see interop/test_core11_replication_interop.py). Python
opens JS's cores by their ``hyper://`` URL (z-base-32, as JS writes keys), downloads one whole and a
range of another, and serves a named core of its own that JS downloads, then follows live as Python
appends (no call tells the replication: it listens to the core); a core the Python store holds on disk
but has not opened is attached when JS asks for it. After the connection the Python store is
reopened from disk with what it downloaded, and a JS corestore 7 then opens the Python store's
directory and reads the same blocks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from conftest import run_js11
from hypernode.core11.corestore import Corestore
from hypernode.keys import hyper_url
from hypernode.stores import open_corestore, store_generation
from interop.test_core11_replication_interop import (
    TIMEOUT,
    JSPeer,
    block,
    expected,
    held_digest,
    js_listening,
)

pytestmark = pytest.mark.interop

ROLES = pytest.mark.parametrize("js_initiator", [False, True], ids=["js-responder", "js-initiator"])


@asynccontextmanager
async def stream_to(js_initiator: bool, tmp_path: Path) -> AsyncIterator[tuple[JSPeer, Any]]:
    """A JS peer and a function giving the TCP stream to it once its cores are made (Python dials a
    listening JS, or a dialing JS reaches Python's listener)."""
    if not js_initiator:
        async with js_listening(tmp_path) as (js, port):
            async def dial() -> trio.SocketStream:
                return await trio.open_tcp_stream("127.0.0.1", port)
            yield js, dial
        return
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    async with JSPeer("connect", str(port), str(tmp_path / "js")) as js:
        async def accept() -> trio.SocketStream:
            await js.do("connect", "dialing")
            with trio.fail_after(TIMEOUT):
                stream = await listeners[0].accept()
            await listeners[0].aclose()
            return stream
        yield js, accept


@ROLES
async def test_a_store_on_disk_replicates_with_js_and_keeps_what_it_got(tmp_path: Path,
                                                                       js_initiator: bool) -> None:
    directory = tmp_path / "py"
    with open_corestore(directory, generation=11) as store:
        mine = store.namespace("app").get("mine")
        mine.append([block("m", i, 3000) for i in range(25)])
        mine_key = mine.key
    async with stream_to(js_initiator, tmp_path) as (js, connect):
        a = await js.create("a", 120, 1024, "a")
        b = await js.create("b", 30, 70_000, "b")  # blocks past 4 KiB: RocksDB blob files
        await js.do("open", "opened", key=mine_key.hex())
        with Corestore(directory) as store:
            open_now = [c.discovery_key for c in store.cores]
            assert mine.discovery_key in store.discovery_keys() and mine.discovery_key not in open_now
            core_a = store.get(key=hyper_url(bytes.fromhex(a["key"])))
            core_b = store.get(key=hyper_url(bytes.fromhex(b["key"]), "/ignored/path"))
            stream = await connect()
            async with store.replicate(stream, initiator=not js_initiator) as repl:
                with trio.fail_after(TIMEOUT):
                    await repl.download(core_a)
                    await repl.download(core_b, 5, 11)
                await js.do("download", "downloaded", key=mine_key.hex(), start=0, end=25)
                assert await js.check(mine_key, 0, 25) == (25, expected("m", range(25), 3000))
                assert mine.discovery_key in [c.discovery_key for c in store.cores]  # opened as JS asked
                # live: appends reach JS on their own (the replication listens to the core)
                served = store.namespace("app").get("mine")
                served.append([block("m", i, 3000) for i in range(25, 30)])
                await js.do("waitLength", "length", key=mine_key.hex(), length=30)
                await js.do("download", "downloaded", key=mine_key.hex(), start=25, end=30)
            assert await js.check(mine_key, 0, 30) == (30, expected("m", range(30), 3000))
            assert core_b.length == 30 and not core_b.has(4) and not core_b.has(11)
    assert store_generation(directory) == 11
    with Corestore(directory) as store:  # reopened: what was downloaded is there, verified then
        core_a = store.get(key=bytes.fromhex(a["key"]))
        core_b = store.get(key=b["key"])
        assert core_a.length == 120 and core_a.contiguous_length == 120
        assert held_digest(core_a, 0, 120) == (120, expected("a", range(120), 1024))
        assert held_digest(core_b, 0, 30) == (6, expected("b", range(5, 11), 70_000))
        assert core_a.manifest is not None and not core_a.writable
        assert store.namespace("app").get("mine").writable
    # and JS opens the store Python wrote, with what replication brought into it
    spec = tmp_path / "read.json"
    spec.write_text(json.dumps({"dir": str(directory), "cores": [{"key": a["key"]}, {"key": b["key"]}],
                                "append": False}))
    got = run_js11("rocks_tool.js", "read", str(spec))
    js_a, js_b = got["cores"]
    assert (js_a["key"], js_a["length"], js_b["length"]) == (a["key"], 120, 30)
    assert js_a["blocks"] == [hashlib.sha256(block("a", i, 1024)).hexdigest() for i in range(120)]
    assert js_b["blocks"] == [hashlib.sha256(block("b", i, 70_000)).hexdigest() if 5 <= i < 11 else None
                              for i in range(30)]
