"""Watertight compartment meshes turned into a labelled voxel grid for the release solver.

The grid is regular, with pitch ``h`` (mm) and cell centres at
``origin_mm + (i, j, k) · h``. Each cell carries a label: ``-1`` for the medium (the sink)
and ``k ≥ 0`` for compartment ``k``, decided by where the cell *centre* lies. A staircase
of whole cells would put the sink up to half a cell away from the true surface, which is a
first-order error in the released fraction; so the grid also keeps, for every pair of
neighbouring cells whose labels differ, where the true surface crosses the segment joining
their centres (``crossing``, a fraction 0..1 of the pitch from the lower cell). The finite
volume solver (:mod:`doseprint.release.fv`) puts the sink, and the interface between two
compartments, at that crossing.

Everything comes from one operation: casting the grid lines through the cell centres, in
each of the three axis directions, against every triangle of every mesh. A crossing
point's position along its line is exact (up to rounding); whether a line passes inside a
triangle is decided with a symbolic perturbation of the line (simulation of simplicity,
Edelsbrunner & Mücke, *ACM Trans. Graph.* 9 (1990) 66), so a line through a shared edge or
vertex is counted exactly once and the inside/outside parity never breaks, even on the
symmetric grids that tablets produce. A cell centre is inside mesh ``k`` when the winding
number of ``k`` at that centre, counted along its ``z`` line, is positive.

Voids that the meshes do not describe (the gaps of a sparse infill from a slicer) are
passed in by marking those cells as medium with :func:`with_medium`; their walls then sit
on cell faces (a staircase), as nothing finer is known about them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import trimesh
from numpy.typing import NDArray
from scipy import ndimage

from doseprint.errors import GeometryError
from doseprint.typed import FloatArray

__all__ = [
    "DEFAULT_CELLS_ACROSS",
    "DEFAULT_MAX_CELLS",
    "MEDIUM",
    "VoxelGrid",
    "default_pitch_mm",
    "feature_size_mm",
    "open_medium",
    "voxelize",
    "with_medium",
]

IntArray = NDArray[np.int32]
BoolArray = NDArray[np.bool_]

MEDIUM = -1
"""Label of a cell of the dissolution medium (the perfect sink)."""

DEFAULT_CELLS_ACROSS = 12.0
"""Cells across the feature size ``2 V / S`` of the smallest compartment at the default
pitch. With the surface-fitted sink and the short-time start of
:func:`~doseprint.release.fv.solve_release` the released fraction stays within 0.003 of
Crank's series over 0–24 h for the 10 × 4 mm cylinder, the 12 × 2 mm disc and spheres of
4 and 8 mm radius (docs/release-model.md)."""

DEFAULT_MAX_CELLS = 60_000
"""Upper bound on the solid cells at the default pitch, so a default solve stays within a
few seconds; the pitch grows instead (and the accuracy falls, first order in ``h``)."""

# Compartments may overlap by rounding where they share a face; beyond this fraction of a
# compartment's cells the meshes really overlap and the design is wrong.
_OVERLAP_CELLS_REL = 0.01
# Triangle/line pairs handled per vectorised batch: bounds memory at ~100 MB.
_PAIRS_PER_BATCH = 1_000_000


@dataclass(frozen=True)
class VoxelGrid:
    """Compartments on a regular grid, with the true surface position between cells.

    Attributes
    ----------
    origin_mm : (3,) float, mm
        Centre of cell ``(0, 0, 0)``.
    pitch_mm : float, mm
        Edge ``h`` of every (cubic) cell.
    labels : (nx, ny, nz) int32
        ``-1`` for medium, ``k`` for compartment ``k`` (its centre lies in mesh ``k``).
    crossing : tuple of three float arrays
        ``crossing[a]`` has the shape of ``labels`` less one along axis ``a``; entry
        ``[..., i, ...]`` refers to the face between cells ``i`` and ``i + 1`` along ``a``
        and gives where the surface that separates their labels crosses the segment from
        centre ``i`` to centre ``i + 1``, as a fraction of ``h`` from centre ``i`` (0..1;
        0.5 is the cell face, i.e. a staircase). NaN where the two labels are equal.
    fractions : (n_compartments, nx, ny, nz) float, 0..1
        Fraction of each cell's volume that belongs to each compartment (exact along z,
        midpoint rule over ``sub × sub`` lines across x and y). Cells labelled medium
        may hold a little solid, and solid cells a little medium or another compartment;
        the solver attributes each to the right cell.
    volumes_mm3 : (n_compartments,) float, mm³
        Volume of each compartment's mesh, for reference.
    """

    origin_mm: FloatArray
    pitch_mm: float
    labels: IntArray
    crossing: tuple[FloatArray, FloatArray, FloatArray]
    fractions: FloatArray
    volumes_mm3: FloatArray

    def __post_init__(self) -> None:
        for array in (self.origin_mm, self.labels, self.fractions, self.volumes_mm3,
                      *self.crossing):
            array.setflags(write=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Cells along x, y and z."""
        nx, ny, nz = self.labels.shape
        return (int(nx), int(ny), int(nz))

    @property
    def n_compartments(self) -> int:
        """Number of compartments (labels ``0 .. n − 1``)."""
        return int(self.volumes_mm3.shape[0])

    def centres_mm(self, axis: int) -> FloatArray:
        """Cell-centre coordinates along ``axis`` (0, 1, 2 = x, y, z), mm, shape ``(n_axis,)``."""
        n = self.labels.shape[axis]
        centres: FloatArray = self.origin_mm[axis] + self.pitch_mm * np.arange(n, dtype=np.float64)
        return centres


