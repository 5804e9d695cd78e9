"""A printer profile's templates checked against the reader's allow-list
(:func:`doseprint.gcode.commands.template_problems`): a site's profile whose start template
holds M92 is named with its ``templates`` key and the template; compiling with it is
refused (exit 2), as the reader refuses the program."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from doseprint.gcode.commands import template_problems
from doseprint.library import shipped_dir
from doseprint.models.load import load_printer
from helpers.cli import run_cli
from helpers.rx import write_rx

PRINTERS = shipped_dir("printer_profiles")
SHIPPED_TEMPLATES = PRINTERS / "templates"


@pytest.fixture(autouse=True)
def _no_site_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS"):
        monkeypatch.delenv(name, raising=False)
    yield


def site_profile(tmp_path: Path, shipped_id: str, templates: str,
                 edits: dict[str, str]) -> Path:
    """A site's copy of a shipped profile whose templates (a copy of the shipped folder
    ``templates``) have ``edits`` appended: {template name: lines}."""
    site = tmp_path / "printers"
    mine = site / "templates" / "mine"
    shutil.copytree(SHIPPED_TEMPLATES / templates, mine)
    for name, lines in edits.items():
        file = mine / f"{name}.gcode.j2"
        file.write_text(file.read_text(encoding="utf-8") + lines, encoding="utf-8")
    text = (PRINTERS / f"{shipped_id}.toml").read_text(encoding="utf-8")
    text = text.replace(f'id = "{shipped_id}"', 'id = "site-printer"')
    text = text.replace(f'templates = "{templates}"', 'templates = "mine"')
    path = site / "site-printer.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    problems = template_problems(load_printer(path))
    assert problems and {(p.file, p.key) for p in problems} == {(str(path), "templates")}
    return "\n".join(str(p) for p in problems)


@pytest.mark.parametrize("path", sorted(PRINTERS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_profile_s_templates_pass(path: Path) -> None:
    assert template_problems(load_printer(path)) == []


@pytest.mark.parametrize(
    ("shipped_id", "templates", "edits", "fragment"),
    [
        ("generic-marlin-1x175", "marlin", {"start": "M92 E186\n"},
         "start.gcode.j2 writes 'M92 E186' (line 13 of its output): M92 is not accepted: "
         "steps per mm"),
        ("generic-marlin-1x175", "marlin", {"end": "M303 E0 S300 C8\n"},
         "M303 is not accepted"),
        ("generic-rrf-1x175", "reprapfirmware", {"start": "M141 S300\n"},
         "M141 is not accepted"),
        ("generic-klipper-1x175", "klipper", {"start": "PRINT_START BED={{ bed_temp_c }}\n"},
         "'PRINT_START BED=60' (line 12 of its output): PRINT_START is not accepted"),
        ("generic-klipper-1x175", "klipper", {"end": "END_PRINT\n"},
         "END_PRINT is not accepted"),
        # layer_change runs inside the last tablet's section: no new limits there.
        ("generic-marlin-1x175", "marlin", {"layer_change": "M203 E10\n"},
         "M203 is not accepted inside a tablet section"),
        # RepRapFirmware's tool temperatures are a firmware retraction on Marlin.
        ("generic-marlin-1x175", "marlin", {"start": "G10 P0 S200\n"},
         "G10 is not accepted: firmware retraction"),
        # A branch only a job of every tool takes is rendered too.
        ("generic-marlin-2x175", "marlin",
         {"tool_change": "{% if tools | length > 1 %}M92 E400{% endif %}\n"}, "M92"),
        ("generic-marlin-1x175", "marlin", {"start": "; note\u2028G1 E40\n"}, "U+2028"),
    ],
)
def test_a_template_command_the_reader_does_not_account_for_is_named(
    tmp_path: Path, shipped_id: str, templates: str, edits: dict[str, str], fragment: str
) -> None:
    path = site_profile(tmp_path, shipped_id, templates, edits)
    message = refusal(path)
    assert f"{path}: templates: " in message and fragment in message


def test_harmless_template_commands_load(tmp_path: Path) -> None:
    path = site_profile(tmp_path, "generic-marlin-1x175", "marlin", {
        "start": "M203 E50\nM204 P800\nM106 S0\nM117 Druck läuft\n",
        "layer_change": "M117 Layer {{ layer }}\nM73 P{{ layer }}\n",
        "end": "M107\nM300 S440 P200\nM81\n"})
    assert template_problems(load_printer(path)) == []


def test_compiling_with_the_profile_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = site_profile(tmp_path, "generic-marlin-1x175", "marlin", {"start": "M92 E186\n"})
    out = tmp_path / "job"
    code, _, err = run_cli(capsys, "compile", write_rx(tmp_path, units=1), "--printer",
                           "site-printer", "--printers", path.parent, "--out", out)
    assert code == 2
    # Refused where the profile is taken up (job/prepare.py), before any design work.
    assert "'M92 E186'" in err and "M92 is not accepted: steps per mm" in err
    assert "templates" in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["release", "preview"])
def test_every_use_of_the_profile_refuses_it_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # The check runs where a profile is taken up for a job (job/prepare.py), so release and
    # preview refuse it as compile does: named, exit 2, before designing anything.
    path = site_profile(tmp_path, "generic-marlin-1x175", "marlin", {"end": "M303 E0 S300\n"})
    args = [command, write_rx(tmp_path, units=1), "--printer", "site-printer",
            "--printers", path.parent]
    if command == "preview":
        args += ["--out", tmp_path / "preview.html"]
    code, _, err = run_cli(capsys, *args)
    assert code == 2, err
    assert "templates" in err and "M303" in err and "Traceback" not in err
    assert not (tmp_path / "preview.html").exists()
