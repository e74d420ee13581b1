"""Contract code, call data and return values over the corpus (both VMs), ``chanlog decode`` for cb_, and the
doc layout naming calls (chanlog.codec.contract, chanlog.codec.calls, chanlog.codec.show)."""

from __future__ import annotations

import collections
import json
import re
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import EXAMPLE, corpus_logs, need_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import contract_codes, guessable_types, guessable_value_of

from chanlog.cli import main
from chanlog.codec import calls, contract, fate
from chanlog.codec.encoding import encode_api, parse_api
from chanlog.codec.errors import CodecError

# the contracts log's contract (compiler 4.2.0): init() and payable main(int) => int
CODE = ("cb_+GZGA6AjCkIf8nA06kWznUewlO/mb+ZZlS2EaOxIL/ivjLd9tsC4OZ7+RNZEHwA3ADcAGg6CPwEDP/64F37sBDcBBwcBAQCWLwIRRNZEH"
        "xFpbml0EbgXfuwRbWFpboIvAIU0LjIuMADT5f3r")
MAIN_42 = "cb_KxG4F37sG1Q/+F7e"


@cache
def corpus_annotations() -> tuple[tuple[str, calls.Annotation], ...]:
    """Every contract value of every corpus log, decoded in transcript order."""
    from chanlog.sources.nodelog import import_file

    out = []
    for path in corpus_logs():
        annotator = calls.CallAnnotator()
        for event in import_file(path).events:
            if getattr(event, "is_json", False):
                out += [(path.name, a) for a in annotator.frame(event.data)]
    return tuple(out)


def test_every_corpus_contract_value_decodes():
    need_corpus()
    found = corpus_annotations()
    counts = collections.Counter((a.kind, a.value.vm) for _, a in found if a.error is None)
    failures = [(log, a.path, a.error) for log, a in found if a.error is not None]
    named = sum(1 for _, a in found if a.kind == "call_data" and a.error is None and a.value.function)
    total_calls = counts[("call_data", "fate")] + counts[("call_data", "aevm")]
    print(f"\ncorpus contract values decoded: {sum(counts.values())} ("
          + ", ".join(f"{k} {vm}: {n}" for (k, vm), n in sorted(counts.items()))
          + f"); calls named from earlier contract code: {named} of {total_calls}")
    assert not failures, failures[:5]
    for kind in ("contract", "call_data", "return_value"):
        assert counts[(kind, "fate")] > 0 and counts[(kind, "aevm")] > 0, kind
    assert named > 0.9 * total_calls


def test_corpus_values_write_back_byte_exact():
    need_corpus()
    seen: set[bytes] = set()
    for _, a in corpus_annotations():
        if a.error is not None:
            continue
        if a.kind == "call_data":
            assert calls.encode_call(a.value) == a.value.raw
        elif a.kind == "return_value":
            assert calls.encode_return(a.value) == a.value.raw
        else:
            c = a.value
            from chanlog.codec.transactions import encode_bytes

            whole = encode_bytes(c.container)
            assert whole == calls.payload_of(a.text)
            if whole in seen:
                continue
            seen.add(whole)
            if c.vm == "fate":
                code = c.container["byte_code"].payload
                assert contract.encode_fate_code(c.functions, c.symbols, c.annotations) == code
            else:
                for row, f in zip(c.container["type_info"], c.functions, strict=True):
                    from chanlog.codec import aevm

                    assert aevm.encode_typerep(contract.aevm.AType("tuple", f.args)) == row["arg_type"].payload
                    assert aevm.encode_typerep(f.returns) == row["out_type"].payload
    assert seen


def test_corpus_fate_functions_are_named_by_their_hash():
    need_corpus()
    checked = 0
    for _, a in corpus_annotations():
        if a.kind == "contract" and a.error is None and a.value.vm == "fate":
            for f in a.value.functions:
                assert f.name is not None
                assert contract.function_hash(f.name) == f.hash
                checked += 1
    assert checked


def test_parse_contract_fate():
    c = contract.parse_contract(CODE)
    assert c.vm == "fate" and c.compiler_version == "4.2.0"
    assert [f.signature for f in c.functions] == ["init : () => unit", "main : (int) => int"]
    main_f = c.by_name("main")
    assert main_f.payable and not main_f.private
    assert [str(i) for i in main_f.code] == ["RETURNR arg0"]
    assert c.function(contract.function_hash("main")) is main_f


