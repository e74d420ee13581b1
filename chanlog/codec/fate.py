"""FATE values: call data, return values and the constants of FATE code, read and written byte-exact.

The format is the node's ``aeb_fate_encoding`` (aeternity/aebytecode; protocol ``fate.md``, "Serialization").
A value starts with a tag byte; the tags are data (:data:`VALUE_TAGS`, :data:`TYPE_TAGS`,
:data:`OBJECT_TYPES`), and each kind of value has one small reader and one small writer behind one dispatch
table (:data:`_READERS`, a 256-entry list indexed by the first byte; :data:`_WRITERS`, keyed by the Python
type of a value), like ``aepp-calldata``'s serializers.

Values in Python:

============================  ==================================================================
FATE                          Python
============================  ==================================================================
integer                       ``int``
boolean                       ``bool``
string                        ``str`` (bytes that are not UTF-8 are kept as surrogate escapes,
                              so the string writes back to the same bytes)
bytes(n)                      :class:`Bytes` (a ``bytes`` subclass)
address, contract, oracle,    :class:`Address` (``kind`` and 32-byte ``payload``; ``str()`` gives
oracle query, channel         ``ak_…``, ``ct_…``, ``ok_…``, ``oq_…``, ``ch_…``)
tuple (unit = ``()``)         ``tuple``
list                          :class:`List` (a ``tuple`` subclass)
map                           :class:`Map` (the key/value pairs in wire order)
store map                     :class:`StoreMap` (its id)
variant                       :class:`Variant` (arities, tag, values)
bits                          :class:`Bits`
type                          :class:`TypeRep` (a :class:`Type`)
contract bytearray            :class:`ContractBytearray` (a ``bytes`` subclass)
============================  ==================================================================

Decoding is strict where the node is (a negative zero, an integer, size or RLP length written with a leading
zero, a variant tag or arity that does not match, trailing bytes), so that every value that decodes writes
back to exactly the bytes it came from. Map keys are kept in wire order (the node's own key order is not
re-checked). Every error is a :class:`~chanlog.codec.errors.CodecError` naming the byte offset; sizes and
depth are limited by named constants (:data:`MAX_DEPTH`, :data:`MAX_INT_BYTES`, :data:`MAX_SIZE`), and
decoding is linear in the input: a count is checked against the bytes left before anything is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from chanlog.codec.errors import CodecError

__all__ = [
    "Type", "Bytes", "Address", "List", "Map", "StoreMap", "Variant", "Bits", "TypeRep", "ContractBytearray",
    "decode", "decode_one", "encode", "decode_type", "decode_type_one", "encode_type", "format_value",
    "to_json", "conforms", "MAX_DEPTH", "MAX_INT_BYTES", "MAX_SIZE", "VALUE_TAGS", "TYPE_TAGS", "OBJECT_TYPES",
    "ADDRESS_PREFIXES",
]

#: Deepest nesting of values or types read (lists in lists in tuples ...); deeper input is an error.
MAX_DEPTH = 64
#: Longest integer read, in bytes (2,466 decimal digits: printable by Python's default int/str limit).
MAX_INT_BYTES = 1024
#: Largest blob read, in bytes (call data, return values, FATE code).
MAX_SIZE = 8 * 1024 * 1024

#: Tag bytes of the fixed-tag values (``aeb_fate_encoding``: the ``xxxx 1111`` row and the long forms).
VALUE_TAGS: dict[int, str] = {
    0x01: "long_string", 0x0B: "long_tuple", 0x1F: "long_list", 0x2F: "map", 0x3F: "empty_tuple",
    0x4F: "pos_bits", 0x5F: "empty_string", 0x6F: "pos_big_int", 0x7F: "false", 0x8F: "contract_bytearray",
    0x9F: "object", 0xAF: "variant", 0xBF: "map_id", 0xCF: "neg_bits", 0xDF: "empty_map",
    0xEF: "neg_big_int", 0xFF: "true",
}
_TAG = {name: tag for tag, name in VALUE_TAGS.items()}
#: Type tag byte -> type name (``aeb_fate_encoding:serialize_type``); ``object`` is followed by an object type.
TYPE_TAGS: dict[int, str] = {
    0x07: "int", 0x17: "bool", 0x27: "list", 0x37: "tuple", 0x47: "object", 0x57: "bits", 0x67: "map",
    0x77: "string", 0x87: "variant", 0x97: "bytes", 0xA7: "contract_bytearray", 0xE7: "tvar", 0xF7: "any",
}
_TYPE_TAG = {name: tag for tag, name in TYPE_TAGS.items()}
#: Object type byte (after the ``object`` tag) -> kind; ``bytes`` is a value kind only, not a type.
OBJECT_TYPES: dict[int, str] = {0: "address", 1: "bytes", 2: "contract", 3: "oracle", 4: "oracle_query",
                                5: "channel"}
_OBJECT_TYPE = {name: t for t, name in OBJECT_TYPES.items()}
#: Address kind -> API prefix of its text.
ADDRESS_PREFIXES = {"address": "ak", "contract": "ct", "oracle": "ok", "oracle_query": "oq", "channel": "ch"}

_SMALL = 64  # integers below this (in absolute value) and strings shorter fit the tag byte
_SHORT = 16  # tuples and lists shorter than this carry their size in the tag byte


# -- value types ------------------------------------------------------------------------------------

class Type(NamedTuple):
    """A FATE type: ``name`` (``int``, ``bool``, ``string``, ``bits``, ``address``, ``contract``, ``oracle``,
    ``oracle_query``, ``channel``, ``any``, ``contract_bytearray``, ``list``, ``tuple``, ``map``,
    ``variant``, ``bytes``, ``tvar``) and ``args``: ``(item,)`` for a list, the element types of a tuple,
    ``(key, value)`` of a map, one ``tuple`` type per constructor of a variant, ``(size,)`` of bytes
    (``-1``: any size), ``(n,)`` of a type variable. ``str()`` writes it the way Sophia does."""

    name: str
    args: tuple[Any, ...] = ()

    def __str__(self) -> str:
        n, a = self.name, self.args
        if n == "list":
            return f"list({a[0]})"
        if n == "tuple":
            return "unit" if not a else "(" + " * ".join(str(t) for t in a) + ")"
        if n == "map":
            return f"map({a[0]}, {a[1]})"
        if n == "variant":
            if len(a) == 2 and not a[0].args and len(a[1].args) == 1:
                return f"option({a[1].args[0]})"
            return " | ".join(f"#{i}{'(' + ', '.join(map(str, c.args)) + ')' if c.args else ''}"
                              for i, c in enumerate(a))
        if n == "bytes":
            return "bytes()" if a[0] < 0 else f"bytes({a[0]})"
        if n == "tvar":
            return f"'{chr(ord('a') + a[0]) if a[0] < 26 else a[0]}"
        if n == "oracle_query":
            return "oracle_query"
        return n


class Bytes(bytes):
    """A FATE ``bytes(n)`` value (``#0a1b…`` in Sophia)."""

    def __repr__(self) -> str:
        return f"Bytes(#{self.hex()})"


class ContractBytearray(bytes):
    """A FATE contract bytearray (serialized contract code, as ``Chain.create`` takes)."""

    def __repr__(self) -> str:
        return f"ContractBytearray({len(self)} bytes)"


class Address(NamedTuple):
    """An address-like FATE object: ``kind`` (``address``, ``contract``, ``oracle``, ``oracle_query``,
    ``channel``) and its ``payload`` (32 bytes in valid data). ``str()`` is the API text (``ak_…``)."""

    kind: str
    payload: bytes

    def __str__(self) -> str:
        from chanlog.codec.encoding import ApiValue

        return str(ApiValue(ADDRESS_PREFIXES[self.kind], self.payload))


class List(tuple):
    """A FATE list (read-only; a ``tuple`` subclass so that it is told apart from a FATE tuple)."""

    def __repr__(self) -> str:
        return f"List({list(self)!r})"


class Map(NamedTuple):
    """A FATE map: its ``(key, value)`` pairs in wire order."""

    items: tuple[tuple[Any, Any], ...]


class StoreMap(NamedTuple):
    """A map kept in contract store, referred to by ``id``."""

    id: int


class Variant(NamedTuple):
    """A FATE variant: the ``arities`` of all constructors of its type, the constructor ``tag`` (0-based) and
    its ``values`` (as many as ``arities[tag]``)."""

    arities: tuple[int, ...]
    tag: int
    values: tuple[Any, ...]


class Bits(NamedTuple):
    """A FATE bit field (``value`` < 0: infinitely many leading ones)."""

    value: int


class TypeRep(NamedTuple):
    """A type used as a value (``CALL_R``'s argument types, ``typerep`` arguments)."""

    type: Type


# -- reading ----------------------------------------------------------------------------------------

_Reader = Callable[[bytes, int, int, int], tuple[Any, int]]


def decode(data: bytes, what: str = "value") -> Any:
    """The one FATE value ``data`` holds (no trailing bytes).

    ``what`` names the blob in errors (``call data``). Raises :class:`CodecError` naming the byte offset:
    an unknown tag, data ending inside a value, a size larger than the bytes left, nesting deeper than
    :data:`MAX_DEPTH`, an integer longer than :data:`MAX_INT_BYTES`, non-canonical forms, trailing bytes.
    aeb_fate_encoding:deserialize/1.
    """
    data = _bytes(data, what)
    value, end = decode_one(data, 0, what)
    if end != len(data):
        raise CodecError(f"{len(data) - end} trailing bytes after the {what}", end, [what])
    return value


def decode_one(data: bytes, pos: int = 0, what: str = "value") -> tuple[Any, int]:
    """One FATE value starting at ``pos``: ``(value, end offset)``; errors as :func:`decode`."""
    try:
        return _read(data, pos, 0)
    except CodecError as exc:
        raise exc.within(what) from None
    except RecursionError:  # pragma: no cover - MAX_DEPTH keeps far below Python's limit
        raise CodecError(f"nested deeper than {MAX_DEPTH}", pos, [what]) from None


def decode_type(data: bytes, what: str = "type") -> Type:
    """The one FATE type ``data`` holds; errors as :func:`decode`. aeb_fate_encoding:deserialize_type/1."""
    data = _bytes(data, what)
    t, end = decode_type_one(data, 0, what)
    if end != len(data):
        raise CodecError(f"{len(data) - end} trailing bytes after the {what}", end, [what])
    return t


def decode_type_one(data: bytes, pos: int = 0, what: str = "type") -> tuple[Type, int]:
    """One FATE type starting at ``pos``: ``(type, end offset)``."""
    try:
        return _read_type(data, pos, 0)
    except CodecError as exc:
        raise exc.within(what) from None


def _bytes(data: Any, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError(f"expected bytes, got {type(data).__name__}", None, [what])
    if len(data) > MAX_SIZE:
        raise CodecError(f"{len(data):,} bytes, more than the limit of {MAX_SIZE:,}", 0, [what])
    return bytes(data)


def _read(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if pos >= len(data):
        raise CodecError("the data ends where a value should start", pos)
    return _READERS[data[pos]](data, pos, data[pos], depth)


def _need(data: bytes, pos: int, n: int, what: str) -> None:
    if n > len(data) - pos:
        raise CodecError(f"{what} needs {n:,} bytes, only {max(0, len(data) - pos):,} left", pos)


def _deeper(depth: int, pos: int) -> int:
    if depth >= MAX_DEPTH:
        raise CodecError(f"nested deeper than {MAX_DEPTH}", pos)
    return depth + 1


def _rlp_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    """One RLP byte string at ``pos`` (canonical form only): ``(bytes, end)``."""
    if pos >= len(data):
        raise CodecError("the data ends where an RLP string should start", pos)
    b = data[pos]
    if b < 0x80:
        return data[pos:pos + 1], pos + 1
    if b <= 0xB7:
        n, start = b - 0x80, pos + 1
        _need(data, start, n, "an RLP string")
        if n == 1 and data[start] < 0x80:
            raise CodecError(f"non-canonical RLP: one byte 0x{data[start]:02x} written with a length", pos)
    elif b <= 0xBF:
        k = b - 0xB7
        _need(data, pos + 1, k, "an RLP length")
        if data[pos + 1] == 0:
            raise CodecError("non-canonical RLP: length with a leading zero byte", pos)
        n, start = int.from_bytes(data[pos + 1:pos + 1 + k], "big"), pos + 1 + k
        if n <= 55:
            raise CodecError(f"non-canonical RLP: long form for a {n}-byte string", pos)
        _need(data, start, n, "an RLP string")
    else:
        raise CodecError(f"expected an RLP byte string, got an RLP list (0x{b:02x})", pos)
    return data[start:start + n], start + n


def _rlp_int(data: bytes, pos: int) -> tuple[int, int]:
    """An RLP-encoded unsigned integer (``rlp_decode_int``: 0 is ``0x00``; no leading zeros)."""
    raw, end = _rlp_bytes(data, pos)
    if len(raw) > MAX_INT_BYTES:
        raise CodecError(f"integer of {len(raw):,} bytes, more than the limit of {MAX_INT_BYTES:,}", pos)
    if not raw or (raw[0] == 0 and len(raw) > 1):
        raise CodecError(f"non-canonical integer 0x{raw.hex()}", pos)
    return int.from_bytes(raw, "big"), end


def _count(data: bytes, pos: int, n: int, per: int, what: str) -> None:
    """A count read from the data is possible: every item takes at least ``per`` bytes."""
    if n * per > len(data) - pos:
        raise CodecError(f"{what} of {n:,} items cannot fit in the {len(data) - pos:,} bytes left", pos)


def _r_small_int(data: bytes, pos: int, b: int, depth: int) -> tuple[int, int]:
    n = (b >> 1) & 0x3F
    if b & 0x80:
        if n == 0:
            raise CodecError("negative zero (0x80) is not an integer", pos)
        return -n, pos + 1
    return n, pos + 1


def _r_big_int(data: bytes, pos: int, b: int, depth: int) -> tuple[int, int]:
    n, end = _rlp_int(data, pos + 1)
    return (-(n + _SMALL) if b == _TAG["neg_big_int"] else n + _SMALL), end


def _string_bytes(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _r_short_string(data: bytes, pos: int, b: int, depth: int) -> tuple[str, int]:
    n = b >> 2
    _need(data, pos + 1, n, f"a {n}-byte string")
    return _string_bytes(data[pos + 1:pos + 1 + n]), pos + 1 + n


def _r_long_string(data: bytes, pos: int, b: int, depth: int) -> tuple[str, int]:
    raw, end = _sized_bytes(data, pos, "string", _SMALL)
    return _string_bytes(raw), end


def _sized_bytes(data: bytes, pos: int, what: str, base: int) -> tuple[bytes, int]:
    """Bytes after a FATE-integer size (plus ``base``), as long strings and contract bytearrays write them."""
    size, start = _read(data, pos + 1, 0)
    if type(size) is not int or size < 0:
        raise CodecError(f"the size of a {what} must be a non-negative integer, got {size!r}", pos + 1)
    n = size + base
    _need(data, start, n, f"a {n:,}-byte {what}")
    return data[start:start + n], start + n


def _r_contract_bytearray(data: bytes, pos: int, b: int, depth: int) -> tuple[ContractBytearray, int]:
    raw, end = _sized_bytes(data, pos, "contract bytearray", 0)
    return ContractBytearray(raw), end


def _elements(data: bytes, pos: int, n: int, depth: int, what: str) -> tuple[list[Any], int]:
    _count(data, pos, n, 1, what)
    depth = _deeper(depth, pos)
    out = []
    for i in range(n):
        try:
            v, pos = _read(data, pos, depth)
        except CodecError as exc:
            raise exc.within(f"[{i}]") from None
        out.append(v)
    return out, pos


def _r_short_tuple(data: bytes, pos: int, b: int, depth: int) -> tuple[tuple[Any, ...], int]:
    items, end = _elements(data, pos + 1, b >> 4, depth, "a tuple")
    return tuple(items), end


def _r_long_tuple(data: bytes, pos: int, b: int, depth: int) -> tuple[tuple[Any, ...], int]:
    n, start = _rlp_int(data, pos + 1)
    items, end = _elements(data, start, n + _SHORT, depth, "a tuple")
    return tuple(items), end


def _r_short_list(data: bytes, pos: int, b: int, depth: int) -> tuple[List, int]:
    items, end = _elements(data, pos + 1, b >> 4, depth, "a list")
    return List(items), end


def _r_long_list(data: bytes, pos: int, b: int, depth: int) -> tuple[List, int]:
    n, start = _rlp_int(data, pos + 1)
    items, end = _elements(data, start, n + _SHORT, depth, "a list")
    return List(items), end


def _r_map(data: bytes, pos: int, b: int, depth: int) -> tuple[Map, int]:
    n, start = _rlp_int(data, pos + 1)
    _count(data, start, n, 2, "a map")
    items, end = _elements(data, start, 2 * n, depth, "a map")
    return Map(tuple(zip(items[0::2], items[1::2], strict=True))), end


def _r_map_id(data: bytes, pos: int, b: int, depth: int) -> tuple[StoreMap, int]:
    n, end = _rlp_int(data, pos + 1)
    return StoreMap(n), end


def _r_bits(data: bytes, pos: int, b: int, depth: int) -> tuple[Bits, int]:
    n, end = _rlp_int(data, pos + 1)
    if b == _TAG["neg_bits"]:
        if n == 0:
            raise CodecError("negative bits of 0", pos)
        return Bits(-n), end
    return Bits(n), end


def _r_object(data: bytes, pos: int, b: int, depth: int) -> tuple[Any, int]:
    _need(data, pos + 1, 1, "an object type")
    kind = OBJECT_TYPES.get(data[pos + 1])
    if kind is None:
        raise CodecError(f"unknown object type {data[pos + 1]}", pos + 1)
    if kind == "bytes":
        value, end = _read(data, pos + 2, depth)
        if type(value) is not str:
            raise CodecError(f"bytes must hold a string, got {_kind(value)}", pos + 2)
        return Bytes(value.encode("utf-8", "surrogateescape")), end
    raw, end = _rlp_bytes(data, pos + 2)
    return Address(kind, raw), end


def _r_variant(data: bytes, pos: int, b: int, depth: int) -> tuple[Variant, int]:
    arities_raw, at = _rlp_bytes(data, pos + 1)
    arities = tuple(arities_raw)
    _need(data, at, 1, "a variant tag")
    tag = data[at]
    if tag >= len(arities):
        raise CodecError(f"variant tag {tag} but only {len(arities)} constructors", at)
    values, end = _read(data, at + 1, _deeper(depth, pos))
    if type(values) is not tuple:
        raise CodecError(f"a variant's values must be a tuple, got {_kind(values)}", at + 1)
    if len(values) != arities[tag]:
        raise CodecError(f"variant constructor {tag} has arity {arities[tag]}, got {len(values)} values", at + 1)
    return Variant(arities, tag, values), end


def _r_const(value: Any) -> _Reader:
    def read(data: bytes, pos: int, b: int, depth: int) -> tuple[Any, int]:
        return value, pos + 1
    return read


def _r_typerep(data: bytes, pos: int, b: int, depth: int) -> tuple[TypeRep, int]:
    t, end = _read_type(data, pos, depth)
    return TypeRep(t), end


def _r_unknown(data: bytes, pos: int, b: int, depth: int) -> tuple[Any, int]:
    raise CodecError(f"unknown FATE tag 0x{b:02x}", pos)


def _build_readers() -> list[_Reader]:
    """The dispatch table: first byte -> reader (``aeb_fate_encoding:deserialize2``'s clauses)."""
    by_name: dict[str, _Reader] = {
        "long_string": _r_long_string, "long_tuple": _r_long_tuple, "long_list": _r_long_list, "map": _r_map,
        "empty_tuple": _r_const(()), "pos_bits": _r_bits, "neg_bits": _r_bits, "empty_string": _r_const(""),
        "pos_big_int": _r_big_int, "neg_big_int": _r_big_int, "false": _r_const(False),
        "true": _r_const(True), "contract_bytearray": _r_contract_bytearray, "object": _r_object,
        "variant": _r_variant, "map_id": _r_map_id,
    }
    table: list[_Reader] = []
    for b in range(256):
        if b in VALUE_TAGS:
            table.append(by_name.get(VALUE_TAGS[b], _r_unknown))
        elif b & 1 == 0:
            table.append(_r_small_int)
        elif b & 3 == 1:
            table.append(_r_short_string)
        elif b & 0xF == 0x3:
            table.append(_r_short_list)
        elif b & 0xF == 0xB:
            table.append(_r_short_tuple)
        elif b in TYPE_TAGS:
            table.append(_r_typerep)
        else:
            table.append(_r_unknown)
    return table


_READERS = _build_readers()


def _read_type(data: bytes, pos: int, depth: int) -> tuple[Type, int]:
    if pos >= len(data):
        raise CodecError("the data ends where a type should start", pos)
    name = TYPE_TAGS.get(data[pos])
    if name is None:
        raise CodecError(f"unknown FATE type tag 0x{data[pos]:02x}", pos)
    at = pos + 1
    if name in ("int", "bool", "bits", "string", "any", "contract_bytearray"):
        return Type(name), at
    inner = _deeper(depth, pos)
    if name == "tvar":
        _need(data, at, 1, "a type variable")
        return Type("tvar", (data[at],)), at + 1
    if name == "object":
        _need(data, at, 1, "an object type")
        kind = OBJECT_TYPES.get(data[at])
        if kind is None or kind == "bytes":
            raise CodecError(f"unknown object type {data[at]} in a type", at)
        return Type(kind), at + 1
    if name == "bytes":
        size, end = _read(data, at, inner)
        if type(size) is not int or size < -1:
            raise CodecError(f"bytes size must be an integer >= -1, got {size!r}", at)
        return Type("bytes", (size,)), end
    if name == "list":
        item, end = _read_type(data, at, inner)
        return Type("list", (item,)), end
    if name == "map":
        k, at = _read_type(data, at, inner)
        v, end = _read_type(data, at, inner)
        return Type("map", (k, v)), end
    _need(data, at, 1, f"a {name} type's size")
    n, at = data[at], at + 1
    _count(data, at, n, 1, f"a {name} type")
    ts = []
    for i in range(n):
        try:
            t, at = _read_type(data, at, inner)
        except CodecError as exc:
            raise exc.within(f"[{i}]") from None
        if name == "variant" and t.name != "tuple":
            raise CodecError(f"a variant constructor must be a tuple type, got {t}", at)
        ts.append(t)
    return Type(name, tuple(ts)), at


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", str: "a string", tuple: "a tuple", List: "a list",
            Map: "a map"}.get(type(v), type(v).__name__)


# -- writing ----------------------------------------------------------------------------------------

def encode(value: Any) -> bytes:
    """The FATE bytes of ``value`` (Python shapes as in the module docstring); the inverse of :func:`decode`.

    Raises :class:`CodecError` (``where`` = path into the value) for a Python value with no FATE form.
    aeb_fate_encoding:serialize/1.
    """
    out = bytearray()
    _write(value, out, 0)
    return bytes(out)


def _write(v: Any, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CodecError(f"nested deeper than {MAX_DEPTH}")
    writer = _WRITERS.get(type(v))
    if writer is None:
        raise CodecError(f"no FATE form for {type(v).__name__} {v!r:.60}")
    writer(v, out, depth)


def _rlp_int_bytes(n: int) -> bytes:
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return _rlp_str(raw)


def _rlp_str(raw: bytes) -> bytes:
    if len(raw) == 1 and raw[0] < 0x80:
        return raw
    if len(raw) <= 55:
        return bytes([0x80 + len(raw)]) + raw
    size = len(raw).to_bytes((len(raw).bit_length() + 7) // 8, "big")
    return bytes([0xB7 + len(size)]) + size + raw


def _w_int(v: int, out: bytearray, depth: int = 0) -> None:
    a = abs(v)
    if a < _SMALL:
        out.append((0x80 if v < 0 else 0) | (a << 1))
    else:
        out.append(_TAG["neg_big_int" if v < 0 else "pos_big_int"])
        out += _rlp_int_bytes(a - _SMALL)


def _w_bool(v: bool, out: bytearray, depth: int) -> None:
    out.append(_TAG["true" if v else "false"])


def _w_string_bytes(raw: bytes, out: bytearray) -> None:
    if not raw:
        out.append(_TAG["empty_string"])
    elif len(raw) < _SMALL:
        out.append(len(raw) << 2 | 1)
        out += raw
    else:
        out.append(_TAG["long_string"])
        _w_int(len(raw) - _SMALL, out)
        out += raw


def _w_str(v: str, out: bytearray, depth: int) -> None:
    _w_string_bytes(v.encode("utf-8", "surrogateescape"), out)


def _w_bytes(v: Bytes, out: bytearray, depth: int) -> None:
    out += bytes([_TAG["object"], _OBJECT_TYPE["bytes"]])
    _w_string_bytes(bytes(v), out)


def _w_address(v: Address, out: bytearray, depth: int) -> None:
    out += bytes([_TAG["object"], _OBJECT_TYPE[v.kind]])
    out += _rlp_str(bytes(v.payload))


def _w_items(items: Any, out: bytearray, depth: int) -> None:
    for i, x in enumerate(items):
        try:
            _write(x, out, depth + 1)
        except CodecError as exc:
            raise exc.within(f"[{i}]") from None


def _w_tuple(v: tuple, out: bytearray, depth: int) -> None:
    if not v:
        out.append(_TAG["empty_tuple"])
        return
    if len(v) < _SHORT:
        out.append(len(v) << 4 | 0xB)
    else:
        out.append(_TAG["long_tuple"])
        out += _rlp_int_bytes(len(v) - _SHORT)
    _w_items(v, out, depth)


def _w_list(v: List, out: bytearray, depth: int) -> None:
    if len(v) < _SHORT:
        out.append(len(v) << 4 | 0x3)
    else:
        out.append(_TAG["long_list"])
        out += _rlp_int_bytes(len(v) - _SHORT)
    _w_items(v, out, depth)


def _w_map(v: Map, out: bytearray, depth: int) -> None:
    out.append(_TAG["map"])  # the node writes every map with its size (0xdf, "empty map", is never read)
    out += _rlp_int_bytes(len(v.items))
    _w_items([x for kv in v.items for x in kv], out, depth)


def _w_store_map(v: StoreMap, out: bytearray, depth: int) -> None:
    out.append(_TAG["map_id"])
    out += _rlp_int_bytes(v.id)


def _w_variant(v: Variant, out: bytearray, depth: int) -> None:
    if not 0 <= v.tag < len(v.arities) or len(v.values) != v.arities[v.tag] \
            or any(not 0 <= a < 256 for a in v.arities):
        raise CodecError(f"variant tag {v.tag} with {len(v.values)} values does not fit arities {v.arities}")
    out.append(_TAG["variant"])
    out += _rlp_str(bytes(v.arities))
    out.append(v.tag)
    _w_tuple(tuple(v.values), out, depth + 1)


def _w_bits(v: Bits, out: bytearray, depth: int) -> None:
    out.append(_TAG["neg_bits" if v.value < 0 else "pos_bits"])
    out += _rlp_int_bytes(abs(v.value))


def _w_contract_bytearray(v: ContractBytearray, out: bytearray, depth: int) -> None:
    out.append(_TAG["contract_bytearray"])
    _w_int(len(v), out)
    out += v


def _w_typerep(v: TypeRep, out: bytearray, depth: int) -> None:
    out += encode_type(v.type)


_WRITERS: dict[type, Callable[[Any, bytearray, int], None]] = {
    bool: _w_bool, int: _w_int, str: _w_str, Bytes: _w_bytes, Address: _w_address, tuple: _w_tuple,
    List: _w_list, Map: _w_map, StoreMap: _w_store_map, Variant: _w_variant, Bits: _w_bits,
    ContractBytearray: _w_contract_bytearray, TypeRep: _w_typerep,
}


def encode_type(t: Type) -> bytes:
    """The FATE bytes of a type (aeb_fate_encoding:serialize_type/1)."""
    out = bytearray()
    _write_type(t, out)
    return bytes(out)


def _write_type(t: Type, out: bytearray) -> None:
    n = t.name
    if n in ADDRESS_PREFIXES:
        out += bytes([_TYPE_TAG["object"], _OBJECT_TYPE[n]])
        return
    if n not in _TYPE_TAG or n == "object":
        raise CodecError(f"no FATE type {n!r}")
    out.append(_TYPE_TAG[n])
    if n == "tvar":
        out.append(t.args[0])
    elif n == "bytes":
        _w_int(t.args[0], out)
    elif n in ("list", "map"):
        for a in t.args:
            _write_type(a, out)
    elif n in ("tuple", "variant"):
        out.append(len(t.args))
        for a in t.args:
            _write_type(a, out)


# -- types of values -------------------------------------------------------------------------------

_SCALARS = {"int": int, "bool": bool, "string": str, "bits": Bits, "contract_bytearray": ContractBytearray}


def conforms(v: Any, t: Type, depth: int = 0) -> bool:
    """Whether the value ``v`` has the type ``t`` (a function signature's argument or return type); type
    variables and ``any`` accept every value. Depth is limited by :data:`MAX_DEPTH` (deeper: ``False``)."""
    if depth > MAX_DEPTH:
        return False
    n, a = t.name, t.args
    if n in ("any", "tvar"):
        return True
    if n in _SCALARS:
        return type(v) is _SCALARS[n]
    if n in ADDRESS_PREFIXES:
        return type(v) is Address and v.kind == n
    if n == "bytes":
        return type(v) is Bytes and (a[0] < 0 or len(v) == a[0])
    if n == "list":
        return type(v) is List and all(conforms(x, a[0], depth + 1) for x in v)
    if n == "tuple":
        return type(v) is tuple and len(v) == len(a) and all(conforms(x, y, depth + 1) for x, y in zip(v, a, strict=True))
    if n == "map":
        return type(v) is StoreMap or type(v) is Map and all(
            conforms(k, a[0], depth + 1) and conforms(x, a[1], depth + 1) for k, x in v.items)
    if n == "variant":
        return type(v) is Variant and v.arities == tuple(len(c.args) for c in a) and all(
            conforms(x, y, depth + 1) for x, y in zip(v.values, a[v.tag].args, strict=True))
    return False


# -- output -----------------------------------------------------------------------------------------

#: Longest text :func:`format_value` writes for one value before shortening it with ``…``.
FORMAT_LIMIT = 200


def format_value(v: Any, t: Type | None = None, limit: int = FORMAT_LIMIT) -> str:
    """``v`` as a Sophia literal for people: ``42``, ``"text"``, ``#0a1b``, ``ak_…``, ``(1, true)``,
    ``[1, 2]``, ``{["k"] = 1}``, ``Some(3)``/``None`` for an option, ``#1(x)`` for another variant's
    constructor 1. ``t`` (the value's type from a signature) makes options recognisable. Shortened to about
    ``limit`` characters."""
    parts: list[str] = []
    _fmt(v, t, parts, [0], limit)
    text = "".join(parts)
    return text if len(text) <= limit else text[:limit] + "\u2026"


def _fmt(v: Any, t: Type | None, out: list[str], used: list[int], limit: int) -> None:
    if used[0] > limit:
        return
    kind = type(v)
    if kind is bool:
        s = "true" if v else "false"
    elif kind is int:
        s = str(v) if v.bit_length() < 4000 else f"<{v.bit_length()}-bit integer>"
    elif kind is str:
        s = json.dumps(v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"),
                       ensure_ascii=False)
    elif kind is Bytes:
        s = "#" + v.hex()
    elif kind is Address:
        s = str(v)
    elif kind is ContractBytearray:
        s = f"<contract code, {len(v):,} bytes>"
    elif kind is Bits:
        s = f"Bits({v.value})"
    elif kind is StoreMap:
        s = f"<store map {v.id}>"
    elif kind is TypeRep:
        s = f"<type {v.type}>"
    elif kind is tuple:
        ts = t.args if t is not None and t.name == "tuple" and len(t.args) == len(v) else [None] * len(v)
        _seq("(", ")", [(x, tx) for x, tx in zip(v, ts, strict=True)], out, used, limit)
        return
    elif kind is List:
        item = t.args[0] if t is not None and t.name == "list" else None
        _seq("[", "]", [(x, item) for x in v], out, used, limit)
        return
    elif kind is Map:
        kt, vt = t.args if t is not None and t.name == "map" else (None, None)
        out.append("{")
        for i, (k, x) in enumerate(v.items):
            if used[0] > limit:
                break
            out.append(", [" if i else "[")
            _fmt(k, kt, out, used, limit)
            out.append("] = ")
            _fmt(x, vt, out, used, limit)
        out.append("}")
        return
    elif kind is Variant:
        cons = t.args[v.tag].args if t is not None and t.name == "variant" and len(t.args) == len(v.arities) \
            else [None] * len(v.values)
        if v.arities == (0, 1):  # option: None | Some(x)
            name = "None" if v.tag == 0 else "Some"
        else:
            name = f"#{v.tag}"
        out.append(name)
        if v.values:
            _seq("(", ")", list(zip(v.values, cons, strict=False)), out, used, limit)
        return
    else:
        s = repr(v)
    out.append(s)
    used[0] += len(s)


def _seq(open_: str, close: str, items: list[tuple[Any, Type | None]], out: list[str], used: list[int],
         limit: int) -> None:
    out.append(open_)
    for i, (x, t) in enumerate(items):
        if used[0] > limit:
            break
        if i:
            out.append(", ")
        _fmt(x, t, out, used, limit)
    out.append(close)


def to_json(v: Any) -> Any:
    """``v`` as plain JSON data: ints, booleans and strings as they are; bytes ``"#0a1b"``; addresses their
    API text; tuples and lists arrays; a map ``{"map": [[k, v], ...]}``; a variant
    ``{"variant": tag, "arities": [...], "values": [...]}``; bits ``{"bits": n}``; a store map
    ``{"store_map": id}``; a type ``{"type": "list(int)"}``; contract code ``{"contract_bytearray": "cb_…"}``."""
    kind = type(v)
    if kind in (bool, int):
        return v
    if kind is str:
        return v.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if kind is Bytes:
        return "#" + v.hex()
    if kind is Address:
        return str(v)
    if kind in (tuple, List):
        return [to_json(x) for x in v]
    if kind is Map:
        return {"map": [[to_json(k), to_json(x)] for k, x in v.items]}
    if kind is Variant:
        return {"variant": v.tag, "arities": list(v.arities), "values": [to_json(x) for x in v.values]}
    if kind is Bits:
        return {"bits": v.value}
    if kind is StoreMap:
        return {"store_map": v.id}
    if kind is TypeRep:
        return {"type": str(v.type)}
    if kind is ContractBytearray:
        from chanlog.codec.encoding import encode_api

        return {"contract_bytearray": encode_api("cb", bytes(v))}
    raise CodecError(f"no JSON form for {kind.__name__}")
