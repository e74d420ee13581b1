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
    """
    from chanlog.diff import diff_transcripts
    from chanlog.transcript import load

    try:
        ta, tb = load(a), load(b)
    except ChanlogError as exc:
        fail(str(exc), 2)
    lines = diff_transcripts(ta, tb, str(a), str(b), context=context)
    if lines:
        click.echo(terminal_safe("\n".join(lines), keep_newlines=True))
        sys.exit(1)
    frames = sum(1 for _ in ta.frames())
    click.echo(f"equal: {len(ta.connections())} connections, {frames} frames "
               "(ignoring ids, fsm_id, signatures, times, node address)", err=True)
