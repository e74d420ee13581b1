"""RLP schemas as data: the table's coverage, consistency and the layouts the spec singles out."""

from __future__ import annotations

import pytest

from chanlog.codec import schema as sch
from chanlog.codec.encoding import PREFIXES
from chanlog.codec.schema import (
    BY_KEY,
    SCHEMAS,
    TAG_NAMES,
    FieldType,
    Kind,
    by_name,
    layouts,
    lookup,
    type_name,
)

#: (tag, version) pairs issue 3 asks for (SCHEMAS.md §3-§7).
REQUIRED = [
    (11, 1), (50, 1), (50, 2), (51, 1), (52, 1), (53, 1), (54, 1), (55, 1), (56, 1), (59, 1), (521, 1),
    (501, 1), (57, 1), (57, 2), (570, 1), (571, 1), (572, 1), (573, 1), (574, 1), (575, 1), (576, 2),
    (58, 1), (58, 2), (58, 3), (62, 0), (621, 1), (622, 1), (623, 1), (624, 1), (625, 1), (626, 1),
    (63, 1), (64, 1), (60, 1), (10, 1), (10, 2), (10, 3), (40, 1), (40, 2), (41, 2), (41, 3), (81, 1),
    (81, 2), (80, 1), (43, 1),
]


@pytest.mark.parametrize(("tag", "version"), REQUIRED)
def test_required_layouts_exist(tag, version):
    assert layouts(tag, version), f"no schema for {type_name(tag)} v{version}"


def test_rows_are_consistent():
    for row in SCHEMAS:
        assert TAG_NAMES[row.tag] == row.name
        assert len(set(row.field_names)) == len(row.fields), row.label
        assert row.prefix in PREFIXES
        for _, ftype in row.fields:
            _check_type(ftype)


def _check_type(ftype: FieldType) -> None:
    assert isinstance(ftype.kind, Kind)
    if ftype.kind in (Kind.BINARY, Kind.OBJECT):
        assert ftype.prefix in PREFIXES
    if ftype.kind is Kind.LIST:
        assert ftype.item is not None
        _check_type(ftype.item)
    if ftype.kind is Kind.RECORD:
        assert ftype.items
        for _, t in ftype.items:
            _check_type(t)


def test_two_layouts_of_one_key_differ_in_field_count():
    for key, rows in BY_KEY.items():
        counts = [len(r.fields) for r in rows]
        assert len(counts) == len(set(counts)), key


def test_legacy_layouts_are_told_apart_by_field_count():
    assert lookup(57, 1, 4).field_names == ("channel_id", "round", "updates", "state_hash")
    legacy = lookup(57, 1, 9)
    assert legacy.field_names[:3] == ("channel_id", "previous_round", "round")
    assert "2018" in legacy.note
    assert "from_id" not in lookup(53, 1, 6).field_names
    assert lookup(53, 1, 7).field_names[1] == "from_id"
    assert "delegate_ids" not in lookup(50, 1, 10).field_names
    assert lookup(50, 1, 11).field_names[8] == "delegate_ids"
    assert lookup(50, 1, 12) is None


def test_call_contract_update_uses_the_node_order():
    assert lookup(574, 1, 8).field_names == (
        "caller", "contract", "abi_version", "amount", "gas", "gas_price", "call_data", "call_stack")
    assert str(dict(lookup(574, 1, 8).fields)["call_stack"]) == "[int]"


def test_channel_create_v2_fields_and_types():
    row = by_name("channel_create_tx", 2)[0]
    assert row.field_names == (
        "initiator", "initiator_amount", "responder", "responder_amount", "channel_reserve", "lock_period",
        "ttl", "fee", "initiator_delegate_ids", "responder_delegate_ids", "state_hash", "nonce")
    types = dict(row.fields)
    assert types["initiator"] is sch.ID
    assert types["state_hash"].prefix == "st"
    assert str(types["responder_delegate_ids"]) == "[id]"


def test_nested_objects_are_marked():
    assert dict(lookup(11, 1, 2).fields)["transaction"].kind is Kind.OBJECT
    close_solo = dict(lookup(54, 1, 7).fields)
    assert close_solo["payload"].empty and close_solo["poi"].prefix == "pi"
    force = dict(lookup(521, 1, 10).fields)
    assert force["update"].kind is Kind.OBJECT and force["offchain_trees"].prefix == "ss"
    assert dict(lookup(64, 1, 2).fields)["val"].maybe
    assert lookup(62, 0, 6).prefix == "ss" and lookup(60, 1, 6).prefix == "pi" and lookup(622, 1, 1).prefix == "cs"


def test_withdraw_update_names_the_recipient_to():
    assert lookup(572, 1, 2).field_names == ("to", "amount")


def test_type_names():
    assert type_name(521) == "channel_force_progress_tx"
    assert type_name(999) == "tag 999"
    assert lookup(50, 2, 12).label == "channel_create_tx v2"
    assert lookup(99, 1, 1) is None and layouts(99, 1) == ()


# -- every row, built from its field types (issue 22): build, encode, decode, re-encode byte for byte ------------

@pytest.mark.parametrize("row", SCHEMAS, ids=[f"{r.label}-{len(r.fields)}f" for r in SCHEMAS])
def test_every_row_round_trips_byte_for_byte(row):
    from hypothesis import HealthCheck, given, settings
    from strategies import objects_of

    from chanlog.codec import decode, decode_bytes, encode, encode_bytes
    from chanlog.codec.encoding import MAX_BASE58_CHARS, encode_api

    @settings(max_examples=6, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(objects_of(row))
    def check(built):
        data = encode_bytes(built)
        back = decode_bytes(data)
        assert (back.tag, back.version, tuple(back.fields)) == (row.tag, row.version, row.field_names)
        assert encode_bytes(back) == data
        text = encode(built)  # the row's prefix, today's alphabet
        assert encode(decode(text)) == text
        if row.prefix == "tx" and len(data) * 138 // 100 + 8 <= MAX_BASE58_CHARS:  # 2018 wrote tx_ in base58
            text58 = encode_api("tx", data, encoding="base58")
            assert encode(decode(text58)) == text58

    check()
