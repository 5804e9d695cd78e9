"""Numbers read off a release curve, and whether a curve meets a prescription's target.

A curve is two 1-D arrays of the same length: ``hours`` (strictly increasing, from 0 h)
and ``fraction`` released (0..1) at those hours. Between samples the curve is taken as
linear. The release kinds and when each is met are those of spec/prescription.md; the
thresholds come from :data:`doseprint.tolerances.tol`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from doseprint.tolerances import tol
from doseprint.typed import RELEASE_KINDS, FloatArray, ReleaseKind

__all__ = [
    "ReleaseJudgement",
    "f2",
    "judge_release",
    "mean_dissolution_time_h",
    "release_time_grid_h",
    "t50_h",
    "t80_h",
    "time_to_fraction",
]

# Sampling of release_time_grid_h: fine where immediate release happens and the 0.5 h
# check is read, coarser after. With linear interpolation on a smooth curve, 0.25 h steps
# read a t80 of a few hours far inside the ±10 % sustained-release window.
_FINE_STEP_H = 0.05
_FINE_END_H = 2.0
_COARSE_STEP_H = 0.25
# Every curve runs at least a day, so t50/t80/MDT are reported for every kind.
_MIN_END_H = 24.0
# How far past the target the curve must run: twice the target t80 (so a slow design is
# still measured, not just "not reached") and 1.5 times the last profile point.
_T80_SPAN = 2.0
_PROFILE_SPAN = 1.5


# Curve checks ---------------------------------------------------------------------------


def _curve(hours: ArrayLike, fraction: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validated float copies of a curve; a malformed curve is a caller's bug."""
    h = np.asarray(hours, dtype=np.float64)
    f = np.asarray(fraction, dtype=np.float64)
    if h.ndim != 1 or h.shape != f.shape or h.size < 2:
        raise ValueError(
            f"a release curve needs two 1-D arrays of equal length >= 2, got shapes "
            f"{h.shape} and {f.shape}"
        )
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(f))):
        raise ValueError("a release curve must hold finite numbers only")
    if h[0] != 0.0 or np.any(np.diff(h) <= 0.0):
        raise ValueError("a release curve's hours must start at 0 and strictly increase")
    return h, f


