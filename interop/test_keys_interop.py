"""hypernode.keys against the pinned hypercore 11 stack's z32 and hypercore-id-encoding (interop/v11).

interop/v11/js/ids_tool.js encodes random byte strings of every length from 1 to 40 with z32, encodes
random 32-byte keys with hypercore-id-encoding, decodes them back from the z32 and hex spellings, and
tries to decode spellings that are not keys. Python must write the same letters and read back the same
keys, and refuse what JS refuses.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from hypernode.keys import decode_key, encode_key, parse_hyper_url, z32_decode, z32_encode

pytestmark = pytest.mark.interop


def test_z32_and_key_spellings_match_js(js11: Any) -> None:
    inputs = [os.urandom(n).hex() for n in range(1, 41)] + [os.urandom(32).hex() for _ in range(20)]
    inputs += ["00" * 32, "ff" * 32]
    got = js11("ids_tool.js", *inputs)
    assert len(got["out"]) == len(inputs)
    for case in got["out"]:
        data = bytes.fromhex(case["hex"])
        assert z32_encode(data) == case["z32"], case
        assert z32_decode(case["z32"]) == data, case
        if len(data) == 32:
            assert encode_key(data) == case["id"]
            assert case["decoded"] == [case["hex"]] * 3
            spellings = (case["id"], case["hex"], case["hex"].upper())
            assert [decode_key(s) for s in spellings] == [data] * 3
            assert parse_hyper_url(f"hyper://{case['id']}/a/b") == (data, "/a/b")
    for spelling, decoded in got["bad"]:
        if decoded is None:
            with pytest.raises(ValueError):
                decode_key(spelling)
        else:
            assert decode_key(spelling).hex() == decoded
