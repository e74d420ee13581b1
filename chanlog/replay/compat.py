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
5. **Action parameters the SDK cannot send.** ``channel.deposit(amount)``, ``channel.withdraw(amount)`` and
   ``channel.shutdown()`` send ``{amount}`` and ``{}`` only (``es/channel/Spend.js``, ``Base.js``): the expected
   ``channels.deposit`` / ``channels.withdraw`` / ``channels.shutdown`` frames lose ``fee``, ``gas_price`` and
   ``nonce``; ``channels.force_progress`` without ``gas`` gets ``gas: 1000000`` (``forceProgress()``'s default
   ``gasLimit``, always sent). The node's sign request that follows keeps the recorded transaction (with the recorded fee): a
   node of today given no fee would have chosen its own, which a client cannot tell apart.
6. **Nested transactions.** A channel transaction's ``payload`` (channel_close_solo_tx, channel_slash_tx,
   channel_snapshot_solo_tx, channel_force_progress_tx: a signed off-chain state) is upgraded like a top-level
   blob, inside the outer transaction, before the outer fee is raised for the new size.

``source["compat"]["rules"]`` and :attr:`CompatResult.rules` say which frames each rule changed
(``create_v2``/``fee`` are blob rules: the frames whose blobs changed; ``json_numbers``, ``update_meta``,
``action_params``).

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
#: Channel transactions with a ``payload`` field (a serialized signed transaction), by tag.
NESTED_TAGS = frozenset({52, 54, 55, 59, 521})

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
    """Client frames: ``channels.deposit``/``withdraw``/``shutdown`` lose ``fee``, ``gas_price``, ``nonce``."""


