"""Dividing a tablet body into drug-loaded compartments so that compartment i holds V_i.

The body is the drug-loaded region of the tablet: the whole tablet, or what a drug-free
shell encloses. Every layout places its interfaces by solving a one-dimensional,
monotone volume equation with analytic volumes, channels included:

* **stacked** (single, bilayer, multilayer): horizontal interfaces, bottom first; each
  layer's band height is linear in its volume once the dome it carries is taken off.
* **core-shell**: compartment 0 is a homothetic copy of the outline (an annulus moved in
  from both faces for a ring) of height ``band − 2 r t``, centred in the band, where ``t``
  is its wall in XY and ``r t`` its wall in Z (``r = core_wall_ratio``); ``t`` solves
  ``V_core(t) = V_0``, which falls monotonically with ``t``.
* **segments**: pie sectors for circles, ellipses and rings, at parametric angles φ of
  ``(a cos φ, b sin φ)`` so that a sector's share of the body, domes included, is exactly
  ``Δφ / 2π``; slabs cut across the length for a caplet, their volumes integrated over the
  stadium and its domes.
* **rings**: concentric regions, full height, innermost first: homothetic copies of the
  outline (circles for a cylinder), or circles between the hole and the rim of a ring.

Channels are vertical holes at fixed positions. A channel belongs to the compartment
that contains it and removes its whole column (band and dome) from it; interfaces are
kept ``clearance_mm`` away from channels by solving only on the stretches between them.
The one exception is a single channel at the centre of pie segments, which every sector
shares by angle.

Every layout is one entry of the registry :data:`LAYOUT_KINDS`: how many compartments it
takes, the function that divides a body into them, and the two facts about its geometry
that sizing and design read (its compartments are stacked layers; its compartment 0 is a
core enclosed by compartment 1). A new layout is a divide function and one entry; its
name joins :data:`~doseprint.typed.LayoutName`, and the registry is checked against that
vocabulary when this module loads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol

import numpy as np
import shapely
from scipy import optimize
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from doseprint.errors import InfeasibleDesignError
from doseprint.geometry.shapes import (
    Annulus,
    Circle,
    Ellipse,
    OffsetEllipse,
    Outline,
    Stadium,
    circle_polygon,
    dome_volume_within_mm3,
    dome_wedge_column_mm3,
    stadium_volume_left_mm3,
)
from doseprint.geometry.solids import Difference, DomedPrism, Intersection, Prism, Solid
from doseprint.typed import LAYOUT_NAMES, FloatArray, LayoutName

__all__ = [
    "LAYOUT_KINDS",
    "Body",
    "Channel",
    "Divide",
    "DivideOptions",
    "Interface",
    "LayoutKind",
    "Measure",
    "Part",
    "Partition",
    "divide",
    "layout_kind",
]

DimensionValue = float | tuple[float, ...]


@dataclass(frozen=True)
class Channel:
    """A straight vertical hole of ``diameter_mm`` through the tablet at (x, y), with the
    dome volumes it removes above the body's bottom and top faces."""

    x_mm: float
    y_mm: float
    diameter_mm: float
    column_bottom_mm3: float = 0.0
    column_top_mm3: float = 0.0

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2.0

    @property
    def area_mm2(self) -> float:
        return math.pi * self.radius_mm**2

    @property
    def central(self) -> bool:
        return self.x_mm == 0.0 and self.y_mm == 0.0

    @property
    def polygon(self) -> Polygon:
        return circle_polygon(self.radius_mm, (self.x_mm, self.y_mm))

    def loss_mm3(self, band_mm: float) -> float:
        """Volume the channel removes from a body whose band is ``band_mm`` tall."""
        return self.area_mm2 * band_mm + self.column_bottom_mm3 + self.column_top_mm3


