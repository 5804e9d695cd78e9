"""Finite-volume diffusion on a voxel grid: the release of each drug into a perfect sink.

The model is Fick's second law, ``∂c/∂t = ∇·(D ∇c)``, in the solid compartments of one
tablet, with ``D`` constant in each compartment, ``c`` and the flux ``−D ∂c/∂n``
continuous across the interface between two compartments (no partitioning), ``c = 0`` on
every surface in contact with the medium (perfect sink), and at ``t = 0`` a uniform
concentration in the compartment that holds the drug and none elsewhere. The fraction
released at ``t`` is the share of the initial amount that has crossed the sink surface.

Space: one unknown per solid cell of a :class:`~doseprint.release.voxelize.VoxelGrid`
(cell centre inside a compartment), in the semi-discrete form ``C dc/dt = −K c``:

* ``C`` (diagonal) is the cell's solid volume: its own volume fraction, plus the solid in
  neighbouring medium cells (cells whose centre lies just outside), so that the cells'
  volumes add up to the meshes' volumes.
* ``K`` couples face neighbours with the conductance ``h² / (θh/D_p + (1 − θ)h/D_q)``,
  ``θ`` being where the interface between compartments ``p`` and ``q`` crosses the line
  between the two centres (the harmonic mean of ``D``, weighted by the true interface
  position; ``D h`` inside one compartment).
* A face between a solid cell and the medium puts the sink on the true surface: with the
  surface at distance ``θh`` from the cell centre along the grid line, the flux through
  that face is ``D h² c / (θh)``. This is the symmetric ghost-fluid discretisation of a
  Dirichlet boundary by Gibou, Fedkiw, Cheng & Kang (*J. Comput. Phys.* 176 (2002) 205),
  itself the finite-volume form of the Shortley–Weller difference (*J. Appl. Phys.* 9
  (1938) 334); it is second-order accurate for the concentration and keeps ``K``
  symmetric positive definite. A surface closer than ``MIN_DISTANCE`` cells to a
  centre is put at that distance.

Time: TR-BDF2 (Bank et al., *IEEE Trans. Electron Devices* 32 (1985) 1992; analysed by
Hosea & Shampine, *Appl. Numer. Math.* 20 (1996) 21) with ``γ = 2 − √2``: a trapezoidal
stage to ``t + γΔt`` and a BDF2 stage to ``t + Δt``. Both stages solve with the same
matrix ``C + βΔt K``, ``β = 1 − 1/√2``, so one factorisation serves every step of one
size. The scheme is second order and L-stable: the stiff modes that the sudden sink
excites are damped, not left to oscillate as under Crank–Nicolson, so no damped start is
needed, and there is no step limit (an explicit scheme would need ``Δt ≤ h² / (6D)``).
Steps grow geometrically, in blocks of equal steps, from a first step of ``0.2 h² / D``:
one matrix per block, factored once by :func:`splu_solver`, or iterated on by the default
:func:`cg_solver`, which on these 3-D grids is 3–30 times faster than refactoring.

Mass: ``1ᵀK = gᵀ`` (``g`` the conductances to the sink), so the amount that left through
the sink, summed with the scheme's own quadrature of the flux ``gᵀc``, equals the initial
amount minus the amount remaining, to rounding. Every step checks that balance against
``tol.mass_balance_rel`` and raises :class:`~doseprint.errors.ReleaseModelError` if it
fails (a linear solve that did not converge, or an operator that does not conserve mass).

The released fraction computed this way is first-order in ``h`` while the diffusion
layer is thinner than a cell or two (no grid can resolve a layer thinner than itself);
:func:`solve_release` therefore uses the short-time expansion of the same problem over the
exact surface (:mod:`doseprint.release.shorttime`) for those first moments and the
finite-volume solution afterwards. See docs/release-model.md for the measured accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as splinalg
import trimesh
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import PchipInterpolator

from doseprint.errors import ReleaseModelError
from doseprint.release.shorttime import (
    ShortTimeGeometry,
    short_time_geometry,
    short_time_released,
)
from doseprint.release.voxelize import MEDIUM, VoxelGrid, open_medium, voxelize
from doseprint.tolerances import tol
from doseprint.typed import FloatArray

__all__ = [
    "BLEND_END_CELLS",
    "BLEND_START_CELLS",
    "CG_RTOL",
    "MIN_DISTANCE",
    "SHORT_TIME_MAX_FEATURE",
    "DiffusionSystem",
    "LinearSolve",
    "LinearSolver",
    "StepSchedule",
    "assemble",
    "cg_solver",
    "default_schedule",
    "evolve",
    "release_from_grid",
    "solve_release",
    "splu_solver",
]

MIN_DISTANCE = 1e-3
"""Smallest distance, in cells, from a cell centre to the sink surface used in the
ghost-fluid flux; a surface nearer than that (a centre almost on it) is moved out to it."""

_GAMMA = 2.0 - math.sqrt(2.0)
_BETA = 1.0 - 1.0 / math.sqrt(2.0)
# BDF2 stage of TR-BDF2: u_{n+1} = A u* − B u_n + β Δt f(u_{n+1}), A − B = 1.
_STAGE_A = 1.0 / (_GAMMA * (2.0 - _GAMMA))
_STAGE_B = (1.0 - _GAMMA) ** 2 / (_GAMMA * (2.0 - _GAMMA))

LinearSolve = Callable[[FloatArray, FloatArray], FloatArray]
"""Solves ``M x = b`` for one matrix ``M``: called as ``solve(b, guess)`` with ``b`` and
the starting guess both ``(n, k)``; a direct solver ignores the guess."""
LinearSolver = Callable[[sparse.csc_matrix], LinearSolve]
"""Prepares a :data:`LinearSolve` for a symmetric positive definite matrix (e.g. factors it)."""


# The discrete system ----------------------------------------------------------------------


@dataclass(frozen=True)
class DiffusionSystem:
    """The semi-discrete problem ``C dc/dt = −K c`` over the solid cells of a grid.

    Attributes
    ----------
    capacity_mm3 : (n,) float, mm³
        ``C``: volume of solid each cell stands for.
    conductance : (n, n) sparse float, mm³/s
        ``K``: symmetric positive definite; off-diagonal ``−G`` between face neighbours,
        diagonal the sum of a cell's conductances including the sink's.
    sink_mm3_s : (n,) float, mm³/s
        ``g``: each cell's conductance to the medium (0 for cells not touching it); the
        flux out of the tablet is ``gᵀc``. The column sums of ``K`` equal ``g``.
    loads_mm3 : (n_compartments, n) float, mm³
        Volume of compartment ``k`` that each cell stands for: the initial amount of the
        drug of compartment ``k`` per unit concentration.
    cells : (n, 3) int
        Grid index of each unknown.
    pitch_mm : float, mm
        Grid pitch ``h``.
    diffusivities_mm2_s : (n_compartments,) float, mm²/s
        ``D`` of each compartment.
    """

    capacity_mm3: FloatArray
    conductance: sparse.csr_matrix
    sink_mm3_s: FloatArray
    loads_mm3: FloatArray
    cells: NDArray[np.int64]
    pitch_mm: float
    diffusivities_mm2_s: FloatArray

    @property
    def n_cells(self) -> int:
        """Number of unknowns (solid cells)."""
        return int(self.capacity_mm3.shape[0])


def _shifted(array: NDArray[np.generic], axis: int, lower: bool) -> NDArray[np.generic]:
    index: list[slice] = [slice(None)] * array.ndim
    index[axis] = slice(0, -1) if lower else slice(1, None)
    return array[tuple(index)]


def assemble(grid: VoxelGrid, diffusivities_mm2_s: ArrayLike) -> DiffusionSystem:
    """Build ``C``, ``K``, ``g`` and the loads for a grid and per-compartment diffusivities.

    Parameters
    ----------
    grid : VoxelGrid
        Labels, surface crossings and volume fractions (:func:`voxelize`).
    diffusivities_mm2_s : (n_compartments,) float, mm²/s
        ``D`` of each compartment, all above 0 (a drug-free barrier still has its own D).

    Returns
    -------
    DiffusionSystem

    Raises
    ------
    ValueError
        A diffusivity is missing, not finite or not above 0.
    ReleaseModelError
        The grid holds no solid cell.
    """
    d = np.asarray(diffusivities_mm2_s, dtype=np.float64).reshape(-1)
    if d.shape[0] != grid.n_compartments:
        raise ValueError(
            f"{d.shape[0]} diffusivities for {grid.n_compartments} compartments")
    if not np.all(np.isfinite(d)) or np.any(d <= 0.0):
        raise ValueError("every compartment's diffusivity must be a finite number above 0")
    h = grid.pitch_mm
    labels = grid.labels
    solid = labels != MEDIUM
    n = int(np.count_nonzero(solid))
    if n == 0:
        raise ReleaseModelError("the grid holds no solid cell: the pitch is too coarse")
    # Only medium the dissolution fluid reaches is a sink; a sealed cavity is no-flux.
    sink_cells = open_medium(grid)
    index = np.full(labels.shape, -1, dtype=np.int64)
    index[solid] = np.arange(n)
    d_cell = np.where(solid, d[np.maximum(labels, 0)], 0.0)

    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int64]] = []
    vals: list[FloatArray] = []
    sink = np.zeros(n)
    for axis in range(3):
        lo_lab = _shifted(labels, axis, True)
        hi_lab = _shifted(labels, axis, False)
        lo_idx = _shifted(index, axis, True)
        hi_idx = _shifted(index, axis, False)
        lo_d = _shifted(d_cell, axis, True)
        hi_d = _shifted(d_cell, axis, False)
        theta = np.nan_to_num(grid.crossing[axis], nan=0.5)
        # Solid–solid faces: series resistance of the two sides of the interface.
        both = (lo_lab != MEDIUM) & (hi_lab != MEDIUM)
        th = theta[both]
        g_face = h / (th / lo_d[both] + (1.0 - th) / hi_d[both])
        rows.append(lo_idx[both])
        cols.append(hi_idx[both])
        vals.append(g_face)
        lo_sink = _shifted(sink_cells, axis, True)
        hi_sink = _shifted(sink_cells, axis, False)
        # Solid below, medium above: the sink at θh above the centre.
        out_up = (lo_lab != MEDIUM) & hi_sink
        dist = np.maximum(theta[out_up], MIN_DISTANCE)
        np.add.at(sink, lo_idx[out_up], lo_d[out_up] * h / dist)
        # Medium below, solid above: the sink at (1 − θ)h below the centre.
        out_down = lo_sink & (hi_lab != MEDIUM)
        dist = np.maximum(1.0 - theta[out_down], MIN_DISTANCE)
        np.add.at(sink, hi_idx[out_down], hi_d[out_down] * h / dist)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    v = np.concatenate(vals)
    off = sparse.coo_matrix((-v, (r, c)), shape=(n, n))
    off = off + off.T
    diagonal = -np.asarray(off.sum(axis=1)).reshape(-1) + sink
    conductance = (off + sparse.diags(diagonal)).tocsr()

    capacity, loads = _volumes(grid, solid)
    cells = np.argwhere(solid).astype(np.int64)
    return DiffusionSystem(capacity, conductance, sink, loads, cells, h, d)


_NEIGHBOURS_6 = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
                 if abs(dx) + abs(dy) + abs(dz) == 1]
_NEIGHBOURS_26 = [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
                  if (dx, dy, dz) != (0, 0, 0)]


def _roll_from(array: NDArray[np.generic], offset: tuple[int, int, int]) -> NDArray[np.generic]:
    """``out[i] = array[i + offset]``, with zeros (False) beyond the edge."""
    out = np.zeros_like(array)
    src: list[slice] = []
    dst: list[slice] = []
    for o, size in zip(offset, array.shape[-3:], strict=True):
        if o >= 0:
            src.append(slice(o, size))
            dst.append(slice(0, size - o))
        else:
            src.append(slice(0, size + o))
            dst.append(slice(-o, size))
    lead = (slice(None),) * (array.ndim - 3)
    out[(*lead, *dst)] = array[(*lead, *src)]
    return out


def _volumes(grid: VoxelGrid, solid: NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """Each unknown's solid volume (capacity) and per-compartment volume (loads), mm³.

    A solid cell keeps its own solid. The solid in a medium cell (its centre is just
    outside the surface) is shared equally among its solid face neighbours, or, failing
    those, among its solid edge and corner neighbours.
    """
    h3 = grid.pitch_mm**3
    per_comp = np.asarray(grid.fractions) * h3  # (k, nx, ny, nz)
    loads_grid = np.where(solid[np.newaxis], per_comp, 0.0)
    stray = np.where(solid[np.newaxis], 0.0, per_comp)
    has_stray = stray.sum(axis=0) > 0.0
    for neighbours in (_NEIGHBOURS_6, _NEIGHBOURS_26):
        if not np.any(has_stray):
            break
        count = np.zeros(solid.shape, dtype=np.int64)
        for off in neighbours:
            count += _roll_from(solid, off).astype(np.int64)
        give = has_stray & (count > 0)
        share = np.where(give[np.newaxis], stray / np.maximum(count, 1)[np.newaxis], 0.0)
        for off in neighbours:
            # The medium cell at i - off gives to the solid cell at i.
            back = (-off[0], -off[1], -off[2])
            received = _roll_from(share, back)
            loads_grid += np.where(solid[np.newaxis], received, 0.0)
        stray = np.where(give[np.newaxis], 0.0, stray)
        has_stray = stray.sum(axis=0) > 0.0
    loads = loads_grid[:, solid]
    capacity = loads.sum(axis=0)
    # A solid cell with no solid measured in or near it (rounding at a sliver) still
    # needs a capacity; give it a sliver's worth so C stays positive.
    capacity = np.maximum(capacity, 1e-6 * h3)
    return capacity, loads


# Linear solvers ----------------------------------------------------------------------------


def splu_solver(matrix: sparse.csc_matrix) -> LinearSolve:
    """Sparse LU (SuperLU) with a minimum-degree ordering of ``M + Mᵀ``.

    The matrices here are symmetric, so ordering on ``M + Mᵀ`` (``MMD_AT_PLUS_A``) with
    diagonal pivoting keeps the fill about half of COLAMD's on 3-D grids and factors
    2–3 times faster (measured on 25k–150k cell grids, docs/release-model.md).
    """
    lu = splinalg.splu(
        matrix.tocsc(), permc_spec="MMD_AT_PLUS_A",
        options={"SymmetricMode": True}, diag_pivot_thresh=0.0,
    )

    def solve(rhs: FloatArray, guess: FloatArray) -> FloatArray:
        x: FloatArray = lu.solve(rhs)
        return x

    return solve


CG_RTOL = 1e-11
"""Relative residual at which :func:`cg_solver` stops. The mass error of one solve is
``1ᵀr`` (``r`` the residual), at most ``rtol`` of the amount in the tablet, so a hundred
solves stay two orders below ``tol.mass_balance_rel``."""


def _column_dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Dot product of matching columns, ``(n, k), (n, k) -> (k,)``.

    ``einsum`` rather than ``@``: a BLAS call here would start OpenBLAS threads thousands
    of times per solve, and on a loaded machine their wake-ups cost more than the sums
    (measured: 6–17 s instead of 1.1 s for the 10 × 4 mm cylinder beside another BLAS job).
    """
    result: FloatArray = np.einsum("ij,ij->j", a, b)
    return result


