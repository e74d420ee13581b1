"""Exit codes and error lines of every command (issue 26): as the README's "Commands" section says, a
domain error (an input file missing or not what it should be, nothing listening at a URL) is one line
``chanlog: error: ...`` with exit status 1 and no traceback; bad usage exits 2. ``chanlog diff`` follows
diff(1) (1 means the inputs differ, so trouble is 2), and takes node logs as render, replay and play do."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, need_example

from chanlog import transcript as tmod
from chanlog.cli import main
from chanlog.model import Close, Frame, Note, Open, Transcript
from chanlog.sources.nodelog import StreamedLog
from chanlog.urls import ws_endpoint

#: Garbage for every input: a control character YAML refuses, a line that is no log heading nor JSON record.
GARBAGE = "garbage: [\n\x01 not a transcript, a log nor a journal\n"
#: A URL where nothing listens is built per test (a port bound and not listening refuses connections).

#: Per command: (arguments with a missing input, arguments with a garbage input); {missing} / {garbage}
#: are replaced by paths with the right suffix. None: the command reads no input file.
CASES: dict[str, tuple[list[str], list[str]] | None] = {
    "import": (["{missing}.md"], ["{garbage}.md"]),
    "export": (["{missing}.yaml", "--har"], ["{garbage}.yaml", "--har"]),
    "render": (["{missing}.yaml"], ["{garbage}.yaml"]),
    "decode": (["tx_{missing}"], ["zz_garbage"]),  # no file: a blob that is not one is the domain error
    "recover": (["{missing}.jsonl"], ["{garbage}.jsonl"]),
    "diff": (["{missing}.yaml", "{garbage}.yaml"], ["{garbage}.md", "{garbage}.yaml"]),
    "replay": (["{missing}.yaml", "--port", "0"], ["{garbage}.yaml", "--port", "0"]),
    "play": (["{missing}.yaml", "--url", "ws://127.0.0.1:9/channel"],
             ["{garbage}.yaml", "--url", "ws://127.0.0.1:9/channel"]),
    "demo": (["--transcript", "{missing}.yaml"], ["--transcript", "{garbage}.yaml"]),
    "addon-path": None,
}
#: What a domain error exits with, per command: 1 (the README), except diff's 2 (diff(1): 1 is "they differ").
DOMAIN_EXIT = {name: 2 if name == "diff" else 1 for name in CASES}


def _fill(args: list[str], tmp_path: Path) -> list[str]:
    for suffix in (".md", ".yaml", ".jsonl"):
        (tmp_path / f"garbage{suffix}").write_text(GARBAGE, encoding="utf-8")
    return [a.replace("{missing}", str(tmp_path / "missing")).replace("{garbage}", str(tmp_path / "garbage"))
            for a in args]


def test_every_command_has_a_case() -> None:
    assert set(main.commands) == set(CASES), "a new command needs its missing/garbage input case here"


@pytest.mark.parametrize("name", sorted(name for name, case in CASES.items() if case is not None))
@pytest.mark.parametrize("kind", ["missing", "garbage"])
def test_domain_errors_are_one_line(name: str, kind: str, tmp_path: Path) -> None:
    case = CASES[name]
    assert case is not None
    args = _fill(case[0] if kind == "missing" else case[1], tmp_path)
    result = CliRunner().invoke(main, [name, *args])
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == DOMAIN_EXIT[name], result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chanlog: error: "), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    if kind == "missing" and name != "decode":
        # the file is named, and why: the system's words, or replay's own (record modes: how to record it)
        assert "missing" in lines[0] and ("No such file" in lines[0] or "no such transcript" in lines[0])


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_usage_exits_2(name: str) -> None:
    runner = CliRunner()
    result = runner.invoke(main, [name, "--no-such-option"])
    assert result.exit_code == 2 and "No such option" in result.stderr and "Usage:" in result.stderr
    assert runner.invoke(main, [name, "--help"]).exit_code == 0


def test_a_garbage_file_through_the_real_entry_point(tmp_path: Path) -> None:
    """The same through a real process: the interpreter prints no traceback and nothing after the line."""
    args = _fill(["{garbage}.yaml"], tmp_path)
    done = subprocess.run([sys.executable, "-m", "chanlog", "render", *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"chanlog: error: {args[0]}")


# -- diff takes node logs ------------------------------------------------------------------------------


def _node_log(transcript: Path, out: Path) -> Path:
    result = CliRunner().invoke(main, ["render", str(transcript), "--layout", "node", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


def _legacy_sample() -> Transcript:
    q = "initiator_id=ak_1&port=7&responder_id=ak_2&protocol=legacy"

    def frame(role: str, conn: int, sender: str, data: object) -> Frame:
        return Frame.from_wire(json.dumps(data), role=role, conn=conn, sender=sender)

    return Transcript(name="legacy", protocol="legacy", events=[
        Open(role="initiator", conn=0, url=f"ws://localhost:3014/channel?{q}&role=initiator"),
        frame("initiator", 0, "node", {"action": "info", "payload": {"event": "fsm_up"}}),
        Note(role="initiator", conn=0, text="The fsm is up <b>&</b> [running]"),
        Open(role="responder", conn=1, url=f"ws://localhost:3014/channel?{q}&role=responder"),
        frame("responder", 1, "node", {"action": "info", "payload": {"event": "fsm_up"}}),
        Frame(role="responder", conn=1, sender="client", text="not json ``` at all"),
        Frame(role="responder", conn=1, sender="node", binary=b"\x00\x01\xff"),
        Close(role="responder", conn=1, code=1000, closed_by="client"),
        Close(role="initiator", conn=0, code=1000, closed_by="client"),  # a log writes only the client's close
    ])


def test_diff_takes_a_node_log_as_either_input(tmp_path: Path) -> None:
    need_example()
    log = _node_log(EXAMPLE, tmp_path / "example.md")
    runner = CliRunner()
    for args in ([str(log), str(EXAMPLE)], [str(EXAMPLE), str(log)], [str(log), str(log)]):
        result = runner.invoke(main, ["diff", *args])
        assert result.exit_code == 0, result.output
        assert result.stdout == "" and result.stderr.startswith("equal: 2 connections, 30 frames")
    # standard input is told apart by its content: a log, then a transcript
    for source in (log, EXAMPLE):
        result = runner.invoke(main, ["diff", "-", str(EXAMPLE)], input=source.read_text(encoding="utf-8"))
        assert result.exit_code == 0, result.output
    changed = tmp_path / "changed.md"
    changed.write_text(log.read_text(encoding="utf-8").replace('"channel_accept"', '"channel_refused"', 1),
                       encoding="utf-8")
    result = runner.invoke(main, ["diff", str(changed), str(EXAMPLE), "-U", "0"])
    assert result.exit_code == 1
    assert f"- [{changed} frame" in result.stdout and "channel_refused" in result.stdout
    assert f"+ [{EXAMPLE} frame" in result.stdout and "channel_accept" in result.stdout


def test_diff_of_a_legacy_log_against_its_transcript(tmp_path: Path) -> None:
    """Beyond the example: the legacy protocol, notes with Markdown characters, a text frame that is not
    JSON and a binary frame all come back from the node layout equal; the log's protocol is known once
    it is read (``StreamedLog.head``)."""
    sample = tmp_path / "legacy.yaml"
    tmod.dump(_legacy_sample(), sample)
    log = _node_log(sample, tmp_path / "legacy.md")
    result = CliRunner().invoke(main, ["diff", str(sample), str(log)])
    assert result.exit_code == 0, result.output
    streamed = StreamedLog(log)
    assert [type(e).__name__ for e in streamed.events()] == [type(e).__name__ for e in _legacy_sample().events]
    assert streamed.head.protocol == "legacy" and streamed.position() == streamed.size
    other = tmp_path / "other.yaml"
    tmod.dump(Transcript(name="x", events=_legacy_sample().events), other)  # same events, json-rpc
    result = CliRunner().invoke(main, ["diff", str(log), str(other)])
    assert result.exit_code == 1 and result.stdout.splitlines()[0] == f"protocol: {log} legacy, {other} json-rpc"


# -- network errors: one line naming HOST:PORT ---------------------------------------------------------


@pytest.fixture
def refusing_port():
    """A TCP port on 127.0.0.1 bound and not listening: connections to it are refused (ECONNREFUSED)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_play_where_nothing_listens(tmp_path: Path, refusing_port: int) -> None:
    need_example()
    done = subprocess.run([sys.executable, "-m", "chanlog", "play", str(EXAMPLE), "--url",
                           f"ws://127.0.0.1:{refusing_port}/channel", "--timeout", "10"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"chanlog: error: cannot open initiator connection 1: nothing listens at 127.0.0.1:{refusing_port}\n"


def test_play_against_a_path_that_is_no_websocket(tmp_path: Path) -> None:
    need_example()
    from chanlog.replay import load_transcript
    from chanlog.replay.thread import serve_in_thread

    with serve_in_thread(load_transcript(EXAMPLE)) as node:
        _, host, port, _ = ws_endpoint(node.url)
        result = CliRunner().invoke(main, ["play", str(EXAMPLE), "--url", f"ws://{host}:{port}/elsewhere"])
    assert result.exit_code == 1
    assert result.stderr == (f"chanlog: error: cannot open initiator connection 1: {host}:{port} answered HTTP 404 "
                             "to the WebSocket upgrade of /elsewhere, not 101\n")


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/channel", "ws:///channel", "ws://127.0.0.1:99999/channel",
                                 "127.0.0.1:9"])
def test_play_refuses_what_is_no_websocket_url(url: str) -> None:
    need_example()
    result = CliRunner().invoke(main, ["play", str(EXAMPLE), "--url", url])
    assert result.exit_code == 2 and "Invalid value for '--url'" in result.stderr


def test_replay_on_a_port_in_use(tmp_path: Path) -> None:
    need_example()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "chanlog", "replay", str(EXAMPLE), "--port", str(port)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"chanlog: error: 127.0.0.1:{port}: cannot listen: the port is in use by another "
                           "process (--port 0 picks a free one)\n")


def test_ws_endpoint() -> None:
    assert ws_endpoint("ws://127.0.0.1:9/channel?a=1") == ("ws", "127.0.0.1", 9, "/channel")
    assert ws_endpoint("WSS://[::1]/c") == ("wss", "::1", 443, "/c")
    assert ws_endpoint("ws://node") == ("ws", "node", 80, "")
    for bad in ("http://a/b", "ws:///x", "ws://a:0/", "ws://a:65536/", "ws://a:port/", "a:9"):
        with pytest.raises(ValueError):
            ws_endpoint(bad)
