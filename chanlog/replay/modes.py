"""Record once, replay on every run: the record modes of ``chanlog replay`` and the pytest plugin.

The names and their meaning are those of VCR.py's record modes as pytest-recording exposes them
(``--record-mode``; VCR.py "Record Modes": ``none``, ``once``, ``all``; its ``new_episodes`` has no meaning
for a script that must be played whole, so it is not offered):

* ``none`` (the default): serve TRANSCRIPT (the fake node); a missing TRANSCRIPT is an error saying how to
  record it;
* ``once``: record when TRANSCRIPT does not exist, serve it when it does;
* ``all``: always record, replacing TRANSCRIPT (only once a complete recording is in hand).

Recording (:class:`Recorder`) runs the shipped recorder, ``mitmdump -s ADDON`` (the ``record`` extra;
:mod:`chanlog.record.process`), as a reverse proxy in front of the node on the address the fake node would
listen on, and gives the client the same URL line the fake node prints (``ws://HOST:PORT/PATH``, the node
URL's path), so a client's test is the same in both modes. The run is over once at least one connection
came, every connection has closed, every session's transcript is written, and no connection opened for
``grace`` seconds (a reconnect may follow a close: the fake node's ``grace`` is the time given to what may
legitimately never come); or when the caller stops it (a signal). The recorder's channel sessions are then
joined into TRANSCRIPT (:mod:`chanlog.record.combine`: one transcript, every session's connections, served
again in the recorded order). A recording that is not a complete fixture (nothing recorded, a session still
open when it was stopped, frames lost) raises :class:`RecordingError` and writes nothing: TRANSCRIPT is
left as it was (absent, or the previous recording), and the recorder's folder is kept for a look.
"""

from __future__ import annotations

import enum
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from chanlog.record.combine import Combined, RecordingError, combine, run_state
from chanlog.record.process import (
    Process,
    ProcessError,
    addon_path,
    find_mitmdump,
    node_parts,
    start_recorder,
)
from chanlog.replay.errors import ReplayError

#: Seconds between two looks at the recorder's journals (a look costs a few system calls per session).
POLL = 0.1
#: Seconds to wait for mitmdump to listen, for the node to accept a TCP connection, and for mitmdump to
#: write what is still open once stopped.
START_TIMEOUT = 30.0
#: Seconds mitmdump may take to stop on SIGTERM (its ``done`` hook writes what is still open: with every
#: session ended, nothing) before it is killed; its journals are complete either way.
STOP_TIMEOUT = 10.0
#: Recorder options of a recording run: transcripts written in a thread of the proxy (``chanlog_writers=0``), not
#: by worker processes at idle CPU priority, which a busy machine (a test suite) starves: the run is over only
#: once they are written. A client's test session is small; live traffic is the client's own and is over.
RECORDER_OPTIONS = {"chanlog_writers": "0"}
#: What mitmdump logs for every connection to the node that failed (mitmproxy/proxy/server.py,
#: ``ConnectionHandler.open_connection``): a client it answered with an error instead of the node's frames.
UPSTREAM_FAILED = "error establishing server connection"
#: Failed connections to the node quoted in the error (the rest are counted).
MAX_QUOTED = 3
#: Seconds a TCP connection to the node may take before it counts as unreachable.
CONNECT_TIMEOUT = 5.0


class RecordMode(enum.StrEnum):
    """When ``chanlog replay`` records instead of serving (module docstring; pytest-recording's names)."""

    NONE = "none"
    ONCE = "once"
    ALL = "all"

    def records(self, transcript: Path) -> bool:
        """True when this mode records ``transcript`` rather than serving it."""
        return self is RecordMode.ALL or (self is RecordMode.ONCE and not transcript.exists())


def missing(transcript: Path, option: str = "--record-mode once --node ws://HOST:PORT/channel") -> ReplayError:
    """The error for a TRANSCRIPT that does not exist in mode ``none``, saying how to record it."""
    return ReplayError(f"no such transcript; record it from a node (or a stand-in: chanlog replay --compat "
                       f"sdk14 LOG) with {option}", str(transcript))


