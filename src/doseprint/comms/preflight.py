"""The pre-flight: before the first command of a job goes out, make sure the firmware has
every command the job uses.

A firmware that lacks a command skips it and says so (Marlin ``echo:Unknown command:
"T1"``, Klipper ``// Unknown command:"T1"``, RepRapFirmware ``Error: Bad command: T1``;
see :mod:`doseprint.comms.replies`). Skipping a tool change prints the next tablet with the
wrong drug; so after the handshake, each distinct command word of the job is sent once in
a form that does nothing harmful, and an unknown one refuses the job before anything of it
has run.

What is sent, per firmware (:func:`plan_preflight`):

* words every build of the firmware has (its core, listed below with the source that
  registers them) are not probed;
* Marlin: a tool change ``T<n>`` as ``T<n> S1`` (change tool, no move: Marlin
  ``gcode/control/T.cpp``), a set point without its ``S`` (``M140``, ``M141``, ``M104
  T<n>`` set nothing; the last checks that tool ``n`` exists,
  ``get_target_extruder_from_command``), ``M107`` for the fan commands, ``M302`` (reports
  the cold-extrusion setting);
* Klipper: ``HELP``, whose answer lists every extended command and ``gcode_macro`` the
  configuration defines (``GCodeDispatch.cmd_HELP``); a tool change ``T<n>`` exists only as
  a macro there;
* RepRapFirmware: ``G10 P<n>`` for tool ``n`` (reports the tool's offsets and
  temperatures, an error for a tool that is not defined: ``GCodes::SetOrReportOffsets``).

A word that is neither core nor has a harmless form is accepted only where every use comes
before the first ``;TABLET:`` section: an unknown command there stops the print (see
:class:`~doseprint.comms.protocol.MarlinProtocol`) before any tablet is touched. Anywhere
else the job is refused before the printer is contacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from doseprint.comms.framing import Program
from doseprint.comms.replies import Flavor
from doseprint.gcode.tokens import command_word, parse_command

__all__ = [
    "CORE_WORDS",
    "PreflightPlan",
    "Probe",
    "WordUse",
    "plan_preflight",
    "remedy",
    "word_uses",
]

_TOOL_WORD_RE = re.compile(r"^T(?P<tool>\d+)$")
_TOOL_NUMBER_RE = re.compile(r"[0-9]+\Z", re.ASCII)
"""The value of a ``T`` parameter that names a tool. No groups."""
_TRADITIONAL_RE = re.compile(r"^[A-Z]\d+(?:\.\d+)?$")

CORE_WORDS: dict[Flavor, frozenset[str]] = {
    # Marlin/src/gcode/gcode.cpp, process_parsed_command: cases compiled in every build that
    # drives an extruder and a hot end (HAS_EXTRUDERS, HAS_HOTEND); G21 is a no-op without
    # INCH_MODE_SUPPORT ("No error on unknown G21").
    "marlin": frozenset(
        {
            "G0", "G1", "G4", "G21", "G28", "G90", "G91", "G92", "M17", "M18", "M31", "M75",
            "M76", "M77", "M81", "M82", "M83", "M84", "M85", "M104", "M105", "M109", "M110",
            "M111", "M114", "M115", "M117", "M118", "M119", "M120", "M121", "M201", "M203",
            "M204", "M205", "M220", "M221", "M400",
        }
    ),
    # klippy/extras/gcode_move.py (G0 G1 G20 G21 G90 G91 G92 M82 M83 M220 M221),
    # klippy/toolhead.py (G4 M400 M204), klippy/extras/homing.py (G28),
    # klippy/kinematics/extruder.py (M104 M109), klippy/extras/heaters.py (M105),
    # klippy/extras/stepper_enable.py (M18 M84), klippy/gcode.py (M110 M112 M115).
    "klipper": frozenset(
        {
            "G0", "G1", "G4", "G20", "G21", "G28", "G90", "G91", "G92", "M18", "M82", "M83",
            "M84", "M104", "M105", "M109", "M110", "M112", "M114", "M115", "M204", "M220",
            "M221", "M400",
        }
    ),
    # src/GCodes/GCodes2.cpp: HandleGcode and HandleMcode implement these unconditionally
    # (G10 with P sets or reports a tool's temperatures, M568 likewise).
    "reprapfirmware": frozenset(
        {
            "G0", "G1", "G4", "G10", "G20", "G21", "G28", "G90", "G91", "G92", "M17", "M18",
            "M82", "M83", "M84", "M104", "M105", "M106", "M107", "M109", "M110", "M112",
            "M114", "M115", "M116", "M117", "M118", "M140", "M190", "M220", "M221", "M302",
            "M400", "M568",
        }
    ),
}
"""Command words every build of each firmware has: never probed."""


@dataclass(frozen=True)
class WordUse:
    """Where a job uses one command word.

    Attributes
    ----------
    word : str
        The command word (``T1``, ``M106``, ``ACTIVATE_EXTRUDER``).
    count : int
        How many commands use it.
    first_index : int
        Index (0-based) of the first command that uses it; it is sent as line ``N<i+1>``.
    first_source_line : int
        The job's G-code line (1-based) of that command.
    first_tablet_index : int or None
        Index of the first use inside a tablet's section, None if every use is outside.
    first_tablet : int or None
        That section's tablet.
    """

    word: str
    count: int
    first_index: int
    first_source_line: int
    first_tablet_index: int | None
    first_tablet: int | None

    def where(self, program: Program) -> str:
        """``line 812 of job.gcode (tablet 0), 16 uses``: for messages."""
        index = self.first_tablet_index if self.first_tablet_index is not None else self.first_index
        section = program.sections[index]
        inside = f" (tablet {section})" if section is not None else " (before any tablet)"
        uses = f", {self.count} uses" if self.count > 1 else ""
        return f"line {program.source_lines[index]} of job.gcode{inside}{uses}"


def word_uses(program: Program) -> dict[str, WordUse]:
    """Every distinct command word of a program, with where it is first used.

    A tool number given as a ``T`` parameter (``M104 T1 S200``) counts as a use of ``T1``
    too, since the firmware must have that tool.

    Parameters
    ----------
    program : Program

    Returns
    -------
    dict of str to WordUse
        In order of first use.
    """
    found: dict[str, list[int]] = {}
    for index, command in enumerate(program.commands):
        word = command_word(command)
        found.setdefault(word, []).append(index)
        if word in ("M104", "M109", "G10", "M116", "M568"):
            for letter, value in parse_command(command).words:
                if letter == "T" and _TOOL_NUMBER_RE.match(value):
                    found.setdefault(f"T{int(value)}", []).append(index)
    uses: dict[str, WordUse] = {}
    for word, indices in found.items():
        first = min(indices)
        inside = [i for i in indices if program.sections[i] is not None]
        first_inside = min(inside) if inside else None
        uses[word] = WordUse(
            word=word,
            count=len(indices),
            first_index=first,
            first_source_line=program.source_lines[first],
            first_tablet_index=first_inside,
            first_tablet=program.sections[first_inside] if first_inside is not None else None,
        )
    return dict(sorted(uses.items(), key=lambda item: item[1].first_index))


@dataclass(frozen=True)
class Probe:
    """One harmless command sent by the pre-flight.

    Attributes
    ----------
    command : str
        What is sent (unnumbered).
    words : tuple of str
        The job's words it vouches for; for Klipper's ``HELP``, every word that must be in
        its list.
    """

    command: str
    words: tuple[str, ...]

    @property
    def lists_commands(self) -> bool:
        """True for Klipper's ``HELP``: its answer is a list of commands to look words up in."""
        return self.command == "HELP"


