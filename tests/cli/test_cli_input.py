"""The real command line with bad and good input: cli.md's exit codes, messages that name
the key, no traceback, and nothing written when the input is refused."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import doseprint
from conftest import EXAMPLES
from doseprint.cli import cli, main
from doseprint.library import shipped_dir
from helpers.cli import run_cli as run
from models.rules import RULES, Rule
from models.rxfiles import base_rx, edited, toml_dumps, write_rx

PRINTER = "generic-marlin-1x175"


@pytest.fixture(autouse=True)
def _no_site_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS"):
        monkeypatch.delenv(name, raising=False)
    yield


def subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS")}
    env["PYTHONWARNINGS"] = "error"
    return env


def run_subprocess(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m doseprint ARGS`` in a child process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "doseprint", *map(str, args)], cwd=cwd,
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)


def assert_refused(code: int, out: str, err: str, key: str, folder: Path, rx: Path) -> None:
    """Exit 2, the key on stderr, no traceback, and nothing but the prescription in
    ``folder`` (no job folder, no temporary one)."""
    assert code == 2, err
    assert key in err
    assert "nothing was written" in err
    assert "Traceback" not in out + err
    assert not (folder / "job").exists()
    assert sorted(p.name for p in folder.iterdir()) == [rx.name]


def small_rx(folder: Path, units: int = 2) -> Path:
    return write_rx(folder, edited(base_rx(), [(("dispense", "units"), units)]))


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly compiled job of two tablets, by the real command in a child process."""
    folder = tmp_path_factory.mktemp("compiled")
    rx = small_rx(folder)
    done = run_subprocess("compile", rx, "--printer", PRINTER, "--out", folder / "job",
                          cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    return folder / "job"


# A bad prescription of every rule: exit 2, nothing written -----------------------------


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_bad_prescription_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: Rule
) -> None:
    rx = write_rx(tmp_path, edited(base_rx(), rule.edits))
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert_refused(code, out, err, f"{rx}: {rule.key}: ", tmp_path, rx)


@pytest.mark.parametrize("rule", [r for r in RULES if r.json], ids=lambda r: r.id)
def test_bad_json_prescription_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: Rule
) -> None:
    rx = write_rx(tmp_path, edited(base_rx(), rule.edits), "json")
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert_refused(code, out, err, f"{rx}: {rule.key}: ", tmp_path, rx)


BROKEN_FILES = {
    "toml-syntax": ("rx.toml", toml_dumps(base_rx()).replace('= "PT-7F3A"', "= PT-7F3A"),
                    "line 3"),
    "json-top-level-array": ("rx.json", json.dumps([base_rx()]), "top level"),
    "json-nan": ("rx.json", json.dumps(edited(base_rx(), [(("actives", 0, "dose_mg"),
                                                           float("nan"))])), "actives[0].dose_mg"),
    "empty-file": ("rx.toml", "", "schema: is required"),
}


@pytest.mark.parametrize(("name", "text", "says"), BROKEN_FILES.values(),
                         ids=list(BROKEN_FILES))
def test_unreadable_prescription_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, says: str
) -> None:
    rx = tmp_path / name
    rx.write_text(text)
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert_refused(code, out, err, str(rx), tmp_path, rx)
    assert says in err


def test_every_problem_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = edited(base_rx(), [(("patinet",), "PT-1"), (("actives", 0, "dose_mg"), -1.0),
                              (("dispense", "units"), 0)])
    rx = write_rx(tmp_path, data)
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert_refused(code, out, err, "3 problems", tmp_path, rx)
    for key in ("patinet", "actives[0].dose_mg", "dispense.units"):
        assert f"{rx}: {key}: " in err


def test_missing_prescription_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx = tmp_path / "no-such-rx.toml"
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert code == 2
    assert f"{rx}: file not found" in err
    assert "Traceback" not in out + err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("rule_id", ["unknown-top-key", "dose-nan-toml", "sustained-too-fast"])
