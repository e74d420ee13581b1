"""The fake node: real WebSocket clients (websockets) against FakeNode on loopback, and the CLI process."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import subprocess
import sys

import pytest
import rlp
from conftest import EXAMPLE, REPO
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chanlog.codec.encoding import checksum
from chanlog.model import Close, Frame, Open, Transcript
from chanlog.replay import CLIENT, NODE, FakeNode, Script, load_transcript, serve_in_thread
from chanlog.replay.matchers import DIVERGENCE_CODE, Mode, divergence_of
from chanlog.transcript import dump, load

URL_Q = "ws://localhost:3014/channel?protocol=json-rpc&role="


def run(coro):
    """Run a test coroutine, bounded so that a hang fails instead of blocking the suite."""
    return asyncio.run(asyncio.wait_for(coro, 60))


async def recv(ws, timeout: float = 10.0):
    """The next message, parsed as JSON."""
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, method: str | None = None, *, result: bool = False):
    """Messages up to and including the first with ``method`` (or the first response)."""
    got = []
    while True:
        msg = await recv(ws)
        got.append(msg)
        if (method is not None and msg.get("method") == method) or (result and ("result" in msg or "error" in msg)):
            return got


def example() -> Transcript:
    return load(EXAMPLE)


def client_frame(transcript: Transcript, role: str, method: str) -> tuple[int, Frame]:
    for number, frame in transcript.frames():
        if frame.role == role and frame.sender == "client" and frame.method == method:
            return number, frame
    raise LookupError(method)


def node_frames(transcript: Transcript, role: str) -> list[dict]:
    return [f.data for _, f in transcript.frames() if f.role == role and f.sender == "node"]


def ev(cls, role, conn, **kw):
    return cls(role=role, conn=conn, **kw)


def node(role, conn, data):
    return Frame(role=role, conn=conn, sender="node", data=data, fmt="compact")


def client(role, conn, data):
    return Frame(role=role, conn=conn, sender="client", data=data, fmt="compact")


def info(event, channel_id=None):
    return {"jsonrpc": "2.0", "method": "channels.info", "params": {"channel_id": channel_id, "data": {"event": event}},
            "version": 1}


def resign(blob: str, *, inner: bytes | None = None, signature: bytes | None = None) -> str:
    """A ``signed_tx`` blob with its inner transaction and/or its (single) signature replaced."""
    payload = base64.b64decode(blob[3:])[:-4]
    tag, version, signatures, tx = rlp.decode(payload)
    if signature is not None:
        signatures = [signature]
    new = rlp.encode([tag, version, signatures, inner if inner is not None else tx])
    return "tx_" + base64.b64encode(new + checksum(new)).decode()


# -- the script -----------------------------------------------------------------------------------------------


def test_script_cuts_the_example_into_connections_with_cross_role_dependencies():
    transcript = example()
    script = Script.build(transcript)
    assert [len(script.roles[r]) for r in ("initiator", "responder")] == [1, 1]
    assert script.path == "/channel"
    steps = {s.number: s for s in script.steps.values() if s.number}
    assert sum(1 for _ in transcript.frames()) == len(steps) == script.frame_count
    sign_number, _ = client_frame(transcript, "initiator", "channels.initiator_sign")
    sign = steps[sign_number]
    # the responder hears of the channel only after the initiator signed
    funding_created = next(s for s in script.steps.values()
                           if s.kind == NODE and s.role == "responder" and s.event.info_event == "funding_created")
    assert funding_created.client_deps == (sign.index,)
    # the initiator's response answers its own request, matched by the recorded id
    response = steps[sign_number + 1]
    assert response.kind == NODE and response.reply_to == sign.index
    # skippable slots and their answers are linked for lenient mode
    balances_number, _ = client_frame(transcript, "initiator", "channels.get.balances")
    assert steps[balances_number].optional and steps[balances_number + 1].link == steps[balances_number].index
    message_number, _ = client_frame(transcript, "initiator", "channels.message")
    delivery = next(s for s in script.steps.values() if s.kind == NODE and s.role == "responder"
                    and s.method == "channels.message")
    assert delivery.link == steps[message_number].index


# -- JSON-RPC semantics --------------------------------------------------------------------------------------------


def test_response_carries_the_clients_own_id_with_its_json_type():
    transcript = example()
    _, sign = client_frame(transcript, "initiator", "channels.initiator_sign")

    async def scenario():
        async with FakeNode(transcript, grace=0.1, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                await recv_until(ws, "channels.sign.initiator_sign")
                await ws.send(json.dumps({**sign.data, "id": "my-id-1"}))
                response = (await recv_until(ws, result=True))[-1]
                await ws.send(json.dumps({**sign.data, "id": 7.5}))  # not in the script: a divergence
                error = (await recv_until(ws, result=True))[-1]
            return response, error

    response, error = run(scenario())
    assert response["id"] == "my-id-1" and response["result"] == "ok"
    assert error["id"] == 7.5 and error["error"]["code"] == DIVERGENCE_CODE
    # the node's own error shape (data: [{code, message}]): clients that print message + data[0].message
    # (the JavaScript SDK) show where and why; the full report rides in data[0].chanlog
    (detail,) = error["error"]["data"]
    assert detail["code"] == DIVERGENCE_CODE and isinstance(detail["message"], str)
    assert error["error"]["message"].startswith("chanlog replay: divergence at session 1, initiator connection 1")
    assert divergence_of(error) == detail["chanlog"] and detail["chanlog"]["role"] == "initiator"


def test_no_response_when_the_client_sent_a_notification():
    transcript = example()
    _, sign = client_frame(transcript, "initiator", "channels.initiator_sign")
    notification = {k: v for k, v in sign.data.items() if k != "id"}
    expected_next = node_frames(transcript, "initiator")

    async def scenario():
        async with FakeNode(transcript, grace=0.1, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                before = await recv_until(ws, "channels.sign.initiator_sign")
                await ws.send(json.dumps(notification))
                after = await recv(ws)
            return before, after, fake

    before, after, fake = run(scenario())
    # the recorded response (node frame after the sign request) is skipped: the next one comes
    assert before == expected_next[:len(before)]
    assert "result" in expected_next[len(before)]
    assert after == expected_next[len(before) + 1]
    assert fake.reports[0].withheld == 1


def test_error_with_null_id_goes_out_as_recorded_and_non_json_frames_are_never_sent():
    error = {"channel_id": None, "error": {"code": 3, "data": [{"code": 1016, "message": "Invalid fsm id"}],
                                           "message": "Rejected", "request": {}}, "id": None, "jsonrpc": "2.0",
             "version": 1}
    transcript = Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        Frame(role="initiator", conn=0, sender="node", text="not json {"),
        Frame(role="initiator", conn=0, sender="node", binary=b"\x00\x01"),
        node("initiator", 0, error),
        ev(Close, "initiator", 0, closed_by="client"),
    ])

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                first = await asyncio.wait_for(ws.recv(), 5)
            await fake.wait(5)
            return first, fake.reports[0]

    first, report = run(scenario())
    assert isinstance(first, str) and json.loads(first) == error
    assert report.ok() and report.sent == 1 and len(report.skipped) == 2


def test_ping_is_answered_at_any_time_with_the_channel_id_known_so_far():
    transcript = example()
    ping = json.dumps({"jsonrpc": "2.0", "method": "channels.system", "params": {"action": "ping"}})
    _, sign = client_frame(transcript, "initiator", "channels.initiator_sign")
    message_number, _ = client_frame(transcript, "initiator", "channels.message")
    before_message = [f.data for n, f in transcript.frames()
                      if f.role == "initiator" and f.sender == "node" and n < message_number]

    async def scenario():
        async with FakeNode(transcript, grace=0.1, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                await ws.send(ping)  # before anything: the channel id is not known yet
                got = await recv_until(ws, "channels.system.pong")
                early = got.pop()
                if not any(f.get("method") == "channels.sign.initiator_sign" for f in got):
                    got += await recv_until(ws, "channels.sign.initiator_sign")
                await ws.send(sign.wire())
                while len(got) < len(before_message):
                    got.append(await recv(ws))
                await ws.send(ping)  # in the middle, at a slot where the script waits for a message
                late = await recv(ws)
            return early, got, late

    early, got, late = run(scenario())
    assert got == before_message
    assert early["method"] == late["method"] == "channels.system.pong"
    assert early["params"]["channel_id"] is None
    assert late["params"]["channel_id"] == transcript.channel_id is not None


def test_ping_after_the_end_of_the_script_is_answered():
    transcript = Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        node("initiator", 0, info("open", "ch_x")),
    ])

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                await recv(ws)
                await ws.send('{"jsonrpc":"2.0","method":"channels.system","params":{"action":"ping"}}')
                pong = await recv(ws)
            await fake.wait(5)
            return pong, fake.reports[0]

    pong, report = run(scenario())
    assert pong["params"]["channel_id"] == "ch_x" and pong["params"]["data"] == {"action": "system", "tag": "pong"}
    assert report.ok() and report.pongs == 1


# -- divergences -----------------------------------------------------------------------------------------------------


async def _initiator_until_sign(transcript: Transcript, reply: str, **options):
    async with FakeNode(transcript, grace=0.1, **options) as fake:
        async with connect(fake.url + "?role=initiator") as ws:
            await recv_until(ws, "channels.sign.initiator_sign")
            await ws.send(reply)
            error = (await recv_until(ws, result=True))[-1]
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            code = ws.close_code
    return error, code, fake.reports[0]


def test_wrong_client_frame_gets_a_divergence_report():
    transcript = example()
    number, sign = client_frame(transcript, "initiator", "channels.initiator_sign")
    wrong = {**sign.data, "method": "channels.responder_sign"}
    error, code, report = run(_initiator_until_sign(transcript, json.dumps(wrong), timeout=5))
    assert code == 4000
    assert error["id"] == sign.data["id"] and error["error"]["code"] == DIVERGENCE_CODE
    sent = divergence_of(error)
    assert sent["frame"] == number and sent["method"] == "channels.initiator_sign"
    assert sent["expected"] == sign.wire() and json.loads(sent["arrived"]) == wrong
    assert "-  \"method\": \"channels.initiator_sign\"" in sent["diff"]
    assert "+  \"method\": \"channels.responder_sign\"" in sent["diff"]
    [divergence] = report.divergences
    assert divergence.frame == number and divergence.role == "initiator" and divergence.session == 1
    assert "method 'channels.responder_sign' arrived" in divergence.reason
    text = divergence.format()
    assert f"frame {number}" in text and "expected" in text and "arrived" in text and "--- expected" in text


def test_declined_signature_is_a_divergence_in_both_modes():
    transcript = example()
    number, sign = client_frame(transcript, "initiator", "channels.initiator_sign")
    decline = json.dumps({"jsonrpc": "2.0", "method": "channels.initiator_sign", "params": {"error": 147}})
    for mode in Mode:
        error, _, report = run(_initiator_until_sign(transcript, decline, timeout=5, mode=mode))
        assert "declined" in error["error"]["message"]
        assert report.divergences[0].frame == number


def test_signing_another_transaction_is_a_divergence_but_other_signatures_are_not():
    transcript = example()
    _, sign = client_frame(transcript, "initiator", "channels.initiator_sign")
    blob = sign.data["params"]["signed_tx"]
    other_signature = resign(blob, signature=bytes(64))
    inner = rlp.decode(base64.b64decode(blob[3:])[:-4])[3]
    tag, version, *fields = rlp.decode(inner)
    other_inner = rlp.encode([tag, version, *fields[:-1], fields[-1] + b"\x01"])  # another transaction
    other_tx = resign(blob, inner=other_inner)

    def reply(signed: str) -> str:
        data = copy.deepcopy(sign.data)
        data["params"]["signed_tx"] = signed
        return json.dumps(data)

    async def resigned():
        async with FakeNode(transcript, grace=0.1, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                await recv_until(ws, "channels.sign.initiator_sign")
                await ws.send(reply(other_signature))
                return (await recv_until(ws, result=True))[-1]

    assert run(resigned())["result"] == "ok"
    error, _, report = run(_initiator_until_sign(transcript, reply(other_tx), timeout=5))
    assert "signed a different transaction" in report.divergences[0].reason
    assert error["error"]["code"] == DIVERGENCE_CODE


def test_a_slot_that_times_out_names_the_slot_and_its_method():
    transcript = example()
    number, _ = client_frame(transcript, "initiator", "channels.initiator_sign")

    async def scenario():
        async with FakeNode(transcript, grace=0.1, timeout=0.5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                frames = await recv_until(ws, result=True)
            await fake.wait(5)
            return frames[-1], fake.reports[0]

    error, report = run(scenario())
    [divergence] = report.divergences
    assert divergence.frame == number and divergence.arrived is None
    assert f"frame {number} (channels.initiator_sign)" in divergence.reason and "0.5 s" in divergence.reason
    assert error["id"] is None and divergence_of(error)["reason"] == divergence.reason


def test_frame_after_the_recorded_end_is_a_divergence():
    transcript = Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        node("initiator", 0, info("open")),
    ])

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                await recv(ws)
                await ws.send('{"jsonrpc":"2.0","method":"channels.leave","params":{}}')
                error = await recv(ws)
            await fake.wait(5)
            return error, fake.reports[0]

    error, report = run(scenario())
    assert "after the recorded end" in error["error"]["message"]
    assert report.divergences[0].frame is None


def test_legacy_divergence_is_a_legacy_error_frame():
    transcript = Transcript(name="t", protocol="legacy", events=[
        ev(Open, "initiator", 0, url="ws://localhost:3014/channel?protocol=legacy&role=initiator"),
        node("initiator", 0, {"action": "info", "channel_id": None, "payload": {"event": "fsm_up"}, "version": 1}),
        client("initiator", 0, {"action": "update", "tag": "new", "payload": {"amount": 1}}),
    ])

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                await recv(ws)
                await ws.send(json.dumps({"action": "update", "tag": "new", "payload": {"amount": 2}}))
                return await recv(ws)

    error = run(scenario())
    assert error["action"] == "error" and error["payload"]["reason"] == "chanlog_divergence"
    assert "payload.amount" in divergence_of(error)["reason"]


# -- lenient mode ------------------------------------------------------------------------------------------------------


def _skippable() -> Transcript:
    return Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        ev(Open, "responder", 1, url=URL_Q + "responder"),
        node("initiator", 0, info("open", "ch_1")),
        client("initiator", 0, {"id": 5, "jsonrpc": "2.0", "method": "channels.get.balances",
                                "params": {"accounts": ["ak_1"]}}),
        node("initiator", 0, {"channel_id": "ch_1", "id": 5, "jsonrpc": "2.0", "result": [], "version": 1}),
        client("initiator", 0, {"jsonrpc": "2.0", "method": "channels.message", "params": {"info": "hi", "to": "ak_2"}}),
        node("responder", 1, {"jsonrpc": "2.0", "method": "channels.message", "params": {
            "channel_id": "ch_1", "data": {"message": {"channel_id": "ch_1", "from": "ak_1", "info": "hi", "to": "ak_2"}}},
            "version": 1}),
        client("initiator", 0, {"jsonrpc": "2.0", "method": "channels.update.new",
                                "params": {"amount": 1, "from": "ak_1", "to": "ak_2"}}),
        node("initiator", 0, info("update_done", "ch_1")),
        node("responder", 1, info("update_done", "ch_1")),
        ev(Close, "initiator", 0, closed_by="client"),
        ev(Close, "responder", 1, closed_by="client"),
    ])


def _event(msg: dict) -> str | None:
    return (msg.get("params") or {}).get("data", {}).get("event")


async def _until_update_done(ws) -> list[dict]:
    got = []
    try:
        while not got or _event(got[-1]) != "update_done":
            got.append(await recv(ws))
    except ConnectionClosed:  # after a divergence
        pass
    return got


def _skipping_client(mode: str, update: dict):
    async def scenario():
        async with FakeNode(_skippable(), mode=mode, grace=0.2, timeout=3) as fake:
            async with connect(fake.url + "?role=initiator") as ini, connect(fake.url + "?role=responder") as res:
                got = [await recv(ini)]
                await ini.send(json.dumps(update))
                got += await _until_update_done(ini)
                await ini.close()
                responder = await _until_update_done(res)
            await fake.wait(5)
            return got, responder, fake.reports[0]
    return run(scenario())


def test_lenient_mode_skips_get_and_message_slots_the_client_does_not_send():
    update = {"jsonrpc": "2.0", "method": "channels.update.new", "params": {"amount": 99, "from": "a", "to": "b"}}
    got, responder, report = _skipping_client("lenient", update)
    # no balances answer (not asked), no delivered message (not sent); params differ but methods match
    assert [m.get("method") for m in got] == ["channels.info", "channels.info"]
    assert [m.get("method") for m in responder] == ["channels.info"]
    assert report.ok() and not report.divergences
    assert any("channels.get.balances" in s for s in report.skipped)
    assert any("channels.message" in s for s in report.skipped)


def test_strict_mode_does_not_skip():
    update = {"jsonrpc": "2.0", "method": "channels.update.new", "params": {"amount": 1, "from": "ak_1", "to": "ak_2"}}
    got, _, report = _skipping_client("strict", update)
    assert got[-1]["error"]["code"] == DIVERGENCE_CODE
    assert "'channels.get.balances' was expected" in report.divergences[0].reason


def test_lenient_mode_still_checks_methods():
    update = {"jsonrpc": "2.0", "method": "channels.leave", "params": {}}
    got, _, report = _skipping_client("lenient", update)
    assert got[-1]["error"]["code"] == DIVERGENCE_CODE
    assert "'channels.update.new' was expected" in report.divergences[0].reason


# -- roles, connections, sessions ----------------------------------------------------------------------------------------


def test_node_frame_waits_for_the_other_roles_client_frame_recorded_before_it():
    transcript = Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        ev(Open, "responder", 1, url=URL_Q + "responder"),
        node("initiator", 0, info("a")),
        client("initiator", 0, {"jsonrpc": "2.0", "method": "channels.update.new", "params": {"amount": 1}}),
        node("responder", 1, info("b")),
    ])
    order: list[str] = []

    async def initiator(url):
        async with connect(url + "?role=initiator") as ws:
            await recv(ws)
            await asyncio.sleep(0.3)  # gives a node that does not wait every chance to send "b" first
            order.append("initiator sent")
            await ws.send(transcript.events[3].wire())
            await asyncio.sleep(0.1)

    async def responder(url):
        async with connect(url + "?role=responder") as ws:
            await recv(ws)
            order.append("responder received")

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            await asyncio.gather(initiator(fake.url), responder(fake.url))
            await fake.wait(5)
            return fake.reports[0]

    report = run(scenario())
    assert order == ["initiator sent", "responder received"]
    assert report.ok()


def test_a_reconnects_frames_follow_the_old_connections_close():
    transcript = Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        node("initiator", 0, info("first")),
        ev(Close, "initiator", 0, closed_by="client"),
        ev(Open, "initiator", 1, url=URL_Q + "initiator&existing_channel_id=ch_9"),
        node("initiator", 1, info("second")),
    ])
    order: list[str] = []

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            old = await connect(fake.url + "?role=initiator")
            await recv(old)
            async with connect(fake.url + "?role=initiator") as new:  # reconnects before closing the old one
                waiting = asyncio.create_task(recv(new))
                await asyncio.sleep(0.3)  # every chance to send "second" too early
                order.append("second arrived before the close" if waiting.done() else "old closed")
                await old.close()
                order.append((await waiting)["params"]["data"]["event"])
            await fake.wait(5)
            return fake.reports[0]

    report = run(scenario())
    assert order == ["old closed", "second"]
    assert report.ok()


def test_a_participant_with_two_connections_open_at_once():
    """Two channels of the same participants overlap (as in the node's sc_ws_close_mutual log)."""
    transcript = Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator&port=1"),
        node("initiator", 0, info("a1")),
        ev(Open, "initiator", 1, url=URL_Q + "initiator&port=2"),
        node("initiator", 1, info("b1")),
        client("initiator", 1, {"jsonrpc": "2.0", "method": "channels.leave", "params": {}}),
        node("initiator", 0, info("a2")),
        ev(Close, "initiator", 0, closed_by="client"),
        node("initiator", 1, info("b2")),
        ev(Close, "initiator", 1, closed_by="client"),
    ])
    script = Script.build(transcript)
    a2 = next(s for s in script.steps.values() if s.kind == NODE and s.event.info_event == "a2")
    leave = next(s for s in script.steps.values() if s.kind == CLIENT)
    assert leave.index in a2.client_deps

    from chanlog.replay.player import aplay

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            report = await aplay(transcript, fake.url, timeout=5)
            await fake.wait(5)
            return report, fake.reports[0]

    report, node_report = run(scenario())
    assert report.ok and report.connections == 2 and report.received == 4
    assert node_report.ok() and node_report.sent == 4


