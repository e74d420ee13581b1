"""Benchmark the recorder: messages/s through mitmdump with and without it, and memory of a long session.

Run: ``python benchmarks/capture.py`` (``--help`` for sizes). Everything runs on 127.0.0.1: a WebSocket
"node" and the participants in this process (``websockets``), ``mitmdump -s addons/channel.py`` from
this virtualenv as a separate process.

1. Throughput. One mitmdump with the addon loaded; each round is one session of two connections
   (initiator, responder) in which the node pushes ``--messages`` frames to each participant while
   each participant sends as many to the node, all at full speed. Rounds on ``/channel`` are recorded;
   rounds on ``/plain`` go through the same process without being recorded (the addon only looks at
   the path). Each round runs one of each back to back, in alternating order; the figure is the
   median of the rounds' ratios (steady when other work on the machine drifts between rounds). A
   second mitmdump without the addon gives the bare proxy for reference, and a direct connection (no
   proxy) shows the load generator is not the bottleneck. A recorded round is timed until the last
   frame arrives; the transcript is written after the session closes, in the background, and that is
   timed apart. Last, the hook's own cost per message is measured in-process and set against the
   time per message through mitmdump (an expected ratio that other load on the machine hardly moves).
   mitmdump and this process are pinned to different CPUs when there are two or more.
   Target: recorded/unrecorded >= 0.9.
2. Memory. One session of ``--frames`` frames (half from the node, half from the client) through a
   mitmdump with ``chanlog_bounded=true``; the process's RSS is sampled every tenth of the way, and its
   peak (VmHWM) read after the transcript is written; ``--unbounded`` runs the same session without
   bounded mode for contrast. Target: RSS flat in bounded mode.
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
from urllib.parse import parse_qsl, urlencode, urlsplit

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "addons" / "channel.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
TX = "tx_" + "+QENCwH4hLhAMCEsNAocaKf2YIFLfEC73Dbz5GM38DbkfBETkNS4dWtO4PJvfkBeK29vVkaoXiDbTM0KtSek36eaIYgW" * 3


def node_frame(n: int) -> str:
    """A node frame of realistic size (~400 bytes): an update notification carrying a tx blob."""
    return json.dumps({"jsonrpc": "2.0", "method": "channels.sign.update",
                       "params": {"channel_id": "ch_bench", "data": {"signed_tx": TX, "updates": [], "n": n}},
                       "version": 1}, separators=(",", ":"))


def client_frame(n: int) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "channels.update",
                       "params": {"signed_tx": TX}}, separators=(",", ":"))


# -- the node ------------------------------------------------------------------------------------


async def node_handler(ws) -> None:
    """Push ``n`` node frames while reading ``n`` client frames, then send ``done`` and wait for close."""
    params = dict(parse_qsl(urlsplit(ws.request.path).query))
    n = int(params.get("n", "0"))

    async def push() -> None:
        for i in range(n):
            await ws.send(node_frame(i))

    pusher = asyncio.create_task(push())
    got = 0
    async for _ in ws:
        got += 1
        if got == n:
            break
    await pusher
    await ws.send("done")
    await ws.wait_closed()


async def participant(port: int, path: str, role: str, n: int, session: int,
                      on_progress=None) -> None:
    """Connect through ``port``, send ``n`` client frames while receiving ``n`` node frames + ``done``."""
    query = urlencode({"initiator_id": "ak_bench", "responder_id": "ak_bench2", "port": str(20000 + session),
                       "protocol": "json-rpc", "role": role, "n": str(n)})
    async with connect(f"ws://127.0.0.1:{port}{path}?{query}", compression=None, max_size=None,
                       ping_interval=None, open_timeout=30, close_timeout=30, proxy=None) as ws:
        async def send() -> None:
            for i in range(n):
                await ws.send(client_frame(i))

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


async def one_session(port: int, path: str, n: int, session: int, roles=("initiator", "responder"),
                      on_progress=None) -> float:
    """Seconds for one session: every connection has received its ``n`` frames and ``done``."""
    start = time.perf_counter()
    await asyncio.gather(*(participant(port, path, role, n, session, on_progress) for role in roles))
    return time.perf_counter() - start


# -- mitmdump ------------------------------------------------------------------------------------


#: With two or more CPUs, mitmdump runs on the last one and this process (node and participants) on
#: the first, so that the two do not compete for a core and the figures are steadier.
PROXY_CPU, LOAD_CPU = (sorted(os.sched_getaffinity(0))[-1], sorted(os.sched_getaffinity(0))[0]) \
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1 else (None, None)


def pin(cpu: int | None) -> None:
    """Run the calling process on ``cpu`` only (nothing when ``None``)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    """A mitmdump child process in reverse mode in front of ``upstream``."""

    def __init__(self, upstream: int, workdir: Path, addon: bool, **sets: str) -> None:
        self.port = free_port()
        self.dir = workdir / f"rec-{self.port}"
        args = [str(MITMDUMP), "-q", "--mode", f"reverse:http://127.0.0.1:{upstream}", "--listen-host",
                "127.0.0.1", "--listen-port", str(self.port), "--set", "flow_detail=0"]
        if addon:
            args += ["-s", str(ADDON), "--set", f"chanlog_dir={self.dir}"]
            for k, v in sets.items():
                args += ["--set", f"{k}={v}"]
        self.log = open(workdir / f"mitmdump-{self.port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                     preexec_fn=lambda: pin(PROXY_CPU))
        deadline = time.monotonic() + 30
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

    def status(self, field: str) -> int:
        """A ``/proc/PID/status`` figure in KiB (``VmRSS``, ``VmHWM``)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def wait_transcripts(self, count: int, timeout: float = 300) -> float:
        """Seconds until ``count`` transcripts exist in the recorder's folder."""
        start = time.perf_counter()
        while len(list(self.dir.glob("*.yaml"))) < count:
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"transcripts not written within {timeout}s")
            time.sleep(0.02)
        return time.perf_counter() - start

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def hook_cost(count: int, workdir: Path) -> float:
    """Seconds the recorder's ``websocket_message`` hook takes per message, measured in this process on
    a mitmproxy test flow (journal written and flushed as in the proxy)."""
    from mitmproxy.test import taddons, tflow
    from mitmproxy.websocket import WebSocketMessage
    from wsproto.frame_protocol import Opcode

    from chanlog.capture import ChannelRecorder

    addon = ChannelRecorder()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, chanlog_dir=str(workdir / "hook"), chanlog_bounded=True)
        flow = tflow.twebsocketflow()
        flow.request.path = "/channel?initiator_id=ak_h&responder_id=ak_i&port=1&role=initiator"
        addon.websocket_start(flow)
        frames = [node_frame(i).encode() for i in range(100)] + [client_frame(i).encode() for i in range(100)]
        elapsed = 0.0
        for i in range(count):
            flow.websocket.messages.append(WebSocketMessage(Opcode.TEXT, i % 2 == 0, frames[i % 200]))
            start = time.perf_counter()
            addon.websocket_message(flow)
            elapsed += time.perf_counter() - start
        addon.websocket_end(flow)
        addon.done()
    return elapsed / count


