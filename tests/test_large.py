"""Inputs of any size (issue 17): ``chanlog import``, ``render`` and ``diff`` stream.

Two kinds of tests: the streaming paths give exactly what the whole-file paths give (on every corpus log,
and on hostile transcripts: errors naming file:line), and their Python allocations stay far below the
size of a large generated input (``tracemalloc`` peak, measured after a warm-up run so that lazily imported
modules do not count).
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, corpus_params

from chanlog.cli import main
from chanlog.diff import diff_streams, diff_transcripts
from chanlog.errors import TranscriptError
from chanlog.model import Frame, event_to_dict
from chanlog.render import Options, render
from chanlog.render.stream import render_stream
from chanlog.sources.nodelog import import_file
from chanlog.transcript import dump, dumps, load, stream

# -- the streaming paths equal the whole-file ones ---------------------------------------------------------


@pytest.mark.parametrize("log", corpus_params())
def test_streaming_equals_whole_file_on_the_corpus(log, tmp_path):
    whole = import_file(log)
    out = tmp_path / "t.yaml"
    result = CliRunner().invoke(main, ["import", str(log), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == dumps(whole)  # streamed import, byte for byte

    streamed = stream(out)
    assert (streamed.head.name, streamed.head.protocol, streamed.head.source) == (
        whole.name, whole.protocol, whole.source)
    loaded = load(out)
    assert [event_to_dict(e) for e in streamed.events()] == [event_to_dict(e) for e in loaded.events]


#: Every 8th corpus log for the slower comparisons of render and diff (every era and both protocols appear).
SAMPLE = corpus_params()[::8]


@pytest.mark.parametrize("log", SAMPLE)
def test_streamed_render_and_diff_equal_whole_file_on_the_corpus(log, tmp_path):
    out = tmp_path / "t.yaml"
    dump(import_file(log), out)
    loaded = load(out)
    for layout, options in (("node", None), ("doc", None), ("html", None),
                            ("doc", Options(hide=frozenset({"ping", "get"}), show_time=True))):
        got = "".join(render_stream(stream(out), layout=layout, options=options))
        assert got == render(loaded, layout=layout, options=options), (layout, options)

    # a changed copy: one frame dropped, one frame's data changed, one connection's close removed
    changed = load(out)
    frames = [e for e in changed.events if isinstance(e, Frame)]
    changed.events.remove(frames[len(frames) // 2])
    if frames[0].data is not None:
        frames[0].data = {"changed": True}
    other = tmp_path / "other.yaml"
    dump(changed, other)
    for a, b in ((out, out), (out, other), (other, out)):
        want = diff_transcripts(load(a), load(b), "A", "B")
        assert list(diff_streams(stream(a), stream(b), "A", "B")) == want


def test_a_large_log_streams_from_its_markdown_and_renders_as_a_whole_one(tmp_path, monkeypatch):
    """``chanlog render LOG`` above :data:`WHOLE_MAX` parses the Markdown on each pass (no YAML between) and
    writes what the whole-file path writes, in every layout; at most WHOLE_MAX it renders whole."""
    import chanlog.render.stream as streaming
    from chanlog.render.stream import WHOLE_MAX, StreamedLog

    log = tmp_path / "suite.case.md"
    _make_log(log, 12)
    whole = import_file(log)
    for layout in ("node", "doc", "html"):
        assert "".join(render_stream(StreamedLog(log), layout=layout)) == render(whole, layout=layout), layout
    assert log.stat().st_size < WHOLE_MAX
    walks = []
    monkeypatch.setattr(streaming, "WHOLE_MAX", 0)
    monkeypatch.setattr(StreamedLog, "events", lambda self, real=StreamedLog.events: walks.append(1) or real(self))
    for fmt in ("md", "html"):
        out = tmp_path / f"out.{fmt}"
        result = CliRunner().invoke(main, ["render", str(log), "--format", fmt, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_text(encoding="utf-8") == render(whole, layout="html" if fmt == "html" else "doc")
    assert len(walks) >= 4  # streamed: the doc and HTML renders each walked the log more than once


def test_the_cli_streams_render_and_diff_of_files(tmp_path):
    out = tmp_path / "doc.md"
    result = CliRunner().invoke(main, ["render", str(EXAMPLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == render(load(EXAMPLE))
    result = CliRunner().invoke(main, ["render", "--layout", "node", str(EXAMPLE)])
    assert result.stdout == render(load(EXAMPLE), layout="node")
    result = CliRunner().invoke(main, ["diff", str(EXAMPLE), "-"], input=EXAMPLE.read_bytes())
    assert result.exit_code == 0 and "equal: 2 connections" in result.stderr, result.stderr


# -- errors while streaming --------------------------------------------------------------------------------

HEAD = "chanlog: 1\nname: x\nprotocol: json-rpc\nevents:\n"
OPEN = "- event: open\n  role: initiator\n  conn: 0\n  url: ws://h/channel?role=initiator\n"


def _events_error(tmp_path, text: str) -> TranscriptError:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TranscriptError) as caught:
        list(stream(path).events())
    return caught.value


def test_a_bad_event_is_named_by_file_and_line(tmp_path):
    assert load(_write(tmp_path, HEAD + OPEN)).events  # the open above is a valid event
    exc = _events_error(tmp_path, HEAD + OPEN + OPEN + "- event: open\n  role: nobody\n  conn: 0\n  url: ws://h/\n")
    assert exc.where == f"{tmp_path / 'bad.yaml'}:14" and "events[2].role" in exc.message  # role: nobody
    with pytest.raises(TranscriptError) as whole:
        load(tmp_path / "bad.yaml")
    assert (whole.value.where, whole.value.message) == (exc.where, exc.message)


def test_aliases_tags_and_depth_are_refused_while_streaming(tmp_path):
    alias = HEAD + "- &a\n  event: open\n  role: initiator\n  conn: 0\n  url: ws://h/\n- *a\n"
    assert "aliases" in _events_error(tmp_path, alias).message
    assert "not allowed" in _events_error(tmp_path, HEAD + "- !!binary aGVsbG8=\n").message
    deep = HEAD + "- event: frame\n  role: initiator\n  conn: 0\n  from: client\n  data: " + "[" * 200 + "]" * 200 + "\n"
    assert "MAX_YAML_DEPTH" in _events_error(tmp_path, deep).message


def test_keys_after_the_events_are_an_error_naming_the_line(tmp_path):
    exc = _events_error(tmp_path, "chanlog: 1\nevents:\n" + OPEN + "name: late\n")
    assert "events last" in exc.message and exc.where.endswith(":7")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ok.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- memory stays bounded -------------------------------------------------------------------------------------

#: Frames of the generated log, and characters in each one's payload: about 6 MB in all.
FRAMES, PAYLOAD = 600, 10_000


def _make_log(path: Path, frames: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n#### initiator opens a WebSocket connection\n```\n"
                 "ws://localhost:3014/channel?role=initiator&protocol=json-rpc\n```\n")
        for i in range(frames):
            body = json.dumps({"jsonrpc": "2.0", "method": "channels.message",
                               "params": {"info": f"{i:08d}" * (PAYLOAD // 8), "n": i}}, indent=2)
            fh.write(f"\n#### {'initiator ---> node' if i % 2 else 'responder <--- node'}\n```javascript\n{body}\n```\n")


def _peak(args: list[str]) -> int:
    tracemalloc.start()
    try:
        result = CliRunner().invoke(main, args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    return peak


def test_import_render_and_diff_allocate_far_less_than_the_input(tmp_path):
    small, large = tmp_path / "small.md", tmp_path / "large.md"
    _make_log(small, 4)
    _make_log(large, FRAMES)
    size = large.stat().st_size
    assert size > 5_000_000
    for log in (small, large):  # the small run imports every module the large one needs
        yaml_path, out = log.with_suffix(".yaml"), log.with_suffix(".out")
        peaks = {"import": _peak(["import", str(log), "-o", str(yaml_path)]),
                 "render": _peak(["render", str(yaml_path), "-o", str(out)]),
                 "diff": _peak(["diff", str(yaml_path), str(yaml_path)])}
    assert load(yaml_path).events[-1].data["params"]["n"] == FRAMES - 1  # everything was imported
    assert out.stat().st_size > size  # and rendered
    for command, peak in peaks.items():
        assert peak < size / 4, f"chanlog {command}: a peak of {peak:,} bytes for an input of {size:,}"


@pytest.mark.parametrize("log", corpus_params())
def test_diagrams_one_at_a_time_equal_the_whole_flow_cut(log):
    """:func:`iter_diagrams` (bounded) equals ``flow_parts(flow(...))``, also with limits small enough that
    phases fit no diagram and are cut as they stream."""
    from chanlog.render.describe import Describer, load_descriptions
    from chanlog.render.document import doc_entries
    from chanlog.render.mermaid import flow, flow_parts, iter_diagrams

    transcript = import_file(log)
    for hide in (frozenset(), frozenset({"ping", "info"})):
        entries = doc_entries(transcript, Describer(load_descriptions(), transcript.protocol), Options(hide=hide))
        for limit in (40_000, 3000, 300, 150):
            assert list(iter_diagrams(entries, limit=limit)) == flow_parts(flow(entries), limit), (hide, limit)
