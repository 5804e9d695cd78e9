"""Hard bounds on every wait: only an ``ok`` that moves the print on counts as progress.

A printer that keeps sending ``busy:``, temperature reports or noise but never the ``ok``
awaited must not hold a print (and a hot nozzle over a tablet) for ever: each line gets a
bound from its planned motion or its heat-up allowance (comms/timing.py,
``stall_limits``), the handshake and the pre-flight one deadline together. Within those
bounds the keep-alives still carry a long command. Times are a fake clock's.
"""

from __future__ import annotations

import math

import pytest

from doseprint.comms.streamer import StreamEvent, stream_gcode
from doseprint.comms.timing import (
    OPEN_WAIT_CAP_S,
    STALL_FACTOR,
    dwell_s,
    ok_budgets,
    open_allowance_s,
    stall_limits,
)
from doseprint.errors import PrinterTimeoutError

from .fakes import FakeClock, ScriptedTransport, Timed

FOREVER = 5000
"""Replies enough to outlast any bound: 'for ever' to the host."""

NOISE = "\x8f\xe3\x1c\xbb\xfe\x07\xd2"
"""What a link at the wrong baud rate delivers: bytes that make no reply."""


def chatter(line: str, every_s: float) -> Timed:
    return [(every_s, line)] * FOREVER


@pytest.mark.parametrize(
    ("line", "every_s", "words"),
    [("echo:busy: processing", 2.0, "busy keep-alives"),
     ("T:205.1 /210.0 B:60.0 /60.0 @:64 B@:0", 1.0, "temperature reports"),
     (NOISE, 0.3, "other lines")],
    ids=["busy", "temperatures", "noise"],
)
def test_a_printer_that_talks_but_never_answers_the_line_is_stopped(
    line: str, every_s: float, words: str
) -> None:
    clock = FakeClock()

    def script(command: str) -> Timed | None:
        if command == "G1 X2 F1200":
            return chatter(line, every_s)
        if command == "M105":
            return []  # a firmware stuck in a loop answers no ping either
        return None

    link = ScriptedTransport(clock, script)
    events: list[StreamEvent] = []
    with pytest.raises(PrinterTimeoutError) as info:
        stream_gcode(["G28", "G1 X1 F1200", "G1 X2 F1200", "G1 X3 F1200"], link,
                     answer_timeout_s=5.0, clock=clock, on_event=events.append,
                     durations_s=[0.0, 0.05, 0.05, 0.05])
    assert info.value.last_acked == 2
    message = info.value.message
    assert "no ok for line 3 ('G1 X2 F1200')" in message and words in message
    # Twice the no-answer timeout plus four times the planned wait: 10 s and a little.
    waited = clock() - 1000.0
    assert 10.0 < waited < 20.0
    assert any(e.kind == "timeout" and "past the bound" in e.text for e in events)


def test_endless_temperature_reports_in_a_heat_up_end_at_its_allowance() -> None:
    # M109 S210 from a cold printer: 60 s + 190 °C at 0.5 °C/s = 440 s, plus twice the
    # no-answer timeout; the heater never gets there, the firmware reports on.
    clock = FakeClock()

    def script(command: str) -> Timed | None:
        if command.startswith("M109"):
            return chatter("T:150.0 /210.0 B:60.0 /60.0 @:127 B@:0 W:?", 1.0)
        return None

    link = ScriptedTransport(clock, script)
    with pytest.raises(PrinterTimeoutError, match=r"line 1 \('M109 S210'\)") as info:
        stream_gcode(["M109 S210", "G28"], link, answer_timeout_s=5.0, clock=clock)
    assert "temperature reports" in info.value.message
    assert 440.0 + 10.0 <= clock() - 1000.0 < 460.0


def test_a_slow_heat_up_within_its_allowance_is_waited_for() -> None:
    # 400 s of reports (a weak heater), then ok: inside M109 S210's 450 s.
    clock = FakeClock()

    def script(command: str) -> Timed | None:
        if command.startswith("M109"):
            return [(1.0, "T:150.0 /210.0 W:?")] * 400 + [(1.0, "ok")]
        return None

    link = ScriptedTransport(clock, script)
    result = stream_gcode(["M109 S210", "G28"], link, answer_timeout_s=5.0, clock=clock)
    assert result.commands_acked == 2


