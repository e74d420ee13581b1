"""What a document shows of a transcript: its entries (numbered frames, opens, notes, closes), the
selection (``--frames A..B``, ``--phase NAME``), what the diagram hides (``--hide KIND,...``), arrow
labels (``--show-time``) and the decoded fields of every encoded object. Shared by the Markdown and HTML
formats; no escaping here (each format escapes for where a value goes).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chanlog.codec.calls import CallAnnotator
from chanlog.errors import RenderError
from chanlog.model import Event, Frame, Transcript
from chanlog.render.describe import Describer, arrow_label, is_error

#: Kinds of frames ``--hide`` can leave out of the diagram (never out of the log part).
HIDE_KINDS = {
    "ping": "pings and pongs (channels.system ping/pong; legacy ping, pong)",
    "get": "channels.get.* requests and their replies",
    "message": "channels.message (generic messages between the participants)",
    "info": "channels.info events",
}


@dataclass(frozen=True)
class Options:
    """Diagram and selection controls, the same for every format."""

    hide: frozenset[str] = frozenset()
    """Kinds of :data:`HIDE_KINDS` left out of the diagram."""
    frames: tuple[int | None, int | None] | None = None
    """Only frames ``A..B`` (1-based, inclusive; an open end is ``None``) and the events between them."""
    phase: str | None = None
    """Only the frames of this phase (case-insensitive name, as the diagram's blocks are named)."""
    show_time: bool = False
    """Each arrow starts with the frame's time offset in seconds."""
    autonumber: bool = True
    """Arrows carry the frame numbers of the log part."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.hide) - set(HIDE_KINDS))
        if unknown:
            raise RenderError(f"unknown kind to hide: {', '.join(unknown)} (known: {', '.join(HIDE_KINDS)})")


def parse_range(text: str) -> tuple[int | None, int | None]:
    """``A..B``, ``A..``, ``..B`` or ``N`` -> ``(A, B)`` (1-based, inclusive). Raises :class:`RenderError`."""
    match = re.fullmatch(r"\s*(\d*)\s*(?:\.\.\s*(\d*))?\s*", text)
    if not match or not (match[1] or match[2]):
        raise RenderError(f"bad frame range {text!r}: expected A..B, A.., ..B or N (frame numbers from 1)")
    first = int(match[1]) if match[1] else None
    last = (int(match[2]) if match[2] else None) if match[2] is not None or ".." in text else first
    if first is not None and last is not None and last < first:
        raise RenderError(f"bad frame range {text!r}: the end comes before the start")
    return first, last


@dataclass
class DocEntry:
    """One event of the frame-by-frame log."""

    number: int | None
    """Frame number (from 1, over the whole transcript) for frames; ``None`` for opens, notes and closes."""
    event: Event
    blobs: list[tuple[str, str]] = field(default_factory=list)
    """``(JSON path, encoded value)`` of every encoded object the frame carries."""
    phase: str | None = None
    """The phase the entry falls in (the last phase started at or before it)."""
    hidden: bool = False
    """Left out of the diagram (``--hide``); still in the log part."""
    error: bool = False
    """An error reply or ``channels.error``."""
    starts: str | None = None
    """The phase this frame starts (from the description table), if any."""
    description: str | None = None
    """The frame's one-line description (Markdown: text and code spans) from the description table."""


def doc_entries(transcript: Transcript, describe: Describer | None = None,
                options: Options | None = None) -> list[DocEntry]:
    """Every selected event with its frame number, phase, hidden flag and the encoded objects found in it
    (in document order). Raises :class:`RenderError` when ``options.phase`` names no phase of the flow."""
    options = options or Options()
    entries = list(iter_doc_entries(transcript.events, describe, options.hide))
    number = max((e.number for e in entries if e.number is not None), default=0)
    if options.frames is not None:
        first, last = options.frames
        entries = _between(entries, first or 1, last if last is not None else number)
    if options.phase is not None:
        wanted = options.phase.casefold()
        known = list(dict.fromkeys(e.phase for e in entries if e.phase))
        if not any(p.casefold() == wanted for p in known):
            raise RenderError(f"no phase {options.phase!r} in this flow (phases: {', '.join(known) or 'none'})")
        entries = [e for e in entries if (e.phase or "").casefold() == wanted]
    return entries


def iter_doc_entries(events: Iterable[Event], describe: Describer | None = None,
                     hide: frozenset[str] = frozenset()) -> Iterator[DocEntry]:
    """Every event's :class:`DocEntry` (frame number, phase, hidden flag, encoded objects), one at a time
    (issue 17, inputs of any size): what :func:`doc_entries` gives before selecting frames or a phase."""
    number = 0
    phase: str | None = None
    hidden_ids: set[tuple[str, int, Any]] = set()
    contracts = CallAnnotator()  # calls named from the contract code met earlier in the transcript
    for event in events:
        if isinstance(event, Frame):
            number += 1
            started = describe.phase(event) if describe is not None else None
            phase = started or phase
            if event.is_json and _may_hold_blobs(event):  # most frames hold no encoded object at all
                blobs = contracts.doc_blobs(event.data, number, list(_find_blobs(event.data)))
            else:
                blobs = []
            hidden = _hidden(event, hide, hidden_ids)
            yield DocEntry(number, event, blobs, phase, hidden, is_error(event), started,
                           describe(event) if describe is not None else None)
        else:
            yield DocEntry(None, event, phase=phase)


def _between(entries: list[DocEntry], first: int, last: int) -> list[DocEntry]:
    """Frames ``first..last`` and the other events after the frame before ``first`` and before the frame
    after ``last``."""
    start, end = 0, len(entries)
    for i, entry in enumerate(entries):
        if entry.number is not None and entry.number < first:
            start = i + 1
        if entry.number is not None and entry.number > last:
            end = i
            break
    return entries[start:end]


def _hidden(frame: Frame, hide: frozenset[str], get_ids: set[tuple[str, int, Any]]) -> bool:
    if not hide:
        return False
    obj = frame.obj
    method = frame.method or ""
    if "info" in hide and frame.info_event is not None:
        return True
    if "ping" in hide:
        params = obj.get("params")
        action = params.get("action") if isinstance(params, dict) else None
        if (method == "channels.system" and action in ("ping", "pong")) or method == "channels.system.pong" \
                or obj.get("action") in ("ping", "pong"):
            return True
    if "message" in hide and (method == "channels.message" or obj.get("action") == "message"):
        return True
    if "get" in hide:
        if method.startswith(("channels.get.", "get.")) or obj.get("action") == "get":
            if "id" in obj and frame.sender == "client":
                get_ids.add((frame.role, frame.conn, _key(obj["id"])))
            return True
        if frame.sender == "node" and frame.rpc_kind in ("response", "error") and "id" in obj:
            return (frame.role, frame.conn, _key(obj["id"])) in get_ids
    return False


def _key(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def label_of(entry: DocEntry, options: Options) -> str:
    """An arrow's text (unescaped): :func:`~chanlog.render.describe.arrow_label`, after the time offset
    (``1.204s``) with ``show_time``."""
    text = arrow_label(entry.event)  # type: ignore[arg-type]
    t = entry.event.t
    if options.show_time and t is not None:
        return f"{t:.3f}s {text}"
    return text


# -- encoded objects --------------------------------------------------------------------------------


#: Two-letter API prefixes of strings that may carry an encoded object (:func:`chanlog.codec.transactions.is_decodable_blob`
#: has the last word); other strings are skipped without asking it.
_BLOB_PREFIXES = frozenset({"tx", "ss", "pi", "cs", "cb", "ba"})


_BLOB_HINT = re.compile(r'"(?:tx|ss|pi|cs|cb|ba)[_$]')


def _may_hold_blobs(frame: Frame) -> bool:
    """False when the frame's JSON text (one already made, if any) holds no string with a blob prefix: most
    frames, whose tree then need not be walked."""
    texts = frame._texts
    text = next(iter(texts.values())) if texts else frame.json_text(frame.fmt or "compact")
    return _BLOB_HINT.search(text) is not None


def _is_blob(value: str) -> bool:
    try:
        from chanlog.codec.transactions import is_decodable_blob
    except ImportError:  # pragma: no cover - decoder not installed
        return False
    return is_decodable_blob(value)


def _find_blobs(data: Any) -> Iterable[tuple[str, str]]:
    """``(JSON path, value)`` of every encoded object in ``data``, depth-first in document order, without
    recursion (frames may nest deeply); a path is only spelled out for a value found."""
    nodes: list[tuple[int, Any]] = []  # (parent node, key) per container met
    stack: list[tuple[Any, int, Any]] = [(data, -1, None)]
    while stack:
        value, parent, key = stack.pop()
        if isinstance(value, dict):
            nodes.append((parent, key))
            me = len(nodes) - 1
            stack += [(v, me, k) for k, v in reversed(value.items())]
        elif isinstance(value, list):
            nodes.append((parent, key))
            me = len(nodes) - 1
            stack += [(value[i], me, i) for i in range(len(value) - 1, -1, -1)]
        elif (type(value) is str and len(value) > 3 and value[2] in "_$" and value[:2] in _BLOB_PREFIXES
              and _is_blob(value)):
            yield _path(nodes, parent, key), value


def _path(nodes: list[tuple[int, Any]], parent: int, key: Any) -> str:
    keys = [key]
    while parent >= 0:
        parent, key = nodes[parent]
        keys.append(key)
    path = ""
    for k in reversed(keys[:-1]):  # the root has no key
        path += f"[{k}]" if isinstance(k, int) else (f".{k}" if path else str(k))
    return path


@dataclass(frozen=True)
class FieldLine:
    """One line of a decoded object's fields: ``depth`` (0 for the object itself), its text, and
    whether it is an error (the blob or a nested object that could not be decoded)."""

    depth: int
    text: str
    strong: str | None = None
    """A type label (``channel_create_tx v1``) the line ends with, shown strong; ``text`` holds the rest."""
    error: bool = False


_LIST_LINE = re.compile(r"( *)- (.*)")
_STRONG = re.compile(r"(.*?)\*\*([^*]+)\*\*(.*)")


@functools.lru_cache(maxsize=2048)
def decoded_fields(blob: str) -> tuple[FieldLine, ...]:
    """The decoded fields of an encoded object, as lines of a tree (from :mod:`chanlog.codec.transactions`, amounts in
    aettos, nested objects indented); never raises. The one place both formats take decoded fields from
    (a hook for annotations of the values, e.g. contract calls, belongs here). Remembers the last 2,048
    blobs (a session repeats its transactions: sign request, signed reply, on-chain report)."""
    try:
        from chanlog.codec.transactions import decoded_markdown
    except ImportError:  # pragma: no cover - decoder not installed
        return ()
    lines: list[FieldLine] = []
    for line in decoded_markdown(blob).splitlines():
        if line.startswith(">"):
            text = line[2:] if line.startswith("> ") else line[1:]
            if text:
                lines.append(FieldLine(0, text, error=True))
            continue
        match = _LIST_LINE.fullmatch(line)
        if match is None:
            continue
        depth, text = len(match[1]) // 2, match[2]
        strong = _STRONG.fullmatch(text)
        if strong and strong[3] in ("", " (could not decode)"):
            lines.append(FieldLine(depth, strong[1], strong[2] + strong[3],
                                   error="could not decode" in strong[3]))
        else:
            lines.append(FieldLine(depth, text, error=text.startswith(("error:", "raw:"))))
    return tuple(lines)
