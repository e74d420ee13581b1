"""Hostile input: every decoder of untrusted bytes scales linearly (issue 16).

Usage: ``python benchmarks/hostile.py [--rounds N]``.

For each attack of the issue (a base58-looking ``tx_`` body, an RLP list of single bytes inside a
``signed_tx``, deeply nested JSON, a YAML transcript of many events) the input is built at size n and 4n
and decoded by chanlog; the baseline is a linear pass over the same bytes in the same process (SHA-256).
Printed per attack: time(4n) / time(n) (4 means linear; the old base58 fallback gave 16) and chanlog's
time / the baseline's at 4n. Inputs that hit a named limit (MAX_BASE58_CHARS, MAX_RLP_ITEMS,
MAX_JSON_DEPTH) are refused in time that does not grow with what lies beyond the limit. Best of
``--rounds`` rounds, CPU time of this process.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from collections.abc import Callable

import rlp

from chanlog.codec.encoding import encode_api
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


if __name__ == "__main__":
    main()
