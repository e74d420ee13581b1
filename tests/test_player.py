"""The client player against the fake node: every corpus log and the example play to the end in strict
mode; wrong, declined and missing client frames produce the divergence report; the player notices a
node that says something else."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys

import pytest
from conftest import EXAMPLE, REPO, corpus_params

from chanlog.model import Frame, Transcript
from chanlog.replay import FakeNode, ReplayError, serve_in_thread
from chanlog.replay.matchers import Mode
from chanlog.replay.player import Player, aplay, play
from chanlog.transcript import dump, load

try:
    from chanlog.sources.nodelog import import_file
except ImportError:  # the importer is another module; without it the corpus cannot be read
    import_file = None


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def play_against(served: Transcript, played: Transcript, *, mode: str = "strict", timeout: float = 10,
                       grace: float = 2.0, node_timeout: float | None = None):
    """Serve ``served``, play ``played`` against it; both reports."""
    async with FakeNode(served, mode=mode, timeout=node_timeout or timeout, grace=grace) as node:
        report = await aplay(played, node.url, mode=mode, timeout=timeout)
        await node.wait(timeout)
    return report, node.reports[0]


def frame_of(transcript: Transcript, role: str, sender: str, method: str) -> tuple[int, Frame]:
    for number, frame in transcript.frames():
        if frame.role == role and frame.sender == sender and frame.method == method:
            return number, frame
    raise LookupError(method)


def assert_played_to_the_end(transcript: Transcript, report, node_report) -> None:
    assert report.ok, "\n".join(d.format() for d in report.divergences)
    assert node_report.ok(), node_report.summary()
    frames = sum(1 for _ in transcript.frames())
    not_json = sum(1 for _, f in transcript.frames() if not f.is_json)
    # every client frame arrived and matched; every node frame (or a pong answering a ping) was received
    assert report.sent == node_report.received
    assert report.received == node_report.sent + node_report.pongs
    assert report.sent + report.received + not_json == frames
    assert report.connections == len(transcript.connections())


def test_example_plays_to_the_end_in_strict_mode():
    transcript = load(EXAMPLE)
    report, node_report = run(play_against(transcript, transcript))
    assert_played_to_the_end(transcript, report, node_report)


@pytest.mark.parametrize("log", corpus_params())
def test_corpus_log_plays_to_the_end_in_strict_mode(log):
    if import_file is None:
        pytest.skip("chanlog.sources.nodelog is not available yet")
    transcript = import_file(log)
    report, node_report = run(play_against(transcript, transcript))
    assert_played_to_the_end(transcript, report, node_report)


# -- divergences ---------------------------------------------------------------------------------------------------


def test_wrong_client_frame_produces_the_divergence_report():
    served = load(EXAMPLE)
    played = copy.deepcopy(served)
    number, message = frame_of(played, "initiator", "client", "channels.message")
    message.data["params"]["info"] = "something else"
    report, node_report = run(play_against(served, played))
    [divergence] = node_report.divergences
    assert divergence.frame == number and divergence.method == "channels.message"
    assert divergence.expected == frame_of(served, "initiator", "client", "channels.message")[1].wire()
    assert json.loads(divergence.arrived) == message.data
    assert "params.info" in divergence.reason
    assert '-    "info": "Hello",' in divergence.diff and '+    "info": "something else",' in divergence.diff
    # the client got it as a JSON-RPC error and stopped
    [seen] = report.divergences
    assert seen.role == "initiator" and "the node reported a divergence" in seen.reason and f"frame {number}" in seen.reason


def test_declined_signature_produces_the_divergence_report():
    served = load(EXAMPLE)
    played = copy.deepcopy(served)
    number, reply = frame_of(played, "responder", "client", "channels.responder_sign")
    reply.data["params"] = {"error": 147}
    report, node_report = run(play_against(served, played))
    [divergence] = node_report.divergences
    assert divergence.frame == number and divergence.role == "responder"
    assert "declined" in divergence.reason and "error 147" in divergence.reason
    assert '"error": 147' in divergence.diff
    assert not report.ok and report.divergences[0].role == "responder"


def test_missing_frame_produces_the_divergence_report_naming_the_slot():
    served = load(EXAMPLE)
    played = copy.deepcopy(served)
    number, message = frame_of(played, "initiator", "client", "channels.message")
    played.events.remove(message)
    report, node_report = run(play_against(served, played, node_timeout=1))
    timeouts = [d for d in node_report.divergences if d.frame == number]
    assert timeouts, node_report.summary()
    assert "no frame arrived within 1 s" in timeouts[0].reason
    assert f"frame {number} (channels.message)" in timeouts[0].reason
    assert not report.ok


def test_player_notices_a_node_frame_that_differs():
    played = load(EXAMPLE)
    served = copy.deepcopy(played)
    number, update = frame_of(served, "responder", "node", "channels.update")
    update.data["params"]["data"]["state"] = "tx_changed"
    report, _ = run(play_against(served, played))
    [divergence] = report.divergences
    assert divergence.sender == "node" and divergence.frame == number and divergence.role == "responder"
    assert "params.data.state" in divergence.reason
    assert '+      "state": "tx_changed"' in divergence.diff
    assert "responder <--- node" in divergence.format()


def test_lenient_player_compares_methods_only():
    played = load(EXAMPLE)
    served = copy.deepcopy(played)
    _, update = frame_of(served, "responder", "node", "channels.update")
    update.data["params"]["data"]["state"] = "tx_changed"
    report, node_report = run(play_against(served, played, mode="lenient"))
    assert report.ok and node_report.ok()


# -- sessions, URLs, the command ---------------------------------------------------------------------------------------


def test_concurrent_plays_share_one_fake_node_through_session_keys():
    transcript = load(EXAMPLE)

    async def scenario():
        async with FakeNode(transcript, sessions=4, timeout=10) as node:
            reports = await asyncio.gather(*(aplay(transcript, node.url, session=f"s{i}") for i in range(4)))
            await node.wait(10)
        return reports, node.reports

    reports, node_reports = run(scenario())
    assert all(r.ok for r in reports)
    assert [r.number for r in node_reports] == [1, 2, 3, 4] and all(r.ok() for r in node_reports)


def test_connection_urls_carry_the_recorded_query_or_the_role_alone():
    transcript = load(EXAMPLE)
    player = Player(transcript, "ws://127.0.0.1:9/channel", session="k")
    initiator = player.script.roles["initiator"][0]
    recorded = transcript.events[0].url.split("?", 1)[1]
    assert player.connection_url(initiator) == f"ws://127.0.0.1:9/channel?{recorded}&chanlog_session=k"
    mid_channel = Transcript(events=[Frame(role="responder", conn=0, sender="node", data={"a": 1}, fmt="compact")])
    cs = Player(mid_channel, "ws://h:1/channel?x=1").script.roles["responder"][0]
    assert Player(mid_channel, "ws://h:1/channel?x=1").connection_url(cs) == "ws://h:1/channel?x=1&role=responder"


def test_play_raises_when_the_node_cannot_be_reached():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ReplayError, match="cannot open initiator connection 1"):
        play(load(EXAMPLE), f"ws://127.0.0.1:{port}/channel", timeout=2)


def test_play_command_against_a_fake_node_in_a_thread(tmp_path):
    from click.testing import CliRunner

    from chanlog.cli import main

    transcript = load(EXAMPLE)
    with serve_in_thread(transcript, timeout=10) as node:
        good = CliRunner().invoke(main, ["play", str(EXAMPLE), "--url", node.url])
        node.wait(10)
    assert good.exit_code == 0, good.output
    assert "init_per_group: played to the end" in good.output

    wrong = copy.deepcopy(transcript)
    number, message = frame_of(wrong, "initiator", "client", "channels.message")
    message.data["params"]["info"] = "other"
    path = tmp_path / "wrong.yaml"
    dump(wrong, path)
    with serve_in_thread(transcript, timeout=10) as node:
        bad = CliRunner().invoke(main, ["play", str(path), "--url", node.url])
    assert bad.exit_code == 1
    assert "diverged" in bad.output and f"frame {number}" in bad.output


def test_play_help_lists_exit_codes():
    from click.testing import CliRunner

    from chanlog.cli import main

    result = CliRunner().invoke(main, ["play", "--help"])
    assert result.exit_code == 0 and "Exit status: 0" in result.output and "--url" in result.output


@pytest.mark.e2e
def test_replay_and_play_commands_as_processes(corpus):
    log = corpus / "json-rpc" / "sc_ws_leave_reconnect.md"  # reconnects: six initiator connections
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    replay = subprocess.Popen([sys.executable, "-m", "chanlog", "replay", str(log), "--port", "0", "--timeout", "10"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    try:
        url = replay.stdout.readline().strip()
        player = subprocess.run([sys.executable, "-m", "chanlog", "play", str(log), "--url", url, "--timeout", "10"],
                                capture_output=True, text=True, env=env, cwd=REPO, timeout=60)
        _, err = replay.communicate(timeout=60)
    finally:
        replay.kill()
    assert player.returncode == 0, player.stderr
    assert replay.returncode == 0, err
    assert "played to the end" in player.stdout and "played to the end" in err


def test_mode_enum_accepts_strings():
    assert Mode("lenient") is Mode.LENIENT and Mode.STRICT == "strict"
