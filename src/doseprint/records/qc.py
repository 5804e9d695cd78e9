"""Quality control of a printed batch: weighed tablet masses, judged and turned into doses.

Uniformity of mass follows Ph. Eur. 2.9.5 "Uniformity of mass of single-dose
preparations": weigh the units individually and take the average; each unit's deviation
from the average is compared with the limit of Table 2.9.5.-1. For tablets (uncoated and
film-coated) the limit is

* 10 % for an average mass of 80 mg or less,
* 7.5 % for more than 80 mg and less than 250 mg,
* 5 % for 250 mg or more.

The project's CONTEXT.md marks these limits "to confirm"; they are the values of Ph. Eur.
2.9.5 Table 2.9.5.-1 for tablets and must be checked against the edition in force.

Which rule is applied depends on how many units are weighed, and the result names it
(``MassUniformity.rule``, ``rule`` of the ``qc`` event):

* ``"ph-eur-2.9.5"``, 20 units or more: the compendial rule, at most 2 units beyond the
  limit and none beyond twice it. The monograph weighs 20 units; a batch of more is
  weighed whole and the count of 2 applies to all of them, which is at least as strict as
  any 20 drawn from them (``note`` says so).
* ``"every-unit-within-limit"``, fewer than 20 units: every unit must lie within the
  limit, none beyond it. The monograph's allowance of 2 outliers is an allowance of a
  sample of 20 (one unit in ten); it does not scale down to a batch of one patient, where
  2 of 4 would let half the batch be out of limits. This is a pharmacy's in-process
  check, stricter than the compendial count, and ``note`` says so.

Before anything is judged, masses that cannot be weighings of the record's tablets in mg
are refused (InputError naming ``--mass-mg``; nothing is recorded):
:func:`check_plausible`. There must be one mass per tablet of the record. With designed
masses, each must lie within :data:`PLAUSIBLE_RATIO` (0.5-2 ×) of its tablet's designed
mass. A real failing tablet stays well inside that band -- a print that completed lays
what its G-code asks within a few per cent after flow calibration (which itself refuses
multipliers outside 0.85-1.15), printed/CAD volume reached 1.44 in the worst study of
CONTEXT.md, and a tablet 30 % off its design is recorded as the failed QC it is -- while
the slips the band catches land far outside it: a mass typed in grams (× 0.001), a
shifted decimal point (× 0.1 or × 10), masses typed in the wrong order for tablets whose
designs differ more than twofold. A tablet really outside the band is grossly defective
to the eye (half of it missing, or twice its size); the batch is then rejected with the
masses in the rejection's meaning. Without designed masses only values that cannot be a
tablet's mass in mg are refused: below 1 mg (grams typed) or above 10 g, more than any
tablet a patient swallows (micrograms typed) -- :data:`PLAUSIBLE_MASS_MG`.
:func:`qc_targets` gives each tablet's designed mass and windows before weighing.

The estimated dose of a tablet assumes homogeneous drug loading: a tablet that weighs
3 % more than its design carries 3 % more of each API (``prescribed × weighed /
designed``). For a tablet whose APIs sit in separate compartments, or that has a drug-free
shell, this is an approximation: the scale cannot tell which compartment the extra mass
is in. Each estimated dose must lie within 85-115 % of the prescription (the per-unit
limits of Ph. Eur. 2.9.6, test A), so a batch that is uniformly wrong fails too.

A batch of one may mix tablets of different doses and so of different designed masses.
When the record gives the designed masses, the rule is applied to the masses normalised
to them (:func:`normalised_masses_mg`): each tablet's deviation from its own design,
relative to the batch. Without designed masses the raw masses are judged, and a batch of
unlike tablets gets a warning (it may fail for that reason alone).

A QC result is kept as a ``qc`` event on the record (:func:`qc_event_data`); the latest
such event decides (:func:`qc_passed`). A failed QC is final: the store refuses another
``qc`` unless an investigation is open (:mod:`doseprint.records.states`), and both results
stay in the record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from doseprint.errors import InputError, Problem
from doseprint.records.content import ContentTablet, densities_by_tool, number, tablets_of
from doseprint.records.values import Record

__all__ = [
    "MASS_UNIFORMITY_METHOD",
    "PLAUSIBLE_MASS_MG",
    "PLAUSIBLE_RATIO",
    "QC_EVENT_KIND",
    "RULE_EVERY_UNIT",
    "RULE_PH_EUR",
    "STANDARD_UNITS",
    "MassUniformity",
    "check_plausible",
    "describe_rule",
    "designed_masses_mg",
    "estimated_doses_mg",
    "judge_mass_uniformity",
    "latest_qc",
    "mass_limit_pct",
    "normalised_masses_mg",
    "plausible_band_mg",
    "qc_event_data",
    "qc_passed",
    "qc_targets",
    "uniformity_rule",
]

QC_EVENT_KIND = "qc"
"""The event kind a QC result is stored under (one of ``states.EVENT_KINDS``)."""

MASS_UNIFORMITY_METHOD = "Ph. Eur. 2.9.5 uniformity of mass (tablets)"

STANDARD_UNITS = 20
"""The number of units Ph. Eur. 2.9.5 weighs; its rule applies from this many units on."""

RULE_PH_EUR = "ph-eur-2.9.5"
"""20 units or more: at most 2 beyond the limit, none beyond twice it."""

RULE_EVERY_UNIT = "every-unit-within-limit"
"""Fewer than 20 units: none beyond the limit."""

_ALLOWED_BEYOND_LIMIT = {RULE_PH_EUR: 2, RULE_EVERY_UNIT: 0}
"""How many units each rule lets deviate by more than the limit (never by twice it)."""

PLAUSIBLE_RATIO = (0.5, 2.0)
"""A weighed mass outside this fraction of its tablet's designed mass is refused as a
slip, not recorded (see the module docstring for why this band)."""

PLAUSIBLE_MASS_MG = (1.0, 10_000.0)
"""Without designed masses, a weighed mass outside this range (mg) is refused: it cannot
be a tablet's mass in mg."""


