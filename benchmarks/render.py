"""Import + render throughput on the corpus, against a floor of json.loads + json.dumps(indent=2).

Usage: python benchmarks/render.py [--corpus DIR] [--repeat N] [--layout node|doc]

Prints frames/s for ``import_log`` + ``render(layout)`` over every log of the corpus, frames/s of the
floor (``json.loads`` then ``json.dumps(indent=2, ensure_ascii=False)`` of the same frame bodies), and
the ratio of the two times measured in the same run (target for the node layout: at most 2x).

Best of ``--repeat`` rounds each, our rounds and floor rounds interleaved and timed in CPU time of this process
(``time.process_time``), so that other work on the machine skews both alike. Every round of ours starts with
the decoder's cache of nested objects empty (the doc layout decodes every blob).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from chanlog.decode import clear_caches
from chanlog.importer import import_log
from chanlog.render import render

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
    args = parser.parse_args()
    logs = sorted(p for p in args.corpus.rglob("*.md") if p.name != "README.md")
    if not logs:
        print(f"no logs under {args.corpus}", file=sys.stderr)
        return 1
    texts = [(p.name, p.read_text(encoding="utf-8")) for p in logs]
    bodies = [body for _, text in texts for body in FENCE.findall(text)]

    def ours() -> None:
        clear_caches()
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
