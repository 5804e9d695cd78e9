"""The formulation library and the printer profiles: what ships, what is refused, and how a
site adds or overrides entries (formulation.md, printer-profile.md, cli.md Environment)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from doseprint.errors import InputError
from doseprint.gcode.render import bed_temperature_c, tool_table
from doseprint.library import load_formulations, load_library, load_printers, shipped_dir
from doseprint.models.load import load_formulation, load_printer
from doseprint.models.printer import TEMPLATE_NAMES

from .rxfiles import DROP, Edit, edited, toml_dumps

FORMULATIONS = shipped_dir("formulations")
PRINTERS = shipped_dir("printer_profiles")
SHIPPED_TEMPLATES = PRINTERS / "templates"

ENV = ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS")


@pytest.fixture(autouse=True)
def _no_site_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tests see the shipped library only, whatever the caller's environment says."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    yield


def shipped(folder: Path, name: str) -> dict[str, Any]:
    with open(folder / f"{name}.toml", "rb") as fh:
        return tomllib.load(fh)


def write_toml(folder: Path, name: str, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(toml_dumps(data), encoding="utf-8")
    return path


def assert_one_problem(exc: InputError, path: Path, key: str) -> None:
    assert [p.key for p in exc.problems] == [key], str(exc)
    assert exc.problems[0].file == str(path)
    assert f"{path}: {key}: " in str(exc)


# What ships ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FORMULATIONS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_formulation_loads(path: Path) -> None:
    f = load_formulation(path)
    assert f.id == path.stem
    assert f.path == str(path)
    assert len(f.sha256) == 64
    assert f.sources and all(isinstance(s, str) and s.strip() for s in f.sources)
    assert f.nozzle_temp_c <= f.max_temp_c and f.bed_temp_c <= f.max_temp_c
    if f.api:
        assert 0.0 < f.drug_loading <= 1.0
        assert f.max_dose_mg is not None and f.max_dose_mg > 0
    else:
        assert f.drug_loading == 0.0


@pytest.mark.parametrize("path", sorted(PRINTERS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_printer_loads(path: Path) -> None:
    p = load_printer(path, (SHIPPED_TEMPLATES,))
    assert p.id == path.stem
    for name in TEMPLATE_NAMES:
        assert (Path(p.templates_dir) / f"{name}.gcode.j2").is_file()
    assert p.min_layer_height_mm <= p.layer_height_mm <= p.max_layer_height_mm


def test_shipped_library_contents() -> None:
    lib = load_library()
    files = sorted(p.stem for p in FORMULATIONS.glob("*.toml"))
    assert sorted(lib.formulations) == files
    drug = [f for f in lib.formulations.values() if f.api]
    free = [f for f in lib.formulations.values() if not f.api]
    assert len({f.api for f in drug}) >= 6, sorted({f.api for f in drug})
    assert len(free) >= 2
    extruders = {"generic-marlin-1x175": 1, "generic-marlin-2x175": 2,
                 "generic-klipper-1x175": 1, "generic-klipper-2x175": 2}
    for pid, n in extruders.items():
        assert lib.printers[pid].extruders == n
    assert lib.printers["generic-klipper-1x175"].flavor == "klipper"
    assert lib.printers["generic-klipper-2x175"].flavor == "klipper"
    assert lib.printers["generic-marlin-1x175"].flavor == "marlin"


def test_unknown_ids_are_input_errors() -> None:
    lib = load_library()
    with pytest.raises(InputError, match="theophylline-hpc-30"):
        lib.formulation("nope")  # the message lists the known ids
    with pytest.raises(InputError, match="generic-marlin-1x175"):
        lib.printer("nope")


# Bad formulations ----------------------------------------------------------------------

BAD_FORMULATIONS: list[tuple[str, str, list[Edit], str]] = [
    # (test id, shipped file to copy, edits, key the one problem names)
    ("unknown-key", "theophylline-hpc-30", [(("colour",), "white")], "colour"),
    ("schema", "theophylline-hpc-30", [(("schema",), "doseprint.formulation/2")], "schema"),
    ("id-not-file-name", "theophylline-hpc-30", [(("id",), "theophylline-hpc-31")], "id"),
    ("id-upper-case", "theophylline-hpc-30", [(("id",), "Theophylline-HPC-30")], "id"),
    ("loading-above-1", "theophylline-hpc-30", [(("drug_loading",), 1.5)], "drug_loading"),
    ("loading-0-with-api", "theophylline-hpc-30", [(("drug_loading",), 0.0)], "drug_loading"),
    ("loading-in-drug-free", "pva-fast", [(("drug_loading",), 0.2)], "drug_loading"),
    ("nozzle-above-max-temp", "theophylline-hpc-30", [(("nozzle_temp_c",), 200)],
     "nozzle_temp_c"),
    ("bed-above-max-temp", "theophylline-hpc-30", [(("bed_temp_c",), 195)], "bed_temp_c"),
    ("unknown-mechanism", "theophylline-hpc-30", [(("release_mechanism",), "swelling")],
     "release_mechanism"),
    ("erosion-rate-0", "theophylline-eudragitepo-10", [(("erosion_rate_mm_h",), 0.0)],
     "erosion_rate_mm_h"),
    ("erosion-rate-for-diffusion", "theophylline-hpc-30", [(("erosion_rate_mm_h",), 0.5)],
     "erosion_rate_mm_h"),
    ("empty-sources", "theophylline-hpc-30", [(("sources",), [])], "sources"),
    ("blank-source", "theophylline-hpc-30", [(("sources",), ["Giri 2020", "  "])], "sources"),
    ("no-max-dose", "theophylline-hpc-30", [(("max_dose_mg",), DROP)], "max_dose_mg"),
    ("density-nan", "theophylline-hpc-30", [(("density_g_cm3",), float("nan"))],
     "density_g_cm3"),
    ("diffusivity-0", "theophylline-hpc-30", [(("diffusivity_mm2_s",), 0.0)],
     "diffusivity_mm2_s"),
    ("loading-string", "theophylline-hpc-30", [(("drug_loading",), "30 %")], "drug_loading"),
]


@pytest.mark.parametrize(("source", "edits", "key"), [c[1:] for c in BAD_FORMULATIONS],
                         ids=[c[0] for c in BAD_FORMULATIONS])
def test_bad_formulation(tmp_path: Path, source: str, edits: list[Edit], key: str) -> None:
    data = edited(shipped(FORMULATIONS, source), edits)
    path = write_toml(tmp_path, source, data)
    with pytest.raises(InputError) as info:
        load_formulation(path)
    assert_one_problem(info.value, path, key)


def test_copied_formulation_is_valid(tmp_path: Path) -> None:
    # The copies above differ from a valid file only by their one edit.
    path = write_toml(tmp_path, "theophylline-hpc-30",
                      shipped(FORMULATIONS, "theophylline-hpc-30"))
    copy = load_formulation(path)
    original = load_formulation(FORMULATIONS / "theophylline-hpc-30.toml")
    assert dataclasses.replace(copy, path=original.path, sha256=original.sha256) == original


def test_bad_site_formulation_is_refused_by_the_library(tmp_path: Path) -> None:
    site = tmp_path / "site"
    path = write_toml(site, "theophylline-hpc-30",
                      edited(shipped(FORMULATIONS, "theophylline-hpc-30"),
                             [(("drug_loading",), 1.5)]))
    with pytest.raises(InputError) as info:
        load_formulations([site])
    assert_one_problem(info.value, path, "drug_loading")


# Bad printer profiles ------------------------------------------------------------------

MARLIN = "generic-marlin-1x175"

BAD_PRINTERS: list[tuple[str, list[Edit], str]] = [
    ("layer-above-max", [(("layer_height_mm",), 0.35)], "layer_height_mm"),
    ("layer-below-min", [(("layer_height_mm",), 0.05)], "layer_height_mm"),
    ("first-layer-above-max", [(("first_layer_height_mm",), 0.4)], "first_layer_height_mm"),
    ("max-layer-thicker-than-nozzle", [(("max_layer_height_mm",), 0.5)],
     "max_layer_height_mm"),
    ("zero-extruders", [(("extruders",), 0)], "extruders"),
    ("fractional-extruders", [(("extruders",), 1.5)], "extruders"),
    ("unknown-flavor", [(("flavor",), "repetier")], "flavor"),
    ("unknown-templates", [(("templates",), "nope")], "templates"),
    ("bed-smaller-than-a-tablet", [(("bed_mm",), [20.0, 220.0])], "bed_mm"),
    ("bed-one-number", [(("bed_mm",), [220.0])], "bed_mm"),
    ("unknown-key", [(("colour",), "black")], "colour"),
    ("origin-middle", [(("origin",), "middle")], "origin"),
    ("extrusion-both", [(("extrusion",), "both")], "extrusion"),
    ("nozzle-max-temp-0", [(("max_nozzle_temp_c",), 0)], "max_nozzle_temp_c"),
    ("nozzle-max-temp-600", [(("max_nozzle_temp_c",), 600)], "max_nozzle_temp_c"),
    ("bed-max-temp-negative", [(("max_bed_temp_c",), -5)], "max_bed_temp_c"),
    ("bed-max-temp-250", [(("max_bed_temp_c",), 250)], "max_bed_temp_c"),
    ("schema", [(("schema",), "doseprint.printer/2")], "schema"),
    ("id-not-file-name", [(("id",), "generic-marlin-9x175")], "id"),
    ("missing-baud", [(("baud",), DROP)], "baud"),
    ("acceleration-zero", [(("acceleration_mm_s2",), 0)], "acceleration_mm_s2"),
    ("corner-velocity-negative", [(("square_corner_velocity_mm_s",), -1)],
     "square_corner_velocity_mm_s"),
    ("z-speed-text", [(("max_z_speed_mm_s",), "fast")], "max_z_speed_mm_s"),
    ("z-accel-zero", [(("max_z_acceleration_mm_s2",), 0.0)], "max_z_acceleration_mm_s2"),
    ("extrude-only-speed-zero", [(("max_extrude_only_speed_mm_s",), 0)],
     "max_extrude_only_speed_mm_s"),
    ("extrude-only-accel-nan", [(("max_extrude_only_acceleration_mm_s2",), float("nan"))],
     "max_extrude_only_acceleration_mm_s2"),
    ("min-extrude-temp-text", [(("min_extrude_temp_c",), "hot")], "min_extrude_temp_c"),
    ("min-extrude-temp-negative", [(("min_extrude_temp_c",), -1.0)], "min_extrude_temp_c"),
    ("min-extrude-temp-at-max-nozzle", [(("min_extrude_temp_c",), 260.0)],
     "min_extrude_temp_c"),
    ("lower-min-extrude-temp-text", [(("lower_min_extrude_temp",), "yes")],
     "lower_min_extrude_temp"),
    ("lower-min-extrude-temp-number", [(("lower_min_extrude_temp",), 1)],
     "lower_min_extrude_temp"),
    # Marlin built without PREVENT_COLD_EXTRUSION: nothing to lower (M302 S0 would be refused)
    ("lower-min-extrude-temp-of-nothing", [(("min_extrude_temp_c",), 0.0)],
     "lower_min_extrude_temp"),
]


@pytest.mark.parametrize(("edits", "key"), [c[1:] for c in BAD_PRINTERS],
                         ids=[c[0] for c in BAD_PRINTERS])
def test_bad_printer(tmp_path: Path, edits: list[Edit], key: str) -> None:
    path = write_toml(tmp_path, MARLIN, edited(shipped(PRINTERS, MARLIN), edits))
    with pytest.raises(InputError) as info:
        load_printer(path, (SHIPPED_TEMPLATES,))
    assert_one_problem(info.value, path, key)


def test_klipper_cannot_lower_its_minimum_extrusion_temperature(tmp_path: Path) -> None:
    # Klipper reads min_extrude_temp from printer.cfg only; G-code cannot change it.
    name = "generic-klipper-1x175"
    path = write_toml(tmp_path, name, edited(shipped(PRINTERS, name),
                                             [(("lower_min_extrude_temp",), True)]))
    with pytest.raises(InputError) as info:
        load_printer(path, (SHIPPED_TEMPLATES,))
    assert_one_problem(info.value, path, "lower_min_extrude_temp")
    assert "printer.cfg" in str(info.value) and "min_extrude_temp" in str(info.value)


def test_cold_extrusion_keys_default_to_the_firmwares_170_c(tmp_path: Path) -> None:
    data = shipped(PRINTERS, "generic-klipper-1x175")
    del data["min_extrude_temp_c"]
    p = load_printer(write_toml(tmp_path, "generic-klipper-1x175", data),
                     (SHIPPED_TEMPLATES,))
    assert p.min_extrude_temp_c == 170.0 and p.lower_min_extrude_temp is False


def test_min_layer_above_max_layer(tmp_path: Path) -> None:
    data = edited(shipped(PRINTERS, MARLIN), [(("min_layer_height_mm",), 0.35)])
    path = write_toml(tmp_path, MARLIN, data)
    with pytest.raises(InputError) as info:
        load_printer(path, (SHIPPED_TEMPLATES,))
    assert info.value.problems[0].key == "min_layer_height_mm"
    assert f"{path}: min_layer_height_mm: " in str(info.value)


def test_template_folder_missing_a_file(tmp_path: Path) -> None:
    site = tmp_path / "printers"
    mine = site / "templates" / "mine"
    shutil.copytree(SHIPPED_TEMPLATES / "marlin", mine)
    (mine / "layer_change.gcode.j2").unlink()
    path = write_toml(site, MARLIN, edited(shipped(PRINTERS, MARLIN),
                                           [(("templates",), "mine")]))
    with pytest.raises(InputError) as info:
        load_printer(path, (SHIPPED_TEMPLATES,))
    assert_one_problem(info.value, path, "templates")
    assert "layer_change.gcode.j2" in str(info.value)


def test_site_template_folder_beside_the_profile(tmp_path: Path) -> None:
    site = tmp_path / "printers"
    shutil.copytree(SHIPPED_TEMPLATES / "marlin", site / "templates" / "mine")
    write_toml(site, "site-marlin", edited(shipped(PRINTERS, MARLIN),
                                           [(("id",), "site-marlin"), (("templates",), "mine")]))
    p = load_printers([site])["site-marlin"]
    assert Path(p.templates_dir) == site / "templates" / "mine"


def test_formulation_hotter_than_the_printer_allows() -> None:
    lib = load_library()
    f = lib.formulations["theophylline-hpc-30"]  # 170 °C nozzle, 40 °C bed
    profile = lib.printers[MARLIN]
    assert tool_table(profile, [f])[0]["formulation"] == f.id
    cool = dataclasses.replace(profile, max_nozzle_temp_c=150.0)
    with pytest.raises(InputError) as info:
        tool_table(cool, [f])
    assert_one_problem(info.value, Path(f.path), "nozzle_temp_c")
    assert bed_temperature_c(profile, [f]) == f.bed_temp_c
    cold_bed = dataclasses.replace(profile, max_bed_temp_c=30.0)
    with pytest.raises(InputError) as info:
        bed_temperature_c(cold_bed, [f])
    assert_one_problem(info.value, Path(profile.path), "max_bed_temp_c")


# Site folders ----------------------------------------------------------------------------


def site_formulation(folder: Path, max_dose_mg: float, fid: str = "theophylline-hpc-30") -> Path:
    data = edited(shipped(FORMULATIONS, "theophylline-hpc-30"),
                  [(("id",), fid), (("max_dose_mg",), max_dose_mg)])
    return write_toml(folder, fid, data)


def test_site_formulation_overrides_a_shipped_id(tmp_path: Path) -> None:
    path = site_formulation(tmp_path / "site", 450.0)
    site_formulation(tmp_path / "site", 200.0, fid="theophylline-site-1")
    found = load_formulations([tmp_path / "site"])
    assert found["theophylline-hpc-30"].max_dose_mg == 450.0
    assert found["theophylline-hpc-30"].path == str(path)
    assert found["theophylline-site-1"].max_dose_mg == 200.0
    assert load_formulations()["theophylline-hpc-30"].max_dose_mg == 400.0  # shipped intact


def test_formulations_environment_then_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_a, env_b, option = tmp_path / "env-a", tmp_path / "env-b", tmp_path / "option"
    site_formulation(env_a, 450.0)
    site_formulation(env_b, 300.0, fid="theophylline-site-2")
    site_formulation(option, 350.0)
    monkeypatch.setenv("DOSEPRINT_FORMULATIONS", os.pathsep.join([str(env_a), str(env_b)]))
    found = load_formulations()
    assert found["theophylline-hpc-30"].max_dose_mg == 450.0
    assert found["theophylline-site-2"].max_dose_mg == 300.0
    # an option's folder comes last and wins
    assert load_formulations([option])["theophylline-hpc-30"].max_dose_mg == 350.0


def test_printers_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "printers"
    write_toml(site, "site-marlin", edited(shipped(PRINTERS, MARLIN),
                                           [(("id",), "site-marlin"), (("extruders",), 3)]))
    assert "site-marlin" not in load_printers()
    monkeypatch.setenv("DOSEPRINT_PRINTERS", str(site))
    printers = load_printers()
    assert printers["site-marlin"].extruders == 3
    assert Path(printers["site-marlin"].templates_dir) == SHIPPED_TEMPLATES / "marlin"
    assert MARLIN in printers


@pytest.mark.parametrize(("loader", "env", "option"), [
    (load_formulations, "DOSEPRINT_FORMULATIONS", "--formulations"),
    (load_printers, "DOSEPRINT_PRINTERS", "--printers"),
])
def test_missing_site_folder_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: Any, env: str, option: str
) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(InputError) as info:
        loader([missing])
    assert [(p.file, p.key) for p in info.value.problems] == [(str(missing), option)]
    monkeypatch.setenv(env, str(missing))
    with pytest.raises(InputError) as info:
        loader()
    assert [(p.file, p.key) for p in info.value.problems] == [(str(missing), env)]


def test_a_file_is_not_a_site_folder(tmp_path: Path) -> None:
    file = tmp_path / "formulations.toml"
    file.write_text("")
    with pytest.raises(InputError, match="--formulations"):
        load_formulations([file])
