"""Curve metrics, f2 and the release judgement of spec/prescription.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from doseprint.release.analytical import slab_released
from doseprint.release.metrics import (
    ReleaseJudgement,
    f2,
    judge_release,
    mean_dissolution_time_h,
    release_time_grid_h,
    t50_h,
    t80_h,
    time_to_fraction,
)

# A hand-made curve: 30 % per hour for two hours, then 15 % per hour.
HOURS = np.array([0.0, 1.0, 2.0, 4.0])
FRACTION = np.array([0.0, 0.3, 0.6, 0.9])

PROFILE = [[0.5, 0.10], [2.0, 0.35], [6.0, 0.75], [12.0, 0.95]]


# Times and means --------------------------------------------------------------------------


def test_times_on_a_hand_made_curve() -> None:
    assert t50_h(HOURS, FRACTION) == pytest.approx(1.0 + 0.2 / 0.3)
    assert t80_h(HOURS, FRACTION) == pytest.approx(2.0 + 2.0 * 0.2 / 0.3)
    assert time_to_fraction(HOURS, FRACTION, 0.6) == pytest.approx(2.0)
    assert time_to_fraction(HOURS, FRACTION, 0.0) == 0.0
    assert time_to_fraction(HOURS, FRACTION, 0.95) is None


def test_mdt_on_a_hand_made_curve() -> None:
    # Unreleased share of the final 0.9: 0.9, 0.6, 0.3, 0 at 0, 1, 2, 4 h; trapezoids
    # 0.75 + 0.45 + 0.30 = 1.5 h·fraction, over 0.9.
    assert mean_dissolution_time_h(HOURS, FRACTION) == pytest.approx(1.5 / 0.9)


def test_mdt_is_none_when_nothing_is_released() -> None:
    assert mean_dissolution_time_h(HOURS, np.zeros(4)) is None


def test_mdt_of_a_complete_slab_curve_is_its_mean_release_time() -> None:
    thickness_mm = 2.0
    d_mm2_s = thickness_mm**2 / (12 * 2.0 * 3600.0)  # mean release time L²/(12D) = 2 h
    hours = np.linspace(0.0, 48.0, 20001)
    fraction = slab_released(3600.0 * hours, thickness_mm, d_mm2_s)
    assert mean_dissolution_time_h(hours, fraction) == pytest.approx(2.0, rel=1e-3)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(0.01, 5.0), min_size=2, max_size=30),
    rises=st.lists(st.floats(0.0, 0.2), min_size=2, max_size=30),
    target=st.floats(0.01, 1.0),
)
def test_time_to_fraction_lands_on_the_target(
    steps: list[float], rises: list[float], target: float
) -> None:
    n = min(len(steps), len(rises))
    hours = np.concatenate([[0.0], np.cumsum(steps[:n])])
    fraction = np.concatenate([[0.0], np.cumsum(rises[:n])])
    t = time_to_fraction(hours, fraction, target)
    if fraction.max() < target:
        assert t is None
    else:
        assert t is not None
        assert 0.0 <= t <= hours[-1]
        assert float(np.interp(t, hours, fraction)) == pytest.approx(target, abs=1e-9)
        # Nothing earlier on the curve reaches the target.
        assert np.all(fraction[hours < t] < target)


@pytest.mark.parametrize(
    ("hours", "fraction"),
    [
        ([0.0, 1.0], [0.0]),  # lengths differ
        ([0.0], [0.0]),  # a single point
        ([0.5, 1.0], [0.0, 0.5]),  # does not start at 0 h
        ([0.0, 1.0, 1.0], [0.0, 0.5, 0.6]),  # time repeats
        ([0.0, 1.0], [0.0, math.nan]),
    ],
)
def test_malformed_curves_raise(hours: list[float], fraction: list[float]) -> None:
    with pytest.raises(ValueError):
        t50_h(hours, fraction)


# f2 -------------------------------------------------------------------------------------


def test_f2_of_identical_curves_is_100() -> None:
    curve = np.array([10.0, 35.0, 75.0, 95.0])
    assert f2(curve, curve) == pytest.approx(100.0, abs=1e-12)


def test_f2_by_hand() -> None:
    # Every point 10 % apart: mean square 100, f2 = 50 log10(100 / √101) = 49.892.
    assert f2([10.0, 40.0, 70.0], [20.0, 50.0, 80.0]) == pytest.approx(49.892, abs=1e-3)
    # Differences 0, 6, 8 %: mean square (0 + 36 + 64) / 3 = 100/3, √(1 + 100/3) = 5.859,
    # f2 = 50 log10(100 / 5.859) = 61.61.
    assert f2([10.0, 46.0, 78.0], [10.0, 40.0, 70.0]) == pytest.approx(61.61, abs=1e-2)


def test_f2_is_symmetric() -> None:
    a, b = [5.0, 30.0, 60.0, 90.0], [12.0, 25.0, 70.0, 88.0]
    assert f2(a, b) == f2(b, a)


def test_f2_needs_matching_points() -> None:
    with pytest.raises(ValueError):
        f2([10.0, 20.0], [10.0])
    with pytest.raises(ValueError):
        f2([], [])


# Judgement ------------------------------------------------------------------------------


def test_immediate_met_and_not_met() -> None:
    hours = [0.0, 0.25, 0.5, 1.0]
    fast = judge_release("immediate", hours, [0.0, 0.6, 0.9, 1.0])
    assert fast.met
    assert fast.released_at_30min == pytest.approx(0.9)
    assert fast.f2 is None
    assert fast.reason == "90.0 % released at 0.5 h vs at least 85 %"
    slow = judge_release("immediate", hours, [0.0, 0.5, 0.8, 0.95])
    assert not slow.met
    assert "80.0 %" in slow.reason


def test_immediate_exactly_at_the_limit_is_met() -> None:
    judgement = judge_release("immediate", [0.0, 0.5, 1.0], [0.0, 0.85, 1.0])
    assert judgement.met


def test_sustained_met_and_not_met() -> None:
    hours = np.linspace(0.0, 10.0, 101)
    fraction = 0.1 * hours  # t80 = 8 h
    on_target = judge_release("sustained", hours, fraction, t80_h=8.0)
    assert on_target.met
    assert on_target.t80_h == pytest.approx(8.0)
    assert on_target.t50_h == pytest.approx(5.0)
    assert on_target.mdt_h == pytest.approx(5.0)
    assert on_target.reason == "t80 8.0 h vs target 8.0 h ±10 %"
    assert judge_release("sustained", hours, fraction, t80_h=7.5).met  # 8 within 7.5 ± 0.75
    too_slow = judge_release("sustained", hours, fraction, t80_h=9.5)  # 8 outside 9.5 ± 0.95
    assert not too_slow.met
    assert too_slow.reason == "t80 8.0 h vs target 9.5 h ±10 %"


def test_sustained_never_reaching_80_percent_is_not_met() -> None:
    hours = np.linspace(0.0, 24.0, 97)
    judgement = judge_release("sustained", hours, 0.02 * hours, t80_h=20.0)
    assert not judgement.met
    assert judgement.t80_h is None
    assert judgement.reason == "t80 not reached by 24.0 h (48.0 % released) vs target 20.0 h ±10 %"


def test_sustained_slab_on_the_default_grid() -> None:
    """A slab built to reach 80 % at 8 h is judged on target, read off the standard grid."""
    thickness_mm = 3.0
    d_mm2_s = 0.14179 * thickness_mm**2 / (8.0 * 3600.0)
    hours = release_time_grid_h("sustained", t80_h=8.0)
    fraction = slab_released(3600.0 * hours, thickness_mm, d_mm2_s)
    judgement = judge_release("sustained", hours, fraction, t80_h=8.0)
    assert judgement.met
    assert judgement.t80_h == pytest.approx(8.0, rel=2e-3)


def test_profile_met_and_not_met() -> None:
    points = np.asarray(PROFILE)
    hours = release_time_grid_h("profile", profile=PROFILE)
    # A curve through the profile's points (and on to 1 after the last) matches it.
    through = np.interp(hours, np.r_[0.0, points[:, 0], 18.0], np.r_[0.0, points[:, 1], 1.0])
    same = judge_release("profile", hours, through, profile=PROFILE)
    assert same.met
    assert same.f2 == pytest.approx(100.0)
    assert same.reason == "f2 100.0 vs at least 50 over 4 profile points"
    # 20 % ahead at the profile points (f2 would be 50 log10(100 / √401) = 34.9).
    ahead = np.minimum(through + 0.2, 1.0)
    ahead[0] = 0.0
    judgement = judge_release("profile", hours, ahead, profile=PROFILE)
    assert not judgement.met
    # At 12 h the curve is capped at 1.0, only 5 % ahead: mean square (3·400 + 25)/4.
    assert judgement.f2 == pytest.approx(50.0 * math.log10(100.0 / math.sqrt(1.0 + 306.25)))


def test_profile_is_read_at_its_own_points() -> None:
    # The curve meets the profile at its points and strays between them: f2 stays 100.
    hours = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 6.0, 9.0, 12.0, 18.0])
    fraction = np.array([0.0, 0.10, 0.30, 0.35, 0.70, 0.75, 0.94, 0.95, 1.0])
    assert judge_release("profile", hours, fraction, profile=PROFILE).f2 == pytest.approx(100.0)


def test_judgement_is_frozen() -> None:
    judgement = judge_release("immediate", [0.0, 0.5, 1.0], [0.0, 0.9, 1.0])
    assert isinstance(judgement, ReleaseJudgement)
    with pytest.raises(AttributeError):
        judgement.met = False  # type: ignore[misc]


def test_judge_refuses_missing_targets_and_short_curves() -> None:
    hours, fraction = [0.0, 1.0, 2.0], [0.0, 0.5, 0.9]
    with pytest.raises(ValueError, match="t80_h"):
        judge_release("sustained", hours, fraction)
    with pytest.raises(ValueError, match="profile"):
        judge_release("profile", hours, fraction)
    with pytest.raises(ValueError, match="last profile point"):
        judge_release("profile", hours, fraction, profile=PROFILE)
    with pytest.raises(ValueError, match=r"before 0\.5 h"):
        judge_release("immediate", [0.0, 0.25], [0.0, 0.9])
    with pytest.raises(ValueError, match="release kind"):
        judge_release("delayed", hours, fraction)  # type: ignore[arg-type]


# Time grid ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "t80", "profile", "end_at_least_h"),
    [
        ("immediate", None, None, 24.0),
        ("sustained", 8.0, None, 24.0),
        ("sustained", 20.0, None, 40.0),
        ("profile", None, PROFILE, 24.0),
        ("profile", None, [[1.0, 0.2], [30.0, 0.9]], 45.0),
    ],
)
def test_time_grid(
    kind: str, t80: float | None, profile: list[list[float]] | None, end_at_least_h: float
) -> None:
    grid = release_time_grid_h(kind, t80_h=t80, profile=profile)  # type: ignore[arg-type]
    assert grid[0] == 0.0
    assert np.all(np.diff(grid) > 0.0)
    assert grid[-1] >= end_at_least_h
    assert grid[-1] < end_at_least_h + 0.25 + 1e-9
    assert np.any(grid == 0.5)
    steps = np.diff(grid)
    assert np.allclose(steps[grid[1:] <= 2.0], 0.05)
    assert np.all(steps <= 0.25 + 1e-12)


def test_time_grid_needs_the_kinds_target() -> None:
    with pytest.raises(ValueError, match="t80_h"):
        release_time_grid_h("sustained")
    with pytest.raises(ValueError, match="profile"):
        release_time_grid_h("profile")
    with pytest.raises(ValueError, match="t80_h"):
        release_time_grid_h("sustained", t80_h=-1.0)
