"""The recorder as a child process: ``mitmdump -s ADDON`` started, watched and stopped from Python.

Shared by ``chanlog demo`` (:mod:`chanlog.cli.pipeline`) and the record modes of ``chanlog replay``
(:mod:`chanlog.replay.modes`). Nothing here imports mitmproxy: ``mitmdump`` (the ``record`` extra) runs as a
subprocess with the recorder script shipped in the package (:data:`ADDON`, what ``chanlog addon-path`` prints).

* :func:`find_mitmdump`, :func:`addon_path`, :func:`mitmproxy_installed`: the pieces, or a
  :class:`ProcessError` saying what to install;
* :class:`Process`: a child process whose output goes to a log file; :meth:`Process.stop` sends SIGTERM, then
  SIGKILL, and reaps it;
* :func:`start_recorder`: mitmdump as a reverse proxy in front of a node (``ws://`` or ``wss://`` URL) on a
  given listen address, recording the node's channel path into a folder; returns once it listens;
* :func:`stop_recorder`: stop it cleanly (its ``done`` hook writes what is still open) and list the
  transcripts it wrote.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from chanlog.errors import ChanlogError

#: The mitmproxy script shipped inside the package (``chanlog addon-path`` prints it); a clone also has
#: ``addons/channel.py``, which loads the same recorder.
ADDON = Path(__file__).resolve().parents[1] / "addons" / "channel.py"
#: What to install when mitmproxy (``mitmdump``) is missing: the recording extra.
RECORD_EXTRA = "pip install 'chanlog[record]'"
#: Lines of a process's output quoted in an error.
QUOTE_LINES = 15
#: Node URL schemes and the upstream scheme mitmproxy's reverse mode takes for each (a WebSocket is an HTTP
#: upgrade: RFC 6455 §3, ``ws`` over ``http``, ``wss`` over ``https``).
UPSTREAM_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


class ProcessError(ChanlogError):
    """A piece (``mitmdump``, the recorder script) is missing or a child process failed; ``where`` names the
    stage (``mitmdump``, ``fake node``, ...)."""

    def __init__(self, message: str, where: str | None = None, processes: list[Process] | None = None) -> None:
        super().__init__(message, where)
        self.processes = processes or []
        """The processes started so far (all stopped by the time the error is raised)."""


@dataclass
class Process:
    """A child process; its output goes to ``log``."""

    name: str
    """The stage: ``fake node``, ``mitmdump``, ``play``."""
    args: list[str]
    """The command line."""
    log: Path
    """File receiving its standard error (and standard output, unless that is a pipe)."""
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


def find_mitmdump(explicit: Path | None = None) -> Path:
    """``explicit``, else ``mitmdump`` beside the Python interpreter, else on ``PATH``; :class:`ProcessError`
    when there is none."""
    if explicit is not None:
        if not (explicit.is_file() and os.access(explicit, os.X_OK)):
            raise ProcessError(f"{explicit} is not an executable file", "mitmdump")
        return explicit
    beside = Path(sys.executable).with_name("mitmdump")
    if beside.is_file():
        return beside
    found = shutil.which("mitmdump")
    if found is None:
        raise ProcessError(f"mitmdump is not installed ({RECORD_EXTRA}), or give --mitmdump PATH", "mitmdump")
    return Path(found)


def addon_path() -> Path:
    """The mitmproxy script shipped in the package (:data:`ADDON`), for ``mitmdump -s``; :class:`ProcessError`
    when the installation lacks it."""
    if not ADDON.is_file():
        raise ProcessError(f"the recorder script {ADDON} is missing from this installation; reinstall chanlog",
                           "addon")
    return ADDON


def mitmproxy_installed() -> bool:
    """True when the ``mitmproxy`` package (the recording extra) can be imported by this Python."""
    import importlib.util

    return importlib.util.find_spec("mitmproxy") is not None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that was free a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def spawn(name: str, args: list[str], workdir: Path, processes: list[Process], *,
          pipe_stdout: bool = False) -> Process:
    """Start ``args`` as :class:`Process` ``name`` (output to ``workdir/NAME.log``; with ``pipe_stdout`` its
    standard output is a pipe) and append it to ``processes``; :class:`ProcessError` when it cannot start."""
    proc = Process(name, args, workdir / f"{name.replace(' ', '-')}.log")
    with open(proc.log, "wb") as log:
        try:
            proc.popen = subprocess.Popen(args, stdout=subprocess.PIPE if pipe_stdout else log,
                                          stderr=log if pipe_stdout else subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise ProcessError(f"cannot start {args[0]}: {exc.strerror or exc}", name, processes) from None
    processes.append(proc)
    return proc


def failed(proc: Process, message: str, processes: list[Process], error: type[ProcessError] = ProcessError
           ) -> ProcessError:
    """Stop every process of ``processes`` and return ``error`` (``message`` and ``proc``'s last lines)."""
    for p in reversed(processes):
        p.stop()
    out = proc.output()
    return error(message + (f"; it said:\n{out}" if out else ""), proc.name, processes)


def node_parts(node_url: str) -> tuple[str, str, int, str]:
    """``(upstream scheme, host, port, path)`` of a node URL (``ws://HOST:PORT/channel``; ``wss://`` too;
    default ports 80/443 as RFC 6455 §3); :class:`ProcessError` naming the URL when it is not one."""
    parts = urlsplit(node_url)
    scheme = UPSTREAM_SCHEMES.get(parts.scheme.lower())
    try:
        port = parts.port
    except ValueError:
        port = -1
    if scheme is None or not parts.hostname or port == -1:
        raise ProcessError("the node URL must be ws://HOST:PORT/PATH (or wss://), as clients connect to it",
                           node_url)
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), parts.path or "/"


