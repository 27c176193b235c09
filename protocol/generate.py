"""Generate hypernode/messages/ (typed message classes) from the .proto schemas in this folder.

    python protocol/generate.py            # rewrite hypernode/messages/*.py
    python protocol/generate.py --check    # exit 1 if a generated file is not current

The schemas here are the one source of the message formats; the generated modules are committed, and
tests/test_messages.py fails when they differ from what this script writes. It reads the proto2 subset
the JS stack uses (messages, nested messages, enums, optional/required/repeated fields, ``[packed=true]``,
``[default = ...]``, ``map<,>``) with its comments, and writes one module per schema: a class per
message with ``__slots__``, typed attributes, a keyword-only constructor, ``encode_into`` and
``decode`` as straight-line code for that message (the replication hot path decodes tens of thousands of
messages a second). The encoding is the JS ``protocol-buffers`` compiler's: fields in declaration order,
unset optional fields omitted, packed fields as one length-delimited run, an int32 below zero as
``2**32 + n``, a map as repeated key/value entries. Decoding raises only ``DecodeError`` for malformed
bytes. This script runs at build time only: nothing in the package parses a schema.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROTOCOL_DIR = Path(__file__).resolve().parent
ROOT = PROTOCOL_DIR.parent
OUT_DIR = ROOT / "hypernode" / "messages"
LINE = 110

# -- parsing ---------------------------------------------------------------------------------------

VARINT_TYPES = {"uint32", "uint64", "int32", "int64", "bool", "sint32", "sint64"}
FIXED64 = {"fixed64": "<Q", "sfixed64": "<q", "double": "<d"}
FIXED32 = {"fixed32": "<I", "sfixed32": "<i", "float": "<f"}
LEN_TYPES = {"string", "bytes"}
SCALARS = VARINT_TYPES | set(FIXED64) | set(FIXED32) | LEN_TYPES


@dataclass
class FieldDef:
    label: str  # optional, required, repeated, map
    type: str  # a scalar type, or a message or enum name as written in the schema
    name: str
    number: int
    packed: bool = False
    default: str | None = None  # as written in the schema
    key_type: str = ""  # maps only
    doc: str = ""


@dataclass
class EnumDef:
    name: str
    values: list[tuple[str, int, str]] = field(default_factory=list)  # name, number, comment
    doc: str = ""


@dataclass
class MessageDef:
    name: str
    fields: list[FieldDef] = field(default_factory=list)  # in declaration order
    nested: list[MessageDef] = field(default_factory=list)
    enums: list[EnumDef] = field(default_factory=list)
    doc: str = ""


@dataclass
class Schema:
    doc: str
    messages: list[MessageDef]
    enums: list[EnumDef]


_TOKEN = re.compile(r'(?P<comment>//[^\n]*|/\*.*?\*/)|(?P<nl>\n)|(?P<tok>"(?:[^"\\]|\\.)*"|[A-Za-z_][\w.]*'
                    r'|-?\d+(?:\.\d+)?|[{}=;<>,\[\]()])|(?P<space>[ \t\r]+)|(?P<bad>.)', re.S)


class _Tokens:
    """Tokens with the comment block before each statement and the comment after it on its line."""

    def __init__(self, text: str) -> None:
        self.toks: list[tuple[str, int]] = []  # (token, line)
        self.comments: dict[int, list[str]] = {}  # line -> comments on it
        line = 1
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            s = m.group()
            if kind == "bad":
                raise ValueError(f"line {line}: unexpected character {s!r}")
            if kind == "tok":
                self.toks.append((s, line))
            elif kind == "comment":
                body = s[2:-2] if s.startswith("/*") else s[2:]
                self.comments.setdefault(line, []).append(body.strip())
            line += s.count("\n")
        self.pos = 0

    def peek(self, ahead: int = 0) -> str:
        return self.toks[self.pos + ahead][0] if self.pos + ahead < len(self.toks) else ""

    def take(self) -> str:
        if self.pos >= len(self.toks):
            raise ValueError("unexpected end of schema")
        tok = self.toks[self.pos][0]
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        got = self.take()
        if got != tok:
            raise ValueError(f"line {self.line()}: expected {tok!r}, found {got!r}")

    def line(self) -> int:
        return self.toks[min(self.pos, len(self.toks) - 1)][1]

    def doc_before(self) -> str:
        """The comment lines directly above the current token (no blank line in between)."""
        line = self.line() - 1
        out: list[str] = []
        while line in self.comments and not self._has_token(line):
            out[:0] = self.comments[line]
            line -= 1
        return " ".join(out)

    def doc_after(self, line: int) -> str:
        """The comment that ends a statement's line."""
        return " ".join(self.comments.get(line, []))

    def _has_token(self, line: int) -> bool:
        return any(t_line == line for _, t_line in self.toks[max(0, self.pos - 40):self.pos])


