"""Compare two transcripts of the same flow, connection by connection.

Connections are matched by role and by their order among that role's connections (the initiator's
first connection with the initiator's first connection, ...). Within a connection the events must
match in order; how the two participants' events interleave may differ (the node sends to both at
once, and a proxy sees the two connections independently).

What is ignored is what :mod:`chanlog.volatile` calls volatile: JSON-RPC ``id`` values, ``fsm_id``,
signatures of ``signed_tx`` blobs, times, the node's address and ``host``/``existing_fsm_id`` in the
open URLs, and where a pong falls among the node's frames (:func:`chanlog.volatile.pong_order`: each
pong is compared right after its ping). Besides, JSON frames are compared as parsed data (the text layout
of a log's pretty JSON and a node's compact JSON do not matter), ``note`` events (log sentences, not
traffic) are skipped, a close code or side is compared only when both transcripts know it, a connection
one transcript shows closed while the other ends with it still open is not a difference (logs are often
cut short), and neither is a connection one transcript shows opening while the other starts in the
middle of it (a log that begins mid-connection has no open entry; a player or recorder must open it).
"""

from __future__ import annotations

import base64
import difflib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from chanlog.model import Close, Event, Frame, Open, Transcript
from chanlog.volatile import is_ping, is_pong, normalize, normalize_url, pong_order

#: Lines of unchanged context shown around each difference.
CONTEXT = 2


@dataclass
class ConnView:
    """One connection of a transcript as the diff sees it."""

    role: str
    """``initiator`` or ``responder``."""
    index: int
    """Its order among the role's connections, from 1."""
    conn: int
    """Its connection number in the transcript."""
    items: list[tuple[str, str]] = field(default_factory=list)
    """``(label, comparable line)`` per frame, in the order compared: the label names the frame
    (``frame 12``)."""
    parsed: list[tuple[str, object]] = field(default_factory=list)
    """``(sender, parsed JSON or None)`` per frame, in recorded order (for :func:`pong_order`)."""
    open: tuple[str, str] | None = None
    """``("open", comparable line)`` of its open event, if the transcript has one."""
    close: Close | None = None
    """Its close event, if the transcript has one."""


