"""A hostile WebSocket client against a real ``chanlog replay`` process (issue 16).

While hostile clients send a 10 MB base58-looking ``tx_``, a ``signed_tx`` holding a 1 MiB RLP list and
deeply nested JSON (as a request and as a ping), a well-behaved client plays the example session through
the same fake node: it must complete in about the time it takes alone, and the node must then stop on
SIGTERM within a second.
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

from chanlog.encoding import encode_api
from chanlog.play import aplay
from chanlog.transcript import load

pytestmark = pytest.mark.e2e

#: Seconds the well-behaved session may take (alone it takes about one; the hostile frames used to
#: freeze the node's event loop for 45 s and more).
SESSION_BOUND = 20.0


def hostile_frames() -> list[str]:
    huge_tx = "tx_" + "A" * 10_000_000
    signed = rlp.encode([b"\x0b", b"\x01", [b"\x01"] * (1 << 20), rlp.encode([b"\x0c", b"\x01"])])
    list_tx = encode_api("tx", signed)

    def sign(blob: str) -> str:
        return json.dumps({"jsonrpc": "2.0", "method": "channels.initiator_sign", "id": 1,
                           "params": {"signed_tx": blob}})

    deep = "[" * 1_000_000 + "]" * 1_000_000
    deep_ping = '{"jsonrpc":"2.0","method":"channels.system","params":{"action":"ping","x":' + deep + "}}"
    return [sign(huge_tx), sign(list_tx), '{"jsonrpc":"2.0","method":"channels.update.new","params":' + deep + "}",
            deep_ping]


async def attack(url: str, n: int, frame: str) -> None:
    """One hostile client: its own session, the frame sent a few times, then it hangs around."""
    import websockets

    try:
        async with websockets.connect(f"{url}?role=initiator&chanlog_session=evil{n}", max_size=None,
                                      open_timeout=10) as ws:
            for _ in range(3):
                await ws.send(frame)
            with_timeout = asyncio.wait_for(ws.recv(), 5)
            try:
                await with_timeout
            except (TimeoutError, Exception):  # noqa: BLE001 - whatever the node answers, or closes
                pass
    except (OSError, Exception):  # noqa: BLE001 - the node may refuse or close: only the good session counts
        pass


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

        async def scenario() -> tuple[object, float]:
            attackers = [asyncio.create_task(attack(url, n, frame)) for n, frame in enumerate(frames)]
            await asyncio.sleep(0.2)  # the hostile frames are on their way or being read
            start = time.monotonic()
            report = await aplay(load(EXAMPLE), url, timeout=10, session="good")
            elapsed = time.monotonic() - start
            await asyncio.gather(*attackers)
            return report, elapsed

        report, elapsed = asyncio.run(scenario())
        assert report.ok, report.summary()
        assert elapsed < SESSION_BOUND, f"the good session took {elapsed:.1f} s"
        assert proc.poll() is None, "the node died"
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        stopped_in = time.monotonic() - sent
        assert stopped_in < 1.0, f"the node took {stopped_in:.2f} s to stop on SIGTERM"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stderr.close()
    log = (tmp_path / "replay.err").read_text()
    assert "Traceback" not in log, log[-3000:]
    assert "played to the end" in log
