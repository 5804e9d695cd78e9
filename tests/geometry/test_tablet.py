"""The designed tablet's values (geometry/tablet.py): frozen, fully typed, and written to
job.json as before; and its meshes."""

from __future__ import annotations

import dataclasses
import math

import pytest

from doseprint.geometry.build import size_tablet
from doseprint.geometry.spec import TabletSpec
from doseprint.geometry.tablet import (
    Compartment,
    Dimensions,
    TabletDesign,
    build_mesh,
    polygon_radius_mm,
)

THEO = Compartment("theophylline", "theophylline-hpc-30", 0, 100.0, 275.5)
SHELL = Compartment("", "hpc-shell", 1, 0.0, 80.0)


def cylinder() -> TabletDesign:
    return TabletDesign.cylinder(0, 9.0, 4.4, 22, 1.0, (THEO,))


def bilayer() -> TabletDesign:
    geometry = size_tablet(TabletSpec(layout="bilayer", channels=2), [150.0, 80.0])
    parts = (THEO, Compartment("caffeine", "caffeine-hpc-20", 1, 20.0, 80.0))
    return TabletDesign.sized(3, geometry, 20, 1.0, parts)


def test_a_compartment_is_an_api_or_the_shell() -> None:
    assert (THEO.role, THEO.name) == ("api", "theophylline")
    assert (SHELL.role, SHELL.name) == ("shell", "shell")


def test_a_design_cannot_be_changed_in_place() -> None:
    design = bilayer()
    with pytest.raises(dataclasses.FrozenInstanceError):
        design.layers = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        design.dimensions["height"] = 1.0  # type: ignore[index]
    # A tuple of lengths stays a tuple: no list inside to append to.
    assert isinstance(design.dimensions["layer_heights"], tuple)
    assert not hasattr(design, "extra")


def test_equal_designs_are_equal_and_hash_alike() -> None:
    a, b = cylinder(), cylinder()
    assert a == b and hash(a) == hash(b)
    assert a != dataclasses.replace(a, index=1)
    assert len({a, b, dataclasses.replace(a, layers=23)}) == 2


def test_dimensions_are_a_mapping_in_order() -> None:
    d = Dimensions.of({"diameter": 9.0, "layer_heights": [1.2, 3.2], "height": 4.4})
    assert list(d) == ["diameter", "layer_heights", "height"]
    assert d["layer_heights"] == (1.2, 3.2) and len(d) == 3 and "height" in d
    assert d == {"diameter": 9.0, "layer_heights": (1.2, 3.2), "height": 4.4}
    assert d.length_mm("height") == 4.4
    with pytest.raises(KeyError, match="width"):
        d["width"]
    with pytest.raises(KeyError, match="2 lengths"):
        d.length_mm("layer_heights")
    with pytest.raises(ValueError, match="named twice"):
        Dimensions((("height", 1.0), ("height", 2.0)))


def test_a_cylinder_writes_its_design_entry() -> None:
    assert cylinder().to_json() == {
        "shape": "cylinder", "layout": "single",
        "dimensions_mm": {"diameter": 9.0, "height": 4.4}, "layers": 22, "infill": 1.0,
        "shell": "none", "volume_mm3": round(math.pi * 4.5**2 * 4.4, 4),
        "longest_mm": 9.0, "summary": "cylinder 9.00 × 4.40 mm",
    }


def test_a_sized_design_adds_its_geometry_to_its_design_entry() -> None:
    design = bilayer()
    geometry = design.geometry
    assert geometry is not None
    entry = design.to_json()
    assert list(entry)[:9] == ["shape", "layout", "dimensions_mm", "layers", "infill",
                               "shell", "volume_mm3", "longest_mm", "summary"]
    sized = geometry.to_json()
    for key in ("dome_mm", "dome_faces", "shell_mm", "channels", "compartments",
                "envelope_volume_mm3"):
        assert entry[key] == sized[key]
    assert entry["dimensions_mm"] == sized["dimensions_mm"]
    assert entry["longest_mm"] == sized["longest_mm"] == round(geometry.longest_mm, 4)
    assert entry["summary"] == design.describe() == (
        f"cylinder bilayer {geometry.dimensions_mm['diameter']:.2f} × "
        f"{geometry.height_mm:.2f} mm")


def test_a_sized_design_takes_its_figures_from_the_geometry() -> None:
    design = bilayer()
    geometry = design.geometry
    assert geometry is not None
    assert (design.shape, design.layout) == ("cylinder", "bilayer")
    assert design.height_mm == geometry.height_mm
    assert design.footprint_mm == 2.0 * geometry.footprint_radius_mm
    assert design.volume_mm3 == geometry.envelope_volume_mm3
    assert design.diameter_mm == geometry.dimensions_mm["diameter"]


def test_the_cylinder_mesh_keeps_the_design_volume() -> None:
    design = cylinder()
    mesh = build_mesh(design)
    assert mesh.names == ("theophylline",) and mesh.meshes[0].is_watertight
    assert mesh.volume_mm3 == pytest.approx(design.volume_mm3, rel=1e-9)
    assert polygon_radius_mm(4.5) > 4.5


def test_a_sized_design_is_meshed_from_its_geometry() -> None:
    design = bilayer()
    mesh = build_mesh(design)
    assert design.geometry is not None
    assert mesh.index == 3 and mesh.names == ("theophylline", "caffeine")
    assert mesh.meshes == design.geometry.meshes
