"""Compatibility transformations: make an old recording playable by a modern client. OFF BY DEFAULT.

**This changes the recording.** A transformed transcript is no longer what the node sent; it is what a node
of today would have sent for the same flow, as far as a client can tell. Use it only to drive modern
clients against old logs (``chanlog replay --compat sdk14``); never to document or diff a recording.
The transformed transcript says so in ``source["compat"]`` (profile, description, changed frames).

Profile ``sdk14`` (``@aeternity/aepp-sdk`` 14, which only understands the Iris transaction layouts):

1. **channel_create_tx v1 -> v2** wherever a ``tx_`` blob holds one, bare or inside a ``signed_tx``, in any
   frame of either sender (sign requests' ``signed_tx``, ``channels.on_chain_tx`` ``tx``, ``channels.update``
   ``state``, ``channels.get.offchain_state`` results, the client's sign replies, ...). The v2 layout
   (serializations.md, channel_create_tx v2) has ``initiator_delegate_ids`` (the v1 ``delegate_ids``) and an
   empty ``responder_delegate_ids``.
2. **Minimum fee.** The SDK rebuilds every transaction it signs and refuses a fee below its minimum
   (``es/tx/builder/field-types/fee.js``): ``(base + 20 * size) * 1e9`` with ``base = 15000`` (``30 * 15000``
   for channel_force_progress_tx) and ``size`` the byte length of the (new) inner transaction. Any channel
   transaction whose fee is lower is given that minimum, recomputed until stable (the fee's own bytes
   count). A fee already high enough is kept.
3. **Signatures** of a ``signed_tx`` are kept as they were: they no longer match the transaction (clients
   do not check them; the fake node compares the transaction inside a ``signed_tx``, not its signatures).
4. **Client frames** the fake node expects are given the shape the SDK sends: every numeric string becomes
   a JSON number (the SDK's ``utils/json-big.js`` writes ``"1"`` as ``1``), and ``channels.update.new``
   without ``meta`` gets ``meta: []`` (``channel.update()`` always sends it; the node treats both alike).
5. **Parameters the SDK cannot send.** :data:`SDK14_METHODS` is the table, one row per client request of the
   node's channel API: the optional parameters the node accepts (``sc_ws_api_jsonrpc.erl``, ``optional_params/1``:
   ``block_hash`` and ``meta`` on updates, contract create/call and dry runs; ``meta``, ``block_hash``,
   ``nonce``, ``fee``, ``gas_price`` on deposit and withdraw; ``nonce``, ``fee``, ``gas_price`` on shutdown and
   the solo flows; ``nonce`` on force progress; ``from`` on messages) and the keys SDK 14's method for it writes
   (``src/channel/Spend.ts``, ``Contract.ts``, ``Base.ts``). An expected client frame keeps only what the SDK
   writes, and gets what it always writes (``meta: []`` on ``channels.update.new``; ``gas: 1000000`` and
   ``gas_price`` on ``channels.force_progress``, ``forceProgress()``'s defaults). The node's sign request
   that follows keeps the recorded transaction (fee, nonce): a node of today given no fee would have chosen
   its own, which a client cannot tell apart. A node error's echo of the request (``error.request``) is
   shaped the same way. Requests no public SDK method sends (close solo, snapshot solo, slash, settle,
   history) are left as recorded.
6. **Meta updates.** The node adds one ``OffChainMeta`` update per ``meta`` entry after the round's operation
   (``aesc_fsm.erl``, ``[Op | meta_updates(Opts)]``). The SDK sends ``meta`` with transfers only, so beside a
   deposit, withdrawal or contract update those entries come from a dropped parameter: they leave every
   ``updates`` list (sign requests, ``*_ack``, off-chain state results), and a channel_offchain_tx v1 (whose
   ``updates`` are part of the transaction) is rebuilt without them, through the same memoised blob mapping
   as the other blob rules, so the request and the client's signed reply still hold the same transaction.
7. **Nested transactions.** A transaction inside another (:data:`NESTED_FIELDS`: the ``payload`` of
   channel_close_solo_tx, channel_slash_tx, channel_snapshot_solo_tx, channel_force_progress_tx,
   channel_set_delegates_tx; the ``tx`` of ga_meta_tx and paying_for_tx) is upgraded like a top-level blob,
   inside the outer transaction, before the outer fee is raised for the new size.

``source["compat"]["rules"]`` and :attr:`CompatResult.rules` say which frames each rule changed
(``blobs``: the frames whose ``tx_`` blobs changed; ``json_numbers``, ``update_meta``, ``action_params``
(parameters dropped), ``sdk_defaults`` (parameters the SDK always sends added), ``meta_updates``).

Mapping is a pure function of the blob (:func:`upgrade_blob` is memoised): the same original always
becomes the same new blob, so a client that signs a transformed request and sends it back matches the
transformed recorded reply (same inner transaction, other signatures). :attr:`CompatResult.reverse`
maps new blobs back to the originals, e.g. to report a divergence in the recording's own terms.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import rlp

from chanlog.codec import schema
from chanlog.codec.encoding import EncodingError, parse_api
from chanlog.errors import ChanlogError
from chanlog.model import Frame, Transcript

#: Minimum gas price (aettos per gas) the SDK and the node assume (SDK ``MIN_GAS_PRICE``).
MIN_GAS_PRICE = 10**9
#: Base gas of a transaction (consensus README, "Gas"); SDK ``TX_BASE_GAS``.
BASE_GAS = 15000
#: Gas per byte of the serialized transaction.
GAS_PER_BYTE = 20
#: Base gas multipliers that differ from 1 (SDK ``feeFactors``), by tag.
BASE_GAS_FACTOR: dict[int, int] = {521: 30}
#: Channel transaction tags whose fee the ``sdk14`` profile raises to the minimum when needed.
CHANNEL_TX_TAGS = frozenset({50, 51, 52, 53, 54, 55, 56, 59, 501, 521})

SIGNED_TX = 11
CREATE_TX = 50
OFFCHAIN_TX = 57
#: Transactions holding a serialized signed transaction, by tag: the field's name (serializations.md:
#: channel_close_solo_tx 54, channel_slash_tx 55, channel_snapshot_solo_tx 59, channel_force_progress_tx 521 and
#: channel_set_delegates_tx 501 ``payload``, an off-chain state; ga_meta_tx 81 and paying_for_tx 82 ``tx``).
NESTED_FIELDS: dict[int, str] = {54: "payload", 55: "payload", 59: "payload", 521: "payload", 501: "payload",
                                 81: "tx", 82: "tx"}
#: Objects inside objects looked into at most (each ``signed_tx`` and each nested field counts one level): a
#: ga_meta_tx may wrap another ga_meta_tx (``aesc_fsm:has_my_signature/2`` goes deeper the same way) around a
#: solo transaction around its off-chain state, each in a ``signed_tx``: 8 levels; 16 leaves room. Each level
#: decodes and re-encodes its own bytes once, so a blob costs at most 16 times its size, and a hostile blob of
#: ``signed_tx`` inside ``signed_tx`` cannot exhaust the stack.
MAX_NESTING = 16

#: A numeric string the SDK's JSON writer turns into a number: canonical decimal, as bignumber.js prints
#: it (no leading zeros, no trailing fractional zeros, no exponent, at most 20 decimals, not ``-0``).
_NUMERIC = re.compile(r"(?!-0\Z)-?(?:0|[1-9][0-9]*)(?:\.[0-9]{0,19}[1-9])?\Z")


class CompatError(ChanlogError):
    """An unknown compatibility profile was asked for."""


@dataclass(frozen=True)
class Profile:
    """One compatibility profile: which transformations to apply."""

    name: str
    """Name used on the command line (``--compat sdk14``)."""
    description: str
    """One line saying what the profile changes (stored in the transformed transcript)."""
    upgrade_create: bool = True
    """Upgrade channel_create_tx v1 to v2."""
    raise_fees: bool = True
    """Raise channel transaction fees below the minimum for their size."""
    sdk_json_numbers: bool = True
    """Client frames: numeric strings become numbers."""
    update_meta: bool = True
    """Client frames: ``channels.update.new`` without ``meta`` gets ``meta: []``."""
    action_params: bool = True
    """Client frames: parameters SDK 14's API cannot send are dropped (``action_params``) and the ones it always
    sends added (``sdk_defaults``; :data:`SDK14_METHODS`)."""
    meta_updates: bool = True
    """``OffChainMeta`` entries beside a non-transfer update are dropped from ``updates`` lists and from the
    ``updates`` of channel_offchain_tx v1 blobs (:func:`strip_meta_updates`)."""


PROFILES: dict[str, Profile] = {
    "sdk14": Profile(
        name="sdk14",
        description=("TRANSFORMED for @aeternity/aepp-sdk 14: channel_create_tx v1 -> v2 (empty responder "
                     "delegates), fees raised to the minimum for the new size, old signatures kept; client "
                     "frames in the SDK's shape (numeric strings as numbers, update.new meta: [], optional "
                     "parameters its API cannot send dropped: block_hash, meta, fee, gas_price, nonce, ...); "
                     "OffChainMeta updates of those parameters dropped; nested transactions (payload, ga_meta_tx) "
                     "upgraded"),
    ),
}


@dataclass
class CompatResult:
    """What :func:`apply` produced."""

    transcript: Transcript
    """The transformed transcript (a new object; the input is not modified)."""
    profile: Profile
    """The profile applied."""
    mapping: dict[str, str] = field(default_factory=dict)
    """Original ``tx_`` blob -> new blob, for every blob that changed."""
    frames: list[int] = field(default_factory=list)
    """Numbers (from 1) of the frames that changed."""
    rules: dict[str, list[int]] = field(default_factory=dict)
    """Rule name -> numbers of the frames it changed (``blobs``: a ``tx_`` blob changed, ``json_numbers``,
    ``update_meta``, ``action_params``, ``sdk_defaults``, ``meta_updates``)."""

    @property
    def reverse(self) -> dict[str, str]:
        """New blob -> original blob."""
        return {new: old for old, new in self.mapping.items()}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; :class:`CompatError` naming the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise CompatError(f"unknown compatibility profile {name!r} (known: {', '.join(PROFILES)})",
                          "--compat") from None


def apply(transcript: Transcript, profile: str | Profile = "sdk14") -> CompatResult:
    """Transform every JSON frame of ``transcript`` with ``profile`` (see the module docstring).

    Returns a :class:`CompatResult` whose transcript carries ``source["compat"] = {"profile", "description",
    "frames"}``. Frames kept as verbatim text or binary are left alone. Blobs that do not decode are left
    as they are (a transformation never fails on data it does not understand). Raises :class:`CompatError`
    for an unknown profile name.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    result = CompatResult(transcript=transcript, profile=prof)
    numbers = {id(f): n for n, f in transcript.frames()}
    events = []
    for event in transcript.events:
        if isinstance(event, Frame) and event.is_json:
            applied: set[str] = set()
            data = transform_data(event.data, prof, sender=event.sender, mapping=result.mapping, applied=applied)
            if data != event.data:
                number = numbers[id(event)]
                result.frames.append(number)
                for rule in sorted(applied):
                    result.rules.setdefault(rule, []).append(number)
                event = dataclasses.replace(event, data=data)
        events.append(event)
    source = dict(transcript.source)
    source["compat"] = {"profile": prof.name, "description": prof.description, "frames": list(result.frames),
                        "rules": {k: list(v) for k, v in result.rules.items()}}
    result.transcript = Transcript(name=transcript.name, protocol=transcript.protocol, events=events,
                                   source=source)
    return result


