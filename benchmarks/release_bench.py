"""Release model benchmark: speed and accuracy of the voxel finite-volume solver.

Run with ``python benchmarks/release_bench.py`` (add ``--quick`` to skip the solver and
convergence tables). Prints markdown tables: per case the solid cells, time steps,
wall-clock seconds (best of three, voxelization included) and the largest difference from
Crank's series over 0–24 h; then the direct and iterative linear solvers side by side;
then the error of the finite volumes alone as the grid refines.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable

import numpy as np
import trimesh

from doseprint.release import fv
from doseprint.release.analytical import finite_cylinder_released, sphere_released
from doseprint.release.voxelize import VoxelGrid, default_pitch_mm, voxelize
from doseprint.typed import FloatArray

DAY_S = 86400.0
TIMES_S = np.concatenate([[0.0], np.geomspace(1.0, DAY_S, 400)])
Reference = Callable[[FloatArray, float], FloatArray]


def cylinder(radius_mm: float, height_mm: float, sections: int = 256) -> trimesh.Trimesh:
    scale = math.sqrt(2 * math.pi / (sections * math.sin(2 * math.pi / sections)))
    return trimesh.creation.cylinder(radius=radius_mm * scale, height=height_mm,
                                     sections=sections)


def sphere(radius_mm: float) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=radius_mm)
    mesh.apply_scale((4.0 / 3.0 * math.pi * radius_mm**3 / mesh.volume) ** (1.0 / 3.0))
    return mesh


CASES: list[tuple[str, trimesh.Trimesh, Reference]] = [
    ("cylinder 10 × 4 mm", cylinder(5.0, 4.0),
     lambda t, d: finite_cylinder_released(t, 5.0, 4.0, d)),
    ("disc 12 × 2 mm", cylinder(6.0, 2.0),
     lambda t, d: finite_cylinder_released(t, 6.0, 2.0, d)),
    ("sphere Ø 8 mm", sphere(4.0), lambda t, d: sphere_released(t, 4.0, d)),
    ("sphere R 8 mm", sphere(8.0), lambda t, d: sphere_released(t, 8.0, d)),
]


def best_of(n: int, fn: Callable[[], FloatArray]) -> tuple[float, FloatArray]:
    best = math.inf
    result = np.zeros(0)
    for _ in range(n):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def steps_and_cells(mesh: trimesh.Trimesh, d: float, pitch: float | None = None) -> tuple[
        int, int]:
    system = fv.assemble(voxelize([mesh], pitch), [d])
    steps = sum(1 for _ in fv.evolve(system, [0], DAY_S)) - 1
    return system.n_cells, steps


def accuracy_table() -> None:
    print("\n| case | D mm²/s | pitch mm | cells | steps | s (best of 3) | max error 0–24 h |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, mesh, reference in CASES:
        for d in (6e-5, 6e-4):
            seconds, released = best_of(
                3, lambda mesh=mesh, d=d: fv.solve_release([mesh], [d], [0], TIMES_S)[:, 0])
            error = float(np.max(np.abs(released - reference(TIMES_S, d))))
            cells, steps = steps_and_cells(mesh, d)
            print(f"| {name} | {d:.0e} | {default_pitch_mm([mesh]):.3f} | {cells} | {steps} "
                  f"| {seconds:.2f} | {error:.4f} |")


def solver_table() -> None:
    print("\n| case | pitch mm | cells | solver | s (best of 3) |")
    print("| --- | --- | --- | --- | --- |")
    for pitch in (0.25, default_pitch_mm([CASES[0][1]])):
        system = fv.assemble(voxelize([CASES[0][1]], pitch), [6e-5])
        for label, solver in (("splu (MMD on AᵀA+A)", fv.splu_solver),
                              ("Jacobi-PCG", fv.cg_solver)):
            seconds, _ = best_of(3, lambda solver=solver, system=system: np.array(
                [f for _, f in fv.evolve(system, [0], DAY_S, solver=solver)]))
            print(f"| cylinder 10 × 4 | {pitch:.3f} | {system.n_cells} | {label} "
                  f"| {seconds:.2f} |")


def _staircase(grid: VoxelGrid) -> VoxelGrid:
    crossing = tuple(np.where(np.isnan(c), np.nan, 0.5) for c in grid.crossing)
    fractions = np.stack([(grid.labels == k).astype(np.float64)
                          for k in range(grid.n_compartments)])
    return VoxelGrid(grid.origin_mm.copy(), grid.pitch_mm, grid.labels.copy(),
                     (crossing[0], crossing[1], crossing[2]), fractions,
                     grid.volumes_mm3.copy())


def convergence_table() -> None:
    d = 6e-5
    times = np.linspace(1.0 / d, DAY_S, 200)  # √(Dt) ≥ 1 mm: the layer is resolved
    series = [
        ("sphere Ø 8", CASES[2][1], CASES[2][2], [0.5, 0.4, 0.32, 0.25, 0.2]),
        ("cylinder 10 × 4, H/h whole", CASES[0][1], CASES[0][2],
         [4 / 8, 4 / 10, 4 / 12, 4 / 16, 4 / 20]),
        ("cylinder 10 × 4, H/h + ½", CASES[0][1], CASES[0][2],
         [4 / 8.5, 4 / 10.5, 4 / 12.5, 4 / 16.5]),
    ]
    print("\nFinite volumes alone (no short-time start), max error for √(Dt) ≥ 1 mm, "
          "D = 6e-5 mm²/s:\n")
    print("| body | sink | errors at pitch (mm) | observed order |")
    print("| --- | --- | --- | --- |")
    for name, mesh, reference, pitches in series:
        for label, transform in (("fitted", lambda g: g), ("staircase", _staircase)):
            errors = []
            for h in pitches:
                grid = transform(voxelize([mesh], h))
                released = fv.release_from_grid(grid, [d], [0], times)[:, 0]
                errors.append(float(np.max(np.abs(released - reference(times, d)))))
            order = float(np.polyfit(np.log(pitches), np.log(errors), 1)[0])
            cells = ", ".join(f"{h:.3f}: {e:.4f}" for h, e in zip(pitches, errors, strict=True))
            print(f"| {name} | {label} | {cells} | {order:.2f} |")


def main() -> None:
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    accuracy_table()
    if "--quick" not in sys.argv:
        solver_table()
        convergence_table()


if __name__ == "__main__":
    main()