@dataclass(frozen=True)
class Body:
    """The drug-loaded region before it is divided: an outline over a band, optional
    domes, and the channels through it. ``outside``: its surface is the tablet's (no
    shell around it)."""

    outline: Outline
    z0_mm: float
    band_mm: float
    dome_bottom_mm: float
    dome_top_mm: float
    channels: tuple[Channel, ...]
    outside: bool = True

    @property
    def solid(self) -> DomedPrism:
        return DomedPrism(self.outline, self.z0_mm, self.band_mm, self.dome_bottom_mm,
                          self.dome_top_mm, medium=self.outside)

    @property
    def band_z_mm(self) -> tuple[float, float]:
        return self.solid.band_z_mm

    @property
    def top_mm(self) -> float:
        return self.solid.top_mm

    @property
    def volume_mm3(self) -> float:
        """Volume without the channels: ``A band + (2/3) A (d_bottom + d_top)``."""
        area = self.outline.area_mm2
        return area * self.band_mm + 2.0 / 3.0 * area * (self.dome_bottom_mm + self.dome_top_mm)

    @property
    def channel_loss_mm3(self) -> float:
        return sum(c.loss_mm3(self.band_mm) for c in self.channels)

    @property
    def drug_volume_mm3(self) -> float:
        return self.volume_mm3 - self.channel_loss_mm3

    @property
    def central_channel(self) -> bool:
        return len(self.channels) == 1 and self.channels[0].central

    @property
    def on_first_layer(self) -> bool:
        """Whether the band starts on the build plate (so its first layer is the first)."""
        return self.band_z_mm[0] == 0.0

    def channel_prism(self) -> Prism | None:
        if not self.channels:
            return None
        region = MultiPolygon([c.polygon for c in self.channels])
        return Prism(region, self.z0_mm - 1.0, self.top_mm + 1.0, medium=True)


@dataclass(frozen=True)
class Measure:
    """One thickness of a compartment: XY thicknesses are held to the minimum wall, Z
    thicknesses to the minimum number of layers (the first layer's height if
    ``first_layer``). ``shared``: the same extent belongs to every compartment (the band
    of full-height layouts), so it is the tablet's, not one compartment's."""

    what: str
    value_mm: float
    axis: Literal["xy", "z"]
    first_layer: bool = False
    shared: bool = False


@dataclass(frozen=True)
class Part:
    """One drug-loaded compartment as a layout made it."""

    index: int
    volume_mm3: float
    solid: Solid
    z_range_mm: tuple[float, float]
    measures: tuple[Measure, ...]


@dataclass(frozen=True)
class Interface:
    """A boundary in XY that channels must keep clear of (``label`` names it in messages).
    ``shared_by_centre``: a channel at the centre may cross it (pie rays)."""

    label: str
    curve: BaseGeometry
    shared_by_centre: bool = False


@dataclass(frozen=True)
class Partition:
    """A body divided: compartments in index order, the layout's named dimensions, the
    XY interfaces and which compartment each channel runs through (-1: shared)."""

    parts: tuple[Part, ...]
    dimensions: tuple[tuple[str, DimensionValue], ...]
    interfaces: tuple[Interface, ...]
    channel_owners: tuple[int, ...]


def _refuse(message: str) -> InfeasibleDesignError:
    return InfeasibleDesignError(message, file="tablet")


# Shared helpers


def _far_mm(body: Body) -> float:
    """A distance beyond the body in XY, for half-planes and wedges."""
    return 2.0 * body.outline.length_mm + 10.0


def _with_channels(solid: Solid, body: Body) -> Solid:
    cut = body.channel_prism()
    return solid if cut is None else Difference(solid, (cut,))


