"""Render a transcript as Markdown with Jinja2.

Two layouts, each a packaged template under ``chanlog/templates``:

``node``
    the node's own channel-log layout (``aeternity/protocol`` ``node/api/examples/channels``), byte for
    byte: a log imported with :mod:`chanlog.importer` renders back to the original file.
``doc``
    a document for people: title, channel parameters, a Mermaid ``sequenceDiagram`` of the flow with
    phases as ``rect`` blocks, then the frame-by-frame log with a one-line description of every
    ``channels.info`` event and every method (from :data:`DESCRIPTIONS_FILE`, overridable) and the
    decoded fields of every encoded object (``signed_tx``, ``tx``, ``state``, ...).

One environment: a ``ChoiceLoader`` with the user's template directory first, then the packaged
templates, which are also reachable as ``default:<name>`` so that a user template can
``{% extends "default:doc.md.j2" %}``. ``StrictUndefined``, no autoescape (Markdown).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import yaml

from chanlog.errors import RenderError
from chanlog.importer import HEADING_WORDS
from chanlog.model import Close, Event, Frame, Note, Open, Transcript

LAYOUTS = {"node": "node.md.j2", "doc": "doc.md.j2"}
DESCRIPTIONS_FILE = "descriptions.yaml"
_MERMAID_UNSAFE = re.compile(r"[;#<>\r\n]")


def render(transcript: Transcript, layout: str = "doc", template_dir: str | Path | None = None,
           descriptions: str | Path | None = None) -> str:
    """Render ``transcript`` in ``layout`` (``node`` or ``doc``) and return the Markdown text.

    ``template_dir`` is searched before the packaged templates (and may hold ``descriptions.yaml``);
    ``descriptions`` is a YAML file whose ``events`` / ``methods`` / ``phases`` entries override the
    packaged ones. Raises :class:`RenderError` for an unknown layout, a missing or broken template or
    descriptions file, or a template error (naming the template and line).
    """
    if layout not in LAYOUTS:
        raise RenderError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    env = environment(str(template_dir) if template_dir is not None else None)
    era = transcript.source.get("era", "current")
    context: dict[str, Any] = {"transcript": transcript, "era": era if era in HEADING_WORDS else "current"}
    if layout == "doc":
        context["describe"] = Describer(load_descriptions(descriptions, template_dir), transcript.protocol)
        context["flow"] = flow(transcript, context["describe"])
        context["diagrams"] = flow_parts(context["flow"])
        context["params"] = transcript.params
        context["entries"] = doc_entries(transcript)
    try:
        return env.get_template(LAYOUTS[layout]).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template syntax: {exc.message}", f"{exc.filename or exc.name}:{exc.lineno}") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template not found: {exc.name}") from None
    except jinja2.UndefinedError as exc:
        raise RenderError(f"template error: {exc.message}", LAYOUTS[layout]) from None


@functools.lru_cache(maxsize=8)
def environment(template_dir: str | None = None) -> jinja2.Environment:
    """The Jinja2 environment: user templates first, packaged ones after and as ``default:``, with
    chanlog's filters registered (``heading``, ``frame_text``, ``quote``, ``mermaid``, ``aettos``,
    ``decoded``). Raises :class:`RenderError` when ``template_dir`` is not a directory."""
    packaged = jinja2.FileSystemLoader(str(resources.files("chanlog") / "templates"))
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise RenderError(f"template directory not found: {template_dir}")
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders += [jinja2.PrefixLoader({"default": packaged}, delimiter=":"), packaged]
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                             autoescape=False, auto_reload=False, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(heading=heading, frame_text=frame_text, quote=quote, mermaid=mermaid_text,
                       aettos=aettos, decoded=decoded_markdown)
    return env


# -- filters ----------------------------------------------------------------------------------------


def heading(event: Event, era: str = "current") -> str:
    """The node-log heading of ``event`` without ``#### ``: ``initiator <--- node``, with
    `` (stamp)`` when the event has one; the words follow ``era`` (``current``, ``stamped``, ``2018``)."""
    words = HEADING_WORDS.get(era, HEADING_WORDS["current"])
    if isinstance(event, Frame):
        key = event.sender
    else:
        key = event.KIND
    text = event.role + words[key]
    return f"{text} ({event.stamp})" if event.stamp else text


def frame_text(frame: Frame) -> str:
    """A frame's body as the node's logs show it: JSON with ``indent=2``; verbatim text; binary as
    ``<binary: N bytes, base64 ...>``."""
    if frame.binary is not None:
        return f"<binary: {len(frame.binary)} bytes, base64 {frame.json_text()}>"
    return frame.json_text("pretty")


def quote(text: str) -> str:
    """Markdown quote: ``> `` before every line."""
    return "\n".join(f"> {line}" for line in text.split("\n"))


def mermaid_text(text: str) -> str:
    """Text safe inside a Mermaid message: ``;``, ``#``, ``<``, ``>`` and line breaks (which would end or
    break it) become spaces."""
    return _MERMAID_UNSAFE.sub(" ", str(text))


def aettos(value: Any) -> str:
    """An amount in aettos with thousands separators: ``70000000000000`` -> ``70,000,000,000,000``."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


