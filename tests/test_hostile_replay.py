"""A hostile WebSocket client against a real ``chanlog replay`` process (issue 16).

While hostile clients send a 10 MB base58-looking ``tx_``, a ``signed_tx`` holding a 1 MiB RLP list and
deeply nested JSON (as a request and as a ping) and terminal escapes, a well-behaved client plays the example session through
the same fake node: it must complete (the hostile frames used to freeze the node for 45 s and more), and
the node must then stop on SIGTERM (a hang guard of :data:`STOP_GUARD` seconds, not a timing: the time it
takes depends on the machine's load).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import rlp
from conftest import EXAMPLE, REPO

from chanlog.codec.encoding import encode_api
from chanlog.replay.player import aplay
from chanlog.transcript import load

pytestmark = pytest.mark.e2e

#: Seconds the well-behaved session may take (alone it takes about one; the hostile frames used to
#: freeze the node's event loop for 45 s and more).
SESSION_BOUND = 20.0
#: Seconds the node may take to stop on SIGTERM before the test calls it hung.
STOP_GUARD = 10.0


def hostile_frames() -> list[str]:
    huge_tx = "tx_" + "A" * 10_000_000
    signed = rlp.encode([b"\x0b", b"\x01", [b"\x01"] * (1 << 20), rlp.encode([b"\x0c", b"\x01"])])
    list_tx = encode_api("tx", signed)

    def sign(blob: str) -> str:
        return json.dumps({"jsonrpc": "2.0", "method": "channels.initiator_sign", "id": 1,
                           "params": {"signed_tx": blob}})

    deep = "[" * 1_000_000 + "]" * 1_000_000
    deep_ping = '{"jsonrpc":"2.0","method":"channels.system","params":{"action":"ping","x":' + deep + "}}"
    escapes = "\x1b]0;owned\x07\x1b[2J not JSON, terminal escapes"
    return [sign(huge_tx), sign(list_tx), '{"jsonrpc":"2.0","method":"channels.update.new","params":' + deep + "}",
            deep_ping, escapes]


async def attack(url: str, n: int, frame: str) -> bool:
    """One hostile client: both participants of its own session (the responder only listens, so that the
    node plays on to the initiator's first frame to check); the initiator sends ``frame`` a few times and
    reads until the node reports the divergence. Whether it did is returned."""
    import websockets

    session = f"chanlog_session=evil{n}"
    try:
        async with websockets.connect(f"{url}?role=initiator&{session}", max_size=None, open_timeout=10) as ws, \
                websockets.connect(f"{url}?role=responder&{session}", max_size=None, open_timeout=10):
            try:
                for _ in range(3):
                    await ws.send(frame)
            except websockets.ConnectionClosed:
                pass  # the node reports the first one and closes (close code 4000): the error is still queued
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                answer = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                if "divergence" in answer:
                    return True
    except (OSError, TimeoutError, Exception):  # noqa: BLE001 - the node may close: the caller checks the result
        return False
    return False


def test_hostile_clients_do_not_stall_a_good_session_and_sigterm_stops_the_node(tmp_path):
    stderr = (tmp_path / "replay.err").open("w")  # a file: the node's reports must never block on a pipe
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "chanlog", "replay", str(EXAMPLE), "--port", "0",
                             "--sessions", "0", "--timeout", "10", "--grace", "0.5"],
                            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=REPO)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:"), url
        frames = hostile_frames()

        async def scenario() -> tuple[object, float, list[bool]]:
            attackers = [asyncio.create_task(attack(url, n, frame)) for n, frame in enumerate(frames)]
            await asyncio.sleep(0.2)  # the hostile frames are on their way or being read
            start = time.monotonic()
            report = await aplay(load(EXAMPLE), url, timeout=10, session="good")
            elapsed = time.monotonic() - start
            return report, elapsed, await asyncio.gather(*attackers)

        report, elapsed, reported = asyncio.run(scenario())
        assert report.ok, report.summary()
        assert elapsed < SESSION_BOUND, f"the good session took {elapsed:.1f} s"
        assert all(reported), f"the node did not report every hostile frame as a divergence: {reported}"
        assert proc.poll() is None, "the node died"
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GUARD)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the node did not stop on SIGTERM within {STOP_GUARD} s")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
    log = (tmp_path / "replay.err").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "\x1b" not in log and "\\x1b]0;owned\\x07" in log  # the node's reports are terminal-safe
    assert "played to the end" in log
    # the reports quote at most MAX_REPORT_CHARS of each hostile frame (megabytes were sent), and say so
    assert len(log) < 200_000, f"the node's reports hold {len(log):,} characters"
    assert "more characters of" in log
