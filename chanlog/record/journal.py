"""The recorder's journal: a crash-safe JSON Lines record of one session, written frame by frame.

The recorder (:mod:`chanlog.record.addon`) appends one record per line, copied into the file's page cache
through a mapped window (see "Mapped appends" below; with ``fsync`` one ``write`` system call per record)
before its hook returns, so that a proxy killed at any moment leaves every frame it forwarded on disk. Transcripts are built from journals by :mod:`chanlog.record.writer`.

Journal format 2, one record per line (``ts`` is a Unix time in seconds)::

    {"chanlog_journal": 2, "session": NAME, "transcript": "NAME.yaml", "started": ISO-8601, "t0": ts, ...}
    {"kind": "open",  "conn": 0, "role": "initiator", "ts": ..., "url": "ws://...", "headers": {...}}
    {"kind":"frame","conn":0,"role":"initiator","from":"node","ts":...,"n":7,"raw":MESSAGE}
    {"kind": "frame", "conn": 0, "role": "initiator", "from": "node", "ts": ..., "text": "..."}
    {"kind": "frame", ..., "binary": "<base64>", "injected": true}
    {"kind": "close", "conn": 0, "role": "initiator", "ts": ..., "code": 1000, "closed_by": "client"}
    {"kind": "gap", "error": "No space left on device", "ts": ..., "until": ..., "records": [FIRST_N, LAST_N],
     "frames": 1280, "bytes": 2621440, "lost": [{"conn": 0, "role": "initiator", "frames": [1201, 1840]}]}
    {"kind": "end", "ts": ...}
    {"kind": "merge", "session": OTHER, "journal": "OTHER.jsonl", "conn_offset": 2, "ts": ...}
    ... every open, frame, close and gap record of OTHER, ``conn`` plus ``conn_offset`` ...
    {"kind": "merge_end", "session": OTHER, "records": 12, "ts": ...}
    {"kind": "merged_into", "session": NAME, "journal": "NAME.jsonl", "transcript": "NAME.yaml", "ts": ...}

A frame's ``raw``, ``text`` or ``binary`` is the message exactly as on the wire; it becomes a
:class:`chanlog.model.Frame` only when the transcript is built. ``raw`` (format 2, what the recorder writes
for a text message without a newline character, nearly every frame) is the message's UTF-8 text itself,
not a JSON string: the line is the fixed prefix above (compact, keys in that order, ``n`` and
``"injected":true`` optional), the message's bytes, and ``}``. Nothing is escaped on the recorder's hot
path; the line is JSON exactly when the message is, and readers never parse it as a whole: they take the
message from between the prefix and the final ``}`` (:func:`raw_frame_record`). A ``raw`` line without its
newline is the cut-off last line of a killed proxy, whatever it ends with. Format 1 journals (no ``raw``)
are read as well. The ``end`` record is written once the
transcript file is complete; a journal whose last record is not ``end`` is *unfinished* (the proxy died, or
the session is still running). A session that is continued later (reestablish) appends after its ``end``
record and is unfinished again until its next ``end``.

Mapped appends (:data:`MAP_CHUNK`, the default without ``fsync``): the writer reserves the next window of
the file (``posix_fallocate``, which extends it) and maps it (``MAP_SHARED``); a record is copied into the
mapping, that is into the kernel's page cache, with no system call: a proxy killed at any moment leaves it
in the file all the same. Closing the file cuts it back to its records. A journal left by a killed proxy
ends in the rest of its last window, zero bytes: readers take a run of zero bytes at the end (no newline) as
the end of the journal, and a record cut off by the kill followed by zeros as the cut-off last line.

Write errors (disk full, quota, I/O error): a record that cannot be written whole is cut off again (the file
is truncated back to its last complete line), and the writer stops writing frames. While it cannot write it
counts what it loses (frames per connection, by their number on that connection from 1, and the recorder's
record numbers ``n``) and keeps open and close records in memory (at most :data:`MAX_PENDING`); it tries
again at most every :data:`RETRY_SECONDS`. The first record that can be written again is preceded by one
``gap`` record saying exactly what was lost, and by the open and close records kept. ``lost[].frames`` are
the first and last lost frame numbers of that connection (both directions counted together, from 1).

Open, frame and close records carry ``n``, a sequence number the recorder counts over all sessions of
one proxy run, so that records of two sessions can be put back in the order the proxy saw them.

Merging (two sessions that turn out to carry the same ``channel_id``): the surviving journal gets a
``merge`` record, a copy of the absorbed journal's records (connection numbers shifted past its own) and a
``merge_end`` record; only then the absorbed journal gets its last record, ``merged_into``,
naming the survivor. A proxy killed in between leaves a block without ``merge_end``, which readers ignore
(the absorbed journal still holds every record); a journal ending in ``merged_into`` is finished and its
records live on in the survivor. Readers put a journal's records in ``n`` order: each merged block and
each run of records between blocks is in ``n`` order, and they are merged in constant memory
(:func:`ordered_records`). Connections are numbered in the transcript in the order they appear there.

Untrusted input: a journal may be left by anyone. A line that is not a JSON object, or nests deeper than
Python can parse, is a :class:`JournalError` naming ``file:line``.
"""

from __future__ import annotations

