"""The transcript model: one channel session as typed dataclasses.

This is the one place where plain data (dicts from YAML, JSON Lines journals) becomes objects and back
(:meth:`Transcript.from_dict`, :meth:`Transcript.to_dict`). Capture and the importer produce a
:class:`Transcript`; decode, render, replay and diff consume it.

Terms: a *connection* is one WebSocket connection of one participant (``role`` is ``initiator`` or
``responder``); a participant may open several (reconnect, reestablish). A *frame* is one WebSocket
message, ``sender`` ``client`` (participant to node) or ``node``. Times ``t`` are seconds since the
transcript's first event, ``None`` when unknown (logs without timestamps).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from chanlog.errors import TranscriptError

ROLES = ("initiator", "responder")
SENDERS = ("client", "node")
PROTOCOLS = ("json-rpc", "legacy")

#: JSON text styles a parsed frame can be re-serialised in, byte for byte (``ensure_ascii=False``):
#: ``pretty`` is the node's log style (``indent=2``), ``compact`` has no spaces, ``spaced`` is
#: Python's default ``", "`` / ``": "``.
JSON_FORMATS: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":"), "ensure_ascii": False},
    "pretty": {"indent": 2, "ensure_ascii": False},
    "spaced": {"ensure_ascii": False},
}


def dump_json(data: Any, fmt: str = "pretty") -> str:
    """Serialise parsed JSON ``data`` in one of :data:`JSON_FORMATS` (``KeyError`` on an unknown one).

    ``pretty`` is made by :func:`_pretty` (the same text as ``json.dumps(indent=2, ensure_ascii=False)``,
    several times faster: Python's C encoder does not indent); values that are not plain parsed JSON fall
    back to :func:`json.dumps`."""
    if fmt == "pretty":
        try:
            return _pretty(data, "\n")
        except (_NotPlain, RecursionError):
            pass
    return json.dumps(data, **JSON_FORMATS[fmt])


class _NotPlain(Exception):
    """A value :func:`_pretty` leaves to :func:`json.dumps` (not ``dict``/``list``/``str``/``int``/finite
    ``float``/``bool``/``None``, or a non-string key)."""


_encode_string = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.py_encode_basestring
_LITERALS = {True: "true", False: "false", None: "null"}


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is bool or value is None:
        return _LITERALS[value]
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    raise _NotPlain


def _pretty(value: Any, newline: str) -> str:
    """``value`` as ``json.dumps(value, indent=2, ensure_ascii=False)`` writes it, ``newline`` being the
    line break and indentation before its own first line's siblings (``"\\n"`` plus two spaces per level):
    one string join per container, scalars by the C string encoder. Raises :class:`_NotPlain`."""
    kind = type(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + "  "
        items = []
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            kind = type(item)
            items.append(_encode_string(key) + ": " + (_pretty(item, inner) if kind is dict or kind is list
                                                          else _scalar(item)))
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    if kind is list:
        if not value:
            return "[]"
        inner = newline + "  "
        return "[" + inner + ("," + inner).join([_pretty(item, inner) if type(item) is dict or type(item) is list
                                                   else _scalar(item) for item in value]) + newline + "]"
    return _scalar(value)


#: Deepest nesting of JSON arrays and objects read (frames, logs, journals, transcript frame data). The
#: node's deepest message (an update report holding a decoded PoI) nests about 8 deep; everything that walks
#: a message (matching, masking volatile values, rendering) recurses once per level.
MAX_JSON_DEPTH = 128
#: Most digits in one JSON number (or YAML integer). Amounts in aettos have at most ~40; Python refuses to
#: convert integers of more than 4,300 digits (``sys.int_max_str_digits``), as slow work.
MAX_NUMBER_DIGITS = 1000
#: Largest connection number (``conn``) of a transcript event: connections are numbered from 0 in order
#: of opening, so this is also the most connections one transcript may hold.
MAX_CONN = 1_000_000

_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class JSONLimitError(json.JSONDecodeError):
    """JSON text exceeds :data:`MAX_JSON_DEPTH` or :data:`MAX_NUMBER_DIGITS`, or holds ``NaN``/``Infinity``
    (not JSON). A :class:`json.JSONDecodeError` (so a ``ValueError``): ``msg`` names the limit, ``pos``,
    ``lineno`` and ``colno`` where it is exceeded."""


def parse_json(text: str | bytes) -> Any:
    """Parse untrusted JSON ``text`` (``str``, or UTF-8 ``bytes``) with named limits, in linear time.

    Like :func:`json.loads` (key order kept), but raises :class:`JSONLimitError` for nesting deeper than
    :data:`MAX_JSON_DEPTH`, a number of more than :data:`MAX_NUMBER_DIGITS` digits, and ``NaN``/``Infinity``;
    other malformed text raises :class:`json.JSONDecodeError` as usual. RFC 8259.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8")
    try:  # numbers are few in a frame: checking each one is cheaper than scanning the text for long ones
        data = CHECKED_DECODER.decode(text)
    except _NumberTooLong as exc:
        raise JSONLimitError(exc.args[0], text, max(text.find(exc.args[1]), 0)) from None
    except _NotJSON as exc:
        raise JSONLimitError(exc.args[0], text, max(text.find(exc.args[1]), 0)) from None
    except RecursionError:
        raise _too_deep(text) from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(data) > MAX_JSON_DEPTH:
        raise _too_deep(text)
    return data


def json_depth(data: Any, limit: int | None = None) -> int:
    """How deeply arrays and objects nest in parsed JSON ``data`` (a scalar: 0, ``[]``: 1); iterative. With
    ``limit``, counting stops at the first container deeper than it (the result is then ``limit + 1``)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if depth > deepest:
            deepest = depth
            if limit is not None and deepest > limit:
                return deepest
        stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return deepest


class _NumberTooLong(ValueError):
    pass


class _NotJSON(ValueError):
    pass


def _bounded(convert: Any) -> Any:
    def parse(digits: str) -> Any:
        if len(digits) > MAX_NUMBER_DIGITS:
            raise _NumberTooLong(f"a number of {len(digits):,} characters, more than MAX_NUMBER_DIGITS "
                                 f"({MAX_NUMBER_DIGITS:,})", digits)
        return convert(digits)
    return parse


def _finite_float(digits: str) -> float:
    value = float(digits)
    if not math.isfinite(value):
        raise _NotJSON(f"{digits} is too large for a 64-bit float", digits)
    return value


def _refuse_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON value", name)


#: The decoder of :func:`parse_json`, made once (``json.loads`` with these hooks makes one per call, which costs
#: as much as parsing a 2 KB frame): numbers are checked against :data:`MAX_NUMBER_DIGITS` as it meets them,
#: ``NaN``/``Infinity`` refused. Raises ``ValueError``; unlike :func:`parse_json` it does not check the depth.
CHECKED_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_bounded(int),
                            parse_float=_bounded(_finite_float))


def _too_deep(text: str) -> JSONLimitError:
    """The error for nesting past :data:`MAX_JSON_DEPTH`, at the bracket that goes too deep."""
    depth, pos = 0, 0
    for m in _JSON_TOKEN.finditer(text):
        token = m.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                pos = m.start()
                break
        elif token in "]}":
            depth -= 1
    return JSONLimitError(f"nested deeper than MAX_JSON_DEPTH ({MAX_JSON_DEPTH})", text, pos)


@dataclass
class Event:
    """Base of every transcript event: something that happened on one connection."""

    KIND: ClassVar[str] = ""

    role: str
    """``initiator`` or ``responder``."""
    conn: int
    """Connection number within the transcript, 0-based, in order of opening."""
    t: float | None = None
    """Seconds since the transcript's first event; ``None`` when not known."""
    stamp: str | None = None
    """The timestamp text of the source log's heading, verbatim (``2019-03-13 11:04:47.10``), if any."""


@dataclass
class Open(Event):
    """The participant opened a WebSocket connection to the channel endpoint."""

    KIND: ClassVar[str] = "open"

    url: str = ""
    """The URL as requested, query included (``ws://localhost:3014/channel?...&role=initiator``)."""
    headers: dict[str, str] | None = None
    """Upgrade request headers; only stored when the recorder was asked to."""

    @property
    def params(self) -> dict[str, str]:
        """The URL's query parameters, decoded (last value wins for a repeated key)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))


@dataclass
class Frame(Event):
    """One WebSocket message. Exactly one of ``data``, ``text``, ``binary`` carries the content."""

    KIND: ClassVar[str] = "frame"

    sender: str = "node"
    """``client`` (participant to node) or ``node`` (node to participant)."""
    data: Any = None
    """The message parsed as JSON, key order kept; set when ``fmt`` re-serialises it exactly."""
    fmt: str | None = None
    """Which of :data:`JSON_FORMATS` gives back the original text from ``data``."""
    text: str | None = None
    """The message text verbatim, when it is not JSON or no format reproduces it."""
    binary: bytes | None = None
    """A binary message's bytes."""
    injected: bool = False
    """True when the proxy (not a participant or the node) injected the message."""
    _texts: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Serialisations already made (by format); filled by :meth:`json_text` and the importer."""

    def json_text(self, fmt: str = "pretty") -> str:
        """``data`` serialised in ``fmt`` (cached; the cache assumes ``data`` is not mutated), or the
        verbatim ``text`` of a non-JSON message."""
        if self.text is not None:
            return self.text
        if self.binary is not None:
            return base64.b64encode(self.binary).decode("ascii")
        cached = self._texts.get(fmt)
        if cached is None:
            cached = self._texts[fmt] = dump_json(self.data, fmt)
        return cached

    @classmethod
    def from_wire(cls, content: str | bytes, *, role: str, conn: int, sender: str, **kw: Any) -> Frame:
        """Build a frame from a message as on the wire: ``str`` for a text message, ``bytes`` for binary.

        Text that parses as JSON and is reproduced exactly by one of :data:`JSON_FORMATS` is stored
        parsed; anything else is kept verbatim in ``text``. Nothing is dropped.
        """
        if isinstance(content, bytes):
            return cls(role=role, conn=conn, sender=sender, binary=content, **kw)
        data, fmt = parse_json_exact(content)
        if fmt is None:
            return cls(role=role, conn=conn, sender=sender, text=content, **kw)
        return cls(role=role, conn=conn, sender=sender, data=data, fmt=fmt, **kw)

    def wire(self) -> str | bytes:
        """The message as it was on the wire (``bytes`` for a binary message)."""
        if self.binary is not None:
            return self.binary
        if self.text is not None:
            return self.text
        return self.json_text(self.fmt or "compact")

    @property
    def is_json(self) -> bool:
        """True when the message was a JSON text (``data`` is set)."""
        return self.fmt is not None

    @property
    def obj(self) -> dict[str, Any]:
        """``data`` when it is a JSON object, else ``{}`` (so lookups never fail)."""
        return self.data if self.fmt is not None and isinstance(self.data, dict) else {}

    @property
    def method(self) -> str | None:
        """JSON-RPC ``method``; for legacy frames ``action`` (``action.tag`` when a tag is present)."""
        obj = self.obj
        if "method" in obj:
            return obj["method"]
        if "action" in obj:
            return f"{obj['action']}.{obj['tag']}" if obj.get("tag") is not None else str(obj["action"])
        return None

    @property
    def rpc_kind(self) -> str:
        """``request`` (has ``id``), ``notification`` (method, no ``id``), ``response``, ``error``, or ``other``."""
        obj = self.obj
        if "method" in obj:
            return "request" if "id" in obj else "notification"
        if "error" in obj:
            return "error"
        if "result" in obj:
            return "response"
        if obj.get("action") == "error":
            return "error"
        return "other"

    @property
    def payload(self) -> Any:
        """The message body: JSON-RPC ``params.data`` (node) or ``params`` (client); legacy ``payload``."""
        obj = self.obj
        if "params" in obj:
            params = obj["params"]
            if isinstance(params, dict) and self.sender == "node" and "data" in params:
                return params["data"]
            return params
        if "payload" in obj:
            return obj["payload"]
        return obj.get("result")

    @property
    def info_event(self) -> str | None:
        """The event name of a ``channels.info`` (legacy ``info``) notification, else ``None``."""
        obj = self.obj
        if obj.get("method") == "channels.info" or obj.get("action") == "info":
            body = self.payload
            if isinstance(body, dict) and isinstance(body.get("event"), str):
                return body["event"]
        return None

    @property
    def channel_id(self) -> str | None:
        """The ``channel_id`` the node stamped on this frame, if any."""
        obj = self.obj
        params = obj.get("params")
        if isinstance(params, dict) and isinstance(params.get("channel_id"), str):
            return params["channel_id"]
        value = obj.get("channel_id")
        return value if isinstance(value, str) else None


#: The API prefix of a channel id (the node's ``aeser_api_encoder``: type ``channel`` is written ``ch_``).
CHANNEL_ID_PREFIX = "ch_"


def is_channel_id(value: object) -> bool:
    """Whether ``value`` is a channel id as the node writes it (``ch_...``), not a placeholder a client or
    an older node put in its place before the channel existed (``undefined``, ``null``, empty)."""
    return isinstance(value, str) and value.startswith(CHANNEL_ID_PREFIX) and len(value) > len(CHANNEL_ID_PREFIX)


@dataclass
class Note(Event):
    """A sentence the log attached to the frame before it (the node's ``<role> info`` entries)."""

    KIND: ClassVar[str] = "note"

    text: str = ""
    """The sentence, without the Markdown quote marker."""


@dataclass
class Close(Event):
    """The connection closed."""

    KIND: ClassVar[str] = "close"

    code: int | None = None
    """WebSocket close code (1000 normal, 1006 abnormal...); ``None`` when not known."""
    closed_by: str | None = None
    """``client`` or ``node``: which side closed first; ``None`` when not known."""
    reason: str | None = None
    """The close reason text, if any."""


EVENT_TYPES: dict[str, type[Event]] = {cls.KIND: cls for cls in (Open, Frame, Note, Close)}


@dataclass
class Connection:
    """A view of one connection: its open, frames, notes and close, in order."""

    conn: int
    role: str
    events: list[Event]

    @property
    def open(self) -> Open | None:
        return next((e for e in self.events if isinstance(e, Open)), None)

    @property
    def close(self) -> Close | None:
        return next((e for e in self.events if isinstance(e, Close)), None)

    @property
    def frames(self) -> list[Frame]:
        return [e for e in self.events if isinstance(e, Frame)]


@dataclass
class Transcript:
    """One channel session: both participants, every connection, every event in the order seen.

    Serialised as transcript format 1 (see :mod:`chanlog.transcript`).
    """

    FORMAT: ClassVar[int] = 1

    name: str = "session"
    """A short name (the log's test case, or the recorder's session name)."""
    protocol: str = "json-rpc"
    """``json-rpc`` or ``legacy``."""
    events: list[Event] = field(default_factory=list)
    """Every event in the order the proxy saw (or the log wrote) them."""
    source: dict[str, Any] = field(default_factory=dict)
    """Where the transcript came from: ``{"kind": "node-log", "era": "current", "file": ...}`` or
    ``{"kind": "capture", ...}``; renderers use ``era`` to reproduce the log's headings."""

    def frames(self) -> Iterator[tuple[int, Frame]]:
        """``(number, frame)`` for every frame, numbered from 1 in transcript order."""
        n = 0
        for event in self.events:
            if isinstance(event, Frame):
                n += 1
                yield n, event

    def connections(self) -> list[Connection]:
        """Every connection, in order of their number, with its events in order."""
        by_conn: dict[int, Connection] = {}
        for event in self.events:
            c = by_conn.setdefault(event.conn, Connection(event.conn, event.role, []))
            c.events.append(event)
        return [by_conn[k] for k in sorted(by_conn)]

    @property
    def params(self) -> dict[str, str]:
        """Channel parameters from the open URLs: the initiator's first URL, then the responder's
        keys it lacks; ``role`` left out."""
        merged: dict[str, str] = {}
        for role in ROLES:
            for event in self.events:
                if isinstance(event, Open) and event.role == role:
                    for k, v in event.params.items():
                        merged.setdefault(k, v)
                    break
        merged.pop("role", None)
        return merged

    @property
    def channel_id(self) -> str | None:
        """The session's channel id: the first ``channel_id`` a frame carries that is one
        (:func:`is_channel_id`), or ``None``. Placeholders the first frames of older logs carry (2018 logs:
        ``undefined``) are passed over for the real id that comes later."""
        for _, frame in self.frames():
            if is_channel_id(frame.channel_id):
                return frame.channel_id
        return None

    # -- plain data ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data in transcript format 1 (what YAML holds); the inverse of :meth:`from_dict`."""
        out: dict[str, Any] = {"chanlog": self.FORMAT, "name": self.name, "protocol": self.protocol}
        if self.source:
            out["source"] = dict(self.source)
        out["events"] = [event_to_dict(e) for e in self.events]
        return out

    @classmethod
    def from_dict(cls, doc: Any) -> Transcript:
        """Build from plain data in format 1 (already upgraded).

        Raises :class:`TranscriptError` whose ``where`` is a path such as ``events[3].from``.
        """
        if not isinstance(doc, dict):
            raise TranscriptError("a transcript is a mapping with keys chanlog, name, protocol, events", "")
        protocol = doc.get("protocol", "json-rpc")
        if protocol not in PROTOCOLS:
            raise TranscriptError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}", "protocol")
        events = doc.get("events")
        if not isinstance(events, list):
            raise TranscriptError("events must be a list", "events")
        source = doc.get("source") or {}
        if not isinstance(source, dict):
            raise TranscriptError("source must be a mapping", "source")
        return cls(
            name=str(doc.get("name", "session")),
            protocol=protocol,
            events=[event_from_dict(e, f"events[{i}]") for i, e in enumerate(events)],
            source=source,
        )


def parse_json_exact(text: str) -> tuple[Any, str | None]:
    """Parse ``text`` as JSON and find the :data:`JSON_FORMATS` style that reproduces it exactly.

    Returns ``(data, fmt)``, or ``(None, None)`` when ``text`` is not JSON or no style reproduces it
    (duplicate keys, other spacing, escapes): such text must be kept verbatim.
    """
    try:
        data = parse_json(text)
    except ValueError:
        return None, None
    guess = "pretty" if "\n" in text else ("compact" if '":' in text or "," not in text else "spaced")
    for fmt in (guess, *JSON_FORMATS):
        if dump_json(data, fmt) == text:
            return data, fmt
    return None, None


_COMMON = ("role", "conn", "t", "stamp")
#: The keys of a frame's content: exactly one is present.
CONTENT_KEYS = ("data", "text", "binary")


def event_to_dict(event: Event) -> dict[str, Any]:
    """One event as plain data: ``event`` (kind) first, then common keys, then the kind's own."""
    d: dict[str, Any] = {"event": event.KIND, "role": event.role, "conn": event.conn}
    if event.t is not None:
        d["t"] = round(event.t, 6)
    if event.stamp is not None:
        d["stamp"] = event.stamp
    if isinstance(event, Open):
        d["url"] = event.url
        if event.headers:
            d["headers"] = dict(event.headers)
    elif isinstance(event, Frame):
        d["from"] = event.sender
        if event.injected:
            d["injected"] = True
        if event.binary is not None:
            d["binary"] = base64.b64encode(event.binary).decode("ascii")
        elif event.text is not None:
            d["text"] = event.text
        else:
            if event.fmt != "pretty":
                d["format"] = event.fmt
            d["data"] = event.data
    elif isinstance(event, Note):
        d["text"] = event.text
    elif isinstance(event, Close):
        for key in ("code", "closed_by", "reason"):
            value = getattr(event, key)
            if value is not None:
                d[key] = value
    return d


def _expect(d: dict[str, Any], key: str, types: type | tuple[type, ...], where: str, required: bool = False) -> Any:
    if key not in d or d[key] is None:
        if required:
            raise TranscriptError(f"missing key {key!r}", where)
        return None
    value = d[key]
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise TranscriptError(f"{key} must be {_type_names(types)}, not {value!r}", f"{where}.{key}")
    if not isinstance(value, types):
        raise TranscriptError(f"{key} must be {_type_names(types)}, not {value!r}", f"{where}.{key}")
    return value


def _type_names(types: type | tuple[type, ...]) -> str:
    ts = types if isinstance(types, tuple) else (types,)
    return " or ".join({"str": "a string", "int": "an integer", "float": "a number", "bool": "true/false",
                        "dict": "a mapping"}.get(t.__name__, t.__name__) for t in ts)


def event_from_dict(d: Any, where: str = "event") -> Event:
    """Build one event from plain data; raises :class:`TranscriptError` naming ``where`` and the key."""
    if not isinstance(d, dict):
        raise TranscriptError("an event is a mapping with keys event, role, conn, ...", where)
    kind = _expect(d, "event", str, where, required=True)
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise TranscriptError(f"unknown event {kind!r} (expected one of {', '.join(EVENT_TYPES)})", f"{where}.event")
    role = _expect(d, "role", str, where, required=True)
    if role not in ROLES:
        raise TranscriptError(f"role must be initiator or responder, not {role!r}", f"{where}.role")
    conn = _expect(d, "conn", int, where, required=True)
    if not 0 <= conn <= MAX_CONN:
        raise TranscriptError(f"conn must be a connection number from 0 to MAX_CONN ({MAX_CONN:,}), not {conn}",
                              f"{where}.conn")
    t = _expect(d, "t", (int, float), where)
    if t is not None and not math.isfinite(t):
        raise TranscriptError(f"t must be a finite number of seconds, not {t!r}", f"{where}.t")
    common: dict[str, Any] = {
        "role": role, "conn": conn, "t": float(t) if t is not None else None,
        "stamp": _expect(d, "stamp", str, where),
    }
    if cls is Open:
        headers = _expect(d, "headers", dict, where)
        if headers and not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
            raise TranscriptError("headers must map names to strings", f"{where}.headers")
        url = _expect(d, "url", str, where, required=True)
        try:
            urlsplit(url).port  # noqa: B018 - parses the host and port: a bad IPv6 literal or port raises
        except ValueError as exc:
            raise TranscriptError(f"url does not parse: {exc}", f"{where}.url") from None
        return Open(url=url, headers=headers, **common)
    if cls is Note:
        return Note(text=_expect(d, "text", str, where, required=True), **common)
    if cls is Close:
        code = _expect(d, "code", int, where)
        if code is not None and not 0 <= code <= 0xFFFF:
            raise TranscriptError(f"code must be a WebSocket close code (0 to 65535), not {code}", f"{where}.code")
        return Close(code=code, closed_by=_expect(d, "closed_by", str, where),
                     reason=_expect(d, "reason", str, where), **common)
    sender = _expect(d, "from", str, where, required=True)
    if sender not in SENDERS:
        raise TranscriptError(f"from must be client or node, not {sender!r}", f"{where}.from")
    injected = bool(_expect(d, "injected", bool, where))
    frame = Frame(sender=sender, injected=injected, **common)
    contents = [key for key in CONTENT_KEYS if key in d]
    if len(contents) > 1:
        raise TranscriptError(f"a frame has exactly one of {', '.join(CONTENT_KEYS)}, not {' and '.join(contents)}",
                              f"{where}.{contents[1]}")
    if "binary" in d:
        try:
            frame.binary = base64.b64decode(_expect(d, "binary", str, where, required=True), validate=True)
        except ValueError as exc:
            raise TranscriptError(f"binary is not valid base64: {exc}", f"{where}.binary") from None
    elif "text" in d:
        frame.text = _expect(d, "text", str, where, required=True)
    elif "data" in d:
        fmt = _expect(d, "format", str, where) or "pretty"
        if fmt not in JSON_FORMATS:
            raise TranscriptError(f"format must be one of {', '.join(JSON_FORMATS)}, not {fmt!r}", f"{where}.format")
        data = d["data"]
        if isinstance(data, dict):
            for key in ("method", "action"):
                if key in data and not isinstance(data[key], str):
                    raise TranscriptError(f"{key} must be a string, not {data[key]!r}", f"{where}.data.{key}")
        frame.data, frame.fmt = data, fmt
    else:
        raise TranscriptError("a frame needs one of data, text, binary", where)
    return frame
