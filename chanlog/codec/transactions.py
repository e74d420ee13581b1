"""Decode API-encoded RLP blobs (``tx_…``, ``ss_…``, ``pi_…``, ``cs_…``, ``cb_…``) by schema, and back.

:func:`decode` turns a blob into a :class:`Decoded` tree: type name, tag, version and the fields in wire
order, with ids as ``ak_``/``ch_``/``ct_``... values, hashes and binaries API-encoded (``st_``, ``sg_``,
``cb_``, ``ba_``; an empty binary is ``""``), integers as ints, and nested serialized objects (a signed_tx's
``transaction``, ``payload``, ``poi``, ``update``, ``offchain_trees``, mtree values, ...) decoded in place.
Ids and binaries are :class:`~chanlog.codec.encoding.ApiValue` objects: they compare, hash and print as their text, which
is written (base58/base64 with its checksum) only when first used. Trees are read-only: a nested object is
decoded once and shared by every tree that holds its bytes (a bounded cache, :func:`clear_caches`), and each
schema row is compiled into a straight-line function for the success path (:func:`_compile`).
It raises :class:`DecodeError`, whose message reads as a path
(``signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: unknown id tag 9``).

:func:`annotate` never raises: an object it cannot decode by schema (unknown ``(tag, version)``, a field
count no layout has, a bad field) becomes a :class:`Decoded` with ``error`` set and its bytes kept (``raw``
gives the RLP tree), and decoding goes on around it.

:func:`encode` serializes a :class:`Decoded` again — one that was decoded (giving back the original bytes
exactly), changed with :meth:`Decoded.with_fields`, or built with :func:`build`. Integers follow the node's rules (SCHEMAS.md §2): 0 is one
``0x00`` byte, a leading zero byte is an error when decoding, and an empty string is read as 0 but remembered
(:class:`EmptyInt`) so that it is written back empty.

Also here: :func:`to_json` (the ``--json`` shape), :func:`format_tree` (``chanlog decode``'s text),
:func:`decoded_markdown` (the renderer's doc layout), :func:`strip_signatures` (used by
:mod:`chanlog.volatile`) and :func:`is_decodable_blob`.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from types import MappingProxyType
from typing import Any

import rlp

from chanlog.codec import schema as sch
from chanlog.codec.encoding import (
    BASE64,
    PREFIXES,
    ApiValue,
    EncodingError,
    Envelope,
    TruncatedError,
    abbreviate,
    encode_api,
    looks_encoded,
    looks_like_blob,
    parse_api,
)
from chanlog.codec.schema import FieldType, Kind, Schema
from chanlog.errors import ChanlogError

__all__ = [
    "DecodeError", "EncodeError", "EmptyInt", "Decoded", "decode", "decode_bytes", "annotate", "annotate_bytes",
    "encode", "encode_bytes", "build", "to_json", "format_tree", "decoded_markdown", "strip_signatures",
    "is_decodable_blob", "ENCODED_PREFIXES_WORTH_DECODING", "errors", "ID_PREFIXES", "clear_caches",
    "OBJECT_CACHE_SIZE", "read_rlp", "RLPLimitError", "MAX_RLP_BYTES", "MAX_RLP_DEPTH", "MAX_RLP_ITEMS",
    "MAX_OBJECT_DEPTH",
]

#: API prefixes whose strings always carry a serialized RLP object (transactions, state trees, PoI, calls).
ENCODED_PREFIXES_WORTH_DECODING = frozenset({"tx", "ss", "pi", "cs"})
#: Prefixes that carry an object only sometimes (contract code ``cb_``; a ``ba_`` byte array).
_PREFIXES_MAYBE_OBJECT = frozenset({"cb", "ba"})
#: Id tag byte -> API prefix (SCHEMAS.md §2, ``aeser_id``).
ID_PREFIXES = {1: "ak", 2: "nm", 3: "cm", 4: "ok", 5: "ct", 6: "ch"}
_ID_TAGS = {p: t for t, p in ID_PREFIXES.items()}


class DecodeError(ChanlogError):
    """A blob does not decode by schema. ``where`` is the path to the fault
    (``signed_tx v1 -> transaction -> channel_create_tx v2 -> responder``), ``message`` the fault itself
    (``unknown id tag 9``); ``path`` holds the path's segments."""

    def __init__(self, message: str, path: list[str] | tuple[str, ...] | str | None = ()) -> None:
        self.path = [path] if isinstance(path, str) else list(path or ())
        super().__init__(message, _join_path(self.path) or None)

    def within(self, segment: str) -> DecodeError:
        """The same error one level up: ``segment`` put in front of the path."""
        return type(self)(self.message, [segment, *self.path])


class EncodeError(DecodeError):
    """A :class:`Decoded` cannot be serialized: a field missing or of the wrong type (``where`` = the path)."""


class EmptyInt(int):
    """The int 0 read from an empty byte string. It equals 0 in every way but is written back empty, so that
    re-encoding gives the original bytes (the node itself writes 0 as ``0x00``)."""

    def __repr__(self) -> str:
        return "EmptyInt(0)"


_EMPTY_ZERO = EmptyInt(0)
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


