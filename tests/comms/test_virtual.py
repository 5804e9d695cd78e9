"""The virtual Marlin: line checks, command handlers, the run log and fault injection.

Every reply string asserted here is Marlin's, from its sources: ``Marlin/src/core/language.h``
(``STR_ERR_LINE_NO``, ``STR_ERR_CHECKSUM_MISMATCH``, ``STR_ERR_NO_CHECKSUM``, ``STR_RESEND``,
``STR_OK``, ``STR_UNKNOWN_COMMAND``, ``STR_INVALID_EXTRUDER``, ``STR_ERR_COLD_EXTRUDE_STOP``,
``STR_ACTIVE_EXTRUDER``, ``STR_ERR_KILLED``), ``Marlin/src/gcode/queue.cpp``
(``gcode_line_error``, ``flush_and_request_resend``, ``ok_to_send``),
``Marlin/src/gcode/gcode.cpp`` (``get_target_extruder_from_command``, the G21 no-op) and
``Marlin/src/gcode/temp/M302.cpp``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doseprint.comms.protocol import (
    FirmwareError,
    FirmwareInfo,
    Ok,
    TemperatureReport,
    format_line,
    parse_reply,
)
from doseprint.comms.virtual import FIRMWARE_NAME, Faults, VirtualMarlin
from doseprint.gcode.tokens import parse_command


def feed(printer: VirtualMarlin, line: str) -> list[str]:
    return list(printer.feed(line))


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[VirtualMarlin]:
    with VirtualMarlin(log_path=tmp_path / "accepted.log") as p:
        p.connect()
        yield p


def test_greeting() -> None:
    greeting = VirtualMarlin().connect()
    assert greeting[0] == "start"
    assert all(line.startswith("echo:") for line in greeting[1:])


def test_numbered_lines_are_checked_and_logged(printer: VirtualMarlin, tmp_path: Path) -> None:
    assert feed(printer, format_line(0, "M110 N0")) == ["ok"]
    assert feed(printer, format_line(1, "G28")) == ["ok"]
    # Skipping a number, or repeating one, is refused with a resend of the expected line.
    assert feed(printer, format_line(3, "G1 X1")) == [
        "Error:Line Number is not Last Line Number+1, Last Line: 1",
        "Resend: 2",
        "ok",
    ]
    assert feed(printer, format_line(1, "G28"))[1] == "Resend: 2"
    bad = format_line(2, "G1 X1").replace("X1", "X7")
    assert feed(printer, bad) == ["Error:checksum mismatch, Last Line: 1", "Resend: 2", "ok"]
    assert feed(printer, "N2 G1 X1")[0] == "Error:No Checksum with line number, Last Line: 1"
    assert feed(printer, format_line(2, "G1 X1")) == ["ok"]
    assert feed(printer, "M114")[-1] == "ok"  # unnumbered lines need no checks
    assert feed(printer, "") == []
    printer.close()
    log = (tmp_path / "accepted.log").read_text(encoding="utf-8").splitlines()
    assert log == ["M110 N0", "G28", "G1 X1", "M114"]


def test_m110_may_jump_the_line_number(printer: VirtualMarlin) -> None:
    feed(printer, format_line(0, "M110 N0"))
    feed(printer, format_line(1, "G28"))
    assert feed(printer, format_line(0, "M110 N0")) == ["ok"]
    assert feed(printer, format_line(1, "G28")) == ["ok"]
    assert feed(printer, format_line(40, "M110 N40")) == ["ok"]
    assert feed(printer, format_line(41, "G28")) == ["ok"]


def test_resend_every_refuses_each_chosen_line_once() -> None:
    printer = VirtualMarlin(faults=Faults(resend_every=3))
    feed(printer, format_line(0, "M110 N0"))
    refused = []
    for n in range(1, 10):
        first = feed(printer, format_line(n, f"G1 X{n}"))
        if first != ["ok"]:
            refused.append(n)
            assert first == [f"Error:checksum mismatch, Last Line: {n - 1}", f"Resend: {n}", "ok"]
            assert feed(printer, format_line(n, f"G1 X{n}")) == ["ok"]
    assert refused == [3, 6, 9]
    assert printer.accepted == ["M110 N0", *(f"G1 X{n}" for n in range(1, 10))]


def test_m105_answer(printer: VirtualMarlin) -> None:
    (line,) = feed(printer, "M105")
    assert line.startswith("ok T:25.00 /0.00 B:25.00 /0.00 ")
    assert line.endswith("@:0 B@:0")
    reply = parse_reply(line)
    assert isinstance(reply, Ok)
    assert set(reply.temperatures) == {"T", "B", "T0", "T1"}


def test_m104_m140_set_targets(printer: VirtualMarlin) -> None:
    feed(printer, "M104 S215")
    feed(printer, "M104 T1 S190")
    feed(printer, "M140 S55")
    assert [t.target_c for t in printer.tools] == [215.0, 190.0]
    assert printer.bed.target_c == 55.0


def test_m109_heats_over_simulated_time_with_reports() -> None:
    slept: list[float] = []
    printer = VirtualMarlin(heat_rate_c_s=10.0, sleep=slept.append)
    printer.connect()
    replies = feed(printer, "M109 S210")
    assert replies[-1] == "ok"
    reports = [parse_reply(r) for r in replies[:-1]]
    assert all(isinstance(r, TemperatureReport) for r in reports)
    actual = [r.temperatures["T"].actual_c for r in reports if isinstance(r, TemperatureReport)]
    assert actual == sorted(actual)
    assert actual[-1] >= 209.0
    assert len(reports) == pytest.approx(18, abs=1)  # (210 - 25) / 10 °C/s at 1 s a report
    assert sum(slept) == pytest.approx(18.4, abs=0.2)


def test_default_heating_is_almost_immediate() -> None:
    printer = VirtualMarlin()
    printer.connect()
    assert len(feed(printer, "M190 S60")) <= 2
    assert printer.bed.actual_c == pytest.approx(60.0)


def test_g4_sends_busy_keepalives() -> None:
    printer = VirtualMarlin()
    assert feed(printer, "G4 S5") == ["echo:busy: processing"] * 2 + ["ok"]
    assert feed(printer, "G4 P10") == ["ok"]


def test_m115(printer: VirtualMarlin) -> None:
    replies = feed(printer, "M115")
    info = parse_reply(replies[0])
    assert isinstance(info, FirmwareInfo)
    assert info.fields["FIRMWARE_NAME"] == FIRMWARE_NAME
    assert info.fields["MACHINE_TYPE"] == "doseprint-virtual"
    assert info.fields["EXTRUDER_COUNT"] == "2"
    assert any(r.startswith("Cap:ADVANCED_OK:") for r in replies)
    assert replies[-1] == "ok"


def test_m112_kills_the_printer(printer: VirtualMarlin) -> None:
    (line,) = feed(printer, "M112")
    reply = parse_reply(line)
    assert isinstance(reply, FirmwareError) and not reply.requests_resend
    assert feed(printer, "M105") == []
    assert printer.connect()[0] == "start"  # a reset brings it back
    assert feed(printer, "M105")[0].startswith("ok T:")


def test_tool_change(printer: VirtualMarlin) -> None:
    assert feed(printer, "T1") == ["echo:Active Extruder: 1", "ok"]
    assert printer.active_tool == 1
    # A tool the printer lacks: tool_change() -> invalid_extruder_error(), and the ok.
    assert feed(printer, "T5") == ["echo:T5 Invalid extruder", "ok"]
    assert feed(printer, "T5 S1") == ["echo:T5 Invalid extruder", "ok"]
    assert printer.active_tool == 1
    # A T parameter naming a missing tool: get_target_extruder_from_command.
    assert feed(printer, "M104 T3 S200") == ["echo:M104 Invalid extruder 3", "ok"]
    assert [t.target_c for t in printer.tools] == [0.0, 0.0]
    single = VirtualMarlin(extruders=1)
    assert list(single.feed("T0")) == ["ok"]
    assert list(single.feed("T1")) == ["echo:T1 Invalid extruder", "ok"]


def test_unknown_commands_are_echoed_and_answered(printer: VirtualMarlin) -> None:
    # GCodeParser::unknown_command_warning quotes the whole command, then the ok follows.
    assert feed(printer, "M999 S1") == ['echo:Unknown command: "M999 S1"', "ok"]
    assert feed(printer, "ACTIVATE_EXTRUDER EXTRUDER=extruder1") == [
        'echo:Unknown command: "ACTIVATE_EXTRUDER EXTRUDER=extruder1"',
        "ok",
    ]
    assert printer.unknown_commands == ["M999 S1", "ACTIVATE_EXTRUDER EXTRUDER=extruder1"]
    # Every command the virtual printer knows has a handler named as Marlin's (G21 is a
    # no-op without INCH_MODE_SUPPORT).
    for command in ("G21", "G90", "G91", "G92 E0", "M82", "M83", "M84", "M106 S255", "M107",
                    "M400", "M220 S100", "M221 S100", "M117 hello"):
        assert feed(printer, command) == ["ok"], command


def test_cold_extrusion_is_refused_as_marlin_does() -> None:
    printer = VirtualMarlin(extruders=1)
    printer.connect()
    feed(printer, "M83")
    # Below EXTRUDE_MINTEMP (170 °C): the move runs, its E is dropped, and Marlin says so.
    assert feed(printer, "G1 X10 E1.5") == ["echo: cold extrusion prevented", "ok"]
    assert printer.position["X"] == 10.0 and printer.cold_extrusions == 1
    assert feed(printer, "G1 X20") == ["ok"]  # no E: nothing to refuse
    feed(printer, "M109 S135")
    assert feed(printer, "G1 X30 E1.5") == ["echo: cold extrusion prevented", "ok"]
    # M302 S<t> lowers the minimum (M302.cpp); M302 alone reports it.
    assert feed(printer, "M302 S130") == ["ok"]
    assert feed(printer, "M302") == ["echo:Cold extrudes are disabled (min temp 130C)", "ok"]
    assert feed(printer, "G1 X40 E1.5") == ["ok"]
    assert feed(printer, "G1 X40 E-0.8") == ["ok"]
    assert printer.cold_extrusions == 2
    # M302 P1 allows cold extrusion; S0 too. A reset restores the firmware's minimum.
    feed(printer, "M302 S170")
    assert feed(printer, "G1 E1") == ["echo: cold extrusion prevented", "ok"]
    feed(printer, "M302 P1")
    assert feed(printer, "G1 E1") == ["ok"]
    assert feed(printer, "M302") == ["echo:Cold extrudes are enabled (min temp 170C)", "ok"]
    printer.connect()
    assert printer.extrude_min_temp_c == 170.0 and not printer.allow_cold_extrude
    # Absolute extrusion: the E delta is what counts.
    hot = VirtualMarlin(extruders=1, extrude_min_temp_c=100.0)
    hot.connect()
    feed(hot, "M82")
    assert feed(hot, "G1 E5") == ["echo: cold extrusion prevented", "ok"]
    assert feed(hot, "G1 X1 E5") == ["ok"]  # no change of E
    assert feed(hot, "G92 E0") == ["ok"] and hot.position["E"] == 0.0


def test_command_parse() -> None:
    # The virtual printer reads commands with the tokenizer every reader of G-code uses.
    command = parse_command("m104 s210.5 T1")
    assert command.word == "M104"
    assert command.params == {"S": 210.5, "T": 1.0}


# ADVANCED_OK and the bounded receive buffer


def test_advanced_ok_reports_the_line_and_free_slots() -> None:
    printer = VirtualMarlin(advanced_ok=True, rx_buffer_lines=4)
    printer.connect()
    replies = feed(printer, "M115")
    # ok_to_send runs while the command answered still holds its queue slot: B = BUFSIZE - 1.
    assert "Cap:ADVANCED_OK:1" in replies and replies[-1] == "ok P15 B3"
    assert feed(printer, format_line(0, "M110 N0")) == ["ok N0 P15 B3"]
    # Three lines arrive before any runs: each answer counts the slots then free.
    for n in (1, 2, 3):
        assert printer.receive(format_line(n, f"G1 X{n}")) == []
    assert list(printer.process()) == ["ok N1 P15 B1", "ok N2 P15 B2", "ok N3 P15 B3"]
    assert printer.rx_peak == 3
    # A refused line gets Marlin 2.1's bare ok (flush_and_request_resend prints STR_OK);
    # M105's answer stays a temperature report.
    assert feed(printer, format_line(5, "G1 X5")) == [
        "Error:Line Number is not Last Line Number+1, Last Line: 3",
        "Resend: 4",
        "ok",
    ]
    assert feed(printer, "M105")[0].startswith("ok T:")
    reply = parse_reply(feed(printer, format_line(4, "G1 X4"))[0])
    assert isinstance(reply, Ok) and (reply.line_no, reply.buffer_free) == (4, 3)


def test_a_refused_line_throws_away_the_lines_behind_it() -> None:
    # gcode_line_error empties the serial receive buffer: lines sent ahead of a bad one
    # are lost without a word, and the host must send them again after the resend.
    printer = VirtualMarlin(rx_buffer_lines=4)
    printer.connect()
    feed(printer, format_line(0, "M110 N0"))
    bad = format_line(1, "G1 X1").replace("X1", "X7")
    burst = [bad, *(format_line(n, f"G1 X{n}") for n in (2, 3, 4))]
    assert printer.receive_burst(burst) == [
        "Error:checksum mismatch, Last Line: 0",
        "Resend: 1",
        "ok",
    ]
    assert list(printer.process()) == []
    assert printer.accepted == ["M110 N0"]
    # Arriving after the refusal, each out-of-order line is refused in turn.
    assert feed(printer, format_line(2, "G1 X2"))[1] == "Resend: 1"
    assert feed(printer, format_line(1, "G1 X1")) == ["ok"]


def test_lines_are_checked_as_they_are_read_in_before_earlier_ones_run() -> None:
    # get_serial_commands checks a line when it enters the queue, so a refusal may be
    # printed before the oks of lines queued ahead of it.
    printer = VirtualMarlin(rx_buffer_lines=4)
    printer.connect()
    feed(printer, format_line(0, "M110 N0"))
    assert printer.receive_burst([format_line(1, "G1 X1"), format_line(3, "G1 X3")]) == [
        "Error:Line Number is not Last Line Number+1, Last Line: 1",
        "Resend: 2",
        "ok",
    ]
    assert list(printer.process()) == ["ok"]


def test_a_full_queue_and_serial_buffer_lose_the_line_with_an_error() -> None:
    printer = VirtualMarlin(rx_buffer_lines=2, rx_buffer_bytes=20)
    printer.connect()
    feed(printer, format_line(0, "M110 N0"))
    lines = [format_line(n, f"G1 X{n}") for n in range(1, 6)]  # 12 or 13 bytes with \n
    # Two take the queue's slots, one waits in the serial buffer, the next finds it full.
    assert [printer.receive(line) for line in lines[:3]] == [[], [], []]
    (error,) = printer.receive(lines[3])
    assert isinstance(parse_reply(error), FirmwareError)
    # Marlin's RX_BUFFER_MONITOR message (queue.cpp, serial_data_available).
    assert error.startswith("Error:RX BUF overflow, increase RX_BUFFER_SIZE: ")
    assert printer.overflows == 1
    assert list(printer.process()) == ["ok"] * 3
    assert printer.accepted[-3:] == ["G1 X1", "G1 X2", "G1 X3"]
    # The lost line never ran: the next one is refused until it comes again.
    assert feed(printer, lines[4])[1] == "Resend: 4"
    with pytest.raises(ValueError, match="rx_buffer_lines"):
        VirtualMarlin(rx_buffer_lines=0)