def cg_solver(matrix: sparse.csc_matrix) -> LinearSolve:
    """Conjugate gradients preconditioned by the diagonal (Jacobi), to :data:`CG_RTOL`.

    Nothing to factor, so it costs nothing per step size. Iterations grow like
    ``√(βΔt λ_max(C⁻¹K))`` ~ ``√(Δt D) / h``: from ~10 for the first steps to ~100 for
    steps of hours on a 0.2 mm grid, each one sparse product; started from the caller's
    guess (the state extrapolated in time). All columns (drugs) iterate together, each
    stopping at its own residual. On 3-D grids of 20k cells and more this beats
    refactoring per step size (docs/release-model.md). The matrix must be symmetric
    positive definite, as ``C + βΔt K`` is.
    """
    csr = matrix.tocsr()
    inv_diag = (1.0 / csr.diagonal())[:, np.newaxis]
    max_iterations = 10 * csr.shape[0]

    def solve(rhs: FloatArray, guess: FloatArray) -> FloatArray:
        x = np.array(guess, dtype=np.float64)
        r = rhs - csr @ x
        z = inv_diag * r
        p = z.copy()
        rz = _column_dot(r, z)
        stop = CG_RTOL * np.sqrt(_column_dot(rhs, rhs))
        for _ in range(max_iterations):
            active = np.sqrt(_column_dot(r, r)) > stop
            if not np.any(active):
                return x
            q = csr @ p
            pq = _column_dot(p, q)
            alpha = np.where(active, rz / np.where(active, pq, 1.0), 0.0)
            x += alpha * p
            r -= alpha * q
            z = inv_diag * r
            rz_new = _column_dot(r, z)
            beta = np.where(active, rz_new / np.where(active, rz, 1.0), 0.0)
            p = z + beta * p
            rz = rz_new
        raise ReleaseModelError(
            f"conjugate gradients did not converge in {max_iterations} iterations")

    return solve


