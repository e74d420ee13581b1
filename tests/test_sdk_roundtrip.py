"""Record once, replay with the real SDK (issue 24): the SDK's own run, recorded through ``chanlog replay
--record-mode once`` in front of a stand-in node (``chanlog replay --compat sdk14`` of a corpus log), is served
back to the SDK strictly **without** compat and must be played to its end; also on fresh key pairs with
``--rebind`` (:func:`sdkplay.self_roundtrip`: real processes on loopback, the real mitmdump, the SDK pinned in
``tests/sdk/package.json``).

Every corpus log the SDK drives (``tests/test_sdk_e2e.py``: all but its ``CANNOT`` list) is a parameter; the
whole corpus takes several minutes, so by default only :data:`ALWAYS` runs (a plain open/close, a log with
contracts, a leave and reestablish, a log played after its group's prelude; fresh keys on the last) and the rest
skip saying how to run them: ``CHANLOG_SDK_ROUNDTRIP=all`` (CI sets it). ``benchmarks/sdk_coverage.py --self-roundtrip`` prints the
same verdicts for any logs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import npm
import pytest
import sdkplay
from conftest import CORPUS, REPO
from test_record_mode import need_mitmdump
from test_sdk_e2e import CANNOT, JSON_RPC

from chanlog.transcript import load

pytestmark = pytest.mark.e2e

#: Environment variable that runs the round trip of every corpus log the SDK drives (value ``all``).
FULL = "CHANLOG_SDK_ROUNDTRIP"
#: Logs whose round trip always runs (relative to json-rpc/): contracts, a reconnect (leave, then reestablish),
#: a log played after its group's prelude.
ALWAYS = ("contracts/sc_ws_basic_contracts.md", "sc_ws_leave_reestablish.md", "continuous/sc_ws_deposit.md")
#: Of those, the logs whose round trip also runs on fresh key pairs (``--rebind``) by default; with
#: ``CHANLOG_SDK_ROUNDTRIP=all`` every log runs both ways.
ALWAYS_FRESH = ("continuous/sc_ws_deposit.md",)
NODE_TIMEOUT = 8
#: Seconds without a new connection after the last close before a recording ends (``--grace``).
GRACE = 0.5
#: Round trips run at once (each is mostly processes waiting on each other).
JOBS = 2


#: Logs whose round trip may fail for a reason of timing, not of the flow (``xfail``, not strict).
TIMED: dict[str, str] = {}
# (continuous/sc_ws_ping_pong.md was here: the SDK pings on its own 10 s timer, and a recording that outlasted it
# held a ping the faster replay never sent. The fake node now gives way to recorded keepalive pings in every
# mode: chanlog.replay.session, Session._client_step.)


def _drivable() -> list[str]:
    if not JSON_RPC.is_dir():
        return []
    names = [str(p.relative_to(JSON_RPC)) for p in sorted(JSON_RPC.rglob("*.md"))]
    return [n for n in names if n not in CANNOT]


def _selected() -> list[str]:
    return _drivable() if os.environ.get(FULL) == "all" else [n for n in _drivable() if n in ALWAYS]


def _params() -> list:
    names = _drivable()
    if not names:
        return [pytest.param(None, id="corpus-absent")]
    chosen = set(_selected())
    return [pytest.param(n, id=n, marks=([] if n in chosen else [pytest.mark.skip(
        reason=f"the full SDK round trip runs with {FULL}=all (by default {len(ALWAYS)} representative logs)")])
        + ([pytest.mark.xfail(strict=False, reason=TIMED[n])] if n in TIMED else []))
        for n in names]


@pytest.fixture(scope="module")
def trips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[sdkplay.RoundTrip | Exception]]:
    """The round trips of the selected logs (recorded accounts, then fresh keys), ``JOBS`` at a time."""
    if not JSON_RPC.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    need_mitmdump()
    sdk = npm.install(sdkplay.SDK_DIR, "sdk14", "to run the JavaScript SDK")
    tmp = tmp_path_factory.mktemp("sdk-roundtrip")

    def one(job: tuple[str, bool]) -> sdkplay.RoundTrip | Exception:
        name, fresh = job
        try:
            prepared = sdkplay.prepare(JSON_RPC / name, JSON_RPC)
            where = tmp / (name.replace("/", "_") + ("-fresh" if fresh else ""))
            return sdkplay.self_roundtrip(prepared, sdk, where, node_timeout=NODE_TIMEOUT, fresh_accounts=fresh,
                                          grace=GRACE)
        except Exception as exc:  # reported by the log's own test
            return exc

    full = os.environ.get(FULL) == "all"
    jobs = [(n, fresh) for n in _selected() for fresh in (False, True) if not fresh or full or n in ALWAYS_FRESH]
    with ThreadPoolExecutor(JOBS) as pool:
        results = list(pool.map(one, jobs))
    out: dict[str, list[sdkplay.RoundTrip | Exception]] = {}
    for (name, _), result in zip(jobs, results, strict=True):
        out.setdefault(name, []).append(result)
    return out


@pytest.mark.parametrize("log", _params())
def test_the_sdk_replays_its_own_recording_to_the_end_strictly_without_compat(trips: dict, log: str | None) -> None:
    if log is None:
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    assert trips[log], log
    for trip, keys in zip(trips[log], ("recorded accounts", "fresh keys, --rebind")[:len(trips[log])], strict=True):
        if isinstance(trip, Exception):
            raise trip
        assert trip.ok, (f"{log} ({keys}): {trip.first_problem}\nrecorder: {trip.recorder_stderr[-1500:]}\n"
                         f"replay: {trip.replay.node_stderr[-2000:] if trip.replay else ''}")
        assert trip.recording.played == trip.recording.total  # the SDK played the log against the stand-in
        recorded = load(trip.recorded)
        assert recorded.source["kind"] == "capture" and recorded.source["sessions"]
        replay = trip.replay
        assert replay is not None and replay.played == replay.total == sum(1 for _ in recorded.frames())
        assert "TRANSFORMED" not in replay.node_stderr  # served as recorded: no --compat
        assert "played to the end" in replay.node_stderr and "0 divergences" in replay.node_stderr


# -- issue 24, item 6: a single log of a nested group folder finds its group's prelude above it


def _coverage():
    spec = importlib.util.spec_from_file_location("sdk_coverage", REPO / "benchmarks" / "sdk_coverage.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_a_single_nested_log_finds_the_group_prelude_in_a_parent_folder(tmp_path: Path, depth: int) -> None:
    """A log copied (outside the repository) into a group folder ``depth`` folders below its
    ``init_per_group.md`` and given alone, as ``sdk_coverage.py`` is given it, is played after that prelude."""
    source = JSON_RPC / "continuous"
    if not source.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    group = tmp_path / "suite" / "group"
    folder = group.joinpath(*[f"sub{i}" for i in range(depth)])
    folder.mkdir(parents=True)
    shutil.copyfile(source / "init_per_group.md", group / "init_per_group.md")
    shutil.copyfile(source / "sc_ws_deposit.md", folder / "sc_ws_deposit.md")

    logs, root = _coverage().find_logs([folder / "sc_ws_deposit.md"])
    assert logs == [folder / "sc_ws_deposit.md"] and root == folder.resolve()
    prepared = sdkplay.prepare(logs[0])
    assert prepared.prelude == (group / "init_per_group.md").resolve()
    assert prepared.prelude_frames == 30 and [s["do"] for s in prepared.script["steps"][:2]] == ["open", "open"]
    # a bound given on purpose is still kept
    bounded = sdkplay.nearest_prelude(logs[0], root=folder)
    assert bounded == (None if depth else (group / "init_per_group.md").resolve())