def _place(
    volume_below: Callable[[float], float],
    lo: float,
    hi: float,
    spans: Sequence[tuple[float, float, int]],
    target_mm3: float,
    between: tuple[int, int],
) -> float:
    """The coordinate in ``[lo, hi]`` where ``volume_below`` reaches ``target_mm3``.

    ``spans`` are (start, end, channel) stretches that an interface may not enter (a
    channel and its clearance). Outside them ``volume_below`` is exact and increasing, so
    the free stretches are searched in order and the root polished with Brent's method.
    """
    merged: list[list[float]] = []
    for a, b, _ in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    free: list[tuple[float, float]] = []
    start = lo
    for a, b in merged:
        if a > start:
            free.append((start, min(a, hi)))
        start = max(start, b)
    if start < hi:
        free.append((start, hi))
    previous_end = lo
    for u, v in free:
        fu, fv = volume_below(u) - target_mm3, volume_below(v) - target_mm3
        if fu > 0.0 and u > previous_end:
            break  # the target was passed inside the span before this stretch
        if fu <= 0.0 <= fv:
            if fu == 0.0:
                return u
            return float(optimize.brentq(lambda c: volume_below(c) - target_mm3, u, v,
                                         xtol=1e-15 * max(1.0, abs(hi - lo)), rtol=1e-15,
                                         maxiter=200))
        previous_end = v
    blocking = [j for a, b, j in spans if a < hi and b > lo]
    which = f"channel {blocking[0]}" if blocking else "a channel"
    raise _refuse(
        f"the interface between compartments {between[0]} and {between[1]} would pass "
        f"through {which} or its wall; change channel_spread, the channel count or the doses"
    )


# Stacked layers


def _stacked(body: Body, volumes: Sequence[float], options: DivideOptions) -> Partition:
    k = len(volumes)
    area = body.outline.area_mm2
    holes = sum(c.area_mm2 for c in body.channels)
    net = area - holes
    if net <= 0.0:
        raise _refuse(f"the channels ({holes:.2f} mm²) take the whole tablet section "
                      f"({area:.2f} mm²)")
    dome_bottom = (2.0 / 3.0 * area * body.dome_bottom_mm
                   - sum(c.column_bottom_mm3 for c in body.channels))
    dome_top = (2.0 / 3.0 * area * body.dome_top_mm
                - sum(c.column_top_mm3 for c in body.channels))
    heights = []
    for i, v in enumerate(volumes[:-1]):
        heights.append((v - (dome_bottom if i == 0 else 0.0)) / net)
    heights.append(body.band_mm - sum(heights))
    z_band0, _ = body.band_z_mm
    cuts = [z_band0 + sum(heights[:i]) for i in range(1, k)]
    far = _far_mm(body)
    parts = []
    for i in range(k):
        lo = body.z0_mm - 1.0 if i == 0 else cuts[i - 1]
        hi = body.top_mm + 1.0 if i == k - 1 else cuts[i]
        solid: Solid = body.solid
        if k > 1:
            solid = Intersection((body.solid, Prism(box(-far, -far, far, far), lo, hi)))
        volume = net * heights[i]
        volume += dome_bottom if i == 0 else 0.0
        volume += dome_top if i == k - 1 else 0.0
        z_lo = body.z0_mm if i == 0 else cuts[i - 1]
        z_hi = body.top_mm if i == k - 1 else cuts[i]
        first = i == 0 and body.on_first_layer
        what = "layer height" if k > 1 else "band height"
        parts.append(Part(i, volume, _with_channels(solid, body), (z_lo, z_hi),
                          (Measure(what, heights[i], "z", first),)))
    dims: list[tuple[str, DimensionValue]] = [("layer_heights", tuple(heights))]
    if k > 1:
        dims.append(("interfaces_z", tuple(cuts)))
    return Partition(tuple(parts), tuple(dims), (), tuple(0 for _ in body.channels))


# Core and wall


def _core_outline(outline: Outline, wall_mm: float) -> Outline:
    if isinstance(outline, Annulus):
        return Annulus(outline.radius_mm - wall_mm, outline.hole_radius_mm + wall_mm)
    if isinstance(outline, OffsetEllipse):
        raise _refuse("a core cannot be cut from a shell's outline")
    half = outline.thinnest_mm / 2.0
    return outline.scaled(1.0 - wall_mm / half)


