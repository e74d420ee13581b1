"""The fake node from synchronous code: a :class:`FakeNode` on its own event loop in a background thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from chanlog.model import Transcript
from chanlog.replay.matchers import Divergence
from chanlog.replay.node import FakeNode
from chanlog.replay.session import SessionReport


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
