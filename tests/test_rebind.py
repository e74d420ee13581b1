"""``chanlog replay --rebind``: a client with its own accounts plays a transcript recorded with others.

A Python client (the player, over a real WebSocket on loopback) plays the example with fresh Ed25519 key
pairs: its URLs name the fresh accounts, its frames carry them, and it signs with the fresh keys. The fake
node must then send the fresh accounts, the channel id computed from them and the client's own signatures;
a client that names the recorded accounts in what it signs, signs with another key, or changes an amount
in its URL diverges. The real SDK does the same in tests/test_sdk_rebind.py.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from click.testing import CliRunner
from conftest import CORPUS, EXAMPLE
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chanlog.cli import main
from chanlog.codec.encoding import encode_api, parse_api
from chanlog.codec.transactions import build, decode, encode, strip_signatures
from chanlog.model import Frame, Open, Transcript
from chanlog.replay import FakeNode, Script, Session
from chanlog.replay.matchers import is_sign_request, signed_blob
from chanlog.replay.player import aplay
from chanlog.replay.rebind import Rebinder, channel_pubkey, recorded_creates
from chanlog.transcript import load

try:
    from chanlog.sources.nodelog import import_file
except ImportError:  # the importer is another module; without it the corpus cannot be read
    import_file = None

NETWORK_ID = "ae_rebind_test"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


class Key:
    """A fresh key pair."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.address = encode_api("ak", self.public)

    def sign(self, tx: bytes) -> bytes:
        return self.private.sign(NETWORK_ID.encode() + hashlib.blake2b(tx, digest_size=32).digest())


def blobs(data) -> list[str]:
    if isinstance(data, dict):
        return [b for v in data.values() for b in blobs(v)]
    if isinstance(data, list):
        return [b for v in data for b in blobs(v)]
    return [data] if isinstance(data, str) and data.startswith("tx_") else []


def recorded_ids(transcript: Transcript) -> dict[str, str]:
    first = next(e for e in transcript.events if isinstance(e, Open))
    return {name: first.params[name] for name in ("initiator_id", "responder_id")}


def with_url_params(transcript: Transcript, **changes: str) -> None:
    for event in transcript.events:
        if isinstance(event, Open):
            parts = urlsplit(event.url)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            query.update((k, v) for k, v in changes.items() if k in query)
            event.url = urlunsplit(parts._replace(query=urlencode(query, safe=":_")))


def as_client_with(transcript: Transcript, keys: dict[str, Key], *, signer: dict[str, Key] | None = None,
                   map_client_frames: bool = True, **params: str) -> Transcript:
    """What a client with ``keys`` (role -> key) sends and should receive: URLs naming its accounts, every
    frame mapped (accounts, channel id), its sign replies carrying only its own signature over the mapped
    transaction (by ``signer`` when given: a wrong key). ``map_client_frames=False``: its frames are the
    recorded ones (they name the recorded accounts)."""
    played = copy.deepcopy(transcript)
    recorded = recorded_ids(transcript)
    with_url_params(played, initiator_id=keys["initiator"].address, responder_id=keys["responder"].address,
                    **params)
    mapper = Rebinder(Script.build(transcript), recorded_creates(Script.build(transcript)))
    first = next(e for e in transcript.events if isinstance(e, Open))
    mapper.followed = {k: (int(first.params[k]), int(v)) for k, v in params.items()}
    for role in ("initiator", "responder"):
        mapper.ids[parse_api(recorded[f"{role}_id"]).payload] = keys[role].public
    mapper._derive_channels()
    for event in played.events:
        if isinstance(event, Frame) and event.is_json and (map_client_frames or event.sender == "node"):
            event.data = copy.deepcopy(mapper.map_json(event.data))
            event.text = None
            event._texts.clear()  # the JSON text cached for the recorded data
            blob = signed_blob(event.data) if event.sender == "client" else None
            if blob is not None and not is_sign_request(event.data):
                inner = strip_signatures(blob)
                signature = (signer or keys)[event.role].sign(inner)
                signed = build("signed_tx", 1, signatures=[encode_api("sg", signature)],
                               transaction=decode(blob)["transaction"])
                body = event.data["params"] if "params" in event.data else event.data["payload"]
                body["signed_tx" if "signed_tx" in body else "tx"] = encode(signed)
    return played


async def play_against(served: Transcript, played: Transcript, **node_options):
    async with FakeNode(served, timeout=5, rebind=True, network_ids=(NETWORK_ID,), **node_options) as node:
        report = await aplay(played, node.url, timeout=5)
        await node.wait(10)
    return report, node.reports[0]


