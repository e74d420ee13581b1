"""Transcript files: YAML load and dump, format versions, errors that name ``file:line``.

Format 1 (see the README, "Transcript format"): a mapping with ``chanlog: 1``, ``name``, ``protocol``,
optional ``source`` and ``events``. Loading is safe-only and JSON-typed (:class:`JSONTypedLoader`, on
libyaml's ``CSafeLoader`` when available): no aliases, no tags, no dates, numbers and nesting bounded.
Older formats are upgraded through :data:`UPGRADES`, a ``{version: converter}`` table in the manner of
mitmproxy's ``io/compat.py``; only version 1 exists so far.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from chanlog.errors import ChanlogError, TranscriptError
from chanlog.model import MAX_JSON_DEPTH, MAX_NUMBER_DIGITS, Event, Transcript

try:  # libyaml when present; the pure-Python classes otherwise
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the build of PyYAML
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

FORMAT = Transcript.FORMAT

#: Deepest nesting of YAML sequences and mappings in a transcript: a frame's data
#: (:data:`~chanlog.model.MAX_JSON_DEPTH`) plus the transcript's own levels (document, events, event, data).
MAX_YAML_DEPTH = MAX_JSON_DEPTH + 4
_JSON_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str", "seq", "map")}
_NOT_JSON_RESOLVED = {f"tag:yaml.org,2002:{name}" for name in ("timestamp", "merge", "value")}


class JSONTypedLoader(_Loader):
    """A safe YAML loader for untrusted files whose values are JSON types only (what frames hold).

    On top of PyYAML's safe loader (libyaml's ``CSafeLoader`` when built in): an alias (``*name``) is
    refused, so a few hundred bytes of nested anchors (a "billion laughs" bomb) cannot expand into an
    enormous document; every tag but null, bool, int, float, str, seq and map is refused (``!!binary``,
    ``!!set``, ``!!omap``, ``!!timestamp``, application tags); unquoted dates stay strings and ``<<`` is a
    plain key; nesting deeper than :data:`MAX_YAML_DEPTH` and integers of more than
    :data:`~chanlog.model.MAX_NUMBER_DIGITS` digits are refused, and so are ``.nan``/``.inf`` (not JSON).
    Every refusal is a ``yaml.constructor.ConstructorError`` with the line of the offending node. The
    checks walk the composed node graph once, iteratively: linear in the document.
    """

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _NOT_JSON_RESOLVED]
        for first, resolvers in _Loader.yaml_implicit_resolvers.items()
    }
    yaml_constructors = {tag: c for tag, c in _Loader.yaml_constructors.items() if tag in _JSON_TAGS or tag is None}

    def construct_document(self, node: yaml.Node) -> Any:
        _check_graph(node)
        return super().construct_document(node)

    def construct_yaml_int(self, node: yaml.Node) -> int:
        digits = sum(c.isalnum() for c in node.value)
        if digits > MAX_NUMBER_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {digits:,} digits, more than MAX_NUMBER_DIGITS ({MAX_NUMBER_DIGITS:,})",
                node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: yaml.Node) -> float:
        value = super().construct_yaml_float(node)
        if value != value or value in (float("inf"), float("-inf")):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value} is not a JSON number (no NaN or infinity)", node.start_mark)
        return value


JSONTypedLoader.add_constructor("tag:yaml.org,2002:int", JSONTypedLoader.construct_yaml_int)
JSONTypedLoader.add_constructor("tag:yaml.org,2002:float", JSONTypedLoader.construct_yaml_float)


def _check_graph(root: yaml.Node) -> None:
    """Refuse aliases, tags other than JSON types, and nesting past :data:`MAX_YAML_DEPTH` (see
    :class:`JSONTypedLoader`). An alias is a node reached twice: the composer hands out the anchored node
    itself."""
    seen: set[int] = set()
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a transcript: the node anchored here is used again",
                node.start_mark)
        seen.add(id(node))
        if node.tag not in _JSON_TAGS:
            raise yaml.constructor.ConstructorError(
                None, None, f"tag {node.tag} is not allowed (a transcript holds JSON types only)", node.start_mark)
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            continue
        if depth >= MAX_YAML_DEPTH and children:
            raise yaml.constructor.ConstructorError(
                None, None, f"nested deeper than MAX_YAML_DEPTH ({MAX_YAML_DEPTH})", node.start_mark)
        stack.extend((child, depth + 1) for child in children)


def yaml_error(exc: yaml.YAMLError, filename: str,
               error: type[ChanlogError] = TranscriptError) -> ChanlogError:
    """``exc`` as one ``error`` naming ``filename:line`` (1-based) when PyYAML marks where it happened."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        what = "YAML syntax" if isinstance(exc, yaml.scanner.ScannerError | yaml.parser.ParserError) else "YAML"
        return error(f"{what}: {exc.problem or exc.context}", f"{filename}{line}")
    return error(f"YAML: {exc}", filename)