def decoded_markdown(blob: str) -> str:
    """The decoded fields of an encoded object as Markdown (from :mod:`chanlog.decode`); never raises."""
    try:
        from chanlog.decode import decoded_markdown as decode_md
    except ImportError:  # pragma: no cover - decoder not installed
        return ""
    return decode_md(blob)


# -- descriptions -----------------------------------------------------------------------------------


def load_descriptions(path: str | Path | None = None, template_dir: str | Path | None = None) -> dict[str, Any]:
    """The description table: packaged ``descriptions.yaml``, then ``template_dir/descriptions.yaml``,
    then ``path``, each overriding per key in ``events``, ``methods``, ``phases``.

    Raises :class:`RenderError` when a file is missing, not YAML, or not of that shape.
    """
    table = copy.deepcopy(_packaged_descriptions())
    extra: list[Path] = []
    if template_dir is not None and (Path(template_dir) / DESCRIPTIONS_FILE).is_file():
        extra.append(Path(template_dir) / DESCRIPTIONS_FILE)
    if path is not None:
        extra.append(Path(path))
    for p in extra:
        try:
            override = _descriptions_from(p.read_text(encoding="utf-8"), str(p))
        except OSError as exc:
            raise RenderError(f"cannot read descriptions: {exc.strerror}", str(p)) from None
        except UnicodeDecodeError as exc:  # i16 (issue 16): one line, not a traceback
            raise RenderError(f"descriptions are not UTF-8 text: {exc.reason} at byte {exc.start}", str(p)) from None
        for section, entries in override.items():
            table.setdefault(section, {}).update(entries)
    return table


@functools.lru_cache(maxsize=1)
def _packaged_descriptions() -> dict[str, dict[str, Any]]:
    text = (resources.files("chanlog") / "templates" / DESCRIPTIONS_FILE).read_text(encoding="utf-8")
    return _descriptions_from(text, "chanlog/templates/" + DESCRIPTIONS_FILE)


def _descriptions_from(text: str, where: str) -> dict[str, dict[str, Any]]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise RenderError(f"YAML syntax: {exc.problem}", f"{where}:{line}") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise RenderError("descriptions must be a mapping of sections (events, methods, phases) to mappings", where)
    return {str(k): dict(v) for k, v in doc.items()}


