"""Perimeters and solid rectilinear infill for one layer region (shapely)."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Polygon
from shapely.geometry.base import BaseGeometry

from doseprint.slicer.toolpaths import Road, bead_spacing_mm
from doseprint.tolerances import tol


def _rings(geometry: BaseGeometry) -> list[np.ndarray]:
    """Closed rings (exteriors, then holes) of a polygonal geometry."""
    rings = []
    for poly in getattr(geometry, "geoms", [geometry]):
        if poly.is_empty or not isinstance(poly, Polygon):
            continue
        rings.append(np.asarray(poly.exterior.coords))
        rings.extend(np.asarray(r.coords) for r in poly.interiors)
    return rings


def perimeters(
    region: BaseGeometry, width_mm: float, height_mm: float, count: int
) -> tuple[list[Road], BaseGeometry]:
    """``count`` perimeter loops from the outside in, and the region left for infill.

    The outer loop's centre line lies half a bead inside the region's edge, so the bead's
    outer face is the design's surface; each next loop is one bead spacing further in.
    """
    spacing = bead_spacing_mm(width_mm, height_mm)
    roads: list[Road] = []
    for k in range(count):
        inset = region.buffer(-(width_mm / 2.0 + k * spacing), join_style="mitre")
        if inset.is_empty:
            return roads, inset
        # Drop vertices that bend the road by less than a few microns: far below what a
        # 0.4 mm nozzle can draw, and it halves the G-code of a faceted circle.
        inset = inset.simplify(tol.road_simplify_mm, preserve_topology=True)
        roads.extend(Road("perimeter", ring) for ring in _rings(inset))
    # A bead fills half a spacing either side of its centre line, so the infill's own
    # region starts where the innermost loop's share ends: half a spacing inside it.
    left = region.buffer(-(width_mm / 2.0 + (count - 0.5) * spacing), join_style="mitre")
    return roads, left


def rectilinear(
    region: BaseGeometry, width_mm: float, height_mm: float, angle_deg: float
) -> list[Road]:
    """Solid rectilinear infill: parallel roads one bead spacing apart at ``angle_deg``,
    clipped to ``region`` and ordered as a back-and-forth sweep."""
    if region.is_empty or region.area < tol.area_mm2:
        return []
    spacing = bead_spacing_mm(width_mm, height_mm)
    # Work in a frame rotated so the roads run along x.
    frame = shapely.affinity.rotate(region, -angle_deg, origin=(0.0, 0.0))
    minx, miny, maxx, maxy = frame.bounds
    # Each line fills half a spacing either side, so a region W wide takes round(W / s)
    # lines, centred: the outermost lie about half a spacing inside the edges. (Lines
    # placed on the edges would be near zero length on a curved edge and leave a strip
    # unfilled.)
    n = max(1, round((maxy - miny) / spacing))
    y0 = (miny + maxy) / 2.0 - (n - 1) * spacing / 2.0
    lines = MultiLineString([[(minx - 1.0, y0 + i * spacing), (maxx + 1.0, y0 + i * spacing)]
                             for i in range(n)])
    clipped = frame.intersection(lines)
    segments = [g for g in getattr(clipped, "geoms", [clipped])
                if isinstance(g, LineString) and g.length > tol.merge_mm]
    segments.sort(key=lambda s: (round(s.coords[0][1], 6), s.coords[0][0]))
    roads = []
    for i, seg in enumerate(segments):
        pts = np.asarray(seg.coords)
        if i % 2:
            pts = pts[::-1]
        back = shapely.affinity.rotate(LineString(pts), angle_deg, origin=(0.0, 0.0))
        roads.append(Road("infill", np.asarray(back.coords)))
    return roads
