"""The fake node: a WebSocket server that plays the node side of a transcript (:class:`FakeNode`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chanlog.model import ROLES, Transcript
from chanlog.replay.errors import ReplayError
from chanlog.replay.matchers import Divergence, Mode
from chanlog.replay.rebind import recorded_creates
from chanlog.replay.script import Script
from chanlog.replay.session import Session, SessionReport
from chanlog.urls import host_port

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

Transform = Callable[[Transcript], Transcript]
"""A transformation applied to the transcript before serving (e.g. :func:`chanlog.replay.compat.transformer`)."""


def listen_error(exc: OSError, host: str) -> str:
    """Why a server could not bind ``host``, in a few words: the port in use (``EADDRINUSE``), a port below
    1024 without the privilege (``EACCES``), an address not on this machine (``EADDRNOTAVAIL``), a host that
    does not resolve; else the system's words. asyncio's own message repeats the address as a tuple."""
    import errno
    import os
    import socket

    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host {host!r}: {exc.strerror or exc}"
    if exc.errno == errno.EADDRINUSE:
        return "the port is in use by another process (--port 0 picks a free one)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine"
    return os.strerror(exc.errno) if exc.errno else str(exc)


class FakeNode:
    """A WebSocket server that plays the node side of a transcript.

    ``FakeNode(transcript, host=, port=, mode=, timeout=, grace=, sessions=, transform=)``:

    * ``port`` 0 picks a free port; :attr:`url` is ``ws://HOST:PORT/channel`` once started;
    * ``mode``: :class:`~chanlog.replay.matchers.Mode` (or ``"strict"`` / ``"lenient"``);
    * ``timeout``: seconds to wait for an expected client frame (a divergence after that), also how long
      a session waits for a reconnect before it ends;
    * ``grace``: seconds before a role that has not connected stops holding the other back; in lenient
      mode also how long a skippable client frame is waited for;
    * ``sessions``: how many sessions to serve (``None``: no limit); :meth:`wait` returns when they
      have all ended;
    * ``transform``: a function ``Transcript -> Transcript`` applied once before serving (both the
      frames sent and the client frames expected come from its result), e.g. a compatibility upgrade;
    * ``rebind``: serve clients with their own accounts (:mod:`chanlog.replay.rebind`): each session maps
      the recorded accounts, channel id and signatures to those of its clients; ``network_ids``: the
      network ids their signatures are checked with (default
      :data:`~chanlog.replay.rebind.DEFAULT_NETWORK_IDS`).

    Use ``async with FakeNode(...) as node:`` or :meth:`start` / :meth:`stop`; from synchronous code,
    :func:`serve_in_thread`. Reports: :attr:`reports` (one :class:`SessionReport` per ended session).
    """

    def __init__(self, transcript: Transcript, *, host: str = DEFAULT_HOST, port: int = 0,
                 mode: Mode | str = Mode.STRICT, timeout: float = DEFAULT_TIMEOUT, grace: float = DEFAULT_GRACE,
                 sessions: int | None = 1, transform: Transform | None = None, rebind: bool = False,
                 network_ids: tuple[str, ...] | list[str] | None = None) -> None:
        if transform is not None:
            transcript = transform(transcript)
        self.transcript = transcript
        self.script = Script.build(transcript)
        self.rebind = bool(rebind)
        self.network_ids = tuple(network_ids) if network_ids else None
        self.creates = recorded_creates(self.script) if rebind else []
        """``(initiator, nonce, responder)`` of the recorded channel_create_tx (for ``rebind``)."""
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
            raise ReplayError(f"cannot listen: {listen_error(exc, self.host)}",
                              host_port(self.host, self.port)) from None
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

    def session_ended(self, session: Session) -> None:
        """Files the ended ``session``'s report (:class:`chanlog.replay.session.Host`)."""
        if session in self._sessions:
            self._sessions.remove(session)
        self.reports.append(session.report)
        self.reports.sort(key=lambda r: r.number)
        log.debug("%s", session.report.summary())
        if self.max_sessions is not None and len(self.reports) >= self.max_sessions and self._done is not None:
            self._done.set()
