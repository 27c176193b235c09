"""Peers behind real NATs, run by tests/test_nat.py inside network and mount namespaces of their own
(``unshare -n -m``): nothing it makes is seen outside, and all of it goes when it exits.

The namespace it starts in is "the internet": a bridge, 10.0.0.1/24, where the bootstrap DHT node runs
(the real ``hypernode dht`` command). Each home is two namespaces made with ``ip netns`` (their names
private to this mount namespace, /run/netns being a tmpfs of its own): a router (10.0.0.N on the
bridge, 192.168.N.1 inside, iptables MASQUERADE out, conntrack keeping the mappings, and a firewall
refusing what comes in unasked, as home routers do) and a peer behind
it (192.168.N.2). Home 3's router maps each new flow to a random port (``MASQUERADE --random-fully``):
a symmetric NAT, which holepunching cannot cross.

Scenarios (the first argument), each printing one JSON object:
- ``python``: ``hypernode share`` in home 1, ``hypernode clone`` in home 2, then a live clone there and
  ``hypernode status`` of the sharer (a clone answers no control requests);
- ``js``: a JS hyperswarm 2 peer (interop/js/swarm_peer.js) in home 1 and ``hypernode`` in home 2: the
  clone reads the JS drive, and the JS peer reads the drive ``hypernode share`` serves;
- ``symmetric``: ``hypernode share`` behind the symmetric NAT of home 3, ``hypernode clone --timeout``
  in home 2: it must fail, in time, saying why.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from interop.cliproc import CLI, CLIProcess  # noqa: E402
from interop.jsproc import JSProcess  # noqa: E402

BOOT_PORT = 49737
BOOTSTRAP = f"10.0.0.1:{BOOT_PORT}"


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def setup(homes: list[int], symmetric: set[int]) -> None:
    sh("mount", "-t", "tmpfs", "netns", "/run/netns")
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "br0", "type", "bridge")
    sh("ip", "addr", "add", "10.0.0.1/24", "dev", "br0")
    sh("ip", "link", "set", "br0", "up")
    for n in homes:
        nat, peer = f"nat{n}", f"peer{n}"
        sh("ip", "netns", "add", nat)
        sh("ip", "netns", "add", peer)
        sh("ip", "link", "add", f"wan{n}", "type", "veth", "peer", "name", "wan", "netns", nat)
        sh("ip", "link", "set", f"wan{n}", "master", "br0")
        sh("ip", "link", "set", f"wan{n}", "up")
        sh("ip", "-n", nat, "addr", "add", f"10.0.0.{n + 1}/24", "dev", "wan")
        sh("ip", "link", "add", "lan", "netns", nat, "type", "veth", "peer", "name", "eth0", "netns", peer)
        sh("ip", "-n", nat, "addr", "add", f"192.168.{n}.1/24", "dev", "lan")
        sh("ip", "-n", peer, "addr", "add", f"192.168.{n}.2/24", "dev", "eth0")
        for ns, dev in ((nat, "wan"), (nat, "lan"), (nat, "lo"), (peer, "eth0"), (peer, "lo")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", peer, "route", "add", "default", "via", f"192.168.{n}.1")
        sh("ip", "netns", "exec", nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        masquerade = ["-j", "MASQUERADE"] + (["--random-fully"] if n in symmetric else [])
        sh("ip", "netns", "exec", nat, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", *masquerade)
        # the router's firewall, as a home router's: what nobody inside asked for is refused (TCP) or
        # dropped, so that the first, unanswered punch of a peer leaves no conntrack entry behind (one
        # would take our port, and our answer would leave mapped to another)
        fw = ["ip", "netns", "exec", nat, "iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack",
              "--ctstate", "NEW,INVALID"]
        sh(*fw[:-2], "-p", "tcp", *fw[-2:], "-j", "REJECT", "--reject-with", "tcp-reset")
        sh(*fw, "-j", "DROP")


def in_ns(ns: str, args: list[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


async def run_in(ns: str, store: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return await trio.to_thread.run_sync(lambda: subprocess.run(
        in_ns(ns, [*CLI, "--store", str(store), *args]), capture_output=True, text=True, timeout=timeout))


class Boot(CLIProcess):
    """The bootstrap DHT node on the internet."""

    def __init__(self, store: Path) -> None:
        super().__init__(store, "dht", "--host", "10.0.0.1", "--port", str(BOOT_PORT), "--bootstrap", "none")


async def share_in(ns: str, tmp: Path, name: str, files: dict[str, str]) -> tuple[CLIProcess, str]:
    folder = tmp / f"{name}-folder"
    folder.mkdir()
    for path, text in files.items():
        (folder / path).write_text(text)
    share = CLIProcess(tmp / f"{name}-store", "share", str(folder), "--bootstrap", BOOTSTRAP)
    share.args = in_ns(ns, share.args)
    await share.__aenter__()
    key = (await share.line("sharing")).split()[-1]
    await share.line("synced")
    return share, key


def result(out: subprocess.CompletedProcess[str], started: float) -> dict[str, Any]:
    return {"code": out.returncode, "stdout": out.stdout, "stderr": out.stderr,
            "seconds": round(time.monotonic() - started, 1)}


async def python(tmp: Path) -> dict[str, Any]:
    async with Boot(tmp / "boot") as boot:
        await boot.line("dht node listening")
        share, key = await share_in("peer1", tmp, "a", {"hello.txt": "from behind NAT 1\n"})
        async with share:
            started = time.monotonic()
            out = await run_in("peer2", tmp / "b-store", "clone", key, str(tmp / "clone"), "--bootstrap",
                               BOOTSTRAP, "--timeout", "30")
            got = result(out, started)
            clone = tmp / "clone" / "hello.txt"
            got["text"] = clone.read_text() if clone.exists() else None
            # a live clone stays connected: `hypernode status` of the sharer says how
            live = CLIProcess(tmp / "c-store", "clone", key, str(tmp / "live"), "--live", "--bootstrap",
                              BOOTSTRAP, "--timeout", "30")
            live.args = in_ns("peer2", live.args)
            async with live:
                await live.line("cloned")
                for side, ns, store in (("sharer", "peer1", "a-store"),):
                    text = await run_in(ns, tmp / store, "status")
                    data = await run_in(ns, tmp / store, "status", "--json")
                    got[side] = {"text": text.stdout, "code": text.returncode, "stderr": text.stderr,
                                 "json": json.loads(data.stdout) if data.returncode == 0 else None}
            return got


async def js(tmp: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with Boot(tmp / "boot") as boot:
        await boot.line("dht node listening")
        peer = JSProcess("swarm_peer.js")
        peer.args = in_ns("peer1", peer.args)
        async with peer:
            await peer.command("swarm", cmd="swarm", bootstrap=[BOOTSTRAP])
            created = await peer.command("created", cmd="create", files={"/js.txt": "from JS behind NAT 1\n"})
            await peer.command("joined", cmd="join", key=created["key"], announce=True, lookup=False)
            # JS -> Python: hypernode clone in home 2 reads the JS drive
            started = time.monotonic()
            res = await run_in("peer2", tmp / "b-store", "clone", created["key"], str(tmp / "clone"),
                               "--bootstrap", BOOTSTRAP, "--timeout", "30")
            out["clone"] = result(res, started)
            clone = tmp / "clone" / "js.txt"
            out["clone"]["text"] = clone.read_text() if clone.exists() else None
            # Python -> JS: the JS peer reads what hypernode share serves from home 2
            share, key = await share_in("peer2", tmp, "c", {"py.txt": "from Python behind NAT 2\n"})
            async with share:
                await peer.command("opened", cmd="open", key=key)
                with trio.move_on_after(30):
                    while True:
                        await peer.command("joined", cmd="join", key=key, announce=False, lookup=True)
                        if any(e.get("event") == "connection" and e.get("client") for e in peer.events):
                            break
                        await trio.sleep(0.3)
                    ev = await peer.command("file", cmd="wait-file", key=key, path="/py.txt", timeout=20)
                    out["js_read"] = ev["text"]
            out["js_connections"] = [e for e in peer.events if e.get("event") == "connection"]
    return out


async def symmetric(tmp: Path) -> dict[str, Any]:
    async with Boot(tmp / "boot") as boot:
        await boot.line("dht node listening")
        share, key = await share_in("peer3", tmp, "a", {"hello.txt": "behind a symmetric NAT\n"})
        async with share:
            started = time.monotonic()
            out = await run_in("peer2", tmp / "b-store", "clone", key, str(tmp / "clone"), "--bootstrap",
                               BOOTSTRAP, "--timeout", "10")
            return result(out, started)


SCENARIOS = {"python": ([1, 2], set(), python), "js": ([1, 2], set(), js),
             "symmetric": ([2, 3], {3}, symmetric)}


def main() -> None:
    homes, sym, scenario = SCENARIOS[sys.argv[1]]
    setup(homes, sym)
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(trio.run(scenario, Path(tmp))))


if __name__ == "__main__":
    main()
