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


# -- any cb_ on its own (issue 22): contract code, call data, FATE value, AEVM value; --type -------------------------

def _cb(data: bytes) -> str:
    return encode_api("cb", data)


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chanlog: error:"), result.stderr
    return lines[0]


def test_bare_fate_values_are_fate_values_not_call_data():
    from chanlog.codec import fate

    for value, shown in ((True, "true"), ("ok", '"ok"'), (fate.Address("address", bytes(32)), "ak_"),
                         ((1, 2), "(1, 2)"), (fate.Variant((0, 1), 1, (5,)), "Some(5)")):
        result = run(_cb(fate.encode(value)))
        assert result.exit_code == 0, result.output
        first, second = result.stdout.splitlines()[:2]
        assert first.startswith("FATE value, not call data") and second.strip().startswith(shown)
    out = json.loads(run(_cb(fate.encode(True)), "--json").stdout)
    assert out["kind"] == "fate_value" and out["value"] is True


def test_bare_aevm_values_show_their_words_and_a_hint():
    from chanlog.codec import aevm

    result = run(_cb(aevm.encode(42, aevm.W)))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("AEVM value, not call data (1 word of 32 bytes)") and "--type" in result.stdout
    assert "word 0: 42" in result.stdout
    result = run(_cb(aevm.encode("ok", aevm.S)))
    assert result.exit_code == 0 and 'read from the heap layout: "ok" (as string' in result.stdout
    out = json.loads(run(_cb(aevm.encode("ok", aevm.S)), "--json").stdout)
    assert out["kind"] == "aevm_value" and out["guessed_type"] == "string" and out["word_count"] == 3


def test_type_reads_an_aevm_value_as_a_sophia_type():
    from chanlog.codec import aevm, fate

    t = fate.Type("tuple", (fate.Type("address"), fate.Type("string")))
    blob = _cb(aevm.encode_typed((fate.Address("address", bytes(range(32))), "hi"), t))
    result = run(blob, "--type", "(address, string)")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["AEVM value of type (address * string)",
                                          f'  ({fate.Address("address", bytes(range(32)))}, "hi")']
    assert json.loads(run(blob, "--type", "(address, string)", "--json").stdout)["value"][1] == "hi"
    wrong = run(blob, "--type", "(int, int)")  # reads, but the heap is not laid out as that type
    assert wrong.exit_code == 0 and "the type may be wrong" in wrong.stdout
    assert run(_cb(aevm.encode((1 << 256) - 1, aevm.W)), "--type", "int").stdout.splitlines()[1] == "  -1"
    assert "syntax" not in _one_error_line(run(blob, "--type", "list(int"))
    assert "expected" in _one_error_line(run(blob, "--type", "list(int"))


def test_type_checks_a_fate_value():
    from chanlog.codec import fate

    assert run(_cb(fate.encode(True)), "--type", "bool").stdout.splitlines() == ["FATE value of type bool", "  true"]
    assert "is not of type int" in _one_error_line(run(_cb(fate.encode(True)), "--type", "int"))


def test_return_type_without_contract_does_not_force_fate():
    from chanlog.codec import aevm

    result = run(_cb(aevm.encode(42, aevm.W)), "--return-type", "ok")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("return value (ok, AEVM)") and "  42" in result.stdout.splitlines()
    revert = run(_cb(aevm.encode("no", aevm.S)), "--return-type", "revert")
    assert revert.exit_code == 0 and '"no"' in revert.stdout


def test_aevm_call_data_without_contract():
    from chanlog.codec import aevm

    t = aevm.AType("tuple", (aevm.S, aevm.AType("tuple", (aevm.W, aevm.S))))
    result = run(_cb(aevm.encode(("deposit", (5, "x")), t)))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == ["call data (AEVM)", '  deposit(5, "x")']
    hashed = aevm.encode(((1 << 255) | 77, (5, "x")), aevm.call_type(aevm.AType("tuple", (aevm.W, aevm.S))))
    result = run(_cb(hashed))
    assert result.exit_code == 0 and result.stdout.startswith("call data (AEVM)") and "--contract" in result.stdout


def test_nothing_fits_is_one_line_and_exit_1():
    line = _one_error_line(run(_cb(b"\x01\x02\x03")))
    assert "not contract code, call data, a FATE value or an AEVM value" in line
    assert "usage" in run(_cb(b"\x00" * 32), "--type", "int", "--function", "f").stderr.lower()
