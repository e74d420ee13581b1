"""``chanlog replay``: serve a transcript as a fake node."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from chanlog.cli import main

#: chanlog.replay.modes.RecordMode's values (imported when the command runs: chanlog.replay is heavy).
RECORD_MODES = ("none", "once", "all")

if TYPE_CHECKING:
    from chanlog.replay.modes import RecordMode

REPLAY_EXIT_CODES = """\b
Exit status: 0 every session played to the end without a divergence; 1 a client diverged (wrong
frame, declined or different signature, a slot that timed out), left the script unfinished (unless
--allow-partial), or bad input (the message names file:line); 2 bad usage."""


def setup_logging(verbose: int) -> None:
    """Divergence reports (and with -v session summaries, -vv every connection) on standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger("chanlog")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG)
    logger.propagate = False


@main.command("replay", epilog=REPLAY_EXIT_CODES)
@click.argument("transcript", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=3014, show_default=True,
              help="Port to bind; 0 picks a free one.")
@click.option("--mode", type=click.Choice(["strict", "lenient"]), default="strict", show_default=True,
              help="strict: method and params compared (ids, fsm_id, signatures ignored); lenient: methods "
                   "only, channels.get.* / channels.message slots the client does not send are skipped.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              help="Seconds to wait for an expected client frame (then it is a divergence naming the slot), "
                   "and for a reconnect before a session ends.")
@click.option("--grace", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Seconds before a participant that has not connected stops holding the other back; in "
                   "lenient mode, how long a skippable frame is waited for.")
@click.option("--sessions", type=click.IntRange(min=0), default=1, show_default=True,
              help="Exit after this many sessions (a session is both participants' recorded connections); "
                   "0: serve until interrupted.")
@click.option("--allow-partial", is_flag=True, help="Exit 0 even when a session left part of the script unplayed.")
@click.option("-v", "--verbose", count=True, help="-v: session summaries; -vv: every connection.")
@click.option("--compat", type=click.Choice(["sdk14"]), default=None,
              help="TRANSFORM the transcript for a modern client before serving (off by default; see "
                   "chanlog.replay.compat). sdk14: channel_create_tx v1 -> v2, fees raised to the minimum for the "
                   "new size, old signatures kept; expected client frames in @aeternity/aepp-sdk 14's shape.")
@click.option("--prelude", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Serve this transcript (or node Markdown log) first, on the same connections, for a "
                   "TRANSCRIPT that starts on an open channel: e.g. the init_per_group log of a node log's "
                   "group. Frame numbers in reports count the prelude's frames first.")
@click.option("--rebind", is_flag=True,
              help="Serve clients with their own accounts: map the recorded initiator_id/responder_id (from "
                   "each client's URL), the channel id and the signatures to the clients' in every frame and "
                   "tx_ blob (re-encoded); state_hash and proofs pass through unchanged. -v prints the mapping.")
@click.option("--network-id", "network_ids", multiple=True, metavar="ID",
              help="With --rebind: the network id the clients sign with (repeatable; default: ae_mainnet, "
                   "ae_uat, ae_devnet, ae_chanlog_replay, the first that verifies).")
@click.option("--record-mode", type=click.Choice(RECORD_MODES), default="none", show_default=True,
              help="none: serve TRANSCRIPT (an error when it is missing); once: record it from --node when it does "
                   "not exist, else serve it; all: always record, replacing it. Recording runs mitmdump with the "
                   "recorder (the record extra) in front of --node on the same --host/--port and prints the same URL "
                   "line; it ends once every connection has closed and none opened for --grace seconds (--sessions 0: "
                   "only when interrupted), and writes TRANSCRIPT only when complete.")
@click.option("--node", metavar="URL", default=None,
              help="The node to record from (ws://HOST:PORT/channel; wss:// too), for --record-mode once|all.")
