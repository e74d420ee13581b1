"""The journal: records written and read back, transcripts rebuilt from it, ``chanlog recover``."""

from __future__ import annotations

import base64
import errno
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from faults import Disk
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlog import transcript as tmod
from chanlog.cli import main
from chanlog.model import Close, Frame, Open
from chanlog.record import journal as jmod
from chanlog.record import writer as wmod
from chanlog.record.journal import (
    JOURNAL_FORMAT,
    JournalError,
    JournalWriter,
    find_unfinished,
    iter_records,
    scan,
)
from chanlog.record.writer import load_journal, write_transcript

URL_I = "ws://node:3014/channel?initiator_id=ak_1&responder_id=ak_2&port=1&protocol=json-rpc&role=initiator"
URL_R = "ws://node:3014/channel?initiator_id=ak_1&responder_id=ak_2&port=1&protocol=json-rpc&role=responder"
PRETTY = json.dumps({"jsonrpc": "2.0", "method": "channels.info",
                     "params": {"channel_id": "ch_abc", "data": {"event": "open"}}}, indent=2)
COMPACT = '{"jsonrpc":"2.0","id":7,"method":"channels.update.new","params":{"amount":1}}'
SPACED = '{"jsonrpc": "2.0", "result": "ok"}'
ODD = '{"a":1,  "b":2}'  # JSON that no format reproduces: kept verbatim


def write_sample(path: Path, *, end: bool = True) -> JournalWriter:
    w = JournalWriter(path)
    w.open()
    w.header("s1", "s1.yaml", "2025-01-01T00:00:00+00:00", 100.0)
    w.open_record(0, "initiator", 100.0, URL_I, {"Cookie": "x=1"})
    w.frame_record(0, "initiator", "node", 100.5, PRETTY.encode(), True)
    w.open_record(1, "responder", 101.0, URL_R)
    w.frame_record(1, "responder", "client", 101.25, COMPACT.encode(), True, injected=True)
    w.frame_record(1, "responder", "node", 101.5, SPACED.encode(), True)
    w.frame_record(0, "initiator", "node", 102.0, ODD.encode(), True)
    w.frame_record(0, "initiator", "client", 102.5, b"plain words", True)
    w.frame_record(0, "initiator", "client", 103.0, b"\x00\xffbin", False)
    w.close_record(0, "initiator", 104.0, 1000, "client", None)
    w.close_record(1, "responder", 104.5, 1006, "node", "gone")
    if end:
        w.finish_if_unchanged(w.size, 105.0)
    w.close()
    return w


def test_every_record_is_one_flushed_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.open()
    w.header("s", "s.yaml", "now", 1.0)
    w.frame_record(0, "initiator", "node", 2.0, "héllo ✓".encode(), True)
    w.frame_record(0, "initiator", "client", 2.5, b'{"a":"q\\"u"}', True, n=7, injected=True)
    # in the file before returning: another reader sees every line while the writer is still open (mapped
    # appends: then the rest of the reserved window, zeros, which readers take as the end)
    data = path.read_bytes()
    assert not data[w.size:].strip(b"\0") and len(data) - w.size < jmod.MAP_CHUNK
    lines = data[:w.size].split(b"\n")
    assert len(lines) == 4 and lines[3] == b""
    assert json.loads(lines[0])["chanlog_journal"] == JOURNAL_FORMAT == 2
    # a text message without a newline: its bytes as they are (format 2 "raw"), read without parsing
    assert lines[1] == '{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":2.0,"raw":héllo ✓}'.encode()
    assert lines[2] == b'{"kind":"frame","conn":0,"role":"initiator","from":"client","ts":2.5,"n":7,"injected":true,' \
                       b'"raw":{"a":"q\\"u"}}'
    assert json.loads(lines[2])["raw"] == {"a": 'q"u'}  # JSON exactly when the message is
    assert [rec for _, rec in iter_records(path)][1:] == [
        {"kind": "frame", "conn": 0, "role": "initiator", "from": "node", "ts": 2.0, "text": "héllo ✓"},
        {"kind": "frame", "conn": 0, "role": "initiator", "from": "client", "ts": 2.5, "n": 7, "injected": True,
         "text": '{"a":"q\\"u"}'}]
    w.close()
    assert path.stat().st_size == w.size == len(data[:w.size])  # closed: cut back to its records


def test_transcript_rebuilt_with_exact_wire_content(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path)
    t = load_journal(path)
    assert t.name == "s1" and t.protocol == "json-rpc"
    assert t.source["kind"] == "capture" and t.source["channel_id"] == "ch_abc"
    assert "open_connections" not in t.source
    frames = [f for _, f in t.frames()]
    assert [f.wire() for f in frames] == [PRETTY, COMPACT, SPACED, ODD, "plain words", b"\x00\xffbin"]
    assert [f.fmt for f in frames[:4]] == ["pretty", "compact", "spaced", None]
    assert frames[3].text == ODD and frames[5].binary == b"\x00\xffbin"
    assert [f.injected for f in frames] == [False, True, False, False, False, False]
    opens = [e for e in t.events if isinstance(e, Open)]
    assert opens[0].headers == {"Cookie": "x=1"} and opens[1].headers is None
    closes = [e for e in t.events if isinstance(e, Close)]
    assert [(c.code, c.closed_by, c.reason) for c in closes] == [(1000, "client", None), (1006, "node", "gone")]
    assert [e.t for e in t.events] == [0.0, 0.5, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 4.5]
    assert [(e.role, e.conn) for e in t.events][:4] == [("initiator", 0), ("initiator", 0), ("responder", 1),
                                                        ("responder", 1)]


@pytest.mark.parametrize("chunk", [1, 3, 500])
def test_streamed_yaml_is_what_transcript_dump_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      chunk: int) -> None:
    monkeypatch.setattr(wmod, "YAML_CHUNK", chunk)
    path = tmp_path / "j.jsonl"
    write_sample(path)
    out = tmp_path / "out.yaml"
    info = write_transcript(path, out)
    assert info.frames == 6 and info.connections == 2 and info.finished
    assert out.read_text(encoding="utf-8") == tmod.dumps(load_journal(path))
    assert tmod.load(out).to_dict() == load_journal(path).to_dict()
    assert not list(tmp_path.glob(".out.yaml.*"))  # no temporary file left behind


