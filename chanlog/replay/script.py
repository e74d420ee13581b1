"""The replay script: a transcript cut into per-role connection scripts, with the cross-connection
dependencies that keep the recorded causal order (:class:`Script`, :class:`ConnScript`, :class:`Step`).

Both the fake node (:mod:`chanlog.replay.session`) and the client player (:mod:`chanlog.replay.player`) walk it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from chanlog.model import ROLES, Close, Event, Frame, Open, Transcript
from chanlog.replay.matchers import Expected, is_optional, is_ping, is_pong, method_of

OPEN, CLIENT, NODE, CLOSE = "open", "client", "node", "close"
"""Step kinds."""


@dataclass(eq=False)
class Step:
    """One event of the script: a connection opening or closing, or a frame, with its dependencies."""

    index: int
    """Position of the event in ``transcript.events`` (file order); dependencies refer to it."""
    kind: str
    """``open``, ``client`` (a frame the client sends), ``node`` (a frame the node sends) or ``close``."""
    role: str
    """``initiator`` or ``responder``."""
    conn: int
    """The recorded connection number."""
    nth: int
    """Which of its role's connections (0-based)."""
    event: Event
    """The transcript event."""
    expected: Expected | None = None
    """For frames: the recorded message, prepared for matching."""
    client_deps: tuple[int, ...] = ()
    """For every other connection (of either role), the index of its latest client event (open, client
    frame, client close) recorded before this one; the fake node sends a node frame only after them."""
    lenient_deps: tuple[int, ...] = ()
    """As ``client_deps`` but skipping frames a lenient replay may skip."""
    peer_deps: tuple[int, ...] = ()
    """For every other connection, the index of its latest event of any kind recorded before this one;
    the client player does a client step only after them."""
    reply_to: int = -1
    """For a node response or error with a non-null ``id``: index of the client frame on the same
    connection that carried that ``id``."""
    recorded_id: Any = None
    """The recorded JSON-RPC ``id`` of this frame, if it has one."""
    has_id: bool = False
    """True when the recorded frame has a non-null ``id``."""
    link: int = -1
    """For a node frame that answers a skippable client frame (``get.*`` reply, delivered message):
    index of that client frame."""
    optional: bool = False
    """For a client frame: a lenient replay may skip it (``channels.get.*``, ``channels.message``, ping)."""
    ping: bool = False
    """For a client frame: a ``channels.system`` ping."""
    pong: bool = False
    """For a node frame: a recorded pong (pings are answered when they arrive instead)."""
    channel_id: str | None = None
    """For a node frame: the ``channel_id`` it carries, if any."""

    @property
    def number(self) -> int | None:
        """The frame number (from 1), ``None`` for opens and closes."""
        return self.expected.number if self.expected is not None else None

    @property
    def method(self) -> str | None:
        """The recorded frame's method, if any."""
        return self.expected.method if self.expected is not None else None

    def describe(self) -> str:
        """``frame 12 (channels.initiator_sign)``, ``the open``, ``the close``."""
        if self.expected is None:
            return f"the {self.kind}"
        what = self.expected.method or ("the answer" if self.kind == NODE else "a frame")
        return f"frame {self.expected.number} ({what})"


@dataclass(eq=False)
class ConnScript:
    """One recorded connection of one role: its open, frames and close."""

    role: str
    """``initiator`` or ``responder``."""
    nth: int
    """Which of its role's connections (0-based)."""
    conn: int
    """The recorded connection number."""
    open: Step | None = None
    """The open step; ``None`` when the log starts mid-connection."""
    close: Step | None = None
    """The close step, if recorded."""
    frames: list[Step] = field(default_factory=list)
    """Client and node frames, in order."""

    @property
    def label(self) -> str:
        """``initiator connection 2`` (counted from 1)."""
        return f"{self.role} connection {self.nth + 1}"

    @property
    def query(self) -> str:
        """The recorded URL's query string; ``role=<role>`` when the open was not recorded."""
        if self.open is not None:
            query = urlsplit(self.open.event.url).query  # type: ignore[attr-defined]
            if query:
                return query
        return f"role={self.role}"

    @property
    def closed_by_node(self) -> bool:
        """True when the recording says the node closed this connection."""
        return self.close is not None and self.close.event.closed_by == "node"  # type: ignore[attr-defined]


