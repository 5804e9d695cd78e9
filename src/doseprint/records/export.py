"""A record taken out of the store: its lossless JSON form.

The JSON form (:func:`record_to_json`) keeps every event with its hashes, so a record
exported to a file can be checked again on its own (:func:`record_from_json`, then
:func:`~doseprint.records.chain.verify_record`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from doseprint.errors import InputError
from doseprint.records.states import is_event_kind
from doseprint.records.values import Event, JsonDict, Record

__all__ = ["RECORD_SCHEMA", "record_from_json", "record_to_json"]

RECORD_SCHEMA = "doseprint.record/1"
"""``schema`` of the lossless JSON form (:func:`record_to_json`)."""



def _event_to_json(event: Event) -> JsonDict:
    return {
        "record_id": event.record_id,
        "seq": event.seq,
        "utc": event.utc,
        "actor": event.actor,
        "kind": event.kind,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def record_to_json(record: Record) -> JsonDict:
    """The lossless JSON form of a record (``record show --json``, ``record export``).

    Every event keeps its hashes, so the chain can be checked again from this alone
    (:func:`record_from_json` then :func:`~doseprint.records.chain.verify_record`).
    ``status`` is derived and given for the reader's convenience.

    Parameters
    ----------
    record : Record

    Returns
    -------
    dict
        ``{"schema", "id", "created_utc", "status", "content_sha256", "head_hash",
        "content", "events": [...]}``.
    """
    return {
        "schema": RECORD_SCHEMA,
        "id": record.id,
        "created_utc": record.created_utc,
        "status": record.status,
        "content_sha256": record.content_sha256,
        "head_hash": record.head_hash,
        "content": record.content,
        "events": [_event_to_json(event) for event in record.events],
    }


def record_from_json(document: Mapping[str, Any], *, source: str = "") -> Record:
    """Read back the output of :func:`record_to_json`.

    Parameters
    ----------
    document : mapping
        The parsed JSON.
    source : str
        The file it came from, for messages.

    Returns
    -------
    Record

    Raises
    ------
    InputError
        The document is not a record of a schema this version reads.
    """
    schema = document.get("schema")
    if schema != RECORD_SCHEMA:
        raise InputError(
            f"unknown record schema {schema!r} (this version reads {RECORD_SCHEMA})",
            file=source,
            key="schema",
        )
    try:
        events = []
        for item in document["events"]:
            kind = str(item["kind"])
            if not is_event_kind(kind):
                raise ValueError(f"unknown event kind {kind!r}")
            events.append(
                Event(
                    record_id=str(item["record_id"]),
                    seq=int(item["seq"]),
                    utc=str(item["utc"]),
                    actor=str(item["actor"]),
                    kind=kind,
                    data=dict(item["data"]),
                    prev_hash=str(item["prev_hash"]),
                    hash=str(item["hash"]),
                )
            )
        return Record(
            id=str(document["id"]),
            created_utc=str(document["created_utc"]),
            content=dict(document["content"]),
            content_sha256=str(document["content_sha256"]),
            events=tuple(events),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a complete doseprint record: {exc}", file=source) from exc
