"""One small bad prescription per rule of prescription.md "Rules every reader enforces".

Each :class:`Rule` breaks :data:`~models.rxfiles.BASE_RX` in one place and says which key
the one resulting problem must name. Shared by the model tests (``load_prescription`` +
``check_prescription``, or the designer) and the CLI tests (exit 2, key on stderr).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .rxfiles import DROP, Edit

Stage = Literal["load", "check", "design"]


@dataclass(frozen=True)
class Rule:
    id: str
    edits: list[Edit]
    key: str
    shows: str | None = None
    """A text the problem's message must contain (the value found, or the limit)."""
    stage: Stage = "load"
    """Where the rule is enforced: the reader, the library check or the designer."""
    json: bool = False
    """Also check the same mistake written as JSON."""


A0 = ("actives", 0)


def a0(key: str, value: Any) -> Edit:
    return ((*A0, key), value)


def schedule(doses: list[Any], api: str = "theophylline", **extra: Any) -> Edit:
    return (("dispense", "schedule"), [{"api": api, "doses_mg": doses, **extra}])


def profile(points: list[Any]) -> list[Edit]:
    """Make actives[0] a profile-release active with these points."""
    return [a0("release", "profile"), a0("t80_h", DROP), a0("profile", points)]


GOOD_PROFILE = [[0.5, 0.1], [2.0, 0.35], [6.0, 0.75]]

RULES: list[Rule] = [
    # unknown keys: a typo must not be silently ignored
    Rule("unknown-top-key", [(("patinet",), "PT-1")], "patinet", "not a known key", json=True),
    Rule("unknown-active-key", [a0("doze_mg", 125.0)], "actives[0].doze_mg", "dose_mg",
         json=True),
    Rule("unknown-tablet-key", [(("tablet",), {"diameter": 10.0})], "tablet.diameter",
         "diameter_mm"),
    Rule("unknown-dispense-key", [(("dispense", "unit"), 3)], "dispense.unit", "units"),
    Rule("unknown-schedule-key", [schedule([100, 100, 100], dose=100)],
         "dispense.schedule[0].dose", "doses_mg"),
    # missing required keys
    *(Rule(f"missing-{k}", [((k,), DROP)], k, "required") for k in
      ("schema", "id", "patient", "actives", "dispense")),
    *(Rule(f"missing-{k}", [a0(k, DROP)], f"actives[0].{k}", "required") for k in
      ("api", "dose_mg", "release")),
    Rule("missing-units", [(("dispense", "units"), DROP)], "dispense.units", "required"),
    Rule("schema-version-2", [(("schema",), "doseprint.prescription/2")], "schema",
         "doseprint.prescription/2", json=True),
    # doses: positive and finite numbers
    Rule("dose-zero", [a0("dose_mg", 0)], "actives[0].dose_mg", "greater than 0", json=True),
    Rule("dose-negative", [a0("dose_mg", -5.0)], "actives[0].dose_mg", "-5"),
    Rule("dose-nan-toml", [a0("dose_mg", float("nan"))], "actives[0].dose_mg", "finite"),
    Rule("dose-inf-toml", [a0("dose_mg", float("inf"))], "actives[0].dose_mg", "finite"),
    Rule("dose-string", [a0("dose_mg", "125")], "actives[0].dose_mg", "'125'", json=True),
    Rule("dose-boolean", [a0("dose_mg", True)], "actives[0].dose_mg", "boolean", json=True),
    # release kinds and their targets
    Rule("release-unknown", [a0("release", "delayed")], "actives[0].release", "'delayed'",
         json=True),
    Rule("sustained-without-t80", [a0("t80_h", DROP)], "actives[0].t80_h", "required"),
    Rule("t80-for-immediate", [a0("release", "immediate")], "actives[0].t80_h", "immediate"),
    Rule("profile-kind-without-profile", profile(GOOD_PROFILE)[:2], "actives[0].profile",
         "required"),
    Rule("profile-falling", profile([[0.5, 0.3], [2.0, 0.2], [6.0, 0.75]]),
         "actives[0].profile[1][1]", "fall"),
    Rule("profile-above-one", profile([[0.5, 0.3], [2.0, 0.6], [6.0, 1.2]]),
         "actives[0].profile[2][1]", "1.2", json=True),
    Rule("profile-times-not-rising", profile([[0.5, 0.1], [0.5, 0.35], [6.0, 0.75]]),
         "actives[0].profile[1][0]", "rise"),
    Rule("profile-two-points", profile([[0.5, 0.1], [6.0, 0.75]]), "actives[0].profile",
         "at least 3"),
    Rule("profile-malformed-point", profile([[0.5, 0.1], [2.0], [6.0, 0.75]]),
         "actives[0].profile[1]", "pair"),
    # actives and the schedule
    Rule("same-api-twice", [(("actives", 1), {"api": "theophylline", "dose_mg": 100.0,
                                              "release": "immediate"})],
         "actives[1].api", "actives[0]", json=True),
    Rule("schedule-length", [schedule([100, 100])], "dispense.schedule[0].doses_mg",
         "has 2 doses", json=True),
    Rule("schedule-unknown-api", [schedule([10, 10, 10], api="caffeine")],
         "dispense.schedule[0].api", "'caffeine'"),
    Rule("schedule-dose-zero", [schedule([100, 100, 0])], "dispense.schedule[0].doses_mg[2]",
         "greater than 0"),
    Rule("schedule-dose-negative", [schedule([100, 100, -25])],
         "dispense.schedule[0].doses_mg[2]", "-25", json=True),
    # who the prescription is for, and how many
    Rule("patient-is-a-name", [(("patient",), "Jane Smith")], "patient", "'Jane Smith'",
         json=True),
    Rule("units-zero", [(("dispense", "units"), 0)], "dispense.units", "at least 1"),
    Rule("units-fraction", [(("dispense", "units"), 2.5)], "dispense.units", "2.5", json=True),
    # rules that need the formulation library
    Rule("api-without-formulation", [a0("api", "aspirin")], "actives[0].api", "'aspirin'",
         stage="check", json=True),
    Rule("pinned-formulation-unknown", [a0("formulation", "theophylline-nope")],
         "actives[0].formulation", "'theophylline-nope'", stage="check"),
    Rule("pinned-formulation-other-api", [a0("formulation", "caffeine-pva-10")],
         "actives[0].formulation", "caffeine", stage="check", json=True),
    Rule("dose-above-max", [a0("dose_mg", 500.0)], "actives[0].dose_mg", "max_dose_mg = 400",
         stage="check"),
    Rule("scheduled-dose-above-max", [schedule([100, 100, 450])],
         "dispense.schedule[0].doses_mg[2]", "450", stage="check"),
    # targets no supported design reaches (reported by the designer, with numbers)
    # (Solid: as an open lattice this matrix does release 125 mg at once.)
    Rule("immediate-in-solid-sustained-matrix",
         [a0("release", "immediate"), a0("t80_h", DROP),
          a0("formulation", "theophylline-hpc-30"), (("dispense", "units"), 1),
          (("tablet",), {"infill": 1.0})],
         "actives[0].release", "theophylline-hpc-30", stage="design"),
    Rule("sustained-too-fast", [a0("t80_h", 0.2), (("dispense", "units"), 1)],
         "actives[0].t80_h", "0.2 h", stage="design"),
]

BY_ID = {r.id: r for r in RULES}
assert len(BY_ID) == len(RULES), "rule ids must be unique"
