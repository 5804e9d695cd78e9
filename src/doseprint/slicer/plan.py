"""Plan a tablet's toolpaths: slice, lay perimeters and infill at the design's material
fraction, trim flow to the dose."""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from doseprint.errors import SlicingError
from doseprint.geometry.tablet import TabletDesign, TabletMesh
from doseprint.models.bead import BEAD_WIDTH_FACTOR, bead_area_mm2
from doseprint.models.formulation import Formulation
from doseprint.slicer.fill import (
    concentric,
    gyroid,
    gyroid_z_shift_mm,
    perimeters,
    rectilinear,
)
from doseprint.slicer.layers import LayerRegion, layer_tops_mm, slice_mesh
from doseprint.slicer.toolpaths import CompartmentToolpaths, LayerRoads, Road
from doseprint.tolerances import tol
from doseprint.typed import INFILL_PATTERNS, InfillPattern

DENSITY_PASSES = 3
"""Times the sparse layers are laid at most: once at the density the areas call for, then
again scaled by how far the laid roads missed the material wanted (the round number of
lines and their ends at the edge). Two corrections bring a compartment within a few
tenths of a percent; the flow trim closes the rest."""

DENSITY_CLOSE_REL = 0.002
"""Stop correcting once the sparse roads carry the material wanted to this fraction."""


@dataclass(frozen=True)
class SliceSettings:
    """How to slice: layer heights, bead width, perimeters and infill.

    ``perimeters`` loops run round every layer; inside them the infill follows
    ``pattern`` (``"rectilinear"``, ``"concentric"`` or ``"gyroid"``). A design with infill
    below 1 gets ``solid_bottom_layers`` and ``solid_top_layers`` of each compartment
    filled solid and the layers between sparse, at the density that makes the
    compartment's material fraction the design's infill. The defaults (2 perimeters,
    rectilinear, no solid layers) print a solid design exactly as before sparse infill.
    """

    first_layer_mm: float
    layer_mm: float
    width_mm: float
    perimeters: int = 2
    pattern: InfillPattern = "rectilinear"
    solid_bottom_layers: int = 0
    solid_top_layers: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in INFILL_PATTERNS:
            raise ValueError(f"pattern is {self.pattern!r}; choose one of "
                             f"{', '.join(INFILL_PATTERNS)}")
        for key in ("perimeters", "solid_bottom_layers", "solid_top_layers"):
            if getattr(self, key) < 0:
                raise ValueError(f"{key} must be 0 or more, got {getattr(self, key)}")

    @classmethod
    def for_nozzle(cls, nozzle_mm: float, first_layer_mm: float, layer_mm: float) -> SliceSettings:
        """Settings for a nozzle: beads :data:`~doseprint.models.bead.BEAD_WIDTH_FACTOR`
        times its diameter wide."""
        return cls(first_layer_mm, layer_mm, round(BEAD_WIDTH_FACTOR * nozzle_mm, 4))


def plan_tablet(
    mesh: TabletMesh,
    design: TabletDesign,
    formulations: dict[str, Formulation],
    settings: SliceSettings,
) -> tuple[CompartmentToolpaths, ...]:
    """Toolpaths of every compartment of one tablet, each trimmed to carry its dose.

    The target volume of filament is ``dose / (density × drug_loading)``; the roads'
    planned bead volume differs from it by the rounding of height to whole layers and the
    bead model. The flow multiplier closes that gap and must stay within
    ``tol.flow_trim_rel`` of 1, or the geometry (not the flow) is wrong.

    A design with ``infill`` below 1 carries that fraction of its envelope as material:
    the perimeters and any solid top and bottom layers are laid first, and the other
    layers' infill gets the density that makes up the rest (see :func:`_lay_compartment`).

    Raises
    ------
    SlicingError
        A layer has no printable region, the perimeters or solid layers alone hold more
        than the design's infill allows, or the flow trim would exceed its bound.
    """
    out = []
    tops = layer_tops_mm(design.layers, settings.first_layer_mm, settings.layer_mm)
    tablet_top = max(float(m.bounds[1][2]) for m in mesh.meshes)
    for name, solid, comp in zip(mesh.names, mesh.meshes, design.compartments, strict=True):
        regions = slice_mesh(solid, tops, tablet_top_mm=tablet_top)
        if not regions:
            raise SlicingError(f"tablet {design.index} ({name}) is thinner than one layer")
        f = formulations[comp.formulation]
        # A drug-loaded compartment must carry its dose; a drug-free one its design volume.
        target = comp.dose_mg / f.api_mg_per_mm3 if comp.api else comp.volume_mm3
        where = f"tablet {design.index} ({name})"
        layers = _lay_compartment(regions, settings, design.infill, target, where)
        paths = CompartmentToolpaths(design.index, comp.api, comp.tool, layers, target)
        trim = paths.flow_multiplier - 1.0
        if abs(trim) > tol.flow_trim_rel and design.infill < 1.0:
            raise SlicingError(
                f"{where}: the sliced roads hold {paths.planned_volume_mm3:.1f} mm3 but the "
                f"design needs {target:.1f} mm3 ({trim:+.1%} flow, beyond "
                f"±{tol.flow_trim_rel:.0%}); {settings.pattern} infill cannot lay "
                f"{design.infill:.0%} material in this compartment evenly enough: choose "
                "a higher infill, another pattern or a larger tablet",
            )
        if abs(trim) > tol.flow_trim_rel:
            raise SlicingError(
                f"tablet {design.index} ({name}): the sliced roads hold "
                f"{paths.planned_volume_mm3:.1f} mm3 but the design needs {target:.1f} mm3 "
                f"({trim:+.1%} flow, beyond ±{tol.flow_trim_rel:.0%}); the compartment's "
                f"height is far from whole {settings.layer_mm:g} mm layers: leave the "
                "height free or choose another layer height",
            )
        out.append(paths)
    return tuple(out)


