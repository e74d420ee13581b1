"""Frame matchers and divergence reports for replay: does what a peer sent match the recorded frame?

In the manner of vcrpy's matchers: each matcher is a small named function that returns ``None`` when
the arrived frame passes it, or one sentence saying why not. :data:`MATCHERS` lists which matchers a
:class:`Mode` applies. What may differ between two recordings of the same flow (JSON-RPC ``id`` values,
``fsm_id``, the signatures of a ``signed_tx``) comes from :mod:`chanlog.volatile`, the definition
``chanlog diff`` uses too.

Protocol facts used here (channels WebSocket API, JSON-RPC and legacy):

* a client *sign reply* answers a node sign request (``channels.sign.<x>`` / legacy ``{action: sign,
  tag: <x>}``) with method ``channels.<x>`` (``..._sign`` for ``snapshot_solo_tx``, ``slash_tx``,
  ``force_progress_tx``; legacy ``action: <x>``) and ``params.signed_tx`` (legacy
  ``payload.tx``), or declines with ``params.error`` (an integer code);
* ``channels.system`` with ``{"action": "ping"}`` is a ping, answered with ``channels.system.pong``
  (legacy: ``{action: system, tag: ping}``, or ``{action: ping}``, answered with ``tag: pong``);
* ``channels.get.*`` and ``channels.message`` (legacy ``action: get`` / ``message``) are client frames
  a lenient replay may skip.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chanlog.errors import terminal_safe
from chanlog.model import parse_json
from chanlog.volatile import is_ping as is_ping  # protocol facts kept with pong_order, re-exported here
from chanlog.volatile import is_pong as is_pong
from chanlog.volatile import normalize, unsigned_tx


class Mode(StrEnum):
    """How strictly an arrived frame is compared with the recorded one."""

    STRICT = "strict"
    """Method and params compared exactly, volatile values (ids, ``fsm_id``, signatures) ignored."""
    LENIENT = "lenient"
    """Methods only (and sign replies still checked); ``channels.get.*`` / ``channels.message`` /
    ping slots the client does not send may be skipped."""


#: What strict matching ignores, named in every divergence report.
IGNORED = "JSON-RPC id, fsm_id, signatures of signed_tx (the inner transaction is compared)"

#: JSON-RPC error code of a divergence report sent to the client (implementation-defined server error
#: range of JSON-RPC 2.0 §5.1).
DIVERGENCE_CODE = -32000
#: Most lines of each side that a divergence's diff compares (difflib is superlinear in lines: a hostile
#: frame of 100,000 JSON members must not stall the fake node); the rest is summarized.
MAX_DIFF_LINES = 2_000
#: Most characters of one frame (expected or arrived) quoted in a divergence report, on standard error and
#: in the error sent to the client; the rest is summarized with its size.
MAX_REPORT_CHARS = 8_192


# -- protocol facts ------------------------------------------------------------------------------------


def method_of(data: Any) -> str | None:
    """JSON-RPC ``method``, or legacy ``action`` (``action.tag`` when a tag is present); ``None`` for
    responses, errors and anything that is not a JSON object."""
    if not isinstance(data, dict):
        return None
    method = data.get("method")
    if isinstance(method, str):
        return method
    action = data.get("action")
    if isinstance(action, str):
        tag = data.get("tag")
        return f"{action}.{tag}" if isinstance(tag, str) else action
    return None


def body_of(data: Any) -> Any:
    """The client frame's body: JSON-RPC ``params``, legacy ``payload`` (``None`` when absent)."""
    if not isinstance(data, dict):
        return None
    if "params" in data:
        return data["params"]
    return data.get("payload")


def make_pong(ping: Any, channel_id: str | None, template: Any = None) -> dict[str, Any]:
    """The node's answer to ``ping`` carrying ``channel_id``: ``template`` (a recorded pong) with its
    channel id replaced when given, else the shape the node uses (channels API, "System messages")."""
    if isinstance(template, dict):
        pong = json.loads(json.dumps(template))
        if isinstance(pong.get("params"), dict):
            pong["params"]["channel_id"] = channel_id
        elif "channel_id" in pong:
            pong["channel_id"] = channel_id
        return pong
    if isinstance(ping, dict) and "method" in ping:
        return {"jsonrpc": "2.0", "method": "channels.system.pong",
                "params": {"channel_id": channel_id, "data": {"action": "system", "tag": "pong"}},
                "version": 1}
    if isinstance(ping, dict) and ping.get("action") == "ping":
        return {"action": "pong", "channel_id": channel_id, "version": 1}
    return {"action": "system", "channel_id": channel_id, "tag": "pong", "version": 1}


