"""API encoding: the prefix table, base58check / base64check both ways, old spellings, precise errors."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import pickle
import random

import base58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chanlog.codec.encoding import (
    BASE58,
    BASE64,
    PREFIXES,
    ApiValue,
    EncodingError,
    Envelope,
    TruncatedError,
    checksum,
    decode_api,
    encode_api,
    looks_encoded,
    looks_like_blob,
    parse_api,
)


def check(payload: bytes) -> bytes:
    """The check bytes computed here independently: sha256(sha256(payload))[:4]."""
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def b64_text(prefix: str, payload: bytes, sep: str = "_") -> str:
    return prefix + sep + base64.b64encode(payload + check(payload)).decode()


def b58_text(prefix: str, payload: bytes, sep: str = "_") -> str:
    return prefix + sep + base58.b58encode(payload + check(payload)).decode()


def sample_payload(prefix: str, rng: random.Random) -> bytes:
    sizes = PREFIXES[prefix].sizes
    return bytes(rng.randrange(256) for _ in range(sizes[0] if sizes else rng.randrange(1, 80)))


def test_table_matches_the_spec_for_key_prefixes():
    assert PREFIXES["tx"].encoding == BASE64 and PREFIXES["tx"].sizes is None
    assert PREFIXES["ak"].encoding == BASE58 and PREFIXES["ak"].sizes[0] == 32
    assert PREFIXES["st"].encoding == BASE64 and PREFIXES["st"].sizes == (32,)
    assert PREFIXES["sg"].encoding == BASE58 and PREFIXES["sg"].sizes[0] == 64
    assert PREFIXES["nm"].sizes is None
    assert {"ba", "cb", "ck", "cs", "cv", "or", "ov", "pi", "ss", "tx"} == {
        p for p, row in PREFIXES.items() if row.encoding == BASE64 and row.sizes is None}


@pytest.mark.parametrize("prefix", sorted(PREFIXES))
def test_every_prefix_round_trips_and_matches_an_independent_encoder(prefix):
    rng = random.Random(prefix)
    payload = sample_payload(prefix, rng)
    text = encode_api(prefix, payload)
    expected = (b58_text if PREFIXES[prefix].encoding == BASE58 else b64_text)(prefix, payload)
    assert text == expected
    assert decode_api(text) == (prefix, payload)
    env = parse_api(text)
    assert env == Envelope(prefix, payload, PREFIXES[prefix].encoding, "_")
    assert env.text() == text


def test_tx_in_base58_and_dollar_separator_are_read_and_written_back_the_same_way():
    payload = bytes.fromhex("f84b0b01c0b846f844320101") + os.urandom(20)
    old = b58_text("tx", payload, sep="$")
    env = parse_api(old)
    assert (env.prefix, env.payload, env.encoding, env.separator) == ("tx", payload, BASE58, "$")
    assert env.text() == old
    assert parse_api(b58_text("tx", payload)).encoding == BASE58
    assert parse_api(b64_text("tx", payload)).encoding == BASE64


def test_old_65_byte_account_keys_are_accepted():
    key = b"\x04" + os.urandom(64)
    assert decode_api(b58_text("ak", key, sep="$")) == ("ak", key)


def test_encode_with_other_alphabet_and_separator():
    payload = os.urandom(40)
    assert encode_api("tx", payload, encoding=BASE58, separator="$") == b58_text("tx", payload, "$")


@pytest.mark.parametrize("prefix,n", [("ak", 32), ("sg", 64), ("st", 32), ("cb", 0), ("ba", 5), ("tx", 100)])
def test_api_value_writes_its_text_on_first_use_and_acts_as_it(prefix, n):
    payload = bytes(random.Random(n).randrange(256) for _ in range(n)) or b"\x00"
    value = ApiValue(prefix, payload)
    assert value._text is None  # nothing written yet
    text = encode_api(prefix, payload)
    assert str(value) == text and value._text == text and f"{value}" == text
    assert value == text and text == value and hash(value) == hash(text) and value in {text}
    assert value == ApiValue(prefix, payload) and value != ApiValue("ba" if prefix != "ba" else "cb", payload)
    assert value != "" and value != text[:-1] + ("a" if text[-1] != "a" else "b") and value != 5
    assert value.startswith(prefix + "_") and value[:3] == prefix + "_" and len(value) == len(text)
    assert "x" + value == "x" + text and value + "x" == text + "x" and sorted([value, "zz"])[0] is value
    assert decode_api(str(value)) == (prefix, payload)
    assert copy.deepcopy(value) == value and pickle.loads(pickle.dumps(value)) == value


def test_api_value_has_no_other_attributes():
    with pytest.raises(AttributeError):
        ApiValue("ak", bytes(32))._missing  # noqa: B018


def test_checksum_is_double_sha256():
    assert checksum(b"abc") == check(b"abc")


def err(text: str) -> EncodingError:
    with pytest.raises(EncodingError) as info:
        parse_api(text)
    return info.value


def test_unknown_prefix():
    e = err("zz_" + base64.b64encode(b"x" * 8).decode())
    assert "unknown prefix 'zz'" in e.message
    assert e.where.startswith("zz_")


def test_not_api_encoded():
    assert "expected '<prefix>_<body>'" in err("hello").message
    assert "expected an API-encoded string" in err(42).message  # type: ignore[arg-type]


def test_bad_character_names_its_position():
    good = b64_text("st", bytes(32))  # st_AAAA...: every character before the '*' is base58 too
    bad = good[:10] + "*" + good[11:]
    assert err(bad).message == "bad character '*' at position 11 (neither base64 nor base58)"  # st: 2018 base58
    assert err(good[:8] + "0*" + good[10:]).message == (  # '0' is base64, not base58
        "bad character '*' at position 10 (not base64); not base58 either: bad character '0' at position 9")
    ok = b58_text("ok", os.urandom(32))  # base58 only
    assert err(ok[:10] + "*" + ok[11:]).message == "bad character '*' at position 11 (not base58)"
    assert err("ak_1234O6789abcdefgh").message == "bad character 'O' at position 8 (not base58)"


def test_truncated_example_is_reported_as_such():
    e = err("tx_+JU5AaEGrATZCq...")
    assert isinstance(e, TruncatedError)
    assert e.kept == "+JU5AaEGrATZCq"
    assert e.message.startswith("truncated: the body ends with '...'")
    assert isinstance(err("ss_+Ks+AIrJ\u2026"), TruncatedError)


def test_bad_checksum_with_and_without_a_stray_character():
    payload = bytes(range(50))
    good = b58_text("ak", payload[:32])
    flipped = good[:-1] + ("2" if good[-1] != "2" else "3")
    e = err(flipped)
    assert e.message.startswith("bad checksum: the base58check body ends in")
    stray = good[:3] + "i" + good[3:]
    assert "without the 'i' at position 4 it is a valid base58check body" in err(stray).message
    tx = b58_text("tx", payload)
    assert "without the 'i' at position 4 it is a valid base58check body" in err(tx[:3] + "i" + tx[3:]).message


def test_a_stray_character_is_pointed_at_only_at_either_end_of_the_body():
    """The hint tries the two ends only (two decodes: linear); a stray character inside is not searched for."""
    good = b64_text("tx", bytes(range(40)))
    assert "without the 'Q' at position 4 it is a valid base64check body" in err("tx_Q" + good[3:]).message
    assert f"without the 'Q' at position {len(good) + 1}" in err(good + "Q").message
    inside = err(good[:20] + "Q" + good[20:]).message
    assert "without" not in inside and inside.startswith("bad ")


def test_wrong_size_for_fixed_size_prefix():
    assert err(b58_text("ch", os.urandom(31))).message == "ch_ payload is 31 bytes, expected 32"
    with pytest.raises(EncodingError, match="st_ payload is 3 bytes"):
        encode_api("st", b"abc")
    with pytest.raises(EncodingError, match="unknown prefix"):
        encode_api("qq", b"")


def test_too_short_for_check_bytes():
    assert "too short" in err("ba_AAAA").message


def test_shape_predicates():
    assert looks_encoded("ak_2abc")
    assert not looks_encoded("ak_2a c") and not looks_encoded("zz_abc") and not looks_encoded(None)
    assert looks_like_blob("tx_+F01Aa...") and looks_like_blob("tx_abcdefgh")
    assert not looks_like_blob("tx_hash") and not looks_like_blob("tx_")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 5))
def test_b58decode_gives_what_the_base58_library_gives(data, zeros):
    """chanlog's base58 decoder (ten digits per big-number step) equals the library's, leading zero bytes
    (``1`` characters) included, and refuses what the library refuses."""
    from chanlog.codec.encoding import b58decode

    body = base58.b58encode(b"\0" * zeros + data).decode("ascii")
    assert b58decode(body) == base58.b58decode(body) == b"\0" * zeros + data
    for bad in (body + "0", "O" + body, body[:1] + " " + body[1:]):
        with pytest.raises(ValueError):
            b58decode(bad)
