"""Whole layers: how far printing in layers moves each compartment's volume, and the
aspect that puts a tablet's interfaces on layer boundaries."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from scipy import optimize

from doseprint.errors import InfeasibleDesignError
from doseprint.geometry.build import (
    check_volumes,
    frame_at,
    size_frame,
    solve_width,
    try_size_tablet,
)
from doseprint.geometry.layouts import LAYOUT_KINDS
from doseprint.geometry.sized import TabletGeometry
from doseprint.geometry.solids import section
from doseprint.geometry.spec import SizeLimits, TabletSpec

__all__ = ["SNAP_ASPECT_RANGE", "SNAP_ERROR_SLACK", "layer_error", "snap_to_layers"]

SNAP_ASPECT_RANGE = 1.5
"""``snap_to_layers`` keeps the aspect within this factor of the requested one."""

SNAP_ERROR_SLACK = 1e-3
"""Candidates whose layer error is within this of the best are equal; the one nearest
the requested aspect wins (a tenth of a percent of dose is not worth reshaping for)."""

def layer_error(geometry: TabletGeometry, first_layer_mm: float, layer_mm: float) -> float:
    """Largest relative volume error over the drug-loaded compartments when the tablet is
    printed in whole layers.

    A slicer gives each layer the region it finds at the layer's mid-height, so an
    interface (or the top) that falls inside a layer moves to that layer's boundary, and
    domes become steps. Each compartment's printed volume is taken as
    ``Σ thickness × section area at mid-height`` over the layers from z = 0 whose
    mid-height lies inside the tablet; sections are exact (no meshing).

    Parameters
    ----------
    geometry : TabletGeometry
    first_layer_mm, layer_mm : float, mm
        Layer heights on the build plate and above.

    Returns
    -------
    float
        ``max_i |printed_i / V_i − 1|``.
    """
    bounds = [0.0, first_layer_mm]
    while (bounds[-1] + layer_mm / 2.0) < geometry.height_mm:
        bounds.append(bounds[-1] + layer_mm)
    edges = np.asarray(bounds)
    mids = (edges[:-1] + edges[1:]) / 2.0
    mids[0] = min(mids[0], geometry.height_mm / 2.0)
    thick = np.diff(edges)
    worst = 0.0
    for c in geometry.api_compartments:
        lo, hi = c.z_range_mm
        printed = sum(float(t) * float(section(c.solid, float(z)).area)
                      for z, t in zip(mids, thick, strict=True) if lo <= z < hi)
        worst = max(worst, abs(printed / c.volume_mm3 - 1.0))
    return worst


def _constant(value: float) -> Callable[[float], float]:
    return lambda _: value


def _layer_boundaries(
    first_mm: float, layer_mm: float, min_layers: int, lo_mm: float, hi_mm: float
) -> list[float]:
    """Layer tops (first layer, then whole layers) from ``min_layers`` up, in [lo, hi]."""
    start = max(min_layers, math.ceil((lo_mm - first_mm) / layer_mm) + 1)
    out = []
    m = start
    while (z := first_mm + (m - 1) * layer_mm) <= hi_mm:
        out.append(z)
        m += 1
    return out


def _first_interface_mm(spec: TabletSpec, width_mm: float, volume0_mm3: float) -> float:
    """Height of the first stacked interface at tablet width ``width_mm`` (independent of
    the height, since layer 0 holds the bottom dome and its own band)."""
    body = frame_at(spec, width_mm, 10.0 * width_mm).body
    area = body.outline.area_mm2
    net = area - sum(c.area_mm2 for c in body.channels)
    dome = 2.0 / 3.0 * area * body.dome_bottom_mm - sum(
        c.column_bottom_mm3 for c in body.channels)
    return body.band_z_mm[0] + (volume0_mm3 - dome) / net


def snap_to_layers(
    spec: TabletSpec, volumes_mm3: Sequence[float], limits: SizeLimits | None = None
) -> TabletSpec:
    """The spec with the aspect that best puts the tablet on whole layers.

    Candidates put the top of the tablet, or (stacked layouts) the first interface, on a
    layer boundary, with the aspect within a factor ``SNAP_ASPECT_RANGE`` of the request.
    Of the feasible ones whose :func:`layer_error` is within ``SNAP_ERROR_SLACK`` of the
    smallest, the one nearest the requested aspect wins (possibly the request itself).
    Call :func:`layer_error` on the result for what is left. A spec with a fixed
    dimension has no free aspect and is returned as is.

    Parameters
    ----------
    spec : TabletSpec
    volumes_mm3 : sequence of float, mm³
    limits : SizeLimits, optional

    Returns
    -------
    TabletSpec
    """
    limits = limits or SizeLimits()
    volumes = check_volumes(spec, volumes_mm3)
    if spec.fixed:
        return spec
    first, layer = limits.first_layer_mm, limits.layer_mm
    total = sum(volumes)
    base = size_frame(spec, total)
    # Volume ~ H³ / aspect², so the aspect window maps to heights within the same factor.
    h_lo, h_hi = base.height_mm / SNAP_ASPECT_RANGE, base.height_mm * SNAP_ASPECT_RANGE
    aspects: list[float] = []
    for height in _layer_boundaries(first, layer, limits.min_layers, h_lo, h_hi):
        try:
            width = solve_width(spec, total, _constant(height))
        except InfeasibleDesignError:
            continue
        aspects.append(height / width)
    if LAYOUT_KINDS[spec.layout].stacked and len(volumes) > 1:
        # The snapped width stays near the requested design's (the aspect window is
        # narrow), which keeps the bracket clear of widths where channels fill the section.
        lo, hi = base.width_mm / 2.0, base.width_mm * 2.0
        z_lo, z_hi = (_first_interface_mm(spec, w, volumes[0]) for w in (hi, lo))
        for z in _layer_boundaries(first, layer, limits.min_layers, z_lo, z_hi):
            try:
                width = float(optimize.brentq(
                    lambda w, z=z: _first_interface_mm(spec, w, volumes[0]) - z,
                    lo, hi, xtol=1e-13))
            except ValueError:
                continue
            fixed = (replace(spec, diameter_mm=width) if spec.shape in ("cylinder", "ring")
                     else replace(spec, width_mm=width))
            height = size_frame(fixed, total).height_mm
            aspects.append(height / width)
    scored: list[tuple[float, float, TabletSpec]] = []
    for aspect in [spec.aspect, *aspects]:
        if not spec.aspect / SNAP_ASPECT_RANGE <= aspect <= spec.aspect * SNAP_ASPECT_RANGE:
            continue
        candidate = replace(spec, aspect=aspect)
        geometry = try_size_tablet(candidate, volumes, limits)
        if geometry is None:
            continue
        scored.append((layer_error(geometry, first, layer),
                       abs(math.log(aspect / spec.aspect)), candidate))
    if not scored:
        return spec
    least = min(error for error, _, _ in scored)
    near = [item for item in scored if item[0] <= least + SNAP_ERROR_SLACK]
    return min(near, key=lambda item: (item[1], item[0]))[2]
