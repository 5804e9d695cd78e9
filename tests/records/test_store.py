"""Records are created once, grow by events, and derive their status from them."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path

import pytest

from doseprint.errors import EXIT_INPUT, EXIT_RESULT, InputError, RecordStateError, ResultError
from doseprint.records import store as store_module
from doseprint.records.chain import content_hash
from doseprint.records.states import EventKind
from doseprint.records.store import (
    EVENT_COLUMNS,
    RecordStore,
    UnreadableEvent,
    event_from_row,
    open_store,
)
from doseprint.records.values import GENESIS_HASH

from .helpers import FakeClock, fail_qc, pass_qc, printed, sample_content

UTC_FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_create_and_get(store: RecordStore) -> None:
    content = sample_content()
    record_id = store.create(content, actor="Ana Operator")
    assert uuid.UUID(record_id).version == 4

    record = store.get(record_id)
    assert record.id == record_id
    assert record.content == content
    assert record.content_sha256 == content_hash(content)
    assert record.status == "created"
    assert record.prescription_id == "RX-2026-000123"
    assert record.patient == "PT-7F3A"
    (event,) = record.events
    assert (event.seq, event.kind, event.actor) == (0, "created", "Ana Operator")
    assert event.data == {"content_sha256": content_hash(content)}
    assert event.prev_hash == GENESIS_HASH
    assert UTC_FORMAT.fullmatch(event.utc)
    assert record.created_utc == event.utc


def test_append_returns_what_get_reads(store: RecordStore) -> None:
    record_id = store.create(sample_content(), "Ana Operator")
    started = store.append(record_id, "started", {"port": "p", "tuple": (1, 2)}, "Ana Operator")
    assert started.seq == 1
    assert started.data["tuple"] == [1, 2]  # stored as JSON, returned as read back
    # The store names the printing process itself, so a dead print can be found later.
    assert set(started.data["process"]) >= {"pid", "host"}
    assert store.get(record_id).events[1] == started


def test_any_text_from_the_printer_can_be_stored(store: RecordStore) -> None:
    """A garbled serial line may decode to a lone surrogate; the log must still take it."""
    record_id = store.create(sample_content(), "Ana Operator")
    garbled = "ok T:21\udcff\u00b0C"
    event = store.append(record_id, "error", {"response": garbled}, "doseprint")
    assert store.get(record_id).events[1] == event
    assert event.data["response"] == garbled
    assert store.verify(record_id) == []


def test_file_store_keeps_records_and_is_durable(db_path: Path) -> None:
    with open_store(str(db_path)) as first:
        record_id = printed(first)
        mode = first._conn.execute("PRAGMA journal_mode").fetchone()[0]
        synchronous = first._conn.execute("PRAGMA synchronous").fetchone()[0]
    assert (mode, synchronous) == ("wal", 2)  # 2 = FULL
    with open_store(f"sqlite:///{db_path}") as second:
        assert second.get(record_id).status == "completed"
        version = second._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    assert version == (store_module.SCHEMA_VERSION,)


@pytest.mark.parametrize("end", ["completed", "failed", "aborted", "interrupted"])
def test_status_follows_events(store: RecordStore, end: EventKind) -> None:
    record_id = store.create(sample_content(), "Ana Operator")
    assert store.get(record_id).status == "created"
    store.append(record_id, "started", {}, "Ana Operator")
    assert store.get(record_id).status == "printing"
    store.append(record_id, "lines", {"entries": [], "last_acked": 7}, "doseprint")
    assert store.get(record_id).status == "printing"
    store.append(record_id, end, {}, "doseprint")
    record = store.get(record_id)
    assert record.status == end
    assert record.started_utc == record.events[1].utc
    assert record.ended_utc == record.events[-1].utc
    assert record.last_acked == 7
    assert record.signature is None


def test_failed_before_start(store: RecordStore) -> None:
    """The port may not open: the record says so without ever printing."""
    record_id = store.create(sample_content(), "Ana Operator")
    store.append(record_id, "failed", {"reason": "port cannot be opened"}, "doseprint")
    assert store.get(record_id).status == "failed"
    assert store.get(record_id).started_utc is None


def test_release_of_a_completed_print(store: RecordStore) -> None:
    record_id = printed(store)
    pass_qc(store, record_id)
    event = store.release(record_id, by="Dr Q. Person", meaning="QA release for dispensing")
    record = store.get(record_id)
    assert record.status == "released"
    assert record.signature is not None
    assert record.signature.by == "Dr Q. Person"
    assert record.signature.meaning == "QA release for dispensing"
    assert record.signature.utc == event.utc
    assert record.signature.event_hash == record.head_hash
    with pytest.raises(ResultError, match="released"):
        store.release(record_id, by="Someone Else", meaning="again")
    # A recall is a rejection after the release, not an edit of it.
    store.reject(record_id, by="Dr Q. Person", meaning="recall: wrong lot")
    assert store.get(record_id).status == "rejected"
    assert [e.kind for e in store.get(record_id).events][-2:] == ["released", "rejected"]


@pytest.mark.parametrize("end", ["failed", "aborted", "interrupted"])
def test_release_refused_unless_completed(store: RecordStore, end: EventKind) -> None:
    record_id = printed(store, end=end)
    before = store.get(record_id)
    with pytest.raises(ResultError, match="only a completed print can be released") as info:
        store.release(record_id, by="Dr Q. Person", meaning="QA release")
    assert info.value.exit_code == EXIT_RESULT
    assert store.get(record_id) == before  # nothing written
    store.reject(record_id, by="Dr Q. Person", meaning="print did not complete")
    assert store.get(record_id).status == "rejected"


def test_release_refused_while_printing(store: RecordStore) -> None:
    record_id = store.create(sample_content(), "Ana Operator")
    with pytest.raises(ResultError):
        store.release(record_id, by="Dr Q. Person", meaning="QA release")
    store.append(record_id, "started", {}, "Ana Operator")
    with pytest.raises(ResultError):
        store.release(record_id, by="Dr Q. Person", meaning="QA release")
    with pytest.raises(ResultError):
        store.reject(record_id, by="Dr Q. Person", meaning="too early")


def test_signature_needs_name_and_meaning(store: RecordStore) -> None:
    record_id = printed(store)
    with pytest.raises(InputError, match="--by"):
        store.release(record_id, by=" ", meaning="QA release")
    with pytest.raises(InputError, match="--meaning"):
        store.release(record_id, by="Dr Q. Person", meaning="")
    with pytest.raises(InputError, match="meaning"):
        store.append(record_id, "released", {}, "Dr Q. Person")
    with pytest.raises(InputError, match="actor"):
        store.append(record_id, "error", {}, "")
    assert store.get(record_id).status == "completed"


def test_transitions_are_checked(store: RecordStore) -> None:
    record_id = printed(store)
    with pytest.raises(ResultError, match="'started' cannot follow status 'completed'"):
        store.append(record_id, "started", {}, "Ana Operator")
    with pytest.raises(ValueError, match="created"):
        store.append(record_id, "created", {}, "Ana Operator")
    with pytest.raises(ValueError, match="kind"):
        store.append(record_id, "note", {}, "Ana Operator")  # type: ignore[arg-type]
    store.reject(record_id, by="Dr Q. Person", meaning="visual defect")
    with pytest.raises(ResultError, match="nothing more can be logged"):
        store.append(record_id, "lines", {"entries": []}, "doseprint")


def test_append_many_is_all_or_nothing(store: RecordStore) -> None:
    record_id = store.create(sample_content(), "Ana Operator")
    store.append(record_id, "started", {}, "Ana Operator")
    batch: list[tuple[EventKind, dict[str, object]]] = [
        ("lines", {"entries": [[1, "G28", "ok"]], "last_acked": 1}),
        ("completed", {}),
        ("completed", {}),  # not allowed twice: the whole batch is refused
    ]
    with pytest.raises(ResultError):
        store.append_many(record_id, batch, "doseprint")
    assert [e.kind for e in store.get(record_id).events] == ["created", "started"]
    written = store.append_many(record_id, batch[:2], "doseprint")
    assert [(e.seq, e.kind) for e in written] == [(2, "lines"), (3, "completed")]
    assert written[1].prev_hash == written[0].hash
    assert store.append_many(record_id, [], "doseprint") == []


def test_list_records(store: RecordStore) -> None:
    assert store.list_records() == []
    first = printed(store)
    second = store.create(sample_content(rx="RX-2", patient="PT-2"), "Ana Operator")
    summaries = store.list_records()
    assert [s.id for s in summaries] == [first, second]
    assert [(s.prescription_id, s.patient, s.status) for s in summaries] == [
        ("RX-2026-000123", "PT-7F3A", "completed"),
        ("RX-2", "PT-2", "created"),
    ]
    assert summaries[0].created_utc == store.get(first).created_utc


def test_content_without_prescription_lists_blank(store: RecordStore) -> None:
    record_id = store.create({"anything": 1}, "Ana Operator")
    (summary,) = store.list_records()
    assert (summary.id, summary.prescription_id, summary.patient) == (record_id, "", "")


def test_prefix_of_a_record_id(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(
        [
            uuid.UUID("1a2b3c4d-0000-4000-8000-000000000001"),
            uuid.UUID("1a2b3c4d-0000-4000-8000-000000000002"),
            uuid.UUID("9f000000-0000-4000-8000-000000000003"),
        ]
    )
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    first = printed(store)
    store.create(sample_content(rx="RX-2026-000124"), "Ana Operator")
    third = store.create(sample_content(rx="RX-2026-000125"), "Ana Operator")

    assert store.get("9F").id == third  # case does not matter
    assert store.resolve_id(first) == first
    pass_qc(store, "1a2b3c4d-0000-4000-8000-000000000001")
    store.release("1a2b3c4d-0000-4000-8000-000000000001", "Dr Q. Person", "QA release")
    assert store.get(first[:-1] + "1").status == "released"

    with pytest.raises(InputError, match="ambiguous") as info:
        store.get("1a2b")
    assert info.value.exit_code == EXIT_INPUT
    assert "'1a2b'" in str(info.value)
    with pytest.raises(InputError, match="no record 'deadbeef'"):
        store.release("deadbeef", "Dr Q. Person", "QA release")
    with pytest.raises(InputError, match="not a record id"):
        store.get("RX-2026")
    with pytest.raises(InputError, match="not a record id"):
        store.get("")


def test_threads_share_one_store(db_path: Path) -> None:
    """The print's log flusher and its main loop may write from different threads."""
    with open_store(str(db_path), clock=FakeClock()) as store:
        record_id = store.create(sample_content(), "Ana Operator")
        store.append(record_id, "started", {}, "Ana Operator")

        def flush(tag: str) -> None:
            for n in range(20):
                store.append(record_id, "lines", {"tag": tag, "n": n}, "doseprint")

        threads = [threading.Thread(target=flush, args=(tag,)) for tag in "ab"]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        events = store.get(record_id).events
        assert [e.seq for e in events] == list(range(42))
        assert store.verify() == []


