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
from collections.abc import Callable, Iterable, Iterator
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
    era_words: str | None = None  # the era whose heading words the entry uses (current or 2018)


def import_log(text: str, filename: str = "<log>") -> Transcript:
    """Parse a Markdown channel log (any era) into a transcript named after ``filename``'s stem.

    Raises :class:`LogImportError` with ``where`` = ``filename:line`` for an empty file, an unknown
    heading, a broken or unterminated fence, a JSON block that does not parse, or stray text.
    """
    lines = text.split("\n")
    log = LogStream(lambda: iter(lines), filename)
    events = list(log.events())
    return log.transcript(events)


def import_file(path: str | Path) -> Transcript:
    """Read and import a log file (``-`` for standard input); see :func:`import_log`.

    Raises :class:`LogImportError` when the file cannot be read or is not UTF-8.
    """
    from chanlog.transcript import read_source

    return import_log(*read_source(path, LogImportError))


def file_lines(path: Path) -> Callable[[], Iterator[str]]:
    """For :class:`LogStream`: a function giving the lines of the UTF-8 file ``path`` (line ends removed,
    ``\\r\\n`` read as ``\\n`` as :func:`import_file` reads them), read a buffer at a time. Reading errors
    raise :class:`LogImportError` naming the file."""

    def lines() -> Iterator[str]:
        try:
            with open(path, encoding="utf-8") as fh:
                last = None
                for line in fh:
                    last = line
                    yield line[:-1] if line.endswith("\n") else line
                if last is None or last.endswith("\n"):
                    yield ""  # as text.split("\n") gives
        except OSError as exc:
            raise LogImportError(f"cannot read: {exc.strerror}", str(path)) from None
        except UnicodeDecodeError as exc:
            raise LogImportError(f"not UTF-8 text: {exc.reason}", str(path)) from None

    return lines


class LogStream:
    """A log read line by line (issue 17, "Inputs of any size"): :meth:`events` yields each event as its
    entry is parsed, so memory is bounded by the largest entry, not by the log. ``lines`` is called for
    each pass (a first pass tells the Markdown eras from scraped page text, as :func:`import_log` does)
    and returns the log's lines without their line ends (:func:`file_lines`). After :meth:`events` is
    exhausted, :meth:`transcript` gives the head (name, protocol, era, title) around any list of events.
    Errors as :func:`import_log`."""

    def __init__(self, lines: Callable[[], Iterator[str]], filename: str = "<log>") -> None:
        self.lines, self.filename = lines, filename
        self.era: str | None = None
        self.title: str | None = None
        self.protocol: str | None = None
        self._open_protocol: str | None = None
        self._frame_protocol: str | None = None
        self._stamped = False
        self._2018 = False

    def _kind(self) -> str:
        scraped = content = False
        for line in self.lines():
            content = content or bool(line.strip())
            if _HEADING.match(line) or line.startswith("#### "):
                return "markdown"
            scraped = scraped or _SCRAPED_HEADING.match(line) is not None
        if not content:
            raise LogImportError("empty file: no log entries", f"{self.filename}:1")
        if scraped:
            return "scraped"
        raise LogImportError("no log entries: expected headings such as '#### initiator ---> node'",
                             f"{self.filename}:1")

    def events(self) -> Iterator[Event]:
        """Every event of the log, in order; see :func:`import_log`."""
        if self._kind() == "markdown":
            entries = self._noted(_parse_markdown(self.lines(), self.filename))
        else:
            self.era = "scraped"
            entries = _parse_scraped(self.lines(), self.filename, self)
        for event in _split_overlapping(_events(entries, self.filename)):
            if self._open_protocol is None:
                if isinstance(event, Open):
                    proto = event.params.get("protocol")
                    if proto in ("json-rpc", "legacy"):
                        self._open_protocol = proto
                elif isinstance(event, Frame) and self._frame_protocol is None:
                    obj = event.obj
                    self._frame_protocol = ("json-rpc" if "jsonrpc" in obj else
                                            "legacy" if "action" in obj else None)
            yield event
        if self.era is None:
            self.era = "2018" if self._2018 else "stamped" if self._stamped else "current"
        self.protocol = self._open_protocol or self._frame_protocol or "json-rpc"

    def _noted(self, entries: Iterable[_Entry]) -> Iterator[_Entry]:
        for entry in entries:
            self._2018 = self._2018 or entry.era_words == "2018"
            self._stamped = self._stamped or entry.stamp is not None
            yield entry

    def transcript(self, events: list[Event] | None = None) -> Transcript:
        """The transcript: name, protocol and source as :func:`import_log` gives them, with ``events``
        (none for a head only). Call after :meth:`events` is exhausted."""
        filename = self.filename
        stem = Path(filename).stem if filename not in ("-", "<stdin>", "<log>") else "session"
        transcript = Transcript(name=self.title or stem, events=events or [], protocol=self.protocol or "json-rpc",
                                source={"kind": "node-log", "era": self.era, "file": Path(filename).name})
        if self.era == "scraped" and self.title:
            transcript.source["title"] = self.title
        return transcript


