"""What ``chanlog decode`` prints for contract values: a ``cb_`` string on its own (contract code, call data,
a FATE value, an AEVM value; a return value or a value of a given Sophia type on request) and the contract
values inside a decoded ``tx_`` tree."""

from __future__ import annotations

import json
from typing import Any

from chanlog.codec import aevm, calls, fate, sophia
from chanlog.codec.contract import Contract, parse_contract_bytes
from chanlog.codec.errors import CodecError

__all__ = ["describe_cb", "tree_values", "tree_values_text"]


#: AEVM words listed one by one for a value read without its type (the rest counted).
MAX_WORDS_SHOWN = 64
#: What an AEVM value without its type says about ``--type``.
TYPE_HINT = "its type is not in the value: pass --type 'TYPE' (e.g. --type 'int', --type '(address, string)')"


def describe_cb(text: str, contract: str | None = None, function: str | None = None,
                return_type: str | None = None, as_json: bool = False, type_: str | None = None) -> str:
    """The decoded form of a ``cb_`` string, as text for people or as JSON (``as_json``).

    On its own a ``cb_`` gets the first reading that fits, in this order: contract code (a
    ``compiler_sophia`` object: its fields and function table); call data (FATE ``(function hash,
    (args...))``; AEVM ``(type hash or function name, args)``, named and typed by ``contract`` when given);
    a FATE value (say a return value: printed as one, "FATE value, not call data"); an AEVM value (whole
    32-byte words: listed, with what the heap layout shows, :func:`chanlog.codec.aevm.guess`, and a hint
    to pass ``--type``). ``type_`` (Sophia type syntax, :func:`chanlog.codec.sophia.parse_type`) reads it as
    a value of that type (AEVM heaps laid out by it; a FATE value checked against it); ``function`` or
    ``return_type`` as a return value (of that function of ``contract``; of the VM its bytes show without
    one). ``contract`` is ``cb_`` contract code or a file holding it. Raises :class:`CodecError` (one line)
    only when no reading fits, naming why the most likely one failed."""
    data = calls.payload_of(text, "blob")
    code = _contract(contract) if contract else None
    if type_ is not None:
        if function is not None:
            raise CodecError("--type and --function both give the value's type: pass one of them")
        return _typed_output(data, type_, code, return_type, as_json)
    if function is not None or return_type is not None:
        return _return_output(data, code, function, return_type, as_json)
    failures: list[CodecError] = []
    if code is None:
        try:
            return _contract_output(parse_contract_bytes(data), as_json)
        except CodecError as exc:
            if _looks_like_code(data):
                raise exc from None
    try:
        call = calls.decode_call(data, code)
        if call.vm == "fate" or _is_aevm_call(call):
            return _call_output(call, code, as_json)
    except CodecError as exc:
        failures.append(exc)
    try:
        return _fate_value_output(fate.decode(data, "value"), as_json)
    except CodecError as exc:
        failures.append(exc)
    if len(data) >= aevm.WORD and len(data) % aevm.WORD == 0:
        return _aevm_value_output(data, as_json)
    raise CodecError(f"not contract code, call data, a FATE value or an AEVM value ({len(data):,} bytes; "
                     f"AEVM values are whole {aevm.WORD}-byte words): {failures[-1]}")


def _is_aevm_call(call: calls.Call) -> bool:
    """Whether AEVM bytes read as call data are call data, not some other heap: the function is known, or
    named in the data (2018 ABI), or the first word is a hash (a 32-byte type hash is below 2**128 with a
    chance of 2**-128; any heap with a small first element would read as "call data" otherwise) and the
    second element reads as an arguments tuple (a value such as ``(address, string)`` has a string there)."""
    return call.function is not None or call.label is not None or \
        (int.from_bytes(call.hash, "big") >= calls.HEX_WORDS_FROM and call.args is not None)


