"""Tests of doseprint.gcode.reader: per-section dose accounting, parsing, refusals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doseprint.errors import InputError
from doseprint.gcode.reader import GcodeReading, dose_mg, read_gcode, read_gcode_file
from helpers.independent_gcode import net_filament_mm


def read(text: str) -> GcodeReading:
    return read_gcode(text.splitlines(keepends=True))


def assert_filament(
    reading: GcodeReading, expected: dict[tuple[int | None, int], float]
) -> None:
    assert reading.filament_mm.keys() == expected.keys()
    for key, length_mm in expected.items():
        assert reading.filament_mm[key] == pytest.approx(length_mm, rel=1e-12, abs=1e-12), key


# Hand-written programs, each with the net filament (mm) per (tablet, tool) it must give.
SNIPPETS: dict[str, tuple[str, dict[tuple[int | None, int], float]]] = {
    "relative": (
        """\
M83
;TABLET:0
G1 X10 Y10 E0.5
G1 X20 E0.25
G1 E-0.1
G1 E0.1
""",
        {(0, 0): 0.75},
    ),
    "absolute": (
        """\
M82
G92 E0
;TABLET:0
G1 X10 Y10 E0.5
G1 X20 E0.75
G1 E0.65
G1 E0.75
""",
        {(0, 0): 0.75},
    ),
    "g92_reset_mid_section": (
        """\
G90
M82
;TABLET:1
G92 E0
G1 X1 E2.0
G1 X2 E3.0
G92 E0
G1 X3 E1.5
G92 E10
G1 X4 E10.5
""",
        {(1, 0): 5.0},
    ),
    "two_tools_in_one_tablet_relative": (
        """\
M83
;TABLET:0
T0
G1 X1 E1.0
T1
G1 X2 E2.0
T0
G1 X3 E0.5
""",
        {(0, 0): 1.5, (0, 1): 2.0},
    ),
    "two_tools_in_one_tablet_absolute": (
        """\
M82
G92 E0
;TABLET:0
G1 X1 E1.0
T1
G92 E0
G1 X2 E2.0
G1 X3 E2.5
T0
G92 E1.0
G1 X4 E1.5
""",
        {(0, 0): 1.5, (0, 1): 2.5},
    ),
    "retraction_crosses_sections": (
        """\
M83
;TABLET:0
G1 X1 E3.0
G1 E-0.8
;TABLET:1
G1 E0.8
G1 X2 E2.0
""",
        {(0, 0): 2.2, (1, 0): 2.8},
    ),
    "before_first_marker_is_none": (
        """\
M83
G1 X5 E4.0
;TABLET:0
G1 X6 E1.0
;TABLET:NONE
G1 X7 E0.5
""",
        {(None, 0): 4.5, (0, 0): 1.0},
    ),
    "marker_with_trailing_whitespace": (
        "M83\r\n;TABLET:2  \t\r\nG1 X1 E1.0\r\n;TABLET:NONE \r\nG1 E0.25\r\n",
        {(2, 0): 1.0, (None, 0): 0.25},
    ),
    "line_numbers_and_checksums": (
        """\
N1 M83*34
N2 ;TABLET:0
;TABLET:0
N3 G1 X1 E1.5*97
N4G1 X2 E0.5*12
""",
        {(0, 0): 2.0},
    ),
    "comments": (
        """\
M83 ; relative E
;TABLET:0
G1 X1 E1.0 ; E99 in a comment is not fed
G1 X2 (E50 is a comment too) E0.5
; G1 E100
""",
        {(0, 0): 1.5},
    ),
    "lowercase_and_packed_words": (
        """\
m83
;TABLET:0
g1 x1 y2 e1.0
G1X3Y4E.5F1200
g01 e+0.25
""",
        {(0, 0): 1.75},
    ),
    "g91_makes_e_relative": (
        """\
M82
G92 E0
;TABLET:0
G1 X1 E1.0
G91
G1 X1 E0.5
G1 X1 E0.5
G90
G92 E0
G1 X5 E0.5
""",
        {(0, 0): 2.5},
    ),
    "g0_and_arcs_carry_e": (
        """\