def test_bad_prescription_exits_2_as_a_process(tmp_path: Path, rule_id: str) -> None:
    rule = next(r for r in RULES if r.id == rule_id)
    rx = write_rx(tmp_path, edited(base_rx(), rule.edits))
    done = run_subprocess("compile", rx.name, "--printer", PRINTER, "--out", "job", cwd=tmp_path)
    assert_refused(done.returncode, done.stdout, done.stderr, f"{rx.name}: {rule.key}: ",
                   tmp_path, rx)


def test_json_null_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx = write_rx(tmp_path, edited(base_rx(), [(("id",), None)]), "json")
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert_refused(code, out, err, f"{rx}: id: ", tmp_path, rx)


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx = write_rx(tmp_path, edited(base_rx(), [(("actives", 0, "dose_mg"), 0)]))
    code, _, err = run(capsys, "--debug", "compile", rx, "--printer", PRINTER,
                       "--out", tmp_path / "job")
    assert code == 2
    assert "Traceback" in err and "actives[0].dose_mg" in err


# Bad options and libraries ---------------------------------------------------------------


@pytest.mark.parametrize(("options", "key"), [
    (["--printer", "no-such-printer"], "--printer"),
    (["--printer", PRINTER, "--layer-height", "0.5"], "--layer-height"),
    (["--printer", PRINTER, "--layer-height", "0.01"], "--layer-height"),
    (["--printer", PRINTER, "--layer-height", "thin"], "--layer-height"),
    (["--printer", PRINTER, "--formulations", "no-such-folder"], "--formulations"),
    (["--printer", PRINTER, "--printers", "no-such-folder"], "--printers"),
    (["--out-dir", "x"], "--out-dir"),
])
def test_bad_option_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    options: list[str], key: str,
) -> None:
    rx = small_rx(tmp_path)
    monkeypatch.chdir(tmp_path)  # relative folder names resolve here
    code, out, err = run(capsys, "compile", rx, "--out", tmp_path / "job", *options)
    assert code == 2, err
    assert key in err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == [rx.name]


@pytest.mark.parametrize(("options", "key"), [
    (["--pty", "--extrude-min-temp", "-5"], "--extrude-min-temp"),
    (["--pty", "--extrude-min-temp", "hot"], "--extrude-min-temp"),
    (["--pty", "--resend-every", "0"], "--resend-every"),
    (["--pty", "--busy-s", "-1"], "--busy-s"),
])
def test_bad_virtual_printer_option_exits_2(
    capsys: pytest.CaptureFixture[str], options: list[str], key: str
) -> None:
    code, out, err = run(capsys, "virtual-printer", *options)
    assert code == 2, err
    assert key in err
    assert "Traceback" not in out + err


def test_site_folder_from_environment_must_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = small_rx(tmp_path)
    monkeypatch.setenv("DOSEPRINT_FORMULATIONS", str(tmp_path / "missing"))
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert_refused(code, out, err, "DOSEPRINT_FORMULATIONS", tmp_path, rx)


def test_broken_site_formulation_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rx = small_rx(tmp_path)
    site = tmp_path / "site"
    site.mkdir()
    bad = site / "theophylline-hpc-30.toml"
    text = (shipped_dir("formulations") / bad.name).read_text()
    bad.write_text(re.sub(r"(?m)^drug_loading = .*$", "drug_loading = 3.0", text))
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job",
                         "--formulations", site)
    assert code == 2
    assert f"{bad}: drug_loading: " in err
    assert "Traceback" not in out + err
    assert not (tmp_path / "job").exists()


