"""`doseprint release`: a prescription's target beside its 3D prediction, and any mesh."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from conftest import EXAMPLES
from doseprint.compile import compile_prescription
from doseprint.library import load_formulations
from doseprint.release.analytical import finite_cylinder_released, sphere_released
from helpers.cli import run_cli as run

SOLIDS = {
    # name: (mesh, analytical fraction released at t_s with diffusivity d)
    "cylinder 10 x 4 mm": (lambda: trimesh.creation.cylinder(radius=5.0, height=4.0,
                                                             sections=256),
                           lambda t, d: finite_cylinder_released(t, 5.0, 4.0, d)),
    "disc 12 x 2 mm": (lambda: trimesh.creation.cylinder(radius=6.0, height=2.0,
                                                         sections=256),
                       lambda t, d: finite_cylinder_released(t, 6.0, 2.0, d)),
    "sphere 8 mm": (lambda: trimesh.creation.icosphere(subdivisions=5, radius=4.0),
                    lambda t, d: sphere_released(t, 4.0, d)),
}


@pytest.mark.parametrize("solid", sorted(SOLIDS))
def test_mesh_release_matches_crank(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], solid: str
) -> None:
    make, exact_of = SOLIDS[solid]
    stl = tmp_path / "solid.stl"
    make().export(stl)
    csv = tmp_path / "curve.csv"
    code, out, err = run(capsys, "release", "--mesh", str(stl), "--formulation",
                         "theophylline-hpc-30", "--csv", str(csv), "--json")
    assert code == 0, err
    row = json.loads(out)
    d = load_formulations()["theophylline-hpc-30"].diffusivity_mm2_s
    data = np.loadtxt(csv, delimiter=",", skiprows=1)
    assert csv.read_text().splitlines()[0] == "hours,theophylline"
    assert data[-1, 0] == pytest.approx(24.0)
    exact = exact_of(data[:, 0] * 3600.0, d)
    # Issue 4: within 0.01 of the analytical solution at every reported time.
    assert np.abs(data[:, 1] - exact).max() <= 0.01
    assert row["model"] == "3d-finite-volume" and row["t80_h"] > 0


@pytest.mark.parametrize("case", ["open", "unknown", "missing", "both", "drug-free"])
def test_mesh_release_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    stl = tmp_path / "m.stl"
    mesh = trimesh.creation.box([5, 5, 3])
    if case == "open":
        mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[:-2])
    mesh.export(stl)
    args = {"open": ["--mesh", str(stl), "--formulation", "theophylline-hpc-30"],
            "unknown": ["--mesh", str(stl), "--formulation", "nope"],
            "missing": ["--mesh", str(tmp_path / "none.stl"), "--formulation",
                        "theophylline-hpc-30"],
            "both": [str(EXAMPLES / "theophylline-sustained.toml"), "--mesh", str(stl),
                     "--formulation", "theophylline-hpc-30"],
            "drug-free": ["--mesh", str(stl), "--formulation", "pva-fast"]}[case]
    code, _, err = run(capsys, "release", *args)
    assert code == 2, err
    assert "Traceback" not in err


def test_prescription_release_shows_target_and_prediction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "release", str(EXAMPLES / "theophylline-sustained.toml"),
                         "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["target"].startswith("t80 8 h")
    assert row["model"] == "3d-finite-volume" and row["met"] is True
    assert abs(row["t80_h"] - 8.0) <= 0.8


def test_calibrate_writes_a_loadable_formulation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hours = np.array([0.5, 1, 2, 4, 6, 8, 12, 24])
    fraction = finite_cylinder_released(hours * 3600, 5.0, 4.0, 1.0e-4)
    csv = tmp_path / "lot42.csv"
    csv.write_text("hours,fraction\n" + "".join(f"{h},{f:.5f}\n"
                                                for h, f in zip(hours, fraction, strict=True)))
    site = tmp_path / "site"
    site.mkdir()
    out = site / "theophylline-hpc-30-lot42.toml"
    code, stdout, err = run(capsys, "formulation", "calibrate", "theophylline-hpc-30",
                            "--dissolution", str(csv), "--diameter", "10", "--height", "4",
                            "--out", str(out))
    assert code == 0, err
    assert "f2" in stdout
    fitted = load_formulations([site])["theophylline-hpc-30-lot42"]
    assert fitted.diffusivity_mm2_s == pytest.approx(1.0e-4, rel=0.02)
    assert any("lot42.csv" in s for s in fitted.sources)


@pytest.mark.parametrize("case", ["bad-csv", "not-toml", "unknown"])
def test_calibrate_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                             case: str) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("hours,fraction\n1,0.2\n2,abc\n4,0.6\n" if case == "bad-csv"
                   else "hours,fraction\n1,0.2\n2,0.4\n4,0.6\n8,0.8\n")
    out = tmp_path / ("x.txt" if case == "not-toml" else "x.toml")
    fid = "nope" if case == "unknown" else "theophylline-hpc-30"
    code, _, err = run(capsys, "formulation", "calibrate", fid, "--dissolution", str(csv),
                       "--diameter", "10", "--height", "4", "--out", str(out))
    assert code == 2, err
    assert not out.exists() and "Traceback" not in err


def test_release_judges_a_sparse_design_as_compile_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    """`release` designs with the settings compile slices with (the prescription's infill
    pattern and solid layers, the profile's perimeters), so the judgement it shows is the
    one compile writes into job.json. The lattice example as a gyroid: a rectilinear
    slicing of it would leave other gaps and predict another release."""
    text = (EXAMPLES / "theophylline-immediate-lattice.toml").read_text(encoding="utf-8")
    rx = tmp_path / "lattice-gyroid.toml"
    rx.write_text(text.replace("infill = 0.6", 'infill = 0.6\ninfill_pattern = "gyroid"')
                  .replace("units = 2", "units = 1"), encoding="utf-8")
    code, out, err = run(capsys, "release", str(rx), "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    job = compile_prescription(rx, "generic-marlin-1x175").job
    (tablet,) = job["tablets"]
    assert tablet["design"]["infill_pattern"] == "gyroid"
    (active,) = tablet["actives"]
    written = active["release"]
    assert (row["kind"], row["model"], row["met"], row["reason"]) == (
        written["kind"], written["model"], written["met"], written["reason"])
    for key, digits in (("t50_h", 3), ("t80_h", 3), ("mdt_h", 3), ("f2", 2),
                        ("released_at_0_5_h", 4)):
        shown = None if row[key] is None else round(row[key], digits)
        assert shown == written[key], key
