"""Perimeters and infill for one layer region (shapely): rectilinear (solid or sparse),
concentric and gyroid, each as bead centre lines (roads) in a short-travel order."""

from __future__ import annotations

import functools
import math

import contourpy
import numpy as np
import shapely
from shapely.geometry import LineString, MultiLineString, Polygon
from shapely.geometry.base import BaseGeometry

from doseprint.models.bead import bead_spacing_mm
from doseprint.slicer.toolpaths import Road
from doseprint.tolerances import tol
from doseprint.typed import FloatArray

GYROID_SAMPLES_PER_PERIOD = 32
"""Grid points per gyroid period when its zero set is traced: the traced polyline's chords
fall short of the curve's length by well under 0.5 % at this density."""


def _rings(geometry: BaseGeometry) -> list[np.ndarray]:
    """Closed rings (exteriors, then holes) of a polygonal geometry."""
    rings = []
    for poly in getattr(geometry, "geoms", [geometry]):
        if poly.is_empty or not isinstance(poly, Polygon):
            continue
        rings.append(np.asarray(poly.exterior.coords))
        rings.extend(np.asarray(r.coords) for r in poly.interiors)
    return rings


def _check_density(density: float) -> None:
    if not 0.0 < density <= 1.0:
        raise ValueError(f"infill density must be in (0, 1], got {density!r}")


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
    region: BaseGeometry, width_mm: float, height_mm: float, angle_deg: float,
    density: float = 1.0,
) -> list[Road]:
    """Rectilinear infill: parallel roads at ``angle_deg``, clipped to ``region`` and
    ordered as a back-and-forth sweep.

    Parameters
    ----------
    region : shapely geometry
        The infill region (the ``left`` region of :func:`perimeters`).
    width_mm, height_mm : float
        The bead.
    angle_deg : float
        Direction of the roads; plan_tablet alternates 45° and 135° layer by layer.
    density : float, 0 < density ≤ 1
        Material fraction of the region. At 1 the roads are one bead spacing apart and
        fill the region solid; below, they are ``spacing / density`` apart, so each road
        carries a strip ``spacing / density`` wide of which it fills ``density``.

    Returns
    -------
    list of Road
        ``"infill"`` roads of two points each.
    """
    _check_density(density)
    if region.is_empty or region.area < tol.area_mm2:
        return []
    spacing = bead_spacing_mm(width_mm, height_mm) / density
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


def concentric(
    region: BaseGeometry, width_mm: float, height_mm: float, density: float = 1.0
) -> list[Road]:
    """Concentric infill: loops that follow the region's edges inwards.

    Loop ``k``'s centre line lies ``(k + ½) × step`` inside the region's edge, with
    ``step = spacing / density``, so each loop owns a band one step wide. At density 1
    the loops tile the region solid; what is left in the middle once no loop fits (a
    sliver narrower than one bead) is filled with rectilinear roads along its long side.
    Each loop starts at the vertex nearest the end of the one before.

    Parameters
    ----------
    region : shapely geometry
        The infill region (the ``left`` region of :func:`perimeters`).
    width_mm, height_mm : float
        The bead.
    density : float, 0 < density ≤ 1
        Material fraction of the region.

    Returns
    -------
    list of Road
        ``"infill"`` roads: closed loops, then any centre fill.
    """
    _check_density(density)
    if region.is_empty or region.area < tol.area_mm2:
        return []
    spacing = bead_spacing_mm(width_mm, height_mm)
    step = spacing / density
    # GEOS offsets a many-sided polygon slowly when the offset nearly closes it up: offset
    # a copy without the vertices that bend it by microns, and only as far as it reaches.
    base = region.simplify(tol.road_simplify_mm, preserve_topology=True)
    reach = float(shapely.maximum_inscribed_circle(base, tol.road_simplify_mm).length)
    # A solid fill lays round(thickness / spacing) roads across the region: a loop on each
    # side while its whole band fits short of the middle (give or take a quarter spacing),
    # then one road along the middle if what is left is at least half a spacing thick.
    # A sparse fill lays loops as long as they fit.
    last = reach + step / 4.0 if density >= 1.0 else reach + step / 2.0
    loops: list[np.ndarray] = []
    k = 0
    while (k + 1) * step <= last:
        inset = base.buffer(-(k + 0.5) * step, join_style="mitre")
        if inset.is_empty or inset.area < tol.area_mm2 * 1e-3:
            break
        inset = inset.simplify(tol.road_simplify_mm, preserve_topology=True)
        loops.extend(r for r in _rings(inset) if LineString(r).length > tol.merge_mm)
        k += 1
    paths = loops
    if density >= 1.0 and k * step < reach:
        # The loops own the bands out to k steps in; what is left in the middle is less
        # than a spacing thick.
        paths += _middle(base.buffer(-k * step, join_style="mitre"), width_mm, height_mm)
    return [Road("infill", p) for p in _order(paths, closed=False)]


