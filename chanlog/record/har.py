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
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chanlog.model import Transcript
from chanlog.sources.har import BINARY, TEXT, HarConnection, HarError, HarImport, websocket_entries


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
    into :attr:`HarImport.notes`.
    """
    from chanlog.record.pairing import path_matches

    conns = list(websocket_entries(doc, filename))
    if not conns:
        raise HarError("no WebSocket entries (_webSocketMessages) in this HAR; record it with WebSockets "
                       "enabled (Chrome DevTools, Playwright, mitmproxy --set hardump=FILE)", filename)
    notes: list[str] = []
    on_path = [c for c in conns if path_matches(urlsplit(c.url).path, channel_path)]
    elsewhere = len(conns) - len(on_path)
    if elsewhere:
        paths = sorted({c.path for c in conns} - {c.path for c in on_path})
        notes.append(f"{elsewhere} WebSocket entries not on {channel_path} left out ({', '.join(paths[:5])})")
    usable = []
    for c in on_path:
        if c.role is None:
            notes.append(f"entries[{c.index}]: {c.url[:120]} has no role=initiator|responder; "
                         f"its {len(c.messages)} messages are not in any transcript")
        else:
            usable.append(c)
    if not usable:
        raise HarError(f"none of the {len(conns)} WebSocket entries is a channel connection on {channel_path} "
                       f"with role=initiator|responder"
                       + (f" ({'; '.join(notes)})" if notes else ""), filename)
    for c in usable:
        raw = doc["log"]["entries"][c.index].get("_webSocketMessages") or []
        for j, m in enumerate(raw):
            if m.get("opcode", TEXT) not in (TEXT, BINARY):
                notes.append(f"entries[{c.index}]._webSocketMessages[{j}]: opcode {m.get('opcode')!r} is not "
                             "text (1) or binary (2); recorded as a text frame")
            elif m.get("opcode") == BINARY and c.messages[j].is_text:
                notes.append(f"entries[{c.index}]._webSocketMessages[{j}]: binary data that is not base64; "
                             "recorded as a text frame")
            elif m.get("opcode") == BINARY:
                notes.append(f"entries[{c.index}]._webSocketMessages[{j}]: a binary frame (kept as binary)")
    transcripts = _record(usable, channel_path, headers)
    creator = doc["log"].get("creator")
    creator_name = " ".join(str(creator.get(k, "")) for k in ("name", "version")).strip() \
        if isinstance(creator, dict) else ""
    for t in transcripts:
        source: dict[str, Any] = {"kind": "har", "file": Path(filename).name}
        if creator_name:
            source["creator"] = creator_name
        for key in ("channel_id", "started"):
            if key in t.source:
                source[key] = t.source[key]
        if notes:
            source["notes"] = list(notes)
        t.source = source
    return HarImport(transcripts, notes)


def _record(conns: list[HarConnection], channel_path: str, headers: bool) -> list[Transcript]:
    """Replay the connections through a :class:`ChannelRecorder` writing into a temporary folder; the
    transcripts it wrote, in the order their sessions started."""
    from chanlog.record.addon import ChannelRecorder
    from chanlog.record.pairing import JOURNAL_DIR, JOURNAL_SUFFIX
    from chanlog.record.writer import load_journal

    with tempfile.TemporaryDirectory(prefix="chanlog-har-") as tmp:
        recorder = ChannelRecorder()
        recorder.directory = Path(tmp)
        recorder.channel_path = channel_path
        recorder.store_headers = headers
        flows = {c.index: _flow(c) for c in conns}
        for _, kind, index, item in heapq.merge(*(_timeline(c) for c in conns)):
            flow = flows[index]
            if kind == 0:
                recorder.websocket_start(flow)
            elif kind == 1:
                flow.websocket.messages.append(item)
                recorder.websocket_message(flow)
                del flow.websocket.messages[:-1]  # constant memory per connection
            else:
                recorder.websocket_end(flow)
        recorder.done()
        # the transcripts the recorder wrote, rebuilt from their journals (no YAML round trip)
        written = {p.stem for p in recorder.written if p.is_file()}
        out = [load_journal(recorder.directory / JOURNAL_DIR / f"{name}{JOURNAL_SUFFIX}")
               for name in _in_order(recorder.written, written)]
    return sorted(out, key=lambda t: (str(t.source.get("started", "")), t.name))


def _in_order(paths: list[Path], keep: set[str]) -> list[str]:
    """The stems of ``paths`` that are in ``keep``, each once, in order."""
    out: list[str] = []
    for p in paths:
        if p.stem in keep and p.stem not in out:
            out.append(p.stem)
    return out


def _timeline(c: HarConnection) -> Iterator[tuple[float, int, int, Any]]:
    """``(time, kind, entry, message)`` of one connection, in its own order: open (kind 0) at its start
    (:attr:`HarConnection.opened`), its messages (1), its close (2) no earlier than its last message."""
    from mitmproxy.websocket import WebSocketMessage
    from wsproto.frame_protocol import Opcode

    t = c.opened
    yield t, 0, c.index, None
    for m in c.messages:
        t = max(t, m.time)
        yield t, 1, c.index, WebSocketMessage(Opcode.TEXT if m.is_text else Opcode.BINARY, m.from_client,
                                              m.content, m.time)
    yield max(t, c.ended), 2, c.index, None


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
