"""Calibrate a formulation's release parameters against a measured dissolution curve.

A site measures the dissolution of a solid cylindrical tablet of known size printed
wholly from one formulation, and gives the curve as a CSV file (``hours`` and the
fraction or percentage released). :func:`calibrate` fits the parameters of the
formulation's release mechanism to it, using the same closed-form model the designer
uses for plain cylinders (:func:`doseprint.release.analytical.cylinder_released`):

* ``"diffusion"``: the diffusivity ``diffusivity_mm2_s``;
* ``"erosion"``: the surface erosion rate ``erosion_rate_mm_h``;
* ``"diffusion+erosion"``: both.

:func:`calibrated_formulation_toml` then writes the text of a new formulation file
(spec/formulation.md) with the fitted values, and with the data's name and SHA-256, the
tablet's geometry, the fit's RMS residual and its f2 added to ``sources``. The output
holds no date or host, so the same inputs always give the same bytes.

A fit that cannot reproduce the data (f2 below :data:`MIN_FIT_F2`) is refused rather
than written: a formulation that does not reproduce its own calibration data would
mislead every design made from it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares

from doseprint.errors import InputError, Problem
from doseprint.models.formulation import FORMULATION_SCHEMA, Formulation
from doseprint.models.load import read_text
from doseprint.release.analytical import SECONDS_PER_HOUR, cylinder_released
from doseprint.release.metrics import f2
from doseprint.tolerances import tol
from doseprint.typed import FloatArray, ReleaseMechanism

if TYPE_CHECKING:
    import _csv

__all__ = [
    "DIFFUSIVITY_BOUNDS_MM2_S",
    "EROSION_RATE_BOUNDS_MM_H",
    "FRACTION_NOISE",
    "MIN_FIT_F2",
    "MIN_POINTS",
    "PERCENT_THRESHOLD",
    "Calibration",
    "DissolutionData",
    "calibrate",
    "calibrated_formulation_toml",
    "read_dissolution",
    "read_dissolution_csv",
]

logger = logging.getLogger(__name__)

# Reading the data ---------------------------------------------------------------------

#: A released fraction may sit this far below an earlier one (and this far outside
#: 0..1) before the curve counts as falling (or out of range): dissolution assays scatter
#: by a percent or two, and a cumulative curve that dips by that much is still rising.
FRACTION_NOISE = 0.02
#: If any released value is above this, the column is read as percentages and divided by
#: 100. No fraction can exceed 1 + FRACTION_NOISE, and a percentage curve that never
#: passes 1.5 % has released nothing worth fitting.
PERCENT_THRESHOLD = 1.5
#: Measured points after t = 0 needed for a fit; also the FDA's minimum for f2.
MIN_POINTS = 3
# Names of the released column, recognised whatever other columns the file has.
_RELEASED_NAMES = ("fraction", "released")

# Fitting --------------------------------------------------------------------------------

#: The fit refuses any result whose f2 against the data is below this: the same
#: similarity a predicted curve must reach to meet a prescription's target profile
#: (``tol.f2_similar``, an average difference of about 10 %). A formulation calibrated
#: more loosely than designs are judged would not be fit to judge them.
MIN_FIT_F2 = tol.f2_similar
#: Search range of the diffusivity, mm²/s. 1e-8 releases nothing measurable from a
#: millimetre-sized tablet in a day; 1e-1 releases everything within seconds.
DIFFUSIVITY_BOUNDS_MM2_S = (1e-8, 1e-1)
#: Search range of the erosion rate, mm/h. 1e-4 mm/h erodes 2.4 µm in a day; 100 mm/h
#: dissolves any tablet within minutes.
EROSION_RATE_BOUNDS_MM_H = (1e-4, 1e2)
# Starting points: one per decade of each bound range (log10), plus the formulation's own
# values; the best few by sum of squares are refined with least_squares, so a poor start
# in the file cannot trap the fit in the flat tail of a curve that is long complete.
_STARTS_PER_DECADE = 1
_REFINED_STARTS = 3
# A fitted log10 value this close to its bound is reported as "at the bound".
_AT_BOUND_LOG10 = 1e-3
_FIT_TOLERANCE = 1e-12
# A fitted parameter is "not determined" when changing it by _SENSITIVITY_REL moves no
# predicted point by _SENSITIVITY_FRACTION or more: a tenth of a percent released is below
# what any dissolution assay resolves.
_SENSITIVITY_REL = 0.10
_SENSITIVITY_FRACTION = 1e-3

# The loader's rule for ids (doseprint.models.load), so the file written can be read.
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class DissolutionData:
    """A measured dissolution curve as read from its CSV file.

    Attributes
    ----------
    hours : (n,) float, h
        Sample times, at least 0 and strictly rising.
    fraction : (n,) float, 0..1
        Fraction released at each time (percentages already divided by 100); within
        :data:`FRACTION_NOISE` of 0..1.
    name : str
        The file's name as given.
    sha256 : str
        SHA-256 (hex) of the exact bytes that were parsed.
    notes : tuple of str
        What the reader did that the user should know (e.g. percent converted).
    """

    hours: FloatArray
    fraction: FloatArray
    name: str
    sha256: str
    notes: tuple[str, ...] = ()


def read_dissolution(path: Path | str) -> DissolutionData:
    """Read and check a dissolution CSV file, keeping its hash and the reader's notes.

    The file has a header row naming a ``hours`` column and the released column: one
    named ``fraction`` or ``released`` (other columns, such as a standard deviation, are
    then ignored), or else the single other column (as ``doseprint release --csv``
    writes it, ``hours,<api>``). Column names are matched without regard to case or
    surrounding spaces. Blank lines are skipped. If any released value is above
    :data:`PERCENT_THRESHOLD` the column is read as percentages. Then:

    * every time is a finite number ≥ 0, and the times rise strictly (rows sorted);
    * every fraction is a finite number within :data:`FRACTION_NOISE` of 0..1, and
      none falls more than :data:`FRACTION_NOISE` below the highest before it;
    * at least :data:`MIN_POINTS` rows have a time after 0.

    Parameters
    ----------
    path : path-like
        The CSV file (UTF-8, a byte-order mark is allowed).

    Returns
    -------
    data : DissolutionData
        The curve, the file's name and SHA-256, and notes.

    Raises
    ------
    InputError
        Naming the file, the line and the column of every problem found.
    """
    path = Path(path)
    name = str(path)
    text, raw = read_text(path, "utf-8-sig")  # a spreadsheet's byte-order mark is fine

    reader = csv.reader(io.StringIO(text, newline=""))
    problems: list[Problem] = []
    try:
        header = _first_row(reader)
        if header is None:
            raise InputError("is empty; expected a header row such as hours,fraction",
                             file=name)
        header_line = reader.line_num
        hours_col, released_col = _columns(header, name, header_line)
        rows = _parse_rows(reader, name, hours_col, released_col, header, problems)
    except csv.Error as exc:
        raise InputError(f"is not valid CSV: {exc}", file=name,
                         key=f"line {reader.line_num}") from None
    # The rows that parsed are checked too, so every problem is reported at once.
    released_name = header[released_col].strip()

    notes: list[str] = []
    lines = [row[0] for row in rows]
    hours = np.array([row[1] for row in rows], dtype=np.float64)
    values = np.array([row[2] for row in rows], dtype=np.float64)
    scale = 1.0
    if values.size and float(values.max()) > PERCENT_THRESHOLD:
        scale = 100.0
        notes.append(f"{name}: column {released_name} read as percent released (values "
                     f"above {PERCENT_THRESHOLD:g}) and divided by 100")
    fraction = values / scale
    _check_curve(name, released_name, lines, hours, fraction, scale, problems)
    if problems:
        raise InputError(problems)
    after_zero = int(np.count_nonzero(hours > 0.0))
    if after_zero < MIN_POINTS:
        last = f"line {lines[-1]}" if lines else f"line {header_line}"
        raise InputError(
            [Problem(name, last, f"the file has {after_zero} measured point(s) after 0 h; "
                     f"a fit needs at least {MIN_POINTS}")]
        )
    for note in notes:
        logger.info(note)
    hours.setflags(write=False)
    fraction.setflags(write=False)
    return DissolutionData(hours=hours, fraction=fraction, name=name,
                           sha256=_sha256_hex(raw), notes=tuple(notes))


def read_dissolution_csv(path: Path | str) -> tuple[FloatArray, FloatArray]:
    """Read a dissolution CSV file: the times and the fractions released.

    See :func:`read_dissolution` for the format and the checks; this returns only the
    curve (percentages converted to fractions, with a logged note).

    Parameters
    ----------
    path : path-like
        The CSV file.

    Returns
    -------
    hours : (n,) float, h
        Sample times, at least 0 and strictly rising.
    fraction : (n,) float, 0..1
        Fraction released at each time.

    Raises
    ------
    InputError
        Naming the file, the line and the column of every problem found.
    """
    data = read_dissolution(path)
    return data.hours, data.fraction


def _sha256_hex(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _first_row(reader: _csv.Reader) -> list[str] | None:
    """The first non-blank row, or None if there is none."""
    for row in reader:
        if any(cell.strip() for cell in row):
            return list(row)
    return None


def _columns(header: list[str], name: str, line: int) -> tuple[int, int]:
    """Indices of the hours column and the released column in the header row."""
    names = [cell.strip().lower() for cell in header]
    listed = ", ".join(cell.strip() or "(empty)" for cell in header)
    where = f"line {line}"
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    if duplicated:
        raise InputError(f"names column {duplicated[0]} more than once (columns: {listed})",
                         file=name, key=where)
    if "hours" not in names:
        raise InputError(f"has no hours column (columns: {listed}); the header must name "
                         "hours and the released column, e.g. hours,fraction",
                         file=name, key=where)
    hours_col = names.index("hours")
    named = [i for i, n in enumerate(names) if n in _RELEASED_NAMES]
    others = [i for i, n in enumerate(names) if i != hours_col]
    if len(named) > 1:
        raise InputError(f"has both {header[named[0]].strip()} and "
                         f"{header[named[1]].strip()} columns; keep one", file=name, key=where)
    if named:
        return hours_col, named[0]
    if len(others) == 1 and names[others[0]]:
        return hours_col, others[0]
    raise InputError(f"has columns {listed}; besides hours it needs one column named "
                     "fraction or released (or exactly one other column)",
                     file=name, key=where)


def _parse_rows(
    reader: _csv.Reader,
    name: str,
    hours_col: int,
    released_col: int,
    header: list[str],
    problems: list[Problem],
) -> list[tuple[int, float, float]]:
    """(line, hours, released value) of every data row that parses; problems recorded."""
    rows: list[tuple[int, float, float]] = []
    width = max(hours_col, released_col) + 1
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < width:
            problems.append(Problem(name, f"line {line}", f"has {len(row)} value(s); the "
                                    f"header names {len(header)} columns"))
            continue
        values = []
        for col in (hours_col, released_col):
            column = header[col].strip()
            cell = row[col].strip()
            try:
                value = float(cell)
            except ValueError:
                problems.append(Problem(name, f"line {line}, {column}",
                                        f"is {cell!r}, not a number"))
                continue
            if not math.isfinite(value):
                problems.append(Problem(name, f"line {line}, {column}",
                                        f"is {cell!r}; must be a finite number"))
                continue
            values.append(value)
        if len(values) == 2:
            rows.append((line, values[0], values[1]))
    return rows


def _check_curve(
    name: str,
    released_name: str,
    lines: list[int],
    hours: FloatArray,
    fraction: FloatArray,
    scale: float,
    problems: list[Problem],
) -> None:
    """Record every time that is negative or not rising, and every fraction that is out
    of range or falls by more than the noise allowed."""
    unit = " %" if scale != 1.0 else ""
    highest = -math.inf
    highest_line = 0
    previous = -math.inf
    for line, t, f in zip(lines, hours.tolist(), fraction.tolist(), strict=True):
        if t < 0.0:
            problems.append(Problem(name, f"line {line}, hours",
                                    f"is {t:g}; times must be 0 or later"))
        elif t <= previous:
            problems.append(Problem(name, f"line {line}, hours",
                                    f"is {t:g}, not after the row before ({previous:g} h); "
                                    "sort the rows by time and give each time once"))
        previous = max(previous, t)
        shown = f"{f * scale:g}{unit}"
        if not (-FRACTION_NOISE <= f <= 1.0 + FRACTION_NOISE):
            problems.append(Problem(
                name, f"line {line}, {released_name}",
                f"is {shown}; a fraction released must be within 0..1 (0..100 %), "
                f"give or take {FRACTION_NOISE:g} for measurement noise"))
        elif f < highest - FRACTION_NOISE:
            problems.append(Problem(
                name, f"line {line}, {released_name}",
                f"is {shown}, below {highest * scale:g}{unit} at line {highest_line} by more "
                f"than the {FRACTION_NOISE * scale:g}{unit} allowed for measurement noise; a "
                "cumulative release curve does not fall"))
        if f > highest:
            highest, highest_line = f, line


# Fitting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The result of fitting a formulation's release parameters to a dissolution curve.

    Attributes
    ----------
    formulation_id : str
        The formulation whose parameters were fitted.
    mechanism : {"diffusion", "erosion", "diffusion+erosion"}
        Its release mechanism, which decides what was fitted.
    fitted : tuple of str
        Names of the fitted keys (``diffusivity_mm2_s``, ``erosion_rate_mm_h``).
    diffusivity_mm2_s : float, mm²/s
        Fitted diffusivity, or the formulation's own if not fitted.
    erosion_rate_mm_h : float, mm/h
        Fitted erosion rate, or the formulation's own if not fitted.
    diameter_mm, height_mm : float, mm
        Geometry of the solid cylindrical tablet measured.
    rms_residual : float, fraction
        Root mean square of (predicted − measured) fraction released over the points.
    f2 : float
        Similarity factor of the fitted curve against the data, at the data's own time
        points, in percent released (:func:`doseprint.release.metrics.f2`).
    n_points : int
        Number of data points fitted.
    hours : (n,) float, h
        The data's time points.
    measured : (n,) float, 0..1
        The measured fractions released.
    predicted : (n,) float, 0..1
        The fitted model's fractions released at ``hours``.
    notes : tuple of str
        Caveats for the user, e.g. a parameter that ended at its search bound.
    """

    formulation_id: str
    mechanism: ReleaseMechanism
    fitted: tuple[str, ...]
    diffusivity_mm2_s: float
    erosion_rate_mm_h: float
    diameter_mm: float
    height_mm: float
    rms_residual: float
    f2: float
    n_points: int
    hours: FloatArray = field(repr=False)
    measured: FloatArray = field(repr=False)
    predicted: FloatArray = field(repr=False)
    notes: tuple[str, ...] = ()


