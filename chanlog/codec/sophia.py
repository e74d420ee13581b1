"""Sophia type syntax, as ``chanlog decode --type`` takes it: ``int``, ``(address, string)``, ``list(option(int))``.

:func:`parse_type` reads a type written the way Sophia writes types (the Sophia language reference,
"Types"; ``aeso_parser`` ``type/0``) into a :class:`chanlog.codec.fate.Type`, the one type shape of the
codec: FATE values are checked against it (:func:`chanlog.codec.fate.conforms`) and AEVM heaps are read by
it (:func:`chanlog.codec.aevm.decode_typed`, which lays it out as the Sophia ABI does).

Accepted: ``int``, ``bool``, ``string``, ``bits``, ``address``, ``contract``, ``oracle``, ``oracle_query``,
``hash`` (``bytes(32)``), ``signature`` (``bytes(64)``), ``bytes(n)``, ``unit`` and ``()``,
``list(T)``, ``option(T)``, ``map(K, V)``, and tuples ``(T1, T2, ...)`` (``*`` between the elements, as
Sophia prints tuple types, is accepted too). Records and user-defined types are not: their layout is that of
a tuple or a variant, write that instead. Errors are :class:`~chanlog.codec.errors.CodecError` naming the
character offset.
"""

from __future__ import annotations

import re

from chanlog.codec.errors import CodecError
from chanlog.codec.fate import MAX_DEPTH, Type

__all__ = ["parse_type", "MAX_TYPE_CHARS", "MAX_BYTES_SIZE"]

#: Longest type text read (characters): a type a person types; the longest type of a real function
#: signature is far shorter. Parsing is linear in the text.
MAX_TYPE_CHARS = 4096
#: Largest ``n`` of ``bytes(n)``: the Sophia compiler takes any size, the heap budget of a value does not
#: (:data:`chanlog.codec.fate.MAX_SIZE`); a type larger than the largest readable value is refused.
MAX_BYTES_SIZE = 8 * 1024 * 1024

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_']*(?:\.[A-Za-z_][A-Za-z0-9_']*)*)|(\d+)|([(),*]))")
#: Names that stand for one type, with no arguments.
_PLAIN = {"int": Type("int"), "bool": Type("bool"), "string": Type("string"), "bits": Type("bits"),
          "address": Type("address"), "contract": Type("contract"), "oracle": Type("oracle"),
          "oracle_query": Type("oracle_query"), "hash": Type("bytes", (32,)),
          "signature": Type("bytes", (64,)), "unit": Type("tuple")}
#: Type constructors and how many type arguments they take.
_APPLIED = {"list": 1, "option": 1, "map": 2}


def parse_type(text: str, what: str = "--type") -> Type:
    """The :class:`~chanlog.codec.fate.Type` that Sophia type ``text`` names (see the module's text).

    Raises :class:`CodecError` (path ``what``) naming the character where the text stops making sense."""
    if not isinstance(text, str) or not text.strip():
        raise CodecError("an empty type", None, [what])
    if len(text) > MAX_TYPE_CHARS:
        raise CodecError(f"{len(text):,} characters, more than the limit of {MAX_TYPE_CHARS:,}", None, [what])
    tokens: list[tuple[str, str, int]] = []  # (kind, text, offset)
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:
            at = len(text) - len(text[pos:].lstrip())
            raise CodecError(f"at character {at}: unexpected {text[at]!r}", None, [what])
        kind = "name" if m.group(1) else "number" if m.group(2) else m.group(3)
        tokens.append((kind, m.group(m.lastindex or 0), m.start(m.lastindex or 0)))
        pos = m.end()
    parser = _Parser(tokens, len(text), what)
    t = parser.type(0)
    if parser.i != len(tokens):
        parser.fail("more after the type")
    return t


class _Parser:
    """Recursive descent over the tokens; depth bounded by :data:`~chanlog.codec.fate.MAX_DEPTH`."""

    def __init__(self, tokens: list[tuple[str, str, int]], end: int, what: str) -> None:
        self.tokens, self.end, self.what, self.i = tokens, end, what, 0

    def fail(self, message: str) -> None:
        at = self.tokens[self.i][2] if self.i < len(self.tokens) else self.end
        raise CodecError(f"at character {at}: {message}", None, [self.what])

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            self.fail(f"expected {kind if kind != 'name' else 'a type'}")
        value = self.tokens[self.i][1]
        self.i += 1
        return value

    def type(self, depth: int) -> Type:
        if depth > MAX_DEPTH:
            self.fail(f"nested deeper than {MAX_DEPTH}")
        if self.peek() == "(":
            self.i += 1
            if self.peek() == ")":
                self.i += 1
                return Type("tuple")
            items = [self.type(depth + 1)]
            while self.peek() in (",", "*"):
                self.i += 1
                items.append(self.type(depth + 1))
            self.take(")")
            return items[0] if len(items) == 1 else Type("tuple", tuple(items))
        name = self.take("name")
        if name in _PLAIN:
            return _PLAIN[name]
        if name == "bytes":
            self.take("(")
            size = int(self.take("number"))
            if size > MAX_BYTES_SIZE:
                self.i -= 1
                self.fail(f"bytes({size}) is larger than the limit of {MAX_BYTES_SIZE:,}")
            self.take(")")
            return Type("bytes", (size,))
        if name in _APPLIED:
            self.take("(")
            args = [self.type(depth + 1)]
            for _ in range(_APPLIED[name] - 1):
                self.take(",")
                args.append(self.type(depth + 1))
            self.take(")")
            if name == "list":
                return Type("list", (args[0],))
            if name == "map":
                return Type("map", (args[0], args[1]))
            return Type("variant", (Type("tuple"), Type("tuple", (args[0],))))
        self.i -= 1
        self.fail(f"unknown type {name!r} (int, bool, string, bits, address, contract, oracle, hash, signature, "
                  "bytes(n), unit, list(T), option(T), map(K, V), (T1, T2, ...); records as tuples)")
        raise AssertionError  # fail raised
