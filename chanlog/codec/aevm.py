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
S = AType("string")


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


# -- reading without a type -------------------------------------------------------------------------

#: Word visits :func:`guess` may spend on one heap before it gives up (``None``): a few times the words of a
#: heap of :data:`MAX_GUESS_BYTES` (each region is scanned once for the arities its pointers allow, and
#: regions are memoised); a hostile heap with many candidate arities per region runs out of it instead.
MAX_GUESS_STEPS = 50_000
#: Largest heap :func:`guess` reads (bytes). Call data and return values of the AEVM era are a few hundred
#: bytes; a 16 KiB heap is 512 words, and the worst case is bounded by :data:`MAX_GUESS_STEPS` word
#: visits (about 20 ms for the hostile heaps of tests/test_codec_aevm.py; 0.4 µs a visit).
MAX_GUESS_BYTES = 16 * 1024


def guess(data: bytes) -> tuple[AType, Any] | None:
    """A type and value for an AEVM heap read without its type: ``(type, value)`` or ``None``.

    AEVM values carry no types (``aeb_heap``), so this only reads what the layout itself shows, assuming the
    canonical layout ``aeb_heap:to_binary/1`` writes (every boxed value's memory right after its parent's
    words, children in order): words (integers, booleans, addresses, hashes: all one ``word``), strings (a
    size word and UTF-8 text padded to whole words) and tuples of these (records, variants and list cells
    are tuples on the heap too; an empty list or ``None`` is a word). The guess is kept only when
    :func:`encode` of the value with the guessed type gives ``data`` back byte for byte, so it is one
    reading the bytes certainly allow; a word may still have been a boolean, an address or a hash. At most
    :data:`MAX_GUESS_BYTES` of heap and :data:`MAX_GUESS_STEPS` word visits (linear in the heap's size
    for every layout the compiler writes)."""
    if not isinstance(data, bytes | bytearray) or len(data) < WORD or len(data) % WORD or len(data) > MAX_GUESS_BYTES:
        return None
    data = bytes(data)
    words = [int.from_bytes(data[i:i + WORD], "big") for i in range(0, len(data), WORD)]
    budget = [MAX_GUESS_STEPS]
    memo: dict[tuple[int, int], tuple[AType, Any] | None] = {}
    root = words[0]
    try:
        if len(words) == 1:
            found: tuple[AType, Any] | None = (W, root)
        elif root == WORD:
            found = _guess_boxed(words, 1, len(words), budget, memo, 0)
        else:
            return None
    except _GiveUp:
        return None
    if found is None:
        return None
    try:
        return found if encode(found[1], found[0]) == data else None
    except CodecError:
        return None


class _GiveUp(Exception):
    """The guessing budget is spent."""


