"""Place the tablets of a job on the printer's bed."""

from __future__ import annotations

import math
from dataclasses import dataclass

from doseprint.errors import InputError, Problem
from doseprint.models.printer import PrinterProfile

EDGE_MARGIN_MM = 10.0
"""Kept clear at the bed's edges (clips, bed-levelling inaccuracy near edges)."""

GAP_MM = 6.0
"""Between neighbouring tablets: room for the nozzle and a clean part removal."""

PURGE_BAND_MM = 8.0
"""Front strip of the bed reserved for the purge line."""


@dataclass(frozen=True)
class Plate:
    """Tablet centres in machine coordinates, and where the purge line goes."""

    centers_mm: tuple[tuple[float, float], ...]
    purge_start_mm: tuple[float, float]
    purge_end_mm: tuple[float, float]
    park_mm: tuple[float, float]


def bed_to_machine(profile: PrinterProfile, x: float, y: float) -> tuple[float, float]:
    """Bed coordinates (0..X, 0..Y from the front-left corner) to the printer's own."""
    if profile.origin == "center":
        return (x - profile.bed_mm[0] / 2.0, y - profile.bed_mm[1] / 2.0)
    return (x, y)


def place_tablets(
    profile: PrinterProfile, diameters_mm: list[float], source: str = "prescription"
) -> Plate:
    """A row-by-row grid of tablets behind the purge band, serpentine in order.

    Raises
    ------
    InputError
        The tablets do not fit the bed (``dispense.units`` named, with the capacity).
    """
    size = max(diameters_mm)
    pitch = size + GAP_MM
    usable_x = profile.bed_mm[0] - 2 * EDGE_MARGIN_MM
    usable_y = profile.bed_mm[1] - 2 * EDGE_MARGIN_MM - PURGE_BAND_MM
    # n tablets in a row span (n − 1) pitches plus one tablet.
    cols = max(0, math.floor((usable_x - size) / pitch) + 1) if usable_x >= size else 0
    rows = max(0, math.floor((usable_y - size) / pitch) + 1) if usable_y >= size else 0
    if cols * rows < len(diameters_mm):
        raise InputError([Problem(source, "dispense.units",
                                  f"is {len(diameters_mm)}; the bed of {profile.id} "
                                  f"({profile.bed_mm[0]:g} × {profile.bed_mm[1]:g} mm) holds "
                                  f"{cols * rows} tablets of {size:.1f} mm: "
                                  "split the batch or use a larger printer")])
    x_first = EDGE_MARGIN_MM + size / 2.0
    y_first = EDGE_MARGIN_MM + PURGE_BAND_MM + size / 2.0
    centers = []
    for i in range(len(diameters_mm)):
        row, col = divmod(i, cols)
        # Serpentine: every other row right to left keeps the travel between rows short.
        if row % 2:
            col = cols - 1 - col
        centers.append(bed_to_machine(profile, x_first + col * pitch, y_first + row * pitch))
    usable_x = profile.bed_mm[0] - 2 * EDGE_MARGIN_MM
    purge_y = EDGE_MARGIN_MM + PURGE_BAND_MM / 2.0
    purge_len = min(60.0, usable_x)
    return Plate(
        centers_mm=tuple(centers),
        purge_start_mm=bed_to_machine(profile, EDGE_MARGIN_MM, purge_y),
        purge_end_mm=bed_to_machine(profile, EDGE_MARGIN_MM + purge_len, purge_y),
        park_mm=bed_to_machine(profile, EDGE_MARGIN_MM, profile.bed_mm[1] - EDGE_MARGIN_MM),
    )