#: The node's optional parameter groups (``sc_ws_api_jsonrpc.erl``: ``offchain_update_params/0`` =
#: ``[bh_param(), meta_param()]``; ``onchain_params/0`` = ``[nonce_param()] ++ fee_and_gas_price_params()``, i.e.
#: nonce, fee, gas_price), as ``optional_params/1`` hands them to ``apply_with_optional_params/4``.
_OFFCHAIN_UPDATE = frozenset({"block_hash", "meta"})
_ONCHAIN = frozenset({"nonce", "fee", "gas_price"})


@dataclass(frozen=True)
class ClientMethod:
    """One row of :data:`SDK14_METHODS`: a client request of the channel API, the optional parameters the node
    accepts for it and the parameters SDK 14's public API sends."""

    method: str
    """JSON-RPC method the client sends."""
    node_optional: frozenset[str]
    """Optional parameters the node reads (``sc_ws_api_jsonrpc.erl``, ``optional_params/1``, plus a parameter
    ``process_request/2`` reads with a default)."""
    sdk_sends: frozenset[str] | None
    """Every parameter key the SDK's method writes into the frame; ``None`` when no public SDK 14 method sends
    this request (the frame is then left as recorded)."""
    sdk_api: str
    """The SDK 14 method that sends it (``src/channel/*.ts``), or why there is none."""
    defaults: tuple[tuple[str, Any], ...] = ()
    """Parameters the SDK always sends, with the value it sends when the app gives none."""

    @property
    def dropped(self) -> frozenset[str]:
        """The node's optional parameters the SDK cannot send (empty when the SDK has no API for the method)."""
        return self.node_optional - self.sdk_sends if self.sdk_sends is not None else frozenset()


