"""The generated message codec: round trips, defaults, JS's exact bytes, and nothing but DecodeError on
hostile bytes."""

from __future__ import annotations

import json
import keyword
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypernode.messages import dht_rpc, hyperdrive
from hypernode.messages import hypercore_protocol as hp
from hypernode.protobuf import DecodeError, Message
from hypernode.varint import decode_varint, encode_varint, read_varint_partial, varint_length
from tests.proto_samples import JS_SCHEMAS, all_message_classes, samples


def test_varints():
    for n in (0, 1, 127, 128, 300, 16383, 16384, 2**21 - 1, 2**21, 2**28 - 1, 2**28, 2**32, 2**63, 2**64 - 1):
        enc = encode_varint(n)
        assert decode_varint(enc, 0) == (n, len(enc)) == (n, varint_length(n))
        assert read_varint_partial(enc, 0, len(enc), max_bytes=10) == (n, len(enc))
        assert read_varint_partial(enc, 0, len(enc) - 1, max_bytes=10) == (None, 0)
    assert encode_varint(-1) == b"\xff" * 9 + b"\x01"  # a negative int64: ten bytes
    assert varint_length(-1) == 10
    with pytest.raises(DecodeError):
        decode_varint(b"\x80\x80", 0)
    with pytest.raises(DecodeError):
        decode_varint(b"\xff" * 11, 0)
    with pytest.raises(DecodeError):
        decode_varint(b"\xff" * 9 + b"\x7f", 0)  # over 64 bits
    with pytest.raises(DecodeError):
        read_varint_partial(b"\xff" * 5, 0, 5, max_bytes=4)
    with pytest.raises(ValueError):
        encode_varint(2**64)


@given(st.integers(0, 2**64 - 1))
def test_varints_round_trip(n):
    enc = encode_varint(n)
    assert decode_varint(enc + b"\x00", 0) == (n, len(enc))
    assert len(enc) == varint_length(n)


def test_every_sample_round_trips():
    for module, name, msg in samples():
        enc = msg.encode()
        assert type(msg).decode(enc) == msg, (module, name)
        assert type(msg).decode(bytearray(enc)) == msg
        assert type(msg).decode(memoryview(enc)) == msg


