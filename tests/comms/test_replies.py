"""The reply classifier against the strings the firmwares print, each from its source.

Sources (read, not copied): Marlin ``Marlin/src/core/language.h``, ``Marlin/src/gcode/queue.cpp``
(``gcode_line_error``, ``flush_and_request_resend``, ``ok_to_send``),
``Marlin/src/gcode/parser.cpp`` (``unknown_command_warning``),
``Marlin/src/module/tool_change.cpp`` (``invalid_extruder_error``),
``Marlin/src/gcode/gcode.cpp`` (``get_target_extruder_from_command``),
``Marlin/src/module/temperature.cpp`` (``_temp_error``), ``Marlin/src/module/planner.cpp``
(``PREVENT_COLD_EXTRUSION``); OctoPrint ``src/octoprint/plugins/virtual_printer/__init__.py``
(the ``errors`` settings) and ``virtual.py``; Klipper ``klippy/gcode.py``
(``respond_info``, ``_respond_error``, ``cmd_default``, ``cmd_M115``) and
``klippy/kinematics/extruder.py``; RepRapFirmware ``src/GCodes/GCodes.cpp``
(``HandleReplyPreserveResult``), ``src/GCodes/GCodes2.cpp`` (``Bad command``, the ``M115``
answer) and ``src/Tools/Tool.cpp`` (``DisplayColdExtrusionWarnings``).
"""

from __future__ import annotations

import pytest

from doseprint.comms.replies import (
    DOSE_WARNING_RE,
    Busy,
    Echo,
    FirmwareError,
    FirmwareInfo,
    Halt,
    HostAction,
    Ok,
    Resend,
    UnknownCommand,
    firmware_flavor,
    parse_firmware_fields,
    parse_reply,
)

# Communication errors: the line is sent again.


@pytest.mark.parametrize(
    ("line", "last_line"),
    [
        # Marlin, language.h STR_ERR_* after SERIAL_ERROR_START ("Error:").
        ("Error:Line Number is not Last Line Number+1, Last Line: 4711", 4711),
        ("Error:checksum mismatch, Last Line: 4711", 4711),
        ("Error:No Checksum with line number, Last Line: 4711", 4711),
        ("Error:No Line Number with checksum, Last Line: 4711", 4711),  # Marlin 1.x
        # OctoPrint's virtual printer, errors in __init__.py, sent as "Error: " + text.
        ("Error: Checksum mismatch", None),
        ("Error: Missing checksum", None),
        ("Error: expected line 12 got 14", None),
        ("Error: No Line Number with checksum, Last Line: 11", 11),
    ],
)
def test_communication_errors_are_recovered_not_fatal(line: str, last_line: int | None) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, FirmwareError)
    assert reply.kind == "communication" and reply.requests_resend
    assert reply.last_line == last_line


@pytest.mark.parametrize(
    "line",
    [
        "Error:Printer halted. kill() called!",  # STR_ERR_KILLED
        "Error:Thermal Runaway, system stopped! Heater_ID: 0",  # temperature.cpp _temp_error
        "Error:Heating failed, system stopped! Heater_ID: bed",
        "Error:MAXTEMP triggered, system stopped! Heater_ID: 0",
        "Error:MINTEMP triggered, system stopped! Heater_ID: 1",
        "Error: MAXTEMP triggered!",  # OctoPrint's virtual printer
        "Error:RX BUF overflow, increase RX_BUFFER_SIZE: 126",  # queue.cpp RX_BUFFER_MONITOR
        "Error: G10: Invalid tool number",  # RepRapFirmware GetSpecifiedOrCurrentTool
    ],
)
def test_other_errors_are_failures(line: str) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, FirmwareError)
    assert reply.kind == "failure" and not reply.requests_resend


@pytest.mark.parametrize(
    "line",
    [
        "!!",  # Marlin kill()
        "!! Lost communication with MCU 'mcu'",  # Klipper shutdown
        "!! Must home axis first: 10.000 10.000 0.200 [0.000]",  # Klipper command error
        "!! Extrude below minimum temp",  # Klipper extruder.py, min_extrude_temp
        # Marlin prints STR_ERR_STOPPED bare for moves while stopped (queue.cpp).
        "Printer stopped due to errors. Fix the error and use M999 to restart. "
        "(Temperature is reset. Set it after restarting)",
        "fatal: Heater/sensor error - Printer stopped and heaters disabled",  # Repetier
    ],
)
def test_halts(line: str) -> None:
    assert isinstance(parse_reply(line), Halt)