def is_sign_request(data: Any) -> bool:
    """True for a node sign request (``channels.sign.*``; legacy ``action: sign``)."""
    if not isinstance(data, dict):
        return False
    method = data.get("method")
    if isinstance(method, str):
        return method.startswith("channels.sign.")
    return data.get("action") == "sign"


def signed_blob(data: Any) -> str | None:
    """The ``signed_tx`` (legacy ``tx``) string of a client frame's body, if any."""
    body = body_of(data)
    if not isinstance(body, dict):
        return None
    blob = body.get("signed_tx", body.get("tx"))
    return blob if isinstance(blob, str) else None


def declined(data: Any) -> bool:
    """True when a client frame's body carries an ``error`` (a declined sign request)."""
    body = body_of(data)
    return isinstance(body, dict) and "error" in body


def is_optional(data: Any) -> bool:
    """True for the client frames a lenient replay may skip: ``channels.get.*``, ``channels.message``,
    pings (legacy ``get``, ``message``)."""
    method = method_of(data)
    if method is None:
        return False
    if is_ping(data):
        return True
    if "method" in data:
        return method.startswith("channels.get.") or method == "channels.message"
    return method.split(".", 1)[0] in ("get", "message")


def without_id(data: Any) -> Any:
    """``data`` without its top-level JSON-RPC ``id`` (a request and a notification compare alike)."""
    if isinstance(data, dict) and "id" in data:
        return {k: v for k, v in data.items() if k != "id"}
    return data


def comparable(data: Any) -> Any:
    """What strict matching compares: ``data`` without its top-level ``id``, volatile values masked."""
    return normalize(without_id(data))


# -- arrivals and expectations --------------------------------------------------------------------------


@dataclass
class Arrival:
    """A frame as it arrived from the peer."""

    raw: str | bytes
    """The message: ``str`` for a text message, ``bytes`` for binary."""
    data: Any = None
    """The message parsed as JSON; ``None`` when it is binary or not JSON (see ``is_json``)."""
    is_json: bool = False
    """True when ``raw`` is a text message holding well-formed JSON."""

    @classmethod
    def parse(cls, raw: str | bytes) -> Arrival:
        """Parse a received message; never raises."""
        if isinstance(raw, bytes):
            return cls(raw)
        try:
            return cls(raw, parse_json(raw), True)  # bounded depth and numbers (issue 16)
        except ValueError:
            return cls(raw)

    def text(self) -> str:
        """The message for a report: text as is, binary as ``<binary: N bytes: hex...>``."""
        if isinstance(self.raw, bytes):
            return f"<binary message: {len(self.raw)} bytes: {self.raw[:32].hex()}{'...' if len(self.raw) > 32 else ''}>"
        return self.raw


@dataclass(eq=False)
class Expected:
    """A recorded frame the peer is expected to send, with what matching needs precomputed."""

    number: int
    """The frame's number in the transcript (from 1)."""
    wire: str | bytes
    """The recorded message exactly as on the wire."""
    data: Any
    """The recorded message parsed as JSON (``None`` when it was not JSON)."""
    is_json: bool
    """True when the recorded message was JSON."""
    method: str | None = None
    """:func:`method_of` the recorded message."""
    _comparable: Any = field(default=None, repr=False)
    _has_comparable: bool = field(default=False, repr=False)

    def comparable(self) -> Any:
        """:func:`comparable` of the recorded message, computed once."""
        if not self._has_comparable:
            self._comparable = comparable(self.data)
            self._has_comparable = True
        return self._comparable


Matcher = Callable[[Expected, Arrival], "str | None"]


def match_kind(expected: Expected, arrived: Arrival) -> str | None:
    """Both JSON, or both the same non-JSON message."""
    if expected.is_json and arrived.is_json:
        return None
    if expected.is_json:
        return "a JSON text message was expected; the message is not JSON" if isinstance(arrived.raw, str) \
            else "a JSON text message was expected; a binary message arrived"
    if arrived.raw != expected.wire:
        return "the message differs from the recorded non-JSON message"
    return None


def match_method(expected: Expected, arrived: Arrival) -> str | None:
    """Same method (JSON-RPC ``method``; legacy ``action``/``tag``); responses and errors by kind."""
    if not (expected.is_json and arrived.is_json):
        return None
    got = method_of(arrived.data)
    if got != expected.method:
        return f"method {got!r} arrived, {expected.method!r} was expected"
    if expected.method is None:
        want_kind, got_kind = _answer_kind(expected.data), _answer_kind(arrived.data)
        if want_kind != got_kind:
            return f"a {got_kind} arrived, a {want_kind} was expected"
    return None


