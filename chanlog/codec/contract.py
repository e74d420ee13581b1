"""Serialized contract code (``cb_…`` in ``code`` fields): its fields, function table and type signatures.

The container is the node's ``compiler_sophia`` object (tag 70, v1–v3: ``source_hash``, ``type_info``,
``byte_code``, ``compiler_version``, ``payable``; ``aeser_contract_code``), read by the RLP schemas of
:mod:`chanlog.codec.transactions`. Then, by virtual machine:

- **FATE** (``vm_version`` 5/7, ``type_info`` empty): ``byte_code`` is ``aeb_fate_code:serialize/1``:
  three RLP strings — the functions (each ``0xfe``, a 4-byte function hash, attributes, the signature as
  FATE types, then its instructions, :data:`OPCODES`), the symbol table (a FATE map of function hash to
  name) and the annotations (a FATE map). A function hash is the first 4 bytes of ``blake2b(name)``.
- **AEVM** (``vm_version`` 1–6, Sophia ABI): ``type_info`` lists each function's 32-byte type hash, name,
  payable flag and argument and return types as typerep heaps (:mod:`chanlog.codec.aevm`); ``byte_code``
  is EVM code (kept as bytes).

:func:`parse_contract` gives a :class:`Contract`; :func:`encode_fate_code` writes a parsed FATE code back
byte-exact. Errors are :class:`~chanlog.codec.errors.CodecError` with the byte offset in ``byte_code``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from chanlog.codec import aevm, fate
from chanlog.codec.errors import CodecError
from chanlog.codec.fate import MAX_SIZE, Type

__all__ = ["Opcode", "OPCODES", "FUNCTION_OPCODE", "Instruction", "Function", "Contract", "parse_contract",
           "parse_contract_bytes", "parse_fate_code", "encode_fate_code", "function_hash", "MAX_FUNCTIONS"]

#: Most functions one contract may declare (more is reported as an error).
MAX_FUNCTIONS = 10_000
#: The opcode that starts a function in FATE code.
FUNCTION_OPCODE = 0xFE


class Opcode(NamedTuple):
    """One FATE instruction kind: mnemonic, number of arguments, whether it ends a basic block."""

    name: str
    arity: int
    ends_block: bool


def _ops(rows: str) -> dict[int, Opcode]:
    """``"00 RETURN 0 e, ..."`` rows (hex opcode, mnemonic, arity, ``e`` when it ends a basic block)."""
    table = {}
    for row in rows.split(","):
        parts = row.split()
        if parts:
            table[int(parts[0], 16)] = Opcode(parts[1], int(parts[2]), len(parts) > 3)
    return table


#: FATE instruction set: opcode -> :class:`Opcode` (aeb_fate_generate_ops:ops_defs/0, Ceres).
OPCODES: dict[int, Opcode] = _ops("""
00 RETURN 0 e, 01 RETURNR 1 e, 02 CALL 1 e, 03 CALL_R 5 e, 04 CALL_T 1 e, 05 CALL_GR 6 e, 06 JUMP 1 e,
07 JUMPIF 2 e, 08 SWITCH_V2 3 e, 09 SWITCH_V3 4 e, 0a SWITCH_VN 2 e, 0b CALL_VALUE 1, 0c PUSH 1, 0d DUPA 0,
0e DUP 1, 0f POP 1, 10 INCA 0, 11 INC 1, 12 DECA 0, 13 DEC 1, 14 ADD 3, 15 SUB 3, 16 MUL 3, 17 DIV 3, 18 MOD 3,
19 POW 3, 1a STORE 2, 1b SHA3 2, 1c SHA256 2, 1d BLAKE2B 2, 1e LT 3, 1f GT 3, 20 EQ 3, 21 ELT 3, 22 EGT 3,
23 NEQ 3, 24 AND 3, 25 OR 3, 26 NOT 2, 27 TUPLE 2, 28 ELEMENT 3, 29 SETELEMENT 4, 2a MAP_EMPTY 1,
2b MAP_LOOKUP 3, 2c MAP_LOOKUPD 4, 2d MAP_UPDATE 4, 2e MAP_DELETE 3, 2f MAP_MEMBER 3, 30 MAP_FROM_LIST 2,
31 MAP_SIZE 2, 32 MAP_TO_LIST 2, 33 IS_NIL 2, 34 CONS 3, 35 HD 2, 36 TL 2, 37 LENGTH 2, 38 NIL 1, 39 APPEND 3,
3a STR_JOIN 3, 3b INT_TO_STR 2, 3c ADDR_TO_STR 2, 3d STR_REVERSE 2, 3e STR_LENGTH 2, 3f BYTES_TO_INT 2,
40 BYTES_TO_STR 2, 41 BYTES_CONCAT 3, 42 BYTES_SPLIT 3, 43 INT_TO_ADDR 2, 44 VARIANT 4, 45 VARIANT_TEST 3,
46 VARIANT_ELEMENT 3, 47 BITS_NONEA 0, 48 BITS_NONE 1, 49 BITS_ALLA 0, 4a BITS_ALL 1, 4b BITS_ALL_N 2,
4c BITS_SET 3, 4d BITS_CLEAR 3, 4e BITS_TEST 3, 4f BITS_SUM 2, 50 BITS_OR 3, 51 BITS_AND 3, 52 BITS_DIFF 3,
53 BALANCE 1, 54 ORIGIN 1, 55 CALLER 1, 56 BLOCKHASH 2, 57 BENEFICIARY 1, 58 TIMESTAMP 1, 59 GENERATION 1,
5a MICROBLOCK 1, 5b DIFFICULTY 1, 5c GASLIMIT 1, 5d GAS 1, 5e ADDRESS 1, 5f GASPRICE 1, 60 LOG0 1, 61 LOG1 2,
62 LOG2 3, 63 LOG3 4, 64 LOG4 5, 65 SPEND 2, 66 ORACLE_REGISTER 7, 67 ORACLE_QUERY 8, 68 ORACLE_RESPOND 6,
69 ORACLE_EXTEND 3, 6a ORACLE_GET_ANSWER 5, 6b ORACLE_GET_QUESTION 5, 6c ORACLE_QUERY_FEE 2,
6d AENS_RESOLVE 4, 6e AENS_PRECLAIM 3, 6f AENS_CLAIM 5, 70 AENS_UPDATE 6, 71 AENS_TRANSFER 4, 72 AENS_REVOKE 3,
73 BALANCE_OTHER 2, 74 VERIFY_SIG 4, 75 VERIFY_SIG_SECP256K1 4, 76 CONTRACT_TO_ADDRESS 2, 77 AUTH_TX_HASH 1,
78 ORACLE_CHECK 4, 79 ORACLE_CHECK_QUERY 5, 7a IS_ORACLE 2, 7b IS_CONTRACT 2, 7c IS_PAYABLE 2, 7d CREATOR 1,
7e ECVERIFY_SECP256K1 4, 7f ECRECOVER_SECP256K1 3, 80 ADDRESS_TO_CONTRACT 2, 81 BLS12_381_G1_NEG 2,
82 BLS12_381_G1_NORM 2, 83 BLS12_381_G1_VALID 2, 84 BLS12_381_G1_IS_ZERO 2, 85 BLS12_381_G1_ADD 3,
86 BLS12_381_G1_MUL 3, 87 BLS12_381_G2_NEG 2, 88 BLS12_381_G2_NORM 2, 89 BLS12_381_G2_VALID 2,
8a BLS12_381_G2_IS_ZERO 2, 8b BLS12_381_G2_ADD 3, 8c BLS12_381_G2_MUL 3, 8d BLS12_381_GT_INV 2,
8e BLS12_381_GT_ADD 3, 8f BLS12_381_GT_MUL 3, 90 BLS12_381_GT_POW 3, 91 BLS12_381_GT_IS_ONE 2,
92 BLS12_381_PAIRING 3, 93 BLS12_381_MILLER_LOOP 3, 94 BLS12_381_FINAL_EXP 2, 95 BLS12_381_INT_TO_FR 2,
96 BLS12_381_INT_TO_FP 2, 97 BLS12_381_FR_TO_INT 2, 98 BLS12_381_FP_TO_INT 2, 99 AENS_LOOKUP 2,
9a ORACLE_EXPIRY 2, 9b AUTH_TX 1, 9c STR_TO_LIST 2, 9d STR_FROM_LIST 2, 9e STR_TO_UPPER 2, 9f STR_TO_LOWER 2,
a0 CHAR_TO_INT 2, a1 CHAR_FROM_INT 2, a2 CALL_PGR 7 e, a3 CREATE 3 e, a4 CLONE 4 e, a5 CLONE_G 5 e,
a6 BYTECODE_HASH 2, a7 FEE 1, a8 ADDRESS_TO_BYTES 2, a9 POSEIDON 3, aa MULMOD 4, ab BAND 3, ac BOR 3, ad BXOR 3,
ae BNOT 2, af BSL 3, b0 BSR 3, b1 BYTES_SPLIT_ANY 3, b2 BYTES_SIZE 2, b3 BYTES_TO_FIXED_SIZE 3,
b4 INT_TO_BYTES 3, b5 STR_TO_BYTES 2, b6 NETWORK_ID 1, f0 DBG_LOC 2, f1 DBG_DEF 2, f2 DBG_UNDEF 2,
f3 DBG_CONTRACT 1, fa DEACTIVATE 0, fb ABORT 1 e, fc EXIT 1 e, fd NOP 0
""")
#: Argument modes of FATE instructions (two bits each): stack, function argument, variable, immediate.
ARG_MODES = ("stack", "arg", "var", "immediate")
#: Function attribute bits.
ATTRIBUTES = {1: "private", 2: "payable"}


class Instruction(NamedTuple):
    """One FATE instruction: its opcode and its arguments as ``(mode, value)`` (``("stack", None)`` for
    an argument taken from the stack)."""

    opcode: int
    args: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        op = OPCODES[self.opcode].name
        parts = []
        for mode, v in self.args:
            parts.append({"stack": "a", "arg": f"arg{v}", "var": f"var{v}"}.get(mode) or fate.format_value(v))
        return f"{op} {', '.join(parts)}" if parts else op


@dataclass(frozen=True)
class Function:
    """One function of a contract: its hash (4 bytes in FATE, the 32-byte type hash in AEVM), name (from
    the symbol table or ``type_info``; ``None`` when absent), argument and return types, attributes, and
    (FATE) its instructions."""

    hash: bytes
    name: str | None
    args: tuple[Any, ...]
    returns: Any
    private: bool = False
    payable: bool = False
    attributes: int = 0
    code: tuple[Instruction, ...] = ()

    @property
    def signature(self) -> str:
        """``name : (int, string) => bool``."""
        name = self.name or "0x" + self.hash.hex()
        return f"{name} : ({', '.join(map(str, self.args))}) => {self.returns}"


@dataclass(frozen=True)
class Contract:
    """A serialized contract taken apart. ``vm`` is ``"fate"`` or ``"aevm"``; ``fields`` the container's
    decoded fields (:class:`chanlog.codec.transactions.Decoded`); ``functions`` in wire order."""

    vm: str
    container: Any
    functions: tuple[Function, ...]
    symbols: fate.Map | None = None
    annotations: fate.Map | None = None
    by_hash: dict[bytes, Function] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.by_hash.update((f.hash, f) for f in self.functions)

    def function(self, hash_: bytes) -> Function | None:
        """The function whose hash is ``hash_``, or ``None``."""
        return self.by_hash.get(bytes(hash_))

    def by_name(self, name: str) -> Function | None:
        """The function called ``name``, or ``None``."""
        return next((f for f in self.functions if f.name == name), None)

    @property
    def compiler_version(self) -> str | None:
        """The compiler version the container names (v2+), else ``None``."""
        return self.container.fields.get("compiler_version")


def function_hash(name: str) -> bytes:
    """A FATE function's 4-byte hash: ``blake2b(name)[:4]`` (aeb_fate_code:symbol_identifier/1)."""
    return hashlib.blake2b(name.encode("utf-8"), digest_size=32).digest()[:4]


