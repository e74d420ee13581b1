"""Compatibility transformation (``chanlog.replay.compat``, ``--compat sdk14``): v1 -> v2 channel_create_tx, fees,
signatures, consistent mapping, client frame shape; checked by decoding the results with ``chanlog.codec.transactions``."""

from __future__ import annotations

import pytest
from conftest import CORPUS

from chanlog.codec.encoding import BASE58, encode_api, parse_api
from chanlog.codec.transactions import build, decode, encode
from chanlog.model import Frame, Open, Transcript
from chanlog.replay import compat
from chanlog.volatile import normalize, unsigned_tx

INITIATOR = "ak_mLjWgLbapr5CiVD2Q248aS2TQj9itXnoPv5tteXvZaJ8tdD2C"
RESPONDER = "ak_26jAbCjYM16ppbhFG6PCQhv6HkwRAri7QNJfoEtb1R8amLscpt"
CHANNEL = "ch_2jqr9vjPiaNk2H4iE3pV9FCayL1BbyT4nDk4WHd6HTE16ZswWu"
STATE_HASH = encode_api("st", bytes(range(32)))
SIG_A = encode_api("sg", b"\x01" * 64)
SIG_B = encode_api("sg", b"\x02" * 64)


def create_v1(fee: int, delegates: list[str] | None = None) -> object:
    return build("channel_create_tx", 1, initiator=INITIATOR, initiator_amount=70000000000000,
                 responder=RESPONDER, responder_amount=40000000000000, channel_reserve=2, lock_period=10,
                 ttl=0, fee=fee, delegate_ids=delegates or [], state_hash=STATE_HASH, nonce=3)


def signed(inner: object, *signatures: str) -> str:
    return encode(build("signed_tx", 1, signatures=list(signatures), transaction=inner))


def inner_size(blob: str) -> int:
    return len(unsigned_tx(blob) or b"")


def test_v1_create_becomes_v2_with_empty_responder_delegates_and_same_fields():
    old = signed(create_v1(17620000000000, [INITIATOR]), SIG_A)
    new = compat.upgrade_blob(old)
    tx = decode(new)["transaction"]
    assert (tx.type, tx.version) == ("channel_create_tx", 2)
    assert tx["initiator_delegate_ids"] == (INITIATOR,)
    assert tx["responder_delegate_ids"] == ()
    before = decode(old)["transaction"]
    for name in ("initiator", "initiator_amount", "responder", "responder_amount", "channel_reserve",
                 "lock_period", "ttl", "state_hash", "nonce"):
        assert tx[name] == before[name], name


def test_signatures_are_kept_as_they_were():
    old = signed(create_v1(17620000000000), SIG_A, SIG_B)
    assert decode(compat.upgrade_blob(old))["signatures"] == (SIG_A, SIG_B)


def test_fee_is_raised_to_the_minimum_for_the_new_size():
    old = signed(create_v1(17620000000000), SIG_A)  # the node log's fee: the minimum for the v1 size
    assert decode(old)["transaction"]["fee"] == compat.min_fee(50, inner_size(old))
    new = compat.upgrade_blob(old)
    assert inner_size(new) == inner_size(old) + 1  # one more (empty) list
    assert decode(new)["transaction"]["fee"] == (15000 + 20 * inner_size(new)) * 10**9


def test_fee_is_recomputed_until_stable_when_it_grows_a_byte():
    old = signed(create_v1(0), SIG_A)  # fee 0 is one byte; the minimum needs six
    new = compat.upgrade_blob(old)
    fee = decode(new)["transaction"]["fee"]
    assert fee == compat.min_fee(50, inner_size(new))
    assert inner_size(new) >= inner_size(old) + 1 + 5  # the empty list and five more fee bytes
    assert fee > compat.min_fee(50, inner_size(old) + 1)  # the first estimate was too low


def test_a_fee_already_high_enough_is_kept():
    old = signed(create_v1(10**15), SIG_A)
    assert decode(compat.upgrade_blob(old))["transaction"]["fee"] == 10**15


def test_low_fee_of_other_channel_transactions_is_raised_and_layout_kept():
    close = build("channel_close_mutual_tx", 1, channel_id=CHANNEL, from_id=INITIATOR,
                  initiator_amount_final=1, responder_amount_final=2, ttl=0, fee=1000, nonce=5)
    old = signed(close, SIG_A)
    tx = decode(compat.upgrade_blob(old))["transaction"]
    assert (tx.type, tx.version) == ("channel_close_mutual_tx", 1)
    assert tx["fee"] == compat.min_fee(53, inner_size(compat.upgrade_blob(old)))
    assert tx["initiator_amount_final"] == 1 and tx["nonce"] == 5


