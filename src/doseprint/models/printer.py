"""A printer as a site has set it up (printer-profile.md)."""

from __future__ import annotations

from dataclasses import dataclass

from doseprint.typed import ExtrusionMode, Flavor, Origin, PrintOrder

PRINTER_SCHEMA = "doseprint.printer/1"

DEFAULT_MIN_EXTRUDE_TEMP_C = 170.0
"""Marlin's ``EXTRUDE_MINTEMP`` (Configuration.h) and Klipper's ``min_extrude_temp``
default (klippy/extras/heaters.py): the firmware refuses to extrude below it."""

MIN_EXTRUDE_TEMP_FLOOR_C = 50.0
"""The lowest minimum extrusion temperature a job may set (``M302 S``): a limit nearer
room temperature would not stop a nozzle whose heater is off (RepRapFirmware takes a
heater that is switched off to settle at up to 45 °C, ``MaxAmbientTemperature`` in
RRF3Common.h of Duet3D's CANlib)."""

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
    print_order: PrintOrder = "layer"
    """The default print order; ``compile --print-order`` overrides it."""
    gantry_clearance_mm: float | None = None
    """Height under the gantry (X beam) above the nozzle tip: the tallest tablet printed
    tablet by tablet; None when the site has not measured it (tablet order refused)."""
    purge_volume_mm3: float = 20.0
    """Material primed on the purge tower after each tool change (multi-tool jobs)."""
    standby_delta_c: float = 0.0
    """An idle tool waits this much below its formulation's nozzle temperature."""
    tool_change_retract_mm: float | None = None
    """Total retraction of a tool put aside at a tool change; None: ``retract_mm``."""
    perimeters: int = 2
    """Perimeter loops the slicer lays round every layer of every compartment."""
    acceleration_mm_s2: float = 1000.0
    """Acceleration of printing and travel moves in XY (Klipper ``max_accel``, Marlin
    ``M204``): the time estimate and the streamer's wait for an answer plan with it."""
    square_corner_velocity_mm_s: float = 5.0
    """Speed through a 90° corner (Klipper ``square_corner_velocity``; Marlin's junction
    deviation JD = v²·(√2 − 1)/a gives the same cornering)."""
    max_z_speed_mm_s: float = 10.0
    """Top speed of a move with a Z component (Klipper ``max_z_velocity``)."""
    max_z_acceleration_mm_s2: float = 100.0
    """Acceleration of a move with a Z component (Klipper ``max_z_accel``)."""
    max_extrude_only_speed_mm_s: float | None = None
    """Top filament speed of a retraction or its recovery; None: Klipper's default,
    ``travel_speed_mm_s`` × (4·nozzle²) / filament cross-section."""
    max_extrude_only_acceleration_mm_s2: float | None = None
    """Filament acceleration of an extrude-only move; None: Klipper's default,
    ``acceleration_mm_s2`` × (4·nozzle²) / filament cross-section."""
    min_extrude_temp_c: float = DEFAULT_MIN_EXTRUDE_TEMP_C
    """The firmware's minimum extrusion temperature as the printer is set: below it the
    firmware refuses to extrude (Marlin ``EXTRUDE_MINTEMP``, Klipper ``min_extrude_temp``
    in printer.cfg, RepRapFirmware's ``M302 S``)."""
    lower_min_extrude_temp: bool = False
    """The start template lowers the firmware's limit for the job with ``M302 S<t>``
    (Marlin built with ``PREVENT_COLD_EXTRUSION``, RepRapFirmware); Klipper cannot."""
    schema: str = PRINTER_SCHEMA
    path: str = ""
    sha256: str = ""
