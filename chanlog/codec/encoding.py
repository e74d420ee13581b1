"""API encoding of Aeternity values: ``<prefix>_<body>`` strings (``tx_…``, ``ak_…``, ``st_…``).

The body is ``base58(payload ++ C)`` or ``base64(payload ++ C)`` with the 4-byte check
``C = sha256(sha256(payload))[:4]``; which of the two, and the payload size for fixed-size values,
depends on the prefix (one table, :data:`PREFIXES`; SCHEMAS.md §1, protocol ``node/api/api_encoding.md``).

Old traffic is accepted as well: every prefix was base58check until node commit 60cb64113 (2018-11-05,
"Use base64 encoding for all but identifiers"), so the seven prefixes that moved to base64 then (``cb``,
``or``, ``ov``, ``pi``, ``ss``, ``st``, ``tx``) carry a ``legacy`` base58 alphabet in the table (see
:func:`body_encoding`), and the ``$`` separator (``tx$…``, ``ak$…``, before 2018-09) is read too.

Untrusted input: base64 and every check are linear in the string's length; base58 is decoded by
:func:`b58decode`, a divide and conquer over Python integers (subquadratic: Karatsuba multiplications), and a
base58 body longer than :data:`MAX_BASE58_CHARS` (the protocol's bound) is refused before decoding. The
alphabet is picked from the prefix table, never by trying one decoder after another on a body of any size.
Rejecting a body costs at most a small constant number of decodes of it. :func:`parse_api` records which
envelope a string used so that it can be written back the same way (:meth:`Envelope.text`).

Errors are :class:`EncodingError` naming what is wrong: an unknown prefix, a bad character (with its
position), a truncated example (``tx_+JU5AaEG...``), a bad checksum (saying when deleting the first or the
last character of the body explains it: the seeds' stray leading ``i``), a wrong payload size for a
fixed-size prefix.
"""

from __future__ import annotations

import base64
import binascii
import math
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from hashlib import sha256
from typing import Any, NamedTuple

import base58

from chanlog.errors import ChanlogError

BASE58 = "base58"
BASE64 = "base64"


class EncodingError(ChanlogError):
    """An API-encoded string is malformed: unknown prefix, bad character, checksum, length or size."""


class TruncatedError(EncodingError):
    """The body ends with ``...`` (or ``…``): an abbreviated example, not a whole value.

    ``kept`` is the body before the ellipsis."""

    def __init__(self, message: str, where: str | None = None, kept: str = "") -> None:
        super().__init__(message, where)
        self.kept = kept


@dataclass(frozen=True)
class Prefix:
    """One row of the API-encoding table (SCHEMAS.md §1)."""

    name: str
    """The two-letter prefix (``tx``, ``ak``, ...)."""
    encoding: str
    """:data:`BASE58` or :data:`BASE64`: how the body is written today."""
    sizes: tuple[int, ...] | None
    """Allowed payload sizes in bytes; ``None`` for any size. The first is today's size; later ones are
    legacy sizes seen in 2018 traffic (65-byte secp256k1 account keys, 70–72-byte DER signatures)."""
    meaning: str
    """What the value is."""
    legacy: str | None = None
    """The alphabet the body was written in by old nodes, if another one: base58 for the prefixes that moved
    to base64 in node commit 60cb64113 (2018-11-05)."""


def _p(name: str, encoding: str, sizes: tuple[int, ...] | None, meaning: str, legacy: str | None = None) -> Prefix:
    return Prefix(name, encoding, sizes, meaning, legacy)


