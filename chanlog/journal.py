"""The recorder's journal: a crash-safe JSON Lines record of one session, and transcripts rebuilt from it.

The recorder (:mod:`chanlog.capture`) appends one JSON object per line and flushes it before its hook
returns, so that a proxy killed at any moment leaves every frame it forwarded on disk. The transcript is
rebuilt from the journal (:func:`write_transcript`, ``chanlog recover``) in constant memory: the journal
is read twice (a scan, then a stream of events) and the YAML is written in chunks to a temporary file
that is renamed over the target.

Journal format 1, one record per line (``ts`` is a Unix time in seconds)::

    {"chanlog_journal": 1, "session": NAME, "transcript": "NAME.yaml", "started": ISO-8601, "t0": ts, ...}
    {"kind": "open",  "conn": 0, "role": "initiator", "ts": ..., "url": "ws://...", "headers": {...}}
    {"kind": "frame", "conn": 0, "role": "initiator", "from": "node", "ts": ..., "text": "..."}
    {"kind": "frame", ..., "binary": "<base64>", "injected": true}
    {"kind": "close", "conn": 0, "role": "initiator", "ts": ..., "code": 1000, "closed_by": "client"}
    {"kind": "end", "ts": ...}

A frame's ``text`` (or ``binary``) is the message exactly as on the wire; it becomes a
:class:`chanlog.model.Frame` through :meth:`Frame.from_wire` only when the transcript is built. The
``end`` record is written once the transcript file is complete; a journal whose last record is not
``end`` is *unfinished* (the proxy died, or the session is still running). A session that is continued
later (reestablish) appends after its ``end`` record and is unfinished again until its next ``end``.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from chanlog import __version__
from chanlog.errors import ChanlogError
from chanlog.model import PROTOCOLS, Close, Event, Frame, Open, Transcript, event_to_dict
from chanlog.transcript import DUMP_OPTIONS, write_atomic

#: The journal format version written in the header record (``chanlog_journal``).
JOURNAL_FORMAT = 1
#: Folder below the transcript folder that holds the journals.
JOURNAL_DIR = "journals"
#: File name suffix of a journal.
JOURNAL_SUFFIX = ".jsonl"
#: Events serialised per ``yaml.dump`` call when streaming a transcript.
YAML_CHUNK = 500



class JournalError(ChanlogError):
    """A journal cannot be read: missing file, a line that is not a JSON record, an unknown record."""


# -- writing ------------------------------------------------------------------------------------


class JournalWriter:
    """Appends records to one journal file, each flushed (and optionally fsynced) before returning.

    Thread-safe: every write holds :attr:`lock`, so a background transcript writer can check
    :attr:`size` and append the ``end`` record without racing the proxy's hooks.
    """

    def __init__(self, path: Path, *, fsync: bool = False) -> None:
        self.path = path
        """The journal file."""
        self.fsync = fsync
        """Also ``os.fsync`` after every record (survives a power cut, not only a killed process)."""
        self.lock = threading.Lock()
        """Held while a record is written, the file reopened or closed."""
        self.size = 0
        """Bytes in the file (after the last complete record)."""
        self._fh: IO[bytes] | None = None

    @property
    def closed(self) -> bool:
        """True when the file is not open for appending."""
        return self._fh is None

    def open(self) -> None:
        """Open (create or append to) the file. Raises ``OSError``."""
        with self.lock:
            self._open()

    def _open(self) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open across hooks
            self.size = self._fh.seek(0, os.SEEK_END)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line and flush it (reopening the file if it was closed)."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with self.lock:
            self._write(line)

    def _write(self, line: bytes) -> None:
        if self._fh is None:
            self._open()
        assert self._fh is not None
        self._fh.write(line + b"\n")
        self._fh.flush()
        if self.fsync:
            os.fsync(self._fh.fileno())
        self.size += len(line) + 1

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self.lock:
            self._close()

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def finish_if_unchanged(self, size: int, ts: float) -> bool:
        """Append the ``end`` record and close the file, but only when nothing was appended since
        the journal had ``size`` bytes (else the session went on and a later finish will end it)."""
        with self.lock:
            if self.size != size:
                return False
            self._write(json.dumps({"kind": "end", "ts": ts}, separators=(",", ":")).encode())
            self._close()
            return True

    # record helpers: one per kind, shapes as in the module docstring

    def header(self, session: str, transcript: str, started: str, t0: float, **extra: Any) -> None:
        """Write the header record (first line)."""
        self.write({"chanlog_journal": JOURNAL_FORMAT, "session": session, "transcript": transcript,
                    "started": started, "t0": t0, "recorder": f"chanlog {__version__}", **extra})

    def open_record(self, conn: int, role: str, ts: float, url: str,
                    headers: dict[str, str] | None = None) -> None:
        """Record that connection ``conn`` of ``role`` opened ``url``."""
        rec: dict[str, Any] = {"kind": "open", "conn": conn, "role": role, "ts": ts, "url": url}
        if headers:
            rec["headers"] = headers
        self.write(rec)

    def frame_record(self, conn: int, role: str, sender: str, ts: float, content: bytes, is_text: bool,
                     injected: bool = False) -> None:
        """Record one message exactly as on the wire (text decoded as UTF-8, else base64).

        The hot path of the recorder: the line is put together directly (``role`` and ``sender`` are
        fixed words, the content is JSON-escaped by :func:`json.dumps`), the same JSON as :meth:`write`
        would give with ASCII escapes.
        """
        text = None
        if is_text:
            try:
                text = content.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is not None:
            body = '"text":' + json.dumps(text)
        else:
            body = '"binary":"' + base64.b64encode(content).decode("ascii") + '"'
        flag = '"injected":true,' if injected else ""
        line = (f'{{"kind":"frame","conn":{int(conn)},"role":{json.dumps(role)},"from":{json.dumps(sender)},'
                f'"ts":{float(ts)!r},{flag}{body}}}')
        with self.lock:
            self._write(line.encode("ascii"))

    def close_record(self, conn: int, role: str, ts: float, code: int | None, closed_by: str | None,
                     reason: str | None) -> None:
        """Record that connection ``conn`` closed (WebSocket close code, ``client``/``node``)."""
        rec: dict[str, Any] = {"kind": "close", "conn": conn, "role": role, "ts": ts}
        if code is not None:
            rec["code"] = code
        if closed_by is not None:
            rec["closed_by"] = closed_by
        if reason:
            rec["reason"] = reason
        self.write(rec)


# -- reading ------------------------------------------------------------------------------------


@dataclass
class JournalInfo:
    """What a scan of a journal found (:func:`scan`)."""

    path: Path
    """The journal file."""
    header: dict[str, Any]
    """The header record."""
    protocol: str = "json-rpc"
    """``json-rpc`` or ``legacy``: the first open URL's ``protocol`` parameter, else guessed from frames."""
    connections: int = 0
    """Connections opened."""
    frames: int = 0
    """Frames recorded."""
    closes: int = 0
    """Connections whose close was recorded."""
    finished: bool = False
    """True when the last record is ``end`` (the transcript was written after it)."""
    truncated: int | None = None
    """The line number of an incomplete last line (the process died while writing it), if any."""
    channel_id: str | None = None
    """The first ``channel_id`` a node frame carried (or the reestablish URL's ``existing_channel_id``)."""
    last_ts: float | None = None
    """Time of the last record."""
    size: int = 0
    """Bytes read (the limit the scan was given, or the file size)."""
    roles: dict[int, str] = field(default_factory=dict)
    """Role of each connection number."""

    @property
    def session(self) -> str:
        """The session name from the header."""
        return str(self.header.get("session") or self.path.stem)

    def default_output(self) -> Path:
        """Where the recorder writes this journal's transcript: ``DIR/NAME.yaml`` for a journal in
        ``DIR/journals/``, else beside the journal."""
        name = Path(str(self.header.get("transcript") or f"{self.session}.yaml")).name
        if self.path.parent.name == JOURNAL_DIR:
            return self.path.parent.parent / name
        return self.path.with_name(name)


