"""hypernode.keys: z-base-32, key spellings and hyper:// URLs (JS's answers: interop/test_keys_interop.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hypernode.keys as K
from hypernode.keys import HyperURL, decode_key, encode_key, hyper_url, parse_hyper_url
from hypernode.node import parse_key, parse_url

KEY = bytes(range(32))


@given(st.binary(max_size=80))
def test_z32_round_trips_and_uses_its_alphabet(data: bytes) -> None:
    text = K.z32_encode(data)
    assert len(text) == -(-8 * len(data) // 5)
    assert set(text) <= set("ybndrfg8ejkmcpqxot1uwisza345h769")
    assert K.z32_decode(text) == data


def test_known_z32_answers() -> None:
    # printed by the z32 package of interop/v11 (ids_tool.js)
    assert K.z32_encode(b"\x00") == "yy"
    assert K.z32_encode(b"\xff\x00") == "9hyy"
    assert K.z32_encode(bytes.fromhex("73f0")) == "qxay"


@given(st.binary(min_size=32, max_size=32))
def test_a_key_reads_back_from_either_spelling_and_from_urls(key: bytes) -> None:
    assert decode_key(encode_key(key)) == decode_key(key.hex()) == decode_key(key.hex().upper()) == key
    assert parse_hyper_url(hyper_url(key)) == HyperURL(key, None)
    assert parse_hyper_url(hyper_url(key, "/x/y.txt", as_hex=True)) == HyperURL(key, "/x/y.txt")
    assert parse_hyper_url(hyper_url(key) + "/") == HyperURL(key, None)


@pytest.mark.parametrize("text", ["", "zz", "y" * 51, "y" * 53, "0" * 63, "g" * 64, "l" * 52, "hyper://",
                                  "hyper://" + "0" * 62, "dat://nothing/a"])
def test_what_is_not_a_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hyper_url(text)


def test_drive_keys_on_the_command_line_take_z32_too() -> None:
    z = encode_key(KEY)
    assert parse_key(z) == parse_key(f"hyper://{z}") == parse_key(KEY.hex()) == KEY
    assert parse_url(f"HYPER://{z}/docs/a.md") == (KEY, "/docs/a.md")
    with pytest.raises(ValueError, match="64 hex digits or 52 z-base-32 letters"):
        parse_key("zzz")
    with pytest.raises(ValueError, match="not a path"):
        parse_key(f"hyper://{z}/a")