def _middle(rest: BaseGeometry, width_mm: float, height_mm: float) -> list[np.ndarray]:
    """Roads for what concentric loops leave in the middle: parts thinner than one bead.

    A part under half a spacing thick is left empty (one bead would overfill it more than
    leaving it underfills it). A ring-shaped part (the middle of an annulus) gets one loop
    along its middle; any other part one rectilinear road or a few along its long side.
    """
    spacing = bead_spacing_mm(width_mm, height_mm)
    paths: list[np.ndarray] = []
    for part in getattr(rest, "geoms", [rest]):
        if not isinstance(part, Polygon) or part.area < tol.area_mm2:
            continue
        half = float(shapely.maximum_inscribed_circle(part, tol.road_simplify_mm).length)
        if 2.0 * half < spacing / 2.0:
            continue
        if part.interiors:
            # Just short of the middle, the offset of a ring is a hairline ring: its outer
            # edge is the ring's middle line.
            spine = part.buffer(-0.95 * half, join_style="mitre")
            for piece in getattr(spine, "geoms", [spine]):
                if isinstance(piece, Polygon) and piece.interiors:
                    paths.append(np.asarray(piece.exterior.coords))
                elif isinstance(piece, Polygon) and not piece.is_empty:
                    own = piece.buffer(0.95 * half, join_style="mitre").intersection(part)
                    paths += [r.points_mm for r in rectilinear(
                        own, width_mm, height_mm, _long_side_deg(own))]
            continue
        paths += [r.points_mm for r in
                  rectilinear(part, width_mm, height_mm, _long_side_deg(part))]
    return paths


