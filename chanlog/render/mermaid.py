"""The flow picture: a Mermaid ``sequenceDiagram`` built from a transcript's frames, with escaped labels.

Client frames are drawn ``role ->> node``, node frames ``node -->> role``; error replies and
``channels.error`` as a cross arrow (``--x``) inside a red ``rect`` so they stand out; opens and closes as
notes; phases (from the description table) as blue ``rect`` blocks. With numbering on, every arrow shows the
number of its frame in the log part (``autonumber N`` is written wherever the numbers jump, e.g. past
hidden frames). A long flow is cut into several diagrams under Mermaid's size limit (:func:`flow_parts`).

Labels are escaped by :func:`label` for Mermaid 11's sequence grammar: a message's text runs to the end of
the line and may not hold ``;`` or ``#``; ``%%`` starts a directive (``%%{init: ...}%%``, applied wherever
it appears) or a comment; ``#name;`` is an entity code; ``<...>`` is HTML to Mermaid. Each of ``; # % < >``
is written as Mermaid's own entity code (``#59;``, ``#35;``, ``#37;``, ``#lt;``, ``#gt;``), so the reader
sees the original character; line breaks and other control characters become spaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chanlog.errors import RenderError
from chanlog.model import Close, Frame, Open
from chanlog.render.describe import arrow_label

if TYPE_CHECKING:
    from chanlog.render.document import DocEntry

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
_ENTITY = {";": "#59;", "#": "#35;", "%": "#37;", "<": "#lt;", ">": "#gt;"}
_SPECIAL = re.compile(r"[;#%<>]")


def label(text: object) -> str:
    """``text`` safe as the text of a Mermaid message, note or phase name: ``; # % < >`` as Mermaid
    entity codes, control characters (line breaks included) as spaces. Nothing can end the line, start a
    statement, a directive or a comment."""
    return _SPECIAL.sub(lambda m: _ENTITY[m[0]], _CONTROL.sub(" ", str(text)))


@dataclass
class Arrow:
    """One message of the sequence diagram."""

    src: str
    """Participant alias: ``I`` (initiator), ``N`` (node), ``R`` (responder)."""
    dst: str
    label: str
    """The message text, unescaped (escaped when the diagram is written)."""
    dashed: bool
    """A node frame (``-->>``) rather than a client frame (``->>``)."""
    number: int | None = None
    """The frame's number in the log part."""
    error: bool = False
    """An error reply or ``channels.error``: drawn as a cross arrow in a red block."""

    def lines(self) -> list[str]:
        """The diagram lines of this arrow (without the autonumber line)."""
        head = "--x" if self.error and self.dashed else "-x" if self.error else "-->>" if self.dashed else "->>"
        line = f"    {self.src}{head}{self.dst}: {label(self.label)}"
        if self.error:
            return ["    rect rgba(255, 0, 0, .2)", line, "    end"]
        return [line]


@dataclass
class Phase:
    """A run of arrows drawn in one ``rect`` block."""

    name: str | None
    arrows: list[Arrow | str] = field(default_factory=list)
    """Arrows, and notes as plain text (``Note over I: ...``; the text after ``: `` is escaped when written)."""


ALIAS = {"initiator": "I", "responder": "R", "node": "N"}
_OPENS = ": opens a WebSocket connection"


def flow(entries: Iterable[DocEntry], label_of: Callable[[DocEntry], str] | None = None) -> list[Phase]:
    """The sequence diagram as phases of arrows (a list of :func:`iter_flow`)."""
    return list(iter_flow(entries, label_of))


def iter_flow(entries: Iterable[DocEntry], label_of: Callable[[DocEntry], str] | None = None) -> Iterator[Phase]:
    """The sequence diagram as phases of arrows, from the document's entries (hidden ones left out).

    A new phase starts at an entry whose ``starts`` names one (see
    :func:`~chanlog.render.document.doc_entries`); connections opened just before a phase starts belong to
    it. ``label_of`` gives an arrow's text (default :func:`arrow_label`). A generator holding one phase at
    a time: each phase is given out once the next one starts (issue 17, inputs of any size)."""
    phases: list[Phase] = [Phase(None)]
    for item in _flow_items(entries, label_of):
        if isinstance(item, tuple):  # ("start", name): a frame starts a phase
            start = item[1]
            if start == phases[-1].name:
                continue
            if all(isinstance(a, str) for a in phases[-1].arrows):  # only notes so far: they open it
                phases[-1].name = start
                continue
            moved: list[Arrow | str] = []
            while (phases[-1].arrows and isinstance(phases[-1].arrows[-1], str)
                   and phases[-1].arrows[-1].endswith(_OPENS)):
                moved.insert(0, phases[-1].arrows.pop())
            phases.append(Phase(start, moved))
            done = phases.pop(0)
            if done.arrows:
                yield done
        else:
            phases[-1].arrows.append(item)
    yield from (p for p in phases if p.arrows)


