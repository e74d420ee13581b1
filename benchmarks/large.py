"""Time and peak memory of ``chanlog import``, ``render`` and ``diff`` on inputs of 10 MB and 100 MB (issue 17,
"Inputs of any size").

Usage: python benchmarks/large.py [--corpus DIR] [--sizes 10,100] [--log NAME] [--layout doc|node]
       [--keep DIR]

The input of each size is built from the corpus: copies of its largest log (or ``--log``), one after
another, until the size is reached (a Markdown log of that size; ``chanlog import`` of it gives the
transcript that ``render`` and ``diff`` read). Each command runs in a fresh process (``python -m chanlog``,
output to a file); its wall-clock time and its peak resident memory (``ru_maxrss`` of that child) are
printed, then for each command the ratios of the largest size's figures to the smallest's: the memory
ratio (target: at most 1.5x, memory bounded independently of the input) and the time ratio against the
size ratio (target: about 1, time linear). Both sizes run in the same process, one after the other.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MB = 1 << 20


def build_log(source: Path, size: int, out: Path) -> int:
    """Write copies of ``source`` to ``out`` until it holds at least ``size`` bytes; return its size."""
    text = source.read_text(encoding="utf-8").strip("\n") + "\n"
    written = 0
    with open(out, "w", encoding="utf-8") as fh:
        while written < size:
            fh.write("\n" + text)
            written += len(text.encode("utf-8")) + 1
    return out.stat().st_size


def run(args: list[str]) -> tuple[float, float]:
    """Wall-clock seconds and peak resident memory (MB) of ``python -m chanlog ARGS`` in a fresh process."""
    code = ("import resource, subprocess, sys, time\n"
            "start = time.perf_counter()\n"
            "done = subprocess.run([sys.executable, '-m', 'chanlog', *sys.argv[1:]], stdout=subprocess.DEVNULL)\n"
            "took = time.perf_counter() - start\n"
            "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "print(done.returncode, took, peak)\n")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True).stdout
    rc, took, peak = out.split()
    if int(rc) != 0:  # diff of a transcript with itself: equal, 0
        raise SystemExit(f"chanlog {' '.join(args)} failed with exit status {rc}")
    return float(took), int(peak) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus")
    parser.add_argument("--sizes", default="10,100", help="input sizes in MB, comma-separated (default 10,100)")
    parser.add_argument("--log", help="the corpus log to copy (default: the largest)")
    parser.add_argument("--layout", default="doc", choices=("doc", "node"), help="render layout (default doc)")
    parser.add_argument("--keep", type=Path, help="build the inputs in this folder and keep them")
    args = parser.parse_args()
    logs = sorted(args.corpus.rglob("*.md"), key=lambda p: p.stat().st_size)
    logs = [p for p in logs if p.name != "README.md"]
    if not logs:
        raise SystemExit(f"no corpus logs under {args.corpus} (pass --corpus DIR)")
    source = next((p for p in logs if p.name == args.log), None) if args.log else logs[-1]
    if source is None:
        raise SystemExit(f"no corpus log named {args.log}")
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="chanlog-large-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"input: copies of {source.name} ({source.stat().st_size / MB:.2f} MB); render layout {args.layout}")
    print(f"{'size':>8} {'command':>8} {'time s':>9} {'peak MB':>9} {'MB/s':>7}")
    results: dict[str, dict[int, tuple[float, float, int]]] = {"import": {}, "render": {}, "diff": {}}
    try:
        for size in sizes:
            log = folder / f"large-{size}mb.md"
            actual = build_log(source, size * MB, log)
            transcript = folder / f"large-{size}mb.yaml"
            out = folder / f"large-{size}mb.out"
            runs = {"import": ["import", str(log), "-o", str(transcript)],
                    "render": ["render", "--layout", args.layout, str(transcript), "-o", str(out)],
                    "diff": ["diff", str(transcript), str(transcript)]}
            for command, argv in runs.items():
                took, peak = run(argv)
                read = actual if command == "import" else transcript.stat().st_size * (2 if command == "diff" else 1)
                results[command][size] = (took, peak, read)
                print(f"{size:>6}MB {command:>8} {took:>9.1f} {peak:>9.1f} {read / MB / took:>7.1f}", flush=True)
            out.unlink(missing_ok=True)
    finally:
        if args.keep is None:
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()
    small, large = sizes[0], sizes[-1]
    if small != large:
        print(f"\nratios {large} MB / {small} MB (target: memory at most 1.5x; time ratio / input ratio about 1):")
        for command, by_size in results.items():
            (t0, m0, r0), (t1, m1, r1) = by_size[small], by_size[large]
            print(f"{command:>8}: memory {m1 / m0:.2f}x, time {t1 / t0:.2f}x for {r1 / r0:.2f}x the input "
                  f"(time/input {t1 / t0 / (r1 / r0):.2f})")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
