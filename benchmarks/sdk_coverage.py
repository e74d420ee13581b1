"""How much of the corpus a real client plays: ``@aeternity/aepp-sdk`` 14 against ``chanlog replay``.

Usage: ``python benchmarks/sdk_coverage.py [LOG_DIR_OR_FILE ...] [--mode strict|lenient] [--jobs N]
[--fresh-accounts] [--self-roundtrip]``

Each node Markdown log given (folders are searched for ``*.md``; default ``../shared/corpus/json-rpc``) is
imported and played for both roles by the real SDK (``tests/sdk/driver.mjs``, installed by ``tests/npm.py``
into the shared test cache) against ``chanlog replay --compat sdk14`` in the given mode. A log that starts on
an open channel gets the nearest ``init_per_group.md`` (its folder, else a parent folder, also above the folder
or file given) as ``--prelude``.

Prints one line per log (``pass``/``FAIL``, frames played/total, seconds, the first divergence or SDK error,
how many node frames the SDK's state machine ignored for want of a handler),
then ``sdk strict: P/N logs, F% of frames`` (frames of the passing logs over the frames of all logs, preludes
not counted), then ``optional parameters the SDK cannot send: K logs, P pass`` (the logs in which ``--compat sdk14``
dropped a parameter of ``chanlog.replay.compat.SDK14_METHODS`` or its ``OffChainMeta`` updates, and how many of
them the SDK plays; the failing ones are named, each with its first problem above).

``--fresh-accounts`` plays every log twice: as above, and with both SDK clients on freshly generated key pairs
against ``chanlog replay --rebind``; each line then gives both verdicts, and the summary line the fresh-account
coverage and every log that passes with the recorded accounts but not with fresh ones.

``--self-roundtrip`` (issue 24): every log the SDK plays to the end is played again through ``chanlog replay
--record-mode once`` in front of the stand-in node (``chanlog replay --compat sdk14`` of the log), and the
recorded transcript is served to the SDK strictly, **without** compat, and must be played to its end
(:func:`sdkplay.self_roundtrip`); with ``--fresh-accounts`` also on fresh key pairs with ``--rebind`` both times.
The last line is then ``sdk self round trip: P/N logs`` (N: the logs the SDK plays against the stand-in).
Exit status 0 (also when logs fail: this measures); 2 bad usage; skips with the reason (exit 0)
when node/npm are missing or the SDK cannot be installed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import npm  # noqa: E402
import pytest  # noqa: E402
import sdkplay  # noqa: E402

from chanlog.replay import compat  # noqa: E402

#: The compat rules that stand for parameters the SDK's API cannot send (chanlog.replay.compat).
OPTIONAL_RULES = frozenset({"action_params", "meta_updates"})


def optional_params_dropped(prepared: sdkplay.Prepared) -> bool:
    """Whether ``--compat sdk14`` drops an optional parameter (or its meta updates) from ``prepared``'s log."""
    rules = compat.apply(prepared.transcript, "sdk14").rules
    first = prepared.prelude_frames  # frames of the prelude come first and are not the log's own
    return any(n > first for rule in OPTIONAL_RULES for n in rules.get(rule, ()))

DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus" / "json-rpc"


