"""Input a user can write that Python itself would choke on: numbers far out of range,
whole numbers too long to print, nesting deeper than the parsers recurse, ids that carry
a line break. Each is refused by the reader as an :class:`InputError` naming the file and
the key (exit 2), quickly, in prescriptions, formulations and printer profiles alike."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doseprint.errors import InputError
from doseprint.library import shipped_dir
from doseprint.models.load import (
    MAX_DEPTH,
    load_formulation,
    load_prescription,
    load_printer,
)

from .rxfiles import base_rx, edited, toml_dumps

FORMULATIONS = shipped_dir("formulations")
PRINTERS = shipped_dir("printer_profiles")
FORMULATION = "theophylline-hpc-30"
PRINTER = "generic-marlin-1x175"

SECONDS = 5.0
"""The spec's "never more than a few seconds", generously: a refusal takes milliseconds."""


@pytest.fixture(autouse=True)
def _no_site_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS"):
        monkeypatch.delenv(name, raising=False)
    yield


def shipped(folder: Path, name: str) -> dict[str, Any]:
    with open(folder / f"{name}.toml", "rb") as fh:
        return tomllib.load(fh)


Loader = Callable[[Path], object]


def load_rx(path: Path) -> object:
    return load_prescription(path)


def load_f(path: Path) -> object:
    return load_formulation(path)


def load_p(path: Path) -> object:
    return load_printer(path, template_roots=(PRINTERS / "templates",))


KINDS: dict[str, tuple[Callable[[], dict[str, Any]], str, Loader]] = {
    "prescription": (base_rx, "rx", load_rx),
    "formulation": (lambda: shipped(FORMULATIONS, FORMULATION), FORMULATION, load_f),
    "printer": (lambda: shipped(PRINTERS, PRINTER), PRINTER, load_p),
}


def refused(load: Loader, path: Path) -> InputError:
    """The reader's refusal of ``path``: an InputError naming the file, in seconds."""
    start = time.perf_counter()
    with pytest.raises(InputError) as caught:
        load(path)
    assert time.perf_counter() - start < SECONDS
    exc = caught.value
    assert exc.exit_code == 2
    assert all(p.file == str(path) for p in exc.problems), str(exc)
    return exc


def keys(exc: InputError) -> list[str]:
    return [p.key for p in exc.problems]


def write(folder: Path, stem: str, fmt: str, data: dict[str, Any], first_line: str = "") -> Path:
    """``data`` as TOML or JSON, with ``first_line`` (a raw ``key = value`` / ``"key":
    value`` text) put before the first key."""
    path = folder / f"{stem}.{fmt}"
    if fmt == "toml":
        text = (first_line + "\n" if first_line else "") + toml_dumps(data)
    else:
        body = json.dumps(data, indent=1)
        text = "{" + (first_line + "," if first_line else "") + body[1:]
    path.write_text(text, encoding="utf-8")
    return path


# Numbers far out of range ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["toml", "json"])
@pytest.mark.parametrize("t80_h", [1e308, 1e12, 1e6, 169.0])
def test_release_time_beyond_a_week_is_refused(tmp_path: Path, t80_h: float, fmt: str) -> None:
    # 1e308 overflowed, 1e12 allocated a release curve of terabytes, 1e6 ran for minutes.
    rx = write(tmp_path, "rx", fmt, edited(base_rx(), [(("actives", 0, "t80_h"), t80_h)]))
    exc = refused(load_rx, rx)
    assert keys(exc) == ["actives[0].t80_h"]
    assert "at most 168" in str(exc)


def test_a_week_itself_is_read(tmp_path: Path) -> None:
    rx = write(tmp_path, "rx", "toml", edited(base_rx(), [(("actives", 0, "t80_h"), 168)]))
    assert load_prescription(rx).actives[0].t80_h == 168.0


