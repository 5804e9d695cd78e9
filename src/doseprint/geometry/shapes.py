"""Tablet outlines in XY and the elliptic dome over them.

An outline is a plane figure centred on the origin: a circle (cylinder), a stadium
(caplet), an ellipse (oval), the outward parallel of an ellipse (an oval under a shell)
or an annulus (ring). Each one knows its analytic area and extents, gives a polygon with
exactly that area for meshing, and can be scaled about its centre (homothety) or offset
outwards by a distance. Convex outlines also give their *gauge*: the factor by which the
outline must be scaled about its centre to pass through a point.

Domes
-----
A dome of height ``d`` over an outline of area ``A`` has, at height ``z`` above the band
(0 ≤ z ≤ d), the outline scaled about its centre by ``s(z) = sqrt(1 − (z/d)²)`` as its
cross-section. Its section area is ``A (1 − (z/d)²)`` and its volume ``(2/3) A d``; over
a circle it is half an ellipsoid of revolution. A point of gauge ``g`` lies under the
dome surface up to ``z = d sqrt(1 − g²)``, which is what the channel columns integrate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, TypeAlias

import numpy as np
import shapely
from scipy import integrate, special
from shapely.geometry import Polygon
from shapely.geometry.polygon import orient

from doseprint.typed import FloatArray

__all__ = [
    "CHANNEL_SECTIONS",
    "OUTLINE_SECTIONS",
    "Annulus",
    "Circle",
    "ConvexOutline",
    "Ellipse",
    "OffsetEllipse",
    "Outline",
    "Stadium",
    "circle_polygon",
    "dome_column_mm3",
    "dome_volume_within_mm3",
    "dome_wedge_column_mm3",
    "stadium_volume_left_mm3",
]

OUTLINE_SECTIONS = 128
"""Vertices around a full outline: the chord error on a 22 mm tablet is 1.7 µm."""

CHANNEL_SECTIONS = 48
"""Vertices around a channel (about 1 mm across): a chord error below 0.1 µm."""

# Gauss–Legendre nodes across a channel's radius and trapezoid steps around it: the
# integrand sqrt(1 − g²) is smooth away from the rim (channels keep a wall from it), so
# the angular trapezoid rule converges spectrally; 32 × 128 points reach 1e-12 relative
# on circles and ellipses and about 1e-10 on a stadium, whose gauge is only C¹.
_COLUMN_RADIAL_NODES = 32
_COLUMN_ANGULAR_STEPS = 128
_GAUSS_LEGENDRE = np.polynomial.legendre.leggauss(_COLUMN_RADIAL_NODES)


def _area_scaled(points: FloatArray, area_mm2: float) -> FloatArray:
    """Scale ``points`` (a closed ring, last point not repeated) about the origin so the
    polygon they bound has ``area_mm2``."""
    x, y = points[:, 0], points[:, 1]
    poly_area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    return np.asarray(points * math.sqrt(area_mm2 / abs(poly_area)), dtype=np.float64)


def _regular_ring(radius_mm: float, sections: int) -> FloatArray:
    """A regular ``sections``-gon, CCW, with the area of a circle of ``radius_mm``.

    The first vertex sits half a step above the +x axis, so no vertex lies on the axes
    (where segment rays and the picture's section plane pass).
    """
    t = 2.0 * math.pi * (np.arange(sections) + 0.5) / sections
    ring = np.column_stack([np.cos(t), np.sin(t)]) * radius_mm
    return _area_scaled(ring, math.pi * radius_mm**2)


def circle_polygon(
    radius_mm: float, centre_mm: tuple[float, float] = (0.0, 0.0),
    sections: int = CHANNEL_SECTIONS,
) -> Polygon:
    """A polygon with exactly the area of the circle of ``radius_mm`` about ``centre_mm``."""
    ring = _regular_ring(radius_mm, sections) + np.asarray(centre_mm)
    return Polygon(ring)


@dataclass(frozen=True)
class Circle:
    """A circle of ``radius_mm`` (the outline of a cylinder)."""

    radius_mm: float
    convex: ClassVar[bool] = True

    @property
    def area_mm2(self) -> float:
        return math.pi * self.radius_mm**2

    @property
    def length_mm(self) -> float:
        """Extent along x."""
        return 2.0 * self.radius_mm

    @property
    def width_mm(self) -> float:
        """Extent along y."""
        return 2.0 * self.radius_mm

    @property
    def thinnest_mm(self) -> float:
        """The smallest width of the figure (its narrowest caliper reading)."""
        return 2.0 * self.radius_mm

    # Every outline offers the same four operations; they are documented here once.

    def scaled(self, k: float) -> Circle:
        """The outline scaled by ``k`` about its centre (a homothetic copy)."""
        return Circle(k * self.radius_mm)

    def offset(self, s_mm: float) -> Circle:
        """The outward parallel of the outline at distance ``s_mm`` (a shell's outside)."""
        return Circle(self.radius_mm + s_mm)

    @cached_property
    def polygon(self) -> Polygon:
        """A CCW polygon with ``OUTLINE_SECTIONS`` vertices and exactly ``area_mm2``."""
        return Polygon(_regular_ring(self.radius_mm, OUTLINE_SECTIONS))

    def gauge(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Scale of the outline through each point (x, y) (mm): < 1 inside, 1 on it."""
        return np.asarray(np.hypot(x, y) / self.radius_mm, dtype=np.float64)


@dataclass(frozen=True)
class Stadium:
    """A stadium: a rectangle of length ``2 half_straight_mm`` and width
    ``2 radius_mm`` capped by two half-discs (the outline of a caplet), long along x."""

    half_straight_mm: float
    radius_mm: float
    convex: ClassVar[bool] = True

    @property
    def area_mm2(self) -> float:
        return 4.0 * self.half_straight_mm * self.radius_mm + math.pi * self.radius_mm**2

    @property
    def length_mm(self) -> float:
        return 2.0 * (self.half_straight_mm + self.radius_mm)

    @property
    def width_mm(self) -> float:
        return 2.0 * self.radius_mm

    @property
    def thinnest_mm(self) -> float:
        return 2.0 * self.radius_mm

    def scaled(self, k: float) -> Stadium:
        return Stadium(k * self.half_straight_mm, k * self.radius_mm)

    def offset(self, s_mm: float) -> Stadium:
        return Stadium(self.half_straight_mm, self.radius_mm + s_mm)

    @cached_property
    def polygon(self) -> Polygon:
        half = OUTLINE_SECTIONS // 2
        ell, rho = self.half_straight_mm, self.radius_mm
        # Each end is a half-disc sampled at half steps, so no vertex lies on the x axis.
        t = math.pi * (np.arange(half) + 0.5) / half - math.pi / 2.0
        right = np.column_stack([ell + rho * np.cos(t), rho * np.sin(t)])
        left = np.column_stack([-ell - rho * np.cos(t), -rho * np.sin(t)])
        return Polygon(_area_scaled(np.vstack([right, left]), self.area_mm2))

    def gauge(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Scale ``k`` with ``dist(p, [−kℓ, kℓ] × {0}) = kρ``: in the straight middle
        ``k = |y|/ρ``, at the ends the smaller root of
        ``(ℓ² − ρ²)k² − 2|x|ℓk + x² + y² = 0`` (written without cancellation)."""
        ax, ay = np.abs(x), np.abs(y)
        ell, rho = self.half_straight_mm, self.radius_mm
        middle = ax * rho <= ell * ay
        r2 = ax**2 + ay**2
        disc = np.maximum(rho**2 * r2 - ell**2 * ay**2, 0.0)
        denom = ax * ell + np.sqrt(disc)
        with np.errstate(divide="ignore", invalid="ignore"):
            ends = np.where(denom > 0.0, r2 / np.where(denom > 0.0, denom, 1.0), 0.0)
        return np.asarray(np.where(middle, ay / rho, ends), dtype=np.float64)

    def _cap_mm2(self, u_mm: float) -> float:
        """Area of the part of an end disc beyond a chord at distance ``u`` from its centre."""
        rho = self.radius_mm
        u = min(max(u_mm, 0.0), rho)
        return rho**2 * math.acos(u / rho) - u * math.sqrt(rho**2 - u**2)

    def area_left_mm2(self, x_mm: float) -> float:
        """Area of the stadium with x ≤ ``x_mm``."""
        ell, rho = self.half_straight_mm, self.radius_mm
        if x_mm <= -ell - rho:
            return 0.0
        if x_mm >= ell + rho:
            return self.area_mm2
        if x_mm < -ell:
            return self._cap_mm2(-ell - x_mm)
        if x_mm <= ell:
            return math.pi * rho**2 / 2.0 + 2.0 * rho * (x_mm + ell)
        return self.area_mm2 - self._cap_mm2(x_mm - ell)


@dataclass(frozen=True)
class Ellipse:
    """An ellipse with semi-axes ``a_mm`` along x and ``b_mm`` along y (an oval)."""

    a_mm: float
    b_mm: float
    convex: ClassVar[bool] = True

    @property
    def area_mm2(self) -> float:
        return math.pi * self.a_mm * self.b_mm

    @property
    def perimeter_mm(self) -> float:
        """Exact perimeter, ``4 a E(1 − b²/a²)`` with the complete elliptic integral E."""
        a, b = max(self.a_mm, self.b_mm), min(self.a_mm, self.b_mm)
        return float(4.0 * a * special.ellipe(1.0 - (b / a) ** 2))

    @property
    def length_mm(self) -> float:
        return 2.0 * self.a_mm

    @property
    def width_mm(self) -> float:
        return 2.0 * self.b_mm

    @property
    def thinnest_mm(self) -> float:
        return 2.0 * min(self.a_mm, self.b_mm)

    def scaled(self, k: float) -> Ellipse:
        return Ellipse(k * self.a_mm, k * self.b_mm)

    def offset(self, s_mm: float) -> OffsetEllipse:
        return OffsetEllipse(self.a_mm, self.b_mm, s_mm)

    def ray_angle(self, phi: float) -> float:
        """True polar angle of the point at parametric (circle-space) angle ``phi``."""
        return math.atan2(self.b_mm * math.sin(phi), self.a_mm * math.cos(phi))

    @cached_property
    def polygon(self) -> Polygon:
        t = 2.0 * math.pi * (np.arange(OUTLINE_SECTIONS) + 0.5) / OUTLINE_SECTIONS
        ring = np.column_stack([self.a_mm * np.cos(t), self.b_mm * np.sin(t)])
        return Polygon(_area_scaled(ring, self.area_mm2))

    def gauge(self, x: FloatArray, y: FloatArray) -> FloatArray:
        return np.asarray(np.hypot(x / self.a_mm, y / self.b_mm), dtype=np.float64)


@dataclass(frozen=True)
class OffsetEllipse:
    """The outward parallel of an ellipse at distance ``offset_mm``: the outline of an oval
    tablet under a shell of that thickness, whose drug region is the exact ellipse.

    Its area follows Steiner's formula, ``A + P s + π s²``, exact for the outer parallel
    body of any convex figure; it is not itself an ellipse.
    """

    a_mm: float
    b_mm: float
    offset_mm: float
    convex: ClassVar[bool] = True

    @property
    def core(self) -> Ellipse:
        return Ellipse(self.a_mm, self.b_mm)

    @property
    def area_mm2(self) -> float:
        s = self.offset_mm
        return self.core.area_mm2 + self.core.perimeter_mm * s + math.pi * s**2

    @property
    def length_mm(self) -> float:
        return 2.0 * (self.a_mm + self.offset_mm)

    @property
    def width_mm(self) -> float:
        return 2.0 * (self.b_mm + self.offset_mm)

    @property
    def thinnest_mm(self) -> float:
        return 2.0 * (min(self.a_mm, self.b_mm) + self.offset_mm)

    def scaled(self, k: float) -> OffsetEllipse:
        return OffsetEllipse(k * self.a_mm, k * self.b_mm, k * self.offset_mm)

    def offset(self, s_mm: float) -> OffsetEllipse:
        return OffsetEllipse(self.a_mm, self.b_mm, self.offset_mm + s_mm)

    @cached_property
    def polygon(self) -> Polygon:
        grown = orient(self.core.polygon.buffer(self.offset_mm, quad_segs=16), 1.0)
        ring = np.asarray(shapely.get_coordinates(grown.exterior))[:-1]
        return Polygon(_area_scaled(ring, self.area_mm2))

    @cached_property
    def _edges(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Polar angles of the polygon's vertices (increasing, from −π), and the outward
        unit normals of the edges that start at them with their distances from the
        centre."""
        ring = np.asarray(shapely.get_coordinates(self.polygon.exterior))[:-1]
        angles = np.arctan2(ring[:, 1], ring[:, 0])
        start = int(np.argmin(angles))
        ring, angles = np.roll(ring, -start, axis=0), np.roll(angles, -start)
        d = np.roll(ring, -1, axis=0) - ring
        normals = np.column_stack([d[:, 1], -d[:, 0]])
        normals /= np.linalg.norm(normals, axis=1)[:, None]
        support = np.einsum("ij,ij->i", normals, ring)
        return angles, normals, support

    def gauge(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Gauge of the meshing polygon (the smooth curve has no closed-form gauge): the
        ray from the centre through a point leaves the convex polygon through one edge,
        found by the point's polar angle, and the gauge is ``n·p / h`` of that edge."""
        angles, normals, support = self._edges
        px, py = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        edge = (np.searchsorted(angles, np.arctan2(py, px), side="right") - 1) % len(angles)
        n = normals[edge]
        return np.asarray((n[..., 0] * px + n[..., 1] * py) / support[edge], dtype=np.float64)


@dataclass(frozen=True)
class Annulus:
    """A disc of ``radius_mm`` with a concentric hole of ``hole_radius_mm`` (a ring)."""

    radius_mm: float
    hole_radius_mm: float
    convex: ClassVar[bool] = False

    @property
    def area_mm2(self) -> float:
        return math.pi * (self.radius_mm**2 - self.hole_radius_mm**2)

    @property
    def length_mm(self) -> float:
        return 2.0 * self.radius_mm

    @property
    def width_mm(self) -> float:
        return 2.0 * self.radius_mm

    @property
    def thinnest_mm(self) -> float:
        """The ring's wall, outer radius minus hole radius."""
        return self.radius_mm - self.hole_radius_mm

    def offset(self, s_mm: float) -> Annulus:
        """Grow the outside and shrink the hole by ``s_mm`` (the hole face is outside too)."""
        return Annulus(self.radius_mm + s_mm, self.hole_radius_mm - s_mm)

    @cached_property
    def polygon(self) -> Polygon:
        outer = _regular_ring(self.radius_mm, OUTLINE_SECTIONS)
        hole = _regular_ring(self.hole_radius_mm, OUTLINE_SECTIONS)[::-1]
        return Polygon(outer, [hole])


ConvexOutline: TypeAlias = Circle | Stadium | Ellipse | OffsetEllipse
"""Outlines a dome can be built over (homothetic scaling keeps them inside themselves)."""

Outline: TypeAlias = ConvexOutline | Annulus


# Dome integrals


def dome_volume_within_mm3(area_mm2: float, scale: float, dome_mm: float) -> float:
    """Volume of a dome over an outline of ``area_mm2`` that lies above the outline
    scaled by ``scale`` (0 ≤ scale ≤ 1): ``A ∫₀ᵈ min(s(z)², scale²) dz``.

    Above ``z_r = d sqrt(1 − r²)`` the dome's section is smaller than the scaled outline,
    below it the scaled outline is the smaller.
    """
    if dome_mm <= 0.0:
        return 0.0
    r = min(max(scale, 0.0), 1.0)
    z_r = dome_mm * math.sqrt(1.0 - r * r)
    upper = (dome_mm - z_r) - (dome_mm**3 - z_r**3) / (3.0 * dome_mm**2)
    return area_mm2 * (r * r * z_r + upper)


def dome_column_mm3(
    outline: ConvexOutline, x_mm: float, y_mm: float, radius_mm: float, dome_mm: float
) -> float:
    """Volume of a dome of height ``dome_mm`` over ``outline`` that lies above the disc of
    ``radius_mm`` centred at (``x_mm``, ``y_mm``): ``d ∫∫_disc sqrt(1 − g²) dA``.

    The disc must lie inside the outline. Evaluated with Gauss–Legendre nodes across the
    radius and the trapezoid rule around it (see ``_COLUMN_RADIAL_NODES``).
    """
    if dome_mm <= 0.0:
        return 0.0
    nodes, weights = _GAUSS_LEGENDRE
    r = (nodes + 1.0) * radius_mm / 2.0
    w_r = weights * radius_mm / 2.0 * r
    theta = 2.0 * math.pi * np.arange(_COLUMN_ANGULAR_STEPS) / _COLUMN_ANGULAR_STEPS
    xs = x_mm + r[:, None] * np.cos(theta)[None, :]
    ys = y_mm + r[:, None] * np.sin(theta)[None, :]
    g = outline.gauge(xs, ys)
    height = np.sqrt(np.clip(1.0 - g * g, 0.0, None))
    step = 2.0 * math.pi / _COLUMN_ANGULAR_STEPS
    return dome_mm * step * float(np.sum(w_r[:, None] * height))


def dome_wedge_column_mm3(
    outline: Circle | Ellipse, radius_mm: float, theta0: float, theta1: float, dome_mm: float
) -> float:
    """Dome volume above the part of a centred disc of ``radius_mm`` between the true polar
    angles ``theta0 < theta1`` (a central channel split between pie segments).

    Along a ray of angle θ the gauge is ``r q(θ)`` with ``q² = cos²θ/a² + sin²θ/b²``, so the
    radial integral is closed: ``d (1 − (1 − ρ²q²)^{3/2}) / (3 q²)``.
    """
    if dome_mm <= 0.0 or theta1 <= theta0:
        return 0.0
    if isinstance(outline, Circle):
        a = b = outline.radius_mm
    else:
        a, b = outline.a_mm, outline.b_mm

    def radial(theta: float) -> float:
        q2 = math.cos(theta) ** 2 / a**2 + math.sin(theta) ** 2 / b**2
        return float((1.0 - math.sqrt(1.0 - radius_mm**2 * q2) ** 3) / (3.0 * q2))

    if a == b:
        return dome_mm * radial(0.0) * (theta1 - theta0)
    value, _ = integrate.quad(radial, theta0, theta1, epsabs=1e-15, epsrel=1e-13, limit=200)
    return dome_mm * float(value)


def stadium_volume_left_mm3(
    outline: Stadium, x_mm: float, band_mm: float, domes_mm: float
) -> float:
    """Volume with x ≤ ``x_mm`` of a stadium prism of height ``band_mm`` plus domes whose
    heights sum to ``domes_mm``.

    At dome scale ``s`` the part left of ``x`` has area ``s² P(x/s)``, with ``P`` the
    stadium's area left of a cut; substituting ``z = d sin θ`` gives
    ``d ∫₀^{π/2} cos³θ P(x / cos θ) dθ``, integrated piecewise between the angles where
    ``x / cos θ`` meets the ends of the straight part and of the stadium.
    """
    band = band_mm * outline.area_left_mm2(x_mm)
    if domes_mm <= 0.0:
        return band
    ax = abs(x_mm)
    ell, rho = outline.half_straight_mm, outline.radius_mm
    breaks = sorted(math.acos(ax / v) for v in (ell, ell + rho) if v > ax)

    def integrand(theta: float) -> float:
        c = math.cos(theta)
        if c <= 0.0:
            return 0.0
        return c**3 * outline.area_left_mm2(x_mm / c)

    value, _ = integrate.quad(integrand, 0.0, math.pi / 2.0, points=breaks or None,
                              epsabs=1e-14 * outline.area_mm2, epsrel=1e-13, limit=200)
    return band + domes_mm * float(value)
