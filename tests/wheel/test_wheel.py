"""A non-editable install carries the shipped libraries and templates as package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "--quiet", "-w", str(out), str(ROOT)], check=True)
    (path,) = out.glob("doseprint-*.whl")
    return path


def test_wheel_carries_data_and_templates(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "formulations").glob("*.toml")}
    assert {f"doseprint/_data/formulations/{n}" for n in shipped} <= names
    for n in ("generic-marlin-1x175", "generic-marlin-2x175", "generic-klipper-1x175"):
        assert f"doseprint/_data/printer_profiles/{n}.toml" in names
    for t in ("start", "end", "tool_change", "layer_change"):
        assert f"doseprint/_data/printer_profiles/templates/marlin/{t}.gcode.j2" in names
    migrations = {
        f"doseprint/records/migrations/{p.parent.name}/{p.name}"
        for p in (ROOT / "src/doseprint/records/migrations").glob("*/*.sql")
    }
    assert len(migrations) >= 4 and migrations <= names  # SQLite and PostgreSQL
    assert "doseprint/report/templates/preview.html.j2" in names
    for n in ("templates/viewer.js", "vendor/three.module.min.js", "vendor/three.LICENSE"):
        assert f"doseprint/report/{n}" in names
    assert "doseprint/py.typed" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_installed_copy_finds_its_libraries_outside_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import doseprint.library as l, sys; "
        "f = l.load_formulations(); p = l.load_printers(); "
        "print(l.shipped_dir('formulations')); print(len(f), sorted(p))"
    )
    # Run from an unrelated folder with only the unpacked wheel ahead of the venv.
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                         check=True)
    first, second = out.stdout.splitlines()
    assert first.startswith(str(site))
    assert "generic-marlin-1x175" in second