class StreamedLog:
    """A node log file read one event at a time, with the interface of
    :class:`chanlog.transcript.StreamedTranscript` (``head``, ``size``, ``position()``, ``events()``), so
    that what streams transcripts (``chanlog diff``) streams logs too: memory bounded by the largest entry.
    ``head`` (name, protocol, era) is exact once :meth:`events` has been walked to its end (the protocol of
    a log without URLs is known from its frames). ``name`` is the file's name in errors (default: the path).
    Raises :class:`LogImportError` naming ``file:line`` (:class:`LogStream`)."""

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or str(path)
        try:
            self.size = self.path.stat().st_size
        except OSError as exc:
            raise LogImportError(f"cannot read: {exc.strerror}", self.name) from None
        self._read = 0
        lines = file_lines(self.path)

        def counted() -> Iterator[str]:
            self._read = 0
            for line in lines():
                self._read += len(line) + 1  # characters: a progress figure, not an offset
                yield line

        self._log = LogStream(counted, self.name)

    @property
    def head(self) -> Transcript:
        """The transcript's head (no events); see the class."""
        return self._log.transcript()

    def position(self) -> int:
        """About how far the current walk has read, in bytes (counted in characters)."""
        return min(self._read, self.size)

    def events(self) -> Iterator[Event]:
        """Every event of the log, in order (:meth:`LogStream.events`)."""
        return self._log.events()


# -- Markdown eras --------------------------------------------------------------------------------


