"""Render G-code from planned toolpaths and the printer profile's Jinja2 templates.

Every extruding move lies in a section opened by ``;TABLET:<i>`` or ``;TABLET:NONE``
(job.md). Inside a tablet section the nozzle is primed after the travel in and retracted
before leaving, so a retraction and its recovery never straddle two sections.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from doseprint import __version__
from doseprint.errors import InputError, TemplateRenderError
from doseprint.gcode import format as fmt
from doseprint.models.formulation import Formulation
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plate import Plate
from doseprint.slicer.toolpaths import CompartmentToolpaths, LayerRoads, bead_area_mm2

SHORT_TRAVEL_MM = 2.0
"""Travels inside a tablet shorter than this keep the filament primed (no ooze to fear)."""

RETRACT_SPEED_MM_S = 35.0
"""Filament speed of a retraction or its recovery."""

HEATING_ALLOWANCE_S = 180.0
"""Added to the motion time for heating the bed and nozzles (an estimate)."""

FIRST_LAYER_SPEED_FACTOR = 0.5
"""The first layer goes at half speed so it sticks to the bed."""

PURGE_WIDTH_MM = 0.8

END_LIFT_MM = 5.0
"""How far the shipped end templates lift the nozzle above the last layer."""


@dataclass(frozen=True)
class GcodeProgram:
    """The rendered program and its estimated duration."""

    text: str
    lines: int
    estimated_print_s: float


def tool_table(profile: PrinterProfile, tools: Sequence[Formulation]) -> list[dict[str, Any]]:
    """Template context for each tool, with temperatures checked against every limit.

    Raises
    ------
    InputError
        A formulation asks for a temperature above the printer's maximum or its own.
    """
    rows = []
    for k, f in enumerate(tools):
        limit = min(profile.max_nozzle_temp_c, f.max_temp_c)
        if f.nozzle_temp_c > limit:
            raise InputError(f"nozzle_temp_c = {f.nozzle_temp_c:g} °C is above "
                             f"{limit:g} °C (min of {profile.id} max_nozzle_temp_c and "
                             "the material's max_temp_c)", file=f.path, key="nozzle_temp_c")
        rows.append({"tool": k, "formulation": f.id, "api": f.api or None,
                     "nozzle_temp_c": fmt.num(f.nozzle_temp_c, 1),
                     "bed_temp_c": f.bed_temp_c})
    return rows


def bed_temperature_c(profile: PrinterProfile, tools: Sequence[Formulation]) -> float:
    """The bed runs at the warmest bed temperature any tool's material asks for, which must
    not exceed the printer's bed maximum nor any loaded material's ``max_temp_c``."""
    bed = max(f.bed_temp_c for f in tools)
    limit = min([profile.max_bed_temp_c] + [f.max_temp_c for f in tools])
    if bed > limit:
        raise InputError(f"bed temperature {bed:g} °C is above {limit:g} °C (the printer's "
                         "max_bed_temp_c or a loaded material's max_temp_c)",
                         file=profile.path, key="max_bed_temp_c")
    return bed


class _Templates:
    """The profile's templates, rendered strictly: an unknown variable is an error."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.folder = Path(profile.templates_dir)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.folder),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
        )

    def render(self, name: str, context: Mapping[str, Any]) -> list[str]:
        file = f"{name}.gcode.j2"
        try:
            text = self.env.get_template(file).render(**context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateRenderError(f"line {exc.lineno}: {exc.message}",
                                      file=str(self.folder / file)) from None
        except jinja2.TemplateNotFound:
            raise TemplateRenderError("template is missing", file=str(self.folder / file)) from None
        except jinja2.UndefinedError as exc:
            raise TemplateRenderError(f"{exc.message}; available: {', '.join(sorted(context))}",
                                      file=str(self.folder / file)) from None
        return [line.rstrip() for line in text.splitlines() if line.strip()]


class _Writer:
    """Accumulates G-code lines, tracking position, extrusion and time."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.relative_e = profile.extrusion == "relative"
        self.lines: list[str] = []
        self.pos = np.zeros(3)
        self.e_exact = 0.0      # exact E position (mm of filament since the last reset)
        self.e_written = 0.0    # E position as the printer sees it after rounding
        self.time_s = 0.0
        self.filament_area = math.pi * profile.filament_diameter_mm**2 / 4.0

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def template_block(self, lines: list[str]) -> None:
        self.add(*lines)
        # Templates may touch E (G92, priming); start again from a known E.
        self.add("G92 E0")
        self.e_exact = self.e_written = 0.0

    def _e_word(self, delta_mm: float) -> str:
        """The E word for feeding ``delta_mm`` more filament, rounding without drift."""
        self.e_exact += delta_mm
        target = round(self.e_exact, 5)
        word = fmt.e(target - self.e_written if self.relative_e else target)
        self.e_written = target
        return word

    def travel(self, x: float, y: float, z: float | None = None) -> None:
        words = ["G0"]
        new = self.pos.copy()
        if z is not None and abs(z - self.pos[2]) > 1e-9:
            self.add(f"G0 Z{fmt.xyz(z)} F{fmt.feed(10.0)}")
            self.time_s += abs(z - self.pos[2]) / 10.0
            new[2] = z
            self.pos = new.copy()
        new[0], new[1] = x, y
        dist = float(np.linalg.norm(new - self.pos))
        if dist < 1e-9:
            return
        speed = self.profile.travel_speed_mm_s
        words += [f"X{fmt.xyz(x)}", f"Y{fmt.xyz(y)}", f"F{fmt.feed(speed)}"]
        self.add(" ".join(words))
        self.time_s += dist / speed
        self.pos = new

    def feed_filament(self, delta_mm: float) -> None:
        """Retract (negative) or recover (positive) without moving."""
        if delta_mm == 0.0:
            return
        self.add(f"G1 E{self._e_word(delta_mm)} F{fmt.feed(RETRACT_SPEED_MM_S)}")
        self.time_s += abs(delta_mm) / RETRACT_SPEED_MM_S

    def extrude(self, points: np.ndarray, area_mm2: float, speed_mm_s: float) -> None:
        """Extrude along ``points`` (from the current position to each in turn)."""
        f_word = f" F{fmt.feed(speed_mm_s)}"
        for x, y in points:
            dist = math.hypot(x - self.pos[0], y - self.pos[1])
            if dist < 1e-9:
                continue
            e_word = self._e_word(dist * area_mm2 / self.filament_area)
            self.add(f"G1 X{fmt.xyz(x)} Y{fmt.xyz(y)} E{e_word}{f_word}")
            f_word = ""
            self.time_s += dist / speed_mm_s
            self.pos[0], self.pos[1] = x, y


def render_gcode(
    profile: PrinterProfile,
    tools: Sequence[Formulation],
    plate: Plate,
    tablets: Sequence[Sequence[CompartmentToolpaths]],
    header: Sequence[str],
) -> GcodeProgram:
    """The whole program: header, start template, purge, every layer of every tablet
    (layer by layer across the plate), end template.

    ``tablets[i]`` holds tablet *i*'s compartments; ``header`` adds lines (without the
    leading ``;``) after doseprint's version line.
    """
    templates = _Templates(profile)
    tool_rows = tool_table(profile, tools)
    bed_c = bed_temperature_c(profile, tools)
    w = _Writer(profile)
    w.add(f"; doseprint {__version__}", *(f"; {h}" for h in header))
    context: dict[str, Any] = {
        "profile": profile, "tools": tool_rows, "first_tool": 0,
        "bed_temp_c": fmt.num(bed_c, 1), "extrusion": profile.extrusion,
        "park_xy_mm": [fmt.xyz(v) for v in plate.park_mm],
        "travel_feed_mm_min": fmt.feed(profile.travel_speed_mm_s),
    }
    w.template_block(templates.render("start", context))
    w.time_s += HEATING_ALLOWANCE_S
    w.pos[:] = 0.0

    # Purge: prime the nozzle on a line in front of the plate, counted as not swallowed.
    w.add(";TABLET:NONE")
    first_h = profile.first_layer_height_mm
    w.travel(*plate.purge_start_mm, z=first_h)
    purge_area = bead_area_mm2(PURGE_WIDTH_MM, first_h)
    w.extrude(np.array([plate.purge_end_mm]), purge_area, profile.print_speed_mm_s / 2)
    w.feed_filament(-profile.retract_mm)

    # Every layer of every compartment, by global layer index.
    by_layer: dict[int, list[tuple[int, CompartmentToolpaths, LayerRoads]]] = {}
    for i, tablet in enumerate(tablets):
        for comp in tablet:
            for roads in comp.layers:
                by_layer.setdefault(roads.layer, []).append((i, comp, roads))
    active_tool = 0
    for layer in sorted(by_layer):
        sections = by_layer[layer]
        z, height = sections[0][2].z_mm, sections[0][2].height_mm
        w.template_block(templates.render("layer_change", {
            **context, "layer": layer, "z_mm": fmt.xyz(z), "height_mm": fmt.xyz(height)}))
        # One tool change at most per layer and tool: finish what the loaded tool prints
        # on every tablet, then change. Tablets go back and forth across the plate.
        tools_here = sorted({comp.tool for _, comp, _ in sections},
                            key=lambda k: (k != active_tool, k))
        forward = layer % 2 == 0
        for tool in tools_here:
            if tool != active_tool:
                w.add(";TABLET:NONE")
                w.template_block(templates.render("tool_change", {
                    **context, "old_tool": active_tool, "new_tool": tool,
                    "new": tool_rows[tool]}))
                active_tool = tool
            mine = sorted((s for s in sections if s[1].tool == tool),
                          key=lambda s: s[0] if forward else -s[0])
            for i, comp, roads in mine:
                _section(w, comp, roads, plate.centers_mm[i], layer == 0)
            forward = not forward
    w.add(";TABLET:NONE")
    w.template_block(templates.render("end", context))
    text = "\n".join(w.lines) + "\n"
    return GcodeProgram(text, len(w.lines), round(w.time_s))


def _section(
    w: _Writer,
    comp: CompartmentToolpaths,
    layer: LayerRoads,
    center: tuple[float, float],
    first_layer: bool,
) -> None:
    """One compartment's roads in one layer, as one ``;TABLET:<i>`` section."""
    profile = w.profile
    speed = profile.print_speed_mm_s * (FIRST_LAYER_SPEED_FACTOR if first_layer else 1.0)
    area = layer.bead_area_mm2 * comp.flow_multiplier
    cx, cy = center
    w.add(f";TABLET:{comp.tablet}")
    for k, road in enumerate(layer.roads):
        pts = road.points_mm + np.array([cx, cy])
        start = pts[0]
        if k == 0:
            w.travel(float(start[0]), float(start[1]), z=layer.z_mm)
            w.feed_filament(profile.retract_mm)
        else:
            gap = math.hypot(start[0] - w.pos[0], start[1] - w.pos[1])
            if gap > SHORT_TRAVEL_MM:
                w.feed_filament(-profile.retract_mm)
                w.travel(float(start[0]), float(start[1]))
                w.feed_filament(profile.retract_mm)
            else:
                w.travel(float(start[0]), float(start[1]))
        w.extrude(pts[1:], area, speed)
    w.feed_filament(-profile.retract_mm)
