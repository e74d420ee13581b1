"""The site's pages as HTML text (issue 23; the browser side is tests/test_browser_ui.py): the session's real
channel id, error arrows with code and reasons, the index's error summary, hostile values escaped in the
index, the session page's order (flow first, contents collapsed, errors listed), its parts, the offline
message, the index's packaged script copied beside the output."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from hostile import SCRIPT
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from longsession import CHANNEL, REJECTED, long_session

from chanlog.model import Frame
from chanlog.render import render, render_index
from chanlog.render.describe import MAX_LABEL_REASONS, arrow_label, error_label
from chanlog.render.mermaid import HTML_PART_SIZE, MERMAID_PART_SIZE
from chanlog.render.site import ASSETS, Summary, render_site
from chanlog.render.stream import render_stream
from chanlog.transcript import dumps, stream


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict]]:
    parser = _Elements()
    parser.feed(page)
    return parser.tags


# -- the channel id ------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.one_of(st.none(), st.integers(), st.sampled_from(["undefined", "null", "", "ch_"]),
                 st.text(max_size=20).filter(lambda s: not s.startswith("ch_"))))
def test_the_channel_id_is_the_first_real_one_whatever_the_first_frames_carry(placeholder):
    t = long_session(12, first_id=placeholder)
    assert t.channel_id == CHANNEL
    html = render(t, layout="html")
    assert f"channel <code>{CHANNEL}</code>" in html
    assert f"channel `{CHANNEL}`" in render(t)


def test_no_real_channel_id_gives_none_and_the_streamed_page_agrees(tmp_path):
    t = long_session(12)
    for frame in (e for e in t.events if isinstance(e, Frame)):
        if frame.channel_id == CHANNEL:
            frame.obj["params"]["channel_id"] = "undefined"
    assert t.channel_id is None
    assert ", channel <code>" not in render(t, layout="html")
    path = tmp_path / "s.yaml"
    path.write_text(dumps(long_session(40)), encoding="utf-8")
    streamed = "".join(render_stream(stream(path), layout="html"))
    assert streamed == render(long_session(40), layout="html") and f"channel <code>{CHANNEL}</code>" in streamed


# -- error arrows ----------------------------------------------------------------------------------------------


def test_an_error_arrow_carries_the_code_and_the_reasons():
    assert error_label(REJECTED) == "error 3 Rejected: 1008 Not a number"
    many = {**REJECTED, "data": [{"code": 1000 + i, "message": f"r{i}"} for i in range(MAX_LABEL_REASONS + 2)]}
    assert error_label(many) == "error 3 Rejected: 1000 r0, 1001 r1, 1002 r2, +2 more"
    assert error_label({"code": -32601, "message": "Method not found"}) == "error -32601 Method not found"
    assert error_label({"code": 3, "message": "Rejected", "data": "why"}) == "error 3 Rejected: why"
    legacy = Frame.from_wire('{"action": "error", "payload": {"reason": "not_a_number"}}', role="initiator",
                             conn=0, sender="node")
    assert arrow_label(legacy) == "error: not_a_number"
    doc = render(long_session(12, error_every=1))
    assert "    N--xI: error 3 Rejected: 1008 Not a number\n" in doc


_ENTITIES = re.compile(r"#(?:59|35|37|lt|gt);")
_WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.integers(), _WORDS), _WORDS,
       st.lists(st.fixed_dictionaries({"code": st.one_of(st.integers(), _WORDS), "message": _WORDS}), max_size=5))
def test_an_error_arrow_from_any_reply_is_one_escaped_diagram_line(code, message, data):
    t = long_session(6)
    reply = Frame.from_wire(dumps_json({"jsonrpc": "2.0", "id": 1, "version": 1,
                                        "error": {"code": code, "message": message, "data": data}}),
                            role="initiator", conn=0, sender="node")
    assume(reply.is_json)  # (a text the model keeps verbatim, not JSON, has no error to label)
    t.events.append(reply)
    diagram = render(t).split("```mermaid\n", 1)[1].split("```", 1)[0]
    line = next(line for line in diagram.splitlines() if line.startswith("    N--xI: error"))
    assert not re.search(r"[;#%<>]", _ENTITIES.sub("", line.partition(": ")[2])), line


def dumps_json(obj) -> str:
    import json

    return json.dumps(obj, indent=2, ensure_ascii=False)


# -- the index -------------------------------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> dict:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "beta.yaml").write_text(dumps(long_session(41, "beta", error_every=3)), encoding="utf-8")
    (inputs / "alpha.yaml").write_text(dumps(long_session(12, "alpha")), encoding="utf-8")
    out = {}
    for fmt in ("html", "md"):
        summaries = render_site([inputs], tmp_path / fmt, fmt=fmt, jobs=1)
        out[fmt] = ({s.name: s for s in summaries}, tmp_path / fmt)
    return out


def test_the_index_summarises_errors_as_a_count_and_codes_linked_to_the_page(site):
    summaries, out = site["html"]
    beta = summaries["beta"]
    page = (out / "beta.html").read_text(encoding="utf-8")
    errors = page.count('<section class="frame error"')
    assert beta.error_count == errors == 3 and beta.error_codes == ["3/1008"]
    assert summaries["alpha"].error_count == 0 and summaries["alpha"].error_codes == []
    assert all(s.channel_id == CHANNEL for s in summaries.values())
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f'<a href="beta.html#errors">{errors}</a> <code>3/1008</code>' in index
    assert index.count("<tr>") == 3  # the header's and one per session
    listed = re.findall(r'<li><a href="#(frame-\d+)">frame \d+</a>: <code>([^<]*)</code>', page)
    assert len(listed) == errors and {label for _, label in listed} == {"error 3 Rejected: 1008 Not a number"}
    assert all(f'<section class="frame error" id="{anchor}">' in page for anchor, _ in listed)
    md_index = (site["md"][1] / "index.md").read_text(encoding="utf-8")
    row = next(line for line in md_index.splitlines() if line.startswith("| [beta]"))
    assert f" | {errors}: `3/1008` | `{CHANNEL}` |" in row


def test_the_index_script_is_copied_beside_the_html_site_only(site):
    packaged = (resources.files("chanlog") / "templates" / "static" / "chanlog.js").read_bytes()
    _, html = site["html"]
    assert (html / ASSETS / "chanlog.js").read_bytes() == packaged
    scripts = [a for t, a in elements((html / "index.html").read_text(encoding="utf-8")) if t == "script"]
    assert scripts == [{"src": f"{ASSETS}/chanlog.js"}]
    assert not (site["md"][1] / ASSETS).exists()


def test_hostile_values_in_the_html_index_are_text_and_whole_in_their_titles():
    evil = f"x\"' onmouseover=alert(1) {SCRIPT} &amp;"
    s = Summary(evil, "a b/evil?.html", name=evil, folder=evil, protocol=evil, connections=1, frames=2,
                phases=[evil, "Opening"], errors=[evil], error_count=1, error_codes=[evil], channel_id="ch_" + evil)
    index = render_index([s], "html", assets=ASSETS)
    tags = elements(index)
    assert [a for t, a in tags if t == "script"] == [{"src": f"{ASSETS}/chanlog.js"}]
    assert not [a for _, attrs in tags for a in attrs if a.startswith("on")]
    assert {t for t, _ in tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "p", "div", "label",
                                    "input", "span", "table", "colgroup", "col", "thead", "tbody", "tr", "th", "td",
                                    "button", "a", "code", "script"}
    titles = [a["title"] for t, a in tags if t == "td" and "title" in a]
    assert evil in titles and f"{evil}, Opening" in titles and "ch_" + evil in titles  # whole on hover
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in index and SCRIPT not in index
    assert [a["href"] for t, a in tags if t == "a"] == ["a%20b/evil%3F.html", "a%20b/evil%3F.html#errors"]


# -- the session page ------------------------------------------------------------------------------------------


def test_the_session_page_shows_the_flow_first_and_the_contents_collapsed_by_phase():
    t = long_session(2000, error_every=50)
    page = render(t, layout="html")
    assert page.index('<section class="flow"') < page.index('<nav class="toc"') < page.index('<section class="frame')
    toc = page[page.index('<nav class="toc"'):page.index("</nav>")]
    assert toc.count("<details>") == 3 and "<details open" not in toc  # Opening, Open channel, Off-chain update
    assert '<div class="participants"' in page and page.index('<div class="participants"') < page.index("<pre class")
    parts = re.findall(r'<pre class="mermaid">\n(.*?)</pre>', page, re.S)
    markdown_parts = render(t).count("```mermaid")
    assert len(parts) > markdown_parts and all(len(p) <= HTML_PART_SIZE for p in parts)
    assert HTML_PART_SIZE < MERMAID_PART_SIZE
    assert page.count('<li><a href="#frame-') == 10  # the errors list, before the frames


def test_the_errors_list_is_capped_and_counts_the_rest(monkeypatch):
    from chanlog.render import html

    monkeypatch.setattr(html, "MAX_ERROR_LIST", 2)
    page = render(long_session(60, error_every=2), layout="html")
    assert page.count('<li><a href="#frame-') == 2
    total = page.count('<section class="frame error"')
    assert f'and {total - 2} more (see the frames)' in page and f"Errors ({total})" in page


def test_the_offline_message_is_in_the_page_hidden_until_the_script_fails():
    page = render(long_session(6), layout="html", context={"mermaid_js": "http://127.0.0.1:9/m.js"})
    tags = dict(elements(page))
    box = next(a for t, a in elements(page) if a.get("id") == "mermaid-missing")
    assert "hidden" in box and box.get("role") == "alert" and "section" in tags
    message = page[page.index('id="mermaid-missing"'):page.index("</div>", page.index('id="mermaid-missing"'))]
    assert "--mermaid-js" in message and "http://127.0.0.1:9/m.js" in message and "Offline pages" in message
