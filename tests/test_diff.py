"""``chanlog diff``: connection by connection, interleaving free, volatile values ignored."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chanlog import transcript as tmod
from chanlog.cli import main
from chanlog.diff import diff_transcripts, frame_line
from chanlog.model import Close, Frame, Note, Open, Transcript

EXAMPLE = Path(__file__).resolve().parents[1] / "transcripts" / "init_per_group.yaml"
Q = "initiator_id=ak_1&port=7&responder_id=ak_2"


def frame(role: str, conn: int, sender: str, data: object, **kw: object) -> Frame:
    return Frame.from_wire(json.dumps(data, separators=(",", ":")), role=role, conn=conn, sender=sender, **kw)


def sample() -> Transcript:
    return Transcript(name="a", events=[
        Open(role="initiator", conn=0, t=0.0, url=f"ws://localhost:3014/channel?{Q}&host=localhost&role=initiator"),
        frame("initiator", 0, "node", {"method": "channels.info", "params": {"data": {"fsm_id": "ba_1"}}}),
        Note(role="initiator", conn=0, text="The local fsm has been started"),
        Open(role="responder", conn=1, t=0.1, url=f"ws://localhost:3014/channel?{Q}&role=responder"),
        frame("responder", 1, "node", {"method": "channels.info", "params": {"data": {"event": "open"}}}),
        frame("initiator", 0, "client", {"id": 1, "method": "channels.update.new", "params": {"amount": 5}}),
        frame("initiator", 0, "node", {"id": 1, "result": "ok"}),
        Frame(role="responder", conn=1, sender="client", text="not json"),
        Frame(role="responder", conn=1, sender="node", binary=b"\x00\x01"),
        Close(role="initiator", conn=0, code=1000, closed_by="client"),
    ])


def test_identical_transcripts_are_equal() -> None:
    assert diff_transcripts(sample(), sample()) == []


def test_volatile_values_and_layout_are_ignored() -> None:
    a, b = sample(), sample()
    b.name = "other"
    b.events[0].url = f"ws://10.0.0.5:9999/channel?{Q}&host=elsewhere&role=initiator"
    b.events[1] = frame("initiator", 0, "node", {"method": "channels.info", "params": {"data": {"fsm_id": "ba_9"}}})
    b.events[5] = frame("initiator", 0, "client", {"id": 42, "method": "channels.update.new", "params": {"amount": 5}})
    b.events[6] = Frame.from_wire(json.dumps({"id": 42, "result": "ok"}, indent=2), role="initiator", conn=0,
                                  sender="node")
    for e in b.events:
        e.t = 99.0
    del b.events[2]  # notes are not traffic
    assert diff_transcripts(a, b) == []


def test_interleaving_of_participants_may_differ() -> None:
    a, b = sample(), sample()
    # the responder's open and first frame seen before the initiator's first frame
    b.events = [b.events[3], b.events[4], b.events[0], b.events[1], *b.events[5:]]
    for e in b.events:
        e.conn = 0 if e.role == "responder" else 1
    assert diff_transcripts(a, b) == []


def test_order_within_a_connection_must_match() -> None:
    a, b = sample(), sample()
    b.events[5], b.events[6] = b.events[6], b.events[5]
    lines = diff_transcripts(a, b, "A.yaml", "B.yaml")
    assert lines[0] == "initiator connection 1 (A.yaml conn 0, B.yaml conn 0):"
    assert '+ [B.yaml frame 3] node {"id":"<volatile:int>","result":"ok"}' in lines
    assert '- [A.yaml frame 4] node {"id":"<volatile:int>","result":"ok"}' in lines
    assert not any(line.startswith("responder") for line in lines)


def test_changed_content_shows_both_sides_with_frame_numbers() -> None:
    a, b = sample(), sample()
    b.events[5] = frame("initiator", 0, "client", {"id": 1, "method": "channels.update.new", "params": {"amount": 6}})
    lines = diff_transcripts(a, b)
    assert '- [A frame 3] client {"id":"<volatile:int>","method":"channels.update.new","params":{"amount":5}}' in lines
    assert '+ [B frame 3] client {"id":"<volatile:int>","method":"channels.update.new","params":{"amount":6}}' in lines
    assert "  [frame 2 | frame 2] node " + frame_line(a.events[4]).split(" ", 1)[1] not in lines  # other conn


def test_text_binary_injected_close_and_url_differences() -> None:
    a = sample()
    for change in ("text", "binary", "injected", "close", "url", "extra"):
        b = copy.deepcopy(a)
        if change == "text":
            b.events[7].text = "other words"
        elif change == "binary":
            b.events[8].binary = b"\x00\x02"
        elif change == "injected":
            b.events[6].injected = True
        elif change == "close":
            b.events[9].code = 1006
        elif change == "url":
            b.events[3].url = b.events[3].url.replace("port=7", "port=8")
        else:
            b.events.append(Open(role="responder", conn=2, url=f"ws://x/channel?{Q}&role=responder"))
        assert diff_transcripts(a, b), change


def test_close_known_on_one_side_only_is_not_a_difference() -> None:
    a, b = sample(), sample()
    del b.events[9]
    assert diff_transcripts(a, b) == []
    b = sample()
    b.events[9].code = None
    b.events[9].closed_by = None
    assert diff_transcripts(a, b) == []


def test_open_known_on_one_side_only_is_not_a_difference() -> None:
    """A log that starts mid-connection has no open; a recording of its replay has one."""
    a, b = sample(), sample()
    del a.events[3]  # the responder's open
    assert diff_transcripts(a, b) == [] and diff_transcripts(b, a) == []
    b.events[3].url = b.events[3].url.replace("port=7", "port=8")
    assert diff_transcripts(a, b) == []
    a = sample()
    assert diff_transcripts(a, b)  # both have it: compared


PING = {"jsonrpc": "2.0", "method": "channels.system", "params": {"action": "ping"}}
PONG = {"jsonrpc": "2.0", "method": "channels.system.pong", "params": {"channel_id": None}}


def test_pong_position_among_node_frames_is_volatile() -> None:
    """The node answers a ping when it gets to it: its pong may follow node frames already on their way."""
    sign = {"method": "channels.sign.initiator_sign", "params": {"data": {"signed_tx": "tx_x"}}}

    def pinged(*order: str) -> Transcript:
        t = sample()
        pieces = {"ping": frame("initiator", 0, "client", PING), "pong": frame("initiator", 0, "node", PONG),
                  "sign": frame("initiator", 0, "node", sign)}
        t.events[2:2] = [pieces[name] for name in order]
        return t

    assert diff_transcripts(pinged("ping", "sign", "pong"), pinged("ping", "pong", "sign")) == []
    # but a pong never comes before its ping, and a sign request that moved is a difference
    assert diff_transcripts(pinged("ping", "sign", "pong"), pinged("pong", "ping", "sign"))
    assert diff_transcripts(pinged("sign", "ping", "pong"), pinged("ping", "pong", "sign"))


def test_protocol_difference() -> None:
    a, b = sample(), sample()
    b.protocol = "legacy"
    assert diff_transcripts(a, b) == ["protocol: A json-rpc, B legacy"]


def test_cli_exit_codes(tmp_path: Path) -> None:
    a, b = sample(), sample()
    tmod.dump(a, tmp_path / "a.yaml")
    tmod.dump(b, tmp_path / "b.yaml")
    runner = CliRunner()
    result = runner.invoke(main, ["diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    assert result.exit_code == 0 and result.stdout == ""
    assert "equal: 2 connections, 6 frames" in result.stderr
    b.events[7].text = "changed"
    tmod.dump(b, tmp_path / "b.yaml")
    result = runner.invoke(main, ["diff", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml"), "-U", "0"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"responder connection 1 ({tmp_path / 'a.yaml'} conn 1, {tmp_path / 'b.yaml'} conn 1):",
        f"@@ {tmp_path / 'a.yaml'} frame 5 {tmp_path / 'b.yaml'} frame 5 @@",
        f"- [{tmp_path / 'a.yaml'} frame 5] client text 'not json'",
        f"+ [{tmp_path / 'b.yaml'} frame 5] client text 'changed'",
    ]
    (tmp_path / "bad.yaml").write_text("chanlog: 1\nevents: [\n")
    result = runner.invoke(main, ["diff", str(tmp_path / "a.yaml"), str(tmp_path / "bad.yaml")])
    assert result.exit_code == 2 and result.stderr.startswith(f"chanlog: error: {tmp_path / 'bad.yaml'}:")


def test_example_transcript_against_itself_with_other_signatures_masked() -> None:
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE} is not there yet")
    a = tmod.load(EXAMPLE)
    b = tmod.load(EXAMPLE)
    for _, f in b.frames():
        if f.obj.get("id") is not None:
            f.data["id"] = 12345
    assert diff_transcripts(a, b) == []
    _, last = list(b.frames())[-1]
    last.data["jsonrpc"] = "1.0"
    assert diff_transcripts(a, b)
