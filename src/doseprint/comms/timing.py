"""How long the host may wait for each line's ``ok``: derived from the planned motion.

A firmware answers a move with ``ok`` once the move has entered its planner, which holds a
fixed number of moves (Marlin's ``BLOCK_BUFFER_SIZE``, 16 by default in
``Configuration_adv.h``). When the planner is full the move waits until the oldest queued
move has run, so its ``ok`` can be late by at most the longest of the moves queued ahead of
it, plus its own time when the firmware splits it into segments. ``M400`` waits for every
queued move, ``G4`` first does the same and then dwells (Marlin ``G4.cpp``:
``planner.synchronize()``), as does a Marlin tool change (``tool_change()``). Heating waits
(``M109``, ``M190``, ``M116``), homing, probing and user waits have no bound known to the
host: their wait is open (no ping while the firmware's ``busy:`` keep-alives and
temperature reports come), bounded only by the allowances of :func:`stall_limits`.

:func:`ok_budgets` turns a program and its planned per-command durations (from the motion
planner: the time each command adds to the printer's motion queue) into one allowance per
line. A line whose ``ok`` is later than its allowance is presumed lost, or its ``ok`` lost,
and the host checks with a ping (see :mod:`doseprint.comms.protocol`); a late ``ok`` that
was merely slow costs one harmless ``M105``.

That allowance only decides when to ask. :func:`stall_limits` sets the hard bound: how long
a line may go without its ``ok`` whatever else the printer sends. ``busy:`` keep-alives,
temperature reports and any other text show the link is alive, not that the line is
getting done, so a firmware stuck in a loop that keeps reporting, or a link at the wrong
baud rate that delivers noise, would otherwise hold a hot nozzle over a tablet for ever.
The bound is:

* for a line whose wait is planned (moves, dwells, quick commands): twice the no-answer
  timeout (the time a silent printer gets: the silence, a ping, the silence after it) plus
  :data:`STALL_FACTOR` times its planned allowance, so a printer running moves at a
  quarter of the planned speed (a feed-rate override of 25 %, a planner far off) still
  finishes them;
* for a heat-up (``M109``, ``M190``): twice the no-answer timeout plus a heat-up
  allowance from the set point, at rates well below any working heater's
  (:data:`NOZZLE_HEAT_RATE_C_S`, :data:`BED_HEAT_RATE_C_S`, from room temperature, plus a
  settling time); Marlin prints temperature reports and ``busy:`` lines meanwhile, which
  keep the no-answer clock from running out but not this one;
* for homing and probing: :data:`HOMING_S` and :data:`PROBING_S`;
* for anything else without a bound (user waits, chamber heat-ups, PID tuning, a site's
  macros): :data:`OPEN_WAIT_CAP_S`, which also caps every allowance above.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from doseprint.comms.replies import Flavor
from doseprint.gcode.tokens import command_word, parse_command

__all__ = [
    "AMBIENT_C",
    "BED_HEAT_BASE_S",
    "BED_HEAT_RATE_C_S",
    "HOMING_S",
    "MOVE_WORDS",
    "NOZZLE_HEAT_BASE_S",
    "NOZZLE_HEAT_RATE_C_S",
    "OK_FLOOR_S",
    "OPEN_WAIT_CAP_S",
    "OPEN_WORDS",
    "PLANNER_MOVES",
    "PROBING_S",
    "QUICK_WORDS",
    "STALL_FACTOR",
    "SYNC_RESET_WORDS",
    "dwell_s",
    "ok_budgets",
    "open_allowance_s",
    "stall_limits",
]

PLANNER_MOVES = 16
"""Moves a firmware's planner holds: Marlin's default ``BLOCK_BUFFER_SIZE``."""

OK_FLOOR_S = 0.5
"""Added to every allowance: the link's round trip and the host's and firmware's own delays."""

MOVE_WORDS = frozenset({"G0", "G1", "G2", "G3", "G5"})
"""Moves: answered once they are in the planner."""

QUICK_WORDS = frozenset(
    {
        "G20", "G21", "G90", "G91", "M73", "M75", "M76", "M77", "M82", "M83", "M104", "M105",
        "M106", "M107", "M110", "M114", "M115", "M117", "M118", "M140", "M141", "M155",
        "M201", "M203", "M204", "M205", "M220", "M221", "M302",
        "SET_HEATER_TEMPERATURE", "SET_FAN_SPEED", "SET_VELOCITY_LIMIT", "M112",
    }
)
"""Commands answered as soon as they run, without waiting for the moves queued ahead."""

OPEN_WORDS = frozenset(
    {
        "G28", "G29", "G30", "G33", "G34", "G35", "G80", "M0", "M1", "M109", "M116", "M190",
        "M191", "M192", "M193", "M226", "M303", "M600", "M601", "M1001",
        "TEMPERATURE_WAIT", "BED_MESH_CALIBRATE", "QUAD_GANTRY_LEVEL", "Z_TILT_ADJUST",
        "PROBE", "PAUSE",
    }
)
"""Commands whose ``ok`` has no bound known to the host (heating, homing, probing, users)."""

