"""Replay: a transcript served as a fake node (``chanlog replay``), and the script both sides follow.

A transcript is a script for the node side. For each participant (``role`` query parameter of the
WebSocket URL) the fake node plays that role's recorded connections: the Nth connection of a role gets
that role's Nth recorded connection, so reconnects continue the script. On each connection it sends
what the node sent, in order, and waits where the recorded client spoke, checking what arrives with
:mod:`chanlog.matchers`. Across the two roles it keeps the recorded causal order where it matters: a
node frame waits until the other role's client events recorded before it (its frames, opens, closes)
have happened. More generally a node frame waits for the client events recorded before it on every
other connection, of either role: a reconnect's frames follow the old connection's close, and a
participant may have several connections open at once (two channels). A role that has not connected
within ``grace`` seconds of the session's first connection, or a connection that stops making progress
for ``timeout`` seconds, no longer holds the others back, so one role alone never deadlocks.

JSON-RPC semantics (channels WebSocket API; JSON-RPC 2.0 §4, §5):

* a recorded response goes out with the ``id`` the client used for the matching request (same JSON
  type); when the client sent that frame as a notification (no ``id``), the response is not sent;
  error frames with ``id: null`` go out as recorded;
* a ``channels.system`` ping is answered at once, at any time (also outside the script and after its
  end), with ``channels.system.pong`` carrying the channel id known so far to that participant's side
  (the last one sent on its connections, or its URL's ``existing_channel_id``; before any, the recorded
  pong's); recorded pongs are not replayed on their own;
* only well-formed JSON text frames are sent; recorded non-JSON or binary node frames are skipped.

A divergence (a wrong frame, a declined or different signature, a slot that times out, a frame after
the recorded end) is reported to the client as a JSON-RPC error (:meth:`Divergence.error_frame`),
logged on the ``chanlog.replay`` logger and kept in the session's :class:`SessionReport`; the
connection is then closed with code 4000.

Sessions: by default connections are paired into sessions in order of arrival; clients that run
several sessions at once against one fake node add a ``chanlog_session=<key>`` query parameter
(connections with the same key share a session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chanlog.errors import ChanlogError
from chanlog.matchers import (
    MATCHERS,
    Arrival,
    Divergence,
    Expected,
    Mode,
    check,
    diff,
    is_optional,
    is_ping,
    is_pong,
    make_pong,
    method_of,
)
from chanlog.model import ROLES, Close, Event, Frame, Open, Transcript, dump_json

log = logging.getLogger("chanlog.replay")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3014
DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for an expected client frame before the slot counts as a divergence."""
DEFAULT_GRACE = 2.0
"""Seconds to wait for what may legitimately never come: a role that has not connected yet, a
skippable frame in lenient mode."""
SESSION_PARAM = "chanlog_session"
"""Query parameter that groups connections into one session when several run at once."""
DIVERGENCE_CLOSE_CODE = 4000
"""WebSocket close code after a divergence (4000-4999: private use, RFC 6455 §7.4.2)."""

OPEN, CLIENT, NODE, CLOSE = "open", "client", "node", "close"
PENDING, DONE, ABANDONED = 0, 1, 2

Transform = Callable[[Transcript], Transcript]


class ReplayError(ChanlogError):
    """A transcript cannot be replayed, or a replay cannot start (port in use, unreachable node)."""


def load_transcript(path: str | Path) -> Transcript:
    """Load a transcript file (YAML, format 1) or a node Markdown log (``.md``, imported on the fly).

    Raises :class:`~chanlog.errors.TranscriptError` / :class:`~chanlog.errors.LogImportError` naming
    ``file:line`` on bad input, :class:`ReplayError` when the file cannot be read.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".md", ".markdown"):
            from chanlog.importer import import_file

            return import_file(path)
        from chanlog.transcript import load

        return load(path)
    except OSError as exc:
        raise ReplayError(f"cannot read: {exc.strerror or exc}", str(path)) from None


# -- the script ------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Step:
    """One event of the script: a connection opening or closing, or a frame, with its dependencies."""

    index: int
    """Position of the event in ``transcript.events`` (file order); dependencies refer to it."""
    kind: str
    """``open``, ``client`` (a frame the client sends), ``node`` (a frame the node sends) or ``close``."""
    role: str
    """``initiator`` or ``responder``."""
    conn: int
    """The recorded connection number."""
    nth: int
    """Which of its role's connections (0-based)."""
    event: Event
    """The transcript event."""
    expected: Expected | None = None
    """For frames: the recorded message, prepared for matching."""
    client_deps: tuple[int, ...] = ()
    """For every other connection (of either role), the index of its latest client event (open, client
    frame, client close) recorded before this one; the fake node sends a node frame only after them."""
    lenient_deps: tuple[int, ...] = ()
    """As ``client_deps`` but skipping frames a lenient replay may skip."""
    peer_deps: tuple[int, ...] = ()
    """For every other connection, the index of its latest event of any kind recorded before this one;
    the client player does a client step only after them."""
    reply_to: int = -1
    """For a node response or error with a non-null ``id``: index of the client frame on the same
    connection that carried that ``id``."""
    recorded_id: Any = None
    """The recorded JSON-RPC ``id`` of this frame, if it has one."""
    has_id: bool = False
    """True when the recorded frame has a non-null ``id``."""
    link: int = -1
    """For a node frame that answers a skippable client frame (``get.*`` reply, delivered message):
    index of that client frame."""
    optional: bool = False
    """For a client frame: a lenient replay may skip it (``channels.get.*``, ``channels.message``, ping)."""
    ping: bool = False
    """For a client frame: a ``channels.system`` ping."""
    pong: bool = False
    """For a node frame: a recorded pong (pings are answered when they arrive instead)."""
    channel_id: str | None = None
    """For a node frame: the ``channel_id`` it carries, if any."""

    @property
    def number(self) -> int | None:
        """The frame number (from 1), ``None`` for opens and closes."""
        return self.expected.number if self.expected is not None else None

    @property
    def method(self) -> str | None:
        """The recorded frame's method, if any."""
        return self.expected.method if self.expected is not None else None

    def describe(self) -> str:
        """``frame 12 (channels.initiator_sign)``, ``the open``, ``the close``."""
        if self.expected is None:
            return f"the {self.kind}"
        what = self.expected.method or ("the answer" if self.kind == NODE else "a frame")
        return f"frame {self.expected.number} ({what})"