def replay_command(transcript: Path, host: str, port: int, mode: str, timeout: float, grace: float,
                   sessions: int, allow_partial: bool, verbose: int, compat: str | None = None,
                   prelude: Path | None = None, rebind: bool = False, network_ids: tuple[str, ...] = (),
                   record_mode: str = "none", node: str | None = None) -> None:
    """Serve TRANSCRIPT (a YAML transcript, or a node Markdown log imported on the fly) as a fake node.

    The URL (ws://HOST:PORT/channel) is printed on standard output once the node listens. Each client
    connection gives its role in the query (role=initiator|responder); the Nth connection of a role
    plays that role's Nth recorded connection. The node sends what the recorded node sent, answers
    requests with the client's own JSON-RPC id, answers channels.system pings at any time, and checks
    every client frame (chanlog.replay.matchers). A divergence is sent to the client as a JSON-RPC error,
    reported on standard error, and makes the command exit 1 after its last session. Several
    sessions may run at once when clients add chanlog_session=KEY to the URL.

    With --rebind a client may use its own accounts (chanlog.replay.rebind): the ids in its URL replace
    the recorded ones everywhere, the channel id is recomputed, the signatures it returns are checked
    against its account and forwarded; changed amounts, reserve, push amount or lock period are followed
    in the channel_create_tx and the balances derived from them; a value it cannot follow (not an integer,
    changed within a session) is a divergence naming the parameter. state_hash and proofs pass through.

    With --record-mode once|all and --node URL (chanlog.replay.modes; names as in pytest-recording) the
    command records TRANSCRIPT from the node instead when it is missing (once) or always (all): the same
    command line serves the recording on later runs. The replay options (--mode, --compat, --rebind,
    --prelude, ...) apply when serving. Exit status when recording: 0 TRANSCRIPT written; 1 the node
    unreachable, or the recording incomplete (nothing recorded, a session left open, frames lost): then
    TRANSCRIPT is not written.
    """
    from chanlog.replay import FakeNode, load_transcript, starts_on_open_channel, with_prelude
    from chanlog.replay.modes import RecordMode, missing

    setup_logging(verbose)
    chosen = RecordMode(record_mode)
    if chosen.records(transcript):
        _record(transcript, node, host, port, grace, sessions, chosen)
        return
    if not transcript.exists():
        raise missing(transcript)
    loaded = load_transcript(transcript)
    if prelude is not None:
        opening = load_transcript(prelude)
        frames = sum(1 for _ in opening.frames())
        loaded = with_prelude(opening, loaded)
        click.echo(f"chanlog replay: --prelude {prelude}: its {frames} frames come first; frame N of "
                   f"{transcript.name} is frame N+{frames} in reports", err=True)
    elif starts_on_open_channel(loaded):
        click.echo(f"chanlog replay: {transcript.name} starts on an open channel: a client cannot open it; "
                   "serve the log that opened it first with --prelude (e.g. its group's init_per_group.md)",
                   err=True)
    transform = None
    if compat is not None:
        from chanlog.replay.compat import transformer

        transform = transformer(compat)
        click.echo(f"chanlog replay: --compat {compat}: serving a TRANSFORMED transcript", err=True)
    if network_ids and not rebind:
        raise click.UsageError("--network-id needs --rebind")
    node = FakeNode(loaded, host=host, port=port, mode=mode, timeout=timeout, grace=grace,
                    sessions=sessions or None, transform=transform, rebind=rebind, network_ids=network_ids)
    ok = asyncio.run(_serve(node, allow_partial))
    sys.exit(0 if ok else 1)


def _record(transcript: Path, node: str | None, host: str, port: int, grace: float, sessions: int,
            chosen: RecordMode) -> None:
    """--record-mode once|all: record TRANSCRIPT from NODE (chanlog.replay.modes.record), the URL on stdout."""
    import threading

    from chanlog.replay.modes import RecordMode, record

    if node is None:
        raise click.UsageError(f"--record-mode {chosen.value} records {transcript}"
                               f"{' (it does not exist)' if chosen is RecordMode.ONCE else ''}: give the node "
                               "to record from with --node ws://HOST:PORT/channel")
    from chanlog.record.process import ProcessError, node_parts

    try:
        node_parts(node)
    except ProcessError as exc:
        raise click.BadParameter(f"{node!r}: {exc.message}", param_hint="--node") from None
    if str(transcript) == "-":
        raise click.UsageError("a recording is written to a file (TRANSCRIPT), not to standard output")
    if sessions > 1:
        raise click.UsageError("a recording is served as one session (every channel session of the run in one "
                               "transcript): --sessions 1 (until every connection closed) or 0 (until interrupted)")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def show(url: str) -> None:
        click.echo(url)
        sys.stdout.flush()
        click.echo(f"chanlog replay: --record-mode {chosen.value}: recording {transcript} from {node} "
                   "(mitmdump with the recorder in front of it)", err=True)

    done = record(transcript, node, host=host, port=port, grace=grace, on_url=show, stop=stop,
                  until_stopped=sessions == 0)
    click.echo(f"chanlog replay: recorded {len(done.sessions)} channel session(s) ({done.connections} connections, "
               f"{done.frames} frames) from {node} into {done.path}", err=True)


async def _serve(node, allow_partial: bool) -> bool:  # noqa: ANN001 - FakeNode, imported lazily
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - platforms without signals
            pass
    url = await node.start()
    click.echo(url)
    sys.stdout.flush()
    waiter = asyncio.create_task(node.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    stopper.cancel()
    await node.stop()
    for report in node.reports:
        click.echo(report.summary(), err=True)
    for refused in node.refused:
        click.echo(f"refused: {refused.role} connection {refused.nth}: {refused.reason}", err=True)
    if not node.reports:
        click.echo("no session was played: no client connected", err=True)
    return node.ok(allow_partial)
