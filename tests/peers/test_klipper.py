"""doseprint's G-code as Klipper's own host plans it (klippy in batch mode, unmodified).

Every shipped example, compiled for each Klipper profile it fits, plans with no error and
no unknown command, and the filament Klipper's planner queues for each extruder in each
``;TABLET:`` section is the filament job.json and doseprint's reader account there. The
harness is shown to fail where Klipper fails: a printer.cfg without the T<k> macros, a
stock minimum extrusion temperature, a move off the bed, a move over the extrusion limit.

Klipper's messages checked here, and where they come from: ``Unknown command:"T1"``
(klippy/gcode.py ``cmd_default``), ``Extrude below minimum temp`` and ``Move exceeds
maximum extrusion`` (klippy/kinematics/extruder.py ``check_move``), ``Move out of range``
(klippy/toolhead.py ``Move.move_error``, raised by klippy/kinematics/cartesian.py).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from doseprint.gcode.reader import dose_mg, read_gcode, read_gcode_file
from doseprint.gcode.render import render_gcode
from doseprint.library import load_library
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plate import place_tablets
from doseprint.tolerances import tol
from helpers.synthetic_gcode import TOOLS, one_tool_tablets, two_tool_tablets

from .conftest import KLIPPER_JOBS, TWO_TOOLS, ExampleJobs, PlannedJob
from .klipper import KlipperHost, printer_cfg, read_run, with_section_commands

# One worker plans every example in klippy once per run (the session fixture).
pytestmark = pytest.mark.xdist_group("klipper")

LIB = load_library()
POLYPILL = ("polypill-theophylline-hctz", TWO_TOOLS)

# Klipper's floats against the reader's: E words have 5 decimals, their sums agree to
# far below a micrometre of filament.
AGREE_MM = 1e-6


def nonzero(table: dict[tuple[int | None, int], float]) -> dict[tuple[int | None, int], float]:
    return {k: v for k, v in table.items() if abs(v) > 1e-9}


# Every example on every Klipper profile it fits -------------------------------------------


@pytest.mark.parametrize(("example", "profile_id"), KLIPPER_JOBS,
                         ids=[f"{e}-{p}" for e, p in KLIPPER_JOBS])
def test_example_plans_in_klipper_with_each_dose_in_its_tablet(
    example_jobs: ExampleJobs, example: str, profile_id: str,
) -> None:
    planned = example_jobs.get(example, profile_id)
    run, job = planned.run, planned.job
    assert run.ok and run.returncode == 0, run.summary()
    assert run.print_time_s is not None and run.motion_s > 0.0

    # Section by section and extruder by extruder, Klipper's planner feeds what
    # doseprint's reader reads from the file (the tool of T<k> is Klipper's extruder k).
    reading = read_gcode_file(planned.folder / "job.gcode")
    klipper, ours = nonzero(run.filament_mm), nonzero(reading.filament_mm)
    assert set(klipper) == set(ours)
    for key, mm in ours.items():
        assert klipper[key] == pytest.approx(mm, abs=AGREE_MM), key

    # ... which is job.json's figure for every tablet and API, within the dose tolerance.
    tools = job["tools"]
    for tablet in job["tablets"]:
        for active in tablet["actives"]:
            t = tools[active["tool"]]
            fed = klipper[(tablet["index"], active["tool"])]
            assert fed == pytest.approx(active["filament_mm"], abs=2e-5)
            mg = dose_mg(fed, t["filament_diameter_mm"], t["density_g_cm3"], t["drug_loading"])
            assert mg == pytest.approx(active["gcode_dose_mg"], abs=1e-3)
            assert abs(mg - active["dose_mg"]) <= tol.dose_rel * active["dose_mg"]

    # Every tool the job uses is primed in ;TABLET:NONE; no other extruder feeds.
    used = {k for _, k in klipper}
    assert used == set(range(len(tools)))
    for k in used:
        assert klipper[(None, k)] > 0.0


def test_the_two_drug_example_feeds_each_drug_through_its_own_extruder(
    example_jobs: ExampleJobs,
) -> None:
    planned = example_jobs.get(*POLYPILL)
    by_api = {t["api"]: t["tool"] for t in planned.job["tools"]}
    assert by_api == {"theophylline": 0, "hydrochlorothiazide": 1}
    for tablet in planned.job["tablets"]:
        for extruder in (0, 1):
            assert planned.run.filament_mm[(tablet["index"], extruder)] > 10.0
    assert "// Activating extruder extruder1" in planned.run.responses


# The harness fails where Klipper does -----------------------------------------------------


def polypill(example_jobs: ExampleJobs) -> PlannedJob:
    return example_jobs.get(*POLYPILL)


def test_a_printer_cfg_without_the_tool_macros_answers_unknown_t1(
    example_jobs: ExampleJobs, klipper_host: KlipperHost,
) -> None:
    planned = polypill(example_jobs)
    run = klipper_host.run(planned.folder / "job.gcode", planned.profile,
                           overrides={"gcode_macro T0": None, "gcode_macro T1": None})
    assert not run.ok
    assert "T1" in run.unknown_commands and "T0" in run.unknown_commands
    # ... and, as on such a printer, every drug goes through the first extruder.
    assert {k for _, k in nonzero(run.filament_mm)} == {0}
    assert (run.filament_mm[(0, 0)] == pytest.approx(
        planned.run.filament_mm[(0, 0)] + planned.run.filament_mm[(0, 1)], abs=AGREE_MM))


def test_a_stock_min_extrude_temp_stops_the_135_c_formulation(
    example_jobs: ExampleJobs, klipper_host: KlipperHost,
) -> None:
    # printer.cfg without min_extrude_temp: Klipper's default, 170 °C (klippy/extras/heaters.py).
    planned = polypill(example_jobs)
    run = klipper_host.run(planned.folder / "job.gcode", planned.profile,
                           overrides={"extruder": {"min_extrude_temp": None},
                                      "extruder1": {"min_extrude_temp": None}})
    assert not run.ok and run.returncode != 0
    assert "!! Extrude below minimum temp" in run.errors
    assert run.print_time_s is None


def test_a_move_off_the_bed_is_reported(
    example_jobs: ExampleJobs, klipper_host: KlipperHost,
) -> None:
    planned = polypill(example_jobs)
    text = (planned.folder / "job.gcode").read_text()
    x_off = planned.profile.bed_mm[0] + 10.0
    text = text.replace(";TABLET:1\n", f";TABLET:1\nG1 X{x_off:g} Y100 F3000\n", 1)
    run = klipper_host.run_text(text, planned.profile)
    assert not run.ok and run.returncode != 0
    assert any(e.startswith(f"!! Move out of range: {x_off:.3f} 100.000") for e in run.errors)


def test_a_move_over_the_extrusion_limit_is_reported(
    example_jobs: ExampleJobs, klipper_host: KlipperHost,
) -> None:
    planned = polypill(example_jobs)
    run = klipper_host.run(planned.folder / "job.gcode", planned.profile,
                           overrides={"extruder": {"max_extrude_cross_section": 0.05}})
    assert not run.ok
    assert any(e.startswith("!! Move exceeds maximum extrusion") for e in run.errors)


def test_filament_asked_for_but_never_planned_is_an_error(tmp_path: Path) -> None:
    """The probe counts the E the G-code layer asked the toolhead for and the E the planner
    queued; a difference (a move Klipper accepted and then dropped) is an error."""
    log = tmp_path / "klippy.log"
    log.write_text("Exiting (print time 12.500s)\n")
    results = tmp_path / "probe.json"
    results.write_text(json.dumps({
        "commanded_mm": [[None, "extruder", 3.0], [0, "extruder1", 5.0]],
        "planned_mm": [[None, "extruder", 3.0], [0, "extruder1", 4.5]],
        "untagged_moves": 0, "motion_s": 12.0, "homing_s": 0.0, "first_move_s": 0.25,
        "last_move_end_s": 12.25}))
    responses = tmp_path / "responses.txt"
    responses.write_text('// Unknown command:"T7"\n')
    done = subprocess.CompletedProcess(["klippy"], 0, "", "")
    run = read_run(done, log, results, responses)
    assert run.print_time_s == 12.5 and run.unknown_commands == ("T7",)
    assert run.filament_mm == {(None, 0): 3.0, (0, 1): 4.5}
    assert run.errors == ("section 0, extruder 1: 0.500000 mm of filament asked for but "
                          "never planned",)
    results.unlink()
    failed = read_run(subprocess.CompletedProcess(["klippy"], 255, "", ""), log, results,
                       responses)
    assert "the probe wrote no results" in failed.errors
    assert "klippy exited with status 255" in failed.errors


# Temperatures as Klipper checks them ------------------------------------------------------


def render_for_klipper(profile: PrinterProfile, tools: tuple, tablets: list,  # type: ignore[type-arg]
                       multipliers: list[float] | None = None) -> str:
    plate = place_tablets(profile, [9.0] * len(tablets), "rx.toml", tools=len(tools))
    return render_gcode(profile, tools, plate, tablets, ["test"],
                        extrusion_multipliers=multipliers).text


@pytest.mark.parametrize(("dip_c", "refused"), [(0.0, False), (3.0, True)])
def test_printing_at_exactly_the_firmwares_limit_fails_once_the_nozzle_dips(
    klipper_host: KlipperHost, dip_c: float, refused: bool,
) -> None:
    """Theophylline prints at 170 °C. On a printer.cfg at the default 170 °C it plans while
    the nozzle holds its target, and stops as soon as it runs 3 °C under it: why compile
    asks for a margin (tol.extrude_temp_margin_c) above the firmware's limit."""
    theophylline = TOOLS[0]
    assert theophylline.nozzle_temp_c == 170.0
    # Rendered for a printer.cfg at 160 °C, then run on one at 170 °C.
    profile = dataclasses.replace(LIB.printers["generic-klipper-1x175"],
                                  min_extrude_temp_c=160.0)
    text = render_for_klipper(profile, TOOLS[:1], one_tool_tablets([3]))
    run = klipper_host.run_text(text, profile, temperature_dip_c=dip_c,
                                overrides={"extruder": {"min_extrude_temp": 170}})
    assert ("!! Extrude below minimum temp" in run.errors) is refused
    assert run.ok is not refused, run.summary()


