"""hypercore 11's replication messages and protomux framing against the pinned JS, byte for byte, both ways.

interop/v11/js/codec_tool.js encodes and decodes with hypercore 11.39.5's own ``lib/messages.js``: every
message type (random values with every optional part, numbers at the size boundaries) must give the same
bytes from Python and from JS, and each side must read the other's bytes back to the same value.
interop/v11/js/mux_tool.js runs a JS Protomux 3.12.1 over an in-memory stream that records whole messages
(what secret-stream would carry; there is no network here): Python's :class:`~hypernode.core11.mux.Mux`
and it open ``"hypercore/alpha"`` channels with each other, exchange messages of every type one by one
and in corked batches, reject and close, and the bytes each writes must be the other's to read (and,
where both write the same thing, the same bytes).
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import require_node11
from hypernode.core11.manifest import Manifest, Prologue, Signer
from hypernode.core11.messages import (
    MESSAGE_TYPES,
    PROTOCOL,
    Bitfield,
    Cancel,
    Data,
    DataSeek,
    Extension,
    Handshake,
    Message,
    NoData,
    Range,
    ReorgHint,
    Request,
    SeekRequest,
    Sync,
    Unwant,
    Want,
    decode_message,
)
from hypernode.core11.mux import (
    BatchEnded,
    BatchStarted,
    ChannelClosed,
    ChannelOpened,
    MessageReceived,
    Mux,
    OpenRequested,
    OpenWithdrawn,
)
from hypernode.core11.proof import BlockRequest, DataBlock, DataHash, DataUpgrade, HashRequest, UpgradeRequest
from hypernode.core11.tree import Node
from tests.core11_wire_samples import random_message

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parent
TYPE_NAMES = ["sync", "request", "cancel", "data", "noData", "want", "unwant", "bitfield", "range",
              "extension"]


# -- Python values <-> the JSON of interop/v11/js/wire_json.js ($hex buffers, $u32 word arrays) ----------

def _h(b: bytes) -> dict[str, str]:
    return {"$hex": b.hex()}


def _b(v: Any) -> bytes:
    return bytes.fromhex(v["$hex"])


def _nodes_js(nodes: tuple[Node, ...]) -> list[dict[str, Any]]:
    return [{"index": n.index, "size": n.size, "hash": _h(n.hash)} for n in nodes]


def _nodes_py(nodes: list[dict[str, Any]]) -> tuple[Node, ...]:
    return tuple(Node(n["index"], n["size"], _b(n["hash"])) for n in nodes)


def _manifest_js(m: Manifest) -> dict[str, Any]:
    return {"version": m.version, "hash": "blake2b", "allowPatch": m.allow_patch, "quorum": m.quorum,
            "signers": [{"signature": "ed25519", "namespace": _h(s.namespace), "publicKey": _h(s.public_key)}
                        for s in m.signers],
            "prologue": m.prologue and {"hash": _h(m.prologue.hash), "length": m.prologue.length},
            "linked": None if m.linked is None else [_h(k) for k in m.linked],
            "userData": None if m.user_data is None else _h(m.user_data)}


def _manifest_py(v: dict[str, Any]) -> Manifest:
    p = v["prologue"]
    return Manifest(signers=tuple(Signer(_b(s["publicKey"]), _b(s["namespace"])) for s in v["signers"]),
                    version=v["version"], quorum=v["quorum"], allow_patch=v["allowPatch"],
                    prologue=Prologue(_b(p["hash"]), p["length"]) if p else None,
                    linked=None if v["linked"] is None else tuple(map(_b, v["linked"])),
                    user_data=None if v["userData"] is None else _b(v["userData"]))


def to_js(m: Message | Handshake | ReorgHint) -> tuple[str, dict[str, Any]]:
    """(the wire encoding's name in hypercore's messages.js, the value as JS takes it)"""
    if isinstance(m, Handshake):
        return "handshake", {"seeks": m.seeks, "capability": _h(m.capability)}
    if isinstance(m, ReorgHint):
        return "reorgHint", {"from": m.from_, "to": m.to, "ancestors": m.ancestors}
    name = TYPE_NAMES[m.TYPE]
    if isinstance(m, Sync):
        return name, {"fork": m.fork, "length": m.length, "remoteLength": m.remote_length,
                      "canUpgrade": m.can_upgrade, "uploading": m.uploading, "downloading": m.downloading,
                      "hasManifest": m.has_manifest, "allowPush": m.allow_push}
    if isinstance(m, Request):
        return name, {"id": m.id, "fork": m.fork,
                      "block": m.block and {"index": m.block.index, "nodes": m.block.nodes},
                      "hash": m.hash and {"index": m.hash.index, "nodes": m.hash.nodes},
                      "seek": m.seek and {"bytes": m.seek.offset, "padding": m.seek.padding},
                      "upgrade": m.upgrade and {"start": m.upgrade.start, "length": m.upgrade.length},
                      "manifest": m.manifest, "priority": m.priority}
    if isinstance(m, Cancel):
        return name, {"request": m.request}
    if isinstance(m, Data):
        u = m.upgrade
        return name, {
            "request": m.request, "fork": m.fork,
            "block": m.block and {"index": m.block.index, "value": _h(m.block.value),
                                  "nodes": _nodes_js(m.block.nodes)},
            "hash": m.hash and {"index": m.hash.index, "nodes": _nodes_js(m.hash.nodes)},
            "seek": m.seek and {"bytes": m.seek.offset, "nodes": _nodes_js(m.seek.nodes)},
            "upgrade": u and {"start": u.start, "length": u.length, "nodes": _nodes_js(u.nodes),
                              "additionalNodes": _nodes_js(u.additional_nodes),
                              "signature": _h(u.signature) if u.signature else None},
            "manifest": m.manifest and _manifest_js(m.manifest)}
    if isinstance(m, NoData):
        return name, {"request": m.request, "reason": m.reason}
    if isinstance(m, Want | Unwant):
        return name, {"start": m.start, "length": m.length, "any": m.any}
    if isinstance(m, Bitfield):
        words = list(struct.unpack(f"<{len(m.bitfield) // 4}I", m.bitfield))
        return name, {"start": m.start, "bitfield": {"$u32": words}}
    if isinstance(m, Range):
        return name, {"drop": m.drop, "start": m.start, "length": m.length}
    assert isinstance(m, Extension)
    return name, {"name": m.name, "message": _h(m.message)}


def from_js(name: str, v: dict[str, Any]) -> Message | Handshake | ReorgHint:
    """What JS decoded, as Python's value."""
    if name == "handshake":
        return Handshake(_b(v["capability"]), v["seeks"])
    if name == "reorgHint":
        return ReorgHint(v["from"], v["to"], v["ancestors"])
    if name == "sync":
        return Sync(v["fork"], v["length"], v["remoteLength"], v["canUpgrade"], v["uploading"],
                    v["downloading"], v["hasManifest"], v["allowPush"])
    if name == "request":
        b, h, s, u = v["block"], v["hash"], v["seek"], v["upgrade"]
        return Request(v["id"], v["fork"], block=b and BlockRequest(b["index"], b["nodes"]),
                       hash=h and HashRequest(h["index"], h["nodes"]),
                       seek=s and SeekRequest(s["bytes"], s["padding"]),
                       upgrade=u and UpgradeRequest(u["start"], u["length"]), manifest=v["manifest"],
                       priority=v["priority"])
    if name == "cancel":
        return Cancel(v["request"])
    if name == "data":
        b, h, s, u = v["block"], v["hash"], v["seek"], v["upgrade"]
        return Data(v["request"], v["fork"],
                    block=b and DataBlock(b["index"], _b(b["value"]), _nodes_py(b["nodes"])),
                    hash=h and DataHash(h["index"], _nodes_py(h["nodes"])),
                    seek=s and DataSeek(s["bytes"], _nodes_py(s["nodes"])),
                    upgrade=u and DataUpgrade(u["start"], u["length"], _nodes_py(u["nodes"]),
                                              _nodes_py(u["additionalNodes"]),
                                              _b(u["signature"]) if u["signature"] else b""),
                    manifest=v["manifest"] and _manifest_py(v["manifest"]))
    if name == "noData":
        return NoData(v["request"], v["reason"])
    if name in ("want", "unwant"):
        return (Want if name == "want" else Unwant)(v["start"], v["length"], v["any"])
    if name == "bitfield":
        words = v["bitfield"]["$u32"]
        return Bitfield(v["start"], struct.pack(f"<{len(words)}I", *words))
    if name == "range":
        return Range(v["start"], v["length"], v["drop"])
    assert name == "extension"
    return Extension(v["name"], _b(v["message"]))