def payload_of(encoded: Any, what: str = "value") -> bytes:
    """The payload of a ``cb_…`` (or ``cb$…``) string: base64check, else base58check (2018 traffic).

    Raises :class:`CodecError` naming what is wrong (prefix, alphabet, checksum, an abbreviated example)."""
    from chanlog.codec.encoding import (
        MAX_BASE58_CHARS,
        EncodingError,
        abbreviate,
        b58decode,
        checksum,
        parse_api,
    )

    if not isinstance(encoded, str):
        raise CodecError(f"expected a cb_ string, got {type(encoded).__name__}", None, [what])
    text = encoded.strip()
    if text[:3] not in ("cb_", "cb$"):
        raise CodecError(f"expected a cb_ string, got {abbreviate(text)!r}", None, [what])
    try:
        return parse_api(text).payload
    except EncodingError as exc:
        first = exc
    try:  # a 2018 base58check body (the prefix table knows cb_ as base64check only), as long as base58 may be
        raw = b58decode(text[3:]) if len(text) - 3 <= MAX_BASE58_CHARS else b""
    except ValueError:
        raw = b""
    if len(raw) >= 4 and checksum(raw[:-4]) == raw[-4:]:
        return raw[:-4]
    raise CodecError(first.message, None, [what, first.where or abbreviate(text)])


