"""One session of the fake node: a pair of clients (one per role) playing the script across their
reconnects: what arrived per connection (:class:`Inbox`), the node frames sent, the client frames
checked, and how it went (:class:`SessionReport`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from chanlog.model import ROLES, dump_json
from chanlog.replay.matchers import (
    MATCHERS,
    Arrival,
    Divergence,
    Expected,
    Mode,
    check,
    diff,
    is_ping,
    make_pong,
)
from chanlog.replay.progress import ABANDONED, DONE, PENDING, Deadline, Progress
from chanlog.replay.rebind import Rebinder
from chanlog.replay.script import CLOSE, NODE, ConnScript, Script, Step, same_id

log = logging.getLogger("chanlog.replay")

DIVERGENCE_CLOSE_CODE = 4000
"""WebSocket close code after a divergence (4000-4999: private use, RFC 6455 §7.4.2)."""


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


class Host(Protocol):
    """What a :class:`Session` needs of the fake node that runs it (:class:`chanlog.replay.node.FakeNode`
    is one): the script, the settings, and a call when the session has ended."""

    script: Script
    mode: Mode
    timeout: float
    """Seconds to wait for a client's frame."""
    grace: float
    """Seconds to wait for a participant that has not connected, or for an optional frame."""
    rebind: bool
    creates: list[Any]
    network_ids: tuple[str, ...] | None

    def session_ended(self, session: Session) -> None:
        """Called once, when ``session`` has ended; its report is final."""


class Session:
    """One play of the script by a pair of clients (one per role), across their reconnects."""

    def __init__(self, node: Host, number: int, key: str) -> None:
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
        self.rebinder = Rebinder(self.script, node.creates, node.network_ids, number) if node.rebind else None
        """With ``rebind``: the mapping of recorded values to this session's clients' (:mod:`~chanlog.replay.rebind`)."""
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
        self.node.session_ended(self)

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
        problem = self.rebinder.connect(cs, params) if self.rebinder is not None else None
        conn = _Conn(ws, cs)
        self._conns.add(conn)
        if cs.open is not None:
            self.progress.mark(cs.open.index)
        log.debug("session %d: %s opened (recorded conn %d)", self.number, cs.label, cs.conn)
        reader = asyncio.create_task(self._read(conn))
        try:
            self.running += 1
            try:
                if problem is not None:
                    await self._diverge(conn, None, None, problem)
                    finished = False
                else:
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
        data = exp.data
        if self.rebinder is not None:
            data = self.rebinder.map_json(exp.data)
            if data is not exp.data:
                text = dump_json(data, step.event.fmt or "compact")  # type: ignore[attr-defined]
        if step.reply_to >= 0:
            has_id, actual = conn.actual_ids.get(step.reply_to, (True, step.recorded_id))
            if self.progress.state[step.reply_to] == ABANDONED:
                self.report.skipped.append(f"{conn.script.label}: {step.describe()} (answers a skipped frame)")
                return True
            if not has_id:
                self.report.withheld += 1
                return True
            if not same_id(actual, step.recorded_id):
                data = dict(data)
                data["id"] = actual
                text = dump_json(data, step.event.fmt or "compact")  # type: ignore[attr-defined]
        try:
            await conn.ws.send(text)
        except ConnectionClosed:
            return False
        self.report.sent += 1
        if step.channel_id:
            self.channel_ids[step.role] = (step.channel_id if self.rebinder is None
                                           else self.rebinder.map_text(step.channel_id))
        return True

    # -- client frames

    async def _client_step(self, conn: _Conn, step: Step) -> bool:
        lenient = self.node.mode is Mode.LENIENT
        skippable = lenient and step.optional
        if step.ping and conn.ping_credits:
            conn.ping_credits -= 1
            self._matched(conn, step, None)
            return True
        # A client's keepalive pings (channels.system ping) follow its own timer, not the flow, and the node
        # answers one whenever it arrives (sc_ws_api_jsonrpc serves system ping in any state): in every mode a
        # recorded ping waits ``grace`` seconds at most and gives way to any other frame (_skip_ping).
        wait = self.node.grace if skippable or step.ping else self.node.timeout
        deadline = time.monotonic() + wait
        while True:
            item = await conn.inbox.get(max(0.0, deadline - time.monotonic()))
            if item is Inbox.CLOSED:
                conn.inbox.unget(item)
                if step.ping:
                    return self._skip_ping(conn, step)
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
                if step.ping:
                    return self._skip_ping(conn, step)
                if skippable:
                    conn.pending.append(step)
                    return True
                reason = (f"no frame arrived within {wait:g} s; {conn.script.label} was waiting for "
                          f"{step.describe()}")
                await self._diverge(conn, step, None, reason)
                return False
            if step.ping:
                conn.inbox.unget(item)
                return self._skip_ping(conn, step)
            expected = self._expected(step)
            if self.rebinder is None and isinstance(item, str) and item == expected.wire:
                self._matched(conn, step, None)
                return True
            arrival = Arrival.parse(item)
            if lenient and await self._match_pending(conn, arrival):
                continue
            reasons = check(expected, arrival, MATCHERS[self.node.mode])
            if not reasons and self.rebinder is not None:
                problem = self.rebinder.signed(conn.script.role, expected, arrival)
                reasons = [problem] if problem else []
            if not reasons:
                self._matched(conn, step, arrival)
                return True
            if skippable:
                conn.pending.append(step)
                conn.inbox.unget(item)
                return True
            await self._diverge(conn, step, arrival, "; ".join(reasons))
            return False

    def _skip_ping(self, conn: _Conn, step: Step) -> bool:
        """A recorded keepalive ping the client did not send (its own timer decides): skipped, and what was
        recorded after it no longer waits for it."""
        self.report.skipped.append(f"{conn.script.label}: {step.describe()} (a keepalive ping: clients send them "
                                   "on their own timer)")
        self.progress.mark(step.index)
        return True

    def _expected(self, step: Step) -> Expected:
        """The recorded client frame of ``step`` as this session expects it (after the rebinding)."""
        exp = step.expected
        assert exp is not None
        if self.rebinder is None:
            return exp
        return self.rebinder.expected(exp, step.event.fmt)  # type: ignore[attr-defined]

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
            if not check(self._expected(slot), arrival, MATCHERS[Mode.LENIENT]):
                conn.pending.remove(slot)
                self._matched(conn, slot, arrival)
                for held in conn.deferred.pop(slot.index, ()):
                    await self._send(conn, held)
                return True
        return False

    async def _diverge(self, conn: _Conn, step: Step | None, arrival: Arrival | None, reason: str) -> None:
        cs = conn.script
        exp = self._expected(step) if step is not None else None
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
