"""The hash chain that makes a record tamper-evident, and its check.

Each event carries the hash of the event before it, and its own ``hash`` is the SHA-256
of the canonical JSON (sorted keys, no spaces, non-ASCII as ``\\u`` escapes; Python's
``json.dumps(v, sort_keys=True, separators=(",", ":"))``) of::

    {"record_id", "seq", "utc", "actor", "kind", "data", "prev_hash"}

Event 0 is ``created``; its data holds ``content_sha256``, the SHA-256 of the canonical
JSON of the content, so the content is covered by the chain too. Event 0's ``prev_hash``
is 64 zeros (:data:`~doseprint.records.values.GENESIS_HASH`). :func:`verify_record`
recomputes all of it, and checks that the events follow the rules of
:mod:`doseprint.records.states` (the status transitions, and the investigation of a failed
QC).

What the chain cannot show on its own: someone with write access who recomputes every
hash after a change, and the removal of a record's *last* events (or of a whole record).
Anchor a record's head hash outside the store (the batch report prints it) where that
matters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from doseprint.records.states import (
    QcStanding,
    RecordState,
    is_event_kind,
    qc_step_problem,
    state_after,
    transition_problem,
)
from doseprint.records.values import GENESIS_HASH, Event, Record

__all__ = [
    "canonical_json",
    "content_hash",
    "event_hash",
    "sha256_text",
    "verify_record",
]


def canonical_json(value: Any) -> str:
    """Serialise a JSON value canonically: sorted keys, no spaces, ASCII only.

    Non-ASCII characters are written as ``\\uXXXX`` escapes, so the text (and its hash)
    is the same whatever the storage encoding, and even a stray surrogate from a
    garbled serial line can be stored.

    Parameters
    ----------
    value : JSON value
        Dicts with str keys, lists, str, int, float (finite), bool and None.

    Returns
    -------
    str
        The same text for equal values, whatever the key order or tuple/list choice.

    Raises
    ------
    TypeError, ValueError
        ``value`` is not JSON (a set, an object, NaN or infinity): a bug in the caller.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def sha256_text(text: str) -> str:
    """SHA-256 (hex) of a canonical JSON text (ASCII, as :func:`canonical_json` writes)."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of a record's content in canonical JSON."""
    return sha256_text(canonical_json(content))


def event_hash(
    record_id: str,
    seq: int,
    utc: str,
    actor: str,
    kind: str,
    data: Mapping[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) that chains one event: all its fields but ``hash`` itself.

    Parameters
    ----------
    record_id, seq, utc, actor, kind, data, prev_hash
        The event's fields, as stored.

    Returns
    -------
    str
        64 hex digits.
    """
    return sha256_text(
        canonical_json(
            {
                "record_id": record_id,
                "seq": seq,
                "utc": utc,
                "actor": actor,
                "kind": kind,
                "data": data,
                "prev_hash": prev_hash,
            }
        )
    )


def _describe(event: Event) -> str:
    """How a problem names an event: ``event 3 (lines at 2026-…Z)``."""
    return f"event {event.seq} ({event.kind} at {event.utc})"


def verify_record(record: Record) -> list[str]:
    """Check one record's content hash and event chain.

    Parameters
    ----------
    record : Record
        As read from a store or from :func:`~doseprint.records.export.record_from_json`.
        An event whose kind is not a doseprint kind (a stored row altered by hand) is
        reported after the checks of its place, links and hash.

    Returns
    -------
    list of str
        Problems, each naming the record and the first event that does not match (the
        check of a record stops there, since everything after it depends on it). Empty
        when the record is intact.
    """
    name = f"record {record.id}"
    problems: list[str] = []
    recomputed = content_hash(record.content)
    if recomputed != record.content_sha256:
        problems.append(f"{name}: its content does not match its stored hash (altered)")
        return problems
    if not record.events:
        problems.append(f"{name}: has no events (its 'created' event was removed)")
        return problems
    first = record.events[0]
    if first.seq == 0 and first.kind != "created":
        problems.append(f"{name}: {_describe(first)} should be 'created'")
        return problems
    if first.seq == 0 and first.data.get("content_sha256") != recomputed:
        problems.append(
            f"{name}: its content does not match the hash in {_describe(first)} (altered)"
        )
        return problems
    if first.seq == 0 and first.utc != record.created_utc:
        problems.append(f"{name}: created_utc {record.created_utc} differs from event 0")
        return problems
    prev = GENESIS_HASH
    state: RecordState = "created"
    standing = QcStanding()
    for expected_seq, event in enumerate(record.events):
        where = f"{name}: {_describe(event)}"
        if event.record_id != record.id:
            problems.append(f"{where}: belongs to record {event.record_id}")
            break
        if event.seq != expected_seq:
            problems.append(
                f"{name}: event {expected_seq} is missing (the next stored event is "
                f"{event.seq}): events were removed"
            )
            break
        if event.prev_hash != prev:
            problems.append(
                f"{where}: its prev_hash does not match event {event.seq - 1} "
                "(an earlier event was altered or removed)"
            )
            break
        recomputed_hash = event_hash(
            event.record_id, event.seq, event.utc, event.actor, event.kind, event.data, prev
        )
        if recomputed_hash != event.hash:
            problems.append(f"{where}: its hash does not match its contents (altered)")
            break
        if not is_event_kind(event.kind):
            problems.append(f"{where}: unknown kind '{event.kind}'")
            break
        if event.seq > 0:
            why = transition_problem(state, event.kind) or qc_step_problem(
                standing, event.kind
            )
            if why is not None:
                problems.append(f"{where}: not allowed here: {why}")
                break
        state = state_after(state, event.kind)
        standing = standing.after(event)
        prev = event.hash
    return problems
