"""Sizing against closed forms, exposed areas, limits and their messages, layers."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from doseprint.errors import InfeasibleDesignError, InputError
from doseprint.geometry.build import size_tablet
from doseprint.geometry.layering import layer_error, snap_to_layers
from doseprint.geometry.sized import CompartmentGeometry, TabletGeometry
from doseprint.geometry.spec import SizeLimits, TabletSpec

LIMITS = SizeLimits()


def test_basic() -> None:
    g = size_tablet(TabletSpec(layout="bilayer"), [150.0, 80.0])
    assert isinstance(g, TabletGeometry)
    assert all(isinstance(c, CompartmentGeometry) for c in g.compartments)
    assert [c.role for c in g.compartments] == ["api", "api"]
    assert [c.index for c in g.compartments] == [0, 1]
    assert set(g.dimensions_mm) >= {"diameter", "height", "layer_heights", "interfaces_z"}
    assert g.footprint_radius_mm == pytest.approx(g.dimensions_mm["diameter"] / 2)
    assert g.longest_mm == max(g.dimensions_mm["diameter"], g.height_mm)
    # Sizing builds no mesh; the first access does.
    assert "manifolds" not in vars(g.compartments[0].meshes_)
    assert g.compartments[0].mesh.is_watertight
    json.dumps(g.to_json())


def test_single_cylinder_follows_the_aspect() -> None:
    g = size_tablet(TabletSpec(aspect=0.4), [250.0])
    d = (4.0 * 250.0 / (math.pi * 0.4)) ** (1.0 / 3.0)
    assert g.dimensions_mm["diameter"] == pytest.approx(d, rel=1e-12)
    assert g.height_mm == pytest.approx(0.4 * d, rel=1e-12)
    assert g.envelope_volume_mm3 == pytest.approx(250.0, rel=1e-12)


def test_fixed_diameter_or_height_is_honoured_and_the_aspect_ignored() -> None:
    g = size_tablet(TabletSpec(diameter_mm=10.0, aspect=5.0), [200.0])
    assert g.dimensions_mm["diameter"] == 10.0
    assert g.height_mm == pytest.approx(200.0 / (math.pi * 25.0), rel=1e-12)
    g = size_tablet(TabletSpec(shape="caplet", height_mm=4.0, caplet_ratio=2.0), [300.0])
    w = g.dimensions_mm["width"]
    assert g.height_mm == 4.0
    assert g.dimensions_mm["length"] == pytest.approx(2.0 * w)
    assert (w * w / 2.0 * 2.0 + math.pi * w * w / 4.0) * 4.0 == pytest.approx(300.0, rel=1e-12)
    g = size_tablet(TabletSpec(shape="oval", length_mm=14.0, width_mm=7.0), [250.0])
    assert (g.dimensions_mm["length"], g.dimensions_mm["width"]) == (14.0, 7.0)
    assert g.height_mm == pytest.approx(250.0 / (math.pi * 7.0 * 3.5), rel=1e-12)


def test_stacked_layers_and_their_exposed_areas() -> None:
    g = size_tablet(TabletSpec(layout="multilayer"), [90.0, 40.0, 120.0])
    r = g.dimensions_mm["diameter"] / 2.0
    area = math.pi * r * r
    heights = g.dimensions_mm["layer_heights"]
    assert heights == pytest.approx([90.0 / area, 40.0 / area, 120.0 / area], rel=1e-12)
    assert g.dimensions_mm["interfaces_z"] == pytest.approx(
        [heights[0], heights[0] + heights[1]], rel=1e-12)
    c0, c1, c2 = g.compartments
    # Bottom and top layers: a face and their side; the middle one only its side.
    assert c0.exposed_area_mm2 == pytest.approx(area + 2 * math.pi * r * heights[0], rel=1e-3)
    assert c1.exposed_area_mm2 == pytest.approx(2 * math.pi * r * heights[1], rel=1e-3)
    assert c2.exposed_area_mm2 == pytest.approx(area + 2 * math.pi * r * heights[2], rel=1e-3)
    assert c1.z_range_mm == pytest.approx((heights[0], heights[0] + heights[1]))


def test_domes_are_carried_by_the_end_layers() -> None:
    g = size_tablet(TabletSpec(layout="bilayer", dome_mm=1.0, aspect=0.7), [200.0, 200.0])
    r = g.dimensions_mm["diameter"] / 2.0
    area = math.pi * r * r
    h0, h1 = g.dimensions_mm["layer_heights"]
    assert area * (h0 + 2.0 / 3.0) == pytest.approx(200.0, rel=1e-12)
    assert h0 == pytest.approx(h1, rel=1e-12)
    assert g.height_mm == pytest.approx(h0 + h1 + 2.0, rel=1e-12)


def test_core_shell_has_equal_walls_by_default() -> None:
    g = size_tablet(TabletSpec(layout="core-shell", aspect=0.8), [60.0, 200.0])
    t = g.dimensions_mm["core_wall_xy"]
    assert g.dimensions_mm["core_wall_z"] == pytest.approx(t)
    r = g.dimensions_mm["diameter"] / 2.0
    assert math.pi * (r - t) ** 2 * (g.height_mm - 2 * t) == pytest.approx(60.0, rel=1e-12)
    core, wall = g.compartments
    assert core.exposed_area_mm2 == 0.0
    assert wall.exposed_area_mm2 == pytest.approx(2 * math.pi * r * (r + g.height_mm),
                                                  rel=1e-3)
    thicker = size_tablet(replace(g.spec, core_wall_ratio=1.5), [60.0, 200.0])
    assert thicker.dimensions_mm["core_wall_z"] == pytest.approx(
        1.5 * thicker.dimensions_mm["core_wall_xy"])


def test_segments_and_rings_split_by_volume() -> None:
    g = size_tablet(TabletSpec(layout="segments"), [100.0, 50.0, 50.0])
    assert g.dimensions_mm["segment_angles_deg"] == pytest.approx([0.0, 180.0, 270.0])
    g = size_tablet(TabletSpec(shape="caplet", layout="segments"), [120.0, 120.0])
    assert g.dimensions_mm["segment_cuts_x"] == pytest.approx([0.0], abs=1e-12)
    g = size_tablet(TabletSpec(layout="rings"), [50.0, 150.0])
    d = g.dimensions_mm["diameter"]
    assert g.dimensions_mm["ring_diameters"] == pytest.approx([d / 2.0], rel=1e-12)
    g = size_tablet(TabletSpec(shape="ring", layout="rings", ring_ratio=0.3), [100.0, 200.0])
    outer, hole = g.dimensions_mm["diameter"] / 2, g.dimensions_mm["inner_diameter"] / 2
    mid = g.dimensions_mm["ring_diameters"][0] / 2
    assert (mid**2 - hole**2) / (outer**2 - mid**2) == pytest.approx(0.5, rel=1e-12)


def test_shell_encloses_the_layout() -> None:
    g = size_tablet(TabletSpec(layout="bilayer", shell_mm=1.0), [100.0, 100.0])
    assert [c.role for c in g.compartments] == ["api", "api", "shell"]
    shell = g.compartments[-1]
    assert shell.index == -1
    assert all(c.exposed_area_mm2 == 0.0 for c in g.api_compartments)
    d, h = g.dimensions_mm["diameter"], g.height_mm
    assert math.pi * (d / 2 - 1) ** 2 * (h - 2) == pytest.approx(200.0, rel=1e-12)
    assert shell.volume_mm3 == pytest.approx(math.pi * d * d / 4 * h - 200.0, rel=1e-12)
    assert shell.exposed_area_mm2 == pytest.approx(math.pi * d * (d / 2 + h), rel=1e-3)


def test_channels_are_subtracted_and_exposed() -> None:
    g = size_tablet(TabletSpec(channels=1, channel_mm=1.2, diameter_mm=10.0), [300.0])
    hole = math.pi * 0.36
    assert (math.pi * 25.0 - hole) * g.height_mm == pytest.approx(300.0, rel=1e-12)
    lateral = 2 * math.pi * 5.0 * g.height_mm + 2 * math.pi * 0.6 * g.height_mm
    assert g.compartments[0].exposed_area_mm2 == pytest.approx(
        2 * (math.pi * 25.0 - hole) + lateral, rel=1e-3)
    g = size_tablet(TabletSpec(shape="caplet", layout="bilayer", channels=2), [150.0, 150.0])
    (x0, y0), (x1, y1) = g.channel_xy_mm
    assert y0 == y1 == 0.0 and x0 == pytest.approx(-x1)


# Limits and their messages


def test_too_long_names_the_limit_and_the_largest_volume() -> None:
    with pytest.raises(InfeasibleDesignError) as err:
        size_tablet(TabletSpec(shape="caplet"), [1500.0])
    text = str(err.value)
    assert "exceeds max_length_mm = 22" in text and "(length)" in text
    assert "largest volumes at these proportions" in text
    assert err.value.exit_code == 2


def test_too_thin_gives_the_smallest_printable_volume() -> None:
    with pytest.raises(InfeasibleDesignError) as err:
        size_tablet(TabletSpec(layout="bilayer", diameter_mm=12.0), [200.0, 10.0])
    text = str(err.value)
    assert "compartment 1 is 0.09 mm thick (layer height), below 3 layers of 0.2 mm" in text
    assert "smallest printable volume of compartment 1" in text
    smallest = float(text.split("with this design is ")[1].split(" mm³")[0])
    assert smallest == pytest.approx(math.pi * 36.0 * 0.6, rel=2e-3)
    size_tablet(TabletSpec(layout="bilayer", diameter_mm=12.0), [200.0, smallest * 1.001])


def test_walls_shell_and_channels_are_held_to_the_minimum_wall() -> None:
    with pytest.raises(InfeasibleDesignError, match=r"wall around the core 0\.83 mm is below "
                                                    r"min_wall_mm 0\.9"):
        size_tablet(TabletSpec(layout="core-shell"), [100.0, 150.0])
    with pytest.raises(InfeasibleDesignError, match=r"shell: shell 0\.50 mm is below "
                                                    r"min_wall_mm 0\.9"):
        size_tablet(TabletSpec(shell_mm=0.5), [200.0])
    with pytest.raises(InfeasibleDesignError, match="would print closed"):
        size_tablet(TabletSpec(channels=1, channel_mm=0.5), [200.0])
    with pytest.raises(InfeasibleDesignError, match=r"channel 0 at .* cuts 0\.33 mm into the "
                                                    r"tablet's outline.*channels 1, 2, 3"):
        size_tablet(TabletSpec(channels=4, channel_spread=0.9, channel_mm=1.5), [200.0])
    with pytest.raises(InfeasibleDesignError, match=r"leaves a 0\.52 mm wall to the tablet's "
                                                    r"outline, below min_wall_mm 0\.9"):
        size_tablet(TabletSpec(channels=4, channel_spread=0.75), [200.0])
    with pytest.raises(InfeasibleDesignError, match="would pass through channel"):
        size_tablet(TabletSpec(layout="rings", channels=2), [60.0, 100.0, 140.0])


def test_limits_are_parameters() -> None:
    spec = TabletSpec(layout="bilayer", diameter_mm=12.0)
    loose = SizeLimits(min_layers=1, first_layer_mm=0.05, layer_mm=0.05)
    assert size_tablet(spec, [200.0, 10.0], loose).compartments[1].volume_mm3 == \
        pytest.approx(10.0)
    with pytest.raises(InfeasibleDesignError, match="max_length_mm = 8"):
        size_tablet(TabletSpec(), [300.0], SizeLimits(max_length_mm=8.0))


def test_fixing_both_sizes_conflicts_unless_they_already_fit() -> None:
    with pytest.raises(InfeasibleDesignError, match="fix the height or the size in XY"):
        size_tablet(TabletSpec(diameter_mm=10.0, height_mm=4.0), [250.0])
    g = size_tablet(TabletSpec(), [250.0])
    again = size_tablet(TabletSpec(diameter_mm=g.dimensions_mm["diameter"],
                                   height_mm=g.height_mm), [250.0])
    assert again.envelope_volume_mm3 == pytest.approx(250.0, rel=1e-9)


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"shape": "hexagon"}, "shape"),
    ({"layout": "stripes"}, "layout"),
    ({"shell_mm": -0.5}, "shell_mm"),
    ({"dome_mm": -1.0}, "dome_mm"),
    ({"shape": "ring", "dome_mm": 1.0}, "dome_mm"),
    ({"shape": "ring", "channels": 1}, "channels"),
    ({"channels": -1}, "channels"),
    ({"aspect": 0.0}, "aspect"),
    ({"caplet_ratio": 0.8}, "caplet_ratio"),
    ({"ring_ratio": 1.2}, "ring_ratio"),
    ({"length_mm": 12.0}, "length_mm"),
    ({"shape": "caplet", "diameter_mm": 10.0}, "diameter_mm"),
    ({"shape": "oval", "length_mm": 6.0, "width_mm": 8.0}, "length_mm"),
    ({"channels": 3, "channel_spread": 1.0}, "channel_spread"),
])
def test_bad_specs_name_the_field(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(InputError) as err:
        TabletSpec(**kwargs)  # type: ignore[arg-type]
    assert any(p.key == key for p in err.value.problems)
    assert err.value.exit_code == 2


def test_wrong_number_of_compartments_or_bad_volumes() -> None:
    with pytest.raises(InputError, match="'bilayer' takes 2 compartments, got 3"):
        size_tablet(TabletSpec(layout="bilayer"), [1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="takes 2 to 4 compartments, got 1"):
        size_tablet(TabletSpec(layout="segments"), [100.0])
    with pytest.raises(InputError, match=r"volumes_mm3\[1\]"):
        size_tablet(TabletSpec(layout="bilayer"), [100.0, -5.0])
    with pytest.raises(InputError, match="min_wall_mm"):
        SizeLimits(min_wall_mm=0.0)


# Whole layers


def test_layer_error_counts_whole_layers_by_mid_height() -> None:
    g = size_tablet(TabletSpec(height_mm=0.95), [50.0])
    # Layers 0–0.2, …, 0.8–1.0: the last one's middle (0.9) is inside, so 1.0 mm prints.
    assert layer_error(g, 0.2, 0.2) == pytest.approx(1.0 / 0.95 - 1.0, rel=1e-9)
    g = size_tablet(TabletSpec(height_mm=1.0), [50.0])
    assert layer_error(g, 0.2, 0.2) == pytest.approx(0.0, abs=1e-12)


def test_snap_to_layers_puts_the_stack_on_layer_boundaries() -> None:
    spec = TabletSpec(layout="bilayer")
    volumes = [150.0, 80.0]
    before = layer_error(size_tablet(spec, volumes), 0.2, 0.2)
    snapped = snap_to_layers(spec, volumes)
    g = size_tablet(snapped, volumes)
    after = layer_error(g, 0.2, 0.2)
    assert after < before and after < 1e-9
    z1 = g.dimensions_mm["interfaces_z"][0]
    assert z1 / 0.2 == pytest.approx(round(z1 / 0.2), abs=1e-9)
    fixed = TabletSpec(diameter_mm=10.0)
    assert snap_to_layers(fixed, [200.0]) is fixed
