"""AEVM values in the Sophia ABI (``abi_version`` 1): call data and return values laid out as a heap of
32-byte words, read by a type, and written back byte-exact.

The format is the node's ``aeb_heap`` (aeternity/aebytecode ``to_binary/1``, ``from_binary/2``; protocol
``contracts/sophia_abi.md``): the first word of a blob is the value itself (a word: integer, boolean,
address, hash) or a pointer to it. A string is a size word and its bytes padded to whole words; a tuple is
one word per element; a list is ``-1`` (empty) or a pointer to a ``(head, tail)`` pair; a variant is a
constructor tag word followed by its arguments; a map is a size word and ``(key size, key heap, value
size, value heap)`` entries; a type representation (typerep: how ``type_info`` states argument and return
types) is a tag word with pointers to its parts (:data:`TYPEREP_TAGS`).

Types are :class:`AType` values. Call data is ``(function type hash, arguments tuple)``. Values use the
shapes of :mod:`chanlog.codec.fate` (``int``, ``str``, ``tuple``, :class:`~chanlog.codec.fate.List`,
:class:`~chanlog.codec.fate.Variant`, :class:`~chanlog.codec.fate.Map`), plus :class:`AType` for
typereps. Errors are :class:`~chanlog.codec.errors.CodecError` naming the byte offset; a pointer outside the
data, a cycle, or a value that refers to more words than the data holds (shared pointers) is an error, so
time and memory stay linear in the size of the blob.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from chanlog.codec.errors import CodecError
from chanlog.codec.fate import MAX_DEPTH, MAX_SIZE, ContractBytearray, List, Map, Variant

__all__ = ["AType", "TYPEREP_TAGS", "decode", "encode", "decode_typerep", "encode_typerep", "WORD", "NIL",
           "call_type"]

#: Typerep tag word -> type name (``aeb_typerep_def.hrl``).
TYPEREP_TAGS: dict[int, str] = {0: "word", 1: "string", 2: "list", 3: "tuple", 4: "variant", 5: "typerep",
                                6: "map", 7: "function", 8: "contract_bytearray"}
_TYPEREP_TAG = {name: tag for tag, name in TYPEREP_TAGS.items()}
#: Bytes per heap word.
WORD = 32
#: The empty list: the all-ones word.
NIL = (1 << 256) - 1


class AType(NamedTuple):
    """An AEVM type: ``word``, ``string``, ``typerep``, ``function``, ``contract_bytearray``, or
    ``list`` (``args`` = item type), ``tuple`` (element types), ``variant`` (one tuple of argument types per
    constructor), ``map`` (key, value). ``str()`` writes it the way Sophia does (words as ``word``)."""

    name: str
    args: tuple[Any, ...] = ()

    def __str__(self) -> str:
        n, a = self.name, self.args
        if n == "list":
            return f"list({a[0]})"
        if n == "tuple":
            return "unit" if not a else "(" + " * ".join(map(str, a)) + ")"
        if n == "map":
            return f"map({a[0]}, {a[1]})"
        if n == "variant":
            if len(a) == 2 and not a[0] and len(a[1]) == 1:
                return f"option({a[1][0]})"
            return " | ".join(f"#{i}({', '.join(map(str, c))})" if c else f"#{i}" for i, c in enumerate(a))
        return n


W = AType("word")


def call_type(args: AType) -> AType:
    """The type of call data for arguments of type ``args`` (a tuple type): ``(word, args)``."""
    return AType("tuple", (W, args))


# -- reading ----------------------------------------------------------------------------------------

class _Heap:
    """Words of one blob, with a budget of words a value may visit (linear time)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.budget = len(data) // WORD + 8

    def word(self, addr: int) -> int:
        if addr % WORD or addr < 0 or addr + WORD > len(self.data):
            raise CodecError(f"pointer {addr:#x} is outside the {len(self.data):,}-byte heap or not word aligned",
                             min(addr, len(self.data)) if addr >= 0 else 0)
        self.budget -= 1
        if self.budget < 0:
            raise CodecError("the value refers to more words than the data holds (shared or cyclic pointers)",
                             addr)
        return int.from_bytes(self.data[addr:addr + WORD], "big")

    def chunk(self, addr: int, size: int) -> bytes:
        if addr < 0 or size > len(self.data) - addr:
            raise CodecError(f"{size:,} bytes at {addr:#x} run past the {len(self.data):,}-byte heap", addr)
        self.budget -= size // WORD
        return self.data[addr:addr + size]