def test_empty_session_streams_an_empty_event_list(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.open()
    w.header("empty", "empty.yaml", "now", 1.0)
    w.close()
    out = tmp_path / "e.yaml"
    write_transcript(path, out)
    assert out.read_text() == tmod.dumps(load_journal(path))
    assert tmod.load(out).events == []


def test_limit_reads_only_the_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.open()
    w.header("s", "s.yaml", "now", 1.0)
    w.open_record(0, "initiator", 1.0, URL_I)
    size = w.size
    w.frame_record(0, "initiator", "node", 2.0, b"later", True)
    assert load_journal(path, limit=size).events[-1].__class__ is Open
    assert len(load_journal(path).events) == 2


def test_truncated_last_line_is_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"frame","conn":0,"role":"initiator","from":"no')
    info = scan(path)
    assert info.truncated == 12 and not info.finished and info.frames == 6
    assert len(list(load_journal(path).frames())) == 6


def test_bad_line_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path)
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(3, "garbage\n")
    path.write_text("".join(lines))
    with pytest.raises(JournalError) as err:
        load_journal(path)
    assert err.value.where == f"{path}:4"


def test_unknown_record_kind_and_missing_key_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path)
    with open(path, "a") as fh:
        fh.write('{"kind":"frame","conn":0,"role":"initiator","ts":1}\n')
    with pytest.raises(JournalError, match="malformed frame record"):
        load_journal(path)
    path.write_text(path.read_text().splitlines(keepends=True)[0] + '{"kind":"mystery","conn":0,"role":"x"}\n')
    with pytest.raises(JournalError, match="unknown record kind 'mystery'") as err:
        load_journal(path)
    assert err.value.where == f"{path}:2"


def test_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"kind":"open"}\n')
    with pytest.raises(JournalError, match="not a chanlog journal"):
        scan(path)
    with pytest.raises(JournalError, match="cannot read"):
        scan(tmp_path / "missing.jsonl")


def test_end_only_when_nothing_was_appended_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.open()
    w.header("s", "s.yaml", "now", 1.0)
    size = w.size
    w.open_record(0, "initiator", 1.0, URL_I)
    assert w.finish_if_unchanged(size, 2.0) is False and not scan(path).finished
    assert w.finish_if_unchanged(w.size, 2.0) is True and w.closed and scan(path).finished
    # continuing after the end (a reestablish) makes it unfinished again
    w.open_record(1, "initiator", 3.0, URL_I)
    assert not scan(path).finished and scan(path).connections == 2


def test_find_unfinished(tmp_path: Path) -> None:
    folder = tmp_path / "journals"
    folder.mkdir()
    write_sample(folder / "done.jsonl")
    write_sample(folder / "open.jsonl", end=False)
    (folder / "junk.jsonl").write_text("not json\n")
    found = find_unfinished(tmp_path)
    assert [f.path.name for f in found if not isinstance(f, JournalError)] == ["open.jsonl"]
    assert [f for f in found if isinstance(f, JournalError)][0].where.endswith("junk.jsonl:1")