PRESCRIPTION_NUMBERS = [
    (("actives", 0, "dose_mg"), 1e300, "actives[0].dose_mg"),
    (("actives", 0, "dose_mg"), 2000.5, "actives[0].dose_mg"),
    (("dispense", "schedule"), [{"api": "theophylline", "doses_mg": [100, 1e300, 100]}],
     "dispense.schedule[0].doses_mg[1]"),
    (("tablet",), {"diameter_mm": 1e-300}, "tablet.diameter_mm"),
    (("tablet",), {"height_mm": 1e300}, "tablet.height_mm"),
    # a channel of 1e-300 mm divided by zero in the geometry (exit 70)
    (("tablet",), {"channels": 2, "channel_mm": 1e-300}, "tablet.channel_mm"),
    (("tablet",), {"shell": "pva-fast", "shell_mm": 1e-300}, "tablet.shell_mm"),
    (("dispense", "units"), 10**18, "dispense.units"),
    (("dispense", "units"), 1e300, "dispense.units"),
]


@pytest.mark.parametrize(("path", "value", "key"), PRESCRIPTION_NUMBERS,
                         ids=[f"{k}={v!r:.12}" for _, v, k in PRESCRIPTION_NUMBERS])
def test_prescription_numbers_out_of_range(
    tmp_path: Path, path: tuple[Any, ...], value: Any, key: str
) -> None:
    rx = write(tmp_path, "rx", "toml", edited(base_rx(), [(path, value)]))
    exc = refused(load_rx, rx)
    assert keys(exc) == [key]
    assert "must be" in str(exc)


def test_profile_hours_beyond_a_week_are_refused(tmp_path: Path) -> None:
    data = edited(base_rx(), [(("actives", 0, "release"), "profile"),
                              (("actives", 0, "profile"), [[0.5, 0.1], [2, 0.4], [1e300, 0.9]])])
    del data["actives"][0]["t80_h"]
    exc = refused(load_rx, write(tmp_path, "rx", "toml", data))
    assert keys(exc) == ["actives[0].profile[2][0]"]


def test_too_many_actives_and_points_are_refused(tmp_path: Path) -> None:
    actives = [{"api": f"api-{i}", "dose_mg": 10.0, "release": "immediate"} for i in range(5)]
    exc = refused(load_rx, write(tmp_path, "rx", "toml",
                                 edited(base_rx(), [(("actives",), actives)])))
    assert keys(exc) == ["actives"] and "at most 4" in str(exc)
    points = [[0.1 * (i + 1), 0.01 * i] for i in range(51)]
    data = edited(base_rx(), [(("actives", 0, "release"), "profile"),
                              (("actives", 0, "profile"), points)])
    del data["actives"][0]["t80_h"]
    exc = refused(load_rx, write(tmp_path, "rx2", "toml", data))
    assert keys(exc) == ["actives[0].profile"] and "at most 50" in str(exc)


FORMULATION_NUMBERS = ["max_dose_mg", "erosion_rate_mm_h", "density_g_cm3",
                       "diffusivity_mm2_s", "filament_diameter_mm", "nozzle_temp_c"]


@pytest.mark.parametrize("key", FORMULATION_NUMBERS)
def test_formulation_numbers_out_of_range(tmp_path: Path, key: str) -> None:
    data = shipped(FORMULATIONS, FORMULATION)
    data[key] = 1e300
    exc = refused(load_f, write(tmp_path, FORMULATION, "toml", data))
    assert key in keys(exc)
    assert "must be" in str(exc)


PRINTER_NUMBERS = ["max_z_mm", "nozzle_diameter_mm", "extruders", "filament_diameter_mm",
                   "max_nozzle_temp_c", "max_bed_temp_c", "layer_height_mm",
                   "first_layer_height_mm", "min_layer_height_mm", "max_layer_height_mm",
                   "print_speed_mm_s", "travel_speed_mm_s", "retract_mm", "baud",
                   "rx_buffer_lines", "gantry_clearance_mm", "purge_volume_mm3",
                   "standby_delta_c", "tool_change_retract_mm", "perimeters",
                   "acceleration_mm_s2", "square_corner_velocity_mm_s", "max_z_speed_mm_s",
                   "max_z_acceleration_mm_s2", "max_extrude_only_speed_mm_s",
                   "max_extrude_only_acceleration_mm_s2", "min_extrude_temp_c"]