#: The client requests of the node's channel API (``sc_ws_api_jsonrpc.erl``, ``process_request/2``), the optional
#: parameters the node accepts and what ``@aeternity/aepp-sdk`` 14's ``Channel`` (``src/channel/*.ts``; published
#: as ``es/channel/*.js``) sends for each. The ``sdk14`` profile gives every recorded client frame of a method with
#: an SDK API the SDK's shape: parameters the SDK does not send are dropped (:attr:`ClientMethod.dropped` are the
#: node's optional ones; a key the node ignores, such as ``fee`` on ``channels.force_progress``, which
#: ``optional_params/1`` does not list, goes too), and :attr:`ClientMethod.defaults` are added when absent.
SDK14_METHODS: tuple[ClientMethod, ...] = (
    # node: optional_params(<<"channels.update.new">>) -> offchain_update_params();
    # SDK: ChannelSpend.update(from, to, amount, sign, metadata = []) in src/channel/Spend.ts
    ClientMethod("channels.update.new", _OFFCHAIN_UPDATE, frozenset({"from", "to", "amount", "meta"}),
                 "Channel.update(from, to, amount, sign, metadata)", (("meta", []),)),
    # node: optional_params(<<"channels.update.new_contract">>) -> offchain_update_params();
    # SDK: ChannelContract.createContract({code, callData, deposit, vmVersion, abiVersion}, sign) in Contract.ts
    ClientMethod("channels.update.new_contract", _OFFCHAIN_UPDATE,
                 frozenset({"code", "call_data", "deposit", "vm_version", "abi_version"}),
                 "Channel.createContract({code, callData, deposit, vmVersion, abiVersion}, sign)"),
    # node: optional_params(<<"channels.update.call_contract">>) -> offchain_update_params();
    # SDK: ChannelContract.callContract({amount, callData, contract, abiVersion}, sign) in Contract.ts
    ClientMethod("channels.update.call_contract", _OFFCHAIN_UPDATE,
                 frozenset({"amount", "call_data", "contract_id", "abi_version"}),
                 "Channel.callContract({amount, callData, contract, abiVersion}, sign)"),
    # node: optional_params(<<"channels.dry_run.call_contract">>) -> offchain_update_params();
    # SDK: ChannelContract.callContractStatic({amount, callData, contract, abiVersion}) in Contract.ts
    ClientMethod("channels.dry_run.call_contract", _OFFCHAIN_UPDATE,
                 frozenset({"amount", "call_data", "contract_id", "abi_version"}),
                 "Channel.callContractStatic({amount, callData, contract, abiVersion})"),
    # node: optional_params(<<"channels.deposit">>) -> [meta_param(), bh_param() | onchain_params()];
    # SDK: ChannelSpend.deposit(amount, sign, callbacks) in Spend.ts sends {amount}
    ClientMethod("channels.deposit", _ONCHAIN | {"meta", "block_hash"}, frozenset({"amount"}),
                 "Channel.deposit(amount, sign)"),
    # node: optional_params(<<"channels.withdraw">>) -> [meta_param(), bh_param() | onchain_params()];
    # SDK: ChannelSpend.withdraw(amount, sign, callbacks) in Spend.ts sends {amount}
    ClientMethod("channels.withdraw", _ONCHAIN | {"meta", "block_hash"}, frozenset({"amount"}),
                 "Channel.withdraw(amount, sign)"),
    # node: optional_params(<<"channels.shutdown">>) -> onchain_params();
    # SDK: Channel.shutdown(sign) in Base.ts: notify(this, 'channels.shutdown'), params {}
    ClientMethod("channels.shutdown", _ONCHAIN, frozenset(), "Channel.shutdown(sign)"),
    # node: optional_params(<<"channels.force_progress">>) -> [nonce_param()]; process_request/2 reads
    # gas with maps:get(<<"gas">>, Params, 1000000) (gas_price is mandatory there);
    # SDK: ChannelContract.forceProgress({amount, callData, contract, abiVersion, gasLimit = 1000000,
    # gasPrice = MIN_GAS_PRICE}, sign) in Contract.ts: always sends gas and gas_price, never nonce (nor fee)
    ClientMethod("channels.force_progress", frozenset({"nonce", "gas"}),
                 frozenset({"amount", "call_data", "contract_id", "abi_version", "gas_price", "gas"}),
                 "Channel.forceProgress({amount, callData, contract, abiVersion, gasLimit, gasPrice}, sign)",
                 (("gas", 1_000_000), ("gas_price", MIN_GAS_PRICE))),
    # node: optional_params(<<"channels.message">>) -> [from_param()] (message forwarding, node 6.5);
    # SDK: ChannelSpend.sendMessage(message, recipient) in Spend.ts sends {info, to}
    ClientMethod("channels.message", frozenset({"from"}), frozenset({"info", "to"}),
                 "Channel.sendMessage(message, recipient)"),
    # node: process_request/2 for channels.get.* takes no optional parameters;
    # SDK: balances(accounts), poi({accounts, contracts}) in Spend.ts; state() in Base.ts;
    # getContractState(contract), getContractCall({caller, contract, round}) in Contract.ts
    ClientMethod("channels.get.balances", frozenset(), frozenset({"accounts"}), "Channel.balances(accounts)"),
    ClientMethod("channels.get.poi", frozenset(), frozenset({"accounts", "contracts"}),
                 "Channel.poi({accounts, contracts})"),
    ClientMethod("channels.get.offchain_state", frozenset(), frozenset(), "Channel.state()"),
    ClientMethod("channels.get.contract", frozenset(), frozenset({"pubkey"}), "Channel.getContractState(contract)"),
    ClientMethod("channels.get.contract_call", frozenset(), frozenset({"caller_id", "contract_id", "round"}),
                 "Channel.getContractCall({caller, contract, round})"),
    # node: leave and clean_contract_calls read no parameters; SDK: leave() in Base.ts,
    # cleanContractCalls() in Contract.ts, both notify without parameters
    ClientMethod("channels.leave", frozenset(), frozenset(), "Channel.leave()"),
    ClientMethod("channels.clean_contract_calls", frozenset(), frozenset(), "Channel.cleanContractCalls()"),
    # node: optional_params(<<"channels.close_solo">> | snapshot_solo | slash | settle) -> onchain_params();
    # SDK 14 has no WebSocket method for these: it builds the solo transactions itself and posts them on
    # chain (ChannelCloseSoloTx, ChannelSnapshotSoloTx, ChannelSlashTx, ChannelSettleTx in tx/builder/schema.ts)
    *(ClientMethod(f"channels.{name}", _ONCHAIN, None,
                   "none: the SDK builds and posts the solo transaction on chain itself")
      for name in ("close_solo", "snapshot_solo", "slash", "settle")),
    # node: optional_params(<<"channels.history.fetch">>) -> [n_param() | filter_params()] (n, type, tag);
    # SDK 14 has no method for it (src/channel/*.ts never sends channels.history.fetch)
    ClientMethod("channels.history.fetch", frozenset({"n", "type", "tag"}), None, "none"),
    # node: optional_params(<<"channels.assume_minimum_depth">>) -> []; SDK 14 has no method for it
    ClientMethod("channels.assume_minimum_depth", frozenset(), None, "none"),
)

