"""RLP schemas of Aeternity chain objects, as data: ``(tag, version) -> name, [(field, type)]``.

Every object on the wire is an RLP list ``[tag, version, field1, field2, ...]`` whose field count is fixed per
``(tag, version)``. :data:`SCHEMAS` lists the node's serialization templates (field order and names as in
SCHEMAS.md §3–§7, checked against the node's ``serialization_template/1`` functions); one generic loop in
:mod:`chanlog.codec.transactions` reads any row. Adding a type is adding a row.

A few ``(tag, version)`` pairs had other layouts in 2018 (SCHEMAS.md §7): they are extra rows with the same
key and a different field count; :func:`lookup` picks the row by field count, as the node's history did.

Field types (:class:`FieldType`) follow ``aeserialization``'s: ``int``, ``bool``, ``binary``, ``id``, ``[T]``
(:func:`list_of`), fixed tuples (:func:`record`, with names for display), plus what the node keeps in a
``binary`` but is itself a serialized object (:func:`obj`: a signed_tx's ``transaction``, ``payload``,
``poi``, ``update``, ``offchain_trees``, mtree values, ...) and the nodes of a Merkle-Patricia proof
(:data:`MPT_NODE`). Binaries carry the API prefix they are shown with (``st`` for state hashes, ``sg`` for
signatures, ``cb`` for contract bytes, ``ba`` otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    """The shape of one field on the wire."""

    INT = "int"
    """Unsigned big-endian integer (0 written as one ``0x00`` byte; leading zero bytes are an error)."""
    BOOL = "bool"
    """``0x01`` true, ``0x00`` false, anything else an error."""
    BINARY = "binary"
    """Raw bytes, shown API-encoded with :attr:`FieldType.prefix`."""
    TEXT = "text"
    """Bytes that hold UTF-8 text (a role, a function name): shown as the text when printable."""
    ID = "id"
    """33 bytes: an id tag byte (1 ``ak``, 2 ``nm``, 3 ``cm``, 4 ``ok``, 5 ``ct``, 6 ``ch``) and a 32-byte hash."""
    OBJECT = "object"
    """A binary holding a serialized object ``[tag, version, ...]``, decoded in place."""
    LIST = "list"
    """An RLP list of any length, every item of type :attr:`FieldType.item`."""
    RECORD = "record"
    """A fixed-length RLP list with named items (:attr:`FieldType.items`); the node's ``{A, B}`` tuples."""
    MPT_NODE = "mpt_node"
    """A Merkle-Patricia tree node: 2 binaries (leaf: path and serialized value; extension: path and child
    hash) or 17 (branch: 16 child hashes and a value)."""


@dataclass(frozen=True)
class FieldType:
    """The type of one field: a :class:`Kind` and what that kind needs."""

    kind: Kind
    """The wire shape."""
    prefix: str = "ba"
    """API prefix a binary is shown with (``st``, ``sg``, ``cb``, ``ba``, ...); for an object, the prefix the
    serialized bytes are shown with when they are not decoded (an empty ``payload``, ``chanlog decode``)."""
    item: FieldType | None = None
    """Item type of a :attr:`Kind.LIST`."""
    items: tuple[tuple[str, FieldType], ...] = ()
    """Named items of a :attr:`Kind.RECORD`, in wire order."""
    empty: bool = False
    """For an object: an empty binary is allowed and means "no object" (decoded as ``None``)."""
    maybe: bool = False
    """For an object: bytes that do not hold a decodable object are kept as a binary instead of being an
    error (trie leaf values and mtree values, where contract store values are raw bytes)."""

    def __str__(self) -> str:
        k = self.kind
        if k is Kind.LIST:
            return f"[{self.item}]"
        if k is Kind.RECORD:
            return "{" + ", ".join(f"{n} :: {t}" for n, t in self.items) + "}"
        if k is Kind.BINARY and self.prefix != "ba":
            return f"binary({self.prefix})"
        if k is Kind.OBJECT:
            return "object" + ("?" if self.maybe else "") + (" or empty" if self.empty else "")
        return k.value