def _call_output(call: calls.Call, code: Contract | None, as_json: bool) -> str:
    if as_json:
        return json.dumps(calls.call_json(call), indent=2, ensure_ascii=False) + "\n"
    lines = [f"call data ({call.vm.upper()})", f"  {call.text(10_000)}"]
    if call.function is not None:
        lines.append(f"  function: {call.function.signature}, hash 0x{call.hash.hex()}")
        if call.matches is False:
            lines.append("  the arguments do not have the types of the signature")
    elif call.label is not None:
        lines.append(f"  function {call.label!r}, named in the call data (AEVM call data of 2018)")
        if code is not None and code.functions:
            lines[-1] += ", not in the contract"
    else:
        lines.append(f"  function hash 0x{call.hash.hex()}"
                     + ("" if code else " (pass --contract cb_CODE to name it"
                        + (" and type its arguments)" if call.vm == "aevm" else ")")))
        if code is not None:
            lines[-1] += " is not in the contract"
    if call.guessed is not None:
        lines.append(f"  argument types not known, read from the heap layout: {', '.join(map(str, call.guessed))}")
    elif call.args is None:
        lines.append("  the arguments cannot be read without their types")
    if code is not None and code.note:
        lines.append(f"  {code.note}")
    return "\n".join(lines) + "\n"


def _return_output(data: bytes, code: Contract | None, function: str | None, return_type: str | None,
                   as_json: bool) -> str:
    f = None
    if function is not None:
        if code is None:
            raise CodecError("--function needs --contract (the code that defines the function)")
        f = code.by_name(function) or _by_hex(code, function)
        if f is None:
            names = ", ".join(x.name or "0x" + x.hash.hex() for x in code.functions) or "none"
            raise CodecError(f"no function {function!r} in the contract (functions: {names})"
                             + (f"; {code.note}" if code.note else ""))
    vm = code.vm if code else _vm_for_type(data)  # without the contract, the bytes' shape decides
    result = calls.decode_return(data, return_type or "ok", f, vm)
    if as_json:
        return json.dumps(calls.result_json(result), indent=2, ensure_ascii=False) + "\n"
    of = f" of {f.signature}" if f else ""
    lines = [f"return value ({result.return_type}, {result.vm.upper()}){of}", f"  {result.text(10_000)}"]
    if result.guessed is not None:
        lines.append(f"  type not known, read from the heap layout as {result.guessed}; {TYPE_HINT}")
    elif result.value is None:
        lines.append(f"  {TYPE_HINT}")
    return "\n".join(lines) + "\n"


def _typed_output(data: bytes, type_text: str, code: Contract | None, return_type: str | None,
                  as_json: bool) -> str:
    """A value read as the Sophia type ``type_text`` (``--type``): an AEVM heap laid out by it, or a FATE
    value checked against it; the VM from ``code`` when given, else from the bytes (:func:`_vm_for_type`)."""
    t = sophia.parse_type(type_text)
    if return_type not in (None, "ok"):
        raise CodecError(f"--type reads a value; a {return_type} return value has a fixed type")
    vm = code.vm if code else _vm_for_type(data)
    if vm == "aevm":
        try:
            value = aevm.decode_typed(data, t, f"AEVM value of type {t}")
        except CodecError as exc:
            raise CodecError(f"{exc} (the AEVM layout of {t} is {aevm.layout(t)})") from None
    else:
        value = fate.decode(data, "FATE value")
        if not fate.conforms(value, t):
            raise CodecError(f"the FATE value {fate.format_value(value, limit=80)} is not of type {t} (FATE values "
                             "carry their type: run without --type to see it)")
    text = fate.format_value(value, t, 10_000)
    exact = vm == "fate" or _writes_back(value, t, data)
    if as_json:
        return json.dumps({"kind": f"{vm}_value", "vm": vm, "type": str(t), "value": calls._json(value),
                           "text": text, "layout_matches": exact}, indent=2, ensure_ascii=False) + "\n"
    out = f"{vm.upper()} value of type {t}\n  {text}\n"
    if not exact:
        out += (f"  the heap is not laid out as the compiler writes a {t} ({len(data):,} bytes; that value "
                "would be written differently): the type may be wrong\n")
    return out