def with_medium(grid: VoxelGrid, medium: BoolArray) -> VoxelGrid:
    """The same grid with the cells of ``medium`` turned into medium (sink).

    This is how voids the meshes do not describe enter the model, e.g. the gaps between the
    roads of a sparse infill, found by the slicer and open to the outside. Faces between a
    new medium cell and a solid cell get ``crossing = 0.5``: the sink sits on the cell face.

    Parameters
    ----------
    grid : VoxelGrid
        The grid to start from.
    medium : (nx, ny, nz) bool
        True where the cell is medium.

    Returns
    -------
    VoxelGrid
        A new grid; ``grid`` is unchanged.
    """
    mask = np.asarray(medium, dtype=bool)
    if mask.shape != grid.labels.shape:
        raise ValueError(f"medium mask has shape {mask.shape}, the grid {grid.labels.shape}")
    labels = np.where(mask, MEDIUM, grid.labels).astype(np.int32)
    crossings = []
    for axis in range(3):
        old = np.array(grid.crossing[axis])
        lower = _slice(labels, axis, 0, -1)
        upper = _slice(labels, axis, 1, None)
        touched = np.logical_or(_slice(mask, axis, 0, -1), _slice(mask, axis, 1, None))
        old[touched] = 0.5
        old[lower == upper] = np.nan
        crossings.append(old)
    fractions = np.where(mask[np.newaxis], 0.0, grid.fractions)
    return VoxelGrid(
        grid.origin_mm.copy(), grid.pitch_mm, labels,
        (crossings[0], crossings[1], crossings[2]), fractions, grid.volumes_mm3.copy(),
    )


def open_medium(grid: VoxelGrid) -> BoolArray:
    """Medium cells connected (through faces) to the edge of the grid: the sink.

    Medium cells enclosed by solid on every side (a sealed cavity in a mesh, a closed cell
    of an infill) hold air, not dissolution medium, and are left out.

    Returns
    -------
    (nx, ny, nz) bool
        True for medium cells that the dissolution medium reaches.
    """
    medium = grid.labels == MEDIUM
    components, _ = ndimage.label(medium)
    border = np.zeros(medium.shape, dtype=bool)
    border[[0, -1], :, :] = True
    border[:, [0, -1], :] = True
    border[:, :, [0, -1]] = True
    reached = np.unique(components[border & medium])
    result: BoolArray = np.isin(components, reached[reached > 0]) & medium
    return result


# Resolution ------------------------------------------------------------------------------


