"""``chanlog recover``: rebuild a transcript from a journal the recorder left behind."""

from __future__ import annotations

from pathlib import Path

import click

from chanlog.cli import EXIT_CODES, main


@main.command("recover", epilog=EXIT_CODES)
@click.argument("journal", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Transcript file to write; '-' for standard output (default: where the recorder "
                   "would have written it, DIR/NAME.yaml for a journal DIR/journals/NAME.jsonl).")
@click.option("--finish", is_flag=True,
              help="Then mark the journal finished, so the recorder stops reporting it at start-up.")
def recover_command(journal: Path, output: Path | None, finish: bool) -> None:
    """Rebuild the transcript of JOURNAL (JSON Lines, written by mitmdump -s addons/channel.py).

    Use it when the proxy was killed: every frame the journal holds is recovered (an incomplete last
    line, written while the proxy died, is skipped and reported). Connections still open when the
    journal ends have no close event; the transcript's source says how many (open_connections). The
    journal itself is not changed unless --finish is given (which also drops an incomplete last line).

    A journal a running recorder is still writing (it holds the journal's lock) is refused, with or
    without --finish: its session is not over, and the recorder writes its transcript when it ends.

    A journal whose recorder could not write everything (disk full) holds gap records; the transcript then
    says so (source.incomplete, source.gaps: which frames of which connection are missing). The output is never
    the journal itself nor a folder, whatever the journal's header names.

    Merged sessions: a journal ending in a merged_into record belongs to the session it was merged into;
    that session's journal (beside it) is recovered instead, holding both. A merge the proxy was killed
    in the middle of is left out of the surviving journal (the absorbed journal still holds those frames).
    """
    import os
    import time

    from chanlog.record.journal import JournalError, JournalWriter, scan
    from chanlog.record.writer import write_transcript

    _refuse_live(journal)
    info = scan(journal)
    if info.merged_into is not None:
        survivor = info.sibling(str(info.merged_into.get("journal", "")))
        if survivor.is_file() and not _same(survivor, journal):
            click.echo(f"chanlog: session {_shown(info.session)} was merged into session "
                       f"{_shown(info.merged_into.get('session'))}: recovering its journal {survivor}", err=True)
            _refuse_live(survivor)
            journal, info = survivor, scan(survivor)
        else:
            click.echo(f"chanlog: session {_shown(info.session)} was merged into session "
                       f"{_shown(info.merged_into.get('session'))}, whose journal {survivor} is missing: "
                       f"recovering this journal's own frames", err=True)
    out = output if output is not None else info.default_output()
    if str(out) != "-":
        if _same(out, journal):
            raise JournalError(f"the output {out} is the journal itself; choose another file with -o", str(journal))
        if out.is_dir():
            raise JournalError(f"the output {out} is a folder; choose a file with -o", str(journal))
    try:
        write_transcript(journal, out, info=info)
    except OSError as exc:
        raise JournalError(f"cannot write {out}: {exc.strerror or exc}", str(journal)) from None
    if info.partial_merge:
        click.echo(f"chanlog: {journal}:{info.partial_merge}: merge cut short by the proxy's death left out; "
                   f"the merged session's own journal holds those frames", err=True)
    if info.truncated:
        click.echo(f"chanlog: {journal}:{info.truncated}: incomplete last line skipped", err=True)
    if info.gaps:
        click.echo(f"chanlog: {journal}: INCOMPLETE: the recorder could not write {info.lost_frames} frames "
                   f"({info.gaps} gaps, listed in the transcript's source.gaps)", err=True)
    where = "standard output" if str(out) == "-" else str(out)
    click.echo(f"recovered {info.frames} frames in {info.connections} connections of session "
               f"{_shown(info.session)} into {where}", err=True)
    if finish and not info.finished:
        try:
            if info.truncated:  # drop the incomplete last line so that the end record follows a whole one
                data = journal.read_bytes()
                os.truncate(journal, data.rfind(b"\n") + 1)
            writer = JournalWriter(journal)
            writer.open()
            writer.finish_if_unchanged(writer.size, time.time())
        except OSError as exc:
            raise JournalError(f"cannot mark the journal finished: {exc.strerror or exc}", str(journal)) from None


def _refuse_live(journal: Path) -> None:
    """Raise :class:`JournalError` when a live recorder holds ``journal`` (its session is still being
    recorded: a transcript written now would be partial, and the recorder writes the whole one later)."""
    from chanlog.record.journal import JournalError, live_holder

    holder = live_holder(journal)
    if holder is not None:
        raise JournalError(f"a running recorder is writing this journal ({holder}): its session is not over, "
                           f"and the recorder writes the transcript when it ends; nothing recovered",
                           str(journal))


def _shown(value: object) -> str:
    """``value`` for a terminal: control characters (escape sequences, newlines) shown escaped."""
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _same(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (resolved, or the same inode when both exist)."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
        return a.resolve() == b.resolve()
    except OSError:
        return False
