"""The values the design stage produces: a tablet's geometry and its compartments."""

from __future__ import annotations

import math
from dataclasses import dataclass

from doseprint.release.metrics import ReleaseJudgement
from doseprint.typed import FloatArray


@dataclass(frozen=True)
class Compartment:
    """One drug-loaded compartment: which API, in which material, from which tool.

    ``volume_mm3`` is the design volume of drug-loaded material (envelope × infill) that
    carries ``dose_mg``: ``volume × density × drug_loading = dose``.
    """

    api: str
    formulation: str
    tool: int
    dose_mg: float
    volume_mm3: float


@dataclass(frozen=True)
class TabletDesign:
    """A flat cylinder tablet, snapped to whole layers (first layer + n − 1 more)."""

    index: int
    diameter_mm: float
    height_mm: float
    layers: int
    infill: float
    compartments: tuple[Compartment, ...]
    shape: str = "cylinder"
    layout: str = "single"
    shell: str = "none"

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2.0

    @property
    def volume_mm3(self) -> float:
        """Envelope volume of the analytic cylinder."""
        return math.pi * self.radius_mm**2 * self.height_mm

    @property
    def longest_mm(self) -> float:
        return max(self.diameter_mm, self.height_mm)

    def dimensions_mm(self) -> dict[str, float]:
        return {"diameter": round(self.diameter_mm, 4), "height": round(self.height_mm, 4)}

    def to_json(self) -> dict[str, object]:
        """The ``design`` entry of a tablet in job.json."""
        return {
            "shape": self.shape,
            "layout": self.layout,
            "dimensions_mm": self.dimensions_mm(),
            "layers": self.layers,
            "infill": self.infill,
            "shell": self.shell,
            "volume_mm3": round(self.volume_mm3, 4),
        }


@dataclass(frozen=True)
class PredictedRelease:
    """One API's predicted release from one tablet and its judgement against the target."""

    api: str
    hours: FloatArray
    fraction: FloatArray
    judgement: ReleaseJudgement
    model: str


@dataclass(frozen=True)
class DesignedTablet:
    """A tablet design with the predicted release of each of its APIs."""

    design: TabletDesign
    releases: tuple[PredictedRelease, ...]

    def release(self, api: str) -> PredictedRelease:
        for r in self.releases:
            if r.api == api:
                return r
        raise KeyError(api)
