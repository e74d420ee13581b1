"""``chanlog replay --record-mode none|once|all --node URL``: record a client's own run through the real
mitmdump (the shipped recorder) in front of a node, then serve it; failed recordings leave no transcript.

The "node" is a stand-in: a fake node (:func:`chanlog.replay.serve_in_thread`) serving the shipped example;
the client is chanlog's own player (:func:`chanlog.replay.player.play`, both participants). Every process runs
on loopback with port 0.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import EXAMPLE, need_example
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlog.diff import diff_transcripts
from chanlog.record.combine import RecordingError, combine, run_state
from chanlog.record.journal import JournalWriter
from chanlog.record.process import ProcessError, find_mitmdump
from chanlog.replay import load_transcript, serve_in_thread
from chanlog.replay.modes import RecordMode
from chanlog.replay.player import play
from chanlog.transcript import load

pytestmark = pytest.mark.e2e

#: Seconds a child process may take to print its URL line, and to end after its client is done (a hang guard:
#: on a loaded machine, stopping mitmdump alone may take chanlog.replay.modes.STOP_TIMEOUT).
WAIT = 120


def need_mitmdump() -> None:
    need_example()
    try:
        find_mitmdump()
    except ProcessError as exc:
        pytest.skip(str(exc))


class Replay:
    """``chanlog replay ARGS`` as a child process; :attr:`url` is the URL line it printed."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "chanlog", "replay", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        ready = sel.select(WAIT)
        sel.close()
        self.url = self.proc.stdout.readline().strip() if ready else ""  # type: ignore[union-attr]

    def end(self, sig: int | None = None) -> tuple[int, str]:
        """Its exit status and standard error (after ``sig``, when given)."""
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.communicate()
        return self.proc.returncode, err


@pytest.fixture
def stand_in():
    """The node to record from: a fake node serving the shipped example (up to 2 sessions)."""
    need_mitmdump()
    node = serve_in_thread(load_transcript(EXAMPLE), sessions=2, timeout=10)
    try:
        yield node
    finally:
        node.stop()


def test_once_records_the_run_then_serves_it_with_the_same_command_line(stand_in, tmp_path: Path) -> None:
    fixture = tmp_path / "cassettes" / "open.yaml"
    fixture.parent.mkdir()
    args = (str(fixture), "--record-mode", "once", "--node", stand_in.url, "--grace", "1")

    first = Replay(*args, env={"TMPDIR": str(tmp_path)})
    assert first.url.startswith("ws://127.0.0.1:") and first.url.endswith("/channel"), first.end()
    played = play(load_transcript(EXAMPLE), first.url, timeout=10)
    status, err = first.end()
    assert played.ok, played.summary()
    assert status == 0, err
    assert "recorded 1 channel session(s) (2 connections, 30 frames)" in err
    recorded = load(fixture)
    assert diff_transcripts(load_transcript(EXAMPLE), recorded) == []
    assert recorded.source["node"] == stand_in.url and len(recorded.source["sessions"]) == 1
    assert not list(tmp_path.glob("chanlog-record-*")), "the recorder's folder is removed after a recording"

    stand_in.stop()  # the node is gone: the second run must not need it
    second = Replay(*args)
    replayed = play(load_transcript(EXAMPLE), second.url, timeout=10)
    status, err = second.end()
    assert replayed.ok, replayed.summary()
    assert status == 0, err
    assert "played to the end" in err and "0 divergences" in err
    assert "recording" not in err


def test_all_records_again_and_replaces_the_transcript(stand_in, tmp_path: Path) -> None:
    fixture = tmp_path / "open.yaml"
    fixture.write_text("old: not a transcript\n")
    run = Replay(str(fixture), "--record-mode", "all", "--node", stand_in.url, "--grace", "0.5")
    assert play(load_transcript(EXAMPLE), run.url, timeout=10).ok
    status, err = run.end()
    assert status == 0, err
    assert diff_transcripts(load_transcript(EXAMPLE), load(fixture)) == []


def test_several_channel_sessions_are_one_transcript_served_in_order(stand_in, tmp_path: Path) -> None:
    """A run that opens the channel twice (two sessions for the recorder) is recorded as one transcript
    holding both, and served again session after session (the second play uses the later connections)."""
    fixture = tmp_path / "twice.yaml"
    run = Replay(str(fixture), "--record-mode", "once", "--node", stand_in.url, "--grace", "1.5")
    example = load_transcript(EXAMPLE)
    assert play(example, run.url, timeout=10).ok and play(example, run.url, timeout=10).ok
    status, err = run.end()
    assert status == 0, err
    assert "recorded 2 channel session(s) (4 connections, 60 frames)" in err
    recorded = load(fixture)
    assert [s["connections"] for s in recorded.source["sessions"]] == [[0, 1], [2, 3]]
    assert [c.role for c in recorded.connections()] == ["initiator", "responder", "initiator", "responder"]

    served = Replay(str(fixture))
    assert play(example, served.url, timeout=10).ok and play(example, served.url, timeout=10).ok
    status, err = served.end()
    assert status == 0 and "played to the end" in err, err