# Time stepping ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StepSchedule:
    """Geometrically growing time steps, in blocks of equal steps.

    Block ``j`` takes ``steps_per_block`` steps of ``first_step_s · growth**j``; one
    factorisation serves a block.

    Attributes
    ----------
    first_step_s : float, s
        Length of the first steps.
    steps_per_block : int
        Equal steps per block (at least 1).
    growth : float
        Ratio of one block's step to the previous block's (at least 1).
    """

    first_step_s: float
    steps_per_block: int = 8
    growth: float = 4.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.first_step_s) and self.first_step_s > 0.0):
            raise ValueError("first_step_s must be a finite number above 0")
        if self.steps_per_block < 1 or not self.growth >= 1.0:
            raise ValueError("steps_per_block must be at least 1 and growth at least 1")


def default_schedule(system: DiffusionSystem, loaded: Sequence[int]) -> StepSchedule:
    """First step ``0.2 h² / D`` with ``D`` the largest among the loaded compartments.

    Eight steps per block and a growth of 4 per block keep the time-stepping error of the
    released fraction below about 1e-3 (measured against the exact semi-discrete solution
    of a slab; docs/release-model.md).
    """
    d = float(np.max(system.diffusivities_mm2_s[list(loaded)]))
    return StepSchedule(first_step_s=0.2 * system.pitch_mm**2 / d)