def match_signature(expected: Expected, arrived: Arrival) -> str | None:
    """At a sign request: the client signs (no ``error``) the same inner transaction, or declines when
    the recording declined."""
    if not (expected.is_json and arrived.is_json):
        return None
    want_blob = signed_blob(expected.data)
    if declined(expected.data):
        if not declined(arrived.data):
            return "the recording declined this sign request (params.error); the client did not"
        return None
    if want_blob is None:
        return None
    if declined(arrived.data):
        error = body_of(arrived.data).get("error")
        return f"the client declined the sign request (error {error!r}); the recording signed it"
    got_blob = signed_blob(arrived.data)
    if got_blob is None:
        return "the sign reply carries no signed_tx"
    if got_blob == want_blob:
        return None
    want_inner = unsigned_tx(want_blob)
    if want_inner is None:
        return "the signed_tx differs from the recorded one (which is not a decodable signed_tx)"
    got_inner = unsigned_tx(got_blob)
    if got_inner is None:
        return "the signed_tx is not a decodable signed transaction"
    if got_inner != want_inner:
        return "the client signed a different transaction than the one it was asked to sign"
    return None


def match_params(expected: Expected, arrived: Arrival) -> str | None:
    """Everything but the top-level ``id``, with volatile values masked (:func:`comparable`)."""
    if not (expected.is_json and arrived.is_json):
        return None
    want, got = expected.comparable(), comparable(arrived.data)
    if want == got:
        return None
    paths = differing_paths(want, got)
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return f"the message differs at {shown}"


#: The matchers each mode applies, in order; the first one that fails names the divergence.
MATCHERS: dict[Mode, tuple[Matcher, ...]] = {
    Mode.STRICT: (match_kind, match_method, match_signature, match_params),
    Mode.LENIENT: (match_kind, match_method, match_signature),
}

#: Matchers for frames the *node* sent (checked by the client player): no sign-reply rule.
NODE_MATCHERS: dict[Mode, tuple[Matcher, ...]] = {
    Mode.STRICT: (match_kind, match_method, match_params),
    Mode.LENIENT: (match_kind, match_method),
}


def check(expected: Expected, arrived: Arrival, matchers: tuple[Matcher, ...]) -> list[str]:
    """The reasons ``arrived`` does not match ``expected`` (empty when it does). An identical message
    matches without further work."""
    if isinstance(arrived.raw, str) and arrived.raw == expected.wire:
        return []
    reasons = []
    for matcher in matchers:
        reason = matcher(expected, arrived)
        if reason is not None:
            reasons.append(reason)
            if matcher is match_kind:
                break
    return reasons


def _answer_kind(data: Any) -> str:
    if isinstance(data, dict) and "error" in data:
        return "error"
    if isinstance(data, dict) and "result" in data:
        return "response"
    return "message"


