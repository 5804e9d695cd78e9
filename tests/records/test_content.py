"""records/content.py: the one reader of a record content's tablets and materials."""

from __future__ import annotations

import math

from doseprint.records.content import densities_by_tool, materials_of, number, tablets_of


def test_tablets_keep_order_index_and_parts() -> None:
    content = {"tablets": [
        {"index": 0, "design": {"shape": "cylinder"}, "actives": [{"api": "a", "dose_mg": 5}],
         "shell": {"tool": 1, "design_volume_mm3": 10.0}},
        {"actives": [{"api": "b"}, "not an object"]},
    ]}
    first, second = tablets_of(content)
    assert first.index == 0 and first.design == {"shape": "cylinder"}
    assert first.actives == ({"api": "a", "dose_mg": 5},)
    assert first.shell == {"tool": 1, "design_volume_mm3": 10.0}
    assert second.index == 1  # its place in the list when it names none
    assert second.design == {} and second.shell is None
    assert second.actives == ({"api": "b"},)


def test_content_of_the_wrong_shape_reads_as_nothing() -> None:
    assert tablets_of({}) == ()
    assert tablets_of({"tablets": "many"}) == ()
    assert tablets_of({"tablets": [3, None]}) == ()
    (tablet,) = tablets_of({"tablets": [{"design": [], "actives": {}, "shell": "x"}]})
    assert tablet.design == {} and tablet.actives == () and tablet.shell is None
    assert materials_of({"materials": [{"tool": 0}, 7]}) == ({"tool": 0},)


def test_densities_only_from_whole_positive_entries() -> None:
    content = {"materials": [
        {"tool": 0, "density_g_cm3": 1.3},
        {"tool": 1, "density_g_cm3": 0},
        {"tool": "2", "density_g_cm3": 1.2},
        {"tool": 3, "density_g_cm3": True},
        {"tool": 4, "density_g_cm3": float("nan")},
        {"tool": 5},
    ]}
    assert densities_by_tool(content) == {0: 1.3}


def test_number_takes_finite_json_numbers_only() -> None:
    assert number(2) == 2.0 and isinstance(number(2), float)
    assert number(2.5) == 2.5
    for value in (True, "2", None, math.inf, math.nan, [1]):
        assert number(value) is None
