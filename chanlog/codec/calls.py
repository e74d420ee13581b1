"""Call data and return values named by the contract that defines them, and the contracts of a transcript.

- :func:`decode_call` — call data (``cb_…`` in ``call_data``) -> :class:`Call`: the function (named from the
  contract code when it is known: FATE ``(function hash, (args...))``, ``aeb_fate_abi``; AEVM ``(type hash,
  args)`` heap, ``aeb_aevm_abi``; AEVM of 2018, ``aeso_abi:create_calldata/3``: ``(function name, args)``,
  the name a string, so such calls are named without their contract), its arguments typed by the function's
  signature, or read by :func:`chanlog.codec.aevm.guess` when AEVM types are not known;
  :func:`encode_call` writes it back byte-exact.
- :func:`decode_return` — a return value (``return_value`` with its ``return_type``: ``ok`` is a value of
  the function's return type, ``revert`` a string, ``error`` plain text such as ``out_of_gas``) ->
  :class:`Result`.
- :class:`CallAnnotator` — reads a transcript's frames in order, remembers the contract code it meets
  (``code`` fields, also inside ``tx_`` blobs) and names each later call and result by it (raw hash when
  no code is known); used by ``chanlog render`` and ``chanlog decode``.
- :func:`payload_of` (from :mod:`chanlog.codec.contract`) — the bytes of a ``cb_`` string (base64check today, base58check in 2018 traffic).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chanlog.codec import aevm, fate
from chanlog.codec.contract import Contract, Function, parse_contract_bytes, payload_of, vm_of
from chanlog.codec.errors import CodecError

__all__ = ["Call", "Result", "decode_call", "encode_call", "decode_return", "payload_of", "guess_vm",
           "ContractBook", "CallAnnotator", "Annotation", "call_json", "result_json", "contract_json",
           "RETURN_TYPES", "vm_beside", "parse_code"]

#: ``return_type`` of a contract call object (aect_call): number or name -> name.
RETURN_TYPES = {0: "ok", 1: "error", 2: "revert", "ok": "ok", "error": "error", "revert": "revert"}


def guess_vm(data: bytes) -> str:
    """``"fate"`` or ``"aevm"`` for call data or a return value without its contract: AEVM values are heaps
    of whole 32-byte words whose first word (a pointer or a small value) starts with a zero byte; a FATE
    value starting with ``0x00`` is the one-byte integer 0."""
    if len(data) >= 32 and len(data) % 32 == 0 and data[0] == 0:
        return "aevm"
    return "fate"


#: A function name as 2018 AEVM call data carries it (a Sophia identifier; aeso_abi:encode_function/2 wrote
#: the name's bytes). Longer or other strings are not taken for a name.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_']{0,127}\Z")


@dataclass(frozen=True)
class Call:
    """Decoded call data: the ``vm``, the function ``hash`` (4 bytes FATE, 32 AEVM; empty when the call data
    names its function instead, AEVM 2018), the :class:`Function` when known, the ``args`` (values; ``None``
    when they cannot be read: AEVM without contract code whose heap :func:`aevm.guess` cannot read),
    ``label`` the function name carried in the call data (2018 ABI), ``guessed`` the AEVM argument types read
    from the heap layout (``None`` when the arguments are typed by the function or are FATE values)."""

    vm: str
    hash: bytes
    function: Function | None
    args: tuple[Any, ...] | None
    raw: bytes = b""
    label: str | None = None
    guessed: tuple[Any, ...] | None = None

    @property
    def matches(self) -> bool | None:
        """Whether the arguments have the types of the function's signature (``None`` when the function or
        the arguments are unknown). AEVM arguments are read by those types, so they always match."""
        if self.function is None or self.args is None or self.guessed is not None:
            return None
        if self.vm == "aevm":
            return True
        return fate.conforms(tuple(self.args), fate.Type("tuple", tuple(self.function.args)))

    @property
    def name(self) -> str:
        """The function's name (from the contract, else from the call data), else ``0x`` and its hash."""
        if self.function and self.function.name:
            return self.function.name
        return self.label or "0x" + self.hash.hex()

    def text(self, limit: int = fate.FORMAT_LIMIT) -> str:
        """``inc(5)``; ``0x44d6441f(5)`` when the function is unknown; ``f(…)`` when the arguments are."""
        if self.args is None:
            return f"{self.name}(\u2026)"
        types = self.function.args if self.function else [None] * len(self.args)
        if len(types) != len(self.args):
            types = [None] * len(self.args)
        parts = [_fmt(a, t, limit, self.vm) for a, t in zip(self.args, types, strict=True)]
        return f"{self.name}({', '.join(parts)})"