@dataclass(frozen=True)
class PreflightPlan:
    """What the pre-flight sends and what it takes on trust.

    Attributes
    ----------
    flavor : Flavor
    program : Program
    uses : dict of str to WordUse
    probes : tuple of Probe
    core : tuple of str
        Words not probed because every build of the firmware has them.
    before_tablets : tuple of str
        Words with no harmless form, all of whose uses come before the first tablet.
    """

    flavor: Flavor
    program: Program
    uses: dict[str, WordUse]
    probes: tuple[Probe, ...]
    core: tuple[str, ...]
    before_tablets: tuple[str, ...]


def _marlin_probe(word: str) -> str | None:
    if _TOOL_WORD_RE.match(word):
        return f"{word} S1"
    return {
        "M140": "M140",
        "M190": "M140",
        "M141": "M141",
        "M191": "M141",
        "M106": "M107",
        "M107": "M107",
        "M302": "M302",
    }.get(word)


def _rrf_probe(word: str) -> str | None:
    if match := _TOOL_WORD_RE.match(word):
        return f"G10 P{int(match['tool'])}"
    return None


def plan_preflight(program: Program, flavor: Flavor) -> PreflightPlan:
    """Decide what the pre-flight sends for a program on a firmware family.

    Parameters
    ----------
    program : Program
        The job's commands with their sections
        (:func:`~doseprint.comms.framing.program_from_gcode`).
    flavor : {"marlin", "klipper", "reprapfirmware"}
        The printer profile's ``flavor``.

    Returns
    -------
    PreflightPlan

    Raises
    ------
    doseprint.errors.InputError
        A word with no harmless form and not in the firmware's core is used inside or after
        the first tablet's section (key ``job.gcode``), so an unknown command could only be
        found after tablets were printed.
    """
    from doseprint.errors import InputError, Problem

    uses = word_uses(program)
    core = CORE_WORDS[flavor]
    probes: dict[str, list[str]] = {}
    help_words: list[str] = []
    core_seen: list[str] = []
    before: list[str] = []
    problems: list[Problem] = []
    for word, use in uses.items():
        if word in core:
            core_seen.append(word)
            continue
        if flavor == "klipper":
            if _TOOL_WORD_RE.match(word) or not _TRADITIONAL_RE.match(word):
                help_words.append(word)
                continue
            probe = None
        elif flavor == "marlin":
            probe = _marlin_probe(word)
        else:
            probe = _rrf_probe(word)
        if probe is not None:
            probes.setdefault(probe, []).append(word)
        elif use.first_tablet_index is None:
            before.append(word)
        else:
            problems.append(
                Problem(
                    "job.gcode",
                    f"line {program.source_lines[use.first_tablet_index]}",
                    f"{word} is used inside tablet {use.first_tablet}'s section, and "
                    f"{_FIRMWARE_NAMES[flavor]} has no harmless form of it to check before "
                    "printing that the firmware has it",
                )
            )
    if problems:
        raise InputError(
            problems,
            hint="use a printer profile whose templates keep such commands in the start "
            "section (before the first ;TABLET: marker), where an unknown one stops the "
            "print before any tablet",
        )
    plan_probes = [Probe(command, tuple(words)) for command, words in probes.items()]
    if help_words:
        plan_probes.insert(0, Probe("HELP", tuple(help_words)))
    return PreflightPlan(
        flavor=flavor,
        program=program,
        uses=uses,
        probes=tuple(plan_probes),
        core=tuple(core_seen),
        before_tablets=tuple(before),
    )


