"""Render G-code from planned toolpaths and the printer profile's Jinja2 templates.

Every extruding move lies in a section opened by ``;TABLET:<i>`` or ``;TABLET:NONE``
(job.md). Every tool of the job primes on its own purge line before the first layer.
Inside a tablet section the nozzle is primed after the travel in and retracted before
leaving, so a retraction and its recovery never straddle two sections.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import numpy as np

from doseprint import __version__
from doseprint.errors import InputError, Problem, TemplateRenderError
from doseprint.gcode import format as fmt
from doseprint.gcode.motion import motion_limits, plan_commands
from doseprint.gcode.tokens import split_commands
from doseprint.models.bead import bead_area_mm2, bead_spacing_mm
from doseprint.models.fields import UNSAFE_IN_LINE, UNSAFE_IN_TEXT, describe_char, show
from doseprint.models.formulation import Formulation
from doseprint.models.printer import MIN_EXTRUDE_TEMP_FLOOR_C, PrinterProfile
from doseprint.slicer.plate import Plate
from doseprint.slicer.toolpaths import CompartmentToolpaths, LayerRoads
from doseprint.tolerances import tol
from doseprint.typed import PrintOrder

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

TOWER_WIDTH_MM = 10.0
"""X size of the purge tower; its depth follows from the profile's purge volume."""

TOOL_CHANGE_S = 3.0
"""Time of one tool change beyond the moves (selecting the tool, settling): an estimate."""

REHEAT_C_PER_S = 2.0
"""How fast a nozzle heats back from standby (an estimate for the time budget)."""

TOWER_SPARSE_STEP = 4
"""A tower strip no tool change needs is laid with every 4th line only (a floor for the
purges above it at a quarter of the material)."""

TABLET_ORDER_LIFT_MM = 2.0
"""Printing tablet by tablet, the nozzle crosses this far above everything printed."""


@dataclass(frozen=True)
class GcodeProgram:
    """The rendered program and its estimated duration.

    ``estimated_motion_s`` is the planned motion time (:mod:`doseprint.gcode.motion`:
    trapezoids with the profile's acceleration and cornering); ``estimated_print_s`` adds
    the allowances for heating and tool changes.
    """

    text: str
    lines: int
    estimated_print_s: float
    estimated_motion_s: float = 0.0