def iter_records(path: Path, limit: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number from 1, record)`` for each line of the journal, up to ``limit`` bytes.

    An incomplete last line (no newline, not valid JSON: the writer was killed mid-write) is skipped;
    its number is then yielded as ``(lineno, {"kind": "truncated"})``. Raises :class:`JournalError`
    naming ``path:line`` for an unreadable file or a bad line elsewhere.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise JournalError(f"cannot read: {exc.strerror}", str(path)) from None
    with fh:
        remaining = limit
        lineno = 0
        for raw in fh:
            if remaining is not None:
                if remaining <= 0:
                    break
                if len(raw) > remaining:
                    raw = raw[:remaining]
                remaining -= len(raw)
            lineno += 1
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError as exc:
                if not raw.endswith(b"\n"):
                    yield lineno, {"kind": "truncated"}
                    return
                raise JournalError(f"not a JSON record: {exc}", f"{path}:{lineno}") from None
            if not isinstance(rec, dict):
                raise JournalError("a journal record is a JSON object", f"{path}:{lineno}")
            yield lineno, rec


def scan(path: Path, limit: int | None = None) -> JournalInfo:
    """Read a journal once and summarise it (header, protocol, counts, finished or not).

    Raises :class:`JournalError` when the file is unreadable, empty or does not start with a header.
    """
    records = iter_records(path, limit)
    first = next(records, None)
    if first is None or "chanlog_journal" not in first[1]:
        where = f"{path}:{first[0]}" if first else f"{path}:1"
        raise JournalError("not a chanlog journal (the first line must be its header record)", where)
    header = first[1]
    version = header.get("chanlog_journal")
    if not isinstance(version, int) or version > JOURNAL_FORMAT:
        raise JournalError(f"journal format {version!r} is not supported (this chanlog reads {JOURNAL_FORMAT})",
                           f"{path}:{first[0]}")
    info = JournalInfo(path=path, header=header)
    url_protocol: str | None = None
    sniffed: str | None = None
    last_kind = None
    for lineno, rec in records:
        kind = rec.get("kind")
        if kind == "truncated":
            info.truncated = lineno
            break
        last_kind = kind
        if isinstance(rec.get("ts"), (int, float)):
            info.last_ts = float(rec["ts"])
        if kind == "open":
            info.connections += 1
            if isinstance(rec.get("conn"), int):
                info.roles[rec["conn"]] = str(rec.get("role"))
            params = dict(parse_qsl(urlsplit(str(rec.get("url", ""))).query, keep_blank_values=True))
            if url_protocol is None and params.get("protocol") in PROTOCOLS:
                url_protocol = params["protocol"]
            if info.channel_id is None and params.get("existing_channel_id"):
                info.channel_id = params["existing_channel_id"]
        elif kind == "frame":
            info.frames += 1
            text = rec.get("text")
            wants_id = info.channel_id is None and rec.get("from") == "node" and '"channel_id"' in str(text)
            if isinstance(text, str) and (sniffed is None or wants_id):
                frame = Frame.from_wire(text, role="initiator", conn=0, sender=str(rec.get("from")))
                obj = frame.obj
                if sniffed is None:
                    sniffed = "json-rpc" if "jsonrpc" in obj else ("legacy" if "action" in obj else None)
                if info.channel_id is None and rec.get("from") == "node":
                    info.channel_id = frame.channel_id
        elif kind == "close":
            info.closes += 1
    info.finished = last_kind == "end" and info.truncated is None
    info.protocol = url_protocol or sniffed or "json-rpc"
    info.size = limit if limit is not None else _file_size(path)
    return info


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def iter_events(path: Path, t0: float | None = None, limit: int | None = None) -> Iterator[Event]:
    """The journal's events as model objects, in journal order (``t`` relative to ``t0``, default the
    header's ``t0``). Raises :class:`JournalError` naming ``path:line`` for a malformed record."""
    records = iter_records(path, limit)
    first = next(records, None)
    if first is None:
        return
    if t0 is None:
        t0 = first[1].get("t0") if isinstance(first[1].get("t0"), (int, float)) else None
    for lineno, rec in records:
        kind = rec.get("kind")
        if kind in ("end", "truncated"):
            continue
        try:
            event = record_to_event(rec, t0)
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"malformed {kind} record: {exc}", f"{path}:{lineno}") from None
        if event is None:
            raise JournalError(f"unknown record kind {kind!r}", f"{path}:{lineno}")
        yield event


