"""The job is proved again from its own G-code before a print: the header's prescription
against job.json, the doses read from the moves against the header's, and the record
keeps what was proved (issue: "print trusts job.json, which nothing seals")."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from doseprint.compile import compile_prescription, write_job
from doseprint.errors import DoseCheckError
from doseprint.gcode.header import HeaderDose, read_header
from doseprint.gcode.reader import read_gcode
from doseprint.gcode.tokens import split_lines
from doseprint.job.folder import read_job, sha256_bytes
from doseprint.job.verify import dose_check_error, verify_job, verify_job_folder
from doseprint.printing import print_job, record_content
from doseprint.records.store import open_store
from helpers.rx import write_rx
from helpers.seal import reseal


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("proof")
    out = folder / "job"
    write_job(compile_prescription(write_rx(folder, units=2, dose_mg=100.0),
                                   "generic-marlin-1x175"), out)
    return out


def _copy(job: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "job"
    shutil.copytree(job, copy)
    return copy


def _edit_json(job: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Change job.json and seal it again with the site key: these tests prove the checks
    beneath the seal (tests/job/test_seal.py: without the key, the seal refuses first)."""
    data = json.loads((job / "job.json").read_text(encoding="utf-8"))
    edit(data)
    (job / "job.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    reseal(job)


def _edit_gcode(job: Path, edit: Callable[[str], str]) -> None:
    """Change job.gcode and put its new SHA-256 into job.json, as an attacker with write
    access to the folder and the site key would."""
    path = job / "job.gcode"
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    digest = sha256_bytes(path.read_bytes())
    _edit_json(job, lambda d: d["gcode"].update(sha256=digest))


def _double_tablet_0(text: str) -> str:
    """Every E of tablet 0's sections doubled."""
    out, inside = [], False
    for line in text.split("\n"):
        if line.startswith(";TABLET:"):
            inside = line == ";TABLET:0"
        elif inside and line.startswith("G1 ") and " E" in line:
            line = re.sub(r"E([-0-9.]+)", lambda m: f"E{2 * float(m[1]):.5f}", line)
        out.append(line)
    return "\n".join(out)


def _print(job: Path, tmp_path: Path) -> None:
    with open_store(str(tmp_path / "records.sqlite")) as store:
        try:
            print_job(job, "socket://127.0.0.1:9", store, operator="Tess Technician")
        finally:
            assert store.list_records() == []  # refused before any record: nothing sent


def test_the_header_carries_the_prescription(job: Path) -> None:
    manifest = read_job(job)
    header = read_header(split_lines((job / "job.gcode").read_text(encoding="utf-8")))
    assert header.prescription_id == "RX-TEST-1" and header.patient == "PT-0001"
    assert header.prescription_sha256 == manifest.prescription.sha256
    assert header.printer_id == "generic-marlin-1x175"
    assert header.doses == (HeaderDose(0, 0, 100.0, "theophylline"),
                            HeaderDose(1, 0, 100.0, "theophylline"))
    assert verify_job_folder(job).ok


def test_doubled_extrusion_with_a_rewritten_hash_is_refused(job: Path, tmp_path: Path) -> None:
    copy = _copy(job, tmp_path)
    _edit_gcode(copy, _double_tablet_0)
    with pytest.raises(DoseCheckError, match="tablet 0: theophylline"):
        _print(copy, tmp_path)
    assert dose_check_error(verify_job_folder(copy), copy) is not None


def test_a_dose_changed_in_job_json_alone_is_refused(job: Path, tmp_path: Path) -> None:
    copy = _copy(job, tmp_path)
    _edit_json(copy, lambda d: d["tablets"][0]["actives"][0].update(dose_mg=1000.0))
    with pytest.raises(DoseCheckError, match="prescribe different doses"):
        _print(copy, tmp_path)


def test_doubled_extrusion_and_a_matching_job_json_are_refused(
    job: Path, tmp_path: Path
) -> None:
    # The moves and job.json agree on 200 mg; the G-code's own header still says what
    # compile proved, 100 mg. Before the header carried doses this printed.
    copy = _copy(job, tmp_path)
    _edit_gcode(copy, _double_tablet_0)
    _edit_json(copy, lambda d: d["tablets"][0]["actives"][0].update(dose_mg=200.0))
    with pytest.raises(DoseCheckError) as caught:
        _print(copy, tmp_path)
    assert "prescribe different doses" in caught.value.message
    assert "tablet 0: theophylline from the G-code is 2" in caught.value.message


@pytest.mark.parametrize(("edit", "words"), [
    (lambda d: d["prescription"].update(patient="PT-9999"), "patient reference"),
    (lambda d: d["prescription"].update(id="RX-OTHER"), "as the prescription;"),
    (lambda d: d["prescription"].update(sha256="0" * 64), "prescription's SHA-256"),
    (lambda d: d["tools"][0].update(formulation="other-formulation"), "loads T0"),
])
def test_job_json_that_disagrees_with_the_header_is_refused(
    job: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None], words: str
) -> None:
    copy = _copy(job, tmp_path)
    _edit_json(copy, edit)
    with pytest.raises(DoseCheckError, match=re.escape(words)):
        _print(copy, tmp_path)


