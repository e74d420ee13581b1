"""Replay with a prelude: a log that starts on an open channel, served after the log that opened it.

The node's test suite records its channel tests in groups: ``init_per_group`` opens a channel, then each
test of the group continues on that channel, on the same two connections, and its log starts there (no
open, first frame ``channels.deposit`` or ``channels.update.new``). A client cannot start there: it must
open the channel first. :func:`with_prelude` joins the two into one transcript the fake node serves as
one session: first the prelude (the client opens the channel), then the test on the same connections.

Joining rules (connections are matched by role, in order):

* a connection of ``transcript`` that has no recorded open (the log starts inside it) continues the
  prelude's latest connection of the same role that the prelude did not close; there must be one, else
  :class:`~chanlog.replay.errors.ReplayError`;
* a connection of ``transcript`` with a recorded open (a reconnect within the test) becomes a new
  connection, numbered after the prelude's;
* events keep their order: every prelude event, then every event of ``transcript``. Frame numbers (in
  divergence reports) therefore count the prelude's frames first: ``source["prelude"]`` records the
  prelude's name and frame count, so frame ``N`` of the joined transcript is frame ``N - frames`` of
  the test.

Pure functions; linear in the size of both transcripts.
"""

from __future__ import annotations

import dataclasses

from chanlog.model import Close, Frame, Open, Transcript
from chanlog.replay.errors import ReplayError


def starts_on_open_channel(transcript: Transcript) -> bool:
    """True when some connection of ``transcript`` has events but no recorded open: the log starts inside
    a session another log opened (the node logs' tests after ``init_per_group``)."""
    opened: set[int] = set()
    for event in transcript.events:
        if isinstance(event, Open):
            opened.add(event.conn)
        elif event.conn not in opened:
            return True
    return False


def with_prelude(prelude: Transcript, transcript: Transcript) -> Transcript:
    """One transcript: ``prelude`` then ``transcript`` continuing on its open connections (rules in the
    module docstring). The result is named after ``transcript`` and keeps its ``source`` with
    ``source["prelude"] = {"name", "frames", "events"}``.

    Raises :class:`~chanlog.replay.errors.ReplayError` when the protocols differ, or when ``transcript``
    continues a role on which the prelude left no connection open.
    """
    if prelude.protocol != transcript.protocol:
        raise ReplayError(f"the prelude is {prelude.protocol}, the transcript {transcript.protocol}",
                          prelude.name)
    open_by_role: dict[str, list[int]] = {}
    closed: set[int] = set()
    last_conn = -1
    for event in prelude.events:
        last_conn = max(last_conn, event.conn)
        if isinstance(event, Open):
            open_by_role.setdefault(event.role, []).append(event.conn)
        elif isinstance(event, Close):
            closed.add(event.conn)
    still_open = {role: [c for c in conns if c not in closed] for role, conns in open_by_role.items()}
    mapping: dict[int, int] = {}
    continued: set[int] = set()
    next_conn = last_conn + 1
    events = list(prelude.events)
    for event in transcript.events:
        conn = mapping.get(event.conn)
        if conn is None:
            if isinstance(event, Open):
                conn = next_conn
                next_conn += 1
            else:
                candidates = [c for c in still_open.get(event.role, []) if c not in continued]
                if not candidates:
                    raise ReplayError(f"the transcript continues a {event.role} connection, but the prelude "
                                      f"{prelude.name!r} leaves no {event.role} connection open", transcript.name)
                conn = candidates[-1]
                continued.add(conn)
            mapping[event.conn] = conn
        events.append(event if conn == event.conn else dataclasses.replace(event, conn=conn))
    frames = sum(1 for e in prelude.events if isinstance(e, Frame))
    source = {**transcript.source, "prelude": {"name": prelude.name, "frames": frames,
                                               "events": len(prelude.events)}}
    return Transcript(name=transcript.name, protocol=transcript.protocol, events=events, source=source)