def frame_line(frame: Frame) -> str:
    """The comparable text of a frame: sender, injected flag and content with volatile values masked
    (JSON as sorted compact JSON, other text verbatim, binary as base64)."""
    who = frame.sender + (" (injected)" if frame.injected else "")
    if frame.binary is not None:
        return f"{who} binary {base64.b64encode(frame.binary).decode('ascii')}"
    if frame.text is not None:
        return f"{who} text {frame.text!r}"
    body = json.dumps(normalize(frame.data), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return f"{who} {body}"


def open_line(event: Open) -> str:
    """The comparable text of an open: the URL's path and sorted query without volatile parameters."""
    path, query = normalize_url(event.url)
    return "open " + path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")


def close_line(event: Close, other: Close | None) -> str:
    """The comparable text of a close: code and side, each only when ``other`` knows it too."""
    parts = ["close"]
    if event.code is not None and other is not None and other.code is not None:
        parts.append(f"code {event.code}")
    if event.closed_by is not None and other is not None and other.closed_by is not None:
        parts.append(f"by {event.closed_by}")
    return " ".join(parts)


def connection_views(transcript: Transcript) -> dict[tuple[str, int], ConnView]:
    """Every connection keyed by ``(role, index among the role's connections from 1)``."""
    views: dict[tuple[str, int], ConnView] = {}
    by_conn: dict[int, ConnView] = {}
    counts: dict[str, int] = {}
    frame_numbers = {id(f): n for n, f in transcript.frames()}
    for event in transcript.events:
        view = by_conn.get(event.conn)
        if view is None:
            counts[event.role] = counts.get(event.role, 0) + 1
            view = ConnView(event.role, counts[event.role], event.conn)
            by_conn[event.conn] = view
            views[(event.role, view.index)] = view
        _add(view, event, frame_numbers)
    for view in views.values():
        view.items = [view.items[i] for i in pong_order(view.parsed)]
    return views


def _add(view: ConnView, event: Event, frame_numbers: dict[int, int]) -> None:
    if isinstance(event, Open):
        view.open = ("open", open_line(event))
    elif isinstance(event, Frame):
        view.items.append((f"frame {frame_numbers[id(event)]}", frame_line(event)))
        view.parsed.append((event.sender, event.data))
    elif isinstance(event, Close):
        view.close = event


def diff_transcripts(a: Transcript, b: Transcript, a_name: str = "A", b_name: str = "B",
                     context: int = CONTEXT) -> list[str]:
    """What differs between ``a`` and ``b`` as printable lines; an empty list when they are equal.

    For each connection with differences: a heading naming role, order and connection numbers, then
    difflib hunks (``-`` only in ``a``, ``+`` only in ``b``, `` `` the same) whose lines name the
    frame numbers in each transcript.
    """
    out: list[str] = []
    if a.protocol != b.protocol:
        out.append(f"protocol: {a_name} {a.protocol}, {b_name} {b.protocol}")
    va, vb = connection_views(a), connection_views(b)
    for key in sorted(set(va) | set(vb), key=lambda k: (k[0], k[1])):
        out.extend(_diff_connection(key, va.get(key), vb.get(key), a_name, b_name, context))
    return out


def _with_close(view: ConnView | None, other: ConnView | None) -> list[tuple[str, str]]:
    if view is None:
        return []
    items = list(view.items)
    if view.open is not None and (other is None or other.open is not None):
        items.insert(0, view.open)
    if view.close is not None and (other is None or other.close is not None):
        items.append(("close", close_line(view.close, other.close if other else None)))
    return items


def _diff_connection(key: tuple[str, int], ca: ConnView | None, cb: ConnView | None, a_name: str,
                     b_name: str, context: int) -> Iterator[str]:
    role, index = key
    ia, ib = _with_close(ca, cb), _with_close(cb, ca)
    la, lb = [line for _, line in ia], [line for _, line in ib]
    if la == lb:
        return
    where_a = f"{a_name} conn {ca.conn}" if ca else f"not in {a_name}"
    where_b = f"{b_name} conn {cb.conn}" if cb else f"not in {b_name}"
    yield f"{role} connection {index} ({where_a}, {where_b}):"
    matcher = difflib.SequenceMatcher(a=la, b=lb, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        yield (f"@@ {a_name} {_span(ia, group[0][1], group[-1][2])} "
               f"{b_name} {_span(ib, group[0][3], group[-1][4])} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                for (label, line), (label_b, _) in zip(ia[i1:i2], ib[j1:j2], strict=True):
                    yield f"  [{label} | {label_b}] {line}"
                continue
            for label, line in ia[i1:i2]:
                yield f"- [{a_name} {label}] {line}"
            for label, line in ib[j1:j2]:
                yield f"+ [{b_name} {label}] {line}"


def _span(items: list[tuple[str, str]], start: int, end: int) -> str:
    if start >= end:
        return f"(nothing, before item {start + 1})"
    first, last = items[start][0], items[end - 1][0]
    return first if start == end - 1 else f"{first} .. {last}"


# -- streaming (issue 17, "Inputs of any size") -----------------------------------------------------

#: Characters of comparable lines inserted into the spool per batch (a batch is held in memory).
_BATCH_CHARS = 1 << 18


@dataclass
class StreamSummary:
    """What :func:`diff_streams` saw of transcript A, for the "equal" line."""

    connections: int = 0
    frames: int = 0


def diff_streams(a: Any, b: Any, a_name: str = "A", b_name: str = "B", context: int = CONTEXT,
                 summary: StreamSummary | None = None, progress: Any = None) -> Iterator[str]:
    """:func:`diff_transcripts` of two :class:`~chanlog.transcript.StreamedTranscript`, in memory bounded by
    the largest connection rather than by the transcripts: each transcript is read once, event by event,
    into a temporary SQLite database (one row per frame: its comparable line); then the connections are
    compared one at a time, each loaded from the database, with difflib as before. Yields the same lines
    as :func:`diff_transcripts`. ``summary`` (if given) gets A's connection and frame counts; ``progress``
    (a tqdm-like bar) gets ``update(bytes)`` as the files are read. Raises
    :class:`~chanlog.errors.TranscriptError` naming ``file:line`` of a bad event."""
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory(prefix="chanlog-diff-") as folder:
        db = sqlite3.connect(f"{folder}/spool.sqlite")
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("CREATE TABLE conns (side INTEGER, role TEXT, idx INTEGER, conn INTEGER, open TEXT,"
                       " code INTEGER, closed_by TEXT, has_close INTEGER, PRIMARY KEY (side, role, idx))")
            db.execute("CREATE TABLE items (side INTEGER, conn INTEGER, seq INTEGER, label TEXT, line TEXT,"
                       " PRIMARY KEY (side, conn, seq)) WITHOUT ROWID")
            counts = [_spool(db, 0, a, progress), _spool(db, 1, b, progress)]
            if summary is not None:
                summary.connections, summary.frames = counts[0]
            if a.head.protocol != b.head.protocol:
                yield f"protocol: {a_name} {a.head.protocol}, {b_name} {b.head.protocol}"
            keys = [tuple(row) for row in db.execute("SELECT DISTINCT role, idx FROM conns ORDER BY role, idx")]
            for key in keys:
                ma, mb = _meta(db, 0, key), _meta(db, 1, key)
                if ma is not None and mb is not None and _same(db, ma, mb):
                    continue  # the usual case, compared without loading the connection
                va, vb = _view(db, 0, key, ma), _view(db, 1, key, mb)
                yield from _diff_connection(key, va, vb, a_name, b_name, context)  # type: ignore[arg-type]
        finally:
            db.close()


def _spool(db: Any, side: int, streamed: Any, progress: Any) -> tuple[int, int]:
    conns: dict[int, list[Any]] = {}
    seqs: dict[int, int] = {}
    waiting: dict[int, list[int]] = {}  # per connection: comparison groups of pings not yet answered
    counts: dict[str, int] = {}
    rows: list[tuple[Any, ...]] = []
    frames = 0
    read = 0
    batch = 0
    for event in streamed.events():
        meta = conns.get(event.conn)
        if meta is None:
            counts[event.role] = counts.get(event.role, 0) + 1
            meta = conns[event.conn] = [side, event.role, counts[event.role], event.conn, None, None, None, 0]
        if isinstance(event, Open):
            meta[4] = open_line(event)
        elif isinstance(event, Frame):
            frames += 1
            # the comparison order of pong_order, as a key: frame n opens group n (rank 2n); a pong is
            # ranked right after the oldest unanswered ping of its connection (2g + 1)
            group = seqs.get(event.conn, 0)
            pings = waiting.setdefault(event.conn, [])
            if event.sender == "node" and pings and is_pong(event.data):
                rank = 2 * pings.pop(0) + 1
            else:
                seqs[event.conn] = group + 1
                rank = 2 * group
                if event.sender == "client" and is_ping(event.data):
                    pings.append(group)
            line = frame_line(event)
            rows.append((side, event.conn, rank, f"frame {frames}", line))
            batch += len(line)
            if batch >= _BATCH_CHARS:
                batch = 0
                db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", rows)
                rows.clear()
                if progress is not None:
                    now = streamed.position()
                    progress.update(now - read)
                    read = now
        elif isinstance(event, Close):
            meta[5], meta[6], meta[7] = event.code, event.closed_by, 1
    db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?)", rows)
    db.executemany("INSERT INTO conns VALUES (?, ?, ?, ?, ?, ?, ?, ?)", conns.values())
    if progress is not None:
        progress.update(streamed.size - read)
    return len(conns), frames


def _meta(db: Any, side: int, key: tuple[str, int]) -> tuple[Any, ...] | None:
    return db.execute("SELECT conn, open, code, closed_by, has_close FROM conns WHERE side = ? AND role = ? "
                      "AND idx = ?", (side, *key)).fetchone()


def _same(db: Any, ma: tuple[Any, ...], mb: tuple[Any, ...]) -> bool:
    """Whether two connections compare equal (as :func:`_diff_connection` would find), reading their
    frames side by side from the spool."""
    (ca, oa, *close_a), (cb, ob, *close_b) = ma, mb
    if (oa is not None and ob is not None and oa != ob) or (close_a[2] and close_b[2] and close_line(
            Close(role="", conn=0, code=close_a[0], closed_by=close_a[1]),
            Close(role="", conn=0, code=close_b[0], closed_by=close_b[1])) != close_line(
            Close(role="", conn=0, code=close_b[0], closed_by=close_b[1]),
            Close(role="", conn=0, code=close_a[0], closed_by=close_a[1]))):
        return False
    query = "SELECT line FROM items WHERE side = ? AND conn = ? ORDER BY seq"
    left, right = db.cursor().execute(query, (0, ca)), db.cursor().execute(query, (1, cb))
    return all(row_a == row_b for row_a, row_b in itertools.zip_longest(left, right))


def _view(db: Any, side: int, key: tuple[str, int], meta: tuple[Any, ...] | None) -> ConnView | None:
    if meta is None:
        return None
    conn, opened, code, closed_by, has_close = meta
    view = ConnView(key[0], key[1], conn)
    view.open = ("open", opened) if opened is not None else None
    if has_close:
        view.close = Close(role=key[0], conn=conn, code=code, closed_by=closed_by)
    view.items = list(db.execute("SELECT label, line FROM items WHERE side = ? AND conn = ? ORDER BY seq",
                                 (side, conn)))
    return view
