"""Issue 23, items 1 and 2: a site's pages are a one-to-one function of its inputs (any names: dotted, the same
stem under several roots or with other suffixes, ``index``/``README``, case variants, spaces, ``#``, ``?``,
``%``, non-ASCII), and ``chanlog render`` overwrites nothing it did not write."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chanlog.cli import main
from chanlog.render.site import FORMATS, INDEX, MANIFEST, MAX_NAME, page_file, page_names, render_site

#: A node log of one frame (the node's layout: heading, blank line, fenced JSON).
TINY_LOG = ('\n#### initiator ---> node\n```javascript\n{\n  "jsonrpc": "2.0",\n  "method": "channels.system",\n'
            '  "params": {\n    "action": "ping"\n  }\n}\n```\n')
#: The same frame as a transcript.
TINY_YAML = ("chanlog: 1\nname: tiny\nprotocol: json-rpc\nevents:\n- {event: frame, role: initiator, conn: 0, "
             "from: client, data: {jsonrpc: '2.0', method: channels.system, params: {action: ping}}}\n")
URL_SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")

# Names people and the node's test suites give logs, and the ones that broke the site before (issue 23).
stems = st.one_of(
    st.sampled_from(["index", "INDEX", "Index", "README", "readme", "a", "A", "a.b", "a.c", "a.b.c", "x y",
                     "#1", "what?", "100%", "café", "cafe\u0301", "日志", "channel_websocket.basic_open_close",
                     "channel_websocket.contracts", "a-1", ".hidden", "x.md", "x.html", "_assets", "-", "a_b"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=12),
    st.text("aAbB.-_ #?%", min_size=1, max_size=6))
suffixes = st.sampled_from([".md", ".MD", ".yaml", ".yml", ".Yaml", ""])
folders = st.lists(st.sampled_from(["f", "F", "g.md", "g.html", "sub dir", "ü", "_assets"]), max_size=2)
places = st.builds(lambda parts, stem, suffix: PurePosixPath(*parts, (stem + suffix).strip() or "_"),
                   folders, stems, suffixes)


def _check_pages(pages: list[PurePosixPath]) -> None:
    """One page per input, never the index, URL-safe, portable, and no page where a folder goes."""
    for fmt in FORMATS:
        files = [page_file(p, fmt).as_posix() for p in pages]
        assert len({f.casefold() for f in files}) == len(files), files  # case-insensitive file systems too
        assert f"{INDEX}{FORMATS[fmt]}" not in {f.casefold() for f in files}
        folders_of = {"/".join(f.split("/")[:i]).casefold() for f in files for i in range(1, f.count("/") + 1)}
        assert not folders_of & {f.casefold() for f in files}, files  # no folder has a page's name
    for page in pages:
        for part in page.parts:
            assert URL_SAFE.fullmatch(part) and part not in (".", ".."), page
            assert len(page_file(PurePosixPath(part), "html").name) + len(".x.4194304.tmp") <= 255


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["/r1/", "/r2/", "/r3/"]), places), max_size=25))
def test_pages_are_one_to_one_with_inputs_for_any_names(inputs):
    inputs = list(dict.fromkeys(inputs))  # a file is one input
    keyed = [(root + place.as_posix(), place) for root, place in inputs]
    pages = page_names(keyed)
    assert len(pages) == len(keyed)
    _check_pages(pages)
    assert page_names(keyed) == pages  # stable


@settings(max_examples=100, deadline=None)
@given(places)
def test_a_name_that_needs_no_change_is_kept(place):
    """Readable: a URL-safe name alone in its folder is its page, less the last suffix."""
    page = page_names([("/r/" + place.as_posix(), place)])[0]
    stem = place.name[:-len(place.suffix)] if place.suffix else place.name
    if URL_SAFE.fullmatch(stem) and len(stem) <= MAX_NAME and stem.casefold() != INDEX and not place.parent.parts:
        assert page.as_posix() == stem


def test_the_names_that_broke_the_site():
    names = ["channel_websocket.basic_open_close.md", "channel_websocket.contracts.md", "a.b.md", "a.c.md",
             "index.yaml", "index.md", "x.md", "x.yaml", "X.md"]
    pages = [p.as_posix() for p in page_names([(f"/in/{n}", PurePosixPath(n)) for n in names])]
    assert pages[:4] == ["channel_websocket.basic_open_close", "channel_websocket.contracts", "a.b", "a.c"]
    assert pages[4:6] == ["index.yaml", "index.md"]  # the index keeps its name
    assert pages[6] == "x.md-" + pages[6][5:] and pages[7] == "x.yaml" and pages[8].startswith("X.md-")
    same = page_names([("/r1/a.b.md", PurePosixPath("a.b.md")), ("/r2/a.b.md", PurePosixPath("a.b.md"))])
    assert len({p.as_posix() for p in same}) == 2


def _write(root: Path, place: PurePosixPath) -> Path:
    path = root / place
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TINY_LOG if place.suffix.lower() == ".md" else TINY_YAML, encoding="utf-8")
    return path


ondisk = st.builds(lambda parts, stem, suffix: PurePosixPath(*parts, stem + suffix),
                   st.lists(st.sampled_from(["f", "g.md", "sub dir", "ü"]), max_size=1),
                   st.sampled_from(["index", "README", "a.b", "a.c", "x y#?%", "café", "Log", "log", ".h", "_assets"]),
                   st.sampled_from([".md", ".yaml", ".yml", ".MD"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["r1", "r2"]), ondisk), min_size=1, max_size=6, unique=True),
       st.sampled_from(["md", "html"]))
def test_every_input_has_its_page_and_index_row_and_no_input_is_touched(tmp_path_factory, inputs, fmt):
    """Real files: every input (README.md given by name, the rest found in folders) has its own page on disk
    and a row in the index, the inputs keep their bytes, and a second run into the same folder is allowed."""
    base = tmp_path_factory.mktemp("site")
    (base / "case").mkdir()
    if (base / "CASE").exists():
        pytest.skip("a case-insensitive file system holds one file for two case variants")
    files = [_write(base / root, place) for root, place in inputs]
    files = list(dict.fromkeys(f for f in files if f.exists()))
    before = {f: f.read_bytes() for f in files}
    roots = sorted({base / root for root, _ in inputs})
    readmes = [f for f in files if f.name.casefold() == "readme.md"]
    out = base / "out"
    for _ in range(2):
        left: list[Path] = []
        summaries = render_site([*roots, *readmes], out, fmt=fmt, jobs=1, left_out=left)
        assert [s.failure for s in summaries if s.failure] == []
        assert sorted(str(s.source) for s in summaries) == sorted(map(str, files))
        assert sorted(left) == sorted(readmes)  # found in their folder, left out there, rendered by name
        pages = [s.page for s in summaries]
        assert len({p.casefold() for p in pages}) == len(pages)
        on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob(f"*{FORMATS[fmt]}"))
        assert on_disk == sorted([*pages, f"index{FORMATS[fmt]}"])
        index = (out / f"index{FORMATS[fmt]}").read_text(encoding="utf-8")
        assert all(p in index for p in pages)
        assert {f: f.read_bytes() for f in files} == before


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chanlog", "render", *args], capture_output=True, text=True,
                          timeout=120)


def test_an_output_folder_holding_an_input_is_refused_and_the_input_kept(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "index.md").write_text(TINY_LOG, encoding="utf-8")
    done = _run(str(inputs), "-o", str(inputs))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "the output folder holds the input" in done.stderr
    assert (inputs / "index.md").read_text(encoding="utf-8") == TINY_LOG
    assert sorted(p.name for p in inputs.iterdir()) == ["index.md"]
    nested = CliRunner().invoke(main, ["render", str(tmp_path), "-o", str(inputs), "-j", "1"])
    assert nested.exit_code == 1 and "the output folder holds the input" in nested.output  # in/index.md found


def test_a_file_chanlog_did_not_write_is_never_overwritten(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "log.md").write_text(TINY_LOG, encoding="utf-8")
    out = tmp_path / "site"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "index.md").write_text("my index", encoding="utf-8")
    done = _run(str(inputs), "-o", str(out))
    assert done.returncode == 1 and "index.md exists and chanlog did not write it" in done.stderr
    assert (out / "index.md").read_text(encoding="utf-8") == "my index" and not (out / "log.md").exists()
    (out / "index.md").unlink()
    for _ in range(2):  # beside the user's file; the second run replaces only its own pages
        done = _run(str(inputs), "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert f"rendered 1 of 1 session(s) into {out}" in done.stderr
        assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "index.md", "log.md", "notes.txt"]
        assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    (out / MANIFEST).write_text("[]", encoding="utf-8")  # not ours: refused, not trusted
    done = _run(str(inputs), "-o", str(out))
    assert done.returncode == 1 and "not a chanlog manifest" in done.stderr


def test_an_empty_input_set_is_an_error_and_an_index_input_gets_its_own_page(tmp_path):
    (tmp_path / "empty").mkdir()
    done = _run(str(tmp_path / "empty"), "-o", str(tmp_path / "site0"))
    assert done.returncode == 1 and "no inputs" in done.stderr and not (tmp_path / "site0").exists()
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "index.yaml").write_text(TINY_YAML, encoding="utf-8")
    (inputs / "README.md").write_text(TINY_LOG, encoding="utf-8")
    (inputs / "other.yml").write_text(TINY_YAML, encoding="utf-8")
    done = _run(str(inputs), "-o", str(tmp_path / "site"), "--format", "html")
    assert done.returncode == 0, done.stderr
    assert "left out 1 README.md" in done.stderr and "rendered 2 of 2 session(s)" in done.stderr
    pages = sorted(p.name for p in (tmp_path / "site").glob("*.html"))
    assert pages == ["index.html", "index.yaml.html", "other.html"]
