"""A mitmproxy content view for channel frames: participant, pretty JSON, description, decoded blobs.

In mitmweb and the mitmproxy console, a WebSocket message on the channel path is shown by the view
``chanlog`` (chosen automatically for those frames, never for other traffic)::

    initiator <- node  channels.sign.initiator_sign  (session 20261201T221501Z_ak_mLjWgLbap_13179, connection 0)
    The node asks the initiator to sign the channel_create_tx.

    {
      "jsonrpc": "2.0",
      ...
    }

    params.data.signed_tx = tx_+IgLAcC4g/iBMgGh…
    signed_tx v1 (tag 11)
      ...

* The participant (``initiator``/``responder``) comes from the recorder's pairing
  (:class:`chanlog.record.addon.ChannelRecorder`: session and connection number) when the recorder is
  loaded, else from the URL's ``role`` parameter.
* The one-line description is the sentence the rendered docs use (``templates/descriptions.yaml``,
  :class:`chanlog.render.Describer`).
* Every encoded object in the frame (``tx_``, ``ss_``, ``pi_``, ``cs_``, and contract ``cb_`` code) is
  decoded as a tree (:func:`chanlog.codec.transactions.format_tree`); one that does not decode shows why.

The view works with both content-view APIs of mitmproxy: ``Contentview`` (mitmproxy 12:
``prettify(data, metadata)``, ``render_priority(data, metadata)``) and ``View`` (mitmproxy 11:
``__call__(data, **metadata)`` returning lines). :class:`ChannelViewAddon` registers it (``load``) and
removes it (``done``); ``addons/channel.py`` loads it beside the recorder, ``addons/channel_view.py``
alone (``mitmweb -s addons/channel_view.py``). The channel path is the
``chanlog_path`` option when the recorder declares it, else ``/channel``.

Untrusted input: frames larger than :data:`MAX_VIEW_BYTES` are shown only in part, at most
:data:`MAX_BLOBS` objects are decoded per frame, and JSON nested deeper than Python can parse is shown
verbatim. mitmproxy escapes control characters of the output itself.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mitmproxy import contentviews, ctx, http

from chanlog.model import ROLES, Frame

#: The view's name (the ``View`` menu of mitmweb, ``:set`` of the console, the web API's URLs).
VIEW_NAME = "chanlog"
#: ``render_priority`` for a channel frame: above mitmproxy's own views (JSON is 1 for JSON content).
PRIORITY = 2.0
#: Largest frame shown in full (bytes); a larger one is shown as its first bytes, with a note.
MAX_VIEW_BYTES = 1 << 20
#: Most encoded objects decoded in one frame.
MAX_BLOBS = 64
#: Key in ``flow.metadata`` where :class:`ChannelViewAddon` keeps the recorder's pairing of a flow.
METADATA_KEY = "chanlog"
#: The channel path when no ``chanlog_path`` option exists.
DEFAULT_PATH = "/channel"


@dataclass(frozen=True)
class Participant:
    """Who sent or received a frame: the role, and where the recorder put the connection."""

    role: str | None
    """``initiator`` or ``responder``; ``None`` when neither the recorder nor the URL says."""
    session: str | None = None
    """The recorder's session name (its transcript's file stem), when paired by the recorder."""
    conn: int | None = None
    """The connection's number within that session."""

    def describe(self) -> str:
        """``(session NAME, connection N)`` or ``(role from the URL)`` or ``(role unknown)``."""
        if self.session is not None:
            return f"(session {self.session}, connection {self.conn})"
        if self.role is not None:
            return "(role from the URL; the recorder has not paired this connection)"
        return "(no role=initiator|responder in the URL)"


# -- pure functions -----------------------------------------------------------------------------


def on_channel_path(flow: Any, channel_path: str) -> bool:
    """True when ``flow`` is a WebSocket flow whose request path (query aside) is ``channel_path``
    (a trailing ``/`` on either side ignored, as the recorder does)."""
    if not isinstance(flow, http.HTTPFlow) or flow.websocket is None:
        return False
    path = urlsplit(flow.request.path).path
    return (path.rstrip("/") or "/") == (channel_path.rstrip("/") or "/")


def participant(flow: http.HTTPFlow) -> Participant:
    """The participant of a channel flow: the recorder's pairing kept in ``flow.metadata`` (see
    :class:`ChannelViewAddon`, brought up to date from the live recorder when it still records the
    flow), else the ``role`` query parameter of its URL."""
    note_pairing(flow)
    paired = flow.metadata.get(METADATA_KEY)
    if isinstance(paired, dict) and paired.get("role") in ROLES:
        conn = paired.get("conn")
        return Participant(paired["role"], str(paired.get("session")), conn if isinstance(conn, int) else None)
    role = dict(parse_qsl(urlsplit(flow.request.path).query)).get("role")
    return Participant(role if role in ROLES else None)


