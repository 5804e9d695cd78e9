"""Uniformity of mass (Ph. Eur. 2.9.5 from 20 units, every unit within the limit below),
plausible masses, target masses, estimated doses and the ``qc`` event."""

from __future__ import annotations

import math

import pytest

from doseprint.errors import InputError
from doseprint.records.chain import verify_record
from doseprint.records.qc import (
    PLAUSIBLE_MASS_MG,
    PLAUSIBLE_RATIO,
    RULE_EVERY_UNIT,
    RULE_PH_EUR,
    designed_masses_mg,
    estimated_doses_mg,
    judge_mass_uniformity,
    mass_limit_pct,
    qc_event_data,
    qc_passed,
    qc_targets,
)
from doseprint.records.store import RecordStore
from doseprint.records.values import Record

from .qc_helpers import extend, full_content


@pytest.mark.parametrize(
    ("average", "limit"),
    [
        (10.0, 10.0),
        (80.0, 10.0),
        (80.01, 7.5),
        (150.0, 7.5),
        (249.99, 7.5),
        (250.0, 5.0),
        (900.0, 5.0),
    ],
)
def test_limit_by_average_mass(average: float, limit: float) -> None:
    assert mass_limit_pct(average) == limit


def test_twenty_equal_units_pass_as_a_standard_sample() -> None:
    result = judge_mass_uniformity([100.0] * 20)
    assert result.passed
    assert result.units_tested == 20
    assert result.standard_sample
    assert result.note == ""
    assert result.limit_pct == 7.5
    assert result.average_mg == pytest.approx(100.0)
    assert result.rule == RULE_PH_EUR == "ph-eur-2.9.5"
    assert result.to_json()["rule"] == RULE_PH_EUR


def test_two_units_beyond_the_limit_pass() -> None:
    masses = [100.0] * 18 + [108.5, 91.5]  # ±8.5 % > 7.5 %, average still 100
    result = judge_mass_uniformity(masses)
    assert result.beyond_limit == (18, 19)
    assert result.beyond_twice_limit == ()
    assert result.passed


def test_three_units_beyond_the_limit_fail() -> None:
    masses = [100.0] * 17 + [108.5, 91.5, 108.5]
    result = judge_mass_uniformity(masses)
    assert len(result.beyond_limit) == 3
    assert not result.passed


def test_one_unit_beyond_twice_the_limit_fails() -> None:
    masses = [100.0] * 18 + [116.0, 84.0]  # ±16 % > 2 × 7.5 %
    result = judge_mass_uniformity(masses)
    assert result.beyond_twice_limit == (18, 19)
    assert not result.passed


def test_a_deviation_equal_to_the_limit_is_within_it() -> None:
    # 50 mg tablets: limit 10 %; 45 and 55 deviate by exactly 10 %.
    result = judge_mass_uniformity([45.0, 55.0, 50.0, 50.0])
    assert result.limit_pct == 10.0
    assert result.beyond_limit == ()
    assert result.passed


def test_a_small_batch_needs_every_unit_within_the_limit_and_says_so() -> None:
    result = judge_mass_uniformity([300.0, 301.0, 299.0, 300.0, 302.0, 298.0, 300.0])
    assert result.units_tested == 7
    assert not result.standard_sample
    assert result.rule == RULE_EVERY_UNIT == "every-unit-within-limit"
    assert result.allowed_beyond_limit == 0
    assert "20" in result.note and "every unit" in result.note
    assert result.limit_pct == 5.0
    assert result.passed
    failing = judge_mass_uniformity([300.0] * 6 + [340.0])  # +11.6 % of the mean > 10 %
    assert not failing.passed


def test_one_unit_of_four_beyond_the_limit_fails() -> None:
    # Under "at most 2 of 20" this batch of 4 passed; below 20 units none may be beyond.
    result = judge_mass_uniformity([300.0, 300.0, 300.0, 330.0])  # +7.7 % of the mean > 5 %
    assert result.beyond_limit == (3,)
    assert result.beyond_twice_limit == ()
    assert result.rule == RULE_EVERY_UNIT
    assert not result.passed


