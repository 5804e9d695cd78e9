"""Design tablets of any shape and layout, for one to four actives, with the sized
geometry of :mod:`doseprint.geometry` and the shape-factor release estimate.

The search is exhaustive over a small, explicit set: shapes (the prescription's, or
cylinder and caplet for ``auto``), layouts (the prescription's, or those that suit the
number of actives), proportions (:data:`ASPECTS`) and the formulations of each API. Every
candidate is sized so each compartment carries its dose exactly, its height put on whole
layers where the layout allows (:func:`~doseprint.geometry.layering.snap_to_layers`), and
refused if printing it in whole layers would move any compartment's volume by more than
:data:`MAX_LAYER_ERROR`. The first design, by score, whose every API meets its target
wins; the result is the same for the same input.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import minimize_scalar

from doseprint.design.designed import DesignedTablet
from doseprint.errors import InfeasibleDesignError, InputError, Problem
from doseprint.geometry.build import size_tablet, try_size_tablet
from doseprint.geometry.layering import layer_error, snap_to_layers
from doseprint.geometry.layouts import LAYOUT_KINDS
from doseprint.geometry.sized import TabletGeometry
from doseprint.geometry.spec import SizeLimits, TabletSpec
from doseprint.geometry.tablet import Compartment, TabletDesign
from doseprint.models.bead import bead_spacing_mm
from doseprint.models.formulation import Formulation
from doseprint.models.prescription import Active, Prescription
from doseprint.release.approx import equivalent_released, membrane_lag_s
from doseprint.release.metrics import judge_release, release_time_grid_h
from doseprint.release.predict import PredictedRelease
from doseprint.typed import LayoutName, ShapeName

ASPECTS = (0.3, 0.4, 0.5, 0.65, 0.8)
"""Height / width of the envelope tried for each shape and layout."""

MAX_LAYER_ERROR = 0.03
"""Largest change of a compartment's volume from printing in whole layers; the flow trim
(±5 %) must absorb it with room for the bead model's edge effects."""

SHELL_WALLS = (1.0, 1.5, 2.0, 2.5)
"""Shell thicknesses tried when the prescription names a shell but not its thickness, in
units of the thinnest wall the slicer can fill (``SizeLimits.min_wall_mm``, two beads)."""

DEFAULT_CHANNEL_MM = 1.0

LAYOUTS_FOR: dict[int, tuple[LayoutName, ...]] = {
    1: ("single",),
    2: ("bilayer", "segments", "rings", "core-shell"),
    3: ("multilayer", "segments", "rings"),
    4: ("multilayer", "segments", "rings"),
}
"""The layouts tried for each number of actives, in the order tried (each takes that many
compartments: :data:`~doseprint.geometry.layouts.LAYOUT_KINDS`)."""

MODEL = "shape-factor estimate (volume and exposed area)"


@dataclass(frozen=True)
class _Candidate:
    design: TabletDesign
    releases: tuple[PredictedRelease, ...]
    formulations: tuple[Formulation, ...]
    actives: tuple[Active, ...]
    aspect: float = 0.5
    """The height / width asked for (before the height was put on whole layers)."""

    @property
    def met(self) -> bool:
        return all(r.judgement.met for r in self.releases)


Confirm = Callable[[TabletDesign], tuple[str | None, tuple[PredictedRelease, ...] | None]]
"""Confirms a candidate the fast estimates accepted: slices it and predicts its release
with the full model. Returns (None, releases) when it holds, else (reason, None). The
designer takes the best candidate that passes, trying at most :data:`MAX_CONFIRM`."""

MAX_CONFIRM = 4
"""Candidates confirmed (each costs a slice and a 3D solve) before the designer gives up."""


EXPLORE_SHAPES: tuple[ShapeName, ...] = ("cylinder", "caplet", "ring", "oval")
EXPLORE_CHANNELS = (0, 2, 4)
EXPLORE_INFILLS = (0.6, 0.4)
"""With ``explore``: the shapes and channel counts tried when the prescription leaves
them open. A ring's hole and channels add surface, so they release faster than a solid
tablet of the same size: the levers when a plain tablet is too slow. A sparse infill
(:data:`EXPLORE_INFILLS`, printed as an open lattice) is the strongest: the medium
reaches every road."""