@dataclass(frozen=True)
class Result:
    """A decoded return value: ``return_type`` (``ok``, ``revert``, ``error``), the ``value`` (``None``
    when it cannot be read), the function whose result it is (when known), ``guessed`` the AEVM type read
    from the heap layout when the function's return type is not known (:func:`aevm.guess`)."""

    vm: str
    return_type: str
    value: Any
    function: Function | None = None
    raw: bytes = b""
    guessed: Any = None

    def text(self, limit: int = fate.FORMAT_LIMIT) -> str:
        """The value as a Sophia literal (``42``, ``"reason"``); an error's text quoted; about ``limit``
        characters at most."""
        if self.value is None:
            return f"<{len(self.raw)} bytes, type unknown>"
        if self.return_type == "error":
            return repr(self.value)
        t = self.function.returns if self.function and self.return_type == "ok" else None
        return _fmt(self.value, t, limit, self.vm)


def _fmt(v: Any, t: Any, limit: int, vm: str = "fate") -> str:
    if vm == "aevm":
        return fate.format_value(_words_shown(v), None, limit)
    return fate.format_value(v, t if isinstance(t, fate.Type) else None, limit)


class _HexWord(int):
    """An AEVM word too large to be a count or an amount (an address, a hash): shown as ``0x…`` (a Sophia
    integer literal of the same value)."""

    def __repr__(self) -> str:
        return f"0x{int(self):064x}"


#: AEVM words at or above this are shown in hexadecimal (addresses and hashes are 256-bit words there).
HEX_WORDS_FROM = 1 << 128


def _words_shown(v: Any) -> Any:
    """An AEVM value for display: large words as :class:`_HexWord` (everything else as it is)."""
    kind = type(v)
    if kind is int:
        return _HexWord(v) if v >= HEX_WORDS_FROM else v
    if kind is tuple:
        return tuple(_words_shown(x) for x in v)
    if kind is fate.List:
        return fate.List(_words_shown(x) for x in v)
    if kind is fate.Variant:
        return fate.Variant(v.arities, v.tag, tuple(_words_shown(x) for x in v.values))
    if kind is fate.Map:
        return fate.Map(tuple((_words_shown(k), _words_shown(x)) for k, x in v.items))
    return v


