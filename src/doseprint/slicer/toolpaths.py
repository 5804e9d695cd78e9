"""Toolpath values: roads (bead centre lines) per layer per compartment."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from doseprint.geometry.layer_voids import LayerVoids
from doseprint.models.bead import bead_area_mm2, bead_spacing_mm
from doseprint.tolerances import tol
from doseprint.typed import FloatArray

RoadKind = Literal["perimeter", "infill"]


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
    """The roads of one compartment in one layer; ``z_mm`` is the top of the layer.

    ``region`` is the layer's cross-section of the compartment that the roads fill (None
    when the roads were made without one); ``density`` the material fraction asked of the
    infill roads (1 for a solid layer).
    """

    layer: int
    z_mm: float
    height_mm: float
    width_mm: float
    roads: tuple[Road, ...]
    region: BaseGeometry | None = field(default=None, compare=False, repr=False)
    density: float = 1.0

    @property
    def bead_area_mm2(self) -> float:
        return bead_area_mm2(self.width_mm, self.height_mm)

    @property
    def volume_mm3(self) -> float:
        return self.length_mm * self.bead_area_mm2

    @cached_property
    def length_mm(self) -> float:
        """Total length of the roads (measured once: the renderer reads the flow trim of
        every compartment in every layer)."""
        if not self.roads:
            return 0.0
        points = [r.points_mm for r in self.roads]
        steps = np.diff(np.concatenate(points), axis=0)
        lengths = np.hypot(steps[:, 0], steps[:, 1])
        # Drop the joins between one road's end and the next one's start.
        ends = np.cumsum([len(p) for p in points])[:-1] - 1
        lengths[ends] = 0.0
        return float(lengths.sum())

    def footprint(self) -> BaseGeometry:
        """The union of the beads' footprints: each road's centre line grown by half a bead
        spacing either side, flat at its ends.

        That is the width a bead covers in the volume model (area × height = volume), so
        where no two beads overlap, ``footprint().area × height_mm`` is ``volume_mm3``.
        """
        half = bead_spacing_mm(self.width_mm, self.height_mm) / 2.0
        lines = shapely.MultiLineString([r.points_mm for r in self.roads
                                         if len(r.points_mm) > 1])
        # One buffer of all the centre lines at once: neighbouring beads touch exactly, and
        # a union of separately buffered strips can drop some of them in floating point.
        return lines.buffer(half, cap_style="flat", join_style="mitre")

    def voids(self, min_width_mm: float = 0.0) -> BaseGeometry:
        """The part of the layer's region that no bead covers: the gaps of a sparse infill.

        Parameters
        ----------
        min_width_mm : float
            Drop gaps narrower than this (a morphological opening): a solid layer leaves
            slivers between the beads' idealised footprints that are not real voids.

        Raises
        ------
        ValueError
            The roads were made without their region.
        """
        if self.region is None:
            raise ValueError(f"layer {self.layer} was planned without its region")
        gaps = shapely.difference(self.region, self.footprint(), grid_size=tol.merge_mm)
        if min_width_mm > 0.0:
            gaps = gaps.buffer(-min_width_mm / 2.0, join_style="mitre").buffer(
                min_width_mm / 2.0, join_style="mitre").intersection(self.region)
        return gaps


@dataclass(frozen=True)
class CompartmentToolpaths:
    """Everything one tool lays into one tablet, and the flow trim that makes it carry the
    dose: ``flow_multiplier = target_volume_mm3 / planned_volume_mm3``."""

    tablet: int
    api: str
    tool: int
    layers: tuple[LayerRoads, ...]
    target_volume_mm3: float

    @cached_property
    def planned_volume_mm3(self) -> float:
        return sum(layer.volume_mm3 for layer in self.layers)

    @property
    def flow_multiplier(self) -> float:
        return self.target_volume_mm3 / self.planned_volume_mm3

    def voids(self, min_width_mm: float = 0.0) -> tuple[LayerVoids, ...]:
        """Per layer, the part of the compartment's region its beads leave empty (see
        :meth:`LayerRoads.voids`): where a release model puts dissolution medium."""
        return tuple(LayerVoids(lr.layer, lr.z_mm - lr.height_mm, lr.z_mm,
                                lr.voids(min_width_mm)) for lr in self.layers)
