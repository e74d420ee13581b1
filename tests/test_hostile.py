"""Hostile input (issue 16): every case the attack report found, each as the command a user would run.

Each command must end with exit 0, or with exactly one ``chanlog: error: <where>: <what>`` line and exit 1
(2 for usage, and for ``diff``'s unreadable input): never a traceback, never a hang, never raw terminal
escapes. The time bounds below are hang guards (the old code took 41 s or never ended), not benchmarks:
``benchmarks/hostile.py`` measures linearity.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import rlp
import yaml
from click.testing import CliRunner
from conftest import EXAMPLE

from chanlog.cli import main
from chanlog.codec import encoding
from chanlog.codec import transactions as dec
from chanlog.codec.encoding import MAX_BASE58_CHARS, EncodingError, encode_api, parse_api
from chanlog.codec.transactions import (
    MAX_OBJECT_DEPTH,
    MAX_RLP_DEPTH,
    MAX_RLP_ITEMS,
    annotate,
    read_rlp,
    strip_signatures,
)
from chanlog.errors import TranscriptError, terminal_safe
from chanlog.model import MAX_JSON_DEPTH, JSONLimitError, parse_json
from chanlog.transcript import MAX_YAML_DEPTH, loads

#: Seconds any one hostile command may take (the fixed code takes milliseconds; the old one 41 s or forever).
HANG_GUARD = 10.0

BASE = """\
chanlog: 1
name: hostile
protocol: json-rpc
events:
- event: open
  role: initiator
  conn: 0
  url: ws://localhost:3014/channel?role=initiator
- event: frame
  role: initiator
  conn: 0
  from: node
  data:
    jsonrpc: '2.0'
    method: channels.info
    params:
      data:
        event: fsm_up
"""

LOG_HEAD = ("\n#### initiator opens a WebSocket connection\n```\nws://localhost:3014/channel?role=initiator\n```\n\n"
            "#### initiator <--- node\n```javascript\n")


def invoke(*args: str, input: str | bytes | None = None):
    start = time.monotonic()
    result = CliRunner().invoke(main, list(args), input=input)
    assert time.monotonic() - start < HANG_GUARD, f"chanlog {' '.join(args)} took too long"
    return result


def one_error(result, *, code: int = 1, says: str = "") -> str:
    """Assert a clean failure: exit ``code``, no traceback, one ``chanlog: error:`` line naming ``says``."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chanlog: error: "), result.stderr
    assert "Traceback" not in result.output
    assert says in lines[0], lines[0]
    assert "\x1b" not in lines[0]
    return lines[0]


def signed(inner: bytes, signatures: list | None = None) -> bytes:
    """serializations.md, signed_tx v1: ``[11, 1, [signatures], transaction]``."""
    return rlp.encode([b"\x0b", b"\x01", signatures if signatures is not None else [], inner])


