"""A sparse tablet end to end: 200 mg of theophylline from a sustained-release matrix, made
to release immediately as a 60 % open lattice. The dose is judged from the G-code by the
tests' own reader; the release from job.json's curve, here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from doseprint.errors import InfeasibleDesignError
from doseprint.job.compile import compile_prescription, write_job
from pipeline.rx import write_rx
from pipeline.test_compile import doses_from_gcode


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sparse")
    rx = write_rx(folder, dose_mg=200.0, release="immediate",
                  extra_active='formulation = "theophylline-hpc-30"', tablet="infill = 0.6")
    out = folder / "job"
    write_job(compile_prescription(rx, "generic-marlin-1x175"), out)
    return out


def test_the_lattice_carries_the_dose_by_the_gcode(job: Path) -> None:
    data = json.loads((job / "job.json").read_text())
    doses = doses_from_gcode(job)
    for t in data["tablets"]:
        assert t["design"]["infill"] == 0.6
        assert [a["api"] for a in t["actives"]] == ["theophylline"]
        assert abs(doses[(t["index"], "theophylline")] - 200.0) <= 0.005 * 200.0


def test_its_gaps_make_it_release_immediately(job: Path) -> None:
    data = json.loads((job / "job.json").read_text())
    (a,) = data["tablets"][0]["actives"]
    curve = a["release"]["curve"]
    assert a["release"]["model"].startswith("3d-finite-volume")
    at_half = next(f for h, f in curve if h >= 0.5)
    assert at_half >= 0.85
    assert a["release"]["met"] is True


def test_no_solid_tablet_of_that_dose_can(tmp_path: Path) -> None:
    rx = write_rx(tmp_path, dose_mg=200.0, release="immediate",
                  extra_active='formulation = "theophylline-hpc-30"', tablet="infill = 1.0")
    with pytest.raises(InfeasibleDesignError, match="released at 30 min"):
        compile_prescription(rx, "generic-marlin-1x175")


def test_a_gyroid_lattice_from_the_prescription(tmp_path: Path) -> None:
    """`[tablet] infill_pattern` reaches the slicer and the job: the dose stays exact, and
    the release is predicted with the gyroid's own gaps (job.json records the pattern)."""
    rx = write_rx(tmp_path, dose_mg=200.0, release="immediate",
                  extra_active='formulation = "theophylline-hpc-30"',
                  tablet='infill = 0.6\ninfill_pattern = "gyroid"', units=1)
    out = tmp_path / "job"
    write_job(compile_prescription(rx, "generic-marlin-1x175"), out)
    data = json.loads((out / "job.json").read_text())
    (t,) = data["tablets"]
    assert t["design"]["infill_pattern"] == "gyroid"
    assert abs(doses_from_gcode(out)[(0, "theophylline")] - 200.0) <= 0.005 * 200.0
    (a,) = t["actives"]
    assert a["release"]["met"] is True
