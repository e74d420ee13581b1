"""Decode throughput over every RLP blob in the corpus, against a floor measured in the same run.

Usage: ``python benchmarks/decode.py [CORPUS_DIR] [--rounds N]`` (default ``../shared/corpus`` next to the repo).

Blobs are the distinct string values in the corpus logs that :func:`chanlog.codec.transactions.is_decodable_blob`
accepts (``tx_``, ``ss_``, ``pi_``, ``cs_``, contract code ``cb_``). The floor is what any decoder must do
for the same blobs: undo base64 (or base58), check the 4-byte checksum and ``rlp.decode`` the payload once —
without the nested objects and without any schema. The figure reported is ``decode`` time / floor time
(target: at most 2x). Best of ``--rounds`` rounds each, floor and decode rounds interleaved and timed in CPU
time of this process (``time.process_time``), so that other work on the machine skews both alike. The RLP
backend in use is printed: the floor is plain ``rlp.decode`` (pyrlp; it would switch to ``rusty_rlp`` if that
were importable), ``chanlog.codec.transactions`` always uses pyrlp's pure-Python reader.

``chanlog.codec.transactions`` remembers the nested objects it decoded, by their bytes (a bounded cache: one transaction
travels in several frames, as the ``tx`` to sign and as the ``signed_tx`` with one and two signatures). Every
decode round starts with that cache empty (:func:`chanlog.codec.transactions.clear_caches`), so each round decodes the
corpus from nothing, as ``chanlog render`` does a transcript. Also printed, for comparison: the first round
of the process (which also builds the compiled schema rows), and a round that empties the cache before
every blob (each blob decoded alone, sharing nothing with the others).

Call data (issue 13): the distinct ``cb_`` values of ``call_data`` and ``return_value`` keys are decoded by
:mod:`chanlog.codec` — FATE and AEVM, each call typed by its function from the corpus's contract code (read
once, before timing) — against a floor of base64 + checksum for the same strings.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re
import sys
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

import base58
import rlp

from chanlog.codec.transactions import clear_caches, decode, is_decodable_blob

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
#: A JSON string value (after ``:`` or in an array) that looks API-encoded.
VALUE = re.compile(r'[:\[,]\s*"([a-z]{2}[_$][A-Za-z0-9+/=]+)"(?!\s*:)')


def corpus_blobs(root: Path) -> list[str]:
    """Distinct decodable string values of every Markdown log under ``root``, in file order."""
    seen: dict[str, None] = {}
    for path in sorted(root.rglob("*.md")):
        for blob in VALUE.findall(path.read_text(encoding="utf-8")):
            if is_decodable_blob(blob):
                seen.setdefault(blob, None)
    return list(seen)


def floor(blob: str) -> object:
    """base64 (or base58) + checksum + one ``rlp.decode``: the least work any decoder does."""
    body = blob[3:]
    try:
        raw = base64.b64decode(body, validate=True)
        if sha256(sha256(raw[:-4]).digest()).digest()[:4] != raw[-4:]:
            raise ValueError("checksum")
    except (binascii.Error, ValueError):
        raw = base58.b58decode(body)
        if sha256(sha256(raw[:-4]).digest()).digest()[:4] != raw[-4:]:
            raise ValueError(f"bad checksum in {blob[:20]}") from None
    return rlp.decode(raw[:-4])


def nested_objects(payload: bytes) -> list[bytes]:
    """``payload`` and every serialized object nested in it (what a decoder must ``rlp.decode`` in turn)."""
    out = [payload]
    stack = [rlp.decode(payload)]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif len(item) > 2 and item[0] >= 0xC0:
            try:
                inner = rlp.decode(item)
            except rlp.DecodingError:
                continue
            if isinstance(inner, list) and len(inner) >= 2:
                out.append(item)
                stack.append(inner)
    return out


def timed(fn: Callable[[bytes], object] | Callable[[str], object], blobs: list) -> float:
    """CPU seconds of this process for ``fn`` over every item of ``blobs``, starting with chanlog's RLP cache
    empty (every round is as cold as the first)."""
    clear_caches()
    start = time.process_time()
    for blob in blobs:
        fn(blob)
    return time.process_time() - start


def alone(blob: str) -> object:
    """``decode`` with nothing remembered from the blobs before (the cache emptied first)."""
    clear_caches()
    return decode(blob)


def rlp_backend() -> str:
    """Which implementation ``rlp.decode`` (the floor's) runs on."""
    try:
        import rusty_rlp  # noqa: F401
    except ImportError:
        return "pyrlp (pure Python; rusty_rlp not installed)"
    return "pyrlp -> rusty_rlp (installed, so rlp.decode uses it)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 2
    blobs = corpus_blobs(args.corpus)
    size = sum(len(b) for b in blobs)
    print(f"{len(blobs)} distinct blobs, {size:,} characters, from {args.corpus}")
    objects = [obj for blob in blobs for obj in nested_objects(floor_payload(blob))]
    cold = timed(decode, blobs)
    rounds = [(timed(floor, blobs), timed(decode, blobs), timed(rlp.decode, objects), timed(alone, blobs))
              for _ in range(args.rounds)]
    floor_t, decode_t, nested_t, alone_t = (min(r[i] for r in rounds) for i in range(4))
    n = len(blobs)
    print(f"RLP: floor rlp.decode = {rlp_backend()}; chanlog.codec.transactions = pyrlp's pure-Python reader")
    print(f"floor (base64/58 + checksum + rlp.decode): {n / floor_t:10,.0f} blobs/s  {floor_t * 1e3:8.1f} ms")
    print(f"chanlog.codec.transactions (schema, nested objects):   {n / decode_t:10,.0f} blobs/s  {decode_t * 1e3:8.1f} ms")
    print(f"chanlog.codec.transactions, first round of the process:{n / cold:10,.0f} blobs/s  {cold * 1e3:8.1f} ms")
    print(f"chanlog.codec.transactions, each blob alone:           {n / alone_t:10,.0f} blobs/s  {alone_t * 1e3:8.1f} ms")
    print(f"ratio decode / floor: {decode_t / floor_t:.2f}x (target <= 2x); first round of the process: "
          f"{cold / floor_t:.2f}x; each blob alone: {alone_t / floor_t:.2f}x")
    print(f"for reference: rlp.decode of the {len(objects):,} nested objects alone (no envelope, no schema) "
          f"takes {nested_t / floor_t:.2f}x the floor")
    call_data_figures(args.corpus, args.rounds)
    return 0


# -- call data and return values (issue 13, chanlog.codec) ---------------------------------------------

CONTRACT_VALUE = re.compile(r'"(call_data|return_value|code)":\s*"(cb_[A-Za-z0-9+/=]+)"')


def call_data_figures(root: Path, rounds: int) -> None:
    """Throughput of :mod:`chanlog.codec` over the corpus's distinct call data and return values."""
    from chanlog.codec import calls
    from chanlog.codec.errors import CodecError

    found: dict[tuple[str, str], None] = {}
    for path in sorted(root.rglob("*.md")):
        for key, blob in CONTRACT_VALUE.findall(path.read_text(encoding="utf-8")):
            found.setdefault((key, blob), None)
    book = calls.ContractBook()
    for key, blob in found:
        if key == "code":
            book.add(calls.payload_of(blob), "corpus")
    values = [(key, blob) for key, blob in found if key != "code"]

    def codec(item: tuple[str, str]) -> object:
        key, blob = item
        data = calls.payload_of(blob)
        vm = calls.guess_vm(data)
        if key == "return_value":  # its return_type is beside it, not read here: an error's text fails fast
            try:
                return calls.decode_return(data, "ok", None, vm) if vm == "fate" else data
            except CodecError:
                return data
        return book.best_call(data, vm)

    def envelope(item: tuple[str, str]) -> object:
        return floor_payload(item[1])

    best = [min(t) for t in zip(*[(timed(envelope, values), timed(codec, values)) for _ in range(rounds)],
                                 strict=True)]
    n = len(values)
    print(f"call data and return values: {n} distinct cb_ values ({len(book)} contracts read first)")
    print(f"floor (base64 + checksum):                 {n / best[0]:10,.0f} values/s {best[0] * 1e3:8.1f} ms")
    print(f"chanlog.codec (named, typed values):       {n / best[1]:10,.0f} values/s {best[1] * 1e3:8.1f} ms")
    print(f"ratio codec / floor: {best[1] / best[0]:.2f}x")


def floor_payload(blob: str) -> bytes:
    """The payload the floor decodes (base64 or base58, checksum dropped)."""
    body = blob[3:]
    try:
        raw = base64.b64decode(body, validate=True)
        if sha256(sha256(raw[:-4]).digest()).digest()[:4] == raw[-4:]:
            return raw[:-4]
    except (binascii.Error, ValueError):
        pass
    return base58.b58decode(body)[:-4]


if __name__ == "__main__":
    raise SystemExit(main())
