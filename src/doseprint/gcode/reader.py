"""Read a G-code program back the way a printer runs it, and account its extrusion per tablet.

This is the reading side of job.md's dose rule: every E increment is added to the section
(``;TABLET:<i>`` or ``;TABLET:NONE``) and the tool that is active when it is fed, so the
dose of tablet *i* from tool *k* is the net filament length ``filament_mm[(i, k)]`` passed
through :func:`dose_mg`.

Decisions, where firmwares or the G-code dialects disagree
----------------------------------------------------------
The reader follows Marlin, and refuses (:class:`~doseprint.errors.InputError`, naming the
line) every line whose feed would differ on another supported firmware, because a dose
that depends on the firmware cannot be checked:

* **Start state.** The firmware's power-on state: absolute XYZ and E, E position 0, tool 0,
  every axis at 0 mm. A program should still set its modes and ``G92 E0`` itself.
* **Modes.** ``G90``/``G91`` set both the XYZ and the E mode, ``M82``/``M83`` only the E
  mode (Marlin). Klipper reads E as relative whenever ``G91`` or ``M83`` is in force and
  ignores ``G90``/``G91`` for E, so after ``M83 … G90`` or ``G91 … M82`` the two disagree;
  an E move in that state is refused unless the E position is 0 (then both feed the same).
* **Shared E.** The logical E position is one register shared by all tools (Marlin keeps it
  across ``T<k>``). Klipper's extruder activation restarts it at 0, and slicers such as Cura
  assume neither and restore per-tool values with ``G92 E``. So after a tool change the
  absolute E position is treated as unknown: an absolute E move before the next ``G92 E<v>``
  is refused. Relative E (``M83``) needs nothing after ``T<k>``. Either way the feed of a
  move is the difference of consecutive E targets (absolute) or the E word (relative).
* **Bare G92.** ``G92`` with no X, Y, Z or E: Marlin ignores it, Klipper zeroes every axis.
  Refused; name the axes (``G92 E0``).
* **Firmware retraction.** ``G10``/``G11`` feed lengths stored in the firmware
  (``M207``/``M208``), not in the program: refused. ``G10 P<k> S… R…`` is RepRapFirmware's
  tool-temperature form and is read as temperatures (``G10 L…`` is refused), for a
  RepRapFirmware job or one whose flavour is not named; on Marlin and Klipper any ``G10``
  is firmware retraction, refused.
* **Flow factor.** ``M221 S<percent>`` (``T<k>`` or ``D<k>`` names the tool, else the
  active one) is recorded, not applied: a flow calibration sets it so that the printer
  lays what the E values say, and the reading lists the factors in force while each tool
  extruded into tablets (``tablet_flow_percent``), for the caller to compare with the
  job's calibration. One set inside a tablet section is refused.
* **Every command accounted for.** Only the commands of the allow-list
  (:data:`doseprint.gcode.commands.COMMANDS`: what doseprint and the shipped templates
  write, and commands that feed, move and heat nothing, such as fans, messages, dwell)
  are accepted, each on the firmwares it is listed for when the caller names the
  flavour; speed and acceleration limits and motors off only outside tablet sections.
  Anything else is refused wherever it stands, naming the line and the command: ``M92``
  (steps per mm), ``M303`` (autotune), ``M141`` (chamber), ``M500``–``M502``, ``G29``,
  a command unknown to the list (:data:`~doseprint.gcode.commands.REFUSED` gives the
  reasons). Among the listed ones, ``M200`` that turns volumetric E on, ``G10`` that
  is not RepRapFirmware's ``G10 P<k>`` (firmware retraction), a ``SET_HEATER_TEMPERATURE``
  of a heater other than ``extruder<k>`` or ``heater_bed`` and sub-codes (``G1.5``) are
  refused too. So are a ``G20`` (inches), ``M600``/``M701``/``M702`` (filament change,
  load, unload), ``G5``/``G6``/``G26`` (moves the reader does not trace) and coordinate
  systems (``G53``–``G59``, ``M206``, ``M428``): none is on the list.
* **Plain lines.** Lines end at ``\\n`` or ``\\r`` (:func:`~doseprint.gcode.tokens.split_lines`,
  the split a print sends). A line holding a character another reader may end a line at
  (``\\x0b``, ``\\x0c``, ``\\x1c``–``\\x1e``, ``\\x85``, U+2028, U+2029), any other
  control but a tab, or a format character (U+200B, U+202E, U+FEFF …) is refused, naming
  the line (:func:`~doseprint.gcode.tokens.unsafe_character`): ``; note<U+2028>G1 E40``
  would otherwise be a comment here and a command there. A command (outside comments)
  holds ASCII only, but for the message of ``M117``.
* **Comments.** ``;`` to the end of the line and ``(...)`` are dropped, as are an ``N<n>``
  line number (signed, spaces after it or not) and a ``*<xor>`` checksum, by
  :mod:`doseprint.gcode.tokens`, which splits the commands a print sends too: the
  printer receives each command as read here. (Marlin drops ``(...)`` itself only when
  built with ``PAREN_COMMENTS``, Klipper refuses the line.)
* **Markers** start the line: ``;TABLET:<i>`` or ``;TABLET:NONE``, trailing whitespace
  allowed. Any other comment that begins like one (``; tablet: 3``, ``;TABLET:x``) is
  refused rather than skipped, so no extrusion lands in the wrong section unnoticed.
* **Cold extrusion.** ``M302 S<t>`` (Marlin, RepRapFirmware) sets the minimum extrusion
  temperature; the reading lists, per tool, the limits in force while it fed filament
  (``extrude_limits_c``, None for the firmware's own) for the caller to compare with the
  tool's temperature. ``M302 P1`` (and an empty ``P``, which Marlin reads as true) turns
  the check off and ``M302 S0`` does so on Marlin: both are refused. With the check off
  a nozzle that never heated, or whose heater failed, extrudes unmelted filament, which
  jams or under-feeds while every E value still claims the dose; with a low limit the
  firmware still stops that.
* **Not expanded.** Klipper macros and other extended commands are not expanded, so none
  is accepted but the listed ones: ``SET_HEATER_TEMPERATURE`` (read), ``TEMPERATURE_WAIT``
  (only waits), ``TURN_OFF_HEATERS``, ``SET_FAN_SPEED``, and outside tablets
  ``SET_VELOCITY_LIMIT`` and ``SET_PRESSURE_ADVANCE``. A macro (``PRINT_START``,
  ``END_PRINT`` …) is refused before, inside and after the tablets: it is printer.cfg code
  that may set the extrude factor, extrude or heat past every limit (job.md: no
  temperature command exceeds the limits, anywhere in the program), and a template can
  write its commands instead. ``T<k>`` is read as the tool change it is on every firmware
  (on Klipper, a macro of printer.cfg that runs ``ACTIVATE_EXTRUDER``);
  ``ACTIVATE_EXTRUDER`` written in the program is refused, since the job's readers take
  the tool from ``T<k>`` lines (job.md).

Bounds are in machine coordinates (``G92 X…`` offsets removed). ``G28`` puts the homed
axes (all, if none is named) at 0 mm and clears their ``G92`` offsets; the home point
itself is not a move. ``G2``/``G3`` arcs contribute their end point only, so an arc that
bulges beyond its end points is under-reported by at most its sagitta.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NoReturn, TypeAlias

from doseprint.errors import InputError
from doseprint.gcode.commands import REFUSED, command_refusal
from doseprint.gcode.tokens import (
    TABLET_MARKER_RE,
    Command,
    command_text,
    parse_command,
    split_lines,
    unsafe_character,
)
from doseprint.models.fields import describe_char
from doseprint.typed import Flavor

__all__ = ["GcodeReading", "dose_mg", "read_gcode", "read_gcode_file"]

SectionTool: TypeAlias = tuple[int | None, int]
"""(tablet index, or None for ``;TABLET:NONE`` and before the first marker; tool)."""

AxisBounds: TypeAlias = tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
"""((x_min, x_max), (y_min, y_max), (z_min, z_max)) in mm."""


@dataclass(frozen=True)
class GcodeReading:
    """What a G-code program feeds, heats and visits, as read by :func:`read_gcode`.

    Attributes
    ----------
    filament_mm : dict of (int or None, int) to float, mm
        Net filament length fed per (tablet index, tool); ``None`` is ``;TABLET:NONE`` and
        everything before the first marker. Retractions count negative. A key is present
        once any move of that tool in that section carries E, even if the net is 0.
    max_nozzle_temp_c : float, °C
        Largest nozzle target set anywhere (0.0 when none is set).
    max_bed_temp_c : float, °C
        Largest bed target set anywhere (0.0 when none is set).
    nozzle_temps_c : dict of int to float, °C
        Largest nozzle target per tool.
    bounds_mm : ((2,) float, (2,) float, (2,) float) or None, mm
        (min, max) of X, Y and Z over the end points of moves, in machine coordinates;
        None when no move names X, Y or Z.
    lines : int
        Lines read.
    tablets : frozenset of int
        Tablet indices whose ``;TABLET:<i>`` marker appears.
    tools_used : frozenset of int
        Tools that ran at least one move carrying E.
    moves : int
        ``G0``–``G3`` commands read.
    tablet_flow_percent : dict of int to frozenset of float, %
        Per tool, the ``M221`` flow factors in force while it extruded inside tablet
        sections (``{100.0}`` when none was set).
    extrude_limits_c : dict of int to frozenset of (float or None), °C
        Per tool, the minimum extrusion temperatures (``M302 S``) in force while it fed
        filament; None stands for the firmware's own, before any ``M302 S``.
    """

    filament_mm: dict[SectionTool, float]
    max_nozzle_temp_c: float
    max_bed_temp_c: float
    nozzle_temps_c: dict[int, float]
    bounds_mm: AxisBounds | None
    lines: int
    tablets: frozenset[int]
    tools_used: frozenset[int]
    moves: int
    tablet_flow_percent: dict[int, frozenset[float]] = field(default_factory=dict)
    extrude_limits_c: dict[int, frozenset[float | None]] = field(default_factory=dict)


# Line syntax: lines are split into commands and words by doseprint.gcode.tokens, the same
# code that splits the commands a print sends. Every pattern is ASCII-only so that, e.g.,
# Arabic-Indic digits are not numbers.

_MARKER_LIKE = re.compile(r"\s*;\s*TABLET\s*:", re.ASCII | re.IGNORECASE)
"""A comment meant as a marker; if it is not exact it is refused rather than skipped."""

_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)\Z", re.ASCII)
"""A decimal number as G-code writes it: no exponent, no inf/nan."""

_BARE_AXES = re.compile(r"[XYZE]\s*[-+.0-9]", re.ASCII)
"""A line that starts with an axis word and no command (a modal move on some firmwares)."""

_KLIPPER_EXTRUDER = re.compile(r"EXTRUDER([0-9]*)\Z", re.ASCII)
"""A Klipper extruder heater name; group 1 is the tool number ('' for tool 0)."""

def dose_mg(
    filament_mm: float, filament_diameter_mm: float, density_g_cm3: float, drug_loading: float
) -> float:
    """Drug mass carried by a length of filament.

    Parameters
    ----------
    filament_mm : float, mm
        Net filament length fed (a negative length gives a negative mass).
    filament_diameter_mm : float, mm
        Filament diameter.
    density_g_cm3 : float, g/cm³
        Formulation density; 1 g/cm³ is 1 mg/mm³.
    drug_loading : float, 0..1
        Mass fraction of the drug in the formulation.

    Returns
    -------
    float, mg
        ``filament_mm × π d² / 4 × density_g_cm3 × drug_loading``.
    """
    area_mm2 = math.pi * filament_diameter_mm**2 / 4.0
    return filament_mm * area_mm2 * density_g_cm3 * drug_loading


def read_gcode(
    lines: Iterable[str], *, source: str = "job.gcode", flavor: Flavor | None = None
) -> GcodeReading:
    """Read a G-code program as a printer runs it and account each extrusion to its section.

    Parameters
    ----------
    lines : iterable of str
        The program, one line per item, as :func:`~doseprint.gcode.tokens.split_lines`
        splits it (a line ending at the end of an item is allowed, none elsewhere).
    source : str
        Name used for the program in error messages.
    flavor : str or None
        The firmware the program is for (``marlin``, ``klipper``, ``reprapfirmware``):
        only its commands are accepted (:data:`~doseprint.gcode.commands.COMMANDS`).
        None accepts a command listed for any of them, and reads ``G10 P<k>`` as
        RepRapFirmware's tool temperatures.

    Returns
    -------
    GcodeReading
        Net filament per (tablet, tool), temperatures, bounds and counts.

    Raises
    ------
    InputError
        A line cannot be read, or its feed cannot be accounted (see the module docstring).
        The message names the source, the 1-based line number and the line, e.g.
        ``job.gcode: line 123 ('G1 X1..2'): cannot read X``.
    """
    reader = _Reader(source, flavor)
    for number, line in enumerate(lines, start=1):
        reader.read_line(number, line)
    return reader.result()


def read_gcode_file(
    path: str | os.PathLike[str], *, flavor: Flavor | None = None
) -> GcodeReading:
    """Read a G-code file with :func:`read_gcode`, its lines split by
    :func:`~doseprint.gcode.tokens.split_lines` (the split a print sends).

    Parameters
    ----------
    path : str or path-like
        The G-code file (UTF-8 or ASCII; undecodable bytes only matter inside commands).
    flavor : str or None
        As for :func:`read_gcode`.

    Returns
    -------
    GcodeReading
        As :func:`read_gcode`, with the path as the source in messages.

    Raises
    ------
    InputError
        The file cannot be opened, or a line cannot be read or accounted.
    """
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as stream:
            text = stream.read()
    except OSError as exc:
        message = f"cannot read the G-code file: {exc.strerror or exc}"
        raise InputError(message, file=source) from exc
    return read_gcode(split_lines(text), source=source, flavor=flavor)


class _Reader:
    """The machine state while a program is read, one line at a time."""

    def __init__(self, source: str, flavor: Flavor | None = None) -> None:
        self.source = source
        self.flavor = flavor
        self.line_number = 0
        self.line_text = ""
        # Where extrusion goes.
        self.section: int | None = None
        self.tool = 0
        self.tablets: set[int] = set()
        self.tools_used: set[int] = set()
        self.filament_mm: dict[SectionTool, float] = {}
        self.flow_percent: dict[int, float] = {}
        self.tablet_flow: dict[int, set[float]] = {}
        # Cold extrusion: the M302 S limit in force (None: the firmware's own).
        self.extrude_limit_c: float | None = None
        self.extrude_limits: dict[int, set[float | None]] = {}
        # Modes. XYZ relativity is the same on every firmware; E relativity is kept twice,
        # once as Marlin sets it and once as Klipper's absolute_extrude flag.
        self.xyz_relative = False
        self.marlin_e_relative = False
        self.klipper_absolute_extrude = True
        # Logical E position in mm; None when firmwares disagree on it (after a tool change).
        self.e_mm: float | None = 0.0
        self.e_unknown_because = ""
        # Machine position and G92 offsets, logical = machine + offset, in mm.
        self.machine_mm = [0.0, 0.0, 0.0]
        self.offset_mm = [0.0, 0.0, 0.0]
        self.low_mm = [math.inf, math.inf, math.inf]
        self.high_mm = [-math.inf, -math.inf, -math.inf]
        self.moves = 0
        # Temperature targets in °C.
        self.nozzle_temps_c: dict[int, float] = {}
        self.max_nozzle_temp_c = 0.0
        self.max_bed_temp_c = 0.0

    # Line handling

    def read_line(self, number: int, line: str) -> None:
        """Read one line: a marker, a command, or nothing (blank or comment)."""
        self.line_number = number
        # One line ending may close the item; any other control or separator is refused.
        if line.endswith("\r\n"):
            line = line[:-2]
        elif line.endswith(("\n", "\r")):
            line = line[:-1]
        self.line_text = line
        unsafe = unsafe_character(line)
        if unsafe is not None:
            column, char = unsafe
            self._fail(f"holds {describe_char(char)} at column {column + 1}: some readers "
                       "end a line there and firmwares do not, so what follows could run "
                       "unchecked (or be checked and not run); a G-code program holds "
                       "plain lines")
        if _MARKER_LIKE.match(line):
            marker = TABLET_MARKER_RE.match(line)
            if marker is None:
                self._fail("a tablet marker must read exactly ';TABLET:<index>' or ';TABLET:NONE'")
            index = marker["index"]
            self.section = None if index is None else int(index)
            if self.section is not None:
                self.tablets.add(self.section)
            return
        code = command_text(line)
        if code:
            self._read_code(parse_command(code))

    def _read_code(self, command: Command) -> None:
        if not command.is_classic:
            self._read_other(command)
            return
        key, sub = command.base, command.subcode
        if key[0] == "T" and sub is not None:
            self._fail("cannot read the tool number")
        self._check_allowed(command)
        if key[0] == "T":
            self._select_tool(int(key[1:]))
            return
        handler = _HANDLERS.get(key)
        if handler is None:
            return  # on the list, and neither feeds, moves nor heats (M106, G4, M117 …)
        handler(self, self._words(command))

    def _check_allowed(self, command: Command) -> None:
        """Refuse a command that is not on the list (doseprint.gcode.commands) here."""
        refusal = command_refusal(command, self.flavor, self.section is not None)
        if refusal is not None:
            self._fail(refusal)

    def _read_other(self, command: Command) -> None:
        first = command.word
        if first.startswith("T") and (len(first) <= 2 or first[1] in "-+.?"):
            self._fail("cannot read the tool number")  # T-1, T?, Tx, Tc: no tool to account to
        if _BARE_AXES.match(command.text.upper()):
            self._fail("axis words without a command (a modal move on some firmwares only)")
        self._check_allowed(command)  # macros are not expanded (see the module docstring)
        if first == "SET_HEATER_TEMPERATURE":
            self._set_heater_temperature(command)

    def _words(self, command: Command) -> dict[str, str]:
        """A command's parameter words as {letter: raw value}; values are checked when read."""
        words: dict[str, str] = {}
        for letter, value in command.words:
            if not letter:
                self._fail(f"cannot read {command.args.strip()!r}")
            if letter in words:
                self._fail(f"{letter} is given twice")
            words[letter] = value
        return words

    # Parameter parsing helpers

    def _number(self, words: dict[str, str], letter: str) -> float | None:
        text = words.get(letter)
        if text is None:
            return None
        if not _NUMBER.match(text):
            self._fail(f"cannot read {letter}")
        return float(text)

    def _numbers(self, words: dict[str, str], letter: str) -> list[float]:
        """A value that may be a ':'-separated list (RepRapFirmware's per-heater values)."""
        text = words.get(letter)
        if text is None:
            return []
        parts = text.split(":")
        if not all(_NUMBER.match(part) for part in parts):
            self._fail(f"cannot read {letter}")
        return [float(part) for part in parts]

    def _tool_word(self, words: dict[str, str], letter: str) -> int | None:
        text = words.get(letter)
        if text is None:
            return None
        if not text.isdigit() or not text.isascii():
            self._fail(f"cannot read {letter}")
        return int(text)

    def _fail(self, message: str) -> NoReturn:
        where = f"line {self.line_number} ({self.line_text.strip()!r})"
        raise InputError(message, file=self.source, key=where)

    # Extrusion and tools

    def _select_tool(self, tool: int) -> None:
        if tool == self.tool:
            return
        self.tool = tool
        # Marlin keeps the logical E, Klipper restarts it at 0, others keep one per tool.
        self.e_mm = None
        self.e_unknown_because = f"after T{tool} firmwares disagree on the E position"

    def _extrude(self, e_word: float) -> None:
        marlin_relative = self.marlin_e_relative
        klipper_relative = self.xyz_relative or not self.klipper_absolute_extrude
        # With the E position at 0 a relative and an absolute reading feed the same length.
        if marlin_relative != klipper_relative and self.e_mm != 0.0:
            self._fail(
                "E is relative on some firmwares and absolute on others here "
                "(Marlin: G90/G91 also set the E mode; Klipper: only M82/M83 do, and G91 "
                "makes E relative); write M82 or M83 after every G90/G91"
            )
        if marlin_relative:
            feed_mm = e_word
            if self.e_mm is not None:
                self.e_mm += e_word
        else:
            if self.e_mm is None:
                self._fail(
                    f"absolute E move, but {self.e_unknown_because}; set it with G92 E first"
                )
            # The feed is the step from the previous E target to this one.
            feed_mm = e_word - self.e_mm
            self.e_mm = e_word
        key = (self.section, self.tool)
        self.filament_mm[key] = self.filament_mm.get(key, 0.0) + feed_mm
        self.tools_used.add(self.tool)
        if feed_mm != 0.0:
            self.extrude_limits.setdefault(self.tool, set()).add(self.extrude_limit_c)
        if self.section is not None:
            self.tablet_flow.setdefault(self.tool, set()).add(
                self.flow_percent.get(self.tool, 100.0))

    # Command handlers, registered in _HANDLERS below

    def _cmd_G1(self, words: dict[str, str]) -> None:
        """G0/G1/G2/G3: move to X Y Z (end point only for arcs) while feeding E."""
        for letter in words:
            self._number(words, letter)  # every word of a move must be a number
        self.moves += 1
        moved = False
        for axis, letter in enumerate("XYZ"):
            value = self._number(words, letter)
            if value is None:
                continue
            moved = True
            if self.xyz_relative:
                self.machine_mm[axis] += value
            else:
                self.machine_mm[axis] = value - self.offset_mm[axis]
        if moved:
            for axis in range(3):
                self.low_mm[axis] = min(self.low_mm[axis], self.machine_mm[axis])
                self.high_mm[axis] = max(self.high_mm[axis], self.machine_mm[axis])
        e_word = self._number(words, "E")
        if e_word is not None:
            self._extrude(e_word)

    def _cmd_G10(self, words: dict[str, str]) -> None:
        """G10: RepRapFirmware tool temperatures with P; otherwise firmware retraction."""
        if "L" in words:
            self._fail("G10 L sets coordinate systems, which are not read")
        tool = self._tool_word(words, "P")
        if tool is None:
            self._fail(f"G10 is not accepted: {REFUSED['G10']}")
        for temp_c in self._numbers(words, "S") + self._numbers(words, "R"):
            self._set_nozzle(tool, temp_c)

    def _cmd_G28(self, words: dict[str, str]) -> None:
        """G28: home the named axes (all if none) to 0 mm and clear their G92 offsets."""
        named = [axis for axis, letter in enumerate("XYZ") if letter in words]
        for axis in named or [0, 1, 2]:
            self.machine_mm[axis] = 0.0
            self.offset_mm[axis] = 0.0

    def _cmd_G90(self, words: dict[str, str]) -> None:
        """G90: absolute XYZ; in Marlin also absolute E."""
        self.xyz_relative = False
        self.marlin_e_relative = False

    def _cmd_G91(self, words: dict[str, str]) -> None:
        """G91: relative XYZ; in Marlin also relative E."""
        self.xyz_relative = True
        self.marlin_e_relative = True

    def _cmd_G92(self, words: dict[str, str]) -> None:
        """G92: set the logical position of the named axes without moving."""
        if not any(letter in words for letter in "XYZE"):
            self._fail("G92 without axes: Marlin ignores it, Klipper zeroes every axis; "
                       "name the axes, e.g. G92 E0")
        for axis, letter in enumerate("XYZ"):
            value = self._number(words, letter)
            if value is not None:
                self.offset_mm[axis] = value - self.machine_mm[axis]
        e_word = self._number(words, "E")
        if e_word is not None:
            self.e_mm = e_word

    def _cmd_M82(self, words: dict[str, str]) -> None:
        """M82: absolute E."""
        self.marlin_e_relative = False
        self.klipper_absolute_extrude = True

    def _cmd_M83(self, words: dict[str, str]) -> None:
        """M83: relative E."""
        self.marlin_e_relative = True
        self.klipper_absolute_extrude = False

    def _cmd_M104(self, words: dict[str, str]) -> None:
        """M104/M109: nozzle target S, R or autotemp B for tool T, else the active tool."""
        tool = self._tool_word(words, "T")
        for letter in "SRB":
            temp_c = self._number(words, letter)
            if temp_c is not None:
                self._set_nozzle(self.tool if tool is None else tool, temp_c)

    def _cmd_M140(self, words: dict[str, str]) -> None:
        """M140/M190: bed target S (or R)."""
        for letter in "SR":
            temp_c = self._number(words, letter)
            if temp_c is not None:
                self.max_bed_temp_c = max(self.max_bed_temp_c, temp_c)

    def _cmd_M200(self, words: dict[str, str]) -> None:
        """M200: refuse volumetric E (E in mm³ instead of mm of filament)."""
        enable = self._number(words, "S")
        diameter_mm = self._number(words, "D")
        if enable is not None:
            on = enable != 0.0
        else:
            on = diameter_mm is not None and diameter_mm != 0.0
        if on:
            self._fail("volumetric extrusion (M200) is not read; E must be mm of filament")

    def _cmd_M221(self, words: dict[str, str]) -> None:
        """M221: a tool's flow factor, recorded (see the module's notes)."""
        percent = self._number(words, "S")
        if percent is None:
            return
        if self.section is not None:
            self._fail("a flow factor (M221) set inside a tablet section changes part of "
                       "that tablet's dose behind the E values")
        if not 0.0 < percent <= 1000.0:
            self._fail(f"flow factor {percent:g} % is not a plausible percentage")
        tool = self._tool_word(words, "T")
        if tool is None:
            tool = self._tool_word(words, "D")
        self.flow_percent[self.tool if tool is None else tool] = percent

    def _cmd_M302(self, words: dict[str, str]) -> None:
        """M302: the minimum extrusion temperature S; refuse turning the check off."""
        if "P" in words:
            allow = words["P"]
            if allow == "" or self._number(words, "P") != 0.0:
                self._fail("M302 P1 lets the firmware extrude at any temperature, so a cold "
                           "nozzle feeds unmelted filament with no error; lower the limit "
                           "with M302 S<t> instead")
        limit_c = self._number(words, "S")
        if limit_c is not None:
            if limit_c <= 0.0:
                self._fail("M302 S0 turns Marlin's cold extrusion check off, so a cold "
                           "nozzle feeds unmelted filament with no error; give the lowest "
                           "temperature the job may extrude at")
            self.extrude_limit_c = limit_c
        self._number(words, "R")  # RepRapFirmware's retraction minimum: a number

    def _cmd_M568(self, words: dict[str, str]) -> None:
        """M568 (RepRapFirmware): tool P (else the active tool) temperatures S and R."""
        tool = self._tool_word(words, "P")
        for temp_c in self._numbers(words, "S") + self._numbers(words, "R"):
            self._set_nozzle(self.tool if tool is None else tool, temp_c)

    def _set_heater_temperature(self, command: Command) -> None:
        """Klipper's SET_HEATER_TEMPERATURE HEATER=<name> TARGET=<°C> (TARGET defaults to 0)."""
        values = command.extended
        target = values.get("TARGET", "0")
        if not _NUMBER.match(target):
            self._fail("cannot read TARGET")
        temp_c = float(target)
        heater = values.get("HEATER", "").upper()
        extruder = _KLIPPER_EXTRUDER.match(heater)
        if extruder is not None:
            self._set_nozzle(int(extruder[1] or "0"), temp_c)
        elif heater == "HEATER_BED":
            self.max_bed_temp_c = max(self.max_bed_temp_c, temp_c)
        else:
            self._fail("only the heaters extruder<k> and heater_bed are read, so this "
                       "temperature cannot be checked against any limit")

    def _set_nozzle(self, tool: int, temp_c: float) -> None:
        self.nozzle_temps_c[tool] = max(self.nozzle_temps_c.get(tool, temp_c), temp_c)
        self.max_nozzle_temp_c = max(self.max_nozzle_temp_c, temp_c)

    # Result

    def result(self) -> GcodeReading:
        bounds: AxisBounds | None = None
        if self.low_mm[0] <= self.high_mm[0]:
            bounds = (
                (self.low_mm[0], self.high_mm[0]),
                (self.low_mm[1], self.high_mm[1]),
                (self.low_mm[2], self.high_mm[2]),
            )
        return GcodeReading(
            filament_mm=dict(self.filament_mm),
            max_nozzle_temp_c=self.max_nozzle_temp_c,
            max_bed_temp_c=self.max_bed_temp_c,
            nozzle_temps_c=dict(self.nozzle_temps_c),
            bounds_mm=bounds,
            lines=self.line_number,
            tablets=frozenset(self.tablets),
            tools_used=frozenset(self.tools_used),
            moves=self.moves,
            tablet_flow_percent={k: frozenset(v) for k, v in self.tablet_flow.items()},
            extrude_limits_c={k: frozenset(v) for k, v in self.extrude_limits.items()},
        )


_HANDLERS: dict[str, Callable[[_Reader, dict[str, str]], None]] = {
    "G0": _Reader._cmd_G1,
    "G1": _Reader._cmd_G1,
    "G2": _Reader._cmd_G1,
    "G3": _Reader._cmd_G1,
    "G10": _Reader._cmd_G10,
    "G28": _Reader._cmd_G28,
    "G90": _Reader._cmd_G90,
    "G91": _Reader._cmd_G91,
    "G92": _Reader._cmd_G92,
    "M82": _Reader._cmd_M82,
    "M83": _Reader._cmd_M83,
    "M104": _Reader._cmd_M104,
    "M109": _Reader._cmd_M104,
    "M140": _Reader._cmd_M140,
    "M190": _Reader._cmd_M140,
    "M200": _Reader._cmd_M200,
    "M221": _Reader._cmd_M221,
    "M302": _Reader._cmd_M302,
    "M568": _Reader._cmd_M568,
}
"""Commands the reader acts on; any other command of the allow-list
(:data:`doseprint.gcode.commands.COMMANDS`) neither feeds, moves nor heats."""
