"""The runtime of the generated message classes in :mod:`hypernode.messages`.

The classes themselves are generated ahead of time from the schemas in ``protocol/`` by
``protocol/generate.py``: nothing here reads a schema. This module holds what they share: the base class
:class:`Message` (equality, ``repr``, :meth:`~Message.encode`, :meth:`~Message.to_dict`), the
:class:`~hypernode.errors.DecodeError` every decoder raises, and the helpers the generated decoders
call (:func:`skip_field` for unknown fields, :func:`as_bytes`).

A message class takes its fields as keyword arguments, named as in the schema (``discoveryKey``,
``byteOffset``; a Python keyword gets a ``_`` after it: ``from_``); an unset optional field is ``None``
(or its declared default when decoding), a repeated field a list, a map a dict. ``msg.encode()`` writes
the fields in declaration order, as the JS ``protocol-buffers`` compiler does; ``Class.decode(buf)``
raises :class:`DecodeError`, and nothing else, for any malformed input: truncated or overlong varints,
lengths past the end, wrong wire types, missing required fields, bad UTF-8.
An enum field holds an ``int`` (its class, an ``IntEnum``, names the values); as in JS's compiled
schemas, any value decodes.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from hypernode.errors import DecodeError
from hypernode.varint import decode_varint

__all__ = ["Buffer", "DecodeError", "Message", "as_bytes", "skip_field"]

Buffer: TypeAlias = bytes | bytearray | memoryview


class Message:
    """Base class of the generated message classes: each lists its fields in ``__slots__``."""

    __slots__: tuple[str, ...] = ()

    def encode_into(self, out: bytearray) -> None:
        """Append the encoding to ``out``."""
        raise NotImplementedError

    def encode(self) -> bytes:
        """The encoding, as JS's ``protocol-buffers`` writes it; ``ValueError`` if a required field is
        unset or a value is out of range, ``TypeError`` for a value of the wrong type."""
        out = bytearray()
        self.encode_into(out)
        return bytes(out)

    @classmethod
    def decode(cls, buf: Buffer) -> Message:
        """The message encoded in ``buf``; :class:`DecodeError` if it is not one."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # messages are mutable

    def __repr__(self) -> str:
        parts = []
        for n in self.__slots__:
            v = getattr(self, n)
            if v is None or v == [] or v == {}:
                continue
            if isinstance(v, (bytes, bytearray)) and len(v) > 32:
                v = f"<{len(v)} bytes {bytes(v[:8]).hex()}…>"
            parts.append(f"{n}={v!r}")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (nested messages as dicts too)."""
        return {n: _plain(getattr(self, n)) for n in self.__slots__}


def _plain(v: Any) -> Any:
    if isinstance(v, Message):
        return v.to_dict()
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def as_bytes(buf: object) -> bytes:
    """``buf`` as bytes (a copy of a bytearray or memoryview); :class:`DecodeError` for anything else."""
    if isinstance(buf, (bytes, bytearray, memoryview)):
        return bytes(buf)
    raise DecodeError(f"cannot decode {type(buf).__name__}")


def skip_field(buf: bytes, pos: int, end: int, tag: int) -> int:
    """The offset after the value of an unknown field (its tag already read)."""
    wire = tag & 7
    if tag >> 3 == 0:
        raise DecodeError("field number 0")
    if wire == 0:
        _, pos = decode_varint(buf, pos)
        return pos
    if wire == 2:
        n, pos = decode_varint(buf, pos)
        if pos + n > end:
            raise DecodeError("length past the end of the message")
        return pos + n
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    raise DecodeError(f"unsupported wire type {wire}")