def evolve(
    system: DiffusionSystem,
    loaded: Sequence[int],
    t_end_s: float,
    *,
    schedule: StepSchedule | None = None,
    solver: LinearSolver = cg_solver,
) -> Iterator[tuple[float, FloatArray]]:
    """Step the release of each loaded compartment's drug, yielding after every step.

    One drug per loaded compartment: its compartment starts at unit concentration, every
    other cell at 0 (drug-free compartments still conduct). All drugs step together, as
    columns of one right-hand side.

    Parameters
    ----------
    system : DiffusionSystem
        From :func:`assemble`.
    loaded : sequence of int
        The compartments that hold a drug, one drug each.
    t_end_s : float, s
        Step until the time reaches at least this (the last step may pass it), or until
        every drug is released to within 1e-12.
    schedule : StepSchedule, optional
        Step sizes; :func:`default_schedule` when None.
    solver : LinearSolver
        Prepares the solve of ``(C + βΔt K) x = b`` for each step size; called once per
        block. :func:`cg_solver` (default) or :func:`splu_solver`.

    Yields
    ------
    t_s : float, s
        Time at the end of the step (the first value is ``(0.0, zeros)``).
    released : (len(loaded),) float, 0..1
        Fraction of each drug released, ``1 − remaining / initial``.

    Raises
    ------
    ReleaseModelError
        The mass balance ``released (from the flux) + remaining = initial`` fails by more
        than ``tol.mass_balance_rel`` of the initial amount at some step.

    Notes
    -----
    TR-BDF2 is L-stable: any step size is stable, and the error is second order in the
    step. The error of the released fraction from time stepping alone, with the default
    schedule, stays below about 1e-3.
    """
    ks = [int(k) for k in loaded]
    if not ks:
        raise ValueError("evolve needs at least one loaded compartment")
    if any(k < 0 or k >= system.loads_mm3.shape[0] for k in ks):
        raise ValueError(f"loaded compartments {ks} out of range")
    sched = default_schedule(system, ks) if schedule is None else schedule
    cap = system.capacity_mm3
    stiffness = system.conductance
    g = system.sink_mm3_s
    c = (system.loads_mm3[ks] / cap).T.copy()  # (n, k): concentration, unit load
    initial = system.loads_mm3[ks].sum(axis=1)  # (k,)
    if np.any(initial <= 0.0):
        raise ReleaseModelError("a loaded compartment holds no cell at this pitch")
    released_flux = np.zeros(len(ks))
    flux = _column_dot(g[:, np.newaxis], c)
    t = 0.0
    yield 0.0, np.zeros(len(ks))
    dt = sched.first_step_s
    identity_c = sparse.diags(cap)
    c_old = c
    dt_old = 0.0
    while True:
        lhs = (identity_c + (_BETA * dt) * stiffness).tocsc()
        solve = solver(lhs)
        for _ in range(sched.steps_per_block):
            # Trapezoidal stage to t + γΔt; guess: linear extrapolation from the last step.
            slope = (c - c_old) / dt_old if dt_old > 0.0 else np.zeros_like(c)
            rhs = cap[:, np.newaxis] * c - (_BETA * dt) * (stiffness @ c)
            c_mid = solve(rhs, c + (_GAMMA * dt) * slope)
            flux_mid = _column_dot(g[:, np.newaxis], c_mid)
            # BDF2 stage to t + Δt; guess: extrapolation through c and c_mid.
            rhs = cap[:, np.newaxis] * (_STAGE_A * c_mid - _STAGE_B * c)
            c_old = c
            c = solve(rhs, c + (c_mid - c) / _GAMMA)
            dt_old = dt
            flux_new = _column_dot(g[:, np.newaxis], c)
            released_flux += (_STAGE_A * _BETA * dt) * (flux + flux_mid) + (_BETA * dt) * flux_new
            flux = flux_new
            t += dt
            remaining = _column_dot(cap[:, np.newaxis], c)
            imbalance = np.abs(released_flux + remaining - initial) / initial
            if np.any(imbalance > tol.mass_balance_rel):
                raise ReleaseModelError(
                    f"release model mass balance failed at t = {t:.4g} s: released + "
                    f"remaining misses the initial amount by {float(np.max(imbalance)):.2e} "
                    f"of it (tolerance {tol.mass_balance_rel:.0e})",
                    hint="try solver=splu_solver, or a coarser pitch",
                )
            released = 1.0 - remaining / initial
            yield t, released
            if t >= t_end_s or np.all(remaining < 1e-12 * initial):
                return
        dt *= sched.growth


