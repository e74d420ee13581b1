"""The pytest plugin, run through pytester: marker, fixtures, options and the verdict after the test."""

from __future__ import annotations

# pytester's in-process runs remove the modules a run imported; C extensions (PyYAML's, websockets')
# do not survive being imported twice, so the modules the inner tests use are imported here, once.
import websockets.asyncio.client  # noqa: F401
import websockets.asyncio.server  # noqa: F401
import websockets.sync.client  # noqa: F401
from conftest import EXAMPLE

import chanlog.replay  # noqa: F401
import chanlog.replay.player  # noqa: F401
import chanlog.sources.nodelog  # noqa: F401
import chanlog.transcript  # noqa: F401

pytest_plugins = ["pytester"]

PLAY = f'''
import copy
import pytest
from chanlog.replay.player import play
from chanlog.transcript import load

EXAMPLE = load(r"{EXAMPLE}")
'''


def test_client_that_plays_to_the_end_passes(pytester):
    pytester.makepyfile(PLAY + f'''
@pytest.mark.chanlog(r"{EXAMPLE}")
def test_client(chanlog_url):
    assert chanlog_url.startswith("ws://127.0.0.1:") and chanlog_url.endswith("/channel")
    assert play(EXAMPLE, chanlog_url).ok
''')
    pytester.runpytest().assert_outcomes(passed=1)


def test_client_that_diverges_fails_with_the_report(pytester):
    pytester.makepyfile(PLAY + f'''
@pytest.mark.chanlog(r"{EXAMPLE}", timeout=5)
def test_client(chanlog_url):
    wrong = copy.deepcopy(EXAMPLE)
    frame = next(f for _, f in wrong.frames() if f.sender == "client" and f.method == "channels.message")
    frame.data["params"]["info"] = "not what was recorded"
    play(wrong, chanlog_url)  # the test itself does not look at the result
''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*chanlog: the client did not play transcript 'init_per_group' as recorded*",
        "*divergence at session 1, initiator connection 1, frame 17: the message differs at params.info*",
        "*+*not what was recorded*",
    ])


def test_unfinished_script_fails_unless_partial_play_is_allowed(pytester):
    pytester.makepyfile(PLAY + f'''
from websockets.sync.client import connect

def first_frame_only(url):
    with connect(url + "?role=initiator") as ws:
        ws.recv(timeout=5)

@pytest.mark.chanlog(r"{EXAMPLE}", grace=0.1)
def test_partial(chanlog_url):
    first_frame_only(chanlog_url)

@pytest.mark.chanlog(r"{EXAMPLE}", grace=0.1, allow_partial=True)
def test_partial_allowed(chanlog_url):
    first_frame_only(chanlog_url)
''')
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the client left the script unfinished*",
                                 "*responder connection 1 was never opened*"])
    pytester.runpytest("--chanlog-allow-partial").assert_outcomes(passed=2)


def test_overriding_the_transcript_fixture_and_a_relative_marker_path(pytester):
    pytester.makeconftest('''
import pytest
from chanlog.model import Frame, Open, Transcript

@pytest.fixture
def chanlog_transcript():
    return Transcript(name="tiny", events=[
        Open(role="initiator", conn=0, url="ws://localhost:3014/channel?role=initiator"),
        Frame(role="initiator", conn=0, sender="node", data={"jsonrpc": "2.0", "method": "channels.info",
              "params": {"channel_id": None, "data": {"event": "fsm_up"}}, "version": 1}, fmt="compact"),
    ])
''')
    pytester.makepyfile('''
import json
from websockets.sync.client import connect

def test_tiny(chanlog_url, chanlog_node):
    with connect(chanlog_url + "?role=initiator") as ws:
        assert json.loads(ws.recv(timeout=5))["params"]["data"]["event"] == "fsm_up"
''')
    pytester.runpytest().assert_outcomes(passed=1)


def test_marker_path_relative_to_the_test_file(pytester):
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "t.yaml").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    pytester.makepyfile(PLAY + '''
@pytest.mark.chanlog("data/t.yaml")
def test_client(chanlog_url, chanlog_transcript):
    assert chanlog_transcript.name == "init_per_group"
    assert play(chanlog_transcript, chanlog_url).ok
''')
    pytester.runpytest().assert_outcomes(passed=1)


def test_missing_marker_is_an_error_that_says_what_to_do(pytester):
    pytester.makepyfile('''
def test_client(chanlog_url):
    pass
''')
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.chanlog(TRANSCRIPT)*"])


def test_a_failing_test_body_keeps_its_own_failure(pytester):
    pytester.makepyfile(PLAY + f'''
@pytest.mark.chanlog(r"{EXAMPLE}", grace=0.1)
def test_client(chanlog_url):
    assert 1 == 2, "the test's own assertion"
''')
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the test's own assertion*"])
    assert "did not play transcript" not in result.stdout.str()


def test_command_line_mode_and_marker_options(pytester):
    pytester.makepyfile(PLAY + f'''
@pytest.mark.chanlog(r"{EXAMPLE}", timeout=7)
def test_options(chanlog_options, chanlog_node):
    assert chanlog_options["mode"] == "lenient" and chanlog_options["timeout"] == 7
    assert chanlog_node.node.mode == "lenient" and chanlog_node.node.timeout == 7
    assert play(EXAMPLE, chanlog_node.url).ok

@pytest.mark.chanlog(r"{EXAMPLE}", colour="red")
def test_unknown_option(chanlog_url):
    pass
''')
    result = pytester.runpytest("--chanlog-mode", "lenient")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*unknown option(s) colour*"])


def test_help_shows_the_option_group(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*chanlog fake node*", "*--chanlog-mode*", "*--chanlog-allow-partial*"])
    markers = pytester.runpytest("--markers")
    markers.stdout.fnmatch_lines(["*@pytest.mark.chanlog(transcript*"])


def test_marker_prelude_serves_a_log_that_starts_on_an_open_channel(pytester):
    from conftest import CORPUS

    group = CORPUS / "json-rpc" / "continuous"
    if not group.is_dir():
        import pytest

        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    test_log, prelude = group / "sc_ws_deposit.md", group / "init_per_group.md"
    pytester.makepyfile(PLAY + f'''
from chanlog.sources.nodelog import import_file
from chanlog.replay import with_prelude

@pytest.mark.chanlog(r"{test_log}", prelude=r"{prelude}", timeout=10)
def test_client(chanlog_url, chanlog_transcript):
    assert chanlog_transcript.source["prelude"]["name"] == "init_per_group"
    assert play(with_prelude(import_file(r"{prelude}"), import_file(r"{test_log}")), chanlog_url).ok
    assert sum(1 for _ in chanlog_transcript.frames()) == 30 + 64
''')
    pytester.runpytest().assert_outcomes(passed=1)
