"""Sealing a test's own edit of a job folder with the test run's site key.

The seal stops anyone without the site key from changing a job; the checks beneath it
(hashes, the G-code's header, the dose read from the moves) must still hold against a
change made with the key, so the tests of those re-seal what they edit.
"""

from __future__ import annotations

from pathlib import Path

from doseprint.job.keys import load_site_key
from doseprint.job.seal import SEAL_FILE, make_seal


def reseal(job: Path) -> None:
    """Seal ``job``'s job.json again, as it is now, with the site key."""
    (job / SEAL_FILE).write_bytes(make_seal((job / "job.json").read_bytes(), load_site_key()))
