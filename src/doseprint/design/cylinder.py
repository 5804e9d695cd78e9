"""Design single-API cylinder tablets: size each to its dose, pick the proportions and the
formulation whose predicted release meets the target, or say with numbers why none does.

The free variables are few, so the search is exhaustive and deterministic: the number of
layers ``n`` (height ``first + (n − 1) × layer``) fixes the diameter that carries the
dose, and every admissible ``n`` of every candidate formulation is predicted and judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from doseprint.design.designed import DesignedTablet
from doseprint.errors import InfeasibleDesignError, InputError, Problem
from doseprint.geometry.tablet import Compartment, TabletDesign
from doseprint.models.formulation import Formulation
from doseprint.models.prescription import Active, Prescription, TabletConstraints
from doseprint.release.predict import PredictedRelease, predict_cylinder

MIN_LAYERS = 3
"""Fewest layers of a compartment: a bottom, a middle and a top layer."""

MIN_DIAMETER_MM = 3.0
"""Smallest tablet diameter designed: the size of paediatric mini-tablets (2-3 mm)."""

MAX_ASPECT = 1.0
"""Height at most the diameter: taller cylinders roll and are not tablet-like."""

PREFERRED_ASPECT = 0.4
"""Height / diameter of a usual flat tablet; used to choose among designs that all meet."""


@dataclass(frozen=True)
class LayerGrid:
    """Heights a tablet can have on a printer: the first layer plus whole layers."""

    first_mm: float
    layer_mm: float

    def height_mm(self, layers: int) -> float:
        return self.first_mm + (layers - 1) * self.layer_mm

    def layers_for(self, height_mm: float) -> int:
        return max(1, round((height_mm - self.first_mm) / self.layer_mm) + 1)


@dataclass(frozen=True)
class _Candidate:
    design: TabletDesign
    release: PredictedRelease
    formulation: Formulation

    @property
    def aspect(self) -> float:
        return self.design.height_mm / self.design.diameter_mm


def design_tablets(
    rx: Prescription, formulations: Mapping[str, Formulation], grid: LayerGrid
) -> tuple[DesignedTablet, ...]:
    """Design every tablet of the prescription (each dose of a schedule on its own).

    One formulation serves the whole batch (one tool, one material lot): the first, by
    score and then id, with which every tablet's dose meets its target.

    Raises
    ------
    InputError
        More than one active (this version designs single-API tablets).
    InfeasibleDesignError
        A tablet's dose or release target cannot be met within the constraints; the
        message gives the closest achievable figure and the binding constraint.
    """
    if len(rx.actives) != 1:
        raise InputError(
            [Problem(rx.source, "actives", f"lists {len(rx.actives)} actives; this version "
                     "designs single-API tablets (multi-drug layouts come with the tablet "
                     "designer)")]
        )
    active = rx.actives[0]
    doses = [rx.dose_mg(i, active.api) for i in range(rx.dispense.units)]
    unique = sorted(set(doses))
    per_formulation: list[tuple[tuple[float, float], str, dict[float, _Candidate]]] = []
    failures: list[Problem] = []
    for f in _candidate_formulations(active, formulations):
        chosen: dict[float, _Candidate] = {}
        for dose in unique:
            index = doses.index(dose)
            try:
                chosen[dose] = _design_one(rx, active, dose, f, grid, index)
            except InfeasibleDesignError as exc:
                failures.extend(exc.problems)
                break
        else:
            worst = max(_score(active, c) for c in chosen.values())
            per_formulation.append((worst, f.id, chosen))
    if not per_formulation:
        raise InfeasibleDesignError(_first_per_key(failures))
    _, _, chosen = min(per_formulation, key=lambda item: (item[0], item[1]))
    return tuple(
        DesignedTablet(replace(chosen[dose].design, index=i), (chosen[dose].release,))
        for i, dose in enumerate(doses)
    )


def _first_per_key(problems: list[Problem]) -> list[Problem]:
    """Every formulation's reason, once each (a schedule repeats them per dose)."""
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


def _candidate_formulations(
    active: Active, formulations: Mapping[str, Formulation]
) -> list[Formulation]:
    if active.formulation is not None:
        return [formulations[active.formulation]]
    return sorted((f for f in formulations.values() if f.api == active.api),
                  key=lambda f: f.id)