#: :data:`SDK14_METHODS` by method.
SDK14_BY_METHOD: dict[str, ClientMethod] = {row.method: row for row in SDK14_METHODS}

#: Client requests whose SDK 14 API cannot send every optional parameter the node accepts, and those it cannot.
ACTION_PARAMS_DROPPED: dict[str, frozenset[str]] = {row.method: row.dropped for row in SDK14_METHODS if row.dropped}

#: The gas limit ``channel.forceProgress()`` sends when none is given (SDK 14 ``gasLimit = 1000000``).
FORCE_PROGRESS_GAS = dict(SDK14_BY_METHOD["channels.force_progress"].defaults)["gas"]

#: Off-chain update ``op`` names in the node's JSON (``aesc_offchain_update:type2swagger_name/1``).
OP_META = "OffChainMeta"
OP_TRANSFER = "OffChainTransfer"
#: Off-chain update tags (serializations.md: channel_offchain_update_transfer 570, _meta 576).
UPDATE_TRANSFER = 570
UPDATE_META = 576


def transform_data(data: Any, profile: Profile, *, sender: str = "node",
                   mapping: dict[str, str] | None = None, applied: set[str] | None = None) -> Any:
    """A transformed copy of one frame's parsed JSON (``sender`` ``client`` or ``node``).

    Every ``tx_`` string is passed through :func:`upgrade_blob`; every ``updates`` list loses the
    ``OffChainMeta`` entries the SDK cannot have caused (:func:`strip_meta_updates`); for client frames the SDK
    shape rules apply (:func:`sdk_params`, numeric strings as numbers), and a node error's echo of the request
    (``error.request``) loses the parameters the SDK cannot send. Changed blobs are recorded in ``mapping``
    (original -> new) when given; the names of the rules that changed something are added to ``applied`` when
    given.
    """
    applied = set() if applied is None else applied
    before = len(mapping) if mapping is not None else 0
    out = _walk(data, profile, mapping)
    if out != data or (mapping is not None and len(mapping) != before):
        applied.add("blobs")
    if profile.meta_updates:
        stripped = strip_meta_updates(out)
        if stripped != out:
            applied.add("meta_updates")
        out = stripped
    if not isinstance(out, dict):
        return out
    if sender == "client":
        out = _sdk_request(out, profile, applied)
        if profile.sdk_json_numbers:
            numbered = _json_numbers(out)
            if numbered != out:
                applied.add("json_numbers")
            out = numbered
    elif isinstance(out.get("error"), dict) and isinstance(out["error"].get("request"), dict):
        # The node's error object echoes the request it refused (json_rpc_error_object/2, error_obj/3): a node
        # given the SDK's request echoes that one.
        request = out["error"]["request"]
        shaped = _sdk_request(request, profile, applied)
        if shaped is not request:
            out = {**out, "error": {**out["error"], "request": shaped}}
    return out


