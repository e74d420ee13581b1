"""Benchmark the start-up of worker processes against ``fork``, measured in the same run (issue 26).

Run: ``python benchmarks/workers.py [--rounds N]``.

``fork`` of a process running threads (mitmproxy, a progress bar) can deadlock the child (Python 3.12 warns:
DeprecationWarning), so the transcript writers (:class:`chanlog.record.writer.WorkerPool`: ``subprocess``,
fork+exec, pipes) and the site's render pool (``forkserver``) no longer use it. What that costs:

1. Pool start: from creating a pool of 2 workers to the first result of a trivial job of
   ``chanlog.record.writer`` (so every worker has that module, as for a transcript: a forked one inherits
   it), for ``ProcessPoolExecutor`` with ``fork`` (the baseline), ``forkserver`` and ``spawn``, and for
   :class:`~chanlog.record.writer.WorkerPool` (the writers). The recorder starts its writers once, when
   the proxy starts (``running``), not per session; a HAR import starts them once per import.
2. A site: ``render_site`` of a folder of 4 copies of the example transcript with 2 workers, with the pool
   started by ``fork`` (the baseline) and by ``forkserver`` (what it uses: modules imported once by the fork
   server, templates compiled by each worker).

The rounds alternate the methods (ABAB...), and the medians are reported, each as a ratio to ``fork``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "transcripts" / "init_per_group.yaml"


def pool_start(method: str) -> float:
    """Seconds from a pool of 2 workers created to the first result of a job of the writer's module
    (``events_yaml([])``: the worker has ``chanlog.record.writer`` imported, as for a transcript)."""
    from chanlog.record.writer import WorkerPool, events_yaml

    start = time.perf_counter()
    if method == "WorkerPool":
        pool = WorkerPool(2)
        pool.submit(events_yaml, []).result()
        took = time.perf_counter() - start
        pool.shutdown()
        return took
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as executor:
        executor.submit(events_yaml, []).result()
        took = time.perf_counter() - start
    return took


def site(method: str, inputs: Path, out: Path) -> float:
    """Seconds of ``render_site`` of ``inputs`` with 2 workers started by ``method``."""
    import chanlog.render.site as site_module

    original = site_module.pool_context
    if method == "fork":
        site_module.pool_context = lambda: multiprocessing.get_context("fork")
    try:
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        summaries = site_module.render_site([inputs], out, jobs=2)
        took = time.perf_counter() - start
    finally:
        site_module.pool_context = original
    assert all(s.failure is None for s in summaries)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each measurement (medians reported)")
    args = parser.parse_args()
    # the site first: the fork server starts there with its preloaded modules, as in a render
    with tempfile.TemporaryDirectory(prefix="chanlog-bench-workers-") as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for i in range(4):
            shutil.copyfile(EXAMPLE, inputs / f"s{i}.yaml")
        renders: dict[str, list[float]] = {"fork": [], "forkserver": []}
        for _ in range(args.rounds):
            for m in renders:
                renders[m].append(site(m, inputs, Path(tmp) / "out"))
        base = statistics.median(renders["fork"])
        for m, values in renders.items():
            med = statistics.median(values)
            print(f"site of 4 transcripts, 2 workers, {m}: {med * 1e3:.0f} ms, {med / base:.2f}x fork")

    methods = ["fork", "forkserver", "spawn", "WorkerPool"]
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.rounds):
        for m in methods:
            times[m].append(pool_start(m))
    base = statistics.median(times["fork"])
    for m in methods:
        med = statistics.median(times[m])
        print(f"pool start, {m}: {med * 1e3:.0f} ms, {med / base:.1f}x fork")

if __name__ == "__main__":
    main()
