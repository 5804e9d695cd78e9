"""``doseprint print`` of a prescription printed before, and refused prints on record,
through the command line against the virtual printer.

A second print of a prescription is refused (exit 2, nothing sent, no record) unless it
says why; with the reason the earlier record is superseded and can never be released.
Every refused print is a signed ``print_refused`` site event that ``record refusals``
lists; a store that does not exist is not made only to hold one.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doseprint.cli import main
from doseprint.comms.virtual import VirtualMarlin, serve_tcp
from doseprint.job.folder import read_job, sha256_bytes
from doseprint.job.keys import load_site_key
from doseprint.records.accounts import add_user, sign_in
from doseprint.records.approvals import approve_formulation
from doseprint.records.lots import receive_lot
from doseprint.records.store import open_store

PASSWORDS = {"admin": "admin-secret-1", "bp": "pharmacist-secret-1",
             "ct": "technician-secret-1"}


@pytest.fixture
def job(one_tablet_job: Path) -> Path:
    return one_tablet_job


@pytest.fixture
def printer() -> Iterator[tuple[VirtualMarlin, str]]:
    stop = threading.Event()
    marlin = VirtualMarlin(sleep=time.sleep, extruders=1)
    address = serve_tcp(marlin, 0, stop=stop)
    yield marlin, address
    stop.set()


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: object,
        stdin: str = "") -> tuple[int, str, str]:
    """``doseprint ARGS`` in this process, standard input given (passwords)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert isinstance(done.value.code, int)
    return done.value.code, out, err


def records(db: Path) -> list[dict[str, str]]:
    with open_store(str(db)) as store:
        return [{"id": r.id, "status": r.status} for r in store.list_records()]


def refusals(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
             db: Path) -> list[dict[str, object]]:
    code, out, err = run(capsys, monkeypatch, "record", "refusals", "--db", db, "--json")
    assert code == 0, err
    return list(json.loads(out))