def _design_one(
    rx: Prescription,
    active: Active,
    dose_mg: float,
    f: Formulation,
    grid: LayerGrid,
    index: int,
) -> _Candidate:
    """The best design of one dose in one formulation, or InfeasibleDesignError."""
    tablet = rx.tablet
    infill = tablet.infill if tablet.infill is not None else 1.0
    key = _dose_key(rx, index, active)
    if f.max_dose_mg is not None and dose_mg > f.max_dose_mg:
        raise InfeasibleDesignError([Problem(rx.source, key, f"{dose_mg:g} mg is above "
                                             f"max_dose_mg = {f.max_dose_mg:g} of {f.id}")])
    volume = dose_mg / f.api_mg_per_mm3 / infill
    shapes, why = _sizes(volume, tablet, grid, f, infill)
    if not shapes:
        raise InfeasibleDesignError([Problem(rx.source, key, f"{dose_mg:g} mg of {active.api} "
                                             f"in {f.id} cannot be printed: {why}")])
    found = []
    for diameter, height in shapes:
        design = TabletDesign.cylinder(
            index, diameter, height, grid.layers_for(height), infill,
            (Compartment(active.api, f.id, 0, dose_mg, volume * infill),),
        )
        release = predict_cylinder(active, f, design.radius_mm, height)
        found.append(_Candidate(design, release, f))
    met = [c for c in found if c.release.judgement.met]
    if met:
        return min(met, key=lambda c: _score(active, c))
    raise InfeasibleDesignError(
        [Problem(rx.source, _target_key(rx, active), _closest(active, dose_mg, found, tablet))]
    )


def _dose_key(rx: Prescription, index: int, active: Active) -> str:
    for j, entry in enumerate(rx.dispense.schedule):
        if entry.api == active.api:
            return f"dispense.schedule[{j}].doses_mg[{index}]"
    return f"actives[{rx.actives.index(active)}].dose_mg"


def _target_key(rx: Prescription, active: Active) -> str:
    i = rx.actives.index(active)
    return {"sustained": f"actives[{i}].t80_h", "profile": f"actives[{i}].profile"}.get(
        active.release, f"actives[{i}].release")


def _sizes(
    volume_mm3: float,
    tablet: TabletConstraints,
    grid: LayerGrid,
    f: Formulation,
    infill: float,
) -> tuple[list[tuple[float, float]], str]:
    """Every admissible (diameter, height) carrying ``volume_mm3``, or why there is none."""
    limit = tablet.max_length_mm
    min_height = grid.height_mm(MIN_LAYERS)
    per_mm3 = f.api_mg_per_mm3 * infill

    def dose_of(diameter: float, height: float) -> float:
        return math.pi * (diameter / 2) ** 2 * height * per_mm3

    d_fixed, h_fixed = tablet.diameter_mm, tablet.height_mm
    if d_fixed is not None and h_fixed is not None:
        carried = dose_of(d_fixed, h_fixed)
        if abs(carried / (volume_mm3 * per_mm3) - 1.0) > 0.005:
            return [], (f"with both diameter_mm = {d_fixed:g} and height_mm = {h_fixed:g} "
                        f"fixed the tablet carries {carried:.1f} mg; fix only one of them")
        return [(d_fixed, h_fixed)], ""
    if d_fixed is not None:
        height = volume_mm3 / (math.pi * (d_fixed / 2) ** 2)
        if height < min_height:
            return [], (f"at diameter_mm = {d_fixed:g} the height would be {height:.2f} mm, "
                        f"below {MIN_LAYERS} layers ({min_height:.2f} mm); the smallest "
                        f"printable dose at this diameter is {dose_of(d_fixed, min_height):.1f} mg")
        if height > limit:
            return [], (f"at diameter_mm = {d_fixed:g} the height would be {height:.1f} mm, "
                        f"above max_length_mm = {limit:g}; the largest dose at this diameter "
                        f"is {dose_of(d_fixed, limit):.1f} mg")
        return [(d_fixed, height)], ""
    if h_fixed is not None:
        diameter = math.sqrt(4 * volume_mm3 / (math.pi * h_fixed))
        if diameter > limit:
            return [], (f"at height_mm = {h_fixed:g} the diameter would be {diameter:.1f} mm, "
                        f"above max_length_mm = {limit:g}; the largest dose at this height is "
                        f"{dose_of(limit, h_fixed):.1f} mg")
        if diameter < MIN_DIAMETER_MM:
            return [], (f"at height_mm = {h_fixed:g} the diameter would be {diameter:.2f} mm, "
                        f"below {MIN_DIAMETER_MM:g} mm")
        return [(diameter, h_fixed)], ""
    shapes = []
    n = MIN_LAYERS
    while grid.height_mm(n) <= limit:
        height = grid.height_mm(n)
        diameter = math.sqrt(4 * volume_mm3 / (math.pi * height))
        if diameter <= limit and diameter >= max(MIN_DIAMETER_MM, height / MAX_ASPECT):
            shapes.append((diameter, height))
        n += 1
    if shapes:
        return shapes, ""
    # Nothing fits. Each whole-layer height admits a band of doses (diameter from the
    # height itself, or the smallest diameter, up to the length limit); say where the
    # asked dose falls among those bands.
    bands = []
    n = MIN_LAYERS
    while grid.height_mm(n) <= limit + 1e-9:
        height = grid.height_mm(n)
        low_d = max(MIN_DIAMETER_MM, height / MAX_ASPECT)
        if low_d <= limit + 1e-9:
            bands.append((dose_of(low_d, height), dose_of(limit, height)))
        n += 1
    dose = volume_mm3 * per_mm3
    if not bands:
        return [], (f"no cylinder of {MIN_LAYERS} or more layers fits within max_length_mm = "
                    f"{limit:g}")
    smallest = min(b[0] for b in bands)
    largest = max(b[1] for b in bands)
    if dose < smallest:
        return [], (f"below the smallest printable dose, {smallest:.2f} mg (a "
                    f"{max(MIN_DIAMETER_MM, min_height / MAX_ASPECT):g} mm tablet of "
                    f"{MIN_LAYERS} layers)")
    if dose > largest:
        return [], (f"above the largest dose within max_length_mm = {limit:g}, "
                    f"{largest:.1f} mg")
    below = max(b[1] for b in bands if b[1] < dose)
    above = min(b[0] for b in bands if b[0] > dose)
    return [], (f"no cylinder of whole {grid.layer_mm:g} mm layers, height at most its "
                f"diameter and within max_length_mm = {limit:g} carries it: the nearest "
                f"printable doses are {below:.1f} mg and {above:.1f} mg")