def test_call_and_result_named_by_contract():
    c = contract.parse_contract(CODE)
    call = calls.decode_call(parse_api(MAIN_42).payload, c)
    assert call.text() == "main(42)" and call.args == (42,)
    assert calls.decode_call(parse_api(MAIN_42).payload).text() == "0xb8177eec(42)"
    result = calls.decode_return(fate.encode(43), "ok", c.by_name("main"))
    assert result.text() == "43" and result.value == 43
    assert calls.decode_return(fate.encode("no"), 2).text() == '"no"'
    assert calls.decode_return(b"out_of_gas", "error").value == "out_of_gas"


@pytest.mark.parametrize(("blob", "words"), [
    ("cb_KxFE1kQf", "bad checksum"),
    ("cb_KxFE1kQfP4oEp9...", "truncated"),
    (encode_api("cb", b"\x2b\x11\x44\xd6"), "at byte 2: a 4-byte string needs 4 bytes"),
    (encode_api("cb", b"\x2b\x11\x44"), "not contract code, call data, a FATE value or an AEVM value"),
    (encode_api("cb", b"\x13" * 5000 + b"\x03"), "nested deeper than 64"),
    (encode_api("cb", b"\xf8\x02\x46\x03"), "could not|not RLP|contract code|at byte"),
])
def test_decode_cli_malformed_cb_is_one_clear_error(blob, words):
    result = CliRunner().invoke(main, ["decode", blob])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    err = result.stderr if hasattr(result, "stderr") else result.output
    assert err.startswith("chanlog: error:") and len(err.strip().splitlines()) == 1
    import re

    assert re.search(words, err), err


def test_decode_cli_call_data_with_contract():
    runner = CliRunner()
    result = runner.invoke(main, ["decode", MAIN_42, "--contract", CODE])
    assert result.exit_code == 0, result.output
    assert "main(42)" in result.output and "main : (int) => int" in result.output
    out = json.loads(runner.invoke(main, ["decode", MAIN_42, "--contract", CODE, "--json"]).output)
    assert out["function"] == "main" and out["arguments"] == [42] and out["argument_types"] == ["int"]
    ret = runner.invoke(main, ["decode", encode_api("cb", fate.encode(7)), "--contract", CODE, "--function", "main",
                               "--json"])
    assert json.loads(ret.output)["value"] == 7
    bad = runner.invoke(main, ["decode", MAIN_42, "--contract", CODE, "--function", "nope"])
    assert bad.exit_code == 1 and "no function 'nope'" in bad.output


def test_decode_cli_contract_code_lists_functions():
    result = CliRunner().invoke(main, ["decode", CODE, "--json"])
    out = json.loads(result.output)
    assert out["type"] == "compiler_sophia"
    assert [f["name"] for f in out["contract"]["functions"]] == ["init", "main"]
    text = CliRunner().invoke(main, ["decode", CODE]).output
    assert "main : (int) => int payable" in text


def test_decode_cli_tx_lists_contract_values():
    need_corpus()
    from chanlog.sources.nodelog import import_file

    log = next(p for p in corpus_logs() if p.name == "sc_ws_force_progress_based_on_offchain_state.md")
    blobs = [v for e in import_file(log).events if getattr(e, "is_json", False)
             for v in _strings(e.data) if v.startswith("tx_")]
    for blob in blobs:
        out = json.loads(CliRunner().invoke(main, ["decode", blob, "--json"]).output)
        values = out.get("contract_values", [])
        if any(v["kind"] == "call_data" for v in values):
            texts = [v["text"] for v in values if v["kind"] == "call_data"]
            assert "tick()" in texts, texts
            assert all("error" not in v for v in values), values
            return
    pytest.fail("no tx_ with call data in the force progress log")


def _strings(data):
    if isinstance(data, dict):
        for v in data.values():
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)
    elif isinstance(data, str):
        yield data


def test_render_names_calls_and_results(tmp_path: Path):
    need_corpus()
    from chanlog.render import render
    from chanlog.sources.nodelog import import_file

    log = next(p for p in corpus_logs() if p.name == "sc_ws_basic_contracts.md")
    doc = render(import_file(log))
    assert "- call: `main(42)`" in doc
    assert "- return value (ok) of `main`: `42`" in doc
    assert "`main : (int) => int` (payable)" in doc