def record_to_event(rec: dict[str, Any], t0: float | None) -> Event | None:
    """One journal record as a model event (``None`` for an unknown kind). Raises ``KeyError``,
    ``TypeError`` or ``ValueError`` for a record missing or mistyping a key."""
    kind = rec.get("kind")
    role, conn = str(rec["role"]), int(rec["conn"])
    t = None
    if t0 is not None and isinstance(rec.get("ts"), (int, float)):
        t = max(0.0, round(float(rec["ts"]) - t0, 6))
    if kind == "frame":
        content: str | bytes
        if "text" in rec:
            content = str(rec["text"])
        else:
            content = base64.b64decode(rec["binary"], validate=True)
        return Frame.from_wire(content, role=role, conn=conn, sender=str(rec["from"]), t=t,
                               injected=bool(rec.get("injected", False)))
    if kind == "open":
        headers = rec.get("headers")
        return Open(role=role, conn=conn, t=t, url=str(rec["url"]), headers=dict(headers) if headers else None)
    if kind == "close":
        return Close(role=role, conn=conn, t=t, code=rec.get("code"), closed_by=rec.get("closed_by"),
                     reason=rec.get("reason"))
    return None


def transcript_head(info: JournalInfo) -> Transcript:
    """An event-less transcript carrying the name, protocol and source of the journal's session."""
    header = info.header
    source: dict[str, Any] = {"kind": "capture", "recorder": header.get("recorder"),
                              "started": header.get("started")}
    if info.channel_id:
        source["channel_id"] = info.channel_id
    for key in ("proxy",):
        if key in header:
            source[key] = header[key]
    if info.closes < info.connections:
        source["open_connections"] = info.connections - info.closes
    return Transcript(name=info.session, protocol=info.protocol, events=[],
                      source={k: v for k, v in source.items() if v is not None})


