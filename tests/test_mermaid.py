"""The doc layout's flow pictures checked by Mermaid's own parser.

``mermaid`` (the version pinned in ``tests/mermaid/package.json``) is installed from the npm registry into
``~/.cache/chanlog-tests/mermaid`` (``$CHANLOG_TEST_CACHE/mermaid`` when set; reused when that version is
there). ``tests/mermaid/check.mjs`` runs ``mermaid.parse`` (syntax only, no rendering, no DOM needed) on
every ```` ```mermaid ```` block that ``render(..., layout="doc")`` writes for the example transcript, every
corpus log and a transcript whose labels hold the characters Mermaid treats specially; all of them in one
node process. A failure names the transcript and Mermaid's message (with the line it points at). Every
diagram must also fit Mermaid's default ``maxTextSize`` (a page shows an error box instead of a longer one):
a long flow is drawn as several diagrams, and together they hold one arrow per frame.

A negative control shows the check cannot pass vacuously: diagrams broken the ways the renderer must avoid
are reported as errors.

Skips with the reason when ``node``/``npm`` are missing, Node.js is older than 18 or the install fails
(no registry access); the corpus test also when the shared corpus is absent.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import npm
import pytest
from conftest import CORPUS, EXAMPLE, corpus_id, corpus_logs
from hostile import DIRECTIVE, hostile

from chanlog.render import Options, render
from chanlog.sources.nodelog import import_file
from chanlog.transcript import load

pytestmark = pytest.mark.e2e  # one unit under pytest -n (conftest.XDIST_UNITS): the module fixture runs once

MERMAID_DIR = Path(__file__).resolve().parent / "mermaid"
CHECK = MERMAID_DIR / "check.mjs"
CHECK_TIMEOUT = 180
#: A fenced Mermaid block of a Markdown document; group 1 is its body.
BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.S | re.M)
EXAMPLE_NAME = "transcripts/init_per_group.yaml"
HOSTILE_NAME = "hostile labels"


@pytest.fixture(scope="module")
def mermaid() -> Path:
    """The cache directory holding ``node_modules/mermaid`` at the pinned version."""
    return npm.install(MERMAID_DIR, "mermaid", "to run Mermaid's parser")


def check(mermaid: Path, diagrams: list[dict[str, str]]) -> dict[str, dict]:
    """Run ``check.mjs`` on ``diagrams`` (``{name, text}``); its result per name (in input order), with the
    ``text`` checked and, on a parse error, the ``line`` Mermaid points at. Fails
    when a result is missing or the exit status is not 0 for all parsed, 1 for some not."""
    done = subprocess.run(["node", str(CHECK), "--mermaid", str(mermaid)], input=json.dumps(diagrams),
                          capture_output=True, text=True, timeout=CHECK_TIMEOUT)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    names = [r["name"] for r in results]
    assert names == [d["name"] for d in diagrams], f"check.mjs (exit {done.returncode}): {done.stderr[-2000:]}"
    assert done.returncode == (0 if all(r["ok"] for r in results) else 1), done.stderr[-2000:]
    for result, diagram in zip(results, diagrams, strict=True):
        result["text"] = diagram["text"]
        line = re.match(r"Parse error on line (\d+)", result.get("error", ""))
        if line:  # the diagram line Mermaid points at (past the end for an unclosed block)
            lines = diagram["text"].split("\n")
            result["line"] = lines[int(line[1]) - 1] if int(line[1]) <= len(lines) else "(end of diagram)"
    return dict(zip(names, results, strict=True))


def diagrams_of(name: str, doc: str) -> list[dict[str, str]]:
    """The Mermaid blocks of a rendered doc as ``{name, text}``: named ``name`` when there is one, ``name
    [part k/n]`` when the flow is drawn in parts (fails when there is none)."""
    blocks = BLOCK.findall(doc)
    assert blocks, f"{name}: the doc has no mermaid block"
    if len(blocks) == 1:
        return [{"name": name, "text": blocks[0]}]
    return [{"name": f"{name} [part {k}/{len(blocks)}]", "text": b} for k, b in enumerate(blocks, 1)]


def _parts(results: dict[str, dict], name: str) -> list[str]:
    """The result names of one transcript's diagrams."""
    return [n for n in results if n == name or n.startswith(f"{name} [part ")]