def _core_shell(body: Body, volumes: Sequence[float], options: DivideOptions) -> Partition:
    wall_ratio = options.core_wall_ratio
    v_core = volumes[0]
    outline = body.outline
    band = body.band_mm
    holes = sum(c.area_mm2 for c in body.channels)
    t_max = min(outline.thinnest_mm / 2.0, band / (2.0 * wall_ratio))

    def core_volume(t: float) -> float:
        return (_core_outline(outline, t).area_mm2 - holes) * (band - 2.0 * wall_ratio * t)

    if core_volume(0.0) <= v_core:
        wall = 0.0  # the core would fill the band: reported as a zero wall
    else:
        wall = float(optimize.brentq(lambda t: core_volume(t) - v_core, 0.0, t_max,
                                     xtol=1e-15, rtol=1e-15, maxiter=200))
    core = _core_outline(outline, wall)
    z_band0, z_band1 = body.band_z_mm
    zc0, zc1 = z_band0 + wall_ratio * wall, z_band1 - wall_ratio * wall
    core_prism = Prism(core.polygon, zc0, zc1)
    for j, c in enumerate(body.channels):
        if not core.polygon.contains(c.polygon):
            raise _refuse(f"channel {j} at ({c.x_mm:.2f}, {c.y_mm:.2f}) mm does not pass "
                          "through the core; lower channel_spread")
    core_height = zc1 - zc0
    core_vol = (core.area_mm2 - holes) * core_height
    shell_vol = body.drug_volume_mm3 - core_vol
    cut = body.channel_prism()
    core_solid: Solid = core_prism if cut is None else Difference(core_prism, (cut,))
    wall_solid = Difference(body.solid, (core_prism,) if cut is None else (core_prism, cut))
    core_xy = core.thinnest_mm
    parts = (
        Part(0, core_vol, core_solid, (zc0, zc1),
             (Measure("core height", core_height, "z"),
              Measure("core width" if not isinstance(core, Annulus) else "core ring wall",
                      core_xy, "xy"))),
        Part(1, shell_vol, wall_solid, (body.z0_mm, body.top_mm),
             (Measure("wall around the core", wall, "xy"),
              Measure("wall above and below the core", wall_ratio * wall, "z",
                      body.on_first_layer))),
    )
    dims: list[tuple[str, DimensionValue]] = [
        ("core_wall_xy", wall), ("core_wall_z", wall_ratio * wall), ("core_height", core_height)]
    dims += [(f"core_{name}", value) for name, value in _outline_dims(core)]
    boundary = Interface("the core's boundary", core.polygon.boundary)
    return Partition(parts, tuple(dims), (boundary,), tuple(0 for _ in body.channels))


def _outline_dims(outline: Outline) -> list[tuple[str, float]]:
    if isinstance(outline, Circle):
        return [("diameter", outline.length_mm)]
    if isinstance(outline, Annulus):
        return [("diameter", outline.length_mm), ("inner_diameter", 2 * outline.hole_radius_mm)]
    return [("length", outline.length_mm), ("width", outline.width_mm)]


# Side-by-side segments


def _phi_of(outline: Outline, x: FloatArray, y: FloatArray) -> FloatArray:
    """Parametric angle in [0, 2π) of points: ``atan2(y/b, x/a)`` for an ellipse."""
    if isinstance(outline, Ellipse):
        x, y = x / outline.a_mm, y / outline.b_mm
    return np.asarray(np.mod(np.arctan2(y, x), 2.0 * math.pi), dtype=np.float64)


def _direction(outline: Outline, phi: float) -> tuple[float, float]:
    if isinstance(outline, Ellipse):
        x, y = outline.a_mm * math.cos(phi), outline.b_mm * math.sin(phi)
    else:
        x, y = math.cos(phi), math.sin(phi)
    n = math.hypot(x, y)
    return x / n, y / n


def _true_angle(outline: Outline, phi: float) -> float:
    """True polar angle in [0, 2π] of the ray at parametric angle ``phi`` (continuous)."""
    if not isinstance(outline, Ellipse) or phi <= 0.0:
        return phi
    if phi >= 2.0 * math.pi:
        return 2.0 * math.pi
    theta = outline.ray_angle(phi)
    return theta + 2.0 * math.pi if theta < 0.0 else theta


