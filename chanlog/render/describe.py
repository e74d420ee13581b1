"""One-line descriptions of frames and the phases of a flow, from ``descriptions.yaml`` (overridable).

The table has four sections: ``events`` (a ``channels.info`` event), ``methods`` (a JSON-RPC method, or a
legacy ``action.tag`` / ``action``), ``errors`` (a JSON-RPC error code, or a legacy error's ``reason``) and
``phases`` (where a new phase of the flow starts: ``event:<name>`` or a method). Descriptions are Markdown
(chanlog's own words); a value taken from a frame is put in an escaped code span.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from chanlog.errors import RenderError
from chanlog.model import Frame
from chanlog.render.markdown import code

DESCRIPTIONS_FILE = "descriptions.yaml"


def load_descriptions(path: str | Path | None = None, template_dir: str | Path | None = None) -> dict[str, Any]:
    """The description table: packaged ``descriptions.yaml``, then ``template_dir/descriptions.yaml``,
    then ``path``, each overriding per key in ``events``, ``methods``, ``errors``, ``phases``.

    Raises :class:`RenderError` when a file is missing, not UTF-8 YAML, or not of that shape.
    """
    table = copy.deepcopy(_packaged_descriptions())
    extra: list[Path] = []
    if template_dir is not None and (Path(template_dir) / DESCRIPTIONS_FILE).is_file():
        extra.append(Path(template_dir) / DESCRIPTIONS_FILE)
    if path is not None:
        extra.append(Path(path))
    for p in extra:
        try:
            override = _descriptions_from(p.read_text(encoding="utf-8"), str(p))
        except OSError as exc:
            raise RenderError(f"cannot read descriptions: {exc.strerror}", str(p)) from None
        except UnicodeDecodeError as exc:
            raise RenderError(f"not UTF-8 (byte {exc.start})", str(p)) from None
        for section, entries in override.items():
            table.setdefault(section, {}).update(entries)
    return table


@functools.lru_cache(maxsize=1)
def _packaged_descriptions() -> dict[str, dict[str, Any]]:
    text = (resources.files("chanlog") / "templates" / DESCRIPTIONS_FILE).read_text(encoding="utf-8")
    return _descriptions_from(text, "chanlog/templates/" + DESCRIPTIONS_FILE)


def _descriptions_from(text: str, where: str) -> dict[str, dict[str, Any]]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise RenderError(f"YAML syntax: {exc.problem}", f"{where}:{line}") from None
    except yaml.YAMLError as exc:
        raise RenderError(f"YAML: {exc}", where) from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise RenderError("descriptions must be a mapping of sections (events, methods, errors, phases) to "
                          "mappings", where)
    return {str(k): {str(key): value for key, value in v.items()} for k, v in doc.items()}


def error_codes(frame: Frame) -> list[str]:
    """The error codes a frame carries, as table keys: a JSON-RPC error's ``code`` then each
    ``data[].code``; a legacy error's ``payload.reason``. Empty for other frames."""
    obj = frame.obj
    err = obj.get("error")
    if isinstance(err, dict):
        codes = [err.get("code")]
        data = err.get("data")
        if isinstance(data, list):
            codes += [d.get("code") for d in data if isinstance(d, dict)]
        return [str(c) for c in codes if isinstance(c, int | str) and not isinstance(c, bool)]
    if obj.get("action") == "error":
        payload = obj.get("payload")
        reason = payload.get("reason") if isinstance(payload, dict) else None
        return [reason] if isinstance(reason, str) else []
    return []


def is_error(frame: Frame) -> bool:
    """An error reply (JSON-RPC ``error``, legacy action ``error``) or a ``channels.error`` notification."""
    return frame.rpc_kind == "error" or frame.obj.get("method") == "channels.error"


