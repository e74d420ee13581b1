"""``chanlog import CAPTURE.har``: the HAR side of the import command (called from :mod:`chanlog.cli.importer`)."""

from __future__ import annotations

from pathlib import Path

import click

from chanlog.cli import write_output


def import_har_command(har: Path, output: Path | None, name: str | None, channel_path: str = "/channel") -> None:
    """Import the channel connections of a HAR (Chrome, Playwright, mitmproxy ``hardump``) as transcripts,
    one per channel session (:func:`chanlog.record.har.import_har_file`: the HAR streamed, each session
    written as soon as it has ended).

    ``output``: a folder (created when missing) that gets ``NAME.yaml`` per session; a ``.yaml`` file or
    ``-``/none (standard output) when the HAR holds exactly one session. ``name`` renames the sessions
    (``NAME`` the first to start, ``NAME-N`` the N-th). What was left out or changed is printed to standard
    error and kept in each transcript's ``source.notes``. Raises :class:`chanlog.sources.har.HarError` for a HAR
    that is not JSON or has no channel connection; ``click.UsageError`` for several sessions and no folder.
    """
    import sys
    import tempfile

    from chanlog.record.har import import_har_file
    from chanlog.sources.har import HarError
    from chanlog.transcript import dump, dumps

    to_file = output is not None and str(output) != "-" and output.suffix.lower() in (".yaml", ".yml")
    to_folder = output is not None and str(output) != "-" and not to_file
    filename = "<stdin>" if str(har) == "-" else str(har)
    single: dict[int, object] = {}  # one session expected: its transcript, or only the names of several
    names: dict[int, str] = {}
    written: dict[int, Path] = {}
    with tempfile.TemporaryDirectory(prefix="chanlog-har-") as tmp:
        try:
            fh = sys.stdin.buffer if str(har) == "-" else open(har, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise HarError(f"cannot read: {exc.strerror}", filename) from None
        try:
            results = import_har_file(fh, filename, Path(tmp), channel_path=channel_path)
            noted = False
            for kind, seq, t in results:
                if not noted:  # the notes are known once the HAR is read, before the first session
                    noted = True
                    for note in t.source.get("notes", []) if kind == "written" else []:
                        click.echo(f"chanlog: note: {note}", err=True)
                if name:
                    t.name = name if seq == 1 else f"{name}-{seq}"
                if not to_folder:  # one session expected: no more than one transcript is kept
                    if kind == "removed":
                        names.pop(seq, None)
                        single.pop(seq, None)
                    else:
                        names[seq] = t.name
                        single[seq] = t
                        if len(names) > 1:
                            single.clear()
                    continue
                assert output is not None
                path = output / f"{t.name}.yaml"
                if kind == "removed":
                    if written.pop(seq, None) is not None:
                        path.unlink(missing_ok=True)
                        click.echo(f"removed {path}: its session was merged into another one", err=True)
                    continue
                if not written:
                    output.mkdir(parents=True, exist_ok=True)
                dump(t, path)
                written[seq] = path
                click.echo(f"wrote {path} ({_summary(t)})", err=True)
        finally:
            if fh is not sys.stdin.buffer:
                fh.close()
    if to_folder:
        return
    if len(names) != 1 or len(single) != 1:
        raise click.UsageError(f"{filename} holds {len(names)} channel sessions ({', '.join(names[k] for k in sorted(names))}); "
                               f"give a folder with -o DIR")
    (t,) = single.values()
    write_output(output, dumps(t))  # type: ignore[arg-type]
    if to_file:
        click.echo(f"wrote {output} ({_summary(t)})", err=True)


def _summary(t) -> str:
    frames = sum(1 for _ in t.frames())
    return f"{len(t.connections())} connections, {frames} frames"