# From meshes or a grid to release curves -------------------------------------------------

BLEND_START_CELLS = 1.75
"""The finite-volume result starts to count once the layer ``√(D t)`` spans this many cells."""
BLEND_END_CELLS = 2.5
"""... and alone from this many cells on; before, the short-time expansion carries the curve."""
SHORT_TIME_MAX_FEATURE = 0.25
"""The short-time expansion is trusted up to ``√(D t)`` = this fraction of the smallest
compartment's ``2 V / S`` (the thickness of a plate); on a grid too coarse for that, the
blend moves earlier."""


def _fraction_at(step_times_s: FloatArray, step_released: FloatArray,
                 times_s: FloatArray) -> FloatArray:
    """The solver's released fractions at other times: monotone cubic in ``√t``.

    Release goes as ``√t`` at first and the steps grow geometrically, so a piecewise
    cubic in ``√t`` (PCHIP: no overshoot, monotone data stay monotone) follows it closely
    between steps. Past the last step (every drug released) the last value holds.
    """
    x = np.sqrt(step_times_s)
    out = np.zeros((times_s.shape[0], step_released.shape[1]))
    xq = np.sqrt(np.minimum(times_s, step_times_s[-1]))
    for j in range(step_released.shape[1]):
        out[:, j] = PchipInterpolator(x, step_released[:, j])(xq)
    return out