M83
;TABLET:0
G0 X1 E0.5
G2 X2 Y0 I0.5 J0 E0.25
G3 X1 Y0 R0.5 E0.25
""",
        {(0, 0): 1.0},
    ),
    "zero_net_key_present": (
        """\
M83
;TABLET:3
G1 E-0.5
G1 E0.5
""",
        {(3, 0): 0.0},
    ),
}


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_snippets(name: str) -> None:
    text, expected = SNIPPETS[name]
    assert_filament(read(text), expected)


@pytest.mark.parametrize("name", sorted(SNIPPETS))
def test_independent_reader_agrees_on_snippets(name: str) -> None:
    text, _ = SNIPPETS[name]
    independent = net_filament_mm(text.splitlines(keepends=True))
    assert_filament(read(text), independent)


def test_counts_and_sets() -> None:
    text, _ = SNIPPETS["two_tools_in_one_tablet_relative"]
    reading = read(text + ";TABLET:4\nT2\nG1 X9\n")
    assert reading.lines == 11
    assert reading.moves == 4
    assert reading.tablets == frozenset({0, 4})
    assert reading.tools_used == frozenset({0, 1})  # T2 never fed


def test_retraction_accounting_shows_the_shift() -> None:
    # The 0.8 mm retracted in tablet 0 is fed back in tablet 1: tablet 0 is short, 1 is long.
    reading = read(SNIPPETS["retraction_crosses_sections"][0])
    assert reading.filament_mm[(0, 0)] == pytest.approx(3.0 - 0.8)
    assert reading.filament_mm[(1, 0)] == pytest.approx(2.0 + 0.8)


def test_temperatures() -> None:
    reading = read(
        """\
M104 S180
M109 T1 R210
M104 T2 S150 B230
M140 S55
M190 R65
T1
M104 S205
SET_HEATER_TEMPERATURE HEATER=extruder3 TARGET=190
set_heater_temperature heater=heater_bed target=70
G10 P4 S200:240 R150
M568 P5 S199
M104 S0
"""
    )
    assert reading.nozzle_temps_c == {0: 180.0, 1: 210.0, 2: 230.0, 3: 190.0, 4: 240.0,
                                      5: 199.0}
    assert reading.max_nozzle_temp_c == 240.0
    assert reading.max_bed_temp_c == 70.0


def test_klipper_tool_change_temperatures_go_to_the_named_heater() -> None:
    reading = read(
        """\
M104 T0 S170
M104 T1 S105
T0
SET_HEATER_TEMPERATURE HEATER=extruder TARGET=140
SET_HEATER_TEMPERATURE HEATER=extruder1 TARGET=135
T1
M109 T1 S135
TEMPERATURE_WAIT SENSOR=extruder1 MINIMUM=300
"""
    )
    assert reading.nozzle_temps_c == {0: 170.0, 1: 135.0}


def test_no_temperatures_and_no_moves() -> None:
    reading = read("M83\nG1 E1\n")
    assert reading.max_nozzle_temp_c == 0.0
    assert reading.max_bed_temp_c == 0.0
    assert reading.nozzle_temps_c == {}
    assert reading.bounds_mm is None


def test_bounds() -> None:
    reading = read(
        """\