def test_defaults_and_required():
    have = hp.Have.decode(hp.Have(start=7).encode())
    assert have.length == 1 and have.bitfield is None  # [default = 1]
    assert hp.Have(start=7).encode() == b"\x08\x07"  # the default is not written
    with pytest.raises(TypeError):
        hp.Open()  # type: ignore[call-arg]  # a required field is a required argument
    msg = hp.Open(discoveryKey=b"k")
    msg.discoveryKey = None  # type: ignore[assignment]
    with pytest.raises(ValueError, match="required"):
        msg.encode()
    with pytest.raises(DecodeError, match="required"):
        hp.Open.decode(b"")
    with pytest.raises(TypeError):
        hp.Open(discoveryKey=b"k", nope=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        hp.Open(b"k")  # type: ignore[misc]  # keyword arguments only
    with pytest.raises(AttributeError):
        msg.nope = 1  # type: ignore[attr-defined]  # __slots__


def test_typed_fields():
    data = hp.Data(index=1)
    assert data.nodes == [] and data.value is None
    assert hp.Data(index=1).nodes is not data.nodes  # no shared default list
    assert hyperdrive.Stat(mode=1).metadata == {}
    assert hp.Data.__slots__ == ("index", "value", "nodes", "signature")
    assert hp.Data.__match_args__ == hp.Data.__slots__
    match hp.Have.decode(b"\x08\x05"):
        case hp.Have(start, length):
            assert (start, length) == (5, 1)
        case _:
            pytest.fail("no match")
    with pytest.raises(TypeError, match="bytes"):
        hp.Open(discoveryKey="not bytes").encode()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        hp.Want(start=-1).encode()
    assert repr(hp.Want(start=3)) == "Want(start=3)"
    assert hp.Data(index=1, nodes=[hp.Data.Node(index=2, hash=b"h", size=3)]).to_dict() == {
        "index": 1, "value": None, "nodes": [{"index": 2, "hash": b"h", "size": 3}], "signature": None}


def test_enums_and_keywords():
    msg = dht_rpc.Message(type=dht_rpc.Message.TYPE.UPDATE, rid=1)
    assert dht_rpc.Message.decode(msg.encode()).type == 2
    # dht-rpc's compiled schema reads any value (the RPC layer drops a message of no known type)
    assert dht_rpc.Message.decode(b"\x08\x07\x10\x01").type == 7
    punch = dht_rpc.Holepunch(from_=b"abcdef")  # `from` is a keyword: the attribute is from_
    assert punch.encode() == b"\x12\x06abcdef"
    assert dht_rpc.Holepunch.decode(punch.encode()).from_ == b"abcdef"


def test_fields_are_written_in_declaration_order():
    """As the JS compiler: dht-rpc declares `version = 11` first, so it is written first."""
    enc = dht_rpc.Message(version=1, type=1, rid=2).encode()
    assert enc == bytes([11 << 3, 1, 1 << 3, 1, 2 << 3, 2])


def test_unknown_fields_are_skipped():
    extra = encode_varint((99 << 3) | 2) + b"\x03abc" + encode_varint(98 << 3) + b"\x05"
    extra += encode_varint((97 << 3) | 1) + b"8 bytes!" + encode_varint((96 << 3) | 5) + b"4byt"
    assert hp.Want.decode(hp.Want(start=5).encode() + extra) == hp.Want(start=5)


def test_packed_and_unpacked_repeated_fields_both_decode():
    from hypernode.messages.hypertrie import Extension
    cache = Extension.Cache(start=1, end=2, blocks=[1, 300, 2**40])
    assert cache.encode() == b"\x08\x01\x10\x02\x1a\x09\x01\xac\x02\x80\x80\x80\x80\x80\x20"
    unpacked = b"\x08\x01\x10\x02\x18\x01\x18\xac\x02\x18\x80\x80\x80\x80\x80\x20"
    assert Extension.Cache.decode(unpacked) == cache
    with pytest.raises(DecodeError):
        Extension.Cache.decode(b"\x08\x01\x10\x02\x1a\x01\x80\x01")  # a packed varint past its run


def test_wrong_wire_type_and_bad_utf8_and_truncation():
    with pytest.raises(DecodeError):
        hp.Want.decode(encode_varint((1 << 3) | 2) + b"\x01x")
    with pytest.raises(DecodeError, match="UTF-8"):
        hp.Options.decode(encode_varint((1 << 3) | 2) + b"\x02\xff\xfe")
    node = hp.Data.Node(index=1, hash=b"h" * 32, size=9)
    good = hp.Data(index=300, value=b"v" * 200, nodes=[node]).encode()
    for cut in range(1, len(good)):
        try:
            msg = hp.Data.decode(good[:cut])
        except DecodeError:
            continue
        assert msg.encode() == good[:cut]  # cut between two fields: the fields before it
    with pytest.raises(DecodeError):
        hp.Data.decode("not bytes")  # type: ignore[arg-type]


def _shape(defs, prefix=""):
    out = {}
    for d in defs:
        out[prefix + d.name] = [(f.number, f.label, f.type, f.name, f.key_type) for f in d.fields]
        out.update(_shape(d.nested, prefix + d.name + "."))
    return out


@pytest.mark.interop
@pytest.mark.parametrize("ours", sorted(JS_SCHEMAS))
def test_schemas_match_the_js_stack(js, ours):
    """Our protocol/*.proto have the same messages, field numbers, labels, types and field order (the
    order fields are written in) as the JS ones."""
    from conftest import INTEROP
    from protocol.generate import PROTOCOL_DIR, parse_proto
    mine = _shape(parse_proto((PROTOCOL_DIR / ours).read_text()).messages)
    theirs = _shape(parse_proto((INTEROP / "node_modules" / JS_SCHEMAS[ours]).read_text()).messages)
    assert mine == theirs


def _js_fields(msg: Any) -> Any:
    """A message as the plain object the JS codec encodes (buffers as {hex}, schema field names)."""
    if isinstance(msg, Message):
        return {(n[:-1] if n.endswith("_") and keyword.iskeyword(n[:-1]) else n): _js_fields(getattr(msg, n))
                for n in msg.__slots__}
    if isinstance(msg, (bytes, bytearray)):
        return {"hex": bytes(msg).hex()}
    if isinstance(msg, list):
        return [_js_fields(x) for x in msg]
    if isinstance(msg, dict):
        return {k: _js_fields(v) for k, v in msg.items()}
    return msg


@pytest.mark.interop
def test_we_write_the_bytes_js_writes(js, tmp_path):
    """The same fields, encoded by JS's compiled schemas and by ours: byte-identical."""
    all_samples = samples()
    cases = [{"module": m, "message": n, "fields": _js_fields(msg)} for m, n, msg in all_samples]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    for (module, name, msg), res in zip(all_samples, js("proto_tool.js", str(path)), strict=True):
        assert res == {"hex": msg.encode().hex()}, (module, name)


@pytest.mark.interop
def test_js_decodes_our_bytes_and_we_decode_its_encoding(js, tmp_path):
    """JS decodes every sample we encode, and re-encodes it; we decode that to the same fields
    (JS fills unset optional scalars with their zero value, which is the only difference allowed)."""
    all_samples = samples()
    cases = [{"module": m, "message": n, "hex": msg.encode().hex()} for m, n, msg in all_samples]
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    out = js("proto_tool.js", str(path))
    for (_, name, msg), res in zip(all_samples, out, strict=True):
        assert "error" not in res, (name, res)
        _same(msg, type(msg).decode(bytes.fromhex(res["hex"])), name)


def _same(ours, theirs, where):
    for name in type(ours).__slots__:
        a, b = getattr(ours, name), getattr(theirs, name)
        if a is None:
            assert b in (None, 0, False, "", b""), (where, name, b)
        elif isinstance(a, Message):
            _same(a, b, f"{where}.{name}")
        elif isinstance(a, list) and a and isinstance(a[0], Message):
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                _same(x, y, f"{where}.{name}[]")
        else:
            assert a == b, (where, name)


@pytest.mark.interop
def test_js_refuses_what_we_refuse(js, tmp_path):
    bad = [("hypercore-protocol", hp.Open, b""), ("hypercore-protocol", hp.Data, b"\x08"),
           ("hyperdrive", hyperdrive.Stat, b"\x22\x05ab"), ("dht-rpc", dht_rpc.Message, b"\x08\x01\x10")]
    for _, cls, data in bad:
        with pytest.raises(DecodeError):
            cls.decode(data)
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([{"module": m, "message": c.__qualname__, "hex": d.hex()} for m, c, d in bad]))
    assert all("error" in r for r in js("proto_tool.js", str(path)))


