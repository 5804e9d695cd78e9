"""The layout registry (geometry/layouts.py): one entry per name of the vocabulary, each
with the compartment counts and the divide function the rest of doseprint reads."""

from __future__ import annotations

from typing import get_args

import pytest

from doseprint.design.general import LAYOUTS_FOR
from doseprint.errors import InfeasibleDesignError, InputError
from doseprint.geometry.build import size_frame
from doseprint.geometry.layouts import LAYOUT_KINDS, DivideOptions, divide, layout_kind
from doseprint.geometry.spec import TabletSpec
from doseprint.typed import LAYOUT_NAMES, LAYOUTS, Layout, LayoutName


def test_the_registry_has_one_entry_per_layout_name() -> None:
    assert tuple(LAYOUT_KINDS) == LAYOUT_NAMES == get_args(LayoutName)
    assert LAYOUTS == ("auto", *LAYOUT_NAMES) == get_args(Layout)


def test_the_registry_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        LAYOUT_KINDS["wedges"] = LAYOUT_KINDS["rings"]  # type: ignore[index]


@pytest.mark.parametrize(("name", "counts", "stacked", "core"), [
    ("single", (1,), True, False),
    ("bilayer", (2,), True, False),
    ("multilayer", (2, 3, 4), True, False),
    ("core-shell", (2,), False, True),
    ("segments", (2, 3, 4), False, False),
    ("rings", (2, 3, 4), False, False),
])
def test_each_layout_says_what_it_takes(
    name: LayoutName, counts: tuple[int, ...], stacked: bool, core: bool
) -> None:
    kind = layout_kind(name)
    assert kind is LAYOUT_KINDS[name]
    assert kind.counts == counts
    assert [n for n in range(0, 7) if kind.takes(n)] == list(counts)
    assert (kind.stacked, kind.core) == (stacked, core)


def test_the_designer_tries_only_layouts_that_take_that_many_actives() -> None:
    for n, names in LAYOUTS_FOR.items():
        assert names and all(LAYOUT_KINDS[name].takes(n) for name in names)


def test_an_unknown_layout_is_refused_with_the_names() -> None:
    with pytest.raises(InfeasibleDesignError, match="unknown layout 'wedges'; choose one of "
                       "single, bilayer, multilayer, core-shell, segments, rings"):
        layout_kind("wedges")
    body = size_frame(TabletSpec(layout="segments"), 300.0).body
    with pytest.raises(InfeasibleDesignError, match="unknown layout 'wedges'"):
        divide("wedges", body, [100.0, 200.0])  # type: ignore[arg-type]


def test_a_spec_refuses_an_unknown_layout_before_any_division() -> None:
    with pytest.raises(InputError, match="unknown layout 'wedges'; choose one of single"):
        TabletSpec(layout="wedges")  # type: ignore[arg-type]


@pytest.mark.parametrize(("shape", "name"), [
    ("cylinder", "multilayer"), ("cylinder", "core-shell"), ("oval", "segments"),
    ("caplet", "segments"), ("ring", "rings"),
])
def test_divide_is_the_registered_function(shape: str, name: LayoutName) -> None:
    volumes = [120.0, 180.0]
    spec = TabletSpec(shape=shape, layout=name, channels=0)  # type: ignore[arg-type]
    body = size_frame(spec, sum(volumes)).body
    options = DivideOptions(core_wall_ratio=1.5, clearance_mm=0.8)
    direct = LAYOUT_KINDS[name].divide(body, volumes, options)
    via = divide(name, body, volumes, core_wall_ratio=1.5, clearance_mm=0.8)
    assert via.dimensions == direct.dimensions
    assert [p.volume_mm3 for p in via.parts] == pytest.approx(volumes, rel=1e-9)

