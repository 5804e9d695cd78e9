"""Waits for each ok from the planned motion: lost lines found in about a second, and no
false alarm during heat-ups, homing or busy keep-alives.

The printer is the virtual Marlin behind a link whose replies take time on a fake clock
(:class:`~fakes.ClockedLink`): a move's ``ok`` comes once the planner has room, late by
the move ahead of it once 16 are queued (Marlin's ``BLOCK_BUFFER_SIZE``), ``M109`` reports
once a second (Marlin's ``M109`` wait), ``busy:`` comes every 2 s (Marlin's
``DEFAULT_KEEPALIVE_INTERVAL``).
"""

from __future__ import annotations

import math

import pytest

from doseprint.comms.streamer import StreamEvent, stream_gcode
from doseprint.comms.timing import OK_FLOOR_S, PLANNER_MOVES, ok_budgets
from doseprint.comms.virtual import Faults, VirtualMarlin
from doseprint.errors import LineLostError

from .fakes import ClockedLink, FakeClock, FaultyWire, ScriptedTransport, Timed

PRINT_MM_S = 20.0
"""The shipped profiles' print speed; moves here are 10 mm long, 0.5 s each."""

START = ["M140 S60", "M104 S200", "M190 S60", "M109 S200", "G28", "G90", "M83", "G92 E0"]


def tablet(moves: int = 80) -> list[str]:
    """Roads across a 10 mm tablet, back and forth, each 10 mm at 20 mm/s."""
    return [f"G1 X{10 + 10 * (i % 2)} Y{10 + 0.4 * i:.1f} E0.4 F1200" for i in range(moves)]


def durations(commands: list[str]) -> list[float]:
    """The time each command adds to the motion queue: 10 mm at 20 mm/s for a road, the
    dwell for a G4 (the motion planner's figures, without acceleration)."""
    out = []
    for command in commands:
        if command.startswith("G1 X"):
            out.append(10.0 / PRINT_MM_S)
        elif command.startswith("G4 S"):
            out.append(float(command.split("S")[1]))
        else:
            out.append(0.0)
    return out


class Planner:
    """Reply delays of a printer with a 16-move planner: an ok for a road comes at once
    while the planner has room, else when the oldest queued road has finished; M109 reports
    once a second; busy keep-alives every 2 s; the rest at once."""

    def __init__(self, clock: FakeClock, homing_s: float = 0.0, slowdown: float = 1.0) -> None:
        self.clock = clock
        self.finish: list[float] = []  # when each queued road finishes
        self.homing_s = homing_s
        self.slowdown = slowdown
        self.busy = False

    def __call__(self, command: str, reply: str) -> float:
        if reply.startswith("echo:busy"):
            delay = 0.0 if not self.busy else 2.0
            self.busy = True
            return delay
        if reply.startswith("T:"):
            return 1.0
        if not reply.startswith("ok"):
            return 0.0
        if self.busy:
            self.busy = False
            return 2.0
        if command == "G28":
            return self.homing_s
        if not command.startswith("G1 X"):
            return 0.005
        now = self.clock()
        pending = [f for f in self.finish if f > now]
        ok_at = now if len(pending) < PLANNER_MOVES else pending[-PLANNER_MOVES]
        start = max([ok_at, *pending])
        self.finish = [*pending, start + self.slowdown * 10.0 / PRINT_MM_S]
        return ok_at - now + 0.005


def run(
    commands: list[str],
    responder: VirtualMarlin | FaultyWire,
    homing_s: float = 0.0,
    **kwargs: float,
) -> tuple[list[StreamEvent], FakeClock]:
    clock = FakeClock()
    link = ClockedLink(responder, clock, Planner(clock, homing_s))
    events: list[StreamEvent] = []
    stream_gcode(commands, link, on_event=events.append, clock=clock,
                 durations_s=durations(commands), **kwargs)  # type: ignore[arg-type]
    return events, clock


def stall_s(events: list[StreamEvent], line_no: int) -> float:
    """From the first sending of a line to its ok, s."""
    sent = min(e.monotonic_s for e in events if e.kind == "sent" and e.line_no == line_no)
    ok = min(e.monotonic_s for e in events if e.kind == "ok" and e.line_no == line_no)
    return ok - sent


# The allowances themselves


def test_a_road_may_wait_for_the_longest_road_queued_ahead_of_it() -> None:
    commands = ["G28", "M83", *tablet(20), "M400", "G4 S2", "M104 S0"]
    budgets = ok_budgets(commands, durations(commands))
    assert budgets[0] is None  # homing: open
    assert budgets[1] == OK_FLOOR_S  # answered as soon as it runs
    # The first road waits for nothing queued; the others for one road ahead and their own.
    assert budgets[2] == pytest.approx(OK_FLOOR_S + 0.5)
    assert budgets[3:22] == [pytest.approx(OK_FLOOR_S + 1.0)] * 19
    # M400 waits for everything the planner holds: at most its 16 moves.
    assert budgets[22] == pytest.approx(OK_FLOOR_S + PLANNER_MOVES * 0.5)
    # G4 waits for the (now empty) planner, then dwells.
    assert budgets[23] == pytest.approx(OK_FLOOR_S + 2.0)
    assert budgets[24] == OK_FLOOR_S