def _freeze(value: Any) -> Any:
    """A value given to :func:`build` or :meth:`Decoded.with_fields` made read-only like decoded ones: lists
    become tuples, dicts read-only mappings (recursively); everything else as it is."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(x) for x in value)
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(x) for k, x in value.items()})
    return value


@dataclass(slots=True)
class Decoded:
    """One decoded object: ``[tag, version, fields...]`` read by its schema.

    A read-only value: :func:`decode` and :func:`annotate` remember the objects they decoded (by their bytes,
    see :func:`clear_caches`) and hand the same nested object to every tree that holds those bytes, so
    ``fields`` is a read-only mapping, list fields are tuples and fixed tuples are read-only mappings, and the
    attributes must not be reassigned. A changed object is a new one: :meth:`with_fields`
    (``st.with_fields(transaction=st["transaction"].with_fields(fee=20_000))``) or :func:`build`;
    :func:`encode` writes any of them.
    """

    type: str | None
    """The node's type name (``channel_create_tx``); for an unknown tag ``"tag <n>"``; ``None`` when the
    bytes are not even an RLP object."""
    tag: int | None
    """Object tag (``None`` when unreadable)."""
    version: int | None
    """Object version (``None`` when unreadable)."""
    fields: Mapping[str, Any] = field(default_factory=lambda: _NO_FIELDS)
    """Field name -> value, in wire order (a read-only mapping). Values: ``int`` (:class:`EmptyInt` for an
    empty int), ``bool``, :class:`~chanlog.codec.encoding.ApiValue` (ids ``ak_…``, hashes, signatures and binaries:
    it acts as its API-encoded text, written on first use), ``str`` (``""`` for an empty binary; text),
    nested :class:`Decoded`, ``None`` (an empty ``payload``), ``tuple`` (``[T]`` fields, trie nodes) and a
    read-only mapping (fixed tuples, by item name). In :meth:`with_fields` and :func:`build`, ids and
    binaries may be given as ``ApiValue`` or ``str``, lists as lists or tuples, fixed tuples as dicts.
    Empty when :attr:`error` is set."""
    error: str | None = None
    """Why this object could not be decoded by schema (only set by :func:`annotate`)."""
    data: bytes | None = field(default=None, repr=False)
    """The object's serialized bytes, kept when :attr:`error` is set (re-encoding writes them unchanged)."""
    schema: Schema | None = field(default=None, repr=False, compare=False)
    """The layout the fields follow (for an error node: the layout that failed, if one was found)."""
    envelope: Envelope | None = field(default=None, repr=False, compare=False)
    """For a tree's root: how the blob was written (prefix, alphabet, separator), so :func:`encode` writes
    it the same way."""

    @property
    def label(self) -> str:
        """``"channel_create_tx v2"`` (as in decode paths), or what is known of an unreadable object."""
        if self.type is None:
            return "object"
        return self.type if self.version is None else f"{self.type} v{self.version}"

    @property
    def raw(self) -> Any:
        """For an error node, the raw RLP tree of :attr:`data` (``bytes`` and nested lists), or the bytes
        themselves when they are not RLP; ``None`` otherwise."""
        if self.data is None:
            return None
        try:
            return read_rlp(self.data)
        except (rlp.DecodingError, IndexError):
            return self.data

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def with_fields(self, **changes: Any) -> Decoded:
        """A new object of the same type and version with the named fields changed (``d.with_fields(fee=1)``);
        the others are shared. Raises :class:`EncodeError` for a name the layout does not have. An error node
        cannot be changed (:class:`EncodeError`). A root keeps its ``envelope`` (the way it is written)."""
        if self.error is not None:
            raise EncodeError(f"cannot change an object that did not decode: {self.error}", [self.label])
        unknown = [name for name in changes if name not in self.fields]
        if unknown:
            raise EncodeError(f"no field {', '.join(unknown)} (fields: {', '.join(self.fields)})", [self.label])
        values = {name: _freeze(changes[name]) if name in changes else value
                  for name, value in self.fields.items()}
        return Decoded(self.type, self.tag, self.version, MappingProxyType(values), None, None, self.schema,
                       self.envelope)

    def walk(self) -> Iterator[Decoded]:
        """This object and every object nested in it, depth first."""
        yield self
        for value in self.fields.values():
            yield from _objects_in(value)


# -- decoding -------------------------------------------------------------------------------------

def decode(encoded: str) -> Decoded:
    """Decode an API-encoded blob (``tx_…``, ``ss_…``, ``pi_…``, ...) by schema, all the way down.

    Returns the :class:`Decoded` root (its ``envelope`` remembers how the blob was written). Raises
    :class:`DecodeError` with a path-like message for anything that does not decode: the envelope (a
    truncated example, a bad checksum, ...: ``where`` is the blob, abbreviated), RLP, an unknown
    ``(tag, version)``, a field count no layout has, a bad field, and an object past the limits on
    untrusted input (:data:`MAX_RLP_BYTES`, :data:`MAX_RLP_DEPTH`, :data:`MAX_RLP_ITEMS`,
    :data:`MAX_OBJECT_DEPTH`; the message names the limit). Linear in the blob's size. SCHEMAS.md §1–§7.
    """
    env = _envelope(encoded)
    return _rooted(_object(env.payload, False), env)


def decode_bytes(data: bytes) -> Decoded:
    """Decode one serialized object (RLP bytes, or a ``bytearray``/``memoryview`` of them; no API envelope) by
    schema; errors as :func:`decode`."""
    return _object(data if type(data) is bytes else bytes(data), False)


def annotate(encoded: str) -> Decoded:
    """Like :func:`decode`, but never raises: what cannot be decoded by schema becomes an error node
    (:attr:`Decoded.error` the reason, :attr:`Decoded.data` the bytes) in place, and the rest is decoded.

    A blob whose envelope is broken (or that is not a string) gives a root error node without data.
    """
    try:
        env = _envelope(encoded)
    except DecodeError as exc:
        return Decoded(None, None, None, error=str(exc))
    return _rooted(_object(env.payload, True), env)


def annotate_bytes(data: bytes) -> Decoded:
    """:func:`annotate` for one serialized object (RLP bytes or a bytes-like object, no API envelope)."""
    return _object(data if type(data) is bytes else bytes(data), True)


def errors(decoded: Decoded) -> list[str]:
    """Every error of an annotated tree as the path-like message :func:`decode` would give
    (``signed_tx v1 -> transaction -> channel_create_tx v2 -> responder: unknown id tag 9``), depth first;
    empty when everything decoded."""
    out: list[str] = []
    _collect_errors(decoded, [], out)
    return out


def strip_signatures(blob: str) -> bytes | None:
    """The serialized inner transaction of a ``signed_tx`` blob (``tx_…``), or ``None`` when the blob is not
    a well-formed signed_tx (bad envelope, not RLP, another tag, wrong shape). Never raises.

    Two signings of one transaction give the same bytes: :mod:`chanlog.volatile` compares these.
    serializations.md, signed_tx v1: ``[11, 1, [signatures], transaction]``.
    """
    try:
        payload = parse_api(blob).payload
        items = read_rlp(payload)
    except (EncodingError, rlp.DecodingError, IndexError):
        return None
    if (isinstance(items, list) and len(items) == 4 and items[0] == b"\x0b" and items[1] == b"\x01"
            and isinstance(items[2], list) and isinstance(items[3], bytes)):
        return items[3]
    return None


def is_decodable_blob(s: object) -> bool:
    """Whether ``s`` is a string worth decoding: an API-encoded value that carries a serialized object.

    True for ``tx_``, ``ss_``, ``pi_`` and ``cs_`` strings with a body of 8 characters or more, or cut short
    with ``...`` (decoding says so), and for ``cb_``/``ba_`` strings whose bytes
    start an object with a known ``(tag, version)`` (contract code); false for ids (``ak_``, ``ch_``),
    hashes (``st_``, ``th_``), call data and anything else. Never raises; cheap (no full decode).
    """
    if not isinstance(s, str) or len(s) < 4:
        return False
    prefix = s[:2]
    if prefix in ENCODED_PREFIXES_WORTH_DECODING:
        return looks_like_blob(s)
    if prefix in _PREFIXES_MAYBE_OBJECT and looks_encoded(s):
        try:
            return _starts_object(parse_api(s).payload)
        except EncodingError:
            return False
    return False


# -- encoding -------------------------------------------------------------------------------------