def decode(data: bytes, t: AType, what: str = "value") -> Any:
    """The value of type ``t`` in the heap ``data`` (``aeb_heap:from_binary/2``).

    Raises :class:`CodecError` naming the byte offset (pointers, sizes, tags out of range; more than
    :data:`~chanlog.codec.fate.MAX_DEPTH` levels; a blob over :data:`~chanlog.codec.fate.MAX_SIZE`)."""
    if not isinstance(data, bytes | bytearray):
        raise CodecError(f"expected bytes, got {type(data).__name__}", None, [what])
    if len(data) > MAX_SIZE:
        raise CodecError(f"{len(data):,} bytes, more than the limit of {MAX_SIZE:,}", 0, [what])
    if len(data) < WORD:
        raise CodecError(f"{len(data)} bytes: a heap needs at least one {WORD}-byte word", 0, [what])
    heap = _Heap(bytes(data))
    try:
        return _value(heap, t, heap.word(0), 0, frozenset())
    except CodecError as exc:
        raise exc.within(what) from None


def _value(heap: _Heap, t: AType, v: int, depth: int, seen: frozenset[int]) -> Any:
    if depth > MAX_DEPTH:
        raise CodecError(f"nested deeper than {MAX_DEPTH}", v if v < len(heap.data) else None)
    n = t.name
    if n == "word":
        return v
    if n in ("string", "contract_bytearray"):
        size = heap.word(v)
        raw = heap.chunk(v + WORD, size)
        return ContractBytearray(raw) if n == "contract_bytearray" else raw.decode("utf-8", "surrogateescape")
    if v in seen:
        raise CodecError(f"cyclic pointer {v:#x}", v)
    inner = seen | {v}
    if n == "tuple":
        if not t.args:
            return ()
        return tuple(_elements(heap, t.args, v, depth, inner))
    if n == "list":
        out = []
        at, item = v, t.args[0]
        visited: set[int] = set()
        while at != NIL:
            if at in visited:
                raise CodecError(f"cyclic list at {at:#x}", at)
            visited.add(at)
            try:
                out.append(_value(heap, item, heap.word(at), depth + 1, inner))
            except CodecError as exc:
                raise exc.within(f"[{len(out)}]") from None
            at = heap.word(at + WORD)
        return List(out)
    if n == "variant":
        tag = heap.word(v)
        if tag >= len(t.args):
            raise CodecError(f"variant tag {tag} but only {len(t.args)} constructors", v)
        cons = t.args[tag]
        values = tuple(_elements(heap, cons, v + WORD, depth, inner)) if cons else ()
        return Variant(tuple(len(c) for c in t.args), tag, values)
    if n == "map":
        size = heap.word(v)
        at, items = v + WORD, []
        if size > (len(heap.data) - at) // (2 * WORD):
            raise CodecError(f"a map of {size:,} entries cannot fit in the heap", v)
        for i in range(size):
            try:
                ksize = heap.word(at)
                kraw = heap.chunk(at + WORD, ksize)
                at += WORD + ksize
                vsize = heap.word(at)
                vraw = heap.chunk(at + WORD, vsize)
                at += WORD + vsize
                items.append((decode(kraw, t.args[0], "key"), decode(vraw, t.args[1], "value")))
            except CodecError as exc:
                raise exc.within(f"[{i}]") from None
        return Map(tuple(items))
    if n == "typerep":
        return _typerep(heap, v, depth, inner)
    raise CodecError(f"values of type {n} cannot be read", v)


def _elements(heap: _Heap, types: tuple[AType, ...], at: int, depth: int, seen: frozenset[int]) -> list[Any]:
    out = []
    for i, et in enumerate(types):
        try:
            out.append(_value(heap, et, heap.word(at + WORD * i), depth + 1, seen))
        except CodecError as exc:
            raise exc.within(f"[{i}]") from None
    return out


def _typerep(heap: _Heap, v: int, depth: int, seen: frozenset[int]) -> AType:
    tag = heap.word(v)
    name = TYPEREP_TAGS.get(tag)
    if name is None:
        raise CodecError(f"unknown typerep tag {tag}", v)
    T = AType("typerep")
    if name == "list":
        return AType("list", (_value(heap, T, heap.word(v + WORD), depth + 1, seen),))
    if name == "tuple":
        return AType("tuple", tuple(_value(heap, AType("list", (T,)), heap.word(v + WORD), depth + 1, seen)))
    if name == "variant":
        cons = _value(heap, AType("list", (AType("list", (T,)),)), heap.word(v + WORD), depth + 1, seen)
        return AType("variant", tuple(tuple(c) for c in cons))
    if name == "map":
        return AType("map", (_value(heap, T, heap.word(v + WORD), depth + 1, seen),
                             _value(heap, T, heap.word(v + 2 * WORD), depth + 1, seen)))
    return AType(name)


