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
    {"kind": "merge", "session": OTHER, "journal": "OTHER.jsonl", "conn_offset": 2, "ts": ...}
    ... every open, frame and close record of OTHER, ``conn`` plus ``conn_offset`` ...
    {"kind": "merge_end", "session": OTHER, "records": 12, "ts": ...}
    {"kind": "merged_into", "session": NAME, "journal": "NAME.jsonl", "transcript": "NAME.yaml", "ts": ...}

A frame's ``text`` (or ``binary``) is the message exactly as on the wire; it becomes a
:class:`chanlog.model.Frame` through :meth:`Frame.from_wire` only when the transcript is built. The
``end`` record is written once the transcript file is complete; a journal whose last record is not
``end`` is *unfinished* (the proxy died, or the session is still running). A session that is continued
later (reestablish) appends after its ``end`` record and is unfinished again until its next ``end``.

Open, frame and close records carry ``n``, a sequence number the recorder counts over all sessions of
one proxy run, so that records of two sessions can be put back in the order the proxy saw them.

Merging (two sessions that turn out to carry the same ``channel_id``): the surviving journal gets a
``merge`` record, a copy of the absorbed journal's records (connection numbers shifted past its own) and a
``merge_end`` record, flushed; only then the absorbed journal gets its last record, ``merged_into``,
naming the survivor. A proxy killed in between leaves a block without ``merge_end``, which readers ignore
(the absorbed journal still holds every record); a journal ending in ``merged_into`` is finished and its
records live on in the survivor. Readers put a journal's records in ``n`` order: each merged block and
each run of records between blocks is in ``n`` order, and they are merged in constant memory
(:func:`ordered_records`). Connections are numbered in the transcript in the order they appear there.
"""

from __future__ import annotations

import base64
import dataclasses
import heapq
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
from chanlog.model import PROTOCOLS, Close, Event, Frame, Open, Transcript, event_to_dict, parse_json
from chanlog.transcript import DUMP_OPTIONS, write_atomic

#: The journal format version written in the header record (``chanlog_journal``).
JOURNAL_FORMAT = 1
#: Folder below the transcript folder that holds the journals.
JOURNAL_DIR = "journals"
#: File name suffix of a journal.
JOURNAL_SUFFIX = ".jsonl"
#: Events serialised per ``yaml.dump`` call when streaming a transcript.
YAML_CHUNK = 500
#: Record kinds that hold the session's events (the others are markers).
EVENT_KINDS = ("open", "frame", "close")


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
                    headers: dict[str, str] | None = None, n: int | None = None) -> None:
        """Record that connection ``conn`` of ``role`` opened ``url`` (``n``: the recorder's sequence
        number of the record)."""
        rec: dict[str, Any] = {"kind": "open", "conn": conn, "role": role, "ts": ts, "url": url}
        if n is not None:
            rec["n"] = n
        if headers:
            rec["headers"] = headers
        self.write(rec)

    def frame_record(self, conn: int, role: str, sender: str, ts: float, content: bytes, is_text: bool,
                     injected: bool = False, n: int | None = None) -> None:
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
        seq = "" if n is None else f'"n":{int(n)},'
        line = (f'{{"kind":"frame","conn":{int(conn)},"role":{json.dumps(role)},"from":{json.dumps(sender)},'
                f'"ts":{float(ts)!r},{seq}{flag}{body}}}')
        with self.lock:
            self._write(line.encode("ascii"))

    def close_record(self, conn: int, role: str, ts: float, code: int | None, closed_by: str | None,
                     reason: str | None, n: int | None = None) -> None:
        """Record that connection ``conn`` closed (WebSocket close code, ``client``/``node``)."""
        rec: dict[str, Any] = {"kind": "close", "conn": conn, "role": role, "ts": ts}
        if n is not None:
            rec["n"] = n
        if code is not None:
            rec["code"] = code
        if closed_by is not None:
            rec["closed_by"] = closed_by
        if reason:
            rec["reason"] = reason
        self.write(rec)

    def absorb(self, other: Path, session: str, conn_offset: int, ts: float) -> int:
        """Copy every open, frame and close record of the journal ``other`` (session ``session``) into
        this one, in ``n`` order, between a ``merge`` and a ``merge_end`` record, connection numbers
        plus ``conn_offset``; flushed (and fsynced) once at the end. Returns the records copied.
        Raises :class:`JournalError` when ``other`` cannot be read, ``OSError`` when this cannot be written.
        """
        info = scan(other)
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        count = 0
        with self.lock:
            if self._fh is None:
                self._open()
            assert self._fh is not None
            fh = self._fh

            def put(rec: dict[str, Any]) -> None:
                line = dumps(rec).encode("utf-8") + b"\n"
                fh.write(line)
                self.size += len(line)

            put({"kind": "merge", "session": session, "journal": other.name, "conn_offset": conn_offset,
                 "ts": ts})
            for _, rec in ordered_records(other, info=info):
                put({**rec, "conn": int(rec["conn"]) + conn_offset})
                count += 1
            put({"kind": "merge_end", "session": session, "records": count, "ts": ts})
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())
        return count

    def mark_merged(self, session: str, journal: str, transcript: str, ts: float) -> None:
        """Write the last record, ``merged_into`` (the session, journal file and transcript file that now
        hold this journal's records), and close the file."""
        with self.lock:
            rec = {"kind": "merged_into", "session": session, "journal": journal, "transcript": transcript,
                   "ts": ts}
            self._write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
            self._close()


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
    """Role of each connection number (as numbered in the journal)."""
    blocks: list[tuple[int, int]] = field(default_factory=list)
    """Line numbers (first, last) of the records of each complete merged block (``merge`` ... ``merge_end``)."""
    merged: list[str] = field(default_factory=list)
    """Sessions merged into this one (complete blocks)."""
    partial_merge: int | None = None
    """Line number of a ``merge`` record whose block has no ``merge_end`` (the proxy died while copying):
    the block is ignored, its records are still in the other journal."""
    header_line: int = 1
    """Line number of the header record."""
    merged_into: dict[str, Any] | None = None
    """The ``merged_into`` record when this session was merged into another (its records live on there)."""

    @property
    def session(self) -> str:
        """The session name from the header."""
        return str(self.header.get("session") or self.path.stem)

    def sibling(self, name: str) -> Path:
        """A file named ``name`` (a journal or transcript named in a merge record) beside this journal's
        transcript or journal: ``DIR/journals/NAME.jsonl``, ``DIR/NAME.yaml``."""
        name = Path(name).name
        if name.endswith(JOURNAL_SUFFIX):
            return self.path.with_name(name)
        return self.default_output().with_name(name)

    def default_output(self) -> Path:
        """Where the recorder writes this journal's transcript: ``DIR/NAME.yaml`` for a journal in
        ``DIR/journals/``, else beside the journal."""
        name = Path(str(self.header.get("transcript") or f"{self.session}.yaml")).name
        if self.path.parent.name == JOURNAL_DIR:
            return self.path.parent.parent / name
        return self.path.with_name(name)


def iter_records(path: Path, limit: int | None = None, first: int = 1,
                 last: int | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number from 1, record)`` for each line of the journal, up to ``limit`` bytes (only lines
    ``first`` to ``last`` are parsed and yielded).

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
            if lineno < first or not raw.strip():
                continue
            if last is not None and lineno > last:
                break
            try:
                rec = parse_json(raw)  # bounded depth and numbers (issue 16)
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
    info = JournalInfo(path=path, header=header, header_line=first[0])
    url_protocol: str | None = None
    sniffed: str | None = None
    last_kind = None
    block: tuple[int, str, tuple[Any, ...]] | None = None  # merge line, session, counts before it
    for lineno, rec in records:
        kind = rec.get("kind")
        if kind == "truncated":
            info.truncated = lineno
            break
        last_kind = kind
        if isinstance(rec.get("ts"), (int, float)):
            info.last_ts = float(rec["ts"])
        if kind == "merge":
            block = (lineno, str(rec.get("session")), (info.connections, info.frames, info.closes,
                                                       dict(info.roles), info.channel_id, url_protocol, sniffed))
        elif kind == "merge_end" and block is not None:
            info.blocks.append((block[0] + 1, lineno - 1))
            info.merged.append(block[1])
            block = None
        elif kind == "merged_into":
            info.merged_into = rec
        elif kind == "open":
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
    if block is not None:  # the proxy died while copying a merged session: its journal still has it all
        info.partial_merge = block[0]
        (info.connections, info.frames, info.closes, info.roles, info.channel_id, url_protocol,
         sniffed) = block[2]
    info.finished = last_kind in ("end", "merged_into") and info.truncated is None
    info.protocol = url_protocol or sniffed or "json-rpc"
    info.size = limit if limit is not None else _file_size(path)
    return info


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def ordered_records(path: Path, limit: int | None = None,
                    info: JournalInfo | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every event record (not header, ``end`` or merge markers) of the
    journal in the order the proxy saw them: by ``n`` across merged blocks (module docstring), journal
    order otherwise; a block without ``merge_end`` is left out. Constant memory (the file is read once
    per block and per run between blocks). ``info``: the journal's :func:`scan`, made when not given.
    Raises :class:`JournalError` naming ``path:line`` for an unreadable file or a bad line."""
    info = info or scan(path, limit)
    end = info.partial_merge - 1 if info.partial_merge is not None else None
    start = info.header_line + 1
    if not info.blocks:
        yield from _event_records(path, limit, start, end)
        return
    runs: list[tuple[int, int | None]] = []
    for first, last in info.blocks:
        runs += [(start, first - 2), (first, last)]
        start = last + 2
    runs.append((start, end))
    streams = [_keyed(_event_records(path, limit, a, b)) for a, b in runs if b is None or b >= a]
    for _, _, lineno, rec in heapq.merge(*streams):
        yield lineno, rec


def _event_records(path: Path, limit: int | None, first: int,
                   last: int | None) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, rec in iter_records(path, limit, first, last):
        kind = rec.get("kind")
        if kind in ("end", "truncated", "merge", "merge_end", "merged_into"):
            continue
        yield lineno, rec


def _keyed(records: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[tuple[float, int, int, dict[str, Any]]]:
    """``(n, position, line, record)``: a record without ``n`` sorts with the record before it."""
    n = -1.0
    for position, (lineno, rec) in enumerate(records):
        if isinstance(rec.get("n"), int):
            n = float(rec["n"])
        yield n, position, lineno, rec


def iter_events(path: Path, t0: float | None = None, limit: int | None = None,
                info: JournalInfo | None = None) -> Iterator[Event]:
    """The journal's events as model objects, in the order the proxy saw them (:func:`ordered_records`;
    ``t`` relative to ``t0``, default the header's ``t0``); connections numbered from 0 in the order they
    first appear. Raises :class:`JournalError` naming ``path:line`` for a malformed record."""
    info = info or scan(path, limit)
    if t0 is None:
        t0 = info.header.get("t0") if isinstance(info.header.get("t0"), (int, float)) else None
    numbers: dict[int, int] = {}
    for lineno, rec in ordered_records(path, limit, info):
        kind = rec.get("kind")
        try:
            event = record_to_event(rec, t0)
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"malformed {kind} record: {exc}", f"{path}:{lineno}") from None
        if event is None:
            raise JournalError(f"unknown record kind {kind!r}", f"{path}:{lineno}")
        conn = numbers.setdefault(event.conn, len(numbers))
        if conn != event.conn:
            event = dataclasses.replace(event, conn=conn)
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
    transcript.events = list(iter_events(path, limit=limit, info=info))
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
    events = iter_events(journal, limit=limit, info=info)
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
