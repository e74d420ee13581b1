"""The recorder: a mitmproxy addon that captures both participants of a channel into one transcript.

Load it with ``mitmdump -s addons/channel.py`` (reverse proxy ``--mode reverse:http://NODE:PORT``, several
``--mode reverse:...@LISTEN_PORT`` listeners, or a regular proxy). Only WebSocket flows on
``chanlog_path`` are recorded.

How it works (DESIGN.md, "Pairing participants into one session"):

* ``websocket_start`` pairs the new connection with a session: a reconnect or reestablish
  (``existing_channel_id`` in the URL) joins the session of that channel, even a finished one, which is
  then written again when it ends; any other connection joins a running session with the same channel
  parameters (:data:`PAIRING_PARAMS`; connections with none of them pair with each other) that lacks
  its role, else starts a new session. The first
  ``channel_id`` a node frame carries names the session's channel from then on.
* Two sessions that turn out to carry the same ``channel_id`` (connections that started apart: no channel
  parameters, or different ones) are merged into the one that started first, when the other is running
  or is a finished session lacking a participant the learning session brings (a finished session that
  had both participants is continued only by a reestablish; a new connection merely carrying its channel,
  such as a replay of the next log of the same channel, is recorded apart). The
  absorbed session's journal records are copied into the survivor's journal, which gets its open
  connections from then on, and its journal ends with a ``merged_into`` record (:mod:`chanlog.journal`). A
  transcript already written for the absorbed session is removed. Sessions that carry different channel
  ids are never merged.
* Every open, frame and close is appended to the session's journal (:mod:`chanlog.journal`) and flushed
  before the hook returns, so a proxy killed at any point leaves every forwarded frame on disk. The
  hooks keep no frames in memory.
* When the last open connection of a session closes (and at proxy shutdown for the others) the
  transcript ``chanlog_dir/NAME.yaml`` is rebuilt from the journal in a background thread, written
  atomically, and the journal is marked finished.

Options (``--set``): ``chanlog_dir``, ``chanlog_path``, ``chanlog_name``, ``chanlog_headers``,
``chanlog_bounded``, ``chanlog_fsync``, ``chanlog_drop_params``; see :meth:`ChannelRecorder.load`. Invalid values raise
``OptionsError`` at start-up.
"""

from __future__ import annotations

import json
import logging
import re
import string
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mitmproxy import ctx, exceptions, http

from chanlog.journal import (
    JOURNAL_DIR,
    JOURNAL_SUFFIX,
    JournalError,
    JournalInfo,
    JournalWriter,
    find_unfinished,
    write_transcript,
)
from chanlog.model import ROLES
from chanlog.urls import drop_params, param_names  # i17: chanlog_drop_params

logger = logging.getLogger(__name__)

#: URL query parameters that identify a channel being opened; both participants send the same values.
#: (``host``, ``slogan``, timeouts and other per-participant options may differ and are not used.)
PAIRING_PARAMS = ("initiator_id", "responder_id", "port")
#: Default of ``chanlog_name``: the file-name template of a session.
DEFAULT_NAME = "{started}_{label}_{port}"
#: The fields a ``chanlog_name`` template may use.
NAME_FIELDS = ("started", "date", "time", "seq", "role", "label", "port", "protocol",
               "initiator_id", "responder_id", "channel_id")
#: Longest file name stem the recorder writes.
MAX_NAME = 100


# -- pure helpers ------------------------------------------------------------------------------


def query_params(path: str) -> dict[str, str]:
    """The decoded query parameters of a request path or URL (last value wins for a repeated key)."""
    return dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))


def path_matches(request_path: str, channel_path: str) -> bool:
    """True when ``request_path`` (query included or not) is the channel endpoint ``channel_path``;
    a trailing ``/`` on either side is ignored."""
    path = urlsplit(request_path).path
    return (path.rstrip("/") or "/") == (channel_path.rstrip("/") or "/")