def test_release_needs_a_passed_qc(store: RecordStore) -> None:
    record_id = printed(store)
    with pytest.raises(RecordStateError, match="has no QC"):
        store.release(record_id, "Dr Q. Person", "QA release")
    fail_qc(store, record_id)
    with pytest.raises(RecordStateError, match="failed QC"):
        store.release(record_id, "Dr Q. Person", "QA release")
    # A failed QC is final: weighed again only under an investigation.
    store.open_investigation(record_id, "balance not tared", "Quinn Quality")
    pass_qc(store, record_id)  # the re-weighing passes: the latest QC counts ...
    with pytest.raises(RecordStateError, match="open investigation"):
        store.release(record_id, "Dr Q. Person", "QA release")  # ... once it is closed
    store.close_investigation(record_id, "tare error; re-weighed", "Quinn Quality")
    store.release(record_id, "Dr Q. Person", "QA release")
    assert store.get(record_id).status == "released"
    assert [e.kind for e in store.get(record_id).events][-5:] == [
        "qc", "investigation_opened", "qc", "investigation_closed", "released"]


def test_a_failed_qc_is_final_without_an_investigation(store: RecordStore) -> None:
    record_id = printed(store)
    fail_qc(store, record_id)
    before = store.get(record_id).events
    with pytest.raises(InputError, match="failed QC is final") as info:
        pass_qc(store, record_id)
    assert info.value.exit_code == EXIT_INPUT
    assert store.get(record_id).events == before  # nothing written
    with pytest.raises(RecordStateError, match="failed QC"):
        store.release(record_id, "Dr Q. Person", "QA release")
    # A rejection is always possible.
    store.reject(record_id, "Dr Q. Person", "failed uniformity of mass")
    assert store.get(record_id).status == "rejected"


