"""Peers behind real NATs on this machine (network namespaces, iptables MASQUERADE and conntrack; see
tests/tools/nat_netns.py, run in namespaces of its own with ``unshare -n -m``): the real ``hypernode``
commands find each other through a bootstrap DHT node on "the internet", get through both NATs by a
holepunch the bootstrap node relays, and sync a drive over uTP (``hypernode status`` then says the node
is reachable by holepunching only); a JS hyperswarm 2 peer does the same
with them, both ways; behind a symmetric NAT the clone fails in time, saying why. Skipped, with the
reason, where namespaces or iptables cannot be had (root is needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent / "tools" / "nat_netns.py"


def _why_not() -> str | None:
    for tool in ("unshare", "ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iptables: `apt-get install iptables`, as make test does)"
    probe = subprocess.run(["unshare", "-n", "-m", "sh", "-c",
                            "ip link add br0 type bridge && iptables -t nat -L -n >/dev/null"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make network namespaces with NAT here (root is needed): {probe.stderr.strip()}"
    return None


def run_scenario(name: str) -> dict[str, Any]:
    why = _why_not()
    if why:
        pytest.skip(why)
    proc = subprocess.run(["unshare", "-n", "-m", sys.executable, str(SCRIPT), name], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_two_hypernodes_behind_nats_sync_a_drive():
    out = run_scenario("python")
    assert out["code"] == 0, out["stderr"]
    assert out["text"] == "from behind NAT 1\n"
    # `hypernode status` of the sharer while a live clone is connected: reached only by holepunching
    status = out["sharer"]
    assert status["code"] == 0, status["stderr"]
    assert "reachable: through NAT only, by holepunching" in status["text"]
    assert "(holepunched, incoming)" in status["text"]
    data = status["json"]
    assert data["reachable"] == "holepunched" and data["connections"] == {"holepunched": 1}
    assert data["utp_port"] == data["port"]
    [peer] = data["drives"][0]["peers"]
    assert peer["transport"] == "holepunched" and peer["incoming"] and peer["address"].startswith("10.0.0.3:")


@pytest.mark.interop
def test_js_hyperswarm_and_hypernode_behind_nats_sync_both_ways(js):
    out = run_scenario("js")
    assert out["clone"]["code"] == 0, out["clone"]["stderr"]
    assert out["clone"]["text"] == "from JS behind NAT 1\n"  # JS -> Python
    assert out.get("js_read") == "from Python behind NAT 2\n", out  # Python -> JS
    # every connection crossed the NATs over uTP (TCP cannot: nothing forwards it)
    assert out["js_connections"] and {c["transport"] for c in out["js_connections"]} == {"utp"}


def test_a_peer_behind_a_symmetric_nat_fails_in_time_saying_why():
    out = run_scenario("symmetric")
    assert out["code"] == 1
    line = out["stderr"].strip()
    assert line.startswith("hypernode: cannot reach 10.0.0.4:"), line
    assert "TCP: connection refused" in line and "holepunch: no answer through 10.0.0.1:49737" in line
    assert line.endswith("(the peer is gone, or a symmetric NAT on either side stops holepunches)")
    assert out["seconds"] < 20  # the clone's --timeout 10, not a hang