G28
G90
G1 X10 Y20 Z0.2
G1 X50 Y5
G91
G1 X-5 Z1.0
G90
G92 X0 Y0
G1 X30 Y30
G28 X
G1 Y0
"""
    )
    # After G92 X0 Y0 at machine (45, 5), logical (30, 30) is machine (75, 35). G28 X then
    # puts X at 0 with no offset, and Y0 is still machine Y 5.
    assert reading.bounds_mm == ((0.0, 75.0), (5.0, 35.0), (0.2, 1.2))
    assert reading.moves == 5


def test_bounds_count_only_moves_naming_an_axis() -> None:
    reading = read("M83\nG1 E1\nG1 F1200\nG1 Z5\n")
    assert reading.bounds_mm == ((0.0, 0.0), (0.0, 0.0), (5.0, 5.0))


def test_malformed_number_message() -> None:
    lines = ["M83\n"] * 122 + ["G1 X1..2\n"]
    with pytest.raises(InputError) as caught:
        read_gcode(lines)
    assert str(caught.value) == "job.gcode: line 123 ('G1 X1..2'): cannot read X"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("G1 X1 E", "cannot read E"),
        ("G1 X1 X2", "X is given twice"),
        ("G1 5 X1", "cannot read '5 X1'"),
        ("G1 X1 Einf", "cannot read E"),
        ("M104 S2,00", "cannot read S"),
        ("T?", "tool number"),
        ("T-1", "tool number"),
        ("G1.5 X1", "sub-codes"),
        ("X10 E1", "axis words without a command"),
        (";TABLET:first", "tablet marker"),
        (" ;TABLET:0", "tablet marker"),
        ("; Tablet: 3", "tablet marker"),
    ],
)
def test_unreadable_lines(line: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        read_gcode(["M83\n", line])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("M83\nG10\n", "firmware retraction"),
        ("M83\nG11\n", "un-retraction"),
        ("G92\n", "G92 without axes"),
        ("M82\nG92 E0\nG1 E1\nT1\nG1 E2\n", "after T1"),
        ("M83\nG1 E1\nG90\nG1 E2\n", "relative on some firmwares"),
        ("G91\nM82\nG1 E1\nG1 E1\n", "relative on some firmwares"),
        (";TABLET:0\nM221 S95\n", "inside a tablet section"),
        ("M221 S0\n", "plausible"),
        ("M200 D1.75\n", "volumetric"),
        ("G20\n", "inch"),
        ("M600\n", "filament change"),
        ("G54\n", "coordinate systems"),
        ("G10 L2 P1 X5\n", "coordinate systems"),
        ("M83\nACTIVATE_EXTRUDER EXTRUDER=extruder1\nG1 E1\n", "T<k>"),
        ("M302 P1\n", "M302 S<t>"),
        ("M302 S0\n", "cold extrusion check off"),
    ],
)
def test_refused_programs(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        read(text)


@pytest.mark.parametrize(
    "text",
    [
        "M221 S100\nM200 D0\nM200 S0 D1.75\nG21\n",
        # After T in relative mode nothing needs resetting.
        "M83\nT1\nG1 E1\n",
        # M83 then G90 disagree between firmwares only when the E position is not 0.
        "M83\nG90\nG1 E1\n",
        "M117 Hello X1..2 E?\nM117 Druck läuft\nG4 P100\n",
        # Klipper: waiting sets nothing, T<k> is a printer.cfg macro, heaters by name.
        "TEMPERATURE_WAIT SENSOR=extruder1 MINIMUM=130\nT1\nTURN_OFF_HEATERS\n",
        "M302\nM302 S120\nM302 P0 S170 R90\n",
    ],
)
def test_accepted_programs(text: str) -> None:
    read(text)


def test_marlin_g90_makes_e_absolute() -> None:
    # M83 ... G92 E0 ... G90: on Marlin E is absolute again; with E at 0 Klipper agrees on
    # the first move, so the program is accepted and read the Marlin way.
    reading = read("M83\nG1 E5\nG92 E0\nG90\nG1 E1\n")
    assert reading.filament_mm == {(None, 0): pytest.approx(6.0)}


def test_read_gcode_file(tmp_path: Path) -> None:
    path = tmp_path / "job.gcode"
    path.write_text(SNIPPETS["relative"][0], encoding="utf-8")
    assert_filament(read_gcode_file(path), {(0, 0): 0.75})
    path.write_text("M83\nG1 E1,5\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"job\.gcode: line 2 \('G1 E1,5'\): cannot read E"):
        read_gcode_file(path)
    with pytest.raises(InputError, match="cannot read the G-code file"):
        read_gcode_file(tmp_path / "missing.gcode")


def test_dose_mg() -> None:
    # 100 mm of 1.75 mm filament: 240.528 mm³; × 1.21 mg/mm³ × 0.30 = 87.31 mg.
    expected = 100.0 * math.pi * 1.75**2 / 4 * 1.21 * 0.30
    assert dose_mg(100.0, 1.75, 1.21, 0.30) == pytest.approx(expected, rel=1e-15)
    assert dose_mg(100.0, 1.75, 1.21, 0.30) == pytest.approx(87.3116, rel=1e-5)


# Property: relative and absolute renderings of the same feeds give the same accounting.

E_STEP_MM = 1e-5  # increments are whole multiples of the 5-decimal resolution E is written at


def decimal_text(units: int) -> str:
    """Exact decimal text of ``units`` × 1e-5 mm, so formatting adds no rounding."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 100_000)
    return f"{sign}{whole}.{fraction:05d}"


