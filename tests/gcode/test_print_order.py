"""Print order: tablet by tablet (each tablet whole, crossing above everything printed)
versus layer by layer; the profile keys that choose it; refusals with exit code 2."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from conftest import ROOT
from doseprint.cli import main
from doseprint.compile import check_print_order
from doseprint.errors import InputError
from doseprint.gcode.render import (
    HEATING_ALLOWANCE_S,
    TABLET_ORDER_LIFT_MM,
    render_gcode,
)
from doseprint.models.load import load_printer
from doseprint.slicer.plate import place_tablets
from helpers.independent_gcode import net_filament_mm
from helpers.synthetic_gcode import (
    TOOLS,
    motion_seconds,
    one_tool_tablets,
    profile_for,
    trace,
    two_tool_tablets,
)

HEIGHTS = [12, 7, 15, 9]
"""Layers of each tablet: tablets of different heights, so crossings must clear the tallest."""


def tablet_order_program(extrusion: str = "relative") -> tuple[str, float]:
    profile = profile_for("marlin", extrusion, gantry_clearance_mm=20.0)
    tablets = one_tool_tablets(HEIGHTS)
    plate = place_tablets(profile, [9.0] * len(HEIGHTS), "rx.toml")
    program = render_gcode(profile, TOOLS[:1], plate, tablets, ["test"], print_order="tablet")
    area = math.pi * profile.filament_diameter_mm**2 / 4.0
    return program.text, area


@pytest.mark.parametrize("extrusion", ["relative", "absolute"])
def test_tablet_order_sections_contiguous_and_doses_exact(extrusion: str) -> None:
    text, area = tablet_order_program(extrusion)
    markers = [int(m) for m in re.findall(r"^;TABLET:(\d+)$", text, re.MULTILINE)]
    # Each tablet's sections form one run, in plate order.
    runs = [m for k, m in enumerate(markers) if k == 0 or markers[k - 1] != m]
    assert runs == list(range(len(HEIGHTS)))
    assert [markers.count(i) for i in range(len(HEIGHTS))] == HEIGHTS
    fed = net_filament_mm(text.splitlines())
    for i, tablet in enumerate(one_tool_tablets(HEIGHTS)):
        assert fed[(i, 0)] == pytest.approx(tablet[0].target_volume_mm3 / area, rel=1e-4)


def test_tablet_order_crosses_above_everything_printed() -> None:
    text, _ = tablet_order_program()
    top = 0.0
    crossings = long_travels = 0
    last_section: int | None = None
    for m in trace(text.split("; end")[0]):
        if m.section is not None and m.section != last_section and last_section is not None:
            crossings += 1
        if m.section is not None:
            last_section = m.section
        if m.e_mm > 0 and m.start[:2] != m.end[:2]:
            if m.section is not None:
                top = max(top, m.end[2])
            continue
        if top > 0 and m.e_mm == 0 and math.dist(m.start[:2], m.end[:2]) > 10.0:
            # a long travel: only between tablets, and above every tablet printed so far
            assert m.end[2] >= top + TABLET_ORDER_LIFT_MM - 1e-9, f"line {m.line}"
            long_travels += 1
    assert crossings == len(HEIGHTS) - 1
    assert long_travels >= len(HEIGHTS) - 1
    # The end template lifts from above the tallest tablet.
    end_z = trace(text)[-1].start[2]
    assert end_z >= max(HEIGHTS) * 0.2 - 1e-9


def test_tablet_order_time_estimate_counts_the_crossings() -> None:
    profile = profile_for("marlin", gantry_clearance_mm=20.0)
    tablets = one_tool_tablets(HEIGHTS)
    plate = place_tablets(profile, [9.0] * len(HEIGHTS), "rx.toml")
    for order in ("tablet", "layer"):
        program = render_gcode(profile, TOOLS[:1], plate, tablets, ["t"],
                               print_order=order)
        # Every move at its feed rate is a floor: accelerating and cornering only add time
        # (the plan itself is checked against closed forms and Klipper in test_motion).
        # Retractions run at the extruder's own limit, below their feed rate, hence 5 s.
        cruising = motion_seconds(trace(program.text))
        assert program.estimated_motion_s >= cruising - 0.5
        assert program.estimated_motion_s <= 1.4 * cruising + 5.0
        assert program.estimated_print_s == pytest.approx(
            program.estimated_motion_s + HEATING_ALLOWANCE_S, abs=1.0)


def test_tablet_order_refuses_two_tools_and_too_tall_tablets() -> None:
    profile = profile_for("marlin", gantry_clearance_mm=5.0)
    plate = place_tablets(profile, [9.0] * 2, "rx.toml")
    with pytest.raises(InputError, match="--print-order"):
        render_gcode(profile, TOOLS, plate, two_tool_tablets(2), ["t"], print_order="tablet")
    with pytest.raises(InputError) as caught:
        check_print_order(profile, "tablet", 5.2, 1)
    assert caught.value.problems[0].key == "gantry_clearance_mm"
    assert "5.2" in caught.value.problems[0].message
    check_print_order(profile, "tablet", 4.8, 1)
    check_print_order(profile, "layer", 50.0, 2)
    with pytest.raises(InputError, match="gantry_clearance_mm"):
        check_print_order(profile_for("marlin", gantry_clearance_mm=None), "tablet", 3.0, 1)


# Profile keys ---------------------------------------------------------------------------

BASE = (ROOT / "printer_profiles" / "generic-marlin-1x175.toml").read_text()


def write_profile(folder: Path, extra: str, pid: str = "site-printer") -> Path:
    path = folder / f"{pid}.toml"
    path.write_text(BASE.replace('id = "generic-marlin-1x175"', f'id = "{pid}"') + extra)
    return path


def test_profile_keys_are_read_and_defaulted(tmp_path: Path) -> None:
    roots = (ROOT / "printer_profiles" / "templates",)
    plain = load_printer(write_profile(tmp_path, ""), roots)
    assert (plain.print_order, plain.gantry_clearance_mm, plain.purge_volume_mm3,
            plain.standby_delta_c, plain.tool_change_retract_mm) == ("layer", None, 20.0, 0.0,
                                                                     None)
    full = load_printer(write_profile(tmp_path, '\nprint_order = "tablet"\n'
                                      "gantry_clearance_mm = 22.5\npurge_volume_mm3 = 12\n"
                                      "standby_delta_c = 25\ntool_change_retract_mm = 3\n"),
                        roots)
    assert (full.print_order, full.gantry_clearance_mm, full.purge_volume_mm3,
            full.standby_delta_c, full.tool_change_retract_mm) == ("tablet", 22.5, 12.0, 25.0,
                                                                   3.0)


@pytest.mark.parametrize(("extra", "key"), [
    ('print_order = "diagonal"', "print_order"),
    ('print_order = "tablet"', "print_order"),          # without gantry_clearance_mm
    ("gantry_clearance_mm = -3", "gantry_clearance_mm"),
    ("gantry_clearance_mm = 900", "gantry_clearance_mm"),  # above max_z_mm
    ("purge_volume_mm3 = -1", "purge_volume_mm3"),
    ('standby_delta_c = "30"', "standby_delta_c"),
    ("tool_change_retract_mm = 0.2", "tool_change_retract_mm"),  # below retract_mm
    ("purge_tower = true", "purge_tower"),                 # unknown keys stay refused
    ("perimeters = 0", "perimeters"),
    ("perimeters = 2.5", "perimeters"),
])
def test_bad_profile_keys_are_named(tmp_path: Path, extra: str, key: str) -> None:
    path = write_profile(tmp_path, "\n" + extra + "\n")
    with pytest.raises(InputError) as caught:
        load_printer(path, (ROOT / "printer_profiles" / "templates",))
    assert [(p.file, p.key) for p in caught.value.problems] == [(str(path), key)]


def test_compile_too_tall_for_tablet_order_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printers = tmp_path / "printers"
    printers.mkdir()
    write_profile(printers, "\ngantry_clearance_mm = 1.0\n")
    out = tmp_path / "job"
    with pytest.raises(SystemExit) as done:
        main(["compile", str(ROOT / "tests" / "data" / "golden-rx.toml"), "--printer",
              "site-printer", "--printers", str(printers), "--out", str(out),
              "--print-order", "tablet", "--calibrations", str(tmp_path / "none.json")])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "gantry_clearance_mm" in err and "Traceback" not in err
    assert not out.exists()