def nested_lists(depth: int) -> bytes:
    """``depth`` RLP lists, each holding the next, around an empty string (headers built inside out, joined
    once)."""
    headers, n = [], 1
    for _ in range(depth):
        if n < 56:
            header = bytes([0xC0 + n])
        else:
            size = n.to_bytes((n.bit_length() + 7) // 8, "big")
            header = bytes([0xF7 + len(size)]) + size
        headers.append(header)
        n += len(header)
    return b"".join(reversed(headers)) + b"\x80"


# -- freezes: every decoder linear, with named limits -------------------------------------------------------------

def test_a_long_base58_looking_tx_fails_at_once_without_base58_decoding(monkeypatch):
    def quadratic(*_args):
        raise AssertionError("base58 must not be tried on a body this long")

    monkeypatch.setattr(encoding, "_b58decode", quadratic)
    for body in ("A" * 200_000, "A" * 199_999, "1" * (MAX_BASE58_CHARS + 1)):
        with pytest.raises(EncodingError) as info:
            parse_api("tx_" + body)
        assert "MAX_BASE58_CHARS" in info.value.message or "base64check" in info.value.message
    with pytest.raises(EncodingError, match="MAX_BASE58_CHARS"):
        parse_api("ak_" + "2" * (MAX_BASE58_CHARS + 1))


def test_decode_command_refuses_the_200000_character_tx():
    one_error(invoke("decode", "-", input="tx_" + "A" * 200_000 + "\n"), says="tx_AAAA")


def test_the_table_picks_the_alphabet():
    tx, ak = encoding.PREFIXES["tx"], encoding.PREFIXES["ak"]
    assert encoding.body_encoding(ak, "abc") == encoding.BASE58
    assert encoding.body_encoding(tx, "+JU5") == encoding.BASE64  # '+' is not base58
    assert encoding.body_encoding(tx, "abc") == encoding.BASE58  # 3 characters cannot be base64
    assert encoding.body_encoding(tx, "abcd") is None  # either: the check bytes decide


def test_a_mebibyte_rlp_list_inside_a_signed_tx_stops_at_max_rlp_items():
    blob = encode_api("tx", signed(rlp.encode([b"\x0c", b"\x01"]), [b"\x01"] * (1 << 20)))
    root = annotate(blob)
    assert f"MAX_RLP_ITEMS ({MAX_RLP_ITEMS:,})" in root.error
    assert strip_signatures(blob) is None
    one_error(invoke("decode", blob), says="MAX_RLP_ITEMS")
    one_error(invoke("decode", "--json", blob), says="MAX_RLP_ITEMS")


def test_rlp_within_the_limits_reads_as_pyrlp_does():
    items = [b"\x01"] * (MAX_RLP_ITEMS - 10)
    assert read_rlp(rlp.encode(items)) == items
    nested = nested_lists(MAX_RLP_DEPTH - 1)
    assert read_rlp(nested) == rlp.decode(nested)
    with pytest.raises(rlp.DecodingError, match="MAX_RLP_DEPTH"):
        read_rlp(nested_lists(MAX_RLP_DEPTH + 1))
    for bad in (b"\xc2\x01", b"\xc1\x82\x01\x02", b"\x81\x01", b"\xc0\x00"):
        with pytest.raises((rlp.DecodingError, IndexError)):
            read_rlp(bad)


def test_deep_rlp_lists_and_nested_signed_txs_are_errors_not_crashes():
    one_error(invoke("decode", "--json", encode_api("tx", nested_lists(100_000))), says="MAX_RLP_DEPTH")
    inner = rlp.encode([b"\x0c", b"\x01"])
    for _ in range(2 * MAX_OBJECT_DEPTH):
        inner = signed(inner)
    blob = encode_api("tx", inner)
    for args in (("decode", blob), ("decode", "--json", blob)):
        one_error(invoke(*args), says=f"MAX_OBJECT_DEPTH ({MAX_OBJECT_DEPTH})")
    with pytest.raises(dec.DecodeError, match="MAX_OBJECT_DEPTH"):
        dec.decode(blob)


def test_json_limits_are_named():
    for text, limit in (("[" * 100_000 + "]" * 100_000, "MAX_JSON_DEPTH"),
                        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "MAX_JSON_DEPTH"),
                        ('{"a": ' + "1" * 100_001 + "}", "MAX_NUMBER_DIGITS"),
                        ("[NaN]", "not a JSON value"), ("[1e999]", "too large")):
        with pytest.raises(JSONLimitError, match=limit):
            parse_json(text)
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None
    assert parse_json('{"a": "' + "1" * 5000 + '", "b": 1.5e10}')["b"] == 1.5e10


# -- YAML: aliases, tags, dates, numbers, depth ---------------------------------------------------------------------

def alias_bomb() -> str:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "chanlog: 1\nname: bomb\nprotocol: json-rpc\n" + "\n".join(levels) + "\nevents: []\n"


HOSTILE_TRANSCRIPTS = {
    "alias bomb": (alias_bomb(), "aliases"),
    "binary": (BASE.replace("event: fsm_up", "event: !!binary aGVsbG8="), "tag:yaml.org,2002:binary"),
    "set": (BASE.replace("event: fsm_up", "event: !!set {a, b}"), "tag:yaml.org,2002:set"),
    "application tag": (BASE.replace("event: fsm_up", "event: !x bar"), "tag !x"),
    "method 42": (BASE.replace("method: channels.info", "method: 42"), "method must be a string"),
    "bad url": (BASE.replace("url: ws://localhost:3014/channel?role=initiator", "url: http://[::1"), "url does not parse"),
    "huge number": (BASE.replace("event: fsm_up", "event: " + "1" * 100_001), "MAX_NUMBER_DIGITS"),
    "deep": (BASE.replace("event: fsm_up", "event: " + "[" * 500 + "]" * 500), "MAX_YAML_DEPTH"),
    "negative conn": (BASE.replace("conn: 0\n  from", "conn: -1\n  from"), "conn must be"),
    "huge conn": (BASE.replace("conn: 0\n  from", "conn: 99999999999999\n  from"), "MAX_CONN"),
    "NaN t": (BASE.replace("conn: 0\n  from", "conn: 0\n  t: .nan\n  from"), "not a JSON number"),
    "data and text": (BASE.replace("  data:\n", "  text: hi\n  data:\n"), "exactly one of data, text, binary"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_TRANSCRIPTS))
