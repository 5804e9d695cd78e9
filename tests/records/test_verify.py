"""`record verify` finds any change made to the database behind the store's back.

Every test runs on SQLite and on PostgreSQL (the ``backend`` fixture)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest

from doseprint.errors import RecordChainError
from doseprint.records.chain import content_hash, event_hash
from doseprint.records.store import RecordStore, open_store

from .helpers import Backend, FakeClock, fail_qc, pass_qc, printed


@pytest.fixture
def two_records(backend: Backend) -> Iterator[tuple[RecordStore, str, str]]:
    """A store holding a completed print and a second record, both intact."""
    with open_store(backend.url, clock=FakeClock()) as store:
        first = printed(store)
        second = printed(store)
        yield store, first, second


def test_intact_store_verifies(two_records: tuple[RecordStore, str, str]) -> None:
    store, first, second = two_records
    pass_qc(store, second)  # the latest print of the prescription is the releasable one
    store.release(second, "Dr Q. Person", "QA release")
    assert store.verify() == []
    assert store.verify(first[:8]) == []


def test_guards_refuse_changes(two_records: tuple[RecordStore, str, str], backend: Backend) -> None:
    if backend.name == "sqlite":
        refused: type[Exception] = sqlite3.IntegrityError
    else:
        import psycopg

        refused = psycopg.errors.IntegrityError
    for statement in ("UPDATE events SET actor = 'x'", "DELETE FROM records"):
        with pytest.raises(refused, match="append-only"):
            backend.execute((statement, ()))
    if backend.name == "postgresql":
        with pytest.raises(refused, match="append-only"):
            backend.execute(("TRUNCATE events", ()))
    store = two_records[0]
    assert store.verify() == []


def only_problem_about(problems: list[str], record_id: str) -> str:
    """The one problem of ``record_id``; the removed guards are reported last."""
    assert problems[-1].startswith("the store's append-only guards were removed")
    mine = [p for p in problems[:-1] if record_id in p]
    assert len(mine) == 1, problems
    assert len(problems) == 2, problems  # the other record is untouched
    return mine[0]


def test_changed_event_data(two_records: tuple[RecordStore, str, str], backend: Backend) -> None:
    store, first, _ = two_records
    backend.tamper(
        (
            "UPDATE events SET data = ? WHERE record_id = ? AND seq = 3",
            (json.dumps({"entries": [], "last_acked": 999}), first),
        ),
    )
    problem = only_problem_about(store.verify(), first)
    assert "event 3 (lines at" in problem
    assert "hash does not match its contents" in problem
    assert store.verify(first) == [problem]
    with pytest.raises(RecordChainError, match="event 3"):
        store.release(first, "Dr Q. Person", "QA release")


def test_changed_time(two_records: tuple[RecordStore, str, str], backend: Backend) -> None:
    store, first, _ = two_records
    backend.tamper(
        (
            "UPDATE events SET utc = '2026-01-01T00:00:00.000Z' WHERE record_id = ? AND seq = 1",
            (first,),
        ),
    )
    problem = only_problem_about(store.verify(), first)
    assert "event 1 (started at 2026-01-01T00:00:00.000Z)" in problem


def test_deleted_event(two_records: tuple[RecordStore, str, str], backend: Backend) -> None:
    store, _, second = two_records
    backend.tamper(("DELETE FROM events WHERE record_id = ? AND seq = 2", (second,)))
    problem = only_problem_about(store.verify(), second)
    assert "event 2 is missing" in problem


def test_deleted_and_renumbered_events(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    """Closing the gap after a removal still breaks the link to the event before."""
    store, first, _ = two_records
    backend.tamper(
        ("DELETE FROM events WHERE record_id = ? AND seq = 2", (first,)),
        ("UPDATE events SET seq = seq - 1 WHERE record_id = ? AND seq > 2", (first,)),
    )
    problem = only_problem_about(store.verify(), first)
    assert "event 2 (lines at" in problem
    assert "prev_hash" in problem


def test_changed_content(two_records: tuple[RecordStore, str, str], backend: Backend) -> None:
    store, first, _ = two_records
    content = store.get(first).content
    content["materials"][0]["lot"] = "OTHER-LOT"
    backend.tamper(
        ("UPDATE records SET content = ? WHERE id = ?", (json.dumps(content), first)),
    )
    assert "content does not match its stored hash" in only_problem_about(store.verify(), first)


def test_changed_content_and_its_hash(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    """Rewriting the stored hash too is caught by the hash carried in event 0."""
    store, first, _ = two_records
    content = store.get(first).content
    content["tablets"][0]["actives"][0]["dose_mg"] = 250.0
    backend.tamper(
        (
            "UPDATE records SET content = ?, content_sha256 = ? WHERE id = ?",
            (json.dumps(content), content_hash(content), first),
        ),
    )
    problem = only_problem_about(store.verify(), first)
    assert "does not match the hash in event 0" in problem


def test_removed_record(two_records: tuple[RecordStore, str, str], backend: Backend) -> None:
    store, first, _ = two_records
    # On PostgreSQL the foreign key would refuse it: drop that too, as an intruder could.
    unlink = [("ALTER TABLE events DROP CONSTRAINT events_record_id_fkey", ())]
    backend.tamper(
        *(unlink if backend.name == "postgresql" else []),
        ("DELETE FROM records WHERE id = ?", (first,)),
    )
    problems = store.verify()
    assert f"events of record {first} have no record" in problems[0]


def test_unparsable_event_data(two_records: tuple[RecordStore, str, str], backend: Backend) -> None:
    store, first, _ = two_records
    backend.tamper(("UPDATE events SET data = 'not json' WHERE record_id = ? AND seq = 2", (first,))
    )
    assert "event 2 (firmware at" in only_problem_about(store.verify(), first)
    with pytest.raises(RecordChainError, match="event 2"):
        store.get(first)


def _rehashed(backend: Backend, record_id: str, seq: int, kind: str) -> str:
    """The hash event ``seq`` would have with ``kind``, as a careful intruder computes it."""
    ((utc, actor, data, prev_hash),) = backend.query(
        "SELECT utc, actor, data, prev_hash FROM events WHERE record_id = ? AND seq = ?",
        (record_id, seq),
    )
    return event_hash(record_id, seq, utc, actor, kind, json.loads(data), prev_hash)


def test_unknown_kind_with_its_hash_recomputed(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    store, first, _ = two_records
    backend.tamper(
        (
            "UPDATE events SET kind = 'note', hash = ? WHERE record_id = ? AND seq = 5",
            (_rehashed(backend, first, 5, "note"), first),
        ),
    )
    problem = only_problem_about(store.verify(), first)
    assert problem.endswith("): unknown kind 'note'")
    assert "event 5 (note at" in problem
    with pytest.raises(RecordChainError, match="event 5 is not a doseprint event"):
        store.get(first)


def test_unknown_kind_is_reported_after_the_hash(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    """A kind changed without recomputing the hash shows first as a broken hash."""
    store, first, _ = two_records
    backend.tamper(("UPDATE events SET kind = 'note' WHERE record_id = ? AND seq = 5", (first,)))
    problem = only_problem_about(store.verify(), first)
    assert "event 5 (note at" in problem
    assert "hash does not match its contents" in problem


def test_unknown_kind_of_the_first_event(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    store, first, _ = two_records
    backend.tamper(("UPDATE events SET kind = 'note' WHERE record_id = ? AND seq = 0", (first,)))
    problem = only_problem_about(store.verify(), first)
    assert "event 0 (note at" in problem
    assert problem.endswith("should be 'created'")


def test_event_data_that_is_json_but_not_an_object(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    store, first, _ = two_records
    backend.tamper(("UPDATE events SET data = '[1, 2]' WHERE record_id = ? AND seq = 2", (first,)))
    problem = only_problem_about(store.verify(), first)
    assert "event 2 (firmware at" in problem
    assert problem.endswith("): data is not JSON (altered)")
    with pytest.raises(RecordChainError, match="event 2 is not a doseprint event"):
        store.get(first)


def _append_raw(backend: Backend, record_id: str, kind: str, data: dict[str, object]) -> int:
    """Add an event straight to the database with a correct hash, as a careful intruder
    (or an older doseprint, with other rules) could; returns its seq."""
    ((seq, prev_hash),) = backend.query(
        "SELECT seq, hash FROM events WHERE record_id = ? ORDER BY seq DESC LIMIT 1",
        (record_id,),
    )
    seq, utc = int(seq) + 1, f"2026-11-22T12:00:{int(seq) + 1:02d}.000Z"
    digest = event_hash(record_id, seq, utc, "someone", kind, data, prev_hash)
    backend.execute((
        "INSERT INTO events (record_id, seq, utc, actor, kind, data, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (record_id, seq, utc, "someone", kind, json.dumps(data), prev_hash, digest),
    ))
    return seq


def test_investigation_events_verify(two_records: tuple[RecordStore, str, str]) -> None:
    store, _, latest = two_records  # the latest print of the prescription is releasable
    fail_qc(store, latest)
    store.open_investigation(latest, "balance not tared", "Quinn Quality")
    pass_qc(store, latest)
    store.close_investigation(latest, "tare error; re-weighed", "Quinn Quality")
    store.release(latest, "Dr Q. Person", "QA release")
    assert store.verify() == []


def test_an_investigation_out_of_turn_does_not_verify(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    store, first, _ = two_records
    pass_qc(store, first)
    seq = _append_raw(backend, first, "investigation_opened", {"reason": "x"})
    (problem,) = store.verify(first)
    assert f"event {seq} (investigation_opened at" in problem
    assert "not allowed here" in problem and "passed" in problem


def test_a_second_qc_after_a_failed_one_written_before_the_rule_still_verifies(
    two_records: tuple[RecordStore, str, str], backend: Backend
) -> None:
    # Older doseprint versions let the tablets be weighed again after a failed QC; such
    # chains were not altered, so they verify. The store no longer writes them.
    store, first, _ = two_records
    fail_qc(store, first)
    _append_raw(backend, first, "qc", {"passed": True, "masses_mg": [400.0, 401.0, 399.0]})
    assert store.verify() == []
