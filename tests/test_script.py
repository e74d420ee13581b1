"""Action scripts (``chanlog.replay.actions``): what each participant's app must do to play a transcript."""

from __future__ import annotations

import json

import pytest
from conftest import CORPUS

from chanlog.model import Close, Frame, Note, Open, Transcript
from chanlog.replay.actions import ScriptError, action_script, sign_reply_method

URL = "ws://localhost:3014/channel?initiator_id=ak_i&port=3015&protocol=json-rpc&role={role}"


def node(role: str, data: dict, conn: int = 0) -> Frame:
    return Frame(role=role, conn=conn, sender="node", data=data, fmt="pretty")


def client(role: str, data: dict, conn: int = 0) -> Frame:
    return Frame(role=role, conn=conn, sender="client", data=data, fmt="pretty")


def info(role: str, event: str, conn: int = 0) -> Frame:
    return node(role, {"jsonrpc": "2.0", "method": "channels.info", "params": {"channel_id": None,
                                                                            "data": {"event": event}}}, conn)


def flow() -> Transcript:
    """Initiator opens; responder opens; a signed request with an id and its result; a declined sign
    request; a get call and its result; an error with a null id; a close."""
    return Transcript(name="flow", events=[
        Open(role="initiator", conn=0, url=URL.format(role="initiator")),
        info("initiator", "fsm_up"),
        Open(role="responder", conn=1, url=URL.format(role="responder")),
        info("responder", "fsm_up", 1),
        node("initiator", {"jsonrpc": "2.0", "method": "channels.sign.initiator_sign",
                           "params": {"data": {"signed_tx": "tx_a"}}}),
        client("initiator", {"id": 1, "jsonrpc": "2.0", "method": "channels.initiator_sign",
                             "params": {"signed_tx": "tx_b"}}),
        node("initiator", {"id": 1, "jsonrpc": "2.0", "result": "ok"}),
        Note(role="initiator", conn=0, text="a note"),
        node("responder", {"jsonrpc": "2.0", "method": "channels.sign.update_ack",
                           "params": {"data": {"signed_tx": "tx_c"}}}, 1),
        client("responder", {"jsonrpc": "2.0", "method": "channels.update_ack", "params": {"error": 1}}, 1),
        client("initiator", {"id": 2, "jsonrpc": "2.0", "method": "channels.get.balances",
                             "params": {"accounts": ["ak_i"]}}),
        node("initiator", {"id": 2, "jsonrpc": "2.0", "result": []}),
        client("initiator", {"jsonrpc": "2.0", "method": "channels.update.new", "params": {"amount": "1"}}),
        node("initiator", {"error": {"code": 3}, "id": None, "jsonrpc": "2.0"}),
        Close(role="initiator", conn=0, closed_by="client"),
    ])


def test_steps_follow_the_transcript_with_their_kinds():
    script = action_script(flow())
    assert [(s["do"], s["role"], s["method"]) for s in script["steps"]] == [
        ("open", "initiator", None),
        ("open", "responder", None),
        ("sign", "initiator", "channels.initiator_sign"),
        ("sign", "responder", "channels.update_ack"),
        ("send", "initiator", "channels.get.balances"),
        ("send", "initiator", "channels.update.new"),
        ("close", "initiator", None),
    ]
    assert [s["step"] for s in script["steps"]] == list(range(1, 8))
    assert [s["frame"] for s in script["steps"]] == [None, None, 4, 7, 8, 10, None]


def test_sign_steps_say_whether_the_recording_signed_or_declined():
    steps = action_script(flow())["steps"]
    assert steps[2]["decline"] is None and steps[2]["params"] == {"signed_tx": "tx_b"}
    assert steps[3]["decline"] == 1


def test_after_counts_the_node_frames_each_connection_received_before_the_step():
    steps = action_script(flow())["steps"]
    assert steps[0]["after"] == {}
    assert steps[1]["after"] == {"0": 1}
    assert steps[2]["after"] == {"0": 2, "1": 1}
    assert steps[4]["after"] == {"0": 3, "1": 2}  # the result of the sign reply is counted (recorded client)
    assert steps[6]["after"] == {"0": 5, "1": 2}


def test_sdk14_profile_sends_sign_replies_without_id_so_their_results_are_not_expected():
    script = action_script(flow(), "sdk14")
    steps = script["steps"]
    assert [s["id"] for s in steps if s["do"] in ("sign", "send")] == [False, False, True, False]
    assert steps[4]["after"] == {"0": 2, "1": 2}  # the withheld "ok" is not waited for
    assert [c["node_frames"] for c in script["connections"]] == [4, 2]
    assert script["profile"] == "sdk14"


