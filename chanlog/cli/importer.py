"""``chanlog import``: a node Markdown channel log -> transcript YAML."""

from __future__ import annotations

from pathlib import Path

import click

from chanlog.cli import EXIT_CODES, main


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
    legacy) are detected. A region that cannot be parsed is an error naming file:line. A log of any size
    is read line by line in bounded memory; a progress bar goes to standard error when it is a terminal.

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
    import_stream(log, output, name)


def import_stream(log: Path, output: Path | None, name: str | None) -> None:
    """Import ``log`` to ``output`` in bounded memory (issue 17): the log is read line by line, each event
    written as it is parsed to a temporary file, then the head (whose era and protocol are known at the
    end) and the events are copied to the output. Standard input is first copied to a temporary file (the
    importer reads the log twice). A progress bar counts the log's bytes on a terminal."""
    import tempfile

    from chanlog.errors import LogImportError
    from chanlog.progress import byte_bar
    from chanlog.sources.nodelog import LogStream, file_lines
    from chanlog.transcript import copy_text, event_pieces, head_piece, spool_stdin, write_pieces

    stdin = None
    if str(log) == "-":
        stdin = spool_stdin(LogImportError)
        path, filename = Path(stdin.name), "<stdin>"
    else:
        path, filename = log, str(log)
    try:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise LogImportError(f"cannot read: {exc.strerror}", filename) from None
        bar = byte_bar(size, "import")
        read_lines = file_lines(path)

        def counted():
            for line in read_lines():
                bar.update(len(line) + 1)
                yield line

        log_stream = LogStream(counted, filename)
        with tempfile.TemporaryFile("w+", encoding="utf-8", prefix="chanlog-import-") as spool:
            for piece in event_pieces(log_stream.events()):
                spool.write(piece)
            bar.close()
            head = log_stream.transcript()
            if name:
                head.name = name

            def pieces():
                yield head_piece(head)
                yield from copy_text(spool)

            write_pieces(output, pieces())
    finally:
        if stdin is not None:
            stdin.close()
