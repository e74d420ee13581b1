"""``chanlog render``: transcripts and node logs -> Markdown or HTML documents (one, or a site with an index)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chanlog.cli import EXIT_CODES, main, write_output

_HIDE_HELP = "Kinds of frames to leave out of the diagram (not the log), comma-separated: ping (pings/pongs), " \
             "get (channels.get.* and replies), message (channels.message), info (channels.info events)."


@main.command("render", epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, allow_dash=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, allow_dash=True),
              help="One input: the file to write (default: standard output). Several inputs or a folder: "
                   "the output folder (required), one page per session in the inputs' folder structure, "
                   "plus index.md / index.html.")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md", show_default=True,
              help="'md': Markdown. 'html': a standalone page per session; Mermaid draws the diagram in "
                   "the browser, numbered arrows link to their frames.")
@click.option("--layout", type=click.Choice(["doc", "node"]), default="doc", show_default=True,
              help="Markdown only. 'doc': title, parameters, Mermaid flow, described and decoded frames. "
                   "'node': the node's own log layout, byte for byte ('chanlog import' reads it back).")
@click.option("--hide", metavar="KIND,...", default="", help=_HIDE_HELP)
@click.option("--frames", "frame_range", metavar="A..B", help="Only frames A to B (numbers of the log part; "
              "A.., ..B and N work too) and the events between them.")
@click.option("--phase", metavar="NAME", help="Only the frames of one phase of the flow (e.g. 'Mutual close').")
@click.option("--show-time", is_flag=True, help="Put each frame's time offset (seconds) on its arrow.")
@click.option("--autonumber/--no-autonumber", default=True, show_default=True,
              help="Number the arrows with the frame numbers of the log part.")
@click.option("--mermaid-js", metavar="URL|PATH",
              help="HTML: where pages load Mermaid from. A URL is used as is; a local file (e.g. "
                   "node_modules/mermaid/dist/mermaid.min.js) is copied once to OUTDIR/_assets/ so the site "
                   "works offline. Default: the pinned version on the jsDelivr CDN.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes for several inputs "
              "(default: the machine's cores).")
@click.option("--template-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Directory searched before the packaged templates (doc.md.j2, node.md.j2, "
                   "session.html.j2, base.html.j2, index.*.j2, descriptions.yaml); packaged ones stay "
                   "reachable as 'default:NAME'.")
@click.option("--descriptions", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="YAML file overriding the one-line descriptions (sections events, methods, errors, phases).")
@click.option("--from-log", is_flag=True, hidden=True, help="Kept for old scripts: logs are recognised anyway.")
def render_command(paths: tuple[Path, ...], output: Path | None, fmt: str, layout: str, hide: str,
                   frame_range: str | None, phase: str | None, show_time: bool, autonumber: bool,
                   mermaid_js: str | None, jobs: int | None, template_dir: Path | None, descriptions: Path | None,
                   from_log: bool) -> None:
    """Render transcripts (YAML) and node Markdown logs as flow documents.

    PATHS are transcripts, node channel logs (aeternity/protocol node/api/examples/channels/*.md, any era;
    told apart by suffix, or by content on standard input '-') or folders, searched recursively.

    One input gives one document on standard output or in -o FILE. Several inputs or a folder need
    -o OUTDIR: one page per session and an index table (name, folder, protocol, connections, frames,
    phases, errors the node sent, channel id). Every input gets its own page, named from its path made
    URL-safe (a suffix or a short tag added where names would clash). chanlog never overwrites what it did
    not write: an OUTDIR holding an input, or a file chanlog did not write where a page goes, is refused
    (OUTDIR/.chanlog-site.json lists what it wrote); other files there are left alone. A folder's
    README.md is left out (with a note); no input at all is an error. A bad input prints one error line naming the file and the
    rest still render; the exit status is then 1. A progress bar goes to standard error when it is a
    terminal. Every value from a transcript is escaped for Markdown, Mermaid and HTML.
    """
    from chanlog.errors import RenderError
    from chanlog.render import Options, render
    from chanlog.render.document import parse_range
    from chanlog.render.site import load_any, mermaid_asset, render_site
    from chanlog.render.stream import WHOLE_MAX, streamable

    if fmt == "html" and layout == "node":
        raise click.UsageError("--layout node is Markdown only; --format html renders the doc layout")
    if layout == "node" and (hide or frame_range or phase or show_time):
        raise click.UsageError("--hide, --frames, --phase and --show-time shape the doc layout and HTML; "
                               "--layout node always writes every event")
    kinds = frozenset(k.strip() for k in hide.split(",") if k.strip())
    try:
        options = Options(hide=kinds, frames=parse_range(frame_range) if frame_range else None, phase=phase,
                          show_time=show_time, autonumber=autonumber)
    except RenderError as exc:
        raise click.UsageError(exc.message) from None
    batch = len(paths) > 1 or any(p.is_dir() for p in paths)
    if not batch:
        context = {}
        if fmt == "html" and mermaid_js is not None:
            folder = output.parent if output is not None and str(output) != "-" else None
            if folder is None:
                context["mermaid_js"] = mermaid_js if "://" in mermaid_js else Path(mermaid_js).resolve().as_uri()
            else:
                context["mermaid_js"] = mermaid_asset(mermaid_js, folder)
        layout_name = "html" if fmt == "html" else layout
        if str(paths[0]) != "-" and paths[0].is_file() and paths[0].stat().st_size > WHOLE_MAX \
                and streamable(layout_name, options):  # large: streamed, memory bounded by the largest event
            render_file(paths[0], output, layout=layout_name, template_dir=template_dir,
                        descriptions=descriptions, options=options, context=context)
            return
        # up to WHOLE_MAX: whole, as a site renders each page (one parse, one pass)
        write_output(output, render(load_any(paths[0]), layout=layout_name, template_dir=template_dir,
                                    descriptions=descriptions, options=options, context=context))
        return
    if output is None or str(output) == "-":
        raise click.UsageError("several inputs or a folder need -o OUTDIR (an output folder)")
    if output.exists() and not output.is_dir():
        raise click.UsageError(f"-o {output}: not a folder")
    bar = _ProgressBar()
    left_out: list[Path] = []
    try:
        summaries = render_site(paths, output, fmt=fmt, layout=layout, options=options, template_dir=template_dir,
                                descriptions=descriptions, mermaid_js=mermaid_js, jobs=jobs, progress=bar.step,
                                on_start=bar.start, left_out=left_out)
    except KeyboardInterrupt:
        bar.close()
        click.echo("chanlog: interrupted; the pages written so far are kept, the index is not written", err=True)
        sys.exit(130)
    bar.close()
    failed = [s for s in summaries if s.failure]
    from chanlog.render.markdown import visible

    if left_out:
        click.echo(f"chanlog: left out {len(left_out)} README.md file(s), a folder's documentation (name one to "
                   f"render it): {visible(', '.join(map(str, left_out)))}", err=True)
    for summary in failed:  # control characters (from file names, messages) shown escaped
        click.echo(f"chanlog: error: {visible(summary.failure)}", err=True)
    done = len(summaries) - len(failed)
    click.echo(f"rendered {done} of {len(summaries)} session(s) into {output}"
               f" (index: {output / ('index.' + fmt)})", err=True)
    if failed:
        sys.exit(1)


def render_file(path: Path, output: Path | None, **kw) -> None:
    """Render one transcript or log file to ``output`` (``None``/``-``: standard output) in bounded memory
    (issue 17): a transcript is read event by event (:func:`chanlog.render.stream.render_stream`), a log
    parsed straight from its Markdown on each pass (:class:`chanlog.render.stream.StreamedLog`, no YAML in
    between). A progress bar counts the input's bytes on a terminal. Raises
    :class:`~chanlog.errors.ChanlogError` subclasses naming the file."""
    from chanlog.progress import byte_bar
    from chanlog.render.site import is_log
    from chanlog.render.stream import StreamedLog, render_stream
    from chanlog.transcript import stream, write_pieces

    if is_log(path):
        try:
            streamed = StreamedLog(path, str(path))
        except OSError as exc:
            from chanlog.errors import LogImportError

            raise LogImportError(f"cannot read: {exc.strerror}", str(path)) from None
    else:
        streamed = stream(path, str(path))
    bar = byte_bar(streamed.size, "render")
    try:
        write_pieces(output, render_stream(streamed, progress=bar, **kw))
    finally:
        bar.close()


class _ProgressBar:
    """tqdm on standard error, shown only when standard error is a terminal."""

    def __init__(self) -> None:
        self.bar = None

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="session", file=sys.stderr, disable=not sys.stderr.isatty(),
                        dynamic_ncols=True, desc="render")

    def step(self, summary) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if summary.failure:
                self.bar.set_postfix_str("some failed", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
