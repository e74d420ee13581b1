"""Benchmark the recorder: the four figures of issue 14's "Done when", measured in one run.

Run: ``python benchmarks/capture.py`` (``--help`` for sizes; ``--quick`` for a short smoke run). Everything
runs on 127.0.0.1: a WebSocket "node" and the participants in this process (``websockets``), ``mitmdump``
from this virtualenv as separate processes. CPU time is read from ``/proc/PID/task/*/schedstat``
(nanoseconds, every thread of the proxy; the recorder's transcript writers are other processes, reported
apart).

1. CPU, paced: the target figure. Each of ``--trials`` trials starts four fresh mitmdump processes, all
   pinned to one CPU (the clients and the node on the others, when there are two or more): ``bare``
   (no addon), ``control`` (no addon either: an A/A check, whose ratio to ``bare`` shows how far apart two
   identical proxies measure), ``noop`` (a script addon whose ``websocket_message`` does nothing: what
   mitmproxy's dispatch of every event to any script costs) and ``addon`` (``-s addons/channel.py``, default
   options). Each gets one session (initiator and responder connections); in lockstep, every connection
   sends a frame of about ``--frame-size`` bytes that the node echoes, one frame in flight per connection,
   the four proxies' frames sent together in turns (``--paced-steps`` steps after a warm-up). Per trial,
   (CPU per frame of ``addon``) / (CPU per frame of ``bare``); the figure is the median over trials,
   printed with its spread, the no-op script's ratio and the control's. Channel traffic is request and
   response; this is its shape, and fresh processes side by side on one CPU keep the machine's own drift
   and each process's luck (memory layout, hash seeds: about +-2%) out of the ratio. Target: at most 1.08.
1b. Instructions: the three proxies (no addon, no-op script, addon) one at a time under valgrind's
   callgrind (when installed; ``--instr-messages 0`` skips it): user-space instructions per frame of one
   flood session, counted only while it runs. The kernel's share (socket and journal writes) is not in
   it. Same target.
1c. CPU, flood (``--rounds``, 0 skips it): the same session (two connections, ``--messages`` frames each way
   on each, sent as fast as the proxy takes them) through three long-lived proxies (no addon, no-op
   script, addon), each first in turn; median over rounds of the CPU per frame with / without the addon.
   Frames then arrive in batches of any size, and the ratio moves by +-15% from round to round on a
   shared machine: shown for reference, with the hook's own cost measured in-process.
2. Latency of live sessions while a transcript is written. A 100k-frame session is recorded; then a
   probe session (ping-pong through the proxy, one frame in flight) measures round trips for
   ``--probe-seconds`` with no write going on, the 100k-frame session is closed, and the probe measures
   again while its transcript is written. Added latency = round trip through the proxy minus the direct
   round trip (median, same run). Target: p99 during the write within 1.5x of p99 without.
3. Final write time: seconds from the close of a session of 10k, 100k and 200k frames until its
   transcript exists. Target: 100k frames in under 5 s.
4. Memory: RSS of a fresh recording mitmdump (default configuration) after 10k, 100k and 200k frames of
   one session, read when the proxy's socket buffers have drained (the node sends 2,000 frames at a time,
   on request: with 10,000, about 20 MB of frames could wait in mitmproxy's buffers at once whenever the
   client fell behind, a one-time step of ~19 MiB in RSS that came before or after the 10k mark by chance). Target: flat, within 20% between 10k and 200k.

The load on the machine (``os.getloadavg``) is printed at start and end: on a shared machine the
ratios, measured side by side, are steadier than the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "addons" / "channel.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
TX = "tx_" + "+QENCwH4hLhAMCEsNAocaKf2YIFLfEC73Dbz5GM38DbkfBETkNS4dWtO4PJvfkBeK29vVkaoXiDbTM0KtSek36eaIYgW" * 3
#: Frame size the session generators aim at (``--frame-size``).
FRAME_SIZE = 2048


def blob(size: int) -> str:
    """A ``tx_`` string that makes a frame about ``size`` bytes long."""
    reps = max(1, size // len(TX))
    return (TX * reps)[: max(len(TX), size - 150)]


def node_frame(n: int, size: int = 400) -> str:
    """A node frame of about ``size`` bytes: an update notification carrying a tx blob."""
    return json.dumps({"jsonrpc": "2.0", "method": "channels.sign.update",
                       "params": {"channel_id": "ch_bench", "data": {"signed_tx": blob(size), "updates": [],
                                                                      "n": n}},
                       "version": 1}, separators=(",", ":"))


def client_frame(n: int, size: int = 400) -> str:
    """A client frame of about ``size`` bytes: an update request carrying a tx blob."""
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "channels.update",
                       "params": {"signed_tx": blob(size)}}, separators=(",", ":"))


# -- the node ------------------------------------------------------------------------------------


async def node_handler(ws) -> None:
    """Push ``n`` node frames while reading ``n`` client frames, then send ``done`` and wait for close."""
    params = dict(parse_qsl(urlsplit(ws.request.path).query))
    n, size = int(params.get("n", "0")), int(params.get("size", "400"))
    if params.get("mode") == "echo":  # the latency probe: every client frame comes straight back
        async for message in ws:
            await ws.send(message)
        return
    if params.get("mode") == "segments":  # the memory session: "more N" -> N node frames, then "ok"
        frames = [node_frame(i, size) for i in range(100)]
        async for message in ws:
            for i in range(int(str(message).split()[1])):
                await ws.send(frames[i % 100])
            await ws.send("ok")
        return
    frames = [node_frame(i, size) for i in range(100)]

    async def push() -> None:
        for i in range(n):
            await ws.send(frames[i % 100])

    pusher = asyncio.create_task(push())
    got = 0
    async for _ in ws:
        got += 1
        if got == n:
            break
    await pusher
    await ws.send("done")
    await ws.wait_closed()


def url(port: int, path: str, role: str, session: int, **extra: str) -> str:
    query = urlencode({"initiator_id": "ak_bench", "responder_id": "ak_bench2", "port": str(20000 + session),
                       "protocol": "json-rpc", "role": role, **extra})
    return f"ws://127.0.0.1:{port}{path}?{query}"


async def participant(port: int, path: str, role: str, n: int, session: int,
                      on_progress=None, size: int = 400, hold: asyncio.Event | None = None,
                      ready: asyncio.Event | None = None) -> None:
    """Connect through ``port``, send ``n`` client frames while receiving ``n`` node frames + ``done``;
    with ``hold``, stay connected until it is set."""
    async with connect(url(port, path, role, session, n=str(n), size=str(size)), compression=None,
                       max_size=None, ping_interval=None, open_timeout=30, close_timeout=30, proxy=None) as ws:
        frames = [client_frame(i, size) for i in range(100)]

        async def send() -> None:
            for i in range(n):
                await ws.send(frames[i % 100])

        sender = asyncio.create_task(send())
        received = 0
        while True:
            msg = await asyncio.wait_for(ws.recv(), 120)
            if msg == "done":
                break
            received += 1
            if on_progress is not None:
                on_progress(received)
        await sender
        assert received == n, (received, n)
        if ready is not None:
            ready.set()
        if hold is not None:
            await hold.wait()


async def one_session(port: int, path: str, n: int, session: int, roles=("initiator", "responder"),
                      on_progress=None, size: int = 400) -> float:
    """Seconds for one session: every connection has received its ``n`` frames and ``done``."""
    start = time.perf_counter()
    await asyncio.gather(*(participant(port, path, role, n, session, on_progress, size) for role in roles))
    return time.perf_counter() - start


async def probe(port: int, seconds: float, session: int, stop: asyncio.Future | None = None) -> list[float]:
    """Round trips (seconds) of a live recorded session, one frame in flight, for ``seconds`` (or until
    ``stop`` is done, when given)."""
    rtts: list[float] = []
    async with connect(url(port, "/channel", "initiator", session, mode="echo"), compression=None,
                       ping_interval=None, open_timeout=30, proxy=None) as ws:
        end = time.perf_counter() + seconds
        i = 0
        while (not stop.done()) if stop is not None else time.perf_counter() < end:
            i += 1
            frame = client_frame(i)
            start = time.perf_counter()
            await ws.send(frame)
            await asyncio.wait_for(ws.recv(), 60)
            rtts.append(time.perf_counter() - start)
            await asyncio.sleep(0.002)
    return rtts


# -- mitmdump ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A mitmdump child process in reverse mode in front of ``upstream``."""

    def __init__(self, upstream: int, workdir: Path, addon: bool, script: Path | None = None,
                 prefix: tuple[str, ...] = (), cpus: set[int] | None = None, **sets: str) -> None:
        self.port = free_port()
        self.dir = workdir / f"rec-{self.port}"
        args = [*prefix, str(MITMDUMP), "-q", "--mode", f"reverse:http://127.0.0.1:{upstream}", "--listen-host",
                "127.0.0.1", "--listen-port", str(self.port), "--set", "flow_detail=0"]
        if script is not None:  # another script instead of addons/channel.py (the no-op reference)
            args += ["-s", str(script)]
        if addon:  # the recorder's options (from addons/channel.py, or from ``script`` when it loads the recorder)
            if script is None:
                args += ["-s", str(ADDON)]
            args += ["--set", f"chanlog_dir={self.dir}"]
            for k, v in sets.items():
                args += ["--set", f"{k}={v}"]
        self.log = open(workdir / f"mitmdump-{self.port}.log", "wb")  # noqa: SIM115
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None  # its writer processes inherit it
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO, preexec_fn=pin)
        deadline = time.monotonic() + (120 if prefix else 30)
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"mitmdump exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("mitmdump did not start") from None
                time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds (user + system) the process has used so far: the nanoseconds its threads ran
        (``/proc/PID/task/*/schedstat``), else ``/proc/PID/stat`` in clock ticks."""
        try:
            return sum(int((task / "schedstat").read_text().split()[0])
                       for task in Path(f"/proc/{self.proc.pid}/task").iterdir()) / 1e9
        except (OSError, ValueError, IndexError):
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def children_cpu(self) -> float:
        """CPU seconds of the process's live children (the recorder's transcript writers)."""
        total = 0.0
        for child in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            for pid in child.read_text().split():
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in KiB (``VmRSS``, ``VmHWM``)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def wait_session(self, session: int, since: float, timeout: float = 900) -> float:
        """Seconds from ``since`` (a ``perf_counter`` time) until the transcript of benchmark session
        ``session`` exists."""
        while not list(self.dir.glob(f"*_{20000 + session}*.yaml")):
            if time.perf_counter() - since > timeout:
                raise SystemExit(f"transcript of session {session} not written within {timeout}s")
            time.sleep(0.01)
        return time.perf_counter() - since

    def wait_transcripts(self, count: int, timeout: float = 600, since: float | None = None) -> float:
        """Seconds (from ``since``, a ``perf_counter`` time, default now) until ``count`` transcripts
        exist in the recorder's folder."""
        start = time.perf_counter() if since is None else since
        while len(list(self.dir.glob("*.yaml"))) < count:
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"transcripts not written within {timeout}s; see {self.log.name}")
            time.sleep(0.01)
        return time.perf_counter() - start

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- the benchmarks ---



async def cpu_rounds(args: argparse.Namespace, workdir: Path, upstream: int) -> None:
    n, size = args.messages, args.frame_size
    frames = 4 * n  # two connections, n each way
    noop_script = workdir / "noop_addon.py"
    noop_script.write_text(NOOP_ADDON, encoding="utf-8")
    proxies = {"addon": Proxy(upstream, workdir, addon=True), "bare": Proxy(upstream, workdir, addon=False),
               "noop": Proxy(upstream, workdir, addon=False, script=noop_script)}
    try:
        for proxy in proxies.values():  # warm up
            await one_session(proxy.port, "/channel", n // 5 or 1, 1, size=size)
        ratios, noop_ratios, with_us, without_us = [], [], [], []
        order = list(proxies)
        for r in range(args.rounds):
            per = {}
            for which in order[r % 3:] + order[:r % 3]:  # each proxy first, second and third in turn
                proxy = proxies[which]
                before = proxy.cpu()
                await one_session(proxy.port, "/channel", n, 100 + r, size=size)
                per[which] = (proxy.cpu() - before) / frames
                if which == "addon":  # the writer works apart: let it finish before the next measurement
                    await asyncio.to_thread(proxy.wait_session, 100 + r, time.perf_counter())
            with_us.append(per["addon"] * 1e6)
            without_us.append(per["bare"] * 1e6)
            ratios.append(per["addon"] / per["bare"])
            noop_ratios.append(per["noop"] / per["bare"])
        writers = proxies["addon"].children_cpu()
    finally:
        for proxy in proxies.values():
            proxy.stop()
    med = statistics.median
    print(f"1c. proxy CPU per frame, flood ({args.rounds} rounds of {frames} frames of ~{len(node_frame(0, size))} "
          f"bytes, sent as fast as the proxy takes them; not pinned):")
    print(f"   without the addon {med(without_us):7.1f} us   (rounds: {', '.join(f'{x:.0f}' for x in without_us)})")
    print(f"   with the addon    {med(with_us):7.1f} us   (rounds: {', '.join(f'{x:.0f}' for x in with_us)})")
    print(f"   transcript writer processes: {writers:.1f} CPU s in all (not the proxy's)")
    print(f"   flood ratio, proxy CPU per frame with / without the addon (median of rounds): {med(ratios):.3f}   "
          f"(rounds: {', '.join(f'{x:.3f}' for x in ratios)}; spread {min(ratios):.3f}-"
          f"{max(ratios):.3f})")
    print(f"   reference, same rounds: a script addon whose websocket_message does nothing: "
          f"{med(noop_ratios):.3f} of the proxy's CPU without it (rounds: {', '.join(f'{x:.3f}' for x in noop_ratios)}); "
          f"the recorder against it: {med(ratios) / med(noop_ratios):.3f}")
    cost = hook_cost(20_000, workdir, size)
    print(f"   the hook alone, in-process: {cost * 1e6:.1f} us per frame, {cost * 1e6 / med(without_us):.1%} of the "
          f"proxy's CPU per frame without the addon (the rest of the difference: mitmproxy dispatching to a "
          f"script addon, and the kernel's share of the journal write)")


async def echo(ws: Any, message: str) -> None:
    """Send ``message`` and wait for its echo."""
    await ws.send(message)
    await asyncio.wait_for(ws.recv(), 60)


async def lockstep(conns: dict[str, list[Any]], message: str, count: int) -> None:
    """``count`` steps: on each connection in turn, every proxy's frame sent together and echoed, each proxy's
    first, second... in turn."""
    kinds = list(conns)
    for i in range(count):
        order = kinds[i % len(kinds):] + kinds[:i % len(kinds)]
        for c in (0, 1):
            await asyncio.gather(*(echo(conns[kind][c], message) for kind in order))


#: The proxies of a paced trial: name, whether the recorder runs, whether the no-op script runs.
PACED_KINDS = (("bare", False, False), ("control", False, False), ("noop", False, True), ("addon", True, False))


async def paced_trials(args: argparse.Namespace, workdir: Path, upstream: int) -> None:
    """Part 1: proxy CPU per frame with and without the addon, paced (module docstring)."""
    steps, size = args.paced_steps, args.frame_size
    frames = 4 * steps  # two connections, a client frame and its echo per step
    noop_script = workdir / "noop_addon.py"
    noop_script.write_text(NOOP_ADDON, encoding="utf-8")
    cpus = sorted(os.sched_getaffinity(0))
    proxy_cpus = {cpus[-1]} if len(cpus) > 1 else None
    mine = os.sched_getaffinity(0)
    if proxy_cpus:
        os.sched_setaffinity(0, set(cpus[:-1]))
    per: dict[str, list[float]] = {kind: [] for kind, _, _ in PACED_KINDS}
    message = client_frame(0, size)
    try:
        for trial in range(args.trials):
            proxies = {kind: Proxy(upstream, workdir, addon=addon, script=noop_script if noop else None,
                                   cpus=proxy_cpus) for kind, addon, noop in PACED_KINDS}
            conns: dict[str, list[Any]] = {}
            try:
                for kind, proxy in proxies.items():
                    conns[kind] = [await connect(url(proxy.port, "/channel", role, 300 + trial, mode="echo"),
                                                 compression=None, max_size=None, ping_interval=None,
                                                 open_timeout=30, proxy=None)
                                   for role in ("initiator", "responder")]
                await lockstep(conns, message, max(50, steps // 10))  # warm up
                before = {kind: proxy.cpu() for kind, proxy in proxies.items()}
                await lockstep(conns, message, steps)
                for kind, proxy in proxies.items():
                    per[kind].append((proxy.cpu() - before[kind]) / frames)
                for ws in (w for pair in conns.values() for w in pair):
                    await ws.close()
                await asyncio.to_thread(proxies["addon"].wait_session, 300 + trial, time.perf_counter())
            finally:
                for proxy in proxies.values():
                    proxy.stop()
    finally:
        os.sched_setaffinity(0, mine)
    med = statistics.median
    ratios = {kind: [a / b for a, b in zip(per[kind], per["bare"], strict=True)] for kind in per}
    pinned = f"all on CPU {cpus[-1]}, the clients and node on the others" if proxy_cpus else "not pinned (1 CPU)"
    print(f"1. proxy CPU per frame, paced ({args.trials} trials, fresh proxies each; {frames} frames of "
          f"~{len(message)} bytes per proxy and trial, one frame in flight per connection; proxies {pinned}):")
    for kind in per:
        print(f"   {kind:8s} {med(per[kind]) * 1e6:7.1f} us   against 'bare': median {med(ratios[kind]):.3f} "
              f"(trials: {', '.join(f'{x:.3f}' for x in ratios[kind])})")
    print("   'control' is a second proxy without the addon: how far apart two identical proxies measure "
          "(the resolution of this figure)")
    print(f"RATIO proxy CPU per frame with / without the addon, paced (median of trials): "
          f"{med(ratios['addon']):.3f}   target <= 1.08   (spread {min(ratios['addon']):.3f}-"
          f"{max(ratios['addon']):.3f}; the no-op script {med(ratios['noop']):.3f}, the recorder against it "
          f"{med([a / b for a, b in zip(per['addon'], per['noop'], strict=True)]):.3f}; control {med(ratios['control']):.3f})")


#: The reference script of the CPU rounds: what mitmproxy costs to dispatch every event to a script addon.
NOOP_ADDON = """class Noop:
    def websocket_message(self, flow):
        pass


addons = [Noop()]
"""


def hook_cost(count: int, workdir: Path, size: int) -> float:
    """Seconds the recorder's ``websocket_message`` hook takes per message, measured in this process on a
    mitmproxy test flow (journal written as in the proxy, default options): steadier than the CPU ratio
    when other work shares the machine."""
    from mitmproxy.test import taddons, tflow
    from mitmproxy.websocket import WebSocketMessage
    from wsproto.frame_protocol import Opcode

    from chanlog.record.addon import ChannelRecorder

    addon = ChannelRecorder()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, chanlog_dir=str(workdir / "hook"), chanlog_writers=0)
        flow = tflow.twebsocketflow()
        flow.request.path = "/channel?initiator_id=ak_h&responder_id=ak_i&port=1&role=initiator"
        addon.websocket_start(flow)
        frames = [node_frame(i, size).encode() for i in range(100)] + [client_frame(i, size).encode()
                                                                        for i in range(100)]
        elapsed = 0.0
        for i in range(count):
            flow.websocket.messages.append(WebSocketMessage(Opcode.TEXT, i % 2 == 0, frames[i % 200]))
            start = time.perf_counter()
            addon.websocket_message(flow)
            elapsed += time.perf_counter() - start
        addon.websocket_end(flow)
        addon.done()
    return elapsed / count


async def instruction_counts(args: argparse.Namespace, workdir: Path, upstream: int) -> None:
    """Part 1b: user-space instructions per frame of the three proxies of part 1, each under valgrind's
    callgrind with instrumentation switched on (``callgrind_control -i on``) for one session of
    ``--instr-messages`` frames each way per connection, after a warm-up. Counts, unlike CPU seconds, do not
    move with what else the machine does; the kernel's share (socket and journal writes) is not in them."""
    valgrind, control = shutil.which("valgrind"), shutil.which("callgrind_control")
    if valgrind is None or control is None:
        print("1b. instructions per frame: skipped (valgrind and callgrind_control not found)")
        return
    n, size = args.instr_messages, args.frame_size
    frames = 4 * n
    noop_script = workdir / "noop_addon.py"
    noop_script.write_text(NOOP_ADDON, encoding="utf-8")
    counts: dict[str, int] = {}
    for which in ("bare", "noop", "addon"):
        out = workdir / f"callgrind-{which}.out"
        prefix = (valgrind, "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")
        proxy = Proxy(upstream, workdir, addon=which == "addon", script=noop_script if which == "noop" else None,
                      prefix=prefix)
        try:
            await one_session(proxy.port, "/channel", 20, 1, size=size)  # warm up
            subprocess.run([control, "-i", "on", str(proxy.proc.pid)], capture_output=True, check=True)
            await one_session(proxy.port, "/channel", n, 2, size=size)
            subprocess.run([control, "-i", "off", str(proxy.proc.pid)], capture_output=True, check=True)
        finally:
            proxy.stop()
        totals = [line for line in out.read_text(errors="replace").splitlines() if line.startswith("totals:")]
        if not totals:
            print(f"1b. instructions per frame: no totals in {out.name}; skipped")
            return
        counts[which] = int(totals[0].split()[1])
    per = {k: v / frames for k, v in counts.items()}
    print(f"1b. user-space instructions per frame (callgrind, one session of {frames} frames per proxy):")
    print(f"   without the addon {per['bare'] / 1e6:.3f} M, no-op script {per['noop'] / 1e6:.3f} M, "
          f"with the addon {per['addon'] / 1e6:.3f} M")
    print(f"RATIO proxy instructions per frame with / without the addon: {per['addon'] / per['bare']:.3f}   "
          f"target <= 1.08   (no-op script: {per['noop'] / per['bare']:.3f}; the recorder against it: "
          f"{per['addon'] / per['noop']:.3f})")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def long_session(proxy: Proxy, frames: int, size: int, session: int, marks: tuple[int, ...],
                       rss: dict[int, int], hold: asyncio.Event, ready: asyncio.Event | None = None) -> None:
    """One connection: ``frames`` frames (half each way); RSS read when the received count passes a mark."""
    n = frames // 2

    def progress(received: int) -> None:
        if received * 2 in marks:
            rss[received * 2] = proxy.status("VmRSS")

    await participant(proxy.port, "/channel", "initiator", n, session, progress, size, hold, ready)


async def segmented_session(proxy: Proxy, frames: int, size: int, session: int, marks: tuple[int, ...],
                            rss: dict[int, int], step: int = 2_000) -> None:
    """One connection: the client sends a frame asking for ``step`` node frames and receives them, until
    ``frames`` frames have passed; RSS is read at each mark, once the proxy's buffers have drained."""
    done = 0
    async with connect(url(proxy.port, "/channel", "initiator", session, mode="segments", size=str(size)),
                       compression=None, max_size=None, ping_interval=None, open_timeout=30, proxy=None) as ws:
        while done < frames:
            n = min(step, frames - done) - 1
            await ws.send(f"more {n}")
            while await asyncio.wait_for(ws.recv(), 120) != "ok":
                pass
            done += n + 2  # the request, n frames and "ok"
            for mark in marks:
                if mark not in rss and done >= mark:
                    rss[mark] = proxy.status("VmRSS")


async def write_and_memory(args: argparse.Namespace, workdir: Path, upstream: int, direct_rtt: float) -> None:
    size = args.frame_size
    proxy = Proxy(upstream, workdir, addon=True)
    writes: dict[int, float] = {}
    rss: dict[int, int] = {}
    try:
        # 3. (10k) a short session
        hold = asyncio.Event()
        hold.set()
        await long_session(proxy, args.small, size, 1, (), rss, hold)
        writes[args.small] = await asyncio.to_thread(proxy.wait_session, 1, time.perf_counter())
        # 2. + 3. (100k) latency of a live session while the 100k-frame transcript is written
        hold, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(long_session(proxy, args.medium, size, 2, (), rss, hold, ready))
        await ready.wait()
        quiet = await probe(proxy.port, args.probe_seconds, 3)
        closed = time.perf_counter()
        hold.set()
        await task
        waiting = asyncio.ensure_future(asyncio.to_thread(proxy.wait_session, 2, closed))
        during = await probe(proxy.port, 0, 4, stop=waiting)
        writes[args.medium] = await waiting
        # 3. + 4. (200k) memory of one long session in the default configuration, on a fresh proxy (the
        # one above still holds the heap the 100k session's socket buffers grew to), then its write
        proxy.stop()
        proxy = Proxy(upstream, workdir, addon=True)
        base = proxy.status("VmRSS")
        marks = (args.small, args.medium, args.large)
        await segmented_session(proxy, args.large, size, 5, marks, rss)
        closed = time.perf_counter()
        writes[args.large] = await asyncio.to_thread(proxy.wait_session, 5, closed)
    finally:
        proxy.stop()
    q = [x - direct_rtt for x in quiet]
    d = [x - direct_rtt for x in during] or [float("nan")]
    print(f"2. added latency of a live session (round trip through the proxy minus {direct_rtt * 1e3:.2f} ms direct):")
    print(f"   no write going on:                         p50 {percentile(q, .5) * 1e3:6.2f} ms  "
          f"p99 {percentile(q, .99) * 1e3:6.2f} ms  ({len(q)} round trips)")
    print(f"   while a {args.medium}-frame transcript is written: p50 {percentile(d, .5) * 1e3:6.2f} ms  "
          f"p99 {percentile(d, .99) * 1e3:6.2f} ms  ({len(d)} round trips)")
    print(f"RATIO p99 during the write / without: {percentile(d, .99) / max(percentile(q, .99), 1e-6):.2f}   "
          f"target <= 1.5   (p50: {percentile(d, .5) / max(percentile(q, .5), 1e-6):.2f})")
    print("3. final write time, from the session's close until its transcript exists:")
    for frames, seconds in sorted(writes.items()):
        print(f"   {frames:>7} frames: {seconds:6.2f} s   ({seconds / frames * 1e6:.0f} us per frame)")
    print(f"FIGURE {args.medium}-frame transcript written in {writes[args.medium]:.2f} s   target < 5 s")
    mb = 1024
    print(f"4. RSS of the recording mitmdump (default configuration), one session; {base / mb:.0f} MiB before it:")
    print("   " + ", ".join(f"after {k // 1000}k frames {v / mb:.0f} MiB" for k, v in sorted(rss.items())))
    if args.small in rss and args.large in rss:
        print(f"RATIO RSS after {args.large // 1000}k / after {args.small // 1000}k frames: "
              f"{rss[args.large] / rss[args.small]:.2f}   target <= 1.2")


async def direct_round_trip(upstream: int) -> float:
    return statistics.median(await probe(upstream, 1.0, 9))


async def run(args: argparse.Namespace, workdir: Path) -> None:
    async with serve(node_handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None) as server:
        upstream = server.sockets[0].getsockname()[1]
        if args.only in (None, "cpu"):
            if args.trials:
                await paced_trials(args, workdir, upstream)
            if args.instr_messages:
                await instruction_counts(args, workdir, upstream)
            if args.rounds:
                await cpu_rounds(args, workdir, upstream)
        if args.only in (None, "write"):
            await write_and_memory(args, workdir, upstream, await direct_round_trip(upstream))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=7, help="paced CPU trials (1), fresh proxies each; 0 skips")
    parser.add_argument("--paced-steps", type=int, default=1000,
                        help="paced CPU trials: client frames (each echoed) per connection and trial")
    parser.add_argument("--messages", type=int, default=2000, help="flood CPU rounds (1c): frames each way per connection")
    parser.add_argument("--rounds", type=int, default=5, help="flood CPU rounds (1c), each through the three proxies; "
                        "0 skips")
    parser.add_argument("--frame-size", type=int, default=FRAME_SIZE, help="bytes per frame (about)")
    parser.add_argument("--small", type=int, default=10_000, help="frames of the short session")
    parser.add_argument("--medium", type=int, default=100_000, help="frames of the session whose write is probed")
    parser.add_argument("--large", type=int, default=200_000, help="frames of the long session (memory)")
    parser.add_argument("--probe-seconds", type=float, default=5.0, help="latency probe without a write")
    parser.add_argument("--instr-messages", type=int, default=500,
                        help="instruction counts (1b): frames each way per connection; 0 skips the part")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every part")
    parser.add_argument("--only", choices=("cpu", "write"), help="run one part")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.rounds, args.small, args.medium, args.large, args.probe_seconds = 200, 2, 1000, 4000, 8000, 1
        args.trials, args.paced_steps = 2, 100
        args.instr_messages = min(args.instr_messages, 50)
    if not MITMDUMP.exists():
        raise SystemExit(f"mitmdump not found beside {sys.executable}")
    workdir = Path(tempfile.mkdtemp(prefix="chanlog-bench-"))
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    try:
        asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
