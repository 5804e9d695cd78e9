"""Plan a program's moves as a printer's firmware does, for its duration.

A constant-speed estimate (distance / feed rate) runs 7–30 % short of a real printer,
because every move accelerates and decelerates and corners are taken slowly. This module
plans the moves the way Klipper's toolhead does, which is also the shape of Marlin's
planner:

* each move is a trapezoid in velocity: accelerate at ``a``, cruise, decelerate at ``a``,
  so a move of length ``d`` that reaches its speed ``v`` takes ``d/v + v/a`` from rest to
  rest, and one too short to reach it a triangle of ``2·sqrt(d/a)``;
* the speed through a junction between two moves is limited by the *square corner
  velocity* ``v_sc``: the junction deviation ``δ = v_sc²·(√2 − 1)/a`` defines a circle
  tangent to both moves, and the junction is taken at the centripetal speed
  ``v² = a·δ·sin(θ/2)/(1 − sin(θ/2))`` (θ the angle between the moves' directions
  reversed), never faster than a quarter of either move's length allows for that circle;
  a change of extrusion rate across the junction limits it to the extruder's
  instantaneous corner velocity (1 mm/s) divided by the change in extrusion ratio;
* a look-ahead pass backwards from the next full stop finds the fastest junction speeds
  the decelerations allow, and a forward pass the cruise speeds; *minimum cruise ratio*
  (0.5) keeps a move from being all acceleration and deceleration by planning its peak
  with a pseudo-acceleration ``a·(1 − 0.5)``;
* a move with Z is limited to the Z axis's speed and acceleration in proportion to its
  Z component; an extrude-only move (a retraction) to the extruder's own limits;
* dwells (``G4``), ``M400``, homing, temperature waits and tool changes bring the
  machine to a stop (the look-ahead is flushed), and a dwell adds its time.

The rules and their constants are those documented in Klipper's ``docs/Kinematics.md``
and ``docs/Config_Reference.md`` (square_corner_velocity, minimum_cruise_ratio,
instantaneous_corner_velocity, max_extrude_only_velocity); the tests check this planner
against Klipper's own host planning the shipped examples, and against closed-form
trapezoids.

:func:`plan_commands` returns every command's share of the motion time, which is also
what the print streamer needs to know how long an answer may take.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from doseprint.gcode.tokens import Command, parse_command
from doseprint.models.printer import PrinterProfile

__all__ = ["MotionLimits", "MotionPlan", "motion_limits", "plan_commands"]

INSTANTANEOUS_CORNER_VELOCITY_MM_S = 1.0
"""Klipper's default ``instantaneous_corner_velocity`` of an extruder, mm/s."""

MINIMUM_CRUISE_RATIO = 0.5
"""Klipper's default ``minimum_cruise_ratio``: a move cruises for at least half its length
where it can, so its peak is planned with ``a·(1 − 0.5)``."""

DEFAULT_SPEED_MM_S = 25.0
"""Speed of a move before any ``F`` was given (Klipper's gcode_move default)."""

STOPPING_COMMANDS = frozenset({
    "G4", "G28", "G29", "M400", "M109", "M190", "M116", "TEMPERATURE_WAIT",
    "ACTIVATE_EXTRUDER",
})
"""Commands that wait for every planned move to finish (and ``T<n>``, a tool change)."""

_HUGE_V2 = 1e18
"""A squared speed no limit reaches (an unlimited junction), (mm/s)²."""

_EPS_MM = 1e-9
"""Moves shorter than this (in XYZ) are extrude-only, as in the firmware, mm."""


