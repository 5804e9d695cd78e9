"""Release in the first moments, from the exact surface: the short-time heat-content expansion.

While the depleted layer next to the sink is thin compared with the body, the amount
released depends only on the surface near it, and for a body bounded by a polyhedral mesh
of volume ``V`` the fraction released is::

    F(t) = [ 2 S √(D t / π)  −  D t Σ_edges ℓ_e c(γ_e) ] / V  +  O((D t)^{3/2})

``S`` is the area in contact with the sink; the sum runs over the mesh edges between two
exposed faces, ``ℓ_e`` the edge's length and ``γ_e`` the interior dihedral angle there;
and::

    c(γ) = ∫_0^∞ 4 sinh((π − γ) x) / (sinh(π x) cosh(γ x)) dx

is the corner coefficient of M. van den Berg and S. Srisatkunarajah ("Heat flow and
Brownian motion for a region in R² with a polygonal boundary", *Probab. Theory Relat.
Fields* 86 (1990) 41–52). Near a straight edge the problem is that of their planar corner,
so each edge contributes its length times their coefficient. ``c(π/2) = 4/π`` (a right
angle), ``c(π) = 0`` (a flat face), ``c(γ) < 0`` for a re-entrant edge, and
``c(π − β) → β/2`` for a shallow fold: a finely faceted curved surface adds up to
``½ ∫ (κ₁ + κ₂) dS``, the mean-curvature term of the heat-content expansion of a smooth
body (M. van den Berg and P. Gilkey, *J. Funct. Anal.* 120 (1994) 48). For a sphere this
gives Crank's ``6 √(τ/π) − 3τ`` (τ = D t / R²), and for a finite cylinder the first two
terms of the product of Crank's slab and cylinder series, exactly.

The expansion ignores the opposite side of the body (the image terms of Crank's series,
``exp(−L² / (4 D t))`` for a plate of thickness ``L``) and the vertices (order
``(D t)^{3/2}``). :func:`doseprint.release.fv.solve_release` uses it only while the layer
``√(D t)`` spans fewer than three grid cells, where a grid cannot resolve it and the
finite-volume result is first-order wrong, and only while ``√(D t)`` is under a quarter of
the thinnest dimension.

Which faces touch the sink is decided per face: a face of compartment ``k`` is exposed
unless a point just outside it lies inside another compartment. Edges where an exposed
face meets an interface with another compartment add nothing here (exact when the
neighbour conducts like ``k`` or not at all; a small error in between).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import trimesh
from numpy.typing import ArrayLike, NDArray

from doseprint.release.voxelize import MEDIUM, VoxelGrid, open_medium
from doseprint.typed import FloatArray

__all__ = [
    "ShortTimeGeometry",
    "corner_coefficient",
    "short_time_geometry",
    "short_time_released",
]

# Nodes of the Gauss–Laguerre rule for c(γ): 96 nodes put the quadrature error below 1e-9
# over 0.3 ≤ γ ≤ 2π − 0.3 (checked against adaptive quadrature).
_LAGUERRE_NODES = 96
# Faces are tested for contact with another compartment at this fraction of the tablet's
# bounding-box diagonal outside their centroid: far above rounding, far below any wall.
_PROBE_REL = 1e-4
# Point/triangle pairs per vectorised batch of the winding-number test.
_PAIRS_PER_BATCH = 2_000_000


@lru_cache(maxsize=1)
def _laguerre() -> tuple[FloatArray, FloatArray]:
    nodes, weights = np.polynomial.laguerre.laggauss(_LAGUERRE_NODES)
    # Fold e^{y} into the weights once; the largest node is ~370, e^{370} is finite.
    scaled = weights * np.exp(nodes)
    nodes.setflags(write=False)
    scaled.setflags(write=False)
    return nodes, scaled


def corner_coefficient(interior_angle_rad: ArrayLike) -> FloatArray:
    """Van den Berg–Srisatkunarajah coefficient ``c(γ)`` of a corner of interior angle γ.

    Written without overflow as::

        c(γ) = ∫_0^∞ 8 (e^{−2γx} − e^{−2πx}) / ((1 − e^{−2πx}) (1 + e^{−2γx})) dx

    and integrated by Gauss–Laguerre quadrature in ``y = 2 min(γ, π) x``.

    Parameters
    ----------
    interior_angle_rad : (...) float, rad
        Interior angle γ of the corner (or dihedral angle of the edge), 0 < γ < 2π.

    Returns
    -------
    c : (...) float
        ``4/π`` at a right angle, 0 at a flat face, negative for γ > π.

    Raises
    ------
    ValueError
        An angle outside (0, 2π).
    """
    gamma = np.asarray(interior_angle_rad, dtype=np.float64)
    if np.any(~np.isfinite(gamma)) or np.any(gamma <= 0.0) or np.any(gamma >= 2.0 * math.pi):
        raise ValueError("corner angles must lie strictly between 0 and 2π")
    nodes, weights = _laguerre()
    rate = 2.0 * np.minimum(gamma, math.pi)
    x = np.multiply.outer(1.0 / rate, nodes)  # (..., nodes)
    g = gamma[..., np.newaxis]
    numerator = 8.0 * (np.exp(-2.0 * g * x) - np.exp(-2.0 * math.pi * x))
    denominator = -np.expm1(-2.0 * math.pi * x) * (1.0 + np.exp(-2.0 * g * x))
    result: FloatArray = (numerator / denominator) @ weights / rate
    return result


@dataclass(frozen=True)
class ShortTimeGeometry:
    """What the short-time expansion needs to know of each compartment.

    Attributes
    ----------
    exposed_area_mm2 : (n_compartments,) float, mm²
        Area of each compartment's surface in contact with the medium.
    edge_sum_mm : (n_compartments,) float, mm
        ``Σ ℓ_e c(γ_e)`` over the edges between two exposed faces of the compartment.
    volumes_mm3 : (n_compartments,) float, mm³
        Volume of each compartment.
    total_area_mm2 : (n_compartments,) float, mm²
        Whole surface area of each compartment (exposed or not).
    """

    exposed_area_mm2: FloatArray
    edge_sum_mm: FloatArray
    volumes_mm3: FloatArray
    total_area_mm2: FloatArray


def short_time_geometry(
    meshes: Sequence[trimesh.Trimesh], grid: VoxelGrid | None = None
) -> ShortTimeGeometry:
    """Exposed area and edge sum of each compartment of a tablet.

    Parameters
    ----------
    meshes : sequence of trimesh.Trimesh
        The compartments, watertight and disjoint (they may share faces), in mm.
    grid : VoxelGrid, optional
        The same tablet on a grid. When given, a face whose outside (probed three quarters
        of a cell away along its normal) is a sealed cavity of the grid
        (:func:`~doseprint.release.voxelize.open_medium`) is not exposed.

    Returns
    -------
    ShortTimeGeometry
    """
    sealed: NDArray[np.bool_] | None = None
    if grid is not None:
        sealed = (grid.labels == MEDIUM) & ~open_medium(grid)
        if not np.any(sealed):
            sealed = None
    lo = np.min([m.bounds[0] for m in meshes], axis=0)
    hi = np.max([m.bounds[1] for m in meshes], axis=0)
    probe = _PROBE_REL * float(np.linalg.norm(hi - lo))
    areas = []
    edges = []
    for k, mesh in enumerate(meshes):
        exposed = np.ones(len(mesh.faces), dtype=bool)
        points = mesh.triangles_center + probe * mesh.face_normals
        for j, other in enumerate(meshes):
            if j == k:
                continue
            near = np.all((points >= other.bounds[0] - probe) & (points <= other.bounds[1] + probe),
                          axis=1)
            if np.any(near):
                inside = _winding_number(other, points[near]) > 0.5
                exposed[np.flatnonzero(near)[inside]] = False
        if sealed is not None and grid is not None:
            far = mesh.triangles_center + 0.75 * grid.pitch_mm * mesh.face_normals
            cell = np.rint((far - grid.origin_mm) / grid.pitch_mm).astype(np.int64)
            inside_grid = np.all((cell >= 0) & (cell < np.array(grid.shape)), axis=1)
            hit = np.zeros(len(cell), dtype=bool)
            c_in = cell[inside_grid]
            hit[inside_grid] = sealed[c_in[:, 0], c_in[:, 1], c_in[:, 2]]
            exposed &= ~hit
        areas.append(float(mesh.area_faces[exposed].sum()))
        pairs = np.asarray(mesh.face_adjacency, dtype=np.int64)
        both = exposed[pairs[:, 0]] & exposed[pairs[:, 1]]
        angle = np.asarray(mesh.face_adjacency_angles, dtype=np.float64)[both]
        convex = np.asarray(mesh.face_adjacency_convex, dtype=bool)[both]
        gamma = np.where(convex, math.pi - angle, math.pi + angle)
        ends = np.asarray(mesh.vertices)[np.asarray(mesh.face_adjacency_edges)[both]]
        length = np.linalg.norm(ends[:, 1] - ends[:, 0], axis=1)
        # Coplanar neighbours (angle 0) contribute exactly 0; skip the quadrature there.
        bent = angle > 0.0
        total = float(np.sum(length[bent] * corner_coefficient(gamma[bent]))) if np.any(
            bent) else 0.0
        edges.append(total)
    volumes = np.array([float(m.volume) for m in meshes])
    totals = np.array([float(m.area) for m in meshes])
    return ShortTimeGeometry(np.array(areas), np.array(edges), volumes, totals)


def _winding_number(mesh: trimesh.Trimesh, points: FloatArray) -> FloatArray:
    """Generalised winding number of a closed mesh at each point (1 inside, 0 outside).

    Sum of the solid angles of the triangles seen from the point over 4π, each by the
    formula of Van Oosterom & Strackee (*IEEE Trans. Biomed. Eng.* 30 (1983) 125).
    """
    tri = np.asarray(mesh.triangles, dtype=np.float64)
    result = np.zeros(len(points))
    batch = max(1, _PAIRS_PER_BATCH // max(len(tri), 1))
    for start in range(0, len(points), batch):
        p = points[start:start + batch]
        a = tri[np.newaxis, :, 0, :] - p[:, np.newaxis, :]
        b = tri[np.newaxis, :, 1, :] - p[:, np.newaxis, :]
        c = tri[np.newaxis, :, 2, :] - p[:, np.newaxis, :]
        la = np.linalg.norm(a, axis=2)
        lb = np.linalg.norm(b, axis=2)
        lc = np.linalg.norm(c, axis=2)
        det = np.einsum("ptk,ptk->pt", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("ptk,ptk->pt", a, b) * lc
               + np.einsum("ptk,ptk->pt", b, c) * la + np.einsum("ptk,ptk->pt", c, a) * lb)
        result[start:start + batch] = np.arctan2(det, den).sum(axis=1) / (2.0 * math.pi)
    return result


def short_time_released(
    geometry: ShortTimeGeometry, compartment: int, t_s: ArrayLike, diffusivity_mm2_s: float
) -> FloatArray:
    """Fraction of a compartment's drug released, by the short-time expansion.

    ``F = (2 S √(D t / π) − D t Σ ℓ c(γ)) / V``, clipped to 0..1. Accurate (to
    ``O((D t)^{3/2} / V)``) only while ``√(D t)`` is small against the compartment's
    thinnest dimension and its distance to other compartments' exposed faces.

    Parameters
    ----------
    geometry : ShortTimeGeometry
        From :func:`short_time_geometry`.
    compartment : int
        Which compartment's drug.
    t_s : (...) float, s
        Times, at least 0.
    diffusivity_mm2_s : float, mm²/s
        ``D`` of that compartment.

    Returns
    -------
    released : (...) float, 0..1
        Shaped like ``t_s``.
    """
    t = np.asarray(t_s, dtype=np.float64)
    dt = diffusivity_mm2_s * t
    area = geometry.exposed_area_mm2[compartment]
    edge = geometry.edge_sum_mm[compartment]
    volume = geometry.volumes_mm3[compartment]
    released: FloatArray = np.clip(
        (2.0 * area * np.sqrt(dt / math.pi) - dt * edge) / volume, 0.0, 1.0)
    return released

