"""The site's reading aids in a real headless Chromium (issue 23): the index's filter and sort, its fit at 1,400
and 2,400 px, a 2,000-frame session page (participants visible after scrolling to the end of its diagram,
parts drawn as they come into view, contents collapsed), and the message a page shows when Mermaid cannot load.

``chanlog render`` (a real process) writes a site of generated sessions (``tests/longsession.py``: not the
corpus) with a local Mermaid, and one page whose ``--mermaid-js`` is a loopback port nothing listens on;
``tests/browser/ui.mjs`` drives the system's Chromium (playwright-core) and reports what the DOM shows.
Skips with the reason when Chromium, node/npm or the npm packages are missing (as ``tests/test_browser.py``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import npm
import pytest
from longsession import CHANNEL, long_session
from test_browser import BROWSER_DIR, chromium

from chanlog.transcript import dumps

pytestmark = pytest.mark.e2e

UI = BROWSER_DIR / "ui.mjs"
#: The sessions of the site: name -> (frames, an error reply every N updates, 0 for none). One name is long
#: enough to be cut at any width; "long" is the 2,000-frame page.
SESSIONS = {"alpha_open": (12, 0), "beta_update": (41, 3), "gamma_update": (20, 0), "delta_close": (8, 0),
            "long": (2000, 50), "zeta_" + "a_very_long_session_name_" * 8: (16, 2)}
#: Words typed into the filter and the sessions each must leave: a name, an error code (3/1008, in the
#: errors column), two words that must both match.
FILTERS = {"gamma": {"gamma_update"}, "3/1008": {"beta_update", "long", next(n for n in SESSIONS if n[:5] == "zeta_")},
           "update beta": {"beta_update"}}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> dict:
    exe = chromium()
    modules = npm.install(BROWSER_DIR, "browser", "to drive Chromium")
    root = tmp_path_factory.mktemp("ui")
    inputs = root / "in"
    inputs.mkdir()
    for name, (frames, errors) in SESSIONS.items():
        (inputs / f"{name}.yaml").write_text(dumps(long_session(frames, name, error_every=errors)), encoding="utf-8")
    mermaid_js = modules / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
    out = root / "site"
    done = subprocess.run([sys.executable, "-m", "chanlog", "render", str(inputs), "-o", str(out), "--format",
                           "html", "--mermaid-js", str(mermaid_js)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    offline = root / "offline.html"
    done = subprocess.run([sys.executable, "-m", "chanlog", "render", str(inputs / "delta_close.yaml"), "-o",
                           str(offline), "--format", "html", "--mermaid-js",
                           f"http://127.0.0.1:{closed_port()}/mermaid.min.js"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    filters = [arg for words in FILTERS for arg in ("--filter", words)]
    run = subprocess.run(["node", str(UI), "--modules", str(modules), "--chromium", exe, "--index",
                          str(out / "index.html"), *filters, "--long", str(out / "long.html"), "--offline",
                          str(offline)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "HOME": os.environ.get("HOME", "/root")})
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_the_filter_keeps_the_rows_holding_every_word_typed(ui: dict) -> None:
    index = ui["index"]
    assert index["pageErrors"] == []
    assert sorted(index["rows"]) == sorted(SESSIONS)
    for result in index["filtered"]:
        assert set(result["rows"]) == FILTERS[result["words"]], result
        assert result["shown"] == f"{len(FILTERS[result['words']])} of {len(SESSIONS)} shown"
    assert sorted(index["cleared"]) == sorted(SESSIONS)  # an empty box shows every row again


def test_a_click_on_a_header_sorts_by_that_column_and_a_second_the_other_way(ui: dict) -> None:
    sorts = ui["index"]["sorts"]
    names = sorted(SESSIONS)
    assert sorts["session"]["asc"] == names and sorts["session"]["desc"] == names[::-1]
    assert (sorts["session"]["ariaAsc"], sorts["session"]["ariaDesc"]) == ("ascending", "descending")
    frames = sorts["frames"]["asc"]
    assert [int(f) for f in frames] == sorted(int(f) for f in frames) and len(set(frames)) > 2  # as numbers
    assert sorts["frames"]["desc"] == frames[::-1]
    counts = [int(e.split()[0]) if e else 0 for e in sorts["errors"]["asc"]]
    assert counts == sorted(counts) and counts[-1] > counts[0]


def test_the_index_fits_the_window_one_line_per_session_with_full_ids_on_hover(ui: dict) -> None:
    index = ui["index"]
    for fit in (index, index["wide"]):  # 1,400 and 2,400 px
        assert fit["scrollWidth"] <= fit["clientWidth"], fit
        assert max(fit["rowHeights"]) - min(fit["rowHeights"]) < 1, fit["rowHeights"]  # the long name too
        # the session's real channel id (its first frames say "undefined"), whole in the text and the title
        assert all(c == {"title": CHANNEL, "text": CHANNEL} for c in fit["channelIds"]), fit["channelIds"]


def test_a_2000_frame_page_keeps_its_participants_in_view_and_draws_parts_as_they_come(ui: dict) -> None:
    long = ui["long"]
    assert long["pageErrors"] == [] and long["state"] == "done"
    assert long["parts"] > 2 and long["drawnAtLoad"] < long["parts"]  # the parts below wait for the reader
    assert long["details"] >= 3 and long["detailsOpen"] == 0 and long["flowBeforeContents"]
    after = long["afterScroll"]
    assert after["scrollY"] > 10 * after["viewport"]["height"]  # far down the diagram
    assert after["topActorsTop"] < 0  # every part's own participant boxes are above the viewport
    assert after["barVisible"] and not long["barVisibleAtTop"]  # (at the top: the diagram's own boxes show)
    bar = after["bar"]
    assert 0 <= bar["top"] and bar["bottom"] <= after["viewport"]["height"] and bar["height"] > 10, after
    assert [n["text"] for n in after["names"]] == ["initiator", "node", "responder"]
    assert all(0 <= n["top"] and n["bottom"] <= after["viewport"]["height"] for n in after["names"])
    # each name over its lifeline in the part on screen
    assert len(after["lifelines"]) == 3
    assert all(abs(n["x"] - x) < 3 for n, x in zip(after["names"], after["lifelines"], strict=True)), after


def test_a_page_whose_mermaid_cannot_load_says_so_and_names_the_option(ui: dict) -> None:
    offline = ui["offline"]
    assert offline["state"] == "no-mermaid" and offline["visible"], offline
    assert "--mermaid-js" in offline["text"] and "did not load" in offline["text"]
    assert offline["pageErrors"] == []