@dataclass(frozen=True)
class MotionLimits:
    """A printer's motion limits, as its firmware is set.

    Attributes
    ----------
    max_velocity_mm_s : float
        No move goes faster (Klipper ``max_velocity``).
    max_accel_mm_s2 : float
        XY(Z) acceleration (``max_accel``).
    square_corner_velocity_mm_s : float
        Speed through a 90° corner (``square_corner_velocity``).
    max_z_velocity_mm_s, max_z_accel_mm_s2 : float
        Limits of the Z axis; a move with Z is scaled by its Z share.
    max_extrude_only_velocity_mm_s, max_extrude_only_accel_mm_s2 : float
        Filament limits of an extrude-only move (a retraction or its recovery).
    instantaneous_corner_velocity_mm_s : float
        Extruder speed change allowed at a junction, mm/s of filament.
    minimum_cruise_ratio : float
        Share of a move the planner keeps for cruising where it can, 0..1.
    """

    max_velocity_mm_s: float
    max_accel_mm_s2: float
    square_corner_velocity_mm_s: float
    max_z_velocity_mm_s: float
    max_z_accel_mm_s2: float
    max_extrude_only_velocity_mm_s: float
    max_extrude_only_accel_mm_s2: float
    instantaneous_corner_velocity_mm_s: float = INSTANTANEOUS_CORNER_VELOCITY_MM_S
    minimum_cruise_ratio: float = MINIMUM_CRUISE_RATIO

    @property
    def junction_deviation_mm(self) -> float:
        """δ = v_sc²·(√2 − 1)/a: the cornering circle's distance from the corner, mm."""
        return self.square_corner_velocity_mm_s**2 * (math.sqrt(2.0) - 1.0) / self.max_accel_mm_s2


def motion_limits(profile: PrinterProfile) -> MotionLimits:
    """The motion limits a printer profile states (docs/formats.md, printer profile).

    The top speed is the profile's fastest (travel) speed; the extrude-only limits, when
    the profile leaves them out, follow Klipper's default: the XY limits times the ratio
    of the largest bead cross-section (4·nozzle²) to the filament's.

    Parameters
    ----------
    profile : PrinterProfile

    Returns
    -------
    MotionLimits
    """
    top = max(profile.travel_speed_mm_s, profile.print_speed_mm_s)
    filament_area = math.pi * profile.filament_diameter_mm**2 / 4.0
    ratio = 4.0 * profile.nozzle_diameter_mm**2 / filament_area
    e_speed = profile.max_extrude_only_speed_mm_s
    e_accel = profile.max_extrude_only_acceleration_mm_s2
    return MotionLimits(
        max_velocity_mm_s=top,
        max_accel_mm_s2=profile.acceleration_mm_s2,
        square_corner_velocity_mm_s=profile.square_corner_velocity_mm_s,
        max_z_velocity_mm_s=profile.max_z_speed_mm_s,
        max_z_accel_mm_s2=profile.max_z_acceleration_mm_s2,
        max_extrude_only_velocity_mm_s=e_speed if e_speed is not None else top * ratio,
        max_extrude_only_accel_mm_s2=(e_accel if e_accel is not None
                                      else profile.acceleration_mm_s2 * ratio),
    )


@dataclass(frozen=True)
class MotionPlan:
    """A program's planned motion.

    Attributes
    ----------
    durations_s : tuple of float, s
        Per command, in order: the time its move takes as planned (accelerating, cruising
        and decelerating), or its dwell; 0 for commands that do not move.
    motion_s : float, s
        Their sum: the program's motion time, heating and homing excluded.
    moves : int
        Moves planned (commands that moved an axis or the filament).
    """

    durations_s: tuple[float, ...]
    motion_s: float
    moves: int