def test_investigation_events_carry_their_links(store: RecordStore) -> None:
    record_id = printed(store)
    fail_qc(store, record_id)
    failed_seq = store.get(record_id).events[-1].seq
    opened = store.open_investigation(record_id[:8], "  tablet 2 looks chipped ", "Quinn")
    assert opened.kind == "investigation_opened" and opened.actor == "Quinn"
    assert opened.data == {"reason": "tablet 2 looks chipped", "failed_qc_seq": failed_seq}
    fail_qc(store, record_id)  # weighed again, failed again: both results are kept
    closed = store.close_investigation(record_id, "chipped in handling", "Quinn")
    assert closed.data == {"outcome": "chipped in handling", "investigation_seq": opened.seq}
    events = store.get(record_id).events
    assert [e.kind for e in events[-4:]] == ["qc", "investigation_opened", "qc",
                                             "investigation_closed"]
    assert store.get(record_id).status == "completed"
    assert store.verify(record_id) == []
    # Still failed: a second investigation may be opened, and the batch is not released.
    with pytest.raises(RecordStateError, match="failed QC"):
        store.release(record_id, "Dr Q. Person", "QA release")
    store.open_investigation(record_id, "second look", "Quinn")
    assert store.verify(record_id) == []


@pytest.mark.parametrize(
    ("setup", "step", "error", "match"),
    [
        ((), "open", InputError, "no QC to investigate"),
        (("pass",), "open", InputError, "passed"),
        (("fail", "open"), "open", InputError, "already open"),
        ((), "close", InputError, "no investigation is open"),
        (("fail",), "close", InputError, "no investigation is open"),
        (("fail", "reject"), "open", RecordStateError, "cannot follow status 'rejected'"),
    ],
)
def test_investigation_steps_out_of_turn_are_refused(
    store: RecordStore, setup: tuple[str, ...], step: str, error: type[Exception], match: str
) -> None:
    record_id = printed(store)
    for done in setup:
        if done == "pass":
            pass_qc(store, record_id)
        elif done == "fail":
            fail_qc(store, record_id)
        elif done == "open":
            store.open_investigation(record_id, "why", "Quinn")
        else:
            store.reject(record_id, "Dr Q. Person", "no")
    before = store.get(record_id).events
    with pytest.raises(error, match=match):
        if step == "open":
            store.open_investigation(record_id, "why", "Quinn")
        else:
            store.close_investigation(record_id, "found", "Quinn")
    assert store.get(record_id).events == before


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda s, r: s.open_investigation(r, " ", "Quinn"), "--reason"),
        (lambda s, r: s.open_investigation(r, "why", " "), "--by"),
        (lambda s, r: s.close_investigation(r, "", "Quinn"), "--outcome"),
        (lambda s, r: s.append(r, "investigation_opened", {}, "Quinn"), "reason"),
        (lambda s, r: s.append(r, "investigation_closed", {"outcome": " "}, "Quinn"), "outcome"),
    ],
)
def test_investigations_need_a_name_and_a_reason_or_outcome(
    store: RecordStore, call: object, key: str
) -> None:
    record_id = printed(store)
    fail_qc(store, record_id)
    assert callable(call)
    with pytest.raises(InputError) as info:
        call(store, record_id)
    assert info.value.problems[0].key == key


