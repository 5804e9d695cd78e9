"""The motion planner against closed-form trapezoids and the cornering rule.

Each expected figure is worked out by hand from the kinematics (a trapezoid's phases,
the junction-deviation circle), not by running the planner; the planner is checked
against Klipper's own host planning the shipped examples in tests/peers.
"""

from __future__ import annotations

import math

import pytest

from doseprint.gcode.motion import MotionLimits, motion_limits, plan_commands
from doseprint.library import load_printers

A = 1000.0       # mm/s²
LIMITS = MotionLimits(max_velocity_mm_s=200.0, max_accel_mm_s2=A,
                      square_corner_velocity_mm_s=5.0, max_z_velocity_mm_s=10.0,
                      max_z_accel_mm_s2=100.0, max_extrude_only_velocity_mm_s=30.0,
                      max_extrude_only_accel_mm_s2=300.0)


def plan(*commands: str, limits: MotionLimits = LIMITS) -> tuple[float, ...]:
    return plan_commands(list(commands), limits).durations_s


def test_a_long_move_is_a_full_trapezoid() -> None:
    # 100 mm at 100 mm/s from rest to rest: 0.1 s up (5 mm), 90 mm cruise, 0.1 s down.
    assert plan("G1 X100 F6000") == pytest.approx((0.1 + 0.9 + 0.1,))
    # d/v + v/a in general
    assert plan("G1 X37 Y0 F3000") == pytest.approx((37 / 50 + 50 / A,))


def test_a_short_move_keeps_half_its_length_for_cruising() -> None:
    # 2 mm cannot reach 100 mm/s. With the minimum cruise ratio 0.5 the peak is planned
    # with a pseudo-acceleration a/2: v² = d·a/2 = 1000 → v = 31.62 mm/s, reached after
    # v²/(2a) = 0.5 mm; 0.5 mm up, 1 mm cruise, 0.5 mm down.
    v = math.sqrt(2.0 * A / 2.0)
    want = 0.5 / (v / 2) + 1.0 / v + 0.5 / (v / 2)
    assert plan("G1 X2 F6000") == pytest.approx((want,))


def test_a_square_corner_is_taken_at_the_square_corner_velocity() -> None:
    # Two 50 mm legs at 100 mm/s with a 90° turn between them at v_c = 5 mm/s:
    # leg 1: up 0→100 (5 mm, 0.1 s), cruise, down 100→5 (4.9875 mm, 0.095 s)
    # leg 2: up 5→100 (4.9875 mm, 0.095 s), cruise, down 100→0 (5 mm, 0.1 s)
    d_down = (100**2 - 5**2) / (2 * A)
    leg = 0.1 + (50 - 5 - d_down) / 100 + 0.095
    durations = plan("G1 X50 F6000", "G1 Y50")
    assert durations == pytest.approx((leg, leg))


def test_straight_on_does_not_slow_down() -> None:
    # Two collinear 50 mm moves plan as one 100 mm move.
    assert sum(plan("G1 X50 F6000", "G1 X100")) == pytest.approx(1.1)


def test_z_moves_use_the_z_limits() -> None:
    # 2 mm of Z at 10 mm/s and 100 mm/s²: d/v + v/a = 0.2 + 0.1
    assert plan("G1 Z2 F600") == pytest.approx((0.3,))
    # A diagonal move with Z is scaled by its Z share: length 5, Z 3 → limits × 5/3
    limit_v, limit_a = 10.0 * 5 / 3, 100.0 * 5 / 3
    assert plan("G1 X4 Z3 F6000") == pytest.approx((5 / limit_v + limit_v / limit_a,))


def test_retractions_use_the_extruder_limits_and_count_the_extrude_factor() -> None:
    # 3 mm of filament at 30 mm/s and 300 mm/s² (extrude-only limits), minimum cruise
    # ratio on the pseudo-acceleration min(2·3·500, 2·3·300)/2: v² = 900 → v = 30 exactly.
    t = plan("M83", "G1 E-3 F3000")
    assert t == pytest.approx((0.0, 3 / 30 + 30 / 300))
    # M221 S200 doubles the filament length planned (Klipper scales E by its factor).
    t2 = plan("M83", "M221 S200", "G1 E-1.5 F3000")
    assert t2[-1] == pytest.approx(t[-1])


def test_dwell_and_stops() -> None:
    # G4 P500 adds half a second and stops the machine: the moves around it plan apart.
    durations = plan("G1 X50 F6000", "G4 P500", "G1 X100")
    assert durations[1] == pytest.approx(0.5)
    assert durations[0] == pytest.approx(50 / 100 + 0.1)
    assert durations[2] == pytest.approx(50 / 100 + 0.1)
    # A tool change stops it too.
    assert sum(plan("G1 X50 F6000", "T1", "G1 X100")) == pytest.approx(1.2)


def test_modes_and_offsets_are_followed() -> None:
    # G91 relative, G92 offsets, G90 back: X goes 0 → 10 → 20 → (G92 X0) → 30 absolute = 50
    durations = plan("G91", "G1 X10 F600", "G1 X10", "G90", "G92 X0", "G1 X30")
    assert sum(durations) == pytest.approx(50 / 10 + 10 / A, rel=0.02)
    assert durations[4] == 0.0


def test_limits_from_a_shipped_profile() -> None:
    profile = load_printers(())["generic-marlin-1x175"]
    limits = motion_limits(profile)
    assert limits.max_velocity_mm_s == profile.travel_speed_mm_s
    assert limits.max_accel_mm_s2 == profile.acceleration_mm_s2
    # Klipper's default extrude-only speed: max velocity × 4·nozzle² / filament area
    ratio = 4 * 0.4**2 / (math.pi * 1.75**2 / 4)
    assert limits.max_extrude_only_velocity_mm_s == pytest.approx(120 * ratio)
    # Junction deviation from the square corner velocity: v²(√2 − 1)/a
    assert limits.junction_deviation_mm == pytest.approx(25 * (math.sqrt(2) - 1) / 1000)
