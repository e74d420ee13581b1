"""Benchmark HAR import and the ``chanlog`` content view against baselines run in the same process.

Run: ``python benchmarks/har.py [--repeat N] [--sessions N] [--http N]``.

1. HAR import: the example transcript's frames repeated ``--repeat`` times as one session, exported to HAR
   text once; timed: :func:`chanlog.record.har.import_har` (parse, pairing through the recorder, journal, transcript
   YAML, reload) against the bare minimum (``json.loads`` of the HAR and ``Frame.from_wire`` per message).
   Target: under 30x the bare minimum (the recorder journals and writes YAML).
2. The view: the ``chanlog`` view's text for every frame of the example (decoding every blob) against
   ``json.dumps(json.loads(frame), indent=4)``, what mitmproxy's JSON view does. Reported, no target:
   decoding is the point of the view.
3. Peak memory of ``chanlog import X.har -o DIR``, each run in a process of its own (Linux ``VmHWM`` of the
   importing process; its writer processes hold one session each), for HARs made by ``tests/hargen.py``: one session
   (the baseline: interpreter, imports, one session), ``--sessions`` short channel sessions, and one session
   among ``--http`` small HTTP entries. Reported: each peak against the file's size, and what it adds to the
   baseline per session and per byte of HAR. Target: the added memory under 50 KB per session and under
   half the file's size (issue 26: 210 KB per session and 6x the file before the HAR was streamed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from chanlog.model import Frame
from chanlog.record.har import import_har
from chanlog.record.view import Participant, render_frame
from chanlog.sources.har import export_har, load_har
from chanlog.transcript import load

EXAMPLE = Path(__file__).resolve().parents[1] / "transcripts" / "init_per_group.yaml"
TESTS = Path(__file__).resolve().parents[1] / "tests"


def memory(sessions: int, http: int) -> None:
    sys.path.insert(0, str(TESTS))
    from hargen import import_peak, write_har

    with tempfile.TemporaryDirectory(prefix="chanlog-bench-har-") as tmp:
        folder = Path(tmp)
        runs = {}
        for label, n, h in (("one session", 1, 0), (f"{sessions} sessions", sessions, 0),
                            (f"1 session + {http} HTTP entries", 1, http)):
            har = folder / f"{n}-{h}.har"
            size = write_har(har, n, h)
            start = time.perf_counter()
            peak, _ = import_peak(har, folder / f"out-{n}-{h}", folder)
            took = time.perf_counter() - start
            runs[label] = (size, peak, n)
            print(f"import peak memory, {label} ({size / 1e6:.1f} MB HAR): {peak / 1e6:.0f} MB in {took:.1f} s, "
                  f"{peak / size:.1f}x the file")
        _, base, _ = runs["one session"]
        size, peak, n = runs[f"{sessions} sessions"]
        print(f"  {sessions} sessions: {(peak - base) / 1e3 / (n - 1):.1f} KB more per session than one session "
              f"(target < 50 KB)")
        size, peak, _ = runs[f"1 session + {http} HTTP entries"]
        print(f"  large HAR: {(peak - base) / size:.2f} bytes more per byte of HAR than one session (target < 0.5)")


def best(fn, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="copies of the example's frames in the session")
    parser.add_argument("--sessions", type=int, default=1000, help="channel sessions in the many-sessions HAR")
    parser.add_argument("--http", type=int, default=100_000, help="HTTP entries in the large HAR (~600 bytes each)")
    args = parser.parse_args()
    t = load(EXAMPLE)
    first_frame = next(i for i, e in enumerate(t.events) if isinstance(e, Frame))
    frames = [e for e in t.events if isinstance(e, Frame)]
    t.events = t.events[:first_frame] + frames * args.repeat
    for i, e in enumerate(t.events):
        e.t = i * 0.001
    text = json.dumps(export_har(t))
    count = len(frames) * args.repeat

    def baseline() -> None:
        doc = json.loads(text)
        for entry in doc["log"]["entries"]:
            for m in entry["_webSocketMessages"]:
                Frame.from_wire(m["data"], role="initiator", conn=0, sender="node")

    def full() -> None:
        result = import_har(load_har(text, "bench.har"), "bench.har")
        assert sum(1 for _ in result.transcripts[0].frames()) == count

    base, imp = best(baseline), best(full)
    print(f"HAR import, {count} frames ({len(text) / 1e6:.1f} MB): {imp * 1e3:.0f} ms, "
          f"baseline {base * 1e3:.0f} ms, ratio {imp / base:.1f}x (target < 30x)")

    wires = [f.wire().encode() if isinstance(f.wire(), str) else f.wire() for f in frames]
    who = Participant("initiator", "bench", 0)

    def view() -> None:
        for w in wires:
            render_frame(w, from_client=False, who=who)

    def json_view() -> None:
        for w in wires:
            json.dumps(json.loads(w), indent=4, ensure_ascii=False)

    v, j = best(view), best(json_view)
    print(f"view, {len(wires)} frames: {v / len(wires) * 1e6:.0f} us/frame, JSON view "
          f"{j / len(wires) * 1e6:.0f} us/frame, ratio {v / j:.1f}x")
    memory(args.sessions, args.http)


if __name__ == "__main__":
    main()
