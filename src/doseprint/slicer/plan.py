"""Plan a tablet's toolpaths: slice, lay perimeters and infill, trim flow to the dose."""

from __future__ import annotations

from dataclasses import dataclass

from doseprint.design.tablet import TabletDesign
from doseprint.errors import SlicingError
from doseprint.geometry.tablet import TabletMesh
from doseprint.models.formulation import Formulation
from doseprint.slicer.fill import perimeters, rectilinear
from doseprint.slicer.layers import layer_tops_mm, slice_mesh
from doseprint.slicer.toolpaths import CompartmentToolpaths, LayerRoads
from doseprint.tolerances import tol


@dataclass(frozen=True)
class SliceSettings:
    """How to slice: layer heights, bead width, perimeter count."""

    first_layer_mm: float
    layer_mm: float
    width_mm: float
    perimeters: int = 2

    @classmethod
    def for_nozzle(cls, nozzle_mm: float, first_layer_mm: float, layer_mm: float) -> SliceSettings:
        # A bead 1.125 × the nozzle wide is the usual default of FDM slicers (Slic3r
        # family); it presses the bead onto the layer below for a dense tablet.
        return cls(first_layer_mm, layer_mm, round(1.125 * nozzle_mm, 4))


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

    Raises
    ------
    SlicingError
        A layer has no printable region, or the flow trim would exceed its bound.
    """
    out = []
    tops = layer_tops_mm(design.layers, settings.first_layer_mm, settings.layer_mm)
    tablet_top = max(float(m.bounds[1][2]) for m in mesh.meshes)
    for name, solid, comp in zip(mesh.names, mesh.meshes, design.compartments, strict=True):
        regions = slice_mesh(solid, tops, tablet_top_mm=tablet_top)
        if not regions:
            raise SlicingError(f"tablet {design.index} ({name}) is thinner than one layer")
        layers = []
        for r in regions:
            roads, inner = perimeters(r.region, settings.width_mm, r.height_mm,
                                      settings.perimeters)
            angle = 45.0 if r.layer % 2 == 0 else 135.0
            roads += rectilinear(inner, settings.width_mm, r.height_mm, angle)
            if not roads:
                raise SlicingError(f"tablet {design.index} ({name}): layer {r.layer} is too "
                                   f"small for one bead of {settings.width_mm:g} mm")
            layers.append(LayerRoads(r.layer, r.z_mm, r.height_mm, settings.width_mm,
                                     tuple(roads)))
        f = formulations[comp.formulation]
        # A drug-loaded compartment must carry its dose; a drug-free one its design volume.
        target = comp.dose_mg / f.api_mg_per_mm3 if comp.api else comp.volume_mm3
        paths = CompartmentToolpaths(design.index, comp.api, comp.tool, tuple(layers), target)
        trim = paths.flow_multiplier - 1.0
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
