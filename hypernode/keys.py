"""How keys are written: 64 hex digits, z-base-32 (52 letters and digits, what hypercore 11 shows as a
core's ``id``), and ``hyper://`` URLs.

:func:`decode_key` takes either spelling (as JS's hypercore-id-encoding does), :func:`encode_key` writes
z-base-32 and :func:`parse_hyper_url` splits ``hyper://KEY/some/path`` into the key and the path. Which
generation a key belongs to cannot be told from it: both are 32 bytes (see
:func:`hypernode.core11.corestore.open_corestore`'s ``generation``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Z32_ALPHABET", "z32_encode", "z32_decode", "encode_key", "decode_key", "HyperURL",
           "parse_hyper_url", "hyper_url"]

Z32_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
_Z32_VALUE = {c: i for i, c in enumerate(Z32_ALPHABET)}
URL_SCHEMES = ("hyper://", "dat://")


def z32_encode(data: bytes) -> str:
    """z-base-32: 5 bits a letter, most significant first, the last letter padded with zero bits."""
    n = int.from_bytes(data, "big")
    bits = 8 * len(data)
    letters = -(-bits // 5)
    n <<= letters * 5 - bits
    return "".join(Z32_ALPHABET[(n >> (5 * (letters - 1 - i))) & 31] for i in range(letters))


def z32_decode(text: str) -> bytes:
    """The bytes of z-base-32 ``text`` (whole bytes only; padding bits dropped); ValueError if a letter
    is not z-base-32's."""
    n = 0
    for c in text:
        v = _Z32_VALUE.get(c)
        if v is None:
            raise ValueError(f"not z-base-32: {c!r} in {text!r}")
        n = (n << 5) | v
    nbytes = 5 * len(text) // 8
    return (n >> (5 * len(text) - 8 * nbytes)).to_bytes(nbytes, "big")


def encode_key(key: bytes) -> str:
    """A 32-byte key in z-base-32, as JS's hypercore-id-encoding writes it."""
    if len(key) != 32:
        raise ValueError(f"a key is 32 bytes, not {len(key)}")
    return z32_encode(key)


def decode_key(text: str | bytes) -> bytes:
    """A 32-byte key from 64 hex digits or 52 z-base-32 letters (or the 32 bytes themselves);
    ValueError otherwise."""
    if isinstance(text, bytes | bytearray | memoryview):
        key = bytes(text)
    else:
        key = b""
        s = text.strip()
        if len(s) == 64:
            try:
                key = bytes.fromhex(s)
            except ValueError:
                pass
        elif len(s) == 52:
            try:
                key = z32_decode(s)  # as JS, the last letter's 4 padding bits are not checked
            except ValueError:
                pass
    if len(key) != 32:
        raise ValueError(f"not a key (64 hex digits or 52 z-base-32 letters): {text!r}")
    return key


class HyperURL(NamedTuple):
    """A key with an optional path (None when none is given: ``hyper://KEY`` or ``hyper://KEY/``)."""

    key: bytes
    path: str | None


def parse_hyper_url(text: str) -> HyperURL:
    """``KEY``, ``hyper://KEY`` or ``hyper://KEY/some/path`` (``dat://`` too), the key in hex or
    z-base-32; ValueError if there is no key in it."""
    text = text.strip()
    path: str | None = None
    for scheme in URL_SCHEMES:
        if text[:len(scheme)].lower() == scheme:
            text, slash, rest = text[len(scheme):].partition("/")
            if slash and rest.strip("/"):
                path = "/" + rest
            break
    return HyperURL(decode_key(text), path)


def hyper_url(key: bytes, path: str = "", *, as_hex: bool = False) -> str:
    """``hyper://KEY/path``, the key in z-base-32 (as JS writes it) or, with ``as_hex=True``, in hex."""
    spelled = key.hex() if as_hex else encode_key(key)
    if path and not path.startswith("/"):
        path = "/" + path
    return f"hyper://{spelled}{path}"