def _samples() -> list[Message | Handshake | ReorgHint]:
    rng = random.Random(2211)
    out = [random_message(rng) for _ in range(600)]
    seen = {type(m) for m in out}
    assert seen == set(MESSAGE_TYPES.values()) | {Handshake, ReorgHint}
    return out


def test_every_message_type_is_encoded_and_decoded_as_js_does(js11: Any, tmp_path: Path):
    samples = _samples()
    ours = [m.encode() for m in samples]
    spec = tmp_path / "codec.json"
    spec.write_text(json.dumps({
        "encode": [{"type": name, "value": value} for name, value in map(to_js, samples)],
        "decode": [{"type": to_js(m)[0], "hex": b.hex()} for m, b in zip(samples, ours, strict=True)]}))
    theirs = js11("codec_tool.js", str(spec))
    for m, mine, js_hex, js_value in zip(samples, ours, theirs["encoded"], theirs["decoded"], strict=True):
        assert js_hex == mine.hex(), m                               # the same bytes
        assert from_js(to_js(m)[0], js_value) == m, m                # JS reads ours as the value
        assert type(m).decode(bytes.fromhex(js_hex)) == m, m         # we read JS's as the value


def test_decoders_read_what_js_reads_of_lax_and_short_forms(js11: Any, tmp_path: Path):
    """Forms JS reads that no JS encoder writes: a NoData or Want without its flags, unknown flag bits,
    bytes left over, a priority flag with priority 0; and bytes both refuse."""
    cases = [("noData", "05"), ("noData", "0500"), ("want", "0203"), ("unwant", "020301"), ("want", "020303"),
             ("range", "0605"), ("range", "fd030005"), ("sync", "fc01020304ff"), ("request", "200102fd0000"),
             ("cancel", "07aabb"), ("extension", "00"), ("bitfield", "0102ffffffff00000000"),
             ("handshake", "03" + "22" * 32 + "99")]
    refused = [("sync", "0001"), ("bitfield", "0102ffffffff"), ("request", "010102"), ("data", "10000005"),
               ("cancel", ""), ("extension", "05616263")]
    spec = tmp_path / "lax.json"
    spec.write_text(json.dumps({"decode": [{"type": t, "hex": h} for t, h in cases + refused]}))
    theirs = js11("codec_tool.js", str(spec))["decoded"]
    types = {name: MESSAGE_TYPES[i] for i, name in enumerate(TYPE_NAMES)} | {"handshake": Handshake}
    for (name, hexed), js_value in zip(cases, theirs, strict=False):
        assert "error" not in js_value, (name, hexed, js_value)
        assert types[name].decode(bytes.fromhex(hexed)) == from_js(name, js_value), (name, hexed)
    for (name, hexed), js_value in zip(refused, theirs[len(cases):], strict=True):
        assert "error" in js_value, (name, hexed, js_value)
        with pytest.raises(ValueError):  # DecodeError is a ValueError
            types[name].decode(bytes.fromhex(hexed))


