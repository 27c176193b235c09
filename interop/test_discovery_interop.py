"""Discovery with the JS stack (hyperswarm 2.15.3, @hyperswarm/dht 4.0.1 on dht-rpc 4.9.6, driven by
interop/js/swarm_peer.js), everything on 127.0.0.1:

- a JS DHT bootstrap node: Python announces, JS looks up and finds it; JS announces, Python finds it;
- a Python DHT node as the bootstrap of two JS hyperswarm peers: they find each other through it,
  connect and replicate a hyperdrive;
- a drive announced by a JS hyperswarm + hyperdrive peer is cloned by ``hypernode clone KEY DIR
  --bootstrap 127.0.0.1:P`` (no --peer);
- a drive announced by ``hypernode share`` is found and read by a JS hyperswarm peer;
- on the local network (multicast DNS, inside a network namespace): a Python node clones a drive a JS
  peer announces, and the JS peer reads one a Python node announces.

The JS peers' multicast DNS is replaced by an inert stand-in (see swarm_peer.js): hyperswarm 2 would
otherwise send it on the machine's default interface.
"""

from __future__ import annotations

import os

import pytest
import trio

from hypernode.discovery import DHTNode, Swarm
from hypernode.discovery.rpc import RPCConfig
from interop.cliproc import CLIProcess, run_cli
from interop.jsproc import JSProcess

pytestmark = pytest.mark.interop

TIMEOUT = 40
FAST = RPCConfig(attempt_timeout=0.5, final_timeout=1.0)


async def test_python_and_js_find_each_other_through_a_js_dht(js):
    async with JSProcess("swarm_peer.js") as peer:
        with trio.fail_after(TIMEOUT):
            port = (await peer.command("dht", cmd="dht"))["port"]
            boot = [f"127.0.0.1:{port}"]
            topic = os.urandom(32)
            async with Swarm(bootstrap=[("127.0.0.1", port)], port=4711, config=FAST) as ours:
                ours.join(topic, announce=True, lookup=False)
                await ours.flush()
                ev = await peer.command("dht-lookup", cmd="dht-lookup", topic=topic.hex(), bootstrap=boot)
                assert ev["error"] is None
                assert {"host": "127.0.0.1", "port": 4711} in ev["peers"]

                ev = await peer.command("dht-announced", cmd="dht-announce", topic=topic.hex(), port=4712,
                                        bootstrap=boot)
                assert ev["error"] is None
                async with Swarm(bootstrap=[("127.0.0.1", port)], config=FAST) as other:
                    channel = other.peers()
                    other.join(topic)
                    await other.flush()
                found = [p async for p in channel]
                assert {(p.host, p.port) for p in found} >= {("127.0.0.1", 4711), ("127.0.0.1", 4712)}
            # leaving the swarm unannounced our record: a new lookup finds only the JS announcement
            ev = await peer.command("dht-lookup", cmd="dht-lookup", topic=topic.hex(), bootstrap=boot)
            assert {"host": "127.0.0.1", "port": 4711} not in ev["peers"]


async def test_js_peers_find_each_other_through_a_python_dht_node(js):
    async with DHTNode(host="127.0.0.1", ephemeral=False) as dht:
        boot = [f"127.0.0.1:{dht.port}"]
        async with JSProcess("swarm_peer.js") as a, JSProcess("swarm_peer.js") as b:
            with trio.fail_after(TIMEOUT):
                await a.command("swarm", cmd="swarm", bootstrap=boot)
                await b.command("swarm", cmd="swarm", bootstrap=boot)
                drive = await a.command("created", cmd="create", files={"/hello.txt": "found through Python"})
                await a.command("joined", cmd="join", key=drive["key"], announce=True, lookup=False)
                assert dht.store.announces >= 1
                await b.command("opened", cmd="open", key=drive["key"])
                await b.command("joined", cmd="join", key=drive["key"], announce=False, lookup=True)
                ev = await b.command("file", cmd="wait-file", key=drive["key"], path="/hello.txt")
                assert ev["text"] == "found through Python"
                assert any(e.get("event") == "connection" for e in b.events)
        assert dht.store.lookups >= 1 and dht.stats["dropped_malformed"] == 0