def test_connections_carry_the_open_url_parameters_and_their_order_per_role():
    conns = action_script(flow())["connections"]
    assert [(c["conn"], c["role"], c["nth"]) for c in conns] == [(0, "initiator", 0), (1, "responder", 0)]
    assert conns[0]["params"] == {"initiator_id": "ak_i", "port": "3015", "protocol": "json-rpc",
                                  "role": "initiator"}


def test_a_connection_without_a_recorded_open_is_opened_with_the_channel_parameters():
    transcript = flow()
    transcript.events += [info("initiator", "fsm_up", 2), client("initiator", {"method": "channels.leave"}, 2)]
    script = action_script(transcript)
    assert script["steps"][-2]["do"] == "open" and script["steps"][-2]["conn"] == 2
    assert script["connections"][-1]["params"]["role"] == "initiator"
    assert script["connections"][-1]["nth"] == 1


def test_legacy_sign_requests_are_recognised():
    assert sign_reply_method(node("initiator", {"action": "sign", "tag": "initiator_sign"})) == "initiator_sign"
    assert sign_reply_method(node("initiator", {"method": "channels.sign.shutdown_sign_ack"})) == \
        "channels.shutdown_sign_ack"
    assert sign_reply_method(node("initiator", {"method": "channels.info"})) is None


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ScriptError, match="unknown client profile 'sdk1'"):
        action_script(flow(), "sdk1")


def test_corpus_script_is_json_and_counts_every_node_frame_the_sdk_receives():
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    from chanlog.sources.nodelog import import_file

    transcript = import_file(CORPUS / "json-rpc" / "sc_ws_basic_open_close.md")
    script = json.loads(json.dumps(action_script(transcript, "sdk14")))
    frames = [f for _, f in transcript.frames()]
    client_frames = [f for f in frames if f.sender == "client"]
    sign_replies = [s for s in script["steps"] if s["do"] == "sign"]
    withheld = [f for f in frames if f.sender == "node" and "result" in f.obj
                and any(c.obj.get("id") == f.obj["id"] and c.method in {s["method"] for s in sign_replies}
                        for c in client_frames)]
    assert len([s for s in script["steps"] if s["do"] in ("sign", "send")]) == len(client_frames)
    assert sum(c["node_frames"] for c in script["connections"]) == \
        len([f for f in frames if f.sender == "node"]) - len(withheld)


def test_solo_snapshot_slash_and_force_progress_requests_are_answered_with_their_sign_methods():
    """The node answers ``channels.sign.snapshot_solo_tx`` etc. with ``..._sign``, not ``..._tx``: the
    recorded replies are sign steps (the SDK signs them), not frames the app sends."""
    for request, reply in (("snapshot_solo_tx", "snapshot_solo_sign"), ("slash_tx", "slash_sign"),
                           ("force_progress_tx", "force_progress_sign")):
        assert sign_reply_method(node("initiator", {"method": f"channels.sign.{request}"})) == f"channels.{reply}"
        transcript = Transcript(name="t", events=[
            Open(role="initiator", conn=0, url=URL.format(role="initiator")),
            node("initiator", {"jsonrpc": "2.0", "method": f"channels.sign.{request}",
                               "params": {"data": {"signed_tx": "tx_a"}}}),
            client("initiator", {"jsonrpc": "2.0", "method": f"channels.{reply}", "params": {"signed_tx": "tx_b"}}),
        ])
        steps = action_script(transcript, "sdk14")["steps"]
        assert [s["do"] for s in steps] == ["open", "sign"], steps
        assert steps[1]["method"] == f"channels.{reply}"


def test_pongs_are_not_counted_as_node_frames_the_client_waits_for():
    """A driver's SDK counts pongs apart from other frames (they answer its own pings as well)."""
    transcript = Transcript(name="t", events=[
        Open(role="initiator", conn=0, url=URL.format(role="initiator")),
        client("initiator", {"jsonrpc": "2.0", "method": "channels.system", "params": {"action": "ping"}}),
        node("initiator", {"jsonrpc": "2.0", "method": "channels.system.pong",
                           "params": {"channel_id": "ch_x", "data": {"action": "system", "tag": "pong"}}}),
        info("initiator", "update"),
        client("initiator", {"jsonrpc": "2.0", "method": "channels.message", "params": {"info": "x", "to": "ak_r"}}),
    ])
    script = action_script(transcript, "sdk14")
    assert script["connections"][0]["node_frames"] == 1
    assert script["steps"][-1]["after"] == {"0": 1}
