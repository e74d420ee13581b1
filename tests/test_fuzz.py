"""Fuzzing every command with Hypothesis (issue 16).

Inputs: generated transcripts (well-formed and not), node logs rendered from them, journals, encoded
blobs and arbitrary text, plus byte-level mutations of real inputs (the example transcript, a journal,
and the shared corpus's logs when present). Every command (import, render in both layouts, decode and
decode --json, diff, recover, play, and the fake node's transcript loading) must end with exit 0, or with
exactly one ``chanlog: error: <where>: <what>`` line and exit 1/2: no traceback, no "internal error",
within :data:`TIME_BOUND` seconds and :data:`MEMORY_BOUND` bytes of Python allocations (tracemalloc).

CI runs :data:`EXAMPLES` examples per test (20 by default, the same ones every run); set
``CHANLOG_FUZZ_EXAMPLES=2000`` for a long run and ``CHANLOG_FUZZ_RANDOM=1`` for new examples each time. Commands run in-process through click's ``CliRunner``.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path

import pytest
import rlp
import yaml
from click.testing import CliRunner
from conftest import EXAMPLE, corpus_logs

from chanlog.cli import main
from chanlog.codec.encoding import PREFIXES, encode_api

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is in the test extra: pip install -e '.[test]'")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: Examples per fuzz test; ``CHANLOG_FUZZ_EXAMPLES`` raises it for a long run.
EXAMPLES = int(os.environ.get("CHANLOG_FUZZ_EXAMPLES", "20"))
#: Seconds one command may take on one fuzzed input (they take milliseconds; a hang guard).
TIME_BOUND = 20.0
#: Peak Python allocations one command may make beyond its input, in bytes.
MEMORY_BOUND = 256 * 1024 * 1024

#: CI runs the same examples every time; ``CHANLOG_FUZZ_RANDOM=1`` draws new ones on each run.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("CHANLOG_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])

EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
BLOBS = sorted({v for v in EXAMPLE_TEXT.split() if v.strip("'\"").startswith("tx_")})

#: Strings an attacker would try: fences, Mermaid directives, HTML, terminal escapes, YAML syntax.
NASTY = ["```", "````js", "%%{init: {'theme': 'dark'}}%%", "<script>alert(1)</script>", "\x1b]0;x\x07",
         "\x1b[2J", "\u202e", "\r\n", "&a", "*a", "!!binary", "2019-03-13", "- ", ": ", "{", "[", "#",
         "tx_", "tx_" + "A" * 5000, "ak_", "\x00", "\ud7ff", "1" * 1200, ".nan", "~", "null", "yes"]


# -- running a command ----------------------------------------------------------------------------------------------

def run(args: list[str], stdin: bytes | str | None = None, *, size: int = 0):
    """Invoke ``chanlog ARGS`` in-process; check the outcome is clean, fast and bounded in memory."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        result = CliRunner().invoke(main, args, input=stdin)
        elapsed = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    where = f"chanlog {' '.join(a[:60] for a in args)}"
    assert elapsed < TIME_BOUND, f"{where} took {elapsed:.1f} s"
    assert peak < MEMORY_BOUND + 50 * size, f"{where} allocated {peak:,} bytes"
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"{where} raised {exc!r}"
    assert result.exit_code in (0, 1, 2), (where, result.exit_code)
    err = result.stderr
    assert "Traceback" not in err and "Traceback" not in result.stdout, (where, err)
    assert "internal error" not in err, (where, err)
    errors = [line for line in err.splitlines() if line.startswith("chanlog: error:")]
    usage = result.exit_code == 2 and err.startswith("Usage:") and err.splitlines()[-1].startswith("Error: ")
    if result.exit_code != 0 and err and not usage:  # click's usage errors (exit 2) have their own shape
        assert len(err.splitlines()) == 1 and len(errors) == 1, (where, err)
    assert "\x1b" not in err, (where, err)
    return result


def check_transcript_file(path: Path, *, size: int) -> None:
    """Every command that reads a transcript (the fake node's loading through ``play``'s, which connects to a
    closed port after loading)."""
    for layout in ("doc", "node"):
        run(["render", "--layout", layout, str(path)], size=size)
    run(["diff", str(path), str(EXAMPLE)], size=size)
    run(["play", str(path), "--url", "ws://127.0.0.1:9/channel", "--timeout", "1"], size=size)
    from chanlog.errors import ChanlogError
    from chanlog.replay import Script, load_transcript

    try:
        Script.build(load_transcript(path))
    except ChanlogError:
        pass


