"""The virtual Marlin: line checks, command handlers, the accepted log and fault injection."""

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
from doseprint.comms.virtual import FIRMWARE_NAME, GCommand, VirtualMarlin


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
    assert feed(printer, "M114") == ["ok"]  # unnumbered lines need no checks
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
    printer = VirtualMarlin(resend_every=3)
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
    assert feed(printer, "T5") == ["ok"]  # no such tool: unknown command


def test_gcommand_parse() -> None:
    command = GCommand.parse("m104 s210.5 T1")
    assert command.code == "M104"
    assert command.params == {"S": 210.5, "T": 1.0}


# ADVANCED_OK and the bounded receive buffer


def test_advanced_ok_reports_the_line_and_free_slots() -> None:
    printer = VirtualMarlin(advanced_ok=True, rx_buffer_lines=4)
    printer.connect()
    replies = feed(printer, "M115")
    assert "Cap:ADVANCED_OK:1" in replies and replies[-1] == "ok P15 B4"
    assert feed(printer, format_line(0, "M110 N0")) == ["ok N0 P15 B4"]
    # Three lines arrive before any runs: each answer counts the slots then free.
    for n in (1, 2, 3):
        assert printer.receive(format_line(n, f"G1 X{n}")) == []
    assert list(printer.process()) == ["ok N1 P15 B2", "ok N2 P15 B3", "ok N3 P15 B4"]
    assert printer.rx_peak == 3
    # A refused line's ok carries the counts too; M105's answer stays a temperature report.
    assert feed(printer, format_line(5, "G1 X5"))[-1] == "ok P15 B4"
    assert feed(printer, "M105")[0].startswith("ok T:")
    reply = parse_reply(feed(printer, format_line(4, "G1 X4"))[0])
    assert isinstance(reply, Ok) and (reply.line_no, reply.buffer_free) == (4, 4)


def test_a_full_queue_and_serial_buffer_lose_the_line_with_an_error() -> None:
    printer = VirtualMarlin(rx_buffer_lines=2, rx_buffer_bytes=20)
    printer.connect()
    feed(printer, format_line(0, "M110 N0"))
    lines = [format_line(n, f"G1 X{n}") for n in range(1, 6)]  # 12 or 13 bytes with \n
    # Two take the queue's slots, one waits in the serial buffer, the next finds it full.
    assert [printer.receive(line) for line in lines[:3]] == [[], [], []]
    (error,) = printer.receive(lines[3])
    assert isinstance(parse_reply(error), FirmwareError)
    assert "overflow" in error and printer.overflows == 1
    assert list(printer.process()) == ["ok"] * 3
    assert printer.accepted[-3:] == ["G1 X1", "G1 X2", "G1 X3"]
    # The lost line never ran: the next one is refused until it comes again.
    assert feed(printer, lines[4])[1] == "Resend: 4"
    with pytest.raises(ValueError, match="rx_buffer_lines"):
        VirtualMarlin(rx_buffer_lines=0)