def _guess_boxed(words: list[int], start: int, end: int, budget: list[int],
                 memo: dict[tuple[int, int], tuple[AType, Any] | None], depth: int) -> tuple[AType, Any] | None:
    """The value whose memory is exactly words ``[start, end)``: a string, else the tuple of smallest arity
    whose boxed elements tile the rest of the region in order."""
    key = (start, end)
    if key in memo:
        return memo[key]
    if depth > MAX_DEPTH:
        raise _GiveUp
    memo[key] = None
    found = _guess_string(words, start, end)
    if found is None:
        # a tuple's arity: its words fill the region, or its first boxed element points right after them
        budget[0] -= end - start
        arities = {end - start}
        for i in range(start, end):
            w = words[i]
            if w % WORD == 0 and i < w // WORD < end:
                arities.add(w // WORD - start)
        for arity in sorted(arities):
            budget[0] -= arity
            if budget[0] < 0:
                raise _GiveUp
            found = _guess_tuple(words, start, arity, end, budget, memo, depth)
            if found is not None:
                break
    memo[key] = found
    return found


def _guess_string(words: list[int], start: int, end: int) -> tuple[AType, Any] | None:
    size = words[start]
    if size == 0 or size > (end - start - 1) * WORD or -(-size // WORD) != end - start - 1:
        return None
    raw = b"".join(w.to_bytes(WORD, "big") for w in words[start + 1:end])
    if any(raw[size:]):
        return None
    try:
        text = raw[:size].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.isprintable():
        return None
    return AType("string"), text


def _guess_tuple(words: list[int], start: int, arity: int, end: int, budget: list[int],
                 memo: dict[tuple[int, int], tuple[AType, Any] | None], depth: int) -> tuple[AType, Any] | None:
    """The tuple of ``arity`` words at ``start``. Its boxed elements are the words that point into the rest
    of the region in increasing order, the first exactly after the tuple's own words; each child's memory
    runs to the next one's (the last to ``end``). Without boxed elements the tuple fills the region."""
    first = start + arity
    pointers: list[tuple[int, int]] = []  # (element index, word index of its memory)
    for i in range(arity):
        w = words[start + i]
        if w % WORD or not first <= w // WORD < end:
            continue
        if (not pointers and w // WORD == first) or (pointers and w // WORD > pointers[-1][1]):
            pointers.append((i, w // WORD))
    if not pointers and first != end:
        return None
    types: list[AType] = [W] * arity
    values: list[Any] = list(words[start:first])
    for n, (i, lo) in enumerate(pointers):
        hi = pointers[n + 1][1] if n + 1 < len(pointers) else end
        child = _guess_boxed(words, lo, hi, budget, memo, depth + 1)
        if child is None:
            return None
        types[i], values[i] = child
    return AType("tuple", tuple(types)), tuple(values)


# -- Sophia types ---------------------------------------------------------------------------------

#: Sophia types that are one heap word in the Sophia ABI, read as aesophia's ``aeso_vm_decode:from_aevm/3``
#: reads them: ``int`` and ``bits`` as signed 256-bit words, ``bool`` as ``word /= 0``, addresses as the
#: 32-byte word.
_WORD_SOPHIA = frozenset({"int", "bool", "bits", "address", "contract", "oracle", "oracle_query", "channel"})


def layout(t: Any) -> AType:
    """The heap type (:class:`AType`) of a Sophia type (a :class:`chanlog.codec.fate.Type`, e.g. from
    :func:`chanlog.codec.sophia.parse_type`), as the Sophia ABI lays values out (aesophia ``aeso_vm_decode``):
    integers, booleans, bits and addresses are words; ``bytes(n)`` a word up to 32 bytes, else a tuple of
    ``ceil(n / 32)`` words; ``option(T)`` the variant ``None | Some(T)``. Raises :class:`CodecError` for a
    type the AEVM had no layout for."""
    n, a = t.name, t.args
    if n in _WORD_SOPHIA:
        return W
    if n == "bytes":
        if a[0] < 0:
            raise CodecError("bytes() of any size has no AEVM layout")
        return W if a[0] <= WORD else AType("tuple", (W,) * -(-a[0] // WORD))
    if n == "string":
        return S
    if n == "list":
        return AType("list", (layout(a[0]),))
    if n == "tuple":
        return AType("tuple", tuple(layout(x) for x in a))
    if n == "map":
        return AType("map", (layout(a[0]), layout(a[1])))
    if n == "variant":
        return AType("variant", tuple(tuple(layout(x) for x in c.args) for c in a))
    raise CodecError(f"the AEVM has no layout for {t}")


def decode_typed(data: bytes, t: Any, what: str = "value") -> Any:
    """The value of Sophia type ``t`` in the heap ``data``, in the shapes of :mod:`chanlog.codec.fate`
    (``int`` signed, ``bool``, :class:`~chanlog.codec.fate.Address`, :class:`~chanlog.codec.fate.Bytes`,
    :class:`~chanlog.codec.fate.Bits`, ...), so that :func:`chanlog.codec.fate.format_value` shows it as
    Sophia writes it. Raises :class:`CodecError` like :func:`decode`."""
    return _from_heap(decode(data, layout(t), what), t)


def encode_typed(value: Any, t: Any) -> bytes:
    """The heap of ``value`` (fate shapes, as :func:`decode_typed` gives) of Sophia type ``t``."""
    return encode(_to_heap(value, t), layout(t))


_SIGN = 1 << 255
_WORDS = 1 << 256


def _from_heap(v: Any, t: Any) -> Any:
    from chanlog.codec.fate import ADDRESS_PREFIXES, Address, Bits, Bytes

    n, a = t.name, t.args
    if n == "int":
        return v - _WORDS if v >= _SIGN else v
    if n == "bits":
        return Bits(v - _WORDS if v >= _SIGN else v)
    if n == "bool":
        return v != 0
    if n in ADDRESS_PREFIXES:
        return Address(n, v.to_bytes(WORD, "big"))
    if n == "bytes":
        raw = v.to_bytes(WORD, "big") if a[0] <= WORD else b"".join(w.to_bytes(WORD, "big") for w in v)
        return Bytes(raw[:a[0]])
    if n == "list":
        return List(_from_heap(x, a[0]) for x in v)
    if n == "tuple":
        return tuple(_from_heap(x, et) for x, et in zip(v, a, strict=True))
    if n == "map":
        return Map(tuple((_from_heap(k, a[0]), _from_heap(x, a[1])) for k, x in v.items))
    if n == "variant":
        return Variant(v.arities, v.tag, tuple(_from_heap(x, et) for x, et in zip(v.values, a[v.tag].args,
                                                                                 strict=True)))
    return v


def _to_heap(v: Any, t: Any) -> Any:
    from chanlog.codec.fate import ADDRESS_PREFIXES

    n, a = t.name, t.args
    if n == "int":
        return v % _WORDS
    if n == "bits":
        return v.value % _WORDS
    if n == "bool":
        return int(bool(v))
    if n in ADDRESS_PREFIXES:
        return int.from_bytes(v.payload, "big")
    if n == "bytes":
        raw = bytes(v).ljust(-(-a[0] // WORD) * WORD, b"\0")
        words = [int.from_bytes(raw[i:i + WORD], "big") for i in range(0, len(raw), WORD)]
        return words[0] if a[0] <= WORD else tuple(words)
    if n == "list":
        return List(_to_heap(x, a[0]) for x in v)
    if n == "tuple":
        return tuple(_to_heap(x, et) for x, et in zip(v, a, strict=True))
    if n == "map":
        return Map(tuple((_to_heap(k, a[0]), _to_heap(x, a[1])) for k, x in v.items))
    if n == "variant":
        return Variant(v.arities, v.tag, tuple(_to_heap(x, et) for x, et in zip(v.values, a[v.tag].args,
                                                                               strict=True)))
    return v
