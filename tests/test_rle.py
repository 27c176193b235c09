"""bitfield-rle: round trips, the npm package's exact bytes, and hostile input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypernode import rle

_chunks = st.lists(st.one_of(st.binary(min_size=1, max_size=20),
                             st.builds(lambda n, b: bytes([b]) * n, st.integers(1, 3000),
                                       st.sampled_from([0, 255]))), max_size=12)


@given(_chunks)
def test_round_trip(chunks):
    bits = b"".join(chunks)
    assert rle.decode(rle.encode(bits)) == bits.rstrip(b"\x00")


@given(st.binary(max_size=300))
def test_arbitrary_input_decodes_or_raises_rle_error(data):
    try:
        rle.decode(data, max_bytes=1 << 16)
    except rle.RLEError:
        pass


def test_bomb_is_refused():
    # one varint asking for 2**40 bytes of 0xFF
    v = (1 << 42) | 3
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    with pytest.raises(rle.RLEError, match="too large"):
        rle.decode(bytes(out))


def test_align_pads():
    assert rle.decode(rle.encode(b"\x01\x02\x03\x04\x05"), align=4) == b"\x01\x02\x03\x04\x05\x00\x00\x00"


@pytest.mark.interop
def test_same_bytes_as_npm_package(js, tmp_path):
    import json
    import random
    rnd = random.Random(9)
    cases = [b"", b"\x00\x00", b"\xff" * 1024, b"\x80", bytes([255] * 100 + [1, 2] + [0] * 50 + [255] * 3)]
    for _ in range(40):
        parts = [rnd.choice([bytes([rnd.randrange(256)]), b"\xff" * rnd.randrange(1, 300),
                             b"\x00" * rnd.randrange(1, 300)]) for _ in range(rnd.randrange(1, 9))]
        cases.append(b"".join(parts))
    (tmp_path / "cases.json").write_text(json.dumps([c.hex() for c in cases]))
    out = js("rle_tool.js", str(tmp_path / "cases.json"))
    assert out == [rle.encode(c).hex() for c in cases]
    for c, enc in zip(cases, out, strict=True):
        assert rle.decode(bytes.fromhex(enc)) == c.rstrip(b"\x00")