def find_blobs(data: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """``(path, blob)`` for every string in parsed JSON ``data`` that carries an encoded object
    (:func:`chanlog.codec.transactions.is_decodable_blob`), in document order; paths read ``params.data.signed_tx``,
    ``result[0].tx``. Iterative (no recursion limit)."""
    from chanlog.codec.transactions import is_decodable_blob

    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict):
            stack.extend(reversed([(f"{where}.{k}" if where else str(k), v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{where}[{i}]", v) for i, v in enumerate(value)]))
        elif isinstance(value, str) and is_decodable_blob(value):
            yield where, value


def decoded_tree(blob: str) -> str:
    """The decoded tree of one blob (:func:`chanlog.codec.transactions.format_tree`); ``could not decode: ...`` when it
    does not decode. Never raises."""
    from chanlog.codec.transactions import annotate, format_tree

    try:
        return format_tree(annotate(blob)).rstrip("\n")
    except Exception as exc:  # noqa: BLE001 - the view must show whatever a frame holds
        return f"could not decode: {exc}"


def describe(frame: Frame) -> str:
    """The one-line description the rendered docs give this frame (packaged ``descriptions.yaml``)."""
    return _describer()(frame)


@functools.lru_cache(maxsize=1)
def _describer() -> Any:
    from chanlog.render import Describer, load_descriptions

    return Describer(load_descriptions())


def error_summary(obj: dict[str, Any]) -> str:
    """``Rejected (1008 Not a number)``: a JSON-RPC error's message and the codes and messages of its
    ``data`` entries; a legacy error's ``payload`` reason. Short (at most 200 characters)."""
    error = obj.get("error")
    if isinstance(error, dict):
        text = str(error.get("message", ""))
        details = [f"{d.get('code', '')} {d.get('message', '')}".strip()
                   for d in error.get("data") or [] if isinstance(d, dict)] if isinstance(error.get("data"), list) else []
        if details:
            text += f" ({'; '.join(details)})"
    else:
        payload = obj.get("payload")
        text = str(payload.get("reason", payload) if isinstance(payload, dict) else payload or error or "")
    return text[:200]


def render_frame(content: bytes, *, from_client: bool, who: Participant) -> str:
    """The view's text for one message ``content`` (bytes as on the wire) sent by the client
    (``from_client``) or by the node, on a connection of participant ``who``.

    Lines: a header (role, direction, method or event, pairing), the description, the pretty JSON (indent
    2; the text verbatim when it is not JSON; base64 for binary), then each encoded object's path and
    decoded tree. Never raises for any ``content``.
    """
    role = who.role or "unknown participant"
    arrow = f"{role} -> node" if from_client else f"{role} <- node"
    truncated = len(content) > MAX_VIEW_BYTES
    shown = content[:MAX_VIEW_BYTES] if truncated else content
    try:  # a frame cut at MAX_VIEW_BYTES may end inside a character
        text: str | None = shown.decode("utf-8", "replace" if truncated else "strict")
    except UnicodeDecodeError:
        text = None
    frame: Frame | None = None
    data: Any = None
    if text is not None and not truncated:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            data = None
        else:
            frame = Frame(role=who.role or "initiator", conn=who.conn or 0,
                          sender="client" if from_client else "node", data=data, fmt="compact")
    label = ""
    if frame is not None:
        label = frame.info_event and f"channels.info {frame.info_event}" or frame.method or frame.rpc_kind
        if frame.rpc_kind == "error":
            label = f"error: {error_summary(frame.obj)}"
    lines = ["  ".join(part for part in (arrow, label, who.describe()) if part)]
    if frame is not None:
        lines.append(describe(frame))
        lines += ["", json.dumps(data, indent=2, ensure_ascii=False)]
    elif text is None:
        lines += ["A binary frame (not UTF-8 text), in base64:", "", base64.b64encode(shown).decode("ascii")]
    else:
        lines += ["A frame that is not JSON, shown verbatim:", "", text]
    if truncated:
        lines += ["", f"... shown: the first {MAX_VIEW_BYTES:,} of {len(content):,} bytes "
                      f"(chanlog.record.view.MAX_VIEW_BYTES); not parsed as JSON"]
    if frame is not None:
        for n, (where, blob) in enumerate(find_blobs(data)):
            if n == MAX_BLOBS:
                lines += ["", f"... more encoded objects not decoded here (limit {MAX_BLOBS}); "
                              "chanlog decode decodes any of them"]
                break
            short = blob if len(blob) <= 60 else blob[:57] + "..."
            lines += ["", f"{where} = {short}", decoded_tree(blob)]
    return "\n".join(lines) + "\n"


# -- the view, for both APIs -------------------------------------------------------------------


class _ChannelViewCore:
    """What both API flavours share: the channel path and the decision which frames are ours."""

    name = VIEW_NAME

    def __init__(self, channel_path: str = DEFAULT_PATH) -> None:
        self.channel_path = channel_path
        """Request path whose WebSocket messages the view claims."""

    def claims(self, flow: Any, message: Any) -> bool:
        """True for a WebSocket message of a flow on the channel path."""
        return message is not None and on_channel_path(flow, self.channel_path)

    def text(self, data: bytes, flow: Any, message: Any) -> str:
        """The view's text; for a message that is not a channel frame, the pretty JSON or the text alone."""
        if flow is not None and message is not None and on_channel_path(flow, self.channel_path):
            return render_frame(data, from_client=bool(message.from_client), who=participant(flow))
        return render_frame(data, from_client=bool(getattr(message, "from_client", False)),
                            who=Participant(None))


if hasattr(contentviews, "Contentview"):  # mitmproxy 12 and later

    class ChannelContentview(_ChannelViewCore, contentviews.Contentview):  # type: ignore[misc, name-defined]
        """The ``chanlog`` view for mitmproxy's ``Contentview`` API (mitmproxy 12)."""

        name = VIEW_NAME
        syntax_highlight = "none"

        def prettify(self, data: bytes, metadata: Any) -> str:
            return self.text(data, metadata.flow, getattr(metadata, "websocket_message", None))

        def render_priority(self, data: bytes, metadata: Any) -> float:
            return PRIORITY if self.claims(metadata.flow, getattr(metadata, "websocket_message", None)) else -1

    ChannelView: type = ChannelContentview

else:  # mitmproxy 11: the View API

    class ChannelLegacyView(_ChannelViewCore, contentviews.View):  # type: ignore[misc]
        """The ``chanlog`` view for mitmproxy's ``View`` API (mitmproxy 11)."""

        name = VIEW_NAME

        def __call__(self, data: bytes, *, flow: Any = None, websocket_message: Any = None,
                     **unknown_metadata: Any) -> tuple[str, Iterator[list[tuple[str, str]]]]:
            text = self.text(data, flow, websocket_message)
            return "Aeternity channel frame", contentviews.format_text(text)

        def render_priority(self, data: bytes, *, flow: Any = None, websocket_message: Any = None,
                            **unknown_metadata: Any) -> float:
            return PRIORITY if self.claims(flow, websocket_message) else -1

    ChannelView = ChannelLegacyView


def view_text(data: bytes, flow: Any, message: Any) -> str:
    """The ``chanlog`` view's text for ``message`` of ``flow``, as mitmproxy would show it (any version):
    what tests and scripts call instead of mitmproxy's own, version-specific, rendering functions."""
    return ChannelView().text(data, flow, message)


# -- the addon ---------------------------------------------------------------------------------


class ChannelViewAddon:
    """Registers the ``chanlog`` view while loaded and notes the recorder's pairing on each channel flow.

    In ``websocket_start`` (after the recorder's, which ``addons/channel.py`` lists first) and on every
    message, the recorder's session name, connection number and role of the flow go into
    ``flow.metadata["chanlog"]``, so the view (and saved flows) show them even after the connection ended.
    """

    def __init__(self) -> None:
        self.view = ChannelView()
        """The registered view."""
        self.registered = False
        """True while the view is in mitmproxy's registry."""

    def load(self, loader: Any) -> None:
        """Register the view: mitmproxy 12 replaces a view of the same name; mitmproxy 11 refuses a
        duplicate, so a view registered earlier (another copy of the addon) is replaced here."""
        if not hasattr(contentviews, "registry"):  # mitmproxy 11
            old = contentviews.get(VIEW_NAME)
            if old is not None:
                contentviews.remove(old)
        contentviews.add(self.view)
        self.registered = True

    def configure(self, updated: set[str]) -> None:
        """Follow ``chanlog_path`` when the recorder declares it."""
        if "chanlog_path" in updated and hasattr(ctx.options, "chanlog_path"):
            self.view.channel_path = ctx.options.chanlog_path

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        """Note the recorder's pairing of a new channel connection. (No hook per message: mitmproxy's
        call of a script's hook costs the proxy CPU on every frame (issue 14); a frame being shown brings
        the pairing up to date instead, :func:`participant`.)"""
        if on_channel_path(flow, self.view.channel_path):
            note_pairing(flow)

    def done(self) -> None:
        """Remove the view again (a reloaded script registers a fresh one)."""
        if self.registered and not hasattr(contentviews, "registry"):  # mitmproxy 12 cannot remove views
            try:
                contentviews.remove(self.view)
            except ValueError:  # already gone
                pass
        self.registered = False


def note_pairing(flow: http.HTTPFlow) -> None:
    """Put the live recorder's pairing of ``flow`` (session name, connection number, role) in
    ``flow.metadata``; nothing when no recorder records it (any more)."""
    recorder = _recorder()
    flows = getattr(recorder, "flows", None)
    conn = flows.get(flow.id) if isinstance(flows, dict) else None
    if conn is not None:
        paired = {"session": conn.session.name, "conn": conn.conn, "role": conn.role}
        if flow.metadata.get(METADATA_KEY) != paired:
            flow.metadata[METADATA_KEY] = paired


def _recorder() -> Any:
    """The loaded :class:`chanlog.record.addon.ChannelRecorder`, if any."""
    try:
        return ctx.master.addons.get("channelrecorder")
    except AttributeError:  # no master (outside a proxy)
        return None