_FITTED_KEYS: dict[ReleaseMechanism, tuple[str, ...]] = {
    "diffusion": ("diffusivity_mm2_s",),
    "erosion": ("erosion_rate_mm_h",),
    "diffusion+erosion": ("diffusivity_mm2_s", "erosion_rate_mm_h"),
}
_BOUNDS = {
    "diffusivity_mm2_s": DIFFUSIVITY_BOUNDS_MM2_S,
    "erosion_rate_mm_h": EROSION_RATE_BOUNDS_MM_H,
}
_UNITS = {"diffusivity_mm2_s": "mm2/s", "erosion_rate_mm_h": "mm/h"}


def calibrate(
    formulation: Formulation,
    hours: ArrayLike,
    fraction: ArrayLike,
    *,
    diameter_mm: float,
    height_mm: float,
    data_name: str = "",
) -> Calibration:
    """Fit the formulation's release parameters to a measured dissolution curve.

    The tablet is a solid cylinder of the given size made wholly of the formulation, in
    sink conditions; its release is :func:`~doseprint.release.analytical.cylinder_released`
    with the formulation's ``release_mechanism``. The fitted parameters (see the module
    docstring) are searched in log10 within :data:`DIFFUSIVITY_BOUNDS_MM2_S` and
    :data:`EROSION_RATE_BOUNDS_MM_H`: the sum of squared fraction residuals is evaluated
    on a grid of one start per decade plus the formulation's own values, and the best
    few starts are refined with ``scipy.optimize.least_squares`` (trust region
    reflective, bounded); the lowest cost wins.

    Parameters
    ----------
    formulation : Formulation
        The formulation the tablet was printed from; its other values are kept.
    hours : (n,) float, h
        Measurement times, at least 0 and strictly rising.
    fraction : (n,) float, 0..1
        Fraction released at each time.
    diameter_mm : float, mm
        Diameter of the tablet measured.
    height_mm : float, mm
        Height of the tablet measured.
    data_name : str, optional
        The data's file name, used in error messages.

    Returns
    -------
    calibration : Calibration
        The fitted values, the fit's RMS residual and f2, and both curves.

    Raises
    ------
    InputError
        The geometry is not positive, or the fitted curve's f2 against the data is below
        :data:`MIN_FIT_F2` (the message gives the best fit found).
    ValueError
        The curve arrays are malformed (a caller's bug: :func:`read_dissolution` checks
        files).
    """
    # Copies, so the arrays frozen into the result are not the caller's.
    h = np.array(hours, dtype=np.float64)
    measured = np.array(fraction, dtype=np.float64)
    if h.ndim != 1 or h.shape != measured.shape or h.size < MIN_POINTS:
        raise ValueError(f"a dissolution curve needs two 1-D arrays of equal length >= "
                         f"{MIN_POINTS}, got shapes {h.shape} and {measured.shape}")
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(measured))) or np.any(h < 0.0):
        raise ValueError("a dissolution curve needs finite numbers and times >= 0")
    for key, value in (("diameter_mm", diameter_mm), ("height_mm", height_mm)):
        if not (math.isfinite(value) and value > 0.0):
            raise InputError(f"is {value!r}; the tablet's size must be a number of mm above 0",
                             key=key)
    radius_mm = 0.5 * diameter_mm
    mechanism = formulation.release_mechanism
    keys = _FITTED_KEYS[mechanism]
    t_s = h * SECONDS_PER_HOUR
    fixed = {"diffusivity_mm2_s": formulation.diffusivity_mm2_s,
             "erosion_rate_mm_h": formulation.erosion_rate_mm_h}

    def values_of(log10_params: FloatArray) -> dict[str, float]:
        values = dict(fixed)
        for key, log_value in zip(keys, log10_params.tolist(), strict=True):
            values[key] = 10.0**log_value
        return values

    def predict(log10_params: FloatArray) -> FloatArray:
        values = values_of(log10_params)
        return cylinder_released(t_s, radius_mm, height_mm, values["diffusivity_mm2_s"],
                                 mechanism, values["erosion_rate_mm_h"])

    def residuals(log10_params: FloatArray) -> FloatArray:
        result: FloatArray = predict(log10_params) - measured
        return result

    lower = np.array([math.log10(_BOUNDS[k][0]) for k in keys])
    upper = np.array([math.log10(_BOUNDS[k][1]) for k in keys])
    best = _fit(residuals, _starts(keys, fixed, lower, upper), lower, upper)

    values = values_of(best)
    predicted = predict(best)
    rms = float(np.sqrt(np.mean((predicted - measured) ** 2)))
    similarity = f2(100.0 * predicted, 100.0 * measured)
    fitted_text = ", ".join(f"{k} = {values[k]:.4g} {_UNITS[k]}" for k in keys)
    if similarity < MIN_FIT_F2:
        raise InputError(
            f"the {mechanism} model of a {diameter_mm:g} x {height_mm:g} mm cylinder cannot "
            f"reproduce this dissolution curve: the best fit ({fitted_text}) has f2 = "
            f"{similarity:.1f} against the data, below the {MIN_FIT_F2:g} needed, with an "
            f"RMS residual of {rms:.3f} (fraction released) over {h.size} points; no "
            "formulation was written",
            file=data_name or "dissolution data",
            hint="check the tablet's diameter and height, that the hours column is in "
                 "hours, and that the formulation's release_mechanism describes this "
                 "material (a lag time, burst or incomplete release is outside the model)",
        )

    notes = []
    for i, (key, lo, hi) in enumerate(zip(keys, lower.tolist(), upper.tolist(), strict=True)):
        log_value = float(best[i])
        if log_value - lo < _AT_BOUND_LOG10 or hi - log_value < _AT_BOUND_LOG10:
            notes.append(f"{key} ended at the bound of its search range "
                         f"({_BOUNDS[key][0]:g}..{_BOUNDS[key][1]:g} {_UNITS[key]}); treat "
                         "the fitted value as a limit, not a measurement")
        # A parameter the curve hardly depends on is not determined by the data, wherever
        # the optimiser happened to stop (e.g. all released before the first sample).
        step = np.zeros_like(best)
        step[i] = math.log10(1.0 + _SENSITIVITY_REL)
        change = max(float(np.max(np.abs(predict(best + sign * step) - predicted)))
                     for sign in (1.0, -1.0))
        if change < _SENSITIVITY_FRACTION:
            notes.append(f"changing {key} by {100 * _SENSITIVITY_REL:g} % changes the fitted "
                         f"curve by less than {_SENSITIVITY_FRACTION:g} at every data point: "
                         "the data do not determine it (was release complete before the "
                         "first sample, or too little released by the last?)")
    for note in notes:
        logger.warning(note)
    for array in (h, measured, predicted):
        array.setflags(write=False)
    return Calibration(
        formulation_id=formulation.id, mechanism=mechanism, fitted=keys,
        diffusivity_mm2_s=values["diffusivity_mm2_s"],
        erosion_rate_mm_h=values["erosion_rate_mm_h"],
        diameter_mm=float(diameter_mm), height_mm=float(height_mm), rms_residual=rms,
        f2=similarity, n_points=int(h.size), hours=h,
        measured=measured, predicted=predicted, notes=tuple(notes),
    )


