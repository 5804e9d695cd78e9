"""A written job folder checked again (`gcode check`): the same verification compile ran,
and the error it is reported with."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from doseprint.errors import DoseCheckError
from doseprint.job.verify import dose_check_error, verify_job_folder


def test_a_fresh_job_passes(two_drug_job: Path) -> None:
    verification = verify_job_folder(two_drug_job)
    assert verification.ok and verification.doses
    assert dose_check_error(verification, two_drug_job) is None


def test_an_overfed_tablet_is_named(two_drug_job: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    shutil.copytree(two_drug_job, job)
    gcode = job / "job.gcode"
    lines = gcode.read_text().splitlines()
    start = lines.index(";TABLET:1")
    extrusion = re.compile(r"^G1 X\S+ Y\S+ E(\d+\.\d+)")
    i = next(i for i in range(start + 1, len(lines)) if extrusion.match(lines[i]))
    lines[i] = re.sub(r" E\d+\.\d+", " E50", lines[i])
    gcode.write_text("\n".join(lines) + "\n")
    error = dose_check_error(verify_job_folder(job), job)
    assert isinstance(error, DoseCheckError)
    assert error.message.startswith(f"{job / 'job.gcode'}: dose check failed")
    assert "tablet 1:" in error.message
    assert error.hint is not None and "do not print" in error.hint
