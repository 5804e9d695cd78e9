"""The numeric tolerances of doseprint, each with the reason for its value."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerances:
    # job.md: |G-code dose - prescribed| <= 1.0 % of the prescribed dose, per tablet and API.
    dose_rel: float = 0.01
    # job.md's aim for the same figure; the flow trim is built to land inside it.
    dose_aim_rel: float = 0.002
    # Flow may be trimmed at most this far from nominal to land on the dose; beyond it the
    # geometry, not the flow, is wrong and the job is refused.
    flow_trim_rel: float = 0.05
    # Decimals written for E in G-code: 1e-5 mm of 1.75 mm filament is 2.4e-5 mm3,
    # far below any dose that matters, and it matches what Marlin parses as a float.
    e_decimals: int = 5
    # Decimals written for X/Y/Z: 1 micron, below any printer's step resolution.
    xyz_decimals: int = 3
    # Shapely coordinates closer than this are the same point.
    merge_mm: float = 1e-6
    # Perimeter vertices that deviate from a straight road by less than this are dropped:
    # a hundredth of the 0.4 mm nozzle's width, below any printer's positioning accuracy.
    # (PrusaSlicer's 12.5 µm would halve the moves, but coarser loops around a small hole
    # make concentric fills overlap by up to a tenth.)
    road_simplify_mm: float = 0.004
    # Regions smaller than this are noise from sectioning, not something to print.
    area_mm2: float = 1e-4
    # Release model mass balance: released + remaining = initial to this fraction.
    mass_balance_rel: float = 1e-9
    # Immediate release (prescription.md): at least this fraction released by 0.5 h.
    immediate_fraction: float = 0.85
    immediate_time_h: float = 0.5
    # Sustained release (prescription.md): predicted t80 within this fraction of t80_h.
    sustained_t80_rel: float = 0.10
    # Profile release (prescription.md): f2 at least this.
    f2_similar: float = 50.0
    # A formulation prints at least this far above the firmware's minimum extrusion
    # temperature. The firmwares take a nozzle running a few degrees under its target as
    # normal (Klipper's verify_heater: hysteresis 5 °C; Marlin's thermal protection:
    # THERMAL_PROTECTION_HYSTERESIS 4 °C), and a cold extrusion check acts on the
    # measured temperature: twice the larger of those.
    extrude_temp_margin_c: float = 10.0


tol = Tolerances()
