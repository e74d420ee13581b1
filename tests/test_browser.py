"""Rendered HTML in a real headless browser: the system's Chromium (Debian package ``chromium``; ``.ci/run``
installs it when missing) driven by ``playwright-core`` (pinned in ``tests/browser/package.json``, installed
with Mermaid's browser build into ``~/.cache/chanlog-tests/browser``).

``chanlog render`` (a real process) writes a site of corpus logs, the example and the hostile transcript with
``--format html --mermaid-js <local mermaid.min.js>`` (so the pages work offline); ``tests/browser/check.mjs``
opens the index and session pages and reads the DOM: every diagram became an SVG without Mermaid's error box,
with one message per frame and the frame numbers on the arrows; clicking a numbered arrow scrolls its frame
to the top of the viewport; the hostile page runs none of its planted scripts and shows its labels as text.
Skips with the reason when Chromium, node/npm or the npm packages are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import npm
import pytest
from conftest import CORPUS, EXAMPLE
from hostile import METHOD, hostile

from chanlog.transcript import dumps

pytestmark = pytest.mark.e2e  # one unit under pytest -n (conftest.XDIST_UNITS): the module fixture runs once

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CHECK = BROWSER_DIR / "check.mjs"
CHROMIUM = ("chromium", "chromium-browser", "/usr/bin/chromium")
#: Corpus logs on the pages checked: a short one, one with errors, one drawn in several diagrams, a legacy one.
PAGES = ("json-rpc/sc_ws_close_mutual", "json-rpc/abort_updates/sc_ws_abort_deposit",
         "json-rpc/contracts/sc_ws_basic_contracts", "legacy/sc_ws_basic_open_close")


def chromium() -> str:
    for name in CHROMIUM:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("Chromium is needed for the browser test (Debian: apt-get install -y chromium; .ci/run does it)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The rendered site and the browser's report of its pages, by page path relative to the site."""
    exe = chromium()
    modules = npm.install(BROWSER_DIR, "browser", "to drive Chromium")
    root = tmp_path_factory.mktemp("site")
    inputs = root / "in"
    inputs.mkdir()
    (inputs / "hostile.yaml").write_text(dumps(hostile()), encoding="utf-8")
    if EXAMPLE.exists():
        shutil.copyfile(EXAMPLE, inputs / "init_per_group.yaml")
    for page in PAGES:
        source = CORPUS / f"{page}.md"
        if source.exists():
            target = inputs / f"{page}.md"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    out = root / "out"
    mermaid_js = modules / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    done = subprocess.run([sys.executable, "-m", "chanlog", "render", str(inputs), "-o", str(out), "--format",
                           "html", "--mermaid-js", str(mermaid_js)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    run = subprocess.run(["node", str(CHECK), "--modules", str(modules), "--chromium", exe,
                          *(str(out / p) for p in pages)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HOME": os.environ.get("HOME", "/root")})
    assert run.returncode == 0, run.stderr[-3000:]
    reports = {Path(r["page"]).relative_to(out).as_posix(): r for r in map(json.loads, run.stdout.splitlines())}
    assert sorted(reports) == pages
    return {"out": out, "reports": reports, "inputs": inputs}


def test_the_index_links_every_session_page(site: dict) -> None:
    index = site["reports"]["index.html"]
    sessions = sorted(p for p in site["reports"] if p != "index.html")
    assert sorted(link for link in index["links"] if "#" not in link) == sessions
    errors = [link for link in index["links"] if "#" in link]  # a session's error count links to its list
    assert errors and all(link.split("#")[0] in sessions and link.endswith("#errors") for link in errors)
    assert (site["out"] / "_assets" / "mermaid.min.js").is_file()  # copied once, beside the output
    assert index["pageErrors"] == [] and not index["injected"]


def test_every_diagram_is_drawn_with_one_numbered_message_per_frame(site: dict) -> None:
    from chanlog.render.site import load_any

    for page, report in site["reports"].items():
        if page == "index.html":
            continue
        source = next(site["inputs"].rglob(f"{Path(page).with_suffix('').as_posix()}.*"))
        frames = [n for n, _ in load_any(source).frames()]
        assert report["state"] == "done", (page, report["state"])
        assert report["pageErrors"] == [], page
        assert report["diagrams"] and all(d["svg"] and d["error"] is None for d in report["diagrams"]), page
        assert sum(d["messages"] for d in report["diagrams"]) == len(frames), page
        assert [n for d in report["diagrams"] for n in d["numbers"]] == frames, page
    split = [p for p, r in site["reports"].items() if len(r["diagrams"]) > 1]
    if CORPUS.is_dir():
        assert split, "no page was drawn in several diagrams"


def test_a_numbered_arrow_scrolls_to_its_frame(site: dict) -> None:
    for page, report in site["reports"].items():
        if page == "index.html":
            continue
        scrolled = report["scrolled"]
        assert scrolled is not None, page
        assert scrolled["hash"] == f"#frame-{scrolled['frame']}" and scrolled["target"], (page, scrolled)
        assert 0 <= scrolled["top"] < 40 and scrolled["scrollY"] > 0, (page, scrolled)


def test_the_hostile_page_runs_nothing_and_shows_labels_as_text(site: dict) -> None:
    report = site["reports"]["hostile.html"]
    assert not report["injected"] and report["dialogs"] == [] and report["pageErrors"] == []
    texts = [t for d in report["diagrams"] for t in d["texts"]]
    assert METHOD.replace("\n", " ") in texts  # every character shown, none interpreted
    assert report["title"].startswith("hostile")
