"""A printable material, drug-loaded or drug-free (formulation.md)."""

from __future__ import annotations

from dataclasses import dataclass

from doseprint.typed import ReleaseMechanism

FORMULATION_SCHEMA = "doseprint.formulation/1"


@dataclass(frozen=True)
class Formulation:
    """One material. Units are in the names; ``density_g_cm3`` equals mg/mm3.

    A drug-free material has ``api == ""`` and ``drug_loading == 0``; its
    ``diffusivity_mm2_s`` is that of an API through it when used as a shell or barrier.
    """

    id: str
    api: str
    name: str
    drug_loading: float
    density_g_cm3: float
    diffusivity_mm2_s: float
    filament_diameter_mm: float
    nozzle_temp_c: float
    bed_temp_c: float
    max_temp_c: float
    release_mechanism: ReleaseMechanism
    sources: tuple[str, ...]
    max_dose_mg: float | None = None
    erosion_rate_mm_h: float = 0.0
    schema: str = FORMULATION_SCHEMA
    path: str = ""
    sha256: str = ""

    @property
    def drug_free(self) -> bool:
        return self.api == ""

    @property
    def api_mg_per_mm3(self) -> float:
        """API mass per mm3 of fully dense material (g/cm3 is numerically mg/mm3)."""
        return self.density_g_cm3 * self.drug_loading
