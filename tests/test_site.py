"""``chanlog render`` on many inputs: node logs taken directly, folders searched, pages in the folders'
structure, the index, errors per input, HTML pages escaped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import CORPUS, EXAMPLE, corpus_logs
from hostile import SCRIPT, hostile

from chanlog.cli import main
from chanlog.render import render
from chanlog.render.site import find_inputs, load_any, render_site
from chanlog.transcript import dumps

LOG = CORPUS / "json-rpc" / "sc_ws_close_mutual.md"


def need_log() -> Path:
    if not LOG.exists():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    return LOG


def test_render_takes_a_node_log_directly():
    done = CliRunner().invoke(main, ["render", str(need_log())])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("# sc_ws_close_mutual\n") and "```mermaid" in done.output


def test_a_log_on_standard_input_is_told_apart_by_content():
    text = need_log().read_text(encoding="utf-8")
    done = CliRunner().invoke(main, ["render", "-", "--layout", "node"], input=text)
    assert done.exit_code == 0, done.output
    assert done.output == text  # byte for byte


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Inputs: a transcript, a nested node log, a broken transcript, a broken log and a README."""
    root = tmp_path / "in"
    (root / "a" / "b").mkdir(parents=True)
    (root / "hostile.yaml").write_text(dumps(hostile()), encoding="utf-8")
    shutil.copyfile(need_log(), root / "a" / "b" / "close.md")
    (root / "a" / "broken.yaml").write_text("chanlog: 1\nevents: [unclosed\n", encoding="utf-8")
    (root / "a" / "broken.md").write_text("#### initiator ---> node\n```javascript\n{oops\n```\n", encoding="utf-8")
    (root / "README.md").write_text("# not a log\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_a_folder_renders_page_per_session_with_an_index_and_an_error_line_per_bad_input(tree, tmp_path, fmt):
    out = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "chanlog", "render", str(tree), "-o", str(out), "--format", fmt,
                           "-j", "2"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("chanlog: error: ")]
    assert len(errors) == 2
    assert any("broken.yaml:3" in e for e in errors) and any("broken.md:3" in e for e in errors)
    assert "rendered 2 of 4 session(s)" in done.stderr
    assert "\r" not in done.stderr and "%|" not in done.stderr  # no progress bar when not a terminal
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob(f"*.{fmt}")) == [
        f"a/b/close.{fmt}", f"hostile.{fmt}", f"index.{fmt}"]
    index = (out / f"index.{fmt}").read_text(encoding="utf-8")
    assert "a/b/close" in index and "broken.yaml" in index
    assert "ch_" in index and "Mutual close" in index
    if fmt == "html":
        assert SCRIPT not in index and "&lt;script&gt;window.pwned" in index
    else:  # only inside code spans: the one HTML is the index's own <br> between errors
        from markdown_it import MarkdownIt

        tokens = MarkdownIt("commonmark").enable("table").parse(index)
        html = {c.content for t in tokens for c in t.children or [] if c.type.startswith("html")}
        assert html <= {"<br>"}, html


def test_the_markdown_index_table_has_every_column():
    out_md = render_index_of([need_log(), EXAMPLE])
    header, _, *rows = [line for line in out_md.splitlines() if line.startswith("|")]
    assert header == ("| session | folder | protocol | connections | frames | phases | errors the node sent "
                      "| channel id |")
    assert len(rows) == 2 and all(row.count(" | ") == 7 for row in rows)


def render_index_of(paths: list[Path]) -> str:
    from chanlog.render import render_index
    from chanlog.render.site import Summary, summarize

    summaries = []
    for p in paths:
        if not p.exists():
            pytest.skip(f"{p} is missing")
        from chanlog.render import Describer, doc_entries, load_descriptions

        t = load_any(p)
        s = Summary(str(p), p.stem + ".md", folder=".")
        s.__dict__.update(summarize(t, doc_entries(t, Describer(load_descriptions(), t.protocol))))
        summaries.append(s)
    return render_index(summaries, "md")


def test_several_inputs_need_an_output_folder(tree):
    done = CliRunner().invoke(main, ["render", str(tree)])
    assert done.exit_code == 2 and "need -o OUTDIR" in done.output
    done = CliRunner().invoke(main, ["render", str(tree), "--format", "html", "--layout", "node", "-o", "x"])
    assert done.exit_code == 2
    done = CliRunner().invoke(main, ["render", str(tree / "hostile.yaml"), "--layout", "node", "--hide", "info"])
    assert done.exit_code == 2 and "--layout node always writes every event" in done.output
    for bad in (["--hide", "pings"], ["--frames", "9..2"]):
        done = CliRunner().invoke(main, ["render", str(tree / "hostile.yaml"), *bad])
        assert done.exit_code == 2, done.output
    done = CliRunner().invoke(main, ["render", str(tree / "hostile.yaml"), "--phase", "Nope"])
    assert done.exit_code == 1 and "no phase 'Nope' in this flow (phases: Opening)" in done.output


def test_find_inputs_keeps_the_folders_structure_and_names_duplicates(tree):
    found = find_inputs([tree, tree / "hostile.yaml"])  # the same file twice is one input
    pages = [p.as_posix() for _, p in found]
    assert pages == ["a/b/close", "a/broken.md", "a/broken.yaml", "hostile"]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_hostile_html_page_has_only_its_own_markup():
    """The script is the page's own (it loads Mermaid from the flow's data-mermaid-js); no element or
    attribute comes from the transcript; the texts are there, escaped."""
    page = render(hostile(), layout="html")
    parser = _Elements()
    parser.feed(page)
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{}]
    flows = [attrs for tag, attrs in parser.tags if tag == "section" and attrs.get("class") == "flow"]
    assert len(flows) == 1 and flows[0]["data-mermaid-js"].startswith("https://cdn.jsdelivr.net/npm/mermaid@")
    assert not [t for t, attrs in parser.tags for a in attrs if a.startswith("on")]
    assert {t for t, _ in parser.tags} <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h4", "p",
                                           "code", "nav", "strong", "ul", "li", "a", "table", "tr", "th", "td",
                                           "div", "pre", "section", "details", "summary", "blockquote", "span",
                                           "script", "br", "noscript"}
    assert not [a for t, a in parser.tags if t == "a" and not re.fullmatch(r"#[\w-]+", a.get("href", ""))]
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in page
    assert page.count("<section class=\"frame error\"") == 1


