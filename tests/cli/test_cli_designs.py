"""Multi-drug and shaped designs through the CLI: constraints that cannot be met exit 2
with the key and the numbers; --stl writes one watertight STL per tablet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trimesh

from conftest import EXAMPLES
from helpers.cli import run_cli

TWO = (EXAMPLES / "polypill-theophylline-hctz.toml").read_text()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code, _, err = run_cli(capsys, *args)
    return code, err


def rx_with(tmp_path: Path, tablet: str, text: str = TWO) -> Path:
    path = tmp_path / "rx.toml"
    path.write_text(text.replace("[dispense]", f"[tablet]\n{tablet}\n\n[dispense]"))
    return path


@pytest.mark.parametrize(("tablet", "printer", "key", "words"), [
    ('layout = "core-shell"\nmax_length_mm = 9.0', "generic-marlin-2x175", "actives",
     "no tablet layout can carry"),
    ('layout = "single"', "generic-marlin-2x175", "tablet.layout", "takes 1 actives"),
    ("", "generic-marlin-1x175", "actives", "1 extruder"),
    ('shell = "theophylline-hpc-30"', "generic-marlin-2x175", "tablet.shell",
     "must be a drug-free formulation"),
    ("shell_mm = 0.8", "generic-marlin-2x175", "tablet.shell_mm", "shell is \"none\""),
    ('shell = "pva-fast"', "generic-marlin-2x175", "actives", "3 materials"),
    ('shape = "pyramid"', "generic-marlin-2x175", "tablet.shape", "allowed"),
    ("max_length_mm = 6.0", "generic-marlin-2x175", "actives", "largest printable dose"),
])
def test_impossible_designs_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tablet: str, printer: str, key: str,
    words: str,
) -> None:
    out = tmp_path / "job"
    code, err = run(capsys, "compile", str(rx_with(tmp_path, tablet)), "--printer", printer,
                    "--out", str(out))
    assert code == 2, err
    assert key in err and words in err
    assert "Traceback" not in err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rx.toml"]


def test_stl_on_request(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "job"
    code, err = run(capsys, "compile", str(EXAMPLES / "polypill-theophylline-hctz.toml"),
                    "--printer", "generic-marlin-2x175", "--out", str(out), "--stl")
    assert code == 0, err
    job = json.loads((out / "job.json").read_text())
    for t in job["tablets"]:
        name = f"tablet-{t['index']}.stl"
        assert name in job["files"]
        mesh = trimesh.load(out / name)
        volume = sum(a["design_volume_mm3"] for a in t["actives"])
        assert mesh.volume == pytest.approx(volume, rel=1e-3)
    code, err = run(capsys, "gcode", "check", str(out))
    assert code == 0, err


@pytest.mark.parametrize("tablet", [
    'shape = "caplet"', 'shape = "ring"', 'shape = "oval"', "channels = 2",
    'shell = "pva-fast"\nshell_mm = 0.9',
])
def test_a_single_api_in_other_shapes_compiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tablet: str
) -> None:
    # A shell slows release: ask for a slower target there.
    target = "t80_h = 6.5" if "shell" in tablet else "t80_h = 5.0"
    text = (EXAMPLES / "theophylline-sustained.toml").read_text().replace(
        "units = 4", "units = 1").replace("t80_h = 8.0", target)
    printer = "generic-marlin-2x175" if "shell" in tablet else "generic-marlin-1x175"
    out = tmp_path / "job"
    code, err = run(capsys, "compile", str(rx_with(tmp_path, tablet, text)), "--printer",
                    printer, "--out", str(out))
    assert code == 0, err
    job = json.loads((out / "job.json").read_text())
    (t,) = job["tablets"]
    assert abs(t["actives"][0]["dose_error_pct"]) <= 0.5
    if "shell" in tablet:
        assert t["shell"]["formulation"] == "pva-fast"