def encode(decoded: Decoded) -> str:
    """Serialize ``decoded`` and write it API-encoded: the way the root was read (its ``envelope``), else
    with its schema's prefix (``tx``, ``ss``, ``pi``, ...) in today's alphabet.

    For a tree from :func:`decode` or :func:`annotate` the bytes are the original ones exactly. Raises
    :class:`EncodeError` (path-like ``where``) for a field that is missing or cannot be written by its type.
    """
    data = encode_bytes(decoded)
    env = decoded.envelope
    if env is not None:
        return encode_api(env.prefix, data, encoding=env.encoding, separator=env.separator)
    return encode_api(decoded.schema.prefix if decoded.schema else "tx", data)


def encode_bytes(decoded: Decoded) -> bytes:
    """The serialized RLP bytes of ``decoded`` (no API envelope); see :func:`encode`."""
    if decoded.error is not None:
        if decoded.data is None:
            raise EncodeError(f"nothing to encode: {decoded.error}", [decoded.label])
        return decoded.data
    schema = _schema_of(decoded)  # its field names are exactly those of decoded.fields
    fields = decoded.fields
    out: list[Any] = [_enc_int(decoded.tag), _enc_int(decoded.version)]
    for name, ftype in schema.fields:
        try:
            out.append(_encoder(ftype)(fields[name]))
        except DecodeError as exc:
            raise exc.within(name).within(schema.label) from None
    return rlp.encode(out)


def build(type_or_tag: str | int, version: int, fields: dict[str, Any] | None = None, /,
          **more: Any) -> Decoded:
    """A new :class:`Decoded` of the given type (``"channel_create_tx"`` or tag 50) and version, with
    ``fields`` (and keyword ``more``) as values (see :attr:`Decoded.fields` for the value types).

    The layout is the one whose field names are exactly those given. Raises :class:`EncodeError` for an
    unknown type/version or field names that match no layout (naming the expected ones). Values are
    checked when encoding.
    """
    values = {**(fields or {}), **more}
    if isinstance(type_or_tag, int):
        candidates = sch.layouts(type_or_tag, version)
        name = sch.type_name(type_or_tag)
    else:
        candidates = sch.by_name(type_or_tag, version)
        name = type_or_tag
    if not candidates:
        raise EncodeError(f"no schema for {name} v{version}")
    for layout in candidates:
        if set(layout.field_names) == set(values):
            ordered = {n: _freeze(values[n]) for n in layout.field_names}
            return Decoded(layout.name, layout.tag, layout.version, MappingProxyType(ordered), schema=layout)
    expected = " | ".join(", ".join(s.field_names) for s in candidates)
    raise EncodeError(f"fields {', '.join(values)} match no layout (expected: {expected})", [f"{name} v{version}"])


# -- output shapes --------------------------------------------------------------------------------

def to_json(decoded: Decoded) -> dict[str, Any]:
    """The ``--json`` shape: ``{"type", "tag", "version", "fields": {...}}``, nested objects in the same
    shape, ints as numbers; an error node also has ``"error"`` (the reason) and ``"raw"`` (its RLP tree as
    ``0x``-hex strings and lists)."""
    out: dict[str, Any] = {"type": decoded.type, "tag": decoded.tag, "version": decoded.version,
                           "fields": {k: _json_value(v) for k, v in decoded.fields.items()}}
    if decoded.error is not None:
        out["error"] = decoded.error
        if decoded.data is not None:
            out["raw"] = _hex_tree(decoded.raw)
    return out


def format_tree(decoded: Decoded) -> str:
    """An indented text tree for people (``chanlog decode``): ``name vN (tag T)``, then ``field: value``
    lines, nested objects indented, amounts in aettos with thousands separators, long blobs shortened; an
    object that could not be decoded shows ``error:`` and ``raw:`` lines in place."""
    return "\n".join([_label(decoded, False), *_fields(decoded, 1, False)]) + "\n"


def decoded_markdown(encoded: str) -> str:
    """Markdown for the renderer's doc layout: a compact nested list of the decoded fields. Never raises.

    ``- **channel_create_tx v2**`` then indented ``- initiator: ak_…`` items; amounts (``*amount*``, fee,
    deposit, channel_reserve, balance, gas_price) as ``70,000,000,000,000 aettos``; nested objects as nested
    lists; long binaries shortened with their byte count. When the blob itself cannot be decoded: a quote
    ``> could not decode: <reason>`` and the blob; a nested object that fails shows its reason in place.
    """
    try:
        root = annotate(encoded)
        if root.error is not None:
            return f"> could not decode: {root.error}\n>\n> {encoded}\n"
        return "\n".join([f"- {_label(root, True)}", *_fields(root, 1, True)]) + "\n"
    except Exception as exc:  # noqa: BLE001 - a doc must render whatever the blob holds
        return f"> could not decode: {type(exc).__name__}: {exc}\n>\n> {encoded}\n"


# -- internals: decoding --------------------------------------------------------------------------

def _envelope(encoded: str) -> Envelope:
    try:
        return parse_api(encoded)
    except TruncatedError as exc:
        raise _envelope_error(exc.message + _what_is_kept(encoded[:2], exc.kept), exc.where) from None
    except EncodingError as exc:
        raise _envelope_error(exc.message, exc.where) from None


def _envelope_error(message: str, where: str | None) -> DecodeError:
    """An envelope fault as a :class:`DecodeError` located at the blob (abbreviated)."""
    return DecodeError(message, [where] if where else [])


def _what_is_kept(prefix: str, kept: str) -> str:
    """What the kept start of a truncated base64 blob shows (its RLP header, tag and version):
    ``; the kept start is a signed_tx v1 (tag 11) of 169 bytes (+4 check bytes), 9 kept``, or ``""``."""
    if prefix not in PREFIXES or PREFIXES[prefix].encoding != BASE64:
        return ""
    whole, rest = len(kept) // 4 * 4, len(kept) % 4
    usable = kept[:whole] + (kept[whole:] + "=" * (4 - rest) if rest >= 2 else "")
    try:
        data = base64.b64decode(usable, validate=True)
    except (binascii.Error, ValueError):
        return ""
    if not data or data[0] < 0xC0:
        return ""
    try:
        _, _, length, start = rlp.codec.consume_length_prefix(data, 0)
    except (rlp.DecodingError, IndexError):
        return ""
    total = f"of {start + length:,} bytes (+4 check bytes), {len(data)} kept"
    try:
        tag_b, pos = _rlp_string_at(data, start)
        tag = _dec_int(tag_b)
    except (rlp.DecodingError, IndexError, DecodeError):
        return f"; the kept start announces an RLP list {total}"
    try:
        vsn_b, _ = _rlp_string_at(data, pos)
        version = f" v{_dec_int(vsn_b)}"
    except (rlp.DecodingError, IndexError, DecodeError):
        version = ""
    return f"; the kept start is a {sch.type_name(tag)}{version} (tag {tag}) {total}"


