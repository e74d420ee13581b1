"""``chanlog decode``: tree and --json output, stdin, one-line path-like errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import rlp
from click.testing import CliRunner

from chanlog.cli import main
from chanlog.codec.encoding import encode_api

AK = b"\x01" + bytes(range(32))
AK2 = b"\x01" + bytes(range(32, 64))


def i(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def signed_create(responder: bytes = AK2, fee: int = 17_620_000_000_000) -> str:
    inner = [i(50), i(2), AK, i(70_000_000_000_000), responder, i(40), i(2), i(10), i(0), i(fee), [], [],
             bytes(32), i(49)]
    return encode_api("tx", rlp.encode([i(11), i(1), [bytes(64)], rlp.encode(inner)]))


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["decode", *args], input=input)


def test_tree_for_people():
    result = run(signed_create())
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "signed_tx v1 (tag 11)"
    assert "  transaction: channel_create_tx v2 (tag 50)" in lines
    assert "    initiator_amount: 70,000,000,000,000 aettos" in lines
    assert f"    responder: {encode_api('ak', AK2[1:])}" in lines


def test_json_for_machines():
    result = run("--json", signed_create())
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["type"], data["tag"], data["version"]) == ("signed_tx", 11, 1)
    tx = data["fields"]["transaction"]
    assert tx["type"] == "channel_create_tx" and tx["version"] == 2
    assert tx["fields"]["fee"] == 17_620_000_000_000
    assert tx["fields"]["initiator_delegate_ids"] == []
    assert "error" not in json.dumps(data)


def test_stdin_and_quotes():
    blob = signed_create()
    for given in (["-"], []):
        result = run(*given, "--json", input=f'  "{blob}"\n')
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["type"] == "signed_tx"


def test_output_file(tmp_path):
    out = tmp_path / "tx.json"
    result = run("--json", "-o", str(out), signed_create())
    assert result.exit_code == 0
    assert json.loads(out.read_text())["fields"]["transaction"]["tag"] == 50


def test_broken_blob_exits_1_with_the_reason():
    result = run("tx_+JU5AaEGrATZCq...")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("chanlog: error: tx_+JU5AaEGrATZCq...: truncated:")
    assert "channel_offchain_tx v1 (tag 57)" in result.stderr


def test_schema_error_prints_what_decoded_then_exits_1_with_the_path():
    blob = signed_create(responder=b"\x09" + bytes(32))
    result = run("--json", blob)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["fields"]["transaction"]["error"] == "channel_create_tx v2 -> responder: unknown id tag 9"
    assert result.stderr.strip() == (
        "chanlog: error: signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: unknown id tag 9")
    tree = run(blob)
    assert tree.exit_code == 1
    assert "  transaction: channel_create_tx v2 (tag 50) (could not decode)" in tree.stdout


def test_empty_input_is_a_usage_error():
    result = run("-", input="   \n")
    assert result.exit_code == 2
    assert "no blob given" in result.stderr


def test_help_lists_exit_codes():
    result = run("--help")
    assert result.exit_code == 0
    assert "--json" in result.stdout and "Exit status" in result.stdout


def test_real_process_reads_stdin():
    proc = subprocess.run([sys.executable, "-m", "chanlog", "decode", "--json"], input=signed_create(),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["fields"]["transaction"]["fields"]["nonce"] == 49
