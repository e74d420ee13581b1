"""Hostile input: every decoder of untrusted bytes scales linearly (issue 16).

Usage: ``python benchmarks/hostile.py [--rounds N]``.

For each attack of the issue (a base58-looking ``tx_`` body, an RLP list of single bytes inside a
``signed_tx``, deeply nested JSON, a YAML transcript of many events) the input is built at size n and 4n
and decoded by chanlog; the baseline is a linear pass over the same bytes in the same process (SHA-256).
Printed per attack: time(4n) / time(n) (4 means linear; the old base58 fallback gave 16) and chanlog's
time / the baseline's at 4n. Inputs that hit a named limit (MAX_BASE58_CHARS, MAX_RLP_ITEMS,
MAX_JSON_DEPTH) are refused in time that does not grow with what lies beyond the limit. Best of
``--rounds`` rounds, CPU time of this process.

Then base58 (issue 22), acceptance against rejection: the largest body ``MAX_BASE58_CHARS`` admits, decoded by
``parse_api``, against base64check of the same payload (time per KB, and their ratio); the same-size body
rejected (checksum changed, a bad character in the middle, one stray character at the front) against that
accepted one; a body ten times the limit refused; its decoding at n and 4n (Karatsuba: about 4**1.58 = 9);
and a 2018-sized ``tx`` (5,300 characters) decoded by chanlog against the ``base58`` library.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import time
from collections.abc import Callable

import base58
import rlp

from chanlog.codec.encoding import (
    BASE58,
    MAX_BASE58_CHARS,
    EncodingError,
    b58encode,
    checksum,
    encode_api,
    parse_api,
)
from chanlog.codec.transactions import annotate, clear_caches
from chanlog.model import parse_json
from chanlog.transcript import loads


def best(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        clear_caches()
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times) or 1e-9


def attacks() -> dict[str, Callable[[int], str | bytes]]:
    def base58_tx(n: int) -> str:
        return "tx_" + "A" * n

    def rlp_list(n: int) -> str:
        return encode_api("tx", rlp.encode([b"\x0b", b"\x01", [b"\x01"] * n, rlp.encode([b"\x0c", b"\x01"])]))

    def deep_json(n: int) -> str:
        return "[" * n + "]" * n

    def wide_json(n: int) -> str:
        return "[" + ",".join(['{"a":[1,2,{"b":"c"}]}'] * (n // 20)) + "]"

    def transcript(n: int) -> str:
        head = "chanlog: 1\nname: bench\nprotocol: json-rpc\nevents:\n"
        event = ("- event: frame\n  role: initiator\n  conn: 0\n  from: node\n  data:\n    jsonrpc: '2.0'\n"
                 "    method: channels.info\n    params:\n      data:\n        event: fsm_up\n")
        return head + event * (n // len(event))

    return {"base58-looking tx_ (refused)": base58_tx, "RLP list in a signed_tx (within limit)": rlp_list,
            "deep JSON (refused)": deep_json, "wide JSON": wide_json, "YAML transcript": transcript}


DECODERS: dict[str, Callable[[str | bytes], object]] = {
    "base58-looking tx_ (refused)": annotate,
    "RLP list in a signed_tx (within limit)": annotate,
    "deep JSON (refused)": lambda t: _swallow(parse_json, t),
    "wide JSON": parse_json,
    "YAML transcript": lambda t: loads(t, "bench.yaml"),
}
SIZES = {"RLP list in a signed_tx (within limit)": 20_000}


def _swallow(fn: Callable[[str], object], text: str) -> object:
    try:
        return fn(text)
    except ValueError as exc:
        return exc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=200_000, help="n, in characters (items for the RLP list)")
    args = parser.parse_args()
    print(f"{'attack':42} {'t(n) ms':>9} {'t(4n) ms':>9} {'t(4n)/t(n)':>11} {'vs sha256 at 4n':>16}")
    for name, make in attacks().items():
        n = SIZES.get(name, args.size)
        small, large = make(n), make(4 * n)
        decode = DECODERS[name]
        t1 = best(lambda s=small, d=decode: d(s), args.rounds)
        t4 = best(lambda s=large, d=decode: d(s), args.rounds)
        raw = large.encode() if isinstance(large, str) else large
        base = best(lambda r=raw: hashlib.sha256(r).digest(), args.rounds)
        print(f"{name:42} {t1 * 1e3:9.2f} {t4 * 1e3:9.2f} {t4 / t1:10.2f}x {t4 / base:15.1f}x")
    base58_rows(args.rounds)


def _parse(text: str) -> object:
    try:
        return parse_api(text)
    except EncodingError as exc:
        return exc


def base58_rows(rounds: int) -> None:
    """Acceptance and rejection of base58 bodies, each against a baseline measured here (see the docstring)."""
    payload = b"\xff" * (int(MAX_BASE58_CHARS * math.log2(58) / 8) - 3)  # trimmed to the longest body within it
    while len(b58encode(payload + checksum(payload))) > MAX_BASE58_CHARS:
        payload = payload[:-1]
    largest = encode_api("tx", payload, encoding=BASE58)
    body = largest[3:]
    as_base64 = encode_api("tx", payload)
    kb = len(body) / 1024
    accepted = best(lambda: parse_api(largest), rounds)
    b64 = best(lambda: parse_api(as_base64), rounds)
    middle = len(body) // 2
    rejected = {
        "checksum changed (last character)": largest[:-1] + ("2" if largest[-1] != "2" else "3"),
        "bad character '0' in the middle": largest[:3 + middle] + "0" + largest[4 + middle:],
        "stray 'i' at the front (hint found)": "tx_i" + body[:-1],
    }
    print(f"\nbase58: {len(body):,}-character body (MAX_BASE58_CHARS), {len(payload):,}-byte payload")
    print(f"{'':42} {'ms':>9} {'ms per KB':>10} {'ratio':>8}")
    print(f"{'accepted, base58check':42} {accepted * 1e3:9.2f} {accepted * 1e3 / kb:10.3f} "
          f"{accepted / b64:7.0f}x vs base64check of the same payload")
    print(f"{'accepted, base64check (baseline)':42} {b64 * 1e3:9.2f} {b64 * 1e3 / (len(as_base64) / 1024):10.3f}")
    for name, text in rejected.items():
        t = best(lambda t=text: _parse(t), rounds)
        print(f"{'rejected: ' + name:42} {t * 1e3:9.2f} {t * 1e3 / kb:10.3f} {t / accepted:7.2f}x vs accepted")
    far = "tx_" + "2" * (10 * MAX_BASE58_CHARS + 1)
    t = best(lambda: _parse(far), rounds)
    print(f"{'rejected: 10x the limit (not decoded)':42} {t * 1e3:9.2f} {t * 1e3 / (10 * kb):10.3f} "
          f"{t / accepted:7.2f}x vs accepted")
    quarter = encode_api("tx", payload[: len(payload) // 4], encoding=BASE58)
    t1 = best(lambda: parse_api(quarter), rounds)
    print(f"{'decoding at n/4 and n':42} {t1 * 1e3:9.2f} {'':10} {accepted / t1:7.2f}x t(n)/t(n/4)")
    tx2018 = encode_api("tx", bytes(range(256)) * 15 + b"\x01" * 40, encoding=BASE58)
    ours = best(lambda: parse_api(tx2018), rounds)
    library = best(lambda: base58.b58decode(tx2018[3:]), rounds)
    print(f"{f'2018-sized tx ({len(tx2018) - 3:,} characters), chanlog':42} {ours * 1e3:9.2f} {'':10} "
          f"{library / ours:7.1f}x faster than the base58 library ({library * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