LATTICE_EXPOSURE = 0.35
"""Share of the roads' side area (``2 / spacing`` per volume of material) that the
estimate counts as exposed in an open lattice. Fitted to the 3D model with the slicer's
gaps on 100 mg theophylline (D = 5.9e-5 mm²/s) cylinders: at 50 % infill both give t80
0.28–0.29 h; at 30 % the 3D model is 1.9 times slower (0.37 h: the solid perimeters,
whose share grows as the infill thins, dominate), at 70 % 1.5 times faster (0.23 h). The
3D confirmation corrects the estimate by that ratio for the next candidate of the kind."""


def design_general(
    rx: Prescription,
    formulations: Mapping[str, Formulation],
    limits: SizeLimits,
    extruders: int,
    confirm: Confirm | None = None,
    *,
    explore: bool = False,
) -> tuple[DesignedTablet, ...]:
    """Design every tablet of ``rx`` (each distinct set of doses once).

    With ``explore``, shapes and channel counts the prescription leaves open are searched
    too (:data:`EXPLORE_SHAPES`, :data:`EXPLORE_CHANNELS`).

    Raises
    ------
    InputError
        More materials than the printer has extruders, or a layout that does not take
        this many actives.
    InfeasibleDesignError
        No candidate meets every target; the message gives the closest design.
    """
    actives = rx.actives
    n = len(actives)
    shell = formulations[rx.tablet.shell] if rx.tablet.has_shell else None
    materials = n + (1 if shell is not None else 0)
    if materials > extruders:
        raise InputError([Problem(rx.source, "actives",
                                  f"needs {materials} materials ({n} actives"
                                  f"{' and a shell' if shell else ''}) but the printer has "
                                  f"{extruders} extruder(s): choose a printer with more "
                                  "extruders or fewer materials")])
    layouts = _layouts(rx, n)
    doses_per_tablet = [tuple(rx.dose_mg(i, a.api) for a in actives)
                        for i in range(rx.dispense.units)]
    combos = list(itertools.product(*(_candidates(a, formulations) for a in actives)))
    chosen: dict[tuple[float, ...], _Candidate] = {}
    for doses in sorted(set(doses_per_tablet)):
        chosen[doses] = _design_doses(rx, doses, combos, layouts, shell, limits,
                                      doses_per_tablet.index(doses), confirm, explore)
    # One formulation per API across the batch keeps one tool per material.
    used = {tuple(f.id for f in c.formulations) for c in chosen.values()}
    if len(used) > 1:
        first = next(iter(chosen.values())).formulations
        for doses, cand in list(chosen.items()):
            if cand.formulations != first:
                chosen[doses] = _design_doses(rx, doses, [first], layouts, shell, limits,
                                              doses_per_tablet.index(doses), confirm,
                                              explore)
    return tuple(
        DesignedTablet(replace(chosen[d].design, index=i), chosen[d].releases)
        for i, d in enumerate(doses_per_tablet)
    )


def _layouts(rx: Prescription, n: int) -> tuple[LayoutName, ...]:
    asked = rx.tablet.layout
    if asked == "auto":
        return LAYOUTS_FOR[n]
    kind = LAYOUT_KINDS[asked]
    if not kind.takes(n):
        takes = " or ".join(str(k) for k in kind.counts)
        raise InputError([Problem(rx.source, "tablet.layout",
                                  f'"{asked}" takes {takes} actives; the prescription has {n}')])
    return (asked,)


def _shapes(rx: Prescription, explore: bool = False) -> tuple[ShapeName, ...]:
    if rx.tablet.shape != "auto":
        return (rx.tablet.shape,)
    return EXPLORE_SHAPES if explore else ("cylinder", "caplet")


def _channel_counts(rx: Prescription, explore: bool) -> tuple[int, ...]:
    if explore and rx.tablet.channels == 0 and rx.tablet.channel_mm is None:
        return EXPLORE_CHANNELS
    return (rx.tablet.channels,)


def _candidates(active: Active, formulations: Mapping[str, Formulation]) -> list[Formulation]:
    if active.formulation is not None:
        return [formulations[active.formulation]]
    return sorted((f for f in formulations.values() if f.api == active.api), key=lambda f: f.id)


def _spec(
    rx: Prescription, shape: ShapeName, layout: LayoutName, aspect: float,
    channels: int | None = None, shell_mm: float | None = None,
) -> TabletSpec:
    t = rx.tablet
    return TabletSpec(
        shape=shape,
        layout=layout,
        aspect=aspect,
        dome_mm=t.dome_mm if shape != "ring" else 0.0,
        dome_faces="top",
        shell_mm=shell_mm if shell_mm is not None else (t.shell_mm or 0.0),
        channels=t.channels if channels is None else channels,
        channel_mm=t.channel_mm or DEFAULT_CHANNEL_MM,
        diameter_mm=t.diameter_mm,
        height_mm=t.height_mm,
        length_mm=t.length_mm,
        width_mm=t.width_mm,
    )