def gyroid(
    region: BaseGeometry, width_mm: float, height_mm: float, z_mm: float, density: float,
    angle_deg: float = 45.0,
) -> list[Road]:
    """Gyroid infill: the layer's section of a gyroid-like surface, as roads.

    The usual per-layer approximation of a gyroid (Schoen's minimal surface): the zero set
    of ``sin X cos Y + sin Y cos Z + sin Z cos X`` with ``X, Y, Z = k x, k y, k z``, traced
    on a grid as polylines and clipped to ``region``. The period ``2π / k`` is set so the
    walls' mean length per area over a whole period in z, times the bead spacing, is
    ``density``. A section of the gyroid is longer where its walls cross (``Z`` an odd
    multiple of π/4) than between: 0.367–0.481 mm of wall per mm² per unit ``k``
    (mean 0.392), so one layer carries 0.93–1.22 × ``density`` and a whole period of
    layers carries ``density``. Keeping one surface through the height puts a layer's walls
    on the walls below (half their points within 0.2 mm at 0.2 mm layers, see the tests);
    plan_tablet evens out a compartment that spans less than a period. Near density 1
    the walls come closer than a bead where they cross, and the beads overlap there.

    At ``density`` 1 there is no room between the walls, so the layer is filled with solid
    rectilinear roads at ``angle_deg`` instead.

    Parameters
    ----------
    region : shapely geometry
        The infill region (the ``left`` region of :func:`perimeters`).
    width_mm, height_mm : float
        The bead.
    z_mm : float
        Height of the layer (its middle), mm: sets the phase ``Z``.
    density : float, 0 < density ≤ 1
        Material fraction of the region.
    angle_deg : float
        Direction of the rectilinear fallback at density 1.

    Returns
    -------
    list of Road
        ``"infill"`` roads, open polylines ordered nearest-first.
    """
    _check_density(density)
    if density >= 1.0:
        return rectilinear(region, width_mm, height_mm, angle_deg)
    if region.is_empty or region.area < tol.area_mm2:
        return []
    spacing = bead_spacing_mm(width_mm, height_mm)
    # Line density wanted: `density` of the region covered by beads `spacing` wide.
    k = density / spacing / _mean_gyroid_density()
    phase = k * z_mm
    step = 2.0 * math.pi / k / GYROID_SAMPLES_PER_PERIOD
    minx, miny, maxx, maxy = region.bounds
    # The grid sits on multiples of `step` so a region's pattern does not depend on where
    # its bounds fall, only on x, y, z.
    xs = step * np.arange(math.floor(minx / step) - 1, math.ceil(maxx / step) + 2)
    ys = step * np.arange(math.floor(miny / step) - 1, math.ceil(maxy / step) + 2)
    field = _gyroid_field(k * xs, k * ys, phase)
    traced = MultiLineString(_zero_set(xs, ys, field))
    clipped = region.intersection(traced)
    pieces = [np.asarray(g.simplify(tol.road_simplify_mm, preserve_topology=False).coords)
              for g in getattr(clipped, "geoms", [clipped])
              # A stub shorter than half a bead is where a wall grazes the edge: the
              # nozzle cannot lay it as a road, and it carries next to no material.
              if isinstance(g, LineString) and g.length >= width_mm / 2.0]
    return [Road("infill", p) for p in _order(pieces, closed=False)]


# Gyroid helpers ---------------------------------------------------------------------------


def _gyroid_field(kx: FloatArray, ky: FloatArray, phase: float) -> FloatArray:
    """``sin X cos Y + sin Y cos Z + sin Z cos X`` on the grid ``kx × ky``, shape (ny, nx)."""
    x = kx[np.newaxis, :]
    y = ky[:, np.newaxis]
    field: FloatArray = (np.sin(x) * np.cos(y) + np.sin(y) * math.cos(phase)
                         + math.sin(phase) * np.cos(x))
    return field


@functools.lru_cache(maxsize=4096)
def _gyroid_density(phase: float) -> float:
    """Length of the zero set per unit area at ``k = 1`` and ``Z = phase`` (1/mm at 1/mm)."""
    grid = np.linspace(0.0, 2.0 * math.pi, 4 * GYROID_SAMPLES_PER_PERIOD + 1)
    lines = _zero_set(grid, grid, _gyroid_field(grid, grid, phase))
    length = sum(float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1))) for p in lines)
    return length / (2.0 * math.pi) ** 2


GYROID_TABLE_PHASES = 64
"""Phases at which the section's line density is tabulated over its period π/2."""


@functools.lru_cache(maxsize=1)
def _gyroid_density_table() -> FloatArray:
    """:func:`_gyroid_density` at ``GYROID_TABLE_PHASES`` phases across ``[0, π/2)``: the
    section repeats every quarter turn of the phase."""
    phases = np.arange(GYROID_TABLE_PHASES) * (math.pi / 2.0) / GYROID_TABLE_PHASES
    return np.array([_gyroid_density(float(p)) for p in phases])


def _mean_gyroid_density() -> float:
    """The mean of :func:`_gyroid_density` over a whole period of the phase."""
    return float(np.mean(_gyroid_density_table()))


