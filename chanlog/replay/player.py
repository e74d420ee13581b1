"""The client player (``chanlog play``): the client side of both participants of a transcript.

For each role the player walks that role's recorded events in order: it opens each recorded
connection against the given URL with the recorded query string (``role=<role>`` only when the log
starts mid-connection), sends each recorded client frame exactly as recorded, and checks each frame
the node sends against the recorded one (:data:`chanlog.replay.matchers.NODE_MATCHERS`). A client step
(open, frame, close) waits until everything recorded before it on its own role has happened, and,
softly, until the other role's latest event recorded before it has happened (both participants'
entries of a log are interleaved in write order, which is not always causal: a cross-role wait that
lasts ``timeout`` seconds gives up and goes on). A participant may have several connections open at
once; each stays open from its recorded open to its recorded close (or its last recorded frame). Pongs
answer the player's own pings whenever they arrive.

The node may be the fake node (``chanlog replay``) or a real node, directly or through the recorder.
The first divergence stops the play; :class:`PlayReport` says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from chanlog.model import ROLES, Transcript
from chanlog.replay import (
    CLIENT,
    CLOSE,
    DEFAULT_TIMEOUT,
    NODE,
    OPEN,
    SESSION_PARAM,
    ConnScript,
    Deadline,
    Progress,
    ReplayError,
    Script,
    Step,
)
from chanlog.replay.matchers import (
    NODE_MATCHERS,
    Arrival,
    Divergence,
    Mode,
    check,
    diff,
    divergence_of,
    is_pong,
)
from chanlog.urls import host_port, ws_endpoint

log = logging.getLogger("chanlog.replay.player")


@dataclass
class PlayReport:
    """How a play went."""

    transcript: str
    """The transcript's name."""
    url: str
    """The node URL played against."""
    frames: int = 0
    """Frames in the transcript (both roles, both directions)."""
    sent: int = 0
    """Client frames sent."""
    received: int = 0
    """Node frames received and matched."""
    skipped: int = 0
    """Recorded node frames not expected (not JSON text: a fake node never sends them)."""
    connections: int = 0
    """Connections opened."""
    elapsed: float = 0.0
    """Seconds from the first open to the end."""
    divergences: list[Divergence] = field(default_factory=list)
    """The divergence that stopped the play (at most one per role)."""
    notes: list[str] = field(default_factory=list)
    """Soft waits that gave up (non-causal log order), and similar remarks."""

    @property
    def ok(self) -> bool:
        """True when the play reached the end of the transcript without a divergence."""
        return not self.divergences

    def summary(self) -> str:
        """One line: verdict and counts."""
        verdict = "diverged" if self.divergences else "played to the end"
        return (f"{self.transcript}: {verdict}; {self.sent} client frames sent, {self.received} node frames "
                f"received over {self.connections} connections in {self.elapsed:.3f} s")


class _Stop(Exception):
    """Raised inside a role's task to stop the play after a divergence."""


class _RoleConn:
    """The player's side of one connection."""

    def __init__(self, ws: Any, script: ConnScript) -> None:
        self.ws = ws
        self.script = script
        self.buffer: deque[str | bytes] = deque()
        self.pongs = 0
        self.task = asyncio.current_task()
        self.timed_out = False
        self.deadline = Deadline(self._expired)

    def _expired(self) -> None:
        self.timed_out = True
        if self.task is not None:
            self.task.cancel()


def connect_error(exc: BaseException, url: str, timeout: float) -> str:
    """Why a WebSocket connection to ``url`` could not be opened, in one line naming ``HOST:PORT`` (never
    the query string, which holds the channel's parameters): nothing listening (``ECONNREFUSED``), a host
    that does not resolve, no handshake within ``timeout`` seconds, an HTTP answer other than 101 (RFC
    6455, section 4.1), a URL that is not ``ws://``/``wss://``."""
    import socket

    from websockets.exceptions import InvalidStatus

    try:
        _, host, port, path = ws_endpoint(url)
    except ValueError as bad:
        return str(bad)
    where = host_port(host, port)
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing listens at {where}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host {host!r}: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError):
        return f"no WebSocket handshake from {where} within {timeout:g} s"
    if isinstance(exc, InvalidStatus):
        return (f"{where} answered HTTP {exc.response.status_code} to the WebSocket upgrade of "
                f"{path or '/'}, not 101")
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"WebSocket handshake with {where} failed: {exc}"