# One extrusion: (tool, increment in 1e-5 mm, reset E before it in absolute mode to this).
extrusions = st.tuples(
    st.integers(0, 2),
    st.integers(-200_000, 2_000_000),
    st.one_of(st.none(), st.integers(-10_000_000, 10_000_000)),
)
sections = st.lists(
    st.tuples(st.one_of(st.none(), st.integers(0, 5)), st.lists(extrusions, max_size=12)),
    min_size=1,
    max_size=8,
)


def render(plan: list[tuple[int | None, list[tuple[int, int, int | None]]]], absolute: bool
           ) -> list[str]:
    lines = ["M82\n", "G92 E0\n"] if absolute else ["M83\n"]
    position = 0  # E position in 1e-5 mm, tracked exactly
    tool = 0
    for tablet, steps in plan:
        lines.append(";TABLET:NONE\n" if tablet is None else f";TABLET:{tablet}  \n")
        for step_tool, units, reset in steps:
            if step_tool != tool:
                tool = step_tool
                lines.append(f"T{tool}\n")
                if absolute:  # the E position after a tool change is set explicitly
                    position = 0 if reset is None else reset
                    lines.append(f"G92 E{decimal_text(position)}\n")
            elif absolute and reset is not None:
                position = reset
                lines.append(f"G92 E{decimal_text(position)}\n")
            position += units
            e_text = decimal_text(position if absolute else units)
            lines.append(f"G1 X{len(lines) % 7} E{e_text}\n")
    return lines


@settings(max_examples=150, deadline=None)
@given(sections)
def test_relative_and_absolute_renderings_agree(
    plan: list[tuple[int | None, list[tuple[int, int, int | None]]]],
) -> None:
    expected_units: dict[tuple[int | None, int], int] = {}
    gross_units: dict[tuple[int | None, int], int] = {}
    for tablet, steps in plan:
        for tool, units, _ in steps:
            expected_units[(tablet, tool)] = expected_units.get((tablet, tool), 0) + units
            gross_units[(tablet, tool)] = gross_units.get((tablet, tool), 0) + abs(units)
    relative = read_gcode(render(plan, absolute=False)).filament_mm
    absolute = read_gcode(render(plan, absolute=True)).filament_mm
    independent = net_filament_mm(render(plan, absolute=True))
    assert relative.keys() == absolute.keys() == expected_units.keys() == independent.keys()
    for key, units in expected_units.items():
        expected_mm = units * E_STEP_MM
        # Relative to the gross length too, so a section that nets to ~0 is still checked.
        slack_mm = 1e-9 * (gross_units[key] * E_STEP_MM + 1.0)
        for got in (relative[key], absolute[key], independent[key]):
            assert math.isclose(got, expected_mm, rel_tol=1e-9, abs_tol=slack_mm), key


def test_packed_e_is_a_word_not_an_exponent() -> None:
    # Marlin's parser and Klipper's both stop a number at 'E': X1E3 is X=1, E=3.
    reading = read("M83\nG1X1E3\n")
    assert reading.filament_mm == {(None, 0): 3.0}
    assert reading.bounds_mm == ((1.0, 1.0), (0.0, 0.0), (0.0, 0.0))


def test_flow_factors_in_force_in_tablets_are_listed_per_tool() -> None:
    text = ("M83\nM221 S97.5\n;TABLET:0\nG1 X1 E1\n;TABLET:NONE\nT1\nM221 S102\n"
            ";TABLET:0\nG1 X2 E1\n;TABLET:NONE\nM221 T0 S99\nT0\n;TABLET:1\nG1 X3 E1\n"
            ";TABLET:NONE\nM221 D1 S100\nG1 X4 E1\n")
    reading = read(text)
    assert reading.tablet_flow_percent == {0: frozenset({97.5, 99.0}), 1: frozenset({102.0})}
    assert read("M83\n;TABLET:0\nG1 X1 E1\n").tablet_flow_percent == {0: frozenset({100.0})}