def gyroid_z_shift_mm(
    zs_mm: list[float], weights: list[float], width_mm: float, height_mm: float,
    density: float,
) -> float:
    """A shift of the gyroid along z that makes a short stack of layers carry ``density``.

    One layer's section of the gyroid carries 0.93–1.22 × ``density`` depending on its
    phase; a stack a whole period tall averages out, a thinner one need not. Passing
    ``z − shift`` to :func:`gyroid` for every layer of the stack keeps one continuous
    surface and picks, among 32 shifts across the section's period, the one whose
    layers (weighted, e.g. by their infill area × height) carry the density on average.

    Parameters
    ----------
    zs_mm : list of float
        The layers' heights as passed to :func:`gyroid`.
    weights : list of float
        The layers' shares of the stack's infill (any positive scale).
    width_mm, height_mm : float
        The bead (``height_mm`` of the stack's typical layer: it sets the period).
    density : float, 0 < density < 1
        The stack's infill density.

    Returns
    -------
    float
        The shift, mm, between 0 and a quarter of the gyroid's period.
    """
    _check_density(density)
    table = _gyroid_density_table()
    k = density / bead_spacing_mm(width_mm, height_mm) / float(np.mean(table))
    quarter_mm = (math.pi / 2.0) / k
    z = np.asarray(zs_mm, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    best, best_miss = 0.0, math.inf
    for shift in np.linspace(0.0, quarter_mm, 32, endpoint=False):
        # Phase in table steps, interpolated linearly round the periodic table.
        pos = (k * (z - shift)) % (math.pi / 2.0) / (math.pi / 2.0) * len(table)
        lo = np.floor(pos).astype(np.int64) % len(table)
        frac = pos - np.floor(pos)
        c = table[lo] * (1.0 - frac) + table[(lo + 1) % len(table)] * frac
        miss = abs(float(np.sum(w * c) / np.sum(w)) / float(np.mean(table)) - 1.0)
        if miss < best_miss:
            best, best_miss = float(shift), miss
    return best


def _zero_set(xs: FloatArray, ys: FloatArray, f: FloatArray) -> list[FloatArray]:
    """Polylines of the zero set of ``f`` sampled at ``(xs[i], ys[j]) -> f[j, i]``
    (contourpy's marching squares, linear along the cell edges)."""
    lines = contourpy.contour_generator(xs, ys, f, line_type="Separate").lines(0.0)
    return [np.asarray(p, dtype=np.float64) for p in lines if len(p) >= 2]


# Ordering ---------------------------------------------------------------------------------


def _order(paths: list[np.ndarray], *, closed: bool) -> list[np.ndarray]:
    """Paths in a greedy nearest-next order from the end of each to the start of the next.

    The walk starts with the first path as it is. Open paths may be reversed; closed loops
    (``closed``, or first point = last) are rotated to start at their vertex nearest the
    current position.
    """
    if not paths:
        return []
    left = list(paths)
    out = [left.pop(0)]
    while left:
        here = out[-1][-1]
        best, best_d, best_path = 0, math.inf, left[0]
        for n, p in enumerate(left):
            if closed or _is_closed(p):
                ring = p[:-1]
                d2 = np.sum((ring - here) ** 2, axis=1)
                m = int(np.argmin(d2))
                d = float(d2[m])
                if d < best_d:
                    best, best_d = n, d
                    best_path = np.vstack([ring[m:], ring[:m], ring[m:m + 1]])
            else:
                for cand in (p, p[::-1]):
                    d = float(np.sum((cand[0] - here) ** 2))
                    if d < best_d:
                        best, best_d, best_path = n, d, cand
        left.pop(best)
        out.append(best_path)
    return out


def _is_closed(points: np.ndarray) -> bool:
    return len(points) > 3 and float(np.abs(points[0] - points[-1]).max()) <= tol.merge_mm


def _long_side_deg(part: BaseGeometry) -> float:
    """Direction of the long side of ``part``'s minimum rotated rectangle, degrees."""
    box = shapely.minimum_rotated_rectangle(part)
    corners = np.asarray(getattr(box, "exterior", box).coords)
    if len(corners) < 3:
        return 0.0
    sides = np.diff(corners[:3], axis=0)
    long = sides[int(np.argmax(np.linalg.norm(sides, axis=1)))]
    return math.degrees(math.atan2(float(long[1]), float(long[0])))
