"""The purge tower's place on the plate: on the bed, clear of every tablet and of the
purge line, on either origin; and a 28-tablet taper still fits beside it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from doseprint.errors import InputError
from doseprint.library import load_library
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plate import EDGE_MARGIN_MM, GAP_MM, place_tablets
from doseprint.typed import ORIGINS, Origin

PRINTER = load_library().printer("generic-marlin-2x175")


def to_bed(profile: PrinterProfile, xy: tuple[float, float]) -> tuple[float, float]:
    if profile.origin == "center":
        return (xy[0] + profile.bed_mm[0] / 2, xy[1] + profile.bed_mm[1] / 2)
    return xy


@settings(max_examples=40, deadline=None)
@given(bed=st.tuples(st.floats(100.0, 400.0), st.floats(100.0, 400.0)),
       diameters=st.lists(st.floats(3.0, 22.0), min_size=1, max_size=40),
       tower=st.tuples(st.floats(5.0, 20.0), st.floats(3.0, 40.0)),
       origin=st.sampled_from(ORIGINS))
def test_tower_on_the_bed_clear_of_tablets_and_purge_line(
    bed: tuple[float, float], diameters: list[float], tower: tuple[float, float],
    origin: Origin,
) -> None:
    profile = replace(PRINTER, bed_mm=bed, origin=origin)
    try:
        plate = place_tablets(profile, diameters, "rx.toml", tower_mm=tower)
    except InputError as exc:
        assert {p.key for p in exc.problems} <= {"dispense.units", "bed_mm"}
        return
    assert plate.tower_corner_mm is not None and plate.tower_size_mm == tower
    x0, y0 = to_bed(profile, plate.tower_corner_mm)
    box = shapely.box(x0, y0, x0 + tower[0], y0 + tower[1])
    keep = shapely.box(EDGE_MARGIN_MM, EDGE_MARGIN_MM, bed[0] - EDGE_MARGIN_MM,
                       bed[1] - EDGE_MARGIN_MM)
    assert keep.buffer(1e-9).covers(box)
    centres = [shapely.Point(to_bed(profile, c)) for c in plate.centers_mm]
    for c, d in zip(centres, diameters, strict=True):
        assert box.distance(c) - d / 2 >= GAP_MM - 1e-9
    purge = shapely.LineString([to_bed(profile, plate.purge_start_mm),
                                to_bed(profile, plate.purge_end_mm)])
    assert purge.length >= 10.0 - 1e-9
    assert box.distance(purge) >= GAP_MM - 1e-9


def test_without_a_tower_the_plate_is_unchanged() -> None:
    plain = place_tablets(PRINTER, [10.0] * 5, "rx.toml")
    assert plain.tower_corner_mm is None and plain.tower_size_mm is None
    with_tower = place_tablets(PRINTER, [10.0] * 5, "rx.toml", tower_mm=(10.0, 10.6))
    # The tablets move back to make room, keeping their layout.
    shift = np.array(with_tower.centers_mm) - np.array(plain.centers_mm)
    assert np.allclose(shift[:, 0], 0.0) and np.all(shift[:, 1] > 0)
    assert np.allclose(shift[:, 1], shift[0, 1])


def test_a_28_tablet_taper_fits_beside_the_tower() -> None:
    plate = place_tablets(PRINTER, [10.5] * 28, "rx.toml", tower_mm=(10.0, 10.6))
    assert len(plate.centers_mm) == 28


def test_a_bed_too_narrow_for_tower_and_purge_line_names_bed_mm() -> None:
    with pytest.raises(InputError) as caught:
        place_tablets(replace(PRINTER, bed_mm=(40.0, 200.0)), [8.0], "rx.toml",
                      tower_mm=(10.0, 10.6))
    (problem,) = caught.value.problems
    assert problem.key == "bed_mm" and "purge_volume_mm3" in problem.message
