"""Golden G-code: a canonical tablet compiled to the same text every time.

A change to the slicer or the templates shows here as a unified diff. When the change is
intended, run ``pytest tests/pipeline/test_golden.py --update-golden`` and review the
diff of tests/golden/ in the commit.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from conftest import ROOT
from doseprint.compile import compile_prescription

RX = ROOT / "tests" / "data" / "golden-rx.toml"
GOLDEN = ROOT / "tests" / "golden" / "hctz-12.5mg.gcode"


def test_golden_gcode(update_golden: bool) -> None:
    text = compile_prescription(RX, "generic-marlin-1x175").program.text
    if update_golden:
        GOLDEN.write_text(text)
    expected = GOLDEN.read_text()
    if text != expected:
        diff = "".join(list(difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True),
            "golden", "now", n=2))[:80])
        raise AssertionError(f"G-code differs from {GOLDEN.name}:\n{diff}")


def test_compile_is_deterministic() -> None:
    first = compile_prescription(RX, "generic-marlin-1x175")
    second = compile_prescription(RX, "generic-marlin-1x175")
    assert first.program.text == second.program.text
    assert first.job["tablets"] == second.job["tablets"]


def test_golden_file_is_small_enough_to_review() -> None:
    assert Path(GOLDEN).stat().st_size < 400_000
