"""Properties over random designs: every design either meets every invariant or is
refused with InfeasibleDesignError.

Invariants: each drug-loaded compartment carries its volume, analytic and meshed; meshes
are watertight, pairwise disjoint and together the tablet; every limit holds.
"""

from __future__ import annotations

import math
from itertools import combinations

import manifold3d
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from shapely.geometry import Point
from shapely.ops import unary_union

from doseprint.errors import InfeasibleDesignError
from doseprint.geometry.build import size_tablet
from doseprint.geometry.sized import TabletGeometry
from doseprint.geometry.solids import section
from doseprint.geometry.spec import SizeLimits, TabletSpec

from .strategies import designs

LIMITS = SizeLimits()


def _sized(spec: TabletSpec, volumes: list[float]) -> TabletGeometry | None:
    try:
        g = size_tablet(spec, volumes, LIMITS)
    except InfeasibleDesignError as exc:
        assert str(exc).startswith("tablet")  # a message, with the numbers, not a crash
        event("refused")
        return None
    event(f"sized: {spec.layout}")
    return g


def _check_limits(g: TabletGeometry) -> None:
    """The limits, read back from the result rather than from the checks that made it."""
    dims = g.dimensions_mm
    assert g.longest_mm <= LIMITS.max_length_mm * (1 + 1e-12)
    low = LIMITS.min_z_mm(False)
    for h in dims.get("layer_heights", []):  # type: ignore[union-attr]
        assert h >= low * (1 - 1e-12) or (h >= LIMITS.min_z_mm(True) * (1 - 1e-12))
    if "core_wall_xy" in dims:
        assert dims["core_wall_xy"] >= LIMITS.min_wall_mm * (1 - 1e-12)
        assert dims["core_wall_z"] >= LIMITS.min_z_mm(True) * (1 - 1e-12)
    if g.spec.shell_mm:
        assert g.spec.shell_mm >= LIMITS.min_wall_mm
    floor = min(LIMITS.min_wall_mm, LIMITS.min_z_mm(True))
    assert all(c.min_thickness_mm >= floor * (1 - 1e-12) for c in g.compartments)
    # Channels: a wall of at least min_wall to the outside and to each other.
    if g.channel_xy_mm:
        mid = g.height_mm / 2.0
        outline = unary_union([section(c.solid, mid) for c in g.compartments]).envelope
        r = g.spec.channel_mm / 2.0
        outside = unary_union([section(c.solid, mid) for c in g.compartments])
        rim = outside.buffer(0).exterior if outside.geom_type == "Polygon" else outline.exterior
        for (x, y) in g.channel_xy_mm:
            assert rim.distance(Point(x, y)) - r >= LIMITS.min_wall_mm * (1 - 1e-3)
        for (x0, y0), (x1, y1) in combinations(g.channel_xy_mm, 2):
            assert math.hypot(x1 - x0, y1 - y0) - 2 * r >= LIMITS.min_wall_mm * (1 - 1e-9)


@given(design=designs())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_sizing_carries_every_volume_or_refuses(design: tuple[TabletSpec, list[float]]) -> None:
    spec, volumes = design
    g = _sized(spec, volumes)
    if g is None:
        return
    api = g.api_compartments
    assert [c.index for c in api] == list(range(len(volumes)))
    for c, v in zip(api, volumes, strict=True):
        assert c.volume_mm3 == pytest.approx(v, rel=1e-9)
    assert sum(c.volume_mm3 for c in g.compartments) == pytest.approx(
        g.envelope_volume_mm3, rel=1e-9)
    for key, value in spec.fixed.items():
        name = key[:-3]
        assert g.dimensions_mm[name] == pytest.approx(value, rel=1e-12)
    for c in g.compartments:
        assert 0.0 <= c.z_range_mm[0] < c.z_range_mm[1] <= g.height_mm * (1 + 1e-12)
    _check_limits(g)


@given(design=designs())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_meshes_are_watertight_disjoint_and_the_tablet(
    design: tuple[TabletSpec, list[float]],
) -> None:
    spec, volumes = design
    g = _sized(spec, volumes)
    if g is None:
        return
    for c in g.compartments:
        mesh = c.mesh
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume == pytest.approx(c.volume_mm3, rel=1e-3)
        lo, hi = mesh.bounds
        assert lo[2] >= c.z_range_mm[0] - 1e-6 and hi[2] <= c.z_range_mm[1] + 1e-6
        assert -1e-6 <= c.exposed_area_mm2 <= mesh.area * (1 + 1e-6)
    ms = g.manifolds
    smallest = min(m.volume() for m in ms)
    for a, b in combinations(ms, 2):
        assert (a ^ b).volume() <= 1e-6 * smallest
    union = manifold3d.Manifold.batch_boolean(list(ms), manifold3d.OpType.Add)
    assert union.volume() == pytest.approx(g.envelope_volume_mm3, rel=1e-3)
    # The exposed areas add up to the surface of the envelope, meshed on its own.
    assert sum(c.exposed_area_mm2 for c in g.compartments) == pytest.approx(
        g.outside_area_mm2, rel=1e-3)
    # Extents: the mesh fills the analytic box.
    lo = np.min([m.bounds[0] for m in g.meshes], axis=0)
    hi = np.max([m.bounds[1] for m in g.meshes], axis=0)
    apex_drilled = g.spec.dome_mm > 0 and (0.0, 0.0) in g.channel_xy_mm
    assert hi[2] - lo[2] <= g.height_mm * (1 + 1e-6)
    if not apex_drilled:
        assert hi[2] - lo[2] == pytest.approx(g.height_mm, rel=1e-6)
    assert max(hi[0] - lo[0], hi[1] - lo[1]) / 2.0 == pytest.approx(
        g.footprint_radius_mm, rel=2e-3)
    if g.spec.shell_mm:
        assert all(c.exposed_area_mm2 < 1e-6 for c in g.api_compartments
                   if not g.channel_xy_mm)