@dataclass(eq=False)
class ConnScript:
    """One recorded connection of one role: its open, frames and close."""

    role: str
    """``initiator`` or ``responder``."""
    nth: int
    """Which of its role's connections (0-based)."""
    conn: int
    """The recorded connection number."""
    open: Step | None = None
    """The open step; ``None`` when the log starts mid-connection."""
    close: Step | None = None
    """The close step, if recorded."""
    frames: list[Step] = field(default_factory=list)
    """Client and node frames, in order."""

    @property
    def label(self) -> str:
        """``initiator connection 2`` (counted from 1)."""
        return f"{self.role} connection {self.nth + 1}"

    @property
    def query(self) -> str:
        """The recorded URL's query string; ``role=<role>`` when the open was not recorded."""
        if self.open is not None:
            query = urlsplit(self.open.event.url).query  # type: ignore[attr-defined]
            if query:
                return query
        return f"role={self.role}"

    @property
    def closed_by_node(self) -> bool:
        """True when the recording says the node closed this connection."""
        return self.close is not None and self.close.event.closed_by == "node"  # type: ignore[attr-defined]


@dataclass(eq=False)
class Script:
    """The transcript cut into per-role connection scripts with their dependencies."""

    transcript: Transcript
    """The transcript served (after any transform)."""
    roles: dict[str, list[ConnScript]]
    """Every role's recorded connections, in order."""
    steps: dict[int, Step]
    """Every step by event index."""
    role_of: list[str]
    """The role of every event, by event index."""
    conn_of: list[int]
    """The recorded connection of every event, by event index."""
    path: str = "/channel"
    """The URL path the recorded clients connected to."""
    pong_template: Any = None
    """The first recorded pong (parsed), used as the shape of pongs; ``None`` if none was recorded."""

    @property
    def protocol(self) -> str:
        return self.transcript.protocol

    def role_steps(self, role: str) -> list[Step]:
        """Every step of ``role`` in file order (opens, frames, closes, across its connections)."""
        return [s for s in self.steps.values() if s.role == role]

    @property
    def frame_count(self) -> int:
        return sum(len(c.frames) for conns in self.roles.values() for c in conns)

    @classmethod
    def build(cls, transcript: Transcript) -> Script:
        """Cut ``transcript`` into the replay script. Notes are left out. Pure; raises nothing."""
        roles: dict[str, list[ConnScript]] = {role: [] for role in ROLES}
        by_conn: dict[int, ConnScript] = {}
        steps: dict[int, Step] = {}
        role_of: list[str] = []
        conn_of: list[int] = []
        last_client: dict[int, int] = {}
        last_lenient: dict[int, int] = {}
        last_any: dict[int, int] = {}
        numbers = {id(frame): n for n, frame in transcript.frames()}
        path: str | None = None
        pong_template = None
        for index, event in enumerate(transcript.events):
            role_of.append(event.role)
            conn_of.append(event.conn)
            if not isinstance(event, (Open, Frame, Close)):
                continue
            cs = by_conn.get(event.conn)
            if cs is None:
                cs = ConnScript(event.role, len(roles[event.role]), event.conn)
                roles[event.role].append(cs)
                by_conn[event.conn] = cs
            step = Step(index, OPEN, event.role, event.conn, cs.nth, event,
                        client_deps=_others(last_client, event.conn), lenient_deps=_others(last_lenient, event.conn),
                        peer_deps=_others(last_any, event.conn))
            client_event = True
            if isinstance(event, Open):
                cs.open = step
                if path is None:
                    path = urlsplit(event.url).path or None
            elif isinstance(event, Close):
                step.kind = CLOSE
                cs.close = step
                client_event = event.closed_by != "node"
            else:
                step.kind = CLIENT if event.sender == "client" else NODE
                step.expected = _expected(event, numbers[id(event)])
                data = step.expected.data
                if isinstance(data, dict) and data.get("id") is not None:
                    step.has_id, step.recorded_id = True, data["id"]
                if step.kind == CLIENT:
                    step.ping = is_ping(data)
                    step.optional = is_optional(data)
                else:
                    client_event = False
                    step.channel_id = event.channel_id
                    step.pong = is_pong(data)
                    if step.pong and pong_template is None:
                        pong_template = data
                    if step.has_id and data.get("method") is None:
                        step.reply_to = _request_of(cs, step.recorded_id)
                cs.frames.append(step)
            steps[index] = step
            if client_event:
                last_client[event.conn] = index
                if not step.optional:
                    last_lenient[event.conn] = index
            last_any[event.conn] = index
        script = cls(transcript, roles, steps, role_of, conn_of, path or "/channel", pong_template)
        _link_optional(script)
        return script