_32 = (32,)
#: Every API-encoding prefix, as the node's ``aeser_api_encoder`` defines them (SCHEMAS.md §1). ``legacy``:
#: the 2018 node's ``aec_base58c`` wrote every prefix in base58check; ``aehttp_api_encoder:type2enc/1`` of
#: node commit 60cb64113 (2018-11-05) moved exactly ``cb or ov pi ss st tx`` to base64 (``ba ck cs cv`` came
#: later, base64 from the start).
PREFIXES: dict[str, Prefix] = {p.name: p for p in (
    _p("ak", BASE58, (32, 65), "account pubkey (65 bytes: 2018 secp256k1 key)"),
    _p("ba", BASE64, None, "byte array"),
    _p("bf", BASE58, _32, "block PoF hash"),
    _p("bs", BASE58, _32, "block state hash"),
    _p("bx", BASE58, _32, "block tx hash"),
    _p("cb", BASE64, None, "contract byte array (code, call data, return value)", legacy=BASE58),
    _p("ch", BASE58, _32, "channel id"),
    _p("ck", BASE64, None, "contract store key"),
    _p("cm", BASE58, _32, "commitment"),
    _p("cs", BASE64, None, "contract calls state tree"),
    _p("ct", BASE58, _32, "contract pubkey"),
    _p("cv", BASE64, None, "contract store value"),
    _p("kh", BASE58, _32, "key block hash"),
    _p("mh", BASE58, _32, "micro block hash"),
    _p("nm", BASE58, None, "name"),
    _p("ok", BASE58, _32, "oracle pubkey"),
    _p("oq", BASE58, _32, "oracle query id"),
    _p("or", BASE64, None, "oracle response", legacy=BASE58),
    _p("ov", BASE64, None, "oracle query", legacy=BASE58),
    _p("pi", BASE64, None, "proof of inclusion (trees_poi)", legacy=BASE58),
    _p("pp", BASE58, _32, "peer pubkey"),
    _p("sg", BASE58, (64, 70, 71, 72), "signature (70-72 bytes: 2018 DER secp256k1 signature)"),
    _p("sk", BASE58, _32, "account secret key"),
    _p("ss", BASE64, None, "state trees", legacy=BASE58),
    _p("st", BASE64, _32, "state hash", legacy=BASE58),
    _p("th", BASE58, _32, "transaction hash"),
    _p("tx", BASE64, None, "transaction (serialized RLP object, usually signed_tx)", legacy=BASE58),
)}

#: Prefixes whose body may be written in either alphabet (those with a ``legacy`` alphabet in the table).
EITHER_ENCODING = frozenset(p.name for p in PREFIXES.values() if p.legacy)
#: Longest base58 body read (characters). Base58 bodies come from the 2018 node (before 2018-11-05 every
#: ``tx``, ``pi``, ``cb`` ... was base58check) and today's identifiers (at most 100 characters: a 72-byte
#: signature). The protocol's bound: a 2018 channel transaction, and the call data and contract code inside
#: it, travelled between the two peers' FSMs in one Noise message (``aesc_session_noise`` sends
#: ``aesc_codec:enc(...)`` whole with ``enoise:send``, which frames it with a 16-bit length,
#: ``<<Len:16, Msg/binary>>``, ChaChaPoly adding a 16-byte MAC): at most 65,535 - 16 = 65,519 bytes, so with
#: its 4 check bytes a base58 body of at most ceil(65,523 * 8 / log2(58)) = 89,483 characters. ``pi`` and
#: ``ss`` bodies are held to the same bound (2018 proofs cover the channel's accounts and contracts; the
#: largest real one measured is 4,608 characters). Cost of the worst accepted body: about 35 ms CPU for
#: :func:`b58decode` (``benchmarks/hostile.py`` prints it; the ``base58`` library's quadratic decoder takes
#: about 30 ms for a 5,300-character 2018 ``tx`` already). Longer bodies are refused at once
#: (:class:`EncodingError` naming this limit).
MAX_BASE58_CHARS = 89_483
#: Separators between prefix and body: ``_`` today, ``$`` before node commit 955f51b54 (2018-09).
SEPARATORS = ("_", "$")

_B58_ALPHABET = base58.BITCOIN_ALPHABET.decode()
_NOT_IN = {BASE58: re.compile(f"[^{_B58_ALPHABET}]"), BASE64: re.compile(r"[^A-Za-z0-9+/=]")}
_LOOKS_ENCODED = re.compile(r"[a-z]{2}[_$][A-Za-z0-9+/=]+\Z")
_LOOKS_BLOB = re.compile(r"[a-z]{2}[_$](?:[A-Za-z0-9+/=]{8,}|[A-Za-z0-9+/=]+(?:\.\.\.|\u2026))\Z")


class Envelope(NamedTuple):
    """An API-encoded string taken apart: what :func:`parse_api` returns (an immutable named tuple)."""

    prefix: str
    """The two-letter prefix (``tx``)."""
    payload: bytes
    """The decoded bytes, checksum removed."""
    encoding: str = BASE64
    """:data:`BASE58` or :data:`BASE64`: the alphabet the body was written in."""
    separator: str = "_"
    """``_``, or ``$`` in 2018 traffic."""

    def text(self) -> str:
        """The string again, written the way it was read (same alphabet and separator)."""
        return encode_api(self.prefix, self.payload, encoding=self.encoding, separator=self.separator)