#: The SDK-shape rules of client requests: ``action_params`` drops what the SDK cannot send, ``sdk_defaults``
#: adds the parameters it always sends (``gas`` and ``gas_price`` of ``channels.force_progress``), ``update_meta``
#: adds ``meta: []`` to ``channels.update.new``.
REQUEST_RULES = frozenset({"action_params", "sdk_defaults", "update_meta"})


def sdk_params(method: Any, params: Any, rules: frozenset[str] = REQUEST_RULES) -> tuple[Any, set[str]]:
    """``params`` of a client request as SDK 14's API sends them (:data:`SDK14_METHODS`).

    With ``action_params`` in ``rules``, keys the SDK's method does not write are dropped; with ``sdk_defaults``
    (``update_meta`` for ``meta``) the parameters it always sends are added with its default when absent. Returns
    ``(params, applied)``, ``applied`` naming the rules that changed something. A method without an SDK API, or
    params that are not an object, come back unchanged."""
    row = SDK14_BY_METHOD.get(method) if isinstance(method, str) else None
    if row is None or row.sdk_sends is None or not isinstance(params, dict):
        return params, set()
    applied: set[str] = set()
    out = dict(params)
    if "action_params" in rules:
        out = {k: v for k, v in params.items() if k in row.sdk_sends}
        if len(out) != len(params):
            applied.add("action_params")
    for key, value in row.defaults:
        rule = "update_meta" if key == "meta" else "sdk_defaults"
        if key not in out and rule in rules:
            out[key] = value
            applied.add(rule)
    return out, applied