@dataclass(eq=False)
class Script:
    """The transcript cut into per-role connection scripts with their dependencies."""

    transcript: Transcript
    """The transcript served (after any transform)."""
    roles: dict[str, list[ConnScript]]
    """Every role's recorded connections, in order."""
    steps: dict[int, Step]
    """Every step by event index."""
    role_of: list[str]
    """The role of every event, by event index."""
    conn_of: list[int]
    """The recorded connection of every event, by event index."""
    path: str = "/channel"
    """The URL path the recorded clients connected to."""
    pong_template: Any = None
    """The first recorded pong (parsed), used as the shape of pongs; ``None`` if none was recorded."""

    @property
    def protocol(self) -> str:
        return self.transcript.protocol

    def role_steps(self, role: str) -> list[Step]:
        """Every step of ``role`` in file order (opens, frames, closes, across its connections)."""
        return [s for s in self.steps.values() if s.role == role]

    @property
    def frame_count(self) -> int:
        return sum(len(c.frames) for conns in self.roles.values() for c in conns)

    @classmethod
    def build(cls, transcript: Transcript) -> Script:
        """Cut ``transcript`` into the replay script. Notes are left out. Pure; raises nothing."""
        roles: dict[str, list[ConnScript]] = {role: [] for role in ROLES}
        by_conn: dict[int, ConnScript] = {}
        steps: dict[int, Step] = {}
        role_of: list[str] = []
        conn_of: list[int] = []
        last_client: dict[int, int] = {}
        last_lenient: dict[int, int] = {}
        last_any: dict[int, int] = {}
        numbers = {id(frame): n for n, frame in transcript.frames()}
        path: str | None = None
        pong_template = None
        for index, event in enumerate(transcript.events):
            role_of.append(event.role)
            conn_of.append(event.conn)
            if not isinstance(event, (Open, Frame, Close)):
                continue
            cs = by_conn.get(event.conn)
            if cs is None:
                cs = ConnScript(event.role, len(roles[event.role]), event.conn)
                roles[event.role].append(cs)
                by_conn[event.conn] = cs
            step = Step(index, OPEN, event.role, event.conn, cs.nth, event,
                        client_deps=_others(last_client, event.conn), lenient_deps=_others(last_lenient, event.conn),
                        peer_deps=_others(last_any, event.conn))
            client_event = True
            if isinstance(event, Open):
                cs.open = step
                if path is None:
                    path = urlsplit(event.url).path or None
            elif isinstance(event, Close):
                step.kind = CLOSE
                cs.close = step
                client_event = event.closed_by != "node"
            else:
                step.kind = CLIENT if event.sender == "client" else NODE
                step.expected = _expected(event, numbers[id(event)])
                data = step.expected.data
                if isinstance(data, dict) and data.get("id") is not None:
                    step.has_id, step.recorded_id = True, data["id"]
                if step.kind == CLIENT:
                    step.ping = is_ping(data)
                    step.optional = is_optional(data)
                else:
                    client_event = False
                    step.channel_id = event.channel_id
                    step.pong = is_pong(data)
                    if step.pong and pong_template is None:
                        pong_template = data
                    if step.has_id and data.get("method") is None:
                        step.reply_to = _request_of(cs, step.recorded_id)
                cs.frames.append(step)
            steps[index] = step
            if client_event:
                last_client[event.conn] = index
                if not step.optional:
                    last_lenient[event.conn] = index
            last_any[event.conn] = index
        script = cls(transcript, roles, steps, role_of, conn_of, path or "/channel", pong_template)
        _link_optional(script)
        return script


def _others(latest: dict[int, int], conn: int) -> tuple[int, ...]:
    return tuple(index for other, index in latest.items() if other != conn)


def _expected(frame: Frame, number: int) -> Expected:
    wire = frame.wire()
    data = frame.data if frame.is_json else None
    return Expected(number, wire, data, frame.is_json, method_of(data))


def same_id(a: Any, b: Any) -> bool:
    """True when two JSON-RPC ids are the same value of the same JSON type (``1`` is not ``"1"``)."""
    return type(a) is type(b) and a == b


def _request_of(cs: ConnScript, recorded_id: Any) -> int:
    for step in reversed(cs.frames):
        if step.kind == CLIENT and step.has_id and same_id(step.recorded_id, recorded_id):
            return step.index
    return -1


def _link_optional(script: Script) -> None:
    """Link each skippable client frame to the node frame that answers it: the reply on the same
    connection (``get.*``), the delivery to the other role (``channels.message``)."""
    taken: set[int] = set()
    deliveries = [s for s in script.steps.values() if s.kind == NODE and s.method is not None
                  and s.method.rsplit(".", 1)[-1] == "message"]
    for cs in (c for conns in script.roles.values() for c in conns):
        for pos, step in enumerate(cs.frames):
            if step.kind != CLIENT or not step.optional or step.ping or step.expected is None:
                continue
            method = step.method or ""
            if method.rsplit(".", 1)[-1] == "message":
                info = _message_info(step.expected.data)
                for later in deliveries:
                    if (later.index > step.index and later.role != step.role and later.method == method
                            and later.index not in taken and _delivered_info(later.expected.data) == info):  # type: ignore[union-attr]
                        later.link = step.index
                        taken.add(later.index)
                        break
                continue
            for later in cs.frames[pos + 1:]:
                if later.kind != NODE or later.index in taken:
                    continue
                data = later.expected.data if later.expected else None
                if step.has_id:
                    hit = later.reply_to == step.index
                else:
                    hit = later.method in (method, method + ".reply") or (
                        isinstance(data, dict) and ("error" in data or data.get("action") == "error"))
                if hit:
                    later.link = step.index
                    taken.add(later.index)
                    break


def _message_info(data: Any) -> Any:
    body = data.get("params", data.get("payload")) if isinstance(data, dict) else None
    return body.get("info") if isinstance(body, dict) else None


def _delivered_info(data: Any) -> Any:
    body = data.get("params", data.get("payload")) if isinstance(data, dict) else None
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    message = body.get("message") if isinstance(body, dict) else None
    return message.get("info") if isinstance(message, dict) else None