def decode_call(data: bytes, contract: Contract | None = None, vm: str | None = None) -> Call:
    """Call data -> :class:`Call`; the function is looked up in ``contract`` when given.

    FATE call data decodes without the contract (FATE values carry their types). AEVM arguments need the
    function's types: without them (no contract, or 2018 code without ``type_info``) they are read from the
    heap layout (:func:`chanlog.codec.aevm.guess`; ``Call.guessed`` holds the types read, ``args`` is
    ``None`` when the layout does not show them). AEVM call data of 2018 names its function (a string
    first, ``aeso_abi``): ``Call.label``, and the contract's function of that name types it. Raises
    :class:`CodecError` (path ``call data -> ...``, byte offset) for bytes that are not call data."""
    vm = vm or (contract.vm if contract else guess_vm(data))
    if vm == "fate":
        value = fate.decode(data, "call data")
        if type(value) is not tuple or len(value) != 2 or type(value[0]) is not str or type(value[1]) is not tuple:
            raise CodecError("FATE call data is a tuple (function hash, (arguments...)), got "
                             f"{fate.format_value(value, limit=60)}", 0, ["call data"])
        fhash = value[0].encode("utf-8", "surrogateescape")
        if len(fhash) != 4:
            raise CodecError(f"a function hash has 4 bytes, got {len(fhash)}", 1, ["call data"])
        return Call("fate", fhash, contract.function(fhash) if contract else None, value[1], bytes(data))
    head = aevm.decode(data, aevm.AType("tuple", (aevm.W, aevm.W)), "call data")
    label = _name_in_call(data, head[0])
    fhash = b"" if label else head[0].to_bytes(32, "big")
    function = None
    if contract is not None:
        function = contract.by_name(label) if label else contract.function(fhash)
    if function is None:
        first = aevm.S if label else aevm.W
        if head[1] == 0 and aevm.encode((label or head[0], ()), aevm.AType("tuple", (first, aevm.AType("tuple")))
                                        ) == data:  # no arguments: the empty tuple is the word 0
            return Call("aevm", fhash, None, (), bytes(data), label)
        args, types = _guessed_args(data, flat=label is not None)
        return Call("aevm", fhash, None, args, bytes(data), label, types)
    first = aevm.S if label else aevm.W
    value = aevm.decode(data, aevm.AType("tuple", (first, aevm.AType("tuple", function.args))), "call data")
    return Call("aevm", fhash, function, value[1], bytes(data), label)


def _name_in_call(data: bytes, first: int) -> str | None:
    """The function name 2018 AEVM call data starts with (``aeso_abi``: the call is ``{Name, Args}``, the name
    a string, so the first word is a pointer to it), or ``None`` when the first word is a type hash (a
    32-byte hash is never a pointer into a heap of at most :data:`~chanlog.codec.fate.MAX_SIZE` bytes)."""
    if first >= len(data) or first % aevm.WORD:
        return None
    try:
        name = aevm.decode(data, aevm.AType("tuple", (aevm.S,)), "call data")[0]
    except CodecError:
        return None
    return name if _NAME.match(name) else None


def _guessed_args(data: bytes, flat: bool) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
    """``(arguments, their guessed types)`` of AEVM call data without its function's types, from
    :func:`aevm.guess`: the ABI's ``(function, arguments tuple)``, or (``flat``: call data naming its
    function, 2018) the earliest layout ``(function, arg1, arg2, ...)``; ``(None, None)`` when the heap
    cannot be read that way."""
    found = aevm.guess(data)
    if found is None or found[0].name != "tuple" or len(found[0].args) < 2:
        return None, None
    types, values = found[0].args[1:], found[1][1:]
    if len(types) == 1 and types[0].name == "tuple":
        return tuple(values[0]), tuple(types[0].args)
    return (tuple(values), tuple(types)) if flat else (None, None)


def encode_call(call: Call) -> bytes:
    """The call data of ``call`` (the inverse of :func:`decode_call`)."""
    if call.args is None or call.guessed is not None:
        return call.raw
    if call.vm == "fate":
        return fate.encode((call.hash.decode("utf-8", "surrogateescape"), tuple(call.args)))
    first = aevm.S if call.label else aevm.W
    t = aevm.AType("tuple", (first, aevm.AType("tuple", call.function.args if call.function else ())))
    return aevm.encode((call.label or int.from_bytes(call.hash, "big"), tuple(call.args)), t)


