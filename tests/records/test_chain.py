"""The hash chain: an event's hash is the documented formula, so anyone can check it."""

from __future__ import annotations

import hashlib
import json

from doseprint.records.store import RecordStore

from .helpers import sample_content


def test_event_hash_is_the_documented_formula(store: RecordStore) -> None:
    """An outside verifier can recompute a hash from record.md's description alone."""
    record_id = store.create(sample_content(), "Ana Operator")
    event = store.append(record_id, "error", {"line": 12, "text": "Error:MINTEMP"}, "doseprint")
    canonical = json.dumps(
        {
            "record_id": record_id,
            "seq": 1,
            "utc": event.utc,
            "actor": "doseprint",
            "kind": "error",
            "data": {"line": 12, "text": "Error:MINTEMP"},
            "prev_hash": store.get(record_id).events[0].hash,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    assert event.hash == hashlib.sha256(canonical.encode()).hexdigest()