# -- the two benchmarks --------------------------------------------------------------------------


async def throughput(args: argparse.Namespace, workdir: Path) -> None:
    n, rounds = args.messages, args.rounds
    per_session = 4 * n  # two connections, n each way
    async with serve(node_handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None) as server:
        upstream = server.sockets[0].getsockname()[1]
        direct = [per_session / await one_session(upstream, "/channel", n, 0)]
        proxy = Proxy(upstream, workdir, addon=True)
        bare = Proxy(upstream, workdir, addon=False)
        try:
            await one_session(proxy.port, "/plain", n // 5 or 1, 1)  # warm up both
            await one_session(bare.port, "/channel", n // 5 or 1, 1)
            recorded, plain, bare_rates, writes, pairs = [], [], [], [], []
            written = 0
            for r in range(rounds):
                rates = {}
                for kind in (("recorded", "plain") if r % 2 == 0 else ("plain", "recorded")):
                    if kind == "recorded":
                        rates[kind] = per_session / await one_session(proxy.port, "/channel", n, 100 + r)
                        written += 1
                        writes.append(await asyncio.to_thread(proxy.wait_transcripts, written))
                    else:
                        rates[kind] = per_session / await one_session(proxy.port, "/plain", n, 200 + r)
                recorded.append(rates["recorded"])
                plain.append(rates["plain"])
                pairs.append(rates["recorded"] / rates["plain"])
                bare_rates.append(per_session / await one_session(bare.port, "/channel", n, 300 + r))
                direct.append(per_session / await one_session(upstream, "/channel", n, 0))
        finally:
            proxy.stop()
            bare.stop()
    med = statistics.median
    print(f"throughput: {rounds} rounds, {per_session} messages per session "
          f"(2 connections x {n} each way, ~{len(node_frame(0))}-byte frames)")
    print(f"  direct, no proxy                 {med(direct):10.0f} msg/s")
    print(f"  mitmdump without the addon       {med(bare_rates):10.0f} msg/s")
    print(f"  mitmdump + addon, not recorded   {med(plain):10.0f} msg/s   (rounds: "
          + ", ".join(f"{x:.0f}" for x in plain) + ")")
    print(f"  mitmdump + addon, recorded       {med(recorded):10.0f} msg/s   (rounds: "
          + ", ".join(f"{x:.0f}" for x in recorded) + ")")
    print(f"  transcript written after close in {med(writes):.2f} s (median; background thread)")
    print("  ratio of each back-to-back pair: " + ", ".join(f"{x:.3f}" for x in pairs))
    print(f"RATIO recorded / not recorded (same mitmdump, same run; median of pairs): {med(pairs):.3f}   "
          f"target >= 0.9")
    print(f"ratio of the medians recorded / not recorded:            {med(recorded) / med(plain):.3f}")
    print(f"ratio recorded / mitmdump without the addon:             {med(recorded) / med(bare_rates):.3f}")
    cost = hook_cost(20_000, workdir)
    print(f"hook cost: {cost * 1e6:.1f} us per message in-process, against {1e6 / med(plain):.0f} us per message "
          f"through mitmdump: expected ratio {1 / (1 + cost * med(plain)):.3f} (steadier than the timed one "
          "when other work shares the machine)")


async def memory(args: argparse.Namespace, workdir: Path, bounded: bool) -> None:
    frames = args.frames
    n = frames // 2  # one connection: n from the node, n from the client
    async with serve(node_handler, "127.0.0.1", 0, compression=None, max_size=None, ping_interval=None) as server:
        upstream = server.sockets[0].getsockname()[1]
        proxy = Proxy(upstream, workdir, addon=True, chanlog_bounded="true" if bounded else "false")
        samples: list[tuple[int, int]] = []
        step = max(1, n // 10)

        def progress(received: int) -> None:
            if received % step == 0:
                samples.append((received * 2, proxy.status("VmRSS")))

        try:
            start_rss = proxy.status("VmRSS")
            elapsed = await one_session(proxy.port, "/channel", n, 1, roles=("initiator",), on_progress=progress)
            end_rss = proxy.status("VmRSS")
            write = await asyncio.to_thread(proxy.wait_transcripts, 1)
            hwm, after = proxy.status("VmHWM"), proxy.status("VmRSS")
            size = sum(p.stat().st_size for p in proxy.dir.glob("*.yaml"))
        finally:
            proxy.stop()
    mb = 1024
    mode = "bounded" if bounded else "unbounded"
    print(f"memory, {mode} mode: one session of {2 * n} frames in {elapsed:.1f} s "
          f"({2 * n / elapsed:.0f} msg/s); transcript {size / 1e6:.1f} MB written in {write:.1f} s after close")
    print("  RSS MiB at frames: " + ", ".join(f"{f // 1000}k={r / mb:.0f}" for f, r in samples))
    first = samples[0][1] if samples else start_rss
    print(f"  RSS at start {start_rss / mb:.0f} MiB, at {samples[0][0] if samples else 0} frames "
          f"{first / mb:.0f} MiB, at end {end_rss / mb:.0f} MiB (growth after the first tenth "
          f"{(end_rss - first) / mb:+.0f} MiB), after writing {after / mb:.0f} MiB")
    print(f"PEAK RSS ({mode}, VmHWM incl. writing the transcript): {hwm / mb:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="frames each way per connection per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds of each kind (recorded, not recorded)")
    parser.add_argument("--frames", type=int, default=100_000, help="frames in the memory session")
    parser.add_argument("--unbounded", action="store_true",
                        help="also run the memory session without bounded mode, for contrast")
    parser.add_argument("--only", choices=("throughput", "memory"), help="run one benchmark")
    args = parser.parse_args()
    if not MITMDUMP.exists():
        raise SystemExit(f"mitmdump not found beside {sys.executable}")
    pin(LOAD_CPU)
    workdir = Path(tempfile.mkdtemp(prefix="chanlog-bench-"))
    try:
        if args.only in (None, "throughput"):
            asyncio.run(throughput(args, workdir))
        if args.only in (None, "memory"):
            asyncio.run(memory(args, workdir, bounded=True))
            if args.unbounded:
                asyncio.run(memory(args, workdir, bounded=False))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
