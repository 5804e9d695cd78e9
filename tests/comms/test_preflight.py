"""The pre-flight and the firmware check: nothing of a job runs on a firmware that is not the
profile's or lacks one of its commands.

Reply strings: Marlin ``Marlin/src/gcode/parser.cpp`` (``unknown_command_warning``) and
``Marlin/src/module/tool_change.cpp`` (``invalid_extruder_error``); Klipper
``klippy/gcode.py`` (``cmd_HELP``: ``"%-10s: %s"`` under ``Available extended commands:``,
``cmd_default``: ``Unknown command:"…"``, ``cmd_M115``); RepRapFirmware
``src/GCodes/GCodes.cpp`` (``GetSpecifiedOrCurrentTool``: ``Invalid tool number``).
"""

from __future__ import annotations

import pytest

from doseprint.comms.framing import program_from_gcode
from doseprint.comms.preflight import CORE_WORDS, plan_preflight, remedy, word_uses
from doseprint.comms.protocol import MarlinProtocol, ProtocolState
from doseprint.comms.replies import Flavor
from doseprint.comms.streamer import stream_gcode
from doseprint.comms.transport import LoopbackTransport
from doseprint.comms.virtual import VirtualMarlin
from doseprint.errors import FirmwareRefusedError, InputError, PrinterTimeoutError

from .fakes import M115_ANSWER

TWO_TOOLS = """\
; start
M140 S60
M104 T0 S200
M104 T1 S190
M190 S60
M109 T0 S200
M109 T1 S190
G28
T0
M83
;TABLET:NONE
G1 X5 Y5 E2 F1200
;TABLET:0
G1 X10 Y10 E0.5 F1200
M106 S255
;TABLET:NONE
T1
G1 X20 Y10 E0.5
;TABLET:1
G1 X30 Y10 E0.5
;TABLET:NONE
M107
M104 T0 S0
M104 T1 S0
M140 S0
M84
"""

KLIPPER_JOB = """\
M140 S60
M190 S60
SET_HEATER_TEMPERATURE HEATER=extruder TARGET=200
TEMPERATURE_WAIT SENSOR=extruder MINIMUM=199
G28
T0
M83
;TABLET:0
G1 X10 Y10 E0.5 F1200
T1
G1 X20 Y10 E0.5
;TABLET:NONE
TURN_OFF_HEATERS
M84
"""


def plan(text: str, flavor: Flavor) -> object:
    return plan_preflight(program_from_gcode(text), flavor)


def test_the_program_keeps_sections_and_source_lines() -> None:
    program = program_from_gcode(TWO_TOOLS)
    assert program.commands[0] == "M140 S60" and program.source_lines[0] == 2
    assert program.first_tablet_command == program.commands.index("G1 X10 Y10 E0.5 F1200")
    assert program.sections[program.commands.index("G1 X30 Y10 E0.5")] == 1
    uses = word_uses(program)
    # T1 is used as a tool change and as the T parameter of M104/M109.
    assert uses["T1"].count == 4 and uses["T1"].first_source_line == 4
    assert uses["M106"].first_tablet == 0
    assert uses["G28"].first_tablet_index is None


def test_marlin_probes_have_no_effect_on_a_job() -> None:
    found = plan_preflight(program_from_gcode(TWO_TOOLS), "marlin")
    commands = [p.command for p in found.probes]
    # A bed set point without its S, the fan off, each tool changed without moving.
    assert commands == ["M140", "T0 S1", "T1 S1", "M107"]
    assert set(found.core) <= CORE_WORDS["marlin"] and "G1" in found.core
    assert found.before_tablets == ()


def test_klipper_looks_up_extended_commands_and_tool_macros_in_help() -> None:
    found = plan_preflight(program_from_gcode(KLIPPER_JOB), "klipper")
    (help_probe,) = found.probes
    assert help_probe.command == "HELP" and help_probe.lists_commands
    assert set(help_probe.words) == {"SET_HEATER_TEMPERATURE", "TEMPERATURE_WAIT", "T0", "T1",
                                     "TURN_OFF_HEATERS"}
    # M140/M190 need a [heater_bed]; with no harmless form, they are taken before tablets.
    assert set(found.before_tablets) == {"M140", "M190"}