def test_force_progress_minimum_uses_thirty_times_the_base_gas():
    assert compat.min_fee(521, 100) == (30 * 15000 + 20 * 100) * 10**9
    assert compat.min_fee(50, 100) == (15000 + 20 * 100) * 10**9


def test_blobs_that_need_nothing_come_back_identical():
    v2 = compat.upgrade_blob(signed(create_v1(0), SIG_A))
    assert compat.upgrade_blob(v2) == v2
    offchain = signed(build("channel_offchain_tx", 2, channel_id=CHANNEL, round=2, state_hash=STATE_HASH), SIG_A)
    assert compat.upgrade_blob(offchain) == offchain
    for junk in ("tx_+JU5AaEG...", "tx_notbase64!", "tx_"):
        assert compat.upgrade_blob(junk) == junk


def test_bare_transaction_and_legacy_base58_are_upgraded_in_their_own_alphabet():
    bare = encode(create_v1(0))
    new = compat.upgrade_blob(bare)
    assert decode(new).version == 2
    legacy = encode_api("tx", parse_api(signed(create_v1(0), SIG_A)).payload, encoding=BASE58)
    upgraded = compat.upgrade_blob(legacy)
    assert parse_api(upgraded).encoding == BASE58
    assert decode(upgraded)["transaction"].version == 2


def _transcript(request_blob: str, reply_blob: str, on_chain_blob: str) -> Transcript:
    def frame(data: dict, sender: str, role: str = "initiator") -> Frame:
        return Frame(role=role, conn=0, sender=sender, data=data, fmt="pretty")

    return Transcript(name="t", events=[
        Open(role="initiator", conn=0, url="ws://localhost:3014/channel?role=initiator"),
        frame({"jsonrpc": "2.0", "method": "channels.sign.initiator_sign",
               "params": {"channel_id": None, "data": {"signed_tx": request_blob, "updates": []}}}, "node"),
        frame({"id": 7, "jsonrpc": "2.0", "method": "channels.initiator_sign",
               "params": {"signed_tx": reply_blob}}, "client"),
        frame({"jsonrpc": "2.0", "method": "channels.on_chain_tx",
               "params": {"channel_id": CHANNEL, "data": {"info": "funding_signed", "tx": on_chain_blob}}}, "node"),
        frame({"jsonrpc": "2.0", "method": "channels.update.new",
               "params": {"amount": "1", "from": INITIATOR, "to": RESPONDER}}, "client"),
        frame({"jsonrpc": "2.0", "method": "channels.info", "params": {"channel_id": CHANNEL,
               "data": {"event": "open", "note": "1"}}}, "node"),
    ])


def test_transcript_mapping_is_consistent_and_a_client_signature_still_matches():
    create = create_v1(17620000000000)
    request, reply, both = signed(create), signed(create, SIG_A), signed(create, SIG_A, SIG_B)
    result = compat.apply(_transcript(request, reply, both))
    events = result.transcript.events
    new_request = events[1].data["params"]["data"]["signed_tx"]
    new_reply = events[2].data["params"]["signed_tx"]
    new_both = events[3].data["params"]["data"]["tx"]
    assert new_request == compat.upgrade_blob(request)
    assert unsigned_tx(new_request) == unsigned_tx(new_reply) == unsigned_tx(new_both)
    assert result.mapping == {request: new_request, reply: new_reply, both: new_both}
    assert result.reverse[new_reply] == reply
    # a client that signs the transformed request with any key matches the transformed recorded reply
    client_reply = encode(build("signed_tx", 1, signatures=[SIG_B], transaction=decode(new_request)["transaction"]))
    assert normalize({"signed_tx": client_reply}) == normalize({"signed_tx": new_reply})
    assert result.transcript.source["compat"]["profile"] == "sdk14"
    assert "TRANSFORMED" in result.transcript.source["compat"]["description"]
    assert result.frames == [1, 2, 3, 4]  # frame numbers count frames only, from 1


def test_client_frames_take_the_sdk_shape_and_node_frames_do_not():
    create = create_v1(17620000000000)
    result = compat.apply(_transcript(signed(create), signed(create, SIG_A), signed(create, SIG_A, SIG_B)))
    update = result.transcript.events[4].data
    assert update["params"] == {"amount": 1, "from": INITIATOR, "to": RESPONDER, "meta": []}
    assert result.transcript.events[5].data["params"]["data"]["note"] == "1"  # node frame: untouched


def test_the_input_transcript_is_not_modified():
    create = create_v1(17620000000000)
    original = _transcript(signed(create), signed(create, SIG_A), signed(create, SIG_A, SIG_B))
    before = original.to_dict()
    compat.apply(original)
    assert original.to_dict() == before