class _Move:
    """One planned move: its geometry, its limits, and after planning its three phases."""

    __slots__ = ("accel", "accel_t", "axes_r", "command", "cruise_t", "decel_t", "delta_v2",
                 "is_kinematic", "length", "max_cruise_v2", "max_mcr_start_v2", "max_start_v2",
                 "mcr_delta_v2", "next_junction_v2")

    def __init__(self, command: int, axes_d: tuple[float, float, float, float], speed: float,
                 limits: MotionLimits) -> None:
        self.command = command
        xyz = math.sqrt(axes_d[0] ** 2 + axes_d[1] ** 2 + axes_d[2] ** 2)
        self.is_kinematic = xyz >= _EPS_MM
        if self.is_kinematic:
            self.length = xyz
            velocity = min(speed, limits.max_velocity_mm_s)
            self.accel = limits.max_accel_mm_s2
        else:
            # Extrude only: its length is the filament's, its limits the extruder's.
            self.length = abs(axes_d[3])
            velocity = speed
            self.accel = math.inf
        inv = 1.0 / self.length
        self.axes_r = (axes_d[0] * inv, axes_d[1] * inv, axes_d[2] * inv, axes_d[3] * inv)
        self.max_cruise_v2 = velocity**2
        self.max_start_v2 = 0.0
        self.max_mcr_start_v2 = 0.0
        self.next_junction_v2 = _HUGE_V2
        mcr_accel = limits.max_accel_mm_s2 * (1.0 - limits.minimum_cruise_ratio)
        self.delta_v2 = 2.0 * self.length * self.accel
        self.mcr_delta_v2 = 2.0 * self.length * mcr_accel
        if self.is_kinematic and axes_d[2]:
            # The Z axis is slower: scale its limits by the move's length per Z mm.
            z_ratio = self.length / abs(axes_d[2])
            self._limit(limits.max_z_velocity_mm_s * z_ratio, limits.max_z_accel_mm_s2 * z_ratio)
        if axes_d[3] and (not self.is_kinematic or not (axes_d[0] or axes_d[1])
                          or self.axes_r[3] < 0.0):
            # Extrude-only (or a retracting) move: the filament's own limits.
            inv_r = 1.0 / abs(self.axes_r[3])
            self._limit(limits.max_extrude_only_velocity_mm_s * inv_r,
                        limits.max_extrude_only_accel_mm_s2 * inv_r)
        self.accel_t = self.cruise_t = self.decel_t = 0.0

    def _limit(self, speed: float, accel: float) -> None:
        self.max_cruise_v2 = min(self.max_cruise_v2, speed**2)
        self.accel = min(self.accel, accel)
        self.delta_v2 = 2.0 * self.length * self.accel
        self.mcr_delta_v2 = min(self.mcr_delta_v2, self.delta_v2)

    def join(self, prev: _Move, limits: MotionLimits) -> None:
        """Limit this move's start speed by the junction with the previous one."""
        if not self.is_kinematic or not prev.is_kinematic:
            return
        start_v2 = min(self.max_cruise_v2, prev.max_cruise_v2, prev.next_junction_v2,
                       prev.max_start_v2 + prev.delta_v2)
        d_er = self.axes_r[3] - prev.axes_r[3]
        if d_er:
            # The extruder's speed jumps at the junction: at most its corner velocity.
            start_v2 = min(start_v2, (limits.instantaneous_corner_velocity_mm_s / abs(d_er)) ** 2)
        # Cornering: the angle between this direction and the previous one reversed.
        cos_theta = -(self.axes_r[0] * prev.axes_r[0] + self.axes_r[1] * prev.axes_r[1]
                      + self.axes_r[2] * prev.axes_r[2])
        sin_half = math.sqrt(max(0.5 * (1.0 - cos_theta), 0.0))
        cos_half = math.sqrt(max(0.5 * (1.0 + cos_theta), 0.0))
        if sin_half < 1.0 and cos_half > 0.0:
            r_jd = sin_half / (1.0 - sin_half)
            jd = limits.junction_deviation_mm
            quarter_tan = 0.25 * sin_half / cos_half
            start_v2 = min(start_v2, r_jd * jd * self.accel, r_jd * jd * prev.accel,
                           self.delta_v2 * quarter_tan, prev.delta_v2 * quarter_tan)
        self.max_start_v2 = start_v2
        self.max_mcr_start_v2 = min(start_v2, prev.max_mcr_start_v2 + prev.mcr_delta_v2)

    def set_phases(self, start_v2: float, cruise_v2: float, end_v2: float) -> None:
        """Fix the trapezoid: time to accelerate, cruise and decelerate."""
        half_inv_accel = 0.5 / self.accel if math.isfinite(self.accel) else 0.0
        accel_d = (cruise_v2 - start_v2) * half_inv_accel
        decel_d = (cruise_v2 - end_v2) * half_inv_accel
        cruise_d = self.length - accel_d - decel_d
        start_v, cruise_v, end_v = math.sqrt(start_v2), math.sqrt(cruise_v2), math.sqrt(end_v2)
        self.accel_t = accel_d / ((start_v + cruise_v) * 0.5) if accel_d else 0.0
        self.cruise_t = cruise_d / cruise_v
        self.decel_t = decel_d / ((end_v + cruise_v) * 0.5) if decel_d else 0.0

    @property
    def duration_s(self) -> float:
        return self.accel_t + self.cruise_t + self.decel_t


