"""Commands hidden from the dose check, and commands it does not account for, are refused.

* A line holding a character some reader takes for a line end (``\\x0b``, ``\\x1e``,
  ``\\x85``, U+2028 …) could carry ``G1 E40`` inside what the check reads as a comment:
  the reader refuses the program, naming the line, so ``gcode check`` exits 2 and
  ``print`` sends nothing and records nothing.
* A command the reader does not read (``M92`` steps per mm, ``M303`` autotune, ``M141``
  chamber, a Klipper macro …) is refused, naming the line and the command
  (:mod:`doseprint.gcode.commands`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from doseprint.errors import InputError
from doseprint.gcode.commands import COMMANDS, command_refusal
from doseprint.gcode.reader import GcodeReading, read_gcode, read_gcode_file
from doseprint.gcode.tokens import parse_command, split_lines, unsafe_character
from doseprint.typed import FLAVORS, Flavor
from helpers.cli import run_cli
from helpers.seal import reseal as seal_again


def read(text: str, flavor: Flavor | None = None) -> GcodeReading:
    return read_gcode(split_lines(text), flavor=flavor)


# Characters that end a line for some reader ----------------------------------------------

HIDDEN_BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]
"""Every character Python's str.splitlines() ends a line at, besides \\n and \\r."""

OTHER_UNSAFE = ["\x00", "\x1b", "\x7f", "\x9b", "\u202e", "\u200b", "\ufeff"]
"""Other controls (NUL, ESC, DEL, a C1 CSI) and format characters (right-to-left override,
zero-width space, byte-order mark)."""


@pytest.mark.parametrize("char", HIDDEN_BREAKS + OTHER_UNSAFE)
def test_a_comment_hiding_a_command_is_refused_naming_the_line(char: str) -> None:
    text = f"M83\n;TABLET:0\nG1 X1 E1\n; note{char}G1 E40\nG1 X2 E1\n"
    if char in HIDDEN_BREAKS:
        # Split as str.splitlines() does, the comment's tail is a command: 40 mm more.
        assert "G1 E40" in text.splitlines()
    with pytest.raises(InputError) as caught:
        read(text)
    message = str(caught.value)
    assert "line 4 (" in message and f"U+{ord(char):04X}" in message and "column 7" in message


