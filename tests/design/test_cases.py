"""Issue 5's table of cases: prescriptions the designer must meet, and targets it must
refuse with the closest achievable figure and the constraint that binds."""

from __future__ import annotations

from pathlib import Path

import pytest

from doseprint.design.cylinder import LayerGrid
from doseprint.design.designer import design_tablets
from doseprint.errors import InfeasibleDesignError
from doseprint.library import load_formulations
from doseprint.models.load import check_prescription, load_prescription
from pipeline.rx import write_rx

FORMULATIONS = load_formulations()
GRID = LayerGrid(0.2, 0.2)
PROFILE = "profile = [[1.0, 0.25], [2.0, 0.40], [4.0, 0.62], [8.0, 0.85]]"

MET = [
    ("theophylline", 125.0, "sustained", "t80_h = 8.0", ""),
    ("theophylline", 200.0, "sustained",
     't80_h = 10.0\nformulation = "theophylline-eudragitrl-30"', ""),
    ("caffeine", 50.0, "sustained", "t80_h = 3.0", ""),
    ("hydrochlorothiazide", 25.0, "immediate", "", ""),
    ("isoniazid", 100.0, "profile", PROFILE, ""),
    ("prednisolone", 10.0, "sustained", "t80_h = 10.0", ""),
    ("theophylline", 125.0, "sustained", "t80_h = 8.0", "diameter_mm = 9.0"),
]

REFUSED = [
    (("theophylline", 125.0, "sustained",
      't80_h = 0.3\nformulation = "theophylline-hpc-30"', "max_length_mm = 12.0"),
     "actives[0].t80_h", ["fastest reachable t80 is", "binding: max_length_mm"]),
    (("theophylline", 50.0, "sustained", "t80_h = 40.0", ""),
     "actives[0].t80_h", ["slowest reachable t80 is", "binding: height at most the diameter"]),
    (("prednisolone", 10.0, "immediate", "", ""),
     "actives[0].release", ["at most", "released at 30 min"]),
    (("isoniazid", 100.0, "profile", "profile = [[0.25, 0.6], [0.5, 0.9], [1.0, 1.0]]", ""),
     "actives[0].profile", ["the best f2 is"]),
    (("theophylline", 125.0, "sustained", "t80_h = 8.0",
      "diameter_mm = 9.0\nheight_mm = 3.0"),
     "actives[0].dose_mg", ["fix only one of them"]),
]


def design(tmp_path: Path, api: str, dose: float, release: str, extra: str, tablet: str):
    path = write_rx(tmp_path, api=api, dose_mg=dose, release=release, extra_active=extra,
                    units=2, tablet=tablet)
    rx = load_prescription(path)
    check_prescription(rx, FORMULATIONS)
    return design_tablets(rx, FORMULATIONS, GRID)


@pytest.mark.parametrize("case", MET, ids=lambda c: f"{c[0]}-{c[1]:g}mg-{c[2]}")
def test_met(tmp_path: Path, case: tuple[str, float, str, str, str]) -> None:
    tablets = design(tmp_path, *case)
    again = design(tmp_path, *case)
    for tablet, twin in zip(tablets, again, strict=True):
        (release,) = tablet.releases
        assert release.judgement.met, release.judgement.reason
        assert tablet.design == twin.design  # deterministic
        assert tablet.design.longest_mm <= 22.0
        (comp,) = tablet.design.compartments
        f = FORMULATIONS[comp.formulation]
        assert comp.volume_mm3 * f.api_mg_per_mm3 == pytest.approx(case[1], rel=1e-9)


@pytest.mark.parametrize(("case", "key", "words"), REFUSED,
                         ids=[f"{c[0][0]}-{c[1]}" for c in REFUSED])
def test_refused_with_the_closest_figure(
    tmp_path: Path, case: tuple[str, float, str, str, str], key: str, words: list[str]
) -> None:
    with pytest.raises(InfeasibleDesignError) as info:
        design(tmp_path, *case)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert key in message
    for w in words:
        assert w in message
    assert any(ch.isdigit() for ch in message.split(key, 1)[1])