def test_one_role_alone_plays_its_side_without_deadlock():
    transcript = example()
    expected = node_frames(transcript, "responder")

    async def scenario():
        async with FakeNode(transcript, grace=0.1, timeout=5) as fake:
            got = []
            async with connect(fake.url + "?role=responder") as ws:
                for _, frame in transcript.frames():
                    if frame.role != "responder":
                        continue
                    if frame.sender == "client":
                        await ws.send(frame.wire())
                    else:
                        got.append(await recv(ws))
        return got, fake.reports[0]

    got, report = run(scenario())
    assert got == expected
    assert not report.divergences
    assert report.unfinished == [f"initiator connection 1 was never opened "
                                 f"({sum(1 for _, f in transcript.frames() if f.role == 'initiator')} frames not played)"]


def test_nth_connection_of_a_role_gets_the_nth_recording_and_extra_ones_are_refused():
    transcript = Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        node("initiator", 0, info("first")),
        ev(Close, "initiator", 0, closed_by="client"),
        ev(Open, "initiator", 1, url=URL_Q + "initiator&existing_channel_id=ch_9"),
        node("initiator", 1, info("second")),
        ev(Close, "initiator", 1, closed_by="client"),
    ])

    async def scenario():
        async with FakeNode(transcript, timeout=5) as fake:
            events = []
            for _ in range(2):
                async with connect(fake.url + "?role=initiator") as ws:
                    events.append((await recv(ws))["params"]["data"]["event"])
            async with connect(fake.url + "?role=initiator") as ws:
                refused = await recv(ws)
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                code = ws.close_code
            await fake.wait(5)
            return events, refused, code, fake

    events, refused, code, fake = run(scenario())
    assert events == ["first", "second"]
    assert code == 1008 and "no recorded initiator connection left" in refused["error"]["message"]
    assert fake.reports[0].ok() and not fake.ok()  # the refused connection counts against the run