@pytest.mark.parametrize("char", HIDDEN_BREAKS + OTHER_UNSAFE)
def test_a_file_holding_a_hidden_line_break_is_refused(tmp_path: Path, char: str) -> None:
    path = tmp_path / "job.gcode"
    path.write_text(f"M83\n;TABLET:0\nG1 X1 E1 ; ok{char}G1 E40\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"line 3 \("):
        read_gcode_file(path)


def test_line_ends_tabs_and_other_text_are_accepted() -> None:
    reading = read("M83\r\n;TABLET:0\rG1\tX1 E1 ; 10 °C under µ, «ok»\r\nG1 X2 E1\n")
    assert reading.filament_mm == {(0, 0): 2.0}
    assert unsafe_character("G1 X1\tE1 ; é") is None
    assert unsafe_character("G1 X1\rE40") == (5, "\r")


def test_an_item_holding_two_lines_is_refused() -> None:
    # A caller that did not split the text with split_lines: the reader never guesses.
    with pytest.raises(InputError, match="U\\+000D"):
        read_gcode(["M83\n", ";TABLET:0\n", "; note\rG1 E40\n"])


def test_a_non_ascii_space_in_a_command_is_refused() -> None:
    # Python's str.split and strip take U+00A0 for a space, firmwares do not.
    with pytest.raises(InputError, match="outside ASCII"):
        read("M83\nG1 X1\u00a0E40\n")


@pytest.fixture
def job_copy(two_drug_job: Path, tmp_path: Path) -> Path:
    job = tmp_path / "job"
    shutil.copytree(two_drug_job, job)
    return job


def inject(job: Path, line: str, *, after: str = ";TABLET:1", reseal: bool = False) -> int:
    """Put ``line`` after the first ``after`` line of the job's G-code; with ``reseal``,
    give job.json the new file's hash (as a forger would). Returns its line number."""
    gcode = job / "job.gcode"
    lines = gcode.read_text(encoding="utf-8").split("\n")
    at = lines.index(after) + 1
    lines.insert(at, line)
    data = "\n".join(lines).encode("utf-8")
    gcode.write_bytes(data)
    if reseal:
        manifest = json.loads((job / "job.json").read_text(encoding="utf-8"))
        manifest["gcode"]["sha256"] = hashlib.sha256(data).hexdigest()
        (job / "job.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        seal_again(job)  # with the site key: the checks beneath the seal must hold too
    return at + 1


@pytest.mark.parametrize("char", ["\u2028", "\x85", "\x0b", "\x1e"])
def test_gcode_check_refuses_a_hidden_command(
    job_copy: Path, char: str, capsys: pytest.CaptureFixture[str]
) -> None:
    number = inject(job_copy, f"; layer note{char}G1 E40")
    code, out, err = run_cli(capsys, "gcode", "check", job_copy)
    assert code == 2, out + err
    assert f"line {number} (" in err and f"U+{ord(char):04X}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("line", "command"),
    [("M92 E186", "M92"), ("M303 E0 S300 C3", "M303"), ("M141 S300", "M141"),
     ("M191 S120", "M191"), ("PRINT_START BED=60", "PRINT_START"), ("M999", "M999")],
)
def test_gcode_check_refuses_a_command_it_does_not_account_for(
    job_copy: Path, line: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    number = inject(job_copy, line, after=";TABLET:0")
    code, out, err = run_cli(capsys, "gcode", "check", job_copy)
    assert code == 2, out + err
    assert f"line {number} ({line!r})" in err and f"{command} is not accepted" in err


def test_print_refuses_a_hidden_command_before_any_record(
    job_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The forger also fixed job.json's hash; the reading before the send still refuses, so
    # the port is never opened (nothing listens there: a send would exit 3 with a record).
    number = inject(job_copy, "; note\u2028G1 E40", reseal=True)
    db = tmp_path / "records.sqlite"
    code, out, err = run_cli(capsys, "print", job_copy, "--port", "socket://127.0.0.1:9",
                             "--db", db, "--operator", "test")
    assert code == 2, out + err
    assert f"line {number} (" in err and "U+2028" in err
    code, out, _ = run_cli(capsys, "record", "list", "--db", db, "--json")
    assert code == 0 and json.loads(out) == []


# Commands the reader does not account for --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("M92 E186\n", "M92 is not accepted: steps per mm"),
        ("M303 E0 S300 C3\n", "M303 is not accepted: PID autotune"),
        ("M141 S300\n", "M141 is not accepted: the chamber"),
        ("M191 S90\n", "M191 is not accepted"),
        ("M500\n", "M500 is not accepted"),
        ("M1234 S1\n", "M1234 is not accepted: a command the reader does not account for"),
        ("G29\n", "G29 is not accepted: bed probing"),
        ("M118 ok\n", "M118 is not accepted"),
        ("M110 N100\n", "M110 is not accepted"),
        ("PRINT_START BED=60 EXTRUDER=200\n", "PRINT_START is not accepted: it is a printer"),
        ("END_PRINT\n", "END_PRINT is not accepted"),
        ("MY_MACRO\n", "MY_MACRO is not accepted: a Klipper macro"),
        ("SET_GCODE_OFFSET Z=-2\n", "SET_GCODE_OFFSET is not accepted"),
        ("SET_EXTRUDER_ROTATION_DISTANCE EXTRUDER=extruder DISTANCE=11\n",
         "how much filament every E value feeds"),
        ("SET_HEATER_TEMPERATURE HEATER=chamber TARGET=300\n", "only the heaters"),
        ("M83\n;TABLET:0\nM203 E5\n", "M203 is not accepted inside a tablet section"),
        ("M83\n;TABLET:0\nSET_VELOCITY_LIMIT VELOCITY=5\n", "inside a tablet section"),
        ("M83\n;TABLET:0\nM84\n", "M84 is not accepted inside a tablet section"),
        ("M106.1 S255\n", "sub-codes"),
    ],
)
def test_commands_not_accounted_for_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        read(text)


@pytest.mark.parametrize(
    ("text", "flavor", "fragment"),
    [
        # Marlin's and Klipper's G10 is firmware retraction: P names no tool there.
        ("G10 P0 S200\n", "marlin", "G10 is not accepted: firmware retraction"),
        ("G10 P0 S200\n", "klipper", "G10 is not accepted: firmware retraction"),
        ("M116\n", "marlin", "read only for reprapfirmware"),
        ("M568 P0 S200\n", "klipper", "read only for reprapfirmware"),
        ("SET_HEATER_TEMPERATURE HEATER=extruder TARGET=200\n", "marlin", "only for klipper"),
        ("M302 S120\n", "klipper", "read only for marlin, reprapfirmware"),
    ],
)
def test_commands_of_another_firmware_are_refused(
    text: str, flavor: Flavor, fragment: str
) -> None:
    with pytest.raises(InputError, match=fragment):
        read(text, flavor)
    read(text)  # the job's flavour unknown: a command listed for any flavour is read


@pytest.mark.parametrize(
    ("text", "flavor"),
    [
        ("M106 S255\nM107\nM117 Printing\nM73 P50\nG4 P100\nM400\nM300 S440 P200\n", "marlin"),
        ("M201 X1000\nM203 E50\nM204 P800\nM205 X8\nM220 S90\n;TABLET:0\nG1 X1\n", "marlin"),
        ("SET_VELOCITY_LIMIT ACCEL=1000\nSET_PRESSURE_ADVANCE ADVANCE=0.04\n"
         "SET_FAN_SPEED FAN=cooling SPEED=0.5\nTEMPERATURE_WAIT SENSOR=extruder MINIMUM=140\n"
         "TURN_OFF_HEATERS\n", "klipper"),
        ("M566 X600\nM116 P0\nG10 P0 S200 R170\nM568 P0 S200\n", "reprapfirmware"),
        ("M83\n;TABLET:0\nG1 X1 E1\n;TABLET:NONE\nM84\nM18\n", "marlin"),
    ],
)
def test_harmless_commands_are_accepted(text: str, flavor: Flavor) -> None:
    read(text, flavor)
    read(text)


def test_every_listed_command_names_a_flavour_and_what_it_is() -> None:
    for word, effect in COMMANDS.items():
        assert effect.word == word and effect.note, word
        assert effect.flavours and effect.flavours <= set(FLAVORS), word
    # Whatever feeds, moves, heats or sets the flow is read by the reader. TURN_OFF_HEATERS
    # only lowers targets to 0, which no limit is about.
    from doseprint.gcode.reader import _HANDLERS

    read_words = {*_HANDLERS, "T", "SET_HEATER_TEMPERATURE", "TURN_OFF_HEATERS"}
    for word, effect in COMMANDS.items():
        if effect.feeds or effect.moves or effect.heats or effect.flow:
            assert word in read_words, word


def test_refusal_outside_and_inside_tablets() -> None:
    m203 = parse_command("M203 E5")
    assert command_refusal(m203, "marlin", inside_tablet=False) is None
    assert command_refusal(m203, "marlin", inside_tablet=True) is not None
    assert command_refusal(m203, "klipper", inside_tablet=False) is not None


def test_gcode_check_reads_with_the_job_s_firmware(
    job_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # RepRapFirmware's G10 P<k> sets temperatures; on this Marlin job's printer it would
    # retract by the firmware's stored length.
    number = inject(job_copy, "G10 P0 S180", after=";TABLET:0")
    code, out, err = run_cli(capsys, "gcode", "check", job_copy)
    assert code == 2, out + err
    assert f"line {number} ('G10 P0 S180'): G10 is not accepted: firmware retraction" in err


def test_the_documented_list_is_the_reader_s() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "formats.md").read_text("utf-8")
    table = docs[docs.index("### Commands a template"):]
    table = table[:table.index("\n\n", table.index("| command |"))]
    for word in COMMANDS:
        shown = "T<k>" if word == "T" else word
        assert f"`{shown}" in table, word