@dataclass(frozen=True)
class MassUniformity:
    """The judgement of a set of weighed units against Ph. Eur. 2.9.5.

    Attributes
    ----------
    masses_mg : tuple of float, mg
        The weighed masses, in the order given.
    average_mg : float, mg
        Their mean.
    limit_pct : float, %
        The percentage deviation allowed for this average mass (10, 7.5 or 5).
    deviations_pct : tuple of float, %
        Each unit's signed deviation from the average, ``100 × (m − avg) / avg``.
    beyond_limit : tuple of int
        Indices (0-based) of the units deviating by more than ``limit_pct``.
    beyond_twice_limit : tuple of int
        Indices of the units deviating by more than ``2 × limit_pct``.
    passed : bool
        No more units beyond the limit than the rule allows, and none beyond twice it.
    units_tested : int
        How many units were weighed.
    standard_sample : bool
        True when 20 units or more were weighed, so that the compendial rule applies.
    note : str
        Human-readable remark on the sample size ("" for exactly 20 units).
    rule : str
        :data:`RULE_PH_EUR` (20 units or more) or :data:`RULE_EVERY_UNIT` (fewer).
    allowed_beyond_limit : int
        How many units the rule lets lie beyond the limit: 2 or 0.
    """

    masses_mg: tuple[float, ...]
    average_mg: float
    limit_pct: float
    deviations_pct: tuple[float, ...]
    beyond_limit: tuple[int, ...]
    beyond_twice_limit: tuple[int, ...]
    passed: bool
    units_tested: int
    standard_sample: bool
    note: str
    rule: str
    allowed_beyond_limit: int

    def to_json(self) -> dict[str, Any]:
        """The judgement as JSON (the ``uniformity`` of a ``qc`` event)."""
        return {
            "method": MASS_UNIFORMITY_METHOD,
            "average_mg": round(self.average_mg, 4),
            "limit_pct": self.limit_pct,
            "deviations_pct": [round(d, 3) for d in self.deviations_pct],
            "beyond_limit": list(self.beyond_limit),
            "beyond_twice_limit": list(self.beyond_twice_limit),
            "passed": self.passed,
            "units_tested": self.units_tested,
            "standard_sample": self.standard_sample,
            "note": self.note,
            "rule": self.rule,
            "allowed_beyond_limit": self.allowed_beyond_limit,
        }


