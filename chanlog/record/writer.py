"""Transcripts built from journals: streamed, in worker processes, off the proxy's event loop.

:func:`write_transcript` rebuilds ``NAME.yaml`` from a journal (:mod:`chanlog.record.journal`) in constant
memory: the journal is read twice (a quick scan, then a stream of event mappings: :func:`record_to_dict`
makes those of compact JSON frames, most of them, without model objects and parsing each text once), the
YAML is written a chunk of :data:`YAML_CHUNK` events at a time (:func:`events_yaml`: recorded frames of
plain strings and numbers written directly, the rest through libyaml's C emitter with a representer for
JSON data, :class:`FastDumper`; the same bytes as ``yaml.dump`` either way) to a temporary file that is
renamed over the target. A long journal is converted in parts, one process per CPU, joined in order.
``chanlog recover`` calls it directly.

:class:`TranscriptWriter` runs those writes in a pool of worker processes at the lowest CPU priority
(``SCHED_IDLE`` on Linux, else ``os.nice``), several sessions at a time, so that a 200k-frame transcript
being written does not take the proxy's CPU or hold its GIL: live sessions are not slowed.

Gaps (``gap`` records: frames the recorder could not write, disk full) become ``source.gaps`` in the
transcript, each placed by ``after_event`` (the number of events before it) and saying which frames of
which connection are missing; ``source.incomplete`` is then ``true`` (README, "Recording").
"""

from __future__ import annotations

import base64
import json
import logging
import math
import operator
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from chanlog.model import (
    CHECKED_DECODER,
    JSON_FORMATS,
    MAX_JSON_DEPTH,
    ROLES,
    SENDERS,
    Close,
    Event,
    Open,
    Transcript,
    event_to_dict,
    parse_json,
)
from chanlog.record.journal import (
    JournalError,
    JournalInfo,
    frame_from_text,
    ordered_records,
    raw_frame_record,
    scan,
    zero_tail,
)
from chanlog.transcript import DUMP_OPTIONS, event_pieces, head_piece, write_atomic

logger = logging.getLogger(__name__)

#: Events serialised per ``yaml.dump`` call when streaming a transcript.
YAML_CHUNK = 500
#: Highest connection number a journal record may carry.
MAX_CONN = 1_000_000
#: Gaps listed one by one in a transcript's ``source.gaps`` (more are only counted).
MAX_GAPS_LISTED = 1000
#: Worker processes that write transcripts by default (``chanlog_writers``).
DEFAULT_WORKERS = 2
#: ``os.nice`` increment of the worker processes where ``SCHED_IDLE`` is not available (:func:`_worker_init`).
WORKER_NICE = 10
#: A worker process writes a transcript of at least this many frames in parts, one process per CPU (at most
#: :data:`MAX_PARTS`; at their lower priority the proxy still comes first on every CPU), joined in order.
PARALLEL_FRAMES = 20_000
MAX_PARTS = 4

_STR, _INT, _BOOL, _NULL = ("tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
                            "tag:yaml.org,2002:null")
_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"

_BaseDumper: Any = DUMP_OPTIONS["Dumper"]


class FastDumper(_BaseDumper):
    """The transcript dumper (:data:`chanlog.transcript.DUMP_OPTIONS`) with a representer for plain JSON
    data (``dict``, ``list``, ``str``, ``int``, ``bool``, ``None``) that builds nodes directly, and a resolver
    that answers at once for strings no implicit YAML type can start with. Output is byte for byte that
    of ``yaml.dump`` with the same options for data without shared objects (a transcript's events); other
    types go through the usual representer."""

    _firsts = frozenset(k for k in _BaseDumper.yaml_implicit_resolvers if k is not None)
    _resolved: dict[tuple[str, Any], str] = {}  # resolved tags of short values (bounded; same for every dump)

    def represent_data(self, data: Any) -> Any:
        t = type(data)
        if t is str:
            return ScalarNode(_STR, data)
        if t is dict:
            rep = self.represent_data
            return MappingNode(_MAP, [(rep(k), rep(v)) for k, v in data.items()], flow_style=False)
        if t is list:
            rep = self.represent_data
            return SequenceNode(_SEQ, [rep(x) for x in data], flow_style=False)
        if t is int:
            return ScalarNode(_INT, str(data))
        if t is bool:
            return ScalarNode(_BOOL, "true" if data else "false")
        if data is None:
            return ScalarNode(_NULL, "null")
        return super().represent_data(data)

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and not self.yaml_path_resolvers:
            if value and value[0] not in self._firsts:
                return _STR
            key = (value, implicit)
            tag = self._resolved.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._resolved) < 4096 and len(value) < 64:
                    self._resolved[key] = tag
            return tag
        return super().resolve(kind, value, implicit)

    # No path resolvers are ever added to this dumper, so that the emitter's calls to these (two per node)
    # need do nothing: built-in functions that take the same arguments and do nothing, not Python frames.
    descend_resolver = operator.is_
    ascend_resolver = tuple


_FAST_OPTIONS = {**DUMP_OPTIONS, "Dumper": FastDumper}


# -- events written directly -------------------------------------------------------------------------

