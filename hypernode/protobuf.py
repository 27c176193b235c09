"""Protocol Buffers (proto2) for hypernode, driven by the ``.proto`` schemas in ``protocol/``.

``load_schema("hypercore-protocol.proto")`` parses the schema (the subset the JS stack uses: messages,
nested messages, enums, ``optional``/``required``/``repeated`` fields, ``[packed=true]``,
``[default = ...]`` and ``map<,>`` fields) and returns a namespace with one class per message. Field
names are the schema's, verbatim (``discoveryKey``, ``byteOffset``), so the ``.proto`` files stay the
single source of truth and the same names appear as in the JS sources.

A message class takes its fields as keyword arguments; an unset optional field is ``None`` (or its
declared default when decoding), a repeated field a list, a map a dict. ``msg.encode()`` writes the
fields in field-number order, as the JS ``protocol-buffers`` compiler does; ``Class.decode(buf)``
parses and raises :class:`DecodeError`, and nothing else, for any malformed input: truncated or
overlong varints, lengths past the end, wrong wire types, missing required fields, bad UTF-8.
"""

from __future__ import annotations

import keyword
import re
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypernode.errors import HypernodeError

PROTOCOL_DIR = Path(__file__).resolve().parent.parent / "protocol"


class DecodeError(HypernodeError, ValueError):
    """Bytes that are not a valid encoding of the message."""


# -- varints ---------------------------------------------------------------------------------------