def test_a_header_without_doses_is_refused(job: Path, tmp_path: Path) -> None:
    copy = _copy(job, tmp_path)
    _edit_gcode(copy, lambda t: "\n".join(line for line in t.split("\n")
                                         if not line.startswith("; dose tablet")))
    with pytest.raises(DoseCheckError, match="no dose lines"):
        _print(copy, tmp_path)


def test_dose_lines_after_the_first_command_are_not_the_header(job: Path) -> None:
    text = (job / "job.gcode").read_text(encoding="utf-8")
    forged = text.replace(";TABLET:0", "; dose tablet 5 T0 500.0 mg theophylline\n;TABLET:0",
                          1)
    assert read_header(split_lines(forged)) == read_header(split_lines(text))


def test_the_record_keeps_the_doses_read_from_the_gcode(job: Path, tmp_path: Path) -> None:
    copy = _copy(job, tmp_path)
    # job.json's own figure of the G-code's dose is a claim: the record does not copy it.
    _edit_json(copy, lambda d: d["tablets"][0]["actives"][0].update(gcode_dose_mg=123.0,
                                                                   dose_error_pct=23.0))
    manifest = read_job(copy)
    lines = split_lines((copy / "job.gcode").read_text(encoding="utf-8"))
    verification = verify_job(read_gcode(lines), manifest, read_header(lines))
    assert verification.ok
    content = record_content(copy, manifest, "socket://x", 115200, "Tess", {}, verification)
    recorded = content["tablets"][0]["actives"][0]
    (check,) = [c for c in verification.doses if c.tablet == 0]
    assert recorded["gcode_dose_mg"] == round(check.gcode_mg, 4) != 123.0
    assert recorded["dose_error_pct"] == round(check.error_pct, 4) != 23.0
    assert recorded["dose_mg"] == 100.0


def test_a_gcode_swapped_after_the_job_was_checked_is_not_sent(
    job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # read_job checks job.gcode's hash; print then reads the file again to prove and send
    # it. A file swapped in between is caught by the hash of the bytes actually read.
    import doseprint.printing as printing
    from doseprint.errors import JobIntegrityError

    copy = _copy(job, tmp_path)
    real_read_job = printing.read_job

    def read_then_swap(job_dir: Path, **kw: Any) -> Any:
        manifest = real_read_job(job_dir, **kw)
        gcode = copy / "job.gcode"
        gcode.write_text(_double_tablet_0(gcode.read_text(encoding="utf-8")),
                         encoding="utf-8")
        return manifest

    monkeypatch.setattr(printing, "read_job", read_then_swap)
    with pytest.raises(JobIntegrityError, match="changed since its job was checked"):
        _print(copy, tmp_path)
