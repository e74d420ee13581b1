"""Base58 of every size the protocol allows: the divide-and-conquer codec against the ``base58`` library, every
prefix of the table in both alphabets where the 2018 node used both, the limit, and 2018-style values built
here (issue 22).

Hypothesis example counts are bounded (``CHANLOG_FUZZ_EXAMPLES`` raises them, ``CHANLOG_FUZZ_RANDOM=1`` draws
new examples each run), as in tests/test_fuzz.py.
"""

from __future__ import annotations

import hashlib
import os
import random

import base58
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chanlog.codec import encoding
from chanlog.codec.contract import payload_of
from chanlog.codec.encoding import (
    BASE58,
    BASE64,
    MAX_BASE58_CHARS,
    PREFIXES,
    EncodingError,
    Envelope,
    b58decode,
    b58encode,
    encode_api,
    parse_api,
)
from chanlog.codec.errors import CodecError
from chanlog.codec.transactions import build, decode, encode, encode_bytes

EXAMPLES = int(os.environ.get("CHANLOG_FUZZ_EXAMPLES", "25"))
CHECKED = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("CHANLOG_FUZZ_RANDOM"),
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ALPHABET = base58.BITCOIN_ALPHABET.decode()
#: The largest payload a base58 body within the limit holds: one Noise message (65,535 bytes) less the
#: ChaChaPoly MAC (16) (see MAX_BASE58_CHARS), computed here from the same figures.
LARGEST_PAYLOAD = 65_535 - 16

#: (prefix, alphabet) for every alphabet each prefix was ever written in.
ROWS = sorted((name, enc) for name, p in PREFIXES.items() for enc in {p.encoding, p.legacy} - {None})


def check(payload: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]


def payload_bytes(size: int, seed: int, zeros: int = 0) -> bytes:
    return bytes(zeros) + random.Random(seed).randbytes(size)


# -- the codec against the library ------------------------------------------------------------------------

@CHECKED
@given(st.integers(0, 5), st.text(ALPHABET, max_size=400))
def test_decoder_equals_the_library_on_random_text(ones, text):
    text = "1" * ones + text
    assert b58decode(text) == base58.b58decode(text)


@CHECKED
@given(st.integers(0, 5), st.binary(max_size=300))
def test_encoder_equals_the_library_on_random_bytes(zeros, data):
    data = bytes(zeros) + data
    assert b58encode(data) == base58.b58encode(data).decode()
    assert b58decode(b58encode(data)) == data


@settings(CHECKED, max_examples=min(EXAMPLES, 8))
@given(st.integers(1_000, 6_000), st.integers(0, 2**32))
def test_codec_equals_the_library_at_2018_sizes(size, seed):
    """5,000-8,200 characters: the 2018 node's contract transactions and proofs are 4,600-5,300."""
    data = payload_bytes(size, seed)
    text = base58.b58encode(data).decode()
    assert b58encode(data) == text
    assert b58decode(text) == data


@CHECKED
@given(st.integers(0, 3), st.text(ALPHABET, min_size=1, max_size=200))
def test_a_body_less_either_end_is_computed_without_decoding_it_again(ones, text):
    """The stray-character hint's arithmetic (division by 58, one power of 58) equals decoding the cut text."""
    text = "1" * ones + text
    raw = b58decode(text)
    assert encoding._b58_without_end(text, raw, 0) == base58.b58decode(text[1:])
    assert encoding._b58_without_end(text, raw, len(text) - 1) == base58.b58decode(text[:-1])


def test_a_stray_character_at_either_end_of_a_2018_body_is_pointed_at():
    text = encode_api("pi", payload_bytes(3_000, 5), encoding=BASE58)
    for bad, position in (("i" + text[3:], 4), (text[3:] + "i", len(text) + 1)):
        with pytest.raises(EncodingError) as info:
            parse_api("pi_" + bad)
        assert f"without the 'i' at position {position} it is a valid base58check body" in info.value.message