def _channel_spans(
    body: Body, coordinate: Callable[[FloatArray, FloatArray], FloatArray], clearance_mm: float,
    skip_central: bool = False,
) -> list[tuple[float, float, int]]:
    """The range of an interface coordinate over each channel grown by the clearance."""
    spans = []
    for j, c in enumerate(body.channels):
        if skip_central and c.central:
            continue
        grown = circle_polygon(c.radius_mm + clearance_mm, (c.x_mm, c.y_mm))
        xy = np.asarray(grown.exterior.coords)
        values = coordinate(xy[:, 0], xy[:, 1])
        spans.append((float(values.min()), float(values.max()), j))
    return spans


def _sector_thickness(outline: Outline, span: float, wedge: Polygon, hole_mm: float) -> float:
    """Diameter of the largest disc inside a pie sector of (parametric) angle ``span``
    (its apex is always sharp, so this is its printable thickness).

    On a circle or ring a disc centred on the bisector at radius ρ has radius
    ``min(R − ρ, ρ − r_in, ρ sin(span/2) if span < π)``, with ``r_in`` the hole or a
    central channel; its best ρ is found on a fine grid. An ellipse's sector is measured
    on its polygon (shapely).
    """
    if isinstance(outline, Circle | Annulus):
        big = outline.radius_mm
        inner = max(hole_mm, outline.hole_radius_mm if isinstance(outline, Annulus) else 0.0)
        rho = np.linspace(inner, big, 4001)
        radius = np.minimum(big - rho, rho - inner)
        if span < math.pi:
            radius = np.minimum(radius, rho * math.sin(span / 2.0))
        return 2.0 * float(radius.max())
    region = outline.polygon.intersection(wedge)
    if hole_mm > 0.0:
        region = region.difference(Point(0.0, 0.0).buffer(hole_mm, quad_segs=16))
    tolerance = 1e-3 * outline.thinnest_mm
    return 2.0 * float(shapely.maximum_inscribed_circle(region, tolerance).length)


def _segments(body: Body, volumes: Sequence[float], options: DivideOptions) -> Partition:
    """Slabs across the length of a caplet, pie sectors of anything else."""
    if isinstance(body.outline, Stadium):
        return _slabs(body, volumes, options.clearance_mm)
    return _pie(body, volumes, options.clearance_mm)


def _pie(body: Body, volumes: Sequence[float], clearance_mm: float) -> Partition:
    outline = body.outline
    if isinstance(outline, Stadium | OffsetEllipse):
        raise _refuse("pie segments need a circle, an ellipse or a ring")
    k = len(volumes)
    full = body.volume_mm3
    band = body.band_mm
    central = body.central_channel
    rc = body.channels[0].radius_mm if central else 0.0

    def central_loss(theta: float) -> float:
        """Volume of a central channel between true angles 0 and ``theta``."""
        if not central or theta <= 0.0:
            return 0.0
        assert isinstance(outline, Circle | Ellipse)
        cols = (dome_wedge_column_mm3(outline, rc, 0.0, theta, body.dome_bottom_mm)
                + dome_wedge_column_mm3(outline, rc, 0.0, theta, body.dome_top_mm))
        return rc * rc / 2.0 * theta * band + cols

    spans = _channel_spans(body, lambda x, y: _phi_of(outline, x, y), clearance_mm,
                           skip_central=True)
    for a, b, j in spans:
        if b - a > math.pi:
            raise _refuse(f"channel {j} sits on the first segment boundary (the +x axis); "
                          "change channel_spread or the channel count")
    phis_of_channels = [float(_phi_of(outline, np.array(c.x_mm), np.array(c.y_mm)))
                        for c in body.channels]

    def below(phi: float) -> float:
        passed = sum(body.channels[j].loss_mm3(band) for _, b, j in spans if b < phi)
        return phi / (2.0 * math.pi) * full - central_loss(_true_angle(outline, phi)) - passed

    phis = [0.0]
    for i in range(1, k):
        phis.append(_place(below, phis[-1], 2.0 * math.pi, spans, sum(volumes[:i]), (i - 1, i)))
    phis.append(2.0 * math.pi)
    far = _far_mm(body)
    dirs = [_direction(outline, p) for p in phis]
    dirs[-1] = dirs[0]
    owners = [-1 if c.central else 0 for c in body.channels]
    parts = []
    for i in range(k):
        p0, p1 = phis[i], phis[i + 1]
        steps = max(2, math.ceil((p1 - p0) / (math.pi / 16.0)))
        inner = [_direction(outline, p) for p in np.linspace(p0, p1, steps + 1)[1:-1]]
        ring = [dirs[i], *inner, dirs[i + 1]]
        wedge = Polygon([(0.0, 0.0), *[(far * x, far * y) for x, y in ring]])
        solid = Intersection((body.solid, Prism(wedge, body.z0_mm - 1.0, body.top_mm + 1.0)))
        mine = [j for j, phi in enumerate(phis_of_channels)
                if not body.channels[j].central and p0 < phi < p1]
        for j in mine:
            owners[j] = i
        shared = (central_loss(_true_angle(outline, p1))
                  - central_loss(_true_angle(outline, p0)))
        volume = ((p1 - p0) / (2.0 * math.pi) * full - shared
                  - sum(body.channels[j].loss_mm3(band) for j in mine))
        inscribed = _sector_thickness(outline, p1 - p0, wedge,
                                      body.channels[0].radius_mm if central else 0.0)
        parts.append(Part(i, volume, _with_channels(solid, body), (body.z0_mm, body.top_mm),
                          (Measure("thickness (largest disc in the segment)", inscribed, "xy"),
                           Measure("band height", band, "z", body.on_first_layer, shared=True))))
    start = outline.hole_radius_mm if isinstance(outline, Annulus) else 0.0
    interfaces = []
    for i in range(k):
        x, y = dirs[i]
        label = f"the interface between compartments {(i - 1) % k} and {i}"
        ray = LineString([(start * x, start * y), (far * x, far * y)])
        interfaces.append(Interface(label, ray.intersection(outline.polygon),
                                    shared_by_centre=True))
    angles = tuple(math.degrees(_true_angle(outline, p)) for p in phis[:-1])
    return Partition(tuple(parts), (("segment_angles_deg", angles),), tuple(interfaces),
                     tuple(owners))


