"""Markdown channel logs (the node's test-suite logs) -> :class:`~chanlog.model.Transcript`.

Every era of the node's logs (``aeternity/protocol``, ``node/api/examples/channels/``) is read:

``current``
    ``#### initiator opens a WebSocket connection`` + a fence with the URL; ``#### initiator ---> node`` /
    ``#### initiator <--- node`` + a ``javascript`` fence with the frame; ``#### initiator info`` + ``> text``;
    ``#### initiator closes WebSocket connection``.
``stamped`` (2019)
    the same headings followed by `` (2019-03-13 11:04:47.10)``; milliseconds are not zero-padded
    (``.10`` is 10 ms).
``2018``
    ``#### initiator init (TS)`` + URL fence, ``#### initiator ---> (TS)``, ``#### initiator <--- (TS)``,
    ``#### initiator: (TS)`` + ``> text``.
``scraped``
    the text of a rendered log page (seed ``003``): headings and fences lost, JSON pretty-printed as is,
    a page title before the first entry.

What chanlog's ``node`` layout adds, read back the same way: a fence longer than three backticks (when the
content holds a run of three or more), a ``text`` fence for a frame that is not JSON (kept verbatim), a
``binary`` fence for a binary frame (base64), and backslash escapes in info lines (:func:`escape_note`).

Files may start mid-channel (no ``opens`` entry): the connection is then implied. The protocol
(``json-rpc`` or ``legacy`` ``{action, tag, payload}``) is detected from the URLs, else from the frames.
A region that cannot be parsed raises :class:`~chanlog.errors.LogImportError` naming ``file:line``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chanlog.errors import LogImportError
from chanlog.model import Close, Event, Frame, Note, Open, Transcript, dump_json, parse_json

ERAS = ("current", "stamped", "2018", "scraped")

#: Heading words per era and entry kind; the renderer's ``node`` layout writes them back.
HEADING_WORDS: dict[str, dict[str, str]] = {
    "current": {"open": " opens a WebSocket connection", "client": " ---> node", "node": " <--- node",
                "note": " info", "close": " closes WebSocket connection"},
    "2018": {"open": " init", "client": " --->", "node": " <---", "note": ":",
             "close": " closes WebSocket connection"},
}
HEADING_WORDS["stamped"] = HEADING_WORDS["current"]
HEADING_WORDS["scraped"] = HEADING_WORDS["current"]

_KIND_OF_WORDS = {words: kind for era in ("current", "2018") for kind, words in HEADING_WORDS[era].items()}
_ERA_OF_WORDS = {words: era for era in ("2018", "current") for words in HEADING_WORDS[era].values()}

_STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?"
#: A heading's timestamp as the node writes it; the renderer writes only stamps of this shape.
STAMP = re.compile(_STAMP + r"\Z")

# -- the node layout's own syntax, both ways (the renderer writes it, the importer reads it) -----------

#: Info strings of a frame's fence: ``javascript`` for JSON text (as the node writes), ``text`` for a text
#: frame that is not JSON, ``binary`` for a binary frame (its bytes in base64).
FRAME_LANGS = ("javascript", "text", "binary")
_FENCE_OPEN = re.compile(r"(`{3,})(" + "|".join(FRAME_LANGS) + r")?\Z")
_BACKTICKS = re.compile(r"`+")
#: Characters of an info line that Markdown would read as markup (HTML, entities, links): the renderer puts
#: a backslash before each; the importer takes it away. The node's own sentences hold none of them.
NOTE_ESCAPED = "\\<>&[]"
_NOTE_ESCAPE = re.compile(r"([" + re.escape(NOTE_ESCAPED) + r"])|^([#+=|-])")
_NOTE_UNESCAPE = re.compile(r"\\([" + re.escape(NOTE_ESCAPED + "#+=|-") + r"r])")


def fence(text: str, lang: str = "") -> str:
    """``text`` as a fenced code block: the fence is a run of backticks longer than any run inside
    ``text`` (at least three, as the node writes), so no line of the text can close it early."""
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def escape_note(line: str) -> str:
    """One line of an info text for a ``> `` quote: ``\\ < > & [ ]`` and a block marker at the start of the
    line (``# + = | -``) get a backslash, so the text cannot open HTML, a link or a heading; a carriage return
    (a line ending to Markdown) is written ``\\r``."""
    return _NOTE_ESCAPE.sub(lambda m: "\\" + (m[1] or m[2]), line).replace("\r", "\\r")


def unescape_note(line: str) -> str:
    """The inverse of :func:`escape_note`."""
    return _NOTE_UNESCAPE.sub(lambda m: "\r" if m[1] == "r" else m[1], line)


_HEADING = re.compile(
    r"^#### (?P<role>initiator|responder)(?P<words>"
    + "|".join(re.escape(w) for w in sorted(_KIND_OF_WORDS, key=len, reverse=True))
    + rf")(?: \((?P<stamp>{_STAMP})\))?$"
)
_SCRAPED_HEADING = re.compile(
    r"^(?P<role>initiator|responder)(?P<words> opens a WebSocket connection| ---> node| <--- node| info"
    r"| closes WebSocket connection)$"
)


@dataclass
class _Entry:
    """One parsed log entry before it becomes an event."""

    line: int
    role: str
    kind: str  # open | client | node | note | close
    stamp: str | None
    body: str | None  # URL, JSON text, or note text
    body_line: int
    lang: str | None = None  # a frame fence's info string (javascript, text, binary)


def import_log(text: str, filename: str = "<log>") -> Transcript:
    """Parse a Markdown channel log (any era) into a transcript named after ``filename``'s stem.

    Raises :class:`LogImportError` with ``where`` = ``filename:line`` for an empty file, an unknown
    heading, a broken or unterminated fence, a JSON block that does not parse, or stray text.
    """
    if not text.strip():
        raise LogImportError("empty file: no log entries", f"{filename}:1")
    lines = text.split("\n")
    if any(_HEADING.match(line) for line in lines) or any(line.startswith("#### ") for line in lines):
        entries, era, title = _parse_markdown(lines, filename), None, None
    elif any(_SCRAPED_HEADING.match(line) for line in lines):
        entries, title = _parse_scraped(lines, filename)
        era = "scraped"
    else:
        raise LogImportError("no log entries: expected headings such as '#### initiator ---> node'",
                             f"{filename}:1")
    if era is None:
        era = _era_of(entries, lines)
    stem = Path(filename).stem if filename not in ("-", "<stdin>", "<log>") else "session"
    transcript = Transcript(name=title or stem, events=_events(entries, filename),
                            source={"kind": "node-log", "era": era, "file": Path(filename).name})
    if era == "scraped" and title:
        transcript.source["title"] = title
    transcript.protocol = _protocol(transcript)
    return transcript


def import_file(path: str | Path) -> Transcript:
    """Read and import a log file (``-`` for standard input); see :func:`import_log`.

    Raises :class:`LogImportError` when the file cannot be read or is not UTF-8.
    """
    from chanlog.transcript import read_source

    return import_log(*read_source(path, LogImportError))


# -- Markdown eras --------------------------------------------------------------------------------


def _parse_markdown(lines: list[str], filename: str) -> list[_Entry]:
    entries: list[_Entry] = []
    n = len(lines)
    i = 0
    # leading blank lines only
    while i < n and lines[i] == "":
        i += 1
    while i < n:
        line = lines[i]
        match = _HEADING.match(line)
        if match is None:
            what = "unknown heading" if line.startswith("#") else "unexpected text"
            raise LogImportError(f"{what} {line[:80]!r}: expected '#### <initiator|responder> <entry>'",
                                 f"{filename}:{i + 1}")
        kind = _KIND_OF_WORDS[match["words"]]
        entry = _Entry(i + 1, match["role"], kind, match["stamp"], None, i + 2)
        i += 1
        if kind in ("open", "client", "node"):
            opening = _FENCE_OPEN.match(lines[i]) if i < n else None
            lang = opening[2] if opening else None
            if opening is None or (kind == "open") != (lang is None):
                want = "```" if kind == "open" else "```javascript"
                raise LogImportError(f"expected a {want} fence after the heading", f"{filename}:{i + 1}")
            start = i + 1
            j = start
            while j < n and lines[j] != opening[1]:
                j += 1
            if j >= n:
                raise LogImportError(f"unterminated fence (no closing {opening[1]})", f"{filename}:{i + 1}")
            entry.body, entry.body_line, entry.lang = "\n".join(lines[start:j]), start + 1, lang
            i = j + 1
        elif kind == "note":
            quoted = []
            while i < n and lines[i].startswith(">"):
                quoted.append(unescape_note(lines[i][2:] if lines[i].startswith("> ") else lines[i][1:]))
                i += 1
            if not quoted:
                raise LogImportError("expected a '> sentence' line after the info heading", f"{filename}:{i + 1}")
            entry.body = "\n".join(quoted)
        entries.append(entry)
        # one blank line between entries; end of file after the last
        if i < n and lines[i] != "":
            raise LogImportError(f"unexpected text {lines[i][:80]!r} after the entry", f"{filename}:{i + 1}")
        while i < n and lines[i] == "":
            i += 1
    return entries


def _era_of(entries: list[_Entry], lines: list[str]) -> str:
    for entry in entries:
        words = _HEADING.match(lines[entry.line - 1])["words"]  # type: ignore[index]
        if _ERA_OF_WORDS[words] == "2018":
            return "2018"
    return "stamped" if any(e.stamp for e in entries) else "current"


# -- scraped page text (seed 003) ------------------------------------------------------------------


def _parse_scraped(lines: list[str], filename: str) -> tuple[list[_Entry], str | None]:
    """Entries of a scraped page: ``<role> <words>`` lines, each followed by a blank line and a body
    (URL line, pretty JSON up to the next blank line, or a sentence). Text before the first entry is
    page chrome; its last non-blank line is the title."""
    n = len(lines)
    first = next(i for i, line in enumerate(lines) if _SCRAPED_HEADING.match(line))
    preamble = [line for line in lines[:first] if line.strip()]
    title = preamble[-1].strip() if preamble else None
    entries: list[_Entry] = []
    i = first
    while i < n:
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        match = _SCRAPED_HEADING.match(line)
        if match is None:
            raise LogImportError(f"unexpected text {line[:80]!r}: expected '<initiator|responder> <entry>'",
                                 f"{filename}:{i + 1}")
        kind = _KIND_OF_WORDS[match["words"]]
        entry = _Entry(i + 1, match["role"], kind, None, None, i + 1)
        i += 1
        if kind != "close":
            while i < n and not lines[i].strip():
                i += 1
            if i >= n:
                raise LogImportError(f"the {kind} entry has no body", f"{filename}:{entry.line}")
            start = i
            if kind in ("client", "node"):
                while i < n and lines[i].strip():
                    i += 1
            else:
                i += 1
            entry.body, entry.body_line = "\n".join(lines[start:i]), start + 1
        entries.append(entry)
    return entries, title


# -- entries -> events ------------------------------------------------------------------------------


def _events(entries: list[_Entry], filename: str) -> list[Event]:
    events: list[Event] = []
    current: dict[str, int | None] = {"initiator": None, "responder": None}
    next_conn = 0
    first_time: datetime | None = None

    def conn_of(role: str) -> int:
        nonlocal next_conn
        if current[role] is None:
            current[role] = next_conn
            next_conn += 1
        return current[role]  # type: ignore[return-value]

    for entry in entries:
        t = None
        if entry.stamp is not None:
            when = _parse_stamp(entry.stamp)
            first_time = first_time or when
            t = (when - first_time).total_seconds()
        common = {"role": entry.role, "t": t, "stamp": entry.stamp}
        if entry.kind == "open":
            current[entry.role] = None
            url = (entry.body or "").strip()
            if not url.startswith(("ws://", "wss://", "http://", "https://")):
                raise LogImportError(f"expected a WebSocket URL, got {url[:80]!r}", f"{filename}:{entry.body_line}")
            events.append(Open(conn=conn_of(entry.role), url=url, **common))
        elif entry.kind in ("client", "node"):
            events.append(_frame(entry, conn_of(entry.role), common, filename))
        elif entry.kind == "note":
            events.append(Note(conn=conn_of(entry.role), text=entry.body or "", **common))
        else:
            events.append(Close(conn=conn_of(entry.role), closed_by="client", **common))
            current[entry.role] = None
    return _split_overlapping(events)


#: ``channels.info`` events after which the node's FSM for that connection is gone.
_TERMINAL_EVENTS = frozenset({"died"})


def _split_overlapping(events: list[Event]) -> list[Event]:
    """Give each event the right connection when a role has two connections open at once.

    A log writes a participant's second connection (a new channel) while its first is still winding
    down (``sc_ws_close_mutual``: the first channel's ``closed_confirmed``/``died`` and close come after
    the second's open). Node frames then go by ``channel_id`` (to the open connection that carries it,
    when the newest one already carries another), a close to a connection whose FSM ``died``, and other
    entries to the role's connection that had the last entry. Logs without overlapping connections are
    left exactly as read. Connections are renumbered in order of first appearance.
    """
    live: dict[str, list[int]] = {"initiator": [], "responder": []}
    chan: dict[int, str] = {}
    last: dict[str, int] = {}
    ended: set[int] = set()
    for event in events:
        conns = live[event.role]
        if isinstance(event, Open):
            conns.append(event.conn)
            last[event.role] = event.conn
            continue
        if not conns:
            conns.append(event.conn)
        active = last[event.role] if last.get(event.role) in conns else conns[-1]
        is_node = isinstance(event, Frame) and event.sender == "node"
        channel_id = event.channel_id if is_node else None  # type: ignore[union-attr]
        if len(conns) == 1:
            conn = conns[0]
        elif isinstance(event, Close):
            conn = next((c for c in conns if c in ended), active)
        elif channel_id and chan.get(conns[-1]) not in (None, channel_id):
            conn = next((c for c in conns if chan.get(c) == channel_id), conns[-1])
        elif channel_id:
            conn = conns[-1]
        else:
            conn = active
        if is_node:
            if channel_id and conn not in chan:
                chan[conn] = channel_id
            if event.info_event in _TERMINAL_EVENTS:  # type: ignore[union-attr]
                ended.add(conn)
        event.conn = conn
        if isinstance(event, Close):
            conns.remove(conn)
            if last.get(event.role) == conn:
                last.pop(event.role)
        else:
            last[event.role] = conn
    order: dict[int, int] = {}
    for event in events:
        order.setdefault(event.conn, len(order))
    for event in events:
        event.conn = order[event.conn]
    return events


def _frame(entry: _Entry, conn: int, common: dict, filename: str) -> Frame:
    body = entry.body or ""
    sender = "client" if entry.kind == "client" else "node"
    if entry.lang == "text":  # a text frame that is not JSON, verbatim
        return Frame(conn=conn, sender=sender, text=body, **common)
    if entry.lang == "binary":
        try:
            binary = base64.b64decode(body.replace("\n", ""), validate=True)
        except binascii.Error as exc:
            raise LogImportError(f"broken base64 in the {entry.role} binary frame: {exc}",
                                 f"{filename}:{entry.body_line}") from None
        return Frame(conn=conn, sender=sender, binary=binary, **common)
    try:
        data = parse_json(body)  # bounded depth and numbers (issue 16)
    except json.JSONDecodeError as exc:
        raise LogImportError(f"broken JSON in the {entry.role} frame: {exc.msg} (column {exc.colno})",
                             f"{filename}:{entry.body_line + exc.lineno - 1}") from None
    frame = Frame(conn=conn, sender=sender, **common)
    if dump_json(data, "pretty") == body:
        frame.data, frame.fmt = data, "pretty"
        frame._texts["pretty"] = body
    else:  # valid JSON the node's style does not reproduce: keep the text verbatim
        frame.text = body
    return frame


def _parse_stamp(stamp: str) -> datetime:
    """``2019-03-13 11:04:47.10`` -> datetime; the digits after the dot are milliseconds, not a fraction."""
    base, _, millis = stamp.partition(".")
    when = datetime.strptime(base, "%Y-%m-%d %H:%M:%S")
    return when.replace(microsecond=int(millis or 0) * 1000)


def _protocol(transcript: Transcript) -> str:
    for event in transcript.events:
        if isinstance(event, Open):
            proto = event.params.get("protocol")
            if proto in ("json-rpc", "legacy"):
                return proto
    for _, frame in transcript.frames():
        obj = frame.obj
        if "jsonrpc" in obj:
            return "json-rpc"
        if "action" in obj:
            return "legacy"
    return "json-rpc"
