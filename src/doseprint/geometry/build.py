"""Sizing a tablet to its compartment volumes, and checking it against the limits.

Coordinates: millimetres, base of the tablet at z = 0, centred at x = y = 0, the long
axis of caplets and ovals along x.

The free size is solved, not searched: the tablet's width ``W`` (its smallest XY extent:
the diameter of a cylinder or ring, the width of a caplet or oval) and its height ``H``
(total, domes included) are tied by ``H = aspect × W`` unless the prescription fixes one
of them, and the one equation "drug-loaded volume = ΣV_i" (channels subtracted, shell
excluded) fixes the rest; the drug-loaded volume grows with ``W``, so Brent's method
finds it to machine precision. The layout then places its interfaces (see
:mod:`doseprint.geometry.layouts`) and every limit is checked; a broken limit is
reported with its numbers, and with the nearest volumes that would pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from scipy import optimize
from shapely.geometry import MultiPolygon, Point

from doseprint.errors import InfeasibleDesignError, InputError, Problem
from doseprint.geometry.layouts import (
    LAYOUT_KINDS,
    Body,
    Channel,
    DimensionValue,
    Measure,
    Partition,
    divide,
)
from doseprint.geometry.shapes import (
    Annulus,
    Circle,
    ConvexOutline,
    Ellipse,
    Outline,
    Stadium,
    dome_column_mm3,
)
from doseprint.geometry.sized import CompartmentGeometry, MeshCache, TabletGeometry
from doseprint.geometry.solids import Difference, DomedPrism, Prism, Solid
from doseprint.geometry.spec import SizeLimits, TabletSpec, positive
from doseprint.typed import CompartmentRole

__all__ = [
    "FIXED_MATCH_REL",
    "check_volumes",
    "frame_at",
    "size_frame",
    "size_tablet",
    "smallest_width_mm",
    "solve_width",
    "try_size_tablet",
]

_REPORT_REL = 1e-3
"""Precision of the nearest printable volumes quoted in messages (three figures)."""

FIXED_MATCH_REL = 1e-9
"""Fixing every dimension is accepted only if they already carry the volumes this closely
(as when a solved geometry's own dimensions are passed back)."""

# Frames: the tablet at a given width and height


@dataclass(frozen=True)
class _Frame:
    """The tablet at width ``width_mm`` and height ``height_mm``, before division."""

    outer: Outline
    width_mm: float
    height_mm: float
    dome_bottom_mm: float
    dome_top_mm: float
    body: Body
    shell_mm: float
    shell_channel_loss_mm3: float

    @property
    def outer_solid(self) -> DomedPrism:
        band = self.height_mm - self.dome_bottom_mm - self.dome_top_mm
        return DomedPrism(self.outer, 0.0, band, self.dome_bottom_mm, self.dome_top_mm,
                          medium=True)

    @property
    def outer_volume_mm3(self) -> float:
        a = self.outer.area_mm2
        return a * (self.height_mm - (self.dome_bottom_mm + self.dome_top_mm) / 3.0)


def _ratio(spec: TabletSpec) -> float:
    if spec.shape in ("caplet", "oval") and spec.length_mm is not None \
            and spec.width_mm is not None:
        return spec.length_mm / spec.width_mm
    return spec.caplet_ratio if spec.shape == "caplet" else spec.oval_ratio


def _outlines(spec: TabletSpec, width_mm: float) -> tuple[Outline, Outline]:
    """The tablet's outline and the drug body's outline at tablet width ``width_mm``."""
    w, s = width_mm, spec.shell_mm
    if spec.shape == "cylinder":
        return Circle(w / 2.0), Circle(w / 2.0 - s)
    if spec.shape == "ring":
        hole = spec.ring_ratio * w / 2.0
        return Annulus(w / 2.0, hole), Annulus(w / 2.0 - s, hole + s)
    length = _ratio(spec) * w
    if spec.shape == "caplet":
        half_straight = (length - w) / 2.0
        return Stadium(half_straight, w / 2.0), Stadium(half_straight, w / 2.0 - s)
    inner = Ellipse(length / 2.0 - s, w / 2.0 - s)
    return (inner.offset(s) if s > 0.0 else inner), inner


def smallest_width_mm(spec: TabletSpec) -> float:
    """Narrowest tablet width whose drug body still has a positive size."""
    s = spec.shell_mm
    if spec.shape == "ring":
        return 4.0 * s / (1.0 - spec.ring_ratio)
    return 2.0 * s


def _channel_sites(spec: TabletSpec, body: Outline) -> list[tuple[float, float]]:
    n, k = spec.channels, spec.channel_spread
    if n == 0:
        return []
    if n == 1 and not isinstance(body, Annulus):
        return [(0.0, 0.0)]
    if isinstance(body, Stadium):
        half = k * body.length_mm / 2.0
        return [(half * (2.0 * j / (n - 1) - 1.0), 0.0) for j in range(n)]
    phis = [(2 * j + 1) * math.pi / n for j in range(n)]
    if isinstance(body, Annulus):
        r = body.hole_radius_mm + k * (body.radius_mm - body.hole_radius_mm)
        return [(r * math.cos(p), r * math.sin(p)) for p in phis]
    if isinstance(body, Circle):
        return [(k * body.radius_mm * math.cos(p), k * body.radius_mm * math.sin(p))
                for p in phis]
    assert isinstance(body, Ellipse)
    return [(k * body.a_mm * math.cos(p), k * body.b_mm * math.sin(p)) for p in phis]


def _columns(
    outline: Outline, sites: list[tuple[float, float]], radius_mm: float, dome_mm: float
) -> list[float]:
    """Dome volume above each channel (symmetric sites are computed once)."""
    if dome_mm <= 0.0 or not sites:
        return [0.0 for _ in sites]
    assert isinstance(outline, ConvexOutline)
    done: dict[tuple[float, float], float] = {}
    out = []
    for x, y in sites:
        key = (round(abs(x), 9), round(abs(y), 9))
        if key not in done:
            done[key] = dome_column_mm3(outline, x, y, radius_mm, dome_mm)
        out.append(done[key])
    return out


def frame_at(spec: TabletSpec, width_mm: float, height_mm: float) -> _Frame:
    """The tablet of ``spec`` at tablet width ``width_mm`` and total height ``height_mm``:
    its outline, its drug body (with a shell: inset by the shell on every face, flat) and
    the channels with the dome volume above each. Pure arithmetic, no meshing."""
    outer, inner = _outlines(spec, width_mm)
    s = spec.shell_mm
    d_top = spec.dome_mm
    d_bottom = spec.dome_mm if spec.dome_faces == "both" else 0.0
    band = height_mm - d_top - d_bottom
    sites = _channel_sites(spec, inner)
    radius = spec.channel_mm / 2.0
    if s > 0.0:
        body_domes = (0.0, 0.0)
        z0, body_band = d_bottom + s, band - 2.0 * s
    else:
        body_domes = (d_bottom, d_top)
        z0, body_band = 0.0, band
    bottom = _columns(inner, sites, radius, body_domes[0])
    top = _columns(inner, sites, radius, body_domes[1])
    channels = tuple(Channel(x, y, spec.channel_mm, b, t)
                     for (x, y), b, t in zip(sites, bottom, top, strict=True))
    body = Body(inner, z0, body_band, body_domes[0], body_domes[1], channels,
                outside=s == 0.0)
    shell_loss = 0.0
    if s > 0.0 and sites:
        area = math.pi * radius**2
        shell_loss = sum(area * (band - body_band) for _ in sites)
        shell_loss += sum(_columns(outer, sites, radius, d_bottom))
        shell_loss += sum(_columns(outer, sites, radius, d_top))
    return _Frame(outer, width_mm, height_mm, d_bottom, d_top, body, s, shell_loss)


# Solving the size


def _fixed_width(spec: TabletSpec) -> float | None:
    if spec.shape in ("cylinder", "ring"):
        return spec.diameter_mm
    if spec.width_mm is not None:
        return spec.width_mm
    if spec.length_mm is not None:
        return spec.length_mm / _ratio(spec)
    return None


def solve_width(
    spec: TabletSpec, target_mm3: float, height_of: Callable[[float], float]
) -> float:
    """Tablet width at which the drug volume reaches ``target_mm3``, the height being
    ``height_of(width)``; the drug volume grows with the width."""

    def excess(w: float) -> float:
        return frame_at(spec, w, height_of(w)).body.drug_volume_mm3 - target_mm3

    lo = smallest_width_mm(spec) * (1.0 + 1e-9) + 1e-9
    hi = max(2.0 * lo, 4.0)
    for _ in range(60):
        if excess(hi) > 0.0:
            break
        lo, hi = hi, 2.0 * hi
    else:
        raise InfeasibleDesignError(f"no tablet width carries {target_mm3:g} mm³",
                                    file="tablet")
    if excess(lo) > 0.0:
        return lo
    return float(optimize.brentq(excess, lo, hi, xtol=1e-14, rtol=1e-15, maxiter=200))


def size_frame(spec: TabletSpec, target_mm3: float) -> _Frame:
    """The frame whose drug body holds ``target_mm3``: the free one of width and height
    solved, the aspect used when neither is fixed.

    Raises
    ------
    InfeasibleDesignError
        Both are fixed and disagree with the volume, or a fixed height leaves no band.
    """
    width = _fixed_width(spec)
    height = spec.height_mm
    faces = spec.dome_mm * (2 if spec.dome_faces == "both" else 1)
    if height is not None and height <= faces + 2.0 * spec.shell_mm:
        raise InfeasibleDesignError(
            f"height_mm = {height:g} leaves no band between the domes ({faces:g} mm in all) "
            f"and the shell ({spec.shell_mm:g} mm on each face)", file="tablet")
    if width is not None and height is not None:
        frame = frame_at(spec, width, height)
        held = frame.body.drug_volume_mm3
        if abs(held / target_mm3 - 1.0) > FIXED_MATCH_REL:
            fixed = " and ".join(f"{k} = {v:g}" for k, v in spec.fixed.items())
            raise InfeasibleDesignError(
                f"with {fixed} fixed the tablet holds {held:.2f} mm³ of drug-loaded "
                f"material, but the compartments need {target_mm3:.2f} mm³: fix the height "
                "or the size in XY, not both (the other is solved)", file="tablet")
        return frame
    if width is not None:
        # The drug volume is affine in the height at a fixed width.
        h0 = faces + 2.0 * spec.shell_mm
        v0 = frame_at(spec, width, h0).body.drug_volume_mm3
        v1 = frame_at(spec, width, h0 + 1.0).body.drug_volume_mm3
        if v1 <= v0:
            raise InfeasibleDesignError(
                f"at width {width:g} mm the channels leave no drug-loaded section",
                file="tablet")
        return frame_at(spec, width, h0 + (target_mm3 - v0) / (v1 - v0))
    if height is not None:
        fixed_height = height
        width = solve_width(spec, target_mm3, lambda w: fixed_height)
        return frame_at(spec, width, fixed_height)
    aspect = spec.aspect
    width = solve_width(spec, target_mm3, lambda w: aspect * w)
    return frame_at(spec, width, aspect * width)


# Checks


@dataclass(frozen=True)
class _Violation:
    kind: Literal["small", "large", "other"]
    key: str
    message: str
    compartment: int | None = None


class _NoBand(Exception):
    """The domes alone hold more than the compartments need: nothing to divide."""

    def __init__(self, violation: _Violation) -> None:
        super().__init__(violation.message)
        self.violation = violation


@dataclass(frozen=True)
class _Plan:
    frame: _Frame
    partition: Partition
    clearances: tuple[float, ...]
    violations: tuple[_Violation, ...]


def _measure_violation(
    m: Measure, who: str, limits: SizeLimits, compartment: int | None
) -> _Violation | None:
    if m.axis == "xy":
        if m.value_mm >= limits.min_wall_mm * (1.0 - 1e-12):
            return None
        return _Violation("small", f"{who}/{m.what}", f"{who}: {m.what} {m.value_mm:.2f} mm "
                          f"is below min_wall_mm {limits.min_wall_mm:g}", compartment)
    need = limits.min_z_mm(m.first_layer)
    if m.value_mm >= need * (1.0 - 1e-12):
        return None
    n = limits.min_layers
    if m.value_mm <= 0.0:
        return _Violation("small", f"{who}/{m.what}", f"{who} gets no {m.what} "
                          f"({m.value_mm:.2f} mm): the dome it carries already holds more "
                          "than its volume", compartment)
    layers = (f"{n} layers ({limits.first_layer_mm:g} mm first + {n - 1} × "
              f"{limits.layer_mm:g} mm = {need:.2f} mm)" if m.first_layer and
              limits.first_layer_mm != limits.layer_mm
              else f"{n} layers of {limits.layer_mm:g} mm ({need:.2f} mm)")
    return _Violation("small", f"{who}/{m.what}", f"{who} is {m.value_mm:.2f} mm thick "
                      f"({m.what}), below {layers}", compartment)


def _clearances(frame: _Frame, partition: Partition, limits: SizeLimits,
                ) -> tuple[tuple[float, ...], list[_Violation]]:
    """Wall left by each channel to the body's outline, the interfaces and the other
    channels; a violation for each below the minimum wall."""
    body = frame.body
    out: list[float] = []
    bad: list[_Violation] = []
    rim = body.outline.polygon.boundary
    for j, c in enumerate(body.channels):
        centre = Point(c.x_mm, c.y_mm)
        walls = [(rim.distance(centre) - c.radius_mm, "the tablet's outline"
                  if frame.shell_mm == 0 else "the shell")]
        for face in partition.interfaces:
            if c.central and face.shared_by_centre:
                continue
            walls.append((face.curve.distance(centre) - c.radius_mm, face.label))
        for i, other in enumerate(body.channels):
            if i != j:
                gap = math.hypot(other.x_mm - c.x_mm, other.y_mm - c.y_mm) - c.diameter_mm
                walls.append((gap, f"channel {i}"))
        if not body.outline.polygon.contains(centre):
            walls.append((-c.radius_mm, "the tablet's outline"))
        wall, what = min(walls)
        out.append(wall)
        if wall < limits.min_wall_mm * (1.0 - 1e-12):
            left = (f"cuts {-wall:.2f} mm into {what}" if wall < 0.0
                    else f"leaves a {wall:.2f} mm wall to {what}")
            bad.append(_Violation(
                "other", f"channel {j}", f"channel {j} at ({c.x_mm:.2f}, {c.y_mm:.2f}) mm "
                f"{left}, below min_wall_mm {limits.min_wall_mm:g}; change channel_spread, "
                "the channel count or channel_mm"))
    if len(bad) > 1:
        # Channels sit symmetrically, so they usually fail together: say so once.
        others = ", ".join(v.key.split()[-1] for v in bad[1:])
        bad = [replace(bad[0], message=f"{bad[0].message} (channels {others} likewise)")]
    return tuple(out), bad


def _plan(spec: TabletSpec, volumes: tuple[float, ...], limits: SizeLimits) -> _Plan:
    """Size, divide and check; raise only for what no volume can fix."""
    frame = size_frame(spec, sum(volumes))
    body = frame.body
    if body.band_mm <= 0.0:
        domes = body.volume_mm3 - body.outline.area_mm2 * body.band_mm
        raise _NoBand(_Violation(
            "small", "band", f"the domes alone hold {domes:.1f} mm³, more than the "
            f"{sum(volumes):.1f} mm³ the compartments need at this size; lower dome_mm or "
            "raise the fixed size"))
    partition = divide(spec.layout, body, volumes, core_wall_ratio=spec.core_wall_ratio,
                       clearance_mm=limits.min_wall_mm)
    bad: list[_Violation] = []
    s = spec.shell_mm
    if 0.0 < s:
        for m in (Measure("shell", s, "xy"),
                  Measure("shell", s, "z", frame.dome_bottom_mm == 0.0)):
            v = _measure_violation(m, "the shell", limits, None)
            if v is not None:
                bad.append(replace(v, kind="other"))
    if spec.channels and spec.channel_mm < limits.min_wall_mm:
        bad.append(_Violation("other", "channel_mm", f"channel diameter {spec.channel_mm:g} mm "
                              f"is below min_wall_mm {limits.min_wall_mm:g}: it would print "
                              "closed"))
    if isinstance(frame.outer, Annulus):
        hole = 2.0 * frame.outer.hole_radius_mm
        if hole < limits.min_wall_mm:
            bad.append(_Violation("small", "ring hole", f"the ring's hole {hole:.2f} mm is "
                                  f"below min_wall_mm {limits.min_wall_mm:g}: it would print "
                                  "closed"))
        assert isinstance(body.outline, Annulus)
        v = _measure_violation(Measure("ring wall", body.outline.thinnest_mm, "xy"),
                               "the tablet", limits, None)
        if v is not None:
            bad.append(v)
    # A shared thickness (the band of full-height layouts) is the tablet's, fixed by
    # scaling every volume together; the others are one compartment's.
    shared_done: set[str] = set()
    for part in partition.parts:
        for m in part.measures:
            if m.shared:
                if m.what in shared_done:
                    continue
                shared_done.add(m.what)
                v = _measure_violation(m, "the tablet", limits, None)
            else:
                v = _measure_violation(m, f"compartment {part.index}", limits, part.index)
            if v is not None:
                bad.append(v)
    clearances, channel_bad = _clearances(frame, partition, limits)
    bad += channel_bad
    longest, name = max((frame.outer.length_mm, "length" if spec.shape in ("caplet", "oval")
                         else "diameter"), (frame.height_mm, "height"))
    if longest > limits.max_length_mm * (1.0 + 1e-12):
        bad.append(_Violation("large", "longest", f"longest dimension {longest:.1f} mm "
                              f"({name}) exceeds max_length_mm = {limits.max_length_mm:g}"))
    return _Plan(frame, partition, clearances, tuple(bad))


def _still_violated(
    spec: TabletSpec, volumes: tuple[float, ...], limits: SizeLimits, key: str
) -> bool | None:
    try:
        plan = _plan(spec, volumes, limits)
    except _NoBand as exc:
        return exc.violation.key == key
    except InfeasibleDesignError:
        return None
    return any(v.key == key for v in plan.violations)


def _smallest_volumes(
    spec: TabletSpec, volumes: tuple[float, ...], limits: SizeLimits, v: _Violation
) -> tuple[float, ...] | None:
    """The volumes, grown by the least factor (compartment ``v.compartment`` alone, or
    all together), at which violation ``v`` goes away; None if none up to 2⁴⁰."""

    def grown(k: float) -> tuple[float, ...]:
        if v.compartment is None:
            return tuple(k * x for x in volumes)
        return tuple(k * x if i == v.compartment else x for i, x in enumerate(volumes))

    lo, hi = 1.0, 2.0
    while _still_violated(spec, grown(hi), limits, v.key) is not False:
        lo, hi = hi, 2.0 * hi
        if hi > 2.0**40:
            return None
    while hi / lo - 1.0 > _REPORT_REL:
        mid = math.sqrt(lo * hi)
        if _still_violated(spec, grown(mid), limits, v.key) is False:
            hi = mid
        else:
            lo = mid
    return grown(hi)


def _largest_volumes(
    spec: TabletSpec, volumes: tuple[float, ...], limits: SizeLimits
) -> tuple[float, ...] | None:
    lo, hi = 0.0, 1.0
    while hi - lo > _REPORT_REL * max(lo, 1e-3):
        mid = (lo + hi) / 2.0
        ok = _still_violated(spec, tuple(mid * x for x in volumes), limits, "longest")
        if ok is None:
            return None
        if ok:
            hi = mid
        else:
            lo = mid
    return tuple(lo * x for x in volumes) if lo > 0.0 else None


def _fmt(volumes: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.3g}" for v in volumes)


def _explain(
    spec: TabletSpec, volumes: tuple[float, ...], limits: SizeLimits,
    violations: tuple[_Violation, ...],
) -> InfeasibleDesignError:
    """The error for a plan that breaks limits: every violation, with the nearest
    printable volumes for the first too-small and the first too-large one."""
    messages = []
    small_done = large_done = False
    smallest: tuple[float, ...] | None = None
    largest: tuple[float, ...] | None = None
    for v in violations:
        text = v.message
        if v.kind == "small" and not small_done:
            small_done = True
            best = _smallest_volumes(spec, volumes, limits, v)
            smallest = best
            if best is not None and v.compartment is not None:
                text += (f"; the smallest printable volume of compartment {v.compartment} "
                         f"with this design is {best[v.compartment]:.3g} mm³")
            elif best is not None:
                text += (f"; the smallest printable volumes at these proportions are "
                         f"{_fmt(best)} mm³ (total {sum(best):.3g} mm³)")
        elif v.kind == "large" and not large_done:
            large_done = True
            best = _largest_volumes(spec, volumes, limits)
            largest = best
            if best is not None:
                text += (f"; the largest volumes at these proportions are {_fmt(best)} mm³ "
                         f"(total {sum(best):.4g} mm³)")
        messages.append(Problem("tablet", "", text))
    error = InfeasibleDesignError(messages)
    # For a designer that converts volumes into doses: the nearest printable volumes.
    error.smallest_volumes_mm3 = smallest  # type: ignore[attr-defined]
    error.largest_volumes_mm3 = largest  # type: ignore[attr-defined]
    return error


# Public entry points


def check_volumes(spec: TabletSpec, volumes_mm3: Sequence[float]) -> tuple[float, ...]:
    """The volumes as floats, or InputError: a count the layout does not take, or a
    volume that is not a positive number."""
    lo, hi = LAYOUT_KINDS[spec.layout].compartments
    n = len(volumes_mm3)
    if not lo <= n <= hi:
        many = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise InputError(f"layout {spec.layout!r} takes {many} compartments, got {n} "
                         "volumes", file="tablet spec", key="layout")
    bad = [Problem("tablet spec", f"volumes_mm3[{i}]",
                   f"must be a positive number of mm³, got {v!r}")
           for i, v in enumerate(volumes_mm3) if not positive(v)]
    if bad:
        raise InputError(bad)
    return tuple(float(v) for v in volumes_mm3)


def _dimensions(spec: TabletSpec, frame: _Frame, partition: Partition,
                ) -> tuple[tuple[str, DimensionValue], ...]:
    outer = frame.outer
    dims: list[tuple[str, DimensionValue]] = []
    if isinstance(outer, Circle):
        dims.append(("diameter", outer.length_mm))
    elif isinstance(outer, Annulus):
        dims += [("diameter", outer.length_mm), ("inner_diameter", 2 * outer.hole_radius_mm)]
    else:
        dims += [("length", outer.length_mm), ("width", outer.width_mm)]
    dims.append(("height", frame.height_mm))
    if spec.dome_mm > 0.0:
        dims += [("dome", spec.dome_mm),
                 ("band_height", frame.height_mm - frame.dome_top_mm - frame.dome_bottom_mm)]
    if spec.shell_mm > 0.0:
        dims.append(("shell", spec.shell_mm))
    if spec.channels:
        dims.append(("channel_diameter", spec.channel_mm))
    return (*dims, *partition.dimensions)


def size_tablet(
    spec: TabletSpec, volumes_mm3: Sequence[float], limits: SizeLimits | None = None
) -> TabletGeometry:
    """Size a tablet so that drug-loaded compartment i holds ``volumes_mm3[i]``.

    The analytic volume of each drug-loaded compartment equals its V_i to about 1e-12
    relative (channels and shell accounted for). Meshes are built on first access to a
    compartment's ``mesh`` or ``exposed_area_mm2``, so sizing many candidates is cheap.

    Parameters
    ----------
    spec : TabletSpec
        Shape, layout, proportions and fixed dimensions.
    volumes_mm3 : sequence of float, mm³
        Volume of each drug-loaded compartment (envelope volume: the caller divides the
        drug-loaded material volume by the infill).
    limits : SizeLimits, optional
        Printing and swallowing limits; defaults to ``SizeLimits()``.

    Returns
    -------
    TabletGeometry

    Raises
    ------
    InputError
        The layout takes a different number of compartments, or a volume is not positive.
    InfeasibleDesignError
        A limit is broken (each message names the binding constraint and its numbers;
        too-small compartments get the smallest printable volume, too-long tablets the
        largest), too many dimensions are fixed, or a channel cannot be placed.
    """
    limits = limits or SizeLimits()
    volumes = check_volumes(spec, volumes_mm3)
    try:
        plan = _plan(spec, volumes, limits)
    except _NoBand as exc:
        raise _explain(spec, volumes, limits, (exc.violation,)) from None
    if plan.violations:
        raise _explain(spec, volumes, limits, plan.violations)
    return _geometry(spec, volumes, limits, plan)


def try_size_tablet(
    spec: TabletSpec, volumes_mm3: Sequence[float], limits: SizeLimits | None = None
) -> TabletGeometry | None:
    """:func:`size_tablet`, or None where it would raise InfeasibleDesignError.

    Skips the search for the nearest printable volumes that an error message carries, so
    scanning many candidate designs stays cheap; call :func:`size_tablet` for the reason.

    Raises
    ------
    InputError
        As :func:`size_tablet`, for a wrong number of volumes or a bad volume.
    """
    limits = limits or SizeLimits()
    volumes = check_volumes(spec, volumes_mm3)
    try:
        plan = _plan(spec, volumes, limits)
    except (_NoBand, InfeasibleDesignError):
        return None
    return None if plan.violations else _geometry(spec, volumes, limits, plan)


def _geometry(
    spec: TabletSpec, volumes: tuple[float, ...], limits: SizeLimits, plan: _Plan
) -> TabletGeometry:
    frame, partition = plan.frame, plan.partition
    body = frame.body
    k = len(partition.parts)
    # Which compartments each channel runs through, for their thinnest walls.
    through: list[set[int]] = []
    for owner in partition.channel_owners:
        if LAYOUT_KINDS[spec.layout].stacked or owner < 0:
            through.append(set(range(k)))
        else:
            through.append({owner})
    solids: list[Solid] = [p.solid for p in partition.parts]
    analytic = [p.volume_mm3 for p in partition.parts]
    info: list[tuple[CompartmentRole, int, float, tuple[float, float], float]] = []
    for p in partition.parts:
        walls = [m.value_mm for m in p.measures]
        walls += [plan.clearances[j] for j, ids in enumerate(through) if p.index in ids]
        info.append(("api", p.index, p.volume_mm3, p.z_range_mm, min(walls)))
    envelope = frame.outer_volume_mm3 - body.channel_loss_mm3 - frame.shell_channel_loss_mm3
    if spec.shell_mm > 0.0:
        cuts: tuple[Solid, ...] = (Prism(body.outline.polygon, *body.band_z_mm),)
        if body.channels:
            holes = MultiPolygon([c.polygon for c in body.channels])
            cuts += (Prism(holes, -1.0, frame.height_mm + 1.0, medium=True),)
        solids.append(Difference(frame.outer_solid, cuts))
        shell_volume = envelope - body.drug_volume_mm3
        analytic.append(shell_volume)
        info.append(("shell", -1, shell_volume, (0.0, frame.height_mm), spec.shell_mm))
    envelope_solid: Solid = frame.outer_solid
    if body.channels:
        envelope_solid = Difference(envelope_solid, (Prism(
            MultiPolygon([c.polygon for c in body.channels]), -1.0, frame.height_mm + 1.0,
            medium=True),))
    meshes = MeshCache(tuple(solids), tuple(analytic), envelope_solid)
    compartments = tuple(
        CompartmentGeometry(role, index, volume, z_range, thinnest, solid, pos, meshes)
        for pos, ((role, index, volume, z_range, thinnest), solid)
        in enumerate(zip(info, solids, strict=True)))
    outer = frame.outer
    return TabletGeometry(
        spec=spec,
        limits=limits,
        volumes_mm3=volumes,
        compartments=compartments,
        envelope_volume_mm3=envelope,
        longest_mm=max(outer.length_mm, outer.width_mm, frame.height_mm),
        height_mm=frame.height_mm,
        footprint_radius_mm=max(outer.length_mm, outer.width_mm) / 2.0,
        channel_xy_mm=tuple((c.x_mm, c.y_mm) for c in body.channels),
        dimensions=_dimensions(spec, frame, partition),
    )
