"""What may differ between two recordings of the same flow: one definition for diff and replay.

Volatile values are JSON-RPC ``id`` values, ``fsm_id`` (and ``existing_fsm_id``), the signatures of a
``signed_tx`` (the transaction inside is compared instead), event times and the node's address in the
open URLs. :func:`normalize` replaces them in a frame's parsed JSON so that plain equality then
compares what must be equal; :func:`normalize_url` does the same for an open URL.

Positions can be volatile too: where a pong falls among the node's other frames on a connection
(:func:`pong_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: JSON object keys whose values are volatile wherever they appear.
VOLATILE_KEYS = frozenset({"id", "fsm_id", "existing_fsm_id"})
#: URL query parameters that are volatile.
VOLATILE_URL_PARAMS = frozenset({"existing_fsm_id", "host"})
#: What a volatile value is replaced with.
MASK = "<volatile>"


def normalize(data: Any, *, unsign: bool = True) -> Any:
    """A copy of parsed JSON ``data`` with volatile values masked.

    Keys in :data:`VOLATILE_KEYS` get :data:`MASK` (a JSON-RPC ``id`` keeps its JSON type name, so a
    string id and a number id still differ: ``<volatile:int>``). With ``unsign``, every ``tx_`` string
    that decodes as a ``signed_tx`` is replaced by ``"<unsigned:" + hex of its inner transaction + ">"``,
    so two signings of the same transaction compare equal (serializations.md, signed_tx v1).
    """
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in VOLATILE_KEYS and value is not None:
                out[key] = f"{MASK[:-1]}:{_json_type(value)}>" if key == "id" else MASK
            else:
                out[key] = normalize(value, unsign=unsign)
        return out
    if isinstance(data, list):
        return [normalize(v, unsign=unsign) for v in data]
    if unsign and isinstance(data, str) and data.startswith("tx_"):
        inner = unsigned_tx(data)
        if inner is not None:
            return f"<unsigned:{inner.hex()}>"
    return data


def unsigned_tx(blob: str) -> bytes | None:
    """The serialized inner transaction of a ``signed_tx`` blob (``tx_...``), or ``None`` when the blob
    is not a decodable ``signed_tx``."""
    try:
        from chanlog.codec.transactions import strip_signatures
    except ImportError:  # decoder not available: compare blobs as they are
        return None
    return strip_signatures(blob)


def normalize_url(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``(path, sorted query pairs)`` of an open URL without scheme, host, port and volatile params."""
    parts = urlsplit(url)
    query = tuple(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                         if k not in VOLATILE_URL_PARAMS))
    return parts.path, query


def is_ping(data: Any) -> bool:
    """True for a client ping: ``channels.system`` with ``params.action == "ping"`` (legacy
    ``{action: system, tag: ping}`` or ``{action: ping}``)."""
    if not isinstance(data, dict):
        return False
    if data.get("method") == "channels.system":
        params = data.get("params")
        return isinstance(params, dict) and params.get("action") == "ping"
    if "method" in data:
        return False
    return data.get("action") == "ping" or (data.get("action") == "system" and data.get("tag") == "ping")


def is_pong(data: Any) -> bool:
    """True for the node's answer to a ping (``channels.system.pong``; legacy ``tag: pong``)."""
    if not isinstance(data, dict):
        return False
    if data.get("method") == "channels.system.pong":
        return True
    return "method" not in data and (data.get("action") == "pong"
                                     or (data.get("action") == "system" and data.get("tag") == "pong"))


def pong_order(frames: Sequence[tuple[str, Any]]) -> list[int]:
    """The order in which the frames of one connection are compared, as indices into ``frames``
    (``(sender, parsed JSON or None)`` per frame, in recorded order): each node pong is moved to right
    after the client ping it answers (the n-th pong after the n-th ping); every other frame keeps its
    place, and a pong with no ping before it stays where it is.

    A pong's position among the node's other frames is volatile: the node answers a ``channels.system``
    ping when its connection process gets to it, so the pong may come before or after node frames
    already on their way (a sign request, an info event), while it always comes after its ping; the
    fake node answers at once (channels WebSocket API, "System messages"; :mod:`chanlog.replay`).
    """
    groups: list[list[int]] = []
    waiting: list[list[int]] = []  # groups of pings not yet answered, oldest first
    for index, (sender, data) in enumerate(frames):
        group = [index]
        if sender == "node" and is_pong(data) and waiting:
            waiting.pop(0).append(index)
            continue
        groups.append(group)
        if sender == "client" and is_ping(data):
            waiting.append(group)
    return [index for group in groups for index in group]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__
