"""The recorder: a mitmproxy addon that captures both participants of a channel into one transcript.

Load it with ``mitmdump -s addons/channel.py`` (reverse proxy ``--mode reverse:http://NODE:PORT``, several
``--mode reverse:...@LISTEN_PORT`` listeners, or a regular proxy). Only WebSocket flows on
``chanlog_path`` are recorded. The hooks only collect: pairing decisions are pure functions
(:mod:`chanlog.record.pairing`), frames go to the session's journal (:mod:`chanlog.record.journal`), and
transcripts are built from journals in worker processes (:mod:`chanlog.record.writer`).

How it works (DESIGN.md, "Pairing participants into one session"):

* ``websocket_start`` pairs the new connection with a session: a reconnect or reestablish
  (``existing_channel_id`` in the URL) joins the session of that channel, even a finished one, which is
  then written again when it ends; any other connection joins a running session with the same channel
  parameters (:data:`~chanlog.record.pairing.PAIRING_PARAMS`; connections with none of them pair with each
  other) that lacks its role, else starts a new session. The first ``channel_id`` a node frame carries names
  the session's channel from then on.
* Two sessions that turn out to carry the same ``channel_id`` (connections that started apart: no channel
  parameters, or different ones) are merged into the one that started first, when the other is running
  or is a finished session lacking a participant the learning session brings (a finished session that
  had both participants is continued only by a reestablish; a new connection merely carrying its channel,
  such as a replay of the next log of the same channel, is recorded apart). The
  absorbed session's journal records are copied into the survivor's journal, which gets its open
  connections from then on, and its journal ends with a ``merged_into`` record. A transcript already written
  for the absorbed session is removed. Sessions that carry different channel ids are never merged.
* Every open, frame and close is appended to the session's journal and written before the hook returns, so
  a proxy killed at any point leaves every forwarded frame on disk. The hooks keep no frames in memory,
  and by default (``chanlog_bounded=auto``) nor does mitmproxy: a recorded message is dropped from
  ``flow.websocket.messages`` once journaled, unless another part of mitmproxy needs the messages
  (``-w``/``save_stream_file``, ``hardump``, the mitmproxy and mitmweb flow views).
* When the last open connection of a session closes (and at proxy shutdown for the others) the transcript
  ``chanlog_dir/NAME.yaml`` is built from the journal by a worker process (``chanlog_writers`` of them, at the
  lowest CPU priority: ``SCHED_IDLE`` on Linux), written atomically, and the journal is marked finished.
* Write errors (disk full): the proxy keeps forwarding; the session's journal counts what it loses, one
  log line says so (what, from which frame on), and a ``gap`` record marks exactly which frames are missing
  when the journal can be written again, which it retries every second. The transcript lists the gaps in
  ``source.gaps`` with ``source.incomplete: true``. With ``chanlog_on_error=refuse``, new sessions are
  refused (HTTP 503) while a journal cannot be written. A transcript that cannot be written is retried.
* A connection that ends without a close frame (the node dropped TCP) is recorded with code 1006 and a
  reason saying so; mitmproxy (wsproto) closes the other side with code 1000, since 1006 may not be sent
  on the wire: the log says that too.

Options (``--set``): ``chanlog_dir``, ``chanlog_path``, ``chanlog_name``, ``chanlog_headers``,
``chanlog_bounded``, ``chanlog_fsync``, ``chanlog_on_error``, ``chanlog_writers``, ``chanlog_drop_params``; see
:meth:`ChannelRecorder.load`. Invalid values raise ``OptionsError`` at start-up.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from chanlog.model import ROLES
from chanlog.record.journal import (
    JOURNAL_DIR,
    JOURNAL_SUFFIX,
    MAP_CHUNK,
    Gap,
    JournalError,
    JournalInfo,
    JournalWriter,
    find_unfinished,
)
from chanlog.record.pairing import (
    DEFAULT_NAME,
    NAME_FIELDS,
    check_template,
    join_running,
    name_fields,
    node_channel_id,
    pairing_key,
    path_matches,
    query_params,
    session_name,
    should_merge,
    ws_url,
)
from chanlog.record.writer import DEFAULT_WORKERS, TranscriptWriter, when_done
from chanlog.urls import drop_params, param_names

logger = logging.getLogger(__name__)

#: Values of ``chanlog_bounded``.
BOUNDED_CHOICES = ("auto", "true", "false")
#: Values of ``chanlog_on_error``: keep forwarding while the recorder cannot write, or refuse new sessions.
ON_ERROR_CHOICES = ("forward", "refuse")
#: Options of other addons that, when set, need every message of a flow (``chanlog_bounded=auto`` keeps
#: them then).
KEEPS_MESSAGES = ("save_stream_file", "hardump")
#: Seconds before a transcript that could not be written is tried again (doubling up to ten minutes).
RETRY_WRITE = 5.0
#: The reason recorded with a close without a close frame (code 1006).
ABNORMAL = ("abnormal closure: the {side}'s connection ended without a close frame (code 1006 is never "
            "sent on the wire); mitmproxy closed the {other}'s connection with code 1000")


def writable_problem(directory: Path) -> str | None:
    """Why recording into ``directory`` (and its ``journals/``) cannot work, in one sentence naming it, or
    ``None`` when it can: the folder and ``journals/`` are made when missing, then a file is created and
    removed there (a probe: a read-only mount, an immutable folder or a missing permission all show,
    whoever the proxy runs as; ``os.access`` does not see all of them)."""
    import tempfile

    journals = directory / JOURNAL_DIR
    existed = directory.is_dir()
    try:
        journals.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".chanlog-probe-", dir=journals)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if existed:
            return f"{directory} is not writable ({why}); give a folder the proxy can write to"
        return f"cannot create {directory} ({why}); give a folder the proxy can write to"
    return None


def header_dict(headers: http.Headers) -> dict[str, str]:
    """Request headers as a plain mapping (a repeated header's values joined with ``, ``)."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers.fields:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


# -- sessions ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Session:
    """One channel session being recorded: its files and what pairing needs to know."""

    name: str
    """File name stem (transcript ``NAME.yaml``, journal ``journals/NAME.jsonl``)."""
    key: tuple[str, ...] | None
    """The pairing key of its first connection (:func:`pairing_key`; ``()`` when its URL has no channel
    parameters and no ``existing_channel_id``)."""
    journal: JournalWriter
    """Where its records go."""
    transcript: Path
    """The transcript file written when the session ends."""
    channel_id: str | None = None
    """The channel's id once a node frame (or a reestablish URL) has named it."""
    connections: int = 0
    """Connections opened so far (the next connection's number)."""
    open: dict[str, int] = field(default_factory=dict)
    """Open connections per role."""
    roles: set[str] = field(default_factory=set)
    """Roles that have connected at least once."""
    live: bool = True
    """False once every connection has closed and the transcript was handed to the writer."""
    seq: int = 0
    """Its number in the order sessions started (1 for the first of the proxy run)."""
    merged_into: Session | None = None
    """The session it was merged into, if any (it records nothing after that)."""
    writing: Future[Any] | None = None
    """The transcript write in progress, if any."""
    write_again: bool = False
    """The session ended again while its transcript was being written: write once more after."""
    retry_delay: float = 0.0
    """Seconds before the next try of a transcript write that failed (0: none failed)."""

    @property
    def open_count(self) -> int:
        """Connections open now."""
        return sum(self.open.values())


@dataclass
class Conn:
    """One recorded WebSocket connection (one flow)."""

    session: Session
    """The session it belongs to."""
    conn: int
    """Its number within the session."""
    role: str
    """``initiator`` or ``responder``."""
    frames: int = 0
    """Frames seen on it so far (the last one's number on this connection, from 1)."""


class ChannelRecorder:
    """Records Aeternity state-channel WebSocket sessions into transcripts (see the module docstring)."""

    def __init__(self, *, log_startup_errors: bool = False) -> None:
        self.log_startup_errors = log_startup_errors
        """An invalid option at start-up is logged as one error line (mitmdump then exits with status 1:
        its start-up error check) instead of raised: mitmproxy prints a traceback for an exception a
        script's addon raises while loading. ``addons/channel.py`` sets it; once running (and by default,
        as in mitmproxy's test harness) ``OptionsError`` is raised, so that mitmproxy refuses the value."""
        self.disabled = False
        """True after an option error was logged at start-up: nothing is recorded."""
        self._running = False
        self.directory = Path("transcripts")
        """``chanlog_dir``: where transcripts (and ``journals/``) go."""
        self.channel_path = "/channel"
        """``chanlog_path``: the endpoint whose WebSocket flows are recorded."""
        self.template = DEFAULT_NAME
        """``chanlog_name``: file-name template of a session."""
        self.store_headers = False
        """``chanlog_headers``: store the upgrade request headers in open events."""
        self.bounded_option = "auto"
        """``chanlog_bounded``: ``auto``, ``true`` or ``false``."""
        self.bounded = True
        """Whether recorded messages are released from the flow now (``chanlog_bounded`` resolved)."""
        self.bounded_why = "default"
        """Why :attr:`bounded` has its value (logged at start)."""
        self.fsync = False
        self.window = MAP_CHUNK
        """``chanlog_fsync``: fsync the journal after every record."""
        self.drop_params: tuple[str, ...] = ()
        """``chanlog_drop_params``: query parameter names left out of recorded URLs."""
        self.on_error = "forward"
        """``chanlog_on_error``: ``forward`` or ``refuse`` (new sessions while a journal cannot be written)."""
        self.sessions: list[Session] = []
        """Running sessions, oldest first."""
        self.flows: dict[str, Conn] = {}
        """Recorded connections by flow id, while open."""
        self.by_channel: dict[str, Session] = {}
        """Every session (running or finished) by channel id, for reconnects and reestablish."""
        self.unfinished: list[JournalInfo | JournalError] = []
        """Unfinished journals found in ``chanlog_dir`` at start-up."""
        self.written: list[Path] = []
        """Transcripts written so far (in the order the writer finished them)."""
        self.on_written: Any = None
        """Called with the :class:`Session` each time its transcript was written (from a writer's thread)."""
        self.on_removed: Any = None
        """Called with a :class:`Session` merged into another once its transcript was removed (any thread)."""
        self.failing: set[str] = set()
        """Names of sessions whose journal cannot be written now."""
        self._failing: dict[str, Session] = {}
        self.seq = 0
        """Sessions started so far."""
        self.records = 0
        """Open, frame and close records journaled so far (the ``n`` of the last one)."""
        self.writer = TranscriptWriter(DEFAULT_WORKERS)
        """Builds transcripts from journals off the event loop (``chanlog_writers``)."""
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._stopping = False

    # -- options --------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        """Declare the ``chanlog_*`` options (README, "Recording")."""
        loader.add_option("chanlog_dir", str, "./transcripts",
                          "Folder for recorded channel transcripts (NAME.yaml) and their journals "
                          "(journals/NAME.jsonl). Created when missing.")
        loader.add_option("chanlog_path", str, "/channel",
                          "Request path of the channel WebSocket endpoint; only WebSocket flows on this "
                          "path are recorded.")
        loader.add_option("chanlog_name", str, DEFAULT_NAME,
                          "File-name template of a session (Python format syntax). Fields: "
                          + ", ".join(NAME_FIELDS) + ". Unsafe characters become '_'.")
        loader.add_option("chanlog_headers", bool, False,
                          "Store the upgrade request headers (cookies, authorization...) in the "
                          "transcript's open events.")
        loader.add_option("chanlog_bounded", str, "auto",
                          "Bounded memory: once journaled, a recorded message is dropped from "
                          "flow.websocket.messages (mitmproxy otherwise keeps every message of an open flow, "
                          "and a long session grows the proxy). 'auto' (default): bounded unless another part "
                          "of mitmproxy needs the messages (-w/save_stream_file, hardump, the mitmproxy or "
                          "mitmweb view); 'true': always (those then see only the newest message of a recorded "
                          "flow); 'false': never.", choices=BOUNDED_CHOICES)
        loader.add_option("chanlog_fsync", bool, False,
                          "fsync the journal after every record (survives power loss; slower).")
        loader.add_option("chanlog_journal_window", int, MAP_CHUNK // 1024,
                          "KiB of a journal reserved (posix_fallocate) and mapped at a time: a frame is copied "
                          "into the kernel's page cache with no system call, and survives a killed proxy all the "
                          "same. 0: one write() per record (as with chanlog_fsync).")
        loader.add_option("chanlog_drop_params", str, "",
                          "Comma-separated query parameter names to drop from recorded URLs (e.g. "
                          "'token,host'); the URL forwarded to the node keeps them. Default: keep all.")
        loader.add_option("chanlog_on_error", str, "forward",
                          "While a journal cannot be written (disk full): 'forward' (default) keeps proxying "
                          "and records the gap; 'refuse' also answers new channel sessions with HTTP 503.",
                          choices=ON_ERROR_CHOICES)
        loader.add_option("chanlog_writers", int, DEFAULT_WORKERS,
                          "Worker processes that write finished transcripts (at the lowest CPU priority: "
                          "SCHED_IDLE on Linux, else nice; several sessions at a time); 0 writes them in a thread "
                          "of the proxy.")

    def configure(self, updated: set[str]) -> None:
        """Check and take the changed options; raises ``OptionsError`` for a bad path, template or folder
        (at start-up with :attr:`log_startup_errors`: logs it as one line instead). Setting ``chanlog_dir``
        (at start-up) reports the unfinished journals found there."""
        try:
            self._configure(updated)
        except exceptions.OptionsError as exc:
            if self._running or not self.log_startup_errors:
                raise
            self.disabled = True
            logger.error(f"chanlog: {exc}")

    def _configure(self, updated: set[str]) -> None:
        opts = ctx.options
        if "chanlog_path" in updated:
            path = opts.chanlog_path
            if not path.startswith("/") or "?" in path or "#" in path:
                raise exceptions.OptionsError(
                    f"chanlog_path must be a request path starting with '/' (no query), not {path!r}")
            self.channel_path = path
        if "chanlog_name" in updated:
            try:
                check_template(opts.chanlog_name)
            except ValueError as exc:
                raise exceptions.OptionsError(f"chanlog_name: {exc}") from None
            self.template = opts.chanlog_name
        if "chanlog_headers" in updated:
            self.store_headers = opts.chanlog_headers
        if "chanlog_fsync" in updated:
            self.fsync = opts.chanlog_fsync
        if "chanlog_journal_window" in updated:
            if not 0 <= opts.chanlog_journal_window <= 1 << 20:
                raise exceptions.OptionsError(f"chanlog_journal_window must be 0 to {1 << 20} (KiB), not "
                                              f"{opts.chanlog_journal_window}")
            self.window = opts.chanlog_journal_window * 1024
        if "chanlog_on_error" in updated:
            self.on_error = opts.chanlog_on_error
        if "chanlog_drop_params" in updated:
            try:
                self.drop_params = param_names(opts.chanlog_drop_params)
            except ValueError as exc:
                raise exceptions.OptionsError(f"chanlog_drop_params: {exc}") from None
            if self.drop_params:
                logger.info("chanlog: recorded URLs leave out the query parameters " + ", ".join(self.drop_params))
        if "chanlog_writers" in updated:
            if not 0 <= opts.chanlog_writers <= 64:
                raise exceptions.OptionsError(f"chanlog_writers must be 0 to 64, not {opts.chanlog_writers}")
            if opts.chanlog_writers != self.writer.workers:
                old, self.writer = self.writer, TranscriptWriter(opts.chanlog_writers)
                old.shutdown(wait=False)
        if "chanlog_bounded" in updated or updated & set(KEEPS_MESSAGES):
            self.bounded_option = opts.chanlog_bounded
            self._decide_bounded()
        if "chanlog_dir" in updated:
            directory = Path(opts.chanlog_dir).expanduser()
            if directory.exists() and not directory.is_dir():
                raise exceptions.OptionsError(f"chanlog_dir: {directory} exists and is not a folder")
            problem = writable_problem(directory)
            if problem:
                raise exceptions.OptionsError(f"chanlog_dir: {problem}")
            self.directory = directory
            self.report_unfinished()

    def _decide_bounded(self, view: bool = False) -> None:
        """Resolve ``chanlog_bounded`` (``auto``: bounded unless something keeps the messages)."""
        if self.bounded_option != "auto":
            self.bounded = self.bounded_option == "true"
            self.bounded_why = f"chanlog_bounded={self.bounded_option}"
            return
        needs = [name for name in KEEPS_MESSAGES if getattr(ctx.options, name, None)]
        if view:
            needs.append("the flow view")
        self.bounded = not needs
        self.bounded_why = (f"chanlog_bounded=auto, {' and '.join(needs)} keeps every message" if needs
                            else "chanlog_bounded=auto")

    def running(self) -> None:
        """Start-up done: start the transcript writers; with a flow view (mitmproxy, mitmweb), ``auto``
        keeps the messages; say which."""
        self._running = True
        if self.disabled:
            return
        try:
            self.writer.start()
        except Exception as exc:  # noqa: BLE001 - they start at the first write instead
            logger.warning(f"chanlog: cannot start the transcript writer processes yet: {exc}")
        master = getattr(ctx, "master", None)
        has_view = master is not None and master.addons.get("view") is not None
        if has_view:
            self._decide_bounded(view=True)
        if self.bounded:
            logger.info(f"chanlog: bounded memory ({self.bounded_why}): recorded messages are dropped from "
                        f"flows once journaled")
        else:
            logger.info(f"chanlog: messages of recorded flows are kept in memory ({self.bounded_why}): "
                        f"a long session grows the proxy")

    def report_unfinished(self) -> None:
        """Log every unfinished journal of ``chanlog_dir`` (a proxy died while recording it), and once each
        unreadable one (named, with the line): recording goes on whatever they hold."""
        try:
            self.unfinished = find_unfinished(self.directory)
        except OSError as exc:
            logger.warning(f"chanlog: cannot list the journals in {self.directory / JOURNAL_DIR}: {exc.strerror}")
            self.unfinished = []
        for item in self.unfinished:
            if isinstance(item, JournalError):
                logger.warning(f"chanlog: unreadable journal {item}; ignored, recording goes on")
                continue
            logger.warning(
                f"chanlog: unfinished journal {item.path} ({item.frames} frames, {item.connections} connections"
                f"{', last line incomplete' if item.truncated else ''}); "
                f"rebuild its transcript with: chanlog recover {item.path}")

    # -- hooks ------------------------------------------------------------------------------------

    def request(self, flow: http.HTTPFlow) -> None:
        """With ``chanlog_on_error=refuse``: while a journal cannot be written, answer a WebSocket upgrade
        on the channel path that would start a new session with HTTP 503 (connections of running sessions
        and reestablishes of known channels still pass)."""
        if self.on_error != "refuse" or not self.failing or not path_matches(flow.request.path, self.channel_path):
            return
        params = query_params(flow.request.path)
        role = params.get("role")
        existing = params.get("existing_channel_id")
        if role not in ROLES or (existing and existing in self.by_channel):
            return
        if not existing and join_running(self.sessions, pairing_key(params) or (), role) is not None:
            return
        flow.response = http.Response.make(
            503, f"chanlog: the recorder cannot write its journal ({', '.join(sorted(self.failing))}); "
                 f"new channel sessions are refused (chanlog_on_error=refuse)\n".encode(),
            {"Content-Type": "text/plain; charset=utf-8"})
        logger.warning(f"chanlog: refused a new {role} session (HTTP 503): the recorder cannot write")

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        """A WebSocket connection opened: on the channel path with a role, pair it with a session and
        journal its open (URL as forwarded to the node, ``ws://``/``wss://``)."""
        if self.disabled or not path_matches(flow.request.path, self.channel_path):
            return
        params = query_params(flow.request.path)
        role = params.get("role")
        if role not in ROLES:
            logger.warning(f"chanlog: not recording {flow.request.path!r}: no role=initiator|responder")
            return
        ts = flow.response.timestamp_end if flow.response and flow.response.timestamp_end else time.time()
        session = self._session_for(params, role, ts)
        conn = Conn(session, session.connections, role)
        session.connections += 1
        session.open[role] = session.open.get(role, 0) + 1
        session.roles.add(role)
        self.flows[flow.id] = conn
        headers = header_dict(flow.request.headers) if self.store_headers else None
        url = drop_params(ws_url(flow.request.url), self.drop_params)  # chanlog_drop_params
        session.journal.open_record(conn.conn, role, ts, url, headers, n=self._n())

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """A message (``flow.websocket.messages[-1]``) on a recorded connection: journal it, written,
        before mitmproxy forwards it; note the first ``channel_id`` the node names; in bounded mode drop the
        older messages from the flow."""
        conn = self.flows.get(flow.id)
        if conn is None:
            return
        messages = flow.websocket.messages  # type: ignore[union-attr]
        message = messages[-1]
        session = conn.session
        conn.frames += 1
        self.records += 1
        from_client = message.from_client
        session.journal.frame_record(conn.conn, conn.role, "client" if from_client else "node", message.timestamp,
                                     message.content, message.is_text, message.injected, self.records,
                                     conn.frames)
        if session.channel_id is None and not from_client:
            channel_id = node_channel_id(message.content)
            if channel_id:
                self._name_channel(session, channel_id)
        if self.bounded and len(messages) > 1:
            del messages[:-1]

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        """A recorded connection closed: journal close code and side (an abnormal close, 1006, with a reason
        saying what mitmproxy told the other side); when it was the session's last open connection, have
        the transcript written."""
        conn = self.flows.pop(flow.id, None)
        if conn is None:
            return
        ws = flow.websocket
        assert ws is not None
        closed_by = None if ws.closed_by_client is None else ("client" if ws.closed_by_client else "node")
        session = conn.session
        reason = ws.close_reason
        if ws.close_code == 1006 and not reason:
            side = closed_by or "node"
            reason = ABNORMAL.format(side=side, other="client" if side == "node" else "node")
            logger.warning(f"chanlog: session {session.name}: {conn.role} connection {conn.conn}: {reason}")
        session.journal.close_record(conn.conn, conn.role, ws.timestamp_end or time.time(), ws.close_code,
                                     closed_by, reason, n=self._n())
        session.open[conn.role] -= 1
        if session.open_count == 0:
            self._finish(session)

    def done(self) -> None:
        """Proxy shutdown: write the transcripts of running sessions and wait for every write."""
        for session in list(self.sessions):
            self._finish(session)
        self.flows.clear()
        self.wait()
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        for session in list(self._failing.values()):
            if not session.journal.flush_gap() and session.journal.gap is not None:
                logger.error(f"chanlog: session {session.name}: at shutdown its journal still cannot be written "
                             f"({session.journal.gap.error}): {session.journal.gap.describe()}; those frames are "
                             f"not in {session.journal.path}, and a transcript rebuilt from it will lack them")
        for session in {id(s): s for s in self.by_channel.values()}.values():
            session.journal.close()
        self.writer.shutdown(wait=True)

    # -- write errors ------------------------------------------------------------------------------

    def _journal_failed(self, session: Session, journal: JournalWriter, gap: Gap) -> None:
        """A session's journal cannot be written: one log line (per stretch) saying what is lost from where."""
        self.failing.add(session.name)
        self._failing[session.name] = session
        first = next(iter(sorted(gap.lost.items())), None)
        where = (f"{first[1][0]} connection {first[0]} frame {first[1][1]}" if first
                 else "its next open or close")
        policy = ("new sessions are refused (chanlog_on_error=refuse)" if self.on_error == "refuse"
                  else "the proxy keeps forwarding")
        logger.error(f"chanlog: session {session.name}: cannot write {journal.path}: {gap.error}; frames from "
                     f"{where} (record {gap.first_n}) on are not recorded; {policy}; recording resumes by itself "
                     f"when the journal can be written (tried every second), and the gap is marked in the journal "
                     f"and transcript")

    def _journal_resumed(self, session: Session, journal: JournalWriter, gap: Gap) -> None:
        self.failing.discard(session.name)
        self._failing.pop(session.name, None)
        logger.warning(f"chanlog: session {session.name}: recording again after {gap.error}: {gap.describe()}; "
                       f"marked by a gap record in {journal.path.name}")

    # -- sessions ---------------------------------------------------------------------------------

    def _n(self) -> int:
        """The sequence number of the next record (over every session of this proxy run)."""
        self.records += 1
        return self.records

    def _session_for(self, params: dict[str, str], role: str, ts: float) -> Session:
        """The session a new connection belongs to (see the module docstring), created if need be."""
        existing = params.get("existing_channel_id")
        if existing:
            session = self.by_channel.get(existing)
            if session is not None:
                if not session.live:
                    session.live = True
                    self.sessions.append(session)
                return session
            session = self._new_session(params, role, ts, pairing_key(params))
            self._name_channel(session, existing)
            return session
        # no channel parameters at all (``role`` only: a player opening a log that starts mid-connection)
        # is a key too, so that both participants of such a session pair with each other
        key = pairing_key(params) or ()
        return join_running(self.sessions, key, role) or self._new_session(params, role, ts, key)

    def _new_session(self, params: dict[str, str], role: str, ts: float,
                     key: tuple[str, ...] | None) -> Session:
        self.seq += 1
        fields = name_fields(params, role, self.seq, ts)
        taken = {s.name for s in self.sessions}
        name = session_name(self.template, fields, taken, self.directory)
        journal = JournalWriter(self.directory / JOURNAL_DIR / f"{name}{JOURNAL_SUFFIX}", fsync=self.fsync,
                               window=self.window)
        session = Session(name=name, key=key, journal=journal,
                          transcript=self.directory / f"{name}.yaml", seq=self.seq)
        journal.on_error = lambda j, gap: self._journal_failed(session, j, gap)
        journal.on_resume = lambda j, gap: self._journal_resumed(session, j, gap)
        journal.header(name, session.transcript.name, datetime.fromtimestamp(ts, UTC).isoformat(), ts)
        self.sessions.append(session)
        logger.info(f"chanlog: recording session {name}")
        return session

    def _name_channel(self, session: Session, channel_id: str) -> None:
        """``session`` learned its ``channel_id``: index it, or merge it with the session (running or
        finished) that already carries that channel."""
        session.channel_id = channel_id
        other = self.by_channel.get(channel_id)
        if other is not None and other is not session:
            if should_merge(other.live, session.roles, other.roles):
                survivor, absorbed = (other, session) if other.seq < session.seq else (session, other)
                self._merge(survivor, absorbed)
                return
            logger.info(f"chanlog: session {session.name} carries channel {channel_id} of the finished session "
                        f"{other.name}, which it does not continue (no existing_channel_id, no participant "
                        f"missing there): recorded apart")
        self.by_channel[channel_id] = session

    def _merge(self, survivor: Session, absorbed: Session) -> None:
        """Merge ``absorbed`` into ``survivor`` (same ``channel_id``): copy its journal's records into the
        survivor's journal, then end its journal with ``merged_into`` (crash-safe order, see
        :mod:`chanlog.record.journal`); its open connections record into the survivor from now on; a
        transcript written for it is removed (after any write of it still running)."""
        offset = survivor.connections
        ts = time.time()
        try:
            absorbed.journal.flush_gap()
            copied = survivor.journal.absorb(absorbed.journal.path, absorbed.name, offset, ts)
            absorbed.journal.mark_merged(survivor.name, survivor.journal.path.name, survivor.transcript.name, ts)
        except (JournalError, OSError) as exc:
            logger.error(f"chanlog: cannot merge session {absorbed.name} into {survivor.name} "
                         f"(both carry channel {survivor.channel_id or absorbed.channel_id}): {exc}; "
                         f"they stay two sessions")
            return
        survivor.channel_id = survivor.channel_id or absorbed.channel_id
        for conn in self.flows.values():
            if conn.session is absorbed:
                conn.session = survivor
                conn.conn += offset
        survivor.connections += absorbed.connections
        for role, count in absorbed.open.items():
            survivor.open[role] = survivor.open.get(role, 0) + count
        survivor.roles |= absorbed.roles
        absorbed.open.clear()
        absorbed.merged_into = survivor
        absorbed.live = False
        self.failing.discard(absorbed.name)
        if absorbed in self.sessions:
            self.sessions.remove(absorbed)
        for channel_id, session in list(self.by_channel.items()):
            if session is absorbed:
                self.by_channel[channel_id] = survivor
        if survivor.channel_id:
            self.by_channel[survivor.channel_id] = survivor
        if not survivor.live and survivor.open_count:
            survivor.live = True
            self.sessions.append(survivor)
        logger.info(f"chanlog: session {absorbed.name} carries channel {survivor.channel_id} of session "
                    f"{survivor.name}: merged into it ({copied} records copied to {survivor.journal.path.name}; "
                    f"{absorbed.journal.path.name} ends with merged_into)")
        if absorbed.writing is None:
            self._remove_absorbed(absorbed, survivor)
        if survivor.open_count == 0:
            self._finish(survivor)

    def _remove_absorbed(self, absorbed: Session, survivor: Session) -> None:
        """Remove the transcript written for a session that was merged into another."""
        with self._lock:
            if absorbed.transcript in self.written:
                self.written.remove(absorbed.transcript)
        if self.on_removed is not None:
            self.on_removed(absorbed)
        try:
            absorbed.transcript.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            logger.error(f"chanlog: cannot remove {absorbed.transcript} (session {absorbed.name}, merged into "
                         f"{survivor.name}): {exc.strerror}")
            return
        logger.warning(f"chanlog: removed {absorbed.transcript}: session {absorbed.name} was merged into "
                       f"{survivor.name}, whose transcript {survivor.transcript} holds both")

    def _finish(self, session: Session) -> None:
        """Hand a session whose connections all closed (or a running one at shutdown) to the writer."""
        if session in self.sessions:
            self.sessions.remove(session)
        session.live = False
        self._submit(session)

    def _submit(self, session: Session) -> None:
        """Have the transcript written from the journal as it is now (one write per session at a time: a
        session that ended again meanwhile is written once more after)."""
        with self._lock:
            if session.writing is not None:
                session.write_again = True
                return
            journal = session.journal
            journal.flush_gap()
            tail = journal.gap.record() if journal.gap is not None else None
            size = journal.size
            try:
                future = self.writer.submit(journal.path, session.transcript, size, tail)
            except Exception as exc:  # noqa: BLE001 - a pool that cannot start must not lose the session
                logger.error(f"chanlog: cannot start writing {session.transcript}: {exc}; the journal "
                             f"{journal.path} keeps every frame (chanlog recover)")
                return
            session.writing = future
            self._pending.add(future)
        when_done(future, lambda f: self._written(session, f, size, tail))

    def _written(self, session: Session, future: Future[tuple[int, int]], size: int,
                 tail: dict[str, Any] | None) -> None:
        """A transcript write ended (a pool thread): mark the journal finished unless the session went on,
        log, and retry a failed write later."""
        again = False
        try:
            frames, connections = future.result()
        except BrokenProcessPool:
            logger.error(f"chanlog: a transcript writer process died while writing {session.transcript}; "
                         f"trying again")
            with self._lock:
                self._pending.discard(future)
                session.writing = self.writer.retry_broken(session.journal.path, session.transcript, size, tail)
                self._pending.add(session.writing)
            when_done(session.writing, lambda f: self._written(session, f, size, tail))
            return
        except (JournalError, OSError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            session.retry_delay = min(600.0, session.retry_delay * 2 or RETRY_WRITE)
            logger.error(f"chanlog: cannot write {session.transcript}: {message}; the journal "
                         f"{session.journal.path} keeps every frame; trying again in {session.retry_delay:.0f} s "
                         f"(or: chanlog recover {session.journal.path})")
            if not session.live and session.journal.gap is None:
                session.journal.close()  # reopened by the next record if the session goes on
            self._schedule_retry(session)
        else:
            if tail is None:
                session.retry_delay = 0.0
            if session.merged_into is not None:
                self._remove_absorbed(session, session.merged_into)
            else:
                if not session.live and tail is None:
                    try:
                        session.journal.finish_if_unchanged(size, time.time())
                    except OSError as exc:
                        logger.error(f"chanlog: wrote {session.transcript} but cannot mark {session.journal.path} "
                                     f"finished: {exc.strerror}")
                with self._lock:
                    self.written.append(session.transcript)
                if self.on_written is not None:
                    self.on_written(session)
                incomplete = f"; INCOMPLETE: {tail['frames']} frames lost at the end" if tail else ""
                logger.info(f"chanlog: wrote {session.transcript} ({frames} frames, {connections} connections"
                            f"{incomplete})")
                if tail is not None:  # the journal still lacks its gap record: finish it later
                    session.retry_delay = min(600.0, session.retry_delay * 2 or RETRY_WRITE)
                    self._schedule_retry(session)
        with self._lock:
            self._pending.discard(future)
            if session.writing is future:
                session.writing = None
            again, session.write_again = session.write_again, False
        if again and not session.live:
            self._submit(session)

    def _schedule_retry(self, session: Session) -> None:
        if self._stopping:
            return
        delay = session.retry_delay or RETRY_WRITE

        def retry() -> None:
            if not session.live and session.merged_into is None and not self._stopping:
                self._submit(session)
        timer = threading.Timer(delay, retry)
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def wait_below(self, count: int) -> None:
        """Block until fewer than ``count`` transcript writes are under way: a producer of sessions faster
        than the writers (a HAR import) keeps that many journals open at most, not one per session."""
        while True:
            with self._lock:
                pending = {f for f in self._pending if not f.done()}
            if len(pending) < count:
                return
            wait_futures(pending, return_when=FIRST_COMPLETED)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every transcript handed to the writer so far is written (for tests and shutdown)."""
        while True:
            with self._lock:
                pending = set(self._pending)
            if not pending:
                return
            wait_futures(pending, timeout)
            if timeout is not None:
                return
