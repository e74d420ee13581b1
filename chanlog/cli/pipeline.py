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

import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from chanlog.errors import ChanlogError
from chanlog.model import Transcript

#: The source checkout this module belongs to (``transcripts/`` lives there).
REPO = Path(__file__).resolve().parents[2]
#: The shipped example transcript: the source checkout's, else the copy inside the wheel.
EXAMPLE = REPO / "transcripts" / "init_per_group.yaml"
if not EXAMPLE.is_file():  # installed from a wheel: pyproject.toml force-includes it as chanlog/examples/
    EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "init_per_group.yaml"
#: The mitmproxy script shipped inside the package (``chanlog addon-path`` prints it); a clone also has
#: ``addons/channel.py``, which loads the same recorder.
ADDON = Path(__file__).resolve().parents[1] / "addons" / "channel.py"
#: What to install when mitmproxy (``mitmdump``) is missing: the recording extra.
RECORD_EXTRA = "pip install 'chanlog[record]'"
DEFAULT_TIMEOUT = 60.0
#: Lines of a process's output quoted in an error.
QUOTE_LINES = 15


class DemoError(ChanlogError):
    """A piece of the pipeline is missing or a stage failed; ``where`` names the stage."""

    def __init__(self, message: str, where: str | None = None, processes: list[Process] | None = None) -> None:
        super().__init__(message, where)
        self.processes = processes or []
        """The processes the demo had started (all stopped by the time the error is raised)."""


