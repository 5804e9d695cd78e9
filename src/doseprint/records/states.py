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

Quality control has rules of its own, on top of the status (:class:`QcStanding`, replayed
from the ``qc`` and investigation events):

* a failed QC is final: another ``qc`` is refused while the latest one failed, unless an
  investigation is open (:func:`retest_problem`); both results stay in the record;
* ``investigation_opened`` (data: ``reason``, ``failed_qc_seq``) only follows a failed
  latest QC, one investigation at a time; ``investigation_closed`` (data: ``outcome``,
  ``investigation_seq``) only while one is open (:func:`qc_step_problem`). Both are
  log-like: they leave the status ``completed`` and are allowed only on a completed
  record;
* a release needs a latest QC that passed and no open investigation
  (:func:`release_problem`).

The status rules and :func:`qc_step_problem` are checked when an event is appended
(:meth:`~doseprint.records.store.RecordStore.append`) and again when a chain is verified
(:func:`~doseprint.records.chain.verify_record`). :func:`retest_problem` is checked on
append only: records written before it existed may hold a second QC after a failed one,
and their chains are not altered for that. :func:`release_problem` is checked by the
store when it signs. This module holds only the vocabulary and the rules, so everything
else in :mod:`doseprint.records` builds on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, TypeGuard, get_args

from doseprint.typed import RecordStatus

__all__ = [
    "DECIDED_STATES",
    "DECISION_KINDS",
    "ENDED_KINDS",
    "EVENT_KINDS",
    "LOG_KINDS",
    "QC_STEP_KINDS",
    "STATUS_KINDS",
    "DecisionKind",
    "EventKind",
    "HasKind",
    "QcStanding",
    "RecordState",
    "StoredEvent",
    "derive_status",
    "is_event_kind",
    "qc_standing",
    "qc_step_problem",
    "release_problem",
    "retest_problem",
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
    "investigation_opened",
    "investigation_closed",
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
    # A failed QC is investigated before anybody signs; a rejection ends that too.
    "investigation_opened": frozenset({"completed"}),
    "investigation_closed": frozenset({"completed"}),
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

QC_STEP_KINDS: frozenset[EventKind] = frozenset(
    {"qc", "investigation_opened", "investigation_closed"}
)
"""The kinds :class:`QcStanding` follows, and whose rules need it."""

_KIND_SET = frozenset(EVENT_KINDS)


class HasKind(Protocol):
    """Anything with an event's ``kind`` (an :class:`~doseprint.records.values.Event`)."""

    @property
    def kind(self) -> EventKind: ...


class StoredEvent(HasKind, Protocol):
    """An event with its place and data (an :class:`~doseprint.records.values.Event`)."""

    @property
    def seq(self) -> int: ...

    @property
    def data(self) -> Mapping[str, Any]: ...


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


# ----------------------------------------------------------------------------------
# Quality control: a failed QC is final unless investigated


@dataclass(frozen=True)
class QcStanding:
    """Where a record's quality control stands after its ``qc`` and investigation events.

    Attributes
    ----------
    latest_qc_seq : int or None
        ``seq`` of the latest ``qc`` event; None before any.
    latest_qc_passed : bool or None
        Whether that QC passed (its ``data["passed"] is True``); None before any.
    investigation_seq : int or None
        ``seq`` of the ``investigation_opened`` event of the open investigation; None
        when none is open.
    """

    latest_qc_seq: int | None = None
    latest_qc_passed: bool | None = None
    investigation_seq: int | None = None

    @property
    def investigation_open(self) -> bool:
        """Whether an investigation is open."""
        return self.investigation_seq is not None

    @property
    def failed(self) -> bool:
        """Whether the latest QC failed."""
        return self.latest_qc_passed is False

    def after(self, event: StoredEvent) -> QcStanding:
        """The standing once ``event`` is added (unchanged for other kinds)."""
        if event.kind == "qc":
            passed = event.data.get("passed") is True
            return QcStanding(event.seq, passed, self.investigation_seq)
        if event.kind == "investigation_opened":
            return QcStanding(self.latest_qc_seq, self.latest_qc_passed, event.seq)
        if event.kind == "investigation_closed":
            return QcStanding(self.latest_qc_seq, self.latest_qc_passed, None)
        return self


def qc_standing(events: Iterable[StoredEvent]) -> QcStanding:
    """The QC standing a record's events (in order) lead to."""
    standing = QcStanding()
    for event in events:
        standing = standing.after(event)
    return standing


def qc_step_problem(standing: QcStanding, kind: EventKind) -> str | None:
    """Why an investigation event of ``kind`` may not follow ``standing``, or None.

    An investigation is opened on a failed latest QC, one at a time, and closed only
    while open. Other kinds: None (see :func:`retest_problem` for ``qc``).
    """
    if kind == "investigation_opened":
        if standing.investigation_open:
            return (f"an investigation is already open (event {standing.investigation_seq}); "
                    "close it first")
        if standing.latest_qc_passed is None:
            return "there is no QC to investigate"
        if not standing.failed:
            return (f"the latest QC (event {standing.latest_qc_seq}) passed; an investigation "
                    "is opened on a failed QC")
    if kind == "investigation_closed" and not standing.investigation_open:
        return "no investigation is open"
    return None


def retest_problem(standing: QcStanding, kind: EventKind) -> str | None:
    """Why a ``qc`` may not follow ``standing`` (its latest QC failed and no investigation
    is open), or None. Checked on append only (see the module docstring)."""
    if kind == "qc" and standing.failed and not standing.investigation_open:
        return (f"the latest QC (event {standing.latest_qc_seq}) failed, and a failed QC is "
                "final: it can be weighed again only while an investigation is open")
    return None


def release_problem(standing: QcStanding) -> str | None:
    """Why a completed record with this QC standing may not be released, or None.

    The reason starts so that ``f"record {id} {reason}"`` reads: "has no QC", "failed
    QC …", "has an open investigation …".
    """
    if standing.latest_qc_passed is None:
        return "has no QC"
    if standing.failed:
        return f"failed QC (event {standing.latest_qc_seq})"
    if standing.investigation_open:
        return f"has an open investigation (event {standing.investigation_seq})"
    return None
