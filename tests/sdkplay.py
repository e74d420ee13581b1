"""Play one node log with the real JavaScript SDK against ``chanlog replay``: shared by ``tests/test_sdk_e2e.py``
and ``benchmarks/sdk_coverage.py``.

:func:`prepare` imports a log (with the nearest ``init_per_group`` log as prelude when it starts on an open
channel), writes it as a YAML transcript and makes the SDK's action script from its ``sdk14`` transformation;
:func:`play` serves it with ``chanlog replay --compat sdk14`` (a real process on loopback) and runs
``tests/sdk/driver.mjs`` (both participants as real SDK ``Channel`` objects in one Node.js process), and says
how it went (:class:`Outcome`). Nothing here skips or fails a test: callers decide.
"""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chanlog.model import Transcript
from chanlog.replay import compat, starts_on_open_channel, with_prelude
from chanlog.replay.actions import action_script
from chanlog.sources.nodelog import import_file
from chanlog.transcript import dump

SDK_DIR = Path(__file__).resolve().parent / "sdk"
DRIVER = SDK_DIR / "driver.mjs"
PRELUDE_NAME = "init_per_group.md"

_SUMMARY = re.compile(r"(\d+) node frames sent, (\d+) client frames matched, (\d+) responses withheld "
                      r"\(notifications\), (\d+) skipped")
_DIVERGENCE = re.compile(r"^(?:chanlog\.replay: )?divergence at (.*)$", re.M)


def nearest_prelude(log: Path, root: Path) -> Path | None:
    """The ``init_per_group.md`` in ``log``'s folder, else in a parent folder up to ``root``; ``None`` when
    there is none (or ``log`` is one)."""
    folder = log.resolve().parent
    root = root.resolve()
    while True:
        candidate = folder / PRELUDE_NAME
        if candidate.is_file() and candidate != log.resolve():
            return candidate
        if folder == root or root not in folder.parents:
            return None
        folder = folder.parent


@dataclass
class Prepared:
    """A log ready to play."""

    log: Path
    transcript: Transcript
    """What the fake node is given (prelude joined, not yet transformed)."""
    script: dict[str, Any]
    """The SDK's action script (from the sdk14 transformation)."""
    prelude: Path | None
    prelude_frames: int
    frames: int
    """Frames of the log itself (without the prelude)."""


def prepare(log: Path, root: Path) -> Prepared:
    """Import ``log`` (prelude: :func:`nearest_prelude` under ``root``, when it starts on an open channel)."""
    transcript = import_file(log)
    frames = sum(1 for _ in transcript.frames())
    prelude, prelude_frames = None, 0
    if starts_on_open_channel(transcript):
        prelude = nearest_prelude(log, root)
        if prelude is not None:
            opening = import_file(prelude)
            prelude_frames = sum(1 for _ in opening.frames())
            transcript = with_prelude(opening, transcript)
    script = action_script(compat.apply(transcript, "sdk14").transcript, "sdk14")
    return Prepared(log, transcript, script, prelude, prelude_frames, frames)


@dataclass
class Outcome:
    """How one play went."""

    ok: bool
    """The driver did every step and got every node frame, and the fake node matched every client frame."""
    played: int
    """Frames of the whole script played (node frames sent + client frames matched + withheld + skipped)."""
    total: int
    """Frames of the whole script (prelude included)."""
    first_problem: str
    """The first divergence the fake node reported, else the SDK's first error, else where the driver stopped."""
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    """The driver's JSON summary (empty when it wrote none)."""
    node_exit: int | None = None
    node_stderr: str = ""


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str | None:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    if not sel.select(timeout):
        return None
    line = proc.stdout.readline().strip()  # type: ignore[union-attr]
    return line if line.startswith("ws://") else None


def play(prepared: Prepared, sdk: Path, workdir: Path, *, mode: str = "strict", node_timeout: float = 10,
         driver_timeout: float = 60, linger: float = 0, compat: str | None = "sdk14",
         fresh_accounts: bool = False, wrong_key: bool = False, verbose: bool = False) -> Outcome:
    """Serve ``prepared`` with ``chanlog replay --compat COMPAT --mode MODE`` (no ``--compat`` when ``None``)
    and play it with the SDK; the driver's script is made for the sdk14 transformation either way.

    ``fresh_accounts``: both SDK clients use freshly generated key pairs and the node runs with ``--rebind``
    (``-v``: its stderr shows the mapping); ``wrong_key``: they sign with other keys than their URLs name."""
    start = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "transcript.yaml"
    dump(prepared.transcript, path)
    script_path = workdir / "script.json"
    script_path.write_text(json.dumps(prepared.script))
    total = sum(1 for _ in prepared.transcript.frames())
    proc = subprocess.Popen([sys.executable, "-m", "chanlog", "replay", str(path), "--port", "0", "--mode", mode,
                             "--sessions", "1", "--timeout", str(node_timeout),
                             *(("--compat", compat) if compat else ()),
                             *(("--rebind", "-v") if fresh_accounts else ()), *(("-vv",) if verbose else ())],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    summary: dict[str, Any] = {}
    try:
        url = _read_url(proc, 30)
        if url is None:
            proc.kill()
            _, err = proc.communicate()
            return Outcome(False, 0, total, f"chanlog replay did not start: {err[-500:]}", time.monotonic() - start,
                           node_exit=proc.returncode, node_stderr=err)
        try:
            done = subprocess.run(["node", str(DRIVER), "--sdk", str(sdk), "--url", url, "--script", str(script_path),
                                   "--timeout", str(driver_timeout), "--linger", str(linger),
                                   *(("--fresh-accounts",) if fresh_accounts else ()),
                                   *(("--wrong-key",) if wrong_key else ())],
                                  capture_output=True, text=True, timeout=driver_timeout + linger + 20)
            lines = done.stdout.strip().splitlines()
            try:
                summary = json.loads(lines[-1]) if lines else {}
            except ValueError:
                summary = {}
            if summary:
                summary["exit"] = done.returncode
            else:
                summary = {"ok": False, "exit": done.returncode, "errors": [{"error": done.stderr[-1000:]}],
                           "waiting_for": "the driver wrote no summary"}
        except subprocess.TimeoutExpired:
            summary = {"ok": False, "exit": None, "errors": [], "waiting_for": "the driver did not exit"}
        try:
            _, err = proc.communicate(timeout=node_timeout + 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    played = 0
    match = _SUMMARY.search(err)
    if match:
        played = sum(int(g) for g in match.groups())
    divergence = _DIVERGENCE.search(err)
    ok = bool(summary.get("ok")) and summary.get("exit") == 0 and proc.returncode == 0 and not summary.get("errors")
    if divergence:
        problem = "divergence at " + divergence.group(1)
    elif summary.get("errors"):
        problem = "SDK: " + str(summary["errors"][0].get("error", ""))
    elif not ok:
        problem = str(summary.get("waiting_for") or f"chanlog replay exit {proc.returncode}")
    else:
        problem = ""
    return Outcome(ok, played, total, problem.splitlines()[0][:300] if problem else "", time.monotonic() - start,
                   summary, proc.returncode, err)
