"""The pipeline behind ``chanlog demo`` (:mod:`chanlog.cli.demo`): every stage on the shipped example, with
real processes on loopback.

::

    transcripts/init_per_group.yaml ──► chanlog replay   (the fake node, a free port)
                                              ▲
    chanlog play ──ws──► mitmdump -s ADDON               (reverse proxy in front of it, a free port)
                               └──► journal ──► recorded transcript (YAML) ──► chanlog.render (doc layout)

1. ``chanlog replay EXAMPLE --port 0 --sessions 1`` serves the example as a fake node;
2. ``mitmdump -s ADDON --mode reverse:...`` (:data:`ADDON`, the script ``chanlog addon-path`` prints)
   records everything that passes through it into a working directory (``chanlog_dir``);
3. ``chanlog play EXAMPLE --url ws://PROXY/channel`` plays both participants' client side through the
   proxy, so the fake node and the player check each other frame by frame;
4. once the fake node has ended its session, mitmdump is stopped cleanly; the recorded transcript is
   loaded, compared with the example (:func:`chanlog.diff.diff_transcripts`: equal but for volatile
   values) and rendered (:func:`chanlog.render.render`) under the session's name (the example's
   ``name``, not the recorder's file stem). A flow that opens several channels is recorded
   as one transcript per channel: the demo then stops with :class:`DemoError` naming the files.

Every stage is bounded by ``timeout`` seconds. Every process the demo starts is stopped when it ends,
whatever happened (SIGTERM, then SIGKILL), and reaped. A missing piece (the example, ``mitmdump``, the
addon) or a failed stage raises :class:`DemoError` naming the stage and quoting the process output.
"""

from __future__ import annotations

import selectors
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from chanlog.model import Transcript
from chanlog.record.process import (  # noqa: F401 - re-exported: chanlog.cli.addon and the tests use them
    ADDON,
    RECORD_EXTRA,
    Process,
    ProcessError,
    addon_path,
    failed,
    find_mitmdump,
    free_port,
    mitmproxy_installed,
    spawn,
    start_recorder,
    stop_recorder,
)

#: The source checkout this module belongs to (``transcripts/`` lives there).
REPO = Path(__file__).resolve().parents[2]
#: The shipped example transcript: the source checkout's, else the copy inside the wheel.
EXAMPLE = REPO / "transcripts" / "init_per_group.yaml"
if not EXAMPLE.is_file():  # installed from a wheel: pyproject.toml force-includes it as chanlog/examples/
    EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "init_per_group.yaml"
DEFAULT_TIMEOUT = 60.0


#: The error of every stage (the recorder's process machinery raises it): ``where`` names the stage.
DemoError = ProcessError

@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    recorded: Path
    """The transcript file the recorder wrote."""
    transcript: Transcript
    """The recorded transcript."""
    document: str
    """The recorded transcript rendered (Markdown), titled by the played session's name."""
    differences: list[str]
    """:func:`chanlog.diff.diff_transcripts` of the example and the recording; empty when equal."""
    play_summary: str
    """What ``chanlog play`` printed."""
    node_summary: str
    """What the fake node reported at its end."""
    processes: list[Process]
    """The processes the demo started (all stopped)."""


