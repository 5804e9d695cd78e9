"""One two-drug job compiled once for the report tests (theophylline + hydrochlorothiazide
on two extruders, two tablets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import EXAMPLES
from doseprint.compile import compile_prescription, write_job

TWO_DRUG_RX = EXAMPLES / "polypill-theophylline-hctz.toml"


@pytest.fixture(scope="session")
def two_drug_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A written job folder of the two-drug example."""
    out = tmp_path_factory.mktemp("report") / "job"
    write_job(compile_prescription(TWO_DRUG_RX, "generic-marlin-2x175"), out)
    return out
