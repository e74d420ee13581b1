"""Renderer: doc layout content, descriptions table, user templates, node layout for captures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import EXAMPLE, corpus_logs

from chanlog.errors import RenderError
from chanlog.model import Close, Frame, Open, Transcript
from chanlog.render import MERMAID_PART_SIZE, Arrow, Describer, Phase, flow_parts, load_descriptions, render
from chanlog.sources.nodelog import import_file
from chanlog.transcript import load


def captured() -> Transcript:
    return Transcript(name="cap", events=[
        Open(role="initiator", conn=0, t=0.0, url="ws://127.0.0.1:3014/channel?initiator_amount=5&role=initiator"),
        Frame.from_wire('{"jsonrpc":"2.0","method":"channels.info","params":{"channel_id":null,'
                        '"data":{"event":"fsm_up","fsm_id":"ba_x"}},"version":1}',
                        role="initiator", conn=0, sender="node", t=0.1),
        Frame.from_wire("garbage;#", role="initiator", conn=0, sender="client", t=0.2),
        Close(role="initiator", conn=0, t=0.3, code=1006, closed_by="node"),
    ])


def example() -> Transcript:
    if not EXAMPLE.exists():
        pytest.skip("transcripts/init_per_group.yaml is missing")
    return load(EXAMPLE)


def test_doc_layout_has_title_parameters_diagram_and_log():
    t = example()
    doc = render(t, layout="doc")
    assert doc.startswith("# init_per_group\n")
    assert "| `initiator_amount` | 70,000,000,000,000 aettos |" in doc  # an amount once, with its unit
    assert "| `push_amount` | 1 aetto |" in doc and "| `lock_period` | `10` |" in doc
    diagram = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert diagram.startswith("sequenceDiagram\n")
    for alias in ("participant I as initiator", "participant N as node", "participant R as responder"):
        assert alias in diagram
    arrows = re.findall(r"^    ([INR])(-->>|->>)([INR]): (.*)$", diagram, re.M)
    assert len(arrows) == sum(1 for _ in t.frames())
    assert diagram.count("rect rgba") == diagram.count("\n    end\n") >= 2
    assert "note over I,R: Opening" in diagram
    # every frame is in the log with its number and description
    for number, frame in t.frames():
        assert f"#### {number}. {frame.role} " in doc
    assert "*The node started the state machine (FSM)" in doc


def test_doc_layout_renders_captures_with_close_codes_and_verbatim_text():
    doc = render(captured(), layout="doc")
    assert "Close code 1006, closed by the node." in doc
    assert "garbage;#" in doc  # the log keeps the frame verbatim
    diagram = doc.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert "garbage" not in diagram and ";" not in diagram.replace("#59;", "")  # entity codes only


def test_node_layout_of_a_capture_uses_current_headings():
    out = render(captured(), layout="node")
    assert out.startswith("\n#### initiator opens a WebSocket connection\n```\nws://127.0.0.1:3014/channel?")
    assert "\n#### initiator ---> node\n```text\ngarbage;#\n```\n" in out  # not JSON: a text fence
    assert out.endswith("\n#### initiator closes WebSocket connection\n")


def test_every_event_and_method_of_the_corpus_has_a_description():
    logs = corpus_logs()
    if not logs:
        pytest.skip("the shared corpus is absent")
    table = load_descriptions()
    missing = set()
    for log in logs:
        t = import_file(log)
        describe = Describer(table, t.protocol)
        for _, frame in t.frames():
            event = frame.info_event
            if event is not None:
                if event not in table["events"]:
                    missing.add(f"event {event}")
                continue
            if frame.rpc_kind in ("error", "response"):
                continue
            if not any(k in table["methods"] for k in [frame.method, str(frame.obj.get("action"))]):
                missing.add(f"method {frame.method}")
            assert describe(frame)
    assert not missing


def test_descriptions_can_be_overridden(tmp_path):
    override = tmp_path / "mine.yaml"
    override.write_text("events:\n  fsm_up: Our own words for fsm_up.\n")
    doc = render(example(), descriptions=override)
    assert "*Our own words for fsm_up.*" in doc
    assert "*The responder's node received" in doc  # the rest stays


def test_user_template_dir_comes_first_and_can_extend_the_default(tmp_path):
    (tmp_path / "doc.md.j2").write_text(
        '{% extends "default:doc.md.j2" %}{% block title %}# Custom: {{ transcript.name }}\n{% endblock %}')
    doc = render(example(), template_dir=tmp_path)
    assert doc.startswith("# Custom: init_per_group\n")
    assert "```mermaid" in doc


@pytest.mark.parametrize("kwargs, needle", [
    ({"layout": "pdf"}, "unknown layout"),
    ({"template_dir": "/nonexistent/dir"}, "not found"),
])
def test_bad_render_options(kwargs, needle):
    with pytest.raises(RenderError, match=needle):
        render(captured(), **kwargs)


def test_broken_user_template_names_file_and_line(tmp_path):
    (tmp_path / "doc.md.j2").write_text("line one\n{% if %}\n")
    with pytest.raises(RenderError) as info:
        render(captured(), template_dir=tmp_path)
    assert info.value.where.endswith("doc.md.j2:2")


def test_broken_descriptions_file(tmp_path):
    bad = tmp_path / "d.yaml"
    bad.write_text("events: [unclosed\n")
    with pytest.raises(RenderError) as info:
        render(captured(), descriptions=bad)
    assert info.value.where.startswith(str(bad))


def test_doc_layout_decodes_every_encoded_object():
    doc = render(example(), layout="doc")
    assert "Decoded `params.data.signed_tx`:" in doc
    assert "**channel_create_tx v1**" in doc
    assert "initiator_amount: 70,000,000,000,000 aettos" in doc
    assert "\n\n\n" not in doc


def test_doc_layout_shows_an_undecodable_blob_with_its_reason():
    t = captured()
    t.events.insert(2, Frame.from_wire('{"jsonrpc":"2.0","method":"channels.sign.update",'
                                       '"params":{"data":{"signed_tx":"tx_+IgLAcC4g/iBMgGhAWSu"}}}',
                                       role="initiator", conn=0, sender="node"))
    doc = render(t, layout="doc")
    block = doc.split("Decoded `params.data.signed_tx`:", 1)[1].split("####", 1)[0]
    assert "could not decode" in block and "tx_+IgLAcC4g/iBMgGhAWSu" in block


def test_a_reconnect_opens_the_next_phase_of_the_diagram():
    logs = [p for p in corpus_logs() if p.name == "sc_ws_close_solo.md"]
    if not logs:
        pytest.skip("the shared corpus is absent")
    diagram = render(import_file(logs[0])).split("```mermaid\n", 1)[1].split("```", 1)[0]
    phases = diagram.split("    rect rgba(0, 0, 255, .1)\n")[1:]
    assert [p.splitlines()[0] for p in phases][:5] == [
        "    note over I,R: Opening", "    note over I,R: Open channel", "    note over I,R: Solo close",
        "    note over I,R: Settle", "    note over I,R: Opening"]
    assert "opens a WebSocket connection" not in phases[3]
    assert phases[4].splitlines()[1] == "    Note over I: opens a WebSocket connection"


GOLDEN = Path(__file__).parent / "golden" / "init_per_group.doc.md"


def test_doc_layout_of_the_example_matches_the_golden_file():
    """Regenerate after an intended change of the doc layout with:
    chanlog render transcripts/init_per_group.yaml -o tests/golden/init_per_group.doc.md"""
    assert render(example(), layout="doc") == GOLDEN.read_text(encoding="utf-8")


# -- a long flow in several diagrams ---------------------------------------------------------------

def _drawn_size(part: list[Phase]) -> int:
    """Characters of a diagram as the doc layout writes it (the lines of doc.md.j2)."""
    lines = ["sequenceDiagram", "    participant I as initiator", "    participant N as node",
             "    participant R as responder"]
    for phase in part:
        if phase.name:
            lines += ["    rect rgba(0, 0, 255, .1)", f"    note over I,R: {phase.name}"]
        lines += [f"    {a}" if isinstance(a, str) else f"    {a.src}->>{a.dst}: {a.label}" for a in phase.arrows]
        if phase.name:
            lines.append("    end")
    return sum(len(line) + 1 for line in lines)


def test_flow_parts_cut_between_phases_then_inside_a_phase_too_long_alone():
    def arrows(n: int, tag: str) -> list:
        return [Arrow("I", "N", f"{tag}{k}-" + "x" * 80, False) for k in range(n)]

    phases = [Phase(None, ["Note over I: opens a WebSocket connection", *arrows(5, "a")]),
              Phase("Opening", arrows(20, "b")), Phase("Transfer", arrows(60, "c")), Phase("Closing", arrows(3, "d"))]
    limit = 3_000
    parts = flow_parts(phases, limit)
    assert all(_drawn_size(part) <= limit for part in parts)
    flat = [a for part in parts for phase in part for a in phase.arrows]
    assert flat == [a for phase in phases for a in phase.arrows]  # nothing lost, nothing reordered
    names = [phase.name for part in parts for phase in part]
    assert names[:2] == [None, "Opening"] and names[-1] == "Closing"
    assert names.count("Transfer") == 1 and names.count("Transfer (continued)") >= 2
    assert flow_parts(phases) == [phases]  # the default limit holds them all: one diagram, as before
    assert flow_parts([]) == [[]]


def test_a_long_corpus_flow_is_drawn_in_parts_that_fit_mermaid():
    logs = [p for p in corpus_logs() if p.name == "sc_ws_basic_contracts.md"]
    if not logs:
        pytest.skip("the shared corpus (json-rpc/contracts/sc_ws_basic_contracts.md) is absent")
    transcript = import_file(logs[0])
    doc = render(transcript, layout="doc")
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", doc, re.S | re.M)
    assert len(blocks) > 1 and all(len(b) <= MERMAID_PART_SIZE for b in blocks)
    assert sum(len(re.findall(r"^    [INR]--?(?:>>|x)[INR]: ", b, re.M)) for b in blocks) == len(list(transcript.frames()))
    assert f"*Part {len(blocks)} of {len(blocks)} " in doc


# -- hostile values are escaped for where they go (issue 16, Injection) -----------------------------

def _tokens(doc: str) -> list:
    """The block and inline tokens of a Markdown document, parsed as CommonMark with GFM tables."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(doc)
    return tokens + [child for t in tokens for child in (t.children or [])]


