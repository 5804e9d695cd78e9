"""``doseprint compile``: a prescription to a job folder."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from doseprint.cli.options import db_option, library_options, log
from doseprint.cli.terminal import echo_line
from doseprint.dispensing import check_dispensable, dispensing_approvals
from doseprint.job.folder import check_out_dir
from doseprint.job.keys import site_key_for_compile
from doseprint.records.store import open_store
from doseprint.typed import PRINT_ORDERS, PrintOrder


@click.command("compile")
@click.argument("rx", type=click.Path(path_type=Path))
@click.option("--printer", "printer_id", required=True, help="Printer profile id.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Job folder to write.")
@library_options
@click.option("--layer-height", type=float, default=None,
              help="Layer height in mm (default: the printer profile's).")
@click.option("--force", is_flag=True, help="Replace an existing job folder.")
@click.option("--stl", is_flag=True, help="Also write each tablet as tablet-<i>.stl.")
@click.option("--print-order", type=click.Choice(PRINT_ORDERS), default=None,
              help="layer: layer by layer across the plate; tablet: each tablet whole "
                   "(needs the profile's gantry_clearance_mm). Default: the profile's.")
@click.option("--calibrations", "calibrations", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Flow calibrations file (also DOSEPRINT_CALIBRATIONS; "
                                 "default: calibrations.json in the user's data folder).")
@click.option("--dispense", is_flag=True,
              help="A job for a patient: refuse any formulation file whose version is not "
                   "approved in the record store (`formulation approve`). Without it a "
                   "compile is design work and needs no approval.")
@db_option
def compile_cmd(
    rx: Path, printer_id: str, out: Path, formulation_dirs: tuple[Path, ...],
    printer_dirs: tuple[Path, ...], layer_height: float | None, force: bool, stl: bool,
    print_order: str | None, calibrations: Path | None, dispense: bool, db: str | None,
) -> None:
    """Design, predict, slice and verify RX; write the job folder OUT.

    \b
    Example:
      doseprint compile rx-123.toml --printer generic-marlin-1x175 --out job-123
      doseprint compile rx-123.toml --printer generic-marlin-1x175 --out job-123 \\
          --dispense --db records.sqlite
    """
    # Imported when the command runs: the pipeline loads trimesh, scipy, shapely and
    # matplotlib (about 0.8 s), which every other command and `doseprint --help` would
    # otherwise pay.
    from doseprint.compile import compile_prescription, write_job
    from doseprint.job.flow_calibration import default_calibrations_path

    check_out_dir(out, force)
    key = site_key_for_compile()  # before the work: a key that cannot be used stops it here
    approvals = None
    if dispense:  # the store is read before the work too: one out of reach stops it here
        with open_store(db) as store:
            approvals = dispensing_approvals(store)
    compiled = compile_prescription(
        rx, printer_id, formulation_dirs=formulation_dirs, printer_dirs=printer_dirs,
        layer_height_mm=layer_height, progress=lambda msg: log.info("compile: %s", msg),
        stl=stl, print_order=cast(PrintOrder | None, print_order),  # click.Choice checked it
        calibrations=calibrations or default_calibrations_path(),
    )
    if approvals is not None:
        check_dispensable(approvals, compiled.tools)  # the files it was designed with
    write_job(compiled, out, force=force, key=key)
    job = compiled.manifest
    for t in job.tablets:
        for a in t.actives:
            rel = a.release
            fed = f"{a.gcode_dose_mg:>9.3f}"
            echo_line(f"tablet {t.index:>3}  {a.api:<18} {a.dose_mg:>8g} mg  "
                      f"G-code {fed} mg ({a.dose_error_pct:+.3f} %)  "
                      f"{compiled.tablets[t.index].design.describe()}  "
                      f"{rel.kind} {'met' if rel.met else 'NOT met'}")
    for w in job.warnings:
        echo_line(f"warning: {w}", err=True)
    echo_line(f"wrote {out} ({job.gcode.lines} G-code lines, about "
              f"{job.gcode.estimated_print_s / 60:.0f} min to print), sealed by "
              f"{key.public.describe()}")
