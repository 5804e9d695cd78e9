"""Cold extrusion: a job never asks a firmware to extrude below its minimum extrusion
temperature (Marlin ``EXTRUDE_MINTEMP`` and ``M302``, RepRapFirmware ``M302``, Klipper's
``min_extrude_temp`` in printer.cfg). Compile refuses a formulation that prints too close to
the limit; a profile may lower it for the job (Marlin, RepRapFirmware), and the G-code,
read back, shows the limit every tool extruded under."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from doseprint.errors import InputError
from doseprint.gcode.reader import read_gcode
from doseprint.gcode.render import MIN_EXTRUDE_TEMP_FLOOR_C, min_extrude_temp_c, render_gcode
from doseprint.job.verify import limit_problems
from doseprint.models.formulation import Formulation
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plate import place_tablets
from doseprint.tolerances import tol
from helpers.synthetic_gcode import LIB, TOOLS, one_tool_tablets, profile_for, two_tool_tablets

THEOPHYLLINE = LIB.formulations["theophylline-hpc-30"]          # 170 °C
HCTZ = LIB.formulations["hydrochlorothiazide-eudragitepo-10"]   # 135 °C
ISONIAZID = LIB.formulations["isoniazid-hpc-30"]                # 165 °C
KLIPPER = LIB.printers["generic-klipper-1x175"]
MARLIN = LIB.printers["generic-marlin-1x175"]
RRF = LIB.printers["generic-rrf-1x175"]


def stock_klipper(limit_c: float = 170.0) -> PrinterProfile:
    """A Klipper printer whose printer.cfg keeps ``min_extrude_temp`` at ``limit_c``."""
    return dataclasses.replace(KLIPPER, min_extrude_temp_c=limit_c)


def render_one(profile: PrinterProfile, formulation: Formulation) -> str:
    plate = place_tablets(profile, [9.0], "rx.toml")
    tablets = one_tool_tablets([3])
    return render_gcode(profile, [formulation], plate, tablets, ["test"]).text


# The limit and the refusal ---------------------------------------------------------------


def test_a_formulation_below_a_stock_firmwares_limit_is_refused_by_name() -> None:
    with pytest.raises(InputError) as info:
        min_extrude_temp_c(stock_klipper(), [HCTZ])
    [problem] = info.value.problems
    assert problem.file == KLIPPER.path and problem.key == "min_extrude_temp_c"
    assert HCTZ.id in problem.message and "135 °C" in problem.message
    assert "170 °C" in problem.message and "printer.cfg" in problem.message


def test_every_cold_tool_is_named() -> None:
    with pytest.raises(InputError) as info:
        min_extrude_temp_c(stock_klipper(), [ISONIAZID, THEOPHYLLINE, HCTZ])
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 3
    for k, f in enumerate((ISONIAZID, THEOPHYLLINE, HCTZ)):
        assert f"{f.id} (tool T{k})" in messages[k]
        assert f"{f.nozzle_temp_c:g} °C" in messages[k]


def test_printing_at_exactly_the_limit_is_refused_a_margin_above_is_not() -> None:
    # Theophylline prints at 170 °C: on a 170 °C firmware any dip while printing stops it.
    assert THEOPHYLLINE.nozzle_temp_c == 170.0
    with pytest.raises(InputError):
        min_extrude_temp_c(stock_klipper(170.0), [THEOPHYLLINE])
    with pytest.raises(InputError):
        min_extrude_temp_c(stock_klipper(170.0 - tol.extrude_temp_margin_c + 0.5),
                           [THEOPHYLLINE])
    limit = 170.0 - tol.extrude_temp_margin_c
    assert min_extrude_temp_c(stock_klipper(limit), [THEOPHYLLINE]) == limit


def test_marlin_suggests_lowering_the_limit_klipper_the_printer_cfg() -> None:
    stock_marlin = dataclasses.replace(MARLIN, lower_min_extrude_temp=False)
    with pytest.raises(InputError) as info:
        min_extrude_temp_c(stock_marlin, [HCTZ])
    assert "lower_min_extrude_temp = true" in str(info.value)
    assert "M302" in str(info.value)


@pytest.mark.parametrize(("tools", "want"), [
    ([HCTZ], 125.0), ([THEOPHYLLINE], 160.0), ([THEOPHYLLINE, HCTZ], 125.0),
    ([ISONIAZID], 155.0)])
def test_a_profile_that_lowers_the_limit_takes_it_a_margin_under_the_coldest_tool(
    tools: list[Formulation], want: float,
) -> None:
    assert MARLIN.lower_min_extrude_temp and MARLIN.min_extrude_temp_c == 170.0
    assert min_extrude_temp_c(MARLIN, tools) == want
    # ... but never above the firmware's own limit
    low = dataclasses.replace(MARLIN, min_extrude_temp_c=100.0)
    assert min_extrude_temp_c(low, tools) == 100.0


def test_a_limit_too_near_room_temperature_is_refused() -> None:
    tepid = dataclasses.replace(HCTZ, nozzle_temp_c=MIN_EXTRUDE_TEMP_FLOOR_C + 5.0)
    with pytest.raises(InputError) as info:
        min_extrude_temp_c(MARLIN, [tepid])
    [problem] = info.value.problems
    assert problem.key == "nozzle_temp_c" and tepid.id in problem.message


@pytest.mark.parametrize("profile_id", ["generic-marlin-1x175", "generic-marlin-2x175",
                                        "generic-rrf-1x175", "generic-klipper-1x175",
                                        "generic-klipper-2x175"])
def test_every_shipped_profile_prints_every_shipped_formulation(profile_id: str) -> None:
    profile = LIB.printers[profile_id]
    for f in LIB.formulations.values():
        if f.filament_diameter_mm == profile.filament_diameter_mm:
            min_extrude_temp_c(profile, [f])


# What the G-code says --------------------------------------------------------------------


def test_marlin_lowers_the_limit_before_the_first_extrusion_and_restores_it() -> None:
    text = render_one(MARLIN, HCTZ)
    lines = text.splitlines()
    feeds = [i for i, line in enumerate(lines) if re.match(r"G[01] .*E-?\d", line)]
    lowered = [i for i, line in enumerate(lines) if line.startswith("M302 S125 ")]
    restored = [i for i, line in enumerate(lines) if line.startswith("M302 S170 ")]
    assert lowered and lowered[0] < feeds[0]
    assert restored and restored[0] > feeds[-1]
    reading = read_gcode(lines)
    assert reading.extrude_limits_c == {0: frozenset({125.0})}
    assert limit_problems(reading, [HCTZ], MARLIN) == []


def test_reprapfirmware_lowers_the_retraction_limit_only_below_its_90_c_default() -> None:
    text = render_one(RRF, HCTZ)
    assert re.search(r"(?m)^M302 S125 ;", text) and "R90" not in text
    warm_wax = dataclasses.replace(HCTZ, nozzle_temp_c=85.0)
    text = render_one(RRF, warm_wax)
    assert re.search(r"(?m)^M302 S75 R75 ;", text)
    assert re.search(r"(?m)^M302 S160 R90 ;", text)


def test_klipper_gcode_states_the_limit_but_never_sends_m302() -> None:
    text = render_one(KLIPPER, HCTZ)
    assert "M302" not in text
    assert "min_extrude_temp: 120" in text
    assert read_gcode(text.splitlines()).extrude_limits_c == {0: frozenset({None})}


def test_a_template_that_does_not_lower_the_limit_is_caught_reading_the_gcode() -> None:
    # A site's Marlin templates forgot the M302: its firmware still stops at 170 °C.
    site = dataclasses.replace(MARLIN, lower_min_extrude_temp=False, min_extrude_temp_c=120.0)
    text = render_one(site, HCTZ)
    assert "M302" not in text
    reading = read_gcode(text.splitlines())
    [problem] = limit_problems(reading, [HCTZ], MARLIN)
    assert "T0" in problem and HCTZ.id in problem and "170 °C" in problem


def test_two_tools_each_extrude_under_the_lowered_limit() -> None:
    profile = profile_for("marlin")
    plate = place_tablets(profile, [9.0] * 2, "rx.toml", tools=2)
    text = render_gcode(profile, TOOLS, plate, two_tool_tablets(2), ["t"]).text
    reading = read_gcode(text.splitlines())
    assert reading.extrude_limits_c == {0: frozenset({125.0}), 1: frozenset({125.0})}
    assert limit_problems(reading, TOOLS, profile) == []


# The reader ------------------------------------------------------------------------------


def test_reader_keeps_the_limit_in_force_per_tool() -> None:
    reading = read_gcode(["M83", "G1 X1 E1", "M302 S150", "G1 X2 E1", "T1", "M302 P0 S140",
                          "G1 X3 E1", "M302", "M302 S170 R90"])
    assert reading.extrude_limits_c == {0: frozenset({None, 150.0}), 1: frozenset({140.0})}


@pytest.mark.parametrize("line", ["M302 P1", "M302 P", "M302 S0", "M302 S170 P1",
                                  "M302 P2", "M302 S-5"])
def test_reader_refuses_turning_the_cold_extrusion_check_off(line: str) -> None:
    with pytest.raises(InputError) as info:
        read_gcode(["G28", line, "G1 X1 E1"], source="job.gcode")
    assert "line 2" in str(info.value)
    assert "M302 S<t>" in str(info.value) or "lowest temperature" in str(info.value)


def test_compile_refuses_a_too_cold_formulation_before_designing(tmp_path: Path) -> None:
    # The same check compile runs before the designer (compile.py).
    from doseprint.compile import check_cold_extrusion
    from doseprint.models.load import load_prescription
    from helpers.rx import write_rx

    rx = load_prescription(write_rx(tmp_path, api="hydrochlorothiazide", dose_mg=10.0,
                                    release="immediate", extra_active=""))
    with pytest.raises(InputError) as info:
        check_cold_extrusion(rx, LIB, stock_klipper())
    assert HCTZ.id in str(info.value) and "min_extrude_temp_c" in str(info.value)
    check_cold_extrusion(rx, LIB, KLIPPER)
