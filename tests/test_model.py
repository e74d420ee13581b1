"""Model: wire fidelity of frames, JSON-RPC / legacy accessors, plain-data round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chanlog.errors import TranscriptError
from chanlog.model import (
    JSON_FORMATS,
    Close,
    Frame,
    Note,
    Open,
    Transcript,
    dump_json,
    event_from_dict,
    parse_json,
    parse_json_exact,
)


@pytest.mark.parametrize("wire, fmt", [
    ('{"jsonrpc":"2.0","method":"channels.info","params":{"data":{"event":"open"}}}', "compact"),
    ('{"a": 1, "b": [1, 2]}', "spaced"),
    ('{\n  "a": 1\n}', "pretty"),
    ('{"ü":"ä"}', "compact"),
])
def test_json_frames_are_stored_parsed_and_reproduced_exactly(wire, fmt):
    frame = Frame.from_wire(wire, role="initiator", conn=0, sender="node")
    assert frame.fmt == fmt and frame.text is None
    assert frame.wire() == wire


@pytest.mark.parametrize("wire", [
    "not json", '{"a":1, "b":2}', '{"a":1,"a":2}', '{"x":"\\u00fc"}', "", '{"n":1.0e5}',
])
def test_text_that_no_style_reproduces_is_kept_verbatim(wire):
    frame = Frame.from_wire(wire, role="responder", conn=1, sender="client")
    assert frame.text == wire and frame.data is None
    assert frame.wire() == wire


def test_binary_frames_round_trip_through_plain_data():
    frame = Frame.from_wire(b"\x00\xffabc", role="initiator", conn=0, sender="client", t=1.5, injected=True)
    t = Transcript(events=[frame])
    again = Transcript.from_dict(t.to_dict())
    assert again.events[0].binary == b"\x00\xffabc" and again.events[0].injected


def test_jsonrpc_accessors():
    req = Frame.from_wire('{"id":7,"jsonrpc":"2.0","method":"channels.get.balances","params":{}}',
                          role="initiator", conn=0, sender="client")
    info = Frame.from_wire('{"jsonrpc":"2.0","method":"channels.info","params":{"channel_id":"ch_x",'
                           '"data":{"event":"open"}},"version":1}', role="initiator", conn=0, sender="node")
    err = Frame.from_wire('{"error":{"code":3},"id":null,"jsonrpc":"2.0"}', role="initiator", conn=0, sender="node")
    res = Frame.from_wire('{"id":7,"jsonrpc":"2.0","result":"ok"}', role="initiator", conn=0, sender="node")
    assert (req.method, req.rpc_kind) == ("channels.get.balances", "request")
    assert (info.rpc_kind, info.info_event, info.channel_id) == ("notification", "open", "ch_x")
    assert err.rpc_kind == "error" and res.rpc_kind == "response" and res.method is None


def test_legacy_accessors():
    sign = Frame.from_wire('{"action":"sign","channel_id":"ch_y","payload":{"tx":"tx_1"},"tag":"update"}',
                           role="responder", conn=0, sender="node")
    info = Frame.from_wire('{"action":"info","payload":{"event":"funding_locked"}}',
                           role="responder", conn=0, sender="node")
    assert sign.method == "sign.update" and sign.payload == {"tx": "tx_1"} and sign.channel_id == "ch_y"
    assert info.info_event == "funding_locked" and info.method == "info"


def test_transcript_views():
    url = "ws://localhost:3014/channel?initiator_id=ak_i&port=1&role=initiator"
    t = Transcript(events=[
        Open(role="initiator", conn=0, url=url),
        Open(role="responder", conn=1, url="ws://x/channel?responder_id=ak_r&port=2&role=responder"),
        Frame.from_wire('{"a":1}', role="initiator", conn=0, sender="node"),
        Note(role="initiator", conn=0, text="hi"),
        Close(role="initiator", conn=0, code=1000, closed_by="client"),
    ])
    assert t.params == {"initiator_id": "ak_i", "port": "1", "responder_id": "ak_r"}
    conns = t.connections()
    assert [c.role for c in conns] == ["initiator", "responder"]
    assert conns[0].close.code == 1000 and len(conns[0].frames) == 1 and conns[1].open.params["port"] == "2"
    assert [n for n, _ in t.frames()] == [1]
    assert Transcript.from_dict(t.to_dict()) == t


@pytest.mark.parametrize("event, where", [
    ({"event": "frame", "role": "initiator", "conn": 0}, "event"),
    ({"event": "wave", "role": "initiator", "conn": 0}, "event.event"),
    ({"event": "open", "role": "initiator", "conn": "zero", "url": "ws://x"}, "event.conn"),
    ({"event": "frame", "role": "initiator", "conn": 0, "from": "node", "data": {}, "format": "ugly"},
     "event.format"),
    ({"event": "frame", "role": "initiator", "conn": 0, "from": "node", "binary": "!!"}, "event.binary"),
    ({"event": "close", "role": "initiator", "conn": 0, "code": True}, "event.code"),
])
def test_bad_events_name_the_key(event, where):
    with pytest.raises(TranscriptError) as info:
        event_from_dict(event, "event")
    assert info.value.where == where


def test_parse_json_exact_rejects_non_json():
    assert parse_json_exact("{") == (None, None)


# -- JSON text formats ------------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40)


@given(_json)
def test_dump_json_matches_the_standard_encoder_in_every_format(value) -> None:
    # the fast "pretty" writer must give json.dumps(indent=2)'s text exactly: imported logs are verified
    # against it byte for byte
    for fmt, kwargs in JSON_FORMATS.items():
        assert dump_json(value, fmt) == json.dumps(value, **kwargs)
    assert parse_json(dump_json(value)) == value


def test_dump_json_pretty_falls_back_for_values_it_does_not_write_itself() -> None:
    class Name(str):
        pass

    odd = {"int key": {1: Name("x")}, "tuple": (1, 2), "inf": float("inf"), "sub": True}
    assert dump_json(odd) == json.dumps(odd, indent=2, ensure_ascii=False)
    deep: list = []
    for _ in range(5000):  # deeper than the recursion limit: the standard encoder's error, not a crash
        deep = [deep]
    with pytest.raises(RecursionError):
        dump_json(deep)
