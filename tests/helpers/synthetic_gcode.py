"""Small synthetic jobs for render tests, and a plain motion trace of rendered G-code.

The toolpaths are hand-made zigzags (no slicer), so these tests exercise the renderer
alone and run in milliseconds. The trace follows only what the renderer writes (G0/G1
with X, Y, Z, E, F; M82/M83; G92 E; T<k>; section markers) and is independent of
:mod:`doseprint.gcode.reader`.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from doseprint.library import load_library
from doseprint.models.formulation import Formulation
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.toolpaths import CompartmentToolpaths, LayerRoads, Road

LIB = load_library()
TOOLS: tuple[Formulation, ...] = (LIB.formulations["theophylline-hpc-30"],
                                  LIB.formulations["hydrochlorothiazide-eudragitepo-10"])
WIDTH_MM = 0.45


def profile_for(flavor: str, extrusion: str = "relative", **changes: object) -> PrinterProfile:
    """A two-extruder profile of each shipped flavour (templates of that flavour)."""
    base = {"marlin": "generic-marlin-2x175", "klipper": "generic-klipper-1x175",
            "reprapfirmware": "generic-rrf-1x175"}[flavor]
    p = LIB.printer(base)
    extra: dict[str, object] = {"extruders": 2, "extrusion": extrusion,
                                "purge_volume_mm3": 20.0, "standby_delta_c": 30.0,
                                "tool_change_retract_mm": 2.0}
    extra.update(changes)
    return dataclasses.replace(p, **extra)  # type: ignore[arg-type]


def zigzag(half_mm: float, pitch_mm: float, angle_deg: float) -> Road:
    """A zigzag filling a square of side 2·half, rotated by ``angle_deg``."""
    ys = np.arange(-half_mm, half_mm + 1e-9, pitch_mm)
    pts = []
    for n, y in enumerate(ys):
        xs = (-half_mm, half_mm) if n % 2 == 0 else (half_mm, -half_mm)
        pts += [(xs[0], y), (xs[1], y)]
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return Road("infill", np.array(pts) @ rot.T)


def compartment(
    tablet: int, tool: int, layers: Iterable[int], half_mm: float = 3.0,
    layer_mm: float = 0.2, target_scale: float = 1.01,
) -> CompartmentToolpaths:
    """Square zigzag layers of one tool; the target asks a 1 % flow trim."""
    out = []
    for n in layers:
        road = zigzag(half_mm, 0.4, 45.0 if n % 2 == 0 else 135.0)
        out.append(LayerRoads(n, round((n + 1) * layer_mm, 6), layer_mm, WIDTH_MM, (road,)))
    paths = CompartmentToolpaths(tablet, TOOLS[tool].api, tool, tuple(out), 1.0)
    return dataclasses.replace(paths, target_volume_mm3=paths.planned_volume_mm3 * target_scale)


def two_tool_tablets(n: int = 3) -> list[tuple[CompartmentToolpaths, ...]]:
    """n tablets: tool 0 in layers 0–5, tool 1 in layers 3–9 (both tools in layers 3–5)."""
    return [(compartment(i, 0, range(0, 6)), compartment(i, 1, range(3, 10), half_mm=2.5))
            for i in range(n)]


def one_tool_tablets(heights: Sequence[int]) -> list[tuple[CompartmentToolpaths, ...]]:
    """One tablet per entry, of that many layers, tool 0."""
    return [(compartment(i, 0, range(h)),) for i, h in enumerate(heights)]


@dataclass
class Move:
    """One G0/G1 as executed: start and end position, E fed, feed rate, section, tool."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    e_mm: float
    feed_mm_s: float
    section: int | None
    tool: int
    line: int


_WORD = re.compile(r"([XYZEFST])(-?[0-9.]+)")


def trace(text: str) -> list[Move]:
    """Every G0/G1 move of a rendered program, with the section and tool it runs in."""
    pos = [0.0, 0.0, 0.0]
    e_pos = 0.0
    relative = False
    feed = 1.0
    section: int | None = None
    tool = 0
    moves = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw.startswith(";TABLET:"):
            tag = raw.split(":", 1)[1]
            section = None if tag == "NONE" else int(tag)
            continue
        code = raw.split(";")[0].strip()
        if not code:
            continue
        head = code.split()[0]
        words = dict(_WORD.findall(code[len(head):]))
        if head == "M83":
            relative = True
        elif head == "M82":
            relative = False
        elif head == "G92" and "E" in words:
            e_pos = float(words["E"])
        elif re.fullmatch(r"T[0-9]+", head):
            tool = int(head[1:])
        elif head in ("G0", "G1"):
            if "F" in words:
                feed = float(words["F"]) / 60.0
            end = [float(words[a]) if a in words else pos[i] for i, a in enumerate("XYZ")]
            e = 0.0
            if "E" in words:
                value = float(words["E"])
                e = value if relative else value - e_pos
                e_pos = e_pos + e
            moves.append(Move((pos[0], pos[1], pos[2]), (end[0], end[1], end[2]), e, feed,
                              section, tool, number))
            pos = end
    return moves


def motion_seconds(moves: Iterable[Move]) -> float:
    """Time of the traced moves at their feed rates (E-only moves at the filament speed)."""
    total = 0.0
    for m in moves:
        dist = math.dist(m.start, m.end)
        total += (dist if dist > 1e-12 else abs(m.e_mm)) / m.feed_mm_s
    return total
