"""Tablet meshes: a design turned into watertight trimesh solids, one per compartment."""

from __future__ import annotations

import math
from dataclasses import dataclass

import trimesh

from doseprint.design.tablet import TabletDesign
from doseprint.errors import GeometryError

CIRCLE_SECTIONS = 128
"""Facets around a circle: the chord error at 22 mm is 1.7 µm, far below a bead width."""


def polygon_radius_mm(radius_mm: float, sections: int = CIRCLE_SECTIONS) -> float:
    """Circumradius of a regular ``sections``-gon with the area of a circle of ``radius_mm``.

    A faceted cylinder inscribed in the circle would lose 0.04 % of its volume at 128
    facets; scaling the polygon keeps mesh volume and design volume equal.
    """
    return radius_mm * math.sqrt(2 * math.pi / (sections * math.sin(2 * math.pi / sections)))


@dataclass(frozen=True)
class TabletMesh:
    """One tablet's compartments as meshes in tablet coordinates (base at z = 0, axis at
    x = y = 0). ``names[i]`` labels ``meshes[i]`` (the compartment's API)."""

    index: int
    names: tuple[str, ...]
    meshes: tuple[trimesh.Trimesh, ...]

    @property
    def volume_mm3(self) -> float:
        return float(sum(m.volume for m in self.meshes))


def build_mesh(design: TabletDesign) -> TabletMesh:
    """Mesh a design: a general one from its sized geometry, a plain cylinder here.

    Raises
    ------
    GeometryError
        The mesh is not watertight or its volume misses the design's by over 0.1 %.
    """
    names = tuple(c.name for c in design.compartments)
    if design.geometry is not None:
        return TabletMesh(design.index, names, tuple(design.geometry.meshes))
    radius = polygon_radius_mm(design.radius_mm)
    mesh = trimesh.creation.cylinder(radius=radius, height=design.height_mm,
                                     sections=CIRCLE_SECTIONS)
    mesh.apply_translation([0.0, 0.0, design.height_mm / 2.0])
    if not mesh.is_watertight or not mesh.is_winding_consistent:
        raise GeometryError(f"tablet {design.index}: the cylinder mesh is not watertight")
    if abs(mesh.volume / design.volume_mm3 - 1.0) > 1e-3:
        raise GeometryError(f"tablet {design.index}: mesh volume {mesh.volume:.3f} mm3 misses "
                            f"the design volume {design.volume_mm3:.3f} mm3")
    return TabletMesh(design.index, names, (mesh,))
