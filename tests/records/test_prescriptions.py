"""One prescription, one releasable batch, on both store back ends.

A prescription printed once is printed again only with a reason, which supersedes the
earlier record; a superseded record is never released; a print under way is never
superseded; two prints of one prescription racing for the store cannot both pass; and in
a store with accounts superseding is a pharmacist's signed act.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from doseprint.errors import InputError, RecordStateError
from doseprint.job.keys import load_site_key
from doseprint.records import prescriptions
from doseprint.records.accounts import add_user, sign_in
from doseprint.records.chain import verify_record
from doseprint.records.people import PermissionRefusedError
from doseprint.records.signing import site_signer
from doseprint.records.states import EventKind
from doseprint.records.store import RecordStore, open_store

from .helpers import Backend, FakeClock, pass_qc, run_together, sample_content
from .qc_helpers import extend

OPERATOR = "Ana Operator"


@pytest.fixture
def store(backend: Backend) -> Iterator[RecordStore]:
    with open_store(backend.url, clock=FakeClock()) as opened:
        yield opened


def print_of(store: RecordStore, end: EventKind | None = "completed", reason: str = "",
             rx: str = "RX-2026-000123") -> str:
    """A print of ``rx`` through the reviewed create, ended with ``end`` (None: under way
    as ``printing``; "created": not started)."""
    record_id = store.create_print(sample_content(rx), OPERATOR, reason)
    if end != "created":
        store.append(record_id, "started", {"port": "socket://127.0.0.1:5555"}, OPERATOR)
    if end not in (None, "created"):
        store.append(record_id, end, {"last_acked": 3}, OPERATOR)
    return record_id


def count(store: RecordStore) -> int:
    return len(store.list_records())


def test_a_first_print_needs_no_reason(store: RecordStore) -> None:
    record_id = print_of(store)
    created = store.get(record_id).events[0]
    assert set(created.data) == {"content_sha256"}
    assert store.verify() == []


def test_a_second_print_without_a_reason_is_refused_naming_the_first(
    store: RecordStore,
) -> None:
    first = print_of(store)
    with pytest.raises(InputError) as refused:
        store.create_print(sample_content(), OPERATOR)
    message = str(refused.value)
    assert first in message and "(completed;" in message and "--supersede-reason" in message
    assert count(store) == 1  # nothing created
    assert store.get(first).status == "completed"


def test_a_reason_supersedes_the_earlier_print(store: RecordStore) -> None:
    first = print_of(store)
    second = print_of(store, reason="  tablets dropped on the floor ")
    earlier = store.get(first)
    assert earlier.status == "superseded"
    event = earlier.events[-1]
    assert event.kind == "superseded" and event.actor == OPERATOR
    assert event.data == {"superseded_by": second, "reason": "tablets dropped on the floor"}
    created = store.get(second).events[0]
    assert created.data["supersedes"] == [first]
    assert created.data["reason"] == "tablets dropped on the floor"
    assert verify_record(earlier) == [] and store.verify() == []
    # A third print supersedes the second only: the first is out already.
    third = print_of(store, reason="second run failed QC")
    assert store.get(third).events[0].data["supersedes"] == [second]
    assert [r.status for r in store.list_records()] == ["superseded", "superseded", "completed"]


@pytest.mark.parametrize("end", ["completed", "failed", "aborted", "interrupted"])
def test_every_ended_print_needs_the_reason(store: RecordStore, end: EventKind) -> None:
    first = print_of(store, end)
    with pytest.raises(InputError, match=rf"{first} \({end};"):
        store.create_print(sample_content(), OPERATOR)
    second = print_of(store, reason="reprint")
    assert store.get(first).status == "superseded"
    assert store.get(second).events[0].data["supersedes"] == [first]


def test_a_released_print_is_recalled_by_its_reprint(store: RecordStore) -> None:
    first = print_of(store)
    pass_qc(store, first)
    store.release(first, "B. Pharmacist", "QA release for dispensing")
    with pytest.raises(InputError, match=r"\(released;"):
        store.create_print(sample_content(), OPERATOR)
    print_of(store, reason="patient returned the bottle damaged")
    assert store.get(first).status == "superseded"
    with pytest.raises(RecordStateError, match="superseded print is never released"):
        store.release(first, "B. Pharmacist", "again")


@pytest.mark.parametrize("decide", ["reject", "supersede"])
def test_a_rejected_or_superseded_print_needs_no_reason(
    store: RecordStore, decide: str
) -> None:
    first = print_of(store)
    if decide == "reject":
        store.reject(first, "B. Pharmacist", "print smeared")
        second = print_of(store)
        assert set(store.get(second).events[0].data) == {"content_sha256"}
        return
    second = print_of(store, "failed", reason="first failed QC")
    store.reject(second, "B. Pharmacist", "failed")
    third = print_of(store)  # the first is superseded, the second rejected
    assert store.get(third).status == "completed"


@pytest.mark.parametrize("end", ["failed", "aborted", "interrupted"])
def test_a_print_that_never_started_made_nothing_and_needs_no_reason(
    store: RecordStore, end: EventKind
) -> None:
    # The port would not open (or the process died first): no tablet of it exists.
    first = store.create_print(sample_content(), OPERATOR)
    store.append(first, end, {"error": "cannot open port", "last_acked": 0}, OPERATOR)
    second = print_of(store)
    assert set(store.get(second).events[0].data) == {"content_sha256"}
    assert store.get(first).status == end
    pass_qc(store, second)
    assert store.release(second, "B. Pharmacist", "QA release").kind == "released"


@pytest.mark.parametrize("end", ["created", None])
def test_a_print_under_way_is_never_superseded(store: RecordStore, end: Any) -> None:
    first = print_of(store, end)
    for reason in ("", "the other printer is faster"):
        with pytest.raises(InputError, match="is being printed now") as refused:
            store.create_print(sample_content(), OPERATOR, reason)
        assert first in str(refused.value)
    assert count(store) == 1
    assert store.get(first).status in ("created", "printing")


def test_a_reason_for_a_prescription_never_printed_is_refused(store: RecordStore) -> None:
    print_of(store, rx="RX-OTHER")
    with pytest.raises(InputError, match="no earlier print of prescription RX-2026-000123"):
        store.create_print(sample_content(), OPERATOR, "reprint")
    assert count(store) == 1


def test_other_prescriptions_do_not_count(store: RecordStore) -> None:
    print_of(store, rx="RX-A")
    print_of(store, rx="RX-B")
    assert [r.status for r in store.list_records()] == ["completed", "completed"]


def test_a_superseded_record_takes_nothing_more(store: RecordStore) -> None:
    first = print_of(store)
    print_of(store, reason="reprint")
    for kind, data in (("qc", {"passed": True}), ("lines", {"last_acked": 9}),
                       ("superseded", {"superseded_by": "x", "reason": "again"})):
        with pytest.raises(RecordStateError):
            store.append(first, kind, data, OPERATOR)  # type: ignore[arg-type]
    with pytest.raises(RecordStateError):
        store.reject(first, "B. Pharmacist", "too")
    with pytest.raises(InputError, match="needs a reason"):
        store.append(print_of(store, rx="RX-C"), "superseded", {"superseded_by": "x"}, "B")


def test_verify_replays_a_supersession(store: RecordStore) -> None:
    first = print_of(store)
    print_of(store, reason="reprint")
    record = store.get(first)
    assert verify_record(record) == []
    # A superseded event on a print under way, or a release after one, is not allowed.
    started = store.get(print_of(store, None, rx="RX-D"))
    forged = extend(started, "superseded", {"superseded_by": "x", "reason": "r"}, "B")
    assert any("not allowed here" in p for p in verify_record(forged))
    released = extend(record, "released", {"meaning": "QA"}, "B. Pharmacist")
    assert any("never released" in p for p in verify_record(released))


def test_release_refuses_an_older_print_of_a_prescription_printed_again(
    store: RecordStore,
) -> None:
    # Two prints written around the review (an older doseprint, a script): only the
    # latest that stands may be released.
    first = store.create(sample_content(), OPERATOR)
    second = store.create(sample_content(), OPERATOR)
    for record_id in (first, second):
        store.append(record_id, "started", {}, OPERATOR)
        store.append(record_id, "completed", {"last_acked": 1}, OPERATOR)
        pass_qc(store, record_id)
    with pytest.raises(RecordStateError, match=f"printed again since: record {second}"):
        store.release(first, "B. Pharmacist", "QA release")
    store.reject(second, "B. Pharmacist", "second run smeared")
    assert store.release(first, "B. Pharmacist", "QA release").kind == "released"


# Racing prints ----------------------------------------------------------------------------


def test_two_threads_racing_to_print_one_prescription_one_wins(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each thread has its own connection; each review dawdles after reading the earlier
    prints, so without the prescription's lock both would find none."""
    read = prescriptions.prints_of

    def slow(conn: Any, prescription_id: str) -> Any:
        found = read(conn, prescription_id)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(prescriptions, "prints_of", slow)
    stores = [open_store(backend.url, timeout_s=30) for _ in range(2)]
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def run(store: RecordStore) -> None:
        start.wait()
        try:
            outcomes.append(store.create_print(sample_content(), OPERATOR))
        except InputError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    won = [o for o in outcomes if isinstance(o, str)]
    lost = [o for o in outcomes if isinstance(o, InputError)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert won[0] in str(lost[0])
    with open_store(backend.url) as store:
        assert [r.id for r in store.list_records()] == won


RACER = """
import sys
from doseprint.errors import InputError
from doseprint.records.store import open_store

store = open_store(sys.argv[1], timeout_s=60)
print("ready", flush=True)
sys.stdin.readline()  # everybody starts together
content = {"prescription": {"id": "RX-RACE", "sha256": "ab" * 32, "patient": "PT"}}
try:
    print("won " + store.create_print(content, "Ana Operator", sys.argv[2]), flush=True)
except InputError as exc:
    print("refused", flush=True)
store.close()
"""


@pytest.mark.parametrize("reason", ["", "reprint"])
def test_four_processes_racing_to_print_one_prescription_one_wins(
    backend: Backend, reason: str
) -> None:
    """Without a reason the first print stands; with one each later print finds the one
    before it still ``created`` (under way), so exactly one passes either way."""
    if reason:
        with open_store(backend.url) as store:
            first = store.create({"prescription": {"id": "RX-RACE", "patient": "PT"}},
                                 OPERATOR)
            store.append(first, "started", {}, OPERATOR)
            store.append(first, "failed", {"error": "halted"}, OPERATOR)
    outputs = run_together(RACER, [[backend.url, reason]] * 4)
    assert sorted(o.split()[0] for o in outputs) == ["refused"] * 3 + ["won"]
    with open_store(backend.url) as store:
        rows = store.list_records()
        assert len(rows) == (2 if reason else 1)
        assert rows[0].status == ("superseded" if reason else "created")
        assert store.verify() == []


# A store with accounts ----------------------------------------------------------------------

PASSWORDS = {"admin": "admin-secret-1", "bp": "pharmacist-secret-1",
             "ct": "technician-secret-1"}


@pytest.fixture
def controlled(store: RecordStore) -> RecordStore:
    add_user(store, "admin", "A. Admin", ["admin"], PASSWORDS["admin"], None)
    admin = sign_in(store, "admin", PASSWORDS["admin"], "manage_users")
    add_user(store, "bp", "B. Pharmacist", ["pharmacist"], PASSWORDS["bp"], admin)
    add_user(store, "ct", "C. Technician", ["technician"], PASSWORDS["ct"], admin)
    return store


def signed_print(store: RecordStore, user: str, reason: str = "") -> str:
    store.sign_as(sign_in(store, user, PASSWORDS[user], "print"),
                  site_signer(load_site_key()))
    record_id = store.create_print(sample_content(), user, reason)
    store.append(record_id, "started", {}, user)
    store.append(record_id, "failed", {"error": "nozzle clogged"}, user)
    return record_id


def test_superseding_is_a_pharmacists_signed_act(controlled: RecordStore) -> None:
    first = signed_print(controlled, "ct")
    with pytest.raises(PermissionRefusedError) as refused:
        signed_print(controlled, "ct", "nozzle cleared")
    message = str(refused.value)
    assert "may not sign 'supersede'" in message and "pharmacist" in message
    assert first in message
    assert count(controlled) == 1 and controlled.get(first).status == "failed"
    second = signed_print(controlled, "bp", "nozzle cleared")
    assert controlled.get(first).status == "superseded"
    assert controlled.get(first).events[-1].actor == "bp"
    sealed = [e.data["record_id"] for e in controlled.site_events(("head_sealed",))]
    assert first in sealed and second in sealed
    assert controlled.verify(site_keys=[load_site_key().public]) == []


def test_the_policy_in_force_decides_who_supersedes(controlled: RecordStore) -> None:
    from doseprint.records.accounts import set_policy
    from doseprint.records.policy import policy_from_json

    policy = policy_from_json({"schema": "doseprint.site-policy/1",
                               "permissions": {"supersede": ["technician"]}}, "policy")
    set_policy(controlled, policy, sign_in(controlled, "admin", PASSWORDS["admin"],
                                           "manage_users"))
    first = signed_print(controlled, "ct")
    signed_print(controlled, "ct", "nozzle cleared")
    assert controlled.get(first).status == "superseded"