SYNC_RESET_WORDS = frozenset({"G28", "G29", "M400", "G4"})
"""Commands after whose ``ok`` the planner is empty (they wait for every queued move); a
Marlin tool change too. Other commands of unknown timing are allowed the whole queue ahead
of them but are not assumed to empty it."""


def _kind(word: str, flavor: Flavor) -> str:
    if word in MOVE_WORDS:
        return "move"
    if word in OPEN_WORDS:
        return "open"
    if word.startswith("T") and word[1:].isdigit():
        # Marlin changes tools itself (after the queued moves); Klipper and RepRapFirmware
        # run the site's macros (tpre/tpost, a T<n> gcode_macro), which may heat and wait.
        return "sync" if flavor == "marlin" else "open"
    if word in QUICK_WORDS:
        return "quick"
    if not (word[:1].isalpha() and word[1:].replace(".", "", 1).isdigit()):
        # An extended command or macro (Klipper): it may do anything.
        return "open"
    return "sync"


def ok_budgets(
    commands: Sequence[str],
    durations_s: Sequence[float],
    *,
    flavor: Flavor = "marlin",
    planner_moves: int = PLANNER_MOVES,
    floor_s: float = OK_FLOOR_S,
) -> list[float | None]:
    """The longest a host should wait for each command's ``ok``, from the planned motion.

    Parameters
    ----------
    commands : sequence of str
        The program's commands, without line numbers or checksums.
    durations_s : sequence of float
        For each command, the planned time it adds to the motion queue, s (a move's
        trapezoid, a ``G4`` dwell, 0 for the rest), as the motion planner gives it.
    flavor : {"marlin", "klipper", "reprapfirmware"}
        Decides whether a tool change is bounded (Marlin) or open (a site's macros).
    planner_moves : int
        Moves the firmware's planner holds.
    floor_s : float
        Added to every bounded allowance, s.

    Returns
    -------
    list of float or None
        One per command, s, counted from the moment the command is the oldest one awaiting
        its ``ok`` (sent, and every earlier command acknowledged); None where the wait is
        open (heating, homing, user waits, site macros).

    Raises
    ------
    ValueError
        ``durations_s`` is not one per command, or holds a negative or non-finite time.
    """
    if len(durations_s) != len(commands):
        raise ValueError(
            f"durations_s has {len(durations_s)} entries for {len(commands)} commands"
        )
    if planner_moves < 1 or floor_s < 0:
        raise ValueError("planner_moves must be at least 1 and floor_s not negative")
    queued: deque[float] = deque(maxlen=planner_moves)  # moves possibly still in the planner
    budgets: list[float | None] = []
    for command, duration in zip(commands, durations_s, strict=True):
        if not duration >= 0 or duration == float("inf"):
            raise ValueError(f"durations_s for {command!r} is {duration!r}, not a time")
        word = command_word(command)
        kind = _kind(word, flavor)
        if kind == "move":
            budgets.append(floor_s + max(queued, default=0.0) + duration)
            queued.append(duration)
        elif kind == "quick":
            budgets.append(floor_s)
        elif kind == "sync":
            budgets.append(floor_s + sum(queued) + duration)
        else:
            budgets.append(None)
        if word in SYNC_RESET_WORDS or (kind == "sync" and word.startswith("T")):
            queued.clear()
    return budgets


STALL_FACTOR = 4.0
"""A planned wait for an ``ok`` may run this many times over before the print is stopped:
moves at a quarter of the planned speed (Marlin's ``M220`` goes down to 10 %, but a
dose print run at a quarter of its speed is already one to look at)."""

AMBIENT_C = 20.0
"""Room temperature a heat-up allowance counts from, °C (a cold printer's heaters)."""

NOZZLE_HEAT_RATE_C_S = 0.5
"""Slowest heating of a hot end the allowance expects, °C/s. A working 30–40 W hot end
heats at 1.5–3 °C/s from cold; a third of the slowest of those is a failing heater."""

NOZZLE_HEAT_BASE_S = 60.0
"""Added to every hot-end heat-up: settling inside the firmware's window (Marlin's
``TEMP_RESIDENCY_TIME``, 10 s) and the last degrees' slow approach, s."""

BED_HEAT_RATE_C_S = 0.1
"""Slowest heating of a bed the allowance expects, °C/s. A 220 mm bed reaches 60 °C in
1–3 min (0.3–0.6 °C/s) and 100 °C in 4–8 min; a tenth of a degree per second leaves room
for a 12 V bed in a cold room."""

BED_HEAT_BASE_S = 120.0
"""Added to every bed heat-up (``TEMP_BED_RESIDENCY_TIME`` and the slow approach), s."""