def test_hostile_doc_is_inert_markdown():
    """No HTML, link or image token; the headings, fences and table rows are the layout's own; each frame's
    fence holds exactly the frame, each quoted note its text."""
    from hostile import SCRIPT, hostile

    from chanlog.render import frame_text

    t = hostile()
    doc = render(t, layout="doc")
    tokens = _tokens(doc)
    kinds = {tok.type for tok in tokens}
    assert not kinds & {"html_block", "html_inline", "link_open", "image"}, kinds
    headings = [(tok.tag, "".join(c.content for c in tokens[i + 1].children))
                for i, tok in enumerate(tokens) if tok.type == "heading_open"]
    assert [h for h in headings if h[0] != "h4"] == [  # the name shown as it is, line break escaped
        ("h1", t.name.replace("\n", "\\n")), ("h2", "Channel parameters"), ("h2", "Flow"), ("h2", "Frames")]
    assert SCRIPT in t.name
    assert len([h for h in headings if h[0] == "h4"]) == len(t.events)
    fences = [tok for tok in tokens if tok.type == "fence"]
    frames = [f for _, f in t.frames()]
    assert [f.info for f in fences] == ["mermaid", "", ""] + [
        "text" if f.text and "not json" in f.text else "binary" if f.binary else "javascript" for f in frames]
    assert [f.content.rstrip("\n") for f in fences[3:] if f.info != "binary"] == [
        frame_text(f) for f in frames if f.binary is None]
    assert fences[1].content == t.events[0].url + "\n"
    rows = [tok for tok in tokens if tok.type == "tr_open"]
    assert len(rows) == 1 + len(t.params)  # a | in a value does not add cells or rows
    cells = [tok.content for tok in tokens if tok.type == "inline" and tok.map is None and "`" not in tok.content]
    assert cells is not None
    quotes = [tok for tok in tokens if tok.type == "blockquote_open"]
    assert len(quotes) == 1
    assert "window.pwned" not in "".join(tok.content for tok in tokens if tok.type == "html_inline")


