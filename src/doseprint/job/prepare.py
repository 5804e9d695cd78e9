"""Prepare: what every path that designs or slices for a printer starts from.

Compile, ``doseprint release``, ``doseprint preview`` of a prescription (through compile)
and the flow calibration all begin here, so a design is judged, sliced and printed with
the same layer heights, bead width, perimeters, infill pattern, solid layers and size
limits wherever it is made.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from doseprint.design.cylinder import LayerGrid
from doseprint.design.designer import size_limits
from doseprint.errors import InputError
from doseprint.gcode.commands import template_problems
from doseprint.geometry.spec import SizeLimits
from doseprint.models.formulation import Formulation
from doseprint.models.prescription import Prescription
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plan import SliceSettings

FILAMENT_DIAMETER_TOLERANCE_MM = 0.05
"""A formulation's filament may differ from the diameter the printer feeds this much."""


@dataclass(frozen=True)
class Prepared:
    """The printer and how to design and slice for it.

    Attributes
    ----------
    profile : PrinterProfile
    grid : LayerGrid
        The first layer and the layer height (``--layer-height`` checked).
    settings : SliceSettings
        Bead width from the nozzle, the profile's perimeters, and the prescription's
        infill pattern and solid layers (the defaults without a prescription).
    limits : SizeLimits
        The tablet's longest side and thinnest wall, on this grid.
    """

    profile: PrinterProfile
    grid: LayerGrid
    settings: SliceSettings
    limits: SizeLimits

    def check_filament(self, formulations: Iterable[Formulation]) -> None:
        """Refuse a formulation whose filament this printer cannot feed.

        Raises
        ------
        InputError
            Naming the formulation's file and ``filament_diameter_mm``.
        """
        feeds = self.profile.filament_diameter_mm
        for f in formulations:
            if abs(f.filament_diameter_mm - feeds) > FILAMENT_DIAMETER_TOLERANCE_MM:
                raise InputError(f"{f.id} is {f.filament_diameter_mm:g} mm filament; "
                                 f"{self.profile.id} feeds {feeds:g} mm", file=f.path,
                                 key="filament_diameter_mm")


def layer_grid(profile: PrinterProfile, layer_height_mm: float | None) -> LayerGrid:
    """The printer's layer heights, with ``--layer-height`` checked against its limits.

    Raises
    ------
    InputError
        ``--layer-height`` outside the profile's range.
    """
    layer = profile.layer_height_mm if layer_height_mm is None else layer_height_mm
    if not profile.min_layer_height_mm <= layer <= profile.max_layer_height_mm:
        raise InputError(f"is {layer:g} mm; {profile.id} prints layers of "
                         f"{profile.min_layer_height_mm:g}..{profile.max_layer_height_mm:g} mm",
                         file="command line", key="--layer-height")
    return LayerGrid(profile.first_layer_height_mm, layer)


def prepare(
    profile: PrinterProfile,
    rx: Prescription | None = None,
    *,
    layer_height_mm: float | None = None,
) -> Prepared:
    """How to design and slice ``rx`` (or a calibration part, without one) on ``profile``.

    Raises
    ------
    InputError
        ``layer_height_mm`` outside the profile's range, or a template of the profile that
        writes a command a tablet job may not contain
        (:func:`doseprint.gcode.commands.template_problems`).
    """
    problems = template_problems(profile)
    if problems:
        raise InputError(problems)
    grid = layer_grid(profile, layer_height_mm)
    base = SliceSettings.for_nozzle(profile.nozzle_diameter_mm, grid.first_mm, grid.layer_mm)
    if rx is None:
        settings = SliceSettings(base.first_layer_mm, base.layer_mm, base.width_mm,
                                 perimeters=profile.perimeters)
        limits = size_limits(grid, profile.nozzle_diameter_mm)
    else:
        solid = rx.tablet.solid_layers
        settings = SliceSettings(base.first_layer_mm, base.layer_mm, base.width_mm,
                                 perimeters=profile.perimeters,
                                 pattern=rx.tablet.infill_pattern,
                                 solid_bottom_layers=solid, solid_top_layers=solid)
        limits = size_limits(grid, profile.nozzle_diameter_mm, rx.tablet.max_length_mm)
    return Prepared(profile, grid, settings, limits)


__all__ = ["FILAMENT_DIAMETER_TOLERANCE_MM", "Prepared", "layer_grid", "prepare"]