def test_decoder_refuses_a_character_outside_the_alphabet():
    with pytest.raises(ValueError, match=r"bad character '0' at position 3 \(not base58\)"):
        b58decode("120")
    with pytest.raises(ValueError, match="position 2"):
        b58decode("1\u00e9")


# -- every prefix, both alphabets --------------------------------------------------------------------------

@pytest.mark.parametrize(("prefix", "alphabet"), ROWS)
@CHECKED
@given(data=st.data())
def test_every_prefix_round_trips_byte_for_byte_in_each_of_its_alphabets(prefix, alphabet, data):
    row = PREFIXES[prefix]
    if row.sizes:
        size = data.draw(st.sampled_from(row.sizes), label="size")
    else:  # far above the corpus's values, within the base58 limit's reach
        size = data.draw(st.one_of(st.integers(0, 300), st.sampled_from([4_000, 20_000])), label="size")
    payload = payload_bytes(size, data.draw(st.integers(0, 2**32), label="seed"),
                            zeros=0 if row.sizes else data.draw(st.integers(0, 3), label="zeros"))
    separator = data.draw(st.sampled_from(["_", "$"]), label="separator")
    text = encode_api(prefix, payload, encoding=alphabet, separator=separator)
    independent = (base58.b58encode(payload + check(payload)).decode() if alphabet == BASE58 and size < 5_000
                   else None)
    if independent is not None:
        assert text == f"{prefix}{separator}{independent}"
    env = parse_api(text)
    assert env == Envelope(prefix, payload, alphabet, separator)
    assert env.text() == text


def test_the_largest_base58_body_is_accepted_under_every_variable_size_prefix_and_one_more_character_is_not():
    payload = b"\xff" * LARGEST_PAYLOAD  # the longest base58 body of this many bytes
    body = b58encode(payload + check(payload))
    assert len(body) == MAX_BASE58_CHARS  # the limit is exactly this body's length (its comment's arithmetic)
    variable = sorted(p for p, row in PREFIXES.items() if row.sizes is None and BASE58 in (row.encoding, row.legacy))
    assert {"tx", "pi", "cb", "ss", "nm"} <= set(variable)
    for prefix in variable:
        env = parse_api(f"{prefix}_{body}")
        assert env.payload == payload and env.encoding == BASE58
        with pytest.raises(EncodingError, match="MAX_BASE58_CHARS"):
            parse_api(f"{prefix}_2{body}")
    assert env.text() == f"{prefix}_{body}"  # written back byte for byte (once: writing costs 0.2 s)


def test_base64_values_far_above_the_corpus_round_trip():
    payload = payload_bytes(2_000_000, 7)
    for prefix in ("tx", "pi", "ss", "cb"):
        text = encode_api(prefix, payload)
        assert parse_api(text) == Envelope(prefix, payload, BASE64, "_")


# -- rejection ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", sorted(p for p, row in PREFIXES.items() if BASE58 in (row.encoding, row.legacy)))
def test_an_over_limit_base58_body_is_refused_naming_the_limit_without_decoding(prefix, monkeypatch):
    def never(_text: str) -> bytes:
        raise AssertionError("an over-limit body must not be decoded")

    monkeypatch.setattr(encoding, "_b58decode", never)
    for body in ("2" * (MAX_BASE58_CHARS + 1), "2" * (MAX_BASE58_CHARS + 3), "z" * 1_000_000):
        with pytest.raises(EncodingError, match="MAX_BASE58_CHARS") as info:
            parse_api(f"{prefix}_{body}")
        assert info.value.where == f"{prefix}_{body[:21]}\u2026"


@CHECKED
@given(st.sampled_from([p for p, row in PREFIXES.items() if row.legacy]), st.integers(1, 600),
       st.integers(0, 2**32), st.data())