def encode_varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_length(n: int) -> int:
    if n < 0:
        return 10
    return max(1, (n.bit_length() + 6) // 7)


def decode_varint(buf: bytes | bytearray | memoryview, offset: int) -> tuple[int, int]:
    """``(value, offset after it)``; :class:`DecodeError` if truncated or longer than 10 bytes."""
    try:
        b = buf[offset]
    except IndexError:
        raise DecodeError("truncated varint") from None
    if b < 0x80:
        return b, offset + 1
    value = b & 0x7F
    shift = 7
    offset += 1
    while True:
        try:
            b = buf[offset]
        except IndexError:
            raise DecodeError("truncated varint") from None
        offset += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if value >> 64:
                raise DecodeError("varint overflows 64 bits")
            return value, offset
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes")


def read_varint_partial(buf: bytes | bytearray, pos: int, end: int,
                        max_bytes: int = 9) -> tuple[int | None, int]:
    """For incremental parsers: ``(value, offset after it)``, or ``(None, pos)`` if the varint is not
    complete before ``end``; :class:`DecodeError` if it runs past ``max_bytes`` bytes."""
    value = 0
    shift = 0
    i = pos
    while i < end:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if i - pos >= max_bytes:
            raise DecodeError("varint too long")
    return None, pos


# -- schema parsing --------------------------------------------------------------------------------

_VARINT_TYPES = {"uint32", "uint64", "int32", "int64", "bool", "sint32", "sint64"}
_FIXED64 = {"fixed64": "<Q", "sfixed64": "<q", "double": "<d"}
_FIXED32 = {"fixed32": "<I", "sfixed32": "<i", "float": "<f"}
_LEN_TYPES = {"string", "bytes"}
_SCALARS = _VARINT_TYPES | set(_FIXED64) | set(_FIXED32) | _LEN_TYPES


@dataclass
class FieldDef:
    label: str  # optional, required, repeated, map
    type: str
    name: str
    number: int
    packed: bool = False
    default: Any = None
    key_type: str = ""  # for maps
    message: Any = None  # resolved message class for message-typed fields (and map values)
    enum: bool = False


@dataclass
class MessageDef:
    name: str
    fields: list[FieldDef] = field(default_factory=list)
    nested: list[MessageDef] = field(default_factory=list)
    enums: dict[str, dict[str, int]] = field(default_factory=dict)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?|[{}=;<>,\[\]()]')


def _tokens(text: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return _TOKEN.findall(text)


def parse_proto(text: str) -> list[MessageDef]:
    toks = _tokens(text)
    pos = 0

    def expect(t: str) -> None:
        nonlocal pos
        if toks[pos] != t:
            raise ValueError(f"expected {t!r}, found {toks[pos]!r}")
        pos += 1

    def parse_enum() -> tuple[str, dict[str, int]]:
        nonlocal pos
        name = toks[pos]
        pos += 1
        expect("{")
        values: dict[str, int] = {}
        while toks[pos] != "}":
            if toks[pos] == "option":
                while toks[pos] != ";":
                    pos += 1
                pos += 1
                continue
            key = toks[pos]
            pos += 1
            expect("=")
            values[key] = int(toks[pos])
            pos += 1
            while toks[pos] != ";":
                pos += 1
            pos += 1
        pos += 1
        return name, values

    def parse_message() -> MessageDef:
        nonlocal pos
        msg = MessageDef(toks[pos])
        pos += 1
        expect("{")
        while toks[pos] != "}":
            t = toks[pos]
            if t == "message":
                pos += 1
                msg.nested.append(parse_message())
            elif t == "enum":
                pos += 1
                name, values = parse_enum()
                msg.enums[name] = values
            elif t in ("option", "reserved", "extensions"):
                while toks[pos] != ";":
                    pos += 1
                pos += 1
            elif t == "map":
                pos += 1
                expect("<")
                ktype = toks[pos]
                pos += 1
                expect(",")
                vtype = toks[pos]
                pos += 1
                expect(">")
                name = toks[pos]
                pos += 1
                expect("=")
                number = int(toks[pos])
                pos += 1
                expect(";")
                msg.fields.append(FieldDef("map", vtype, name, number, key_type=ktype))
            else:
                label = "optional"
                if t in ("optional", "required", "repeated"):
                    label = t
                    pos += 1
                ftype = toks[pos]
                name = toks[pos + 1]
                pos += 2
                expect("=")
                number = int(toks[pos])
                pos += 1
                fd = FieldDef(label, ftype, name, number)
                if toks[pos] == "[":
                    pos += 1
                    while toks[pos] != "]":
                        opt = toks[pos]
                        pos += 1
                        expect("=")
                        val = toks[pos]
                        pos += 1
                        if opt == "packed":
                            fd.packed = val == "true"
                        elif opt == "default":
                            fd.default = val
                        if toks[pos] == ",":
                            pos += 1
                    pos += 1
                expect(";")
                msg.fields.append(fd)
        pos += 1
        msg.fields.sort(key=lambda f: f.number)
        return msg

    messages: list[MessageDef] = []
    top_enums: dict[str, dict[str, int]] = {}
    while pos < len(toks):
        t = toks[pos]
        if t == "message":
            pos += 1
            messages.append(parse_message())
        elif t == "enum":
            pos += 1
            name, values = parse_enum()
            top_enums[name] = values
        else:
            while pos < len(toks) and toks[pos] != ";":
                pos += 1
            pos += 1
    for m in messages:
        m.enums.update({k: v for k, v in top_enums.items() if k not in m.enums})
    return messages


# -- the codec -------------------------------------------------------------------------------------


class Message:
    """Base class of generated message classes."""

    __slots__ = ()
    _fields: tuple[FieldDef, ...] = ()
    _by_number: dict[int, FieldDef] = {}
    _names: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        for f in self._fields:
            if f.label == "repeated":
                value: Any = []
            elif f.label == "map":
                value = {}
            else:
                value = None
            object.__setattr__(self, f.name, value)
        for k, v in kwargs.items():
            if k not in self._names:
                raise TypeError(f"{type(self).__name__} has no field {k!r}")
            object.__setattr__(self, k, v)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._names)

    def __hash__(self) -> int:  # pragma: no cover - messages are mutable
        raise TypeError("messages are not hashable")

    def __repr__(self) -> str:
        parts = []
        for n in self._names:
            v = getattr(self, n)
            if v is None or v == [] or v == {}:
                continue
            if isinstance(v, (bytes, bytearray)) and len(v) > 32:
                v = f"<{len(v)} bytes {bytes(v[:8]).hex()}…>"
            parts.append(f"{n}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self._fields:
            v = getattr(self, f.name)
            if isinstance(v, Message):
                v = v.to_dict()
            elif f.label == "repeated" and f.message is not None:
                v = [x.to_dict() for x in v]
            out[f.name] = v
        return out

    # encoding

    def encode(self) -> bytes:
        out = bytearray()
        self._encode_into(out)
        return bytes(out)

    def _encode_into(self, out: bytearray) -> None:
        for f in self._fields:
            value = getattr(self, f.name)
            if f.label == "repeated":
                if not value:
                    continue
                if f.packed and f.type not in _LEN_TYPES and f.message is None:
                    body = bytearray()
                    for v in value:
                        _encode_scalar_value(body, f, v)
                    out += encode_varint((f.number << 3) | 2)
                    out += encode_varint(len(body))
                    out += body
                else:
                    for v in value:
                        _encode_field(out, f, v)
            elif f.label == "map":
                for k, v in (value or {}).items():
                    body = f.message(key=k, value=v).encode()
                    out += encode_varint((f.number << 3) | 2)
                    out += encode_varint(len(body))
                    out += body
            elif value is None:
                if f.label == "required":
                    raise ValueError(f"{type(self).__name__}.{f.name} is required")
            else:
                _encode_field(out, f, value)

    # decoding

    @classmethod
    def decode(cls, buf: bytes | bytearray | memoryview) -> Any:
        if not isinstance(buf, (bytes, bytearray, memoryview)):
            raise DecodeError(f"cannot decode {type(buf).__name__}")
        if isinstance(buf, memoryview):
            buf = bytes(buf)
        return cls._decode(buf, 0, len(buf), 0)

    @classmethod
    def _decode(cls, buf: bytes | bytearray, pos: int, end: int, depth: int) -> Any:
        if depth > 32:
            raise DecodeError("messages nested too deeply")
        msg = cls.__new__(cls)
        Message.__init__(msg)
        by_number = cls._by_number
        while pos < end:
            tag, pos = decode_varint(buf, pos)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise DecodeError("field number 0")
            f = by_number.get(number)
            if wire == 0:
                value, pos = decode_varint(buf, pos)
                if pos > end:
                    raise DecodeError("varint past the end of the message")
            elif wire == 2:
                length, pos = decode_varint(buf, pos)
                if pos + length > end:
                    raise DecodeError(f"length {length} runs past the end of the message")
                start, pos = pos, pos + length
                value = (start, pos)
            elif wire == 1:
                if pos + 8 > end:
                    raise DecodeError("truncated fixed64")
                value = buf[pos:pos + 8]
                pos += 8
            elif wire == 5:
                if pos + 4 > end:
                    raise DecodeError("truncated fixed32")
                value = buf[pos:pos + 4]
                pos += 4
            else:
                raise DecodeError(f"unsupported wire type {wire}")
            if f is None:
                continue  # unknown field: skipped
            _store(msg, f, wire, value, buf, depth)
        for f in cls._fields:
            v = getattr(msg, f.name)
            if v is None:
                if f.label == "required":
                    raise DecodeError(f"{cls.__name__}.{f.name} is required but missing")
                if f.default is not None:
                    object.__setattr__(msg, f.name, f.default)
        return msg


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _unzigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _wire_type(f: FieldDef) -> int:
    if f.message is not None or f.type in _LEN_TYPES:
        return 2
    if f.type in _FIXED64:
        return 1
    if f.type in _FIXED32:
        return 5
    return 0


def _encode_scalar_value(out: bytearray, f: FieldDef, v: Any) -> None:
    t = f.type
    if t in _FIXED64:
        out += struct.pack(_FIXED64[t], v)
    elif t in _FIXED32:
        out += struct.pack(_FIXED32[t], v)
    elif t in ("sint32", "sint64"):
        out += encode_varint(_zigzag(int(v)))
    elif t == "bool":
        out.append(1 if v else 0)
    else:
        v = int(v)
        if v < 0 and t in ("uint32", "uint64"):
            raise ValueError(f"{f.name}: negative value for {t}")
        out += encode_varint(v)


def _encode_field(out: bytearray, f: FieldDef, v: Any) -> None:
    if f.message is not None:
        if not isinstance(v, Message):
            v = f.message(**v)
        body = v.encode()
        out += encode_varint((f.number << 3) | 2)
        out += encode_varint(len(body))
        out += body
    elif f.type in _LEN_TYPES:
        if f.type == "string":
            if not isinstance(v, str):
                raise TypeError(f"{f.name} is a string")
            data = v.encode()
        else:
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise TypeError(f"{f.name} is bytes")
            data = v
        out += encode_varint((f.number << 3) | 2)
        out += encode_varint(len(data))
        out += data
    else:
        out += encode_varint((f.number << 3) | _wire_type(f))
        _encode_scalar_value(out, f, v)


def _scalar_from(f: FieldDef, wire: int, value: Any, buf: bytes | bytearray) -> Any:
    t = f.type
    if t in _FIXED64 or t in _FIXED32:
        fmt = _FIXED64.get(t) or _FIXED32[t]
        if wire != (1 if t in _FIXED64 else 5):
            raise DecodeError(f"{f.name}: wrong wire type {wire}")
        return struct.unpack(fmt, value)[0]
    if wire != 0:
        raise DecodeError(f"{f.name}: wrong wire type {wire}")
    if t == "bool":
        return value != 0
    if t in ("sint32", "sint64"):
        return _unzigzag(value)
    if t in ("int32", "int64") or f.enum:
        return value - (1 << 64) if value >> 63 else value
    return value  # uint32 too: JS protocol-buffers reads (and writes) the whole varint, unclipped


def _value_from(f: FieldDef, wire: int, value: Any, buf: bytes | bytearray, depth: int) -> Any:
    if f.message is not None:
        if wire != 2:
            raise DecodeError(f"{f.name}: wrong wire type {wire}")
        return f.message._decode(buf, value[0], value[1], depth + 1)
    if f.type == "bytes":
        if wire != 2:
            raise DecodeError(f"{f.name}: wrong wire type {wire}")
        return bytes(buf[value[0]:value[1]])
    if f.type == "string":
        if wire != 2:
            raise DecodeError(f"{f.name}: wrong wire type {wire}")
        try:
            return bytes(buf[value[0]:value[1]]).decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{f.name}: invalid UTF-8") from None
    return _scalar_from(f, wire, value, buf)


def _store(msg: Message, f: FieldDef, wire: int, value: Any, buf: bytes | bytearray, depth: int) -> None:
    if f.label == "repeated":
        lst = getattr(msg, f.name)
        if wire == 2 and f.message is None and f.type not in _LEN_TYPES:
            pos, end = value
            while pos < end:  # packed scalars
                if f.type in _FIXED64 or f.type in _FIXED32:
                    size = 8 if f.type in _FIXED64 else 4
                    if pos + size > end:
                        raise DecodeError(f"{f.name}: truncated packed field")
                    lst.append(_scalar_from(f, 1 if size == 8 else 5, buf[pos:pos + size], buf))
                    pos += size
                else:
                    v, pos = decode_varint(buf, pos)
                    if pos > end:
                        raise DecodeError(f"{f.name}: packed varint past the end")
                    lst.append(_scalar_from(f, 0, v, buf))
            return
        if len(lst) >= 1 << 20:
            raise DecodeError(f"{f.name}: too many elements")
        lst.append(_value_from(f, wire, value, buf, depth))
    elif f.label == "map":
        if wire != 2:
            raise DecodeError(f"{f.name}: wrong wire type {wire}")
        entry = f.message._decode(buf, value[0], value[1], depth + 1)
        key = entry.key if entry.key is not None else _zero(f.key_type)
        val = entry.value if entry.value is not None else _zero(f.type)
        getattr(msg, f.name)[key] = val
    else:
        object.__setattr__(msg, f.name, _value_from(f, wire, value, buf, depth))


def _zero(t: str) -> Any:
    return "" if t == "string" else b"" if t == "bytes" else False if t == "bool" else 0


def _default(f: FieldDef) -> Any:
    raw = f.default
    if raw is None:
        return None
    if f.type == "bool":
        return raw == "true"
    if f.type in _LEN_TYPES:
        return raw.strip('"') if f.type == "string" else raw.strip('"').encode()
    if f.type in ("float", "double"):
        return float(raw)
    try:
        return int(raw)
    except ValueError:
        return raw


def _build(defs: list[MessageDef], ns: SimpleNamespace, scope: dict[str, Any], prefix: str = "") -> None:
    # first create classes (so fields can refer to any message), then resolve field types
    for d in defs:
        names = tuple(f.name for f in d.fields)
        cls = type(d.name, (Message,), {"__slots__": names, "_names": names,
                                         "__qualname__": prefix + d.name})
        setattr(ns, d.name, cls)
        scope[prefix + d.name] = cls
        scope.setdefault(d.name, cls)
        inner = SimpleNamespace()
        _build(d.nested, inner, scope, prefix + d.name + ".")
        for k, v in vars(inner).items():
            setattr(cls, k, v)
    for d in defs:
        cls = scope[prefix + d.name]
        fields = []
        for f in d.fields:
            f = FieldDef(**vars(f))
            if f.type in d.enums:
                f.enum = True
                f.type = "int32"
            elif f.type not in _SCALARS:
                target = scope.get(prefix + d.name + "." + f.type) or scope.get(f.type)
                if target is None:
                    raise ValueError(f"{d.name}.{f.name}: unknown type {f.type}")
                f.message = target
            if f.label == "map":
                entry_name = f"{d.name}_{f.name}_Entry"
                entry = type(entry_name, (Message,), {"__slots__": ("key", "value"),
                                                       "_names": ("key", "value")})
                kf = FieldDef("optional", f.key_type, "key", 1)
                vf = FieldDef("optional", f.type if f.message is None else f.type, "value", 2,
                              message=f.message)
                entry._fields = (kf, vf)
                entry._by_number = {1: kf, 2: vf}
                f.message = entry  # a map is a repeated entry message on the wire
            f.default = _default(f)
            fields.append(f)
        cls._fields = tuple(fields)
        cls._by_number = {f.number: f for f in fields}
    for d in defs:
        _specialise(scope[prefix + d.name])


# -- specialised code for each message (the replication hot path decodes tens of thousands a second) --

_FAST_VARINT = {"uint32", "uint64", "int32", "int64", "bool"}


def _can_specialise(fields: tuple[FieldDef, ...]) -> bool:
    for f in fields:
        if f.label == "map" or f.packed or keyword.iskeyword(f.name):  # dht-rpc's Holepunch has `from`
            return False
        if f.message is None and f.type not in _FAST_VARINT and f.type not in _LEN_TYPES and not f.enum:
            return False
    return True


def _specialise(cls: type[Message]) -> None:
    fields = cls._fields
    if not _can_specialise(fields):
        return
    env: dict[str, Any] = {"DecodeError": DecodeError, "_dv": decode_varint, "_ev": encode_varint,
                           "Message": Message, "_skip": _skip_field}
    dec = ["def _decode(cls, buf, pos, end, depth):",
           "    if depth > 32:",
           "        raise DecodeError('messages nested too deeply')"]
    for i, f in enumerate(fields):
        dec.append(f"    v{i} = []" if f.label == "repeated" else f"    v{i} = None")
    dec.append("    while pos < end:")
    dec.append("        tag = buf[pos]")
    dec.append("        if tag < 128:")
    dec.append("            pos += 1")
    dec.append("        else:")
    dec.append("            tag, pos = _dv(buf, pos)")
    first = True
    for i, f in enumerate(fields):
        kw = "if" if first else "elif"
        first = False

        def store(expr: str, i: int = i, f: FieldDef = f) -> str:
            return f"v{i}.append({expr})" if f.label == "repeated" else f"v{i} = {expr}"

        if f.message is None and f.type not in _LEN_TYPES:  # varint
            dec.append(f"        {kw} tag == {(f.number << 3) | 0}:")
            dec.append("            if pos < end and buf[pos] < 128:")
            dec.append("                x = buf[pos]")
            dec.append("                pos += 1")
            dec.append("            else:")
            dec.append("                x, pos = _dv(buf, pos)")
            if f.type == "bool":
                dec.append("            " + store("x != 0"))
            elif f.type in ("int32", "int64") or f.enum:
                dec.append("            " + store("x - 18446744073709551616 if x >> 63 else x"))
            else:
                dec.append("            " + store("x"))
        else:
            dec.append(f"        {kw} tag == {(f.number << 3) | 2}:")
            dec.append("            if pos < end and buf[pos] < 128:")
            dec.append("                n = buf[pos]")
            dec.append("                pos += 1")
            dec.append("            else:")
            dec.append("                n, pos = _dv(buf, pos)")
            dec.append("            e = pos + n")
            dec.append("            if e > end:")
            dec.append(f"                raise DecodeError('{cls.__name__}.{f.name}: length past the end')")
            if f.message is not None:
                env[f"M{i}"] = f.message
                dec.append("            " + store(f"M{i}._decode(buf, pos, e, depth + 1)"))
            elif f.type == "bytes":
                dec.append("            " + store("buf[pos:e]"))
            else:
                dec.append("            try:")
                dec.append("                " + store("buf[pos:e].decode('utf-8')"))
                dec.append("            except UnicodeDecodeError:")
                dec.append(f"                raise DecodeError('{cls.__name__}.{f.name}: "
                           "invalid UTF-8') from None")
            dec.append("            pos = e")
    known = {f.number for f in fields}
    env["KNOWN"] = frozenset(known)
    dec.append(f"        {'elif' if fields else 'if'} (tag >> 3) in KNOWN:")
    dec.append(f"            raise DecodeError('{cls.__name__}: wrong wire type for field %d' % (tag >> 3))")
    dec.append("        else:")
    dec.append("            pos = _skip(buf, pos, end, tag)")
    dec.append("    if pos > end:")
    dec.append(f"        raise DecodeError('{cls.__name__}: field runs past the end')")
    for i, f in enumerate(fields):
        if f.label == "required":
            dec.append(f"    if v{i} is None:")
            dec.append(f"        raise DecodeError('{cls.__name__}.{f.name} is required but missing')")
        elif f.default is not None:
            env[f"D{i}"] = f.default
            dec.append(f"    if v{i} is None:")
            dec.append(f"        v{i} = D{i}")
    dec.append("    obj = cls.__new__(cls)")
    for i, f in enumerate(fields):
        dec.append(f"    obj.{f.name} = v{i}")
    dec.append("    return obj")

    enc = ["def _encode_into(self, out):"]
    for i, f in enumerate(fields):
        tag = (f.number << 3) | (0 if (f.message is None and f.type not in _LEN_TYPES) else 2)
        env[f"T{i}"] = encode_varint(tag)
        enc.append(f"    v = self.{f.name}")
        if f.label == "repeated":
            enc.append("    for x in v:")
            ind = "        "
            var = "x"
        else:
            enc.append("    if v is None:")
            if f.label == "required":
                enc.append(f"        raise ValueError('{cls.__name__}.{f.name} is required')")
            else:
                enc.append("        pass")
            enc.append("    else:")
            ind = "        "
            var = "v"
        enc.append(f"{ind}out += T{i}")
        if f.message is not None:
            env[f"M{i}"] = f.message
            enc.append(f"{ind}b = ({var} if isinstance({var}, Message) else M{i}(**{var})).encode()")
            enc.append(f"{ind}out += _ev(len(b))")
            enc.append(f"{ind}out += b")
        elif f.type == "bytes":
            enc.append(f"{ind}if not isinstance({var}, (bytes, bytearray, memoryview)):")
            enc.append(f"{ind}    raise TypeError('{f.name} is bytes')")
            enc.append(f"{ind}out += _ev(len({var}))")
            enc.append(f"{ind}out += {var}")
        elif f.type == "string":
            enc.append(f"{ind}b = {var}.encode()")
            enc.append(f"{ind}out += _ev(len(b))")
            enc.append(f"{ind}out += b")
        elif f.type == "bool":
            enc.append(f"{ind}out.append(1 if {var} else 0)")
        else:
            if f.type.startswith("uint"):
                enc.append(f"{ind}if {var} < 0:")
                enc.append(f"{ind}    raise ValueError('{f.name}: negative value for {f.type}')")
            enc.append(f"{ind}if 0 <= {var} < 128:")
            enc.append(f"{ind}    out.append({var})")
            enc.append(f"{ind}else:")
            enc.append(f"{ind}    out += _ev({var})")
    enc.append("    return None")
    code = "\n".join(dec) + "\n\n" + "\n".join(enc) + "\n"
    exec(compile(code, f"<protobuf {cls.__qualname__}>", "exec"), env)
    cls._decode = classmethod(env["_decode"])  # type: ignore[assignment]
    cls._encode_into = env["_encode_into"]  # type: ignore[assignment]


def _skip_field(buf: bytes, pos: int, end: int, tag: int) -> int:
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


@cache
def load_schema(path: str) -> SimpleNamespace:
    """The message classes of a ``.proto`` file (a path relative to ``protocol/``, or absolute)."""
    p = Path(path)
    if not p.is_absolute():
        p = PROTOCOL_DIR / p
    ns = SimpleNamespace()
    _build(parse_proto(p.read_text()), ns, {})
    return ns