def _others(latest: dict[int, int], conn: int) -> tuple[int, ...]:
    return tuple(index for other, index in latest.items() if other != conn)


def _expected(frame: Frame, number: int) -> Expected:
    wire = frame.wire()
    data = frame.data if frame.is_json else None
    return Expected(number, wire, data, frame.is_json, method_of(data))


def _same_id(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _request_of(cs: ConnScript, recorded_id: Any) -> int:
    for step in reversed(cs.frames):
        if step.kind == CLIENT and step.has_id and _same_id(step.recorded_id, recorded_id):
            return step.index
    return -1


def _link_optional(script: Script) -> None:
    """Link each skippable client frame to the node frame that answers it: the reply on the same
    connection (``get.*``), the delivery to the other role (``channels.message``)."""
    taken: set[int] = set()
    deliveries = [s for s in script.steps.values() if s.kind == NODE and s.method is not None
                  and s.method.rsplit(".", 1)[-1] == "message"]
    for cs in (c for conns in script.roles.values() for c in conns):
        for pos, step in enumerate(cs.frames):
            if step.kind != CLIENT or not step.optional or step.ping or step.expected is None:
                continue
            method = step.method or ""
            if method.rsplit(".", 1)[-1] == "message":
                info = _message_info(step.expected.data)
                for later in deliveries:
                    if (later.index > step.index and later.role != step.role and later.method == method
                            and later.index not in taken and _delivered_info(later.expected.data) == info):  # type: ignore[union-attr]
                        later.link = step.index
                        taken.add(later.index)
                        break
                continue
            for later in cs.frames[pos + 1:]:
                if later.kind != NODE or later.index in taken:
                    continue
                data = later.expected.data if later.expected else None
                if step.has_id:
                    hit = later.reply_to == step.index
                else:
                    hit = later.method in (method, method + ".reply") or (
                        isinstance(data, dict) and ("error" in data or data.get("action") == "error"))
                if hit:
                    later.link = step.index
                    taken.add(later.index)
                    break


def _message_info(data: Any) -> Any:
    body = data.get("params", data.get("payload")) if isinstance(data, dict) else None
    return body.get("info") if isinstance(body, dict) else None


def _delivered_info(data: Any) -> Any:
    body = data.get("params", data.get("payload")) if isinstance(data, dict) else None
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    message = body.get("message") if isinstance(body, dict) else None
    return message.get("info") if isinstance(message, dict) else None


# -- progress shared by the two roles ----------------------------------------------------------------------


class Progress:
    """Which events of a session have happened: the cross-role dependency board.

    ``state[i]`` is ``PENDING``, ``DONE`` or ``ABANDONED`` (will not happen: its connection ended). An
    event is *satisfied* when it is not pending, or its role (absent) or its connection (stalled) is
    released.
    """

    def __init__(self, role_of: list[str], conn_of: list[int]) -> None:
        self.state = bytearray(len(role_of))
        self.role_of = role_of
        self.conn_of = conn_of
        self.released: set[str] = set()
        self.released_conns: set[int] = set()
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}

    def satisfied(self, index: int) -> bool:
        return (self.state[index] != PENDING or self.role_of[index] in self.released
                or self.conn_of[index] in self.released_conns)

    def mark(self, index: int, value: int = DONE) -> None:
        """Record that event ``index`` happened (``DONE``) or never will (``ABANDONED``)."""
        if index >= 0 and self.state[index] == PENDING:
            self.state[index] = value
            for fut in self._waiters.pop(index, ()):
                if not fut.done():
                    fut.set_result(None)

    def release(self, role: str) -> None:
        """Stop holding anything back for ``role``."""
        self.released.add(role)
        self._wake(lambda i: self.role_of[i] == role)

    def release_conn(self, conn: int) -> None:
        """Stop holding anything back for recorded connection ``conn``."""
        self.released_conns.add(conn)
        self._wake(lambda i: self.conn_of[i] == conn)

    def _wake(self, which: Callable[[int], bool]) -> None:
        for index in [i for i in self._waiters if which(i)]:
            for fut in self._waiters.pop(index):
                if not fut.done():
                    fut.set_result(None)

    def hold(self, role: str) -> None:
        """Hold back for ``role`` again (it connected)."""
        self.released.discard(role)

    def waiter(self, index: int) -> asyncio.Future[None]:
        """A future resolved when event ``index`` is satisfied."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.satisfied(index):
            fut.set_result(None)
        else:
            self._waiters.setdefault(index, []).append(fut)
        return fut


class Deadline:
    """A timeout for one waiter that waits many times (one wait at a time): far cheaper than an
    ``asyncio.timeout`` per wait, because its timer is armed once and re-armed only when it fires
    before the current wait is due. :meth:`expired` is called when a wait lasts ``timeout`` seconds."""

    def __init__(self, expired: Callable[[], None]) -> None:
        self._expired = expired
        self._due: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    def begin(self, timeout: float) -> None:
        """A wait starts now and may last ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        self._due = loop.time() + timeout
        if self._handle is None:
            self._handle = loop.call_at(self._due, self._check)

    def end(self) -> None:
        """The wait is over."""
        self._due = None

    def cancel(self) -> None:
        self._due = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        if self._due is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._due:
            self._due = None
            self._expired()
        else:
            self._handle = loop.call_at(self._due, self._check)


