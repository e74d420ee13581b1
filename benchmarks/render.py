"""Import + render throughput on the corpus, and the batch time of the whole corpus as a site, each against
a floor of json.loads + json.dumps(indent=2) measured in the same run.

Usage: python benchmarks/render.py [--corpus DIR] [--repeat N] [--layout node|doc] [--format md|html]
       [--jobs N]

Part 1 (one log at a time, in this process):
Prints frames/s for ``import_log`` + ``render(layout)`` over every log of the corpus, frames/s of the
floor (``json.loads`` then ``json.dumps(indent=2, ensure_ascii=False)`` of the same frame bodies), and
the ratio of the two times measured in the same run (target for the node layout: at most 2x).

Best of ``--repeat`` rounds each, our rounds and floor rounds interleaved and timed in CPU time of this process
(``time.process_time``), so that other work on the machine skews both alike. Every round of ours starts with
every cache of decoded objects empty (the doc layout decodes every blob).

Part 2 (batch, ``chanlog render CORPUS -o OUTDIR``): wall-clock time of :func:`chanlog.render.site.render_site`
over the whole corpus (doc layout, ``--format``; every page and the index written), with one process and
with all cores (``--jobs``, default the machine's), against the floor: read the same files, parse their
frames and write ``json.dumps(indent=2)`` of each file's frames to a file, in one process. Best of
``--repeat`` rounds each, interleaved. Target: within 3x of the floor with all cores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from chanlog.codec.calls import _codes_in_tx
from chanlog.codec.transactions import clear_caches
from chanlog.render import _decoded_markdown, render
from chanlog.render.document import decoded_fields
from chanlog.render.html import fields_html
from chanlog.render.site import render_site
from chanlog.sources.nodelog import import_log


def cold() -> None:
    """Forget every cache of decoded objects (the decoder's and the renderer's), so that a round starts cold."""
    clear_caches()
    for cached in (_codes_in_tx, _decoded_markdown, decoded_fields, fields_html):
        cached.cache_clear()

FENCE = re.compile(r"^```javascript\n(.*?)\n```$", re.S | re.M)


def timed(fn) -> float:
    """CPU seconds of this process for one run of ``fn()``."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--layout", choices=["node", "doc"], default="node")
    parser.add_argument("--format", choices=["md", "html"], default="md", help="batch: page format")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="batch: processes for 'all cores'")
    args = parser.parse_args()
    logs = sorted(p for p in args.corpus.rglob("*.md") if p.name != "README.md")
    if not logs:
        print(f"no logs under {args.corpus}", file=sys.stderr)
        return 1
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in logs]
    bodies = [body for _, text in texts for body in FENCE.findall(text)]

    def ours() -> None:
        cold()
        for name, text in texts:
            render(import_log(text, name), layout=args.layout)

    def floor() -> None:
        for body in bodies:
            json.dumps(json.loads(body), indent=2, ensure_ascii=False)

    ours()  # warm up (template compilation, imports)
    rounds = [(timed(ours), timed(floor)) for _ in range(args.repeat)]
    t_ours, t_floor = min(r[0] for r in rounds), min(r[1] for r in rounds)
    n = len(bodies)
    print(f"corpus: {len(logs)} logs, {n} frames, {sum(len(t) for _, t in texts) / 1e6:.1f} MB")
    print(f"import + render --layout {args.layout}: {n / t_ours:,.0f} frames/s")
    print(f"floor json.loads + json.dumps(indent=2): {n / t_floor:,.0f} frames/s")
    print(f"ratio (time ours / time floor): {t_ours / t_floor:.2f}x")
    batch(args, logs)
    return 0


def wall(fn) -> float:
    """Wall-clock seconds of one run of ``fn()`` (a batch uses other processes too)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def batch(args: argparse.Namespace, logs: list[Path]) -> None:
    """Part 2: the whole corpus as a site, one process and all cores, against the floor."""
    work = Path(tempfile.mkdtemp(prefix="chanlog-bench-"))
    try:
        def site(jobs: int) -> None:
            cold()  # one process renders in this one; the pool's workers start with what this process holds
            out = work / f"site-{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            summaries = render_site([args.corpus], out, fmt=args.format, jobs=jobs)
            failed = [s.failure for s in summaries if s.failure]
            if failed:
                raise SystemExit(f"render failed: {failed[0]}")

        def floor() -> None:
            out = work / "floor"
            out.mkdir(exist_ok=True)
            for i, path in enumerate(logs):
                frames = [json.loads(body) for body in FENCE.findall(path.read_text(encoding="utf-8"))]
                (out / f"{i}.json").write_text(json.dumps(frames, indent=2, ensure_ascii=False), encoding="utf-8")

        site(args.jobs)  # warm up (imports, templates, the pool's start)
        rounds = [(wall(lambda: site(1)), wall(lambda: site(args.jobs)), wall(floor)) for _ in range(args.repeat)]
        one, many, base = (min(r[k] for r in rounds) for k in range(3))
        print(f"batch: {len(logs)} logs -> {args.format} site with an index (doc layout), best of {args.repeat}")
        print(f"  floor (read, parse frames, write json.dumps(indent=2)), 1 process: {base:.2f} s")
        print(f"  chanlog render, 1 process: {one:.2f} s, ratio {one / base:.2f}x")
        print(f"  chanlog render, {args.jobs} processes: {many:.2f} s, ratio {many / base:.2f}x (target: at most 3x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