@dataclass
class Process:
    """A child process the demo started; its output goes to ``log``."""

    name: str
    """The stage: ``fake node``, ``mitmdump``, ``play``."""
    args: list[str]
    """The command line."""
    log: Path
    """File receiving its standard error (and standard output, except for the fake node's URL line)."""
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once it has ended (negative: killed by that signal), else ``None``."""
        return self.popen.poll() if self.popen is not None else None

    def output(self) -> str:
        """The last :data:`QUOTE_LINES` lines it wrote."""
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-QUOTE_LINES:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; reaps it. Does nothing once it has ended."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout)


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


def find_mitmdump(explicit: Path | None = None) -> Path:
    """``explicit``, else ``mitmdump`` beside the Python interpreter, else on ``PATH``; :class:`DemoError`
    when there is none."""
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise DemoError(f"{explicit} is not an executable file", "mitmdump")
        return explicit
    beside = Path(sys.executable).with_name("mitmdump")
    if beside.is_file():
        return beside
    found = shutil.which("mitmdump")
    if found is None:
        raise DemoError(f"mitmdump is not installed ({RECORD_EXTRA}), or give --mitmdump PATH", "mitmdump")
    return Path(found)


def addon_path() -> Path:
    """The mitmproxy script shipped in the package (:data:`ADDON`), for ``mitmdump -s``; :class:`DemoError`
    when the installation lacks it."""
    if not ADDON.is_file():
        raise DemoError(f"the recorder script {ADDON} is missing from this installation; reinstall chanlog",
                        "addon")
    return ADDON


def mitmproxy_installed() -> bool:
    """True when the ``mitmproxy`` package (the recording extra) can be imported by this Python."""
    import importlib.util

    return importlib.util.find_spec("mitmproxy") is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        proxy_port = _start_recorder(mitm, addon, url, record, workdir, timeout, processes)
        proxy_url = f"ws://127.0.0.1:{proxy_port}/channel"
        say(f"recorder: mitmdump -s {addon} listening at {proxy_url}, recording into {record}")
        play_summary = _play(source, proxy_url, workdir, timeout, processes)
        say(f"play: {play_summary.splitlines()[0] if play_summary else 'done'}")
        node_summary = _wait_for_node(node, timeout, processes)
        say(f"fake node: {_session_line(node_summary)}")
        recordings = _stop_recorder(processes[1], record, timeout, processes)
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


def _spawn(name: str, args: list[str], workdir: Path, processes: list[Process], *,
           pipe_stdout: bool = False) -> Process:
    proc = Process(name, args, workdir / f"{name.replace(' ', '-')}.log")
    with open(proc.log, "wb") as log:
        try:
            proc.popen = subprocess.Popen(args, stdout=subprocess.PIPE if pipe_stdout else log,
                                          stderr=log if pipe_stdout else subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise DemoError(f"cannot start {args[0]}: {exc.strerror or exc}", name, processes) from None
    processes.append(proc)
    return proc


def _failed(proc: Process, message: str, processes: list[Process]) -> DemoError:
    for p in reversed(processes):
        p.stop()
    out = proc.output()
    return DemoError(message + (f"; it said:\n{out}" if out else ""), proc.name, processes)


def _chanlog(*args: str) -> list[str]:
    return [sys.executable, "-m", "chanlog", *args]


def _start_fake_node(source: Path, workdir: Path, timeout: float, processes: list[Process]) -> tuple[Process, str]:
    node = _spawn("fake node", _chanlog("replay", str(source), "--port", "0", "--sessions", "1",
                                        "--timeout", f"{timeout:g}", "-v"), workdir, processes, pipe_stdout=True)
    assert node.popen is not None and node.popen.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(node.popen.stdout, selectors.EVENT_READ)
    ready = sel.select(timeout)
    sel.close()
    line = node.popen.stdout.readline().decode(errors="replace").strip() if ready else ""
    if not line.startswith("ws://"):
        if not ready:
            raise _failed(node, f"printed no URL within {timeout:g} s", processes)
        raise _failed(node, f"printed {line!r} instead of its URL (exit status {node.returncode})", processes)
    return node, line


def _start_recorder(mitm: Path, addon: Path, node_url: str, record: Path, workdir: Path, timeout: float,
                    processes: list[Process]) -> int:
    upstream = node_url.split("://", 1)[1].split("/", 1)[0]
    port = free_port()
    proxy = _spawn("mitmdump", [str(mitm), "-s", str(addon), "--mode",
                                f"reverse:http://{upstream}@127.0.0.1:{port}", "--set", f"chanlog_dir={record}",
                                "--set", "flow_detail=0"], workdir, processes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.returncode is not None:
            raise _failed(proxy, f"exited with status {proxy.returncode} before listening", processes)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return port
        except OSError:
            time.sleep(0.1)
    raise _failed(proxy, f"did not listen on 127.0.0.1:{port} within {timeout:g} s", processes)


def _play(source: Path, url: str, workdir: Path, timeout: float, processes: list[Process]) -> str:
    player = _spawn("play", _chanlog("play", str(source), "--url", url, "--timeout", f"{timeout / 4:g}"),
                    workdir, processes)
    return _wait_ok(player, timeout, processes, "did not finish", "the flow through the proxy diverged")


def _stop_recorder(proxy: Process, record: Path, timeout: float, processes: list[Process]) -> list[Path]:
    """Stop mitmdump cleanly (its ``done`` hook writes what is still open) and list the transcripts it
    wrote; the recorder writes a session's transcript once both participants have closed."""
    proxy.stop(timeout)
    found = sorted(record.glob("*.yaml"))
    if not found:
        raise _failed(proxy, f"wrote no transcript into {record}", processes)
    return found


def _wait_for_node(node: Process, timeout: float, processes: list[Process]) -> str:
    return _wait_ok(node, timeout, processes, "did not end its session", "the session diverged")


def _wait_ok(proc: Process, timeout: float, processes: list[Process], late: str, failed: str) -> str:
    """Wait up to ``timeout`` seconds for ``proc`` to exit with status 0 and return its output; else raise
    :class:`DemoError` (``late`` or ``failed`` saying what that means for this stage)."""
    assert proc.popen is not None
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        raise _failed(proc, f"{late} within {timeout:g} s", processes) from None
    if proc.returncode != 0:
        raise _failed(proc, f"exited with status {proc.returncode}: {failed}", processes)
    return proc.output()