def test_hostile_transcripts_are_refused_by_every_command(tmp_path, name):
    text, says = HOSTILE_TRANSCRIPTS[name]
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    where = f"{path}:"
    for layout in ("doc", "node"):
        line = one_error(invoke("render", "--layout", layout, str(path)), says=says)
        assert where in line
    one_error(invoke("diff", str(path), str(EXAMPLE)), code=2, says=says)
    one_error(invoke("replay", str(path), "--port", "0"), says=says)
    one_error(invoke("play", str(path), "--url", "ws://127.0.0.1:9/channel"), says=says)


def test_the_alias_bomb_is_refused_before_it_expands():
    with pytest.raises(TranscriptError, match="aliases"):
        loads(alias_bomb(), "bomb.yaml")
    assert len(alias_bomb()) < 700


def test_unquoted_dates_stay_strings_and_yaml_keeps_json_types():
    text = BASE.replace("event: fsm_up", "event: 2019-03-13\n        when: 2019-03-13 11:04:47.10\n"
                                         "        '<<': merge is a plain key")
    t = loads(text, "dates.yaml")
    frame = next(f for _, f in t.frames())
    data = frame.data["params"]["data"]
    assert data == {"event": "2019-03-13", "when": "2019-03-13 11:04:47.10", "<<": "merge is a plain key"}
    json.dumps(frame.data)  # plain JSON types only
    assert invoke("render", "-", input=text).exit_code == 0


def test_yaml_depth_limit_leaves_room_for_real_frames():
    deep = "[" * (MAX_JSON_DEPTH - 4) + "]" * (MAX_JSON_DEPTH - 4)
    assert loads(BASE.replace("event: fsm_up", f"event: {deep}"), "ok.yaml")
    assert MAX_YAML_DEPTH > MAX_JSON_DEPTH


def test_play_of_a_transcript_without_events(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("chanlog: 1\nname: empty\nprotocol: json-rpc\nevents: []\n")
    one_error(invoke("play", str(path), "--url", "ws://127.0.0.1:9/channel"), says="nothing to play")


# -- logs and journals ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body,says", [("[" * 100_000 + "]" * 100_000, "MAX_JSON_DEPTH"),
                                       ('{"a": ' + "1" * 100_001 + "}", "MAX_NUMBER_DIGITS")])
def test_hostile_json_in_a_log(tmp_path, body, says):
    log = tmp_path / "case.md"
    log.write_text(LOG_HEAD + body + "\n```\n")
    one_error(invoke("import", str(log)), says=says)
    one_error(invoke("render", "--from-log", str(log)), says=f"{log}:9")


def test_deeply_nested_line_in_a_journal(tmp_path):
    journal = tmp_path / "session.jsonl"
    journal.write_text("[" * 100_000 + "\n")
    one_error(invoke("recover", str(journal), "-o", str(tmp_path / "out.yaml")), says="session.jsonl")


# -- what a shell hands over ----------------------------------------------------------------------------------------

def test_invalid_utf8_on_stdin_and_in_descriptions(tmp_path):
    one_error(invoke("decode", "-", input=b"tx_\xff\xfe"), says="<stdin>: not UTF-8 text")
    one_error(invoke("render", "-", input=b"chanlog: 1\n\xff"), says="<stdin>: not UTF-8 text")
    descriptions = tmp_path / "d.yaml"
    descriptions.write_bytes(b"events:\n  x: \xff\n")
    one_error(invoke("render", str(EXAMPLE), "--descriptions", str(descriptions)), says=str(descriptions))


