"""End to end with the real JavaScript SDK and fresh accounts: ``chanlog replay --rebind``.

Both SDK ``Channel`` clients use freshly generated key pairs (``MemoryAccount.generate()``, the driver's
``--fresh-accounts``) and play, in strict mode, corpus logs recorded with other accounts; the fake node runs
with ``--rebind``. Every transaction the SDK signed decodes (``chanlog decode --json``, a real process) to
the fresh accounts and the channel id computed from them, never the recorded ones. An SDK that signs with
another key than its URL names gets a divergence. Needs Node.js/npm and the shared corpus (skips otherwise).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import npm
import pytest
import sdkplay
from conftest import CORPUS

from chanlog.model import Open

pytestmark = pytest.mark.e2e

JSON_RPC = CORPUS / "json-rpc"
LOGS = ["both_sign/init_per_group.md", "sc_ws_basic_open_close.md", "sc_ws_close_mutual.md",
        "continuous/sc_ws_deposit.md", "continuous/sc_ws_withdraw.md"]
_CHANNEL = re.compile(r"rebind channel_id \(nonce \d+\): (ch_\w+) -> (ch_\w+)")


@pytest.fixture(scope="module")
def sdk() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    return npm.install(sdkplay.SDK_DIR, "sdk14", "to run the JavaScript SDK")


def ids_in(value, prefix: str) -> set[str]:
    if isinstance(value, dict):
        return {i for v in value.values() for i in ids_in(v, prefix)}
    if isinstance(value, list):
        return {i for v in value for i in ids_in(v, prefix)}
    return {value} if isinstance(value, str) and value.startswith(prefix) else set()


def decoded(blob: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "chanlog", "decode", "--json", blob], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("log", LOGS)
def test_sdk_with_fresh_accounts_plays_the_log_to_the_recorded_end(sdk: Path, tmp_path: Path, log: str) -> None:
    prepared = sdkplay.prepare(JSON_RPC / log, JSON_RPC)
    outcome = sdkplay.play(prepared, sdk, tmp_path, node_timeout=8, driver_timeout=60, fresh_accounts=True)
    summary = outcome.summary
    assert outcome.ok, (f"{log}: {outcome.first_problem}\nthe SDK stopped at: {summary.get('waiting_for')}\n"
                        f"SDK errors: {summary.get('errors')}\n{outcome.node_stderr[-3000:]}")
    assert outcome.played == outcome.total and "0 divergences" in outcome.node_stderr
    fresh = summary["accounts"]
    first = next(e for e in prepared.transcript.events if isinstance(e, Open))
    recorded = {first.params["initiator_id"], first.params["responder_id"]}
    assert not recorded & set(fresh.values())
    # -v printed the mapping; the channel id is the one computed from the fresh accounts
    for role in ("initiator", "responder"):
        assert f"-> {fresh[role]}" in outcome.node_stderr
    channels = dict(_CHANNEL.findall(outcome.node_stderr))
    assert channels, "no channel id was mapped"
    assert summary["signed"], "the SDK signed nothing"
    accounts: set[str] = set()
    for blob in summary["signed"]:
        tree = decoded(blob)
        accounts |= ids_in(tree, "ak_")
        assert ids_in(tree, "ch_") <= set(channels.values()), tree
        assert not ids_in(tree, "ch_") & set(channels), tree
    assert accounts <= set(fresh.values()) and not accounts & recorded
    if log.endswith("init_per_group.md"):  # its channel_create_tx names both fresh accounts
        assert accounts == set(fresh.values())


def test_sdk_signing_with_another_key_than_its_url_names_diverges(sdk: Path, tmp_path: Path) -> None:
    prepared = sdkplay.prepare(JSON_RPC / "both_sign" / "init_per_group.md", JSON_RPC)
    outcome = sdkplay.play(prepared, sdk, tmp_path, node_timeout=8, driver_timeout=30, fresh_accounts=True,
                           wrong_key=True)
    assert not outcome.ok
    assert "channels.initiator_sign" in outcome.node_stderr or "frame 6" in outcome.first_problem
    assert "does not verify for the initiator's account" in outcome.first_problem, outcome.node_stderr[-2000:]
    assert summary_names_divergence(outcome.summary)


def summary_names_divergence(summary: dict) -> bool:
    """The SDK saw the fake node's divergence (its error, or the close with code 4000)."""
    text = json.dumps(summary.get("errors", []))
    return "divergence" in text

