"""The pytest plugin's record modes through pytester and the real mitmdump: ``--chanlog-record-mode`` and
``--chanlog-node`` (or the marker's ``node=``); the first run records the marker's path, later runs serve it."""

from __future__ import annotations

# pytester's in-process runs remove the modules a run imported; C extensions (PyYAML's, websockets') do not
# survive being imported twice, so the modules the inner tests use are imported here, once.
import websockets.asyncio.client  # noqa: F401
import websockets.asyncio.server  # noqa: F401
import websockets.sync.client  # noqa: F401
from conftest import EXAMPLE
from test_record_mode import need_mitmdump

import chanlog.record.combine  # noqa: F401
import chanlog.replay  # noqa: F401
import chanlog.replay.modes  # noqa: F401
import chanlog.replay.player  # noqa: F401
import chanlog.transcript  # noqa: F401
from chanlog.diff import diff_transcripts
from chanlog.replay import load_transcript, serve_in_thread
from chanlog.transcript import load

pytest_plugins = ["pytester"]

TEST = f'''
import pytest
from chanlog.replay.player import play
from chanlog.transcript import load

@pytest.mark.chanlog("cassettes/open_close.yaml"{{node}})
def test_client(chanlog_url):
    assert play(load(r"{EXAMPLE}"), chanlog_url, timeout=10).ok
'''


def test_the_first_run_records_and_later_runs_replay(pytester) -> None:
    need_mitmdump()
    node = serve_in_thread(load_transcript(EXAMPLE), sessions=1, timeout=10)
    try:
        pytester.makepyfile(TEST.replace("{node}", ""))
        fixture = pytester.path / "cassettes" / "open_close.yaml"
        pytester.runpytest("--chanlog-record-mode", "once", "--chanlog-node", node.url,
                           "-p", "no:cacheprovider").assert_outcomes(passed=1)
        assert diff_transcripts(load_transcript(EXAMPLE), load(fixture)) == []
        assert node.reports and node.reports[0].all_played  # the recorded run reached the node
    finally:
        node.stop()
    stamp = fixture.stat().st_mtime_ns
    # the node is gone: the same command line now replays, and so does the default mode (none)
    pytester.runpytest("--chanlog-record-mode", "once", "--chanlog-node", node.url).assert_outcomes(passed=1)
    pytester.runpytest().assert_outcomes(passed=1)
    assert fixture.stat().st_mtime_ns == stamp


def test_a_missing_transcript_fails_in_mode_none_and_a_record_mode_needs_a_node(pytester) -> None:
    pytester.makepyfile(TEST.replace("{node}", ""))
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*open_close.yaml: no such transcript; record it*--chanlog-record-mode once*"])
    result = pytester.runpytest("--chanlog-record-mode", "all")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*record mode all records*--chanlog-node ws://HOST:PORT/channel*"])


def test_the_marker_names_the_node_and_an_unfinished_recording_fails_the_test(pytester) -> None:
    """The marker's node= is used; a client that leaves its connection open fails the test (after the
    marker's timeout) and no transcript is written."""
    need_mitmdump()
    node = serve_in_thread(load_transcript(EXAMPLE), sessions=1, timeout=10)
    url = load_transcript(EXAMPLE).events[0].url.split("?", 1)[1]
    try:
        pytester.makepyfile(f'''
import pytest
from websockets.sync.client import connect

held = []

@pytest.mark.chanlog("left_open.yaml", node="{node.url}", record_mode="once", timeout=1, grace=0.2)
def test_client(chanlog_url):
    held.append(connect(chanlog_url + "?{url}"))
    held[0].recv(timeout=10)
''')
        result = pytester.runpytest("-p", "no:cacheprovider")
    finally:
        node.stop()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*not a complete fixture*still had connections open when the recording stopped*"])
    assert not (pytester.path / "left_open.yaml").exists()
