"""The shape-factor release estimate against Crank's exact solutions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from doseprint.release.analytical import (
    eroding_cylinder_released,
    finite_cylinder_released,
    slab_released,
    sphere_released,
)
from doseprint.release.approx import equivalent_released, membrane_lag_s, sphericity

HOURS = np.linspace(0.0, 48.0, 1201) * 3600.0
D = 6e-5


def cylinder_va(radius: float, height: float) -> tuple[float, float]:
    return (math.pi * radius**2 * height,
            2 * math.pi * radius**2 + 2 * math.pi * radius * height)


@pytest.mark.parametrize(("radius", "height"), [
    (10, 1), (8, 0.6), (6, 1), (5, 2), (7, 3), (5, 4), (5, 5), (3, 3), (4, 8), (2, 10),
])
def test_within_003_of_the_exact_finite_cylinder(radius: float, height: float) -> None:
    volume, area = cylinder_va(radius, height)
    exact = finite_cylinder_released(HOURS, radius, height, D)
    estimate = equivalent_released(HOURS, volume, area, D)
    assert np.abs(exact - estimate).max() <= 0.03


def test_a_sphere_is_exact() -> None:
    r = 4.0
    volume, area = 4 / 3 * math.pi * r**3, 4 * math.pi * r**2
    assert sphericity(volume, area) == pytest.approx(1.0)
    assert np.allclose(equivalent_released(HOURS, volume, area, D),
                       sphere_released(HOURS, r, D), atol=1e-12)


def test_a_thin_plate_tends_to_the_slab() -> None:
    # A 40 mm square 0.5 mm thick: edges are 5 % of the area.
    side, thick = 40.0, 0.5
    volume, area = side**2 * thick, 2 * side**2 + 4 * side * thick
    slab = slab_released(HOURS, thick, D)
    assert np.abs(equivalent_released(HOURS, volume, area, D) - slab).max() <= 0.05


def test_early_release_follows_surface_per_volume() -> None:
    # F ≈ 2 (S/V) sqrt(D t / π) while F is small, whatever the shape.
    t = np.array([1.0, 4.0, 9.0])
    volume, area = cylinder_va(5.0, 3.0)
    early = 2 * area / volume * np.sqrt(D * t / math.pi)
    assert np.allclose(equivalent_released(t, volume, area, D), early, rtol=0.02)


def test_erosion_of_a_compact_body_matches_the_eroding_cylinder() -> None:
    volume, area = cylinder_va(4.0, 8.0)
    exact = eroding_cylinder_released(HOURS[:200], 4.0, 8.0, 1.0)
    est = equivalent_released(HOURS[:200], volume, area, D, "erosion", 1.0)
    assert np.abs(exact - est).max() <= 0.06


def test_time_lag_delays_the_curve() -> None:
    volume, area = cylinder_va(4.0, 3.0)
    lag = membrane_lag_s([(0.6, 1e-5)])
    assert lag == pytest.approx(0.36 / 6e-5)
    plain = equivalent_released(HOURS, volume, area, D)
    late = equivalent_released(HOURS, volume, area, D, lag_s=lag)
    shift = round(float(lag / (HOURS[1] - HOURS[0])))
    assert np.all(late[:shift] < 1e-12)
    assert np.allclose(late[shift + 1:], plain[1:len(plain) - shift], atol=0.02)


def test_bounds_and_monotone() -> None:
    volume, area = cylinder_va(5.0, 2.0)
    for mech in ("diffusion", "erosion", "diffusion+erosion"):
        f = equivalent_released(HOURS, volume, area, D, mech, 0.5)  # type: ignore[arg-type]
        assert f[0] == 0.0 and np.all((f >= 0) & (f <= 1)) and np.all(np.diff(f) >= -1e-12)
    assert np.all(equivalent_released(HOURS, volume, 0.0, D) == 0.0)
