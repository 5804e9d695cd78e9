"""Properties of a whole tablet's plan (slicer/layers.py, slicer/plan.py) and of the plate
(slicer/plate.py): the prism round trip, the infill angles per layer, the flow trim, and
where tablets and the purge line go on the bed."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Point, Polygon

from doseprint.design.cylinder import LayerGrid, design_tablets
from doseprint.errors import InputError, SlicingError
from doseprint.geometry.tablet import Compartment, TabletDesign, build_mesh
from doseprint.library import load_formulations, shipped_dir
from doseprint.models.bead import bead_spacing_mm
from doseprint.models.formulation import Formulation
from doseprint.models.load import load_prescription, load_printer
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.layers import layer_tops_mm, slice_mesh
from doseprint.slicer.plan import SliceSettings, plan_tablet
from doseprint.slicer.plate import EDGE_MARGIN_MM, GAP_MM, PURGE_BAND_MM, place_tablets
from doseprint.slicer.toolpaths import CompartmentToolpaths
from doseprint.tolerances import tol
from doseprint.typed import ORIGINS, Origin
from helpers.rx import write_rx
from slicer.strategies import BEAD_WIDTH_MM, GridDesign, cylinder_designs

FORMULATIONS = load_formulations()
RL30 = FORMULATIONS["theophylline-eudragitrl-30"]
PRINTER = load_printer(shipped_dir("printer_profiles") / "generic-marlin-1x175.toml")

FLOW_MIN_DIAMETER_MM = 5.0
"""Smallest diameter of the flow-trim property. Dense scans of single layers (0.1–0.3 mm)
put the worst under-fill from 5 mm at −4.3 % (5.09 mm, 0.295 mm layers: trim +4.5 %); below
it the fill bug in test_fill.py takes the trim past ±5 % (see the xfail below)."""


def settings_for(g: GridDesign) -> SliceSettings:
    return SliceSettings(g.first_mm, g.layer_mm, BEAD_WIDTH_MM)


def plan(g: GridDesign, formulation: Formulation = RL30) -> CompartmentToolpaths:
    (paths,) = plan_tablet(build_mesh(g.design), g.design, {formulation.id: formulation},
                           settings_for(g))
    return paths


def solid_design(diameter_mm: float, layers: int, first_mm: float = 0.2,
                 layer_mm: float = 0.2) -> GridDesign:
    height = first_mm + (layers - 1) * layer_mm
    volume = math.pi * (diameter_mm / 2.0) ** 2 * height
    design = TabletDesign.cylinder(0, diameter_mm, height, layers, 1.0, (
        Compartment("theophylline", RL30.id, 0, volume * RL30.api_mg_per_mm3, volume),))
    return GridDesign(design, first_mm, layer_mm)


# Basic ------------------------------------------------------------------------------------


def test_basic() -> None:
    g = solid_design(10.0, 5)
    paths = plan(g)
    assert isinstance(paths, CompartmentToolpaths)
    assert (paths.tablet, paths.api, paths.tool) == (0, "theophylline", 0)
    assert [layer.layer for layer in paths.layers] == list(range(5))
    assert [layer.z_mm for layer in paths.layers] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    for layer in paths.layers:
        kinds = [r.kind for r in layer.roads]
        assert kinds[:2] == ["perimeter", "perimeter"] and set(kinds[2:]) == {"infill"}
        assert layer.width_mm == BEAD_WIDTH_MM and layer.height_mm == pytest.approx(0.2)


def test_layer_tops_are_the_first_layer_then_whole_layers() -> None:
    tops = layer_tops_mm(4, 0.3, 0.2)
    assert [z for z, _ in tops] == pytest.approx([0.3, 0.5, 0.7, 0.9])
    assert [h for _, h in tops] == pytest.approx([0.3, 0.2, 0.2, 0.2])


# (e) The prism round trip -------------------------------------------------------------------


@settings(max_examples=25)
@given(g=cylinder_designs(RL30))
def test_every_layer_of_a_cylinder_has_the_same_disc(g: GridDesign) -> None:
    d = g.design
    mesh = build_mesh(d)
    tops = layer_tops_mm(d.layers, g.first_mm, g.layer_mm)
    regions = slice_mesh(mesh.meshes[0], tops)
    assert [r.layer for r in regions] == list(range(d.layers))
    circle = math.pi * d.radius_mm**2
    first = regions[0].region
    for r, (z, h) in zip(regions, tops, strict=True):
        assert isinstance(r.region, Polygon) and not r.region.interiors
        assert r.region.area == pytest.approx(circle, rel=1e-3)
        assert (r.z_mm, r.height_mm) == (z, h)
        # The same region, not just the same area: centred on the axis and congruent.
        assert r.region.centroid.distance(Point(0.0, 0.0)) <= 1e-9
        assert r.region.symmetric_difference(first).area <= 1e-9 * circle


# (c) Infill angles alternate layer by layer ---------------------------------------------------


@settings(max_examples=10)
@given(g=cylinder_designs(RL30, max_diameter_mm=12.0, max_layers=8))
def test_infill_alternates_45_and_135_degrees(g: GridDesign) -> None:
    for layer in plan(g).layers:
        angle = math.radians(45.0 if layer.layer % 2 == 0 else 135.0)
        u = np.array([math.cos(angle), math.sin(angle)])
        normal = np.array([-u[1], u[0]])
        infill = [r.points_mm for r in layer.roads if r.kind == "infill"]
        assert infill
        for p in infill:
            d = p[-1] - p[0]
            assert abs(float(d @ normal)) <= 1e-9 * float(np.linalg.norm(d))
        offsets = np.sort([float(p[0] @ normal) for p in infill])
        np.testing.assert_allclose(np.diff(offsets), bead_spacing_mm(layer.width_mm,
                                                                     layer.height_mm), atol=2e-6)


# (f) The flow trim ------------------------------------------------------------------------------


@settings(max_examples=20)
@given(g=cylinder_designs(RL30, min_diameter_mm=FLOW_MIN_DIAMETER_MM))
def test_flow_trim_of_a_whole_layer_design_stays_within_bound(g: GridDesign) -> None:
    paths = plan(g)
    assert abs(paths.flow_multiplier - 1.0) <= tol.flow_trim_rel
    # The trim makes the planned roads carry exactly the dose.
    assert paths.target_volume_mm3 == pytest.approx(
        g.design.compartments[0].dose_mg / RL30.api_mg_per_mm3, rel=1e-12)
    assert paths.planned_volume_mm3 * paths.flow_multiplier == pytest.approx(
        paths.target_volume_mm3, rel=1e-12)


@settings(max_examples=10)
@given(g=cylinder_designs(RL30, min_diameter_mm=15.0, max_layers=10))
def test_large_tablets_need_under_2_percent_trim(g: GridDesign) -> None:
    """The edge effects of test_fill.py fall like 1/diameter; the trim follows."""
    assert abs(plan(g).flow_multiplier - 1.0) <= 0.02


def test_a_height_far_from_whole_layers_is_refused() -> None:
    g = solid_design(10.0, 5)
    d = g.design
    # Six tenths of a layer more than the five the slicer lays: the roads lack 12 %.
    tall = TabletDesign.cylinder(d.index, d.diameter_mm, d.height_mm + 0.12, d.layers, 1.0, (
        replace(d.compartments[0], dose_mg=d.compartments[0].dose_mg * 1.12),))
    with pytest.raises(SlicingError, match="flow"):
        plan_tablet(build_mesh(tall), tall, FORMULATIONS, settings_for(g))


@pytest.mark.parametrize("diameter", [3.2998, 3.30, 3.301])
def test_flow_trim_stays_within_bound_for_the_smallest_tablets(diameter: float) -> None:
    paths = plan(solid_design(diameter, 4))
    assert abs(paths.flow_multiplier - 1.0) <= tol.flow_trim_rel


# (g) The plate ------------------------------------------------------------------------------------


def bed_profile(bed: tuple[float, float], origin: Origin) -> PrinterProfile:
    return replace(PRINTER, bed_mm=bed, origin=origin)


def to_bed(profile: PrinterProfile, xy: tuple[float, float]) -> tuple[float, float]:
    """Machine coordinates back to bed coordinates (front-left corner at 0, 0)."""
    if profile.origin == "center":
        return (xy[0] + profile.bed_mm[0] / 2.0, xy[1] + profile.bed_mm[1] / 2.0)
    return xy


beds = st.tuples(st.floats(120.0, 400.0), st.floats(120.0, 400.0))
plate_diameters = st.lists(st.floats(3.0, 22.0), min_size=1, max_size=60)


@settings(max_examples=40)
@given(bed=beds, diameters=plate_diameters, origin=st.sampled_from(ORIGINS))
def test_tablets_and_purge_line_share_the_bed_without_touching(
    bed: tuple[float, float], diameters: list[float], origin: Origin
) -> None:
    profile = bed_profile(bed, origin)
    try:
        plate = place_tablets(profile, diameters, "rx.toml")
    except InputError as exc:
        (problem,) = exc.problems
        assert (problem.file, problem.key) == ("rx.toml", "dispense.units")
        assert f"is {len(diameters)};" in problem.message
        return
    assert len(plate.centers_mm) == len(diameters)
    centres = np.array([to_bed(profile, c) for c in plate.centers_mm])
    radii = np.array(diameters) / 2.0
    # On the bed, with at least half a gap of the edge margin clear (the whole margin is
    # the xfail test below), and behind the purge band.
    inset = EDGE_MARGIN_MM - GAP_MM / 2.0
    assert np.all(centres - radii[:, None] >= inset - 1e-9)
    assert np.all(centres + radii[:, None] <= np.array(bed) - inset + 1e-9)
    assert np.all(centres[:, 1] - radii >= EDGE_MARGIN_MM + PURGE_BAND_MM - 1e-9)
    # No two tablets closer than the gap (edge to edge).
    between = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=2)
    clear = between - radii[:, None] - radii[None, :]
    np.fill_diagonal(clear, np.inf)
    assert float(clear.min(initial=np.inf)) >= GAP_MM - 1e-9
    bed_area = shapely.box(0.0, 0.0, *bed)
    purge = LineString([to_bed(profile, plate.purge_start_mm),
                        to_bed(profile, plate.purge_end_mm)])
    assert purge.length > 0
    assert bed_area.buffer(-EDGE_MARGIN_MM + 1e-9, join_style="mitre").covers(purge)
    clearance = shapely.distance(purge, shapely.points(centres)) - radii
    assert float(clearance.min()) >= PURGE_BAND_MM / 2.0 - 1e-9
    assert bed_area.covers(Point(to_bed(profile, plate.park_mm)))


@settings(max_examples=20)
@given(bed=beds, diameters=plate_diameters)
def test_a_centre_origin_shifts_everything_by_half_the_bed(
    bed: tuple[float, float], diameters: list[float]
) -> None:
    try:
        corner = place_tablets(bed_profile(bed, "corner"), diameters)
    except InputError:
        return
    centre = place_tablets(bed_profile(bed, "center"), diameters)
    half = np.array(bed) / 2.0
    np.testing.assert_allclose(np.array(centre.centers_mm) + half, corner.centers_mm,
                               atol=1e-9)
    for a, b in ((centre.purge_start_mm, corner.purge_start_mm),
                 (centre.purge_end_mm, corner.purge_end_mm),
                 (centre.park_mm, corner.park_mm)):
        np.testing.assert_allclose(np.array(a) + half, b, atol=1e-9)


@pytest.mark.parametrize("diameter", [5.0, 10.0, 14.5, 22.0])
def test_too_many_tablets_name_dispense_units_and_the_capacity(diameter: float) -> None:
    with pytest.raises(InputError) as caught:
        place_tablets(PRINTER, [diameter] * 1000, "rx.toml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.key) == ("rx.toml", "dispense.units")
    assert "is 1000;" in problem.message and "generic-marlin-1x175" in problem.message
    found = re.search(r"holds (\d+) tablets", problem.message)
    assert found is not None
    capacity = int(found.group(1))
    # The capacity it states is the true one: that many fit, one more does not.
    assert len(place_tablets(PRINTER, [diameter] * capacity).centers_mm) == capacity
    with pytest.raises(InputError):
        place_tablets(PRINTER, [diameter] * (capacity + 1))


def test_a_tablet_wider_than_the_bed_is_refused() -> None:
    with pytest.raises(InputError, match=r"dispense\.units"):
        place_tablets(bed_profile((30.0, 30.0), "corner"), [15.0])


@example(bed=(220.0, 220.0), diameters=[14.5] * 10)
@settings(max_examples=20)
@given(bed=beds, diameters=plate_diameters)
def test_tablets_keep_out_of_the_edge_margin(
    bed: tuple[float, float], diameters: list[float]
) -> None:
    try:
        plate = place_tablets(bed_profile(bed, "corner"), diameters)
    except InputError:
        return
    keep = shapely.box(EDGE_MARGIN_MM, EDGE_MARGIN_MM, bed[0] - EDGE_MARGIN_MM,
                       bed[1] - EDGE_MARGIN_MM)
    for c, d in zip(plate.centers_mm, diameters, strict=True):
        assert keep.buffer(1e-9).covers(Point(c).buffer(d / 2.0, quad_segs=32))


def test_every_design_the_designer_makes_can_be_planned(tmp_path: Path) -> None:
    rx = load_prescription(write_rx(tmp_path, dose_mg=1.76, release="immediate",
                                    extra_active="", units=1))
    (t,) = design_tablets(rx, FORMULATIONS, LayerGrid(0.2, 0.2))
    assert t.design.height_mm == pytest.approx(1.4) and t.design.layers == 7
    settings_ = SliceSettings.for_nozzle(0.4, 0.2, 0.2)
    (paths,) = plan_tablet(build_mesh(t.design), t.design, FORMULATIONS, settings_)
    assert abs(paths.flow_multiplier - 1.0) <= tol.flow_trim_rel
