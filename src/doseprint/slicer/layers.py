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
    mesh: trimesh.Trimesh,
    tops: list[tuple[float, float]],
    *,
    tablet_top_mm: float | None = None,
) -> tuple[LayerRegion, ...]:
    """Regions of one compartment's ``mesh`` in every layer it owns.

    A layer belongs to the compartment whose z-range holds the layer's mid-height
    (half-open ``[z0, z1)``, so stacked compartments never share a layer). The tablet's
    topmost compartment also keeps a layer whose middle lies on or just above its top
    (height rounded to whole layers), cut just below the top.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        One compartment, in tablet coordinates (base of the tablet at z = 0).
    tops : list of (top_mm, thickness_mm)
        Every layer of the tablet, from :func:`layer_tops_mm`.
    tablet_top_mm : float, optional
        Height of the whole tablet; default the mesh's own top.

    Raises
    ------
    SlicingError
        A layer the compartment owns has no printable cross-section.
    """
    z0, z1 = float(mesh.bounds[0][2]), float(mesh.bounds[1][2])
    top = z1 if tablet_top_mm is None else tablet_top_mm
    owned = []
    for i, (z, h) in enumerate(tops):
        mid = z - h / 2.0
        if z0 - 1e-9 <= mid < z1 - 1e-9:
            owned.append((i, z, h, mid))
        elif z1 >= top - 1e-9 and z1 - 1e-9 <= mid <= z1 + h / 2.0:
            owned.append((i, z, h, z1 - 1e-3))
    if not owned:
        return ()
    sections = mesh.section_multiplane(plane_origin=[0.0, 0.0, 0.0],
                                       plane_normal=[0.0, 0.0, 1.0],
                                       heights=[o[3] for o in owned])
    out = []
    for (i, z, h, _), section in zip(owned, sections, strict=True):
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
