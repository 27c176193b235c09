"""Sample messages of every schema in protocol/, shared by the protobuf tests."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from hypernode.messages import MODULES
from hypernode.messages import dht_rpc as dr
from hypernode.messages import hypercore_protocol as hp
from hypernode.messages import hyperdrive as hd
from hypernode.messages import hyperswarm_dht as hs
from hypernode.messages import hypertrie as ht
from hypernode.messages import mountable_hypertrie as mt
from hypernode.messages import multi_hyperdrive as mh
from hypernode.protobuf import Message

# our schema -> the JS package's file with the same messages
JS_SCHEMAS = {
    "hypercore-protocol.proto": "simple-hypercore-protocol/schema.proto",
    "hypertrie.proto": "hypertrie/schema.proto",
    "mountable-hypertrie.proto": "mountable-hypertrie/schema.proto",
    "hyperdrive.proto": "hyperdrive-schemas/schemas/hyperdrive.proto",
    "multi-hyperdrive.proto": "multi-hyperdrive/schemas.proto",
    "dht-rpc.proto": "dht-rpc/schema.proto",
    "hyperswarm-dht.proto": "@hyperswarm/dht/schema.proto",
}
OUR_OWN_SCHEMAS = ["hypernode-multi.proto"]  # no JS counterpart: fuzzed and round-tripped, not cross-checked


def message_classes(module: ModuleType) -> list[type[Message]]:
    """Every message class of a generated module, nested ones included."""
    out = []

    def walk(obj: Any) -> None:
        for v in vars(obj).values():
            if isinstance(v, type) and issubclass(v, Message) and v.__module__ == module.__name__:
                out.append(v)
                walk(v)

    walk(module)
    return out


def all_message_classes() -> list[type[Message]]:
    out = []
    for name in MODULES:
        out += message_classes(importlib.import_module(f"hypernode.messages.{name}"))
    return out


def samples() -> list[tuple[str, str, Message]]:
    k = bytes(range(32))
    node = hp.Data.Node
    return [
        ("hypercore-protocol", "NoisePayload", hp.NoisePayload(nonce=b"n" * 24)),
        ("hypercore-protocol", "Open", hp.Open(discoveryKey=k, capability=b"c" * 32)),
        ("hypercore-protocol", "Open", hp.Open(discoveryKey=k)),
        ("hypercore-protocol", "Options", hp.Options(extensions=["a", "béta", ""], ack=True)),
        ("hypercore-protocol", "Options", hp.Options()),
        ("hypercore-protocol", "Status", hp.Status(uploading=False, downloading=True)),
        ("hypercore-protocol", "Have", hp.Have(start=8192, length=1048576, bitfield=b"\x03\x05", ack=False)),
        ("hypercore-protocol", "Have", hp.Have(start=2**40, length=1)),
        ("hypercore-protocol", "Unhave", hp.Unhave(start=3, length=4)),
        ("hypercore-protocol", "Want", hp.Want(start=0, length=1048576)),
        ("hypercore-protocol", "Unwant", hp.Unwant(start=0)),
        ("hypercore-protocol", "Request", hp.Request(index=77, bytes=0, hash=True, nodes=2**33 + 5)),
        ("hypercore-protocol", "Cancel", hp.Cancel(index=1, hash=False)),
        ("hypercore-protocol", "Data", hp.Data(index=9, value=b"v" * 1000, signature=b"s" * 64,
                                               nodes=[node(index=1, hash=k, size=5),
                                                      node(index=2**40, hash=k[::-1], size=0)])),
        ("hypercore-protocol", "Data", hp.Data(index=0, value=b"")),
        ("hypercore-protocol", "Close", hp.Close(discoveryKey=k)),
        ("hypercore-protocol", "Close", hp.Close()),
        ("hypertrie", "Header", ht.Header(type="hypertrie", metadata=k, subtype="hyperdrive")),
        ("hypertrie", "Node", ht.Node(key="a/b/c", valueBuffer=b"\x08\x01", trieBuffer=b"\x01\x02",
                                      seq=12, flags=1)),
        ("hypertrie", "Extension", ht.Extension(cache=ht.Extension.Cache(start=1, end=9, blocks=[1, 5, 400]),
                                                get=ht.Extension.Get(head=4, key="x"))),
        ("hypertrie", "Extension", ht.Extension(iterator=ht.Extension.Iterator(head=1, key="", flags=2,
                                                                                 checkpoint=b"\x00"))),
        ("mountable-hypertrie", "Mount", mt.Mount(key=k, localPath="/m", version=3, remotePath="/",
                                                  hash=b"h" * 32)),
        ("hyperdrive", "Index", hd.Index(type="hyperdrive", content=k)),
        ("hyperdrive", "Mount", hd.Mount(key=k, version=5, hash=b"", hypercore=True)),
        ("hyperdrive", "Stat", hd.Stat(mode=0o100644, uid=0, gid=0, size=1024, blocks=1, offset=3,
                                       byteOffset=70000, mtime=1700000000000, ctime=1700000000001,
                                       metadata={"kind": b"text", "": b""})),
        ("hyperdrive", "Stat", hd.Stat(mode=0o40755, linkname="../x", mount=hd.Mount(key=k))),
        ("multi-hyperdrive", "Tombstone", mh.Tombstone(active=True, timestamp=1700000000)),
        ("multi-hyperdrive", "Tombstone", mh.Tombstone(active=True, timestamp=1764097000000)),  # ms, as JS
        ("multi-hyperdrive", "Tombstone", mh.Tombstone(active=False)),
        ("dht-rpc", "Message", dr.Message(version=1, type=dr.Message.TYPE.QUERY, rid=65535,
                                          to=b"\x7f\0\0\1\x1f\x90",
                                          id=k, target=k[::-1], command="peers", value=b"v")),
        ("dht-rpc", "Message", dr.Message(type=dr.Message.TYPE.RESPONSE, rid=0, closerNodes=b"c" * 38,
                                          roundtripToken=b"t" * 32, error="nope")),
        ("dht-rpc", "Holepunch", dr.Holepunch(from_=b"\x0a\0\0\1\0\x50", to=b"\x0a\0\0\2\0\x51")),
        ("hyperswarm-dht", "PeersInput", hs.PeersInput(port=49737, localAddress=b"\xc0\xa8\0\2\x1f\x90",
                                                       unannounce=False)),
        ("hyperswarm-dht", "PeersOutput", hs.PeersOutput(peers=b"p" * 12, localPeers=b"l" * 4)),
        ("hyperswarm-dht", "Mutable", hs.Mutable(value=b"v", signature=b"s" * 64, seq=2**40, salt=b"salt")),
    ]