def parse_contract(encoded: str) -> Contract:
    """The contract in a ``cb_…`` string (base64check, or base58check as in 2018 traffic); see
    :func:`parse_contract_bytes`."""
    return parse_contract_bytes(payload_of(encoded, "contract code"))


def parse_contract_bytes(data: bytes) -> Contract:
    """A serialized ``compiler_sophia`` object taken apart: the container by schema, then the FATE code or
    the AEVM ``type_info``. Raises :class:`CodecError` (path ``contract code -> ...``, byte offsets)."""
    from chanlog.codec.transactions import DecodeError, decode_bytes

    if len(data) > MAX_SIZE:
        raise CodecError(f"{len(data):,} bytes, more than the limit of {MAX_SIZE:,}", 0, ["contract code"])
    try:
        container = decode_bytes(data)
    except DecodeError as exc:
        raise CodecError(str(exc), None, ["contract code"]) from None
    if container.type != "compiler_sophia":
        raise CodecError(f"not contract code but a {container.label}", 0, ["contract code"])
    f = container.fields
    type_info = f["type_info"]
    code = _payload(f["byte_code"])
    if type_info:
        functions = []
        for i, row in enumerate(type_info):
            try:
                functions.append(Function(
                    _payload(row["fun_hash"]), row["name"] if isinstance(row["name"], str) else str(row["name"]),
                    aevm.decode_typerep(_payload(row["arg_type"]), "arg_type").args,
                    aevm.decode_typerep(_payload(row["out_type"]), "out_type"),
                    payable=bool(row.get("payable", True))))
            except CodecError as exc:
                raise exc.within(f"type_info[{i}]").within("contract code") from None
        return Contract("aevm", container, tuple(functions))
    try:
        functions, symbols, annotations = parse_fate_code(code)
    except CodecError as exc:
        raise exc.within("byte_code").within("contract code") from None
    return Contract("fate", container, functions, symbols, annotations)


