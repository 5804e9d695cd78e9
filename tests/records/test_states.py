"""The status a record's events lead to, and which event may follow which.

The expected table is written out from record.md's status line (printing → completed |
failed | aborted | interrupted; then released or rejected by a named person) and the
store's rules (QC after a completed print, a rejection also recalls a released batch,
a reprint supersedes an ended or released print but never one under way, nothing logged
once somebody has signed; a failed QC is final unless investigated), not read from the
module under test.
"""

from __future__ import annotations

from typing import get_args

import pytest

from doseprint.records.states import (
    EVENT_KINDS,
    EventKind,
    QcStanding,
    RecordState,
    derive_status,
    qc_standing,
    qc_step_problem,
    release_problem,
    retest_problem,
    transition_problem,
)
from doseprint.records.values import Event

STATES: tuple[RecordState, ...] = (
    "created", "printing", "completed", "failed", "aborted", "interrupted", "released",
    "rejected", "superseded",
)
ENDED = {"completed", "failed", "aborted", "interrupted"}
SIGNED = {"released", "rejected", "superseded"}
ALLOWED_AFTER: dict[str, set[str]] = {
    "created": set(),  # only ever event 0
    "started": {"created"},
    "completed": {"printing"},
    "failed": {"created", "printing"},  # the port may not even open
    "aborted": {"created", "printing"},
    "interrupted": {"created", "printing"},
    "qc": {"completed"},
    # Investigating a failed QC happens before anybody signs.
    "investigation_opened": {"completed"},
    "investigation_closed": {"completed"},
    "released": {"completed"},
    "rejected": ENDED | {"released"},
    "superseded": ENDED | {"released"},
    # The print log is kept until somebody has signed.
    "firmware": set(STATES) - SIGNED,
    "progress": set(STATES) - SIGNED,
    "lines": set(STATES) - SIGNED,
    "error": set(STATES) - SIGNED,
}


def test_every_kind_is_in_the_table() -> None:
    assert set(EVENT_KINDS) == set(ALLOWED_AFTER) == set(get_args(EventKind))


@pytest.mark.parametrize("kind", EVENT_KINDS)
@pytest.mark.parametrize("state", STATES)
def test_transitions(state: RecordState, kind: EventKind) -> None:
    problem = transition_problem(state, kind)
    if state in ALLOWED_AFTER[kind]:
        assert problem is None
    else:
        assert problem is not None and problem.strip()


def _events(*kinds: EventKind) -> list[Event]:
    return [Event("r", n, "t", "a", kind, {}, "p", "h") for n, kind in enumerate(kinds)]


@pytest.mark.parametrize(
    ("kinds", "status"),
    [
        ((), "created"),
        (("created",), "created"),
        (("created", "started", "firmware", "lines", "progress"), "printing"),
        (("created", "started", "lines", "completed", "qc"), "completed"),
        (("created", "started", "completed", "qc", "released"), "released"),
        (("created", "started", "completed", "qc", "released", "rejected"), "rejected"),
        (("created", "failed"), "failed"),
        (("created", "started", "error", "interrupted"), "interrupted"),
        (("created", "failed", "superseded"), "superseded"),
        (("created", "started", "completed", "qc", "released", "superseded"), "superseded"),
    ],
)
def test_status_is_that_of_the_last_status_changing_event(
    kinds: tuple[EventKind, ...], status: RecordState
) -> None:
    assert derive_status(_events(*kinds)) == status


def _qc_steps(*steps: str) -> list[Event]:
    """Events after a completed print: "pass"/"fail" a QC, "open"/"close" an
    investigation."""
    kinds: dict[str, tuple[EventKind, dict[str, object]]] = {
        "pass": ("qc", {"passed": True}),
        "fail": ("qc", {"passed": False}),
        "open": ("investigation_opened", {"reason": "r"}),
        "close": ("investigation_closed", {"outcome": "o"}),
    }
    head: list[Event] = _events("created", "started", "completed")
    return head + [Event("r", 3 + n, "t", "a", kinds[step][0], kinds[step][1], "p", "h")
                   for n, step in enumerate(steps)]


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ((), QcStanding()),
        (("pass",), QcStanding(3, True, None)),
        (("fail",), QcStanding(3, False, None)),
        (("fail", "open"), QcStanding(3, False, 4)),
        (("fail", "open", "pass"), QcStanding(5, True, 4)),
        (("fail", "open", "pass", "close"), QcStanding(5, True, None)),
        (("fail", "open", "fail", "close"), QcStanding(5, False, None)),
    ],
)
def test_qc_standing_follows_qc_and_investigations(
    steps: tuple[str, ...], expected: QcStanding
) -> None:
    assert qc_standing(_qc_steps(*steps)) == expected


@pytest.mark.parametrize(
    ("steps", "kind", "allowed"),
    [
        # A failed QC is final: weighed again only while an investigation is open.
        ((), "qc", True),
        (("pass",), "qc", True),
        (("fail",), "qc", False),
        (("fail", "open"), "qc", True),
        (("fail", "open", "fail"), "qc", True),
        (("fail", "open", "fail", "close"), "qc", False),
        (("fail", "open", "pass", "close"), "qc", True),
        # An investigation is opened on a failed latest QC, one at a time.
        ((), "investigation_opened", False),
        (("pass",), "investigation_opened", False),
        (("fail",), "investigation_opened", True),
        (("fail", "open"), "investigation_opened", False),
        (("fail", "open", "fail", "close"), "investigation_opened", True),
        (("fail", "open", "pass", "close"), "investigation_opened", False),
        # ... and closed only while open.
        ((), "investigation_closed", False),
        (("fail",), "investigation_closed", False),
        (("fail", "open"), "investigation_closed", True),
        (("fail", "open", "pass"), "investigation_closed", True),
        (("fail", "open", "close"), "investigation_closed", False),
    ],
)
def test_qc_steps_allowed(steps: tuple[str, ...], kind: EventKind, allowed: bool) -> None:
    standing = qc_standing(_qc_steps(*steps))
    problem = qc_step_problem(standing, kind) or retest_problem(standing, kind)
    assert (problem is None) == allowed, problem


@pytest.mark.parametrize(
    ("steps", "why"),
    [
        ((), "has no QC"),
        (("fail",), "failed QC"),
        (("fail", "open"), "failed QC"),
        (("fail", "open", "pass"), "open investigation"),
        (("fail", "open", "fail", "close"), "failed QC"),
        (("pass",), None),
        (("fail", "open", "pass", "close"), None),
    ],
)
def test_release_needs_a_passed_latest_qc_and_no_open_investigation(
    steps: tuple[str, ...], why: str | None
) -> None:
    problem = release_problem(qc_standing(_qc_steps(*steps)))
    if why is None:
        assert problem is None
    else:
        assert problem is not None and why in problem


def test_investigations_leave_the_status_completed() -> None:
    assert derive_status(_qc_steps("fail", "open", "pass", "close")) == "completed"
