"""The print-time estimate against Klipper's own planner (klippy in batch mode).

job.json's ``gcode.estimated_motion_s`` comes from :mod:`doseprint.gcode.motion`;
Klipper's figure is its planner's clock at the end of the file less the batch-mode homing
(no endstop triggers there, so ``G28`` is a figure of the test set-up): every move,
dwell and stop as a Klipper printer with the profile's limits plans them. Issue's aim:
within 3 % on every shipped example; the estimate a constant-speed sum gives is shown to
miss by more, so the comparison can fail.
"""

from __future__ import annotations

import pytest

from doseprint.gcode.motion import motion_limits, plan_commands
from doseprint.gcode.tokens import split_commands

from .conftest import KLIPPER_JOBS, ExampleJobs

# One worker plans every example in klippy once per run (the session fixture).
pytestmark = pytest.mark.xdist_group("klipper")

WITHIN = 0.03
"""Agreement asked of the estimate: 3 % of Klipper's planned time."""


@pytest.mark.parametrize(("example", "profile_id"), KLIPPER_JOBS,
                         ids=[f"{e}-{p}" for e, p in KLIPPER_JOBS])
def test_motion_estimate_is_within_3_percent_of_klippers_plan(
    example_jobs: ExampleJobs, example: str, profile_id: str,
) -> None:
    planned = example_jobs.get(example, profile_id)
    klipper = planned.run.job_time_s
    assert klipper is not None, planned.run.summary()
    ours = planned.job["gcode"]["estimated_motion_s"]
    assert ours == pytest.approx(klipper, rel=WITHIN), (example, ours, klipper)
    # The estimate of the whole job adds heating and tool-change allowances only.
    assert planned.job["gcode"]["estimated_print_s"] >= ours


def test_a_constant_speed_estimate_misses_klippers_plan(example_jobs: ExampleJobs) -> None:
    # The old estimate (distance / feed rate) on the same file: more than 3 % short, so
    # the comparison above is not one any estimate would pass.
    planned = example_jobs.get(*KLIPPER_JOBS[0])
    text = (planned.folder / "job.gcode").read_text(encoding="utf-8")
    cruising = 0.0
    x = y = z = 0.0
    feed = 25.0
    for command in split_commands(text):
        words = dict((w[0], w[1:]) for w in command.split()[1:] if w[:1] in "XYZEF")
        if not command.startswith(("G0", "G1")):
            continue
        if "F" in words:
            feed = float(words["F"]) / 60.0
        nx, ny, nz = (float(words.get(a, v)) for a, v in (("X", x), ("Y", y), ("Z", z)))
        cruising += ((nx - x) ** 2 + (ny - y) ** 2 + (nz - z) ** 2) ** 0.5 / feed
        x, y, z = nx, ny, nz
    klipper = planned.run.job_time_s
    assert klipper is not None
    assert cruising < (1 - WITHIN) * klipper
    # job.json's figure is the planner's, fed the same file and the profile's limits.
    plan = plan_commands(split_commands(text), motion_limits(planned.profile))
    assert plan.motion_s == pytest.approx(planned.job["gcode"]["estimated_motion_s"], abs=0.1)