def check_log_file(path: Path, *, size: int) -> None:
    run(["import", str(path)], size=size)
    run(["render", "--from-log", str(path)], size=size)
    run(["render", "--from-log", "--layout", "node", str(path)], size=size)


def check_blob(blob: str) -> None:
    run(["decode", "-"], stdin=blob, size=len(blob))
    run(["decode", "--json", "-"], stdin=blob, size=len(blob))


# -- strategies -----------------------------------------------------------------------------------------------------

texts = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=False, allow_infinity=False), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(texts, inner, max_size=4)),
                           max_leaves=20)
methods = st.sampled_from(["channels.info", "channels.sign.initiator_sign", "channels.update.new",
                           "channels.system", "channels.message", "channels.error"]) | texts


@st.composite
def frame_data(draw):
    if draw(st.booleans()):
        params = {"data": draw(json_values)}
        if draw(st.booleans()):
            params["channel_id"] = draw(st.none() | texts)
        if draw(st.booleans()):
            params["signed_tx"] = draw(st.sampled_from(BLOBS) | texts)
        body = {"jsonrpc": "2.0", "method": draw(methods), "params": params}
        if draw(st.booleans()):
            body["id"] = draw(st.integers(min_value=0, max_value=2**63))
        return body
    return draw(json_values)


@st.composite
def events(draw, conns: int):
    conn = draw(st.integers(min_value=0, max_value=conns - 1) | st.sampled_from([-1, 10**12]))
    role = draw(st.sampled_from(["initiator", "responder"]) | texts)
    base = {"role": role, "conn": conn}
    if draw(st.booleans()):
        base["t"] = draw(st.floats(min_value=0, max_value=1e6) | st.sampled_from([float("nan"), -1.0]))
    kind = draw(st.sampled_from(["open", "frame", "frame", "frame", "note", "close", "bogus"]))
    if kind == "open":
        return {"event": "open", **base, "url": draw(st.sampled_from([
            f"ws://localhost:3014/channel?role={role}", "http://[::1", "ws://h:99999/channel", "", "/channel?x=%zz"])
            | texts)}
    if kind == "frame":
        ev = {"event": "frame", **base, "from": draw(st.sampled_from(["client", "node"]) | texts)}
        for key in draw(st.sets(st.sampled_from(["data", "text", "binary"]), min_size=1, max_size=2)):
            ev[key] = {"data": draw(frame_data()), "text": draw(texts),
                       "binary": draw(st.sampled_from(["AAEC", "not base64!", ""]))}[key]
        if "data" in ev and draw(st.booleans()):
            ev["format"] = draw(st.sampled_from(["compact", "pretty", "spaced", "weird"]))
        return ev
    if kind == "note":
        return {"event": "note", **base, "text": draw(texts)}
    if kind == "close":
        return {"event": "close", **base, "code": draw(st.sampled_from([1000, 1006, -5, 70000]) | st.none()),
                "closed_by": draw(st.sampled_from(["client", "node"]))}
    return {"event": kind, **base}


@st.composite
def transcripts(draw):
    conns = draw(st.integers(min_value=1, max_value=4))
    doc = {"chanlog": draw(st.sampled_from([1, 1, 1, 2, "1"])), "name": draw(texts),
           "protocol": draw(st.sampled_from(["json-rpc", "legacy", "other"])),
           "events": draw(st.lists(events(conns), max_size=12))}
    return yaml.dump(doc, allow_unicode=True, sort_keys=False)


@st.composite
def mutated(draw, original: bytes):
    """``original`` with a few byte-level edits: deletions, insertions of nasty text, duplications."""
    data = bytearray(original)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if not data:
            break
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        op = draw(st.sampled_from(["delete", "insert", "duplicate", "flip", "truncate"]))
        if op == "delete":
            del data[at:at + draw(st.integers(min_value=1, max_value=64))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(NASTY)).encode("utf-8", "surrogatepass") \
                if draw(st.booleans()) else draw(st.binary(max_size=16))
        elif op == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(min_value=1, max_value=200))]
        elif op == "flip":
            data[at] ^= draw(st.integers(min_value=1, max_value=255))
        else:
            del data[at:]
    return bytes(data)


