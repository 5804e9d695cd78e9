"""Predict each API's release from a tablet design: Crank's finite cylinder for the plain
designer, the 3D finite-volume model over the real geometry (and a sparse design's gaps)
for everything a job records."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import trimesh

from doseprint.geometry.layer_voids import LayerVoids
from doseprint.geometry.tablet import TabletDesign
from doseprint.models.formulation import Formulation
from doseprint.models.prescription import Active
from doseprint.release.analytical import cylinder_released
from doseprint.release.approx import equivalent_released
from doseprint.release.fv import solve_release
from doseprint.release.metrics import ReleaseJudgement, judge_release, release_time_grid_h
from doseprint.release.voids import solve_release_with_voids
from doseprint.typed import FloatArray

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class PredictedRelease:
    """One API's predicted release from one tablet and its judgement against the target;
    ``model`` names the model that predicted it."""

    api: str
    hours: FloatArray
    fraction: FloatArray
    judgement: ReleaseJudgement
    model: str


def predict_cylinder(
    active: Active,
    formulation: Formulation,
    radius_mm: float,
    height_mm: float,
) -> PredictedRelease:
    """Release of ``active`` from a solid cylinder made wholly of ``formulation``.

    Crank's finite-cylinder solution (fraction remaining = slab × infinite cylinder),
    with surface erosion combined as :func:`~doseprint.release.analytical.cylinder_released`
    describes; judged against the active's target on the grid of
    :func:`~doseprint.release.metrics.release_time_grid_h`.
    """
    hours = release_time_grid_h(active.release, t80_h=active.t80_h, profile=active.profile)
    fraction = cylinder_released(
        hours * SECONDS_PER_HOUR,
        radius_mm,
        height_mm,
        formulation.diffusivity_mm2_s,
        formulation.release_mechanism,
        formulation.erosion_rate_mm_h,
    )
    fraction = np.clip(fraction, 0.0, 1.0)
    judgement = judge_release(
        active.release, hours, fraction, t80_h=active.t80_h,
        profile=np.asarray(active.profile) if active.profile is not None else None,
    )
    return PredictedRelease(active.api, hours, fraction, judgement, "crank-finite-cylinder")


def predict_release(
    design: TabletDesign, actives: dict[str, Active], formulations: dict[str, Formulation]
) -> tuple[PredictedRelease, ...]:
    """Predict every compartment's release. This version designs single-compartment
    cylinders, whose compartment is the whole tablet."""
    out = []
    for c in design.compartments:
        out.append(predict_cylinder(actives[c.api], formulations[c.formulation],
                                    design.radius_mm, design.height_mm))
    return tuple(out)


MODEL_3D = "3d-finite-volume"


def predict_3d(
    design: TabletDesign,
    meshes: Sequence[trimesh.Trimesh],
    actives: Mapping[str, Active],
    formulations: Mapping[str, Formulation],
    *,
    pitch_mm: float | None = None,
    voids: Mapping[int, Sequence[LayerVoids]] | None = None,
    road_mm: float | None = None,
) -> tuple[PredictedRelease, ...]:
    """Every API's release from the design's real geometry, with the 3D diffusion model.

    Each compartment diffuses with its own formulation's diffusivity (a drug-free shell
    included); each API's compartment is loaded in turn (:func:`~doseprint.release.fv.
    solve_release`). Where a formulation also erodes, the surface-erosion estimate of
    :func:`~doseprint.release.approx.equivalent_released` removes what is left on top
    (fractions remaining multiply); a purely eroding formulation uses the estimate alone.

    Parameters
    ----------
    design : TabletDesign
    meshes : sequence of trimesh.Trimesh
        The compartments' meshes, in ``design.compartments`` order.
    actives : mapping of str to Active
        The prescription's actives by API (their targets).
    formulations : mapping of str to Formulation
    pitch_mm : float, optional
        Grid pitch of the solver (default: its own choice; with ``voids``, fine enough to
        resolve the gaps).
    voids : mapping of int to sequence of LayerVoids, optional
        A sparse design's gaps per compartment and layer, from its toolpaths
        (:meth:`~doseprint.slicer.toolpaths.CompartmentToolpaths.voids`): dissolution
        medium where they reach the outside (:mod:`doseprint.release.voids`).
    road_mm : float, optional
        With ``voids``: the roads' centre distance, which the grid must resolve too.
    """
    comps = design.compartments
    loaded = [k for k, c in enumerate(comps) if c.api]
    grids = {comps[k].api: release_time_grid_h(actives[comps[k].api].release,
                                               t80_h=actives[comps[k].api].t80_h,
                                               profile=actives[comps[k].api].profile)
             for k in loaded}
    all_h = np.unique(np.concatenate(list(grids.values())))
    diffusing = [k for k in loaded if "diffusion" in formulations[comps[k].formulation]
                 .release_mechanism]
    solved: dict[int, FloatArray] = {}
    if diffusing:
        d = [formulations[c.formulation].diffusivity_mm2_s for c in comps]
        if voids:
            fractions = solve_release_with_voids(list(meshes), d, diffusing,
                                                 all_h * SECONDS_PER_HOUR, voids,
                                                 pitch_mm=pitch_mm, road_mm=road_mm)
        else:
            fractions = solve_release(list(meshes), d, diffusing, all_h * SECONDS_PER_HOUR,
                                      pitch_mm=pitch_mm)
        solved = {k: fractions[:, j] for j, k in enumerate(diffusing)}
    out = []
    for k in loaded:
        c, f = comps[k], formulations[comps[k].formulation]
        active = actives[c.api]
        hours = grids[c.api]
        model = MODEL_3D
        fraction = (np.interp(hours, all_h, solved[k]) if k in solved
                    else np.zeros_like(hours))
        if "erosion" in f.release_mechanism and f.erosion_rate_mm_h > 0:
            mesh = meshes[k]
            area = _exposed_area(design, k, mesh)
            eroded = equivalent_released(hours * SECONDS_PER_HOUR, float(mesh.volume), area,
                                         f.diffusivity_mm2_s, "erosion", f.erosion_rate_mm_h)
            fraction = 1.0 - (1.0 - fraction) * (1.0 - eroded)
            model = (MODEL_3D + " with surface-erosion estimate" if k in solved
                     else "surface-erosion estimate")
        fraction = np.clip(fraction, 0.0, 1.0)
        judgement = judge_release(
            active.release, hours, fraction, t80_h=active.t80_h,
            profile=np.asarray(active.profile) if active.profile is not None else None)
        out.append(PredictedRelease(c.api, hours, fraction, judgement, model))
    return tuple(out)


def _exposed_area(design: TabletDesign, k: int, mesh: trimesh.Trimesh) -> float:
    """Area of compartment ``k`` open to the medium (its whole surface when enclosed)."""
    if design.geometry is not None:
        area = float(design.geometry.compartments[k].exposed_area_mm2)
        if area > 1e-9:
            return area
    return float(mesh.area)