def _score(active: Active, c: _Candidate) -> tuple[float, float]:
    """Smaller is better, among designs that meet the target."""
    j = c.release.judgement
    shape_penalty = abs(c.aspect - PREFERRED_ASPECT)
    if active.release == "sustained":
        assert active.t80_h is not None and j.t80_h is not None
        return (round(abs(j.t80_h - active.t80_h) / active.t80_h, 3), shape_penalty)
    if active.release == "profile":
        assert j.f2 is not None
        return (-round(j.f2, 1), shape_penalty)
    return (shape_penalty, c.design.longest_mm)


def _closest(
    active: Active, dose_mg: float, found: list[_Candidate], tablet: TabletConstraints
) -> str:
    """The infeasibility message: the closest reachable figure and what binds."""
    head = f"{dose_mg:g} mg of {active.api}"
    fixed = [f"{k} = {v:g}" for k, v in (("diameter_mm", tablet.diameter_mm),
                                         ("height_mm", tablet.height_mm)) if v is not None]
    within = (f"with {' and '.join(fixed)} fixed" if fixed
              else f"within max_length_mm = {tablet.max_length_mm:g}")
    forms = ", ".join(sorted({c.formulation.id for c in found}))
    if active.release == "immediate":
        best = max(found, key=lambda c: c.release.judgement.released_at_30min)
        return (f"immediate release (≥ 85 % at 30 min) cannot be reached for {head} {within}: "
                f"at most {best.release.judgement.released_at_30min:.0%} is released at 30 min "
                f"({best.formulation.id}, {_dims(best)}); formulations tried: {forms}")
    if active.release == "sustained":
        assert active.t80_h is not None
        reached = [c for c in found if c.release.judgement.t80_h is not None]
        if not reached:
            return (f"t80_h = {active.t80_h:g} h cannot be reached for {head} {within}: no "
                    f"design reaches 80 % released in the predicted time; formulations: {forms}")
        fast = min(reached, key=lambda c: c.release.judgement.t80_h or math.inf)
        slow = max(reached, key=lambda c: c.release.judgement.t80_h or 0.0)
        ft, st = fast.release.judgement.t80_h, slow.release.judgement.t80_h
        assert ft is not None and st is not None
        if active.t80_h < ft:
            binding = "max_length_mm" if not fixed and _is_widest(fast, tablet) else (
                " and ".join(fixed) if fixed else f"{MIN_LAYERS}-layer minimum height")
            return (f"t80_h = {active.t80_h:g} h cannot be reached for {head} {within}: the "
                    f"fastest reachable t80 is {ft:.1f} h ({fast.formulation.id}, "
                    f"{_dims(fast)}; binding: {binding})")
        binding = " and ".join(fixed) if fixed else "height at most the diameter"
        return (f"t80_h = {active.t80_h:g} h cannot be reached for {head} {within}: the slowest "
                f"reachable t80 is {st:.1f} h ({slow.formulation.id}, {_dims(slow)}; "
                f"binding: {binding})")
    best = max(found, key=lambda c: c.release.judgement.f2 or -math.inf)
    return (f"the release profile cannot be matched for {head} {within}: the best f2 is "
            f"{best.release.judgement.f2:.1f} (needs ≥ 50; {best.formulation.id}, "
            f"{_dims(best)})")


def _is_widest(c: _Candidate, tablet: TabletConstraints) -> bool:
    return c.design.diameter_mm > tablet.max_length_mm - 1.0


def _dims(c: _Candidate) -> str:
    return f"{c.design.diameter_mm:.1f} mm × {c.design.height_mm:.2f} mm"