def parse_proto(text: str) -> Schema:
    """The messages and enums of a proto2 schema, with their comments."""
    t = _Tokens(text)
    first_line = t.toks[0][1] if t.toks else 1
    header = [c for line in sorted(t.comments) if line < first_line for c in t.comments[line]]

    def skip_statement() -> None:
        while t.take() != ";":
            pass

    def parse_enum() -> EnumDef:
        e = EnumDef(t.take(), doc="")
        t.expect("{")
        while t.peek() != "}":
            if t.peek() == "option":
                skip_statement()
                continue
            line = t.line()
            name = t.take()
            t.expect("=")
            number = int(t.take())
            if number < 0:
                raise ValueError(f"enum {e.name}.{name}: negative values are not supported")
            skip_statement()
            e.values.append((name, number, t.doc_after(line)))
        t.take()
        return e

    def parse_message() -> MessageDef:
        msg = MessageDef(t.take())
        t.expect("{")
        while t.peek() != "}":
            doc = t.doc_before()
            line = t.line()
            tok = t.peek()
            if tok == "message":
                t.take()
                nested = parse_message()
                nested.doc = doc
                msg.nested.append(nested)
            elif tok == "enum":
                t.take()
                e = parse_enum()
                e.doc = doc
                msg.enums.append(e)
            elif tok in ("option", "reserved", "extensions"):
                skip_statement()
            elif tok == "map":
                t.take()
                t.expect("<")
                ktype = t.take()
                t.expect(",")
                vtype = t.take()
                t.expect(">")
                name = t.take()
                t.expect("=")
                number = int(t.take())
                t.expect(";")
                msg.fields.append(FieldDef("map", vtype, name, number, key_type=ktype,
                                           doc=_join(doc, t.doc_after(line))))
            else:
                label = "optional"
                if tok in ("optional", "required", "repeated"):
                    label = t.take()
                ftype = t.take()
                name = t.take()
                t.expect("=")
                number = int(t.take())
                f = FieldDef(label, ftype, name, number)
                if t.peek() == "[":
                    t.take()
                    while t.peek() != "]":
                        opt = t.take()
                        t.expect("=")
                        val = t.take()
                        if opt == "packed":
                            f.packed = val == "true"
                        elif opt == "default":
                            f.default = val
                        if t.peek() == ",":
                            t.take()
                    t.take()
                t.expect(";")
                f.doc = _join(doc, t.doc_after(line))
                msg.fields.append(f)
        t.take()
        return msg

    messages: list[MessageDef] = []
    enums: list[EnumDef] = []
    while t.peek():
        doc = t.doc_before()
        tok = t.take()
        if tok == "message":
            m = parse_message()
            m.doc = doc
            messages.append(m)
        elif tok == "enum":
            e = parse_enum()
            e.doc = doc
            enums.append(e)
        else:  # syntax, package, option, import
            while t.take() != ";":
                pass
    return Schema(" ".join(header), messages, enums)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


# -- code generation -------------------------------------------------------------------------------

_BUILTIN_TYPES = {"int", "bool", "str", "bytes", "float", "list", "dict"}
_RESERVED = {"encode", "decode", "encode_into", "to_dict"}
# the names a generated module imports or defines itself
_MODULE_NAMES = {"Buffer", "DecodeError", "as_bytes", "skip_field", "IntEnum", "struct", "builtins",
                 "annotations"}
_TWO_64 = "0x10000000000000000"


def module_name(proto: str) -> str:
    return Path(proto).stem.replace("-", "_")


def attr_name(name: str) -> str:
    """A field's Python name: the schema's (``discoveryKey``), with ``_`` after a keyword (``from_``)."""
    out = name + "_" if keyword.iskeyword(name) else name
    if out in _RESERVED or out.startswith("_"):
        raise ValueError(f"field name {name!r} is not supported")
    return out


def _tag(number: int, wire: int) -> int:
    return (number << 3) | wire


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _wrap(text: str, indent: str, width: int = LINE) -> list[str]:
    words = text.split()
    lines: list[str] = []
    cur = ""
    for w in words:
        if cur and len(indent) + len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        lines.append(cur)
    return [indent + line for line in lines]