import base64
import errno
import heapq
import json
import mmap
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chanlog import __version__

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks (and no mapped appends' risk to guard)
    fcntl = None  # type: ignore[assignment]
from chanlog.errors import ChanlogError

# MAX_JSON_DEPTH: deepest nesting of a frame's JSON that the transcript keeps parsed (the transcript loader's
# limit); a deeper frame is kept verbatim as text (nothing is lost, and every reader stays within it).
from chanlog.model import MAX_JSON_DEPTH, PROTOCOLS, Frame, json_depth, parse_json
from chanlog.record.pairing import JOURNAL_DIR, JOURNAL_SUFFIX, transcript_file_name

__all__ = ["JOURNAL_DIR", "JOURNAL_SUFFIX", "JOURNAL_FORMAT", "EVENT_KINDS", "JournalError", "JournalWriter",
           "Gap", "JournalInfo", "iter_records", "scan", "ordered_records", "journal_paths", "find_unfinished",
           "frame_from_text", "raw_frame_record", "zero_tail", "live_holder", "MAX_JSON_DEPTH"]

#: The journal format version written in the header record (``chanlog_journal``); readers take 1 and 2.
JOURNAL_FORMAT = 2
#: Record kinds that hold the session's events (the others are markers).
EVENT_KINDS = ("open", "frame", "close")
#: Marker kinds readers skip when they stream events (``gap`` is placed by :mod:`chanlog.record.writer`).
MARKER_KINDS = ("end", "truncated", "merge", "merge_end", "merged_into")
#: Seconds between two attempts to write again after a write error.
RETRY_SECONDS = 1.0
#: Open and close records kept in memory while the journal cannot be written (more are counted as lost).
MAX_PENDING = 10_000
#: Bytes of the journal reserved (``posix_fallocate``) and mapped at a time for mapped appends
#: (:class:`JournalWriter`); 0: every record written with ``write`` instead.
MAP_CHUNK = 256 * 1024
#: ``madvise`` advice that faults a new window's pages in at once (Linux 5.14+; refused quietly elsewhere).
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if os.uname().sysname == "Linux" else None)


class JournalError(ChanlogError):
    """A journal cannot be read: missing file, a line that is not a JSON record, an unknown record."""


_escape = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]  # the C string escaper of json
#: The bytes ``_escape`` keeps as they are but ``"`` and ``\\`` (printable ASCII).
_PRINTABLE = bytes(range(0x20, 0x7F))


def text_field(content: bytes) -> bytes | None:
    """``"text":`` and the JSON string (ASCII escapes) of a text message's UTF-8 ``content``, as
    ``json.dumps`` writes it; ``None`` when ``content`` is not UTF-8. Printable ASCII (most frames) only
    needs ``\\`` and ``"`` escaped: done with two byte replaces instead of decoding, escaping, encoding."""
    if content.isascii() and not content.translate(None, _PRINTABLE):
        return b'"text":"' + content.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    try:
        return b'"text":' + _escape(content.decode("utf-8")).encode("ascii")
    except UnicodeDecodeError:
        return None