@pytest.mark.parametrize(
    ("units", "rule", "allowed"),
    [(1, RULE_EVERY_UNIT, 0), (19, RULE_EVERY_UNIT, 0), (20, RULE_PH_EUR, 2),
     (30, RULE_PH_EUR, 2)],
)
def test_the_rule_follows_the_number_of_units(units: int, rule: str, allowed: int) -> None:
    # Two units at ±8.5 % (beyond the 7.5 % limit), the rest on the average.
    masses = [100.0] * (units - 2) + [108.5, 91.5] if units >= 2 else [100.0]
    result = judge_mass_uniformity(masses)
    assert result.rule == rule
    assert result.allowed_beyond_limit == allowed
    assert result.standard_sample is (units >= 20)
    assert result.passed is (units == 1 or allowed == 2)
    if units > 20:
        assert "all 30" in result.note


def test_signed_deviations() -> None:
    result = judge_mass_uniformity([90.0, 110.0])
    assert result.deviations_pct == pytest.approx((-10.0, 10.0))


@pytest.mark.parametrize("masses", [[], [100.0, -1.0], [0.0], [100.0, math.nan], [math.inf]])
def test_bad_masses_raise_value_error(masses: list[float]) -> None:
    with pytest.raises(ValueError):
        judge_mass_uniformity(masses)


def test_estimated_doses_scale_with_weighed_over_designed_mass() -> None:
    assert estimated_doses_mg([105.0, 95.0], [100.0, 100.0], [50.0, 20.0]) == pytest.approx(
        (52.5, 19.0)
    )


@pytest.mark.parametrize(
    ("masses", "designed", "doses"),
    [
        ([], [], []),
        ([100.0], [100.0, 90.0], [5.0]),
        ([100.0], [0.0], [5.0]),
        ([100.0], [100.0], [-5.0]),
        ([-100.0], [100.0], [5.0]),
    ],
)
def test_estimated_doses_reject_bad_input(
    masses: list[float], designed: list[float], doses: list[float]
) -> None:
    with pytest.raises(ValueError):
        estimated_doses_mg(masses, designed, doses)


def test_designed_masses_sum_compartment_volume_times_density() -> None:
    content = full_content((125.0,))
    assert designed_masses_mg(content) == pytest.approx((125.0 / 0.3,))  # 416.67 mg
    content["tablets"][0]["shell"] = {"tool": 1, "design_volume_mm3": 50.0}
    content["materials"].append({"tool": 1, "formulation": "hpc-shell", "density_g_cm3": 1.1})
    assert designed_masses_mg(content) == pytest.approx((125.0 / 0.3 + 55.0,))


def test_designed_masses_fall_back_to_envelope_times_infill_for_one_material() -> None:
    content = full_content((125.0,))
    del content["tablets"][0]["actives"][0]["design_volume_mm3"]
    content["tablets"][0]["design"]["infill"] = 0.5
    assert designed_masses_mg(content) == pytest.approx((0.5 * 125.0 / 0.3,))


def test_designed_masses_are_none_without_density() -> None:
    assert designed_masses_mg(full_content(volumes=False)) is None


def _record(store: RecordStore, content: dict[str, object]) -> Record:
    record_id = store.create(content, actor="Ana Operator")
    store.append(record_id, "started", {}, "Ana Operator")
    store.append(record_id, "completed", {"last_acked": 10}, "doseprint")
    return store.get(record_id)


def test_qc_event_data_judges_and_estimates(store: RecordStore) -> None:
    record = _record(store, full_content())
    designed = designed_masses_mg(record.content)
    assert designed is not None
    masses = [designed[0] * 1.02, designed[1] * 0.99, designed[2]]
    data = qc_event_data(record, masses, by="  P. Harmacist ")
    assert data["passed"] is True
    assert data["rule"] == data["uniformity"]["rule"] == RULE_EVERY_UNIT
    assert data["weighed_by"] == "P. Harmacist"
    assert data["masses_mg"] == masses
    assert data["uniformity"]["units_tested"] == 3
    assert data["uniformity"]["standard_sample"] is False
    assert data["missing"] == []
    doses = {d["tablet"]: d["estimated_mg"] for d in data["estimated_doses"]}
    assert doses == pytest.approx({0: 127.5, 1: 99.0, 2: 75.0})
    assert data["mass_ratio"] == pytest.approx([1.02, 0.99, 1.0])


