"""The print-time estimate against Klipper's own planner.

Every shipped example is compiled for each Klipper profile it fits (as the peer tests do)
and the resulting job.gcode is planned twice: by doseprint's motion planner
(:func:`doseprint.gcode.motion.plan_commands`, the figure job.json's
``gcode.estimated_motion_s`` holds) and by Klipper's host, klippy, in batch mode, whose
print time less its batch-mode homing is the reference. The table gives both times, the
difference and how long each planner took to produce its figure.

Run with ``.venv/bin/python benchmarks/estimate_bench.py`` (or as part of ``make bench``).
It needs Klipper's extract beside the project (or ``DOSEPRINT_KLIPPER``) and the peers'
environment (``make peers``); without them it says so and prints nothing else.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the Klipper harness of the peer tests

from doseprint.compile import compile_prescription, write_job  # noqa: E402
from doseprint.gcode.motion import motion_limits, plan_commands  # noqa: E402
from doseprint.gcode.tokens import split_commands  # noqa: E402
from doseprint.job.keys import create_site_key  # noqa: E402
from doseprint.library import load_library  # noqa: E402
from peers import KLIPPER_SOURCE, PEERS_VENV  # noqa: E402
from peers.conftest import EXAMPLE_FILES, KLIPPER_JOBS  # noqa: E402
from peers.klipper import KlipperHost  # noqa: E402


def main() -> int:
    python = PEERS_VENV / "bin" / "python"
    if not (KLIPPER_SOURCE / "klippy" / "klippy.py").exists() or not python.exists():
        print("estimate against Klipper: needs Klipper's extract (DOSEPRINT_KLIPPER) and "
              "`make peers`; left out")
        return 0
    library = load_library()
    print("| example | profile | doseprint s | Klipper s | difference | "
          "doseprint planning s | klippy run s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="estimate-bench-") as tmp:
        host = KlipperHost(KLIPPER_SOURCE, python, Path(tmp))
        host.build(library.printer(KLIPPER_JOBS[0][1]))
        # Sealed by a throwaway key: a benchmark does not make or use the site's own.
        key = create_site_key(Path(tmp) / "bench-key.pem").key
        for example, profile_id in KLIPPER_JOBS:
            profile = library.printer(profile_id)
            out = Path(tmp) / f"{example}--{profile_id}"
            write_job(compile_prescription(EXAMPLE_FILES[example], profile_id), out, key=key)
            text = (out / "job.gcode").read_text(encoding="utf-8")
            start = time.perf_counter()
            ours = plan_commands(split_commands(text), motion_limits(profile)).motion_s
            ours_wall = time.perf_counter() - start
            start = time.perf_counter()
            run = host.run(out / "job.gcode", profile)
            klippy_wall = time.perf_counter() - start
            if run.job_time_s is None:
                print(f"| {example} | {profile_id} | {ours:.1f} | failed | | | |")
                continue
            diff = (ours - run.job_time_s) / run.job_time_s
            worst = max(worst, abs(diff))
            print(f"| {example} | {profile_id} | {ours:.1f} | {run.job_time_s:.1f} | "
                  f"{100 * diff:+.2f} % | {ours_wall:.2f} | {klippy_wall:.1f} |")
    print(f"\nlargest difference: {100 * worst:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
