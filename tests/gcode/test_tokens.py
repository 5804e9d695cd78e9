"""The one G-code tokenizer: what a print sends is what the dose reading reads.

The dose check (``gcode/reader.py``), the commands a print sends (``comms/framing.py``), the
motion planner and the virtual printer all split text with ``gcode/tokens.py``; these tests
hold them to the same commands on whole jobs and on the awkward lines a hand-edited file
may hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import doseprint.gcode.reader as reader_module
from doseprint.comms.framing import commands_from_gcode, format_line, program_from_gcode
from doseprint.comms.virtual import VirtualMarlin
from doseprint.errors import InputError
from doseprint.gcode.reader import read_gcode
from doseprint.gcode.tokens import (
    Command,
    command_text,
    command_word,
    parse_command,
    split_checksum,
    split_commands,
    split_lines,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "hctz-12.5mg.gcode"


def commands_read(text: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands the dose reading parses, in order, as it reads the whole text."""
    seen: list[str] = []

    def recording(command: str) -> Command:
        seen.append(command)
        return parse_command(command)

    with monkeypatch.context() as patch:
        patch.setattr(reader_module, "parse_command", recording)
        read_gcode(split_lines(text))
    return seen


def job_texts(two_drug_job: Path) -> list[str]:
    return [GOLDEN.read_text(encoding="utf-8"),
            (two_drug_job / "job.gcode").read_text(encoding="utf-8")]


