"""Sample messages of every schema in protocol/, shared by the protobuf tests."""

from __future__ import annotations

from typing import Any

from hypernode.protobuf import Message, load_schema

SCHEMAS = {
    "hypercore-protocol.proto": "hypercore-protocol",
    "hypertrie.proto": "hypertrie",
    "mountable-hypertrie.proto": "mountable-hypertrie",
    "hyperdrive.proto": "hyperdrive",
    "multi-hyperdrive.proto": "multi-hyperdrive",
}
OUR_OWN_SCHEMAS = ["hypernode-multi.proto"]  # no JS counterpart: fuzzed and round-tripped, not cross-checked


def all_message_classes() -> list[type[Message]]:
    out = []

    def walk(obj: Any) -> None:
        for v in vars(obj).values():
            if isinstance(v, type) and issubclass(v, Message):
                out.append(v)
                walk(v)

    for name in [*SCHEMAS, *OUR_OWN_SCHEMAS]:
        walk(load_schema(name))
    return out


def samples() -> list[tuple[str, str, Message]]:
    hp = load_schema("hypercore-protocol.proto")
    ht = load_schema("hypertrie.proto")
    mt = load_schema("mountable-hypertrie.proto")
    hd = load_schema("hyperdrive.proto")
    mh = load_schema("multi-hyperdrive.proto")
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
    ]