def _dumps(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- writing ------------------------------------------------------------------------------------


@dataclass
class Gap:
    """What a journal lost while it could not be written (becomes one ``gap`` record)."""

    error: str
    """The write error (``No space left on device``)."""
    ts: float
    """Time of the first record lost (Unix seconds)."""
    until: float = 0.0
    """Time of the last record lost."""
    first_n: int | None = None
    """The recorder's number ``n`` of the first record lost (``None``: records without ``n``)."""
    last_n: int | None = None
    """The number ``n`` of the last record lost."""
    frames: int = 0
    """Frames lost."""
    bytes: int = 0
    """Bytes of the lost frames' content."""
    opens: int = 0
    """Open records lost (beyond :data:`MAX_PENDING` kept)."""
    closes: int = 0
    """Close records lost."""
    lost: dict[int, list[Any]] = field(default_factory=dict)
    """Per connection number: ``[role, first frame number, last frame number]`` of the frames lost."""
    attempts: int = 1
    """Write attempts that failed."""

    def note(self, n: int | None, ts: float) -> None:
        if n is not None:
            self.first_n = n if self.first_n is None else self.first_n
            self.last_n = n
        self.until = ts

    def record(self) -> dict[str, Any]:
        """The ``gap`` record (module docstring)."""
        rec: dict[str, Any] = {"kind": "gap", "error": self.error, "ts": self.ts, "until": self.until}
        if self.first_n is not None:
            rec["records"] = [self.first_n, self.last_n]
        rec["frames"] = self.frames
        rec["bytes"] = self.bytes
        if self.opens:
            rec["opens"] = self.opens
        if self.closes:
            rec["closes"] = self.closes
        rec["lost"] = [{"conn": c, "role": r, "frames": [a, b]} for c, (r, a, b) in sorted(self.lost.items())]
        return rec

    def describe(self) -> str:
        """One line: what was lost from which frame on."""
        parts = [f"{role} conn {conn} frames {a}-{b}" for conn, (role, a, b) in sorted(self.lost.items())]
        extra = (f", {self.opens} opens" if self.opens else "") + (f", {self.closes} closes" if self.closes else "")
        return (f"{self.frames} frames ({self.bytes} bytes{extra}) lost"
                + (f": {'; '.join(parts)}" if parts else ""))


class JournalWriter:
    """Appends records to one journal file, each written whole (one ``write``) before returning.

    Write errors never propagate from the record methods and are never silent: the writer keeps a
    :class:`Gap`, calls ``on_error(self, gap)`` once when it starts losing records and ``on_resume(self, gap)``
    once it writes again (after the ``gap`` record), and tries again at most every :data:`RETRY_SECONDS`.

    Thread-safe: every write holds :attr:`lock`, so a background transcript writer can check
    :attr:`size` and append the ``end`` record without racing the proxy's hooks.
    """

    def __init__(self, path: Path, *, fsync: bool = False, window: int | None = None,
                 on_error: Callable[[JournalWriter, Gap], None] | None = None,
                 on_resume: Callable[[JournalWriter, Gap], None] | None = None) -> None:
        self.path = path
        self.window = MAP_CHUNK if window is None else window
        """Bytes reserved and mapped at a time for mapped appends (module docstring; default
        :data:`MAP_CHUNK`); 0, or ``fsync``: every record written with ``write``."""
        """The journal file."""
        self.fsync = fsync
        """Also ``os.fsync`` after every record (survives a power cut, not only a killed process)."""
        self.lock = threading.Lock()
        """Held while a record is written, the file reopened or closed."""
        self.size = 0
        """Bytes in the file (after the last complete record)."""
        self.gap: Gap | None = None
        """What is being lost now, while the journal cannot be written; ``None`` when writing works."""
        self.gaps = 0
        """Gaps recorded so far (each a ``gap`` record)."""
        self.on_error = on_error
        self.on_resume = on_resume
        self._pending: list[bytes] = []
        self._prefixes: dict[tuple[int, str, str], tuple[bytes, bool]] = {}
        self._head: bytes = b""
        self._retry_at = 0.0
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._map_start = 0
        self._map_end = 0
        self._mapped = False

    #: The system call that writes (a test can swap in one that fails, to simulate a full disk).
    os_write: Callable[[int, Any], int] = staticmethod(os.write)
    #: The system call that reserves a window for mapped appends (a test can swap in one that fails).
    os_fallocate: Callable[[int, int, int], None] | None = staticmethod(
        os.posix_fallocate) if hasattr(os, "posix_fallocate") else None  # (not on macOS: no mapped appends)

    @property
    def closed(self) -> bool:
        """True when the file is not open for appending."""
        return self._fd is None

    @property
    def failing(self) -> bool:
        """True while records are being lost (a write failed and none succeeded since)."""
        return self.gap is not None

    def open(self) -> None:
        """Open (create or append to) the file. Raises ``OSError``."""
        with self.lock:
            self._open()

    def _open(self) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._mapped = self.window > 0 and not self.fsync and self.os_fallocate is not None
            flags = os.O_RDWR | os.O_CREAT | (0 if self._mapped else os.O_APPEND)  # read: where its records end
            fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:  # one writer per journal: another (chanlog recover --finish) must not cut a mapped window short
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    raise OSError(exc.errno, "the journal is open for writing elsewhere (a running recorder?)",
                                  str(self.path)) from None
                raise
            self._fd = fd
            self.size = _records_end(self._fd)
            if self.size != os.fstat(self._fd).st_size:
                os.ftruncate(self._fd, self.size)  # the zero bytes a killed proxy left after its records

    def _unmap(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
            self._map_start = self._map_end = 0

    def _cut(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (its records), unmapped first. Raises ``OSError``."""
        self._unmap()
        assert self._fd is not None
        os.ftruncate(self._fd, size)
        self.size = size

    def _window(self, length: int) -> mmap.mmap:
        """Reserve and map the file from the page holding :attr:`size` on, at least ``length`` bytes past
        :attr:`size` (:attr:`window` or more). Raises ``OSError`` (ENOSPC when the space is not there:
        the file is then cut back to its records)."""
        fd = self._fd
        assert fd is not None
        self._unmap()
        start = self.size - self.size % mmap.ALLOCATIONGRANULARITY
        need = self.size - start + length
        span = max(self.window, -(-need // mmap.ALLOCATIONGRANULARITY) * mmap.ALLOCATIONGRANULARITY)
        reserve = self.os_fallocate
        assert reserve is not None
        try:
            try:
                reserve(fd, start, span)
            except OSError as exc:
                if exc.errno != errno.ENOSPC or span == need:
                    raise
                span = need  # a nearly full disk: only what this record needs
                reserve(fd, start, span)
            window = mmap.mmap(fd, span, offset=start)
        except OSError:
            try:
                os.ftruncate(fd, self.size)  # whatever the reservation extended
            except OSError:
                pass
            raise
        if _MADV_POPULATE_WRITE is not None and span > need:
            try:
                window.madvise(_MADV_POPULATE_WRITE)
            except (OSError, ValueError):
                pass
        self._map, self._map_start, self._map_end = window, start, start + span
        return window

    def _raw(self, data: bytes) -> None:
        """Write ``data`` whole or not at all: a short write is cut off again. Raises ``OSError``."""
        if self._fd is None:
            self._open()
        fd = self._fd
        assert fd is not None
        if self._mapped:
            end = self.size + len(data)
            window = self._map if end <= self._map_end else self._window(len(data))
            assert window is not None
            window[self.size - self._map_start:end - self._map_start] = data
            self.size = end
            return
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                written = self.os_write(fd, view[done:])
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += written
            if self.fsync:
                os.fsync(fd)
        except OSError:
            if done:
                try:
                    os.ftruncate(fd, self.size)
                except OSError:
                    pass
            raise
        self.size += done

    def _write(self, line: bytes) -> None:
        """Append one line (without its newline), raising ``OSError``; while failing, the ``gap`` record and
        the kept records go first."""
        if self.gap is not None:
            gap = self.gap
            self._raw(b"".join([self._head, _dumps(gap.record()) + b"\n", *self._pending, line, b"\n"]))
            self.gap, self._pending, self._head = None, [], b""
            self.gaps += 1
            if self.on_resume is not None:
                self.on_resume(self, gap)
            return
        self._raw(line + b"\n")

    def _put(self, line: bytes, *, n: int | None, ts: float, conn: int | None = None, role: str = "",
             frame: int = 0, size: int = 0, keep: bool = False, error: OSError | None = None) -> bool:
        """Write a record line, or account for it in the gap when it cannot be written (``keep``: an open
        or close record, kept for later; ``error``: the write was just tried and failed). True when written."""
        with self.lock:
            if self.gap is None or time.monotonic() >= self._retry_at:
                try:
                    if error is not None:
                        raise error
                    self._write(line)
                    return True
                except OSError as exc:
                    first = self.gap is None
                    if first:
                        self.gap = Gap(error=exc.strerror or str(exc), ts=ts)
                    else:
                        self.gap.attempts += 1
                    self._retry_at = time.monotonic() + RETRY_SECONDS
                    gap = self.gap
                    assert gap is not None
                    self._lose(gap, line, n, ts, conn, role, frame, size, keep)
                    if first and self.on_error is not None:
                        self.on_error(self, gap)
                    return False
            self._lose(self.gap, line, n, ts, conn, role, frame, size, keep)
            return False

    def _lose(self, gap: Gap, line: bytes, n: int | None, ts: float, conn: int | None, role: str, frame: int,
              size: int, keep: bool) -> None:
        if line.startswith(b'{"chanlog_journal"'):
            self._head = line + b"\n"  # the header: first line whenever the file can be written
            return
        if keep and len(self._pending) < MAX_PENDING:
            self._pending.append(line + b"\n")
            return
        gap.note(n, ts)
        if keep:
            if b'"kind":"open"' in line:
                gap.opens += 1
            else:
                gap.closes += 1
            return
        gap.frames += 1
        gap.bytes += size
        if conn is not None:
            seen = gap.lost.get(conn)
            if seen is None:
                gap.lost[conn] = [role, frame, frame]
            else:
                seen[2] = frame

    def write(self, record: dict[str, Any]) -> None:
        """Append one marker record (header, end...) as a JSON line. Raises ``OSError`` (markers are not
        counted in a gap: the caller decides)."""
        with self.lock:
            self._write(_dumps(record))

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self.lock:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            try:
                if self._mapped:
                    self._cut(self.size)  # the reserved rest of the last window
            except OSError:
                pass  # the zeros stay after the records, where readers skip them
            finally:
                self._unmap()
                os.close(self._fd)
                self._fd = None

    def flush_gap(self) -> bool:
        """Try to write the ``gap`` record (and the kept records) now, without a new record; True when no
        gap remains. Used when a session ends while its journal was failing."""
        with self.lock:
            if self.gap is None:
                return True
            gap = self.gap
            try:
                self._raw(b"".join([self._head, _dumps(gap.record()) + b"\n", *self._pending]))
            except OSError:
                self._retry_at = time.monotonic() + RETRY_SECONDS
                return False
            self.gap, self._pending, self._head = None, [], b""
            self.gaps += 1
            if self.on_resume is not None:
                self.on_resume(self, gap)
            return True

    def finish_if_unchanged(self, size: int, ts: float) -> bool:
        """Append the ``end`` record and close the file, but only when nothing was appended since
        the journal had ``size`` bytes (else the session went on and a later finish will end it) and no
        gap is pending. Raises ``OSError`` when the record cannot be written."""
        with self.lock:
            if self.size != size or self.gap is not None:
                return False
            self._write(_dumps({"kind": "end", "ts": ts}))
            self._close()
            return True

    # record helpers: one per kind, shapes as in the module docstring

    def header(self, session: str, transcript: str, started: str, t0: float, **extra: Any) -> bool:
        """Write the header record (first line); when it cannot be written now, it is kept and written
        first once the file can be written (False)."""
        rec = {"chanlog_journal": JOURNAL_FORMAT, "session": session, "transcript": transcript,
               "started": started, "t0": t0, "recorder": f"chanlog {__version__}", **extra}
        return self._put(_dumps(rec), n=None, ts=t0, keep=True)

    def open_record(self, conn: int, role: str, ts: float, url: str,
                    headers: dict[str, str] | None = None, n: int | None = None) -> bool:
        """Record that connection ``conn`` of ``role`` opened ``url`` (``n``: the recorder's sequence
        number of the record). False when it could not be written now (kept for the next write)."""
        rec: dict[str, Any] = {"kind": "open", "conn": conn, "role": role, "ts": ts, "url": url}
        if n is not None:
            rec["n"] = n
        if headers:
            rec["headers"] = headers
        return self._put(_dumps(rec), n=n, ts=ts, keep=True)

    def frame_record(self, conn: int, role: str, sender: str, ts: float, content: bytes, is_text: bool,
                     injected: bool = False, n: int | None = None, number: int = 0) -> bool:
        """Record one message exactly as on the wire: a text message without a newline as ``raw`` (its bytes
        as they are, module docstring), another text message as ``text`` (a JSON string), a binary message
        (or text that is not UTF-8) as ``binary`` (base64). ``number``: the frame's number on its connection
        (from 1), for the gap record should it be lost. False when lost.

        The hot path of the recorder: the line is put together in one formatting (``role`` and ``sender``
        are fixed words), the message neither scanned nor escaped but for one search for a newline, and
        written with one ``write``.
        """
        key = (conn, role, sender)
        known = self._prefixes.get(key)
        if known is None:
            line = (f'{{"kind":"frame","conn":{int(conn)},"role":{json.dumps(role)},"from":{json.dumps(sender)},'
                    f'"ts":').encode("ascii")
            known = self._prefixes[key] = (line, _RAW_LINE.match(line + b'1.0,"raw":') is not None)
        prefix, raw_ok = known
        extra = b"" if n is None else b',"n":%d' % n
        if injected:
            extra += b',"injected":true'
        if raw_ok and is_text and b"\n" not in content:
            data = b'%s%r%s,"raw":%s}\n' % (prefix, float(ts), extra, content)
        else:
            body = text_field(content) if is_text else None
            if body is None:
                body = b'"binary":"' + base64.b64encode(content) + b'"'
            data = b'%s%r%s,%s}\n' % (prefix, float(ts), extra, body)
        error = None
        if self.gap is None and not self.fsync and self._fd is not None:  # the common case, inline
            with self.lock:
                if self.gap is None and self._mapped:  # one copy into the page cache
                    end = self.size + len(data)
                    window = self._map
                    if end <= self._map_end and window is not None:
                        window[self.size - self._map_start:end - self._map_start] = data
                        self.size = end
                        return True
                elif self.gap is None and self._fd is not None:
                    try:
                        written = self.os_write(self._fd, data)
                    except OSError as exc:
                        written, error = 0, exc
                    if written == len(data):
                        self.size += written
                        return True
                    if written > 0:  # a short write: cut it off again, then the careful path
                        try:
                            os.ftruncate(self._fd, self.size)
                        except OSError:
                            pass
        return self._put(data[:-1], n=n, ts=ts, conn=conn, role=role, frame=number, size=len(content),
                         error=error)

    def close_record(self, conn: int, role: str, ts: float, code: int | None, closed_by: str | None,
                     reason: str | None, n: int | None = None) -> bool:
        """Record that connection ``conn`` closed (WebSocket close code, ``client``/``node``). False when it
        could not be written now (kept for the next write)."""
        rec: dict[str, Any] = {"kind": "close", "conn": conn, "role": role, "ts": ts}
        if n is not None:
            rec["n"] = n
        if code is not None:
            rec["code"] = code
        if closed_by is not None:
            rec["closed_by"] = closed_by
        if reason:
            rec["reason"] = reason
        return self._put(_dumps(rec), n=n, ts=ts, keep=True)

    def absorb(self, other: Path, session: str, conn_offset: int, ts: float) -> int:
        """Copy every open, frame, close and gap record of the journal ``other`` (session ``session``) into
        this one, in ``n`` order, between a ``merge`` and a ``merge_end`` record, connection numbers
        plus ``conn_offset``; written in pieces, the block complete only with its ``merge_end``. Returns the
        records copied. Raises :class:`JournalError` when ``other`` cannot be read, ``OSError`` when this
        cannot be written (the file is then cut back to where it was)."""
        info = scan(other)
        count = 0
        with self.lock:
            start = self.size
            try:
                if self.gap is not None:
                    self._write(b"")  # the gap record first (its empty line is skipped by readers)
                    start = self.size
                buf: list[bytes] = [_dumps({"kind": "merge", "session": session, "journal": other.name,
                                            "conn_offset": conn_offset, "ts": ts}) + b"\n"]
                held = 0
                for _, rec in ordered_records(other, info=info, gaps=True):
                    if rec.get("kind") == "gap":
                        rec = {**rec, "lost": [{**x, "conn": int(x["conn"]) + conn_offset}
                                               for x in rec.get("lost") or [] if isinstance(x, dict)]}
                    else:
                        rec = {**rec, "conn": int(rec["conn"]) + conn_offset}
                    line = _dumps(rec) + b"\n"
                    buf.append(line)
                    held += len(line)
                    count += 1
                    if held > 1 << 20:
                        self._raw(b"".join(buf))
                        buf, held = [], 0
                buf.append(_dumps({"kind": "merge_end", "session": session, "records": count, "ts": ts}) + b"\n")
                self._raw(b"".join(buf))
            except OSError:
                if self._fd is not None and self.size != start:
                    try:
                        self._cut(start)
                    except OSError:
                        pass
                raise
        return count

    def mark_merged(self, session: str, journal: str, transcript: str, ts: float) -> None:
        """Write the last record, ``merged_into`` (the session, journal file and transcript file that now
        hold this journal's records), and close the file. Raises ``OSError``."""
        with self.lock:
            rec = {"kind": "merged_into", "session": session, "journal": journal, "transcript": transcript,
                   "ts": ts}
            self._write(_dumps(rec))
            self._close()


# -- reading ------------------------------------------------------------------------------------


@dataclass
class JournalInfo:
    """What a scan of a journal found (:func:`scan`)."""

    path: Path
    """The journal file."""
    header: dict[str, Any]
    """The header record."""
    protocol: str = "json-rpc"
    """``json-rpc`` or ``legacy``: the first open URL's ``protocol`` parameter, else guessed from frames."""
    connections: int = 0
    """Connections opened."""
    frames: int = 0
    """Frames recorded."""
    closes: int = 0
    """Connections whose close was recorded."""
    finished: bool = False
    """True when the last record is ``end`` (the transcript was written after it)."""
    truncated: int | None = None
    """The line number of an incomplete last line (the process died while writing it), if any."""
    channel_id: str | None = None
    """The first ``channel_id`` a node frame carried (or the reestablish URL's ``existing_channel_id``)."""
    last_ts: float | None = None
    """Time of the last record."""
    size: int = 0
    """Bytes read (the limit the scan was given, or the file size)."""
    roles: dict[int, str] = field(default_factory=dict)
    """Role of each connection number (as numbered in the journal)."""
    blocks: list[tuple[int, int]] = field(default_factory=list)
    """Line numbers (first, last) of the records of each complete merged block (``merge`` ... ``merge_end``)."""
    merged: list[str] = field(default_factory=list)
    """Sessions merged into this one (complete blocks)."""
    partial_merge: int | None = None
    """Line number of a ``merge`` record whose block has no ``merge_end`` (the proxy died while copying):
    the block is ignored, its records are still in the other journal."""
    header_line: int = 1
    """Line number of the header record."""
    merged_into: dict[str, Any] | None = None
    """The ``merged_into`` record when this session was merged into another (its records live on there)."""
    gaps: int = 0
    """``gap`` records: stretches the recorder could not write (module docstring)."""
    lost_frames: int = 0
    """Frames the gaps lost, in total."""
    numbered_in_order: bool = True
    """True when connections first appear in the order of their numbers (0, 1, 2...), as the recorder writes
    them: the transcript's numbering is then the journal's, and parts of the journal can be read apart."""

    @property
    def session(self) -> str:
        """The session name from the header."""
        return str(self.header.get("session") or self.path.stem)

    def sibling(self, name: str) -> Path:
        """A file named ``name`` (a journal or transcript named in a merge record) beside this journal's
        transcript or journal: ``DIR/journals/NAME.jsonl``, ``DIR/NAME.yaml``. Whatever the record says,
        the result is a plain file name in one of those two folders (never ``.``, ``..`` or a folder)."""
        from chanlog.record.pairing import safe_name

        name = Path(str(name)).name
        if name.endswith(JOURNAL_SUFFIX):
            return self.path.with_name(safe_name(name[:-len(JOURNAL_SUFFIX)]) + JOURNAL_SUFFIX)
        return self.default_output().with_name(transcript_file_name(name, Path(name).stem or "session"))

    def default_output(self) -> Path:
        """Where the recorder writes this journal's transcript: ``DIR/NAME.yaml`` for a journal in
        ``DIR/journals/``, else beside the journal. ``NAME.yaml`` is the header's ``transcript`` when that is
        a safe file name, else one made from the session name (:func:`transcript_file_name`)."""
        name = transcript_file_name(self.header.get("transcript"), self.session)
        if self.path.parent.name == JOURNAL_DIR:
            return self.path.parent.parent / name
        return self.path.with_name(name)


def zero_tail(line: bytes) -> bool:
    """True for a last "line" of zero bytes only: the rest of a killed proxy's mapped window after its records
    (module docstring), which readers take as the end of the journal."""
    return line[:1] == b"\0" and not line.rstrip(b"\0")


#: The start of a ``raw`` frame record line (format 2) as :meth:`JournalWriter.frame_record` writes it, up to
#: the message.
_RAW_LINE = re.compile(rb'\{"kind":"frame","conn":([0-9]{1,7}),"role":"(initiator|responder)","from":"(client|node)",'
                       rb'"ts":([0-9][0-9.e+-]{0,31})(?:,"n":([0-9]{1,19}))?(,"injected":true)?,"raw":')


def raw_frame_record(line: bytes) -> dict[str, Any] | None:
    """The record of a ``raw`` frame line (format 2, module docstring; ``line`` with its newline), as the
    same message written as ``text`` parses: ``{"kind": "frame", "conn", "role", "from", "ts", "n"?,
    "injected"?, "text"}`` (``binary``, base64, for a message that is not UTF-8); ``None`` for a line that
    does not start like one. Linear in the line's length: the message is sliced out, never parsed. Raises
    ``ValueError`` for a line that starts like one but has no newline (cut off) or does not end in ``}``, or
    whose ``ts`` is not a number."""
    m = _RAW_LINE.match(line)
    if m is None:
        return None
    if not line.endswith(b"}\n"):
        raise ValueError("a raw frame record cut off" if not line.endswith(b"\n") else
                         "a raw frame record that does not end in }")
    try:
        ts = float(m[4])
    except ValueError:
        raise ValueError(f"a raw frame record whose ts is not a number: {m[4].decode()!r}") from None
    rec: dict[str, Any] = {"kind": "frame", "conn": int(m[1]), "role": m[2].decode(), "from": m[3].decode(),
                           "ts": ts}
    if m[5] is not None:
        rec["n"] = int(m[5])
    if m[6] is not None:
        rec["injected"] = True
    message = line[m.end():-2]
    try:
        rec["text"] = message.decode("utf-8")
    except UnicodeDecodeError:
        rec["binary"] = base64.b64encode(message).decode("ascii")
    return rec


#: The start of a frame record line (format 1 ``text``) as :meth:`JournalWriter.frame_record` writes it, up
#: to its ``ts``.
_FRAME_LINE = re.compile(rb'\{"kind":"frame","conn":([0-9]{1,7}),"role":"(?:initiator|responder)",'
                         rb'"from":"(client|node)","ts":([0-9][0-9.e+-]*),')


def iter_records(path: Path, limit: int | None = None, first: int = 1,
                 last: int | None = None, frames: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number from 1, record)`` for each line of the journal, up to ``limit`` bytes (only lines
    ``first`` to ``last`` are parsed and yielded).

    An incomplete last line (no newline, not valid JSON: the writer was killed mid-write) is skipped;
    its number is then yielded as ``(lineno, {"kind": "truncated"})``. Zero bytes after the last line (the
    rest of a killed proxy's mapped window, module docstring) end the journal. Raises :class:`JournalError`
    naming ``path:line`` for an unreadable file or a bad line elsewhere (not JSON, not an object, nested
    deeper than Python can parse, a ``raw`` frame line that does not end in ``}``). A ``raw`` frame line
    (format 2) is read by :func:`raw_frame_record`, never parsed as JSON. ``frames=False``: a complete line that starts as the recorder writes
    frame records (:data:`_FRAME_LINE`) is not parsed (nor checked) but yielded as ``{"kind": "frame",
    "conn", "from", "ts", "line": the line's bytes}``, for a quick :func:`scan`.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise JournalError(f"cannot read: {exc.strerror}", str(path)) from None
    with fh:
        remaining = limit
        lineno = 0
        for raw in fh:
            if remaining is not None:
                if remaining <= 0:
                    break
                if len(raw) > remaining:
                    raw = raw[:remaining]
                remaining -= len(raw)
            lineno += 1
            if zero_tail(raw):
                return
            if lineno < first or not raw or raw.isspace():  # isspace: strip would copy the line
                continue
            if last is not None and lineno > last:
                break
            if raw.startswith(b'{"kind":"frame",'):
                try:
                    rec = raw_frame_record(raw)
                except ValueError as exc:
                    if not raw.endswith(b"\n"):
                        yield lineno, {"kind": "truncated"}
                        return
                    raise JournalError(str(exc), f"{path}:{lineno}") from None
                if rec is not None:
                    yield lineno, rec
                    continue
            if not frames and raw.endswith(b"}\n") and (m := _FRAME_LINE.match(raw)) is not None:
                try:
                    yield lineno, {"kind": "frame", "conn": int(m[1]), "from": m[2].decode(), "ts": float(m[3]),
                                   "line": raw}
                    continue
                except ValueError:  # not a number after all: parsed below
                    pass
            try:
                rec = parse_json(raw)  # bounded depth and numbers (issue 16)
            except RecursionError:
                raise JournalError("a record nested too deeply to parse (not written by chanlog)",
                                   f"{path}:{lineno}") from None
            except ValueError as exc:
                if not raw.endswith(b"\n"):
                    yield lineno, {"kind": "truncated"}
                    return
                raise JournalError(f"not a JSON record: {exc}", f"{path}:{lineno}") from None
            if not isinstance(rec, dict):
                raise JournalError("a journal record is a JSON object", f"{path}:{lineno}")
            yield lineno, rec


def frame_from_text(content: str | bytes, **kw: Any) -> Any:
    """:meth:`chanlog.model.Frame.from_wire`, except that JSON nested deeper than :data:`MAX_JSON_DEPTH`
    (or too deep for Python's parser) is kept verbatim as ``text``: nothing is lost, and what is written
    can be read back."""
    if isinstance(content, bytes):
        return Frame.from_wire(content, **kw)
    if content.count("[") + content.count("{") > MAX_JSON_DEPTH:
        try:
            frame = Frame.from_wire(content, **kw)
        except RecursionError:
            return Frame(text=content, **kw)
        if frame.fmt is not None and json_depth(frame.data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            return Frame(text=content, **kw)
        return frame
    return Frame.from_wire(content, **kw)


def scan(path: Path, limit: int | None = None, quick: bool = False) -> JournalInfo:
    """Read a journal once and summarise it (header, protocol, counts, gaps, finished or not).

    Raises :class:`JournalError` when the file is unreadable, empty, does not start with a header, or
    has a bad line (:func:`iter_records`). ``quick``: frame records as the recorder writes them are parsed
    only while the protocol or channel is not known yet (``iter_records(frames=False)``), so a bad one may
    pass unnoticed: for a caller that reads every record again anyway (the transcript writer).
    """
    records = iter_records(path, limit, frames=not quick)
    first = next(records, None)
    if first is None or "chanlog_journal" not in first[1]:
        where = f"{path}:{first[0]}" if first else f"{path}:1"
        raise JournalError("not a chanlog journal (the first line must be its header record)", where)
    header = first[1]
    version = header.get("chanlog_journal")
    if not isinstance(version, int) or isinstance(version, bool) or version > JOURNAL_FORMAT:
        raise JournalError(f"journal format {version!r} is not supported (this chanlog reads formats 1 to "
                           f"{JOURNAL_FORMAT})",
                           f"{path}:{first[0]}")
    info = JournalInfo(path=path, header=header, header_line=first[0])
    url_protocol: str | None = None
    sniffed: str | None = None
    last_kind = None
    block: tuple[int, str, tuple[Any, ...]] | None = None  # merge line, session, counts before it
    seen: set[Any] = set()
    for lineno, rec in records:
        kind = rec.get("kind")
        if kind in EVENT_KINDS and rec.get("conn") not in seen:
            if rec.get("conn") != len(seen):
                info.numbered_in_order = False
            seen.add(rec.get("conn"))
        if kind == "truncated":
            info.truncated = lineno
            break
        last_kind = kind
        if isinstance(rec.get("ts"), (int, float)):
            info.last_ts = float(rec["ts"])
        if kind == "merge":
            block = (lineno, str(rec.get("session")), (info.connections, info.frames, info.closes,
                                                       dict(info.roles), info.channel_id, url_protocol, sniffed,
                                                       info.gaps, info.lost_frames))
        elif kind == "merge_end" and block is not None:
            info.blocks.append((block[0] + 1, lineno - 1))
            info.merged.append(block[1])
            block = None
        elif kind == "merged_into":
            info.merged_into = rec
        elif kind == "gap":
            info.gaps += 1
            if isinstance(rec.get("frames"), int):
                info.lost_frames += rec["frames"]
        elif kind == "open":
            info.connections += 1
            if isinstance(rec.get("conn"), int):
                info.roles[rec["conn"]] = str(rec.get("role"))
            params = dict(parse_qsl(urlsplit(str(rec.get("url", ""))).query, keep_blank_values=True))
            if url_protocol is None and params.get("protocol") in PROTOCOLS:
                url_protocol = params["protocol"]
            if info.channel_id is None and params.get("existing_channel_id"):
                info.channel_id = params["existing_channel_id"]
        elif kind == "frame":
            info.frames += 1
            if "line" in rec:  # a quick record: the whole line parsed only when needed
                wants = info.channel_id is None and rec["from"] == "node" and b'\\"channel_id\\"' in rec["line"]
                if sniffed is not None and not wants:
                    continue
                try:
                    rec = parse_json(rec["line"])
                except (ValueError, RecursionError):
                    raise JournalError("not a JSON record", f"{path}:{lineno}") from None
            text = rec.get("text")
            wants_id = info.channel_id is None and rec.get("from") == "node" and '"channel_id"' in str(text)
            if isinstance(text, str) and (sniffed is None or wants_id):
                frame = frame_from_text(text, role="initiator", conn=0, sender="node")
                obj = frame.obj
                if sniffed is None:
                    sniffed = "json-rpc" if "jsonrpc" in obj else ("legacy" if "action" in obj else None)
                if info.channel_id is None and rec.get("from") == "node" and isinstance(frame.channel_id, str):
                    info.channel_id = frame.channel_id
        elif kind == "close":
            info.closes += 1
    if block is not None:  # the proxy died while copying a merged session: its journal still has it all
        info.partial_merge = block[0]
        (info.connections, info.frames, info.closes, info.roles, info.channel_id, url_protocol,
         sniffed, info.gaps, info.lost_frames) = block[2]
    info.finished = last_kind in ("end", "merged_into") and info.truncated is None
    info.protocol = url_protocol or sniffed or "json-rpc"
    info.size = limit if limit is not None else _file_size(path)
    return info


def _records_end(fd: int) -> int:
    """Where the records of an open journal end: its size less the zero bytes a killed proxy left after them
    (mapped appends; at most a window of them), read backwards from the end. Raises ``OSError``."""
    end = os.lseek(fd, 0, os.SEEK_END)
    while end > 0:
        block = os.pread(fd, min(end, 65536), end - min(end, 65536))
        kept = len(block.rstrip(b"\0"))
        end -= len(block) - kept
        if kept:
            break
    return end


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def ordered_records(path: Path, limit: int | None = None, info: JournalInfo | None = None,
                    gaps: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` for every event record (not header, ``end`` or merge markers; ``gap``
    records too when ``gaps``) of the journal in the order the proxy saw them: by ``n`` across merged blocks
    (module docstring), journal order otherwise; a block without ``merge_end`` is left out. Constant memory
    (the file is read once per block and per run between blocks). ``info``: the journal's :func:`scan`, made
    when not given. Raises :class:`JournalError` naming ``path:line`` for an unreadable file or a bad line."""
    info = info or scan(path, limit)
    end = info.partial_merge - 1 if info.partial_merge is not None else None
    start = info.header_line + 1
    skip = MARKER_KINDS if gaps else (*MARKER_KINDS, "gap")
    if not info.blocks:
        yield from _event_records(path, limit, start, end, skip)
        return
    runs: list[tuple[int, int | None]] = []
    for first, last in info.blocks:
        runs += [(start, first - 2), (first, last)]
        start = last + 2
    runs.append((start, end))
    streams = [_keyed(_event_records(path, limit, a, b, skip)) for a, b in runs if b is None or b >= a]
    for _, _, lineno, rec in heapq.merge(*streams):
        yield lineno, rec


def _event_records(path: Path, limit: int | None, first: int, last: int | None,
                   skip: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, rec in iter_records(path, limit, first, last):
        if rec.get("kind") in skip:
            continue
        yield lineno, rec


def _keyed(records: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[tuple[float, int, int, dict[str, Any]]]:
    """``(n, position, line, record)``: a record without ``n`` sorts with the record before it."""
    n = -1.0
    for position, (lineno, rec) in enumerate(records):
        if isinstance(rec.get("n"), int) and not isinstance(rec.get("n"), bool):
            n = float(rec["n"])
        yield n, position, lineno, rec


def journal_paths(directory: Path) -> list[Path]:
    """The journal files below a transcript folder (``DIR/journals/*.jsonl``), sorted by name."""
    folder = directory / JOURNAL_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(JOURNAL_SUFFIX) and p.is_file())


def live_holder(path: Path) -> str | None:
    """Who is writing ``path`` now, or ``None`` when nobody is: a recorder holds an exclusive ``flock`` on
    a journal for as long as it appends to it (:class:`JournalWriter`), so a journal whose lock cannot be
    taken belongs to a live session, not to a crashed one. The answer names the holder as well as Linux
    tells (``/proc/locks``: ``mitmdump (process 1234)``), else ``another process``. A file that cannot be
    opened, or a system without ``flock``, counts as not held (the caller's own read then reports it)."""
    if fcntl is None:  # pragma: no cover - not POSIX
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                return None
            return _lock_owner(os.fstat(fd)) or "another process"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _lock_owner(st: os.stat_result) -> str | None:
    """``NAME (process PID)`` of the process holding a ``flock`` on the file of ``st``, from Linux's
    ``/proc/locks`` (lines ``1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF``); ``None`` elsewhere."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] != "FLOCK" or parts[3] != "WRITE":
            continue
        dev_inode = parts[5].split(":")
        if len(dev_inode) != 3 or not dev_inode[2].isdigit() or int(dev_inode[2]) != st.st_ino:
            continue
        try:
            if int(dev_inode[0], 16) != os.major(st.st_dev) or int(dev_inode[1], 16) != os.minor(st.st_dev):
                continue
        except ValueError:
            continue
        pid = parts[4]
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as fh:
                name = fh.read().strip()
        except OSError:
            name = ""
        shown = "".join(c if c.isprintable() else "?" for c in name)[:64]
        return f"{shown} (process {pid})" if shown else f"process {pid}"
    return None


def find_unfinished(directory: Path) -> list[JournalInfo | JournalError]:
    """Scan every journal of a transcript folder and return the unfinished ones (and the unreadable
    ones, as :class:`JournalError`), for the recorder to report at start. A journal a live recorder is
    writing (:func:`live_holder`) is neither: it is left out. Never raises for a journal's content:
    whatever a file holds, it is reported, not fatal."""
    found: list[JournalInfo | JournalError] = []
    for path in journal_paths(directory):
        if live_holder(path) is not None:
            continue
        try:
            info = scan(path)
        except JournalError as exc:
            found.append(exc)
            continue
        except (RecursionError, MemoryError, ValueError, TypeError) as exc:
            found.append(JournalError(f"unreadable: {type(exc).__name__}", str(path)))
            continue
        if not info.finished:
            found.append(info)
    return found


#: Bytes read back from a journal's end by :func:`last_marker`: an ``end`` or ``merged_into`` record (a few
#: names and numbers) is far shorter, so a last record that does not fit is not one of them.
TAIL_BYTES = 4096


def last_marker(path: Path) -> tuple[str | None, int]:
    """``(kind, end)``: the ``kind`` of the journal's last record when it is a marker (``end``,
    ``merged_into``; :data:`MARKER_KINDS`), else ``None``; and where its records end (bytes, the zeros of a
    mapped window not counted). Reads at most a window of zeros and :data:`TAIL_BYTES` bytes from the end,
    whatever the journal's size: for a watcher polling whether a session is over (the journal of a running
    session never ends in ``end``: module docstring). Raises ``OSError`` when the file cannot be read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = _records_end(fd)
        tail = os.pread(fd, min(end, TAIL_BYTES), end - min(end, TAIL_BYTES))
    finally:
        os.close(fd)
    line = tail.rstrip(b"\n").rpartition(b"\n")[2]
    if not tail.endswith(b"\n") or line.startswith(b'{"kind":"frame"'):
        return None, end
    try:
        rec = json.loads(line)
    except ValueError:  # cut off by the tail's start, or not a record: not a marker either way
        return None, end
    kind = rec.get("kind") if isinstance(rec, dict) else None
    return (kind if kind in MARKER_KINDS else None), end