@pytest.mark.parametrize("text, number", [("1", 1), ("-12", -12), ("70000000000000", 70000000000000),
                                          ("1.5", 1.5), ("-0.5", -0.5), ("0.000000001", 1e-9)])
def test_numeric_strings_become_numbers_like_the_sdk_writes_them(text, number):
    data = compat.transform_data({"method": "channels.message", "params": {"info": text}},
                                 compat.get_profile("sdk14"), sender="client")
    assert data["params"]["info"] == number


@pytest.mark.parametrize("text", ["01", "1.50", "1e3", "-0", "2.0", "Hello", "", " 1", "1.123456789012345678901"])
def test_other_strings_stay_strings(text):
    data = compat.transform_data({"params": {"info": text}}, compat.get_profile("sdk14"), sender="client")
    assert data["params"]["info"] == text


def test_update_new_with_meta_keeps_it():
    data = compat.transform_data({"method": "channels.update.new", "params": {"amount": 1, "meta": 17}},
                                 compat.get_profile("sdk14"), sender="client")
    assert data["params"]["meta"] == 17


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(compat.CompatError, match="unknown compatibility profile 'sdk99'.*sdk14"):
        compat.get_profile("sdk99")
    with pytest.raises(compat.CompatError):
        compat.transformer("sdk99")


def test_corpus_create_txs_are_all_upgraded_and_decode_as_v2():
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    from chanlog.sources.nodelog import import_file

    transcript = import_file(CORPUS / "json-rpc" / "sc_ws_basic_open_close.md")
    result = compat.apply(transcript)
    assert result.mapping, "the log holds v1 channel_create_tx blobs"
    for old, new in result.mapping.items():
        tx = decode(new)["transaction"]
        assert (decode(old)["transaction"].version, tx.version) == (1, 2)
        assert tx["fee"] >= compat.min_fee(50, inner_size(new))


@pytest.mark.parametrize("method", ["channels.deposit", "channels.withdraw", "channels.shutdown"])
def test_action_parameters_the_sdk_cannot_send_are_dropped_from_expected_client_frames(method):
    applied: set[str] = set()
    params = {"amount": "5", "fee": "20000", "gas_price": "1000000000", "nonce": "7"}
    data = compat.transform_data({"jsonrpc": "2.0", "method": method, "params": params},
                                 compat.get_profile("sdk14"), sender="client", applied=applied)
    assert data["params"] == {"amount": 5}
    assert applied == {"action_params", "json_numbers"}
    node = compat.transform_data({"jsonrpc": "2.0", "method": method, "params": params},
                                 compat.get_profile("sdk14"), sender="node")
    assert node["params"] == params  # only the client's frames take the SDK's shape


def test_force_progress_gets_the_sdk_default_gas_and_keeps_a_recorded_one():
    prof = compat.get_profile("sdk14")
    params = {"amount": 1, "call_data": "cb_x", "contract_id": "ct_x", "abi_version": 3, "gas_price": 10**9}
    data = compat.transform_data({"method": "channels.force_progress", "params": params}, prof, sender="client")
    assert data["params"] == {**params, "gas": compat.FORCE_PROGRESS_GAS}
    kept = compat.transform_data({"method": "channels.force_progress", "params": {**params, "gas": 5}}, prof,
                                 sender="client")
    assert kept["params"]["gas"] == 5


def test_transactions_nested_in_a_payload_are_upgraded_and_the_outer_fee_follows_the_new_size():
    inner = signed(create_v1(17620000000000), SIG_A)
    nested = parse_api(inner).payload  # a signed channel_create_tx v1 as the payload's bytes
    snapshot = build("channel_snapshot_solo_tx", 1, channel_id=CHANNEL, from_id=INITIATOR, payload=nested,
                     ttl=0, fee=1, nonce=9)
    old = signed(snapshot, SIG_A)
    new = compat.upgrade_blob(old)
    tx = decode(new)["transaction"]
    assert (tx.type, tx["nonce"]) == ("channel_snapshot_solo_tx", 9)
    inner_tx = tx["payload"]["transaction"]
    assert (inner_tx.type, inner_tx.version) == ("channel_create_tx", 2)
    assert tuple(inner_tx["initiator_delegate_ids"]) == tuple(inner_tx["responder_delegate_ids"]) == ()
    assert tx["fee"] == compat.min_fee(59, inner_size(new))


def test_the_report_names_the_rules_that_changed_each_frame():
    create = create_v1(17620000000000)
    result = compat.apply(_transcript(signed(create), signed(create, SIG_A), signed(create, SIG_A, SIG_B)))
    rules = result.transcript.source["compat"]["rules"]
    assert rules == result.rules
    assert set(rules) >= {"blobs", "update_meta", "json_numbers"}
    assert set(result.frames) == {n for numbers in rules.values() for n in numbers}