def diagram(part: list[Phase], autonumber: bool = True) -> str:
    """The text of one ```` ```mermaid ```` block (ending in a newline): participants, then each phase as a
    ``rect`` with its name, its notes and arrows; with ``autonumber``, ``autonumber N`` before every arrow
    whose frame number does not follow the previous arrow's."""
    lines = ["sequenceDiagram", "    participant I as initiator", "    participant N as node",
             "    participant R as responder"]
    following: int | None = None
    for phase in part:
        if phase.name:
            lines += ["    rect rgba(0, 0, 255, .1)", f"    note over I,R: {label(phase.name)}"]
        for a in phase.arrows:
            if isinstance(a, str):
                head, _, text = a.partition(": ")
                lines.append(f"    {head}: {label(text)}")
                continue
            if autonumber and a.number is not None and a.number != following:
                lines.append(f"    autonumber {a.number}")
            following = a.number + 1 if a.number is not None else None
            lines += a.lines()
        if phase.name:
            lines.append("    end")
    return "\n".join(lines) + "\n"


#: The most characters one Mermaid diagram of the flow may have. Mermaid's default ``maxTextSize`` is 50,000:
#: a page shows "Maximum text size in diagram exceeded" instead of a longer diagram, and a diagram cannot raise
#: it (a protected setting), so a longer flow is drawn as several diagrams.
MERMAID_PART_SIZE = 40_000
#: The most characters of one diagram on an HTML page. A page draws each diagram when it scrolls into view, and
#: Mermaid 11 in Chromium takes about 3 s for a diagram of MERMAID_PART_SIZE characters (~700 arrows; measured
#: on a generated 2,000-frame session), so a long page's first picture would wait that long; parts of 12,000
#: characters (~200 arrows, about a second) open at once, and the rest draw as the reader scrolls.
HTML_PART_SIZE = 12_000
#: Characters of a diagram's opening lines (``sequenceDiagram`` and the participants), and of a phase's
#: ``rect``, ``note over`` and ``end`` lines besides its name.
_DIAGRAM_HEAD, _PHASE_LINES = 120, 60


def flow_parts(phases: list[Phase], limit: int = MERMAID_PART_SIZE) -> list[list[Phase]]:
    """The flow cut into diagrams of at most ``limit`` characters each (as :func:`diagram` writes them;
    usually one diagram). Cuts fall between phases; a phase too long for a diagram of its own is cut between
    arrows, its later pieces named ``<name> (continued)``. Returns the diagrams, each a list of phases
    (``[[]]`` for none)."""
    return list(iter_flow_parts(phases, limit))


def iter_flow_parts(phases: Iterable[Phase], limit: int = MERMAID_PART_SIZE) -> Iterator[list[Phase]]:
    """:func:`flow_parts` as a generator: each diagram is given out when full, so only one is held."""
    part: list[Phase] = []
    size = _DIAGRAM_HEAD
    for phase in phases:
        whole = _phase_size(phase)
        if part and size + whole > limit and _DIAGRAM_HEAD + whole <= limit:
            yield part
            part = []
            size = _DIAGRAM_HEAD
        if size + whole <= limit:
            part.append(phase)
            size += whole
            continue
        piece = Phase(phase.name)  # too long for any diagram: fill this one, then the next ones
        part.append(piece)
        size += _phase_size(piece)
        for arrow in phase.arrows:
            line = _line_size(arrow)
            if piece.arrows and size + line > limit:
                piece = Phase(f"{phase.name} (continued)" if phase.name else None)
                yield part
                part = [piece]
                size = _DIAGRAM_HEAD + _phase_size(piece)
            piece.arrows.append(arrow)
            size += line
    yield part


def _phase_size(phase: Phase) -> int:
    head = _PHASE_LINES + len(label(phase.name)) if phase.name else 0
    return head + sum(_line_size(a) for a in phase.arrows)


def _line_size(arrow: Arrow | str) -> int:
    """Characters of the arrow's lines in the diagram (an ``autonumber`` line counted for every arrow)."""
    if isinstance(arrow, str):
        return 5 + len(label(arrow))
    return 25 + sum(len(line) + 1 for line in arrow.lines())


