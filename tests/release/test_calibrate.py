"""Calibration: reading dissolution CSVs, fitting the release model, writing the file."""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from doseprint.errors import InputError
from doseprint.models.formulation import Formulation
from doseprint.models.load import load_formulation
from doseprint.release.analytical import SECONDS_PER_HOUR, cylinder_released
from doseprint.release.calibrate import (
    FRACTION_NOISE,
    MIN_FIT_F2,
    Calibration,
    calibrate,
    calibrated_formulation_toml,
    read_dissolution,
    read_dissolution_csv,
)
from doseprint.release.metrics import f2
from doseprint.typed import FloatArray, ReleaseMechanism

# A USP-style sampling schedule over a day, and a 10 x 4 mm tablet.
HOURS = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0])
DIAMETER_MM = 10.0
HEIGHT_MM = 4.0
# Deterministic "measurement noise": zero at t = 0, ±0.003 at most, no trend.
NOISE = np.where(HOURS > 0.0, 0.003 * np.sin(2.3 * np.arange(HOURS.size)), 0.0)

# (mechanism, true D mm²/s, true erosion rate mm/h): each chosen so that the fitted
# parameters shape the curve visibly within the day.
TRUTHS: list[tuple[ReleaseMechanism, float, float]] = [
    ("diffusion", 3.0e-5, 0.0),
    ("erosion", 2.0e-4, 0.2),
    ("diffusion+erosion", 2.0e-5, 0.15),
]


