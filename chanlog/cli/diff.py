"""``chanlog diff``: compare two transcripts (or node logs) connection by connection."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from chanlog.cli import fail, main
from chanlog.errors import ChanlogError, terminal_safe

DIFF_EXIT = """\b
Exit status, as diff(1) and cmp(1) give it: 0 the transcripts are equal; 1 they differ; 2 bad usage
or an input that cannot be read (the message names file:line)."""


@main.command("diff", epilog=DIFF_EXIT)
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("-U", "--context", type=click.IntRange(min=0), default=2, show_default=True,
              help="Unchanged lines shown around each difference.")
def diff_command(a: Path, b: Path, context: int) -> None:
    """Compare transcripts A and B; print what differs. Either may be a node Markdown log (as render,
    replay and play take them; a .md file, or on standard input told apart by its content).

    Connections are matched by role and order (the initiator's first with the initiator's first...);
    each connection's own events must match in order, while the interleaving of the two participants
    may differ. Ignored: JSON-RPC ids, fsm_id, signatures of signed transactions, times, the node's
    address (and host, existing_fsm_id) in open URLs, JSON layout, notes, where a pong falls among the
    node's frames; close codes when one side does not know them, an open when one side starts
    mid-connection. Output lines: '-' only in A, '+' only in B, with frame numbers of each transcript.
    Inputs of any size are read event by event in bounded memory (a transcript's events must be its last
    key; a log is read line by line); a progress bar goes to standard error when it is a terminal.
    """
    from chanlog.diff import StreamSummary, diff_streams
    from chanlog.progress import byte_bar
    from chanlog.transcript import spool_stdin

    stdin = spool_stdin() if "-" in (str(a), str(b)) else None
    try:
        try:
            sa, sb = (open_input(p, stdin) for p in (a, b))
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


def open_input(path: Path, stdin) -> object:  # noqa: ANN001 - the spooled standard input, or None
    """``path`` read event by event: a :class:`~chanlog.transcript.StreamedTranscript`, or for a node log
    (``.md``; standard input when its first 64 KiB look like a log, as ``render`` tells them apart) a
    :class:`~chanlog.sources.nodelog.StreamedLog`. Raises :class:`ChanlogError` naming the file."""
    from chanlog.render.site import is_log
    from chanlog.sources.nodelog import StreamedLog
    from chanlog.transcript import READ_CHUNK, stream

    if str(path) == "-":
        stdin.seek(0)
        start = stdin.read(READ_CHUNK).decode("utf-8", "replace")
        stdin.seek(0)
        if is_log(Path("<stdin>"), start):
            return StreamedLog(stdin.name, "<stdin>")
        return stream(stdin.name, "<stdin>")
    return StreamedLog(path) if is_log(path) else stream(path)
