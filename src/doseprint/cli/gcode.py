"""``doseprint gcode check``: a job folder's G-code, read back, against its job.json."""

from __future__ import annotations

from pathlib import Path

import click

from doseprint.cli.options import echo_json
from doseprint.cli.terminal import echo_line
from doseprint.job.verify import dose_check_error, verify_job_folder


@click.group("gcode")
def gcode_group() -> None:
    """Check G-code.

    \b
    Example:
      doseprint gcode check job-123
    """


@gcode_group.command("check")
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def gcode_check(job_dir: Path, as_json: bool) -> None:
    """Recompute every tablet's dose from JOB/job.gcode and compare with job.json.

    Exit 1 if any tablet misses its dose by more than 1 %; exit 2 if the job's seal
    (job.seal) does not verify by this site's key or a trusted one.

    \b
    Example:
      doseprint gcode check job-123
    """
    # The same check compile ran before it wrote the job: every dose, drug no line of the
    # prescription accounts for, and the flow factor in force while a tool lays tablets.
    verification = verify_job_folder(job_dir)
    rows = [{"tablet": c.tablet, "api": c.api, "dose_mg": c.prescribed_mg,
             "gcode_dose_mg": round(c.gcode_mg, 4), "error_pct": round(c.error_pct, 4),
             "ok": c.ok} for c in verification.doses]
    error = dose_check_error(verification, job_dir)
    if as_json:
        echo_json({"ok": error is None, "tablets": rows})
    else:
        for r in rows:
            echo_line(f"tablet {r['tablet']:>3}  {r['api']:<18} {r['dose_mg']:>8g} mg  "
                      f"G-code {r['gcode_dose_mg']:>9.3f} mg  {r['error_pct']:+.3f} %  "
                      f"{'ok' if r['ok'] else 'MISS'}")
    if error is not None:
        raise error
