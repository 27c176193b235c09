"""Local discovery scenarios, run by tests/test_discovery_local.py inside a network namespace of their own
(``unshare -n``): only a loopback interface, given multicast here, so nothing leaves the namespace.

Prints one JSON object: what each scenario found. ``--js`` adds the scenarios with a JS hyperswarm peer
(interop/js/swarm_peer.js with SWARM_MDNS=loopback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hypernode.discovery.local import LocalDiscovery  # noqa: E402
from hypernode.node import Node  # noqa: E402

LOCAL = {"local_options": {"interface": "127.0.0.1", "interval": 0.5}, "dedup_interval": 0.2}


def setup_loopback() -> None:
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
        subprocess.run(cmd, check=True)


async def python_peers() -> dict:
    topic = os.urandom(32)
    async with LocalDiscovery(interface="127.0.0.1", interval=0.3) as a, \
            LocalDiscovery(interface="127.0.0.1", interval=0.3) as b:
        channel = b.peers()
        a.join(topic, port=7000, lookup=False)
        b.join(topic, port=7001, lookup=True)
        with trio.fail_after(10):
            found = [await channel.receive()]
        await trio.sleep(0.5)
    found += [p async for p in channel]  # the rest, once b has closed (and ended the channel)
    return {"found": sorted({(p.host, p.port) for p in found}), "local": all(p.local for p in found),
            "a": dict(a.stats), "b": dict(b.stats)}


async def python_nodes(tmp: Path) -> dict:
    async with Node(tmp / "a", bootstrap=[], local_discovery=True, discovery_options=LOCAL) as a, \
            Node(tmp / "b", port=None, bootstrap=[], local_discovery=True, discovery_options=LOCAL) as b:
        drive = await a.create_drive()
        await drive.write_file("/lan.txt", "found on the LAN")
        copy = await b.open_drive(drive.key)
        with trio.fail_after(20):
            await b.sync_feed(copy.metadata)
            text = await copy.read_file("/lan.txt", "utf-8")
        return {"text": text}


async def with_js(tmp: Path) -> dict:
    from interop.jsproc import JSProcess

    os.environ["SWARM_MDNS"] = "loopback"
    out: dict = {}
    async with JSProcess("swarm_peer.js") as js:
        with trio.fail_after(40):
            await js.command("swarm", cmd="swarm", bootstrap=[])
            # JS announces on the LAN, a Python node clones
            drive = await js.command("created", cmd="create", files={"/js.txt": "from JS over mDNS"})
            await js.command("joined", cmd="join", key=drive["key"], announce=True, lookup=False)
            async with Node(tmp / "c", port=None, bootstrap=[], local_discovery=True,
                            discovery_options=LOCAL) as c:
                copy = await c.open_drive(drive["key"])
                await c.sync_feed(copy.metadata)
                out["python_read"] = await copy.read_file("/js.txt", "utf-8")
            # a Python node announces on the LAN, JS finds it
            async with Node(tmp / "d", bootstrap=[], local_discovery=True, discovery_options=LOCAL) as d:
                mine = await d.create_drive()
                await mine.write_file("/py.txt", "from Python over mDNS")
                await js.command("opened", cmd="open", key=mine.key.hex())
                await js.command("joined", cmd="join", key=mine.key.hex(), announce=False, lookup=True)
                ev = await js.command("file", cmd="wait-file", key=mine.key.hex(), path="/py.txt")
                out["js_read"] = ev["text"]
            out["js_peer_events"] = [e for e in js.events if e.get("event") == "peer"][:5]
    return out


async def main() -> None:
    setup_loopback()
    result: dict = {"python_peers": await python_peers()}
    with tempfile.TemporaryDirectory() as tmp:
        result["python_nodes"] = await python_nodes(Path(tmp))
        if "--js" in sys.argv:
            result["js"] = await with_js(Path(tmp))
    print(json.dumps(result))


if __name__ == "__main__":
    trio.run(main)