def test_a_job_is_sent_as_it_is_read(two_drug_job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in job_texts(two_drug_job):
        sent = list(program_from_gcode(text).commands)
        assert sent == commands_from_gcode(text) == split_commands(text)
        assert len(sent) > 1000
        assert commands_read(text, monkeypatch) == sent


def test_the_virtual_printer_runs_what_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    text = GOLDEN.read_text(encoding="utf-8")
    commands = commands_read(text, monkeypatch)
    printer = VirtualMarlin(extrude_min_temp_c=0.0)
    printer.connect()
    lines = [format_line(0, "M110 N0")] + [format_line(n, c) for n, c in enumerate(commands, 1)]
    for line in lines:
        list(printer.feed(line))
    assert printer.accepted == ["M110 N0", *commands]
    assert printer.unknown_commands == []
    # Each command's word and parameters as the printer parsed them are the reader's.
    assert [parse_command(c).word for c in commands] == [command_word(c) for c in commands]


# Lines a hand-edited file may hold, and the command a printer receives for each.
LINES: list[tuple[str, str]] = [
    ("G1 X1 E0.5 ; E99 in a comment", "G1 X1 E0.5"),
    ("; only a comment", ""),
    ("", ""),
    ("   \t ", ""),
    ("G1 X1;E5", "G1 X1"),
    ("M117 a;b", "M117 a"),
    ("N123 G1 X1 E2*45", "G1 X1 E2"),
    ("N123G1 X1*45", "G1 X1"),  # Marlin's parser skips N and its number, spaces or not
    ("n12 g1 x1", "g1 x1"),
    ("N-5 G1 X1 E5", "G1 X1 E5"),  # a signed number too (NUMERIC_SIGNED)
    ("G1 X1 *", "G1 X1 *"),  # a '*' without digits is no checksum: refused, not dropped
    ("G1 X1 (E50 is a comment) E0.5", "G1 X1   E0.5"),
    ("G1 X1 (unclosed E50", "G1 X1 (unclosed E50"),
    ("T1", "T1"),
    ("SET_HEATER_TEMPERATURE HEATER=extruder1 TARGET=200",
     "SET_HEATER_TEMPERATURE HEATER=extruder1 TARGET=200"),
    ("  M104 S210  \r\n", "M104 S210"),
]


@pytest.mark.parametrize(("line", "command"), LINES)
def test_command_text(line: str, command: str) -> None:
    assert command_text(line) == command
    assert split_commands(line) == ([command] if command else [])


def test_split_lines_ends_lines_where_firmware_does() -> None:
    assert split_lines("G28\r\nG1 X1\rG1 X2\nM84\n") == ["G28", "G1 X1", "G1 X2", "M84"]
    # A form feed or a vertical tab ends no line on a printer, so none here either.
    assert split_lines("G1 X1\x0cE2\x0bF3") == ["G1 X1\x0cE2\x0bF3"]
    assert split_lines("") == [] and split_lines("\n") == [""]


def test_split_checksum() -> None:
    assert split_checksum("N12 G1 X10*87") == ("N12 G1 X10", 87)
    assert split_checksum("G1 X10") == ("G1 X10", None)
    assert split_checksum("G1 X10*") == ("G1 X10*", None)
    assert split_checksum("M117 a*b*3 ") == ("M117 a*b", 3)


@pytest.mark.parametrize(
    ("text", "word", "params"),
    [
        ("G1 X10 Y5.5 E0.2 F1200", "G1", {"X": 10.0, "Y": 5.5, "E": 0.2, "F": 1200.0}),
        ("g1 x1 y2 e-.5", "G1", {"X": 1.0, "Y": 2.0, "E": -0.5}),
        ("G1X3Y4E.5F1200", "G1", {"X": 3.0, "Y": 4.0, "E": 0.5, "F": 1200.0}),  # packed
        ("G01 X1", "G1", {"X": 1.0}),  # as Marlin reads the number
        ("M104 S 200 T1", "M104", {"S": 200.0, "T": 1.0}),  # spaces after the letter
        ("G1 X E1", "G1", {"E": 1.0}),  # a letter with no number is left out
        ("G1 X1 X2", "G1", {"X": 2.0}),  # the last one counts, as in Marlin
        ("T1", "T1", {}),
        ("G1.5 X1", "G1.5", {"X": 1.0}),
    ],
)
def test_parse_classic_command(text: str, word: str, params: dict[str, float]) -> None:
    command = parse_command(text)
    assert (command.word, command.params, command.extended) == (word, params, {})
    assert command.is_classic and command_word(text) == word


def test_parse_words_keep_what_is_written() -> None:
    command = parse_command("G1 5 X1..2 E")
    assert command.words == (("", "5"), ("X", "1..2"), ("E", ""))
    assert command.params == {} and command.args == " 5 X1..2 E"
    assert parse_command("G1.5 X1").base == "G1" and parse_command("G1.5 X1").subcode == "5"
    assert parse_command("G1 X1").subcode is None


@pytest.mark.parametrize(
    ("text", "word", "extended"),
    [
        ("SET_HEATER_TEMPERATURE HEATER=extruder1 TARGET=200", "SET_HEATER_TEMPERATURE",
         {"HEATER": "extruder1", "TARGET": "200"}),
        ("activate_extruder extruder=extruder1", "ACTIVATE_EXTRUDER", {"EXTRUDER": "extruder1"}),
        ("SET_HEATER_TEMPERATURE\theater=extruder target=0", "SET_HEATER_TEMPERATURE",
         {"HEATER": "extruder", "TARGET": "0"}),
        ("TURN_OFF_HEATERS", "TURN_OFF_HEATERS", {}),
        ("T?", "T?", {}),
        ("", "", {}),
    ],
)
def test_parse_other_commands(text: str, word: str, extended: dict[str, str]) -> None:
    command = parse_command(text)
    assert (command.word, command.params, command.extended) == (word, {}, extended)
    assert not command.is_classic and command_word(text) == word


@pytest.mark.parametrize("line", [
    "G1 X1 E0.5 (E50 is a comment)",
    "N-5 G1 X1 E0.5",
    "N7G1 X1 E0.5*99",
    "g1 x1 e0.5",
    "G1X1E0.5",
])
def test_what_is_read_is_what_is_sent(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each line feeds 0.5 mm as read, and the command sent carries exactly that E.
    text = f"M83\n;TABLET:0\n{line}\n"
    assert read_gcode(split_lines(text)).filament_mm == {(0, 0): 0.5}
    sent = commands_from_gcode(text)
    assert commands_read(text, monkeypatch) == sent
    assert parse_command(sent[-1]).params["E"] == 0.5


def test_a_bare_star_is_refused_by_reader_and_sender() -> None:
    with pytest.raises(InputError, match="cannot read X"):
        read_gcode(["M83", "G1 X1*"])
    assert commands_from_gcode("G1 X1*\n") == ["G1 X1*"]  # the protocol refuses its '*'