def test_hostile_values_in_descriptions_and_decoded_paths_stay_code():
    from hostile import hostile

    doc = render(hostile(), layout="doc")
    assert "*Info event `ev;%%{init: {\"theme\": \"dark\", \"themeCSS\": \"body {display: none}\"}}%%\\n# h`.*" in doc
    assert "Code `1008`: A value that must be a number is not one." in doc
    assert "\n# injected" not in doc  # (the forged "#### injected heading" stays inside its fence: see above)


@pytest.mark.parametrize("value, shown", [
    ("a`b", "``a`b``"), ("`", "`` ` ``"), ("x|y", "`x\\|y`"), ("l1\nl2\r", "`l1\\nl2\\r`"), ("", "` `"),
])
def test_inline_code_spans_outlast_any_backtick_run(value, shown):
    from chanlog.render.markdown import code

    assert code(value, table=True) == shown
    from markdown_it import MarkdownIt

    inline = MarkdownIt("commonmark").parseInline(code(value))[0].children
    assert [t.type for t in inline] == ["code_inline"]


def test_every_error_code_of_the_corpus_has_a_description():
    from chanlog.render.describe import error_codes

    logs = corpus_logs()
    if not logs:
        pytest.skip("the shared corpus is absent")
    table = load_descriptions()
    missing = {code for log in logs for _, frame in import_file(log).frames() for code in error_codes(frame)
               if code not in table["errors"]}
    assert not missing


# -- diagram controls (issue 12) -------------------------------------------------------------------