@st.composite
def blobs(draw):
    choice = draw(st.integers(min_value=0, max_value=3))
    if choice == 0 and BLOBS:
        return draw(mutated(draw(st.sampled_from(BLOBS)).encode())).decode("utf-8", "replace")
    if choice == 1:  # a valid envelope around RLP of random shape
        def items(depth: int):
            leaf = st.binary(max_size=40)
            return leaf if depth == 0 else st.one_of(leaf, st.lists(items(depth - 1), max_size=5))
        tag = draw(st.integers(min_value=0, max_value=120))
        fields = draw(st.lists(items(3), max_size=8))
        payload = rlp.encode([tag.to_bytes(1, "big"), b"\x01", *fields])
        return encode_api(draw(st.sampled_from(sorted(p for p in PREFIXES if PREFIXES[p].sizes is None))), payload)
    if choice == 2:
        return draw(st.sampled_from(sorted(PREFIXES))) + draw(st.sampled_from(["_", "$"])) + draw(
            st.text(alphabet="123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz+/=", max_size=300))
    return draw(texts)


# -- the tests ------------------------------------------------------------------------------------------------------

@FUZZ
@given(text=transcripts())
def test_generated_transcripts(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "t.yaml"
    path.write_text(text, encoding="utf-8")
    check_transcript_file(path, size=len(text))
    # and its node-layout rendering, when it renders, read back as a log
    rendered = run(["render", "--layout", "node", str(path)], size=len(text))
    if rendered.exit_code == 0:
        log = path.with_suffix(".md")
        log.write_text(rendered.stdout, encoding="utf-8")
        check_log_file(log, size=len(rendered.stdout))


@FUZZ
@given(data=mutated(EXAMPLE_TEXT.encode()))
def test_mutated_example_transcript(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "t.yaml"
    path.write_bytes(data)
    check_transcript_file(path, size=len(data))
    run(["render", "-"], stdin=data, size=len(data))


@FUZZ
@given(blob=blobs())
def test_encoded_blobs(blob):
    check_blob(blob)


def _sample_journal(path: Path) -> bytes:
    from chanlog.record.journal import JournalWriter

    w = JournalWriter(path)
    w.open()
    w.header("s1", "s1.yaml", "2025-01-01T00:00:00+00:00", 100.0)
    w.open_record(0, "initiator", 100.0, "ws://node:3014/channel?protocol=json-rpc&role=initiator")
    w.frame_record(0, "initiator", "node", 100.5, json.dumps({"jsonrpc": "2.0", "method": "channels.info",
                                                               "params": {"data": {"event": "fsm_up"}}}).encode(), True)
    w.frame_record(0, "initiator", "client", 101.0, b"plain words", True)
    w.frame_record(0, "initiator", "client", 101.5, b"\x00\xff", False)
    w.close_record(0, "initiator", 104.0, 1000, "client", None)
    w.finish_if_unchanged(w.size, 105.0)
    w.close()
    return path.read_bytes()


JOURNAL_SAMPLE = _sample_journal(Path(os.environ.get("TMPDIR", "/tmp")) / f"chanlog-fuzz-{os.getpid()}.jsonl")


@FUZZ
@given(data=mutated(JOURNAL_SAMPLE))
def test_mutated_journals(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    journal = folder / "s1.jsonl"
    journal.write_bytes(data)
    result = run(["recover", str(journal), "-o", str(folder / "out.yaml")], size=len(data))
    if result.exit_code == 0 and (folder / "out.yaml").exists():
        # what recover writes, every reader loads (issue 16: "what recover writes always loads")
        check_transcript_file(folder / "out.yaml", size=len(data))


LOGS = corpus_logs()


@pytest.mark.skipif(not LOGS, reason="the shared corpus is absent (../shared/corpus): no real logs to mutate")
@FUZZ
@given(data=st.data())
def test_mutated_corpus_logs(tmp_path_factory, data):
    original = data.draw(st.sampled_from(LOGS)).read_bytes()
    mutant = data.draw(mutated(original))
    path = tmp_path_factory.mktemp("fuzz") / "log.md"
    path.write_bytes(mutant)
    check_log_file(path, size=len(mutant))