def _slabs(body: Body, volumes: Sequence[float], clearance_mm: float) -> Partition:
    outline = body.outline
    assert isinstance(outline, Stadium)
    k = len(volumes)
    band = body.band_mm
    domes = body.dome_bottom_mm + body.dome_top_mm
    half = outline.length_mm / 2.0
    spans = _channel_spans(body, lambda x, y: x, clearance_mm)

    def left(x: float) -> float:
        return stadium_volume_left_mm3(outline, x, band, domes)

    def below(x: float) -> float:
        return left(x) - sum(body.channels[j].loss_mm3(band) for _, b, j in spans if b < x)

    cuts = [-half]
    for i in range(1, k):
        cuts.append(_place(below, cuts[-1], half, spans, sum(volumes[:i]), (i - 1, i)))
    cuts.append(half)
    far = _far_mm(body)
    owners = [0 for _ in body.channels]
    parts = []
    for i in range(k):
        x0 = -far if i == 0 else cuts[i]
        x1 = far if i == k - 1 else cuts[i + 1]
        solid = Intersection((body.solid, Prism(box(x0, -far, x1, far), body.z0_mm - 1.0,
                                                body.top_mm + 1.0)))
        mine = [j for j, c in enumerate(body.channels) if cuts[i] < c.x_mm < cuts[i + 1]]
        for j in mine:
            owners[j] = i
        volume = (left(cuts[i + 1]) if i < k - 1 else body.volume_mm3) - (
            left(cuts[i]) if i > 0 else 0.0)
        volume -= sum(body.channels[j].loss_mm3(band) for j in mine)
        parts.append(Part(i, volume, _with_channels(solid, body), (body.z0_mm, body.top_mm),
                          (Measure("slab thickness along the length", cuts[i + 1] - cuts[i],
                                   "xy"),
                           Measure("band height", band, "z", body.on_first_layer, shared=True))))
    interfaces = tuple(
        Interface(f"the interface between compartments {i - 1} and {i}",
                  LineString([(cuts[i], -far), (cuts[i], far)]).intersection(outline.polygon))
        for i in range(1, k))
    return Partition(tuple(parts), (("segment_cuts_x", tuple(cuts[1:-1])),), interfaces,
                     tuple(owners))