def _fail(message: str) -> DecodeError:
    return DecodeError(message)


def _rooted(d: Decoded, envelope: Envelope) -> Decoded:
    """``d`` (perhaps shared) as the root of a tree read from an API-encoded string: a new node with the same
    (read-only) fields that carries the ``envelope``."""
    return Decoded(d.type, d.tag, d.version, d.fields, d.error, d.data, d.schema, envelope)


def _decode_object(data: bytes, lenient: bool) -> Decoded:
    """Decode serialized object bytes; in lenient mode a failure becomes an error node. Memoized as
    :func:`_object`, which is what every caller uses."""
    tag = version = schema = None
    nesting = _NESTING.__dict__
    depth = nesting.get("depth", 0)
    nesting["depth"] = depth + 1
    try:
        if depth >= MAX_OBJECT_DEPTH:
            raise _fail(f"objects nested deeper than MAX_OBJECT_DEPTH ({MAX_OBJECT_DEPTH})")
        try:
            items = _rlp_items(data)
        except IndexError:
            raise _fail("not RLP (RLP string too short)") from None
        except RLPLimitError as exc:
            raise _fail(f"too large: {_rlp_reason(exc)}") from None
        except rlp.DecodingError as exc:
            raise _fail(f"not RLP ({_rlp_reason(exc)})") from None
        try:
            fast = _FAST.get((items[0], items[1], len(items)))
        except (TypeError, IndexError):  # not a list of two binaries or more: the general path says so
            fast = None
        if fast is not None:
            try:
                return fast(items, lenient)
            except (_Slow, KeyError, TypeError, DecodeError):
                pass  # something is off: the general path below names what, where
        if type(items) is not list:
            raise _fail(f"not an RLP list but a {len(items)}-byte string")
        if len(items) < 2:
            raise _fail(f"an object needs [tag, version, ...], got a list of {len(items)}")
        tag = _dec_int(items[0])
        version = _dec_int(items[1])
        key = (tag, version, len(items) - 2)
        planned = _PLANS.get(key)
        if planned is None:
            schema = sch.lookup(*key)
            if schema is None:
                raise _no_schema(*key)
            planned = _PLANS[key] = _plan(schema)
            _FAST[(items[0], items[1], len(items))] = _compile(schema)
        schema, names, decoders = planned
        try:
            values = [dec(item, lenient) for dec, item in zip(decoders, items[2:], strict=True)]
        except DecodeError:  # again field by field, to put the failing field's name in the path
            for name, dec, item in zip(names, decoders, items[2:], strict=True):
                try:
                    dec(item, lenient)
                except DecodeError as exc:
                    raise exc.within(name) from None
            raise
        return Decoded(schema.name, tag, version, MappingProxyType(dict(zip(names, values, strict=True))),
                       None, None, schema)
    except DecodeError as exc:
        if schema is not None:  # other faults name the type in their message
            exc = exc.within(schema.label)
        if not lenient:
            raise exc from None
        return Decoded(sch.type_name(tag) if tag is not None else None, tag, version, _NO_FIELDS,
                       str(exc), bytes(data), schema)
    finally:
        nesting["depth"] = depth


#: How deep :func:`_decode_object` is in nested objects, per thread (the fake node decodes in its own).
_NESTING = threading.local()


#: How many distinct nested objects :func:`_object` remembers (least recently used first out). A transaction
#: comes back within a few frames, so few are needed: over the corpus 256 decode as fast as 2,048; 512 keeps
#: memory bounded when objects are large (state trees, contract code).
OBJECT_CACHE_SIZE = 512


@lru_cache(maxsize=OBJECT_CACHE_SIZE)
def _remembered(data: bytes, lenient: bool) -> Decoded:
    return _decode_object(data, lenient)


def _object(data: bytes, lenient: bool) -> Decoded:
    """A nested object, memoized by its bytes: channel traffic carries one transaction many times (the ``tx``
    to sign, the ``signed_tx`` with one and with two signatures, the update that reports it) and its nested
    objects (payload, state trees, PoI, contract code) with it, so each is decoded once and the same
    read-only :class:`Decoded` is shared by every tree holding it. A failure (``DecodeError``) is remembered
    apart, briefly (:data:`_FAILURES`): when a nested object fails, the levels above decode it again to name
    the failing field, and without the memo that would cost 2^depth. :func:`clear_caches` empties both."""
    key = (data, lenient)
    failed = _FAILURES.get(key)
    if failed is not None:
        raise DecodeError(*failed)
    try:
        return _remembered(data, lenient)
    except DecodeError as exc:
        if len(_FAILURES) >= _FAILURES_KEPT:
            try:
                _FAILURES.pop(next(iter(_FAILURES)), None)
            except (StopIteration, RuntimeError):  # another thread changed it meanwhile
                pass
        _FAILURES[key] = (exc.message, tuple(exc.path))
        raise


_object.cache_info = _remembered.cache_info  # type: ignore[attr-defined]


#: Objects that failed to decode, by ``(bytes, lenient)``: ``(message, path)`` of their error (oldest out).
_FAILURES: dict[tuple[bytes, bool], tuple[str, tuple[str, ...]]] = {}
_FAILURES_KEPT = 256


def clear_caches() -> None:
    """Forget the nested objects :func:`decode` and :func:`annotate` remember, and the decoded base58 bodies
    (benchmarks start each round cold with this; nothing else needs it: the caches are bounded by
    :data:`OBJECT_CACHE_SIZE` and :data:`chanlog.codec.encoding.B58_CACHE`)."""
    from chanlog.codec.encoding import _b58decode

    _remembered.cache_clear()
    _FAILURES.clear()
    _b58decode.cache_clear()  # decoded base58 bodies (encoding.B58_CACHE)


#: Largest serialized object read (bytes). A frame of the fake node is at most 16 MiB, and so is a blob in it.
MAX_RLP_BYTES = 16 * 1024 * 1024
#: Deepest nesting of RLP lists within one serialized object. The node's deepest layouts (a PoI's Merkle
#: Patricia trie nodes inside their tree, inside the PoI) nest 5 lists deep.
MAX_RLP_DEPTH = 64
#: Most RLP items (strings and lists) in one serialized object. A channel's state trees and PoI hold a
#: few accounts and contracts; contract code and stores are single strings.
MAX_RLP_ITEMS = 100_000
#: Deepest nesting of serialized objects in one another (a signed_tx's transaction's payload's ...); the
#: node's deepest real chain (signed_tx -> channel_offchain_tx -> update -> contract code) is under 8.
MAX_OBJECT_DEPTH = 32


class RLPLimitError(rlp.DecodingError):
    """A serialized object exceeds :data:`MAX_RLP_BYTES`, :data:`MAX_RLP_DEPTH` or :data:`MAX_RLP_ITEMS`
    (the message names the limit)."""