def _check_masses(values: Sequence[float], name: str) -> tuple[float, ...]:
    if len(values) == 0:
        raise ValueError(f"{name}: no values given")
    out = []
    for i, value in enumerate(values):
        number = float(value)
        if not math.isfinite(number) or number <= 0.0:
            raise ValueError(f"{name}[{i}] = {value!r}: must be a positive number of mg")
        out.append(number)
    return tuple(out)


def mass_limit_pct(average_mg: float) -> float:
    """The Ph. Eur. 2.9.5 percentage deviation for tablets of this average mass.

    Parameters
    ----------
    average_mg : float, mg
        Average mass, > 0.

    Returns
    -------
    float, %
        10 for ≤ 80 mg, 7.5 for 80–250 mg, 5 for ≥ 250 mg.

    Raises
    ------
    ValueError
        ``average_mg`` is not a positive finite number.
    """
    if not math.isfinite(average_mg) or average_mg <= 0.0:
        raise ValueError(f"average mass {average_mg!r} mg: must be positive")
    if average_mg <= 80.0:
        return 10.0
    if average_mg < 250.0:
        return 7.5
    return 5.0


def uniformity_rule(units: int) -> str:
    """The rule for this many weighed units: :data:`RULE_PH_EUR` from 20 units on,
    :data:`RULE_EVERY_UNIT` below."""
    return RULE_PH_EUR if units >= STANDARD_UNITS else RULE_EVERY_UNIT


def describe_rule(rule: str, limit_pct: float | None = None) -> str:
    """The rule in words, with the limit when it is known (it follows the average mass)."""
    limit = "the limit" if limit_pct is None else f"±{limit_pct:g} %"
    twice = "twice it" if limit_pct is None else f"±{2 * limit_pct:g} %"
    if rule == RULE_PH_EUR:
        return (f"Ph. Eur. 2.9.5 ({STANDARD_UNITS} units or more): at most 2 units beyond "
                f"{limit} of the average, none beyond {twice}")
    return (f"every unit within {limit} of the average (fewer than {STANDARD_UNITS} units, "
            "so Ph. Eur. 2.9.5's allowance of 2 outliers in 20 does not apply)")


def judge_mass_uniformity(masses_mg: Sequence[float]) -> MassUniformity:
    """Judge weighed tablet masses for uniformity of mass (Ph. Eur. 2.9.5 limits).

    Each unit's deviation from the average is compared with the limit
    (:func:`mass_limit_pct` of the average). From 20 units on, the Ph. Eur. 2.9.5 rule
    applies: at most 2 units beyond the limit, none beyond twice it. Below 20 units every
    unit must lie within the limit (see the module docstring for why). With a single unit
    there is nothing to compare, and it passes trivially (its estimated dose is what
    :func:`qc_event_data` judges).

    Parameters
    ----------
    masses_mg : sequence of float, mg
        Each unit's weighed mass, > 0.

    Returns
    -------
    MassUniformity

    Raises
    ------
    ValueError
        No masses, or a mass that is zero, negative, NaN or infinite.
    """
    masses = _check_masses(masses_mg, "masses_mg")
    average = math.fsum(masses) / len(masses)
    limit = mass_limit_pct(average)
    deviations = tuple(100.0 * (m - average) / average for m in masses)
    beyond = tuple(i for i, d in enumerate(deviations) if abs(d) > limit)
    beyond_twice = tuple(i for i, d in enumerate(deviations) if abs(d) > 2.0 * limit)
    n = len(masses)
    rule = uniformity_rule(n)
    allowed = _ALLOWED_BEYOND_LIMIT[rule]
    if n == STANDARD_UNITS:
        note = ""
    elif rule == RULE_PH_EUR:
        note = (f"{n} units weighed, all of them; Ph. Eur. 2.9.5 weighs {STANDARD_UNITS}. "
                f"Its count (at most 2 beyond the limit) was applied to all {n}, which is at "
                f"least as strict as {STANDARD_UNITS} drawn from them.")
    else:
        note = (f"{n} units weighed, fewer than the {STANDARD_UNITS} of Ph. Eur. 2.9.5: every "
                f"unit must lie within ±{limit:g} % of the average, none beyond it (its "
                f"allowance of 2 outliers in {STANDARD_UNITS} does not apply to so few). An "
                "in-process check, stricter than the compendial count.")
        if n == 1:
            note += " A single unit has nothing to be compared with."
    return MassUniformity(
        masses_mg=masses,
        average_mg=average,
        limit_pct=limit,
        deviations_pct=deviations,
        beyond_limit=beyond,
        beyond_twice_limit=beyond_twice,
        passed=len(beyond) <= allowed and not beyond_twice,
        units_tested=n,
        standard_sample=n >= STANDARD_UNITS,
        note=note,
        rule=rule,
        allowed_beyond_limit=allowed,
    )


