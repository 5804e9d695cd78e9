"""Properties of the infill patterns (slicer/fill.py: rectilinear solid and sparse,
concentric, gyroid), of the bead footprints and voids (slicer/toolpaths.py), and of
plan_tablet at a design's infill below 1 (slicer/plan.py): the material fraction, solid
top and bottom layers, and the dose after the flow trim."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

import doseprint.slicer.plan as plan_module
from doseprint.errors import SlicingError
from doseprint.geometry.tablet import Compartment, TabletDesign, build_mesh
from doseprint.library import load_formulations
from doseprint.models.bead import bead_spacing_mm
from doseprint.slicer.fill import (
    concentric,
    gyroid,
    perimeters,
    rectilinear,
)
from doseprint.slicer.plan import SliceSettings, plan_tablet
from doseprint.slicer.toolpaths import CompartmentToolpaths, LayerRoads, Road
from doseprint.tolerances import tol
from doseprint.typed import INFILL_PATTERNS, InfillPattern
from slicer.strategies import (
    BEAD_WIDTH_MM,
    GridDesign,
    annuli,
    convex_polygons,
    discs,
    inscribed_diameter_mm,
    layer_heights_mm,
    regions,
    sparse_cylinder_designs,
)

W = BEAD_WIDTH_MM
PERIMETERS = 2
FORMULATIONS = load_formulations()
RL30 = FORMULATIONS["theophylline-eudragitrl-30"]

patterns = st.sampled_from(INFILL_PATTERNS)
densities = st.floats(0.2, 1.0, exclude_min=True)
heights_z_mm = st.floats(0.0, 12.0)

COVER_MIN = 0.97
"""Share of a thick region that a solid rectilinear or concentric fill covers. Both lay
round(thickness / spacing) beads across, so up to half a spacing of the thickness is
over- or under-filled: s / (2 t) ≤ 3 % for an infill region t ≥ 7.2 mm thick. Hence the
sizes below (the region minus 2 perimeters is ~1.75 mm thinner): worst seen 0.975 on 7 mm
discs, 0.970 on 8 mm rings, 0.996 on 12 mm polygons."""
COVER_DISC_MM = 7.0
COVER_RING_MM = 9.0
COVER_POLYGON_MM = 12.0

OVERLAP_MAX = 0.06
"""Beads of a solid fill overlapping each other, as a share of the region, on the same
thick regions: rectilinear lines never overlap (0 to 1e-6); concentric loops overlap
only where the loops from opposite edges meet in the middle, where the loop count is
rounded to the nearest (up to a quarter spacing each side, so about s / (2 t) on a band t
thick, more where an annulus's hole is small and its loops are short polygons): up to
5.1 % seen on rings, under 1 % on discs and polygons. The flow trim keeps the dose; the
overlap only makes the middle of such a layer denser."""

FRACTION_REL = 0.05
"""Material fraction of a sparse layer vs the density asked, relative, on regions at least
``FRACTION_SPACINGS`` road spacings (``spacing / density``) thick: the fill lays a whole
number of roads (lines, loops, gyroid walls cut at the edge), off by up to about one road
per region. Concentric loops on an annulus are off by up to one loop per side, so rings
are left out for that pattern (the plan's density correction and flow trim absorb it)."""
FRACTION_SPACINGS = 8.0


def layer(region: BaseGeometry, pattern: InfillPattern, height_mm: float, density: float,
          z_mm: float = 1.0, angle_deg: float = 45.0) -> tuple[list[Road], BaseGeometry]:
    """The infill roads of one layer (inside 2 perimeters) and the infill region."""
    _, left = perimeters(region, W, height_mm, PERIMETERS)
    if pattern == "concentric":
        return concentric(left, W, height_mm, density), left
    if pattern == "gyroid":
        return gyroid(left, W, height_mm, z_mm, density, angle_deg), left
    return rectilinear(left, W, height_mm, angle_deg, density), left


def laid_fraction(roads: list[Road], left: BaseGeometry, height_mm: float) -> float:
    """Bead area of the roads over the infill region's area."""
    return sum(r.length_mm for r in roads) * bead_spacing_mm(W, height_mm) / left.area


def footprint(roads: list[Road], left: BaseGeometry, height_mm: float) -> BaseGeometry:
    return LayerRoads(0, height_mm, height_mm, W, tuple(roads), left).footprint()


def travel_mm(roads: list[Road]) -> float:
    return sum(math.dist(a.points_mm[-1], b.points_mm[0]) for a, b in itertools.pairwise(roads))


# Basic ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", INFILL_PATTERNS)
@pytest.mark.parametrize("density", [0.3, 1.0])
def test_basic(pattern: InfillPattern, density: float) -> None:
    roads, left = layer(Point(3.0, -2.0).buffer(6.0, quad_segs=32), pattern, 0.2, density)
    assert roads and left.area > 0
    for r in roads:
        assert r.kind == "infill"
        assert r.points_mm.ndim == 2 and r.points_mm.shape[1] == 2 and len(r.points_mm) >= 2
        assert np.all(np.isfinite(r.points_mm))
    assert layer(Polygon(), pattern, 0.2, density)[0] == []


@pytest.mark.parametrize("density", [0.0, -0.1, 1.01, math.nan])
def test_a_density_outside_0_1_is_refused(density: float) -> None:
    region = Point(0, 0).buffer(5.0)
    for fill in (lambda: rectilinear(region, W, 0.2, 45.0, density),
                 lambda: concentric(region, W, 0.2, density),
                 lambda: gyroid(region, W, 0.2, 1.0, density)):
        with pytest.raises(ValueError, match="density"):
            fill()


def test_gyroid_at_density_1_is_solid_rectilinear() -> None:
    _, left = perimeters(Point(1.0, 2.0).buffer(7.0, quad_segs=32), W, 0.2, PERIMETERS)
    for angle in (45.0, 135.0):
        a, b = gyroid(left, W, 0.2, 3.3, 1.0, angle), rectilinear(left, W, 0.2, angle)
        assert len(a) == len(b)
        for ra, rb in zip(a, b, strict=True):
            np.testing.assert_array_equal(ra.points_mm, rb.points_mm)


def test_concentric_loops_are_closed_and_follow_the_edge() -> None:
    _, left = perimeters(Point(0.0, 0.0).buffer(8.0, quad_segs=32), W, 0.2, PERIMETERS)
    roads = concentric(left, W, 0.2)
    loops = [r.points_mm for r in roads if len(r.points_mm) > 3]
    assert len(loops) >= 10
    spacing = bead_spacing_mm(W, 0.2)
    radii = [float(np.mean(np.linalg.norm(p, axis=1))) for p in loops]
    for p in loops:
        np.testing.assert_allclose(p[0], p[-1])
    # Loops one spacing apart, the first half a spacing inside the infill region.
    edge = math.sqrt(left.area / math.pi)
    assert radii[0] == pytest.approx(edge - spacing / 2.0, abs=0.01)
    np.testing.assert_allclose(-np.diff(radii), spacing, atol=0.01)


# Every road inside its region grown by half a bead ---------------------------------------------


@settings(max_examples=60)
@given(region=regions(), pattern=patterns, height=layer_heights_mm, density=densities,
       z=heights_z_mm)
def test_every_road_lies_within_half_a_bead_of_its_region(
    region: Polygon, pattern: InfillPattern, height: float, density: float, z: float
) -> None:
    roads, left = layer(region, pattern, height, density, z)
    if not roads:
        return
    grown = left.buffer(W / 2.0 + 1e-6)
    lines = [LineString(r.points_mm) for r in roads]
    assert bool(np.all(shapely.covers(grown, lines)))
    # And the whole layer stays within the design's surface grown by half a bead.
    assert bool(np.all(shapely.covers(region.buffer(W / 2.0 + 1e-6), lines)))


# Solid fills: no overlap, full cover -----------------------------------------------------------


thick_regions = st.one_of(discs(COVER_DISC_MM), annuli(min_ring_mm=COVER_RING_MM),
                          convex_polygons(COVER_POLYGON_MM))


@settings(max_examples=40)
@given(region=thick_regions, pattern=st.sampled_from(["rectilinear", "concentric"]),
       height=layer_heights_mm)
def test_solid_fills_cover_the_region_without_overlapping(
    region: Polygon, pattern: InfillPattern, height: float
) -> None:
    polygon = len(region.exterior.coords) <= 13  # not a disc or ring (128-gons)
    if polygon and inscribed_diameter_mm(region) < COVER_POLYGON_MM:
        return  # a polygon drawn on a 12 mm circle can be thinner than 12 mm
    roads, left = layer(region, pattern, height, 1.0)
    union = footprint(roads, left, height)
    beads = sum(r.length_mm for r in roads) * bead_spacing_mm(W, height)
    overlap = (beads - union.area) / left.area
    assert overlap <= OVERLAP_MAX
    assert union.intersection(left).area / left.area >= COVER_MIN


def test_rectilinear_lines_of_a_solid_fill_never_overlap() -> None:
    for d in (5.0, 9.3, 15.5, 21.0):
        roads, left = layer(Point(11.4, 0.02).buffer(d / 2, quad_segs=32), "rectilinear",
                            0.28, 1.0)
        beads = sum(r.length_mm for r in roads) * bead_spacing_mm(W, 0.28)
        assert footprint(roads, left, 0.28).area == pytest.approx(beads, rel=1e-6)


# Material fraction of a sparse layer --------------------------------------------------------------


@settings(max_examples=40)
@given(region=st.one_of(discs(10.0), annuli(min_ring_mm=7.0), convex_polygons(10.0)),
       pattern=patterns, height=layer_heights_mm, share=st.floats(0.0, 1.0), z=heights_z_mm)
def test_a_sparse_layer_carries_the_density_asked(
    region: Polygon, pattern: InfillPattern, height: float, share: float, z: float
) -> None:
    if (pattern == "concentric" and region.interiors) or pattern == "gyroid":
        return  # see FRACTION_REL; the gyroid's layers swing (test below)
    _, left = perimeters(region, W, height, PERIMETERS)
    thickness = inscribed_diameter_mm(left)
    # Densities from 0.2 (or as sparse as keeps the region FRACTION_SPACINGS roads thick)
    # up to 1.
    lowest = max(0.2, FRACTION_SPACINGS * bead_spacing_mm(W, height) / thickness)
    if lowest >= 1.0:
        return
    density = lowest + share * (1.0 - lowest)
    roads, left = layer(region, pattern, height, density, z)
    assert laid_fraction(roads, left, height) == pytest.approx(density, rel=FRACTION_REL)


@pytest.mark.parametrize("density", [0.25, 0.5, 0.8])
def test_sparse_rectilinear_lines_are_spacing_over_density_apart(density: float) -> None:
    roads, _ = layer(Point(-4.0, 7.0).buffer(9.0, quad_segs=32), "rectilinear", 0.2,
                     density, angle_deg=135.0)
    normal = np.array([-math.sin(math.radians(135.0)), math.cos(math.radians(135.0))])
    offsets = np.sort([float(r.points_mm[0] @ normal) for r in roads])
    np.testing.assert_allclose(np.diff(offsets), bead_spacing_mm(W, 0.2) / density,
                               atol=1e-6)


def test_gyroid_walls_move_gradually_from_layer_to_layer() -> None:
    """One continuous surface: half the wall points of a layer lie within 0.2 mm (under
    half a bead) of the walls in the layer below, and the walls do move as z rises."""
    _, left = perimeters(Point(2.0, 1.0).buffer(9.0, quad_segs=32), W, 0.2, PERIMETERS)

    def walls(z: float) -> list[np.ndarray]:
        return [r.points_mm for r in gyroid(left, W, 0.2, z, 0.4)]

    for z in np.arange(0.2, 4.0, 0.4):
        below = shapely.MultiLineString(walls(float(z)))
        near = shapely.points(np.concatenate(walls(float(z) + 0.2)))
        far = shapely.points(np.concatenate(walls(float(z) + 1.0)))
        step = float(np.median(shapely.distance(below, near)))
        assert step <= 0.2
        assert float(np.median(shapely.distance(below, far))) >= 2.0 * step


def test_gyroid_layers_average_the_density_over_a_period() -> None:
    """A section of the gyroid is longer where its walls cross: a layer carries 0.93–1.22 ×
    the density (the walls' length per area swings 0.367–0.481 about 0.392), a period of
    layers the density itself."""
    region = Point(0.0, 0.0).buffer(11.0, quad_segs=32)
    _, left = perimeters(region, W, 0.2, PERIMETERS)
    density = 0.45
    period = 2.0 * math.pi * bead_spacing_mm(W, 0.2) * 0.392 / density
    fractions = [laid_fraction(gyroid(left, W, 0.2, float(z), density), left, 0.2) / density
                 for z in np.linspace(0.0, period, 24, endpoint=False)]
    assert 0.88 <= min(fractions) and max(fractions) <= 1.28
    assert max(fractions) - min(fractions) >= 0.15  # it does swing
    assert float(np.mean(fractions)) == pytest.approx(1.0, rel=0.03)


def _is_nearest_next(roads: list[Road]) -> bool:
    """Each road starts at the nearest place the previous one's end could go next: an end
    of an open road, any vertex of a closed loop."""
    for k in range(len(roads) - 1):
        here = roads[k].points_mm[-1]
        taken = float(np.linalg.norm(roads[k + 1].points_mm[0] - here))
        for r in roads[k + 1:]:
            p = r.points_mm
            closed = len(p) > 3 and np.allclose(p[0], p[-1])
            options = p if closed else p[[0, -1]]
            if float(np.min(np.linalg.norm(options - here, axis=1))) < taken - 1e-9:
                return False
    return True


@pytest.mark.parametrize("pattern", ["concentric", "gyroid"])
@pytest.mark.parametrize("density", [0.3, 0.6, 1.0])
def test_roads_follow_each_other_nearest_first(pattern: InfillPattern, density: float) -> None:
    if pattern == "gyroid" and density == 1.0:
        return  # rectilinear, a back-and-forth sweep (test_fill.py)
    region = Polygon(Point(5.0, 5.0).buffer(10.0, quad_segs=32).exterior,
                     [Point(6.0, 4.0).buffer(3.0, quad_segs=32).exterior.coords])
    roads, _ = layer(region, pattern, 0.2, density, z_mm=2.3)
    assert len(roads) >= 3
    assert _is_nearest_next(roads)
    # Far shorter than travelling between the same roads in a random order.
    rng = np.random.default_rng(7)
    shuffled = [travel_mm([roads[i] for i in rng.permutation(len(roads))])
                for _ in range(20)]
    assert travel_mm(roads) <= float(np.mean(shuffled))


# Footprints and voids ---------------------------------------------------------------------------


def sparse_design(diameter_mm: float, layers: int, infill: float) -> GridDesign:
    height = 0.2 + (layers - 1) * 0.2
    volume = math.pi * (diameter_mm / 2.0) ** 2 * height * infill
    design = TabletDesign.cylinder(0, diameter_mm, height, layers, infill, (
        Compartment(RL30.api, RL30.id, 0, volume * RL30.api_mg_per_mm3, volume),))
    return GridDesign(design, 0.2, 0.2)


def plan(g: GridDesign, **kw: object) -> CompartmentToolpaths:
    s = SliceSettings(g.first_mm, g.layer_mm, W, **kw)
    (paths,) = plan_tablet(build_mesh(g.design), g.design, {RL30.id: RL30}, s)
    return paths


@pytest.mark.parametrize("pattern", INFILL_PATTERNS)
def test_voids_are_the_region_the_beads_leave_empty(pattern: InfillPattern) -> None:
    paths = plan(sparse_design(12.0, 8, 0.6), pattern=pattern, solid_bottom_layers=1,
                 solid_top_layers=1)
    voids = paths.voids()
    assert [v.layer for v in voids] == [lr.layer for lr in paths.layers]
    for v, lr in zip(voids, paths.layers, strict=True):
        assert (v.z0_mm, v.z1_mm) == pytest.approx((lr.z_mm - lr.height_mm, lr.z_mm))
        assert lr.region is not None
        assert lr.region.covers(v.voids.buffer(-1e-6))
        # Voids and beads make up the region; beads carry the layer's volume.
        fp = lr.footprint()
        assert (v.voids.area + fp.intersection(lr.region).area
                == pytest.approx(lr.region.area, rel=1e-6))
        solid_layer = lr.layer in (0, 7)
        assert (lr.density == 1.0) == solid_layer
        share = v.voids.area / lr.region.area
        if solid_layer:
            assert share < 0.03
        else:
            # The layer's own material fraction is the sparse share; the voids the rest.
            laid = lr.volume_mm3 / (lr.region.area * lr.height_mm)
            assert share == pytest.approx(1.0 - laid, abs=0.02)
    # Thin slivers between the idealised beads of a solid layer can be dropped.
    assert paths.voids(min_width_mm=0.1)[0].voids.area <= voids[0].voids.area


def test_voids_need_the_region() -> None:
    lr = LayerRoads(0, 0.2, 0.2, W, (Road("infill", np.array([[0.0, 0.0], [1.0, 0.0]])),))
    with pytest.raises(ValueError, match="region"):
        lr.voids()
    assert lr.footprint().area == pytest.approx(bead_spacing_mm(W, 0.2))


# plan_tablet at infill below 1 --------------------------------------------------------------------


@settings(max_examples=20)
@given(g=sparse_cylinder_designs(RL30), pattern=patterns,
       solid=st.integers(0, 1))
def test_the_dose_is_exact_after_the_trim_at_any_infill(
    g: GridDesign, pattern: InfillPattern, solid: int
) -> None:
    d = g.design
    if solid and d.layers < 6:
        solid = 0  # keep room for sparse layers between the solid ones
    paths = plan(g, pattern=pattern, solid_bottom_layers=solid, solid_top_layers=solid)
    target = d.compartments[0].dose_mg / RL30.api_mg_per_mm3
    assert paths.target_volume_mm3 == pytest.approx(target, rel=1e-12)
    # The planned roads hold the design's infill × envelope within a few %, the trim
    # stays inside its bound and makes them carry exactly the dose.
    assert abs(paths.flow_multiplier - 1.0) <= tol.flow_trim_rel
    assert paths.planned_volume_mm3 * paths.flow_multiplier == pytest.approx(target,
                                                                             rel=1e-12)
    # Solid layers are solid, sparse ones share one material fraction.
    n = len(paths.layers)
    for k, lr in enumerate(paths.layers):
        if d.infill >= 1.0 or k < solid or k >= n - solid:
            assert lr.density == 1.0
        else:
            assert 0.0 < lr.density <= 1.0


@pytest.mark.parametrize("pattern", INFILL_PATTERNS)
def test_the_material_fraction_is_the_design_infill(pattern: InfillPattern) -> None:
    g = sparse_design(14.0, 10, 0.5)
    paths = plan(g, pattern=pattern)
    envelope = sum(lr.region.area * lr.height_mm for lr in paths.layers
                   if lr.region is not None)
    assert paths.planned_volume_mm3 / envelope == pytest.approx(0.5, rel=0.01)
    # Every layer of a straight cylinder is equally porous (the gyroid's sections swing
    # about the mean, see test_gyroid_layers_average_the_density_over_a_period).
    fractions = [lr.volume_mm3 / (lr.region.area * lr.height_mm) for lr in paths.layers
                 if lr.region is not None]
    assert max(fractions) - min(fractions) <= (0.15 if pattern == "gyroid" else 0.05)


def test_solid_layers_raise_the_density_of_the_sparse_ones() -> None:
    g = sparse_design(14.0, 10, 0.6)
    plain = plan(g, pattern="rectilinear")
    capped = plan(g, pattern="rectilinear", solid_bottom_layers=2, solid_top_layers=2)
    assert [lr.density for lr in capped.layers][:2] == [1.0, 1.0]
    assert [lr.density for lr in capped.layers][-2:] == [1.0, 1.0]
    assert capped.layers[5].density < plain.layers[5].density < 1.0
    for p in (plain, capped):
        assert abs(p.flow_multiplier - 1.0) <= 0.01


def test_a_solid_design_is_planned_as_before() -> None:
    """At infill 1 the default settings lay perimeters and solid rectilinear infill at
    45°/135° as they did before sparse infill, and so does the gyroid setting. (Layers of
    the same section are laid once, from the first of them.)"""
    g = sparse_design(10.0, 5, 1.0)
    base = plan(g)
    first: dict[bytes, object] = {}
    for lr in base.layers:
        assert lr.density == 1.0
        angle = 45.0 if lr.layer % 2 == 0 else 135.0
        assert lr.region is not None
        region = first.setdefault(plan_module._shape_key(lr.region), lr.region)
        walls, left = perimeters(region, W, lr.height_mm, 2)
        expected = walls + rectilinear(left, W, lr.height_mm, angle)
        assert len(lr.roads) == len(expected)
        for a, b in zip(lr.roads, expected, strict=True):
            np.testing.assert_array_equal(a.points_mm, b.points_mm)
    gyr = plan(g, pattern="gyroid")
    for a, b in zip(gyr.layers, base.layers, strict=True):
        assert [r.points_mm.tolist() for r in a.roads] == [r.points_mm.tolist()
                                                           for r in b.roads]


def test_perimeters_beyond_the_infill_are_refused_with_the_numbers() -> None:
    g = sparse_design(6.0, 6, 0.4)
    with pytest.raises(SlicingError, match=r"2 perimeters fill \d+% of the [\d.]+ mm2 "
                                           r"cross-section.*infill 0\.4"):
        plan(g)
    # One perimeter leaves room for the infill.
    assert abs(plan(g, perimeters=1).flow_multiplier - 1.0) <= tol.flow_trim_rel


def test_solid_layers_beyond_the_infill_are_refused() -> None:
    g = sparse_design(12.0, 6, 0.5)
    with pytest.raises(SlicingError, match="solid bottom"):
        plan(g, solid_bottom_layers=2, solid_top_layers=2)


@pytest.mark.parametrize(("key", "value"), [("pattern", "honeycomb"), ("perimeters", -1),
                                            ("solid_top_layers", -2)])
def test_settings_refuse_unknown_patterns_and_negative_counts(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key if key != "pattern" else "rectilinear"):
        SliceSettings(0.2, 0.2, W, **{key: value})
