"""Hypothesis strategies for the slicer tests: layer regions (discs, annuli, convex
polygons), layer heights and tablet designs.

Sizes follow the tablets doseprint designs: 3 mm (a paediatric mini-tablet, the designer's
smallest diameter) to 22 mm (FDA size guidance, the default ``max_length_mm``). Regions are
placed off the origin on purpose: the infill is rotated about the origin, and a region
centred there would hide mistakes in the rotation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import shapely
from hypothesis import strategies as st
from shapely.geometry import MultiPoint, Point, Polygon

from doseprint.geometry.tablet import Compartment, TabletDesign
from doseprint.models.formulation import Formulation

BEAD_WIDTH_MM = 0.45
"""The bead of a 0.4 mm nozzle: ``SliceSettings.for_nozzle(0.4, …).width_mm``."""

MIN_SIZE_MM = 3.0
MAX_SIZE_MM = 22.0

QUAD_SEGS = 32
"""Segments per quarter circle of a shapely disc (128 around, as the tablet meshes)."""

layer_heights_mm = st.floats(0.1, 0.3)
sizes_mm = st.floats(MIN_SIZE_MM, MAX_SIZE_MM)
centres_mm = st.tuples(st.floats(-30.0, 30.0), st.floats(-30.0, 30.0))
infill_angles_deg = st.sampled_from([45.0, 135.0])


@st.composite
def discs(
    draw: st.DrawFn, min_mm: float = MIN_SIZE_MM, max_mm: float = MAX_SIZE_MM
) -> Polygon:
    """A disc of diameter ``min_mm``..``max_mm`` somewhere near the origin."""
    diameter = draw(st.floats(min_mm, max_mm))
    x, y = draw(centres_mm)
    disc: Polygon = Point(x, y).buffer(diameter / 2.0, quad_segs=QUAD_SEGS)
    return disc


@st.composite
def annuli(
    draw: st.DrawFn, min_ring_mm: float = 0.0, max_mm: float = MAX_SIZE_MM
) -> Polygon:
    """A ring: outer diameter up to ``max_mm``, a concentric hole of 10–70 % of it, and a
    ring width (outer minus inner radius) of at least ``min_ring_mm``."""
    lowest = max(MIN_SIZE_MM, 2.0 * min_ring_mm / 0.9)
    outer = draw(st.floats(lowest, max(lowest, max_mm)))
    most = min(0.7, 1.0 - 2.0 * min_ring_mm / outer)
    ratio = draw(st.floats(0.1, max(0.1, most)))
    x, y = draw(centres_mm)
    shell = Point(x, y).buffer(outer / 2.0, quad_segs=QUAD_SEGS)
    hole = Point(x, y).buffer(ratio * outer / 2.0, quad_segs=QUAD_SEGS)
    return Polygon(shell.exterior.coords, [hole.exterior.coords])


@st.composite
def convex_polygons(
    draw: st.DrawFn, min_mm: float = MIN_SIZE_MM, max_mm: float = MAX_SIZE_MM
) -> Polygon:
    """A "fat" convex polygon of 3–12 vertices on a circle of diameter ``min_mm``..``max_mm``.

    Vertices sit at 80–100 % of the radius with angular gaps that differ by at most a
    factor of two, so no gap exceeds 180° and no polygon is a sliver: a triangle's angles
    are at least 36°.
    """
    n = draw(st.integers(3, 12))
    diameter = draw(st.floats(min_mm, max_mm))
    weights = draw(st.lists(st.floats(1.0, 2.0), min_size=n, max_size=n))
    radii = draw(st.lists(st.floats(0.8, 1.0), min_size=n, max_size=n))
    turn = draw(st.floats(0.0, 2.0 * math.pi))
    x, y = draw(centres_mm)
    total = sum(weights)
    points, angle = [], turn
    for w, r in zip(weights, radii, strict=True):
        angle += 2.0 * math.pi * w / total
        points.append((x + r * diameter / 2.0 * math.cos(angle),
                       y + r * diameter / 2.0 * math.sin(angle)))
    hull = MultiPoint(points).convex_hull
    assert isinstance(hull, Polygon)
    return hull


def regions(min_mm: float | None = None) -> st.SearchStrategy[Polygon]:
    """Any of the three region families. With ``min_mm``, discs and polygons are drawn at
    least that large and annuli with a ring at least that wide, so every region is about
    ``min_mm`` thick or more (check with :func:`inscribed_diameter_mm`); without it,
    anything from 3 mm and rings of any width."""
    if min_mm is None:
        return st.one_of(discs(), annuli(), convex_polygons())
    return st.one_of(discs(min_mm), annuli(min_ring_mm=min_mm), convex_polygons(min_mm))


def inscribed_diameter_mm(region: Polygon) -> float:
    """Diameter of the largest circle inside ``region``: the region's "thickness"
    (a disc's diameter, an annulus's ring width, a polygon's fattest spot)."""
    return 2.0 * float(shapely.maximum_inscribed_circle(region, 1e-3).length)


class GridDesign(NamedTuple):
    """A cylinder design and the layer grid it was made for."""

    design: TabletDesign
    first_mm: float
    layer_mm: float


@st.composite
def cylinder_designs(
    draw: st.DrawFn,
    formulation: Formulation,
    min_diameter_mm: float = MIN_SIZE_MM,
    max_diameter_mm: float = MAX_SIZE_MM,
    first_mm: float = 0.2,
    max_layers: int = 30,
) -> GridDesign:
    """A solid single-compartment cylinder of ``formulation``, ``min_diameter_mm`` to
    ``max_diameter_mm`` across, on a layer grid of a 0.2 mm first layer and 0.1–0.3 mm
    layers: whole layers (``first + (n − 1) × layer``), at least 3, at most
    ``max_layers`` and no taller than the diameter (the designer's rules). It carries the
    dose of its volume, ``volume × density × drug_loading``.
    """
    diameter = draw(st.floats(min_diameter_mm, max_diameter_mm))
    layer = draw(layer_heights_mm)
    most = max(3, min(max_layers, math.floor((diameter - first_mm) / layer) + 1))
    layers = draw(st.integers(3, most))
    height = first_mm + (layers - 1) * layer
    volume = math.pi * (diameter / 2.0) ** 2 * height
    dose = volume * formulation.api_mg_per_mm3
    design = TabletDesign.cylinder(
        0, diameter, height, layers, 1.0,
        (Compartment(formulation.api, formulation.id, 0, dose, volume),),
    )
    return GridDesign(design, first_mm, layer)


@st.composite
def sparse_cylinder_designs(
    draw: st.DrawFn,
    formulation: Formulation,
    min_diameter_mm: float = 9.0,
    max_diameter_mm: float = MAX_SIZE_MM,
    min_infill: float = 0.6,
    max_layers: int = 12,
) -> GridDesign:
    """A single-compartment cylinder like :func:`cylinder_designs` but at an infill of
    ``min_infill``..1: its envelope is the cylinder and it carries the dose of
    ``envelope × infill`` of material, as the designer sizes it."""
    g = draw(cylinder_designs(formulation, min_diameter_mm, max_diameter_mm,
                              max_layers=max_layers))
    infill = draw(st.floats(min_infill, 1.0))
    d = g.design
    volume = d.volume_mm3 * infill
    design = TabletDesign.cylinder(
        0, d.diameter_mm, d.height_mm, d.layers, infill,
        (Compartment(formulation.api, formulation.id, 0,
                     volume * formulation.api_mg_per_mm3, volume),),
    )
    return GridDesign(design, g.first_mm, g.layer_mm)