def estimated_doses_mg(
    masses_mg: Sequence[float],
    designed_masses_mg: Sequence[float],
    prescribed_doses_mg: Sequence[float],
) -> tuple[float, ...]:
    """Each tablet's estimated dose of one API from its weighed mass.

    ``estimated = prescribed × weighed / designed``, which assumes homogeneous drug
    loading (see the module docstring).

    Parameters
    ----------
    masses_mg : sequence of float, mg
        Weighed mass of each tablet, > 0.
    designed_masses_mg : sequence of float, mg
        Designed mass of each tablet, > 0, same length.
    prescribed_doses_mg : sequence of float, mg
        Prescribed dose of the API in each tablet, ≥ 0, same length.

    Returns
    -------
    tuple of float, mg

    Raises
    ------
    ValueError
        Empty, non-positive masses, negative doses, or sequences of different lengths.
    """
    weighed = _check_masses(masses_mg, "masses_mg")
    designed = _check_masses(designed_masses_mg, "designed_masses_mg")
    if not (len(weighed) == len(designed) == len(prescribed_doses_mg)):
        raise ValueError(
            f"{len(weighed)} masses, {len(designed)} designed masses and "
            f"{len(prescribed_doses_mg)} doses: one of each per tablet"
        )
    out = []
    for i, (m, d, dose) in enumerate(zip(weighed, designed, prescribed_doses_mg, strict=True)):
        dose_mg = float(dose)
        if not math.isfinite(dose_mg) or dose_mg < 0.0:
            raise ValueError(f"prescribed_doses_mg[{i}] = {dose!r}: must be ≥ 0 mg")
        out.append(dose_mg * m / d)
    return tuple(out)


# ----------------------------------------------------------------------------------
# Designed masses from a record's content


def _tablet_designed_mass(
    tablet: ContentTablet, densities: Mapping[int, float]
) -> float | None:
    """Σ compartment design volume × density (1 g/cm³ = 1 mg/mm³), or None."""
    compartments: list[Mapping[str, Any]] = list(tablet.actives)
    if tablet.shell is not None:
        compartments.append(tablet.shell)
    if compartments and all("design_volume_mm3" in c for c in compartments):
        total = 0.0
        for comp in compartments:
            volume = number(comp.get("design_volume_mm3"))
            tool = comp.get("tool")
            if volume is None or not isinstance(tool, int) or tool not in densities:
                return None
            total += volume * densities[tool]
        return total if total > 0 else None
    # Fallback: a single-material tablet, design envelope volume × infill × density.
    tools = {c.get("tool") for c in compartments}
    if not tablet.design or len(tools) != 1 or tablet.shell is not None:
        return None
    (tool,) = tools
    volume = number(tablet.design.get("volume_mm3"))
    infill = number(tablet.design.get("infill"))
    if volume is None or infill is None or not isinstance(tool, int) or tool not in densities:
        return None
    mass = volume * infill * densities[tool]
    return mass if mass > 0 else None


def _dose_key(tablet: ContentTablet) -> tuple[tuple[str, float | None], ...]:
    return tuple(sorted((str(a.get("api", "")), number(a.get("dose_mg")))
                        for a in tablet.actives))


