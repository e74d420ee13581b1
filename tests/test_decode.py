"""Decoding by schema: seeds and corpus decode fully and re-encode byte for byte; precise, path-like errors;
annotate never raises; objects can be changed and built; JSON, text and Markdown shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import rlp
from conftest import corpus_params
from hypothesis import given, settings
from hypothesis import strategies as st

import chanlog.codec.transactions as decode_module
from chanlog.codec.encoding import ApiValue, decode_api, encode_api
from chanlog.codec.transactions import (
    ENCODED_PREFIXES_WORTH_DECODING,
    OBJECT_CACHE_SIZE,
    Decoded,
    DecodeError,
    EmptyInt,
    EncodeError,
    annotate,
    annotate_bytes,
    build,
    clear_caches,
    decode,
    decode_bytes,
    decoded_markdown,
    encode,
    encode_bytes,
    errors,
    format_tree,
    is_decodable_blob,
    strip_signatures,
    to_json,
)

#: A JSON or Python-literal string value that looks like an encoded blob (possibly cut short with ``...``).
VALUE = re.compile(r"""[:\[,]\s*["']((?:tx|ss|pi|cs)[_$][A-Za-z0-9+/=]+(?:\.\.\.)?)["'](?!\s*:)""")
#: Markdown code blocks of a corpus log.
BLOCK = re.compile(r"```javascript\n(.*?)\n```", re.S)


def blobs_in(text: str) -> list[str]:
    return list(dict.fromkeys(VALUE.findall(text)))


def seed_blobs(seeds: Path) -> list[str]:
    out: list[str] = []
    for path in sorted(seeds.glob("*.txt")):
        out += blobs_in(path.read_text(encoding="utf-8"))
    return out


def tree_labels(d: Decoded) -> list[str]:
    return [x.label for x in d.walk()]


def rlp_blob(items, prefix: str = "tx") -> str:
    return encode_api(prefix, rlp.encode(items))


def i(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


AK = b"\x01" + bytes(range(32))
AK2 = b"\x01" + bytes(range(32, 64))
CH = b"\x06" + bytes(range(64, 96))
HASH = bytes(range(100, 132))


def create_v2_items(responder: bytes = AK2) -> list:
    return [i(50), i(2), AK, i(70), responder, i(40), i(2), i(10), i(0), i(17620), [], [], HASH, i(49)]


def signed(inner: list, sigs: list[bytes] | None = None) -> list:
    return [i(11), i(1), sigs if sigs is not None else [bytes(64)], rlp.encode(inner)]


# -- seeds -----------------------------------------------------------------------------------------

def test_every_complete_seed_blob_decodes_by_schema_and_reencodes_exactly(seeds):
    blobs = seed_blobs(seeds)
    complete = [b for b in blobs if not b.endswith("...") and not b[3:].startswith("i")]
    assert len(complete) >= 25
    for blob in complete:
        root = decode(blob)
        assert errors(annotate(blob)) == []
        assert encode(root) == blob
    kinds = {label for b in complete for label in tree_labels(decode(b))}
    assert {"signed_tx v1", "channel_create_tx v1", "channel_offchain_tx v1", "channel_force_progress_tx v1",
            "state_trees v0", "channel_offchain_update_call_contract v1", "calls_mtree v1"} <= kinds


def test_truncated_seed_blobs_give_the_precise_error(seeds):
    truncated = [b for b in seed_blobs(seeds) if b.endswith("...")]
    assert len(truncated) >= 15
    for blob in truncated:
        with pytest.raises(DecodeError) as info:
            decode(blob)
        assert info.value.where == blob
        assert info.value.message.startswith("truncated: the body ends with '...'")
    with pytest.raises(DecodeError, match=r"the kept start is a signed_tx v1 \(tag 11\) of 169 bytes"):
        decode("tx_+KcLAfhCuEBdI...")
    with pytest.raises(DecodeError, match=r"a channel_offchain_tx v1 \(tag 57\) of 151 bytes"):
        decode("tx_+JU5AaEGrATZCq...")


def test_stray_leading_i_is_pointed_at(seeds):
    stray = [b for b in seed_blobs(seeds) if b[3:].startswith("i")]
    assert stray, "the seeds have a blob with a stray leading 'i'"
    for blob in stray:
        with pytest.raises(DecodeError) as info:
            decode(blob)
        assert "bad checksum" in info.value.message
        assert "without the 'i' at position 4 it is a valid base58check body" in info.value.message
        repaired = blob[:3] + blob[4:]
        assert decode(repaired).label == "signed_tx v1"


def test_force_progress_update_matches_the_nodes_own_json(seeds):
    text = (seeds / "004_dded10d81c50af6f.txt").read_text(encoding="utf-8")
    blob = next(b for b in blobs_in(text) if not b.endswith("..."))
    fp = decode(blob)["transaction"]
    assert fp.label == "channel_force_progress_tx v1"
    update = fp["update"]
    assert update.label == "channel_offchain_update_call_contract v1"
    assert (update["gas"], update["gas_price"], update["amount"], update["abi_version"], update["call_stack"]) == (
        1_000_000, 1_000_000_000, 10, 1, ())
    assert f'"call_data":"{update["call_data"]}"' in text.replace(" ", "") or update["call_data"] in text
    assert fp["payload"]["transaction"].label == "channel_offchain_tx v2"
    assert fp["offchain_trees"]["calls"]["payload"].label == "mtree v1"


def test_legacy_layouts_are_picked_by_field_count(seeds):
    text = (seeds / "000_78ddce86efefb1f6.txt").read_text(encoding="utf-8")
    labels = {}
    for blob in blobs_in(text):
        if blob.endswith("...") or blob[3:].startswith("i"):
            continue
        for node in decode(blob).walk():
            labels.setdefault(node.label, set()).add(tuple(node.fields))
    offchain = labels["channel_offchain_tx v1"]
    assert any(f[:3] == ("channel_id", "previous_round", "round") for f in offchain)
    assert ("channel_id", "initiator_amount", "responder_amount", "ttl", "fee", "nonce") in \
        labels["channel_close_mutual_tx v1"]
    assert any("delegate_ids" not in f for f in labels["channel_create_tx v1"])
    assert any("delegate_ids" in f for f in labels["channel_create_tx v1"])


# -- corpus ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("log", corpus_params())
def test_corpus_blobs_decode_without_error_and_reencode_exactly(log):
    text = log.read_text(encoding="utf-8")
    for blob in blobs_in(text):
        root = annotate(blob)
        assert errors(root) == [], blob[:40]
        assert encode(root) == blob
        assert to_json(decode(blob)) == to_json(root)


class _NoRows(dict):
    """A stand-in for the compiled rows that never keeps one: every object takes the general loop."""

    def __setitem__(self, key, value) -> None:
        pass


def test_compiled_rows_give_what_the_general_loop_gives(corpus, monkeypatch):
    """Every corpus blob decodes to the same tree through the compiled rows as through the general loop."""
    blobs = [b for log in sorted(corpus.rglob("*.md")) for b in blobs_in(log.read_text(encoding="utf-8"))]
    clear_caches()
    fast = [to_json(decode(b)) for b in blobs]
    assert decode_module._FAST, "no row was compiled"
    monkeypatch.setattr(decode_module, "_FAST", _NoRows())
    clear_caches()
    slow = [to_json(decode(b)) for b in blobs]
    clear_caches()
    assert len(fast) > 2000 and fast == slow


def test_a_compiled_row_hands_a_bad_field_to_the_general_loop():
    good = rlp_blob(signed(create_v2_items()))
    assert decode(good)["transaction"].label == "channel_create_tx v2"  # its row is compiled now
    bad = [rlp_blob(signed(create_v2_items(responder=b"\x09" + bytes(32)))),
           rlp_blob(signed(create_v2_items(responder=AK2[:20]))),
           rlp_blob(signed([*create_v2_items()[:3], b"\x00\x46", *create_v2_items()[4:]]))]
    messages = []
    for blob in bad:
        with pytest.raises(DecodeError) as info:
            decode(blob)
        messages.append(str(info.value))
    assert messages == [
        "signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: unknown id tag 9",
        "signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: expected an id (33 bytes), "
        "got a 20-byte string",
        "signed_tx v1 -> transaction -> channel_create_tx v2 -> initiator_amount: leading zero byte in int 0x0046",
    ]


# -- read-only trees, shared nested objects --------------------------------------------------------

def test_decoded_trees_are_read_only():
    root = decode(rlp_blob(signed(create_v2_items())))
    tx = root["transaction"]
    with pytest.raises(TypeError):
        tx.fields["fee"] = 1  # type: ignore[index]
    assert type(root["signatures"]) is tuple and type(tx["initiator_delegate_ids"]) is tuple
    changed = tx.with_fields(fee=1, initiator_delegate_ids=[encode_api("ak", AK[1:])])
    assert changed["fee"] == 1 and type(changed["initiator_delegate_ids"]) is tuple
    assert tx["fee"] == 17620 and tx["initiator_delegate_ids"] == ()
    with pytest.raises(TypeError):
        build("channel_offchain_update_transfer", 1, {"from": "x", "to": "y", "amount": 5}).fields["amount"] = 6


def test_trees_share_an_equal_nested_object_and_keep_their_own_envelope():
    inner = create_v2_items()
    one = signed(inner, [bytes(64)])
    two = signed(inner, [bytes(64), bytes(range(64))])
    a, b = decode(rlp_blob(one)), decode(rlp_blob(two))
    assert a["transaction"] is b["transaction"]  # decoded once
    assert a["signatures"] != b["signatures"]
    legacy = encode_api("tx", rlp.encode(one), encoding="base58")
    c = decode(legacy)
    assert c.fields is a.fields and c is not a  # same object bytes, another envelope
    assert (encode(a), encode(c)) == (rlp_blob(one), legacy)


def test_bytes_like_objects_decode_like_bytes():
    data = rlp.encode(signed(create_v2_items()))
    assert decode_bytes(bytearray(data)) == decode_bytes(memoryview(data)) == decode_bytes(data)
    assert annotate_bytes(bytearray(data)).error is None


def test_the_object_cache_is_bounded_and_can_be_emptied():
    clear_caches()
    for n in range(OBJECT_CACHE_SIZE + 50):
        decode(rlp_blob(signed(create_v2_items(responder=b"\x01" + n.to_bytes(32, "big")))))
    assert decode_module._object.cache_info().currsize == OBJECT_CACHE_SIZE
    clear_caches()
    assert decode_module._object.cache_info().currsize == 0


def _walk_json(data):
    if isinstance(data, dict):
        yield data
        for v in data.values():
            yield from _walk_json(v)
    elif isinstance(data, list):
        for v in data:
            yield from _walk_json(v)


UPDATE_TAGS = {"OffChainTransfer": 570, "OffChainDeposit": 571, "OffChainWithdrawal": 572,
               "OffChainNewContract": 573, "OffChainCallContract": 574, "OffChainMeta": 576}


def _same(ours, theirs) -> bool:
    if isinstance(ours, Decoded):
        return encode_api(theirs[:2], encode_bytes(ours)) == theirs
    if isinstance(ours, tuple):  # list fields decode as tuples, the node's JSON has lists
        return isinstance(theirs, list) and len(ours) == len(theirs) and all(map(_same, ours, theirs))
    return ours == theirs


def test_decoded_updates_agree_with_the_updates_the_node_printed(corpus):
    """Legacy logs carry both a v1 off-chain tx (updates inside) and the node's JSON of its updates."""
    compared = 0
    for log in sorted(corpus.rglob("*.md")):
        for block in BLOCK.findall(log.read_text(encoding="utf-8")):
            try:
                frame = json.loads(block)
            except json.JSONDecodeError:
                continue
            for obj in _walk_json(frame):
                updates = obj.get("updates")
                blob = obj.get("tx") or obj.get("signed_tx") or obj.get("state")
                if not isinstance(updates, list) or not is_decodable_blob(blob):
                    continue
                offchain = [n for n in decode(blob).walk() if n.label == "channel_offchain_tx v1"]
                if not offchain:
                    continue
                ours = offchain[0]["updates"]
                assert len(ours) == len(updates)
                for mine, theirs in zip(ours, updates, strict=True):
                    assert mine.tag == UPDATE_TAGS[theirs["op"]]
                    for key, value in theirs.items():
                        name = key if key in mine.fields else key.removesuffix("_id")
                        if name in mine.fields:
                            assert _same(mine[name], value), (log.name, key)
                            compared += 1
    assert compared > 1000


# -- int, bool and id rules ------------------------------------------------------------------------

def test_empty_int_reads_as_zero_and_is_written_back_empty():
    items = create_v2_items()
    items[8] = b""  # ttl as the empty string
    blob = rlp_blob(signed(items))
    tx = decode(blob)["transaction"]
    assert tx["ttl"] == 0 and type(tx["ttl"]) is EmptyInt
    assert encode(decode(blob)) == blob
    assert rlp.decode(encode_bytes(tx.with_fields(ttl=0)))[8] == b"\x00"  # the node's way to write 0


def test_leading_zero_int_is_rejected_with_its_path():
    items = create_v2_items()
    items[3] = b"\x00\x46"
    with pytest.raises(DecodeError) as info:
        decode(rlp_blob(signed(items)))
    assert str(info.value) == ("signed_tx v1 -> transaction -> channel_create_tx v2 -> initiator_amount: "
                               "leading zero byte in int 0x0046")


def test_unknown_id_tag_gives_the_path_like_message():
    blob = rlp_blob(signed(create_v2_items(responder=b"\x09" + bytes(32))))
    with pytest.raises(DecodeError) as info:
        decode(blob)
    assert str(info.value) == "signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: unknown id tag 9"
    assert info.value.path == ["signed_tx v1", "transaction", "channel_create_tx v2", "responder"]
    assert info.value.message == "unknown id tag 9"


def test_bad_id_length_and_bad_bool():
    with pytest.raises(DecodeError, match=r"responder: expected an id \(33 bytes\), got a 5-byte string"):
        decode(rlp_blob(create_v2_items(responder=b"\x01abcd")))
    contract = [i(40), i(1), AK, i(0x60001), b"code", b"", b"\x02", [], i(10)]
    with pytest.raises(DecodeError, match=r"contract v1 -> active: expected a bool \(0x00 or 0x01\), got 0x02"):
        decode(rlp_blob(contract, "ba"))


def test_list_index_in_path():
    items = [i(11), i(1), [bytes(64), [b"x"]], rlp.encode(create_v2_items())]
    with pytest.raises(DecodeError, match=r"^signed_tx v1 -> signatures\[1\]: expected a binary, got a list"):
        decode(rlp_blob(items))


def test_unknown_tag_version_and_field_count():
    with pytest.raises(DecodeError, match="^unknown tag 99$"):
        decode(rlp_blob([i(99), i(1), b"x"]))
    with pytest.raises(DecodeError, match=r"^no schema for channel_create_tx version 7 \(known: v1, v2\)$"):
        decode(rlp_blob([i(50), i(7), b"x"]))
    with pytest.raises(DecodeError, match="^no schema for oracle_register_tx"):
        decode(rlp_blob([i(22), i(1), b"x"]))
    with pytest.raises(DecodeError, match="^signed_tx v1 -> transaction: 11 fields, but channel_create_tx v2 has 12$"):
        decode(rlp_blob(signed(create_v2_items()[:-1])))


def test_not_rlp_and_trailing_bytes():
    with pytest.raises(DecodeError, match="not RLP"):
        decode(encode_api("tx", rlp.encode([i(11), i(1)]) + b"\x01"))
    with pytest.raises(DecodeError, match="not an RLP list"):
        decode(encode_api("tx", rlp.encode(b"hello")))


def test_an_item_running_past_its_list_is_not_rlp():
    """A list of 4 bytes whose third item announces 7 (a reader that stops at the list's end and drops the
    rest, as rusty-rlp 0.4 does, would read ``[50, 2]``)."""
    inner = bytes([0xC4, 0x32, 0x02, 0x87, 0x00])
    with pytest.raises(DecodeError, match=r"^signed_tx v1 -> transaction: not RLP \(List length prefix"):
        decode(rlp_blob([i(11), i(1), [bytes(64)], inner]))


def test_ids_hashes_and_signatures_are_api_values_written_on_first_use():
    sig = bytes(range(64))
    root = decode(rlp_blob(signed(create_v2_items(), [sig])))
    tx = root["transaction"]
    values = [root["signatures"][0], tx["initiator"], tx["state_hash"]]
    assert all(type(v) is ApiValue and v._text is None for v in values)  # nothing written while decoding
    assert values == [encode_api("sg", sig), encode_api("ak", AK[1:]), encode_api("st", HASH)]
    assert tx["initiator"].prefix == "ak" and tx["initiator"].payload == AK[1:]
    assert json.loads(json.dumps(to_json(root)))["fields"]["transaction"]["fields"]["initiator"] == \
        encode_api("ak", AK[1:])
    assert f"initiator: {encode_api('ak', AK[1:])}" in format_tree(root)
    assert f"initiator: {encode_api('ak', AK[1:])}" in decoded_markdown(rlp_blob(signed(create_v2_items())))


def test_api_values_and_strings_encode_alike():
    blob = rlp_blob(signed(create_v2_items()))
    root = decode(blob)
    tx = root["transaction"].with_fields(responder=ApiValue("ak", AK2[1:]), state_hash=encode_api("st", HASH))
    root = root.with_fields(transaction=tx, signatures=[ApiValue("sg", bytes(64))])
    assert encode(root) == blob
    tx = tx.with_fields(responder=ApiValue("ct", AK2[1:]))
    assert rlp.decode(encode_bytes(tx))[4] == b"\x05" + AK2[1:]
    root = root.with_fields(transaction=tx.with_fields(responder=ApiValue("st", AK2[1:])))
    with pytest.raises(EncodeError, match="responder: not an id"):
        encode(root)


# -- annotate --------------------------------------------------------------------------------------

def test_annotate_keeps_going_around_a_bad_nested_object():
    bad = create_v2_items(responder=b"\x09" + bytes(32))
    blob = rlp_blob(signed(bad))
    root = annotate(blob)
    assert root.error is None and root.label == "signed_tx v1"
    node = root["transaction"]
    assert node.error == "channel_create_tx v2 -> responder: unknown id tag 9"
    assert node.fields == {} and node.raw == bad
    assert errors(root) == ["signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: unknown id tag 9"]
    assert encode(root) == blob
    out = to_json(root)
    assert out["fields"]["signatures"] == [encode_api("sg", bytes(64))]
    assert out["fields"]["transaction"]["error"] == node.error
    assert out["fields"]["transaction"]["raw"][4] == "0x" + (b"\x09" + bytes(32)).hex()
    assert "error" not in out


def test_annotate_never_raises():
    assert annotate("tx_+NIL...").error.startswith("tx_+NIL...: truncated")
    assert annotate(None).error  # type: ignore[arg-type]
    unknown = annotate(rlp_blob([i(99), i(1), b"x"]))
    assert unknown.type == "tag 99" and unknown.error == "unknown tag 99" and unknown.raw == [b"c", b"\x01", b"x"]
    assert annotate(encode_api("tx", b"\x05\x06")).error.startswith("not RLP")


# -- encode, build, modify -------------------------------------------------------------------------

def test_build_and_encode_a_new_object_then_decode_it_back():
    tx = build("channel_offchain_update_transfer", 1, {"from": encode_api("ak", AK[1:]),
                                                        "to": encode_api("ak", AK2[1:]), "amount": 5})
    text = encode(tx)
    assert text.startswith("cb_")
    back = decode(text)
    assert back == tx and back.fields == {"from": encode_api("ak", AK[1:]), "to": encode_api("ak", AK2[1:]),
                                          "amount": 5}


def test_channel_create_upgrade_v1_to_v2_keeps_the_signatures(seeds):
    """What replay needs: rebuild a create tx as v2 and re-wrap it with the old signatures."""
    text = (seeds / "003_6336cda6b7a60b3a.txt").read_text(encoding="utf-8")
    blob = next(b for b in blobs_in(text) if decode(b)["signatures"])
    st = decode(blob)
    v1 = st["transaction"]
    assert v1.label == "channel_create_tx v1"
    fields = {k: v for k, v in v1.fields.items() if k != "delegate_ids"}
    v2 = build("channel_create_tx", 2, fields, initiator_delegate_ids=v1["delegate_ids"],
               responder_delegate_ids=[])
    new_blob = encode(st.with_fields(transaction=v2))
    again = decode(new_blob)
    assert again["signatures"] == decode(blob)["signatures"]
    assert again["transaction"].label == "channel_create_tx v2"
    assert again["transaction"]["initiator_amount"] == v1["initiator_amount"]
    assert strip_signatures(new_blob) == encode_bytes(v2)


def test_modified_field_is_encoded_by_its_type():
    blob = rlp_blob(signed(create_v2_items()))
    st = decode(blob)
    tx = st["transaction"].with_fields(fee=20_000, responder=st["transaction"]["initiator"])
    inner = rlp.decode(encode_bytes(tx))
    assert inner[9] == i(20_000) and inner[4] == AK
    assert rlp.decode(encode_bytes(st["transaction"]))[9] != i(20_000)  # the decoded tree is unchanged


def test_encode_errors_name_the_field():
    tx = decode(rlp_blob(create_v2_items()))
    with pytest.raises(EncodeError, match=r"^channel_create_tx v2 -> responder: expected an id string"):
        encode(tx.with_fields(responder=12))
    fields = {k: v for k, v in tx.fields.items() if k != "fee"}
    with pytest.raises(EncodeError, match="match no layout"):
        encode(Decoded(tx.type, tx.tag, tx.version, fields))
    with pytest.raises(EncodeError, match=r"^channel_create_tx v2: no field fees \(fields: initiator, "):
        tx.with_fields(fees=1)
    with pytest.raises(EncodeError, match="match no layout"):
        build("channel_create_tx", 2, {"initiator": "x"})
    with pytest.raises(EncodeError, match="no schema for channel_create_tx v9"):
        build("channel_create_tx", 9, {})
    with pytest.raises(EncodeError, match="fee: expected a non-negative int"):
        encode(tx.with_fields(fee=-1))


# -- helpers for volatile and render ---------------------------------------------------------------

def test_strip_signatures_ignores_signatures_only():
    inner = create_v2_items()
    one = rlp_blob(signed(inner, [b"\x01" * 64]))
    two = rlp_blob(signed(inner, [b"\x02" * 64, b"\x03" * 64]))
    assert strip_signatures(one) == strip_signatures(two) == rlp.encode(inner)
    other = create_v2_items()
    other[13] = i(50)
    assert strip_signatures(rlp_blob(signed(other))) != strip_signatures(one)
    assert strip_signatures(rlp_blob(inner)) is None
    assert strip_signatures("tx_+NIL...") is None
    assert strip_signatures("ak_xyz") is None


def test_is_decodable_blob():
    assert ENCODED_PREFIXES_WORTH_DECODING >= {"tx", "ss", "pi", "cs"}
    assert is_decodable_blob(rlp_blob(create_v2_items()))
    assert is_decodable_blob("tx_+F01Aa...")
    assert not is_decodable_blob("tx_hash")
    assert not is_decodable_blob(encode_api("ak", AK[1:]))
    assert not is_decodable_blob(encode_api("st", HASH))
    assert not is_decodable_blob(encode_api("cb", bytes(96)))  # call data
    assert is_decodable_blob(encode_api("cb", rlp.encode([i(70), i(1), b"h", [], b"code"])))
    assert not is_decodable_blob(42)


def test_decoded_markdown_lists_fields_with_amounts_in_aettos():
    md = decoded_markdown(rlp_blob(signed(create_v2_items())))
    lines = md.splitlines()
    assert lines[0] == "- **signed_tx v1**"
    assert "  - transaction: **channel_create_tx v2**" in lines
    assert f"    - initiator: {encode_api('ak', AK[1:])}" in lines
    assert "    - initiator_amount: 70 aettos" in lines
    assert "    - fee: 17,620 aettos" in lines
    assert "    - nonce: 49" in lines
    big = create_v2_items()
    big[3] = i(70_000_000_000_000)
    assert "    - initiator_amount: 70,000,000,000,000 aettos" in decoded_markdown(rlp_blob(signed(big)))
    big[3] = i(1_500_000_000_000_000_000)
    assert "    - initiator_amount: 1.5 AE (1,500,000,000,000,000,000 aettos)" in decoded_markdown(rlp_blob(signed(big)))


@given(st.integers(min_value=0, max_value=2 ** 256))
@settings(max_examples=200, deadline=None)
def test_amount_text_gives_the_unit_once_and_the_exact_value(value: int) -> None:
    """Every amount a 256-bit field holds: aettos with separators, once; from 0.001 AE on, the exact AE
    value first (the aettos read back from it)."""
    from decimal import Decimal, localcontext

    from chanlog.codec.transactions import AE_FROM, AETTOS_PER_AE, amount_text

    text = amount_text(value)
    assert text.count("aetto") == 1 and text.count(" AE") == (value >= AE_FROM)
    aettos = text.rsplit("(", 1)[-1].rstrip(")").split(" ")[0]
    assert int(aettos.replace(",", "")) == value
    if value >= AE_FROM:
        with localcontext() as exact:
            exact.prec = 200
            assert Decimal(text.split(" AE", 1)[0].replace(",", "")) * AETTOS_PER_AE == value
    assert amount_text(1) == "1 aetto" and amount_text(2) == "2 aettos"


def test_amount_filter_of_url_parameters() -> None:
    from chanlog.render import amount

    assert amount("70000000000000") == "70,000,000,000,000 aettos"
    assert amount("1000000000000000000") == "1 AE (1,000,000,000,000,000,000 aettos)"
    for odd in ("1_000", "+5", " 7", "\u0661", "", "x" * 10, "9" * 1001):
        assert amount(odd) == odd  # not a decimal number as the node writes it: shown as it is


def test_decoded_markdown_on_failure():
    md = decoded_markdown("tx_+NIL...")
    assert md.splitlines()[0].startswith("> could not decode: tx_+NIL...: truncated")
    assert md.splitlines()[-1] == "> tx_+NIL..."
    nested = decoded_markdown(rlp_blob(signed(create_v2_items(responder=b"\x09" + bytes(32)))))
    assert "  - transaction: **channel_create_tx v2** (could not decode)" in nested
    assert "    - error: channel_create_tx v2 -> responder: unknown id tag 9" in nested


def test_format_tree():
    text = format_tree(decode(rlp_blob(signed(create_v2_items()))))
    assert text.splitlines()[:3] == [
        "signed_tx v1 (tag 11)", f"  signatures: {encode_api('sg', bytes(64))}",
        "  transaction: channel_create_tx v2 (tag 50)"]
    assert "    state_hash: " + encode_api("st", HASH) in text


def test_mtree_store_values_stay_binary_and_objects_decode():
    account = rlp.encode([i(10), i(1), i(0), i(5)])
    store = bytes(40)
    mtree = rlp.encode([i(63), i(1), [rlp.encode([i(64), i(1), HASH, account]),
                                      rlp.encode([i(64), i(1), HASH + b"\x10", store])]])
    root = decode_bytes(rlp.encode([i(621), i(1), mtree]))
    values = root["payload"]["values"]
    assert values[0]["val"].label == "account v1" and values[0]["val"]["balance"] == 5
    assert values[1]["val"] == encode_api("ba", store)
    assert encode_bytes(root) == rlp.encode([i(621), i(1), mtree])


def test_decoded_accessors():
    root = decode(rlp_blob(signed(create_v2_items())))
    assert [d.label for d in root.walk()] == ["signed_tx v1", "channel_create_tx v2"]
    assert root.envelope is not None and root.envelope.prefix == "tx"
    assert decode_api(encode(root))[1] == rlp.encode(signed(create_v2_items()))


def test_proof_of_inclusion_decodes_leaf_values_and_renders_branches_compactly():
    account = rlp.encode([i(10), i(1), i(0), i(7)])
    branch = [b""] * 17
    branch[6] = HASH
    leaf = [b"\x3a\xbc", account]  # hex-prefix flag 3: a leaf with an odd path
    extension = [b"\x00\x12", HASH]  # flag 0: an extension, its second item is a child hash
    proof = [HASH, [[HASH, branch], [HASH, leaf], [HASH, extension]]]
    poi = rlp.encode([i(60), i(1), [proof], [], [], [], [], []])
    root = decode(encode_api("pi", poi))
    nodes = root["accounts"][0]["nodes"]
    assert nodes[1]["node"][1].label == "account v1" and nodes[1]["node"][1]["balance"] == 7
    assert nodes[2]["node"] == (encode_api("ba", b"\x00\x12"), encode_api("ba", HASH))
    assert encode(root) == encode_api("pi", poi)
    md = decoded_markdown(encode_api("pi", poi))
    lines = md.splitlines()
    assert f"            - [6] {encode_api('ba', HASH)}" in lines
    assert "            - (16 of 17 empty)" in lines
    assert "              - balance: 7 aettos" in lines
