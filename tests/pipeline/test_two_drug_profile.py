"""Issue 5's "done when": a two-drug prescription, one sustained and one profile target,
compiles to a job whose own curves meet both targets when judged here, independently of
doseprint's metrics and of the met flag; dose per API exact in the G-code."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from conftest import EXAMPLES
from doseprint.compile import compile_prescription, write_job
from helpers.independent_gcode import doses_from_gcode

RX = EXAMPLES / "polypill-theophylline-isoniazid.toml"


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sp") / "job"
    write_job(compile_prescription(RX, "generic-marlin-2x175"), out)
    return out


def interpolate(curve: list[tuple[float, float]], hour: float) -> float:
    for (h0, f0), (h1, f1) in itertools.pairwise(curve):
        if h0 <= hour <= h1:
            return f0 + (f1 - f0) * (hour - h0) / (h1 - h0)
    raise AssertionError(f"{hour} h is outside the curve")


def test_sustained_and_profile_targets_met_by_an_independent_judgement(job: Path) -> None:
    data = json.loads((job / "job.json").read_text())
    targets = {a["api"]: a for a in data["prescription"]["content"]["actives"]}
    for t in data["tablets"]:
        for a in t["actives"]:
            curve = [(float(h), float(f)) for h, f in a["release"]["curve"]]
            target = targets[a["api"]]
            if target["release"] == "sustained":
                t80 = next(h0 + (0.8 - f0) * (h1 - h0) / (f1 - f0)
                           for (h0, f0), (h1, f1) in itertools.pairwise(curve) if f1 >= 0.8)
                assert abs(t80 - target["t80_h"]) <= 0.10 * target["t80_h"]
            else:
                # f2 = 50 log10(100 / sqrt(1 + mean((R - T)^2))), R and T in percent.
                diffs = [100 * interpolate(curve, h) - 100 * f for h, f in target["profile"]]
                f2 = 50 * math.log10(100 / math.sqrt(1 + sum(d * d for d in diffs) / len(diffs)))
                assert f2 >= 50.0
                assert f2 == pytest.approx(a["release"]["f2"], abs=0.5)


def test_each_dose_from_the_gcode(job: Path) -> None:
    data = json.loads((job / "job.json").read_text())
    for (index, api), dose in doses_from_gcode(job).items():
        want = next(a["dose_mg"] for a in data["tablets"][index]["actives"] if a["api"] == api)
        assert abs(dose - want) <= 0.005 * want