class _Lines:
    """Lines with one of lookahead and their 1-based numbers."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._it = iter(lines)
        self.number = 0  # of the current line
        self.current: str | None = None
        self.advance()

    def advance(self) -> None:
        self.current = next(self._it, None)
        self.number += 1

    def until(self, end: str) -> list[str] | None:
        """The lines from the current one up to (not including) the next line equal to ``end``, which becomes
        the current line; ``None`` when the input ends first (a fence's body, read in one loop)."""
        if self.current is None:
            return None
        if self.current == end:
            return []
        body = [self.current]
        for line in self._it:
            if line == end:
                self.number += len(body)
                self.current = line
                return body
            body.append(line)
        self.number += len(body)
        self.current = None
        return None


def _parse_markdown(source: Iterator[str], filename: str) -> Iterator[_Entry]:
    lines = _Lines(source)
    while lines.current == "":  # leading blank lines only
        lines.advance()
    while lines.current is not None:
        line, number = lines.current, lines.number
        match = _HEADING.match(line)
        if match is None:
            what = "unknown heading" if line.startswith("#") else "unexpected text"
            raise LogImportError(f"{what} {line[:80]!r}: expected '#### <initiator|responder> <entry>'",
                                 f"{filename}:{number}")
        kind = _KIND_OF_WORDS[match["words"]]
        entry = _Entry(number, match["role"], kind, match["stamp"], None, number + 1,
                       era_words=_ERA_OF_WORDS[match["words"]])
        lines.advance()
        if kind in ("open", "client", "node"):
            opening = _FENCE_OPEN.match(lines.current) if lines.current is not None else None
            lang = opening[2] if opening else None
            if opening is None or (kind == "open") != (lang is None):
                want = "```" if kind == "open" else "```javascript"
                raise LogImportError(f"expected a {want} fence after the heading", f"{filename}:{lines.number}")
            fence_line = lines.number
            lines.advance()
            start = lines.number
            body = lines.until(opening[1])
            if body is None:
                raise LogImportError(f"unterminated fence (no closing {opening[1]})", f"{filename}:{fence_line}")
            entry.body, entry.body_line, entry.lang = "\n".join(body), start, lang
            lines.advance()
        elif kind == "note":
            quoted = []
            while lines.current is not None and lines.current.startswith(">"):
                text = lines.current
                quoted.append(unescape_note(text[2:] if text.startswith("> ") else text[1:]))
                lines.advance()
            if not quoted:
                raise LogImportError("expected a '> sentence' line after the info heading",
                                     f"{filename}:{lines.number}")
            entry.body = "\n".join(quoted)
        yield entry
        # one blank line between entries; end of file after the last
        if lines.current is not None and lines.current != "":
            raise LogImportError(f"unexpected text {lines.current[:80]!r} after the entry",
                                 f"{filename}:{lines.number}")
        while lines.current == "":
            lines.advance()


# -- scraped page text (seed 003) ------------------------------------------------------------------


def _parse_scraped(source: Iterator[str], filename: str, log: LogStream) -> Iterator[_Entry]:
    """Entries of a scraped page: ``<role> <words>`` lines, each followed by a blank line and a body
    (URL line, pretty JSON up to the next blank line, or a sentence). Text before the first entry is
    page chrome; its last non-blank line is the title (set on ``log``)."""
    lines = _Lines(source)
    title = None
    while lines.current is not None and not _SCRAPED_HEADING.match(lines.current):
        if lines.current.strip():
            title = lines.current.strip()
        lines.advance()
    log.title = title
    while lines.current is not None:
        line = lines.current
        if not line.strip():
            lines.advance()
            continue
        match = _SCRAPED_HEADING.match(line)
        if match is None:
            raise LogImportError(f"unexpected text {line[:80]!r}: expected '<initiator|responder> <entry>'",
                                 f"{filename}:{lines.number}")
        kind = _KIND_OF_WORDS[match["words"]]
        entry = _Entry(lines.number, match["role"], kind, None, None, lines.number)
        lines.advance()
        if kind != "close":
            while lines.current is not None and not lines.current.strip():
                lines.advance()
            if lines.current is None:
                raise LogImportError(f"the {kind} entry has no body", f"{filename}:{entry.line}")
            start = lines.number
            body = []
            if kind in ("client", "node"):
                while lines.current is not None and lines.current.strip():
                    body.append(lines.current)
                    lines.advance()
            else:
                body.append(lines.current)
                lines.advance()
            entry.body, entry.body_line = "\n".join(body), start
        yield entry


# -- entries -> events ------------------------------------------------------------------------------


def _events(entries: Iterable[_Entry], filename: str) -> Iterator[Event]:
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
            yield Open(conn=conn_of(entry.role), url=url, **common)
        elif entry.kind in ("client", "node"):
            yield _frame(entry, conn_of(entry.role), common, filename)
        elif entry.kind == "note":
            yield Note(conn=conn_of(entry.role), text=entry.body or "", **common)
        else:
            yield Close(conn=conn_of(entry.role), closed_by="client", **common)
            current[entry.role] = None


#: ``channels.info`` events after which the node's FSM for that connection is gone.
_TERMINAL_EVENTS = frozenset({"died"})


def _split_overlapping(events: Iterable[Event]) -> Iterator[Event]:
    """Give each event the right connection when a role has two connections open at once.

    A log writes a participant's second connection (a new channel) while its first is still winding
    down (``sc_ws_close_mutual``: the first channel's ``closed_confirmed``/``died`` and close come after
    the second's open). Node frames then go by ``channel_id`` (to the open connection that carries it,
    when the newest one already carries another), a close to a connection whose FSM ``died``, and other
    entries to the role's connection that had the last entry. Logs without overlapping connections are
    left exactly as read. Connections are renumbered in order of first appearance. A generator: each
    event is given out as soon as its connection is known.
    """
    live: dict[str, list[int]] = {"initiator": [], "responder": []}
    chan: dict[int, str] = {}
    last: dict[str, int] = {}
    ended: set[int] = set()
    order: dict[int, int] = {}
    for event in events:
        conns = live[event.role]
        if isinstance(event, Open):
            conns.append(event.conn)
            last[event.role] = event.conn
            event.conn = order.setdefault(event.conn, len(order))
            yield event
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
        if isinstance(event, Close):
            conns.remove(conn)
            if last.get(event.role) == conn:
                last.pop(event.role)
        else:
            last[event.role] = conn
        event.conn = order.setdefault(conn, len(order))
        yield event


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
    when = datetime.fromisoformat(base)  # the heading pattern (_STAMP) fixed its shape; strptime is ~10x slower
    return when.replace(microsecond=int(millis or 0) * 1000)
