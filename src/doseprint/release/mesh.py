"""The release of any watertight mesh made wholly of one formulation
(``doseprint release --mesh``), over the 3D finite-volume model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doseprint.errors import InputError
from doseprint.geometry.mesh_file import read_watertight_mesh
from doseprint.models.formulation import Formulation
from doseprint.release.fv import solve_release
from doseprint.release.metrics import mean_dissolution_time_h, t50_h, t80_h
from doseprint.release.predict import MODEL_3D
from doseprint.typed import FloatArray


@dataclass(frozen=True)
class MeshRelease:
    """A mesh's predicted release: the fraction released over ``hours`` and its figures."""

    api: str
    formulation: str
    volume_mm3: float
    area_mm2: float
    hours: FloatArray
    fraction: FloatArray
    t50_h: float | None
    t80_h: float | None
    mdt_h: float | None
    model: str = MODEL_3D

    @property
    def released_at_end(self) -> float:
        return float(self.fraction[-1])


def predict_mesh_release(formulation: Formulation, mesh_path: Path, hours: float) -> MeshRelease:
    """Predict how ``formulation``'s API leaves the solid in ``mesh_path`` over ``hours``.

    Raises
    ------
    InputError
        The formulation carries no drug or releases by erosion alone (the model is
        diffusive), or the file is not a watertight mesh
        (:func:`~doseprint.geometry.mesh_file.read_watertight_mesh`).
    """
    if formulation.drug_free:
        raise InputError(f"{formulation.id} is drug-free: nothing to release",
                         file="command line", key="--formulation")
    mesh = read_watertight_mesh(mesh_path)
    grid_h = np.concatenate([np.arange(0.0, 2.0, 0.05), np.arange(2.0, hours + 1e-9, 0.25)])
    if "diffusion" not in formulation.release_mechanism:
        raise InputError(f"{formulation.id} releases by erosion alone; the mesh model is "
                         "diffusive", file="command line", key="--formulation")
    fraction = solve_release([mesh], [formulation.diffusivity_mm2_s], [0],
                             grid_h * 3600.0)[:, 0]
    return MeshRelease(
        api=formulation.api, formulation=formulation.id, volume_mm3=float(mesh.volume),
        area_mm2=float(mesh.area), hours=grid_h, fraction=fraction,
        t50_h=t50_h(grid_h, fraction), t80_h=t80_h(grid_h, fraction),
        mdt_h=mean_dissolution_time_h(grid_h, fraction))


__all__ = ["MeshRelease", "predict_mesh_release"]
