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
from chanlog.transcript import dump, load

SDK_DIR = Path(__file__).resolve().parent / "sdk"
DRIVER = SDK_DIR / "driver.mjs"
PRELUDE_NAME = "init_per_group.md"

_SUMMARY = re.compile(r"(\d+) node frames sent, (\d+) client frames matched, (\d+) responses withheld "
                      r"\(notifications\), (\d+) skipped")
_DIVERGENCE = re.compile(r"^(?:chanlog\.replay: )?divergence at (.*)$", re.M)


#: Folders above a log searched for its group's ``init_per_group.md``: the node's Common Test suites nest groups
#: (``both_sign/conflicts`` runs after ``both_sign``'s init_per_group), each group a folder of the log tree; a
#: bound on the walk, far above the nesting the suites use (2 levels).
MAX_PRELUDE_LEVELS = 8


def nearest_prelude(log: Path, root: Path | None = None) -> Path | None:
    """The ``init_per_group.md`` in ``log``'s folder, else in the nearest parent folder (up to ``root`` when
    given, else up to :data:`MAX_PRELUDE_LEVELS` folders up); ``None`` when there is none (or ``log`` is one).
    The search does not stop at the folder a log was given from: a single log of a nested group folder finds
    its group's prelude in a parent folder (issue 24)."""
    log = log.resolve()
    folder = log.parent
    root = root.resolve() if root is not None else None
    for _ in range(MAX_PRELUDE_LEVELS + 1):
        candidate = folder / PRELUDE_NAME
        if candidate.is_file() and candidate != log:
            return candidate
        if folder == root or folder.parent == folder or (root is not None and root not in folder.parents):
            return None
        folder = folder.parent
    return None


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


def prepare(log: Path, root: Path | None = None) -> Prepared:
    """Import ``log`` (prelude: :func:`nearest_prelude`, under ``root`` when given, when it starts on an open
    channel)."""
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