def feature_size_mm(meshes: Sequence[trimesh.Trimesh]) -> float:
    """Smallest ``2 V / S`` over the compartments, mm.

    ``2 V / S`` is the full thickness of a plate, ``2 R / 3`` for a sphere and
    ``2 R H / (2R + H)`` for a cylinder: it sets how fast release starts (the early
    release is ``2 (S/V) √(D t / π)``), and so how fine the grid must be for a given
    accuracy in the released fraction.
    """
    sizes = [2.0 * float(m.volume) / float(m.area) for m in meshes]
    return min(sizes)


def default_pitch_mm(
    meshes: Sequence[trimesh.Trimesh],
    *,
    cells_across: float = DEFAULT_CELLS_ACROSS,
    max_cells: int = DEFAULT_MAX_CELLS,
) -> float:
    """The grid pitch used when none is given, mm.

    ``feature_size_mm(meshes) / cells_across``, made coarser if the solid would need more
    than ``max_cells`` cells.

    Parameters
    ----------
    meshes : sequence of trimesh.Trimesh
        The compartments, in mm.
    cells_across : float
        Cells across the smallest compartment's ``2 V / S``.
    max_cells : int
        Upper bound on the number of solid cells.

    Returns
    -------
    float
        Pitch ``h``, mm.
    """
    pitch = feature_size_mm(meshes) / cells_across
    volume = sum(float(m.volume) for m in meshes)
    floor_pitch = (volume / max_cells) ** (1.0 / 3.0)
    return float(max(pitch, floor_pitch))


# Voxelization ----------------------------------------------------------------------------


def voxelize(
    meshes: Sequence[trimesh.Trimesh],
    pitch_mm: float | None = None,
    *,
    margin_cells: int = 2,
    sub_lines: int = 4,
) -> VoxelGrid:
    """Label a regular grid with the compartments of a tablet and find their surfaces.

    Parameters
    ----------
    meshes : sequence of trimesh.Trimesh
        The compartments of one tablet, in mm: watertight, consistently wound, disjoint
        (they may share faces). Compartment ``k`` is ``meshes[k]``.
    pitch_mm : float, optional
        Cell edge ``h`` in mm; :func:`default_pitch_mm` when None.
    margin_cells : int
        Layers of medium cells around the tablet's bounding box (at least 1).
    sub_lines : int
        Lines per cell along x and y used to measure volume fractions (``sub_lines²``
        per cell); 4 measures a tablet's volume to better than 0.1 %.

    Returns
    -------
    VoxelGrid
        Labels and surface crossings. The grid is centred on the tablet's bounding box, so
        a face at a whole number of cells from the centre falls on a cell face.

    Raises
    ------
    GeometryError
        A mesh is not watertight, or two compartments overlap.
    ValueError
        No meshes, a pitch that is not positive, or ``margin_cells < 1``.
    """
    if not meshes:
        raise ValueError("voxelize needs at least one mesh")
    if margin_cells < 1:
        raise ValueError("margin_cells must be at least 1")
    for k, mesh in enumerate(meshes):
        if not mesh.is_watertight or not mesh.is_winding_consistent:
            raise GeometryError(f"compartment {k}: the mesh is not watertight")
        if not mesh.volume > 0.0:
            raise GeometryError(f"compartment {k}: the mesh has no volume (inverted?)")
    h = default_pitch_mm(meshes) if pitch_mm is None else float(pitch_mm)
    if not (math.isfinite(h) and h > 0.0):
        raise ValueError(f"pitch_mm must be a finite number above 0, got {pitch_mm!r}")

    lo = np.min([m.bounds[0] for m in meshes], axis=0)
    hi = np.max([m.bounds[1] for m in meshes], axis=0)
    cells = np.ceil((hi - lo) / h - 1e-9).astype(np.int64) + 2 * margin_cells
    cells = np.maximum(cells, 2 * margin_cells + 1)
    centre = 0.5 * (lo + hi)
    origin = centre - 0.5 * (cells - 1) * h
    shape = (int(cells[0]), int(cells[1]), int(cells[2]))

    hits = [
        _axis_hits(meshes, axis, origin, h, shape) for axis in range(3)
    ]
    labels = _labels_from_hits(hits[2], shape, len(meshes))
    crossing = tuple(_crossings(hits[axis], labels, axis) for axis in range(3))
    fractions = _volume_fractions(meshes, origin, h, shape, sub_lines)
    volumes = np.array([float(m.volume) for m in meshes], dtype=np.float64)
    return VoxelGrid(
        origin.astype(np.float64), h, labels,
        (crossing[0], crossing[1], crossing[2]), fractions, volumes,
    )


