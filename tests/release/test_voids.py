"""The sparse-infill release path checked against an exact solution, and its void map.

A box cut right through by slots is a row of separate rectangular blocks with every face
in the medium; the fraction left in such a block is the product of three slabs' (Crank
1975, §2.3 and the product rule for a parallelepiped), so the void model has an exact
answer to meet.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from shapely.geometry import MultiPolygon, Polygon, box

from doseprint.geometry.layer_voids import LayerVoids
from doseprint.release.analytical import slab_released
from doseprint.release.voids import solve_release_with_voids, void_mask, void_pitch_mm
from doseprint.release.voxelize import voxelize

D = 1.0e-4  # mm²/s
PLATES = [(0.0, 1.0), (1.5, 2.5), (3.0, 4.0), (4.5, 5.5)]  # x-ranges, mm
GAPS = [(1.0, 1.5), (2.5, 3.0), (4.0, 4.5)]
LENGTH_Y, HEIGHT = 4.0, 2.0


def slotted_box() -> tuple[trimesh.Trimesh, dict[int, list[LayerVoids]]]:
    mesh = trimesh.creation.box(bounds=[[0.0, 0.0, 0.0], [5.5, LENGTH_Y, HEIGHT]])
    gaps = MultiPolygon([box(x0, -1.0, x1, LENGTH_Y + 1.0) for x0, x1 in GAPS])
    layers = [LayerVoids(i, 0.2 * i, 0.2 * (i + 1), gaps) for i in range(10)]
    return mesh, {0: layers}


def test_slotted_box_releases_like_its_separate_blocks() -> None:
    mesh, voids = slotted_box()
    hours = np.array([0.1, 0.25, 0.5, 1.0, 2.0, 3.0])
    t = hours * 3600.0
    got = solve_release_with_voids([mesh], [D], [0], t, voids, pitch_mm=0.125)[:, 0]
    left = ((1.0 - slab_released(t, 1.0, D)) * (1.0 - slab_released(t, LENGTH_Y, D))
            * (1.0 - slab_released(t, HEIGHT, D)))
    exact = 1.0 - left
    assert np.max(np.abs(got - exact)) < 0.02, (got, exact)
    # And it is much faster than the same box without the slots.
    solid = solve_release_with_voids([mesh], [D], [0], t, {}, pitch_mm=0.125)[:, 0]
    assert np.all(got[:4] > solid[:4] + 0.1)


def test_void_mask_marks_only_gap_cells_of_their_compartment() -> None:
    mesh, voids = slotted_box()
    grid = voxelize([mesh], 0.125)
    mask = void_mask(grid, voids)
    h = grid.pitch_mm
    xs = grid.origin_mm[0] + h * np.arange(grid.labels.shape[0])
    in_gap = np.zeros_like(xs, dtype=bool)
    for x0, x1 in GAPS:
        in_gap |= (xs > x0) & (xs < x1)
    solid = grid.labels[:, :, :] == 0
    assert np.array_equal(mask, solid & in_gap[:, None, None])
    # The gaps are 0.5 mm of the box's 5.5 mm, three times over.
    assert mask.sum() / solid.sum() == pytest.approx(1.5 / 5.5, abs=0.01)
    # Another compartment's gaps do not touch compartment 0.
    assert not void_mask(grid, {1: voids[0]}).any()


def test_void_pitch_resolves_the_narrowest_gaps() -> None:
    _, voids = slotted_box()
    assert void_pitch_mm(voids, 0.3) == pytest.approx(0.25, rel=0.2)  # 0.5 mm gaps
    assert void_pitch_mm(voids, 0.1) == 0.1
    assert void_pitch_mm({0: [LayerVoids(0, 0.0, 0.2, Polygon())]}, 0.3) == 0.3