def _design_doses(
    rx: Prescription,
    doses: tuple[float, ...],
    combos: Sequence[tuple[Formulation, ...]],
    layouts: tuple[LayoutName, ...],
    shell: Formulation | None,
    limits: SizeLimits,
    index: int,
    confirm: Confirm | None = None,
    explore: bool = False,
) -> _Candidate:
    found: list[_Candidate] = []
    refused: list[str] = []
    smallest: list[tuple[float, ...]] = []  # doses of printable designs nearest below
    largest: list[tuple[float, ...]] = []
    aspects = (0.5,) if rx.tablet.fixed_mm else ASPECTS
    for combo, infill in itertools.product(combos, _infills(rx, explore)):
        volumes = [d / f.api_mg_per_mm3 / infill for d, f in zip(doses, combo, strict=True)]
        # A lattice is tried in the plain shapes only: it is the strongest lever, and
        # rings or channels on top of it would triple the search for little.
        shapes = _shapes(rx, explore) if infill >= 1.0 else _shapes(rx)
        channels_tried = _channel_counts(rx, explore) if infill >= 1.0 else _channel_counts(
            rx, False)
        for shape, layout, channels, shell_mm, aspect in itertools.product(
                shapes, layouts, channels_tried, _shell_thicknesses(rx, limits), aspects):
            point = _Point(combo, shape, layout, channels, shell_mm, infill)
            got = _candidate_at(rx, doses, point, aspect, volumes, shell, index, limits)
            if isinstance(got, _Candidate):
                found.append(got)
                continue
            refused.append(got.message)
            for volumes_found, store in ((got.smallest, smallest), (got.largest, largest)):
                if volumes_found is not None:
                    store.append(tuple(v * f.api_mg_per_mm3 * infill
                                       for v, f in zip(volumes_found, combo, strict=True)))
    if found and not rx.tablet.fixed_mm:
        found += _refined(rx, doses, found, shell, index, limits)
    if not found:
        distinct = list(dict.fromkeys(refused))
        reasons = "; ".join(distinct[:4]) + (f"; and {len(distinct) - 4} more"
                                             if len(distinct) > 4 else "")
        nearest = ""
        apis = [a.api for a in rx.actives]
        low = [min(s[k] for s in smallest) for k in range(len(doses))] if smallest else []
        too_small = [(api, v) for api, v, d in zip(apis, low, doses, strict=False) if v > d]
        if too_small:
            nearest += (" With the other doses as prescribed, the smallest printable dose "
                        "found is " + ", ".join(f"{v:.3g} mg of {api}" for api, v in too_small)
                        + ".")
        if largest:
            high = [max(s[k] for s in largest) for k in range(len(doses))]
            nearest += (" The largest printable doses found were " + ", ".join(
                f"{api} {v:.4g} mg" for api, v in zip(apis, high, strict=True)) + ".")
        raise InfeasibleDesignError([Problem(rx.source, "actives", "no tablet layout can carry "
                                             f"doses {_doses(doses)}: {reasons}.{nearest}")])
    if confirm is None:
        met = sorted((c for c in found if c.met), key=_score)
        if met:
            return met[0]
    else:
        confirmed = _confirm_best(rx, doses, found, confirm)
        if confirmed is not None:
            return confirmed
    best = min(found, key=_shortfall)
    parts = "; ".join(f"{r.api}: {r.judgement.reason}" for r in best.releases
                      if not r.judgement.met)
    raise InfeasibleDesignError([Problem(
        rx.source, "actives",
        f"no {'/'.join(layouts)} design meets every release target for doses "
        f"{_doses(doses)} within max_length_mm = {limits.max_length_mm:g}; the closest, "
        f"a {best.design.describe()} of {', '.join(f.id for f in best.formulations)}, "
        f"misses {parts}")])


@dataclass(frozen=True)
class _Point:
    """Everything that fixes a candidate but its proportions."""

    combo: tuple[Formulation, ...]
    shape: ShapeName
    layout: LayoutName
    channels: int
    shell_mm: float
    infill: float