_prefix_of = rlp.codec.consume_length_prefix


def read_rlp(data: bytes) -> list[Any] | bytes:
    """The RLP item tree of ``data`` (one whole item: ``bytes`` or nested lists of them), in time linear in
    ``len(data)``.

    Each item header is read by pyrlp (``rlp.codec.consume_length_prefix``: its canonical-form checks, such
    as a short string written long, apply), but the walk is ours: iterative, slicing each string once (pyrlp's
    ``consume_item`` also builds every list's encoding by repeated concatenation, quadratic in its size, and
    recurses once per nesting level). ``rusty-rlp`` is not used either: it accepts an item running past its
    list's end. Raises ``rlp.DecodingError`` for malformed RLP (an item running past its list, bytes after
    the item), :class:`RLPLimitError` past :data:`MAX_RLP_BYTES`, :data:`MAX_RLP_DEPTH` or
    :data:`MAX_RLP_ITEMS`, and ``IndexError`` when the data ends inside an item header.
    """
    n = len(data)
    if n > MAX_RLP_BYTES:
        raise RLPLimitError(f"{n:,} bytes, more than MAX_RLP_BYTES ({MAX_RLP_BYTES:,})", data)
    _, typ, length, pos = _prefix_of(data, 0)
    end = pos + length
    if end > n:
        raise rlp.DecodingError(f"the item announces {length:,} bytes, {n - pos:,} follow", data)
    if end != n:
        raise rlp.DecodingError(f"RLP string ends with {n - end} superfluous bytes", data)
    if typ is bytes:
        return data[pos:end]
    root: list[Any] = []
    stack: list[tuple[list[Any], int]] = [(root, end)]
    current, current_end = root, end
    items = 0
    while True:
        if pos >= current_end:
            stack.pop()
            if not stack:
                return root
            current, current_end = stack[-1]
            continue
        _, typ, length, start = _prefix_of(data, pos)
        stop = start + length
        if stop > current_end:
            raise rlp.DecodingError("List length prefix announced a too small length", data)
        items += 1
        if items > MAX_RLP_ITEMS:
            raise RLPLimitError(f"more than MAX_RLP_ITEMS ({MAX_RLP_ITEMS:,}) items", data)
        if typ is bytes:
            current.append(data[start:stop])
            pos = stop
        else:
            if len(stack) >= MAX_RLP_DEPTH:
                raise RLPLimitError(f"lists nested deeper than MAX_RLP_DEPTH ({MAX_RLP_DEPTH})", data)
            inner: list[Any] = []
            current.append(inner)
            stack.append((inner, stop))
            current, current_end, pos = inner, stop, start


def _rlp_string_at(data: bytes, pos: int) -> tuple[bytes, int]:
    """The RLP string item at ``pos`` and the position after it (a list there is a ``DecodingError``;
    nothing past the header is read, so this is O(1) whatever follows)."""
    _, typ, length, start = _prefix_of(data, pos)
    if typ is not bytes:
        raise rlp.DecodingError("expected an RLP string, found a list", data)
    if start + length > len(data):
        raise IndexError("RLP string runs past the end of the data")
    return data[start:start + length], start + length


_rlp_items = read_rlp


def _no_schema(tag: int, version: int, count: int) -> DecodeError:
    known = sch.layouts(tag, version)
    if known:
        counts = " or ".join(str(len(s.fields)) for s in known)
        return _fail(f"{count} fields, but {sch.type_name(tag)} v{version} has {counts}")
    versions = sorted({s.version for s in sch.SCHEMAS if s.tag == tag})
    if versions:
        return _fail(f"no schema for {sch.type_name(tag)} version {version} (known: "
                     f"{', '.join(f'v{v}' for v in versions)})")
    if tag in sch.TAG_NAMES:
        return _fail(f"no schema for {sch.type_name(tag)} (tag {tag})")
    return _fail(f"unknown tag {tag}")


def _rlp_reason(exc: Exception) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__


_Plan = tuple[Schema, tuple[str, ...], tuple[Callable[[Any, bool], Any], ...]]


def _plan(schema: Schema) -> _Plan:
    """A schema row compiled: the row, its field names and one decoder per field, in wire order."""
    return schema, schema.field_names, tuple(_decoder(ftype) for _, ftype in schema.fields)


#: ``(tag, version, field count)`` -> the compiled row (:func:`_plan`), filled on first use.
_PLANS: dict[tuple[int, int, int], _Plan] = {}
#: ``(tag bytes, version bytes, item count)`` -> the row's straight-line decoder (:func:`_compile`), filled
#: when the general path first decodes the row.
_FAST: dict[tuple[bytes, bytes, int], Callable[[list[Any], bool], Decoded]] = {}


class _Slow(Exception):
    """Raised by a compiled decoder when a field is not what the row expects (the general path then says
    what and where)."""


def _compile(schema: Schema) -> Callable[[list[Any], bool], Decoded]:
    """One schema row as a straight-line Python function ``(items, lenient) -> Decoded`` for the success
    path: ints, ids, binaries and bools are decoded in line, other fields by their decoder (:func:`_decoder`).

    It gives the same :class:`Decoded` as the general loop in :func:`_decode_object` (a test compares them
    over the corpus), and raises (``_Slow``, ``KeyError``, ``TypeError`` or a nested ``DecodeError``) where
    the general loop would report an error; the caller then runs the general loop for the message. The code
    is built from the row (field names are written with ``repr``), like ``dataclasses`` builds ``__init__``.
    """
    env: dict[str, Any] = {"Slow": _Slow, "from_bytes": int.from_bytes, "EMPTY": _EMPTY_ZERO, "Api": ApiValue,
                           "IDS": ID_PREFIXES, "BOOLS": {b"\x00": False, b"\x01": True},
                           "Proxy": MappingProxyType, "Decoded": Decoded, "SCHEMA": schema}
    names = [f"b{i}" for i in range(len(schema.fields))]
    body = [f"    _, _, {''.join(n + ', ' for n in names)}= items"]
    for i, (_, ftype) in enumerate(schema.fields):
        b, v = f"b{i}", f"v{i}"
        kind = ftype.kind
        if kind is Kind.INT:
            body += [f"    if type({b}) is not bytes or (len({b}) > 1 and not {b}[0]): raise Slow",
                     f"    {v} = from_bytes({b}, 'big') if {b} else EMPTY"]
        elif kind is Kind.ID:
            body += [f"    if type({b}) is not bytes or len({b}) != 33: raise Slow",
                     f"    {v} = Api(IDS[{b}[0]], {b}[1:])"]
        elif kind is Kind.BOOL:
            body += [f"    {v} = BOOLS[{b}]"]
        elif kind is Kind.BINARY:
            sizes = PREFIXES[ftype.prefix].sizes
            env[f"P{i}"], env[f"S{i}"] = ftype.prefix, frozenset(sizes or ())
            which = f"P{i}" if sizes is None else f"(P{i} if len({b}) in S{i} else 'ba')"
            body += [f"    if type({b}) is not bytes: raise Slow",
                     f"    {v} = Api({which}, {b}) if {b} else ''"]
        else:
            env[f"D{i}"] = _decoder(ftype)
            body += [f"    {v} = D{i}({b}, lenient)"]
    pairs = ", ".join(f"{name!r}: v{i}" for i, name in enumerate(schema.field_names))
    body += [f"    return Decoded({schema.name!r}, {schema.tag!r}, {schema.version!r}, Proxy({{{pairs}}}), "
             "None, None, SCHEMA)"]
    code = "def decode_row(items, lenient):\n" + "\n".join(body) + "\n"
    exec(compile(code, f"<chanlog row {schema.label}>", "exec"), env)  # noqa: S102 - code built from the row
    return env["decode_row"]


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    return f"a {len(value)}-byte string"


