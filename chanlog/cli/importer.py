"""``chanlog import``: a node Markdown channel log -> transcript YAML."""

from __future__ import annotations

from pathlib import Path

import click

from chanlog.cli import EXIT_CODES, main, write_output


@main.command("import", epilog=EXIT_CODES)
@click.argument("log", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, allow_dash=True),
              help="Transcript file to write (default: standard output); for a HAR, a folder.")
@click.option("--name", help="Session name to record (default: the log's file name).")
def import_command(log: Path, output: Path | None, name: str | None) -> None:
    """Import a node channel log (Markdown, any era) as a transcript (YAML, format 1).

    LOG is a log as the node's test suite writes them (aeternity/protocol,
    node/api/examples/channels/*.md): current headings, timestamped headings, 2018 headings, or the
    scraped text of a rendered log page. '-' reads standard input. Both protocols (json-rpc and
    legacy) are detected. A region that cannot be parsed is an error naming file:line.

    A HAR (LOG ending in .har, or JSON) with WebSocket messages (Chrome DevTools, Playwright,
    mitmproxy --set hardump=FILE) becomes one transcript per channel session, paired as the recorder
    pairs them: -o DIR writes DIR/NAME.yaml each (standard output is fine for a single session).
    """
    from chanlog.sources.har import looks_like_har  # HAR (issue 15): chanlog.cli.har
    if looks_like_har(log):
        from chanlog.cli.har import import_har_command
        return import_har_command(log, output, name)
    if output is not None and output.is_dir():
        raise click.UsageError(f"{output} is a folder; a log imports to one transcript file")
    from chanlog.importer import import_file
    from chanlog.transcript import dumps

    transcript = import_file(log)
    if name:
        transcript.name = name
    write_output(output, dumps(transcript))
