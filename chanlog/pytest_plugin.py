"""pytest plugin (``pytest11`` entry point ``chanlog``): serve a transcript as a fake node in a test.

Mark a test with the transcript and ask for the URL; the fake node (:class:`chanlog.replay.FakeNode`)
runs in a background thread of the test's process on ``127.0.0.1``, port 0::

    @pytest.mark.chanlog("transcripts/init_per_group.yaml")
    def test_my_client_opens_a_channel(chanlog_url):
        run_my_client(chanlog_url)          # ws://127.0.0.1:PORT/channel; add ?role=initiator|responder

After the test body, the test **fails** when the client diverged from the transcript (the divergence
reports are the failure message) or left part of the script unplayed; ``allow_partial=True`` on the
marker (or ``--chanlog-allow-partial``) accepts partial play. A test body that failed by itself keeps
its own failure.

Marker ``chanlog(transcript, *, mode="strict", timeout=30, grace=2, allow_partial=False,
transform=None, sessions=1, prelude=None)``: ``transcript`` is a path (YAML transcript or node Markdown log)
relative to the test file's directory, then to the rootdir, or a :class:`~chanlog.model.Transcript`;
``prelude`` (the same kinds) is served first, on the same connections, for a transcript that starts on an
open channel (:func:`chanlog.replay.with_prelude`; e.g. the node logs' ``init_per_group``)::

    @pytest.mark.chanlog("corpus/json-rpc/continuous/sc_ws_deposit.md",
                         prelude="corpus/json-rpc/continuous/init_per_group.md")

Fixtures, each small and overridable in a ``conftest.py``: ``chanlog_transcript`` (the
:class:`~chanlog.model.Transcript` to serve), ``chanlog_options`` (the :class:`FakeNode` options and
``allow_partial``), ``chanlog_node`` (the running :class:`~chanlog.replay.NodeThread`), ``chanlog_url``.
Command-line options (group ``chanlog``): ``--chanlog-mode``, ``--chanlog-timeout``,
``--chanlog-allow-partial``; the marker's keywords win over them.

Record once, replay on every run (:mod:`chanlog.replay.modes`; pytest-recording's names):
``--chanlog-record-mode none|once|all`` and ``--chanlog-node ws://HOST:PORT/channel`` (or the marker's
``node=`` / ``record_mode=``). In mode ``once`` a test whose marker path does not exist records it: its
client talks to the node through the recorder (mitmdump, the ``record`` extra) at ``chanlog_url``, and the
transcript is written after the body (the test fails when the recording is incomplete); later runs serve it.
``all`` records every time; ``none`` (the default) fails a test whose transcript is missing, saying how to
record it. ``rebind=True`` on the marker (with
``network_ids=(...)`` when needed) serves a client with its own accounts (:mod:`chanlog.replay.rebind`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chanlog.model import Transcript

NODE_KEY = pytest.StashKey[tuple]()
RECORDER_KEY = pytest.StashKey[Any]()
MARKER = "chanlog"
#: How long teardown waits for scripts under way to reach their end before judging (seconds).
SETTLE = 2.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chanlog", "chanlog fake node (replay a channel transcript)")
    group.addoption("--chanlog-mode", choices=("strict", "lenient"), default=None,
                    help="Matching mode of fake nodes started by @pytest.mark.chanlog (default: strict).")
    group.addoption("--chanlog-timeout", type=float, default=None,
                    help="Seconds a fake node waits for an expected client frame (default: 30).")
    group.addoption("--chanlog-allow-partial", action="store_true", default=False,
                    help="Do not fail tests whose client left part of the transcript unplayed.")
    group.addoption("--chanlog-record-mode", choices=("none", "once", "all"), default=None,
                    help="none (default): serve the marker's transcript (a test fails when it is missing); once: "
                         "record it from the node when it does not exist, else serve it; all: always record it "
                         "again (pytest-recording's names; chanlog.replay.modes).")
    group.addoption("--chanlog-node", metavar="URL", default=None,
                    help="The node to record from (ws://HOST:PORT/channel) in record mode once|all; the marker's "
                         "node= wins.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chanlog(transcript, mode='strict', timeout=30, grace=2, allow_partial=False, transform=None, sessions=1, "
        "prelude=None, node=None, record_mode=None): "
        "serve the transcript as a fake node for this test (fixtures chanlog_url, chanlog_node); the test fails "
        "when the client diverges or leaves the script unfinished.",
    )


def _marker(request: pytest.FixtureRequest) -> pytest.Mark | None:
    return request.node.get_closest_marker(MARKER)


@pytest.fixture
def chanlog_transcript(request: pytest.FixtureRequest) -> Transcript:
    """The transcript to serve: the ``chanlog`` marker's first argument (a path relative to the test
    file's directory or the rootdir, or a Transcript), after the marker's ``prelude`` when given.
    Override to build one in code."""
    mark = _marker(request)
    if mark is None or not mark.args:
        pytest.fail("chanlog: mark the test with @pytest.mark.chanlog(TRANSCRIPT) or override the "
                    "chanlog_transcript fixture", pytrace=False)
    source = mark.args[0]
    transcript = _load(request, source)
    prelude = mark.kwargs.get("prelude")
    if prelude is not None:
        from chanlog.replay import with_prelude

        transcript = with_prelude(_load(request, prelude), transcript)
    return transcript


def _load(request: pytest.FixtureRequest, source: Any) -> Transcript:
    """``source`` (a Transcript, or a path relative to the test file's directory, then the rootdir)."""
    from chanlog.replay import load_transcript

    if isinstance(source, Transcript):
        return source
    return load_transcript(_path(request, source))


def _path(request: pytest.FixtureRequest, source: Any) -> Path:
    """``source`` relative to the test file's directory, then the rootdir (the first that exists; the test
    file's directory when neither does)."""
    path = Path(source)
    if not path.is_absolute():
        candidates = [Path(request.node.path).parent / path, Path(request.config.rootpath) / path]
        path = next((p for p in candidates if p.exists()), candidates[0])
    return path


@pytest.fixture
def chanlog_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Options for the fake node (``mode``, ``timeout``, ``grace``, ``sessions``, ``transform``, ``rebind``,
    ``network_ids``) and the
    verdict (``allow_partial``): defaults, then the command line, then the marker's keywords."""
    config = request.config
    options: dict[str, Any] = {"mode": "strict", "timeout": 30.0, "grace": 2.0, "sessions": 1, "transform": None,
                               "allow_partial": False, "rebind": False, "network_ids": None}
    if config.getoption("chanlog_mode"):
        options["mode"] = config.getoption("chanlog_mode")
    if config.getoption("chanlog_timeout") is not None:
        options["timeout"] = config.getoption("chanlog_timeout")
    if config.getoption("chanlog_allow_partial"):
        options["allow_partial"] = True
    mark = _marker(request)
    if mark is not None:
        unknown = set(mark.kwargs) - set(options) - RECORD_KEYWORDS
        if unknown:
            pytest.fail(f"chanlog marker: unknown option(s) {', '.join(sorted(unknown))} "
                        f"(known: {', '.join(options)})", pytrace=False)
        options.update((k, v) for k, v in mark.kwargs.items() if k not in RECORD_KEYWORDS)
    return options


#: Marker keywords that are not fake node options: the prelude served first, and the record mode's.
RECORD_KEYWORDS = {"prelude", "node", "record_mode"}


def _recording(request: pytest.FixtureRequest) -> tuple[Path, str | None, Any] | None:
    """``(transcript path, node URL, mode)`` when this test records (record mode once with the marker's
    transcript missing, or all), else ``None``; fails the test when the transcript is missing in mode none."""
    from chanlog.replay.modes import RecordMode, missing

    mark = _marker(request)
    if mark is None or not mark.args or isinstance(mark.args[0], Transcript):
        return None
    path = _path(request, mark.args[0])
    mode = RecordMode(mark.kwargs.get("record_mode") or request.config.getoption("chanlog_record_mode") or "none")
    node = mark.kwargs.get("node") or request.config.getoption("chanlog_node")
    if mode.records(path):
        if node is None:
            pytest.fail(f"chanlog: record mode {mode.value} records {path}: give the node to record from with "
                        "--chanlog-node ws://HOST:PORT/channel or the marker's node=", pytrace=False)
        return path, node, mode
    if not path.exists():
        pytest.fail(str(missing(path, "--chanlog-record-mode once --chanlog-node ws://HOST:PORT/channel (or the "
                                      "marker's node=)")), pytrace=False)
    return None


@pytest.fixture
def chanlog_node(request: pytest.FixtureRequest, chanlog_options: dict[str, Any]):
    """The fake node serving ``chanlog_transcript`` on ``127.0.0.1``, port 0, in a background thread
    (a :class:`~chanlog.replay.NodeThread`); stopped at teardown. The test's verdict is given after
    its body (see the module docstring). When the test records (record mode), a
    :class:`chanlog.replay.modes.Recorder` (mitmdump in front of the node, on ``127.0.0.1``, port 0) instead,
    with the same ``url``; the transcript is written after a body that passed, once every connection
    closed (nothing is written for a failed body)."""
    from chanlog.replay import serve_in_thread

    recording = _recording(request)
    if recording is not None:
        from chanlog.replay.modes import Recorder

        path, node_url, _ = recording
        path.parent.mkdir(parents=True, exist_ok=True)
        recorder = Recorder(path, node_url, grace=chanlog_options["grace"])
        recorder.start()
        request.node.stash[RECORDER_KEY] = (recorder, chanlog_options["timeout"])
        try:
            yield recorder
        finally:
            recorder.close()
        return
    chanlog_transcript = request.getfixturevalue("chanlog_transcript")
    options = {k: v for k, v in chanlog_options.items() if k != "allow_partial"}
    node = serve_in_thread(chanlog_transcript, **options)
    request.node.stash[NODE_KEY] = (node, bool(chanlog_options.get("allow_partial")))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def chanlog_url(chanlog_node: Any) -> str:
    """``ws://127.0.0.1:PORT/channel`` of the test's fake node (add ``?role=initiator|responder``)."""
    return chanlog_node.url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    recording = item.stash.get(RECORDER_KEY, None)
    if recording is not None:
        from chanlog.replay.modes import RecordingError

        recorder, timeout = recording
        recorder.settle(timeout)
        try:
            recorder.finish()
        except RecordingError as exc:
            pytest.fail(f"chanlog: {exc}", pytrace=False)
        return result
    entry = item.stash.get(NODE_KEY, None)
    if entry is not None:
        node, allow_partial = entry
        node.stop(settle=min(SETTLE, node.node.timeout))
        verdict = judge(node, allow_partial)
        if verdict:
            pytest.fail(verdict, pytrace=False)
    return result


def judge(node: Any, allow_partial: bool = False) -> str:
    """The failure message for a stopped fake node, or ``""`` when the client played as recorded."""
    problems = []
    for report in node.reports:
        for divergence in report.divergences:
            problems.append(divergence.format())
        if report.unfinished and not allow_partial:
            problems.append("the client left the script unfinished:\n" +
                            "\n".join(f"  {u}" for u in report.unfinished))
    for refused in node.node.refused:
        problems.append(f"refused a connection: {refused.role} connection {refused.nth}: {refused.reason}")
    if not node.reports and not allow_partial:
        problems.append("no client connected to the fake node")
    if not problems:
        return ""
    name = node.node.transcript.name
    return f"chanlog: the client did not play transcript {name!r} as recorded\n" + "\n\n".join(problems)