@dataclass
class Describer:
    """One-line descriptions (Markdown) and phase names for frames, from the description table.

    JSON-RPC methods are looked up as is (``channels.sign.update``); legacy frames as
    ``<action>.<tag>`` then ``<action>``. Unknown ones get a generic sentence from their shape.
    """

    table: dict[str, Any]
    protocol: str = "json-rpc"

    def __call__(self, frame: Frame) -> str:
        """A one-line description of ``frame`` (never empty); an error also names each code's meaning."""
        events, methods = self.table.get("events", {}), self.table.get("methods", {})
        event = frame.info_event
        if event is not None:
            return str(events.get(event, f"Info event {code(event)}."))
        kind = frame.rpc_kind
        if kind == "error":
            return " ".join([str(methods.get("error", "The node answers with an error.")),
                             *(self.error(c) for c in error_codes(frame))])
        method = frame.method
        for key in method_keys(frame):
            if key in methods:
                return str(methods[key])
        if kind == "response":
            return str(methods.get("result", "The node answers the request."))
        if not frame.is_json:
            return "A frame that is not JSON (kept verbatim)."
        if method:
            who = "The client" if frame.sender == "client" else "The node"
            return f"{who} sends {code(method)}."
        return "A frame of unknown shape."

    def error(self, key: str) -> str:
        """``Code 1008: <meaning>.`` (or ``Reason ...``) for an error code or legacy reason."""
        errors = self.table.get("errors", {})
        what = "Code" if key.lstrip("-").isdigit() else "Reason"
        return f"{what} {code(key)}: {errors.get(key, 'not in the descriptions table.')}"

    def phase(self, frame: Frame) -> str | None:
        """The phase this frame starts (``Opening``, ``Closing``...), or ``None`` when it continues the
        current one. Looked up by info event, then by method, in the ``phases`` table."""
        phases = self.table.get("phases", {})
        event = frame.info_event
        if event is not None and f"event:{event}" in phases:
            return str(phases[f"event:{event}"])
        for key in method_keys(frame):
            if key in phases:
                return str(phases[key])
        return None


def method_keys(frame: Frame) -> list[str]:
    """Table keys of a frame's method: JSON-RPC ``method``; legacy ``action.tag`` then ``action``."""
    obj = frame.obj
    if "method" in obj:
        return [str(obj["method"])]
    if "action" in obj:
        action = str(obj["action"])
        tag = obj.get("tag")
        keys = [f"{action}.{tag}"] if tag is not None else []
        return keys + [action]
    return []


#: Reasons (``error.data`` entries) an error arrow names; more are counted (``+2 more``). The node puts one
#: ``{code, message}`` entry per reason in ``data`` (aesc_ws ``sc_ws_api_jsonrpc``: ``error_data``), so three
#: covers every error it sends; a hostile list of any length costs one line.
MAX_LABEL_REASONS = 3


def error_label(err: dict[str, Any]) -> str:
    """A JSON-RPC error's arrow text (unescaped): ``error 3 Rejected: 1008 Not a number``, i.e. the
    ``error.code`` and ``error.message``, then each ``data[]`` reason's code and message (at most
    :data:`MAX_LABEL_REASONS`, the rest counted). Fields of other types are shown as text."""
    head = " ".join(str(err[k]) for k in ("code", "message") if err.get(k) is not None)
    data = err.get("data")
    reasons: list[str] = []
    if isinstance(data, list):
        for item in data[:MAX_LABEL_REASONS]:
            if isinstance(item, dict):
                reasons.append(" ".join(str(item[k]) for k in ("code", "message") if item.get(k) is not None))
            elif item is not None:
                reasons.append(str(item))
        if len(data) > MAX_LABEL_REASONS:
            reasons.append(f"+{len(data) - MAX_LABEL_REASONS} more")
    elif isinstance(data, str | int) and not isinstance(data, bool):
        reasons.append(str(data))
    text = f"error {head}" if head else "error"
    reasons = [r for r in reasons if r]
    return f"{text}: {', '.join(reasons)}" if reasons else text


def arrow_label(frame: Frame) -> str:
    """The short label of a frame in the diagram: method (and info event), ``result``, or ``error`` with
    its code and reasons (:func:`error_label`; a legacy error's ``reason``)."""
    event = frame.info_event
    method = frame.method
    if event is not None:
        return f"{method}: {event}"
    kind = frame.rpc_kind
    if kind == "error":  # (a legacy error's method is its action, "error": the reason says more)
        err = frame.obj.get("error")
        if isinstance(err, dict) and ("message" in err or "code" in err):
            return error_label(err)
        payload = frame.obj.get("payload")
        if isinstance(payload, dict) and "reason" in payload:
            return f"error: {payload['reason']}"
        return "error"
    if method:
        return str(method)
    if kind == "response":
        result = frame.obj.get("result")
        return f"result: {result}" if isinstance(result, str | int | bool) else "result"
    return "frame"
