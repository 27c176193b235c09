"""The protobuf codec: round trips, defaults, and nothing but DecodeError on hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.protobuf import DecodeError, decode_varint, encode_varint, load_schema, parse_proto
from tests.proto_samples import all_message_classes, samples


def test_varints():
    for n in (0, 1, 127, 128, 300, 2**32, 2**63, 2**64 - 1):
        enc = encode_varint(n)
        assert decode_varint(enc, 0) == (n, len(enc))
    with pytest.raises(DecodeError):
        decode_varint(b"\x80\x80", 0)
    with pytest.raises(DecodeError):
        decode_varint(b"\xff" * 11, 0)
    with pytest.raises(DecodeError):
        decode_varint(b"\xff" * 9 + b"\x7f", 0)  # over 64 bits


def test_every_sample_round_trips():
    for module, name, msg in samples():
        enc = msg.encode()
        assert type(msg).decode(enc) == msg, (module, name)


def test_defaults_and_required():
    hp = load_schema("hypercore-protocol.proto")
    have = hp.Have.decode(hp.Have(start=7).encode())
    assert have.length == 1 and have.bitfield is None  # [default = 1]
    with pytest.raises(ValueError):
        hp.Open().encode()
    with pytest.raises(DecodeError, match="required"):
        hp.Open.decode(b"")
    with pytest.raises(TypeError):
        hp.Open(nope=1)


def test_unknown_fields_are_skipped():
    hp = load_schema("hypercore-protocol.proto")
    extra = encode_varint((99 << 3) | 2) + b"\x03abc" + encode_varint(98 << 3) + b"\x05"
    assert hp.Want.decode(hp.Want(start=5).encode() + extra) == hp.Want(start=5)


def test_wrong_wire_type_and_bad_utf8():
    hp = load_schema("hypercore-protocol.proto")
    with pytest.raises(DecodeError):
        hp.Want.decode(encode_varint((1 << 3) | 2) + b"\x01x")
    with pytest.raises(DecodeError, match="UTF-8"):
        hp.Options.decode(encode_varint((1 << 3) | 2) + b"\x02\xff\xfe")


JS_SCHEMAS = {
    "hypercore-protocol.proto": "simple-hypercore-protocol/schema.proto",
    "hypertrie.proto": "hypertrie/schema.proto",
    "mountable-hypertrie.proto": "mountable-hypertrie/schema.proto",
    "hyperdrive.proto": "hyperdrive-schemas/schemas/hyperdrive.proto",
    "multi-hyperdrive.proto": "multi-hyperdrive/schemas.proto",
}


def _shape(defs, prefix=""):
    out = {}
    for d in defs:
        out[prefix + d.name] = sorted((f.number, f.label, f.type, f.name, f.key_type) for f in d.fields)
        out.update(_shape(d.nested, prefix + d.name + "."))
    return out


@pytest.mark.interop
@pytest.mark.parametrize("ours", sorted(JS_SCHEMAS))
def test_schemas_match_the_js_stack(js, ours):
    """Our protocol/*.proto have the same messages, field numbers, labels and types as the JS ones."""
    from conftest import INTEROP
    from hypernode.protobuf import PROTOCOL_DIR
    mine = _shape(parse_proto((PROTOCOL_DIR / ours).read_text()))
    theirs = _shape(parse_proto((INTEROP / "node_modules" / JS_SCHEMAS[ours]).read_text()))
    assert mine == theirs


@pytest.mark.interop
def test_js_decodes_our_bytes_and_we_decode_its_encoding(js, tmp_path):
    """JS decodes every sample we encode, and re-encodes it; we decode that to the same fields
    (JS fills unset optional scalars with their zero value, which is the only difference allowed)."""
    import json
    all_samples = samples()
    cases = [{"module": m, "message": n, "hex": msg.encode().hex()} for m, n, msg in all_samples]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    out = js("proto_tool.js", str(path))
    for (_, name, msg), res in zip(all_samples, out, strict=True):
        assert "error" not in res, (name, res)
        _same(msg, type(msg).decode(bytes.fromhex(res["hex"])), name)


def _same(ours, theirs, where):
    for f in type(ours)._fields:
        a, b = getattr(ours, f.name), getattr(theirs, f.name)
        if a is None:
            assert b in (None, 0, False, "", b""), (where, f.name, b)
        elif hasattr(a, "_fields"):
            _same(a, b, f"{where}.{f.name}")
        elif isinstance(a, list) and a and hasattr(a[0], "_fields"):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                _same(x, y, f"{where}.{f.name}[]")
        else:
            assert a == b, (where, f.name)


@pytest.mark.interop
def test_js_refuses_what_we_refuse(js, tmp_path):
    import json
    bad = [("hypercore-protocol", "Open", b""), ("hypercore-protocol", "Data", b"\x08"),
           ("hyperdrive", "Stat", b"\x22\x05ab")]
    for module, name, data in bad:
        cls = getattr(load_schema(module + ".proto" if module != "hyperdrive" else "hyperdrive.proto"), name)
        with pytest.raises(DecodeError):
            cls.decode(data)
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([{"module": m, "message": n, "hex": d.hex()} for m, n, d in bad]))
    assert all("error" in r for r in js("proto_tool.js", str(path)))


@pytest.mark.parametrize("cls", all_message_classes(), ids=lambda c: c.__qualname__)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(cls, data):
    try:
        cls.decode(data)
    except DecodeError:
        pass
