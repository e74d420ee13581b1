"""Replay: a transcript served as a fake node (``chanlog replay``), and the script both sides follow.

A transcript is a script for the node side. For each participant (``role`` query parameter of the
WebSocket URL) the fake node plays that role's recorded connections: the Nth connection of a role gets
that role's Nth recorded connection, so reconnects continue the script. On each connection it sends
what the node sent, in order, and waits where the recorded client spoke, checking what arrives with
:mod:`chanlog.replay.matchers`. Across the two roles it keeps the recorded causal order where it matters: a
node frame waits until the other role's client events recorded before it (its frames, opens, closes)
have happened. More generally a node frame waits for the client events recorded before it on every
other connection, of either role: a reconnect's frames follow the old connection's close, and a
participant may have several connections open at once (two channels). A role that has not connected
within ``grace`` seconds of the session's first connection, or a connection that stops making progress
for ``timeout`` seconds, no longer holds the others back, so one role alone never deadlocks.

JSON-RPC semantics (channels WebSocket API; JSON-RPC 2.0 §4, §5):

* a recorded response goes out with the ``id`` the client used for the matching request (same JSON
  type); when the client sent that frame as a notification (no ``id``), the response is not sent;
  error frames with ``id: null`` go out as recorded;
* a ``channels.system`` ping is answered at once, at any time (also outside the script and after its
  end), with ``channels.system.pong`` carrying the channel id known so far to that participant's side
  (the last one sent on its connections, or its URL's ``existing_channel_id``; before any, the recorded
  pong's); recorded pongs are not replayed on their own;
* only well-formed JSON text frames are sent; recorded non-JSON or binary node frames are skipped.

A divergence (a wrong frame, a declined or different signature, a slot that times out, a frame after
the recorded end) is reported to the client as a JSON-RPC error (:meth:`Divergence.error_frame`),
logged on the ``chanlog.replay`` logger and kept in the session's :class:`SessionReport`; the
connection is then closed with code 4000.

Sessions: by default connections are paired into sessions in order of arrival; clients that run
several sessions at once against one fake node add a ``chanlog_session=<key>`` query parameter
(connections with the same key share a session).

Package layout (imports flow downwards only):

* :mod:`~chanlog.replay.errors`: :class:`ReplayError`, :func:`load_transcript`;
* :mod:`~chanlog.replay.matchers`: frame matchers and divergence reports;
* :mod:`~chanlog.replay.prelude`: a log that starts on an open channel, after the log that opened it;
* :mod:`~chanlog.replay.script`: the script built from a transcript;
* :mod:`~chanlog.replay.rebind`: ``rebind=True``, clients with their own accounts (ids, channel id,
  signatures and changed amounts mapped per session);
* :mod:`~chanlog.replay.progress`: the dependency board and deadlines;
* :mod:`~chanlog.replay.session`: one session (connections, inbox, report);
* :mod:`~chanlog.replay.node`: the fake node (WebSocket server);
* :mod:`~chanlog.replay.thread`: the fake node in a background thread;
* :mod:`~chanlog.replay.compat`: compatibility transformations for modern clients (off by default);
* :mod:`~chanlog.replay.actions`: the action script a client driver follows (what each app did);
* :mod:`~chanlog.replay.player`: the other side, the client player (``chanlog play``): both participants'
  client frames sent to a node (the fake one or a real one) and its frames checked.
"""

from __future__ import annotations

from chanlog.replay.errors import ReplayError, load_transcript
from chanlog.replay.node import (
    DEFAULT_GRACE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    SESSION_PARAM,
    FakeNode,
    Transform,
)
from chanlog.replay.prelude import starts_on_open_channel, with_prelude
from chanlog.replay.progress import ABANDONED, DONE, PENDING, Deadline, Progress
from chanlog.replay.script import CLIENT, CLOSE, NODE, OPEN, ConnScript, Script, Step
from chanlog.replay.session import DIVERGENCE_CLOSE_CODE, Inbox, Session, SessionReport
from chanlog.replay.thread import NodeThread, serve_in_thread

__all__ = [
    "ABANDONED", "CLIENT", "CLOSE", "DEFAULT_GRACE", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_TIMEOUT",
    "DIVERGENCE_CLOSE_CODE", "DONE", "NODE", "OPEN", "PENDING", "SESSION_PARAM", "ConnScript", "Deadline",
    "FakeNode", "Inbox", "NodeThread", "Progress", "ReplayError", "Script", "Session", "SessionReport", "Step",
    "Transform", "load_transcript", "serve_in_thread", "starts_on_open_channel", "with_prelude",
]