def start_recorder(mitm: Path, addon: Path, node_url: str, record: Path, workdir: Path, timeout: float,
                   processes: list[Process], *, listen_host: str = "127.0.0.1", listen_port: int = 0,
                   options: dict[str, str] | None = None) -> int:
    """Start ``mitmdump -s ADDON`` as a reverse proxy in front of ``node_url`` listening on
    ``listen_host:listen_port`` (0: a free port), recording the URL's path into ``record``
    (``chanlog_dir``; more recorder ``options`` as ``--set KEY=VALUE``); wait up to ``timeout`` seconds until it accepts connections and return its port.
    :class:`ProcessError` (its output quoted) when it exits or does not listen in time."""
    scheme, host, port, path = node_parts(node_url)
    upstream = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    listen = listen_port or free_port(listen_host)
    bind = f"[{listen_host}]" if ":" in listen_host else listen_host
    proxy = spawn("mitmdump", [str(mitm), "-s", str(addon), "--mode", f"reverse:{scheme}://{upstream}@{bind}:{listen}",
                               "--set", f"chanlog_dir={record}", "--set", f"chanlog_path={path}",
                               "--set", "flow_detail=0",
                               *(a for k, v in (options or {}).items() for a in ("--set", f"{k}={v}"))],
                  workdir, processes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.returncode is not None:
            raise failed(proxy, f"exited with status {proxy.returncode} before listening", processes)
        try:
            with socket.create_connection((listen_host, listen), timeout=0.5):
                return listen
        except OSError:
            time.sleep(0.1)
    raise failed(proxy, f"did not listen on {listen_host}:{listen} within {timeout:g} s", processes)


def stop_recorder(proxy: Process, record: Path, timeout: float, processes: list[Process]) -> list[Path]:
    """Stop mitmdump cleanly (its ``done`` hook writes what is still open) and list the transcripts it
    wrote; the recorder writes a session's transcript once both participants have closed."""
    proxy.stop(timeout)
    found = sorted(record.glob("*.yaml"))
    if not found:
        raise failed(proxy, f"wrote no transcript into {record}", processes)
    return found
