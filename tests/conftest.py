"""Shared fixtures: repository paths, hypothesis profiles (``ci`` is derandomised) and a
site key of the test run's own."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The run's own site key and trusted-keys folder, set before anything compiles: no test
# reads or writes the user's real keys, and a child `python -m doseprint` inherits them.
_KEYS = Path(tempfile.mkdtemp(prefix="doseprint-test-keys-"))
atexit.register(shutil.rmtree, _KEYS, ignore_errors=True)
os.environ["DOSEPRINT_KEY"] = str(_KEYS / "site-key.pem")
os.environ["DOSEPRINT_TRUSTED_KEYS"] = str(_KEYS / "trusted-keys")

from doseprint.compile import compile_prescription, write_job  # noqa: E402
from doseprint.job.keys import create_site_key  # noqa: E402

create_site_key(site="Test Pharmacy")

# Passwords are hashed with Argon2id at the library's recommended cost (64 MiB, 3 passes:
# about 0.2 s each), which is the point in a pharmacy and a waste in a test suite that
# signs in a few thousand times: the run hashes cheaply. One test checks the real cost
# (tests/records/test_people.py).
from argon2 import PasswordHasher  # noqa: E402

import doseprint.records.people as _people  # noqa: E402

_people._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
TEST_KEY = _KEYS / "site-key.pem"
"""The run's site key (``DOSEPRINT_KEY``): every job the tests compile is sealed by it."""

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TWO_DRUG_RX = EXAMPLES / "polypill-theophylline-hctz.toml"
"""The two-drug example: theophylline + hydrochlorothiazide on two extruders."""

settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="Rewrite tests/golden/* from the current code (review the diff).")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(scope="session")
def two_drug_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two-drug example compiled once per test run for the two-extruder Marlin
    profile, as a written job folder (read it, do not change it)."""
    out = tmp_path_factory.mktemp("two-drug") / "job"
    write_job(compile_prescription(TWO_DRUG_RX, "generic-marlin-2x175"), out)
    return out


@pytest.fixture(scope="session")
def one_tablet_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-tablet theophylline prescription (``RX-TEST-1``) compiled once per test run
    for the one-extruder Marlin profile, as a written job folder (read it, do not change
    it)."""
    from helpers.rx import write_rx

    folder = tmp_path_factory.mktemp("one-tablet")
    out = folder / "job"
    write_job(compile_prescription(write_rx(folder, units=1), "generic-marlin-1x175"), out)
    return out