def find_logs(paths: list[Path]) -> tuple[list[Path], Path]:
    """Every ``.md`` log under ``paths`` (sorted), and the folder the prelude search stops at (the
    corpus when the paths lie in it, else their common folder)."""
    logs: list[Path] = []
    for path in paths:
        if path.is_dir():
            logs.extend(sorted(path.rglob("*.md")))
        elif path.is_file():
            logs.append(path)
        else:
            raise SystemExit(f"sdk_coverage: no such file or folder: {path}")
    dirs = [str((p if p.is_dir() else p.parent).resolve()) for p in paths]
    root = Path(os.path.commonpath(dirs))
    corpus = DEFAULT_CORPUS.resolve()
    if root.is_relative_to(corpus):
        root = corpus  # a log of a group folder still finds the corpus's init_per_group logs above it
    return logs, root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", type=Path, help=f"logs or folders (default: {DEFAULT_CORPUS})")
    parser.add_argument("--mode", choices=("strict", "lenient"), default="strict",
                        help="matching mode of chanlog replay (default strict)")
    parser.add_argument("--jobs", type=int, default=2, help="logs played at once (default 2)")
    parser.add_argument("--timeout", type=float, default=8.0,
                        help="seconds the fake node waits for an expected client frame (default 8)")
    parser.add_argument("--fresh-accounts", action="store_true",
                        help="also play every log with fresh key pairs against chanlog replay --rebind")
    parser.add_argument("--self-roundtrip", action="store_true",
                        help="record each passing log's SDK run through chanlog replay --record-mode once and replay "
                             "the recording to the SDK (strict, no compat)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the fake node's report of failures")
    args = parser.parse_args(argv)
    paths = args.paths or [DEFAULT_CORPUS]
    try:
        sdk = npm.install(sdkplay.SDK_DIR, "sdk14", "to run the JavaScript SDK")
    except pytest.skip.Exception as exc:
        print(f"sdk_coverage: skipped: {exc.msg}")
        return 0
    logs, root = find_logs(paths)
    if not logs:
        print("sdk_coverage: no .md logs found")
        return 2
    started = time.monotonic()
    passed = frames_all = frames_passed = fresh_passed = fresh_frames = 0
    regressions: list[str] = []
    trips: dict[Path, list[sdkplay.RoundTrip]] = {}
    trips_ok = trips_fresh_ok = 0
    optional_logs: list[tuple[str, bool]] = []  # logs with an optional parameter dropped: (name, passes)
    with tempfile.TemporaryDirectory(prefix="sdk_coverage-") as tmp:

        def one(index_log: tuple[int, Path]) -> tuple[Path, sdkplay.Prepared | None, sdkplay.Outcome | None,
                                                      sdkplay.Outcome | None, str]:
            index, log = index_log
            try:
                prepared = sdkplay.prepare(log)  # the prelude searched above the paths given too
            except Exception as exc:  # a log that does not import is reported, not fatal
                return log, None, None, None, f"{type(exc).__name__}: {exc}"
            outcome = sdkplay.play(prepared, sdk, Path(tmp) / str(index), mode=args.mode, node_timeout=args.timeout)
            fresh = None
            if args.fresh_accounts:
                fresh = sdkplay.play(prepared, sdk, Path(tmp) / f"{index}-fresh", mode=args.mode,
                                     node_timeout=args.timeout, fresh_accounts=True)
            if args.self_roundtrip and outcome.ok:
                trips[log] = [sdkplay.self_roundtrip(prepared, sdk, Path(tmp) / f"{index}-trip", node_timeout=args.timeout)]
                if args.fresh_accounts:
                    trips[log].append(sdkplay.self_roundtrip(prepared, sdk, Path(tmp) / f"{index}-trip-fresh",
                                                             node_timeout=args.timeout, fresh_accounts=True))
            return log, prepared, outcome, fresh, ""

        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for log, prepared, outcome, fresh, error in pool.map(one, enumerate(logs)):
                name = str(log.resolve().relative_to(root)) if log.resolve().is_relative_to(root) else str(log)
                if prepared is None or outcome is None:
                    print(f"ERROR {name}: {error}", flush=True)
                    continue
                frames_all += prepared.frames
                if optional_params_dropped(prepared):
                    optional_logs.append((name, outcome.ok))
                if outcome.ok:
                    passed += 1
                    frames_passed += prepared.frames
                verdict = "pass" if outcome.ok else "FAIL"  # with --fresh-accounts: recorded/fresh
                prelude = f" (prelude {prepared.prelude.parent.name}/{prepared.prelude.name})" if prepared.prelude else ""
                problem = f"  {outcome.first_problem}" if outcome.first_problem else ""
                ignored = sum((outcome.summary.get("unhandled") or {}).values())
                if ignored:
                    problem += f"  (the SDK ignored {ignored} node frames it has no handler for)"
                if fresh is not None:
                    if fresh.ok:
                        fresh_passed += 1
                        fresh_frames += prepared.frames
                    elif outcome.ok:
                        regressions.append(name)
                    verdict += "/" + ("pass" if fresh.ok else "FAIL")
                    if fresh.first_problem and fresh.first_problem != outcome.first_problem:
                        problem += f"  fresh accounts: {fresh.first_problem}"
                print(f"{verdict} {name}{prelude}: {outcome.played}/{outcome.total} frames, "
                      f"{outcome.seconds:.1f} s{problem}", flush=True)
                for n, trip in enumerate(trips.get(log, [])):
                    if trip.ok:
                        trips_ok += n == 0
                        trips_fresh_ok += n == 1
                    what = "round trip" + (" (fresh keys, --rebind)" if n else "")
                    print(f"    {what}: {'pass' if trip.ok else 'FAIL'}"
                          + (f"  {trip.first_problem}" if trip.first_problem else ""), flush=True)
                if args.verbose and not outcome.ok:
                    print("    " + outcome.node_stderr.strip().replace("\n", "\n    ")[-3000:], flush=True)
    share = 100.0 * frames_passed / frames_all if frames_all else 0.0
    print(f"sdk {args.mode}: {passed}/{len(logs)} logs, {share:.1f}% of frames "
          f"({time.monotonic() - started:.0f} s, {args.jobs} jobs)")
    failing = [name for name, ok in optional_logs if not ok]
    print(f"optional parameters the SDK cannot send: {len(optional_logs)} logs, "
          f"{len(optional_logs) - len(failing)} pass" + (f" (failing: {', '.join(failing)})" if failing else ""))
    if args.fresh_accounts:
        fresh_share = 100.0 * fresh_frames / frames_all if frames_all else 0.0
        print(f"sdk {args.mode} fresh accounts (--rebind): {fresh_passed}/{len(logs)} logs, {fresh_share:.1f}% of "
              f"frames; pass with the recorded accounts but not with fresh ones: {len(regressions)}"
              + (f" ({', '.join(regressions)})" if regressions else ""))
    if args.self_roundtrip:
        fresh_part = f"; fresh keys (--rebind): {trips_fresh_ok}/{len(trips)}" if args.fresh_accounts else ""
        print(f"sdk self round trip: {trips_ok}/{len(trips)} logs{fresh_part}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
