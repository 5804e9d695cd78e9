"""The streamer against the virtual printer over an in-memory loopback, and against scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from doseprint.comms.streamer import (
    StreamEvent,
    commands_from_gcode,
    safe_stop,
    safe_stop_commands,
    stream_gcode,
)
from doseprint.comms.transport import LoopbackTransport
from doseprint.comms.virtual import Faults, VirtualMarlin
from doseprint.errors import (
    EXIT_RESULT,
    PrintAbortedError,
    PrinterHaltedError,
    PrinterTimeoutError,
    PrintFailedError,
    ResendLimitError,
)

from .fakes import FakeClock, FaultyWire, QueueingLoopback, ScriptedTransport, Timed

JOB = """\
; doseprint job (test)
M140 S60
M104 T0 S210
M104 T1 S200
M190 S60
M109 T0 S210
M109 T1 S200
G28
G90
M83
;TABLET:0 start
T0
{moves}
;TABLET:0 end
G4 P500
M400
"""


def job_commands(n_moves: int = 200) -> list[str]:
    moves = "\n".join(
        f"G1 X{i % 40 + 0.5:.3f} Y{i // 40:.3f} E0.01234 ; path" for i in range(n_moves)
    )
    return commands_from_gcode(JOB.format(moves=moves))


def accepted_log(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("window", [1, 4])
def test_every_command_arrives_exactly_once_in_order_despite_resends(
    tmp_path: Path, window: int
) -> None:
    commands = job_commands()
    log = tmp_path / "accepted.log"
    events: list[StreamEvent] = []
    with (
        VirtualMarlin(
            log_path=log, advanced_ok=window > 1, faults=Faults(resend_every=7)
        ) as printer,
        LoopbackTransport(printer) as link,
    ):
        result = stream_gcode(commands, link, window=window, on_event=events.append)
    assert accepted_log(log) == ["M115", "M110 N0", *commands]
    assert result.window == result.max_in_flight == window
    assert result.commands_total == result.commands_acked == len(commands)
    assert result.resends >= len(commands) // 7
    assert result.firmware["FIRMWARE_NAME"] == "Marlin 2.1.2 (doseprint virtual)"
    assert result.firmware["EXTRUDER_COUNT"] == "2"
    assert result.capabilities["THERMAL_PROTECTION"] is True
    # Each command's ok is reported once, in order, with its line number.
    oks = [e.line_no for e in events if e.kind == "ok" and e.line_no is not None]
    assert oks == list(range(len(commands) + 1))
    kinds = {e.kind for e in events}
    assert {"firmware", "sent", "ok", "resend", "error", "temperature", "echo"} <= kinds
    stamps = [e.monotonic_s for e in events]
    assert stamps == sorted(stamps)
    assert result.lines_sent == sum(1 for e in events if e.kind == "sent")


@pytest.mark.parametrize("window", [1, 3])
def test_lost_lines_and_lost_oks_are_recovered_by_the_ping(window: int) -> None:
    commands = job_commands(40)
    printer = VirtualMarlin(advanced_ok=window > 1)
    wire = FaultyWire(printer, drop=[12], lose_reply=[25, 33], corrupt=[5])
    with LoopbackTransport(wire) as link:
        result = stream_gcode(commands, link, window=window, answer_timeout_s=0.05)
    numbered = [c for c in printer.accepted if c not in ("M115", "M105")]
    assert numbered == ["M110 N0", *commands]
    assert result.commands_acked == len(commands)


def test_a_printer_that_stops_answering_times_out_after_one_ping() -> None:
    commands = job_commands(20)
    wire = FaultyWire(VirtualMarlin(), silent_after=14)
    events: list[StreamEvent] = []
    with LoopbackTransport(wire) as link, pytest.raises(PrinterTimeoutError) as info:
        stream_gcode(commands, link, answer_timeout_s=0.1, on_event=events.append)
    assert info.value.last_acked == 14  # line 15 got no answer
    assert info.value.exit_code == EXIT_RESULT
    assert [e.kind for e in events[-4:]] == ["timeout", "sent", "timeout", "error"]
    assert events[-3].text == "M105"


def test_firmware_error_halts_with_the_last_acknowledged_command() -> None:
    commands = job_commands(20)
    wire = FaultyWire(VirtualMarlin(), inject={9: ["Error:MINTEMP triggered, system stopped!"]})
    events: list[StreamEvent] = []
    with LoopbackTransport(wire) as link, pytest.raises(PrinterHaltedError) as info:
        stream_gcode(commands, link, on_event=events.append)
    assert info.value.last_acked == 8
    assert "MINTEMP" in info.value.message
    assert events[-1].kind == "error"


def test_emergency_stop_in_the_program_halts() -> None:
    commands = ["G28", "G1 X1", "M112", "G1 X2"]
    with LoopbackTransport(VirtualMarlin()) as link, pytest.raises(PrinterHaltedError) as info:
        stream_gcode(commands, link)
    assert info.value.last_acked == 2
    assert "kill() called" in info.value.message


def test_a_line_refused_too_often_stops_the_print() -> None:
    wire = FaultyWire(VirtualMarlin(), always_corrupt=[3])
    with LoopbackTransport(wire) as link, pytest.raises(ResendLimitError) as info:
        stream_gcode(["G28", "G1 X1", "G1 X2", "G1 X3"], link, max_resends_per_line=4)
    assert info.value.last_acked == 2


def test_busy_and_temperature_reports_keep_a_long_wait_alive() -> None:
    clock = FakeClock()

    def script(command: str) -> Timed | None:
        if command.startswith("M109"):
            return [(1.0, f"T:{25 + i * 2:.1f} E:0 W:?") for i in range(90)] + [(1.0, "ok")]
        if command.startswith("G4"):
            return [(2.0, "echo:busy: processing")] * 60 + [(1.0, "ok")]
        return None

    link = ScriptedTransport(clock, script)
    result = stream_gcode(["M109 S210", "G4 S120", "G28"], link, answer_timeout_s=5.0, clock=clock)
    assert result.commands_acked == 3
    assert "M105" not in link.written  # never pinged
    assert clock() - 1000.0 == pytest.approx(90 + 1 + 120 + 1)


def test_wait_lines_do_not_hide_a_lost_line() -> None:
    clock = FakeClock()

    def script(command: str) -> Timed | None:
        if command == "G1 X1":
            return [(1.0, "wait")] * 100  # the firmware idles: the line never reached it
        if command == "M105":
            return []
        return None

    link = ScriptedTransport(clock, script)
    with pytest.raises(PrinterTimeoutError) as info:
        stream_gcode(["G28", "G1 X1"], link, answer_timeout_s=5.0, clock=clock)
    assert info.value.last_acked == 1
    assert link.written[-1] == "M105"
    assert clock() - 1000.0 == pytest.approx(10.0)


def test_handshake_survives_a_board_that_resets_on_connect() -> None:
    clock = FakeClock()
    answered: list[bool] = []

    def script(command: str) -> Timed | None:
        if command == "M115" and not answered:
            answered.append(True)
            # Lost in the boot loader; the board boots and greets instead.
            return [(1.5, "start"), (0.1, "echo:Marlin 2.1.2"), (0.1, "echo:Free Memory")]
        return None

    link = ScriptedTransport(clock, script, greeting=())
    result = stream_gcode(["G28"], link, connect_timeout_s=2.0, clock=clock)
    assert result.commands_acked == 1
    assert link.written[:3] == ["M115", "M115", "N0 M110 N0*125"]
    assert result.firmware["FIRMWARE_NAME"] == "Marlin 2.1.2 (Github)"


def test_no_printer_on_the_port() -> None:
    clock = FakeClock()
    link = ScriptedTransport(clock, lambda command: [], greeting=())
    with pytest.raises(PrinterTimeoutError, match="did not answer M115") as info:
        stream_gcode(["G28"], link, clock=clock)
    assert info.value.last_acked == 0
    assert link.written == ["M115"] * 5


class _Interrupting(LoopbackTransport):
    def __init__(self, printer: VirtualMarlin, after: int) -> None:
        super().__init__(printer)
        self.after = after
        self.reads = 0

    def readline(self, timeout_s: float) -> str | None:
        self.reads += 1
        if self.reads > self.after:
            raise KeyboardInterrupt
        return super().readline(timeout_s)


def test_ctrl_c_aborts_with_last_acked() -> None:
    link = _Interrupting(VirtualMarlin(), after=30)
    link.open()
    with pytest.raises(PrintAbortedError) as info:
        stream_gcode(job_commands(40), link)
    assert 0 < info.value.last_acked < 40
    assert isinstance(info.value.__cause__, KeyboardInterrupt)


class _Unplugged(LoopbackTransport):
    def write(self, line: str) -> None:
        if line.startswith("N6 "):
            raise PrintFailedError("lost the connection to the printer on 'loopback'")
        super().write(line)


def test_a_lost_port_reports_how_far_the_print_got() -> None:
    with _Unplugged(VirtualMarlin()) as link, pytest.raises(PrintFailedError) as info:
        stream_gcode(job_commands(20), link)
    assert info.value.last_acked == 5


def test_safe_stop_switches_everything_off(tmp_path: Path) -> None:
    log = tmp_path / "accepted.log"
    with VirtualMarlin(log_path=log) as printer, LoopbackTransport(printer) as link:
        stream_gcode(["M104 T0 S210", "M104 T1 S200", "M140 S60"], link)
        assert [t.target_c for t in printer.tools] == [210.0, 200.0]
        sent = safe_stop(link, extruders=2)
    assert sent == ["M104 T0 S0", "M104 T1 S0", "M140 S0", "M84"]
    assert accepted_log(log)[-4:] == sent
    assert [t.target_c for t in printer.tools] == [0.0, 0.0]
    assert printer.bed.target_c == 0.0


def test_safe_stop_commands_and_a_dead_port() -> None:
    assert safe_stop_commands() == ["M104 S0", "M140 S0", "M84"]
    assert safe_stop_commands(2, emergency_parser=True)[0] == "M108"
    link = LoopbackTransport(VirtualMarlin())  # never opened: every write fails
    assert safe_stop(link, settle_s=0.0) == []


# The send-ahead window against the printer's bounded queue


@pytest.mark.parametrize(("profile_window", "slots"), [(4, 4), (8, 3)])
def test_with_advanced_ok_the_window_is_used_and_never_overfills(
    profile_window: int, slots: int
) -> None:
    commands = job_commands(120)
    printer = VirtualMarlin(advanced_ok=True, rx_buffer_lines=slots, rx_buffer_bytes=0)
    result = stream_gcode(commands, QueueingLoopback(printer), window=profile_window)
    assert printer.accepted == ["M115", "M110 N0", *commands]
    # A profile that promises more than the firmware's queue holds is held to the free
    # slots the firmware reports; the queue is filled, never overfilled.
    assert result.window == result.max_in_flight == printer.rx_peak == slots
    # Marlin counts the answered command's slot as taken (queue.cpp, ok_to_send).
    assert result.buffer_free_max == slots - 1
    assert printer.overflows == 0


def test_without_advanced_ok_lines_go_one_at_a_time() -> None:
    commands = job_commands(40)
    printer = VirtualMarlin(rx_buffer_lines=4)
    result = stream_gcode(commands, QueueingLoopback(printer), window=4)
    assert printer.accepted == ["M115", "M110 N0", *commands]
    assert result.window == result.max_in_flight == printer.rx_peak == 1


def test_a_host_sending_past_the_buffer_gets_the_overflow_error() -> None:
    commands = job_commands(40)
    printer = VirtualMarlin(rx_buffer_lines=2, rx_buffer_bytes=16)
    with pytest.raises(PrinterHaltedError, match="overflow") as caught:
        stream_gcode(commands, QueueingLoopback(printer), window=8, send_ahead="always")
    assert printer.overflows >= 1
    assert caught.value.last_acked < len(commands)


@pytest.mark.parametrize("window", [1, 4])
def test_temperature_polls_between_lines_keep_delivery_exactly_once(
    tmp_path: Path, window: int
) -> None:
    """Polling as often as possible (every pass of the loop), with resends: the numbered
    lines still arrive once each, in order, and the polls' answers are temperatures."""
    commands = job_commands(120)
    log = tmp_path / "accepted.log"
    events: list[StreamEvent] = []
    with (
        VirtualMarlin(
            log_path=log, advanced_ok=window > 1, faults=Faults(resend_every=9)
        ) as printer,
        LoopbackTransport(printer) as link,
    ):
        result = stream_gcode(commands, link, window=window, on_event=events.append,
                              poll_interval_s=0.0)
    accepted = accepted_log(log)
    polls = accepted.count("M105")
    assert polls >= 20
    assert [c for c in accepted if c != "M105"] == ["M115", "M110 N0", *commands]
    assert result.commands_acked == len(commands)
    oks = [e.line_no for e in events if e.kind == "ok" and e.line_no is not None]
    assert oks == list(range(len(commands) + 1))
    answers = [e for e in events if e.kind == "temperature" and e.text.startswith("ok")]
    assert len(answers) == polls