@pytest.fixture(scope="module")
def checked(mermaid: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every rendered doc's diagram, checked in one node process: the example, the hostile transcript (with
    a phase name of the same kind from a descriptions file) and (when present) every corpus log, named by
    transcript."""
    diagrams: list[dict[str, str]] = []
    if EXAMPLE.exists():
        diagrams += diagrams_of(EXAMPLE_NAME, render(load(EXAMPLE), layout="doc"))
    descriptions = tmp_path_factory.mktemp("mermaid") / "descriptions.yaml"
    descriptions.write_text(json.dumps({"phases": {"event:fsm_up": f"Opening; #1 <a>\nend {DIRECTIVE}"}}))
    diagrams += diagrams_of(HOSTILE_NAME, render(hostile(), layout="doc", descriptions=descriptions))
    for hide in ("info", "info,get,ping,message"):  # numbering jumps over hidden frames
        options = Options(hide=frozenset(hide.split(",")), show_time=True)
        diagrams += diagrams_of(f"{HOSTILE_NAME} --hide {hide}", render(hostile(), layout="doc", options=options))
    for log in corpus_logs():
        transcript = import_file(log)
        frames = len(list(transcript.frames()))
        drawn = diagrams_of(corpus_id(log), render(transcript, layout="doc"))
        arrows = sum(len(ARROW.findall(d["text"])) for d in drawn)
        assert arrows == frames, f"{corpus_id(log)}: {arrows} arrows in the flow for {frames} frames"
        diagrams += drawn
    return check(mermaid, diagrams)


#: One message line of a diagram.
ARROW = re.compile(r"^    [INR]--?(?:>>|x)[INR]: ", re.M)


def _failures(results: dict[str, dict], names: list[str]) -> str:
    """Each failed diagram: its transcript, the line Mermaid points at and Mermaid's message."""
    return "\n\n".join(f"{n}: at diagram line {results[n].get('line')!r} Mermaid says:\n{results[n]['error']}"
                       for n in names if not results[n]["ok"])


def test_the_example_doc_diagram_parses(checked: dict[str, dict]) -> None:
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE_NAME} is missing")
    results = checked
    assert results[EXAMPLE_NAME]["ok"], _failures(results, [EXAMPLE_NAME])
    assert results[EXAMPLE_NAME]["type"] == "sequence"


def test_hostile_labels_add_no_directive_and_no_statement(checked: dict[str, dict]) -> None:
    """Labels carrying ``%%{init}%%``, ``-->``, ``;``, ``#``, ``#59;``, ``<script>`` and line breaks: Mermaid
    parses the diagram, applies no directive (its config stays empty), reads exactly one message per frame
    between the right participants, and every line is one of the statements the renderer writes."""
    results = checked
    frames = list(hostile().frames())
    expected = [[f.role[0].upper(), "N"] if f.sender == "client" else ["N", f.role[0].upper()] for _, f in frames]
    text = r"(?:[^%;#<>\n]|#(?:59|35|37|lt|gt);)*"  # only the renderer's entity codes
    statement = re.compile(rf"sequenceDiagram|    participant [INR] as (initiator|node|responder)"
                           rf"|    rect rgba\([0-9, .]+\)|    note over I,R: {text}|    Note over [IR]: {text}"
                           rf"|    end|    autonumber \d+|    [INR]--?(?:>>|x)[INR]: {text}")
    for name in (HOSTILE_NAME, f"{HOSTILE_NAME} --hide info"):
        result = results[name]
        assert result["ok"], _failures(results, [name])
        assert result["type"] == "sequence" and result["config"] == {}, result
        lines = result["text"].splitlines()
        assert [line for line in lines if not statement.fullmatch(line)] == []
        assert "%%" not in result["text"]
        shown = expected if name == HOSTILE_NAME else [
            m for m, (_, f) in zip(expected, frames, strict=True) if f.info_event is None]
        assert result["messages"] == shown
        assert result["notes"] == 4 + (1 if name == HOSTILE_NAME else 0)  # opens, closes, phase name
    everything = results[f"{HOSTILE_NAME} --hide info,get,ping,message"]
    assert everything["ok"] and everything["config"] == {}, everything
    numbers = [int(n) for n in re.findall(r"^    autonumber (\d+)$", everything["text"], re.M)]
    assert numbers[0] == 3 and len(everything["messages"]) == len(frames) - 2  # frames 1, 2 are info events


def test_every_corpus_doc_diagram_parses(checked: dict[str, dict]) -> None:
    logs = [corpus_id(p) for p in corpus_logs()]
    if not logs:
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    results = checked
    names = [n for log in logs for n in _parts(results, log)]
    assert not _failures(results, names), _failures(results, names)
    assert {results[n]["type"] for n in names} == {"sequence"}
    too_long = {n: results[n]["too_long"] for n in names if "too_long" in results[n]}
    assert not too_long, f"longer than Mermaid's default maxTextSize (a page shows an error instead): {too_long}"
    split = [log for log in logs if len(_parts(results, log)) > 1]
    assert split, "no corpus flow is long enough to be drawn in parts: the parts are not checked"


def test_broken_diagrams_are_reported_with_mermaids_message(mermaid: Path) -> None:
    """Negative control: the same parser run rejects an unclosed ``rect`` and a label broken by a raw
    ``;`` or line break (what the renderer's sanitising prevents), and accepts the intact diagram."""
    good = ("sequenceDiagram\n    participant I as initiator\n    participant N as node\n"
            "    rect rgba(0, 0, 255, .1)\n    note over I,N: Opening\n    N-->>I: channels.info: fsm_up\n"
            "    end\n")
    diagrams = [
        {"name": "intact", "text": good},
        {"name": "unclosed rect", "text": good.removesuffix("    end\n")},
        {"name": "raw semicolon", "text": good.replace("info: fsm_up", "info; fsm_up")},
        {"name": "raw line break", "text": good.replace("info: fsm_up", "info:\nfsm_up")},
    ]
    results = check(mermaid, diagrams)
    assert results["intact"]["ok"] and results["intact"]["type"] == "sequence"
    for name in ("unclosed rect", "raw semicolon", "raw line break"):
        assert not results[name]["ok"], name
        assert results[name]["error"].startswith("Parse error on line "), results[name]
