"""Files a user can write that used to crash or hang ``doseprint compile``: each now exits 2
within seconds, names the file and the key, shows no traceback and writes nothing.

Before: ``t80_h = 1e308`` raised OverflowError, ``1e12`` tried to allocate terabytes,
``1e6`` ran for minutes; deep nesting raised RecursionError, a 5000-digit integer
ValueError and a channel of 1e-300 mm ZeroDivisionError (exit 70, "internal error");
``id = "RX-1\\n"`` was compiled, and the rest of the G-code header comment after the id
reached the printer as a command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doseprint.library import shipped_dir
from helpers.cli import run_cli as run
from models.rxfiles import base_rx, edited, toml_dumps, write_rx
from models.test_fuzz_inputs import PRESCRIPTIONS as PRESCRIPTIONS_SHIPPED
from models.test_fuzz_inputs import RAW_LINES, mutated, write_doc

PRINTER = "generic-marlin-1x175"
FORMULATION = "theophylline-hpc-30"
SECONDS = 10.0
"""A refusal of bad input is quick (the readers refuse before any design work)."""


@pytest.fixture(autouse=True)
def _no_site_folders(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS"):
        monkeypatch.delenv(name, raising=False)
    yield


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def rx_text(fmt: str, data: dict[str, Any], first: str = "") -> str:
    """A prescription as TOML or JSON with a raw ``key = value`` first."""
    if fmt == "toml":
        return (first + "\n" if first else "") + toml_dumps(data)
    body = json.dumps(data)
    if first:
        key, value = first.split(" = ", 1)
        body = "{" + json.dumps(key) + ": " + value + ", " + body[1:]
    return body


def t80(value: float) -> dict[str, Any]:
    return edited(base_rx(), [(("actives", 0, "t80_h"), value), (("dispense", "units"), 1)])


# name: (file name, text, what stderr must name)
PRESCRIPTIONS: dict[str, tuple[str, str, str]] = {
    "t80-1e308": ("rx.toml", rx_text("toml", t80(1e308)), "actives[0].t80_h: "),
    "t80-1e12": ("rx.toml", rx_text("toml", t80(1e12)), "actives[0].t80_h: "),
    "t80-1e6": ("rx.toml", rx_text("toml", t80(1e6)), "actives[0].t80_h: "),
    "t80-1e6-json": ("rx.json", rx_text("json", t80(1e6)), "actives[0].t80_h: "),
    "dose-1e300": ("rx.toml", rx_text("toml", edited(base_rx(), [
        (("actives", 0, "dose_mg"), 1e300)])), "actives[0].dose_mg: "),
    "channel-1e-300": ("rx.toml", rx_text("toml", edited(base_rx(), [
        (("tablet",), {"channels": 2, "channel_mm": 1e-300})])), "tablet.channel_mm: "),
    "deep-toml": ("rx.toml", rx_text("toml", base_rx(), "note = " + deep(100_000)),
                  "too deeply"),
    "deep-json": ("rx.json", rx_text("json", base_rx(), "note = " + deep(100_000)),
                  "too deeply"),
    "deep-json-50": ("rx.json", rx_text("json", base_rx(), "note = " + deep(50)), "note"),
    "digits-toml": ("rx.toml", rx_text("toml", base_rx(), "note = " + "9" * 5000),
                    "4300 digits"),
    "digits-json": ("rx.json", rx_text("json", base_rx(), "note = " + "9" * 5000),
                    "4300 digits"),
    "hex-units": ("rx.toml", toml_dumps(base_rx()).replace('"units" = 3',
                                                           '"units" = 0x' + "f" * 5000),
                  "dispense.units: "),
    "id-newline": ("rx.toml", rx_text("toml", edited(base_rx(), [(("id",), "RX-1\n")])),
                   "id: "),
    "id-newline-json": ("rx.json", rx_text("json", edited(base_rx(), [(("id",), "RX-1\n")])),
                        "id: "),
    "id-line-separator": ("rx.toml", rx_text("toml", edited(base_rx(), [
        (("id",), "RX-1\u2028G28")])), "id: "),
    "patient-newline": ("rx.toml", rx_text("toml", edited(base_rx(), [
        (("patient",), "PT-7F3A\n")])), "patient: "),
}


def assert_refused(code: int, out: str, err: str, says: str, folder: Path,
                   inputs: list[str]) -> None:
    """Exit 2, ``says`` on stderr, no traceback, nothing in ``folder`` but the inputs."""
    assert code == 2, err
    assert says in err
    assert "nothing was written" in err
    assert "Traceback" not in out + err and "internal error" not in err
    assert sorted(p.name for p in folder.iterdir()) == sorted(inputs)


@pytest.mark.parametrize("name", list(PRESCRIPTIONS))
def test_attack_prescription_exits_2_quickly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    file, text, says = PRESCRIPTIONS[name]
    rx = tmp_path / file
    rx.write_text(text, encoding="utf-8")
    start = time.perf_counter()
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out", tmp_path / "job")
    assert time.perf_counter() - start < SECONDS
    assert_refused(code, out, err, says, tmp_path, [file])
    assert str(rx) in err


def shipped_toml(kind: str, name: str) -> str:
    return (shipped_dir(kind) / f"{name}.toml").read_text(encoding="utf-8")


def set_key(text: str, key: str, value: str) -> str:
    changed, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    assert n == 1, key
    return changed


FORMULATION_EDITS = {
    "max-dose-1e300": (lambda t: set_key(t, "max_dose_mg", "1e300"), "max_dose_mg: "),
    "erosion-1e300": (lambda t: set_key(t, "erosion_rate_mm_h", "1e300"), "erosion_rate_mm_h: "),
    "deep": (lambda t: "deep = " + deep(100_000) + "\n" + t, "too deeply"),
    "digits": (lambda t: "big = " + "9" * 5000 + "\n" + t, "4300 digits"),
}


@pytest.mark.parametrize("name", list(FORMULATION_EDITS))
def test_attack_site_formulation_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    rx = write_rx(tmp_path, edited(base_rx(), [(("dispense", "units"), 1)]))
    site = tmp_path / "site"
    site.mkdir()
    change, says = FORMULATION_EDITS[name]
    (site / f"{FORMULATION}.toml").write_text(change(shipped_toml("formulations",
                                                                  FORMULATION)))
    code, out, err = run(capsys, "compile", rx, "--printer", PRINTER, "--out",
                         tmp_path / "job", "--formulations", site)
    assert_refused(code, out, err, says, tmp_path, [rx.name, "site"])


def site_printer(text: str) -> str:
    return text.replace(f'id = "{PRINTER}"', 'id = "site-printer"')


PRINTER_EDITS = {
    "baud-1e300": (lambda t: set_key(t, "baud", "1e300"), "baud: "),
    "acceleration-1e300": (lambda t: set_key(t, "acceleration_mm_s2", "1e300"),
                           "acceleration_mm_s2: "),
    "speed-tiny": (lambda t: set_key(t, "print_speed_mm_s", "5e-324"), "print_speed_mm_s: "),
    "layer-tiny": (lambda t: set_key(t, "min_layer_height_mm", "1e-300"),
                   "min_layer_height_mm: "),
    "deep": (lambda t: "deep = " + deep(100_000) + "\n" + t, "too deeply"),
    "digits": (lambda t: "big = " + "9" * 5000 + "\n" + t, "4300 digits"),
}


@pytest.mark.parametrize("name", list(PRINTER_EDITS))
def test_attack_site_printer_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    rx = write_rx(tmp_path, edited(base_rx(), [(("dispense", "units"), 1)]))
    site = tmp_path / "printers"
    site.mkdir()
    change, says = PRINTER_EDITS[name]
    (site / "site-printer.toml").write_text(change(site_printer(shipped_toml(
        "printer_profiles", PRINTER))))
    code, out, err = run(capsys, "compile", rx, "--printer", "site-printer", "--out",
                         tmp_path / "job", "--printers", site)
    assert_refused(code, out, err, says, tmp_path, [rx.name, "printers"])


def test_a_printer_id_with_a_line_feed_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The file is named after the id, so the id check alone stands between the line
    # feed and the start template's "; start: <id> …" comment.
    rx = write_rx(tmp_path, edited(base_rx(), [(("dispense", "units"), 1)]))
    site = tmp_path / "printers"
    site.mkdir()
    # A trailing line feed passed re.match(r"^…$").
    text = shipped_toml("printer_profiles", PRINTER).replace(f'id = "{PRINTER}"',
                                                             'id = "site-printer\\n"')
    (site / "site-printer\n.toml").write_text(text)
    code, out, err = run(capsys, "compile", rx, "--printer", "site-printer\n", "--out",
                         tmp_path / "job", "--printers", site)
    assert_refused(code, out, err, "id: ", tmp_path, [rx.name, "printers"])


@pytest.mark.parametrize("name", ["deep-json", "digits-toml", "id-newline"])
def test_attack_prescription_exits_2_as_a_process(tmp_path: Path, name: str) -> None:
    file, text, says = PRESCRIPTIONS[name]
    (tmp_path / file).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS")}
    done = subprocess.run([sys.executable, "-m", "doseprint", "compile", file, "--printer",
                           PRINTER, "--out", "job"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert_refused(done.returncode, done.stdout, done.stderr, says, tmp_path, [file])


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=mutated(PRESCRIPTIONS_SHIPPED), fmt=st.sampled_from(["toml", "json"]),
       raw=st.sampled_from(RAW_LINES[1:]))
def test_fuzzed_prescriptions_exit_2_and_write_nothing(
    capsys: pytest.CaptureFixture[str], doc: dict[str, Any], fmt: str, raw: str
) -> None:
    # A mutated prescription with one of the raw attack lines on top: always refused.
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        rx = write_doc(folder, "rx", doc, fmt, raw)
        start = time.perf_counter()
        code, out, err = run(capsys, "compile", rx, "--printer", PRINTER,
                             "--out", folder / "job")
        assert time.perf_counter() - start < SECONDS
        assert_refused(code, out, err, str(rx), folder, [rx.name])