INT = FieldType(Kind.INT)
BOOL = FieldType(Kind.BOOL)
ID = FieldType(Kind.ID)
TEXT = FieldType(Kind.TEXT)
MPT_NODE = FieldType(Kind.MPT_NODE)


def binary(prefix: str = "ba") -> FieldType:
    """A raw binary shown with API prefix ``prefix``."""
    return FieldType(Kind.BINARY, prefix=prefix)


def obj(prefix: str = "tx", *, empty: bool = False, maybe: bool = False) -> FieldType:
    """A binary holding a serialized object (see :attr:`FieldType.empty`, :attr:`FieldType.maybe`)."""
    return FieldType(Kind.OBJECT, prefix=prefix, empty=empty, maybe=maybe)


def list_of(item: FieldType) -> FieldType:
    """``[item]``: an RLP list of any length."""
    return FieldType(Kind.LIST, item=item)


def record(**items: FieldType) -> FieldType:
    """A fixed-length RLP list with named items, in keyword order."""
    return FieldType(Kind.RECORD, items=tuple(items.items()))


BA = binary()
HASH = binary("st")  # a channel state hash (state trees root)
SIG = binary("sg")
CB = binary("cb")
IDS = list_of(ID)


@dataclass(frozen=True)
class Schema:
    """One serialization template: what follows ``[tag, version]`` in an object."""

    tag: int
    """Object tag (``aeser_chain_objects``: 50 = channel_create_tx, ...)."""
    version: int
    """Object version."""
    name: str
    """Node name of the object type (``channel_create_tx``)."""
    fields: tuple[tuple[str, FieldType], ...]
    """``(field name, type)`` in wire order, tag and version excluded."""
    prefix: str = "tx"
    """API prefix the serialized object is written with (``tx``; ``ss`` state trees, ``pi`` PoI, ...)."""
    note: str = ""
    """Where the layout comes from, or the era it was used in (legacy rows)."""

    @property
    def label(self) -> str:
        """``"<name> v<version>"``, as used in decode paths."""
        return f"{self.name} v{self.version}"

    @property
    def field_names(self) -> tuple[str, ...]:
        """Field names in wire order."""
        return tuple(name for name, _ in self.fields)


#: Tag -> node name, the full table of ``aeser_chain_objects`` (SCHEMAS.md §3), schemas or not.
TAG_NAMES: dict[int, str] = {
    10: "account", 11: "signed_tx", 12: "spend_tx", 20: "oracle", 21: "oracle_query",
    22: "oracle_register_tx", 23: "oracle_query_tx", 24: "oracle_response_tx", 25: "oracle_extend_tx",
    30: "name", 31: "name_commitment", 32: "name_claim_tx", 33: "name_preclaim_tx", 34: "name_update_tx",
    35: "name_revoke_tx", 36: "name_transfer_tx", 37: "name_auction", 40: "contract", 41: "contract_call",
    42: "contract_create_tx", 43: "contract_call_tx", 50: "channel_create_tx", 501: "channel_set_delegates_tx",
    51: "channel_deposit_tx", 52: "channel_withdraw_tx", 521: "channel_force_progress_tx",
    53: "channel_close_mutual_tx", 54: "channel_close_solo_tx", 55: "channel_slash_tx",
    56: "channel_settle_tx", 57: "channel_offchain_tx", 570: "channel_offchain_update_transfer",
    571: "channel_offchain_update_deposit", 572: "channel_offchain_update_withdraw",
    573: "channel_offchain_update_create_contract", 574: "channel_offchain_update_call_contract",
    575: "channel_client_reconnect_tx", 576: "channel_offchain_update_meta", 58: "channel",
    59: "channel_snapshot_solo_tx", 60: "trees_poi", 61: "trees_db", 62: "state_trees", 63: "mtree",
    64: "mtree_value", 621: "contracts_mtree", 622: "calls_mtree", 623: "channels_mtree",
    624: "nameservice_mtree", 625: "oracles_mtree", 626: "accounts_mtree", 70: "compiler_sophia",
    80: "ga_attach_tx", 81: "ga_meta_tx", 810: "ga_meta_tx_auth_data", 82: "paying_for_tx", 83: "hc_vote_tx",
    100: "key_block", 101: "micro_block", 102: "light_micro_block", 200: "pof",
}