def decode_return(data: bytes, return_type: Any = "ok", function: Function | None = None,
                  vm: str = "fate") -> Result:
    """A return value -> :class:`Result`. ``ok``: FATE values decode by themselves; AEVM needs ``function``
    (its return type), else the value stays ``None``. ``revert``: a string. ``error``: plain text."""
    kind = RETURN_TYPES.get(return_type)
    if kind is None:
        raise CodecError(f"unknown return_type {return_type!r} (ok, error or revert)", None, ["return value"])
    if kind == "error":
        return Result(vm, kind, data.decode("utf-8", "surrogateescape"), function, bytes(data))
    if vm == "fate":
        return Result(vm, kind, fate.decode(data, "return value"), function, bytes(data))
    if kind == "revert":
        return Result(vm, kind, aevm.decode(data, aevm.AType("string"), "return value"), function, bytes(data))
    if function is None or function.returns is None:
        found = aevm.guess(data)
        if found is None:
            return Result(vm, kind, None, function, bytes(data))
        return Result(vm, kind, found[1], function, bytes(data), found[0])
    return Result(vm, kind, aevm.decode(data, function.returns, "return value"), function, bytes(data))


def encode_return(result: Result) -> bytes:
    """The bytes of a :class:`Result` (the inverse of :func:`decode_return`)."""
    if result.value is None or result.guessed is not None:
        return result.raw
    if result.return_type == "error":
        return result.value.encode("utf-8", "surrogateescape")
    if result.vm == "fate":
        return fate.encode(result.value)
    if result.return_type == "revert":
        return aevm.encode(result.value, aevm.AType("string"))
    assert result.function is not None
    return aevm.encode(result.value, result.function.returns)


# -- JSON shapes ------------------------------------------------------------------------------------

def _function_json(f: Function) -> dict[str, Any]:
    return {"name": f.name, "hash": "0x" + f.hash.hex(), "arguments": [str(t) for t in f.args],
            "returns": str(f.returns), "private": f.private, "payable": f.payable,
            "instructions": len(f.code)}


def call_json(call: Call) -> dict[str, Any]:
    """``{"kind": "call_data", "vm", "function", "function_hash", "arguments", "argument_types", "text"}``."""
    types = call.function.args if call.function else call.guessed
    out = {"kind": "call_data", "vm": call.vm, "function": call.function.name if call.function else call.label,
           "function_hash": "0x" + call.hash.hex() if call.hash else None,
           "arguments": None if call.args is None else [_json(a) for a in call.args],
           "argument_types": None if types is None else [str(t) for t in types],
           "arguments_match": call.matches, "text": call.text()}
    if call.guessed is not None:
        out["argument_types_guessed"] = True
    return out


def result_json(result: Result) -> dict[str, Any]:
    """``{"kind": "return_value", "vm", "return_type", "function", "type", "value", "text"}``."""
    f = result.function
    out = {"kind": "return_value", "vm": result.vm, "return_type": result.return_type,
           "function": f.name if f else None,
           "type": str(f.returns) if f and f.returns is not None and result.return_type == "ok" else None,
           "value": None if result.value is None else _json(result.value), "text": result.text()}
    if result.guessed is not None:
        out["type"], out["type_guessed"] = str(result.guessed), True
    return out


def contract_json(contract: Contract) -> dict[str, Any]:
    """``{"kind": "contract", "vm", "compiler_version", "functions": [...]}``."""
    version = contract.compiler_version
    out = {"kind": "contract", "vm": contract.vm, "compiler_version": None if version is None else str(version),
           "functions": [_function_json(f) for f in contract.functions]}
    if contract.note:
        out["note"] = contract.note
    return out


def _json(v: Any) -> Any:
    if isinstance(v, aevm.AType):
        return {"type": str(v)}
    if type(v) is fate.ContractBytearray or type(v) in (fate.Bytes, fate.Address, fate.Bits, fate.TypeRep,
                                                          fate.StoreMap, str, int, bool):
        return fate.to_json(v)
    if type(v) in (tuple, fate.List):
        return [_json(x) for x in v]
    if type(v) is fate.Map:
        return {"map": [[_json(k), _json(x)] for k, x in v.items]}
    if type(v) is fate.Variant:
        return {"variant": v.tag, "arities": list(v.arities), "values": [_json(x) for x in v.values]}
    return fate.to_json(v)


# -- contracts of a transcript ----------------------------------------------------------------------