class Inbox:
    """What arrived on a connection, in order, with push-back (for lenient skipping)."""

    CLOSED = object()
    PING = object()
    TIMEOUT = object()

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[Any] | None = None
        self._deadline = Deadline(self._timed_out)

    def put(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def unget(self, item: Any) -> None:
        self._items.appendleft(item)

    def _timed_out(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(self.TIMEOUT)

    async def get(self, timeout: float | None) -> Any:
        """The next item, or :attr:`TIMEOUT` after ``timeout`` seconds (``None``: wait forever)."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            if timeout is not None:
                self._deadline.begin(timeout)
            try:
                if await self._waiter is self.TIMEOUT:
                    return self.TIMEOUT
            finally:
                self._deadline.end()
                self._waiter = None
        return self._items.popleft()

    def close(self) -> None:
        """Disarm the timer (the connection is over)."""
        self._deadline.cancel()


# -- reports -------------------------------------------------------------------------------------------------


@dataclass
class SessionReport:
    """How one session of the fake node went."""

    number: int
    """Session number, from 1, in order of the sessions' first connection."""
    transcript: str
    """The transcript's name."""
    frames: int
    """Frames in the script (both roles, both directions)."""
    sent: int = 0
    """Node frames sent."""
    received: int = 0
    """Client frames that arrived and matched."""
    withheld: int = 0
    """Recorded responses not sent because the client sent the request as a notification (no ``id``)."""
    skipped: list[str] = field(default_factory=list)
    """Frames not played on purpose: recorded pongs, non-JSON node frames, skipped lenient slots."""
    pongs: int = 0
    """Pings answered."""
    divergences: list[Divergence] = field(default_factory=list)
    """Every divergence, in order."""
    unfinished: list[str] = field(default_factory=list)
    """What of the script was not played (connections never opened, connections closed early)."""

    @property
    def all_played(self) -> bool:
        """True when nothing of the script was left unplayed."""
        return not self.unfinished

    def ok(self, allow_partial: bool = False) -> bool:
        """No divergence, and (unless ``allow_partial``) the whole script played."""
        return not self.divergences and (allow_partial or self.all_played)

    def summary(self) -> str:
        """One paragraph: counts, divergences, what was left unplayed."""
        verdict = "diverged" if self.divergences else ("played to the end" if self.all_played else "unfinished")
        head = (f"session {self.number} ({self.transcript}): {verdict}; {self.sent} node frames sent, "
                f"{self.received} client frames matched, {self.withheld} responses withheld (notifications), "
                f"{len(self.skipped)} skipped, {self.pongs} pings answered, {len(self.divergences)} divergences")
        lines = [head] + [f"  unfinished: {u}" for u in self.unfinished]
        lines += [f"  divergence at {d.where}: {d.reason}" for d in self.divergences]
        return "\n".join(lines)


# -- sessions -------------------------------------------------------------------------------------------------


class _Conn:
    """Runtime state of one client connection."""

    def __init__(self, ws: Any, script: ConnScript) -> None:
        self.ws = ws
        self.script = script
        self.inbox = Inbox()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.actual_ids: dict[int, tuple[bool, Any]] = {}
        self.pending: list[Step] = []
        self.deferred: dict[int, list[Step]] = {}
        self.ping_credits = 0
        self.recorded_pongs: deque[Step] = deque(s for s in script.frames if s.pong)
        self.diverged = False
        self.stopped_at: Step | None = None


class Session:
    """One play of the script by a pair of clients (one per role), across their reconnects."""

    def __init__(self, node: FakeNode, number: int, key: str) -> None:
        self.node = node
        self.script = node.script
        self.number = number
        self.key = key
        self.progress = Progress(self.script.role_of, self.script.conn_of)
        self.next_nth = {role: 0 for role in ROLES}
        self.active = 0
        self.running = 0
        """Connections whose script is still being played (not yet at its end or stopped)."""
        self.connected: set[str] = set()
        self.channel_ids: dict[str, str | None] = {role: None for role in ROLES}
        """The channel id each participant's node side has stamped on a frame so far (per role: the two
        FSMs learn it at different moments)."""
        self.report = SessionReport(number, self.script.transcript.name, self.script.frame_count)
        self.ended = False
        self._idle: asyncio.TimerHandle | None = None
        self._conns: set[_Conn] = set()
        loop = asyncio.get_running_loop()
        for role in ROLES:
            if not self.script.roles[role]:
                self.progress.release(role)
        self._grace = loop.call_later(node.grace, self._peers_absent)

    # -- assignment and lifecycle

    def wants(self, role: str) -> bool:
        return not self.ended and self.next_nth[role] < len(self.script.roles[role])

    def _peers_absent(self) -> None:
        for role in ROLES:
            if role not in self.connected and self.script.roles[role] and not self.ended:
                log.info("session %d: no %s connected within %.1f s; the other role no longer waits for it",
                         self.number, role, self.node.grace)
                self.progress.release(role)

    def _maybe_end(self) -> None:
        if self.ended or self.active:
            return
        if all(self.next_nth[r] >= len(self.script.roles[r]) for r in ROLES):
            self.end()
            return
        if self._idle is not None:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(self.node.timeout, self._idle_expired)

    def _idle_expired(self) -> None:
        if not self.active:
            self.end()

    def end(self) -> None:
        """End the session: connections never opened become unfinished; the node is told."""
        if self.ended:
            return
        self.ended = True
        self._grace.cancel()
        if self._idle is not None:
            self._idle.cancel()
        for role in ROLES:
            for cs in self.script.roles[role][self.next_nth[role]:]:
                self.report.unfinished.append(f"{cs.label} was never opened ({len(cs.frames)} frames not played)")
        self.node._session_ended(self)

    async def abort(self) -> None:
        """Close every connection of this session (server going away) and end it."""
        await asyncio.gather(*(conn.ws.close(1001, "chanlog replay stopped") for conn in list(self._conns)),
                             return_exceptions=True)
        deadline = time.monotonic() + self.node.timeout
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.end()

    # -- one connection

    async def serve(self, ws: Any, role: str, params: dict[str, str]) -> None:
        nth = self.next_nth[role]
        self.next_nth[role] += 1
        cs = self.script.roles[role][nth]
        self.active += 1
        self.connected.add(role)
        self.progress.hold(role)
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self.channel_ids[role] is None and params.get("existing_channel_id"):
            self.channel_ids[role] = params["existing_channel_id"]
        conn = _Conn(ws, cs)
        self._conns.add(conn)
        if cs.open is not None:
            self.progress.mark(cs.open.index)
        log.debug("session %d: %s opened (recorded conn %d)", self.number, cs.label, cs.conn)
        reader = asyncio.create_task(self._read(conn))
        try:
            self.running += 1
            try:
                finished = await self._run(conn)
            finally:
                self.running -= 1
            if finished:
                if cs.closed_by_node:
                    code = cs.close.event.code if cs.close else None  # type: ignore[union-attr]
                    await ws.close(code if code in (1000, 1001) or (code or 0) >= 3000 else 1000)
                else:
                    await self._tail(conn)
        finally:
            if not reader.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reader, self.node.timeout)
            conn.inbox.close()
            self._finish_connection(conn)

    def _finish_connection(self, conn: _Conn) -> None:
        cs = conn.script
        if conn.stopped_at is not None and not conn.diverged:
            step = conn.stopped_at
            action = "sent" if step.kind == NODE else "received"
            self.report.unfinished.append(
                f"{cs.label}: the connection closed before {step.describe()} was {action}")
        for step in conn.pending:
            self.report.skipped.append(f"{cs.label}: {step.describe()} (lenient: not sent by the client)")
        for step in (cs.open, *cs.frames, cs.close):
            if step is not None:
                self.progress.mark(step.index, ABANDONED if step.kind != CLOSE else DONE)
        self._conns.discard(conn)
        self.active -= 1
        self._maybe_end()

    async def _read(self, conn: _Conn) -> None:
        """Queue what arrives; answer pings at once."""
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in conn.ws:
                if isinstance(message, str) and "ping" in message:
                    arrival = Arrival.parse(message)
                    if is_ping(arrival.data):
                        await conn.ws.send(self._pong(conn, arrival.data))
                        self.report.pongs += 1
                        conn.inbox.put(Inbox.PING)
                        continue
                conn.inbox.put(message)
        except ConnectionClosed:
            pass
        finally:
            conn.inbox.put(Inbox.CLOSED)
            if not conn.closed.done():
                conn.closed.set_result(None)

    def _pong(self, conn: _Conn, ping: Any) -> str:
        """The answer to ``ping``: the connection's next recorded pong when there is one (its recorded
        channel id stands until the session has sent one), else the node's pong shape."""
        if conn.recorded_pongs:
            step = conn.recorded_pongs.popleft()
            recorded = step.expected.data  # type: ignore[union-attr]
            recorded_id = step.event.channel_id  # type: ignore[attr-defined]
            known = self.channel_ids[conn.script.role]
            channel_id = known if known is not None else recorded_id
            if channel_id == recorded_id:
                return step.expected.wire  # type: ignore[union-attr,return-value]
            return dump_json(make_pong(ping, channel_id, recorded), "compact")
        return dump_json(make_pong(ping, self.channel_ids[conn.script.role], self.script.pong_template), "compact")

    async def _run(self, conn: _Conn) -> bool:
        """Play the connection's frames; True when all were played."""
        for step in conn.script.frames:
            if step.kind == NODE:
                ok = await self._node_step(conn, step)
            else:
                ok = await self._client_step(conn, step)
            if not ok:
                conn.stopped_at = step
                return False
        return True

    async def _tail(self, conn: _Conn) -> None:
        """After the script: answer pings, match late skippable frames, report anything else."""
        while True:
            item = await conn.inbox.get(None)
            if item is Inbox.CLOSED:
                return
            if item is Inbox.PING:
                continue
            arrival = Arrival.parse(item)
            if await self._match_pending(conn, arrival):
                continue
            await self._diverge(conn, None, arrival, "a frame arrived after the recorded end of this connection")
            return

    # -- node frames

    async def _node_step(self, conn: _Conn, step: Step) -> bool:
        exp = step.expected
        assert exp is not None
        cs = conn.script
        if step.pong:
            self.report.skipped.append(f"{cs.label}: {step.describe()} (pongs answer pings as they arrive)")
            return True
        if not exp.is_json:
            log.warning("session %d: %s: %s is not JSON text; not sent", self.number, cs.label, step.describe())
            self.report.skipped.append(f"{cs.label}: {step.describe()} (not JSON text)")
            return True
        lenient = self.node.mode is Mode.LENIENT
        if lenient and step.link >= 0:
            slot = self.script.steps[step.link]
            state = self.progress.state[step.link]
            if slot.conn == cs.conn and state == PENDING:
                conn.deferred.setdefault(step.link, []).append(step)
                return True
            if state == PENDING:
                await _first(self.progress.waiter(step.link), conn.closed, timeout=self.node.timeout)
                state = self.progress.state[step.link]
            if state != DONE:
                self.report.skipped.append(f"{cs.label}: {step.describe()} (answers a skipped frame)")
                return True
        for dep in step.lenient_deps if lenient else step.client_deps:
            if not self.progress.satisfied(dep):
                await self._wait_dep(conn, step, dep)
        return await self._send(conn, step)

    async def _wait_dep(self, conn: _Conn, step: Step, dep: int) -> None:
        if await _first(self.progress.waiter(dep), conn.closed, timeout=self.node.timeout):
            return
        if conn.closed.done():
            return
        other = self.script.steps[dep]
        label = self.script.roles[other.role][other.nth].label
        log.warning("session %d: %s: %s waited %.1f s for %s: %s; going on without that connection",
                    self.number, conn.script.label, step.describe(), self.node.timeout, label, other.describe())
        self.progress.release_conn(other.conn)

    async def _send(self, conn: _Conn, step: Step) -> bool:
        from websockets.exceptions import ConnectionClosed

        exp = step.expected
        assert exp is not None
        text = exp.wire
        if step.reply_to >= 0:
            has_id, actual = conn.actual_ids.get(step.reply_to, (True, step.recorded_id))
            if self.progress.state[step.reply_to] == ABANDONED:
                self.report.skipped.append(f"{conn.script.label}: {step.describe()} (answers a skipped frame)")
                return True
            if not has_id:
                self.report.withheld += 1
                return True
            if not _same_id(actual, step.recorded_id):
                data = dict(exp.data)
                data["id"] = actual
                text = dump_json(data, step.event.fmt or "compact")  # type: ignore[attr-defined]
        try:
            await conn.ws.send(text)
        except ConnectionClosed:
            return False
        self.report.sent += 1
        if step.channel_id:
            self.channel_ids[step.role] = step.channel_id
        return True

    # -- client frames

    async def _client_step(self, conn: _Conn, step: Step) -> bool:
        lenient = self.node.mode is Mode.LENIENT
        skippable = lenient and step.optional
        if step.ping and conn.ping_credits:
            conn.ping_credits -= 1
            self._matched(conn, step, None)
            return True
        wait = self.node.grace if skippable else self.node.timeout
        deadline = time.monotonic() + wait
        while True:
            item = await conn.inbox.get(max(0.0, deadline - time.monotonic()))
            if item is Inbox.CLOSED:
                conn.inbox.unget(item)
                if skippable:
                    conn.pending.append(step)
                    return True
                return False
            if item is Inbox.PING:
                if step.ping:
                    self._matched(conn, step, None)
                    return True
                conn.ping_credits += 1
                continue
            if item is Inbox.TIMEOUT:
                if skippable:
                    conn.pending.append(step)
                    return True
                reason = (f"no frame arrived within {wait:g} s; {conn.script.label} was waiting for "
                          f"{step.describe()}")
                await self._diverge(conn, step, None, reason)
                return False
            if isinstance(item, str) and item == step.expected.wire:  # type: ignore[union-attr]
                self._matched(conn, step, None)
                return True
            arrival = Arrival.parse(item)
            if lenient and await self._match_pending(conn, arrival):
                continue
            reasons = check(step.expected, arrival, MATCHERS[self.node.mode])  # type: ignore[arg-type]
            if not reasons:
                self._matched(conn, step, arrival)
                return True
            if skippable:
                conn.pending.append(step)
                conn.inbox.unget(item)
                return True
            await self._diverge(conn, step, arrival, "; ".join(reasons))
            return False

    def _matched(self, conn: _Conn, step: Step, arrival: Arrival | None) -> None:
        """Record a matched client frame (``arrival`` ``None``: exactly the recorded one, or a ping)."""
        if step.has_id:
            if arrival is None:
                conn.actual_ids[step.index] = (True, step.recorded_id)
            else:
                data = arrival.data if isinstance(arrival.data, dict) else {}
                conn.actual_ids[step.index] = ("id" in data and data["id"] is not None, data.get("id"))
        self.report.received += 1
        self.progress.mark(step.index)

    async def _match_pending(self, conn: _Conn, arrival: Arrival) -> bool:
        """Lenient: a late frame for a skipped slot; plays the slot and the answers held back for it."""
        for slot in conn.pending:
            if not check(slot.expected, arrival, MATCHERS[Mode.LENIENT]):  # type: ignore[arg-type]
                conn.pending.remove(slot)
                self._matched(conn, slot, arrival)
                for held in conn.deferred.pop(slot.index, ()):
                    await self._send(conn, held)
                return True
        return False

    async def _diverge(self, conn: _Conn, step: Step | None, arrival: Arrival | None, reason: str) -> None:
        cs = conn.script
        exp = step.expected if step is not None else None
        wire = exp.wire if exp is not None else None
        report = Divergence(
            reason=reason, role=cs.role, nth=cs.nth + 1, frame=exp.number if exp else None,
            expected=wire if isinstance(wire, str) or wire is None else f"<binary message: {len(wire)} bytes>",
            method=exp.method if exp else None, arrived=arrival.text() if arrival is not None else None,
            diff=diff(exp, arrival) if exp is not None and arrival is not None else "", session=self.number)
        conn.diverged = True
        self.report.divergences.append(report)
        log.warning("%s", report.format())
        request_id = arrival.data.get("id") if arrival is not None and isinstance(arrival.data, dict) else None
        with contextlib.suppress(Exception):
            await conn.ws.send(report.error_frame(self.script.protocol, request_id, self.channel_ids[cs.role]))
            await conn.ws.close(DIVERGENCE_CLOSE_CODE, "chanlog: divergence")



async def _first(awaitable: Any, closed: asyncio.Future[None], *, timeout: float | None) -> bool:
    """Wait for ``awaitable`` or ``closed``; True when ``awaitable`` finished first within ``timeout``."""
    task = asyncio.ensure_future(awaitable)
    if task.done():
        return True
    try:
        done, _ = await asyncio.wait({task, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
    return task in done


# -- the fake node ----------------------------------------------------------------------------------------------


class FakeNode:
    """A WebSocket server that plays the node side of a transcript.

    ``FakeNode(transcript, host=, port=, mode=, timeout=, grace=, sessions=, transform=)``:

    * ``port`` 0 picks a free port; :attr:`url` is ``ws://HOST:PORT/channel`` once started;
    * ``mode``: :class:`~chanlog.matchers.Mode` (or ``"strict"`` / ``"lenient"``);
    * ``timeout``: seconds to wait for an expected client frame (a divergence after that), also how long
      a session waits for a reconnect before it ends;
    * ``grace``: seconds before a role that has not connected stops holding the other back; in lenient
      mode also how long a skippable client frame is waited for;
    * ``sessions``: how many sessions to serve (``None``: no limit); :meth:`wait` returns when they
      have all ended;
    * ``transform``: a function ``Transcript -> Transcript`` applied once before serving (both the
      frames sent and the client frames expected come from its result), e.g. a compatibility upgrade.

    Use ``async with FakeNode(...) as node:`` or :meth:`start` / :meth:`stop`; from synchronous code,
    :func:`serve_in_thread`. Reports: :attr:`reports` (one :class:`SessionReport` per ended session).
    """

    def __init__(self, transcript: Transcript, *, host: str = DEFAULT_HOST, port: int = 0,
                 mode: Mode | str = Mode.STRICT, timeout: float = DEFAULT_TIMEOUT, grace: float = DEFAULT_GRACE,
                 sessions: int | None = 1, transform: Transform | None = None) -> None:
        if transform is not None:
            transcript = transform(transcript)
        self.transcript = transcript
        self.script = Script.build(transcript)
        self.host = host
        self.port = port
        self.mode = Mode(mode)
        self.timeout = float(timeout)
        self.grace = float(grace)
        self.max_sessions = sessions if sessions else None
        self.reports: list[SessionReport] = []
        self.refused: list[Divergence] = []
        """Connections refused because no recorded connection was left for their role."""
        self._sessions: list[Session] = []
        self._server: Any = None
        self._done: asyncio.Event | None = None

    # -- lifecycle

    @property
    def url(self) -> str:
        """``ws://HOST:PORT/channel`` (the recorded path); only meaningful once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}{self.script.path}"

    async def start(self) -> str:
        """Bind and serve; returns :attr:`url`. Raises :class:`ReplayError` when the address is in use."""
        from websockets.asyncio.server import serve

        self._done = asyncio.Event()
        try:
            self._server = await serve(self._handler, self.host, self.port, process_request=self._check_request,
                                       compression=None, ping_interval=None, max_size=2 ** 24,
                                       close_timeout=min(self.timeout, 5.0))
        except OSError as exc:
            raise ReplayError(f"cannot listen: {exc.strerror or exc}", f"{self.host}:{self.port}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("serving %s (%s, %d frames) at %s", self.transcript.name, self.mode.value,
                 self.script.frame_count, self.url)
        return self.url

    async def stop(self) -> None:
        """Stop listening, close open connections and end every session (unplayed parts count as
        unfinished)."""
        if self._server is None:
            return
        self._server.close(close_connections=False)
        for session in list(self._sessions):
            await session.abort()
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), self.timeout)
        self._server = None

    async def __aenter__(self) -> FakeNode:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until ``sessions`` sessions have ended; False on ``timeout`` (or when unlimited)."""
        assert self._done is not None, "start() first"
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            return False
        return True

    async def settle(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds) until no connection's script is still being played: lets
        frames and closes under way arrive before :meth:`stop` judges the sessions. Connections whose
        script has ended but that are still open do not hold it up."""
        deadline = time.monotonic() + timeout
        while any(s.running for s in self._sessions) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # -- results

    @property
    def divergences(self) -> list[Divergence]:
        """Every divergence of every ended session, then the refused connections."""
        return [d for r in self.reports for d in r.divergences] + self.refused

    def ok(self, allow_partial: bool = False) -> bool:
        """True when at least one session ran, every ended session is :meth:`SessionReport.ok` and no
        connection was refused."""
        return bool(self.reports) and not self.refused and all(r.ok(allow_partial) for r in self.reports)

    # -- serving

    def _check_request(self, connection: Any, request: Any) -> Any:
        from http import HTTPStatus

        parts = urlsplit(request.path)
        if parts.path.rstrip("/") != self.script.path.rstrip("/"):
            return connection.respond(HTTPStatus.NOT_FOUND, f"chanlog replay serves {self.script.path} only\n")
        role = dict(parse_qsl(parts.query)).get("role")
        if role not in ROLES:
            return connection.respond(HTTPStatus.BAD_REQUEST,
                                      f"the query parameter role must be initiator or responder, not {role!r}\n")
        return None

    async def _handler(self, ws: Any) -> None:
        params = dict(parse_qsl(urlsplit(ws.request.path).query, keep_blank_values=True))
        role = params["role"]
        key = params.get(SESSION_PARAM, "")
        session = self._assign(role, key)
        if session is None:
            reason = (f"no recorded {role} connection left: the transcript has {len(self.script.roles[role])}, "
                      f"and {self.max_sessions} session(s) were served")
            log.warning("refused a %s connection: %s", role, reason)
            error = Divergence(reason=reason, role=role, nth=self._count(role, key) + 1)
            self.refused.append(error)
            with contextlib.suppress(Exception):
                await ws.send(error.error_frame(self.script.protocol))
                await ws.close(1008, "chanlog: no recorded connection left")
            return
        await session.serve(ws, role, params)

    def _count(self, role: str, key: str) -> int:
        return sum(s.next_nth[role] for s in self._sessions if s.key == key)

    def _assign(self, role: str, key: str) -> Session | None:
        for session in self._sessions:
            if session.key == key and session.wants(role):
                return session
        started = len(self.reports) + len(self._sessions)
        if self.max_sessions is not None and started >= self.max_sessions:
            return None
        if not self.script.roles[role]:
            return None
        session = Session(self, started + 1, key)
        self._sessions.append(session)
        return session

    def _session_ended(self, session: Session) -> None:
        if session in self._sessions:
            self._sessions.remove(session)
        self.reports.append(session.report)
        self.reports.sort(key=lambda r: r.number)
        log.debug("%s", session.report.summary())
        if self.max_sessions is not None and len(self.reports) >= self.max_sessions and self._done is not None:
            self._done.set()


# -- from synchronous code ---------------------------------------------------------------------------------------


class NodeThread:
    """A :class:`FakeNode` running on its own event loop in a background thread (for sync code).

    ``with serve_in_thread(transcript) as node: ... node.url ...``; :meth:`stop` (or leaving the
    ``with``) ends every session and joins the thread; then read :attr:`reports`.
    """

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="chanlog-fake-node", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.node.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def start(self) -> NodeThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    @property
    def url(self) -> str:
        return self.node.url

    @property
    def reports(self) -> list[SessionReport]:
        return self.node.reports

    @property
    def divergences(self) -> list[Divergence]:
        return self.node.divergences

    def ok(self, allow_partial: bool = False) -> bool:
        return self.node.ok(allow_partial)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the node's sessions have ended (see :meth:`FakeNode.wait`)."""
        if not self._thread.is_alive():
            return True
        return asyncio.run_coroutine_threadsafe(self.node.wait(timeout), self._loop).result()

    def stop(self, settle: float = 0.0) -> None:
        """Let open connections close for up to ``settle`` seconds, stop the node, join the thread."""
        if not self._thread.is_alive():
            return

        async def finish() -> None:
            if settle:
                await self.node.settle(settle)
            await self.node.stop()

        try:
            asyncio.run_coroutine_threadsafe(finish(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> NodeThread:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_in_thread(transcript: Transcript, **options: Any) -> NodeThread:
    """Start a :class:`FakeNode` (same ``options``; ``port`` defaults to 0) in a background thread and
    return its started :class:`NodeThread`. Raises :class:`ReplayError` when it cannot listen."""
    options.setdefault("port", 0)
    return NodeThread(FakeNode(transcript, **options)).start()
