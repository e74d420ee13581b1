"""Test helpers for end-to-end capture tests: a scripted node, scripted participants, a real mitmdump.

* :class:`ScriptedNode` is a real WebSocket server (``websockets``) on loopback that plays the node side
  of transcripts: it sends the node's frames and waits for the clients' frames in the transcript's
  global order, so that whatever the node sent after a client's message is sent only once that
  message has arrived.
* :func:`play_participant` is a real WebSocket client playing one participant of a transcript: on
  each of its connections it sends its own frames once the node frames before them have arrived.
* :class:`Mitmdump` runs ``mitmdump -s addons/channel.py`` from this virtualenv as a separate process.

Independent of :mod:`chanlog.replay` on purpose: the recorder is tested against its own small node.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chanlog.model import Close, Frame, Open, Transcript

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "addons" / "channel.py"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
#: The ``chanlog`` console script of this virtualenv (run as a real process by end-to-end tests).
CHANLOG = Path(sys.executable).with_name("chanlog")
#: Seconds any single wait of a scripted peer may take before the test gives up.
STEP_TIMEOUT = 15.0

ConnKey = tuple[str, int]  # (role, order among the role's connections, from 1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conn_keys(transcript: Transcript) -> dict[int, ConnKey]:
    """Connection number -> ``(role, order among that role's connections from 1)``."""
    keys: dict[int, ConnKey] = {}
    counts: dict[str, int] = {}
    for event in transcript.events:
        if event.conn not in keys:
            counts[event.role] = counts.get(event.role, 0) + 1
            keys[event.conn] = (event.role, counts[event.role])
    return keys


# -- the node -----------------------------------------------------------------------------------


@dataclass
class Script:
    """The node side of one transcript, played to the connections that arrive for it."""

    transcript: Transcript
    conns: dict[ConnKey, asyncio.Future[ServerConnection]] = field(default_factory=dict)
    inbox: dict[ConnKey, asyncio.Queue[str | bytes]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    received: list[tuple[ConnKey, str | bytes]] = field(default_factory=list)
    """Client frames that reached the node, in arrival order."""
    sent: list[tuple[ConnKey, str | bytes]] = field(default_factory=list)
    """Node frames sent."""
    mismatches: list[str] = field(default_factory=list)
    """Client frames that were not what the transcript expected."""
    task: asyncio.Task[None] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def _conn(self, key: ConnKey) -> asyncio.Future[ServerConnection]:
        if key not in self.conns:
            self.conns[key] = asyncio.get_running_loop().create_future()
        return self.conns[key]

    def _inbox(self, key: ConnKey) -> asyncio.Queue[str | bytes]:
        return self.inbox.setdefault(key, asyncio.Queue())

    async def handle(self, ws: ServerConnection, role: str) -> None:
        """Serve one connection of ``role`` until it closes."""
        self.counts[role] = self.counts.get(role, 0) + 1
        key = (role, self.counts[role])
        self._conn(key).set_result(ws)
        if self.task is None:
            self.task = asyncio.create_task(self.run())
        try:
            async for message in ws:
                self.received.append((key, message))
                self._inbox(key).put_nowait(message)
        except ConnectionClosed:
            pass

    async def run(self) -> None:
        """Walk the transcript: send node frames, await client frames, in the recorded global order."""
        keys = conn_keys(self.transcript)
        for event in self.transcript.events:
            key = keys[event.conn]
            if isinstance(event, Open):
                await asyncio.wait_for(self._conn(key), STEP_TIMEOUT)
            elif isinstance(event, Frame) and event.sender == "node":
                ws = await asyncio.wait_for(self._conn(key), STEP_TIMEOUT)
                try:
                    await ws.send(event.wire())
                except ConnectionClosed:
                    self.mismatches.append(f"{key}: connection closed before node frame {event.wire()!r:.80}")
                    return
                self.sent.append((key, event.wire()))
            elif isinstance(event, Frame):
                got = await asyncio.wait_for(self._inbox(key).get(), STEP_TIMEOUT)
                if got != event.wire():
                    self.mismatches.append(f"{key}: expected {event.wire()!r:.80}, got {got!r:.80}")
            elif isinstance(event, Close) and event.closed_by == "node":
                ws = await asyncio.wait_for(self._conn(key), STEP_TIMEOUT)
                await ws.close(event.code or 1000, event.reason or "")
        self.finished.set()


class ScriptedNode:
    """A WebSocket server on 127.0.0.1 playing the node side of several transcripts at once.

    ``scripts`` maps a session key to a transcript; ``key_of`` picks the key from a connection's query
    parameters (default: the ``port`` parameter, else ``existing_channel_id``).
    """

    def __init__(self, scripts: dict[str, Transcript],
                 key_of: Callable[[dict[str, str]], str] | None = None) -> None:
        self.scripts = {k: Script(t) for k, t in scripts.items()}
        self.key_of = key_of or (lambda p: p.get("port") or p.get("existing_channel_id", ""))
        self.port = 0
        self._server: Any = None

    async def __aenter__(self) -> ScriptedNode:
        self._server = await serve(self._handler, "127.0.0.1", 0, compression=None, max_size=None,
                                   ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for script in self.scripts.values():
            if script.task is not None and not script.task.done():
                script.task.cancel()
        self._server.close()
        await self._server.wait_closed()

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        params = dict(parse_qsl(urlsplit(ws.request.path).query, keep_blank_values=True))
        script = self.scripts.get(self.key_of(params))
        if script is None:
            await ws.close(4004, "no script for this session")
            return
        await script.handle(ws, params.get("role", "?"))

    async def wait_finished(self, timeout: float = 60.0) -> None:
        """Wait until every script has played to its end; re-raises a script's failure."""
        async def one(script: Script) -> None:
            while script.task is None:
                await asyncio.sleep(0.01)
            await script.task
        await asyncio.wait_for(asyncio.gather(*(one(s) for s in self.scripts.values())), timeout)


# -- the participants ---------------------------------------------------------------------------


@dataclass
class Played:
    """What a scripted participant saw."""

    received: list[tuple[ConnKey, str | bytes]] = field(default_factory=list)
    """Node frames that reached the participant, in order."""
    sent: list[tuple[ConnKey, str | bytes]] = field(default_factory=list)
    """Client frames it sent."""
    mismatches: list[str] = field(default_factory=list)
    """Node frames that were not what the transcript expected."""
    error: str | None = None
    """Why it stopped early, if it did."""


def proxy_url(url: str, port: int) -> str:
    """``url`` (an open URL of a transcript) pointed at the proxy on 127.0.0.1:``port``, query verbatim."""
    parts = urlsplit(url)
    return f"ws://127.0.0.1:{port}{parts.path}" + (f"?{parts.query}" if parts.query else "")


async def play_participant(transcript: Transcript, role: str, proxy_port: int,
                           on_frame: Callable[[], None] | None = None, http_proxy: str | None = None) -> Played:
    """Play ``role`` of ``transcript`` through the proxy: every connection of the role in order, its own
    frames sent once the node frames before them arrived, closing as the transcript says (or at the end
    of the connection's events). ``on_frame`` is called after each frame received or sent. Stops early
    (``error`` set) when the proxy goes away.

    The connections go to ``ws://127.0.0.1:proxy_port`` (a reverse proxy); with ``http_proxy``
    (``http://HOST:PORT`` of a regular proxy), ``proxy_port`` is the node's port and the connection is
    made through that proxy."""
    played = Played()
    keys = conn_keys(transcript)
    for c in transcript.connections():
        if c.role != role or c.open is None:
            continue
        key = keys[c.conn]
        try:
            async with connect(proxy_url(c.open.url, proxy_port), compression=None, max_size=None,
                               open_timeout=STEP_TIMEOUT, ping_interval=None, close_timeout=2,
                               proxy=http_proxy) as ws:
                for event in c.events:
                    if isinstance(event, Frame) and event.sender == "node":
                        got = await asyncio.wait_for(ws.recv(), STEP_TIMEOUT)
                        played.received.append((key, got))
                        if got != event.wire():
                            played.mismatches.append(f"{key}: expected {event.wire()!r:.80}, got {got!r:.80}")
                    elif isinstance(event, Frame):
                        await ws.send(event.wire())
                        played.sent.append((key, event.wire()))
                    elif isinstance(event, Close) and event.closed_by == "node":
                        await asyncio.wait_for(ws.wait_closed(), STEP_TIMEOUT)
                    else:
                        continue
                    if on_frame is not None:
                        on_frame()
        except (ConnectionClosed, OSError, TimeoutError) as exc:
            played.error = f"{key}: {type(exc).__name__}: {exc}"
            return played
    return played


# -- synthetic sessions -------------------------------------------------------------------------


def synthetic_session(i: int, rounds: int = 3, port: int | None = None) -> Transcript:
    """A made-up JSON-RPC session ``i`` (its own accounts, port ``13000 + i``, channel ``ch_test<i>``):
    both participants open, then ``rounds`` update rounds (a client request, the node's reply and
    notifications to both), a non-JSON text frame, a binary frame and pretty JSON; both clients close.
    Every frame names the session, so frames from another session are recognisable."""
    port = 13000 + i if port is None else port
    params = {"initiator_id": f"ak_init{i}", "responder_id": f"ak_resp{i}", "port": str(port),
              "protocol": "json-rpc", "push_amount": "1"}
    channel = f"ch_test{i}"
    events: list[Any] = []

    def url(role: str, **extra: str) -> str:
        return "ws://localhost:3014/channel?" + urlencode({**params, **extra, "role": role})

    def node(role: str, conn: int, data: Any) -> None:
        events.append(Frame.from_wire(_compact(data), role=role, conn=conn, sender="node"))

    def client(role: str, conn: int, data: Any) -> None:
        events.append(Frame.from_wire(_compact(data), role=role, conn=conn, sender="client"))

    events.append(Open(role="initiator", conn=0, url=url("initiator", host="localhost")))
    node("initiator", 0, _info(None, "fsm_up", fsm_id=f"ba_i{i}"))
    events.append(Open(role="responder", conn=1, url=url("responder")))
    node("responder", 1, _info(None, "fsm_up", fsm_id=f"ba_r{i}"))
    node("initiator", 0, _info(None, "channel_accept"))
    node("responder", 1, _info(channel, "funding_created"))
    for r in range(rounds):
        who, conn = ("initiator", 0) if r % 2 == 0 else ("responder", 1)
        other, oconn = ("responder", 1) if r % 2 == 0 else ("initiator", 0)
        client(who, conn, {"jsonrpc": "2.0", "id": 100 * i + r, "method": "channels.update.new",
                           "params": {"from": f"ak_init{i}", "to": f"ak_resp{i}", "amount": r + 1}})
        node(who, conn, {"jsonrpc": "2.0", "id": 100 * i + r, "result": "ok", "channel_id": channel})
        node(other, oconn, _info(channel, f"update_{i}_{r}"))
    events.append(Frame(role="initiator", conn=0, sender="client", text=f"not json, session {i}"))
    events.append(Frame(role="responder", conn=1, sender="node", binary=bytes([0, 255, i % 256]) + b"bin"))
    events.append(Frame.from_wire(_pretty(_info(channel, f"pretty_{i}")), role="initiator", conn=0, sender="node"))
    events.append(Close(role="initiator", conn=0, code=1000, closed_by="client"))
    events.append(Close(role="responder", conn=1, code=1000, closed_by="client"))
    return Transcript(name=f"synthetic_{i}", protocol="json-rpc", events=events)


def _info(channel_id: str | None, event: str, **data: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "channels.info",
            "params": {"channel_id": channel_id, "data": {"event": event, **data}}, "version": 1}


def _compact(data: Any) -> str:
    import json

    return json.dumps(data, separators=(",", ":"))


def _pretty(data: Any) -> str:
    import json

    return json.dumps(data, indent=2)


def wire_by_connection(transcript: Transcript) -> dict[ConnKey, list[tuple[str, str | bytes]]]:
    """``(role, order) -> [(sender, wire content), ...]`` for every connection of a transcript."""
    keys = conn_keys(transcript)
    out: dict[ConnKey, list[tuple[str, str | bytes]]] = {k: [] for k in keys.values()}
    for _, frame in transcript.frames():
        out[keys[frame.conn]].append((frame.sender, frame.wire()))
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- mitmdump -----------------------------------------------------------------------------------


class Mitmdump:
    """``mitmdump -s addons/channel.py`` as a child process recording into ``chanlog_dir``; its output goes
    to ``log``. By default a reverse proxy on 127.0.0.1 in front of ``upstream_port``; ``modes`` gives
    other ``--mode`` values instead, each ending in ``@PORT`` (:attr:`ports` lists them)."""

    def __init__(self, upstream_port: int, chanlog_dir: Path, log: Path, modes: list[str] | None = None,
                 **options: Any) -> None:
        if modes is None:
            self.port = free_port()
            modes = [f"reverse:http://127.0.0.1:{upstream_port}@127.0.0.1:{self.port}"]
        self.ports = [int(m.rsplit(":", 1)[-1].rsplit("@", 1)[-1]) for m in modes]
        self.port = self.ports[0]
        self.log = log
        sets = {"chanlog_dir": str(chanlog_dir), "flow_detail": 0, **options}
        self.args = [str(MITMDUMP), "-s", str(ADDON)]
        for mode in modes:
            self.args += ["--mode", mode]
        for name, value in sets.items():
            self.args += ["--set", f"{name}={str(value).lower() if isinstance(value, bool) else value}"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Mitmdump:
        """Start the process and wait until it accepts connections."""
        if not MITMDUMP.exists():
            raise RuntimeError(f"mitmdump not found beside the interpreter: {MITMDUMP}")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        deadline = time.monotonic() + timeout
        waiting = list(self.ports)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.5):
                    waiting.pop(0)
                    if not waiting:
                        return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"mitmdump did not listen within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        """What the process printed so far."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (mitmproxy shuts down cleanly: the addon's ``done`` runs) and wait; SIGKILL after
        ``timeout``. Returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9

    def kill(self) -> None:
        """SIGKILL the process (no shutdown hooks run) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> Mitmdump:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
