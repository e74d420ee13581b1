"""The JavaScript example (``examples/js``): a ``node --test`` test of an SDK ``Channel`` that starts ``chanlog
replay FIXTURE --record-mode once`` as a child process and reads its URL line. Run as a newcomer runs it: the
first run records from a stand-in node (the shipped example served with the ``sdk14`` transformation, as
``chanlog replay --compat sdk14`` serves it; here a fake node in a thread of this process), later runs replay the
recording with no node at all.

The example's pinned SDK (the same version as ``tests/sdk``) comes from the shared test cache
(:func:`npm.install`); the example's files are copied as they are into a temporary folder beside a link to
that cache's ``node_modules``. Skips when node/npm, the SDK or mitmdump are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import npm
import pytest
from conftest import EXAMPLE, REPO
from test_record_mode import need_mitmdump

from chanlog.diff import diff_transcripts
from chanlog.replay import load_transcript, serve_in_thread
from chanlog.replay.compat import transformer
from chanlog.transcript import load

pytestmark = pytest.mark.e2e

FOLDER = REPO / "examples" / "js"
#: Seconds one run of the example may take.
RUN_TIMEOUT = 120


def test_the_example_pins_the_sdk_the_tests_drive() -> None:
    ours = json.loads((FOLDER / "package.json").read_text())
    assert ours["dependencies"] == npm.pinned(REPO / "tests" / "sdk")
    assert ours["scripts"]["test"] == "node --test"


def _run(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", "--test", "channel.test.mjs"], cwd=folder, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env={**os.environ, "CHANLOG": f"{sys.executable} -m chanlog", **env})


def test_the_example_records_once_then_replays_without_a_node(tmp_path: Path) -> None:
    need_mitmdump()
    cache = npm.install(FOLDER, "sdk14", "to run the JavaScript example with the SDK")
    folder = tmp_path / "example"
    folder.mkdir()
    # copied, not linked: Node.js resolves a linked main module to its real path, and imports from there
    shutil.copyfile(FOLDER / "channel.test.mjs", folder / "channel.test.mjs")
    shutil.copyfile(FOLDER / "package.json", folder / "package.json")
    (folder / "node_modules").symlink_to(cache / "node_modules")
    fixture = tmp_path / "fixtures" / "open_channel.yaml"

    stand_in = serve_in_thread(load_transcript(EXAMPLE), transform=transformer("sdk14"), timeout=10)
    try:
        first = _run(folder, CHANLOG_NODE=stand_in.url, CHANLOG_FIXTURE=str(fixture))
    finally:
        stand_in.stop()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "recorded 1 channel session(s) (2 connections" in first.stdout + first.stderr
    assert stand_in.reports and stand_in.reports[0].all_played and not stand_in.divergences
    recorded = load(fixture)
    assert recorded.source["node"] == stand_in.url
    # what the SDK sent and the stand-in answered, nothing else: the stand-in's frames in the recorded order
    assert [f.method for _, f in recorded.frames() if f.sender == "client"] == [
        "channels.initiator_sign", "channels.responder_sign", "channels.message", "channels.message",
        "channels.get.balances"]
    stamp = fixture.stat().st_mtime_ns

    again = _run(folder, CHANLOG_NODE="ws://127.0.0.1:9/channel", CHANLOG_FIXTURE=str(fixture))
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "played to the end" in out and "0 divergences" in out and "recording" not in out
    assert fixture.stat().st_mtime_ns == stamp
    assert diff_transcripts(recorded, load(fixture)) == []


def test_the_example_fails_in_mode_none_without_its_fixture(tmp_path: Path) -> None:
    cache = npm.install(FOLDER, "sdk14", "to run the JavaScript example with the SDK")
    shutil.copyfile(FOLDER / "channel.test.mjs", tmp_path / "channel.test.mjs")
    (tmp_path / "node_modules").symlink_to(cache / "node_modules")
    done = _run(tmp_path, CHANLOG_RECORD_MODE="none", CHANLOG_FIXTURE=str(tmp_path / "absent.yaml"))
    assert done.returncode != 0
    assert "absent.yaml: no such transcript; record it" in done.stdout + done.stderr
