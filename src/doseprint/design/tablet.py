"""The values the design stage produces: a tablet's geometry and its compartments."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from doseprint.release.metrics import ReleaseJudgement
from doseprint.typed import FloatArray


@dataclass(frozen=True)
class Compartment:
    """One compartment: which API (``""`` for a drug-free shell), in which material,
    from which tool.

    ``volume_mm3`` is the design volume of material (envelope × infill): for a
    drug-loaded compartment the volume that carries ``dose_mg``,
    ``volume × density × drug_loading = dose``.
    """

    api: str
    formulation: str
    tool: int
    dose_mg: float
    volume_mm3: float

    @property
    def role(self) -> str:
        return "api" if self.api else "shell"

    @property
    def name(self) -> str:
        return self.api or "shell"


@dataclass(frozen=True)
class TabletDesign:
    """One tablet's geometry and compartments.

    ``dimensions`` are the named dimensions of job.json's ``dimensions_mm``; ``geometry``
    is the sized :class:`~doseprint.geometry.sized.TabletGeometry` of a general design, or
    None for a plain cylinder (built by :func:`doseprint.geometry.tablet.build_mesh`).
    ``layers`` counts the whole layers the tablet is printed in.
    """

    index: int
    shape: str
    layout: str
    dimensions: dict[str, Any]
    height_mm: float
    footprint_mm: float
    longest_mm: float
    layers: int
    infill: float
    compartments: tuple[Compartment, ...]
    shell: str = "none"
    volume_mm3: float = 0.0
    geometry: Any = field(default=None, compare=False, repr=False)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def cylinder(
        cls, index: int, diameter_mm: float, height_mm: float, layers: int, infill: float,
        compartments: tuple[Compartment, ...],
    ) -> TabletDesign:
        return cls(
            index=index, shape="cylinder", layout="single",
            dimensions={"diameter": diameter_mm, "height": height_mm},
            height_mm=height_mm, footprint_mm=diameter_mm,
            longest_mm=max(diameter_mm, height_mm), layers=layers, infill=infill,
            compartments=compartments,
            volume_mm3=math.pi * (diameter_mm / 2.0) ** 2 * height_mm,
        )

    @property
    def diameter_mm(self) -> float:
        """Diameter of a cylinder design (the footprint of any other)."""
        return float(self.dimensions.get("diameter", self.footprint_mm))

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2.0

    def dimensions_mm(self) -> dict[str, Any]:
        return {k: _rounded(v) for k, v in self.dimensions.items()}

    def describe(self) -> str:
        """Short human text: ``8.71 × 5.60 mm cylinder`` or ``caplet 18.2 × 8.3 × 5.2 mm``."""
        d = self.dimensions
        if self.shape == "cylinder" or "diameter" in d:
            size = f"{d['diameter']:.2f} × {self.height_mm:.2f} mm"
        elif "length" in d:
            size = f"{d['length']:.2f} × {d['width']:.2f} × {self.height_mm:.2f} mm"
        else:
            size = f"{self.footprint_mm:.2f} × {self.height_mm:.2f} mm"
        layout = "" if self.layout == "single" else f" {self.layout}"
        return f"{self.shape}{layout} {size}"

    def to_json(self) -> dict[str, object]:
        """The ``design`` entry of a tablet in job.json."""
        out: dict[str, object] = {
            "shape": self.shape,
            "layout": self.layout,
            "dimensions_mm": self.dimensions_mm(),
            "layers": self.layers,
            "infill": self.infill,
            "shell": self.shell,
            "volume_mm3": round(self.volume_mm3, 4),
            "longest_mm": round(self.longest_mm, 4),
            "summary": self.describe(),
        }
        out.update(self.extra)
        return out


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


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
