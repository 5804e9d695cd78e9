"""Multi-material G-code: tool changes through each flavour's template, a purge tower off
the tablets, ooze control (retraction and standby temperatures), temperature limits, and
the time estimate — all read back with the independent reader."""

from __future__ import annotations

import math
import re

import pytest

from doseprint.gcode.reader import read_gcode
from doseprint.gcode.render import (
    HEATING_ALLOWANCE_S,
    REHEAT_C_PER_S,
    TOOL_CHANGE_S,
    GcodeProgram,
    purge_tower,
    render_gcode,
)
from doseprint.job.verify import limit_problems
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plate import GAP_MM, Plate, place_tablets
from helpers.independent_gcode import net_filament_mm
from helpers.synthetic_gcode import (
    TOOLS,
    WIDTH_MM,
    motion_seconds,
    profile_for,
    trace,
    two_tool_tablets,
)

FLAVORS = ["marlin", "klipper", "reprapfirmware"]


def render(profile: PrinterProfile, n: int = 3) -> tuple[GcodeProgram, Plate, list]:  # type: ignore[type-arg]
    tablets = two_tool_tablets(n)
    tower = purge_tower(profile, 2, WIDTH_MM, 0.2)
    assert tower is not None
    plate = place_tablets(profile, [9.0] * n, "rx.toml", tower_mm=tower.size_mm, tools=2)
    program = render_gcode(profile, TOOLS, plate, tablets, ["test"], tower=tower)
    return program, plate, tablets


@pytest.mark.parametrize("extrusion", ["relative", "absolute"])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_tablet_doses_exact_and_both_readers_agree(flavor: str, extrusion: str) -> None:
    profile = profile_for(flavor, extrusion)
    program, _, tablets = render(profile)
    lines = program.text.splitlines()
    ours = read_gcode(lines).filament_mm
    theirs = net_filament_mm(lines)
    assert set(ours) == set(theirs)
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-4)
    area = math.pi * profile.filament_diameter_mm**2 / 4.0
    for tablet in tablets:
        for comp in tablet:
            want = comp.target_volume_mm3 / area
            assert theirs[(comp.tablet, comp.tool)] == pytest.approx(want, rel=1e-4)
    # Both tools purge (the tower and the purge line are the only material off the tablets).
    assert theirs[(None, 0)] > 0 and theirs[(None, 1)] > 0


@pytest.mark.parametrize("flavor", FLAVORS)
def test_purge_tower_only_in_none_sections_inside_the_bed_clear_of_tablets(flavor: str) -> None:
    profile = profile_for(flavor)
    program, plate, _ = render(profile)
    assert plate.tower_corner_mm is not None and plate.tower_size_mm is not None
    (tx, ty), (tw, td) = plate.tower_corner_mm, plate.tower_size_mm
    # The tower is on the bed, inside the edge margin, and a gap away from every tablet.
    assert 0 <= tx and tx + tw <= profile.bed_mm[0] and 0 <= ty and ty + td <= profile.bed_mm[1]
    for cx, cy in plate.centers_mm:
        dx = max(tx - cx, 0.0, cx - (tx + tw))
        dy = max(ty - cy, 0.0, cy - (ty + td))
        assert math.hypot(dx, dy) >= 9.0 / 2 + GAP_MM - 1e-9

    def in_tower(x: float, y: float) -> bool:
        return tx - 1e-6 <= x <= tx + tw + 1e-6 and ty - 1e-6 <= y <= ty + td + 1e-6

    tower_moves = 0
    for m in trace(program.text.split("; end")[0]):
        if m.e_mm > 0 and m.start[:2] != m.end[:2]:
            if in_tower(*m.end[:2]) or in_tower(*m.start[:2]):
                assert m.section is None, f"line {m.line}: tower extrusion in a tablet section"
                assert in_tower(*m.start[:2]) and in_tower(*m.end[:2])
                tower_moves += 1
            elif m.section is None:
                # a tool's purge line at the front, on the first layer
                assert m.end[1] in [pytest.approx(end[1]) for _, end in plate.purge_lines_mm]
    assert tower_moves > 0
    reading = read_gcode(program.text.splitlines())
    assert limit_problems(reading, TOOLS, profile) == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_no_retraction_crosses_a_section_boundary(flavor: str) -> None:
    """Every tablet section opens by recovering the retraction and closes by retracting
    it again, and never goes below where it started: E does not jump between sections."""
    profile = profile_for(flavor)
    program, _, _ = render(profile)
    runs: list[list[float]] = []
    current: int | None = None
    for m in trace(program.text):
        if m.section != current:
            current = m.section
            if current is not None:
                runs.append([])
        if current is not None and m.e_mm != 0.0:
            runs[-1].append(m.e_mm)
    assert runs
    for feeds in runs:
        assert feeds[0] == pytest.approx(profile.retract_mm)
        assert feeds[-1] == pytest.approx(-profile.retract_mm)
        running = 0.0
        for e in feeds[:-1]:
            running += e
            assert running >= -1e-9


