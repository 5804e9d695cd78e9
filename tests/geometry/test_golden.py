"""Golden dimension tables for canonical designs (tests/geometry/golden_dimensions.json).

A change in sizing shows up here as a diff of numbers. After reviewing it, regenerate
the table with::

    .venv/bin/pytest tests/geometry/test_golden.py --update-golden
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from doseprint.geometry.build import size_tablet
from doseprint.geometry.sized import TabletGeometry
from doseprint.geometry.spec import TabletSpec

GOLDEN = Path(__file__).with_name("golden_dimensions.json")

CASES: dict[str, tuple[TabletSpec, list[float]]] = {
    "cylinder-single": (TabletSpec(), [250.0]),
    "cylinder-bilayer": (TabletSpec(layout="bilayer", aspect=0.6), [150.0, 100.0]),
    "cylinder-core-shell": (TabletSpec(layout="core-shell", aspect=0.8), [60.0, 200.0]),
    "caplet-multilayer-domed-top": (
        TabletSpec(shape="caplet", layout="multilayer", dome_mm=0.8, dome_faces="top"),
        [180.0, 120.0, 200.0]),
    "caplet-single-shell-channels": (
        TabletSpec(shape="caplet", shell_mm=1.0, channels=2), [300.0]),
    "oval-segments": (TabletSpec(shape="oval", layout="segments"), [120.0, 80.0, 60.0]),
    "oval-bilayer-dome-shell-channels": (
        TabletSpec(shape="oval", layout="bilayer", dome_mm=1.0, shell_mm=1.0, channels=2),
        [150.0, 80.0]),
    "ring-rings": (TabletSpec(shape="ring", layout="rings"), [100.0, 200.0]),
    "cylinder-segments-domed-central-channel": (
        TabletSpec(layout="segments", dome_mm=1.0, channels=1), [120.0, 80.0, 60.0]),
}


def _spec_json(spec: TabletSpec) -> dict[str, object]:
    default = TabletSpec()
    return {f.name: getattr(spec, f.name) for f in fields(spec)
            if getattr(spec, f.name) != getattr(default, f.name)}


def _table(g: TabletGeometry) -> dict[str, object]:
    return {
        "dimensions_mm": g.dimensions_mm,
        "compartments": [
            {"role": c.role, "index": c.index, "volume_mm3": c.volume_mm3,
             "z_range_mm": list(c.z_range_mm), "min_thickness_mm": c.min_thickness_mm,
             "exposed_area_mm2": c.exposed_area_mm2}
            for c in g.compartments],
        "envelope_volume_mm3": g.envelope_volume_mm3,
        "outside_area_mm2": g.outside_area_mm2,
        "longest_mm": g.longest_mm,
    }


def _compare(found: object, expected: object, where: str) -> None:
    """Exact for names, 1e-9 relative for analytic numbers, 1e-5 for mesh areas."""
    if isinstance(expected, dict):
        assert isinstance(found, dict) and found.keys() == expected.keys(), where
        for k in expected:
            _compare(found[k], expected[k], f"{where}.{k}")
    elif isinstance(expected, list):
        assert isinstance(found, list) and len(found) == len(expected), where
        for i, (a, b) in enumerate(zip(found, expected, strict=True)):
            _compare(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        rel = 1e-5 if "area" in where else 1e-9
        assert found == pytest.approx(expected, rel=rel, abs=1e-12), where
    else:
        assert found == expected, where


def _current() -> dict[str, object]:
    return {name: {"spec": _spec_json(spec), "volumes_mm3": volumes,
                   **_table(size_tablet(spec, volumes))}
            for name, (spec, volumes) in CASES.items()}


def test_golden_dimensions(update_golden: bool) -> None:
    current = _current()
    if update_golden or not GOLDEN.exists():
        GOLDEN.write_text(json.dumps(current, indent=1, ensure_ascii=False) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert sorted(current) == sorted(expected)
    for name in expected:
        _compare(json.loads(json.dumps(current[name])), expected[name], name)