def test_connections_without_a_role_or_on_another_path_are_refused():
    async def scenario():
        async with FakeNode(example(), timeout=5) as fake:
            outcomes = []
            for url in (fake.url, fake.url + "?role=observer", fake.url.replace("/channel", "/other") + "?role=initiator"):
                try:
                    async with connect(url):
                        outcomes.append("accepted")
                except Exception as exc:  # InvalidStatus
                    outcomes.append(exc.response.status_code)
            return outcomes

    assert run(scenario()) == [400, 400, 404]


def test_serve_in_thread_binds_loopback_on_a_free_port_and_stops_cleanly():
    from websockets.sync.client import connect as sync_connect

    with serve_in_thread(example(), grace=0.1, timeout=5) as fake:
        assert fake.url.startswith("ws://127.0.0.1:") and fake.url.endswith("/channel")
        assert fake.node.port != 0
        with sync_connect(fake.url + "?role=initiator") as ws:
            first = json.loads(ws.recv(timeout=5))
    assert first == node_frames(example(), "initiator")[0]
    [report] = fake.reports
    assert report.unfinished and not report.divergences and not fake.ok() and fake.ok(allow_partial=True)


def test_transform_hook_is_applied_before_serving():
    def shout(transcript: Transcript) -> Transcript:
        out = copy.deepcopy(transcript)
        for _, frame in out.frames():
            if frame.sender == "node" and frame.info_event:
                frame.data["params"]["data"]["event"] = frame.info_event.upper()
        return out

    async def scenario():
        async with FakeNode(example(), grace=0.1, timeout=5, transform=shout) as fake:
            async with connect(fake.url + "?role=initiator") as ws:
                return await recv(ws)

    assert run(scenario())["params"]["data"]["event"] == "FSM_UP"


