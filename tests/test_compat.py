"""Compatibility transformation (``chanlog.replay.compat``, ``--compat sdk14``): v1 -> v2 channel_create_tx, fees,
signatures, consistent mapping, client frame shape; checked by decoding the results with ``chanlog.codec.transactions``.

The parameter rules are tested from the table itself (``compat.SDK14_METHODS``): for every method and every optional
parameter the node accepts, a generated frame carrying it, dropped when the SDK cannot send it and kept when it can;
meta updates beside every non-transfer operation in every sign request; nested ``ga_meta_tx`` and the nesting limit."""

from __future__ import annotations

import pytest
import rlp
from conftest import CORPUS
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlog.codec.encoding import BASE58, encode_api, parse_api
from chanlog.codec.transactions import build, decode, encode, encode_bytes
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


# -- the table of client requests (SDK14_METHODS): every row, every optional parameter --------------------------

SDK14 = compat.get_profile("sdk14")
CONTRACT = encode_api("ct", bytes(range(1, 33)))
BLOCK_HASH = encode_api("mh", bytes(range(2, 34)))
CALL_DATA = encode_api("cb", b"\x2b\x11\x04\x4f\x02")
#: A value of the shape the node reads for every parameter name the table mentions (sc_ws_api_jsonrpc.erl).
VALUES: dict[str, object] = {
    "from": INITIATOR, "to": RESPONDER, "amount": 5, "meta": ["a note"], "code": CALL_DATA, "call_data": "cb_BBBB",
    "deposit": 10, "vm_version": 5, "abi_version": 3, "contract_id": CONTRACT, "gas_price": 2 * 10**9, "gas": 5000,
    "info": "hello", "accounts": [INITIATOR], "contracts": [CONTRACT], "pubkey": CONTRACT, "caller_id": INITIATOR,
    "round": 3, "block_hash": BLOCK_HASH, "nonce": 7, "fee": 20000, "n": 3, "type": ["rpt"], "tag": ["info"],
}
WITH_API = [row for row in compat.SDK14_METHODS if row.sdk_sends is not None]
WITHOUT_API = [row for row in compat.SDK14_METHODS if row.sdk_sends is None]


def _client(method: str, params: dict) -> dict:
    return compat.transform_data({"jsonrpc": "2.0", "method": method, "params": params}, SDK14, sender="client")


def _sdk_frame(row: compat.ClientMethod) -> dict:
    """What the SDK's method sends for ``row``: every key it writes."""
    return {key: VALUES[key] for key in sorted(row.sdk_sends or ())}


def test_the_table_covers_the_sdk_methods_the_brief_names_and_every_value_is_known():
    methods = {row.method for row in compat.SDK14_METHODS}
    assert {"channels.update.new", "channels.deposit", "channels.withdraw", "channels.update.new_contract",
            "channels.update.call_contract", "channels.dry_run.call_contract", "channels.get.contract_call",
            "channels.get.contract", "channels.force_progress", "channels.message", "channels.leave",
            "channels.shutdown", "channels.close_solo", "channels.settle", "channels.slash",
            "channels.snapshot_solo"} <= methods
    assert len(methods) == len(compat.SDK14_METHODS)  # one row per method
    for row in compat.SDK14_METHODS:
        assert set(row.node_optional) | set(row.sdk_sends or ()) <= VALUES.keys(), row.method
        assert row.sdk_api, row.method


@pytest.mark.parametrize("method, param", [(row.method, param) for row in WITH_API for param in sorted(row.dropped)])
def test_an_optional_parameter_the_sdk_cannot_send_is_dropped_and_what_it_sends_is_kept(method, param):
    row = compat.SDK14_BY_METHOD[method]
    sent = _sdk_frame(row)
    applied: set[str] = set()
    data = compat.transform_data({"jsonrpc": "2.0", "method": method, "params": {**sent, param: VALUES[param]}},
                                 SDK14, sender="client", applied=applied)
    assert param not in data["params"]
    assert data["params"] == sent  # the SDK's own frame, every key kept as it was
    assert "action_params" in applied


@pytest.mark.parametrize("method, param", [(row.method, param) for row in WITH_API
                                           for param in sorted(row.node_optional & row.sdk_sends)])
def test_an_optional_parameter_the_sdk_sends_is_kept(method, param):
    row = compat.SDK14_BY_METHOD[method]
    value = {"meta": ["first", "second"], "gas": 123456}[param]
    data = _client(method, {**_sdk_frame(row), param: value})
    assert data["params"][param] == value


@pytest.mark.parametrize("method", [row.method for row in WITH_API])
def test_the_sdk_frame_of_every_method_goes_through_unchanged(method):
    sent = _sdk_frame(compat.SDK14_BY_METHOD[method])
    assert _client(method, sent)["params"] == sent


