"""The gaps a sparse layer leaves: what the slicer finds and the release model fills with
dissolution medium."""

from __future__ import annotations

from typing import NamedTuple

from shapely.geometry.base import BaseGeometry


class LayerVoids(NamedTuple):
    """The voids of one layer between ``z0_mm`` and ``z1_mm`` (tablet coordinates): the
    part of a compartment's cross-section that no bead covers."""

    layer: int
    z0_mm: float
    z1_mm: float
    voids: BaseGeometry
