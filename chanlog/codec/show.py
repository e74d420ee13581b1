"""What ``chanlog decode`` prints for contract values: a ``cb_`` string on its own (contract code, call data,
a return value) and the contract values inside a decoded ``tx_`` tree."""

from __future__ import annotations

import json
from typing import Any

from chanlog.codec import calls
from chanlog.codec.contract import Contract, parse_contract_bytes
from chanlog.codec.errors import CodecError

__all__ = ["describe_cb", "tree_values", "tree_values_text"]


def describe_cb(text: str, contract: str | None = None, function: str | None = None,
                return_type: str | None = None, as_json: bool = False) -> str:
    """The decoded form of a ``cb_`` string, as text for people or as JSON (``as_json``).

    Contract code (a ``compiler_sophia`` object) shows its fields and function table; anything else is call
    data, or a return value when ``function`` or ``return_type`` is given. ``contract`` (``cb_`` contract
    code) names the function a call data's hash selects and types AEVM values. Raises :class:`CodecError`.
    """
    data = calls.payload_of(text, "blob")
    code = _contract(contract) if contract else None
    if contract is None and function is None and return_type is None:
        try:
            parsed = parse_contract_bytes(data)
        except CodecError as exc:
            if not _looks_like_code(data):
                parsed = None
            else:
                raise exc from None
        if parsed is not None:
            return _contract_output(parsed, as_json)
    if function is not None or return_type is not None:
        f = None
        if function is not None:
            if code is None:
                raise CodecError("--function needs --contract (the code that defines the function)")
            f = code.by_name(function) or _by_hex(code, function)
            if f is None:
                names = ", ".join(x.name or "0x" + x.hash.hex() for x in code.functions)
                raise CodecError(f"no function {function!r} in the contract (functions: {names})")
        vm = code.vm if code else "fate"
        result = calls.decode_return(data, return_type or "ok", f, vm)
        if as_json:
            return json.dumps(calls.result_json(result), indent=2, ensure_ascii=False) + "\n"
        of = f" of {f.signature}" if f else ""
        return f"return value ({result.return_type}, {result.vm.upper()}){of}\n  {result.text(10_000)}\n"
    call = calls.decode_call(data, code)
    if as_json:
        return json.dumps(calls.call_json(call), indent=2, ensure_ascii=False) + "\n"
    lines = [f"call data ({call.vm.upper()})", f"  {call.text(10_000)}"]
    if call.function is not None:
        lines.append(f"  function: {call.function.signature}, hash 0x{call.hash.hex()}")
        if call.matches is False:
            lines.append("  the arguments do not have the types of the signature")
    else:
        lines.append(f"  function hash 0x{call.hash.hex()}"
                     + ("" if code else " (pass --contract cb_CODE to name it"
                        + (" and type its arguments)" if call.vm == "aevm" else ")")))
        if code is not None:
            lines[-1] += " is not in the contract"
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
                book.add(encode_bytes(v), node.label)
                found.append((f"{node.label} -> {key}", key, encode_bytes(v), node))
            elif getattr(v, "payload", None):
                found.append((f"{node.label} -> {key}", key, v.payload, node))
    out = []
    for path, key, data, node in found:
        try:
            if key == "code":
                item = calls.contract_json(parse_contract_bytes(data))
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
                         + ", ".join(f"{f['name']}({', '.join(f['arguments'])}) => {f['returns']}"
                                     for f in v["functions"]))
        else:
            lines.append(f"{v['field']}: {v['text']}")
    return "\n".join(lines) + ("\n" if lines else "")