def _sdk_request(out: dict, profile: Profile, applied: set[str]) -> dict:
    """A client frame with its params in the SDK's shape, as far as ``profile`` asks."""
    rules = frozenset(rule for rule, on in (("action_params", profile.action_params),
                                            ("sdk_defaults", profile.action_params),
                                            ("update_meta", profile.update_meta)) if on)
    params, changed = sdk_params(out.get("method"), out.get("params"), rules)
    if changed:
        applied.update(changed)
        out = {**out, "params": params}
    return out


def strip_meta_updates(data: Any) -> Any:
    """``data`` with every ``updates`` list (a sign request's, a ``channels.get.offchain_state`` result's, ...)
    rid of the ``OffChainMeta`` entries of an operation other than a transfer.

    The node builds a round's updates as ``[Op | meta_updates(Opts)]`` from the request's ``meta`` parameter
    (``aesc_fsm.erl``: ``handle_upd_transfer/6``, ``new_onchain_tx/7`` for deposit and withdraw, the contract
    create and call handlers). SDK 14 sends ``meta`` only with ``channels.update.new`` (a transfer,
    :data:`SDK14_METHODS`), so meta entries beside a deposit, withdrawal or contract update come from a parameter
    the SDK cannot send, and a node given the SDK's request would not have added them."""
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key == "updates" and isinstance(value, list):
                value = _strip_meta_list(value)
            out[key] = strip_meta_updates(value)
        return out
    if isinstance(data, list):
        return [strip_meta_updates(v) for v in data]
    return data