@dataclass
class Describer:
    """One-line descriptions and phase names for frames, from the description table.

    JSON-RPC methods are looked up as is (``channels.sign.update``); legacy frames as
    ``<action>.<tag>`` then ``<action>``. Unknown ones get a generic sentence from their shape.
    """

    table: dict[str, Any]
    protocol: str = "json-rpc"

    def __call__(self, frame: Frame) -> str:
        """A one-line description of ``frame`` (never empty)."""
        events, methods = self.table.get("events", {}), self.table.get("methods", {})
        event = frame.info_event
        if event is not None:
            return str(events.get(event, f"Info event `{event}`."))
        method = frame.method
        for key in _method_keys(frame):
            if key in methods:
                return str(methods[key])
        kind = frame.rpc_kind
        if kind == "error":
            return str(methods.get("error", "The node answers with an error."))
        if kind == "response":
            return str(methods.get("result", "The node answers the request."))
        if not frame.is_json:
            return "A frame that is not JSON (kept verbatim)."
        if method:
            who = "The client" if frame.sender == "client" else "The node"
            return f"{who} sends `{method}`."
        return "A frame of unknown shape."

    def phase(self, frame: Frame) -> str | None:
        """The phase this frame starts (``Opening``, ``Closing``...), or ``None`` when it continues the
        current one. Looked up by info event, then by method, in the ``phases`` table."""
        phases = self.table.get("phases", {})
        event = frame.info_event
        if event is not None and f"event:{event}" in phases:
            return str(phases[f"event:{event}"])
        for key in _method_keys(frame):
            if key in phases:
                return str(phases[key])
        return None


def _method_keys(frame: Frame) -> list[str]:
    obj = frame.obj
    if "method" in obj:
        return [str(obj["method"])]
    if "action" in obj:
        action = str(obj["action"])
        tag = obj.get("tag")
        keys = [f"{action}.{tag}"] if tag is not None else []
        return keys + [action]
    return []


# -- doc layout: entries and flow -------------------------------------------------------------------


@dataclass
class DocEntry:
    """One event of the frame-by-frame log in the doc layout."""

    number: int | None
    """Frame number (from 1) for frames; ``None`` for opens, notes and closes."""
    event: Event
    blobs: list[tuple[str, str]] = field(default_factory=list)
    """``(JSON path, encoded value)`` of every encoded object the frame carries."""


def doc_entries(transcript: Transcript) -> list[DocEntry]:
    """Every event with its frame number and the encoded objects found in it (in document order)."""
    entries: list[DocEntry] = []
    number = 0
    for event in transcript.events:
        if isinstance(event, Frame):
            number += 1
            blobs = list(_find_blobs(event.data, "")) if event.is_json else []
            entries.append(DocEntry(number, event, blobs))
        else:
            entries.append(DocEntry(None, event))
    return entries


def _is_blob(value: str) -> bool:
    try:
        from chanlog.decode import is_decodable_blob
    except ImportError:  # pragma: no cover - decoder not installed
        return False
    return is_decodable_blob(value)