@pytest.mark.parametrize("method", [row.method for row in WITHOUT_API])
def test_a_request_without_an_sdk_api_is_left_as_recorded(method):
    row = compat.SDK14_BY_METHOD[method]
    params = {key: VALUES[key] for key in sorted(row.node_optional)}
    assert row.dropped == frozenset()
    assert _client(method, params)["params"] == params


@pytest.mark.parametrize("method", [row.method for row in WITH_API if row.defaults])
def test_what_the_sdk_always_sends_is_added_with_its_default(method):
    row = compat.SDK14_BY_METHOD[method]
    defaults = dict(row.defaults)
    recorded = {k: v for k, v in _sdk_frame(row).items() if k not in defaults}
    applied: set[str] = set()
    data = compat.transform_data({"jsonrpc": "2.0", "method": method, "params": recorded}, SDK14, sender="client",
                                 applied=applied)
    assert data["params"] == {**recorded, **defaults}
    assert applied == {"update_meta" if key == "meta" else "sdk_defaults" for key in defaults}


def test_force_progress_loses_nonce_and_fee_and_gets_the_sdk_gas():
    row = compat.SDK14_BY_METHOD["channels.force_progress"]
    assert {"nonce"} <= row.dropped
    recorded = {"amount": 1, "call_data": "cb_x", "contract_id": CONTRACT, "abi_version": 3, "gas_price": 10**9,
                "nonce": 12, "fee": 40000}
    params = _client("channels.force_progress", recorded)["params"]
    assert "nonce" not in params and "fee" not in params  # fee: not even read by the node (optional_params/1)
    assert params["gas"] == compat.FORCE_PROGRESS_GAS == 1_000_000


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_recorded_mix_keeps_exactly_what_the_sdk_writes(data):
    row = data.draw(st.sampled_from([row for row in WITH_API if row.node_optional | row.sdk_sends]))
    keys = data.draw(st.sets(st.sampled_from(sorted(row.node_optional | row.sdk_sends)), max_size=12))
    recorded = {key: VALUES[key] for key in keys}
    params = _client(row.method, recorded)["params"]
    assert set(params) == (keys & row.sdk_sends) | {k for k, _ in row.defaults}
    assert all(params[k] == recorded[k] for k in keys & row.sdk_sends)


def test_a_node_error_echoing_the_request_echoes_the_sdk_shape():
    request = {"jsonrpc": "2.0", "method": "channels.deposit", "params": {"amount": 5, "fee": 1, "block_hash": BLOCK_HASH}}
    frame = {"jsonrpc": "2.0", "id": None, "error": {"code": 3, "message": "Rejected", "request": request}}
    applied: set[str] = set()
    out = compat.transform_data(frame, SDK14, sender="node", applied=applied)
    assert out["error"]["request"]["params"] == {"amount": 5}
    assert applied == {"action_params"}
    assert frame["error"]["request"]["params"]["fee"] == 1  # the input is not modified


# -- OffChainMeta entries of a parameter the SDK cannot send ----------------------------------------------------

_OPS = {"OffChainDeposit": {"from": INITIATOR, "amount": 2}, "OffChainWithdrawal": {"to": INITIATOR, "amount": 2},
        "OffChainNewContract": {"owner": INITIATOR, "deposit": 10},
        "OffChainCallContract": {"caller": INITIATOR, "contract": CONTRACT, "amount": 1}}
_SIGN_METHODS = ("channels.sign.update", "channels.sign.update_ack", "channels.sign.deposit_tx",
                 "channels.sign.deposit_ack", "channels.sign.withdraw_tx", "channels.sign.withdraw_ack")


def _meta(data: str) -> dict:
    return {"data": data, "op": "OffChainMeta"}


def _sign_request(method: str, updates: list, blob: str) -> dict:
    return {"jsonrpc": "2.0", "method": method,
            "params": {"channel_id": CHANNEL, "data": {"signed_tx": blob, "updates": updates}}}


@pytest.mark.parametrize("method", _SIGN_METHODS)
@pytest.mark.parametrize("op", sorted(_OPS))
def test_meta_entries_beside_a_non_transfer_update_leave_the_sign_request(method, op):
    blob = signed(build("channel_offchain_tx", 2, channel_id=CHANNEL, round=2, state_hash=STATE_HASH))
    update = {**_OPS[op], "op": op}
    applied: set[str] = set()
    out = compat.transform_data(_sign_request(method, [update, _meta("one"), _meta("two")], blob), SDK14,
                                applied=applied)
    assert out["params"]["data"]["updates"] == [update]
    assert out["params"]["data"]["signed_tx"] == blob  # v2: the updates are not in the transaction
    assert applied == {"meta_updates"}