def _lay_compartment(
    regions: tuple[LayerRegion, ...],
    settings: SliceSettings,
    infill: float,
    target_mm3: float,
    where: str,
) -> tuple[LayerRoads, ...]:
    """Perimeters and infill for every layer of one compartment.

    A solid design (``infill`` 1) fills every layer solid. Otherwise the material is
    shared out so the compartment holds ``target_mm3``: the perimeters of every layer and
    the solid bottom and top layers count as they are laid, and the sparse layers share
    what is left as one material fraction ``φ`` of their cross-section (so a tapered
    compartment is as porous at its narrow end as at its wide one). In a sparse layer of
    cross-section ``A``, perimeter volume ``P`` and infill region ``I``, the infill
    density is ``(φ A h − P) / (I h)``. The round number of roads misses that by a few
    percent in a small region, so the sparse layers are laid again with their densities
    scaled by the miss (:data:`DENSITY_PASSES`).

    Raises
    ------
    SlicingError
        A layer is too small for one bead, or the perimeters or solid layers alone hold
        more than the design's infill allows.
    """
    w = settings.width_mm
    # The layers of a prism-like compartment share their section: lay each distinct one
    # once (perimeters here, infill in _lay).
    shell_of: dict[tuple[bytes, float], tuple[list[Road], BaseGeometry]] = {}
    keys = [(_shape_key(r.region), r.height_mm) for r in regions]
    for r, key in zip(regions, keys, strict=True):
        if key not in shell_of:
            shell_of[key] = perimeters(r.region, w, r.height_mm, settings.perimeters)
    shells = [shell_of[key] for key in keys]
    memo: dict[tuple[object, ...], tuple[Road, ...]] = {}
    n = len(regions)
    bottom, top = settings.solid_bottom_layers, settings.solid_top_layers
    solid = [infill >= 1.0 or k < bottom or k >= n - top for k in range(n)]
    densities = [1.0] * n
    if infill < 1.0:
        densities = _first_densities(regions, shells, solid, settings, infill, target_mm3,
                                     where)
    shift = _gyroid_shift(regions, shells, solid, densities, settings)
    layers = [_lay(r, shell, densities[k], settings, shift, memo) for k, (r, shell)
              in enumerate(zip(regions, shells, strict=True))]
    for _ in range(DENSITY_PASSES - 1):
        if all(solid):
            break
        fixed = sum(lr.volume_mm3 if solid[k] else _volume(shells[k][0], lr)
                    for k, lr in enumerate(layers))
        laid = sum(lr.volume_mm3 - _volume(shells[k][0], lr)
                   for k, lr in enumerate(layers) if not solid[k])
        if laid <= 0.0:
            break
        scale = (target_mm3 - fixed) / laid
        if abs(scale - 1.0) <= DENSITY_CLOSE_REL:
            break
        for k in range(n):
            if not solid[k]:
                densities[k] = min(1.0, densities[k] * scale)
        shift = _gyroid_shift(regions, shells, solid, densities, settings)
        for k in range(n):
            if not solid[k]:
                layers[k] = _lay(regions[k], shells[k], densities[k], settings, shift, memo)
    for r, lr in zip(regions, layers, strict=True):
        if not lr.roads:
            raise SlicingError(f"{where}: layer {r.layer} is too small for one bead of "
                               f"{w:g} mm")
    return tuple(layers)


