"""A two-drug prescription on two extruders: every mesh watertight, each compartment
carrying its dose by design and by G-code, temperatures per tool within limits."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import trimesh

from conftest import EXAMPLES
from doseprint.compile import compile_prescription
from doseprint.library import load_formulations
from helpers.independent_gcode import doses_from_gcode


@pytest.fixture
def job(two_drug_job: Path) -> Path:
    """The two-drug job, compiled once per test run (tests/conftest.py)."""
    return two_drug_job


def test_every_api_dose_from_the_gcode_within_half_a_percent(job: Path) -> None:
    data = json.loads((job / "job.json").read_text())
    doses = doses_from_gcode(job)
    assert len(doses) == 2 * len(data["tablets"])
    for t in data["tablets"]:
        assert {a["api"] for a in t["actives"]} == {"theophylline", "hydrochlorothiazide"}
        for a in t["actives"]:
            got = doses[(t["index"], a["api"])]
            assert abs(got - a["dose_mg"]) <= 0.005 * a["dose_mg"]
            assert a["release"]["met"] is True
    assert {t["tool"] for t in data["tools"]} == {0, 1}


def test_design_volumes_carry_the_doses_and_the_3mf_is_watertight(job: Path) -> None:
    data = json.loads((job / "job.json").read_text())
    formulations = load_formulations()
    scene = trimesh.load(job / "tablets.3mf")
    placed = {}
    for node in scene.graph.nodes_geometry:
        transform, name = scene.graph[node]
        placed[name] = scene.geometry[name].copy().apply_transform(transform)
    for t in data["tablets"]:
        assert t["design"]["longest_mm"] <= 22.0
        parts = {name.split("/", 1)[1]: g for name, g in placed.items()
                 if name.startswith(f"tablet-{t['index']}/")}
        assert set(parts) == {"theophylline", "hydrochlorothiazide"}
        for a in t["actives"]:
            f = formulations[a["formulation"]]
            by_design = a["design_volume_mm3"] * f.density_g_cm3 * f.drug_loading
            assert abs(by_design - a["dose_mg"]) <= 0.01 * a["dose_mg"]
            mesh = parts[a["api"]]
            assert mesh.is_watertight
            assert mesh.volume == pytest.approx(a["design_volume_mm3"], rel=1e-3)
            # The mesh sits on the plate where its tablet is printed.
            cx, cy = t["center_mm"]
            assert math.hypot(*(mesh.bounds.mean(axis=0)[:2] - [cx, cy])) < 11.0
            assert mesh.bounds[0][2] >= -1e-9


def test_each_tool_heated_to_its_own_material_and_changed_off_the_tablets(job: Path) -> None:
    data = json.loads((job / "job.json").read_text())
    formulations = load_formulations()
    limit = {t["tool"]: formulations[t["formulation"]].max_temp_c for t in data["tools"]}
    section = None
    active = 0
    for line in (job / "job.gcode").read_text().splitlines():
        if line.startswith(";TABLET:"):
            section = line.split(":", 1)[1]
        code = line.split(";")[0].split()
        if not code:
            continue
        if code[0].startswith("T") and code[0][1:].isdigit():
            active = int(code[0][1:])
            # Tool changes (and any priming they do) are never inside a tablet's section.
            assert section in (None, "NONE")
        if code[0] in ("M104", "M109"):
            words = {w[0]: w[1:] for w in code[1:]}
            tool = int(words.get("T", active))
            if "S" in words:
                assert float(words["S"]) <= limit[tool]


def test_curves_meet_the_targets_judged_independently(job: Path) -> None:
    """Judge job.json's curves here, without doseprint's metrics or its met flag."""
    data = json.loads((job / "job.json").read_text())
    content = data["prescription"]["content"]
    targets = {a["api"]: a for a in content["actives"]}
    for t in data["tablets"]:
        for a in t["actives"]:
            curve = [tuple(p) for p in a["release"]["curve"]]
            assert a["release"]["model"].startswith("3d-finite-volume")
            hours = [h for h, _ in curve]
            fraction = [f for _, f in curve]
            assert hours[0] == 0.0 and all(
                b >= a_ - 1e-9 for a_, b in itertools.pairwise(fraction))
            target = targets[a["api"]]
            if target["release"] == "immediate":
                at_half = next(f for h, f in curve if h >= 0.5)
                assert at_half >= 0.85
            elif target["release"] == "sustained":
                # First time the curve reaches 0.8, by linear interpolation.
                t80 = next(h0 + (0.8 - f0) * (h1 - h0) / (f1 - f0)
                           for (h0, f0), (h1, f1) in itertools.pairwise(curve) if f1 >= 0.8)
                assert abs(t80 - target["t80_h"]) <= 0.10 * target["t80_h"]


def test_refusal_after_the_levers_names_the_closest_and_what_was_tried(tmp_path: Path) -> None:
    from doseprint.errors import InfeasibleDesignError

    text = (EXAMPLES / "theophylline-sustained.toml").read_text()
    rx = tmp_path / "rx.toml"
    rx.write_text(text.replace("t80_h = 8.0", 't80_h = 1.5\nformulation = "theophylline-hpc-30"')
                  .replace("units = 4", "units = 1")
                  .replace("[dispense]", "[tablet]\nmax_length_mm = 12.0\n\n[dispense]"))
    with pytest.raises(InfeasibleDesignError) as info:
        compile_prescription(rx, "generic-marlin-1x175")
    message = str(info.value)
    assert "fastest reachable t80 is" in message and "binding: max_length_mm" in message
    assert ("rings and ovals, with 0, 2 or 4 channels, and cylinders and caplets as 60 % "
            "and 40 % open lattices, were tried as well") in message
