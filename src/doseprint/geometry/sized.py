"""A sized tablet: its compartments, their analytic figures and their meshes.

Meshes are built with manifold3d on first access and kept, so sizing many candidate
designs costs no meshing; every mesh is checked against its analytic volume when built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import manifold3d
import trimesh

from doseprint.errors import GeometryError
from doseprint.geometry.layouts import DimensionValue
from doseprint.geometry.solids import (
    Solid,
    area_from_mm2,
    build_manifold,
    build_tagged,
    to_trimesh,
)
from doseprint.geometry.spec import SizeLimits, TabletSpec
from doseprint.typed import CompartmentRole

__all__ = [
    "MESH_VOLUME_REL",
    "CompartmentGeometry",
    "MeshCache",
    "TabletGeometry",
]

MESH_VOLUME_REL = 1e-3
"""Largest relative difference between a compartment's mesh and analytic volumes: the
issue's 0.1 %. Polygons carry exact areas, so real meshes land near 1e-5."""


# The sized geometry


class MeshCache:
    """Compartment meshes of one tablet, built on first use and kept (manifold3d)."""

    def __init__(self, solids: tuple[Solid, ...], volumes_mm3: tuple[float, ...],
                 envelope: Solid) -> None:
        self._solids = solids
        self._volumes = volumes_mm3
        self._envelope = envelope

    @cached_property
    def _tagged(self) -> tuple[tuple[Any, frozenset[int]], ...]:
        out = []
        for i, (solid, volume) in enumerate(zip(self._solids, self._volumes, strict=True)):
            m, medium = build_tagged(solid)
            if m.status() != manifold3d.Error.NoError or m.is_empty():
                raise GeometryError(f"compartment {i}: the mesh boolean failed "
                                    f"({m.status()})")
            if abs(m.volume() / volume - 1.0) > MESH_VOLUME_REL:
                raise GeometryError(f"compartment {i}: mesh volume {m.volume():.4f} mm3 "
                                    f"misses the analytic {volume:.4f} mm3 by more than "
                                    f"{MESH_VOLUME_REL:.1%}")
            out.append((m, medium))
        return tuple(out)

    @cached_property
    def manifolds(self) -> tuple[Any, ...]:
        return tuple(m for m, _ in self._tagged)

    @cached_property
    def meshes(self) -> tuple[trimesh.Trimesh, ...]:
        return tuple(to_trimesh(m) for m in self.manifolds)

    @cached_property
    def exposed_mm2(self) -> tuple[float, ...]:
        """Area of each compartment's surface that faces the medium: the triangles that
        come from the tablet's envelope (outside and ring hole) or from a channel."""
        return tuple(area_from_mm2(m, medium) for m, medium in self._tagged)

    @cached_property
    def outside_mm2(self) -> float:
        """Surface area of the whole tablet, meshed on its own (envelope minus channels)."""
        return float(build_manifold(self._envelope).surface_area())


@dataclass(frozen=True)
class CompartmentGeometry:
    """One compartment of a sized tablet: its solid, figures and mesh (what it carries is
    the design's :class:`~doseprint.geometry.tablet.Compartment`).

    Attributes
    ----------
    role : {"api", "shell"}
        Drug-loaded, or the drug-free shell.
    index : int
        Which volume V_i the compartment carries; -1 for the shell.
    volume_mm3 : float, mm³
        Analytic volume (channels removed).
    z_range_mm : (2,) float, mm
        Lowest and highest z of the compartment.
    min_thickness_mm : float, mm
        Its thinnest measured extent: layer or band height, walls, segment or ring width,
        and the wall left next to any channel through it (for a pie segment, whose apex is
        always sharp, the diameter of the largest disc it holds).
    solid : Solid
        The constructive description the mesh and sections come from.
    """

    role: CompartmentRole
    index: int
    volume_mm3: float
    z_range_mm: tuple[float, float]
    min_thickness_mm: float
    solid: Solid = field(repr=False)
    position: int = field(repr=False)
    meshes_: MeshCache = field(repr=False, compare=False)

    @property
    def mesh(self) -> trimesh.Trimesh:
        """Watertight mesh in tablet coordinates (built on first access, then kept)."""
        return self.meshes_.meshes[self.position]

    @property
    def exposed_area_mm2(self) -> float:
        """Area in contact with the medium: on the tablet's outside, the ring hole or the
        channels, not shared with another compartment. From the mesh: the area of its
        triangles that manifold3d traces back to the tablet's envelope or a channel."""
        return self.meshes_.exposed_mm2[self.position]

    @property
    def label(self) -> str:
        return "the shell" if self.role == "shell" else f"compartment {self.index}"