def _diagram(doc: str) -> str:
    return "".join(re.findall(r"^```mermaid\n(.*?)^```$", doc, re.S | re.M))


def _arrows(doc: str) -> list[str]:
    return re.findall(r"^    [INR]--?(?:>>|x)[INR]: (.*)$", _diagram(doc), re.M)


def test_hide_drops_kinds_from_the_diagram_only_and_numbers_follow_the_log():
    from chanlog.render import Options

    t = example()
    frames = dict(t.frames())
    doc = render(t, options=Options(hide=frozenset({"info"})))
    shown = [n for n, f in frames.items() if f.info_event is None]
    assert len(_arrows(doc)) == len(shown) < len(frames)
    assert all(f"#### {n}. " in doc for n in frames)  # the log keeps every frame
    # autonumber restarts at every jump, so each arrow shows its frame's number
    numbering, expected = [], None
    for line in _diagram(doc).splitlines():
        if line.startswith("    autonumber "):
            expected = int(line.split()[1])
        elif re.match(r"    [INR]--?(?:>>|x)[INR]: ", line):
            numbering.append(expected)
            expected += 1
    assert numbering == shown


@pytest.mark.parametrize("kind, frame", [
    ("ping", '{"jsonrpc":"2.0","method":"channels.system","params":{"action":"ping"}}'),
    ("ping", '{"jsonrpc":"2.0","method":"channels.system.pong","params":{"channel_id":"ch_x","data":{}}}'),
    ("get", '{"jsonrpc":"2.0","id":7,"method":"channels.get.balances","params":{}}'),
    ("message", '{"jsonrpc":"2.0","method":"channels.message","params":{"info":"hi","to":"ak_x"}}'),
    ("ping", '{"action":"ping"}'),
    ("get", '{"action":"get","tag":"balances","payload":{}}'),
])
def test_each_hide_kind(kind, frame):
    from chanlog.render import Options

    t = captured()
    t.events.insert(2, Frame.from_wire(frame, role="initiator", conn=0, sender="client", t=0.15))
    if kind == "get":  # the reply to a hidden request is hidden too
        reply = '{"jsonrpc":"2.0","id":7,"result":[]}' if "jsonrpc" in frame else \
            '{"action":"get","tag":"balances","payload":[]}'
        t.events.insert(3, Frame.from_wire(reply, role="initiator", conn=0, sender="node", t=0.16))
    before = _arrows(render(t))
    after = _arrows(render(t, options=Options(hide=frozenset({kind}))))
    assert len(before) - len(after) == (2 if kind == "get" else 1)


def test_unknown_hide_kind_and_bad_ranges_are_errors():
    from chanlog.render import Options
    from chanlog.render.document import parse_range

    with pytest.raises(RenderError, match="unknown kind to hide: pings"):
        Options(hide=frozenset({"pings"}))
    assert parse_range("3..8") == (3, 8) and parse_range("5..") == (5, None) and parse_range("..4") == (None, 4)
    assert parse_range("6") == (6, 6)
    for bad in ("a..b", "8..3", "", ".."):
        with pytest.raises(RenderError, match="bad frame range"):
            parse_range(bad)


def test_frames_and_phase_limit_the_document_and_keep_frame_numbers():
    from chanlog.render import Options

    t = example()
    doc = render(t, options=Options(frames=(5, 9)))
    assert re.findall(r"^#### (\d+)\. ", doc, re.M) == ["5", "6", "7", "8", "9"]
    assert len(_arrows(doc)) == 5 and "    autonumber 5\n" in doc
    doc = render(t, options=Options(phase="open channel"))
    numbers = [int(n) for n in re.findall(r"^#### (\d+)\. ", doc, re.M)]
    assert numbers and numbers == list(range(numbers[0], numbers[-1] + 1)) and numbers[0] > 1
    assert _diagram(doc).count("note over I,R: ") == 1
    with pytest.raises(RenderError, match="no phase 'Teleport' in this flow"):
        render(t, options=Options(phase="Teleport"))


def test_show_time_and_error_arrows_stand_out():
    from hostile import hostile

    from chanlog.render import Options

    t = hostile()
    for i, event in enumerate(t.events):
        event.t = i * 0.25
    doc = render(t, options=Options(show_time=True))
    arrows = _arrows(doc)
    assert arrows[0] == "0.500s channels.info: fsm_up"
    diagram = _diagram(doc)
    error = re.search(r"    rect rgba\(255, 0, 0, .2\)\n    N--xI: 1.250s error 3 Rejected#59; ", diagram)
    assert error, diagram
    assert diagram.count("--x") == 1 and "autonumber" in diagram
    assert "autonumber" not in _diagram(render(t, options=Options(autonumber=False)))