def tool_table(profile: PrinterProfile, tools: Sequence[Formulation]) -> list[dict[str, Any]]:
    """Template context for each tool, with temperatures checked against every limit.

    Each row holds ``tool``, ``formulation``, ``api``, ``nozzle_temp_c``, ``bed_temp_c``,
    ``standby_temp_c`` (the nozzle temperature less the profile's ``standby_delta_c``
    when more than one tool is loaded, never below 0) and ``heater`` (Klipper's heater
    name: ``extruder``, ``extruder1``, …).

    Raises
    ------
    InputError
        A formulation asks for a temperature above the printer's maximum or its own.
    """
    rows = []
    delta = profile.standby_delta_c if len(tools) > 1 else 0.0
    for k, f in enumerate(tools):
        limit = min(profile.max_nozzle_temp_c, f.max_temp_c)
        if f.nozzle_temp_c > limit:
            raise InputError(f"nozzle_temp_c = {f.nozzle_temp_c:g} °C is above "
                             f"{limit:g} °C (min of {profile.id} max_nozzle_temp_c and "
                             "the material's max_temp_c)", file=f.path, key="nozzle_temp_c")
        rows.append({"tool": k, "formulation": f.id, "api": f.api or None,
                     "nozzle_temp_c": fmt.num(f.nozzle_temp_c, 1),
                     "standby_temp_c": fmt.num(max(0.0, f.nozzle_temp_c - delta), 1),
                     "heater": "extruder" if k == 0 else f"extruder{k}",
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


def min_extrude_temp_c(profile: PrinterProfile, tools: Sequence[Formulation]) -> float:
    """The firmware's minimum extrusion temperature the job runs with.

    The firmwares refuse to extrude below it: Marlin drops the E of the move ("cold
    extrusion prevented"), RepRapFirmware moves without driving the extruder, Klipper
    stops the print ("Extrude below minimum temp"). Every tool's formulation must print
    at least ``tol.extrude_temp_margin_c`` above it, since a nozzle runs a little below
    its target while printing. A profile with ``lower_min_extrude_temp`` sets it for the
    job (``M302 S<t>`` in its start template) to the lower of its
    ``min_extrude_temp_c`` and that margin below the coldest formulation; otherwise the
    job runs with the profile's ``min_extrude_temp_c`` as the firmware is set.

    Raises
    ------
    InputError
        A formulation prints too close to (or below) the limit and the profile does not
        lower it, or lowering it would take it below ``MIN_EXTRUDE_TEMP_FLOOR_C``; one
        problem per formulation, naming it, its temperature and the profile's key.
    """
    margin = tol.extrude_temp_margin_c
    firmware = profile.min_extrude_temp_c
    where = profile.path or profile.id
    coldest = min(f.nozzle_temp_c for f in tools)
    if profile.lower_min_extrude_temp:
        limit = min(firmware, coldest - margin)
        if limit < MIN_EXTRUDE_TEMP_FLOOR_C:
            raise InputError([Problem(
                f.path or f.id, "nozzle_temp_c",
                f"is {f.nozzle_temp_c:g} °C: the firmware's minimum extrusion temperature "
                f"would have to go below {MIN_EXTRUDE_TEMP_FLOOR_C:g} °C for formulation "
                f"{f.id} ({margin:g} °C under it), where it no longer stops a nozzle "
                "whose heater is off")
                for f in tools if f.nozzle_temp_c - margin < MIN_EXTRUDE_TEMP_FLOOR_C])
        return limit
    if profile.flavor == "klipper":
        fix = ("lower min_extrude_temp in every [extruder] section of the printer's "
               "printer.cfg and give the same value here")
    else:
        fix = ("set lower_min_extrude_temp = true so that the start template lowers it "
               "for the job with M302 S<t>, or build the firmware with a lower limit and "
               "give it here")
    problems = [
        Problem(where, "min_extrude_temp_c",
                f"is {firmware:g} °C, but formulation {f.id} (tool T{k}) prints at "
                f"nozzle_temp_c = {f.nozzle_temp_c:g} °C: the firmware refuses to extrude "
                f"below its minimum extrusion temperature, and a formulation must print at "
                f"least {margin:g} °C above it (a nozzle runs a few degrees under its "
                f"target while printing); {fix}")
        for k, f in enumerate(tools) if f.nozzle_temp_c < firmware + margin]
    if problems:
        raise InputError(problems)
    return firmware


class _UnsafeValue(Exception):
    """A value a template writes holds a character that would end its line."""

    def __init__(self, value: str, char: str) -> None:
        super().__init__(value)
        self.value = value
        self.char = char


def _line_safe(value: Any) -> Any:
    """Jinja2 ``finalize``: every string a template writes (a profile's id or name, a
    formulation id, an API) must stay on its line, so that a comment it is written into
    stays a comment."""
    if isinstance(value, str):
        found = UNSAFE_IN_LINE.search(value)
        if found is not None:
            raise _UnsafeValue(value, found.group())
    return value


TEMPLATE_ERRORS = (jinja2.TemplateError, ArithmeticError, AttributeError, LookupError,
                   RecursionError, TypeError, ValueError)
"""What a site's template can raise while it renders (``{{ 1/0 }}``, ``{{ tools[9] }}``,
a macro that calls itself, ``range(10**12)`` in the sandbox): its author's mistake, so
an InputError naming the template, never a crash."""


def template_line(exc: BaseException, file: str) -> int | None:
    """The line of template ``file`` (a path) at which ``exc`` was raised, if known
    (Jinja2 rewrites tracebacks to point into the template)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == file:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class _Templates:
    """The profile's templates, rendered strictly: an unknown variable is an error, and so
    is a value or a line holding a character that would end a G-code line. They are a
    site's own files, so they run in Jinja2's sandbox (no private attributes, ranges of at
    most 100000) and any error they raise is reported as theirs."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.folder = Path(profile.templates_dir)
        self.env = jinja2.sandbox.SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(self.folder),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            finalize=_line_safe,
        )

    def render(self, name: str, context: Mapping[str, Any]) -> list[str]:
        file = f"{name}.gcode.j2"
        try:
            text = self.env.get_template(file).render(**context)
        except _UnsafeValue as exc:
            raise TemplateRenderError(
                f"writes {show(exc.value)}, which holds {describe_char(exc.char)}: it would "
                "end the G-code line (or comment) it is written into",
                file=str(self.folder / file)) from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateRenderError(f"line {exc.lineno}: {exc.message}",
                                      file=str(self.folder / file)) from None
        except jinja2.TemplateNotFound:
            raise TemplateRenderError("template is missing", file=str(self.folder / file)) from None
        except jinja2.UndefinedError as exc:
            raise TemplateRenderError(f"{exc.message}; available: {', '.join(sorted(context))}",
                                      file=str(self.folder / file)) from None
        except TEMPLATE_ERRORS as exc:
            path = str(self.folder / file)
            at = template_line(exc, path)
            where = f"line {at}: " if at is not None else ""
            raise TemplateRenderError(f"{where}does not render: {type(exc).__name__}: "
                                      f"{show(str(exc))}", file=path) from None
        lines = text.split("\n")
        for number, line in enumerate(lines, start=1):
            found = UNSAFE_IN_TEXT.search(line)
            if found is not None:
                raise TemplateRenderError(
                    f"line {number} of its output holds {describe_char(found.group())}, "
                    "which ends a G-code line for some readers; write plain lines",
                    file=str(self.folder / file))
        return [line.rstrip() for line in lines if line.strip()]


class _Writer:
    """Accumulates G-code lines, tracking position and extrusion; ``allowance_s`` sums the
    time estimates for what the motion plan does not see (heating, tool changes)."""

    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self.relative_e = profile.extrusion == "relative"
        self.lines: list[str] = []
        self.pos = np.zeros(3)
        self.e_exact = 0.0      # exact E position (mm of filament since the last reset)
        self.e_written = 0.0    # E position as the printer sees it after rounding
        self.allowance_s = 0.0
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
            new[2] = z
            self.pos = new.copy()
        new[0], new[1] = x, y
        dist = float(np.linalg.norm(new - self.pos))
        if dist < 1e-9:
            return
        speed = self.profile.travel_speed_mm_s
        words += [f"X{fmt.xyz(x)}", f"Y{fmt.xyz(y)}", f"F{fmt.feed(speed)}"]
        self.add(" ".join(words))
        self.pos = new

    def feed_filament(self, delta_mm: float) -> None:
        """Retract (negative) or recover (positive) without moving."""
        if delta_mm == 0.0:
            return
        self.add(f"G1 E{self._e_word(delta_mm)} F{fmt.feed(RETRACT_SPEED_MM_S)}")

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
            self.pos[0], self.pos[1] = x, y


@dataclass(frozen=True)
class PurgeTower:
    """A purge tower's layout: lines along X, ``strips`` strips of ``lines_per_strip``
    lines ``spacing_mm`` apart; each tool change purges one strip, so every tower layer
    has room for the most tool changes a layer can need (tools − 1)."""

    width_mm: float
    spacing_mm: float
    lines_per_strip: int
    strips: int
    bead_width_mm: float

    @property
    def depth_mm(self) -> float:
        return self.strips * self.lines_per_strip * self.spacing_mm

    @property
    def size_mm(self) -> tuple[float, float]:
        return (self.width_mm, self.depth_mm)


def purge_tower(
    profile: PrinterProfile, tools: int, bead_width_mm: float, min_height_mm: float
) -> PurgeTower | None:
    """The purge tower a job of ``tools`` tools needs, or None (one tool, or the profile's
    ``purge_volume_mm3`` is 0).

    Each strip holds at least ``purge_volume_mm3`` at the thinnest layer: a strip of n
    lines of length ``TOWER_WIDTH_MM − bead width`` filled ``spacing × height`` per mm.
    """
    if tools < 2 or profile.purge_volume_mm3 <= 0.0:
        return None
    spacing = bead_spacing_mm(bead_width_mm, min_height_mm)
    per_line = (TOWER_WIDTH_MM - bead_width_mm) * spacing * min_height_mm
    lines = max(2, math.ceil(profile.purge_volume_mm3 / per_line - 1e-9))
    return PurgeTower(TOWER_WIDTH_MM, spacing, lines, tools - 1, bead_width_mm)


def flow_command(profile: PrinterProfile, tool: int, multiplier: float) -> str:
    """The firmware command that sets tool ``tool``'s flow factor to ``multiplier``.

    Marlin: ``M221 [T<tool>] S<percent>`` (per extruder); Klipper: ``M221 S<percent>``
    (the active extruder's, so it follows every tool change); RepRapFirmware:
    ``M221 D<drive> S<percent>`` (the generic profiles drive tool *k* with drive *k*).
    """
    percent = fmt.num(100.0 * multiplier, 2)
    if profile.flavor == "reprapfirmware":
        return f"M221 D{tool} S{percent} ; flow calibration of T{tool}"
    if profile.flavor == "marlin" and profile.extruders > 1:
        return f"M221 T{tool} S{percent} ; flow calibration of T{tool}"
    return f"M221 S{percent} ; flow calibration of T{tool}"


def render_gcode(
    profile: PrinterProfile,
    tools: Sequence[Formulation],
    plate: Plate,
    tablets: Sequence[Sequence[CompartmentToolpaths]],
    header: Sequence[str],
    *,
    print_order: PrintOrder = "layer",
    extrusion_multipliers: Sequence[float] | None = None,
    tower: PurgeTower | None = None,
) -> GcodeProgram:
    """The whole program: header, start template, a purge line for every tool, every
    layer of every tablet, end template.

    ``tablets[i]`` holds tablet *i*'s compartments; ``header`` adds lines (without the
    leading ``;``) after doseprint's version line. ``print_order`` ``"layer"`` prints
    layer by layer across the plate; ``"tablet"`` prints each tablet whole before the
    next (one tool only), travelling between tablets above everything printed.
    ``extrusion_multipliers[k]`` is tool *k*'s flow calibration (1 when None): set as the
    firmware's flow factor (:func:`flow_command`) when the tool is selected, and reset
    to 100 % at the end, so the E in the file stays the dose (job.md) while the printer
    lays k times what it would. ``tower`` (placed at ``plate.tower_corner_mm``) receives
    a purge after every tool change.

    Raises
    ------
    InputError
        Tablet order was asked for a job with more than one tool; a temperature is above
        a limit (:func:`tool_table`, :func:`bed_temperature_c`); a formulation prints too
        cold for the firmware (:func:`min_extrude_temp_c`).
    """
    if print_order == "tablet" and (
            len(tools) > 1 or any(len({comp.tool for comp in tablet}) > 1 for tablet in tablets)):
        raise InputError("is \"tablet\"; printing tablet by tablet takes one tool "
                         "(a purge tower rises layer by layer): use --print-order layer",
                         file="command line", key="--print-order")
    templates = _Templates(profile)
    tool_rows = tool_table(profile, tools)
    bed_c = bed_temperature_c(profile, tools)
    extrude_min_c = min_extrude_temp_c(profile, tools)
    k_tool = list(extrusion_multipliers) if extrusion_multipliers else [1.0] * len(tools)
    w = _Writer(profile)
    w.add(f"; doseprint {__version__}", *(f"; {fmt.comment_text(h)}" for h in header))
    context: dict[str, Any] = {
        "profile": profile, "tools": tool_rows, "first_tool": 0,
        "bed_temp_c": fmt.num(bed_c, 1), "extrusion": profile.extrusion,
        "park_xy_mm": [fmt.xyz(v) for v in plate.park_mm],
        "travel_feed_mm_min": fmt.feed(profile.travel_speed_mm_s),
        "min_extrude_temp_c": fmt.num(extrude_min_c, 1),
        "firmware_min_extrude_temp_c": fmt.num(profile.min_extrude_temp_c, 1),
    }
    w.template_block(templates.render("start", context))
    calibrated = any(k != 1.0 for k in k_tool)
    if calibrated:
        w.add(flow_command(profile, 0, k_tool[0]))
    w.allowance_s += HEATING_ALLOWANCE_S
    w.pos[:] = 0.0

    state = _ToolState(retracted=[0.0] * len(tools))
    _prime_tools(w, templates, context, plate, tool_rows, state,
                 k_tool if calibrated else None)

    if print_order == "tablet":
        _tablet_by_tablet(w, templates, context, plate, tablets)
    else:
        _layer_by_layer(w, templates, context, plate, tablets,
                        k_tool if calibrated else None, tool_rows, tower, state)
    w.add(";TABLET:NONE")
    if calibrated:
        w.add(*(flow_command(profile, k, 1.0) for k in range(len(tools))
                if profile.flavor != "klipper" or k == 0))
    w.template_block(templates.render("end", context))
    text = "\n".join(w.lines) + "\n"
    if (found := UNSAFE_IN_TEXT.search(text)) is not None:
        # Every user string was checked on its way in; this is a bug, not bad input.
        raise ValueError(f"the G-code holds {describe_char(found.group())}")
    motion = plan_commands(split_commands(text), motion_limits(profile))
    return GcodeProgram(text, len(w.lines), round(motion.motion_s + w.allowance_s),
                        estimated_motion_s=round(motion.motion_s, 1))


@dataclass
class _ToolState:
    """The loaded tool and how far each tool's filament is drawn back from the nozzle."""

    retracted: list[float]
    active: int = 0


def _change_tool(
    w: _Writer,
    templates: _Templates,
    context: dict[str, Any],
    tool_rows: Sequence[dict[str, Any]],
    state: _ToolState,
    new: int,
    k_tool: Sequence[float] | None,
) -> None:
    """Put the loaded tool aside and select ``new`` through the ``tool_change`` template,
    in a ``;TABLET:NONE`` section.

    Ooze control: the tool put aside retracts to ``tool_change_retract_mm`` (the template
    lets it cool to standby and heats the next one). A calibrated job sets the new tool's
    flow factor after the template: Klipper resets it whenever the extruder changes
    (klippy/extras/gcode_move.py, ``_handle_activate_extruder``), and on the other
    firmwares the command is harmless.
    """
    profile = w.profile
    tc_retract = profile.tool_change_retract_mm
    if tc_retract is None:
        tc_retract = profile.retract_mm
    w.add(";TABLET:NONE")
    old = state.active
    if tc_retract > state.retracted[old]:
        w.feed_filament(state.retracted[old] - tc_retract)
        state.retracted[old] = tc_retract
    w.template_block(templates.render("tool_change", {
        **context, "old_tool": old, "new_tool": new,
        "old": tool_rows[old], "new": tool_rows[new]}))
    w.allowance_s += TOOL_CHANGE_S + profile.standby_delta_c / REHEAT_C_PER_S
    if k_tool is not None:
        w.add(flow_command(profile, new, k_tool[new]))
    state.active = new


def _prime_tools(
    w: _Writer,
    templates: _Templates,
    context: dict[str, Any],
    plate: Plate,
    tool_rows: Sequence[dict[str, Any]],
    state: _ToolState,
    k_tool: Sequence[float] | None,
) -> None:
    """Prime every tool of the job on its own line in front of the plate, on the first
    layer, in ``;TABLET:NONE``: whatever a tool's filament did before the job (a previous
    job's retraction, ooze), its first road in a tablet starts from a primed nozzle. The
    lines run back and forth, tool 0 first; the last tool primed stays loaded, each
    leaves its filament retracted by ``retract_mm`` (the state every section starts from).
    """
    profile = w.profile
    first_h = profile.first_layer_height_mm
    purge_area = bead_area_mm2(PURGE_WIDTH_MM, first_h)
    w.add(";TABLET:NONE")
    for k in range(len(tool_rows)):
        start, end = plate.purge_line_mm(k)
        if k % 2:
            start, end = end, start
        if k != state.active:
            _change_tool(w, templates, context, tool_rows, state, k, k_tool)
        w.travel(*start, z=first_h)
        w.feed_filament(state.retracted[k])
        w.extrude(np.array([end]), purge_area, profile.print_speed_mm_s / 2)
        w.feed_filament(-profile.retract_mm)
        state.retracted[k] = profile.retract_mm


_Section = tuple[int, CompartmentToolpaths, LayerRoads]


def _layer_sections(
    tablets: Sequence[Sequence[CompartmentToolpaths]],
) -> dict[int, list[_Section]]:
    """Every layer of every compartment, by global layer index."""
    by_layer: dict[int, list[_Section]] = {}
    for i, tablet in enumerate(tablets):
        for comp in tablet:
            for roads in comp.layers:
                by_layer.setdefault(roads.layer, []).append((i, comp, roads))
    return by_layer


def _tool_order(sections: Sequence[_Section], active_tool: int) -> list[int]:
    """The tools of a layer, the loaded one first: one tool change at most per tool."""
    return sorted({comp.tool for _, comp, _ in sections}, key=lambda k: (k != active_tool, k))


def _layer_by_layer(
    w: _Writer,
    templates: _Templates,
    context: dict[str, Any],
    plate: Plate,
    tablets: Sequence[Sequence[CompartmentToolpaths]],
    k_tool: Sequence[float] | None,
    tool_rows: Sequence[dict[str, Any]],
    tower: PurgeTower | None,
    state: _ToolState,
) -> None:
    """Layer n of every tablet, then layer n + 1; tablets back and forth across the plate.
    Starts with ``state``'s loaded tool (the last one primed)."""
    profile = w.profile
    by_layer = _layer_sections(tablets)
    # Which layers change tools: the tower rises up to the last of them, every layer of
    # it solid (strips no change used are filled by the loaded tool at the layer's end).
    last_change = -1
    active = state.active
    for layer in sorted(by_layer):
        order = _tool_order(by_layer[layer], active)
        if order and order[-1] != active:
            last_change = layer
        active = order[-1] if order else active
    use_tower = tower is not None and last_change >= 0
    if use_tower and plate.tower_corner_mm is None:
        raise ValueError("a purge tower was planned but the plate has no place for it")
    retracted = state.retracted

    for layer in sorted(by_layer):
        sections = by_layer[layer]
        z, height = sections[0][2].z_mm, sections[0][2].height_mm
        w.template_block(templates.render("layer_change", {
            **context, "layer": layer, "z_mm": fmt.xyz(z), "height_mm": fmt.xyz(height)}))
        strips_done = 0
        forward = layer % 2 == 0
        for tool in _tool_order(sections, state.active):
            if tool != state.active:
                _change_tool(w, templates, context, tool_rows, state, tool, k_tool)
                if use_tower and layer <= last_change:
                    assert tower is not None and plate.tower_corner_mm is not None
                    _purge_strip(w, tower, plate.tower_corner_mm, strips_done, z, height,
                                 retracted[tool])
                    strips_done += 1
                else:
                    w.feed_filament(retracted[tool] - profile.retract_mm)
                retracted[tool] = profile.retract_mm
            mine = sorted((s for s in sections if s[1].tool == tool),
                          key=lambda s: s[0] if forward else -s[0])
            for i, comp, roads in mine:
                _section(w, comp, roads, plate.centers_mm[i], layer == 0)
            forward = not forward
        if use_tower and layer <= last_change and tower is not None:
            assert plate.tower_corner_mm is not None
            if strips_done < tower.strips:
                # Keep the tower level: the loaded tool lays the strips no change used,
                # sparsely (solid on the first layer), so the next purge has a floor.
                w.add(";TABLET:NONE")
                for strip in range(strips_done, tower.strips):
                    _purge_strip(w, tower, plate.tower_corner_mm, strip, z, height,
                                 retracted[state.active], step=1 if layer == 0 else
                                 TOWER_SPARSE_STEP)
                    retracted[state.active] = profile.retract_mm


def _purge_strip(
    w: _Writer,
    tower: PurgeTower,
    corner: tuple[float, float],
    strip: int,
    z: float,
    height: float,
    retracted_mm: float,
    step: int = 1,
) -> None:
    """Prime the loaded tool and purge one strip of the tower's layer at ``z`` (every
    ``step``-th line of it); leave the tool retracted by ``retract_mm`` (the state every
    tablet section starts from)."""
    x0 = corner[0] + tower.bead_width_mm / 2.0
    x1 = corner[0] + tower.width_mm - tower.bead_width_mm / 2.0
    first = strip * tower.lines_per_strip
    points = []
    for n, j in enumerate(range(first, first + tower.lines_per_strip, step)):
        y = corner[1] + (j + 0.5) * tower.spacing_mm
        xs = (x0, x1) if n % 2 == 0 else (x1, x0)
        points += [(xs[0], y), (xs[1], y)]
    w.travel(points[0][0], points[0][1], z=z)
    w.feed_filament(retracted_mm)
    w.extrude(np.array(points[1:]), tower.spacing_mm * height, w.profile.print_speed_mm_s)
    w.feed_filament(-w.profile.retract_mm)


def _tablet_by_tablet(
    w: _Writer,
    templates: _Templates,
    context: dict[str, Any],
    plate: Plate,
    tablets: Sequence[Sequence[CompartmentToolpaths]],
) -> None:
    """Each tablet whole, in plate order (the placement is serpentine, so consecutive
    tablets are neighbours); between two tablets the nozzle rises above everything
    printed, crosses, and comes down on the next one's first road."""
    top_printed = 0.0
    for n, tablet in enumerate(tablets):
        if not tablet:
            continue
        by_layer: dict[int, list[tuple[CompartmentToolpaths, LayerRoads]]] = {}
        for comp in tablet:
            for roads in comp.layers:
                by_layer.setdefault(roads.layer, []).append((comp, roads))
        center = plate.centers_mm[n]
        if top_printed > 0.0:
            first = by_layer[min(by_layer)][0][1].roads[0].points_mm[0]
            w.travel(float(w.pos[0]), float(w.pos[1]), z=top_printed + TABLET_ORDER_LIFT_MM)
            w.travel(float(first[0] + center[0]), float(first[1] + center[1]))
        for layer in sorted(by_layer):
            z, height = by_layer[layer][0][1].z_mm, by_layer[layer][0][1].height_mm
            w.template_block(templates.render("layer_change", {
                **context, "layer": layer, "z_mm": fmt.xyz(z), "height_mm": fmt.xyz(height)}))
            for comp, roads in by_layer[layer]:
                _section(w, comp, roads, center, layer == 0)
            top_printed = max(top_printed, z)
    if w.pos[2] < top_printed:
        # The end template lifts from here: start it above the tallest tablet.
        w.travel(float(w.pos[0]), float(w.pos[1]), z=top_printed)


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