class ContractBook:
    """The contracts met so far, to name functions by hash. A FATE hash depends on the name alone, so
    several contracts may define it (``init``): :meth:`candidates` gives them newest first, and
    :meth:`best_call` picks the one whose signature the arguments fit."""

    #: Contracts remembered per function hash (the newest ones).
    PER_HASH = 16
    #: Distinct contract codes remembered (oldest forgotten first): memory stays bounded on long transcripts.
    MAX_CODES = 256
    #: Call data decoded by :meth:`best_call` remembered (oldest forgotten first): a session carries each call
    #: several times (request, sign request, update report, signed reply), each decoded once while the
    #: candidate contracts stay the same. Bounded like the call data itself (a frame's).
    MAX_CALLS = 1024

    def __init__(self) -> None:
        self._by_hash: dict[bytes, list[tuple[Contract, str]]] = {}
        self._seen: dict[tuple[bytes, str | None], Contract | None] = {}
        self._calls: dict[tuple[bytes, str], tuple[bytes | None, tuple, tuple[Call, str | None]]] = {}

    def add(self, code: bytes, where: str, vm: str | None = None) -> Contract | None:
        """Parse and remember contract code (``where`` says where it was found; ``vm`` the virtual machine the
        enclosing object names, :func:`~chanlog.codec.contract.vm_of`); ``None`` if it does not parse. Code
        seen before is not parsed again (the same contract is returned)."""
        key = (code, vm)
        if key in self._seen:
            return self._seen[key]
        try:
            contract = parse_code(code, vm)
        except CodecError:
            contract = None
        self._seen[key] = contract
        if len(self._seen) > self.MAX_CODES:
            old = self._seen.pop(next(iter(self._seen)))
            if old is not None:
                for f in old.functions:
                    kept = [c for c in self._by_hash.get(f.hash, []) if c[0] is not old]
                    if kept:
                        self._by_hash[f.hash] = kept
                    else:
                        self._by_hash.pop(f.hash, None)
        if contract is not None:
            for f in contract.functions:
                found = self._by_hash.setdefault(f.hash, [])
                found.insert(0, (contract, where))
                del found[self.PER_HASH:]
        return contract

    def candidates(self, fhash: bytes) -> list[tuple[Contract, str]]:
        """``(contract, where found)`` of every remembered contract defining ``fhash``, newest first."""
        return self._by_hash.get(bytes(fhash), [])

    def lookup(self, fhash: bytes) -> tuple[Contract, str] | None:
        """The newest ``(contract, where found)`` defining a function hash, or ``None``."""
        found = self.candidates(fhash)
        return found[0] if found else None

    def best_call(self, data: bytes, vm: str) -> tuple[Call, str | None]:
        """Call data decoded with the newest contract whose function fits it (its signature, for FATE);
        the newest defining the hash when none fits; no contract when none defines it."""
        key = (bytes(data), vm)
        known = self._calls.get(key)
        if known is not None:
            fhash, before, result = known
            now = self.candidates(fhash) if fhash else ()
            if len(now) == len(before) and all(a[0] is b[0] and a[1] == b[1] for a, b in zip(now, before, strict=True)):
                return result  # the same contracts (the very objects), in the same order
        else:
            fhash = data[2:6] if vm == "fate" else _aevm_hash(data)
        candidates = tuple(self.candidates(fhash) if fhash else ())
        result = self._best_call(data, vm, candidates)
        self._calls.pop(key, None)
        self._calls[key] = (fhash, candidates, result)
        if len(self._calls) > self.MAX_CALLS:
            self._calls.pop(next(iter(self._calls)))
        return result

    @staticmethod
    def _best_call(data: bytes, vm: str, candidates: tuple[tuple[Contract, str], ...]) -> tuple[Call, str | None]:
        first: tuple[Call, str | None] | None = None
        for contract, where in candidates:
            try:
                call = decode_call(data, contract, vm)
            except CodecError:
                continue
            if call.matches is not False:
                return call, where
            first = first or (call, where)
        return first or (decode_call(data, None, vm), None)

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True)
class Annotation:
    """One decoded contract value of a frame: the JSON ``path`` of its ``cb_`` string, the ``kind``
    (``contract``, ``call_data``, ``return_value``), the decoded object (:class:`Contract`, :class:`Call`,
    :class:`Result`) or ``error`` (a :class:`CodecError` message), and ``where`` the function's contract
    code was found (``frame 12``)."""

    path: str
    kind: str
    value: Any
    error: str | None = None
    where: str | None = None
    text: str = ""
    """The ``cb_`` string itself."""

    def json(self) -> dict[str, Any]:
        """The ``--json`` shape (``call_json``, ``result_json``, ``contract_json``, or ``{"kind", "error"}``)."""
        if self.error is not None:
            return {"kind": self.kind, "error": self.error}
        shape = {"contract": contract_json, "call_data": call_json, "return_value": result_json}[self.kind]
        out = shape(self.value)
        if self.where:
            out["code_from"] = self.where
        return out

    def markdown(self) -> str:
        """A nested Markdown list for the doc layout."""
        if self.error is not None:
            return f"- {self.kind.replace('_', ' ')}: could not decode: {_code(self.error)}\n"
        if self.kind == "contract":
            c: Contract = self.value
            lines = [f"- contract code: {c.vm.upper()}, {len(c.functions)} functions"
                     + (f", compiler {_code(c.compiler_version)}" if c.compiler_version else "")]
            for f in c.functions:
                attrs = "".join(f" ({a})" for a, on in (("private", f.private), ("payable", f.payable)) if on)
                lines.append(f"  - {_code(f.signature)}{attrs}, hash 0x{f.hash.hex()[:16]}")
            if c.note:
                lines.append(f"  - {_escape_md(c.note)}")
            return "\n".join(lines) + "\n"
        if self.kind == "call_data":
            call: Call = self.value
            lines = [f"- call: {_code(call.text())}"]
            if call.function is not None:
                lines.append(f"  - function: {_code(call.function.signature)}, hash 0x{call.hash.hex()[:16]}, "
                             f"{call.vm.upper()}, code from {self.where}")
                if call.matches is False:
                    lines.append("  - the arguments do not have the types of the signature")
            elif call.label:
                lines.append("  - function named in the call data (AEVM, 2018 ABI)"
                             + (f", code from {self.where}" if self.where else ""))
            else:
                lines.append(f"  - function hash 0x{call.hash.hex()}: no contract code for it earlier in "
                             f"this transcript ({call.vm.upper()})")
            if call.guessed is not None:
                lines.append(f"  - argument types not known, read from the heap layout: "
                             f"{_code(', '.join(map(str, call.guessed)) or 'none')}")
            return "\n".join(lines) + "\n"
        res: Result = self.value
        of = f" of {_code(res.function.name)}" if res.function and res.function.name else ""
        guessed = f" (type not known, read from the heap layout as {_code(str(res.guessed))})" \
            if res.guessed is not None else ""
        return f"- return value ({res.return_type}){of}: {_code(res.text())}{guessed}\n"