@dataclass(frozen=True)
class TabletGeometry:
    """A tablet sized to its compartment volumes.

    Attributes
    ----------
    spec : TabletSpec
    limits : SizeLimits
    volumes_mm3 : tuple of float, mm³
        The volumes asked for, compartment order.
    compartments : tuple of CompartmentGeometry
        Drug-loaded compartments in index order, then the shell if any.
    envelope_volume_mm3 : float, mm³
        Volume of the whole tablet (channels and ring hole excluded): the sum of the
        compartments' volumes.
    longest_mm : float, mm
        Largest of length, width and height.
    height_mm : float, mm
        Total height, domes included.
    footprint_radius_mm : float, mm
        Half the largest XY extent, for placing tablets on a plate.
    channel_xy_mm : tuple of (x, y), mm
        Channel centres.
    """

    spec: TabletSpec
    limits: SizeLimits
    volumes_mm3: tuple[float, ...]
    compartments: tuple[CompartmentGeometry, ...]
    envelope_volume_mm3: float
    longest_mm: float
    height_mm: float
    footprint_radius_mm: float
    channel_xy_mm: tuple[tuple[float, float], ...]
    dimensions: tuple[tuple[str, DimensionValue], ...] = field(repr=False)

    @property
    def dimensions_mm(self) -> dict[str, float | list[float]]:
        """Named dimensions: the shape's (``diameter``, ``length``, ``width``,
        ``inner_diameter``, ``height``), ``dome``/``band_height``, ``shell``,
        ``channel_diameter``, and the layout's (``layer_heights``, ``interfaces_z``,
        ``core_*``, ``segment_angles_deg``, ``segment_cuts_x``, ``ring_diameters`` or
        ``ring_scales``); mm unless the name says otherwise."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.dimensions}

    @property
    def api_compartments(self) -> tuple[CompartmentGeometry, ...]:
        """The drug-loaded compartments, in index order."""
        return tuple(c for c in self.compartments if c.role == "api")

    @property
    def meshes(self) -> tuple[trimesh.Trimesh, ...]:
        """Every compartment's mesh, in ``compartments`` order."""
        return tuple(c.mesh for c in self.compartments)

    @property
    def outside_area_mm2(self) -> float:
        """Surface area of the whole tablet in contact with the medium (outside, ring hole,
        channels), from a mesh of the envelope alone; the exposed areas add up to it."""
        return self.compartments[0].meshes_.outside_mm2

    @property
    def manifolds(self) -> tuple[Any, ...]:
        """Every compartment as a ``manifold3d.Manifold``, in ``compartments`` order (for
        further booleans, slicing or export)."""
        return self.compartments[0].meshes_.manifolds

    def to_json(self) -> dict[str, object]:
        """The ``design`` entry of a tablet in job.json (lengths in mm, 4 decimals)."""

        def r(v: DimensionValue) -> float | list[float]:
            return [round(x, 4) for x in v] if isinstance(v, tuple) else round(v, 4)

        return {
            "shape": self.spec.shape,
            "layout": self.spec.layout,
            "dimensions_mm": {k: r(v) for k, v in self.dimensions},
            "dome_mm": self.spec.dome_mm,
            "dome_faces": self.spec.dome_faces if self.spec.dome_mm > 0 else "none",
            "shell_mm": self.spec.shell_mm,
            "channels": {
                "count": self.spec.channels,
                "diameter_mm": self.spec.channel_mm if self.spec.channels else 0.0,
                "positions_mm": [[round(x, 4), round(y, 4)] for x, y in self.channel_xy_mm],
            },
            "compartments": [
                {"role": c.role, "index": c.index, "volume_mm3": round(c.volume_mm3, 4),
                 "z_range_mm": [round(z, 4) for z in c.z_range_mm],
                 "min_thickness_mm": round(c.min_thickness_mm, 4)}
                for c in self.compartments
            ],
            "envelope_volume_mm3": round(self.envelope_volume_mm3, 4),
            "longest_mm": round(self.longest_mm, 4),
        }
