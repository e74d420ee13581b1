"""Render a transcript as a document: Markdown (two layouts) or a standalone HTML page, with Jinja2.

Layouts, each a packaged template under ``chanlog/templates``:

``node``
    the node's own channel-log layout (``aeternity/protocol`` ``node/api/examples/channels``), byte for
    byte: a log imported with :mod:`chanlog.sources.nodelog` renders back to the original file, and any
    transcript rendered in it imports back to the same frames (text that is not JSON in a ``text`` fence,
    binary frames in a ``binary`` one, fences longer than any run of backticks inside).
``doc``
    a document for people: title, channel parameters, a Mermaid ``sequenceDiagram`` of the flow with
    phases as ``rect`` blocks and numbered arrows, then the frame-by-frame log with a one-line description
    of every event, method and error code (from ``descriptions.yaml``, overridable) and the decoded fields
    of every encoded object (``signed_tx``, ``tx``, ``state``, ...).
``html``
    the doc layout as a standalone HTML page (``session.html.j2`` extending ``base.html.j2``), autoescaped;
    Mermaid draws the diagram in the browser.

Both ``doc`` and ``html`` take :class:`~chanlog.render.document.Options` (hide kinds of frames from the
diagram, a range of frames, one phase, time offsets, numbering).

Two environments (Markdown without autoescape, HTML with it), each a ``ChoiceLoader`` with the user's
template directory first, then the packaged templates, also reachable as ``default:<name>`` so that a user
template can ``{% extends "default:doc.md.j2" %}``; ``StrictUndefined``. Every value from a transcript is
escaped by a filter for where it goes (:mod:`chanlog.render.markdown`, :mod:`chanlog.render.mermaid`,
Jinja2's HTML autoescape).

The package: :mod:`~chanlog.render.describe` (descriptions), :mod:`~chanlog.render.document` (entries,
selection, decoded fields), :mod:`~chanlog.render.mermaid` (the diagram and its escaping),
:mod:`~chanlog.render.markdown` (Markdown escaping), :mod:`~chanlog.render.html` (HTML helpers),
:mod:`~chanlog.render.site` (many sessions and an index).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from chanlog.errors import RenderError
from chanlog.model import MAX_NUMBER_DIGITS, Event, Frame, Transcript
from chanlog.render import markdown as md
from chanlog.render.describe import DESCRIPTIONS_FILE, Describer, load_descriptions
from chanlog.render.document import (
    HIDE_KINDS,
    DocEntry,
    FieldLine,
    Options,
    decoded_fields,
    doc_entries,
    label_of,
)
from chanlog.render.mermaid import (
    HTML_PART_SIZE,
    MERMAID_PART_SIZE,
    Arrow,
    Phase,
    arrow_label,
    diagram,
    flow,
    flow_parts,
)
from chanlog.sources.nodelog import HEADING_WORDS, STAMP, fence

__all__ = ["DESCRIPTIONS_FILE", "HIDE_KINDS", "LAYOUTS", "MERMAID_PART_SIZE", "Arrow", "Describer", "DocEntry",
           "Options", "Phase", "arrow_label", "doc_entries", "environment", "flow", "flow_parts",
           "load_descriptions", "render"]

LAYOUTS = {"node": "node.md.j2", "doc": "doc.md.j2", "html": "session.html.j2"}


def render(transcript: Transcript, layout: str = "doc", template_dir: str | Path | None = None,
           descriptions: str | Path | None = None, options: Options | None = None,
           context: dict[str, Any] | None = None) -> str:
    """Render ``transcript`` in ``layout`` (``node``, ``doc`` or ``html``) and return the text.

    ``template_dir`` is searched before the packaged templates (and may hold ``descriptions.yaml``);
    ``descriptions`` is a YAML file whose sections override the packaged ones; ``options`` select frames and
    shape the diagram (doc and html; the node layout always has every event). ``context`` adds template
    variables (the site passes ``mermaid_js`` and ``index_url`` to HTML pages). Raises :class:`RenderError`
    for an unknown layout, a missing or broken template or descriptions file, a template error (naming the
    template and line), or a phase that the flow does not have.
    """
    return render_values(prepare(transcript, layout, template_dir, descriptions, options, context))


def prepare(transcript: Transcript, layout: str = "doc", template_dir: str | Path | None = None,
            descriptions: str | Path | None = None, options: Options | None = None,
            context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template variables of :func:`render` (``entries``, ``flow``, ``diagrams``, ``phases``, ...), with
    ``_layout`` and ``_template_dir`` for :func:`render_values`. Errors as :func:`render`."""
    if layout not in LAYOUTS:
        raise RenderError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    era = transcript.source.get("era", "current")
    values: dict[str, Any] = {"transcript": transcript, "era": era if era in HEADING_WORDS else "current",
                              "_layout": layout, "_template_dir": template_dir}
    if layout != "node":
        options = options or Options()
        describe = Describer(load_descriptions(descriptions, template_dir), transcript.protocol)
        entries = doc_entries(transcript, describe, options)
        values.update(describe=describe, params=transcript.params, entries=entries, options=options,
                      flow=flow(entries, lambda e: label_of(e, options)))
        values["diagrams"] = flow_parts(values["flow"], HTML_PART_SIZE if layout == "html" else MERMAID_PART_SIZE)
        values["phases"] = list(dict.fromkeys(e.phase for e in entries if e.phase))
        values["frame_count"] = sum(1 for e in entries if e.number is not None)
        values["mermaid_js"] = DEFAULT_MERMAID_JS
        values["index_url"] = None
    values.update(context or {})
    return values