def test_load_transcript_reads_yaml_and_imports_markdown_logs(tmp_path, corpus):
    assert load_transcript(EXAMPLE).name == "init_per_group"
    log = corpus / "json-rpc" / "sc_ws_close_mutual.md"
    assert load_transcript(log).protocol == "json-rpc"
    script = Script.build(load_transcript(log))
    assert sum(len(c.frames) for c in script.roles["initiator"]) == sum(
        1 for _, f in load_transcript(log).frames() if f.role == "initiator")
    assert all(s.kind in (CLIENT, NODE) for cs in script.roles["initiator"] for s in cs.frames)


# -- the command ------------------------------------------------------------------------------------------------------------


def _replay_process(transcript_path, *args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "chanlog", "replay", str(transcript_path), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    url = proc.stdout.readline().strip()
    return proc, url


@pytest.mark.e2e
def test_replay_command_prints_its_url_and_exits_zero_after_a_clean_session():
    from chanlog.replay.player import play

    proc, url = _replay_process(EXAMPLE, "--timeout", "10")
    try:
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/channel")
        report = play(example(), url, timeout=10)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert report.ok
    assert proc.returncode == 0, err
    assert "session 1 (init_per_group): played to the end" in err


@pytest.mark.e2e
def test_replay_command_exits_non_zero_after_a_divergence(tmp_path):
    from chanlog.replay.player import play

    transcript = example()
    number, sign = client_frame(transcript, "initiator", "channels.initiator_sign")
    sign.data["params"]["signed_tx"] = resign(sign.data["params"]["signed_tx"], inner=b"\xc0")
    proc, url = _replay_process(EXAMPLE, "--timeout", "5", "--grace", "0.5")
    try:
        report = play(transcript, url, timeout=5)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert not report.ok
    assert proc.returncode == 1
    assert f"divergence at session 1, initiator connection 1, frame {number}" in err
    assert "--- expected" in err and "+++ arrived" in err


def test_replay_command_bad_transcript_names_the_file(tmp_path):
    from click.testing import CliRunner

    from chanlog.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("chanlog: 1\nname: x\nevents:\n  - {event: frame, role: initiator, conn: 0, from: nobody}\n")
    result = CliRunner().invoke(main, ["replay", str(bad), "--port", "0"])
    assert result.exit_code == 1
    assert "chanlog: error:" in result.output and "bad.yaml" in result.output


def test_replay_help_lists_exit_codes():
    from click.testing import CliRunner

    from chanlog.cli import main

    result = CliRunner().invoke(main, ["replay", "--help"])
    assert result.exit_code == 0
    assert "Exit status: 0" in result.output and "--port" in result.output and "--mode" in result.output


def test_dumped_and_reloaded_transcript_replays_the_same(tmp_path):
    path = tmp_path / "t.yaml"
    dump(example(), path)
    a, b = Script.build(example()), Script.build(load(path))
    assert [(s.kind, s.number, s.client_deps) for s in a.steps.values()] == \
        [(s.kind, s.number, s.client_deps) for s in b.steps.values()]


# -- replay with a prelude ---------------------------------------------------------------------------------


def _mid_session() -> Transcript:
    """A test that starts on the open channel of :data:`EXAMPLE` (no opens), then reconnects the initiator."""
    rpc = {"jsonrpc": "2.0"}
    return Transcript(name="mid", events=[
        Frame(role="initiator", conn=0, sender="client",
              data={**rpc, "method": "channels.message", "params": {"info": "hi", "to": "ak_r"}}),
        Frame(role="responder", conn=1, sender="node",
              data={**rpc, "method": "channels.message", "params": {"data": {"message": {"info": "hi"}}}}),
        Close(role="initiator", conn=0, closed_by="client", code=1000),
        Open(role="initiator", conn=2, url="ws://localhost:3014/channel?role=initiator&existing_channel_id=ch_x"),
        Frame(role="initiator", conn=2, sender="node",
              data={**rpc, "method": "channels.info", "params": {"data": {"event": "channel_reestablished"}}}),
    ])


def test_a_prelude_is_served_first_and_the_test_continues_on_its_open_connections():
    from chanlog.replay import starts_on_open_channel, with_prelude

    prelude, test = example(), _mid_session()
    assert starts_on_open_channel(test) and not starts_on_open_channel(prelude)
    joined = with_prelude(prelude, test)
    last = max(e.conn for e in prelude.events)
    assert joined.events[:len(prelude.events)] == prelude.events
    tail = joined.events[len(prelude.events):]
    opened = {e.role: e.conn for e in prelude.events if isinstance(e, Open)}
    assert [e.conn for e in tail] == [opened["initiator"], opened["responder"], opened["initiator"],
                                      last + 1, last + 1]
    frames = sum(1 for _ in prelude.frames())
    assert joined.source["prelude"] == {"name": prelude.name, "frames": frames, "events": len(prelude.events)}
    assert joined.name == "mid" and not starts_on_open_channel(joined)
    script = Script.build(joined)
    assert len(script.roles["initiator"]) == 2 and script.roles["initiator"][1].open is not None


def test_a_prelude_that_leaves_no_connection_open_for_a_role_is_an_error():
    from chanlog.replay import ReplayError, with_prelude

    prelude = example()
    closed = Transcript(name="closed", events=[*prelude.events, Close(role="responder", conn=1, closed_by="client")])
    responder_conn = next(e.conn for e in prelude.events if isinstance(e, Open) and e.role == "responder")
    closed.events[-1] = Close(role="responder", conn=responder_conn, closed_by="client")
    with pytest.raises(ReplayError, match="leaves no responder connection open"):
        with_prelude(closed, _mid_session())


@pytest.mark.e2e
def test_replay_command_with_prelude_serves_a_corpus_test_after_its_init_per_group(tmp_path):
    """``chanlog replay sc_ws_deposit.md --prelude init_per_group.md`` and ``chanlog play`` with the same
    prelude, two processes: both logs play to the end on the same connections."""
    from conftest import CORPUS

    group = CORPUS / "json-rpc" / "continuous"
    if not group.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    test_log, prelude_log = group / "sc_ws_deposit.md", group / "init_per_group.md"
    proc, url = _replay_process(test_log, "--prelude", str(prelude_log), "--timeout", "10")
    try:
        player = subprocess.run([sys.executable, "-m", "chanlog", "play", str(test_log), "--url", url,
                                 "--prelude", str(prelude_log), "--timeout", "10"],
                                capture_output=True, text=True, timeout=60, cwd=REPO)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert player.returncode == 0, player.stdout + player.stderr
    assert proc.returncode == 0, err
    assert "--prelude" in err and "its 30 frames come first" in err
    assert "session 1 (sc_ws_deposit): played to the end" in err and "0 divergences" in err


def test_replay_command_says_when_a_log_needs_a_prelude(tmp_path):
    path = tmp_path / "mid.yaml"
    dump(_mid_session(), path)
    proc, url = _replay_process(path, "--timeout", "5")
    try:
        assert url.startswith("ws://")
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=30)
    assert "starts on an open channel" in err and "--prelude" in err