def normalised_masses_mg(
    masses_mg: Sequence[float], designed_masses_mg: Sequence[float]
) -> tuple[float, ...]:
    """Weighed masses scaled to the mean designed mass, for tablets of different designs.

    A batch of one may hold tablets of different doses and so of different designed
    masses; Ph. Eur. 2.9.5 compares units meant to be alike. Each mass is scaled by
    ``mean(designed) / designed_i``, so a tablet 2 % heavier than its own design is 2 %
    above the mean designed mass, and the 2.9.5 rule is applied to these values (the
    limit then follows the mean designed mass).

    Raises
    ------
    ValueError
        Empty or non-positive values, or sequences of different lengths.
    """
    weighed = _check_masses(masses_mg, "masses_mg")
    designed = _check_masses(designed_masses_mg, "designed_masses_mg")
    if len(weighed) != len(designed):
        raise ValueError(f"{len(weighed)} masses but {len(designed)} designed masses")
    mean = math.fsum(designed) / len(designed)
    return tuple(m * mean / d for m, d in zip(weighed, designed, strict=True))


def designed_masses_mg(content: Mapping[str, Any]) -> tuple[float, ...] | None:
    """Each tablet's designed mass from a record's content, or None when it cannot tell.

    Designed mass = Σ over the tablet's compartments of design volume × density. It
    reads ``tablets[i].actives[j].design_volume_mm3`` and ``.tool``, the optional
    ``tablets[i].shell`` (``design_volume_mm3``, ``tool``) and
    ``materials[k].density_g_cm3`` by ``tool``. A tablet whose compartments carry no
    volumes but that is made of one material falls back to
    ``design.volume_mm3 × design.infill × density``.

    Parameters
    ----------
    content : mapping
        A record's content.

    Returns
    -------
    tuple of float, mg, in tablet order; or None
        None when any tablet's mass cannot be computed (no density, no volumes).
    """
    densities = densities_by_tool(content)
    tablets = tablets_of(content)
    if not tablets:
        return None
    masses = []
    for tablet in tablets:
        mass = _tablet_designed_mass(tablet, densities)
        if mass is None:
            return None
        masses.append(mass)
    return tuple(masses)


_MISSING_DESIGN = [
    "tablets[i].actives[j].design_volume_mm3",
    "tablets[i].shell.design_volume_mm3 (when the tablet has a shell)",
    "materials[k].density_g_cm3",
]
"""The content keys designed masses are computed from (``missing`` when absent)."""


def plausible_band_mg(designed_mg: float | None) -> tuple[float, float]:
    """The masses (mg) that can be a weighing of a tablet of this designed mass:
    :data:`PLAUSIBLE_RATIO` of it, or :data:`PLAUSIBLE_MASS_MG` when it is not known."""
    if designed_mg is None:
        return PLAUSIBLE_MASS_MG
    low, high = PLAUSIBLE_RATIO
    return designed_mg * low, designed_mg * high


def check_plausible(
    masses_mg: Sequence[float], designed_masses_mg: Sequence[float] | None
) -> None:
    """Refuse masses that cannot be weighings of these tablets in mg.

    Parameters
    ----------
    masses_mg : sequence of float, mg
        Weighed masses, positive and finite, in tablet order.
    designed_masses_mg : sequence of float, mg, or None
        The tablets' designed masses (same length), or None when the record has none.

    Raises
    ------
    InputError
        Every mass outside :func:`plausible_band_mg` of its tablet, each named
        ``--mass-mg[i]`` with the allowed range.
    """
    problems = []
    for i, mass in enumerate(masses_mg):
        designed = None if designed_masses_mg is None else designed_masses_mg[i]
        low, high = plausible_band_mg(designed)
        if low <= mass <= high:
            continue
        if designed is None:
            band = f"{low:g}-{high:g} mg, the range of a tablet's mass in mg"
        else:
            band = (f"{low:.1f}-{high:.1f} mg, {PLAUSIBLE_RATIO[0]:g}-{PLAUSIBLE_RATIO[1]:g} "
                    f"× its designed {designed:.1f} mg")
        problems.append(Problem("command line", f"--mass-mg[{i}]",
                                f"is {mass:g} mg, outside {band}: not a weighing of "
                                f"tablet {i} in mg"))
    if problems:
        raise InputError(
            problems,
            hint="weigh in mg (a mass typed in grams is 1000 × too small) and give the masses "
            "in tablet order (`doseprint record qc ID --targets` lists them); a tablet that "
            "really weighs this is grossly defective: reject the batch (`doseprint record "
            "reject ID --by NAME --meaning TEXT`) giving the masses in its meaning",
        )


