"""Many sessions at once: every transcript and node log under the given paths rendered to one page each, in
the folders' structure, with an index page (Markdown or HTML) made from the same records as the pages.

``render_site(paths, outdir, ...)`` finds the inputs (folders searched recursively for ``*.yaml``, ``*.yml``
transcripts and ``*.md`` node logs, ``README.md`` left out), renders them in a process pool (one task per
input; every worker loads, renders and writes its page), reports progress through a callback, and writes
the index last. A bad input costs only its own page: its error (``file: what``) is collected and the rest
render. HTML pages load Mermaid from a URL, or from a local file copied once to ``OUTDIR/_assets/``.
"""

from __future__ import annotations

import gc
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from chanlog.errors import ChanlogError, RenderError
from chanlog.model import Transcript

#: File suffixes searched for in folders: transcripts and node Markdown logs.
TRANSCRIPT_SUFFIXES = (".yaml", ".yml")
LOG_SUFFIXES = (".md",)
#: File names never taken for a log when a folder is searched.
NOT_LOGS = frozenset({"README.md", "index.md"})
#: Where a local Mermaid script is copied, relative to the output folder.
ASSETS = "_assets"
#: Formats and the suffix of their pages.
FORMATS = {"md": ".md", "html": ".html"}


def is_log(path: Path, text: str | None = None) -> bool:
    """True when ``path`` is a node Markdown log rather than a YAML transcript: by suffix, else (standard
    input) by content (a ``#### `` heading, or no ``chanlog:`` key)."""
    if path.suffix.lower() in LOG_SUFFIXES:
        return True
    if path.suffix.lower() in TRANSCRIPT_SUFFIXES:
        return False
    if text is None:
        return False
    lines = text.lstrip().splitlines()
    return bool(lines) and (lines[0].startswith("#") or not any(line.startswith("chanlog:") for line in lines))


def load_any(path: str | Path) -> Transcript:
    """A transcript (YAML) or a node Markdown log (imported), ``-`` for standard input (told apart by
    content, as is a file with another suffix). Raises :class:`~chanlog.errors.ChanlogError` subclasses
    naming the file."""
    from chanlog.sources.nodelog import import_file, import_log
    from chanlog.transcript import loads, read_source

    if str(path) != "-" and is_log(Path(path)):
        return import_file(path)
    text, name = read_source(path)
    if is_log(Path(name), text):
        return import_log(text, name)
    return loads(text, name)


def find_inputs(paths: Iterable[str | Path], exclude: Path | None = None) -> list[tuple[Path, Path]]:
    """``(file, page)`` for every input: ``page`` is where its page goes relative to the output folder,
    without suffix (a folder's files keep their path below it; a file given by name is placed by name).
    Two inputs that would share a page get ``-2``, ``-3``... Files under ``exclude`` (the output folder, when
    it lies inside an input folder) are left out. Raises :class:`RenderError` for a path that does not
    exist."""
    skip = exclude.resolve() if exclude is not None else None
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in NOT_LOGS
                           and p.suffix.lower() in LOG_SUFFIXES + TRANSCRIPT_SUFFIXES
                           and (skip is None or not p.resolve().is_relative_to(skip)))
            found += [(p, p.relative_to(path).with_suffix("")) for p in files]
        elif path.exists():
            found.append((path, Path(path.stem)))
        else:
            raise RenderError("no such file or folder", str(path))
    taken: dict[str, int] = {}
    out: list[tuple[Path, Path]] = []
    for file, page in found:
        key = page.as_posix().casefold()
        taken[key] = taken.get(key, 0) + 1
        out.append((file, page if taken[key] == 1 else page.with_name(f"{page.name}-{taken[key]}")))
    return out


