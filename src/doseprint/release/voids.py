"""Release from a tablet whose compartments are printed sparse: the slicer's gaps as medium.

A sparse infill leaves gaps between its roads. Where they connect to the outside (a
lattice with no solid skin over it), dissolution medium fills them and the drug leaves
every bead through its sides: lower infill releases faster (Goyanes et al. 2014, *Int J
Pharm* 476:88; Thakkar et al. 2020, *Polymers* 12:1872). The compartment meshes describe
only the envelope, so the gaps come from the slicer: per layer, the part of each
compartment's region that no bead covers (:meth:`~doseprint.slicer.toolpaths.
CompartmentToolpaths.voids`). They are marked as medium on the voxel grid
(:func:`~doseprint.release.voxelize.with_medium`); gaps sealed inside the tablet
(under a solid skin) hold air and are left out by the solver.

The grid must resolve the gaps: its pitch is at most half the narrowest gap's width
(:func:`void_pitch_mm`), and the short-time expansion over the mesh surface is not used
(the gaps' walls sit on cell faces).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import shapely
import trimesh
from numpy.typing import ArrayLike, NDArray

from doseprint.geometry.layer_voids import LayerVoids
from doseprint.release.fv import release_from_grid
from doseprint.release.voxelize import VoxelGrid, default_pitch_mm, voxelize, with_medium
from doseprint.typed import FloatArray

__all__ = ["MAX_VOID_CELLS", "solve_release_with_voids", "void_mask", "void_pitch_mm"]

MAX_VOID_CELLS = 150_000
"""Most solid cells of a grid that resolves infill gaps: 1,200 mm³ of tablet at the usual
0.2 mm pitch (two cells across a 0.4 mm road); larger lattices get a coarser grid."""

VOID_CELLS_ACROSS = 2.0
"""Cells across the narrowest gap."""


def void_mask(grid: VoxelGrid, voids: Mapping[int, Sequence[LayerVoids]]) -> NDArray[np.bool_]:
    """Cells of each compartment whose centre lies in one of its layers' gaps.

    Parameters
    ----------
    grid : VoxelGrid
        The tablet's grid, in the toolpaths' coordinates (the tablet's own).
    voids : mapping of int to sequence of LayerVoids
        Compartment index → its gaps per layer.

    Returns
    -------
    (nx, ny, nz) bool
    """
    nx, ny, nz = grid.labels.shape
    h = grid.pitch_mm
    xs = grid.origin_mm[0] + h * np.arange(nx)
    ys = grid.origin_mm[1] + h * np.arange(ny)
    zs = grid.origin_mm[2] + h * np.arange(nz)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    mask = np.zeros(grid.labels.shape, dtype=bool)
    for k, layers in voids.items():
        for layer in layers:
            if layer.voids.is_empty:
                continue
            ks = np.nonzero((zs >= layer.z0_mm) & (zs < layer.z1_mm))[0]
            if ks.size == 0:
                continue
            inside = shapely.contains_xy(layer.voids, gx, gy)
            for kz in ks:
                mask[:, :, kz] |= inside & (grid.labels[:, :, kz] == k)
    return mask


def void_pitch_mm(voids: Mapping[int, Sequence[LayerVoids]], default_mm: float) -> float:
    """A pitch that puts :data:`VOID_CELLS_ACROSS` cells across a typical gap (the median
    of their widths, each taken as twice its area over its perimeter), and never coarser
    than ``default_mm``."""
    widths = []
    for layers in voids.values():
        for layer in layers:
            for part in getattr(layer.voids, "geoms", [layer.voids]):
                if part.is_empty or part.length <= 0:
                    continue
                widths.append(2.0 * part.area / part.length)
    if not widths:
        return default_mm
    return min(default_mm, float(np.median(widths)) / VOID_CELLS_ACROSS)


def solve_release_with_voids(
    meshes: Sequence[trimesh.Trimesh],
    diffusivities_mm2_s: ArrayLike,
    loaded: Sequence[int],
    times_s: ArrayLike,
    voids: Mapping[int, Sequence[LayerVoids]],
    *,
    pitch_mm: float | None = None,
    road_mm: float | None = None,
) -> FloatArray:
    """Fraction released of each loaded compartment's drug, with the slicer's gaps as
    medium (see the module's notes).

    Parameters
    ----------
    meshes, diffusivities_mm2_s, loaded, times_s
        As :func:`~doseprint.release.fv.solve_release`.
    voids : mapping of int to sequence of LayerVoids
        Compartment index → its gaps per layer, in the meshes' coordinates.
    pitch_mm : float, optional
        Grid pitch; by default fine enough for the gaps (:func:`void_pitch_mm`) and for
        the roads between them (``road_mm``), but no finer than :data:`MAX_VOID_CELLS`
        allows.
    road_mm : float, optional
        Centre distance of neighbouring roads; the default pitch puts
        :data:`VOID_CELLS_ACROSS` cells across it.

    Returns
    -------
    released : (len(times_s), len(loaded)) float, 0..1
    """
    if pitch_mm is None:
        coarse = default_pitch_mm(meshes)
        if road_mm is not None:
            coarse = min(coarse, road_mm / VOID_CELLS_ACROSS)
        floor = default_pitch_mm(meshes, max_cells=MAX_VOID_CELLS, cells_across=1e9)
        pitch_mm = max(void_pitch_mm(voids, coarse), floor)
    grid = voxelize(meshes, pitch_mm)
    grid = with_medium(grid, void_mask(grid, voids))
    return release_from_grid(grid, diffusivities_mm2_s, loaded, times_s)