def _smoothstep(x: FloatArray) -> FloatArray:
    y = np.clip(x, 0.0, 1.0)
    result: FloatArray = y * y * (3.0 - 2.0 * y)
    return result


def release_from_grid(
    grid: VoxelGrid,
    diffusivities_mm2_s: ArrayLike,
    loaded: Sequence[int],
    times_s: ArrayLike,
    *,
    short_time: ShortTimeGeometry | None = None,
    schedule: StepSchedule | None = None,
    solver: LinearSolver = cg_solver,
) -> FloatArray:
    """Fraction released of each loaded compartment's drug at the given times, from a grid.

    The finite-volume solution (:func:`evolve`), interpolated between its steps. With
    ``short_time`` given, the first moments come from the short-time expansion over the
    exact surface instead, blended into the finite-volume curve (smoothstep weight) while
    ``√(D t)`` grows from :data:`BLEND_START_CELLS` to :data:`BLEND_END_CELLS` cells.

    Parameters
    ----------
    grid : VoxelGrid
        The tablet on a grid (:func:`~doseprint.release.voxelize.voxelize`, possibly with
        voids added by :func:`~doseprint.release.voxelize.with_medium`).
    diffusivities_mm2_s : (n_compartments,) float, mm²/s
        ``D`` of each compartment.
    loaded : sequence of int
        Compartments holding a drug (one drug each).
    times_s : (m,) float, s
        Times at which to report, at least 0, any order.
    short_time : ShortTimeGeometry, optional
        Exposed areas and edges of the compartments
        (:func:`~doseprint.release.shorttime.short_time_geometry`). Leave it out when the
        grid has voids the meshes do not show; the first moments are then the grid's own,
        first-order in the pitch until the layer spans about two cells.
    schedule : StepSchedule, optional
        Time steps; :func:`default_schedule` when None.
    solver : LinearSolver
        :func:`cg_solver` (default) or :func:`splu_solver`.

    Returns
    -------
    released : (m, len(loaded)) float, 0..1
        Fraction released; column ``j`` is the drug of ``loaded[j]``.

    Raises
    ------
    ReleaseModelError
        The mass balance failed (see :func:`evolve`).
    ValueError
        A time is negative or not finite, or an input is out of range.
    """
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(times)) or np.any(times < 0.0):
        raise ValueError("release times must be finite and non-negative seconds")
    ks = [int(k) for k in loaded]
    system = assemble(grid, diffusivities_mm2_s)
    t_end = float(times.max()) if times.size else 0.0
    steps_t: list[float] = []
    steps_f: list[FloatArray] = []
    for t, f in evolve(system, ks, max(t_end, 1e-12), schedule=schedule, solver=solver):
        steps_t.append(t)
        steps_f.append(f)
    released = _fraction_at(np.asarray(steps_t), np.asarray(steps_f), times)
    if short_time is None:
        return np.clip(released, 0.0, 1.0)
    h = grid.pitch_mm
    feature = float(np.min(2.0 * short_time.volumes_mm3 / short_time.total_area_mm2))
    a_end = min(BLEND_END_CELLS * h, SHORT_TIME_MAX_FEATURE * feature)
    a_start = a_end * BLEND_START_CELLS / BLEND_END_CELLS
    for j, k in enumerate(ks):
        d = float(system.diffusivities_mm2_s[k])
        layer = np.sqrt(d * times)
        weight = _smoothstep((layer - a_start) / (a_end - a_start))
        early = short_time_released(short_time, k, times, d)
        released[:, j] = weight * released[:, j] + (1.0 - weight) * early
    return np.clip(released, 0.0, 1.0)


