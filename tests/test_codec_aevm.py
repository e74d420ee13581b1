"""AEVM values in the Sophia ABI (chanlog.codec.aevm): the ABI document's own examples, round trips, hostile
heaps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    aevm_types,
    aevm_value_of,
    guessable_types,
    guessable_value_of,
    sophia_types,
    sophia_value_of,
)

from chanlog.codec import aevm, sophia
from chanlog.codec.aevm import AType
from chanlog.codec.errors import CodecError
from chanlog.codec.fate import List, Map, Type, Variant

W, S = AType("word"), AType("string")


def words(*items: int | bytes) -> bytes:
    """Heap words: ints as 256-bit big-endian, bytes right-padded with zeros (as aevm.md writes "main")."""
    return b"".join(x.to_bytes(32, "big") if isinstance(x, int) else x.ljust(32, b"\0") for x in items)


# protocol contracts/aevm.md, "Encoding Sophia values as binaries": ("main", (1, 2, 3)), two layouts
MAIN_TYPE = AType("tuple", (S, AType("tuple", (W, W, W))))
MAIN_CANONICAL = words(0x20, 0x60, 0xA0, 4, b"main", 1, 2, 3)
MAIN_OTHER = words(0x60, 4, b"main", 0x20, 0xA0, 1, 2, 3)


def test_sophia_abi_example_canonical_layout():
    assert aevm.decode(MAIN_CANONICAL, MAIN_TYPE) == ("main", (1, 2, 3))
    assert aevm.encode(("main", (1, 2, 3)), MAIN_TYPE) == MAIN_CANONICAL


def test_sophia_abi_example_other_layout_reads_the_same():
    assert aevm.decode(MAIN_OTHER, MAIN_TYPE) == ("main", (1, 2, 3))


def test_sophia_abi_calldata_example():
    # aevm.md, "Initialization": calling foo (hash 12345) with 1 and "bar" is the pair (12345, (1, "bar"))
    t = aevm.call_type(AType("tuple", (W, S)))
    data = aevm.encode((12345, (1, "bar")), t)
    assert data == words(0x20, 12345, 0x60, 1, 0xA0, 3, b"bar")
    assert aevm.decode(data, t) == (12345, (1, "bar"))


def test_lists_options_maps_and_typereps():
    t = AType("tuple", (AType("list", (W,)), AType("variant", ((), (W,))), AType("map", (S, W))))
    value = (List((1, 2)), Variant((0, 1), 1, (9,)), Map((("a", 1), ("b", 2))))
    data = aevm.encode(value, t)
    assert aevm.decode(data, t) == value
    assert aevm.encode(List(()), AType("list", (W,))) == words(aevm.NIL)
    assert str(t) == "(list(word) * option(word) * map(string, word))"
    rep = aevm.encode_typerep(t)
    assert aevm.decode_typerep(rep) == t


_atypes = aevm_types
_value_of = aevm_value_of


@settings(max_examples=200, deadline=None)
@given(_atypes.flatmap(lambda t: st.tuples(st.just(t), _value_of(t))))
def test_round_trip(t_and_value):
    t, value = t_and_value
    data = aevm.encode(value, t)
    assert aevm.decode(data, t) == value
    assert aevm.encode(aevm.decode(data, t), t) == data
    assert aevm.decode_typerep(aevm.encode_typerep(t)) == t


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), _atypes)
def test_any_heap_decodes_or_fails_cleanly(data, t):
    try:
        aevm.decode(data, t)
    except CodecError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(data)


@pytest.mark.parametrize(("heap", "t", "words_"), [
    (b"\0" * 31, W, "at least one 32-byte word"),
    (words(0x40), S, "outside the 32-byte heap"),
    (words(0x20, 10**6), S, "run past"),
    (words(0x20, 7, 0x20), AType("list", (W,)), "cyclic list"),
    (words(0x20, 0x20), AType("tuple", (AType("tuple", (W,)),)), "cyclic pointer"),
    (words(0x20, 5), AType("variant", ((), (W,))), "variant tag 5"),
    (words(0x20, 10**9), AType("map", (W, W)), "cannot fit"),
    (words(0x21), S, "not word aligned"),
])
def test_malformed_heaps(heap, t, words_):
    with pytest.raises(CodecError, match=words_):
        aevm.decode(heap, t)


def test_shared_pointers_cannot_blow_up():
    # every tuple's two elements point to the same next tuple: 2**60 paths in 61 tuples
    depth = 60
    heap = [0x20]
    for i in range(depth):
        nxt = 0x20 + 64 * (i + 1)
        heap += [nxt, nxt]
    heap += [0, 0]
    t = W
    for _ in range(depth + 1):
        t = AType("tuple", (t, t))
    with pytest.raises(CodecError, match="more words than the data holds|nested deeper"):
        aevm.decode(words(*heap), t)


# -- Sophia types (--type) and reading without a type (issue 22) ------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(sophia_types().flatmap(lambda t: st.tuples(st.just(t), sophia_value_of(t))))
def test_sophia_typed_round_trip(t_and_value):
    t, value = t_and_value
    assert sophia.parse_type(str(t)) == t  # the parser reads what Sophia (and str()) writes
    data = aevm.encode_typed(value, t)
    back = aevm.decode_typed(data, t)
    assert back == value
    assert aevm.encode_typed(back, t) == data


@pytest.mark.parametrize(("text", "expected"), [
    ("int", "int"), (" ( address , string ) ", "(address * string)"), ("(int * bool)", "(int * bool)"),
    ("list(option(int))", "list(option(int))"), ("map(string, (int, bytes(3)))", "map(string, (int * bytes(3)))"),
    ("hash", "bytes(32)"), ("signature", "bytes(64)"), ("unit", "unit"), ("()", "unit"), ("(int)", "int"),
])
def test_parse_sophia_type(text, expected):
    assert str(sophia.parse_type(text)) == expected


@pytest.mark.parametrize(("text", "words"), [
    ("", "empty type"), ("foo", "at character 0: unknown type 'foo'"), ("list(int", r"at character 8: expected \)"),
    ("(int,)", "at character 5: expected a type"), ("bytes(x)", "expected number"), ("int int", "more after"),
    ("map(int)", "expected ,"), ("list(" * 100 + "int" + ")" * 100, "nested deeper"), ("i" * 5000, "more than"),
    ("int$", "unexpected '\\$'"),
])
def test_parse_sophia_type_errors_name_the_character(text, words):
    with pytest.raises(CodecError, match=words):
        sophia.parse_type(text)


def test_typed_words_read_as_aesophia_reads_them():
    # aeso_vm_decode:from_aevm: int signed, bool /= 0, bytes(n <= 32) the word's first n bytes
    assert aevm.decode_typed(words((1 << 256) - 5), Type("int")) == -5
    assert aevm.decode_typed(words(7), Type("bool")) is True
    assert aevm.decode_typed(words(b"\xab\xcd"), Type("bytes", (2,))) == b"\xab\xcd"
    assert aevm.decode_typed(words(0x20, b"\x01" * 32, b"\x02"), Type("bytes", (33,))) == b"\x01" * 32 + b"\x02"
    addr = aevm.decode_typed(words(0x20, 1, 0x60, 2, b"hi"), Type("tuple", (Type("address"), Type("string"))))
    assert str(addr[0]).startswith("ak_") and addr[1] == "hi"


@settings(max_examples=200, deadline=None)
@given(aevm_types.flatmap(lambda t: st.tuples(st.just(t), aevm_value_of(t))))
def test_guess_only_answers_what_writes_back(t_and_value):
    t, value = t_and_value
    data = aevm.encode(value, t)
    found = aevm.guess(data)
    if found is not None:
        assert aevm.encode(found[1], found[0]) == data


@settings(max_examples=150, deadline=None)
@given(guessable_types.flatmap(lambda t: st.tuples(st.just(t), guessable_value_of(t))))
def test_guess_reads_words_strings_and_tuples(t_and_value):
    t, value = t_and_value
    data = aevm.encode(value, t)
    found = aevm.guess(data)
    assert found is not None, (t, value)
    assert aevm.encode(found[1], found[0]) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400).map(lambda b: b[:len(b) - len(b) % 32]))
def test_guess_on_any_words_answers_or_gives_up(data):
    found = aevm.guess(data)
    assert found is None or aevm.encode(found[1], found[0]) == data


def test_guess_budget_bounds_hostile_heaps():
    # every word points one word further: each region has many possible arities; the budget ends the search
    heap = words(*[0x20 * (i + 1) for i in range(aevm.MAX_GUESS_BYTES // 32)])
    assert aevm.guess(heap) is None or aevm.encode(aevm.guess(heap)[1], aevm.guess(heap)[0]) == heap
    assert aevm.guess(heap + words(1)) is None  # larger than MAX_GUESS_BYTES: not read at all
