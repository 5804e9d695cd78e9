"""The release of a mesh of one formulation: refused for a drug-free or purely eroding
material, before the model runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh

from doseprint.errors import InputError
from doseprint.library import load_formulations
from doseprint.release.mesh import predict_mesh_release


def test_a_drug_free_formulation_has_nothing_to_release(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="drug-free") as info:
        predict_mesh_release(load_formulations()["pva-fast"], tmp_path / "unread.stl", 24.0)
    assert info.value.problems[0].key == "--formulation"


def test_a_cube_releases_and_is_measured(tmp_path: Path) -> None:
    path = tmp_path / "cube.stl"
    trimesh.creation.box([4, 4, 4]).export(path)
    r = predict_mesh_release(load_formulations()["theophylline-hpc-30"], path, 2.0)
    assert r.volume_mm3 == pytest.approx(64.0)
    assert r.area_mm2 == pytest.approx(96.0)
    assert r.hours[-1] == pytest.approx(2.0)
    assert 0.0 < r.released_at_end <= 1.0
    assert r.model == "3d-finite-volume"