def _escape_md(text: str) -> str:
    """Plain text for a Markdown list item: characters Markdown would read as markup escaped."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", " ".join(str(text).split()))


def _code(text: str) -> str:
    """``text`` as a Markdown code span on one line; backticks inside get a longer fence (CommonMark)."""
    import re

    text = " ".join(str(text).split())
    if "`" not in text:
        return f"`{text}`"
    fence = "`" * (max(len(run) for run in re.findall("`+", text)) + 1)
    return f"{fence} {text} {fence}"


class CallAnnotator:
    """Reads a transcript's frames in order and decodes the contract values in them, naming calls and
    results from contract code found earlier (:meth:`frame`)."""

    #: JSON keys whose ``cb_`` strings hold contract code, call data and return values.
    KEYS = {"code": "contract", "call_data": "call_data", "return_value": "return_value"}

    def __init__(self) -> None:
        self.book = ContractBook()
        self._last_call: dict[str, Call] = {}
        self.frames = 0

    def frame(self, data: Any, label: str | None = None) -> list[Annotation]:
        """Annotations for one frame's JSON ``data`` (``label`` names it in ``where``: ``frame 12``)."""
        self.frames += 1
        where = label or f"frame {self.frames}"
        found = list(_walk(data, "", blobs=True))
        self._learn_code(found, where)
        out = []
        for path, key, text, parent in found:
            if key in self.KEYS and text[:3] != "tx_":
                a = self._annotate(path, key, text, parent, where)
                out.append(Annotation(a.path, a.kind, a.value, a.error, a.where, text))
        return out

    def _learn_code(self, found: list[tuple[str, str, str, dict]], where: str) -> None:
        """Remember contract code in ``code`` fields and inside ``tx_`` blobs (create-contract updates) of
        one frame's :func:`_walk` (with ``blobs``)."""
        for _path, key, text, parent in found:
            if key == "code" and text[:3] != "tx_":
                try:
                    self.book.add(payload_of(text), where, vm_beside(parent))
                except CodecError:
                    pass
            elif text[:3] == "tx_":
                for code, vm in _codes_in_tx(text):
                    self.book.add(code, where, vm)

    def _own_code(self, own: Any, where: str, vm: str | None) -> Contract | None:
        """The contract of a ``code`` string beside call data (``None`` when there is none or it is broken)."""
        if not isinstance(own, str):
            return None
        try:
            return self.book.add(payload_of(own), where, vm)
        except CodecError:
            return None

    def _annotate(self, path: str, key: str, text: str, parent: dict, where: str) -> Annotation:
        kind = self.KEYS[key]
        try:
            data = payload_of(text, key)
            if kind == "contract":
                return Annotation(path, kind, parse_code(data, vm_beside(parent)))
            contract_id = str(parent.get("contract_id") or parent.get("contract") or "")
            if kind == "call_data":
                vm = guess_vm(data)  # the data's shape, not a request's abi_version (tests send wrong ones)
                own = parent.get("code")  # a create-contract request or update carries its own code
                contract = self._own_code(own, where, vm_beside(parent))
                if contract is not None:
                    call, found_at = decode_call(data, contract, contract.vm), where
                else:
                    call, found_at = self.book.best_call(data, vm)
                self._last_call.pop(contract_id, None)
                self._last_call[contract_id] = self._last_call[""] = call
                if len(self._last_call) > ContractBook.MAX_CODES:
                    self._last_call.pop(next(k for k in self._last_call if k))
                return Annotation(path, kind, call, where=found_at)
            last = self._last_call.get(contract_id) or self._last_call.get("")
            function = last.function if last else None
            vm = last.vm if last else guess_vm(data)
            return Annotation(path, kind, decode_return(data, parent.get("return_type", "ok"), function, vm))
        except CodecError as exc:
            return Annotation(path, kind, None, str(exc))

    def doc_blobs(self, data: Any, number: int | None, blobs: list[tuple[str, str]]
                   ) -> list[tuple[str, str]]:
        """The renderer's ``(path, blob)`` list of one frame with its contract values decoded in context: each
        ``cb_`` in ``code``, ``call_data`` and ``return_value`` becomes a :class:`DecodedText` (contract code
        keeps its decoded fields and gains its function table); values not yet listed are added in order."""
        try:
            found = self.frame(data, f"frame {number}" if number is not None else None)
        except Exception:  # noqa: BLE001 - a document renders whatever a frame holds; its blobs stay as they are
            return blobs
        mine: dict[str, DecodedText] = {}
        for a in found:
            md = a.markdown()
            if a.kind == "contract" and a.error is None:
                from chanlog.codec.transactions import decoded_markdown

                md = decoded_markdown(a.text).rstrip("\n") + "\n" + md
            mine[a.path] = DecodedText(a.text, md)
        out = [(p, mine.pop(p, b)) for p, b in blobs]
        return out + list(mine.items())