def test_busy_keepalives_carry_a_long_planned_dwell_but_not_past_its_bound() -> None:
    # G4 S60 with keep-alives every 2 s: planned, so it is waited for (the dwell is read
    # from the command when no durations are given) ...
    clock = FakeClock()

    def dwell(busy_count: int) -> ScriptedTransport:
        def script(command: str) -> Timed | None:
            if command == "G4 S60":
                return [(2.0, "echo:busy: processing")] * busy_count + [(1.0, "ok")]
            return None

        return ScriptedTransport(clock, script)

    result = stream_gcode(["G28", "G4 S60", "G28"], dwell(30), answer_timeout_s=5.0,
                          clock=clock)
    assert result.commands_acked == 3
    # ... but a dwell that keeps the printer busy for ever is not.
    with pytest.raises(PrinterTimeoutError, match="busy keep-alives"):
        stream_gcode(["G28", "G4 S60", "G28"], dwell(FOREVER), answer_timeout_s=5.0,
                     clock=clock)


def test_noise_from_the_start_ends_the_handshake_at_its_deadline() -> None:
    # The wrong baud rate: the board's every line arrives as noise, never an ok.
    clock = FakeClock()
    link = ScriptedTransport(clock, lambda command: [], greeting=())
    link.write("M105")  # the board talks from the start: queue its noise
    link._queue.extend(chatter(NOISE, 0.3))
    link.written.clear()
    with pytest.raises(PrinterTimeoutError, match="did not get through M115") as info:
        stream_gcode(["G28"], link, answer_timeout_s=5.0, connect_timeout_s=2.0, clock=clock)
    assert "--baud" in (info.value.hint or "") and info.value.last_acked == 0
    # Five M115 tries of 2 s each, plus the no-answer timeout.
    assert 15.0 <= clock() - 1000.0 < 17.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, 0.0, -1.0])
def test_timeouts_that_are_not_times_are_refused(bad: float) -> None:
    link = ScriptedTransport(FakeClock())
    with pytest.raises(ValueError, match="answer_timeout_s"):
        stream_gcode(["G28"], link, answer_timeout_s=bad)
    with pytest.raises(ValueError, match="connect_timeout_s"):
        stream_gcode(["G28"], link, connect_timeout_s=bad)
    assert link.written == []


def test_stall_limits_follow_the_plan_and_the_allowances() -> None:
    commands = ["M190 S60", "M109 S210", "G28", "G29", "G1 X10 F1200", "G4 P2500", "M0"]
    durations = [0.0, 0.0, 0.0, 0.0, 0.6, 2.5, 0.0]
    limits = stall_limits(commands, durations, answer_timeout_s=30.0)
    budgets = ok_budgets(commands, durations)
    assert limits[0] == 60.0 + 120.0 + 40.0 / 0.1
    assert limits[1] == 60.0 + 60.0 + 190.0 / 0.5
    assert limits[2] == 60.0 + 180.0 and limits[3] == 60.0 + 600.0
    for i in (4, 5):
        assert budgets[i] is not None
        assert limits[i] == pytest.approx(60.0 + STALL_FACTOR * budgets[i])
    assert limits[6] == 60.0 + OPEN_WAIT_CAP_S
    assert open_allowance_s("M190 S400") == OPEN_WAIT_CAP_S  # capped
    assert open_allowance_s("T1", "klipper") < OPEN_WAIT_CAP_S
    assert dwell_s("G4 P2500") == 2.5 and dwell_s("G4 S3") == 3.0 and dwell_s("G1 X1") == 0.0
    assert stall_limits(["G4 S60"], None, answer_timeout_s=5.0)[0] >= 60.0
    with pytest.raises(ValueError):
        stall_limits(commands, durations, answer_timeout_s=math.nan)