def _flow_items(entries: Iterable[DocEntry], label_of: Callable[[DocEntry], str] | None) -> Iterator[Any]:
    """What :func:`iter_flow` reads from each entry: ``("start", name)`` where a frame starts a phase, then
    the arrow or note (hidden entries left out)."""
    for entry in entries:
        event = entry.event
        if entry.hidden:
            continue
        if event.role not in ALIAS or event.role == "node":
            raise RenderError(f"unknown role {event.role!r} (expected initiator or responder)",
                              f"frame {entry.number}" if entry.number is not None else None)
        if isinstance(event, Frame):
            if entry.starts is not None:
                yield ("start", entry.starts)
            text = label_of(entry) if label_of is not None else arrow_label(event)
            if event.sender == "client":
                yield Arrow(ALIAS[event.role], "N", text, False, entry.number, entry.error)
            else:
                yield Arrow("N", ALIAS[event.role], text, True, entry.number, entry.error)
        elif isinstance(event, Open):
            yield f"Note over {ALIAS[event.role]}{_OPENS}"
        elif isinstance(event, Close):
            code = f" ({event.code})" if event.code is not None else ""
            yield f"Note over {ALIAS[event.role]}: closes the connection{code}"


class _Parts:
    """The state of :func:`iter_flow_parts`, fed a phase at a time or, for a phase too long for any diagram,
    an arrow at a time; finished diagrams collect in ``done``."""

    def __init__(self, limit: int) -> None:
        self.limit, self.part, self.size, self.done = limit, [], _DIAGRAM_HEAD, []
        self.piece: Phase | None = None

    def add_phase(self, phase: Phase) -> None:
        whole = _phase_size(phase)
        if self.part and self.size + whole > self.limit and _DIAGRAM_HEAD + whole <= self.limit:
            self.done.append(self.part)
            self.part, self.size = [], _DIAGRAM_HEAD
        if self.size + whole <= self.limit:
            self.part.append(phase)
            self.size += whole
            return
        self.begin_long(phase.name)
        for arrow in phase.arrows:
            self.long_arrow(arrow)

    def begin_long(self, name: str | None) -> None:
        self.piece = Phase(name)  # too long for any diagram: fill this one, then the next ones
        self.name = name
        self.part.append(self.piece)
        self.size += _phase_size(self.piece)

    def long_arrow(self, arrow: Arrow | str) -> None:
        line = _line_size(arrow)
        piece = self.piece
        assert piece is not None
        if piece.arrows and self.size + line > self.limit:
            piece = self.piece = Phase(f"{self.name} (continued)" if self.name else None)
            self.done.append(self.part)
            self.part = [piece]
            self.size = _DIAGRAM_HEAD + _phase_size(piece)
        piece.arrows.append(arrow)
        self.size += line


def iter_diagrams(entries: Iterable[DocEntry], label_of: Callable[[DocEntry], str] | None = None,
                  limit: int = MERMAID_PART_SIZE) -> Iterator[list[Phase]]:
    """``flow_parts(flow(entries, label_of), limit)`` one diagram at a time, in memory bounded by ``limit``
    (issue 17, inputs of any size): a phase is held whole only while it could still fit one diagram; once
    it cannot, its arrows go into diagrams as they come (the connections opened at its end are held back,
    as the next phase may take them)."""
    parts = _Parts(limit)
    current = Phase(None)
    size = _phase_size(current)  # of current without its trailing opens
    trailing: list[Arrow | str] = []  # notes of opens at the end of current, not yet in size
    has_arrow = long = False
    for item in _flow_items(entries, label_of):
        if isinstance(item, tuple):
            start = item[1]
            if start == current.name:
                continue
            if not has_arrow:  # only notes so far: they open it
                current.name = start
                size = _phase_size(current) - sum(_line_size(a) for a in trailing)
                continue
            if not long:  # (a long phase is in the diagrams already)
                del current.arrows[len(current.arrows) - len(trailing):]
                if current.arrows:
                    parts.add_phase(current)
            current = Phase(start, trailing)
            trailing = []
            size = _phase_size(current) - sum(_line_size(a) for a in current.arrows)
            trailing = list(current.arrows)
            has_arrow = long = False
        elif long:
            if isinstance(item, str) and item.endswith(_OPENS):
                trailing.append(item)
            else:
                for note in trailing:
                    parts.long_arrow(note)
                trailing = []
                parts.long_arrow(item)
        else:
            current.arrows.append(item)
            if isinstance(item, str) and item.endswith(_OPENS):
                trailing.append(item)
            else:
                size += sum(_line_size(a) for a in trailing) + _line_size(item)
                trailing = []
                has_arrow = has_arrow or not isinstance(item, str)
                if has_arrow and _DIAGRAM_HEAD + size > limit:  # it fits no diagram: stream its arrows
                    parts.begin_long(current.name)
                    for arrow in current.arrows:
                        parts.long_arrow(arrow)
                    current.arrows = []
                    long = True
        yield from parts.done
        parts.done.clear()
    if long:
        for note in trailing:
            parts.long_arrow(note)
    elif current.arrows:
        parts.add_phase(current)
    parts.done.append(parts.part)
    yield from parts.done
