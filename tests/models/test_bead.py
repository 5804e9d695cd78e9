"""The bead model (models/bead.py): a road's cross-section and the spacing that tiles a
solid layer with it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doseprint.models.bead import bead_area_mm2, bead_spacing_mm


@given(width=st.floats(0.2, 1.2), share=st.floats(0.05, 1.0))
def test_spacing_times_height_is_the_bead_area(width: float, share: float) -> None:
    height = share * width
    area = bead_area_mm2(width, height)
    assert math.isclose(bead_spacing_mm(width, height) * height, area, rel_tol=1e-12)
    # The rounded-side bead is thinner than its bounding rectangle, so beads sit closer
    # than their width, and never closer than a height apart.
    assert 0 < area <= width * height * (1 + 1e-12)
    spacing = bead_spacing_mm(width, height)
    assert height * math.pi / 4 * (1 - 1e-12) <= spacing <= width * (1 + 1e-12)


def test_bead_area_matches_slic3r_for_the_usual_bead() -> None:
    # (0.45 − 0.2) × 0.2 + π × 0.2² / 4
    assert bead_area_mm2(0.45, 0.2) == pytest.approx(0.05 + math.pi * 0.01, rel=1e-12)
