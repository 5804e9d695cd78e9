"""Prepare: one set of layer heights, slice settings and size limits for compile,
`release`, `preview` and the flow calibration."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from doseprint.design.designer import size_limits
from doseprint.errors import InputError
from doseprint.job.prepare import prepare
from doseprint.library import load_library
from doseprint.models.bead import BEAD_WIDTH_FACTOR
from doseprint.models.load import load_prescription
from helpers.rx import write_rx

PRINTER = "generic-marlin-1x175"


def test_the_prescription_and_the_profile_reach_the_slice_settings(tmp_path: Path) -> None:
    lib = load_library()
    profile = replace(lib.printer(PRINTER), perimeters=3)
    rx = load_prescription(write_rx(
        tmp_path, tablet='infill = 0.6\ninfill_pattern = "gyroid"\nsolid_layers = 2\n'
                         "max_length_mm = 18.0"))
    prepared = prepare(profile, rx, layer_height_mm=0.15)
    s = prepared.settings
    assert (s.perimeters, s.pattern, s.solid_bottom_layers, s.solid_top_layers) == (
        3, "gyroid", 2, 2)
    assert (prepared.grid.first_mm, prepared.grid.layer_mm) == (
        profile.first_layer_height_mm, 0.15)
    assert (s.first_layer_mm, s.layer_mm) == (prepared.grid.first_mm, prepared.grid.layer_mm)
    assert s.width_mm == round(BEAD_WIDTH_FACTOR * profile.nozzle_diameter_mm, 4)
    assert prepared.limits == size_limits(prepared.grid, profile.nozzle_diameter_mm, 18.0)
    assert prepared.limits.min_wall_mm == pytest.approx(2 * s.width_mm, abs=1e-3)


def test_without_a_prescription_the_defaults_and_the_profile(tmp_path: Path) -> None:
    profile = replace(load_library().printer(PRINTER), perimeters=3)
    s = prepare(profile).settings
    assert (s.perimeters, s.pattern, s.solid_bottom_layers) == (3, "rectilinear", 0)
    assert s.layer_mm == profile.layer_height_mm


def test_a_layer_height_outside_the_profile_is_refused() -> None:
    profile = load_library().printer(PRINTER)
    with pytest.raises(InputError, match="--layer-height"):
        prepare(profile, layer_height_mm=profile.max_layer_height_mm + 0.1)


def test_filament_the_printer_cannot_feed_is_refused() -> None:
    lib = load_library()
    prepared = prepare(lib.printer(PRINTER))
    f = next(iter(lib.formulations.values()))
    prepared.check_filament([f])
    thick = replace(f, filament_diameter_mm=f.filament_diameter_mm + 1.1)
    with pytest.raises(InputError, match="filament_diameter_mm") as info:
        prepared.check_filament([thick])
    assert info.value.problems[0].file == f.path
