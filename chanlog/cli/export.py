"""``chanlog export``: a transcript -> HAR (for HAR viewers, browsers' DevTools, other tools)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from chanlog.cli import EXIT_CODES, main, write_output


@main.command("export", epilog=EXIT_CODES)
@click.argument("transcript", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--har", "har", is_flag=True,
              help="Write HAR 1.2 with WebSocket messages (the only format so far, so also the default).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="File to write (default: standard output).")
def export_command(transcript: Path, har: bool, output: Path | None) -> None:
    """Export TRANSCRIPT (YAML, '-' for standard input) as a HAR.

    One entry per connection: a GET of its open URL answered 101, with _resourceType websocket and its
    frames as _webSocketMessages (type send/receive, time in Unix seconds, opcode 1 text / 2 binary in
    base64), the layout Chrome DevTools, Playwright and mitmproxy write, so HAR viewers show the
    messages. The close (code, side, reason) goes into _chanlogClose, notes into the entry's comment.
    Times are the transcript's start plus each event's t; a transcript without times gets events 1 ms
    apart in order (said in log.comment). `chanlog import FILE.har` reads it back.
    """
    from chanlog.sources.har import export_har
    from chanlog.transcript import load

    doc = export_har(load(transcript))
    write_output(output, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