def test_broken_site_printer_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx = small_rx(tmp_path)
    site = tmp_path / "printers"
    site.mkdir()
    bad = site / "site-printer.toml"
    text = (shipped_dir("printer_profiles") / f"{PRINTER}.toml").read_text()
    text = text.replace(f'id = "{PRINTER}"', 'id = "site-printer"')
    bad.write_text(re.sub(r"(?m)^extruders = .*$", "extruders = 0", text))
    code, _, err = run(capsys, "compile", rx, "--printer", "site-printer",
                         "--out", tmp_path / "job", "--printers", site)
    assert code == 2
    assert f"{bad}: extruders: " in err
    assert not (tmp_path / "job").exists()


def test_printer_too_cool_for_the_formulation_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # theophylline-hpc-30 prints at 170 °C; this printer stops at 150 °C.
    rx = small_rx(tmp_path, units=1)
    site = tmp_path / "printers"
    site.mkdir()
    text = (shipped_dir("printer_profiles") / f"{PRINTER}.toml").read_text()
    text = text.replace(f'id = "{PRINTER}"', 'id = "cool-printer"')
    (site / "cool-printer.toml").write_text(
        re.sub(r"(?m)^max_nozzle_temp_c = .*$", "max_nozzle_temp_c = 150", text))
    code, out, err = run(capsys, "compile", rx, "--printer", "cool-printer",
                         "--out", tmp_path / "job", "--printers", site)
    assert code == 2, err
    assert "nozzle_temp_c" in err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["printers", rx.name]


def test_formulation_below_the_firmwares_minimum_extrusion_temperature_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # hydrochlorothiazide-eudragitepo-10 prints at 135 °C; a stock Klipper printer.cfg
    # keeps min_extrude_temp at 170 °C (klippy/extras/heaters.py), and says so here.
    rx = tmp_path / "hctz.toml"
    rx.write_text((EXAMPLES / "hydrochlorothiazide-immediate.toml").read_text())
    site = tmp_path / "printers"
    site.mkdir()
    name = "generic-klipper-1x175"
    text = (shipped_dir("printer_profiles") / f"{name}.toml").read_text()
    text = text.replace(f'id = "{name}"', 'id = "stock-klipper"')
    text = re.sub(r"(?m)^min_extrude_temp_c = .*$", "min_extrude_temp_c = 170", text)
    (site / "stock-klipper.toml").write_text(text)
    code, out, err = run(capsys, "compile", rx, "--printer", "stock-klipper",
                         "--out", tmp_path / "job", "--printers", site)
    assert code == 2, err
    assert f"{site / 'stock-klipper.toml'}: min_extrude_temp_c: " in err
    assert "hydrochlorothiazide-eudragitepo-10" in err and "135 °C" in err
    assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == [rx.name, "printers"]


# --out and --force -------------------------------------------------------------------------


def test_existing_out_without_force_is_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rx = small_rx(tmp_path)
    out = tmp_path / "job"
    out.mkdir()
    (out / "keep.txt").write_text("the pharmacist's notes")
    code, _, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", out)
    assert code == 2
    assert "--out" in err and "--force" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "the pharmacist's notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", rx.name]


def test_force_replaces_an_existing_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rx = small_rx(tmp_path, units=1)
    out = tmp_path / "job"
    code, stdout, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", out)
    assert code == 0, err
    code, stdout, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", out, "--force")
    assert code == 0, err
    assert f"wrote {out}" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "job.gcode", "job.json", "job.seal", "preview.html", "tablets.3mf"]
    # no temporary or old folder is left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job", rx.name]


def test_force_replaces_only_a_job_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --force used to delete any folder, whatever it held.
    rx = small_rx(tmp_path, units=1)
    out = tmp_path / "notes"
    out.mkdir()
    (out / "keep.txt").write_text("the pharmacist's notes")
    code, _, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", out, "--force")
    assert code == 2
    assert "--out" in err and "keep.txt" in err and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([rx.name, "notes"])


# Help and version --------------------------------------------------------------------------


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += command_paths(command, (*prefix, name))
    return paths


def _is_group(path: tuple[str, ...]) -> bool:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return isinstance(command, click.Group)


