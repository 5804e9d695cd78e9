"""Reading a mesh file for `release --mesh`: a watertight solid, or bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh

from doseprint.errors import InputError
from doseprint.geometry.mesh_file import read_watertight_mesh


def test_a_closed_solid_is_read_facing_outward(tmp_path: Path) -> None:
    box = trimesh.creation.box([5, 5, 3])
    box.invert()
    path = tmp_path / "inward.stl"
    box.export(path)
    mesh = read_watertight_mesh(path)
    assert mesh.volume == pytest.approx(75.0)


@pytest.mark.parametrize(("case", "shown"), [("open", "watertight"),
                                              ("missing", "cannot be read as a mesh")])
def test_what_bounds_no_volume_is_refused(tmp_path: Path, case: str, shown: str) -> None:
    path = tmp_path / "m.stl"
    if case == "open":
        box = trimesh.creation.box([5, 5, 3])
        trimesh.Trimesh(box.vertices, box.faces[:-2]).export(path)
    with pytest.raises(InputError, match=shown) as info:
        read_watertight_mesh(path)
    assert info.value.problems[0].file == str(path)