@pytest.mark.parametrize("method", _SIGN_METHODS)
def test_meta_entries_of_a_transfer_stay_because_the_sdk_sends_meta_with_update(method):
    assert "meta" in compat.SDK14_BY_METHOD["channels.update.new"].sdk_sends
    updates = [{"amount": 1, "from": INITIATOR, "to": RESPONDER, "op": "OffChainTransfer"}, _meta("hello")]
    frame = _sign_request(method, updates, "tx_x")
    assert compat.transform_data(frame, SDK14) == frame


def _update_bytes(type_name: str, version: int, **fields) -> bytes:
    return parse_api(encode(build(type_name, version, **fields))).payload


def _offchain_v1(*updates: bytes) -> object:
    return build("channel_offchain_tx", 1, channel_id=CHANNEL, round=4, updates=list(updates), state_hash=STATE_HASH)


CREATE = ("channel_offchain_update_create_contract", 1,
          {"owner": INITIATOR, "ct_version": 0x50003, "code": b"\x01\x02", "deposit": 10, "call_data": CALL_DATA})
TRANSFER = ("channel_offchain_update_transfer", 1, {"from": INITIATOR, "to": RESPONDER, "amount": 1})
META = ("channel_offchain_update_meta", 2, {"data": b"a note"})


def _u(spec: tuple) -> bytes:
    type_name, version, fields = spec
    return _update_bytes(type_name, version, **fields)


def test_a_v1_offchain_tx_is_rebuilt_without_the_meta_of_a_contract_update_consistently():
    request = signed(_offchain_v1(_u(CREATE), _u(META), _u(META)))
    reply = signed(_offchain_v1(_u(CREATE), _u(META), _u(META)), SIG_A)
    new_request, new_reply = compat.upgrade_blob(request), compat.upgrade_blob(reply)
    tx = decode(new_request)["transaction"]
    assert (tx.type, tx.version, tx["round"]) == ("channel_offchain_tx", 1, 4)
    assert [u.type for u in tx["updates"]] == ["channel_offchain_update_create_contract"]
    assert unsigned_tx(new_request) == unsigned_tx(new_reply)  # the client's signed reply still matches
    assert decode(new_reply)["signatures"] == (SIG_A,)


def test_a_v1_offchain_tx_keeps_the_meta_of_a_transfer_and_the_profile_can_keep_all():
    transfer = signed(_offchain_v1(_u(TRANSFER), _u(META)))
    assert compat.upgrade_blob(transfer) == transfer
    contract = signed(_offchain_v1(_u(CREATE), _u(META)))
    assert compat.upgrade_blob(contract, True, True, False) == contract


def test_transactions_nested_in_a_ga_meta_tx_are_upgraded():
    inner = parse_api(signed(create_v1(17620000000000), SIG_A)).payload
    meta_tx = build("ga_meta_tx", 2, ga_id=INITIATOR, auth_data=CALL_DATA, abi_version=3, fee=10**15, gas=5000,
                    gas_price=10**9, tx=inner)
    old = signed(meta_tx)
    tx = decode(compat.upgrade_blob(old))["transaction"]
    assert (tx.type, tx["fee"], tx["ga_id"]) == ("ga_meta_tx", 10**15, INITIATOR)
    create = tx["tx"]["transaction"]
    assert (create.type, create.version) == ("channel_create_tx", 2)
    assert create["fee"] == compat.min_fee(50, len(encode_bytes(create)))
    # and in a ga_meta_tx inside a ga_meta_tx
    outer = build("ga_meta_tx", 2, ga_id=RESPONDER, auth_data=CALL_DATA, abi_version=3, fee=10**15, gas=5000,
                  gas_price=10**9, tx=parse_api(old).payload)
    deep = decode(compat.upgrade_blob(signed(outer)))["transaction"]["tx"]["transaction"]["tx"]["transaction"]
    assert (deep.type, deep.version) == ("channel_create_tx", 2)


def test_nesting_deeper_than_the_limit_is_left_alone_without_error():
    blob = signed(create_v1(0), SIG_A)
    payload = parse_api(blob).payload
    for _ in range(compat.MAX_NESTING + 2):
        payload = rlp.encode([b"\x0b", b"\x01", [], payload])
    deep = encode_api("tx", payload)
    assert compat.upgrade_blob(deep) == deep
    shallow = encode_api("tx", rlp.encode([b"\x0b", b"\x01", [], parse_api(blob).payload]))
    assert compat.upgrade_blob(shallow) != shallow