@dataclass(frozen=True)
class _Refusal:
    message: str
    smallest: tuple[float, ...] | None = None
    largest: tuple[float, ...] | None = None


def _candidate_at(
    rx: Prescription,
    doses: tuple[float, ...],
    point: _Point,
    aspect: float,
    volumes: Sequence[float],
    shell: Formulation | None,
    index: int,
    limits: SizeLimits,
) -> _Candidate | _Refusal:
    """The design of ``point`` at height / width ``aspect``, sized to the doses and put on
    whole layers, with its estimated release; or why it cannot be printed."""
    name = f"{point.shape} {point.layout}"
    try:
        spec = _spec(rx, point.shape, point.layout, aspect, point.channels, point.shell_mm)
        spec = snap_to_layers(spec, volumes, limits)
        geometry = try_size_tablet(spec, volumes, limits)
        if geometry is None:
            # Sized again only to say why, with the numbers.
            size_tablet(spec, volumes, limits)
    except InfeasibleDesignError as exc:
        return _Refusal(f"{name}: {exc.message}", getattr(exc, "smallest_volumes_mm3", None),
                        getattr(exc, "largest_volumes_mm3", None))
    assert geometry is not None
    error = layer_error(geometry, limits.first_layer_mm, limits.layer_mm)
    if error > MAX_LAYER_ERROR:
        return _Refusal(f"{name}: whole layers would move a compartment's volume by "
                        f"{error:.1%}")
    return replace(_evaluate(rx, doses, point.combo, shell, geometry, point.infill, index,
                             limits),
                   aspect=aspect)


REFINE_GROUPS = 4
"""Kinds of design (shape, layout, channels, shell, formulations) whose proportions are
refined continuously after the coarse pass over :data:`ASPECTS`."""

REFINE_EVALUATIONS = 10
"""Most evaluations of the estimate for one kind's refinement."""

ASPECT_RANGE = (0.2, 1.0)


def _refined(
    rx: Prescription,
    doses: tuple[float, ...],
    found: Sequence[_Candidate],
    shell: Formulation | None,
    index: int,
    limits: SizeLimits,
) -> list[_Candidate]:
    """Candidates found by refining the aspect ratio between the coarse steps.

    For the :data:`REFINE_GROUPS` kinds of design whose best coarse candidate is closest to
    its targets, Brent's bounded method (:func:`scipy.optimize.minimize_scalar`) minimises
    the distance to the targets (:func:`_shortfall`) over the aspect ratio, between the
    coarse neighbours of the best coarse aspect. The estimate is piecewise constant in
    the aspect (heights are whole layers), so the method stops after
    :data:`REFINE_EVALUATIONS` evaluations; every design it evaluates is kept as a
    candidate. Deterministic: the same input gives the same evaluations.
    """
    best_of: dict[_Point, _Candidate] = {}
    for c in found:
        point = _point_of(c)
        if point not in best_of or _shortfall(c) < _shortfall(best_of[point]):
            best_of[point] = c
    groups = sorted(best_of.items(), key=lambda kv: (_shortfall(kv[1]), kv[1].design.describe()))
    extra: list[_Candidate] = []
    for point, best in groups[:REFINE_GROUPS]:
        if best.met and _shortfall(best)[0] < 0.02:
            continue  # already on target: nothing to gain
        volumes = [d / f.api_mg_per_mm3 / point.infill
                   for d, f in zip(doses, point.combo, strict=True)]
        centre = best.aspect
        below = [a for a in ASPECTS if a < centre - 1e-9]
        above = [a for a in ASPECTS if a > centre + 1e-9]
        lo = below[-1] if below else ASPECT_RANGE[0]
        hi = above[0] if above else ASPECT_RANGE[1]
        seen: dict[float, _Candidate | _Refusal] = {}

        def cost(aspect: float, point: _Point = point, volumes: list[float] = volumes,
                 seen: dict[float, _Candidate | _Refusal] = seen) -> float:
            key = round(aspect, 4)
            if key not in seen:
                seen[key] = _candidate_at(rx, doses, point, key, volumes, shell, index,
                                          limits)
            got = seen[key]
            return _shortfall(got)[0] if isinstance(got, _Candidate) else 10.0

        minimize_scalar(cost, bounds=(lo, hi), method="bounded",
                        options={"xatol": 0.005, "maxiter": REFINE_EVALUATIONS})
        extra += [c for c in seen.values() if isinstance(c, _Candidate)]
    return extra


