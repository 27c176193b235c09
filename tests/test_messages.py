"""hypernode/messages/ is generated from protocol/*.proto: it is current, and the generator keeps the
schemas' names, comments and rules."""

from __future__ import annotations

import importlib

import pytest

from hypernode.messages import MODULES
from hypernode.messages import hypercore_protocol as hp
from protocol.generate import OUT_DIR, PROTOCOL_DIR, generate_module, generate_package, main, parse_proto


def test_the_generated_modules_are_current():
    """Regenerating from protocol/ gives the committed files, byte for byte (after editing a schema,
    run `python protocol/generate.py`)."""
    files = generate_package()
    assert sorted(files) == sorted(p.name for p in OUT_DIR.glob("*.py"))
    for name, text in files.items():
        assert (OUT_DIR / name).read_text() == text, f"hypernode/messages/{name} is stale"
    assert main(["--check"]) == 0


def test_every_schema_has_its_module():
    protos = sorted(p.stem.replace("-", "_") for p in PROTOCOL_DIR.glob("*.proto"))
    assert sorted(MODULES) == protos
    for name in MODULES:
        module = importlib.import_module(f"hypernode.messages.{name}")
        assert module.__all__ and all(hasattr(module, n) for n in module.__all__)


def test_the_package_reads_no_schema_at_import():
    """Nothing under hypernode/ opens protocol/: a wheel carries no .proto files."""
    import hypernode
    pkg = OUT_DIR.parent
    assert not list(pkg.rglob("*.proto"))
    for path in pkg.rglob("*.py"):
        text = path.read_text()
        assert "load_schema" not in text and "exec(" not in text, path
    assert hypernode.__file__


def test_comments_become_docstrings():
    assert hp.__doc__ is not None and hp.__doc__.startswith("The messages of the hypercore-protocol 8 stream")
    assert hp.Data.__doc__ == ("Type 9: a block with the merkle nodes that prove it and, when needed, the "
                               "signature.")
    from hypernode.messages import dht_rpc
    assert dht_rpc.Message.TYPE.UPDATE == 2


@pytest.mark.parametrize("schema, error", [
    ("message A { optional A next = 1; }", "recursive"),
    ("message A { optional B b = 1; }", "unknown type"),
    ("message A { optional bytes encode = 1; }", "not supported"),
    ("message A { repeated bytes b = 1 [packed=true]; }", "packed"),
    ("message DecodeError { optional bytes b = 1; }", "may not be named"),
])
def test_the_generator_refuses_what_it_cannot_generate(tmp_path, schema, error):
    path = tmp_path / "x.proto"
    path.write_text('syntax = "proto2";\n' + schema)
    with pytest.raises(ValueError, match=error):
        generate_module(path)


def test_every_scalar_type_round_trips(tmp_path):
    """The generator covers the proto2 scalars our schemas do not use yet, encoded as JS encodes them."""
    path = tmp_path / "scalars.proto"
    path.write_text("""syntax = "proto2";
        // every scalar
        message All {
          optional int32 i32 = 1;      // as JS: a negative int32 is 2**32 + n, five bytes
          optional int64 i64 = 2;
          optional sint32 s32 = 3;
          optional sint64 s64 = 4;
          optional fixed32 f32 = 5;
          optional fixed64 f64 = 6;
          optional sfixed32 sf32 = 7;
          optional sfixed64 sf64 = 8;
          optional float fl = 9;
          optional double db = 10;
          optional string s = 11 [default = "x"];
          repeated sint64 many = 12 [packed=true];
          map<uint32, Inner> inner = 13;
          message Inner { required bool ok = 1; }
        }
    """)
    namespace: dict[str, object] = {}
    exec(compile(generate_module(path), str(path), "exec"), namespace)
    All = namespace["All"]
    msg = All(i32=-2, i64=-3, s32=-4, s64=5, f32=6, f64=7, sf32=-8, sf64=-9, fl=0.5, db=-1.25, s="é",
              many=[-1, 0, 1], inner={7: All.Inner(ok=True)})
    enc = msg.encode()
    assert enc.startswith(b"\x08\xfe\xff\xff\xff\x0f")  # int32 -2, as JS
    assert All.decode(enc) == msg
    assert All.decode(b"").s == "x"


def test_parse_keeps_declaration_order_and_comments():
    schema = parse_proto((PROTOCOL_DIR / "dht-rpc.proto").read_text())
    message = next(m for m in schema.messages if m.name == "Message")
    assert [f.number for f in message.fields][:3] == [11, 1, 2]
    assert "request id" in next(f for f in message.fields if f.name == "rid").doc


def test_feed_peer_dispatches_on_the_message_class():
    """A message of another class that merely shares a name with a replication message is not handled
    as one (dispatch was on ``type(msg).__name__``)."""
    import trio

    from hypernode.feed import Feed
    from hypernode.replication import FeedPeer, replicator_of

    class Have:  # not hypercore_protocol.Have
        start, length, bitfield, ack = 0, 5, None, None

    async def main() -> None:
        src = await Feed.open(None)
        await src.append([b"a", b"b"])
        peer = FeedPeer(replicator_of(await Feed.open(None, key=src.key)), lambda m: None)
        peer.on_open()
        peer.on_message(Have())
        assert peer.remote_length == 0
        peer.on_message(hp.Have(start=0, length=2))
        assert peer.remote_length == 2
        peer.on_close()
    trio.run(main)
