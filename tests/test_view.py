"""The ``chanlog`` content view, loaded with the recorder through mitmproxy's ``taddons``, on real corpus frames."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from mitmproxy import contentviews
from mitmproxy.test import taddons, tflow
from mitmproxy.websocket import WebSocketMessage
from wsproto.frame_protocol import Opcode

from chanlog.codec.transactions import annotate
from chanlog.model import Frame
from chanlog.record.addon import ChannelRecorder
from chanlog.record.view import VIEW_NAME, ChannelViewAddon, render_frame
from chanlog.render import load_descriptions

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"
LOG = CORPUS / "json-rpc" / "sc_ws_basic_open_close.md"


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    if not LOG.is_file():
        pytest.skip(f"corpus not found at {CORPUS} (the shared corpus of the node's channel logs)")
    from chanlog.sources.nodelog import import_file

    return [f for _, f in import_file(LOG).frames()]


def pick(frames: list[Frame], test) -> Frame:
    return next(f for f in frames if test(f))


def channel_flow(role: str, path: str = "/channel"):
    f = tflow.twebsocketflow(messages=False)
    f.request.path = f"{path}?{urlencode({'initiator_id': 'ak_A', 'responder_id': 'ak_B', 'port': '1', 'role': role})}"
    f.websocket.messages = []
    f.websocket.close_code = None
    f.websocket.closed_by_client = None
    f.websocket.timestamp_end = None
    return f


def shown(message, flow) -> tuple[str, str]:
    """``(view chosen by 'auto', text)`` through mitmproxy's own content-view machinery (11 or 12)."""
    if hasattr(contentviews, "prettify_message"):  # mitmproxy 12
        result = contentviews.prettify_message(message, flow)
        return result.view_name or "", result.text
    description, lines, error = contentviews.get_message_content_view("auto", message, flow)
    assert error is None, error
    text = "\n".join("".join(text for _, text in line) for line in lines)
    return description, text


def deliver(rec: ChannelRecorder, addon: ChannelViewAddon, flow, frame: Frame) -> WebSocketMessage:
    """What mitmproxy does for one message: append it, run the hooks in addon order."""
    message = WebSocketMessage(Opcode.TEXT, frame.sender == "client", frame.wire().encode())
    flow.websocket.messages.append(message)
    rec.websocket_message(flow)
    return message


@pytest.fixture
def proxy(tmp_path):
    rec, addon = ChannelRecorder(), ChannelViewAddon()
    with taddons.context(rec, addon) as tctx:
        tctx.configure(rec, chanlog_dir=str(tmp_path))
        yield rec, addon
        rec.done()
        addon.done()


def test_sign_request_reply_and_error_on_real_frames(proxy, frames):
    rec, addon = proxy
    flow = channel_flow("initiator")
    rec.websocket_start(flow)
    addon.websocket_start(flow)
    session = rec.sessions[0].name
    table = load_descriptions()

    sign = pick(frames, lambda f: f.method == "channels.sign.initiator_sign")
    chosen, text = shown(deliver(rec, addon, flow, sign), flow)
    assert VIEW_NAME in chosen or "Aeternity channel" in chosen
    head = text.splitlines()[0]
    assert head.startswith("initiator <- node") and "channels.sign.initiator_sign" in head
    assert f"session {session}, connection 0" in head  # the recorder's pairing
    assert table["methods"]["channels.sign.initiator_sign"] in text
    tx = annotate(sign.payload["signed_tx"])
    inner = tx["transaction"]
    assert f"transaction: {inner.type} v{inner.version}" in text
    assert str(inner["initiator"]) in text
    assert '      "signed_tx": "tx_' in text  # pretty JSON, indented

    reply = pick(frames, lambda f: f.method == "channels.initiator_sign")
    _, text = shown(deliver(rec, addon, flow, reply), flow)
    assert text.startswith("initiator -> node  channels.initiator_sign")
    assert table["methods"]["channels.initiator_sign"] in text
    signature = str(annotate(reply.payload["signed_tx"])["signatures"][0])
    assert signature in text

    error = pick(frames, lambda f: f.rpc_kind == "error")
    _, text = shown(deliver(rec, addon, flow, error), flow)
    first = text.splitlines()[0]
    assert first.startswith("initiator <- node  error: " + error.obj["error"]["message"])
    assert error.obj["error"]["data"][0]["message"] in first
    assert table["methods"]["error"] in text
    assert flow.metadata["chanlog"] == {"session": session, "conn": 0, "role": "initiator"}


def test_role_from_url_without_recorder(frames):
    addon = ChannelViewAddon()
    with taddons.context(addon):
        flow = channel_flow("responder")
        addon.websocket_start(flow)
        update = pick(frames, lambda f: f.method == "channels.update" and f.sender == "node")
        message = WebSocketMessage(Opcode.TEXT, False, update.wire().encode())
        flow.websocket.messages.append(message)
        _, text = shown(message, flow)
        assert text.startswith("responder <- node  channels.update  (role from the URL")
        state = annotate(update.payload["state"])
        assert f"params.data.state = {update.payload['state'][:57]}..." in text
        assert f"transaction: {state['transaction'].label} (tag {state['transaction'].tag})" in text
        addon.done()