def decode_typerep(data: bytes, what: str = "type") -> AType:
    """A type from its heap (``type_info``'s ``arg_type`` and ``out_type``)."""
    return decode(data, AType("typerep"), what)


# -- writing ----------------------------------------------------------------------------------------

def encode(value: Any, t: AType) -> bytes:
    """The heap of ``value`` of type ``t`` (``aeb_heap:to_binary/1``): the inverse of :func:`decode` for
    heaps laid out the way the compiler and the node write them."""
    rep, mem = _to(value, t, WORD, 0)
    return rep.to_bytes(WORD, "big") + mem


def _word(n: int) -> bytes:
    if not 0 <= n < 1 << 256:
        raise CodecError(f"{n} does not fit a 256-bit word")
    return n.to_bytes(WORD, "big")


def _to(v: Any, t: AType, addr: int, depth: int) -> tuple[int, bytes]:
    """``(word or pointer, memory from addr)`` like ``aeb_heap:to_binary1/2``."""
    if depth > MAX_DEPTH:
        raise CodecError(f"nested deeper than {MAX_DEPTH}")
    n = t.name
    if n == "word":
        if type(v) is bool:
            v = int(v)
        if type(v) is not int:
            raise CodecError(f"expected a word (int), got {v!r:.60}")
        return v, b""
    if n in ("string", "contract_bytearray"):
        raw = bytes(v) if n == "contract_bytearray" else v.encode("utf-8", "surrogateescape")
        pad = -len(raw) % WORD
        return addr, _word(len(raw)) + raw + b"\0" * pad
    if n == "tuple":
        if not t.args:
            return 0, b""
        return _tuple(list(v), list(t.args), addr, depth)
    if n == "list":
        if not v:
            return NIL, b""
        out, at = bytearray(), addr
        for i, x in enumerate(v):
            hrep, hmem = _to(x, t.args[0], at + 2 * WORD, depth + 1)
            nxt = at + 2 * WORD + len(hmem) if i + 1 < len(v) else NIL
            out += _word(hrep) + _word(nxt) + hmem
            at = nxt
        return addr, bytes(out)
    if n == "variant":
        cons = t.args[v.tag]
        return _tuple([v.tag, *v.values], [W, *cons], addr, depth)
    if n == "map":
        entries = sorted((encode(k, t.args[0]), encode(x, t.args[1])) for k, x in v.items)
        mem = bytearray(_word(len(entries)))
        for kb, vb in entries:
            mem += _word(len(kb)) + kb + _word(len(vb)) + vb
        return addr, bytes(mem)
    if n == "typerep":
        return _to(*_typerep_value(v), addr, depth)
    raise CodecError(f"values of type {n} cannot be written")


def _tuple(values: list[Any], types: list[AType], addr: int, depth: int) -> tuple[int, bytes]:
    if len(values) != len(types):
        raise CodecError(f"expected {len(types)} values, got {len(values)}")
    at = addr + WORD * len(values)
    reps, mem = [], bytearray()
    for x, et in zip(values, types, strict=True):
        rep, m = _to(x, et, at, depth + 1)
        reps.append(rep)
        mem += m
        at += len(m)
    return addr, b"".join(_word(r) for r in reps) + bytes(mem)


def _typerep_value(t: AType) -> tuple[Any, AType]:
    """A typerep as the tuple value ``aeb_heap`` writes for it: ``{Tag}`` or ``{Tag, Parts...}``."""
    T = AType("typerep")
    tag = _TYPEREP_TAG[t.name]
    if t.name == "list":
        return (tag, t.args[0]), AType("tuple", (W, T))
    if t.name == "tuple":
        return (tag, List(t.args)), AType("tuple", (W, AType("list", (T,))))
    if t.name == "variant":
        return (tag, List(List(c) for c in t.args)), AType("tuple", (W, AType("list", (AType("list", (T,)),))))
    if t.name == "map":
        return (tag, t.args[0], t.args[1]), AType("tuple", (W, T, T))
    return (tag,), AType("tuple", (W,))


def encode_typerep(t: AType) -> bytes:
    """The heap of a type (what ``type_info`` holds as ``arg_type``/``out_type``)."""
    return encode(t, AType("typerep"))