def load_journal(path: Path, limit: int | None = None) -> Transcript:
    """The whole transcript a journal holds, in memory (see :func:`write_transcript` for large ones).

    Raises :class:`JournalError` (naming ``path:line``) for an unreadable or malformed journal.
    """
    info = scan(path, limit)
    transcript = transcript_head(info)
    transcript.events = list(iter_events(path, limit=limit))
    return transcript


def write_transcript(journal: Path, out: Path | str, limit: int | None = None,
                     info: JournalInfo | None = None) -> JournalInfo:
    """Rebuild the transcript from ``journal`` and write it to ``out`` (``-`` for standard output).

    Constant memory: events are streamed into YAML in chunks of :data:`YAML_CHUNK`. The file is written
    atomically (temporary file in the same folder, flushed, fsynced, renamed), byte for byte what
    :func:`chanlog.transcript.dump` writes for the same transcript. Returns the scan of the journal.
    Raises :class:`JournalError` for a bad journal, ``OSError`` when ``out`` cannot be written.
    """
    info = info or scan(journal, limit)
    head = transcript_head(info)
    events = iter_events(journal, limit=limit)
    if str(out) == "-":
        import sys

        for piece in yaml_pieces(head, events):
            sys.stdout.write(piece)
        return info
    write_atomic(Path(out), yaml_pieces(head, events))
    return info


def yaml_pieces(head: Transcript, events: Iterable[Event]) -> Iterator[str]:
    """Transcript YAML (format 1) in pieces: the head's keys, then the events a chunk at a time."""
    doc = head.to_dict()
    doc.pop("events", None)
    yield yaml.dump(doc, **DUMP_OPTIONS)
    chunk: list[dict[str, Any]] = []
    started = False
    for event in events:
        chunk.append(event_to_dict(event))
        if len(chunk) >= YAML_CHUNK:
            if not started:
                yield "events:\n"
                started = True
            yield yaml.dump(chunk, **DUMP_OPTIONS)
            chunk = []
    if chunk:
        if not started:
            yield "events:\n"
            started = True
        yield yaml.dump(chunk, **DUMP_OPTIONS)
    if not started:
        yield "events: []\n"


def journal_paths(directory: Path) -> list[Path]:
    """The journal files below a transcript folder (``DIR/journals/*.jsonl``), sorted by name."""
    folder = directory / JOURNAL_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(JOURNAL_SUFFIX) and p.is_file())


def find_unfinished(directory: Path) -> list[JournalInfo | JournalError]:
    """Scan every journal of a transcript folder and return the unfinished ones (and the unreadable
    ones, as :class:`JournalError`), for the recorder to report at start."""
    found: list[JournalInfo | JournalError] = []
    for path in journal_paths(directory):
        try:
            info = scan(path)
        except JournalError as exc:
            found.append(exc)
            continue
        if not info.finished:
            found.append(info)
    return found
