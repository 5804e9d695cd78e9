"""prescription.md "Rules every reader enforces": one bad input per rule.

Every refusal is an :class:`InputError` whose text names the file and the exact key, one
problem per mistake, and every problem of a file is reported at once.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import pytest

from doseprint.compile import compile_prescription
from doseprint.errors import InfeasibleDesignError, InputError
from doseprint.library import load_formulations
from doseprint.models.formulation import Formulation
from doseprint.models.load import check_prescription, load_prescription

from .rules import RULES, Rule
from .rxfiles import DROP, Edit, base_rx, edited, toml_dumps, write_rx


@pytest.fixture(scope="module")
def formulations() -> dict[str, Formulation]:
    return load_formulations()


def load_and_check(path: Path, formulations: dict[str, Formulation]) -> None:
    rx = load_prescription(path)
    check_prescription(rx, formulations)


def assert_one_problem(exc: InputError, path: Path, key: str, shows: str | None) -> None:
    """``exc`` holds exactly one problem, on ``key`` of ``path``, and says so in its text."""
    assert isinstance(exc, InputError)
    assert [p.key for p in exc.problems] == [key], str(exc)
    assert exc.problems[0].file == str(path)
    assert f"{path}: {key}: " in str(exc)
    if shows is not None:
        assert shows in exc.problems[0].message


# The valid starting point ----------------------------------------------------------


def test_toml_writer_round_trips() -> None:
    data = base_rx()
    data["tablet"] = {"max_length_mm": 15.0, "shape": "auto"}
    data["actives"][0]["formulation"] = "theophylline-hpc-30"
    data["dispense"]["schedule"] = [{"api": "theophylline", "doses_mg": [100, 112.5, 125]}]
    assert tomllib.loads(toml_dumps(data)) == data


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_base_prescription_is_valid(
    tmp_path: Path, fmt: str, formulations: dict[str, Formulation]
) -> None:
    data = edited(base_rx(), [(("dispense", "schedule"),
                               [{"api": "theophylline", "doses_mg": [100, 112.5, 125]}])])
    path = write_rx(tmp_path, data, fmt)
    rx = load_prescription(path)
    check_prescription(rx, formulations)
    assert rx.actives[0].dose_mg == 125.0
    assert rx.dose_mg(1, "theophylline") == 112.5
    assert rx.source == str(path)


def test_every_rule_changes_the_base() -> None:
    # A rule's edits must apply to the base (a typo in a path would test nothing).
    for rule in RULES:
        assert edited(base_rx(), rule.edits) != base_rx(), rule.id


# One test per rule -----------------------------------------------------------------

LOADER_RULES = [r for r in RULES if r.stage in ("load", "check")]


def _check_rule(rule: Rule, path: Path, formulations: dict[str, Formulation]) -> None:
    if rule.stage == "load":
        # Refused by the reader itself, before any library is needed.
        with pytest.raises(InputError) as info:
            load_prescription(path)
    else:
        rx = load_prescription(path)  # a well-formed file ...
        with pytest.raises(InputError) as info:
            check_prescription(rx, formulations)  # ... that the library refuses
    assert_one_problem(info.value, path, rule.key, rule.shows)


@pytest.mark.parametrize("rule", LOADER_RULES, ids=[r.id for r in LOADER_RULES])
def test_rule_toml(tmp_path: Path, rule: Rule, formulations: dict[str, Formulation]) -> None:
    path = write_rx(tmp_path, edited(base_rx(), rule.edits), "toml")
    _check_rule(rule, path, formulations)


JSON_RULES = [r for r in LOADER_RULES if r.json]


@pytest.mark.parametrize("rule", JSON_RULES, ids=[r.id for r in JSON_RULES])
def test_rule_json(tmp_path: Path, rule: Rule, formulations: dict[str, Formulation]) -> None:
    path = write_rx(tmp_path, edited(base_rx(), rule.edits), "json")
    _check_rule(rule, path, formulations)


DESIGN_RULES = [r for r in RULES if r.stage == "design"]


@pytest.mark.parametrize("rule", DESIGN_RULES, ids=[r.id for r in DESIGN_RULES])
def test_unreachable_target_is_infeasible_with_numbers(
    tmp_path: Path, rule: Rule, formulations: dict[str, Formulation]
) -> None:
    path = write_rx(tmp_path, edited(base_rx(), rule.edits))
    load_and_check(path, formulations)  # the file itself is fine
    with pytest.raises(InfeasibleDesignError) as info:
        compile_prescription(path, "generic-marlin-1x175")
    exc = info.value
    assert isinstance(exc, InputError)
    assert exc.problems and {p.key for p in exc.problems} == {rule.key}
    assert f"{path}: {rule.key}: " in str(exc)
    assert rule.shows is None or rule.shows in str(exc)
    asked = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", repr(edited(base_rx(), rule.edits)))}
    for p in exc.problems:
        # The message gives what can be reached, a number that is not merely an echo
        # of what was asked for.
        found = {float(x) for x in re.findall(r"\d+(?:\.\d+)?", p.message)}
        assert found - asked - {22.0}, p.message  # 22 mm: the default size limit


# JSON's own traps: NaN/Infinity, huge integers, null, duplicate keys ------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_nan_and_infinity_name_the_key(tmp_path: Path, value: float) -> None:
    # Python's json module reads NaN/Infinity although JSON has no such numbers.
    path = write_rx(tmp_path, edited(base_rx(), [(("actives", 0, "dose_mg"), value)]), "json")
    assert ("NaN" if math.isnan(value) else "Infinity") in path.read_text()
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert_one_problem(info.value, path, "actives[0].dose_mg", "finite")


def test_json_huge_integer_dose_names_the_key(tmp_path: Path) -> None:
    # 10**400 is a valid JSON number but no float: it must not escape as OverflowError.
    path = write_rx(tmp_path, base_rx(), "json")
    path.write_text(path.read_text().replace("125.0", "1" + "0" * 400))
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert_one_problem(info.value, path, "actives[0].dose_mg", None)
    assert len(str(info.value)) < 400  # the value is shortened, not printed whole


NULLABLE = [
    (("schema",), "schema"),
    (("id",), "id"),
    (("note",), "note"),
    (("tablet",), "tablet"),
    (("actives", 0, "dose_mg"), "actives[0].dose_mg"),
    (("actives", 0, "t80_h"), "actives[0].t80_h"),
    (("actives", 0, "formulation"), "actives[0].formulation"),
    (("dispense", "units"), "dispense.units"),
    (("dispense", "schedule"), "dispense.schedule"),
]


@pytest.mark.parametrize(("path_", "key"), NULLABLE, ids=[k for _, k in NULLABLE])
def test_json_null_is_refused_naming_the_key(
    tmp_path: Path, path_: tuple[str | int, ...], key: str
) -> None:
    # null is neither a value nor an absence: refused, never read as "not given".
    path = write_rx(tmp_path, edited(base_rx(), [(path_, None)]), "json")
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert_one_problem(info.value, path, key, "null")


def test_json_null_in_a_list_is_called_null(tmp_path: Path) -> None:
    data = edited(base_rx(), [(("dispense", "schedule"),
                               [{"api": "theophylline", "doses_mg": [100, None, 100]}])])
    path = write_rx(tmp_path, data, "json")
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert_one_problem(info.value, path, "dispense.schedule[0].doses_mg[1]", "null")
    assert "NoneType" not in str(info.value)


def test_json_duplicate_key_is_refused(tmp_path: Path) -> None:
    # json.loads keeps the last of duplicate keys; TOML refuses them, and so must JSON.
    path = write_rx(tmp_path, base_rx(), "json")
    path.write_text(path.read_text().replace('"dose_mg": 125.0',
                                             '"dose_mg": 125.0, "dose_mg": 1250.0'))
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert str(path) in str(info.value)
    assert "dose_mg" in str(info.value)


def test_json_duplicate_key_names_the_full_key(tmp_path: Path) -> None:
    path = write_rx(tmp_path, base_rx(), "json")
    path.write_text(path.read_text().replace('"dose_mg": 125.0',
                                             '"dose_mg": 125.0, "dose_mg": 1250.0'))
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert f"{path}: actives[0].dose_mg: " in str(info.value)


# Files that do not parse -------------------------------------------------------------


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rx.toml"
    text = toml_dumps(base_rx()).replace('"patient" = "PT-7F3A"', '"patient" = PT-7F3A')
    path.write_text(text)
    line = text.splitlines().index('"patient" = PT-7F3A') + 1
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert str(path) in str(info.value)
    assert f"line {line}" in str(info.value)


def test_json_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write_rx(tmp_path, base_rx(), "json")
    text = path.read_text().replace('"id": "RX-TEST-0001",', '"id": "RX-TEST-0001"')
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert str(path) in str(info.value)
    assert re.search(r"line \d+", str(info.value))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "no-such-rx.toml"
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_prescription(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_json_top_level_array(tmp_path: Path) -> None:
    path = tmp_path / "rx.json"
    path.write_text(json.dumps([base_rx()]))
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert str(path) in str(info.value)
    assert "top level" in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rx.toml"
    path.write_bytes(toml_dumps(base_rx()).replace("PT-7F3A", "PT-7F3A\xe9").encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert str(path) in str(info.value)
    assert "UTF-8" in str(info.value)


# Every problem at once ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_three_mistakes_three_problems(tmp_path: Path, fmt: str) -> None:
    data = edited(base_rx(), [(("patinet",), "PT-1"), (("actives", 0, "dose_mg"), -1.0),
                              (("dispense", "units"), 0)])
    path = write_rx(tmp_path, data, fmt)
    with pytest.raises(InputError) as info:
        load_prescription(path)
    keys = {"patinet", "actives[0].dose_mg", "dispense.units"}
    assert {p.key for p in info.value.problems} == keys
    assert len(info.value.problems) == 3
    lines = str(info.value).splitlines()
    for key in keys:
        assert any(line.startswith(f"{path}: {key}: ") for line in lines), key


def test_library_problems_all_reported(
    tmp_path: Path, formulations: dict[str, Formulation]
) -> None:
    data = edited(base_rx(), [
        (("actives", 0, "dose_mg"), 500.0),
        (("actives", 1), {"api": "aspirin", "dose_mg": 75.0, "release": "immediate"}),
        (("actives", 2), {"api": "caffeine", "dose_mg": 50.0, "release": "immediate",
                          "formulation": "paracetamol-pva-5"}),
        (("dispense", "schedule"), [{"api": "theophylline", "doses_mg": [100, 450, 460]}]),
    ])
    path = write_rx(tmp_path, data)
    rx = load_prescription(path)
    with pytest.raises(InputError) as info:
        check_prescription(rx, formulations)
    assert [p.key for p in info.value.problems] == [
        "actives[0].dose_mg",
        "dispense.schedule[0].doses_mg[1]",
        "dispense.schedule[0].doses_mg[2]",
        "actives[1].api",
        "actives[2].formulation",
    ]


def test_schedule_problem_reported_with_an_actives_problem(tmp_path: Path) -> None:
    # The schedule's API is checked against the actives even when an active is bad.
    data = edited(base_rx(), [
        (("actives", 0, "dose_mg"), -1.0),
        (("dispense", "schedule"), [{"api": "caffeine", "doses_mg": [10, 10, 10]}]),
    ])
    path = write_rx(tmp_path, data)
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert {p.key for p in info.value.problems} == {"actives[0].dose_mg",
                                                    "dispense.schedule[0].api"}


# A few more of the reader's own limits -----------------------------------------------


@pytest.mark.parametrize(("edits", "key"), [
    ([(("tablet",), {"infill": 0.1})], "tablet.infill"),
    ([(("tablet",), {"infill": 0.5, "infill_pattern": "honeycomb"})], "tablet.infill_pattern"),
    ([(("tablet",), {"infill": 0.5, "solid_layers": -1})], "tablet.solid_layers"),
    ([(("tablet",), {"shape": "pyramid"})], "tablet.shape"),
    ([(("tablet",), {"diameter_mm": 20.0, "max_length_mm": 15.0})], "tablet.diameter_mm"),
    ([(("tablet",), {"max_length_mm": 0})], "tablet.max_length_mm"),
    ([(("id",), "RX 1")], "id"),
    ([(("id",), "")], "id"),
    ([(("actives",), [])], "actives"),
    ([(("actives",), {"api": "theophylline"})], "actives"),
    ([(("actives", 0, "t80_h"), 0)], "actives[0].t80_h"),
    ([(("actives", 0, "profile"), [[0.5, 0.1], [2.0, 0.35], [6.0, 0.75]])],
     "actives[0].profile"),
    ([(("actives", 0, "api"), DROP), (("actives", 0, "api"), 5)], "actives[0].api"),
    ([(("dispense", "schedule"), [{"api": "theophylline", "doses_mg": [1, 1, 1]},
                                  {"api": "theophylline", "doses_mg": [2, 2, 2]}])],
     "dispense.schedule[1].api"),
    ([(("dispense", "schedule"), [{"api": "theophylline", "doses_mg": [100, "x", 100]}])],
     "dispense.schedule[0].doses_mg[1]"),
    ([(("dispense", "schedule"), [{"api": "theophylline", "doses_mg": [100, math.nan, 1]}])],
     "dispense.schedule[0].doses_mg[1]"),
    ([(("dispense", "units"), 1001)], "dispense.units"),
    ([(("dispense", "units"), True)], "dispense.units"),
])
def test_other_reader_limits(tmp_path: Path, edits: list[Edit], key: str) -> None:
    path = write_rx(tmp_path, edited(base_rx(), edits))
    with pytest.raises(InputError) as info:
        load_prescription(path)
    assert_one_problem(info.value, path, key, None)
