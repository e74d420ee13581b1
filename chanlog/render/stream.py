"""Rendering a transcript file in bounded memory (issue 17, "Inputs of any size").

:func:`render_stream` renders a :class:`~chanlog.transcript.StreamedTranscript` with the same templates
and the same bytes as :func:`chanlog.render.render`, holding one event (and one Mermaid diagram) at a
time instead of the whole transcript:

``node`` layout
    one pass: the template's ``transcript.events`` is the file read event by event.
``doc`` and ``html`` layouts
    a first pass gathers what the document's head needs (frame count, phases, connections, channel id,
    channel parameters) and cuts the flow into Mermaid diagrams, each pickled into a temporary file as
    soon as it is full; a second pass (a third for HTML's table of contents) gives the template its
    entries one at a time. The output is produced piece by piece (Jinja2's ``generate``).

Selecting frames (``--frames``) or a phase (``--phase``) needs the whole flow first: :func:`streamable`
says when a render can stream; the caller loads the transcript whole otherwise.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from chanlog.errors import RenderError
from chanlog.model import Connection, Event, Frame, Open, Transcript, is_channel_id
from chanlog.render.describe import Describer, load_descriptions
from chanlog.render.document import DocEntry, Options, iter_doc_entries, label_of
from chanlog.render.mermaid import HTML_PART_SIZE, MERMAID_PART_SIZE, Phase, iter_diagrams
from chanlog.sources.nodelog import HEADING_WORDS, LogStream

#: Largest input file (bytes) that ``chanlog render FILE`` loads whole, rendering it exactly as a site renders
#: each page (one parse, one pass, the same speed); a larger one streams (:class:`StreamedLog`,
#: :func:`~chanlog.transcript.stream`). Whole, a page's peak memory is about 20x its input (measured: the
#: 1.8 MB legacy contract log of aeternity/protocol peaks 30 MB above the interpreter), so at most ~40 MB
#: here; streamed, it is bounded by the largest event. 2 MiB is above every node log the aeternity/protocol
#: examples hold (the largest is 1.8 MB), so real logs render at a folder's speed.
WHOLE_MAX = 2 << 20


def streamable(layout: str, options: Options | None) -> bool:
    """Whether :func:`render_stream` can render ``layout`` with ``options`` (no frame range, no phase)."""
    return layout == "node" or options is None or (options.frames is None and options.phase is None)


class StreamedLog:
    """A node Markdown log as :func:`render_stream` reads a transcript file (the interface of
    :class:`~chanlog.transcript.StreamedTranscript`: ``head``, ``events()``, ``size``, ``position()``), parsed
    straight from the Markdown on each walk (:class:`~chanlog.sources.nodelog.LogStream`), with no YAML
    written or read: a first walk finds the head (era and protocol are known only at the log's end), each
    :meth:`events` walks the log again. Memory is bounded by the largest entry. Raises
    :class:`~chanlog.errors.LogImportError` naming ``file:line``, as :func:`~chanlog.sources.nodelog.import_log`."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path, self.name = Path(path), name or str(path)
        self.size = self.path.stat().st_size
        self._read = 0
        log = LogStream(self._lines, self.name)
        for _ in log.events():
            pass
        self.head = log.transcript()

    def _lines(self) -> Iterator[str]:
        """The log's lines without line ends, as :func:`~chanlog.sources.nodelog.file_lines` reads them,
        counting what is read (characters, close to bytes: a progress bar's measure)."""
        from chanlog.sources.nodelog import file_lines

        self._read = 0
        for line in file_lines(self.path)():
            self._read += len(line) + 1
            yield line

    def position(self) -> int:
        """About how many bytes of the log the current walk has read (for a progress bar)."""
        return min(self._read, self.size)

    def events(self) -> Iterator[Event]:
        """Every event of the log in order (:meth:`LogStream.events`)."""
        return LogStream(self._lines, self.name).events()


class _Again:
    """A re-iterable view: each ``iter()`` starts a new walk (``walk()``); ``len()`` is known beforehand."""

    def __init__(self, walk: Callable[[], Iterator[Any]], length: int | None) -> None:
        self._walk, self._length = walk, length

    def __iter__(self) -> Iterator[Any]:
        return self._walk()

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("the number of events is not known before they are read (node layout, streamed)")
        return self._length

    def __bool__(self) -> bool:
        return self._length is None or self._length > 0


class StreamedView:
    """What templates see as ``transcript`` when rendering a stream: the head's ``name``, ``protocol`` and
    ``source``, ``events`` read again from the file on each loop, and ``connections()``, ``channel_id``,
    ``params`` and ``frames()`` gathered in the first pass (a connection lists only its first event)."""

    def __init__(self, streamed: Any) -> None:
        head: Transcript = streamed.head
        self.name, self.protocol, self.source = head.name, head.protocol, head.source
        self._streamed = streamed
        self.events = _Again(streamed.events, None)
        self.channel_id: str | None = None
        self._first: dict[int, Event] = {}
        self._opens: dict[str, Open] = {}
        self.event_count = self.frame_count = 0

    def note(self, event: Event) -> None:
        """Take in one event of the first pass."""
        self.event_count += 1
        self._first.setdefault(event.conn, event)
        if isinstance(event, Open):
            self._opens.setdefault(event.role, event)
        elif isinstance(event, Frame):
            self.frame_count += 1
            if self.channel_id is None and is_channel_id(event.channel_id):
                self.channel_id = event.channel_id

    def connections(self) -> list[Connection]:
        return [Connection(c, e.role, [e]) for c, e in sorted(self._first.items())]

    @property
    def params(self) -> dict[str, str]:
        return Transcript(events=list(self._opens.values())).params

    def frames(self) -> Iterator[tuple[int, Frame]]:
        n = 0
        for event in self._streamed.events():
            if isinstance(event, Frame):
                n += 1
                yield n, event


class _Diagrams:
    """The flow's Mermaid diagrams pickled one after another into a temporary file; iterating unpickles
    them one at a time."""

    def __init__(self, parts: Iterable[list[Phase]]) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(prefix="chanlog-diagrams-")
        self._count = 0
        for part in parts:
            pickle.dump(part, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._count += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[list[Phase]]:
        self._file.seek(0)
        for _ in range(self._count):
            yield pickle.load(self._file)  # our own temporary file, written above

    def close(self) -> None:
        self._file.close()


def render_stream(streamed: Any, layout: str = "doc", template_dir: str | Path | None = None,
                  descriptions: str | Path | None = None, options: Options | None = None,
                  context: dict[str, Any] | None = None, progress: Any = None) -> Iterator[str]:
    """The pieces of :func:`chanlog.render.render`'s text for a
    :class:`~chanlog.transcript.StreamedTranscript`, in memory bounded by the largest event and diagram.
    ``progress`` (a tqdm-like bar, optional) gets ``update(bytes)`` during the first pass. Raises
    :class:`RenderError` as :func:`~chanlog.render.render` does (also when not :func:`streamable`) and
    :class:`~chanlog.errors.TranscriptError` for a bad event (naming ``file:line``)."""
    from chanlog.render import DEFAULT_MERMAID_JS, LAYOUTS, environment, template_errors

    if layout not in LAYOUTS:
        raise RenderError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    if not streamable(layout, options):
        raise RenderError("--frames and --phase need the whole transcript: render it without streaming")
    view = StreamedView(streamed)
    era = view.source.get("era", "current")
    values: dict[str, Any] = {"transcript": view, "era": era if era in HEADING_WORDS else "current"}
    diagrams = None
    if layout != "node":
        options = options or Options()
        describe = Describer(load_descriptions(descriptions, template_dir), view.protocol)
        phases: dict[str, None] = {}
        entry_count = 0

        def first_pass() -> Iterator[DocEntry]:
            nonlocal entry_count
            read = 0
            for entry in iter_doc_entries(_noted(streamed.events(), view), describe, options.hide):
                entry_count += 1
                if entry.phase:
                    phases.setdefault(entry.phase)
                if progress is not None and entry_count % 256 == 0:
                    now = streamed.position()
                    progress.update(now - read)
                    read = now
                yield entry
            if progress is not None:
                progress.update(max(0, streamed.size - read))

        diagrams = _Diagrams(iter_diagrams(first_pass(), lambda e: label_of(e, options),
                                           HTML_PART_SIZE if layout == "html" else MERMAID_PART_SIZE))
        view.events = _Again(streamed.events, view.event_count)
        values.update(describe=describe, params=view.params, options=options, diagrams=diagrams,
                      entries=_Again(lambda: iter_doc_entries(streamed.events(), describe, options.hide),
                                     entry_count),
                      phases=list(phases), frame_count=view.frame_count, mermaid_js=DEFAULT_MERMAID_JS,
                      index_url=None)
    values.update(context or {})
    env = environment(str(template_dir) if template_dir is not None else None, layout == "html")
    try:
        with template_errors(LAYOUTS[layout]):
            template = env.get_template(LAYOUTS[layout])
            yield from template.generate(values)
    finally:
        if diagrams is not None:
            diagrams.close()


def _noted(events: Iterable[Event], view: StreamedView) -> Iterator[Event]:
    for event in events:
        view.note(event)
        yield event