@pytest.mark.parametrize("value", [1e300, 5e-324])
@pytest.mark.parametrize("key", PRINTER_NUMBERS)
def test_printer_numbers_out_of_range(tmp_path: Path, key: str, value: float) -> None:
    # 1e300 of a speed, an acceleration or the baud rate; a layer or a speed of the
    # smallest float would slice or plan for ever.
    data = shipped(PRINTERS, PRINTER)
    data[key] = value
    path = write(tmp_path, PRINTER, "toml", data)
    if value < 1.0 and key in ("retract_mm", "max_bed_temp_c", "purge_volume_mm3",
                               "standby_delta_c", "tool_change_retract_mm",
                               "square_corner_velocity_mm_s", "min_extrude_temp_c",
                               "max_nozzle_temp_c"):
        # Keys that may be 0 (or are bounded by another key) take a tiny value too, or
        # refuse it for its clash with another key.
        try:
            load_p(path)
        except InputError as exc:
            assert key in str(exc)
        return
    exc = refused(load_p, path)
    assert key in keys(exc)


def test_every_printer_number_is_tested() -> None:
    data = shipped(PRINTERS, "generic-marlin-2x175")
    numbers = {k for k, v in data.items() if isinstance(v, int | float)
               and not isinstance(v, bool)}
    assert numbers <= set(PRINTER_NUMBERS)


# Whole numbers too long for Python to print ------------------------------------------