def test_a_malformed_2018_body_is_refused_with_a_clear_reason(prefix, size, seed, data):
    sizes = PREFIXES[prefix].sizes
    payload = payload_bytes(sizes[0] if sizes else size, seed)
    text = encode_api(prefix, payload, encoding=BASE58)
    at = data.draw(st.integers(4, len(text) - 1), label="at")
    bad = data.draw(st.sampled_from("0OIl*"), label="bad")
    with pytest.raises(EncodingError) as info:
        parse_api(text[:at] + bad + text[at + 1:])
    message = info.value.message
    assert f"bad character {bad!r} at position {at + 1}" in message
    flipped = text[:-1] + ("2" if text[-1] != "2" else "3")
    with pytest.raises(EncodingError, match="bad checksum"):
        parse_api(flipped)


def test_a_cb_value_goes_through_the_table_and_its_limit():
    code = payload_bytes(3_000, 3)
    assert payload_of(encode_api("cb", code, encoding=BASE58)) == code
    assert payload_of(encode_api("cb", code, separator="$", encoding=BASE58)) == code
    with pytest.raises(CodecError, match="MAX_BASE58_CHARS"):
        payload_of("cb_" + "2" * (MAX_BASE58_CHARS + 1))
    with pytest.raises(CodecError, match="bad checksum"):
        payload_of("cb_" + "2" * 5_001)


# -- 2018-style values built here ---------------------------------------------------------------------------

def _id(prefix: str, n: int) -> str:
    return encode_api(prefix, bytes([n]) * 32)


def _code(size: int) -> object:
    return build("compiler_sophia", 1, source_hash=_id("ba", 1),
                 type_info=[{"fun_hash": _id("ba", 2), "name": "main", "arg_type": encode_api("ba", bytes(64)),
                             "out_type": encode_api("ba", bytes(32))}],
                 byte_code=encode_api("cb", payload_bytes(size, size)))


def test_a_2018_contract_create_tx_of_5300_base58_characters_decodes_and_is_written_back():
    update = build("channel_offchain_update_create_contract", 1, owner=_id("ak", 3), ct_version=0x10001,
                   code=_code(3_390), deposit=10, call_data=encode_api("cb", payload_bytes(120, 4)))
    offchain = build("channel_offchain_tx", 1, channel_id=_id("ch", 5), round=3, updates=[update],
                     state_hash=_id("st", 6))
    signed = build("signed_tx", 1, signatures=[encode_api("sg", bytes(64))], transaction=offchain)
    text = encode_api("tx", encode_bytes(signed), encoding=BASE58)
    assert 5_250 <= len(text) - 3 <= 5_350  # the size of the 2018 node's contract transactions (5,067-5,261)
    root = decode(text)
    assert root.label == "signed_tx v1" and root.envelope == Envelope("tx", encode_bytes(signed), BASE58, "_")
    created = root["transaction"]["updates"][0]
    assert created.label == "channel_offchain_update_create_contract v1"
    assert created["code"].label == "compiler_sophia v1"
    assert encode(root) == text


def test_a_2018_proof_of_4600_base58_characters_decodes_and_is_written_back():
    def proof(value: object, n: int) -> list[dict[str, object]]:
        return [{"root_hash": _id("ba", n), "nodes": [{"node_hash": _id("ba", n),
                                                      "node": (encode_api("ba", b"\x3a\xbc"), value)}]}]

    contract = build("contract", 1, owner_id=_id("ak", 3), ct_version=0x10001, code=_code(2_950),
                     log=encode_api("ba", b""), active=True, referrer_ids=[], deposit=5)
    poi = build("trees_poi", 1, accounts=proof(build("account", 1, nonce=1, balance=10), 7), calls=[],
                channels=[], contracts=proof(contract, 8), ns=[], oracles=[])
    text = encode_api("pi", encode_bytes(poi), encoding=BASE58)
    assert 4_550 <= len(text) - 3 <= 4_650  # the 2018 node's proofs: up to 4,608
    root = decode(text)
    assert root.label == "trees_poi v1"
    assert root["contracts"][0]["nodes"][0]["node"][1]["code"].label == "compiler_sophia v1"
    assert encode(root) == text