def _vm_for_type(data: bytes) -> str:
    """The VM of a value read with ``--type`` and no contract: FATE when the bytes are one FATE value (a heap of
    whole words never is: its first word is followed by more bytes), else AEVM when they are whole words."""
    try:
        fate.decode(data)
    except CodecError:
        if len(data) >= aevm.WORD and len(data) % aevm.WORD == 0:
            return "aevm"
    return "fate"


def _writes_back(value: Any, t: Any, data: bytes) -> bool:
    """Whether ``value`` of Sophia type ``t`` is written back as ``data`` exactly (canonical AEVM layout)."""
    try:
        return aevm.encode_typed(value, t) == data
    except CodecError:
        return False


def _fate_value_output(value: Any, as_json: bool) -> str:
    text = fate.format_value(value, None, 10_000)
    what = _fate_kind(value)
    if as_json:
        return json.dumps({"kind": "fate_value", "vm": "fate", "value_kind": what, "value": calls._json(value),
                           "text": text}, indent=2, ensure_ascii=False) + "\n"
    return (f"FATE value, not call data ({what}; call data is a tuple (function hash, (arguments...)))\n"
            f"  {text}\n")


def _fate_kind(v: Any) -> str:
    kind = type(v)
    names = {bool: "a bool", int: "an integer", str: "a string", tuple: "a tuple", fate.List: "a list",
             fate.Map: "a map", fate.Variant: "a variant", fate.Bytes: "bytes", fate.Bits: "bits",
             fate.ContractBytearray: "contract bytes", fate.TypeRep: "a type", fate.StoreMap: "a store map"}
    if kind is fate.Address:
        return f"an address ({v.kind})"
    return names.get(kind, kind.__name__)


def _aevm_value_output(data: bytes, as_json: bool) -> str:
    """An AEVM heap without its type: its words, and what the layout shows (:func:`aevm.guess`)."""
    words = [int.from_bytes(data[i:i + aevm.WORD], "big") for i in range(0, len(data), aevm.WORD)]
    found = aevm.guess(data)
    shown = [f"0x{w:064x}" if w >= calls.HEX_WORDS_FROM else str(w) for w in words[:MAX_WORDS_SHOWN]]
    guessed = None if found is None else calls._fmt(found[1], None, 10_000, "aevm")
    if as_json:
        return json.dumps({"kind": "aevm_value", "vm": "aevm", "words": shown, "word_count": len(words),
                           "guessed_type": None if found is None else str(found[0]),
                           "guessed_value": None if found is None else calls._json(found[1]),
                           "text": guessed}, indent=2, ensure_ascii=False) + "\n"
    count = "1 word" if len(words) == 1 else f"{len(words):,} words"
    lines = [f"AEVM value, not call data ({count} of {aevm.WORD} bytes); {TYPE_HINT}"
             + ("" if len(words) == 1 else " (call data of a function: pass --contract cb_CODE)")]
    lines += [f"  word {i}: {w}" for i, w in enumerate(shown)]
    if len(words) > MAX_WORDS_SHOWN:
        lines.append(f"  ... and {len(words) - MAX_WORDS_SHOWN:,} more words")
    if found is not None and len(words) > 1:
        lines.append(f"  read from the heap layout: {guessed} (as {found[0]}; a word may be an integer, a bool, "
                     "an address or a hash)")
    return "\n".join(lines) + "\n"


def _by_hex(code: Contract, text: str) -> Any:
    try:
        return code.function(bytes.fromhex(text.removeprefix("0x")))
    except ValueError:
        return None


def _looks_like_code(data: bytes) -> bool:
    """Whether ``data`` starts like a serialized contract: an RLP list whose first item is tag 70
    (``compiler_sophia``). Call data never does (FATE starts with a tuple tag, AEVM with a zero byte)."""
    if not data or data[0] < 0xC0:
        return False
    head = 1 if data[0] <= 0xF7 else 1 + (data[0] - 0xF7)
    return data[head:head + 1] == b"\x46"


