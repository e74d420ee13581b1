"""HTML helpers for the ``html`` layout (autoescape is on in its environment; these return ``Markup``
only for markup they build themselves, with every value from a transcript escaped)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from markupsafe import Markup, escape

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


@functools.lru_cache(maxsize=1024)
def describe_html(sentence: str) -> Markup:
    """A description (Markdown from the description table: text and code spans) as HTML: everything
    escaped, code spans as ``<code>``. Remembers the last 1,024 sentences (a session repeats a few)."""
    out: list[str] = []
    pos = 0
    for match in _CODE_SPAN.finditer(sentence):
        out.append(str(escape(sentence[pos:match.start()])))
        out.append(f"<code>{escape(match[2].strip(' ') if match[2].strip(' ') else match[2])}</code>")
        pos = match.end()
    out.append(str(escape(sentence[pos:])))
    return Markup("".join(out))


def contents(entries: list) -> list[tuple[str | None, list[int]]]:
    """The table of contents by phase: ``(phase name or None, frame numbers)`` in order of first
    appearance (a phase seen twice, e.g. after a reconnect, lists all its frames)."""
    by_phase: dict[str | None, list[int]] = {}
    for entry in entries:
        if entry.number is not None:
            by_phase.setdefault(entry.phase, []).append(entry.number)
    return list(by_phase.items())


#: Error frames the session page lists one by one in its "Errors" section; more are counted. A node answers an
#: error per bad request, so a session has as many as its client sent bad requests (the corpus: up to 702 in one
#: session); the cap keeps a hostile transcript of only errors from holding one entry per frame (worst case:
#: 1,000 short lines on the page).
MAX_ERROR_LIST = 1000


@dataclass
class ErrorLine:
    """One error the node sent, for the session page's "Errors" list."""

    number: int
    """The frame's number (the page's anchor ``frame-N``)."""
    label: str
    """The arrow's text: ``error 3 Rejected: 1008 Not a number`` (unescaped)."""
    description: str
    """The frame's description (Markdown: text and code spans)."""


@dataclass
class Outline:
    """What the session page shows before its frames, gathered in one pass over the entries."""

    phases: list[tuple[str | None, list[int]]] = field(default_factory=list)
    """:func:`contents`: ``(phase name or None, frame numbers)``."""
    errors: list[ErrorLine] = field(default_factory=list)
    """The first :data:`MAX_ERROR_LIST` errors the node sent, in order."""
    error_count: int = 0
    """Every error the node sent (listed or not)."""


def outline(entries: Iterable) -> Outline:
    """The contents by phase (:func:`contents`) and the errors the node sent (error replies and
    ``channels.error``, at most :data:`MAX_ERROR_LIST` listed), in one pass over ``entries``."""
    from chanlog.model import Frame
    from chanlog.render.describe import arrow_label

    by_phase: dict[str | None, list[int]] = {}
    out = Outline()
    for entry in entries:
        if entry.number is None:
            continue
        by_phase.setdefault(entry.phase, []).append(entry.number)
        frame = entry.event
        if entry.error and isinstance(frame, Frame) and frame.sender == "node":
            out.error_count += 1
            if len(out.errors) < MAX_ERROR_LIST:
                out.errors.append(ErrorLine(entry.number, arrow_label(frame), entry.description or ""))
    out.phases = list(by_phase.items())
    return out


def frame_links(numbers: list[int]) -> Markup:
    """Links to frames ``numbers`` (``<a href="#frame-3">3</a>``, space separated) for the table of contents;
    frame numbers are integers the renderer counted, so nothing needs escaping."""
    return Markup(" ".join(f'<a href="#{anchor(int(n))}">{int(n)}</a>' for n in numbers))


def anchor(number: int | None) -> str:
    """The element id of frame ``number`` (``frame-12``)."""
    return f"frame-{number}"


@functools.lru_cache(maxsize=2048)
def fields_html(blob: str) -> Markup:
    """The decoded fields of an encoded object (:func:`~chanlog.render.document.decoded_fields`) as a tree
    of nested ``<ul class="fields">`` lists, every text escaped; lines that are errors get ``class="error"``."""
    from chanlog.render.document import decoded_fields

    out: list[str] = ['<ul class="fields">']
    depth = 0
    for line in decoded_fields(blob):
        while depth < line.depth:
            out.append("<ul>")
            depth += 1
        while depth > line.depth:
            out.append("</ul>")
            depth -= 1
        cls = ' class="error"' if line.error else ""
        strong = f"<strong>{escape(line.strong)}</strong>" if line.strong is not None else ""
        out.append(f"<li{cls}>{escape(line.text)}{strong}</li>")
    out += ["</ul>"] * depth + ["</ul>"]
    return Markup("".join(out))


FILTERS = {"describe_html": describe_html, "anchor": anchor, "frame_links": frame_links, "fields_html": fields_html,
           "contents": contents, "outline": outline}