# cli.md: every command's --help has an example, groups and the top page included.
HELP_PATHS = [
    pytest.param(p, id=" ".join(p) or "doseprint")
    for p in [(), *command_paths(cli)]
]


@pytest.mark.parametrize("path", HELP_PATHS)
def test_help_has_an_example(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *path, "--help")
    assert code == 0, err
    assert "Usage:" in out
    assert "Example" in out


@pytest.mark.parametrize("path", [(), *command_paths(cli)], ids=lambda p: " ".join(p) or "-")
def test_help_exits_0(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> None:
    code, out, _ = run(capsys, *path, "--help")
    assert code == 0
    assert f"Usage: doseprint {' '.join(path)}".rstrip() in out
    if _is_group(path):
        assert "Commands:" in out


def test_version_as_a_process(tmp_path: Path) -> None:
    done = run_subprocess("--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"doseprint, version {doseprint.__version__}"


# Library read-outs -------------------------------------------------------------------------


def test_formulation_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "formulation", "list")
    assert code == 0
    ids = sorted(p.stem for p in shipped_dir("formulations").glob("*.toml"))
    assert [line.split()[0] for line in out.splitlines()] == ids
    code, out, _ = run(capsys, "formulation", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert sorted(r["id"] for r in rows) == ids
    assert {r["api"] for r in rows} >= {"theophylline", ""}


def test_formulation_list_with_a_site_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    text = (shipped_dir("formulations") / "theophylline-hpc-30.toml").read_text()
    (site / "theophylline-site-1.toml").write_text(
        text.replace('id = "theophylline-hpc-30"', 'id = "theophylline-site-1"'))
    code, out, _ = run(capsys, "formulation", "list", "--json", "--formulations", site)
    assert code == 0
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["theophylline-site-1"]["path"] == str(site / "theophylline-site-1.toml")
    code, _, err = run(capsys, "formulation", "list", "--formulations", tmp_path / "nope")
    assert code == 2
    assert "--formulations" in err


def test_formulation_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "formulation", "show", "theophylline-hpc-30")
    assert code == 0
    assert "id: theophylline-hpc-30" in out
    assert "sources:" in out
    code, out, _ = run(capsys, "formulation", "show", "theophylline-hpc-30", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "theophylline-hpc-30" and data["api"] == "theophylline"
    assert data["sources"]


def test_formulation_show_unknown_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "formulation", "show", "nope")
    assert code == 2
    assert "'nope'" in err and "theophylline-hpc-30" in err  # says which ids exist
    assert "Traceback" not in out + err


def test_printer_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "printer", "list")
    assert code == 0
    listed = {line.split()[0] for line in out.splitlines()}
    assert listed >= {"generic-marlin-1x175", "generic-marlin-2x175", "generic-klipper-1x175"}
    code, out, _ = run(capsys, "printer", "list", "--json")
    assert code == 0
    extruders = {r["id"]: r["extruders"] for r in json.loads(out)}
    assert extruders["generic-marlin-2x175"] == 2
    code, out, _ = run(capsys, "printer", "show", "generic-marlin-2x175")
    assert code == 0
    assert "extruders: 2" in out
    code, out, _ = run(capsys, "printer", "show", "generic-klipper-1x175", "--json")
    assert code == 0
    assert json.loads(out)["flavor"] == "klipper"
    code, _, err = run(capsys, "printer", "show", "nope")
    assert code == 2
    assert "'nope'" in err


# gcode check and release -------------------------------------------------------------------