def b58encode(data: bytes) -> str:
    """Base58 (Bitcoin alphabet) of ``data`` as text; each leading zero byte is a ``1``. The same text as the
    ``base58`` library's ``b58encode``, computed by divide and conquer: the number is split by
    ``divmod`` with ``58**(_B58_LEAF * 2**k)``. A 65,523-byte payload (the largest :data:`MAX_BASE58_CHARS`
    admits) takes about 0.2 s (CPython 3.11's ``divmod`` of big numbers is quadratic, in C), a real 2018
    ``tx`` of 3,900 bytes about 1.5 ms; the library's digit-by-digit loop takes 7.5 s and 30 ms."""
    data = bytes(data)
    body = data.lstrip(b"\0")
    number = int.from_bytes(body, "big")
    out = bytearray()
    if number:  # at most bits / log2(58) + 1 digits: the least level whose width holds them
        width = int(number.bit_length() / _LOG2_58) + 1
        level = max(0, (-(-width // _B58_LEAF) - 1).bit_length()) - 1
        _b58_digits(number, level, out)
    return "1" * (len(data) - len(body)) + bytes(out).lstrip(b"\0").translate(_B58_CHARS).decode("ascii")


def b58decode(text: str) -> bytes:
    """The bytes of a base58 (Bitcoin alphabet) text; each leading ``1`` is a zero byte. The same bytes as
    the ``base58`` library's ``b58decode``, computed by divide and conquer: digits are read in leaves of
    ``_B58_LEAF`` and joined pairwise, level by level, with the powers ``58**(_B58_LEAF * 2**k)`` (computed
    once by squaring and kept), then ``int.to_bytes``. Time O(M(n) log n) for Karatsuba's M(n): 89,483
    characters (:data:`MAX_BASE58_CHARS`) in about 35 ms, 5,300 in about 0.7 ms. No length limit here: callers
    check :data:`MAX_BASE58_CHARS` first (:func:`parse_api` does). ``ValueError`` for a character outside the
    alphabet (with its 1-based position in ``text``)."""
    bad = _NOT_IN[BASE58].search(text)
    if bad is not None:
        raise ValueError(f"bad character {bad.group()!r} at position {bad.start() + 1} (not base58)")
    return _b58decode(text)


#: Base58 bodies remembered by :func:`_b58decode`: a session carries each transaction several times (sign
#: request, signed reply, update report) and a page reads it once per use (fields, contract code, calls).
#: At most 256 payloads of at most 65,523 bytes (:data:`MAX_BASE58_CHARS`): 16 MiB in the worst case,
#: about 1 MB for real 2018 traffic (transactions under 4 KB).
B58_CACHE = 256


@lru_cache(maxsize=B58_CACHE)
def _b58decode(text: str) -> bytes:
    """:func:`b58decode` of a text known to be in the alphabet."""
    digits = text.encode("ascii").translate(_B58_VALUES)
    body = digits.lstrip(b"\0")
    n = len(body)
    weights = _B58_WEIGHTS
    head = n % _B58_LEAF or _B58_LEAF
    parts = [sum(map(operator.mul, body[:head], weights[_B58_LEAF - head:]))]
    parts += [sum(map(operator.mul, body[i:i + _B58_LEAF], weights)) for i in range(head, n, _B58_LEAF)]
    level = 0
    while len(parts) > 1:  # the leftmost part may be short; every other part is full, so pairs join exactly
        power = _b58_power(level)
        odd = len(parts) & 1
        parts = parts[:odd] + [hi * power + lo for hi, lo in zip(parts[odd::2], parts[odd + 1::2], strict=True)]
        level += 1
    number = parts[0]
    return bytes(len(digits) - n) + number.to_bytes((number.bit_length() + 7) // 8, "big")


#: Digits per leaf of :func:`b58decode` / :func:`b58encode` (58**32 < 2**188: leaves are small numbers).
_B58_LEAF = 32
_B58_VALUES = bytes.maketrans(_B58_ALPHABET.encode("ascii"), bytes(range(58)))
_B58_CHARS = bytes.maketrans(bytes(range(58)), _B58_ALPHABET.encode("ascii"))
_B58_WEIGHTS = [58 ** (_B58_LEAF - 1 - i) for i in range(_B58_LEAF)]
_LOG2_58 = math.log2(58)
#: ``58**(_B58_LEAF * 2**k)`` for k = 0, 1, ...: grown by squaring on demand; for bodies within
#: :data:`MAX_BASE58_CHARS` 12 numbers (k <= 11), 96 KB in all.
_B58_POWERS = [58 ** _B58_LEAF]


def _b58_power(level: int) -> int:
    powers = _B58_POWERS
    while len(powers) <= level:  # two threads may both append the same square: harmless
        powers.append(powers[-1] * powers[-1])
    return powers[level]


def _b58_digits(number: int, level: int, out: bytearray) -> None:
    """Append exactly ``_B58_LEAF * 2**(level + 1)`` digit values (0-57, zero-padded) of ``number``."""
    if level < 0:
        leaf = bytearray(_B58_LEAF)
        for i in range(_B58_LEAF - 1, -1, -1):
            number, leaf[i] = divmod(number, 58)
        out += leaf
        return
    high, low = divmod(number, _b58_power(level))
    _b58_digits(high, level - 1, out)
    _b58_digits(low, level - 1, out)


def checksum(payload: bytes) -> bytes:
    """The 4 check bytes of ``payload``: ``sha256(sha256(payload))[:4]`` (SCHEMAS.md §1)."""
    return sha256(sha256(payload).digest()).digest()[:4]


def looks_encoded(s: object) -> bool:
    """Whether ``s`` has the shape ``<two lowercase letters>_<body>`` with a known prefix (no decoding)."""
    return isinstance(s, str) and s[:2] in PREFIXES and _LOOKS_ENCODED.match(s) is not None


def looks_like_blob(s: object) -> bool:
    """Whether ``s`` has the shape of an encoded blob: a known prefix and a body of at least 8 characters, or
    a body cut short with ``...`` (which decoding then reports as truncated). No decoding."""
    return isinstance(s, str) and s[:2] in PREFIXES and _LOOKS_BLOB.match(s) is not None


def parse_api(s: str) -> Envelope:
    """Decode an API-encoded string into an :class:`Envelope` (prefix, payload, alphabet, separator).

    Raises :class:`EncodingError` (``where`` = the string, abbreviated) for: no ``xx_`` prefix, an unknown
    prefix, a body truncated with ``...``, a character outside the alphabet (its 1-based position), a bad
    base64 length, a body too short for the check bytes, a bad checksum, a payload size the prefix does not
    allow, a base58 body longer than :data:`MAX_BASE58_CHARS`. Linear in ``len(s)``. SCHEMAS.md §1.
    """
    if type(s) is str and s[2:3] == "_":  # today's strings: one base64check try, no error text prepared
        prefix = PREFIXES.get(s[:2])
        if prefix is not None and prefix.encoding == BASE64:
            try:
                raw = binascii.a2b_base64(s[3:], strict_mode=True)
            except (binascii.Error, ValueError):  # bad base64; a non-ASCII character
                raw = b""
            payload = raw[:-4]
            if len(raw) >= 4 and sha256(sha256(payload).digest()).digest()[:4] == raw[-4:] \
                    and (prefix.sizes is None or len(payload) in prefix.sizes):
                return Envelope(prefix.name, payload, BASE64, "_")
    return _parse_api(s)  # everything else, and every error with its precise reason


def _parse_api(s: str) -> Envelope:
    if not isinstance(s, str):
        raise EncodingError(f"expected an API-encoded string, got {type(s).__name__}")
    where = abbreviate(s)
    if len(s) < 3 or s[2] not in SEPARATORS:
        raise EncodingError("not an API-encoded string: expected '<prefix>_<body>' such as 'tx_...'", where)
    name, sep, body = s[:2], s[2], s[3:]
    prefix = PREFIXES.get(name)
    if prefix is None:
        raise EncodingError(f"unknown prefix {name!r} (known: {', '.join(sorted(PREFIXES))})", where)
    if body.endswith(("...", "\u2026")):
        kept = body.rstrip(".\u2026")
        raise TruncatedError(
            f"truncated: the body ends with {body[len(kept):]!r} (an abbreviated example, "
            f"{len(kept)} characters kept)", where, kept)
    if not body:
        raise EncodingError("empty body", where)
    encoding = body_encoding(prefix, body)
    if encoding is None:
        payload, encoding = _decode_either(body, where)
    elif prefix.legacy is None:
        payload = _decode_body(body, encoding, where)
    else:  # the other alphabet was ruled out: when this one fails too, say why both do
        try:
            payload = _decode_body(body, encoding, where)
        except EncodingError as exc:
            other = prefix.legacy if encoding == prefix.encoding else prefix.encoding
            why = _misfit(body, other)
            message = exc.message.replace(f"(not {encoding})", f"(neither {encoding} nor {other})") \
                if exc.message.startswith(why) else f"{exc.message}; not {other} either: {why}"
            raise EncodingError(message, where) from None
    if prefix.sizes is not None and len(payload) not in prefix.sizes:
        raise EncodingError(
            f"{name}_ payload is {len(payload)} bytes, expected {_sizes_text(prefix.sizes)}", where)
    return Envelope(name, payload, encoding, sep)


def decode_api(s: str) -> tuple[str, bytes]:
    """``(prefix, payload)`` of an API-encoded string; see :func:`parse_api` for the errors raised."""
    env = parse_api(s)
    return env.prefix, env.payload


def encode_api(prefix: str, payload: bytes, *, encoding: str | None = None, separator: str = "_") -> str:
    """Write ``payload`` as ``<prefix>_<body>`` with the prefix's alphabet (or ``encoding`` if given).

    Raises :class:`EncodingError` for an unknown prefix or a payload size the prefix does not allow.
    SCHEMAS.md §1.
    """
    p = PREFIXES.get(prefix)
    if p is None:
        raise EncodingError(f"unknown prefix {prefix!r}")
    if p.sizes is not None and len(payload) not in p.sizes:
        raise EncodingError(f"{prefix}_ payload is {len(payload)} bytes, expected {_sizes_text(p.sizes)}")
    data = bytes(payload) + checksum(payload)
    if (encoding or p.encoding) == BASE58:
        body = b58encode(data)
    else:
        body = base64.b64encode(data).decode("ascii")
    return f"{prefix}{separator}{body}"


def api_encoder(prefix: str) -> Callable[[bytes], str]:
    """A fast writer of ``<prefix>_<body>`` in the prefix's own alphabet, without the size check (for
    decoders that write many values of one prefix). ``KeyError`` for an unknown prefix."""
    head = prefix + "_"
    if PREFIXES[prefix].encoding == BASE64:
        b64 = base64.b64encode

        def enc(payload: bytes) -> str:
            return head + b64(payload + sha256(sha256(payload).digest()).digest()[:4]).decode("ascii")
    else:
        def enc(payload: bytes) -> str:
            return head + b58encode(payload + sha256(sha256(payload).digest()).digest()[:4])
    return enc


class ApiValue:
    """An API-encoded value kept as its prefix and payload; its text (``ak_…``, ``sg_…``) is written on first
    use and cached, so that decoding many values pays for base58/base64 and the checksum only for those
    shown.

    It stands for its text: ``str(v)``, f-strings, ``==`` and ``hash`` (equal to the text, and to another
    :class:`ApiValue` of the same prefix and payload), ordering, ``len``, indexing, ``in`` and the ``str``
    methods (``v.startswith("ak_")``) all act on the text. The text always uses the prefix's own alphabet and
    the ``_`` separator. Not a ``str`` subclass: ``json.dumps`` needs ``str(v)``
    (:func:`chanlog.codec.transactions.to_json` does that). The payload is not checked against the prefix's sizes.
    """

    __slots__ = ("prefix", "payload", "_text")

    def __init__(self, prefix: str, payload: bytes) -> None:
        self.prefix = prefix
        """The two-letter prefix (``ak``)."""
        self.payload = payload
        """The bytes the text encodes (no checksum)."""
        self._text: str | None = None

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self._text = _writer(self.prefix)(self.payload)
        return text

    def __repr__(self) -> str:
        return f"ApiValue({str(self)!r})"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if type(other) is ApiValue:
            return self.prefix == other.prefix and self.payload == other.payload
        if isinstance(other, str):  # a text with another prefix, or "", is unequal without writing ours
            return other[:2] == self.prefix and len(other) > 3 and str(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: object) -> bool:
        return str(self) < str(other) if isinstance(other, str | ApiValue) else NotImplemented

    def __le__(self, other: object) -> bool:
        return str(self) <= str(other) if isinstance(other, str | ApiValue) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return str(self) > str(other) if isinstance(other, str | ApiValue) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return str(self) >= str(other) if isinstance(other, str | ApiValue) else NotImplemented

    def __len__(self) -> int:
        return len(str(self))

    def __getitem__(self, index: int | slice) -> str:
        return str(self)[index]

    def __contains__(self, part: str) -> bool:
        return part in str(self)

    def __iter__(self) -> Iterator[str]:
        return iter(str(self))

    def __add__(self, other: str) -> str:
        return str(self) + other

    def __radd__(self, other: str) -> str:
        return other + str(self)

    def __reduce__(self) -> tuple[type[ApiValue], tuple[str, bytes]]:
        return ApiValue, (self.prefix, self.payload)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never for slots or protocols (copy, pickle): only str's public methods
            raise AttributeError(name)
        return getattr(str(self), name)


@cache
def _writer(prefix: str) -> Callable[[bytes], str]:
    """The text writer of :class:`ApiValue`; base58 texts (ids, hashes: the same few accounts and channel
    recur all through a transcript, and base58 is the slow alphabet) are kept in a bounded cache."""
    enc = api_encoder(prefix)
    return lru_cache(maxsize=4096)(enc) if PREFIXES[prefix].encoding == BASE58 else enc


def fits(prefix: str, payload: bytes) -> bool:
    """Whether ``payload`` has a size the prefix allows (always true for variable-size prefixes)."""
    sizes = PREFIXES[prefix].sizes
    return sizes is None or len(payload) in sizes


def abbreviate(s: str, keep: int = 24) -> str:
    """``s`` cut to ``keep`` characters plus ``…`` when longer (for error locations)."""
    return s if len(s) <= keep else s[:keep] + "\u2026"


# -- internals --------------------------------------------------------------------------------------

def _sizes_text(sizes: tuple[int, ...]) -> str:
    return " or ".join(str(n) for n in sizes)


def body_encoding(prefix: Prefix, body: str) -> str | None:
    """The alphabet ``body`` is read in, from the prefix table: the prefix's own, or its ``legacy`` one when
    the body cannot be the other (a base64 body's length is a multiple of 4; a base58 body has no ``+/=0OIl``).
    ``None`` when it could be either (a legacy prefix, only base58 characters, a length that is a multiple
    of 4): then the check bytes decide (:func:`_decode_either`). Linear, no decoding."""
    legacy = prefix.legacy
    if legacy is None:
        return prefix.encoding
    fits = {enc: _NOT_IN[enc].search(body) is None for enc in (prefix.encoding, legacy)}
    if BASE64 in fits and len(body) % 4:
        fits[BASE64] = False
    if fits[prefix.encoding] and fits[legacy]:
        return None
    return legacy if fits[legacy] else prefix.encoding


def _decode_either(body: str, where: str) -> tuple[bytes, str]:
    """Decode a body that fits both alphabets of its prefix (base64 today, base58 in 2018): base64check
    (linear), and base58check only when that fails and the body is within :data:`MAX_BASE58_CHARS`
    (SCHEMAS.md §1, history)."""
    b64 = _try(body, BASE64)
    if isinstance(b64, bytes):
        return b64, BASE64
    if len(body) > MAX_BASE58_CHARS:
        raise EncodingError(f"bad checksum: not a base64check body ({b64}), and at {len(body):,} characters too "
                            f"long to be a base58check one (MAX_BASE58_CHARS = {MAX_BASE58_CHARS:,})", where)
    raw = _unalphabet(body, BASE58, where, repair=False)  # the body fits base58 and is within the limit
    b58 = _checked(raw, BASE58)
    if isinstance(b58, bytes):
        return b58, BASE58
    hint = _stray_character(body, BASE64) or _stray_character(body, BASE58, raw)
    reasons = f" ({b64}; {b58})" if not hint else ""
    raise EncodingError(f"bad checksum: neither a base64check nor a base58check body{reasons}{hint}", where)


def _misfit(body: str, encoding: str) -> str:
    """Why ``body`` cannot be written in ``encoding`` (its first bad character, or a base64 length that is not
    a multiple of 4), as :func:`body_encoding` found it. Linear."""
    bad = _NOT_IN[encoding].search(body)
    if bad is not None:
        return f"bad character {bad.group()!r} at position {bad.start() + 4}"
    return f"{len(body)} characters is not a multiple of 4"


def _try(body: str, encoding: str) -> bytes | str:
    """The payload, or a short reason why ``body`` is not valid in ``encoding``."""
    try:
        return _decode_body(body, encoding, None, repair=False)
    except EncodingError as exc:
        return exc.message


def _decode_body(body: str, encoding: str, where: str | None, *, repair: bool = True) -> bytes:
    raw = _unalphabet(body, encoding, where, repair=repair)
    payload = _checked(raw, encoding)
    if isinstance(payload, str):
        hint = _stray_character(body, encoding, raw) if repair and len(raw) >= 4 else ""
        raise EncodingError(payload + hint, where)
    return payload


def _checked(raw: bytes, encoding: str) -> bytes | str:
    """The payload of ``raw`` (the body's bytes), or why its check bytes are wrong."""
    if len(raw) < 4:
        return f"too short: {len(raw)} bytes, the 4 check bytes alone need 4"
    payload, check = raw[:-4], raw[-4:]
    if checksum(payload) != check:
        return (f"bad checksum: the {encoding}check body ends in {check.hex()}, its payload hashes to "
                f"{checksum(payload).hex()}")
    return payload


def _unalphabet(body: str, encoding: str, where: str | None, *, repair: bool) -> bytes:
    """Undo base58 or base64 (no checksum check); a base58 body longer than :data:`MAX_BASE58_CHARS` is
    refused before decoding. Linear for base64, :func:`b58decode`'s time for base58, on success and failure."""
    if encoding == BASE64:
        try:
            return binascii.a2b_base64(body, strict_mode=True)
        except (binascii.Error, ValueError):
            pass
        _check_alphabet(body, encoding, where)
        hint = _stray_character(body, encoding) if repair else ""
        raise EncodingError(f"bad base64 length or padding: {len(body)} characters{hint}", where)
    _check_alphabet(body, encoding, where)
    if len(body) > MAX_BASE58_CHARS:
        raise EncodingError(f"base58 body of {len(body):,} characters is longer than MAX_BASE58_CHARS "
                            f"({MAX_BASE58_CHARS:,}: the 2018 node's largest value, one Noise message)", where)
    return _b58decode(body)


def _check_alphabet(body: str, encoding: str, where: str | None) -> None:
    bad = _NOT_IN[encoding].search(body)
    if bad is not None:
        raise EncodingError(f"bad character {bad.group()!r} at position {bad.start() + 4} (not {encoding})", where)


def _stray_character(body: str, encoding: str, raw: bytes | None = None) -> str:
    """A hint when deleting the body's first or last character makes it valid (the seeds' stray leading
    ``i``), else ``""``. Only the two ends are tried, each in time linear in the body: base64 by decoding it
    again, base58 from ``raw`` (the body's bytes, when given) by arithmetic (:func:`_b58_without_end`: a
    division by 58, or one power of 58, about a quarter of a decode). A stray character elsewhere would need one
    decode per position (quadratic) and is not looked for."""
    if len(body) < 2:
        return ""
    for i in (0, len(body) - 1):
        if encoding == BASE58 and raw is not None:
            valid = isinstance(_checked(_b58_without_end(body, raw, i), BASE58), bytes)
        else:
            try:
                _decode_body(body[:i] + body[i + 1:], encoding, None, repair=False)
                valid = True
            except EncodingError:
                valid = False
        if valid:
            return (f"; without the {body[i]!r} at position {i + 4} it is a valid {encoding}check body "
                    "(a stray character?)")
    return ""


def _b58_without_end(body: str, raw: bytes, i: int) -> bytes:
    """The bytes of base58 ``body`` less its first (``i == 0``) or last character, from ``raw``, the bytes of
    the whole ``body``: the last digit goes by a division by 58, the first by subtracting it times 58**(n-1)."""
    number = int.from_bytes(raw, "big")
    if i:
        rest, number = body[:-1], number // 58
    else:
        rest = body[1:]
        number -= _B58_ALPHABET.index(body[0]) * pow(58, len(rest))  # a leading "1" is a zero: no change
    zeros = len(rest) - len(rest.lstrip("1"))
    return bytes(zeros) + number.to_bytes((number.bit_length() + 7) // 8, "big")
