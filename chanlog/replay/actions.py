"""What each participant's app must do to play a transcript: an action script for client drivers.

A real channel client (an SDK) answers sign requests by itself, but its *app* decides what to propose
(``channels.update.new``), which messages to send, which ``channels.get.*`` calls to make, which sign
requests to decline, when to shut down and when to disconnect. To drive such a client against the fake
node (``chanlog replay``), this module exports those decisions from a transcript as plain data (JSON)
that a small driver follows (``tests/sdk/driver.mjs`` does it for the JavaScript SDK).

Script format 1 (``action_script(...)`` returns it; every key always present)::

    {"chanlog_script": 1, "name": str, "protocol": "json-rpc" | "legacy", "profile": str,
     "connections": [{"conn": int, "role": str, "nth": int, "params": {str: str},
                      "node_frames": int}],
     "steps": [{"step": int, "do": "open" | "sign" | "send" | "close", "conn": int, "role": str,
                "frame": int | None, "method": str | None, "params": Any, "id": bool,
                "decline": Any, "after": {str(conn): int}}]}

* ``connections``: every recorded connection in order of opening; ``nth`` is its number among its
  role's connections (the fake node gives the Nth connection of a role its Nth recording), ``params``
  its open URL's query (``role`` included), ``node_frames`` how many node frames the client will receive
  on it (the end of the recording for that connection).
* ``steps``: the client side of both participants in transcript order. ``open`` opens connection
  ``conn``; ``sign`` is the client's answer to the sign request before it (``method`` is the reply
  method, ``decline`` the recorded ``error`` value or ``None`` when the client signed); ``send`` is a
  frame the app sends (``method``/``params`` as recorded, ``id`` whether the client sends it with a
  JSON-RPC id); ``close`` is the client closing the connection. ``frame`` is the transcript frame number
  (from 1), ``None`` for open/close.
* ``after``: before doing the step, wait until each listed connection has received that many node
  frames (counting only frames the client will receive: a recorded response to a frame the client sends
  without an ``id`` is not sent by the fake node, JSON-RPC 2.0 §4.1; ``channels.system.pong`` answers
  to the client's own pings are not counted).

Which frames a client sends without an ``id`` depends on the client: :class:`ClientProfile` says it
(:data:`PROFILES`: ``recorded`` keeps the recording, ``sdk14`` is ``@aeternity/aepp-sdk`` 14).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chanlog.errors import ChanlogError
from chanlog.model import Close, Frame, Open, Transcript
from chanlog.volatile import is_pong

SCRIPT_FORMAT = 1


@dataclass(frozen=True)
class ClientProfile:
    """How a client sends the frames its app asks for (which carry a JSON-RPC ``id``)."""

    name: str
    """Short name used on the command line and in the script (``sdk14``)."""
    sign_replies_have_id: bool = True
    """False when the client answers sign requests with notifications (no ``id``)."""
    notify_methods: frozenset[str] = field(default_factory=frozenset)
    """Methods the client always sends as notifications, whatever the recording did."""


#: ``@aeternity/aepp-sdk`` 14 (``es/channel/*.js``): every sign reply and every action of its API is sent
#: with ``notify`` (no ``id``); only ``channels.get.*``/``channels.dry_run.*`` go through ``call`` (with an
#: ``id``). A driver sends any other recorded request with an ``id`` through the SDK's ``call``.
SDK14 = ClientProfile(
    name="sdk14",
    sign_replies_have_id=False,
    notify_methods=frozenset({
        "channels.update.new", "channels.update.new_contract", "channels.update.call_contract",
        "channels.message", "channels.shutdown", "channels.leave", "channels.deposit", "channels.withdraw",
        "channels.force_progress", "channels.clean_contract_calls",
    }),
)

#: Client profiles by name; ``recorded`` assumes the client sends ids exactly as the recording did.
PROFILES: dict[str, ClientProfile] = {"recorded": ClientProfile(name="recorded"), "sdk14": SDK14}


#: Sign requests whose reply method is not ``channels.<tag>`` (the node's aesc_fsm replies: solo snapshot,
#: slash and force progress are answered with ``..._sign``, their requests end in ``_tx``).
REPLY_METHODS: dict[str, str] = {
    "channels.sign.snapshot_solo_tx": "channels.snapshot_solo_sign",
    "channels.sign.slash_tx": "channels.slash_sign",
    "channels.sign.force_progress_tx": "channels.force_progress_sign",
}


class ScriptError(ChanlogError):
    """A transcript cannot be turned into an action script (unknown profile)."""


def sign_reply_method(frame: Frame) -> str | None:
    """The method a client answers the node's sign request ``frame`` with, or ``None`` when ``frame`` is
    not a sign request: ``channels.sign.update_ack`` -> ``channels.update_ack`` (JSON-RPC; the exceptions
    in :data:`REPLY_METHODS`, e.g. ``channels.sign.slash_tx`` -> ``channels.slash_sign``), legacy
    ``{action: sign, tag: update_ack}`` -> ``update_ack`` (channels API, "Signing")."""
    obj = frame.obj
    method = obj.get("method")
    if method in REPLY_METHODS:
        return REPLY_METHODS[method]
    if isinstance(method, str) and method.startswith("channels.sign."):
        return "channels." + method[len("channels.sign."):]
    if obj.get("action") == "sign" and isinstance(obj.get("tag"), str):
        return obj["tag"]
    return None


def _client_method(frame: Frame) -> str | None:
    obj = frame.obj
    if isinstance(obj.get("method"), str):
        return obj["method"]
    if isinstance(obj.get("action"), str):
        return obj["action"]
    return None


def action_script(transcript: Transcript, profile: str | ClientProfile = "recorded") -> dict[str, Any]:
    """The action script (format 1, see the module docstring) of ``transcript`` for a client ``profile``.

    Pure function of the transcript; apply a compatibility transformation (:mod:`chanlog.replay.compat`) first
    when the fake node serves a transformed transcript, so that the script's frames are the ones the
    node expects. Raises :class:`ScriptError` for an unknown profile name.
    """
    prof = _profile(profile)
    connections: dict[int, dict[str, Any]] = {}
    role_count = {"initiator": 0, "responder": 0}
    received: dict[int, int] = {}
    pending_sign: dict[int, str] = {}
    sent_with_id: dict[tuple[int, str], bool] = {}  # (conn, json of id) -> the client sends that id
    steps: list[dict[str, Any]] = []

    def conn_entry(event: Any) -> dict[str, Any]:
        entry = connections.get(event.conn)
        if entry is None:
            entry = {"conn": event.conn, "role": event.role, "nth": role_count[event.role],
                     "params": {**transcript.params, "role": event.role}, "node_frames": 0}
            role_count[event.role] += 1
            connections[event.conn] = entry
            steps.append(_step(steps, "open", event.conn, event.role, after=dict(received)))
        return entry

    numbers = {id(frame): n for n, frame in transcript.frames()}
    for event in transcript.events:
        if isinstance(event, Open):
            if event.conn not in connections:
                conn_entry(event)
                connections[event.conn]["params"] = dict(event.params)
            continue
        if isinstance(event, Close):
            if event.closed_by in (None, "client"):
                conn_entry(event)
                steps.append(_step(steps, "close", event.conn, event.role, after=dict(received)))
            continue
        if not isinstance(event, Frame):
            continue
        entry = conn_entry(event)
        number = numbers[id(event)]
        if event.sender == "node":
            if _delivered(event, sent_with_id) and not is_pong(event.obj):
                received[event.conn] = received.get(event.conn, 0) + 1
                entry["node_frames"] += 1
            reply = sign_reply_method(event)
            if reply is not None:
                pending_sign[event.conn] = reply
            continue
        method = _client_method(event)
        obj = event.obj
        has_id = "id" in obj and obj["id"] is not None
        params = obj.get("params", obj.get("payload"))
        if method is not None and pending_sign.get(event.conn) == method:
            del pending_sign[event.conn]
            decline = params.get("error") if isinstance(params, dict) else None
            with_id = has_id and prof.sign_replies_have_id
            steps.append(_step(steps, "sign", event.conn, event.role, after=dict(received), frame=number,
                               method=method, params=params, id=with_id, decline=decline))
        else:
            with_id = has_id and method not in prof.notify_methods
            steps.append(_step(steps, "send", event.conn, event.role, after=dict(received), frame=number,
                               method=method, params=params, id=with_id))
        if has_id:
            sent_with_id[(event.conn, repr(obj["id"]))] = with_id
    return {"chanlog_script": SCRIPT_FORMAT, "name": transcript.name, "protocol": transcript.protocol,
            "profile": prof.name, "connections": [connections[k] for k in sorted(connections)], "steps": steps}


def _profile(profile: str | ClientProfile) -> ClientProfile:
    if isinstance(profile, ClientProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ScriptError(f"unknown client profile {profile!r} (known: {', '.join(PROFILES)})",
                          "action script") from None


def _delivered(frame: Frame, sent_with_id: dict[tuple[int, str], bool]) -> bool:
    """False for a recorded response (non-null ``id``) to a client frame the client sends without one."""
    obj = frame.obj
    if "method" in obj or obj.get("id") is None:
        return True
    return sent_with_id.get((frame.conn, repr(obj["id"])), True)


def _step(steps: list[dict[str, Any]], do: str, conn: int, role: str, *, after: dict[int, int],
          frame: int | None = None, method: str | None = None, params: Any = None, id: bool = False,
          decline: Any = None) -> dict[str, Any]:
    return {"step": len(steps) + 1, "do": do, "conn": conn, "role": role, "frame": frame, "method": method,
            "params": params, "id": id, "decline": decline,
            "after": {str(k): v for k, v in sorted(after.items()) if v}}