def test_a_word_with_no_harmless_form_inside_a_tablet_refuses_the_job() -> None:
    job = TWO_TOOLS.replace("M106 S255", "G2 X12 Y12 I1 J0 E0.3")
    with pytest.raises(InputError) as info:
        plan(job, "marlin")
    problem = info.value.problems[0]
    assert problem.file == "job.gcode" and problem.key == "line 15"
    assert "G2" in problem.message and "tablet 0" in problem.message
    assert "before the first ;TABLET: marker" in (info.value.hint or "")
    # Before the first tablet, the print's own check stops it before any tablet.
    early = "G2 X12 Y12 I1 J0\n" + TWO_TOOLS
    assert "G2" in plan_preflight(program_from_gcode(early), "marlin").before_tablets


def test_remedies_say_what_the_site_must_configure() -> None:
    assert "[gcode_macro T1]" in remedy("T1", "klipper")
    assert "ACTIVATE_EXTRUDER EXTRUDER=extruder1" in remedy("T1", "klipper")
    assert "M563" in remedy("T2", "reprapfirmware")
    assert "EXTRUDERS" in remedy("T1", "marlin")
    assert "Configuration.h" in remedy("M106", "marlin")


# The protocol running the pre-flight


def feed(protocol: MarlinProtocol, *lines: str) -> None:
    for line in lines:
        protocol.on_reply(line)


def drain(protocol: MarlinProtocol) -> list[str]:
    sent = []
    while (line := protocol.next_to_send()) is not None:
        sent.append(line)
    return sent


def greeted(text: str, flavor: Flavor, answer: list[str]) -> MarlinProtocol:
    program = program_from_gcode(text)
    protocol = MarlinProtocol(program.commands, flavor=flavor,
                              preflight=plan_preflight(program, flavor))
    assert drain(protocol) == ["M115"]
    feed(protocol, *answer)
    return protocol


def test_marlin_without_the_second_tool_refuses_before_the_job() -> None:
    protocol = greeted(TWO_TOOLS, "marlin", M115_ANSWER)
    assert protocol.state is ProtocolState.PREFLIGHT
    for probe, answer in (("M140", ["ok"]), ("T0 S1", ["ok"])):
        assert drain(protocol) == [probe]
        feed(protocol, *answer)
    assert drain(protocol) == ["T1 S1"]
    with pytest.raises(FirmwareRefusedError) as info:
        feed(protocol, "echo:T1 Invalid extruder", "ok")
    message = info.value.message
    assert "does not have T1" in message and "line 4 of job.gcode" in message
    assert "nothing of the job was sent" in message
    assert "EXTRUDERS" in (info.value.hint or "")
    assert info.value.last_acked == 0


def test_a_passed_pre_flight_starts_the_job_with_the_numbering_reset() -> None:
    protocol = greeted(TWO_TOOLS, "marlin", M115_ANSWER)
    for _ in range(4):
        drain(protocol)
        feed(protocol, "echo:Active Extruder: 1", "ok")
    assert protocol.state is ProtocolState.STREAMING
    assert drain(protocol) == ["N0 M110 N0*125"]
    assert protocol.probes_sent == 4


def test_klipper_without_tool_macros_is_refused_with_what_to_configure() -> None:
    answer = ["ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0"]
    protocol = greeted(KLIPPER_JOB, "klipper", answer)
    assert drain(protocol) == ["HELP"]
    listing = [
        "// Available extended commands:",
        "// ACTIVATE_EXTRUDER: Change the active extruder",
        "// SET_HEATER_TEMPERATURE: Sets a heater temperature",
        "// TEMPERATURE_WAIT: Wait for a temperature on a sensor",
        "// TURN_OFF_HEATERS: Turn off all heaters",
        "// T0        : G-Code macro",
    ]
    feed(protocol, *listing)
    with pytest.raises(FirmwareRefusedError) as info:
        feed(protocol, "ok")
    assert "does not have T1" in info.value.message
    assert "tablet 0" in info.value.message
    assert "[gcode_macro T1]" in (info.value.hint or "")
    # With both macros defined, the job starts.
    protocol = greeted(KLIPPER_JOB, "klipper", answer)
    drain(protocol)
    feed(protocol, *listing, "// T1        : G-Code macro", "ok")
    assert protocol.state is ProtocolState.STREAMING