class Player:
    """Plays the client side of a transcript against ``url``; see :func:`play`."""

    def __init__(self, transcript: Transcript | Script, url: str, *, mode: Mode | str = Mode.STRICT,
                 timeout: float = DEFAULT_TIMEOUT, session: str | None = None) -> None:
        self.script = transcript if isinstance(transcript, Script) else Script.build(transcript)
        transcript = self.script.transcript
        self.url = url
        self.mode = Mode(mode)
        self.timeout = float(timeout)
        self.session = session
        self.progress = Progress(self.script.role_of, self.script.conn_of)
        self.report = PlayReport(transcript.name, url, frames=self.script.frame_count)
        self._conns: set[_RoleConn] = set()

    def connection_url(self, cs: ConnScript) -> str:
        """``url`` with the recorded query of ``cs`` (after any query ``url`` has), plus the session key."""
        parts = urlsplit(self.url)
        query = "&".join(q for q in (parts.query, cs.query) if q)
        if self.session is not None:
            query += "&" + urlencode({SESSION_PARAM: self.session})
        return urlunsplit((parts.scheme, parts.netloc, parts.path or self.script.path, query, ""))

    async def run(self) -> PlayReport:
        """Play both roles to the end or to the first divergence. Raises :class:`ReplayError` when a
        connection cannot be opened."""
        start = time.monotonic()
        if not any(self.script.roles[role] for role in ROLES):  # i16: nothing to wait for (issue 16)
            raise ReplayError("nothing to play: the transcript has no connection")
        tasks = [asyncio.create_task(self._role(role), name=f"chanlog-play-{role}")
                 for role in ROLES if self.script.roles[role]]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            # every finished task's exception retrieved (else asyncio logs "never retrieved" for the
            # second role failing the same way), the first role's raised
            failures = [task.exception() for task in tasks if task in done]
            exc = next((e for e in failures if e is not None and not isinstance(e, _Stop)), None)
            if exc is not None:
                raise exc
        finally:
            for conn in list(self._conns):
                with contextlib.suppress(Exception):
                    await conn.ws.close()
            self.report.elapsed = time.monotonic() - start
        return self.report

    async def _role(self, role: str) -> None:
        """Walk ``role``'s events in recorded order; a participant may have several connections open."""
        conns: dict[int, _RoleConn] = {}
        last = {cs.conn: max(s.index for s in (cs.open, *cs.frames, cs.close) if s is not None)
                for cs in self.script.roles[role]}
        try:
            for step in self.script.role_steps(role):
                cs = self.script.roles[role][step.nth]
                if step.kind in (OPEN, CLIENT, CLOSE):
                    for dep in step.peer_deps:
                        if not self.progress.satisfied(dep):
                            await self._soft_wait(step, dep)
                conn = conns.get(step.conn)
                if conn is None and step.kind != CLOSE:
                    conn = conns[step.conn] = await self._open(cs)
                if step.kind == CLIENT:
                    await self._send(conn, step)  # type: ignore[arg-type]
                elif step.kind == NODE:
                    await self._receive(conn, step)  # type: ignore[arg-type]
                if conn is not None and (step.kind == CLOSE or step.index == last[step.conn]):
                    del conns[step.conn]
                    await self._close(conn, wait_for_node=step.kind == CLOSE and cs.closed_by_node)
                self.progress.mark(step.index)
        finally:
            self.progress.release(role)

    async def _soft_wait(self, step: Step, dep: int) -> None:
        fut = self.progress.waiter(dep)
        try:
            await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            other = self.script.steps[dep]
            note = (f"{step.role} {step.describe()} waited {self.timeout:g} s for {other.role} "
                    f"{other.describe()}; went on (the log's order is not causal here)")
            log.info("%s", note)
            self.report.notes.append(note)
            self.progress.release_conn(other.conn)

    async def _open(self, cs: ConnScript) -> _RoleConn:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidURI

        url = self.connection_url(cs)
        try:
            ws = await connect(url, compression=None, ping_interval=None, max_size=2 ** 24,
                               open_timeout=self.timeout)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ValueError) as exc:
            raise ReplayError(f"cannot open {cs.label}: {connect_error(exc, url, self.timeout)}") from None
        conn = _RoleConn(ws, cs)
        self._conns.add(conn)
        self.report.connections += 1
        return conn

    async def _close(self, conn: _RoleConn, wait_for_node: bool = False) -> None:
        from websockets.exceptions import ConnectionClosed

        self._conns.discard(conn)
        conn.deadline.cancel()
        if wait_for_node:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    while True:
                        await conn.ws.recv()
        await conn.ws.close()

    async def _send(self, conn: _RoleConn, step: Step) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            await conn.ws.send(step.expected.wire)  # type: ignore[union-attr]
        except ConnectionClosed as exc:
            self._diverge(conn, step, None, f"the node closed the connection ({_close_text(exc)}) before "
                                            f"{step.describe()} could be sent")
        self.report.sent += 1

    async def _next(self, conn: _RoleConn, step: Step) -> str | bytes:
        from websockets.exceptions import ConnectionClosed

        if conn.buffer:
            return conn.buffer.popleft()
        conn.deadline.begin(self.timeout)
        try:
            return await conn.ws.recv()  # cancelling recv() loses no message (websockets docs)
        except asyncio.CancelledError:
            if not conn.timed_out:
                raise
            conn.timed_out = False
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            self._diverge(conn, step, None, f"no frame arrived within {self.timeout:g} s; "
                                            f"{conn.script.label} was waiting for {step.describe()}")
        except ConnectionClosed as exc:
            self._diverge(conn, step, None, f"the node closed the connection ({_close_text(exc)}) while "
                                            f"{step.describe()} was expected")
        finally:
            conn.deadline.end()
        raise AssertionError("unreachable")

    async def _receive(self, conn: _RoleConn, step: Step) -> None:
        exp = step.expected
        assert exp is not None
        if not exp.is_json:
            self.report.skipped += 1
            return
        if step.pong:
            if conn.pongs:
                conn.pongs -= 1
                self.report.received += 1
                return
            held: list[str | bytes] = []
            while True:
                message = await self._next(conn, step)
                arrival = Arrival.parse(message)
                if is_pong(arrival.data):
                    self._check(conn, step, message, arrival)
                    conn.buffer.extendleft(reversed(held))
                    return
                held.append(message)
        while True:
            message = await self._next(conn, step)
            if isinstance(message, str) and message == exp.wire:
                self.report.received += 1
                return
            arrival = Arrival.parse(message)
            if is_pong(arrival.data):
                conn.pongs += 1
                continue
            self._check(conn, step, message, arrival)
            return

    def _check(self, conn: _RoleConn, step: Step, message: str | bytes, arrival: Arrival) -> None:
        reasons = check(step.expected, arrival, NODE_MATCHERS[self.mode])  # type: ignore[arg-type]
        if not reasons:
            self.report.received += 1
            return
        reported = divergence_of(arrival.data)
        if reported is not None:
            reasons = [f"the node reported a divergence of this client: {reported.get('reason')}"
                       + (f" (frame {reported['frame']})" if reported.get("frame") else "")]
        self._diverge(conn, step, arrival, "; ".join(reasons))

    def _diverge(self, conn: _RoleConn, step: Step, arrival: Arrival | None, reason: str) -> None:
        exp = step.expected
        wire = exp.wire if exp is not None else None
        report = Divergence(
            reason=reason, role=conn.script.role, nth=conn.script.nth + 1, frame=step.number,
            expected=wire if isinstance(wire, str) or wire is None else f"<binary message: {len(wire)} bytes>",
            method=step.method, arrived=arrival.text() if arrival is not None else None,
            diff=diff(exp, arrival) if exp is not None and arrival is not None else "",
            sender="node" if step.kind == NODE else "client")
        self.report.divergences.append(report)
        log.warning("%s", report.format())
        raise _Stop(reason)


