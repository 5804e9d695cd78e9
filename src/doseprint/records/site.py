"""The site chain: the store's own signed, append-only trail of what is not one batch.

People (added, changed, disabled, passwords set), failed log-ins and locked accounts, the
site policy, material lots received, approved formulations, record heads sealed and
anchors exported: each is one :class:`SiteEvent` in the ``site_events`` table, chained by
hash like a record's events (:func:`~doseprint.records.chain.event_hash`, with the
record id ``"site"``) and signed by whoever did it (:mod:`doseprint.records.signing`).
Only a failed log-in and the lock it may cause are unsigned: nobody signed in.

What the store's people and policy are is derived from this chain, never kept in a
table that could be updated: :mod:`doseprint.records.people` folds it.

The functions here take an open :class:`~doseprint.records.dialect.Database` inside a
transaction of :class:`~doseprint.records.store.RecordStore`, which calls them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard, get_args

from doseprint.job.keys import PublicKey
from doseprint.records.chain import canonical_json, event_hash
from doseprint.records.dialect import Database
from doseprint.records.signing import SITE_SIGNER, KeyRing, Signer, signature_problem
from doseprint.records.values import GENESIS_HASH, JsonDict

__all__ = [
    "SITE_CHAIN_ID",
    "SITE_KINDS",
    "UNSIGNED_SITE_KINDS",
    "SiteEvent",
    "SiteKind",
    "append_site_event",
    "is_site_kind",
    "key_ring",
    "read_site_events",
    "verify_site_events",
]

SITE_CHAIN_ID = "site"
"""The record id the site chain's hashes are computed with."""

SiteKind = Literal[
    "user_added",
    "user_changed",
    "user_disabled",
    "user_enabled",
    "password_set",
    "login_failed",
    "account_locked",
    "signed_in",
    "policy_set",
    "lot_received",
    "lot_blocked",
    "formulation_approved",
    "formulation_withdrawn",
    "head_sealed",
    "anchor_exported",
    "print_refused",
]
"""Every kind of site event."""

SITE_KINDS: tuple[SiteKind, ...] = get_args(SiteKind)

UNSIGNED_SITE_KINDS: frozenset[str] = frozenset({"login_failed", "account_locked"})
"""Kinds doseprint writes on nobody's behalf: a failed log-in, and the lock it causes."""

_COLUMNS = "seq, utc, actor, kind, data, prev_hash, hash, key_id, signature"


def is_site_kind(text: str) -> TypeGuard[SiteKind]:
    return text in SITE_KINDS


@dataclass(frozen=True)
class SiteEvent:
    """One entry of the site chain (fields as stored; ``data`` parsed)."""

    seq: int
    utc: str
    actor: str
    kind: str
    data: JsonDict
    prev_hash: str
    hash: str
    key_id: str
    signature: str

    def to_json(self) -> JsonDict:
        return {"seq": self.seq, "utc": self.utc, "actor": self.actor, "kind": self.kind,
                "data": self.data, "prev_hash": self.prev_hash, "hash": self.hash,
                "key_id": self.key_id, "signature": self.signature}


def _from_row(row: Sequence[Any]) -> SiteEvent:
    seq, utc, actor, kind, data, prev_hash, digest, key_id, signature = row
    try:
        parsed = json.loads(data)
    except (TypeError, ValueError):
        parsed = {"unreadable": str(data)}
    if not isinstance(parsed, dict):
        parsed = {"unreadable": str(data)}
    return SiteEvent(int(seq), str(utc), str(actor), str(kind), parsed, str(prev_hash),
                     str(digest), str(key_id), str(signature))


def read_site_events(conn: Database, kinds: Iterable[str] | None = None) -> list[SiteEvent]:
    """The site chain in order (only the given kinds, when named)."""
    if kinds is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM site_events ORDER BY seq")
    else:
        wanted = tuple(kinds)
        marks = ", ".join("?" for _ in wanted)
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM site_events WHERE kind IN ({marks}) ORDER BY seq", wanted)
    return [_from_row(row) for row in rows]


