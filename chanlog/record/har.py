"""HAR connections fed through the recorder: a HAR's channel connections become transcripts paired
exactly as a live recording pairs them.

:func:`import_har` reads the connections :mod:`chanlog.sources.har` found in a HAR document and replays
them, in the order of their times, through :class:`chanlog.record.addon.ChannelRecorder` itself (as
mitmproxy flows, in a temporary folder): one transcript per channel session, frame times from the HAR.
It lives in ``record`` because it drives the mitmproxy addon; reading and exporting HAR need no
mitmproxy and stay in :mod:`chanlog.sources.har`.
"""

from __future__ import annotations

import heapq
import os
import struct
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from chanlog.model import Transcript
from chanlog.sources.har import BINARY, TEXT, HarConnection, HarError, HarImport, HarMessage

#: Bytes of one connection's spooled messages read at a time during the replay (one such buffer per open
#: connection; a larger message is read whole, as large as the HAR held it).
SPOOL_READ = 64 * 1024
#: Paths of WebSocket entries off the channel path named in the note that counts them (the rest are counted).
MAX_PATHS_NAMED = 5
#: Sessions whose transcript is being written at a time during a HAR import: the replay waits for one to be
#: done before it ends another (each holds an open journal until then; the writers' processes are the limit).
WRITE_BACKLOG = 8
_RECORD = struct.Struct("<??dQ")  # a spooled message: from_client, is_text, time, length of its content


def import_har(doc: dict[str, Any], filename: str = "<har>", *, channel_path: str = "/channel",
               headers: bool = False) -> HarImport:
    """Turn the channel connections of a HAR document into transcripts, paired as the recorder pairs
    them (:mod:`chanlog.record.pairing`: by channel parameters, ``existing_channel_id`` and the ``channel_id``
    the node names; one transcript per channel session).

    ``channel_path`` is the endpoint (the recorder's ``chanlog_path``); ``headers`` keeps the upgrade
    request headers in the open events (``chanlog_headers``; browsers' HARs hold cookies). Times are
    the HAR's: ``startedDateTime`` plus the handshake's ``timings`` for an open, each message's ``time``.

    Raises :class:`HarError` when the HAR has no WebSocket entry, or none on ``channel_path`` with a
    ``role`` parameter (saying what it has instead). Everything else that is not recorded as is goes
    into :attr:`HarImport.notes`. Holds every transcript in memory: a large HAR goes through
    :func:`import_har_file`, which writes each session as it ends.
    """
    with tempfile.TemporaryDirectory(prefix="chanlog-har-") as tmp:
        importer = HarImporter(Path(tmp), filename, channel_path=channel_path, headers=headers)
        try:
            importer.read(enumerate(doc["log"]["entries"]), {"creator": doc["log"].get("creator")})
        except BaseException:
            importer.close()
            raise
        found: dict[int, Transcript] = {}
        for kind, seq, t in importer.record():
            if kind == "written":
                found[seq] = t
            else:
                found.pop(seq, None)
    out = sorted(found.values(), key=lambda t: (str(t.source.get("started", "")), t.name))
    return HarImport(out, importer.notes)


def import_har_file(fh: BinaryIO, filename: str, folder: Path, *, channel_path: str = "/channel",
                    headers: bool = False) -> Iterator[tuple[str, int, Transcript]]:
    """Stream a HAR file (a binary file object) through the recorder: ``("written", seq, transcript)`` each
    time a channel session has ended and its transcript is ready (again, should a reestablish continue it
    later: the newer one replaces it), ``("removed", seq, transcript-less head)`` when a session written
    before turned out to be part of another (merged: that one holds both). ``seq`` numbers the sessions in
    the order they started (1 first). ``folder`` is an empty temporary folder for the spool and journals.

    Memory: the HAR is parsed incrementally (:func:`chanlog.sources.har.stream_entries`), one entry at a
    time; the channel connections' messages are spooled to ``folder``; the replay holds a read buffer
    (:data:`SPOOL_READ`) per open connection, the recorder's pairing state (a few hundred bytes per session),
    the index of the channel connections (their URL and times, a few hundred bytes each) and one session's
    transcript at a time. Temporary disk: about twice the channel messages (spool, journals). The notes are
    in :attr:`HarImporter.notes` of the importer, also in each transcript's ``source.notes``.
    Raises :class:`HarError` as :func:`import_har` does, before any transcript is given.
    """
    from chanlog.sources.har import stream_entries

    importer = HarImporter(folder, filename, channel_path=channel_path, headers=headers)
    meta: dict[str, Any] = {}
    try:
        importer.read(stream_entries(fh, filename, meta), meta)
    except BaseException:
        importer.close()
        raise
    yield from importer.record()