def test_reprapfirmware_without_the_tool_is_refused() -> None:
    answer = ["FIRMWARE_NAME: RepRapFirmware for Duet 3 MB6HC FIRMWARE_VERSION: 3.5.1", "ok"]
    job = TWO_TOOLS.replace("M106 S255\n", "").replace("M107\n", "")
    protocol = greeted(job, "reprapfirmware", answer)
    assert drain(protocol) == ["G10 P0"]
    feed(protocol, "Tool 0 offsets: X0.000 Y0.000 Z0.000, active/standby temperature(s): 0/0",
         "ok")
    assert drain(protocol) == ["G10 P1"]
    with pytest.raises(FirmwareRefusedError, match="does not have T1") as info:
        feed(protocol, "Error: G10: Invalid tool number", "ok")
    assert "M563" in (info.value.hint or "")


@pytest.mark.parametrize(
    ("flavor", "answer", "match"),
    [
        ("marlin", ["ok FIRMWARE_NAME:Klipper FIRMWARE_VERSION:v0.12.0"],
         "firmware is Klipper .* compiled for a Marlin printer profile"),
        ("klipper", M115_ANSWER, "firmware is Marlin .* compiled for a Klipper printer profile"),
        ("reprapfirmware", M115_ANSWER, "firmware is Marlin"),
        ("marlin", ['echo:Unknown command: "M115"', "ok"], "no FIRMWARE_NAME, which is not Marlin"),
        ("marlin", ["FIRMWARE_NAME:Smoothieware FIRMWARE_VERSION:edge", "ok"],
         "FIRMWARE_NAME:Smoothieware, which is not Marlin"),
    ],
)
def test_a_firmware_other_than_the_profile_s_is_refused_at_the_handshake(
    flavor: Flavor, answer: list[str], match: str
) -> None:
    protocol = MarlinProtocol(["G28"], flavor=flavor)
    assert drain(protocol) == ["M115"]
    with pytest.raises(FirmwareRefusedError, match=match) as info:
        feed(protocol, *answer)
    assert info.value.last_acked == 0


def test_a_silent_probe_times_out_without_sending_the_job() -> None:
    protocol = greeted(TWO_TOOLS, "marlin", M115_ANSWER)
    assert drain(protocol) == ["M140"]
    with pytest.raises(PrinterTimeoutError, match="pre-flight's 'M140'"):
        protocol.on_timeout(10.0)


def test_the_virtual_printer_refuses_a_two_tool_job_on_one_tool() -> None:
    program = program_from_gcode(TWO_TOOLS)
    printer = VirtualMarlin(extruders=1)
    with LoopbackTransport(printer) as link, pytest.raises(FirmwareRefusedError, match="T1"):
        stream_gcode(program.commands, link, flavor="marlin",
                     preflight=plan_preflight(program, "marlin"))
    # Only the handshake and harmless probes reached the printer.
    assert printer.accepted == ["M115", "M140", "T0 S1", "T1 S1"]
    assert printer.tools[0].target_c == 0.0


@pytest.mark.parametrize("flavor", ["marlin", "klipper", "reprapfirmware"])
def test_every_shipped_template_s_job_passes_the_plan(flavor: Flavor, tmp_path: object) -> None:
    # What the shipped templates put inside tablets (tool changes, set points, flow
    # factors) is core or probed on its own firmware: no job is refused for its templates.
    tool_change = {
        "marlin": "M104 T0 S150\nM104 T1 S200\nT1\nM109 T1 S200\nM221 T1 S100",
        "klipper": "SET_HEATER_TEMPERATURE HEATER=extruder TARGET=150\nT1\nM109 T1 S200\n"
                   "M221 S100",
        "reprapfirmware": "G10 P1 S200 R150\nT1\nM116 P1\nM221 D1 S100",
    }[flavor]
    job = f"G28\nT0\nM83\n;TABLET:0\nG1 X1 Y1 E1\n{tool_change}\nG1 X2 Y2 E1\n" \
          "G92 E0\nG4 P100\nM400\n;TABLET:NONE\nM84\n"
    found = plan_preflight(program_from_gcode(job), flavor)
    assert found.before_tablets == ()