def _docstring(text: str, indent: str, capitalize: bool = True) -> list[str]:
    text = text.replace("\\", "\\\\").replace('"""', "'''")
    if not text.endswith("."):
        text += "."
    if capitalize:
        text = text[0].upper() + text[1:]
    one = f'{indent}"""{text}"""'
    if len(one) <= LINE:
        return [one]
    body = _wrap(f'"""{text}', indent, LINE)
    body[-1] += '"""'
    if len(body[-1]) > LINE:
        body[-1] = body[-1][:-3]
        body.append(indent + '"""')
    return body


@dataclass
class _F:
    """A field resolved for code generation."""

    d: FieldDef
    attr: str
    kind: str  # varint, fixed64, fixed32, bytes, string, message, enum
    py: str  # the Python type of one value
    target: str = ""  # message: the class's qualified name
    default: str | None = None  # Python literal
    # maps: the entry's key and value fields
    key: _F | None = None
    value: _F | None = None

    @property
    def wire(self) -> int:
        if self.kind in ("bytes", "string", "message"):
            return 2
        return {"fixed64": 1, "fixed32": 5}.get(self.kind, 0)

    @property
    def repeated(self) -> bool:
        return self.d.label == "repeated"

    @property
    def packable(self) -> bool:
        return self.repeated and self.wire != 2

    def annotation(self, shadowed: set[str]) -> str:
        def t(name: str) -> str:
            return f"builtins.{name}" if name in shadowed else name
        if self.d.label == "map":
            assert self.key is not None and self.value is not None
            return f"{t('dict')}[{self.key.py_type(shadowed)}, {self.value.py_type(shadowed)}]"
        one = self.py_type(shadowed)
        if self.repeated:
            return f"{t('list')}[{one}]"
        if self.d.label == "required":
            return one
        return f"{one} | None"

    def py_type(self, shadowed: set[str]) -> str:
        return f"builtins.{self.py}" if self.py in shadowed else self.py