def _profile_points(profile: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """A prescription profile as (hours, fraction) arrays."""
    points = np.asarray(profile, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 1:
        raise ValueError(
            f"a profile is a list of [hours, fraction] pairs, got shape {points.shape}"
        )
    return points[:, 0], points[:, 1]


# Times and means --------------------------------------------------------------------------


def time_to_fraction(hours: ArrayLike, fraction: ArrayLike, target: float) -> float | None:
    """First time the curve reaches a released fraction, by linear interpolation.

    Parameters
    ----------
    hours : (n,) float, h
        Sample times, strictly increasing from 0.
    fraction : (n,) float, 0..1
        Fraction released at each sample time.
    target : float, 0..1
        Fraction to reach.

    Returns
    -------
    time_h : float or None, h
        The earliest time at which the interpolated curve equals ``target`` (``hours[0]``
        if the first sample already reaches it), or None if no sample reaches it.

    Raises
    ------
    ValueError
        If the curve is malformed (see the module docstring).
    """
    h, f = _curve(hours, fraction)
    reached = np.flatnonzero(f >= target)
    if reached.size == 0:
        return None
    i = int(reached[0])
    if i == 0:
        return float(h[0])
    # f[i-1] < target <= f[i], so the segment rises and the division is safe.
    share = (target - f[i - 1]) / (f[i] - f[i - 1])
    return float(h[i - 1] + share * (h[i] - h[i - 1]))


def t50_h(hours: ArrayLike, fraction: ArrayLike) -> float | None:
    """Hours to 50 % released, or None if the curve never gets there.

    Parameters
    ----------
    hours : (n,) float, h
        Sample times, strictly increasing from 0.
    fraction : (n,) float, 0..1
        Fraction released at each sample time.

    Returns
    -------
    t50 : float or None, h
        See :func:`time_to_fraction`.
    """
    return time_to_fraction(hours, fraction, 0.5)


def t80_h(hours: ArrayLike, fraction: ArrayLike) -> float | None:
    """Hours to 80 % released, or None if the curve never gets there.

    Parameters
    ----------
    hours : (n,) float, h
        Sample times, strictly increasing from 0.
    fraction : (n,) float, 0..1
        Fraction released at each sample time.

    Returns
    -------
    t80 : float or None, h
        See :func:`time_to_fraction`.
    """
    return time_to_fraction(hours, fraction, 0.8)


def mean_dissolution_time_h(hours: ArrayLike, fraction: ArrayLike) -> float | None:
    """Mean dissolution time (MDT) of the drug released within the curve.

    The amount released by the end of the curve, F_end = ``fraction[-1]``, is treated as
    a distribution of release times with cumulative share F(t)/F_end; its mean is::

        MDT = ∫_0^T (F_end − F(t)) dt / F_end        (T = hours[-1])

    integrated by the trapezoid rule on the linear-between-samples curve. When the curve
    runs until release is complete this is the mean release time ∫_0^∞ (1 − F) dt
    (L²/(12D) for a slab, for instance); when it stops early it is the mean over the part
    released so far, and so shorter.

    Parameters
    ----------
    hours : (n,) float, h
        Sample times, strictly increasing from 0.
    fraction : (n,) float, 0..1
        Fraction released at each sample time.

    Returns
    -------
    mdt : float or None, h
        The mean dissolution time, or None if nothing has been released by the end.

    Raises
    ------
    ValueError
        If the curve is malformed (see the module docstring).
    """
    h, f = _curve(hours, fraction)
    f_end = float(f[-1])
    if f_end <= 0.0:
        return None
    unreleased = f_end - f
    area = float(np.sum(0.5 * (unreleased[1:] + unreleased[:-1]) * np.diff(h)))
    return area / f_end


def f2(predicted_pct: ArrayLike, target_pct: ArrayLike) -> float:
    """Similarity factor f2 between two dissolution curves sampled at the same times.

    As spec/prescription.md (and the FDA dissolution guidance) define it, with R and T in
    percent released::

        f2 = 50 · log10(100 / √(1 + mean((R_t − T_t)²)))

    100 for identical curves; the curves count as similar from
    ``tol.f2_similar`` (50, an average difference of about 10 %) up. The FDA's advice on
    choosing the time points (at least three, at most one past 85 %) is the caller's
    business: doseprint uses the prescription's own profile points.

    Parameters
    ----------
    predicted_pct : (n,) float, %
        Predicted percentage released at each time point.
    target_pct : (n,) float, %
        Target (reference) percentage released at the same time points.

    Returns
    -------
    f2 : float
        The similarity factor; at most 100.

    Raises
    ------
    ValueError
        If the two are not 1-D arrays of the same non-zero length, or hold non-finite
        values.
    """
    r = np.asarray(predicted_pct, dtype=np.float64)
    t = np.asarray(target_pct, dtype=np.float64)
    if r.ndim != 1 or r.shape != t.shape or r.size == 0:
        raise ValueError(
            f"f2 needs two 1-D arrays of the same non-zero length, got {r.shape} and {t.shape}"
        )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
        raise ValueError("f2 needs finite percentages")
    mean_square = float(np.mean((r - t) ** 2))
    return 50.0 * math.log10(100.0 / math.sqrt(1.0 + mean_square))


# Judgement ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseJudgement:
    """Whether a predicted release curve meets one active's release target, and why.

    Attributes
    ----------
    kind : {"immediate", "sustained", "profile"}
        The prescription's release kind.
    met : bool
        True when the curve meets the target as spec/prescription.md defines it.
    t50_h : float or None, h
        Predicted hours to 50 % released (None if not reached within the curve).
    t80_h : float or None, h
        Predicted hours to 80 % released (None if not reached within the curve).
    mdt_h : float or None, h
        Mean dissolution time of the curve (see :func:`mean_dissolution_time_h`).
    f2 : float or None
        Similarity to the target profile; None unless ``kind == "profile"``.
    released_at_30min : float, 0..1
        Predicted fraction released at ``tol.immediate_time_h`` (0.5 h).
    reason : str
        One line with the numbers behind ``met``, for reports and error messages.
    """

    kind: ReleaseKind
    met: bool
    t50_h: float | None
    t80_h: float | None
    mdt_h: float | None
    f2: float | None
    released_at_30min: float
    reason: str


def judge_release(
    kind: ReleaseKind,
    hours: ArrayLike,
    fraction: ArrayLike,
    t80_h: float | None = None,
    profile: ArrayLike | None = None,
) -> ReleaseJudgement:
    """Judge a predicted release curve against a prescription's release target.

    * ``immediate``: met when the fraction released at 0.5 h is at least 0.85.
    * ``sustained``: met when the predicted t80 is within ±10 % of ``t80_h``; a curve that
      never reaches 80 % is not met.
    * ``profile``: the predicted curve is interpolated at the profile's own time points,
      and the target is met when f2 between the two (in percent) is at least 50.

    The thresholds are ``tol.immediate_fraction``, ``tol.immediate_time_h``,
    ``tol.sustained_t80_rel`` and ``tol.f2_similar``.

    Parameters
    ----------
    kind : {"immediate", "sustained", "profile"}
        The prescription's release kind.
    hours : (n,) float, h
        Sample times of the predicted curve, strictly increasing from 0, reaching at least
        0.5 h and the last profile point.
    fraction : (n,) float, 0..1
        Predicted fraction released at each sample time.
    t80_h : float, optional, h
        Target hours to 80 % released; required for ``sustained``.
    profile : (m, 2) float, optional, (h, 0..1)
        Target ``[hours, fraction]`` points; required for ``profile``.

    Returns
    -------
    judgement : ReleaseJudgement
        The verdict, the curve's t50, t80, MDT and 0.5 h fraction, and f2 for profiles.

    Raises
    ------
    ValueError
        If the kind is unknown, its target is missing or not positive, the curve is
        malformed, or it stops before 0.5 h or before the last profile point.
    """
    if kind not in RELEASE_KINDS:
        raise ValueError(f"unknown release kind {kind!r}; expected one of {RELEASE_KINDS}")
    h, f = _curve(hours, fraction)
    check_h = tol.immediate_time_h
    if h[-1] < check_h:
        raise ValueError(f"the release curve stops at {h[-1]} h, before {check_h} h")
    at_check = float(np.interp(check_h, h, f))
    t50 = time_to_fraction(h, f, 0.5)
    t80 = time_to_fraction(h, f, 0.8)
    mdt = mean_dissolution_time_h(h, f)
    similarity: float | None = None

    if kind == "immediate":
        need = tol.immediate_fraction
        met = at_check >= need
        reason = f"{100 * at_check:.1f} % released at {check_h:g} h vs at least {100 * need:.0f} %"
    elif kind == "sustained":
        if t80_h is None or not (math.isfinite(t80_h) and t80_h > 0.0):
            raise ValueError(f"sustained release needs a target t80_h above 0, got {t80_h!r}")
        window = f"target {t80_h:.1f} h ±{100 * tol.sustained_t80_rel:.0f} %"
        if t80 is None:
            met = False
            reason = f"t80 not reached by {h[-1]:.1f} h ({100 * f[-1]:.1f} % released) vs {window}"
        else:
            met = abs(t80 - t80_h) <= tol.sustained_t80_rel * t80_h
            reason = f"t80 {t80:.1f} h vs {window}"
    else:
        if profile is None:
            raise ValueError("profile release needs the target profile points")
        profile_h, profile_fraction = _profile_points(profile)
        if profile_h[-1] > h[-1]:
            raise ValueError(
                f"the release curve stops at {h[-1]} h, before the last profile point "
                f"at {profile_h[-1]} h"
            )
        predicted = np.interp(profile_h, h, f)
        similarity = f2(100.0 * predicted, 100.0 * profile_fraction)
        met = similarity >= tol.f2_similar
        reason = (
            f"f2 {similarity:.1f} vs at least {tol.f2_similar:g} "
            f"over {profile_h.size} profile points"
        )

    return ReleaseJudgement(
        kind=kind,
        met=bool(met),
        t50_h=t50,
        t80_h=t80,
        mdt_h=mdt,
        f2=similarity,
        released_at_30min=at_check,
        reason=reason,
    )


# Time grid ------------------------------------------------------------------------------


def release_time_grid_h(
    kind: ReleaseKind,
    t80_h: float | None = None,
    profile: ArrayLike | None = None,
) -> FloatArray:
    """Hours at which to predict a release curve that :func:`judge_release` can read.

    0.05 h steps to 2 h (immediate release and the 0.5 h check), then 0.25 h steps to an
    end of at least 24 h, twice ``t80_h`` and 1.5 times the last profile point, rounded up
    to a whole step. Every kind gets a curve of at least a day, so t50, t80 and MDT can be
    reported for each. Both steps divide 0.5 h, so 0.5 h itself is a sample.

    Parameters
    ----------
    kind : {"immediate", "sustained", "profile"}
        The prescription's release kind.
    t80_h : float, optional, h
        Target hours to 80 % released; required for ``sustained``, and extends the grid
        whenever given.
    profile : (m, 2) float, optional, (h, 0..1)
        Target ``[hours, fraction]`` points; required for ``profile``, and extends the
        grid whenever given.

    Returns
    -------
    hours : (n,) float, h
        Strictly increasing sample times, starting at 0.

    Raises
    ------
    ValueError
        If the kind is unknown or its target is missing, or ``t80_h`` or a profile time
        is not a finite positive number.
    """
    if kind not in RELEASE_KINDS:
        raise ValueError(f"unknown release kind {kind!r}; expected one of {RELEASE_KINDS}")
    if kind == "sustained" and t80_h is None:
        raise ValueError("sustained release needs a target t80_h")
    if kind == "profile" and profile is None:
        raise ValueError("profile release needs the target profile points")

    end_h = _MIN_END_H
    if t80_h is not None:
        if not (math.isfinite(t80_h) and t80_h > 0.0):
            raise ValueError(f"t80_h must be a finite number above 0, got {t80_h!r}")
        end_h = max(end_h, _T80_SPAN * t80_h)
    if profile is not None:
        profile_h, _ = _profile_points(profile)
        if not (np.all(np.isfinite(profile_h)) and np.all(profile_h > 0.0)):
            raise ValueError("profile times must be finite numbers above 0 h")
        end_h = max(end_h, _PROFILE_SPAN * float(profile_h.max()))

    # Integer step counts times the step, so no rounding drift accumulates along the grid.
    n_fine = round(_FINE_END_H / _FINE_STEP_H)
    n_coarse = math.ceil((end_h - _FINE_END_H) / _COARSE_STEP_H - 1e-9)
    fine = _FINE_STEP_H * np.arange(n_fine + 1, dtype=np.float64)
    coarse = _FINE_END_H + _COARSE_STEP_H * np.arange(1, n_coarse + 1, dtype=np.float64)
    grid: FloatArray = np.concatenate([fine, coarse])
    return grid