def _aevm_hash(data: bytes) -> bytes | None:
    try:
        return aevm.decode(data, aevm.AType("tuple", (aevm.W,)))[0].to_bytes(32, "big")
    except CodecError:
        return None


def _walk(data: Any, path: str, blobs: bool = False) -> Iterator[tuple[str, str, str, dict]]:
    """``(path, key, cb_ text, parent dict)`` of every contract-value string (and with ``blobs``, every
    ``tx_`` string too) in JSON ``data``, in document order."""
    if isinstance(data, dict):
        for k, v in data.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, str):
                if k in CallAnnotator.KEYS and v[:3] in ("cb_", "cb$"):
                    yield p, k, v, data
                elif blobs and v[:3] == "tx_":
                    yield p, k, v, data
            else:
                yield from _walk(v, p, blobs)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            if blobs and isinstance(v, str) and v[:3] == "tx_":
                yield f"{path}[{i}]", "", v, {}
            else:
                yield from _walk(v, f"{path}[{i}]", blobs)


def parse_code(data: bytes, vm: str | None) -> Contract:
    """Contract code read for the virtual machine its enclosing object names; when it does not read that way
    (a request with a wrong ``vm_version``, which the node rejects), as the code alone says."""
    try:
        return parse_contract_bytes(data, vm)
    except CodecError:
        if vm is None:
            raise
    return parse_contract_bytes(data)


