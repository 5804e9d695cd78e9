"""Predict each API's release from a tablet design (analytical finite cylinder for now)."""

from __future__ import annotations

import numpy as np

from doseprint.design.tablet import PredictedRelease, TabletDesign
from doseprint.models.formulation import Formulation
from doseprint.models.prescription import Active
from doseprint.release.analytical import cylinder_released
from doseprint.release.metrics import judge_release, release_time_grid_h

SECONDS_PER_HOUR = 3600.0


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