def _dec_int(b: Any, lenient: bool = False) -> int:
    if type(b) is not bytes:
        raise _fail(f"expected an int, got {_describe(b)}")
    if not b:
        return _EMPTY_ZERO
    if b[0] == 0 and len(b) > 1:
        raise _fail(f"leading zero byte in int 0x{b.hex()}")
    return int.from_bytes(b, "big")


def _dec_bool(b: Any, lenient: bool = False) -> bool:
    if b == b"\x01":
        return True
    if b == b"\x00":
        return False
    raise _fail(f"expected a bool (0x00 or 0x01), got {_describe(b) if type(b) is list else '0x' + b.hex()}")


def _dec_id(b: Any, lenient: bool = False) -> ApiValue:
    if type(b) is not bytes or len(b) != 33:
        raise _fail(f"expected an id (33 bytes), got {_describe(b)}")
    prefix = ID_PREFIXES.get(b[0])
    if prefix is None:
        raise _fail(f"unknown id tag {b[0]}")
    return ApiValue(prefix, b[1:])


def _binary_decoder(prefix: str) -> Callable[[Any, bool], ApiValue | str]:
    sizes = PREFIXES[prefix].sizes

    def dec(b: Any, lenient: bool = False) -> ApiValue | str:
        if type(b) is not bytes:
            raise _fail(f"expected a binary, got {_describe(b)}")
        if not b:
            return ""
        return ApiValue(prefix if sizes is None or len(b) in sizes else "ba", b)
    return dec


_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]*\Z")


def _dec_text(b: Any, lenient: bool = False) -> ApiValue | str:
    if type(b) is not bytes:
        raise _fail(f"expected a binary (text), got {_describe(b)}")
    try:
        text = b.decode("utf-8")
    except UnicodeDecodeError:
        return ApiValue("ba", b)
    if _PRINTABLE.match(text) and not looks_encoded(text):
        return text
    return ApiValue("ba", b)


def _object_decoder(ftype: FieldType) -> Callable[[Any, bool], Any]:
    empty, maybe, prefix = ftype.empty, ftype.maybe, ftype.prefix

    def dec(b: Any, lenient: bool = False) -> Any:
        if type(b) is not bytes:
            raise _fail(f"expected a serialized object, got {_describe(b)}")
        if not b:
            if empty:
                return None
            if maybe:
                return ""
            raise _fail("expected a serialized object, got an empty binary")
        if maybe:
            if b[0] < 0xC0:
                return ApiValue(prefix, b)
            try:
                return _object(b, False)
            except DecodeError:
                return ApiValue(prefix, b)
        return _object(b, lenient)
    return dec


def _list_decoder(item: FieldType) -> Callable[[Any, bool], tuple[Any, ...]]:
    dec_item = _decoder(item)

    def dec(v: Any, lenient: bool = False) -> tuple[Any, ...]:
        if type(v) is not list:
            raise _fail(f"expected a list, got {_describe(v)}")
        out = []
        for i, x in enumerate(v):
            try:
                out.append(dec_item(x, lenient))
            except DecodeError as exc:
                raise exc.within(f"[{i}]") from None
        return tuple(out)
    return dec


def _record_decoder(items: tuple[tuple[str, FieldType], ...]) -> Callable[[Any, bool], Mapping[str, Any]]:
    plan = tuple((name, _decoder(t)) for name, t in items)
    n = len(plan)

    def dec(v: Any, lenient: bool = False) -> Mapping[str, Any]:
        if type(v) is not list or len(v) != n:
            raise _fail(f"expected a list of {n} ({', '.join(name for name, _ in plan)}), got {_describe(v)}")
        out = {}
        for (name, d), x in zip(plan, v, strict=True):
            try:
                out[name] = d(x, lenient)
            except DecodeError as exc:
                raise exc.within(name) from None
        return MappingProxyType(out)
    return dec


_MAYBE_VALUE = sch.obj("ba", maybe=True)


def _dec_mpt_node(v: Any, lenient: bool = False) -> tuple[Any, ...]:
    """A trie node: leaf ``[path, value]`` (hex-prefix flag 2 or 3), extension ``[path, child]``, or branch
    (16 children and a value); values are decoded as objects when they are ones."""
    if type(v) is not list or len(v) not in (2, 17) or any(type(x) is not bytes for x in v):
        raise _fail(f"expected a trie node (2 or 17 binaries), got {_describe(v)}")
    value_dec, ba = _MPT_DECODERS
    if len(v) == 2:
        is_leaf = bool(v[0]) and v[0][0] >> 4 in (2, 3)
        return (ba(v[0]), value_dec(v[1]) if is_leaf else ba(v[1]))
    return (*[ba(x) for x in v[:16]], value_dec(v[16]))


@cache
def _decoder(ftype: FieldType) -> Callable[[Any, bool], Any]:
    kind = ftype.kind
    if kind is Kind.INT:
        return _dec_int
    if kind is Kind.BOOL:
        return _dec_bool
    if kind is Kind.ID:
        return _dec_id
    if kind is Kind.BINARY:
        return _binary_decoder(ftype.prefix)
    if kind is Kind.TEXT:
        return _dec_text
    if kind is Kind.OBJECT:
        return _object_decoder(ftype)
    if kind is Kind.LIST:
        assert ftype.item is not None
        return _list_decoder(ftype.item)
    if kind is Kind.RECORD:
        return _record_decoder(ftype.items)
    if kind is Kind.MPT_NODE:
        return _dec_mpt_node
    raise AssertionError(kind)


_MPT_DECODERS = (_decoder(_MAYBE_VALUE), _decoder(sch.BA))