def test_channel_id_is_computed_as_the_node_does():
    transcript = load(EXAMPLE)
    [(initiator, nonce, responder)] = recorded_creates(Script.build(transcript))
    channel_ids = {f.data["params"]["channel_id"] for _, f in transcript.frames()
                   if f.sender == "node" and isinstance(f.obj.get("params"), dict) and f.obj["params"].get("channel_id")}
    assert channel_ids == {encode_api("ch", channel_pubkey(initiator, nonce, responder))}


def test_a_client_with_fresh_accounts_plays_the_example_to_the_end_and_gets_its_own_values(caplog):
    served = load(EXAMPLE)
    keys = {"initiator": Key(), "responder": Key()}
    played = as_client_with(served, keys)
    with caplog.at_level(logging.INFO, logger="chanlog.replay"):
        report, node_report = run(play_against(served, played))
    assert node_report.ok(), node_report.summary()
    assert report.ok, "\n".join(d.format() for d in report.divergences)
    # -v shows the mapping: both accounts, the channel id and both signatures
    recorded = recorded_ids(served)
    mapping = "\n".join(r.getMessage() for r in caplog.records if "rebind" in r.getMessage())
    assert f"{recorded['initiator_id']} -> {keys['initiator'].address}" in mapping
    assert f"{recorded['responder_id']} -> {keys['responder'].address}" in mapping
    assert "rebind channel_id" in mapping and mapping.count("signature:") == 2
    # the same pairs from the API (a Rebinder that learns from the URLs alone)
    rebinder = Rebinder(Script.build(served), recorded_creates(Script.build(served)))
    url = Script.build(played).roles["initiator"][0].open.event.url
    assert rebinder.connect(Script.build(served).roles["initiator"][0], dict(parse_qsl(urlsplit(url).query))) is None
    pairs = dict(rebinder.mapping())
    assert pairs[recorded["initiator_id"]] == keys["initiator"].address
    assert pairs[recorded["responder_id"]] == keys["responder"].address
    assert sum(1 for k in pairs if k.startswith("ch_")) == 1


def test_the_node_forwards_the_signature_the_client_returned(monkeypatch):
    served = load(EXAMPLE)
    keys = {"initiator": Key(), "responder": Key()}
    played = as_client_with(served, keys)
    sent: list[str] = []
    real = Session._send

    async def spy(self, conn, step):
        sent.extend(blobs(self.rebinder.map_json(step.expected.data)))
        return await real(self, conn, step)

    monkeypatch.setattr(Session, "_send", spy)

    async def go():
        async with FakeNode(served, timeout=5, rebind=True, network_ids=(NETWORK_ID,)) as node:
            await aplay(played, node.url, timeout=5)
            await node.wait(10)
        return node.reports[0]

    node_report = run(go())
    assert node_report.ok(), node_report.summary()
    initiator_signature = next(encode_api("sg", keys["initiator"].sign(strip_signatures(b))) for b in sent)
    forwarded = [b for b in sent if len(decode(b)["signatures"]) == 1]
    assert forwarded, "the responder's sign request carries the initiator's signature"
    assert str(decode(forwarded[0])["signatures"][0]) == initiator_signature
    tx = decode(sent[0])["transaction"]
    assert str(tx["initiator"]) == keys["initiator"].address and str(tx["responder"]) == keys["responder"].address
    original = decode(next(f.data["params"]["data"]["signed_tx"] for _, f in served.frames()
                           if f.sender == "node" and f.method == "channels.sign.initiator_sign"))["transaction"]
    assert tx["state_hash"] == original["state_hash"] and tx["nonce"] == original["nonce"]  # passed through


def test_a_client_that_signs_the_transaction_naming_the_recorded_accounts_diverges():
    served = load(EXAMPLE)
    played = as_client_with(served, {"initiator": Key(), "responder": Key()}, map_client_frames=False)
    _, node_report = run(play_against(served, played))
    [divergence] = node_report.divergences
    assert divergence.method == "channels.initiator_sign"
    assert "signed a different transaction" in divergence.reason


def test_a_client_that_signs_with_another_key_than_its_url_names_diverges():
    served = load(EXAMPLE)
    keys = {"initiator": Key(), "responder": Key()}
    played = as_client_with(served, keys, signer={"initiator": Key(), "responder": keys["responder"]})
    _, node_report = run(play_against(served, played))
    [divergence] = node_report.divergences
    assert divergence.method == "channels.initiator_sign"
    assert "does not verify" in divergence.reason and keys["initiator"].address in divergence.reason