def _starts(
    keys: tuple[str, ...], fixed: dict[str, float], lower: FloatArray, upper: FloatArray
) -> list[FloatArray]:
    """Grid of log10 starting points, the formulation's own values (clipped) first."""
    own = np.array([math.log10(fixed[k]) if fixed[k] > 0.0 else 0.5 * (lo + hi)
                    for k, lo, hi in zip(keys, lower.tolist(), upper.tolist(), strict=True)])
    # Inside the bounds strictly: least_squares needs a feasible start.
    margin = 1e-6
    own = np.clip(own, lower + margin, upper - margin)
    axes = []
    for lo, hi in zip(lower.tolist(), upper.tolist(), strict=True):
        n = max(2, round((hi - lo) * _STARTS_PER_DECADE))
        # Centres of n equal cells, so no start sits on a bound.
        axes.append(lo + (hi - lo) * (np.arange(n) + 0.5) / n)
    grid = [np.array(point) for point in itertools.product(*axes)]
    return [own, *grid]


def _fit(
    residuals: Callable[[FloatArray], FloatArray],
    starts: list[FloatArray],
    lower: FloatArray,
    upper: FloatArray,
) -> FloatArray:
    """Best least-squares parameters over the most promising starts."""

    def cost(x: FloatArray) -> float:
        r = np.asarray(residuals(x), dtype=np.float64)
        return float(r @ r)

    # The formulation's own values are always refined; then the best grid points.
    ranked = sorted(starts[1:], key=cost)
    chosen = [starts[0], *ranked[:_REFINED_STARTS]]
    best_x = chosen[0]
    best_cost = math.inf
    for x0 in chosen:
        result = least_squares(residuals, x0, bounds=(lower, upper), method="trf",
                               ftol=_FIT_TOLERANCE, xtol=_FIT_TOLERANCE,
                               gtol=_FIT_TOLERANCE)
        x = np.asarray(result.x, dtype=np.float64)
        c = cost(x)
        if c < best_cost:
            best_x, best_cost = x, c
    return best_x