def test_unwritable_output_and_full_disk(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    target = blocker / "out.md"  # a folder that is a file
    one_error(invoke("render", str(EXAMPLE), "-o", str(target)), says=str(target))
    if Path("/dev/full").exists():
        import subprocess
        import sys

        with open("/dev/full", "w") as full:
            proc = subprocess.run([sys.executable, "-m", "chanlog", "render", str(EXAMPLE)], stdout=full,
                                  stderr=subprocess.PIPE, text=True, timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.splitlines() == ["chanlog: error: <stdout>: cannot write: No space left on device"]


@pytest.mark.parametrize("template,says", [("line\n{{ 1 / 0 }}\n", "doc.md.j2:2: template failed: ZeroDivisionError"),
                                           ("{{ x.y.z }}\n", "'x' is undefined"),
                                           ("{% for %}\n", "template syntax")])
def test_a_failing_user_template_is_one_line(tmp_path, template, says):
    (tmp_path / "doc.md.j2").write_text(template)
    one_error(invoke("render", str(EXAMPLE), "--template-dir", str(tmp_path)), says=says)


# -- terminal escapes -----------------------------------------------------------------------------------------------

def test_control_characters_are_shown_escaped():
    assert terminal_safe("a\x1b[2Jb\x07\u202ec\x9b\nd\te") == "a\\x1b[2Jb\\x07\\u202ec\\x9b\\nd\te"
    assert terminal_safe("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"
    line = one_error(invoke("decode", "tx_\x1b]0;owned\x07AAAA"))
    assert "\\x1b]0;owned\\x07" in line and "\x07" not in line


def test_a_file_name_with_escapes_is_shown_escaped(tmp_path):
    path = tmp_path / "evil\x1b[31m.yaml"
    path.write_text("chanlog: 1\nevents: 3\n")
    line = one_error(invoke("render", str(path)), says="events must be a list")
    assert "evil\\x1b[31m.yaml" in line


def test_decoded_output_is_escaped_for_the_terminal(monkeypatch):
    monkeypatch.setattr(dec, "format_tree", lambda _root: "name: \x1b[2Jhello\nnext\n")
    ak = b"\x01" + bytes(32)
    spend = rlp.encode([b"\x0c", b"\x01", ak, ak, b"\x01", b"\x01", b"", b"\x01", b""])
    result = invoke("decode", encode_api("tx", spend))
    assert result.exit_code == 0 and result.output == "name: \\x1b[2Jhello\nnext\n"


def test_an_unexpected_exception_is_one_line_unless_debugging(monkeypatch):
    def broken(_root):
        raise RuntimeError("bug \x1b[31m")

    monkeypatch.setattr(dec, "format_tree", broken)
    blob = encode_api("tx", rlp.encode([b"\x0c", b"\x01", b"", b"", b"", b"", b"", b"", b""]))
    line = one_error(invoke("decode", blob), says="internal error: RuntimeError: bug \\x1b[31m")
    assert "CHANLOG_DEBUG" in line
    monkeypatch.setenv("CHANLOG_DEBUG", "1")
    result = CliRunner().invoke(main, ["decode", blob])
    assert isinstance(result.exception, RuntimeError)


def test_loader_is_still_libyaml_when_present():
    from chanlog.transcript import JSONTypedLoader

    if hasattr(yaml, "CSafeLoader"):
        assert issubclass(JSONTypedLoader, yaml.CSafeLoader)


@pytest.mark.parametrize("shape", ["lists", "objects"])
def test_a_frame_at_the_depth_limit_passes_every_command(tmp_path, shape):
    depth = MAX_JSON_DEPTH - 3  # the frame's own data, params and data mappings come first
    deep = "[" * depth + "]" * depth if shape == "lists" else "{a: " * depth + "1" + "}" * depth
    path = tmp_path / "deep.yaml"
    path.write_text(BASE.replace("event: fsm_up", f"event: {deep}"))
    for layout in ("doc", "node"):
        assert invoke("render", "--layout", layout, str(path)).exit_code == 0
    assert invoke("diff", str(path), str(path)).exit_code == 0
    log = tmp_path / "deep.md"
    log.write_text(invoke("render", "--layout", "node", str(path)).stdout)
    assert invoke("import", str(log)).exit_code == 0
    one_error(invoke("play", str(path), "--url", "ws://127.0.0.1:9/channel"), says="cannot open")
    deeper = tmp_path / "deeper.yaml"
    deeper.write_text(BASE.replace("event: fsm_up", "event: " + "[" * (depth + 2) + "]" * (depth + 2)))
    one_error(invoke("render", str(deeper)), says="MAX_YAML_DEPTH")