@dataclass(frozen=True)
class _Hits:
    """Crossings of all meshes with the grid lines along one axis.

    ``line_b``, ``line_c`` index the line on the two other axes (cyclic order
    ``b = a + 1``, ``c = a + 2``); ``u`` is the position along the axis in cell units
    (centre ``i`` at ``u = i``); ``entering`` is True where the line enters the mesh;
    ``mesh`` is the compartment. Sorted by line, then by ``u``.
    """

    axis: int
    line_b: NDArray[np.int64]
    line_c: NDArray[np.int64]
    u: FloatArray
    entering: BoolArray
    mesh: NDArray[np.int64]


def _axis_hits(
    meshes: Sequence[trimesh.Trimesh],
    axis: int,
    origin: FloatArray,
    h: float,
    shape: tuple[int, int, int],
) -> _Hits:
    parts = [
        _mesh_axis_hits(np.asarray(m.vertices, dtype=np.float64),
                        np.asarray(m.faces, dtype=np.int64), axis, origin, h, shape, k)
        for k, m in enumerate(meshes)
    ]
    line_b = np.concatenate([p[0] for p in parts])
    line_c = np.concatenate([p[1] for p in parts])
    u = np.concatenate([p[2] for p in parts])
    entering = np.concatenate([p[3] for p in parts])
    mesh = np.concatenate([p[4] for p in parts])
    order = np.lexsort((u, line_c, line_b))
    return _Hits(axis, line_b[order], line_c[order], u[order], entering[order], mesh[order])