def append_site_event(
    conn: Database,
    utc: str,
    kind: SiteKind,
    data: Mapping[str, Any],
    actor: str,
    signer: Signer | None,
) -> SiteEvent:
    """Append one event to the site chain (inside a write transaction).

    ``signer`` signs it; None only for :data:`UNSIGNED_SITE_KINDS`. The chain is locked
    for the rest of the transaction, so concurrent writers never fork it.
    """
    if not is_site_kind(kind):
        raise ValueError(f"not a site event kind: {kind!r}")
    if signer is None and kind not in UNSIGNED_SITE_KINDS:
        raise ValueError(f"a {kind!r} site event must be signed")
    if signer is not None and signer.user_id != actor:
        raise ValueError(f"{actor!r} cannot sign as {signer.user_id!r}")
    conn.lock_chain(SITE_CHAIN_ID)
    row = conn.execute("SELECT seq, hash FROM site_events ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev_hash = (int(row[0]) + 1, str(row[1])) if row else (0, GENESIS_HASH)
    parsed: JsonDict = json.loads(canonical_json(dict(data)))
    digest = event_hash(SITE_CHAIN_ID, seq, utc, actor, kind, parsed, prev_hash)
    key_id = signer.key_id if signer else ""
    signature = signer.sign(digest) if signer else ""
    conn.execute(
        f"INSERT INTO site_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, utc, actor, kind, canonical_json(parsed), prev_hash, digest, key_id, signature),
    )
    return SiteEvent(seq, utc, actor, kind, parsed, prev_hash, digest, key_id, signature)


def key_ring(events: Iterable[SiteEvent], site_keys: Iterable[PublicKey] = ()) -> KeyRing:
    """Every public key of the site chain (people's, as their accounts were made and
    their passwords set) and the given site keys."""
    from doseprint.job.keys import decode_public_key

    keys: dict[str, tuple[str, PublicKey]] = {}
    for key in site_keys:
        keys[key.fingerprint] = (SITE_SIGNER, key)
    for event in events:
        if event.kind not in ("user_added", "password_set"):
            continue
        text = event.data.get("public_key")
        user = event.data.get("user")
        if not isinstance(user, str):
            continue
        try:
            raw = decode_public_key(text, file="site chain", key="public_key")
        except Exception:
            continue
        public = PublicKey(raw)
        keys.setdefault(public.fingerprint, (user, public))
    return KeyRing(keys)


def verify_site_events(events: Sequence[SiteEvent], ring: KeyRing) -> list[str]:
    """The site chain's problems: broken order or links, altered hashes, missing or bad
    signatures. Empty when it verifies."""
    problems: list[str] = []
    prev = GENESIS_HASH
    for expected, event in enumerate(events):
        where = f"site event {event.seq} ({event.kind} at {event.utc})"
        if event.seq != expected:
            problems.append(f"{where}: expected site event {expected} here (one was removed)")
            return problems
        if "unreadable" in event.data and len(event.data) == 1:
            problems.append(f"{where}: data is not a JSON object (altered)")
            return problems
        if event.prev_hash != prev:
            problems.append(f"{where}: does not follow the site event before it (altered)")
            return problems
        digest = event_hash(SITE_CHAIN_ID, event.seq, event.utc, event.actor, event.kind,
                            event.data, event.prev_hash)
        if digest != event.hash:
            problems.append(f"{where}: its content does not match its hash (altered)")
            return problems
        if not is_site_kind(event.kind):
            problems.append(f"{where}: not a doseprint site event (altered)")
            return problems
        if not event.signature:
            if event.kind not in UNSIGNED_SITE_KINDS:
                problems.append(f"{where}: is not signed (altered)")
        else:
            why = signature_problem(ring, event.actor, event.key_id, event.signature,
                                    event.hash)
            if why is not None:
                problems.append(f"{where}: {why}")
        prev = event.hash
    return problems