def test_a_calibrated_job_keeps_its_flow_factor_through_every_tool_change(
    klipper_host: KlipperHost,
) -> None:
    """Klipper resets M221 whenever the extruder changes (klippy/extras/gcode_move.py
    ``_handle_activate_extruder``): the job sends it again after each T<k>, so Klipper
    feeds each tool k times the file's E in every section, priming included."""
    profile = LIB.printers[TWO_TOOLS]
    k_tool = [1.02, 0.97]
    text = render_for_klipper(profile, TOOLS, two_tool_tablets(2), k_tool)
    run = klipper_host.run_text(text, profile)
    assert run.ok, run.summary()
    ours = nonzero(read_gcode(text.splitlines()).filament_mm)
    assert set(nonzero(run.filament_mm)) == set(ours)
    for (section, tool), mm in ours.items():
        assert run.filament_mm[(section, tool)] == pytest.approx(k_tool[tool] * mm, abs=1e-5)


# The harness's figures ---------------------------------------------------------------------


def test_print_time_is_klippers_own_and_repeatable(
    example_jobs: ExampleJobs, klipper_host: KlipperHost,
) -> None:
    planned = example_jobs.get("hydrochlorothiazide-immediate", TWO_TOOLS)
    first = planned.run
    again = klipper_host.run(planned.folder / "job.gcode", planned.profile)
    assert again.print_time_s == first.print_time_s
    assert again.motion_s == pytest.approx(first.motion_s, abs=1e-9)
    assert first.print_time_s is not None and first.job_time_s is not None
    # Klipper's clock = batch-mode homing + the job; the job is its moves plus the
    # planner's start-up buffers and the end's dwell (well under a second here).
    assert first.job_time_s == pytest.approx(first.print_time_s - first.homing_s)
    assert 0.0 <= first.job_time_s - first.motion_s < 1.0
    assert first.first_move_s is not None
    assert first.last_move_end_s - first.first_move_s == pytest.approx(first.motion_s, abs=0.5)


