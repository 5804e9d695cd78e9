"""Material lots and approved formulations on the site chain, on both store back ends:
who may receive, block, approve and withdraw; what is refused before anything is written;
and what stops a release."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from doseprint.errors import InputError, RecordStateError
from doseprint.job.keys import load_site_key
from doseprint.records.accounts import add_user, sign_in
from doseprint.records.approvals import (
    approval_problem,
    approvals_of,
    approve_formulation,
    approved_hashes,
    withdraw_approval,
)
from doseprint.records.lots import block_lot, find_lots, lots_of, receive_lot
from doseprint.records.people import PermissionRefusedError
from doseprint.records.signing import Signer, site_signer
from doseprint.records.store import RecordStore, open_store

from . import test_people
from .helpers import Backend, FakeClock, pass_qc, sample_content
from .test_people import PASSWORDS, Site

site = test_people.site
"""The store with accounts: an administrator, two pharmacists, a technician, quality."""

THEO = "theophylline-hpc-30"
SHA = "5e" * 32


def site_key() -> Signer:
    return site_signer(load_site_key())


def receive(store: RecordStore, lot: str = "L-1", signer: Signer | None = None,
            by: str = "Ann Receiver", **kwargs: Any) -> Any:
    values: dict[str, Any] = {"formulation": THEO, "formulation_sha256": SHA,
                              "expiry": "2027-03-31", "supplier": "Acme Filaments"}
    values.update(kwargs)
    return receive_lot(store, lot, by=by, signer=signer or site_key(), **values)


_PRESCRIPTIONS = itertools.count(1)


def completed(store: RecordStore, materials: list[dict[str, Any]], actor: str) -> str:
    """A completed, QC-passed record whose content holds these materials."""
    content = sample_content(rx=f"RX-2026-{next(_PRESCRIPTIONS):06d}")  # one print each
    content["materials"] = materials
    record_id = store.create(content, actor=actor)
    store.append(record_id, "started", {"port": "socket://127.0.0.1:5555"}, actor)
    store.append(record_id, "completed", {"last_acked": 1}, actor)
    return record_id


# Receiving ---------------------------------------------------------------------------


def test_an_open_store_receives_lots_signed_by_the_site_key(backend: Backend) -> None:
    with open_store(backend.url, clock=FakeClock()) as store:
        lot = receive(store, received="2026-11-01", quantity_g=500)
        assert (lot.lot, lot.formulation, lot.expiry, lot.received) == \
            ("L-1", THEO, "2027-03-31", "2026-11-01")
        assert (lot.by, lot.actor, lot.quantity_g, lot.blocked) == \
            ("Ann Receiver", "site", 500.0, None)
        (event,) = store.site_events(("lot_received",))
        assert (event.seq, event.hash, event.signature != "") == (lot.seq, lot.hash, True)
        assert lot.link() == {"lot_expiry": "2027-03-31", "lot_supplier": "Acme Filaments",
                              "lot_event": {"seq": lot.seq, "hash": lot.hash}}
        # Unique per formulation: the same number of another material is another lot.
        with pytest.raises(InputError, match="received already"):
            receive(store)
        receive(store, formulation="pva-fast")
        assert [x.formulation for x in find_lots(lots_of(store.site_events()), "L-1")] == \
            ["pva-fast", THEO]
        assert store.verify(site_keys=[load_site_key().public]) == []


@pytest.mark.parametrize(("change", "key"), [
    ({"lot": "L\x1b[2J"}, "LOT"), ({"lot": "L" * 65}, "LOT"), ({"lot": "  "}, "LOT"),
    ({"lot": "L\n2"}, "LOT"),
    ({"expiry": "2027-02-30"}, "--expiry"), ({"expiry": "31/03/2027"}, "--expiry"),
    ({"expiry": "20270331"}, "--expiry"), ({"expiry": "2026-10-31"}, "--expiry"),
    ({"received": "2026-11-23"}, "--received"), ({"received": "yesterday"}, "--received"),
    ({"quantity_g": 0.0}, "--quantity-g"), ({"quantity_g": float("nan")}, "--quantity-g"),
    ({"quantity_g": -5.0}, "--quantity-g"), ({"supplier": " "}, "--supplier"),
    ({"supplier": "Acme\x07"}, "--supplier"), ({"by": ""}, "--by"),
])
def test_a_bad_lot_is_refused_and_nothing_written(backend: Backend, change: dict[str, Any],
                                                  key: str) -> None:
    # The store clock's day is 2026-11-22: a lot cannot arrive tomorrow, nor expire before
    # it arrived (received 2026-11-01 unless the case says otherwise).
    with open_store(backend.url, clock=FakeClock()) as store:
        values = {"lot": "L-1", "received": "2026-11-01", **change}
        with pytest.raises(InputError) as info:
            receive(store, **values)
        assert [p.key for p in info.value.problems] == [key]
        assert store.site_events() == []


def test_a_lot_expired_before_today_may_be_recorded(backend: Backend) -> None:
    # Entering an old receipt is recording history; the print refuses the lot.
    with open_store(backend.url, clock=FakeClock()) as store:
        lot = receive(store, received="2020-01-01", expiry="2020-06-30")
        assert lot.expiry == "2020-06-30"


def test_in_a_store_with_accounts_a_permitted_person_signs(site: Site) -> None:
    store = site.store
    # The site key no longer signs for a free-text name, nor may one person sign as another.
    with pytest.raises(InputError, match="signed by the signed-in user"):
        receive(store, by="Ann Receiver")
    ct = site.signer("ct", "receive_lot")
    with pytest.raises(InputError, match="signed by the signed-in user"):
        receive(store, by="bp", signer=ct)
    admin = sign_in(store, "admin", PASSWORDS["admin"], None)
    with pytest.raises(PermissionRefusedError, match="may not sign 'receive_lot'"):
        receive(store, by="admin", signer=admin)
    lot = receive(store, by="ct", signer=ct)
    assert (lot.by, lot.actor) == ("ct", "ct")
    assert site.verify() == []


# Blocking -------------------------------------------------------------------------------


def test_a_lot_is_blocked_by_a_pharmacist_or_quality_only(site: Site) -> None:
    store = site.store
    receive(store, by="ct", signer=site.signer("ct"))
    receive(store, by="ct", signer=site.signer("ct"), formulation="pva-fast")
    with pytest.raises(PermissionRefusedError, match="may not sign 'reject'"):
        block_lot(store, "L-1", reason="recall", by="ct", signer=site.signer("ct"),
                  formulation=THEO)
    qa = site.signer("qa", "reject")
    with pytest.raises(InputError, match="several formulations"):
        block_lot(store, "L-1", reason="recall", by="qa", signer=qa)
    with pytest.raises(InputError, match="no lot L-9"):
        block_lot(store, "L-9", reason="recall", by="qa", signer=qa)
    with pytest.raises(InputError, match="reason"):
        block_lot(store, "L-1", reason=" ", by="qa", signer=qa, formulation=THEO)
    lot = block_lot(store, "L-1", reason="supplier recall R-17", by="qa", signer=qa,
                    formulation=THEO)
    assert lot.blocked is not None and lot.blocked["reason"] == "supplier recall R-17"
    with pytest.raises(InputError, match="blocked already"):
        block_lot(store, "L-1", reason="again", by="qa", signer=qa, formulation=THEO)
    assert lots_of(store.site_events())[("pva-fast", "L-1")].blocked is None
    assert site.verify() == []


# At release -----------------------------------------------------------------------------


def test_a_lot_blocked_after_the_print_stops_the_release(site: Site) -> None:
    store = site.store
    (abc,) = find_lots(lots_of(store.site_events()), "ABC123")  # received by the fixture
    site.acting("ct", "print")
    record_id = completed(store, [{"tool": 0, "formulation": THEO, "lot": "ABC123",
                                   **abc.link()}], "ct")
    pass_qc_as(site, record_id)
    block_lot(store, "ABC123", reason="supplier recall R-17", by="qa",
              signer=site.signer("qa", "reject"))
    site.acting("bp", "release")
    with pytest.raises(RecordStateError, match=r"blocked on .* by qa: supplier recall R-17"):
        store.release(record_id, "bp", "QA release")
    store.reject(record_id, "bp", "made from a recalled lot")  # what is left to do
    assert store.get(record_id).status == "rejected"
    assert site.verify() == []


@pytest.mark.parametrize(("lot", "why"), [
    (None, "has no material lot"), ("", "has no material lot"),
    ("ZZZ-9", "lot ZZZ-9 of theophylline-hpc-30 was never received"),
])
def test_with_accounts_a_record_without_a_received_lot_is_not_released(
    site: Site, lot: str | None, why: str
) -> None:
    site.acting("ct", "print")
    record_id = completed(site.store, [{"tool": 0, "formulation": THEO, "lot": lot}], "ct")
    pass_qc_as(site, record_id)
    site.acting("bp", "release")
    with pytest.raises(RecordStateError, match=f"T0 .*{why}"):
        site.store.release(record_id, "bp", "QA release")


def test_a_link_that_does_not_match_the_lots_receipt_stops_the_release(site: Site) -> None:
    (abc,) = find_lots(lots_of(site.store.site_events()), "ABC123")
    site.acting("ct", "print")
    forged = {"tool": 0, "formulation": THEO, "lot": "ABC123", "lot_expiry": "2099-12-31",
              "lot_event": {"seq": abc.seq, "hash": "00" * 32}}
    record_id = completed(site.store, [forged], "ct")
    pass_qc_as(site, record_id)
    site.acting("bp", "release")
    with pytest.raises(RecordStateError, match="does not match the site chain"):
        site.store.release(record_id, "bp", "QA release")


def test_an_open_store_keeps_free_text_lots_but_refuses_a_blocked_one(
    backend: Backend,
) -> None:
    with open_store(backend.url, clock=FakeClock()) as store:
        free = completed(store, [{"tool": 0, "formulation": THEO, "lot": "FREE-1"}], "Ann")
        none = completed(store, [{"tool": 0, "formulation": THEO, "lot": None}], "Ann")
        lot = receive(store, lot="KNOWN-1")
        known = completed(store, [{"tool": 0, "formulation": THEO, "lot": "KNOWN-1",
                                   **lot.link()}], "Ann")
        for record_id in (free, none, known):
            pass_qc(store, record_id)
        store.release(free, "B. Pharmacist", "QA release")
        store.release(none, "B. Pharmacist", "QA release")
        block_lot(store, "KNOWN-1", reason="recall", by="Q. Lead", signer=site_key())
        with pytest.raises(RecordStateError, match=r"KNOWN-1 .* was blocked"):
            store.release(known, "B. Pharmacist", "QA release")


def test_a_record_made_before_the_first_account_keeps_its_free_text_lot(
    backend: Backend,
) -> None:
    with open_store(backend.url, clock=FakeClock()) as store:
        record_id = completed(store, [{"tool": 0, "formulation": THEO, "lot": "FREE-1"}],
                              "Ann")
        pass_qc(store, record_id)
        add_user(store, "admin", "A. Admin", ["admin"], PASSWORDS["admin"], None)
        admin = sign_in(store, "admin", PASSWORDS["admin"], "manage_users")
        add_user(store, "bp", "B. Pharmacist", ["pharmacist"], PASSWORDS["bp"], admin)
        store.sign_as(sign_in(store, "bp", PASSWORDS["bp"], "release"))
        assert store.release(record_id, "bp", "QA release").kind == "released"


def pass_qc_as(site: Site, record_id: str) -> None:
    site.acting("qa", "qc")
    site.store.append(record_id, "qc", {"passed": True, "masses_mg": [400.0]}, "qa")


# Approved formulations ----------------------------------------------------------------


def test_only_quality_approves_a_formulation_version(site: Site) -> None:
    store = site.store
    ct = site.signer("ct")
    with pytest.raises(PermissionRefusedError, match="may not sign 'approve_formulation'"):
        approve_formulation(store, THEO, SHA, "theophylline-hpc-30.toml",
                            meaning="approved", by="ct", signer=ct)
    with pytest.raises(InputError, match="signed by the signed-in user"):
        approve_formulation(store, THEO, SHA, "theophylline-hpc-30.toml",
                            meaning="approved", by="Q. Lead", signer=site_key())
    qa = site.signer("qa", "approve_formulation")
    approval = approve_formulation(store, THEO, SHA, "theophylline-hpc-30.toml",
                                   meaning="MFR-7 rev 2 approved", by="qa", signer=qa)
    assert (approval.by, approval.actor, approval.meaning) == ("qa", "qa", "MFR-7 rev 2 approved")
    with pytest.raises(InputError, match="approved already"):
        approve_formulation(store, THEO, SHA, "theophylline-hpc-30.toml",
                            meaning="again", by="qa", signer=qa)
    # A second version is approved beside the first; each stands until withdrawn.
    approve_formulation(store, THEO, "7a" * 32, "theophylline-hpc-30.toml",
                        meaning="MFR-7 rev 3 approved", by="qa", signer=qa)
    approvals = approvals_of(store.site_events())
    assert approved_hashes(approvals, THEO) == [SHA, "7a" * 32]
    assert approval_problem(approvals, THEO, SHA) is None
    assert "has changed since its approval" in str(approval_problem(approvals, THEO, "11" * 32))
    assert "no version of it is" in str(approval_problem(approvals, "pva-fast", SHA))
    with pytest.raises(PermissionRefusedError):
        withdraw_approval(store, THEO, reason="x", by="ct", signer=ct)
    (gone,) = withdraw_approval(store, THEO, reason="dissolution out of specification",
                                by="qa", signer=qa, sha256=SHA)
    assert gone.sha256 == SHA
    approvals = approvals_of(store.site_events())
    assert approved_hashes(approvals, THEO) == ["7a" * 32]
    withdraw_approval(store, THEO, reason="all of it", by="qa", signer=qa)
    assert approved_hashes(approvals_of(store.site_events()), THEO) == []
    with pytest.raises(InputError, match="no approval of"):
        withdraw_approval(store, THEO, reason="again", by="qa", signer=qa)
    # A withdrawn version may be approved again.
    approve_formulation(store, THEO, SHA, "theophylline-hpc-30.toml",
                        meaning="re-approved after deviation D-12", by="qa", signer=qa)
    assert approved_hashes(approvals_of(store.site_events()), THEO) == [SHA]
    assert site.verify() == []


def test_an_open_store_records_approvals_signed_by_the_site_key(backend: Backend) -> None:
    with open_store(backend.url, clock=FakeClock()) as store:
        approval = approve_formulation(store, THEO, SHA, "theophylline-hpc-30.toml",
                                       meaning="approved", by="Q. Lead", signer=site_key())
        assert (approval.by, approval.actor) == ("Q. Lead", "site")
        with pytest.raises(InputError, match="meaning"):
            approve_formulation(store, THEO, "11" * 32, "f.toml", meaning=" ", by="Q. Lead",
                                signer=site_key())
        assert store.verify(site_keys=[load_site_key().public]) == []