class _Gen:
    def __init__(self, schema: Schema, source: str) -> None:
        self.schema = schema
        self.source = source
        self.lines: list[str] = []
        self.messages: dict[str, MessageDef] = {}  # qualified name -> def
        self.enums: dict[str, EnumDef] = {}
        self.uses: set[str] = set()  # the imports the code needs
        self.structs: set[str] = set()  # struct formats of fixed-width fields
        for e in schema.enums:
            if e.name in _MODULE_NAMES:
                raise ValueError(f"{self.source}: an enum may not be named {e.name}")
            self.enums[e.name] = e
        self._index(schema.messages, "")
        self._check_not_recursive()

    def _index(self, defs: list[MessageDef], prefix: str) -> None:
        for m in defs:
            if not prefix and m.name in _MODULE_NAMES:
                raise ValueError(f"{self.source}: a message may not be named {m.name}")
            q = prefix + m.name
            self.messages[q] = m
            for e in m.enums:
                self.enums[q + "." + e.name] = e
            self._index(m.nested, q + ".")

    def _resolve(self, name: str, scope: str) -> tuple[str, str]:
        """``("message" | "enum", qualified name)`` of a type named in message ``scope``, searched from
        the innermost scope outwards, as the JS compiler does."""
        parts = scope.split(".")
        for i in range(len(parts), -1, -1):
            q = ".".join([*parts[:i], name])
            if q in self.messages:
                return "message", q
            if q in self.enums:
                return "enum", q
        raise ValueError(f"{self.source}: {scope}: unknown type {name}")

    def _check_not_recursive(self) -> None:
        def visit(q: str, path: list[str]) -> None:
            if q in path:
                chain = " -> ".join([*path, q])
                raise ValueError(f"{self.source}: recursive message {chain} is not supported")
            for f in self.messages[q].fields:
                if f.type not in SCALARS and self._resolve(f.type, q)[0] == "message":
                    visit(self._resolve(f.type, q)[1], [*path, q])
        for q in self.messages:
            visit(q, [])

    def _field(self, f: FieldDef, scope: str) -> _F:
        t = f.type
        if t in SCALARS:
            kind = ("varint" if t in VARINT_TYPES else "fixed64" if t in FIXED64 else "fixed32"
                    if t in FIXED32 else t)
            py = {"bool": "bool", "string": "str", "bytes": "bytes", "double": "float",
                  "float": "float"}.get(t, "int")
            out = _F(f, attr_name(f.name), kind, py)
        else:
            what, q = self._resolve(t, scope)
            if what == "enum":
                out = _F(f, attr_name(f.name), "enum", "int", target=q)
            else:
                out = _F(f, attr_name(f.name), "message", q, target=q)
        if f.packed and not out.packable:
            raise ValueError(f"{self.source}: {scope}.{f.name}: only repeated scalars can be packed")
        if f.default is not None:
            out.default = self._default(out, f.default, scope)
        if f.label == "map":
            out.key = self._field(FieldDef("optional", f.key_type, "key", 1), scope)
            out.value = self._field(FieldDef("optional", f.type, "value", 2), scope)
            if out.key.kind not in ("varint", "string", "fixed32", "fixed64"):
                raise ValueError(f"{self.source}: {scope}.{f.name}: map keys are integers or strings")
        return out

    def _default(self, f: _F, raw: str, scope: str) -> str:
        if f.kind == "enum":
            e = self.enums[f.target]
            for name, number, _ in e.values:
                if name == raw:
                    return str(number)
            raise ValueError(f"{self.source}: {scope}.{f.d.name}: unknown enum default {raw}")
        if f.py == "bool":
            return "True" if raw == "true" else "False"
        if f.py == "str":
            return repr(raw.strip('"'))
        if f.py == "bytes":
            return repr(raw.strip('"').encode())
        if f.py == "float":
            return repr(float(raw))
        return str(int(raw))

    # -- the module --------------------------------------------------------------------------------

    def module(self) -> str:
        body: list[str] = []
        for e in self.schema.enums:
            body += self._enum(e, "")
            body += ["", ""]
        for m in self.schema.messages:
            body += self._class(m, "", "")
            body += ["", ""]
        functions: list[str] = []
        for q, m in self.messages.items():
            functions += self._decoder(q, m)
            functions += ["", ""]
            for f in m.fields:
                if f.label == "map":
                    functions += self._map_entry_decoder(q, self._field(f, q))
                    functions += ["", ""]
        names = [e.name for e in self.schema.enums] + [m.name for m in self.schema.messages]
        code = "\n".join(body + functions)
        self.uses = {u for u in ("builtins", "IntEnum") if f"{u}." in code or f"({u})" in code}
        if self.structs:
            self.uses.add("struct")
        text = self._header(names) + body + functions
        while text and text[-1] == "":
            text.pop()
        return "\n".join(text) + "\n"

    def _header(self, names: list[str]) -> list[str]:
        doc = self.schema.doc or f"The messages of {self.source}."
        out = _docstring(f"{doc} Generated from protocol/{self.source} by protocol/generate.py: do not edit "
                         "by hand, edit the schema and run the script.", "", capitalize=False)
        out += ["", "from __future__ import annotations", ""]
        std = []
        if "builtins" in self.uses:
            std.append("import builtins")
        if "struct" in self.uses:
            std.append("import struct")
        if "IntEnum" in self.uses:
            std.append("from enum import IntEnum")
        if std:
            out += std + [""]
        out.append("from hypernode.protobuf import Buffer, DecodeError, as_bytes, skip_field")
        out.append("from hypernode.protobuf import Message as _Message")
        out.append("from hypernode.varint import decode_varint as _dv")
        out.append("from hypernode.varint import encode_varint as _ev")
        out.append("")
        out += _wrap_list("__all__ = [", [repr(n) for n in names], "]")
        out += ["", "_new = object.__new__", ""]
        for fmt in sorted(self.structs):
            out.append(f"_{_struct_name(fmt)} = struct.Struct({fmt!r})")
        if self.structs:
            out.append("")
        out.append("")
        return out

    def _enum(self, e: EnumDef, indent: str) -> list[str]:
        out = [f"{indent}class {e.name}(IntEnum):"]
        out += _docstring(e.doc or f"The values of the {e.name} enum.", indent + "    ")
        out.append("")
        for name, number, doc in e.values:
            if doc:
                out += _wrap(f"#: {doc}", indent + "    ")
            out.append(f"{indent}    {name} = {number}")
        return out

    def _class(self, m: MessageDef, prefix: str, indent: str) -> list[str]:
        q = prefix + m.name
        fields = [self._field(f, q) for f in m.fields]
        attrs = [f.attr for f in fields]
        if len(set(attrs)) != len(attrs):
            raise ValueError(f"{self.source}: {q}: two fields with one name")
        shadowed = {a for a in attrs if a in _BUILTIN_TYPES}
        i1 = indent + "    "
        i2 = i1 + "    "
        out = [f"{indent}class {m.name}(_Message):"]
        out += _docstring(m.doc or f"The {m.name} message.", i1)
        out.append("")
        out += _wrap_list(f"{i1}__slots__ = (", [repr(a) for a in attrs], ")")
        out += _wrap_list(f"{i1}__match_args__ = (", [repr(a) for a in attrs], ")")
        for e in m.enums:
            out.append("")
            out += self._enum(e, i1)
        for n in m.nested:
            out.append("")
            out += self._class(n, q + ".", i1)
        if fields:
            out.append("")
        for f in fields:
            if f.d.doc:
                out += _wrap(f"#: {f.d.doc}", i1)
            out.append(f"{i1}{f.attr}: {f.annotation(shadowed)}")
        # constructor
        params = []
        for f in fields:
            ann = f.annotation(shadowed)
            if f.d.label == "required":
                params.append(f"{f.attr}: {ann}")
            elif f.repeated or f.d.label == "map":
                params.append(f"{f.attr}: {ann} | None = None")
            else:
                params.append(f"{f.attr}: {ann} = None")
        out.append("")
        if params:
            one = f"{i1}def __init__(self, *, {', '.join(params)}) -> None:"
            if len(one) <= LINE:
                out.append(one)
            else:
                out.append(f"{i1}def __init__(")
                out.append(f"{i2}self,")
                out.append(f"{i2}*,")
                out += [f"{i2}{p}," for p in params]
                out.append(f"{i1}) -> None:")
            for f in fields:
                if f.repeated:
                    out.append(f"{i2}self.{f.attr} = [] if {f.attr} is None else {f.attr}")
                elif f.d.label == "map":
                    out.append(f"{i2}self.{f.attr} = {{}} if {f.attr} is None else {f.attr}")
                else:
                    out.append(f"{i2}self.{f.attr} = {f.attr}")
        else:
            out.append(f"{i1}def __init__(self) -> None:")
            out.append(f"{i2}pass")
        # encoder
        out.append("")
        out.append(f"{i1}def encode_into(self, out: bytearray) -> None:")
        out.append(f'{i2}"""Append the encoding to ``out``."""')
        for i, f in enumerate(fields):
            out += self._encode_field(f, i, q, i2)
        # decoder
        fn = _fn(q)
        out.append("")
        out.append(f"{i1}@classmethod")
        out.append(f"{i1}def decode(cls, buf: Buffer) -> {q}:")
        out.append(f'{i2}"""The message encoded in ``buf``; :class:`DecodeError` if it is not one."""')
        out.append(f"{i2}if not isinstance(buf, bytes):")
        out.append(f"{i2}    buf = as_bytes(buf)")
        out.append(f"{i2}return {fn}(buf, 0, len(buf))")
        return out

    # -- encoding ----------------------------------------------------------------------------------

    def _encode_field(self, f: _F, i: int, q: str, ind: str) -> list[str]:
        v = f"v{i}"
        out = [f"{ind}{v} = self.{f.attr}"]
        where = f"{q}.{f.d.name}"
        if f.d.label == "map":
            assert f.key is not None and f.value is not None
            out.append(f"{ind}for k{i}, x{i} in {v}.items():")
            ind2 = ind + "    "
            out.append(f"{ind2}e{i} = bytearray()")
            out += self._encode_value(f.key, f"k{i}", f"e{i}", where + " key", ind2, f"k{i}")
            out.append(f"{ind2}if x{i} is not None:")
            out += self._encode_value(f.value, f"x{i}", f"e{i}", where + " value", ind2 + "    ", f"x{i}")
            out += self._emit_tag(_tag(f.d.number, 2), ind2)
            out += self._emit_len(f"len(e{i})", ind2)
            out.append(f"{ind2}out += e{i}")
        elif f.repeated and f.d.packed:
            out.append(f"{ind}if {v}:")
            ind2 = ind + "    "
            out.append(f"{ind2}p{i} = bytearray()")
            out.append(f"{ind2}for x{i} in {v}:")
            out += self._encode_value(f, f"x{i}", f"p{i}", where, ind2 + "    ", f"x{i}", tag=False)
            out += self._emit_tag(_tag(f.d.number, 2), ind2)
            out += self._emit_len(f"len(p{i})", ind2)
            out.append(f"{ind2}out += p{i}")
        elif f.repeated:
            out.append(f"{ind}for x{i} in {v}:")
            out += self._encode_value(f, f"x{i}", "out", where, ind + "    ", f"x{i}")
        elif f.d.label == "required":
            out.append(f"{ind}if {v} is None:")
            out.append(f"{ind}    raise ValueError({where + ' is required'!r})")
            out += self._encode_value(f, v, "out", where, ind, v)
        else:
            out.append(f"{ind}if {v} is not None:")
            out += self._encode_value(f, v, "out", where, ind + "    ", v)
        return out

    def _emit_tag(self, tag: int, ind: str, out: str = "out") -> list[str]:
        b = _varint_bytes(tag)
        if len(b) == 1:
            return [f"{ind}{out}.append({b[0]})"]
        return [f"{ind}{out} += {b!r}"]

    def _emit_len(self, n: str, ind: str, out: str = "out") -> list[str]:
        return [f"{ind}n = {n}",
                f"{ind}if n < 128:",
                f"{ind}    {out}.append(n)",
                f"{ind}else:",
                f"{ind}    {out} += _ev(n)"]

    def _encode_value(self, f: _F, v: str, out: str, where: str, ind: str, tmp: str,
                      tag: bool = True) -> list[str]:
        """Lines appending value ``v`` of field ``f`` (with its tag) to ``out``; ``tmp`` names their
        temporaries apart from other fields'."""
        lines = self._emit_tag(_tag(f.d.number, f.wire), ind, out) if tag else []
        t = f.d.type
        if f.kind == "message":
            lines.append(f"{ind}b{tmp} = bytearray()")
            lines.append(f"{ind}{v}.encode_into(b{tmp})")
            lines += self._emit_len(f"len(b{tmp})", ind, out)
            lines.append(f"{ind}{out} += b{tmp}")
        elif f.kind == "bytes":
            lines.append(f"{ind}if not isinstance({v}, (bytes, bytearray, memoryview)):")
            lines.append(f"{ind}    raise TypeError({where + ' is bytes'!r})")
            lines += self._emit_len(f"len({v})", ind, out)
            lines.append(f"{ind}{out} += {v}")
        elif f.kind == "string":
            lines.append(f"{ind}s{tmp} = {v}.encode()")
            lines += self._emit_len(f"len(s{tmp})", ind, out)
            lines.append(f"{ind}{out} += s{tmp}")
        elif f.kind in ("fixed64", "fixed32"):
            fmt = FIXED64.get(t) or FIXED32[t]
            self.structs.add(fmt)
            lines.append(f"{ind}{out} += _{_struct_name(fmt)}.pack({v})")
        elif t == "bool":
            lines.append(f"{ind}{out}.append(1 if {v} else 0)")
        elif t in ("sint32", "sint64"):
            lines.append(f"{ind}{out} += _ev(({v} << 1) ^ ({v} >> 63))")
        elif t == "int32":  # as JS: a negative int32 is written as 2**32 + n (five bytes)
            lines.append(f"{ind}if {v} < 0:")
            lines.append(f"{ind}    {out} += _ev({v} + 0x100000000)")
            lines.append(f"{ind}elif {v} < 128:")
            lines.append(f"{ind}    {out}.append({v})")
            lines.append(f"{ind}else:")
            lines.append(f"{ind}    {out} += _ev({v})")
        elif t == "int64":
            lines += self._emit_small_varint(v, ind, out)
        else:  # uint32, uint64, enums: JS writes (and reads) the whole varint, not clipped to 32 bits
            lines.append(f"{ind}if {v} < 128:")
            lines.append(f"{ind}    if {v} < 0:")
            lines.append(f"{ind}        raise ValueError({where + ': negative value for ' + t!r})")
            lines.append(f"{ind}    {out}.append({v})")
            lines.append(f"{ind}else:")
            lines.append(f"{ind}    {out} += _ev({v})")
        return lines

    def _emit_small_varint(self, v: str, ind: str, out: str) -> list[str]:
        return [f"{ind}if 0 <= {v} < 128:",
                f"{ind}    {out}.append({v})",
                f"{ind}else:",
                f"{ind}    {out} += _ev({v})"]

    # -- decoding ----------------------------------------------------------------------------------

    def _decoder(self, q: str, m: MessageDef) -> list[str]:
        fields = [self._field(f, q) for f in m.fields]
        shadowed: set[str] = set()  # functions live at module level: nothing is shadowed
        out = [f"def {_fn(q)}(buf: bytes, pos: int, end: int) -> {q}:"]
        out += self._decode_body(q, fields, shadowed)
        for i, f in enumerate(fields):
            if f.d.label == "required":
                out.append(f"    if v{i} is None:")
                out.append(f"        raise DecodeError({q + '.' + f.d.name + ' is required but missing'!r})")
            elif f.default is not None:
                out.append(f"    if v{i} is None:")
                out.append(f"        v{i} = {f.default}")
        out.append(f"    obj = _new({q})")
        for i, f in enumerate(fields):
            out.append(f"    obj.{f.attr} = v{i}")
        out.append("    return obj")
        return out

    def _map_entry_decoder(self, q: str, f: _F) -> list[str]:
        assert f.key is not None and f.value is not None
        entry = [f.key, f.value]
        kt, vt = f.key.py_type(set()), f.value.py_type(set())
        out = [f"def {_fn(q)}_{f.attr}_entry(buf: bytes, pos: int, end: int) -> tuple[{kt}, {vt}]:"]
        out += self._decode_body(f"{q}.{f.d.name}", entry, set())
        zero = {"str": "''", "bytes": "b''", "bool": "False", "float": "0.0", "int": "0"}
        kz = zero[f.key.py]
        if f.value.kind == "message":
            vz = f"{f.value.target}()"
        else:
            vz = zero[f.value.py]
        out.append(f"    return ({kz} if v0 is None else v0), ({vz} if v1 is None else v1)")
        return out

    def _decode_body(self, q: str, fields: list[_F], shadowed: set[str]) -> list[str]:
        out = []
        for i, f in enumerate(fields):
            if f.d.label == "map":
                assert f.key is not None and f.value is not None
                out.append(f"    v{i}: dict[{f.key.py}, {f.value.py}] = {{}}")
            elif f.repeated:
                out.append(f"    v{i}: list[{f.py}] = []")
            else:
                out.append(f"    v{i}: {f.py} | None = None")
        out.append("    try:")
        out.append("        while pos < end:")
        out.append("            tag = buf[pos]")
        out.append("            if tag < 128:")
        out.append("                pos += 1")
        out.append("            else:")
        out.append("                tag, pos = _dv(buf, pos)")
        ind = "                "
        kw = "if"
        for i, f in enumerate(fields):
            where = f"{q}.{f.d.name}"
            if f.d.label == "map":
                out.append(f"            {kw} tag == {_tag(f.d.number, 2)}:")
                out += self._read_len(ind, where)
                out.append(f"{ind}mk{i}, mv{i} = {_fn(q)}_{f.attr}_entry(buf, pos, e)")
                out.append(f"{ind}v{i}[mk{i}] = mv{i}")
                out.append(f"{ind}pos = e")
            else:
                store = (lambda expr, i=i: f"v{i}.append({expr})") if f.repeated else \
                    (lambda expr, i=i: f"v{i} = {expr}")
                out.append(f"            {kw} tag == {_tag(f.d.number, f.wire)}:")
                out += self._read_value(f, store, ind, where)
                if f.packable:  # a repeated scalar arrives packed or not, whatever the schema says
                    out.append(f"            elif tag == {_tag(f.d.number, 2)}:")
                    out += self._read_len(ind, where)
                    out.append(f"{ind}while pos < e:")
                    out += self._read_value(f, store, ind + "    ", where, packed_end="e")
                    out.append(f"{ind}if pos != e:")
                    msg = where + ": packed value runs past its field"
                    out.append(f"{ind}    raise DecodeError({msg!r})")
            kw = "elif"
        numbers = tuple(sorted({f.d.number for f in fields}))
        if numbers:
            known = f"(tag >> 3) == {numbers[0]}" if len(numbers) == 1 else f"(tag >> 3) in {numbers!r}"
            out.append(f"            elif {known}:")
            out.append(f"                raise DecodeError(f'{q}: wrong wire type for field {{tag >> 3}}')")
            out.append("            else:")
        else:
            out.append("            if True:")
        out.append("                pos = skip_field(buf, pos, end, tag)")
        out.append("    except IndexError:")
        out.append(f"        raise DecodeError({q + ': truncated'!r}) from None")
        out.append("    if pos > end:")
        out.append(f"        raise DecodeError({q + ': a field runs past the end'!r})")
        return out

    def _read_len(self, ind: str, where: str) -> list[str]:
        return [f"{ind}n = buf[pos]",
                f"{ind}if n < 128:",
                f"{ind}    pos += 1",
                f"{ind}else:",
                f"{ind}    n, pos = _dv(buf, pos)",
                f"{ind}e = pos + n",
                f"{ind}if e > end:",
                f"{ind}    raise DecodeError({where + ': length past the end'!r})"]

    def _read_value(self, f: _F, store: object, ind: str, where: str, packed_end: str = "") -> list[str]:
        assert callable(store)
        t = f.d.type
        out: list[str] = []
        if f.kind == "message":
            out += self._read_len(ind, where)
            out.append(ind + store(f"{_fn(f.target)}(buf, pos, e)"))
            out.append(f"{ind}pos = e")
        elif f.kind == "bytes":
            out += self._read_len(ind, where)
            out.append(ind + store("buf[pos:e]"))
            out.append(f"{ind}pos = e")
        elif f.kind == "string":
            out += self._read_len(ind, where)
            out.append(f"{ind}try:")
            out.append(ind + "    " + store("buf[pos:e].decode()"))
            out.append(f"{ind}except UnicodeDecodeError:")
            out.append(f"{ind}    raise DecodeError({where + ': invalid UTF-8'!r}) from None")
            out.append(f"{ind}pos = e")
        elif f.kind in ("fixed64", "fixed32"):
            size = 8 if f.kind == "fixed64" else 4
            fmt = FIXED64.get(t) or FIXED32[t]
            self.structs.add(fmt)
            limit = packed_end or "end"
            out.append(f"{ind}if pos + {size} > {limit}:")
            out.append(f"{ind}    raise DecodeError({where + ': truncated'!r})")
            out.append(ind + store(f"_{_struct_name(fmt)}.unpack_from(buf, pos)[0]"))
            out.append(f"{ind}pos += {size}")
        else:
            out.append(f"{ind}x = buf[pos]")
            out.append(f"{ind}if x < 128:")
            out.append(f"{ind}    pos += 1")
            out.append(f"{ind}else:")
            out.append(f"{ind}    x, pos = _dv(buf, pos)")
            if t == "bool":
                out.append(ind + store("x != 0"))
            elif t in ("sint32", "sint64"):
                out.append(ind + store("(x >> 1) ^ -(x & 1)"))
            elif t == "int64":
                out.append(ind + store(f"x - {_TWO_64} if x >> 63 else x"))
            elif t == "int32":  # as JS: above 2**31 - 1 is negative (and a ten-byte negative too)
                expr = f"x - {_TWO_64} if x >> 63 else x - 0x100000000 if x > 0x7FFFFFFF else x"
                out.append(ind + store(expr))
            else:
                out.append(ind + store("x"))
        return out