@pytest.mark.parametrize(
    ("line", "word"),
    [
        ('echo:Unknown command: "T3 S1"', "T3"),  # Marlin unknown_command_warning
        ('echo:Unknown command: "ACTIVATE_EXTRUDER EXTRUDER=extruder1"', "ACTIVATE_EXTRUDER"),
        ('// Unknown command:"T1"', "T1"),  # Klipper cmd_default
        ("Error: Bad command: T1", "T1"),  # RepRapFirmware GCodes2.cpp
        ("Error: Bad command: M999 S1", "M999"),
        ("Error: Unknown command T1", "T1"),  # OctoPrint's virtual printer
        ("echo:T3 Invalid extruder", "T3"),  # Marlin invalid_extruder_error
        ("echo:T3 Invalid extruder ", "T3"),  # OctoPrint's virtual printer _gcode_T
        ("echo:M104 Invalid extruder 3", "M104"),  # Marlin get_target_extruder_from_command
    ],
)
def test_unknown_commands_in_every_dialect(line: str, word: str) -> None:
    assert parse_reply(line) == UnknownCommand(text=line.strip(), word=word)


def test_resend_and_its_ok() -> None:
    assert parse_reply("Resend: 4712") == Resend("Resend: 4712", 4712)  # STR_RESEND
    assert parse_reply("Resend:4712") == Resend("Resend:4712", 4712)  # OctoPrint
    # Marlin 2.1 prints a bare STR_OK after the request, even with ADVANCED_OK.
    ok = parse_reply("ok")
    assert isinstance(ok, Ok) and ok.bare and ok.line_no is None
    advanced = parse_reply("ok N12 P15 B3")
    assert isinstance(advanced, Ok) and not advanced.bare and advanced.line_no == 12


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("echo:busy: processing", "processing"),  # Marlin STR_BUSY_PROCESSING
        ("echo:busy: paused for user", "paused for user"),
        ("busy:processing", "processing"),  # OctoPrint's virtual printer G4
        ("echo:busy paused for user", "paused for user"),  # OctoPrint's _setBusy
    ],
)
def test_busy_dialects(line: str, reason: str) -> None:
    assert parse_reply(line) == Busy(line, reason)


def test_information_lines() -> None:
    assert parse_reply("// Klipper state: Ready") == Echo("// Klipper state: Ready",
                                                          "Klipper state: Ready")
    assert isinstance(parse_reply("Warning: Heater 1 appears to be over-powered"), Echo)
    assert parse_reply("//action:cancel") == HostAction("//action:cancel", "cancel")
    assert parse_reply("// action:pause") == HostAction("// action:pause", "pause")


@pytest.mark.parametrize(
    "line",
    [
        "echo: cold extrusion prevented",  # Marlin STR_ERR_COLD_EXTRUDE_STOP
        "echo: too long extrusion prevented",  # STR_ERR_LONG_EXTRUDE_STOP
        "Warning: Tool 0 was not driven because its heater temperatures were not high "
        "enough or it has a heater fault",  # RepRapFirmware Tool.cpp
    ],
)
def test_skipped_extrusions_are_recognised(line: str) -> None:
    reply = parse_reply(line)
    assert isinstance(reply, Echo)
    assert DOSE_WARNING_RE.search(reply.message) is not None


@pytest.mark.parametrize(
    ("answer", "flavor"),
    [
        ("FIRMWARE_NAME:Marlin 2.1.2.4 (Github) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin"
         " PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3 EXTRUDER_COUNT:1", "marlin"),
        ("FIRMWARE_NAME:Prusa-Firmware 3.13.3 based on Marlin FIRMWARE_URL:https://github.com"
         "/prusa3d/Prusa-Firmware PROTOCOL_VERSION:1.0 MACHINE_TYPE:Prusa i3 MK3S", "marlin"),
        ("FIRMWARE_NAME:Virtual Marlin 1.0 PROTOCOL_VERSION:1.0", "marlin"),  # OctoPrint
        ("FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: 3.5.1 "
         "ELECTRONICS: Duet 3 MB6HC v1.01 or later", "reprapfirmware"),
        ("FIRMWARE_NAME:Smoothieware FIRMWARE_VERSION:edge", None),
    ],
)
def test_firmware_flavor_from_m115(answer: str, flavor: str | None) -> None:
    info = parse_reply(answer)
    assert isinstance(info, FirmwareInfo)
    assert firmware_flavor(info.fields) == flavor


def test_klipper_answers_m115_in_its_ok_line() -> None:
    # klippy/gcode.py cmd_M115: gcmd.ack("FIRMWARE_NAME:Klipper FIRMWARE_VERSION:…").
    reply = parse_reply("ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0-155-g4cfa266e")
    assert isinstance(reply, Ok)
    assert reply.firmware == {"FIRMWARE_NAME": "Klipper",
                              "FIRMWARE_VERSION": "v0.12.0-155-g4cfa266e"}
    assert firmware_flavor(reply.firmware) == "klipper"
    assert parse_firmware_fields("FIRMWARE_NAME:Klipper") == {"FIRMWARE_NAME": "Klipper"}