# Concentric rings


def _rings(body: Body, volumes: Sequence[float], options: DivideOptions) -> Partition:
    clearance_mm = options.clearance_mm
    outline = body.outline
    if isinstance(outline, OffsetEllipse):
        raise _refuse("rings cannot be cut from a shell's outline")
    k = len(volumes)
    band = body.band_mm
    area = outline.area_mm2

    if isinstance(outline, Annulus):
        lo, hi = outline.hole_radius_mm, outline.radius_mm

        def inside(c: float) -> float:
            return math.pi * (c * c - lo * lo) * band

        def coordinate(x: FloatArray, y: FloatArray) -> FloatArray:
            return np.asarray(np.hypot(x, y), dtype=np.float64)

        def region(c: float) -> Polygon:
            return Circle(c).polygon

        def radial(c0: float, c1: float) -> float:
            return c1 - c0
    else:
        lo, hi = 0.0, 1.0
        convex = outline

        def inside(c: float) -> float:
            return (area * c * c * band + dome_volume_within_mm3(area, c, body.dome_bottom_mm)
                    + dome_volume_within_mm3(area, c, body.dome_top_mm))

        def coordinate(x: FloatArray, y: FloatArray) -> FloatArray:
            return convex.gauge(x, y)

        def region(c: float) -> Polygon:
            return shapely.affinity.scale(convex.polygon, c, c, origin=(0.0, 0.0))

        def radial(c0: float, c1: float) -> float:
            return (c1 - c0) * convex.thinnest_mm / (1.0 if c0 == 0.0 else 2.0)

    spans = _channel_spans(body, coordinate, clearance_mm)
    for j, c in enumerate(body.channels):
        if c.central and spans[j][0] > lo:
            spans[j] = (lo, spans[j][1], j)  # a central channel's disc includes the centre

    def below(c: float) -> float:
        return inside(c) - sum(body.channels[j].loss_mm3(band) for _, b, j in spans if b < c)

    levels = [lo]
    for i in range(1, k):
        levels.append(_place(below, levels[-1], hi, spans, sum(volumes[:i]), (i - 1, i)))
    levels.append(hi)
    centres = [float(coordinate(np.array(c.x_mm), np.array(c.y_mm))) for c in body.channels]
    owners = [0 for _ in body.channels]
    parts = []
    for i in range(k):
        c0, c1 = levels[i], levels[i + 1]
        z = (body.z0_mm - 1.0, body.top_mm + 1.0)
        solid: Solid
        if i == k - 1:
            solid = Difference(body.solid, (Prism(region(c0), *z),))
        elif i == 0:
            solid = Intersection((body.solid, Prism(region(c1), *z)))
        else:
            solid = Intersection((body.solid, Prism(region(c1).difference(region(c0)), *z)))
        mine = [j for j, g in enumerate(centres) if c0 <= g < c1]
        for j in mine:
            owners[j] = i
        volume = (inside(c1) if i < k - 1 else body.volume_mm3) - inside(c0)
        volume -= sum(body.channels[j].loss_mm3(band) for j in mine)
        what = "ring wall" if (i > 0 or isinstance(outline, Annulus)) else "inner width"
        parts.append(Part(i, volume, _with_channels(solid, body), (body.z0_mm, body.top_mm),
                          (Measure(what, radial(c0, c1), "xy"),
                           Measure("band height", band, "z", body.on_first_layer, shared=True))))
    interfaces = tuple(
        Interface(f"the interface between compartments {i - 1} and {i}",
                  region(levels[i]).boundary) for i in range(1, k))
    if isinstance(outline, Annulus | Circle):
        scale = 1.0 if isinstance(outline, Annulus) else outline.radius_mm
        dims: tuple[tuple[str, DimensionValue], ...] = (
            ("ring_diameters", tuple(2.0 * scale * c for c in levels[1:-1])),)
    else:
        dims = (("ring_scales", tuple(levels[1:-1])),)
    return Partition(tuple(parts), dims, interfaces, tuple(owners))