def _first_densities(
    regions: tuple[LayerRegion, ...],
    shells: list[tuple[list[Road], BaseGeometry]],
    solid: list[bool],
    settings: SliceSettings,
    infill: float,
    target_mm3: float,
    where: str,
) -> list[float]:
    """Infill density per layer (1 for the solid ones) from the areas: see
    :func:`_lay_compartment`."""
    w = settings.width_mm
    envelope = [r.region.area * r.height_mm for r in regions]
    walls = [sum(p.length_mm for p in roads) * bead_area_mm2(w, r.height_mm)
             for r, (roads, _) in zip(regions, shells, strict=True)]
    inner = [0.0 if left.is_empty else left.area * r.height_mm
             for r, (_, left) in zip(regions, shells, strict=True)]
    fixed = sum(walls[k] + inner[k] for k in range(len(regions)) if solid[k])
    sparse = sum(envelope[k] for k in range(len(regions)) if not solid[k])
    share = (target_mm3 - fixed) / sparse if sparse > 0.0 else 0.0
    if share <= 0.0:
        raise SlicingError(
            f"{where}: the {settings.solid_bottom_layers} solid bottom and "
            f"{settings.solid_top_layers} solid top layers of its {len(regions)} hold about "
            f"{fixed:.1f} mm3 of the {target_mm3:.1f} mm3 the design's infill {infill:g} "
            "allows, leaving nothing for sparse layers between them: use fewer solid "
            "layers or a higher infill")
    out = []
    for k, r in enumerate(regions):
        if solid[k]:
            out.append(1.0)
            continue
        if walls[k] >= share * envelope[k] or inner[k] <= 0.0:
            raise SlicingError(
                f"{where}: in layer {r.layer} the {settings.perimeters} perimeters fill "
                f"{walls[k] / envelope[k]:.0%} of the {r.region.area:.1f} mm2 "
                f"cross-section, but the design's infill {infill:g} leaves "
                f"{share:.0%} for perimeters and infill together: use fewer perimeters, a "
                "higher infill or a larger tablet")
        out.append(min(1.0, (share * envelope[k] - walls[k]) / inner[k]))
    return out


def _gyroid_shift(
    regions: tuple[LayerRegion, ...],
    shells: list[tuple[list[Road], BaseGeometry]],
    solid: list[bool],
    densities: list[float],
    settings: SliceSettings,
) -> float:
    """The z shift of a gyroid infill that makes the sparse layers carry their density on
    average even when they span less than the gyroid's period (0 for other patterns)."""
    sparse = [k for k in range(len(regions)) if not solid[k] and densities[k] < 1.0]
    if settings.pattern != "gyroid" or not sparse:
        return 0.0
    weights = [0.0 if shells[k][1].is_empty else shells[k][1].area * regions[k].height_mm
               for k in sparse]
    if sum(weights) <= 0.0:
        return 0.0
    mean = sum(w * densities[k] for w, k in zip(weights, sparse, strict=True)) / sum(weights)
    zs = [regions[k].z_mm - regions[k].height_mm / 2.0 for k in sparse]
    return gyroid_z_shift_mm(zs, weights, settings.width_mm, settings.layer_mm, mean)


def _lay(
    r: LayerRegion,
    shell: tuple[list[Road], BaseGeometry],
    density: float,
    settings: SliceSettings,
    gyroid_shift_mm: float = 0.0,
    memo: dict[tuple[object, ...], tuple[Road, ...]] | None = None,
) -> LayerRoads:
    """One layer: its perimeters, then infill of ``settings.pattern`` at ``density``
    (a gyroid shifted down by ``gyroid_shift_mm``, see :func:`_gyroid_shift`). ``memo``
    keeps the roads of layers already laid: a layer whose section, height, density and
    direction match one of them gets the same roads (a gyroid's depend on z too)."""
    walls, left = shell
    w, h = settings.width_mm, r.height_mm
    angle = 45.0 if r.layer % 2 == 0 else 135.0
    z = r.z_mm - h / 2.0 - gyroid_shift_mm
    key = (_shape_key(left), h, density, settings.pattern, angle,
           z if settings.pattern == "gyroid" else None)
    infill = None if memo is None else memo.get(key)
    if infill is None:
        if settings.pattern == "concentric":
            infill = tuple(concentric(left, w, h, density))
        elif settings.pattern == "gyroid":
            infill = tuple(gyroid(left, w, h, z, density, angle))
        else:
            infill = tuple(rectilinear(left, w, h, angle, density))
        if memo is not None:
            memo[key] = infill
    return LayerRoads(r.layer, r.z_mm, h, w, (*walls, *infill), r.region, density)


SHAPE_KEY_GRID_MM = 1e-7
"""Sections whose outlines agree to this are laid alike. The sections of a triangulated
prism at different heights are the same polygon, but each also carries points where the
plane crosses the side triangles' diagonals (on the straight edges, at heights that vary
with z) and starts its rings at another vertex: both are removed before comparing."""


def _shape_key(region: BaseGeometry) -> bytes:
    plain = shapely.simplify(region, SHAPE_KEY_GRID_MM, preserve_topology=True)
    return bytes(shapely.to_wkb(shapely.normalize(shapely.set_precision(plain,
                                                                        SHAPE_KEY_GRID_MM))))


def _volume(roads: list[Road], layer: LayerRoads) -> float:
    """Bead volume of ``roads`` laid in ``layer``."""
    return sum(p.length_mm for p in roads) * layer.bead_area_mm2