def _point_of(c: _Candidate) -> _Point:
    spec = c.design.geometry.spec if c.design.geometry is not None else None
    assert spec is not None
    return _Point(c.formulations, spec.shape, spec.layout, spec.channels, spec.shell_mm,
                  c.design.infill)


def _infills(rx: Prescription, explore: bool) -> tuple[float, ...]:
    """Infill fractions tried: the prescription's; else solid, and with ``explore`` also
    :data:`EXPLORE_INFILLS` (an open lattice releases far faster than a solid tablet)."""
    if rx.tablet.infill is not None:
        return (rx.tablet.infill,)
    return (1.0, *EXPLORE_INFILLS) if explore else (1.0,)


def _shell_thicknesses(rx: Prescription, limits: SizeLimits) -> tuple[float, ...]:
    """The drug-free shell's thicknesses tried: the prescription's, or :data:`SHELL_WALLS`
    times the thinnest printable wall when it names a shell but leaves its thickness open
    (a thicker barrier delays the core's release by Crank's time lag, ``l² / 6 D``)."""
    t = rx.tablet
    if not t.has_shell:
        return (0.0,)
    if t.shell_mm is not None:
        return (t.shell_mm,)
    return tuple(round(k * limits.min_wall_mm, 2) for k in SHELL_WALLS)


def _rescaled(c: _Candidate, scales: Mapping[str, float]) -> _Candidate:
    """The candidate with each API's estimated curve stretched in time by its scale
    (``F(t / s)``), judged again: the estimate corrected by what the full model found for
    designs of the same kind."""
    releases = []
    for active, r in zip(c.actives, c.releases, strict=True):
        s = scales.get(r.api, 1.0)
        if s == 1.0:
            releases.append(r)
            continue
        fraction = np.interp(r.hours / s, r.hours, r.fraction)
        judgement = judge_release(active.release, r.hours, fraction, t80_h=active.t80_h,
                                  profile=np.asarray(active.profile)
                                  if active.profile is not None else None)
        releases.append(replace(r, fraction=fraction, judgement=judgement))
    return replace(c, releases=tuple(releases))


def _kind(c: _Candidate) -> tuple[str, str, float, tuple[str, ...]]:
    return (c.design.shape, c.design.layout, c.design.infill,
            tuple(f.id for f in c.formulations))


def _confirm_best(
    rx: Prescription, doses: tuple[float, ...], found: list[_Candidate], confirm: Confirm
) -> _Candidate | None:
    """Confirm the best candidates with the full model, correcting the estimate as it goes.

    Each confirmation that misses tells how much faster or slower the full model releases
    than the estimate for that kind of design (the ratio of mean dissolution times); the
    remaining candidates of the same kind are re-judged with their curves stretched by
    that ratio before the next one is chosen. At most :data:`MAX_CONFIRM` are tried.
    """
    scales: dict[tuple[str, str, float, tuple[str, ...]], dict[str, float]] = {}
    tried: set[str] = set()
    misses: list[str] = []
    for _ in range(MAX_CONFIRM):
        ranked = sorted(
            (c2 for c in found if c.design.describe() not in tried
             for c2 in [_rescaled(c, scales.get(_kind(c), {}))] if c2.met),
            key=_score)
        if not ranked:
            break
        best = ranked[0]
        original = next(c for c in found if c.design is best.design)
        tried.add(best.design.describe())
        why, full = confirm(best.design)
        if why is None:
            assert full is not None
            return replace(original, releases=full)
        misses.append(f"{best.design.describe()}: {why}")
        if full is not None:
            kind_scales = scales.setdefault(_kind(best), {})
            for est, got in zip(original.releases, full, strict=True):
                if est.judgement.mdt_h and got.judgement.mdt_h:
                    kind_scales[est.api] = got.judgement.mdt_h / est.judgement.mdt_h
    if misses:
        raise InfeasibleDesignError([Problem(
            rx.source, "actives", f"no design for doses {_doses(doses)} holds when confirmed "
            f"with the 3D release model ({len(misses)} tried): " + "; ".join(misses[:3]))])
    return None


def _doses(doses: tuple[float, ...]) -> str:
    return " + ".join(f"{d:g} mg" for d in doses)