def test_mermaid_js_from_a_local_file_is_copied_once_beside_the_output(tmp_path):
    script = tmp_path / "mermaid.min.js"
    script.write_text("/* mermaid */", encoding="utf-8")
    source = tmp_path / "s.yaml"
    source.write_text(dumps(hostile()), encoding="utf-8")
    out = tmp_path / "site"
    done = CliRunner().invoke(main, ["render", str(source), str(source), "-o", str(out), "--format", "html",
                                     "--mermaid-js", str(script), "-j", "1"])
    assert done.exit_code == 0, done.output
    assert (out / "_assets" / "mermaid.min.js").read_text() == "/* mermaid */"
    assert 'data-mermaid-js="_assets/mermaid.min.js"' in (out / "s.html").read_text()
    done = CliRunner().invoke(main, ["render", str(source), "--format", "html", "--mermaid-js", "/nonexistent.js",
                                     "-o", str(tmp_path / "one.html")])
    assert done.exit_code == 1 and "no such file" in done.output


def test_every_corpus_log_renders_in_both_formats(tmp_path):
    if not corpus_logs():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    from chanlog.render.site import render_site

    for fmt in ("md", "html"):
        summaries = render_site([CORPUS], tmp_path / fmt, fmt=fmt, jobs=2)
        assert [s.failure for s in summaries if s.failure] == []
        assert len(summaries) == len(corpus_logs())


def test_a_progress_bar_is_drawn_on_a_terminal(tree, tmp_path):
    """Standard error a terminal (a pseudo-terminal here): tqdm draws the bar up to every input."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    try:
        done = subprocess.run([sys.executable, "-m", "chanlog", "render", str(tree / "hostile.yaml"),
                               str(tree / "a" / "b"), "-o", str(tmp_path / "out"), "-j", "1"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower, timeout=300)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    shown = b"".join(chunks).decode("utf-8", "replace")
    assert done.returncode == 0, shown
    assert "render: 100%" in shown and "2/2" in shown


def test_node_layout_site_and_decoded_trees_in_html(tmp_path):
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE} is missing")
    from chanlog.render.site import render_site

    summaries = render_site([EXAMPLE], tmp_path / "node", layout="node", jobs=1)
    assert summaries[0].failure is None and summaries[0].frames == 30
    assert (tmp_path / "node" / "init_per_group.md").read_text().startswith("\n#### initiator opens a WebSocket")
    page = render(load_any(EXAMPLE), layout="html")
    assert '<ul class="fields"><li>signatures: []</li><li>transaction: <strong>channel_create_tx v1</strong></li><ul>' \
           in page.replace("<li><strong>signed_tx v1</strong></li><ul>", "").replace('<ul class="fields"><ul>',
                                                                                  '<ul class="fields">')


def test_an_output_folder_inside_the_input_folder_is_not_read_back(tree):
    from chanlog.render.site import render_site

    out = tree / "site"
    for _ in range(2):
        summaries = render_site([tree], out, jobs=1)
        assert sorted(s.page for s in summaries) == ["a/b/close.md", "a/broken.md.md", "a/broken.yaml.md",
                                                     "hostile.md"]


def test_a_pool_gives_the_pages_and_summaries_of_one_process_in_input_order(tree, tmp_path):
    """Workers take the largest inputs first; what they give back is still in input order, and the same."""
    from chanlog.render.site import find_inputs, render_site

    one = render_site([tree], tmp_path / "one", fmt="html", jobs=1)
    two = render_site([tree], tmp_path / "two", fmt="html", jobs=2)
    assert [s.source for s in one] == [str(f) for f, _ in find_inputs([tree])] == [s.source for s in two]
    assert [s.failure for s in one] == [s.failure for s in two]
    pages = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.html"))
    assert len(pages) == 3  # two sessions (two inputs are broken) and the index
    for page in pages:
        assert (tmp_path / "one" / page).read_bytes() == (tmp_path / "two" / page).read_bytes(), page


_forks_while_threaded: list[int] = []
_watching_forks: list[bool] = []
_hooked: list[bool] = []


def _before_fork() -> None:
    if _watching_forks and threading.active_count() > 1:
        _forks_while_threaded.append(threading.active_count())


def test_site_workers_are_not_forked_from_a_threaded_process(tree, tmp_path) -> None:
    """render_site called from a process running other threads (a progress bar's, a caller's) starts its
    workers without forking that process (forking a threaded process can deadlock the child; Python 3.12+
    warns: DeprecationWarning, an error here), and renders as before."""
    import os
    import warnings

    if not hasattr(os, "register_at_fork"):
        pytest.skip("os.register_at_fork is POSIX only")
    if not _hooked:  # once per process: a hook cannot be removed
        os.register_at_fork(before=_before_fork)
        _hooked.append(True)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    _forks_while_threaded.clear()
    _watching_forks.append(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            summaries = render_site([tree], tmp_path / "site", jobs=2)
    finally:
        _watching_forks.clear()
        stop.set()
    assert _forks_while_threaded == []
    assert sorted(s.failure is None for s in summaries) == [False, False, True, True]