def test_render_aevm_calls_are_named():
    need_corpus()
    from chanlog.render import render
    from chanlog.sources.nodelog import import_file

    log = next(p for p in corpus_logs() if p.name == "sc_ws_contracts.md" and "legacy" in str(p))
    doc = render(import_file(log))
    assert "- call: `main(" in doc and "AEVM" in doc


def test_render_unknown_function_shows_its_hash():
    from chanlog.render import render
    from chanlog.transcript import load

    t = load(EXAMPLE)
    assert "- call:" not in render(t)  # no contract calls in the example: nothing added
    annotator = calls.CallAnnotator()
    [a] = annotator.frame({"params": {"call_data": MAIN_42}})
    assert "0xb8177eec(42)" in a.markdown() and "no contract code for it earlier" in a.markdown()


def test_payload_of_accepts_base58check():
    raw = b"\x2b\x11\xb8\x17\x7e\xec\x1b\x54"
    assert calls.payload_of(encode_api("cb", raw, encoding="base58")) == raw
    with pytest.raises(CodecError, match="expected a cb_ string"):
        calls.payload_of("tx_abc")


# -- hostile contract values: mutations of real ones ------------------------------------------------------

def _mutate(data: bytes, how: int, at: int, byte: int) -> bytes:
    at %= max(1, len(data))
    if how == 0:  # change one byte
        return data[:at] + bytes([byte]) + data[at + 1:]
    if how == 1:  # cut short
        return data[:at]
    if how == 2:  # insert a byte
        return data[:at] + bytes([byte]) + data[at:]
    return data[:at] + data[at + 1:]  # drop a byte


_mutations = st.tuples(st.integers(0, 3), st.integers(0, 1 << 16), st.integers(0, 255))


@settings(max_examples=400, deadline=None)
@given(_mutations)
def test_mutated_contract_code_parses_or_fails_cleanly(mutation):
    data = _mutate(parse_api(CODE).payload, *mutation)
    try:
        c = contract.parse_contract_bytes(data)
    except CodecError as exc:
        assert str(exc).startswith("contract code")
        return
    if c.vm == "fate":
        assert contract.encode_fate_code(c.functions, c.symbols, c.annotations) == c.container["byte_code"].payload


@settings(max_examples=400, deadline=None)
@given(_mutations)
def test_mutated_call_data_decodes_or_fails_cleanly(mutation):
    code = contract.parse_contract(CODE)
    data = _mutate(parse_api(MAIN_42).payload, *mutation)
    try:
        call = calls.decode_call(data, code, "fate")
    except CodecError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(data)
        return
    assert calls.encode_call(call) == data


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda b: b[:-10], "not RLP|contract code"),
    (lambda b: b.replace(bytes.fromhex("fe44d6441f"), bytes.fromhex("fd44d6441f")), "byte_code"),
])
def test_malformed_contract_code_names_the_place(mutate, words):
    import re

    with pytest.raises(CodecError) as info:
        contract.parse_contract_bytes(mutate(parse_api(CODE).payload))
    assert re.search(words, str(info.value)), str(info.value)


def test_fate_code_errors_name_the_function_and_offset():
    c = contract.parse_contract(CODE)
    code = c.container["byte_code"].payload
    bad = code.replace(bytes([0x01, 0x03, 0x3F]), bytes([0xEE, 0x03, 0x3F]), 1)  # RETURNR -> unknown opcode
    with pytest.raises(CodecError, match=r"function 0 \(init\): at byte \d+: unknown FATE opcode 0xee"):
        contract.parse_fate_code(bad)


def test_render_survives_hostile_contract_values():
    from chanlog.render import render
    from chanlog.sources.nodelog import import_log

    deep = encode_api("cb", b"\x13" * 3000 + b"\x03")
    frames = [
        {"code": "cb_" + "A" * 40, "call_data": deep, "odd.key[0]": {"call_data": MAIN_42}},
        {"return_value": encode_api("cb", b"\x0d\x61"), "return_type": "ok", "contract_id": "ct_x"},
        {"code": encode_api("cb", b"\xc4\x46\x03\x80\x80"), "call_data": "cb_`<b>`"},
    ]
    log = "".join(
        f"\n#### initiator <--- node\n```javascript\n{json.dumps({'jsonrpc': '2.0', 'method': 'channels.x', 'params': f}, indent=2)}\n```\n"
        for f in frames)
    doc = render(import_log(log, "hostile.md"))
    assert doc.count("could not decode") >= 4, doc
    assert "nested deeper than 64" in doc
    assert "- call: `0xb8177eec(42)`" in doc  # a key with dots and brackets is no problem
    bad = [line for line in doc.splitlines() if line.startswith("- call data: could not decode")]
    assert bad and all(line.endswith(("`", "``")) for line in bad)  # reasons stay inside code spans


