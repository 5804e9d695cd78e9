"""Anchors: the store's record heads, signed by the site key, kept outside the database.

A hash chain proves order, not that nothing was cut off its end: whoever can write the
database can delete a record's last events, or a whole record, and what is left still
chains. An anchor is the defence: ``record anchor export`` writes every record's head
(its last event's seq and hash) and the site chain's head into a JSON file signed with
the site key (``doseprint.anchor/1``); the site keeps it somewhere the database's
administrators cannot write (another machine, write-once media, the quality lead's
mail). ``record verify --anchor FILE`` then checks that every head in it is still in the
store, unchanged, and that no record created before it is missing from it::

    {"schema": "doseprint.anchor/1", "utc": "…Z", "exported_by": "qa",
     "site_chain": {"seq": 41, "hash": "…"},
     "records": [{"id": "…", "created_utc": "…", "seq": 17, "hash": "…"}, …],
     "key": {"fingerprint": "…", "public_key": "<base64>"},
     "signature": "<base64 Ed25519 of the canonical JSON of everything else>"}

The export is itself a signed act (an ``anchor_exported`` site event with the file's
hash), so the store also knows when anchors were taken.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from doseprint.errors import InputError
from doseprint.job.keys import PublicKey, Trust
from doseprint.records.chain import canonical_json, sha256_text
from doseprint.records.signing import Signer
from doseprint.records.store import RecordStore

__all__ = ["ANCHOR_SCHEMA", "anchor_problems", "make_anchor", "read_anchor"]

ANCHOR_SCHEMA = "doseprint.anchor/1"
MAX_ANCHOR_BYTES = 256 * 1024 * 1024


def make_anchor(store: RecordStore, by: Signer, site: Signer, site_public: PublicKey) -> bytes:
    """The signed anchor of the store as it is now (and the export put on record)."""
    site_events = store.site_events()
    head = site_events[-1] if site_events else None
    body: dict[str, Any] = {
        "schema": ANCHOR_SCHEMA,
        "utc": store.now_utc(),
        "exported_by": by.user_id,
        "site_chain": {"seq": head.seq if head else -1, "hash": head.hash if head else ""},
        "records": [{"id": rid, "created_utc": created, "seq": seq, "hash": digest}
                    for rid, created, seq, digest in store.heads()],
        "key": {"fingerprint": site_public.fingerprint, "public_key": site_public.base64},
    }
    text = canonical_json(body)
    signed = dict(body, signature=site.sign(sha256_text(text)))
    data = (json.dumps(signed, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    store.append_site("anchor_exported",
                      {"sha256": sha256_text(text), "records": len(body["records"]),
                       "site_chain": body["site_chain"]}, by.user_id, by)
    return data


def read_anchor(path: Path) -> dict[str, Any]:
    """An anchor file's JSON (its signature is checked by :func:`anchor_problems`).

    Raises
    ------
    InputError
        Missing, unreadable, too large, not JSON or not an anchor.
    """
    try:
        if path.stat().st_size > MAX_ANCHOR_BYTES:
            raise InputError("is too large to be an anchor", file=str(path))
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", file=str(path), key="--anchor") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"is not readable JSON ({exc})", file=str(path),
                         key="--anchor") from None
    if not isinstance(data, dict) or data.get("schema") != ANCHOR_SCHEMA:
        raise InputError(f"is not an anchor ({ANCHOR_SCHEMA})", file=str(path),
                         key="schema")
    return data


def _signature_problem(anchor: Mapping[str, Any], trust: Trust) -> str | None:
    key = anchor.get("key")
    signature = anchor.get("signature")
    if not isinstance(key, dict) or not isinstance(signature, str):
        return "the anchor has no key or signature"
    fingerprint = str(key.get("fingerprint", ""))
    found = trust.find(fingerprint)
    if found is None:
        return (f"the anchor is signed by a key this installation does not trust "
                f"({fingerprint[:16]}…); trust the site's key with `doseprint key trust`")
    public, _ = found
    body = {k: v for k, v in anchor.items() if k != "signature"}
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return "the anchor's signature is not base64 (altered)"
    if not public.verifies(raw, sha256_text(canonical_json(body)).encode("ascii")):
        return "the anchor's signature does not match its content (the file was altered)"
    return None


def anchor_problems(store: RecordStore, anchor: Mapping[str, Any], trust: Trust) -> list[str]:
    """What in the store no longer matches a signed anchor: a head that is gone or
    changed (last events deleted, a record deleted, events edited and re-chained), the
    site chain cut or changed, a record created before the anchor that it does not list.
    A bad or untrusted signature is the only problem reported when there is one."""
    why = _signature_problem(anchor, trust)
    if why is not None:
        return [why]
    taken = str(anchor.get("utc", ""))
    problems: list[str] = []
    listed: set[str] = set()
    records = anchor.get("records")
    for entry in records if isinstance(records, list) else []:
        record_id, seq, digest = (entry.get(k) for k in ("id", "seq", "hash"))
        listed.add(str(record_id))
        hashes = store.stored_hashes(str(record_id))
        if hashes is None:
            problems.append(f"record {record_id}: in the anchor of {taken}, gone from the "
                            "store (deleted)")
        elif seq not in hashes:
            problems.append(f"record {record_id}: its event {seq}, its head in the anchor of "
                            f"{taken}, is gone (events deleted)")
        elif hashes[seq] != digest:
            problems.append(f"record {record_id}: event {seq} differs from the anchor of "
                            f"{taken} (altered and re-chained)")
    for record_id, created, _, _ in store.heads():
        if created <= taken and record_id not in listed:
            problems.append(f"record {record_id}: created {created}, before the anchor of "
                            f"{taken}, which does not list it (added afterwards)")
    head = anchor.get("site_chain")
    if isinstance(head, dict) and isinstance(head.get("seq"), int) and head["seq"] >= 0:
        by_seq = {e.seq: e.hash for e in store.site_events()}
        if by_seq.get(head["seq"]) != head.get("hash"):
            problems.append(f"the site chain's event {head['seq']}, its head in the anchor of "
                            f"{taken}, is gone or changed (people, lots or seals altered)")
    return problems