async def test_hypernode_clone_finds_a_drive_announced_by_js(js, tmp_path):
    async with JSProcess("swarm_peer.js") as peer:
        with trio.fail_after(TIMEOUT):
            port = (await peer.command("dht", cmd="dht"))["port"]
            await peer.command("swarm", cmd="swarm", bootstrap=[f"127.0.0.1:{port}"])
            files = {"/readme.md": "# from JS\n", "/data/numbers.txt": "1 2 3\n" * 1000}
            drive = await peer.command("created", cmd="create", files=files)
            await peer.command("joined", cmd="join", key=drive["key"], announce=True, lookup=True)
            out = await run_cli(tmp_path / "store", "clone", drive["key"], str(tmp_path / "clone"),
                                "--bootstrap", f"127.0.0.1:{port}", "--timeout", "30")
        assert out.returncode == 0, out.stderr
        assert "2 files" in out.stdout
        assert (tmp_path / "clone" / "readme.md").read_text() == files["/readme.md"]
        assert (tmp_path / "clone" / "data" / "numbers.txt").read_text() == files["/data/numbers.txt"]


async def test_js_peer_finds_a_drive_announced_by_hypernode_share(js, tmp_path):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "hello.txt").write_text("served by hypernode\n")
    async with JSProcess("swarm_peer.js") as peer:
        with trio.fail_after(TIMEOUT):
            port = (await peer.command("dht", cmd="dht"))["port"]
            async with CLIProcess(tmp_path / "store", "share", str(folder), "--bootstrap",
                                  f"127.0.0.1:{port}") as share:
                key = (await share.line("sharing")).split()[-1]
                await share.line("synced")
                await peer.command("swarm", cmd="swarm", bootstrap=[f"127.0.0.1:{port}"])
                await peer.command("opened", cmd="open", key=key)
                # the share announces once bootstrapped; look up until the JS side has connected
                while True:
                    await peer.command("joined", cmd="join", key=key, announce=False, lookup=True)
                    if any(e.get("event") == "connection" for e in peer.events):
                        break
                    await trio.sleep(0.3)
                ev = await peer.command("file", cmd="wait-file", key=key, path="/hello.txt")
                assert ev["text"] == "served by hypernode\n"


async def test_local_discovery_with_js_in_a_network_namespace(js):
    from tests.test_discovery_local import run_in_netns

    result = await trio.to_thread.run_sync(run_in_netns, "--js")
    assert result["js"]["python_read"] == "from JS over mDNS"
    assert result["js"]["js_read"] == "from Python over mDNS"
    assert result["js"]["js_peer_events"] and all(e["local"] for e in result["js"]["js_peer_events"])


async def test_js_clients_store_values_on_a_python_dht_node(js):
    async with DHTNode(host="127.0.0.1", ephemeral=False) as dht, JSProcess("swarm_peer.js") as peer:
        with trio.fail_after(TIMEOUT):
            ev = await peer.command("dht-values", cmd="dht-values", bootstrap=[f"127.0.0.1:{dht.port}"])
        assert ev["immutablePut"] is None and ev["immutable"] == "an immutable value"
        # a stale seq is refused (the JS node answers the error too, but then stores the stale value)
        assert ev["mutablePuts"] == [None, None, "ERR_SEQ_MUST_EXCEED_CURRENT"]
        assert ev["mutable"] == "v1" and ev["mutableSeq"] == 1
        assert len(dht.values) == 2


async def test_a_mixed_dht_of_python_and_js_nodes(js):
    """A JS DHT node joins through a Python bootstrap node; a Python announcement made through the
    Python node is found by a JS client that knows only the JS node, and the reverse."""
    async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot, \
            JSProcess("swarm_peer.js") as peer:
        with trio.fail_after(TIMEOUT):
            ev = await peer.command("dht", cmd="dht", bootstrap=[f"127.0.0.1:{boot.port}"])
            js_node, js_id = ev["port"], bytes.fromhex(ev["id"])
            while boot.rpc.table.get(js_id) is None:  # the JS node's bootstrap query reached us
                await trio.sleep(0.05)
            topic = os.urandom(32)
            async with Swarm(bootstrap=[boot.address], port=4811, config=FAST) as ours:
                ours.join(topic, announce=True, lookup=False)
                await ours.flush()
                ev = await peer.command("dht-lookup", cmd="dht-lookup", topic=topic.hex(),
                                        bootstrap=[f"127.0.0.1:{js_node}"])
                assert {"host": "127.0.0.1", "port": 4811} in ev["peers"]
            topic = os.urandom(32)
            await peer.command("dht-announced", cmd="dht-announce", topic=topic.hex(), port=4812,
                               bootstrap=[f"127.0.0.1:{js_node}"])
            async with Swarm(bootstrap=[boot.address], config=FAST) as other:
                channel = other.peers()
                other.join(topic)
                await other.flush()
            assert ("127.0.0.1", 4812) in {(p.host, p.port) async for p in channel}