def test_qc_event_data_without_densities_still_judges(store: RecordStore) -> None:
    record = _record(store, full_content((100.0, 100.0), volumes=False))
    data = qc_event_data(record, [300.0, 301.0], by="P. Harmacist")
    assert data["passed"] is True
    assert data["designed_masses_mg"] is None
    assert data["estimated_doses"] == []
    assert any("density_g_cm3" in key for key in data["missing"])


@pytest.mark.parametrize(
    ("masses", "by", "key"),
    [
        ([100.0, 100.0], "P", "--mass-mg"),
        ([100.0, 100.0, -1.0], "P", "--mass-mg"),
        ([], "P", "--mass-mg"),
        ([100.0] * 3, " ", "--by"),
    ],
)
def test_qc_event_data_rejects_bad_input(
    store: RecordStore, masses: list[float], by: str, key: str
) -> None:
    record = _record(store, full_content())
    with pytest.raises(InputError) as info:
        qc_event_data(record, masses, by=by)
    assert info.value.problems[0].key == key


def test_qc_passed_reads_the_latest_qc_event(store: RecordStore) -> None:
    record = _record(store, full_content())
    assert qc_passed(record) is None
    good = qc_event_data(record, [416.0, 333.0, 250.0], by="P. Harmacist")
    record = extend(record, "qc", good, "P. Harmacist")
    assert qc_passed(record) is True
    bad = qc_event_data(record, [416.0, 333.0 * 1.3, 250.0], by="P. Harmacist")
    assert bad["passed"] is False  # tablet 1 is 30 % over its design
    record = extend(record, "qc", bad, "P. Harmacist")
    assert qc_passed(record) is False
    assert verify_record(record) == []


def test_tablets_of_different_doses_are_judged_against_their_designs(
    store: RecordStore,
) -> None:
    record = _record(store, full_content((200.0, 50.0)))  # designed 666.7 and 166.7 mg
    data = qc_event_data(record, [666.0, 167.0], by="P. Harmacist")
    assert data["basis"] == "normalised"
    assert data["passed"] is True
    assert data["warnings"] == []
    raw = qc_event_data(
        _record(store, full_content((200.0, 50.0), volumes=False)), [666.0, 167.0], by="P"
    )
    assert raw["basis"] == "weighed"
    assert raw["passed"] is False
    assert raw["warnings"]


def test_a_failing_batch_is_flagged(store: RecordStore) -> None:
    record = _record(store, full_content((100.0,) * 7))
    data = qc_event_data(record, [267.0] * 6 + [320.0], by="P. Harmacist")  # +16 % of mean
    assert data["passed"] is False
    assert data["uniformity"]["beyond_limit"] == [6]
    assert qc_passed(extend(record, "qc", data, "P. Harmacist")) is False


def test_qc_event_through_the_store(store: RecordStore) -> None:
    record = _record(store, full_content())
    data = qc_event_data(record, [416.0, 333.0, 250.0], by="P. Harmacist")
    store.append(record.id, "qc", data, "P. Harmacist")  # type: ignore[arg-type]
    stored = store.get(record.id)
    assert qc_passed(stored) is True
    assert store.verify(record.id) == []


def test_investigations_in_a_chain_verify(store: RecordStore) -> None:
    record = _record(store, full_content())
    failed = qc_event_data(record, [416.0, 333.0 * 1.3, 250.0], by="P. Harmacist")
    record = extend(record, "qc", failed, "P. Harmacist")
    record = extend(record, "investigation_opened",
                    {"reason": "tablet 1 weighed with its support", "failed_qc_seq": 3}, "Q")
    passed = qc_event_data(record, [416.0, 333.0, 250.0], by="P. Harmacist")
    record = extend(record, "qc", passed, "P. Harmacist")
    record = extend(record, "investigation_closed",
                    {"outcome": "support removed; re-weighed", "investigation_seq": 4}, "Q")
    assert verify_record(record) == []
    assert qc_passed(record) is True
    # Both results are kept.
    assert [e.data["passed"] for e in record.events if e.kind == "qc"] == [False, True]


def test_an_investigation_without_a_failed_qc_does_not_verify(store: RecordStore) -> None:
    record = _record(store, full_content())
    record = extend(record, "investigation_opened", {"reason": "x"}, "Q")
    (problem,) = verify_record(record)
    assert "event 3 (investigation_opened" in problem and "no QC to investigate" in problem


# Plausibility: slips are refused, real failures recorded


