"""``chanlog import CAPTURE.har``: the HAR side of the import command (called from :mod:`chanlog.cli.importer`)."""

from __future__ import annotations

from pathlib import Path

import click

from chanlog.cli import write_output


def import_har_command(har: Path, output: Path | None, name: str | None, channel_path: str = "/channel") -> None:
    """Import the channel connections of a HAR (Chrome, Playwright, mitmproxy ``hardump``) as transcripts,
    one per channel session (:func:`chanlog.record.har.import_har`).

    ``output``: a folder (created when missing) that gets ``NAME.yaml`` per session; a ``.yaml`` file or
    ``-``/none (standard output) when the HAR holds exactly one session. ``name`` renames the session
    (``NAME-2``, ``NAME-3``... for further sessions). What was left out or changed is printed to standard
    error and kept in each transcript's ``source.notes``. Raises :class:`chanlog.sources.har.HarError` for a HAR
    that is not JSON or has no channel connection; ``click.UsageError`` for several sessions and no folder.
    """
    from chanlog.record.har import import_har
    from chanlog.sources.har import read_har
    from chanlog.transcript import dump, dumps

    doc, filename = read_har(har)
    result = import_har(doc, filename, channel_path=channel_path)
    transcripts = result.transcripts
    for note in result.notes:
        click.echo(f"chanlog: note: {note}", err=True)
    if name:
        for i, t in enumerate(transcripts):
            t.name = name if i == 0 else f"{name}-{i + 1}"
    to_file = output is not None and str(output) != "-" and output.suffix.lower() in (".yaml", ".yml")
    if output is None or str(output) == "-" or to_file:
        if len(transcripts) != 1:
            raise click.UsageError(f"{filename} holds {len(transcripts)} channel sessions "
                                   f"({', '.join(t.name for t in transcripts)}); give a folder with -o DIR")
        write_output(output, dumps(transcripts[0]))
        if to_file:
            click.echo(f"wrote {output} ({_summary(transcripts[0])})", err=True)
        return
    output.mkdir(parents=True, exist_ok=True)
    for t in transcripts:
        path = output / f"{t.name}.yaml"
        dump(t, path)
        click.echo(f"wrote {path} ({_summary(t)})", err=True)


def _summary(t) -> str:
    frames = sum(1 for _ in t.frames())
    return f"{len(t.connections())} connections, {frames} frames"