def test_other_flows_are_not_claimed(proxy):
    rec, addon = proxy
    body = b'{"jsonrpc": "2.0", "method": "channels.info", "params": {"data": {"event": "open"}}}'
    other = channel_flow("initiator", path="/other")
    message = WebSocketMessage(Opcode.TEXT, False, body)
    other.websocket.messages.append(message)
    chosen, text = shown(message, other)
    assert VIEW_NAME not in chosen and "initiator <- node" not in text
    http_flow = tflow.tflow(resp=True)
    http_flow.request.path = "/channel?role=initiator"
    http_flow.response.headers["content-type"] = "application/json"
    http_flow.response.content = body
    chosen, text = shown(http_flow.response, http_flow)
    assert VIEW_NAME not in chosen and "initiator <- node" not in text


def test_odd_frames_are_shown_not_dropped():
    from chanlog.record.view import MAX_VIEW_BYTES, Participant

    who = Participant("initiator")
    assert "verbatim" in render_frame(b"not json {", from_client=True, who=who)
    assert "base64" in render_frame(b"\xff\xfe\x00", from_client=False, who=who)
    deep = b"[" * 100_000 + b"]" * 100_000
    assert "verbatim" in render_frame(deep, from_client=False, who=who)
    big = b'"' + "é".encode() * MAX_VIEW_BYTES + b'"'  # cut inside a character
    text = render_frame(big, from_client=False, who=who)
    assert "not parsed as JSON" in text and "verbatim" in text and f"{len(big):,} bytes" in text
    bad_blob = b'{"jsonrpc":"2.0","method":"channels.update","params":{"signed_tx":"tx_+IgLAcC4g/iBMgGhAWSu"}}'
    assert "could not decode" in render_frame(bad_blob, from_client=True, who=who) or \
        "error" in render_frame(bad_blob, from_client=True, who=who)


def test_follows_the_recorders_chanlog_path(tmp_path):
    rec, addon = ChannelRecorder(), ChannelViewAddon()
    body = b'{"jsonrpc":"2.0","method":"channels.info","params":{"channel_id":null,"data":{"event":"open"}},"version":1}'
    with taddons.context(rec, addon) as tctx:
        tctx.configure(rec, chanlog_dir=str(tmp_path))
        tctx.configure(addon, chanlog_path="/api/ws")
        moved, old = channel_flow("initiator", path="/api/ws"), channel_flow("initiator")
        for flow in (moved, old):
            flow.websocket.messages.append(WebSocketMessage(Opcode.TEXT, False, body))
        chosen, text = shown(moved.websocket.messages[0], moved)
        assert text.startswith("initiator <- node  channels.info open")
        assert load_descriptions()["events"]["open"] in text
        chosen, text = shown(old.websocket.messages[0], old)
        assert VIEW_NAME not in chosen and not text.startswith("initiator")
        rec.done()
        addon.done()


def test_no_hook_per_message_and_the_pairing_shown_follows_a_merge(proxy) -> None:
    """mitmproxy calls every hook a script addon defines, for every frame: the view defines none per
    message (issue 14, the proxy's CPU per frame). The pairing shown stays current all the same: a
    connection whose session is merged into another shows the survivor's name and number."""
    import json

    rec, addon = proxy
    assert not hasattr(addon, "websocket_message")

    def info(event: str) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "method": "channels.info",
                           "params": {"channel_id": "ch_M", "data": {"event": event}}, "version": 1}).encode()

    flows = {}
    for role in ("initiator", "responder"):  # the initiator's whole connection first, as in a replayed log
        f = channel_flow(role)
        f.request.path = f"/channel?role={role}"  # no channel parameters to pair by
        rec.websocket_start(f)
        addon.websocket_start(f)
        flows[role] = f
        message = WebSocketMessage(Opcode.TEXT, False, info(role))
        if role == "initiator":
            first = rec.flows[f.id].session.name
            f.websocket.messages.append(message)
            rec.websocket_message(f)
            f.websocket.close_code, f.websocket.closed_by_client, f.websocket.timestamp_end = 1000, True, 946681300
            rec.websocket_end(f)
    assert flows["responder"].metadata["chanlog"]["session"] != first
    flows["responder"].websocket.messages.append(message)
    rec.websocket_message(flows["responder"])
    paired = rec.flows[flows["responder"].id]
    assert paired.session.name == first  # merged
    _, text = shown(message, flows["responder"])
    assert f"session {first}, connection {paired.conn}" in text.splitlines()[0]
    assert flows["responder"].metadata["chanlog"] == {"session": first, "conn": paired.conn, "role": "responder"}