def _plan_to_stop(queue: list[_Move]) -> None:
    """Plan queued moves so that the last one ends at rest (a full look-ahead flush).

    Backwards: the fastest each move may start so that everything after it can still
    stop, and where a move may accelerate, its peak (planned with the pseudo-acceleration
    of the minimum cruise ratio). Forwards: the cruise speed each move reaches.
    """
    count = len(queue)
    starts = [0.0] * count
    cruises: list[float | None] = [None] * count
    ends = [0.0] * count
    next_start_v2 = next_mcr_start_v2 = peak_cruise_v2 = 0.0
    pending = 0
    for i in range(count - 1, -1, -1):
        move = queue[i]
        reachable_v2 = next_start_v2 + move.delta_v2
        start_v2 = min(move.max_start_v2, reachable_v2)
        pending += 1
        reach_mcr_v2 = next_mcr_start_v2 + move.mcr_delta_v2
        mcr_start_v2 = min(move.max_mcr_start_v2, reach_mcr_v2)
        if mcr_start_v2 < reach_mcr_v2:
            # This move can accelerate: its peak is the middle of what it can reach.
            if mcr_start_v2 + move.mcr_delta_v2 > next_mcr_start_v2 or pending > 1:
                peak_cruise_v2 = (mcr_start_v2 + reach_mcr_v2) * 0.5
            cruises[i] = min((start_v2 + reachable_v2) * 0.5, move.max_cruise_v2,
                             peak_cruise_v2)
            pending = 0
        starts[i], ends[i] = start_v2, next_start_v2
        next_start_v2, next_mcr_start_v2 = start_v2, mcr_start_v2
    prev_cruise_v2 = 0.0
    for i, move in enumerate(queue):
        cruise = cruises[i]
        cruise_v2 = min(prev_cruise_v2, starts[i]) if cruise is None else cruise
        move.set_phases(min(starts[i], cruise_v2), cruise_v2, min(ends[i], cruise_v2))
        prev_cruise_v2 = cruise_v2


