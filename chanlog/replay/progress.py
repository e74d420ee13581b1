"""Waiting on what has happened: the cross-role dependency board of a session (:class:`Progress`) and a
cheap re-armable timeout (:class:`Deadline`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

PENDING, DONE, ABANDONED = 0, 1, 2
"""States of an event in :attr:`Progress.state`."""


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