@pytest.mark.parametrize("fmt", ["toml", "json"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_5000_digit_number_is_refused(tmp_path: Path, kind: str, fmt: str) -> None:
    make, stem, load = KINDS[kind]
    line = ("big = " if fmt == "toml" else '"big": ') + "9" * 5000
    exc = refused(load, write(tmp_path, stem, fmt, make(), line))
    assert "4300 digits" in str(exc)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_long_hexadecimal_number_is_refused_naming_its_key(tmp_path: Path, kind: str) -> None:
    # TOML reads hexadecimal of any length; printing it in a message would fail.
    make, stem, load = KINDS[kind]
    exc = refused(load, write(tmp_path, stem, "toml", make(), "big = 0x" + "f" * 5000))
    assert keys(exc) == ["big"]
    assert "too large" in str(exc)


def test_a_long_number_in_a_known_key_names_the_key(tmp_path: Path) -> None:
    text = toml_dumps(base_rx()).replace('"units" = 3', '"units" = 0x' + "f" * 5000)
    path = tmp_path / "rx.toml"
    path.write_text(text)
    exc = refused(load_rx, path)
    assert keys(exc) == ["dispense.units"]


# Nesting deeper than the parsers recurse ----------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 50, 100_000])
@pytest.mark.parametrize("fmt", ["toml", "json"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_deep_nesting_is_refused(tmp_path: Path, kind: str, fmt: str, depth: int) -> None:
    make, stem, load = KINDS[kind]
    line = ("deep = " if fmt == "toml" else '"deep": ') + "[" * depth + "]" * depth
    exc = refused(load, write(tmp_path, stem, fmt, make(), line))
    assert "too deeply" in str(exc)


def test_deep_inline_tables_are_refused(tmp_path: Path) -> None:
    depth = 100_000
    line = "deep = " + "{a = " * depth + "1" + "}" * depth
    exc = refused(load_rx, write(tmp_path, "rx", "toml", base_rx(), line))
    assert "too deeply" in str(exc)


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "rx.toml"
    path.write_text(toml_dumps(base_rx()) + "# " + "x" * 2_000_000 + "\n")
    exc = refused(load_rx, path)
    assert "longer than 1048576 bytes" in str(exc)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero here")
def test_a_file_that_never_ends_is_refused(tmp_path: Path) -> None:
    # A symbolic link to a device that never ends, read whole, filled the memory.
    path = tmp_path / "rx.toml"
    path.symlink_to("/dev/zero")
    exc = refused(load_rx, path)
    assert "longer than 1048576 bytes" in str(exc)


def test_a_long_list_is_refused_once(tmp_path: Path) -> None:
    doses = [-1.0] * 20_000
    data = edited(base_rx(), [(("dispense", "schedule"),
                               [{"api": "theophylline", "doses_mg": doses}])])
    exc = refused(load_rx, write(tmp_path, "rx", "json", data))
    assert keys(exc) == ["dispense.schedule[0].doses_mg"]
    assert "at most 1000" in str(exc)


def test_many_problems_are_counted_not_listed(tmp_path: Path) -> None:
    data = base_rx()
    for i in range(500):
        data[f"typo{i}"] = 1
    exc = refused(load_rx, write(tmp_path, "rx", "toml", data))
    assert len(exc.problems) == 51
    assert "and 450 more problems" in str(exc)


# Identifiers matched whole: no line break, no control character ----------------------

BREAKS = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d",
          "\x1e", "\x00", "\x1b[2J", "\ud800"]


# TOML cannot hold a lone surrogate: that one is tried in JSON only.
FORMAT_BREAKS = [pytest.param(fmt, tail, id=f"{fmt}-{tail!r}")
                 for fmt in ("toml", "json") for tail in BREAKS
                 if not (fmt == "toml" and tail == "\ud800")]


@pytest.mark.parametrize("key", ["id", "patient"])
@pytest.mark.parametrize(("fmt", "tail"), FORMAT_BREAKS)
def test_a_reference_with_a_line_break_is_refused(
    tmp_path: Path, key: str, tail: str, fmt: str
) -> None:
    value = ("RX-1" if key == "id" else "PT-7F3A") + tail
    exc = refused(load_rx, write(tmp_path, "rx", fmt, edited(base_rx(), [((key,), value)])))
    assert keys(exc) == [key]
    assert "\n" not in exc.problems[0].message  # the message shows it escaped


def test_a_trailing_line_feed_no_longer_passes_the_reference_check(tmp_path: Path) -> None:
    # re.match with "$" accepted "RX-1\n"; the G-code header comment then ended after
    # the id and the rest of the line (" sha256 …") was streamed to the printer.
    exc = refused(load_rx, write(tmp_path, "rx", "toml",
                                 edited(base_rx(), [(("id",), "RX-1\n")])))
    assert keys(exc) == ["id"]
    assert "U+000A" in str(exc)


@pytest.mark.parametrize("tail", ["\n", "\u2028", "\x85", "\r"], ids=repr)
@pytest.mark.parametrize("kind", ["formulation", "printer"])
def test_a_library_id_with_a_line_break_is_refused(tmp_path: Path, kind: str, tail: str) -> None:
    # The file is named after the id (a file name may hold a line break), so that only
    # the id's own check stands between it and the G-code header.
    make, stem, load = KINDS[kind]
    data = make()
    data["id"] = stem + tail
    exc = refused(load, write(tmp_path, stem + tail, "toml", data))
    assert keys(exc) == ["id"]


@pytest.mark.parametrize(("kind", "key"), [
    ("prescription", "prescriber"), ("prescription", "note"),
    ("formulation", "name"), ("formulation", "api"), ("printer", "name"),
    ("printer", "templates"),
])
def test_strings_with_control_characters_are_refused(
    tmp_path: Path, kind: str, key: str
) -> None:
    make, stem, load = KINDS[kind]
    data = make()
    data[key] = "abc\x1b]0;owned\x07"
    exc = refused(load, write(tmp_path, stem, "toml", data))
    assert key in keys(exc)


def test_a_note_may_have_line_breaks(tmp_path: Path) -> None:
    note = "Swallowing difficulty:\n\tkeep the tablet small"
    rx = write(tmp_path, "rx", "toml", edited(base_rx(), [(("note",), note)]))
    assert load_prescription(rx).note == note


def test_a_pinned_formulation_and_a_shell_are_ids(tmp_path: Path) -> None:
    data = edited(base_rx(), [(("actives", 0, "formulation"), "theophylline-hpc-30\n"),
                              (("tablet",), {"shell": "pva-fast\u2028"})])
    exc = refused(load_rx, write(tmp_path, "rx", "toml", data))
    assert sorted(keys(exc)) == ["actives[0].formulation", "tablet.shell"]


def test_long_strings_are_refused(tmp_path: Path) -> None:
    data = edited(base_rx(), [(("prescriber",), "x" * 201), (("note",), "y" * 2001)])
    exc = refused(load_rx, write(tmp_path, "rx", "toml", data))
    assert sorted(keys(exc)) == ["note", "prescriber"]
    assert "at most 200" in str(exc) and "at most 2000" in str(exc)


def test_an_unknown_key_with_a_line_break_is_named_escaped(tmp_path: Path) -> None:
    data = base_rx()
    data["typo\nG28"] = 1
    exc = refused(load_rx, write(tmp_path, "rx", "toml", data))
    assert keys(exc) == ["'typo\\nG28'"]
    assert "\n" not in str(exc)
