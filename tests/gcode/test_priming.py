"""Every tool the job uses is primed on its own purge line in front of the plate, in
``;TABLET:NONE``, before its first road in a tablet, with or without a purge tower; the
dose accounting stays exact and every tool change on Klipper re-sends the flow factor."""

from __future__ import annotations

import math
import re

import pytest

from doseprint.gcode.reader import read_gcode
from doseprint.gcode.render import PURGE_WIDTH_MM, purge_tower, render_gcode
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plate import EDGE_MARGIN_MM, PURGE_BAND_MM, PURGE_PITCH_MM, place_tablets
from doseprint.slicer.toolpaths import bead_area_mm2
from helpers.independent_gcode import net_filament_mm
from helpers.synthetic_gcode import TOOLS, WIDTH_MM, profile_for, trace, two_tool_tablets

FLAVORS = ["marlin", "klipper", "reprapfirmware"]


def render(profile: PrinterProfile, multipliers: list[float] | None = None) -> str:
    tablets = two_tool_tablets(2)
    tower = purge_tower(profile, 2, WIDTH_MM, 0.2)
    plate = place_tablets(profile, [9.0] * 2, "rx.toml",
                          tower_mm=None if tower is None else tower.size_mm, tools=2)
    return render_gcode(profile, TOOLS, plate, tablets, ["test"], tower=tower,
                        extrusion_multipliers=multipliers).text


@pytest.mark.parametrize("purge_mm3", [0.0, 20.0])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_tool_primes_on_its_own_line_before_its_first_tablet_road(
    flavor: str, purge_mm3: float,
) -> None:
    profile = profile_for(flavor, purge_volume_mm3=purge_mm3)
    plate = place_tablets(profile, [9.0] * 2, "rx.toml", tools=2)
    moves = trace(render(profile))
    first_h = profile.first_layer_height_mm
    line_mm = math.dist(*plate.purge_lines_mm[0])
    area = math.pi * profile.filament_diameter_mm**2 / 4.0
    want_mm = line_mm * bead_area_mm2(PURGE_WIDTH_MM, first_h) / area
    for tool in (0, 1):
        mine = [m for m in moves if m.tool == tool and m.e_mm > 0 and m.start[:2] != m.end[:2]]
        first_in_tablet = next(i for i, m in enumerate(mine) if m.section is not None)
        primed = mine[:first_in_tablet]
        # the tool's first roads are its purge line, at the front, on the first layer
        assert primed and all(m.section is None for m in primed)
        y = plate.purge_lines_mm[tool][0][1]
        line = [m for m in primed if m.start[1] == m.end[1] == pytest.approx(y)]
        assert line and line[0] is primed[0]
        assert all(m.end[2] == pytest.approx(first_h) for m in line)
        assert sum(m.e_mm for m in line) == pytest.approx(want_mm, rel=1e-4)


def test_purge_lines_stand_apart_in_a_band_that_grows_with_the_tools() -> None:
    profile = profile_for("marlin")
    for tools in (1, 2, 3):
        plate = place_tablets(profile, [9.0] * 4, "rx.toml", tools=tools)
        assert len(plate.purge_lines_mm) == tools
        assert plate.purge_lines_mm[0] == (plate.purge_start_mm, plate.purge_end_mm)
        ys = [start[1] for start, _ in plate.purge_lines_mm]
        assert ys == pytest.approx([EDGE_MARGIN_MM + PURGE_BAND_MM / 2 + k * PURGE_PITCH_MM
                                    for k in range(tools)])
        assert PURGE_PITCH_MM - PURGE_WIDTH_MM >= 1.0  # bare bed between the beads
        band_end = EDGE_MARGIN_MM + PURGE_BAND_MM + (tools - 1) * PURGE_PITCH_MM
        for _, cy in plate.centers_mm:
            assert cy - 9.0 / 2 >= band_end - 1e-9
            assert cy - 9.0 / 2 - ys[-1] >= PURGE_BAND_MM / 2 - 1e-9


