"""Toolpath values: roads (bead centre lines) per layer per compartment, and the bead model."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from doseprint.typed import FloatArray

RoadKind = Literal["perimeter", "infill"]


def bead_area_mm2(width_mm: float, height_mm: float) -> float:
    """Cross-section of a bead: a rectangle with semicircular sides (Slic3r's model),
    ``(w − h)·h + π·h²/4``."""
    return (width_mm - height_mm) * height_mm + math.pi * height_mm**2 / 4.0


def bead_spacing_mm(width_mm: float, height_mm: float) -> float:
    """Centre distance at which neighbouring beads of that cross-section tile a solid
    layer exactly: the bead area divided by the layer height."""
    return bead_area_mm2(width_mm, height_mm) / height_mm


@dataclass(frozen=True)
class Road:
    """One continuous extrusion: ``points_mm`` (n, 2) in tablet coordinates."""

    kind: RoadKind
    points_mm: FloatArray

    @property
    def length_mm(self) -> float:
        return float(np.sum(np.linalg.norm(np.diff(self.points_mm, axis=0), axis=1)))


@dataclass(frozen=True)
class LayerRoads:
    """The roads of one compartment in one layer; ``z_mm`` is the top of the layer."""

    layer: int
    z_mm: float
    height_mm: float
    width_mm: float
    roads: tuple[Road, ...]

    @property
    def bead_area_mm2(self) -> float:
        return bead_area_mm2(self.width_mm, self.height_mm)

    @property
    def volume_mm3(self) -> float:
        return sum(r.length_mm for r in self.roads) * self.bead_area_mm2


@dataclass(frozen=True)
class CompartmentToolpaths:
    """Everything one tool lays into one tablet, and the flow trim that makes it carry the
    dose: ``flow_multiplier = target_volume_mm3 / planned_volume_mm3``."""

    tablet: int
    api: str
    tool: int
    layers: tuple[LayerRoads, ...]
    target_volume_mm3: float

    @property
    def planned_volume_mm3(self) -> float:
        return sum(layer.volume_mm3 for layer in self.layers)

    @property
    def flow_multiplier(self) -> float:
        return self.target_volume_mm3 / self.planned_volume_mm3