def _class_id(cls: type) -> str:
    return f"{cls.__module__.rsplit('.', 1)[-1]}.{cls.__qualname__}"


@pytest.mark.parametrize("cls", all_message_classes(), ids=_class_id)
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_decode_error(cls, data):
    try:
        msg = cls.decode(data)
    except DecodeError:
        return
    assert cls.decode(msg.encode()) == msg  # what decodes re-encodes to the same fields


def _tag(number: int, wire: int) -> bytes:
    return encode_varint(number << 3 | wire)


_numbers = st.integers(1, 15).map(lambda n: n % 15)  # the numbers our messages use (1..13), 14, and 0
_varint_values = st.one_of(st.integers(0, 300), st.sampled_from([2**31, 2**32, 2**53, 2**63, 2**64 - 1]))
_varint_bytes = st.one_of(_varint_values.map(encode_varint),
                          st.binary(min_size=1, max_size=11))  # overlong, truncated, over 64 bits
_shaped = st.recursive(
    st.one_of(
        st.tuples(_numbers, _varint_bytes).map(lambda t: _tag(t[0], 0) + t[1]),
        st.tuples(_numbers, st.binary(max_size=40)).map(
            lambda t: _tag(t[0], 2) + encode_varint(len(t[1])) + t[1]),
        st.tuples(_numbers, st.text(max_size=10)).map(
            lambda t: _tag(t[0], 2) + encode_varint(len(t[1].encode())) + t[1].encode()),
        st.tuples(_numbers, st.sampled_from([1, 5, 1, 5, 3, 4, 6, 7]), st.binary(max_size=9)).map(
            lambda t: _tag(t[0], t[1]) + t[2]),
    ),
    # a nested message (or packed run), its length right, or off by some bytes
    lambda inner: st.tuples(_numbers, st.lists(inner, max_size=4).map(b"".join), st.integers(-2, 2)).map(
        lambda t: _tag(t[0], 2) + encode_varint(max(0, len(t[1]) + t[2])) + t[1]),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(cls=st.sampled_from(all_message_classes()), fields=st.lists(_shaped, max_size=8))
def test_protobuf_shaped_bytes_raise_only_decode_error(cls, fields):
    """Bytes made of well-formed and broken fields with the numbers and wire types the schemas use (so
    that decoding reaches nested messages, maps and packed runs): DecodeError or a message that
    re-encodes to the same fields."""
    data = b"".join(fields)
    try:
        msg = cls.decode(data)
    except DecodeError:
        return
    assert cls.decode(msg.encode()) == msg