def _orient_sos(
    ax: FloatArray, ay: FloatArray, bx: FloatArray, by: FloatArray,
    px: FloatArray, py: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Which side of the directed edge a→b the point p lies, never 0 for a proper edge.

    Returns the raw cross product ``(b − a) × (p − a)`` and its sign, where a zero is
    resolved by moving ``p`` by ``(ε, ε²)`` (simulation of simplicity): the sign is then
    that of ``−(b_y − a_y)``, or of ``b_x − a_x`` if the edge is horizontal. Callers pass
    each edge with its endpoints in one canonical order, so the two triangles sharing an
    edge see exactly opposite values.
    """
    dx = bx - ax
    dy = by - ay
    raw = dx * (py - ay) - dy * (px - ax)
    tie = np.where(dy != 0.0, -dy, dx)
    sign = np.where(raw != 0.0, np.sign(raw), np.sign(tie))
    return raw, sign


def _mesh_axis_hits(
    vertices: FloatArray,
    faces: NDArray[np.int64],
    axis: int,
    origin: FloatArray,
    h: float,
    shape: tuple[int, int, int],
    mesh_index: int,
    sub: int = 1,
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray, BoolArray, NDArray[np.int64]]:
    """Crossings of one mesh with lines along ``axis`` (see :class:`_Hits`).

    With ``sub = 1`` the lines are the grid lines through the cell centres. With
    ``sub = s > 1`` they are the ``s × s`` lines per cell column at the centres of an
    ``s × s`` subdivision of each cell face (pitch ``h / s``), used to measure volume
    fractions; line indices then count sub-lines. Positions ``u`` along the axis are always
    in cells of the main grid.
    """
    b, c = (axis + 1) % 3, (axis + 2) % 3
    tri = vertices[faces]  # (F, 3 corners, 3 coords)
    pb, pc, pa = tri[:, :, b], tri[:, :, c], tri[:, :, axis]
    nb, nc = shape[b] * sub, shape[c] * sub
    lh = h / sub
    ob = origin[b] - 0.5 * h + 0.5 * lh
    oc = origin[c] - 0.5 * h + 0.5 * lh
    # Candidate (triangle, line) pairs by scanline: for each row of lines (fixed b) that
    # the triangle spans, the columns between the row's crossings with the triangle's
    # edges, padded by one on each side; the exact test below decides.
    # Rows are padded by one too: a line lying exactly on the edge of a triangle's
    # projection must reach the exact test, whatever the rounding of (x − origin) / h.
    jb_lo = np.clip(np.ceil((pb.min(axis=1) - ob) / lh) - 1, 0, nb).astype(np.int64)
    jb_hi = np.clip(np.floor((pb.max(axis=1) - ob) / lh) + 1, -1, nb - 1).astype(np.int64)
    rows = np.maximum(jb_hi - jb_lo + 1, 0)
    f_row = np.repeat(np.arange(len(faces), dtype=np.int64), rows)
    jb_row = jb_lo[f_row] + (
        np.arange(int(rows.sum()), dtype=np.int64) - np.repeat(np.cumsum(rows) - rows, rows))
    qb_row = ob + jb_row * lh
    c_min = np.full(qb_row.shape, np.inf)
    c_max = np.full(qb_row.shape, -np.inf)
    for e in range(3):
        u_b, u_c = pb[f_row, e], pc[f_row, e]
        w_b, w_c = pb[f_row, (e + 1) % 3], pc[f_row, (e + 1) % 3]
        # Tolerant by a hair, so rounding of the row position cannot drop a row; the
        # position is clamped onto the edge before interpolating.
        e_lo = np.minimum(u_b, w_b)
        e_hi = np.maximum(u_b, w_b)
        spans = (e_lo - 1e-6 * lh <= qb_row) & (qb_row <= e_hi + 1e-6 * lh)
        q_on = np.clip(qb_row, e_lo, e_hi)
        denom = np.where(w_b != u_b, w_b - u_b, 1.0)
        at = np.where(w_b != u_b, u_c + (q_on - u_b) * (w_c - u_c) / denom, u_c)
        lo_e = np.where(w_b != u_b, at, np.minimum(u_c, w_c))
        hi_e = np.where(w_b != u_b, at, np.maximum(u_c, w_c))
        c_min = np.where(spans, np.minimum(c_min, lo_e), c_min)
        c_max = np.where(spans, np.maximum(c_max, hi_e), c_max)
    ok_row = np.isfinite(c_min)
    jc_lo = np.clip(np.ceil((np.where(ok_row, c_min, 0.0) - oc) / lh) - 1, 0, nc)
    jc_hi = np.clip(np.floor((np.where(ok_row, c_max, 0.0) - oc) / lh) + 1, -1, nc - 1)
    cols = np.where(ok_row, np.maximum(jc_hi - jc_lo + 1, 0), 0).astype(np.int64)

    out_b: list[NDArray[np.int64]] = []
    out_c: list[NDArray[np.int64]] = []
    out_u: list[FloatArray] = []
    out_enter: list[BoolArray] = []
    # Batches of whole rows, so no batch holds more than ~_PAIRS_PER_BATCH pairs.
    ends = np.cumsum(cols)
    start = 0
    n_rows = len(cols)
    while start < n_rows:
        base = ends[start - 1] if start > 0 else 0
        stop = int(np.searchsorted(ends, base + _PAIRS_PER_BATCH, side="right"))
        stop = max(stop, start + 1)
        sel = np.arange(start, min(stop, n_rows))
        start = int(sel[-1]) + 1
        cnt = cols[sel]
        if cnt.sum() == 0:
            continue
        r = np.repeat(sel, cnt)
        local = np.arange(int(cnt.sum()), dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        f = f_row[r]
        jb = jb_row[r]
        jc = jc_lo[r].astype(np.int64) + local
        qb = ob + jb * lh
        qc = oc + jc * lh
        raws = []
        signs = []
        for e in range(3):
            u_b, u_c = pb[f, e], pc[f, e]
            w_b, w_c = pb[f, (e + 1) % 3], pc[f, (e + 1) % 3]
            # Canonical order of the two endpoints (lexicographic on the projection), so
            # both triangles of an edge compute the same number, negated.
            swap = (w_b < u_b) | ((w_b == u_b) & (w_c < u_c))
            a_b = np.where(swap, w_b, u_b)
            a_c = np.where(swap, w_c, u_c)
            z_b = np.where(swap, u_b, w_b)
            z_c = np.where(swap, u_c, w_c)
            raw, sign = _orient_sos(a_b, a_c, z_b, z_c, qb, qc)
            flip = np.where(swap, -1.0, 1.0)
            raws.append(raw * flip)
            signs.append(sign * flip)
        inside = (signs[0] == signs[1]) & (signs[1] == signs[2]) & (signs[0] != 0.0)
        if not np.any(inside):
            continue
        f_in = f[inside]
        # Barycentric weights of the corners: the edge opposite corner v is edge v+1.
        w0, w1, w2 = raws[1][inside], raws[2][inside], raws[0][inside]
        total = w0 + w1 + w2
        safe = np.where(total != 0.0, total, 1.0)
        pos = (w0 * pa[f_in, 0] + w1 * pa[f_in, 1] + w2 * pa[f_in, 2]) / safe
        # A degenerate (edge-on) triangle cannot pass the sign test; guard anyway.
        pos = np.where(total != 0.0, pos, pa[f_in].mean(axis=1))
        out_b.append(jb[inside])
        out_c.append(jc[inside])
        out_u.append((pos - origin[axis]) / h)
        # Counter-clockwise in the (b, c) plane means the outward normal points along
        # +axis: the line, running along +axis, leaves the mesh there.
        out_enter.append(signs[0][inside] < 0.0)
    if not out_u:
        empty_i = np.zeros(0, dtype=np.int64)
        return empty_i, empty_i, np.zeros(0), np.zeros(0, dtype=bool), empty_i
    u_all = np.concatenate(out_u)
    return (
        np.concatenate(out_b),
        np.concatenate(out_c),
        u_all,
        np.concatenate(out_enter),
        np.full(u_all.shape, mesh_index, dtype=np.int64),
    )


def _labels_from_hits(hits: _Hits, shape: tuple[int, int, int], n_meshes: int) -> IntArray:
    """Labels from the crossings along z: a centre is in mesh k if k's winding there is > 0.

    A crossing at ``u`` counts for the centres ``j > u`` (strictly), so a centre lying
    exactly on a face shared by two compartments belongs to exactly one of them.
    """
    assert hits.axis == 2
    nx, ny, nz = shape
    labels = np.full(shape, MEDIUM, dtype=np.int32)
    claimed = np.zeros(shape, dtype=np.int32)
    first = np.clip(np.floor(hits.u).astype(np.int64) + 1, 0, nz)
    step = np.where(hits.entering, 1, -1).astype(np.int32)
    for k in range(n_meshes):
        sel = hits.mesh == k
        delta = np.zeros((nx, ny, nz + 1), dtype=np.int32)
        np.add.at(delta, (hits.line_b[sel], hits.line_c[sel], first[sel]), step[sel])
        inside = np.cumsum(delta, axis=2)[:, :, :nz] > 0
        fresh = inside & (labels == MEDIUM)
        labels[fresh] = k
        claimed += inside.astype(np.int32)
        overlap = int(np.count_nonzero(inside & (claimed > 1)))
        if overlap > _OVERLAP_CELLS_REL * max(int(np.count_nonzero(inside)), 1):
            raise GeometryError(
                f"compartment {k} overlaps another one over {overlap} grid cells; "
                "compartments must be disjoint (they may share faces)"
            )
    return labels


def _volume_fractions(
    meshes: Sequence[trimesh.Trimesh],
    origin: FloatArray,
    h: float,
    shape: tuple[int, int, int],
    sub: int,
) -> FloatArray:
    """Fraction of each cell's volume inside each mesh, ``(n_meshes, nx, ny, nz)``.

    Along a line parallel to z the length inside a mesh is exact (the crossings are
    exact), so the fraction of a cell is the mean, over ``sub × sub`` lines through the
    cell (midpoint rule across x and y), of the length inside the mesh within the cell's
    z range. The inside length up to a face at ``u`` is ``Σ ±(u − u_i)`` over the
    crossings ``u_i < u`` on that line (+ entering, − leaving).
    """
    nx, ny, nz = shape
    fractions = np.zeros((len(meshes), nx, ny, nz))
    faces_u = np.arange(nz + 1, dtype=np.float64) - 0.5
    for k, mesh in enumerate(meshes):
        lb, lc, u, entering, _ = _mesh_axis_hits(
            np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64),
            2, origin, h, shape, k, sub)
        sign = np.where(entering, 1.0, -1.0)
        # First face strictly above each crossing.
        first = np.clip(np.floor(u + 0.5).astype(np.int64) + 1, 0, nz + 1)
        slope = np.zeros((nx * sub, ny * sub, nz + 2))
        offset = np.zeros((nx * sub, ny * sub, nz + 2))
        np.add.at(slope, (lb, lc, first), sign)
        np.add.at(offset, (lb, lc, first), sign * u)
        slope = np.cumsum(slope, axis=2)[:, :, : nz + 1]
        offset = np.cumsum(offset, axis=2)[:, :, : nz + 1]
        inside_below = slope * faces_u - offset
        chord = np.clip(np.diff(inside_below, axis=2), 0.0, 1.0)
        fractions[k] = chord.reshape(nx, sub, ny, sub, nz).mean(axis=(1, 3))
    return fractions


def _slice(array: NDArray[np.generic], axis: int, start: int, stop: int | None) -> NDArray[
        np.generic]:
    index: list[slice] = [slice(None)] * array.ndim
    index[axis] = slice(start, stop)
    return array[tuple(index)]


def _crossings(hits: _Hits, labels: IntArray, axis: int) -> FloatArray:
    """Where the surface crosses each face between differently labelled neighbours.

    For the face between cells ``i`` and ``i + 1`` along ``axis`` the crossings of that
    grid line with ``u`` in ``[i, i + 1)`` are candidates. If the lower cell is solid
    (label p), the first crossing where the line leaves mesh p is taken; else the last
    crossing where it enters the upper cell's mesh. A face with no candidate (a
    disagreement between the rays along z, which set the labels, and this axis, possible
    only within rounding of a vertex) gets 0.5, the cell face.
    """
    b, c = (axis + 1) % 3, (axis + 2) % 3
    # Move `axis` last and (b, c) first, so positions read [line_b, line_c, i].
    lab = np.moveaxis(labels, (b, c, axis), (0, 1, 2))
    lower, upper = lab[:, :, :-1], lab[:, :, 1:]
    result = np.full(lower.shape, np.nan)
    ib, ic, ii = np.nonzero(lower != upper)
    result[ib, ic, ii] = 0.5
    if ii.size and hits.u.size:
        n_a = lab.shape[2]
        n_c = lab.shape[1]
        span = float(n_a + 2)
        # One sortable key per crossing: line number, then position along the line.
        keys = (hits.line_b * n_c + hits.line_c).astype(np.float64) * span + (hits.u + 1.0)
        face_key = (ib * n_c + ic).astype(np.float64) * span + (ii + 1.0)
        first = np.searchsorted(keys, face_key, side="left")
        last = np.searchsorted(keys, face_key + 1.0, side="left")
        p = lower[ib, ic, ii]
        q = upper[ib, ic, ii]
        chosen = np.full(ii.shape, np.nan)
        most = int(np.max(last - first)) if ii.size else 0
        # Leaving the lower cell's mesh: the first such crossing.
        for offset in range(most):
            idx = first + offset
            ok = (idx < last) & np.isnan(chosen) & (p >= 0)
            idx_ok = np.where(ok, idx, 0)
            ok &= (hits.mesh[idx_ok] == p) & ~hits.entering[idx_ok]
            chosen[ok] = hits.u[idx_ok[ok]] - ii[ok]
        # Entering the upper cell's mesh: the last such crossing.
        for offset in range(most):
            idx = last - 1 - offset
            ok = (idx >= first) & np.isnan(chosen) & (q >= 0)
            idx_ok = np.where(ok, idx, 0)
            ok &= (hits.mesh[idx_ok] == q) & hits.entering[idx_ok]
            chosen[ok] = hits.u[idx_ok[ok]] - ii[ok]
        found = ~np.isnan(chosen)
        result[ib[found], ic[found], ii[found]] = np.clip(chosen[found], 0.0, 1.0)
    out: FloatArray = np.ascontiguousarray(np.moveaxis(result, (0, 1, 2), (b, c, axis)))
    return out