def test_none_fails_on_a_missing_transcript_saying_how_to_record_it(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "chanlog", "replay", str(tmp_path / "absent.yaml")],
                          capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "absent.yaml: no such transcript; record it" in done.stderr
    assert "--record-mode once --node ws://HOST:PORT/channel" in done.stderr


def test_recording_needs_the_node(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "chanlog", "replay", str(tmp_path / "x.yaml"), "--record-mode",
                           "once"], capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 2 and "--node ws://HOST:PORT/channel" in done.stderr


def test_an_unreachable_node_records_nothing(tmp_path: Path) -> None:
    need_mitmdump()
    with __import__("socket").socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        node = f"ws://127.0.0.1:{s.getsockname()[1]}/channel"
        done = subprocess.run([sys.executable, "-m", "chanlog", "replay", str(tmp_path / "x.yaml"), "--port", "0",
                               "--record-mode", "all", "--node", node], capture_output=True, text=True, timeout=WAIT)
    assert done.returncode == 1 and done.stdout == ""
    assert "cannot reach the node to record from" in done.stderr and "nothing was recorded" in done.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_a_node_that_goes_away_during_the_recording_is_an_incomplete_recording(stand_in, tmp_path: Path) -> None:
    """The node answers when the recording starts, then is gone: the client's connection through the recorder
    fails, and the recording says the node could not be reached (and writes nothing)."""
    from websockets.sync.client import connect

    fixture = tmp_path / "gone.yaml"
    run = Replay(str(fixture), "--record-mode", "all", "--node", stand_in.url, env={"TMPDIR": str(tmp_path)})
    assert run.url
    stand_in.stop()
    with pytest.raises(Exception):  # noqa: B017 - whatever the client library makes of a failed upgrade
        with connect(run.url + "?role=initiator", open_timeout=10) as ws:
            ws.recv(timeout=10)
    status, err = run.end(signal.SIGTERM)
    assert status == 1, err
    assert re.search(r"the node could not be reached \d+ time\(s\) during the recording", err), err
    assert "Connect call failed" in err
    assert not fixture.exists()


def test_a_session_left_open_when_the_recording_is_stopped_is_not_written(stand_in, tmp_path: Path) -> None:
    """The client connects and stays: the recording is interrupted (SIGTERM) with its session open."""
    from websockets.sync.client import connect

    fixture = tmp_path / "open.yaml"
    run = Replay(str(fixture), "--record-mode", "once", "--node", stand_in.url, env={"TMPDIR": str(tmp_path)})
    url = run.url + "?" + load_transcript(EXAMPLE).events[0].url.split("?", 1)[1]
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=10))["params"]["data"]["event"] == "fsm_up"
        status, err = run.end(signal.SIGTERM)
    assert status == 1, err
    assert "not a complete fixture" in err and "still had connections open when the recording stopped" in err
    assert not fixture.exists()
    kept = list(tmp_path.glob("chanlog-record-*/record"))
    assert len(kept) == 1 and str(kept[0]) in err  # the raw recording is kept for a look, named in the error


def test_a_run_where_no_client_came_is_not_written(stand_in, tmp_path: Path) -> None:
    fixture = tmp_path / "none.yaml"
    run = Replay(str(fixture), "--record-mode", "once", "--node", stand_in.url, env={"TMPDIR": str(tmp_path)})
    assert run.url
    status, err = run.end(signal.SIGINT)
    assert status == 1 and "nothing was recorded" in err, err
    assert not fixture.exists()


# -- the checks of combine() on journals made by hand (no proxy needed)

URL = "ws://n/channel?role={}&initiator_id=ak_1&responder_id=ak_2"
FRAME = b'{"jsonrpc":"2.0","method":"channels.info","params":{"channel_id":null,"data":{"event":"fsm_up"}}}'


def journal(folder: Path, name: str, t0: float, *, end: bool = True, close: bool = True,
            gap: bool = False) -> JournalWriter:
    (folder / "journals").mkdir(parents=True, exist_ok=True)
    w = JournalWriter(folder / "journals" / f"{name}.jsonl")
    w.open()
    w.header(name, f"{name}.yaml", "2026-01-01T00:00:00+00:00", t0)
    for conn, role in enumerate(("initiator", "responder")):
        w.open_record(conn, role, t0 + conn, URL.format(role))
        w.frame_record(conn, role, "node", t0 + conn + 0.5, FRAME, True)
    if gap:
        w.write({"kind": "gap", "error": "No space left on device", "ts": t0 + 2, "frames": 3,
                 "lost": [{"conn": 0, "role": "initiator", "frames": [2, 4]}]})
    if close:
        for conn, role in enumerate(("initiator", "responder")):
            w.close_record(conn, role, t0 + 3 + conn, 1000, "client", None)
    if end:
        w.finish_if_unchanged(w.size, t0 + 5)
    w.close()
    return w


