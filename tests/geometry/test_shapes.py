"""Outlines, dome integrals and the constructive solids, against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from doseprint.geometry.shapes import (
    Annulus,
    Circle,
    Ellipse,
    OffsetEllipse,
    Stadium,
    circle_polygon,
    dome_column_mm3,
    dome_volume_within_mm3,
    dome_wedge_column_mm3,
    stadium_volume_left_mm3,
)
from doseprint.geometry.solids import DomedPrism, build_manifold, section, to_trimesh

OUTLINES = [Circle(5.0), Stadium(4.0, 3.0), Stadium(1.0, 3.0), Ellipse(6.0, 3.5),
            OffsetEllipse(6.0, 3.5, 1.0)]
CONVEX_IDS = ["circle", "stadium", "short-stadium", "ellipse", "offset-ellipse"]


@pytest.mark.parametrize("outline", [*OUTLINES, Annulus(5.0, 2.0)],
                         ids=[*CONVEX_IDS, "annulus"])
def test_polygon_carries_the_analytic_area(outline: object) -> None:
    poly = outline.polygon  # type: ignore[attr-defined]
    assert poly.is_valid
    assert poly.area == pytest.approx(outline.area_mm2, rel=1e-12)  # type: ignore[attr-defined]


def test_closed_form_areas() -> None:
    assert Stadium(4.0, 3.0).area_mm2 == pytest.approx(8.0 * 6.0 + math.pi * 9.0)
    assert Ellipse(6.0, 3.5).area_mm2 == pytest.approx(math.pi * 21.0)
    # Steiner: the offset of a circle is a circle.
    circle_as_ellipse = OffsetEllipse(4.0, 4.0, 1.0)
    assert circle_as_ellipse.area_mm2 == pytest.approx(math.pi * 25.0, rel=1e-12)
    # The offset of a stadium is the stadium with a larger radius (exact Steiner).
    st_ = Stadium(4.0, 3.0)
    perimeter = 4.0 * 4.0 + 2.0 * math.pi * 3.0
    assert st_.offset(0.7).area_mm2 == pytest.approx(st_.area_mm2 + perimeter * 0.7
                                                     + math.pi * 0.49)


@pytest.mark.parametrize("outline", OUTLINES, ids=CONVEX_IDS)
def test_gauge_is_one_on_the_outline_and_scales(outline: object) -> None:
    xy = np.asarray(outline.polygon.exterior.coords)  # type: ignore[attr-defined]
    g = outline.gauge(xy[:, 0], xy[:, 1])  # type: ignore[attr-defined]
    # Polygons are scaled up by ~1e-4 to carry the exact area.
    assert np.allclose(g, 1.0, atol=5e-4)
    assert np.allclose(outline.gauge(0.5 * xy[:, 0], 0.5 * xy[:, 1]), 0.5 * g)  # type: ignore[attr-defined]


def test_dome_column_of_a_centred_disc_is_closed_form() -> None:
    r, rho, d = 5.0, 0.6, 1.5
    exact = d * 2.0 * math.pi * r**2 / 3.0 * (1.0 - (1.0 - rho**2 / r**2) ** 1.5)
    assert dome_column_mm3(Circle(r), 0.0, 0.0, rho, d) == pytest.approx(exact, rel=1e-12)
    assert dome_wedge_column_mm3(Circle(r), rho, 0.0, 2.0 * math.pi, d) == pytest.approx(
        exact, rel=1e-12)
    assert dome_wedge_column_mm3(Ellipse(6.0, 3.5), rho, -math.pi, math.pi, d) == \
        pytest.approx(dome_column_mm3(Ellipse(6.0, 3.5), 0.0, 0.0, rho, d), rel=1e-10)


@pytest.mark.parametrize("outline", OUTLINES[:4], ids=CONVEX_IDS[:4])
def test_dome_column_off_centre_matches_adaptive_quadrature(outline: object) -> None:
    cx, cy, rho = 2.1, 0.9, 0.55

    def height(r: float, t: float) -> float:
        g = float(outline.gauge(np.array(cx + r * math.cos(t)),  # type: ignore[attr-defined]
                                np.array(cy + r * math.sin(t))))
        return math.sqrt(max(0.0, 1.0 - g * g)) * r

    reference, _ = integrate.dblquad(height, 0.0, 2.0 * math.pi, 0.0, rho,
                                     epsabs=1e-13, epsrel=1e-12)
    assert dome_column_mm3(outline, cx, cy, rho, 1.0) == pytest.approx(  # type: ignore[arg-type]
        reference, rel=1e-9)


@given(scale=st.floats(0.0, 1.0), dome=st.floats(0.1, 3.0))
@settings(max_examples=50)
def test_dome_volume_within_matches_its_integral(scale: float, dome: float) -> None:
    def integrand(z: float) -> float:
        return min(1.0 - (z / dome) ** 2, scale**2)

    kink = [dome * math.sqrt(1.0 - scale**2)]
    reference, _ = integrate.quad(integrand, 0.0, dome, points=kink, epsabs=1e-14, limit=200)
    assert dome_volume_within_mm3(1.0, scale, dome) == pytest.approx(reference, abs=1e-11)
    assert dome_volume_within_mm3(2.0, 1.0, dome) == pytest.approx(4.0 / 3.0 * dome)


def test_stadium_volume_left_of_a_cut() -> None:
    st_ = Stadium(4.0, 3.0)
    # Without domes: half-disc plus rectangle up to x, times the band.
    assert stadium_volume_left_mm3(st_, 1.0, 2.0, 0.0) == pytest.approx(
        2.0 * (math.pi * 9.0 / 2.0 + 6.0 * 5.0))
    # Symmetry and the whole: half at x = 0, all at the end.
    total = st_.area_mm2 * (2.0 + 2.0 / 3.0 * 2.5)
    assert stadium_volume_left_mm3(st_, 0.0, 2.0, 2.5) == pytest.approx(total / 2.0, rel=1e-12)
    assert stadium_volume_left_mm3(st_, 7.0, 2.0, 2.5) == pytest.approx(total, rel=1e-12)
    left = stadium_volume_left_mm3(st_, -2.5, 2.0, 2.5)
    right = stadium_volume_left_mm3(st_, 2.5, 2.0, 2.5)
    assert left + right == pytest.approx(total, rel=1e-12)


@pytest.mark.parametrize("outline", OUTLINES, ids=CONVEX_IDS)
@pytest.mark.parametrize("domes", [(0.0, 0.0), (1.2, 1.2), (0.0, 1.5)])
def test_domed_prism_mesh_is_watertight_and_exact(outline: object,
                                                  domes: tuple[float, float]) -> None:
    body = DomedPrism(outline, 0.0, 3.0, *domes)  # type: ignore[arg-type]
    mesh = to_trimesh(build_manifold(body))
    area = outline.area_mm2  # type: ignore[attr-defined]
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(area * (3.0 + 2.0 / 3.0 * sum(domes)), rel=1e-6)
    assert mesh.bounds[1][2] == pytest.approx(3.0 + sum(domes))
    # A dome's section at height u·d above the band is scaled by sqrt(1 − u²).
    if domes[1] > 0.0:
        z = 3.0 + domes[0] + 0.6 * domes[1]
        assert section(body, z).area == pytest.approx(area * (1.0 - 0.36), rel=1e-12)


def test_circle_polygon_is_exact_and_placed() -> None:
    poly = circle_polygon(0.5, (2.0, -1.0))
    assert poly.area == pytest.approx(math.pi * 0.25, rel=1e-12)
    assert poly.centroid.x == pytest.approx(2.0) and poly.centroid.y == pytest.approx(-1.0)