def ws_url(http_url: str) -> str:
    """The ``ws://``/``wss://`` spelling of an ``http://``/``https://`` URL (others unchanged)."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    return http_url


def pairing_key(params: Mapping[str, str]) -> tuple[str, ...] | None:
    """The values of :data:`PAIRING_PARAMS` in a connection's URL, or ``None`` when it has none of them."""
    key = tuple(params.get(p, "") for p in PAIRING_PARAMS)
    return key if any(key) else None


def node_channel_id(content: bytes) -> str | None:
    """The ``channel_id`` a node message carries (``params.channel_id`` in JSON-RPC, top-level
    ``channel_id`` in results and legacy frames), or ``None``. Cheap for messages without one."""
    if b'"channel_id"' not in content:
        return None
    try:
        obj = json.loads(content)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    params = obj.get("params")
    if isinstance(params, dict) and isinstance(params.get("channel_id"), str):
        return params["channel_id"]
    value = obj.get("channel_id")
    return value if isinstance(value, str) and value else None


def safe_name(text: str) -> str:
    """A file name stem made from ``text``: only ``A-Za-z0-9._+=-`` kept (others become ``_``), no
    leading dots or dashes, at most :data:`MAX_NAME` characters; ``session`` when nothing is left.
    No URL or query value can make it a path outside the transcript folder."""
    name = re.sub(r"[^A-Za-z0-9._+=-]+", "_", text)
    name = re.sub(r"[._]*\.\.[._]*", "_", name)  # no "..", even inside a name
    name = re.sub(r"_{2,}", "_", name)
    name = name.lstrip(".-_")[:MAX_NAME].rstrip("._-")
    return name or "session"


def name_fields(params: Mapping[str, str], role: str, seq: int, when: float) -> dict[str, Any]:
    """The values a ``chanlog_name`` template can use (see :data:`NAME_FIELDS`) for a session whose
    first connection has URL ``params`` and ``role``, started at Unix time ``when``."""
    stamp = datetime.fromtimestamp(when, UTC)
    channel_id = params.get("existing_channel_id", "")
    label = (params.get("initiator_id") or channel_id or "session")[:12]
    return {
        "started": stamp.strftime("%Y%m%dT%H%M%SZ"), "date": stamp.strftime("%Y%m%d"),
        "time": stamp.strftime("%H%M%S"), "seq": seq, "role": role, "label": label,
        "port": params.get("port", ""), "protocol": params.get("protocol", ""),
        "initiator_id": params.get("initiator_id", ""), "responder_id": params.get("responder_id", ""),
        "channel_id": channel_id,
    }


def check_template(template: str) -> None:
    """Raise ``ValueError`` saying what is wrong when ``template`` is not a usable ``chanlog_name``."""
    if not template.strip():
        raise ValueError("the template is empty")
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in NAME_FIELDS:
            raise ValueError(f"unknown field {{{name}}}; fields: {', '.join(NAME_FIELDS)}")
    try:
        template.format(**name_fields({"port": "1", "initiator_id": "ak_x"}, "initiator", 1, 0.0))
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"cannot format {template!r}: {exc}") from None


def session_name(template: str, fields: Mapping[str, Any], taken: set[str], directory: Path) -> str:
    """A unique safe name for a new session: the template filled in, made safe, and suffixed ``-2``,
    ``-3``... while a name is in use (``taken``) or its transcript or journal exists in ``directory``."""
    base = safe_name(template.format(**fields))
    name, n = base, 1
    while (name in taken or (directory / f"{name}.yaml").exists()
           or (directory / JOURNAL_DIR / f"{name}{JOURNAL_SUFFIX}").exists()):
        n += 1
        name = f"{base}-{n}"
    return name


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