def _row(tag: int, version: int, *fields: tuple[str, FieldType], prefix: str = "tx", note: str = "") -> Schema:
    return Schema(tag, version, TAG_NAMES[tag], tuple(fields), prefix, note)


#: A signed transaction inside another object (``payload`` of close solo / slash / snapshot / force progress,
#: ``tx`` of ga_meta_tx and paying_for_tx).
SIGNED = obj("tx")
#: ``payload`` that may be empty (close solo / slash / force progress on the last on-chain state).
SIGNED_OR_EMPTY = obj("tx", empty=True)
#: An off-chain update (570-576) inside an off-chain tx or force progress.
UPDATE = obj("cb")
#: A proof of inclusion: each subtree absent (``[]``) or one proof ``{root_hash, [{node_hash, node}]}``.
POI_TREE = list_of(record(root_hash=BA, nodes=list_of(record(node_hash=BA, node=MPT_NODE))))
#: A value in an mtree: an object, except contract store values (raw bytes).
MTREE_VAL = obj("ba", maybe=True)
_CONTRACT_LOG = list_of(record(address=binary("ct"), topics=list_of(BA), data=BA))

SCHEMAS: tuple[Schema, ...] = (
    # -- transactions (SCHEMAS.md §4) --------------------------------------------------------------
    _row(11, 1, ("signatures", list_of(SIG)), ("transaction", obj("tx"))),
    _row(12, 1, ("sender", ID), ("recipient", ID), ("amount", INT), ("fee", INT), ("ttl", INT), ("nonce", INT),
         ("payload", BA)),
    _row(50, 1, ("initiator", ID), ("initiator_amount", INT), ("responder", ID), ("responder_amount", INT),
         ("channel_reserve", INT), ("lock_period", INT), ("ttl", INT), ("fee", INT), ("delegate_ids", IDS),
         ("state_hash", HASH), ("nonce", INT), note="until Iris"),
    _row(50, 2, ("initiator", ID), ("initiator_amount", INT), ("responder", ID), ("responder_amount", INT),
         ("channel_reserve", INT), ("lock_period", INT), ("ttl", INT), ("fee", INT),
         ("initiator_delegate_ids", IDS), ("responder_delegate_ids", IDS), ("state_hash", HASH),
         ("nonce", INT), note="from Iris"),
    _row(51, 1, ("channel_id", ID), ("from_id", ID), ("amount", INT), ("ttl", INT), ("fee", INT),
         ("state_hash", HASH), ("round", INT), ("nonce", INT)),
    _row(52, 1, ("channel_id", ID), ("to_id", ID), ("amount", INT), ("ttl", INT), ("fee", INT),
         ("state_hash", HASH), ("round", INT), ("nonce", INT)),
    _row(53, 1, ("channel_id", ID), ("from_id", ID), ("initiator_amount_final", INT),
         ("responder_amount_final", INT), ("ttl", INT), ("fee", INT), ("nonce", INT)),
    _row(54, 1, ("channel_id", ID), ("from_id", ID), ("payload", SIGNED_OR_EMPTY), ("poi", obj("pi")),
         ("ttl", INT), ("fee", INT), ("nonce", INT)),
    _row(55, 1, ("channel_id", ID), ("from_id", ID), ("payload", SIGNED_OR_EMPTY), ("poi", obj("pi")),
         ("ttl", INT), ("fee", INT), ("nonce", INT)),
    _row(56, 1, ("channel_id", ID), ("from_id", ID), ("initiator_amount_final", INT),
         ("responder_amount_final", INT), ("ttl", INT), ("fee", INT), ("nonce", INT)),
    _row(59, 1, ("channel_id", ID), ("from_id", ID), ("payload", SIGNED), ("ttl", INT), ("fee", INT),
         ("nonce", INT)),
    _row(521, 1, ("channel_id", ID), ("from_id", ID), ("payload", SIGNED_OR_EMPTY), ("round", INT),
         ("update", UPDATE), ("state_hash", HASH), ("offchain_trees", obj("ss")), ("ttl", INT), ("fee", INT),
         ("nonce", INT)),
    _row(501, 1, ("channel_id", ID), ("from_id", ID), ("initiator_delegate_ids", IDS),
         ("responder_delegate_ids", IDS), ("payload", SIGNED_OR_EMPTY), ("state_hash", HASH), ("round", INT),
         ("ttl", INT), ("fee", INT), ("nonce", INT), note="node commit 5dd473bcd, 2021-03"),
    _row(57, 1, ("channel_id", ID), ("round", INT), ("updates", list_of(UPDATE)), ("state_hash", HASH),
         note="until Fortuna"),
    _row(57, 2, ("channel_id", ID), ("round", INT), ("state_hash", HASH), note="from Fortuna"),
    _row(575, 1, ("channel_id", ID), ("round", INT), ("role", TEXT), ("pub_key", ID),
         note="protocol doc / SDK7 only"),
    _row(42, 1, ("owner_id", ID), ("nonce", INT), ("code", obj("cb", maybe=True)), ("ct_version", INT),
         ("fee", INT), ("ttl", INT), ("deposit", INT), ("amount", INT), ("gas", INT), ("gas_price", INT),
         ("call_data", CB)),
    _row(43, 1, ("caller", ID), ("nonce", INT), ("contract", ID), ("abi_version", INT), ("fee", INT),
         ("ttl", INT), ("amount", INT), ("gas", INT), ("gas_price", INT), ("call_data", CB)),
    _row(80, 1, ("owner_id", ID), ("nonce", INT), ("code", obj("cb", maybe=True)), ("auth_fun", BA),
         ("ct_version", INT), ("fee", INT), ("ttl", INT), ("gas", INT), ("gas_price", INT), ("call_data", CB)),
    _row(81, 1, ("ga_id", ID), ("auth_data", CB), ("abi_version", INT), ("fee", INT), ("gas", INT),
         ("gas_price", INT), ("ttl", INT), ("tx", SIGNED), note="pre-Iris"),
    _row(81, 2, ("ga_id", ID), ("auth_data", CB), ("abi_version", INT), ("fee", INT), ("gas", INT),
         ("gas_price", INT), ("tx", SIGNED), note="Iris+"),
    _row(810, 1, ("fee", INT), ("gas_price", INT), ("tx_hash", binary("th"))),
    _row(82, 1, ("payer_id", ID), ("nonce", INT), ("fee", INT), ("tx", SIGNED)),
    # -- off-chain updates (SCHEMAS.md §5; 574 in the node's order) --------------------------------
    _row(570, 1, ("from", ID), ("to", ID), ("amount", INT), prefix="cb"),
    _row(571, 1, ("from", ID), ("amount", INT), prefix="cb"),
    _row(572, 1, ("to", ID), ("amount", INT), prefix="cb"),
    _row(573, 1, ("owner", ID), ("ct_version", INT), ("code", obj("cb", maybe=True)), ("deposit", INT),
         ("call_data", CB), prefix="cb"),
    _row(574, 1, ("caller", ID), ("contract", ID), ("abi_version", INT), ("amount", INT), ("gas", INT),
         ("gas_price", INT), ("call_data", CB), ("call_stack", list_of(INT)), prefix="cb",
         note="node order: gas, gas_price, call_data, call_stack (not serializations.md's)"),
    _row(576, 2, ("data", BA), prefix="cb"),
    # -- channel object, state trees, PoI, contract objects (SCHEMAS.md §6) --------------------------
    _row(58, 1, ("initiator", ID), ("responder", ID), ("channel_amount", INT), ("initiator_amount", INT),
         ("responder_amount", INT), ("channel_reserve", INT), ("delegate_ids", IDS), ("state_hash", HASH),
         ("round", INT), ("solo_round", INT), ("lock_period", INT), ("locked_until", INT),
         prefix="ba", note="until Fortuna"),
    _row(58, 2, ("initiator", ID), ("responder", ID), ("channel_amount", INT), ("initiator_amount", INT),
         ("responder_amount", INT), ("channel_reserve", INT), ("delegate_ids", IDS), ("state_hash", HASH),
         ("round", INT), ("solo_round", INT), ("lock_period", INT), ("locked_until", INT),
         ("initiator_auth", BA), ("responder_auth", BA), prefix="ba", note="Fortuna"),
    _row(58, 3, ("initiator", ID), ("responder", ID), ("channel_amount", INT), ("initiator_amount", INT),
         ("responder_amount", INT), ("channel_reserve", INT), ("initiator_delegate_ids", IDS),
         ("responder_delegate_ids", IDS), ("state_hash", HASH), ("round", INT), ("solo_round", INT),
         ("lock_period", INT), ("locked_until", INT), ("initiator_auth", BA), ("responder_auth", BA),
         prefix="ba", note="Iris+"),
    _row(60, 1, ("accounts", POI_TREE), ("calls", POI_TREE), ("channels", POI_TREE), ("contracts", POI_TREE),
         ("ns", POI_TREE), ("oracles", POI_TREE), prefix="pi"),
    _row(62, 0, ("contracts", obj("ba")), ("calls", obj("cs")), ("channels", obj("ba")), ("ns", obj("ba")),
         ("oracles", obj("ba")), ("accounts", obj("ba")), prefix="ss"),
    *(_row(tag, 1, ("payload", obj("ba")), prefix="cs" if tag == 622 else "ba") for tag in range(621, 627)),
    _row(63, 1, ("values", list_of(obj("ba"))), prefix="ba"),
    _row(64, 1, ("key", BA), ("val", MTREE_VAL), prefix="ba"),
    _row(10, 1, ("nonce", INT), ("balance", INT), prefix="ba"),
    _row(10, 2, ("flags", INT), ("nonce", INT), ("balance", INT), ("ga_contract", ID), ("ga_auth_fun", BA),
         prefix="ba", note="generalized accounts, Fortuna"),
    _row(10, 3, ("flags", INT), ("nonce", INT), ("balance", INT), prefix="ba", note="Lima"),
    _row(40, 1, ("owner_id", ID), ("ct_version", INT), ("code", obj("cb", maybe=True)), ("log", BA),
         ("active", BOOL), ("referrer_ids", IDS), ("deposit", INT), prefix="ba", note="pre-Iris"),
    _row(40, 2, ("owner_id", ID), ("ct_version", INT), ("code", obj("cb", maybe=True)), ("code_ref", IDS),
         ("log", BA), ("active", BOOL), ("referrer_ids", IDS), ("deposit", INT), prefix="ba",
         note="code by reference"),
    _row(41, 2, ("caller_id", ID), ("caller_nonce", INT), ("height", INT), ("contract_id", ID),
         ("gas_price", INT), ("gas_used", INT), ("return_value", CB), ("return_type", INT),
         ("log", _CONTRACT_LOG), prefix="ba", note="Roma+"),
    _row(41, 3, ("caller_id", ID), ("caller_nonce", INT), ("height", INT), ("contract_id", ID),
         ("ct_call_id", BA), ("gas_price", INT), ("gas_used", INT), ("return_value", CB), ("return_type", INT),
         ("log", _CONTRACT_LOG), prefix="ba", note="Ceres+"),
    # compiled contract code (aeser_contract_code): what ``code`` fields hold
    _row(70, 1, ("source_hash", BA), ("type_info", list_of(record(fun_hash=BA, name=TEXT, arg_type=BA,
         out_type=BA))), ("byte_code", CB), prefix="cb"),
    _row(70, 2, ("source_hash", BA), ("type_info", list_of(record(fun_hash=BA, name=TEXT, arg_type=BA,
         out_type=BA))), ("byte_code", CB), ("compiler_version", TEXT), prefix="cb"),
    _row(70, 3, ("source_hash", BA), ("type_info", list_of(record(fun_hash=BA, name=TEXT, payable=BOOL,
         arg_type=BA, out_type=BA))), ("byte_code", CB), ("compiler_version", TEXT), ("payable", BOOL),
         prefix="cb"),
    # -- 2018 layouts (SCHEMAS.md §7): same (tag, version), told apart by field count --------------------
    _row(57, 1, ("channel_id", binary("ch")), ("previous_round", INT), ("round", INT),
         ("initiator", binary("ak")), ("responder", binary("ak")), ("initiator_amount", INT),
         ("responder_amount", INT),
         ("updates", list_of(record(**{"from": binary("ak"), "to": binary("ak"), "amount": INT}))),
         ("state", BA), note="2018-03-07 .. 2018-05-24 (ddb384ba5 .. 406ce6435), secp256k1 keys"),
    _row(53, 1, ("channel_id", ID), ("initiator_amount", INT), ("responder_amount", INT), ("ttl", INT),
         ("fee", INT), ("nonce", INT), note="2018-05-21 .. 2018-10-03 (b13b6a91c .. fce48d354), no from_id"),
    _row(50, 1, ("initiator", ID), ("initiator_amount", INT), ("responder", ID), ("responder_amount", INT),
         ("channel_reserve", INT), ("lock_period", INT), ("ttl", INT), ("fee", INT), ("state_hash", HASH),
         ("nonce", INT), note="2018-06-18 .. 2018-07-06 (c6a811e82 .. 38a7cf48b), no delegates"),
)


