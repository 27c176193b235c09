"""hyperswarm 2 over uTP with a JS peer, both ways, on loopback: TCP is made unreachable (the Python
peer announces a port it does not listen on for TCP; the JS peer closes its TCP server), so that the
connection can only be the uTP one, made after a dht-rpc 4 holepunch that the Python DHT bootstrap
node relays. Each side then reads a hyperdrive the other wrote."""

from __future__ import annotations

import socket

import pytest
import trio

from hypernode.corestore import Corestore
from hypernode.discovery import DHTNode
from hypernode.discovery.peering import Peering
from hypernode.discovery.rpc import RPCConfig
from hypernode.discovery.swarm import transport_of
from hypernode.drive import Hyperdrive
from hypernode.replication.server import ReplicationServer, open_replication_server
from hypernode.wire.noise import KeyPair
from interop.jsproc import JSProcess

pytestmark = pytest.mark.interop

TIMEOUT = 40
FAST = RPCConfig(attempt_timeout=0.5, final_timeout=1.0)
OPTS = {"config": FAST, "refresh": 0.5, "dedup_interval": 0.2, "retry_delays": (0.5, 1.0, 2.0)}


def free_udp_port() -> int:
    """A port free for UDP and TCP (nothing will listen on its TCP side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
    with socket.socket() as t:
        t.bind(("127.0.0.1", port))
    return int(port)


def transports(server: ReplicationServer) -> set[str]:
    return {transport_of(s.stream.transport) for s in server.sessions if s.remote_public_key is not None}


async def test_js_peer_reaches_python_over_utp_after_a_holepunch(js):
    async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot, Corestore() as store, \
            open_replication_server(store) as server, JSProcess("swarm_peer.js") as peer:
        with trio.fail_after(TIMEOUT):
            drive = await Hyperdrive.open(store)
            await drive.write_file("/hello.txt", "over uTP from Python")
            port = free_udp_port()  # announced, uTP bound there, TCP refused
            async with Peering(server=server, key_pair=KeyPair.generate(), port=port,
                               bootstrap=[boot.address], **OPTS) as peering:
                assert peering.swarm.utp is not None and peering.swarm.utp.port == port
                peering.join(drive.discovery_key)
                await peering.swarm.flush()
                await peer.command("swarm", cmd="swarm", bootstrap=[f"127.0.0.1:{boot.port}"])
                await peer.command("opened", cmd="open", key=drive.key.hex())
                await peer.command("joined", cmd="join", key=drive.key.hex(), announce=False, lookup=True)
                ev = await peer.command("file", cmd="wait-file", key=drive.key.hex(), path="/hello.txt")
                assert ev["text"] == "over uTP from Python"
                connections = [e for e in peer.events if e.get("event") == "connection"]
                assert connections and {c["transport"] for c in connections} == {"utp"}
                assert transports(server) == {"holepunched"}  # we answered the punch the DHT relayed
        assert boot.stats["holepunch_relayed"] >= 1


async def test_python_reaches_js_peer_over_utp_after_a_holepunch(js):
    async with DHTNode(host="127.0.0.1", ephemeral=False, config=FAST) as boot, Corestore() as store, \
            open_replication_server(store) as server, JSProcess("swarm_peer.js") as peer:
        with trio.fail_after(TIMEOUT):
            await peer.command("swarm", cmd="swarm", bootstrap=[f"127.0.0.1:{boot.port}"], tcp=False)
            created = await peer.command("created", cmd="create", files={"/hello.txt": "over uTP from JS"})
            await peer.command("joined", cmd="join", key=created["key"], announce=True, lookup=False)
            copy = await Hyperdrive.open(store, bytes.fromhex(created["key"]))
            errors: dict[tuple[str, int], str] = {}
            async with Peering(server=server, key_pair=KeyPair.generate(), port=None, peer_errors=errors,
                               bootstrap=[boot.address], **OPTS) as peering:
                peering.join(copy.discovery_key)
                while True:
                    try:
                        text = await copy.read_file("/hello.txt", "utf-8")
                        break
                    except (FileNotFoundError, OSError):
                        await trio.sleep(0.1)
                assert text == "over uTP from JS"
                assert transports(server) == {"holepunched"}
                assert peering.swarm.dht is not None and peering.swarm.dht.rpc.stats["holepunch_asked"] >= 1
        assert boot.stats["holepunch_relayed"] >= 1
