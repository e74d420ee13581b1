"""Pairing connections into channel sessions, and naming sessions: pure functions, no mitmproxy.

DESIGN.md, "Pairing participants into one session". Both clients connect to ``/channel?...&role=...`` with the
same channel parameters (:data:`PAIRING_PARAMS`); until a ``channel_id`` appears, connections pair by those;
a reconnect or reestablish (``existing_channel_id``) joins the session of its channel. The recorder
(:mod:`chanlog.record.addon`) keeps the sessions; these functions decide. Anything that produces WebSocket
connections (a proxy, a HAR file) can use them.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlsplit

#: URL query parameters that identify a channel being opened; both participants send the same values.
#: (``host``, ``slogan``, timeouts and other per-participant options may differ and are not used.)
PAIRING_PARAMS = ("initiator_id", "responder_id", "port")
#: Default of ``chanlog_name``: the file-name template of a session.
DEFAULT_NAME = "{started}_{label}_{port}"
#: The fields a ``chanlog_name`` template may use.
NAME_FIELDS = ("started", "date", "time", "seq", "role", "label", "port", "protocol",
               "initiator_id", "responder_id", "channel_id")
#: Longest file name stem the recorder writes.
MAX_NAME = 100
#: Folder below the transcript folder that holds the journals, and a journal's file name suffix.
JOURNAL_DIR = "journals"
JOURNAL_SUFFIX = ".jsonl"


def query_params(path: str) -> dict[str, str]:
    """The decoded query parameters of a request path or URL (last value wins for a repeated key)."""
    return dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))


def path_matches(request_path: str, channel_path: str) -> bool:
    """True when ``request_path`` (query included or not) is the channel endpoint ``channel_path``;
    a trailing ``/`` on either side is ignored."""
    path = urlsplit(request_path).path
    return (path.rstrip("/") or "/") == (channel_path.rstrip("/") or "/")


def ws_url(http_url: str) -> str:
    """The ``ws://``/``wss://`` spelling of an ``http://``/``https://`` URL (others unchanged)."""
    if http_url.startswith("https://"):
        return "wss://" + http_url[len("https://"):]
    if http_url.startswith("http://"):
        return "ws://" + http_url[len("http://"):]
    return http_url


def pairing_key(params: Mapping[str, str]) -> tuple[str, ...] | None:
    """The values of :data:`PAIRING_PARAMS` in a connection's URL, or ``None`` when it has none of them."""
    key = tuple(params.get(p, "") for p in PAIRING_PARAMS)
    return key if any(key) else None


def node_channel_id(content: bytes) -> str | None:
    """The ``channel_id`` a node message carries (``params.channel_id`` in JSON-RPC, top-level
    ``channel_id`` in results and legacy frames), or ``None``. Cheap for messages without one; a message
    nested too deeply to parse has none."""
    if b'"channel_id"' not in content:
        return None
    try:
        obj = json.loads(content)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    params = obj.get("params")
    if isinstance(params, dict) and isinstance(params.get("channel_id"), str):
        return params["channel_id"]
    value = obj.get("channel_id")
    return value if isinstance(value, str) and value else None


def safe_name(text: str) -> str:
    """A file name stem made from ``text``: only ``A-Za-z0-9._+=-`` kept (others become ``_``), no
    leading dots or dashes, at most :data:`MAX_NAME` characters; ``session`` when nothing is left.
    No URL or query value can make it a path outside the transcript folder."""
    name = re.sub(r"[^A-Za-z0-9._+=-]+", "_", text)
    name = re.sub(r"[._]*\.\.[._]*", "_", name)  # no "..", even inside a name
    name = re.sub(r"_{2,}", "_", name)
    name = name.lstrip(".-_")[:MAX_NAME].rstrip("._-")
    return name or "session"


def transcript_file_name(name: object, session: object = "session") -> str:
    """A safe transcript file name (``STEM.yaml``) from what a journal header says: ``name`` when it is
    already such a name, else one made from ``session`` with :func:`safe_name`. Never ``.``, ``..``, the
    journal folder or a journal file, whatever the header holds."""
    if isinstance(name, str) and name.endswith(".yaml") and safe_name(name[:-5]) == name[:-5]:
        return name
    return f"{safe_name(str(session))}.yaml"


def name_fields(params: Mapping[str, str], role: str, seq: int, when: float) -> dict[str, Any]:
    """The values a ``chanlog_name`` template can use (see :data:`NAME_FIELDS`) for a session whose
    first connection has URL ``params`` and ``role``, started at Unix time ``when``."""
    stamp = datetime.fromtimestamp(when, UTC)
    channel_id = params.get("existing_channel_id", "")
    label = (params.get("initiator_id") or channel_id or "session")[:12]
    return {
        "started": stamp.strftime("%Y%m%dT%H%M%SZ"), "date": stamp.strftime("%Y%m%d"),
        "time": stamp.strftime("%H%M%S"), "seq": seq, "role": role, "label": label,
        "port": params.get("port", ""), "protocol": params.get("protocol", ""),
        "initiator_id": params.get("initiator_id", ""), "responder_id": params.get("responder_id", ""),
        "channel_id": channel_id,
    }


def check_template(template: str) -> None:
    """Raise ``ValueError`` saying what is wrong when ``template`` is not a usable ``chanlog_name``."""
    if not template.strip():
        raise ValueError("the template is empty")
    for _, name, _, _ in string.Formatter().parse(template):
        if name is not None and name not in NAME_FIELDS:
            raise ValueError(f"unknown field {{{name}}}; fields: {', '.join(NAME_FIELDS)}")
    try:
        template.format(**name_fields({"port": "1", "initiator_id": "ak_x"}, "initiator", 1, 0.0))
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"cannot format {template!r}: {exc}") from None


def session_name(template: str, fields: Mapping[str, Any], taken: set[str], directory: Path) -> str:
    """A unique safe name for a new session: the template filled in, made safe, and suffixed ``-2``,
    ``-3``... while a name is in use (``taken``) or its transcript or journal exists in ``directory``."""
    base = safe_name(template.format(**fields))
    name, n = base, 1
    while (name in taken or (directory / f"{name}.yaml").exists()
           or (directory / JOURNAL_DIR / f"{name}{JOURNAL_SUFFIX}").exists()):
        n += 1
        name = f"{base}-{n}"
    return name


class Pairable(Protocol):
    """What pairing needs to know of a session (the recorder's ``Session`` has these attributes)."""

    key: tuple[str, ...] | None
    channel_id: str | None
    open: dict[str, int]
    roles: set[str]


S = TypeVar("S", bound=Pairable)


def join_running(running: Iterable[S], key: tuple[str, ...], role: str) -> S | None:
    """The running session a new connection of ``role`` with pairing key ``key`` joins (oldest first):
    one with that key lacking the role (the other participant's first connection), else one with that
    key that has no channel yet and no open connection of the role (a retry before the channel exists);
    ``None``: start a new session."""
    candidates = [s for s in running if s.key == key]
    for session in candidates:
        if role not in session.roles:
            return session
    for session in candidates:
        if session.channel_id is None and session.open.get(role, 0) == 0:
            return session
    return None


def should_merge(other_live: bool, learner_roles: set[str], other_roles: set[str]) -> bool:
    """Whether a session that just learned a ``channel_id`` another session already carries merges with
    it: yes when the other is running, or finished but lacking a participant the learner brings (a
    finished session that had both participants is continued only by a reestablish)."""
    return other_live or not learner_roles <= other_roles
