"""Generated sessions for the site's layout tests: a long one (any number of off-chain updates, with error
replies among them), not taken from the corpus, and its channel id hidden behind the placeholder older logs
carry in their first frames (2018 logs: ``undefined``)."""

from __future__ import annotations

import json

from chanlog.model import Frame, Open, Transcript

#: A channel id of the node's shape (``ch_`` + base58check); the tests only need the prefix to be real.
CHANNEL = "ch_2TfP6QrnYEk7f3hRSnDfxHhGRmdH1AvTnxdwM15EYuWpyqryc2"
#: An error reply of the node's shape (sc_ws_api_jsonrpc: code 3 "Rejected", one data reason).
REJECTED = {"code": 3, "message": "Rejected", "data": [{"code": 1008, "message": "Not a number"}]}


def _frame(obj: dict, role: str, sender: str) -> Frame:
    return Frame.from_wire(json.dumps(obj, indent=2), role=role, conn=0 if role == "initiator" else 1,
                           sender=sender)


def long_session(frames: int, name: str = "long", first_id: object = "undefined", error_every: int = 0) -> Transcript:
    """A session of about ``frames`` frames: two opens, ``fsm_up`` on both sides carrying ``first_id`` as
    their channel id (``undefined``, as 2018 logs do), ``channel_open`` with the real :data:`CHANNEL`, then
    off-chain updates (request, sign request, signed reply, update info) until ``frames`` frames are written;
    every ``error_every``-th update (0: none) is answered by :data:`REJECTED` instead."""
    events: list = [Open(role="initiator", conn=0, url="ws://127.0.0.1:3014/channel?role=initiator"),
                    Open(role="responder", conn=1, url="ws://127.0.0.1:3014/channel?role=responder")]
    for role in ("initiator", "responder"):
        events.append(_frame({"jsonrpc": "2.0", "method": "channels.info", "version": 1,
                              "params": {"channel_id": first_id, "data": {"event": "fsm_up"}}}, role, "node"))
    for role in ("initiator", "responder"):
        events.append(_frame({"jsonrpc": "2.0", "method": "channels.info", "version": 1,
                              "params": {"channel_id": CHANNEL, "data": {"event": "open"}}}, role, "node"))
    n = 0
    while len(events) - 2 < frames:
        n += 1
        events.append(_frame({"jsonrpc": "2.0", "id": n, "method": "channels.update.new",
                              "params": {"from": "ak_a", "to": "ak_b", "amount": n}}, "initiator", "client"))
        if error_every and n % error_every == 0:
            events.append(_frame({"jsonrpc": "2.0", "id": n, "error": REJECTED, "version": 1}, "initiator", "node"))
            continue
        events.append(_frame({"jsonrpc": "2.0", "method": "channels.sign.update_ack", "version": 1,
                              "params": {"channel_id": CHANNEL, "data": {"updates": []}}}, "responder", "node"))
        events.append(_frame({"jsonrpc": "2.0", "id": n, "method": "channels.update_ack",
                              "params": {"round": n + 1}}, "responder", "client"))
        events.append(_frame({"jsonrpc": "2.0", "method": "channels.info", "version": 1,
                              "params": {"channel_id": CHANNEL, "data": {"event": "update"}}}, "initiator", "node"))
    return Transcript(name=name, events=events)