# The registry


@dataclass(frozen=True)
class DivideOptions:
    """What a divide function may need besides the body and the volumes.

    Attributes
    ----------
    core_wall_ratio : float
        Core-shell: wall above and below the core / wall around it.
    clearance_mm : float, mm
        Nearest an interface may come to a channel's edge.
    """

    core_wall_ratio: float = 1.0
    clearance_mm: float = 0.9


class Divide(Protocol):
    """Divides a body into compartments of the given volumes (mm³), index order."""

    def __call__(
        self, body: Body, volumes: Sequence[float], options: DivideOptions
    ) -> Partition: ...


@dataclass(frozen=True)
class LayoutKind:
    """One layout, as the rest of doseprint sees it.

    Attributes
    ----------
    compartments : (int, int)
        Fewest and most drug-loaded compartments it takes.
    divide : Divide
        Places the interfaces so that compartment i holds V_i.
    stacked : bool
        The compartments are horizontal layers, bottom first: every channel runs through
        all of them, and the interfaces can be put on layer boundaries.
    core : bool
        Compartment 0 is a core enclosed by compartment 1, through which its drug
        diffuses to reach the medium.
    """

    compartments: tuple[int, int]
    divide: Divide
    stacked: bool = False
    core: bool = False

    def takes(self, count: int) -> bool:
        """Whether the layout takes ``count`` drug-loaded compartments."""
        lo, hi = self.compartments
        return lo <= count <= hi

    @property
    def counts(self) -> tuple[int, ...]:
        """Every number of drug-loaded compartments it takes, in order."""
        lo, hi = self.compartments
        return tuple(range(lo, hi + 1))


LAYOUT_KINDS: Mapping[LayoutName, LayoutKind] = MappingProxyType({
    "single": LayoutKind((1, 1), _stacked, stacked=True),
    "bilayer": LayoutKind((2, 2), _stacked, stacked=True),
    "multilayer": LayoutKind((2, 4), _stacked, stacked=True),
    "core-shell": LayoutKind((2, 2), _core_shell, core=True),
    "segments": LayoutKind((2, 4), _segments),
    "rings": LayoutKind((2, 4), _rings),
})
"""Every layout by name (the vocabulary :data:`~doseprint.typed.LAYOUT_NAMES`)."""

if tuple(LAYOUT_KINDS) != LAYOUT_NAMES:
    raise RuntimeError(f"the layout registry {tuple(LAYOUT_KINDS)} does not match the layout "
                       f"vocabulary {LAYOUT_NAMES}")


def layout_kind(layout: str) -> LayoutKind:
    """The registry's entry for ``layout``.

    Raises
    ------
    InfeasibleDesignError
        No layout has that name.
    """
    for name, kind in LAYOUT_KINDS.items():
        if name == layout:
            return kind
    raise _refuse(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUT_KINDS)}")


def divide(
    layout: LayoutName,
    body: Body,
    volumes: Sequence[float],
    *,
    core_wall_ratio: float = 1.0,
    clearance_mm: float = 0.9,
) -> Partition:
    """Divide ``body`` into ``len(volumes)`` compartments of those volumes (mm³).

    Parameters
    ----------
    layout : str
        A name of :data:`LAYOUT_KINDS`: ``single``, ``bilayer``, ``multilayer``,
        ``core-shell``, ``segments`` or ``rings``.
    body : Body
        The drug-loaded region; its drug volume must equal ``sum(volumes)``.
    volumes : sequence of float, mm³
        Volume of each compartment, index order.
    core_wall_ratio : float
        Core-shell only: Z wall / XY wall.
    clearance_mm : float
        Nearest an interface may come to a channel's edge.

    Returns
    -------
    Partition

    Raises
    ------
    InfeasibleDesignError
        An unknown layout, an interface that cannot be placed (it would cut a channel),
        or channels that miss the core.
    """
    options = DivideOptions(core_wall_ratio=core_wall_ratio, clearance_mm=clearance_mm)
    return layout_kind(layout).divide(body, volumes, options)