class HarImporter:
    """A HAR's channel connections replayed through :class:`chanlog.record.addon.ChannelRecorder` in two
    steps: :meth:`read` takes the entries once (checked, their messages spooled to a file in ``folder``, only
    an index of the connections kept), :meth:`record` replays the connections merged by time, each session's
    transcript given as soon as the recorder wrote it."""

    def __init__(self, folder: Path, filename: str, *, channel_path: str = "/channel", headers: bool = False):
        self.folder = folder
        self.filename = filename
        self.channel_path = channel_path
        self.headers = headers
        self.notes: list[str] = []
        """What was skipped or changed (:attr:`HarImport.notes`), complete after :meth:`read`."""
        self.creator = ""
        self.conns: list[HarConnection] = []
        """The channel connections with a role, without their messages (spooled), in HAR order."""
        self._offsets: dict[int, int] = {}
        self._spool = open(folder / "messages.spool", "w+b")  # noqa: SIM115 - closed by record()
        self._fd = self._spool.fileno()

    def read(self, entries: Iterable[tuple[int, Any]], meta: dict[str, Any]) -> None:
        """Take every entry ``(i, entry)``: WebSocket entries on the channel path with a role are indexed and
        their messages spooled; the others counted or noted. ``meta["creator"]`` is ``log.creator`` once
        ``entries`` is exhausted (a streamed HAR may hold it after the entries). Raises :class:`HarError`."""
        from chanlog.record.pairing import path_matches
        from chanlog.sources.har import entry_connection

        websockets = elsewhere = 0
        paths: set[str] = set()
        roleless: list[str] = []
        odd: list[str] = []
        for i, entry in entries:
            c = entry_connection(entry, i, self.filename)
            if c is None:
                continue
            websockets += 1
            if not path_matches(urlsplit(c.url).path, self.channel_path):
                elsewhere += 1
                if len(paths) < MAX_PATHS_NAMED * 20:
                    paths.add(c.path)
                continue
            if c.role is None:
                roleless.append(f"entries[{c.index}]: {c.url[:120]} has no role=initiator|responder; "
                                f"its {len(c.messages)} messages are not in any transcript")
                continue
            for j, m in enumerate(entry.get("_webSocketMessages") or []):
                if m.get("opcode", TEXT) not in (TEXT, BINARY):
                    odd.append(f"entries[{c.index}]._webSocketMessages[{j}]: opcode {m.get('opcode')!r} is not "
                               "text (1) or binary (2); recorded as a text frame")
                elif m.get("opcode") == BINARY and c.messages[j].is_text:
                    odd.append(f"entries[{c.index}]._webSocketMessages[{j}]: binary data that is not base64; "
                               "recorded as a text frame")
                elif m.get("opcode") == BINARY:
                    odd.append(f"entries[{c.index}]._webSocketMessages[{j}]: a binary frame (kept as binary)")
            self._offsets[c.index] = self._spool.tell()
            for m in c.messages:
                self._spool.write(_RECORD.pack(m.from_client, m.is_text, m.time, len(m.content)))
                self._spool.write(m.content)
            if not self.headers:
                c.headers = {}
            self.conns.append(c.spooled())
        self._spool.flush()
        if not websockets:
            raise HarError("no WebSocket entries (_webSocketMessages) in this HAR; record it with WebSockets "
                           "enabled (Chrome DevTools, Playwright, mitmproxy --set hardump=FILE)", self.filename)
        notes: list[str] = []
        if elsewhere:
            named = sorted(paths)[:MAX_PATHS_NAMED]
            notes.append(f"{elsewhere} WebSocket entries not on {self.channel_path} left out ({', '.join(named)})")
        notes += roleless
        if not self.conns:
            raise HarError(f"none of the {websockets} WebSocket entries is a channel connection on "
                           f"{self.channel_path} with role=initiator|responder"
                           + (f" ({'; '.join(notes)})" if notes else ""), self.filename)
        self.notes = notes + odd
        creator = meta.get("creator")
        self.creator = " ".join(str(creator.get(k, "")) for k in ("name", "version")).strip() \
            if isinstance(creator, dict) else ""

    def close(self) -> None:
        """Close the spool (:meth:`record` does at its end)."""
        self._spool.close()

    def _messages(self, c: HarConnection) -> Iterator[HarMessage]:
        """The spooled messages of ``c``, :data:`SPOOL_READ` bytes at a time (``os.pread``: the replay reads
        many connections' messages in turn from one file)."""
        pos, left = self._offsets[c.index], c.count or 0
        size = _RECORD.size
        while left:
            chunk = os.pread(self._fd, SPOOL_READ, pos)
            at = 0
            batch: list[HarMessage] = []
            while left and at + size <= len(chunk):
                from_client, is_text, t, length = _RECORD.unpack_from(chunk, at)
                if at + size + length > len(chunk):
                    break
                batch.append(HarMessage(from_client, t, chunk[at + size:at + size + length], is_text))
                at += size + length
                left -= 1
            if not batch:  # one message larger than the buffer: read it whole
                from_client, is_text, t, length = _RECORD.unpack_from(chunk, 0)
                content = os.pread(self._fd, length, pos + size)
                batch.append(HarMessage(from_client, t, content, is_text))
                at = size + length
                left -= 1
            pos += at
            yield from batch

    def _timeline(self, c: HarConnection) -> Iterator[tuple[float, int, int, Any]]:
        """``(time, kind, entry, item)`` of one connection, in its own order: open (kind 0, item the
        connection) at :attr:`HarConnection.opened`, its messages (1), its close (2) no earlier than its
        last message."""
        from mitmproxy.websocket import WebSocketMessage
        from wsproto.frame_protocol import Opcode

        t = c.opened
        yield t, 0, c.index, c
        for m in self._messages(c):
            t = max(t, m.time)
            yield t, 1, c.index, WebSocketMessage(Opcode.TEXT if m.is_text else Opcode.BINARY, m.from_client,
                                                  m.content, m.time)
        yield max(t, c.ended), 2, c.index, None

    def _events(self) -> Iterator[tuple[float, int, int, Any]]:
        """Every connection's timeline merged by time (ties: opens, then messages, then closes; then entry
        order), a connection's timeline started only when its open comes up: only open connections are
        being read at any time."""
        pending = sorted(self.conns, key=lambda c: (c.opened, c.index))
        heap: list[tuple[float, int, int, Any, Iterator[tuple[float, int, int, Any]]]] = []
        nxt = 0
        while heap or nxt < len(pending):
            if nxt < len(pending) and (not heap or (pending[nxt].opened, 0, pending[nxt].index) < heap[0][:3]):
                it = self._timeline(pending[nxt])
                nxt += 1
            else:
                t, kind, index, item, it = heapq.heappop(heap)
                yield t, kind, index, item
            step = next(it, None)
            if step is not None:
                heapq.heappush(heap, (*step, it))

    def record(self) -> Iterator[tuple[str, int, Transcript]]:
        """Replay the connections (after :meth:`read`) through a recorder writing into ``folder``:
        ``("written", seq, transcript)`` as each session's transcript is written, ``("removed", seq, head)``
        for a session merged into another after it was given (see :func:`import_har_file`)."""
        import queue

        from chanlog.record.addon import ChannelRecorder
        from chanlog.record.writer import load_journal

        recorder = ChannelRecorder()
        recorder.directory = self.folder / "sessions"
        recorder.channel_path = self.channel_path
        recorder.store_headers = self.headers
        recorder.window = 0  # a write() per record: no window mapped (and reserved on disk) per open journal
        done: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        recorder.on_written = lambda session: done.put(("written", session))
        recorder.on_removed = lambda session: done.put(("removed", session))

        def drain() -> Iterator[tuple[str, int, Transcript]]:
            while not done.empty():
                kind, session = done.get()
                if kind == "removed":
                    yield kind, session.seq, Transcript(name=session.name, protocol="json-rpc", events=[])
                    continue
                t = load_journal(session.journal.path)
                session.transcript.unlink(missing_ok=True)  # the recorder's copy: this one is given instead
                t.source = self._source(t)
                yield kind, session.seq, t

        flows: dict[int, Any] = {}
        stopped = False
        try:
            for _, kind, index, item in self._events():
                if kind == 0:
                    flows[index] = _flow(item)
                    recorder.websocket_start(flows[index])
                elif kind == 1:
                    flow = flows[index]
                    flow.websocket.messages.append(item)
                    recorder.websocket_message(flow)
                    del flow.websocket.messages[:]  # constant memory per connection
                else:
                    recorder.websocket_end(flows.pop(index))
                    recorder.wait_below(WRITE_BACKLOG)
                    yield from drain()
            stopped = True
            recorder.done()
            yield from drain()
        finally:
            if not stopped:  # an error, or the caller stopped early: the writers still end
                recorder.done()
            self.close()

    def _source(self, t: Transcript) -> dict[str, Any]:
        """A transcript's ``source`` as a HAR import gives it: kind, file, creator, the session's channel and
        start, the notes."""
        source: dict[str, Any] = {"kind": "har", "file": Path(self.filename).name}
        if self.creator:
            source["creator"] = self.creator
        for key in ("channel_id", "started"):
            if key in t.source:
                source[key] = t.source[key]
        if self.notes:
            source["notes"] = list(self.notes)
        return source


def _flow(c: HarConnection) -> Any:
    """A mitmproxy flow of a WebSocket connection as the recorder sees it in ``websocket_start``."""
    from mitmproxy import connection, http, websocket

    client = connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0), timestamp_start=c.started)
    server = connection.Server(address=None)
    flow = http.HTTPFlow(client, server)
    url = c.url
    if url.startswith("ws://"):
        url = "http://" + url[len("ws://"):]
    elif url.startswith("wss://"):
        url = "https://" + url[len("wss://"):]
    flow.request = http.Request.make("GET", url, headers=c.headers)
    flow.request.timestamp_start = flow.request.timestamp_end = c.started
    flow.response = http.Response.make(101)
    flow.response.timestamp_start = flow.response.timestamp_end = c.opened
    flow.websocket = websocket.WebSocketData()
    close = c.close or {}
    code = close.get("code")
    flow.websocket.close_code = code if isinstance(code, int) and not isinstance(code, bool) else None
    by = close.get("closed_by")
    flow.websocket.closed_by_client = None if by not in ("client", "node") else by == "client"
    reason = close.get("reason")
    flow.websocket.close_reason = reason if isinstance(reason, str) else None
    flow.websocket.timestamp_end = c.ended
    return flow