PROFILES: dict[str, Profile] = {
    "sdk14": Profile(
        name="sdk14",
        description=("TRANSFORMED for @aeternity/aepp-sdk 14: channel_create_tx v1 -> v2 (empty responder "
                     "delegates), fees raised to the minimum for the new size, old signatures kept; client "
                     "frames in the SDK's shape (numeric strings as numbers, update.new meta: [], deposit/"
                     "withdraw/shutdown without fee, gas_price, nonce); nested payload transactions upgraded"),
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
    ``update_meta``, ``action_params``)."""

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


#: Client actions whose SDK 14 API sends fewer parameters than a recording may hold, and the ones it drops.
ACTION_PARAMS_DROPPED: dict[str, frozenset[str]] = {
    method: frozenset({"fee", "gas_price", "nonce"})
    for method in ("channels.deposit", "channels.withdraw", "channels.shutdown")
}


#: The gas limit ``channel.forceProgress()`` sends when none is given (SDK 14 ``gasLimit = 1000000``).
FORCE_PROGRESS_GAS = 1_000_000


def transform_data(data: Any, profile: Profile, *, sender: str = "node",
                   mapping: dict[str, str] | None = None, applied: set[str] | None = None) -> Any:
    """A transformed copy of one frame's parsed JSON (``sender`` ``client`` or ``node``).

    Every ``tx_`` string is passed through :func:`upgrade_blob`; for client frames the SDK shape rules
    apply. Changed blobs are recorded in ``mapping`` (original -> new) when given; the names of the rules
    that changed something are added to ``applied`` when given.
    """
    applied = set() if applied is None else applied
    before = len(mapping) if mapping is not None else 0
    out = _walk(data, profile, mapping)
    if out != data or (mapping is not None and len(mapping) != before):
        applied.add("blobs")
    if sender == "client" and isinstance(out, dict):
        method = out.get("method")
        params = out.get("params")
        if profile.update_meta and method == "channels.update.new":
            if isinstance(params, dict) and "meta" not in params:
                out = {**out, "params": {**params, "meta": []}}
                applied.add("update_meta")
        if profile.action_params and method == "channels.force_progress":
            if isinstance(params, dict) and "gas" not in params:
                out = {**out, "params": {**params, "gas": FORCE_PROGRESS_GAS}}
                applied.add("action_params")
        dropped = ACTION_PARAMS_DROPPED.get(method) if profile.action_params else None  # type: ignore[arg-type]
        if dropped and isinstance(params, dict) and dropped & params.keys():
            out = {**out, "params": {k: v for k, v in params.items() if k not in dropped}}
            applied.add("action_params")
        if profile.sdk_json_numbers:
            numbered = _json_numbers(out)
            if numbered != out:
                applied.add("json_numbers")
            out = numbered
    return out


def _walk(data: Any, profile: Profile, mapping: dict[str, str] | None) -> Any:
    if isinstance(data, dict):
        return {k: _walk(v, profile, mapping) for k, v in data.items()}
    if isinstance(data, list):
        return [_walk(v, profile, mapping) for v in data]
    if isinstance(data, str) and data[:3] in ("tx_", "tx$"):
        new = upgrade_blob(data, profile.upgrade_create, profile.raise_fees)
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
def upgrade_blob(blob: str, upgrade_create: bool = True, raise_fees: bool = True) -> str:
    """The blob a current node would have sent instead of ``blob`` (a ``tx_`` string), or ``blob`` itself.

    ``signed_tx`` (tag 11): its inner transaction is upgraded, signatures kept. A bare transaction is
    upgraded in place. channel_create_tx v1 becomes v2 (``upgrade_create``); a channel transaction's fee
    below :func:`min_fee` is raised (``raise_fees``). The new blob keeps the original's alphabet (base64check,
    or base58check in legacy traffic) and separator. Undecodable blobs come back unchanged.
    """
    try:
        env = parse_api(blob)
        items = rlp.decode(env.payload)
    except (EncodingError, rlp.exceptions.DecodingError):
        return blob
    new_items = _upgrade_items(items, upgrade_create, raise_fees)
    if new_items is None:
        return blob
    return env._replace(payload=rlp.encode(new_items)).text()


def _upgrade_items(items: Any, upgrade_create: bool, raise_fees: bool) -> list | None:
    """The upgraded RLP item list of one object, or ``None`` when nothing changes."""
    if not isinstance(items, list) or len(items) < 2 or not all(isinstance(x, bytes) for x in items[:2]):
        return None
    tag, version = _int(items[0]), _int(items[1])
    if tag == SIGNED_TX and len(items) == 4 and isinstance(items[3], bytes):
        try:
            inner = rlp.decode(items[3])
        except rlp.exceptions.DecodingError:
            return None
        new_inner = _upgrade_items(inner, upgrade_create, raise_fees)
        if new_inner is None:
            return None
        return [items[0], items[1], items[2], rlp.encode(new_inner)]
    changed = False
    nested = _upgrade_payload(items, tag, version, upgrade_create, raise_fees)
    if nested is not None:
        items, changed = nested, True
    if upgrade_create and tag == CREATE_TX and version == 1:
        upgraded = _create_v1_to_v2(items)
        if upgraded is not None:
            items, tag, version, changed = upgraded, CREATE_TX, 2, True
    if raise_fees and tag in CHANNEL_TX_TAGS:
        raised = _raise_fee(items, tag, version)
        if raised is not None:
            items, changed = raised, True
    return items if changed else None


def _upgrade_payload(items: list, tag: int, version: int, upgrade_create: bool, raise_fees: bool) -> list | None:
    """``items`` with its ``payload`` field (a serialized signed transaction: close solo, slash, snapshot solo,
    force progress) upgraded, or ``None`` when there is none or nothing changes. One level deep: a payload
    is an off-chain state, whose own fields hold no transactions."""
    layout = schema.lookup(tag, version, len(items) - 2)
    if layout is None or "payload" not in layout.field_names:
        return None
    index = 2 + layout.field_names.index("payload")
    payload = items[index]
    if not isinstance(payload, bytes) or not payload:
        return None
    try:
        inner = rlp.decode(payload)
    except rlp.exceptions.DecodingError:
        return None
    if isinstance(inner, list) and len(inner) >= 2 and isinstance(inner[0], bytes) and _int(inner[0]) in NESTED_TAGS:
        return None  # never recurse into another payload-carrying transaction
    new_inner = _upgrade_items(inner, upgrade_create, raise_fees)
    if new_inner is None:
        return None
    new = list(items)
    new[index] = rlp.encode(new_inner)
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