def _payload(v: Any) -> bytes:
    """The bytes of a decoded binary field (``ApiValue``, ``""`` for empty)."""
    return getattr(v, "payload", b"") if v != "" else b""


def parse_fate_code(code: bytes) -> tuple[tuple[Function, ...], fate.Map, fate.Map]:
    """FATE ``byte_code`` (aeb_fate_code:deserialize/1): ``(functions, symbols, annotations)``; each function
    named from the symbol table. Offsets in errors are into ``code``."""
    funs_raw, at = fate._rlp_bytes(code, 0)
    funs_start = at - len(funs_raw)
    sym_raw, at2 = fate._rlp_bytes(code, at)
    ann_raw, end = fate._rlp_bytes(code, at2)
    if end != len(code):
        raise CodecError(f"{len(code) - end} trailing bytes after the annotations", end)
    symbols = _fate_map(sym_raw, at2 - len(sym_raw), "symbols")
    annotations = _fate_map(ann_raw, end - len(ann_raw), "annotations")
    names = {}
    for k, v in symbols.items:
        if type(k) is str and type(v) is str:
            names[k.encode("utf-8", "surrogateescape")] = v
    functions = _functions(funs_raw, funs_start, names)
    return functions, symbols, annotations


def _fate_map(raw: bytes, base: int, what: str) -> fate.Map:
    try:
        m = fate.decode(raw, what)
    except CodecError as exc:
        raise CodecError(exc.reason, None if exc.offset is None else base + exc.offset, exc.path) from None
    if type(m) is not fate.Map:
        raise CodecError(f"the {what} must be a map, got {type(m).__name__}", base)
    return m