class _Planner:
    """Walks the commands, tracking the firmware's coordinate state, and queues moves."""

    def __init__(self, limits: MotionLimits, commands: int) -> None:
        self.limits = limits
        self.durations = [0.0] * commands
        self.queue: list[_Move] = []
        self.moves = 0
        self.position = [0.0, 0.0, 0.0, 0.0]   # machine X, Y, Z, E
        self.base = [0.0, 0.0, 0.0, 0.0]       # G92 offsets
        self.absolute = True                   # G90 / G91
        self.absolute_e = True                 # M82 / M83
        self.extrude_factor = 1.0              # M221
        self.speed = DEFAULT_SPEED_MM_S
        self.tool = 0
        self.tool_e: dict[int, float] = {}

    def flush(self) -> None:
        if not self.queue:
            return
        _plan_to_stop(self.queue)
        for move in self.queue:
            self.durations[move.command] += move.duration_s
        self.queue.clear()

    def run(self, index: int, command: Command) -> None:
        word = command.word
        if word in ("G0", "G1", "G2", "G3"):
            self._move(index, command)
        elif word == "G90":
            self.absolute = True
        elif word == "G91":
            self.absolute = False
        elif word == "M82":
            self.absolute_e = True
        elif word == "M83":
            self.absolute_e = False
        elif word == "G92":
            self._set_position(command)
        elif word == "M221":
            self._set_extrude_factor(command)
        elif word == "G4":
            self.flush()
            seconds = command.params.get("P", 0.0) / 1000.0 + command.params.get("S", 0.0)
            self.durations[index] += max(seconds, 0.0)
        elif word.startswith("T") and word[1:].isdigit():
            self._select_tool(int(word[1:]))
        elif word == "ACTIVATE_EXTRUDER":
            name = command.extended.get("EXTRUDER", "extruder")
            suffix = name.removeprefix("extruder")
            self._select_tool(int(suffix) if suffix.isdigit() else 0)
        elif word == "G28":
            self.flush()
            axes = [i for i, a in enumerate("XYZ") if a in command.params] or [0, 1, 2]
            for axis in axes:
                self.position[axis] = 0.0
                self.base[axis] = 0.0
        elif word in STOPPING_COMMANDS:
            self.flush()

    def _move(self, index: int, command: Command) -> None:
        target = list(self.position)
        params = command.params
        for axis, letter in enumerate("XYZE"):
            if letter not in params:
                continue
            value = params[letter]
            relative = not self.absolute
            if letter == "E":
                value *= self.extrude_factor
                relative = relative or not self.absolute_e
            target[axis] = self.position[axis] + value if relative else value + self.base[axis]
        if "F" in params and params["F"] > 0.0:
            self.speed = params["F"] / 60.0
        axes_d = (target[0] - self.position[0], target[1] - self.position[1],
                  target[2] - self.position[2], target[3] - self.position[3])
        self.position = target
        if max(abs(d) for d in axes_d) < _EPS_MM:
            return
        move = _Move(index, axes_d, self.speed, self.limits)
        if self.queue:
            move.join(self.queue[-1], self.limits)
        self.queue.append(move)
        self.moves += 1

    def _set_position(self, command: Command) -> None:
        given = [(axis, command.params[a]) for axis, a in enumerate("XYZE") if a in command.params]
        if not given:
            self.base = list(self.position)
            return
        for axis, value in given:
            if axis == 3:
                value *= self.extrude_factor
            self.base[axis] = self.position[axis] - value

    def _set_extrude_factor(self, command: Command) -> None:
        if "S" not in command.params or command.params["S"] <= 0.0:
            return
        new = command.params["S"] / 100.0
        logical_e = (self.position[3] - self.base[3]) / self.extrude_factor
        self.base[3] = self.position[3] - logical_e * new
        self.extrude_factor = new

    def _select_tool(self, tool: int) -> None:
        # A tool change stops the machine; the new extruder continues from its own
        # filament position, with the logical E at 0 and the extrude factor reset.
        self.flush()
        self.tool_e[self.tool] = self.position[3]
        self.tool = tool
        self.position[3] = self.tool_e.get(tool, 0.0)
        self.base[3] = self.position[3]
        self.extrude_factor = 1.0


def plan_commands(commands: Sequence[str], limits: MotionLimits) -> MotionPlan:
    """Plan every move of a program and give each command its share of the motion time.

    Parameters
    ----------
    commands : sequence of str
        The program's commands, without comments (see
        :func:`~doseprint.gcode.tokens.split_commands`).
    limits : MotionLimits
        The printer's limits (:func:`motion_limits`).

    Returns
    -------
    MotionPlan
        ``durations_s[i]`` is command *i*'s planned time (its move, or its dwell).
    """
    planner = _Planner(limits, len(commands))
    for index, text in enumerate(commands):
        planner.run(index, parse_command(text))
    planner.flush()
    return MotionPlan(durations_s=tuple(planner.durations), motion_s=sum(planner.durations),
                      moves=planner.moves)