class Recorder:
    """One recording: mitmdump in front of ``node`` on ``host:port`` (0: a free port), then TRANSCRIPT.

    ``Recorder(transcript, node, host=, port=, grace=, mitmdump=None)``; :meth:`start` returns the URL
    clients use; :meth:`wait` blocks until the run is over (module docstring) or ``stop`` is set;
    :meth:`finish` stops mitmdump and writes TRANSCRIPT (:class:`RecordingError` when the recording is not a
    complete fixture). A :class:`~chanlog.record.process.ProcessError` when mitmdump is missing or does not
    start; :class:`ReplayError` when the node cannot be reached (nothing is started then).
    """

    def __init__(self, transcript: Path, node: str, *, host: str = "127.0.0.1", port: int = 0, grace: float = 2.0,
                 mitmdump: Path | None = None) -> None:
        self.transcript = Path(transcript)
        self.node = node
        self.host = host
        self.port = port
        self.grace = float(grace)
        self.mitmdump = mitmdump
        self.path = node_parts(node)[3]
        self.workdir: Path | None = None
        self.processes: list[Process] = []
        self.url: str | None = None
        self._state: tuple[tuple[str, int, bool], ...] = ()
        self._changed = time.monotonic()

    @property
    def folder(self) -> Path:
        """The recorder's ``chanlog_dir`` (journals and per-session transcripts)."""
        assert self.workdir is not None, "start() first"
        return self.workdir / "record"

    def start(self) -> str:
        """Check the node answers on TCP, start mitmdump in front of it and return ``ws://HOST:PORT/PATH``."""
        mitm = find_mitmdump(self.mitmdump)
        addon = addon_path()
        _, host, port, _ = node_parts(self.node)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise ReplayError(f"cannot reach the node to record from: {exc.strerror or exc}; nothing was recorded "
                              f"and {self.transcript} was left as it was", self.node) from None
        self.workdir = Path(tempfile.mkdtemp(prefix="chanlog-record-"))
        self.folder.mkdir()
        try:
            port = start_recorder(mitm, addon, self.node, self.folder, self.workdir, START_TIMEOUT, self.processes,
                                  listen_host=self.host, listen_port=self.port, options=RECORDER_OPTIONS)
        except ProcessError:
            self._discard()
            raise
        bind = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"ws://{bind}:{port}{self.path}"
        self._changed = time.monotonic()
        return self.url

    def look(self) -> tuple[tuple[str, int, bool], ...]:
        """Take a look at the recorder's journals (:func:`chanlog.record.combine.run_state`), noting when they
        last changed."""
        state = run_state(self.folder)
        if state != self._state:
            self._state, self._changed = state, time.monotonic()
        return state

    def over(self) -> bool:
        """Look once: True when the run is over (a connection came, all sessions ended, nothing opened for
        ``grace`` seconds). Raises :class:`ProcessError` when mitmdump has exited."""
        state = self.look()
        now = time.monotonic()
        proxy = self.processes[0]
        if proxy.returncode is not None:
            raise ProcessError(f"exited with status {proxy.returncode} while recording; it said:\n{proxy.output()}",
                               "mitmdump", self.processes)
        return bool(state) and all(done for _, _, done in state) and now - self._changed >= self.grace

    def open_sessions(self) -> list[str]:
        """Journal names of sessions not over at the last look."""
        return [name for name, _, done in self._state if not done]

    def wait(self, stop: threading.Event | None = None, until_stopped: bool = False) -> bool:
        """Block until the run is over (unless ``until_stopped``) or ``stop`` is set; True when it ended by
        itself."""
        while True:
            if stop is not None and stop.is_set():
                self.look()
                return False
            if self.over() and not until_stopped:
                return True
            if stop is not None:
                stop.wait(POLL)
            else:
                time.sleep(POLL)

    def settle(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every session to end (the client's last closes under way),
        then ``grace`` more without a new connection."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.over():
                return
            time.sleep(POLL)

    def finish(self, name: str | None = None) -> Combined:
        """Stop mitmdump (sessions still open at the last look count as left unfinished) and write
        TRANSCRIPT from what it recorded (:func:`chanlog.record.combine.combine`). The recorder's folder is
        removed on success and kept (named in the error) on :class:`RecordingError`."""
        assert self.workdir is not None, "start() first"
        self.look()
        unfinished = self.open_sessions()
        for proc in reversed(self.processes):
            proc.stop(STOP_TIMEOUT)
        try:
            unreachable = self.unreachable()
            if unreachable:  # a client that got an error instead of the node: the recording lacks its session
                raise RecordingError(unreachable, str(self.transcript))
            combined = combine(self.folder, self.transcript, name=name or self.transcript.stem, node=self.node,
                               open_at_stop=unfinished)
        except RecordingError as exc:
            exc.problems.append(f"{self.transcript} was left as it was; the recorder's journals and per-session "
                                f"transcripts are kept in {self.folder}")
            raise RecordingError(exc.problems, exc.where) from None
        self._discard()
        return combined

    def unreachable(self) -> list[str]:
        """The connections mitmdump could not make to the node during the recording (:data:`UPSTREAM_FAILED`
        lines of its log, read once, line by line), as one problem, or nothing."""
        failures: list[str] = []
        count = 0
        try:
            with open(self.processes[0].log, errors="replace") as fh:
                for line in fh:
                    if UPSTREAM_FAILED in line:
                        count += 1
                        if len(failures) < MAX_QUOTED:
                            failures.append(line.split(UPSTREAM_FAILED, 1)[1].strip(" :\n"))
        except OSError:
            return []
        if not count:
            return []
        return [f"the node could not be reached {count} time(s) during the recording (a client got an error "
                f"instead of a session): {'; '.join(failures)}"]

    def close(self) -> None:
        """Stop every process (nothing is written); the recorder's folder is kept when it holds anything."""
        for proc in reversed(self.processes):
            proc.stop()

    def _discard(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def record(transcript: Path, node: str, *, host: str, port: int, grace: float, on_url: Callable[[str], None],
           stop: threading.Event | None = None, until_stopped: bool = False, mitmdump: Path | None = None
           ) -> Combined:
    """Record ``transcript`` from ``node`` (module docstring): start, call ``on_url`` with the URL, wait until
    the run is over (or ``stop`` is set; with ``until_stopped`` only then), write TRANSCRIPT. Errors as
    :class:`Recorder`; every process is stopped whatever happens."""
    recorder = Recorder(transcript, node, host=host, port=port, grace=grace, mitmdump=mitmdump)
    recorder.start()
    try:
        on_url(recorder.url or "")
        recorder.wait(stop, until_stopped)
        return recorder.finish()
    finally:
        recorder.close()


__all__ = ["Combined", "RecordMode", "Recorder", "RecordingError", "missing", "record"]
