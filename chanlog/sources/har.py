"""HAR in and out: WebSocket captures of browsers, Playwright and mitmproxy <-> transcripts.

HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) has no WebSocket messages of its own; Chrome
DevTools, Playwright and mitmproxy's ``hardump`` all write them the same way, as extension fields of the
upgrade request's entry::

    {"_resourceType": "websocket", "request": {"url": "ws://host/channel?...&role=initiator", ...},
     "startedDateTime": "2026-12-01T22:15:01.123Z",
     "_webSocketMessages": [{"type": "send" | "receive", "time": 1764627301.5, "opcode": 1, "data": "..."}]}

``type`` ``send`` is the client's message, ``receive`` the server's; ``time`` is a Unix time in seconds;
``opcode`` 1 is a text message (``data`` the text), 2 a binary one (``data`` base64).

Import (:func:`import_har`): every entry with ``_webSocketMessages`` whose URL path is the channel path
becomes a connection; the connections are replayed, in the order of their times, through the recorder
itself (:class:`chanlog.capture.ChannelRecorder`, in a temporary folder), so they are paired into channel
sessions exactly as a live recording pairs them: one transcript per session, frame times from the HAR.
chanlog's own export adds ``_chanlogClose`` (close code, side, reason, time) to an entry; other HARs know
no close, and their connections close at their last message with no code.

Export (:func:`export_har`): one entry per connection of a transcript, its frames as
``_webSocketMessages``, its notes as the entry's ``comment``.

Limits: a HAR is one JSON document and is read whole; files above :data:`MAX_HAR_BYTES` are refused.
Bad input raises :class:`HarError` naming the file and the entry (``capture.har: entries[3]: ...``);
entries that cannot be recorded (no ``role`` parameter, a message of an unknown opcode, base64 that does
not decode) are kept where possible and always reported in :attr:`HarImport.notes`, which also go into
each transcript's ``source.notes``.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chanlog import __version__
from chanlog.errors import ChanlogError
from chanlog.model import ROLES, Frame, Note, Transcript

#: Largest HAR file read (bytes).
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

    @property
    def opened(self) -> float:
        """When the connection was open: the handshake's end, no later than its first message."""
        return min([self.started + self.handshake, *(m.time for m in self.messages[:1])])

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
        return max([self.started, *(m.time for m in self.messages)])


