"""Hypothesis strategies for tablet designs: shapes × layouts × volumes × shell, dome and
channel options, with an occasional dimension fixed by the prescription."""

from __future__ import annotations

from hypothesis import strategies as st

from doseprint.geometry.layouts import LAYOUT_KINDS
from doseprint.geometry.spec import TabletSpec
from doseprint.typed import LAYOUT_NAMES, SHAPE_NAMES

volumes_mm3 = st.floats(min_value=1.0, max_value=600.0, allow_nan=False, allow_infinity=False)
"""One compartment's volume: from a low-dose mini-tablet to most of a large caplet."""


@st.composite
def volume_lists(draw: st.DrawFn, n: int) -> list[float]:
    """``n`` volumes: half the time each anywhere in 1–600 mm³, half the time within a
    factor two of each other (designs with wide ratios are mostly refused, rightly)."""
    if draw(st.booleans()):
        return draw(st.lists(volumes_mm3, min_size=n, max_size=n))
    base = draw(st.floats(40.0, 300.0))
    factors = draw(st.lists(st.floats(0.5, 2.0), min_size=n, max_size=n))
    return [min(600.0, base * f) for f in factors]


@st.composite
def designs(draw: st.DrawFn) -> tuple[TabletSpec, list[float]]:
    """A tablet spec and the compartment volumes to size it for (not always feasible)."""
    shape = draw(st.sampled_from(SHAPE_NAMES))
    layout = draw(st.sampled_from(LAYOUT_NAMES))
    lo, hi = LAYOUT_KINDS[layout].compartments
    n = draw(st.integers(lo, hi))
    volumes = draw(volume_lists(n))
    dome = 0.0
    if shape != "ring" and draw(st.booleans()):
        dome = draw(st.floats(0.3, 2.0))
    shell = draw(st.sampled_from([0.0, 0.0, 0.9, 1.2]))
    channels = draw(st.sampled_from([0, 0, 0, 1, 2, 3, 4]))
    if shape == "ring" and channels == 1:
        channels = 2
    fixed: dict[str, float] = {}
    which = draw(st.sampled_from(["none", "none", "none", "xy", "height"]))
    if which == "height":
        fixed["height_mm"] = draw(st.floats(2.5, 8.0))
    elif which == "xy":
        key = "diameter_mm" if shape in ("cylinder", "ring") else draw(
            st.sampled_from(["length_mm", "width_mm"]))
        fixed[key] = draw(st.floats(6.0, 18.0))
    spec = TabletSpec(
        shape=shape,
        layout=layout,
        aspect=draw(st.floats(0.3, 1.0)),
        caplet_ratio=draw(st.floats(1.6, 2.8)),
        oval_ratio=draw(st.floats(1.1, 2.0)),
        ring_ratio=draw(st.floats(0.2, 0.45)),
        dome_mm=dome,
        dome_faces=draw(st.sampled_from(["both", "top"])),
        shell_mm=shell,
        channels=channels,
        channel_mm=draw(st.floats(0.9, 1.5)),
        channel_spread=draw(st.floats(0.2, 0.8)),
        core_wall_ratio=draw(st.floats(0.7, 1.5)),
        **fixed,
    )
    return spec, volumes