def test_arguments_are_checked_against_the_signature():
    code = contract.parse_contract(CODE)
    good = calls.decode_call(parse_api(MAIN_42).payload, code)
    assert good.matches is True
    wrong = calls.decode_call(fate.encode(("\udcb8\x17~\udcec", ("42",))), code)
    assert wrong.name == "main" and wrong.matches is False
    assert "do not have the types" in calls.Annotation("p", "call_data", wrong, where="frame 1").markdown()
    assert calls.call_json(wrong)["arguments_match"] is False
    assert calls.decode_call(parse_api(MAIN_42).payload).matches is None


def test_every_named_corpus_call_matches_its_signature():
    need_corpus()
    calls_seen = [a.value for _, a in corpus_annotations() if a.kind == "call_data" and a.error is None
                  and a.value.function is not None]
    assert calls_seen and all(c.matches for c in calls_seen)


def test_decode_cli_contract_from_a_file_and_stdin(tmp_path: Path):
    code_file = tmp_path / "code.txt"
    code_file.write_text(CODE + "\n")
    result = CliRunner().invoke(main, ["decode", "-", "--contract", str(code_file)], input=f'"{MAIN_42}"\n')
    assert result.exit_code == 0, result.output
    assert "main(42)" in result.output
    missing = CliRunner().invoke(main, ["decode", MAIN_42, "--contract", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "--contract" in missing.output and "Traceback" not in missing.output


def test_contract_book_is_bounded():
    book = calls.ContractBook()
    payload = parse_api(CODE).payload
    for i in range(calls.ContractBook.MAX_CODES + 5):
        book.add(payload + bytes([i % 256, i // 256]), f"frame {i}")  # broken copies: remembered as unparsable
    book.add(payload, "frame x")
    assert len(book) == calls.ContractBook.MAX_CODES
    assert book.lookup(contract.function_hash("main"))[1] == "frame x"


# -- contract code of every version and VM, built from aeser_contract_code's rules (issue 22) --------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(contract_codes())
def test_contract_code_of_every_version_and_vm_round_trips(code):
    from chanlog.codec.transactions import encode_bytes

    c = contract.parse_contract_bytes(code["data"], code["hint"])
    assert c.vm == code["vm"] and c.container.version == code["version"]
    assert encode_bytes(c.container) == code["data"]
    if code["vm"] == "fate":
        assert contract.encode_fate_code(c.functions, c.symbols, c.annotations) == code["byte_code"]
        assert [(f.hash, f.name, f.args, f.returns, f.attributes, f.code) for f in c.functions] == \
            [(f.hash, f.name, f.args, f.returns, f.attributes, f.code) for f in code["functions"]]
        assert c.note is None
    else:
        assert [(f.hash, f.name, f.args, f.returns) for f in c.functions] == code["functions"]
        assert (c.note is None) == bool(code["functions"])
        assert contract.parse_contract_bytes(code["data"], "fate" if code["version"] < 3 else "aevm").vm == "aevm"


@pytest.mark.parametrize("version", [1, 2])
def test_aevm_code_of_2018_without_type_info(version):
    """v1/v2 code is AEVM whatever the type_info (aect_sophia: FATE needs v3); the 2018 symptom was "at byte 3:
    379 trailing bytes after the annotations" from reading EVM code as FATE."""
    from chanlog.codec import build, encode_bytes

    fields = {"source_hash": bytes(32), "type_info": [], "byte_code": bytes.fromhex("6060604052") * 80}
    if version == 2:
        fields["compiler_version"] = "1.0.0"
    data = encode_bytes(build("compiler_sophia", version, fields))
    for hint in (None, "fate", "aevm"):
        c = contract.parse_contract_bytes(data, hint)
        assert c.vm == "aevm" and c.functions == () and c.note == contract.NO_TYPE_INFO
    out = CliRunner().invoke(main, ["decode", encode_api("cb", data)])
    assert out.exit_code == 0 and "functions (AEVM):" in out.output and "empty type_info" in out.output


def test_v3_code_follows_the_vm_of_its_object():
    from chanlog.codec import build, encode_bytes

    data = encode_bytes(build("compiler_sophia", 3, source_hash=bytes(32), type_info=[], byte_code=b"\x60" * 40,
                              compiler_version="unknown", payable=False))
    with pytest.raises(CodecError, match="byte_code"):  # alone, an empty type_info means FATE
        contract.parse_contract_bytes(data)
    assert contract.parse_contract_bytes(data, "aevm").note == contract.NO_TYPE_INFO
    assert contract.vm_of(ct_version=(6 << 16) | 1) == "aevm" and contract.vm_of(ct_version=(7 << 16) | 3) == "fate"
    assert contract.vm_of(vm_version=1) == "aevm" and contract.vm_of(ct_version=1) == "aevm"  # 2018: bare vm
    assert contract.vm_of(vm_version="5") == "fate" and contract.vm_of(abi_version=3) == "fate"
    assert contract.vm_of() is None and contract.vm_of(vm_version=99) is None
    # in a transcript, the create request's vm_version decides
    annotator = calls.CallAnnotator()
    [a] = annotator.frame({"params": {"code": encode_api("cb", data), "vm_version": 6}})
    assert a.error is None and a.value.vm == "aevm" and "empty type\\_info" in a.markdown()


_S, _W = contract.aevm.AType("string"), contract.aevm.AType("word")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(r"[a-z_][A-Za-z0-9_]{0,30}", fullmatch=True), guessable_types.filter(
    lambda t: t.name == "tuple").flatmap(lambda t: st.tuples(st.just(t), guessable_value_of(t))))
def test_2018_aevm_calls_are_named_from_their_call_data(name, t_and_args):
    """aeso_abi (2018): call data is the heap of ``{FunctionName, ArgTuple}``: the call is named and its
    arguments read without the contract, and written back byte for byte."""
    t, args = t_and_args
    data = contract.aevm.encode((name, args), contract.aevm.AType("tuple", (_S, t)))
    call = calls.decode_call(data)
    assert call.vm == "aevm" and call.name == name and call.label == name
    assert call.args is not None and len(call.args) == len(args)
    assert calls.encode_call(call) == data
    assert call.text().startswith(f"{name}(")


def test_2018_call_in_a_transcript_and_its_result():
    from chanlog.codec import build, encode_bytes

    code = encode_bytes(build("compiler_sophia", 1, source_hash=bytes(32), type_info=[], byte_code=b"\x60" * 64))
    data = contract.aevm.encode(("deposit", (5, "x")), contract.aevm.AType("tuple", (_S, contract.aevm.AType(
        "tuple", (_W, _S)))))
    annotator = calls.CallAnnotator()
    annotator.frame({"action": "update", "tag": "new_contract",
                     "payload": {"vm_version": 1, "code": encode_api("cb", code)}})
    [call] = annotator.frame({"payload": {"contract": "ct_x", "call_data": encode_api("cb", data)}})
    assert call.error is None and call.value.text() == 'deposit(5, "x")'
    assert "named in the call data" in call.markdown() and "word, string" in call.markdown()
    [ret] = annotator.frame({"contract_id": "ct_x", "return_value": encode_api("cb", contract.aevm.encode(7, _W))})
    assert ret.value.text() == "7" and "type not known" in ret.markdown()  # not "<32 bytes, type unknown>"


def test_contract_code_inside_a_tx_is_found_without_decoding_the_others(monkeypatch):
    """:func:`calls._codes_in_tx` skips a tx_ without a compiler_sophia object's bytes; on every tx_ of the
    corpus's contract logs it finds the same code as decoding every one, and it finds some."""
    need_corpus()
    from chanlog.sources.nodelog import import_file

    texts = set()
    for path in corpus_logs():
        if "contract" in path.name:
            for event in import_file(path).events:
                if getattr(event, "is_json", False):
                    texts.update(text for _, _, text, _ in calls._walk(event.data, "", blobs=True)
                                 if text.startswith("tx_"))
    filtered = {t: calls._codes_in_tx.__wrapped__(t) for t in texts}
    monkeypatch.setattr(calls, "_MAY_HOLD_CODE", re.compile(rb""))  # every tx decoded
    assert filtered == {t: calls._codes_in_tx.__wrapped__(t) for t in texts}
    assert sum(1 for codes in filtered.values() if codes) > 5
