"""A printer as a site has set it up (printer-profile.md)."""

from __future__ import annotations

from dataclasses import dataclass

from doseprint.typed import ExtrusionMode, Flavor, Origin

PRINTER_SCHEMA = "doseprint.printer/1"

TEMPLATE_NAMES = ("start", "end", "tool_change", "layer_change")
"""Templates every profile's folder must have, as ``<name>.gcode.j2``."""

OPTIONAL_TEMPLATE_NAMES = ("safe_stop",)
"""Templates a profile may have; doseprint falls back to a flavour default without them."""


@dataclass(frozen=True)
class PrinterProfile:
    id: str
    name: str
    flavor: Flavor
    bed_mm: tuple[float, float]
    max_z_mm: float
    origin: Origin
    nozzle_diameter_mm: float
    extruders: int
    filament_diameter_mm: float
    max_nozzle_temp_c: float
    max_bed_temp_c: float
    layer_height_mm: float
    first_layer_height_mm: float
    min_layer_height_mm: float
    max_layer_height_mm: float
    print_speed_mm_s: float
    travel_speed_mm_s: float
    retract_mm: float
    extrusion: ExtrusionMode
    baud: int
    rx_buffer_lines: int
    templates: str
    templates_dir: str = ""
    schema: str = PRINTER_SCHEMA
    path: str = ""
    sha256: str = ""
