"""Rebinding: one transcript served to a client with its own accounts (``chanlog replay --rebind``).

When a participant connects, :meth:`Rebinder.connect` reads its identity from the opening URL
(``initiator_id``, ``responder_id``, ``existing_channel_id``) and learns, for the session, which recorded
value stands for which of the client's:

* **accounts**: the recorded ``initiator_id`` / ``responder_id`` → the client's; mapped in JSON params
  (``ak_…`` strings) and in every field of every ``tx_`` blob, which is decoded, changed and re-encoded
  (:func:`chanlog.codec.transactions.decode`, :meth:`~chanlog.codec.transactions.Decoded.with_fields`, :func:`~chanlog.codec.transactions.encode`);
* **the channel id**, computed as the node does (``aesc_channels:pubkey/3``): ``blake2b-256(initiator
  (32 bytes) ‖ nonce (256-bit big-endian) ‖ responder (32 bytes))`` with the nonce of the recorded
  ``channel_create_tx``, and wherever it is embedded (``ch_…`` strings, ``channel_id`` fields of
  transactions). Without a recorded ``channel_create_tx`` (a log that starts on an open channel) the
  client's ``existing_channel_id`` stands for the recorded one;
* **signatures**: when a client answers a sign request, the signature it added is checked (Ed25519,
  over ``network_id`` ‖ ``blake2b-256(transaction)``, as ``aetx_sign`` and the SDK sign; the network id
  is the first of :data:`DEFAULT_NETWORK_IDS`, or the ones given, that verifies) against the account the
  client named in its URL for its role, and replaces the recorded signature in every later node frame
  (the co-signed transaction sent to the second signer, ``channels.on_chain_tx``, updates).

What cannot be recomputed without the node's state trees passes through unchanged: ``state_hash``
values, proofs of inclusion (``pi_…``), state trees (``ss_…``) and anything nested in them, contract ids.
Parameters the transactions depend on (:data:`FOLLOWED_PARAMS`: amounts, reserve, push amount, lock period)
are followed where the client's URL differs, in the fields that carry them (the ``channel_create_tx``) and the
balances derived from them (final amounts of mutual close and settle, ``channels.get.balances``); a value that
is not an integer, that changes within a session, or that would make a balance negative is a divergence
naming the parameter. ``host`` and ``port`` may differ freely (they reach no transaction).

Client frames are compared after the same mapping (:meth:`Rebinder.expected`), so a client that signs a
transaction naming the recorded accounts, or signs with another key, still diverges.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from chanlog.codec.encoding import ApiValue, EncodingError, encode_api, parse_api
from chanlog.codec.transactions import Decoded, DecodeError, decode, encode, strip_signatures
from chanlog.model import ROLES, dump_json
from chanlog.replay.matchers import Arrival, Expected, declined, signed_blob
from chanlog.replay.script import NODE, ConnScript, Script

log = logging.getLogger("chanlog.replay")

ID_PARAMS = ("initiator_id", "responder_id")
"""URL parameters naming the participants' accounts (channels API, "Channel open")."""
FOLLOWED_PARAMS = ("initiator_amount", "responder_amount", "channel_reserve", "push_amount", "lock_period")
"""URL parameters (integers) the recorded transactions depend on, followed where the client's differ: the
``channel_create_tx`` fields of the same names, and the balances derived from the amounts (shifted by the
change of the amounts and the push amount) in ``channel_close_mutual_tx`` / ``channel_settle_tx`` final amounts
and ``channels.get.balances`` results."""
BALANCE_TXS = ("channel_close_mutual_tx", "channel_settle_tx")
"""Transactions whose ``initiator_amount_final`` / ``responder_amount_final`` follow the amounts."""
DEFAULT_NETWORK_IDS = ("ae_mainnet", "ae_uat", "ae_devnet", "ae_chanlog_replay")
"""Network ids a client's signature is checked with when none are given (the first that verifies is kept
for the session)."""
MAPPED_PREFIXES = ("ak", "ch")
"""Prefixes of the ids that are mapped (accounts, channels)."""
PASS_THROUGH = ("poi", "tree", "mpt")
"""Objects whose type name contains one of these are left as recorded (state trees, proofs)."""


def channel_pubkey(initiator: bytes, nonce: int, responder: bytes) -> bytes:
    """The channel id of a channel_create_tx, as the node computes it (``aesc_channels:pubkey/3``):
    ``blake2b-256(initiator ‖ <<nonce:256>> ‖ responder)``; ids are 32-byte public keys."""
    return hashlib.blake2b(initiator + nonce.to_bytes(32, "big") + responder, digest_size=32).digest()