def run_demo(workdir: Path, *, transcript: Path | None = None, timeout: float = DEFAULT_TIMEOUT,
             mitmdump: Path | None = None, layout: str = "doc",
             progress: Callable[[str], None] | None = None) -> DemoResult:
    """Run the pipeline (module docstring) on ``transcript`` (default: :data:`EXAMPLE`; a YAML transcript or
    a node Markdown log) in ``workdir``.

    ``workdir`` receives the recording (``record/``: the transcript and its journal) and the processes'
    logs (``*.log``). ``progress`` is called with one line per stage. ``timeout`` bounds each stage, in
    seconds. Returns a :class:`DemoResult`; raises :class:`DemoError` (stage in ``where``) when a piece is
    missing or a stage fails, after stopping every process it started.
    """
    from chanlog.diff import diff_transcripts
    from chanlog.render import render
    from chanlog.replay import load_transcript
    from chanlog.transcript import load

    say = progress or (lambda line: None)
    source = transcript if transcript is not None else EXAMPLE
    if transcript is not None and not source.is_file():
        raise DemoError("cannot read: No such file or directory", str(source))
    if not source.is_file():
        raise DemoError(f"the example transcript {source} is missing; give one with --transcript", "transcript")
    original = load_transcript(source)  # bad input fails here, before any process starts
    mitm = find_mitmdump(mitmdump)
    workdir.mkdir(parents=True, exist_ok=True)
    record = workdir / "record"
    record.mkdir(exist_ok=True)
    addon = addon_path()
    processes: list[Process] = []
    try:
        node, url = _start_fake_node(source, workdir, timeout, processes)
        say(f"fake node: {url} serving {source}")
        proxy_port = start_recorder(mitm, addon, url, record, workdir, timeout, processes)
        proxy_url = f"ws://127.0.0.1:{proxy_port}/channel"
        say(f"recorder: mitmdump -s {addon} listening at {proxy_url}, recording into {record}")
        play_summary = _play(source, proxy_url, workdir, timeout, processes)
        say(f"play: {play_summary.splitlines()[0] if play_summary else 'done'}")
        node_summary = _wait_for_node(node, timeout, processes)
        say(f"fake node: {_session_line(node_summary)}")
        recordings = stop_recorder(processes[1], record, timeout, processes)
        say("recorded: " + ", ".join(str(p) for p in recordings))
    finally:
        for proc in reversed(processes):
            proc.stop()
    if len(recordings) > 1:  # one transcript per channel: the flow opened several channels
        raise DemoError(f"the recorder wrote {len(recordings)} transcripts (one per channel session): "
                        + ", ".join(p.name for p in recordings) + "; the demo compares and renders one session",
                        "recording", processes)
    recorded_path = recordings[0]
    recorded = load(recorded_path)
    differences = diff_transcripts(original, recorded, str(source), str(recorded_path))
    say("diff against the original: " + ("equal (volatile values ignored)" if not differences
                                         else f"{len(differences)} lines differ"))
    # titled by the session played (its name), not by the recorder's file stem
    document = render(replace(recorded, name=original.name), layout=layout)
    return DemoResult(recorded_path, recorded, document, differences, play_summary, node_summary, processes)


def _session_line(summary: str) -> str:
    """The fake node's verdict line (``session 1 (...): played to the end; ...``) from its output."""
    return next((line for line in summary.splitlines() if line.startswith("session ")), "ended")


def _chanlog(*args: str) -> list[str]:
    return [sys.executable, "-m", "chanlog", *args]


def _start_fake_node(source: Path, workdir: Path, timeout: float, processes: list[Process]) -> tuple[Process, str]:
    node = spawn("fake node", _chanlog("replay", str(source), "--port", "0", "--sessions", "1",
                                        "--timeout", f"{timeout:g}", "-v"), workdir, processes, pipe_stdout=True)
    assert node.popen is not None and node.popen.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(node.popen.stdout, selectors.EVENT_READ)
    ready = sel.select(timeout)
    sel.close()
    line = node.popen.stdout.readline().decode(errors="replace").strip() if ready else ""
    if not line.startswith("ws://"):
        if not ready:
            raise failed(node, f"printed no URL within {timeout:g} s", processes)
        raise failed(node, f"printed {line!r} instead of its URL (exit status {node.returncode})", processes)
    return node, line


def _play(source: Path, url: str, workdir: Path, timeout: float, processes: list[Process]) -> str:
    player = spawn("play", _chanlog("play", str(source), "--url", url, "--timeout", f"{timeout / 4:g}"),
                    workdir, processes)
    return _wait_ok(player, timeout, processes, "did not finish", "the flow through the proxy diverged")


def _wait_for_node(node: Process, timeout: float, processes: list[Process]) -> str:
    return _wait_ok(node, timeout, processes, "did not end its session", "the session diverged")


def _wait_ok(proc: Process, timeout: float, processes: list[Process], late: str, diverged: str) -> str:
    """Wait up to ``timeout`` seconds for ``proc`` to exit with status 0 and return its output; else raise
    :class:`DemoError` (``late`` or ``diverged`` saying what that means for this stage)."""
    assert proc.popen is not None
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        raise failed(proc, f"{late} within {timeout:g} s", processes) from None
    if proc.returncode != 0:
        raise failed(proc, f"exited with status {proc.returncode}: {diverged}", processes)
    return proc.output()