@dataclass
class Summary:
    """One row of the index: what a session's page shows, or why there is none."""

    source: str
    """The input file as given."""
    page: str
    """The page, relative to the output folder (POSIX separators)."""
    name: str = ""
    folder: str = ""
    """The page's folder below the output folder (``.`` at the top)."""
    protocol: str = ""
    connections: int = 0
    frames: int = 0
    phases: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """The errors the node sent: ``code message`` (JSON-RPC) or the legacy reason, each once, in order."""
    channel_id: str | None = None
    failure: str | None = None
    """The error that kept this input from rendering (``file:line: what``)."""


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to render one input (picklable)."""

    source: Path
    page: Path
    outdir: Path
    fmt: str
    layout: str
    template_dir: Path | None
    descriptions: Path | None
    options: Any
    mermaid_js: str | None


def summarize(transcript: Transcript, entries: Sequence[Any]) -> dict[str, Any]:
    """The index columns of a rendered session (see :class:`Summary`)."""
    from chanlog.model import Frame
    from chanlog.render.describe import is_error

    errors: list[str] = []
    for entry in entries:
        frame = entry.event
        if isinstance(frame, Frame) and frame.sender == "node" and is_error(frame):
            err = frame.obj.get("error")
            payload = frame.obj.get("payload")
            if isinstance(err, dict):
                text = f"{err.get('code')} {err.get('message')}"
                data = err.get("data")
                if isinstance(data, list):
                    text += "".join(f"; {d.get('code')} {d.get('message')}" for d in data if isinstance(d, dict))
            elif isinstance(payload, dict) and "reason" in payload:
                text = str(payload["reason"])
            else:
                text = frame.method or "error"
            if text not in errors:
                errors.append(text)
    return {"name": transcript.name, "protocol": transcript.protocol,
            "connections": len(transcript.connections()),
            "frames": sum(1 for e in entries if e.number is not None),
            "phases": list(dict.fromkeys(e.phase for e in entries if e.phase)),
            "errors": errors, "channel_id": transcript.channel_id}


def render_job(job: Job) -> Summary:
    """Load, render and write one page (runs in a worker process); never raises for bad input: the
    :class:`Summary` then carries the failure."""
    from chanlog.render import prepare, render_values

    page = job.page.with_suffix(FORMATS[job.fmt] if job.layout != "node" else ".md")
    summary = Summary(str(job.source), page.as_posix(), folder=page.parent.as_posix())
    try:
        transcript = load_any(job.source)
        layout = "html" if job.fmt == "html" else job.layout
        depth = len(page.parts) - 1
        up = "../" * depth
        context = {"index_url": f"{up}index{FORMATS[job.fmt]}"}
        if job.mermaid_js is not None:
            context["mermaid_js"] = job.mermaid_js if _is_url(job.mermaid_js) else up + job.mermaid_js
        values = prepare(transcript, layout="doc" if layout == "node" else layout, template_dir=job.template_dir,
                         descriptions=job.descriptions, options=job.options, context=context)
        summary.__dict__.update(summarize(transcript, values["entries"]))
        if layout == "node":
            values["_layout"] = "node"
        text = render_values(values)
        write_page(job.outdir / page, text)
    except ChanlogError as exc:
        summary.failure = str(exc) if str(exc).startswith(str(job.source)) else f"{job.source}: {exc}"
    except (OSError, RecursionError, ValueError) as exc:  # a full disk, an unwritable folder, a pathological file
        summary.failure = f"{job.source}: {type(exc).__name__}: {exc}"
    return summary


#: Allocations between two young-generation collections in a worker (Python's default: 700). A page's render
#: allocates millions of small containers that reference counting frees; collecting ~30 times less often
#: saves about a tenth of a worker's time, and a page's cyclic garbage is still collected.
WORKER_GC_THRESHOLD = 20_000


def _preload(job: Job) -> None:
    """Import what a render worker needs and compile its template in this process before the pool starts
    (workers started by ``fork`` inherit them instead of each paying for them); errors are left to the
    workers, which report them per input."""
    try:
        import chanlog.codec.calls  # noqa: F401 - contract values in every page
        import chanlog.codec.transactions  # noqa: F401 - the decoder behind every tree
        import chanlog.sources.nodelog  # noqa: F401 - node logs
        from chanlog.render import LAYOUTS, environment
        from chanlog.render.describe import load_descriptions

        html = job.fmt == "html"
        env = environment(str(job.template_dir) if job.template_dir is not None else None, html)
        env.get_template(LAYOUTS["html" if html else job.layout])
        load_descriptions(job.descriptions, job.template_dir)
    except (ChanlogError, OSError, ImportError, jinja2.TemplateError):
        pass


def _worker_start() -> None:
    """A render worker's set-up: what it inherited (modules, templates) moved out of the collector's sight
    (``gc.freeze``), young collections less frequent (:data:`WORKER_GC_THRESHOLD`)."""
    gc.freeze()
    gc.set_threshold(WORKER_GC_THRESHOLD, *gc.get_threshold()[1:])


#: Imported once by the fork server (:func:`pool_context`): what every render worker needs, with the packaged
#: templates compiled (:mod:`chanlog.render.prefork` calls :func:`warm_defaults`).
WORKER_MODULES = ("chanlog.render.prefork",)


def warm_defaults() -> None:
    """Import what render workers need and compile the packaged templates and descriptions (both formats),
    in the process workers are forked from; errors are left to the workers, which report them per input."""
    try:
        import chanlog.codec.calls  # noqa: F401 - contract values in every page
        import chanlog.codec.transactions  # noqa: F401 - the decoder behind every tree
        import chanlog.sources.nodelog  # noqa: F401 - node logs
        from chanlog.render import LAYOUTS, environment
        from chanlog.render.describe import load_descriptions

        for html in (False, True):
            env = environment(None, html)
            for layout in (LAYOUTS["html"],) if html else (LAYOUTS["doc"], LAYOUTS["node"]):
                env.get_template(layout)
        load_descriptions(None, None)
    except (ChanlogError, OSError, ImportError, jinja2.TemplateError):
        pass


def pool_context() -> Any:
    """The ``multiprocessing`` context of the render pool: ``forkserver`` (workers forked from a
    single-threaded server process that imported :data:`WORKER_MODULES` once), not ``fork`` of this
    process, which may run threads (a progress bar's, a caller's): forking a threaded process can deadlock
    the child (Python 3.12 warns: DeprecationWarning). ``spawn`` where there is no fork server."""
    import multiprocessing

    try:
        context = multiprocessing.get_context("forkserver")
    except ValueError:  # pragma: no cover - Windows
        return multiprocessing.get_context("spawn")
    context.set_forkserver_preload(list(WORKER_MODULES))
    return context


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def write_page(target: Path, text: str) -> None:
    """Write a generated page whole or not at all (a temporary file beside it, then ``os.replace``); not
    fsynced: a page can be generated again, and a site has many."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "//", "data:", "file:"))