#: Strings written as they are (plain) or in single quotes by :func:`event_yaml`: ASCII letters, digits
#: and ``_./+=-``, with spaces inside (not first or last). Anything else goes through ``yaml.dump``.
_SAFE = re.compile(r"[A-Za-z0-9_./+=-](?:[A-Za-z0-9_./+= -]*[A-Za-z0-9_./+=-])?")
#: The characters of :data:`_SAFE` as bytes (``bytes.translate`` deletes them: a quicker test of long strings).
_SAFE_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./+= -"
#: Floats as ``_other`` writes them whose tag is always float: PyYAML's float pattern holds them and comes
#: first among the resolvers of ``-`` and digits.
_PLAIN_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+(?:e[-+][0-9]+)?")
#: Longest string with a space that :func:`event_yaml` writes itself (the emitter folds long plain lines).
_SAFE_SPACED = 1000
#: Longest mapping key :func:`event_yaml` writes itself (longer keys get YAML's explicit ``? key`` form).
_SAFE_KEY = 100
#: Deepest nesting :func:`event_yaml` writes itself.
_SAFE_DEPTH = 32
_IMPLICIT = FastDumper.yaml_implicit_resolvers
_FLOAT = "tag:yaml.org,2002:float"
_INF = float("inf")


class _Unsafe(Exception):
    """A value :func:`event_yaml` leaves to ``yaml.dump``."""


