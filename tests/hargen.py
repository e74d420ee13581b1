"""Made-up HAR files for memory tests and benchmarks (tests/test_har.py, benchmarks/har.py): many short channel
sessions one after another, or many small HTTP entries around one channel session. Written entry by entry, so
that a file of any size costs its writer no memory."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

T0 = 1_764_000_000.0  # 2025-11-24: a fixed start, so the files are the same every run


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _info(channel_id: str | None, event: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "method": "channels.info",
                       "params": {"channel_id": channel_id, "data": {"event": event}}, "version": 1},
                      separators=(",", ":"))


def session_entries(k: int, t: float, rounds: int = 2) -> list[dict[str, Any]]:
    """The two WebSocket entries (initiator, responder) of channel session ``k`` starting at Unix time ``t``:
    ``fsm_up`` to each, the channel named, ``rounds`` update requests and replies; about 1 s long."""
    params = {"initiator_id": f"ak_init{k}", "responder_id": f"ak_resp{k}", "port": str(10000 + k % 50000),
              "protocol": "json-rpc"}
    channel = f"ch_gen{k}"
    entries = []
    for j, role in enumerate(("initiator", "responder")):
        start = t + j * 0.01
        messages = [{"type": "receive", "time": start + 0.02, "opcode": 1, "data": _info(None, "fsm_up")},
                    {"type": "receive", "time": start + 0.05, "opcode": 1, "data": _info(channel, "funding_created")}]
        for r in range(rounds):
            at = start + 0.1 + r * 0.1
            request = {"jsonrpc": "2.0", "id": r, "method": "channels.update.new",
                       "params": {"from": params["initiator_id"], "to": params["responder_id"], "amount": r + 1}}
            messages.append({"type": "send", "time": at, "opcode": 1, "data": json.dumps(request)})
            messages.append({"type": "receive", "time": at + 0.01, "opcode": 1,
                             "data": json.dumps({"jsonrpc": "2.0", "id": r, "result": "ok", "channel_id": channel})})
        entries.append({
            "startedDateTime": _iso(start), "time": 1000, "_resourceType": "websocket",
            "request": {"method": "GET", "url": "ws://localhost:3014/channel?" + urlencode({**params, "role": role}),
                        "httpVersion": "HTTP/1.1", "headers": [], "queryString": [], "cookies": [],
                        "headersSize": -1, "bodySize": 0},
            "response": {"status": 101, "statusText": "Switching Protocols", "httpVersion": "HTTP/1.1",
                         "headers": [], "cookies": [], "content": {"size": 0, "mimeType": ""}, "redirectURL": "",
                         "headersSize": -1, "bodySize": 0},
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
            "_webSocketMessages": messages,
            "_chanlogClose": {"code": 1000, "closed_by": "client", "time": start + 0.9},
        })
    return entries


def http_entry(i: int, t: float) -> dict[str, Any]:
    """A small HTTP entry (a REST call to the node), about 600 bytes of JSON."""
    return {"startedDateTime": _iso(t), "time": 3,
            "request": {"method": "GET", "url": f"http://localhost:3013/v3/accounts/ak_gen{i}", "httpVersion": "HTTP/1.1",
                        "headers": [{"name": "Accept", "value": "application/json"}], "queryString": [], "cookies": [],
                        "headersSize": -1, "bodySize": 0},
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                         "content": {"size": 60, "mimeType": "application/json",
                                     "text": json.dumps({"id": f"ak_gen{i}", "balance": i, "nonce": i % 7})},
                         "redirectURL": "", "headersSize": -1, "bodySize": 60},
            "cache": {}, "timings": {"send": 0, "wait": 3, "receive": 0}}


def write_har(path: Path, sessions: int = 1, http: int = 0) -> int:
    """Write a HAR of ``sessions`` channel sessions one after another (2 s apart) and ``http`` HTTP entries
    spread among them, ``log.creator`` last (as some tools write it); returns its size in bytes."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"log": {"version": "1.2", "entries": [')
        sep = ""
        every = -(-http // max(1, sessions))  # HTTP entries after each session (the last one takes the rest)
        done_http = 0
        for k in range(sessions):
            for entry in session_entries(k, T0 + 2 * k):
                fh.write(sep + json.dumps(entry, separators=(",", ":")))
                sep = ",\n"
            while done_http < http and (done_http < every * (k + 1) or k == sessions - 1):
                fh.write(sep + json.dumps(http_entry(done_http, T0 + 2 * k + 1.5), separators=(",", ":")))
                sep = ",\n"
                done_http += 1
        fh.write('], "creator": {"name": "hargen", "version": "1"}}}')
    return path.stat().st_size


#: ``chanlog import HAR -o OUT`` reporting its peak resident memory (Linux ``VmHWM``: the process since it
#: started this program, not the parent it was forked from) on standard error when it exits.
PEAK = """import atexit, sys
def peak():
    with open('/proc/self/status') as fh:
        for line in fh:
            if line.startswith('VmHWM:'):
                sys.stderr.write(f'\\nchanlog-peak {int(line.split()[1]) * 1024}\\n')
atexit.register(peak)
from chanlog.cli import main
sys.argv = ['chanlog', 'import', sys.argv[1], '-o', sys.argv[2]]
main()
"""


def import_peak(har: Path, out: Path, cwd: Path) -> tuple[int, str]:
    """``chanlog import HAR -o OUT`` in a process of its own: ``(its peak resident memory in bytes, stderr)``;
    AssertionError when it fails."""
    done = subprocess.run([sys.executable, "-c", PEAK, str(har), str(out)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak = int(done.stderr.rsplit("chanlog-peak ", 1)[1])
    return peak, done.stderr
