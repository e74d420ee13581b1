"""Hypothesis strategies built from the node's serialization rules, shared by the codec tests (issue 22).

Nothing here is taken from the corpus: every value is built from a rule and may be far larger than anything
the corpus holds.

- FATE types and values (``aeb_fate_encoding``): :func:`fate_types`, :data:`fate_values`.
- AEVM heap types and values (``aeb_heap``, the Sophia ABI): :data:`aevm_types`, :func:`aevm_value_of`;
  Sophia types as the AEVM lays them out (``aeso_vm_decode``) and their values: :func:`sophia_types`,
  :func:`sophia_value_of`.
- Objects of every RLP schema row (:mod:`chanlog.codec.schema`): :func:`field_values` (one strategy per field
  type), :func:`objects_of` (a whole row, built with :func:`chanlog.codec.build`), nested objects included.
- Contract code (``aeser_contract_code`` v1-v3, AEVM and FATE): :func:`contract_codes`.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from chanlog.codec import aevm, build, contract, fate
from chanlog.codec.aevm import AType
from chanlog.codec.fate import (
    Address,
    Bits,
    Bytes,
    ContractBytearray,
    List,
    Map,
    StoreMap,
    Type,
    TypeRep,
    Variant,
)
from chanlog.codec.schema import SCHEMAS, FieldType, Kind, Schema

# -- FATE -----------------------------------------------------------------------------------------------------


def fate_types() -> st.SearchStrategy[Type]:
    """Every FATE type (``aeb_fate_encoding:serialize_type/1``), nested."""
    leaf = st.sampled_from([Type(n) for n in ("int", "bool", "string", "bits", "address", "contract", "oracle",
                                               "oracle_query", "channel", "any", "contract_bytearray")]) \
        | st.builds(lambda n: Type("bytes", (n,)), st.integers(-1, 64)) \
        | st.builds(lambda n: Type("tvar", (n,)), st.integers(0, 255))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda t: Type("list", (t,)), inner),
        st.builds(lambda ts: Type("tuple", tuple(ts)), st.lists(inner, max_size=4)),
        st.builds(lambda k, v: Type("map", (k, v)), inner, inner),
        st.builds(lambda cs: Type("variant", tuple(Type("tuple", tuple(c)) for c in cs)),
                  st.lists(st.lists(inner, max_size=2), min_size=1, max_size=3)),
    ), max_leaves=8)


fate_ints = st.integers(-(1 << 300), 1 << 300) | st.integers(-200, 200)
fate_leaves = st.one_of(
    fate_ints, st.booleans(), st.text(max_size=80), st.binary(max_size=80).map(Bytes),
    st.builds(Address, st.sampled_from(list(fate.ADDRESS_PREFIXES)), st.binary(min_size=32, max_size=32)),
    st.builds(Bits, fate_ints), st.builds(StoreMap, st.integers(0, 1 << 40)), st.builds(TypeRep, fate_types()),
    st.binary(max_size=40).map(ContractBytearray),
    st.binary(max_size=20).map(lambda b: b.decode("utf-8", "surrogateescape")),
    # sizes far above the corpus's: a long string, long bytes (the long forms of the tags)
    st.tuples(st.text(min_size=1, max_size=4), st.integers(100, 5_000)).map(lambda t: t[0] * t[1]),
    st.tuples(st.binary(min_size=1, max_size=4), st.integers(100, 5_000)).map(lambda t: Bytes(t[0] * t[1])),
)


def fate_variants(values: st.SearchStrategy) -> st.SearchStrategy[Variant]:
    """Variants of any arities, the chosen constructor holding ``values``."""
    def make(arities: list[int], tag: int, draw_values: list) -> Variant:
        tag %= len(arities)
        arities[tag] = len(draw_values)
        return Variant(tuple(arities), tag, tuple(draw_values))
    return st.builds(make, st.lists(st.integers(0, 5), min_size=1, max_size=4), st.integers(0, 3),
                     st.lists(values, max_size=5))


#: Every FATE value: tuples, lists (short and long forms), maps, variants of all of the leaves.
fate_values = st.recursive(fate_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=20).map(tuple), st.lists(inner, max_size=20).map(List),
    st.lists(st.tuples(fate_leaves, inner), max_size=6).map(lambda kv: Map(tuple(kv))), fate_variants(inner),
), max_leaves=30)


# -- AEVM -----------------------------------------------------------------------------------------------------

W, S = AType("word"), AType("string")

#: Heap types of the Sophia ABI (``aeb_heap``): words, strings, lists, tuples, variants, maps.
aevm_types = st.recursive(st.sampled_from([W, S]), lambda inner: st.one_of(
    st.builds(lambda x: AType("list", (x,)), inner),
    st.builds(lambda xs: AType("tuple", tuple(xs)), st.lists(inner, max_size=4)),
    st.builds(lambda cs: AType("variant", tuple(tuple(c) for c in cs)),
              st.lists(st.lists(inner, max_size=2), min_size=1, max_size=3)),
    st.builds(lambda k, v: AType("map", (k, v)), st.sampled_from([W, S]), inner),
), max_leaves=8)


def aevm_value_of(t: AType) -> st.SearchStrategy:
    """Values of heap type ``t`` (maps in the order ``aeb_heap`` writes them: by key heap)."""
    if t.name == "word":
        return st.integers(0, (1 << 256) - 2)
    if t.name == "string":
        return st.text(max_size=70) | st.tuples(st.text(min_size=1, max_size=3), st.integers(50, 3_000)).map(
            lambda x: x[0] * x[1])
    if t.name == "list":
        return st.lists(aevm_value_of(t.args[0]), max_size=4).map(List)
    if t.name == "tuple":
        return st.tuples(*[aevm_value_of(x) for x in t.args])
    if t.name == "variant":
        return st.integers(0, len(t.args) - 1).flatmap(
            lambda tag: st.tuples(*[aevm_value_of(x) for x in t.args[tag]]).map(
                lambda vs: Variant(tuple(len(c) for c in t.args), tag, vs)))
    return st.dictionaries(aevm_value_of(t.args[0]), aevm_value_of(t.args[1]), max_size=3).map(
        lambda d: Map(tuple(sorted(d.items(), key=lambda kv: aevm.encode(kv[0], t.args[0])))))


#: Heap types whose layout :func:`chanlog.codec.aevm.guess` reads: words, strings and tuples of them.
guessable_types = st.recursive(st.sampled_from([W, S]), lambda inner: st.builds(
    lambda xs: AType("tuple", tuple(xs)), st.lists(inner, min_size=1, max_size=4)), max_leaves=8)


def guessable_value_of(t: AType) -> st.SearchStrategy:
    """Values whose heap layout shows their type: words below 32 (never taken for a pointer) and printable,
    non-empty strings (an empty string is one zero word on the heap, the same as a tuple holding a 0)."""
    if t.name == "word":
        return st.integers(0, 31)
    if t.name == "string":
        return st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=80)
    return st.tuples(*[guessable_value_of(x) for x in t.args])


# -- Sophia types (as --type takes them) and their values -----------------------------------------------------

_SOPHIA_WORDS = ("int", "bool", "bits", "address", "contract", "oracle", "oracle_query")


def sophia_types() -> st.SearchStrategy[Type]:
    """The Sophia types ``chanlog.codec.sophia.parse_type`` accepts (no 1-tuples: Sophia has none)."""
    leaf = st.sampled_from([Type(n) for n in (*_SOPHIA_WORDS, "string")]) \
        | st.builds(lambda n: Type("bytes", (n,)), st.integers(1, 100))
    return st.recursive(leaf, lambda inner: st.one_of(
        st.builds(lambda t: Type("list", (t,)), inner),
        st.builds(lambda ts: Type("tuple", tuple(ts)), st.lists(inner, max_size=4).filter(lambda ts: len(ts) != 1)),
        st.builds(lambda k, v: Type("map", (k, v)), inner, inner),
        st.builds(lambda t: Type("variant", (Type("tuple"), Type("tuple", (t,)))), inner),
    ), max_leaves=8)


def sophia_value_of(t: Type) -> st.SearchStrategy:
    """Values of Sophia type ``t`` in the shapes of :mod:`chanlog.codec.fate` (what ``aevm.decode_typed`` gives)."""
    n, a = t.name, t.args
    if n == "int":
        return st.integers(-(1 << 255), (1 << 255) - 1) | st.integers(-100, 100)
    if n == "bits":
        return st.integers(-(1 << 255), (1 << 255) - 1).map(Bits)
    if n == "bool":
        return st.booleans()
    if n in fate.ADDRESS_PREFIXES:
        return st.binary(min_size=32, max_size=32).map(lambda b: Address(n, b))
    if n == "bytes":
        return st.binary(min_size=a[0], max_size=a[0]).map(Bytes)
    if n == "string":
        return st.text(st.characters(codec="utf-8"), max_size=60)
    if n == "list":
        return st.lists(sophia_value_of(a[0]), max_size=4).map(List)
    if n == "tuple":
        return st.tuples(*[sophia_value_of(x) for x in a])
    if n == "map":
        key_of = aevm.layout(a[0])
        return st.lists(st.tuples(sophia_value_of(a[0]), sophia_value_of(a[1])), max_size=3,
                        unique_by=lambda kv: aevm.encode_typed(kv[0], a[0])).map(
            lambda kvs: Map(tuple(sorted(kvs, key=lambda kv: aevm.encode(aevm._to_heap(kv[0], a[0]), key_of)))))
    assert n == "variant"
    return st.one_of(st.just(Variant((0, 1), 0, ())),
                     sophia_value_of(a[1].args[0]).map(lambda v: Variant((0, 1), 1, (v,))))


# -- RLP objects of every schema row ----------------------------------------------------------------------------

#: Nesting of objects inside objects generated (a signed_tx holding a force progress holding an update ...).
OBJECT_DEPTH = 2

#: Binaries of any size: short ones, and repeated patterns far above the corpus's sizes (up to ~200 kB).
binaries = st.binary(max_size=48) | st.tuples(st.binary(min_size=1, max_size=8), st.integers(500, 25_000)).map(
    lambda t: t[0] * t[1])


def _has_object(ftype: FieldType) -> bool:
    if ftype.kind is Kind.OBJECT:
        return True
    if ftype.kind is Kind.LIST:
        return _has_object(ftype.item)
    if ftype.kind is Kind.RECORD:
        return any(_has_object(t) for _, t in ftype.items)
    return False


#: Rows without nested objects: what an object field holds at the deepest level generated.
LEAF_ROWS = tuple(row for row in SCHEMAS if not any(_has_object(t) for _, t in row.fields))


def field_values(ftype: FieldType, depth: int = 0) -> st.SearchStrategy:
    """Values of one field type, in the forms :func:`chanlog.codec.build` takes (``aeserialization`` types:
    int, bool, binary, id, lists, fixed tuples; objects nested up to :data:`OBJECT_DEPTH`)."""
    k = ftype.kind
    if k is Kind.INT:
        return st.integers(0, 1 << 64) | st.integers(0, 1 << 256) | st.just(0)
    if k is Kind.BOOL:
        return st.booleans()
    if k is Kind.BINARY:
        return binaries
    if k is Kind.TEXT:
        return st.text(st.characters(codec="utf-8"), max_size=40) | binaries
    if k is Kind.ID:  # an id tag (aeser_id: account 1 .. channel 6) and a 32-byte hash
        return st.builds(lambda tag, h: bytes([tag]) + h, st.integers(1, 6), st.binary(min_size=32, max_size=32))
    if k is Kind.LIST:
        return st.lists(field_values(ftype.item, depth), max_size=3)
    if k is Kind.RECORD:
        return st.fixed_dictionaries({name: field_values(t, depth) for name, t in ftype.items})
    if k is Kind.MPT_NODE:
        return st.lists(binaries, min_size=2, max_size=2) | st.lists(st.binary(max_size=33), min_size=17,
                                                                     max_size=17)
    assert k is Kind.OBJECT
    rows = SCHEMAS if depth < OBJECT_DEPTH else LEAF_ROWS
    options = [st.sampled_from(rows).flatmap(lambda row: objects_of(row, depth + 1))]
    if ftype.empty:
        options.append(st.none())
    if ftype.maybe:  # contract store values and code kept raw: bytes that are not an RLP list
        options.append(binaries.filter(lambda b: not b or b[0] < 0xC0))
    return st.one_of(options)


def objects_of(row: Schema, depth: int = 0) -> st.SearchStrategy:
    """A :class:`chanlog.codec.Decoded` of schema ``row`` built with :func:`chanlog.codec.build`."""
    fields = st.fixed_dictionaries({name: field_values(t, depth) for name, t in row.fields})
    return fields.map(lambda values: build(row.tag, row.version, values))


# -- contract code ----------------------------------------------------------------------------------------------

_identifiers = st.from_regex(r"[a-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@st.composite
def fate_functions(draw: Any) -> contract.Function:
    """One FATE function: a name, its hash, attributes, signature and instructions of every opcode."""
    name = draw(_identifiers)
    code = []
    for _ in range(draw(st.integers(0, 6))):
        opcode = draw(st.sampled_from(sorted(contract.OPCODES)))
        op = contract.OPCODES[opcode]
        args = []
        for _ in range(op.arity):
            mode = draw(st.sampled_from(contract.ARG_MODES))
            if mode == "stack":
                args.append((mode, None))
            elif mode == "immediate":
                args.append((mode, draw(fate_leaves)))
            else:
                args.append((mode, draw(st.integers(0, 300))))
        code.append(contract.Instruction(opcode, tuple(args)))
    attrs = draw(st.integers(0, 3))
    return contract.Function(contract.function_hash(name), name, tuple(draw(st.lists(fate_types(), max_size=3))),
                             draw(fate_types()), bool(attrs & 1), bool(attrs & 2), attrs, tuple(code))


@st.composite
def contract_codes(draw: Any) -> dict[str, Any]:
    """Serialized contract code of any version (1-3) and VM: ``{"data", "version", "vm", "hint", "functions",
    "byte_code"}``; ``hint`` is the VM the enclosing object must name for the code to be read as ``vm`` (v3
    AEVM code without type_info), else ``None``. AEVM code may have an empty ``type_info`` (2018)."""
    version = draw(st.sampled_from([1, 2, 3]))
    vm = "aevm" if version < 3 else draw(st.sampled_from(["aevm", "fate"]))
    fields: dict[str, Any] = {"source_hash": draw(st.binary(min_size=32, max_size=32))}
    functions: list[Any] = []
    hint = None
    if vm == "aevm":
        rows = []
        for _ in range(draw(st.integers(0, 4))):
            args, ret = tuple(draw(st.lists(aevm_types, max_size=3))), draw(aevm_types)
            row = {"fun_hash": draw(st.binary(min_size=32, max_size=32)), "name": draw(_identifiers)}
            if version == 3:
                row["payable"] = draw(st.booleans())
            row["arg_type"] = aevm.encode_typerep(AType("tuple", args))
            row["out_type"] = aevm.encode_typerep(ret)
            rows.append(row)
            functions.append((row["fun_hash"], row["name"], args, ret))
        fields["type_info"] = rows
        fields["byte_code"] = draw(binaries)  # EVM code, kept as bytes
        if version == 3 and not rows:
            hint = "aevm"
    else:
        funs = draw(st.lists(fate_functions(), max_size=4, unique_by=lambda f: f.hash))
        symbols = Map(tuple((f.hash.decode("utf-8", "surrogateescape"), f.name) for f in funs))
        annotations = draw(st.lists(st.tuples(fate_leaves, fate_leaves), max_size=3).map(lambda kv: Map(tuple(kv))))
        fields["type_info"] = []
        fields["byte_code"] = contract.encode_fate_code(tuple(funs), symbols, annotations)
        functions = funs
    if version >= 2:
        fields["compiler_version"] = draw(st.from_regex(r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}", fullmatch=True)
                                          | st.just("unknown"))
    if version == 3:
        fields["payable"] = draw(st.booleans())
    from chanlog.codec import encode_bytes

    return {"data": encode_bytes(build("compiler_sophia", version, fields)), "version": version, "vm": vm,
            "hint": hint, "functions": functions, "byte_code": fields["byte_code"]}
