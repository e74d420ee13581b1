"""Benchmark: what ``chanlog replay --rebind`` costs per frame, against writing the frame as JSON text.

    python benchmarks/rebind.py [LOG_OR_TRANSCRIPT ...] [--repeat 5]

For each log (default: ``transcripts/init_per_group.yaml`` and the shared corpus's ``sc_ws_basic_open_close``
and ``sc_ws_close_mutual`` when present) a :class:`chanlog.replay.rebind.Rebinder` learns fresh accounts (as
from a client's URL) and a learnt signature; then, ``--repeat`` times, every frame of the log is (a) mapped
(:meth:`Rebinder.map_json`: ids, channel id, ``tx_`` blobs decoded, changed and re-encoded) and written as
JSON text, the work the fake node adds per frame, and (b) only written as JSON text (the baseline, what the
fake node does anyway when it changes a frame's ``id``). A fresh Rebinder per round (its blob cache starts
empty, as in a new session). Prints frames per second of both and the ratio baseline / rebind (how many
times slower a rebound frame is to prepare).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chanlog.codec.encoding import encode_api  # noqa: E402
from chanlog.codec.transactions import clear_caches  # noqa: E402
from chanlog.model import Open, dump_json  # noqa: E402
from chanlog.replay import Script, load_transcript  # noqa: E402
from chanlog.replay.rebind import Rebinder, recorded_creates  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "json-rpc"
DEFAULTS = [REPO / "transcripts" / "init_per_group.yaml", CORPUS / "sc_ws_basic_open_close.md",
            CORPUS / "sc_ws_close_mutual.md"]


def rebinder_for(script: Script, creates) -> Rebinder:
    rebinder = Rebinder(script, creates)
    first = next(cs for role in ("initiator", "responder") for cs in script.roles[role] if cs.open is not None)
    params = dict(first.open.event.params)  # type: ignore[union-attr]
    for name in ("initiator_id", "responder_id"):
        params[name] = encode_api("ak", os.urandom(32))
    rebinder.connect(first, params)
    return rebinder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    paths = args.paths or [p for p in DEFAULTS if p.is_file()]
    for path in paths:
        transcript = load_transcript(path)
        if not any(isinstance(e, Open) for e in transcript.events):
            print(f"{path.name}: skipped (no open: no URL to read accounts from)")
            continue
        script = Script.build(transcript)
        creates = recorded_creates(script)
        frames = [(s.expected.data, s.event.fmt or "compact") for s in script.steps.values()  # type: ignore[attr-defined]
                  if s.expected is not None and s.expected.is_json]
        for data, fmt in frames:  # warm-up
            dump_json(data, fmt)
        start = time.perf_counter()
        for _ in range(args.repeat):
            for data, fmt in frames:
                dump_json(data, fmt)
        baseline = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(args.repeat):
            clear_caches()  # decoded objects are remembered by their bytes: every round decodes afresh
            rebinder = rebinder_for(script, creates)
            for data, fmt in frames:
                dump_json(rebinder.map_json(data), fmt)
        rebound = time.perf_counter() - start
        n = len(frames) * args.repeat
        print(f"{path.name}: {len(frames)} frames x {args.repeat}: baseline {n / baseline:,.0f} frames/s, "
              f"rebind {n / rebound:,.0f} frames/s, ratio baseline/rebind {rebound / baseline:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
