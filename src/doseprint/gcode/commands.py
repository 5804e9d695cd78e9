"""The commands a tablet job may contain, per firmware flavour, and what each does to
extrusion, position, temperature and flow: the dose reader's allow-list.

A command a firmware runs but the reader does not account for changes the dose behind
the E values (``M92`` steps per mm doubles every feed), heats beyond every limit
(``M303`` PID autotune to 300 °C, ``M141`` a chamber) or moves where no bound is checked.
So the reader (:mod:`doseprint.gcode.reader`) accepts only the commands in
:data:`COMMANDS`, each on the flavours it names and, for those marked ``outside``, only
outside ``;TABLET:<i>`` sections; everything else is refused, naming the line and the
command (:func:`command_refusal`). A printer profile's templates can be checked against
the same table as soon as the profile is loaded (:func:`template_problems`).

The table holds what doseprint's own renderer and the shipped templates write (every
example compiled for every shipped profile), and commands a site's template plausibly
uses that feed, move and heat nothing the reader must know: fans, display messages and
progress, dwell, waiting, motors off, print timers, and speed and acceleration limits
(which change how fast a move runs, not how much filament it feeds; outside tablets
only, so a tablet's moves all run under one set of limits).

Klipper macros and extended commands are not expanded, so none is accepted but the few
listed here: a macro (``PRINT_START``, ``END_PRINT`` …) is printer.cfg code doseprint
cannot read; it may set the extrude factor, heat past the formulation's limit or extrude,
before, inside or after the tablets. ``T<k>`` is the one exception (docs/firmware.md: the
printer.cfg macro that runs ``ACTIVATE_EXTRUDER``), as every reader of a job takes the tool
from ``T<k>`` lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.sandbox

from doseprint.errors import Problem
from doseprint.gcode.tokens import (
    TABLET_MARKER_RE,
    Command,
    command_text,
    parse_command,
    split_lines,
    unsafe_character,
)
from doseprint.models.printer import PrinterProfile
from doseprint.typed import FLAVORS, Flavor

__all__ = [
    "COMMANDS",
    "REFUSED",
    "CommandEffect",
    "Where",
    "command_refusal",
    "effect_key",
    "line_refusal",
    "template_problems",
]

Where = Literal["anywhere", "outside"]
"""``anywhere``; or ``outside`` a ``;TABLET:<i>`` section (before the first marker and in
``;TABLET:NONE`` sections)."""

_ALL: frozenset[Flavor] = frozenset(FLAVORS)
_MARLIN: frozenset[Flavor] = frozenset({"marlin"})
_KLIPPER: frozenset[Flavor] = frozenset({"klipper"})
_RRF: frozenset[Flavor] = frozenset({"reprapfirmware"})
_MARLIN_RRF: frozenset[Flavor] = frozenset({"marlin", "reprapfirmware"})


@dataclass(frozen=True)
class CommandEffect:
    """One command a tablet job may contain, and what it does.

    Attributes
    ----------
    word : str
        The command word as :attr:`~doseprint.gcode.tokens.Command.word` gives it
        (``G1``, ``M104``, ``SET_HEATER_TEMPERATURE``); ``T`` stands for every ``T<k>``.
    flavours : frozenset of str
        The firmwares it is accepted for (``marlin``, ``klipper``, ``reprapfirmware``).
    feeds, moves, heats, flow : str
        What it does to extrusion, to the position, to temperatures and to the flow
        factor, and how the reader accounts it; empty when it does nothing of the kind.
    where : {"anywhere", "outside"}
        ``outside``: refused inside a ``;TABLET:<i>`` section.
    text : bool
        The rest of the line is free text (a message), not parameters: it may hold any
        printable character.
    note : str
        What it is, for a reader of the table.
    """

    word: str
    flavours: frozenset[Flavor]
    feeds: str = ""
    moves: str = ""
    heats: str = ""
    flow: str = ""
    where: Where = "anywhere"
    text: bool = False
    note: str = ""


_E_FEED = "E: the feed, accounted to the section and the active tool"
_LIMITS = "speed or acceleration limits: how fast moves run, not how much they feed"

COMMANDS: dict[str, CommandEffect] = {c.word: c for c in (
    # Moves and extrusion
    CommandEffect("G0", _ALL, feeds=_E_FEED, moves="to X Y Z, bounded", note="move"),
    CommandEffect("G1", _ALL, feeds=_E_FEED, moves="to X Y Z, bounded", note="move"),
    CommandEffect("G2", _ALL, feeds=_E_FEED, moves="its end point only is bounded",
                  note="arc (Klipper: [gcode_arcs])"),
    CommandEffect("G3", _ALL, feeds=_E_FEED, moves="its end point only is bounded",
                  note="arc (Klipper: [gcode_arcs])"),
    CommandEffect("G28", _ALL, moves="the named axes (all if none) to 0 mm, offsets cleared",
                  note="home"),
    CommandEffect("G90", _ALL, feeds="absolute E on Marlin (read)", moves="absolute XYZ",
                  note="absolute positions"),
    CommandEffect("G91", _ALL, feeds="relative E on Marlin and Klipper (read)",
                  moves="relative XYZ", note="relative positions"),
    CommandEffect("G92", _ALL, feeds="sets the E position (read)",
                  moves="sets the logical X Y Z (read); without axes refused",
                  note="set position"),
    CommandEffect("G21", _ALL, note="millimetres (G20, inches, is refused)"),
    CommandEffect("M82", _ALL, feeds="absolute E (read)", note="absolute extrusion"),
    CommandEffect("M83", _ALL, feeds="relative E (read)", note="relative extrusion"),
    CommandEffect("M200", _MARLIN_RRF, feeds="volumetric E: turning it on is refused",
                  note="filament diameter; only D0 or S0 (off) is accepted"),
    CommandEffect("T", _ALL, feeds="the tool later E is accounted to (read)",
                  note="tool change T<k> (Klipper: a printer.cfg macro running "
                       "ACTIVATE_EXTRUDER)"),
    # Temperatures
    CommandEffect("M104", _ALL, heats="nozzle S/R/B of tool T (else the active one), read",
                  note="set a nozzle temperature"),
    CommandEffect("M109", _ALL, heats="nozzle S/R/B of tool T (else the active one), read",
                  note="set a nozzle temperature and wait"),
    CommandEffect("M140", _ALL, heats="bed S/R, read", note="set the bed temperature"),
    CommandEffect("M190", _ALL, heats="bed S/R, read",
                  note="set the bed temperature and wait"),
    CommandEffect("G10", _RRF, heats="tool P temperatures S (active) and R (standby), read",
                  note="RepRapFirmware tool temperatures; without P, and G10 L, refused"),
    CommandEffect("M568", _RRF, heats="tool P (else the active one) S and R, read",
                  note="RepRapFirmware tool temperatures"),
    CommandEffect("M116", _RRF, note="wait for heaters (RepRapFirmware)"),
    CommandEffect("M302", _MARLIN_RRF, heats="the minimum extrusion temperature S, read",
                  note="cold extrusion limit; P1 and S0 (check off) refused"),
    CommandEffect("SET_HEATER_TEMPERATURE", _KLIPPER,
                  heats="HEATER=extruder<k> or heater_bed, TARGET read; other heaters refused",
                  note="Klipper: set a heater's target"),
    CommandEffect("TEMPERATURE_WAIT", _KLIPPER, note="Klipper: wait for a sensor"),
    CommandEffect("TURN_OFF_HEATERS", _KLIPPER, heats="every target to 0",
                  note="Klipper: heaters off"),
    # Flow
    CommandEffect("M221", _ALL, flow="a tool's flow factor S, recorded per tool; refused "
                                     "inside a tablet section",
                  note="flow factor (flow calibration)"),
    # Neither feeds, moves nor heats
    CommandEffect("G4", _ALL, note="dwell"),
    CommandEffect("M400", _ALL, note="wait for the moves to finish"),
    CommandEffect("M106", _ALL, note="part fan on"),
    CommandEffect("M107", _ALL, note="part fan off"),
    CommandEffect("SET_FAN_SPEED", _KLIPPER, note="Klipper: a [fan_generic] fan"),
    CommandEffect("M117", _ALL, text=True, note="message on the display"),
    CommandEffect("M73", _ALL, note="progress on the display"),
    CommandEffect("M300", _MARLIN_RRF, note="beep"),
    CommandEffect("M75", _MARLIN, note="print job timer start"),
    CommandEffect("M76", _MARLIN, note="print job timer pause"),
    CommandEffect("M77", _MARLIN, note="print job timer stop"),
    CommandEffect("M17", _MARLIN_RRF, where="outside", note="motors on"),
    CommandEffect("M18", _ALL, where="outside", note="motors off"),
    CommandEffect("M84", _ALL, where="outside", note="motors off"),
    CommandEffect("M81", _MARLIN_RRF, where="outside", note="power supply off"),
    CommandEffect("M201", _MARLIN_RRF, where="outside", note=_LIMITS),
    CommandEffect("M203", _MARLIN_RRF, where="outside", note=_LIMITS),
    CommandEffect("M204", _ALL, where="outside", note=_LIMITS),
    CommandEffect("M205", _MARLIN, where="outside", note=_LIMITS),
    CommandEffect("M566", _RRF, where="outside", note=_LIMITS),
    CommandEffect("M220", _ALL, where="outside", note="speed factor: " + _LIMITS),
    CommandEffect("SET_VELOCITY_LIMIT", _KLIPPER, where="outside", note=_LIMITS),
    CommandEffect("SET_PRESSURE_ADVANCE", _KLIPPER, where="outside",
                  note="Klipper pressure advance: shifts when a move's E is fed, not how "
                       "much"),
)}
"""Every command a tablet job may contain, by word (see :class:`CommandEffect`)."""

_HIDDEN_FEED = "feeds filament by an amount stored in the firmware, not in the program"
_UNBOUNDED = "positions cannot be bounded"
_MACRO = ("it is a printer.cfg macro, which doseprint cannot read: it may set the extrude "
          "factor, heat past the formulation's limit or extrude behind the program; write "
          "its commands in the template instead")

REFUSED: dict[str, str] = {
    "G5": "Bezier moves are not traced, so their E cannot be accounted",
    "G6": "direct stepping is not traced, so its E cannot be accounted",
    "G10": f"firmware retraction {_HIDDEN_FEED}; write it as a G1 E move",
    "G11": f"firmware un-retraction {_HIDDEN_FEED}; write it as a G1 E move",
    "G20": "inch units are not read (and Klipper refuses them); use G21 (mm)",
    "G26": f"the mesh validation pattern {_HIDDEN_FEED}",
    "G29": "bed probing moves the head along paths the reader does not trace; probe "
           "before the job and keep the mesh in the firmware's configuration",
    "M0": "waits for the operator in the middle of the job",
    "M1": "waits for the operator in the middle of the job",
    "M92": "steps per mm change how much filament every E value feeds",
    "M110": "line numbers belong to the host, which numbers every line it sends",
    "M112": "an emergency stop is not part of a job",
    "M118": "writes text on the serial line the host reads the printer's answers from",
    "M141": "the chamber temperature is not read, so it cannot be checked against the "
            "formulations' limits",
    "M191": "the chamber temperature is not read, so it cannot be checked against the "
            "formulations' limits",
    "M206": f"home offsets are not read, so {_UNBOUNDED}",
    "M207": "firmware retraction lengths are not read; the job writes G1 E moves",
    "M208": "firmware retraction lengths are not read; the job writes G1 E moves",
    "M218": f"tool offsets are not read, so {_UNBOUNDED}",
    "M303": "PID autotune heats to a temperature no limit is checked against",
    "M428": f"home offsets are not read, so {_UNBOUNDED}",
    "M500": "stores settings in the firmware's memory",
    "M501": "loads settings (steps per mm, flow, limits) the reader does not see",
    "M502": "resets settings (steps per mm, flow, limits) to ones the reader does not see",
    "M600": f"filament change {_HIDDEN_FEED}",
    "M701": f"filament load {_HIDDEN_FEED}",
    "M702": f"filament unload {_HIDDEN_FEED}",
    **{f"G{n}": f"coordinate systems are not read, so {_UNBOUNDED}" for n in range(53, 60)},
    "ACTIVATE_EXTRUDER": "selects a tool without a T<k> line, and readers of the job take "
                         "the tool from T<k> (job.md): write T<k>, and define it on Klipper "
                         "as a [gcode_macro T<k>] that runs ACTIVATE_EXTRUDER",
    "SET_GCODE_OFFSET": f"G-code offsets are not read, so {_UNBOUNDED}",
    "SET_EXTRUDER_ROTATION_DISTANCE": "changes how much filament every E value feeds",
    "SET_EXTRUDER_STEP_DISTANCE": "changes how much filament every E value feeds",
    "SYNC_EXTRUDER_MOTION": "drives another extruder's motor with this one's E",
    "FORCE_MOVE": "moves a stepper the reader does not trace",
    "MANUAL_STEPPER": "moves a stepper the reader does not trace",
    **{name: _MACRO for name in ("PRINT_START", "START_PRINT", "PRINT_END", "END_PRINT")},
}
"""Why some commands a site might write are refused (any command not in
:data:`COMMANDS` is refused; these get a reason)."""


def effect_key(command: Command) -> str:
    """The :data:`COMMANDS` key of a command: its base word (``G1`` of ``G1.5``), ``T``
    for a tool change ``T<k>``."""
    base = command.base
    if command.is_classic and base[0] == "T":
        return "T"
    return base


def command_refusal(command: Command, flavor: Flavor | None, inside_tablet: bool) -> str | None:
    """Why a command may not be in a tablet job here, or None when it may.

    Parameters
    ----------
    command : Command
        One command (not empty).
    flavor : str or None
        The firmware the job is for; None accepts a command listed for any flavour.
    inside_tablet : bool
        The command is inside a ``;TABLET:<i>`` section.

    Returns
    -------
    str or None
        A message naming the command, for an error that names the line.
    """
    key = effect_key(command)
    effect = COMMANDS.get(key)
    shown = "T<k>" if key == "T" else key
    if effect is not None and command.subcode is not None:
        return f"{command.word}: sub-codes are not read"
    if effect is None or (flavor is not None and flavor not in effect.flavours):
        reason = REFUSED.get(key)
        if reason is None and effect is not None:
            others = ", ".join(sorted(effect.flavours))
            reason = f"it is read only for {others}, and this job is for {flavor}"
        if reason is None:
            kind = ("a Klipper macro or extended command, which is not expanded"
                    if not command.is_classic else "a command the reader does not account for")
            reason = (f"{kind}; a tablet job holds only the commands docs/formats.md lists")
        return f"{shown} is not accepted: {reason}"
    if effect.where == "outside" and inside_tablet:
        return (f"{shown} is not accepted inside a tablet section ({effect.note}); "
                "write it before the first tablet or in a ;TABLET:NONE section")
    if not effect.text and not command.text.isascii():
        return (f"{shown} holds a character outside ASCII: firmwares read commands as ASCII "
                "bytes, and parsers disagree on what such a character is")
    return None


def line_refusal(line: str, flavor: Flavor | None, inside_tablet: bool) -> str | None:
    """Why one line of a printer template's output may not be in a tablet job, or None.

    The characters of the line (:func:`~doseprint.gcode.tokens.unsafe_character`) and
    its command (:func:`command_refusal`) only: the values of a listed command are read
    when the whole program is (:mod:`doseprint.gcode.reader`).

    Parameters
    ----------
    line : str
        One line, without its line ending.
    flavor, inside_tablet
        As for :func:`command_refusal`.

    Returns
    -------
    str or None
    """
    unsafe = unsafe_character(line)
    if unsafe is not None:
        return (f"holds U+{ord(unsafe[1]):04X} at column {unsafe[0] + 1}, which ends a line "
                "for some readers (or is a control or format character)")
    if TABLET_MARKER_RE.match(line):
        return None
    code = command_text(line)
    if not code:
        return None
    return command_refusal(parse_command(code), flavor, inside_tablet)


_TEMPLATE_INSIDE_TABLET = {"start": False, "end": False, "tool_change": False,
                           "layer_change": True, "safe_stop": False}
"""Each template, and whether its output lands inside a ``;TABLET:<i>`` section
(``layer_change`` follows the previous layer's roads; ``tool_change`` runs in
``;TABLET:NONE``; ``safe_stop`` is sent after a print stopped)."""


def template_problems(profile: PrinterProfile) -> list[Problem]:
    """Every line of the profile's templates that a tablet job may not contain
    (:func:`line_refusal`, for the profile's ``flavor``).

    Each template is rendered for a job of one tool and for one of every tool, with
    sample values of the variables docs/formats.md lists. A template that does not render
    so is left to the compile (which renders it with the job's values and reads the whole
    program the same way).

    Returns
    -------
    list of Problem
        File: the profile; key ``templates``; the message names the template, the line it
        writes and why, e.g. ``…/start.gcode.j2 writes 'M92 E800' (line 3 of its output):
        M92 is not accepted: …``.
    """
    folder = Path(profile.templates_dir)
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(folder), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True, autoescape=False)
    found: dict[tuple[str, str], Problem] = {}
    for tools in sorted({1, profile.extruders}):
        context = _sample_context(profile, tools)
        for name, inside in _TEMPLATE_INSIDE_TABLET.items():
            file = f"{name}.gcode.j2"
            if not (folder / file).is_file():
                continue
            try:
                text = env.get_template(file).render(**context)
            except (jinja2.TemplateError, ArithmeticError, AttributeError, LookupError,
                    RecursionError, TypeError, ValueError):
                continue
            for number, line in enumerate(split_lines(text), start=1):
                why = line_refusal(line, profile.flavor, inside)
                if why is not None and (file, line) not in found:
                    found[file, line] = Problem(
                        profile.path or profile.id, "templates",
                        f"{folder / file} writes {line.strip()!r} (line {number} of its "
                        f"output): {why}")
    return list(found.values())


def _sample_context(profile: PrinterProfile, tools: int) -> dict[str, Any]:
    """Template variables (docs/formats.md) for a job of ``tools`` tools, sample values
    formatted as the G-code writer formats them."""
    nozzle = min(200.0, profile.max_nozzle_temp_c)
    bed = min(60.0, profile.max_bed_temp_c)
    rows = [{"tool": k, "formulation": "sample", "api": "sample",
             "nozzle_temp_c": f"{nozzle:g}",
             "standby_temp_c": f"{max(0.0, nozzle - profile.standby_delta_c):g}",
             "heater": "extruder" if k == 0 else f"extruder{k}", "bed_temp_c": bed}
            for k in range(tools)]
    limit = profile.min_extrude_temp_c
    if profile.lower_min_extrude_temp:
        limit = min(limit, nozzle - 10.0)
    return {
        "profile": profile, "tools": rows, "first_tool": 0, "bed_temp_c": f"{bed:g}",
        "extrusion": profile.extrusion, "park_xy_mm": ["10", "10"],
        "travel_feed_mm_min": f"{profile.travel_speed_mm_s * 60.0:.0f}",
        "min_extrude_temp_c": f"{limit:g}",
        "firmware_min_extrude_temp_c": f"{profile.min_extrude_temp_c:g}",
        "layer": 0, "z_mm": "0.2", "height_mm": "0.2",
        "old_tool": 0, "new_tool": tools - 1, "old": rows[0], "new": rows[-1],
    }
