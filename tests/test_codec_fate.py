"""FATE values (chanlog.codec.fate): the tag table, round trips (Hypothesis), hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import fate_types, fate_values

from chanlog.codec import fate
from chanlog.codec.errors import CodecError
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

# Byte strings written by hand from aeb_fate_encoding's tag definitions (the comments there give the layout).
KNOWN = [
    (0, "00"), (1, "02"), (-1, "82"), (63, "7e"), (-63, "fe"), (64, "6f00"), (-64, "ef00"),
    (65, "6f01"), (64 + 255, "6f81ff"), (True, "ff"), (False, "7f"), ("", "5f"), ("a", "0561"), ((), "3f"),
    (List(()), "03"), (List((1, 2)), "230204"), ((1, 2), "2b0204"), (Map(()), "2f00"),
    (Map(((1, True),)), "2f0102ff"), (StoreMap(3), "bf03"), (Bits(0), "4f00"), (Bits(5), "4f05"),
    (Bits(-1), "cf01"), (Bytes(b"\x01\x02"), "9f01090102"),
    (Address("address", bytes(32)), "9f00a0" + "00" * 32), (Address("contract", bytes(32)), "9f02a0" + "00" * 32),
    (Variant((0, 1), 1, (7,)), "af82000101" + "1b0e"), (Variant((0, 1), 0, ()), "af820001003f"),
    (TypeRep(Type("int")), "07"), (TypeRep(Type("list", (Type("string"),))), "2777"),
    (ContractBytearray(b"\xab"), "8f02ab"), ("x" * 64, "01" + "00" + "78" * 64),
]


@pytest.mark.parametrize(("value", "hexed"), KNOWN, ids=[h for _, h in KNOWN])
def test_known_encodings(value, hexed):
    data = bytes.fromhex(hexed)
    assert fate.encode(value) == data
    back = fate.decode(data)
    assert back == value and type(back) is type(value)


def test_negative_small_int_layout():
    # sign bit, 6 bits of magnitude, 0: -63 is 1 111111 0
    assert fate.encode(-63) == bytes([0b11111110])
    assert fate.decode(bytes([0b11111110])) == -63


def test_call_data_of_the_corpus_shape():
    # (function hash as a 4-byte string, (42,)): main(42) from the contracts log
    data = bytes.fromhex("2b11b8177eec1b54")
    value = fate.decode(data)
    assert value == ("\udcb8\x17~\udcec", (42,))
    assert fate.encode(value) == data


# -- round trips ---------------------------------------------------------------------------------------

_types = fate_types
_values = fate_values


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values)
def test_round_trip_values(value):
    data = fate.encode(value)
    back = fate.decode(data)
    assert fate.encode(back) == data
    assert fate.to_json(back) == fate.to_json(value)


@settings(max_examples=200, deadline=None)
@given(_types())
def test_round_trip_types(t):
    data = fate.encode_type(t)
    assert fate.decode_type(data) == t
    assert fate.decode(data) == TypeRep(t)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_fail_cleanly(data):
    try:
        value = fate.decode(data)
    except CodecError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(data)
        assert "at byte" in str(exc)
    else:
        assert fate.encode(value) == data  # whatever decodes is canonical: it writes back to the same bytes


# -- hostile input --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("hexed", "offset", "words"), [
    ("", 0, "ends where a value should start"),
    ("0f", 0, "unknown FATE tag 0x0f"),
    ("df", 0, "unknown FATE tag 0xdf"),
    ("80", 0, "negative zero"),
    ("0d6162", 1, "3-byte string needs 3 bytes, only 2 left"),
    ("6f820001", 1, "non-canonical integer 0x0001"),
    ("6f8100", 1, "non-canonical RLP"),
    ("2b02", 1, "a tuple of 2 items cannot fit in the 1 bytes left"),
    ("1f88ffffffffffffffff", 10, "cannot fit"),
    ("2f88ffffffffffffffff", 10, "cannot fit"),
    ("af820001050203", 4, "variant tag 5 but only 2 constructors"),
    ("af8200010002", 5, "must be a tuple"),
    ("9f07a0", 1, "unknown object type 7"),
    ("0202", 1, "1 trailing bytes"),
    ("8f7e00", 2, "a 63-byte contract bytearray needs 63 bytes"),
    ("e7", 1, "a type variable needs 1 bytes, only 0 left"),
])
def test_malformed_values_name_the_offset(hexed, offset, words):
    with pytest.raises(CodecError) as info:
        fate.decode(bytes.fromhex(hexed))
    assert info.value.offset == offset, str(info.value)
    assert words in str(info.value)
    assert f"at byte {offset}" in str(info.value)


def test_deep_nesting_is_one_error():
    data = b"\x13" * 100_000 + b"\x03"  # a list holding a list holding ... (100,000 levels)
    with pytest.raises(CodecError, match=f"nested deeper than {fate.MAX_DEPTH}") as info:
        fate.decode(data)
    assert info.value.offset == fate.MAX_DEPTH + 1  # the items of the list at byte 64
    assert info.value.path[:3] == ["value", "[0]", "[0]"]
    assert len(str(info.value)) < 200  # the path is shortened in the message


def test_huge_integer_is_refused():
    n = fate.MAX_INT_BYTES + 1
    data = b"\x6f" + bytes([0xB9]) + n.to_bytes(2, "big") + b"\x01" * n
    with pytest.raises(CodecError, match="more than the limit"):
        fate.decode(data)


def test_oversized_blob_is_refused_before_reading():
    with pytest.raises(CodecError, match="more than the limit"):
        fate.decode(b"\x00" * (fate.MAX_SIZE + 1))


def test_absurd_counts_cost_nothing():
    # a long list announcing 2**64 items in 12 bytes: refused from the count alone
    with pytest.raises(CodecError, match="cannot fit in the 0 bytes left"):
        fate.decode(b"\x1f\x88" + b"\xff" * 8)


def test_format_value_is_sophia_like():
    t = Type("variant", (Type("tuple"), Type("tuple", (Type("int"),))))
    assert fate.format_value(Variant((0, 1), 1, (5,)), t) == "Some(5)"
    assert fate.format_value(Variant((0, 1), 0, ())) == "None"
    assert fate.format_value(Variant((0, 2), 1, (1, 2))) == "#1(1, 2)"
    assert fate.format_value(("a\n", Bytes(b"\x0a"), List((1,)), Map((("k", 1),)))) \
        == '("a\\n", #0a, [1], {["k"] = 1})'
    assert fate.format_value(List(range(1000)), limit=20).endswith("\u2026")
    assert str(t) == "option(int)"
