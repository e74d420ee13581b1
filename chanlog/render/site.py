"""Many sessions at once: every transcript and node log under the given paths rendered to one page each, in
the folders' structure, with an index page (Markdown or HTML) made from the same records as the pages.

``render_site(paths, outdir, ...)`` finds the inputs (folders searched recursively for ``*.yaml``, ``*.yml``
transcripts and ``*.md`` node logs, a folder's ``README.md`` left out and reported), names one page per input
(:func:`page_names`: URL-safe, one-to-one even on a case-insensitive file system, never the index's name),
refuses an output folder that holds an input or a file chanlog did not write where a page goes (the folder's
:data:`MANIFEST` lists what chanlog wrote), renders them in a process pool (one task per input; every worker
loads, renders and writes its page), reports progress through a callback, checks every page is on disk, and
writes the index last. A bad input costs only its own page: its error (``file: what``) is collected and the rest
render. HTML pages load Mermaid from a URL, or from a local file copied once to ``OUTDIR/_assets/``; the HTML
index's script (sort by column, filter as you type; :data:`STATIC_FILES`) is copied there too.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import shutil
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from chanlog.errors import ChanlogError, RenderError
from chanlog.model import Transcript

#: File suffixes searched for in folders: transcripts and node Markdown logs.
TRANSCRIPT_SUFFIXES = (".yaml", ".yml")
LOG_SUFFIXES = (".md",)
#: File names never taken for a log when a folder is searched: a folder's README is its documentation (the
#: corpus's own README.md, aeternity/protocol's). Left out with a note; a README given by name is rendered.
NOT_LOGS = frozenset({"readme.md"})
#: The site's own files at the top of the output folder: the index page (``index`` + the format's suffix), the
#: local Mermaid script's folder and the manifest. No page takes these names.
INDEX = "index"
MANIFEST = ".chanlog-site.json"
#: Longest page name we make, in characters (all ASCII, so bytes): file systems allow 255 bytes per name (ext4,
#: XFS, APFS, NTFS); 120 leaves room for a ``-`` and an 8-digit tag, ``-N``, the suffix and the temporary file's
#: ``.NAME.PID.tmp`` (:func:`write_page`). A longer name is cut and tagged.
MAX_NAME = 120
#: Largest manifest read back (bytes): one line per file the site holds; 16 MiB is ~200,000 pages. A larger
#: one is refused rather than read.
MAX_MANIFEST = 16 << 20

#: Characters kept in page and folder names: RFC 3986 section 2.3 unreserved characters, which need no
#: percent-encoding in a link, less ``~`` (a home folder in shells). Anything else becomes ``_``.
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """``text`` as a URL-safe, portable file name: accents dropped (NFKD), every run of other characters
    (spaces, ``#``, ``?``, ``%``, non-ASCII, separators) one ``_``, no leading dot, cut to :data:`MAX_NAME`;
    never empty."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    name = _UNSAFE_NAME.sub("_", plain)
    if name.startswith("."):
        name = "_" + name[1:]
    return name[:MAX_NAME] or "_"


def _tag(text: str) -> str:
    """A short stable tag of ``text`` (8 hex digits of its SHA-256) that tells apart names made equal."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]

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


def find_inputs(paths: Iterable[str | Path], exclude: Path | None = None,
                left_out: list[Path] | None = None) -> list[tuple[Path, PurePosixPath]]:
    """``(file, page)`` for every input, in the order given (folders sorted): ``page`` is where its page goes
    relative to the output folder, without the format's suffix (:func:`page_names`: one page per input,
    never the index's name). A folder's files keep their path below it; a file given by name is placed by
    name. The same file reached twice is one input. Files under ``exclude`` that its manifest lists (pages
    of an earlier run, when the output folder lies inside an input folder) are left out; a folder's
    ``README.md`` too (:data:`NOT_LOGS`), appended to ``left_out`` when given. Raises :class:`RenderError`
    for a path that does not exist."""
    skip = exclude.resolve() if exclude is not None else None
    ours = _manifest(exclude) if exclude is not None and exclude.is_dir() else {}
    found: list[tuple[Path, PurePosixPath]] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for p in sorted(p for p in path.rglob("*") if p.suffix.lower() in LOG_SUFFIXES + TRANSCRIPT_SUFFIXES
                            and p.is_file()):
                real = p.resolve()
                if skip is not None and real.is_relative_to(skip) and \
                        real.relative_to(skip).as_posix().casefold() in ours:
                    continue
                if p.name.casefold() in NOT_LOGS:
                    if left_out is not None:
                        left_out.append(p)
                    continue
                if real not in seen:
                    seen.add(real)
                    found.append((p, PurePosixPath(p.relative_to(path).as_posix())))
        elif path.exists():
            if path.resolve() not in seen:
                seen.add(path.resolve())
                found.append((path, PurePosixPath(path.name)))
        else:
            raise RenderError("no such file or folder", str(path))
    pages = page_names([(str(file.resolve()), rel) for file, rel in found])
    return [(file, page) for (file, _), page in zip(found, pages, strict=True)]


def _folder_name(part: str) -> str:
    """A folder's name in the site: :func:`safe_name`, and never ending like a page (``.md``, ``.html``), so
    that no folder takes a page's name."""
    name = safe_name(part)
    if name.casefold().endswith(tuple(FORMATS.values())):
        name = name[:name.rindex(".")] + "_" + name[name.rindex(".") + 1:]
    return name


def page_names(inputs: Sequence[tuple[str, PurePosixPath]]) -> list[PurePosixPath]:
    """The page of each input (``identity``, ``place``): ``place`` is the input's path below the output
    folder with its own name, ``identity`` tells apart inputs of one place (the resolved file). Pages are
    one-to-one with inputs even on a case-insensitive file system, URL-safe and stable (the same inputs give
    the same pages), and as readable as the names allow:

    1. the name without its last suffix (``channel_websocket.basic_open_close.md`` ->
       ``channel_websocket.basic_open_close``), folders kept (:func:`_folder_name`);
    2. names that :func:`safe_name` changes get a tag of the original (``a b#.md`` -> ``a_b_-1f2e3d4c``);
    3. names that two inputs of one folder share (case ignored: ``x.md`` and ``x.yaml``, ``A.md`` and
       ``a.md``) or the index's name at the top keep their suffix (``x.md``, ``x.yaml``, ``index.md``);
    4. names still shared (one place under two roots) get a tag of ``identity``;
    5. a last ``-2``, ``-3``... only if tags collide.
    """
    spelled: dict[str, str] = {}
    folders: list[str] = []
    for _, place in inputs:
        folder = "/".join(_folder_name(part) for part in place.parent.parts)
        folders.append(spelled.setdefault(folder.casefold(), folder))

    def named(text: str, original: str) -> str:
        safe = safe_name(text)
        return safe if safe == text else f"{safe}-{_tag(original)}"

    def shared(names: list[str]) -> list[bool]:
        keys = [(f.casefold(), n.casefold()) for f, n in zip(folders, names, strict=True)]
        counts = Counter(keys)
        return [counts[k] > 1 or k == ("", INDEX) for k in keys]

    names = [named(p.name[:-len(p.suffix)] if p.suffix else p.name, p.as_posix()) for _, p in inputs]
    names = [named(p.name, p.as_posix()) if again else n
             for (_, p), n, again in zip(inputs, names, shared(names), strict=True)]
    names = [f"{n}-{_tag(identity)}" if again else n
             for (identity, _), n, again in zip(inputs, names, shared(names), strict=True)]
    taken: set[tuple[str, str]] = {("", INDEX)}
    pages: list[PurePosixPath] = []
    for folder, name in zip(folders, names, strict=True):
        final, n = name, 1
        while (folder.casefold(), final.casefold()) in taken:
            n += 1
            final = f"{name}-{n}"
        taken.add((folder.casefold(), final.casefold()))
        pages.append(PurePosixPath(folder, final))
    return pages


def page_file(page: PurePosixPath, fmt: str, layout: str = "doc") -> PurePosixPath:
    """A page's file below the output folder: ``page`` and the format's suffix (``.md`` for the node
    layout), added, never replacing a suffix of the name."""
    return page.with_name(page.name + (FORMATS[fmt] if layout != "node" else ".md"))


def _manifest(outdir: Path) -> dict[str, str]:
    """The files (case-folded relative POSIX path -> as written) that earlier runs of chanlog wrote in ``outdir``, from
    its :data:`MANIFEST`; empty when there is none. Raises :class:`RenderError` for a manifest that is not
    ours (too large, not JSON, not a list of relative paths)."""
    path = outdir / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST:
            raise RenderError(f"larger than {MAX_MANIFEST} bytes: not a chanlog manifest", str(path))
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RenderError(f"not a chanlog manifest ({exc}); remove it or choose another output folder",
                          str(path)) from None
    files = data.get("files") if isinstance(data, dict) and data.get("chanlog") == "site" else None
    if not isinstance(files, list) or not all(isinstance(f, str) and f and not f.startswith("/")
                                              and ".." not in f.split("/") for f in files):
        raise RenderError("not a chanlog manifest; remove it or choose another output folder", str(path))
    return {f.casefold(): f for f in files}


def _write_manifest(outdir: Path, files: Iterable[str]) -> None:
    write_page(outdir / MANIFEST, json.dumps({"chanlog": "site", "files": sorted(set(files))}, indent=1) + "\n")


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
    error_count: int = 0
    """Frames that are errors the node sent (error replies, ``channels.error``)."""
    error_codes: list[str] = field(default_factory=list)
    """Their codes, each once, in order: ``3/1008`` (a JSON-RPC error's code, then its ``data`` codes) or
    the legacy reason (:func:`~chanlog.render.describe.error_codes`)."""
    channel_id: str | None = None
    failure: str | None = None
    """The error that kept this input from rendering (``file:line: what``)."""


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to render one input (picklable)."""

    source: Path
    page: PurePosixPath
    """The page without the format's suffix (:func:`page_names`)."""
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
    from chanlog.render.describe import error_codes, is_error

    errors: list[str] = []
    codes: list[str] = []
    count = 0
    for entry in entries:
        frame = entry.event
        if isinstance(frame, Frame) and frame.sender == "node" and is_error(frame):
            count += 1
            key = "/".join(error_codes(frame)) or (frame.method or "error")
            if key not in codes:
                codes.append(key)
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
            "errors": errors, "error_count": count, "error_codes": codes, "channel_id": transcript.channel_id}