class ChannelRecorder:
    """Records Aeternity state-channel WebSocket sessions into transcripts (see the module docstring)."""

    def __init__(self) -> None:
        self.directory = Path("transcripts")
        """``chanlog_dir``: where transcripts (and ``journals/``) go."""
        self.channel_path = "/channel"
        """``chanlog_path``: the endpoint whose WebSocket flows are recorded."""
        self.template = DEFAULT_NAME
        """``chanlog_name``: file-name template of a session."""
        self.store_headers = False
        """``chanlog_headers``: store the upgrade request headers in open events."""
        self.bounded = False
        """``chanlog_bounded``: release recorded messages from the flow."""
        self.fsync = False
        """``chanlog_fsync``: fsync the journal after every record."""
        self.drop_params: tuple[str, ...] = ()  # i17 (issue 17)
        """``chanlog_drop_params``: query parameter names left out of recorded URLs."""
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
        self.seq = 0
        """Sessions started so far."""
        self.records = 0
        """Open, frame and close records journaled so far (the ``n`` of the last one)."""
        self._writer: ThreadPoolExecutor | None = None

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
        loader.add_option("chanlog_bounded", bool, False,
                          "Bounded memory: after journaling a message, drop older messages from "
                          "flow.websocket.messages (only the newest is kept), so long sessions do not grow "
                          "the proxy. Other addons then see only the newest message of a recorded flow "
                          "(saving with -w or as HAR, and the mitmproxy/mitmweb views, lose the earlier ones).")
        loader.add_option("chanlog_fsync", bool, False,
                          "fsync the journal after every record (survives power loss; slower).")
        # i17 (issue 17): chanlog_drop_params
        loader.add_option("chanlog_drop_params", str, "",
                          "Comma-separated query parameter names to drop from recorded URLs (e.g. "
                          "'token,host'); the URL forwarded to the node keeps them. Default: keep all.")

    def configure(self, updated: set[str]) -> None:
        """Check and take the changed options; raises ``OptionsError`` for a bad path, template or folder.
        Setting ``chanlog_dir`` (at start-up) reports the unfinished journals found there."""
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
        if "chanlog_bounded" in updated:
            self.bounded = opts.chanlog_bounded
        if "chanlog_fsync" in updated:
            self.fsync = opts.chanlog_fsync
        if "chanlog_drop_params" in updated:  # i17 (issue 17)
            try:
                self.drop_params = param_names(opts.chanlog_drop_params)
            except ValueError as exc:
                raise exceptions.OptionsError(f"chanlog_drop_params: {exc}") from None
            if self.drop_params:
                logger.info("chanlog: recorded URLs leave out the query parameters " + ", ".join(self.drop_params))
        if "chanlog_dir" in updated:
            directory = Path(opts.chanlog_dir).expanduser()
            if directory.exists() and not directory.is_dir():
                raise exceptions.OptionsError(f"chanlog_dir: {directory} exists and is not a folder")
            try:
                (directory / JOURNAL_DIR).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise exceptions.OptionsError(f"chanlog_dir: cannot create {directory}: {exc.strerror}") from None
            self.directory = directory
            self.report_unfinished()

    def report_unfinished(self) -> None:
        """Log every unfinished journal of ``chanlog_dir`` (a proxy died while recording it)."""
        self.unfinished = find_unfinished(self.directory)
        for item in self.unfinished:
            if isinstance(item, JournalError):
                logger.warning(f"chanlog: unreadable journal {item}")
                continue
            logger.warning(
                f"chanlog: unfinished journal {item.path} ({item.frames} frames, {item.connections} connections"
                f"{', last line incomplete' if item.truncated else ''}); "
                f"rebuild its transcript with: chanlog recover {item.path}")

    # -- hooks ------------------------------------------------------------------------------------

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        """A WebSocket connection opened: on the channel path with a role, pair it with a session and
        journal its open (URL as forwarded to the node, ``ws://``/``wss://``)."""
        if not path_matches(flow.request.path, self.channel_path):
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
        url = drop_params(ws_url(flow.request.url), self.drop_params)  # i17: chanlog_drop_params
        session.journal.open_record(conn.conn, role, ts, url, headers, n=self._n())

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        """A message (``flow.websocket.messages[-1]``) on a recorded connection: journal it, flushed,
        before mitmproxy forwards it; note the first ``channel_id`` the node names."""
        conn = self.flows.get(flow.id)
        if conn is None:
            return
        assert flow.websocket is not None
        message = flow.websocket.messages[-1]
        session = conn.session
        sender = "client" if message.from_client else "node"
        session.journal.frame_record(conn.conn, conn.role, sender, message.timestamp, message.content,
                                     message.is_text, message.injected, n=self._n())
        if session.channel_id is None and not message.from_client:
            channel_id = node_channel_id(message.content)
            if channel_id:
                self._name_channel(session, channel_id)
        if self.bounded:
            del flow.websocket.messages[:-1]

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        """A recorded connection closed: journal close code and side; when it was the session's last
        open connection, have the transcript written."""
        conn = self.flows.pop(flow.id, None)
        if conn is None:
            return
        ws = flow.websocket
        assert ws is not None
        closed_by = None if ws.closed_by_client is None else ("client" if ws.closed_by_client else "node")
        session = conn.session
        session.journal.close_record(conn.conn, conn.role, ws.timestamp_end or time.time(), ws.close_code,
                                     closed_by, ws.close_reason, n=self._n())
        session.open[conn.role] -= 1
        if session.open_count == 0:
            self._finish(session)

    def done(self) -> None:
        """Proxy shutdown: write the transcripts of running sessions and wait for every write."""
        for session in list(self.sessions):
            self._finish(session)
        self.flows.clear()
        self.wait()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        for session in self.by_channel.values():
            session.journal.close()

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
        candidates = [s for s in self.sessions if s.key == key]
        for session in candidates:  # the other participant's first connection
            if role not in session.roles:
                return session
        for session in candidates:  # a retry before the channel exists
            if session.channel_id is None and session.open.get(role, 0) == 0:
                return session
        return self._new_session(params, role, ts, key)

    def _new_session(self, params: dict[str, str], role: str, ts: float,
                     key: tuple[str, ...] | None) -> Session:
        self.seq += 1
        fields = name_fields(params, role, self.seq, ts)
        taken = {s.name for s in self.sessions}
        name = session_name(self.template, fields, taken, self.directory)
        journal = JournalWriter(self.directory / JOURNAL_DIR / f"{name}{JOURNAL_SUFFIX}", fsync=self.fsync)
        session = Session(name=name, key=key, journal=journal,
                          transcript=self.directory / f"{name}.yaml", seq=self.seq)
        journal.open()
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
            if other.live or not session.roles <= other.roles:
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
        :mod:`chanlog.journal`); its open connections record into the survivor from now on; a transcript
        written for it is removed (by the writer thread, after any write of it still queued)."""
        offset = survivor.connections
        ts = time.time()
        try:
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
        self._executor().submit(self._remove_absorbed, absorbed, survivor)
        if survivor.open_count == 0:
            self._finish(survivor)

    def _remove_absorbed(self, absorbed: Session, survivor: Session) -> None:
        """Writer thread: remove the transcript written for a session that was merged into another."""
        if absorbed.transcript in self.written:
            self.written.remove(absorbed.transcript)
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

    def _executor(self) -> ThreadPoolExecutor:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chanlog-writer")
        return self._writer

    def _finish(self, session: Session) -> None:
        """Hand a session whose connections all closed (or a running one at shutdown) to the writer."""
        if session in self.sessions:
            self.sessions.remove(session)
        session.live = False
        size = session.journal.size
        self._executor().submit(self._write, session, size)

    def _write(self, session: Session, size: int) -> None:
        """Writer thread: rebuild the transcript from the first ``size`` bytes of the journal, then mark
        the journal finished unless the session went on meanwhile (or was merged into another)."""
        if session.merged_into is not None:
            return
        try:
            info = write_transcript(session.journal.path, session.transcript, limit=size)
        except (JournalError, OSError) as exc:
            logger.error(f"chanlog: cannot write {session.transcript}: {exc}; "
                         f"the journal {session.journal.path} keeps every frame (chanlog recover)")
            if not session.live:
                session.journal.close()  # reopened by the next record if the session goes on
            return
        if not session.live:
            session.journal.finish_if_unchanged(size, time.time())
        self.written.append(session.transcript)
        logger.info(f"chanlog: wrote {session.transcript} ({info.frames} frames, {info.connections} connections)")

    def wait(self) -> None:
        """Block until every transcript handed to the writer so far is written (for tests and shutdown)."""
        if self._writer is not None:
            future: Future[None] = self._writer.submit(lambda: None)
            future.result()