def solve_release(
    meshes: Sequence[trimesh.Trimesh],
    diffusivities_mm2_s: ArrayLike,
    loaded: Sequence[int],
    times_s: ArrayLike,
    *,
    pitch_mm: float | None = None,
    solver: LinearSolver = cg_solver,
) -> FloatArray:
    """Fraction released of each loaded compartment's drug, from the tablet's meshes.

    Voxelizes the meshes (:func:`~doseprint.release.voxelize.voxelize`, at
    :func:`~doseprint.release.voxelize.default_pitch_mm` unless ``pitch_mm`` is given),
    solves the diffusion over the grid (:func:`evolve`) and reports at ``times_s``, with
    the first moments from the short-time expansion (:func:`release_from_grid`).

    Parameters
    ----------
    meshes : sequence of trimesh.Trimesh
        The compartments of one tablet, in mm; watertight and disjoint (may share faces).
    diffusivities_mm2_s : (len(meshes),) float, mm²/s
        ``D`` of each compartment, drug-free ones included.
    loaded : sequence of int
        Indices of the compartments that hold a drug, one drug each.
    times_s : (m,) float, s
        Report times, at least 0.
    pitch_mm : float, optional
        Grid pitch; the default is chosen from the smallest compartment.
    solver : LinearSolver
        :func:`cg_solver` (default) or :func:`splu_solver`.

    Returns
    -------
    released : (m, len(loaded)) float, 0..1

    Raises
    ------
    GeometryError
        A mesh is not watertight or compartments overlap.
    ReleaseModelError
        The mass balance failed.
    """
    grid = voxelize(meshes, pitch_mm)
    geometry = short_time_geometry(meshes, grid)
    return release_from_grid(grid, diffusivities_mm2_s, loaded, times_s,
                             short_time=geometry, solver=solver)