def test_legacy_protocol_from_url_or_frames(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.open()
    w.header("s", "s.yaml", "now", 1.0)
    w.open_record(0, "initiator", 1.0, "ws://n/channel?role=initiator&port=1")
    w.frame_record(0, "initiator", "node", 1.0, b'{"action":"info","channel_id":"ch_L","payload":{"event":"open"}}', True)
    w.close()
    info = scan(path)
    assert info.protocol == "legacy" and info.channel_id == "ch_L"


# -- chanlog recover ----------------------------------------------------------------------------


def test_recover_writes_where_the_recorder_would(tmp_path: Path) -> None:
    jdir = tmp_path / "journals"
    jdir.mkdir()
    path = jdir / "s1.jsonl"
    write_sample(path, end=False)
    result = CliRunner().invoke(main, ["recover", str(path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "s1.yaml"
    assert "recovered 6 frames in 2 connections" in result.stderr
    assert tmod.load(out).to_dict() == load_journal(path).to_dict()
    assert not scan(path).finished  # the journal is left as it was


def test_recover_to_output_and_stdout(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"fra')
    out = tmp_path / "o.yaml"
    result = CliRunner().invoke(main, ["recover", str(path), "-o", str(out)])
    assert result.exit_code == 0
    assert f"{path}:12: incomplete last line skipped" in result.stderr
    assert len(list(tmod.load(out).frames())) == 6
    result = CliRunner().invoke(main, ["recover", str(path), "-o", "-"])
    assert result.exit_code == 0 and tmod.loads(result.stdout).to_dict() == tmod.load(out).to_dict()


def test_recover_finish_marks_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"fra')
    result = CliRunner().invoke(main, ["recover", str(path), "-o", str(tmp_path / "o.yaml"), "--finish"])
    assert result.exit_code == 0
    info = scan(path)
    assert info.finished and info.truncated is None and info.frames == 6


def test_recover_bad_journal_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text("nope\n")
    result = CliRunner().invoke(main, ["recover", str(path)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"chanlog: error: {path}:1: not a JSON record: Expecting value: line 1 column 1 (char 0)"


def test_recorded_frame_objects_equal_from_wire(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path)
    frames = [f for _, f in load_journal(path).frames()]
    again = [Frame.from_wire(f.wire(), role=f.role, conn=f.conn, sender=f.sender, t=f.t, injected=f.injected)
             for f in frames]
    assert frames == again


def test_frame_text_escaping_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    tricky = 'q"uote \\ back\nnew\tline \u2028 é 😀 \x00 \x7f </script>'
    w = JournalWriter(path)
    w.open()
    w.header("s", "s.yaml", "now", 1.0)
    w.frame_record(3, "responder", "client", 1.5, tricky.encode(), True, injected=True)
    w.frame_record(3, "responder", "node", 1.5, b"\xff\xfe not utf-8", True)  # a text frame that is not UTF-8
    w.close()
    line = path.read_bytes().split(b"\n")[1]  # a newline in the message: a JSON string (format 1 "text")
    assert json.loads(line) == {"kind": "frame", "conn": 3, "role": "responder", "from": "client", "ts": 1.5,
                                "injected": True, "text": tricky}
    frames = [f for _, f in load_journal(path).frames()]
    assert frames[0].wire() == tricky and frames[0].injected
    assert frames[1].binary == b"\xff\xfe not utf-8"


# -- merged sessions ----------------------------------------------------------------------------


def two_sessions(jdir: Path) -> tuple[JournalWriter, JournalWriter]:
    """Two journals written the way the recorder interleaves them (``n`` counts over both): A has the
    initiator (records 1, 2, 5, 7), B the responder (records 3, 4, 6)."""
    a, b = JournalWriter(jdir / "a.jsonl"), JournalWriter(jdir / "b.jsonl")
    for w, name, t0 in ((a, "a", 100.0), (b, "b", 100.5)):
        w.open()
        w.header(name, f"{name}.yaml", "now", t0)
    a.open_record(0, "initiator", 100.0, URL_I, n=1)
    a.frame_record(0, "initiator", "client", 100.1, b"i1", True, n=2)
    b.open_record(0, "responder", 100.5, URL_R, n=3)
    b.frame_record(0, "responder", "node", 100.6, PRETTY.encode(), True, n=4)
    a.frame_record(0, "initiator", "node", 100.7, PRETTY.encode(), True, n=5)
    b.close_record(0, "responder", 100.8, 1000, "client", None, n=6)
    a.frame_record(0, "initiator", "client", 100.9, b"i2", True, n=7)
    return a, b


def test_merge_copies_records_and_readers_restore_the_order_seen(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    assert a.absorb(b.path, "b", 1, 101.0) == 3
    b.mark_merged("a", "a.jsonl", "a.yaml", 101.0)
    assert b.closed
    a.frame_record(1, "responder", "client", 101.5, b"late", True, n=8)  # the responder, now conn 1
    a.close_record(0, "initiator", 102.0, 1000, "client", None, n=9)
    kinds = [rec.get("kind") for _, rec in iter_records(a.path)]
    assert kinds[5:10] == ["merge", "open", "frame", "close", "merge_end"]
    info = scan(a.path)
    assert (info.connections, info.frames, info.closes) == (2, 5, 2)
    assert info.merged == ["b"] and info.blocks == [(7, 9)] and info.partial_merge is None
    assert info.channel_id == "ch_abc" and not info.finished
    t = load_journal(a.path)
    assert [(type(e).__name__, e.conn, e.role) for e in t.events] == [
        ("Open", 0, "initiator"), ("Frame", 0, "initiator"), ("Open", 1, "responder"), ("Frame", 1, "responder"),
        ("Frame", 0, "initiator"), ("Close", 1, "responder"), ("Frame", 0, "initiator"),
        ("Frame", 1, "responder"), ("Close", 0, "initiator")]
    assert [f.wire() for _, f in t.frames()] == ["i1", PRETTY, PRETTY, "i2", "late"]
    assert [e.t for e in t.events][:3] == [0.0, 0.1, 0.5]
    absorbed = scan(b.path)
    assert absorbed.finished and absorbed.merged_into["session"] == "a" and absorbed.frames == 1


def test_connections_are_numbered_in_the_order_they_appear(tmp_path: Path) -> None:
    """The survivor's own later connection (journal conn 1) opened after the absorbed one (journal conn 2
    after the offset): the transcript numbers them in the order seen."""
    a, b = two_sessions(tmp_path)
    a.open_record(1, "initiator", 101.0, URL_I, n=8)
    a.absorb(b.path, "b", 2, 101.0)
    b.mark_merged("a", "a.jsonl", "a.yaml", 101.0)
    t = load_journal(a.path)
    assert [(c.conn, c.role) for c in t.connections()] == [(0, "initiator"), (1, "responder"), (2, "initiator")]


def test_merge_cut_short_by_a_kill_is_ignored_and_nothing_is_lost(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    a.absorb(b.path, "b", 1, 101.0)
    a.close()
    lines = a.path.read_bytes().splitlines(keepends=True)
    a.path.write_bytes(b"".join(lines[:8]) + lines[8][:10])  # killed while copying; no merged_into in b
    info = scan(a.path)
    assert info.partial_merge == 6 and info.merged == [] and info.truncated == 9
    assert (info.connections, info.frames, info.closes) == (1, 3, 0)
    assert [f.wire() for _, f in load_journal(a.path).frames()] == ["i1", PRETTY, "i2"]
    assert [f.wire() for _, f in load_journal(b.path).frames()] == [PRETTY]
    result = CliRunner().invoke(main, ["recover", str(a.path), "-o", str(tmp_path / "a.yaml")])
    assert result.exit_code == 0 and "merge cut short" in result.stderr


def test_merge_of_a_journal_that_absorbed_another_keeps_the_order_seen(tmp_path: Path) -> None:
    a, b = two_sessions(tmp_path)
    c = JournalWriter(tmp_path / "c.jsonl")
    c.open()
    c.header("c", "c.yaml", "now", 100.2)
    c.open_record(0, "responder", 100.2, URL_R, n=0)  # seen before everything of b
    b.absorb(c.path, "c", 1, 101.0)
    c.mark_merged("b", "b.jsonl", "b.yaml", 101.0)
    a.absorb(b.path, "b", 1, 101.0)
    b.mark_merged("a", "a.jsonl", "a.yaml", 101.0)
    t = load_journal(a.path)
    assert [(type(e).__name__, e.role) for e in t.events][:3] == [
        ("Open", "responder"), ("Open", "initiator"), ("Frame", "initiator")]
    assert len(t.connections()) == 3 and scan(a.path).merged == ["b"]


def test_recover_follows_merged_into_to_the_surviving_journal(tmp_path: Path) -> None:
    jdir = tmp_path / "journals"
    jdir.mkdir()
    a, b = two_sessions(jdir)
    a.absorb(b.path, "b", 1, 101.0)
    b.mark_merged("a", "a.jsonl", "a.yaml", 101.0)
    a.close()
    result = CliRunner().invoke(main, ["recover", str(b.path)])
    assert result.exit_code == 0, result.output
    assert "was merged into session a: recovering its journal" in result.stderr
    assert not (tmp_path / "b.yaml").exists()
    assert tmod.load(tmp_path / "a.yaml").to_dict() == load_journal(a.path).to_dict()
    assert len(list(tmod.load(tmp_path / "a.yaml").frames())) == 4
    a.path.unlink()
    result = CliRunner().invoke(main, ["recover", str(b.path)])
    assert result.exit_code == 0 and "is missing: recovering this journal's own frames" in result.stderr
    assert [f.wire() for _, f in tmod.load(tmp_path / "b.yaml").frames()] == [PRETTY]
    assert [i.path.name for i in find_unfinished(tmp_path) if not isinstance(i, JournalError)] == []


# -- write errors: nothing lost silently ----------------------------------------------------------


def test_full_disk_gap_says_exactly_which_frames_are_missing(tmp_path: Path, disk: Disk) -> None:
    path = tmp_path / "journals" / "s.jsonl"
    errors, resumes = [], []
    w = JournalWriter(path, on_error=lambda j, g: errors.append(g.error), on_resume=lambda j, g: resumes.append(g))
    w.header("s", "s.yaml", "now", 100.0)
    w.open_record(0, "initiator", 100.0, URL_I, n=1)
    w.open_record(1, "responder", 100.0, URL_R, n=2)
    n = 2
    for i in range(1, 11):  # frames 1..10 on each connection; 4..7 lost on both
        disk.full = 4 <= i <= 7
        disk.partial = 5 if i == 4 else 0  # the first failing write is a short one: cut off again
        for conn, role in ((0, "initiator"), (1, "responder")):
            n += 1
            ok = w.frame_record(conn, role, "node", 100.0 + i, f'{{"i":{i},"c":{conn}}}'.encode(), True, n=n,
                                number=i)
            assert ok is not disk.full
        if i == 6:
            assert w.close_record(1, "responder", 106.5, 1000, "client", None, n=100) is False  # kept for later
    w.close()
    assert errors == ["No space left on device"] and len(resumes) == 1  # one message each way
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # no line cut short by the full disk
    info = scan(path)
    assert info.gaps == 1 and info.lost_frames == 8 and info.frames == 12 and info.closes == 1
    t = load_journal(path)
    assert t.source["incomplete"] is True and t.source["lost_frames"] == 8
    (gap,) = t.source["gaps"]
    assert gap["error"] == "No space left on device" and gap["frames"] == 8
    assert gap["lost"] == [{"role": "initiator", "conn": 0, "frames": [4, 7]},
                           {"role": "responder", "conn": 1, "frames": [4, 7]}]
    # placed after open, open and frames 1..3 of both connections
    assert gap["after_event"] == 8 and gap["t"] == 4.0 and gap["until"] == 7.0
    kept = [json.loads(f.wire())["i"] for _, f in t.frames() if f.conn == 0]
    assert kept == [1, 2, 3, 8, 9, 10]
    assert [e.code for e in t.events if isinstance(e, Close)] == [1000]  # the close kept in memory is there
    out = tmp_path / "s.yaml"
    write_transcript(path, out)
    assert tmod.load(out).source["gaps"] == t.source["gaps"]


def test_header_that_cannot_be_written_comes_first_when_space_returns(tmp_path: Path, disk: Disk) -> None:
    path = tmp_path / "s.jsonl"
    w = JournalWriter(path)
    disk.full = True
    assert w.header("s", "s.yaml", "now", 1.0) is False
    assert w.open_record(0, "initiator", 1.0, URL_I, n=1) is False
    assert w.frame_record(0, "initiator", "node", 1.5, b"lost", True, n=2, number=1) is False
    disk.full = False
    assert w.frame_record(0, "initiator", "node", 2.0, b"kept", True, n=3, number=2)
    t = load_journal(path)
    assert [f.wire() for _, f in t.frames()] == ["kept"] and isinstance(t.events[0], Open)
    assert t.source["gaps"][0]["lost"] == [{"role": "initiator", "conn": 0, "frames": [1, 1]}]


def test_retry_waits_between_attempts(tmp_path: Path, disk: Disk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jmod, "RETRY_SECONDS", 60.0)
    w = JournalWriter(tmp_path / "s.jsonl")
    w.header("s", "s.yaml", "now", 1.0)
    disk.full = True
    calls = disk.calls
    for i in range(100):
        w.frame_record(0, "initiator", "node", 1.0, b"x", True, n=i, number=i + 1)
    assert disk.calls - calls == 1  # one failed attempt, not one per frame
    assert w.gap is not None and w.gap.frames == 100 and w.gap.describe().startswith("100 frames (100 bytes) lost")


# -- hostile journals (issue 16) ----------------------------------------------------------------


def test_deeply_nested_line_is_a_clean_error_and_not_fatal_at_start(tmp_path: Path) -> None:
    jdir = tmp_path / "journals"
    jdir.mkdir()
    (jdir / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    write_sample(jdir / "ok.jsonl", end=False)
    found = find_unfinished(tmp_path)
    assert isinstance(found[0], JournalError) and "deep.jsonl:1" in str(found[0])
    assert found[1].path.name == "ok.jsonl"
    result = CliRunner().invoke(main, ["recover", str(jdir / "deep.jsonl")])
    assert result.exit_code == 1 and "deep.jsonl:1" in result.output and "Traceback" not in result.output


def test_deeply_nested_frame_is_kept_as_text_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.header("s", "s.yaml", "now", 1.0)
    w.open_record(0, "initiator", 1.0, URL_I)
    for depth in (50, 150, 5000):
        w.frame_record(0, "initiator", "node", 1.0, ("[" * depth + "]" * depth).encode(), True)
    w.close()
    out = tmp_path / "s.yaml"
    write_transcript(path, out)
    frames = [f for _, f in tmod.load(out).frames()]
    assert [f.is_json for f in frames] == [True, False, False]
    assert [len(f.wire()) for f in frames] == [100, 300, 10000]


@pytest.mark.parametrize("name", [".", "..", "journals", "j.jsonl", "../x.yaml", "/etc/passwd", "s.yaml/.."])
def test_recover_never_writes_outside_or_over_its_journal(tmp_path: Path, name: str) -> None:
    jdir = tmp_path / "d" / "journals"
    jdir.mkdir(parents=True)
    path = jdir / "j.jsonl"
    w = JournalWriter(path)
    w.header("s1", name, "now", 1.0)
    w.open_record(0, "initiator", 1.0, URL_I)
    w.frame_record(0, "initiator", "node", 1.5, b"hello", True)
    w.close()
    before = path.read_bytes()
    result = CliRunner().invoke(main, ["recover", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["journals", "s1.yaml"]
    assert [f.wire() for _, f in tmod.load(tmp_path / "d" / "s1.yaml").frames()] == ["hello"]


def test_recover_refuses_its_own_journal_or_a_folder_as_output(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    before = path.read_bytes()
    for target in (path, tmp_path):
        result = CliRunner().invoke(main, ["recover", str(path), "-o", str(target)])
        assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert path.read_bytes() == before


@pytest.mark.parametrize("record, message", [
    ('{"kind":"frame","conn":-1,"role":"initiator","from":"node","ts":1,"text":"x"}', "conn must be"),
    ('{"kind":"frame","conn":10000000,"role":"initiator","from":"node","ts":1,"text":"x"}', "conn must be"),
    ('{"kind":"frame","conn":0,"role":"initiator","from":"me","ts":1,"text":"x"}', "from must be"),
    ('{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":1,"text":"x","binary":"eA=="}', "not both"),
    ('{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":1,"text":5}', "text must be"),
    ('{"kind":"close","conn":0,"role":"initiator","ts":1,"code":"x"}', "code must be"),
    ('{"kind":"open","conn":0,"role":"initiator","ts":1,"url":42}', "url must be"),
])
def test_recover_rejects_bad_records_naming_the_line(tmp_path: Path, record: str, message: str) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    with open(path, "a") as fh:
        fh.write(record + "\n")
    result = CliRunner().invoke(main, ["recover", str(path), "-o", str(tmp_path / "o.yaml")])
    assert result.exit_code == 1 and "j.jsonl:12: malformed" in result.output and message in result.output


def test_nan_time_is_one_error_naming_the_line(tmp_path: Path) -> None:
    # NaN is not JSON (RFC 8259; chanlog.model.parse_json): the recorder never writes it, so a journal holding
    # it was edited by hand, and recover says where instead of writing a transcript that would not load
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    with open(path, "a") as fh:
        fh.write('{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":NaN,"text":"late"}\n')
    out = tmp_path / "o.yaml"
    result = CliRunner().invoke(main, ["recover", str(path), "-o", str(out)])
    assert result.exit_code == 1 and "j.jsonl:12: not a JSON record: NaN" in result.output
    assert not out.exists()


# -- the writer's YAML and module boundaries ------------------------------------------------------


TRICKY = [
    "", " lead", "trail ", "true", "False", "null", "~", "yes", "NO", "on", "123", "-1.5e3", "0x1F", "1_000",
    "2025-01-01", "12:30:45", "a: b", "# c", "- d", "[e]", "{f}", "&g", "*h", "!i", "%j", "@k", "`l", "'m'", '"n"',
    "multi\nline\n", "tab\there", "ünïcödé ✓", "\x00\x07 controls", "\u2028 separator", "=", "<<", ".inf", ".nan",
    "tx_+QENCwH4hLhAMCEsNAocaKf2YIFLfEC73Dbz5GM38DbkfBETkNS4dWtO4PJvfkBeK29vVkaoXiDbTM0KtSek36eaIYgW",
]


def test_fast_dumper_writes_what_yaml_dump_writes() -> None:
    import yaml

    from chanlog.transcript import DUMP_OPTIONS

    data = [{"event": "frame", "data": {s: [s, {s: None}], "n": i, "f": i / 3, "neg": -i, "b": i % 2 == 0,
                                        "empty": {}, "none": [], "big": 10 ** 30}}
            for i, s in enumerate(TRICKY)]
    assert yaml.dump(data, **wmod._FAST_OPTIONS) == yaml.dump(data, **DUMP_OPTIONS)
    assert yaml.safe_load(yaml.dump(data, **wmod._FAST_OPTIONS)) == data


def test_pairing_journal_and_writer_do_not_import_mitmproxy() -> None:
    import subprocess
    import sys

    code = ("import sys, chanlog.record.pairing, chanlog.record.journal, chanlog.record.writer; "
            "sys.exit('mitmproxy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_recover_shows_a_hostile_session_name_escaped(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.header("evil\x1b[2J\nname", "s.yaml", "now", 1.0)
    w.close()
    result = CliRunner().invoke(main, ["recover", str(path), "-o", str(tmp_path / "o.yaml")])
    assert result.exit_code == 0 and "\x1b" not in result.output and "evil\\x1b[2J\\nname" in result.output


@pytest.mark.parametrize("parts", [2, 3])
def test_transcript_written_in_parts_is_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       parts: int) -> None:
    monkeypatch.setattr(wmod, "PARALLEL_FRAMES", 10)
    monkeypatch.setattr(wmod, "YAML_CHUNK", 7)
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.header("s", "s.yaml", "now", 100.0)
    w.open_record(0, "initiator", 100.0, URL_I, n=1)
    w.open_record(1, "responder", 100.0, URL_R, n=2)
    for i in range(200):
        w.frame_record(i % 2, ROLES_[i % 2], "node" if i % 3 else "client", 100.0 + i / 10,
                       (PRETTY if i % 5 == 0 else f'{{"i":{i},"s":"é✓"}}').encode(), True, n=3 + i)
    w.close_record(0, "initiator", 200.0, 1000, "client", None, n=300)
    size = w.size
    w.frame_record(1, "responder", "node", 201.0, b"after the limit", True, n=301)
    w.close()
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"frame","conn":1,"ro')  # an incomplete last line
    used = []
    real = wmod._write_in_parts
    monkeypatch.setattr(wmod, "_write_in_parts", lambda *a: used.append(real(*a)) or used[-1])
    one, split = tmp_path / "one.yaml", tmp_path / "split.yaml"
    for limit in (None, size):
        write_transcript(path, one, limit=limit)
        write_transcript(path, split, limit=limit, parts=parts)
        assert split.read_bytes() == one.read_bytes()
    assert used == [True, True]
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]
    # a bad record in a part: written in one piece instead, whose error names the line
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.seek(0, 2)
        fh.write(b'{"kind":"frame","conn":0,"role":"initiator","from":"me","ts":1,"text":"x"}\n')
    with pytest.raises(JournalError, match=r"j.jsonl:\d+: malformed frame record: from must be"):
        write_transcript(path, split, parts=parts)
    assert used[-1] is False


ROLES_ = ("initiator", "responder")


# Strings near the edges of what events_yaml writes itself: its characters, spaces, YAML's implicit types.
_EDGE_TEXT = st.one_of(
    st.text(alphabet="abyntfoNYT019.+-=_/ ~<:#'\"", max_size=12),
    st.sampled_from(TRICKY),
    st.text(max_size=8),
    st.builds(lambda a, n: (a + " ") * n, st.sampled_from(["ab", "tx_1", "2.0"]), st.integers(0, 400)),
)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10 ** 40), 10 ** 40) | st.floats(allow_nan=False, allow_infinity=False)
    | _EDGE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_EDGE_TEXT, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.fixed_dictionaries({"event": st.sampled_from(["frame", "open"]), "role": _EDGE_TEXT,
                                       "conn": st.integers(0, 10 ** 6), "t": st.floats(0, 1e9)},
                                      optional={"data": _JSON_VALUES, "text": _EDGE_TEXT}), min_size=1, max_size=4))
def test_events_yaml_writes_what_yaml_dump_writes(events: list[dict]) -> None:
    import yaml

    from chanlog.transcript import DUMP_OPTIONS

    assert wmod.events_yaml(events) == yaml.dump(events, **DUMP_OPTIONS)


def test_events_yaml_writes_recorded_frames_itself_and_the_rest_through_yaml() -> None:
    import copy

    import yaml

    from chanlog.transcript import DUMP_OPTIONS

    frame = {"event": "frame", "role": "initiator", "conn": 0, "t": 1e-05, "from": "node",
             "data": {"jsonrpc": "2.0", "method": "channels.sign.update", "params": {
                 "channel_id": "ch_x", "data": {"signed_tx": "tx_+QENCw/a=", "updates": [], "n": [[1, {}], -2.5]}}}}
    odd = [{**frame, "data": {s: [s, {s: None}], "f": 1 / 3, "big": 10 ** 30}} for s in TRICKY]
    events = [frame, *odd, copy.deepcopy(frame), {**frame, "data": {"long": "a " * 40_000}}]  # no shared objects
    assert wmod.events_yaml(events) == yaml.dump(events, **DUMP_OPTIONS)
    wmod._mapping(frame, "  ", "- ", [], 1)  # written directly, not through yaml.dump
    with pytest.raises(wmod._Unsafe):
        wmod._mapping(odd[TRICKY.index("ünïcödé ✓")], "  ", "- ", [], 1)  # Unicode: through yaml.dump


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=st.characters(min_codepoint=0x1F, max_codepoint=0x7F)),
                 st.binary(max_size=20)))
def test_text_field_is_what_json_dumps_writes(value: str | bytes) -> None:
    content = value.encode("utf-8") if isinstance(value, str) else value
    try:
        expected = b'"text":' + json.dumps(content.decode("utf-8")).encode("ascii")
    except UnicodeDecodeError:
        expected = None
    assert jmod.text_field(content) == expected


_FRAME_TEXTS = st.one_of(
    _JSON_VALUES.map(lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False)),
    _JSON_VALUES.map(json.dumps),
    st.sampled_from([COMPACT, SPACED, ODD, PRETTY, '"a,b"', "[]", "1e400", '{"n":1E5}', "[" * 200 + "]" * 200,
                     '{"a":"\\u00e9"}', '{"a":1,"a":2}', "NaN", ""]),
    st.text(max_size=20),
)


@settings(max_examples=500, deadline=None)
@given(text=_FRAME_TEXTS, ts=st.one_of(st.floats(allow_nan=True), st.integers(-5, 10 ** 12), st.none()),
       t0=st.one_of(st.none(), st.floats(0, 2e9)), injected=st.sampled_from([False, True, None, 1]),
       role=st.sampled_from(["initiator", "responder", "node", 1]), sender=st.sampled_from(["client", "node", "x"]),
       conn=st.sampled_from([0, 3, -1, 10 ** 7, True, "0"]), binary=st.booleans())
def test_record_to_dict_is_event_to_dict_of_record_to_event(text, ts, t0, injected, role, sender, conn,
                                                           binary) -> None:
    from chanlog.model import event_to_dict

    rec = {"kind": "frame", "conn": conn, "role": role, "from": sender, "ts": ts, "text": text}
    if injected is not None:
        rec["injected"] = injected
    if binary:
        rec["binary"] = "AAAA"
    try:
        expected = event_to_dict(wmod.record_to_event(rec, t0))
    except (KeyError, TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            wmod.record_to_dict(rec, t0)
        return
    got = wmod.record_to_dict(rec, t0)
    assert got == expected and list(got) == list(expected)
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_quick_scan_finds_what_the_full_scan_finds(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.header("s1", "s1.yaml", "2025-01-01T00:00:00+00:00", 100.0)
    w.open_record(0, "initiator", 100.0, URL_I.replace("&protocol=json-rpc", ""), n=1)
    w.frame_record(0, "initiator", "node", 100.5, b'"no id"', True, n=2)
    w.frame_record(0, "initiator", "node", 101.0, COMPACT.encode(), True, n=3)  # the protocol
    w.frame_record(0, "initiator", "client", 102.0, b'{"params":{"channel_id":"ch_client"}}', True, n=4)
    w.frame_record(0, "initiator", "node", 103.0, b'{"params":{"channel_id":"ch_q"}}', True, n=5)
    w.frame_record(0, "initiator", "node", 104.0, b'{"params":{"channel_id":"ch_later"}}', True, n=6)
    w.close()
    size = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(b'{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":105.0,"te')  # cut off
    full, quick = scan(path), scan(path, quick=True)
    assert (full.frames, full.channel_id, full.protocol, full.truncated, full.last_ts) == (5, "ch_q", "json-rpc",
                                                                                          8, 104.0)
    assert quick == full
    # a quick scan does not parse frame lines once the protocol and channel are known: a bad one is found
    # when the transcript is written
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.seek(0, 2)
        fh.write(b'{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":105.0,"text":"\\q"}\n')
    with pytest.raises(JournalError, match=r"j.jsonl:8: not a JSON record"):
        scan(path)
    assert scan(path, quick=True).frames == 6
    with pytest.raises(JournalError, match=r"j.jsonl:8: not a JSON record"):
        write_transcript(path, tmp_path / "out.yaml")


def test_a_deep_frame_behind_unicode_escapes_is_kept_as_text_in_parts(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wmod, "PARALLEL_FRAMES", 2)
    deep = "[" * 200 + "]" * 200
    line = json.dumps({"kind": "frame", "conn": 0, "role": "initiator", "from": "node", "ts": 1.0, "n": 2,
                       "text": deep}, separators=(",", ":")).replace("[", "\\u005b")
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.header("s", "s.yaml", "now", 0.0)
    w.open_record(0, "initiator", 0.0, URL_I, n=1)
    w.close()
    with open(path, "a") as fh:
        fh.write(line + "\n")
    w = JournalWriter(path)
    for i in range(4):
        w.frame_record(0, "initiator", "client", 2.0 + i, COMPACT.encode(), True, n=3 + i)
    w.close()
    one, split = tmp_path / "one.yaml", tmp_path / "split.yaml"
    write_transcript(path, one)
    write_transcript(path, split, parts=2)
    assert split.read_bytes() == one.read_bytes()
    (_, frame), *_ = tmod.load(one).frames()
    assert frame.text == deep and frame.fmt is None


def test_parts_started_before_the_scan_are_dropped_when_the_journal_cannot_be_split(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wmod, "PARALLEL_FRAMES", 5)
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    w.header("s", "s.yaml", "now", 100.0)
    w.open_record(1, "initiator", 100.0, URL_I, n=1)  # connection 1 first: not numbered in order
    w.open_record(0, "responder", 100.0, URL_R, n=2)
    for i in range(40):
        w.frame_record(i % 2, ROLES_[1 - i % 2], "node", 100.0 + i, f'{{"i":{i}}}'.encode(), True, n=3 + i)
    w.close()
    started, dropped = [], []
    real_start = wmod._start_parts

    def start(*a):
        parts = real_start(*a)
        started.append(parts)
        if parts is not None:
            real_drop = parts.drop
            parts.drop = lambda: dropped.append(parts) or real_drop()
        return parts

    monkeypatch.setattr(wmod, "_start_parts", start)
    one, split = tmp_path / "one.yaml", tmp_path / "split.yaml"
    write_transcript(path, one)
    write_transcript(path, split, parts=2)
    assert split.read_bytes() == one.read_bytes()
    assert started and started[0] is not None and dropped == started  # started before the scan, then dropped
    assert not started[0].children and not [p for p in tmp_path.iterdir() if ".part" in p.name]


# -- format 2: raw frame lines --------------------------------------------------------------------


_MESSAGES = st.one_of(
    _FRAME_TEXTS.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
    st.sampled_from([b"", b"}", b"}}", b"\\", b'"', b"a\r\nb", b"\n", b'x}\n', "\u2028\u0085".encode(), b"\xff}",
                     b'{"kind":"frame"}', b',"raw":}']),
)


def _format_1_record(i: int, content: bytes, is_text: bool, injected: bool) -> dict:
    """The record a format-1 journal held for message ``i`` (``text`` when UTF-8 text, else ``binary``)."""
    rec = {"kind": "frame", "conn": i % 2, "role": ROLES_[i % 2], "from": "node" if i % 3 else "client",
           "ts": 100.5 + i / 7, "n": 3 + i}
    if injected:
        rec["injected"] = True
    try:
        if not is_text:
            raise UnicodeDecodeError("utf-8", content, 0, 0, "binary")
        rec["text"] = content.decode("utf-8")
    except UnicodeDecodeError:
        rec["binary"] = base64.b64encode(content).decode("ascii")
    return rec


def _raw_and_format_1(d: Path, messages: list[tuple[bytes, bool, bool]]) -> tuple[Path, Path]:
    """The same session written by the recorder (format 2) and as format-1 records."""
    new, old = JournalWriter(d / "new.jsonl"), JournalWriter(d / "old.jsonl")
    for w in (new, old):
        w.header("s", "s.yaml", "now", 100.0)
        w.open_record(0, "initiator", 100.0, URL_I, n=1)
        w.open_record(1, "responder", 100.0, URL_R, n=2)
    for i, (content, is_text, injected) in enumerate(messages):
        rec = _format_1_record(i, content, is_text, injected)
        new.frame_record(rec["conn"], rec["role"], rec["from"], rec["ts"], content, is_text, injected, n=rec["n"])
        old.write(rec)
    for w in (new, old):
        w.close_record(0, "initiator", 200.0, 1000, "client", None, n=10 ** 6)
        w.close()
    return new.path, old.path


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.tuples(_MESSAGES, st.booleans(), st.booleans()), min_size=1, max_size=6))
def test_raw_frame_lines_read_back_as_format_1_records(tmp_path_factory: pytest.TempPathFactory,
                                                        messages: list[tuple[bytes, bool, bool]]) -> None:
    new, old = _raw_and_format_1(tmp_path_factory.mktemp("raw"), messages)
    assert [rec for _, rec in iter_records(new)] == [rec for _, rec in iter_records(old)]
    # a text message without a newline is written as it is: nothing escaped on the hot path
    raw_lines = [line for line in new.read_bytes().split(b"\n") if b',"raw":' in line[:120]]
    assert len(raw_lines) == sum(1 for c, is_text, _ in messages if is_text and b"\n" not in c)
    one_new, one_old = new.with_suffix(".yaml"), old.with_suffix(".yaml")
    write_transcript(new, one_new)
    write_transcript(old, one_old)
    assert one_new.read_bytes() == one_old.read_bytes()


def test_raw_frame_lines_in_a_transcript_written_in_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wmod, "PARALLEL_FRAMES", 10)
    messages = [(m, True, i % 4 == 0) for i, m in enumerate([
        COMPACT.encode(), PRETTY.encode(), b"done", b"", b"}", b"\\", "é✓ \u2028".encode(), b"\xff\xfe", b"a\rb",
        b'{"deep":' + b"[" * 600 + b"]" * 600 + b"}", b'{"a":"\\u00e9"}', SPACED.encode()] * 4)]
    new, old = _raw_and_format_1(tmp_path, messages + [(b"\x00\x01", False, False)])
    for path in (new, old):
        write_transcript(path, path.with_suffix(".yaml"), parts=3)
        write_transcript(path, path.with_suffix(".one.yaml"))
    assert new.with_suffix(".yaml").read_bytes() == old.with_suffix(".yaml").read_bytes() \
        == new.with_suffix(".one.yaml").read_bytes()
    frames = [f for _, f in load_journal(new).frames()]
    assert [f.wire() for f in frames[:9]] == [COMPACT, PRETTY, "done", "", "}", "\\", "é✓ \u2028", b"\xff\xfe", "a\rb"]


def test_a_raw_frame_line_cut_off_by_a_kill_is_the_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    complete = path.read_bytes()
    cut = b'{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":104.9,"n":12,"raw":{"a":1}}'
    for tail in (cut, cut[:-1], cut[:-3]):  # cut right after its "}" too: the newline is what completes it
        path.write_bytes(complete + tail)
        info = scan(path)
        assert info.truncated == 12 and info.frames == 6 and not info.finished
        assert len(list(load_journal(path).frames())) == 6
        out = tmp_path / "t.yaml"
        write_transcript(path, out, parts=2)
        assert [f.wire() for _, f in tmod.load(out).frames()] == [f.wire() for _, f in load_journal(path).frames()]


@pytest.mark.parametrize(("line", "message"), [
    (b'{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":1.5,"raw":{"a":1}x\n', "does not end in }"),
    (b'{"kind":"frame","conn":0,"role":"initiator","from":"node","ts":1.2.3,"raw":{}}\n', "ts is not a number"),
])
def test_a_malformed_raw_frame_line_is_one_error_naming_the_line(tmp_path: Path, line: bytes, message: str) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path, end=False)
    path.write_bytes(path.read_bytes() + line + b'{"kind":"end","ts":106}\n')
    with pytest.raises(JournalError, match=message) as err:
        load_journal(path)
    assert err.value.where == f"{path}:12"
    with pytest.raises(JournalError, match=message):
        scan(path)


def test_format_1_journals_are_still_read_and_later_formats_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    write_sample(path)
    lines = path.read_bytes().split(b"\n")
    old = [json.dumps({**json.loads(lines[0]), "chanlog_journal": 1}).encode()]
    for line in lines[1:]:  # every raw line written as format 1 did: a JSON string
        rec = jmod.raw_frame_record(line + b"\n") if b',"raw":' in line else None
        old.append(json.dumps(rec, ensure_ascii=False).encode() if rec else line)
    path.write_bytes(b"\n".join(old))
    assert not any(b',"raw":' in line for line in old)
    t = load_journal(path)
    assert [f.wire() for _, f in t.frames()] == [PRETTY, COMPACT, SPACED, ODD, "plain words", b"\x00\xffbin"]
    path.write_bytes(json.dumps({**json.loads(lines[0]), "chanlog_journal": 3}).encode() + b"\n")
    with pytest.raises(JournalError, match="journal format 3 is not supported .*formats 1 to 2"):
        scan(path)


# -- mapped appends -------------------------------------------------------------------------------


def test_a_killed_writer_leaves_its_records_then_zeros_which_readers_take_as_the_end(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    monkeypatch.setattr(jmod, "MAP_CHUNK", 4096)  # several windows
    path, left = tmp_path / "j.jsonl", tmp_path / "left.jsonl"
    w = JournalWriter(path)
    w.header("s", "s.yaml", "now", 100.0)
    w.open_record(0, "initiator", 100.0, URL_I, n=1)
    for i in range(40):
        w.frame_record(0, "initiator", "node", 100.5 + i, COMPACT.encode() * (1 + i % 3), True, n=2 + i)
    left.write_bytes(path.read_bytes())  # what a SIGKILL leaves: the file as it is now
    records = w.size
    w.close()
    assert left.stat().st_size > records and not left.read_bytes()[records:].strip(b"\0")
    info = scan(left)
    assert info.frames == 40 and info.truncated is None and not info.finished
    assert [f.wire() for _, f in load_journal(left).frames()] == [COMPACT * (1 + i % 3) for i in range(40)]
    out = tmp_path / "t.yaml"
    write_transcript(left, out, parts=3)
    assert [f.wire() for _, f in tmod.load(out).frames()] == [COMPACT * (1 + i % 3) for i in range(40)]
    # a record cut off by the kill, then zeros: the cut-off last line
    cut = left.read_bytes()[:records - 10] + b"\0" * 3000
    left.write_bytes(cut)
    info = scan(left)
    assert info.frames == 39 and info.truncated == 42
    # opened again to append: the zeros are cut off (the cut-off record stays, as it always did)
    again = JournalWriter(left)
    again.open()
    assert again.size == records - 10 and left.stat().st_size == records - 10
    again.close()


def test_a_full_disk_at_a_window_reservation_loses_exactly_the_records_it_could_not_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from faults import Disk

    disk = Disk()
    monkeypatch.setattr(JournalWriter, "os_fallocate", staticmethod(disk.fallocate))
    monkeypatch.setattr(jmod, "MAP_CHUNK", 4096)
    monkeypatch.setattr(jmod, "RETRY_SECONDS", 0.0)
    path = tmp_path / "j.jsonl"
    errors: list[str] = []
    w = JournalWriter(path, on_error=lambda j, gap: errors.append(gap.error))
    w.header("s", "s.yaml", "now", 100.0)
    w.open_record(0, "initiator", 100.0, URL_I, n=1)
    frame = b'{"i":"' + b"x" * 1000 + b'"}'
    written = [w.frame_record(0, "initiator", "node", 101.0 + i, frame, True, n=2 + i, number=1 + i)
               for i in range(10)]
    disk.full = True
    written += [w.frame_record(0, "initiator", "node", 111.0 + i, frame, True, n=12 + i, number=11 + i)
                for i in range(10)]
    first_lost = written.index(False)
    assert all(written[:first_lost]) and not any(written[first_lost:]) and errors == ["No space left on device"]
    assert 10 <= first_lost < 14  # the window reserved before the disk filled up is used to its end
    disk.full = False
    assert w.frame_record(0, "initiator", "client", 130.0, b"back", True, n=40, number=21)
    w.close()
    assert not path.read_bytes().endswith(b"\0")
    info = scan(path)
    assert info.gaps == 1 and info.lost_frames == 20 - first_lost and info.truncated is None
    gap = next(rec for _, rec in iter_records(path) if rec.get("kind") == "gap")
    assert gap["lost"] == [{"conn": 0, "role": "initiator", "frames": [first_lost + 1, 20]}]
    assert [f.wire() for _, f in load_journal(path).frames()][-1] == "back"


def test_a_nearly_full_disk_still_takes_a_record_that_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def fallocate(fd: int, offset: int, length: int) -> None:
        asked.append(length)
        if length > 8192:
            raise OSError(errno.ENOSPC, "No space left on device")
        os.posix_fallocate(fd, offset, length)

    monkeypatch.setattr(JournalWriter, "os_fallocate", staticmethod(fallocate))
    path = tmp_path / "j.jsonl"
    w = JournalWriter(path)
    assert w.header("s", "s.yaml", "now", 100.0)
    assert w.frame_record(0, "initiator", "node", 101.0, b"[1]", True)
    w.close()
    assert asked[0] == jmod.MAP_CHUNK and asked[1] < 8192 and w.gaps == 0
    assert len(list(load_journal(path).frames())) == 1


def test_recover_finish_refuses_a_journal_a_recorder_is_writing(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    w = write_sample(path, end=False)
    w.open()  # the recorder still writing it: a mapped window past its records
    w.frame_record(0, "initiator", "node", 104.8, b"[1]", True)
    result = CliRunner().invoke(main, ["recover", str(path), "-o", str(tmp_path / "o.yaml"), "--finish"])
    assert result.exit_code == 1 and "a running recorder is writing this journal" in result.output
    assert f"(process {os.getpid()})" in result.output and not (tmp_path / "o.yaml").exists()
    assert w.frame_record(0, "initiator", "node", 104.9, b"[2]", True)  # unharmed
    w.close()
    info = scan(path)
    assert info.frames == 8 and not info.finished and info.truncated is None


def test_a_journal_written_with_write_reopens_after_the_zeros_a_mapped_writer_left(tmp_path: Path) -> None:
    path, left = tmp_path / "j.jsonl", tmp_path / "left.jsonl"
    w = write_sample(path, end=False)
    w.open()
    w.frame_record(0, "initiator", "node", 104.8, b"[1]", True)
    left.write_bytes(path.read_bytes())  # killed while mapped: records, then zeros
    w.close()
    again = JournalWriter(left, fsync=True)  # write() per record, fsync'd
    again.open()
    assert again.frame_record(0, "initiator", "node", 104.9, b"[2]", True)
    again.close()
    assert [f.wire() for _, f in load_journal(left).frames()][-2:] == ["[1]", "[2]"]