def recorded_creates(script: Script) -> list[tuple[bytes, int, bytes]]:
    """``(initiator, nonce, responder)`` of every distinct channel_create_tx the recorded node sent."""
    found: list[tuple[bytes, int, bytes]] = []
    for step in script.steps.values():
        if step.kind != NODE or step.expected is None or not step.expected.is_json:
            continue
        for blob in _blobs(step.expected.data):
            try:
                tree = decode(blob)
            except (DecodeError, RecursionError):
                continue
            for obj in tree.walk():
                if obj.type == "channel_create_tx":
                    key = (obj["initiator"].payload, int(obj["nonce"]), obj["responder"].payload)
                    if key not in found:
                        found.append(key)
    return found


def _blobs(data: Any) -> list[str]:
    out: list[str] = []
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and value.startswith("tx_"):
            out.append(value)
    return out


def _payload(text: str, prefix: str) -> bytes | None:
    if not isinstance(text, str) or not text.startswith(prefix + "_"):
        return None
    try:
        return parse_api(text).payload
    except EncodingError:
        return None


def _verify(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(pubkey).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class Rebinder:
    """The mapping of one session (recorded value → the client's), learnt from the clients' URLs and
    sign replies, applied to every node frame sent and every client frame expected.

    ``Rebinder(script, creates, network_ids=None, session=1)``; ``creates`` from :func:`recorded_creates`;
    ``session`` numbers the log lines (``-v`` shows the mapping as it is learnt)."""

    def __init__(self, script: Script, creates: list[tuple[bytes, int, bytes]],
                 network_ids: tuple[str, ...] | None = None, session: int = 1) -> None:
        self.script = script
        self.session = session
        self.creates = creates
        self.network_ids = tuple(network_ids) if network_ids else DEFAULT_NETWORK_IDS
        self.network_id: str | None = None
        """The network id the clients' signatures verified with (once one did)."""
        self.ids: dict[bytes, bytes] = {}
        """Recorded account or channel public key → the client's."""
        self.signatures: dict[bytes, bytes] = {}
        """Recorded signature → the one the client returned for the same transaction."""
        self.accounts: dict[str, bytes] = {}
        """Role → the account the client named for it."""
        self._cache: dict[str, str] = {}
        self._prefixes: dict[bytes, str] = {}
        self.followed: dict[str, tuple[int, int]] = {}
        """URL parameter -> (recorded, client) for the :data:`FOLLOWED_PARAMS` the client changed."""

    # -- learning

    def connect(self, cs: ConnScript, params: Mapping[str, str]) -> str | None:
        """Learn from a connection's URL query ``params`` (the recorded connection ``cs``); ``None``, or
        one sentence naming the parameter --rebind cannot follow."""
        recorded = dict(_query(cs))
        for name in ID_PARAMS:
            got, rec = params.get(name), recorded.get(name)
            if got is None or rec is None:
                continue
            got_key, rec_key = _payload(got, "ak"), _payload(rec, "ak")
            if got_key is None or rec_key is None:
                return f"--rebind: the URL parameter {name}={got!r} is not an account id (ak_...)"
            known = self.ids.get(rec_key)
            if known is not None and known != got_key:
                return (f"--rebind: the URL parameter {name} changed within the session: "
                        f"{encode_api('ak', known)} before, {got} now")
            others = [r for r, g in self.ids.items() if g == got_key and r != rec_key]
            if others:
                return f"--rebind: the URL parameter {name}={got} names the account of the other participant"
            if known is None:
                self._learn(rec_key, got_key, f"{name}")
            self.accounts[name.split("_")[0]] = got_key
        for name in FOLLOWED_PARAMS:
            got, rec = params.get(name), recorded.get(name)
            if got is None or rec is None or got == rec:
                continue
            try:
                pair = (int(rec), int(got))
            except ValueError:
                return f"--rebind cannot follow the URL parameter {name}={got!r}: not an integer (recorded {rec})"
            known = self.followed.get(name)
            if known is not None and known != pair:
                return (f"--rebind cannot follow the URL parameter {name}: it changed within the session "
                        f"({known[1]} before, {got} now)")
            if known is None:
                self.followed[name] = pair
                self._cache.clear()
                log.info("session %d: rebind %s: %s -> %s", self.session, name, rec, got)
        problem = self._negative_balance()
        if problem is not None:
            return problem
        self._derive_channels()
        got, rec = params.get("existing_channel_id"), recorded.get("existing_channel_id")
        if got is not None and rec is not None:
            got_key, rec_key = _payload(got, "ch"), _payload(rec, "ch")
            if got_key is None or rec_key is None:
                return f"--rebind: the URL parameter existing_channel_id={got!r} is not a channel id (ch_...)"
            known = self.ids.get(rec_key)
            if known is None:
                self._learn(rec_key, got_key, "existing_channel_id")
            elif known != got_key:
                return (f"--rebind: the URL parameter existing_channel_id is {got}; the channel this session "
                        f"opened is {encode_api('ch', known)}")
        role = params.get("role")
        if role in ROLES and role not in self.accounts and cs.open is not None:
            rec_id = recorded.get(f"{role}_id")
            rec_key = _payload(rec_id, "ak") if rec_id else None
            if rec_key is not None and rec_key in self.ids:
                self.accounts[role] = self.ids[rec_key]
        return None

    def _delta(self, name: str) -> int:
        pair = self.followed.get(name)
        return pair[1] - pair[0] if pair else 0

    def balance_deltas(self) -> tuple[int, int]:
        """How much the initiator's and the responder's balances differ from the recorded ones, from the
        followed amounts and push amount."""
        push = self._delta("push_amount")
        return self._delta("initiator_amount") - push, self._delta("responder_amount") + push

    def _negative_balance(self) -> str | None:
        for name, (_, got) in self.followed.items():
            if got < 0:
                return f"--rebind cannot follow the URL parameter {name}={got}: it is negative"
        return None

    def _learn(self, recorded: bytes, client: bytes, what: str) -> None:
        self.ids[recorded] = client
        self._cache.clear()
        prefix = "ak" if what in ID_PARAMS else "ch"
        self._prefixes[recorded] = prefix
        log.info("session %d: rebind %s: %s -> %s", self.session, what, encode_api(prefix, recorded), encode_api(prefix, client))

    def _derive_channels(self) -> None:
        for initiator, nonce, responder in self.creates:
            if initiator in self.ids and responder in self.ids:
                rec = channel_pubkey(initiator, nonce, responder)
                if rec not in self.ids:
                    self._learn(rec, channel_pubkey(self.ids[initiator], nonce, self.ids[responder]),
                                f"channel_id (nonce {nonce})")

    def mapping(self) -> list[tuple[str, str]]:
        """Every mapping learnt so far as ``(recorded, client)`` texts (ids, then signatures)."""
        out = [(encode_api(self._prefixes[rec], rec), encode_api(self._prefixes[rec], got))
               for rec, got in self.ids.items()]
        out += [(encode_api("sg", r), encode_api("sg", g)) for r, g in self.signatures.items()]
        return out

    def signed(self, role: str, expected: Expected, arrival: Arrival | None) -> str | None:
        """After a client frame matched ``expected`` (already mapped): when it is a sign reply, check the
        signature the client added and learn it. ``None`` when fine, else one sentence."""
        if arrival is None or not expected.is_json or declined(expected.data):
            return None
        want = signed_blob(expected.data)
        got = signed_blob(arrival.data) if arrival.is_json else None
        if want is None or got is None:
            return None
        try:
            rec_sigs = [s.payload for s in decode(want)["signatures"]]
            got_tree = decode(got)
            got_sigs = [s.payload for s in got_tree["signatures"]]
        except (DecodeError, KeyError, RecursionError, AttributeError):
            return "--rebind: the signed_tx of the sign reply does not decode as a signed_tx"
        inner = strip_signatures(got)
        account = self.accounts.get(role)
        known_got = set(self.signatures.values())
        if account is None or inner is None:
            return None
        digest = hashlib.blake2b(inner, digest_size=32).digest()
        ids = (self.network_id,) if self.network_id else self.network_ids

        def verifies(sig: bytes) -> str | None:
            return next((n for n in ids if _verify(account, sig, n.encode() + digest)), None)

        mine = None
        for sig in got_sigs:
            if sig in known_got:  # a signature the node forwarded (the other participant's, or signed before)
                continue
            network_id = verifies(sig)
            if network_id is None:
                return (f"--rebind: a signature in the signed_tx does not verify for the {role}'s account "
                        f"{encode_api('ak', account)} (network id {' or '.join(ids)})")
            self.network_id, mine = network_id, sig
        if mine is None:  # the same transaction signed again (Ed25519 signatures are deterministic)
            mine = next((sig for sig in got_sigs if verifies(sig) is not None), None)
            if mine is None:
                return (f"--rebind: the sign reply carries no signature of the {role} "
                        f"({encode_api('ak', account)}) over the transaction")
        rec_new = [s for s in rec_sigs if s not in self.signatures and s not in known_got]
        if len(rec_new) == 1 and mine not in known_got:
            self.signatures[rec_new[0]] = mine
            self._cache.clear()
            log.info("session %d: rebind %s signature: %s -> %s", self.session, role,
                     encode_api("sg", rec_new[0])[:16], encode_api("sg", mine)[:16])
        return None

    # -- applying

    def expected(self, expected: Expected, fmt: str | None) -> Expected:
        """``expected`` (a recorded client frame) with the mapping applied (the same object when nothing
        changes)."""
        if not expected.is_json:
            return expected
        data = self.map_json(expected.data)
        if data is expected.data:
            return expected
        return Expected(expected.number, dump_json(data, fmt or "compact"), data, True, expected.method)

    def map_json(self, data: Any) -> Any:
        """Parsed JSON with every mapped value replaced: ``ak_``/``ch_`` strings, ``tx_`` blobs
        (re-encoded); the same object when nothing changes."""
        if isinstance(data, dict):
            changed = {k: self.map_json(v) for k, v in data.items()}
            if self.followed and "account" in data and "balance" in data:
                self._follow_balance(data, changed)
            return changed if any(changed[k] is not data[k] for k in data) else data
        if isinstance(data, list):
            items = [self.map_json(v) for v in data]
            return items if any(a is not b for a, b in zip(items, data, strict=True)) else data
        if isinstance(data, str) and (self.ids or self.signatures):
            return self.map_text(data)
        return data

    def _follow_balance(self, data: dict[str, Any], changed: dict[str, Any]) -> None:
        """A ``{"account": ak_…, "balance": N}`` entry (``channels.get.balances``) of a recorded participant:
        the balance shifted as :meth:`balance_deltas` says."""
        account = _payload(data["account"], "ak")
        recorded = self._recorded_roles()
        if account not in recorded:
            return
        delta = self.balance_deltas()[0 if recorded[account] == "initiator" else 1]
        balance = data["balance"]
        if delta and isinstance(balance, int) and not isinstance(balance, bool):
            changed["balance"] = balance + delta
        elif delta and isinstance(balance, str) and balance.isdigit():
            changed["balance"] = str(int(balance) + delta)

    def _recorded_roles(self) -> dict[bytes, str]:
        out: dict[bytes, str] = {}
        for initiator, _, responder in self.creates:
            out.setdefault(initiator, "initiator")
            out.setdefault(responder, "responder")
        return out

    def map_text(self, text: str) -> str:
        """One string: an id or a ``tx_`` blob mapped, anything else unchanged (the same object)."""
        prefix = text[:3]
        if prefix not in ("ak_", "ch_", "tx_"):
            return text
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        out = text
        if prefix == "tx_":
            try:
                tree = decode(text)
                mapped = self._map_decoded(tree)
                if mapped is not tree:
                    out = encode(mapped)
            except (DecodeError, RecursionError):
                out = text
        else:
            payload = _payload(text, prefix[:2])
            if payload is not None and payload in self.ids:
                out = encode_api(prefix[:2], self.ids[payload])
        self._cache[text] = out
        return out

    def _map_decoded(self, obj: Decoded) -> Decoded:
        if obj.error is not None or obj.type is None or any(p in obj.type for p in PASS_THROUGH):
            return obj
        changes = {}
        for name, value in obj.fields.items():
            if obj.type == "signed_tx" and name == "signatures":
                new = tuple(ApiValue(s.prefix, self.signatures[s.payload]) if s.payload in self.signatures else s
                            for s in value)
                if any(a is not b for a, b in zip(new, value, strict=True)):
                    changes[name] = new
                continue
            mapped = self._map_value(value)
            if mapped is not value:
                changes[name] = mapped
        if self.followed:
            self._follow_fields(obj, changes)
        return obj.with_fields(**changes) if changes else obj

    def _follow_fields(self, obj: Decoded, changes: dict[str, Any]) -> None:
        """The followed URL parameters in ``obj``'s fields (into ``changes``)."""
        if obj.type == "channel_create_tx":
            for name in ("initiator_amount", "responder_amount"):
                if self._delta(name):
                    changes[name] = int(obj[name]) + self._delta(name)
            for name in ("channel_reserve", "lock_period"):
                if name in self.followed:
                    changes[name] = self.followed[name][1]
        elif obj.type in BALANCE_TXS:
            d_initiator, d_responder = self.balance_deltas()
            if d_initiator:
                changes["initiator_amount_final"] = int(obj["initiator_amount_final"]) + d_initiator
            if d_responder:
                changes["responder_amount_final"] = int(obj["responder_amount_final"]) + d_responder

    def _map_value(self, value: Any) -> Any:
        if isinstance(value, ApiValue):
            if value.prefix in MAPPED_PREFIXES and value.payload in self.ids:
                return ApiValue(value.prefix, self.ids[value.payload])
            return value
        if isinstance(value, Decoded):
            return self._map_decoded(value)
        if isinstance(value, tuple):
            items = tuple(self._map_value(v) for v in value)
            return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
        if isinstance(value, Mapping):
            items = {k: self._map_value(v) for k, v in value.items()}
            return items if any(items[k] is not value[k] for k in value) else value
        return value


def _query(cs: ConnScript) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(cs.query, keep_blank_values=True)
