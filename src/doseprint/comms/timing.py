"""How long the host may wait for each line's ``ok``: derived from the planned motion.

A firmware answers a move with ``ok`` once the move has entered its planner, which holds a
fixed number of moves (Marlin's ``BLOCK_BUFFER_SIZE``, 16 by default in
``Configuration_adv.h``). When the planner is full the move waits until the oldest queued
move has run, so its ``ok`` can be late by at most the longest of the moves queued ahead of
it, plus its own time when the firmware splits it into segments. ``M400`` waits for every
queued move, ``G4`` first does the same and then dwells (Marlin ``G4.cpp``:
``planner.synchronize()``), as does a Marlin tool change (``tool_change()``). Heating waits
(``M109``, ``M190``, ``M116``), homing, probing and user waits have no bound known to the
host: their wait is open, kept alive by the firmware's ``busy:`` keep-alives and
temperature reports, and only the long no-answer timeout applies.

:func:`ok_budgets` turns a program and its planned per-command durations (from the motion
planner: the time each command adds to the printer's motion queue) into one allowance per
line. A line whose ``ok`` is later than its allowance is presumed lost, or its ``ok`` lost,
and the host checks with a ping (see :mod:`doseprint.comms.protocol`); a late ``ok`` that
was merely slow costs one harmless ``M105``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from doseprint.comms.replies import Flavor
from doseprint.gcode.tokens import command_word

__all__ = [
    "MOVE_WORDS",
    "OK_FLOOR_S",
    "OPEN_WORDS",
    "PLANNER_MOVES",
    "QUICK_WORDS",
    "SYNC_RESET_WORDS",
    "ok_budgets",
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
