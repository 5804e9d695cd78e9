"""Pictures: a PNG is written, and the same design gives the same bytes."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from doseprint.geometry.build import size_tablet
from doseprint.geometry.spec import TabletSpec

TESTS = Path(__file__).resolve().parents[1]


def _picture() -> ModuleType:
    """Import doseprint.geometry.picture (and so matplotlib).

    While pytest has tests/ on sys.path, tests/packaging (the wheel test) shadows the
    PyPI ``packaging`` that matplotlib imports; set it aside for that one import.
    """
    shadow = sys.modules.pop("packaging", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != TESTS]
    try:
        return importlib.import_module("doseprint.geometry.picture")
    finally:
        sys.path[:] = saved
        if shadow is not None:
            sys.modules["packaging"] = shadow


def _area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def test_render_png_is_a_deterministic_png(tmp_path: Path) -> None:
    picture = _picture()
    g = size_tablet(TabletSpec(layout="core-shell", aspect=0.8, shell_mm=1.0), [60.0, 200.0])
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    picture.render_png(g, first, title="core and wall")
    picture.render_png(g, second, title="core and wall")
    data = first.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 10_000
    assert data == second.read_bytes()


def test_sections_show_every_compartment() -> None:
    picture = _picture()
    g = size_tablet(TabletSpec(shape="ring", layout="rings"), [100.0, 200.0])
    xy = picture.section_xy(g, g.height_mm / 2.0)
    assert [len(contours) for contours in xy] == [2, 2]  # annuli: outside and hole
    assert [len(contours) for contours in picture.section_xz(g)] == [2, 2]  # both sides
    areas = [sum(_area(r) for r in contours) for contours in xy]  # holes count negative
    assert areas == pytest.approx([c.volume_mm3 / g.height_mm for c in g.compartments],
                                  rel=1e-3)


def test_every_gallery_design_still_sizes() -> None:
    picture = _picture()
    for name, (spec, volumes) in picture.GALLERY.items():
        g = size_tablet(spec, volumes)
        assert [c.volume_mm3 for c in g.api_compartments] == pytest.approx(volumes), name
