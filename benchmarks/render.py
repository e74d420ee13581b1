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
with ``--jobs`` processes (default 2), against the floor: read the same files, parse their frames and write
``json.dumps(indent=2)`` of each file's frames to a file, in one process. Best of ``--repeat`` rounds each,
interleaved. Target: within 3x of the floor with 2 processes. Wall-clock ratios need an idle machine (the
load average is printed); the CPU seconds of all processes (this one and the pool's workers, from
``getrusage``) over the floor's are printed too: they do not depend on other work on the machine.

Part 3 (beyond the corpus): the same batch on a folder built in a temporary directory at run time (nothing
is committed): every corpus log copied under a dotted or odd name (``channel_websocket.<name>.md``, spaces,
``#``, non-ASCII, as the node's older suites named them), plus each legacy log rewritten the 2018 way
(``#### initiator ---> (2018-10-24 13:00:00.37)`` headings, ``tx_`` in base58check as nodes wrote it before
2018-11). ``--corpus DIR`` measures another folder in part 2 and builds part 3 from it.

Part 4 (one log): ``chanlog render LOG -o FILE`` against ``chanlog render FOLDER -o SITE -j 1`` for a folder
holding only that log (the largest of the corpus, and its 2018 rewrite), both through the CLI in this
process, CPU time, best of ``--repeat``. Target: at most 1.2x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from chanlog.codec.calls import _codes_in_tx
from chanlog.codec.encoding import _b58decode
from chanlog.codec.transactions import clear_caches
from chanlog.render import _decoded_markdown, render
from chanlog.render.document import decoded_fields
from chanlog.render.html import fields_html
from chanlog.render.site import render_site
from chanlog.sources.nodelog import import_log


def cold() -> None:
    """Forget every cache of decoded objects (the decoder's and the renderer's), so that a round starts cold."""
    clear_caches()
    for cached in (_codes_in_tx, _decoded_markdown, decoded_fields, fields_html, _b58decode):
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
    parser.add_argument("--jobs", type=int, default=2, help="batch: processes (default 2)")
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
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    batch(args, args.corpus, logs, "corpus")
    work = Path(tempfile.mkdtemp(prefix="chanlog-bench-beyond-"))
    try:
        folder = beyond(args.corpus, work / "logs")
        batch(args, folder, sorted(folder.rglob("*.md")), "beyond the corpus (odd names, 2018 rewrites)")
        one_log(args, max(logs, key=lambda p: p.stat().st_size), work)
        twenty18 = sorted(folder.glob("2018 *.md"), key=lambda p: p.stat().st_size)
        if twenty18:
            one_log(args, twenty18[-1], work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def wall(fn) -> float:
    """Wall-clock seconds of one run of ``fn()`` (a batch uses other processes too)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_all() -> float:
    """CPU seconds of this process, of its reaped children, and of its live children with the children they
    reaped: a forkserver pool's workers are the fork server's children, reaped by it, not by this process
    (Linux ``/proc/PID/stat`` fields 14-17; elsewhere only the first two terms)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    total = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():  # ppid; then utime, stime, cutime, cstime at 11..14 after the name
            total += sum(int(x) for x in fields[11:15]) / tick
    return total


def batch(args: argparse.Namespace, corpus: Path, logs: list[Path], what: str) -> None:
    """Part 2: a folder as a site, one process and ``--jobs``, against the floor (wall and CPU time)."""
    work = Path(tempfile.mkdtemp(prefix="chanlog-bench-"))
    try:
        def site(jobs: int) -> tuple[float, float]:
            cold()  # one process renders in this one; the pool's workers start with what this process holds
            out = work / f"site-{jobs}"
            shutil.rmtree(out, ignore_errors=True)
            cpu, start = cpu_all(), time.perf_counter()
            summaries = render_site([corpus], out, fmt=args.format, jobs=jobs)
            took = time.perf_counter() - start, cpu_all() - cpu
            failed = [s.failure for s in summaries if s.failure]
            if failed:
                raise SystemExit(f"render failed: {failed[0]}")
            if len(summaries) != len(logs):
                raise SystemExit(f"{len(summaries)} pages for {len(logs)} logs")
            return took

        def floor() -> tuple[float, float]:
            out = work / "floor"
            out.mkdir(exist_ok=True)
            cpu, start = cpu_all(), time.perf_counter()
            for i, path in enumerate(logs):
                frames = [json.loads(body) for body in FENCE.findall(path.read_text(encoding="utf-8"))]
                (out / f"{i}.json").write_text(json.dumps(frames, indent=2, ensure_ascii=False), encoding="utf-8")
            return time.perf_counter() - start, cpu_all() - cpu

        site(args.jobs)  # warm up (imports, templates, the pool's start)
        rounds = [(site(1), site(args.jobs), floor()) for _ in range(args.repeat)]
        (one, one_cpu), (many, many_cpu), (base, base_cpu) = (
            (min(r[k][0] for r in rounds), min(r[k][1] for r in rounds)) for k in range(3))
        size = sum(p.stat().st_size for p in logs) / 1e6
        print(f"batch, {what}: {len(logs)} logs ({size:.1f} MB) -> {args.format} site with an index (doc layout), "
              f"best of {args.repeat}")
        print(f"  floor (read, parse frames, write json.dumps(indent=2)), 1 process: {base:.2f} s ({base_cpu:.2f} s CPU)")
        print(f"  chanlog render, 1 process: {one:.2f} s, ratio {one / base:.2f}x; CPU {one_cpu / base_cpu:.2f}x")
        print(f"  chanlog render, {args.jobs} processes: {many:.2f} s, ratio {many / base:.2f}x (target: at most 3x); "
              f"CPU of all processes {many_cpu / base_cpu:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


#: Names the node's older suites and people give logs (dotted suite.case names, spaces, ``#``, non-ASCII).
ODD_NAMES = ("channel_websocket.{}", "{} copy", "#{}", "{}.é")
_HEADING = re.compile(r"^#### (initiator|responder) (opens a WebSocket connection|---> node|<--- node|info)$", re.M)
_WORDS_2018 = {"opens a WebSocket connection": " init", "---> node": " --->", "<--- node": " <---", "info": ":"}


def to_2018(text: str) -> str:
    """A log rewritten the way nodes wrote them in 2018 (aeternity/protocol before 2018-11): headings
    ``#### initiator ---> (2018-10-24 13:00:00.37)`` (milliseconds not zero-padded) and ``tx_`` values in
    base58check (the prefix table's ``legacy`` alphabet for ``tx``)."""
    from chanlog.codec.encoding import BASE58, EncodingError, encode_api, parse_api

    count = 0

    def heading(m: re.Match) -> str:
        nonlocal count
        count += 1
        ms = count * 37
        return (f"#### {m.group(1)}{_WORDS_2018[m.group(2)]} "
                f"(2018-10-24 13:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000})")

    def b58(value):
        if isinstance(value, dict):
            return {k: b58(v) for k, v in value.items()}
        if isinstance(value, list):
            return [b58(v) for v in value]
        if isinstance(value, str) and value.startswith("tx_"):
            try:
                return encode_api("tx", parse_api(value).payload, encoding=BASE58)
            except EncodingError:
                return value
        return value

    text = _HEADING.sub(heading, text)
    return FENCE.sub(lambda m: "```javascript\n" + json.dumps(b58(json.loads(m.group(1))), indent=2,
                                                               ensure_ascii=False) + "\n```", text)


def beyond(corpus: Path, folder: Path) -> Path:
    """Part 3's folder: every log of ``corpus`` under an odd name (:data:`ODD_NAMES`, in turn), and each legacy
    log (``{action, tag, payload}``) rewritten the 2018 way (:func:`to_2018`) as ``2018 <name>.md``."""
    folder.mkdir(parents=True)
    logs = sorted(p for p in corpus.rglob("*.md") if p.name != "README.md")
    for i, path in enumerate(logs):
        text = path.read_text(encoding="utf-8")
        (folder / (ODD_NAMES[i % len(ODD_NAMES)].format(path.stem) + ".md")).write_text(text, encoding="utf-8")
        if '"action"' in text:
            (folder / f"2018 {path.stem}-{i}.md").write_text(to_2018(text), encoding="utf-8")
    return folder


def one_log(args: argparse.Namespace, log: Path, work: Path) -> None:
    """Part 4: ``chanlog render LOG -o FILE`` against the same log alone in a folder, CPU time of this process."""
    from click.testing import CliRunner

    from chanlog.cli import main as cli

    folder = work / f"one-{log.stem}"
    folder.mkdir()
    shutil.copyfile(log, folder / log.name)

    def alone() -> None:
        cold()
        done = CliRunner().invoke(cli, ["render", str(log), "--format", args.format, "-o", str(work / "one.out")])
        assert done.exit_code == 0, done.output

    def in_folder() -> None:
        cold()
        shutil.rmtree(work / "one-site", ignore_errors=True)
        done = CliRunner().invoke(cli, ["render", str(folder), "--format", args.format, "-o", str(work / "one-site"),
                                        "-j", "1"])
        assert done.exit_code == 0, done.output

    alone()
    in_folder()
    rounds = [(timed(alone), timed(in_folder)) for _ in range(args.repeat)]
    a, f = min(r[0] for r in rounds), min(r[1] for r in rounds)
    print(f"one log ({log.name}, {log.stat().st_size / 1e6:.2f} MB): chanlog render LOG {a:.2f} s CPU, the same log "
          f"in a folder {f:.2f} s, ratio {a / f:.2f}x (target: at most 1.2x)")


if __name__ == "__main__":
    raise SystemExit(main())
