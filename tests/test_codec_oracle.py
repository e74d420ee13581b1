"""Oracle: every FATE contract, call and result of the corpus decoded by chanlog.codec and by the reference
implementation, ``@aeternity/aepp-calldata`` (``ContractEncoder.decode``, ``BytecodeContractCallEncoder``
``decodeCall`` / ``decodeResult``), compared field by field. Needs node and npm (skips with the reason)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from npm import install
from test_codec_calls import corpus_annotations

from chanlog.codec import calls, fate
from chanlog.codec.encoding import encode_api
from chanlog.codec.transactions import encode_bytes

HERE = Path(__file__).parent / "calldata"
#: chanlog's FATE type names -> aepp-calldata's (FateTypes.js).
TYPE_NAMES = {"address": "account_pubkey", "contract": "contract_pubkey", "oracle": "oracle_pubkey",
              "oracle_query": "oracle_query_id"}


def plain(v):
    """A chanlog value in the oracle script's JSON shape of aepp-calldata's values."""
    kind = type(v)
    if kind is bool or kind is str:
        return v
    if kind is int:
        return {"$bigint": str(v)}
    if kind is fate.Address:
        return str(v)
    if kind is fate.Bytes:
        return {"$bytes": v.hex()}
    if kind in (tuple, fate.List):
        return [plain(x) for x in v]
    if kind is fate.Map:
        return {"$map": [[plain(k), plain(x)] for k, x in v.items]}
    raise AssertionError(f"no oracle shape for {kind.__name__} (extend plain())")


def cb(contract) -> str:
    return encode_api("cb", encode_bytes(contract.container))


def requests():
    """Unique FATE contracts, named calls (with their code) and results of named calls, from the corpus."""
    contracts: dict[str, object] = {}
    call_reqs: dict[tuple[str, str], calls.Call] = {}
    result_reqs: dict[tuple[str, str, str, str], calls.Result] = {}
    code_of: dict[tuple[bytes, str], str] = {}  # (hash, signature) -> a contract defining that function
    found = [a for _, a in corpus_annotations() if a.error is None and a.value.vm == "fate"]
    for a in found:
        if a.kind == "contract":
            text = cb(a.value)
            contracts[text] = a.value
            for f in a.value.functions:
                code_of[(f.hash, f.signature)] = text
    for a in found:
        f = a.value.function if a.kind != "contract" else None
        if f is None:
            continue
        code = code_of[(f.hash, f.signature)]
        if a.kind == "call_data":
            call_reqs[(code, encode_api("cb", a.value.raw))] = a.value
        else:
            result_reqs[(code, f.name, encode_api("cb", a.value.raw), a.value.return_type)] = a.value
    return contracts, call_reqs, result_reqs


def test_fate_against_aepp_calldata():
    need_corpus()
    if shutil.which("node") is None:
        pytest.skip("node is needed to run @aeternity/aepp-calldata (not found on PATH)")
    root = install(HERE, "calldata", "to run @aeternity/aepp-calldata's decoder")
    contracts, call_reqs, result_reqs = requests()
    assert contracts and call_reqs and result_reqs
    request = {"contracts": list(contracts),
               "calls": [{"code": c, "call_data": d} for c, d in call_reqs],
               "results": [{"code": c, "function": f, "return_value": v, "return_type": t}
                           for c, f, v, t in result_reqs]}
    done = subprocess.run(["node", str(HERE / "oracle.mjs"), str(root)], input=json.dumps(request),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)

    compared = 0
    for (_text, ours), theirs in zip(contracts.items(), answer["contracts"], strict=True):
        assert "ok" in theirs, theirs
        assert len(theirs["ok"]) == len(ours.functions)
        for f, g in zip(ours.functions, theirs["ok"], strict=True):
            assert f.hash.hex() == g["id"]
            assert f.name == g["name"]
            assert sorted(a for a, on in (("private", f.private), ("payable", f.payable)) if on) \
                == sorted(g["attributes"])
            assert [TYPE_NAMES.get(t.name, t.name) for t in f.args] == g["args"], f.signature
            assert TYPE_NAMES.get(f.returns.name, f.returns.name) == g["returns"], f.signature
            assert len(f.code) == g["instructions"]
            compared += 1
    for ((_code, data), call), theirs in zip(call_reqs.items(), answer["calls"], strict=True):
        assert "ok" in theirs, (data, theirs)
        assert theirs["ok"]["functionId"] == call.hash.hex()
        assert theirs["ok"]["functionName"] == call.function.name
        assert theirs["ok"]["args"] == [plain(a) for a in call.args], call.text()
        compared += 1
    for key, theirs in zip(result_reqs, answer["results"], strict=True):
        ours = result_reqs[key]
        assert "ok" in theirs, (key, theirs)
        if ours.function.name == "init" and ours.return_type == "ok":  # aepp-calldata reads init's result as void
            assert ours.value == ()
        else:
            assert theirs["ok"] == plain(ours.value), key
        compared += 1
    print(f"\naepp-calldata agrees on {len(contracts)} contracts ({compared - len(call_reqs) - len(result_reqs)} "
          f"functions), {len(call_reqs)} calls and {len(result_reqs)} results")


_KEYS = st.integers(-(1 << 70), 1 << 70) | st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_LEAVES = st.one_of(
    st.integers(-(1 << 300), 1 << 300), st.booleans(), st.text(st.characters(exclude_categories=("Cs",)), max_size=70),
    st.binary(max_size=70).map(fate.Bytes),
    st.builds(fate.Address, st.sampled_from(list(fate.ADDRESS_PREFIXES)), st.binary(min_size=32, max_size=32)),
)
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=18).map(tuple), st.lists(inner, max_size=18).map(fate.List),
    st.dictionaries(_KEYS, inner, max_size=5).map(lambda d: fate.Map(tuple(d.items()))),
), max_leaves=12)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.data_too_large, HealthCheck.too_slow])
@given(st.lists(_VALUES, min_size=15, max_size=15))
def test_fate_values_written_by_chanlog_read_by_aepp_calldata(values):
    """Differential: what chanlog writes, aepp-calldata's ContractByteArrayEncoder.decode reads as the same
    value (integers of any size, strings, bytes, all address kinds, tuples, lists, maps)."""
    if shutil.which("node") is None:
        pytest.skip("node is needed to run @aeternity/aepp-calldata (not found on PATH)")
    root = install(HERE, "calldata", "to run @aeternity/aepp-calldata's decoder")
    blobs = [encode_api("cb", fate.encode(v)) for v in values]
    done = subprocess.run(["node", str(HERE / "oracle.mjs"), str(root)], input=json.dumps({"values": blobs}),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for value, blob, theirs in zip(values, blobs, json.loads(done.stdout)["values"], strict=True):
        assert theirs == {"ok": plain(value)}, blob