def _fn(q: str) -> str:
    return "_decode_" + q.replace(".", "_")


def _struct_name(fmt: str) -> str:
    return {"<Q": "u64", "<q": "i64", "<d": "f64", "<I": "u32", "<i": "i32", "<f": "f32"}[fmt]


def _wrap_list(head: str, items: list[str], tail: str) -> list[str]:
    if len(items) == 1 and tail == ")":
        one = f"{head}{items[0]},{tail}"
    else:
        one = f"{head}{', '.join(items)}{tail}"
    if len(one) <= LINE:
        return [one]
    indent = " " * len(head)
    lines = [head]
    for item in items:
        if len(lines[-1]) + len(item) + 2 > LINE:
            lines[-1] = lines[-1].rstrip()
            lines.append(indent)
        lines[-1] += item + ", "
    lines[-1] = lines[-1].rstrip().rstrip(",") + tail
    return lines


def generate_module(proto: Path) -> str:
    """The Python module for one schema file."""
    return _Gen(parse_proto(proto.read_text()), proto.name).module()


def generate_package(protocol_dir: Path = PROTOCOL_DIR) -> dict[str, str]:
    """``{file name: text}`` of every module of hypernode/messages/."""
    protos = sorted(protocol_dir.glob("*.proto"))
    files = {module_name(p.name) + ".py": generate_module(p) for p in protos}
    lines = ['"""The message classes generated from the schemas in ``protocol/``, one module per schema.',
             "",
             "Generated by protocol/generate.py: do not edit by hand, edit the schema and run the script.",
             "Import the module you need (``from hypernode.messages import hypercore_protocol``); this",
             "package imports none of them itself.",
             ""]
    lines += [f"- :mod:`~hypernode.messages.{module_name(p.name)}`: ``protocol/{p.name}``" for p in protos]
    lines.append('"""')
    lines.append("")
    lines += _wrap_list("MODULES = (", [repr(module_name(p.name)) for p in protos], ")")
    files["__init__.py"] = "\n".join(lines) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated file is not current")
    args = ap.parse_args(argv)
    files = generate_package()
    stale = [name for name, text in files.items()
             if not (OUT_DIR / name).exists() or (OUT_DIR / name).read_text() != text]
    extra = sorted(p.name for p in OUT_DIR.glob("*.py") if p.name not in files) if OUT_DIR.exists() else []
    if args.check:
        for name in stale + extra:
            print(f"hypernode/messages/{name} is not current: run python protocol/generate.py",
                  file=sys.stderr)
        return 1 if stale or extra else 0
    OUT_DIR.mkdir(exist_ok=True)
    for name in stale:
        (OUT_DIR / name).write_text(files[name])
        print(f"wrote hypernode/messages/{name}")
    for name in extra:
        (OUT_DIR / name).unlink()
        print(f"removed hypernode/messages/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