def _functions(data: bytes, base: int, names: dict[bytes, str]) -> tuple[Function, ...]:
    """The function table: for each function its header and instructions (offsets reported from ``base``)."""
    out: list[Function] = []
    pos = 0
    label = "function 0"
    try:
        while pos < len(data):
            label = f"function {len(out)}"
            if data[pos] != FUNCTION_OPCODE:
                raise CodecError(f"expected a function (0xfe), got 0x{data[pos]:02x}", pos)
            if len(out) >= MAX_FUNCTIONS:
                raise CodecError(f"more than {MAX_FUNCTIONS:,} functions", pos)
            fate._need(data, pos + 1, 4, "a function hash")
            fhash = data[pos + 1:pos + 5]
            if fhash in names:
                label = f"function {len(out)} ({names[fhash]})"
            attrs, pos = fate.decode_one(data, pos + 5, "attributes")
            if type(attrs) is not int or attrs < 0:
                raise CodecError(f"function attributes must be a non-negative integer, got {attrs!r}", pos)
            args_t, pos = fate.decode_type_one(data, pos, "argument types")
            if args_t.name != "tuple":
                raise CodecError(f"argument types must be a tuple type, got {args_t}", pos)
            ret_t, pos = fate.decode_type_one(data, pos, "return type")
            code: list[Instruction] = []
            while pos < len(data) and data[pos] != FUNCTION_OPCODE:
                ins, pos = _instruction(data, pos)
                code.append(ins)
            out.append(Function(fhash, names.get(fhash), args_t.args, ret_t, bool(attrs & 1), bool(attrs & 2),
                                attrs, tuple(code)))
    except CodecError as exc:
        shifted = CodecError(exc.reason, None if exc.offset is None else base + exc.offset, exc.path)
        raise shifted.within(label) from None
    return tuple(out)


def _instruction(data: bytes, pos: int) -> tuple[Instruction, int]:
    op = OPCODES.get(data[pos])
    if op is None:
        raise CodecError(f"unknown FATE opcode 0x{data[pos]:02x}", pos)
    opcode, pos = data[pos], pos + 1
    if not op.arity:
        return Instruction(opcode), pos
    nmod = 1 if op.arity <= 4 else 2
    fate._need(data, pos, nmod, f"{op.name}'s argument modes")
    mods = int.from_bytes(data[pos:pos + nmod], "big")
    if mods >> (2 * op.arity):
        raise CodecError(f"{op.name} takes {op.arity} arguments but its mode byte is 0x{mods:0{2 * nmod}x}", pos)
    pos += nmod
    args = []
    for i in range(op.arity):
        mode = ARG_MODES[(mods >> (2 * i)) & 3]
        if mode == "stack":
            args.append((mode, None))
            continue
        v, pos = fate.decode_one(data, pos, f"{op.name} argument {i}")
        args.append((mode, v))
    return Instruction(opcode, tuple(args)), pos


def encode_fate_code(functions: tuple[Function, ...], symbols: fate.Map, annotations: fate.Map) -> bytes:
    """FATE ``byte_code`` from its parts (aeb_fate_code:serialize/1); the inverse of :func:`parse_fate_code`."""
    out = bytearray()
    for f in functions:
        out.append(FUNCTION_OPCODE)
        out += f.hash
        out += fate.encode(f.attributes)
        out += fate.encode_type(Type("tuple", tuple(f.args)))
        out += fate.encode_type(f.returns)
        for ins in f.code:
            out.append(ins.opcode)
            if not ins.args:
                continue
            mods = 0
            for i, (mode, _) in enumerate(ins.args):
                mods |= ARG_MODES.index(mode) << (2 * i)
            out += mods.to_bytes(1 if len(ins.args) <= 4 else 2, "big")
            for mode, v in ins.args:
                if mode != "stack":
                    out += fate.encode(v)
    return fate._rlp_str(bytes(out)) + fate._rlp_str(fate.encode(symbols)) + fate._rlp_str(fate.encode(annotations))