def _find_blobs(data: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _find_blobs(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _find_blobs(value, f"{path}[{i}]")
    elif isinstance(data, str) and len(data) > 3 and data[2] in "_$" and _is_blob(data):
        yield path, data


@dataclass
class Arrow:
    """One message of the sequence diagram."""

    src: str
    dst: str
    label: str
    dashed: bool


@dataclass
class Phase:
    """A run of arrows drawn in one ``rect`` block."""

    name: str | None
    arrows: list[Arrow | str] = field(default_factory=list)


_ALIAS = {"initiator": "I", "responder": "R", "node": "N"}
_OPENS = ": opens a WebSocket connection"


def flow(transcript: Transcript, describe: Callable[[Frame], str] | Describer) -> list[Phase]:
    """The sequence diagram as phases of arrows: client frames ``role ->> node``, node frames
    ``node -->> role``; opens and closes as notes. A new phase starts where the description table's
    ``phases`` say so."""
    phases: list[Phase] = [Phase(None)]
    for event in transcript.events:
        if isinstance(event, Frame):
            start = describe.phase(event) if isinstance(describe, Describer) else None
            if start is not None and start != phases[-1].name:
                if all(isinstance(a, str) for a in phases[-1].arrows):  # only notes so far: they open it
                    phases[-1].name = start
                else:  # connections opened just before the phase starts belong to it
                    moved: list[Arrow | str] = []
                    while isinstance(phases[-1].arrows[-1], str) and phases[-1].arrows[-1].endswith(_OPENS):
                        moved.insert(0, phases[-1].arrows.pop())
                    phases.append(Phase(start, moved))
            label = arrow_label(event)
            if event.sender == "client":
                phases[-1].arrows.append(Arrow(_ALIAS[event.role], "N", label, False))
            else:
                phases[-1].arrows.append(Arrow("N", _ALIAS[event.role], label, True))
        elif isinstance(event, Open):
            phases[-1].arrows.append(f"Note over {_ALIAS[event.role]}{_OPENS}")
        elif isinstance(event, Close):
            code = f" ({event.code})" if event.code is not None else ""
            phases[-1].arrows.append(f"Note over {_ALIAS[event.role]}: closes the connection{code}")
        elif isinstance(event, Note):
            continue
    return [p for p in phases if p.arrows]


#: The most characters one Mermaid diagram of the flow may have. Mermaid's default ``maxTextSize`` is 50,000:
#: a page shows "Maximum text size in diagram exceeded" instead of a longer diagram, and a diagram cannot raise
#: it (a protected setting), so a longer flow is drawn as several diagrams.
MERMAID_PART_SIZE = 40_000
#: Characters of a diagram's opening lines (``sequenceDiagram`` and the participants), and of a phase's
#: ``rect``, ``note over`` and ``end`` lines besides its name.
_DIAGRAM_HEAD, _PHASE_LINES = 120, 60


def flow_parts(phases: list[Phase], limit: int = MERMAID_PART_SIZE) -> list[list[Phase]]:
    """The flow cut into diagrams of at most ``limit`` characters each (as the doc layout writes them; usually
    one diagram). Cuts fall between phases; a phase too long for a diagram of its own is cut between arrows,
    its later pieces named ``<name> (continued)``. Returns the diagrams, each a list of phases (``[[]]`` for
    none)."""
    parts: list[list[Phase]] = [[]]
    size = _DIAGRAM_HEAD
    for phase in phases:
        whole = _phase_size(phase)
        if parts[-1] and size + whole > limit and _DIAGRAM_HEAD + whole <= limit:
            parts.append([])
            size = _DIAGRAM_HEAD
        if size + whole <= limit:
            parts[-1].append(phase)
            size += whole
            continue
        piece = Phase(phase.name)  # too long for any diagram: fill this one, then the next ones
        parts[-1].append(piece)
        size += _phase_size(piece)
        for arrow in phase.arrows:
            line = _line_size(arrow)
            if piece.arrows and size + line > limit:
                piece = Phase(f"{phase.name} (continued)" if phase.name else None)
                parts.append([piece])
                size = _DIAGRAM_HEAD + _phase_size(piece)
            piece.arrows.append(arrow)
            size += line
    return parts


def _phase_size(phase: Phase) -> int:
    head = _PHASE_LINES + len(phase.name) if phase.name else 0
    return head + sum(_line_size(a) for a in phase.arrows)


def _line_size(arrow: Arrow | str) -> int:
    """Characters of the arrow's line in the diagram: indent, ``I->>N: `` and the label, newline."""
    return 5 + len(arrow) if isinstance(arrow, str) else 15 + len(arrow.label)


def arrow_label(frame: Frame) -> str:
    """The short label of a frame in the diagram: method (and info event), ``result``, or ``error``."""
    event = frame.info_event
    method = frame.method
    if event is not None:
        return f"{method}: {event}"
    if method:
        return method
    kind = frame.rpc_kind
    if kind == "error":
        err = frame.obj.get("error")
        if isinstance(err, dict) and "message" in err:
            return f"error: {err['message']}"
        return "error"
    if kind == "response":
        result = frame.obj.get("result")
        return f"result: {result}" if isinstance(result, str | int | bool) else "result"
    return "frame"
