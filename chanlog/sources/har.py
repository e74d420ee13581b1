"""HAR in and out: WebSocket captures of browsers, Playwright and mitmproxy <-> transcripts.

HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) has no WebSocket messages of its own; Chrome
DevTools, Playwright and mitmproxy's ``hardump`` all write them the same way, as extension fields of the
upgrade request's entry::

    {"_resourceType": "websocket", "request": {"url": "ws://host/channel?...&role=initiator", ...},
     "startedDateTime": "2026-12-01T22:15:01.123Z",
     "_webSocketMessages": [{"type": "send" | "receive", "time": 1764627301.5, "opcode": 1, "data": "..."}]}

``type`` ``send`` is the client's message, ``receive`` the server's; ``time`` is a Unix time in seconds;
``opcode`` 1 is a text message (``data`` the text), 2 a binary one (``data`` base64).

Import (:func:`chanlog.record.har.import_har`, which needs mitmproxy): every entry with ``_webSocketMessages`` whose URL path is the channel path
becomes a connection; the connections are replayed, in the order of their times, through the recorder
itself (:class:`chanlog.record.addon.ChannelRecorder`, in a temporary folder), so they are paired into channel
sessions exactly as a live recording pairs them: one transcript per session, frame times from the HAR.
chanlog's own export adds ``_chanlogClose`` (close code, side, reason, time) to an entry; other HARs know
no close, and their connections close at their last message with no code.

Export (:func:`export_har`): one entry per connection of a transcript, its frames as
``_webSocketMessages``, its notes as the entry's ``comment``.

Limits: ``chanlog import`` streams a HAR (:func:`stream_entries`, ijson: one entry in memory at a time, any
size; :func:`chanlog.record.har.import_har_file`); :func:`load_har`/:func:`read_har` read a document whole
(for documents already in memory) and refuse more than :data:`MAX_HAR_BYTES`.
Bad input raises :class:`HarError` naming the file and the entry (``capture.har: entries[3]: ...``);
entries that cannot be recorded (no ``role`` parameter, a message of an unknown opcode, base64 that does
not decode) are kept where possible and always reported in :attr:`HarImport.notes`, which also go into
each transcript's ``source.notes``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chanlog import __version__
from chanlog.errors import ChanlogError
from chanlog.model import ROLES, Frame, Note, Transcript

#: Largest HAR read whole (bytes: :func:`load_har`, :func:`read_har`; parsed, about 6x that in memory); a
#: streamed import (:func:`stream_entries`) has no such limit.
MAX_HAR_BYTES = 1 << 30
#: The WebSocket opcodes a HAR message may carry: text and binary.
TEXT, BINARY = 1, 2
#: Unix time used for an export when the transcript says nothing of when it happened (2000-01-01 UTC:
#: conspicuous, and not 0, which the recorder would read as "no time").
EPOCH = 946684800.0


class HarError(ChanlogError):
    """A HAR cannot be read: not JSON, not a HAR, no WebSocket entries on the channel path."""


@dataclass
class HarMessage:
    """One ``_webSocketMessages`` item."""

    from_client: bool
    """``type`` ``send``: the client (participant) sent it."""
    time: float
    """Unix time in seconds."""
    content: bytes
    """The message as on the wire."""
    is_text: bool
    """Opcode 1 (text) rather than 2 (binary)."""


@dataclass
class HarConnection:
    """One WebSocket entry of a HAR."""

    index: int
    """Its position in ``log.entries``."""
    url: str
    """The request URL (``ws://``, or ``http://`` as mitmproxy writes it)."""
    started: float
    """``startedDateTime`` as a Unix time."""
    headers: dict[str, str]
    """Request headers (a repeated header's values joined with ``, ``)."""
    messages: list[HarMessage]
    """Its messages in HAR order."""
    close: dict[str, Any] | None = None
    """chanlog's ``_chanlogClose`` (``code``, ``closed_by``, ``reason``, ``time``), when present."""
    handshake: float = 0.0
    """Seconds from ``startedDateTime`` to the end of the 101 response: ``timings`` send + wait + receive
    (the moment the recorder stamps an open with)."""
    count: int | None = None
    """Messages it has when they are not kept in :attr:`messages` (:meth:`spooled`)."""
    first_time: float | None = None
    """The first message's time when :attr:`messages` is not kept."""
    last_time: float | None = None
    """The latest message time when :attr:`messages` is not kept."""

    @property
    def opened(self) -> float:
        """When the connection was open: the handshake's end, no later than its first message."""
        if self.count is not None:
            return min([self.started + self.handshake, *([] if self.first_time is None else [self.first_time])])
        return min([self.started + self.handshake, *(m.time for m in self.messages[:1])])

    def spooled(self) -> HarConnection:
        """This connection without its messages (moved elsewhere: a streamed import spools them to disk),
        keeping what :attr:`opened` and :attr:`ended` need of them and their :attr:`count`."""
        self.first_time = self.messages[0].time if self.messages else None
        self.last_time = max((m.time for m in self.messages), default=None)
        self.count = len(self.messages)
        self.messages = []
        return self

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def role(self) -> str | None:
        role = dict(parse_qsl(urlsplit(self.url).query)).get("role")
        return role if role in ROLES else None

    @property
    def ended(self) -> float:
        """When it closed: the recorded close, else its last message (or its start)."""
        if self.close and isinstance(self.close.get("time"), (int, float)):
            return float(self.close["time"])
        if self.count is not None:
            return max([self.started, *([] if self.last_time is None else [self.last_time])])
        return max([self.started, *(m.time for m in self.messages)])


@dataclass
class HarImport:
    """What :func:`chanlog.record.har.import_har` made of a HAR."""

    transcripts: list[Transcript]
    """One per channel session, in the order the sessions started."""
    notes: list[str] = field(default_factory=list)
    """What was skipped or changed, one sentence each (entries off the channel path are counted)."""


# -- reading ------------------------------------------------------------------------------------


def load_har(text: str | bytes, filename: str = "<har>") -> dict[str, Any]:
    """Parse HAR text; raises :class:`HarError` naming ``filename`` (with line and column for JSON
    syntax) when it is not JSON or has no ``log.entries`` list."""
    if len(text) > MAX_HAR_BYTES:
        raise HarError(f"{len(text):,} bytes is more than a HAR may have here ({MAX_HAR_BYTES:,}, "
                       "chanlog.sources.har.MAX_HAR_BYTES)", filename)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarError(f"not JSON: {exc.msg}", f"{filename}:{exc.lineno}:{exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise HarError(f"not JSON: {exc}", filename) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("log"), dict) \
            or not isinstance(doc["log"].get("entries"), list):
        raise HarError("not a HAR: no log.entries list (HAR 1.2: {\"log\": {\"entries\": [...]}})", filename)
    return doc


def read_har(path: str | Path) -> tuple[dict[str, Any], str]:
    """``(HAR document, name)`` of a file, ``-`` meaning standard input. Raises :class:`HarError`."""
    import sys

    if str(path) == "-":
        return load_har(sys.stdin.buffer.read(), "<stdin>"), "<stdin>"
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_HAR_BYTES:
            raise HarError(f"{size:,} bytes is more than a HAR may have here ({MAX_HAR_BYTES:,})", str(p))
        return load_har(p.read_bytes(), str(p)), str(p)
    except OSError as exc:
        raise HarError(f"cannot read: {exc.strerror}", str(p)) from None


def looks_like_har(path: str | Path) -> bool:
    """True when ``path`` names a HAR: a ``.har`` extension, or (a file or standard input) whose first
    non-blank character is ``{`` (a Markdown log never starts so). Reads at most a few kilobytes."""
    import sys

    if str(path) == "-":
        peek = getattr(sys.stdin.buffer, "peek", None)
        head = peek(4096) if peek is not None else b""
    elif Path(path).suffix.lower() == ".har":
        return True
    else:
        try:
            with open(path, "rb") as fh:
                head = fh.read(4096)
        except OSError:
            return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def websocket_entries(doc: dict[str, Any], filename: str = "<har>") -> Iterator[HarConnection]:
    """Every entry of a HAR that carries ``_webSocketMessages`` (or ``_resourceType: websocket``), as
    :class:`HarConnection`. Raises :class:`HarError` naming ``entries[i]`` (and the message) for a field
    of the wrong type; binary data that is not base64 is kept as text (see :func:`chanlog.record.har.import_har`)."""
    for i, entry in enumerate(doc["log"]["entries"]):
        conn = entry_connection(entry, i, filename)
        if conn is not None:
            yield conn


def entry_connection(entry: Any, i: int, filename: str = "<har>") -> HarConnection | None:
    """Entry ``i`` of a HAR as a :class:`HarConnection`, or ``None`` when it is no WebSocket entry (no
    ``_webSocketMessages`` nor ``_resourceType: websocket``). Raises :class:`HarError` naming ``entries[i]``
    (and the message) for a field of the wrong type."""
    where = f"{filename}: entries[{i}]"
    if not isinstance(entry, dict):
        raise HarError("an entry must be an object", where)
    raw = entry.get("_webSocketMessages")
    if raw is None and entry.get("_resourceType") != "websocket":
        return None
    request = entry.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise HarError("request.url (a string) is missing", where)
    started = _har_time(entry.get("startedDateTime"), f"{where}.startedDateTime")
    if raw is not None and not isinstance(raw, list):
        raise HarError("_webSocketMessages must be a list", where)
    kept = list(entry_messages(entry, i, filename, started))
    headers: dict[str, str] = {}
    for h in request.get("headers") or []:
        if isinstance(h, dict) and isinstance(h.get("name"), str) and isinstance(h.get("value"), str):
            name = h["name"]
            if name.startswith(":"):  # HTTP/2 pseudo-headers
                continue
            headers[name] = f"{headers[name]}, {h['value']}" if name in headers else h["value"]
    close = entry.get("_chanlogClose")
    timings = entry.get("timings") if isinstance(entry.get("timings"), dict) else {}
    handshake = sum(v for k in ("send", "wait", "receive")
                    if isinstance(v := timings.get(k), (int, float)) and not isinstance(v, bool) and v > 0)
    return HarConnection(i, request["url"], started, headers, kept, close if isinstance(close, dict) else None,
                         handshake / 1000)


def entry_messages(entry: dict[str, Any], i: int, filename: str, started: float) -> Iterator[HarMessage]:
    """The checked messages of a WebSocket entry (:func:`entry_connection`), in HAR order."""
    where = f"{filename}: entries[{i}]"
    for j, m in enumerate(entry.get("_webSocketMessages") or []):
        yield _message(m, f"{where}._webSocketMessages[{j}]", started)


def stream_entries(fh: Any, filename: str, meta: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    """``(i, entry)`` for each entry of a HAR file read incrementally (ijson, its C parser where installed):
    one entry in memory at a time, whatever the file's size; ``meta["creator"]`` gets ``log.creator``
    (wherever it stands in the file) by the end. Raises :class:`HarError` for JSON syntax (naming the byte
    offset as the parser reports it) or a document without a ``log.entries`` list (HAR 1.2)."""
    import ijson

    builder: Any = None
    target = ""
    count = 0
    seen_entries = False
    source = _Consumed(fh)
    try:
        for prefix, event, value in ijson.parse(source, use_float=True):
            if builder is not None:
                builder.event(event, value)
                if prefix == target and event in ("end_map", "end_array"):
                    if target == "log.creator":
                        meta["creator"] = builder.value
                    else:
                        yield count, builder.value
                        count += 1
                    builder = None
                continue
            if prefix == "log.entries" and event == "start_array":
                seen_entries = True
            elif prefix in ("log.entries.item", "log.creator"):
                if event in ("start_map", "start_array"):
                    builder, target = ijson.ObjectBuilder(), prefix
                    builder.event(event, value)
                elif prefix == "log.entries.item":
                    yield count, value  # not an object: entry_connection says so
                    count += 1
    except ijson.JSONError as exc:
        if source.head is not None:  # an error in the first bytes: where exactly, as json says it
            try:
                json.loads(bytes(source.head))
            except json.JSONDecodeError as error:
                raise HarError(f"not JSON: {error.msg}", f"{filename}:{error.lineno}:{error.colno}") from None
            except (ValueError, RecursionError):
                pass
        message = " ".join(str(exc).split())[:200]
        raise HarError(f"not JSON: {message} (in the {source.consumed:,} bytes read)", filename) from None
    if not seen_entries:
        raise HarError("not a HAR: no log.entries list (HAR 1.2: {\"log\": {\"entries\": [...]}})", filename)


#: Bytes of a streamed HAR kept to name the line and column of a JSON syntax error found in them (past them,
#: the parser's own message and a byte count).
SYNTAX_HEAD = 1 << 20


class _Consumed:
    """A binary file read through, counting the bytes and keeping the first :data:`SYNTAX_HEAD` of them."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.consumed = 0
        self.head: bytearray | None = bytearray()

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.consumed += len(data)
        if self.head is not None:
            if len(self.head) + len(data) > SYNTAX_HEAD:
                self.head = None
            else:
                self.head += data
        return data


def _har_time(value: Any, where: str) -> float:
    if not isinstance(value, str):
        raise HarError("startedDateTime (an ISO 8601 date) is missing", where)
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HarError(f"startedDateTime {value[:40]!r} is not an ISO 8601 date", where) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _message(m: Any, where: str, started: float) -> HarMessage:
    if not isinstance(m, dict):
        raise HarError("a WebSocket message must be an object with type, time, opcode, data", where)
    kind = m.get("type")
    if kind not in ("send", "receive"):
        raise HarError(f"type must be 'send' or 'receive', not {kind!r}", where)
    t = m.get("time", started)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise HarError(f"time must be a number (Unix seconds), not {t!r}", where)
    data = m.get("data", "")
    if not isinstance(data, str):
        raise HarError(f"data must be a string, not {type(data).__name__}", where)
    opcode = m.get("opcode", TEXT)
    if opcode == BINARY:
        try:
            return HarMessage(kind == "send", float(t), base64.b64decode(data, validate=True), False)
        except (binascii.Error, ValueError):
            pass  # kept as text; import_har notes it
    return HarMessage(kind == "send", float(t), data.encode("utf-8", "surrogatepass"), True)


# -- import -------------------------------------------------------------------------------------


# -- export -------------------------------------------------------------------------------------


def export_har(transcript: Transcript) -> dict[str, Any]:
    """A HAR 1.2 document of a transcript: one entry per connection (in order of their number), each a
    ``GET`` of its open URL answered ``101 Switching Protocols``, with ``_resourceType: websocket``, its
    frames as ``_webSocketMessages`` (text as is, binary in base64 with opcode 2), its close as
    ``_chanlogClose`` and its notes as the entry's ``comment``.

    Times: the transcript's start (``source.started``, else :data:`EPOCH`) plus each event's ``t``; a
    transcript with events of unknown time (most node logs) gets times 1 ms apart in event order, so the
    order survives an import, and says so in ``log.comment``.
    """
    t0 = _start_of(transcript)
    timed = all(e.t is not None for e in transcript.events)
    times = {id(e): t0 + (e.t if timed else i / 1000) for i, e in enumerate(transcript.events)}  # type: ignore[operator]
    entries = []
    for connection in transcript.connections():
        opened = connection.open
        first = connection.events[0]
        start = times[id(opened or first)]
        url = opened.url if opened is not None else _implied_url(transcript, connection.role)
        messages = []
        notes = []
        for e in connection.events:
            if isinstance(e, Frame):
                wire = e.wire()
                messages.append({"type": "send" if e.sender == "client" else "receive", "time": times[id(e)],
                                 "opcode": BINARY if isinstance(wire, bytes) else TEXT,
                                 "data": base64.b64encode(wire).decode("ascii") if isinstance(wire, bytes) else wire})
            elif isinstance(e, Note):
                notes.append(e.text)
        end = times[id(connection.events[-1])]
        entry: dict[str, Any] = {
            "startedDateTime": datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z"),
            "time": round(max(0.0, end - start) * 1000, 3),
            "request": {"method": "GET", "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
                        "headers": [{"name": k, "value": v} for k, v in (opened.headers or {}).items()]
                        if opened is not None else [],
                        "queryString": [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(url).query,
                                                                                      keep_blank_values=True)],
                        "headersSize": -1, "bodySize": 0},
            "response": {"status": 101, "statusText": "Switching Protocols", "httpVersion": "HTTP/1.1",
                         "cookies": [], "headers": [], "content": {"size": 0, "mimeType": ""},
                         "redirectURL": "", "headersSize": -1, "bodySize": 0},
            "cache": {},
            "timings": {"send": 0, "wait": 0, "receive": 0},
            "_resourceType": "websocket",
            "_webSocketMessages": messages,
        }
        closed = connection.close
        if closed is not None:
            entry["_chanlogClose"] = {k: v for k, v in (("code", closed.code), ("closed_by", closed.closed_by),
                                                       ("reason", closed.reason), ("time", times[id(closed)]))
                                      if v is not None}
        if notes:
            entry["comment"] = "\n".join(notes)
        entries.append(entry)
    log: dict[str, Any] = {"version": "1.2", "creator": {"name": "chanlog", "version": __version__},
                           "entries": entries,
                           "comment": f"chanlog transcript {transcript.name} ({transcript.protocol})"}
    if not timed:
        log["comment"] += "; its events have no times: they are 1 ms apart here, in transcript order"
    return {"log": log}


def _start_of(transcript: Transcript) -> float:
    started = transcript.source.get("started")
    if isinstance(started, str):
        try:
            stamp = datetime.fromisoformat(started.replace("Z", "+00:00"))
            return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()
        except ValueError:
            pass
    return EPOCH


def _implied_url(transcript: Transcript, role: str) -> str:
    """The URL of a connection the transcript shows only from its middle (no open event)."""
    from urllib.parse import urlencode

    return f"ws://localhost/channel?{urlencode({**transcript.params, 'role': role})}"
