"""Benchmark: the fake node (``chanlog replay``) against a raw ``websockets`` echo server, same machine, same run.

    python benchmarks/replay.py [--transcript PATH] [--repeat 20] [--sessions 100]

Both servers run in their own process (``chanlog replay --port 0 --sessions 0``; an echo server built on
``websockets.asyncio.server.serve``), both with the same websockets settings (no compression, no
keepalive pings). The clients run in this process:

* replay: :func:`chanlog.replay.player.aplay` plays the transcript's client side (both roles, every recorded
  connection) and checks every node frame (the transcript is cut into a script once, as the fake node
  does); a *frame* is one WebSocket message.
* echo: the same connections, carrying the same number of messages: on a connection with ``k`` recorded
  frames a raw ``websockets`` client sends ``ceil(k/2)`` of them (recorded texts), one at a time, each
  echoed back; every message counts as a frame.

Printed: frames per second for one session at a time (``--repeat`` sessions in a row) and for
``--sessions`` sessions at once (each the best of ``--rounds`` rounds), the CPU time each side used,
and the ratio replay / echo. Target: ratio >= 0.5.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from chanlog.replay import Script, load_transcript  # noqa: E402
from chanlog.replay.player import aplay  # noqa: E402

SETTINGS = {"compression": None, "ping_interval": None, "max_size": 2 ** 24}


# -- the echo server (run in a child process) --------------------------------------------------------------


async def _echo(ws) -> None:
    async for message in ws:
        await ws.send(message)


async def echo_server() -> None:
    from websockets.asyncio.server import serve

    async with serve(_echo, "127.0.0.1", 0, **SETTINGS) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"ws://127.0.0.1:{port}/channel", flush=True)
        await asyncio.Future()


# -- clients ---------------------------------------------------------------------------------------------------


async def echo_session(url: str, connections: list[list[str | bytes]]) -> int:
    """Both roles' connections at once (each role's in order); returns the messages exchanged."""
    from websockets.asyncio.client import connect

    async def role(conns: list[list[str | bytes]]) -> int:
        count = 0
        for frames in conns:
            async with connect(url + "?role=x", **SETTINGS) as ws:
                for frame in frames[: (len(frames) + 1) // 2]:
                    await ws.send(frame)
                    await ws.recv()
                    count += 2
        return count

    by_role: dict[int, list[list[str | bytes]]] = {}
    for i, frames in enumerate(connections):
        by_role.setdefault(i % 2, []).append(frames)
    return sum(await asyncio.gather(*(role(c) for c in by_role.values())))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (Linux /proc; 0.0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


async def measure(label: str, make_runs, total_sessions: int, concurrent: bool, server_pid: int,
                  rounds: int) -> float:
    """Frames per second of the best of ``rounds`` rounds (the machine may be busy with other work)."""
    best = None
    for r in range(rounds):
        server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
        start = time.perf_counter()
        if concurrent:
            frames = sum(await asyncio.gather(*(make_runs(f"{r}-{i}") for i in range(total_sessions))))
        else:
            frames = 0
            for i in range(total_sessions):
                frames += await make_runs(f"{r}-{i}")
        elapsed = time.perf_counter() - start
        server_cpu, client_cpu = cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu
        if best is None or elapsed < best[1]:
            best = (frames, elapsed, server_cpu, client_cpu)
    frames, elapsed, server_cpu, client_cpu = best
    rate = frames / elapsed
    print(f"  {label:<28} {frames:>8} frames in {elapsed:7.3f} s = {rate:>10,.0f} frames/s"
          f"   (CPU: server {server_cpu:.2f} s, client {client_cpu:.2f} s)")
    return rate


def start_server(args: list[str]) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, cwd=REPO)
    url = proc.stdout.readline().strip()
    if not url.startswith("ws://"):
        proc.kill()
        raise SystemExit(f"server did not start: {args}")
    return proc, url


async def main(transcript_path: Path, repeat: int, sessions: int, rounds: int) -> None:
    transcript = load_transcript(transcript_path)
    script = Script.build(transcript)
    connections = [[s.expected.wire for s in cs.frames if s.expected is not None and s.expected.is_json]
                   for conns in script.roles.values() for cs in conns]
    print(f"transcript: {transcript.name} ({script.frame_count} frames, {len(connections)} connections per session)")
    replay, replay_url = start_server(["-m", "chanlog", "replay", str(transcript_path), "--port", "0",
                                       "--sessions", "0", "--timeout", "60"])
    echo, echo_url = start_server([str(Path(__file__).resolve()), "--echo-server"])
    path = urlsplit(replay_url).path
    try:
        async def replay_run(i: str, key: str | None = None) -> int:
            report = await aplay(script, replay_url, session=key, timeout=60)
            if not report.ok:
                raise SystemExit("\n".join(d.format() for d in report.divergences))
            return report.sent + report.received

        async def echo_run(i: str) -> int:
            return await echo_session(echo_url.replace("/channel", path), connections)

        results = {}
        for label, concurrent, count in (("one session", False, repeat), (f"{sessions} concurrent sessions", True,
                                                                           sessions)):
            print(f"{label} ({count} session{'s' if count > 1 else ''}{' in a row' if not concurrent else ''}):")
            r = await measure("chanlog replay + play", lambda i, c=concurrent: replay_run(i, f"b{i}" if c else None),
                              count, concurrent, replay.pid, rounds)
            e = await measure("websockets echo", echo_run, count, concurrent, echo.pid, rounds)
            results[label] = r / e
            print(f"  ratio replay/echo: {r / e:.2f}")
    finally:
        replay.terminate()
        echo.terminate()
        replay.wait(10)
        echo.wait(10)
    print("target: ratio >= 0.5; " + ", ".join(f"{k}: {v:.2f}" for k, v in results.items()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transcript", type=Path, default=REPO / "transcripts" / "init_per_group.yaml",
                        help="transcript (YAML) or node Markdown log to replay")
    parser.add_argument("--repeat", type=int, default=50, help="sessions played one after another")
    parser.add_argument("--sessions", type=int, default=100, help="sessions played at once")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement; the best one counts")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.echo_server:
        asyncio.run(echo_server())
    else:
        asyncio.run(main(ns.transcript, ns.repeat, ns.sessions, ns.rounds))
