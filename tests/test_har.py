"""HAR import and export (chanlog.sources.har, ``chanlog import X.har``, ``chanlog export --har``)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlog.cli import main
from chanlog.diff import diff_transcripts
from chanlog.model import Close, Frame, Open, Transcript
from chanlog.record.har import import_har
from chanlog.sources.har import HarError, export_har, load_har, looks_like_har
from chanlog.transcript import load

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / ".." / "shared" / "corpus"
EXAMPLE = REPO / "transcripts" / "init_per_group.yaml"


def corpus(name: str) -> Transcript:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus not found at {CORPUS} (the shared corpus of the node's channel logs)")
    from chanlog.sources.nodelog import import_file

    return import_file(path)


def roundtrip(doc: dict) -> dict:
    """A HAR document as written to a file and read back."""
    return load_har(json.dumps(doc), "x.har")


@pytest.mark.parametrize("log", ["json-rpc/sc_ws_basic_open_close.md", "json-rpc/sc_ws_leave_reconnect.md",
                                 "json-rpc/sc_ws_leave_reestablish.md", "legacy/sc_ws_basic_open_close.md"])
def test_export_import_roundtrip_is_equal(log):
    original = corpus(log)
    result = import_har(roundtrip(export_har(original)), "x.har")
    assert len(result.transcripts) == 1, [t.name for t in result.transcripts]
    back = result.transcripts[0]
    assert diff_transcripts(original, back, "log", "har") == []
    assert back.protocol == original.protocol
    assert len(back.connections()) == len(original.connections())
    assert back.source["kind"] == "har" and back.source["file"] == "x.har"


def test_roundtrip_keeps_times_close_codes_and_binary_frames():
    t = load(EXAMPLE)
    first_conn = t.connections()[0]
    t.events.append(Close(role=first_conn.role, conn=first_conn.conn, code=4001, closed_by="node", reason="gone"))
    for i, e in enumerate(t.events):
        e.t = i * 0.25
    t.source["started"] = "2026-05-01T10:00:00+00:00"
    first = next(i for i, e in enumerate(t.events) if isinstance(e, Frame))
    blob = bytes(range(256))
    t.events.insert(first + 1, Frame(role=t.events[first].role, conn=t.events[first].conn, sender="client",
                                     binary=blob, t=t.events[first].t))
    har = roundtrip(export_har(t))
    result = import_har(har, "x.har")
    back = result.transcripts[0]
    assert diff_transcripts(t, back, "a", "b") == []
    assert [e.t for e in back.events if isinstance(e, Frame)] == [e.t for e in t.events if isinstance(e, Frame)]
    assert any(isinstance(e, Frame) and e.binary == blob for e in back.events)
    assert any("binary frame" in n for n in back.source["notes"])
    back_close = next(e for e in back.events if isinstance(e, Close) and e.code == 4001)
    assert (back_close.closed_by, back_close.reason) == ("node", "gone")
    assert back.source["started"].startswith("2026-05-01T10:00:00")


def test_several_channels_become_several_transcripts():
    original = corpus("json-rpc/sc_ws_close_mutual.md")
    result = import_har(roundtrip(export_har(original)), "x.har")
    assert len(result.transcripts) == 2
    ids = [t.channel_id for t in result.transcripts]
    assert ids[0] and ids[1] and ids[0] != ids[1]
    assert sum(len(t.connections()) for t in result.transcripts) == len(original.connections())


def chrome_har(t: Transcript, start: float = 1764627301.0) -> dict:
    """A HAR in Chrome DevTools' layout (HAR 1.2 + ``_resourceType``/``_webSocketMessages``), built from
    the spec and Chrome's field names, not from chanlog's exporter: wss URLs, HTTP/2 pseudo headers,
    ``Z`` dates, page references, and unrelated entries around the channel connections."""
    from datetime import UTC, datetime

    def iso(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    entries: list[dict] = [{
        "_initiator": {"type": "other"}, "_priority": "VeryHigh", "_resourceType": "document", "cache": {},
        "pageref": "page_1", "startedDateTime": iso(start - 1), "time": 12.5, "connection": "443",
        "request": {"method": "GET", "url": "https://wallet.example/", "httpVersion": "http/2.0",
                    "headers": [{"name": ":authority", "value": "wallet.example"}], "queryString": [],
                    "cookies": [], "headersSize": -1, "bodySize": 0},
        "response": {"status": 200, "statusText": "", "httpVersion": "http/2.0", "headers": [], "cookies": [],
                     "content": {"size": 5, "mimeType": "text/html", "text": "hello"}, "redirectURL": "",
                     "headersSize": -1, "bodySize": -1, "_transferSize": 100, "_error": None},
        "serverIPAddress": "10.0.0.1", "timings": {"blocked": 1, "dns": -1, "ssl": -1, "connect": -1,
                                                   "send": 0.1, "wait": 10, "receive": 1.4, "_blocked_queueing": 1}}]
    clock = start
    conns = t.connections()
    times: dict[int, float] = {}
    for e in t.events:
        clock += 0.01
        times[id(e)] = clock
    for c in conns:
        opened = c.open
        url = opened.url if opened else f"ws://node/channel?role={c.role}"
        url = url.replace("ws://", "wss://", 1)
        messages = [{"type": "send" if f.sender == "client" else "receive", "time": times[id(f)], "opcode": 1,
                     "data": f.wire()} for f in c.frames]
        entries.append({
            "_initiator": {"type": "script"}, "_priority": "Low", "_resourceType": "websocket", "cache": {},
            "connection": "8883", "pageref": "page_1", "startedDateTime": iso(times[id(c.events[0])] - 0.005),
            "time": 1234.5,
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Upgrade", "value": "websocket"},
                                    {"name": "Cookie", "value": "session=secret"}],
                        "queryString": [], "cookies": [], "headersSize": 400, "bodySize": 0},
            "response": {"status": 101, "statusText": "Switching Protocols", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": "Upgrade", "value": "websocket"}], "cookies": [],
                         "content": {"size": 0, "mimeType": "x-unknown"}, "redirectURL": "", "headersSize": 129,
                         "bodySize": 0, "_transferSize": 129, "_error": None},
            "serverIPAddress": "10.0.0.2", "timings": {"blocked": -1, "dns": -1, "ssl": -1, "connect": -1,
                                                       "send": 0, "wait": 0, "receive": 0.3},
            "_webSocketMessages": messages})
    entries.append({**entries[-1], "request": {**entries[-1]["request"], "url": "wss://wallet.example/other"},
                    "_webSocketMessages": [{"type": "receive", "time": start, "opcode": 1, "data": "{}"}]})
    return {"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
                    "pages": [{"startedDateTime": iso(start - 1), "id": "page_1", "title": "https://wallet.example/",
                               "pageTimings": {"onContentLoad": 100, "onLoad": 200}}],
                    "entries": entries}}


def test_chrome_layout_imports():
    original = corpus("json-rpc/sc_ws_leave_reestablish.md")
    doc = chrome_har(original)
    result = import_har(roundtrip(doc), "chrome.har")
    assert len(result.transcripts) == 1
    back = result.transcripts[0]
    assert diff_transcripts(original, back, "log", "chrome") == []
    assert back.source["creator"] == "WebInspector 537.36"
    assert any("not on /channel" in n and "/other" in n for n in result.notes)
    # frame times are the HAR's: 10 ms apart per event, relative to the session's first open
    frames = [e for e in back.events if isinstance(e, Frame)]
    gaps = [round(b.t - a.t, 3) for a, b in zip(frames, frames[1:], strict=False)]
    assert min(gaps) >= 0 and 0.01 in gaps
    first_msg = min(m["time"] for e in doc["log"]["entries"] for m in e.get("_webSocketMessages", [])
                    if e["request"]["url"].startswith("wss://") and "/channel" in e["request"]["url"])
    assert any(isinstance(e, Open) and e.url.startswith("wss://") for e in back.events)
    assert frames[0].t == pytest.approx(first_msg - min(
        _ts(e["startedDateTime"]) for e in doc["log"]["entries"] if "/channel" in e["request"]["url"]), abs=1e-3)
    # headers (cookies) are left out unless asked for
    assert all(not e.headers for e in back.events if isinstance(e, Open))
    with_headers = import_har(roundtrip(doc), "chrome.har", headers=True).transcripts[0]
    assert next(e for e in with_headers.events if isinstance(e, Open)).headers["Cookie"] == "session=secret"


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_bad_input_is_an_error_or_a_note(tmp_path):
    with pytest.raises(HarError, match=r"x\.har:1:2: not JSON"):
        load_har("{oops", "x.har")
    with pytest.raises(HarError, match="no log.entries"):
        load_har('{"log": {}}', "x.har")
    plain = {"log": {"entries": [{"startedDateTime": "2020-01-01T00:00:00Z", "request": {"url": "http://a/"}}]}}
    with pytest.raises(HarError, match="no WebSocket entries"):
        import_har(plain, "x.har")
    norole = {"log": {"entries": [{"startedDateTime": "2020-01-01T00:00:00Z", "_resourceType": "websocket",
                                   "request": {"url": "ws://a/channel?port=1"},
                                   "_webSocketMessages": [{"type": "receive", "time": 1.5e9, "opcode": 1,
                                                           "data": "{}"}]}]}}
    with pytest.raises(HarError, match="role=initiator"):
        import_har(norole, "x.har")
    with pytest.raises(HarError, match=r"entries\[0\]\._webSocketMessages\[0\]: type must be"):
        bad_type = json.loads(json.dumps(norole))
        bad_type["log"]["entries"][0]["_webSocketMessages"][0]["type"] = "sent"
        import_har(bad_type, "x.har")
    # a second, good connection: the role-less one and odd frames become notes, nothing vanishes
    good = json.loads(json.dumps(norole["log"]["entries"][0]))
    good["request"]["url"] = "ws://a/channel?port=1&role=initiator"
    good["_webSocketMessages"] += [{"type": "send", "time": 1.5e9 + 1, "opcode": 2, "data": "not base64!"},
                                   {"type": "send", "time": 1.5e9 + 2, "opcode": 9, "data": "ping?"},
                                   {"type": "send", "time": 1.5e9 + 3, "opcode": 2,
                                    "data": base64.b64encode(b"\x00\x01").decode()}]
    norole["log"]["entries"].append(good)
    result = import_har(norole, "x.har")
    notes = result.transcripts[0].source["notes"]
    assert any("entries[0]" in n and "no role" in n for n in notes)
    assert any("not base64" in n for n in notes) and any("opcode 9" in n for n in notes)
    frames = [e for e in result.transcripts[0].events if isinstance(e, Frame)]
    assert [f.text for f in frames[1:3]] == ["not base64!", "ping?"] and frames[3].binary == b"\x00\x01"


def test_cli_import_and_export(tmp_path):
    runner = CliRunner()
    har = tmp_path / "capture.json"  # detected by content, not by name
    out = runner.invoke(main, ["export", "--har", str(EXAMPLE), "-o", str(har)])
    assert out.exit_code == 0, out.output
    assert looks_like_har(har) and json.loads(har.read_text())["log"]["version"] == "1.2"
    res = runner.invoke(main, ["import", str(har), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    written = sorted((tmp_path / "out").glob("*.yaml"))
    assert len(written) == 1 and "wrote" in res.output
    assert diff_transcripts(load(EXAMPLE), load(written[0]), "a", "b") == []
    res = runner.invoke(main, ["import", str(har), "--name", "mine"])
    assert res.exit_code == 0 and "name: mine" in res.output
    log = corpus("json-rpc/sc_ws_close_mutual.md")
    two = tmp_path / "two.har"
    two.write_text(json.dumps(export_har(log)))
    res = runner.invoke(main, ["import", str(two)])
    assert res.exit_code == 2 and "2 channel sessions" in res.output
    res = runner.invoke(main, ["import", str(two), "-o", str(tmp_path / "two")])
    assert res.exit_code == 0 and len(list((tmp_path / "two").glob("*.yaml"))) == 2
    bad = tmp_path / "bad.har"
    bad.write_text("<html>")
    res = runner.invoke(main, ["import", str(bad)])
    assert res.exit_code == 1 and "bad.har:1:1: not JSON" in res.output


def test_export_is_valid_har_1_2_by_the_schema(tmp_path):
    """The export passes the HAR 1.2 JSON Schema that HAR tools validate with (npm har-validator)."""
    import subprocess

    import npm

    cache = npm.install(REPO / "tests" / "har", "har", "to validate HAR files against the HAR 1.2 schema")
    files = []
    for name, t in (("example", load(EXAMPLE)), ("reestablish", corpus("json-rpc/sc_ws_leave_reestablish.md"))):
        path = tmp_path / f"{name}.har"
        path.write_text(json.dumps(export_har(t)))
        files.append(str(path))
    broken = tmp_path / "broken.har"  # the validator does fail: an entry without its request
    doc = export_har(load(EXAMPLE))
    del doc["log"]["entries"][0]["request"]
    broken.write_text(json.dumps(doc))
    done = subprocess.run(["node", str(REPO / "tests" / "har" / "validate.cjs"), str(cache / "node_modules"),
                           *files, str(broken)], capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"ok {f}" for f in files], done.stdout + done.stderr
    assert lines[2].startswith(f"invalid {broken}") and done.returncode == 1


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc/self/status (VmHWM)")
def test_har_import_memory_is_bounded_by_a_session_not_the_file(tmp_path):
    """A HAR of many short channel sessions, and one of many small HTTP entries around one session, import in
    about the memory of a one-session HAR (the HAR streamed, sessions written as they end, an index of a few
    hundred bytes per connection kept): not a few hundred KB per session, nor several times the file.
    Every session is written, each once."""
    from hargen import import_peak, write_har

    one = tmp_path / "one.har"
    write_har(one, 1)
    base, _ = import_peak(one, tmp_path / "one", tmp_path)
    sessions = 80
    many = tmp_path / "many.har"
    write_har(many, sessions)
    peak, err = import_peak(many, tmp_path / "many", tmp_path)
    assert len(list((tmp_path / "many").glob("*.yaml"))) == sessions and err.count("wrote ") == sessions
    assert "error" not in err
    assert peak - base < sessions * 50_000, f"{(peak - base) / sessions:,.0f} bytes more per session"
    large = tmp_path / "large.har"
    size = write_har(large, 1, http=12_000)
    assert size > 6_000_000
    peak, err = import_peak(large, tmp_path / "large", tmp_path)
    assert len(list((tmp_path / "large").glob("*.yaml"))) == 1 and "error" not in err
    assert peak - base < size // 2, f"{peak - base:,} bytes more for a HAR of {size:,} bytes"


def _ws_entry(k: int, role: str, started: float, times: list[float]) -> dict:
    from datetime import UTC, datetime

    return {"startedDateTime": datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
            "_resourceType": "websocket", "timings": {"send": 0, "wait": 1, "receive": 0},
            "request": {"method": "GET", "url": f"ws://h/channel?port={k}&role={role}", "headers": []},
            "_webSocketMessages": [{"type": "receive" if j % 2 else "send", "time": t, "opcode": 1,
                                    "data": f"{k}-{role}-{j}"} for j, t in enumerate(times)]}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(["initiator", "responder"]), st.integers(0, 40),
                          st.lists(st.integers(0, 60), max_size=6)), min_size=1, max_size=8))
def test_streamed_replay_merges_connections_by_time_as_a_full_merge_would(conns):
    """The replay reads only open connections (a connection's timeline starts when its open comes up), yet
    gives every open, message and close in the order a merge of all the timelines at once gives (times,
    then opens before messages before closes, then entry order); messages come back from the spool intact."""
    import heapq
    import tempfile

    from chanlog.record.har import HarImporter

    entries = [_ws_entry(k, role, 1.7e9 + start / 10, [1.7e9 + t / 10 for t in times])
               for k, role, start, times in conns]
    with tempfile.TemporaryDirectory() as tmp:
        importer = HarImporter(Path(tmp), "x.har")
        importer.read(enumerate(entries), {})
        try:
            got = [(t, kind, index, None if kind != 1 else (item.from_client, item.content))
                   for t, kind, index, item in importer._events()]
            everything = [importer._timeline(c) for c in importer.conns]
            want = [(t, kind, index, None if kind != 1 else (item.from_client, item.content))
                    for t, kind, index, item in heapq.merge(*everything, key=lambda e: e[:3])]
        finally:
            importer.close()
    assert got == want
    sent = sorted((e["request"]["url"], m["data"]) for e in entries for m in e["_webSocketMessages"])
    assert sorted((entries[i]["request"]["url"], c.decode()) for _, kind, i, (_, c) in
                  ((g[0], g[1], g[2], g[3]) for g in got if g[1] == 1)) == sent