def qc_targets(record: Record) -> dict[str, Any]:
    """What to weigh, before weighing: each tablet's designed mass and its windows.

    The window of a tablet is its designed mass ± the uniformity limit (the limit of the
    mean designed mass): a tablet inside it passes the uniformity judgement if the
    batch's average lies on its design, since the judgement compares each tablet,
    normalised to its design, with the batch's average. The dose window is designed ×
    0.85-1.15: the estimated dose of a tablet outside it misses 85-115 % of the
    prescription. Masses outside the plausible band are refused as slips.

    Parameters
    ----------
    record : Record

    Returns
    -------
    dict
        ``{"record", "units", "rule", "rule_text", "limit_pct" (None without designed
        masses), "tablets": [{"tablet", "designed_mg", "window_mg", "dose_window_mg"
        (each [low, high] or None without designed masses), "plausible_mg"}], "missing",
        "note"}``, masses in mg rounded to 0.1 mg.
    """
    tablets = tablets_of(record.content)
    designed = designed_masses_mg(record.content)
    limit = None if designed is None else mass_limit_pct(math.fsum(designed) / len(designed))
    rule = uniformity_rule(len(tablets))

    def window(centre: float | None, low: float, high: float) -> list[float] | None:
        return None if centre is None else [round(centre * low, 1), round(centre * high, 1)]

    rows = []
    for i, tablet in enumerate(tablets):
        mass = None if designed is None else designed[i]
        fraction = 0.0 if limit is None else limit / 100.0
        rows.append({
            "tablet": tablet.index,
            "designed_mg": None if mass is None else round(mass, 1),
            "window_mg": window(mass, 1.0 - fraction, 1.0 + fraction),
            "dose_window_mg": window(mass, DOSE_LOW, DOSE_HIGH),
            "plausible_mg": [round(m, 1) for m in plausible_band_mg(mass)],
        })
    if designed is None:
        note = ("the record gives no designed masses: weigh every tablet; the masses are "
                "judged against their own average")
    else:
        note = ("the windows assume the batch's average lies on its design: the judgement "
                "compares each tablet, normalised to its design, with the batch's average, "
                "and its estimated dose with the prescription (85-115 %)")
    return {
        "record": record.id,
        "units": len(tablets),
        "rule": rule,
        "rule_text": describe_rule(rule, limit),
        "limit_pct": limit,
        "tablets": rows,
        "missing": [] if designed is not None else list(_MISSING_DESIGN),
        "note": note,
    }


