"""The first end-to-end path: prescription -> job folder, checked from the outside."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import trimesh

from conftest import EXAMPLES
from doseprint.compile import compile_prescription, write_job
from doseprint.errors import DiskError, InfeasibleDesignError, InputError
from doseprint.job.folder import read_job, sha256_bytes
from doseprint.library import load_formulations
from helpers.independent_gcode import doses_from_gcode
from helpers.rx import write_rx


@pytest.fixture(scope="module")
def example_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("jobs") / "job"
    write_job(compile_prescription(EXAMPLES / "theophylline-sustained.toml",
                                   "generic-marlin-1x175"), out)
    return out


def test_job_folder_holds_what_job_md_lists(example_job: Path) -> None:
    assert sorted(p.name for p in example_job.iterdir()) == [
        "job.gcode", "job.json", "job.seal", "preview.html", "tablets.3mf"]
    job = read_job(example_job).to_json()  # also checks the seal and every hash
    assert job["schema"] == "doseprint.job/1"
    assert job["gcode"]["sha256"] == sha256_bytes((example_job / "job.gcode").read_bytes())
    assert job["gcode"]["lines"] == len((example_job / "job.gcode").read_text().splitlines())
    assert job["gcode"]["estimated_print_s"] > 0
    assert job["prescription"]["id"] == "RX-2026-000123"
    assert job["prescription"]["content"]["actives"][0]["api"] == "theophylline"
    tool = job["tools"][0]
    for key in ("tool", "formulation", "api", "drug_loading", "density_g_cm3",
                "filament_diameter_mm", "formulation_sha256"):
        assert key in tool
    for t in job["tablets"]:
        assert set(t) >= {"index", "center_mm", "design", "actives"}
        a = t["actives"][0]
        for key in ("api", "tool", "dose_mg", "design_volume_mm3", "gcode_dose_mg",
                    "dose_error_pct", "release"):
            assert key in a
        r = a["release"]
        assert r["kind"] == "sustained" and r["met"] is True
        assert r["curve"][0] == [0.0, 0.0] and r["curve"][-1][0] >= 16.0
        assert abs(r["t80_h"] - 8.0) <= 0.8


def test_gcode_dose_matches_prescription_by_an_independent_reading(example_job: Path) -> None:
    job = json.loads((example_job / "job.json").read_text())
    doses = doses_from_gcode(example_job)
    assert len(doses) == len(job["tablets"]) == 4
    for (index, api), dose in doses.items():
        prescribed = job["tablets"][index]["actives"][0]["dose_mg"]
        assert api == "theophylline"
        # job.md tolerance is 1 %; the flow trim aims at 0.2 %.
        assert abs(dose - prescribed) <= 0.002 * prescribed
        assert dose == pytest.approx(job["tablets"][index]["actives"][0]["gcode_dose_mg"],
                                     abs=1e-3)


def test_header_and_markers(example_job: Path) -> None:
    text = (example_job / "job.gcode").read_text()
    head = text.splitlines()[:6]
    assert head[0].startswith("; doseprint ")
    assert any("prescription RX-2026-000123 sha256 " in h for h in head)
    assert any("printer generic-marlin-1x175" in h for h in head)
    assert any("tool T0 formulation " in h for h in head)
    markers = {line for line in text.splitlines() if line.startswith(";TABLET:")}
    assert markers == {";TABLET:NONE", ";TABLET:0", ";TABLET:1", ";TABLET:2", ";TABLET:3"}


def test_3mf_has_one_object_per_tablet_with_the_design_volume(example_job: Path) -> None:
    scene = trimesh.load(example_job / "tablets.3mf")
    job = json.loads((example_job / "job.json").read_text())
    assert len(scene.geometry) == len(job["tablets"])
    for t in job["tablets"]:
        prefix = f"tablet-{t['index']}/"
        (geom,) = [g for name, g in scene.geometry.items() if name.startswith(prefix)]
        assert geom.is_watertight
        assert geom.volume == pytest.approx(t["design"]["volume_mm3"], rel=1e-3)


def test_taper_schedule_each_tablet_its_own_dose(tmp_path: Path) -> None:
    schedule = [150.0, 137.5, 125.0, 112.5, 100.0, 87.5]
    rx = write_rx(tmp_path, dose_mg=150.0, units=6, schedule=schedule,
                  extra_active="t80_h = 6.0")
    out = tmp_path / "job"
    write_job(compile_prescription(rx, "generic-marlin-1x175"), out)
    doses = doses_from_gcode(out)
    for i, want in enumerate(schedule):
        assert abs(doses[(i, "theophylline")] - want) <= 0.002 * want
    job = json.loads((out / "job.json").read_text())
    assert [t["actives"][0]["dose_mg"] for t in job["tablets"]] == schedule
    assert all(t["actives"][0]["release"]["met"] for t in job["tablets"])


@pytest.mark.parametrize("printer", [
    "generic-klipper-1x175", "generic-marlin-2x175", "generic-rrf-1x175"])
def test_other_printers(tmp_path: Path, printer: str) -> None:
    rx = write_rx(tmp_path, units=1)
    out = tmp_path / "job"
    write_job(compile_prescription(rx, printer), out)
    (dose,) = doses_from_gcode(out).values()
    assert abs(dose - 100.0) <= 0.2


def test_absolute_extrusion_profile(tmp_path: Path) -> None:
    shipped = (Path(__file__).resolve().parents[2] / "printer_profiles"
               / "generic-marlin-1x175.toml").read_text()
    site = tmp_path / "printers"
    site.mkdir()
    (site / "abs-e.toml").write_text(
        shipped.replace('id = "generic-marlin-1x175"', 'id = "abs-e"')
        .replace('extrusion = "relative"', 'extrusion = "absolute"'))
    rx = write_rx(tmp_path, units=2)
    out = tmp_path / "job"
    write_job(compile_prescription(rx, "abs-e", printer_dirs=[site]), out)
    text = (out / "job.gcode").read_text()
    assert "M82" in text and "M83" not in text
    for dose in doses_from_gcode(out).values():
        assert abs(dose - 100.0) <= 0.2


def test_moves_stay_on_the_bed_and_temperatures_within_limits(example_job: Path) -> None:
    formulation = load_formulations()["theophylline-hpc-30"]
    for line in (example_job / "job.gcode").read_text().splitlines():
        code = line.split(";")[0].split()
        if not code:
            continue
        words = {w[0]: w[1:] for w in code[1:]}
        if code[0] in ("G0", "G1"):
            for axis, limit in (("X", 220.0), ("Y", 220.0), ("Z", 250.0)):
                if axis in words:
                    assert 0.0 <= float(words[axis]) <= limit
        if code[0] in ("M104", "M109") and "S" in words:
            assert float(words["S"]) <= formulation.max_temp_c


def test_infeasible_target_is_refused_with_the_closest_figure(tmp_path: Path) -> None:
    rx = write_rx(tmp_path, extra_active="t80_h = 0.3", units=1,
                  tablet="max_length_mm = 12.0")
    with pytest.raises(InfeasibleDesignError) as info:
        compile_prescription(rx, "generic-marlin-1x175")
    message = str(info.value)
    assert "actives[0].t80_h" in message
    assert "fastest reachable t80" in message
    assert any(ch.isdigit() for ch in message.split("fastest reachable t80")[1])


def test_more_tablets_than_the_bed_holds_is_bad_input(tmp_path: Path) -> None:
    rx = write_rx(tmp_path, dose_mg=300.0, units=400)
    with pytest.raises(InputError) as info:
        compile_prescription(rx, "generic-marlin-1x175")
    assert "dispense.units" in str(info.value)


def test_a_28_tablet_taper_fits_one_plate(tmp_path: Path) -> None:
    schedule = [float(200 - 5 * i) for i in range(28)]
    rx = write_rx(tmp_path, dose_mg=200.0, units=28, schedule=schedule,
                  extra_active="t80_h = 6.0")
    compiled = compile_prescription(rx, "generic-marlin-1x175")
    for check in compiled.verification.doses:
        assert abs(check.error_pct) <= 0.2


def test_failed_write_leaves_the_previous_job_untouched(
    example_job: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "job"
    rx = write_rx(tmp_path, units=1)
    compiled = compile_prescription(rx, "generic-marlin-1x175")
    write_job(compiled, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        if Path(dst) == out and str(src).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(DiskError):
        write_job(compiled, out, force=True)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", "rx.toml"]


def test_existing_out_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "job"
    compiled = compile_prescription(write_rx(tmp_path, units=1), "generic-marlin-1x175")
    write_job(compiled, out)
    before = (out / "job.json").read_bytes()
    with pytest.raises(InputError):
        write_job(compiled, out)
    assert (out / "job.json").read_bytes() == before
    folder = out.stat().st_ino
    write_job(compiled, out, force=True)  # an earlier job: replaced by a new folder
    assert out.stat().st_ino != folder and (out / "job.json").read_bytes() == before


@pytest.mark.parametrize("make", [
    pytest.param(lambda d: (d / "keep.txt").write_text("mine"), id="a folder of notes"),
    pytest.param(lambda d: (d / "job.json").write_text('{"schema": "other/1"}'),
                 id="another program's job.json"),
    pytest.param(lambda d: (d / "job.json").write_text("not json"), id="garbled job.json"),
])
def test_force_replaces_no_folder_doseprint_did_not_write(tmp_path: Path, make: Any) -> None:
    out = tmp_path / "job"
    out.mkdir()
    make(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    compiled = compile_prescription(write_rx(tmp_path, units=1), "generic-marlin-1x175")
    with pytest.raises(InputError) as caught:
        write_job(compiled, out, force=True)
    assert caught.value.problems[0].key == "--out"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_force_replaces_no_job_folder_that_holds_more(tmp_path: Path) -> None:
    # A job folder the pharmacist has added a file to (notes, a weighing sheet, a
    # sub-folder) is no longer only a job: --force must not delete what was added.
    out = tmp_path / "job"
    compiled = compile_prescription(write_rx(tmp_path, units=1), "generic-marlin-1x175")
    write_job(compiled, out)
    for extra in ("weighing.csv", "photos/"):
        path = out / extra.rstrip("/")
        path.mkdir() if extra.endswith("/") else path.write_text("mass_mg\n401.2\n")
        with pytest.raises(InputError, match=extra.rstrip("/")):
            write_job(compiled, out, force=True)
        assert path.exists()
        path.rmdir() if extra.endswith("/") else path.unlink()
    link = tmp_path / "link"
    link.symlink_to(out, target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        write_job(compiled, link, force=True)
    assert (out / "job.json").exists() and link.is_symlink()


def test_reprapfirmware_sets_tool_temperatures_with_g10(tmp_path: Path) -> None:
    from doseprint.gcode.reader import read_gcode

    out = tmp_path / "job"
    write_job(compile_prescription(write_rx(tmp_path, units=1), "generic-rrf-1x175"), out)
    text = (out / "job.gcode").read_text()
    assert "G10 P0 S" in text and "M116" in text
    reading = read_gcode(text.splitlines())
    formulation = json.loads((out / "job.json").read_text())["tools"][0]
    assert reading.nozzle_temps_c[0] == pytest.approx(formulation["nozzle_temp_c"])
