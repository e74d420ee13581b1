"""The recorder addon, driven through mitmproxy's own test helpers (``taddons``, ``tflow``)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from faults import Disk
from mitmproxy import exceptions
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from chanlog import transcript as tmod
from chanlog.model import Close, Frame, Open, Transcript
from chanlog.record.addon import ChannelRecorder
from chanlog.record.journal import JournalWriter, iter_records, scan
from chanlog.record.pairing import node_channel_id, pairing_key, path_matches, safe_name, ws_url

PARAMS = {"channel_reserve": "2", "initiator_id": "ak_A", "responder_id": "ak_B", "port": "13179",
          "protocol": "json-rpc"}


def ws_flow(role: str | None, path: str = "/channel", **params: str):
    """A live WebSocket flow (no messages yet) to ``path`` with the channel parameters and ``role``."""
    f = tflow.twebsocketflow(messages=False)
    query = {**PARAMS, **params}
    if role is not None:
        query["role"] = role
    f.request.path = f"{path}?{urlencode(query)}"
    f.websocket.messages = []  # (tflow adds three sample messages whatever ``messages`` says)
    f.websocket.close_code = None
    f.websocket.closed_by_client = None
    f.websocket.close_reason = None
    f.websocket.timestamp_end = None
    return f


def send(addon: ChannelRecorder, f, content: str | bytes, from_client: bool, injected: bool = False) -> None:
    """What mitmproxy does per message: append it to the flow, then run the hook."""
    typ = Opcode.TEXT if isinstance(content, str) else Opcode.BINARY
    data = content.encode() if isinstance(content, str) else content
    f.websocket.messages.append(WebSocketMessage(typ, from_client, data, injected=injected))
    addon.websocket_message(f)


def close(addon: ChannelRecorder, f, code: int = 1000, by_client: bool = True, reason: str = "") -> None:
    f.websocket.close_code = code
    f.websocket.closed_by_client = by_client
    f.websocket.close_reason = reason
    f.websocket.timestamp_end = 946681300
    addon.websocket_end(f)


def info(channel_id: str | None, event: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "channels.info",
                       "params": {"channel_id": channel_id, "data": {"event": event}}, "version": 1},
                      separators=(",", ":"))


def transcripts(addon: ChannelRecorder) -> dict[str, Transcript]:
    addon.wait()
    return {p.stem: tmod.load(p) for p in sorted(addon.directory.glob("*.yaml"))}


def frames_of(t: Transcript) -> list[tuple[str, int, str, str | bytes]]:
    return [(f.role, f.conn, f.sender, f.wire()) for _, f in t.frames()]


@pytest.fixture
def rec(tmp_path: Path, request: pytest.FixtureRequest):
    addon = ChannelRecorder()
    with taddons.context(addon) as tctx:
        # with the fault-injecting disk: a write() per record, where a filling disk shows at each record
        window = {"chanlog_journal_window": 0} if "disk" in request.fixturenames else {}
        tctx.configure(addon, chanlog_dir=str(tmp_path / "out"), chanlog_writers=0, **window)
        yield addon, tctx
    addon.done()


# -- options ------------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    addon = ChannelRecorder()
    with taddons.context(addon) as tctx:
        assert tctx.options.chanlog_dir == "./transcripts"
        assert tctx.options.chanlog_path == "/channel"
        assert tctx.options.chanlog_headers is False and tctx.options.chanlog_bounded == "auto"
        assert tctx.options.chanlog_on_error == "forward" and tctx.options.chanlog_writers == 2
        assert addon.bounded  # nothing else needs the messages: bounded memory by default


@pytest.mark.parametrize("option, value, message", [
    ("chanlog_path", "channel", "must be a request path"),
    ("chanlog_path", "/channel?x=1", "must be a request path"),
    ("chanlog_name", "{nope}", "unknown field {nope}"),
    ("chanlog_name", "{port:d}", "cannot format"),
    ("chanlog_name", "  ", "empty"),
])
def test_invalid_options_fail_at_start_up(rec, option: str, value: str, message: str) -> None:
    addon, tctx = rec
    with pytest.raises(exceptions.OptionsError, match=message):
        tctx.configure(addon, **{option: value})


def test_chanlog_dir_that_is_a_file(rec, tmp_path: Path) -> None:
    addon, tctx = rec
    (tmp_path / "file").write_text("x")
    with pytest.raises(exceptions.OptionsError, match="not a folder"):
        tctx.configure(addon, chanlog_dir=str(tmp_path / "file"))


@pytest.mark.parametrize("exists", [True, False])
def test_unwritable_chanlog_dir_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog,
                                                  exists: bool) -> None:
    """A folder nothing can be created in (a read-only filesystem, simulated: the probe's and mkdir's
    EROFS): "not writable" for one that exists, "cannot create" for one that does not; raised as
    OptionsError by default, one logged error line (and nothing recorded) with ``log_startup_errors``
    (the script's recorder: mitmproxy prints a traceback for a script's exception at start-up).
    tests/test_e2e_recorder_faults.py runs a real mitmdump on a read-only mount."""
    import errno
    import tempfile

    target = tmp_path / "ro"
    if exists:
        (target / "journals").mkdir(parents=True)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    mkstemp, mkdir = tempfile.mkstemp, Path.mkdir

    def probe(*args, dir=None, **kwargs):  # noqa: A002 - mkstemp's own argument name
        return read_only() if str(dir).startswith(str(target)) else mkstemp(*args, dir=dir, **kwargs)

    def make(self, *args, **kwargs):
        return read_only() if str(self).startswith(str(target)) and not self.is_dir() else mkdir(self, *args, **kwargs)

    def break_disk() -> None:  # only the target: the rollback of a refused value configures the old one again
        monkeypatch.setattr(tempfile, "mkstemp", probe)
        monkeypatch.setattr(Path, "mkdir", make)

    says = f"{target} is not writable (Read-only file system)" if exists \
        else f"cannot create {target} (Read-only file system)"
    addon = ChannelRecorder()
    with taddons.context(addon) as tctx:
        break_disk()
        with pytest.raises(exceptions.OptionsError, match=re.escape(f"chanlog_dir: {says}")):
            tctx.configure(addon, chanlog_dir=str(target))
    addon = ChannelRecorder(log_startup_errors=True)
    with taddons.context(addon) as tctx:
        break_disk()
        caplog.clear()
        tctx.configure(addon, chanlog_dir=str(target), chanlog_writers=0)
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert errors == [f"chanlog: chanlog_dir: {says}; give a folder the proxy can write to"]
        assert addon.disabled
        f = ws_flow("initiator")
        addon.websocket_start(f)
        assert not addon.flows and not addon.sessions


# -- recording ----------------------------------------------------------------------------------


def test_both_participants_in_one_transcript(rec) -> None:
    addon, _ = rec
    fi, fr = ws_flow("initiator", host="localhost"), ws_flow("responder")
    addon.websocket_start(fi)
    send(addon, fi, info(None, "fsm_up"), False)
    addon.websocket_start(fr)
    send(addon, fr, info(None, "fsm_up"), False)
    send(addon, fi, '{"jsonrpc":"2.0","id":1,"method":"channels.initiator_sign","params":{}}', True)
    send(addon, fr, info("ch_1", "funding_created"), False)
    close(addon, fi)
    assert not list(addon.directory.glob("*.yaml"))  # the responder is still connected
    close(addon, fr, 1001, by_client=False, reason="bye")
    (t,) = transcripts(addon).values()
    assert [type(e).__name__ for e in t.events] == ["Open", "Frame", "Open", "Frame", "Frame", "Frame",
                                                   "Close", "Close"]
    assert frames_of(t) == [("initiator", 0, "node", info(None, "fsm_up")),
                            ("responder", 1, "node", info(None, "fsm_up")),
                            ("initiator", 0, "client",
                             '{"jsonrpc":"2.0","id":1,"method":"channels.initiator_sign","params":{}}'),
                            ("responder", 1, "node", info("ch_1", "funding_created"))]
    closes = [e for e in t.events if isinstance(e, Close)]
    assert [(c.role, c.code, c.closed_by, c.reason) for c in closes] == [
        ("initiator", 1000, "client", None), ("responder", 1001, "node", "bye")]
    opens = [e for e in t.events if isinstance(e, Open)]
    assert opens[0].url == "ws://example.com" + fi.request.path and opens[0].headers is None
    assert t.source["channel_id"] == "ch_1" and t.protocol == "json-rpc"
    assert scan(addon.directory / "journals" / f"{t.name}.jsonl").finished


def test_fidelity_non_json_binary_pretty_and_injected(rec) -> None:
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    pretty = json.dumps({"jsonrpc": "2.0", "method": "x", "params": {"a": "é"}}, indent=2, ensure_ascii=False)
    contents: list[tuple[str | bytes, bool, bool]] = [
        ("hello, not json", True, False), (b"\x00\x01\xfe", False, False), (pretty, False, False),
        ('{"b":1,"a":2}', True, True), ('{"dup":1,"dup":2}', False, False), ("", True, False)]
    for content, from_client, injected in contents:
        send(addon, f, content, from_client, injected)
    close(addon, f, 1006, by_client=False)
    (t,) = transcripts(addon).values()
    frames = [fr for _, fr in t.frames()]
    assert [fr.wire() for fr in frames] == [c for c, _, _ in contents]
    assert [fr.injected for fr in frames] == [False, False, False, True, False, False]
    assert frames[0].text == "hello, not json" and frames[1].binary == b"\x00\x01\xfe"
    assert frames[2].fmt == "pretty" and frames[3].data == {"b": 1, "a": 2}
    assert frames[4].text == '{"dup":1,"dup":2}'
    assert [e for e in t.events if isinstance(e, Close)][0].code == 1006


def test_only_channel_websockets_with_a_role_are_recorded(rec, caplog: pytest.LogCaptureFixture) -> None:
    addon, _ = rec
    other, norole = ws_flow("initiator", path="/v3/status"), ws_flow(None)
    with caplog.at_level(logging.WARNING):
        for f in (other, norole):
            addon.websocket_start(f)
            send(addon, f, "x", True)
            close(addon, f)
    assert transcripts(addon) == {} and addon.flows == {}
    assert "no role=initiator|responder" in caplog.text


def test_custom_path_and_trailing_slash(rec) -> None:
    addon, tctx = rec
    tctx.configure(addon, chanlog_path="/ws/channel/")
    f = ws_flow("initiator", path="/ws/channel")
    addon.websocket_start(f)
    close(addon, f)
    assert len(transcripts(addon)) == 1


def test_concurrent_sessions_are_never_mixed(rec) -> None:
    addon, _ = rec
    flows = {}
    for i in range(4):
        for role in ("initiator", "responder"):
            flows[(i, role)] = ws_flow(role, port=str(2000 + i))
            addon.websocket_start(flows[(i, role)])
    for step in range(3):
        for (i, role), f in flows.items():
            send(addon, f, info(f"ch_{i}" if step else None, f"s{i}-{role}-{step}"), False)
            send(addon, f, f"client {i} {role} {step}", True)
    for f in flows.values():
        close(addon, f)
    found = transcripts(addon)
    assert len(found) == 4
    for t in found.values():
        i = int(t.params["port"]) - 2000
        assert t.channel_id == f"ch_{i}"
        assert {role for role, *_ in frames_of(t)} == {"initiator", "responder"}
        assert all(f"{i} " in str(w) or f"s{i}-" in str(w) for *_, w in frames_of(t))
        assert len(frames_of(t)) == 12


def test_reestablish_joins_the_finished_session_and_rewrites_it(rec) -> None:
    addon, _ = rec
    fi, fr = ws_flow("initiator"), ws_flow("responder")
    addon.websocket_start(fi)
    addon.websocket_start(fr)
    send(addon, fi, info("ch_R", "open"), False)
    close(addon, fi)
    close(addon, fr)
    (first,) = transcripts(addon).values()
    assert len(first.connections()) == 2
    again = {"existing_channel_id": "ch_R", "existing_fsm_id": "ba_x"}
    ri = ws_flow("initiator", **again)
    rr = ws_flow("responder", **again)
    addon.websocket_start(rr)
    addon.websocket_start(ri)
    send(addon, ri, info("ch_R", "channel_reestablished"), False)
    close(addon, ri)
    close(addon, rr)
    found = transcripts(addon)
    assert list(found) == [first.name]
    t = found[first.name]
    assert [(c.conn, c.role) for c in t.connections()] == [(0, "initiator"), (1, "responder"),
                                                           (2, "responder"), (3, "initiator")]
    assert len(list(t.frames())) == 2
    assert scan(addon.directory / "journals" / f"{t.name}.jsonl").finished


def test_reconnect_while_the_other_is_still_connected(rec) -> None:
    addon, _ = rec
    fi, fr = ws_flow("initiator"), ws_flow("responder")
    addon.websocket_start(fi)
    addon.websocket_start(fr)
    send(addon, fr, info("ch_C", "open"), False)
    close(addon, fi)
    back = ws_flow("initiator", existing_channel_id="ch_C")
    addon.websocket_start(back)
    close(addon, back)
    close(addon, fr)
    (t,) = transcripts(addon).values()
    assert [c.role for c in t.connections()] == ["initiator", "responder", "initiator"]


def test_legacy_protocol_pairs_and_reestablishes(rec) -> None:
    addon, _ = rec
    legacy = {"protocol": "legacy"}
    fi, fr = ws_flow("initiator", **legacy), ws_flow("responder", **legacy)
    addon.websocket_start(fi)
    addon.websocket_start(fr)
    send(addon, fi, '{"action":"info","payload":{"event":"channel_accept"}}', False)
    send(addon, fr, '{"action":"info","channel_id":"ch_L","payload":{"event":"funding_created"}}', False)
    close(addon, fi)
    close(addon, fr)
    back = ws_flow("responder", existing_channel_id="ch_L", **legacy)
    addon.websocket_start(back)
    send(addon, back, '{"action":"info","channel_id":"ch_L","payload":{"event":"channel_reestablished"}}', False)
    close(addon, back)
    (t,) = transcripts(addon).values()
    assert t.protocol == "legacy" and t.channel_id == "ch_L"
    assert [c.role for c in t.connections()] == ["initiator", "responder", "responder"]
    assert [f.method for _, f in t.frames()] == ["info", "info", "info"]


def test_killed_proxy_journal_holds_every_frame(rec) -> None:
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    for n in range(20):
        send(addon, f, f'{{"n":{n}}}', n % 3 == 0)
    # no websocket_end, no done: as if the proxy were killed here
    from chanlog.record.writer import load_journal

    t = load_journal(addon.flows[f.id].session.journal.path)
    assert [fr.wire() for _, fr in t.frames()] == [f'{{"n":{n}}}' for n in range(20)]
    assert t.source["open_connections"] == 1


def test_transcript_that_cannot_be_written_leaves_the_journal_unfinished(rec, caplog) -> None:
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    send(addon, f, "kept", True)
    session = addon.flows[f.id].session
    session.transcript.mkdir()  # a folder where the file should go: the rename fails
    with caplog.at_level(logging.ERROR):
        close(addon, f)
        addon.wait()
    assert f"cannot write {session.transcript}" in caplog.text and "chanlog recover" in caplog.text
    info = scan(session.journal.path)
    assert not info.finished and info.frames == 1 and session.journal.closed
    assert not list(addon.directory.glob(".*.tmp"))


def test_unknown_existing_channel_starts_a_session_named_by_it(rec) -> None:
    addon, _ = rec
    f = ws_flow("initiator", existing_channel_id="ch_unknown")
    addon.websocket_start(f)
    close(addon, f)
    (t,) = transcripts(addon).values()
    assert t.channel_id is None and t.source["channel_id"] == "ch_unknown"
    assert addon.by_channel["ch_unknown"].name == t.name


def test_same_parameters_after_the_channel_exists_is_a_new_session(rec) -> None:
    addon, _ = rec
    fi, fr = ws_flow("initiator"), ws_flow("responder")
    addon.websocket_start(fi)
    addon.websocket_start(fr)
    send(addon, fi, info("ch_1", "open"), False)
    close(addon, fi)
    fi2 = ws_flow("initiator")  # same channel parameters, no existing_channel_id: a new channel
    addon.websocket_start(fi2)
    close(addon, fr)
    close(addon, fi2)
    assert sorted(len(t.connections()) for t in transcripts(addon).values()) == [1, 2]


def test_connections_without_channel_parameters_pair_with_each_other(rec) -> None:
    """``role`` only (a player opening a log that starts mid-connection): both participants in one
    session, which a connection with channel parameters does not join."""
    addon, _ = rec
    keyed, fi, fr = ws_flow("responder"), ws_flow("initiator"), ws_flow("responder")
    fi.request.path, fr.request.path = "/channel?role=initiator", "/channel?role=responder"
    addon.websocket_start(keyed)
    addon.websocket_start(fi)
    send(addon, fi, info("ch_1", "update"), False)
    addon.websocket_start(fr)
    for f in (keyed, fi, fr):
        close(addon, f)
    found = {len(t.connections()): t for t in transcripts(addon).values()}
    assert sorted(found) == [1, 2]
    assert [(c.role, c.open.url.split("?")[1]) for c in found[2].connections()] == [
        ("initiator", "role=initiator"), ("responder", "role=responder")]


def test_retry_before_the_channel_exists_joins(rec) -> None:
    addon, _ = rec
    fi = ws_flow("initiator")
    fr = ws_flow("responder")
    addon.websocket_start(fr)
    addon.websocket_start(fi)
    close(addon, fi, 1006)
    fi2 = ws_flow("initiator")
    addon.websocket_start(fi2)
    close(addon, fi2)
    close(addon, fr)
    (t,) = transcripts(addon).values()
    assert [c.role for c in t.connections()] == ["responder", "initiator", "initiator"]


def test_headers_only_on_request(rec) -> None:
    addon, tctx = rec
    f = ws_flow("initiator")
    f.request.headers["Cookie"] = "session=secret"
    f.request.headers["Authorization"] = "Bearer t"
    addon.websocket_start(f)
    close(addon, f)
    tctx.configure(addon, chanlog_headers=True)
    g = ws_flow("initiator", port="9")
    g.request.headers["Cookie"] = "session=secret"
    addon.websocket_start(g)
    close(addon, g)
    found = transcripts(addon)
    text = {name: (addon.directory / f"{name}.yaml").read_text() for name in found}
    without = next(n for n, t in found.items() if t.params["port"] == "13179")
    with_ = next(n for n, t in found.items() if t.params["port"] == "9")
    assert "secret" not in text[without] and "Bearer" not in text[without]
    assert found[with_].events[0].headers["Cookie"] == "session=secret"
    assert "secret" not in (addon.directory / "journals" / f"{without}.jsonl").read_text()


def test_file_names_stay_inside_chanlog_dir(rec) -> None:
    addon, tctx = rec
    tctx.configure(addon, chanlog_name="{initiator_id}")
    for evil in ("../../etc/passwd", "/abs/path", "..", "a/../../b", "\x00nul"):
        f = ws_flow("initiator", initiator_id=evil)
        addon.websocket_start(f)
        close(addon, f)
    addon.wait()
    written = sorted(p for p in addon.directory.parent.rglob("*") if p.is_file())
    assert len(written) == 10
    for p in written:
        assert p.resolve().is_relative_to(addon.directory.resolve())
    assert sorted(p.name for p in addon.directory.glob("*.yaml")) == [
        "a_b.yaml", "abs_path.yaml", "etc_passwd.yaml", "nul.yaml", "session.yaml"]


def test_name_collisions_get_a_suffix(rec) -> None:
    addon, tctx = rec
    tctx.configure(addon, chanlog_name="fixed")
    for port in ("1", "2", "3"):
        f = ws_flow("initiator", port=port)
        addon.websocket_start(f)
        close(addon, f)
    assert sorted(transcripts(addon)) == ["fixed", "fixed-2", "fixed-3"]


def test_bounded_mode_releases_recorded_messages(rec) -> None:
    addon, tctx = rec
    tctx.configure(addon, chanlog_bounded="false")
    unbounded = ws_flow("initiator", port="1")
    addon.websocket_start(unbounded)
    for n in range(5):
        send(addon, unbounded, f"m{n}", n % 2 == 0)
    assert len(unbounded.websocket.messages) == 5
    tctx.configure(addon, chanlog_bounded="true")
    bounded = ws_flow("initiator", port="2")
    addon.websocket_start(bounded)
    for n in range(5):
        send(addon, bounded, f"m{n}", n % 2 == 0)
        assert [m.text for m in bounded.websocket.messages] == [f"m{n}"]  # the newest stays for later addons
    close(addon, unbounded)
    close(addon, bounded)
    for t in transcripts(addon).values():
        assert [f.wire() for _, f in t.frames()] == [f"m{n}" for n in range(5)]


def test_cycle_through_mitmproxy_event_sequence(rec) -> None:
    addon, _ = rec
    f = tflow.twebsocketflow()  # three messages, closed by the server with 1000
    f.request.path = "/channel?" + urlencode({**PARAMS, "role": "responder"})
    asyncio.run(_cycle(addon, f))
    (t,) = transcripts(addon).values()
    assert [(fr.sender, fr.wire()) for _, fr in t.frames()] == [
        ("client", b"hello binary"), ("client", "hello text"), ("node", "it's me")]
    assert t.events[-1].closed_by == "node" and t.events[-1].code == 1000


async def _cycle(addon: ChannelRecorder, f) -> None:
    with taddons.context(addon, loadcore=False) as tctx:
        tctx.configure(addon, chanlog_dir=str(addon.directory), chanlog_writers=0)
        await tctx.cycle(addon, f)


def test_done_writes_running_sessions(rec) -> None:
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    send(addon, f, "still open", True)
    addon.done()
    (t,) = transcripts(addon).values()
    assert [fr.wire() for _, fr in t.frames()] == ["still open"]
    assert t.source["open_connections"] == 1
    assert scan(addon.directory / "journals" / f"{t.name}.jsonl").finished


def test_unfinished_journals_reported_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    jdir = tmp_path / "out" / "journals"
    w = JournalWriter(jdir / "crashed.jsonl")
    w.open()
    w.header("crashed", "crashed.yaml", "now", 1.0)
    w.frame_record(0, "initiator", "node", 1.0, b"x", True)
    w.close()
    addon = ChannelRecorder()
    with caplog.at_level(logging.WARNING), taddons.context(addon) as tctx:
        tctx.configure(addon, chanlog_dir=str(tmp_path / "out"))
    assert [i.path.name for i in addon.unfinished] == ["crashed.jsonl"]
    assert f"chanlog recover {jdir / 'crashed.jsonl'}" in caplog.text


def test_journal_is_flushed_before_the_hook_returns(rec) -> None:
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    send(addon, f, "one", True)
    journal = addon.flows[f.id].session.journal.path
    assert journal.read_bytes().rstrip(b"\0").endswith(b',"raw":one}\n')  # in the file (then the reserved zeros)
    assert journal_records(journal)[-1]["text"] == "one"
    send(addon, f, b"\x01", False)
    assert journal_records(journal)[-1]["binary"] == "AQ=="


# -- pure helpers -------------------------------------------------------------------------------


def test_helpers() -> None:
    assert path_matches("/channel?role=x", "/channel") and path_matches("/channel/", "/channel")
    assert not path_matches("/channels", "/channel")
    assert ws_url("https://n:1/channel?a=1") == "wss://n:1/channel?a=1"
    assert ws_url("http://[::1]:3014/channel") == "ws://[::1]:3014/channel"
    assert pairing_key({"initiator_id": "a", "port": "1", "role": "x"}) == ("a", "", "1")
    assert pairing_key({"role": "initiator"}) is None
    assert node_channel_id(b'{"params":{"channel_id":"ch_a"}}') == "ch_a"
    assert node_channel_id(b'{"channel_id":"ch_b","action":"info"}') == "ch_b"
    assert node_channel_id(b'{"params":{"channel_id":null}}') is None
    assert node_channel_id(b'"channel_id" but not json') is None
    assert safe_name("../x y/..") == "x_y" and safe_name("...") == "session"
    assert len(safe_name("a" * 500)) == 100


def test_frame_model_round_trip_of_recorded_text(rec) -> None:
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    send(addon, f, '{"a": [1, 2], "b": {"c": null}}', True)
    close(addon, f)
    (t,) = transcripts(addon).values()
    (_, frame), = t.frames()
    assert frame == Frame.from_wire('{"a": [1, 2], "b": {"c": null}}', role="initiator", conn=0,
                                    sender="client", t=frame.t)


# -- merging sessions that carry the same channel -------------------------------------------------


def role_only(role: str):
    """A flow whose URL carries ``role`` and no channel parameters (a log that starts mid-connection)."""
    f = ws_flow(role)
    f.request.path = f"/channel?role={role}"
    return f


def journal_records(path: Path) -> list[dict]:
    return [rec for _, rec in iter_records(path)]


def test_participants_recorded_apart_are_merged_when_they_carry_the_same_channel(rec, caplog) -> None:
    """The initiator plays its whole connection before the responder connects (no channel parameters
    to pair by): the responder's session learns the channel of the finished initiator session, which
    lacks the responder, and is merged into it: one journal, one transcript, in the order seen."""
    addon, _ = rec
    fi = role_only("initiator")
    addon.websocket_start(fi)
    send(addon, fi, "ping i", True)
    send(addon, fi, info("ch_M", "pong i"), False)
    close(addon, fi)
    (first,) = transcripts(addon).values()  # written once: only the initiator so far
    assert len(first.connections()) == 1
    fr = role_only("responder")
    addon.websocket_start(fr)
    send(addon, fr, "ping r", True)
    absorbed = addon.flows[fr.id].session
    assert absorbed.name != first.name
    with caplog.at_level(logging.INFO):
        send(addon, fr, info("ch_M", "pong r"), False)
    assert addon.flows[fr.id].session.name == first.name and addon.flows[fr.id].conn == 1
    send(addon, fr, "after the merge", True)
    close(addon, fr)
    found = transcripts(addon)
    assert list(found) == [first.name]
    t = found[first.name]
    assert frames_of(t) == [("initiator", 0, "client", "ping i"), ("initiator", 0, "node", info("ch_M", "pong i")),
                            ("responder", 1, "client", "ping r"), ("responder", 1, "node", info("ch_M", "pong r")),
                            ("responder", 1, "client", "after the merge")]
    assert [(type(e).__name__, e.conn) for e in t.events if not isinstance(e, Frame)] == [
        ("Open", 0), ("Close", 0), ("Open", 1), ("Close", 1)]
    assert t.source["channel_id"] == "ch_M" and "open_connections" not in t.source
    jdir = addon.directory / "journals"
    assert scan(jdir / f"{first.name}.jsonl").finished and scan(jdir / f"{first.name}.jsonl").merged == [absorbed.name]
    gone = scan(jdir / f"{absorbed.name}.jsonl")
    assert gone.finished and gone.merged_into["session"] == first.name
    assert journal_records(jdir / f"{absorbed.name}.jsonl")[-1]["kind"] == "merged_into"
    assert not (addon.directory / f"{absorbed.name}.yaml").exists()
    assert f"session {absorbed.name} carries channel ch_M of session {first.name}: merged" in caplog.text
    assert addon.by_channel["ch_M"].name == first.name and addon.sessions == []


def test_merge_removes_a_transcript_written_for_the_absorbed_session(rec, caplog) -> None:
    """The older session learns the channel last: the newer one, already finished and written, is
    absorbed; its transcript is removed (and the log says so); events stay in the order seen."""
    addon, _ = rec
    fi = ws_flow("initiator", port="1")
    addon.websocket_start(fi)
    send(addon, fi, "i1", True)
    fr = ws_flow("responder", port="2")  # other parameters: another session
    addon.websocket_start(fr)
    send(addon, fr, info("ch_W", "r1"), False)
    send(addon, fi, "i2", True)
    close(addon, fr)
    older, newer = addon.flows[fi.id].session, next(s for s in addon.by_channel.values())
    addon.wait()
    assert newer.transcript.exists() and newer.transcript in addon.written
    with caplog.at_level(logging.INFO):
        send(addon, fi, info("ch_W", "i3"), False)
        addon.wait()
    assert not newer.transcript.exists() and newer.transcript not in addon.written
    assert f"removed {newer.transcript}: session {newer.name} was merged into {older.name}" in caplog.text
    close(addon, fi)
    found = transcripts(addon)
    assert list(found) == [older.name]
    assert frames_of(found[older.name]) == [("initiator", 0, "client", "i1"), ("responder", 1, "node", info("ch_W", "r1")),
                                            ("initiator", 0, "client", "i2"), ("initiator", 0, "node", info("ch_W", "i3"))]
    assert [e.conn for e in found[older.name].events if isinstance(e, Close)] == [1, 0]


def test_running_sessions_of_one_channel_merge_and_others_stay_apart(rec) -> None:
    """Two running sessions (different parameters) turn out to be one channel: merged while both are
    connected, later frames of both go to the survivor; a third session of another channel is untouched."""
    addon, _ = rec
    fi, fr, fx = ws_flow("initiator", port="1"), ws_flow("responder", port="2"), ws_flow("initiator", port="3")
    for f in (fi, fr, fx):
        addon.websocket_start(f)
    send(addon, fi, info("ch_A", "i"), False)
    send(addon, fx, info("ch_X", "x"), False)
    send(addon, fr, info("ch_A", "r"), False)  # merged here
    send(addon, fr, "r after", True)
    send(addon, fi, "i after", True)
    send(addon, fx, "x after", True)
    for f in (fi, fr, fx):
        close(addon, f)
    found = transcripts(addon)
    assert len(found) == 2
    a = next(t for t in found.values() if t.channel_id == "ch_A")
    x = next(t for t in found.values() if t.channel_id == "ch_X")
    assert frames_of(a) == [("initiator", 0, "node", info("ch_A", "i")), ("responder", 1, "node", info("ch_A", "r")),
                            ("responder", 1, "client", "r after"), ("initiator", 0, "client", "i after")]
    assert frames_of(x) == [("initiator", 0, "node", info("ch_X", "x")), ("initiator", 0, "client", "x after")]
    assert [c.open.url.split("port=")[1][0] for c in a.connections()] == ["1", "2"]


def test_finished_session_with_both_participants_is_not_continued_by_a_new_one(rec) -> None:
    """A new connection merely carrying the channel of a finished two-participant session (no
    existing_channel_id), e.g. the next log of one channel replayed through the proxy: recorded apart,
    and that new session then takes in its own missing participant."""
    addon, _ = rec
    for run in range(2):
        for role in ("initiator", "responder"):
            f = role_only(role)
            addon.websocket_start(f)
            send(addon, f, info("ch_S", f"{run}{role}"), False)
            close(addon, f)
    found = transcripts(addon)
    assert len(found) == 2
    for t in found.values():
        assert [c.role for c in t.connections()] == ["initiator", "responder"]
        events = [f.data["params"]["data"]["event"] for _, f in t.frames()]
        assert events in (["0initiator", "0responder"], ["1initiator", "1responder"])
    assert addon.by_channel["ch_S"].name == max(found)


def test_killed_proxy_after_a_merge_keeps_every_frame(rec) -> None:
    addon, _ = rec
    fi, fr = role_only("initiator"), role_only("responder")
    addon.websocket_start(fi)
    send(addon, fi, info("ch_K", "i"), False)
    close(addon, fi)
    addon.websocket_start(fr)
    send(addon, fr, info("ch_K", "r"), False)
    send(addon, fr, "last", True)
    # killed here: the survivor's journal is unfinished and holds both participants (the kernel releases a
    # killed proxy's journal locks: closed here, else the journal is live and not listed)
    addon.wait()
    for session in addon.sessions:
        session.journal.close()
    from chanlog.record.journal import find_unfinished
    from chanlog.record.writer import load_journal

    (unfinished,) = find_unfinished(addon.directory)
    t = load_journal(unfinished.path)
    assert frames_of(t) == [("initiator", 0, "node", info("ch_K", "i")), ("responder", 1, "node", info("ch_K", "r")),
                            ("responder", 1, "client", "last")]
    assert t.source["open_connections"] == 1


# -- faults -------------------------------------------------------------------------------------


def test_full_disk_one_message_a_marked_gap_and_recording_resumes(rec, disk: Disk, caplog) -> None:
    addon, _ = rec
    fi, fr = ws_flow("initiator"), ws_flow("responder")
    addon.websocket_start(fi)
    addon.websocket_start(fr)
    with caplog.at_level(logging.INFO):
        for i in range(1, 31):
            disk.full = 11 <= i <= 20
            send(addon, fi, f"c{i}", True)
            send(addon, fr, f"n{i}", False)
        close(addon, fi)
        close(addon, fr)
        (t,) = transcripts(addon).values()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors  # one line for the session, not one per frame
    assert "No space left on device" in errors[0] and "initiator connection 0 frame 11" in errors[0]
    assert "the proxy keeps forwarding" in errors[0] and "resumes by itself" in errors[0]
    assert "recording again" in caplog.text and "20 frames" in caplog.text
    assert [f.wire() for _, f in t.frames() if f.role == "initiator"] == [f"c{i}" for i in (*range(1, 11),
                                                                                            *range(21, 31))]
    (gap,) = t.source["gaps"]
    assert t.source["incomplete"] is True and gap["frames"] == 20
    assert gap["lost"] == [{"role": "initiator", "conn": 0, "frames": [11, 20]},
                           {"role": "responder", "conn": 1, "frames": [11, 20]}]
    assert not addon.failing
    assert scan(addon.directory / "journals" / f"{t.name}.jsonl").finished


def test_session_ending_while_the_disk_is_full_says_so_and_finishes_later(rec, disk: Disk,
                                                                          monkeypatch, caplog) -> None:
    from chanlog.record import addon as amod

    monkeypatch.setattr(amod, "RETRY_WRITE", 0.05)
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    send(addon, f, "kept", False)
    disk.full = True
    with caplog.at_level(logging.INFO):
        send(addon, f, "lost", False)
        close(addon, f)
        addon.wait()
        assert "cannot write" in caplog.text
        disk.full = False
        for _ in range(100):  # the transcript is written again by itself once space returns
            addon.wait()
            if addon.written and scan(addon.directory / "journals" / f"{addon.written[-1].stem}.jsonl").finished:
                break
            import time
            time.sleep(0.05)
    (t,) = transcripts(addon).values()
    assert [f.wire() for _, f in t.frames()] == ["kept"]
    assert t.source["gaps"][0]["lost"] == [{"role": "initiator", "conn": 0, "frames": [2, 2]}]
    assert isinstance(t.events[-1], Close)  # the close record kept in memory reached the journal


def test_refuse_mode_answers_new_sessions_with_503_while_failing(rec, disk: Disk) -> None:
    addon, tctx = rec
    tctx.configure(addon, chanlog_on_error="refuse")
    fi = ws_flow("initiator")
    addon.websocket_start(fi)
    disk.full = True
    send(addon, fi, "lost", True)
    joining, new = ws_flow("responder"), ws_flow("initiator", port="999")
    joining.response = new.response = None  # at the request hook, no response yet
    addon.request(joining)
    addon.request(new)
    assert joining.response is None  # the running session's other participant still passes
    assert new.response is not None and new.response.status_code == 503
    assert b"cannot write" in new.response.content
    disk.full = False
    send(addon, fi, "kept", True)
    later = ws_flow("initiator", port="998")
    later.response = None
    addon.request(later)
    assert later.response is None


def test_corrupt_journal_at_start_up_is_named_once_and_recording_goes_on(tmp_path: Path, caplog) -> None:
    jdir = tmp_path / "out" / "journals"
    jdir.mkdir(parents=True)
    (jdir / "evil.jsonl").write_text("[" * 200_000 + "]" * 200_000 + "\n")
    addon = ChannelRecorder()
    with caplog.at_level(logging.WARNING), taddons.context(addon) as tctx:
        tctx.configure(addon, chanlog_dir=str(tmp_path / "out"), chanlog_writers=0)
        f = ws_flow("initiator")
        addon.websocket_start(f)
        send(addon, f, "hello", True)
        close(addon, f)
        (t,) = transcripts(addon).values()
    addon.done()
    assert caplog.text.count("evil.jsonl") == 1 and "unreadable journal" in caplog.text
    assert [fr.wire() for _, fr in t.frames()] == ["hello"]


def test_abnormal_close_is_recorded_with_what_the_client_was_told(rec, caplog) -> None:
    addon, _ = rec
    f = ws_flow("initiator")
    addon.websocket_start(f)
    with caplog.at_level(logging.WARNING):
        close(addon, f, code=1006, by_client=False)
    (t,) = transcripts(addon).values()
    last = t.events[-1]
    assert isinstance(last, Close) and last.code == 1006 and last.closed_by == "node"
    assert "without a close frame" in last.reason and "code 1000" in last.reason
    assert "without a close frame" in caplog.text


def test_bounded_auto_keeps_messages_when_mitmproxy_saves_flows(tmp_path: Path) -> None:
    from mitmproxy.addons.save import Save

    addon = ChannelRecorder()
    with taddons.context(addon, Save()) as tctx:
        tctx.configure(addon, chanlog_dir=str(tmp_path / "out"), chanlog_writers=0)
        _bounded_auto(addon, tctx, tmp_path)
    addon.done()


def _bounded_auto(addon: ChannelRecorder, tctx, tmp_path: Path) -> None:
    assert addon.bounded
    tctx.options.update(save_stream_file=str(tmp_path / "flows.mitm"))
    assert not addon.bounded and "save_stream_file" in addon.bounded_why
    f = ws_flow("initiator")
    addon.websocket_start(f)
    for n in range(3):
        send(addon, f, f"m{n}", True)
    assert len(f.websocket.messages) == 3
    tctx.options.update(save_stream_file=None)
    assert addon.bounded


def test_transcripts_written_by_worker_processes(tmp_path: Path) -> None:
    addon = ChannelRecorder()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, chanlog_dir=str(tmp_path / "out"), chanlog_writers=2)
        for port in ("1", "2", "3"):
            f = ws_flow("initiator", port=port)
            addon.websocket_start(f)
            send(addon, f, f"hello {port}", True)
            close(addon, f)
        found = transcripts(addon)
    addon.done()
    assert sorted(fr.wire() for t in found.values() for _, fr in t.frames()) == ["hello 1", "hello 2", "hello 3"]
    assert all(scan(p).finished for p in (tmp_path / "out" / "journals").iterdir())


def test_shutdown_while_the_disk_is_still_full_says_what_is_missing(tmp_path: Path, disk: Disk,
                                                                    caplog) -> None:
    addon = ChannelRecorder()
    with caplog.at_level(logging.INFO), taddons.context(addon) as tctx:
        tctx.configure(addon, chanlog_dir=str(tmp_path / "out"), chanlog_writers=0, chanlog_journal_window=0)
        f = ws_flow("initiator")
        addon.websocket_start(f)
        send(addon, f, "kept", True)
        disk.full = True
        send(addon, f, "lost", True)
        addon.done()
    assert "at shutdown its journal still cannot be written" in caplog.text
    assert "1 frames (4 bytes) lost: initiator conn 0 frames 2-2" in caplog.text


@pytest.mark.skipif(not hasattr(__import__("os"), "SCHED_IDLE"), reason="SCHED_IDLE is Linux only")
def test_transcript_writer_processes_run_at_idle_priority(tmp_path: Path) -> None:
    import os

    from chanlog.record.writer import TranscriptWriter

    writer = TranscriptWriter(1)
    try:
        policy = writer._executor().submit(os.sched_getscheduler, 0).result(timeout=60)
        # what the worker's forked parts inherit
        child = writer._executor().submit(_policy_of_a_forked_child).result(timeout=60)
    finally:
        writer.shutdown()
    assert policy == child == os.SCHED_IDLE
    assert os.sched_getscheduler(0) != os.SCHED_IDLE  # this process (the proxy's place) is untouched


def _policy_of_a_forked_child() -> int:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, bytes([os.sched_getscheduler(0)]))
        os._exit(0)
    os.waitpid(pid, 0)
    return os.read(read, 1)[0]


def test_transcript_writer_processes_exit_when_the_proxy_is_killed(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    code = ("import os, time; from chanlog.record.writer import TranscriptWriter; w = TranscriptWriter(2); "
            "w.start(); pids = {w._executor().submit(os.getpid).result() for _ in range(8)}; "
            "print(*sorted(pids), flush=True); time.sleep(120)")
    proxy = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        used = [int(x) for x in proxy.stdout.readline().split()]
        workers = [int(pid) for child in Path(f"/proc/{proxy.pid}/task").glob("*/children")
                   for pid in child.read_text().split()]  # the workers (and multiprocessing's resource tracker)
    finally:
        proxy.send_signal(signal.SIGKILL)
        proxy.wait()
    assert used and set(used) <= set(workers)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as fh:  # a zombie waiting for init to reap it is gone too
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"

    deadline = time.monotonic() + 30
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if alive(p)]


def test_journal_window_option_reaches_each_journal(tmp_path: Path) -> None:
    addon = ChannelRecorder()
    with taddons.context(addon) as tctx:
        assert tctx.options.chanlog_journal_window == 256
        tctx.configure(addon, chanlog_dir=str(tmp_path / "out"), chanlog_writers=0, chanlog_journal_window=8)
        with pytest.raises(exceptions.OptionsError, match="chanlog_journal_window must be 0 to"):
            tctx.configure(addon, chanlog_journal_window=-1)
        f = ws_flow("initiator")
        addon.websocket_start(f)
        send(addon, f, "one", True)
        journal = addon.flows[f.id].session.journal
        assert journal.window == 8192 and journal.path.stat().st_size == 8192  # reserved, records and zeros
        tctx.configure(addon, chanlog_journal_window=0)
        g = ws_flow("initiator", port="2")
        addon.websocket_start(g)
        send(addon, g, "two", True)
        plain = addon.flows[g.id].session.journal
        assert plain.window == 0 and plain.path.stat().st_size == plain.size  # a write() per record
        addon.done()
    assert journal.path.stat().st_size == journal.size


def test_transcript_writer_processes_are_safe_to_fork_and_make_no_semaphores(tmp_path: Path) -> None:
    """The writer's worker processes (started from a threaded proxy) run one thread each, so the processes they
    fork to write a long transcript in parts are safe (Python 3.12+ warns of os.fork in a threaded process:
    run here with that warning an error, in the proxy's place and in its workers); and no multiprocessing
    resource tracker is started (its "leaked semaphore objects" complaint follows every killed proxy)."""
    import subprocess
    import sys

    code = ("import os, sys, threading, time; sys.path.insert(0, sys.argv[1]); "
            "from chanlog.record.writer import TranscriptWriter; import faults as t; "
            "threading.Thread(target=time.sleep, args=(60,), daemon=True).start(); "  # a threaded proxy
            "w = TranscriptWriter(2); w.start(); "
            "runs = [w._executor().submit(t.threads_then_fork).result(timeout=60) for _ in range(4)]; "
            "kids = [int(p) for c in os.listdir(f'/proc/{os.getpid()}/task') "
            "        for p in open(f'/proc/{os.getpid()}/task/{c}/children').read().split()]; "
            "cmds = [open(f'/proc/{p}/cmdline', 'rb').read().replace(b'\\0', b' ').decode() for p in kids]; "
            "print(runs, len(kids), *cmds, sep='\\n', flush=True); w.shutdown()")
    env = {**__import__("os").environ, "PYTHONWARNINGS": "error::DeprecationWarning"}
    done = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    runs, count, *commands = done.stdout.splitlines()
    assert eval(runs) == [(1, 0)] * 4  # one thread when it forked; the forked child ran  # noqa: S307
    assert int(count) == 2 and len(commands) == 2, commands
    assert all("_serve" in c for c in commands) and not any("resource_tracker" in c for c in commands), commands
    assert "Warning" not in done.stderr, done.stderr