def qc_event_data(record: Record, masses_mg: Sequence[float], by: str) -> dict[str, Any]:
    """The data of a ``qc`` event: weighed masses, judgement and estimated doses.

    Parameters
    ----------
    record : Record
        The record the tablets were printed under; its content gives the tablets,
        their prescribed doses and (where it carries them) their designed masses.
    masses_mg : sequence of float, mg
        Each tablet's weighed mass, in tablet order (``tablets[i]`` of the content).
    by : str
        Who weighed them (also the event's actor).

    Returns
    -------
    dict
        ``{"method", "rule", "weighed_by", "masses_mg", "basis", "designed_masses_mg"
        (list or None), "mass_ratio" (weighed / designed per tablet, or None),
        "uniformity" (see :meth:`MassUniformity.to_json`), "passed",
        "uniformity_passed", "doses_within_limits", "estimated_doses" ([{"tablet", "api",
        "prescribed_mg", "estimated_mg"}], empty without designed masses), "assumption",
        "missing" (content keys that were needed but absent), "warnings"}``. ``basis`` is
        ``"normalised"`` when the judgement ran on :func:`normalised_masses_mg` (designed
        masses known), ``"weighed"`` otherwise; ``rule`` is that of the judgement
        (:func:`uniformity_rule`).

    Raises
    ------
    InputError
        No name, no masses, a mass that is not positive, a different number of masses
        than the record has tablets, or a mass that cannot be a weighing of its tablet
        (:func:`check_plausible`). Nothing is to be recorded then.
    """
    if not by.strip():
        raise InputError("must name who weighed the tablets", file="command line", key="--by")
    tablets = tablets_of(record.content)
    if tablets and len(masses_mg) != len(tablets):
        raise InputError(
            f"{len(masses_mg)} masses given but record {record.id} has {len(tablets)} "
            "tablets: give one mass per tablet, in tablet order",
            file="command line",
            key="--mass-mg",
            hint="`doseprint record qc ID --targets` lists the tablets and their target masses",
        )
    designed = designed_masses_mg(record.content)
    if designed is not None and len(designed) != len(masses_mg):
        designed = None
    try:
        weighed = _check_masses(masses_mg, "--mass-mg")
    except ValueError as exc:
        raise InputError(str(exc), file="command line", key="--mass-mg") from exc
    check_plausible(weighed, designed)
    if designed is None:
        basis = "weighed"
        judgement = judge_mass_uniformity(weighed)
    else:
        basis = "normalised"
        judgement = judge_mass_uniformity(normalised_masses_mg(weighed, designed))
    estimates: list[dict[str, Any]] = []
    missing: list[str] = []
    if designed is None:
        missing = list(_MISSING_DESIGN)
    else:
        for i, tablet in enumerate(tablets):
            for active in tablet.actives:
                dose = number(active.get("dose_mg"))
                if dose is None:
                    continue
                (estimate,) = estimated_doses_mg([weighed[i]], [designed[i]], [dose])
                estimates.append(
                    {
                        "tablet": tablet.index,
                        "api": str(active.get("api", "")),
                        "prescribed_mg": dose,
                        "estimated_mg": round(estimate, 4),
                    }
                )
    warnings: list[str] = []
    # Each tablet's estimated dose must also lie within 85-115 % of its prescription (the
    # per-unit limits of Ph. Eur. 2.9.6, test A): uniformity alone cannot catch a batch
    # that is uniformly wrong, or a batch of one tablet.
    off_dose = [e for e in estimates
                if not DOSE_LOW <= e["estimated_mg"] / e["prescribed_mg"] <= DOSE_HIGH]
    for e in off_dose:
        warnings.append(f"tablet {e['tablet']}: estimated {e['estimated_mg']:.4g} mg of "
                        f"{e['api']} is {100 * e['estimated_mg'] / e['prescribed_mg']:.1f} % "
                        f"of the prescribed {e['prescribed_mg']:g} mg (allowed "
                        f"{100 * DOSE_LOW:g}-{100 * DOSE_HIGH:g} %)")
    if designed is None and len({_dose_key(t) for t in tablets}) > 1:
        warnings.append(
            "the tablets differ in dose, so their raw masses are not comparable: the "
            "judgement is on weighed masses and may fail for that reason alone"
        )
    return {
        "method": MASS_UNIFORMITY_METHOD,
        "rule": judgement.rule,
        "weighed_by": by.strip(),
        "masses_mg": list(weighed),
        "basis": basis,
        "designed_masses_mg": None if designed is None else [round(m, 4) for m in designed],
        "mass_ratio": None
        if designed is None
        else [round(m / d, 5) for m, d in zip(weighed, designed, strict=True)],
        "uniformity": judgement.to_json(),
        "passed": judgement.passed and not off_dose,
        "uniformity_passed": judgement.passed,
        "doses_within_limits": not off_dose,
        "estimated_doses": estimates,
        "assumption": "estimated dose = prescribed × weighed / designed mass "
        "(homogeneous drug loading)",
        "missing": missing,
        "warnings": warnings,
    }


DOSE_LOW = 0.85
DOSE_HIGH = 1.15
"""Per-tablet limits on the estimated dose, as a fraction of the prescribed dose
(Ph. Eur. 2.9.6 uniformity of content, test A: every unit within 85-115 % of the mean)."""


def latest_qc(record: Record) -> dict[str, Any] | None:
    """The data of the record's latest ``qc`` event, or None if it has none."""
    for event in reversed(record.events):
        kind: str = event.kind
        if kind == QC_EVENT_KIND:
            return event.data
    return None


def qc_passed(record: Record) -> bool | None:
    """Whether the latest QC of the record passed; None when there is no QC yet."""
    data = latest_qc(record)
    if data is None:
        return None
    return data.get("passed") is True