MAX_NOZZLE_C = 300.0
"""The set point assumed where a command heats a nozzle without saying to what (a site's
tool-change macro on Klipper or RepRapFirmware), °C."""

HOMING_S = 180.0
"""Allowance for homing (``G28``) and a single probe, s: every axis at its slowest homing
feed rate with the bump, on a 250 mm axis, takes well under a minute."""

PROBING_S = 600.0
"""Allowance for a bed mesh or gantry levelling (``G29``, ``BED_MESH_CALIBRATE`` …), s."""

OPEN_WAIT_CAP_S = 1800.0
"""Allowance for every other wait with no bound known to the host (user waits such as
``M0``/``M600``, a chamber heat-up, PID tuning, a site's macros), and the cap of every
allowance, s: half an hour with a hot nozzle over an unfinished tablet is past anything a
dose print needs."""

_HOMING = frozenset({"G28", "G30", "PROBE"})
_PROBING = frozenset({"G29", "G33", "G34", "G35", "G80", "BED_MESH_CALIBRATE",
                      "QUAD_GANTRY_LEVEL", "Z_TILT_ADJUST"})


def dwell_s(command: str) -> float:
    """The dwell a ``G4`` asks for (``P`` ms, ``S`` s, as Marlin and RepRapFirmware read it),
    s; 0 for any other command or a malformed one."""
    if command_word(command) != "G4":
        return 0.0
    params = parse_command(command).params
    total = params.get("P", 0.0) / 1000.0 + params.get("S", 0.0)
    return total if math.isfinite(total) and total > 0 else 0.0


def _heat_up_s(target_c: float | None, base_s: float, rate_c_s: float) -> float:
    if target_c is None or not math.isfinite(target_c):
        return base_s
    return base_s + max(target_c - AMBIENT_C, 0.0) / rate_c_s


def open_allowance_s(command: str, flavor: Flavor = "marlin") -> float:
    """How long a command whose wait has no planned bound may take, s (see the module).

    Parameters
    ----------
    command : str
        One command, without line number or checksum.
    flavor : {"marlin", "klipper", "reprapfirmware"}
        On Klipper and RepRapFirmware a tool change runs the site's macros, which may heat.

    Returns
    -------
    float
        At most :data:`OPEN_WAIT_CAP_S`.
    """
    parsed = parse_command(command)
    word = parsed.word
    target = parsed.params.get("S", parsed.params.get("R"))
    if word == "M109":
        allowance = _heat_up_s(target, NOZZLE_HEAT_BASE_S, NOZZLE_HEAT_RATE_C_S)
    elif word == "M190":
        allowance = _heat_up_s(target, BED_HEAT_BASE_S, BED_HEAT_RATE_C_S)
    elif word in _HOMING:
        allowance = HOMING_S
    elif word in _PROBING:
        allowance = PROBING_S
    elif word.startswith("T") and word[1:].isdigit() and flavor != "marlin":
        allowance = HOMING_S + _heat_up_s(MAX_NOZZLE_C, NOZZLE_HEAT_BASE_S,
                                          NOZZLE_HEAT_RATE_C_S)
    else:
        allowance = OPEN_WAIT_CAP_S
    return min(allowance, OPEN_WAIT_CAP_S)


def stall_limits(
    commands: Sequence[str],
    durations_s: Sequence[float] | None,
    *,
    answer_timeout_s: float,
    flavor: Flavor = "marlin",
    planner_moves: int = PLANNER_MOVES,
    floor_s: float = OK_FLOOR_S,
) -> list[float]:
    """The longest each command may go without its ``ok``, whatever else the printer sends.

    Parameters
    ----------
    commands : sequence of str
        The program's commands.
    durations_s : sequence of float or None
        Planned durations as for :func:`ok_budgets`; None plans every command as taking no
        time but a ``G4``'s dwell.
    answer_timeout_s : float
        The no-answer timeout, s; twice it is added to every bound.
    flavor, planner_moves, floor_s
        As for :func:`ok_budgets`.

    Returns
    -------
    list of float
        One per command, s, counted from the moment the command is the oldest one awaiting
        its ``ok``: ``2 · answer_timeout_s`` plus :data:`STALL_FACTOR` times its
        :func:`ok_budgets` allowance, or plus :func:`open_allowance_s` where that is None.
    """
    if not (math.isfinite(answer_timeout_s) and answer_timeout_s > 0):
        raise ValueError(f"answer_timeout_s must be a positive time, not {answer_timeout_s!r}")
    if durations_s is None:
        durations_s = [dwell_s(command) for command in commands]
    budgets = ok_budgets(commands, durations_s, flavor=flavor, planner_moves=planner_moves,
                         floor_s=floor_s)
    grace = 2.0 * answer_timeout_s
    return [grace + (STALL_FACTOR * budget if budget is not None
                     else open_allowance_s(command, flavor))
            for command, budget in zip(commands, budgets, strict=True)]