def test_combine_joins_sessions_in_time_order_with_later_connections_renumbered(tmp_path: Path) -> None:
    journal(tmp_path, "b", 200.0)
    journal(tmp_path, "a", 100.0)
    assert [done for _, _, done in run_state(tmp_path)] == [True, True]
    out = tmp_path / "run.yaml"
    combined = combine(tmp_path, out, name="run", node="ws://n/channel")
    assert combined.sessions == ["a", "b"] and combined.connections == 4 and combined.frames == 4
    t = load(out)
    assert [(e.conn, e.t) for e in t.events if e.KIND == "open"] == [(0, 0.0), (1, 1.0), (2, 100.0), (3, 101.0)]
    assert t.source["sessions"] == [{"name": "a", "connections": [0, 1]}, {"name": "b", "connections": [2, 3]}]


@pytest.mark.parametrize("kind, message", [
    ("unfinished", "is unfinished: its journal"),
    ("unclosed", "connection(s) without a close"),
    ("gap", "lost 3 frames in 1 gap(s)"),
    ("open_at_stop", "still had connections open when the recording stopped"),
    ("nothing", "nothing was recorded"),
])
def test_combine_refuses_an_incomplete_recording_and_writes_nothing(tmp_path: Path, kind: str, message: str) -> None:
    journal(tmp_path, "fine", 100.0)
    if kind != "nothing":
        journal(tmp_path, "bad", 200.0, end=kind != "unfinished", close=kind != "unclosed", gap=kind == "gap")
    else:
        (tmp_path / "journals" / "fine.jsonl").unlink()
    out = tmp_path / "run.yaml"
    with pytest.raises(RecordingError, match=re.escape(message)) as caught:
        combine(tmp_path, out, name="run", node="ws://n/channel",
                open_at_stop={"bad.jsonl"} if kind == "open_at_stop" else ())
    assert not out.exists()
    assert str(out) in str(caught.value)


def test_record_modes_are_pytest_recordings_names() -> None:
    from chanlog.cli.replay import RECORD_MODES

    assert tuple(m.value for m in RecordMode) == RECORD_MODES == ("none", "once", "all")
    assert RecordMode.ONCE.records(Path("/nonexistent/x.yaml")) and RecordMode.ALL.records(Path(__file__))
    assert not RecordMode.ONCE.records(Path(__file__)) and not RecordMode.NONE.records(Path("/nonexistent"))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e6, allow_nan=False), st.lists(st.floats(0, 50, allow_nan=False),
                                                                        min_size=0, max_size=6)),
                min_size=1, max_size=4))
def test_combine_keeps_every_event_each_sessions_order_and_one_time_line(sessions) -> None:
    """Any number of sessions, started at any times, each with any frame times (not necessarily increasing):
    every event is kept once, a session's own order is kept, connections are numbered session after session,
    and events of different sessions are ordered by time."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "journals").mkdir()
        for k, (t0, offsets) in enumerate(sessions):
            w = JournalWriter(folder / "journals" / f"s{k}.jsonl")
            w.open()
            w.header(f"s{k}", f"s{k}.yaml", "2026-01-01T00:00:00+00:00", t0)
            w.open_record(0, "initiator", t0, URL.format("initiator"))
            for i, dt in enumerate(offsets):
                w.frame_record(0, "initiator", "node", t0 + dt, b'{"n":%d,"s":%d}' % (i, k), True)
            w.close_record(0, "initiator", t0 + 60, 1000, "client", None)
            w.finish_if_unchanged(w.size, t0 + 61)
            w.close()
        combined = combine(folder, folder / "run.yaml", name="run", node="ws://n/channel")
        events = load(folder / "run.yaml").events
    order = sorted(range(len(sessions)), key=lambda k: (sessions[k][0], f"s{k}"))
    assert combined.sessions == [f"s{k}" for k in order] and combined.connections == len(sessions)
    assert len(events) == sum(2 + len(offsets) for _, offsets in sessions)
    for conn, k in enumerate(order):  # session k's connection is numbered by its start, its frames in order
        mine = [e for e in events if e.conn == conn]
        assert [e.KIND for e in mine] == ["open"] + ["frame"] * len(sessions[k][1]) + ["close"]
        assert [e.data for e in mine if e.KIND == "frame"] == [{"n": i, "s": k} for i in range(len(sessions[k][1]))]
    # one time line: the sessions' opens (each its session's first event) in time order
    opens = [e.t for e in events if e.KIND == "open"]
    assert opens == sorted(opens)


@pytest.mark.parametrize("args, message", [
    (["-", "--record-mode", "all", "--node", "ws://127.0.0.1:1/channel"], "written to a file"),
    (["x.yaml", "--record-mode", "all", "--node", "ws://127.0.0.1:1/channel", "--sessions", "2"],
     "served as one session"),
    (["x.yaml", "--record-mode", "once", "--node", "localhost:3014"], "Invalid value for --node"),
])
def test_bad_record_usage_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "chanlog", "replay", *args], capture_output=True, text=True,
                          timeout=WAIT, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "x.yaml").exists()