def _index(rows: tuple[Schema, ...]) -> dict[tuple[int, int], tuple[Schema, ...]]:
    out: dict[tuple[int, int], list[Schema]] = {}
    for row in rows:
        layouts = out.setdefault((row.tag, row.version), [])
        if any(len(s.fields) == len(row.fields) for s in layouts):
            raise ValueError(f"two layouts of {row.label} with {len(row.fields)} fields")
        layouts.append(row)
    return {key: tuple(v) for key, v in out.items()}


#: ``(tag, version)`` -> its layouts (usually one; 2018 layouts differ by field count).
BY_KEY: dict[tuple[int, int], tuple[Schema, ...]] = _index(SCHEMAS)
_BY_COUNT: dict[tuple[int, int, int], Schema] = {(s.tag, s.version, len(s.fields)): s for s in SCHEMAS}
_BY_NAME: dict[tuple[str, int], tuple[Schema, ...]] = {}
for _s in SCHEMAS:
    _BY_NAME[(_s.name, _s.version)] = (*_BY_NAME.get((_s.name, _s.version), ()), _s)


def lookup(tag: int, version: int, count: int) -> Schema | None:
    """The layout of ``(tag, version)`` with ``count`` fields (tag and version not counted), or ``None``."""
    return _BY_COUNT.get((tag, version, count))


def layouts(tag: int, version: int) -> tuple[Schema, ...]:
    """Every known layout of ``(tag, version)`` (empty when the pair is unknown)."""
    return BY_KEY.get((tag, version), ())


def by_name(name: str, version: int) -> tuple[Schema, ...]:
    """Every layout of the type called ``name`` (``channel_create_tx``) at ``version``."""
    return _BY_NAME.get((name, version), ())


def type_name(tag: int) -> str:
    """The node's name for ``tag``, or ``"tag <n>"`` when the tag is unknown."""
    return TAG_NAMES.get(tag, f"tag {tag}")
