"""Crank's series solutions checked against their known moments, limits and each other."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike
from scipy.integrate import quad
from scipy.optimize import brentq

from doseprint.release import analytical
from doseprint.release.analytical import (
    cylinder_released,
    eroding_cylinder_released,
    finite_cylinder_released,
    infinite_cylinder_released,
    slab_released,
    sphere_released,
)
from doseprint.typed import FloatArray

OneLength = Callable[[ArrayLike, float, float], FloatArray]

# (function, mean release time in units of length²/D, τ at 80 % released), from
# CONTEXT.md "Release physics". The slab's length is its FULL thickness L.
BODIES: list[tuple[str, OneLength, float, float]] = [
    ("slab", slab_released, 1.0 / 12.0, 0.1418),
    ("sphere", sphere_released, 1.0 / 15.0, 0.1135),
    ("infinite cylinder", infinite_cylinder_released, 1.0 / 8.0, 0.2147),
]
BODY_IDS = [b[0] for b in BODIES]

# Floating-point evaluation of a smooth increasing curve can wobble by an ulp or two
# between neighbouring times (seen: 2.4e-16 next to the cylinder's form switch).
ROUNDING = 1e-15


def _mean_release_time_s(released: OneLength, length_mm: float, d_mm2_s: float) -> float:
    """∫_0^∞ (1 − F) dt by adaptive quadrature.

    Integrated in τ = D t / length² (t = scale · τ) so the integrand has the same shape
    whatever the units; by τ = 50 even the slowest body has 1 − F < 1e-200.
    """
    scale_s = length_mm**2 / d_mm2_s

    def unreleased(tau: float) -> float:
        return 1.0 - float(released(scale_s * tau, length_mm, d_mm2_s))

    head, _ = quad(unreleased, 0.0, 1.0, epsabs=0.0, epsrel=1e-10, limit=200)
    tail, _ = quad(unreleased, 1.0, 50.0, epsabs=1e-14, epsrel=1e-10, limit=200)
    return scale_s * float(head + tail)


@pytest.mark.parametrize(("name", "released", "mean_tau", "tau80"), BODIES, ids=BODY_IDS)
@pytest.mark.parametrize(("length_mm", "d_mm2_s"), [(1.0, 1.0), (4.0, 6e-4), (10.0, 2e-5)])
def test_mean_release_time_matches_closed_form(
    name: str,
    released: OneLength,
    mean_tau: float,
    tau80: float,
    length_mm: float,
    d_mm2_s: float,
) -> None:
    expected_s = mean_tau * length_mm**2 / d_mm2_s
    got_s = _mean_release_time_s(released, length_mm, d_mm2_s)
    assert got_s == pytest.approx(expected_s, rel=1e-3)


@pytest.mark.parametrize(("name", "released", "mean_tau", "tau80"), BODIES, ids=BODY_IDS)
def test_t80_in_dimensionless_time(
    name: str, released: OneLength, mean_tau: float, tau80: float
) -> None:
    # With D = 1 mm²/s and length 1 mm, t in seconds is τ.
    tau = brentq(lambda x: float(released(x, 1.0, 1.0)) - 0.8, 1e-3, 1.0, xtol=1e-12)
    assert tau == pytest.approx(tau80, abs=5e-5)


def test_slab_t80_convention_is_full_thickness() -> None:
    """τ80 = 0.1418 holds with L the full thickness; with the half-thickness it is 4× that."""
    thickness_mm, d_mm2_s = 3.0, 1e-3
    t80_s = brentq(
        lambda t: float(slab_released(t, thickness_mm, d_mm2_s)) - 0.8, 1.0, 1e5, xtol=1e-9
    )
    assert d_mm2_s * t80_s / thickness_mm**2 == pytest.approx(0.1418, abs=5e-5)
    assert d_mm2_s * t80_s / (thickness_mm / 2.0) ** 2 == pytest.approx(4 * 0.1418, abs=2e-4)


@pytest.mark.parametrize(("name", "released", "mean_tau", "tau80"), BODIES, ids=BODY_IDS)
def test_zero_at_zero_and_complete_at_long_times(
    name: str, released: OneLength, mean_tau: float, tau80: float
) -> None:
    f = released(np.array([0.0, 100.0]), 1.0, 1.0)
    assert f[0] == 0.0
    assert f[1] == 1.0


@pytest.mark.parametrize(("name", "released", "mean_tau", "tau80"), BODIES, ids=BODY_IDS)
def test_monotone_on_a_dense_log_grid(
    name: str, released: OneLength, mean_tau: float, tau80: float
) -> None:
    tau = np.concatenate([[0.0], np.logspace(-12, 1, 4000)])
    f = released(tau, 1.0, 1.0)
    assert np.all(np.diff(f) >= 0.0)
    assert f[-1] <= 1.0


@settings(max_examples=60, deadline=None)
@given(
    d_mm2_s=st.floats(1e-7, 1e-1),
    radius_mm=st.floats(0.1, 50.0),
    height_mm=st.floats(0.1, 50.0),
    times_s=st.lists(st.floats(0.0, 1e7), min_size=1, max_size=40),
)
def test_bounded_and_monotone_for_any_inputs(
    d_mm2_s: float, radius_mm: float, height_mm: float, times_s: list[float]
) -> None:
    t = np.sort(np.asarray(times_s))
    curves = [
        slab_released(t, height_mm, d_mm2_s),
        sphere_released(t, radius_mm, d_mm2_s),
        infinite_cylinder_released(t, radius_mm, d_mm2_s),
        finite_cylinder_released(t, radius_mm, height_mm, d_mm2_s),
    ]
    for f in curves:
        assert f.shape == t.shape
        assert np.all((f >= 0.0) & (f <= 1.0))
        assert np.all(np.diff(f) >= -ROUNDING)
        assert np.all(f[t == 0.0] == 0.0)


@settings(max_examples=40, deadline=None)
@given(
    d_mm2_s=st.floats(1e-7, 1e-1),
    radius_mm=st.floats(0.1, 50.0),
    height_mm=st.floats(0.1, 50.0),
)
def test_finite_cylinder_releases_more_than_either_factor(
    d_mm2_s: float, radius_mm: float, height_mm: float
) -> None:
    t = np.geomspace(1.0, 1e7, 30)
    both = finite_cylinder_released(t, radius_mm, height_mm, d_mm2_s)
    assert np.all(both >= slab_released(t, height_mm, d_mm2_s) - ROUNDING)
    assert np.all(both >= infinite_cylinder_released(t, radius_mm, d_mm2_s) - ROUNDING)


# Short-time and long-time forms -----------------------------------------------------------


@pytest.mark.parametrize(
    ("short", "long"),
    [
        (analytical._slab_released_short, analytical._slab_released_long),
        (analytical._sphere_released_short, analytical._sphere_released_long),
    ],
    ids=["slab", "sphere"],
)
def test_exact_short_and_long_forms_agree_over_a_wide_range(
    short: Callable[..., np.ndarray], long: Callable[..., np.ndarray]
) -> None:
    # Both are exact identities; with enough terms each holds anywhere.
    tau = np.geomspace(1e-3, 2.0, 200)
    assert np.allclose(short(tau, n_terms=60), long(tau, n_terms=600), rtol=0.0, atol=1e-13)


def test_cylinder_short_time_expansion_agrees_with_the_bessel_series() -> None:
    tau = np.geomspace(1e-5, 3e-3, 60)
    series = analytical._cylinder_released_long(tau, n_terms=3000)
    expansion = analytical._cylinder_released_short(tau)
    assert np.allclose(expansion, series, rtol=0.0, atol=5e-14)


def test_cylinder_expansion_starts_with_cranks_three_terms() -> None:
    a = analytical._cylinder_short_coefficients(4)
    root_pi = math.sqrt(math.pi)
    assert a[0] == pytest.approx(4.0 / root_pi, rel=1e-15)
    assert a[1] == pytest.approx(-1.0, rel=1e-15)
    assert a[2] == pytest.approx(-1.0 / (3.0 * root_pi), rel=1e-15)
    assert a[3] == pytest.approx(-1.0 / 8.0, rel=1e-15)


@pytest.mark.parametrize(
    ("short", "long", "switch_tau"),
    [
        (
            analytical._slab_released_short,
            analytical._slab_released_long,
            analytical._SLAB_SPHERE_SWITCH_TAU,
        ),
        (
            analytical._sphere_released_short,
            analytical._sphere_released_long,
            analytical._SLAB_SPHERE_SWITCH_TAU,
        ),
        (
            analytical._cylinder_released_short,
            analytical._cylinder_released_long,
            analytical._CYLINDER_SWITCH_TAU,
        ),
    ],
    ids=BODY_IDS,
)
def test_no_step_where_the_public_function_switches_form(
    short: Callable[[np.ndarray], np.ndarray],
    long: Callable[[np.ndarray], np.ndarray],
    switch_tau: float,
) -> None:
    """With the term counts the public functions use, both forms meet at the switch."""
    tau = np.array([switch_tau])
    assert abs(float(short(tau)[0] - long(tau)[0])) <= 1e-15


@pytest.mark.parametrize(
    ("released", "surface_per_volume_mm"),
    [
        (lambda t: slab_released(t, 2.0, 1.0), 2.0 / 2.0),
        (lambda t: sphere_released(t, 3.0, 1.0), 3.0 / 3.0),
        (lambda t: infinite_cylinder_released(t, 2.0, 1.0), 2.0 / 2.0),
        (lambda t: finite_cylinder_released(t, 5.0, 4.0, 1.0), 2.0 / 5.0 + 2.0 / 4.0),
    ],
    ids=[*BODY_IDS, "finite cylinder"],
)
def test_early_release_follows_surface_to_volume(
    released: Callable[[np.ndarray], np.ndarray], surface_per_volume_mm: float
) -> None:
    """At early times every body releases 2 (S/V) √(Dt/π), whatever its shape."""
    t = np.array([1e-10, 1e-8])
    expected = 2.0 * surface_per_volume_mm * np.sqrt(t / math.pi)
    assert np.allclose(released(t), expected, rtol=1e-4, atol=0.0)


# Finite cylinder limits -----------------------------------------------------------------


def test_finite_cylinder_tends_to_slab_for_a_wide_disc() -> None:
    t = np.geomspace(1.0, 1e6, 50)
    wide = finite_cylinder_released(t, 1e9, 4.0, 6e-4)
    assert np.allclose(wide, slab_released(t, 4.0, 6e-4), rtol=0.0, atol=1e-7)


def test_finite_cylinder_tends_to_infinite_cylinder_for_a_long_rod() -> None:
    t = np.geomspace(1.0, 1e6, 50)
    long_rod = finite_cylinder_released(t, 5.0, 1e9, 6e-4)
    assert np.allclose(long_rod, infinite_cylinder_released(t, 5.0, 6e-4), rtol=0.0, atol=1e-7)


# Erosion and dispatch -------------------------------------------------------------------


def test_erosion_by_hand() -> None:
    # R 5 mm, H 4 mm, 0.5 mm/h for 1 h: radius 4.5 mm, height 3 mm left.
    f = eroding_cylinder_released(3600.0, 5.0, 4.0, 0.5)
    assert float(f) == pytest.approx(1.0 - 0.9**2 * 0.75, rel=1e-14)


@pytest.mark.parametrize(
    ("radius_mm", "height_mm", "rate_mm_h", "end_h"),
    [
        (5.0, 4.0, 0.5, 4.0),  # H/(2k) = 4 h comes before R/k = 10 h
        (2.0, 10.0, 0.5, 4.0),  # R/k = 4 h comes before H/(2k) = 10 h
        (3.0, 6.0, 1.0, 3.0),  # both at once
    ],
)
def test_erosion_complete_at_the_first_dimension_to_vanish(
    radius_mm: float, height_mm: float, rate_mm_h: float, end_h: float
) -> None:
    t_s = 3600.0 * np.array([0.0, 0.999 * end_h, end_h, 2.0 * end_h, 50.0 * end_h])
    f = eroding_cylinder_released(t_s, radius_mm, height_mm, rate_mm_h)
    assert f[0] == 0.0
    assert f[1] < 1.0
    assert np.all(f[2:] == 1.0)


@settings(max_examples=40, deadline=None)
@given(
    radius_mm=st.floats(0.1, 50.0),
    height_mm=st.floats(0.1, 50.0),
    rate_mm_h=st.floats(0.0, 10.0),
    times_s=st.lists(st.floats(0.0, 1e7), min_size=1, max_size=40),
)
def test_erosion_bounded_and_monotone(
    radius_mm: float, height_mm: float, rate_mm_h: float, times_s: list[float]
) -> None:
    t = np.sort(np.asarray(times_s))
    f = eroding_cylinder_released(t, radius_mm, height_mm, rate_mm_h)
    assert np.all((f >= 0.0) & (f <= 1.0))
    assert np.all(np.diff(f) >= -ROUNDING)


def test_cylinder_released_dispatches_on_mechanism() -> None:
    t = np.linspace(0.0, 12 * 3600.0, 49)
    r, h, d, k = 5.0, 4.0, 6e-4, 0.2
    diffusion = finite_cylinder_released(t, r, h, d)
    erosion = eroding_cylinder_released(t, r, h, k)
    assert np.array_equal(cylinder_released(t, r, h, d, "diffusion", k), diffusion)
    assert np.array_equal(cylinder_released(t, r, h, d, "erosion", k), erosion)
    both = cylinder_released(t, r, h, d, "diffusion+erosion", k)
    assert np.allclose(both, 1.0 - (1.0 - diffusion) * (1.0 - erosion), rtol=0.0, atol=1e-15)
    assert np.all(both >= np.maximum(diffusion, erosion) - ROUNDING)
    # Without erosion the combined mechanism is plain diffusion.
    assert np.array_equal(cylinder_released(t, r, h, d, "diffusion+erosion", 0.0), diffusion)


def test_unknown_mechanism_is_refused() -> None:
    with pytest.raises(ValueError, match="mechanism"):
        cylinder_released(1.0, 5.0, 4.0, 6e-4, "dissolution")  # type: ignore[arg-type]


# Inputs ---------------------------------------------------------------------------------


def test_shape_follows_the_times() -> None:
    assert slab_released(10.0, 1.0, 1e-3).shape == ()
    grid = np.linspace(0.0, 100.0, 12).reshape(3, 4)
    assert finite_cylinder_released(grid, 5.0, 4.0, 1e-3).shape == (3, 4)


def test_zero_diffusivity_releases_nothing() -> None:
    f = finite_cylinder_released(np.array([0.0, 1.0, 1e9]), 5.0, 4.0, 0.0)
    assert np.array_equal(f, np.zeros(3))


@pytest.mark.parametrize(
    "call",
    [
        lambda: slab_released(-1.0, 1.0, 1e-3),
        lambda: slab_released(np.nan, 1.0, 1e-3),
        lambda: sphere_released(1.0, 0.0, 1e-3),
        lambda: infinite_cylinder_released(1.0, 5.0, -1e-3),
        lambda: finite_cylinder_released(1.0, 5.0, math.inf, 1e-3),
        lambda: eroding_cylinder_released(1.0, 5.0, 4.0, -0.1),
    ],
)
def test_out_of_range_inputs_raise(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        call()
