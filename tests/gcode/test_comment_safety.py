"""No user string reaches the G-code except inside a comment that stays one.

The readers refuse line breaks and control characters in ids and names; the writer
checks again (defence in depth): the header's comment lines, and every value a printer
template writes, must not hold a character that ends a line for any reader (``\\n``,
``\\r``, ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``, ``\\x85``, U+2028, U+2029) or any other
control character. A profile, formulation or header that would is refused (exit 2)
before anything is written."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from doseprint.errors import InputError, TemplateRenderError
from doseprint.gcode.format import comment_text
from doseprint.gcode.render import GcodeProgram, purge_tower, render_gcode
from doseprint.gcode.tokens import split_commands
from doseprint.models.formulation import Formulation
from doseprint.models.printer import PrinterProfile
from doseprint.slicer.plate import place_tablets
from helpers.synthetic_gcode import TOOLS, WIDTH_MM, profile_for, two_tool_tablets

BREAKS = ["\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
          "\u2029", "\x00", "\x1b", "\x7f"]
IDS = [repr(b) for b in BREAKS]


def render(profile: PrinterProfile, header: list[str] | None = None,
           tools: tuple[Formulation, ...] = TOOLS) -> GcodeProgram:
    tablets = two_tool_tablets(2)
    tower = purge_tower(profile, 2, WIDTH_MM, 0.2)
    plate = place_tablets(profile, [9.0] * 2, "rx.toml",
                          tower_mm=None if tower is None else tower.size_mm, tools=2)
    return render_gcode(profile, tools, plate, tablets, header or ["prescription RX-1"],
                        tower=tower)


@pytest.mark.parametrize("flavor", ["marlin", "klipper", "reprapfirmware"])
def test_a_good_program_has_one_command_or_comment_per_line(flavor: str) -> None:
    text = render(profile_for(flavor)).text
    lines = text.split("\n")
    assert text.splitlines() == lines[:-1]  # no line break but "\n", whoever splits
    assert not [ch for ch in text.replace("\n", "")
                if (ord(ch) < 32 and ch != "\t") or 0x7F <= ord(ch) <= 0x9F
                or ch in "\u2028\u2029"]


@pytest.mark.parametrize("brk", BREAKS, ids=IDS)
def test_the_writer_refuses_a_header_line_that_would_end_its_comment(brk: str) -> None:
    # "prescription RX-1\n sha256 …": the header comment ended after the id and the
    # rest of the line was a command.
    header = [f"prescription RX-1{brk} G28 sha256 0123"]
    with pytest.raises(InputError) as caught:
        render(profile_for("marlin"), header)
    assert caught.value.exit_code == 2
    assert "comment" in str(caught.value)


@pytest.mark.parametrize("brk", BREAKS, ids=IDS)
@pytest.mark.parametrize("flavor", ["marlin", "klipper", "reprapfirmware"])
def test_a_profile_id_that_would_end_the_templates_comment_is_refused(
    flavor: str, brk: str
) -> None:
    # Every shipped start template names the printer in a comment: "; start: <id> …".
    profile = dataclasses.replace(profile_for(flavor), id=f"site-printer{brk}G28")
    with pytest.raises(TemplateRenderError) as caught:
        render(profile)
    assert caught.value.exit_code == 2
    assert "start.gcode.j2" in str(caught.value)
    assert "U+" in str(caught.value)


@pytest.mark.parametrize("brk", ["\n", "\u2028", "\x85"], ids=repr)
def test_a_formulation_id_that_would_end_the_templates_comment_is_refused(brk: str) -> None:
    # The Marlin start template writes "M104 T0 S170 ; <formulation id>".
    tools = (dataclasses.replace(TOOLS[0], id=f"theophylline-hpc-30{brk}M302 P1"), TOOLS[1])
    with pytest.raises(TemplateRenderError):
        render(profile_for("marlin"), tools=tools)


def site_templates(tmp_path: Path, flavor: str, extra_line: str) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(profile_for(flavor).templates_dir, folder)
    start = folder / "start.gcode.j2"
    start.write_text(extra_line + "\n" + start.read_text(), encoding="utf-8")
    return folder


@pytest.mark.parametrize("brk", ["\n", "\r", "\u2029", "\x1e"], ids=repr)
def test_any_value_a_site_template_writes_must_stay_on_its_line(tmp_path: Path, brk: str) -> None:
    folder = site_templates(tmp_path, "marlin",
                            "; {{ profile.name }}{% for t in tools %} {{ t.api }}{% endfor %}")
    profile = dataclasses.replace(profile_for("marlin"), templates_dir=str(folder))
    assert "; Generic" in render(profile).text  # the template works with plain values
    for changed in (dataclasses.replace(profile, name=f"Site printer{brk}G28"),):
        with pytest.raises(TemplateRenderError):
            render(changed)
    tools = (dataclasses.replace(TOOLS[0], api=f"theophylline{brk}G28"), TOOLS[1])
    with pytest.raises(TemplateRenderError):
        render(profile, tools=tools)


def test_a_template_line_holding_a_line_separator_is_refused(tmp_path: Path) -> None:
    # str.splitlines() breaks at a form feed; the firmware does not: refuse the template.
    folder = site_templates(tmp_path, "marlin", "; page\x0cG28")
    profile = dataclasses.replace(profile_for("marlin"), templates_dir=str(folder))
    with pytest.raises(TemplateRenderError) as caught:
        render(profile)
    assert "line 1" in str(caught.value) and "U+000C" in str(caught.value)


def test_comment_text() -> None:
    assert comment_text("prescription RX-2026-000123 sha256 ab12") == (
        "prescription RX-2026-000123 sha256 ab12")
    assert comment_text("théophylline 10 % w/w") == "théophylline 10 % w/w"
    for brk in [*BREAKS, "\t", "\ud800"]:
        with pytest.raises(InputError):
            comment_text(f"RX-1{brk}G28", key="id")


def test_what_the_printer_is_sent_is_what_the_writer_wrote() -> None:
    # A good program's commands, split as the streamer splits them, hold no comment text.
    text = render(profile_for("marlin"), ["prescription RX-1 sha256 0123"]).text
    commands = split_commands(text)
    assert not any("RX-1" in c or "theophylline" in c for c in commands)