STANDBY = {
    "marlin": r"M104 T(?P<tool>\d) S(?P<temp>[\d.]+) ; T\d waits at standby",
    # the first heater command of Klipper's tool change is the old tool's (then the new one's)
    "klipper": r"; tool change T\d -> T\d\n"
               r"SET_HEATER_TEMPERATURE HEATER=extruder(?P<tool>\d?) TARGET=(?P<temp>[\d.]+)",
    "reprapfirmware": r"G10 P(?P<tool>\d) S[\d.]+ R(?P<temp>[\d.]+)",
}


@pytest.mark.parametrize("flavor", FLAVORS)
def test_ooze_control_standby_and_reheat_within_limits(flavor: str) -> None:
    profile = profile_for(flavor)
    program, _, _ = render(profile)
    text = program.text.split("; end")[0]  # the end template switches heaters off
    standby = [(int(m["tool"] or 0), float(m["temp"]))
               for m in re.finditer(STANDBY[flavor], text)]
    assert standby, "no standby temperature command"
    for tool, temp in standby:
        assert temp == pytest.approx(TOOLS[tool].nozzle_temp_c - profile.standby_delta_c)
    # The tool put aside retracts to tool_change_retract_mm before the change, in NONE.
    changes = [m.start() for m in re.finditer(r"; tool change T(\d) -> T(\d)", text)]
    assert changes
    for at in changes:
        before = text[:at].rstrip().splitlines()
        assert before[-2] == ";TABLET:NONE"
        assert before[-1].startswith("G1 E-")
    # Every nozzle temperature within min(printer maximum, the material's max_temp_c).
    reading = read_gcode(text.splitlines())
    for tool, temp in reading.nozzle_temps_c.items():
        assert temp <= min(profile.max_nozzle_temp_c, TOOLS[tool].max_temp_c)
    assert limit_problems(reading, TOOLS, profile) == []


def test_time_estimate_counts_every_move_heating_and_tool_change() -> None:
    profile = profile_for("marlin")
    program, _, _ = render(profile)
    changes = len(re.findall(r"; tool change", program.text))
    allowances = (HEATING_ALLOWANCE_S
                  + changes * (TOOL_CHANGE_S + profile.standby_delta_c / REHEAT_C_PER_S))
    assert program.estimated_print_s == pytest.approx(
        program.estimated_motion_s + allowances, abs=1.0)
    # Every move at its feed rate is a floor for the planned motion: accelerating and
    # cornering only add time (the plan is checked against closed forms and Klipper's
    # host elsewhere). Retractions run at the extruder's limit, below their feed rate.
    cruising = motion_seconds(trace(program.text))
    assert cruising - 0.5 <= program.estimated_motion_s <= 1.4 * cruising + 5.0


def test_tower_holds_the_purge_volume_per_change() -> None:
    profile = profile_for("marlin", purge_volume_mm3=35.0)
    tower = purge_tower(profile, 3, WIDTH_MM, 0.1)
    assert tower is not None and tower.strips == 2
    line = (tower.width_mm - WIDTH_MM) * tower.spacing_mm * 0.1
    assert tower.lines_per_strip * line >= 35.0
    assert (tower.lines_per_strip - 1) * line < 35.0
    assert purge_tower(profile, 1, WIDTH_MM, 0.1) is None
    assert purge_tower(profile_for("marlin", purge_volume_mm3=0.0), 2, WIDTH_MM, 0.2) is None


@pytest.mark.parametrize("flavor", FLAVORS)
def test_flow_calibration_is_the_printers_factor_for_each_tool_not_the_e_values(
    flavor: str,
) -> None:
    """Calibrated tools get their M221 factor whenever they lay tablets (after every tool
    change: Klipper's factor is the active extruder's); the E values are those of the
    uncalibrated job, and the factors go back to 100 % at the end."""
    profile = profile_for(flavor)
    tablets = two_tool_tablets(3)
    tower = purge_tower(profile, 2, WIDTH_MM, 0.2)
    assert tower is not None
    plate = place_tablets(profile, [9.0] * 3, "rx.toml", tower_mm=tower.size_mm, tools=2)
    plain = render_gcode(profile, TOOLS, plate, tablets, ["test"], tower=tower)
    calibrated = render_gcode(profile, TOOLS, plate, tablets, ["test"], tower=tower,
                              extrusion_multipliers=[1.02, 0.97])
    reading = read_gcode(calibrated.text.splitlines(), source="job.gcode")
    assert reading.tablet_flow_percent == {0: frozenset({102.0}), 1: frozenset({97.0})}
    assert read_gcode(plain.text.splitlines(), source="job.gcode").tablet_flow_percent == {
        0: frozenset({100.0}), 1: frozenset({100.0})}
    fed = net_filament_mm(calibrated.text.splitlines())
    assert fed == net_filament_mm(plain.text.splitlines())
    tail = calibrated.text[calibrated.text.rindex(";TABLET:NONE"):]
    assert "S100 " in tail and "M221" not in plain.text
