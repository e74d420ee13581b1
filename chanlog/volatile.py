"""What may differ between two recordings of the same flow: one definition for diff and replay.

Volatile values are JSON-RPC ``id`` values, ``fsm_id`` (and ``existing_fsm_id``), the signatures of a
``signed_tx`` (the transaction inside is compared instead), event times and the node's address in the
open URLs. :func:`normalize` replaces them in a frame's parsed JSON so that plain equality then
compares what must be equal; :func:`normalize_url` does the same for an open URL.
"""

from __future__ import annotations

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
        from chanlog.decode import strip_signatures
    except ImportError:  # decoder not available: compare blobs as they are
        return None
    return strip_signatures(blob)


def normalize_url(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``(path, sorted query pairs)`` of an open URL without scheme, host, port and volatile params."""
    parts = urlsplit(url)
    query = tuple(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                         if k not in VOLATILE_URL_PARAMS))
    return parts.path, query


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