def _strip_meta_list(updates: list) -> list:
    ops = [u.get("op") if isinstance(u, dict) else None for u in updates]
    others = [op for op in ops if op != OP_META]
    if len(others) == len(ops) or not others or all(op == OP_TRANSFER for op in others):
        return updates
    return [u for u, op in zip(updates, ops, strict=True) if op != OP_META]


def _walk(data: Any, profile: Profile, mapping: dict[str, str] | None) -> Any:
    if isinstance(data, dict):
        return {k: _walk(v, profile, mapping) for k, v in data.items()}
    if isinstance(data, list):
        return [_walk(v, profile, mapping) for v in data]
    if isinstance(data, str) and data[:3] in ("tx_", "tx$"):
        new = upgrade_blob(data, profile.upgrade_create, profile.raise_fees, profile.meta_updates)
        if new != data and mapping is not None:
            mapping[data] = new
        return new
    return data


def _json_numbers(data: Any) -> Any:
    """Numeric strings as numbers, everywhere in ``data`` (keys untouched), as the SDK's JSON writer does."""
    if isinstance(data, dict):
        return {k: _json_numbers(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_json_numbers(v) for v in data]
    if isinstance(data, str) and _NUMERIC.match(data):
        return int(data) if "." not in data else float(data)
    return data


@lru_cache(maxsize=4096)
def upgrade_blob(blob: str, upgrade_create: bool = True, raise_fees: bool = True, meta_updates: bool = True) -> str:
    """The blob a current node would have sent instead of ``blob`` (a ``tx_`` string), or ``blob`` itself.

    ``signed_tx`` (tag 11): its inner transaction is upgraded, signatures kept. A bare transaction is
    upgraded in place; a transaction nested in another (:data:`NESTED_FIELDS`: a solo transaction's
    ``payload``, a ga_meta_tx's or paying_for_tx's ``tx``) first, up to :data:`MAX_NESTING` levels.
    channel_create_tx v1 becomes v2 (``upgrade_create``); a channel transaction's fee below :func:`min_fee` is
    raised (``raise_fees``); a channel_offchain_tx v1 loses the meta updates beside a non-transfer update
    (``meta_updates``, as :func:`strip_meta_updates`). The new blob keeps the original's alphabet
    (base64check, or base58check in legacy traffic) and separator. Undecodable blobs come back unchanged.
    """
    try:
        env = parse_api(blob)
        items = rlp.decode(env.payload)
    except (EncodingError, rlp.exceptions.DecodingError):
        return blob
    new_items = _upgrade_items(items, _Rules(upgrade_create, raise_fees, meta_updates), 0)
    if new_items is None:
        return blob
    return env._replace(payload=rlp.encode(new_items)).text()


@dataclass(frozen=True)
class _Rules:
    upgrade_create: bool
    raise_fees: bool
    meta_updates: bool


def _upgrade_items(items: Any, rules: _Rules, depth: int) -> list | None:
    """The upgraded RLP item list of one object, or ``None`` when nothing changes. ``depth``: how many
    transactions hold this one."""
    if not isinstance(items, list) or len(items) < 2 or not all(isinstance(x, bytes) for x in items[:2]):
        return None
    tag, version = _int(items[0]), _int(items[1])
    if tag == SIGNED_TX and len(items) == 4 and isinstance(items[3], bytes):
        if depth >= MAX_NESTING:
            return None
        try:
            inner = rlp.decode(items[3])
        except rlp.exceptions.DecodingError:
            return None
        new_inner = _upgrade_items(inner, rules, depth + 1)
        if new_inner is None:
            return None
        return [items[0], items[1], items[2], rlp.encode(new_inner)]
    changed = False
    nested = _upgrade_nested(items, tag, version, rules, depth)
    if nested is not None:
        items, changed = nested, True
    if rules.meta_updates and tag == OFFCHAIN_TX and version == 1:
        stripped = _strip_meta_items(items)
        if stripped is not None:
            items, changed = stripped, True
    if rules.upgrade_create and tag == CREATE_TX and version == 1:
        upgraded = _create_v1_to_v2(items)
        if upgraded is not None:
            items, tag, version, changed = upgraded, CREATE_TX, 2, True
    if rules.raise_fees and tag in CHANNEL_TX_TAGS:
        raised = _raise_fee(items, tag, version)
        if raised is not None:
            items, changed = raised, True
    return items if changed else None


def _upgrade_nested(items: list, tag: int, version: int, rules: _Rules, depth: int) -> list | None:
    """``items`` with the serialized signed transaction it holds (:data:`NESTED_FIELDS`) upgraded, or ``None``
    when there is none, nothing changes or :data:`MAX_NESTING` is reached."""
    name = NESTED_FIELDS.get(tag)
    layout = schema.lookup(tag, version, len(items) - 2) if name else None
    if layout is None or name not in layout.field_names or depth >= MAX_NESTING:
        return None
    index = 2 + layout.field_names.index(name)
    payload = items[index]
    if not isinstance(payload, bytes) or not payload:
        return None  # an empty payload: the last on-chain state
    try:
        inner = rlp.decode(payload)
    except rlp.exceptions.DecodingError:
        return None
    new_inner = _upgrade_items(inner, rules, depth + 1)
    if new_inner is None:
        return None
    new = list(items)
    new[index] = rlp.encode(new_inner)
    return new


def _strip_meta_items(items: list) -> list | None:
    """channel_offchain_tx v1 ``items`` without the meta updates (576) beside a non-transfer update, or ``None``
    when there are none to drop (serializations.md: channel_offchain_tx v1 ``updates``; the rule of
    :func:`strip_meta_updates`)."""
    layout = schema.lookup(OFFCHAIN_TX, 1, len(items) - 2)
    if layout is None or "updates" not in layout.field_names:
        return None
    index = 2 + layout.field_names.index("updates")
    updates = items[index]
    if not isinstance(updates, list) or not all(isinstance(u, bytes) for u in updates):
        return None
    tags = []
    for update in updates:
        try:
            decoded = rlp.decode(update)
        except rlp.exceptions.DecodingError:
            return None
        if not isinstance(decoded, list) or not decoded or not isinstance(decoded[0], bytes):
            return None
        tags.append(_int(decoded[0]))
    others = [t for t in tags if t != UPDATE_META]
    if len(others) == len(tags) or not others or all(t == UPDATE_TRANSFER for t in others):
        return None
    new = list(items)
    new[index] = [u for u, t in zip(updates, tags, strict=True) if t != UPDATE_META]
    return new


def _create_v1_to_v2(items: list) -> list | None:
    """channel_create_tx v1 (either layout) as v2: ``delegate_ids`` -> ``initiator_delegate_ids``, empty
    ``responder_delegate_ids`` (serializations.md, channel_create_tx v1 and v2)."""
    old = schema.lookup(CREATE_TX, 1, len(items) - 2)
    (new,) = schema.layouts(CREATE_TX, 2)
    if old is None:
        return None
    values = dict(zip(old.field_names, items[2:], strict=True))
    values["initiator_delegate_ids"] = values.pop("delegate_ids", [])
    values["responder_delegate_ids"] = []
    return [_enc_int(CREATE_TX), _enc_int(2), *(values[name] for name in new.field_names)]


def min_fee(tag: int, size: int) -> int:
    """The minimum fee in aettos of a transaction with ``tag`` whose serialization is ``size`` bytes:
    ``(factor * 15000 + 20 * size) * 1e9`` (consensus README, "Gas"; SDK ``fee.js``)."""
    return (BASE_GAS_FACTOR.get(tag, 1) * BASE_GAS + GAS_PER_BYTE * size) * MIN_GAS_PRICE


def _raise_fee(items: list, tag: int, version: int) -> list | None:
    """``items`` with the fee raised to :func:`min_fee` of the resulting size, or ``None`` when the fee is
    already enough (or the layout has no fee)."""
    layout = schema.lookup(tag, version, len(items) - 2)
    if layout is None or "fee" not in layout.field_names:
        return None
    index = 2 + layout.field_names.index("fee")
    fee = _int(items[index]) if isinstance(items[index], bytes) else None
    if fee is None:
        return None
    new = list(items)
    changed = False
    while True:
        need = min_fee(tag, len(rlp.encode(new)))
        if fee >= need:
            return new if changed else None
        fee, changed = need, True
        new[index] = _enc_int(fee)


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _enc_int(n: int) -> bytes:
    """An unsigned int as the node writes it (big-endian, 0 as one zero byte; SCHEMAS.md §2)."""
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def transformer(profile: str | Profile = "sdk14") -> Callable[[Transcript], Transcript]:
    """A ``Transcript -> Transcript`` function applying ``profile`` (for ``FakeNode(transform=...)``).
    Raises :class:`CompatError` at once for an unknown profile name."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    return lambda transcript: apply(transcript, prof).transcript