def test_printer_cfg_follows_the_profile(tmp_path: Path) -> None:
    profile = dataclasses.replace(
        LIB.printers[TWO_TOOLS], origin="center", acceleration_mm_s2=2500.0,
        max_extrude_only_speed_mm_s=30.0, min_extrude_temp_c=150.0)
    cfg = printer_cfg(profile, probe_results=tmp_path / "r.json",
                      probe_responses=tmp_path / "s.txt",
                      overrides={"extruder1": {"pressure_advance": 0.05},
                                 "gcode_macro T1": None})
    sections = {block.split("]")[0]: block for block in cfg.split("\n[")}
    assert "max_accel: 2500" in sections["printer"]
    assert "max_velocity: 120" in sections["printer"]
    assert "position_min: -110" in sections["stepper_x"]
    assert "position_max: 110" in sections["stepper_x"]
    for name in ("extruder", "extruder1"):
        assert "min_extrude_temp: 150" in sections[name]
        assert "max_extrude_only_velocity: 30" in sections[name]
    assert "pressure_advance: 0.05" in sections["extruder1"]
    assert "gcode_macro T0" in sections and "gcode_macro T1" not in sections
    assert with_section_commands(";TABLET:3\nG1 X1\n;TABLET:NONE \n; TABLET:2\n") == (
        "DOSEPRINT_SECTION TABLET=3\nG1 X1\nDOSEPRINT_SECTION TABLET=NONE\n; TABLET:2\n")
