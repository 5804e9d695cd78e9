"""A sparse tablet end to end: 200 mg of theophylline from a sustained-release matrix, made
to release immediately as a 60 % open lattice. The dose is judged from the G-code by the
tests' own reader; the release from job.json's curve, here."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from doseprint.compile import (
    compile_prescription,
    road_mm,
    sparse_voids,
    write_job,
)
from doseprint.design.cylinder import LayerGrid
from doseprint.design.designer import design_tablets
from doseprint.errors import InfeasibleDesignError
from doseprint.geometry.tablet import build_mesh
from doseprint.library import load_formulations
from doseprint.models.load import load_prescription
from doseprint.release.predict import predict_3d
from doseprint.slicer.plan import SliceSettings, plan_tablet
from helpers.independent_gcode import doses_from_gcode
from helpers.rx import write_rx


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


def test_a_solid_skin_seals_the_lattice_and_slows_its_release(tmp_path: Path) -> None:
    """`[tablet] solid_layers` closes the lattice top and bottom: its gaps then hold air,
    not medium (the 3D model leaves sealed gaps out), so the same tablet releases far
    more slowly than as an open lattice."""
    rx = load_prescription(write_rx(tmp_path, dose_mg=200.0, release="immediate",
                                    extra_active='formulation = "theophylline-hpc-30"',
                                    tablet="infill = 0.6", units=1))
    formulations = load_formulations()
    design = design_tablets(rx, formulations, LayerGrid(0.2, 0.2))[0].design
    mesh = build_mesh(design)
    actives = {a.api: a for a in rx.actives}
    released = {}
    for skin in (0, 2):
        settings = replace(SliceSettings.for_nozzle(0.4, 0.2, 0.2), solid_bottom_layers=skin,
                           solid_top_layers=skin)
        paths = plan_tablet(mesh, design, dict(formulations), settings)
        (r,) = predict_3d(design, mesh.meshes, actives, formulations,
                          voids=sparse_voids(design, paths), road_mm=road_mm(settings))
        released[skin] = float(np.interp(0.5, r.hours, r.fraction))
    assert released[0] >= 0.85
    assert released[2] < released[0] - 0.3


def test_the_profile_sets_the_perimeter_count(tmp_path: Path) -> None:
    profiles = tmp_path / "printers"
    profiles.mkdir()
    text = (ROOT / "printer_profiles" / "generic-marlin-1x175.toml").read_text()
    (profiles / "three-walls.toml").write_text(
        text.replace('id = "generic-marlin-1x175"', 'id = "three-walls"') + "perimeters = 3\n")
    rx = write_rx(tmp_path, dose_mg=100.0, units=1)
    compiled = compile_prescription(rx, "three-walls", printer_dirs=[profiles])
    (t,) = compiled.job["tablets"]
    assert t["design"]["perimeters"] == 3
    walls = [r for r in compiled.toolpaths[0][0].layers[3].roads if r.kind == "perimeter"]
    assert len(walls) == 3
    write_job(compiled, tmp_path / "job")
    assert abs(doses_from_gcode(tmp_path / "job")[(0, "theophylline")] - 100.0) <= 0.5
