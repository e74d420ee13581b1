"""End to end with the real JavaScript SDK: recordings whose client requests carry the node's optional parameters.

The node's test logs seldom use the optional parameters of its channel API. For each of a few corpus logs, every
client request of a method in :data:`chanlog.replay.compat.SDK14_METHODS` is given every optional parameter the
node accepts and SDK 14 cannot send (``block_hash``, ``meta``, ``fee``, ``gas_price``, ``nonce``, ``from``), with
values of the type the node reads (``sc_ws_api_jsonrpc.erl``), and every ``updates`` list the node sent beside a
deposit, withdrawal or contract update gets the ``OffChainMeta`` entries a node given that ``meta`` adds
(``aesc_fsm.erl``, ``[Op | meta_updates(Opts)]``). The real SDK then plays the log against ``chanlog replay
--compat sdk14`` in strict mode and must reach the recorded end: the transformation alone bridges the gap.
Needs Node.js/npm and the shared corpus (skips otherwise).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import npm
import pytest
import sdkplay
from conftest import CORPUS

from chanlog.codec.encoding import encode_api
from chanlog.model import Frame
from chanlog.replay import compat
from chanlog.replay.actions import action_script

pytestmark = pytest.mark.e2e

JSON_RPC = CORPUS / "json-rpc"
#: Logs covering deposit (withdraw has the same row), contract create and call, transfers with meta, messages and shutdown.
LOGS = ["continuous/sc_ws_deposit.md", "contracts/sc_ws_wrong_call_data.md",
        "sc_ws_update_with_meta.md", "continuous/sc_ws_generic_messages.md",
        "changeable_fee/sc_ws_set_fee_close_mutual.md"]
#: A value of the type the node reads for each optional parameter (bh_param, meta_param, fee_param, ...).
OPTIONAL_VALUES = {"block_hash": encode_api("mh", bytes(range(32))), "meta": ["a note", "another"],
                   "fee": 30_000_000_000_000, "gas_price": 2_000_000_000, "nonce": 42}
_NON_TRANSFER = {"OffChainDeposit", "OffChainWithdrawal", "OffChainNewContract", "OffChainCallContract"}


@pytest.fixture(scope="module")
def sdk() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    return npm.install(sdkplay.SDK_DIR, "sdk14", "to run the JavaScript SDK")


def _with_meta(data, meta: list[str]):
    if isinstance(data, dict):
        out = {k: _with_meta(v, meta) for k, v in data.items()}
        updates = out.get("updates")
        if isinstance(updates, list) and any(isinstance(u, dict) and u.get("op") in _NON_TRANSFER for u in updates):
            out["updates"] = updates + [{"data": m, "op": compat.OP_META} for m in meta]
        return out
    if isinstance(data, list):
        return [_with_meta(v, meta) for v in data]
    return data


def with_optional_params(prepared: sdkplay.Prepared) -> tuple[sdkplay.Prepared, int]:
    """``prepared`` with the optional parameters the SDK cannot send in its client requests (and the node's
    meta updates), and how many client frames got some."""
    events, changed = [], 0
    for event in prepared.transcript.events:
        if isinstance(event, Frame) and event.is_json and isinstance(event.data, dict):
            row = compat.SDK14_BY_METHOD.get(event.data.get("method"))
            params = event.data.get("params")
            if event.sender == "client" and row is not None and row.dropped and isinstance(params, dict):
                # ``from`` (channels.message): an account id, as from_param/0 reads it
                extra = {k: params.get("to") if k == "from" else copy.deepcopy(OPTIONAL_VALUES[k]) for k in sorted(row.dropped)}
                event = dataclasses.replace(event, data={**event.data, "params": {**params, **extra}})
                changed += 1
            elif event.sender == "node":
                event = dataclasses.replace(event, data=_with_meta(event.data, OPTIONAL_VALUES["meta"]))
        events.append(event)
    transcript = dataclasses.replace(prepared.transcript, events=events)
    script = action_script(compat.apply(transcript, "sdk14").transcript, "sdk14")
    return dataclasses.replace(prepared, transcript=transcript, script=script), changed


@pytest.mark.parametrize("log", LOGS)
def test_sdk_plays_a_log_whose_requests_carry_every_optional_parameter(sdk: Path, tmp_path: Path, log: str) -> None:
    prepared, changed = with_optional_params(sdkplay.prepare(JSON_RPC / log, JSON_RPC))
    assert changed > 0, f"{log}: no client request of the table"
    rules = compat.apply(prepared.transcript, "sdk14").rules
    assert "action_params" in rules
    outcome = sdkplay.play(prepared, sdk, tmp_path, node_timeout=8, driver_timeout=60)
    summary = outcome.summary
    assert outcome.ok, (f"{log}: {outcome.first_problem}\nthe SDK stopped at: {summary.get('waiting_for')}\n"
                        f"SDK errors: {summary.get('errors')}\n{outcome.node_stderr[-3000:]}")
    assert outcome.played == outcome.total
    assert "played to the end" in outcome.node_stderr and "0 divergences" in outcome.node_stderr
