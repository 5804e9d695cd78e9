"""Cut a tablet mesh into layer regions (trimesh sections -> shapely polygons)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from doseprint.errors import SlicingError
from doseprint.tolerances import tol


@dataclass(frozen=True)
class LayerRegion:
    """The solid cross-section of one layer, cut at the layer's mid-height."""

    layer: int
    z_mm: float
    height_mm: float
    region: BaseGeometry


def layer_tops_mm(layers: int, first_mm: float, layer_mm: float) -> list[tuple[float, float]]:
    """(top z, thickness) of each layer: the first layer, then whole layers."""
    return [(first_mm + i * layer_mm, first_mm if i == 0 else layer_mm) for i in range(layers)]


def slice_mesh(
    mesh: trimesh.Trimesh, layers: int, first_mm: float, layer_mm: float
) -> tuple[LayerRegion, ...]:
    """Regions of ``mesh`` at the mid-height of each layer.

    A layer whose middle lies above the mesh top (height rounded up to whole layers) is
    cut just below the top, so the printed stack keeps the mesh's cross-section.

    Raises
    ------
    SlicingError
        A layer has no printable cross-section.
    """
    top = float(mesh.bounds[1][2])
    tops = layer_tops_mm(layers, first_mm, layer_mm)
    heights = [min(z - h / 2.0, top - 1e-3) for z, h in tops]
    sections = mesh.section_multiplane(plane_origin=[0.0, 0.0, 0.0],
                                       plane_normal=[0.0, 0.0, 1.0], heights=heights)
    out = []
    for i, ((z, h), section) in enumerate(zip(tops, sections, strict=True)):
        if section is None:
            raise SlicingError(f"layer {i} at z = {z:.3f} mm has no cross-section")
        to_3d = np.asarray(section.metadata["to_3D"])
        if not np.allclose(to_3d[:3, :3], np.eye(3)):
            raise SlicingError("section plane is not axis-aligned")
        # The section's 2D frame is the plane's: shift it back to tablet x, y.
        offset = to_3d[:2, 3]
        polys = [Polygon(np.asarray(p.exterior.coords) + offset,
                         [np.asarray(r.coords) + offset for r in p.interiors])
                 for p in section.polygons_full]
        region = unary_union(polys)
        if region.is_empty or region.area < tol.area_mm2:
            raise SlicingError(f"layer {i} at z = {z:.3f} mm has no cross-section")
        if not isinstance(region, Polygon | MultiPolygon):
            raise SlicingError(f"layer {i}: unexpected section geometry {region.geom_type}")
        out.append(LayerRegion(i, z, h, region))
    return tuple(out)
