"""The status a record's events lead to, and which event may follow which.

The expected table is written out from record.md's status line (printing → completed |
failed | aborted | interrupted; then released or rejected by a named person) and the
store's rules (QC after a completed print, a rejection also recalls a released batch,
a reprint supersedes an ended or released print but never one under way, nothing logged
once somebody has signed), not read from the module under test.
"""

from __future__ import annotations

from typing import get_args

import pytest

from doseprint.records.states import (
    EVENT_KINDS,
    EventKind,
    RecordState,
    derive_status,
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
