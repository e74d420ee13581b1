"""``chanlog play``: play the client side of a transcript against a node."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from chanlog.cli import main
from chanlog.cli.replay import setup_logging

PLAY_EXIT_CODES = """\b
Exit status: 0 the node answered as recorded to the end; 1 a divergence (the node sent something else,
nothing within --timeout, closed early, or reported the client diverged), a connection that could not
be opened, or bad input (the message names file:line); 2 bad usage."""


def _ws_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--url: a ws:// or wss:// URL with a host (a usage error, exit 2, otherwise)."""
    from chanlog.urls import ws_endpoint

    try:
        ws_endpoint(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@main.command("play", epilog=PLAY_EXIT_CODES)
@click.argument("transcript", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--url", required=True, callback=_ws_url,
              help="The node's channel endpoint, e.g. ws://127.0.0.1:3014/channel; each connection adds its "
                   "recorded query string.")
@click.option("--mode", type=click.Choice(["strict", "lenient"]), default="strict", show_default=True,
              help="strict: node frames compared fully (ids, fsm_id, signatures ignored); lenient: methods only.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds to wait for each node frame.")
@click.option("--session", "session_key", metavar="KEY",
              help="Add chanlog_session=KEY to every URL (to run several plays against one fake node at once).")
@click.option("--prelude", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Play this transcript (or node Markdown log) first, on the same connections, for a TRANSCRIPT "
                   "that starts on an open channel (as chanlog replay --prelude serves it).")
@click.option("-v", "--verbose", count=True, help="-v: notes on soft waits that gave up.")
def play_command(transcript: Path, url: str, mode: str, timeout: float, session_key: str | None,
                 verbose: int, prelude: Path | None = None) -> None:
    """Play the client side of both participants of TRANSCRIPT (YAML, or a node Markdown log) against
    the node at --url: the fake node (chanlog replay), or a real node directly or through the recorder.

    Each recorded connection is opened with its recorded query string; each recorded client frame is
    sent once the frames recorded before it have arrived. A summary goes to standard output, a
    divergence report (frame number, expected, arrived, diff) to standard error.
    """
    from chanlog.replay import load_transcript, with_prelude
    from chanlog.replay.player import aplay

    setup_logging(verbose)
    loaded = load_transcript(transcript)
    if prelude is not None:
        loaded = with_prelude(load_transcript(prelude), loaded)
    report = asyncio.run(aplay(loaded, url, mode=mode, timeout=timeout, session=session_key))
    click.echo(report.summary())
    sys.exit(0 if report.ok else 1)