def load_yaml(text: str, filename: str = "<yaml>", error: type[ChanlogError] = TranscriptError) -> Any:
    """Parse untrusted YAML ``text`` with :class:`JSONTypedLoader` (JSON types, no aliases or tags, bounded).

    Raises ``error`` whose ``where`` is ``filename:line`` (1-based) for syntax errors and refused content.
    """
    collecting = gc.isenabled()
    if collecting:  # PyYAML builds many small acyclic objects: CPython's cycle collector, run again and again
        gc.disable()  # as they pile up, made loading large transcripts superlinear (2.6x per doubling)
    try:
        return yaml.load(text, Loader=JSONTypedLoader)
    except yaml.YAMLError as exc:
        raise yaml_error(exc, filename, error) from None
    except RecursionError:  # the pure-Python composer (no libyaml) recurses once per level
        raise error(f"nested deeper than MAX_YAML_DEPTH ({MAX_YAML_DEPTH})", filename) from None
    finally:
        if collecting:
            gc.enable()

#: ``yaml.dump`` keywords of every transcript writer (block style, key order kept, Unicode as is, no
#: line folding); the recorder's streaming writer uses them too, so both give the same bytes.
DUMP_OPTIONS: dict[str, Any] = {"Dumper": _Dumper, "sort_keys": False, "allow_unicode": True,
                                "default_flow_style": False, "width": 1 << 16}

#: ``{version: converter}``: each converter takes a document of that version and returns one of the
#: next version. A document is upgraded step by step until it reaches :data:`FORMAT`.
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def upgrade(doc: dict[str, Any], where: str = "transcript") -> dict[str, Any]:
    """Bring a plain transcript document up to :data:`FORMAT` through :data:`UPGRADES`.

    Raises :class:`TranscriptError` when ``chanlog`` is missing, not an integer, newer than this
    version of chanlog understands, or has no converter.
    """
    version = doc.get("chanlog")
    if version is None:
        raise TranscriptError("not a chanlog transcript: the top-level key 'chanlog: <version>' is missing", where)
    if not isinstance(version, int) or isinstance(version, bool):
        raise TranscriptError(f"chanlog (the format version) must be an integer, not {version!r}", where)
    if version > FORMAT:
        raise TranscriptError(
            f"transcript format {version} is newer than this chanlog understands ({FORMAT}); upgrade chanlog", where)
    while version < FORMAT:
        convert = UPGRADES.get(version)
        if convert is None:
            raise TranscriptError(f"transcript format {version} is not supported (no converter to {version + 1})", where)
        doc = convert(doc)
        version = doc["chanlog"]
    return doc


def loads(text: str, filename: str = "<transcript>") -> Transcript:
    """Parse transcript YAML text into a :class:`Transcript`.

    Raises :class:`TranscriptError` whose ``where`` is ``filename:line`` (1-based) for YAML syntax
    errors and for keys with missing or wrong values.
    """
    doc = load_yaml(text, filename)
    if doc is None:
        raise TranscriptError("empty file, not a transcript", f"{filename}:1")
    if not isinstance(doc, dict):
        raise TranscriptError("a transcript is a mapping with keys chanlog, name, protocol, events", f"{filename}:1")
    try:
        doc = upgrade(doc, "chanlog")
        return Transcript.from_dict(doc)
    except TranscriptError as exc:
        line = _line_of(text, exc.where or "")
        raise TranscriptError(f"{exc.where}: {exc.message}" if exc.where else exc.message,
                              f"{filename}:{line}") from None


def read_source(path: str | Path, error: type[ChanlogError] = TranscriptError) -> tuple[str, str]:
    """``(text, name)`` of a UTF-8 text file, ``-`` meaning standard input (name ``<stdin>``).

    Raises ``error`` (a :class:`ChanlogError` subclass) naming the file when it cannot be read or is
    not UTF-8 (with the byte offset).
    """
    if str(path) == "-":
        return read_stdin(error), "<stdin>"
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8"), str(p)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror}", str(p)) from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: {exc.reason} at byte {exc.start}", str(p)) from None