def _formulation(
    mechanism: ReleaseMechanism = "diffusion",
    diffusivity_mm2_s: float = 2.0e-4,
    erosion_rate_mm_h: float = 0.0,
    **changes: object,
) -> Formulation:
    """A drug-loaded formulation as load_formulation would return it (values arbitrary)."""
    base = Formulation(
        id="theophylline-test-30",
        api="theophylline",
        name="Theophylline 30 % w/w in a test matrix",
        drug_loading=0.3,
        density_g_cm3=1.21,
        diffusivity_mm2_s=diffusivity_mm2_s,
        filament_diameter_mm=1.75,
        nozzle_temp_c=170.0,
        bed_temp_c=40.0,
        max_temp_c=190.0,
        release_mechanism=mechanism,
        sources=('Author A (2020) J Test 1:2 - "quoted" values, a back\\slash\tand a tab',
                 "density_g_cm3: illustrative estimate — ± 5 %"),
        max_dose_mg=400.0,
        erosion_rate_mm_h=erosion_rate_mm_h,
        sha256="ab" * 32,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _curve(mechanism: ReleaseMechanism, d: float, k: float) -> FloatArray:
    return cylinder_released(HOURS * SECONDS_PER_HOUR, DIAMETER_MM / 2, HEIGHT_MM, d,
                             mechanism, k)


def _start_for(mechanism: ReleaseMechanism) -> Formulation:
    """The formulation before calibration: its values are off by a factor of ten or so."""
    return _formulation(mechanism, diffusivity_mm2_s=2.0e-4,
                        erosion_rate_mm_h=0.0 if mechanism == "diffusion" else 1.5)


def _write(tmp_path: Path, text: str, name: str = "dissolution.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problem_keys(exc: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [p.key for p in exc.value.problems]


# Reading the CSV --------------------------------------------------------------------------


def test_read_fraction_csv(tmp_path: Path) -> None:
    path = _write(tmp_path, "hours,fraction\n0,0\n0.5,0.21\n1,0.30\n2,0.41\n4,0.55\n")
    hours, fraction = read_dissolution_csv(path)
    assert hours.tolist() == [0.0, 0.5, 1.0, 2.0, 4.0]
    assert fraction.tolist() == [0.0, 0.21, 0.30, 0.41, 0.55]
    assert hours.dtype == np.float64 and fraction.dtype == np.float64


def test_read_keeps_the_hash_of_the_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, "hours,fraction\n0,0\n1,0.3\n2,0.4\n4,0.55\n")
    data = read_dissolution(path)
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.name == str(path)
    assert data.notes == ()
    assert not data.hours.flags.writeable


def test_read_percent_is_converted_with_a_note(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, "hours,released\n0,0\n1,30.5\n2,41\n4,55\n8,101.2\n")
    with caplog.at_level(logging.INFO, logger="doseprint.release.calibrate"):
        data = read_dissolution(path)
    np.testing.assert_allclose(data.fraction, [0.0, 0.305, 0.41, 0.55, 1.012])
    assert len(data.notes) == 1 and "percent" in data.notes[0]
    assert "percent" in caplog.text


def test_read_other_column_layouts(tmp_path: Path) -> None:
    # As `doseprint release --csv` writes it: hours and one column named after the API,
    # with a byte-order mark, spaces, upper case and blank lines.
    path = tmp_path / "api.csv"
    path.write_bytes("\ufeff Hours , Theophylline \n\n0, 0\n1, 0.3\n\n2, 0.4\n4, 0.55\n"
                     .encode())
    _, fraction = read_dissolution_csv(path)
    assert fraction.tolist() == [0.0, 0.3, 0.4, 0.55]
    # A named fraction column wins over other columns, which are ignored.
    path = _write(tmp_path, "sd,fraction,hours\n0.01,0,0\n0.02,0.3,1\n0.02,0.4,2\n0.03,0.5,4\n")
    hours, fraction = read_dissolution_csv(path)
    assert hours.tolist() == [0.0, 1.0, 2.0, 4.0]
    assert fraction.tolist() == [0.0, 0.3, 0.4, 0.5]


def test_small_dips_within_noise_are_accepted(tmp_path: Path) -> None:
    dip = 0.5 - FRACTION_NOISE + 0.001
    path = _write(tmp_path, f"hours,fraction\n1,0.3\n2,0.5\n3,{dip}\n4,0.6\n")
    _, fraction = read_dissolution_csv(path)
    assert fraction[2] == dip


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("time,fraction\n0,0\n1,0.3\n2,0.4\n3,0.5\n", "line 1", "no hours column"),
        ("hours,a,b\n0,0,0\n1,0.3,1\n2,0.4,1\n3,0.5,1\n", "line 1", "fraction or released"),
        ("hours\n0\n1\n2\n3\n", "line 1", "fraction or released"),
        ("hours,fraction,released\n0,0,0\n", "line 1", "keep one"),
        ("hours,fraction,hours\n0,0,0\n", "line 1", "more than once"),
        ("hours,fraction\n0,0\n1,0.3\n2,abc\n3,0.5\n", "line 4, fraction", "not a number"),
        ("hours,fraction\n0,0\n1,0.3\n2h,0.4\n3,0.5\n", "line 4, hours", "not a number"),
        ("hours,fraction\n0,0\n1,0.3\n2,nan\n3,0.5\n", "line 4, fraction", "finite"),
        ("hours,fraction\n0,0\n1,0.3\n2,0.45\n3,0.40\n4,0.6\n", "line 5, fraction",
         "does not fall"),
        ("hours,fraction\n0,0\n1,0.3\n2,0.4\n", "line 4", "at least 3"),
        ("hours,fraction\n-1,0\n1,0.3\n2,0.4\n3,0.5\n", "line 2, hours", "0 or later"),
        ("hours,fraction\n0,0\n2,0.3\n1,0.4\n3,0.5\n", "line 4, hours", "sort the rows"),
        ("hours,fraction\n0,0\n1,0.3\n1,0.4\n3,0.5\n", "line 4, hours", "sort the rows"),
        ("hours,fraction\n0,0\n1,0.3\n2,1.3\n3,1.4\n", "line 4, fraction", "within 0..1"),
        ("hours,fraction\n0,0\n1,30\n2,45\n3,40\n4,60\n", "line 5, fraction", "40 %"),
        ("hours,fraction\n0,0\n1\n2,0.4\n3,0.5\n", "line 3", "1 value"),
    ],
    ids=["no-hours", "two-others", "no-released", "both-names", "duplicate", "non-number",
         "bad-time", "nan", "falling", "too-few", "negative-time", "unsorted",
         "repeated-time", "above-one", "falling-percent", "short-row"],
)
def test_bad_csv_names_file_line_and_column(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as exc:
        read_dissolution_csv(path)
    assert key in _problem_keys(exc), str(exc.value)
    assert words in str(exc.value)
    assert str(path) in str(exc.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, "hours,fraction\n0,0\n1,x\n-2,0.4\n3,0.5\n")
    with pytest.raises(InputError) as exc:
        read_dissolution_csv(path)
    assert _problem_keys(exc) == ["line 3, fraction", "line 4, hours"]


@pytest.mark.parametrize("content", [b"", b"\n\n", b"\xff\xfe hours"], ids=["empty", "blank",
                                                                          "not-utf8"])
def test_unreadable_csv(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.csv"):
        read_dissolution_csv(path)


def test_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_dissolution_csv(tmp_path / "none.csv")


# Fitting ------------------------------------------------------------------------------


@pytest.mark.parametrize(("mechanism", "d", "k"), TRUTHS, ids=[t[0] for t in TRUTHS])
def test_fit_recovers_known_parameters_from_noisy_data(
    mechanism: ReleaseMechanism, d: float, k: float
) -> None:
    measured = _curve(mechanism, d, k) + NOISE
    start = _start_for(mechanism)
    result = calibrate(start, HOURS, measured, diameter_mm=DIAMETER_MM, height_mm=HEIGHT_MM)
    if "diffusion" in mechanism:
        assert result.diffusivity_mm2_s == pytest.approx(d, rel=0.02)
    else:
        assert result.diffusivity_mm2_s == start.diffusivity_mm2_s  # not used, kept
    if "erosion" in mechanism:
        assert result.erosion_rate_mm_h == pytest.approx(k, rel=0.05)
        assert "erosion_rate_mm_h" in result.fitted
    else:
        assert result.erosion_rate_mm_h == 0.0
    assert result.n_points == HOURS.size
    assert result.rms_residual < 0.005
    assert result.f2 >= 90.0


@pytest.mark.parametrize(("mechanism", "d", "k"), TRUTHS, ids=[t[0] for t in TRUTHS])
def test_noise_free_fit_is_exact(mechanism: ReleaseMechanism, d: float, k: float) -> None:
    exact = _curve(mechanism, d, k)
    result = calibrate(_start_for(mechanism), HOURS, exact, diameter_mm=DIAMETER_MM,
                       height_mm=HEIGHT_MM)
    assert result.f2 >= 90.0
    assert result.rms_residual < 1e-6
    if "diffusion" in mechanism:
        assert result.diffusivity_mm2_s == pytest.approx(d, rel=1e-4)
    if "erosion" in mechanism:
        assert result.erosion_rate_mm_h == pytest.approx(k, rel=1e-4)


def test_result_reports_its_own_curve() -> None:
    measured = _curve("diffusion", 3e-5, 0.0) + NOISE
    result = calibrate(_start_for("diffusion"), HOURS, measured, diameter_mm=DIAMETER_MM,
                       height_mm=HEIGHT_MM)
    assert isinstance(result, Calibration)
    expected = _curve("diffusion", result.diffusivity_mm2_s, 0.0)
    np.testing.assert_allclose(result.predicted, expected, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(result.measured, measured)
    np.testing.assert_array_equal(result.hours, HOURS)
    assert result.rms_residual == pytest.approx(math.sqrt(np.mean((expected - measured) ** 2)))
    assert result.f2 == pytest.approx(f2(100 * expected, 100 * measured))
    assert not result.predicted.flags.writeable
    assert HOURS.flags.writeable  # the caller's array is left alone
    assert result.notes == ()


@pytest.mark.parametrize("bad_start", [1e-8, 1e-1, 0.9])
def test_fit_is_robust_to_a_bad_start(bad_start: float) -> None:
    # From far off in either direction the curve is flat (nothing or everything released),
    # so a single local fit would stall; the grid of starts finds the real minimum.
    measured = _curve("diffusion", 3e-5, 0.0)
    start = _formulation("diffusion", diffusivity_mm2_s=bad_start)
    result = calibrate(start, HOURS, measured, diameter_mm=DIAMETER_MM, height_mm=HEIGHT_MM)
    assert result.diffusivity_mm2_s == pytest.approx(3e-5, rel=1e-4)


@given(
    log10_d=st.floats(-5.5, -3.5),
    diameter_mm=st.floats(5.0, 15.0),
    height_mm=st.floats(2.0, 6.0),
)
def test_fit_recovers_any_identifiable_diffusivity(
    log10_d: float, diameter_mm: float, height_mm: float
) -> None:
    d = 10.0**log10_d
    exact = cylinder_released(HOURS * SECONDS_PER_HOUR, diameter_mm / 2, height_mm, d)
    result = calibrate(_formulation(), HOURS, exact, diameter_mm=diameter_mm,
                       height_mm=height_mm)
    assert result.diffusivity_mm2_s == pytest.approx(d, rel=1e-3)


def test_undetermined_parameter_is_noted(caplog: pytest.LogCaptureFixture) -> None:
    # Everything is released by the first sample: D is only known to be large.
    measured = np.where(HOURS > 0.0, 1.0, 0.0)
    with caplog.at_level(logging.WARNING, logger="doseprint.release.calibrate"):
        result = calibrate(_formulation(), HOURS, measured, diameter_mm=DIAMETER_MM,
                           height_mm=HEIGHT_MM)
    assert result.f2 > MIN_FIT_F2
    assert any("do not determine" in note for note in result.notes), result.notes
    assert "do not determine" in caplog.text


def test_parameter_at_its_bound_is_noted() -> None:
    # Nothing measurable leaves the tablet in a day: D runs to the bottom of its range.
    measured = np.zeros_like(HOURS)
    result = calibrate(_formulation(), HOURS, measured, diameter_mm=DIAMETER_MM,
                       height_mm=HEIGHT_MM)
    assert result.diffusivity_mm2_s == pytest.approx(1e-8)
    assert any("bound" in note for note in result.notes), result.notes


@pytest.mark.parametrize("mechanism", ["diffusion", "erosion", "diffusion+erosion"])
def test_unfittable_data_is_refused_with_its_f2(mechanism: ReleaseMechanism) -> None:
    # A plateau at 30 % for 8 h and then a jump to complete release: no monotone
    # cylinder curve comes close.
    measured = np.where(HOURS >= 12.0, 1.0, np.where(HOURS > 0.0, 0.3, 0.0))
    with pytest.raises(InputError) as exc:
        calibrate(_start_for(mechanism), HOURS, measured, diameter_mm=DIAMETER_MM,
                  height_mm=HEIGHT_MM, data_name="plateau.csv")
    message = str(exc.value)
    assert "f2 = " in message and f"{MIN_FIT_F2:g} needed" in message
    assert "RMS residual" in message and "plateau.csv" in message
    assert exc.value.hint and "release_mechanism" in exc.value.hint


@pytest.mark.parametrize(("diameter_mm", "height_mm", "key"),
                         [(0.0, 4.0, "diameter_mm"), (10.0, -1.0, "height_mm"),
                          (math.nan, 4.0, "diameter_mm")])
def test_bad_geometry_is_an_input_error(diameter_mm: float, height_mm: float, key: str) -> None:
    with pytest.raises(InputError) as exc:
        calibrate(_formulation(), HOURS, _curve("diffusion", 3e-5, 0.0),
                  diameter_mm=diameter_mm, height_mm=height_mm)
    assert _problem_keys(exc) == [key]


def test_malformed_arrays_are_a_bug() -> None:
    with pytest.raises(ValueError):
        calibrate(_formulation(), [0.0, 1.0], [0.0, 0.5], diameter_mm=10.0, height_mm=4.0)
    with pytest.raises(ValueError):
        calibrate(_formulation(), [0.0, 1.0, 2.0], [0.0, 0.5], diameter_mm=10.0,
                  height_mm=4.0)


# Writing the calibrated formulation -------------------------------------------------------


def _calibrated(mechanism: ReleaseMechanism) -> tuple[Formulation, Calibration]:
    _, d, k = next(t for t in TRUTHS if t[0] == mechanism)
    start = _start_for(mechanism)
    result = calibrate(start, HOURS, _curve(mechanism, d, k) + NOISE,
                       diameter_mm=DIAMETER_MM, height_mm=HEIGHT_MM)
    return start, result


@pytest.mark.parametrize("mechanism", ["diffusion", "erosion", "diffusion+erosion"])
def test_written_file_loads_with_the_fitted_values(
    tmp_path: Path, mechanism: ReleaseMechanism
) -> None:
    start, result = _calibrated(mechanism)
    data_hash = "0123456789abcdef" * 4
    text = calibrated_formulation_toml(start, result, data_sha256=data_hash,
                                       data_name="lab \"A\" run.csv", new_id="theo-cal-1")
    path = tmp_path / "theo-cal-1.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_formulation(path)

    assert loaded.id == "theo-cal-1"
    # Exactly the fitted floats, not a rounded copy.
    assert loaded.diffusivity_mm2_s == result.diffusivity_mm2_s
    assert loaded.erosion_rate_mm_h == result.erosion_rate_mm_h
    for key in ("api", "drug_loading", "density_g_cm3", "filament_diameter_mm",
                "nozzle_temp_c", "bed_temp_c", "max_temp_c", "max_dose_mg",
                "release_mechanism"):
        assert getattr(loaded, key) == getattr(start, key), key
    assert loaded.name.startswith(start.name) and "calibrated" in loaded.name
    # The original sources first, unchanged (quotes, backslash, tab, non-ASCII survive).
    assert loaded.sources[: len(start.sources)] == start.sources
    added = "\n".join(loaded.sources[len(start.sources):])
    assert data_hash in added and 'lab "A" run.csv' in added
    assert f"{result.f2:.1f}" in added and f"{result.rms_residual:.4f}" in added
    assert "10 mm in diameter and 4 mm high" in added
    for key in result.fitted:
        assert key in added
    assert start.sha256 in added


def test_written_file_is_deterministic() -> None:
    start, result = _calibrated("diffusion")
    args = {"data_sha256": "f" * 64, "data_name": "d.csv", "new_id": "x-cal"}
    first = calibrated_formulation_toml(start, result, **args)
    again = calibrated_formulation_toml(start, result, **args)
    assert first == again
    assert first.startswith('schema = "doseprint.formulation/1"\nid = "x-cal"\n')
    assert first.endswith("]\n")


def test_drug_free_formulation_round_trips(tmp_path: Path) -> None:
    barrier = _formulation(id="barrier", api="", drug_loading=0.0, max_dose_mg=None,
                           diffusivity_mm2_s=1e-6)
    exact = _curve("diffusion", 4e-6, 0.0)
    result = calibrate(barrier, HOURS, exact, diameter_mm=DIAMETER_MM, height_mm=HEIGHT_MM)
    text = calibrated_formulation_toml(barrier, result, data_sha256="0" * 64,
                                       data_name="b.csv", new_id="barrier-cal")
    assert "max_dose_mg" not in text
    path = tmp_path / "barrier-cal.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_formulation(path)
    assert loaded.drug_free and loaded.max_dose_mg is None
    assert loaded.diffusivity_mm2_s == result.diffusivity_mm2_s


def test_bad_new_id_is_an_input_error() -> None:
    start, result = _calibrated("diffusion")
    with pytest.raises(InputError) as exc:
        calibrated_formulation_toml(start, result, data_sha256="0" * 64, data_name="d.csv",
                                    new_id="Has Spaces")
    assert _problem_keys(exc) == ["id"]


def test_calibration_of_another_formulation_is_a_bug() -> None:
    start, result = _calibrated("diffusion")
    with pytest.raises(ValueError):
        calibrated_formulation_toml(replace(start, id="other"), result, data_sha256="0" * 64,
                                    data_name="d.csv", new_id="x")


def test_csv_to_formulation_end_to_end(tmp_path: Path) -> None:
    exact = _curve("diffusion", 3e-5, 0.0) + NOISE
    rows = "\n".join(f"{h!r},{100 * f!r}"
                     for h, f in zip(HOURS.tolist(), exact.tolist(), strict=True))
    csv_path = _write(tmp_path, "hours,released\n" + rows + "\n")
    data = read_dissolution(csv_path)
    start = _start_for("diffusion")
    result = calibrate(start, data.hours, data.fraction, diameter_mm=DIAMETER_MM,
                       height_mm=HEIGHT_MM, data_name=data.name)
    text = calibrated_formulation_toml(start, result, data_sha256=data.sha256,
                                       data_name=csv_path.name, new_id="theo-cal")
    out = tmp_path / "theo-cal.toml"
    out.write_text(text, encoding="utf-8")
    loaded = load_formulation(out)
    assert loaded.diffusivity_mm2_s == pytest.approx(3e-5, rel=0.02)
    assert hashlib.sha256(csv_path.read_bytes()).hexdigest() in "".join(loaded.sources)
