"""Infill matters: the same envelope at lower infill releases faster, because the gaps
between roads bring the medium inside the tablet (issue 4)."""

from __future__ import annotations

import itertools

import numpy as np
import trimesh

from doseprint.release.fv import release_from_grid
from doseprint.release.voxelize import voxelize, with_medium

HOURS = np.array([0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0])
D = 6e-5


def sparse(grid_labels: np.ndarray, every: int) -> np.ndarray:
    """Medium in every ``every``-th column of cells along x, through the whole height:
    the open gaps of a rectilinear infill with roads ``every - 1`` cells wide. Each gap
    reaches the top and bottom faces, so the medium enters it."""
    medium = np.zeros(grid_labels.shape, dtype=bool)
    solid = grid_labels >= 0
    xs = np.arange(grid_labels.shape[0])
    gap_columns = (xs % every) == 0
    medium[gap_columns, :, :] = True
    return medium & solid


def test_lower_infill_releases_faster() -> None:
    mesh = trimesh.creation.cylinder(radius=5.0, height=3.0, sections=128)
    grid = voxelize([mesh], 0.25)
    solid = release_from_grid(grid, [D], [0], HOURS * 3600.0)[:, 0]
    rates = [solid]
    for every in (4, 2):  # 75 % and 50 % infill
        open_grid = with_medium(grid, sparse(grid.labels, every))
        rates.append(release_from_grid(open_grid, [D], [0], HOURS * 3600.0)[:, 0])
    # At every time after the start: 50 % infill > 75 % infill > solid.
    for lower, higher in itertools.pairwise(rates):
        running = lower[1:] < 0.98  # until the faster one has all but finished
        assert np.all(higher[1:] >= lower[1:] - 1e-9)
        assert np.all(higher[1:][running] > lower[1:][running] + 0.01)
    # and every curve is a fraction that rises.
    for curve in rates:
        assert curve[0] == 0.0 and np.all(np.diff(curve) >= -1e-9) and curve[-1] <= 1.0