def read_stdin(error: type[ChanlogError] = TranscriptError) -> str:
    """All of standard input as UTF-8 text; raises ``error`` (``where`` = ``<stdin>``) naming the byte
    offset of the first byte that is not UTF-8."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a text stream put in place by a caller (tests): already decoded
        return sys.stdin.read()
    data = stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: {exc.reason} at byte {exc.start}", "<stdin>") from None


def load(path: str | Path | IO[str]) -> Transcript:
    """Read a transcript file (``-`` for standard input). Errors as :func:`loads`; a missing file is a
    :class:`TranscriptError` too."""
    if hasattr(path, "read"):
        return loads(path.read(), getattr(path, "name", "<stream>"))  # type: ignore[union-attr]
    return loads(*read_source(path))


def dumps(transcript: Transcript) -> str:
    """Serialise a transcript as format-1 YAML (block style, key order kept, Unicode as is)."""
    return yaml.dump(transcript.to_dict(), **DUMP_OPTIONS)


def dump(transcript: Transcript, path: str | Path) -> None:
    """Write a transcript to ``path`` atomically (temporary file in the same folder, then rename);
    ``-`` writes to standard output."""
    text = dumps(transcript)
    if str(path) == "-":
        sys.stdout.write(text)
        return
    write_atomic(Path(path), text)


def write_atomic(path: Path, text: str | Iterable[str]) -> None:
    """Write ``text`` (a string, or an iterable of pieces written one after another) to ``path`` so that
    readers see the old file or the whole new one, never a part: a temporary file beside it, flushed and
    fsynced, then ``os.replace``. The file gets the mode a shell's ``> path`` would give it: an existing
    file's mode is kept, a new file gets ``0666`` less the umask."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _file_mode(path)  # i17 (issue 17): the mode `> path` would give, not mkstemp's 0600
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for piece in [text] if isinstance(text, str) else text:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _file_mode(path: Path) -> int:  # i17 (issue 17)
    """Permission bits for writing ``path``: its current ones when it exists, else ``0o666`` less the
    process umask (read from /proc where possible: setting the umask to read it races with other threads)."""
    import os
    import stat

    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def _line_of(text: str, path: str) -> int:
    """The 1-based line of the node at ``path`` (``events[3].from``) in the YAML ``text``; the
    deepest node found when part of the path is missing; 1 when nothing matches."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except (yaml.YAMLError, RecursionError):
        return 1
    line = node.start_mark.line + 1 if node is not None else 1
    for part in _split_path(path):
        child = None
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode) and part < len(node.value):
            child = node.value[part]
        elif isinstance(part, str) and isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    child = value
                    break
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def _split_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.replace("[", ".[").split("."):
        if not piece:
            continue
        if piece.startswith("[") and piece.endswith("]") and piece[1:-1].isdigit():
            parts.append(int(piece[1:-1]))
        else:
            parts.append(piece)
    return parts


# -- streaming (issue 17, "Inputs of any size") -----------------------------------------------------

#: Bytes read from a transcript file at a time by :func:`stream`.
READ_CHUNK = 1 << 16


class StreamedTranscript:
    """A transcript file read one event at a time (:func:`stream`): memory bounded by the largest event,
    not by the file.

    ``head`` is a :class:`Transcript` with the keys before ``events`` (name, protocol, source) and no
    events. ``events()`` opens the file again and yields each event as it is parsed (so a caller may
    walk them several times); ``size`` is the file's size in bytes and ``position()`` how far the
    current walk has read (for a progress bar). The events sequence must be the mapping's last key, as
    every chanlog writer puts it; a file with keys after it raises :class:`TranscriptError` naming the
    line (load such a file whole with :func:`load`)."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or str(path)
        self.size = path.stat().st_size
        self._fh: IO[str] | None = None
        self.head = next(self._walk(head_only=True))  # type: ignore[arg-type]

    def position(self) -> int:
        """Bytes of the file read so far by the current :meth:`events` walk."""
        fh = self._fh
        try:
            return fh.buffer.tell() if fh is not None and not fh.closed else self.size  # type: ignore[union-attr]
        except (OSError, ValueError):
            return 0

    def events(self) -> Iterator[Event]:
        """Every event in file order, validated as :meth:`Transcript.from_dict` does. Raises
        :class:`TranscriptError` naming ``file:line`` of the first bad event."""
        walk = self._walk(head_only=False)
        next(walk)
        yield from walk  # type: ignore[misc]

    def _walk(self, head_only: bool) -> Iterator[Transcript | Event]:
        filename = self.name
        try:
            fh = open(self.path, encoding="utf-8")
        except OSError as exc:
            raise TranscriptError(f"cannot read: {exc.strerror}", filename) from None
        self._fh = fh
        collecting = gc.isenabled()
        try:
            loader = _ItemLoader(fh)
            try:
                yield from self._items(loader, filename, head_only)
            except yaml.YAMLError as exc:
                raise yaml_error(exc, filename) from None
            except UnicodeDecodeError as exc:
                raise TranscriptError(f"not UTF-8 text: {exc.reason}", filename) from None
            finally:
                loader.dispose()
        finally:
            fh.close()
            if collecting and not gc.isenabled():
                gc.enable()

    def _items(self, loader: _ItemLoader, filename: str, head_only: bool) -> Iterator[Transcript | Event]:
        from chanlog.model import event_from_dict

        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            raise TranscriptError("empty file, not a transcript", f"{filename}:1")
        loader.get_event()  # document start
        if not loader.check_event(yaml.MappingStartEvent):
            raise TranscriptError("a transcript is a mapping with keys chanlog, name, protocol, events",
                                  f"{filename}:1")
        loader.get_event()
        doc: dict[str, Any] = {}
        while not loader.check_event(yaml.MappingEndEvent):
            key_node = loader.compose_item(1)
            key = loader.construct_item(key_node)
            if key != "events":
                doc[key] = loader.construct_item(loader.compose_item(1))
                continue
            line = key_node.start_mark.line + 1
            if not loader.check_event(yaml.SequenceStartEvent):
                raise TranscriptError("events: events must be a list", f"{filename}:{line}")
            loader.get_event()
            doc["events"] = []
            try:
                head = Transcript.from_dict(upgrade(doc, "chanlog"))
            except TranscriptError as exc:
                raise TranscriptError(f"{exc.where}: {exc.message}" if exc.where else exc.message,
                                      f"{filename}:1") from None
            yield head
            if head_only:
                return
            index = 0
            while not loader.check_event(yaml.SequenceEndEvent):
                node = loader.compose_item(2)
                try:
                    yield event_from_dict(loader.construct_item(node), f"events[{index}]")
                except TranscriptError as exc:
                    where = exc.where or ""
                    sub = where.split("]", 1)[1] if "]" in where else ""
                    raise TranscriptError(f"{where}: {exc.message}",
                                          f"{filename}:{_line_in(node, sub)}") from None
                index += 1
            end = loader.get_event()
            if not loader.check_event(yaml.MappingEndEvent):
                raise TranscriptError("keys after the events list: put events last to read the file as a "
                                      "stream", f"{filename}:{end.end_mark.line + 1}")
            return
        doc.setdefault("events", None)
        try:
            Transcript.from_dict(upgrade(doc, "chanlog"))
        except TranscriptError as exc:
            raise TranscriptError(f"{exc.where}: {exc.message}" if exc.where else exc.message,
                                  f"{filename}:1") from None


