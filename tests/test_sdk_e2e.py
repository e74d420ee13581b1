"""End to end with a real third-party client: the official JavaScript SDK against ``chanlog replay``.

``@aeternity/aepp-sdk`` 14.1.1 (the version pinned in ``tests/sdk/package.json``) is installed from the npm
registry into ``~/.cache/chanlog-tests/sdk14`` (``$CHANLOG_TEST_CACHE/sdk14`` when set; reused when present).
For **every** JSON-RPC log of the corpus, ``chanlog replay --compat sdk14`` serves it (a real process on
loopback; a log that starts on an open channel after its group's ``init_per_group`` log, ``--prelude``) and
``tests/sdk/driver.mjs`` runs the SDK's ``Channel`` as initiator and responder in one Node.js process,
doing what each participant's app did through the SDK's own API (:mod:`tests.sdkplay`). A log passes when
both reach the recorded end in strict mode: the driver every step and every recorded node frame, the fake
node every client frame matched (exit status 0), and the SDK reported no error.

A log whose flow SDK 14 has no API for is ``xfail(strict=True)`` with the missing API as reason
(:data:`CANNOT`), so a log that starts passing is noticed; the fake node waits only
:data:`CANNOT_NODE_TIMEOUT` for the frame the SDK cannot send. The logs are played :data:`JOBS` at a time by
a module fixture (each play is two processes that mostly wait on each other), and each test reads its log's
outcome. Under ``pytest -n N`` these tests are one unit (``conftest.XDIST_UNITS``): they run in one worker,
so the fixture plays every log once, not once per worker.

Skips with the reason when ``node``/``npm`` are missing, Node.js is older than 18, the install fails (no
registry access) or the shared corpus is absent.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import npm
import pytest
import sdkplay
from conftest import CORPUS

from chanlog.model import Frame

pytestmark = pytest.mark.e2e

JSON_RPC = CORPUS / "json-rpc"
#: Seconds the fake node waits for an expected client frame (a stuck SDK fails the log after that).
NODE_TIMEOUT = 6
DRIVER_TIMEOUT = 60
#: Seconds the fake node waits for the frame of a :data:`CANNOT` log that the SDK has no API to send (the
#: log then fails as expected; an SDK that gains the API answers in milliseconds, and the log passes).
CANNOT_NODE_TIMEOUT = 2
#: Logs played at once by the module fixture: a play is two processes that mostly wait on each other (about
#: half a CPU), a CANNOT log mostly waits for its timeout.
JOBS = 3
#: Seconds the SDK stays connected after the recorded end in the ping test (its pings come every 10 s).
PING_LINGER = 21

_NO_SOLO = ("SDK 14 has no WebSocket API for close_solo/settle/slash/snapshot_solo (it builds them on chain): "
            "the node's channels.sign.{} request is left unanswered")

#: Corpus logs (relative to json-rpc/) whose flow SDK 14 cannot perform, and the API it lacks.
CANNOT: dict[str, str] = {
    "abort_updates/sc_ws_abort_settle.md": _NO_SOLO.format("close_solo_sign"),
    "abort_updates/sc_ws_abort_slash.md": _NO_SOLO.format("slash_tx"),
    "abort_updates/sc_ws_abort_snapshot_solo.md": _NO_SOLO.format("snapshot_solo_tx"),
    "changeable_fee/sc_ws_optional_params_close_solo.md": _NO_SOLO.format("close_solo_sign"),
    "changeable_fee/sc_ws_optional_params_settle.md": _NO_SOLO.format("close_solo_sign"),
    "changeable_fee/sc_ws_optional_params_slash.md": _NO_SOLO.format("slash_tx"),
    "changeable_fee/sc_ws_optional_params_snapshot.md": _NO_SOLO.format("snapshot_solo_tx"),
    "changeable_fee/sc_ws_set_fee_close_solo.md": _NO_SOLO.format("close_solo_sign"),
    "changeable_fee/sc_ws_set_fee_settle.md": _NO_SOLO.format("close_solo_sign"),
    "changeable_fee/sc_ws_set_fee_slash.md": _NO_SOLO.format("slash_tx"),
    "changeable_fee/sc_ws_set_fee_snapshot.md": _NO_SOLO.format("snapshot_solo_tx"),
    "sc_ws_close_solo.md": _NO_SOLO.format("close_solo_sign"),
    "sc_ws_slash.md": _NO_SOLO.format("slash_tx"),
    "sc_ws_snapshot_solo.md": _NO_SOLO.format("snapshot_solo_tx"),
    "continuous/sc_ws_update_conflict.md": (
        "SDK 14's update() resolves on channels.conflict; the node's channels.sign.update that follows the "
        "conflict has no handler in its open state and is not answered"),
    "sc_ws_leave_reconnect.md": (
        "SDK 14's Channel.initialize refuses existing_channel_id without existing_fsm_id (the log's "
        "malformed reconnects), so it cannot make the recorded rejected connections"),
}


def _logs() -> list[Path]:
    return sorted(JSON_RPC.rglob("*.md")) if JSON_RPC.is_dir() else []


def _params() -> list:
    logs = _logs()
    if not logs:
        return [pytest.param(None, id="corpus-absent")]
    params = []
    for log in logs:
        name = str(log.relative_to(JSON_RPC))
        marks = [pytest.mark.xfail(strict=True, reason=CANNOT[name])] if name in CANNOT else []
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@pytest.fixture(scope="module")
def sdk() -> Path:
    """The cache directory holding ``node_modules/@aeternity/aepp-sdk`` at the pinned version."""
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    return npm.install(sdkplay.SDK_DIR, "sdk14", "to run the JavaScript SDK")


@pytest.fixture(scope="module")
def outcomes(sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, sdkplay.Outcome | Exception]:
    """Every corpus JSON-RPC log played with the SDK (``JOBS`` at a time): relative name -> outcome."""
    tmp = tmp_path_factory.mktemp("sdk-corpus")

    def one(log: Path) -> sdkplay.Outcome | Exception:
        try:
            prepared = sdkplay.prepare(log, JSON_RPC)
            name = str(log.relative_to(JSON_RPC))
            return sdkplay.play(prepared, sdk, tmp / name.replace("/", "__"), driver_timeout=DRIVER_TIMEOUT,
                                node_timeout=CANNOT_NODE_TIMEOUT if name in CANNOT else NODE_TIMEOUT)
        except Exception as exc:  # reported by the log's own test
            return exc

    logs = _logs()
    with ThreadPoolExecutor(JOBS) as pool:
        return {str(log.relative_to(JSON_RPC)): result for log, result in zip(logs, pool.map(one, logs), strict=True)}


@pytest.mark.parametrize("log", _params())
def test_sdk_channel_plays_corpus_log_to_the_recorded_end(outcomes: dict, log: str | None) -> None:
    if log is None:
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    outcome = outcomes[log]
    if isinstance(outcome, Exception):
        raise outcome
    summary = outcome.summary
    assert outcome.ok, (f"{log}: {outcome.first_problem}\nthe SDK stopped at: {summary.get('waiting_for')}\n"
                        f"SDK errors: {summary.get('errors')}\n{outcome.node_stderr[-3000:]}")
    assert summary["steps_done"] == summary["steps"]
    assert outcome.played == outcome.total, outcome.node_stderr
    assert "--compat sdk14: serving a TRANSFORMED transcript" in outcome.node_stderr
    assert "played to the end" in outcome.node_stderr and "0 divergences" in outcome.node_stderr


def test_logs_that_start_on_an_open_channel_are_played_after_their_group_prelude() -> None:
    if not JSON_RPC.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    prepared = sdkplay.prepare(JSON_RPC / "continuous" / "sc_ws_deposit.md", JSON_RPC)
    assert prepared.prelude == (JSON_RPC / "continuous" / "init_per_group.md").resolve()
    assert prepared.transcript.source["prelude"]["frames"] == prepared.prelude_frames == 30
    assert [s["do"] for s in prepared.script["steps"][:2]] == ["open", "open"]


def test_without_compat_the_sdk_cannot_sign_the_old_channel_create_tx(sdk: Path, tmp_path: Path) -> None:
    """The transformation is off by default, and it is what makes the old log playable: without it the
    SDK fails to decode the version 1 channel_create_tx it is asked to sign and never answers."""
    prepared = sdkplay.prepare(JSON_RPC / "both_sign" / "init_per_group.md", JSON_RPC)
    outcome = sdkplay.play(prepared, sdk, tmp_path, node_timeout=2, driver_timeout=3, compat=None)

    assert not outcome.ok and outcome.summary["exit"] == 1
    assert "initiator_sign" in outcome.summary["waiting_for"]
    assert any("ChannelCreateTx (50) version 1" in e["error"] for e in outcome.summary["errors"]), outcome.summary
    assert "TRANSFORMED" not in outcome.node_stderr
    assert outcome.node_exit == 1
    assert "channels.initiator_sign" in outcome.node_stderr


def test_a_divergence_is_a_readable_sdk_error_naming_the_frame(sdk: Path, tmp_path: Path) -> None:
    """The fake node expects other accounts in a ``channels.get.balances`` call than the SDK asks for: the SDK's
    ``balances()`` rejects with the divergence (where, why, the expected frame) in its own error message."""
    prepared = sdkplay.prepare(JSON_RPC / "sc_ws_basic_open_close.md", JSON_RPC)
    numbers = {id(f): n for n, f in prepared.transcript.frames()}
    events = list(prepared.transcript.events)
    index, frame = next((i, e) for i, e in enumerate(events) if isinstance(e, Frame) and e.sender == "client"
                        and e.obj.get("method") == "channels.get.balances")
    number = numbers[id(frame)]
    data = {**frame.data, "params": {**frame.data["params"], "accounts": ["ak_someone_else"]}}
    events[index] = dataclasses.replace(frame, data=data)
    served = dataclasses.replace(prepared, transcript=dataclasses.replace(prepared.transcript, events=events))
    outcome = sdkplay.play(served, sdk, tmp_path, node_timeout=5, driver_timeout=20)

    assert not outcome.ok
    errors = [e["error"] for e in outcome.summary["errors"]]
    assert errors, outcome.summary
    where = f"chanlog replay: divergence at session 1, {frame.role} connection 1, frame {number}"
    assert any("ChannelCallError" in e and where in e and "params.accounts" in e
               and f"(expected frame {number}: channels.get.balances)" in e for e in errors), errors
    assert outcome.node_exit == 1 and "params.accounts" in outcome.node_stderr


def test_sdk_pings_after_the_recorded_end_are_answered_with_a_pong_it_accepts(sdk: Path, tmp_path: Path) -> None:
    """The SDK pings 10 s after connecting and only pings again (10 s later) when it accepted the pong: a
    pong with another channel id than its own is ignored, and it disconnects 15 s after an unanswered
    ping. Two pings per connection within 21 s means the first pong was accepted."""
    prepared = sdkplay.prepare(JSON_RPC / "both_sign" / "init_per_group.md", JSON_RPC)
    outcome = sdkplay.play(prepared, sdk, tmp_path, node_timeout=15, driver_timeout=40, linger=PING_LINGER)

    assert outcome.ok and outcome.summary["errors"] == [], outcome.summary
    for conn in outcome.summary["connections"]:
        assert conn["pings"] >= 2 and conn["pongs"] >= 1, conn
        assert conn["status"] == "open", conn
    assert outcome.node_exit == 0 and "0 divergences" in outcome.node_stderr, outcome.node_stderr