def vm_beside(fields: Any) -> str | None:
    """The virtual machine named next to a contract value (``vm_version``, ``ct_version``, ``abi_version`` in
    the same JSON object or decoded fields), or ``None``."""
    if not hasattr(fields, "get"):
        return None
    return vm_of(ct_version=fields.get("ct_version"), vm_version=fields.get("vm_version"),
                 abi_version=fields.get("abi_version"))


#: The bytes every serialized ``compiler_sophia`` object (tag 70 = 0x46, versions 1-3; SCHEMAS.md, the node's
#: aect_sophia / aeser_chain_objects) holds right after its RLP list header: an RLP integer below 0x80 is its
#: own byte. RLP keeps nested byte strings contiguous, so code anywhere inside a transaction shows them; a
#: transaction without them holds no contract code.
_MAY_HOLD_CODE = re.compile(rb"\x46[\x01-\x03]")


@functools.lru_cache(maxsize=1024)
def _codes_in_tx(text: str) -> tuple[tuple[bytes, str | None], ...]:
    """Contract code inside a ``tx_`` blob (``code`` fields of create-contract updates and transactions), each
    with the virtual machine its object names (``ct_version``). Remembers the last 1,024 blobs: a session
    sends each transaction several times (sign request, signed reply, update report)."""
    from chanlog.codec.encoding import EncodingError, parse_api
    from chanlog.codec.transactions import Decoded, annotate, encode_bytes

    try:
        payload = parse_api(text).payload
    except EncodingError:
        payload = None
    if payload is not None and not _MAY_HOLD_CODE.search(payload):
        return ()  # no compiler_sophia object inside: most transactions (no decoding needed to say so)
    try:
        root = annotate(text)
    except Exception:  # noqa: BLE001 - annotate never raises by contract; be safe in a renderer
        return ()
    codes = []
    for node in root.walk():
        if isinstance(node, Decoded) and node.error is None:
            code = node.fields.get("code")
            if isinstance(code, Decoded) and code.type == "compiler_sophia":
                codes.append((encode_bytes(code), vm_beside(node.fields)))
            elif code is not None and getattr(code, "payload", None):
                codes.append((code.payload, vm_beside(node.fields)))
    return tuple(codes)


class DecodedText(str):
    """A ``cb_`` string (equal to it in every way) that carries its decoded Markdown in ``markdown``: what
    :meth:`CallAnnotator.doc_blobs` hands the renderer."""

    markdown: str

    def __new__(cls, text: str, markdown: str) -> DecodedText:
        obj = super().__new__(cls, text)
        obj.markdown = markdown
        return obj


