"""``chanlog diff``: compare two transcripts connection by connection."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chanlog.cli import fail, main
from chanlog.errors import ChanlogError, terminal_safe

DIFF_EXIT = """\b
Exit status: 0 the transcripts are equal; 1 they differ; 2 bad usage or a transcript
that cannot be read (the message names file:line)."""


@main.command("diff", epilog=DIFF_EXIT)
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("-U", "--context", type=click.IntRange(min=0), default=2, show_default=True,
              help="Unchanged lines shown around each difference.")
def diff_command(a: Path, b: Path, context: int) -> None:
    """Compare transcripts A and B; print what differs.

    Connections are matched by role and order (the initiator's first with the initiator's first...);
    each connection's own events must match in order, while the interleaving of the two participants
    may differ. Ignored: JSON-RPC ids, fsm_id, signatures of signed transactions, times, the node's
    address (and host, existing_fsm_id) in open URLs, JSON layout, notes, where a pong falls among the
    node's frames; close codes when one side does not know them, an open when one side starts
    mid-connection. Output lines: '-' only in A, '+' only in B, with frame numbers of each transcript.
    Transcripts of any size are read event by event in bounded memory (events must be the last key); a
    progress bar goes to standard error when it is a terminal.
    """
    from chanlog.diff import StreamSummary, diff_streams
    from chanlog.progress import byte_bar
    from chanlog.transcript import spool_stdin, stream

    stdin = spool_stdin() if "-" in (str(a), str(b)) else None
    try:
        try:
            sa, sb = (stream(stdin.name, "<stdin>") if str(p) == "-" else stream(p)  # type: ignore[union-attr]
                      for p in (a, b))
        except ChanlogError as exc:
            fail(str(exc), 2)
        summary = StreamSummary()
        bar = byte_bar(sa.size + sb.size, "diff")
        differs = False
        try:
            for line in diff_streams(sa, sb, str(a), str(b), context=context, summary=summary, progress=bar):
                if not differs:
                    bar.close()
                    differs = True
                click.echo(terminal_safe(line, keep_newlines=True))
        except ChanlogError as exc:
            bar.close()
            fail(str(exc), 2)
        bar.close()
    finally:
        if stdin is not None:
            stdin.close()
    if differs:
        sys.exit(1)
    click.echo(f"equal: {summary.connections} connections, {summary.frames} frames "
               "(ignoring ids, fsm_id, signatures, times, node address)", err=True)