def stream(path: str | Path, name: str | None = None) -> StreamedTranscript:
    """Open a transcript file for reading event by event (:class:`StreamedTranscript`); the same rules and
    limits as :func:`load` (:class:`JSONTypedLoader`). ``name`` is the file's name in errors (default: the
    path). Raises :class:`TranscriptError` naming ``file:line``."""
    try:
        return StreamedTranscript(Path(path), name)
    except OSError as exc:
        raise TranscriptError(f"cannot read: {exc.strerror}", name or str(path)) from None


class _ItemLoader(JSONTypedLoader):
    """:class:`JSONTypedLoader` composing one node at a time (PyYAML's pure-Python composer on the parser's
    events), so a file is read piece by piece. Aliases, non-JSON tags and deep nesting are refused as the
    whole-file loader refuses them."""

    def compose_item(self, depth: int) -> yaml.Node:
        """The next node, whose parent is at ``depth`` in the document (the top mapping is at 1)."""
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a transcript", event.start_mark)
        self._depth = depth
        self.anchors = {}
        return self._compose(None, None)

    def _compose(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        from yaml.composer import Composer

        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a transcript", event.start_mark)
        if self._depth >= MAX_YAML_DEPTH:  # a node below the deepest level allowed (as _check_graph counts)
            raise yaml.constructor.ConstructorError(
                None, None, f"nested deeper than MAX_YAML_DEPTH ({MAX_YAML_DEPTH})", event.start_mark)
        self._depth += 1
        try:
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1

    # Composer.compose_*_node call self.compose_node for children: route them through the checks
    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        return self._compose(parent, index)

    def construct_item(self, node: yaml.Node) -> Any:
        _check_graph(node)
        data = self.construct_object(node, deep=True)
        self.constructed_objects = {}
        self.recursive_objects = {}
        return data


def _bind_composer() -> None:
    from yaml.composer import Composer

    for name in ("compose_scalar_node", "compose_sequence_node", "compose_mapping_node"):
        setattr(_ItemLoader, name, getattr(Composer, name))


_bind_composer()


def _line_in(node: yaml.Node, path: str) -> int:
    """The 1-based line of the node at ``path`` (``.from``, ``.data.params``) below ``node``."""
    line = node.start_mark.line + 1
    for part in _split_path(path):
        child = None
        if isinstance(part, int) and isinstance(node, yaml.SequenceNode) and part < len(node.value):
            child = node.value[part]
        elif isinstance(part, str) and isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == part), None)
        if child is None:
            break
        node = child
        line = node.start_mark.line + 1
    return line


