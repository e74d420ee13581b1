"""AEVM values in the Sophia ABI (chanlog.codec.aevm): the ABI document's own examples, round trips, hostile
heaps."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlog.codec import aevm
from chanlog.codec.aevm import AType
from chanlog.codec.errors import CodecError
from chanlog.codec.fate import List, Map, Variant

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


_atypes = st.recursive(st.sampled_from([W, S]), lambda inner: st.one_of(
    st.builds(lambda x: AType("list", (x,)), inner),
    st.builds(lambda xs: AType("tuple", tuple(xs)), st.lists(inner, max_size=4)),
    st.builds(lambda cs: AType("variant", tuple(tuple(c) for c in cs)),
              st.lists(st.lists(inner, max_size=2), min_size=1, max_size=3)),
    st.builds(lambda k, v: AType("map", (k, v)), st.sampled_from([W, S]), inner),
), max_leaves=8)


def _value_of(t: AType) -> st.SearchStrategy:
    if t.name == "word":
        return st.integers(0, (1 << 256) - 2)
    if t.name == "string":
        return st.text(max_size=70)
    if t.name == "list":
        return st.lists(_value_of(t.args[0]), max_size=4).map(List)
    if t.name == "tuple":
        return st.tuples(*[_value_of(x) for x in t.args])
    if t.name == "variant":
        return st.integers(0, len(t.args) - 1).flatmap(
            lambda tag: st.tuples(*[_value_of(x) for x in t.args[tag]]).map(
                lambda vs: Variant(tuple(len(c) for c in t.args), tag, vs)))
    return st.dictionaries(_value_of(t.args[0]), _value_of(t.args[1]), max_size=3).map(
        lambda d: Map(tuple(sorted(d.items(), key=lambda kv: aevm.encode(kv[0], t.args[0])))))


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