def _starts_object(payload: bytes) -> bool:
    """Whether ``payload`` is an RLP list whose first two items are a known ``(tag, version)``."""
    try:
        if not payload or payload[0] < 0xC0:
            return False
        _, typ, length, start = rlp.codec.consume_length_prefix(payload, 0)
        if start + length != len(payload):
            return False
        tag_b, pos = _rlp_string_at(payload, start)
        vsn_b, _ = _rlp_string_at(payload, pos)
        tag, vsn = _dec_int(tag_b), _dec_int(vsn_b)
    except (rlp.DecodingError, IndexError, DecodeError):
        return False
    return bool(sch.layouts(tag, vsn))


# -- internals: encoding --------------------------------------------------------------------------

def _schema_of(decoded: Decoded) -> Schema:
    if decoded.schema is not None and decoded.schema.tag == decoded.tag \
            and decoded.schema.version == decoded.version and tuple(decoded.fields) == decoded.schema.field_names:
        return decoded.schema
    if decoded.tag is None or decoded.version is None:
        raise EncodeError("no tag/version to encode", [decoded.label])
    names = set(decoded.fields)
    for layout in sch.layouts(decoded.tag, decoded.version):
        if set(layout.field_names) == names:
            return layout
    known = sch.layouts(decoded.tag, decoded.version)
    if not known:
        raise EncodeError(f"no schema for tag {decoded.tag} version {decoded.version}", [decoded.label])
    expected = " | ".join(", ".join(s.field_names) for s in known)
    raise EncodeError(f"fields {', '.join(decoded.fields)} match no layout (expected: {expected})",
                      [decoded.label])


def _enc_int(v: Any) -> bytes:
    if type(v) is EmptyInt:
        return b""
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise EncodeError(f"expected a non-negative int, got {v!r}")
    return v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")


def _enc_bool(v: Any) -> bytes:
    if not isinstance(v, bool):
        raise EncodeError(f"expected a bool, got {v!r}")
    return b"\x01" if v else b"\x00"


def _enc_binary(v: Any) -> bytes:
    if type(v) is ApiValue:
        return v.payload
    if isinstance(v, bytes | bytearray):
        return bytes(v)
    if not isinstance(v, str):
        raise EncodeError(f"expected an API-encoded string or bytes, got {v!r}")
    if v == "":
        return b""
    try:
        return parse_api(v).payload
    except EncodingError as exc:
        raise EncodeError(f"bad API-encoded value {abbreviate(v)!r}: {exc.message}") from None


def _enc_text(v: Any) -> bytes:
    if type(v) is ApiValue:
        return v.payload
    if isinstance(v, str) and looks_encoded(v):
        try:
            return parse_api(v).payload
        except EncodingError:
            pass
    if isinstance(v, str):
        return v.encode("utf-8")
    return _enc_binary(v)


def _enc_id(v: Any) -> bytes:
    if isinstance(v, bytes) and len(v) == 33 and v[0] in ID_PREFIXES:
        return v
    if type(v) is ApiValue:
        if v.prefix in _ID_TAGS and len(v.payload) == 32:
            return bytes([_ID_TAGS[v.prefix]]) + v.payload
        v = str(v)
    if not isinstance(v, str):
        raise EncodeError(f"expected an id string such as 'ak_…', got {v!r}")
    try:
        env = parse_api(v)
    except EncodingError as exc:
        raise EncodeError(f"bad id {abbreviate(v)!r}: {exc.message}") from None
    tag = _ID_TAGS.get(env.prefix)
    if tag is None or len(env.payload) != 32:
        raise EncodeError(f"not an id: {abbreviate(v)!r} (ids are {', '.join(_ID_TAGS)} with 32 bytes)")
    return bytes([tag]) + env.payload


def _object_encoder(ftype: FieldType) -> Callable[[Any], bytes]:
    def enc(v: Any) -> bytes:
        if isinstance(v, Decoded):
            return encode_bytes(v)
        if v is None:
            if not ftype.empty:
                raise EncodeError("no object (None) where one is required")
            return b""
        return _enc_binary(v)
    return enc


def _list_encoder(item: FieldType) -> Callable[[Any], list[Any]]:
    enc_item = _encoder(item)

    def enc(v: Any) -> list[Any]:
        if not isinstance(v, list | tuple):
            raise EncodeError(f"expected a list, got {v!r}")
        out = []
        for i, x in enumerate(v):
            try:
                out.append(enc_item(x))
            except DecodeError as exc:
                raise exc.within(f"[{i}]") from None
        return out
    return enc


def _record_encoder(items: tuple[tuple[str, FieldType], ...]) -> Callable[[Any], list[Any]]:
    plan = tuple((name, _encoder(t)) for name, t in items)

    def enc(v: Any) -> list[Any]:
        if not isinstance(v, Mapping) or set(v) != {name for name, _ in plan}:
            raise EncodeError(f"expected a mapping with keys {', '.join(n for n, _ in plan)}, got {v!r}")
        out = []
        for name, e in plan:
            try:
                out.append(e(v[name]))
            except DecodeError as exc:
                raise exc.within(name) from None
        return out
    return enc


def _enc_mpt_node(v: Any) -> list[bytes]:
    if not isinstance(v, list | tuple) or len(v) not in (2, 17):
        raise EncodeError(f"expected a trie node (2 or 17 values), got {v!r}")
    return [encode_bytes(x) if isinstance(x, Decoded) else _enc_binary(x) for x in v]


@cache
def _encoder(ftype: FieldType) -> Callable[[Any], Any]:
    kind = ftype.kind
    simple = {Kind.INT: _enc_int, Kind.BOOL: _enc_bool, Kind.ID: _enc_id, Kind.BINARY: _enc_binary,
              Kind.TEXT: _enc_text, Kind.MPT_NODE: _enc_mpt_node}
    if kind in simple:
        return simple[kind]
    if kind is Kind.OBJECT:
        return _object_encoder(ftype)
    if kind is Kind.LIST:
        assert ftype.item is not None
        return _list_encoder(ftype.item)
    if kind is Kind.RECORD:
        return _record_encoder(ftype.items)
    raise AssertionError(kind)


# -- internals: output ----------------------------------------------------------------------------

def _join_path(path: list[str]) -> str:
    out = ""
    for seg in path:
        if seg.startswith("["):
            out += seg
        else:
            out += (" -> " if out else "") + seg
    return out


def _objects_in(value: Any) -> Iterator[Decoded]:
    if isinstance(value, Decoded):
        yield from value.walk()
    elif isinstance(value, list | tuple):
        for x in value:
            yield from _objects_in(x)
    elif isinstance(value, Mapping):
        for x in value.values():
            yield from _objects_in(x)


def _collect_errors(node: Any, path: list[str], out: list[str]) -> None:
    if isinstance(node, Decoded):
        if node.error is not None:
            out.append(" -> ".join(filter(None, [_join_path(path), node.error])))
            return
        for name, value in node.fields.items():
            _collect_errors(value, [*path, node.label, name], out)
    elif isinstance(node, list | tuple):
        for i, x in enumerate(node):
            _collect_errors(x, [*path, f"[{i}]"], out)
    elif isinstance(node, Mapping):
        for k, x in node.items():
            _collect_errors(x, [*path, k], out)


