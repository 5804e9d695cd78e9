"""Flow calibration by weighing, end to end through the command line: make the
calibration job, compute the multiplier from weighed masses, compile with it, and read
the dose back with the independent reader."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from conftest import ROOT
from doseprint.cli import main
from doseprint.job.flow_calibration import (
    CALIBRATIONS_ENV,
    DISCS,
    default_calibrations_path,
    load_calibrations,
)
from doseprint.library import load_formulations
from helpers.cli import run_cli
from helpers.independent_gcode import net_filament_mm

PRINTER = "generic-marlin-1x175"
FORMULATION = "hydrochlorothiazide-eudragitepo-10"
RX = ROOT / "tests" / "data" / "golden-rx.toml"
OVER = 1.03
"""The simulated printer lays 3 % more than it is fed."""


def run(args: list[object], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(capsys, *args)


@pytest.fixture(scope="module")
def cal_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cal") / "cal-job"
    with pytest.raises(SystemExit) as done:
        main(["calibrate", "flow", "--printer", PRINTER, "--formulation", FORMULATION,
              "--out", str(out)])
    assert done.value.code == 0
    return out


def test_calibration_job_gcode_carries_the_nominal_mass(cal_job: Path) -> None:
    manifest = json.loads((cal_job / "job.json").read_text())
    f = load_formulations()[FORMULATION]
    assert manifest["printer"]["id"] == PRINTER and manifest["formulation"]["id"] == FORMULATION
    assert len(manifest["objects"]) == DISCS
    fed = net_filament_mm((cal_job / "job.gcode").read_text().splitlines())
    area = math.pi * f.filament_diameter_mm**2 / 4.0
    for obj in manifest["objects"]:
        volume = math.pi * (obj["diameter_mm"] / 2) ** 2 * obj["height_mm"]
        # a 128-gon disc: within 0.1 % of the round one
        assert obj["volume_mm3"] == pytest.approx(volume, rel=1e-3)
        assert obj["nominal_mass_mg"] == pytest.approx(obj["volume_mm3"] * f.density_g_cm3,
                                                       rel=1e-6)
        mass = fed[(obj["index"], 0)] * area * f.density_g_cm3
        assert mass == pytest.approx(obj["nominal_mass_mg"], rel=2e-3)


def test_round_trip_weigh_store_compile_deliver(
    cal_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "cal.json"
    nominal = json.loads((cal_job / "job.json").read_text())["nominal_mass_mg"]
    masses = [round(nominal * OVER * s, 1) for s in (0.998, 1.0, 1.002)]
    code, out, _ = run(["calibrate", "flow", "--printer", PRINTER, "--formulation",
                        FORMULATION, "--job", cal_job, "--mass-mg", *masses,
                        "--calibrations", store], capsys)
    assert code == 0, out
    (entry,) = load_calibrations(store)
    k = nominal / (sum(masses) / len(masses))
    assert entry.multiplier == pytest.approx(k, rel=1e-6)
    assert entry.multiplier == pytest.approx(1 / OVER, rel=1e-3)
    assert entry.masses_mg == tuple(masses)

    job = tmp_path / "job"
    code, out, err = run(["compile", RX, "--printer", PRINTER, "--out", job,
                          "--calibrations", store], capsys)
    assert code == 0, err
    data = json.loads((job / "job.json").read_text())
    (tool,) = data["tools"]
    assert tool["extrusion_multiplier"] == pytest.approx(k, rel=1e-6)
    assert tool["flow_calibration"]["masses_mg"] == masses
    assert tool["flow_calibration"]["calibrated_utc"] == entry.calibrated_utc
    f = load_formulations()[FORMULATION]
    text = (job / "job.gcode").read_text()
    fed = net_filament_mm(text.splitlines())
    area = math.pi * f.filament_diameter_mm**2 / 4.0
    for t in data["tablets"]:
        (a,) = t["actives"]
        gcode_dose = fed[(t["index"], 0)] * area * f.density_g_cm3 * f.drug_loading
        # The E values stay the prescription (any reader of the file agrees with it); the
        # printer's flow factor k makes the printer that lays 1/k too much lay exactly them.
        assert gcode_dose == pytest.approx(a["dose_mg"], rel=5e-3)
        assert a["gcode_dose_mg"] == pytest.approx(gcode_dose, rel=1e-4)
    percent = f"{100 * k:.2f}".rstrip("0").rstrip(".")
    assert tool["flow_command"].startswith(f"M221 S{percent} ")
    lines = [ln.split(";")[0].strip() for ln in text.splitlines()]
    first_tablet = next(i for i, ln in enumerate(text.splitlines())
                        if ln.startswith(";TABLET:0"))
    flows = [i for i, ln in enumerate(lines) if ln.startswith("M221")]
    assert lines[flows[0]] == f"M221 S{percent}" and flows[0] < first_tablet
    assert lines[flows[-1]] == "M221 S100" and flows[-1] > first_tablet
    # gcode check knows the multiplier: the job passes ...
    code, out, _ = run(["gcode", "check", job], capsys)
    assert code == 0, out
    # ... and a file whose flow factor was edited away fails it.
    (job / "job.gcode").write_text(text.replace(f"M221 S{percent} ", "M221 S100 "))
    code, out, err = run(["gcode", "check", job], capsys)
    assert code == 1 and "flow calibration is" in err, (out, err)

@pytest.mark.parametrize(("masses", "key"), [
    (["0"], "'--mass-mg'"),              # refused as a mass, by the shared mass list
    (["650", "-1"], "'--mass-mg'"),
    (["650, nan"], "'--mass-mg'"),
    (["650 inf"], "'--mass-mg'"),
    (["650,heavy"], "'--mass-mg'"),
    (["650", "1000"], "--mass-mg[1]"),   # multiplier far below 0.85
    (["300"], "--mass-mg[0]"),           # far above 1.15
])
def test_bad_masses_exit_2_and_write_nothing(
    cal_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    masses: list[str], key: str,
) -> None:
    store = tmp_path / "cal.json"
    args = ["calibrate", "flow", "--printer", PRINTER, "--formulation", FORMULATION,
            "--job", cal_job, "--calibrations", store]
    code, _, err = run([*args, *[f"--mass-mg={m}" for m in masses]], capsys)
    assert code == 2
    assert key in err and "Traceback" not in err
    assert not store.exists()


@pytest.mark.parametrize("form", ["one value", "older trailing", "repeated"])
def test_the_mass_list_of_record_qc_and_the_older_forms_give_one_result(
    cal_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    store = tmp_path / "cal.json"
    nominal = json.loads((cal_job / "job.json").read_text())["nominal_mass_mg"]
    masses = [f"{nominal * s:.1f}" for s in (1.01, 1.02, 1.03)]
    given = {
        "one value": ["--mass-mg", f"{masses[0]}, {masses[1]} {masses[2]}"],
        "older trailing": ["--mass-mg", *masses],
        "repeated": [arg for m in masses for arg in ("--mass-mg", m)],
    }[form]
    code, _, err = run(["calibrate", "flow", "--printer", PRINTER, "--formulation",
                        FORMULATION, "--job", cal_job, "--calibrations", store, *given], capsys)
    assert code == 0, err
    (entry,) = load_calibrations(store)
    assert entry.masses_mg == tuple(float(m) for m in masses)


def test_a_bad_trailing_mass_is_named_as_mass_mg(
    cal_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "cal.json"
    code, _, err = run(["calibrate", "flow", "--printer", PRINTER, "--formulation",
                        FORMULATION, "--job", cal_job, "--calibrations", store,
                        "--mass-mg", "650", "651", "heavy"], capsys)
    assert code == 2 and "'--mass-mg'" in err and "heavy" in err
    assert not store.exists()


def test_job_for_another_formulation_or_a_changed_file_is_refused(
    cal_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "cal.json"
    code, _, err = run(["calibrate", "flow", "--printer", PRINTER, "--formulation",
                        "theophylline-hpc-30", "--job", cal_job, "--mass-mg", "650",
                        "--calibrations", store], capsys)
    assert code == 2 and "formulation.id" in err and not store.exists()
    changed = tmp_path / "formulations"
    changed.mkdir()
    src = ROOT / "formulations" / f"{FORMULATION}.toml"
    (changed / src.name).write_text(src.read_text() + "\n# lot 43\n")
    code, _, err = run(["calibrate", "flow", "--printer", PRINTER, "--formulation", FORMULATION,
                        "--formulations", changed, "--job", cal_job, "--mass-mg", "650",
                        "--calibrations", store], capsys)
    assert code == 2 and "formulation.sha256" in err and not store.exists()


def test_a_stale_calibration_is_not_applied_and_warns(
    cal_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "cal.json"
    nominal = json.loads((cal_job / "job.json").read_text())["nominal_mass_mg"]
    code, _, _ = run(["calibrate", "flow", "--printer", PRINTER, "--formulation", FORMULATION,
                      "--job", cal_job, "--mass-mg", round(nominal * 1.05, 1),
                      "--calibrations", store], capsys)
    assert code == 0
    changed = tmp_path / "formulations"
    changed.mkdir()
    src = ROOT / "formulations" / f"{FORMULATION}.toml"
    (changed / src.name).write_text(src.read_text() + "\n# lot 43\n")
    job = tmp_path / "job"
    code, _, err = run(["compile", RX, "--printer", PRINTER, "--out", job, "--formulations",
                        changed, "--calibrations", store], capsys)
    assert code == 0
    data = json.loads((job / "job.json").read_text())
    assert data["tools"][0]["extrusion_multiplier"] == 1.0
    assert data["tools"][0]["flow_calibration"] is None
    assert any("not applied" in w for w in data["warnings"])
    assert "not applied" in err


def test_a_broken_calibrations_file_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "cal.json"
    store.write_text('{"schema": "doseprint.calibrations/1", "flow": [{"printer": "x"}]}')
    code, _, err = run(["compile", RX, "--printer", PRINTER, "--out", tmp_path / "job",
                        "--calibrations", store], capsys)
    assert code == 2
    assert str(store) in err and "flow[0]" in err
    assert not (tmp_path / "job").exists()


def test_default_file_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CALIBRATIONS_ENV, str(tmp_path / "site.json"))
    assert default_calibrations_path() == tmp_path / "site.json"
    monkeypatch.delenv(CALIBRATIONS_ENV)
    assert default_calibrations_path().name == "calibrations.json"


def test_a_calibration_job_is_sealed_and_a_changed_nominal_mass_is_refused(
    cal_job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The nominal mass sets the flow factor of every later job: it is sealed like a dose.
    code, out, _ = run(["key", "verify", cal_job], capsys)
    assert code == 0 and "this site's key" in out
    copy = tmp_path / "cal-job"
    shutil.copytree(cal_job, copy)
    data = json.loads((copy / "job.json").read_text())
    data["nominal_mass_mg"] *= 1.1
    (copy / "job.json").write_text(json.dumps(data, indent=1))
    store = tmp_path / "cal.json"
    code, _, err = run(["calibrate", "flow", "--printer", PRINTER, "--formulation",
                        FORMULATION, "--job", copy, "--mass-mg", data["nominal_mass_mg"],
                        "--calibrations", store], capsys)
    assert code == 2 and "job.seal" in err and "changed after compile" in err
    assert not store.exists()
