"""Session fixtures of the peer tests.

* ``klipper_host``: Klipper's host copied, probed and built once per session
  (:class:`peers.klipper.KlipperHost`).
* ``example_jobs``: every shipped example compiled once per session for each Klipper
  profile it fits (:data:`KLIPPER_JOBS`) and planned by klippy; compiles and klippy runs go
  two at a time in the background, so a test waits only for its own job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES
from doseprint.library import load_library
from doseprint.models.printer import PrinterProfile

from . import klipper_source, peer_python
from .klipper import KlipperHost, KlipperRun

ONE_TOOL, TWO_TOOLS = "generic-klipper-1x175", "generic-klipper-2x175"


def _actives(rx: Path) -> int:
    text = rx.read_text(encoding="utf-8")
    data = json.loads(text) if rx.suffix == ".json" else tomllib.loads(text)
    return len(data["actives"])


EXAMPLE_FILES = {rx.stem: rx for rx in sorted(EXAMPLES.glob("*.toml"))
                 + sorted(EXAMPLES.glob("*.json"))}

KLIPPER_JOBS: list[tuple[str, str]] = [
    (name, profile) for name, rx in EXAMPLE_FILES.items()
    for profile in ((ONE_TOOL, TWO_TOOLS) if _actives(rx) == 1 else (TWO_TOOLS,))]
"""(example, Klipper profile): single-API examples on both Klipper profiles, two-API
examples on the two-extruder one."""


@dataclass(frozen=True)
class PlannedJob:
    """An example compiled by ``doseprint compile`` and planned by klippy."""

    folder: Path
    job: dict[str, Any]
    profile: PrinterProfile
    run: KlipperRun


class ExampleJobs:
    """Compiles each example (a child ``doseprint compile``, no calibrations) and plans it
    in klippy, two at a time, starting them all at once."""

    def __init__(self, host: KlipperHost, workdir: Path) -> None:
        self.host = host
        self.workdir = workdir
        self.library = load_library()
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="example-job")
        self.futures: dict[tuple[str, str], Future[PlannedJob]] = {}

    def start(self, first: tuple[str, str] | None = None) -> None:
        """Queue every job not queued yet, ``first`` ahead of the others (the rest are
        dropped at the end of the session if no test asked for them)."""
        for key in ([first] if first else []) + KLIPPER_JOBS:
            if key not in self.futures:
                self.futures[key] = self.pool.submit(self._compile_and_plan, *key)

    def get(self, example: str, profile_id: str) -> PlannedJob:
        self.start(first=(example, profile_id))
        return self.futures[(example, profile_id)].result()

    def _compile_and_plan(self, example: str, profile_id: str) -> PlannedJob:
        out = self.workdir / f"{example}--{profile_id}"
        env = {k: v for k, v in os.environ.items()
               if k not in ("DOSEPRINT_FORMULATIONS", "DOSEPRINT_PRINTERS",
                            "DOSEPRINT_CALIBRATIONS")}
        done = subprocess.run(
            [sys.executable, "-m", "doseprint", "compile", str(EXAMPLE_FILES[example]),
             "--printer", profile_id, "--out", str(out),
             "--calibrations", str(self.workdir / "no-calibrations.json")],
            capture_output=True, text=True, env=env, check=False, timeout=900)
        if done.returncode != 0:
            raise AssertionError(f"compile {example} for {profile_id} exited "
                                 f"{done.returncode}:\n{done.stderr[-3000:]}")
        profile = self.library.printer(profile_id)
        job = json.loads((out / "job.json").read_text(encoding="utf-8"))
        return PlannedJob(out, job, profile, self.host.run(out / "job.gcode", profile))


@pytest.fixture(scope="session")
def klipper_host(tmp_path_factory: pytest.TempPathFactory) -> KlipperHost:
    """Klipper's host, ready to run (its C helper built by a first, empty run)."""
    host = KlipperHost(klipper_source(), peer_python(), tmp_path_factory.mktemp("klipper"))
    built = host.build(load_library().printer(TWO_TOOLS))
    assert built.ok and built.returncode == 0, built.summary() + "\n" + built.log[-3000:]
    return host


@pytest.fixture(scope="session")
def example_jobs(
    klipper_host: KlipperHost, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ExampleJobs]:
    jobs = ExampleJobs(klipper_host, tmp_path_factory.mktemp("examples-on-klipper"))
    yield jobs
    jobs.pool.shutdown(wait=True, cancel_futures=True)