def test_gcode_check_fresh_job(job: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "gcode", "check", job)
    assert code == 0
    assert out.count(" ok") == 2
    code, out, _ = run(capsys, "gcode", "check", job, "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True


def test_gcode_check_finds_an_overfed_tablet(
    job: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    edited_job = tmp_path / "job"
    shutil.copytree(job, edited_job)
    gcode = edited_job / "job.gcode"
    lines = gcode.read_text().splitlines()
    # relative E: one larger E word feeds that much more
    assert any(line.split(";")[0].split() == ["M83"] for line in lines)
    start = lines.index(";TABLET:1")
    extrusion = re.compile(r"^G1 X\S+ Y\S+ E(\d+\.\d+)")
    i = next(i for i in range(start + 1, len(lines)) if extrusion.match(lines[i]))
    lines[i] = re.sub(r" E\d+\.\d+", " E50", lines[i])
    gcode.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "gcode", "check", edited_job)
    assert code == 1, out + err
    assert "tablet 1: theophylline" in err
    assert "tablet 0:" not in err
    assert "Traceback" not in out + err


def test_gcode_check_of_a_folder_that_is_no_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "gcode", "check", tmp_path)
    assert code == 2
    assert "job.json" in err


def test_release_writes_the_curves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx = small_rx(tmp_path, units=1)
    curves = tmp_path / "curves.csv"
    code, out, err = run(capsys, "release", rx, "--csv", curves)
    assert code == 0, err
    assert "theophylline" in out and "met" in out
    with open(curves, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["hours", "theophylline"]
    hours = [float(r[0]) for r in rows[1:]]
    fractions = [float(r[1]) for r in rows[1:]]
    assert len(hours) > 10
    assert all(b > a for a, b in itertools.pairwise(hours))
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert all(b >= a for a, b in itertools.pairwise(fractions))
    assert fractions[0] == 0.0 and fractions[-1] > 0.8  # t80 of 8 h lies within the curve
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.csv", rx.name]


def test_release_json_and_bad_rx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rx = small_rx(tmp_path, units=1)
    code, out, _ = run(capsys, "release", rx, "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["api"] == "theophylline" and row["met"] is True
    assert abs(row["t80_h"] - 8.0) <= 0.8
    bad = write_rx(tmp_path, edited(base_rx(), [(("patinet",), "x")]), name="bad")
    code, out, err = run(capsys, "release", bad, "--csv", tmp_path / "c.csv")
    assert code == 2
    assert f"{bad}: patinet: " in err
    assert not (tmp_path / "c.csv").exists()


def test_preview_of_a_job_and_of_a_prescription(tmp_path: Path) -> None:
    from conftest import EXAMPLES

    rx = EXAMPLES / "hydrochlorothiazide-immediate.toml"
    job = tmp_path / "job"
    with pytest.raises(SystemExit) as done:
        main(["compile", str(rx), "--printer", "generic-marlin-1x175", "--out", str(job)])
    assert done.value.code == 0
    page = (job / "preview.html").read_text()
    assert "RX-2026-000201" in page and "PT-91C2" in page and "<svg" in page
    assert "http://" not in page and "https://" not in page
    out = tmp_path / "again.html"
    with pytest.raises(SystemExit) as done:
        main(["preview", str(job), "--out", str(out)])
    assert done.value.code == 0
    assert out.read_text() == page
    from_rx = tmp_path / "rx.html"
    with pytest.raises(SystemExit) as done:
        main(["preview", str(rx), "--out", str(from_rx)])
    assert done.value.code == 0
    assert "hydrochlorothiazide" in from_rx.read_text()
    with pytest.raises(SystemExit) as done:
        main(["preview", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "x.html")])
    assert done.value.code == 2
    assert not (tmp_path / "x.html").exists()


def test_preview_png_of_a_job(tmp_path: Path) -> None:
    from conftest import EXAMPLES

    job = tmp_path / "job"
    with pytest.raises(SystemExit) as done:
        main(["compile", str(EXAMPLES / "hydrochlorothiazide-immediate.toml"), "--printer",
              "generic-marlin-1x175", "--out", str(job)])
    assert done.value.code == 0
    png = tmp_path / "still.png"
    with pytest.raises(SystemExit) as done:
        main(["preview", str(job), "--out", str(tmp_path / "p.html"), "--png", str(png)])
    assert done.value.code == 0
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