def _implicit_tag(value: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 - a bounded cache
    """The tag PyYAML's resolver gives ``value`` written plain (``Resolver.resolve`` for a scalar)."""
    tag = cache.get(value)
    if tag is None:
        tag = _STR
        for t, rx in _IMPLICIT.get(value[0] if value else "", []) + _IMPLICIT.get(None, []):
            if rx.match(value):
                tag = t
                break
        if len(cache) < 4096 and len(value) < 64:
            cache[value] = tag
    return tag


_written: dict[str, str] = {}  # short strings as _scalar writes them (bounded; the same in every dump)
_keys: dict[str, str] = {}  # mapping keys as _key writes them (bounded; the same in every dump)


def _scalar(value: Any) -> str:
    """A scalar as ``yaml.dump`` writes it (:data:`DUMP_OPTIONS`), or :class:`_Unsafe`."""
    t = type(value)
    if t is str:
        text = _written.get(value)
        if text is None:
            text = _string(value)
            if len(value) < 64 and len(_written) < 4096:
                _written[value] = text
        return text
    return _other(value, t)


def _string(value: str) -> str:
    """A string as ``yaml.dump`` writes it, or :class:`_Unsafe`."""
    if not value:
        return "''"
    if not _safe(value) or (" " in value and len(value) > _SAFE_SPACED):
        raise _Unsafe
    if value[0] not in FastDumper._firsts:
        return value
    if value[0] == "-":
        raise _Unsafe
    return value if _implicit_tag(value) == _STR else f"'{value}'"


def _safe(value: str) -> bool:
    """``_SAFE.fullmatch(value)`` for a non-empty string; long ones tested with ``bytes.translate``."""
    if len(value) < 64:
        return _SAFE.fullmatch(value) is not None
    return (value.isascii() and not value.encode("ascii").translate(None, _SAFE_BYTES)
            and value[0] != " " and value[-1] != " ")


def _other(value: Any, t: type) -> str:
    if t is int:
        return str(value)
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if t is float:
        if value != value or value in (_INF, -_INF):
            raise _Unsafe
        text = repr(value).lower()
        if "." not in text and "e" in text:
            text = text.replace("e", ".0e", 1)
        if _PLAIN_FLOAT.fullmatch(text) is None and _implicit_tag(text) != _FLOAT:
            raise _Unsafe
        return text
    raise _Unsafe


def _key(key: Any) -> str:
    text = _keys.get(key)
    if text is None:
        if type(key) is not str or len(key) > _SAFE_KEY:
            raise _Unsafe
        text = _scalar(key)
        if len(_keys) < 4096:
            _keys[key] = text
    return text


def _mapping(d: dict[str, Any], indent: str, first: str, out: list[str], depth: int) -> None:
    """Lines of a non-empty block mapping; the first key after ``first``, the others after ``indent``."""
    if depth > _SAFE_DEPTH:
        raise _Unsafe
    lead = first
    for k, v in d.items():
        t = type(v)
        if t is str:
            text = _written.get(v)
            out.append(f"{lead}{_key(k)}: {_scalar(v) if text is None else text}\n")
        elif t is dict:
            if v:
                out.append(f"{lead}{_key(k)}:\n")
                _mapping(v, indent + "  ", indent + "  ", out, depth + 1)
            else:
                out.append(f"{lead}{_key(k)}: {{}}\n")
        elif t is list:
            if v:
                out.append(f"{lead}{_key(k)}:\n")
                _sequence(v, indent, indent + "- ", out, depth + 1)
            else:
                out.append(f"{lead}{_key(k)}: []\n")
        else:
            out.append(f"{lead}{_key(k)}: {_other(v, t)}\n")
        lead = indent


def _sequence(items: list[Any], indent: str, first: str, out: list[str], depth: int) -> None:
    """Lines of a non-empty block sequence: items start with ``indent + "- "``, the first with ``first``."""
    if depth > _SAFE_DEPTH:
        raise _Unsafe
    inner = indent + "  "
    lead = first
    for v in items:
        t = type(v)
        if t is dict and v:
            _mapping(v, inner, lead, out, depth + 1)
        elif t is list and v:
            _sequence(v, inner, lead + "- ", out, depth + 1)
        elif t is dict:
            out.append(f"{lead}{{}}\n")
        elif t is list:
            out.append(f"{lead}[]\n")
        else:
            out.append(f"{lead}{_scalar(v)}\n")
        lead = indent + "- "


def events_yaml(events: list[dict[str, Any]]) -> str:
    """``yaml.dump(events, **DUMP_OPTIONS)`` for a list of event dicts (:func:`chanlog.model.event_to_dict`):
    the same text, byte for byte. Events made only of plain JSON values whose strings are short and of
    :data:`_SAFE` characters are written here directly (most recorded frames); any other event is written by
    ``yaml.dump`` (:class:`FastDumper`). Proven equal by tests (``tests/test_journal.py``, Hypothesis over
    JSON values)."""
    out: list[str] = []
    slow: list[dict[str, Any]] = []
    for event in events:
        if type(event) is dict and event:
            mark = len(out)
            try:
                if slow:
                    out.append(yaml.dump(slow, **_FAST_OPTIONS))
                    slow = []
                    mark += 1
                _mapping(event, "  ", "- ", out, 1)
                continue
            except _Unsafe:
                del out[mark:]  # the event's lines so far
        slow.append(event)
    if slow:
        out.append(yaml.dump(slow, **_FAST_OPTIONS))
    return "".join(out)


# -- journal records to events ------------------------------------------------------------------


def record_to_event(rec: dict[str, Any], t0: float | None) -> Event | None:
    """One journal record as a model event (``None`` for an unknown kind), checked as a transcript would
    be on load: ``role`` and ``from``/``closed_by`` known words, ``conn`` an integer from 0 to
    :data:`MAX_CONN`, ``ts`` a finite number, ``url``/``text``/``reason`` strings, ``binary`` base64,
    ``code`` 0-65535. Raises ``KeyError``, ``TypeError`` or ``ValueError`` saying what is wrong."""
    kind = rec.get("kind")
    if kind not in ("frame", "open", "close"):
        return None
    role, conn = rec["role"], rec["conn"]
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if type(conn) is not int or not 0 <= conn <= MAX_CONN:
        raise ValueError(f"conn must be an integer from 0 to {MAX_CONN}, not {conn!r}")
    t = None
    ts = rec.get("ts")
    if t0 is not None and type(ts) in (int, float) and math.isfinite(ts):
        t = max(0.0, round(float(ts) - t0, 6))
    if kind == "frame":
        sender = rec["from"]
        if sender not in SENDERS:
            raise ValueError(f"from must be one of {', '.join(SENDERS)}, not {sender!r}")
        injected = rec.get("injected", False)
        if type(injected) is not bool:
            raise TypeError(f"injected must be true or false, not {injected!r}")
        content: str | bytes
        if "text" in rec:
            if "binary" in rec:
                raise ValueError("a frame has text or binary, not both")
            if type(rec["text"]) is not str:
                raise TypeError(f"text must be a string, not {type(rec['text']).__name__}")
            content = rec["text"]
        else:
            if type(rec["binary"]) is not str:
                raise TypeError("binary must be a base64 string")
            content = base64.b64decode(rec["binary"], validate=True)
        return frame_from_text(content, role=role, conn=conn, sender=sender, t=t, injected=injected)
    if kind == "open":
        url, headers = rec["url"], rec.get("headers")
        if type(url) is not str:
            raise TypeError(f"url must be a string, not {type(url).__name__}")
        if headers is not None and not (isinstance(headers, dict)
                                        and all(type(v) is str for v in headers.values())):
            raise TypeError("headers must map names to strings")
        return Open(role=role, conn=conn, t=t, url=url, headers=dict(headers) if headers else None)
    if kind == "close":
        code, closed_by, reason = rec.get("code"), rec.get("closed_by"), rec.get("reason")
        if code is not None and (type(code) is not int or not 0 <= code <= 65535):
            raise ValueError(f"code must be an integer from 0 to 65535, not {code!r}")
        if closed_by is not None and closed_by not in SENDERS:
            raise ValueError(f"closed_by must be one of {', '.join(SENDERS)}, not {closed_by!r}")
        if reason is not None and type(reason) is not str:
            raise TypeError("reason must be a string")
        return Close(role=role, conn=conn, t=t, code=code, closed_by=closed_by, reason=reason)
    return None


#: The compact JSON style of :data:`chanlog.model.JSON_FORMATS`, its encoder made once.
_COMPACT = json.JSONEncoder(**JSON_FORMATS["compact"])


def _quoted(text: str) -> str:
    return f'"{text}"'


def _plain_compact() -> Callable[[Any, int], Any] | None:
    """json's C encoder in the compact style, for data whose strings need no escapes (no ``"``, ``\\`` or
    control character): it writes each string as ``"text"`` (:func:`_quoted`), three times quicker than
    escaping 2 KB of text to find nothing to escape; ``None`` without json's C accelerator."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython has it
        return None
    try:
        return make(None, _COMPACT.default, _quoted, None, ":", ",", False, False, True)
    except TypeError:  # pragma: no cover - another signature
        return None


_PLAIN_COMPACT = _plain_compact()


def record_to_dict(rec: dict[str, Any], t0: float | None, shallow: bool = False) -> dict[str, Any] | None:
    """``event_to_dict(record_to_event(rec, t0))``: the same mapping, the same errors. A text frame of
    compact JSON (what clients and the node send) is put together here directly (:func:`_compact_frame`:
    its text parsed once, no :class:`chanlog.model.Frame` made); any other record goes the long way.
    ``shallow``: the caller knows the text holds at most :data:`MAX_JSON_DEPTH` brackets."""
    if rec.get("kind") == "frame":
        d = _compact_frame(rec, t0, shallow)
        if d is not None:
            return d
    event = record_to_event(rec, t0)
    return None if event is None else event_to_dict(event)


def _compact_frame(rec: dict[str, Any], t0: float | None, shallow: bool = False) -> dict[str, Any] | None:
    """The event mapping of a well-formed frame record whose text is JSON that the compact style writes
    back byte for byte and nests at most :data:`MAX_JSON_DEPTH` deep (what :func:`frame_from_text` makes
    of it); ``None`` for anything else (the caller then takes the long way, which checks and reports)."""
    role, conn, sender, text = rec.get("role"), rec.get("conn"), rec.get("from"), rec.get("text")
    injected = rec.get("injected", False)
    if (type(text) is not str or role not in ROLES or sender not in SENDERS or type(conn) is not int
            or not 0 <= conn <= MAX_CONN or type(injected) is not bool or "binary" in rec
            or "\n" in text or ('":' not in text and "," in text)  # frame_from_text guesses another style
            or (not shallow and text.count("[") + text.count("{") > MAX_JSON_DEPTH)):
        return None
    try:
        data = CHECKED_DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    if "\\" in text or _PLAIN_COMPACT is None:
        same = _COMPACT.encode(data) == text
    else:  # JSON text without a backslash: its strings hold no ", \ or control character (RFC 8259)
        same = "".join(_PLAIN_COMPACT(data, 0)) == text
    if not same:
        return None
    d: dict[str, Any] = {"event": "frame", "role": role, "conn": conn}
    ts = rec.get("ts")
    if t0 is not None and type(ts) in (int, float) and math.isfinite(ts):
        d["t"] = round(max(0.0, round(float(ts) - t0, 6)), 6)
    d["from"] = sender
    if injected:
        d["injected"] = True
    d["format"] = "compact"
    d["data"] = data
    return d


def _t0(info: JournalInfo) -> float | None:
    return _header_t0(info.header)


def _header_t0(header: dict[str, Any]) -> float | None:
    t0 = header.get("t0")
    return float(t0) if type(t0) in (int, float) and math.isfinite(t0) else None


def iter_events(path: Path, t0: float | None = None, limit: int | None = None,
                info: JournalInfo | None = None) -> Iterator[Event]:
    """The journal's events as model objects, in the order the proxy saw them (:func:`ordered_records`;
    ``t`` relative to ``t0``, default the header's ``t0``); connections numbered from 0 in the order they
    first appear. Raises :class:`JournalError` naming ``path:line`` for a malformed record."""
    numbers: dict[int, int] = {}
    for event in _converted(path, t0, limit, info, record_to_event):
        conn = numbers.setdefault(event.conn, len(numbers))
        if conn != event.conn:
            event.conn = conn
        yield event


def iter_event_dicts(path: Path, t0: float | None = None, limit: int | None = None,
                     info: JournalInfo | None = None) -> Iterator[dict[str, Any]]:
    """:func:`iter_events` as event mappings (``event_to_dict`` of each; :func:`record_to_dict`), what the
    transcript writer needs. Raises :class:`JournalError` naming ``path:line`` for a malformed record."""
    numbers: dict[int, int] = {}
    for d in _converted(path, t0, limit, info, record_to_dict):
        d["conn"] = numbers.setdefault(d["conn"], len(numbers))
        yield d


def _converted(path: Path, t0: float | None, limit: int | None, info: JournalInfo | None,
               convert: Callable[[dict[str, Any], float | None], Any]) -> Iterator[Any]:
    info = info or scan(path, limit)
    if t0 is None:
        t0 = _t0(info)
    for lineno, rec in ordered_records(path, limit, info):
        kind = rec.get("kind")
        try:
            item = convert(rec, t0)
        except (KeyError, TypeError, ValueError) as exc:
            raise JournalError(f"malformed {kind} record: {exc}", f"{path}:{lineno}") from None
        if item is None:
            raise JournalError(f"unknown record kind {kind!r}", f"{path}:{lineno}")
        yield item


def place_gaps(path: Path, info: JournalInfo, limit: int | None = None,
               tail: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The journal's ``gap`` records as transcript ``source.gaps`` entries: ``after_event`` (events
    before the gap in the transcript), times relative to ``t0``, ``error``, ``frames``, ``bytes``, and
    ``lost``: ``{role, conn, frames: [first, last]}`` per connection, ``conn`` numbered as in the transcript
    and ``frames`` counted on that connection from 1. ``tail``: a gap not (yet) in the journal, placed at
    the end. One extra pass over the journal, made only when it has gaps."""
    t0 = _t0(info)
    placed: list[dict[str, Any]] = []
    numbers: dict[int, int] = {}
    events = 0

    def add(rec: dict[str, Any]) -> None:
        if len(placed) >= MAX_GAPS_LISTED:
            return
        gap: dict[str, Any] = {"after_event": events}
        for key in ("ts", "until"):
            v = rec.get(key)
            if t0 is not None and type(v) in (int, float) and math.isfinite(v):
                gap["t" if key == "ts" else "until"] = max(0.0, round(float(v) - t0, 6))
        gap["error"] = str(rec.get("error", "write error"))
        for key in ("frames", "bytes", "opens", "closes"):
            if type(rec.get(key)) is int:
                gap[key] = rec[key]
        lost = []
        for item in rec.get("lost") or []:
            if not isinstance(item, dict) or type(item.get("conn")) is not int:
                continue
            frames = item.get("frames")
            if not (isinstance(frames, list) and len(frames) == 2 and all(type(x) is int for x in frames)):
                continue
            entry = {"role": str(item.get("role")), "conn": numbers.get(item["conn"], item["conn"]),
                     "frames": list(frames)}
            lost.append(entry)
        gap["lost"] = lost
        placed.append(gap)

    if info.gaps:
        for _, rec in ordered_records(path, limit, info, gaps=True):
            if rec.get("kind") == "gap":
                add(rec)
                continue
            events += 1
            conn = rec.get("conn")
            if type(conn) is int:
                numbers.setdefault(conn, len(numbers))
    else:
        events = info.connections + info.frames + info.closes
    if tail is not None:
        add(tail)
    return placed


def transcript_head(info: JournalInfo, gaps: list[dict[str, Any]] | None = None) -> Transcript:
    """An event-less transcript carrying the name, protocol and source of the journal's session; with
    ``gaps`` (:func:`place_gaps`), ``source.incomplete: true``, ``lost_frames`` and ``gaps``."""
    header = info.header
    source: dict[str, Any] = {"kind": "capture", "recorder": header.get("recorder"),
                              "started": header.get("started")}
    source = {k: (v if isinstance(v, str) else None) for k, v in source.items()}
    if info.channel_id:
        source["channel_id"] = info.channel_id
    if isinstance(header.get("proxy"), str):
        source["proxy"] = header["proxy"]
    if info.closes < info.connections:
        source["open_connections"] = info.connections - info.closes
    if gaps:
        source["incomplete"] = True
        source["lost_frames"] = sum(g.get("frames", 0) for g in gaps)
        source["gaps"] = gaps
    return Transcript(name=info.session, protocol=info.protocol, events=[],
                      source={k: v for k, v in source.items() if v is not None})


def load_journal(path: Path, limit: int | None = None) -> Transcript:
    """The whole transcript a journal holds, in memory (see :func:`write_transcript` for large ones).

    Raises :class:`JournalError` (naming ``path:line``) for an unreadable or malformed journal.
    """
    info = scan(path, limit)
    transcript = transcript_head(info, place_gaps(path, info, limit) or None)
    transcript.events = list(iter_events(path, limit=limit, info=info))
    return transcript


def write_transcript(journal: Path, out: Path | str, limit: int | None = None,
                     info: JournalInfo | None = None, tail_gap: dict[str, Any] | None = None,
                     parts: int = 1) -> JournalInfo:
    """Rebuild the transcript from ``journal`` and write it to ``out`` (``-`` for standard output).

    Constant memory: events are streamed into YAML in chunks of :data:`YAML_CHUNK`. The file is written
    atomically (temporary file in the same folder, flushed, fsynced, renamed), byte for byte what
    :func:`chanlog.transcript.dump` writes for the same transcript. ``tail_gap``: a ``gap`` record the
    journal could not take (the session ended while its disk was full), listed last in ``source.gaps``.
    ``parts`` > 1 (only in a process of its own: it forks): a journal of at least :data:`PARALLEL_FRAMES`
    frames, without merged blocks, is converted in that many parts at once, joined in order (the same
    bytes); without ``info``, the other parts start before the scan, which runs beside them (and are
    dropped if the scan finds the journal cannot be split). Returns the scan of the journal. Raises
    :class:`JournalError` for a bad journal, ``OSError`` when ``out`` cannot be written.
    """
    split = parts > 1 and str(out) != "-" and hasattr(os, "fork")
    started = _start_parts(journal, Path(out), limit, parts) if split and info is None else None
    try:
        info = info or scan(journal, limit, quick=True)  # every record is read again below, and checked
        head = transcript_head(info, place_gaps(journal, info, limit, tail_gap) or None)
    except BaseException:
        if started is not None:
            started.drop()
        raise
    if started is not None and started.bounds[-1] != info.size:  # the file grew meanwhile: split it again
        started.drop()
        started = None
    if (split and info.frames >= PARALLEL_FRAMES and not info.blocks and info.partial_merge is None
            and info.numbered_in_order and info.header_line == 1):
        started = started or _start_parts(journal, Path(out), info.size, parts)
        if started is not None and _write_in_parts(started, Path(out), head):
            return info
    elif started is not None:
        started.drop()
    events = iter_event_dicts(journal, limit=limit, info=info)
    if str(out) == "-":
        for piece in yaml_pieces(head, events):
            sys.stdout.write(piece)
        return info
    write_atomic(Path(out), yaml_pieces(head, events))
    return info


def _part_events(path: Path, start: int, end: int, t0: float | None) -> Iterator[dict[str, Any]]:
    """The event mappings of the journal's lines that start in bytes ``start`` to ``end`` (markers and gaps left
    out, connection numbers as in the journal). Raises :class:`JournalError` naming the byte offset."""
    with open(path, "rb") as fh:
        fh.seek(start)
        pos = start
        while pos < end:
            raw = fh.readline()
            if not raw:
                return
            where, pos = pos, pos + len(raw)
            if pos > end:
                raw = raw[:len(raw) - (pos - end)]
            if zero_tail(raw):
                return
            if not raw or raw.isspace():
                continue
            rec: Any = None
            shallow = False
            if raw.startswith(b'{"kind":"frame",'):  # a raw frame line (format 2): the message sliced out
                try:
                    rec = raw_frame_record(raw)
                except ValueError as exc:
                    if not raw.endswith(b"\n"):
                        return  # an incomplete last line
                    raise JournalError(str(exc), f"{path}: byte {where}") from None
            if rec is None:
                # without \u escapes, a frame's text has the brackets its line has: few in the line, few in the text
                shallow = raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH and b"\\u" not in raw
                try:
                    rec = CHECKED_DECODER.decode(raw.decode()) if shallow else parse_json(raw)  # issue 16's limits
                except (ValueError, RecursionError):
                    try:
                        rec = parse_json(raw)  # what it says, or its error
                    except (ValueError, RecursionError):
                        if not raw.endswith(b"\n"):
                            return  # an incomplete last line
                        raise JournalError("not a JSON record", f"{path}: byte {where}") from None
                if not isinstance(rec, dict):
                    raise JournalError("a journal record is a JSON object", f"{path}: byte {where}")
            try:
                event = record_to_dict(rec, t0, shallow)
            except (KeyError, TypeError, ValueError) as exc:
                raise JournalError(f"malformed record: {exc}", f"{path}: byte {where}") from None
            if event is not None:
                yield event


def _part_yaml(path: Path, start: int, end: int, t0: float | None) -> Iterator[str]:
    """The YAML of the events of the journal's bytes ``start`` to ``end`` (:func:`_part_events`),
    :data:`YAML_CHUNK` events at a time."""
    chunk: list[dict[str, Any]] = []
    for event in _part_events(path, start, end, t0):
        chunk.append(event)
        if len(chunk) >= YAML_CHUNK:
            yield events_yaml(chunk)
            chunk = []
    if chunk:
        yield events_yaml(chunk)


def _dump_part(path: Path, start: int, end: int, t0: float | None, part: Path) -> None:
    with open(part, "w", encoding="utf-8") as fh:
        for piece in _part_yaml(path, start, end, t0):
            fh.write(piece)


class _PartFailed(Exception):
    """A part of a transcript written in parts could not be written."""


#: How much of the journal the process writing a transcript in parts converts itself, against 1 for each
#: process it forks: it also scans the journal and copies the other parts into the transcript.
PARENT_WEIGHT = 0.7


@dataclass
class _Parts:
    """The parts of a journal being converted by forked processes (:func:`_start_parts`)."""

    journal: Path
    bounds: list[int]
    """Byte offsets: part ``k`` is the lines that start from ``bounds[k]`` to ``bounds[k + 1]``."""
    t0: float | None
    files: list[Path]
    """The files of parts 1, 2, ... (part 0 is written by this process, into the transcript)."""
    children: list[int]
    """Process ids of the forked processes not yet waited for."""

    def wait(self) -> bool:
        """Wait for every forked process; True when each wrote its part."""
        ok = True
        while self.children:
            _, status = os.waitpid(self.children.pop(0), 0)
            ok = ok and status == 0
        return ok

    def drop(self) -> None:
        """Stop the forked processes and remove their files."""
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # pragma: no cover - it ended meanwhile
                pass
        self.wait()
        for part in self.files:
            try:
                part.unlink()
            except OSError:
                pass


def _start_parts(journal: Path, out: Path, limit: int | None, parts: int) -> _Parts | None:
    """Fork ``parts - 1`` processes converting the later parts of ``journal`` (up to ``limit`` bytes) to
    files beside ``out``; this process keeps the first, smaller part (:data:`PARENT_WEIGHT`). ``None`` when
    the journal is too short to split or does not start with a header line (the caller writes it whole)."""
    import tempfile

    try:
        with open(journal, "rb") as fh:
            first = fh.readline()
            header = parse_json(first)
            end = limit if limit is not None else os.fstat(fh.fileno()).st_size
            start = len(first)
            if (not isinstance(header, dict) or "chanlog_journal" not in header
                    or end - start < PARALLEL_FRAMES * 64):  # a frame line has at least 64 bytes
                return None
            weights = [PARENT_WEIGHT] + [1.0] * (parts - 1)
            bounds = [start]
            for k in range(1, parts):
                fh.seek(max(bounds[-1], start + int((end - start) * sum(weights[:k]) / sum(weights))))
                fh.readline()
                bounds.append(min(end, max(bounds[-1], fh.tell())))
            bounds.append(end)
    except (OSError, ValueError, RecursionError):
        return None
    started = _Parts(journal, bounds, _header_t0(header), [], [])
    try:
        for k in range(1, parts):
            fd, name = tempfile.mkstemp(prefix=f".{out.name}.part", suffix=".tmp", dir=out.parent)
            os.close(fd)
            started.files.append(Path(name))
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    _dump_part(journal, bounds[k], bounds[k + 1], started.t0, started.files[-1])
                    code = 0
                finally:
                    os._exit(code)
            started.children.append(pid)
    except OSError:
        started.drop()
        return None
    return started


def _write_in_parts(started: _Parts, out: Path, head: Transcript) -> bool:
    """The transcript of a journal converted in parts (:func:`_start_parts`): this process writes the head
    and the first part straight into the transcript's temporary file, then appends the other parts in
    order. False (nothing written) when a part fails, for the caller to write it in one piece (and report
    the error with its line)."""
    bounds = started.bounds

    def pieces() -> Iterator[str]:
        yield head_piece(head)
        yield "events:\n"
        try:
            yield from _part_yaml(started.journal, bounds[0], bounds[1], started.t0)
        except JournalError:
            raise _PartFailed from None
        if not started.wait():
            raise _PartFailed
        for part in started.files:
            with open(part, encoding="utf-8") as fh:
                while block := fh.read(1 << 20):
                    yield block

    try:
        write_atomic(out, pieces())
    except _PartFailed:
        return False
    finally:
        started.drop()  # the processes are done (or failed); their files go
    return True


def yaml_pieces(head: Transcript, events: Iterable[Event] | Iterable[dict[str, Any]]) -> Iterator[str]:
    """Transcript YAML (format 1) in pieces: the head's keys, then the events (model events, or their
    mappings as :func:`iter_event_dicts` gives them) :data:`YAML_CHUNK` at a time
    (:func:`chanlog.transcript.event_pieces` with this module's fast emitter of the same bytes)."""
    yield head_piece(head)
    yield from event_pieces(events, YAML_CHUNK, events_yaml, _as_dict)


def _as_dict(event: Event | dict[str, Any]) -> dict[str, Any]:
    return event if type(event) is dict else event_to_dict(event)  # type: ignore[arg-type]


# -- writing off the proxy's event loop -----------------------------------------------------------


def _worker_init() -> None:
    """Worker process start: the lowest CPU priority there is, so that the proxy comes first: on Linux the
    ``SCHED_IDLE`` policy (it runs when a CPU has nothing else to do, and the proxy takes the CPU back the
    moment it wakes up), else ``os.nice`` by :data:`WORKER_NICE`. The processes it forks inherit it."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):  # pragma: no cover - not Linux, or not permitted
        pass
    try:
        os.nice(WORKER_NICE)
    except OSError:  # pragma: no cover - not permitted here
        pass


def _serve() -> None:
    """A worker process's main loop (``python -c "...; _serve()" JOBS_FD RESULTS_FD``, started by
    :class:`WorkerPool`): take ``(function, args)`` from the jobs pipe, run it, send ``("ok", result)`` or
    ``("error", exception)`` back. The first message is the proxy's ``sys.path`` (so that functions of the
    same modules can be named). It has one thread, so the processes it forks (a transcript in parts) are safe;
    it ignores SIGINT (the proxy's Ctrl-C: the proxy decides when writers stop) and exits when the jobs pipe
    ends: the proxy closed it, or the proxy is gone (killed too), after the job it is doing."""
    from multiprocessing.connection import Connection

    jobs = Connection(int(sys.argv[1]), writable=False)
    results = Connection(int(sys.argv[2]), readable=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_init()
    while True:
        try:
            kind, payload = jobs.recv()
        except (EOFError, OSError):
            os._exit(0)
        except Exception as exc:  # noqa: BLE001 - a job naming what cannot be imported here: its error
            reply: tuple[str, Any] = ("error", exc)
        else:
            if kind == "path":
                sys.path[:] = payload
                continue
            fn, args = payload
            try:
                reply = ("ok", fn(*args))
            except Exception as exc:  # noqa: BLE001 - sent back, raised by the job's future
                reply = ("error", exc)
        try:
            results.send(reply)
        except OSError:
            os._exit(0)
        except Exception as exc:  # noqa: BLE001 - a result or exception that does not pickle
            results.send(("error", RuntimeError(f"{type(exc).__name__}: {exc} (a result that cannot be sent back)")))


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self) -> None:
        import subprocess
        from multiprocessing.connection import Connection

        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        package = str(Path(__file__).resolve().parents[2])  # where ``chanlog`` is, installed or not
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package, os.environ.get("PYTHONPATH")]))}
        try:
            # subprocess starts it with fork+exec (vfork/posix_spawn where it can): nothing of this process's
            # threads or locks is inherited, unlike os.fork (DeprecationWarning in a threaded process since
            # Python 3.12), and no multiprocessing semaphore is made for a resource tracker to report
            self.proc = subprocess.Popen([sys.executable, "-c", "from chanlog.record.writer import _serve; _serve()",
                                          str(job_r), str(res_w)], pass_fds=(job_r, res_w), env=env,
                                         stdin=subprocess.DEVNULL)
        except BaseException:
            for fd in (job_r, job_w, res_r, res_w):
                os.close(fd)
            raise
        os.close(job_r)
        os.close(res_w)
        self.jobs = Connection(job_w, readable=False)
        self.results = Connection(res_r, writable=False)
        self.jobs.send(("path", list(sys.path)))

    def close(self, wait: bool = True) -> None:
        """End the worker: its jobs pipe closed, it exits (after the job it is doing)."""
        for conn in (self.jobs, self.results):
            try:
                conn.close()
            except OSError:  # pragma: no cover - closed already
                pass
        if wait:
            try:
                self.proc.wait(60)
            except Exception:  # noqa: BLE001 - it exits by itself; not worth blocking the proxy's shutdown
                pass


class WorkerPool:
    """``workers`` worker processes, each fed by a thread of this process through two pipes
    (:func:`_serve`): the same ``submit``/``shutdown`` as ``ProcessPoolExecutor``, without its ``fork``
    (unsafe in a threaded process such as mitmproxy) or its ``multiprocessing`` locks and queues (named
    semaphores a ``spawn`` or ``forkserver`` pool registers with a resource tracker process, which complains
    about "leaked semaphore objects" whenever the proxy is killed). A worker that dies fails its job with
    ``BrokenProcessPool`` and is replaced for the next one; the others go on."""

    def __init__(self, workers: int, name: str = "chanlog-writer") -> None:
        import queue

        self.workers = workers
        self.name = name
        self._jobs: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start every worker process now (each imports for a moment before its first job)."""
        with self._lock:
            while len(self._threads) < self.workers and not self._closed:
                thread = threading.Thread(target=self._feed, name=f"{self.name}-{len(self._threads)}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in a worker process (both pickled: module-level functions); its future.
        Raises ``RuntimeError`` after :meth:`shutdown`."""
        if self._closed:
            raise RuntimeError("the worker pool is shut down")
        future: Future[Any] = Future()
        self._jobs.put((future, fn, args))
        self.start()
        return future

    def _feed(self) -> None:
        """One worker's thread: start its process, hand it jobs one at a time, set their futures."""
        worker: _Worker | None = None
        try:
            worker = _Worker()
        except OSError as exc:
            logger.warning(f"chanlog: cannot start a transcript writer process yet: {exc}")
        while True:
            item = self._jobs.get()
            if item is None:
                break
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if worker is None or worker.proc.poll() is not None:
                    if worker is not None:
                        worker.close(wait=False)
                    worker = None
                    worker = _Worker()
            except OSError as exc:
                future.set_exception(exc)
                continue
            try:
                worker.jobs.send(("job", (fn, args)))
                kind, value = worker.results.recv()
            except (EOFError, OSError):  # the process died (killed, out of memory)
                worker.close(wait=False)
                worker = None
                future.set_exception(BrokenProcessPool(f"a worker process died running {getattr(fn, '__name__', fn)}"))
                continue
            except Exception as exc:  # noqa: BLE001 - arguments or a result that do not pickle
                future.set_exception(exc)
                continue
            if kind == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)
        if worker is not None:
            worker.close()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """No more jobs; the queued ones are still run unless ``cancel_futures``; ``wait``: until the
        workers have ended."""
        import queue

        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join()


def _write_job(journal: str, out: str, limit: int | None, tail_gap: dict[str, Any] | None,
               parts: int = 1) -> tuple[int, int]:
    """The job a worker runs: :func:`write_transcript`; returns ``(frames, connections)``."""
    info = write_transcript(Path(journal), Path(out), limit=limit, tail_gap=tail_gap, parts=parts)
    return info.frames, info.connections


class TranscriptWriter:
    """Writes transcripts from journals in ``workers`` worker processes (:class:`WorkerPool`; ``0``: one
    thread of this process, for tests and constrained hosts), at most ``workers`` at a time. A job whose
    worker was killed fails with ``BrokenProcessPool`` (the recorder tries it once more)."""

    def __init__(self, workers: int = DEFAULT_WORKERS) -> None:
        self.workers = workers
        """Worker processes (0: a thread)."""
        self._pool: WorkerPool | ThreadPoolExecutor | None = None

    def _executor(self) -> WorkerPool | ThreadPoolExecutor:
        if self._pool is None:
            if self.workers <= 0:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chanlog-writer")
            else:
                self._pool = WorkerPool(self.workers)
        return self._pool

    def start(self) -> None:
        """Start the worker processes now (they take a moment to import), so that the first transcript
        is not delayed by it."""
        pool = self._executor()
        if isinstance(pool, WorkerPool):
            pool.start()

    def submit(self, journal: Path, out: Path, limit: int | None,
               tail_gap: dict[str, Any] | None = None) -> Future[tuple[int, int]]:
        """Start writing ``out`` from the first ``limit`` bytes of ``journal``; the future gives
        ``(frames, connections)`` or raises :class:`JournalError`/``OSError``."""
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        parts = min(MAX_PARTS, max(1, cpus)) if self.workers > 0 else 1  # forks only in a worker
        args = (str(journal), str(out), limit, tail_gap, parts)
        try:
            return self._executor().submit(_write_job, *args)
        except (BrokenProcessPool, RuntimeError):
            self._replace()
            return self._executor().submit(_write_job, *args)

    def retry_broken(self, journal: Path, out: Path, limit: int | None,
                     tail_gap: dict[str, Any] | None = None) -> Future[tuple[int, int]]:
        """Submit a job again whose worker died (the pool replaces the worker itself)."""
        return self.submit(journal, out, limit, tail_gap)

    def _replace(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                pool.shutdown(wait=False, cancel_futures=True)
            except Exception:  # noqa: BLE001 - a broken pool may fail to shut down; it is dropped anyway
                pass

    def shutdown(self, wait: bool = True) -> None:
        """Stop the workers (after the queued jobs when ``wait``)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait)


def when_done(future: Future[Any], callback: Callable[[Future[Any]], None]) -> None:
    """Run ``callback(future)`` when ``future`` completes (at once if it has); its exceptions are logged,
    never lost in a pool thread."""
    def run(f: Future[Any]) -> None:
        try:
            callback(f)
        except Exception:  # noqa: BLE001 - report, do not kill the pool's thread
            logger.exception("chanlog: error after writing a transcript")
    future.add_done_callback(run)