def differing_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """Dotted paths (``params.data[2].amount``) where two parsed JSON values differ; ``<root>`` for the
    whole value."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in list(a) + [k for k in b if k not in a]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                out.append(sub)
            else:
                out.extend(differing_paths(a[key], b[key], sub))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(differing_paths(x, y, f"{path}[{i}]"))
        return out
    return [] if a == b else [path or "<root>"]


def diff(expected: Expected | None, arrived: Arrival | None) -> str:
    """A unified diff (difflib) of the expected and arrived message: JSON as comparable pretty JSON
    (volatile values masked), anything else as text."""
    def lines(value: Any, is_json: bool, raw: Any) -> list[str]:
        if is_json:
            return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False).splitlines()
        if isinstance(raw, bytes):
            return [f"<binary message: {len(raw)} bytes>"]
        return str(raw).splitlines() if raw is not None else []

    def clip(found: list[str]) -> list[str]:
        if len(found) <= MAX_DIFF_LINES:
            return found
        return found[:MAX_DIFF_LINES] + [f"... {len(found) - MAX_DIFF_LINES} more lines not compared"]

    want = lines(expected.comparable(), True, None) if expected is not None and expected.is_json else \
        lines(None, False, expected.wire if expected is not None else None)
    got = lines(comparable(arrived.data), True, None) if arrived is not None and arrived.is_json else \
        lines(None, False, arrived.raw if arrived is not None else None)
    return clip_text("\n".join(difflib.unified_diff(clip(want), clip(got), "expected", "arrived", lineterm="")))


def clip_text(text: str | None, limit: int = MAX_REPORT_CHARS) -> str | None:
    """``text`` cut to ``limit`` characters with a note of what was left out (``None`` stays ``None``)."""
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n... ({len(text) - limit:,} more characters of {len(text):,} not shown)"


# -- divergence reports ---------------------------------------------------------------------------------


@dataclass
class Divergence:
    """A peer said something else than the recording (or nothing where it should have spoken)."""

    reason: str
    """One sentence: what differs (``method 'x' arrived, 'y' was expected``) or what timed out."""
    role: str
    """``initiator`` or ``responder``: whose connection."""
    nth: int
    """Which of that role's connections, from 1."""
    frame: int | None = None
    """Number (from 1) of the expected frame in the transcript, ``None`` when nothing was expected."""
    expected: str | None = None
    """The expected frame as recorded (wire text), if one was expected."""
    method: str | None = None
    """The expected frame's method, if any."""
    arrived: str | None = None
    """What arrived instead (text; binary shown as hex), ``None`` when nothing arrived."""
    diff: str = ""
    """Unified diff of expected and arrived (volatile values masked), empty when not applicable."""
    session: int | None = None
    """The fake node's session number (from 1); ``None`` in the client player."""
    sender: str = "client"
    """Whose frame diverged: ``client`` (checked by the fake node) or ``node`` (checked by the player)."""

    @property
    def where(self) -> str:
        """``session 1, initiator connection 2, frame 37``."""
        parts = [f"session {self.session}"] if self.session is not None else []
        parts.append(f"{self.role} connection {self.nth}")
        if self.frame is not None:
            parts.append(f"frame {self.frame}")
        return ", ".join(parts)

    def format(self) -> str:
        """The report as text: where, why, expected frame, what arrived, the diff."""
        out = [f"divergence at {self.where}: {clip_text(self.reason)}"]
        expected, arrived = clip_text(self.expected), clip_text(self.arrived)
        if expected is not None:
            arrow = "--->" if self.sender == "client" else "<---"
            out.append(f"expected (frame {self.frame}, {self.role} {arrow} node, {self.method or 'answer'}):")
            out.extend("  " + line for line in expected.splitlines())
        out.append("arrived:" if arrived is not None else "arrived: nothing")
        if arrived is not None:
            out.extend("  " + line for line in arrived.splitlines())
        if self.diff:
            out.append(f"diff (ignored: {IGNORED}):")
            out.extend("  " + line for line in self.diff.splitlines())
        return terminal_safe("\n".join(out), keep_newlines=True)  # frames may hold terminal escapes (issue 16)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the JSON error sent to the client."""
        return {"session": self.session, "role": self.role, "connection": self.nth, "frame": self.frame,
                "reason": clip_text(self.reason), "method": self.method, "expected": clip_text(self.expected),
                "arrived": clip_text(self.arrived), "diff": self.diff, "ignored": IGNORED}

    def error_frame(self, protocol: str, request_id: Any = None, channel_id: str | None = None) -> str:
        """The report as the error message the fake node sends the client.

        JSON-RPC: an error in the node's own shape (channels WebSocket API, "Errors"; JSON-RPC 2.0 §5.1):
        ``{"error": {"code": DIVERGENCE_CODE, "message": "chanlog replay: divergence at <where>: <reason>",
        "data": [{"code": DIVERGENCE_CODE, "message": " (expected frame N: <method>)", "chanlog": <report>}]},
        "id": <the client's id or null>}``. Clients that show ``error.message`` followed by
        ``error.data[0].message`` (``@aeternity/aepp-sdk``) show where and why; the full report
        (:meth:`to_dict`) rides in ``data[0].chanlog``. Legacy: ``{action: error, payload: {reason,
        message, chanlog}}``."""
        message = f"chanlog replay: divergence at {self.where}: {clip_text(self.reason)}"
        if protocol == "legacy":
            payload = {"reason": "chanlog_divergence", "message": message, "chanlog": self.to_dict()}
            return json.dumps({"action": "error", "channel_id": channel_id, "payload": payload, "version": 1},
                              ensure_ascii=False)
        detail = f" (expected frame {self.frame}: {self.method or 'an answer'})" if self.frame is not None else ""
        data = [{"code": DIVERGENCE_CODE, "message": detail, "chanlog": self.to_dict()}]
        return json.dumps({"channel_id": channel_id,
                           "error": {"code": DIVERGENCE_CODE, "message": message, "data": data},
                           "id": request_id, "jsonrpc": "2.0", "version": 1}, ensure_ascii=False)


def divergence_of(data: Any) -> dict[str, Any] | None:
    """The report inside an error frame made by :meth:`Divergence.error_frame`, else ``None``."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and error.get("code") == DIVERGENCE_CODE and isinstance(error.get("data"), list):
        first = error["data"][0] if error["data"] else None
        report = first.get("chanlog") if isinstance(first, dict) else None
        return report if isinstance(report, dict) else None
    payload = data.get("payload")
    if data.get("action") == "error" and isinstance(payload, dict) and payload.get("reason") == "chanlog_divergence":
        chanlog = payload.get("chanlog")
        return chanlog if isinstance(chanlog, dict) else None
    return None
