"""End to end with a real third-party client: the official JavaScript SDK against ``chanlog replay``.

``@aeternity/aepp-sdk`` 14.1.1 (the version pinned in ``tests/sdk/package.json``) is installed from the npm
registry into ``~/.cache/chanlog-tests/sdk14`` (``$CHANLOG_TEST_CACHE/sdk14`` when set; reused when present).
For each corpus log, ``chanlog replay --compat sdk14`` serves it (a real process on loopback) and
``tests/sdk/driver.mjs`` runs the SDK's ``Channel`` as initiator and responder, following the action
script :func:`chanlog.replay.actions.action_script` exports (what each participant's app did). Both must reach
the recorded end: the driver every step and every recorded node frame, the fake node every client frame
matched in strict mode (exit status 0).

Skips with the reason when ``node``/``npm`` are missing, Node.js is older than 18, the install fails (no
registry access) or the shared corpus is absent.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import subprocess
import sys
from pathlib import Path

import npm
import pytest
from conftest import CORPUS

from chanlog.importer import import_file
from chanlog.replay import compat
from chanlog.replay.actions import action_script
from chanlog.transcript import dump

pytestmark = pytest.mark.e2e

SDK_DIR = Path(__file__).resolve().parent / "sdk"
DRIVER = SDK_DIR / "driver.mjs"

#: The corpus logs the SDK plays, and what each one shows.
LOGS = {
    "json-rpc/both_sign/init_per_group.md": "channel opens",
    "json-rpc/sc_ws_basic_open_close.md": "transfers co-signed",
    "json-rpc/sc_ws_close_mutual.md": "mutual close",
    "json-rpc/sc_ws_update_with_meta.md": "off-chain updates with meta",
    "json-rpc/changeable_fee/sc_ws_set_fee_create.md": "channel_create_tx with a chosen fee",
}
DRIVER_TIMEOUT = 40
REPLAY_TIMEOUT = 15
#: Seconds the SDK stays connected after the recorded end in the ping test (its pings come every 10 s).
PING_LINGER = 21


@pytest.fixture(scope="module")
def sdk() -> Path:
    """The cache directory holding ``node_modules/@aeternity/aepp-sdk`` at the pinned version."""
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    return npm.install(SDK_DIR, "sdk14", "to run the JavaScript SDK")


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line of ``proc`` (its URL), or fail naming what it wrote on stderr."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
    if not sel.select(timeout):
        proc.kill()
        pytest.fail(f"chanlog replay printed no URL within {timeout} s: {proc.communicate()[1]}")
    line = proc.stdout.readline().strip()  # type: ignore[union-attr]
    if not line.startswith("ws://"):
        proc.kill()
        pytest.fail(f"chanlog replay printed {line!r} instead of its URL: {proc.communicate()[1]}")
    return line


@contextlib.contextmanager
def fake_node(transcript_path: Path, *extra: str):
    """``chanlog replay TRANSCRIPT --port 0 ...`` as a process; yields ``(url, proc)``; killed if left running."""
    proc = subprocess.Popen([sys.executable, "-m", "chanlog", "replay", str(transcript_path), "--port", "0",
                             "--mode", "strict", "--sessions", "1", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield _read_line(proc, 20), proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def run_driver(sdk: Path, url: str, script: dict, tmp_path: Path, timeout: float, linger: float = 0) -> dict:
    """Run ``tests/sdk/driver.mjs``; its JSON summary (fails the test when there is none)."""
    script_path = tmp_path / "script.json"
    script_path.write_text(json.dumps(script))
    done = subprocess.run(["node", str(DRIVER), "--sdk", str(sdk), "--url", url, "--script", str(script_path),
                           "--timeout", str(timeout), "--linger", str(linger)],
                          capture_output=True, text=True, timeout=timeout + linger + 20)
    lines = done.stdout.strip().splitlines()
    if not lines:
        pytest.fail(f"the SDK driver wrote no summary (exit {done.returncode}): {done.stderr[-2000:]}")
    summary = json.loads(lines[-1])
    summary["exit"] = done.returncode
    return summary


def prepare(log: str, tmp_path: Path) -> tuple[Path, dict]:
    """Import ``log`` into a YAML transcript file (untransformed) and the SDK's action script (made from
    the sdk14 transformation the fake node will serve)."""
    transcript = import_file(CORPUS / log)
    path = tmp_path / f"{transcript.name}.yaml"
    dump(transcript, path)
    script = action_script(compat.apply(transcript, "sdk14").transcript, "sdk14")
    return path, script


@pytest.mark.parametrize("log", list(LOGS), ids=[f"{Path(k).stem}: {v}" for k, v in LOGS.items()])
def test_sdk_channel_plays_corpus_log_to_the_recorded_end(sdk: Path, log: str, tmp_path: Path) -> None:
    path, script = prepare(log, tmp_path)
    with fake_node(path, "--compat", "sdk14", "--timeout", str(REPLAY_TIMEOUT)) as (url, proc):
        summary = run_driver(sdk, url, script, tmp_path, DRIVER_TIMEOUT)
        _, stderr = proc.communicate(timeout=REPLAY_TIMEOUT + 15)

    assert summary["ok"], f"the SDK stopped at: {summary['waiting_for']}\nSDK errors: {summary['errors']}\n{stderr}"
    assert summary["exit"] == 0
    assert summary["steps_done"] == summary["steps"] == len(script["steps"])
    assert summary["errors"] == [], "the SDK reported errors"
    for conn, expected in zip(summary["connections"], script["connections"], strict=True):
        assert conn["received"] == expected["node_frames"], conn
    assert "--compat sdk14: serving a TRANSFORMED transcript" in stderr
    assert proc.returncode == 0, stderr
    assert "played to the end" in stderr and "0 divergences" in stderr, stderr


def test_without_compat_the_sdk_cannot_sign_the_old_channel_create_tx(sdk: Path, tmp_path: Path) -> None:
    """The transformation is off by default, and it is what makes the old log playable: without it the
    SDK fails to decode the version 1 channel_create_tx it is asked to sign and never answers."""
    path, script = prepare("json-rpc/both_sign/init_per_group.md", tmp_path)
    with fake_node(path, "--timeout", "2") as (url, proc):
        summary = run_driver(sdk, url, script, tmp_path, 3)
        _, stderr = proc.communicate(timeout=30)

    assert not summary["ok"] and summary["exit"] == 1
    assert "initiator_sign" in summary["waiting_for"]
    assert any("ChannelCreateTx (50) version 1" in e["error"] for e in summary["errors"]), summary["errors"]
    assert "TRANSFORMED" not in stderr
    assert proc.returncode == 1
    assert "channels.initiator_sign" in stderr


def test_sdk_pings_after_the_recorded_end_are_answered_with_a_pong_it_accepts(sdk: Path, tmp_path: Path) -> None:
    """The SDK pings 10 s after connecting and only pings again (10 s later) when it accepted the pong: a
    pong with another channel id than its own is ignored, and it disconnects 15 s after an unanswered
    ping. Two pings per connection within 21 s means the first pong was accepted."""
    path, script = prepare("json-rpc/both_sign/init_per_group.md", tmp_path)
    with fake_node(path, "--compat", "sdk14", "--timeout", str(REPLAY_TIMEOUT)) as (url, proc):
        summary = run_driver(sdk, url, script, tmp_path, DRIVER_TIMEOUT, linger=PING_LINGER)
        _, stderr = proc.communicate(timeout=REPLAY_TIMEOUT + 15)

    assert summary["ok"] and summary["errors"] == [], summary
    for conn in summary["connections"]:
        assert conn["pings"] >= 2 and conn["pongs"] >= 1, conn
        assert conn["status"] == "open", conn
    assert proc.returncode == 0 and "0 divergences" in stderr, stderr