def event_pieces(events: Iterable[Any], chunk: int = 16,
                 dump: Callable[[list[dict[str, Any]]], str] | None = None,
                 to_dict: Callable[[Any], dict[str, Any]] | None = None) -> Iterator[str]:
    """The ``events:`` part of transcript YAML, ``chunk`` events at a time: after a head dumped without
    events (:func:`head_piece`) the same bytes as :func:`dumps` gives for the whole transcript. ``dump``
    writes a list of event mappings as a YAML sequence (default ``yaml.dump`` with :data:`DUMP_OPTIONS`;
    the recorder's writer passes its faster emitter of the same bytes). ``to_dict`` makes an event's
    mapping (default :func:`chanlog.model.event_to_dict`; the writer's events are mappings already)."""
    from chanlog.model import event_to_dict

    dump = dump or (lambda batch: yaml.dump(batch, **DUMP_OPTIONS))
    to_dict = to_dict or event_to_dict

    batch: list[dict[str, Any]] = []
    started = False
    for event in events:
        batch.append(to_dict(event))
        if len(batch) >= chunk:
            if not started:
                yield "events:\n"
                started = True
            yield dump(batch)
            batch = []
    if batch:
        if not started:
            yield "events:\n"
            started = True
        yield dump(batch)
    if not started:
        yield "events: []\n"


def head_piece(head: Transcript) -> str:
    """Transcript YAML of ``head``'s keys before ``events`` (chanlog, name, protocol, source)."""
    doc = head.to_dict()
    doc.pop("events", None)
    return yaml.dump(doc, **DUMP_OPTIONS)


def write_pieces(path: str | Path | None, pieces: Iterable[str]) -> None:
    """Write text ``pieces`` one after another to ``path`` atomically (:func:`write_atomic`), or to
    standard output for ``None`` or ``-``. Raises :class:`ChanlogError` naming the file when it cannot be
    written."""
    if path is None or str(path) == "-":
        try:
            for piece in pieces:
                sys.stdout.write(piece)
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise ChanlogError(f"cannot write: {exc.strerror or exc}", "<stdout>") from None
        return
    try:
        write_atomic(Path(path), pieces)
    except OSError as exc:
        raise ChanlogError(f"cannot write: {exc.strerror or exc}", str(path)) from None


def spool_stdin(error: type[ChanlogError] = TranscriptError) -> Any:
    """Standard input copied a buffer at a time into an unnamed temporary file (so that it can be read
    twice, in bounded memory); returns the open file (binary), rewound. Raises ``error`` when stdin
    cannot be read."""
    import shutil
    import tempfile

    spool = tempfile.NamedTemporaryFile(prefix="chanlog-stdin-", suffix=".tmp")
    stream = getattr(sys.stdin, "buffer", None)
    try:
        if stream is None:  # a text stream put in place by a caller (tests)
            for piece in iter(lambda: sys.stdin.read(READ_CHUNK), ""):
                spool.write(piece.encode("utf-8"))
        else:
            shutil.copyfileobj(stream, spool, READ_CHUNK)
    except OSError as exc:
        spool.close()
        raise error(f"cannot read: {exc.strerror or exc}", "<stdin>") from None
    spool.flush()
    spool.seek(0)
    return spool


def copy_text(fh: IO[str]) -> Iterator[str]:
    """The text of an open file from its start, :data:`READ_CHUNK` characters at a time."""
    fh.seek(0)
    return iter(lambda: fh.read(READ_CHUNK), "")