def mermaid_asset(mermaid_js: str | None, outdir: Path) -> str | None:
    """The script address pages use, relative to the output folder: a URL as is; a local file copied once
    to ``OUTDIR/_assets/<name>``. Raises :class:`RenderError` for a missing local file."""
    if mermaid_js is None or _is_url(mermaid_js):
        return mermaid_js
    source = Path(mermaid_js)
    if not source.is_file():
        raise RenderError("--mermaid-js: not a URL and no such file", mermaid_js)
    target = outdir / ASSETS / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, target)
    return f"{ASSETS}/{source.name}"


def render_site(paths: Iterable[str | Path], outdir: Path, fmt: str = "md", layout: str = "doc",
                options: Any = None, template_dir: Path | None = None, descriptions: Path | None = None,
                mermaid_js: str | None = None, jobs: int | None = None,
                progress: Callable[[Summary], None] | None = None,
                on_start: Callable[[int], None] | None = None) -> list[Summary]:
    """Render every input under ``paths`` into ``outdir`` and write the index; returns one
    :class:`Summary` per input in input order (``failure`` set for the ones that did not render).

    ``jobs``: worker processes (default: the machine's cores; 1 renders in this process). ``on_start`` is
    called with the number of inputs, ``progress`` after each one. Raises :class:`RenderError` for a path
    that does not exist, bad options, or an output folder that cannot be made.
    """
    from chanlog.render import render_index

    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    inputs = find_inputs(paths, exclude=outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RenderError(f"cannot make the output folder: {exc.strerror}", str(outdir)) from None
    asset = mermaid_asset(mermaid_js, outdir) if fmt == "html" else None
    work = [Job(file, page, outdir, fmt, layout, template_dir, descriptions, options, asset) for file, page in inputs]
    if on_start is not None:
        on_start(len(work))
    workers = max(1, min(jobs or os.cpu_count() or 1, len(work)))
    summaries: list[Summary] = []
    if workers == 1:
        for job in work:
            summaries.append(render_job(job))
            if progress is not None:
                progress(summaries[-1])
    else:  # largest inputs first, one at a time: the last pages to finish are small ones, so no core idles long
        done: list[Summary | None] = [None] * len(work)
        _preload(work[0])
        with ProcessPoolExecutor(workers, initializer=_worker_start, mp_context=pool_context()) as pool:
            futures = {pool.submit(render_job, work[i]): i
                       for i in sorted(range(len(work)), key=lambda i: -_size(work[i].source))}
            for future in as_completed(futures):
                summary = done[futures[future]] = future.result()
                if progress is not None:
                    progress(summary)
        summaries = [s for s in done if s is not None]
    index = outdir / f"index{FORMATS[fmt]}"
    try:
        write_page(index, render_index(summaries, fmt, template_dir, asset))
    except OSError as exc:
        raise RenderError(f"cannot write the index: {exc.strerror or exc}", str(index)) from None
    return summaries