def _contract(text: str) -> Contract:
    """``--contract``: a ``cb_`` string, or a file holding one (contract code is long)."""
    from pathlib import Path

    if text[:3] not in ("cb_", "cb$"):
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8").strip().strip("\"'")
        except (OSError, UnicodeDecodeError) as exc:
            raise CodecError(f"neither a cb_ string nor a readable file ({exc.__class__.__name__})", None,
                             ["--contract"]) from None
    data = calls.payload_of(text, "--contract")
    try:
        return parse_contract_bytes(data)
    except CodecError as exc:
        raise exc.within("--contract") from None


def _contract_output(c: Contract, as_json: bool) -> str:
    from chanlog.codec.transactions import format_tree, to_json

    if as_json:
        out = to_json(c.container)
        out["contract"] = calls.contract_json(c)
        return json.dumps(out, indent=2, ensure_ascii=False) + "\n"
    lines = [format_tree(c.container).rstrip("\n"), f"functions ({c.vm.upper()}):"]
    for f in c.functions:
        attrs = "".join(f" {a}" for a, on in (("private", f.private), ("payable", f.payable)) if on)
        size = f", {len(f.code)} instructions" if c.vm == "fate" else ""
        lines.append(f"  {f.signature}{attrs} (hash 0x{f.hash.hex()}{size})")
    if c.note:
        lines.append(f"  none: {c.note}")
    return "\n".join(lines) + "\n"


def tree_values(root: Any) -> list[dict[str, Any]]:
    """The contract values inside a decoded ``tx_`` tree (:class:`chanlog.codec.transactions.Decoded`), in order, as the
    ``--json`` shapes of :mod:`chanlog.codec.calls` with a ``"field"`` path: contract code, call data
    (named from code in the same tree) and return values. Never raises: a value that does not decode has
    ``"error"``."""
    from chanlog.codec.transactions import Decoded, encode_bytes

    book = calls.ContractBook()
    found: list[tuple[str, str, Any, Any]] = []
    for node in root.walk():
        if not isinstance(node, Decoded) or node.error is not None:
            continue
        for key in ("code", "call_data", "return_value"):
            v = node.fields.get(key)
            if isinstance(v, Decoded) and v.type == "compiler_sophia":
                book.add(encode_bytes(v), node.label, calls.vm_beside(node.fields))
                found.append((f"{node.label} -> {key}", key, encode_bytes(v), node))
            elif getattr(v, "payload", None):
                found.append((f"{node.label} -> {key}", key, v.payload, node))
    out = []
    for path, key, data, node in found:
        try:
            if key == "code":
                item = calls.contract_json(calls.parse_code(data, calls.vm_beside(node.fields)))
            elif key == "call_data":
                item = calls.call_json(book.best_call(data, calls.guess_vm(data))[0])
            else:
                rt = node.fields.get("return_type", 0)
                item = calls.result_json(calls.decode_return(data, rt, None, calls.guess_vm(data)))
        except CodecError as exc:
            item = {"kind": calls.CallAnnotator.KEYS[key], "error": str(exc)}
        out.append({"field": path, **item})
    return out


def tree_values_text(values: list[dict[str, Any]]) -> str:
    """:func:`tree_values` as text lines for ``chanlog decode``."""
    lines = []
    for v in values:
        if "error" in v:
            lines.append(f"{v['field']}: could not decode: {v['error']}")
        elif v["kind"] == "contract":
            lines.append(f"{v['field']}: {v['vm'].upper()} contract, functions: "
                         + (", ".join(f"{f['name']}({', '.join(f['arguments'])}) => {f['returns']}"
                                      for f in v["functions"]) or f"none ({v.get('note') or 'an empty table'})"))
        else:
            lines.append(f"{v['field']}: {v['text']}")
    return "\n".join(lines) + ("\n" if lines else "")
