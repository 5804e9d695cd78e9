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
"""Front strip of the bed reserved for the purge line (of the first tool)."""

PURGE_PITCH_MM = 2.0
"""Between the purge lines of consecutive tools: a 0.8 mm bead and 1.2 mm of bare bed."""


@dataclass(frozen=True)
class Plate:
    """Tablet centres in machine coordinates, where the purge lines go (one per tool,
    ``purge_start_mm``–``purge_end_mm`` being the first tool's), and the purge tower's
    footprint (front-left corner and size, machine coordinates) if there is one."""

    centers_mm: tuple[tuple[float, float], ...]
    purge_start_mm: tuple[float, float]
    purge_end_mm: tuple[float, float]
    park_mm: tuple[float, float]
    tower_corner_mm: tuple[float, float] | None = None
    tower_size_mm: tuple[float, float] | None = None
    purge_lines_mm: tuple[tuple[tuple[float, float], tuple[float, float]], ...] = ()
    """(start, end) of each tool's purge line, tool 0 first, ``PURGE_PITCH_MM`` apart
    behind one another; empty for a plate made without them (one line, the first)."""

    def purge_line_mm(self, tool: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Where tool ``tool`` primes: its own line, or the first one on a plate placed
        for one tool."""
        if tool < len(self.purge_lines_mm):
            return self.purge_lines_mm[tool]
        if tool == 0:
            return (self.purge_start_mm, self.purge_end_mm)
        raise ValueError(f"the plate has no purge line for tool T{tool}: place the "
                         "tablets for every tool of the job (place_tablets(tools=…))")


def bed_to_machine(profile: PrinterProfile, x: float, y: float) -> tuple[float, float]:
    """Bed coordinates (0..X, 0..Y from the front-left corner) to the printer's own."""
    if profile.origin == "center":
        return (x - profile.bed_mm[0] / 2.0, y - profile.bed_mm[1] / 2.0)
    return (x, y)


def place_tablets(
    profile: PrinterProfile,
    diameters_mm: list[float],
    source: str = "prescription",
    tower_mm: tuple[float, float] | None = None,
    tools: int = 1,
) -> Plate:
    """A row-by-row grid of tablets behind the purge band, serpentine in order.

    Parameters
    ----------
    profile : PrinterProfile
        The bed's size and origin.
    diameters_mm : list of float
        Each tablet's footprint (longest side), mm.
    source : str
        The file named when the tablets do not fit.
    tower_mm : (float, float) or None
        Width (X) and depth (Y) of a purge tower: it stands at the front right of the
        bed, and the front band grows so that it keeps ``GAP_MM`` from every tablet.
    tools : int
        Tools the job primes: one purge line each, ``PURGE_PITCH_MM`` apart, the band
        growing by that much per tool beyond the first.

    Raises
    ------
    InputError
        The tablets (and the tower) do not fit the bed (``dispense.units`` named, with
        the capacity).
    """
    size = max(diameters_mm)
    pitch = size + GAP_MM
    usable_x = profile.bed_mm[0] - 2 * EDGE_MARGIN_MM
    lines_band = PURGE_BAND_MM + (max(tools, 1) - 1) * PURGE_PITCH_MM
    band = lines_band if tower_mm is None else max(lines_band, tower_mm[1] + GAP_MM)
    purge_len = min(60.0, usable_x)
    if tower_mm is not None:
        # The purge line keeps a gap from the tower; both must find room at the front.
        purge_len = min(purge_len, usable_x - tower_mm[0] - GAP_MM)
        if purge_len < 10.0:
            raise InputError([Problem(profile.path or profile.id, "bed_mm",
                                      f"is {profile.bed_mm[0]:g} × {profile.bed_mm[1]:g} mm; "
                                      f"a purge tower of {tower_mm[0]:.1f} mm and a purge "
                                      "line do not fit at its front: lower "
                                      "purge_volume_mm3 or use a larger printer")])
    usable_y = profile.bed_mm[1] - 2 * EDGE_MARGIN_MM - band
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
    y_first = EDGE_MARGIN_MM + band + size / 2.0
    centers = []
    for i in range(len(diameters_mm)):
        row, col = divmod(i, cols)
        # Serpentine: every other row right to left keeps the travel between rows short.
        if row % 2:
            col = cols - 1 - col
        centers.append(bed_to_machine(profile, x_first + col * pitch, y_first + row * pitch))
    purge_y = EDGE_MARGIN_MM + PURGE_BAND_MM / 2.0
    corner = None
    if tower_mm is not None:
        corner = bed_to_machine(profile, profile.bed_mm[0] - EDGE_MARGIN_MM - tower_mm[0],
                                EDGE_MARGIN_MM)
    lines = tuple(
        (bed_to_machine(profile, EDGE_MARGIN_MM, purge_y + k * PURGE_PITCH_MM),
         bed_to_machine(profile, EDGE_MARGIN_MM + purge_len, purge_y + k * PURGE_PITCH_MM))
        for k in range(max(tools, 1)))
    return Plate(
        centers_mm=tuple(centers),
        purge_start_mm=lines[0][0],
        purge_end_mm=lines[0][1],
        park_mm=bed_to_machine(profile, EDGE_MARGIN_MM, profile.bed_mm[1] - EDGE_MARGIN_MM),
        tower_corner_mm=corner,
        tower_size_mm=tower_mm,
        purge_lines_mm=lines,
    )