@pytest.mark.parametrize("purge_mm3", [0.0, 20.0])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_priming_leaves_the_doses_exact(flavor: str, purge_mm3: float) -> None:
    profile = profile_for(flavor, purge_volume_mm3=purge_mm3)
    text = render(profile)
    lines = text.splitlines()
    ours = read_gcode(lines).filament_mm
    theirs = net_filament_mm(lines)
    assert set(ours) == set(theirs)
    for key, mm in ours.items():
        assert mm == pytest.approx(theirs[key], abs=1e-4)
    area = math.pi * profile.filament_diameter_mm**2 / 4.0
    for tablet in two_tool_tablets(2):
        for comp in tablet:
            assert theirs[(comp.tablet, comp.tool)] == pytest.approx(
                comp.target_volume_mm3 / area, rel=1e-4)
    # Every tablet section starts by recovering exactly the standard retraction.
    current: int | None = None
    opened = False
    for m in trace(text):
        if m.section != current:
            current = m.section
            opened = current is not None
        if opened and m.e_mm != 0.0:
            assert m.e_mm == pytest.approx(profile.retract_mm)
            opened = False


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_calibrated_tool_gets_its_flow_factor_after_every_tool_change(flavor: str) -> None:
    """Klipper resets the extrude factor whenever the extruder changes
    (klippy/extras/gcode_move.py ``_handle_activate_extruder``): the factor follows every
    ``T<k>``, priming included, before the tool feeds again."""
    profile = profile_for(flavor, purge_volume_mm3=0.0)
    k_tool = [1.02, 0.97]
    lines = render(profile, k_tool).splitlines()
    changes = [i for i, line in enumerate(lines) if re.fullmatch(r"T\d+( ;.*)?", line)]
    assert len(changes) >= 3 if flavor != "reprapfirmware" else changes
    for at in changes:
        tool = int(lines[at][1:].split()[0])
        after = lines[at + 1:]
        first_feed = next(i for i, line in enumerate(after) if re.match(r"G1 .*E\d", line))
        flow = [line for line in after[:first_feed] if line.startswith("M221")]
        assert flow, f"no M221 after line {at + 1} ({lines[at]})"
        assert f"S{100 * k_tool[tool]:g}" in flow[-1]


@pytest.mark.parametrize("extruders", [1, 2])
def test_klipper_selects_tools_with_t_lines_only_on_a_multi_extruder_printer(
    extruders: int,
) -> None:
    """A one-extruder printer.cfg has no T0 macro (a stock Klipper answers
    ``Unknown command:"T0"``); a two-extruder one has T0 and T1 (docs/firmware.md)."""
    profile = profile_for("klipper", extruders=extruders)
    tools = TOOLS[:1] if extruders == 1 else TOOLS
    tablets = [tuple(c for c in t if c.tool < extruders) for t in two_tool_tablets(2)]
    plate = place_tablets(profile, [9.0] * 2, "rx.toml", tools=len(tools))
    text = render_gcode(profile, tools, plate, tablets, ["t"]).text
    t_lines = re.findall(r"(?m)^T\d+", text)
    assert (t_lines == []) if extruders == 1 else (set(t_lines) == {"T0", "T1"})


def test_klipper_temperatures_always_name_the_heater() -> None:
    """After a tool change a bare ``M104 S`` or ``M109 S`` heats whichever extruder is
    active (klippy/kinematics/extruder.py ``cmd_M104``): every nozzle temperature command
    names its heater or tool."""
    text = render(profile_for("klipper"))
    for line in text.splitlines():
        code = line.split(";")[0].strip()
        if re.match(r"M10[49]\b", code):
            assert re.search(r"\bT\d", code), line
        if code.startswith("SET_HEATER_TEMPERATURE"):
            assert re.search(r"HEATER=(extruder\d*|heater_bed)\b", code), line
    change = text[text.index("; tool change T0 -> T1"):].splitlines()[:5]
    assert change[1:] == [
        f"SET_HEATER_TEMPERATURE HEATER=extruder TARGET={TOOLS[0].nozzle_temp_c - 30:g}",
        f"SET_HEATER_TEMPERATURE HEATER=extruder1 TARGET={TOOLS[1].nozzle_temp_c:g}",
        "T1 ; printer.cfg's macro: ACTIVATE_EXTRUDER EXTRUDER=extruder1",
        f"M109 T1 S{TOOLS[1].nozzle_temp_c:g} ; wait for extruder1, not the active extruder",
    ]
