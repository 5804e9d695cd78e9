"""The bead model: how wide a printed road is, its cross-section, and how far apart
neighbouring roads lie in a solid layer.

The designer sizes walls in beads, the slicer lays roads of this cross-section, and the
G-code turns a road's length into filament with it; all three read it from here.
"""

from __future__ import annotations

import math

BEAD_WIDTH_FACTOR = 1.125
"""Bead width / nozzle diameter: the usual default of FDM slicers (Slic3r family), which
presses the bead onto the layer below for a dense tablet."""


def bead_area_mm2(width_mm: float, height_mm: float) -> float:
    """Cross-section of a bead: a rectangle with semicircular sides (Slic3r's model),
    ``(w − h)·h + π·h²/4``."""
    return (width_mm - height_mm) * height_mm + math.pi * height_mm**2 / 4.0


def bead_spacing_mm(width_mm: float, height_mm: float) -> float:
    """Centre distance at which neighbouring beads of that cross-section tile a solid
    layer exactly: the bead area divided by the layer height."""
    return bead_area_mm2(width_mm, height_mm) / height_mm