# -- the mux against JS Protomux ----------------------------------------------------------------------

class JSMux:
    """mux_tool.js in a subprocess: one JSON command a line, one answer a line."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(["node", str(ROOT / "v11" / "js" / "mux_tool.js")], cwd=ROOT / "v11",
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, cmd: str, **args: Any) -> tuple[list[bytes], list[dict[str, Any]]]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"mux_tool.js exited (code {self.proc.poll()})"
        answer = json.loads(line)
        assert not [e for e in answer["events"] if e["event"] in ("error", "destroyed")], answer
        return [bytes.fromhex(h) for h in answer["writes"]], answer["events"]

    def feed(self, messages: list[bytes]) -> tuple[list[bytes], list[dict[str, Any]]]:
        writes, events = [], []
        for m in messages:
            w, e = self("feed", hex=m.hex())
            writes += w
            events += e
        return writes, events

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def jsmux() -> Any:
    require_node11()
    js = JSMux()
    try:
        yield js
    finally:
        js.close()


DK = bytes(range(32))


def _receive_all(mux: Mux, messages: list[bytes]) -> list[Any]:
    events: list[Any] = []
    for m in messages:
        events += mux.receive(m)
    return events


def _js_handshake(h: Handshake) -> dict[str, Any]:
    return to_js(h)[1]


def test_python_and_js_protomux_open_exchange_batch_and_close_a_hypercore_channel(jsmux: JSMux):
    py_hs, js_hs = Handshake(b"\x11" * 32, seeks=True), Handshake(b"\x22" * 32, seeks=False)
    # JS opens first: its open is the bytes Python writes for the same values
    js_writes, _ = jsmux("open", protocol=PROTOCOL, id=DK.hex(), handshake=_js_handshake(js_hs))
    same = Mux()
    assert same.open(PROTOCOL, DK, js_hs.encode()).local_id == 1
    assert same.data_to_send() == js_writes
    # Python, paired as corestore pairs (any id), is offered it and accepts: each sees the other's handshake
    mux = Mux()
    mux.pair(PROTOCOL)
    assert _receive_all(mux, js_writes) == [OpenRequested(1, PROTOCOL, DK, js_hs.encode())]
    channel = mux.open(PROTOCOL, DK, py_hs.encode())
    assert mux.events() == [ChannelOpened(channel, js_hs.encode())]
    _, js_events = jsmux.feed(mux.data_to_send())
    assert js_events == [{"event": "open", "ch": 0, "handshake": _js_handshake(py_hs)}]

    rng = random.Random(7)
    samples = [m for m in (random_message(rng) for _ in range(300)) if isinstance(m, Message)][:60]

    # Python -> JS, one by one, every type
    for m in samples:
        channel.send(m.TYPE, m.encode())
    _, js_events = jsmux.feed(mux.data_to_send())
    assert [from_js(e["type"], e["value"]) for e in js_events] == samples

    # JS -> Python, one by one
    writes: list[bytes] = []
    for m in samples:
        name, value = to_js(m)
        w, _ = jsmux("send", ch=0, type=name, value=value)
        writes += w
    assert writes == [bytes([1, m.TYPE]) + m.encode() for m in samples]  # JS writes what Python would
    events = _receive_all(mux, writes)
    assert [decode_message(e.type, e.body) for e in events] == samples
    assert all(isinstance(e, MessageReceived) and e.channel is channel for e in events)

    # a corked batch from JS: Python unpacks it; Python's batch of the same sends is the same bytes
    jsmux("cork")
    for m in samples[:12]:
        name, value = to_js(m)
        jsmux("send", ch=0, type=name, value=value)
    js_batch, _ = jsmux("uncork")
    assert len(js_batch) == 1
    with mux.corked():
        for m in samples[:12]:
            channel.send(m.TYPE, m.encode())
    assert mux.data_to_send() == js_batch
    events = mux.receive(js_batch[0])
    assert events[0] == BatchStarted(12) and events[-1] == BatchEnded()
    assert [decode_message(e.type, e.body) for e in events[1:-1]] == samples[:12]

    # a corked batch from Python with a second channel opened inside it: JS reads it all
    with mux.corked():
        channel.send(samples[0].TYPE, samples[0].encode())
        second = mux.open(PROTOCOL, DK[::-1], py_hs.encode())
        second.send(Range.TYPE, Range(5, 1).encode())
        channel.send(Cancel.TYPE, Cancel(9).encode())
    batch = mux.data_to_send()
    assert len(batch) == 1 and batch[0][:2] == b"\x00\x00"
    js_writes, js_events = jsmux.feed(batch)
    assert js_events[0] == {"event": "message", "ch": 0, "type": TYPE_NAMES[samples[0].TYPE],
                            "value": to_js(samples[0])[1]}
    assert js_events[-1] == {"event": "message", "ch": 0, "type": "cancel", "value": {"request": 9}}
    # JS had not paired that id: it rejects the second channel (our number 2), in a batch of its own
    # (JS corks its answers to a batch)
    assert js_writes == [bytes([0, 0, 0, 2, 2, 2])]
    assert mux.receive(js_writes[0]) == [ChannelClosed(second, rejected=True)] and second.closed
    js_writes, _ = jsmux("close", ch=0)  # and closes the first
    events = _receive_all(mux, js_writes)
    assert events == [ChannelClosed(channel)]
    assert channel.closed and mux.events() == []


def test_rejects_both_ways_and_close_from_python(jsmux: JSMux):
    hs = Handshake(b"\x33" * 32).encode()
    mux = Mux()
    # Python opens a channel JS has not paired: JS rejects it
    lonely = mux.open(PROTOCOL, b"\x01" * 32, hs)
    js_writes, _ = jsmux.feed(mux.data_to_send())
    assert js_writes == [bytes([0, 2, 1])]
    assert mux.receive(js_writes[0]) == [ChannelClosed(lonely, rejected=True)]
    assert mux.is_idle()

    # JS opens one Python has not paired: Python rejects it, JS sees its channel closed
    js_writes, _ = jsmux("open", protocol=PROTOCOL, id=DK.hex(), handshake=to_js(Handshake(b"\x44" * 32))[1])
    assert mux.receive(js_writes[0]) == []
    reject = mux.data_to_send()
    assert reject == [bytes([0, 2, 1])]
    _, js_events = jsmux.feed(reject)
    assert js_events == [{"event": "close", "ch": 0, "remote": True}]

    # JS opens and closes before Python answers: the offer is withdrawn, and Python's reject lets JS
    # reuse its number (JS takes it without complaint)
    mux.pair(PROTOCOL, b"\x02" * 32)
    js_writes, _ = jsmux("open", protocol=PROTOCOL, id=(b"\x02" * 32).hex(),
                         handshake=to_js(Handshake(b"\x44" * 32))[1])
    js_close, _ = jsmux("close", ch=1)
    assert _receive_all(mux, js_writes + js_close) == [
        OpenRequested(1, PROTOCOL, b"\x02" * 32, Handshake(b"\x44" * 32).encode()), OpenWithdrawn(1)]
    _, js_events = jsmux.feed(mux.data_to_send())
    assert js_events == []
    mux.unpair(PROTOCOL, b"\x02" * 32)

    # JS pairs, Python opens: JS makes its channel and answers; Python closes it, JS sees it closed
    jsmux("pair", protocol=PROTOCOL, id=DK.hex(), handshake=to_js(Handshake(b"\x55" * 32))[1])
    channel = mux.open(PROTOCOL, DK, hs)
    js_writes, js_events = jsmux.feed(mux.data_to_send())
    assert [e["event"] for e in js_events] == ["created", "open"]
    assert js_writes[0][:3] == bytes([0, 1, 1])  # JS reused number 1, freed by the reject of the withdrawn
    assert mux.receive(js_writes[0]) == [ChannelOpened(channel, Handshake(b"\x55" * 32).encode())]
    channel.send(Want.TYPE, Want(0, 10).encode())
    mux.close(channel)
    _, js_events = jsmux.feed(mux.data_to_send())
    assert js_events == [{"event": "message", "ch": 2, "type": "want",
                          "value": {"start": 0, "length": 10, "any": False}},
                         {"event": "close", "ch": 2, "remote": True}]
    # the numbers are free again on both sides: a new pair opens on them
    again = mux.open(PROTOCOL, DK, hs)
    assert again.local_id == 1
    js_writes, js_events = jsmux.feed(mux.data_to_send())
    assert [e["event"] for e in js_events] == ["created", "open"]
    assert js_writes[0][:3] == bytes([0, 1, 1])
    assert mux.receive(js_writes[0]) == [ChannelOpened(again, Handshake(b"\x55" * 32).encode())]


def test_the_hypercore_alias_pairs_with_hypercore_alpha(jsmux: JSMux):
    """hypercore opens its channels as "hypercore/alpha" with the alias "hypercore": an open by either
    name pairs with them, on both sides."""
    hs = Handshake(b"\x66" * 32).encode()
    js_writes, _ = jsmux("open", protocol=PROTOCOL, id=DK.hex(), handshake=to_js(Handshake(b"\x77" * 32))[1])
    mux = Mux()
    channel = mux.open("hypercore", DK, hs)  # JS's channel answers to its alias
    _, js_events = jsmux.feed(mux.data_to_send())
    assert js_events == [{"event": "open", "ch": 0, "handshake": to_js(Handshake(b"\x66" * 32))[1]}]
    # ours has no alias: JS's "hypercore/alpha" open finds nothing to pair with, and is rejected
    assert mux.receive(js_writes[0]) == [] and mux.data_to_send() == [bytes([0, 2, 1])]
    mux2 = Mux()
    aliased = mux2.open(PROTOCOL, DK, hs, aliases=("hypercore",))
    jsmux("close", ch=0)
    js_hs = to_js(Handshake(b"\x77" * 32))[1]
    js_writes, _ = jsmux("open", protocol="hypercore", id=DK.hex(), handshake=js_hs)
    assert mux2.receive(js_writes[0]) == [ChannelOpened(aliased, Handshake(b"\x77" * 32).encode())]
    assert not channel.closed