def _json_value(v: Any) -> Any:
    if isinstance(v, Decoded):
        return to_json(v)
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _json_value(x) for k, x in v.items()}
    if type(v) is EmptyInt:
        return 0
    if type(v) is ApiValue:
        return str(v)
    return v


def _hex_tree(v: Any) -> Any:
    if isinstance(v, list):
        return [_hex_tree(x) for x in v]
    return "0x" + bytes(v).hex()


_AMOUNT_FIELD = re.compile(r"amount|fee|deposit|reserve|balance|gas_price")
#: Aettos in one AE: the token has 18 decimals (the SDK's utils/amount-formatter: ``DENOMINATION_MAGNITUDE``
#: of ``AE_AMOUNT_FORMATS.AE`` is 18; the aettos format is 0).
AETTOS_PER_AE = 10 ** 18
#: From this amount on (0.001 AE), :func:`amount_text` gives the AE value first: below it, AE figures
#: would be mostly zeros after the point.
AE_FROM = 10 ** 15
#: Most digits of an amount written in AE too (a 256-bit integer has 78; longer ones show in aettos only).
MAX_AE_DIGITS = 78


def amount_text(value: int) -> str:
    """An amount in aettos for people, its unit given once: ``1 aetto``, ``70,000,000,000,000 aettos``; from
    :data:`AE_FROM` on, the exact AE value first: ``1.5 AE (1,500,000,000,000,000,000 aettos)``."""
    aettos = f"{value:,} aetto{'' if value == 1 else 's'}"
    if value < AE_FROM or len(str(value)) > MAX_AE_DIGITS:
        return aettos
    whole, frac = divmod(value, AETTOS_PER_AE)
    ae = f"{whole:,}" + (f".{frac:018d}".rstrip("0") if frac else "")
    return f"{ae} AE ({aettos})"
#: Strings longer than this are shortened in text and Markdown output.
SHORTEN_AT = 100
#: A list of scalars is written on one line when its items add up to fewer characters than this.
_INLINE_LIST = 80


def _scalar(name: str, v: Any) -> str:
    """One value for people: amounts with their unit (:func:`amount_text`), long blobs shortened with their
    size."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        if _AMOUNT_FIELD.search(name):
            return amount_text(v)
        if name == "ct_version" and v >= 1 << 16:
            return f"{v} (vm {v >> 16}, abi {v & 0xFFFF})"
        return str(v)
    if v is None:
        return "(none)"
    if type(v) is ApiValue:
        text = str(v)
        return f"{text[:40]}\u2026{text[-12:]} ({len(v.payload):,} bytes)" if len(text) > SHORTEN_AT else text
    if isinstance(v, str):
        if v == "":
            return '""'
        if len(v) > SHORTEN_AT and looks_encoded(v):
            try:
                tail = f" ({len(parse_api(v).payload):,} bytes)"
            except EncodingError:
                tail = ""
            return f"{v[:40]}\u2026{v[-12:]}{tail}"
        return v
    return repr(v)


def _label(d: Decoded, md: bool) -> str:
    """``**channel_create_tx v2**`` (Markdown) or ``channel_create_tx v2 (tag 50)``; error nodes say so."""
    if d.type is None:
        return "**could not decode**" if md else "could not decode"
    text = f"**{d.label}**" if md else (f"{d.label} (tag {d.tag})" if d.tag is not None else d.label)
    return text + (" (could not decode)" if d.error is not None else "")


def _fields(d: Decoded, depth: int, md: bool) -> list[str]:
    pad, bullet = "  " * depth, "- " if md else ""
    if d.error is not None:
        lines = [f"{pad}{bullet}error: {d.error}"]
        if d.data is not None:
            raw = "0x" + d.data.hex()
            shown = raw if len(raw) <= SHORTEN_AT else f"{raw[:60]}\u2026 ({len(d.data):,} bytes)"
            lines.append(f"{pad}{bullet}raw: {shown}")
        return lines
    out: list[str] = []
    for name, value in d.fields.items():
        out += _field_lines(name, value, depth, md)
    return out


def _field_lines(name: str, value: Any, depth: int, md: bool) -> list[str]:
    pad, bullet = "  " * depth, "- " if md else ""
    head = f"{pad}{bullet}{name}:"
    if isinstance(value, Decoded):
        return [f"{head} {_label(value, md)}", *_fields(value, depth + 1, md)]
    if isinstance(value, Mapping):
        out = [head]
        for key, x in value.items():
            out += _field_lines(key, x, depth + 1, md)
        return out
    if isinstance(value, list | tuple):
        if not value:
            return [f"{head} []"]
        scalars = [_scalar(name, x) for x in value if not isinstance(x, Decoded | Mapping | list | tuple)]
        if len(scalars) == len(value) and sum(len(x) + 2 for x in scalars) < _INLINE_LIST:
            return [f"{head} {', '.join(scalars)}"]
        empty = sum(1 for x in value if x == "")
        if len(value) >= 8 and empty * 2 >= len(value):  # a trie branch: say which slots are filled
            item_pad = "  " * (depth + 1)
            lines = [head]
            for n, x in enumerate(value):
                if x == "":
                    continue
                if isinstance(x, Decoded):
                    lines += [f"{item_pad}- [{n}] {_label(x, md)}", *_fields(x, depth + 2, md)]
                else:
                    lines.append(f"{item_pad}- [{n}] {_scalar(name, x)}")
            return [*lines, f"{item_pad}- ({empty} of {len(value)} empty)"]
        out = [head]
        for i, x in enumerate(value):
            out += _item_lines(name, i, x, depth + 1, md)
        return out
    return [f"{head} {_scalar(name, value)}"]


def _item_lines(name: str, index: int, x: Any, depth: int, md: bool) -> list[str]:
    """One item of a list field: a nested object, a fixed tuple, a nested list or a scalar."""
    pad = "  " * depth
    if isinstance(x, Decoded):
        return [f"{pad}- {_label(x, md)}", *_fields(x, depth + 1, md)]
    if isinstance(x, Mapping):
        inner: list[str] = []
        for key, y in x.items():
            inner += _field_lines(key, y, depth + 1, md)
        if md or not inner:
            return [f"{pad}- #{index + 1}", *inner]
        return [f"{pad}- {inner[0].lstrip()}", *inner[1:]]  # YAML-like: first key on the dash line
    if isinstance(x, list | tuple):
        out = [f"{pad}- #{index + 1}"]
        for j, y in enumerate(x):
            out += _item_lines(name, j, y, depth + 1, md)
        return out
    return [f"{pad}- {_scalar(name, x)}"]