@dataclass
class HarImport:
    """What :func:`import_har` made of a HAR."""

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
    of the wrong type; binary data that is not base64 is kept as text (see :func:`import_har`)."""
    for i, entry in enumerate(doc["log"]["entries"]):
        where = f"{filename}: entries[{i}]"
        if not isinstance(entry, dict):
            raise HarError("an entry must be an object", where)
        raw = entry.get("_webSocketMessages")
        if raw is None and entry.get("_resourceType") != "websocket":
            continue
        request = entry.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("url"), str):
            raise HarError("request.url (a string) is missing", where)
        started = _har_time(entry.get("startedDateTime"), f"{where}.startedDateTime")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise HarError("_webSocketMessages must be a list", where)
        messages = [_message(m, f"{where}._webSocketMessages[{j}]", started) for j, m in enumerate(raw)]
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
        yield HarConnection(i, request["url"], started, headers, messages,
                            close if isinstance(close, dict) else None, handshake / 1000)


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


def import_har(doc: dict[str, Any], filename: str = "<har>", *, channel_path: str = "/channel",
               headers: bool = False) -> HarImport:
    """Turn the channel connections of a HAR document into transcripts, paired as the recorder pairs
    them (:mod:`chanlog.capture`: by channel parameters, ``existing_channel_id`` and the ``channel_id``
    the node names; one transcript per channel session).

    ``channel_path`` is the endpoint (the recorder's ``chanlog_path``); ``headers`` keeps the upgrade
    request headers in the open events (``chanlog_headers``; browsers' HARs hold cookies). Times are
    the HAR's: ``startedDateTime`` plus the handshake's ``timings`` for an open, each message's ``time``.

    Raises :class:`HarError` when the HAR has no WebSocket entry, or none on ``channel_path`` with a
    ``role`` parameter (saying what it has instead). Everything else that is not recorded as is goes
    into :attr:`HarImport.notes`.
    """
    from chanlog.record.pairing import path_matches

    conns = list(websocket_entries(doc, filename))
    if not conns:
        raise HarError("no WebSocket entries (_webSocketMessages) in this HAR; record it with WebSockets "
                       "enabled (Chrome DevTools, Playwright, mitmproxy --set hardump=FILE)", filename)
    notes: list[str] = []
    on_path = [c for c in conns if path_matches(urlsplit(c.url).path, channel_path)]
    elsewhere = len(conns) - len(on_path)
    if elsewhere:
        paths = sorted({c.path for c in conns} - {c.path for c in on_path})
        notes.append(f"{elsewhere} WebSocket entries not on {channel_path} left out ({', '.join(paths[:5])})")
    usable = []
    for c in on_path:
        if c.role is None:
            notes.append(f"entries[{c.index}]: {c.url[:120]} has no role=initiator|responder; "
                         f"its {len(c.messages)} messages are not in any transcript")
        else:
            usable.append(c)
    if not usable:
        raise HarError(f"none of the {len(conns)} WebSocket entries is a channel connection on {channel_path} "
                       f"with role=initiator|responder"
                       + (f" ({'; '.join(notes)})" if notes else ""), filename)
    for c in usable:
        raw = doc["log"]["entries"][c.index].get("_webSocketMessages") or []
        for j, m in enumerate(raw):
            if m.get("opcode", TEXT) not in (TEXT, BINARY):
                notes.append(f"entries[{c.index}]._webSocketMessages[{j}]: opcode {m.get('opcode')!r} is not "
                             "text (1) or binary (2); recorded as a text frame")
            elif m.get("opcode") == BINARY and c.messages[j].is_text:
                notes.append(f"entries[{c.index}]._webSocketMessages[{j}]: binary data that is not base64; "
                             "recorded as a text frame")
            elif m.get("opcode") == BINARY:
                notes.append(f"entries[{c.index}]._webSocketMessages[{j}]: a binary frame (kept as binary)")
    transcripts = _record(usable, channel_path, headers)
    creator = doc["log"].get("creator")
    creator_name = " ".join(str(creator.get(k, "")) for k in ("name", "version")).strip() \
        if isinstance(creator, dict) else ""
    for t in transcripts:
        source: dict[str, Any] = {"kind": "har", "file": Path(filename).name}
        if creator_name:
            source["creator"] = creator_name
        for key in ("channel_id", "started"):
            if key in t.source:
                source[key] = t.source[key]
        if notes:
            source["notes"] = list(notes)
        t.source = source
    return HarImport(transcripts, notes)


def _record(conns: list[HarConnection], channel_path: str, headers: bool) -> list[Transcript]:
    """Replay the connections through a :class:`ChannelRecorder` writing into a temporary folder; the
    transcripts it wrote, in the order their sessions started."""
    from chanlog.record.addon import ChannelRecorder
    from chanlog.record.pairing import JOURNAL_DIR, JOURNAL_SUFFIX
    from chanlog.record.writer import load_journal

    with tempfile.TemporaryDirectory(prefix="chanlog-har-") as tmp:
        recorder = ChannelRecorder()
        recorder.directory = Path(tmp)
        recorder.channel_path = channel_path
        recorder.store_headers = headers
        flows = {c.index: _flow(c) for c in conns}
        for _, kind, index, item in heapq.merge(*(_timeline(c) for c in conns)):
            flow = flows[index]
            if kind == 0:
                recorder.websocket_start(flow)
            elif kind == 1:
                flow.websocket.messages.append(item)
                recorder.websocket_message(flow)
                del flow.websocket.messages[:-1]  # constant memory per connection
            else:
                recorder.websocket_end(flow)
        recorder.done()
        # the transcripts the recorder wrote, rebuilt from their journals (no YAML round trip)
        written = {p.stem for p in recorder.written if p.is_file()}
        out = [load_journal(recorder.directory / JOURNAL_DIR / f"{name}{JOURNAL_SUFFIX}")
               for name in _in_order(recorder.written, written)]
    return sorted(out, key=lambda t: (str(t.source.get("started", "")), t.name))


def _in_order(paths: list[Path], keep: set[str]) -> list[str]:
    """The stems of ``paths`` that are in ``keep``, each once, in order."""
    out: list[str] = []
    for p in paths:
        if p.stem in keep and p.stem not in out:
            out.append(p.stem)
    return out


def _timeline(c: HarConnection) -> Iterator[tuple[float, int, int, Any]]:
    """``(time, kind, entry, message)`` of one connection, in its own order: open (kind 0) at its start
    (:attr:`HarConnection.opened`), its messages (1), its close (2) no earlier than its last message."""
    from mitmproxy.websocket import WebSocketMessage
    from wsproto.frame_protocol import Opcode

    t = c.opened
    yield t, 0, c.index, None
    for m in c.messages:
        t = max(t, m.time)
        yield t, 1, c.index, WebSocketMessage(Opcode.TEXT if m.is_text else Opcode.BINARY, m.from_client,
                                              m.content, m.time)
    yield max(t, c.ended), 2, c.index, None


def _flow(c: HarConnection) -> Any:
    """A mitmproxy flow of a WebSocket connection as the recorder sees it in ``websocket_start``."""
    from mitmproxy import connection, http, websocket

    client = connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0), timestamp_start=c.started)
    server = connection.Server(address=None)
    flow = http.HTTPFlow(client, server)
    url = c.url
    if url.startswith("ws://"):
        url = "http://" + url[len("ws://"):]
    elif url.startswith("wss://"):
        url = "https://" + url[len("wss://"):]
    flow.request = http.Request.make("GET", url, headers=c.headers)
    flow.request.timestamp_start = flow.request.timestamp_end = c.started
    flow.response = http.Response.make(101)
    flow.response.timestamp_start = flow.response.timestamp_end = c.opened
    flow.websocket = websocket.WebSocketData()
    close = c.close or {}
    code = close.get("code")
    flow.websocket.close_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    by = close.get("closed_by")
    flow.websocket.closed_by_client = None if by not in ("client", "node") else by == "client"
    reason = close.get("reason")
    flow.websocket.close_reason = reason if isinstance(reason, str) else None
    flow.websocket.timestamp_end = c.ended
    return flow


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