def _close_text(exc: Any) -> str:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is None:
        return "no close frame"
    return f"code {rcvd.code}" + (f", {rcvd.reason!r}" if rcvd.reason else "")


async def aplay(transcript: Transcript | Script, url: str, *, mode: Mode | str = Mode.STRICT,
                timeout: float = DEFAULT_TIMEOUT, session: str | None = None) -> PlayReport:
    """Play the client side of both participants of ``transcript`` against the node at ``url``
    (``ws://HOST:PORT/channel``); see the module docstring. ``transcript`` may be a prebuilt
    :class:`~chanlog.replay.Script` (to play one transcript many times without cutting it up again).

    ``mode``: :class:`~chanlog.replay.matchers.Mode` for checking the node's frames; ``timeout``: seconds to
    wait for each node frame (and for soft cross-role waits); ``session``: a key sent as the
    ``chanlog_session`` query parameter, so that several plays can share one fake node at once.
    Returns a :class:`PlayReport` (``report.ok`` is False on a divergence). Raises
    :class:`~chanlog.replay.ReplayError` when a connection cannot be opened.
    """
    return await Player(transcript, url, mode=mode, timeout=timeout, session=session).run()


def play(transcript: Transcript | Script, url: str, **options: Any) -> PlayReport:
    """Synchronous :func:`aplay` (runs its own event loop; not for use inside a running loop)."""
    return asyncio.run(aplay(transcript, url, **options))