def test_heating_homing_and_macros_are_open_and_tool_changes_depend_on_the_firmware() -> None:
    commands = ["M109 S200", "M190 S60", "M116", "G29", "T1", "ACTIVATE_EXTRUDER EXTRUDER=e",
                "SET_HEATER_TEMPERATURE HEATER=extruder TARGET=0"]
    marlin = ok_budgets(commands, [0.0] * len(commands))
    assert marlin[:4] == [None] * 4 and marlin[4] == OK_FLOOR_S  # Marlin's T syncs: bounded
    assert marlin[5] is None and marlin[6] == OK_FLOOR_S
    klipper = ok_budgets(commands, [0.0] * len(commands), flavor="klipper")
    assert klipper[4] is None  # a site's T1 macro may heat and wait


@pytest.mark.parametrize("bad", [[0.5], [-1.0, 0.0], [math.nan, 0.0], [math.inf, 0.0]])
def test_durations_must_be_one_time_per_command(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="durations_s"):
        ok_budgets(["G1 X1", "G1 X2"], bad)


# Lost lines and lost oks, found by the allowance


@pytest.mark.parametrize("fault", ["drop", "lose_reply"])
def test_a_lost_line_or_ok_mid_tablet_is_recovered_in_under_two_seconds(fault: str) -> None:
    commands = [*START, *tablet()]
    lost = len(START) + 50  # a road in the middle of the tablet, planner full
    printer = VirtualMarlin()
    wire = FaultyWire(printer, **{fault: [lost]})  # type: ignore[arg-type]
    events, _ = run(commands, wire)
    assert [c for c in printer.accepted if c not in ("M115", "M110 N0", "M105")] == commands
    pings = [e for e in events if e.kind == "timeout"]
    assert len(pings) == 1 and "pinging" in pings[0].text
    stall = stall_s(events, lost)
    # The allowance: the floor, the road ahead and its own time; then the ping's round trip.
    assert OK_FLOOR_S + 1.0 <= stall < 2.0


def test_without_durations_only_the_long_timeout_finds_a_lost_line() -> None:
    commands = [*START, *tablet()]
    lost = len(START) + 50
    clock = FakeClock()
    link = ClockedLink(FaultyWire(VirtualMarlin(), drop=[lost]), clock, Planner(clock))
    events: list[StreamEvent] = []
    stream_gcode(commands, link, on_event=events.append, clock=clock, answer_timeout_s=30.0)
    assert stall_s(events, lost) >= 30.0


# No false alarm


def test_no_ping_during_a_long_heat_up_homing_or_busy_keepalives() -> None:
    commands = [*START, *tablet(40), "G4 S6", *tablet(10)]
    # Heating from 25 to 200 °C at 10 °C/s: M109 waits 18 s, reporting every second; homing
    # takes 25 s without a word; a road 30 lines in is held 9 s with busy keep-alives.
    printer = VirtualMarlin(heat_rate_c_s=10.0, faults=Faults(busy_every=30, busy_s=9.0))
    events, clock = run(commands, printer, homing_s=25.0)
    assert not [e for e in events if e.kind == "timeout"]
    assert sum(e.kind == "busy" for e in events) >= 5 + 2
    assert clock.t - 1000.0 > 18.0 + 25.0 + 9.0


def test_a_slow_ok_costs_a_ping_and_nothing_else() -> None:
    # Moves four times slower than planned (a feed-rate override at 25 %): the ping comes
    # back after the line's ok, so nothing is sent again.
    commands = [*START, *tablet(40)]
    printer = VirtualMarlin()
    clock = FakeClock()
    link = ClockedLink(printer, clock, Planner(clock, slowdown=4.0))
    events: list[StreamEvent] = []
    result = stream_gcode(commands, link, on_event=events.append, clock=clock,
                          durations_s=durations(commands))
    assert result.overdue_pings >= 1 and result.recoveries == 0 and result.resends == 0
    assert [c for c in printer.accepted if c not in ("M115", "M110 N0", "M105")] == commands


# Where resending is not safe


def klipper_script(drop: str) -> tuple[ScriptedTransport, FakeClock]:
    clock = FakeClock()
    dropped: list[str] = []

    def script(command: str) -> Timed | None:
        if command == "M115":
            return [(0.0, "ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0")]
        if command == drop and not dropped:
            dropped.append(command)
            return []  # the line (or its ok) never comes back
        if command == "M105":
            return [(0.0, "ok T:200.0 /200.0 B:60.0 /60.0")]
        return [(0.01, "ok")]

    return ScriptedTransport(clock, script, greeting=()), clock


def test_on_klipper_a_lost_line_stops_the_print_instead_of_running_twice() -> None:
    commands = ["G90", "M83", *tablet(30)]
    link, clock = klipper_script(commands[20])
    with pytest.raises(LineLostError, match="does not check line numbers") as info:
        stream_gcode(commands, link, clock=clock, flavor="klipper",
                     durations_s=durations(commands))
    assert info.value.last_acked == 20
    numbered = [line for line in link.written if line.startswith("N")]
    assert len(numbered) == len(set(numbered))  # nothing was sent twice
