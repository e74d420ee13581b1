"""One recorder run as one transcript: every channel session a recorder wrote into a folder, joined in the
order the proxy saw them (the record modes of ``chanlog replay``, :mod:`chanlog.replay.modes`).

The recorder writes one journal and one transcript per channel session (:mod:`chanlog.record.addon`); a
client's test may open several channel sessions (two channels, a channel opened again). A fixture must hold
everything the run did, served again in the same order, so the sessions are joined into **one** transcript
of format 1, which already holds any number of connections of either role, several of them open at once:
the connections of the later sessions are numbered after those of the earlier ones, and all events are put
in one time line (the recorder's timestamps, from the earliest session's start; within a session the
journal's own order is kept). ``source.sessions`` lists which connections formed which channel session.
The fake node serves such a transcript as one session: the Nth connection of a role plays that role's
Nth recorded connection, and a node frame waits for the client events recorded before it on every other
connection, so the sessions come back in the recorded order. No container format is needed, and every
other command (render, diff, export) reads the file as it reads any transcript.

A run that is not a complete fixture raises :class:`RecordingError` naming each problem; no transcript is
written then. The problems: nothing recorded; a session whose journal is not finished (the recorder was
stopped or died while it ran); a session that still had connections open when the recording stopped (given
by the caller, which knows; or seen as connections without a close); frames lost (``gap`` records).
Streaming: the journals are read and the YAML written a chunk at a time (:func:`chanlog.record.writer.
yaml_pieces`), in constant memory whatever the sessions' size.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chanlog.errors import ChanlogError
from chanlog.model import Transcript
from chanlog.record.journal import JournalError, JournalInfo, journal_paths, last_marker, scan
from chanlog.record.writer import iter_event_dicts, yaml_pieces
from chanlog.transcript import write_atomic

#: ``last_marker`` kinds of a journal whose session is over (its transcript written, or merged into another).
FINISHED = ("end", "merged_into")


class RecordingError(ChanlogError):
    """A recording is not a complete fixture (``problems`` says why, one line each); nothing was written."""

    def __init__(self, problems: list[str], where: str | None = None) -> None:
        super().__init__("the recording is not a complete fixture, so it was not written: " + "; ".join(problems),
                         where)
        self.problems = problems


def run_state(directory: Path) -> tuple[tuple[str, int, bool], ...]:
    """``(journal name, bytes of records, finished)`` of every journal in ``directory`` (the recorder's
    ``chanlog_dir``): a snapshot that changes whenever a connection opens or a session ends, read in
    constant time per journal (:func:`chanlog.record.journal.last_marker`). A journal that cannot be read
    counts as not finished."""
    state = []
    for path in journal_paths(directory):
        try:
            kind, end = last_marker(path)
        except OSError:
            kind, end = None, -1
        state.append((path.name, end, kind in FINISHED))
    return tuple(state)


@dataclass
class Combined:
    """What :func:`combine` wrote."""

    path: Path
    sessions: list[str]
    """The channel sessions' names, in order."""
    connections: int
    frames: int


def combine(directory: Path, out: Path, *, name: str, node: str, open_at_stop: Iterable[str] = ()) -> Combined:
    """Join every channel session recorded in ``directory`` into one transcript written atomically to
    ``out`` (module docstring), named ``name``, its ``source`` naming the ``node`` URL recorded from.
    ``open_at_stop``: journal file names of sessions that still had connections open when the recording
    was stopped. Raises :class:`RecordingError` (nothing written) when the run is not a complete fixture,
    :class:`~chanlog.record.journal.JournalError` for an unreadable journal, ``OSError`` when ``out``
    cannot be written."""
    open_at_stop = set(open_at_stop)
    problems: list[str] = []
    infos: list[JournalInfo] = []
    for path in journal_paths(directory):
        info = scan(path, quick=True)
        if info.merged_into is not None:
            continue  # its records live on in the journal it was merged into
        label = f"session {info.session}"
        if path.name in open_at_stop:
            problems.append(f"{label} still had connections open when the recording stopped (left unfinished)")
        elif not info.finished:
            problems.append(f"{label} is unfinished: its journal {path} has no end record (the recorder "
                            "was stopped or died while it ran)")
        elif info.closes < info.connections:
            problems.append(f"{label} has {info.connections - info.closes} connection(s) without a close")
        if info.gaps or info.lost_frames:
            problems.append(f"{label} lost {info.lost_frames} frames in {info.gaps} gap(s) (the recorder could "
                            f"not write its journal {path})")
        if info.truncated is not None:
            problems.append(f"{label}: its journal {path} ends in a cut-off record (line {info.truncated})")
        infos.append(info)
    if not infos:
        problems.append(f"nothing was recorded: no client opened a channel WebSocket through the recorder "
                        f"(journals expected in {directory})")
    if problems:
        raise RecordingError(problems, str(out))
    infos.sort(key=lambda i: (_t0(i) or 0.0, i.path.name))
    protocols = {i.protocol for i in infos}
    if len(protocols) > 1:
        raise RecordingError([f"the sessions use different protocols ({', '.join(sorted(protocols))}): one "
                              "transcript holds one protocol"], str(out))
    t0 = min((t for t in map(_t0, infos) if t is not None), default=None)
    streams: list[Iterator[dict[str, Any]]] = []
    listing: list[dict[str, Any]] = []
    offset = 0
    for info in infos:
        conns = info.connections
        listing.append({"name": info.session, **({"channel_id": info.channel_id} if info.channel_id else {}),
                        "connections": list(range(offset, offset + conns))})
        streams.append(_shifted(iter_event_dicts(info.path, t0, info=info), offset))
        offset += conns
    first = infos[0].header
    source: dict[str, Any] = {"kind": "capture", "recorder": first.get("recorder"), "started": first.get("started"),
                              "node": node, "sessions": listing}
    head = Transcript(name=name, protocol=infos[0].protocol, events=[],
                      source={k: v for k, v in source.items() if v is not None})
    write_atomic(out, yaml_pieces(head, heapq.merge(*streams, key=_time)))
    return Combined(out, [i.session for i in infos], offset, sum(i.frames for i in infos))


def _t0(info: JournalInfo) -> float | None:
    t0 = info.header.get("t0")
    return float(t0) if type(t0) in (int, float) else None


def _time(event: dict[str, Any]) -> float:
    t = event.get("t")
    return float(t) if t is not None else 0.0


def _shifted(events: Iterator[dict[str, Any]], offset: int) -> Iterator[dict[str, Any]]:
    for event in events:
        if offset:
            event["conn"] += offset
        yield event


__all__ = ["Combined", "FINISHED", "JournalError", "RecordingError", "combine", "run_state"]