# One row, one event


def test_every_stored_row_reads_as_the_event_appended(store: RecordStore) -> None:
    record_id = printed(store)
    rows = store._conn.execute(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE record_id = ? ORDER BY seq", (record_id,)
    ).fetchall()
    assert tuple(event_from_row(row) for row in rows) == store.get(record_id).events


@pytest.mark.parametrize(
    ("kind", "data", "why", "problem"),
    [
        ("lines", "not json", "json", "event 4 data is not valid JSON (altered)"),
        ("lines", "[1, 2]", "object", "event 4 is not a doseprint event (altered)"),
        ("note", '{"a": 1}', "kind", "event 4 is not a doseprint event (altered)"),
    ],
)
def test_a_row_that_is_not_an_event(kind: str, data: str, why: str, problem: str) -> None:
    row = ("3f2a", 4, "2026-11-22T10:00:00.000Z", "doseprint", kind, data, "p" * 64, "h" * 64)
    with pytest.raises(UnreadableEvent) as info:
        event_from_row(row)
    error = info.value
    assert error.why == why
    assert error.reading_problem() == f"record 3f2a: {problem}"
    assert error.verify_problem() == (
        f"record 3f2a: event 4 ({kind} at 2026-11-22T10:00:00.000Z): data is not JSON (altered)"
    )
    if why == "kind":
        # Kept for the chain check, which names the kind after checking the hashes.
        assert error.stored is not None
        assert (error.stored.kind, error.stored.data) == ("note", {"a": 1})
    else:
        assert error.stored is None