_FIRMWARE_NAMES: dict[Flavor, str] = {
    "marlin": "Marlin",
    "klipper": "Klipper",
    "reprapfirmware": "RepRapFirmware",
}


def remedy(word: str, flavor: Flavor) -> str:
    """What a site must configure for its firmware to have ``word``.

    Parameters
    ----------
    word : str
    flavor : {"marlin", "klipper", "reprapfirmware"}

    Returns
    -------
    str
    """
    tool = _TOOL_WORD_RE.match(word)
    if flavor == "klipper":
        if tool is not None:
            n = int(tool["tool"])
            extruder = "extruder" if n == 0 else f"extruder{n}"
            return (
                f"Klipper has no built-in {word}: define [gcode_macro {word}] in printer.cfg "
                f"running ACTIVATE_EXTRUDER EXTRUDER={extruder} (docs/firmware.md), and an "
                f"[{extruder}] section for the tool"
            )
        return (
            f"add the printer.cfg section or [gcode_macro {word}] that provides {word}, or "
            "use a profile whose templates do not need it"
        )
    if flavor == "reprapfirmware":
        if tool is not None:
            return f"define tool {int(tool['tool'])} with M563 in config.g"
        return f"enable {word} in config.g, or use a profile whose templates do not need it"
    if tool is not None:
        return (
            f"the firmware was built with fewer extruders than tool {int(tool['tool'])} "
            "needs (EXTRUDERS in Configuration.h); use a profile with as many tools as the "
            "printer has"
        )
    return (
        f"the firmware was built without {word} (enable its feature in Configuration.h and "
        "flash it again), or use a profile whose templates do not need it"
    )
