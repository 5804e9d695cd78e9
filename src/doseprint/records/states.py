"""What can happen to a record, and the status its events lead to.

A record's status is derived from its events, never stored: the last status-changing
event decides. The transitions::

    created --started--> printing --completed|failed|aborted|interrupted--> <that>
    completed --released|rejected--> <that>;  failed/aborted/interrupted --rejected-->
    completed|failed|aborted|interrupted|released --superseded--> superseded

A print can also fail, be aborted or be found interrupted before it started (the port
would not open). ``qc`` (weighed tablets) follows a completed print only; log entries
(``progress``, ``lines``, ``firmware``, ``error``) are accepted until somebody has
released, rejected or superseded the record, and change nothing.

``superseded`` is written when the same prescription is printed again with a recorded
reason (:mod:`doseprint.records.prescriptions`): the earlier print is no longer the
prescription's batch and can never be released; a released one is recalled by it, as by
a rejection. A print still under way (``created``, ``printing``) cannot be superseded:
its own events would then be refused and its record lost. ``rejected`` and
``superseded`` are final.

The rules are checked when an event is appended
(:meth:`~doseprint.records.store.RecordStore.append`) and again when a chain is verified
(:func:`~doseprint.records.chain.verify_record`). This module holds only the vocabulary
and the rules, so everything else in :mod:`doseprint.records` builds on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, TypeAlias, TypeGuard, get_args

from doseprint.typed import RecordStatus

__all__ = [
    "DECIDED_STATES",
    "DECISION_KINDS",
    "ENDED_KINDS",
    "EVENT_KINDS",
    "LOG_KINDS",
    "STATUS_KINDS",
    "DecisionKind",
    "EventKind",
    "HasKind",
    "RecordState",
    "derive_status",
    "is_event_kind",
    "state_after",
    "transition_problem",
]

EventKind = Literal[
    "created",
    "started",
    "firmware",
    "progress",
    "lines",
    "error",
    "completed",
    "failed",
    "aborted",
    "interrupted",
    "released",
    "rejected",
    "qc",
    "superseded",
]
"""Every kind of event a record holds."""

EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
"""The kinds in :data:`EventKind`, in its order."""

DecisionKind = Literal["released", "rejected"]
"""The kinds that sign a record: a pharmacist's release or rejection."""

DECISION_KINDS: tuple[DecisionKind, ...] = get_args(DecisionKind)
"""The kinds in :data:`DecisionKind`."""

RecordState: TypeAlias = Literal["created"] | RecordStatus
"""A record's derived status: ``created`` until the print starts, then RecordStatus."""

# The status each status-changing kind leads to, and the statuses it may follow.
_STATE_AFTER: dict[EventKind, RecordState] = {
    "created": "created",
    "started": "printing",
    "completed": "completed",
    "failed": "failed",
    "aborted": "aborted",
    "interrupted": "interrupted",
    "released": "released",
    "rejected": "rejected",
    "superseded": "superseded",
}
_ALLOWED_FROM: dict[EventKind, frozenset[RecordState]] = {
    "started": frozenset({"created"}),
    "completed": frozenset({"printing"}),
    # A print can fail, be stopped or die before the printer said anything.
    "failed": frozenset({"created", "printing"}),
    "aborted": frozenset({"created", "printing"}),
    "interrupted": frozenset({"created", "printing"}),
    "released": frozenset({"completed"}),
    # QC weighs the tablets of a completed print, before anybody signs.
    "qc": frozenset({"completed"}),
    # A rejection closes any ended print, and also recalls a released one.
    "rejected": frozenset({"completed", "failed", "aborted", "interrupted", "released"}),
    # A later print of the prescription takes the place of an ended or released one.
    "superseded": frozenset({"completed", "failed", "aborted", "interrupted", "released"}),
}

STATUS_KINDS: tuple[EventKind, ...] = tuple(_STATE_AFTER)
"""The kinds that change a record's status (the store looks for the latest of these)."""

DECIDED_STATES: frozenset[RecordState] = frozenset({*DECISION_KINDS, "superseded"})
"""Statuses after which nothing more is logged: somebody has signed (a release, a
rejection, or a reprint's supersession)."""

ENDED_KINDS: frozenset[EventKind] = frozenset({"completed", "failed", "aborted", "interrupted"})
"""The kinds that end a print."""

LOG_KINDS: tuple[EventKind, ...] = ("progress", "lines")
"""The kinds of the print log, which carry ``last_acked``."""

_KIND_SET = frozenset(EVENT_KINDS)


class HasKind(Protocol):
    """Anything with an event's ``kind`` (an :class:`~doseprint.records.values.Event`)."""

    @property
    def kind(self) -> EventKind: ...


def is_event_kind(text: str) -> TypeGuard[EventKind]:
    """Whether ``text`` is one of :data:`EVENT_KINDS` (stored text is checked with it)."""
    return text in _KIND_SET


def state_after(state: RecordState, kind: EventKind) -> RecordState:
    """The status after an event of ``kind``: its own for a status-changing kind, else
    ``state`` unchanged."""
    return _STATE_AFTER.get(kind, state)


def derive_status(events: Iterable[HasKind]) -> RecordState:
    """The status a sequence of events leads to: that of the last status-changing one.

    Parameters
    ----------
    events : iterable of Event
        A record's events in order.

    Returns
    -------
    RecordState
        ``created`` when no event changes the status (or there are none).
    """
    state: RecordState = "created"
    for event in events:
        state = state_after(state, event.kind)
    return state


def transition_problem(state: RecordState, kind: EventKind) -> str | None:
    """Why an event of ``kind`` may not follow a record in ``state``, or None when it may.

    Parameters
    ----------
    state : RecordState
        The record's status before the event.
    kind : EventKind
        The event to add.

    Returns
    -------
    str or None
        A sentence for the user (the caller names the record and the event).
    """
    if kind == "created":
        return "'created' can only be a record's first event"
    allowed = _ALLOWED_FROM.get(kind)
    if allowed is None:
        # Log entries (progress, lines, firmware, error) until somebody decided.
        if state in DECIDED_STATES:
            return f"nothing more can be logged once a record is {state}"
        return None
    if state not in allowed:
        if kind == "released" and state == "superseded":
            return ("a superseded print is never released: a later print of its "
                    "prescription took its place")
        if kind == "released":
            return f"only a completed print can be released; this one is {state}"
        return f"'{kind}' cannot follow status '{state}'"
    return None