def _evaluate(
    rx: Prescription,
    doses: tuple[float, ...],
    combo: tuple[Formulation, ...],
    shell: Formulation | None,
    geometry: TabletGeometry,
    infill: float,
    index: int,
    limits: SizeLimits,
) -> _Candidate:
    api_parts = geometry.api_compartments
    compartments = [
        Compartment(a.api, f.id, k, dose, c.volume_mm3 * infill)
        for k, (a, f, dose, c) in enumerate(zip(rx.actives, combo, doses, api_parts,
                                                strict=True))
    ]
    if shell is not None:
        shell_part = next(c for c in geometry.compartments if c.role == "shell")
        compartments.append(Compartment("", shell.id, len(combo), 0.0,
                                        shell_part.volume_mm3 * infill))
    releases = []
    for k, (active, f, part) in enumerate(zip(rx.actives, combo, api_parts, strict=True)):
        hours = release_time_grid_h(active.release, t80_h=active.t80_h, profile=active.profile)
        area = part.exposed_area_mm2
        barriers: list[tuple[float, float]] = []
        if shell is not None:
            barriers.append((geometry.spec.shell_mm, shell.diffusivity_mm2_s))
        if LAYOUT_KINDS[geometry.spec.layout].core and k == 0:
            outer = api_parts[1]
            barriers.append((outer.min_thickness_mm, combo[1].diffusivity_mm2_s))
        shared = max(0.0, float(part.mesh.area) - area)
        others = [g.diffusivity_mm2_s for j, g in enumerate(combo) if j != k]
        if shell is not None:
            others.append(shell.diffusivity_mm2_s)
        if area <= 1e-9:
            # Enclosed: the drug leaves through its whole surface, after the barrier lag.
            area = float(part.mesh.area)
        elif others:
            # Faces shared with a neighbour leak into it in proportion to how much faster
            # the drug moves there (a fast neighbour is nearly medium, a slow one a wall).
            area += shared * min(1.0, max(others) / f.diffusivity_mm2_s)
        volume = part.volume_mm3
        if infill < 1.0:
            volume = part.volume_mm3 * infill
            if rx.tablet.solid_layers == 0:
                # A sparse lattice open to the medium: the drug leaves each road through
                # its sides, about 2 / spacing of area per volume of material (the 3D
                # model, with the slicer's real gaps, confirms and corrects this). Under a
                # solid skin the gaps hold air and only the outside counts.
                spacing = bead_spacing_mm(limits.min_wall_mm / 2.0, limits.layer_mm)
                area += LATTICE_EXPOSURE * 2.0 * volume / spacing
        fraction = equivalent_released(
            hours * 3600.0, volume, area, f.diffusivity_mm2_s, f.release_mechanism,
            f.erosion_rate_mm_h, lag_s=membrane_lag_s(barriers))
        judgement = judge_release(active.release, hours, fraction, t80_h=active.t80_h,
                                  profile=np.asarray(active.profile)
                                  if active.profile is not None else None)
        releases.append(PredictedRelease(active.api, hours, fraction, judgement, MODEL))
    design = TabletDesign.sized(index, geometry, _layers(geometry.height_mm, limits), infill,
                                tuple(compartments),
                                shell=shell.id if shell is not None else "none")
    return _Candidate(design, tuple(releases), combo, rx.actives)


def _layers(height_mm: float, limits: SizeLimits) -> int:
    """Layers whose mid-height lies inside the tablet (as the slicer and layer_error do)."""
    top, n = limits.first_layer_mm, 1
    while top + limits.layer_mm / 2.0 < height_mm:
        top += limits.layer_mm
        n += 1
    return n


def _shortfall_one(active: Active, r: PredictedRelease) -> float:
    """How far one API's prediction is from its target, 0 when exactly on it."""
    j = r.judgement
    if active.release == "sustained":
        assert active.t80_h is not None
        return 1.0 if j.t80_h is None else abs(j.t80_h - active.t80_h) / active.t80_h
    if active.release == "profile":
        return (100.0 - (j.f2 or 0.0)) / 100.0
    return max(0.0, 0.85 - j.released_at_30min)


def _score(c: _Candidate) -> tuple[float, float, str]:
    """Among designs that meet every target: the smallest tablet (the easiest to swallow,
    to a tenth of a millimetre), then the one closest to its targets."""
    worst = max(_shortfall_one(a, r) for a, r in zip(c.actives, c.releases, strict=True))
    return (round(c.design.longest_mm, 1), round(worst, 3), c.design.layout)


def _shortfall(c: _Candidate) -> tuple[float, float]:
    total = sum(_shortfall_one(a, r) for a, r in zip(c.actives, c.releases, strict=True))
    return (round(total, 4), c.design.longest_mm)