def test_a_url_parameter_rebind_cannot_follow_is_a_divergence_naming_it():
    served = load(EXAMPLE)
    keys = {"initiator": Key(), "responder": Key()}
    played = as_client_with(served, keys)
    with_url_params(played, initiator_amount="lots")
    _, node_report = run(play_against(served, played))
    assert node_report.divergences
    assert all("initiator_amount" in d.reason for d in node_report.divergences)


def test_changed_amounts_reserve_and_lock_period_are_followed(monkeypatch):
    log = CORPUS / "json-rpc" / "sc_ws_close_mutual.md"
    if import_file is None or not log.is_file():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    served = import_file(log)
    first = next(e for e in served.events if isinstance(e, Open)).params
    keys = {"initiator": Key(), "responder": Key()}
    changes = {"initiator_amount": str(int(first["initiator_amount"]) + 1000), "push_amount": "6",
               "responder_amount": str(int(first["responder_amount"]) - 7), "lock_period": "33",
               "channel_reserve": "4"}
    played = as_client_with(served, keys, **changes)
    sent: list = []
    real = Session._send

    async def spy(self, conn, step):
        sent.append(self.rebinder.map_json(step.expected.data))
        return await real(self, conn, step)

    monkeypatch.setattr(Session, "_send", spy)
    report, node_report = run(play_against(served, played))
    assert node_report.ok(), node_report.summary()
    assert report.ok, "\n".join(d.format() for d in report.divergences)
    trees = [decode(b) for data in sent for b in blobs(data)]
    creates = [t for tree in trees for t in tree.walk() if t.type == "channel_create_tx"]
    assert creates and all(t["initiator_amount"] == int(changes["initiator_amount"]) and
                           t["responder_amount"] == int(changes["responder_amount"]) and
                           t["lock_period"] == 33 and t["channel_reserve"] == 4 for t in creates)
    d_initiator, d_responder = 1000 - (6 - int(first["push_amount"])), -7 + (6 - int(first["push_amount"]))
    recorded_trees = [decode(b) for _, f in served.frames() if f.sender == "node" for b in blobs(f.data)]
    recorded_close = [t for tree in recorded_trees for t in tree.walk() if t.type == "channel_close_mutual_tx"]
    close = [t for tree in trees for t in tree.walk() if t.type == "channel_close_mutual_tx"]
    assert close and [t["initiator_amount_final"] for t in close] == \
        [t["initiator_amount_final"] + d_initiator for t in recorded_close]
    assert [t["responder_amount_final"] for t in close] == \
        [t["responder_amount_final"] + d_responder for t in recorded_close]
    balances = {b["account"]: b["balance"] for data in sent if isinstance(data.get("result"), list)
                for b in data["result"] if isinstance(b, dict) and "balance" in b}
    recorded_balances = {b["account"]: b["balance"] for _, f in served.frames()
                         if isinstance(f.obj.get("result"), list) for b in f.obj["result"]
                         if isinstance(b, dict) and "balance" in b}
    assert balances[keys["initiator"].address] == recorded_balances[first["initiator_id"]] + d_initiator
    assert balances[keys["responder"].address] == recorded_balances[first["responder_id"]] + d_responder


@pytest.mark.parametrize("args", [["--network-id", "x"]])
def test_network_id_needs_rebind(args):
    result = CliRunner().invoke(main, ["replay", str(EXAMPLE), *args])
    assert result.exit_code == 2 and "--network-id needs --rebind" in result.output


@pytest.mark.parametrize("log", ["json-rpc/sc_ws_close_mutual.md", "legacy/sc_ws_close_mutual.md",
                                 "json-rpc/sc_ws_basic_open_close.md", "legacy/sc_ws_basic_open_close.md"])
def test_both_protocols_play_corpus_logs_with_fresh_accounts(log):
    if import_file is None or not (CORPUS / log).is_file():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    served = import_file(CORPUS / log)
    keys = {"initiator": Key(), "responder": Key()}
    report, node_report = run(play_against(served, as_client_with(served, keys)))
    assert node_report.ok(), node_report.summary()
    assert report.ok, "\n".join(d.format() for d in report.divergences)


@pytest.mark.chanlog("transcripts/init_per_group.yaml", rebind=True, network_ids=(NETWORK_ID,), timeout=5)
def test_the_pytest_marker_takes_rebind(chanlog_url, chanlog_node):
    """The marker's ``rebind=True``: a client with fresh accounts plays to the end (the plugin's verdict
    after the body fails the test otherwise)."""
    keys = {"initiator": Key(), "responder": Key()}
    report = run(aplay(as_client_with(load(EXAMPLE), keys), chanlog_url, timeout=5))
    assert report.ok, "\n".join(d.format() for d in report.divergences)
    assert chanlog_node.node.rebind