# Writing the new formulation -------------------------------------------------------------


def calibrated_formulation_toml(
    formulation: Formulation,
    calibration: Calibration,
    *,
    data_sha256: str,
    data_name: str,
    new_id: str,
) -> str:
    """Text of a new formulation file holding the calibrated values.

    The file has the keys of spec/formulation.md in its order, with the source
    formulation's values except the fitted ones, ``id = new_id``, the name marked as
    calibrated, and ``sources`` = the original sources followed by lines saying what was
    fitted, to which data (name and SHA-256), on which geometry and model, and how well
    (RMS residual and f2). Floats are written with ``repr`` so they read back exactly;
    no date is written, so the text depends only on the arguments. The file must be
    saved as ``<new_id>.toml`` for the loader to accept it.

    Parameters
    ----------
    formulation : Formulation
        The source formulation (the one calibrated).
    calibration : Calibration
        The result of :func:`calibrate` for it.
    data_sha256 : str
        SHA-256 (hex) of the dissolution file's bytes.
    data_name : str
        The dissolution file's name, as the user should recognise it (e.g. its base name).
    new_id : str
        Id of the new formulation: lower-case letters, digits, ``.``, ``_`` and ``-``.

    Returns
    -------
    text : str
        The TOML text, ending with a newline.

    Raises
    ------
    InputError
        ``new_id`` is not a valid formulation id.
    ValueError
        The calibration is of another formulation or mechanism (a caller's bug).
    """
    if not _ID.match(new_id):
        raise InputError(f"is {new_id!r}; a formulation id uses lower-case letters, digits, "
                         ". _ - only", key="id")
    if (calibration.formulation_id != formulation.id
            or calibration.mechanism != formulation.release_mechanism):
        raise ValueError(f"calibration of {calibration.formulation_id!r} "
                         f"({calibration.mechanism}) does not belong to {formulation.id!r} "
                         f"({formulation.release_mechanism})")
    values = {"diffusivity_mm2_s": calibration.diffusivity_mm2_s,
              "erosion_rate_mm_h": calibration.erosion_rate_mm_h}
    old = {"diffusivity_mm2_s": formulation.diffusivity_mm2_s,
           "erosion_rate_mm_h": formulation.erosion_rate_mm_h}
    fitted = ", ".join(
        f"{k} = {_number(values[k])} {_UNITS[k]} (was {_number(old[k])})"
        for k in calibration.fitted
    )
    source_hash = f" (sha256 {formulation.sha256})" if formulation.sha256 else ""
    span = f"{calibration.hours[0]:g}-{calibration.hours[-1]:g} h"
    added = [
        f"Calibrated from formulation {formulation.id}{source_hash} with doseprint "
        f"formulation calibrate: {fitted}. Where the sources above concern "
        f"{' or '.join(calibration.fitted)}, these fitted values replace theirs.",
        f"Calibration data: {data_name} (sha256 {data_sha256}), {calibration.n_points} "
        f"points over {span}, dissolution of a solid cylindrical tablet "
        f"{calibration.diameter_mm:g} mm in diameter and {calibration.height_mm:g} mm high "
        "made wholly of this material; fitted with the analytical "
        f'"{calibration.mechanism}" model (Crank finite cylinder'
        + (", Hopfenberg surface erosion" if "erosion" in calibration.mechanism else "")
        + ", perfect sink).",
        f"Calibration fit: RMS residual {calibration.rms_residual:.4f} (fraction released), "
        f"f2 {calibration.f2:.1f} of the fitted curve against the data at its "
        f"{calibration.n_points} time points.",
        *(f"Calibration note: {note}" for note in calibration.notes),
    ]
    name = f"{formulation.name} (calibrated to {data_name})"
    lines = [
        f"schema = {_string(FORMULATION_SCHEMA)}",
        f"id = {_string(new_id)}",
        f"api = {_string(formulation.api)}",
        f"name = {_string(name)}",
        f"drug_loading = {_number(formulation.drug_loading)}",
        f"density_g_cm3 = {_number(formulation.density_g_cm3)}",
        f"diffusivity_mm2_s = {_number(values['diffusivity_mm2_s'])}",
        f"filament_diameter_mm = {_number(formulation.filament_diameter_mm)}",
        f"nozzle_temp_c = {_number(formulation.nozzle_temp_c)}",
        f"bed_temp_c = {_number(formulation.bed_temp_c)}",
        f"max_temp_c = {_number(formulation.max_temp_c)}",
    ]
    if formulation.max_dose_mg is not None:
        lines.append(f"max_dose_mg = {_number(formulation.max_dose_mg)}")
    lines += [
        f"release_mechanism = {_string(formulation.release_mechanism)}",
        f"erosion_rate_mm_h = {_number(values['erosion_rate_mm_h'])}",
        "sources = [",
        *(f"  {_string(s)}," for s in (*formulation.sources, *added)),
        "]",
    ]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """A TOML number that reads back as exactly ``value``: ``repr`` (shortest round-trip
    form), or an integer when the value is a whole number."""
    if not math.isfinite(value):
        raise ValueError(f"a formulation value must be finite, got {value!r}")
    if value.is_integer() and abs(value) < 2.0**53:
        return str(int(value))
    # Python's repr ("0.0002", "1e-05", "1.5e+20") is valid TOML float syntax.
    return repr(float(value))


# TOML basic strings must escape the quote, the backslash and every control character.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _string(text: str) -> str:
    """A TOML basic string (double-quoted) holding exactly ``text``."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