@pytest.mark.parametrize(
    ("ratio", "outcome"),
    [
        (1.0, "passed"),
        (0.7, "failed"),     # 30 % light: a real failing tablet, recorded
        (1.3, "failed"),     # 30 % heavy
        (0.5, "failed"),     # on the band's edge: still a weighing
        (2.0, "failed"),
        (0.49, "refused"),
        (2.01, "refused"),
        (0.001, "refused"),  # typed in grams
        (10.0, "refused"),   # a decimal point slipped
        (1000.0, "refused"),  # typed in micrograms
    ],
)
def test_masses_far_from_their_design_are_refused_as_slips(
    store: RecordStore, ratio: float, outcome: str
) -> None:
    record = _record(store, full_content())
    designed = designed_masses_mg(record.content)
    assert designed is not None
    masses = [designed[0], designed[1] * ratio, designed[2]]
    if outcome == "refused":
        with pytest.raises(InputError) as info:
            qc_event_data(record, masses, by="P. Harmacist")
        (problem,) = info.value.problems
        assert problem.key == "--mass-mg[1]"
        low, high = (designed[1] * r for r in PLAUSIBLE_RATIO)
        assert f"{low:.1f}-{high:.1f} mg" in problem.message
        return
    data = qc_event_data(record, masses, by="P. Harmacist")
    assert data["passed"] is (outcome == "passed")


def test_masses_in_grams_are_all_named(store: RecordStore) -> None:
    record = _record(store, full_content())
    with pytest.raises(InputError) as info:
        qc_event_data(record, [0.416, 0.333, 0.25], by="P. Harmacist")
    assert [p.key for p in info.value.problems] == ["--mass-mg[0]", "--mass-mg[1]",
                                                    "--mass-mg[2]"]
    assert info.value.hint is not None and "grams" in info.value.hint


@pytest.mark.parametrize(("mass", "refused"), [(0.9, True), (1.0, False), (300.0, False),
                                               (10_000.0, False), (10_001.0, True)])
def test_without_designed_masses_only_impossible_masses_are_refused(
    store: RecordStore, mass: float, refused: bool
) -> None:
    assert PLAUSIBLE_MASS_MG == (1.0, 10_000.0)
    record = _record(store, full_content((100.0, 100.0), volumes=False))
    if refused:
        with pytest.raises(InputError) as info:
            qc_event_data(record, [mass, mass], by="P. Harmacist")
        assert info.value.problems[0].key == "--mass-mg[0]"
        assert "1-10000 mg" in info.value.problems[0].message
    else:
        assert qc_event_data(record, [mass, mass], by="P. Harmacist")["passed"] is True


# Targets before weighing


def test_targets_give_each_tablets_design_and_windows(store: RecordStore) -> None:
    record = _record(store, full_content((125.0, 100.0, 75.0)))
    targets = qc_targets(record)
    designed = designed_masses_mg(record.content)
    assert designed is not None
    assert targets["units"] == 3 and targets["rule"] == RULE_EVERY_UNIT
    limit = mass_limit_pct(sum(designed) / 3)
    assert targets["limit_pct"] == limit == 5.0
    assert targets["missing"] == []
    for row, mass in zip(targets["tablets"], designed, strict=True):
        assert row["designed_mg"] == pytest.approx(mass, abs=0.05)
        assert row["window_mg"] == pytest.approx([mass * 0.95, mass * 1.05], abs=0.05)
        assert row["dose_window_mg"] == pytest.approx([mass * 0.85, mass * 1.15], abs=0.05)
        assert row["plausible_mg"] == pytest.approx([mass * 0.5, mass * 2.0], abs=0.05)
    # A tablet weighed on its target passes; the window is what the technician aims for.
    data = qc_event_data(record, [row["designed_mg"] for row in targets["tablets"]], by="P")
    assert data["passed"] is True


def test_targets_without_designed_masses_say_what_is_missing(store: RecordStore) -> None:
    record = _record(store, full_content((100.0,) * 20, volumes=False))
    targets = qc_targets(record)
    assert targets["rule"] == RULE_PH_EUR and targets["units"] == 20
    assert targets["limit_pct"] is None
    assert all(row["designed_mg"] is None and row["window_mg"] is None
               for row in targets["tablets"])
    assert targets["tablets"][0]["plausible_mg"] == [1.0, 10_000.0]
    assert any("density_g_cm3" in key for key in targets["missing"])