def render_job(job: Job) -> Summary:
    """Load, render and write one page (runs in a worker process); never raises for bad input: the
    :class:`Summary` then carries the failure."""
    from chanlog.render import prepare, render_values

    page = page_file(job.page, job.fmt, job.layout)
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


#: The index page's script (sort, filter), shipped in the package (``chanlog/templates/static``)
#: and copied beside the output in :data:`ASSETS`, so the site works from ``file://`` with no network.
STATIC_FILES = ("chanlog.js",)


def static_assets(outdir: Path) -> str:
    """Copy :data:`STATIC_FILES` to ``OUTDIR/_assets/`` (when missing or different) and return that folder
    relative to the output folder. Raises :class:`RenderError` when it cannot be written."""
    from importlib import resources

    folder = resources.files("chanlog") / "templates" / "static"
    target = outdir / ASSETS
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in STATIC_FILES:
            data = (folder / name).read_bytes()
            dest = target / name
            if not dest.is_file() or dest.read_bytes() != data:
                write_page(dest, data.decode("utf-8"))
    except OSError as exc:
        raise RenderError(f"cannot write the index's assets: {exc.strerror or exc}", str(target)) from None
    return ASSETS


def render_site(paths: Iterable[str | Path], outdir: Path, fmt: str = "md", layout: str = "doc",
                options: Any = None, template_dir: Path | None = None, descriptions: Path | None = None,
                mermaid_js: str | None = None, jobs: int | None = None,
                progress: Callable[[Summary], None] | None = None,
                on_start: Callable[[int], None] | None = None,
                left_out: list[Path] | None = None) -> list[Summary]:
    """Render every input under ``paths`` into ``outdir`` and write the index; returns one
    :class:`Summary` per input in input order (``failure`` set for the ones that did not render; a page
    missing after its worker reported it written counts as a failure too).

    Never overwrites what it did not write: the output folder must not hold an input, and a page, the index
    or the Mermaid copy may replace only a file that an earlier run wrote (listed in ``OUTDIR/``
    :data:`MANIFEST`, which is written before the first page and again at the end); other files in the
    folder are left as they are, the pages go beside them. ``jobs``: worker processes (default: the
    machine's cores; 1 renders in this process). ``on_start`` is called with the number of inputs,
    ``progress`` after each one; folders' README files left out are appended to ``left_out``. Raises
    :class:`RenderError` for a path that does not exist, no inputs at all, an output folder that holds an
    input or a file that chanlog did not write where a page goes, bad options, or an output folder that
    cannot be made.
    """
    from chanlog.render import render_index

    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    paths = [Path(p) for p in paths]
    real_out = outdir.resolve()
    for path in paths:
        if path.exists() and path.resolve().is_relative_to(real_out):
            raise RenderError(f"the output folder holds the input {path}; write the site to another folder",
                              f"-o {outdir}")
    inputs = find_inputs(paths, exclude=outdir, left_out=left_out)
    if not inputs:
        raise RenderError("no inputs: no *.md node logs or *.yaml/*.yml transcripts (folders are searched "
                          "recursively)", ", ".join(map(str, paths)))
    for file, _ in inputs:
        if file.resolve().is_relative_to(real_out):
            raise RenderError(f"the output folder holds the input {file}; write the site to another folder",
                              f"-o {outdir}")
    ours = _manifest(outdir) if outdir.is_dir() else {}
    index_file = f"{INDEX}{FORMATS[fmt]}"
    planned = [page_file(page, fmt, layout).as_posix() for _, page in inputs] + [index_file]
    if fmt == "html" and mermaid_js is not None and not _is_url(mermaid_js):
        planned.append(f"{ASSETS}/{Path(mermaid_js).name}")
    if fmt == "html":
        planned += [f"{ASSETS}/{name}" for name in STATIC_FILES]
    for name in planned:
        target = outdir / name
        if (target.exists() or target.is_symlink()) and name.casefold() not in ours:
            raise RenderError(f"{target} exists and chanlog did not write it (it is not in {MANIFEST}); remove "
                              "it or choose another output folder", f"-o {outdir}")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        _write_manifest(outdir, [*ours.values(), *planned])  # before any page: an interrupted run still owns them
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
    written: set[str] = set()
    for summary in summaries:  # the pages checked against the inputs: each its own, each on disk
        key = summary.page.casefold()
        if summary.failure is None and (key in written or not (outdir / summary.page).is_file()):
            summary.failure = f"{summary.source}: its page {outdir / summary.page} was not written"
        written.add(key)
    index = outdir / index_file
    try:
        assets = static_assets(outdir) if fmt == "html" else None
        write_page(index, render_index(summaries, fmt, template_dir, asset, assets))
        _write_manifest(outdir, [f for f in [*ours.values(), *planned] if (outdir / f).is_file()])
    except OSError as exc:
        raise RenderError(f"cannot write the index: {exc.strerror or exc}", str(index)) from None
    return summaries