def _start(args: list[str], timeout: float = 30) -> tuple[subprocess.Popen[str], str | None]:
    """``python -m chanlog ARGS`` with its standard output and error piped, and the URL line it printed
    (``None`` when it printed none within ``timeout`` seconds)."""
    proc = subprocess.Popen([sys.executable, "-m", "chanlog", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    return proc, _read_url(proc, timeout)


def _end(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait up to ``timeout`` seconds for ``proc`` to exit (then kill it) and return its standard error."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def _drive(sdk: Path, url: str, script_path: Path, driver_timeout: float, linger: float, fresh_accounts: bool,
           wrong_key: bool) -> dict[str, Any]:
    """Run ``tests/sdk/driver.mjs`` against ``url``; its JSON summary (with ``exit``)."""
    try:
        done = subprocess.run(["node", str(DRIVER), "--sdk", str(sdk), "--url", url, "--script", str(script_path),
                               "--timeout", str(driver_timeout), "--linger", str(linger),
                               *(("--fresh-accounts",) if fresh_accounts else ()),
                               *(("--wrong-key",) if wrong_key else ())],
                              capture_output=True, text=True, timeout=driver_timeout + linger + 20)
    except subprocess.TimeoutExpired:
        return {"ok": False, "exit": None, "errors": [], "waiting_for": "the driver did not exit"}
    lines = done.stdout.strip().splitlines()
    try:
        summary = json.loads(lines[-1]) if lines else {}
    except ValueError:
        summary = {}
    if summary:
        summary["exit"] = done.returncode
        return summary
    return {"ok": False, "exit": done.returncode, "errors": [{"error": done.stderr[-1000:]}],
            "waiting_for": "the driver wrote no summary"}


def _node_args(path: Path, mode: str, node_timeout: float, compat: str | None, fresh_accounts: bool,
               verbose: bool) -> list[str]:
    return ["replay", str(path), "--port", "0", "--mode", mode, "--sessions", "1", "--timeout", str(node_timeout),
            *(("--compat", compat) if compat else ()), *(("--rebind", "-v") if fresh_accounts else ()),
            *(("-vv",) if verbose else ())]


def _outcome(summary: dict[str, Any], node_exit: int | None, err: str, total: int, start: float) -> Outcome:
    played = 0
    match = _SUMMARY.search(err)
    if match:
        played = sum(int(g) for g in match.groups())
    divergence = _DIVERGENCE.search(err)
    ok = bool(summary.get("ok")) and summary.get("exit") == 0 and node_exit == 0 and not summary.get("errors")
    if divergence:
        problem = "divergence at " + divergence.group(1)
    elif summary.get("errors"):
        problem = "SDK: " + str(summary["errors"][0].get("error", ""))
    elif not ok:
        problem = str(summary.get("waiting_for") or f"chanlog replay exit {node_exit}")
    else:
        problem = ""
    return Outcome(ok, played, total, problem.splitlines()[0][:300] if problem else "", time.monotonic() - start,
                   summary, node_exit, err)


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
    proc, url = _start(_node_args(path, mode, node_timeout, compat, fresh_accounts, verbose))
    try:
        if url is None:
            proc.kill()
            _, err = proc.communicate()
            return Outcome(False, 0, total, f"chanlog replay did not start: {err[-500:]}", time.monotonic() - start,
                           node_exit=proc.returncode, node_stderr=err)
        summary = _drive(sdk, url, script_path, driver_timeout, linger, fresh_accounts, wrong_key)
        err = _end(proc, node_timeout + 20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return _outcome(summary, proc.returncode, err, total, start)


@dataclass
class RoundTrip:
    """How a self round trip went (:func:`self_roundtrip`)."""

    recording: Outcome
    """The SDK against the stand-in node through ``chanlog replay --record-mode once`` (the stand-in's verdict)."""
    recorder_exit: int | None
    recorder_stderr: str
    replay: Outcome | None
    """The SDK against the recorded transcript, strict, without compat (``None`` when nothing was recorded)."""
    recorded: Path

    @property
    def ok(self) -> bool:
        return (self.recording.ok and self.recorder_exit == 0 and self.replay is not None and self.replay.ok
                and self.replay.played == self.replay.total)

    @property
    def first_problem(self) -> str:
        if not self.recording.ok:
            return "recording: " + self.recording.first_problem
        if self.recorder_exit != 0:
            lines = [line for line in self.recorder_stderr.splitlines() if "error" in line]
            return f"recorder exit {self.recorder_exit}: " + (lines[-1] if lines else self.recorder_stderr[-300:])
        assert self.replay is not None
        if not self.replay.ok:
            return "replay of the recording: " + self.replay.first_problem
        if self.replay.played != self.replay.total:
            return f"replay of the recording: {self.replay.played}/{self.replay.total} frames played"
        return ""


def self_roundtrip(prepared: Prepared, sdk: Path, workdir: Path, *, node_timeout: float = 10,
                   driver_timeout: float = 60, fresh_accounts: bool = False, grace: float = 1.0) -> RoundTrip:
    """Record the SDK's own run and replay it to the SDK (issue 24): the stand-in node (``chanlog replay
    --compat sdk14`` of ``prepared``, ``--rebind`` with ``fresh_accounts``) is recorded through ``chanlog replay
    RECORDED --record-mode once --node STAND-IN`` while the SDK plays the log; then RECORDED is served
    strictly **without** compat (``--rebind`` and other fresh keys with ``fresh_accounts``) and the SDK plays
    it again, to the end. Never raises for a failed step: the :class:`RoundTrip` says which failed."""
    start = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "transcript.yaml"
    dump(prepared.transcript, path)
    script_path = workdir / "script.json"
    script_path.write_text(json.dumps(prepared.script))
    recorded = workdir / "recorded.yaml"
    total = sum(1 for _ in prepared.transcript.frames())
    node, node_url = _start(_node_args(path, "strict", node_timeout, "sdk14", fresh_accounts, False))
    recorder: subprocess.Popen[str] | None = None
    rec_err = ""
    try:
        if node_url is None:
            node.kill()
            _, err = node.communicate()
            failed = Outcome(False, 0, total, f"the stand-in did not start: {err[-500:]}", time.monotonic() - start,
                             node_exit=node.returncode, node_stderr=err)
            return RoundTrip(failed, None, "", None, recorded)
        recorder, url = _start(["replay", str(recorded), "--record-mode", "once", "--node", node_url, "--port", "0",
                                "--grace", str(grace)])
        if url is None:
            summary = {"ok": False, "exit": None, "errors": [], "waiting_for": "the recorder printed no URL"}
        else:
            summary = _drive(sdk, url, script_path, driver_timeout, 0, fresh_accounts, False)
        err = _end(node, node_timeout + 20)
        rec_err = _end(recorder, node_timeout + 60)
    finally:
        for proc in (node, recorder):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    recording = _outcome(summary, node.returncode, err, total, start)
    if recorder.returncode != 0 or not recorded.is_file():
        return RoundTrip(recording, recorder.returncode, rec_err, None, recorded)
    again = Prepared(prepared.log, load(recorded), prepared.script, prepared.prelude, prepared.prelude_frames,
                     prepared.frames)
    replayed = play(again, sdk, workdir / "replay", node_timeout=node_timeout, driver_timeout=driver_timeout,
                    compat=None, fresh_accounts=fresh_accounts)
    return RoundTrip(recording, recorder.returncode, rec_err, replayed, recorded)