def render_values(values: dict[str, Any]) -> str:
    """Render the variables made by :func:`prepare` with their layout's template."""
    layout, template_dir = values["_layout"], values["_template_dir"]
    env = environment(str(template_dir) if template_dir is not None else None, layout == "html")
    with template_errors(LAYOUTS[layout]):
        return env.get_template(LAYOUTS[layout]).render(values)


@contextlib.contextmanager
def template_errors(name: str) -> Iterator[None]:
    """Turn what a template raises while it loads or renders into one :class:`RenderError`: syntax errors
    and failures (a user template dividing by zero, an undefined name) name ``template:line``; ``name`` (the
    template's file name) when no template frame is found."""
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(f"template syntax: {exc.message}", f"{exc.filename or exc.name}:{exc.lineno}") from None
    except jinja2.TemplateNotFound as exc:
        raise RenderError(f"template not found: {exc.name}") from None
    except (jinja2.UndefinedError, TypeError, ValueError, AttributeError, LookupError, ArithmeticError) as exc:
        where = template_frame(exc)
        raise RenderError(f"template failed: {type(exc).__name__}: {exc}",
                          f"{where[0]}:{where[1]}" if where else name) from None


def template_frame(exc: BaseException) -> tuple[str, int] | None:
    """``(template file, line)`` of the innermost traceback frame of ``exc`` that runs template code (jinja2
    maps template frames to the template's own file and line), or ``None``."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".j2", ".jinja", ".jinja2", ".md", ".html")) or "<template>" in filename:
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


INDEXES = {"md": "index.md.j2", "html": "index.html.j2"}


def render_index(summaries: list[Any], fmt: str = "md", template_dir: str | Path | None = None,
                 mermaid_js: str | None = None, assets: str | None = None) -> str:
    """The index page of a site: a table of every session (:class:`~chanlog.render.site.Summary`) linked to
    its page, and the inputs that did not render. ``fmt`` is ``md`` or ``html``; ``assets`` is the folder
    (relative to the index) holding the HTML index's script and style
    (:func:`~chanlog.render.site.static_assets`; without it the table is static). Raises
    :class:`RenderError` for a template error."""
    env = environment(str(template_dir) if template_dir is not None else None, fmt == "html")
    with template_errors(INDEXES[fmt]):
        return env.get_template(INDEXES[fmt]).render(
            sessions=[s for s in summaries if s.failure is None], failures=[s for s in summaries if s.failure],
            mermaid_js=mermaid_js or DEFAULT_MERMAID_JS, index_url=None, assets=assets)


#: Where HTML pages load Mermaid from unless told otherwise (``--mermaid-js``): the version the tests pin.
DEFAULT_MERMAID_JS = "https://cdn.jsdelivr.net/npm/mermaid@11.17.2/dist/mermaid.min.js"


@functools.lru_cache(maxsize=8)
def environment(template_dir: str | None = None, html: bool = False) -> jinja2.Environment:
    """The Jinja2 environment: user templates first, packaged ones after and as ``default:``, with
    chanlog's filters registered. ``html`` turns autoescape on (and adds the HTML filters). Raises
    :class:`RenderError` when ``template_dir`` is not a directory."""
    packaged = jinja2.FileSystemLoader(str(resources.files("chanlog") / "templates"))
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        if not Path(template_dir).is_dir():
            raise RenderError(f"template directory not found: {template_dir}")
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders += [jinja2.PrefixLoader({"default": packaged}, delimiter=":"), packaged]
    env = jinja2.Environment(loader=jinja2.ChoiceLoader(loaders), undefined=jinja2.StrictUndefined,
                             autoescape=html, auto_reload=False, keep_trailing_newline=True, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(heading=heading, frame_text=frame_text, frame_block=frame_block, fence=fence,
                       quote=md.quote, md=md.text, code=md.code, cell=lambda v: md.code(v, table=True),
                       mermaid=mermaid_label, diagram=diagram, aettos=aettos, amount=amount, decoded=decoded_markdown,
                       fields=decoded_fields, arrow=arrow_label)
    if html:
        from chanlog.render import html as html_filters

        env.filters.update(html_filters.FILTERS)
    return env


# -- filters ----------------------------------------------------------------------------------------


def heading(event: Event, era: str = "current") -> str:
    """The node-log heading of ``event`` without ``#### ``: ``initiator <--- node``, with
    `` (stamp)`` when the event has a stamp of the node's shape (another one cannot be written there);
    the words follow ``era`` (``current``, ``stamped``, ``2018``)."""
    words = HEADING_WORDS.get(era, HEADING_WORDS["current"])
    key = event.sender if isinstance(event, Frame) else event.KIND
    role = event.role if event.role in ("initiator", "responder") else md.text(event.role)
    text = role + words.get(key, f" {md.text(key)}")
    return f"{text} ({event.stamp})" if event.stamp and STAMP.match(event.stamp) else text


def frame_text(frame: Frame) -> str:
    """A frame's body as the node's logs show it: JSON with ``indent=2``; verbatim text; binary as
    ``<binary: N bytes, base64 ...>``."""
    if frame.binary is not None:
        return f"<binary: {len(frame.binary)} bytes, base64 {frame.json_text()}>"
    return frame.json_text("pretty")


def frame_lang(frame: Frame) -> str:
    """The info string of a frame's fence: ``javascript`` (JSON, or JSON text kept verbatim), ``text``
    (not JSON), ``binary`` (base64 of the bytes)."""
    if frame.binary is not None:
        return "binary"
    if frame.text is None:
        return "javascript"
    try:
        parsed = json.loads(frame.text)
    except (ValueError, RecursionError):
        return "text"
    try:
        pretty = json.dumps(parsed, indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return "text"
    return "text" if pretty == frame.text else "javascript"


def frame_block(frame: Frame) -> str:
    """A frame as a fenced block that the importer reads back to the same frame (:func:`frame_lang`)."""
    lang = frame_lang(frame)
    body = base64.b64encode(frame.binary).decode("ascii") if lang == "binary" else frame.json_text("pretty")
    return fence(body, lang)


def mermaid_label(text: object) -> str:
    """Text safe inside a Mermaid message (:func:`chanlog.render.mermaid.label`)."""
    from chanlog.render.mermaid import label

    return label(text)


def aettos(value: Any) -> str:
    """An amount in aettos with thousands separators: ``70000000000000`` -> ``70,000,000,000,000``."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