def test_a_second_print_needs_a_reason_and_then_supersedes_the_first(
    job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    marlin, port = printer
    db = tmp_path / "records.sqlite"
    base = ["print", job, "--port", port, "--db", db, "--operator", "A. Operator",
            "--lot", "T0=LOT-1"]
    code, _, err = run(capsys, monkeypatch, *base)
    assert code == 0, err
    (first,) = records(db)
    sent = len(marlin.accepted)

    code, _, err = run(capsys, monkeypatch, *base)
    assert code == 2, err
    assert first["id"] in err and "completed" in err and "--supersede-reason" in err
    assert "Traceback" not in err
    assert len(marlin.accepted) == sent  # nothing sent
    assert records(db) == [first]  # no record
    (refused,) = refusals(capsys, monkeypatch, db)
    assert refused["job"] == "job" and refused["prescription_id"] == "RX-TEST-1"
    assert refused["job_json_sha256"] == sha256_bytes((job / "job.json").read_bytes())
    assert refused["operator"] == "A. Operator" and refused["signed_by"] == "site"
    assert "--supersede-reason" in str(refused["reason"])
    code, out, _ = run(capsys, monkeypatch, "record", "refusals", "--db", db)
    assert code == 0 and "RX-TEST-1" in out and "A. Operator" in out

    code, _, err = run(capsys, monkeypatch, *base, "--supersede-reason",
                       "tablets dropped before QC")
    assert code == 0, err
    old, new = records(db)
    assert old == {"id": first["id"], "status": "superseded"}
    assert new["status"] == "completed"
    code, out, _ = run(capsys, monkeypatch, "record", "show", first["id"][:8], "--db", db)
    assert code == 0
    assert "superseded" in out and f"by record {new['id']}" in out
    assert "tablets dropped before QC" in out
    code, out, _ = run(capsys, monkeypatch, "record", "show", new["id"][:8], "--db", db)
    assert f"supersedes {first['id']}" in out

    code, _, err = run(capsys, monkeypatch, "record", "release", first["id"][:8], "--by",
                       "B. Pharmacist", "--meaning", "QA release", "--db", db)
    assert code == 1 and "never released" in err
    code, _, err = run(capsys, monkeypatch, "record", "verify", "--db", db)
    assert code == 0, err


def test_a_print_whose_port_would_not_open_is_failed_and_retried_without_a_reason(
    job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, port = printer
    db = tmp_path / "records.sqlite"
    base = ["print", job, "--db", db, "--operator", "A. Operator", "--lot", "T0=LOT-1"]
    code, _, err = run(capsys, monkeypatch, *base, "--port", "socket://127.0.0.1:9")
    assert code == 3, err  # an attempt: its record says failed
    (typo,) = records(db)
    assert typo["status"] == "failed"
    assert refusals(capsys, monkeypatch, db) == []  # failed, not refused
    code, _, err = run(capsys, monkeypatch, *base, "--port", port)
    assert code == 0, err  # nothing of the first was made: no reason needed
    assert [r["status"] for r in records(db)] == ["failed", "completed"]


def test_a_refused_job_is_on_record_in_an_existing_store_and_makes_none(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    changed = tmp_path / "job-changed"
    shutil.copytree(job, changed)
    with (changed / "job.gcode").open("a") as f:
        f.write("G1 E5\n")
    args = ["print", changed, "--port", "socket://127.0.0.1:9", "--operator", "T. Tech"]

    missing = tmp_path / "none.sqlite"
    with caplog.at_level(logging.WARNING):
        code, _, err = run(capsys, monkeypatch, *args, "--db", missing)
    assert code == 2 and "job.gcode" in err
    assert not missing.exists()  # no store made only to hold the refusal
    assert "not on record" in caplog.text

    db = tmp_path / "records.sqlite"
    open_store(str(db)).close()
    code, _, err = run(capsys, monkeypatch, *args, "--db", db)
    assert code == 2
    (refused,) = refusals(capsys, monkeypatch, db)
    assert refused["job"] == "job-changed" and refused["operator"] == "T. Tech"
    assert refused["prescription_id"] == "RX-TEST-1"
    assert "job.gcode" in str(refused["reason"])
    assert str(tmp_path) not in str(refused["job"])


def test_a_bad_lot_is_refused_on_record(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "records.sqlite"
    code, _, err = run(capsys, monkeypatch, "print", job, "--port", "socket://127.0.0.1:9",
                       "--db", db, "--lot", "T7=LOT-1")
    assert code == 2 and "--lot" in err
    (refused,) = refusals(capsys, monkeypatch, db)
    assert "--lot" in str(refused["reason"]) and refused["operator"] == "operator"
    assert records(db) == []


def test_without_a_site_key_an_open_store_cannot_hold_the_refusal(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "records.sqlite"
    open_store(str(db)).close()
    monkeypatch.setenv("DOSEPRINT_KEY", str(tmp_path / "no-key.pem"))
    with caplog.at_level(logging.WARNING):
        code, _, err = run(capsys, monkeypatch, "print", job, "--port",
                           "socket://127.0.0.1:9", "--db", db, "--lot", "T7=LOT-1")
    assert code == 2 and "Traceback" not in err
    assert "no site key" in caplog.text
    assert refusals(capsys, monkeypatch, db) == []


def test_in_a_store_with_accounts_only_a_pharmacist_supersedes(
    job: Path, printer: tuple[VirtualMarlin, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    marlin, port = printer
    db = tmp_path / "records.sqlite"
    with open_store(str(db)) as store:
        add_user(store, "admin", "A. Admin", ["admin"], PASSWORDS["admin"], None)
        admin = sign_in(store, "admin", PASSWORDS["admin"], "manage_users")
        add_user(store, "bp", "B. Pharmacist", ["pharmacist"], PASSWORDS["bp"], admin)
        add_user(store, "ct", "C. Technician", ["technician"], PASSWORDS["ct"], admin)
        add_user(store, "qa", "Q. Quality", ["quality"], "quality-secret-1", admin)
        # A store with accounts prints only approved formulations from received lots.
        (tool,) = read_job(job).tools
        approve_formulation(store, tool.formulation, tool.formulation_sha256,
                            f"{tool.formulation}.toml", meaning="approved", by="qa",
                            signer=sign_in(store, "qa", "quality-secret-1",
                                           "approve_formulation"))
        receive_lot(store, "LOT-1", formulation=tool.formulation,
                    formulation_sha256=tool.formulation_sha256, expiry="2099-12-31",
                    supplier="Acme", by="ct",
                    signer=sign_in(store, "ct", PASSWORDS["ct"], "receive_lot"))

    def print_as(user: str, *more: str) -> tuple[int, str, str]:
        return run(capsys, monkeypatch, "print", job, "--port", port, "--db", db,
                   "--operator", user, "--lot", "T0=LOT-1", *more,
                   stdin=PASSWORDS[user] + "\n")

    code, _, err = print_as("ct")
    assert code == 0, err
    (first,) = records(db)
    sent = len(marlin.accepted)
    code, _, err = print_as("ct", "--supersede-reason", "nozzle cleared")
    assert code == 2
    assert "may not sign 'supersede'" in err and "pharmacist" in err and first["id"] in err
    assert len(marlin.accepted) == sent and records(db) == [first]
    (refused,) = refusals(capsys, monkeypatch, db)
    assert refused["signed_by"] == "ct" and "supersede" in str(refused["reason"])

    code, _, err = print_as("bp", "--supersede-reason", "nozzle cleared")
    assert code == 0, err
    assert [r["status"] for r in records(db)] == ["superseded", "completed"]
    with open_store(str(db)) as store:
        assert store.get(first["id"]).events[-1].actor == "bp"
        assert store.verify(site_keys=[load_site_key().public]) == []
