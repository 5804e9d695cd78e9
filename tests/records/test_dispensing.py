"""A print checks its lots and formulation approvals before the printer hears a byte, and
links each lot into the record; on both store back ends, against the virtual printer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from doseprint.comms.virtual import VirtualMarlin
from doseprint.compile import compile_prescription, write_job
from doseprint.dispensing import print_materials
from doseprint.errors import InputError, RecordStateError
from doseprint.job.folder import read_job
from doseprint.printing import print_job
from doseprint.records.approvals import approve_formulation, withdraw_approval
from doseprint.records.lots import block_lot, find_lots, lots_of
from doseprint.records.store import open_store
from helpers.rx import write_rx
from pipeline import test_print_safe_stop

from .helpers import Backend, FakeClock
from .test_lots import THEO, receive, site, site_key
from .test_people import Site

printer = test_print_safe_stop.printer
"""A virtual Marlin on a pseudo-terminal: (the printer, its device path)."""

__all__ = ["printer", "site"]  # fixtures: the printer, and test_people's store with accounts

posix_only = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals need POSIX")


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small tablet of theophylline-hpc-30 on the one-tool printer."""
    folder = tmp_path_factory.mktemp("lots-job")
    rx = write_rx(folder, units=1, extra_active=f't80_h = 8.0\nformulation = "{THEO}"')
    write_job(compile_prescription(rx, "generic-marlin-1x175"), folder / "job")
    return folder / "job"


@pytest.fixture
def stocked(site: Site, job: Path) -> Site:
    """The store with accounts, the job's formulation approved, and lots: good, expired,
    of another formulation, and blocked (the store's clock says 2026-11-22)."""
    (tool,) = read_job(job).tools
    approve_formulation(site.store, tool.formulation, tool.formulation_sha256,
                        f"{THEO}.toml", meaning="approved", by="qa",
                        signer=site.signer("qa", "approve_formulation"))
    ct = site.signer("ct", "receive_lot")
    for lot, extra in [("GOOD-1", {}), ("EXP-1", {"received": "2026-01-05",
                                                  "expiry": "2026-11-21"}),
                       ("OTHER-1", {"formulation": "pva-fast"}), ("BLK-1", {})]:
        receive(site.store, lot=lot, by="ct", signer=ct, **extra)
    block_lot(site.store, "BLK-1", reason="supplier recall R-17", by="qa",
              signer=site.signer("qa", "reject"))
    return site


@posix_only
@pytest.mark.parametrize(("lots", "why"), [
    ((), r"T0 \(theophylline-hpc-30\) has no lot"),
    (("T0=NOPE-1",), "no lot NOPE-1 of theophylline-hpc-30 was received"),
    (("T0=EXP-1",), "expired on 2026-11-21 .today is 2026-11-22"),
    (("T0=OTHER-1",), "lot OTHER-1 is material of pva-fast, but T0 prints theophylline"),
    (("T0=BLK-1",), r"is blocked since 2026-11-22 \(supplier recall R-17\)"),
])
def test_with_accounts_a_bad_or_missing_lot_is_refused_before_anything_is_sent(
    stocked: Site, job: Path, printer: tuple[VirtualMarlin, str], lots: tuple[str, ...],
    why: str,
) -> None:
    marlin, path = printer
    stocked.acting("ct", "print")
    with pytest.raises(InputError, match=why) as info:
        print_job(job, path, stocked.store, operator="ct", lots=lots)
    assert [p.key for p in info.value.problems] == ["--lot"]
    assert marlin.accepted == [] and stocked.store.list_records() == []
    (refused,) = stocked.store.site_events(("print_refused",))
    assert refused.actor == "ct" and refused.signature
    assert refused.data["problems"] == [str(p) for p in info.value.problems]
    assert stocked.verify() == []


@posix_only
def test_with_accounts_a_job_of_an_unapproved_formulation_is_refused(
    stocked: Site, job: Path, printer: tuple[VirtualMarlin, str],
) -> None:
    marlin, path = printer
    withdraw_approval(stocked.store, THEO, reason="deviation D-12", by="qa",
                      signer=stocked.signer("qa", "approve_formulation"))
    stocked.acting("ct", "print")
    with pytest.raises(InputError, match=r"T0: formulation theophylline-hpc-30 .* is not "
                                         r"approved") as info:
        print_job(job, path, stocked.store, operator="ct", lots=["T0=GOOD-1"])
    assert [p.key for p in info.value.problems] == ["tools[0].formulation_sha256"]
    assert marlin.accepted == [] and stocked.store.list_records() == []


@posix_only
def test_the_lot_is_linked_into_the_record_and_a_recall_stops_the_release(
    stocked: Site, job: Path, printer: tuple[VirtualMarlin, str],
) -> None:
    _, path = printer
    store = stocked.store
    stocked.acting("ct", "print")
    outcome = print_job(job, path, store, operator="ct", lots=["T0=GOOD-1"])
    record = store.get(outcome.record_id)
    assert record.status == "completed"
    (good,) = find_lots(lots_of(store.site_events()), "GOOD-1")
    (material,) = record.content["materials"]
    assert material["lot"] == "GOOD-1"
    assert (material["lot_expiry"], material["lot_supplier"]) == ("2027-03-31",
                                                                  "Acme Filaments")
    assert material["lot_event"] == {"seq": good.seq, "hash": good.hash}
    stocked.acting("qa", "qc")
    store.append(outcome.record_id, "qc", {"passed": True, "masses_mg": [400.0]}, "qa")
    block_lot(store, "GOOD-1", reason="supplier recall R-18", by="qa",
              signer=stocked.signer("qa", "reject"))
    stocked.acting("bp", "release")
    with pytest.raises(RecordStateError, match=r"GOOD-1 .* blocked .* supplier recall R-18"):
        store.release(outcome.record_id, "bp", "QA release")
    assert stocked.verify() == []


def test_an_open_store_keeps_free_text_lots_but_refuses_a_known_bad_one(
    backend: Backend, job: Path,
) -> None:
    manifest = read_job(job)
    job_file = str(job / "job.json")
    with open_store(backend.url, clock=FakeClock()) as store:
        # Without accounts: no lot, or one the store does not know, is today's free text;
        # and no approval is needed.
        assert print_materials(store, manifest, job_file, {}) == {}
        assert print_materials(store, manifest, job_file, {0: "FREE-1"}) == {}
        good = receive(store, lot="GOOD-1")
        assert print_materials(store, manifest, job_file, {0: "GOOD-1"}) == {0: good.link()}
        receive(store, lot="EXP-1", received="2026-01-05", expiry="2026-11-21")
        receive(store, lot="PVA-1", formulation="pva-fast")
        for lot, why in [("EXP-1", "expired on 2026-11-21"),
                         ("PVA-1", "material of pva-fast")]:
            with pytest.raises(InputError, match=why):
                print_materials(store, manifest, job_file, {0: lot})
        block_lot(store, "GOOD-1", reason="recall", by="Q. Lead", signer=site_key())
        with pytest.raises(InputError, match="blocked"):
            print_materials(store, manifest, job_file, {0: "GOOD-1"})
        # Nobody signed in: nothing to put the refusals on record with.
        assert store.site_events(("print_refused",)) == []