#: An amount as a channel's URL parameters carry it: decimal digits only (``int()`` would also take ``_``,
#: signs, blanks and other scripts' digits), at most :data:`~chanlog.model.MAX_NUMBER_DIGITS`.
_AMOUNT = re.compile(f"[0-9]{{1,{MAX_NUMBER_DIGITS}}}")


def amount(value: Any) -> str:
    """A channel parameter's amount for people, its unit once (:func:`chanlog.codec.transactions.amount_text`):
    ``"70000000000000"`` -> ``70,000,000,000,000 aettos``; a value that is no decimal number as it is."""
    from chanlog.codec.transactions import amount_text

    text = value if isinstance(value, str) else str(value)
    return amount_text(int(text)) if _AMOUNT.fullmatch(text) else text


def decoded_markdown(blob: str) -> str:
    """The decoded fields of an encoded object as an escaped Markdown list (from
    :func:`~chanlog.render.document.decoded_fields`), or a quote when it cannot be decoded. A contract value
    decoded in context (:class:`chanlog.codec.calls.DecodedText`, issue 13) brings its own Markdown."""
    if hasattr(blob, "markdown"):
        return blob.markdown
    return _decoded_markdown(str(blob))


@functools.lru_cache(maxsize=2048)
def _decoded_markdown(blob: str) -> str:
    lines = decoded_fields(blob)
    if lines and lines[0].depth == 0 and lines[0].error and lines[0].strong is None:
        return "\n".join(md.quote(line.text) for line in lines) + "\n"
    return "".join(_field_markdown(line) for line in lines)


def _field_markdown(line: FieldLine) -> str:
    strong = f"**{md.text(line.strong)}**" if line.strong is not None else ""
    return f"{'  ' * line.depth}- {md.text(line.text)}{strong}\n"


