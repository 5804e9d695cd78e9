"""A record as frozen values: its events, its signature, its line in a list.

A record (record.md) is written once with its ``content`` -- identity, job hashes,
tablets and doses, materials, machine -- and after that it only gains events. These
values are what the store returns (:mod:`doseprint.records.store`), what the lossless
JSON form reads back (:mod:`doseprint.records.export`) and what the chain check, the QC
and the batch report take; they hold no connection and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from doseprint.records.states import (
    DECISION_KINDS,
    ENDED_KINDS,
    LOG_KINDS,
    DecisionKind,
    EventKind,
    RecordState,
    derive_status,
)

__all__ = [
    "GENESIS_HASH",
    "Event",
    "JsonDict",
    "Record",
    "RecordSummary",
    "Signature",
    "content_text",
    "last_acked",
    "signer_shown",
]

JsonDict: TypeAlias = dict[str, Any]
"""A JSON object as Python reads it: str keys; values str, int, float, bool, None,
lists and further objects."""

GENESIS_HASH = "0" * 64
"""``prev_hash`` of every record's event 0 (:mod:`doseprint.records.chain`)."""


@dataclass(frozen=True)
class Event:
    """One entry of a record's audit trail.

    Attributes
    ----------
    record_id : str
        The record it belongs to (UUID).
    seq : int
        Its place in the record, 0, 1, 2 … without gaps.
    utc : str
        When it was written, ISO 8601 UTC with milliseconds and ``Z``.
    actor : str
        Who did it: the operator's or signer's name, or ``"doseprint"``.
    kind : EventKind
        What happened.
    data : dict
        The details, JSON.
    prev_hash, hash : str
        The previous event's hash (:data:`GENESIS_HASH` for event 0) and this event's
        own.
    """

    record_id: str
    seq: int
    utc: str
    actor: str
    kind: EventKind
    data: JsonDict
    prev_hash: str
    hash: str


def signer_shown(event: Event) -> str:
    """Who did an event as a person reads it: ``Printed Name (user id)`` for a signed
    act, else the actor as recorded."""
    name = event.data.get("signer_name")
    if isinstance(name, str) and name.strip() and name.strip() != event.actor:
        return f"{name.strip()} ({event.actor})"
    return event.actor


@dataclass(frozen=True)
class Signature:
    """A release or rejection as it must be shown: who, when, what it means."""

    kind: DecisionKind
    by: str
    utc: str
    meaning: str
    event_hash: str


@dataclass(frozen=True)
class Record:
    """A batch-of-one record: its content, written once, and every event since.

    Attributes
    ----------
    id : str
        The record id (UUID4, lower case).
    created_utc : str
        When it was created (event 0).
    content : dict
        What was prescribed and made, as the print command built it. By convention
        ``content["prescription"]`` holds ``id`` and ``patient``.
    content_sha256 : str
        The SHA-256 of the content's canonical JSON, as stored.
    events : tuple of Event
        The audit trail in order.
    """

    id: str
    created_utc: str
    content: JsonDict
    content_sha256: str
    events: tuple[Event, ...]

    @property
    def status(self) -> RecordState:
        """The status the events lead to (:mod:`doseprint.records.states`)."""
        return derive_status(self.events)

    @property
    def prescription_id(self) -> str:
        """``content["prescription"]["id"]``, or "" when the content has none."""
        return content_text(self.content, "id")

    @property
    def patient(self) -> str:
        """``content["prescription"]["patient"]``, or "" when the content has none."""
        return content_text(self.content, "patient")

    @property
    def head_hash(self) -> str:
        """The hash of the last event: anchor it outside the store to pin the record."""
        return self.events[-1].hash if self.events else GENESIS_HASH

    @property
    def started_utc(self) -> str | None:
        """When the print started, or None if it never did."""
        for event in self.events:
            if event.kind == "started":
                return event.utc
        return None

    @property
    def ended_utc(self) -> str | None:
        """When the print completed, failed, was aborted or found interrupted."""
        for event in reversed(self.events):
            if event.kind in ENDED_KINDS:
                return event.utc
        return None

    @property
    def signature(self) -> Signature | None:
        """The latest release or rejection, or None while nobody has decided."""
        for event in reversed(self.events):
            if event.kind in DECISION_KINDS:
                kind: DecisionKind = (
                    "released" if event.kind == "released" else "rejected"
                )
                return Signature(
                    kind=kind,
                    by=signer_shown(event),
                    utc=event.utc,
                    meaning=str(event.data.get("meaning", "")),
                    event_hash=event.hash,
                )
        return None

    @property
    def last_acked(self) -> int | None:
        """The last G-code line the firmware acknowledged, from the latest log event."""
        return last_acked(reversed(self.events))


@dataclass(frozen=True)
class RecordSummary:
    """One line of ``doseprint record list``."""

    id: str
    created_utc: str
    prescription_id: str
    patient: str
    status: RecordState


def content_text(content: Mapping[str, Any], key: str) -> str:
    """``content["prescription"][key]`` when it is text, else "".

    The store copies the prescription id and patient into its listing with this, and
    the chain check compares the copies with it.
    """
    prescription = content.get("prescription")
    if isinstance(prescription, Mapping):
        value = prescription.get(key)
        if isinstance(value, str):
            return value
    return ""


def last_acked(newest_first: Iterable[Event]) -> int | None:
    """``last_acked`` of the first print-log event (``progress``, ``lines``) that has one.

    Parameters
    ----------
    newest_first : iterable of Event
        A record's events, latest first (the latest log entry that says counts).

    Returns
    -------
    int or None
        None when no log event carries an integer ``last_acked``.
    """
    for event in newest_first:
        if event.kind in LOG_KINDS:
            value = event.data.get("last_acked")
            if isinstance(value, int) and not isinstance(value, bool):
                return value
    return None