def _with_recorded_ping() -> Transcript:
    """A client ping recorded between two requests (the client's keepalive timer fired there), with its pong."""
    ping = {"jsonrpc": "2.0", "method": "channels.system", "params": {"action": "ping"}}
    pong = {"jsonrpc": "2.0", "method": "channels.system.pong", "params": {"channel_id": "ch_1", "data": {
        "action": "system", "tag": "pong"}}, "version": 1}
    update = {"jsonrpc": "2.0", "method": "channels.update.new", "params": {"amount": 1, "from": "ak_1", "to": "ak_2"}}
    return Transcript(name="t", events=[
        ev(Open, "initiator", 0, url=URL_Q + "initiator"),
        node("initiator", 0, info("open", "ch_1")),
        client("initiator", 0, ping),
        node("initiator", 0, pong),
        client("initiator", 0, update),
        node("initiator", 0, info("update_done", "ch_1")),
        ev(Close, "initiator", 0, closed_by="client"),
    ])


@pytest.mark.parametrize("sends_ping", [True, False])
def test_strict_mode_neither_needs_nor_refuses_a_recorded_keepalive_ping(sends_ping):
    """A client's pings follow its own timer: a recorded one is matched when it comes and given way to when the
    client goes on without it, in strict mode too; any other frame is still checked."""
    transcript = _with_recorded_ping()
    update = next(f.data for _, f in transcript.frames() if f.method == "channels.update.new")

    async def scenario():
        async with FakeNode(transcript, mode="strict", grace=5, timeout=5) as fake:
            async with connect(fake.url + "?role=initiator") as ini:
                got = [await recv(ini)]
                if sends_ping:
                    await ini.send('{"jsonrpc":"2.0","method":"channels.system","params":{"action":"ping"}}')
                    got.append(await recv(ini))
                await ini.send(json.dumps(update))
                got += await _until_update_done(ini)
                await ini.close()
            await fake.wait(5)
            return got, fake.reports[0]

    got, report = run(scenario())
    assert _event(got[-1]) == "update_done", got
    assert report.ok() and not report.divergences, report.summary()
    assert any("keepalive ping" in s for s in report.skipped) is not sends_ping
    assert report.pongs == (1 if sends_ping else 0)
